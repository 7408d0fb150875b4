#!/usr/bin/env python3
"""The local AWS emulator: moto server, plus the one thing about DynamoDB that moto does not do.

    emulator.py [-H 127.0.0.1] [-p 5123]

moto 5.2.6 speaks every protocol the Rust SDK uses, Smithy RPC v2 CBOR to CloudWatch included, so
requests reach moto's own application untouched (/moto-api/* too), with these exceptions:

  AtomicDynamoDB  DynamoDB requests are served one at a time, because moto checks a condition and
                  then writes with nothing between two server threads, and DynamoDB makes a
                  conditional write atomic (twenty concurrent conditional increments of one budget
                  counter could otherwise all pass). Transaction conflicts, which DynamoDB raises
                  and moto never does, are injected by the tests' fault proxy instead.

  Invoke          Lambda Invoke of our functions runs their built binaries (emulator_invoke.py).
  Deployments     ECS service deployments and revisions, which moto lacks (emulator_deployments.py).

Test infrastructure only: nothing in the functions knows it exists.
"""
import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

import emulator_deployments
import emulator_invoke


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
    emulator_invoke.install(f"http://{args.host}:{args.port}")
    emulator_deployments.install()
    moto = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, AtomicDynamoDB(moto), threaded=True, use_reloader=False,
               request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
