"""What each cold-start change bought: measures builds of one function, each beside the floor built
with the same profile and flags, with the bench's own measurements.

    scripts/with-services.sh env PYTHONPATH=scripts .tools/venv/bin/python -m bench.steps OUT.json LABEL=DIR ...

Each DIR holds `fluidity-kill` and `floor-echo` release binaries of one step (build each step with
scripts/package.sh -p fluidity-kill -p floor-echo and copy the two from
target/x86_64-unknown-linux-gnu/release). For every step it records init (median over
BENCH_COLD_STARTS starts) and peak RSS as ratios to that step's floor, the instructions of one init
under callgrind (repeatable, unlike the times; skipped without valgrind), the cold invocation over
HTTP and TLS, and the binary and zip sizes. The bench's report puts the recorded table (scripts/bench/cold-start-steps.json)
in its report.
"""
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

from . import run, settings
from .proxy import TimingProxy, local_tls
from .runtime_api import RuntimeApi
from .world import world

FUNCTION = "fluidity-kill"


def zipped_mb(path):
    """The binary as cargo-lambda packages it: one `bootstrap` entry, deflated."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.write(path, "bootstrap")
    return len(buffer.getvalue()) / 1e6


def init_instructions(path, env):
    """Instructions from exec until the runtime API is first asked (nothing listens, so it then exits)."""
    if not shutil.which("valgrind"):
        return None
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9",
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_ENDPOINT_URL": settings.MOTO, **env}
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", path], env=full,
                         capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", run.stderr)
    return int(found.group(1)) if found else None


def main():
    out, steps = sys.argv[1], [arg.split("=", 1) for arg in sys.argv[2:]]
    functions, _ = world()
    env, event = functions[FUNCTION]
    api, proxy = RuntimeApi(), TimingProxy(settings.MOTO)
    tls, ca = local_tls(os.path.join(settings.OUT, "tls"))
    tls_proxy = TimingProxy(settings.MOTO, tls=tls)
    over_tls = dict(env, AWS_ENDPOINT_URL=tls_proxy.url, SSL_CERT_FILE=ca)
    report = []
    for label, folder in steps:
        run.BIN = folder
        floor = run.bench_function(api, proxy, run.FLOOR, {}, run.FLOOR_EVENT)
        f = run.bench_function(api, proxy, FUNCTION, env, event)
        binary = os.path.join(folder, FUNCTION)
        row = {"step": label, "init_ms": f["init_ms"]["median"], "floor_init_ms": f["init_ms"]["floor_median"],
               "peak_rss_mb": f["peak_rss_mb"], "floor_rss_mb": floor["peak_rss_mb"],
               "init_instructions": init_instructions(binary, env),
               "cold_http_ms": run.cold_invocations(api, proxy, FUNCTION, env, event, 5)["median"],
               "cold_tls_ms": run.cold_invocations(api, tls_proxy, FUNCTION, over_tls, event, 5)["median"],
               "binary_mb": os.path.getsize(binary) / 1e6, "zip_mb": zipped_mb(binary)}
        report.append(row)
        print(f"{label}: init {row['init_ms']:.2f} ms = {row['init_ms'] / row['floor_init_ms']:.2f}x, "
              f"RSS {row['peak_rss_mb']:.1f} MB = {row['peak_rss_mb'] / row['floor_rss_mb']:.2f}x, "
              f"{row['init_instructions']} instructions, zip {row['zip_mb']:.2f} MB", file=sys.stderr, flush=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
