#!/usr/bin/env bash
# The benchmark command: builds every function's release binary and Lambda zip (scripts/package.sh),
# starts moto and Redis, and runs scripts/bench.py, which writes target/bench/report.md and report.json.
#
# Settings (environment): BENCH_COLD_STARTS (20), BENCH_WARM_INVOCATIONS (200),
# BENCH_REAPER_SCALES (100,500,1000).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/package.sh
exec scripts/with-services.sh .tools/venv/bin/python scripts/bench.py
