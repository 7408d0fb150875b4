#!/usr/bin/env bash
# Deploys the stacks with an environment's parameters, against whatever endpoint the AWS CLI is
# pointed at (AWS_ENDPOINT_URL, AWS_PROFILE, AWS_REGION, ...).
#
#   deploy.sh -e dev|prod -a deploy|status|outputs|delete [-f] [-b ARTIFACT_BUCKET]
#
#   deploy   build every function as a Lambda zip (cargo lambda), upload them to the artifact bucket,
#            deploy fargate, lambda, actions and reaper with deployments/params-<env>.json, and apply
#            deployments/stack-policy.json to each
#   status   run drift detection on each stack and print IN_SYNC or DRIFTED
#   outputs  print each stack's outputs (the API endpoint, the function ARNs, the topic ARNs)
#   delete   delete the stacks, after asking (unless -f)
#
# Environment: ARTIFACT_BUCKET (or -b), ARTIFACT_PREFIX (default releases/<git sha>/),
# SKIP_BUILD=1 to upload zips already built, LAMBDA_ZIP_DIR (default target/lambda) where they are,
# LAMBDA_ARCH=arm64 for Graviton.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DEPLOYMENTS="$(dirname "$HERE")"
ROOT="$(dirname "$DEPLOYMENTS")"
STACKS=(fargate lambda actions reaper)

usage() {
  sed -n '5,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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
  deploy|status|outputs|delete) ;;
  "") fail "-a is required: deploy, status, outputs or delete" ;;
  *) fail "unknown action '$ACTION': use deploy, status, outputs or delete" ;;
esac
PARAMS="$DEPLOYMENTS/params-$ENVIRONMENT.json"
[ -f "$PARAMS" ] || fail "missing $PARAMS"
stack_name() { echo "fluidity-$ENVIRONMENT-$1"; }
# The AWS CLI: from PATH, else the one scripts/package.sh installs.
command -v aws >/dev/null || PATH="$ROOT/.tools/package/bin:$PATH"
command -v aws >/dev/null || fail "no AWS CLI: install it, or run scripts/package.sh, which puts one in .tools/package"

# The environment's parameters that this template declares, as Key=Value arguments.
overrides() {
  local template="$1" declared
  declared="$(aws cloudformation get-template-summary --template-body "file://$template" \
    --query 'Parameters[].ParameterKey' --output text)"
  python3 - "$PARAMS" "$declared" "$BUCKET" "$PREFIX" <<'PY'
import json, sys
params = json.load(open(sys.argv[1]))["Parameters"]
params.update({"ArtifactBucket": sys.argv[3], "ArtifactPrefix": sys.argv[4]})
declared = sys.argv[2].split()
print("\n".join(f"{k}={params[k]}" for k in declared if k in params))
PY
}

deploy() {
  [ -n "$BUCKET" ] || fail "deploy needs the artifact bucket: -b BUCKET or ARTIFACT_BUCKET"
  PREFIX="${ARTIFACT_PREFIX:-releases/$(git -C "$ROOT" rev-parse --short HEAD)/}"
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    echo "== building every function as a Lambda zip (scripts/package.sh: cargo lambda)"
    local arch_flag=()
    [ "${LAMBDA_ARCH:-x86_64}" = arm64 ] && arch_flag=(--arm64)
    "$ROOT/scripts/package.sh" "${arch_flag[@]}"
  fi
  echo "== uploading to s3://$BUCKET/$PREFIX"
  local zips=("${LAMBDA_ZIP_DIR:-$ROOT/target/lambda}"/*/bootstrap.zip)
  [ -f "${zips[0]}" ] || fail "no Lambda zips under ${LAMBDA_ZIP_DIR:-$ROOT/target/lambda}; run scripts/package.sh"
  for zip in "${zips[@]}"; do
    aws s3 cp --only-show-errors "$zip" "s3://$BUCKET/$PREFIX$(basename "$(dirname "$zip")").zip"
  done
  for stack in "${STACKS[@]}"; do
    local name template
    name="$(stack_name "$stack")"
    template="$DEPLOYMENTS/cloudformation/$stack.yaml"
    echo "== deploying $name"
    mapfile -t args < <(overrides "$template")
    aws cloudformation deploy --stack-name "$name" --template-file "$template" \
      --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset \
      --parameter-overrides "${args[@]}"
    aws cloudformation set-stack-policy --stack-name "$name" --stack-policy-body "file://$DEPLOYMENTS/stack-policy.json"
  done
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
    echo "== deleting $name"
    aws cloudformation delete-stack --stack-name "$name"
    aws cloudformation wait stack-delete-complete --stack-name "$name"
  done
}

"$ACTION"
