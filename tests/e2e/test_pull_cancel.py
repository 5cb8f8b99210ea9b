"""Pulls whose client gave up: a hung registry must not wedge the CRI.
Abandoned pulls close their connections and leave nothing behind, run in a
bounded pool of their own so other calls are served, a pull with no bytes
for pull_progress_timeout fails, and a cancelled pull does not break a
concurrent pull of the same layers."""
import os
import socket
import threading
import time

import grpc
import pytest

from registry import Proxy, mti, registries  # noqa: F401
from test_image import listed, pull, store_empty


class HungRegistry:
    """Accepts connections and never answers; counts those still open."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        self.conns = []
        self.accepted = 0
        self.lock = threading.Lock()
        self.stopping = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(c)
                self.accepted += 1

    def open_count(self):
        """Connections the peer has not closed: what it sent (a request, a
        TLS hello) is read and dropped until EOF shows."""
        n = 0
        with self.lock:
            for c in self.conns:
                c.setblocking(False)
                try:
                    while True:
                        if c.recv(1 << 16) == b"":
                            break
                except BlockingIOError:
                    n += 1
                except OSError:
                    pass
        return n

    def stop(self):
        self.stopping = True
        self.sock.close()
        with self.lock:
            for c in self.conns:
                c.close()


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def threads(pid, prefix="huskd-"):
    """huskd's worker threads (grpc's own timer threads come and go)."""
    n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                n += f.read().startswith(prefix)
        except FileNotFoundError:
            pass
    return n


def settle(fn, want, timeout=60):
    """Poll fn() until it is <= want; returns its last value."""
    deadline = time.time() + timeout
    v = fn()
    while v > want and time.time() < deadline:
        time.sleep(0.2)
        v = fn()
    return v


def test_abandoned_pulls_from_hung_registry(daemon_factory):
    d = daemon_factory({"worker_idle_timeout": 2, "max_concurrent_pulls": 4})
    hung = HungRegistry()
    try:
        d.rt.Version(version="v1")
        pid = d.proc.pid
        base_fds = fds(pid)
        base_threads = threads(pid)
        assert base_threads >= 4 and threads(pid, "huskd-pull") == 0

        futs = [d.img.PullImage.future(image={"image": f"{hung.host}/test/hang{i}:latest"},
                                       _timeout=2)
                for i in range(300)]
        codes = []
        for f in futs:
            with pytest.raises(grpc.RpcError) as e:
                f.result()
            codes.append(e.value.code())
        assert set(codes) == {grpc.StatusCode.DEADLINE_EXCEEDED}
        assert hung.accepted > 0, "no pull reached the registry"
        # Pulls ran in their own bounded pool.
        assert threads(pid, "huskd-pull") <= 4

        # The rest of the CRI is served while the pulls wind down.
        assert d.rt.Version(version="v1", _timeout=5).runtime_name == "husk"
        assert d.rt.Status(_timeout=5).status is not None
        assert list(d.rt.ListContainers(_timeout=5).containers) == []
        assert list(d.img.ListImages(_timeout=5).images) == []

        # Every connection to the registry is closed, fds and threads come back.
        assert settle(hung.open_count, 0) == 0
        assert settle(lambda: fds(pid), base_fds) <= base_fds
        assert settle(lambda: threads(pid), base_threads) <= base_threads
        assert os.listdir(os.path.join(d.root, "image", "tmp")) == []
        store_empty(d.root)
        # The abandoned pulls were cut short, not left to curl's timeouts.
        assert "Operation too slow" not in d.logs()
    finally:
        hung.stop()


def test_pull_progress_timeout(daemon_factory):
    d = daemon_factory({"pull_progress_timeout": 2})
    hung = HungRegistry()
    try:
        with pytest.raises(grpc.RpcError) as e:
            d.img.PullImage(image={"image": f"{hung.host}/test/stuck:latest"}, _timeout=60)
        assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e.value.details()
        assert "no progress for 2 s (pull_progress_timeout)" in e.value.details()
        assert settle(hung.open_count, 0) == 0
        store_empty(d.root)
    finally:
        hung.stop()


def test_cancelled_pull_does_not_break_a_concurrent_one(daemon, registries):
    d, reg = daemon, registries
    im = mti.Image(mti.big_layers(n=2, mb=4))
    im.push(mti.Registry(reg.open.host), "test/cancelme", "latest")
    proxy = Proxy(reg.open.host, rate=1 << 20)
    try:
        ref = f"{proxy.host}/test/cancelme:latest"
        tmp = os.path.join(d.root, "image", "tmp")
        doomed = d.img.PullImage.future(image={"image": ref}, _timeout=120)
        # Once the first pull is downloading its layers, start the second:
        # it waits for the layers the first one is fetching.
        deadline = time.time() + 30
        while time.time() < deadline and not os.listdir(tmp):
            time.sleep(0.05)
        assert os.listdir(tmp), "the first pull never started a layer"
        kept = d.img.PullImage.future(image={"image": ref}, _timeout=120)
        time.sleep(0.5)
        doomed.cancel()
        assert kept.result().image_ref == im.id
        with pytest.raises(grpc.FutureCancelledError):
            doomed.result()
        assert [i.id for i in listed(d)] == [im.id]
        assert os.listdir(tmp) == []
        # The image is whole: a container rootfs needs every layer.
        d.img.RemoveImage(image={"image": im.id})
        store_empty(d.root)
    finally:
        proxy.stop()


def test_cancelled_waiter_leaves_the_downloading_pull_alone(daemon_factory, registries):
    # pull_progress_timeout shorter than a layer takes: a pull that waits
    # for the other's layer is not stalled, and neither pull times out.
    d, reg = daemon_factory({"pull_progress_timeout": 2}), registries
    im = mti.Image(mti.big_layers(n=2, mb=4))
    im.push(mti.Registry(reg.open.host), "test/waiter", "latest")
    proxy = Proxy(reg.open.host, rate=1 << 20)
    try:
        ref = f"{proxy.host}/test/waiter:latest"
        tmp = os.path.join(d.root, "image", "tmp")
        kept = d.img.PullImage.future(image={"image": ref}, _timeout=120)
        deadline = time.time() + 30
        while time.time() < deadline and not os.listdir(tmp):
            time.sleep(0.05)
        assert os.listdir(tmp), "the first pull never started a layer"
        waiter = d.img.PullImage.future(image={"image": ref}, _timeout=120)
        patient = d.img.PullImage.future(image={"image": ref}, _timeout=120)
        time.sleep(0.5)
        waiter.cancel()
        with pytest.raises(grpc.FutureCancelledError):
            waiter.result()
        assert kept.result().image_ref == im.id
        assert patient.result().image_ref == im.id
        for digest in im.layer_digests:
            assert len(proxy.gets(f"/blobs/{digest}")) == 1, digest
        assert os.listdir(tmp) == []
    finally:
        proxy.stop()
