#!/usr/bin/env bash
# Installs the pgvector extension into the newest local PostgreSQL when it is
# missing. Debian bookworm has no pgvector package, but trixie carries its
# source package; we fetch that source through apt with a private sources list
# (the system's apt sources stay untouched) and build it against the local
# server headers. Elsewhere we print the one command that installs it.
set -euo pipefail

pgbin=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$pgbin" ] && command -v pg_config >/dev/null; then pgbin=$(pg_config --bindir); fi
if [ -z "$pgbin" ] || [ ! -x "$pgbin/postgres" ]; then
  echo "install-pgvector: no PostgreSQL server binaries found; install PostgreSQL 15+ (Debian: apt-get install postgresql)" >&2
  exit 1
fi
major=$("$pgbin/postgres" --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)*.*/\1/')
sharedir=/usr/share/postgresql/$major
[ -x "$pgbin/pg_config" ] && sharedir=$("$pgbin/pg_config" --sharedir)

if [ -f "$sharedir/extension/vector.control" ]; then
  echo "pgvector: already installed for PostgreSQL $major"
  exit 0
fi

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null || [ ! -f /etc/debian_version ]; then
  cat >&2 <<MSG
pgvector is missing for PostgreSQL $major. Install it with one of:
  macOS:   brew install pgvector
  Debian/Ubuntu (as root): make pgvector
  Docker:  docker compose up   (uses the pgvector/pgvector image)
MSG
  exit 1
fi

# Reuse the mirror the system already uses for Debian, so no host is named here.
mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -v -e security -e nodesource -e google | sed -E 's/^URIs: *//; s/^deb (\[[^]]*\] )?//; s/ .*//' | head -n 1 || true)
if [ -z "$mirror" ]; then
  echo "install-pgvector: could not find the Debian mirror in /etc/apt sources" >&2
  exit 1
fi

work=$(mktemp -d /tmp/dbchat-pgvector.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "pgvector: installing build dependencies (postgresql-server-dev-$major)"
deps=("postgresql-server-dev-$major" make gcc dpkg-dev)
# A fresh machine may have empty package lists: update once and retry.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${deps[@]}" >/dev/null 2>&1 ||
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${deps[@]}" >/dev/null; }

mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src $mirror trixie main" > "$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root"
  -o "Acquire::Check-Valid-Until=false")
echo "pgvector: fetching the trixie source package"
apt-get "${apt_opts[@]}" update -qq
(cd "$work" && apt-get "${apt_opts[@]}" source -qq --download-only pgvector >/dev/null)
(cd "$work" && dpkg-source -q --no-check -x pgvector_*.dsc src >/dev/null)

echo "pgvector: building against PostgreSQL $major"
make -s -C "$work/src" PG_CONFIG="$pgbin/pg_config" OPTFLAGS="" >/dev/null
make -s -C "$work/src" PG_CONFIG="$pgbin/pg_config" install >/dev/null
echo "pgvector: installed $(grep default_version "$sharedir/extension/vector.control" | tr -d "'")"
