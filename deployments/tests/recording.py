"""The emulator's recording of the tests' requests, read as the checks need it.

scripts/test.sh turns on moto's recorder while the Rust tests run and downloads every request it
received. A function's own clients carry `app/<function>` in their User-Agent (shared::aws sets it,
in production as in the tests), and an IAM world's `app/<function>~<world>` (shared::testing::iam).
"""
import base64
import json
import re
import urllib.parse

# The credential scope's signing name -> the IAM service prefix, where they differ.
IAM_PREFIX = {"monitoring": "cloudwatch"}


def header(headers, name):
    return next((v for k, v in headers.items() if k.lower() == name), "")


def call_of(entry):
    """(function, world or None, IAM action, request parameters) of a recorded request a function
    made, or None for the tests' own requests."""
    headers = entry.get("headers", {})
    agent = header(headers, "user-agent") + " " + header(headers, "x-amz-user-agent")
    app = re.search(r"\bapp/([A-Za-z0-9._-]+)(?:~([0-9a-f]+))?", agent)
    if not app:
        return None
    scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/aws4_request", header(headers, "authorization"))
    service = IAM_PREFIX.get(scope.group(1), scope.group(1)) if scope else "?"
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body).decode(errors="replace")
    target = header(headers, "x-amz-target")
    invoke = re.search(r"/functions/([^/?]+)/invocations", entry.get("url", "")) if service == "lambda" else None
    if invoke:
        # Lambda's REST Invoke: the function is in the path, the body is the function's event.
        return app.group(1), app.group(2), "lambda:invokefunction", {"FunctionName": urllib.parse.unquote(invoke.group(1))}
    rpc_v2 = re.search(r"/service/[^/]+/operation/([A-Za-z0-9]+)$", entry.get("url", ""))
    if rpc_v2:
        # Smithy RPC v2 CBOR (CloudWatch): the operation is the path; its CBOR body is not decoded
        # (GetMetricData is not scoped by a resource; DescribeAlarms is granted on every alarm).
        operation, params = rpc_v2.group(1), {}
    elif target:
        operation = target.rsplit(".", 1)[-1]
        params = json.loads(body or "{}") if body.strip().startswith("{") else {}
    else:
        params = dict(urllib.parse.parse_qsl(body))
        operation = params.get("Action", "?")
    return app.group(1), app.group(2), f"{service}:{operation}".lower(), params


def recorded(path):
    """The entries of moto's recording. moto appends each entry and its newline in separate writes,
    so under concurrent requests two entries can share a line: read it as a stream of JSON values."""
    text, decoder, at = open(path).read(), json.JSONDecoder(), 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return
        entry, at = decoder.raw_decode(text, at)
        yield entry


def iam_calls(action, params):
    """One recorded request as the IAM actions AWS authorises it as: a DynamoDB transaction is
    authorised as each of its items' actions (there is no dynamodb:TransactWriteItems)."""
    if action == "dynamodb:transactwriteitems":
        kinds = {"Put": "putitem", "Update": "updateitem", "Delete": "deleteitem", "ConditionCheck": "conditioncheckitem"}
        return [(f"dynamodb:{kinds[kind]}", item) for entry in params.get("TransactItems", [])
                for kind, item in entry.items()]
    return [(action, params)]
