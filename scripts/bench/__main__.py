"""python -m bench: every measurement, then the report (see the package's docs)."""
import json
import os
import statistics
import subprocess
import sys
import time

from .code_pages import code_pages
from .ledger import ledger_cost
from .proxy import TimingProxy, local_tls
from .reaper import reaper_at_scale
from .report import markdown, zip_sizes
from .run import FLOOR, FLOOR_EVENT, bench_function, cold_invocations, cold_starts, count_path
from .runtime_api import RuntimeApi
from .settings import COLD_STARTS, MOTO, OUT, PASSWORD_REDIS_PORT, REAPER_SCALES, ROOT, WARM_INVOCATIONS, percentile
from .world import clients, large_map, ledger_table, scale_back, world


# The ledger runs act each time: scale_up at critical (3 tasks), put back to 2 before each.
LEDGER_EVENT = {"incident-scale-up": {"priority": "critical"}}


def main():
    functions, paths = world()
    resets = {"incident-scale-up": lambda: scale_back(functions["incident-scale-up"][0])}
    world_made = time.time()
    api = RuntimeApi()
    proxy = TimingProxy(MOTO)
    report = {"machine": {"cores": os.cpu_count(), "uname": " ".join(os.uname())},
              "settings": {"cold_starts": COLD_STARTS, "warm_invocations": WARM_INVOCATIONS}, "functions": {},
              "paths": [], "reaper_at_scale": [], "zip_mb": zip_sizes(),
              "arm64_zip_mb": zip_sizes(os.path.join(ROOT, "target", "lambda-arm64"))}
    print("bench: the floor (floor-echo)", file=sys.stderr)
    report["floor"] = bench_function(api, proxy, FLOOR, {}, FLOOR_EVENT)
    report["floor"]["code_pages"] = code_pages(api, proxy, FLOOR, {}, FLOOR_EVENT)
    report["zip_mb"].update(zip_sizes(os.path.join(ROOT, "target", "lambda-floor")))
    tls, ca_bundle = local_tls(os.path.join(OUT, "tls"))
    tls_proxy = TimingProxy(MOTO, tls=tls)
    cold_runs = max(3, COLD_STARTS // 4)
    for name, (env, event) in functions.items():
        print(f"bench: {name}", file=sys.stderr)
        report["functions"][name] = bench_function(api, proxy, name, env, event)
        report["functions"][name]["code_pages"] = code_pages(api, proxy, name, env, event)
        over_tls = dict(env, AWS_ENDPOINT_URL=tls_proxy.url, SSL_CERT_FILE=ca_bundle)
        report["functions"][name]["cold_invocation_ms"] = {
            "http": cold_invocations(api, proxy, name, env, event, cold_runs),
            "tls": cold_invocations(api, tls_proxy, name, over_tls, event, cold_runs)}
    report["ledger"] = {}
    for name in ("incident-restart-service", "incident-scale-up", "incident-clear-cache", "incident-notify-human"):
        print(f"bench: {name} with and without the incident ledger", file=sys.stderr)
        env, event = functions[name]
        table = ledger_table(clients()["dynamodb"])
        report["ledger"][name] = ledger_cost(api, proxy, name, env, dict(event, **LEDGER_EVENT.get(name, {})), table,
                                             reset=resets.get(name))
    print("bench: incident-scale-up with a 100-target map", file=sys.stderr)
    path, size = large_map(functions["fluidity-kill"][0]["ECS_CLUSTER_NAME"])
    inits, _, _ = cold_starts(api, proxy, "incident-scale-up", {"TARGETS_FILE": path})
    report["large_map"] = {"targets": 100, "bytes": size, "init_ms": {"median": statistics.median(inits),
                                                                        "p95": percentile(inits, 95)}}
    redis = subprocess.Popen(["redis-server", "--port", str(PASSWORD_REDIS_PORT), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--requirepass", "bench-Pa55"], stdout=subprocess.DEVNULL)
    time.sleep(max(0.5, 6 - (time.time() - world_made)))  # restart-svc's creation older than its 5 s cooldown
    for name, label, env, event, minimum, invocations in paths:
        # Paths run in order: "waking" wakes stopped-svc, which the "running" path then finds running.
        calls, answers = count_path(api, proxy, name, env, event, repeat=invocations)
        report["paths"].append({"function": name, "path": label, "calls": calls, "count": len(calls),
                                "minimum": minimum, "answer": answers[-1][1]})
    redis.kill()
    for n in REAPER_SCALES:
        print(f"bench: reaper with {n} draining services", file=sys.stderr)
        report["reaper_at_scale"].extend(reaper_at_scale(api, proxy, n))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "report.json"), "w") as f:
        json.dump(report, f, indent=2, default=str)
    with open(os.path.join(OUT, "report.md"), "w") as f:
        f.write(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
