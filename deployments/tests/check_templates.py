#!/usr/bin/env python3
"""What only CloudFormation and a real account enforce, checked in the templates themselves.

moto's CloudFormation ignores Architectures, alarms and invoke configs, so these rules are read
from the templates. Fails when:
- a Lambda function's Architectures is not [!Ref Architecture] (deploy.sh sets it from LAMBDA_ARCH);
- an alarm has no AlarmActions (an alarm nobody receives wakes nobody);
- an ARN is written with a literal partition ("arn:aws:") instead of ${AWS::Partition};
- a function a schedule invokes (asynchronously) has no AWS::Lambda::EventInvokeConfig with an explicit
  MaximumRetryAttempts, or sends each failed run to an on-failure destination beside its errors
  alarm (a message per run on top of the alarm: one signal is enough);
- the Fargate service's DesiredCount is set unconditionally (a stack update would reset the count);
- the API stage has no access logging;
- an alarm on the actions' own metrics (namespace IncidentActions) is not scoped to its stack
  (Stack = AWS::StackName), or an action function does not set METRICS_STACK to its stack: the
  environments would set off each other's alarms;
- the paging function (notify_human) has no reserved concurrency or no Throttles alarm: a throttled
  page is not an error, and nothing else would say it was refused;
- a function in a VPC calls an AWS service (an action its role grants) that network.yaml has no
  endpoint for, while an environment's params send it through endpoints (VpcNetworkPath is not
  nat): in private subnets the call would wait through connect timeouts.
"""
import glob
import json
import os
import sys

from cfnlint.decode import cfn_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATES = os.path.join(os.path.dirname(HERE), "cloudformation")
problems = []


def resources(template, kind):
    return {k: r for k, r in template.get("Resources", {}).items() if r.get("Type") == kind}


def refs(value):
    """Every Ref and GetAtt target inside a value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
            else:
                yield from refs(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from refs(inner)


for path in sorted(glob.glob(os.path.join(TEMPLATES, "*.yaml"))):
    name = os.path.basename(path)
    template = cfn_yaml.load(path)
    text = json.dumps(template)
    if "arn:aws:" in text:
        problems.append(f"{name}: an ARN with a literal partition (arn:aws:); use arn:${{AWS::Partition}}:")
    for key, fn in resources(template, "AWS::Lambda::Function").items():
        if fn["Properties"].get("Architectures") != [{"Ref": "Architecture"}]:
            problems.append(f"{name}: {key} Architectures is not [!Ref Architecture]")
    for key, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        if not alarm["Properties"].get("AlarmActions"):
            problems.append(f"{name}: alarm {key} has no AlarmActions: nobody would be told")
    alarmed = {next(refs(a["Properties"].get("Dimensions")), None)
               for a in resources(template, "AWS::CloudWatch::Alarm").values()
               if a["Properties"].get("MetricName") == "Errors"}
    configs = {next(refs(c["Properties"]["FunctionName"]), None): c["Properties"]
               for c in resources(template, "AWS::Lambda::EventInvokeConfig").values()}
    for key, rule in resources(template, "AWS::Events::Rule").items():
        if "ScheduleExpression" not in rule["Properties"]:
            continue
        for target in rule["Properties"].get("Targets", []):
            function = next(refs(target.get("Arn")), None)
            config = configs.get(function)
            if config is None or "MaximumRetryAttempts" not in config:
                problems.append(f"{name}: {function}, invoked by the schedule {key}, has no EventInvokeConfig "
                                f"with MaximumRetryAttempts (Lambda would retry a failed run twice)")
            elif "OnFailure" in config.get("DestinationConfig", {}) and function in alarmed:
                problems.append(f"{name}: {function} sends every failed run to an on-failure destination as well as "
                                f"its errors alarm; keep the alarm, the one signal")
    for key, service in resources(template, "AWS::ECS::Service").items():
        count = service["Properties"].get("DesiredCount")
        if count is not None and "Fn::If" not in count:
            problems.append(f"{name}: {key} sets DesiredCount on every update; set it at creation only")
    for key, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        props = alarm["Properties"]
        if props.get("Namespace") == "IncidentActions" and \
                {"Name": "Stack", "Value": {"Ref": "AWS::StackName"}} not in (props.get("Dimensions") or []):
            problems.append(f"{name}: alarm {key} watches every environment's {props.get('MetricName')}; "
                            "scope it with the dimension Stack = AWS::StackName")
    for key, fn in resources(template, "AWS::Lambda::Function").items():
        variables = fn["Properties"].get("Environment", {}).get("Variables", {})
        if "LEDGER_TABLE" in variables and variables.get("METRICS_STACK") != {"Ref": "AWS::StackName"}:
            problems.append(f"{name}: {key} does not set METRICS_STACK to its stack's name (its metrics' Stack)")
    throttle_alarmed = {next(refs(a["Properties"].get("Dimensions")), None)
                        for a in resources(template, "AWS::CloudWatch::Alarm").values()
                        if a["Properties"].get("MetricName") == "Throttles"}
    for key, fn in resources(template, "AWS::Lambda::Function").items():
        if "SNS_TOPIC_ARN" not in fn["Properties"].get("Environment", {}).get("Variables", {}):
            continue
        if "ReservedConcurrentExecutions" not in fn["Properties"]:
            problems.append(f"{name}: the pager {key} has no reserved concurrency: a storm can throttle pages")
        if key not in throttle_alarmed:
            problems.append(f"{name}: the pager {key} has no Throttles alarm: a throttled page is not an error")
    for key, stage in resources(template, "AWS::ApiGateway::Stage").items():
        if "AccessLogSetting" not in stage["Properties"]:
            problems.append(f"{name}: stage {key} has no access logging")



def as_list(value):
    return value if isinstance(value, list) else [value]


def called_services(template, fn):
    """The AWS services a function's code calls: the prefixes of its role's actions, less logs (Lambda
    delivers the logs) and kms under kms:ViaService (Secrets Manager decrypts on its behalf)."""
    role = template["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
    for policy in role["Properties"].get("Policies", []):
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
            for st in (b for b in branches if isinstance(b, dict) and "Action" in b):
                if "kms:ViaService" in json.dumps(st.get("Condition", {})):
                    continue
                yield from (a.split(":")[0] for a in as_list(st["Action"]) if not a.startswith("logs:"))


network = cfn_yaml.load(os.path.join(TEMPLATES, "network.yaml"))
endpoints = {str(e["Properties"]["ServiceName"]["Fn::Sub"]).rsplit(".", 1)[-1]
             for e in resources(network, "AWS::EC2::VPCEndpoint").values()}
for path in sorted(glob.glob(os.path.join(TEMPLATES, "*.yaml"))):
    template = cfn_yaml.load(path)
    default_path = template.get("Parameters", {}).get("VpcNetworkPath", {}).get("Default")
    for key, fn in resources(template, "AWS::Lambda::Function").items():
        if "VpcConfig" not in fn["Properties"]:
            continue
        missing = sorted(set(called_services(template, fn)) - endpoints)
        for env in ("dev", "prod"):
            params = json.load(open(os.path.join(os.path.dirname(TEMPLATES), f"params-{env}.json")))["Parameters"]
            if missing and params.get("VpcSubnetIds") and params.get("VpcNetworkPath", default_path) != "nat":
                problems.append(f"{os.path.basename(path)}: {key} runs in a VPC and calls {', '.join(missing)}, which "
                                f"network.yaml has no endpoint for, and params-{env}.json sends it through endpoints")

for p in problems:
    print("FAIL:", p)
print(f"templates: {len(glob.glob(os.path.join(TEMPLATES, '*.yaml')))} checked, {len(problems)} problems")
sys.exit(1 if problems else 0)
