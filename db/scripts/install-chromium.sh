#!/usr/bin/env bash
# Installs Debian's chromium when /usr/bin/chromium is missing: the web app's
# end-to-end tests (internal/web) drive it headless through the DevTools
# protocol. No browser is downloaded by a tool; the OS package manager
# installs the distribution's build. Elsewhere we print the command to run.
set -euo pipefail

bin=${DBCHAT_CHROMIUM:-/usr/bin/chromium}
# The color emoji font too: the app's 👍 / 👎 buttons would be empty boxes in
# the tests' screenshots (which the README shows) without it.
emoji=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if [ -x "$bin" ] && { [ -f "$emoji" ] || [ -n "${DBCHAT_CHROMIUM:-}" ]; }; then
  echo "chromium: already installed ($("$bin" --version 2>/dev/null | head -n 1))"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ ! -f /etc/debian_version ]; then
  if [ -x "$bin" ]; then
    echo "chromium: installed; without a color emoji font (Debian: fonts-noto-color-emoji) screenshots show emoji as boxes"
    exit 0
  fi
  cat >&2 <<MSG
chromium is missing; the web app's end-to-end tests drive it headless. Install it with one of:
  Debian/Ubuntu (as root): make chromium
  Other: your package manager's chromium, then DBCHAT_CHROMIUM=/path/to/chromium
MSG
  exit 1
fi

echo "chromium: installing the Debian packages (chromium, fonts-noto-color-emoji)"
# A fresh machine may have empty package lists: update once and retry.
pkgs="chromium fonts-noto-color-emoji"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null 2>&1 ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; }

if [ ! -x "$bin" ]; then
  echo "install-chromium: the package installed, but $bin was not found" >&2
  exit 1
fi
echo "chromium: installed $("$bin" --version 2>/dev/null | head -n 1)"
