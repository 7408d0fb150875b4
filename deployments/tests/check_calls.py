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
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recording import call_of, iam_calls, recorded  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

FUNCTIONS = ["fluidity-wake", "fluidity-sleep", "fluidity-kill", "fluidity-reaper", "incident-restart-service",
             "incident-scale-up", "incident-clear-cache", "incident-notify-human", "incident-playbook", "incident-rollback-service", "fluidity-mark-deployment",
             "incident-ledger"]


def declared_actions(binaries, binary):
    out = subprocess.run([os.path.join(binaries, binary), "--permissions"], capture_output=True, text=True,
                         check=True, timeout=30)
    return {p["action"].lower() for p in json.loads(out.stdout)["permissions"]}


def main():
    recording = sys.argv[1]
    binaries = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target", "debug")
    declared = {f: declared_actions(binaries, f) for f in FUNCTIONS}
    problems, counted = set(), {}
    for entry in recorded(recording):
        call = call_of(entry)
        if call is None:
            continue
        app, _, recorded_action, params = call
        counted[app] = counted.get(app, 0) + 1
        for action, _ in iam_calls(recorded_action, params):
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
