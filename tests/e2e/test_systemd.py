"""huskd under systemd: the sd_notify protocol (READY, STATUS, STOPPING,
WATCHDOG) spoken to a NOTIFY_SOCKET the test binds itself, so no systemd
is needed; what huskd's children inherit of it."""
import os
import shutil
import socket
import uuid

import pytest

from conftest import mounts_under, pb
from pods import ctr_config, pod_config, run_ctr, run_pod
from node import node_image  # noqa: F401  (fixture)
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


# ---- the systemd cgroup driver, against a real systemd in a node ----

MiB = 1 << 20


@pytest.fixture(scope="module")
def node(registries, node_image):  # noqa: F811
    """A node pod (tests/e2e/node.py) of a host huskd of this module's."""
    from conftest import Daemon, run_tmpdir
    from node import NodePod
    d = Daemon(run_tmpdir("e2e")).start()
    n = None
    try:
        d.img.PullImage(image={"image": node_image})
        host = registries.open.host
        n = NodePod(d, node_image, {"cgroup_driver": "systemd", "require_pod_network": False,
                                    "log_level": "debug",
                                    "registries": {host: {"insecure": True}}}).start()
        n.wait_running()
        yield n
    finally:
        # Stopping the node leaves nothing on the host: no process, no
        # cgroup in any hierarchy, no mount.
        try:
            left = n.remove() if n is not None else []
        finally:
            # Whatever happened to the node, huskd removes what it has.
            for c in d.rt.ListContainers().containers:
                d.rt.StopContainer(container_id=c.id, timeout=0, _timeout=180)
                d.rt.RemoveContainer(container_id=c.id)
            for p in d.rt.ListPodSandbox().items:
                d.rt.StopPodSandbox(pod_sandbox_id=p.id)
                d.rt.RemovePodSandbox(pod_sandbox_id=p.id)
            rc = d.stop()
        base_mounts = mounts_under(d.base)
        if not base_mounts:
            shutil.rmtree(d.base, ignore_errors=True)
        assert not left, f"the node left on the host: {left}"
        assert not base_mounts, f"huskd's mounts left on the host: {base_mounts}"
        assert rc == 0, d.logs()[-4000:]


def test_systemd_driver_in_a_node(node, registries):  # noqa: F811
    """huskd as the node's huskd.service (Type=notify) with the systemd
    driver: pods are slices, containers scopes, known to systemd, with
    their resources as unit properties; a restart keeps them; removal
    leaves no unit and no cgroup."""
    n = node
    # Type=notify: start returns once huskd said READY=1 (or it failed).
    p = n.sh("systemctl", "start", "huskd", check=False)
    state = n.sh("systemctl", "is-active", "huskd", check=False).strip()
    assert state == "active", (p, n.sh("journalctl", "--no-pager", "-u", "huskd", check=False))
    assert n.show("huskd.service", "StatusText").startswith("serving CRI v1 on /run/husk/")
    n.connect()
    assert n.rt.RuntimeConfig().linux.cgroup_driver == pb.SYSTEMD
    ref = f"{registries.open.host}/test/busybox:latest"
    n.img.PullImage(image={"image": ref})

    uid = uuid.uuid4().hex
    pod_slice = f"kubepods-burstable-pod{uid}.slice"
    pod_cfg = pod_config(linux={"cgroup_parent": pod_slice, "security_context": {
        "namespace_options": {"network": pb.NODE}}},
        log_directory=f"/var/lib/husk/logs/{uid}")
    pod = n.rt.RunPodSandbox(config=pod_cfg).pod_sandbox_id
    slice_path = ["kubepods.slice", "kubepods-burstable.slice", pod_slice]
    # The node's cgroups start at its container's cgroup on the host.
    host_slice = slice_path
    assert n.show(pod_slice, "ActiveState") == "active"
    assert n.show(f"husk-{pod}-init.scope", "ActiveState") == "active"
    assert n.show(f"husk-{pod}-init.scope", "Slice") == pod_slice

    res = {"memory_limit_in_bytes": 64 * MiB, "cpu_shares": 512, "cpu_period": 100000,
           "cpu_quota": 50000}
    ids = []
    for name in ("one", "two"):
        cfg = ctr_config(ref, ["sh", "-c", f"echo hello from {name}; exec sleep 1000"],
                         name=name, log_path=f"{name}.log", linux={"resources": res})
        cid = n.rt.CreateContainer(pod_sandbox_id=pod, config=cfg,
                                   sandbox_config=pod_cfg).container_id
        n.rt.StartContainer(container_id=cid)
        ids.append(cid)

    for cid in ids:
        scope = f"husk-{cid}.scope"
        assert n.show(scope, "ActiveState") == "active", n.sh("systemctl", "status", scope,
                                                              check=False)
        assert n.show(scope, "Slice") == pod_slice
        # Not privileged: no delegation (on v1 it would open the devices).
        assert n.show(scope, "Delegate") == "no"
        assert n.show(scope, "MemoryLimit") == str(64 * MiB)
        assert n.show(scope, "CPUShares") == "512"
        assert n.show(scope, "CPUQuotaPerSecUSec") == "500ms"
        status = n.sh("systemctl", "status", "--no-pager", scope)
        assert "sleep 1000" in status
        # The kernel's view, from the host: the container's processes are
        # in the scope's cgroup in systemd's hierarchy and the memory one,
        # with the limit in force.
        for ctrl in ("systemd", "memory", "cpu"):
            with open(os.path.join(n.host_dir(ctrl, *host_slice, scope), "cgroup.procs")) as f:
                assert f.read().split(), (ctrl, scope)
        with open(os.path.join(n.host_dir("memory", *host_slice, scope),
                               "memory.limit_in_bytes")) as f:
            assert int(f.read()) == 64 * MiB
        with open(os.path.join(n.host_dir("cpu", *host_slice, scope), "cpu.cfs_quota_us")) as f:
            assert int(f.read()) == 50000
        with open(os.path.join(n.host_dir("cpu", *host_slice, scope), "cpu.shares")) as f:
            assert int(f.read()) == 512
        # systemd left husk's device rules alone.
        with open(os.path.join(n.host_dir("devices", *host_slice, scope), "devices.list")) as f:
            devices = f.read()
        assert "a *:* rwm" not in devices and "c 1:3 rwm" in devices

    # exec and logs
    r = n.rt.ExecSync(container_id=ids[0], cmd=["sh", "-c", "echo exec-ok; cat /proc/1/cmdline"],
                      timeout=30)
    assert r.exit_code == 0 and r.stdout.startswith(b"exec-ok")
    with open(os.path.join(n.lib, "logs", uid, "one.log")) as f:
        assert "hello from one" in f.read()

    # UpdateContainerResources reaches systemd and the kernel.
    n.rt.UpdateContainerResources(container_id=ids[1], linux={"memory_limit_in_bytes": 128 * MiB})
    assert n.show(f"husk-{ids[1]}.scope", "MemoryLimit") == str(128 * MiB)
    with open(os.path.join(n.host_dir("memory", *host_slice, f"husk-{ids[1]}.scope"),
                           "memory.limit_in_bytes")) as f:
        assert int(f.read()) == 128 * MiB

    # The journal has husk's events with their fields.
    out = n.sh("journalctl", "--no-pager", "-o", "cat", "-u", "huskd", f"CONTAINER_ID={ids[0]}")
    assert f"container started container={ids[0]}" in out
    out = n.sh("journalctl", "--no-pager", "-o", "cat", "-u", "huskd", f"POD_ID={pod}",
               "CRI_METHOD=RunPodSandbox")
    assert f"pod started pod={pod}" in out

    # A restart of huskd (Type=notify: restart returns once it is READY)
    # keeps the pods, the containers and their units.
    n.channel.close()
    n.sh("systemctl", "restart", "huskd")
    assert n.sh("systemctl", "is-active", "huskd").strip() == "active"
    n.connect()
    st = {c.id: c.state for c in n.rt.ListContainers().containers}
    assert st == {ids[0]: pb.CONTAINER_RUNNING, ids[1]: pb.CONTAINER_RUNNING}
    for cid in ids:
        assert n.show(f"husk-{cid}.scope", "ActiveState") == "active"

    # stop, remove: units and cgroups go.
    n.rt.StopContainer(container_id=ids[0], timeout=0)
    n.rt.RemoveContainer(container_id=ids[0])
    assert n.show(f"husk-{ids[0]}.scope", "LoadState") == "not-found"
    assert not os.path.exists(n.host_dir("memory", *host_slice, f"husk-{ids[0]}.scope"))
    n.rt.StopPodSandbox(pod_sandbox_id=pod)
    n.rt.RemovePodSandbox(pod_sandbox_id=pod)
    for unit in (f"husk-{ids[1]}.scope", f"husk-{pod}-init.scope"):
        assert n.show(unit, "LoadState") == "not-found", n.sh("systemctl", "status", unit,
                                                               check=False)
    # A slice name always loads (systemd makes slices from names alone).
    assert n.show(pod_slice, "ActiveState") == "inactive"
    assert pod_slice not in n.sh("systemctl", "list-units", "--all", "--no-legend", "*.slice")
    for ctrl in ("systemd", "memory", "cpu", "pids"):
        assert not os.path.exists(n.host_dir(ctrl, *host_slice)), ctrl


def test_kubelet_made_slice_is_used_and_left(node, registries):  # noqa: F811
    """The kubelet's systemd driver starts the pod slice before
    RunPodSandbox: husk uses it, and leaves it to the kubelet at removal."""
    n = node
    n.sh("systemctl", "start", "huskd")
    n.connect()
    uid = uuid.uuid4().hex
    pod_slice = f"kubepods-besteffort-pod{uid}.slice"
    # As the kubelet makes it: a transient slice of its own.
    n.sh("busctl", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
         "org.freedesktop.systemd1.Manager", "StartTransientUnit", "ssa(sv)a(sa(sv))",
         pod_slice, "replace", "1", "Description", "s", "kubelet pod", "0")
    for _ in range(100):
        if n.show(pod_slice, "ActiveState") == "active":
            break
    assert n.show(pod_slice, "ActiveState") == "active"
    pod_cfg = pod_config(linux={"cgroup_parent": pod_slice, "security_context": {
        "namespace_options": {"network": pb.NODE}}})
    pod = n.rt.RunPodSandbox(config=pod_cfg).pod_sandbox_id
    assert n.show(f"husk-{pod}-init.scope", "Slice") == pod_slice
    assert n.show(pod_slice, "Description") == "kubelet pod"
    n.rt.StopPodSandbox(pod_sandbox_id=pod)
    n.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert n.show(pod_slice, "ActiveState") == "active"
    assert n.show(f"husk-{pod}-init.scope", "LoadState") == "not-found"
    n.sh("systemctl", "stop", pod_slice)
    n.channel.close()
    n.channel = None
