#!/bin/sh
# Reproduces vega-lite-v5.schema.json, the official Vega-Lite v5 JSON schema
# the chart tests validate every spec against, from the pinned vega-lite npm
# package (build/vega-lite-schema.json), through npm's configured registry.
# Idempotent: rewrites the file only when it differs, and fails when the
# package's schema no longer matches the recorded SHA-256.
set -eu
VERSION=5.23.0
SHA256=1aeeda8aa44dcce60f6b6fb7d8b650487e3e389a8284a2040e590be9a4c7610e
here=$(cd "$(dirname "$0")" && pwd)
out="$here/vega-lite-v5.schema.json"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "vega-lite@$VERSION" >/dev/null)
tar -xzf "$tmp/vega-lite-$VERSION.tgz" -C "$tmp" package/build/vega-lite-schema.json
got=$(sha256sum "$tmp/package/build/vega-lite-schema.json" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
	echo "vega-lite@$VERSION schema has SHA-256 $got, expected $SHA256" >&2
	exit 1
fi
cmp -s "$tmp/package/build/vega-lite-schema.json" "$out" || cp "$tmp/package/build/vega-lite-schema.json" "$out"
echo "$out: vega-lite@$VERSION"
