#!/usr/bin/env bash
# Benchmark: abathur-restore against the plain gunzip + sqlite3 procedure, in the same run,
# restoring one backup of an abathur-shaped database (abathur-demo create: 11 tables, 36
# indexes, WAL mode).
#
#   bash scripts/bench-restore.sh BIN_DIR
#
# Setup (untimed): one backup of the database with
#   abathur-backup --db DB --backup-dir BACKUPS --config EMPTY_CONF
# which prints the path of the BACKUPS/NAME.db.gz it wrote (the manifest is NAME.db.gz.json;
# its database.sha256 is the SHA-256 of the inflated database), and a 1-row database made
# with `abathur-demo create SMALL --rows 1` (~220 KiB).
#
# Rows, each run BENCH_RUNS times (interleaved); the table shows the median of each column:
#   ours      ABATHUR_HEALTH_URL= ABATHUR_SERVICES= abathur-restore --db TARGET/abathur.db
#             --backup-dir BACKUPS --config EMPTY_CONF --no-services NAME.db.gz
#             (no units stopped or started, no health check; everything else a restore does:
#             inflate and check the candidate, safety copy of the database it replaces, the
#             swap, the post-check, the incident record)
#   baseline  sh -c 'gunzip -c BACKUPS/NAME.db.gz > TARGET2/db &&
#                    sqlite3 -batch -init /dev/null TARGET2/db "PRAGMA integrity_check"'
# ratio = seconds / baseline seconds.
#
# The database ours replaces: a restore always replaces an existing database and first makes
# a safety copy of it. Before every ours run TARGET/abathur.db is a fresh copy of the 1-row
# database (no -wal, no -shm), so the safety copy costs next to nothing and the row measures
# the restore of the backup, not the copy of a second database of the same size. The
# baseline replaces nothing and copies nothing.
#
# Every result must be right. After each ours run: exit 0; sha256sum of TARGET/abathur.db
# equals the manifest's database.sha256; no TARGET/abathur.db-wal and no -journal; a safety
# copy of the 1-row database (same SHA-256) under BACKUPS/safety; the .db.gz and its manifest
# unchanged. After each baseline run: integrity_check printed exactly "ok" and TARGET2/db has
# the manifest's SHA-256. Between runs (untimed) the restored files, BACKUPS/safety,
# BACKUPS/incidents and any TARGET/.abathur-aside-* are removed, then `sync`, so no run pays
# for the previous run's dirty pages (ours may fsync what it writes; the baseline does not).
# The .db.gz is read once before the first run, so every run reads it from the page cache.
#
# Environment:
#   BENCH_SIZE_MB  size of the database to create (default 1024)
#   BENCH_RUNS     runs per row (default 3)
#   BENCH_TMP      parent of the temp dir (default /var/tmp); the temp dir is removed at exit
#   BENCH_DB       reuse this database if it exists; if it does not, create it there and keep
#                  it for the next run. Unset: the database lives in the temp dir.
# Nothing may write to the database while it is backed up: the script refuses a database that
# is open in any process. ABATHUR_* variables of the caller are ignored.
#
# Output: an aligned table on stdout, then one line per row:
#   bench: name=... seconds=... peak_rss_kib=... ratio=...
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench-restore.sh abathur-restore "$@"
[ -x "$BIN/abathur-backup" ] || die "$BIN/abathur-backup: missing (run make build)"
bench_require time sqlite3 gzip python3
bench_database

# Free space in the temp dir, at the peak: the database (when it is created there), the
# backup (~0.3x), the restored copy and the baseline's copy (1x each), plus a margin; the
# 1-row database and its safety copies are small. (Taking the backup needs the database, a
# 1x snapshot and the .db.gz, which is less.)
bench_space "$((DB_BYTES * 3 / 10 + 2 * DB_BYTES + DB_BYTES / 10 + 64 * 1048576))" \
    ", its backup, and two restored copies; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"

bench_workdir abathur-bench-restore
BACKUPS="$WORK/backups"
TARGET_DIR="$WORK/target"
TARGET="$TARGET_DIR/abathur.db"
TARGET2_DIR="$WORK/target2"
TARGET2="$TARGET2_DIR/db"
SMALL="$WORK/small.db"
mkdir -m 0700 "$BACKUPS"
mkdir "$TARGET_DIR" "$TARGET2_DIR"

bench_create_database

bench_refuse_holders "stop it first: the backup the benchmark restores must be of a database nothing writes"

# Read the source's schema with immutable=1 (a plain connection to a WAL database would leave
# a -wal and -shm behind).
uri_path() { local p=${1//%/%25}; p=${p//\?/%3f}; p=${p//#/%23}; printf 'file:%s?mode=ro&immutable=1' "$p"; }
SRC_URI=$(uri_path "$DB")
SRC_TABLES=$(sqlite3 -batch -init /dev/null "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
SRC_INDEXES=$(sqlite3 -batch -init /dev/null "$SRC_URI" "SELECT count(*) FROM sqlite_schema WHERE type = 'index'")

# The backup (untimed).
say "taking the backup to restore (untimed): abathur-backup --db $DB --backup-dir $BACKUPS"
if ! "$BIN/abathur-backup" --db "$DB" --backup-dir "$BACKUPS" --config "$EMPTY_CONF" >"$WORK/backup.out" 2>"$WORK/backup.err"; then
    cat "$WORK/backup.out" "$WORK/backup.err" >&2
    die "abathur-backup --db $DB --backup-dir $BACKUPS --config $EMPTY_CONF failed"
fi
[ ! -e "$DB-wal" ] || die "$DB-wal appeared during the backup; something else is writing the database"
GZ=$(tail -n 1 "$WORK/backup.out")
NAME=$(basename "$GZ")
GZ="$BACKUPS/$NAME"
MANIFEST="$GZ.json"
case $NAME in *.db.gz) ;; *) cat "$WORK/backup.out" >&2; die "abathur-backup printed '$NAME', not a .db.gz" ;; esac
[ -f "$GZ" ] || die "abathur-backup printed $NAME, but $GZ does not exist"
[ -f "$MANIFEST" ] || die "no manifest $MANIFEST"
manifest() {  # manifest KEY...  -> the value at that path in the manifest
    python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v[k]
print(v)' "$MANIFEST" "$@"
}
WANT_SHA=$(manifest database sha256) || die "$MANIFEST: no database.sha256"
RESTORED_BYTES=$(manifest database bytes) || die "$MANIFEST: no database.bytes"
[[ $WANT_SHA =~ ^[0-9a-f]{64}$ ]] || die "$MANIFEST: database.sha256 is '$WANT_SHA'"
GZ_BYTES=$(stat -c %s "$GZ")
gz_print() { stat -c '%s %y %i' "$GZ" "$MANIFEST" | tr '\n' ' '; }
GZ_PRINT=$(gz_print)

# The database every ours run replaces (untimed, once).
"$BIN/abathur-demo" create "$SMALL" --rows 1 >"$WORK/small.log" 2>&1 \
    || { cat "$WORK/small.log" >&2; die "abathur-demo create $SMALL --rows 1 failed"; }
[ ! -e "$SMALL-wal" ] || die "abathur-demo create left $SMALL-wal behind"
SMALL_SHA=$(sha256sum "$SMALL" | cut -d' ' -f1)
SMALL_BYTES=$(stat -c %s "$SMALL")

declare -A SEC RSS   # name -> space-separated per-run values
add() { SEC[$1]+="$2 "; RSS[$1]+="$3 "; }

# Untimed, between runs: remove what a run left, and write back dirty pages.
reset_target() {
    rm -f "$TARGET" "$TARGET-wal" "$TARGET-shm" "$TARGET-journal" "$TARGET2"
    rm -rf "$BACKUPS/safety" "$BACKUPS/incidents" "$TARGET_DIR"/.abathur-aside-*
    sync
}

run_ours() {  # run_ours RUN
    local i=$1
    local out="$WORK/ours.out" err="$WORK/ours.err" rc=0 got safety incident
    reset_target
    cp "$SMALL" "$TARGET"
    sync
    timed "$out" "$err" env ABATHUR_HEALTH_URL= ABATHUR_SERVICES= \
        "$BIN/abathur-restore" --db "$TARGET" --backup-dir "$BACKUPS" --config "$EMPTY_CONF" --no-services "$NAME" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "ours run $i: ABATHUR_HEALTH_URL= ABATHUR_SERVICES= abathur-restore --db $TARGET --backup-dir $BACKUPS --config $EMPTY_CONF --no-services $NAME exited $rc"
    fi
    [ -f "$TARGET" ] || { cat "$out" "$err" >&2; die "ours run $i: exit 0, but $TARGET does not exist"; }
    got=$(sha256sum "$TARGET" | cut -d' ' -f1)
    [ "$got" = "$WANT_SHA" ] || { cat "$out" "$err" >&2; die "ours run $i: $TARGET has SHA-256 $got ($(stat -c %s "$TARGET") bytes), the manifest's database.sha256 is $WANT_SHA ($RESTORED_BYTES bytes)"; }
    [ ! -e "$TARGET-wal" ] || die "ours run $i: $TARGET-wal exists after the restore"
    [ ! -e "$TARGET-journal" ] || die "ours run $i: $TARGET-journal exists after the restore"
    safety=""
    if [ -d "$BACKUPS/safety" ]; then
        safety=$(find "$BACKUPS/safety" -type f -exec sha256sum {} + | awk -v s="$SMALL_SHA" '$1 == s && f == "" { f = $2 } END { print f }')
    fi
    [ -n "$safety" ] || { cat "$out" "$err" >&2; die "ours run $i: no safety copy of the replaced database (SHA-256 $SMALL_SHA) under $BACKUPS/safety"; }
    [ "$(gz_print)" = "$GZ_PRINT" ] || die "ours run $i: changed $GZ or its manifest"
    incident=$(sed -n 's/^incident record: //p' "$out" "$err" | tail -n 1)
    add ours "$T_SEC" "$T_RSS"
    say "ours run $i: ${T_SEC}s, ${T_RSS} KiB peak; SHA-256 matches; safety copy ${safety#"$BACKUPS/"}${incident:+; incident record ${incident#"$BACKUPS/"}}"
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
    got=$(sha256sum "$TARGET2" | cut -d' ' -f1)
    [ "$got" = "$WANT_SHA" ] || die "baseline run $i: $TARGET2 has SHA-256 $got, the manifest's database.sha256 is $WANT_SHA"
    add baseline "$T_SEC" "$T_RSS"
    say "baseline run $i: ${T_SEC}s, ${T_RSS} KiB peak, ok"
}

say "database $DB: $DB_BYTES bytes, $SRC_TABLES tables, $SRC_INDEXES indexes; backup $NAME: $GZ_BYTES bytes, inflates to $RESTORED_BYTES; $RUNS run(s) per row; work dir $WORK"
say "warming the page cache (untimed read of the backup)"
cat "$GZ" > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_ours "$i"
    run_baseline "$i"
done
reset_target

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

NAMES=(ours baseline)
declare -A LABEL=(
    [ours]="abathur-restore --no-services"
    [baseline]="gunzip -c + integrity_check"
)
bench_medians "${NAMES[@]}"

echo "abathur-restore benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s"
echo "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB), $SRC_TABLES tables, $SRC_INDEXES indexes; backup: $GZ_BYTES bytes gzip, $RESTORED_BYTES bytes restored; sqlite3 $(sqlite3 --version | cut -d' ' -f1); abathur-restore $("$BIN/abathur-restore" --version 2>/dev/null || echo '?')"
echo "ours replaces a 1-row database ($SMALL_BYTES bytes) each run; no services, no health check"
echo "median of $RUNS run(s) per row (each column separately); ratio = seconds / baseline seconds"
echo
bench_table 32 baseline "${NAMES[@]}"
