#!/usr/bin/env python3
"""The local AWS emulator: moto server, with CloudWatch also served over Smithy RPC v2 CBOR.

    emulator.py [-H 127.0.0.1] [-p 5123]

The Rust SDK speaks only RPC v2 CBOR to CloudWatch (POST /service/GraniteServiceVersion20100801/
operation/<Op>, `smithy-protocol: rpc-v2-cbor`); moto 5.2.5 speaks CloudWatch's awsJson1_0 and has
no CBOR (getmoto/moto#9195). This WSGI middleware sits in front of moto's own application and
translates, driven entirely by botocore's published CloudWatch model, so no operation is mapped by
hand and moto's CloudWatch backend holds all the state:

  request:  gzip (the SDK compresses PutMetricData over 10 KiB) -> CBOR (cbor2) -> botocore's
            parameter validator against the operation's input shape (a violation is a 400
            ValidationError, as CloudWatch answers) -> botocore's awsJson1_0 serializer -> moto
  response: moto's JSON -> botocore's awsJson1_0 parser -> botocore's RPC v2 CBOR serializer over
            the output shape (timestamps as tag 1, every `double` as a CBOR float, whole or not);
            errors become the CBOR body {"__type", "message"} plus CloudWatch's x-amzn-query-error

Every other request reaches moto untouched (including /moto-api/*), DynamoDB's one at a time:
DynamoDB makes a conditional write and a transaction atomic, while moto's backend checks the
condition and then writes with nothing between two server threads (twenty concurrent conditional
increments of one budget counter could all pass). Test infrastructure only: nothing in the
functions knows it exists.
"""
import argparse
import gzip
import io
import json
import os
import signal
import sys
import threading

import botocore.session
import cbor2
from botocore import parsers, serialize, validate
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

SERVICE = "cloudwatch"


class CloudWatchOverCbor:
    """WSGI middleware: RPC v2 CBOR CloudWatch requests in, moto's awsJson1_0 backend behind."""

    def __init__(self, app):
        self.app = app
        self.model = botocore.session.get_session().get_service_model(SERVICE)
        self.prefix = f"/service/{self.model.metadata['targetPrefix']}/operation/"
        self.to_json = serialize.create_serializer("json", include_validation=False)
        self.to_cbor = serialize.RpcV2CBORSerializer()
        self.from_json = parsers.create_parser("json")
        self.region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        # The query code of each modelled error (e.g. ValidationException -> ValidationError).
        self.error_shapes = {
            self._query_code(self.model.shape_for(name)): name
            for name in self.model.shape_names
            if self.model.shape_for(name).metadata.get("exception")
        }

    @staticmethod
    def _query_code(shape):
        return (shape.metadata.get("error") or {}).get("code", shape.name)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(self.prefix):
            return self.app(environ, start_response)
        name = path[len(self.prefix):]
        if name not in self.model.operation_names:
            return self._error(start_response, 404, "UnknownOperationException", f"unknown operation {name!r}")
        operation = self.model.operation_model(name)
        try:
            params = self._decode_request(environ)
        except ValueError as err:
            return self._error(start_response, 400, "SerializationException", str(err))
        report = validate.ParamValidator().validate(params, operation.input_shape) if operation.input_shape else None
        if report is not None and report.has_errors():
            return self._error(start_response, 400, "ValidationError", report.generate_report())
        status, headers, body = self._call_moto(environ, operation, params)
        if status >= 300:
            return self._moto_error(start_response, status, headers, body)
        out = b""
        if operation.output_shape is not None:
            parsed = self.from_json.parse({"status_code": status, "headers": headers, "body": body},
                                          operation.output_shape)
            parsed.pop("ResponseMetadata", None)
            out = self.to_cbor._serialize_body_params(parsed, operation.output_shape)
        return self._respond(start_response, 200, out, headers.get("x-amzn-requestid"))

    def _decode_request(self, environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as err:
                raise ValueError(f"Content-Encoding gzip, but the body is not gzip: {err}") from err
        if not body:
            return {}
        try:
            params = cbor2.loads(body)
        except cbor2.CBORDecodeError as err:
            raise ValueError(f"the body is not CBOR: {err}") from err
        if not isinstance(params, dict):
            raise ValueError(f"the body is a CBOR {type(params).__name__}, not a map")
        return params

    def _call_moto(self, environ, operation, params):
        request = self.to_json.serialize_to_request(params, operation)
        body = request["body"] if isinstance(request["body"], bytes) else request["body"].encode()
        inner = {k: v for k, v in environ.items()
                 if k not in ("HTTP_CONTENT_ENCODING", "HTTP_SMITHY_PROTOCOL", "HTTP_ACCEPT", "HTTP_X_AMZN_QUERY_MODE")}
        inner.update({
            "PATH_INFO": "/", "QUERY_STRING": "", "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": request["headers"]["Content-Type"],
            "HTTP_X_AMZ_TARGET": request["headers"]["X-Amz-Target"],
        })
        if "HTTP_AUTHORIZATION" not in inner:
            # moto routes a request by its credential scope; an unsigned one gets the default's.
            inner["HTTP_AUTHORIZATION"] = (f"AWS4-HMAC-SHA256 Credential=testing/20260101/{self.region}/"
                                           f"{self.model.signing_name}/aws4_request, SignedHeaders=host, Signature=0")
        captured = {}

        def capture(status, response_headers, exc_info=None):
            captured["status"] = int(status.split(" ", 1)[0])
            captured["headers"] = {k.lower(): v for k, v in response_headers}
            return lambda data: None

        chunks = self.app(inner, capture)
        try:
            out = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        return captured["status"], captured["headers"], out

    def _moto_error(self, start_response, status, headers, body):
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            fields = {}
        code = str(fields.get("__type") or fields.get("code") or f"HTTP{status}").split("#")[-1]
        message = fields.get("message") or fields.get("Message") or body.decode(errors="replace")
        query = headers.get("x-amzn-query-error")
        return self._error(start_response, status, code, message, query)

    def _error(self, start_response, status, code, message, query_error=None):
        shape = self.error_shapes.get(code, code)
        body = cbor2.dumps({"__type": f"com.amazonaws.cloudwatch#{shape}", "message": message})
        fault = "Sender" if status < 500 else "Receiver"
        return self._respond(start_response, status, body, None, query_error or f"{code};{fault}")

    def _respond(self, start_response, status, body, request_id, query_error=None):
        headers = [("smithy-protocol", "rpc-v2-cbor"), ("Content-Length", str(len(body)))]
        if body:
            headers.append(("Content-Type", "application/cbor"))
        if request_id:
            headers.append(("x-amzn-requestid", request_id))
        if query_error:
            headers.append(("x-amzn-query-error", query_error))
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "Error")
        start_response(f"{status} {reason}", headers)
        return [body]


class AtomicDynamoDB:
    """Serves DynamoDB requests one at a time, the response read whole inside the lock."""

    TARGET_PREFIX = "DynamoDB_20120810."

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(self.TARGET_PREFIX):
            return self.app(environ, start_response)
        with self.lock:
            return [b"".join(self.app(environ, start_response))]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5123)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    moto = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, AtomicDynamoDB(CloudWatchOverCbor(moto)), threaded=True, use_reloader=False,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
