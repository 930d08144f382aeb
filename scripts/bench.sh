#!/usr/bin/env bash
# Benchmark: abathur-backup against the plain sqlite3 + gzip procedure, in the same run, on
# one abathur-shaped database (abathur-demo create: 11 tables, 36 indexes, WAL mode; the same
# BENCH_SIZE_MB always makes the same file). Issue 14, "Backup" and "Fast codec".
#
#   bash scripts/bench.sh BIN_DIR          (`make bench` and `make bench-quick` run it)
#
# Rows, in this order in every round, BENCH_RUNS rounds (default 3):
#   ours             abathur-backup --db DB --backup-dir DIR --config EMPTY_CONF
#                    (integrity_check, foreign_key_check, schema, row counts, gzip -6,
#                    read-back verification)
#   ours_zstd        the same with --compress zstd, when `abathur-backup --help` or
#                    `abathur-backup take --help` offers --compress (--compression-level is
#                    not --compress); its output is DIR/NAME.db.zst. Otherwise one line says
#                    the row is skipped.
#   ours_quick       the same as ours with --quick, only with BENCH_BACKUP_QUICK=yes
#   baseline_backup  sqlite3 DB ".backup tmp.db" && gzip -6 tmp.db
#   baseline_verify  gunzip -c tmp.db.gz > check.db && sqlite3 check.db 'PRAGMA integrity_check'
#   baseline         the two above, one after the other (wall and CPU added, memory the
#                    larger): the seed pipeline of issue 14
# ratio = our median wall seconds / baseline's; cpu_r the same for CPU seconds; bytes_r =
# our output's size / the size of gzip -6's tmp.db.gz (the issue's "within 3% of gzip -6").
#
# Every result must be right. Every run of ours (and ours_zstd, ours_quick) exits 0 and
# leaves exactly one backup file and its manifest; `gunzip -c` (`zstd -dc`) of it must give
# bytes whose SHA-256 is the manifest's database.sha256. In the first round that database is
# written out and must pass integrity_check ("ok", exactly), have more than one page and the
# source's tables; after that every run of every row must inflate to the same SHA-256 (the
# source does not change, so neither does the snapshot), which stands for the same checks. A
# file byte for byte the same as one already shown to inflate to it (same SHA-256 of the file)
# is not inflated again.
# The baseline's integrity_check must print exactly "ok". Neither side may leave DB-wal.
#
# Database: BENCH_DB is reused when it exists (it is only read); `make bench` points it at
# /var/tmp/abathur-bench-SIZEm.db, so one database serves every script and every later run
# (abathur-demo create is deterministic). Delete that file to make it again.
#
# Environment:
#   BENCH_SIZE_MB       size of the database to create (default 1024)
#   BENCH_RUNS          rounds (default 3)
#   BENCH_TMP           parent of the temp dir (default /var/tmp); the temp dir is removed at exit
#   BENCH_DB            reuse this database if it exists; if it does not, create it there and
#                       keep it. Unset: the database lives in the temp dir.
#   BENCH_OUT           where the JSON and the table go (default build/bench): backup-SIZEm.json
#                       (SIZE: the database's MiB, rounded)
#   BENCH_BACKUP_QUICK  yes: add the ours_quick row
# Nothing writes to the database during the benchmark: sqlite3 .backup never finishes
# against a steady writer (FACTS.md 2), so the script refuses a database that is open.
# ABATHUR_* variables of the caller are ignored.
#
# Output: the table on stdout (median wall and CPU seconds, the highest max RSS and RssAnon
# of all runs, median output bytes, the ratios, wall seconds per run; what each column
# measures: scripts/bench-run.py), one `bench:` line per row, `bench: json=PATH`, then each
# of our outputs' size against gzip -6's.
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench.sh abathur-backup "$@"
bench_require sqlite3 gzip
bench_database

bench_codec_zstd
QUICK=${BENCH_BACKUP_QUICK:-no}

# Free space, at the peak: a backup (<= 1x), its check copy in the first round (1x), and the
# baseline's tmp.db, tmp.db.gz and check.db (2.3x); each run's files go before the next.
bench_space "$((DB_BYTES * 4 + 64 * 1048576))" ", its backups and check copies; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"

bench_workdir abathur-bench

bench_create_database

bench_refuse_holders "stop the writer first (sqlite3 .backup never finishes against a steady writer)"

# Read the source's schema with immutable=1: a -readonly connection to a WAL database would
# leave a -wal and -shm behind, and our tool would then read a different kind of source.
uri_path() { local p=${1//%/%25}; p=${p//\?/%3f}; p=${p//#/%23}; printf 'file:%s?immutable=1' "$p"; }
SRC_URI=$(uri_path "$DB")
SRC_TABLES=$(sqlite3 "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
SRC_INDEXES=$(sqlite3 "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'index'")
[ ! -e "$DB-wal" ] || die "$DB-wal appeared; something else is writing the database"

# The database ours writes, once verified in full: every later backup must inflate to it.
REF_SHA=""
# Per suffix, the SHA-256 of a backup file already shown to inflate to REF_SHA: a later file
# with the same bytes needs no inflating.
declare -A REF_FILE_SHA=()

# A backup file that inflates (CRC checked) to an SQLite database whose integrity_check says
# exactly "ok", with more than one page and the source's tables (FACTS.md 4-6).
verify_full() {  # verify_full FILE CHECK_DB WHAT
    local file=$1 check=$2 what=$3 out pages tables
    inflate "$file" > "$check" || die "$what: $file does not inflate"
    [ "$(head -c 15 "$check")" = "SQLite format 3" ] || die "$what: $file does not inflate to an SQLite database"
    out=$(sqlite3 -readonly "$check" 'PRAGMA integrity_check' 2>&1) || die "$what: integrity_check failed to run: $out"
    [ "$out" = ok ] || die "$what: integrity_check on the inflated backup: $(printf '%s' "$out" | head -n 5)"
    pages=$(sqlite3 -readonly "$check" 'PRAGMA page_count')
    tables=$(sqlite3 -readonly "$check" "SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
    [ "$pages" -gt 1 ] || die "$what: inflated backup has $pages page(s)"
    [ "$tables" = "$SRC_TABLES" ] || die "$what: inflated backup has $tables tables, the source $SRC_TABLES"
    sha256 "$check"
    rm -f "$check" "$check-wal" "$check-shm" "$check-journal"
}

run_ours() {  # run_ours NAME RUN SUFFIX [extra flags]
    local name=$1 i=$2 suffix=$3; shift 3
    local dir="$WORK/$name-$i" file files got want file_sha
    if ! timed "$WORK/$name.log" "$WORK/$name.log" \
            "$BIN/abathur-backup" --db "$DB" --backup-dir "$dir" --config "$EMPTY_CONF" "$@"; then
        cat "$WORK/$name.log" >&2
        die "$name run $i: abathur-backup --db $DB --backup-dir $dir --config $EMPTY_CONF $* failed"
    fi
    [ ! -e "$DB-wal" ] || die "$name run $i left $DB-wal behind"
    mapfile -t files < <(find "$dir" -maxdepth 1 -type f -name "*.db.$suffix")
    [ ${#files[@]} -eq 1 ] || die "$name run $i: expected one .db.$suffix in $dir, found: $(ls -A "$dir" | tr '\n' ' ')"
    file=${files[0]}
    [ -f "$file.json" ] || die "$name run $i: no manifest $file.json"
    bench_record "$name" "$(stat -c %s "$file")"
    want=$(manifest_value "$file.json" database sha256) || die "$name run $i: $file.json has no database.sha256"
    file_sha=$(sha256 "$file")
    if [ -z "$REF_SHA" ]; then
        say "$name run $i: ${T_SEC}s, $(stat -c %s "$file") bytes; inflating it for integrity_check (untimed)"
        REF_SHA=$(verify_full "$file" "$WORK/check.db" "$name run $i") || exit 1
        say "verified in full: the snapshot's SHA-256 is $REF_SHA"
        got=$REF_SHA
    elif [ "${REF_FILE_SHA[$suffix]:-}" = "$file_sha" ]; then
        got=$REF_SHA
        say "$name run $i: ${T_SEC}s wall, ${T_CPU}s CPU, $(stat -c %s "$file") bytes; the same bytes as a verified backup"
    else
        got=$(inflate "$file" | sha256) || die "$name run $i: $file does not inflate"
        [ "$got" = "$REF_SHA" ] || die "$name run $i: $file inflates to SHA-256 $got, the first verified backup to $REF_SHA"
        say "$name run $i: ${T_SEC}s wall, ${T_CPU}s CPU, $(stat -c %s "$file") bytes; inflates to the verified snapshot"
    fi
    REF_FILE_SHA[$suffix]=$file_sha
    [ "$got" = "$want" ] || die "$name run $i: $file inflates to SHA-256 $got, its manifest says $want"
    rm -rf "$dir"
}

run_baseline() {  # run_baseline RUN
    local i=$1 s1 c1 r1 a1 gzbytes
    local dir="$WORK/baseline-$i"
    mkdir "$dir"
    # shellcheck disable=SC2016
    if ! timed "$WORK/baseline-backup.log" "$WORK/baseline-backup.log" bash -c 'sqlite3 "$1" ".backup \"$2\"" && gzip -6 "$2"' _ "$DB" "$dir/tmp.db"; then
        cat "$WORK/baseline-backup.log" >&2
        die "baseline run $i: sqlite3 .backup && gzip -6 failed"
    fi
    [ -f "$dir/tmp.db.gz" ] || die "baseline run $i: no tmp.db.gz"
    gzbytes=$(stat -c %s "$dir/tmp.db.gz")
    bench_record baseline_backup "$gzbytes"
    s1=$T_SEC c1=$T_CPU r1=$T_RSS a1=$T_ANON
    # shellcheck disable=SC2016
    if ! timed "$WORK/baseline-verify.log" "$WORK/baseline-verify.log" bash -c 'gunzip -c "$1" > "$2" && sqlite3 "$2" "PRAGMA integrity_check" > "$3"' \
            _ "$dir/tmp.db.gz" "$dir/check.db" "$dir/check.out"; then
        cat "$WORK/baseline-verify.log" >&2
        die "baseline run $i: gunzip && integrity_check failed"
    fi
    [ "$(cat "$dir/check.out")" = ok ] || die "baseline run $i: integrity_check said: $(head -n 5 "$dir/check.out")"
    bench_record baseline_verify
    say "baseline run $i: backup+gzip ${s1}s, verify ${T_SEC}s, $gzbytes bytes"
    T_SEC=$(awk -v a="$s1" -v b="$T_SEC" 'BEGIN { printf "%.3f", a + b }')
    T_CPU=$(awk -v a="$c1" -v b="$T_CPU" 'BEGIN { printf "%.3f", a + b }')
    T_RSS=$((r1 > T_RSS ? r1 : T_RSS)) T_ANON=$((a1 > T_ANON ? a1 : T_ANON))
    bench_record baseline "$gzbytes"
    rm -rf "$dir"
    # sqlite3 opened the source read-write; it must have closed it cleanly (no -wal left),
    # or our next run would read a different kind of source.
    [ ! -e "$DB-wal" ] || die "baseline run $i left $DB-wal behind"
}

say "database $DB: $DB_BYTES bytes, $SRC_TABLES tables, $SRC_INDEXES indexes; $RUNS round(s); work dir $WORK"
[ "$ZSTD" = yes ] || say "skipping the ours_zstd row: abathur-backup does not offer --compress"
say "warming the page cache (untimed read of the database)"
cat "$DB" > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_ours ours "$i" gz
    [ "$ZSTD" = no ] || run_ours ours_zstd "$i" zst --compress zstd
    [ "$QUICK" != yes ] || run_ours ours_quick "$i" gz --quick
    run_baseline "$i"
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

ROWS=("ours=abathur-backup (full checks)=baseline")
[ "$ZSTD" = no ] || ROWS+=("ours_zstd=abathur-backup --compress zstd=baseline")
[ "$QUICK" != yes ] || ROWS+=("ours_quick=abathur-backup --quick=baseline")
ROWS+=("baseline=baseline: .backup+gzip -6, gunzip+integrity=" "baseline_backup=  sqlite3 .backup + gzip -6=" "baseline_verify=  gunzip -c + integrity_check=")
NOTES=(
    "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB), $SRC_TABLES tables, $SRC_INDEXES indexes; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $("$BIN/abathur-backup" --version 2>/dev/null || echo '?')"
    "$RUNS round(s), alternating; wall, cpu, bytes: medians; rss, anon: the highest of all runs (KiB)"
    "ratio, cpu_r: ours / baseline; bytes_r: our backup's size / gzip -6's tmp.db.gz"
)
[ "$ZSTD" = yes ] || NOTES+=("ours_zstd: skipped, abathur-backup does not offer --compress")
META=$(json_meta benchmark backup script scripts/bench.sh \
    title "abathur-backup benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s" \
    notes "@json:$(json_list "${NOTES[@]}")" \
    database "$DB" database_bytes "@json:$DB_BYTES" size_mb "@json:$SIZE_MB" runs "@json:$RUNS" cores "@json:$(nproc)" \
    load_start "$LOAD_START" load_end "$LOAD_END" snapshot_sha256 "$REF_SHA" zstd_row "$ZSTD")
bench_report backup "$META" "${ROWS[@]}"
python3 - "$REPORT_JSON" <<'EOF'
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))["rows"]}
gzip6 = rows["baseline"]["median"]["bytes"]
print(f"output size against gzip -6's tmp.db.gz ({gzip6} bytes; issue 14: gzip within 3%, zstd no larger):")
for name in ("ours", "ours_zstd", "ours_quick"):
    if name in rows:
        b = rows[name]["median"]["bytes"]
        print(f"  {rows[name]['label']}: {b} bytes, {b / gzip6:.3f}x ({100 * (b - gzip6) / gzip6:+.1f}%)")
EOF
