#!/usr/bin/env bash
# Mutation testing of the decisions (docs/mutants.md): cargo-mutants changes each function of the
# files below in turn (a `>` to `>=`, a body to `Ok(())`, ...) and runs the package's tests that need
# no emulator; a mutant the tests do not notice is a rule no test holds. Not part of the test
# command: it builds once per mutant (about 25 minutes per package on 2 cores).
#
#   scripts/mutants.sh [core|scale-up|restart|notify|text ...]   (default: all, one after another)
#
# Installs cargo-mutants 27.1.0 with cargo if it is missing. Reports go to target/mutants/<name>/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants@27.1.0

run() { # name, package, files...
  local name="$1" package="$2"; shift 2
  local files=()
  for f in "$@"; do files+=(-f "$f"); done
  echo "== $name: $package ${*}"
  # The emulator tests are marked ignored, so a plain run leaves them out (they need moto).
  cargo mutants --no-shuffle -j 1 -p "$package" "${files[@]}" -o "target/mutants/$name" || true
}

case_of() {
  case "$1" in
    core) run core incident-core actions/lib/incident-core/src/contract.rs actions/lib/incident-core/src/config.rs \
            actions/lib/incident-core/src/budget.rs ;;
    scale-up) run scale-up incident-scale-up actions/lambda/incident-scale-up/src/plan.rs ;;
    restart) run restart incident-restart-service actions/lambda/incident-restart-service/src/plan.rs ;;
    notify) run notify incident-notify-human actions/lambda/incident-notify-human/src/page.rs \
              actions/lambda/incident-notify-human/src/sms.rs ;;
    text) run text shared shared/src/text.rs ;;
    *) echo "mutants.sh: unknown set '$1' (core, scale-up, restart, notify, text)" >&2; exit 2 ;;
  esac
}

if [ $# -eq 0 ]; then set -- core scale-up restart notify text; fi
for set in "$@"; do case_of "$set"; done
for set in "$@"; do
  name="$set"
  [ -f "target/mutants/$name/mutants.out/caught.txt" ] || continue
  count() { grep -c . "target/mutants/$name/mutants.out/$1.txt" 2>/dev/null || true; }
  echo "$name: $(count caught) caught, $(count missed) missed, $(count timeout) timed out, $(count unviable) unviable"
done
