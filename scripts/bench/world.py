"""What the functions act on, in moto, and each function's environment and steady-state event."""
import json
import os
import time
import urllib.request
import uuid

import boto3

from .settings import MOTO, OUT, PASSWORD_REDIS_PORT, REDIS_URL


def clients():
    return {name: boto3.client(name, endpoint_url=MOTO, region_name="us-east-1")
            for name in ("ecs", "sns", "secretsmanager", "cloudwatch", "dynamodb")}


def service(ecs, cluster, name, desired):
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family=f"{name}-task", containerDefinitions=[
        {"name": "app", "image": "public.ecr.aws/nginx/nginx:latest", "memory": 512}])
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=f"{name}-task", desiredCount=desired)


def world():
    """The resources each function acts on, and each function's environment and steady-state event."""
    c = clients()
    run = uuid.uuid4().hex[:8]
    cluster = f"bench-{run}"
    service(c["ecs"], cluster, "kill-svc", 1)
    service(c["ecs"], cluster, "wake-svc", 1)      # desired 1, running 0 in moto: "starting"
    service(c["ecs"], cluster, "sleep-svc", 0)     # stopped: no metric query
    service(c["ecs"], cluster, "idle-svc", 1)      # running, idle for an hour: scaled down, once
    service(c["ecs"], cluster, "busy-svc", 1)      # running, busy: metrics read, left up
    now = time.time()
    for name, connections in (("idle-svc", 0.0), ("busy-svc", 3.0)):
        dims = [{"Name": "Service", "Value": name}]
        c["cloudwatch"].put_metric_data(Namespace="Fluidity", MetricData=[
            {"MetricName": "ActiveConnections", "Dimensions": dims, "Timestamp": now - 60, "Value": connections},
            {"MetricName": "LastActivityEpochSeconds", "Dimensions": dims, "Timestamp": now - 60,
             "Value": float(int(now - 3600 if connections == 0 else now - 60))}])
    service(c["ecs"], cluster, "api", 2)
    service(c["ecs"], cluster, "stopped-svc", 0)
    service(c["ecs"], cluster, "restart-svc", 2)   # restarted once, by the counted path, minutes from now
    service(c["ecs"], cluster, "rollback-svc", 2)  # a second build deployed: the rollback's dry run plans from it
    second = c["ecs"].register_task_definition(family="rollback-svc-task", containerDefinitions=[
        {"name": "app", "image": "public.ecr.aws/nginx/nginx:second", "memory": 512}])["taskDefinition"]
    c["ecs"].update_service(cluster=cluster, service="rollback-svc", taskDefinition=second["taskDefinitionArn"])
    topic = c["sns"].create_topic(Name=f"oncall-{run}")["TopicArn"]
    secret = c["secretsmanager"].create_secret(Name=f"redis-{run}", SecretString="bench-Pa55")["ARN"]
    targets = json.dumps({
        "api": {"kind": "ecs_service", "cluster": cluster, "service": "api",
                "desiredCount": {"low": 2, "medium": 2, "high": 2, "critical": 3}, "maxCount": 6},
        "cache": {"kind": "redis", "url": REDIS_URL},
        "restart-me": {"kind": "ecs_service", "cluster": cluster, "service": "restart-svc",
                       "desiredCount": {"low": 2, "medium": 2, "high": 2, "critical": 3}, "maxCount": 6},
        "rollback-me": {"kind": "ecs_service", "cluster": cluster, "service": "rollback-svc",
                        "desiredCount": {"low": 2, "medium": 2, "high": 2, "critical": 3}, "maxCount": 6},
    })
    lifecycle = lambda svc: {"ECS_CLUSTER_NAME": cluster, "ECS_SERVICE_NAME": svc}
    action = lambda kind, **extra: dict({"action": kind, "target": "api", "incidentId": "INC-1",
                                         "priority": "high"}, **extra)
    functions = {
        "fluidity-kill": (lifecycle("kill-svc"), {}),
        "fluidity-wake": (lifecycle("wake-svc"), {}),
        "fluidity-sleep": (lifecycle("sleep-svc"), {}),
        "fluidity-reaper": ({"CLUSTER": cluster, "DEPLOYMENT_NAME": "bench"}, {}),
        "incident-restart-service": ({"TARGETS_JSON": targets, "RESTART_COOLDOWN_SECONDS": "0"},
                                     action("restart_service")),
        "incident-scale-up": ({"TARGETS_JSON": targets}, action("scale_up")),
        "incident-clear-cache": ({"TARGETS_JSON": targets}, action("clear_cache", target="cache")),
        # A dry run (its four describes): a real rollback would need a new deployment per invocation.
        "incident-rollback-service": ({"TARGETS_JSON": targets},
                                      action("rollback_service", target="rollback-me", dryRun=True)),
        # With the map, as deployed (its pages may name a likely cause); this page names no target.
        "incident-notify-human": ({"SNS_TOPIC_ARN": topic, "TARGETS_JSON": targets},
                                  {"action": "notify_human", "incidentId": "INC-1", "priority": "low",
                                   "incidentDetails": {"title": "bench", "description": "benchmark page"}}),
        # The 1-minute sweep on a ledger with nothing open: its two reads of the ledger.
        "incident-playbook": ({"TARGETS_JSON": targets, "LEDGER_TABLE": ledger_table(c["dynamodb"]),
                               "RESTART_SERVICE_FUNCTION": "restart", "SCALE_UP_FUNCTION": "scale",
                               "CLEAR_CACHE_FUNCTION": "clear", "NOTIFY_HUMAN_FUNCTION": "notify",
                               "ROLLBACK_SERVICE_FUNCTION": "rollback"},
                              {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
    }
    # One-off paths whose calls are counted against the minimum:
    # (function, path, environment, event, minimum, invocations in one process).
    paths = [
        ("fluidity-kill", "kill", lifecycle("kill-svc"), {}, "1", 1),
        ("fluidity-wake", "wake a stopped service (waking)", lifecycle("stopped-svc"), {}, "1 describe + 1 update", 1),
        ("fluidity-wake", "wake a starting service", lifecycle("wake-svc"), {}, "1 describe", 1),
        ("fluidity-wake", "wake a running service (+ task address)", lifecycle("stopped-svc"), {},
         "1 describe (+ the address lookup the issue adds)", 1),
        ("fluidity-sleep", "sleep a stopped service", lifecycle("sleep-svc"), {}, "1 describe", 1),
        ("fluidity-sleep", "sleep a running, busy service", lifecycle("busy-svc"), {},
         "1 describe + 1 GetMetricData (both queries)", 1),
        # Threshold 3 s: idle-svc's creation (its wake) is older than that by the time this runs.
        ("fluidity-sleep", "sleep a running, idle service (scaled down)",
         dict(lifecycle("idle-svc"), IDLE_THRESHOLD_MINUTES="0.05"), {}, "1 describe + 1 GetMetricData + 1 update", 1),
        ("incident-restart-service", "restart as deployed (ledger, claim, deployment)",
         # Cooldown 5 s: restart-svc's own creation (a rollout) is older than that by the time this runs.
         {"TARGETS_JSON": targets, "RESTART_COOLDOWN_SECONDS": "5", "LEDGER_TABLE": ledger_table(c["dynamodb"])},
         action("restart_service", target="restart-me"),
         "1 describe + 1 update, and the ledger's: the pause and budget read, the history count and the key "
         "(one round), the claim, one update per budget and the key marked applying (one round), the record "
         "and the key completed in one transaction", 1),
        ("incident-notify-human", "page", {"SNS_TOPIC_ARN": topic}, functions["incident-notify-human"][1], "1", 1),
        ("incident-clear-cache", "flush twice, password from Secrets Manager",
         {"TARGETS_JSON": json.dumps({"cache": {"kind": "redis", "url": f"redis://127.0.0.1:{PASSWORD_REDIS_PORT}",
                                                "passwordSecretArn": secret}})},
         action("clear_cache", target="cache"), "1 GetSecretValue for both (cached after the first)", 2),
    ]
    return functions, paths


def large_map(cluster):
    """A deployed-size target map: 100 targets of every kind, as deploy.sh packages it (TARGETS_FILE)."""
    targets = {}
    for i in range(100):
        if i % 4 == 0:
            targets[f"svc-{i:03d}"] = {"kind": "ecs_service", "cluster": cluster, "service": f"svc-{i:03d}",
                                       "desiredCount": {"low": 2, "medium": 3, "high": 4, "critical": 6}, "maxCount": 10}
        elif i % 4 == 1:
            targets[f"db-{i:03d}"] = {"kind": "rds_instance", "instanceId": f"db-{i:03d}",
                                      "instanceClass": {"low": "db.r5.large", "medium": "db.r5.large",
                                                        "high": "db.r5.xlarge", "critical": "db.r5.2xlarge"},
                                      "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]}
        elif i % 4 == 2:
            targets[f"cache-{i:03d}"] = {"kind": "redis", "url": f"rediss://cache-{i:03d}.example.internal:6379",
                                         "passwordSecretArn": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:c{i}-AbCdEf",
                                         "elasticache": {"replicationGroupId": f"cache-{i:03d}", "scaleBy": "node_type",
                                                         "nodeTypeLadder": ["cache.r6g.large", "cache.r6g.xlarge"]}}
        else:
            targets[f"hosts-{i:03d}"] = {"kind": "ec2_instances", "instanceIds": [f"i-{i:017x}"]}
    path = os.path.join(OUT, "targets-100.json")
    os.makedirs(OUT, exist_ok=True)
    with open(path, "w") as f:
        json.dump(targets, f)
    return path, os.path.getsize(path)


def ledger_table(dynamodb):
    """The incident ledger's table, as the actions stack makes it."""
    name = f"bench-ledger-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    return name


def moto_api(path, body=None):
    request = urllib.request.Request(MOTO + path, data=json.dumps(body or {}).encode(), method="POST")
    urllib.request.urlopen(request).read()


def keep_tasks_running():
    """moto moves a task one step towards STOPPED on every DescribeTasks; the bench's tasks keep running."""
    moto_api("/moto-api/state-manager/set-transition",
             {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}})


def scale_back(env):
    """Puts the bench's "api" service back to 2 tasks, straight in moto (not through the proxy)."""
    api = json.loads(env["TARGETS_JSON"])["api"]
    clients()["ecs"].update_service(cluster=api["cluster"], service=api["service"], desiredCount=2)
