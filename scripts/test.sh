#!/usr/bin/env bash
# The test command. On a fresh machine it installs and starts everything the tests need
# (moto server in .tools/venv, redis-server from Debian), runs every test, and stops what it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
exec scripts/with-services.sh cargo test --workspace --all-targets "$@"
