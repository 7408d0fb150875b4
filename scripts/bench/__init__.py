"""The benchmark: every Lambda function's release binary, run as Lambda runs it, and a report.

Run it through scripts/bench.sh (`python -m bench` with scripts/ on the path), which builds the release binaries and packages and starts the
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
- the incident ledger's cost per action: the DynamoDB calls and sequential round trips it adds
  before the first change and after it, and warm latency with and without it;
- the floor: floor-echo (scripts/bench/floor-echo, a bare lambda_runtime echo with no SDK, same profile)
  measured in the same run, and every function's init and peak RSS as a ratio to it (init against
  floor starts interleaved with the function's own);
- where the binary's RSS comes from: the code executed in a cold start and 20 invocations (valgrind's
  lackey), in 4 KB pages and in the 64 KB windows the kernel's fault-around maps;
- the cold invocation: exec to response for one event (what the backend waits for after a cold
  start: init, credentials, the TLS handshake, the calls), with AWS behind a TLS endpoint whose
  certificate a local authority made, which the function trusts through SSL_CERT_FILE.

Writes target/bench/report.md and target/bench/report.json.

The modules: settings (paths and sizes), runtime_api (a minimal Lambda Runtime API), proxy (a
timing proxy in front of moto, and a local TLS endpoint), world (what the functions act on, in
moto), run (starting a function and the per-function measurements), code_pages, ledger, reaper,
report, steps (what each cold-start change bought), and __main__.
"""
