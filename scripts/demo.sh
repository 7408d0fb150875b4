#!/usr/bin/env bash
# The local demo: starts the emulator and Redis, creates a small demo world, builds the functions,
# invokes them with the fixtures as a user would, and prints what each call did.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [ "${DEMO_INNER:-}" != 1 ]; then
  DEMO_INNER=1 exec scripts/with-services.sh "$0" "$@"
fi

PY="$ROOT/.tools/venv/bin/python"
BIN="$ROOT/target/debug"
export ECS_CLUSTER_NAME=fluidity-demo ECS_SERVICE_NAME=fluidity-server
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
invoke() { # binary, fixture: print the fixture, the answer, and the exit status
  local bin="$1" event="$2" status=0
  echo "\$ $bin $event"
  "$BIN/$bin" "$event" 2>>"$ROOT/.run/demo-logs.jsonl" || status=$?
  echo "  (exit $status; JSON logs in .run/demo-logs.jsonl)"
}

step "Building the functions"
cargo build --workspace --bins --quiet

step "Demo world"
"$PY" scripts/demo_world.py setup
"$PY" scripts/demo_world.py show

step "fluidity-wake: the agent starts and needs the server (API Gateway POST /wake)"
"$PY" scripts/demo_world.py stop
invoke fluidity-wake fixtures/fluidity-wake/apigateway-post-wake.json
"$PY" scripts/demo_world.py show

step "fluidity-wake: a second agent start must not scale out"
invoke fluidity-wake fixtures/fluidity-wake/direct.json
"$PY" scripts/demo_world.py show

step "fluidity-sleep: the 5-minute schedule checks whether the server is idle"
echo "(for the demo: an idle threshold of 3 seconds instead of 15 minutes, which is also the grace a"
echo " just-woken server gets, and a 1-minute lookback for the second check, so the busy minute is past)"
export IDLE_THRESHOLD_MINUTES=0.05
"$PY" scripts/demo_world.py activity 2 120
invoke fluidity-sleep fixtures/fluidity-sleep/eventbridge-rate-5-minutes.json
echo "-- the agent disconnects: the server reports no connections"
"$PY" scripts/demo_world.py activity 0 0
sleep 4
LOOKBACK_PERIOD_MINUTES=1 invoke fluidity-sleep fixtures/fluidity-sleep/eventbridge-rate-5-minutes.json
"$PY" scripts/demo_world.py show
unset IDLE_THRESHOLD_MINUTES

step "fluidity-wake, then fluidity-kill: the agent needs the server again, then shuts down"
invoke fluidity-wake fixtures/fluidity-wake/direct.json
echo "-- the agent shuts down (API Gateway POST /kill)"
invoke fluidity-kill fixtures/fluidity-kill/apigateway-post-kill.json
"$PY" scripts/demo_world.py show

step "fluidity-kill: the nightly EventBridge schedule, on a service that is already stopped"
invoke fluidity-kill fixtures/fluidity-kill/eventbridge-nightly.json
"$PY" scripts/demo_world.py show

step "fluidity-kill: a request that names a service the deployment does not allow (OverrideServiceArns)"
echo '{"service_name": "production-api-service"}' > "$ROOT/.run/missing.json"
invoke fluidity-kill "$ROOT/.run/missing.json"

step "Deployments: mark, drain, reap (retired because its tasks reported ShutdownReady)"
"$PY" scripts/demo_world.py deploy v1
"$BIN/fluidity-mark-deployment" --cluster deployments --name shop --id v1 2>/dev/null | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("marked v1: changed", r["changed"])'
"$PY" scripts/demo_world.py deploy v2
"$BIN/fluidity-mark-deployment" --cluster deployments --name shop --id v2 2>/dev/null | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("marked v2 active, draining:", [(d["service"], d["drainingSince"]) for d in r["draining"]])'
"$PY" scripts/demo_world.py deployments
# The original test plan's settings, with MIN_AGE 0 since the demo's services are seconds old.
export CLUSTER=deployments DEPLOYMENT_NAME=shop PERIOD=60 CONSEC=2 MIN_AGE_SEC=0 MAX_AGE_HR=1
reaper_run() {
  echo "-- reaper run $1"
  "$BIN/fluidity-reaper" fixtures/fluidity-reaper/eventbridge-schedule.json 2>>"$ROOT/.run/demo-logs.jsonl" \
    | "$PY" -c 'import json,sys; r=json.load(sys.stdin); [print("  ", s["service"], s["action"], "-", s["reason"]) for s in r["services"]]'
  "$PY" scripts/demo_world.py deployments
}
reaper_run 1
echo "-- v1's drain watchers see 'draining' and, after their grace, report ShutdownReady = 1"
"$PY" scripts/demo_world.py tasks-ready v1
reaper_run 2
reaper_run 3
unset CLUSTER DEPLOYMENT_NAME PERIOD CONSEC MIN_AGE_SEC MAX_AGE_HR

step "The incident world"
"$PY" scripts/demo_world.py incident-setup "$ROOT/.run"
export TARGETS_FILE="$ROOT/.run/targets.json" SNS_TOPIC_ARN="$(cat "$ROOT/.run/topic-arn")"
export LEDGER_TABLE="$(cat "$ROOT/.run/ledger-table")"
export BUDGET_PER_TARGET_ACTION=2/3600 # the demo spends a budget: 2 restarts of one target an hour
export RESTART_COOLDOWN_SECONDS=0 # the demo service was created a moment ago; its rollout would block a restart
run_action() { # binary, description, JSON request, what to show afterwards
  local bin="$1" what="$2" request="$3" show="${4:-}"
  echo "$request" > "$ROOT/.run/request.json"
  echo "-- $what"
  echo "   request:  $request"
  "$BIN/$bin" "$ROOT/.run/request.json" 2>>"$ROOT/.run/demo-logs.jsonl" \
    | "$PY" -c 'import json,sys; r=json.load(sys.stdin); print("   answer:   %s %s: %s%s" % (r["statusCode"], "ok" if r["success"] else r["error"]["code"], r["message"], " (replayed: the recorded answer)" if r.get("replayed") else "")); [print("   adjusted: %s: %s" % (a["field"], a["change"])) for a in r["details"].get("adjustments", [])]'
  if [ -n "$show" ]; then "$PY" scripts/demo_world.py incident-show "$show"; fi
}

step "INC-42: checkout API failing; the backend runs the playbook"
run_action incident-restart-service "restart the API" \
  '{"action":"restart_service","target":"api","incidentId":"INC-42","priority":"critical"}' api
run_action incident-scale-up "scale the API up (critical: 10 tasks)" \
  '{"action":"scale_up","target":"api","incidentId":"INC-42","priority":"critical"}' api
run_action incident-scale-up "scale the database up (dry run first)" \
  '{"action":"scale_up","target":"database","incidentId":"INC-42","priority":"critical","dryRun":true}' database
run_action incident-scale-up "scale the database up" \
  '{"action":"scale_up","target":"database","incidentId":"INC-42","priority":"critical"}' database
run_action incident-scale-up "scale the cache up one node type" \
  '{"action":"scale_up","target":"cache","incidentId":"INC-42","priority":"high"}' cache
run_action incident-clear-cache "drop the stale sessions only (SCAN + UNLINK)" \
  '{"action":"clear_cache","target":"sessions","incidentId":"INC-42","priority":"high","keyPattern":"session:*"}' sessions
run_action incident-restart-service "a target that does not exist" \
  '{"action":"restart_service","target":"default-service","incidentId":"INC-42","priority":"high"}'
run_action incident-scale-up "the backend's client timed out and it retries the scale-up: answered from the ledger, nothing done twice" \
  '{"action":"scale_up","target":"api","incidentId":"INC-42","priority":"critical"}' api

step "A remediation loop: an alarm keeps firing, the backend keeps restarting the API (budget: 2 an hour)"
run_action incident-restart-service "restart for INC-43" \
  '{"action":"restart_service","target":"api","incidentId":"INC-43","priority":"high"}'
run_action incident-restart-service "restart for INC-44: the budget is spent, nothing is called" \
  '{"action":"restart_service","target":"api","incidentId":"INC-44","priority":"high"}'

step "Humans take over: pause automation, and resume it"
"$BIN/incident-ledger" pause --reason "on-call has the incident" --by demo 2>>"$ROOT/.run/demo-logs.jsonl"
run_action incident-scale-up "scale the cache while paused" \
  '{"action":"scale_up","target":"cache","incidentId":"INC-45","priority":"critical"}' cache
"$BIN/incident-ledger" resume 2>>"$ROOT/.run/demo-logs.jsonl"

"$PY" scripts/demo_world.py record
run_action incident-notify-human "page the on-call engineer for INC-42: the page lists what automation did" \
  '{"action":"notify_human","incidentId":"INC-42","priority":"critical","incidentDetails":{"title":"Checkout API failing","description":"5xx at 38%"}}'

run_action incident-notify-human "ten minutes later, a follow-up page for INC-42 with new words: it is another page, and it is delivered" \
  '{"action":"notify_human","incidentId":"INC-42","priority":"critical","incidentDetails":{"title":"Checkout API failing","description":"restart did not help, database unreachable"}}'
run_action incident-notify-human "the backend retries that follow-up: answered from the ledger, paged once" \
  '{"action":"notify_human","incidentId":"INC-42","priority":"critical","incidentDetails":{"title":"Checkout API failing","description":"restart did not help, database unreachable"}}'

run_action incident-notify-human "page the on-call engineer: the backend forwards its own incident record (a
   227-character title with a tab in it, fields of its own, no priority), and the page goes out all the same" \
  "$(cat fixtures/incident-notify-human/forwarded-incident-record-LIVE.json)"

step "INC-46: a bad deployment of the API; the page names it, and a human approves the rollback"
"$PY" scripts/demo_world.py bad-deploy
run_action incident-notify-human "page the on-call engineer for INC-46 about the API: the page names the likely cause" \
  '{"action":"notify_human","target":"api","incidentId":"INC-46","priority":"critical","incidentDetails":{"title":"Checkout API 5xx since the last deploy"}}'
ROLLBACK='{"action":"rollback_service","target":"api","incidentId":"INC-46","priority":"critical"'
run_action incident-rollback-service "roll the API back: that changes code in production, so it waits for a human's approval" \
  "$ROLLBACK}" api
run_action incident-rollback-service "the on-call engineer reads the plan (a dry run): back to the task definition that served before the deployment" \
  "$ROLLBACK,\"dryRun\":true}"
token="$("$BIN/incident-rollback-service" "$ROOT/.run/request.json" 2>>"$ROOT/.run/demo-logs.jsonl" \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["details"]["planToken"])')"
run_action incident-rollback-service "approved: the same request with the dry run's planToken rolls the API back" \
  "$ROLLBACK,\"planToken\":\"$token\"}" api
run_action incident-rollback-service "asked again for INC-47: the last deployment is the rollback itself, which is never rolled back" \
  '{"action":"rollback_service","target":"api","incidentId":"INC-47","priority":"critical"}'

step "What the on-call engineer received"
"$PY" scripts/demo_world.py inbox "$ROOT/.run"

step "The incident's history in the ledger (incident-ledger history INC-42)"
"$BIN/incident-ledger" history INC-42 >"$ROOT/.run/history.json" 2>>"$ROOT/.run/demo-logs.jsonl"
"$PY" scripts/demo_world.py history "$ROOT/.run/history.json"

step "After the incident: restore what automation scaled up (incident-ledger restore INC-42)"
echo "-- a human moved the database to db.r5.xlarge during the incident: it is left alone"
"$PY" - <<'PY'
import boto3, os
boto3.client("rds", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).modify_db_instance(
    DBInstanceIdentifier="production-db", DBInstanceClass="db.r5.xlarge", ApplyImmediately=True)
PY
"$BIN/incident-ledger" restore INC-42 --dry-run 2>>"$ROOT/.run/demo-logs.jsonl" \
  | "$PY" -c 'import json,sys; [print("   dry run: %-9s %s" % (t["target"], t["status"])) for t in json.load(sys.stdin)["targets"]]'
"$BIN/incident-ledger" restore INC-42 2>>"$ROOT/.run/demo-logs.jsonl" \
  | "$PY" -c 'import json,sys; [print("   done:    %-9s %s %s %s" % (t["target"], t["status"], t.get("to", t.get("now", "")), ("(" + t["when"].replace("_", " ") + ")") if "when" in t else "")) for t in json.load(sys.stdin)["targets"]]'
for what in api database cache; do echo "   $what:"; "$PY" scripts/demo_world.py incident-show "$what"; done
step "Closing the loop: CloudWatch alarms start their playbooks (incident-playbook)"
"$PY" scripts/demo_loop.py setup "$ROOT/.run"
# The stack sets these to the actions' ARNs; the emulator's Invoke runs each action's built binary.
export RESTART_SERVICE_FUNCTION=demo-restart-service SCALE_UP_FUNCTION=demo-scale-up \
  CLEAR_CACHE_FUNCTION=demo-clear-cache NOTIFY_HUMAN_FUNCTION=demo-notify-human \
  ROLLBACK_SERVICE_FUNCTION=demo-rollback-service
playbook() { # description, event file
  echo "-- $1"
  "$BIN/incident-playbook" "$2" >"$ROOT/.run/playbook.json" 2>>"$ROOT/.run/demo-logs.jsonl" || true
  "$PY" scripts/demo_loop.py show "$ROOT/.run/playbook.json"
}
"$PY" scripts/demo_loop.py alarm-event production-api-5xx "$ROOT/.run/api-alarm.json"
playbook "production-api-5xx goes to ALARM and invokes the playbook: step 1, restart the API" "$ROOT/.run/api-alarm.json"
"$PY" scripts/demo_loop.py deployment-event FAILED "$ROOT/.run/playbook.json" "$ROOT/.run/deployment.json"
playbook "ECS says the restart's deployment failed: the verdict is failed, step 2 scales the API up" "$ROOT/.run/deployment.json"
"$PY" scripts/demo_world.py incident-show api
"$PY" scripts/demo_loop.py set-alarm production-api-5xx OK
"$PY" scripts/demo_loop.py alarm-event production-api-5xx "$ROOT/.run/api-ok.json"
playbook "the 5xx stop and the alarm returns to OK: the scale-up is verified, and no one is paged" "$ROOT/.run/api-ok.json"
playbook "CloudWatch delivers the ALARM transition again: the playbook acts once" "$ROOT/.run/api-alarm.json"
"$PY" scripts/demo_loop.py alarm-event production-auth-5xx "$ROOT/.run/auth-alarm.json"
playbook "production-auth-5xx goes to ALARM: its playbook has one step, restart the auth service" "$ROOT/.run/auth-alarm.json"
"$PY" scripts/demo_loop.py deployment-event FAILED "$ROOT/.run/playbook.json" "$ROOT/.run/deployment.json"
playbook "that deployment fails too: no step is left, one page with the evidence" "$ROOT/.run/deployment.json"
playbook "the 1-minute sweep: no run is due and no page is sent twice. It judges the backend's changes
   too (INC-42, INC-43, INC-46): each waits until its resource shows it, or its 10 minutes pass (the restore put
   the API and the cache back, a human moved the database, and moto never completes a rollout)" \
  fixtures/incident-playbook/schedule-LIVE.json
echo "-- what the on-call engineer received from the loop"
"$PY" scripts/demo_loop.py inbox

echo
echo "Audit lines (one per action) are in .run/demo-logs.jsonl, e.g.:"
grep '"audit":true' "$ROOT/.run/demo-logs.jsonl" | tail -1
