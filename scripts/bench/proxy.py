"""A timing proxy in front of moto (every call, its operation, moto's own time and when it ran), and a
local certificate authority for the TLS runs."""
import collections
import datetime
import http.client
import http.server
import json
import os
import ssl
import threading
import time

from .runtime_api import QuietServer

# One AWS call as the proxy saw it: its operation, moto's time (ns), when it went out and came back
# (perf_counter ns), and whether it was the ledger's (DynamoDB).
Call = collections.namedtuple("Call", "operation took start end dynamodb")

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
                target = self.headers.get("X-Amz-Target") or ""
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
                    proxy.calls.append(Call(operation, took, started, started + took, target.startswith("DynamoDB")))
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
