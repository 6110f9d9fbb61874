#!/usr/bin/env bash
# Make sure pg_dump/pg_restore of the server's major version are installed (backups need them:
# an older pg_dump refuses a newer server, and a newer one writes archives an older pg_restore
# cannot read). Detects the server's major version (psql, else a query through the venv's
# psycopg), checks /usr/lib/postgresql/<major>/bin/pg_dump, installs Debian's
# postgresql-client-<major> when it is missing or of another version. The app finds the tools
# through PG_BIN_DIR, which defaults to that folder when present. Safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || PY=python3

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

server_major() {
  "$PY" - <<'PY' 2>/dev/null && return 0
import os, sys
sys.path.insert(0, os.getcwd())
import environ, psycopg
environ.Env.read_env(".env", overwrite=False)
cfg = environ.Env.db_url_config(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saas"))
with psycopg.connect(host=cfg["HOST"] or "127.0.0.1", port=cfg["PORT"] or 5432, user=cfg["USER"] or "postgres",
                     password=cfg["PASSWORD"] or None, dbname="postgres", connect_timeout=5) as conn:
    print(conn.info.server_version // 10000)
PY
  command -v psql >/dev/null && psql -h 127.0.0.1 -U postgres -d postgres -Atc "SHOW server_version_num" \
    | awk '{ print int($1 / 10000) }'
}

cd "$ROOT"
major="$(server_major || true)"
if [ -z "$major" ]; then echo "pgclient: cannot reach PostgreSQL to read its version" >&2; exit 1; fi
bindir="/usr/lib/postgresql/$major/bin"
have="$("$bindir/pg_dump" --version 2>/dev/null | awk '{ split($3, v, "."); print v[1] }' || true)"
if [ "$have" != "$major" ]; then
  echo "pgclient: installing postgresql-client-$major (server is PostgreSQL $major)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-client-$major" >/dev/null
  have="$("$bindir/pg_dump" --version | awk '{ split($3, v, "."); print v[1] }')"
  [ "$have" = "$major" ] || { echo "pgclient: pg_dump $major not found in $bindir" >&2; exit 1; }
fi
echo "pgclient: $("$bindir/pg_dump" --version) in $bindir (PG_BIN_DIR defaults to it)"
