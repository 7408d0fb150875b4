#!/usr/bin/env python3
"""clear_cache's way from its private subnets to the AWS APIs it calls, checked before deploy.sh deploys.

    network.py [--verify] PARAMS NETWORK_TEMPLATE

Reads VpcSubnetIds and VpcNetworkPath from the params file, checks the VPC with the AWS CLI, and
prints what deploy.sh does next, as JSON: {"path": "none"|"nat"|"existing"} (nothing to deploy), or
{"path": "endpoints", "stack": <name>, "parameters": {...}} (deploy network.yaml as that stack).

- endpoints: network.yaml's endpoints, one stack per VPC (fluidity-network-<vpc>), shared by every
  environment in the VPC. Refused when the VPC already has an endpoint that would make one of them
  fail (an interface endpoint with private DNS for the service, or a gateway on the same route
  tables) and is not that stack's: set VpcNetworkPath=existing then. The endpoint subnets (EndpointSubnetIds, or one of VpcSubnetIds per
  Availability Zone) must be in distinct zones; the gateway endpoint goes on the route tables of
  every environment's subnets in the VPC.
- existing: the VPC's own endpoints must serve every service network.yaml names, the interface ones
  with private DNS, the DynamoDB gateway on the subnets' route tables. A VPC this caller cannot read
  is a warning, not a failure (the company's network account may own it).
- both: the VPC's enableDnsSupport and enableDnsHostnames must be on (private DNS needs them).
- nat: nothing is checked; the subnets' NAT gateway carries the calls.
--verify (deploy.sh -a verify, after a deployment): on the endpoints and existing paths, the VPC's
endpoints must serve every service, as for existing. Exit 1 with a message naming the problem.
"""
import json
import re
import subprocess
import sys


class Unreadable(Exception):
    pass


def aws(*args):
    out = subprocess.run(["aws", *args, "--output", "json"], capture_output=True, text=True)
    if out.returncode != 0:
        raise Unreadable(out.stderr.strip()[:400])
    return json.loads(out.stdout or "null")


def fail(message):
    sys.exit(f"deploy.sh: {message}")


def services_of(template_path):
    """The services network.yaml makes endpoints for (com.amazonaws.<region>.<service>)."""
    return sorted(set(re.findall(r"com\.amazonaws\.\$\{AWS::Region\}\.([a-z0-9-]+)", open(template_path).read())))


def split(value):
    return [v for v in (value or "").split(",") if v]


def route_tables(vpc, subnets):
    """Each subnet's route table: its explicit association, else the VPC's main table."""
    tables = []
    for subnet in subnets:
        found = aws("ec2", "describe-route-tables", "--filters", f"Name=association.subnet-id,Values={subnet}")
        if not found["RouteTables"]:
            found = aws("ec2", "describe-route-tables", "--filters", f"Name=vpc-id,Values={vpc}",
                        "Name=association.main,Values=true")
        tables += [t["RouteTableId"] for t in found["RouteTables"]]
    return sorted(set(tables))


def check_dns(vpc):
    for attribute, key, flag in (("enableDnsSupport", "EnableDnsSupport", "--enable-dns-support"),
                                 ("enableDnsHostnames", "EnableDnsHostnames", "--enable-dns-hostnames")):
        if not aws("ec2", "describe-vpc-attribute", "--vpc-id", vpc, "--attribute", attribute)[key]["Value"]:
            fail(f"the VPC {vpc} has {attribute} off: the endpoints' private DNS needs it on "
                 f"(aws ec2 modify-vpc-attribute --vpc-id {vpc} {flag})")


def endpoints_in(vpc):
    """service -> the VPC's live endpoints for it."""
    found = aws("ec2", "describe-vpc-endpoints", "--filters", f"Name=vpc-id,Values={vpc}")["VpcEndpoints"]
    by_service = {}
    for endpoint in found:
        if endpoint.get("State", "available").lower() in ("deleted", "deleting", "failed", "rejected"):
            continue
        by_service.setdefault(endpoint["ServiceName"].rsplit(".", 1)[-1], []).append(endpoint)
    return by_service


def check_existing(vpc, services, tables, path="existing"):
    present = endpoints_in(vpc)
    problems = []
    for service in services:
        usable = [e for e in present.get(service, [])
                  if (e.get("VpcEndpointType") == "Gateway" and set(tables) <= set(e.get("RouteTableIds", [])))
                  or (e.get("VpcEndpointType") == "Interface" and e.get("PrivateDnsEnabled"))]
        if not usable:
            problems.append(f"{service} (a gateway on route tables {', '.join(tables)})" if service == "dynamodb"
                            else f"{service} (an interface endpoint with private DNS)")
    if problems:
        fail(f"VpcNetworkPath={path}, but the VPC {vpc} has no endpoint for " + "; ".join(problems)
             + ": add them, or set VpcNetworkPath=endpoints (this project's, one set per VPC) or nat")


def clashes(endpoint, tables):
    """Whether the VPC's endpoint would make ours fail: an interface endpoint with private DNS owns the
    service's name in the VPC; a gateway endpoint, the service's route in its route tables."""
    if endpoint.get("VpcEndpointType") == "Gateway":
        return bool(set(endpoint.get("RouteTableIds", [])) & set(tables))
    return bool(endpoint.get("PrivateDnsEnabled"))


def stack_parameters(name):
    try:
        stack = aws("cloudformation", "describe-stacks", "--stack-name", name)["Stacks"][0]
    except Unreadable:
        return None
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def subnets_by_zone(subnets):
    """Availability Zone -> the given subnets in it."""
    described = aws("ec2", "describe-subnets", "--subnet-ids", *subnets)["Subnets"]
    zones = {}
    for subnet in described:
        zones.setdefault(subnet["AvailabilityZone"], []).append(subnet["SubnetId"])
    return zones


def plan_endpoints(vpc, subnets, tables, services, params):
    name = f"fluidity-network-{vpc}"
    ours = stack_parameters(name)
    if ours is None:
        present = endpoints_in(vpc)
        taken = sorted(service for service in services for e in present.get(service, []) if clashes(e, tables))
        if taken:
            fail(f"the VPC {vpc} already has endpoints for {', '.join(taken)}, which are not {name}'s: set "
                 "VpcNetworkPath=existing to use them (a second interface endpoint with private DNS fails to create)")
    chosen = split(params.get("EndpointSubnetIds")) or split((ours or {}).get("EndpointSubnetIds"))
    if chosen:
        shared = {zone: ids for zone, ids in subnets_by_zone(chosen).items() if len(ids) > 1}
        if shared:
            fail("EndpointSubnetIds must hold one subnet per Availability Zone: " +
                 "; ".join(f"{', '.join(ids)} are all in {zone}" for zone, ids in sorted(shared.items())))
    else:
        chosen = [ids[0] for _, ids in sorted(subnets_by_zone(subnets).items())]
    tables = sorted(set(tables) | set(split((ours or {}).get("EndpointRouteTableIds"))))
    cidr = aws("ec2", "describe-vpcs", "--vpc-ids", vpc)["Vpcs"][0]["CidrBlock"]
    return {"path": "endpoints", "stack": name, "parameters": {
        "EndpointVpcId": vpc, "EndpointVpcCidr": cidr, "EndpointSubnetIds": ",".join(chosen),
        "EndpointRouteTableIds": ",".join(tables)}}


def main(params_path, template_path, verify=False):
    params = json.load(open(params_path))["Parameters"]
    subnets = split(params.get("VpcSubnetIds"))
    path = params.get("VpcNetworkPath") or "endpoints"
    if not subnets or path == "nat":
        return {"path": "nat" if subnets else "none"}
    try:
        vpcs = sorted({s["VpcId"] for s in aws("ec2", "describe-subnets", "--subnet-ids", *subnets)["Subnets"]})
    except Unreadable as err:
        if path == "existing":
            print(f"deploy.sh: warning: cannot read the subnets {', '.join(subnets)} ({err}): the VPC's endpoints "
                  "and DNS are not checked (docs/real-account-checklist.md, the VPC path)", file=sys.stderr)
            return {"path": "existing"}
        fail(f"cannot read the subnets {', '.join(subnets)}, whose VPC gets the endpoints: {err}")
    if len(vpcs) != 1:
        fail(f"VpcSubnetIds are in {len(vpcs)} VPCs ({', '.join(vpcs)}); clear_cache's subnets share one")
    vpc, services = vpcs[0], services_of(template_path)
    check_dns(vpc)
    tables = route_tables(vpc, subnets)
    if path == "existing" or verify:
        check_existing(vpc, services, tables, path)
        return {"path": path}
    return plan_endpoints(vpc, subnets, tables, services, params)


if __name__ == "__main__":
    verify = sys.argv[1:2] == ["--verify"]
    arguments = sys.argv[1 + verify:]
    if len(arguments) != 2:
        sys.exit(__doc__)
    try:
        print(json.dumps(main(*arguments, verify=verify)))
    except Unreadable as err:
        fail(f"cannot read the VPC: {err}")
