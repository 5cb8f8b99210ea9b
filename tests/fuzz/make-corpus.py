#!/usr/bin/python3
"""Write the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/.

Seeds are small, typical inputs (a crictl exec handshake, a CNI bridge result,
a Docker seccomp profile...) from which libFuzzer mutates; the regress-* ones
are inputs that found a bug, kept so the unit tier replays them. The files are
checked in; run this again after changing it (it rewrites only what it
names). Binary seeds (SPDY frames with zlib header blocks, WebSocket frames)
are built with the test clients' encoders."""
import base64
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from streamclient import SPDY_DICT  # noqa: E402

OUT = os.path.join(HERE, "corpus")
DIGEST = "sha256:" + "ab" * 32
DIGEST2 = "sha256:" + "cd" * 32


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, bytes):
        data = json.dumps(data, indent=1).encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- SPDY/3.1 ----

class Spdy:
    """Frames as a client writes them, one deflate stream per connection."""

    def __init__(self):
        self.comp = zlib.compressobj(zdict=SPDY_DICT)

    def block(self, headers):
        raw = struct.pack("!I", len(headers))
        for k, v in headers:
            k, v = k.encode(), v.encode()
            raw += struct.pack("!I", len(k)) + k + struct.pack("!I", len(v)) + v
        return self.comp.compress(raw) + self.comp.flush(zlib.Z_SYNC_FLUSH)

    @staticmethod
    def control(ftype, flags, payload):
        return struct.pack("!HHI", 0x8003, ftype, (flags << 24) | len(payload)) + payload

    def syn_stream(self, sid, headers, fin=False):
        payload = struct.pack("!IIH", sid, 0, 0) + self.block(headers)
        return self.control(1, 1 if fin else 0, payload)

    def headers(self, sid, headers):
        return self.control(8, 0, struct.pack("!I", sid) + self.block(headers))

    @staticmethod
    def data(sid, payload, fin=False):
        return struct.pack("!II", sid, ((1 if fin else 0) << 24) | len(payload)) + payload


def raw_block(headers):
    raw = struct.pack("!I", len(headers))
    for k, v in headers:
        raw += struct.pack("!I", len(k)) + k + struct.pack("!I", len(v)) + v
    return raw


def spdy_exec_session(tty=False):
    s = Spdy()
    out = s.syn_stream(1, [("streamtype", "error")])
    out += s.syn_stream(3, [("streamtype", "stdin")])
    out += s.syn_stream(5, [("streamtype", "stdout")])
    if tty:
        out += s.syn_stream(7, [("streamtype", "resize")])
        out += s.data(7, b'{"Width":80,"Height":24}')
    else:
        out += s.syn_stream(7, [("streamtype", "stderr")])
    out += s.data(3, b"echo hi\n") + s.data(3, b"", fin=True)
    out += Spdy.control(6, 0, struct.pack("!I", 1))  # PING
    out += Spdy.control(3, 0, struct.pack("!II", 5, 5))  # RST_STREAM
    out += Spdy.control(9, 0, struct.pack("!II", 3, 65536))  # WINDOW_UPDATE
    out += Spdy.control(4, 0, struct.pack("!I", 0))  # SETTINGS
    out += Spdy.control(7, 0, struct.pack("!II", 7, 0))  # GOAWAY
    return out


def spdy_portforward_session():
    s = Spdy()
    out = b""
    for i, port in enumerate((80, 8080)):
        sid = 1 + 4 * i
        out += s.syn_stream(sid, [("streamtype", "error"), ("port", str(port)),
                                  ("requestid", str(i))])
        out += s.syn_stream(sid + 2, [("streamtype", "data"), ("port", str(port)),
                                      ("requestid", str(i))])
        out += s.data(sid + 2, b"GET / HTTP/1.0\r\n\r\n", fin=True)
    # an old client: no requestID, the port pairs the streams
    out += s.syn_stream(9, [("streamtype", "error"), ("port", "443")])
    out += s.syn_stream(11, [("streamtype", "data"), ("port", "443")])
    return out


def spdy():
    t = "fuzz_spdy"
    put(t, "exec-streams", b"\0" + spdy_exec_session())
    put(t, "exec-tty", b"\0" + spdy_exec_session(tty=True))
    put(t, "portforward", b"\0" + spdy_portforward_session())
    s = Spdy()
    put(t, "headers-frame", b"\0" + s.syn_stream(1, [("streamtype", "data")]) +
        s.headers(1, [("a", "b"), ("c", "d\0e")]))
    put(t, "unknown-control", b"\0" + Spdy.control(0x55, 0, b"xyz"))
    put(t, "version-2", b"\0" + struct.pack("!HHI", 0x8002, 1, 0))
    put(t, "raw-block", b"\1" + raw_block([(b"streamtype", b"stdout"), (b"Port", b"80")]))
    put(t, "raw-block-empty", b"\1" + raw_block([]))
    put(t, "raw-block-truncated", b"\1" + raw_block([(b"k", b"v")])[:-3])


# ---- WebSocket ----

def ws_frame(opcode, data, fin=True, mask=b"\x01\x02\x03\x04"):
    n = len(data)
    head = bytes([(0x80 if fin else 0) | opcode])
    m = 0x80 if mask else 0
    if n < 126:
        head += bytes([m | n])
    elif n < 65536:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + data
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def ws():
    t = "fuzz_ws"
    put(t, "channels", b"\1" + ws_frame(2, b"\0echo hi\n") + ws_frame(2, b"\xff\0") +
        ws_frame(2, b'\4{"Width":80,"Height":24}'))
    put(t, "base64", b"\1" + ws_frame(1, b"0" + base64.b64encode(b"echo hi\n")) +
        ws_frame(1, b"4" + base64.b64encode(b'{"Width":1,"Height":2}')))
    put(t, "fragments", b"\1" + ws_frame(2, b"\0ab", fin=False) + ws_frame(0, b"cd", fin=False) +
        ws_frame(9, b"ping") + ws_frame(0, b"ef"))
    put(t, "long-16", b"\1" + ws_frame(2, b"\0" + b"x" * 300))
    put(t, "long-64", b"\0" + ws_frame(2, b"\0" + b"y" * 70000, mask=None)[:16])
    put(t, "close", b"\1" + ws_frame(10, b"") + ws_frame(8, struct.pack("!H", 1000)))
    put(t, "unmasked", b"\0" + ws_frame(2, b"\1out", mask=None))


# ---- HTTP request heads ----

def http_request(path, headers):
    return ("GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % h for h in headers) +
            "\r\n").encode()


SPDY_HEADERS = [("Host", "127.0.0.1:10010"), ("Connection", "Upgrade"),
                ("Upgrade", "SPDY/3.1"),
                ("X-Stream-Protocol-Version", "v4.channel.k8s.io"),
                ("X-Stream-Protocol-Version", "v3.channel.k8s.io, v2.channel.k8s.io"),
                ("User-Agent", "crictl")]
WS_HEADERS = [("Host", "127.0.0.1:10010"), ("Connection", "keep-alive, Upgrade"),
              ("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13"),
              ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
              ("Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.base64.channel.k8s.io")]
PF_HEADERS = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
              ("X-Stream-Protocol-Version", "portforward.k8s.io")]


def http():
    t = "fuzz_http"
    put(t, "spdy-exec", http_request("/exec/AbCd_-12", SPDY_HEADERS))
    put(t, "websocket", http_request("/attach/AbCd_-12?x=1", WS_HEADERS))
    put(t, "portforward", http_request("/portforward/AbCd_-12", PF_HEADERS))
    put(t, "lf-only", b"POST /exec/x HTTP/1.0\nUpgrade:SPDY/3.1\nConnection:\tupgrade\n\n")
    put(t, "not-http", b"GET / SPDY/3\r\n\r\n")


# ---- whole sessions ----

def session():
    t = "fuzz_stream_session"
    # selector: bits 0-1 kind (0 exec, 1 attach, 2 port-forward), 2 tty,
    # 3 stdin, 4 stdout, 5 stderr
    exec_sel, attach_sel, pf_sel = 0 | 8 | 16 | 32, 1 | 4 | 8 | 16, 2
    put(t, "spdy-exec", bytes([exec_sel]) + http_request("/exec/@@@@@@@@", SPDY_HEADERS) +
        spdy_exec_session())
    put(t, "spdy-attach-tty", bytes([attach_sel]) +
        http_request("/attach/@@@@@@@@", SPDY_HEADERS) + spdy_exec_session(tty=True))
    put(t, "spdy-portforward", bytes([pf_sel]) +
        http_request("/portforward/@@@@@@@@", PF_HEADERS) + spdy_portforward_session())
    put(t, "ws-exec", bytes([exec_sel]) + http_request("/exec/@@@@@@@@", WS_HEADERS) +
        ws_frame(2, b"\0echo hi\n") + ws_frame(2, b'\4{"Width":80,"Height":24}') +
        ws_frame(2, b"\xff\0") + ws_frame(9, b"") + ws_frame(8, b""))
    b64 = [h for h in WS_HEADERS if h[0] != "Sec-WebSocket-Protocol"]
    b64.append(("Sec-WebSocket-Protocol", "base64.channel.k8s.io"))
    put(t, "ws-base64", bytes([exec_sel]) + http_request("/exec/@@@@@@@@", b64) +
        ws_frame(1, b"0" + base64.b64encode(b"input")) +
        ws_frame(1, b"4" + base64.b64encode(b'{"Width":3,"Height":4}')))
    put(t, "bad-token", bytes([exec_sel]) + http_request("/exec/nosuchtk", SPDY_HEADERS))
    put(t, "no-protocol", bytes([exec_sel]) + http_request(
        "/exec/@@@@@@@@", [h for h in SPDY_HEADERS if h[0] != "X-Stream-Protocol-Version"]))
    put(t, "refused-protocol", bytes([exec_sel]) + http_request(
        "/exec/@@@@@@@@", [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                           ("X-Stream-Protocol-Version", "v9.channel.k8s.io")]))


# ---- images ----

def images():
    put("fuzz_image_ref", "short", "busybox")
    put("fuzz_image_ref", "tagged", "docker.io/library/busybox:1.36")
    put("fuzz_image_ref", "port-digest", "127.0.0.1:5000/a/b-c__d.e@" + DIGEST)
    put("fuzz_image_ref", "tag-and-digest", "registry.k8s.io/pause:3.10@" + DIGEST)
    put("fuzz_image_ref", "ipv6", "[::1]:5000/x/y:latest")
    put("fuzz_image_ref", "localhost", "localhost/x")
    put("fuzz_image_ref", "image-id", "ab" * 32)

    layer = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST2,
             "size": 1234}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": DIGEST, "size": 567},
                "layers": [layer, dict(layer, mediaType="application/vnd.docker.image.rootfs."
                                       "diff.tar.gzip")],
                "annotations": {"a": "b"}}
    put("fuzz_image_manifest", "oci-manifest", b"\0" + json.dumps(manifest).encode())
    docker = dict(manifest, mediaType="application/vnd.docker.distribution.manifest.v2+json")
    put("fuzz_image_manifest", "docker-manifest", b"\0" + json.dumps(docker).encode())
    bare = {k: v for k, v in manifest.items() if k != "mediaType"}
    put("fuzz_image_manifest", "no-media-type", b"\1" + json.dumps(bare).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST,
                  "size": 10, "platform": {"os": "linux", "architecture": "amd64"}},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST2,
                  "size": 11, "platform": {"os": "linux", "architecture": "arm64"}},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST2,
                  "size": 12, "platform": {"os": "linux", "architecture": "arm",
                                           "variant": "v7"}},
                 {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": DIGEST,
                  "size": 13, "platform": {"os": "unknown", "architecture": "unknown"},
                  "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}]}
    put("fuzz_image_manifest", "oci-index", b"\0" + json.dumps(index).encode())
    put("fuzz_image_manifest", "schema1", b"\5" + b'{"schemaVersion":1,"name":"x"}')

    config = {"architecture": "amd64", "os": "linux",
              "config": {"User": "1000:1000", "Env": ["PATH=/bin", "A=b"],
                         "Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"],
                         "WorkingDir": "/srv", "StopSignal": "SIGQUIT",
                         "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
                         "Labels": {"a": "b", "n": None}},
              "rootfs": {"type": "layers", "diff_ids": [DIGEST, DIGEST2]},
              "history": [{"created_by": "x"}]}
    put("fuzz_image_config", "config", json.dumps(config))
    put("fuzz_image_config", "minimal", '{"rootfs":{"diff_ids":[]}}')

    put("fuzz_www_auth", "bearer", 'Bearer realm="https://auth.docker.io/token",'
        'service="registry.docker.io",scope="repository:library/busybox:pull"')
    put("fuzz_www_auth", "basic", 'Basic realm="Registry Realm"')
    put("fuzz_www_auth", "unquoted", "bearer realm=http://127.0.0.1:5001/token,service=reg")
    put("fuzz_www_auth", "unterminated", 'Bearer realm="x,scope=')


def _tar(entries, fmt=None):
    """A tar of (name, type, data/linkname, pax headers) entries."""
    import io
    import tarfile
    buf = io.BytesIO()
    t = tarfile.open(fileobj=buf, mode="w", format=fmt or tarfile.PAX_FORMAT)
    for name, typ, val, pax in entries:
        ti = tarfile.TarInfo(name)
        ti.type, ti.mtime, ti.mode = typ, 1700000000, 0o755 if typ == tarfile.DIRTYPE else 0o644
        if pax:
            ti.pax_headers = pax
        data = None
        if typ in (tarfile.LNKTYPE, tarfile.SYMTYPE):
            ti.linkname = val
        elif typ == tarfile.REGTYPE:
            ti.size = len(val)
            data = io.BytesIO(val)
        t.addfile(ti, data)
    t.close()
    return buf.getvalue()


def layers():
    import gzip
    import subprocess
    import tarfile
    import tempfile
    R, D, L, S = tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE, tarfile.SYMTYPE
    tree = _tar([("./", D, None, None), ("etc/", D, None, None),
                 ("etc/hosts", R, b"hosts\n", None), ("etc/hosts2", L, "etc/hosts", None),
                 ("etc/link", S, "/nowhere", None), ("etc/.wh.gone", R, b"", None),
                 ("opq/.wh..wh..opq", R, b"", None), ("opq/kept", R, b"k", None),
                 ("tool2", L, "bin/tool", None), ("/abs", L, "/bin/tool", None)])
    put("fuzz_image_layer", "tree", tree)
    put("fuzz_image_layer", "tree-gzip", gzip.compress(tree, mtime=0))
    put("fuzz_image_layer", "tree-zstd", subprocess.run(
        ["zstd", "-q", "-c"], input=tree, check=True, stdout=subprocess.PIPE).stdout)
    # umoci's shape: an entry "/", the tar ending right after the data
    t = _tar([("/", D, None, None), ("srv/payload", R, b"payload\n", None)])
    put("fuzz_image_layer", "unpadded", t[:512 * 4 + 8])
    put("fuzz_image_layer", "cut-short", t[:512 * 4 + 3])
    cap = "\x01\x00\x00\x02\x00\x04" + "\x00" * 14
    put("fuzz_image_layer", "xattrs", _tar([
        ("d", D, None, {"SCHILY.xattr.trusted.overlay.opaque": "y"}),
        ("d/" + "n" * 150, R, b"long", {"SCHILY.xattr.security.capability": cap,
                                      "SCHILY.xattr.trusted.overlay.redirect": "/etc",
                                      "SCHILY.xattr.user.keep": "k"})]))
    put("fuzz_image_layer", "gnu-long", _tar([("g" * 120 + "/f", R, b"gnu", None),
                                              ("h" * 120, L, "g" * 120 + "/f", None)],
                                             tarfile.GNU_FORMAT))
    put("fuzz_image_layer", "escapes", _tar([
        ("a/../../outside/x", R, b"x", None), ("up", S, "../outside", None),
        ("up/y", R, b"y", None), ("h", L, "../lower/bin/tool", None)]))
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "sparse"), "wb") as f:
            f.write(b"head")
            f.seek(64 << 10)
            f.write(b"tail")
        os.utime(os.path.join(d, "sparse"), (1700000000, 1700000000))
        for fmt in ("gnu", "posix"):
            pax = ["--pax-option=delete=atime,delete=ctime"] if fmt == "posix" else []
            out = subprocess.run(
                ["tar", "-C", d, "--sparse", f"--format={fmt}", "--owner=0", "--group=0",
                 "--numeric-owner", *pax, "-cf", "-", "sparse"],
                check=True, stdout=subprocess.PIPE).stdout
            put("fuzz_image_layer", f"sparse-{fmt}", out)


# ---- CNI ----

def cni():
    put("fuzz_cni_result", "bridge-1.0", {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "husk0", "mac": "aa:bb:cc:dd:ee:01"},
                       {"name": "veth1", "mac": "aa:bb:cc:dd:ee:02"},
                       {"name": "eth0", "mac": "aa:bb:cc:dd:ee:03",
                        "sandbox": "/run/husk/pods/p/ns/net"}],
        "ips": [{"address": "10.88.0.5/16", "gateway": "10.88.0.1", "interface": 2},
                {"address": "fd00::5/64", "interface": 2}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
        "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local",
                "search": ["svc.cluster.local"], "options": ["ndots:5"]}})
    put("fuzz_cni_result", "result-1.1", {
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "eth0", "sandbox": "/x", "mtu": 1500, "socketPath": "/s",
                        "pciID": "0000:00:01.0"}],
        "ips": [{"address": "10.0.0.2/24", "interface": 0}],
        "routes": [{"dst": "10.0.0.0/8", "gw": "10.0.0.1", "mtu": 1400, "advmss": 1360,
                    "priority": 10, "table": 100, "scope": 0}]})
    put("fuzz_cni_result", "result-0.4", {
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "eth0", "sandbox": "/x"}],
        "ips": [{"version": "4", "address": "10.0.0.2/24", "gateway": "10.0.0.1",
                 "interface": 0}]})
    put("fuzz_cni_result", "result-0.2", {
        "cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/16", "gateway": "10.1.0.1",
                                       "routes": [{"dst": "0.0.0.0/0"}]},
        "ip6": {"ip": "fd00::2/64"}, "dns": {}})
    put("fuzz_cni_result", "error", {"cniVersion": "1.0.0", "code": 11, "msg": "try again",
                                     "details": "address pool busy"})

    with open(os.path.join(HERE, "..", "..", "deploy", "cni", "10-husk-bridge.conflist"),
              "rb") as f:
        put("fuzz_cni_config", "bridge.conflist", f.read())
    put("fuzz_cni_config", "single.conf", {
        "cniVersion": "0.3.1", "name": "net", "type": "ptp", "ipMasq": True,
        "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"}})
    put("fuzz_cni_config", "versions-1.1.conflist", {
        "cniVersion": "1.0.0", "cniVersions": ["0.4.0", "1.1.0", "9.9.9"], "name": "n-1",
        "disableCheck": True, "disableGC": False,
        "plugins": [{"type": "bridge"}, {"type": "bandwidth",
                                         "capabilities": {"bandwidth": True}}]})

    put("fuzz_cni_args", "all", "10M\n1.5Gi\nTCP 8080 80 127.0.0.1\n10.96.0.10\n"
        "svc.cluster.local\nndots:5\n10.244.1.0/24\nweb-0\n")
    put("fuzz_cni_args", "quantities", "1e6\n500k\nudp 53 5353\n")
    put("fuzz_cni_args", "bad", "10Q\n-1\nICMP 1 2\n\n\n\n\nbad;name=x\n")


# ---- runtime ----

def runtime():
    put("fuzz_seccomp", "docker-style", b"\0" + json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "archMap": [{"architecture": "SCMP_ARCH_X86_64",
                     "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                    {"architecture": "SCMP_ARCH_AARCH64",
                     "subArchitectures": ["SCMP_ARCH_ARM"]}],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "futex", "no_such_call"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "4.8"}}]}).encode())
    put("fuzz_seccomp", "oci-style", b"\1" + json.dumps({
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                     {"name": "kill", "action": "SCMP_ACT_KILL_PROCESS"},
                     {"names": ["ptrace"], "action": "SCMP_ACT_LOG"}]}).encode())
    put("fuzz_seccomp", "profile-path", b"\0localhost//var/lib/kubelet/seccomp/p.json")

    spec = {
        "version": 1, "id": "c1",
        "root": {"path": "/var/lib/husk/image/containers/c1/merged", "readonly": True,
                 "propagation": "rslave"},
        "process": {"args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin", "A=b"],
                    "cwd": "/srv",
                    "user": {"uid": 1000, "gid": 1000, "additional_gids": [10, 20]},
                    "tty": True, "stdin": True, "stdin_once": False, "no_new_privs": True,
                    "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
                                     "effective": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"],
                                     "inheritable": [], "ambient": []},
                    "seccomp": {"mode": "localhost", "profile": "/p.json",
                                "filter": "/run/husk/containers/c1/seccomp.bpf"},
                    "apparmor_profile": "my-profile",
                    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096},
                                {"type": "core", "soft": 0, "hard": 18446744073709551615}],
                    "oom_score_adj": -999},
        "hostname": "web",
        "namespaces": {"net": {"path": "/run/husk/pods/p/ns/net"}, "pid": "new",
                       "ipc": "host", "user": "new"},
        "uid_mappings": [{"container_id": 0, "host_id": 100000, "size": 65536}],
        "gid_mappings": [{"container_id": 0, "host_id": 100000, "size": 65536}],
        "mounts": [{"destination": "/data", "type": "bind", "source": "/srv/d",
                    "options": ["rbind", "ro", "nosuid", "rslave"]},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                    "options": ["size=64m", "mode=1777", "noexec"]}],
        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                     "file_mode": 438, "uid": 0, "gid": 0, "host_path": "/dev/fuse"}],
        "masked_paths": ["/proc/kcore"], "readonly_paths": [],
        "sysctls": {"net.ipv4.ping_group_range": "0 0"},
        "cgroup_procs": ["/sys/fs/cgroup/memory/husk/p/c1/cgroup.procs"],
        "privileged": False,
        "pod_files": {"shm": "/run/husk/pods/p/shm", "hosts": "/run/husk/pods/p/hosts"},
        "shim": {"state_dir": "/run/husk/containers/c1", "log_path": "/var/log/pods/x/0.log",
                 "oom_file": "/sys/fs/cgroup/memory/husk/p/c1/memory.oom_control"}}
    put("fuzz_spec", "full.json", spec)
    put("fuzz_spec", "minimal.json", {"root": {"path": "/r"}, "process": {"args": ["/pause"]}})

    pod = {"version": 1, "id": "p1", "metadata": {"name": "web", "uid": "u1",
                                                  "namespace": "default", "attempt": 0},
           "state": "READY", "created_at": 1700000000000000000,
           "labels": {"app": "web"}, "annotations": {"a": "b"}, "runtime_handler": "",
           "hostname": "web", "log_directory": "/var/log/pods/default_web_u1",
           "cgroup_parent": "/kubepods",
           "sandbox": {"id": "p1", "dir": "/run/husk/pods/p1",
                       "net_ns": "/run/husk/pods/p1/ns/net", "shm": "/run/husk/pods/p1/shm",
                       "hostname": "web", "network": "pod", "ipc": "pod", "uts": "pod",
                       "pid": "container", "init_pid": 0, "init_start_time": 0},
           "ips": ["10.88.0.5"], "extra": {"cgroup": "/husk/p1"}}
    ctr = {"version": 1, "id": "c1", "pod_id": "p1",
           "metadata": {"name": "app", "attempt": 1},
           "image": {"image": "busybox", "id": DIGEST, "ref": "docker.io/library/busybox@" +
                     DIGEST},
           "state": "EXITED", "created_at": 1700000000000000001, "started_at": 2,
           "finished_at": 3, "exit_code": 137, "reason": "OOMKilled", "message": "",
           "pid": 0, "pid_start_time": 0, "labels": {}, "annotations": {},
           "log_path": "/var/log/pods/x/app/1.log", "rootfs": "/r",
           "mounts": [{"container_path": "/data", "host_path": "/srv", "readonly": True,
                       "selinux_relabel": False, "recursive_read_only": False,
                       "propagation": 1}],
           "spec": {"process": {"args": ["sh"]}}, "extra": None}
    put("fuzz_state", "pod-and-container",
        b"\3" + json.dumps(pod).encode() + b"\n--\n\2" + json.dumps(ctr).encode())
    put("fuzz_state", "orphan-and-misnamed",
        b"\2" + json.dumps(ctr).encode() + b"\n--\n\1" + json.dumps(pod).encode() +
        b"\n--\n\3{\"version\":2}")
    dup = dict(pod, id="p2")
    put("fuzz_state", "name-taken", b"\3" + json.dumps(pod).encode() + b"\n--\n\3" +
        json.dumps(dup).encode())

    put("fuzz_config", "full.json", {
        "socket": "/run/husk/husk.sock", "root": "/var/lib/husk", "state": "/run/husk",
        "log_level": "debug", "cgroup_driver": "cgroupfs", "shutdown_timeout": 5,
        "max_workers": 16, "sandbox_image": "registry.k8s.io/pause:3.10",
        "pinned_images": ["busybox"], "max_concurrent_downloads": 2,
        "registries": {"127.0.0.1:5000": {"insecure": True, "mirrors": ["127.0.0.1:5001"],
                                          "location": "127.0.0.1:5002"}},
        "cni_conf_dir": "/etc/cni/net.d", "cni_bin_dirs": ["/usr/lib/cni"],
        "cni_plugin_timeout": 30, "pids_limit": 1024, "shim_path": "",
        "metrics_address": "127.0.0.1:9337",
        "stream_address": "127.0.0.1", "stream_port": 10010})
    put("fuzz_config", "empty.json", "{}")
    put("fuzz_config", "metrics-ipv6.json", '{"metrics_address": "[::1]:9337"}')
    put("fuzz_config", "bad-metrics.json", '{"metrics_address": "[::1:99999"}')
    put("fuzz_config", "bad-key.json", '{"socket": "relative"}')


def json_seeds():
    t = "fuzz_json"
    put(t, "object.json", '{"a": [1, 2.5, "x", null, true, {"b": -3}]}\n')
    put(t, "escapes.json", '["\\u00e9\\n\\"", "\\ud83d\\ude00", 1e400, -0, 9223372036854775808]')
    put(t, "comments.json", '/* c */ {"a": 1} // d\n')


# ---- inputs that found bugs ----

def regressions():
    # common/json.c: a '"' in a comment hid the brackets after it from the
    # depth bound (a stack overflow in yajl_tree_free at ~10^5 levels).
    put("fuzz_json", "regress-comment-hides-depth", '/*"*/' + "[" * 100 + "]" * 100)
    # runtime/launcher/spec.c: an option with a comma read as data, written
    # back as two options, read again as a flag.
    put("fuzz_spec", "regress-comma-option", {
        "root": {"path": "/r"}, "process": {"args": ["sh"]},
        "mounts": [{"destination": "/d", "type": "bind", "source": "/s",
                    "options": ["r,bind", "ro"]}]})
    # runtime/state/store.c: records that add refuses were loaded, then could
    # not be saved (an id that is no id, a mount without a path).
    pod = {"version": 1, "id": "bad id", "metadata": {"name": "b"}}
    ctr = {"version": 1, "id": "c", "pod_id": "bad id", "metadata": {"name": "c"},
           "mounts": [{"host_path": "/x", "propagation": 9}]}
    put("fuzz_state", "regress-unsaveable", b"\3" + json.dumps(pod).encode() + b"\n--\n\3" +
        json.dumps(ctr).encode())
    # server/stream.c: an empty first frame on the resize stream gave
    # memchr a NULL buffer.
    s = Spdy()
    put("fuzz_stream_session", "regress-empty-resize-frame",
        bytes([0 | 4 | 8 | 16]) + http_request("/exec/@@@@@@@@", SPDY_HEADERS) +
        s.syn_stream(1, [("streamtype", "resize")]) + s.data(1, b"") +
        s.data(1, b'{"Width":1,"Height":1}'))
    # server/stream.c: atoi took port "4294967376" for 80.
    s = Spdy()
    put("fuzz_stream_session", "regress-port-overflow", bytes([2]) +
        http_request("/portforward/@@@@@@@@", PF_HEADERS) +
        s.syn_stream(1, [("streamtype", "error"), ("port", "4294967376")]) +
        s.syn_stream(3, [("streamtype", "data"), ("port", "4294967376")]))
    # libseccomp 2.5.4 leaks on these rules (suppressed in fuzz_seccomp.c).
    put("fuzz_seccomp", "regress-libseccomp-leak", b"\0" + json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 5, "op": "SCMP_CMP_EQ"}, {"index": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 211, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 5, "op": "SCMP_CMP_EQ"}]}]}).encode())


def pb_ld(field, data):
    """A protobuf length-delimited field."""
    n, v = len(data), b""
    while True:
        b, n = n & 0x7F, n >> 7
        v += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return bytes([(field << 3) | 2]) + v + data


def requests():
    # A selector byte (which request type, see fuzz_request.c), then wire bytes.
    meta = pb_ld(1, b"pod") + pb_ld(2, b"uid-1") + pb_ld(3, b"ns")
    t = "fuzz_request"
    put(t, "run-pod", b"\0" + pb_ld(1, pb_ld(1, meta) + pb_ld(6, pb_ld(1, b"k") + pb_ld(2, b"v"))))
    put(t, "run-pod-nul-name", b"\0" + pb_ld(1, pb_ld(1, pb_ld(1, b"a\0b"))))
    put(t, "create-container", b"\1" + pb_ld(1, b"0123456789abcdef") +
        pb_ld(2, pb_ld(1, pb_ld(1, b"c")) + pb_ld(2, pb_ld(1, b"busybox"))))
    put(t, "status-long-id", b"\2" + pb_ld(1, b"x" * 300))
    put(t, "status-cut", b"\2\x0a\x09a")
    put(t, "pull", b"\3" + pb_ld(1, pb_ld(1, b"docker.io/library/busybox:latest")) +
        pb_ld(2, pb_ld(1, b"user")))
    put(t, "exec-varints", b"\4" + pb_ld(1, b"id") + pb_ld(2, b"sh") + b"\x18\x01\x20\x01")


def main():
    spdy()
    ws()
    http()
    session()
    images()
    layers()
    cni()
    runtime()
    json_seeds()
    regressions()
    requests()


if __name__ == "__main__":
    main()
