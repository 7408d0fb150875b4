#!/usr/bin/env bash
# Deploys the stacks with an environment's parameters, against whatever endpoint the AWS CLI is
# pointed at (AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION, ...).
#
#   deploy.sh -e dev|prod -a deploy|verify|status|outputs|delete [-f] [-b ARTIFACT_BUCKET]
#
#   deploy   build every function as a Lambda zip (cargo lambda), package the environment's target
#            map into the action zips, upload them under a key that carries their content hash,
#            deploy the account stack if missing (fluidity-account, once per account and region),
#            check clear_cache's network path (network.py) and deploy its VPC endpoints if the
#            params ask for them (fluidity-network-<vpc>, once per VPC), then fargate, lambda,
#            actions and reaper with deployments/params-<env>.json, apply
#            deployments/stack-policy.json and turn on termination protection
#   verify   check a deployed environment (docs/real-account-checklist.md): the stacks, the functions'
#            configuration, the alarms' actions, the ledger table, notify_human's reserved
#            concurrency, clear_cache's VPC endpoints, and a dry run of each action (dry runs change
#            nothing and page nobody)
#   status   run drift detection on each stack and print IN_SYNC or DRIFTED
#   outputs  print each stack's outputs (the API endpoint, the function ARNs, the topic ARNs)
#   delete   delete the environment's stacks, after asking (unless -f); never the account stack
#            or the VPC's endpoints (fluidity-network-<vpc>), which other environments share
#
# Environment: ARTIFACT_BUCKET (or -b); ARTIFACT_PREFIX (default releases/<git sha>-<content hash>/);
# LAMBDA_ARCH=arm64 builds for Graviton and deploys the functions as arm64 (default x86_64);
# TARGETS_MAP, the target map to package (default deployments/targets-<env>.json);
# PARAMS_FILE, the parameters (default deployments/params-<env>.json);
# SKIP_BUILD=1 to use zips already built, LAMBDA_ZIP_DIR (default $CARGO_TARGET_DIR/lambda, or
# target/lambda) where they are.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOYMENTS="$(dirname "$HERE")"
ROOT="$(dirname "$DEPLOYMENTS")"
STACKS=(fargate lambda actions reaper)
# The functions that read the target map (TARGETS_FILE=/var/task/targets.json, in their zip).
READ_TARGETS=(incident-restart-service incident-scale-up incident-clear-cache incident-notify-human incident-playbook
              incident-rollback-service)

usage() {
  sed -n '5,28p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
fail() { echo "deploy.sh: $*" >&2; exit 2; }

ENVIRONMENT="" ACTION="" FORCE=0 BUCKET="${ARTIFACT_BUCKET:-}"
while getopts ":e:a:b:fh" opt; do
  case "$opt" in
    e) ENVIRONMENT="$OPTARG" ;;
    a) ACTION="$OPTARG" ;;
    b) BUCKET="$OPTARG" ;;
    f) FORCE=1 ;;
    h) usage ;;
    :) fail "-$OPTARG needs a value (see -h)" ;;
    *) fail "unknown option -$OPTARG (see -h)" ;;
  esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || fail "unexpected argument: $1 (see -h)"
case "$ENVIRONMENT" in
  dev|prod) ;;
  "") fail "-e is required: dev or prod" ;;
  *) fail "unknown environment '$ENVIRONMENT': use dev or prod" ;;
esac
case "$ACTION" in
  deploy|verify|status|outputs|delete) ;;
  "") fail "-a is required: deploy, verify, status, outputs or delete" ;;
  *) fail "unknown action '$ACTION': use deploy, verify, status, outputs or delete" ;;
esac
PARAMS="${PARAMS_FILE:-$DEPLOYMENTS/params-$ENVIRONMENT.json}"
[ -f "$PARAMS" ] || fail "missing $PARAMS"
stack_name() { echo "fluidity-$ENVIRONMENT-$1"; }
# The AWS CLI: from PATH, else the one scripts/package.sh installs. Everything else it needs is
# python3 and git (bash 3.2, as on macOS, and BSD tools are enough).
command -v aws >/dev/null || PATH="$ROOT/.tools/package/bin:$PATH"
command -v aws >/dev/null || fail "no AWS CLI: install it, or run scripts/package.sh, which puts one in .tools/package"
for tool in python3 git; do
  command -v "$tool" >/dev/null || fail "$tool is required and not on PATH"
done

# The parameters of this template: the environment's, then EXTRA (a JSON object, e.g. what
# deploy.sh derived), as Key=Value arguments.
overrides() {
  local template="$1" extra="$2" declared
  declared="$(aws cloudformation get-template-summary --template-body "file://$template" \
    --query 'Parameters[].ParameterKey' --output text)"
  python3 - "$PARAMS" "$declared" "$extra" <<'PY'
import json, sys
params = json.load(open(sys.argv[1]))["Parameters"]
params.update(json.loads(sys.argv[3]))
print("\n".join(f"{k}={params[k]}" for k in sys.argv[2].split() if k in params))
PY
}

# Checks the target map against the parameters before anything is uploaded (no AWS call when it
# fails), and prints what the stacks derive from it (deployments/scripts/targets.py): the secrets,
# instances, databases and caches the actions' roles are scoped to, as ARNs in this account.
read_targets() {
  python3 "$HERE/targets.py" check "$1" "$PARAMS" || exit 2
  local account caller region
  read -r account caller < <(aws sts get-caller-identity --query '[Account,Arn]' --output text) ||
    fail "cannot tell which account the AWS CLI is signed in to (aws sts get-caller-identity)"
  # The region the CLI itself uses (v1 reads AWS_DEFAULT_REGION, v2 AWS_REGION first, then the profile).
  region="$(aws configure list 2>/dev/null | awk '$1 == "region" {print $2}')"
  case "$region" in ""|"<not"*) fail "no AWS region: set AWS_DEFAULT_REGION (or the profile's region)" ;; esac
  python3 "$HERE/targets.py" grants "$1" "$(echo "$caller" | cut -d: -f2)" "$region" "$account"
}

# Copies the zips into STAGE, adding the target map to the functions that read it; prints a digest
# of what is inside them (not of the zip bytes, which carry build times).
stage_zips() {
  local zips="$1" stage="$2" targets="$3"
  python3 - "$zips" "$stage" "$targets" "${READ_TARGETS[@]}" <<'PY'
import glob, hashlib, os, shutil, sys, zipfile
zips, stage, targets, readers = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
digest = hashlib.sha256()
found = sorted(glob.glob(os.path.join(zips, "*", "bootstrap.zip")))
if not found:
    sys.exit(f"deploy.sh: no Lambda zips under {zips}; run scripts/package.sh")
for source in found:
    function = os.path.basename(os.path.dirname(source))
    staged = os.path.join(stage, f"{function}.zip")
    shutil.copyfile(source, staged)
    if function in readers:
        with zipfile.ZipFile(staged, "a", zipfile.ZIP_DEFLATED) as z:
            z.write(targets, "targets.json")
    with zipfile.ZipFile(staged) as z:
        for member in sorted(z.namelist()):
            digest.update(f"{function}/{member}\0".encode())
            digest.update(z.read(member))
print(digest.hexdigest()[:12])
PY
}

# The template to deploy: lambda.yaml's API deployment renamed by the template's digest, so that a
# changed API gets a new deployment (CloudFormation never redeploys an existing one).
render() {
  local stack="$1" out="$2" source="$DEPLOYMENTS/cloudformation/$1.yaml"
  if [ "$stack" = lambda ]; then
    # In python, not sed: BSD sed (macOS) has no \b and would silently leave the name as it was.
    python3 - "$source" "$out" <<'PY'
import hashlib, re, sys
text = open(sys.argv[1], "rb").read()
digest = hashlib.sha256(text).hexdigest()[:12]
open(sys.argv[2], "w").write(re.sub(r"\bApiDeployment\b", "ApiDeployment" + digest, text.decode()))
PY
  else
    cp "$source" "$out"
  fi
}

stack_exists() {
  local status
  status="$(aws cloudformation describe-stacks --stack-name "$1" --query 'Stacks[0].StackStatus' --output text 2>/dev/null)" || return 1
  [ "$status" != REVIEW_IN_PROGRESS ]
}

deploy_stack() { # stack, extra parameters (JSON), [stack name: default the environment's]
  local stack="$1" extra="$2" name="${3:-$(stack_name "$1")}" template
  template="$WORK/$stack.yaml"
  render "$stack" "$template"
  local args=() line
  while IFS= read -r line; do [ -z "$line" ] || args+=("$line"); done < <(overrides "$template" "$extra")
  # ${args[@]+...}: an empty array is "unbound" to bash 3.2 under set -u. A stack with nothing to
  # change is not an error (CloudFormation's own answer to that is "No updates are to be performed",
  # which some endpoints give instead of an empty change set).
  if ! aws cloudformation deploy --stack-name "$name" --template-file "$template" \
    --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
    ${args[@]+--parameter-overrides "${args[@]}"} 2>"$WORK/deploy-error"; then
    grep -q "No updates are to be performed" "$WORK/deploy-error" || { cat "$WORK/deploy-error" >&2; return 1; }
    echo "$name: no changes"
  fi
  aws cloudformation set-stack-policy --stack-name "$name" --stack-policy-body "file://$DEPLOYMENTS/stack-policy.json"
  aws cloudformation update-termination-protection --enable-termination-protection --stack-name "$name" >/dev/null
}

# API Gateway's CloudWatch Logs role is one setting per account and region, which every
# environment's stage needs: one stack for the account, created when missing and never deleted by an
# environment (deleting it would break the other environments' access logs).
ACCOUNT_STACK=fluidity-account
deploy_account() {
  if stack_exists "$ACCOUNT_STACK"; then
    echo "== $ACCOUNT_STACK: already deployed (once per account and region; shared by every environment)"
    return
  fi
  echo "== deploying $ACCOUNT_STACK (once per account and region: API Gateway's log role)"
  deploy_stack account "{}" "$ACCOUNT_STACK"
}

# clear_cache's VPC endpoints (network.yaml), as network.py planned them: one stack per VPC, created
# or updated here (every environment's route tables), never deleted by an environment.
deploy_network() {
  local plan="$1" stack
  stack="$(field "$plan" stack)"
  if [ -z "$stack" ]; then
    echo "== clear_cache's network path: $(field "$plan" path)"
    return
  fi
  echo "== deploying $stack (clear_cache's VPC endpoints: one set per VPC, shared by its environments)"
  deploy_stack network "$(field "$plan" parameters)" "$stack"
}

field() { # JSON object, key: its value (a string as it is, anything else as JSON; absent: empty)
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2], ""); print(v if isinstance(v, str) else json.dumps(v))' "$1" "$2"
}

output_of() { # stack, output key
  aws cloudformation describe-stacks --stack-name "$(stack_name "$1")" \
    --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text
}

deploy() {
  [ -n "$BUCKET" ] || fail "deploy needs the artifact bucket: -b BUCKET or ARTIFACT_BUCKET"
  local arch="${LAMBDA_ARCH:-x86_64}" targets="${TARGETS_MAP:-$DEPLOYMENTS/targets-$ENVIRONMENT.json}"
  case "$arch" in x86_64|arm64) ;; *) fail "LAMBDA_ARCH must be x86_64 or arm64, not '$arch'" ;; esac
  local derived
  derived="$(read_targets "$targets")" || exit 2
  # clear_cache's way to the AWS APIs, checked before anything is built or uploaded.
  local network
  network="$(python3 "$HERE/network.py" "$PARAMS" "$DEPLOYMENTS/cloudformation/network.yaml")" || exit 2
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "== building every function as a Lambda zip for $arch (scripts/package.sh: cargo lambda)"
    local arch_flag=()
    [ "$arch" = arm64 ] && arch_flag=(--arm64)
    "$ROOT/scripts/package.sh" ${arch_flag[@]+"${arch_flag[@]}"}
  fi
  mkdir -p "$WORK/zips"
  local content
  content="$(stage_zips "${LAMBDA_ZIP_DIR:-${CARGO_TARGET_DIR:-$ROOT/target}/lambda}" "$WORK/zips" "$targets")" || exit 2
  PREFIX="${ARTIFACT_PREFIX:-releases/$(git -C "$ROOT" rev-parse --short HEAD)-$content/}"
  echo "== uploading to s3://$BUCKET/$PREFIX (the target map: $targets)"
  for zip in "$WORK/zips"/*.zip; do
    aws s3 cp --only-show-errors "$zip" "s3://$BUCKET/$PREFIX$(basename "$zip")"
  done
  local common
  common="$(python3 -c 'import json,sys; print(json.dumps({"ArtifactBucket": sys.argv[1], "ArtifactPrefix": sys.argv[2], "Architecture": sys.argv[3]}))' \
    "$BUCKET" "$PREFIX" "$arch")"
  with() { python3 -c 'import json,sys; d={}; [d.update(json.loads(a)) for a in sys.argv[1:]]; print(json.dumps(d))' "$@"; }

  deploy_account
  # The server's desired count is set once, at creation (0); afterwards it is wake's and sleep's, so
  # the template stops holding one and a stack update keeps whatever count the service has.
  local fargate_created=0
  stack_exists "$(stack_name fargate)" || fargate_created=1
  echo "== deploying $(stack_name fargate)"
  deploy_stack fargate "$(with "$common" "{\"DesiredCount\": \"$([ $fargate_created = 1 ] && echo 0 || echo -1)\"}")"
  if [ $fargate_created = 1 ]; then
    echo "== $(stack_name fargate): created at desired count 0; the template now leaves the count to wake and sleep"
    deploy_stack fargate "$(with "$common" '{"DesiredCount": "-1"}')"
  fi
  echo "== deploying $(stack_name lambda)"
  deploy_stack lambda "$common"
  # Every alarm of every stack goes to one operations topic: the params' OpsTopicArn, or the lambda stack's.
  local ops
  ops="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["Parameters"].get("OpsTopicArn", ""))' "$PARAMS")"
  [ -n "$ops" ] || ops="$(output_of lambda OpsTopicArn)"
  deploy_network "$network"
  echo "== deploying $(stack_name actions)"
  deploy_stack actions "$(with "$common" "$derived" "{\"OpsTopicArn\": \"$ops\", \"ExistingLedgerTable\": \"$(ledger_table)\"}")"
  echo "== deploying $(stack_name reaper)"
  deploy_stack reaper "$(with "$common" "$derived" "{\"OpsTopicArn\": \"$ops\"}")"
}

# The ledger table the actions stack is to use: the one it was deployed with, or, for a new stack,
# the table an earlier deployment left behind (it is retained when its stack is deleted, and its
# fixed name would make a new one fail); empty creates the table.
ledger_table() {
  local name
  name="$(stack_name actions)"
  if stack_exists "$name"; then
    aws cloudformation describe-stacks --stack-name "$name" \
      --query "Stacks[0].Parameters[?ParameterKey=='ExistingLedgerTable'].ParameterValue" --output text | sed 's/^None$//'
  elif aws dynamodb describe-table --table-name "$name-ledger" >/dev/null 2>&1; then
    echo "== $name: taking over the ledger table an earlier deployment left, $name-ledger" >&2
    echo "$name-ledger"
  fi
}

# verify: each check prints "ok: ..." or "FAIL: ..."; the exit status is the number of failures.
VERIFY_FAILED=0
verified() { # description, command...
  local what="$1"; shift
  if "$@" >/dev/null 2>&1; then echo "ok: $what"; else echo "FAIL: $what"; VERIFY_FAILED=$((VERIFY_FAILED + 1)); fi
}

verify() {
  verified "$ACCOUNT_STACK deployed" stack_complete "$ACCOUNT_STACK"
  local stack name
  for stack in "${STACKS[@]}"; do
    name="$(stack_name "$stack")"
    verified "$name deployed" stack_complete "$name"
    verify_resources "$name"
  done
  local table
  # The table the functions use (the stack's output says the same, where CloudFormation resolves it).
  table="$(aws lambda get-function-configuration --function-name "$(stack_name actions)-scale-up" \
    --query Environment.Variables.LEDGER_TABLE --output text)"
  verified "the ledger table $table exists, its TTL on expiresAt" bash -c "aws dynamodb describe-time-to-live --table-name '$table' \
    --query TimeToLiveDescription.AttributeName --output text | grep -qx expiresAt"
  local notify
  notify="$(stack_name actions)-notify-human"
  local reserved
  reserved="$(aws cloudformation describe-stacks --stack-name "$(stack_name actions)" \
    --query "Stacks[0].Parameters[?ParameterKey=='NotifyReservedConcurrency'].ParameterValue" --output text)"
  if [ "$reserved" = 0 ]; then
    echo "ok: $notify has no reserved concurrency (NotifyReservedConcurrency=0: a storm can throttle pages)"
  else
    verified "$notify keeps its reserved concurrency" bash -c "aws lambda get-function-concurrency --function-name '$notify' \
      --query ReservedConcurrentExecutions --output text | grep -qE '^[1-9][0-9]*$'"
  fi
  verified "clear_cache's VPC has an endpoint for each AWS API it calls (or its path is a NAT)" \
    python3 "$HERE/network.py" --verify "$PARAMS" "$DEPLOYMENTS/cloudformation/network.yaml"
  verify_dry_runs
  echo "verify: $VERIFY_FAILED failed (the rest of docs/real-account-checklist.md needs a person)"
  [ "$VERIFY_FAILED" = 0 ]
}

stack_complete() {
  aws cloudformation describe-stacks --stack-name "$1" --query 'Stacks[0].StackStatus' --output text |
    grep -qE '^(CREATE|UPDATE)_COMPLETE$'
}

# Every function of a stack as the templates make them, and every alarm with an action.
verify_resources() {
  local name="$1" kind id
  while read -r kind id; do
    case "$kind" in
      AWS::Lambda::Function)
        verified "$id runs bootstrap on provided.al2023" bash -c "aws lambda get-function-configuration --function-name '$id' \
          --query '[Runtime,Handler]' --output text | grep -qE '^provided.al2023[[:space:]]+bootstrap$'" ;;
      AWS::CloudWatch::Alarm)
        verified "alarm $id notifies someone" bash -c "aws cloudwatch describe-alarms --alarm-names '$id' \
          --query 'MetricAlarms[0].AlarmActions[0]' --output text | grep -q '^arn:'" ;;
    esac
  done < <(aws cloudformation describe-stack-resources --stack-name "$name" \
    --query 'StackResources[].[ResourceType,PhysicalResourceId]' --output text)
}

# A dry run of each action: the function starts, reads its map, and reaches its target's API. For
# rollback_service a 409 counts too: ECS answered, and nothing was deployed within its horizon.
verify_dry_runs() {
  local fixture function out="${TMPDIR:-/tmp}/deploy-verify-$$.json"
  for fixture in "$ROOT"/fixtures/incident-*/dry-run*.json; do
    function="$(basename "$(dirname "$fixture")")"
    function="$(stack_name actions)-${function#incident-}"
    # fileb://: the payload's bytes as they are, in AWS CLI v1 and v2 alike.
    verified "$function answers the dry run $(basename "$fixture")" bash -c "aws lambda invoke --function-name '$function' \
      --payload 'fileb://$fixture' '$out' >/dev/null &&
      python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); ok=a.get(\"success\") or (a.get(\"statusCode\") == 409 and \"nothing recent\" in a.get(\"message\", \"\")); sys.exit(0 if a.get(\"dryRun\") and ok else 1)' '$out'"
  done
  rm -f "$out"
}

status() {
  for stack in "${STACKS[@]}"; do
    local name id state
    name="$(stack_name "$stack")"
    id="$(aws cloudformation detect-stack-drift --stack-name "$name" --query StackDriftDetectionId --output text)"
    for _ in $(seq 1 60); do
      state="$(aws cloudformation describe-stack-drift-detection-status --stack-drift-detection-id "$id" \
        --query '[DetectionStatus,StackDriftStatus]' --output text)"
      case "$state" in DETECTION_IN_PROGRESS*) sleep 2 ;; *) break ;; esac
    done
    echo "$name: ${state#*[[:space:]]}"
  done
}

outputs() {
  for stack in "${STACKS[@]}"; do
    echo "== $(stack_name "$stack")"
    aws cloudformation describe-stacks --stack-name "$(stack_name "$stack")" \
      --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
  done
}

delete() {
  if [ "$FORCE" != 1 ]; then
    printf 'Delete every %s stack (%s)? Type "%s" to confirm: ' "$ENVIRONMENT" "${STACKS[*]}" "$ENVIRONMENT" >&2
    local answer=""
    read -r answer || true
    [ "$answer" = "$ENVIRONMENT" ] || { echo "deploy.sh: not confirmed; nothing deleted" >&2; exit 1; }
  fi
  for ((i = ${#STACKS[@]} - 1; i >= 0; i--)); do
    local name
    name="$(stack_name "${STACKS[$i]}")"
    stack_exists "$name" || continue
    echo "== deleting $name"
    # Termination protection guards against a stray delete-stack; this confirmed delete lifts it.
    aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name "$name" >/dev/null
    aws cloudformation delete-stack --stack-name "$name"
    aws cloudformation wait stack-delete-complete --stack-name "$name"
  done
}

"$ACTION"
