#!/usr/bin/env python3
"""A shipped target map plus a cluster target: a target of every kind the actions' roles are scoped by
(an instance, a database, a replication group, a cluster), so that every conditional IAM statement
renders with ARNs. moto's CloudFormation keeps an AWS::NoValue as null inside a list, so a managed
policy whose statement for an absent kind is left out fails its validator (real CloudFormation drops
it; check_iam.py renders that case as AWS does).

    every_kind.py MAP OUT     writes the map with the cluster target to OUT
"""
import json
import sys

CLUSTER_TARGET = {"kind": "redis", "url": "redis://memcached:6379",
                  "elasticache": {"cacheClusterId": "memcached", "scaleBy": "nodes", "maxNodes": 4}}


def every_kind(path):
    with open(path) as f:
        targets = json.load(f)
    targets["memcached"] = CLUSTER_TARGET
    return targets


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[2], "w") as out:
        json.dump(every_kind(sys.argv[1]), out)
