"""huskd under systemd: the sd_notify protocol (READY, STATUS, STOPPING,
WATCHDOG) spoken to a NOTIFY_SOCKET the test binds itself, so no systemd
is needed; what huskd's children inherit of it."""
import os
import socket

import pytest

from conftest import pb
from pods import run_ctr, run_pod
from registry import registries  # noqa: F401  (fixture)


class NotifySocket:
    """A unix datagram socket standing in for systemd's notify socket."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(30)
        self.messages = []

    def until(self, pred, what):
        """Receive messages until pred(message lines) holds for one; the
        30 s socket timeout only bounds a hang."""
        for m in self.messages:
            if pred(m):
                return m
        while True:
            m = self.next(what)
            if pred(m):
                return m

    def next(self, what="further"):
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            pytest.fail(f"no {what} notification; got {self.messages}")
        m = data.split("\n")
        self.messages.append(m)
        return m

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(str(tmp_path / "notify.sock"))
    yield n
    n.close()


def test_ready_status_stopping(daemon_factory, notify):
    """STATUS lines while starting (records included), READY=1 only once
    the CRI socket serves, STOPPING=1 on SIGTERM."""
    d = daemon_factory(start=False, env={"NOTIFY_SOCKET": notify.path})
    d.start(wait=False)
    ready = notify.until(lambda m: "READY=1" in m, "READY=1")
    # READY came after the socket serves: a call succeeds with no retry.
    from conftest import make_channel
    d.channel = make_channel(d.socket)
    assert d.rt.Version(version="v1", _timeout=5).runtime_name == "husk"
    assert any(line.startswith("STATUS=serving CRI v1 on " + d.socket) for line in ready)
    statuses = [line for m in notify.messages for line in m if line.startswith("STATUS=")]
    assert "STATUS=starting runtime" in statuses
    assert any(s.startswith("STATUS=recovering") and "pod records" in s for s in statuses)
    assert not any("STOPPING=1" in m for m in notify.messages)
    assert d.stop() == 0
    notify.until(lambda m: "STOPPING=1" in m, "STOPPING=1")


def test_watchdog(daemon_factory, notify):
    """With WATCHDOG_USEC set (as WatchdogSec= sets it), WATCHDOG=1 comes
    again and again; without it, never."""
    d = daemon_factory(start=False,
                       env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "300000"})
    d.start(wait=False)
    notify.until(lambda m: "READY=1" in m, "READY=1")
    while sum("WATCHDOG=1" in m for m in notify.messages) < 3:
        notify.next("WATCHDOG=1")
    assert "watchdog usec=300000" in d.logs()
    d.wait_ready()
    assert d.stop() == 0


def test_no_watchdog_without_usec(daemon_factory, notify):
    d = daemon_factory(start=False, env={"NOTIFY_SOCKET": notify.path})
    d.start()
    notify.until(lambda m: "READY=1" in m, "READY=1")
    assert d.stop() == 0
    notify.until(lambda m: "STOPPING=1" in m, "STOPPING=1")
    assert not any("WATCHDOG=1" in m for m in notify.messages)
    assert "watchdog" not in d.logs()


def test_children_do_not_inherit_notify_socket(daemon_factory, notify, registries,  # noqa: F811
                                               tmp_path):
    """Shims outlive huskd; they must not speak for it to systemd."""
    d = daemon_factory(start=False,
                       env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "5000000"})
    d.start()
    ref = f"{registries.open.host}/test/busybox:latest"
    d.img.PullImage(image={"image": ref})
    pod, cfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, cfg, ref, ["sleep", "1000"])
    assert d.rt.ContainerStatus(container_id=cid).status.state == pb.CONTAINER_RUNNING
    import json
    with open(os.path.join(d.state, "containers", cid, "shim.pid")) as f:
        shim = json.load(f)["pid"]
    with open(f"/proc/{shim}/environ", "rb") as f:
        env = f.read().split(b"\0")
    assert not [e for e in env if e.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_"))]
    with open(f"/proc/{d.proc.pid}/environ", "rb") as f:
        assert any(e.startswith(b"NOTIFY_SOCKET=") for e in f.read().split(b"\0"))
