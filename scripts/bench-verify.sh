#!/usr/bin/env bash
# Benchmark: abathur-backup verify against re-checking a backup by hand with gunzip, sha256sum
# and sqlite3, in the same run, on one backup of an abathur-shaped database (abathur-demo
# create: 11 tables, 36 indexes, WAL mode; the same BENCH_SIZE_MB always makes the same file).
# Issue 14, "Memory": verify's peak RssAnon is one of the figures that must stay <= 64 MiB.
#
#   bash scripts/bench-verify.sh BIN_DIR
#
# Setup (untimed): one backup of the database with
#   abathur-backup --db DB --backup-dir BACKUPS --config EMPTY_CONF
# (BACKUPS/NAME.db.gz and its manifest NAME.db.gz.json, whose database.sha256 is the SHA-256
# of the inflated database); when abathur-backup offers --compress, a second one with
# --compress zstd (NAME.db.zst).
#
# Rows, in this order in every round, BENCH_RUNS rounds (default 3):
#   ours       ABATHUR_TEMP_DIR=WORK/tmp abathur-backup verify NAME.db.gz --db DB
#              --backup-dir BACKUPS --config EMPTY_CONF
#              (gzip CRC and length, SHA-256, header, integrity_check, foreign_key_check,
#              schema, row counts against the manifest)
#   ours_zstd  the same for NAME.db.zst, when abathur-backup offers --compress; else one line
#              says the row is skipped
#   baseline   sh -c 'gunzip -c BACKUPS/NAME.db.gz | tee WORK/tmp/check.db | sha256sum &&
#                     sqlite3 -batch -init /dev/null WORK/tmp/check.db "PRAGMA integrity_check"'
#              (inflate once, hashing and writing the copy integrity_check needs in the same
#              pass; pipefail, so a bad CRC fails the row)
# ratio = our median wall seconds / baseline's (cpu_r: CPU seconds); the columns:
# scripts/bench-run.py and scripts/bench-report.py.
#
# Every result must be right. Ours: exit 0, "BACKUPS/NAME: ok" on stdout, nothing left in
# WORK/tmp. Baseline: sha256sum printed the manifest's database.sha256 and integrity_check
# printed exactly "ok". Neither may change the backups or their manifests (size, mtime,
# inode). Between runs (untimed) WORK/tmp is emptied and `sync` run. The backups are read
# once before the first run, so every run reads them from the page cache.
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
#   BENCH_OUT      where the JSON and the table go (default build/bench): verify-SIZEm.json
# Nothing may write to the database while it is backed up: the script refuses a database that
# is open in any process. ABATHUR_* variables of the caller are ignored.
#
# Output: the table on stdout, one `bench:` line per row, then `bench: json=PATH`.
# Progress goes to stderr. Exit 1 on any failure or any result that is not right.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"

bench_init scripts/bench-verify.sh abathur-backup "$@"
bench_require sqlite3 gzip
bench_database
bench_codec_zstd

# Free space in the temp dir, at the peak: the database (when it is created there), the
# backups (~0.3x each), one inflated copy (1x) and a margin. (Taking a backup needs a 1x
# snapshot besides, which is less.)
bench_space "$((DB_BYTES * 6 / 10 + DB_BYTES + DB_BYTES / 10 + 64 * 1048576))" \
    ", its backups and an inflated copy; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"

bench_workdir abathur-bench-verify
BACKUPS="$WORK/backups"
TEMP="$WORK/tmp"
mkdir -m 0700 "$BACKUPS" "$TEMP"

bench_create_database

bench_refuse_holders "stop it first: the backup must be of a database nothing writes"
bench_source_schema

bench_take_backups "$BACKUPS"
backups_print() { stat -c '%s %y %i' "$GZ" "$GZ.json" ${ZST:+"$ZST" "$ZST.json"} | tr '\n' ' '; }
BACKUPS_PRINT=$(backups_print)

reset_temp() { rm -rf "${TEMP:?}"/* "$TEMP"/.[!.]*; sync; }

run_ours() {  # run_ours ROW RUN NAME
    local row=$1 i=$2 name=$3 out="$WORK/$1.out" err="$WORK/$1.err" rc=0
    reset_temp
    timed "$out" "$err" env ABATHUR_TEMP_DIR="$TEMP" \
        "$BIN/abathur-backup" verify "$name" --db "$DB" --backup-dir "$BACKUPS" --config "$EMPTY_CONF" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "$row run $i: ABATHUR_TEMP_DIR=$TEMP abathur-backup verify $name --db $DB --backup-dir $BACKUPS --config $EMPTY_CONF exited $rc"
    fi
    grep -qxF "$BACKUPS/$name: ok" "$out" || { cat "$out" "$err" >&2; die "$row run $i: no line '$BACKUPS/$name: ok'"; }
    [ -z "$(ls -A "$TEMP")" ] || die "$row run $i: left $(ls -A "$TEMP" | tr '\n' ' ') in $TEMP"
    [ "$(backups_print)" = "$BACKUPS_PRINT" ] || die "$row run $i: changed a backup or its manifest"
    bench_record "$row"
    say "$row run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ${T_ANON} KiB anon; ok"
}

run_baseline() {  # run_baseline RUN
    local i=$1 out="$WORK/baseline.out" err="$WORK/baseline.err" rc=0
    reset_temp
    # shellcheck disable=SC2016
    timed "$out" "$err" bash -c 'set -o pipefail; gunzip -c "$1" | tee "$2" | sha256sum && sqlite3 -batch -init /dev/null "$2" "PRAGMA integrity_check"' \
        _ "$GZ" "$TEMP/check.db" || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$out" "$err" >&2
        die "baseline run $i: gunzip -c $GZ | tee $TEMP/check.db | sha256sum && sqlite3 $TEMP/check.db 'PRAGMA integrity_check' exited $rc"
    fi
    [ "$(sed -n 1p "$out")" = "$WANT_SHA  -" ] || die "baseline run $i: sha256sum printed '$(sed -n 1p "$out")', the manifest's database.sha256 is $WANT_SHA"
    [ "$(sed -n '2,$p' "$out")" = ok ] || die "baseline run $i: integrity_check said: $(sed -n '2,6p' "$out")"
    [ ! -s "$err" ] || { cat "$err" >&2; die "baseline run $i: unexpected output on stderr"; }
    [ "$(backups_print)" = "$BACKUPS_PRINT" ] || die "baseline run $i: changed a backup or its manifest"
    bench_record baseline
    say "baseline run $i: ${T_SEC}s wall, ${T_CPU}s CPU, ok"
}

say "database $DB: $DB_BYTES bytes, $SRC_TABLES tables, $SRC_INDEXES indexes; backup $NAME: $GZ_BYTES bytes${ZST:+, $ZST_NAME: $ZST_BYTES bytes}; $RUNS round(s); work dir $WORK"
[ "$ZSTD" = yes ] || say "skipping the ours_zstd row: abathur-backup does not offer --compress"
say "warming the page cache (untimed read of the backups)"
cat "$GZ" ${ZST:+"$ZST"} > /dev/null
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_START=$(date +%s)

for ((i = 1; i <= RUNS; i++)); do
    run_ours ours "$i" "$NAME"
    [ -z "$ZST" ] || run_ours ours_zstd "$i" "$ZST_NAME"
    run_baseline "$i"
done
reset_temp

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

ROWS=("ours=abathur-backup verify=baseline")
[ -z "$ZST" ] || ROWS+=("ours_zstd=abathur-backup verify (zstd)=baseline")
ROWS+=("baseline=gunzip|tee|sha256sum + integrity_check=")
NOTES=(
    "database: $DB_BYTES bytes ($((DB_BYTES / 1048576)) MiB), $SRC_TABLES tables, $SRC_INDEXES indexes; backup: $GZ_BYTES bytes gzip${ZST:+, $ZST_BYTES bytes zstd}, $RESTORED_BYTES bytes inflated; sqlite3 $(sqlite3 --version | cut -d' ' -f1); $("$BIN/abathur-backup" --version 2>/dev/null || echo '?')"
    "$RUNS round(s), alternating; wall, cpu: medians; rss, anon: the highest of all runs (KiB); ratio, cpu_r: row / baseline"
)
[ "$ZSTD" = yes ] || NOTES+=("ours_zstd: skipped, abathur-backup does not offer --compress")
META=$(json_meta benchmark verify script scripts/bench-verify.sh \
    title "abathur-backup verify benchmark: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $LOAD_START -> $LOAD_END, $(( $(date +%s) - BENCH_START ))s" \
    notes "@json:$(json_list "${NOTES[@]}")" \
    database "$DB" database_bytes "@json:$DB_BYTES" size_mb "@json:$SIZE_MB" runs "@json:$RUNS" cores "@json:$(nproc)" \
    load_start "$LOAD_START" load_end "$LOAD_END" backup "$NAME" backup_bytes "@json:$GZ_BYTES" zstd_row "$ZSTD")
bench_report verify "$META" "${ROWS[@]}"
