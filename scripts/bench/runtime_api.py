"""A minimal Lambda Runtime API on 127.0.0.1 that serves one function process at a time and times it."""
import http.server
import json
import queue
import socket
import threading
import time
import uuid


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
