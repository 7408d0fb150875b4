"""Starting a function's binary as Lambda does, and the per-function measurements: init, peak RSS,
warm latency, calls, cold invocations."""
import json
import os
import statistics
import subprocess
import time

from .settings import BIN, COLD_STARTS, RSS_AFTER, WARM_INVOCATIONS, percentile


def binary_path(name):
    """The function's release binary (resolved, as /proc's maps name it)."""
    return os.path.realpath(os.path.join(BIN, name))


def start(api, proxy, name, env, first_event=None, under=()):
    """Starts the function's binary as Lambda does (`under`: a command to run it under, e.g. valgrind)."""
    full = dict(os.environ)
    # This machine's own settings, which Lambda's environment does not have: a system-wide
    # SSL_CERT_FILE would make every function read and parse the whole bundle at init (the TLS runs
    # set their own).
    for setting in ("RUST_LOG", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        full.pop(setting, None)
    full.update({
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_ENDPOINT_URL": proxy.url,
    })
    full.update(env)
    api.reset()
    if first_event is not None:  # waiting already, as Lambda has the event that caused the cold start
        api.events.put(first_event)
    started = time.perf_counter_ns()
    api.started_ns = started
    process = subprocess.Popen([*under, binary_path(name)], env=full, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if not api.first_next.wait(timeout=30):
        process.kill()
        raise RuntimeError(f"{name} never asked for an event")
    return process, api.first_next_ns - started


def stop(api, process):
    process.kill()
    process.wait()
    api.events.put(None)  # releases the handler thread still waiting for an event


def peak_rss_mb(process):
    with open(f"/proc/{process.pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def binary_rss_kb(process, path):
    """The resident part of the executable's own mappings (its code and data), from smaps."""
    total, inside = 0, False
    with open(f"/proc/{process.pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if fields and "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping's header
                inside = fields[-1] == path
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def evict_from_page_cache(path):
    """Drops the file's pages from the page cache, so that the next start reads the binary from disk,
    as a new Lambda sandbox does. What is cached after a build is what the build wrote, in folios of up
    to 2 MB that this machine's kernel (6.18, ext4 large folios) can map whole on a single fault; read
    from disk, a fault maps what readahead brought in within its fault-around window. Measured both
    ways, so that the RSS figure does not depend on how the page cache was filled."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def peak_rss_from_disk(api, proxy, name, env, event):
    """Peak RSS (MB) and the binary's resident KB after a cold start from a binary evicted from the
    page cache and RSS_AFTER invocations."""
    binary = binary_path(name)
    evict_from_page_cache(binary)
    process, _ = start(api, proxy, name, env)
    for _ in range(RSS_AFTER):
        api.invoke(event)
    rss, binary_kb = peak_rss_mb(process), binary_rss_kb(process, binary)
    stop(api, process)
    return rss, binary_kb


FLOOR, FLOOR_EVENT = "floor-echo", {"floor": True}  # the floor's binary and the event it echoes


def init_ms(api, proxy, name, env):
    process, init_ns = start(api, proxy, name, env)
    stop(api, process)
    return init_ns / 1e6


def cold_starts(api, proxy, name, env):
    """Init times (ms) of COLD_STARTS starts after one unmeasured one (page cache), the AWS calls
    made before the first event, and the floor's init times from starts interleaved with these (one
    floor start before each), so that the ratio compares starts made moments apart: this machine's
    speed drifts over a run by more than the differences measured."""
    init_ms(api, proxy, name, env)
    inits, floor_inits = [], []
    init_calls = 0
    for _ in range(COLD_STARTS):
        if name != FLOOR:
            floor_inits.append(init_ms(api, proxy, FLOOR, {}))
        proxy.take()
        inits.append(init_ms(api, proxy, name, env))
        init_calls += len(proxy.take())  # anything sent before the first event
    return inits, init_calls, floor_inits or inits


def cold_invocations(api, proxy, name, env, event, runs):
    """Exec to response (ms) for one event, `runs` times, each a fresh process (after one unmeasured
    start that warms the page cache)."""
    took = []
    for i in range(runs + 1):
        process, _ = start(api, proxy, name, env, first_event=event)
        kind, _, body, done = api.results.get(timeout=60)
        stop(api, process)
        answer = json.loads(body or b"null")
        if kind != "response" or (isinstance(answer, dict) and answer.get("success") is False):
            raise RuntimeError(f"{name}: cold invocation answered {kind}: {body[:300]!r}")
        if i > 0:
            took.append((done - api.started_ns) / 1e6)
    return {"median": statistics.median(took), "p95": percentile(took, 95), "runs": len(took)}


def bench_function(api, proxy, name, env, event):
    inits, init_calls, floor_inits = cold_starts(api, proxy, name, env)
    # Warm latency, calls per invocation and peak RSS, in one process.
    process, _ = start(api, proxy, name, env)
    latencies, emulator, calls, errors = [], [], [], 0
    rss_at_100 = None
    for i in range(WARM_INVOCATIONS):
        proxy.take()
        kind, body, latency = api.invoke(event)
        made = proxy.take()
        if kind != "response" or (isinstance(body, dict) and body.get("success") is False):
            errors += 1
        latencies.append(latency / 1e6)
        emulator.append(sum(c.took for c in made) / 1e6)
        calls.append(len(made))
        if i + 1 == RSS_AFTER:
            rss_at_100 = peak_rss_mb(process)
    if rss_at_100 is None:  # fewer invocations than RSS_AFTER (a quick run)
        rss_at_100 = peak_rss_mb(process)
    binary_cached_kb = binary_rss_kb(process, binary_path(name))
    stop(api, process)
    rss_from_disk, binary_from_disk_kb = peak_rss_from_disk(api, proxy, name, env, event)
    overhead = [lat - emu for lat, emu in zip(latencies, emulator)]
    return {
        "init_ms": {"median": statistics.median(inits), "p95": percentile(inits, 95), "runs": len(inits),
                    "floor_median": statistics.median(floor_inits)},
        "aws_calls_in_init": init_calls,
        "peak_rss_mb": rss_from_disk,
        "binary_rss_kb": binary_from_disk_kb,
        "peak_rss_cached_mb": rss_at_100,
        "binary_rss_cached_kb": binary_cached_kb,
        "warm_ms": {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
                    "emulator_p50": percentile(emulator, 50), "emulator_p99": percentile(emulator, 99),
                    "overhead_p50": percentile(overhead, 50), "overhead_p99": percentile(overhead, 99),
                    "invocations": len(latencies), "errors": errors},
        "calls_per_invocation": statistics.mean(calls) if calls else 0,
    }


def count_path(api, proxy, name, env, event, repeat=1):
    process, _ = start(api, proxy, name, env)
    proxy.take()
    answers = []
    for _ in range(repeat):
        kind, body, _ = api.invoke(event)
        answers.append((kind, body))
    made = proxy.take()
    stop(api, process)
    return [c.operation for c in made], answers
