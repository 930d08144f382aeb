#!/usr/bin/env bash
# Benchmark: the abathur-diskcheck report (and its --dry-run plan) on a backup directory of
# 200 backups, against what the runbook did by hand: `du -sh` of the backup directory and
# `df -h` of the database's, the backups' and the temp directory, in the same run.
#
#   bash scripts/bench-diskcheck.sh BIN_DIR
#
# Setup (untimed):
# - an abathur-shaped database (abathur-demo create, BENCH_SIZE_MB, default 16 MiB here) is
#   copied to LIVE/abathur.db;
# - BENCH_REAL_BACKUPS (5) real backups of it are taken with abathur-backup, with 200
#   transactions of abathur-demo write before each, so that each is a different database;
# - the backup directory then gets BENCH_BACKUPS (200) backups: real backups take seconds
#   each and the shipped build has no settable clock, so the 200 are copies of the real ones
#   (the .db.gz byte for byte: the last week's of the newest real backup, each week before
#   of the one before, down to the oldest, so the database grows week by week), each under
#   its own scheduled name one day apart, ending now, with its manifest rewritten to match
#   (name, created, created_unix; everything else, the hashes included, is the source's and
#   stays true of the copy's bytes), mode 0600, and SHA256SUMS written for all of them. The
#   newest copy is checked with `abathur-backup verify NAME` (gzip CRC, SHA-256, integrity,
#   schema, row counts), `sha256sum -c SHA256SUMS` checks all of them, and every report must
#   count all of them as complete;
# - finally abathur-demo write --commits 50 --crash leaves a hot -wal of a few MiB beside
#   LIVE/abathur.db (about what SQLite's automatic checkpoint lets a running service keep),
#   which the report reads offline.
#
# Rows, each run BENCH_RUNS times (default 7, interleaved); the table shows the median of
# each column:
#   report    abathur-diskcheck --db LIVE/abathur.db --backup-dir BACKUPS --config EMPTY_CONF
#             (every filesystem once, the database header and -wal, the 200 manifests, what
#             restores left, stale temp files, the next backup's and a VACUUM's space, the
#             growth) with temp_dir = WORK/tmp
#   json      the same with --json
#   dry-run   the same with --dry-run --target SIZE --json, SIZE being what the backups'
#             filesystem has free now plus the -wal's blocks (step 2's estimate) plus half of
#             what the backups take: the plan removes about half of them, oldest first (step
#             5), and removes nothing
#   du        du -sh BACKUPS
#   df        df -h LIVE BACKUPS WORK/tmp
# ratio = seconds / du seconds. The wall time is measured around each command with bash's
# $EPOCHREALTIME (microseconds: du and df take milliseconds, below /usr/bin/time's 10 ms),
# the peak RSS by /usr/bin/time; both include starting the process.
#
# Every result must be right: report and json exit 0, 1 or 6 (the level of the machine's
# own disks) and count BENCH_BACKUPS backups, all complete; the dry run plans step 5 with at
# least one backup and leaves every backup in place; du and df exit 0.
#
# Environment:
#   BENCH_SIZE_MB        size of the database to create (default 16 here)
#   BENCH_BACKUPS        backups in the directory (default 200)
#   BENCH_REAL_BACKUPS   real backups the others are copies of (default 5)
#   BENCH_RUNS           runs per row (default 7)
#   BENCH_TMP            parent of the temp dir (default /var/tmp); removed at exit
#   BENCH_DB             reuse this database if it exists (it is copied, never written); if
#                        it does not, create it there and keep it for the next run
# ABATHUR_* variables of the caller are ignored.
#
# Output: an aligned table on stdout, then one line per row:
#   bench: name=... seconds=... peak_rss_kib=... ratio=...
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

BENCH_SIZE_MB=${BENCH_SIZE_MB:-16}
bench_init scripts/bench-diskcheck.sh abathur-diskcheck "$@"
[ -x "$BIN/abathur-backup" ] || die "$BIN/abathur-backup: missing (run make build)"
RUNS=${BENCH_RUNS:-7}
N=${BENCH_BACKUPS:-200}
REAL=${BENCH_REAL_BACKUPS:-5}
[[ $N =~ ^[1-9][0-9]*$ ]] || die "BENCH_BACKUPS must be a positive integer, not '$N'"
[[ $REAL =~ ^[1-9][0-9]*$ ]] && [ "$REAL" -le "$N" ] || die "BENCH_REAL_BACKUPS must be a positive integer no larger than BENCH_BACKUPS, not '$REAL'"
bench_require time python3
bench_database

# Free space: the live copy and its -wal, the real backups and the copies (a .gz is at most
# the database; the demo's compress to about a third), and a margin.
bench_space "$((2 * DB_BYTES + (N + REAL) * DB_BYTES / 2 + 64 * 1048576))" \
    " and $N backups of it; set BENCH_TMP, BENCH_DB, BENCH_SIZE_MB or BENCH_BACKUPS"

bench_workdir abathur-bench-diskcheck
LIVE_DIR="$WORK/live"
LIVE="$LIVE_DIR/abathur.db"
REAL_DIR="$WORK/real"
BACKUPS="$WORK/backups"
TMPD="$WORK/tmp"
mkdir "$LIVE_DIR" "$TMPD"
mkdir -m 0700 "$REAL_DIR" "$BACKUPS"

bench_create_database
bench_refuse_holders "stop it first: the benchmark copies the database"

say "copying the database to $LIVE (untimed)"
cp "$DB" "$LIVE"

# The real backups, each of a different database (untimed).
say "taking $REAL real backups with abathur-backup, 200 transactions apart (untimed)"
SETUP_START=$(date +%s)
for ((i = 1; i <= REAL; i++)); do
    "$BIN/abathur-demo" write "$LIVE" --commits 200 >/dev/null
    env ABATHUR_TEMP_DIR="$TMPD" "$BIN/abathur-backup" --db "$LIVE" --backup-dir "$REAL_DIR" --config "$EMPTY_CONF" >"$WORK/backup.out" 2>&1 \
        || { cat "$WORK/backup.out" >&2; die "abathur-backup $i of $REAL failed"; }
done
REAL_COUNT=$(find "$REAL_DIR" -maxdepth 1 -name 'abathur_*.db.gz' | wc -l)
[ "$REAL_COUNT" -eq "$REAL" ] || die "$REAL_COUNT real backups in $REAL_DIR, expected $REAL"
say "real backups in $(( $(date +%s) - SETUP_START ))s: $(du -sh "$REAL_DIR" | cut -f1)"

# The copies: each real backup's .gz under new scheduled names, a day apart, ending now.
say "copying them to $N backups one day apart, manifests rewritten to their names and dates (untimed)"
python3 - "$REAL_DIR" "$BACKUPS" "$N" <<'EOF'
import json, os, shutil, sys, time
real, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
sources = sorted((json.load(open(os.path.join(real, f))) for f in os.listdir(real) if f.endswith(".db.gz.json")),
                 key=lambda m: m["created_unix"])
now = int(time.time())
sums = []
for k in range(n):
    source = sources[max(0, len(sources) - 1 - (n - 1 - k) // 7)]   # a week per source, newest last
    t = now - (n - 1 - k) * 86400
    name = time.strftime("abathur_%Y-%m-%d_%H-%M-%S.db.gz", time.gmtime(t))
    manifest = dict(source, name=name, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)), created_unix=t)
    shutil.copyfile(os.path.join(real, source["name"]), os.path.join(out, name))
    os.chmod(os.path.join(out, name), 0o600)
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(os.path.join(out, name + ".json"), 0o600)
    sums.append(f"{manifest['gz']['sha256']}  {name}\n")
with open(os.path.join(out, "SHA256SUMS"), "w") as f:
    f.writelines(sums)
os.chmod(os.path.join(out, "SHA256SUMS"), 0o600)
EOF
COPIES=$(find "$BACKUPS" -maxdepth 1 -name 'abathur_*.db.gz' | wc -l)
[ "$COPIES" -eq "$N" ] || die "$COPIES backups in $BACKUPS, expected $N"
(cd "$BACKUPS" && sha256sum --quiet -c SHA256SUMS) || die "sha256sum -c SHA256SUMS failed in $BACKUPS"
NEWEST=$(ls "$BACKUPS" | grep '^abathur_.*\.db\.gz$' | sort | tail -n 1)
env ABATHUR_TEMP_DIR="$TMPD" "$BIN/abathur-backup" verify "$NEWEST" --db "$LIVE" --backup-dir "$BACKUPS" --config "$EMPTY_CONF" >"$WORK/verify.out" 2>&1 \
    || { cat "$WORK/verify.out" >&2; die "abathur-backup verify $NEWEST failed: a copy is not a valid backup"; }
BACKUP_BYTES=$(du -sb "$BACKUPS" | cut -f1)
say "$N backups, $BACKUP_BYTES bytes; $NEWEST verified"

# The service's hot -wal (untimed).
"$BIN/abathur-demo" write "$LIVE" --commits 50 --crash >/dev/null
[ -s "$LIVE-wal" ] || die "the crashed writer left no -wal"
WAL_BYTES=$(stat -c %s "$LIVE-wal")
WAL_ALLOCATED=$(( $(stat -c '%b * %B' "$LIVE-wal") ))
LIVE_BYTES=$(stat -c %s "$LIVE")

json() {  # json FILE EXPR   -> the value of a Python expression over the document d
    python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$@"
}

# precise OUT ERR CMD...   like bench-lib's timed, with the wall time to the microsecond.
precise() {
    local out=$1 err=$2 rc=0 t0 t1; shift 2
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$WORK/t" "$@" >"$out" 2>"$err" || rc=$?
    t1=$EPOCHREALTIME
    T_SEC=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    T_RSS=$(tail -n 1 "$WORK/t")
    return "$rc"
}

declare -A SEC RSS   # name -> space-separated per-run values
add() { SEC[$1]+="$2 "; RSS[$1]+="$3 "; }
DISKCHECK=(env ABATHUR_TEMP_DIR="$TMPD" "$BIN/abathur-diskcheck" --db "$LIVE" --backup-dir "$BACKUPS" --config "$EMPTY_CONF")

# exit 0, 1 or 6: the level of the machine's disks, which is not ours to choose.
level_ok() { [ "$1" -eq 0 ] || [ "$1" -eq 1 ] || [ "$1" -eq 6 ]; }

run_report() {  # run_report RUN
    local i=$1 out="$WORK/report.out" err="$WORK/report.err" rc=0
    precise "$out" "$err" "${DISKCHECK[@]}" || rc=$?
    level_ok "$rc" || { cat "$out" "$err" >&2; die "report run $i: ${DISKCHECK[*]} exited $rc"; }
    grep -qx "backups $BACKUPS: $N ($N verified), .*" "$out" || { cat "$out" >&2; die "report run $i: no line 'backups $BACKUPS: $N ($N verified), ...'"; }
    grep -q '^verdict: ' "$out" || die "report run $i: no verdict line"
    add report "$T_SEC" "$T_RSS"
    say "report run $i: ${T_SEC}s, ${T_RSS} KiB peak, exit $rc"
    REPORT_RC=$rc
}

run_json() {  # run_json RUN
    local i=$1 out="$WORK/json.out" err="$WORK/json.err" rc=0
    precise "$out" "$err" "${DISKCHECK[@]}" --json || rc=$?
    level_ok "$rc" || { cat "$out" "$err" >&2; die "json run $i: exited $rc"; }
    [ "$(json "$out" 'd["result"]["report"]["backups"]["count"], d["result"]["report"]["backups"]["complete"]')" = "($N, $N)" ] \
        || die "json run $i: backups count and complete are $(json "$out" 'd["result"]["report"]["backups"]["count"], d["result"]["report"]["backups"]["complete"]'), expected $N, $N"
    [ "$(json "$out" 'd["result"]["report"]["database"]["wal_bytes"]')" = "$WAL_BYTES" ] || die "json run $i: wal_bytes is not the -wal's $WAL_BYTES"
    add json "$T_SEC" "$T_RSS"
    GROWTH=$(json "$out" 'd["result"]["report"]["growth"]["detail"]')
    say "json run $i: ${T_SEC}s, ${T_RSS} KiB peak; growth: $GROWTH"
}

run_dryrun() {  # run_dryrun RUN
    local i=$1 out="$WORK/dryrun.out" err="$WORK/dryrun.err" rc=0 target planned
    target=$(( $(avail_bytes "$BACKUPS") + WAL_ALLOCATED + BACKUP_BYTES / 2 ))
    precise "$out" "$err" "${DISKCHECK[@]}" --dry-run --target "$target" --json || rc=$?
    level_ok "$rc" || { cat "$out" "$err" >&2; die "dry-run run $i: exited $rc"; }
    planned=$(json "$out" '[s for s in d["result"]["fix"]["steps"] if s["number"] == 5][0]["status"], len([s for s in d["result"]["fix"]["steps"] if s["number"] == 5][0]["removed"])')
    case $planned in "('would run', "[1-9]*) ;; *) cat "$out" >&2; die "dry-run run $i: step 5 is $planned, expected 'would run' with backups to remove" ;; esac
    [ "$(find "$BACKUPS" -maxdepth 1 -name 'abathur_*.db.gz' | wc -l)" -eq "$N" ] || die "dry-run run $i: a backup is gone"
    add dryrun "$T_SEC" "$T_RSS"
    PLANNED=${planned#*, }
    PLANNED=${PLANNED%)}
    say "dry-run run $i: ${T_SEC}s, ${T_RSS} KiB peak; step 5 $planned (target $target bytes free)"
}

run_du() {  # run_du RUN
    local i=$1 out="$WORK/du.out"
    precise "$out" "$out" du -sh "$BACKUPS" || { cat "$out" >&2; die "du run $i failed"; }
    add du "$T_SEC" "$T_RSS"
    say "du run $i: ${T_SEC}s, ${T_RSS} KiB peak: $(cut -f1 "$out")"
}

run_df() {  # run_df RUN
    local i=$1 out="$WORK/df.out"
    precise "$out" "$out" df -h "$LIVE_DIR" "$BACKUPS" "$TMPD" || { cat "$out" >&2; die "df run $i failed"; }
    add df "$T_SEC" "$T_RSS"
    say "df run $i: ${T_SEC}s, ${T_RSS} KiB peak"
}

say "database $LIVE: $LIVE_BYTES bytes, hot -wal $WAL_BYTES bytes; $N backups ($BACKUP_BYTES bytes); $RUNS run(s) per row; work dir $WORK"
say "warming the caches (one untimed run of each)"
"${DISKCHECK[@]}" >/dev/null 2>&1 || true
du -sh "$BACKUPS" >/dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_report "$i"
    run_json "$i"
    run_dryrun "$i"
    run_du "$i"
    run_df "$i"
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

NAMES=(report json dryrun du df)
declare -A LABEL=(
    [report]="abathur-diskcheck"
    [json]="abathur-diskcheck --json"
    [dryrun]="abathur-diskcheck --dry-run --target"
    [du]="du -sh BACKUPS"
    [df]="df -h (3 directories)"
)
bench_medians "${NAMES[@]}"
# Milliseconds matter here: the medians to 0.1 ms.
for n in "${NAMES[@]}"; do
    # shellcheck disable=SC2086
    MSEC[$n]=$(median '%.4f' ${SEC[$n]})
done

echo "abathur-diskcheck benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s"
echo "database: $LIVE_BYTES bytes ($((LIVE_BYTES / 1048576)) MiB) with a hot -wal of $WAL_BYTES bytes; abathur-diskcheck $("$BIN/abathur-diskcheck" --version 2>/dev/null || echo '?')"
echo "backups: $N in $BACKUPS, $BACKUP_BYTES bytes ($((BACKUP_BYTES / 1048576)) MiB): copies of $REAL real backups under their own names, a day apart, manifests rewritten; the report exited $REPORT_RC (the level of this machine's disks)"
echo "the report's growth: $GROWTH; the dry run's step 5 would remove $PLANNED of the $N backups, oldest first"
echo "median of $RUNS run(s) per row (each column separately); ratio = seconds / du seconds"
echo
bench_table 38 du "${NAMES[@]}"
