#!/usr/bin/env bash
# How long the service is down for a migration: `abathur-restore --migrate milestone-3-down`
# on an abathur-shaped database (abathur-demo create: 11 tables, 36 indexes, WAL mode) of
# BENCH_SIZE_MB (default 1024), each round on a fresh copy. The units are a stand-in
# `systemctl` first on PATH that only logs (there is no abathur service here): what is timed
# is the tool's own work between "stop units" and "start units" (units_stopped_ms in --json),
# and the whole run. Baseline in the same run: the runbook's way, `sqlite3` running the same
# file on a copy, with nothing checked and no backup.
#
#   bash scripts/bench-migrate.sh BIN_DIR
#   BENCH_DB, BENCH_SIZE_MB, BENCH_RUNS (default 3), BENCH_TMP: as in bench-lib.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/bench-lib.sh"
bench_init "$0" abathur-restore "$@"
bench_require time sqlite3 gzip python3
bench_database
# A copy per round, its safety copy, the candidate, the pre-migrate backup (compressed), a margin.
bench_space "$((4 * DB_BYTES + 64 * 1048576))" " and the copies a migration makes; set BENCH_TMP, BENCH_DB or BENCH_SIZE_MB"
bench_workdir abathur-bench-migrate
bench_create_database
bench_refuse_holders "stop it first: the benchmark migrates copies of it"

MIGRATION="$here/../migrations/milestone-3-down.sql"
[ -f "$MIGRATION" ] || die "$MIGRATION: missing"
mkdir -p "$WORK/bin"
printf '#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s/systemctl.log"\n' "$WORK" > "$WORK/bin/systemctl"
chmod 0755 "$WORK/bin/systemctl"
printf 'services = abathur-api abathur-workers abathur-document-sync\nhealth_url =\nexpect_min_indexes = 33\n' > "$WORK/bench.conf"

ours=() stopped=() base=()
for round in $(seq 1 "$RUNS"); do
    live="$WORK/live-$round"
    mkdir -m 0700 "$live" "$WORK/backups-$round"
    cp "$DB" "$live/abathur.db"
    timed "$WORK/ours-$round.json" "$WORK/ours-$round.err" env PATH="$WORK/bin:$PATH" "$BIN/abathur-restore" --config "$WORK/bench.conf" \
        --db "$live/abathur.db" --backup-dir "$WORK/backups-$round" --migrate "$MIGRATION" --json \
        || { cat "$WORK/ours-$round.err" >&2; die "round $round: the migration failed"; }
    ours+=("$T_SEC")
    ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["result"]["units_stopped_ms"])' "$WORK/ours-$round.json")
    stopped+=("$(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')")
    say "round $round: migrate ${T_SEC}s, units stopped $(awk -v ms="$ms" 'BEGIN { printf "%.3f", ms / 1000 }')s, peak ${T_RSS} KiB"
    rm -rf "$live" "$WORK/backups-$round"

    copy="$WORK/baseline-$round.db"
    cp "$DB" "$copy"
    timed /dev/null "$WORK/base-$round.err" sqlite3 "$copy" ".read $MIGRATION" \
        || { cat "$WORK/base-$round.err" >&2; die "round $round: sqlite3 .read failed"; }
    base+=("$T_SEC")
    say "round $round: sqlite3 .read ${T_SEC}s"
    rm -f "$copy" "$copy-wal" "$copy-shm"
done

m_ours=$(median %.3f "${ours[@]}")
m_stopped=$(median %.3f "${stopped[@]}")
m_base=$(median %.3f "${base[@]}")
printf 'abathur-restore --migrate benchmark: %s, %s cores, %s MiB database, median of %s round(s)\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(nproc)" "$((DB_BYTES / 1048576))" "$RUNS"
printf '%-52s %8s\n' row seconds
printf '%-52s %8s\n' "units stopped (stop units .. start units)" "$m_stopped"
printf '%-52s %8s\n' "abathur-restore --migrate milestone-3-down (whole)" "$m_ours"
printf '%-52s %8s\n' "baseline: sqlite3 DB '.read FILE' (no checks)" "$m_base"
printf 'bench: name=units_stopped seconds=%s\nbench: name=migrate seconds=%s\nbench: name=sqlite3_read seconds=%s\n' "$m_stopped" "$m_ours" "$m_base"
