#!/usr/bin/env bash
# make deb-check: the built .deb against lintian, systemd-analyze and man, and its sizes.
set -euo pipefail
deb=${1:?usage: deb-check.sh PACKAGE.deb}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
check() { printf '== %s\n' "$*"; }

check "lintian -I --pedantic"
# Errors and warnings fail; info and pedantic tags are printed for whoever reads the log.
lintian -I --pedantic --fail-on error,warning "$deb" || fail=1

root=$work/root
dpkg-deb -x "$deb" "$root"
dpkg-deb -e "$deb" "$work/control"

check "conffiles"
cat "$work/control/conffiles"
for f in /etc/abathur/abathur.conf /etc/cron.d/abathur-tools; do
  grep -qx "$f" "$work/control/conffiles" || { echo "not a conffile: $f"; fail=1; }
done

check "systemd-analyze verify"
# A fake root: the package's files plus the host's own units (targets the timers need).
cp -rn /lib/systemd/system/. "$root/lib/systemd/system/"
units=$(dpkg-deb -c "$deb" | awk '{print $NF}' | sed -n 's|^\./lib/systemd/system/||p' | grep . | sort)
[ -n "$units" ] || { echo "no units in the package"; fail=1; }
for unit in $units; do
  # --man=no: man(1) on the host cannot see the package's pages; each Documentation=
  # page is looked up in the package below instead.
  if ! out=$(systemd-analyze verify --man=no --root="$root" "/lib/systemd/system/$unit" 2>&1); then
    echo "$unit: $out"; fail=1
  elif [ -n "$out" ]; then
    echo "$unit: $out"; fail=1
  else
    echo "$unit: ok"
  fi
  for doc in $(sed -n 's/^Documentation=//p' "$root/lib/systemd/system/$unit"); do
    page=$(echo "$doc" | sed -n 's/^man:\(.*\)(\([0-9]\))$/\1.\2/p')
    section=${page##*.}
    [ -e "$root/usr/share/man/man$section/$page.gz" ] || { echo "$unit: $doc is not in the package"; fail=1; }
  done
done
for timer in $(printf '%s\n' $units | grep '\.timer$' | sed "s|^|$root/lib/systemd/system/|"); do
  for spec in $(sed -n 's/^OnCalendar=//p' "$timer" | tr ' ' '_'); do
    systemd-analyze calendar "${spec//_/ }" >/dev/null || { echo "$timer: bad OnCalendar $spec"; fail=1; }
    echo "$(basename "$timer"): OnCalendar=${spec//_/ } ok"
  done
  grep -qx 'Persistent=true' "$timer" || { echo "$timer: no Persistent=true"; fail=1; }
  grep -q '^RandomizedDelaySec=' "$timer" || { echo "$timer: no RandomizedDelaySec"; fail=1; }
done

check "man pages"
for page in "$root"/usr/share/man/man*/*.gz; do
  if out=$(man --warnings -l "$page" 2>&1 >/dev/null) && [ -z "$out" ]; then
    echo "$(basename "$page"): ok"
  else
    echo "$(basename "$page"): $out"; fail=1
  fi
done
for tool in "$root"/usr/sbin/*; do
  name=$(basename "$tool")
  [ -e "$root/usr/share/man/man8/$name.8.gz" ] || { echo "$name: no man page"; fail=1; }
  [ -e "$root/usr/share/bash-completion/completions/$name" ] || { echo "$name: no bash completion"; fail=1; }
done

check "bash completion"
for file in "$root"/usr/share/bash-completion/completions/*; do
  bash -n "$file" && bash -c "set -u; source '$file'; complete -p $(basename "$file")" || fail=1
done

check "maintainer scripts never start a backup"
if grep -h 'abathur-backup.service\|abathur-verify.service' "$work"/control/postinst 2>/dev/null | grep -q 'start'; then
  echo "postinst starts a service"; fail=1
else
  echo "postinst starts timers only: $(grep -o 'abathur-[a-z]*\.timer' "$work/control/postinst" | sort -u | tr '\n' ' ')"
fi

check "backup directory from tmpfiles.d, nothing shipped under /var"
if dpkg-deb -c "$deb" | awk '{print $NF}' | grep -q '^\./var/'; then
  echo "the package ships files under /var"; fail=1
fi
grep -q '^d /var/backups/abathur 0700 root root' "$root/usr/lib/tmpfiles.d/abathur-tools.conf" || { echo "no tmpfiles.d entry"; fail=1; }
grep -q 'systemd-tmpfiles .*--create abathur-tools.conf' "$work/control/postinst" || { echo "postinst does not create it"; fail=1; }
echo "tmpfiles.d: /var/backups/abathur 0700, created at configure"

check "sizes"
deb_bytes=$(stat -c %s "$deb")
installed_kib=$(dpkg-deb -f "$deb" Installed-Size)
echo "package: $deb_bytes bytes ($(( deb_bytes / 1024 )) KiB); installed size: $installed_kib KiB"
echo "Depends: $(dpkg-deb -f "$deb" Depends)"
if [ "$installed_kib" -gt $(( 20 * 1024 )) ]; then
  echo "installed size over the 20 MiB aim"; fail=1
fi

[ "$fail" = 0 ] && echo "deb-check: all checks passed" || { echo "deb-check: FAILED"; exit 1; }
