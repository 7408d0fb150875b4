#!/usr/bin/env bash
# The test command. On a fresh machine it installs and starts everything the tests need
# (moto server and cfn-lint in .tools/venv, redis-server from Debian), runs every test, and stops
# what it started: the Rust tests (unit, emulator, Redis, the built binaries on every fixture), then
# the deployment checks (cfn-lint, least privilege, parameters, deploy.sh arguments, the stacks in
# moto, deploy.sh end to end against moto).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec scripts/with-services.sh bash -c '
  set -euo pipefail
  cargo test --workspace --all-targets "$@"
  echo "== deployment checks"
  .tools/venv/bin/cfn-lint deployments/cloudformation/*.yaml && echo "cfn-lint: every template passes"
  .tools/venv/bin/python deployments/tests/check_policies.py
  .tools/venv/bin/python deployments/tests/check_params.py
  deployments/tests/deploy_args.sh
  .tools/venv/bin/python deployments/tests/deploy_to_moto.py
  deployments/tests/deploy_e2e.sh
' test.sh "$@"
