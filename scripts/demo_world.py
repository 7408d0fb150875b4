#!/usr/bin/env python3
"""Creates and shows the local demo world in the emulator (moto server), with boto3.

    demo_world.py setup          create the demo ECS cluster and service (idempotent)
    demo_world.py show           print the demo service's desired/running counts
"""
import json
import os
import sys

import boto3

CLUSTER = os.environ.get("DEMO_CLUSTER", "fluidity-demo")
SERVICE = os.environ.get("DEMO_SERVICE", "fluidity-server")


def ecs():
    return boto3.client("ecs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])


def setup():
    client = ecs()
    client.create_cluster(clusterName=CLUSTER)
    client.register_task_definition(
        family="fluidity-server",
        containerDefinitions=[{"name": "server", "image": "fluidity-server:latest", "memory": 512}],
    )
    existing = client.describe_services(cluster=CLUSTER, services=[SERVICE])["services"]
    if any(s["status"] == "ACTIVE" for s in existing):
        client.update_service(cluster=CLUSTER, service=SERVICE, desiredCount=1)
    else:
        client.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition="fluidity-server", desiredCount=1)
    print(f"demo world: cluster {CLUSTER}, service {SERVICE} at desiredCount 1")


def show():
    svc = ecs().describe_services(cluster=CLUSTER, services=[SERVICE])["services"][0]
    print(json.dumps({"service": SERVICE, "desiredCount": svc["desiredCount"], "status": svc["status"]}))


if __name__ == "__main__":
    {"setup": setup, "show": show}[sys.argv[1]]()
