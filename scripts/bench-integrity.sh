#!/usr/bin/env bash
# Benchmark: abathur-integrity against plain sqlite3 pragmas, in the same run, on one
# abathur-shaped database (abathur-demo create: 11 tables, 36 indexes, WAL mode; the same
# BENCH_SIZE_MB always makes the same file), as issue 4 ("Performance") and issue 14
# ("Integrity": full <= 1.0x, --quick <= 1.0x) ask: the cost of our extra checks.
#
#   bash scripts/bench-integrity.sh BIN_DIR
#
# Rows, in this order in every round, BENCH_RUNS rounds (default 3):
#   ours            abathur-integrity --db DB --backup-dir EMPTYDIR
#                   (header, WAL state, integrity_check, foreign_key_check, schema, indexes,
#                   user_version, application_id, row counts; ABATHUR_CONFIG = empty file;
#                   the backup directory is empty, so there is no row-count reference)
#   baseline        sqlite3 'file:DB?mode=ro&immutable=1' 'PRAGMA integrity_check; PRAGMA foreign_key_check'
#   ours_quick      the same as ours with --quick (quick_check instead of integrity_check)
#   baseline_quick  sqlite3 'file:DB?mode=ro&immutable=1' 'PRAGMA quick_check; PRAGMA foreign_key_check'
# ratio = our median wall seconds / the matching baseline's (ours / baseline, ours_quick /
# baseline_quick; cpu_r: CPU seconds); the columns: scripts/bench-run.py and
# scripts/bench-report.py.
#
# Our tool reads a WAL-mode database without a -wal with immutable=1 (LiveReader); with a
# -wal it reads through it instead, which is a different measurement. The baseline opens the
# database with the same immutable=1 URI, so it never creates a -wal (`sqlite3 -readonly`
# would, see bench.sh), and the script asserts before every timed run that DB-wal does not
# exist, and after every run that neither DB-wal nor DB-shm appeared and the database file
# did not change.
#
# Every result must be healthy: our tool exits 0 and reports "DB: ok" with every finding ok,
# including integrity_check/quick_check and foreign_key_check; the baseline prints exactly
# "ok" (foreign_key_check prints nothing when there are no violations).
#
# Database: BENCH_DB is reused when it exists (it is only read); `make bench` points it at
# /var/tmp/abathur-bench-SIZEm.db, shared by every script of the suite.
#
# Environment:
#   BENCH_SIZE_MB  size of the database to create (default 1024)
#   BENCH_RUNS     rounds (default 3)
#   BENCH_TMP      parent of the temp dir (default /var/tmp); the temp dir is removed at exit
#   BENCH_DB       reuse this database if it exists; if it does not, create it there and keep
#                  it for the next run. Unset: the database lives in the temp dir.
#   BENCH_OUT      where the JSON and the table go (default build/bench): integrity-SIZEm.json
# Nothing may write to the database during the benchmark: the script refuses a database that
# is open in any process.
#
# Output: the table on stdout, one `bench:` line per row, the overhead of our extra checks
# over each baseline, then `bench: json=PATH`.
# Progress goes to stderr. Exit 1 on any failure or any result that is not ok.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench-integrity.sh abathur-integrity "$@"
bench_require sqlite3
bench_database

# Free space: the database itself when it is created in the temp dir, plus a margin; the
# checks write nothing of size.
if [ -z "$DB" ]; then
    target_dir=$TMP_PARENT
    [ -z "$CREATE_AT" ] || target_dir=$(dirname "$CREATE_AT")
    need=$((DB_BYTES + DB_BYTES / 10 + 64 * 1048576))
    have=$(avail_bytes "$target_dir")
    if [ "$have" -lt "$need" ]; then
        die "not enough free space in $target_dir: $((have / 1048576)) MiB free, need about $((need / 1048576)) MiB for the $((DB_BYTES / 1048576)) MiB database; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"
    fi
fi

bench_workdir abathur-bench-integrity
EMPTY_BACKUPS="$WORK/backups"
mkdir -m 0700 "$EMPTY_BACKUPS"

bench_create_database

bench_refuse_holders "stop it first: the checks must read a database nothing writes"

# The baseline's source: read-only and immutable, so sqlite3 creates no -wal or -shm.
uri_path() { local p=${1//%/%25}; p=${p//\?/%3f}; p=${p//#/%23}; printf 'file:%s?mode=ro&immutable=1' "$p"; }
SRC_URI=$(uri_path "$DB")
# The journal mode from the header (bytes 18-19: 2 2 = WAL, 1 1 = rollback journal); with
# immutable=1, PRAGMA journal_mode says "delete" even for a WAL database.
case "$(od -An -tu1 -j18 -N2 "$DB" | tr -s ' ')" in
    " 2 2") JOURNAL=wal ;;
    " 1 1") JOURNAL=rollback ;;
    *) JOURNAL="unknown ($(od -An -tu1 -j18 -N2 "$DB" | tr -s ' '))" ;;
esac
SRC_TABLES=$(sqlite3 -batch -init /dev/null "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
SRC_INDEXES=$(sqlite3 -batch -init /dev/null "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'index'")
[ ! -e "$DB-wal" ] && [ ! -e "$DB-shm" ] || die "$DB-wal or $DB-shm appeared; something else is using the database"

# The database file must not change during the benchmark: size, mtime, ctime, inode.
fingerprint() { stat -c '%s %y %z %i' "$DB"; }
DB_PRINT=$(fingerprint)

before_run() {  # before_run WHAT: our result depends on whether a -wal exists
    [ ! -e "$DB-wal" ] || die "$1: $DB-wal exists before the run; refusing to time a different kind of read"
}
after_run() {  # after_run WHAT: the run created nothing and changed nothing
    [ ! -e "$DB-wal" ] || die "$1 left $DB-wal behind"
    [ ! -e "$DB-shm" ] || die "$1 left $DB-shm behind"
    [ "$(fingerprint)" = "$DB_PRINT" ] || die "$1 changed $DB (size/mtime/ctime/inode: $DB_PRINT -> $(fingerprint))"
}

run_ours() {  # run_ours NAME RUN PRAGMA [extra flags]
    local name=$1 i=$2 pragma=$3; shift 3
    local out="$WORK/$name.out" err="$WORK/$name.err" rc=0 bad
    before_run "$name run $i"
    timed "$out" "$err" env ABATHUR_CONFIG="$EMPTY_CONF" \
        "$BIN/abathur-integrity" --db "$DB" --backup-dir "$EMPTY_BACKUPS" "$@" || rc=$?
    after_run "$name run $i"
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "$name run $i: abathur-integrity --db $DB --backup-dir $EMPTY_BACKUPS${*:+ $*} exited $rc"
    fi
    # "DB: ok", then one line per finding, every one ok, including the two pragmas.
    [ "$(head -n 1 "$out")" = "$DB: ok" ] || { cat "$out" "$err" >&2; die "$name run $i: result is not '$DB: ok'"; }
    bad=$(tail -n +2 "$out" | grep -v '^  ok  ' || true)
    [ -z "$bad" ] || { cat "$out" >&2; die "$name run $i: finding(s) not ok: $bad"; }
    grep -qE "^  ok +$pragma: ok\$" "$out" || { cat "$out" >&2; die "$name run $i: no '$pragma: ok' finding"; }
    grep -qE '^  ok +foreign_key_check: ok$' "$out" || { cat "$out" >&2; die "$name run $i: no 'foreign_key_check: ok' finding"; }
    [ ! -s "$err" ] || { cat "$err" >&2; die "$name run $i: unexpected output on stderr"; }
    [ -z "$(ls -A "$EMPTY_BACKUPS")" ] || die "$name run $i: wrote into the backup directory: $(ls -A "$EMPTY_BACKUPS" | tr '\n' ' ')"
    bench_record "$name"
    say "$name run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ${T_ANON} KiB anon, $(grep -cE '^  ok ' "$out") findings ok"
}

run_baseline() {  # run_baseline NAME RUN SQL
    local name=$1 i=$2 sql=$3
    local out="$WORK/$name.out" err="$WORK/$name.err" rc=0
    before_run "$name run $i"
    timed "$out" "$err" sqlite3 -batch -init /dev/null "$SRC_URI" "$sql" || rc=$?
    after_run "$name run $i"
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "$name run $i: sqlite3 '$SRC_URI' '$sql' exited $rc"
    fi
    [ "$(cat "$out")" = ok ] || die "$name run $i: '$sql' said: $(head -n 5 "$out")"
    [ ! -s "$err" ] || { cat "$err" >&2; die "$name run $i: unexpected output on stderr"; }
    bench_record "$name"
    say "$name run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ok"
}

FULL_SQL='PRAGMA integrity_check; PRAGMA foreign_key_check'
QUICK_SQL='PRAGMA quick_check; PRAGMA foreign_key_check'

say "database $DB: $DB_BYTES bytes, journal mode $JOURNAL (header), $SRC_TABLES tables, $SRC_INDEXES indexes; $RUNS run(s) per row; work dir $WORK"
say "warming the page cache (untimed read of the database)"
cat "$DB" > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_ours ours "$i" integrity_check
    run_baseline baseline "$i" "$FULL_SQL"
    run_ours ours_quick "$i" quick_check --quick
    run_baseline baseline_quick "$i" "$QUICK_SQL"
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

META=$(json_meta benchmark integrity script scripts/bench-integrity.sh \
    title "abathur-integrity benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s" \
    notes "@json:$(json_list \
        "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB), journal mode $JOURNAL (header), no -wal, $SRC_TABLES tables, $SRC_INDEXES indexes; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $("$BIN/abathur-integrity" --version 2>/dev/null || echo '?')" \
        "baseline: sqlite3 '$SRC_URI' ..." \
        "$RUNS round(s), alternating; wall, cpu: medians; rss, anon: the highest of all runs (KiB); ratio, cpu_r: ours / the matching sqlite3 row")" \
    database "$DB" database_bytes "@json:$DB_BYTES" size_mb "@json:$SIZE_MB" runs "@json:$RUNS" cores "@json:$(nproc)" \
    load_start "$LOAD_START" load_end "$LOAD_END" full_sql "$FULL_SQL" quick_sql "$QUICK_SQL")
bench_report integrity "$META" \
    "ours=abathur-integrity (full)=baseline" \
    "baseline=sqlite3 integrity_check + fk_check=" \
    "ours_quick=abathur-integrity --quick=baseline_quick" \
    "baseline_quick=sqlite3 quick_check + fk_check="
python3 - "$REPORT_JSON" <<'EOF'
import json, sys
rows = {r["name"]: r for r in json.load(open(sys.argv[1]))["rows"]}
print("overhead of our extra checks (header, WAL state, schema, indexes, user_version, application_id, row counts):")
for ours, base, what in (("ours", "baseline", "full: "), ("ours_quick", "baseline_quick", "quick:")):
    a, b = rows[ours]["median"]["wall_s"], rows[base]["median"]["wall_s"]
    d = a - b
    print(f"  {what} {d:+.2f}s ({100 * d / b:+.1f}%) over {rows[base]['label']}" if b > 0 else f"  {what} {d:+.2f}s")
EOF
