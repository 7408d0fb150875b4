#!/usr/bin/env bash
# deploy.sh end to end against moto, as a user runs it: `-a deploy` uploads the zips (the target map
# packaged into the actions'), deploys the four stacks with params-dev.json through change sets,
# applies the stack policy and termination protection; a second deploy that changes only code (and
# the architecture, and a 100-target map) updates the functions; `-a delete -f` removes the stacks.
# Placeholder zips stand in for the packages (building them is scripts/package.sh, a release build
# that CI does not repeat). Needs AWS_ENDPOINT_URL (the emulator); installs the AWS CLI into
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
# moto has no UpdateTerminationProtection: an `aws` first on PATH records those calls and answers
# them as AWS does (no output); every other call goes to the real CLI.
REAL_AWS="$(command -v aws)"
mkdir -p "$WORK/bin"
# moto cannot run the functions (the zips here are placeholders), so verify's dry runs are answered
# by a stand-in that records them: the test checks the script's flow, not the functions.
cat >"$WORK/bin/aws" <<SH
#!/usr/bin/env bash
if [ "\$1 \$2" = "cloudformation update-termination-protection" ]; then echo "\$*" >>"$WORK/protection"; exit 0; fi
if [ "\$1 \$2" = "lambda invoke" ]; then
  echo "\$*" >>"$WORK/invokes"
  for out; do :; done
  echo '{"success": true, "statusCode": 200, "dryRun": true}' >"\$out"
  exit 0
fi
exec "$REAL_AWS" "\$@"
SH
chmod +x "$WORK/bin/aws"
export PATH="$WORK/bin:$PATH"
FUNCTIONS=(fluidity-wake fluidity-sleep fluidity-kill fluidity-reaper incident-restart-service
           incident-scale-up incident-clear-cache incident-notify-human)
zips() { # folder, content of each bootstrap
  for f in "${FUNCTIONS[@]}"; do
    mkdir -p "$WORK/$1/$f"
    (cd "$WORK" && printf '%s %s' "$2" "$f" > bootstrap && python3 -m zipfile -c "$1/$f/bootstrap.zip" bootstrap)
  done
}
zips zips-1 "build one"
zips zips-2 "build two"
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
# The account stack is never deleted by deploy.sh: the last run's is still there.
aws cloudformation delete-stack --stack-name fluidity-account >/dev/null 2>&1 || true
aws cloudformation wait stack-delete-complete --stack-name fluidity-account >/dev/null 2>&1 || true
# The ledger's table outlives its stack (DeletionPolicy: Retain): as after an earlier deployment was
# deleted, a table with an incident's record is there, and the new stack must take it over.
LEDGER=fluidity-dev-actions-ledger
aws dynamodb create-table --table-name "$LEDGER" --billing-mode PAY_PER_REQUEST \
  --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
  --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE >/dev/null 2>&1 || true
aws dynamodb update-time-to-live --table-name "$LEDGER" \
  --time-to-live-specification Enabled=true,AttributeName=expiresAt >/dev/null 2>&1 || true
aws dynamodb put-item --table-name "$LEDGER" \
  --item '{"pk": {"S": "INCIDENT#INC-E2E"}, "sk": {"S": "2026-12-01T02:15:00Z#r"}, "outcome": {"S": "success"}}' >/dev/null
check "deploy.sh -a deploy" env SKIP_BUILD=1 LAMBDA_ZIP_DIR="$WORK/zips-1" "$DEPLOY" -e dev -a deploy -b "$BUCKET"
cp "$WORK/out" "$WORK/first-deploy"
prefixes() { aws s3 ls "s3://$BUCKET/releases/" | awk '{print $2}'; }
first="$(prefixes)"
check "the zips' key carries the commit and their content hash ($first)" \
  grep -qE "^$(git -C "$ROOT" rev-parse --short HEAD)-[0-9a-f]{12}/$" <<<"$first"
uploaded="$(aws s3 ls "s3://$BUCKET/releases/$first" | wc -l)"
check "every zip uploaded ($uploaded of ${#FUNCTIONS[@]})" test "$uploaded" -eq "${#FUNCTIONS[@]}"
aws s3 cp --only-show-errors "s3://$BUCKET/releases/${first}incident-scale-up.zip" "$WORK/scale-up.zip"
check "the target map is packaged into the actions' zips" bash -c "python3 -m zipfile -l '$WORK/scale-up.zip' | grep -q targets.json"
check "the account stack deployed once, before the environment" grep -q "deploying fluidity-account" "$WORK/first-deploy"
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
check "the actions stack took over the ledger table an earlier deployment left" bash -c "aws lambda get-function-configuration \
  --function-name fluidity-dev-actions-scale-up --query Environment.Variables.LEDGER_TABLE --output text | grep -qx $LEDGER"
check "and the incidents' records in it are kept" bash -c "aws dynamodb get-item --table-name $LEDGER \
  --key '{\"pk\": {\"S\": \"INCIDENT#INC-E2E\"}, \"sk\": {\"S\": \"2026-12-01T02:15:00Z#r\"}}' | grep -q success"
check "the actions read the packaged map" bash -c "aws lambda get-function-configuration --function-name fluidity-dev-actions-scale-up \
  --query Environment.Variables.TARGETS_FILE --output text | grep -qx /var/task/targets.json"
for stack in fargate lambda actions reaper; do
  check "termination protection turned on for fluidity-dev-$stack" \
    grep -qx -- "cloudformation update-termination-protection --enable-termination-protection --stack-name fluidity-dev-$stack" "$WORK/protection"
done
clear_role="$(aws cloudformation describe-stack-resources --stack-name fluidity-dev-actions \
  --query "StackResources[?LogicalResourceId=='ClearRole'].PhysicalResourceId" --output text)"
aws iam get-role-policy --role-name "$clear_role" --policy-name clear-cache --output json >"$WORK/clear-policy.json"
check "clear_cache may read each target's secret by its ARN and by the ARN IAM matches (-??????)" python3 - "$WORK/clear-policy.json" <<'PY'
import ast, json, sys, urllib.parse
document = json.load(open(sys.argv[1]))["PolicyDocument"]
if isinstance(document, str):
    # IAM answers with the document URL-encoded; moto's CloudFormation stores its Python form.
    text = urllib.parse.unquote(document)
    document = json.loads(text) if text.startswith('{"') else ast.literal_eval(text)
statements = document["Statement"]
granted = {r for s in statements if isinstance(s, dict) and s.get("Action") == "secretsmanager:GetSecretValue"
           for r in s["Resource"]}
for secret in ("incident/dev/cache-redis-AbCdEf", "incident/dev/sessions-redis-GhIjKl"):
    full = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret}"
    assert {full, full + "-??????"} <= granted, granted
PY
check "deploy.sh -a verify passes on the deployed environment" "$DEPLOY" -e dev -a verify
cp "$WORK/out" "$WORK/verify"
check "verify dry-ran each action (its 4 dry-run fixtures)" test "$(grep -c -- '--payload file://.*dry-run' "$WORK/invokes")" -eq 4
check "verify checked every function and the ledger table" grep -q "ok: the ledger table fluidity-dev-actions-ledger exists" "$WORK/verify"
code_of() { aws lambda get-function-configuration --function-name "$1" --query CodeSha256 --output text; }
arch_of() { aws lambda get-function-configuration --function-name "$1" --query 'Architectures[0]' --output text; }
before="$(code_of fluidity-dev-lambda-kill)"
check "x86_64 by default ($(arch_of fluidity-dev-lambda-kill))" test "$(arch_of fluidity-dev-lambda-kill)" = x86_64

# A second deploy from the same commit, with other code, for arm64, with a map of 100 targets.
python3 - "$WORK/targets-100.json" <<'PY'
import json, sys
targets = {f"svc-{i:03d}": {"kind": "ecs_service", "cluster": "staging", "service": f"staging-svc-{i:03d}",
           "desiredCount": {"low": 2, "medium": 3, "high": 4, "critical": 6}, "maxCount": 10} for i in range(100)}
json.dump(targets, open(sys.argv[1], "w"))
PY
check "a second deploy: only the code changed, for arm64, 100 targets" env SKIP_BUILD=1 LAMBDA_ZIP_DIR="$WORK/zips-2" \
  LAMBDA_ARCH=arm64 TARGETS_MAP="$WORK/targets-100.json" "$DEPLOY" -e dev -a deploy -b "$BUCKET"
cp "$WORK/out" "$WORK/second-deploy"
check "the second deploy leaves the account stack as it is" grep -q "fluidity-account: already deployed" "$WORK/second-deploy"
second="$(prefixes | grep -vx "$first" || true)"
check "the new code went under a new key ($second)" grep -qE '^[0-9a-f]+-[0-9a-f]{12}/$' <<<"$second"
check "the functions run the new code" test "$(code_of fluidity-dev-lambda-kill)" != "$before"
# moto applies a changed Architectures only on creation (AWS applies it with the code, as here), so
# the update is checked in the stacks' parameters; deploy_to_moto.py creates arm64 functions.
for stack in lambda actions reaper; do
  check "fluidity-dev-$stack deployed for arm64" bash -c "aws cloudformation describe-stacks --stack-name fluidity-dev-$stack \
    --query \"Stacks[0].Parameters[?ParameterKey=='Architecture'].ParameterValue\" --output text | grep -qx arm64"
done
aws s3 cp --only-show-errors "s3://$BUCKET/releases/${second}incident-restart-service.zip" "$WORK/restart.zip"
check "the 100-target map is in the package" python3 -c "import json, zipfile, sys
assert len(json.loads(zipfile.ZipFile('$WORK/restart.zip').read('targets.json'))) == 100"
check "deploy.sh -a delete -f" "$DEPLOY" -e dev -a delete -f
check "delete lifted the protection first" grep -q -- "--no-enable-termination-protection --stack-name fluidity-dev-fargate" "$WORK/protection"
left="$(aws cloudformation list-stacks --query 'StackSummaries[?starts_with(StackName, `fluidity-dev-`) && StackStatus!=`DELETE_COMPLETE` && StackStatus!=`REVIEW_IN_PROGRESS`].StackName' --output text)"
check "no stack of the environment left after delete ($left)" test -z "$left"
account="$(aws cloudformation describe-stacks --stack-name fluidity-account --query 'Stacks[0].StackStatus' --output text)"
check "the account stack (API Gateway's log role) outlives the environment ($account)" grep -qE '^(CREATE|UPDATE)_COMPLETE$' <<<"$account"
check "the ledger's records outlive the stacks" aws dynamodb describe-table --table-name fluidity-dev-actions-ledger
echo "deploy.sh end to end (moto): $passed passed, $failed failed"
[ "$failed" = 0 ]
