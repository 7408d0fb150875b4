#!/usr/bin/env python3
"""The environments' parameters against the templates, and no secret in any default.

Fails when:
- a template parameter without a Default is missing from params-dev.json or params-prod.json
  (ArtifactBucket and ArtifactPrefix come from deploy.sh), so `deploy.sh -a deploy` would stop halfway;
- a params file sets a parameter no template declares (a typo deploys the default silently), or a
  value its template's AllowedPattern or AllowedValues refuses (e.g. a KMS alias where a key ARN is
  needed), which only CloudFormation on a real account enforces (moto's does not);
- an action's console test event (fixtures/incident-*/) acts on its target but is not named
  *-LIVE.json;
- a parameter or function environment variable named like a secret (password, secret, token, api key,
  credential) has a literal value in a template or a params file, other than "" or an ARN: secrets live
  in Secrets Manager and are referenced by ARN.
"""
import glob
import json
import os
import re
import sys

from cfnlint.decode import cfn_yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import targets as target_map  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOYMENTS = os.path.dirname(HERE)
# deploy.sh passes these itself (the zips, and network.yaml's VPC, subnets and route tables, read from VpcSubnetIds).
FROM_DEPLOY_SH = {"ArtifactBucket", "ArtifactPrefix", "EndpointVpcId", "EndpointVpcCidr", "EndpointSubnetIds",
                  "EndpointRouteTableIds"}
SECRET_NAME = re.compile(r"(?i)(password|passwd|secret|token|api_?key|credential)")
problems = []


def allowed(source, key, value):
    """The value against every template's AllowedPattern and AllowedValues for the parameter."""
    for name, template in templates.items():
        spec = template.get("Parameters", {}).get(key)
        if spec and "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], str(value)):
            problems.append(f"{source}: {key}={value!r} does not match {name}'s AllowedPattern "
                            f"{spec['AllowedPattern']}: {spec.get('ConstraintDescription', '')}")
        if spec and "AllowedValues" in spec and str(value) not in [str(v) for v in spec["AllowedValues"]]:
            problems.append(f"{source}: {key}={value!r} is not one of {name}'s {spec['AllowedValues']}")


def literal_secret(value):
    return isinstance(value, str) and value != "" and not value.startswith("arn:")


templates = {os.path.basename(p): cfn_yaml.load(p) for p in sorted(glob.glob(os.path.join(DEPLOYMENTS, "cloudformation", "*.yaml")))}
declared = set()
for name, template in templates.items():
    for key, spec in template.get("Parameters", {}).items():
        declared.add(key)
        if SECRET_NAME.search(key) and literal_secret(spec.get("Default")):
            problems.append(f"{name}: parameter {key} has a literal default; reference a secret by ARN")
    for rname, resource in template.get("Resources", {}).items():
        variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
        for var, value in variables.items() if isinstance(variables, dict) else []:
            if SECRET_NAME.search(var) and not var.endswith("_ARN") and literal_secret(value):
                problems.append(f"{name}: {rname} sets {var} to a literal; pass the secret's ARN instead")

for env in ("dev", "prod"):
    path = os.path.join(DEPLOYMENTS, f"params-{env}.json")
    params = json.load(open(path))["Parameters"]
    for name, template in templates.items():
        for key, spec in template.get("Parameters", {}).items():
            if "Default" not in spec and key not in FROM_DEPLOY_SH and key not in params:
                problems.append(f"params-{env}.json lacks {key}, which {name} requires")
    for key, value in params.items():
        if key not in declared:
            problems.append(f"params-{env}.json sets {key}, which no template declares")
        allowed(f"params-{env}.json", key, value)
        if SECRET_NAME.search(key) and literal_secret(value):
            problems.append(f"params-{env}.json holds a literal {key}; reference the secret by ARN")

# Each environment's shipped target map (deploy.sh packages it into the actions' zips): every
# console test event under fixtures/ names a target that exists in it, its ECS services are in the
# cluster the roles are scoped to, and Redis targets come with the VPC that reaches them.
FIXTURES = os.path.join(os.path.dirname(DEPLOYMENTS), "fixtures")
named = {}
for fixture in glob.glob(os.path.join(FIXTURES, "incident-*", "*.json")):
    event = json.load(open(fixture))
    # An alarm's suppressed transition starts nothing (incident-playbook records it as skipped).
    suppressed = bool(((event.get("alarmData") or {}).get("state") or {}).get("actionsSuppressedBy"))
    if event.get("dryRun") is not True and not suppressed and not fixture.endswith("-LIVE.json"):
        problems.append(f"{os.path.relpath(fixture, FIXTURES)} acts on its target (no dryRun: true) but is not "
                        "named *-LIVE.json: nobody should mistake it for a safe test event")
    target = event.get("target")
    if target:
        named.setdefault(target, []).append(os.path.relpath(fixture, os.path.dirname(DEPLOYMENTS)))
for env in ("dev", "prod"):
    params = json.load(open(os.path.join(DEPLOYMENTS, f"params-{env}.json")))["Parameters"]
    targets = json.load(open(os.path.join(DEPLOYMENTS, f"targets-{env}.json")))
    for target, fixtures in sorted(named.items()):
        if target not in targets:
            problems.append(f"targets-{env}.json has no target {target!r}, which {', '.join(fixtures)} names")
    problems.extend(f"targets-{env}.json: {p}" for p in target_map.check(targets, params))
    # What deploy.sh derives from the map must pass the template too (in any account).
    for key, value in target_map.grants(targets, "aws", "us-east-1", "123456789012").items():
        if key not in declared:
            problems.append(f"targets.py derives {key}, which no template declares")
        allowed(f"the parameters derived from targets-{env}.json", key, value)

if problems:
    print("parameter check FAILED:\n  " + "\n  ".join(problems))
    sys.exit(1)
print(f"parameters: params-dev.json and params-prod.json cover every required parameter of {len(templates)} templates; "
      f"no secret in any default or environment; the shipped target maps hold the {len(named)} targets the "
      "fixtures name, in TargetCluster, with a VPC for Redis")
