#!/usr/bin/env python3
"""An environment's target map, as deploy.sh and the checks read it: one place for both.

    targets.py check MAP PARAMS                      problems, one per line; exit 1 if any
    targets.py grants MAP PARTITION REGION ACCOUNT   the stack parameters derived from the map (JSON)

`grants` is what the actions' roles are scoped to: each IAM statement that changes a target names
exactly the map's resources (its instances, databases, replication groups, clusters, secrets),
never every one in the account. check_iam.py renders the tests' IAM worlds with the same function.
"""
import json
import re
import sys

# The map's one name that is not a target: the alarms' playbooks (incident-playbook reads them).
PLAYBOOKS = "playbooks"
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$")


def check(targets, params):
    """What stops the map from being deployed with these parameters (empty: nothing)."""
    if not isinstance(targets, dict) or not targets:
        return ["the target map must be a non-empty JSON object of targets"]
    problems = []
    for name, playbook in (targets.get(PLAYBOOKS) or {}).items():
        if not isinstance(playbook, dict) or playbook.get("target") not in targets or playbook.get("target") == PLAYBOOKS:
            problems.append(f"playbook {name} names target {playbook.get('target') if isinstance(playbook, dict) else None!r}, "
                            "which the map does not have")
    targets = only_targets(targets)
    for name, target in targets.items():
        kind = target.get("kind") if isinstance(target, dict) else None
        if kind == "ecs_service" and target.get("cluster") != params.get("TargetCluster"):
            problems.append(f"target {name} is in cluster {target.get('cluster')!r}, but the roles are scoped to "
                            f"TargetCluster {params.get('TargetCluster')!r}")
        if kind == "redis" and not (params.get("VpcSubnetIds") and params.get("VpcSecurityGroupIds")):
            problems.append(f"target {name} is a Redis server, which clear_cache reaches inside its VPC: set "
                            "VpcSubnetIds and VpcSecurityGroupIds in the params file")
    bad = [s for s in _secrets(targets) if not SECRET_ARN.match(s)]
    if bad:
        problems.append("passwordSecretArn must be a Secrets Manager secret ARN "
                        "(arn:<partition>:secretsmanager:<region>:<account>:secret:<name>[-<6 characters>]): "
                        + ", ".join(bad))
    return problems


def only_targets(targets):
    """The map without its playbooks section."""
    return {name: target for name, target in targets.items() if name != PLAYBOOKS}


def grants(targets, partition, region, account):
    """The actions stack's parameters that scope its roles to the map's resources."""
    def arns(service, resources):
        return ",".join(f"arn:{partition}:{service}:{region}:{account}:{r}" for r in sorted(set(resources)))

    kinds = {}
    for target in only_targets(targets).values():
        kinds.setdefault(target.get("kind"), []).append(target)
    instances = [i for t in kinds.get("ec2_instances", []) for i in t.get("instanceIds", [])]
    databases = [t["instanceId"] for t in kinds.get("rds_instance", [])]
    caches = [t["elasticache"] for t in kinds.get("redis", []) if t.get("elasticache")]
    groups = [c["replicationGroupId"] for c in caches if c.get("replicationGroupId")]
    clusters = [c["cacheClusterId"] for c in caches if c.get("cacheClusterId")]
    # A replication group's clusters are named <group>-001, -002, ...: clear_cache reboots them.
    members = [f"{group}-???" for group in groups]
    return {
        # IAM matches a secret by its full ARN, which ends in six random characters: a map that names
        # a secret without them (or a secret created again, with new ones) is granted by the -?????? form.
        "RedisSecretArns": ",".join(g for s in _secrets(targets) for g in (s, s + "-??????")),
        "RebootInstanceArns": arns("ec2", (f"instance/{i}" for i in instances)),
        "RdsInstanceArns": arns("rds", (f"db:{d}" for d in databases)),
        "CacheReplicationGroupArns": arns("elasticache", (f"replicationgroup:{g}" for g in groups)),
        "CacheClusterArns": arns("elasticache", (f"cluster:{c}" for c in clusters)),
        "RebootCacheClusterArns": arns("elasticache", (f"cluster:{c}" for c in clusters + members)),
    }


def _secrets(targets):
    return sorted({t["passwordSecretArn"] for t in targets.values()
                   if isinstance(t, dict) and t.get("passwordSecretArn")})


def _load(path, what):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        sys.exit(f"deploy.sh: {what} {path} cannot be read: {err}")


def main(argv):
    if len(argv) == 4 and argv[1] == "check":
        problems = check(_load(argv[2], "the target map"), _load(argv[3], "the params file")["Parameters"])
        for problem in problems:
            print(f"deploy.sh: {problem}", file=sys.stderr)
        return 1 if problems else 0
    if len(argv) == 6 and argv[1] == "grants":
        print(json.dumps(grants(_load(argv[2], "the target map"), *argv[3:6])))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
