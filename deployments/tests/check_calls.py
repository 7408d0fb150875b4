#!/usr/bin/env python3
"""Every AWS call the functions made during the tests, against what they declare.

scripts/test.sh records every request the emulator receives (moto's recorder) while the Rust tests
run. A function's own clients carry `app/<function>` in their User-Agent (shared::aws sets it, in
production as in the tests), so each recorded call is attributed to the function that made it. This
check fails when a function made a call whose IAM action it does not declare (`<binary> --permissions`),
so a new call cannot reach AWS without its declaration, and with the declaration, its policy (see
check_policies.py).

Usage: check_calls.py RECORDING [TARGET_DIR]
"""
import base64
import json
import os
import re
import subprocess
import sys
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The credential scope's signing name -> the IAM service prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch"}
FUNCTIONS = ["fluidity-wake", "fluidity-sleep", "fluidity-kill", "fluidity-reaper", "incident-restart-service",
             "incident-scale-up", "incident-clear-cache", "incident-notify-human", "fluidity-mark-deployment"]


def declared_actions(binaries, binary):
    out = subprocess.run([os.path.join(binaries, binary), "--permissions"], capture_output=True, text=True,
                         check=True, timeout=30)
    return {p["action"].lower() for p in json.loads(out.stdout)["permissions"]}


def header(headers, name):
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return ""


def call_of(entry):
    """(app, IAM action, request parameters) of a recorded request, or None for one no function made."""
    headers = entry.get("headers", {})
    app = re.search(r"\bapp/([A-Za-z0-9._-]+)", header(headers, "user-agent") or header(headers, "x-amz-user-agent"))
    if not app:
        return None
    scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", header(headers, "authorization"))
    service = IAM_PREFIX.get(scope.group(1), scope.group(1)) if scope else "?"
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode(errors="replace")
    target = header(headers, "x-amz-target")
    if target:
        operation = target.rsplit(".", 1)[-1]
        params = json.loads(body or "{}") if body.strip().startswith("{") else {}
    else:
        params = dict(urllib.parse.parse_qsl(body))
        operation = params.get("Action", "?")
    return app.group(1), f"{service}:{operation}".lower(), params


def recorded(path):
    """The entries of moto's recording. moto appends each entry and its newline in separate writes,
    so under concurrent requests two entries can share a line: read it as a stream of JSON values."""
    text = open(path).read()
    decoder, at = json.JSONDecoder(), 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return
        entry, at = decoder.raw_decode(text, at)
        yield entry


def main():
    recording = sys.argv[1]
    binaries = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target", "debug")
    declared = {f: declared_actions(binaries, f) for f in FUNCTIONS}
    problems, counted = set(), {}
    for entry in recorded(recording):
        call = call_of(entry)
        if call is None:
            continue
        app, action, _ = call
        counted[app] = counted.get(app, 0) + 1
        if app not in declared:
            problems.add(f"{app}: a function this check does not know made {action}")
        elif action not in declared[app]:
            problems.add(f"{app} called {action}, which it does not declare: declare the permission beside "
                         f"the code, and grant it in its role")
    for p in sorted(problems):
        print("FAIL:", p)
    made = ", ".join(f"{app} {n}" for app, n in sorted(counted.items()))
    print(f"recorded calls: {sum(counted.values())} by the functions ({made}); {len(problems)} undeclared")
    if not counted:
        print("FAIL: no call by any function was recorded; was the emulator's recorder on?")
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
