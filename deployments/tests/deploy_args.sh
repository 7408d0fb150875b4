#!/usr/bin/env bash
# The deploy script's argument handling: bad calls fail with a message and exit 2 before any AWS
# call (a fake `aws` on PATH records any call and fails the test), and delete asks first.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOY="$HERE/../scripts/deploy.sh"
FAKE="$(mktemp -d)"
trap 'rm -rf "$FAKE"' EXIT
printf '#!/bin/sh\necho "aws $*" >> "%s/calls"\n' "$FAKE" > "$FAKE/aws"
chmod +x "$FAKE/aws"
passed=0 failed=0

check() { # description, expected status, expected text in stderr, args...
  local what="$1" want_status="$2" want_text="$3"; shift 3
  local err status
  err="$(PATH="$FAKE:$PATH" "$DEPLOY" "$@" 2>&1 </dev/null)"; status=$?
  if [ "$status" = "$want_status" ] && [[ "$err" == *"$want_text"* ]] && [ ! -e "$FAKE/calls" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1)); echo "FAIL: $what: status $status, stderr: $err, aws calls: $(cat "$FAKE/calls" 2>/dev/null)"
  fi
  rm -f "$FAKE/calls"
}

check "no arguments" 2 "-e is required" 
check "missing action" 2 "-a is required" -e dev
check "unknown environment" 2 "unknown environment 'staging'" -e staging -a deploy
check "unknown action" 2 "unknown action 'destroy'" -e dev -a destroy
check "unknown option" 2 "unknown option -x" -e dev -a status -x
check "option without value" 2 "-e needs a value" -e
check "stray argument" 2 "unexpected argument: now" -e dev -a status now
check "deploy without bucket" 2 "needs the artifact bucket" -e dev -a deploy
check "help" 2 "deploy|verify|status|outputs|delete" -h
check "delete not confirmed" 1 "not confirmed; nothing deleted" -e prod -a delete
# A target map the roles could not act on, or none, is refused before anything is built or uploaded.
printf '{"api": {"kind": "ecs_service", "cluster": "elsewhere", "service": "s"}}' > "$FAKE/other-cluster.json"
printf '[]' > "$FAKE/not-a-map.json"
export SKIP_BUILD=1
TARGETS_MAP="$FAKE/other-cluster.json" check "target outside TargetCluster" 2 "is in cluster 'elsewhere'" -e dev -a deploy -b bucket
TARGETS_MAP="$FAKE/not-a-map.json" check "target map not an object" 2 "must be a non-empty JSON object" -e dev -a deploy -b bucket
TARGETS_MAP="$FAKE/missing.json" check "target map missing" 2 "cannot be read" -e dev -a deploy -b bucket
printf '{"c": {"kind": "redis", "url": "redis://c:6379", "passwordSecretArn": "incident/dev/cache"}}' > "$FAKE/secret-name.json"
TARGETS_MAP="$FAKE/secret-name.json" check "a secret named, not by ARN" 2 "must be a Secrets Manager secret ARN" -e dev -a deploy -b bucket
LAMBDA_ARCH=arm32 check "unknown architecture" 2 "LAMBDA_ARCH must be x86_64 or arm64" -e dev -a deploy -b bucket
unset SKIP_BUILD

# Confirmed delete and -f reach the AWS CLI.
echo prod | PATH="$FAKE:$PATH" "$DEPLOY" -e prod -a delete >/dev/null 2>&1
if grep -q "delete-stack --stack-name fluidity-prod-fargate" "$FAKE/calls"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: confirmed delete"; fi
rm -f "$FAKE/calls"
PATH="$FAKE:$PATH" "$DEPLOY" -e dev -a delete -f >/dev/null 2>&1 </dev/null
if grep -q "delete-stack --stack-name fluidity-dev-reaper" "$FAKE/calls"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: delete -f"; fi

echo "deploy.sh arguments: $passed passed, $failed failed"
[ "$failed" = 0 ]
