#!/usr/bin/env python3
"""IAM at the resource level: every AWS call the tests' IAM worlds made, against the rendered policy.

The emulator enforces no IAM. So the test command records every request the emulator receives, and
this check evaluates each call a function made in an IAM world (shared::testing::iam: its User-Agent
carries app/<function>~<world>) against the policy the function's template gives it, rendered with
that world's parameters: the action, every resource ARN the request names (a service, a task, a
parameter, a topic, ...) and the condition keys it carries (ecs:cluster), against the role's Allow
statements with their ARN wildcards and conditions. It fails when:
- a call is one the rendered policy would not allow (AWS would answer AccessDenied);
- the rendered policy allows an action on something the world marks untouchable (a bystander
  service in the same cluster), or a call touched it;
- a world made no call, or (--every-function) a function has no world;
- a call's resources are unknown to this check (add the operation below).

`check_iam.py RECORDING [--every-function] [--defects]`: --every-function fails when a function has
no world (the whole test suite ran); with --defects it also puts back the three IAM defects this
check was written for, one at a time, and fails unless the check catches each:
1. wake's ecs:ListTasks granted on container-instance/<cluster>/* instead of "*" with ecs:cluster;
2. the reaper describing every service of the cluster (a DescribeServices of the bystander);
3. wake's and kill's roles on service/<cluster>/* (any service of the cluster may be started).
"""
import glob
import json
import os
import re
import sys

from cfnlint.decode import cfn_yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recording import call_of, iam_calls, recorded  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import targets  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TEMPLATES = os.path.join(ROOT, "deployments", "cloudformation")
WORLDS = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "iam-worlds")
ACCOUNT, REGION, PARTITION = "123456789012", "us-east-1", "aws"

# The function (binary) -> the template resource that holds its permissions.
OWNERS = {
    "fluidity-wake": "WakeFunction", "fluidity-sleep": "SleepFunction", "fluidity-kill": "KillFunction",
    "fluidity-reaper": "ReaperFunction", "incident-restart-service": "RestartServiceFunction",
    "incident-scale-up": "ScaleUpFunction", "incident-clear-cache": "ClearCacheFunction",
    "incident-notify-human": "NotifyHumanFunction", "incident-playbook": "PlaybookFunction",
    "incident-rollback-service": "RollbackServiceFunction",
    "fluidity-mark-deployment": "DeployerPolicy",
    "incident-ledger": "LedgerOperatorPolicy",
}


# ---------------------------------------------------------------- what a call touches

def arn(service, resource):
    return f"arn:{PARTITION}:{service}:{REGION}:{ACCOUNT}:{resource}"


def last(name):
    return name.rsplit("/", 1)[-1]


def ecs_cluster(p):
    cluster = p.get("cluster", "default")
    return cluster if cluster.startswith("arn:") else arn("ecs", f"cluster/{cluster}")


def ecs_service(p, service):
    return service if service.startswith("arn:") else arn("ecs", f"service/{last(p.get('cluster', 'default'))}/{service}")


def ecs_task(p, task):
    return task if task.startswith("arn:") else arn("ecs", f"task/{last(p.get('cluster', 'default'))}/{task}")


def service_of(deployment_or_revision):
    """The service of a service deployment's or revision's ARN (…:service-deployment/<cluster>/<service>/<id>)."""
    head, _, path = deployment_or_revision.partition(":service-")
    cluster, service = path.split("/")[1:3]
    return f"{head}:service/{cluster}/{service}"


def parameter(name):
    return arn("ssm", "parameter" + (name if name.startswith("/") else "/" + name))


def listed(p, prefix):
    """A query-protocol list: Prefix.member.N or Prefix.N, in order."""
    keys = sorted((k for k in p if re.fullmatch(rf"{re.escape(prefix)}(\.member)?\.\d+", k)),
                  key=lambda k: int(k.rsplit(".", 1)[1]))
    return [p[k] for k in keys]


STAR = lambda p: (["*"], {})
# IAM action -> (resources, condition context) of a request with parameters p.
TOUCHES = {
    "ecs:updateservice": lambda p: ([ecs_service(p, p["service"])], {}),
    "ecs:deleteservice": lambda p: ([ecs_service(p, p["service"])], {}),
    "ecs:describeservices": lambda p: ([ecs_service(p, s) for s in p["services"]], {}),
    "ecs:listtasks": lambda p: (["*"], {"ecs:cluster": ecs_cluster(p)}),
    "ecs:listservices": lambda p: (["*"], {"ecs:cluster": ecs_cluster(p)}),
    "ecs:describetasks": lambda p: ([ecs_task(p, t) for t in p["tasks"]], {}),
    "ecs:tagresource": lambda p: ([p["resourceArn"]], {}),
    # The service deployment APIs list the service and the deployment (or revision) as resources.
    "ecs:listservicedeployments": lambda p: ([ecs_service(p, p["service"])], {}),
    "ecs:describeservicedeployments": lambda p: (p["serviceDeploymentArns"] + [service_of(a) for a in p["serviceDeploymentArns"]], {}),
    "ecs:describeservicerevisions": lambda p: (p["serviceRevisionArns"] + [service_of(a) for a in p["serviceRevisionArns"]], {}),
    "ecs:stopservicedeployment": lambda p: ([p["serviceDeploymentArn"], service_of(p["serviceDeploymentArn"])], {}),
    "ec2:describenetworkinterfaces": STAR,
    "ec2:describeinstances": STAR,
    "ec2:rebootinstances": lambda p: ([arn("ec2", f"instance/{i}") for i in listed(p, "InstanceId")], {}),
    "cloudwatch:getmetricdata": STAR,
    # Its CBOR body is not decoded (recording.py): the alarm it names is unknown, so every alarm.
    "cloudwatch:describealarms": lambda p: ([arn("cloudwatch", "alarm:*")], {}),
    "lambda:invokefunction": lambda p: ([p["FunctionName"] if p["FunctionName"].startswith("arn:")
                                        else arn("lambda", f"function:{p['FunctionName']}")], {}),
    "ssm:getparameter": lambda p: ([parameter(p["Name"])], {}),
    "ssm:putparameter": lambda p: ([parameter(p["Name"])], {}),
    "ssm:deleteparameter": lambda p: ([parameter(p["Name"])], {}),
    "ssm:getparameters": lambda p: ([parameter(n) for n in p["Names"]], {}),
    "ssm:deleteparameters": lambda p: ([parameter(n) for n in p["Names"]], {}),
    "ssm:getparametersbypath": lambda p: ([parameter(p["Path"])], {}),
    "application-autoscaling:describescalabletargets": STAR,
    # The scalable target's ARN carries an id AWS generates; the request names none.
    "application-autoscaling:registerscalabletarget":
        lambda p: ([arn("application-autoscaling", "scalable-target/0123456789abcdef0123456789abcdef")], {}),
    "rds:describedbinstances": lambda p: ([arn("rds", f"db:{p['DBInstanceIdentifier']}")], {}),
    "rds:modifydbinstance": lambda p: ([arn("rds", f"db:{p['DBInstanceIdentifier']}")], {}),
    "elasticache:describereplicationgroups": lambda p: ([arn("elasticache", f"replicationgroup:{p['ReplicationGroupId']}")], {}),
    "elasticache:modifyreplicationgroup": lambda p: ([arn("elasticache", f"replicationgroup:{p['ReplicationGroupId']}")], {}),
    "elasticache:increasereplicacount": lambda p: ([arn("elasticache", f"replicationgroup:{p['ReplicationGroupId']}")], {}),
    "elasticache:describecacheclusters": lambda p: ([arn("elasticache", f"cluster:{p['CacheClusterId']}")], {}),
    "elasticache:modifycachecluster": lambda p: ([arn("elasticache", f"cluster:{p['CacheClusterId']}")], {}),
    "elasticache:rebootcachecluster": lambda p: ([arn("elasticache", f"cluster:{p['CacheClusterId']}")], {}),
    "secretsmanager:getsecretvalue": lambda p: ([p["SecretId"] if p["SecretId"].startswith("arn:")
                                                 else arn("secretsmanager", f"secret:{p['SecretId']}-??????")], {}),
    "sns:publish": lambda p: ([p["TopicArn"]], {}),
    "elasticache:decreasereplicacount": lambda p: ([arn("elasticache", f"replicationgroup:{p['ReplicationGroupId']}")], {}),
    "dynamodb:query": lambda p: table_call(p, [query_key(p)]),
    "dynamodb:getitem": lambda p: table_call(p, [p["Key"]["pk"]["S"]]),
    "dynamodb:putitem": lambda p: table_call(p, [p["Item"]["pk"]["S"]]),
    "dynamodb:updateitem": lambda p: table_call(p, [p["Key"]["pk"]["S"]]),
    "dynamodb:deleteitem": lambda p: table_call(p, [p["Key"]["pk"]["S"]]),
    "dynamodb:batchgetitem": lambda p: ([arn("dynamodb", f"table/{t}") for t in p["RequestItems"]],
                                        {"dynamodb:LeadingKeys": sorted({k["pk"]["S"] for r in p["RequestItems"].values()
                                                                         for k in r["Keys"]})}),
    "elasticloadbalancing:describerules": STAR,
    "elasticloadbalancing:deleterule": lambda p: ([p["RuleArn"]], {}),
    "elasticloadbalancing:modifyrule": lambda p: ([p["RuleArn"]], {}),
    "elasticloadbalancing:deletetargetgroup": lambda p: ([p["TargetGroupArn"]], {}),
}


def table_call(p, keys):
    """A DynamoDB call on one table (a transaction's part names its own), with the partition keys
    it touches: dynamodb:LeadingKeys, which the roles are scoped by."""
    return [arn("dynamodb", f"table/{p['TableName']}")], {"dynamodb:LeadingKeys": keys}


def query_key(p):
    """The partition key a Query names: `pk = :x` in its key condition."""
    placeholder = re.search(r"pk\s*=\s*(:\w+)", p["KeyConditionExpression"]).group(1)
    return p["ExpressionAttributeValues"][placeholder]["S"]


# ---------------------------------------------------------------- the rendered policy

class Renderer:
    """CloudFormation's intrinsic functions over one world's parameters, pseudo parameters and resources."""

    def __init__(self, template, world):
        self.template = template
        self.values = {k: str(spec.get("Default", "")) for k, spec in template.get("Parameters", {}).items()}
        # A world with a target map: the parameters deploy.sh derives from it (targets.grants), then
        # what the world sets itself.
        if "targets" in world:
            self.values.update(targets.grants(world["targets"], PARTITION, REGION, ACCOUNT))
        self.values.update(world.get("parameters", {}))
        self.values.update({"AWS::Partition": PARTITION, "AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                            "AWS::StackName": world["stack"], "AWS::URLSuffix": "amazonaws.com"})
        self.resources = world.get("resources", {})

    def condition(self, name):
        return bool(self.render(self.template["Conditions"][name]))

    def ref(self, name):
        if name in self.values:
            return self.values[name]
        return self.resources.get(name, f"<resource {name}>")

    def render(self, v):
        if isinstance(v, list):
            return [r for r in (self.render(x) for x in v) if r is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (fn, arg), = v.items()
            if fn == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.render(x) for k, x in arg[1].items()})
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(extra.get(m.group(1), self.ref(m.group(1)))), text)
            if fn == "Fn::If":
                return self.render(arg[1] if self.condition(arg[0]) else arg[2])
            if fn == "Fn::Join":
                return arg[0].join(str(x) for x in self.render(arg[1]))
            if fn == "Fn::Split":
                return str(self.render(arg[1])).split(arg[0])
            if fn == "Fn::Select":
                return self.render(arg[1])[int(arg[0])]
            if fn == "Fn::Equals":
                return str(self.render(arg[0])) == str(self.render(arg[1]))
            if fn == "Fn::Not":
                return not self.render(arg[0])
            if fn == "Fn::And":
                return all(self.render(x) for x in arg)
            if fn == "Fn::Or":
                return any(self.render(x) for x in arg)
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::GetAtt":
                logical = arg[0] if isinstance(arg, list) else arg.split(".")[0]
                if logical in self.resources:  # the world names it (a table's ARN)
                    return self.resources[logical]
                resource = self.template.get("Resources", {}).get(logical, {})
                if resource.get("Type") == "AWS::Logs::LogGroup":
                    name = self.render(resource["Properties"]["LogGroupName"])
                    return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
                if resource.get("Type") == "AWS::Lambda::Function":
                    return arn("lambda", f"function:{self.render(resource['Properties']['FunctionName'])}")
                return f"<attribute of {logical}>"
        return {k: r for k, r in ((k, self.render(x)) for k, x in v.items()) if r is not NO_VALUE}


NO_VALUE = object()


def policy_of(template, world):
    """The Allow/Deny statements of the world's function, rendered."""
    resources = template["Resources"]
    owner = resources[OWNERS[world["function"]]]
    holder = resources[owner["Properties"]["Role"]["Fn::GetAtt"][0]] if owner["Type"] == "AWS::Lambda::Function" else owner
    render = Renderer(template, world).render
    documents = ([p["PolicyDocument"] for p in holder["Properties"].get("Policies", [])]
                 if holder["Type"] == "AWS::IAM::Role" else [holder["Properties"]["PolicyDocument"]])
    statements = []
    for document in documents:
        for statement in render(document).get("Statement", []):
            statements.append(statement)
    return statements


def as_list(v):
    return v if isinstance(v, list) else [v]


def glob_match(pattern, value, case=True):
    """IAM wildcards: * any run of characters, ? one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def condition_holds(condition, context):
    for operator, keys in (condition or {}).items():
        if operator.startswith("ForAllValues:"):
            # Every value the request has (none: vacuously true, as IAM has it) matches a wanted one.
            base = operator.removeprefix("ForAllValues:")
            for key, wanted in keys.items():
                if not all(condition_holds({base: {key: wanted}}, {key: one}) for one in context.get(key) or []):
                    return False
            continue
        base = operator.removesuffix("IfExists")
        for key, wanted in keys.items():
            have = context.get(key)
            if have is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            wanted = as_list(wanted)
            if base in ("ArnEquals", "ArnLike", "StringLike"):
                ok = any(glob_match(w, have) for w in wanted)
            elif base == "StringEquals":
                ok = have in wanted
            else:
                raise ValueError(f"condition operator {operator} is not known to this check")
            if not ok:
                return False
    return True


def allows(statements, action, resource, context):
    decision = False
    for st in statements:
        if "NotAction" in st or "NotResource" in st:
            raise ValueError("NotAction/NotResource are not known to this check")
        if not any(glob_match(a, action, case=False) for a in as_list(st.get("Action", []))):
            continue
        if not any(glob_match(r, resource) for r in as_list(st.get("Resource", []))):
            continue
        if not condition_holds(st.get("Condition"), context):
            continue
        if st.get("Effect") == "Deny":
            return False
        decision = True
    return decision


# ---------------------------------------------------------------- the check

def load_worlds():
    worlds = {}
    for path in glob.glob(os.path.join(WORLDS, "*.json")):
        world = json.load(open(path))
        worlds[os.path.basename(path)[:-5]] = world
    return worlds


def check(recording, templates, extra_calls=(), every_function=True):
    worlds = load_worlds()
    problems, evaluated = [], {}
    policies = {}

    def policy(world_id):
        if world_id not in policies:
            world = worlds[world_id]
            policies[world_id] = policy_of(templates[world["template"]], world)
        return policies[world_id]

    made = [c for c in (call_of(e) for e in recorded(recording)) if c and c[1]] + list(extra_calls)
    calls = [(function, world, action, p) for function, world, made_action, params in made
             for action, p in iam_calls(made_action, params)]
    for function, world_id, action, params in calls:
        where = f"{function} (world {world_id})"
        if world_id not in worlds:
            problems.append(f"{where}: no such world in {WORLDS}")
            continue
        if action not in TOUCHES:
            problems.append(f"{where}: {action}: this check does not know what it touches; add it to TOUCHES")
            continue
        try:
            touched, context = TOUCHES[action](params)
        except (KeyError, TypeError) as err:
            problems.append(f"{where}: {action}: the request lacks {err} that names what it touches")
            continue
        evaluated[world_id] = evaluated.get(world_id, 0) + 1
        world = worlds[world_id]
        for resource in touched:
            if not allows(policy(world_id), action, resource, context):
                shown = f" with {context}" if context else ""
                problems.append(f"{where}: {action} on {resource}{shown}: the {world['template']} policy would deny it")
            for forbidden in world.get("untouchable", []):
                if forbidden["resource"] == resource:
                    problems.append(f"{where}: {action} touched {resource}, which it must never touch")
    for world_id, world in sorted(worlds.items()):
        for forbidden in world.get("untouchable", []):
            action, resource = forbidden["action"].lower(), forbidden["resource"]
            if allows(policy(world_id), action, resource, {}):
                problems.append(f"{world['function']} (world {world_id}): the {world['template']} policy allows "
                                f"{action} on {resource}, which it must never touch")
        if world_id not in evaluated:
            problems.append(f"{world['function']} (world {world_id}): made no call; was the recorder on?")
    covered = {w["function"] for w in worlds.values()}
    for function in sorted(set(OWNERS) - covered) if every_function else []:
        problems.append(f"{function}: no IAM world; add one to its emulator tests (shared::testing::iam)")
    return problems, sum(evaluated.values()), len(worlds)


def templates_from_disk():
    return {os.path.basename(p): cfn_yaml.load(p) for p in sorted(glob.glob(os.path.join(TEMPLATES, "*.yaml")))}


def statement_with(template, role, action):
    for policy in template["Resources"][role]["Properties"]["Policies"]:
        for st in policy["PolicyDocument"]["Statement"]:
            if isinstance(st, dict) and action in as_list(st.get("Action", [])):
                yield st


def defects(recording):
    """Each defect put back must make the check fail."""
    caught = []
    # 1. ListTasks on container-instance/<cluster>/*.
    templates = templates_from_disk()
    for st in statement_with(templates["lambda.yaml"], "WakeRole", "ecs:ListTasks"):
        st.pop("Condition", None)
        st["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:container-instance/${ClusterName}/*"}
    problems, _, _ = check(recording, templates)
    caught.append(("wake's ListTasks on container-instance", [p for p in problems if "ecs:listtasks" in p]))
    # 2. The reaper describing every service of its cluster: the calls it made, plus a describe of
    # each bystander, as the code that listed and described every service did.
    worlds = load_worlds()
    extra = []
    for world_id, world in worlds.items():
        if world["function"] == "fluidity-reaper":
            for forbidden in world.get("untouchable", []):
                cluster, service = forbidden["resource"].split(":service/", 1)[1].split("/", 1)
                extra.append(("fluidity-reaper", world_id, "ecs:describeservices", {"cluster": cluster, "services": [service]}))
    problems, _, _ = check(recording, templates_from_disk(), extra)
    caught.append(("the reaper describing every service", [p for p in problems if "ecs:describeservices" in p]))
    # 3. wake's and kill's roles on any service of the cluster.
    templates = templates_from_disk()
    for role, action in (("WakeRole", "ecs:UpdateService"), ("KillRole", "ecs:UpdateService")):
        for st in statement_with(templates["lambda.yaml"], role, action):
            st["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/${ClusterName}/*"}
    problems, _, _ = check(recording, templates)
    caught.append(("wake's and kill's roles on every service of the cluster",
                   [p for p in problems if "must never touch" in p and ("fluidity-wake" in p or "fluidity-kill" in p)]))
    failed = False
    for what, found in caught:
        if found:
            print(f"defect put back: {what}: caught ({found[0]})")
        else:
            print(f"FAIL: defect put back: {what}: NOT caught")
            failed = True
    return failed


def main():
    recording = sys.argv[1]
    problems, calls, worlds = check(recording, templates_from_disk(), every_function="--every-function" in sys.argv)
    for p in problems:
        print("FAIL:", p)
    print(f"IAM at the resource level: {calls} calls in {worlds} worlds evaluated against the rendered policies; "
          f"{len(problems)} problems")
    failed = bool(problems)
    if "--defects" in sys.argv:
        failed = defects(recording) or failed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
