#!/usr/bin/env python3
"""The closed loop's part of the demo world (incident-playbook), with boto3 against the emulator.

    demo_loop.py setup DIR                  the auth service, the playbooks in DIR/targets.json, the actions
                                            deployed as Lambda functions (the emulator's Invoke runs their
                                            binaries), two alarms in ALARM, and a queue on the on-call topic
    demo_loop.py alarm-event NAME OUT       the event CloudWatch invokes the playbook with for NAME's current state
    demo_loop.py set-alarm NAME STATE       SetAlarmState, as the metric would
    demo_loop.py deployment-event KIND ANSWER OUT   ECS's SERVICE_DEPLOYMENT_<KIND> event for the deployment the
                                            playbook's ANSWER waits for
    demo_loop.py show ANSWER                the playbook's answer: its outcome and evidence
    demo_loop.py inbox                      the pages that reached the loop's queue since setup
"""
import json
import os
import sys

from demo_world import PROD, client, drain, ensure_service

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures", "incident-playbook")
ROLE = "arn:aws:iam::123456789012:role/incident-demo-actions"
FUNCTIONS = ["restart-service", "scale-up", "clear-cache", "notify-human", "rollback-service"]
ALARMS = {"production-api-5xx": "api-errors", "production-auth-5xx": "auth-errors"}


def playbooks():
    return {
        "api-errors": {"alarms": ["production-api-5xx"], "target": "api", "priority": "high", "verifyWithinMinutes": 10,
                       "steps": [{"action": "restart_service"},
                                 {"action": "scale_up", "priority": "critical", "verifyWithinMinutes": 5}]},
        "auth-errors": {"alarms": ["production-auth-5xx"], "target": "auth-service", "priority": "critical",
                        "steps": [{"action": "restart_service"}]},
    }


def deploy_actions(out_dir):
    """The actions as the stack deploys them, demo-<action>, with the environment the stack gives them."""
    iam, lam = client("iam"), client("lambda")
    try:
        iam.create_role(RoleName=ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                    "Action": "sts:AssumeRole"}]}))
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    env = {"TARGETS_FILE": os.path.join(out_dir, "targets.json"),
           "LEDGER_TABLE": open(os.path.join(out_dir, "ledger-table")).read(),
           "SNS_TOPIC_ARN": open(os.path.join(out_dir, "topic-arn")).read(),
           "RESTART_COOLDOWN_SECONDS": "0"}  # the demo's services were created a moment ago
    for name in FUNCTIONS:
        try:
            lam.delete_function(FunctionName=f"demo-{name}")
        except lam.exceptions.ResourceNotFoundException:
            pass
        lam.create_function(FunctionName=f"demo-{name}", Runtime="provided.al2023", Role=ROLE, Handler="bootstrap",
                            Code={"ZipFile": b"PK\x05\x06" + bytes(18)}, Timeout=60, Environment={"Variables": env})


def setup(out_dir):
    ensure_service(client("ecs"), PROD, "production-auth-service", 3)
    path = os.path.join(out_dir, "targets.json")
    targets = json.load(open(path))
    targets["auth-service"] = {"kind": "ecs_service", "cluster": PROD, "service": "production-auth-service",
                               "desiredCount": {"low": 3, "medium": 3, "high": 4, "critical": 6}, "maxCount": 8}
    targets["playbooks"] = playbooks()
    json.dump(targets, open(path, "w"), indent=2)
    deploy_actions(out_dir)
    cloudwatch = client("cloudwatch")
    for alarm in ALARMS:
        cloudwatch.put_metric_alarm(AlarmName=alarm, Namespace="AWS/ApplicationELB", MetricName="HTTPCode_Target_5XX_Count",
                                    Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=10,
                                    ComparisonOperator="GreaterThanThreshold")
        set_alarm(alarm, "ALARM")
    sns, sqs = client("sns"), client("sqs")
    queue = sqs.create_queue(QueueName="loop-inbox")["QueueUrl"]
    drain(sqs, queue)
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=open(os.path.join(out_dir, "topic-arn")).read(), Protocol="sqs", Endpoint=arn)
    print("loop world: playbooks api-errors (restart, then scale up at critical) and auth-errors (restart);")
    print("  alarms production-api-5xx and production-auth-5xx in ALARM; the actions deployed as demo-<action>")


def set_alarm(name, state):
    client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state, StateReason=f"demo: {state}")


def alarm_event(name, out):
    alarm = client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
    event = json.load(open(os.path.join(FIXTURES, "alarm-invocation-LIVE.json")))
    event["alarmArn"] = alarm["AlarmArn"]
    data = event["alarmData"]
    data["alarmName"] = name
    data["state"]["value"] = alarm["StateValue"]
    data["state"]["reason"] = alarm["StateReason"]
    data["state"]["timestamp"] = alarm["StateUpdatedTimestamp"].strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    json.dump(event, open(out, "w"), indent=2)


def deployment_event(kind, answer, out):
    r = json.load(open(answer))
    waiting = r["waitingFor"] if "waitingFor" in r else r["runs"][0]["waitingFor"]
    event = json.load(open(os.path.join(FIXTURES, f"ecs-deployment-{kind.lower()}-LIVE.json")))
    event["detail"]["deploymentId"] = waiting["deploymentId"]
    event["resources"] = [f"arn:aws:ecs:us-east-1:123456789012:service/{waiting['cluster']}/{waiting['service']}"]
    json.dump(event, open(out, "w"), indent=2)
    print(f"   event:    ECS {event['detail']['eventName']} for {waiting['deploymentId']}")


def show(answer):
    r = json.load(open(answer))
    if "errorType" in r:
        print(f"   answer:   {r['errorType']}: {r['errorMessage']}")
    elif "runs" in r:  # an event or the sweep: every run it settled, and the backend's changes
        print(f"   answer:   {r['outcome']} {len(r['runs'])} run(s)")
        for run in r["runs"]:
            show_run(run)
        for change in r.get("changes", []):
            print(f"   change:   {change['change']}: {change.get('outcome', change.get('error'))}")
    else:
        show_run(r)


def show_run(r):
    where = f" (now {r['status']}, step {r['step']})" if "status" in r else ""
    print(f"   run:      {r.get('incidentId')}: {r['outcome']}{where}")
    for line in r.get("evidence", [])[-3:]:
        print(f"   evidence: {line[:150]}")


def inbox():
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName="loop-inbox")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    print(f"  {len(messages)} page(s)")
    for m in messages:
        envelope = json.loads(m["Body"])
        print(f"  Subject: {envelope['Subject']}")
        print("  " + envelope["Message"].replace("\n", "\n  "))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"setup": setup, "alarm-event": alarm_event, "set-alarm": set_alarm, "deployment-event": deployment_event,
     "show": show, "inbox": inbox}[command](*args)
