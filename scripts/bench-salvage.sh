#!/usr/bin/env bash
# Benchmark: abathur-integrity --recover (the native salvage) of an undamaged abathur-shaped
# database (abathur-demo create: 11 tables, 36 indexes, WAL mode) against
# `PRAGMA integrity_check` on the same file, in the same run, as issue 13 asks ("the salvage
# time of an undamaged 1 GiB abathur-shaped database; it should be within 2x of
# integrity_check on the same file").
#
#   bash scripts/bench-salvage.sh BIN_DIR
#
# Rows, each run BENCH_RUNS times, alternating; the table shows the median of each column:
#   salvage   abathur-integrity --recover WORK/out.db DB --json --backup-dir EMPTYDIR
#             (ABATHUR_CONFIG = empty file, temp_dir = WORK): a scratch copy of DB, every
#             page read, every row written into a new database, its indexes built, the full
#             checks on it; out.db is removed after each run (untimed)
#   baseline  sqlite3 'file:DB?mode=ro&immutable=1' 'PRAGMA integrity_check'
# ratio = seconds / baseline seconds.
#
# Every result must be right. The salvage: exit 0 (nothing damaged, nothing in
# lost_and_found, the checks pass), result "recovered", and per table as many rows recovered
# as SQLite counts in DB; DB unchanged (size, mtime, ctime, inode), no -wal or -shm beside it;
# nothing written to the backup directory. Anything the salvage leaves in temp_dir (its
# scratch copy should be removed) is reported as a warning and cleared between runs.
# The baseline: exactly "ok". When the --json report carries timings (keys naming ms,
# seconds, phases or timings), the last run's are printed.
#
# Environment (as the other benchmarks, scripts/bench-lib.sh):
#   BENCH_SIZE_MB  size of the database to create (default 1024)
#   BENCH_RUNS     runs per row (default 3)
#   BENCH_TMP      parent of the temp dir (default /var/tmp); the temp dir is removed at exit
#   BENCH_DB       reuse this database if it exists; if it does not, create it there and keep
#                  it for the next run (creating 1 GiB takes a while). Unset: the database
#                  lives in the temp dir.
#
# Output: an aligned table on stdout, then one line per row:
#   bench: name=... seconds=... peak_rss_kib=... ratio=...
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench-salvage.sh abathur-integrity "$@"
bench_require time sqlite3 python3
bench_database
# The scratch copy the salvage reads and the database it writes, each about the size of DB.
bench_space "$((2 * DB_BYTES + DB_BYTES / 10 + 64 * 1048576))" \
    ", its scratch copy and the salvaged database; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"
bench_workdir abathur-bench-salvage
EMPTY_BACKUPS="$WORK/backups"
mkdir -m 0700 "$EMPTY_BACKUPS" "$WORK/temp"
bench_create_database
bench_refuse_holders "stop it first: the benchmark must read a database nothing writes"

uri_path() { local p=${1//%/%25}; p=${p//\?/%3f}; p=${p//#/%23}; printf 'file:%s?mode=ro&immutable=1' "$p"; }
SRC_URI=$(uri_path "$DB")
OUT="$WORK/out.db"

# What SQLite counts in each table (untimed): the salvage must bring back every row.
say "counting the rows of every table with sqlite3 (untimed)"
sqlite3 -batch -init /dev/null "$SRC_URI" \
    "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name" > "$WORK/tables"
: > "$WORK/counts"
while IFS= read -r table; do
    printf '%s\t%s\n' "$table" "$(sqlite3 -batch -init /dev/null "$SRC_URI" "SELECT count(*) FROM \"${table//\"/\"\"}\"")" >> "$WORK/counts"
done < "$WORK/tables"
SRC_TABLES=$(wc -l < "$WORK/tables")
SRC_ROWS=$(awk -F'\t' '{ n += $2 } END { print n + 0 }' "$WORK/counts")
[ ! -e "$DB-wal" ] && [ ! -e "$DB-shm" ] || die "$DB-wal or $DB-shm appeared; something else is using the database"

fingerprint() { stat -c '%s %y %z %i' "$DB"; }
DB_PRINT=$(fingerprint)
after_run() {  # after_run WHAT: the run created nothing beside DB and changed nothing
    [ ! -e "$DB-wal" ] || die "$1 left $DB-wal behind"
    [ ! -e "$DB-shm" ] || die "$1 left $DB-shm behind"
    [ "$(fingerprint)" = "$DB_PRINT" ] || die "$1 changed $DB (size/mtime/ctime/inode: $DB_PRINT -> $(fingerprint))"
}

declare -A SEC RSS   # name -> space-separated per-run values
LEFT_BEHIND=""
add() { SEC[$1]+="$2 "; RSS[$1]+="$3 "; }

# The salvage's --json report against the counts: prints what is wrong, nothing when right.
check_report() {  # check_report JSON COUNTS
    python3 - "$1" "$2" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
want = dict(line.rstrip("\n").split("\t") for line in open(sys.argv[2]) if line.strip())
r = doc.get("result") or {}
wrong = []
if r.get("result") != "recovered":
    wrong.append(f"result is {r.get('result')!r}, not 'recovered'")
if r.get("lost_and_found") != 0:
    wrong.append(f"lost_and_found = {r.get('lost_and_found')}")
got = {t.get("name"): t for t in r.get("tables", [])}
for name, n in want.items():
    t = got.get(name)
    if t is None:
        wrong.append(f"{name}: not in the report")
    elif t.get("recovered") != int(n):
        wrong.append(f"{name}: {t.get('recovered')} rows recovered, SQLite counts {n}")
for check in r.get("checks", []):
    if not check.get("ok"):
        wrong.append(f"check {check.get('name')}: {check.get('detail')}")
print("\n".join(wrong))
EOF
}

# Timings in the report, if it has any: every number under a key that names a duration.
print_timings() {  # print_timings JSON
    python3 - "$1" <<'EOF'
import json, re, sys
doc = json.load(open(sys.argv[1]))
found = []
def walk(value, path):
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "tables":
                continue
            p = f"{path}.{k}" if path else k
            if re.search(r"(^|_)(ms|seconds|secs|elapsed|duration)$|timing|phase", k):
                if isinstance(v, dict):
                    found.extend((f"{p}.{kk}", vv) for kk, vv in v.items() if not isinstance(vv, (dict, list)))
                elif not isinstance(v, list):
                    found.append((p, v))
                else:
                    walk(v, p)
            else:
                walk(v, p)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            walk(v, f"{path}[{i}]")
walk(doc.get("result") or {}, "")
if found:
    print("the salvage's own timings (--json, last run):")
    for p, v in found:
        print(f"  {p} = {v}")
else:
    print("the salvage's --json report carries no timings")
EOF
}

run_salvage() {  # run_salvage RUN
    local i=$1 out="$WORK/salvage.json" err="$WORK/salvage.err" rc=0 wrong
    rm -f "$OUT"
    timed "$out" "$err" env ABATHUR_CONFIG="$EMPTY_CONF" ABATHUR_TEMP_DIR="$WORK/temp" \
        "$BIN/abathur-integrity" --recover "$OUT" "$DB" --json --backup-dir "$EMPTY_BACKUPS" || rc=$?
    after_run "salvage run $i"
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "salvage run $i: abathur-integrity --recover $OUT $DB exited $rc (an undamaged database must salvage cleanly: 0)"
    fi
    [ -f "$OUT" ] || die "salvage run $i: exit 0 but no $OUT"
    wrong=$(check_report "$out" "$WORK/counts") || die "salvage run $i: the --json report does not parse: $(head -c 300 "$out")"
    [ -z "$wrong" ] || { cat "$err" >&2; die "salvage run $i: $wrong"; }
    # The scratch copy must be gone; what is left is reported (a defect), then cleared so that
    # every run starts alike.
    if [ -n "$(ls -A "$WORK/temp")" ]; then
        LEFT_BEHIND+="run $i: $(cd "$WORK/temp" && find . -mindepth 1 | sed 's|^\./||' | tr '\n' ' ')"$'\n'
        say "WARNING: salvage run $i left this in temp_dir: $(cd "$WORK/temp" && find . -mindepth 1 | tr '\n' ' ')"
        find "$WORK/temp" -mindepth 1 -delete
    fi
    [ -z "$(ls -A "$EMPTY_BACKUPS")" ] || die "salvage run $i: wrote into the backup directory: $(ls -A "$EMPTY_BACKUPS" | tr '\n' ' ')"
    OUT_BYTES=$(stat -c %s "$OUT")
    rm -f "$OUT"
    add salvage "$T_SEC" "$T_RSS"
    say "salvage run $i: ${T_SEC}s, ${T_RSS} KiB peak, $SRC_ROWS rows in $SRC_TABLES tables recovered, $OUT_BYTES bytes written"
}

run_baseline() {  # run_baseline RUN
    local i=$1 out="$WORK/baseline.out" err="$WORK/baseline.err" rc=0
    timed "$out" "$err" sqlite3 -batch -init /dev/null "$SRC_URI" 'PRAGMA integrity_check' || rc=$?
    after_run "baseline run $i"
    [ "$rc" -eq 0 ] || { cat "$out" "$err" >&2; die "baseline run $i: sqlite3 '$SRC_URI' 'PRAGMA integrity_check' exited $rc"; }
    [ "$(cat "$out")" = ok ] || die "baseline run $i: integrity_check said: $(head -n 5 "$out")"
    [ ! -s "$err" ] || { cat "$err" >&2; die "baseline run $i: unexpected output on stderr"; }
    add baseline "$T_SEC" "$T_RSS"
    say "baseline run $i: ${T_SEC}s, ${T_RSS} KiB peak, ok"
}

say "database $DB: $DB_BYTES bytes, $SRC_TABLES tables, $SRC_ROWS rows; $RUNS run(s) per row; work dir $WORK"
say "warming the page cache (untimed read of the database)"
cat "$DB" > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_salvage "$i"
    run_baseline "$i"
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
NAMES=(salvage baseline)
declare -A LABEL=(
    [salvage]="abathur-integrity --recover"
    [baseline]="sqlite3 PRAGMA integrity_check"
)
bench_medians "${NAMES[@]}"

echo "abathur-integrity --recover benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s"
echo "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB), undamaged, no -wal, $SRC_TABLES tables, $SRC_ROWS rows; salvaged database $OUT_BYTES bytes; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $("$BIN/abathur-integrity" --version 2>/dev/null || echo '?')"
echo "baseline: sqlite3 '$SRC_URI' 'PRAGMA integrity_check'"
echo "median of $RUNS run(s) per row (each column separately); ratio = seconds / baseline seconds; the issue asks for a ratio within 2"
echo
bench_table 32 baseline "${NAMES[@]}"
echo
print_timings "$WORK/salvage.json"
ratio=$(awk -v a="${MSEC[salvage]}" -v b="${MSEC[baseline]}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }')
if [ -n "$LEFT_BEHIND" ]; then
    echo "WARNING: the salvage left these in temp_dir (its scratch copy must be removed):"
    printf '%s' "$LEFT_BEHIND" | sed 's/^/  /'
fi
echo "salvage / integrity_check = $ratio ($(awk -v r="$ratio" 'BEGIN { print (r != "inf" && r <= 2) ? "within 2x" : "NOT within 2x" }'))"
