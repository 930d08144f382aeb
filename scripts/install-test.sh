#!/usr/bin/env bash
# make install-test: a fresh Debian 12 (debootstrap --variant=minbase) with no Swift toolchain,
# the .deb installed with apt-get, every tool's --help, a real backup -> verify -> restore
# cycle on a demo database, abathur-restore (list, plan, a real restore, a drill), and a purge
# that keeps the backups.
set -euo pipefail
deb=$(readlink -f "${1:?usage: install-test.sh PACKAGE.deb}")
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d "${INSTALL_TEST_TMP:-/var/tmp}/abathur-install-test.XXXXXX")
cleanup() {
  for m in proc dev/pts dev; do umount "$root/$m" 2>/dev/null || true; done
  rm -rf "$root"
}
trap cleanup EXIT
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 "$@"; }
step() { printf '== %s\n' "$*"; }

# The same Debian mirror this machine's apt uses.
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list)

step "debootstrap --variant=minbase bookworm"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -20 "$root.log"; exit 1; }
rm -f "$root.log"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
if in_root sh -c 'command -v swift'; then echo "a Swift toolchain in the test root"; exit 1; fi

step "apt-get install ./$(basename "$deb")"
cp "$deb" "$root/tmp/"
in_root apt-get update -qq
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "/tmp/$(basename "$deb")" sqlite3 >/dev/null
in_root dpkg -s abathur-tools | grep -E '^(Version|Installed-Size|Depends):'

step "every tool is installed and answers --help"
# The binary is the one list of tools (ToolMain.commands); nothing else is in /usr/sbin.
tools=$(in_root /usr/lib/abathur-tools/abathur-tools --list-tools)
[ -n "$tools" ] || { echo "abathur-tools --list-tools lists no tool"; exit 1; }
[ "$(in_root sh -c 'ls /usr/sbin/abathur-*' | xargs -n1 basename | sort)" = "$(printf '%s\n' $tools | sort)" ] \
  || { echo "/usr/sbin/abathur-* is not the tool list: $tools"; exit 1; }
for tool in $tools; do
  in_root "$tool" --help >/dev/null
  for f in /usr/sbin/$tool /usr/share/man/man8/$tool.8.gz /usr/share/bash-completion/completions/$tool; do
    [ -e "$root$f" ] || { echo "missing $f"; exit 1; }
  done
  echo "$tool --help, man page, completion: ok"
done
for f in /etc/abathur/abathur.conf /etc/cron.d/abathur-tools /lib/systemd/system/abathur-backup.timer \
         /usr/share/man/man7/abathur-tools.7.gz /lib/systemd/system/abathur-integrity.timer \
         /lib/systemd/system/abathur-restore-drill.service /lib/systemd/system/abathur-restore-drill.timer \
         /lib/systemd/system/abathur-diskcheck.service /lib/systemd/system/abathur-diskcheck.timer; do
  [ -e "$root$f" ] || { echo "missing $f"; exit 1; }
done
in_root abathur-backup --print-config | grep -E '^(database|backup_dir)='

step "backup -> verify -> restore on a demo database"
mkdir -p "$root/var/lib/abathur"
"$here/build/bin/abathur-demo" create "$root/var/lib/abathur/abathur.db" --rows 3000
tasks=$(in_root sqlite3 -readonly /var/lib/abathur/abathur.db 'SELECT count(*) FROM tasks')
in_root abathur-backup
in_root abathur-backup verify --all
in_root abathur-backup status
in_root abathur-integrity
in_root abathur-integrity --all-backups
backup=$(in_root sh -c 'ls -t /var/backups/abathur/abathur_*.db.gz | head -1')
in_root sh -c "gunzip -c '$backup' > /tmp/restored.db"
[ "$(in_root sqlite3 /tmp/restored.db 'PRAGMA integrity_check')" = ok ]
[ "$(in_root sqlite3 /tmp/restored.db 'SELECT count(*) FROM tasks')" = "$tasks" ]
in_root sh -c 'cd /var/backups/abathur && sha256sum -c SHA256SUMS'
echo "restored $backup: integrity ok, $tasks tasks"

step "abathur-restore: list, dry run, restore, drill"
# No systemd runs in the test root: --no-services, and no health URL to ask.
in_root abathur-restore --list | grep -qx "$(basename "$backup")" || { echo "--list does not name $backup"; exit 1; }
in_root abathur-restore --dry-run
# Lose half the tasks, so that the restore has something to bring back.
in_root sqlite3 /var/lib/abathur/abathur.db 'DELETE FROM tasks WHERE rowid % 2 = 0'
damaged=$(in_root sqlite3 -readonly /var/lib/abathur/abathur.db 'SELECT count(*) FROM tasks')
[ "$damaged" -lt "$tasks" ]
if ! out=$(in_root ABATHUR_HEALTH_URL= abathur-restore --no-services); then
  printf '%s\n' "$out"; echo "abathur-restore failed"; exit 1
fi
printf '%s\n' "$out"
printf '%s\n' "$out" | grep -qx "restored /var/lib/abathur/abathur.db from $backup in .*"
[ "$(in_root sqlite3 -readonly /var/lib/abathur/abathur.db 'PRAGMA integrity_check')" = ok ]
[ "$(in_root sqlite3 -readonly /var/lib/abathur/abathur.db 'SELECT count(*) FROM tasks')" = "$tasks" ]
for f in abathur.db-wal abathur.db-shm abathur.db-journal; do
  [ ! -e "$root/var/lib/abathur/$f" ] || { echo "$f beside the restored database"; exit 1; }
done
in_root abathur-integrity
# The safety copy holds the database as it was, and the incident record tells the story.
safety=$(printf '%s\n' "$out" | sed -n 's/^safety copy: //p')
[ -n "$safety" ] && [ -f "$root$safety/abathur.db" ] || { echo "no safety copy"; exit 1; }
[ "$(in_root sqlite3 -readonly "$safety/abathur.db" 'SELECT count(*) FROM tasks')" = "$damaged" ]
record=$(printf '%s\n' "$out" | sed -n 's/^incident record: //p')
[ -n "$record" ] && [ -s "$root$record" ] && [ -s "$root${record%.md}.json" ] || { echo "no incident record"; exit 1; }
grep -q '^## Timeline' "$root$record" && grep -q '^## Resolution' "$root$record" && grep -q 'Result: \*\*restored\*\* (exit 0)' "$root$record" \
  || { cat "$root$record"; echo "incomplete incident record"; exit 1; }
drill=$(in_root abathur-restore --drill) || { printf '%s\n' "$drill"; echo "abathur-restore --drill failed"; exit 1; }
printf '%s\n' "$drill"
printf '%s\n' "$drill" | grep -q "^drill: $backup restored and checked in "
[ -z "$(ls -A "$root/var/tmp" | grep '^\.abathur-tmp-' || true)" ] || { echo "the drill left its scratch copy"; exit 1; }
echo "abathur-restore: restored $tasks tasks, safety copy $safety, incident record $record"

step "purge removes the configuration, never the backups"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq abathur-tools >/dev/null
[ ! -e "$root/etc/abathur/abathur.conf" ] || { echo "config left after purge"; exit 1; }
for tool in $tools; do [ ! -e "$root/usr/sbin/$tool" ] || { echo "$tool left after purge"; exit 1; }; done
[ -e "$root$backup" ] || { echo "purge removed a backup"; exit 1; }
echo "install-test: all checks passed"
