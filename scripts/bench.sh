#!/usr/bin/env bash
# Benchmark: abathur-backup against the plain sqlite3 + gzip procedure, in the same run, on
# one abathur-shaped database (abathur-demo create: 11 tables, 36 indexes, WAL mode).
#
#   bash scripts/bench.sh BIN_DIR          (`make bench` runs it with build/bin)
#
# Sides, each run BENCH_RUNS times; the table shows the median of each column:
#   ours        abathur-backup --db DB --backup-dir DIR  (integrity_check, foreign_key_check,
#               schema, row counts, gzip -6, read-back verification), ABATHUR_CONFIG = empty file
#   ours_quick  the same with --quick (quick_check instead of integrity_check)
#   baseline    sqlite3 DB ".backup tmp.db" && gzip -6 tmp.db            (baseline_backup)
#               then gunzip -c tmp.db.gz > check.db &&
#                    sqlite3 check.db 'PRAGMA integrity_check'           (baseline_verify)
# Every .gz ours writes is then inflated and must give a database whose integrity_check says
# exactly "ok" (untimed); the baseline's integrity_check output must be exactly "ok" too.
#
# Environment:
#   BENCH_SIZE_MB  size of the database to create (default 1024)
#   BENCH_RUNS     runs per side (default 3)
#   BENCH_TMP      parent of the temp dir (default /var/tmp); the temp dir is removed at exit
#   BENCH_DB       reuse this database if it exists; if it does not, create it there and keep
#                  it for the next run. Unset: the database lives in the temp dir.
# Nothing writes to the database during the benchmark: sqlite3 .backup never finishes
# against a steady writer (FACTS.md 2), so the script refuses a database that is open.
#
# Output: an aligned table on stdout, then one line per row:
#   bench: name=... seconds=... gz_bytes=... peak_rss_kib=... ratio=...
# (ratio = seconds / baseline seconds). Progress goes to stderr. Exit 1 on any failure.
set -euo pipefail

. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench.sh abathur-backup "$@"
bench_require time sqlite3 gzip
bench_database

# Free space: ~4x the database in the temp dir (db if created there, our snapshot + .gz +
# check copy, the baseline's tmp.db/.gz + check copy; each run's files go before the next).
need=$((DB_BYTES * 4))
have=$(avail_bytes "$TMP_PARENT")
if [ "$have" -lt "$need" ]; then
    die "not enough free space in $TMP_PARENT: $((have / 1048576)) MiB free, need about $((need / 1048576)) MiB (4x the $((DB_BYTES / 1048576)) MiB database); set BENCH_TMP or BENCH_SIZE_MB"
fi
if [ -n "$CREATE_AT" ]; then
    have=$(avail_bytes "$(dirname "$CREATE_AT")")
    [ "$have" -ge "$DB_BYTES" ] || die "not enough free space for BENCH_DB $CREATE_AT: $((have / 1048576)) MiB free, need $((DB_BYTES / 1048576)) MiB"
fi

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

# A .gz that gunzips (CRC checked) to an SQLite database whose integrity_check says exactly
# "ok", with more than one page and the source's tables (FACTS.md 4-6).
verify_gz() {  # verify_gz GZ CHECK_DB WHAT
    local gz=$1 check=$2 what=$3 out pages tables
    gunzip -c "$gz" > "$check" || die "$what: $gz does not gunzip"
    [ "$(head -c 15 "$check")" = "SQLite format 3" ] || die "$what: $gz does not inflate to an SQLite database"
    out=$(sqlite3 -readonly "$check" 'PRAGMA integrity_check' 2>&1) || die "$what: integrity_check failed to run: $out"
    [ "$out" = ok ] || die "$what: integrity_check on the inflated backup: $(printf '%s' "$out" | head -n 5)"
    pages=$(sqlite3 -readonly "$check" 'PRAGMA page_count')
    tables=$(sqlite3 -readonly "$check" "SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
    [ "$pages" -gt 1 ] || die "$what: inflated backup has $pages page(s)"
    [ "$tables" = "$SRC_TABLES" ] || die "$what: inflated backup has $tables tables, the source $SRC_TABLES"
    rm -f "$check" "$check-wal" "$check-shm" "$check-journal"
}

declare -A SEC RSS GZ   # name -> space-separated per-run values

add() { SEC[$1]+="$2 "; RSS[$1]+="$3 "; GZ[$1]+="$4 "; }

run_ours() {  # run_ours NAME RUN [extra flags]
    local name=$1 i=$2; shift 2
    local dir="$WORK/$name-$i" gz
    if ! timed "$WORK/$name.log" "$WORK/$name.log" env ABATHUR_CONFIG="$EMPTY_CONF" \
            "$BIN/abathur-backup" --db "$DB" --backup-dir "$dir" "$@"; then
        cat "$WORK/$name.log" >&2
        die "$name run $i: abathur-backup --db $DB --backup-dir $dir $* failed"
    fi
    local gzs=("$dir"/*.db.gz)
    [ ${#gzs[@]} -eq 1 ] && [ -f "${gzs[0]}" ] || die "$name run $i: expected one .db.gz in $dir, found: ${gzs[*]}"
    gz=${gzs[0]}
    add "$name" "$T_SEC" "$T_RSS" "$(stat -c %s "$gz")"
    say "$name run $i: ${T_SEC}s, ${T_RSS} KiB peak, $(stat -c %s "$gz") bytes; verifying the .gz"
    verify_gz "$gz" "$WORK/check-$name.db" "$name run $i"
    rm -rf "$dir"
}

run_baseline() {  # run_baseline RUN
    local i=$1 dir="$WORK/baseline-$i" s1 r1 s2 r2 out gzbytes
    mkdir "$dir"
    # shellcheck disable=SC2016
    if ! timed "$WORK/baseline-backup.log" "$WORK/baseline-backup.log" bash -c 'sqlite3 "$1" ".backup \"$2\"" && gzip -6 "$2"' _ "$DB" "$dir/tmp.db"; then
        cat "$WORK/baseline-backup.log" >&2
        die "baseline run $i: sqlite3 .backup && gzip -6 failed"
    fi
    s1=$T_SEC r1=$T_RSS
    [ -f "$dir/tmp.db.gz" ] || die "baseline run $i: no tmp.db.gz"
    gzbytes=$(stat -c %s "$dir/tmp.db.gz")
    # shellcheck disable=SC2016
    if ! timed "$WORK/baseline-verify.log" "$WORK/baseline-verify.log" bash -c 'gunzip -c "$1" > "$2" && sqlite3 "$2" "PRAGMA integrity_check" > "$3"' \
            _ "$dir/tmp.db.gz" "$dir/check.db" "$dir/check.out"; then
        cat "$WORK/baseline-verify.log" >&2
        die "baseline run $i: gunzip && integrity_check failed"
    fi
    s2=$T_SEC r2=$T_RSS
    out=$(cat "$dir/check.out")
    [ "$out" = ok ] || die "baseline run $i: integrity_check said: $(head -n 5 "$dir/check.out")"
    add baseline_backup "$s1" "$r1" "$gzbytes"
    add baseline_verify "$s2" "$r2" "$gzbytes"
    add baseline "$(awk -v a="$s1" -v b="$s2" 'BEGIN { printf "%.2f", a + b }')" "$((r1 > r2 ? r1 : r2))" "$gzbytes"
    say "baseline run $i: backup+gzip ${s1}s (${r1} KiB), verify ${s2}s (${r2} KiB), $gzbytes bytes"
    rm -rf "$dir"
    # sqlite3 opened the source read-write; it must have closed it cleanly (no -wal left),
    # or our next run would read a different kind of source.
    [ ! -e "$DB-wal" ] || die "baseline run $i left $DB-wal behind"
}

say "database $DB: $DB_BYTES bytes, $SRC_TABLES tables, $SRC_INDEXES indexes; $RUNS run(s) per side; work dir $WORK"
say "warming the page cache (untimed read of the database)"
cat "$DB" > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_ours ours "$i"
    run_ours ours_quick "$i" --quick
    run_baseline "$i"
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

NAMES=(ours ours_quick baseline baseline_backup baseline_verify)
declare -A LABEL=(
    [ours]="abathur-backup (integrity_check)"
    [ours_quick]="abathur-backup --quick"
    [baseline]="baseline total"
    [baseline_backup]="  sqlite3 .backup + gzip -6"
    [baseline_verify]="  gunzip + integrity_check"
)
declare -A MSEC MRSS MGZ
for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    MSEC[$n]=$(median '%.2f' ${SEC[$n]})
    # shellcheck disable=SC2086
    MRSS[$n]=$(median '%d' ${RSS[$n]})
    # shellcheck disable=SC2086
    MGZ[$n]=$(median '%d' ${GZ[$n]})
done
ratio() { awk -v a="$1" -v b="${MSEC[baseline]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }

echo "abathur-backup benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s"
echo "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB), $SRC_TABLES tables, $SRC_INDEXES indexes; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $($BIN/abathur-backup --version 2>/dev/null || echo '?')"
echo "median of $RUNS run(s) per row (each column separately); ratio = seconds / baseline total seconds"
echo
fmt='%-34s %9s %13s %9s %13s %7s   %s\n'
# shellcheck disable=SC2059
printf "$fmt" "row" "seconds" "gz_bytes" "gz_MiB" "peak_rss_kib" "ratio" "seconds per run"
for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2059
    printf "$fmt" "${LABEL[$n]}" "${MSEC[$n]}" "${MGZ[$n]}" \
        "$(awk -v b="${MGZ[$n]}" 'BEGIN { printf "%.1f", b / 1048576 }')" "${MRSS[$n]}" "$(ratio "${MSEC[$n]}")" "${SEC[$n]% }"
done
echo
for n in "${NAMES[@]}"; do
    echo "bench: name=$n seconds=${MSEC[$n]} gz_bytes=${MGZ[$n]} peak_rss_kib=${MRSS[$n]} ratio=$(ratio "${MSEC[$n]}")"
done
