"""The incident ledger's cost, per action: the DynamoDB calls it adds, how many sequential round trips
they make before the first change and after it (calls in flight together are one round trip), and
warm latency with and without it."""
import statistics

from .run import start, stop
from .settings import WARM_INVOCATIONS, percentile

# The calls that change the target, per action: the ledger's rounds before the first of them are
# the ones the change waits for. clear_cache's change is a Redis command, which the proxy does not
# see: it comes right after the budgets are spent (the round with UpdateItem).
CHANGES = {
    "incident-restart-service": {"UpdateService"},
    "incident-scale-up": {"RegisterScalableTarget", "UpdateService"},
    "incident-clear-cache": set(),
    "incident-notify-human": {"Publish"},
}

# Budgets the bench cannot spend: every invocation acts.
UNLIMITED = {"BUDGET_PER_TARGET_ACTION": "1000000/3600", "BUDGET_PER_TARGET": "1000000/3600",
             "BUDGET_FLEET": "1000000/3600"}


def rounds(calls):
    """The ledger's calls as rounds of calls in flight together, in order: [(start, end, operations)]."""
    groups = []
    for call in sorted((c for c in calls if c.dynamodb), key=lambda c: c.start):
        if groups and call.start < groups[-1][1]:
            start, end, operations = groups[-1]
            groups[-1] = (start, max(end, call.end), operations + [call.operation])
        else:
            groups.append((call.start, call.end, [call.operation]))
    return groups


def around_the_change(calls, changes):
    """The ledger's rounds before the first change, and after it."""
    groups = rounds(calls)
    seen = [c.start for c in calls if c.operation in changes and not c.dynamodb]
    spent = [end for _, end, operations in groups if "UpdateItem" in operations]
    at = min(seen) if seen else (spent[-1] if spent else 0)
    return [g for g in groups if g[1] <= at], [g for g in groups if g[0] >= at]


def shape(groups):
    return " → ".join("+".join(sorted(set(operations))) for _, _, operations in groups)


def ledger_cost(api, proxy, name, env, event, table, reset=None):
    """Warm invocations of `name` without and with the ledger, each for another incident (a new
    request, which acts); `reset` puts the target back before each, so that there is a change."""
    measured = {}
    for label, extra in (("without", {}), ("with", dict(UNLIMITED, LEDGER_TABLE=table))):
        process, _ = start(api, proxy, name, dict(env, **extra))
        latencies, calls, before, after = [], [], [], []
        for i in range(max(10, WARM_INVOCATIONS // 4)):
            if reset:
                reset()
            proxy.take()
            _, body, latency = api.invoke(dict(event, incidentId=f"INC-L{label}-{i}"))
            made = proxy.take()
            if isinstance(body, dict) and body.get("success") is False:
                raise RuntimeError(f"ledger bench, {name}: {body}")
            latencies.append(latency / 1e6)
            calls.append(sum(1 for c in made if c.dynamodb))
            ahead, behind = around_the_change(made, CHANGES[name])
            before.append(ahead)
            after.append(behind)
        stop(api, process)
        measured[label] = {"ledger_calls": statistics.mean(calls), "p50": percentile(latencies, 50),
                           "p99": percentile(latencies, 99), "rounds_before": max(len(b) for b in before),
                           "rounds_after": max(len(a) for a in after),
                           "shape": f"{shape(before[-1])} → change → {shape(after[-1])}" if calls[-1] else "-"}
    return measured
