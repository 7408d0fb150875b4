#!/usr/bin/env bash
# Runs a command with moto and Redis up, then stops whatever this run started.
#   scripts/with-services.sh cargo test --workspace
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"

started_before=""
for name in moto redis; do [ -f "$RUN/$name.pid" ] && started_before="$started_before $name"; done

env_lines="$("$ROOT/scripts/services.sh" up)" || { echo "with-services: the services did not start" >&2; exit 1; }
eval "$env_lines"
cleanup() {
  # Stop only what this invocation started: pid files that did not exist before it.
  for name in moto redis; do
    case " $started_before " in *" $name "*) continue ;; esac
    if [ -f "$RUN/$name.pid" ]; then kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true; rm -f "$RUN/$name.pid"; fi
  done
}
trap cleanup EXIT
"$@"
