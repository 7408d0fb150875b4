"""Where things are, and how many of each measurement (the BENCH_* settings)."""
import math
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BENCH_BIN_DIR", os.path.join(ROOT, "target", "x86_64-unknown-linux-gnu", "release"))
ZIPS = os.path.join(ROOT, "target", "lambda")
OUT = os.path.join(ROOT, "target", "bench")
MOTO = os.environ["AWS_ENDPOINT_URL"]
REDIS_URL = os.environ["REDIS_URL"]
COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "20"))
WARM_INVOCATIONS = int(os.environ.get("BENCH_WARM_INVOCATIONS", "200"))
RSS_AFTER = 100
PASSWORD_REDIS_PORT = int(os.environ.get("BENCH_REDIS_PORT", "6391"))
REAPER_SCALES = [int(n) for n in os.environ.get("BENCH_REAPER_SCALES", "100,500,1000").split(",")]


def percentile(values, p):
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]
