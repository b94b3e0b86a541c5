#!/bin/sh
# Reproduces the web app's vendored JavaScript from the pinned, locked npm
# packages here (make web-vendor): installs them exactly as package-lock.json
# says (npm ci, no install scripts, npm's configured registry), copies their
# minified UMD builds into ../static/vendor (embedded in the binary) and
# axe-core into ../testdata (the end-to-end tests inject it; it is not
# served), and records the checksums of the lockfile and of every copied
# file in vendored.sha256.
#
# vendor.sh --check (make verify) needs no network: it fails when the
# committed files differ from the manifest, or the manifest was written for
# another lockfile (run make web-vendor after changing package.json).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
web=$(dirname "$here")
manifest="$here/vendored.sha256"
files="static/vendor/vega.min.js static/vendor/vega-lite.min.js static/vendor/vega-interpreter.min.js
static/vendor/vega-embed.min.js testdata/axe.min.js"

if [ "${1:-}" = --check ]; then
	cd "$web"
	sha256sum --check --quiet --strict "$manifest" ||
		{ echo "internal/web: vendored files are stale: run make web-vendor" >&2; exit 1; }
	for f in $files; do grep -q "  $f\$" "$manifest" || { echo "internal/web: $f missing from $manifest" >&2; exit 1; }; done
	exit 0
fi

cd "$here"
npm ci --ignore-scripts --no-audit --no-fund --silent
mkdir -p "$web/static/vendor" "$web/testdata"
cp node_modules/vega/build/vega.min.js node_modules/vega-lite/build/vega-lite.min.js \
	node_modules/vega-interpreter/build/vega-interpreter.min.js \
	node_modules/vega-embed/build/vega-embed.min.js "$web/static/vendor/"
cp node_modules/axe-core/axe.min.js "$web/testdata/"
cd "$web"
# Drop the builds' source map comments: the maps are not vendored, and the
# browser would ask for them.
for f in $files; do sed -i -e 's@^//# sourceMappingURL=.*$@@' "$f"; done
sha256sum vendor-src/package-lock.json $files > "$manifest"
echo "internal/web: vendored $(grep -c static/ "$manifest") files from the lockfile"
