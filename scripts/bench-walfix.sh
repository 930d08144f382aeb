#!/usr/bin/env bash
# Benchmark: abathur-walfix inspect on a 256 MiB hot WAL, and abathur-walfix repair of a
# torn-tail copy of it, against SQLite's own recovery of the same files, in the same run, on
# an abathur-shaped database (abathur-demo create: 11 tables, 36 indexes, WAL mode).
#
#   bash scripts/bench-walfix.sh BIN_DIR
#
# Setup (untimed): the database is copied to HOT/abathur.db, and a writer (python3's sqlite3
# module on the system libsqlite3) with wal_autocheckpoint=0 commits transactions that each
# add 1 to `priority` of 500 tasks picked at random (seeded) and record the transaction's
# number in state('bench_commit'), until HOT/abathur.db-wal is at least BENCH_WAL_MB MiB; then
# it exits with os._exit, closing nothing (a crash): the -wal and -shm stay, nothing
# checkpointed. A torn-tail copy is HOT's three files with the -wal cut in the middle of its
# last frame, so its last transaction is lost to every reader alike.
#
# Rows, each run BENCH_RUNS times (interleaved); the table shows the median of each column:
#   inspect   abathur-walfix inspect --json --db HOT/abathur.db --backup-dir BACKUPS
#             --config EMPTY_CONF  (the whole hot -wal read offline, the fit of its committed
#             prefix checked on a scratch copy in temp_dir = WORK/scratch)
#   repair    ABATHUR_SERVICES= abathur-walfix repair --no-services --json --db R/abathur.db
#             --backup-dir BACKUPS --config EMPTY_CONF  on a fresh torn-tail copy in R/
#             (lock, holders, forensic copy, the committed prefix rebuilt on a copy and fully
#             checked, -wal and -shm moved aside, the swap)
#   baseline  sqlite3 -batch -init /dev/null B/abathur.db 'PRAGMA quick_check'  on a fresh
#             torn-tail copy in B/: SQLite's own recovery (the wal-index rebuilt from the
#             -wal), a quick_check, and the checkpoint and removal of the -wal at close
# ratio = seconds / baseline seconds.
#
# Every result must be right. inspect: exit 0, committed_frames = frames, no first invalid
# frame, dropped_commits 0; HOT's files unchanged (size, mtime and, at the end, SHA-256).
# repair: exit 0; no R/abathur.db-wal or -shm afterwards; the forensic copy under
# BACKUPS/forensic holds the torn -wal (same SHA-256); an R/.abathur-aside-* directory holds
# it too; quick_check ok. baseline: quick_check printed exactly "ok"; no B/abathur.db-wal
# afterwards. repair and baseline agree: state('bench_commit') is the writer's last
# transaction but one, and the sum of tasks.priority is the same. Between runs (untimed) the
# copies, BACKUPS/forensic and the scratch directory are removed, then `sync`.
#
# Environment:
#   BENCH_SIZE_MB  size of the database to create (default 1024)
#   BENCH_WAL_MB   size of the hot -wal (default 256)
#   BENCH_RUNS     runs per row (default 3)
#   BENCH_TMP      parent of the temp dir (default /var/tmp); the temp dir is removed at exit
#   BENCH_DB       reuse this database if it exists (it is copied, never written); if it does
#                  not, create it there and keep it for the next run. Unset: the database
#                  lives in the temp dir.
# ABATHUR_* variables of the caller are ignored.
#
# Output: an aligned table on stdout, then one line per row:
#   bench: name=... seconds=... peak_rss_kib=... ratio=...
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench-walfix.sh abathur-walfix "$@"
bench_require time sqlite3 python3
bench_database
WAL_MB=${BENCH_WAL_MB:-256}
[[ $WAL_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_WAL_MB must be a positive integer, not '$WAL_MB'"
WAL_WANT=$((WAL_MB * 1048576))

# Free space in the temp dir, at the peak: the hot copy (database + -wal), a repair's copy,
# its forensic copy and its rebuilt database, the baseline's copy, inspect's scratch copy,
# and a margin; plus the database itself when it is created there.
bench_space "$((5 * DB_BYTES + 5 * WAL_WANT + 64 * 1048576))" \
    " and its $WAL_MB MiB -wal, copied four times; set BENCH_TMP, BENCH_DB, BENCH_SIZE_MB or BENCH_WAL_MB"

bench_workdir abathur-bench-walfix
HOT_DIR="$WORK/hot"
HOT="$HOT_DIR/abathur.db"
TORN_DIR="$WORK/torn"
R_DIR="$WORK/repair"
R="$R_DIR/abathur.db"
B_DIR="$WORK/baseline"
B="$B_DIR/abathur.db"
BACKUPS="$WORK/backups"
SCRATCH="$WORK/scratch"
mkdir -m 0700 "$BACKUPS"
mkdir "$HOT_DIR" "$TORN_DIR" "$R_DIR" "$B_DIR" "$SCRATCH"

bench_create_database

bench_refuse_holders "stop it first: the benchmark copies the database and makes its own hot -wal on the copy"

# The hot -wal (untimed): a copy of the database, and a writer that crashes.
say "copying the database to $HOT (untimed)"
cp "$DB" "$HOT"
say "writing a hot -wal of at least $WAL_MB MiB with a writer that then crashes (untimed)"
cat > "$WORK/crashing-writer.py" <<'EOF'
import os, random, sqlite3, sys
path, want = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(path, isolation_level=None)
c.execute("PRAGMA journal_mode=WAL")
c.execute("PRAGMA wal_autocheckpoint=0")
c.execute("INSERT OR REPLACE INTO state(key, value, updated_at) VALUES ('bench_commit', '0', datetime('now'))")
last = c.execute("SELECT max(id) FROM tasks").fetchone()[0]
pick = random.Random(11)
n = 0
while os.stat(path + "-wal").st_size < want:
    n += 1
    c.execute("BEGIN IMMEDIATE")
    c.executemany("UPDATE tasks SET priority = priority + 1, updated_at = datetime('now') WHERE id = ?",
                  [(pick.randint(1, last),) for _ in range(500)])
    c.execute("UPDATE state SET value = ?, updated_at = datetime('now') WHERE key = 'bench_commit'", (str(n),))
    c.execute("COMMIT")
print(n, flush=True)
os._exit(0)
EOF
/usr/bin/time -f '%e' -o "$WORK/writer.time" python3 "$WORK/crashing-writer.py" "$HOT" "$WAL_WANT" >"$WORK/writer.out" 2>"$WORK/writer.err" \
    || { cat "$WORK/writer.err" >&2; die "the crashing writer failed"; }
COMMITS=$(cat "$WORK/writer.out")
[[ $COMMITS =~ ^[0-9]+$ ]] && [ "$COMMITS" -ge 2 ] || die "the writer made '$COMMITS' transactions, expected at least 2"
[ -f "$HOT-wal" ] && [ -f "$HOT-shm" ] || die "the writer left no hot -wal and -shm"
WAL_BYTES=$(stat -c %s "$HOT-wal")
PAGE_SIZE=$(python3 -c 'import struct, sys; print(struct.unpack(">I", open(sys.argv[1], "rb").read(12)[8:12])[0])' "$HOT-wal")
FRAME=$((24 + PAGE_SIZE))
FRAMES=$(((WAL_BYTES - 32) / FRAME))
[ $((32 + FRAMES * FRAME)) -eq "$WAL_BYTES" ] || die "$HOT-wal: $WAL_BYTES bytes is not a whole number of $FRAME-byte frames"
say "hot -wal: $WAL_BYTES bytes, $FRAMES frames of $PAGE_SIZE-byte pages, $COMMITS transactions (written in $(cat "$WORK/writer.time")s)"

# The torn-tail master: the last frame (the last transaction's commit frame) cut in half.
cp "$HOT" "$HOT-shm" "$TORN_DIR/"
head -c $((WAL_BYTES - FRAME / 2)) "$HOT-wal" > "$TORN_DIR/abathur.db-wal"
TORN_WAL_SHA=$(sha256sum "$TORN_DIR/abathur.db-wal" | cut -d' ' -f1)
hot_print() { stat -c '%n %s %Y' "$HOT" "$HOT-wal" "$HOT-shm" | tr '\n' ' '; }
HOT_PRINT=$(hot_print)
HOT_SHA=$(sha256sum "$HOT" "$HOT-wal" | cut -d' ' -f1 | tr '\n' ' ')

json() {  # json FILE KEY...   -> the value at that path of the JSON document
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print("null" if v is None else v)' "$@"
}
# state(bench_commit) and the sum of priority: what a reader of the recovered database sees.
fingerprint() {
    sqlite3 -batch -init /dev/null "$1" "SELECT value FROM state WHERE key = 'bench_commit'; SELECT total(priority) FROM tasks;" | tr '\n' ' '
}

declare -A SEC RSS   # name -> space-separated per-run values
add() { SEC[$1]+="$2 "; RSS[$1]+="$3 "; }

# Untimed, between runs: remove what a run left, and write back dirty pages.
reset_copies() {
    rm -rf "$R_DIR" "$B_DIR" "$BACKUPS/forensic" "$SCRATCH"
    mkdir "$R_DIR" "$B_DIR" "$SCRATCH"
    sync
}

torn_copy() {  # torn_copy DIR
    cp "$TORN_DIR/abathur.db" "$TORN_DIR/abathur.db-wal" "$TORN_DIR/abathur.db-shm" "$1/"
    sync
}

run_inspect() {  # run_inspect RUN
    local i=$1 out="$WORK/inspect.out" err="$WORK/inspect.err" rc=0
    reset_copies
    timed "$out" "$err" env ABATHUR_TEMP_DIR="$SCRATCH" \
        "$BIN/abathur-walfix" inspect --json --db "$HOT" --backup-dir "$BACKUPS" --config "$EMPTY_CONF" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "inspect run $i: abathur-walfix inspect --json --db $HOT --backup-dir $BACKUPS --config $EMPTY_CONF exited $rc, expected 0 (a healthy hot -wal)"
    fi
    [ "$(json "$out" result frames)" = "$FRAMES" ] || die "inspect run $i: frames $(json "$out" result frames), the file has $FRAMES"
    [ "$(json "$out" result committed_frames)" = "$FRAMES" ] || die "inspect run $i: committed_frames $(json "$out" result committed_frames), expected all $FRAMES"
    [ "$(json "$out" result first_invalid_frame)" = null ] || die "inspect run $i: first_invalid_frame $(json "$out" result first_invalid_frame) in an intact -wal"
    [ "$(json "$out" result dropped_commits)" = 0 ] || die "inspect run $i: dropped_commits $(json "$out" result dropped_commits) in an intact -wal"
    [ "$(hot_print)" = "$HOT_PRINT" ] || die "inspect run $i: the hot files changed: $(hot_print), were $HOT_PRINT"
    add inspect "$T_SEC" "$T_RSS"
    say "inspect run $i: ${T_SEC}s, ${T_RSS} KiB peak; $FRAMES frames committed, fits: $(json "$out" result fits)"
}

run_repair() {  # run_repair RUN
    local i=$1 out="$WORK/repair.out" err="$WORK/repair.err" rc=0 forensic aside check
    reset_copies
    torn_copy "$R_DIR"
    timed "$out" "$err" env ABATHUR_SERVICES= ABATHUR_TEMP_DIR="$SCRATCH" \
        "$BIN/abathur-walfix" repair --no-services --json --db "$R" --backup-dir "$BACKUPS" --config "$EMPTY_CONF" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "repair run $i: ABATHUR_SERVICES= abathur-walfix repair --no-services --json --db $R --backup-dir $BACKUPS --config $EMPTY_CONF exited $rc, expected 0 (a torn tail drops no commit)"
    fi
    [ ! -e "$R-wal" ] && [ ! -e "$R-shm" ] || die "repair run $i: $R has a -wal or -shm beside it after the repair"
    # The torn -wal, byte for byte, in the forensic copy and in the aside directory the
    # document names.
    forensic=$(json "$out" result forensic_copy)
    case $forensic in "$BACKUPS/forensic/"?*) ;; *) cat "$out" >&2; die "repair run $i: forensic_copy is '$forensic', not under $BACKUPS/forensic" ;; esac
    find "$forensic" -type f -exec sha256sum {} + | grep -q "^$TORN_WAL_SHA " \
        || { cat "$out" >&2; die "repair run $i: no copy of the torn -wal in the forensic copy $forensic"; }
    aside=$(json "$out" result aside_directory)
    case $aside in "$R_DIR/.abathur-aside-"?*) ;; *) cat "$out" >&2; die "repair run $i: aside_directory is '$aside', not an $R_DIR/.abathur-aside-* directory" ;; esac
    find "$aside" -type f -exec sha256sum {} + | grep -q "^$TORN_WAL_SHA " \
        || { cat "$out" >&2; die "repair run $i: the torn -wal is not in the aside directory $aside"; }
    check=$(sqlite3 -batch -init /dev/null "$R" "PRAGMA quick_check")
    [ "$check" = ok ] || die "repair run $i: quick_check of the repaired database said: $check"
    REPAIR_PRINT=$(fingerprint "$R")
    add repair "$T_SEC" "$T_RSS"
    say "repair run $i: ${T_SEC}s, ${T_RSS} KiB peak; forensic copy ${forensic#"$BACKUPS/"}, -wal aside in ${aside#"$R_DIR/"}; bench_commit and priority sum: $REPAIR_PRINT"
}

run_baseline() {  # run_baseline RUN
    local i=$1 out="$WORK/baseline.out" err="$WORK/baseline.err" rc=0
    reset_copies
    torn_copy "$B_DIR"
    timed "$out" "$err" sqlite3 -batch -init /dev/null "$B" "PRAGMA quick_check" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "baseline run $i: sqlite3 $B 'PRAGMA quick_check' exited $rc"
    fi
    [ "$(cat "$out")" = ok ] || die "baseline run $i: quick_check said: $(head -n 5 "$out")"
    [ ! -s "$err" ] || { cat "$err" >&2; die "baseline run $i: unexpected output on stderr"; }
    [ ! -e "$B-wal" ] || die "baseline run $i: $B-wal is still there after sqlite3 closed"
    BASELINE_PRINT=$(fingerprint "$B")
    add baseline "$T_SEC" "$T_RSS"
    say "baseline run $i: ${T_SEC}s, ${T_RSS} KiB peak, ok; bench_commit and priority sum: $BASELINE_PRINT"
}

say "database $DB: $DB_BYTES bytes; hot -wal $WAL_BYTES bytes; $RUNS run(s) per row; work dir $WORK"
say "warming the page cache (untimed read of the hot files)"
cat "$HOT" "$HOT-wal" "$TORN_DIR"/* > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_inspect "$i"
    run_repair "$i"
    run_baseline "$i"
    [ "$REPAIR_PRINT" = "$BASELINE_PRINT" ] || die "run $i: repair and SQLite's recovery disagree: bench_commit and priority sum $REPAIR_PRINT against $BASELINE_PRINT"
    [ "${REPAIR_PRINT%% *}" = "$((COMMITS - 1))" ] || die "run $i: bench_commit ${REPAIR_PRINT%% *} after the torn tail, expected $((COMMITS - 1)) (every transaction but the torn one)"
done
reset_copies
[ "$(sha256sum "$HOT" "$HOT-wal" | cut -d' ' -f1 | tr '\n' ' ')" = "$HOT_SHA" ] || die "inspect changed $HOT or its -wal"

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

NAMES=(inspect repair baseline)
declare -A LABEL=(
    [inspect]="abathur-walfix inspect"
    [repair]="abathur-walfix repair (torn tail)"
    [baseline]="sqlite3 open + quick_check"
)
bench_medians "${NAMES[@]}"

echo "abathur-walfix benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s"
echo "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB); hot -wal: $WAL_BYTES bytes ($((WAL_BYTES / 1048576)) MiB), $FRAMES frames of $PAGE_SIZE bytes, $COMMITS transactions; sqlite3 $(sqlite3 --version | cut -d' ' -f1); abathur-walfix $("$BIN/abathur-walfix" --version 2>/dev/null || echo '?')"
echo "repair and baseline each work on a fresh copy of the database, the -wal with its last frame torn, and the -shm; no services"
echo "median of $RUNS run(s) per row (each column separately); ratio = seconds / baseline seconds"
echo
bench_table 36 baseline "${NAMES[@]}"
