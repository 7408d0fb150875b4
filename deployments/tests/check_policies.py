#!/usr/bin/env python3
"""Least privilege, checked mechanically: every role against what its function declares.

Each function (and the deployer's CLI) declares, beside its code, the IAM action and resource of
every observe step and every change it makes; `<binary> --permissions` prints them (see
shared::plan::Permission). This check reads those declarations from the built binaries and fails when:
- any policy allows a wildcard action ("*" or "service:*");
- a role lacks an action its function declares, or grants one it does not declare (logs:* aside);
- a statement grants Resource "*" for an action the function declares on a resource (so it
  supports resource-level permissions), or grants a declared condition-scoped action without
  that condition key;
- a grant on a resource lacks the condition its action is declared with (the ledger's items by
  dynamodb:LeadingKeys), or allows a value no declaration names, or misses one;
- an action declared on "*" (no resource-level permissions, or scoped by a condition key) is
  granted only on a specific resource, which AWS would never match.

Usage: check_policies.py [TARGET_DIR]   (default target/debug, where `cargo test` leaves the binaries)
"""
import glob
import json
import os
import subprocess
import sys

from cfnlint.decode import cfn_yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BINARIES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug")

# Template logical id (a Lambda function, or a managed policy for a CLI) -> its binary.
OWNERS = {
    "WakeFunction": "fluidity-wake", "SleepFunction": "fluidity-sleep", "KillFunction": "fluidity-kill",
    "ReaperFunction": "fluidity-reaper", "RestartServiceFunction": "incident-restart-service",
    "ScaleUpFunction": "incident-scale-up", "ClearCacheFunction": "incident-clear-cache",
    "NotifyHumanFunction": "incident-notify-human", "PlaybookFunction": "incident-playbook",
    "RollbackServiceFunction": "incident-rollback-service",
    "DeployerPolicy": "fluidity-mark-deployment",
    "LedgerOperatorPolicy": "incident-ledger",
}

problems = []


def declarations(binary):
    """The function's declared permissions: [{action, resource, condition?}]."""
    path = os.path.join(BINARIES, binary)
    out = subprocess.run([path, "--permissions"], capture_output=True, text=True, check=True, timeout=30)
    return json.loads(out.stdout)["permissions"]


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


def role_statements(resource):
    props = resource.get("Properties", {})
    if resource.get("Type") == "AWS::IAM::Role":
        for policy in props.get("Policies", []):
            yield from statements(policy["PolicyDocument"])
    elif resource.get("Type") == "AWS::IAM::ManagedPolicy":
        yield from statements(props["PolicyDocument"])


def delivery_actions(resources, function):
    """What Lambda itself does with the function's role: deliver a failed asynchronous run to its
    on-failure destination (an SNS topic here), a call the function's code never makes."""
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Lambda::EventInvokeConfig" and props.get("FunctionName") == {"Ref": function} \
                and "OnFailure" in props.get("DestinationConfig", {}):
            return {"sns:publish"}
    return set()


def declared_form(value):
    """A condition value as the declarations write it: `!Sub` with `${Region}` for `${AWS::Region}`."""
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        value = value["Fn::Sub"]
        for pseudo, short in (("AWS::Region", "Region"), ("AWS::Partition", "Partition"), ("AWS::AccountId", "Account")):
            value = value.replace("${" + pseudo + "}", "${" + short + "}")
    return value if isinstance(value, str) else json.dumps(value)


def check_scoped(where, action, statement, wanted, scoped):
    """A resource-level grant of an action declared with a condition (the ledger's items, by
    dynamodb:LeadingKeys) carries that condition, with no value the function does not declare: a
    role that may write a PAUSE item could lift the operators' pause."""
    conditions = {key: {declared_form(v) for v in as_list(values)}
                  for operator in (statement.get("Condition") or {}).values() for key, values in operator.items()}
    for key in sorted({p["condition"]["key"] for p in wanted if p.get("condition")}):
        declared = {p["condition"]["value"] for p in wanted if p.get("condition") and p["condition"]["key"] == key}
        if key not in conditions:
            problems.append(f"{where}: {action} is granted without the {key} condition it is declared with "
                            f"({sorted(declared)})")
            continue
        for extra in sorted(conditions[key] - declared):
            problems.append(f"{where}: {action} is granted on {key} {extra!r}, which the function does not declare")
        scoped.setdefault((action, key), set()).update(conditions[key] & declared)


def check_owner(where, granted_statements, declared, delivery=frozenset()):
    by_action = {}
    for permission in declared:
        by_action.setdefault(permission["action"].lower(), []).append(permission)
    granted, scoped = set(), {}
    for statement in granted_statements:
        if statement.get("Effect") != "Allow":
            continue
        actions = [a for a in as_list(statement.get("Action", [])) if isinstance(a, str)]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                problems.append(f"{where}: wildcard action {action!r}")
            if action.startswith("logs:") or action == "sts:AssumeRole" or action.lower() in delivery:
                continue
            granted.add(action.lower())
            wanted = by_action.get(action.lower(), [])
            if statement.get("Resource") != "*":
                check_scoped(where, action, statement, wanted, scoped)
            if statement.get("Resource") == "*":
                conditions = json.dumps(statement.get("Condition", {}))
                for permission in wanted:
                    condition = permission.get("condition")
                    if permission["resource"] != "*":
                        problems.append(f"{where}: {action} granted on Resource '*', but it is declared on "
                                        f"{permission['resource']}: grant that resource")
                    elif condition and condition["key"] not in conditions:
                        problems.append(f"{where}: {action} on '*' lacks the {condition['key']} condition it is "
                                        f"declared with")
    star_granted = {a.lower() for st in granted_statements if st.get("Effect") == "Allow" and st.get("Resource") == "*"
                    for a in as_list(st.get("Action", [])) if isinstance(a, str)}
    for action, permissions in sorted(by_action.items()):
        if action in granted and any(p["resource"] == "*" for p in permissions) and action not in star_granted:
            problems.append(f"{where}: {action} is authorised only on Resource '*' (declared so), but the policy "
                            f"grants it on a specific resource, which AWS never matches")
    for (action, key), values in sorted(scoped.items()):
        declared = {p["condition"]["value"] for p in by_action.get(action.lower(), [])
                    if p.get("condition") and p["condition"]["key"] == key}
        for value in sorted(declared - values):
            problems.append(f"{where}: {action} is declared on {key} {value!r}, which the policy does not grant")
    for missing in sorted(set(by_action) - granted):
        problems.append(f"{where}: declares {missing} but its policy lacks it")
    for extra in sorted(granted - set(by_action)):
        problems.append(f"{where}: grants {extra}, which it does not declare (and so never calls)")


def main():
    seen = set()
    for path in sorted(glob.glob(os.path.join(ROOT, "deployments", "cloudformation", "*.yaml"))):
        template = cfn_yaml.load(path)
        resources = template.get("Resources", {})
        name = os.path.basename(path)
        for logical, resource in resources.items():
            if logical not in OWNERS:
                if resource.get("Type") in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
                    for statement in role_statements(resource):
                        for action in as_list(statement.get("Action", [])):
                            if isinstance(action, str) and (action == "*" or action.endswith(":*")):
                                problems.append(f"{name} {logical}: wildcard action {action!r}")
                continue
            seen.add(logical)
            if resource["Type"] == "AWS::Lambda::Function":
                role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
                policy_statements = list(role_statements(resources[role]))
                where = f"{name} {logical} (role {role})"
                delivery = delivery_actions(resources, logical)
            else:
                policy_statements = list(role_statements(resource))
                where = f"{name} {logical}"
                delivery = set()
            check_owner(where, policy_statements, declarations(OWNERS[logical]), delivery)
    for missing in sorted(set(OWNERS) - seen):
        problems.append(f"no template defines {missing}")
    for p in problems:
        print("FAIL:", p)
    print(f"policy check: {len(seen)} roles and policies against their functions' declared permissions, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
