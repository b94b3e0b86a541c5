#!/usr/bin/env bash
# Installs curl and jq when missing: the README's walkthroughs use them, and
# `make test` runs those walkthroughs as printed
# (internal/cli TestReadmeWalkthroughsRunAsPrinted). On Debian as root the
# OS package manager installs them; elsewhere we print the command to run.
set -euo pipefail

missing=()
for tool in curl jq; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "walkthrough tools: curl and jq already installed"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ ! -f /etc/debian_version ]; then
  echo "${missing[*]} missing: the README's walkthroughs (run by make test) need them; install them with your package manager" >&2
  exit 1
fi

echo "walkthrough tools: installing ${missing[*]}"
# A fresh machine may have empty package lists: update once and retry.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
for tool in "${missing[@]}"; do
  command -v "$tool" >/dev/null || { echo "install-walkthrough-tools: $tool still missing after installing it" >&2; exit 1; }
done
echo "walkthrough tools: installed ${missing[*]}"
