#!/usr/bin/env python3
"""Creates and shows the local demo world in the emulator (moto server) and Redis, with boto3.

    demo_world.py setup                 the Fluidity demo ECS cluster and service (idempotent)
    demo_world.py show                  the demo service's desired count
    demo_world.py incident-setup DIR    the incident world; writes DIR/targets.json and DIR/topic-arn
    demo_world.py incident-show WHAT    one line about api | database | cache | sessions
    demo_world.py bad-deploy            a new build of the API (a new task definition) deployed, the bad one
    demo_world.py record                start moto's request recorder (to show what SNS was sent)
    demo_world.py inbox DIR             the alerts that reached the on-call inbox (an SQS queue), and the
                                        SMS form of each, from the Publish request as SNS received it
    demo_world.py activity N SECONDS    the Fluidity server reports N active connections, last activity SECONDS ago
    demo_world.py deploy VERSION        svc-shop-VERSION with two running tasks
    demo_world.py tasks-ready VERSION   its tasks report ShutdownReady = 1 for the last two minutes
    demo_world.py deployments           the deployments' services, tags and SSM state
"""
import datetime
import json
import time
import os
import subprocess
import sys

import boto3

CLUSTER = os.environ.get("DEMO_CLUSTER", "fluidity-demo")
SERVICE = os.environ.get("DEMO_SERVICE", "fluidity-server")
PROD = "production"


def client(name):
    return boto3.client(name, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def ensure_service(ecs, cluster, service, desired):
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=service, containerDefinitions=[{"name": "app", "image": f"{service}:latest", "memory": 512}]
    )
    existing = ecs.describe_services(cluster=cluster, services=[service])["services"]
    if any(s["status"] == "ACTIVE" for s in existing):
        ecs.update_service(cluster=cluster, service=service, desiredCount=desired)
    else:
        ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=service, desiredCount=desired)


def setup():
    ensure_service(client("ecs"), CLUSTER, SERVICE, 1)
    print(f"demo world: cluster {CLUSTER}, service {SERVICE} at desiredCount 1")


def stop():
    client("ecs").update_service(cluster=CLUSTER, service=SERVICE, desiredCount=0)
    print(f"demo world: {SERVICE} stopped (desiredCount 0), as after a night's kill")


def show():
    svc = client("ecs").describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    print(json.dumps({"service": SERVICE, "desiredCount": svc["desiredCount"], "status": svc["status"]}))


def redis_command(*args):
    """Runs one command with redis-cli against REDIS_URL."""
    out = subprocess.run(["redis-cli", "-u", os.environ["REDIS_URL"], *map(str, args)],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def drain(sqs, queue):
    """Empties a queue of earlier demo runs' messages (PurgeQueue may only run once a minute)."""
    while True:
        old = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not old:
            return
        for m in old:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])


def incident_setup(out_dir):
    ecs, rds, ec = client("ecs"), client("rds"), client("elasticache")
    ensure_service(ecs, PROD, "production-api-service", 2)
    try:
        rds.create_db_instance(DBInstanceIdentifier="production-db", DBInstanceClass="db.r5.large", Engine="postgres",
                               AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="demo-only-password")
    except rds.exceptions.DBInstanceAlreadyExistsFault:
        rds.modify_db_instance(DBInstanceIdentifier="production-db", DBInstanceClass="db.r5.large", ApplyImmediately=True)
    try:
        ec.create_replication_group(ReplicationGroupId="production-cache", ReplicationGroupDescription="demo",
                                    Engine="redis", CacheNodeType="cache.r6g.large", NumCacheClusters=2)
    except ec.exceptions.ReplicationGroupAlreadyExistsFault:
        ec.modify_replication_group(ReplicationGroupId="production-cache", CacheNodeType="cache.r6g.large")
    redis_command("FLUSHALL")
    for i in range(0, 3000, 500):
        args = []
        for j in range(i, i + 500):
            args += [f"session:{j}", "x"] if j % 3 else [f"user:{j}", "x"]
        redis_command("MSET", *args)
    sns, sqs = client("sns"), client("sqs")
    topic = sns.create_topic(Name="incident-oncall")["TopicArn"]
    queue = sqs.create_queue(QueueName="oncall-inbox")["QueueUrl"]
    drain(sqs, queue)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    redis_url = os.environ["REDIS_URL"]
    targets = {
        "api": {"kind": "ecs_service", "cluster": PROD, "service": "production-api-service",
                "desiredCount": {"low": 5, "medium": 5, "high": 5, "critical": 10}, "maxCount": 20},
        "database": {"kind": "rds_instance", "instanceId": "production-db",
                     "instanceClass": {"low": "db.r5.xlarge", "medium": "db.r5.xlarge", "high": "db.r5.xlarge",
                                       "critical": "db.r5.2xlarge"},
                     "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge", "db.r5.4xlarge"]},
        "cache": {"kind": "redis", "url": f"{redis_url}/1",
                  "elasticache": {"replicationGroupId": "production-cache", "scaleBy": "node_type",
                                  "nodeTypeLadder": ["cache.r6g.large", "cache.r6g.xlarge", "cache.r6g.2xlarge"]}},
        "sessions": {"kind": "redis", "url": redis_url},
    }
    with open(os.path.join(out_dir, "targets.json"), "w") as f:
        json.dump(targets, f, indent=2)
    with open(os.path.join(out_dir, "topic-arn"), "w") as f:
        f.write(topic)
    # The incident ledger, made as the actions stack makes it; a new one per demo run.
    dynamodb = client("dynamodb")
    table = f"incident-ledger-demo-{int(time.time())}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                                {"AttributeName": "sk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True})
    with open(os.path.join(out_dir, "ledger-table"), "w") as f:
        f.write(table)
    print("incident world: ECS production/production-api-service (2 tasks), RDS production-db (db.r5.large),")
    print("  ElastiCache production-cache (cache.r6g.large), Redis with 3000 keys, SNS incident-oncall -> SQS oncall-inbox,")
    print(f"  the incident ledger {table} (DynamoDB)")


def incident_show(what):
    if what == "api":
        svc = client("ecs").describe_services(cluster=PROD, services=["production-api-service"])["services"][0]
        primary = [d for d in svc["deployments"] if d["status"] == "PRIMARY"][0]
        print(f"  now: desiredCount {svc['desiredCount']}, primary deployment {primary['id']}, "
              f"task definition {svc['taskDefinition'].rsplit('/', 1)[-1]}")
    elif what == "database":
        db = client("rds").describe_db_instances(DBInstanceIdentifier="production-db")["DBInstances"][0]
        print(f"  now: {db['DBInstanceClass']} ({db['DBInstanceStatus']})")
    elif what == "cache":
        rg = client("elasticache").describe_replication_groups(ReplicationGroupId="production-cache")
        print(f"  now: {rg['ReplicationGroups'][0]['CacheNodeType']}")
    elif what == "sessions":
        print(f"  now: {redis_command('DBSIZE')} keys in Redis")


def bad_deploy():
    """A new build of the API: its task definition's next revision, deployed by UpdateService. The
    emulator keeps the service deployment (scripts/emulator_deployments.py), as ECS would."""
    ecs = client("ecs")
    running = ecs.describe_services(cluster=PROD, services=["production-api-service"])["services"][0]["taskDefinition"]
    current = ecs.describe_task_definition(taskDefinition=running)["taskDefinition"]
    containers = [dict(c, image="public.ecr.aws/nginx/nginx:checkout-2026-12-06") for c in current["containerDefinitions"]]
    new = ecs.register_task_definition(family=current["family"], containerDefinitions=containers)["taskDefinition"]
    ecs.update_service(cluster=PROD, service="production-api-service", taskDefinition=new["taskDefinitionArn"])
    print(f"  deployed {new['family']}:{new['revision']} (image {containers[0]['image']}); the 5xx start")


def activity(connections, seconds_ago):
    """What the Fluidity server publishes (PutMetricData, namespace Fluidity, Service=<name>), as of SECONDS ago:
    its active connections then, and that moment as its last activity."""
    when = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=int(seconds_ago))
    dims = [{"Name": "Service", "Value": SERVICE}]
    client("cloudwatch").put_metric_data(Namespace="Fluidity", MetricData=[
        {"MetricName": "ActiveConnections", "Dimensions": dims, "Timestamp": when, "Value": float(connections)},
        {"MetricName": "LastActivityEpochSeconds", "Dimensions": dims, "Timestamp": when,
         "Value": float(int(when.timestamp()))},
    ])
    print(f"  the server reported at {when:%H:%M:%S} UTC: ActiveConnections {connections}, last activity then")


def keep_tasks_running():
    """moto moves a task one step towards STOPPED on every DescribeTasks; the demo's tasks keep running."""
    import urllib.request
    body = json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 100000}}).encode()
    urllib.request.urlopen(urllib.request.Request(os.environ["AWS_ENDPOINT_URL"] + "/moto-api/state-manager/set-transition",
                                                  data=body, method="POST"))


def deploy(version):
    """Deploys svc-shop-<version> in cluster 'deployments', with two running tasks."""
    keep_tasks_running()
    ecs = client("ecs")
    service = f"svc-shop-{version}"
    ensure_service(ecs, "deployments", service, 2)
    ecs.update_service(cluster="deployments", service=service, desiredCount=2)  # moto: runningCount follows
    ecs.run_task(cluster="deployments", taskDefinition=service, count=2, group=f"service:{service}", launchType="FARGATE")
    print(f"deployed {service} (2 tasks)")


def tasks_ready(version):
    """Each running task of svc-shop-<version> reports ShutdownReady = 1 in the last two 60 s periods: the
    datapoints its drain watcher's EMF lines would have made, put at once so the demo need not wait."""
    ecs, cw = client("ecs"), client("cloudwatch")
    service = f"svc-shop-{version}"
    arns = ecs.list_tasks(cluster="deployments", desiredStatus="RUNNING")["taskArns"]
    tasks = [t for t in ecs.describe_tasks(cluster="deployments", tasks=arns)["tasks"] if t.get("group") == f"service:{service}"] if arns else []
    now = datetime.datetime.now(datetime.timezone.utc)
    data = []
    for task in tasks:
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        dims = [{"Name": "deployment_name", "Value": "shop"}, {"Name": "deployment_id", "Value": version},
                {"Name": "task_id", "Value": task_id}]
        for ago in (90, 30):
            data.append({"MetricName": "ShutdownReady", "Dimensions": dims, "Unit": "Count",
                         "Timestamp": now - datetime.timedelta(seconds=ago), "Value": 1.0})
    if data:
        cw.put_metric_data(Namespace="App/Drain", MetricData=data)
    print(f"  {len(tasks)} task(s) of {service} report ShutdownReady = 1 for the last two minutes")


def deployments():
    ecs, ssm = client("ecs"), client("ssm")
    arns = ecs.list_services(cluster="deployments")["serviceArns"]
    for s in ecs.describe_services(cluster="deployments", services=arns, include=["TAGS"])["services"] if arns else []:
        tags = {t["key"]: t["value"] for t in s.get("tags", [])}
        version = s["serviceName"].removeprefix("svc-shop-")
        try:
            param = ssm.get_parameter(Name=f"/apps/shop/{version}/state")["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            param = "(none)"
        print(f"  {s['serviceName']}: {s['status']}, desired {s['desiredCount']}, tag state={tags.get('state')}, SSM={param}")


def moto_api(path, body=None):
    import urllib.request
    request = urllib.request.Request(os.environ["AWS_ENDPOINT_URL"] + path, data=json.dumps(body or {}).encode(),
                                     method="POST")
    return urllib.request.urlopen(request).read().decode()


def record():
    moto_api("/moto-api/recorder/reset-recording")
    moto_api("/moto-api/recorder/start-recording")


def sms_forms():
    """The `sms` form of every structured Publish moto received since `record` (moto delivers no SMS)."""
    import base64
    import urllib.parse
    import urllib.request
    recording = urllib.request.urlopen(os.environ["AWS_ENDPOINT_URL"] + "/moto-api/recorder/download-recording")
    forms = []
    for line in recording.read().decode().splitlines():
        entry = json.loads(line)
        body = entry.get("body") or ""
        if entry.get("body_encoded"):
            body = base64.b64decode(body).decode(errors="replace")
        params = dict(urllib.parse.parse_qsl(body)) if "Action=Publish" in body else {}
        if params.get("MessageStructure") == "json":
            forms.append(json.loads(params["Message"])["sms"])
    moto_api("/moto-api/recorder/stop-recording")
    return forms


def history(path):
    """incident-ledger history's answer, one line per record."""
    def plain(state):  # a typed state without its kind, as people read it
        return {k: v for k, v in state.items() if k != "kind"}
    for r in json.load(open(path))["records"]:
        kind = (r["before"] or {}).get("kind")
        shown = r["before"] not in (None, r["after"]) and kind not in ("ecs_deployment", "page")
        change = f"  ({plain(r['before'])} -> {plain(r['after'])})" if shown else ""
        print(f"  {r['at'][11:19]} {r['action']:<16} {r['target']:<9} {r['outcome']:<17} {r['message'][:90]}{change}")


def inbox(out_dir):
    sqs = client("sqs")
    queue = sqs.get_queue_url(QueueName="oncall-inbox")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"]).get("Messages", [])
    for m in messages:
        envelope = json.loads(m["Body"])
        attrs = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
        print("  -- the email (and SQS) form")
        print(f"  Subject: {envelope['Subject']}")
        print(f"  Attributes: {attrs}")
        print("  " + envelope["Message"].replace("\n", "\n  "))
    for sms in sms_forms():
        septets = sum(2 if c in "^{}\\[~]|€" else 1 for c in sms)
        print(f"  -- the SMS form ({septets} of 160 GSM-7 septets: one SMS)")
        print(f"  {sms}")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"setup": setup, "stop": stop, "show": show, "incident-setup": incident_setup, "incident-show": incident_show,
     "inbox": inbox, "record": record, "deploy": deploy, "deployments": deployments, "activity": activity,
     "tasks-ready": tasks_ready, "history": history, "bad-deploy": bad_deploy}[command](*args)
