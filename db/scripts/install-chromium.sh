#!/usr/bin/env bash
# Installs Debian's chromium when /usr/bin/chromium is missing: the web app's
# end-to-end tests (internal/web) drive it headless through the DevTools
# protocol. No browser is downloaded by a tool; the OS package manager
# installs the distribution's build. Elsewhere we print the command to run.
set -euo pipefail

bin=${DBCHAT_CHROMIUM:-/usr/bin/chromium}
if [ -x "$bin" ]; then
  echo "chromium: already installed ($("$bin" --version 2>/dev/null | head -n 1))"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ ! -f /etc/debian_version ]; then
  cat >&2 <<MSG
chromium is missing; the web app's end-to-end tests drive it headless. Install it with one of:
  Debian/Ubuntu (as root): make chromium
  Other: your package manager's chromium, then DBCHAT_CHROMIUM=/path/to/chromium
MSG
  exit 1
fi

echo "chromium: installing the Debian package"
# A fresh machine may have empty package lists: update once and retry.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

if [ ! -x "$bin" ]; then
  echo "install-chromium: the package installed, but $bin was not found" >&2
  exit 1
fi
echo "chromium: installed $("$bin" --version 2>/dev/null | head -n 1)"
