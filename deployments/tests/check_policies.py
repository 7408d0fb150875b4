#!/usr/bin/env python3
"""Least privilege, checked mechanically over every template in deployments/cloudformation.

Fails when:
- any policy allows a wildcard action ("*" or "service:*");
- a function's role lacks a permission that the function's code calls, or has one it never calls
  (the calls are read from each function's Rust source by code_calls.py; logs:* is separate);
- a statement allows Resource "*" for an action that supports resource-level permissions.
"""
import glob
import os
import sys

from cfnlint.decode import cfn_yaml

# The AWS calls each function makes, read from its source (see code_calls.py), lowercased.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from code_calls import calls_by_function, normal  # noqa: E402

CALLS = calls_by_function()
# Actions AWS only grants on Resource "*" (no resource-level permissions), or that are scoped by a condition.
STAR_ONLY = {"ec2:DescribeNetworkInterfaces", "ec2:DescribeInstances", "cloudwatch:GetMetricData",
             "cloudwatch:PutMetricData", "application-autoscaling:DescribeScalableTargets",
             "elasticloadbalancing:DescribeRules", "ecs:ListServices", "ecs:ListTasks"}

problems = []


def as_list(value):
    return value if isinstance(value, list) else [value]


def statements(policy_document):
    for statement in as_list(policy_document.get("Statement", [])):
        if isinstance(statement, dict) and "Fn::If" in statement:
            # Both branches of a condition count (the other may be AWS::NoValue).
            for branch in statement["Fn::If"][1:]:
                if isinstance(branch, dict) and "Action" in branch:
                    yield branch
        elif isinstance(statement, dict):
            yield statement


def check_statement(where, statement):
    actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
    for action in actions:
        if action == "*" or action.endswith(":*"):
            problems.append(f"{where}: wildcard action {action!r}")
    if statement.get("Resource") == "*" and statement.get("Effect") == "Allow":
        for action in actions:
            if action not in STAR_ONLY and action != "sts:AssumeRole":
                problems.append(f"{where}: {action} allowed on Resource '*' but it supports resource-level permissions")
    return set(actions)


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cloudformation")
    seen = set()
    for path in sorted(glob.glob(os.path.join(root, "*.yaml"))):
        template = cfn_yaml.load(path)
        resources = template.get("Resources", {})
        role_actions = {}
        for name, resource in resources.items():
            props = resource.get("Properties", {})
            if resource.get("Type") == "AWS::IAM::Role":
                actions = set()
                for policy in props.get("Policies", []):
                    for statement in statements(policy["PolicyDocument"]):
                        actions |= check_statement(f"{os.path.basename(path)} {name}", statement)
                role_actions[name] = actions
            elif resource.get("Type") == "AWS::IAM::ManagedPolicy":
                for statement in statements(props["PolicyDocument"]):
                    check_statement(f"{os.path.basename(path)} {name}", statement)
        for name, resource in resources.items():
            if resource.get("Type") != "AWS::Lambda::Function":
                continue
            seen.add(name)
            role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
            granted = {normal(a) for a in role_actions.get(role, set()) if not a.startswith("logs:")}
            needed = CALLS.get(name)
            if not needed:
                problems.append(f"{path}: {name}: no AWS call found in its crate; map it in code_calls.FUNCTION_CRATES")
                continue
            for missing in sorted(needed - granted):
                problems.append(f"{os.path.basename(path)} {name}: the code calls {missing} but role {role} lacks it")
            for extra in sorted(granted - needed):
                problems.append(f"{os.path.basename(path)} {name}: role {role} grants {extra}, which the code never calls")
    for missing in sorted(set(CALLS) - seen):
        problems.append(f"no template defines {missing}")
    for p in problems:
        print("FAIL:", p)
    print(f"policy check: {len(seen)} functions, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
