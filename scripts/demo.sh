#!/usr/bin/env bash
# make demo: an abathur-shaped database in WAL mode, a writer hammering it, and the whole
# backup story: take, verify, check, salvage a deliberately damaged copy (abathur-integrity
# --recover), restore with nothing but gunzip, status; then abathur-restore:
# a drill, a plan, a refusal while the database is in use, and a real restore; then
# abathur-restore --migrate: the runbook's milestone-3 rollback, a dry run while the service
# writes, then for real through the safe path; then abathur-walfix: a crash leaves a hot
# -wal with one rotten bit, inspect reports the commits SQLite would silently drop, and
# repair --beyond-break keeps every one of them; then abathur-diskcheck: the report, a
# reserve, and the plan for a full disk with its numbers.
set -euo pipefail
bin=$(cd "${1:-build/bin}" && pwd)
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/abathur-demo.XXXXXX")
writer=
cleanup() {
  [ -n "$writer" ] && kill "$writer" 2>/dev/null && wait "$writer" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export ABATHUR_DB=$work/live/abathur.db ABATHUR_BACKUP_DIR=$work/backups ABATHUR_CONFIG=/dev/null
# The demo has no systemd units (so no health check either: nothing starts a service); the
# restored database is checked with the demo's own invariant check instead.
export ABATHUR_SERVICES= ABATHUR_TEMP_DIR=$work
mkdir -p "$work/live"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. A demo database shaped like abathur's (its 9 tables and milestone 3's document_embeddings and document_embeddings_data: 11 tables, 36 indexes, WAL mode)"
show "$bin/abathur-demo" create "$ABATHUR_DB" --rows 20000

step "2. A writer commits transfers and sequence numbers while we back up"
"$bin/abathur-demo" write "$ABATHUR_DB" --seconds 120 --rate 300 >/dev/null &
writer=$!
sleep 1
echo "writer running (pid $writer), sequence now $("$bin/abathur-demo" seq "$ABATHUR_DB")"

step "3. Take a backup: online snapshot, checks, gzip, read-back, manifest, SHA256SUMS"
show "$bin/abathur-backup" --verbose
backup=$(ls -t "$ABATHUR_BACKUP_DIR"/abathur_*.db.gz | head -1)
show "$bin/abathur-backup" --label pre-demo-upgrade
show ls -l "$ABATHUR_BACKUP_DIR"

step "4. Verify every stored backup (CRC, SHA-256, integrity, schema, row counts)"
show "$bin/abathur-backup" verify --all

step "4b. Check the live database while the writer runs (read-only, its -wal/-shm untouched)"
show "$bin/abathur-integrity"
show "$bin/abathur-integrity" --all-backups --nagios

step "4c. Salvage: a copy of the newest backup with one table interior page zeroed; abathur-integrity --recover reads the pages itself and finds the leaves below it"
# Only a copy is damaged: the live database and the backups are never touched.
mkdir "$work/salvage"
newest=$(ls -t "$ABATHUR_BACKUP_DIR"/*.db.gz | head -1)
show sh -c "gunzip -c '$newest' > '$work/salvage/damaged.db'"
cp "$work/salvage/damaged.db" "$work/salvage/original.db"
cat > "$work/zero-interior-page.py" <<'EOF'
import sqlite3, sys
path = sys.argv[1]
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
page_size = db.execute("PRAGMA page_size").fetchone()[0]
# dbstat: the interior pages of each table's b-tree (path '/' is the root). A non-root one
# of the table with the most, else a root; its leaves stay intact, only their parent goes.
tables = [r[0] for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
interior = [(name, pageno, p) for name, pageno, p in db.execute("SELECT name, pageno, path FROM dbstat WHERE pagetype = 'internal'") if name in tables]
below_root = [t for t in interior if t[2] != "/"]
choice = below_root or interior
if not choice:
    sys.exit("no table has an interior page")
most = max({t[0] for t in choice}, key=lambda n: sum(1 for t in choice if t[0] == n))
name, page, where = next(t for t in choice if t[0] == most)
leaves = db.execute("SELECT count(*) FROM dbstat WHERE name = ? AND path LIKE ? AND pagetype = 'leaf'", (name, where + "%")).fetchone()[0]
db.close()
with open(path, "r+b") as f:
    f.seek((page - 1) * page_size)
    f.write(bytes(page_size))
print(f"zeroed page {page} ({page_size} bytes): an interior page of table {name} (b-tree path {where}), parent of {leaves} leaf page(s)")
EOF
show python3 "$work/zero-interior-page.py" "$work/salvage/damaged.db"
echo "SQLite on the damaged copy:"
show sqlite3 "$work/salvage/damaged.db" "PRAGMA integrity_check" | head -3 || true
rc=0
show "$bin/abathur-integrity" --recover "$work/salvage/salvaged.db" "$work/salvage/damaged.db" || rc=$?
echo "(exit $rc: 1 = written and sound, but damage was met)"
case $rc in 0 | 1) ;; *) echo "demo: abathur-integrity --recover exited $rc" >&2; exit 1 ;; esac
echo "Per table, rows in the undamaged copy and in the salvaged database:"
for table in $(sqlite3 "$work/salvage/original.db" "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"); do
  printf '  %-26s %8s -> %8s\n' "$table" "$(sqlite3 "$work/salvage/original.db" "SELECT count(*) FROM \"$table\"")" \
    "$(sqlite3 "$work/salvage/salvaged.db" "SELECT count(*) FROM \"$table\"" 2>/dev/null || echo '?')"
done
show sqlite3 "$work/salvage/salvaged.db" "PRAGMA integrity_check"

step "5. Restore with plain gunzip, as an operator without our tools would"
show sh -c "gunzip -c '$backup' > '$work/restored.db'"
show sqlite3 "$work/restored.db" "PRAGMA integrity_check; SELECT 'tasks: ' || count(*) FROM tasks;"
show "$bin/abathur-demo" check "$work/restored.db"
show sh -c "cd '$ABATHUR_BACKUP_DIR' && sha256sum -c SHA256SUMS"

step "6. Status and retention"
show "$bin/abathur-backup" status --max-age 26h
show "$bin/abathur-backup" prune --dry-run

step "7. abathur-restore: list, rehearse (drill) and plan, while the writer still runs"
show "$bin/abathur-restore" --list
show "$bin/abathur-restore" --drill
show "$bin/abathur-restore" --dry-run

step "8. A restore refuses while something still has the database open (exit 7, nothing changed)"
show "$bin/abathur-restore" || echo "(exit $?)"

step "9. Stop the writer (the service), then restore: checked candidate, safety copy, swap, post-check"
kill "$writer" 2>/dev/null; wait "$writer" 2>/dev/null || true
writer=
show "$bin/abathur-restore" --verbose
show "$bin/abathur-demo" check "$ABATHUR_DB"
record=$(ls -t "$ABATHUR_BACKUP_DIR"/incidents/*.md | head -1)
show sed -n '/^## Timeline/,$p' "$record"

step "9b. Roll milestone 3 (vector search) back, the runbook's 2.3: first a dry run, on a scratch copy, while the service writes"
# The migrations the package installs in /usr/share/abathur-tools/migrations, from this tree.
export ABATHUR_MIGRATIONS_DIR=$repo/migrations
# The writer stops on its own, cleanly: killed in the middle of a transaction (the database
# is in rollback-journal mode since the restore), it would leave a hot -journal behind.
"$bin/abathur-demo" write "$ABATHUR_DB" --seconds 6 --rate 300 >/dev/null &
writer=$!
show "$bin/abathur-restore" --migrate milestone-3-down --dry-run
wait "$writer"
writer=

step "9c. The migration for real: units stopped, nothing holding the database, a pre-migrate backup, the file in one transaction on a copy, foreign keys and schema checked, swap, units started, health check"
# Stand-in units: a systemctl first on PATH that only logs what it is asked (the writer, the
# demo's service, was stopped above). The health check is the demo's invariant check.
mkdir "$work/units"
cat > "$work/units/systemctl" <<'EOF'
#!/bin/sh
echo "systemctl $*" >> "${0%/*}/systemctl.log"
EOF
chmod +x "$work/units/systemctl"
echo "services: abathur-api abathur-workers abathur-document-sync (a stand-in systemctl); health check: abathur-demo check"
(
  export PATH="$work/units:$PATH" ABATHUR_SERVICES="abathur-api abathur-workers abathur-document-sync" \
    ABATHUR_HEALTH_URL= ABATHUR_HEALTH_COMMAND="$bin/abathur-demo check $ABATHUR_DB"
  show "$bin/abathur-restore" --migrate milestone-3-down
)
show cat "$work/units/systemctl.log"
show sqlite3 "$ABATHUR_DB" "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name);"
show "$bin/abathur-demo" check "$ABATHUR_DB"
record=$(ls -t "$ABATHUR_BACKUP_DIR"/incidents/*-migrate.md | head -1)
show cat "$record"
point=$(ls -t "$ABATHUR_BACKUP_DIR"/pre-migrate_*.db.gz | head -1)
echo "The restore point stays: 'abathur-restore ${point##*/}' goes back. Then a fresh backup, of the new schema:"
show "$bin/abathur-backup"

step "10. The service crashes with a hot -wal, and one bit of the -wal rots"
before=$("$bin/abathur-demo" seq "$ABATHUR_DB")
commits=12
# One bit flips in the page data of a frame of the middle commit, on a page that later
# commits write again: SQLite's recovery stops there, although every later frame is intact.
cat > "$work/rot-one-bit.py" <<'EOF'
import struct, sys
path = sys.argv[1]
wal = bytearray(open(path, "rb").read())
page_size = struct.unpack(">I", wal[8:12])[0]
frame_size = 24 + page_size
frames = [struct.unpack(">II", wal[32 + i * frame_size:][:8]) for i in range((len(wal) - 32) // frame_size)]
commits, current = [], []
for index, (page, size) in enumerate(frames):
    current.append(index)
    if size:
        commits.append(current)
        current = []
middle = len(commits) // 2
later = {frames[i][0] for commit in commits[middle + 1:] for i in commit}
victim = next(i for i in commits[middle] if frames[i][0] in later)
wal[32 + victim * frame_size + 24 + page_size // 2] ^= 0x10
open(path, "r+b").write(wal)
print(f"flipped one bit in frame {victim + 1} of {len(frames)} (page {frames[victim][0]}, commit {middle + 1} of {len(commits)}; "
      f"commits {middle + 2} to {len(commits)} write page {frames[victim][0]} again)")
EOF
show "$bin/abathur-demo" write "$ABATHUR_DB" --commits "$commits" --crash
show ls -l "$ABATHUR_DB" "$ABATHUR_DB-wal" "$ABATHUR_DB-shm"
show python3 "$work/rot-one-bit.py" "$ABATHUR_DB-wal"
echo "What SQLite alone makes of it, on a copy: integrity_check says ok, and commits are missing"
mkdir "$work/sqlite-view"
cp "$ABATHUR_DB" "$ABATHUR_DB-wal" "$work/sqlite-view/"
show sqlite3 "$work/sqlite-view/abathur.db" "PRAGMA integrity_check; SELECT 'writer_seq: ' || value FROM state WHERE key = 'writer_seq';"
echo "(the writer committed up to seq $((before + commits)))"

step "11. abathur-walfix inspect reads the -wal offline and reports the commits SQLite would silently drop (exit 4)"
rc=0
show "$bin/abathur-walfix" inspect || rc=$?
echo "(exit $rc)"
[ "$rc" -eq 4 ] || { echo "demo: expected exit 4 (committed data would be lost), got $rc" >&2; exit 1; }

step "12. A repair without a choice refuses (exit 4): forensic copy kept, nothing else changed, the choices explained"
rc=0
show "$bin/abathur-walfix" repair --no-services || rc=$?
echo "(exit $rc)"
[ "$rc" -eq 4 ] || { echo "demo: expected exit 4 (repair refuses to drop commits), got $rc" >&2; exit 1; }
show ls -l "$ABATHUR_DB" "$ABATHUR_DB-wal" "$ABATHUR_DB-shm"

step "13. repair --beyond-break: the committed prefix plus the intact commits after the damaged frame, checked, swapped in"
show "$bin/abathur-walfix" repair --no-services --beyond-break
echo "One settled file, no -wal beside it; the old -wal and -shm kept aside, and the forensic copies:"
show ls -la "$(dirname "$ABATHUR_DB")" "$ABATHUR_BACKUP_DIR/forensic"
show "$bin/abathur-walfix" inspect
show "$bin/abathur-integrity"
show "$bin/abathur-demo" check "$ABATHUR_DB" --min-seq "$((before + commits))"

step "14. abathur-diskcheck: every filesystem the database needs (once each), the database and its -wal, the backups, what the restore and the repair left, whether the next backup and a VACUUM fit"
# Three more backups, a purge that leaves free pages inside the database, and the service
# running again (a hot -wal): something for the steps of the plan to weigh.
for _ in 1 2 3; do "$bin/abathur-backup" >/dev/null; done
show sqlite3 "$ABATHUR_DB" "DELETE FROM audit WHERE id % 2 = 0; SELECT 'freelist pages: ' || freelist_count FROM pragma_freelist_count;"
"$bin/abathur-demo" write "$ABATHUR_DB" --commits 20 --crash >/dev/null
# A 16 MiB ballast file beside the database, which the report creates when it fits.
export ABATHUR_RESERVE=16MiB
rc=0
show "$bin/abathur-diskcheck" || rc=$?
echo "(exit $rc: 0 ok, 1 warning, 6 critical: the level of this machine's disks)"
case $rc in 0 | 1 | 6) ;; *) echo "demo: abathur-diskcheck exited $rc" >&2; exit 1 ;; esac

step "15. The way out of a full disk, planned (--dry-run): each step in order, with the bytes it would free; nothing changes"
# A target no step alone reaches: what the database's filesystem has free now, plus 20 MiB.
# The reserve and the checkpoint are not enough, so the oldest backup goes too (never one of
# the two newest verified, never the manual one), and the plan stops there.
free=$(df -P -B1 "$(dirname "$ABATHUR_DB")" | awk 'NR == 2 { print $4 }')
target=$((free + 20 * 1048576))
before=$(ls -la "$ABATHUR_BACKUP_DIR" "$(dirname "$ABATHUR_DB")" | md5sum)
rc=0
show "$bin/abathur-diskcheck" --dry-run --no-services --target "$target" || rc=$?
echo "(exit $rc)"
case $rc in 0 | 1 | 6) ;; *) echo "demo: abathur-diskcheck --dry-run exited $rc" >&2; exit 1 ;; esac
[ "$(ls -la "$ABATHUR_BACKUP_DIR" "$(dirname "$ABATHUR_DB")" | md5sum)" = "$before" ] \
  || { echo "demo: the dry run changed the backup or the database directory" >&2; exit 1; }
echo "Nothing changed. Never 'find $ABATHUR_BACKUP_DIR -mtime +7 -delete': it removes the newest verified backups as readily as the old ones."

step "Done: the writer never stopped during backups, every backup is consistent and verified, the restore was checked end to end, the migration changed the schema and kept every other row, the damaged -wal lost no commit, and a full disk has a plan that never goes below the floor."
