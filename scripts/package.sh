#!/usr/bin/env bash
# Builds every function as a Lambda zip: target/lambda/<function>/bootstrap.zip (release, LTO).
#
#   scripts/package.sh            x86_64 (provided.al2023)
#   scripts/package.sh --arm64    arm64 (Graviton); adds the aarch64-unknown-linux-gnu target if missing
#   scripts/package.sh -p NAME    only that package (the bench builds its floor, floor-echo, this way)
#
# A zip per Lambda function: target/lambda/<function>/bootstrap.zip.
#
# cargo-lambda, zig and the AWS CLI come from PyPI into .tools/package (a venv of their own, so the
# CLI's botocore never meets moto's). cargo-lambda fails with --target-dir, so a different target
# folder is given through CARGO_TARGET_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! [ -x .tools/package/bin/cargo-lambda ] || ! [ -x .tools/package/bin/aws ]; then
  echo "package: installing cargo-lambda, zig and the AWS CLI into .tools/package (PyPI)" >&2
  python3 -m venv .tools/package
  .tools/package/bin/pip install -q --disable-pip-version-check -r scripts/requirements-package.txt
fi
export PATH="$ROOT/.tools/package/bin:$PATH"
# arm64 builds need Rust's aarch64 standard library (cargo-lambda links with zig).
if [[ " $* " == *" --arm64 "* ]] && ! rustup target list --installed | grep -qx aarch64-unknown-linux-gnu; then
  echo "package: adding the aarch64-unknown-linux-gnu target (rustup)" >&2
  rustup target add aarch64-unknown-linux-gnu
fi
# A position-dependent executable: no relocations for the dynamic loader to apply at every cold
# start (a quarter of fluidity-kill's init instructions and 50 page faults, measured; the bench
# report has the figures). The executable's own image is then not randomised (libraries, heap and
# stack still are); these binaries run no listener and forbid unsafe code. Only the target's
# artifacts get the flag: cargo-lambda passes --target, so build scripts and proc macros do not.
export RUSTFLAGS="-C relocation-model=static${RUSTFLAGS:+ $RUSTFLAGS}"
# Every Lambda function (the crates under */lambda/), unless packages are named: not the benchmark's
# floor, and not the CLIs, whose SSO and credential_process support (aws-config features) would
# otherwise be unified into the functions' build and grow their zips.
selection=()
for crate in "$ROOT"/actions/lambda/*/ "$ROOT"/lifecycle/lambda/*/; do selection+=(-p "$(basename "$crate")"); done
[[ " $* " == *" -p "* || " $* " == *" --package "* ]] && selection=()
exec cargo lambda build --release --output-format zip "${selection[@]}" "$@"
