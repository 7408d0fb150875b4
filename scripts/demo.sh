#!/usr/bin/env bash
# The local demo: starts the emulator and Redis, creates a small demo world, builds the functions,
# invokes them with the fixtures as a user would, and prints what each call did.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${DEMO_INNER:-}" != 1 ]; then
  DEMO_INNER=1 exec scripts/with-services.sh "$0" "$@"
fi

PY="$ROOT/.tools/venv/bin/python"
BIN="$ROOT/target/debug"
export ECS_CLUSTER_NAME=fluidity-demo ECS_SERVICE_NAME=fluidity-server
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
invoke() { # binary, fixture: print the fixture, the answer, and the exit status
  local bin="$1" event="$2" status=0
  echo "\$ $bin $event"
  "$BIN/$bin" "$event" 2>>"$ROOT/.run/demo-logs.jsonl" || status=$?
  echo "  (exit $status; JSON logs in .run/demo-logs.jsonl)"
}

step "Building the functions"
cargo build --workspace --bins --quiet

step "Demo world"
"$PY" scripts/demo_world.py setup
"$PY" scripts/demo_world.py show

step "fluidity-kill: the agent shuts down (API Gateway POST /kill)"
invoke fluidity-kill fixtures/lifecycle/kill/apigateway-post-kill.json
"$PY" scripts/demo_world.py show

step "fluidity-kill: the nightly EventBridge schedule, on a service that is already stopped"
invoke fluidity-kill fixtures/lifecycle/kill/eventbridge-nightly.json
"$PY" scripts/demo_world.py show

step "fluidity-kill: a request that names a service that does not exist"
echo '{"service_name": "no-such-service"}' > "$ROOT/.run/missing.json"
invoke fluidity-kill "$ROOT/.run/missing.json"
