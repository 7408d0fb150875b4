"""Lambda Invoke for our own functions, served by running the built binary with the payload, the way
`sam local invoke` would: the emulator's answer to Invoke, which moto would otherwise send to Docker.

The function is the one CreateFunction registered in moto: its environment variables are the
process's, under the emulator's own endpoint, region and test credentials (a function's own
AWS_ENDPOINT_URL, e.g. a test's fault proxy, wins). Its binary is found by name in the Cargo target
folder (CARGO_TARGET_DIR, else target/ beside scripts/; debug, else release): a function named like
the stacks name them, `<stack>-restart-service`, runs `incident-restart-service`, and a function named
exactly like a binary runs that binary. The binary runs one event locally (shared::runtime): the
payload on stdin, the answer on stdout, exit status 1 for a function error, as Lambda reports it
(X-Amz-Function-Error: Unhandled). An `Event` invocation runs in the background and answers 202.

Test infrastructure only: nothing in the functions knows it exists.
"""
import os
import pathlib
import subprocess
import threading

ROOT = pathlib.Path(__file__).resolve().parent.parent
PREFIXES = ("incident-", "fluidity-")


def target_dirs():
    base = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    return [base / "debug", base / "release"]


def binary_for(function_name):
    """The built binary that serves this function, or None."""
    for folder in target_dirs():
        if not folder.is_dir():
            continue
        exact = folder / function_name
        if exact.is_file() and os.access(exact, os.X_OK):
            return exact
        for path in sorted(folder.iterdir()):
            name = path.name
            if not name.startswith(PREFIXES) or not path.is_file() or not os.access(path, os.X_OK):
                continue
            suffix = name.split("-", 1)[1]
            if function_name.endswith("-" + suffix):
                return path
    return None


def environment(fn, endpoint, region):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(fn.timeout or 30),
    }
    env.update({k: str(v) for k, v in (fn.environment_vars or {}).items()})
    return env


def run(binary, payload, env, timeout):
    """Runs the binary on one event; (function error?, answer bytes)."""
    try:
        done = subprocess.run([str(binary)], input=payload, env=env, capture_output=True, timeout=timeout + 5)
    except subprocess.TimeoutExpired:
        return True, b'{"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"}'
    return done.returncode != 0, done.stdout.strip() or b'{"errorType": "Runtime.ExitError", "errorMessage": "no answer"}'


def install(endpoint):
    """Replaces moto's LambdaBackend.invoke with one that runs our binaries."""
    from moto.awslambda.models import LambdaBackend

    def invoke(self, function_name, qualifier, body, headers, response_headers):
        fn = self.get_function(function_name, qualifier)
        binary = binary_for(fn.function_name)
        if binary is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return (b'{"errorType": "Emulator.NoBinary", "errorMessage": "no built binary serves function '
                    + fn.function_name.encode() + b'; build it first: cargo build --bins"}')
        payload = body if isinstance(body, bytes) else (body or "").encode()
        env = environment(fn, endpoint, self.region_name)
        timeout = int(fn.timeout or 30)
        if headers.get("X-Amz-Invocation-Type") == "Event":
            threading.Thread(target=run, args=(binary, payload, env, timeout), daemon=True).start()
            return b""
        failed, answer = run(binary, payload, env, timeout)
        if failed:
            response_headers["x-amz-function-error"] = "Unhandled"
        return answer

    LambdaBackend.invoke = invoke
