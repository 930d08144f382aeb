#!/usr/bin/env bash
# Benchmark: the service while abathur-backup runs. A writer commits small transactions
# continuously into a copy of an abathur-shaped database (abathur-demo create; the same
# BENCH_SIZE_MB always makes the same file), and its commit latency is measured with no
# backup running, then while abathur-backup backs the same database up, in the same run.
# Issue 14, "The service while backing up": p99 with the backup <= 2x p99 without, and the
# backup still finishes while the writer runs.
#
#   bash scripts/bench-writer.sh BIN_DIR
#
# Setup (untimed): the database is copied to LIVE/abathur.db; then scripts/bench-writer.py
# starts on it as the service would (WAL mode, synchronous=NORMAL, foreign_keys=ON, busy
# timeout 5 s, SQLite's automatic checkpoint), committing BENCH_WRITER_RATE (default 200)
# transactions a second, each BEGIN IMMEDIATE, one short INSERT into audit or UPDATE of one
# row of state (alternating), COMMIT, and logging each one's start and latency (BEGIN to
# COMMIT's return). The script waits for its first commit (it writes "ready" into a FIFO).
#
# Then, BENCH_RUNS rounds (default 3), each:
#   idle    a window of BENCH_WRITER_IDLE_S seconds (default 10) with no backup running
#   backup  abathur-backup --db LIVE/abathur.db --backup-dir BACKUPS-N --config EMPTY_CONF
#           (full checks), timed like every other row (scripts/bench-run.py); the window is
#           the backup's run
# The writer runs through all of it. The commits whose transaction started inside a window
# belong to it; p50, p99 and max are taken over all rounds' windows of a kind together
# (nearest rank), and per round in the JSON file. p99 ratio = backup p99 / idle p99.
# The table has one timed row, the backup under load (no baseline: the latencies are the
# comparison), and the latency lines follow it.
#
# Every result must be right: each backup exits 0 and writes one .db.gz and its manifest,
# whose gzip_readback check is ok and whose gz.bytes is the file's size; in the first round
# the .db.gz is also inflated (untimed) to the manifest's database.sha256. The writer must be
# alive when each backup ends and must have committed inside every window (so the backup
# finished while the writer ran); at the end it is sent SIGTERM and must exit 0 with nothing
# on stderr (an SQLite error, SQLITE_BUSY after 5 s included, ends it with exit 1).
# The p99 target is printed with the figures; a miss does not fail the script.
#
# Database: BENCH_DB is reused when it exists (it is copied, never written); `make bench`
# points it at /var/tmp/abathur-bench-SIZEm.db, shared by every script of the suite.
#
# Environment:
#   BENCH_SIZE_MB        size of the database to create (default 1024)
#   BENCH_RUNS           rounds (default 3)
#   BENCH_WRITER_RATE    the writer's transactions a second (default 200; 0: flat out)
#   BENCH_WRITER_IDLE_S  seconds of each window with no backup (default 10)
#   BENCH_TMP            parent of the temp dir (default /var/tmp); removed at exit
#   BENCH_DB             reuse this database if it exists; if it does not, create it there
#                        and keep it. Unset: the database lives in the temp dir.
#   BENCH_OUT            where the JSON and the table go (default build/bench): writer-SIZEm.json
# ABATHUR_* variables of the caller are ignored.
#
# Output: the table on stdout, one `bench:` line for the backup row, `bench: json=PATH`, then
# the latencies and one line `bench: name=writer idle_p50_us=... idle_p99_us=...
# backup_p50_us=... backup_p99_us=... p99_ratio=...`.
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench-writer.sh abathur-backup "$@"
bench_require sqlite3 gzip
RATE=${BENCH_WRITER_RATE:-200}
IDLE=${BENCH_WRITER_IDLE_S:-10}
[[ $RATE =~ ^[0-9]+$ ]] || die "BENCH_WRITER_RATE must be a whole number of transactions a second, not '$RATE'"
[[ $IDLE =~ ^[1-9][0-9]*$ ]] || die "BENCH_WRITER_IDLE_S must be a positive whole number of seconds, not '$IDLE'"
bench_database

# Free space: the live copy (1x) and its -wal (it grows while a backup holds its snapshot),
# the backup's snapshot (1x) and .db.gz (~0.3x), the first round's inflated copy in a pipe
# (none), and a margin.
bench_space "$((DB_BYTES * 2 + DB_BYTES * 3 / 10 + DB_BYTES / 4 + 64 * 1048576))" \
    ", its live copy and -wal, and a backup of it; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"

bench_workdir abathur-bench-writer
LIVE_DIR="$WORK/live"
LIVE="$LIVE_DIR/abathur.db"
LAT="$WORK/latencies"
WINDOWS="$WORK/windows"
READY="$WORK/ready.fifo"
mkdir "$LIVE_DIR"
: > "$WINDOWS"

bench_create_database
bench_refuse_holders "stop it first: the benchmark copies the database"

say "copying the database to $LIVE (untimed)"
cp "$DB" "$LIVE"

# The writer; stopped at exit whatever happens (cleanup removes WORK after).
WPID=""
stop_writer() { [ -z "$WPID" ] || { kill -TERM "$WPID" 2>/dev/null || true; wait "$WPID" 2>/dev/null || true; }; }
trap 'rc=$?; stop_writer; cleanup "$rc"' EXIT   # cleanup exits with the script's status
mkfifo "$READY"
python3 "$BENCH_SCRIPTS/bench-writer.py" write "$LIVE" "$LAT" "$READY" "$RATE" >"$WORK/writer.out" 2>"$WORK/writer.err" &
WPID=$!
# Opening the FIFO blocks until the writer opens it after its first commit; the timeout is
# only there so that a writer that failed before then does not hang the script.
if ! read -r -t 60 ready < "$READY" || [ "$ready" != ready ]; then
    cat "$WORK/writer.err" >&2
    die "the writer did not commit its first transaction within 60 s"
fi
say "writer running (pid $WPID), $RATE transactions a second$([ "$RATE" != 0 ] || echo ' (flat out)')"

writer_alive() {  # writer_alive WHAT
    kill -0 "$WPID" 2>/dev/null || { cat "$WORK/writer.err" >&2; die "$1: the writer is no longer running"; }
}

run_backup() {  # run_backup RUN
    local i=$1 dir="$WORK/backups-$1" t0 t1 files gz want got
    mkdir -m 0700 "$dir"
    t0=$EPOCHREALTIME
    if ! timed "$WORK/backup.log" "$WORK/backup.log" "$BIN/abathur-backup" --db "$LIVE" --backup-dir "$dir" --config "$EMPTY_CONF"; then
        cat "$WORK/backup.log" >&2
        die "backup run $i: abathur-backup --db $LIVE --backup-dir $dir --config $EMPTY_CONF failed while the writer ran"
    fi
    t1=$EPOCHREALTIME
    writer_alive "backup run $i"
    echo "$i backup $t0 $t1" >> "$WINDOWS"
    mapfile -t files < <(find "$dir" -maxdepth 1 -type f -name '*.db.gz')
    [ ${#files[@]} -eq 1 ] || die "backup run $i: expected one .db.gz in $dir, found: $(ls -A "$dir" | tr '\n' ' ')"
    gz=${files[0]}
    [ -f "$gz.json" ] || die "backup run $i: no manifest $gz.json"
    [ "$(manifest_value "$gz.json" gz bytes)" = "$(stat -c %s "$gz")" ] || die "backup run $i: the manifest's gz.bytes is not the size of $gz"
    python3 -c 'import json, sys
checks = {c["name"]: c["ok"] for c in json.load(open(sys.argv[1]))["checks"]}
sys.exit(0 if checks.get("gzip_readback") is True and all(checks.values()) else 1)' "$gz.json" \
        || die "backup run $i: the manifest of $gz does not have every check ok, gzip_readback included"
    bench_record backup "$(stat -c %s "$gz")"
    if [ "$i" = 1 ]; then
        want=$(manifest_value "$gz.json" database sha256)
        got=$(gunzip -c "$gz" | sha256) || die "backup run $i: $gz does not gunzip"
        [ "$got" = "$want" ] || die "backup run $i: $gz inflates to SHA-256 $got, its manifest says $want"
    fi
    say "backup run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ${T_ANON} KiB anon, exit 0 while the writer ran"
    rm -rf "$dir"
}

say "database $DB: $DB_BYTES bytes; $RUNS round(s) of ${IDLE}s idle then a backup; work dir $WORK"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    t0=$EPOCHREALTIME
    sleep "$IDLE"   # the idle window's length: a measurement period, not synchronisation
    t1=$EPOCHREALTIME
    writer_alive "idle window $i"
    echo "$i idle $t0 $t1" >> "$WINDOWS"
    say "idle window $i: ${IDLE}s"
    run_backup "$i"
done

kill -TERM "$WPID"
rc=0
wait "$WPID" || rc=$?
WPID=""
[ "$rc" -eq 0 ] || { cat "$WORK/writer.err" >&2; die "the writer exited $rc"; }
[ ! -s "$WORK/writer.err" ] || { cat "$WORK/writer.err" >&2; die "the writer wrote to stderr"; }
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

python3 "$BENCH_SCRIPTS/bench-writer.py" summary "$LAT" "$WINDOWS" "$WORK/latency.json" "$WORK/latency.txt" \
    || die "the writer did not commit in every window (or bench-writer.py summary failed)"
SUMMARY=$(cat "$WORK/latency.json")

META=$(json_meta benchmark writer script scripts/bench-writer.sh \
    title "writer latency while abathur-backup runs: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s" \
    notes "@json:$(json_list \
        "database: a copy of $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB); writer: scripts/bench-writer.py, $RATE tx/s, WAL, synchronous=NORMAL; $(python3 -c 'import sqlite3; print("SQLite", sqlite3.sqlite_version)')" \
        "$RUNS round(s): ${IDLE}s with no backup, then abathur-backup (full checks) of the same database; wall, cpu: medians; rss, anon: the highest of all runs (KiB)")" \
    database "$DB" database_bytes "@json:$DB_BYTES" size_mb "@json:$SIZE_MB" runs "@json:$RUNS" cores "@json:$(nproc)" \
    load_start "$LOAD_START" load_end "$LOAD_END" writer_rate "@json:$RATE" idle_window_s "@json:$IDLE" \
    latency "@json:$SUMMARY")
bench_report writer "$META" "backup=abathur-backup while the writer commits="
echo
cat "$WORK/latency.txt"
