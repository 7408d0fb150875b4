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
           incident-scale-up incident-clear-cache incident-notify-human incident-playbook incident-rollback-service)
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
stack_complete_in_moto() {
  aws cloudformation describe-stacks --stack-name "$1" --query 'Stacks[0].StackStatus' --output text | grep -qE '^(CREATE|UPDATE)_COMPLETE$'
}
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
# clear_cache's VPC in the emulator: private subnets in two zones (a third beside the first, on the
# VPC's main route table), a route table, its security group; params-dev.json pointed at them.
vpc_with_dns() {
  local vpc
  vpc="$(aws ec2 create-vpc --cidr-block "$1" --query Vpc.VpcId --output text)"
  aws ec2 modify-vpc-attribute --vpc-id "$vpc" --enable-dns-support
  aws ec2 modify-vpc-attribute --vpc-id "$vpc" --enable-dns-hostnames
  echo "$vpc"
}
subnet() { aws ec2 create-subnet --vpc-id "$1" --cidr-block "$2" --availability-zone "$3" --query Subnet.SubnetId --output text; }
VPC="$(vpc_with_dns 10.42.0.0/16)"
S1="$(subnet "$VPC" 10.42.1.0/24 us-east-1a)" S2="$(subnet "$VPC" 10.42.2.0/24 us-east-1b)" S3="$(subnet "$VPC" 10.42.3.0/24 us-east-1a)"
RTB="$(aws ec2 create-route-table --vpc-id "$VPC" --query RouteTable.RouteTableId --output text)"
for s in "$S1" "$S2"; do aws ec2 associate-route-table --route-table-id "$RTB" --subnet-id "$s" >/dev/null; done
SG="$(aws ec2 create-security-group --group-name "clear-cache-e2e-$$" --description "clear_cache" --vpc-id "$VPC" --query GroupId --output text)"
params() { # file, Key=Value...: params-dev.json with these set
  python3 - "$ROOT/deployments/params-dev.json" "$@" <<'PY'
import json, sys
document = json.load(open(sys.argv[1]))
document["Parameters"].update(a.split("=", 1) for a in sys.argv[3:])
json.dump(document, open(sys.argv[2], "w"))
PY
}
params "$WORK/params.json" VpcSubnetIds="$S1,$S2" VpcSecurityGroupIds="$SG" VpcNetworkPath=endpoints
export PARAMS_FILE="$WORK/params.json"
NETWORK="fluidity-network-$VPC"
# A VPC the endpoints cannot serve is refused before anything is uploaded.
refused() { # expected message, params file
  if env SKIP_BUILD=1 LAMBDA_ZIP_DIR="$WORK/zips-1" PARAMS_FILE="$2" "$DEPLOY" -e dev -a deploy -b "$BUCKET" >"$WORK/refused" 2>&1; then
    echo "deployed anyway"; return 1
  fi
  grep -qF -- "$1" "$WORK/refused" && ! grep -q "== uploading" "$WORK/refused" || { cat "$WORK/refused"; return 1; }
}
NODNS="$(aws ec2 create-vpc --cidr-block 10.43.0.0/16 --query Vpc.VpcId --output text)"
params "$WORK/no-dns.json" VpcSubnetIds="$(subnet "$NODNS" 10.43.1.0/24 us-east-1a)" VpcSecurityGroupIds="$SG"
check "a VPC without DNS hostnames is refused (private DNS needs them)" refused "has enableDnsHostnames off" "$WORK/no-dns.json"
params "$WORK/one-zone.json" VpcSubnetIds="$S1,$S2" VpcSecurityGroupIds="$SG" EndpointSubnetIds="$S1,$S3"
check "endpoint subnets sharing a zone are refused" refused "EndpointSubnetIds must hold one subnet per Availability Zone" "$WORK/one-zone.json"
params "$WORK/none-there.json" VpcSubnetIds="$S1,$S2" VpcSecurityGroupIds="$SG" VpcNetworkPath=existing
check "VpcNetworkPath=existing on a VPC without endpoints is refused, naming them" \
  refused "has no endpoint for dynamodb (a gateway on route tables $RTB); elasticache" "$WORK/none-there.json"
# A company VPC that already has a Secrets Manager endpoint: this project's would clash with it.
COMPANY="$(vpc_with_dns 10.44.0.0/16)"
CS="$(subnet "$COMPANY" 10.44.1.0/24 us-east-1a)"
aws ec2 create-vpc-endpoint --vpc-id "$COMPANY" --vpc-endpoint-type Interface --private-dns-enabled \
  --service-name com.amazonaws.us-east-1.secretsmanager --subnet-ids "$CS" >/dev/null
# and a DynamoDB gateway on a route table clear_cache's subnets do not use, which does not clash.
other_rtb="$(aws ec2 create-route-table --vpc-id "$COMPANY" --query RouteTable.RouteTableId --output text)"
aws ec2 create-vpc-endpoint --vpc-id "$COMPANY" --vpc-endpoint-type Gateway \
  --service-name com.amazonaws.us-east-1.dynamodb --route-table-ids "$other_rtb" >/dev/null
params "$WORK/company.json" VpcSubnetIds="$CS" VpcSecurityGroupIds="$SG" VpcNetworkPath=endpoints
check "endpoints of its own in a VPC that has some is refused: use VpcNetworkPath=existing" \
  refused "already has endpoints for secretsmanager, which are not fluidity-network-$COMPANY's: set VpcNetworkPath=existing" "$WORK/company.json"

# The maps deployed here hold a target of every kind the roles are scoped by (every_kind.py says
# why: moto's CloudFormation and a managed policy's left-out statement).
python3 "$HERE/every_kind.py" "$ROOT/deployments/targets-dev.json" "$WORK/targets-dev.json"
export TARGETS_MAP="$WORK/targets-dev.json"
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
aws s3 cp --only-show-errors "s3://$BUCKET/releases/${first}incident-playbook.zip" "$WORK/playbook.zip"
check "the target map, with its playbooks, is packaged into the playbook's zip" \
  bash -c "python3 -c \"import json, zipfile; assert 'playbooks' in json.loads(zipfile.ZipFile('$WORK/playbook.zip').read('targets.json'))\""
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
check "10 functions deployed (${deployed[*]})" test "${#deployed[@]}" -eq 10
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
# A role's inline policy statements as JSON, in FILE: IAM answers with the document URL-encoded;
# moto's CloudFormation stores its Python form.
statements_of() { # logical role id, policy name, file
  local role
  role="$(aws cloudformation describe-stack-resources --stack-name fluidity-dev-actions \
    --query "StackResources[?LogicalResourceId=='$1'].PhysicalResourceId" --output text)"
  aws iam get-role-policy --role-name "$role" --policy-name "$2" --output json | python3 -c '
import ast, json, sys, urllib.parse
document = json.load(sys.stdin)["PolicyDocument"]
if isinstance(document, str):
    text = urllib.parse.unquote(document)
    document = json.loads(text) if text.startswith("{\"") else ast.literal_eval(text)
json.dump(document["Statement"], sys.stdout)' >"$3"
}
statements_of ClearRole clear-cache "$WORK/clear-policy.json"
check "clear_cache may read each target's secret by its ARN and by the ARN IAM matches (-??????)" python3 - "$WORK/clear-policy.json" <<'PY'
import json, sys
statements = json.load(open(sys.argv[1]))
granted = {r for s in statements if isinstance(s, dict) and s.get("Action") == "secretsmanager:GetSecretValue"
           for r in s["Resource"]}
for secret in ("incident/dev/cache-redis-AbCdEf", "incident/dev/sessions-redis-GhIjKl"):
    full = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret}"
    assert {full, full + "-??????"} <= granted, granted
PY
# clear_cache's network path: the VPC's endpoints, in their own stack, open to its security group.
check "the VPC's endpoints deployed once, in their own stack ($NETWORK)" grep -q "deploying $NETWORK" "$WORK/first-deploy"
aws ec2 describe-vpc-endpoints --filters "Name=vpc-id,Values=$VPC" --output json >"$WORK/endpoints.json"
check "interface endpoints (private DNS) for Secrets Manager and ElastiCache, one subnet per zone" python3 - "$WORK/endpoints.json" "$S1" "$S2" <<'PY'
import json, sys
endpoints = {e["ServiceName"].rsplit(".", 1)[-1]: e for e in json.load(open(sys.argv[1]))["VpcEndpoints"]}
for service in ("secretsmanager", "elasticache"):
    e = endpoints[service]
    assert e["VpcEndpointType"] == "Interface" and e["PrivateDnsEnabled"], e
    assert sorted(e["SubnetIds"]) == sorted(sys.argv[2:]), e["SubnetIds"]
PY
check "a DynamoDB gateway endpoint on the subnets' route table (the ledger)" python3 - "$WORK/endpoints.json" "$RTB" <<'PY'
import json, sys
endpoints = {e["ServiceName"].rsplit(".", 1)[-1]: e for e in json.load(open(sys.argv[1]))["VpcEndpoints"]}
assert endpoints["dynamodb"]["VpcEndpointType"] == "Gateway" and endpoints["dynamodb"]["RouteTableIds"] == [sys.argv[2]], endpoints["dynamodb"]
PY
endpoint_sg="$(aws cloudformation describe-stack-resources --stack-name "$NETWORK" \
  --query "StackResources[?LogicalResourceId=='EndpointSecurityGroup'].PhysicalResourceId" --output text)"
aws ec2 describe-security-groups --group-ids "$endpoint_sg" --output json >"$WORK/endpoint-sg.json"
check "the endpoints admit HTTPS from the VPC (every environment's clear_cache)" python3 - "$WORK/endpoint-sg.json" <<'PY'
import json, sys
rules = json.load(open(sys.argv[1]))["SecurityGroups"][0]["IpPermissions"]
assert any(int(r.get("FromPort", -1)) == 443 and {"CidrIp": "10.42.0.0/16"} in
           [{"CidrIp": c["CidrIp"]} for c in r.get("IpRanges", [])] for r in rules), rules
PY
check "existing endpoints are accepted (VpcNetworkPath=existing on the VPC that has them)" bash -c \
  "python3 '$ROOT/deployments/scripts/network.py' '$WORK/none-there.json' '$ROOT/deployments/cloudformation/network.yaml' | grep -qx '{\"path\": \"existing\"}'"
# Another environment in the same VPC, one subnet on the main route table: the same endpoints, their
# gateway on both environments' route tables.
main_rtb="$(aws ec2 describe-route-tables --filters "Name=vpc-id,Values=$VPC" Name=association.main,Values=true --query 'RouteTables[0].RouteTableId' --output text)"
params "$WORK/prod-like.json" VpcSubnetIds="$S3" VpcSecurityGroupIds="$SG"
python3 "$ROOT/deployments/scripts/network.py" "$WORK/prod-like.json" "$ROOT/deployments/cloudformation/network.yaml" >"$WORK/second-env" 2>&1 || true
check "a second environment in the VPC shares its endpoints and adds its route table" python3 - "$WORK/second-env" "$NETWORK" "$RTB" "$main_rtb" "$S1,$S2" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
assert plan["stack"] == sys.argv[2], plan
assert plan["parameters"]["EndpointRouteTableIds"] == ",".join(sorted(sys.argv[3:5])), plan
assert plan["parameters"]["EndpointSubnetIds"] == sys.argv[5], plan
PY
statements_of RestartRole restart-service "$WORK/restart-policy.json"
check "restart_service may reboot the map's instances, and no other" python3 - "$WORK/restart-policy.json" <<'PY'
import json, sys
granted = [s["Resource"] for s in json.load(open(sys.argv[1])) if isinstance(s, dict) and s.get("Action") == "ec2:RebootInstances"]
assert granted == [[f"arn:aws:ec2:us-east-1:123456789012:instance/{i}" for i in ("i-0123456789abcdef0", "i-0fedcba9876543210")]], granted
PY
check "deploy.sh -a verify passes on the deployed environment" "$DEPLOY" -e dev -a verify
cp "$WORK/out" "$WORK/verify"
check "verify dry-ran each action (its 5 dry-run fixtures)" test "$(grep -c -- '--payload fileb://.*dry-run' "$WORK/invokes")" -eq 5
check "verify checked every function and the ledger table" grep -q "ok: the ledger table fluidity-dev-actions-ledger exists" "$WORK/verify"
check "verify checked clear_cache's endpoints" grep -q "ok: clear_cache's VPC has an endpoint for each AWS API" "$WORK/verify"
code_of() { aws lambda get-function-configuration --function-name "$1" --query CodeSha256 --output text; }
arch_of() { aws lambda get-function-configuration --function-name "$1" --query 'Architectures[0]' --output text; }
before="$(code_of fluidity-dev-lambda-kill)"
check "x86_64 by default ($(arch_of fluidity-dev-lambda-kill))" test "$(arch_of fluidity-dev-lambda-kill)" = x86_64

# A second deploy from the same commit, with other code, for arm64, with a map of 100 targets.
cp "$WORK/targets-dev.json" "$WORK/targets-100.json"
python3 - "$WORK/targets-100.json" <<'PY'
import json, sys
targets = json.load(open(sys.argv[1]))  # every kind, and as many services as make 100
targets.update({f"svc-{i:03d}": {"kind": "ecs_service", "cluster": "staging", "service": f"staging-svc-{i:03d}",
                "desiredCount": {"low": 2, "medium": 3, "high": 4, "critical": 6}, "maxCount": 10}
                for i in range(100 - len(targets))})
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
check "the VPC's endpoints outlive the environment (other environments share them)" stack_complete_in_moto "$NETWORK"
echo "deploy.sh end to end (moto): $passed passed, $failed failed"
[ "$failed" = 0 ]
