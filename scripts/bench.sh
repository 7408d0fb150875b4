#!/usr/bin/env bash
# The benchmark command: builds every function's release binary and Lambda zip (scripts/package.sh),
# starts moto and Redis, and runs the bench package (scripts/bench/), which writes target/bench/report.md
# and report.json.
#
# Settings (environment): BENCH_COLD_STARTS (20), BENCH_WARM_INVOCATIONS (200),
# BENCH_REAPER_SCALES (100,500,1000); BENCH_ARM64=0 skips the arm64 build whose zip sizes it reports.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/package.sh
# The floor every function is compared with: a bare lambda_runtime echo, same profile and toolchain.
scripts/package.sh -p floor-echo --lambda-dir target/lambda-floor
# arm64 zips too, for their sizes (the measurements run the x86_64 binaries on this machine).
[ "${BENCH_ARM64:-1}" = 0 ] || scripts/package.sh --arm64 --lambda-dir target/lambda-arm64
exec scripts/with-services.sh env PYTHONPATH=scripts .tools/venv/bin/python -m bench
