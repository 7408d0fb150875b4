#!/usr/bin/env bash
# The test command. On a fresh machine it installs and starts everything the tests need
# (moto server, cfn-lint and parliament in .tools/venv, redis-server from Debian), runs every test, and
# stops what it started: the Rust tests (unit, emulator, Redis, the built binaries on every fixture),
# with the emulator recording every request; then the deployment checks (cfn-lint, each role against
# its function's declared permissions, each recorded call against them, each IAM world's calls
# against the rendered policies at the resource level, parliament, parameters and templates,
# deploy.sh arguments, the stacks in moto, deploy.sh end to end against moto).
#
#   scripts/test.sh [cargo test arguments]     e.g. scripts/test.sh -p fluidity-kill
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The linker writes through mmap: on a full disk it dies of SIGBUS ("ld terminated with signal 7"),
# which names nothing. A clean run needs about 6 GB (docs/benchmarks.md), so say so first.
free_mb=$(df -Pm "${CARGO_TARGET_DIR:-$ROOT}" | awk 'NR == 2 { print $4 }')
if [ "${free_mb:-0}" -lt 6144 ]; then
  echo "test.sh: only ${free_mb} MB free where the build goes; a clean run needs about 6 GB" >&2
fi
exec scripts/with-services.sh bash -c '
  set -euo pipefail
  recorder() { curl -sf -X POST "$AWS_ENDPOINT_URL/moto-api/recorder/$1" >/dev/null; }
  recorder reset-recording
  rm -rf "${CARGO_TARGET_DIR:-target}/iam-worlds"   # the IAM worlds this run writes (shared::testing::iam)
  recorder start-recording
  # Every test, the emulator tests (marked ignored for a plain `cargo test`) included.
  cargo test --workspace --all-targets "$@" -- --include-ignored
  recorder stop-recording
  mkdir -p target
  curl -sf "$AWS_ENDPOINT_URL/moto-api/recorder/download-recording" >target/aws-calls.jsonl
  echo "== deployment checks"
  .tools/venv/bin/cfn-lint deployments/cloudformation/*.yaml && echo "cfn-lint: every template passes"
  .tools/venv/bin/python deployments/tests/check_policies.py
  .tools/venv/bin/python deployments/tests/check_calls.py target/aws-calls.jsonl
  # A filtered run (arguments) has the worlds of the tests it ran only: then no coverage is required.
  .tools/venv/bin/python deployments/tests/check_iam.py target/aws-calls.jsonl $([ $# -eq 0 ] && echo --every-function --defects)
  .tools/venv/bin/python deployments/tests/check_parliament.py
  .tools/venv/bin/python deployments/tests/check_params.py
  .tools/venv/bin/python deployments/tests/check_templates.py
  deployments/tests/deploy_args.sh
  .tools/venv/bin/python deployments/tests/deploy_to_moto.py
  deployments/tests/deploy_e2e.sh
' test.sh "$@"
