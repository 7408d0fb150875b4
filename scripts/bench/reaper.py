"""The reaper at scale: hundreds of draining services in moto, two runs (retire, clean up)."""
import math
import time
import uuid

from .run import start, stop
from .world import clients, keep_tasks_running, moto_api

REAPER_PERIOD, REAPER_CONSEC = 60, 2  # the original test plan's settings: two 60 s periods
# The reaper's default METRIC_LAG_SEC: its window ends this long before now, where CloudWatch's
# newest minutes have not arrived yet; the tasks' reports are in the two periods before that.
METRIC_LAG = 120


def reaper_at_scale(api, proxy, n):
    """n draining services, each really running 10 tasks that reported ShutdownReady = 1 in the two
    periods the reaper reads (before its metric lag): the first run reads every task's readiness and
    retires them all, the second cleans up."""
    moto_api("/moto-api/reset")  # only this run's datapoints in moto's CloudWatch, which scans them per query
    keep_tasks_running()
    c = clients()
    ecs, cw = c["ecs"], c["cloudwatch"]
    cluster = f"reap-{n}-{uuid.uuid4().hex[:6]}"
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family="reap-task", containerDefinitions=[
        {"name": "app", "image": "public.ecr.aws/nginx/nginx:latest", "memory": 512}])
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1800))
    now = time.time()
    datums = []
    for i in range(n):
        name = f"svc-bench-d{i}"
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition="reap-task", desiredCount=10,
                           tags=[{"key": "deployment_name", "value": "bench"},
                                 {"key": "deployment_id", "value": f"d{i}"},
                                 {"key": "state", "value": "draining"},
                                 {"key": "draining_since", "value": since}])
        ecs.update_service(cluster=cluster, service=name, desiredCount=10)  # moto: runningCount 10
        tasks = ecs.run_task(cluster=cluster, taskDefinition="reap-task", count=10, launchType="FARGATE",
                             group=f"service:{name}", startedBy=name)["tasks"]
        for task in tasks:
            dims = [{"Name": "deployment_name", "Value": "bench"}, {"Name": "deployment_id", "Value": f"d{i}"},
                    {"Name": "task_id", "Value": task["taskArn"].rsplit("/", 1)[-1]}]
            for ago in (METRIC_LAG + 90, METRIC_LAG + 30):
                datums.append({"MetricName": "ShutdownReady", "Dimensions": dims, "Timestamp": now - ago,
                               "Value": 1.0, "Unit": "Count"})
    for at in range(0, len(datums), 1000):
        cw.put_metric_data(Namespace="App/Drain", MetricData=datums[at:at + 1000])
    env = {"CLUSTER": cluster, "DEPLOYMENT_NAME": "bench", "MIN_AGE_SEC": "0", "PERIOD": str(REAPER_PERIOD),
           "CONSEC": str(REAPER_CONSEC)}
    runs = []
    api.timeout_ms = 300_000  # the reaper's timeout in deployments/cloudformation/reaper.yaml
    for label in ("retire", "clean up"):
        process, _ = start(api, proxy, "fluidity-reaper", env)
        proxy.take()
        started = time.perf_counter()
        kind, body, _ = api.invoke({})
        wall = time.perf_counter() - started
        made = proxy.take()
        stop(api, process)
        ops = [c.operation for c in made]
        by_op = {op: ops.count(op) for op in sorted(set(ops))}
        actions = {}
        for report in (body or {}).get("services", []):
            actions[report["action"]] = actions.get(report["action"], 0) + 1
        # Both runs: ListServices (100 per page), DescribeServices (10 per call) to discover and again
        # to re-read the state tags before acting. Retire: per service ListTasks and DescribeTasks
        # (10 tasks, one page each), GetMetricData 500 queries per call, UpdateService. Clean up:
        # per service GetParametersByPath, DescribeServices (the tag, once more) and DeleteService.
        discover = math.ceil(n / 100) + 2 * math.ceil(n / 10)
        minimum = discover + (3 * n + math.ceil(10 * n / 500) if label == "retire" else 3 * n)
        runs.append({"services": n, "run": label, "result": kind, "actions": actions, "wall_s": wall,
                     "moto_s": sum(c.took for c in made) / 1e9, "calls": len(made), "by_operation": by_op,
                     "minimum": minimum})
    api.timeout_ms = 30_000
    return runs
