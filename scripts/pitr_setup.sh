#!/usr/bin/env bash
# Point-in-time recovery for a self-hosted PostgreSQL: continuous WAL archiving with pgBackRest
# (Debian's package), then a first full backup. Run it on the database host, as root or as the
# user PostgreSQL runs as; every PostgreSQL and pgBackRest command runs as that user (PG_OS_USER).
# Safe to run again: the configuration is rewritten, the stanza and settings are kept, a new full
# backup is taken. docs/OPERATIONS.md ("Point-in-time recovery") has the whole story.
#
# Settings (environment):
#   PG_CLUSTER=15/main        a Debian cluster (pg_ctlcluster restarts it; PGDATA and PGPORT read from it)
#   PGDATA=/path              or a data directory of its own (pg_ctl restarts it)
#   PGPORT=5432  PGSOCKET=/var/run/postgresql  PG_OS_USER=postgres  PG_BIN_DIR=/usr/lib/postgresql/<v>/bin
#   STANZA=saas               pgBackRest's name for this cluster (PGBACKREST_STANZA in the app)
#   PGBACKREST_CONFIG=/etc/pgbackrest/pgbackrest.conf (PGBACKREST_CONFIG in the app)
#   REPO_PATH=/var/lib/pgbackrest   where backups and WAL go (a second disk, or see below for S3)
#   LOG_PATH=/var/log/pgbackrest  LOCK_PATH=/tmp/pgbackrest
#   RETENTION_FULL=2          full backups kept (with the WAL needed to recover from each)
#   ARCHIVE_TIMEOUT=60        seconds: the longest a quiet server waits before archiving a WAL
#                             segment, so the most writes a lost disk can take with it (the RPO)
#   REPO_EXTRA=               more [global] lines, e.g. for S3: "repo1-type=s3\nrepo1-s3-bucket=…"
#   SKIP_BACKUP=1             configure and check only
set -euo pipefail

PG_OS_USER="${PG_OS_USER:-postgres}"
STANZA="${STANZA:-saas}"
PGBACKREST_CONFIG="${PGBACKREST_CONFIG:-/etc/pgbackrest/pgbackrest.conf}"
REPO_PATH="${REPO_PATH:-/var/lib/pgbackrest}"
LOG_PATH="${LOG_PATH:-/var/log/pgbackrest}"
LOCK_PATH="${LOCK_PATH:-/tmp/pgbackrest}"
RETENTION_FULL="${RETENTION_FULL:-2}"
ARCHIVE_TIMEOUT="${ARCHIVE_TIMEOUT:-60}"
PGSOCKET="${PGSOCKET:-/var/run/postgresql}"

say() { echo "pitr_setup: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi; }

if ! command -v pgbackrest >/dev/null; then
  say "installing pgbackrest from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbackrest >/dev/null
fi

if [ -n "${PG_CLUSTER:-}" ]; then
  read -r _ver _name PGPORT _status _owner PGDATA _log < <(pg_lsclusters -h | awk -v c="${PG_CLUSTER}" '$1"/"$2 == c')
  [ -n "${PGDATA:-}" ] || { echo "pitr_setup: no Debian cluster ${PG_CLUSTER}" >&2; exit 2; }
  PG_BIN_DIR="${PG_BIN_DIR:-/usr/lib/postgresql/${PG_CLUSTER%%/*}/bin}"
fi
: "${PGDATA:?set PG_CLUSTER (a Debian cluster, e.g. 15/main) or PGDATA}"
PGPORT="${PGPORT:-5432}"
if [ -z "${PG_BIN_DIR:-}" ]; then
  PG_BIN_DIR="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
fi
psql_pg() { as_pg "$PG_BIN_DIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGSOCKET" -p "$PGPORT" -d postgres "$@"; }
bre() { as_pg pgbackrest --config="$PGBACKREST_CONFIG" --stanza="$STANZA" "$@"; }

say "configuring stanza ${STANZA} for ${PGDATA} (port ${PGPORT}) in ${PGBACKREST_CONFIG}"
as_root mkdir -p "$(dirname "$PGBACKREST_CONFIG")" "$REPO_PATH" "$LOG_PATH" "$LOCK_PATH"
as_root chown "$PG_OS_USER" "$REPO_PATH" "$LOG_PATH" "$LOCK_PATH"
as_root chmod 750 "$REPO_PATH"
as_root tee "$PGBACKREST_CONFIG" >/dev/null <<CONF
[global]
repo1-path=${REPO_PATH}
repo1-retention-full=${RETENTION_FULL}
log-path=${LOG_PATH}
lock-path=${LOCK_PATH}
log-level-console=warn
log-level-file=info
compress-type=zst
start-fast=y
$(printf '%b' "${REPO_EXTRA:-}")

[${STANZA}]
pg1-path=${PGDATA}
pg1-port=${PGPORT}
pg1-socket-path=${PGSOCKET}
pg1-user=${PG_OS_USER}
CONF
as_root chown "$PG_OS_USER" "$PGBACKREST_CONFIG"
as_root chmod 640 "$PGBACKREST_CONFIG"

# WAL archiving: every completed segment is pushed to the repository; archive_timeout closes a
# segment after that many quiet seconds so it is archived too.
archive_command="pgbackrest --config=${PGBACKREST_CONFIG} --stanza=${STANZA} archive-push %p"
needs_restart="$(psql_pg -Atc "SELECT count(*) FROM pg_settings WHERE (name = 'wal_level' AND setting NOT IN ('replica', 'logical')) OR (name = 'archive_mode' AND setting <> 'on')")"
psql_pg <<SQL
ALTER SYSTEM SET wal_level = 'replica';
ALTER SYSTEM SET archive_mode = 'on';
ALTER SYSTEM SET archive_command = '${archive_command}';
ALTER SYSTEM SET archive_timeout = '${ARCHIVE_TIMEOUT}s';
SQL
if [ "$needs_restart" != "0" ]; then
  say "restarting PostgreSQL (wal_level / archive_mode take effect at start)"
  if [ -n "${PG_CLUSTER:-}" ]; then
    as_root pg_ctlcluster "${PG_CLUSTER%%/*}" "${PG_CLUSTER#*/}" restart
  else
    as_pg "$PG_BIN_DIR/pg_ctl" -D "$PGDATA" -w -t 120 restart -m fast >/dev/null
  fi
else
  psql_pg -c "SELECT pg_reload_conf()" >/dev/null
fi

bre stanza-create
bre check   # switches a WAL segment and waits until the repository has it
say "WAL archiving works (pgbackrest check passed)"

if [ -z "${SKIP_BACKUP:-}" ]; then
  say "taking a full backup"
  bre --type=full backup
fi
bre info
cat <<EOF
pitr_setup: done. Schedule the backups (cron of user ${PG_OS_USER} on this host), e.g.:
  30 2 * * 0    pgbackrest --config=${PGBACKREST_CONFIG} --stanza=${STANZA} --type=full backup
  30 2 * * 1-6  pgbackrest --config=${PGBACKREST_CONFIG} --stanza=${STANZA} --type=diff backup
and restore to a moment with: manage.py backup_restore --to-time '2026-11-22T10:41:00Z' --pgdata DIR --port PORT --yes
EOF
