"""The report: target/bench/report.md from the measurements."""
import json
import os

from .reaper import METRIC_LAG, REAPER_CONSEC, REAPER_PERIOD
from .run import FLOOR
from .settings import ROOT, ZIPS


def zip_sizes(folder=None):
    folder = folder or ZIPS
    sizes = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name, "bootstrap.zip")
        if os.path.exists(path):
            sizes[name] = os.path.getsize(path) / 1e6
    return sizes


def markdown(r):
    lines = ["# Benchmark report", "",
             f"Machine: {r['machine']['cores']} cores, `{r['machine']['uname']}`. Release binaries (LTO), "
             f"a Runtime API on 127.0.0.1, moto as AWS. {r['settings']['cold_starts']} cold starts, "
             f"{r['settings']['warm_invocations']} warm invocations per function.", "",
             "| function | init median / p95 (ms) | init × floor | AWS calls in init | peak RSS, cold start + 100 (MB) | "
             "RSS × floor | RSS × floor, binary as the build cached it | cold invocation over HTTP / TLS, median (ms) | "
             "warm p50 / p99 (ms) | of which moto p50 / p99 | function overhead p50 / p99 | calls/invocation | zip (MB) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    floor = r.get("floor")
    rows = ([("floor-echo (the floor)", floor)] if floor else []) + list(r["functions"].items())
    for name, f in rows:
        w = f["warm_ms"]
        # Against the floor's starts interleaved with this function's (older reports: the floor row's).
        floor_init = f["init_ms"].get("floor_median") or (floor["init_ms"]["median"] if floor else float("nan"))
        init_x = f["init_ms"]["median"] / floor_init
        rss_x = f["peak_rss_mb"] / floor["peak_rss_mb"] if floor else float("nan")
        cached = f.get("peak_rss_cached_mb")  # older reports measured only this way
        cached_x = f"{cached / floor['peak_rss_cached_mb']:.2f}" if cached and floor else "-"
        cold = f.get("cold_invocation_ms")
        cold_text = f"{cold['http']['median']:.1f} / {cold['tls']['median']:.1f}" if cold else "-"
        zip_name = name.split(" ")[0]
        lines.append(
            f"| {name} | {f['init_ms']['median']:.1f} / {f['init_ms']['p95']:.1f} | {init_x:.2f} | {f['aws_calls_in_init']} | "
            f"{f['peak_rss_mb']:.1f} | {rss_x:.2f} | {cached_x} | {cold_text} | {w['p50']:.2f} / {w['p99']:.2f} | "
            f"{w['emulator_p50']:.2f} / {w['emulator_p99']:.2f} | "
            f"{w['overhead_p50']:.2f} / {w['overhead_p99']:.2f} | {f['calls_per_invocation']:.1f} | "
            f"{r['zip_mb'].get(zip_name, float('nan')):.2f} |")
    lines += ["", "The ratios are to floor-echo measured in this run (a bare lambda_runtime echo, no SDK, same "
              "profile): absolute times on this machine are noisy, the ratio is the figure. Each function's init "
              "ratio is to the floor's starts interleaved with its own (a floor start before each of its starts), "
              "since this machine's speed drifts during a run by more than the differences measured; the floor "
              "row's own figures are from its first measurement. Peak RSS is measured on a start from a binary "
              "dropped from the page cache first (posix_fadvise), as a new Lambda sandbox reads its code from disk; "
              "the column after it is the same start with the binary in the page cache as the build wrote it, in "
              "folios of up to 2 MB that this machine's kernel can map whole on one fault. A cold invocation is exec "
              "to response for one event waiting at start, as Lambda hands it out: init, credentials, the "
              "connection (over TLS: the handshake with a local certificate authority the function trusts through "
              "SSL_CERT_FILE) and the calls; median of a fresh process each time."]
    paged = [(name, f) for name, f in rows if f.get("code_pages")]
    if paged:
        lines += ["", "Where the binary's share of the RSS comes from: the code executed by a cold start and "
                  f"{paged[0][1]['code_pages']['invocations']} invocations (valgrind's lackey, every superblock), in 4 KB pages, "
                  "and in the 64 KB windows Linux's fault-around maps when a page of a cached file is first touched "
                  "(the aligned window around it).", "",
                  "| function | .text (KB) | executed, 4 KB pages (KB) | mapped by fault-around (KB) | "
                  "binary resident, read from disk / as the build cached it (KB, smaps) |", "|---|---|---|---|---|"]
        for name, f in paged:
            c = f["code_pages"]
            lines.append(f"| {name} | {c['text_kb']:.0f} | {c['executed_kb']} | {c['fault_around_kb']} | "
                         f"{f.get('binary_rss_kb', '-')} / {f.get('binary_rss_cached_kb', '-')} |")
    if "ledger" in r:
        lines += ["", "The incident ledger's cost, per action, on warm invocations that each act for another incident "
                  "(with budgets the bench cannot spend): the DynamoDB calls it adds, its sequential round trips "
                  "(calls in flight together count once) before the first change and after it, and warm latency "
                  "without and with it (moto's DynamoDB is slower than DynamoDB's single-digit milliseconds).", "",
                  "| action | ledger calls | round trips before the change / after | the rounds | "
                  "warm p50 / p99 without (ms) | with (ms) |", "|---|---|---|---|---|---|"]
        for name, m in r["ledger"].items():
            w, o = m["with"], m["without"]
            lines.append(f"| {name} | {w['ledger_calls']:.1f} | {w['rounds_before']} / {w['rounds_after']} | {w['shape']} | "
                         f"{o['p50']:.2f} / {o['p99']:.2f} | {w['p50']:.2f} / {w['p99']:.2f} |")
    if "large_map" in r:
        m, small = r["large_map"], r["functions"]["incident-scale-up"]["init_ms"]
        lines += ["", f"incident-scale-up with a {m['targets']}-target map ({m['bytes'] / 1024:.1f} KB, TARGETS_FILE, "
                  f"as deploy.sh packages it): init median / p95 {m['init_ms']['median']:.1f} / {m['init_ms']['p95']:.1f} ms "
                  f"(with the 3-target TARGETS_JSON above: {small['median']:.1f} / {small['p95']:.1f} ms)."]
    if r.get("arm64_zip_mb"):
        lines += ["", "arm64 zips (`LAMBDA_ARCH=arm64`, Graviton): " +
                  ", ".join(f"{n} {mb:.2f} MB" for n, mb in r["arm64_zip_mb"].items())]
    other = [n for n in r["zip_mb"] if n not in r["functions"] and n != FLOOR]
    if other:
        lines += ["", "Other packages: " + ", ".join(f"{n} {r['zip_mb'][n]:.2f} MB" for n in other)]
    lines += steps_markdown()
    lines += ["", "## AWS calls per invocation, by path", "", "| function | path | calls | count | minimum |",
              "|---|---|---|---|---|"]
    for p in r["paths"]:
        lines.append(f"| {p['function']} | {p['path']} | {', '.join(p['calls'])} | {p['count']} | {p['minimum']} |")
    lines += ["", "Wake on a service with a running task adds DescribeTasks and EC2 DescribeNetworkInterfaces to find "
              "its address, which the original did not."]
    lines += ["", "## Reaper at scale (moto)", "",
              f"Each service is draining at desired 10 with 10 running tasks, every task having reported "
              f"ShutdownReady = 1 in each of the {REAPER_CONSEC} periods of {REAPER_PERIOD} s the reaper reads, "
              f"which end its METRIC_LAG_SEC ({METRIC_LAG} s) before now. The first run "
              "reads every task's readiness and retires them all; the second cleans them up. The minimum is what "
              "AWS's batch limits allow (ListServices 100 per page, DescribeServices 10 per call, GetMetricData 500 "
              "queries per call); moto answers ListServices in a single page, hence one call fewer than the minimum "
              "per extra hundred services. moto's ListTasks ignores serviceName; the bench's proxy makes it filter "
              "(by the startedBy the bench gives each service's tasks), as ECS does. moto's CloudWatch scans every "
              "datapoint for every query, so most of the wall time is moto's (its share is shown).", "",
              "| draining services | run | wall (s) | moto, summed over calls (s) | calls | by operation | minimum | result |",
              "|---|---|---|---|---|---|---|---|"]
    for s in r["reaper_at_scale"]:
        ops = ", ".join(f"{k} {v}" for k, v in s["by_operation"].items())
        lines.append(f"| {s['services']} | {s['run']} | {s['wall_s']:.2f} | {s['moto_s']:.2f} | {s['calls']} | {ops} | "
                     f"{s['minimum']} | {s['result']}: {s['actions']} |")
    return "\n".join(lines) + "\n"


def steps_markdown():
    """The recorded step builds (python -m bench.steps): what each cold-start change bought."""
    path = os.path.join(ROOT, "scripts", "bench", "cold-start-steps.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        record = json.load(f)
    lines = ["", "## What each cold-start change bought", "",
             f"{record['about']}", "",
             "| step | change | init (ms) | init × floor | init instructions | peak RSS (MB) | RSS × floor | "
             "cold invocation HTTP / TLS (ms) | binary (MB) | zip (MB) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in record["steps"]:
        instructions = f"{row['init_instructions'] / 1e6:.2f} M" if row.get("init_instructions") else "-"
        lines.append(f"| {row['step']} | {row['change']} | {row['init_ms']:.2f} | {row['init_ms'] / row['floor_init_ms']:.2f} | "
                     f"{instructions} | {row['peak_rss_mb']:.1f} | {row['peak_rss_mb'] / row['floor_rss_mb']:.2f} | "
                     f"{row['cold_http_ms']:.1f} / {row['cold_tls_ms']:.1f} | {row['binary_mb']:.2f} | {row['zip_mb']:.2f} |")
    return lines + [""] + [f"- {note}" for note in record.get("notes", [])]
