#!/usr/bin/env bash
# Installs PgBouncer when it is missing. The tests start their own private
# pgbouncer (internal/pgbouncer) in a temp directory on a free port; they
# need only the binary, so the package's own service is kept from starting
# (and stopped, should it have started anyway). Debian/Ubuntu as root:
# apt-get. Elsewhere we print the one command that installs it.
set -euo pipefail

if command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ]; then
  echo "pgbouncer: already installed"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ ! -f /etc/debian_version ]; then
  cat >&2 <<MSG
pgbouncer is missing; the tests run the service behind it. Install it with one of:
  macOS:   brew install pgbouncer
  Debian/Ubuntu (as root): make pgbouncer
  Other:   your package manager's "pgbouncer" package (1.18 or newer)
MSG
  exit 1
fi

# Keep the package's service from starting: invoke-rc.d and deb-systemd-invoke
# both ask /usr/sbin/policy-rc.d, and 101 means "action forbidden". We add
# one only if the system has none, and remove only our own.
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# Temporary, from dbchat install-pgbouncer.sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  ours=1
fi
trap '[ -z "$ours" ] || rm -f "$policy"' EXIT

echo "pgbouncer: installing the Debian package"
# A fresh machine may have empty package lists: update once and retry.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null 2>&1 ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }

# Should the service have started anyway, stop it and keep it from starting
# at boot: nothing of ours may listen on the package's port 6432.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  systemctl disable --now pgbouncer.service >/dev/null 2>&1 || true
fi
for pidfile in /run/postgresql/pgbouncer.pid /var/run/postgresql/pgbouncer.pid; do
  [ -f "$pidfile" ] || continue
  pid=$(cat "$pidfile" 2>/dev/null || true)
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = pgbouncer ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
done

bin=$(command -v pgbouncer || echo /usr/sbin/pgbouncer)
if [ ! -x "$bin" ]; then
  echo "install-pgbouncer: the package installed, but no pgbouncer binary was found" >&2
  exit 1
fi
echo "pgbouncer: installed $("$bin" --version | head -n 1)"
