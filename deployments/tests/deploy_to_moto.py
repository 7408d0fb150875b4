#!/usr/bin/env python3
"""Deploys the stacks into the emulator's CloudFormation (moto) and checks that the resources exist.

Run with the emulator's environment (scripts/services.sh env). Each stack gets a fresh name, and its
resources are read back through the service APIs, not through CloudFormation's own records.
"""
import io
import json
import os
import sys
import uuid
import zipfile

import boto3

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import targets  # noqa: E402
from every_kind import every_kind  # noqa: E402  (beside this file)


def every_kind_grants():
    """The parameters deploy.sh derives from the dev map with a target of every kind (every_kind.py)."""
    shipped = every_kind(os.path.join(ROOT, "targets-dev.json"))
    return targets.grants(shipped, "aws", "us-east-1", "123456789012")
FUNCTIONS = ["fluidity-wake", "fluidity-sleep", "fluidity-kill", "fluidity-reaper", "incident-restart-service",
             "incident-scale-up", "incident-clear-cache", "incident-notify-human", "incident-playbook",
             "incident-rollback-service"]
passed, failed = 0, 0


def client(name):
    return boto3.client(name, endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what} {detail}")


def deploy(template, name, params):
    cfn = client("cloudformation")
    body = open(os.path.join(ROOT, "cloudformation", template)).read()
    cfn.create_stack(StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
                     Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    check(f"{template} created", stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason", ""))
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def main():
    suffix = uuid.uuid4().hex[:8]
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]

    # fargate.yaml: the cluster, the service at desired 0, the task definition, the security group.
    cluster = f"fluidity-{suffix}"
    out = deploy("fargate.yaml", f"fargate-{suffix}", {
        "ClusterName": cluster, "ServiceName": "fluidity-server", "ContainerImage": "fluidity-server:latest",
        "VpcId": vpc, "PublicSubnets": subnet, "AllowedIngressCidr": "203.0.113.10/32"})
    ecs = client("ecs")
    svc = ecs.describe_services(cluster=cluster, services=["fluidity-server"])["services"]
    check("ECS service exists at desired 0", svc and svc[0]["desiredCount"] == 0, str(svc))
    td = ecs.describe_task_definition(taskDefinition="fluidity-server")["taskDefinition"]
    # moto's CloudFormation handler keeps Memory but drops Cpu; the template's Cpu (256 by parameter)
    # is checked by cfn-lint and read by CloudFormation itself in AWS.
    check("task definition 512 MB, port 8443", td.get("memory") == "512"
          and td["containerDefinitions"][0]["portMappings"][0]["containerPort"] == 8443, str(td.get("memory")))
    sg = ec2.describe_security_groups(GroupIds=[out["SecurityGroupId"]])["SecurityGroups"][0]
    check("security group on 8443", any(p.get("FromPort") == 8443 for p in sg["IpPermissions"]), str(sg["IpPermissions"]))

    # actions.yaml: the four functions and the on-call topic, from zips in S3.
    s3 = client("s3")
    bucket = f"artifacts-{suffix}"
    s3.create_bucket(Bucket=bucket)
    for function in FUNCTIONS:
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as z:
            z.writestr("bootstrap", "#!/bin/sh\n")
        s3.put_object(Bucket=bucket, Key=f"r1/{function}.zip", Body=data.getvalue())
    out = deploy("actions.yaml", f"actions-{suffix}", {"ArtifactBucket": bucket, "ArtifactPrefix": "r1/",
                                                       "TargetCluster": cluster, **every_kind_grants()})
    lam = client("lambda")
    for key in ["RestartServiceFunctionArn", "ScaleUpFunctionArn", "ClearCacheFunctionArn", "NotifyHumanFunctionArn",
                "RollbackServiceFunctionArn"]:
        arn = out.get(key, "")
        config = lam.get_function_configuration(FunctionName=arn) if arn else {}
        check(f"{key} exists on provided.al2023", config.get("Runtime") == "provided.al2023", str(config.get("Runtime")))
    notify = lam.get_function_configuration(FunctionName=out["NotifyHumanFunctionArn"])
    check("notify_human wired to the topic", notify["Environment"]["Variables"]["SNS_TOPIC_ARN"] == out["OnCallTopicArn"])
    table = client("dynamodb").describe_table(TableName=out["LedgerTableName"])["Table"]
    keys = {k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}
    check("the incident ledger's table (pk, sk)", keys == {"pk": "HASH", "sk": "RANGE"}, str(keys))
    check("every action knows the ledger", all(
        lam.get_function_configuration(FunctionName=out[k])["Environment"]["Variables"].get("LEDGER_TABLE") == out["LedgerTableName"]
        for k in ["RestartServiceFunctionArn", "ScaleUpFunctionArn", "ClearCacheFunctionArn", "NotifyHumanFunctionArn",
                  "RollbackServiceFunctionArn"]))
    playbook = lam.get_function_configuration(FunctionName=out.get("PlaybookFunctionArn", "missing"))
    wired = playbook["Environment"]["Variables"]
    check("the playbook invokes the stack's five actions", [wired.get(v) for v in (
        "RESTART_SERVICE_FUNCTION", "SCALE_UP_FUNCTION", "CLEAR_CACHE_FUNCTION", "NOTIFY_HUMAN_FUNCTION",
        "ROLLBACK_SERVICE_FUNCTION")] == [
        out[k] for k in ["RestartServiceFunctionArn", "ScaleUpFunctionArn", "ClearCacheFunctionArn", "NotifyHumanFunctionArn",
                         "RollbackServiceFunctionArn"]],
        str(wired))
    check("the playbook keeps its runs in the ledger", wired.get("LEDGER_TABLE") == out["LedgerTableName"])
    # ListTopics pages by 100, and the tests leave many topics in the emulator: ask for this one.
    topic = client("sns").get_topic_attributes(TopicArn=out["OnCallTopicArn"])["Attributes"]
    check("on-call topic exists", topic.get("TopicArn") == out["OnCallTopicArn"], str(topic))

    # lambda.yaml: wake, sleep and kill; the API with /wake and /kill; the usage plan; schedules; alarms.
    out = deploy("lambda.yaml", f"lambda-{suffix}", {"ArtifactBucket": bucket, "ArtifactPrefix": "r1/",
                                                     "ClusterName": cluster, "ServiceName": "fluidity-server"})
    for key in ["WakeFunctionArn", "SleepFunctionArn", "KillFunctionArn"]:
        config = lam.get_function_configuration(FunctionName=out[key])
        check(f"{key} handler bootstrap", config["Handler"] == "bootstrap" and config["Runtime"] == "provided.al2023")
    apigw = client("apigateway")
    api_id = out["ApiEndpoint"].split("//")[1].split(".")[0]
    paths = {r["path"] for r in apigw.get_resources(restApiId=api_id)["items"]}
    check("API has /wake and /kill", {"/wake", "/kill"} <= paths, str(paths))
    # moto's CloudFormation does not create AWS::ApiGateway::UsagePlan or AWS::CloudWatch::Alarm
    # resources, so the usage plan and the alarms are left to cfn-lint and AWS itself.
    rules = {r["ScheduleExpression"] for r in client("events").list_rules()["Rules"] if "ScheduleExpression" in r}
    check("sleep and kill schedules", {"rate(5 minutes)", "cron(0 23 * * ? *)"} <= rules, str(rules))

    # reaper.yaml: the function, its schedule, the deployer's and the task role's policies.
    out = deploy("reaper.yaml", f"reaper-{suffix}", {"ArtifactBucket": bucket, "ArtifactPrefix": "r1/",
                                                     "DeploymentCluster": cluster, "DeploymentName": "myapp",
                                                     "ScheduleMinutes": "1"})
    reaper = lam.get_function_configuration(FunctionName=out["ReaperFunctionArn"])
    check("reaper environment", reaper["Environment"]["Variables"]["CLUSTER"] == cluster)
    rules = {r["ScheduleExpression"] for r in client("events").list_rules()["Rules"] if "ScheduleExpression" in r}
    check("a 1-minute reaper schedule is rate(1 minute)", "rate(1 minute)" in rules, str(rules))
    iam = client("iam")
    for key in ["DeployerPolicyArn", "TaskDrainPolicyArn"]:
        check(f"{key} exists", bool(iam.get_policy(PolicyArn=out[key])["Policy"]["Arn"]))

    print(f"moto CloudFormation: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
