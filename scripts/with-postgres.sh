#!/usr/bin/env bash
# Run a command beside a throwaway PostgreSQL server:
#   bash scripts/with-postgres.sh COMMAND [ARGS...]
# initdb's a new cluster in a temporary folder, starts it on a free loopback port, runs COMMAND with
# HANEUL_TEST_POSTGRES_URL naming it, then stops the server and removes the folder, whatever COMMAND did.
# The server comes from Debian's postgresql package (scripts/sysdeps.sh installs it). PostgreSQL refuses
# to run as root, so under root the cluster belongs to the unprivileged user `nobody`.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: bash scripts/with-postgres.sh COMMAND [ARGS...]" >&2; exit 2; }

bindir=""
for d in /usr/lib/postgresql/*/bin; do [ -x "$d/postgres" ] && bindir=$d; done
if [ -z "$bindir" ]; then
  bindir=$(dirname "$(command -v postgres 2>/dev/null || true)")
  [ -x "$bindir/postgres" ] || { echo "PostgreSQL is not installed: run \`bash scripts/sysdeps.sh\` as root" \
                                      "(apt-get install postgresql)" >&2; exit 1; }
fi

dir=$(mktemp -d /tmp/haneul-pg.XXXXXX)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as=()
if [ "$(id -u)" = 0 ]; then
  chown nobody "$dir"
  as=(runuser -u nobody --)
fi

stop() {
  "${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${as[@]}" "$bindir/initdb" -D "$dir/data" -U haneul -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
# fsync off: a test cluster lives for one run, and no test outlives the machine's page cache. Commits
# stay synchronous (their WAL is written to the kernel before the answer, which costs no fsync), so a
# test that crashes the server loses no acknowledged commit.
opts="-h 127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=300"
"${as[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$opts" start >/dev/null \
  || { cat "$dir/server.log" >&2; exit 1; }

export HANEUL_TEST_POSTGRES_URL="postgresql+psycopg://haneul@127.0.0.1:$port/postgres"
# what a test needs to crash the server and start it again (tests/platform/platform_helpers.py)
export HANEUL_TEST_POSTGRES_CTL="${as[*]} $bindir/pg_ctl -D $dir/data -l $dir/server.log"
export HANEUL_TEST_POSTGRES_OPTS="$opts"
echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
status=0
"$@" || status=$?
exit $status
