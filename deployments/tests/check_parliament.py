#!/usr/bin/env python3
"""parliament (duo-labs, PyPI) over every IAM policy of every template.

parliament reads policy JSON, not CloudFormation, so each role's and managed policy's documents are
rendered first (check_iam.Renderer) with params-prod.json and every condition's branches: each
!If is rendered both ways, so a statement only some deployments get is audited too. A finding fails
the check unless EXPLAINED below says why it is right (and the template says so beside the statement).
"""
import copy
import glob
import json
import os
import sys

from cfnlint.decode import cfn_yaml
from parliament import analyze_policy_string

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from check_iam import Renderer  # noqa: E402
import targets  # noqa: E402  (deployments/scripts, on the path check_iam puts it)
from every_kind import every_kind  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
# (template, resource, parliament issue, its detail) -> why it is right.
LIST_TASKS = ("ecs:ListTasks is documented with a container-instance resource, but AWS authorises listing a "
              "cluster's tasks against \"*\", scoped by the ecs:cluster condition key (a grant on "
              "container-instance/... is never matched: cdklabs/construct-hub#1207)")
EXPLAINED = {
    ("lambda.yaml", "WakeRole", "RESOURCE_STAR", "['ecs:ListTasks']"): LIST_TASKS,
    ("reaper.yaml", "ReaperRole", "RESOURCE_STAR", "['ecs:ListTasks']"): LIST_TASKS,
    ("reaper.yaml", "ReaperRole", "RESOURCE_MISMATCH", "elasticloadbalancing:DeleteRule,elasticloadbalancing:ModifyRule"):
        "the reaper manages Application Load Balancer rules only (listener-rule/app/...); parliament also lists "
        "the Network Load Balancer format (listener-rule/net/...), which it never touches",
    ("actions.yaml", "RollbackRole", "UNKNOWN_ACTION", "ecs:StopServiceDeployment"):
        "ECS added StopServiceDeployment in 2025, after parliament's IAM database was last released; the "
        "Service Authorization Reference lists it on the service and its service-deployment resources, which "
        "check_iam.py evaluates call by call",
}


def detail_key(finding):
    if finding.issue == "RESOURCE_MISMATCH":
        return ",".join(sorted({d["action"] for d in finding.detail}))
    if finding.issue == "UNKNOWN_ACTION":  # "Unknown action <action>"
        return str(finding.detail).rsplit(" ", 1)[-1]
    return str(finding.detail)


class BothWays(Renderer):
    """Renders with every condition forced to `value`."""

    def __init__(self, template, world, value):
        super().__init__(template, world)
        self.value = value

    def condition(self, name):
        return self.value


def documents(template, resource):
    props = resource.get("Properties", {})
    if resource["Type"] == "AWS::IAM::Role":
        return [p["PolicyDocument"] for p in props.get("Policies", [])]
    if resource["Type"] == "AWS::IAM::ManagedPolicy":
        return [props["PolicyDocument"]]
    return []


def main():
    params = json.load(open(os.path.join(ROOT, "deployments", "params-prod.json")))["Parameters"]
    params.update({"OverrideServiceArns": "arn:aws:ecs:us-east-1:123456789012:service/fluidity-prod/other",
                   "RedisSecretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                   "OpsTopicArn": "arn:aws:sns:us-east-1:123456789012:ops", "ListenerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/lb/1/2"})
    # The resources the roles are scoped to, as deploy.sh derives them from the prod map with a
    # target of every kind, so that every conditional statement renders with ARNs.
    shipped = every_kind(os.path.join(ROOT, "deployments", "targets-prod.json"))
    params.update(targets.grants(shipped, "aws", "us-east-1", "123456789012"))
    problems, audited = [], 0
    for path in sorted(glob.glob(os.path.join(ROOT, "deployments", "cloudformation", "*.yaml"))):
        name = os.path.basename(path)
        template = cfn_yaml.load(path)
        # What !Ref / !GetAtt of the stack's own topics and tables stand for (log groups render themselves).
        arns = {"AWS::SNS::Topic": "arn:aws:sns:us-east-1:123456789012:{}",
                "AWS::DynamoDB::Table": "arn:aws:dynamodb:us-east-1:123456789012:table/{}"}
        world = {"stack": "fluidity-prod-" + name[:-5], "parameters": params,
                 "resources": {k: arns[r["Type"]].format(k) for k, r in template["Resources"].items() if r["Type"] in arns}}
        for logical, resource in template["Resources"].items():
            for document in documents(template, resource):
                for branch in (True, False):
                    rendered = BothWays(template, world, branch).render(copy.deepcopy(document))
                    audited += 1
                    for finding in analyze_policy_string(json.dumps(rendered)).findings:
                        key = (name, logical, finding.issue, detail_key(finding))
                        if key not in EXPLAINED:
                            problems.append(f"{name} {logical}: {finding.issue} {finding.detail} {finding.location}")
    for p in sorted(set(problems)):
        print("FAIL: parliament:", p)
    print(f"parliament: {audited} rendered policy documents audited, {len(set(problems))} unexplained findings "
          f"({len(EXPLAINED)} explained: ListTasks on \"*\", ALB-only listener rules, service deployment APIs newer than parliament)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
