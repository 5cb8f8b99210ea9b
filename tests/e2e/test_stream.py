"""Streaming: Exec, Attach and PortForward through husk's stream server with
the test clients of streamclient.py (SPDY/3.1 and WebSocket), on real
containers: once per RuntimeClass handler, husk's launcher and the OCI
runtimes (runc's exec run as `runc exec --process`), see conftest.py."""
import json
import os
import re
import threading
import time

import grpc
import pytest

from conftest import pb
from pods import busybox, expect_error, run_ctr, run_pod, status, wait_exited  # noqa: F401
from registry import registries  # noqa: F401
from streamclient import (HandshakeError, SpdyClient, WsClient, portforward_pair,
                          remotecommand_streams, spdy_exec)

# The tests that make containers run once per RuntimeClass handler.
pytestmark = pytest.mark.per_handler

SLEEP = ["sleep", "1000"]
URL = re.compile(r"^http://127\.0\.0\.1:(\d+)/(exec|attach|portforward)/[A-Za-z0-9_-]{8}$")


@pytest.fixture
def ctr(daemon, busybox, tmp_path):  # noqa: F811
    pod, cfg = run_pod(daemon, tmp_path)
    c = run_ctr(daemon, pod, cfg, busybox, SLEEP)
    return pod, c


def exec_url(d, c, cmd, **kw):
    args = {"stdout": True, "stderr": not kw.get("tty", False)}
    args.update(kw)
    url = d.rt.Exec(container_id=c, cmd=cmd, **args).url
    assert URL.match(url), url
    return url


def ps(d, c):
    return d.rt.ExecSync(container_id=c, cmd=["ps", "-o", "pid,args"], timeout=10).stdout.decode()


def test_exec_echo_and_exit_codes(daemon, ctr):
    d, (_, c) = daemon, ctr
    r = spdy_exec(exec_url(d, c, ["echo", "hello", "world"]))
    assert r.stdout == b"hello world\n" and r.stderr == b""
    assert r.status == {"metadata": {}, "status": "Success"}
    r = spdy_exec(exec_url(d, c, ["sh", "-c", "echo out; echo err >&2; exit 3"]))
    assert (r.stdout, r.stderr) == (b"out\n", b"err\n")
    st = r.status
    assert st["status"] == "Failure" and st["reason"] == "NonZeroExitCode", st
    assert st["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert "non-zero exit code" in st["message"]
    assert r.exit_code() == 3
    # Older protocols: v3 has no JSON status, the error stream carries text.
    r = spdy_exec(exec_url(d, c, ["sh", "-c", "echo v3; exit 2"]), protocol="v3.channel.k8s.io")
    assert r.stdout == b"v3\n" and b"exit code 2" in r.error
    r = spdy_exec(exec_url(d, c, ["true"]), protocol="v2.channel.k8s.io")
    assert r.error == b""
    # A command that cannot start: an InternalError status, not a hang.
    r = spdy_exec(exec_url(d, c, ["/bin/nope"]))
    assert r.status["status"] == "Failure" and "nope" in r.status["message"], r.status
    # No zombie or process left behind by any of them.
    assert "echo" not in ps(d, c) and "nope" not in ps(d, c)


def test_exec_stdin_piped(daemon, ctr):
    d, (_, c) = daemon, ctr
    data = os.urandom(300_000)
    r = spdy_exec(exec_url(d, c, ["cat"], stdin=True), stdin=data)
    assert r.stdout == data
    assert r.exit_code() == 0
    r = spdy_exec(exec_url(d, c, ["wc", "-l"], stdin=True, stdout=True), stdin=b"a\nb\nc\n")
    assert r.stdout.strip() == b"3"


def test_exec_tty_resize(daemon, ctr):
    d, (_, c) = daemon, ctr
    url = exec_url(d, c, ["sh"], tty=True, stdin=True, stderr=False)
    cl = SpdyClient(url)
    try:
        ids = remotecommand_streams(cl, True, True, False, True)
        assert "resize" in ids and "stderr" not in ids
        cl.send(ids["resize"], json.dumps({"Width": 123, "Height": 45}).encode())
        cl.send(ids["stdin"], b"stty size; tty; exit 7\n")
        cl.wait(lambda: cl.streams[ids["error"]].fin, 30)
        out = bytes(cl.streams[ids["stdout"]].data)
        assert b"45 123" in out, out
        assert b"/dev/pts/" in out, out
        st = json.loads(bytes(cl.streams[ids["error"]].data))
        assert st["details"]["causes"][0]["message"] == "7"
    finally:
        cl.close()
    # A second resize while running, through an interactive read.
    url = exec_url(d, c, ["sh", "-c", "read x; stty size"], tty=True, stdin=True, stderr=False)
    cl = SpdyClient(url)
    try:
        ids = remotecommand_streams(cl, True, True, False, True)
        cl.send(ids["resize"], json.dumps({"Width": 80, "Height": 24}).encode())
        cl.send(ids["resize"], json.dumps({"Width": 200, "Height": 50}).encode())
        time.sleep(0.2)
        cl.send(ids["stdin"], b"go\n")
        cl.wait(lambda: cl.streams[ids["error"]].fin, 30)
        assert b"50 200" in bytes(cl.streams[ids["stdout"]].data)
    finally:
        cl.close()


def test_exec_tty_resize_before_start(daemon, ctr):
    """A client that sends its size with its streams, before the server has
    started the process (kubectl does not wait for the replies), still gets
    a terminal of that size: the size goes with the start (for an OCI
    runtime in the process's consoleSize), not dropped. Three rounds, as the
    start can come before or after the size is read."""
    d, (_, c) = daemon, ctr
    for attempt in range(3):
        url = exec_url(d, c, ["sh"], tty=True, stdin=True, stderr=False)
        cl = SpdyClient(url)
        try:
            ids = {k: cl.open_stream({"streamType": k})
                   for k in ("error", "stdin", "stdout", "resize")}
            cl.send(ids["resize"], json.dumps({"Width": 111, "Height": 33}).encode())
            cl.send(ids["stdin"], b"stty size; exit 0\n")
            cl.wait(lambda: cl.streams[ids["error"]].fin, 30)
            out = bytes(cl.streams[ids["stdout"]].data)
            assert b"33 111" in out, (attempt, out)
        finally:
            cl.close()


def test_exec_tty_resize_then_input(daemon, ctr):
    """A size sent after the start, then input at once: the input must see
    the size. runc's exec relays between huskd's pty and its own in the
    container and passes a size on from its SIGWINCH handler, behind input
    its relay may already have passed (3 of 200 rounds failed); husk sizes
    the container's terminal itself before it writes later input. 25
    rounds, as the loss is a race."""
    d, (_, c) = daemon, ctr
    bad = []
    for attempt in range(25):
        url = exec_url(d, c, ["sh"], tty=True, stdin=True, stderr=False)
        cl = SpdyClient(url)
        try:
            ids = remotecommand_streams(cl, True, True, False, True)
            cl.send(ids["resize"], json.dumps({"Width": 99, "Height": 21}).encode())
            cl.send(ids["stdin"], b"stty size; exit 0\n")
            cl.wait(lambda: cl.streams[ids["error"]].fin, 30)
            out = bytes(cl.streams[ids["stdout"]].data)
            if b"21 99" not in out:
                bad.append((attempt, out))
        finally:
            cl.close()
    assert not bad, bad


def test_exec_websocket(daemon, ctr):
    d, (_, c) = daemon, ctr
    # v5 (crictl --transport websocket): stdin closed with the close message.
    url = exec_url(d, c, ["sh", "-c", "cat; echo done >&2; exit 4"], stdin=True)
    ws = WsClient(url, ("v5.channel.k8s.io", "v4.channel.k8s.io"))
    assert ws.protocol == "v5.channel.k8s.io"
    ws.send_channel(0, b"over websocket\n")
    ws.ping(b"x")
    ws.close_channel(0)
    ws.wait(lambda: ws.closed or ws.close_frame, 30)
    assert ws.get(1) == b"over websocket\n" and ws.get(2) == b"done\n"
    st = json.loads(ws.get(3))
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"][0]["message"] == "4"
    assert ws.pongs == [b"x"]
    ws.close()
    # v4 and the base64 protocol.
    ws = WsClient(exec_url(d, c, ["echo", "b64 works"]), ("base64.channel.k8s.io",))
    assert ws.b64
    ws.wait(lambda: ws.closed or ws.close_frame, 30)
    assert ws.get(1) == b"b64 works\n" and ws.get(3) == b""
    ws.close()
    ws = WsClient(exec_url(d, c, ["sh", "-c", "stty size"], tty=True, stdin=True, stderr=False),
                  ("v4.channel.k8s.io",))
    ws.send_channel(4, json.dumps({"Width": 99, "Height": 33}).encode())
    ws.wait(lambda: ws.closed or ws.close_frame, 30)
    assert json.loads(ws.get(3))["status"] == "Success"
    ws.close()


def test_attach_echoes_stdin(daemon, busybox, tmp_path):  # noqa: F811
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", 'while read l; do echo "got $l"; done'],
                stdin=True, log_path="echo.log")
    for round_ in range(2):  # attach, detach, attach again
        url = d.rt.Attach(container_id=c, stdin=True, stdout=True, stderr=True).url
        assert URL.match(url) and "/attach/" in url
        cl = SpdyClient(url)
        ids = remotecommand_streams(cl, True, True, True, False)
        cl.send(ids["stdin"], f"hello {round_}\n".encode())
        cl.wait(lambda: f"got hello {round_}".encode() in cl.streams[ids["stdout"]].data, 15)
        cl.close()
    # Two at once both see the output.
    a, b = (SpdyClient(d.rt.Attach(container_id=c, stdin=True, stdout=True, stderr=True).url)
            for _ in range(2))
    ia = remotecommand_streams(a, True, True, True, False)
    ib = remotecommand_streams(b, True, True, True, False)
    time.sleep(0.2)
    a.send(ia["stdin"], b"both\n")
    for cl, ids in ((a, ia), (b, ib)):
        cl.wait(lambda: b"got both" in cl.streams[ids["stdout"]].data, 15)
    a.close()
    b.close()
    time.sleep(0.3)
    assert status(d, c).status.state == pb.CONTAINER_RUNNING
    log = open(os.path.join(cfg["log_directory"], "echo.log")).read()
    for line in ("got hello 0", "got hello 1", "got both"):
        assert f"stdout F {line}" in log
    # The container ends: an attached client gets the end and a Success.
    url = d.rt.Attach(container_id=c, stdin=True, stdout=True, stderr=False).url
    cl = SpdyClient(url)
    ids = remotecommand_streams(cl, True, True, False, False)
    d.rt.StopContainer(container_id=c, timeout=5)
    cl.wait(lambda: cl.streams[ids["error"]].fin or cl.closed, 20)
    assert json.loads(bytes(cl.streams[ids["error"]].data))["status"] == "Success"
    cl.close()
    expect_error(grpc.StatusCode.FAILED_PRECONDITION, d.rt.Attach, container_id=c, stdout=True)


def test_attach_tty_websocket(daemon, busybox, tmp_path):  # noqa: F811
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh"], stdin=True, tty=True)
    ws = WsClient(d.rt.Attach(container_id=c, stdin=True, stdout=True, tty=True).url,
                  ("v4.channel.k8s.io",))
    ws.send_channel(4, json.dumps({"Width": 111, "Height": 22}).encode())
    time.sleep(0.2)
    ws.send_channel(0, b"stty size\n")
    ws.wait(lambda: b"22 111" in ws.get(1), 15)
    ws.close()
    assert status(d, c).status.state == pb.CONTAINER_RUNNING


HTTPD = ("mkdir -p /www && echo hello-from-httpd > /www/index.html && "
         "exec httpd -f -p 8080 -h /www")


def http_get_over(c, port, rid):
    err, data = portforward_pair(c, port, rid)
    c.send(data, b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n", fin=True)
    c.wait(lambda: c.streams[data].fin or c.streams[data].reset or c.closed, 20)
    return bytes(c.streams[data].data), bytes(c.streams[err].data)


def test_port_forward_httpd(daemon, busybox, tmp_path):  # noqa: F811
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", HTTPD])
    url = d.rt.PortForward(pod_sandbox_id=pod, port=[8080]).url
    assert URL.match(url) and "/portforward/" in url
    cl = SpdyClient(url, ("portforward.k8s.io",))
    assert cl.protocol == "portforward.k8s.io"
    try:
        body = b""
        for attempt in range(50):  # until httpd listens
            body, err = http_get_over(cl, 8080, attempt)
            if b"hello-from-httpd" in body:
                break
            time.sleep(0.1)
        assert b"200 OK" in body and b"hello-from-httpd" in body, (body, err)
        # Several connections over the one session, in parallel.
        out = {}
        ths = [threading.Thread(target=lambda i=i: out.__setitem__(i, http_get_over(cl, 8080, 100 + i)))
               for i in range(5)]
        [t.start() for t in ths]
        [t.join() for t in ths]
        assert all(b"hello-from-httpd" in out[i][0] for i in range(5))
        # Nothing listens on 9999: the error stream says so, the pod lives on.
        body, err = http_get_over(cl, 9999, 999)
        assert body == b"" and b"9999" in err and b"refused" in err.lower(), err
        body, _ = http_get_over(cl, 8080, 1000)
        assert b"hello-from-httpd" in body
        # A port beyond 16 bits is refused, not cut down to one (this is
        # 2^32 + 8080, which atoi made 8080).
        big = cl.open_stream({"streamType": "error", "port": "4294975376", "requestID": "big"})
        cl.wait(lambda: cl.streams[big].reset or cl.streams[big].replied, 10)
        assert cl.streams[big].reset and not cl.streams[big].replied
    finally:
        cl.close()
    assert status(d, c).status.state == pb.CONTAINER_RUNNING
    assert d.rt.PodSandboxStatus(pod_sandbox_id=pod).status.state == pb.SANDBOX_READY


def test_parallel_execs(daemon, ctr):
    d, (_, c) = daemon, ctr
    n = 50
    results, errors = {}, []

    def one(i):
        try:
            url = exec_url(d, c, ["sh", "-c", f"echo session-{i}; exit {i % 5}"])
            results[i] = spdy_exec(url)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    t0 = time.time()
    ths = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    took = time.time() - t0
    print(f"\n{n} parallel exec sessions: {took:.2f}s")
    assert not errors, errors
    for i in range(n):
        assert results[i].stdout == f"session-{i}\n".encode()
        assert results[i].exit_code() == i % 5
    assert "session-" not in ps(d, c)


def huskd_counts(d):
    pid = d.proc.pid
    return len(os.listdir(f"/proc/{pid}/fd")), len(os.listdir(f"/proc/{pid}/task"))


def settle(d, want_fds, want_threads, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        fds, threads = huskd_counts(d)
        if fds <= want_fds and threads <= want_threads:
            return fds, threads
        time.sleep(0.1)
    return huskd_counts(d)


KILLED_CLIENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from streamclient import SpdyClient, WsClient, portforward_pair, remotecommand_streams
mode, url = sys.argv[2], sys.argv[3]
if mode == "ws":
    cl = WsClient(url)
    cl.wait(lambda: b"started" in cl.get(1), 15)
elif mode == "portforward":
    cl = SpdyClient(url, ("portforward.k8s.io",))
    portforward_pair(cl, 8080, 1)
elif mode == "attach":
    cl = SpdyClient(url)
    remotecommand_streams(cl, True, True, True, False)
else:
    cl = SpdyClient(url)
    ids = remotecommand_streams(cl, True, True, mode != "tty", mode == "tty")
    cl.wait(lambda: b"started" in cl.streams[ids["stdout"]].data, 15)
print("ready", flush=True)
time.sleep(1000)
"""


def run_killed_client(mode, url):
    """A client process that sets up a session and is then SIGKILLed."""
    import subprocess
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    p = subprocess.Popen([sys.executable, "-c", KILLED_CLIENT, here, mode, url],
                         stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline().strip() == b"ready"
    finally:
        p.kill()
        p.wait()


def test_client_killed_midstream(daemon, busybox, ctr, tmp_path):  # noqa: F811
    d, (pod, c) = daemon, ctr
    attached = run_ctr(d, pod, {}, busybox, ["cat"], stdin=True)
    # Warm up the gRPC worker pool with the same calls, then measure.
    spdy_exec(exec_url(d, c, ["true"]))
    time.sleep(0.5)
    fds0, threads0 = huskd_counts(d)
    for mode in ("spdy", "ws", "tty"):
        url = exec_url(d, c, ["sh", "-c", "echo started; exec sleep 4242"], stdin=True,
                       tty=(mode == "tty"), stderr=(mode != "tty"))
        run_killed_client(mode, url)
        deadline = time.time() + 10
        while "sleep 4242" in ps(d, c) and time.time() < deadline:
            time.sleep(0.1)
        assert "sleep 4242" not in ps(d, c), (mode, ps(d, c))
    # Port forward and attach sessions vanish too; the container lives on.
    run_killed_client("portforward", d.rt.PortForward(pod_sandbox_id=pod, port=[8080]).url)
    run_killed_client("attach", d.rt.Attach(container_id=attached, stdin=True, stdout=True,
                                            stderr=True).url)
    fds, threads = settle(d, fds0, threads0)
    assert fds <= fds0, (fds, fds0)
    assert threads <= threads0, (threads, threads0)
    assert status(d, attached).status.state == pb.CONTAINER_RUNNING
    # No zombies of huskd's own.
    kids = []
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            st = open(f"/proc/{p}/stat").read().rsplit(") ", 1)[1].split()
        except OSError:
            continue
        if st[1] == str(d.proc.pid):
            kids.append((p, st[0]))
    assert [k for k in kids if k[1] == "Z"] == []


def test_tokens_single_use_unknown_and_expired(daemon_factory, busybox, tmp_path,  # noqa: F811
                                               monkeypatch):
    monkeypatch.setenv("HUSK_STREAM_TOKEN_TTL_MS", "700")
    d = daemon_factory()
    d.img.PullImage(image={"image": busybox})
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    url = exec_url(d, c, ["true"])
    assert spdy_exec(url).exit_code() == 0
    with pytest.raises(HandshakeError) as e:
        spdy_exec(url)  # spent
    assert e.value.status == 404
    base = url.rsplit("/", 2)[0]
    with pytest.raises(HandshakeError) as e:
        spdy_exec(base + "/exec/AAAAAAAA")
    assert e.value.status == 404
    url = exec_url(d, c, ["true"])
    time.sleep(1.0)
    with pytest.raises(HandshakeError) as e:
        spdy_exec(url)  # expired
    assert e.value.status == 404
    # A token is good only for its own kind of session.
    url = exec_url(d, c, ["true"])
    with pytest.raises(HandshakeError) as e:
        spdy_exec(url.replace("/exec/", "/attach/"))
    assert e.value.status == 404


def test_errors_and_bad_upgrades(daemon, ctr, busybox, tmp_path):  # noqa: F811
    d, (pod, c) = daemon, ctr
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, d.rt.Exec, container_id=c, cmd=["true"],
                 tty=True, stdout=True, stderr=True)
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, d.rt.Exec, container_id=c, cmd=["true"])
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, d.rt.Exec, container_id=c, cmd=[],
                 stdout=True)
    expect_error(grpc.StatusCode.NOT_FOUND, d.rt.Exec, container_id="nope", cmd=["true"],
                 stdout=True)
    expect_error(grpc.StatusCode.NOT_FOUND, d.rt.PortForward, pod_sandbox_id="nope")
    expect_error(grpc.StatusCode.INVALID_ARGUMENT, d.rt.PortForward, pod_sandbox_id=pod,
                 port=[70000])
    stopped = run_ctr(d, pod, {}, busybox, ["true"])
    wait_exited(d, stopped)
    details = expect_error(grpc.StatusCode.FAILED_PRECONDITION, d.rt.Exec,
                           container_id=stopped, cmd=["true"], stdout=True)
    assert "not RUNNING" in details
    expect_error(grpc.StatusCode.FAILED_PRECONDITION, d.rt.Attach, container_id=stopped,
                 stdout=True)
    # Protocol negotiation: 403 naming what the server accepts.
    with pytest.raises(HandshakeError) as e:
        SpdyClient(exec_url(d, c, ["true"]), ("v9.channel.k8s.io",))
    assert e.value.status == 403
    assert "v4.channel.k8s.io" in e.value.headers["x-accepted-stream-protocol-versions"]
    # No upgrade at all: 400 with the reason.
    import urllib.request
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(exec_url(d, c, ["true"]), timeout=10)
    assert e.value.code == 400 and b"upgrade" in e.value.read()
    # The client never opens its streams: the session gives up (tested
    # with a short client wait here: the server's 30 s is too long).
    cl = SpdyClient(exec_url(d, c, ["sleep", "1"]))
    cl.open_stream({"streamType": "error"})
    time.sleep(0.3)
    cl.ping(7)
    cl.wait(lambda: 7 in cl.pings, 10)
    cl.close()


GOSPDY_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gospdy", "main.go")
GOPATH = "/usr/share/gocode"


@pytest.fixture(scope="session")
def gospdy(tmp_path_factory):
    import shutil
    import subprocess
    if not shutil.which("go") or not os.path.isdir(f"{GOPATH}/src/github.com/moby/spdystream"):
        pytest.skip("needs golang-go and golang-github-docker-spdystream-dev")
    out = tmp_path_factory.mktemp("gospdy")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOCACHE=str(out / "cache"),
               GOFLAGS="")
    subprocess.run(["go", "build", "-o", str(out / "gospdy"), GOSPDY_SRC], env=env, check=True,
                   timeout=300)
    return str(out / "gospdy")


def run_gospdy(binary, *args):
    import subprocess
    p = subprocess.run([binary, *args], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    return json.loads(p.stdout)


def test_go_spdystream_interop(daemon, busybox, gospdy, tmp_path):  # noqa: F811
    """The same sessions driven by Go's SPDY stack (moby/spdystream)."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", HTTPD])
    url = d.rt.Exec(container_id=c, cmd=["sh", "-c", "cat; echo to-err >&2; exit 5"],
                    stdin=True, stdout=True, stderr=True).url
    r = run_gospdy(gospdy, "exec", url, "from go\n" * 1000)
    assert r["stdout"] == "from go\n" * 1000 and r["stderr"] == "to-err\n"
    st = json.loads(r["error"])
    assert st["reason"] == "NonZeroExitCode" and st["details"]["causes"][0]["message"] == "5"
    url = d.rt.Exec(container_id=c, cmd=["true"], stdin=True, stdout=True, stderr=True).url
    assert json.loads(run_gospdy(gospdy, "exec", url, "")["error"])["status"] == "Success"
    for _ in range(50):
        url = d.rt.PortForward(pod_sandbox_id=pod, port=[8080]).url
        r = run_gospdy(gospdy, "portforward", url, "8080")
        if "hello-from-httpd" in r["data"]:
            break
        time.sleep(0.1)
    assert "hello-from-httpd" in r["data"], r
    url = d.rt.PortForward(pod_sandbox_id=pod, port=[9999]).url
    r = run_gospdy(gospdy, "portforward", url, "9999")
    assert r["data"] == "" and "refused" in r["error"].lower(), r
