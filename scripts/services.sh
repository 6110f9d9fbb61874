#!/usr/bin/env bash
# Make sure PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672)
# answer, and PgBouncer and ffmpeg are installed.
# Uses the ones already running; otherwise starts private ones under .var/ (RabbitMQ: Debian's
# service), installing Debian's postgresql / redis-server / rabbitmq-server first when they are
# missing. Safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VAR="$ROOT/.var"
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
AMQP_PORT="${AMQP_PORT:-5672}"

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  echo "services: installing $* from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

wait_for() {  # port, name[, tries of 0.2 s]
  for _ in $(seq 1 "${3:-50}"); do answers "$1" && return 0; sleep 0.2; done
  echo "services: $2 did not start on port $1" >&2; exit 1
}

ensure_postgres() {
  if answers $PG_PORT; then echo "services: PostgreSQL answers on 127.0.0.1:$PG_PORT"; return; fi
  local bindir
  bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ -z "$bindir" ]; then
    apt_install postgresql
    bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    if answers $PG_PORT; then echo "services: PostgreSQL started by its package"; return; fi
  fi
  local data="$VAR/postgres" run="$VAR/postgres-run" owner=()
  mkdir -p "$data" "$run"
  if [ "$(id -u)" = 0 ]; then chown -R postgres:postgres "$data" "$run"; owner=(runuser -u postgres --); fi
  if [ ! -f "$data/PG_VERSION" ]; then
    "${owner[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  "${owner[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w start \
    -o "-p $PG_PORT -k $run -c listen_addresses=127.0.0.1" >/dev/null
  wait_for $PG_PORT PostgreSQL
  echo "services: started a private PostgreSQL in $data"
}

ensure_redis() {
  # The binary is needed even when a Redis already answers: a test starts and kills its own.
  command -v redis-server >/dev/null || apt_install redis-server
  if answers $REDIS_PORT; then echo "services: Redis answers on 127.0.0.1:$REDIS_PORT"; return; fi
  answers $REDIS_PORT && { echo "services: Redis started by its package"; return; }
  mkdir -p "$VAR/redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port $REDIS_PORT --save "" --appendonly no \
    --dir "$VAR/redis" --logfile "$VAR/redis/redis.log"
  wait_for $REDIS_PORT Redis
  echo "services: started a private Redis in $VAR/redis"
}

ensure_rabbitmq() {
  # The tests run the as-deployed worker tests on RabbitMQ too, each run in a virtual host of its
  # own made with rabbitmqctl (which needs root, or sudo without a password).
  if answers $AMQP_PORT; then echo "services: RabbitMQ answers on 127.0.0.1:$AMQP_PORT"; return; fi
  command -v rabbitmq-server >/dev/null || [ -x /usr/sbin/rabbitmq-server ] || apt_install rabbitmq-server
  if ! answers $AMQP_PORT; then
    # The package's service (no systemd in a container: its init script, else the server itself).
    as_root service rabbitmq-server start >/dev/null 2>&1 \
      || as_root sh -c '/usr/sbin/rabbitmq-server >/var/log/rabbitmq/startup.log 2>&1 &'
  fi
  wait_for $AMQP_PORT RabbitMQ 300
  echo "services: started RabbitMQ (Debian's rabbitmq-server) on 127.0.0.1:$AMQP_PORT"
}

ensure_pgbouncer() {
  # Only the binary: a test starts its own PgBouncer in transaction mode in front of PostgreSQL.
  command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_install pgbouncer
  echo "services: PgBouncer installed"
}

ensure_ffmpeg() {
  # The reference render worker (workers/render/) and its tests render with Debian's ffmpeg.
  command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_install ffmpeg
}

ensure_postgres
ensure_redis
ensure_rabbitmq
ensure_pgbouncer
ensure_ffmpeg
