#!/usr/bin/env python3
"""Benchmarks every Lambda function's release binary, as Lambda would run it, and writes a report.

Run it through scripts/bench.sh, which builds the release binaries and packages and starts the
emulator and Redis. What it measures (each function, this machine):

- init time: from the exec of the binary to its first GET /2018-06-01/runtime/invocation/next on a
  minimal Runtime API served here on 127.0.0.1 (median and p95 over COLD_STARTS cold starts, after
  one unmeasured start that warms the page cache);
- peak RSS (VmHWM) over a cold start plus 100 invocations, from a binary dropped from the page cache
  first (read from disk, as in a new sandbox) and, beside it, from the binary as the build cached it;
- warm latency: from handing an event out to receiving the response, p50/p99 over 200 invocations,
  with the emulator's own time (measured by a timing proxy between the function and moto) shown
  apart, so that the function's overhead shows;
- AWS calls per invocation, counted by the same proxy, for each path, against the minimum;
- AWS calls made during init (before the first event): must be none;
- package size: each function's Lambda zip;
- the reaper at scale: 100, 500 and 1000 draining services in moto, wall time and calls per run;
- the floor: floor-echo (scripts/floor-echo, a bare lambda_runtime echo with no SDK, same profile)
  measured in the same run, and every function's init and peak RSS as a ratio to it (init against
  floor starts interleaved with the function's own);
- where the binary's RSS comes from: the code executed in a cold start and 20 invocations (valgrind's
  lackey), in 4 KB pages and in the 64 KB windows the kernel's fault-around maps;
- the cold invocation: exec to response for one event (what the backend waits for after a cold
  start: init, credentials, the TLS handshake, the calls), with AWS behind a TLS endpoint whose
  certificate a local authority made, which the function trusts through SSL_CERT_FILE.

Writes target/bench/report.md and target/bench/report.json.
"""
import datetime
import http.client
import http.server
import json
import math
import os
import queue
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


# ---------------------------------------------------------------- the Lambda Runtime API, minimal

class QuietServer(http.server.ThreadingHTTPServer):
    """Killing a function mid-request resets its connection; that is expected here, not an error.
    TCP_NODELAY: the handlers write headers and body separately, and Nagle's algorithm against the
    client's delayed ACK would add 40 ms to every answer, which is not the function's time."""
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass

    def get_request(self):
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class RuntimeApi:
    """Serves events to one function process at a time and times what it does."""

    def __init__(self):
        self.events = queue.Queue()
        self.results = queue.Queue()
        self.timeout_ms = 30_000  # the function's Lambda timeout, for the deadline each event carries
        self.first_next = threading.Event()
        self.first_next_ns = None
        self.sent_ns = {}
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=None):
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def peer_gone(self):
                """Whether the process on the other end has exited (its socket is closed)."""
                try:
                    return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
                except BlockingIOError:
                    return False
                except OSError:
                    return True

            def setup(self):
                super().setup()
                self.events = api.events

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self.reply(404)
                if api.first_next_ns is None:
                    api.first_next_ns = time.perf_counter_ns()
                    api.first_next.set()
                # The queue of the process that opened this connection: a killed process's last
                # GET can reach us after the next process's start, and must not take its event.
                events = self.events
                event = events.get()
                if event is None:  # the process is being stopped
                    return self.reply(500, b"{}")
                if self.peer_gone():  # a killed process's GET, accepted only after the next start
                    events.put(event)
                    self.close_connection = True
                    return None
                request_id = str(uuid.uuid4())
                body = json.dumps(event).encode()
                deadline = int(time.time() * 1000) + api.timeout_ms
                api.sent_ns[request_id] = time.perf_counter_ns()
                self.reply(200, body, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:bench",
                    "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
                })

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                done = time.perf_counter_ns()
                parts = self.path.strip("/").split("/")
                if "init" in parts:
                    api.results.put(("init_error", None, body, done))
                else:
                    kind = parts[-1]  # response | error
                    api.results.put((kind, parts[-2], body, done))
                self.reply(202, b"{}", {"Content-Type": "application/json"})

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def reset(self):
        self.events = queue.Queue()
        self.first_next.clear()
        self.first_next_ns = None
        self.sent_ns.clear()
        while not self.results.empty():
            self.results.get()

    def invoke(self, event):
        """Hands out one event; returns (kind, body, latency ns). Waits for the answer as long as the
        function's timeout allows, and a little longer."""
        self.events.put(event)
        kind, request_id, body, done = self.results.get(timeout=max(60, self.timeout_ms / 1000 + 10))
        if kind == "init_error":
            raise RuntimeError(f"init error: {body.decode()}")
        return kind, json.loads(body or b"null"), done - self.sent_ns[request_id]


# ---------------------------------------------------------------- a timing proxy in front of moto

def honour_service_name(body):
    """moto's ListTasks ignores serviceName and answers with every task of the cluster, so counting
    the reaper's calls there would measure moto, not the reaper. The bench starts each service's
    tasks with startedBy=<service name>, which moto does filter on: the proxy asks for that instead,
    and moto then answers as ECS would."""
    request = json.loads(body or b"{}")
    if "serviceName" in request:
        request["startedBy"] = request.pop("serviceName").rsplit("/", 1)[-1]
    return json.dumps(request).encode()


class TimingProxy:
    """Forwards every AWS call to moto, recording its operation and moto's own time; over TLS when
    given a server context."""

    def __init__(self, upstream, tls=None):
        host = upstream.split("://", 1)[1].rstrip("/")
        self.calls = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                target = self.headers.get("X-Amz-Target")
                if target:
                    operation = target.rsplit(".", 1)[-1]
                elif "/operation/" in self.path:
                    operation = self.path.rsplit("/", 1)[-1]
                else:
                    form = dict(p.split("=", 1) for p in body.decode(errors="replace").split("&") if "=" in p)
                    operation = form.get("Action", self.path)
                if operation == "ListTasks":
                    body = honour_service_name(body)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
                headers["Content-Length"] = str(len(body))
                conn = http.client.HTTPConnection(host, timeout=600)
                started = time.perf_counter_ns()
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                took = time.perf_counter_ns() - started
                conn.close()
                with proxy.lock:
                    proxy.calls.append((operation, took))
                self.send_response(response.status)
                for k, v in response.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = forward

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            # The handshake happens in each connection's own thread, on its first read: one stalled
            # handshake must not hold up accept() for every connection after it.
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True, do_handshake_on_connect=False)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"

    def take(self):
        with self.lock:
            calls, self.calls = self.calls, []
        return calls


def local_tls(folder):
    """A certificate authority of our own and a certificate for 127.0.0.1 it signed (cryptography,
    which moto depends on). Returns the server context and the CA bundle for SSL_CERT_FILE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    now = datetime.datetime.now(datetime.timezone.utc)
    name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    valid = lambda b: b.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
    ca = valid(x509.CertificateBuilder().subject_name(name("bench CA")).issuer_name(name("bench CA"))
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False, data_encipherment=False,
                                            key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
               ).sign(ca_key, hashes.SHA256())
    cert = valid(x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
                 .public_key(key.public_key()).serial_number(x509.random_serial_number())
                 .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                critical=False)
                 .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                 .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                 ).sign(ca_key, hashes.SHA256())
    os.makedirs(folder, exist_ok=True)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    paths = {n: os.path.join(folder, n) for n in ("ca.pem", "server.pem", "server.key")}
    with open(paths["ca.pem"], "wb") as f:
        f.write(pem(ca))
    with open(paths["server.pem"], "wb") as f:
        f.write(pem(cert) + pem(ca))
    with open(paths["server.key"], "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(paths["server.pem"], paths["server.key"])
    return context, paths["ca.pem"]


# ---------------------------------------------------------------- the world in the emulator

def clients():
    return {name: boto3.client(name, endpoint_url=MOTO, region_name="us-east-1")
            for name in ("ecs", "sns", "secretsmanager", "cloudwatch", "dynamodb")}


def service(ecs, cluster, name, desired):
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(family=f"{name}-task", containerDefinitions=[
        {"name": "app", "image": "public.ecr.aws/nginx/nginx:latest", "memory": 512}])
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=f"{name}-task", desiredCount=desired)


def world():
    """The resources each function acts on, and each function's environment and steady-state event."""
    c = clients()
    run = uuid.uuid4().hex[:8]
    cluster = f"bench-{run}"
    service(c["ecs"], cluster, "kill-svc", 1)
    service(c["ecs"], cluster, "wake-svc", 1)      # desired 1, running 0 in moto: "starting"
    service(c["ecs"], cluster, "sleep-svc", 0)     # stopped: no metric query
    service(c["ecs"], cluster, "idle-svc", 1)      # running, idle for an hour: scaled down, once
    service(c["ecs"], cluster, "busy-svc", 1)      # running, busy: metrics read, left up
    now = time.time()
    for name, connections in (("idle-svc", 0.0), ("busy-svc", 3.0)):
        dims = [{"Name": "Service", "Value": name}]
        c["cloudwatch"].put_metric_data(Namespace="Fluidity", MetricData=[
            {"MetricName": "ActiveConnections", "Dimensions": dims, "Timestamp": now - 60, "Value": connections},
            {"MetricName": "LastActivityEpochSeconds", "Dimensions": dims, "Timestamp": now - 60,
             "Value": float(int(now - 3600 if connections == 0 else now - 60))}])
    service(c["ecs"], cluster, "api", 2)
    service(c["ecs"], cluster, "stopped-svc", 0)
    service(c["ecs"], cluster, "restart-svc", 2)   # restarted once, by the counted path, minutes from now
    topic = c["sns"].create_topic(Name=f"oncall-{run}")["TopicArn"]
    secret = c["secretsmanager"].create_secret(Name=f"redis-{run}", SecretString="bench-Pa55")["ARN"]
    targets = json.dumps({
        "api": {"kind": "ecs_service", "cluster": cluster, "service": "api",
                "desiredCount": {"low": 2, "medium": 2, "high": 2, "critical": 3}, "maxCount": 6},
        "cache": {"kind": "redis", "url": REDIS_URL},
        "restart-me": {"kind": "ecs_service", "cluster": cluster, "service": "restart-svc",
                       "desiredCount": {"low": 2, "medium": 2, "high": 2, "critical": 3}, "maxCount": 6},
    })
    lifecycle = lambda svc: {"ECS_CLUSTER_NAME": cluster, "ECS_SERVICE_NAME": svc}
    action = lambda kind, **extra: dict({"action": kind, "target": "api", "incidentId": "INC-1",
                                         "priority": "high"}, **extra)
    functions = {
        "fluidity-kill": (lifecycle("kill-svc"), {}),
        "fluidity-wake": (lifecycle("wake-svc"), {}),
        "fluidity-sleep": (lifecycle("sleep-svc"), {}),
        "fluidity-reaper": ({"CLUSTER": cluster, "DEPLOYMENT_NAME": "bench"}, {}),
        "incident-restart-service": ({"TARGETS_JSON": targets, "RESTART_COOLDOWN_SECONDS": "0"},
                                     action("restart_service")),
        "incident-scale-up": ({"TARGETS_JSON": targets}, action("scale_up")),
        "incident-clear-cache": ({"TARGETS_JSON": targets}, action("clear_cache", target="cache")),
        "incident-notify-human": ({"SNS_TOPIC_ARN": topic},
                                  {"action": "notify_human", "incidentId": "INC-1", "priority": "low",
                                   "incidentDetails": {"title": "bench", "description": "benchmark page"}}),
    }
    # One-off paths whose calls are counted against the minimum:
    # (function, path, environment, event, minimum, invocations in one process).
    paths = [
        ("fluidity-kill", "kill", lifecycle("kill-svc"), {}, "1", 1),
        ("fluidity-wake", "wake a stopped service (waking)", lifecycle("stopped-svc"), {}, "1 describe + 1 update", 1),
        ("fluidity-wake", "wake a starting service", lifecycle("wake-svc"), {}, "1 describe", 1),
        ("fluidity-wake", "wake a running service (+ task address)", lifecycle("stopped-svc"), {},
         "1 describe (+ the address lookup the issue adds)", 1),
        ("fluidity-sleep", "sleep a stopped service", lifecycle("sleep-svc"), {}, "1 describe", 1),
        ("fluidity-sleep", "sleep a running, busy service", lifecycle("busy-svc"), {},
         "1 describe + 1 GetMetricData (both queries)", 1),
        # Threshold 3 s: idle-svc's creation (its wake) is older than that by the time this runs.
        ("fluidity-sleep", "sleep a running, idle service (scaled down)",
         dict(lifecycle("idle-svc"), IDLE_THRESHOLD_MINUTES="0.05"), {}, "1 describe + 1 GetMetricData + 1 update", 1),
        ("incident-restart-service", "restart as deployed (ledger, claim, deployment)",
         # Cooldown 5 s: restart-svc's own creation (a rollout) is older than that by the time this runs.
         {"TARGETS_JSON": targets, "RESTART_COOLDOWN_SECONDS": "5", "LEDGER_TABLE": ledger_table(c["dynamodb"])},
         action("restart_service", target="restart-me"),
         "1 describe + 1 claim put + 1 update, and the ledger's own 5 (pause/budget read, history count, "
         "key put, budget transaction, record and key completed in one transaction)", 1),
        ("incident-notify-human", "page", {"SNS_TOPIC_ARN": topic}, functions["incident-notify-human"][1], "1", 1),
        ("incident-clear-cache", "flush twice, password from Secrets Manager",
         {"TARGETS_JSON": json.dumps({"cache": {"kind": "redis", "url": f"redis://127.0.0.1:{PASSWORD_REDIS_PORT}",
                                                "passwordSecretArn": secret}})},
         action("clear_cache", target="cache"), "1 GetSecretValue for both (cached after the first)", 2),
    ]
    return functions, paths


# ---------------------------------------------------------------- running a function

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


def large_map(cluster):
    """A deployed-size target map: 100 targets of every kind, as deploy.sh packages it (TARGETS_FILE)."""
    targets = {}
    for i in range(100):
        if i % 4 == 0:
            targets[f"svc-{i:03d}"] = {"kind": "ecs_service", "cluster": cluster, "service": f"svc-{i:03d}",
                                       "desiredCount": {"low": 2, "medium": 3, "high": 4, "critical": 6}, "maxCount": 10}
        elif i % 4 == 1:
            targets[f"db-{i:03d}"] = {"kind": "rds_instance", "instanceId": f"db-{i:03d}",
                                      "instanceClass": {"low": "db.r5.large", "medium": "db.r5.large",
                                                        "high": "db.r5.xlarge", "critical": "db.r5.2xlarge"},
                                      "classLadder": ["db.r5.large", "db.r5.xlarge", "db.r5.2xlarge"]}
        elif i % 4 == 2:
            targets[f"cache-{i:03d}"] = {"kind": "redis", "url": f"rediss://cache-{i:03d}.example.internal:6379",
                                         "passwordSecretArn": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:c{i}-AbCdEf",
                                         "elasticache": {"replicationGroupId": f"cache-{i:03d}", "scaleBy": "node_type",
                                                         "nodeTypeLadder": ["cache.r6g.large", "cache.r6g.xlarge"]}}
        else:
            targets[f"hosts-{i:03d}"] = {"kind": "ec2_instances", "instanceIds": [f"i-{i:017x}"]}
    path = os.path.join(OUT, "targets-100.json")
    os.makedirs(OUT, exist_ok=True)
    with open(path, "w") as f:
        json.dump(targets, f)
    return path, os.path.getsize(path)


def ledger_table(dynamodb):
    """The incident ledger's table, as the actions stack makes it."""
    name = f"bench-ledger-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    return name


def ledger_cost(api, proxy, name, env, event, table):
    """scale_up's warm invocations with and without the incident ledger, each for another incident
    (so each is a new request, not a replay), on a service already at its count (the plan is "no
    change": the ledger's own calls and the one describe). Returns calls and latency per invocation."""
    measured = {}
    for label, extra in (("without", {}), ("with", {"LEDGER_TABLE": table})):
        process, _ = start(api, proxy, name, dict(env, **extra))
        calls, latencies = [], []
        for i in range(max(10, WARM_INVOCATIONS // 2)):
            proxy.take()
            _, body, latency = api.invoke(dict(event, incidentId=f"INC-L{label}-{i}"))
            made = proxy.take()
            if isinstance(body, dict) and body.get("success") is False:
                raise RuntimeError(f"ledger bench: {body}")
            calls.append(made)
            latencies.append(latency / 1e6)
        stop(api, process)
        operations = sorted({op for made in calls for op, _ in made})
        measured[label] = {"calls": statistics.mean(len(m) for m in calls), "operations": operations,
                           "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}
    return measured


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
        emulator.append(sum(t for _, t in made) / 1e6)
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


CODE_PAGE_INVOCATIONS = 20
FAULT_AROUND = 64 * 1024  # Linux's default fault_around_bytes: a read fault maps the aligned 64 KB around it


def text_section(path):
    """(address, size) of the executable's code: .text, with the .text.hot that scripts/hot-text/<function>.ld
    lays out before it, from the section headers."""
    out = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout
    spans = []
    for line in out.splitlines():
        fields = line.replace("[ ", "[").split()
        if len(fields) > 5 and fields[1] in (".text", ".text.hot"):
            spans.append((int(fields[3], 16), int(fields[5], 16)))
    if not spans:
        raise RuntimeError(f"{path}: no .text section")
    low = min(start for start, _ in spans)
    return low, max(start + size for start, size in spans) - low


def executed_code(api, proxy, name, env, event):
    """The addresses in the binary's .text of every superblock a cold start and CODE_PAGE_INVOCATIONS
    invocations execute, in the order first executed (valgrind's lackey), and .text's size."""
    with tempfile.TemporaryDirectory() as folder:
        trace = os.path.join(folder, "trace")
        lackey = ("valgrind", "--tool=lackey", "--trace-superblocks=yes", f"--log-file={trace}")
        process, _ = start(api, proxy, name, env, under=lackey)
        for _ in range(CODE_PAGE_INVOCATIONS):
            api.invoke(event)
        stop(api, process)
        low, size = text_section(binary_path(name))
        executed = {}
        with open(trace) as f:
            for line in f:
                if line.startswith("SB "):
                    address = int(line[3:], 16)
                    if low <= address < low + size:
                        executed.setdefault(address, None)
    return list(executed), size


def code_pages(api, proxy, name, env, event):
    """Where the binary's part of the RSS comes from: the code a cold start and CODE_PAGE_INVOCATIONS
    invocations execute, counted in 4 KB pages and in the 64 KB windows the kernel's fault-around
    maps (a file page already in the page cache is mapped with its aligned neighbours). None without
    valgrind."""
    if not shutil.which("valgrind"):
        return None
    executed, size = executed_code(api, proxy, name, env, event)
    return {"text_kb": size / 1024, "executed_kb": 4 * len({a >> 12 for a in executed}),
            "fault_around_kb": FAULT_AROUND // 1024 * len({a // FAULT_AROUND for a in executed}),
            "invocations": CODE_PAGE_INVOCATIONS}


def count_path(api, proxy, name, env, event, repeat=1):
    process, _ = start(api, proxy, name, env)
    proxy.take()
    answers = []
    for _ in range(repeat):
        kind, body, _ = api.invoke(event)
        answers.append((kind, body))
    made = proxy.take()
    stop(api, process)
    return [op for op, _ in made], answers


# ---------------------------------------------------------------- the reaper at scale

REAPER_PERIOD, REAPER_CONSEC = 60, 2  # the seed's testing settings: two 60 s periods


def reaper_at_scale(api, proxy, n):
    """n draining services, each really running 10 tasks that reported ShutdownReady = 1 in the last
    two periods: the first run reads every task's readiness and retires them all, the second cleans up."""
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
            for ago in (90, 30):
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
        ops = [op for op, _ in made]
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
                     "moto_s": sum(t for _, t in made) / 1e9, "calls": len(made), "by_operation": by_op,
                     "minimum": minimum})
    api.timeout_ms = 30_000
    return runs


def moto_api(path, body=None):
    request = urllib.request.Request(MOTO + path, data=json.dumps(body or {}).encode(), method="POST")
    urllib.request.urlopen(request).read()


def keep_tasks_running():
    """moto moves a task one step towards STOPPED on every DescribeTasks; the bench's tasks keep running."""
    moto_api("/moto-api/state-manager/set-transition",
             {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}})


# ---------------------------------------------------------------- the report

def zip_sizes(folder=None):
    folder = folder or ZIPS
    sizes = {}
    for name in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, name, "bootstrap.zip")
        if os.path.exists(path):
            sizes[name] = os.path.getsize(path) / 1e6
    return sizes


def main():
    functions, paths = world()
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
    print("bench: incident-scale-up with and without the incident ledger", file=sys.stderr)
    env, event = functions["incident-scale-up"]
    report["ledger"] = ledger_cost(api, proxy, "incident-scale-up", env, event, ledger_table(clients()["dynamodb"]))
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


def markdown(r):
    lines = [f"# Benchmark report", "",
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
                  "(the aligned window around it). .text counts the .text.hot that each function's scripts/hot-text/<function>.ld "
                  "puts first (the code its cold start executes, unless built with HOT_TEXT=0): laid out together, "
                  "the executed code is mapped with little of the rest of .text. Without the layout it was spread "
                  "over almost every window, so nearly the whole .text was resident; a mapped column far above the "
                  "executed one means the layout is stale (regenerate it with scripts/hot_text.py).", "",
                  "| function | .text (KB) | executed, 4 KB pages (KB) | mapped by fault-around (KB) | "
                  "binary resident, read from disk / as the build cached it (KB, smaps) |", "|---|---|---|---|---|"]
        for name, f in paged:
            c = f["code_pages"]
            lines.append(f"| {name} | {c['text_kb']:.0f} | {c['executed_kb']} | {c['fault_around_kb']} | "
                         f"{f.get('binary_rss_kb', '-')} / {f.get('binary_rss_cached_kb', '-')} |")
    if "ledger" in r:
        w, o = r["ledger"]["with"], r["ledger"]["without"]
        lines += ["", "The incident ledger's cost, on scale_up's warm invocations (each a new request; the plan is "
                  "\"no change\", so the figures are the ledger's calls and one describe):", "",
                  "| | calls/invocation | operations | p50 / p99 (ms) |", "|---|---|---|---|",
                  f"| without a ledger | {o['calls']:.1f} | {', '.join(o['operations'])} | {o['p50']:.2f} / {o['p99']:.2f} |",
                  f"| with the ledger | {w['calls']:.1f} | {', '.join(w['operations'])} | {w['p50']:.2f} / {w['p99']:.2f} |"]
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
              "its address, which the issue asks for beyond the seed."]
    lines += ["", "## Reaper at scale (moto)", "",
              f"Each service is draining at desired 10 with 10 running tasks, every task having reported "
              f"ShutdownReady = 1 in each of the last {REAPER_CONSEC} periods of {REAPER_PERIOD} s. The first run "
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
    """The recorded step builds (scripts/cold_start_steps.py): what each cold-start change bought."""
    path = os.path.join(ROOT, "scripts", "cold-start-steps.json")
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


if __name__ == "__main__":
    main()
