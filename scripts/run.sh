#!/usr/bin/env bash
# Run the web server, a Celery worker, Celery Beat and the reference render worker together;
# Ctrl-C stops them all.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
# config.wsgi / config.celery default to production settings; this is a developer machine.
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-config.settings.local}"
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo "run: stopping web, worker, beat and the render worker"
  kill "${pids[@]}" 2>/dev/null
  wait "${pids[@]}" 2>/dev/null
  exit 0
}
trap stop INT TERM EXIT

$BIN/gunicorn -c config/gunicorn.py config.wsgi:application --bind "127.0.0.1:$PORT" --workers 2 --threads 4 \
  --access-logfile - & pids+=($!)
# A plain worker consumes every queue the project declares (CELERY_TASK_QUEUES).
$BIN/celery -A config worker --concurrency 2 --loglevel INFO & pids+=($!)
$BIN/celery -A config beat --loglevel INFO \
  --scheduler django_celery_beat.schedulers:DatabaseScheduler & pids+=($!)
# The render worker is a separate program holding only its API key (seed_demo wrote it).
RENDER_API_URL="http://127.0.0.1:$PORT" RENDER_API_KEY="$(cat .var/render-worker.key)" \
  $BIN/python -m workers.render.worker & pids+=($!)
echo "run: web on http://127.0.0.1:$PORT (admin /admin/, API docs /api/docs/, readiness /readyz)"
wait -n "${pids[@]}"
echo "run: a process exited; stopping the others" >&2
stop
