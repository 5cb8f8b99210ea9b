"""Real registries for the image tests: Debian's docker-registry on free
loopback ports (open, htpasswd basic auth, token auth with a small token
server written here, TLS with a throwaway certificate), plus a counting and
throttling HTTP proxy. The test images come from hack/make-test-images and
are pushed once per session into a storage directory all registries share.
"""
import base64
import hashlib
import http.client
import http.server
import importlib.machinery
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "husk", "husk-secret"
REFRESH_TOKEN = "husk-refresh-token"
SERVICE, ISSUER = "husk-registry", "husk-token-issuer"


def load_images_module():
    path = os.path.join(REPO, "hack", "make-test-images")
    loader = importlib.machinery.SourceFileLoader("make_test_images", path)
    spec = importlib.util.spec_from_loader("make_test_images", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


mti = load_images_module()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=15, log=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"registry exited: {open(log).read() if log else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} not listening after {timeout}s")


def make_cert(d, name="cert"):
    """A self-signed certificate for 127.0.0.1 (and its key), made now."""
    crt, key = os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", crt], check=True, capture_output=True)
    return crt, key


class RegistryServer:
    """One docker-registry process."""

    def __init__(self, base, storage, name, auth=None, tls=None):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.dir, "registry.log")
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": storage},
                        "delete": {"enabled": True},
                        "maintenance": {"uploadpurging": {"enabled": False}}},
            "http": {"addr": self.host, "secret": "husk-e2e-secret"},
        }
        if auth:
            cfg["auth"] = auth
        if tls:
            cfg["http"]["tls"] = {"certificate": tls[0], "key": tls[1]}
        path = os.path.join(self.dir, "config.yml")
        with open(path, "w") as f:
            json.dump(cfg, f)  # YAML reads JSON
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", path], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        wait_port(self.port, self.proc, log=self.log_path)

    def requests(self, needle):
        """Access-log lines of requests containing needle."""
        with open(self.log_path, errors="replace") as f:
            return [line for line in f if '"GET ' in line and needle in line]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class TokenServer:
    """The token endpoint of the registry's `auth: token` scheme: checks
    basic credentials (or an OAuth2 refresh token) and signs a JWT with the
    requested pull/push rights. Anonymous callers get pull on public/*."""

    def __init__(self, base):
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        self.crt, self.key_path = make_cert(base, "token")
        with open(self.crt, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        self.x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        with open(self.key_path, "rb") as f:
            self.key = serialization.load_pem_private_key(f.read(), password=None)
        self.port = free_port()
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.issued = []
        server = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                server.handle(self, None)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                server.handle(self, urllib.parse.parse_qs(self.rfile.read(n).decode()))

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, access, sub="husk"):
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {"iss": ISSUER, "sub": sub, "aud": SERVICE, "exp": now + 600,
                  "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing = _b64url(json.dumps(header).encode()) + "." + \
            _b64url(json.dumps(claims).encode())
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return signing + "." + _b64url(sig)

    def handle(self, h, form):
        q = urllib.parse.parse_qs(urllib.parse.urlparse(h.path).query)
        if form:
            q.update(form)
        who = None
        authz = h.headers.get("Authorization", "")
        if authz.startswith("Basic "):
            u, _, p = base64.b64decode(authz[6:]).decode().partition(":")
            if (u, p) != (USER, PASSWORD):
                return self._reply(h, 401, {"details": "invalid username or password"})
            who = u
        elif form is not None:
            if q.get("grant_type") != ["refresh_token"] or \
                    q.get("refresh_token") != [REFRESH_TOKEN]:
                return self._reply(h, 401, {"error": "invalid refresh token"})
            who = USER
        access = []
        for scope in q.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) < 3 or parts[0] != "repository":
                    continue
                name, actions = ":".join(parts[1:-1]), parts[-1].split(",")
                if who is None and not name.startswith("public/"):
                    actions = []
                access.append({"type": "repository", "name": name, "actions": actions})
        tok = self.sign(access, who or "")
        self.issued.append((who, q.get("scope", [])))
        body = {"token": tok, "expires_in": 600}
        if form is not None:
            body = {"access_token": tok, "expires_in": 600}
        self._reply(h, 200, body)

    @staticmethod
    def _reply(h, code, body):
        data = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Proxy:
    """A plain-HTTP reverse proxy in front of a registry that counts the
    requests it forwards and can slow blob bodies down to rate bytes/s."""

    def __init__(self, upstream, rate=None, fail_first=0, cut_first=0, only="/blobs/"):
        self.upstream = upstream
        self.rate = rate
        # fault injection on blob GETs: answer 503 to the first fail_first,
        # then drop the connection half-way through the next cut_first
        self.fail_left = fail_first
        self.cut_left = cut_first
        self.only = only
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = []
        self.lock = threading.Lock()
        proxy = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def handle(self):
                # A TLS ClientHello (husk probing HTTPS first) gets the
                # connection closed at once.
                try:
                    first = self.request.recv(1, socket.MSG_PEEK)
                except OSError:
                    return
                if first in (b"", b"\x16"):
                    return
                super().handle()

            def do_GET(self):
                proxy.forward(self, "GET")

            def do_HEAD(self):
                proxy.forward(self, "HEAD")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def gets(self, needle):
        with self.lock:
            return [p for m, p in self.log if m == "GET" and needle in p]

    def forward(self, h, method):
        blob = method == "GET" and "/blobs/" in h.path and self.only in h.path
        with self.lock:
            self.log.append((method, h.path))
            fail = blob and self.fail_left > 0
            cut = blob and not fail and self.cut_left > 0
            if fail:
                self.fail_left -= 1
            elif cut:
                self.cut_left -= 1
        if fail:
            h.send_response(503)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        headers = {k: v for k, v in h.headers.items()
                   if k.lower() in ("accept", "authorization", "range")}
        try:
            conn.request(method, h.path, headers=headers)
            r = conn.getresponse()
            h.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "date", "server"):
                    h.send_header(k, v)
            h.end_headers()
            if method == "HEAD":
                return
            slow = self.rate and "/blobs/" in h.path
            chunk = 16384 if slow else 1 << 20
            left = int(r.getheader("Content-Length") or 0) // 2 if cut else None
            while True:
                data = r.read(chunk if left is None else min(chunk, left))
                if not data:
                    break
                h.wfile.write(data)
                if left is not None:
                    left -= len(data)
                    if left <= 0:
                        h.wfile.flush()
                        h.close_connection = True
                        h.connection.shutdown(socket.SHUT_RDWR)
                        return
                if slow:
                    time.sleep(len(data) / self.rate)
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Registries:
    """Everything the image tests need, started once per session."""

    def __init__(self):
        tag = os.environ.get("HUSK_RUN_TAG")  # conftest.RUN_TAG
        self.base = tempfile.mkdtemp(prefix=f"husk-registry-{tag}-" if tag else "husk-registry-",
                                     dir="/tmp")
        self.storage = os.path.join(self.base, "storage")
        self.started = []
        self.tokens = None
        try:
            self._setup()
        except BaseException:
            self.stop()  # what started before the failure, and the dir
            raise

    def _setup(self):
        self.open = self._start("open")
        self.images = mti.build_all(mti.Registry(self.open.host))
        htpasswd = os.path.join(self.base, "htpasswd")
        out = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                             capture_output=True, text=True).stdout
        with open(htpasswd, "w") as f:
            f.write(out)
        self.basic = self._start("basic", auth={"htpasswd": {"realm": "husk-basic",
                                                             "path": htpasswd}})
        self.tokens = TokenServer(self.base)
        self.token = self._start("token", auth={"token": {
            "realm": self.tokens.realm, "service": SERVICE, "issuer": ISSUER,
            "rootcertbundle": self.tokens.crt}})
        self.tls_cert = make_cert(self.base, "tls")
        self.tls = self._start("tls", tls=self.tls_cert)

    def _start(self, name, **kw):
        r = RegistryServer(self.base, self.storage, name, **kw)
        self.started.append(r)
        return r

    def separate(self, name):
        """A registry with a storage of its own (empty at first)."""
        storage = os.path.join(self.base, name + "-storage")
        r = RegistryServer(self.base, storage, name)
        self.started.append(r)
        return r

    def blob_path(self, storage, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(storage, "docker", "registry", "v2", "blobs", "sha256", hexd[:2],
                            hexd, "data")

    def stop(self):
        for r in self.started:
            r.stop()
        if self.tokens is not None:
            self.tokens.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="session")
def registries_session():
    r = Registries()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def registries(registries_session):
    """The session's registries. Test modules import this fixture, and
    pytest makes an imported fixture anew for each module that imports it;
    this one is a cheap handle onto registries_session, which conftest.py
    imports, so that the registries and their images start once per session
    (each start was a docker-registry process per registry and a push of
    every test image: 5 to 20 s per module)."""
    return registries_session


def layer_dir(root, chain_id):
    return os.path.join(root, "image", "layers", chain_id.split(":", 1)[1], "diff")


def chain_ids(diff_ids):
    out = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out
