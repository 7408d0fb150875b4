"""The AWS calls each function's code makes, read from its Rust source, as IAM actions.

How: in every source file, the names bound to an AWS SDK client (struct fields and parameters typed
`aws_sdk_<service>::Client`, or `Client` where the file imports `aws_sdk_<service>::Client`) are
found; then every `<name>.<operation>()` on them (builder chains across lines included) is an SDK
operation. The shared helpers a function uses (`ecs::describe_service(...)`) add the operations of
those helpers, followed transitively. Test modules (`#[cfg(test)]` onwards) are left out.

IAM action names are case-insensitive, so `describe_db_instances` matches `rds:DescribeDBInstances`;
actions are compared lowercased (see `normal`).
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# SDK crate suffix -> IAM service prefix.
IAM_PREFIX = {
    "ecs": "ecs", "ec2": "ec2", "rds": "rds", "elasticache": "elasticache",
    "applicationautoscaling": "application-autoscaling", "secretsmanager": "secretsmanager", "sns": "sns",
    "ssm": "ssm", "cloudwatch": "cloudwatch", "elasticloadbalancingv2": "elasticloadbalancing", "sqs": "sqs",
}
# Client methods that are not AWS operations.
NOT_OPERATIONS = {"clone", "config", "as_ref", "into", "to_owned"}

# Lambda function (template logical id) -> its crate.
FUNCTION_CRATES = {
    "WakeFunction": "lifecycle/wake", "SleepFunction": "lifecycle/sleep", "KillFunction": "lifecycle/kill",
    "ReaperFunction": "lifecycle/reaper", "RestartServiceFunction": "actions/restart-service",
    "ScaleUpFunction": "actions/scale-up", "ClearCacheFunction": "actions/clear-cache",
    "NotifyHumanFunction": "actions/notify-human",
}


def normal(action):
    return action.lower()


def production_source(path):
    text = open(path).read()
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


def client_names(text):
    """name -> SDK crate suffix, for every field or parameter typed as an SDK client in this file."""
    bare = re.search(r"use aws_sdk_(\w+)::(?:\{[^}]*\bClient\b[^}]*\}|Client)\s*;", text)
    names = {}
    for name, crate in re.findall(r"\b(\w+)\s*:\s*&?\s*aws_sdk_(\w+)::Client\b", text):
        names[name] = crate
    if bare:
        for name in re.findall(r"\b(\w+)\s*:\s*&?\s*Client\b", text):
            names[name] = bare.group(1)
    return names


def operations_in(text, names):
    """IAM actions of `<client>.<op>()` calls in `text`."""
    found = set()
    for name, op in re.findall(r"\b(\w+)\s*\.\s*([a-z][a-z0-9_]*)\s*\(\s*\)", text):
        if name in names and op not in NOT_OPERATIONS:
            found.add(f"{IAM_PREFIX[names[name]]}:{op.replace('_', '')}")
    return {normal(a) for a in found}


def split_functions(text):
    """fn name -> body text, for the top-level functions of a file (up to the next `fn`)."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r"^(?:pub )?(?:async )?fn (\w+)", text, re.M)]
    bodies = {}
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        bodies[name] = text[start:end]
    return bodies


def shared_helpers():
    """For each module of the shared crate: helper fn -> the IAM actions it (transitively) makes."""
    helpers = {}
    src = os.path.join(ROOT, "shared", "src")
    for file in sorted(os.listdir(src)):
        if not file.endswith(".rs"):
            continue
        text = production_source(os.path.join(src, file))
        names = client_names(text)
        bodies = split_functions(text)
        direct = {fn: operations_in(body, names) for fn, body in bodies.items()}
        calls = {fn: {other for other in bodies if other != fn and re.search(rf"\b{other}\s*\(", body)}
                 for fn, body in bodies.items()}
        closed = {}
        for fn in bodies:
            seen, todo, ops = set(), [fn], set()
            while todo:
                current = todo.pop()
                if current in seen:
                    continue
                seen.add(current)
                ops |= direct[current]
                todo.extend(calls[current])
            closed[fn] = ops
        helpers[file[:-3]] = closed
    return helpers


def crate_calls(crate_dir, helpers):
    ops = set()
    src = os.path.join(ROOT, crate_dir, "src")
    for dirpath, _, files in os.walk(src):
        for file in files:
            if not file.endswith(".rs") or file == "main.rs":
                continue
            text = production_source(os.path.join(dirpath, file))
            ops |= operations_in(text, client_names(text))
            for module, fn in re.findall(r"\b(\w+)::(\w+)\s*\(", text):
                ops |= helpers.get(module, {}).get(fn, set())
    return ops


def calls_by_function():
    helpers = shared_helpers()
    return {function: crate_calls(crate, helpers) for function, crate in FUNCTION_CRATES.items()}


if __name__ == "__main__":
    for function, ops in calls_by_function().items():
        print(function, sorted(ops))
