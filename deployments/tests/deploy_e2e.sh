#!/usr/bin/env bash
# deploy.sh end to end against moto, as a user runs it: `-a deploy` uploads the zips, deploys the four
# stacks with params-dev.json through change sets and applies the stack policy; `-a delete -f` removes
# them. Placeholder zips stand in for the packages (building them is scripts/package.sh, a release
# build that CI does not repeat). Needs AWS_ENDPOINT_URL (the emulator); installs the AWS CLI into
# .tools/awscli if there is none on PATH.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEPLOY="$ROOT/deployments/scripts/deploy.sh"
case "${AWS_ENDPOINT_URL:-}" in http://127.0.0.1:*|http://localhost:*) ;; *)
  echo "deploy_e2e: AWS_ENDPOINT_URL must point at the local moto server" >&2; exit 1 ;; esac
if ! command -v aws >/dev/null; then
  if ! [ -x "$ROOT/.tools/awscli/bin/aws" ]; then
    echo "deploy_e2e: installing the AWS CLI into .tools/awscli (PyPI)" >&2
    python3 -m venv "$ROOT/.tools/awscli"
    "$ROOT/.tools/awscli/bin/pip" install -q --disable-pip-version-check "awscli==1.46.3"
  fi
  export PATH="$ROOT/.tools/awscli/bin:$PATH"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
FUNCTIONS=(fluidity-wake fluidity-sleep fluidity-kill fluidity-reaper incident-restart-service
           incident-scale-up incident-clear-cache incident-notify-human)
for f in "${FUNCTIONS[@]}"; do
  mkdir -p "$WORK/zips/$f"
  (cd "$WORK" && printf 'placeholder' > bootstrap && python3 -m zipfile -c "zips/$f/bootstrap.zip" bootstrap)
done
BUCKET="fluidity-e2e-$(date +%s)-$$"
aws s3 mb "s3://$BUCKET" >/dev/null
passed=0 failed=0
check() { # description, command...
  local what="$1"; shift
  if "$@" >"$WORK/out" 2>&1; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $what"; cat "$WORK/out"; fi
}

# From no stacks: moto cannot update a stack with a CommaDelimitedList parameter (it crashes in
# load_parameters), so a rerun against the same emulator starts by deleting the last run's stacks.
"$DEPLOY" -e dev -a delete -f >/dev/null 2>&1 || true
check "deploy.sh -a deploy" env SKIP_BUILD=1 LAMBDA_ZIP_DIR="$WORK/zips" ARTIFACT_PREFIX=e2e/ \
  "$DEPLOY" -e dev -a deploy -b "$BUCKET"
uploaded="$(aws s3 ls "s3://$BUCKET/e2e/" | wc -l)"
check "every zip uploaded ($uploaded of ${#FUNCTIONS[@]})" test "$uploaded" -eq "${#FUNCTIONS[@]}"
for stack in fargate lambda actions reaper; do
  name="fluidity-dev-$stack"
  status="$(aws cloudformation describe-stacks --stack-name "$name" --query 'Stacks[?StackStatus!=`REVIEW_IN_PROGRESS`].StackStatus' --output text)"
  check "$name deployed ($status)" grep -qE '^(CREATE|UPDATE)_COMPLETE$' <<<"$status"
  policy="$(aws cloudformation get-stack-policy --stack-name "$name" --query StackPolicyBody --output text)"
  check "$name has the stack policy" grep -q '"Deny"' <<<"$policy"
done
deployed=()
for stack in lambda actions reaper; do
  mapfile -t -O "${#deployed[@]}" deployed < <(aws cloudformation describe-stack-resources --stack-name "fluidity-dev-$stack" \
    --query "StackResources[?ResourceType=='AWS::Lambda::Function'].PhysicalResourceId" --output text | tr '\t' '\n')
done
check "8 functions deployed (${deployed[*]})" test "${#deployed[@]}" -eq 8
for f in "${deployed[@]}"; do
  check "function $f exists" aws lambda get-function --function-name "$f"
done
check "wake targets the params' cluster" bash -c "aws lambda get-function-configuration --function-name fluidity-dev-lambda-wake \
  --query Environment.Variables.ECS_CLUSTER_NAME --output text | grep -qx fluidity-dev"
check "deploy.sh -a delete -f" "$DEPLOY" -e dev -a delete -f
left="$(aws cloudformation list-stacks --query 'StackSummaries[?starts_with(StackName, `fluidity-dev-`) && StackStatus!=`DELETE_COMPLETE` && StackStatus!=`REVIEW_IN_PROGRESS`].StackName' --output text)"
check "no stack left after delete ($left)" test -z "$left"
echo "deploy.sh end to end (moto): $passed passed, $failed failed"
[ "$failed" = 0 ]
