#!/usr/bin/env bash
# Installs (if needed) and starts the local AWS emulator (moto server, run by scripts/emulator.py,
# which serves DynamoDB one request at a time) and a real redis-server on 127.0.0.1.
#
#   scripts/services.sh up      start what is not already answering; print the environment to use
#   scripts/services.sh down    stop what this script started (pid files under .run/)
#   scripts/services.sh env     print the environment (export lines) for the running services
#
# Everything lives in git-ignored folders: .tools/ (the Python venv with moto) and .run/ (pids, logs, data).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
RUN="$ROOT/.run"
MOTO_PORT="${MOTO_PORT:-5123}"
REDIS_PORT="${REDIS_PORT:-6390}"
MOTO_URL="http://127.0.0.1:${MOTO_PORT}"

log() { echo "services: $*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

install_moto() {
  # Reinstalled whenever scripts/requirements.txt changes (the stamp holds its checksum).
  local want; want="$(sha256sum "$ROOT/scripts/requirements.txt" | cut -d' ' -f1)"
  if [ "$(cat "$TOOLS/venv/.requirements" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing moto server, cfn-lint and parliament into .tools/venv (PyPI)"
  mkdir -p "$TOOLS"
  [ -x "$TOOLS/venv/bin/python" ] || python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/scripts/requirements.txt"
  echo "$want" >"$TOOLS/venv/.requirements"
}

install_redis() {
  if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then return; fi
  log "installing redis-server (Debian package)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >/dev/null
}

# Any HTTP answer will do (/moto-api/data.json can fail to serialise some state, e.g. RDS instances).
moto_answers() { curl -s -o /dev/null --max-time 2 "$MOTO_URL/moto-api/"; }
redis_answers() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

wait_for() { # name, check function
  for _ in $(seq 1 150); do
    if "$2"; then return 0; fi
    sleep 0.2
  done
  log "$1 did not answer within 30 s; see $RUN/$1.log"
  return 1
}

up() {
  mkdir -p "$RUN"
  install_moto
  install_redis
  if moto_answers; then
    log "moto already answering on $MOTO_URL"
  else
    log "starting the emulator (moto) on $MOTO_URL"
    # moto's request recorder (/moto-api/recorder/*) writes here, not into the working directory.
    MOTO_RECORDER_FILEPATH="$RUN/moto-recording.jsonl" \
      nohup "$TOOLS/venv/bin/python" "$ROOT/scripts/emulator.py" -H 127.0.0.1 -p "$MOTO_PORT" >"$RUN/moto.log" 2>&1 &
    echo $! >"$RUN/moto.pid"
    wait_for moto moto_answers
  fi
  if redis_answers; then
    log "redis already answering on 127.0.0.1:$REDIS_PORT"
  else
    log "starting redis-server on 127.0.0.1:$REDIS_PORT"
    mkdir -p "$RUN/redis"
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir "$RUN/redis" --daemonize yes --pidfile "$RUN/redis.pid" --logfile "$RUN/redis.log"
    wait_for redis redis_answers
  fi
}

down() {
  for name in moto redis; do
    local pidfile="$RUN/$name.pid"
    if [ -f "$pidfile" ]; then
      local pid; pid="$(cat "$pidfile")"
      if kill "$pid" 2>/dev/null; then log "stopped $name (pid $pid)"; fi
      rm -f "$pidfile"
    fi
  done
}

env_lines() {
  cat <<EOT
export AWS_ENDPOINT_URL=$MOTO_URL
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_EC2_METADATA_DISABLED=true
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT
EOT
}

case "${1:-}" in
  up) up; env_lines ;;
  down) down ;;
  env) env_lines ;;
  *) echo "usage: $0 up|down|env" >&2; exit 2 ;;
esac
