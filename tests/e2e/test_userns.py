"""Pods in user namespaces (CRI userns_options mode POD, hostUsers: false):
the kubelet's mappings validated and written, the pod's namespaces owned by
its user namespace, idmapped rootfs and volumes, namespaced capabilities,
and exec, logs and a huskd restart in such a pod: with husk's launcher,
and with runc as the pods' handler when it is installed (husk-shim makes
the idmapped bind sources on the host, runc joins the pod's user namespace
by path)."""
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time

import grpc
import pytest

from conftest import mounts_under, pb
from pods import (busybox, expect_error, huskd_own_mounts, leftovers, ns_inode,  # noqa: F401
                  pid_of, proc_status, run_ctr, run_pod, status)
from registry import registries  # noqa: F401
from streamclient import SpdyClient, remotecommand_streams
from test_stream import http_get_over
from test_propagation import mountinfo, sh, shared_dir, tag, vol  # noqa: F401
from test_network import (CNI_BIN, PLUGINS, assert_clean, busybox_in, cni,  # noqa: F401
                          net_daemon, pod_ips, wait_http)

E = grpc.StatusCode
SLEEP = ["sleep", "1000"]
HOST_BASE = 1 << 20  # what a kubelet would allocate: 65536 ids from a multiple of 65536
SIZE = 65536
RUNC = shutil.which("runc")


@pytest.fixture(params=["husk"] + (["runc"] if RUNC else []))
def daemon(daemon_factory, request):
    """huskd whose pods run with husk's launcher, or with runc."""
    if request.param == "husk":
        return daemon_factory()
    d = daemon_factory({"runtimes": {"runc": {"path": RUNC}}, "default_runtime": "runc"})
    # runc mounts the rootfs as the pod's root: the directories above
    # huskd's root must be searchable (huskd opens its own, 0711, as
    # containerd asks of /var/lib/containerd).
    os.chmod(d.base, 0o711)
    return d


def userns(uids=None, gids=None, mode="POD", **ns):
    m = [{"host_id": HOST_BASE, "container_id": 0, "length": SIZE}]
    opts = {"mode": mode, "uids": m if uids is None else uids,
            "gids": m if gids is None else gids}
    ns["userns_options"] = opts
    return {"security_context": {"namespace_options": ns}}


def owner_userns_inode(ns_path):
    """The inode of the user namespace that owns the namespace at ns_path."""
    NS_GET_USERNS = 0xb701
    with open(ns_path) as f:
        fd = fcntl.ioctl(f.fileno(), NS_GET_USERNS)
    try:
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


def check_reported(d, pod, ctrs, uids, gids):
    """PodSandboxStatus gives userns_options as RunPodSandbox got them, its
    verbose info and that of each container the same, and ContainerStatus
    the ids inside (root)."""
    def pairs(v):
        return [(m.container_id, m.host_id, m.length) for m in v]

    def info_pairs(v):
        return [(m["containerID"], m["hostID"], m["length"]) for m in v]
    want_u = [(m["container_id"], m["host_id"], m["length"]) for m in uids]
    want_g = [(m["container_id"], m["host_id"], m["length"]) for m in gids]
    st = d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True)
    u = st.status.linux.namespaces.options.userns_options
    assert u.mode == pb.POD
    assert (pairs(u.uids), pairs(u.gids)) == (want_u, want_g)
    infos = [json.loads(st.info["info"])["userNamespace"]]
    for c in ctrs:
        cs = d.rt.ContainerStatus(container_id=c, verbose=True)
        assert cs.status.user.linux.uid == 0 and cs.status.user.linux.gid == 0
        infos.append(json.loads(cs.info["info"])["userNamespace"])
    pins = os.path.join(d.state, "pods-mnt", pod, "ns", "user")
    for i in infos:
        assert (i["mode"], i["path"]) == ("POD", pins)
        assert (info_pairs(i["uids"]), info_pairs(i["gids"])) == (want_u, want_g)


def exec_out(d, cid, cmd, code=0):
    r = d.rt.ExecSync(container_id=cid, cmd=cmd, timeout=20)
    assert r.exit_code == code, (cmd, r.exit_code, r.stdout, r.stderr)
    return r.stdout.decode()


def test_validation_refusals_leave_nothing(daemon, tmp_path):
    d = daemon
    bad = [
        (userns(mode="CONTAINER"), "userns_options.mode CONTAINER"),
        (userns(uids=[{"host_id": HOST_BASE, "container_id": 0, "length": 0}]),
         "userns_options.uids[0]: length 0"),
        (userns(gids=[{"host_id": HOST_BASE, "container_id": 0, "length": 1000},
                      {"host_id": HOST_BASE + 500, "container_id": 1000, "length": 1000}]),
         "userns_options.gids[1]: overlaps userns_options.gids[0] (host ids)"),
        (userns(uids=[{"host_id": HOST_BASE, "container_id": 0, "length": 1000},
                      {"host_id": HOST_BASE + 5000, "container_id": 999, "length": 10}]),
         "userns_options.uids[1]: overlaps userns_options.uids[0] (container ids)"),
        (userns(uids=[{"host_id": 0, "container_id": 0, "length": SIZE}]),
         "userns_options.uids[0]: maps the host's root"),
        (userns(uids=[]), "userns_options.uids: no mapping"),
        (userns(uids=[{"host_id": 4294967295 - 10, "container_id": 0, "length": SIZE}]),
         "userns_options.uids[0]: range past id"),
        (userns(network=pb.NODE), "network and IPC namespaces"),
        (userns(pid=pb.NODE), "not the host's PID namespace"),
    ]
    for linux, want in bad:
        details = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path, linux=linux)
        assert want in details, details
    linux = userns()
    linux["security_context"]["privileged"] = True
    details = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path, linux=linux)
    assert "privileged pod cannot have a user namespace" in details
    assert not d.rt.ListPodSandbox().items
    pods = os.path.join(d.state, "pods")
    assert [m for m in mounts_under(d.base) if m not in huskd_own_mounts(d)] == []
    assert not os.path.isdir(pods) or os.listdir(pods) == []


def test_mode_node_is_the_hosts(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux=userns(mode="NODE"))
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    pid = pid_of(d, c)
    assert ns_inode(pid, "user") == ns_inode(os.getpid(), "user")
    st = d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True)
    assert st.status.linux.namespaces.options.userns_options.mode == pb.NODE
    assert not st.status.linux.namespaces.options.userns_options.uids
    assert json.loads(st.info["info"])["userNamespace"] == {"mode": "NODE"}
    assert proc_status(pid)["Uid"].split()[0] == "0"


def test_pod_user_namespace_owns_the_pod(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    pins = os.path.join(d.state, "pods-mnt", pod, "ns")
    a = run_ctr(d, pod, cfg, busybox, SLEEP)
    b = run_ctr(d, pod, cfg, busybox, SLEEP)
    pa, pb_ = pid_of(d, a), pid_of(d, b)
    # Every container is in the pod's user namespace, not the host's.
    user = os.stat(os.path.join(pins, "user")).st_ino
    assert ns_inode(pa, "user") == ns_inode(pb_, "user") == user
    assert user != ns_inode(os.getpid(), "user")
    for kind in ("net", "ipc", "uts"):
        assert ns_inode(pa, kind) == os.stat(os.path.join(pins, kind)).st_ino
    # The kubelet's mapping, exactly; root inside is HOST_BASE outside.
    for f in ("uid_map", "gid_map"):
        with open(f"/proc/{pa}/{f}") as fh:
            assert fh.read().split() == ["0", str(HOST_BASE), str(SIZE)]
    st = proc_status(pa)
    assert st["Uid"].split() == [str(HOST_BASE)] * 4
    assert st["Gid"].split() == [str(HOST_BASE)] * 4
    assert exec_out(d, a, ["id", "-u"]).strip() == "0"
    st = d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True)
    assert json.loads(st.info["info"])["namespaces"]["user"] == os.path.join(pins, "user")
    m = [{"host_id": HOST_BASE, "container_id": 0, "length": SIZE}]
    check_reported(d, pod, [a, b], m, m)
    # An exec'd process joins the same user namespace.
    ps = exec_out(d, a, ["sh", "-c", "cat /proc/self/uid_map"]).split()
    assert ps == ["0", str(HOST_BASE), str(SIZE)]


def test_files_look_right_without_chown(daemon, busybox, tmp_path):
    d = daemon
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chmod(vol, 0o777)
    (vol / "host-file").write_text("x")  # owned by host root
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    mounts = [{"container_path": "/data", "host_path": str(vol)}]
    c = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=mounts)
    # The image's root-owned files, the volume and the pod files read as root.
    for path in ("/etc/passwd", "/bin", "/data", "/data/host-file", "/etc/hosts",
                 "/etc/resolv.conf", "/etc/hostname", "/dev/shm"):
        assert exec_out(d, c, ["stat", "-c", "%u:%g", path]).strip() == "0:0", path
    # What container root writes in the volume is host root's on disk.
    exec_out(d, c, ["sh", "-c", "echo hi > /data/by-root"])
    st = os.stat(vol / "by-root")
    assert (st.st_uid, st.st_gid) == (0, 0)
    # root inside may chown in its rootfs, and to ids of the pod only.
    exec_out(d, c, ["sh", "-c", "touch /tmp/f && chown 1000:1000 /tmp/f"])
    assert exec_out(d, c, ["stat", "-c", "%u:%g", "/tmp/f"]).strip() == "1000:1000"
    # A non-root container user: its files are uid 1000 on the host's disk.
    u = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=mounts,
                linux={"security_context": {"run_as_user": {"value": 1000},
                                            "run_as_group": {"value": 1000}}})
    pu = pid_of(d, u)
    assert proc_status(pu)["Uid"].split()[0] == str(HOST_BASE + 1000)
    exec_out(d, u, ["sh", "-c", "echo hi > /data/by-1000"])
    st = os.stat(vol / "by-1000")
    assert (st.st_uid, st.st_gid) == (1000, 1000)
    assert exec_out(d, u, ["stat", "-c", "%u:%g", "/data/by-1000"]).strip() == "1000:1000"


def test_capabilities_are_namespaced(daemon, busybox, tmp_path):
    d = daemon
    host_name = socket.gethostname()
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    c = run_ctr(d, pod, cfg, busybox, SLEEP,
                linux={"security_context": {"capabilities": {"add_capabilities": [
                    "CAP_MKNOD", "CAP_SYS_ADMIN", "CAP_SYS_MODULE"]}}})
    # Block devices: not in a user namespace, whatever the capabilities.
    r = d.rt.ExecSync(container_id=c, cmd=["mknod", "/tmp/sda", "b", "8", "0"], timeout=10)
    assert r.exit_code != 0
    assert b"ermitted" in r.stderr, r.stderr
    # Its hostname is the pod's UTS namespace's; the host keeps its own.
    exec_out(d, c, ["hostname", "evil"])
    assert socket.gethostname() == host_name
    # Modules: CAP_SYS_MODULE counts only in the initial user namespace.
    # (This test kernel answers ENOSYS before that check, so this only
    # shows no module gets in.)
    r = d.rt.ExecSync(container_id=c, cmd=[
        "sh", "-c", "head -c 4096 /dev/zero > /tmp/m.ko && insmod /tmp/m.ko"], timeout=10)
    assert r.exit_code != 0
    # A mount it makes stays in its own mount namespace.
    # (Only its own tmpfs is looked for: other runs on the machine mount
    # and unmount meanwhile.)
    exec_out(d, c, ["sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs husk-userns-m /tmp/m"])
    assert exec_out(d, c, ["grep", "-c", "husk-userns-m", "/proc/self/mountinfo"]).strip() == "1"
    with open("/proc/self/mountinfo") as f:
        assert "husk-userns-m" not in f.read()
    # Remounting the host-owned /proc/sys read-write is refused.
    r = d.rt.ExecSync(container_id=c, cmd=["mount", "-o", "remount,rw", "/sys"], timeout=10)
    assert r.exit_code != 0


def test_exec_logs_restart(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "id -u; echo started; sleep 1000"],
                log_path="l.log")
    log = os.path.join(cfg["log_directory"], "l.log")
    deadline = time.time() + 20
    while time.time() < deadline and "started" not in open(log).read():
        time.sleep(0.05)
    lines = [ln.split(" ", 3)[-1] for ln in open(log).read().splitlines()]
    assert lines[:2] == ["0", "started"]
    pid = pid_of(d, c)
    d.restart()
    assert status(d, c).status.state == pb.CONTAINER_RUNNING
    assert pid_of(d, c) == pid
    assert exec_out(d, c, ["id", "-u"]).strip() == "0"
    # A container created after the restart joins the same user namespace.
    c2 = run_ctr(d, pod, cfg, busybox, SLEEP)
    assert ns_inode(pid_of(d, c2), "user") == ns_inode(pid, "user")
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c, c2]) == []


def test_status_reports_user_namespaces(daemon):
    r = daemon.rt.Status()
    husk = [h for h in r.runtime_handlers if h.name == ""]
    assert husk and husk[0].features.user_namespaces


@pytest.mark.skipif(not all(os.access(os.path.join(CNI_BIN, p), os.X_OK) for p in PLUGINS),
                    reason="containernetworking-plugins not installed")
def test_cni_network_in_a_user_namespace(daemon_factory, registries, cni):  # noqa: F811
    """The plugins (host root) set up a netns the pod's user namespace owns;
    container root binds port 80 in it and the host reaches it."""
    d = net_daemon(daemon_factory, cni)
    image = busybox_in(d, registries)
    cfg = {"metadata": {"name": "web", "uid": "u-web", "namespace": "e2e"},
           "hostname": "web", "linux": userns()}
    pod = d.rt.RunPodSandbox(config=cfg).pod_sandbox_id
    pins = os.path.join(d.state, "pods-mnt", pod, "ns")
    assert owner_userns_inode(os.path.join(pins, "net")) == \
        os.stat(os.path.join(pins, "user")).st_ino
    ips = pod_ips(d, pod)
    assert ips and ips[0].startswith(f"10.244.{cni.x}.")
    cmd = ["sh", "-c", "echo hi > /tmp/index.html && exec httpd -f -p 80 -h /tmp"]
    cid = d.rt.CreateContainer(pod_sandbox_id=pod, sandbox_config=cfg, config={
        "metadata": {"name": "httpd"}, "image": {"image": image},
        "command": cmd}).container_id
    d.rt.StartContainer(container_id=cid)
    assert wait_http(f"http://{ips[0]}:80/index.html") == "hi\n"
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [pod, cid])


def test_resources_seccomp_stats(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    c = run_ctr(d, pod, cfg, busybox, SLEEP, linux={
        "resources": {"memory_limit_in_bytes": 64 << 20},
        "security_context": {"seccomp": {"profile_type": pb.SecurityProfile.RuntimeDefault}}})
    pid = pid_of(d, c)
    assert proc_status(pid)["Seccomp"] == "2"
    with open(f"/proc/{pid}/cgroup") as f:
        mem = [ln.split(":", 2)[2].strip() for ln in f if ":memory:" in ln]
    if mem:  # cgroup v1
        limit = open(f"/sys/fs/cgroup/memory{mem[0]}/memory.limit_in_bytes").read().strip()
        assert int(limit) == 64 << 20
    d.rt.UpdateContainerResources(container_id=c, linux={"memory_limit_in_bytes": 96 << 20})
    assert status(d, c).status.resources.linux.memory_limit_in_bytes == 96 << 20
    exec_out(d, c, ["sh", "-c", "head -c 4000000 /dev/zero > /tmp/fill"])
    s = d.rt.ContainerStats(container_id=c).stats
    assert s.attributes.id == c
    assert s.memory.working_set_bytes.value > 0
    ps = d.rt.PodSandboxStats(pod_sandbox_id=pod).stats
    assert ps.attributes.id == pod


def test_attach_and_port_forward(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", 'while read l; do echo "got $l"; done'],
                stdin=True)
    cl = SpdyClient(d.rt.Attach(container_id=c, stdin=True, stdout=True, stderr=True).url)
    ids = remotecommand_streams(cl, True, True, True, False)
    cl.send(ids["stdin"], b"hello\n")
    cl.wait(lambda: b"got hello" in cl.streams[ids["stdout"]].data, 15)
    cl.close()
    run_ctr(d, pod, cfg, busybox, ["sh", "-c", "echo hello-userns > /tmp/index.html && "
                                   "exec httpd -f -p 8080 -h /tmp"])
    pf = SpdyClient(d.rt.PortForward(pod_sandbox_id=pod, port=[8080]).url,
                    ("portforward.k8s.io",))
    body = b""
    for attempt in range(50):  # until httpd listens
        body, err = http_get_over(pf, 8080, attempt)
        if b"hello-userns" in body:
            break
        time.sleep(0.1)
    pf.close()
    assert b"200 OK" in body and b"hello-userns" in body, (body, err)


def test_idmapped_volume_keeps_propagation(daemon, busybox, tmp_path, shared_dir):  # noqa: F811
    """HOST_TO_CONTAINER on an idmapped volume: the container's mount is a
    slave of the host's peer group, and a mount made on the host after the
    start shows inside (owned by root there too); PRIVATE gets nothing.
    BIDIRECTIONAL is refused: it needs a privileged container, which a pod
    with a user namespace cannot have."""
    d = daemon
    src = shared_dir / "vol"
    peer = tag(mountinfo(os.getpid())[str(shared_dir)], "shared")
    assert peer
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    details = expect_error(E.INVALID_ARGUMENT, run_ctr, d, pod, cfg, busybox, SLEEP,
                           mounts=[vol("/both", src, pb.PROPAGATION_BIDIRECTIONAL)])
    assert "BIDIRECTIONAL" in details and "user namespace" in details, details
    c = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=[
        vol("/h2c", src, pb.PROPAGATION_HOST_TO_CONTAINER),
        vol("/none", src, pb.PROPAGATION_PRIVATE)])
    pid = pid_of(d, c)
    mi = mountinfo(pid)
    assert tag(mi["/h2c"], "master") == peer, mi["/h2c"]
    assert tag(mi["/none"], "master") is None and tag(mi["/none"], "shared") != peer
    (src / "fromhost").mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "fromhost", str(src / "fromhost"))
    try:
        (src / "fromhost" / "f").write_text("from host\n")
        mi = mountinfo(pid)
        assert "/h2c/fromhost" in mi and "/none/fromhost" not in mi
        assert exec_out(d, c, ["cat", "/h2c/fromhost/f"]) == "from host\n"
        assert exec_out(d, c, ["ls", "/none/fromhost"]) == ""
        # The idmapping still holds on the volume itself.
        assert exec_out(d, c, ["stat", "-c", "%u:%g", "/h2c", "/none"]).split() == \
            ["0:0", "0:0"]
    finally:
        sh("umount", str(src / "fromhost"))
    assert "/h2c/fromhost" not in mountinfo(pid)
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c]) == []


def test_sys_fs_cgroup_in_a_user_namespace(daemon, busybox, tmp_path):
    """/sys/fs/cgroup shows the container's own cgroups read-only, as for a
    container without a user namespace: on cgroup v1 each hierarchy is a
    bind of its cgroup directory made from the host side."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    c = run_ctr(d, pod, cfg, busybox, SLEEP,
                linux={"resources": {"memory_limit_in_bytes": 48 << 20}})
    pid = pid_of(d, c)
    with open(f"/proc/{pid}/cgroup") as f:
        host = {}
        for ln in f:
            _, ctrls, path = ln.rstrip("\n").split(":", 2)
            host[ctrls] = path
    v1 = {k: v for k, v in host.items() if k}
    if not v1:
        # cgroup v2 only: the namespace's own cgroup2 mount
        out = exec_out(d, c, ["cat", "/sys/fs/cgroup/memory.max"]).strip()
        assert int(out) == 48 << 20
        return
    assert "memory" in v1
    out = exec_out(d, c, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
    assert int(out) == 48 << 20
    # The container's own cgroup is the root of what it sees: its pid is
    # there, and nothing of the host's other cgroups.
    procs = exec_out(d, c, ["cat", "/sys/fs/cgroup/memory/cgroup.procs"]).split()
    assert "1" in procs
    host_dir = f"/sys/fs/cgroup/memory{v1['memory']}"
    assert sorted(os.listdir(host_dir)) == sorted(
        exec_out(d, c, ["ls", "-A", "/sys/fs/cgroup/memory"]).split())
    # Every hierarchy it is in, co-mounted ones reachable by each name.
    for ctrls in v1:
        name = ctrls[5:] if ctrls.startswith("name=") else ctrls
        if os.path.isdir(f"/sys/fs/cgroup/{name}"):
            exec_out(d, c, ["test", "-f", f"/sys/fs/cgroup/{name}/cgroup.procs"])
            for part in ([] if ctrls.startswith("name=") else ctrls.split(",")):
                exec_out(d, c, ["test", "-f", f"/sys/fs/cgroup/{part}/cgroup.procs"])
    # Read-only, and container root cannot make it writable.
    r = d.rt.ExecSync(container_id=c, cmd=[
        "sh", "-c", "echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes"], timeout=10)
    assert r.exit_code != 0
    with open(f"/proc/{pid}/mountinfo") as f:
        opts = [ln.split()[5] for ln in f if ln.split()[4] == "/sys/fs/cgroup/memory"]
    assert opts and opts[-1].split(",")[0] == "ro", opts
    # Updates show inside.
    d.rt.UpdateContainerResources(container_id=c, linux={"memory_limit_in_bytes": 80 << 20})
    out = exec_out(d, c, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
    assert int(out) == 80 << 20
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c]) == []


def test_sigkill_restart_keeps_the_idmapping(daemon, busybox, tmp_path):
    """After huskd is SIGKILLed and started again: the pod still reports its
    mappings, an exec in a running container and a new container see root's
    files as root (rootfs and volume) and write them as host root; a created
    container whose rootfs mount was lost gets it mounted again at start
    with the pod's idmapping, not plainly."""
    d = daemon
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chmod(vol, 0o777)
    (vol / "host-file").write_text("x")
    uids = [{"host_id": HOST_BASE, "container_id": 0, "length": SIZE}]
    gids = [{"host_id": HOST_BASE + SIZE, "container_id": 0, "length": SIZE}]
    pod, cfg = run_pod(d, tmp_path, linux=userns(uids=uids, gids=gids))
    mounts = [{"container_path": "/data", "host_path": str(vol)}]
    c = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=mounts)
    later = run_ctr(d, pod, cfg, busybox, SLEEP, start=False, mounts=mounts)
    d.restart(kill=True)
    check_reported(d, pod, [c, later], uids, gids)

    def owners_right(cid, name):
        for path in ("/etc/passwd", "/bin", "/data/host-file", "/etc/hosts"):
            assert exec_out(d, cid, ["stat", "-c", "%u:%g", path]).strip() == "0:0", path
        exec_out(d, cid, ["sh", "-c", f"echo hi > /data/{name}"])
        st = os.stat(vol / name)
        assert (st.st_uid, st.st_gid) == (0, 0)

    owners_right(c, "by-old")
    c2 = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=mounts)
    owners_right(c2, "by-new")
    assert ns_inode(pid_of(d, c2), "user") == ns_inode(pid_of(d, c), "user")

    # The created container's rootfs mount is gone (as after a reboot
    # with the state kept): StartContainer mounts it again, idmapped.
    rootfs = json.loads(status(d, later, verbose=True).info["info"])["rootfs"]
    subprocess.run(["umount", "-l", rootfs], check=True)
    assert rootfs not in mounts_under(d.base)
    d.rt.StartContainer(container_id=later)
    assert rootfs in mounts_under(d.base)
    owners_right(later, "by-later")
    exec_out(d, later, ["touch", "/by-later-root"])
    upper = os.path.join(d.root, "image", "containers", later, "upper", "by-later-root")
    st = os.stat(upper)
    assert (st.st_uid, st.st_gid) == (HOST_BASE, HOST_BASE + SIZE)

    # With the pin no longer a user namespace (as after a reboot), such a
    # start fails saying so: no plain mount with host ids.
    last = run_ctr(d, pod, cfg, busybox, SLEEP, start=False)
    rootfs = json.loads(status(d, last, verbose=True).info["info"])["rootfs"]
    subprocess.run(["umount", "-l", rootfs], check=True)
    subprocess.run(["umount", "-l", os.path.join(d.state, "pods-mnt", pod, "ns", "user")],
                   check=True)
    details = expect_error(E.FAILED_PRECONDITION, d.rt.StartContainer, container_id=last)
    assert "is not a user namespace" in details, details
    assert rootfs not in mounts_under(d.base)
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c, c2, later, last]) == []


def test_read_only_volume_stays_read_only(daemon, busybox, tmp_path, request):
    """Container root with CAP_SYS_ADMIN in its user namespace cannot
    remount a read-only idmapped volume (nor a /sys/fs/cgroup clone)
    writable: their flags are locked (the kernel's view: the remount fails
    and nothing is written on the host's disk, which would be as host root)."""
    d = daemon
    vol = tmp_path / "vol"
    vol.mkdir()
    os.chmod(vol, 0o777)
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    c = run_ctr(d, pod, cfg, busybox, SLEEP,
                mounts=[{"container_path": "/data", "host_path": str(vol), "readonly": True},
                        {"container_path": "/rw", "host_path": str(vol)}],
                linux={"security_context": {"capabilities": {
                    "add_capabilities": ["CAP_SYS_ADMIN"]}}})
    pid = pid_of(d, c)
    with open(f"/proc/{pid}/mountinfo") as f:
        opts = {ln.split()[4]: ln.split()[5] for ln in f}
    assert opts["/data"].split(",")[0] == "ro" and opts["/rw"].split(",")[0] == "rw", \
        open(f"/proc/{pid}/mountinfo").read()
    assert "/proc" in opts  # the staging tmpfs under it is covered
    # runc mounts /sys/fs/cgroup itself: only husk's launcher's clones are
    # locked; the files are host root's either way.
    husk = request.node.callspec.params.get("daemon") == "husk"
    for target in ("/data", "/sys/fs/cgroup/memory") if husk else ("/data",):
        r = d.rt.ExecSync(container_id=c, cmd=[
            "mount", "-o", "remount,bind,rw", target], timeout=10)
        assert r.exit_code != 0, target
    r = d.rt.ExecSync(container_id=c, cmd=[
        "sh", "-c", "echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes"], timeout=10)
    assert r.exit_code != 0
    r = d.rt.ExecSync(container_id=c, cmd=["touch", "/data/x"], timeout=10)
    assert r.exit_code != 0
    assert not os.path.exists(vol / "x")
    # It still has its namespaced CAP_SYS_ADMIN: a tmpfs of its own.
    exec_out(d, c, ["sh", "-c", "mkdir -p /tmp/m && mount -t tmpfs x /tmp/m"])
    # The writable volume is the same directory, idmapped.
    exec_out(d, c, ["touch", "/rw/y"])
    st = os.stat(vol / "y")
    assert (st.st_uid, st.st_gid) == (0, 0)
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c]) == []


def test_idmapped_volume_from_a_slave_source(daemon, busybox, tmp_path, shared_dir):  # noqa: F811
    """HOST_TO_CONTAINER from a source that is a slave (of the shared host
    mount): the volume is a slave of the same master, so a mount made on
    the shared side reaches the container through the idmapped volume."""
    d = daemon
    peer = tag(mountinfo(os.getpid())[str(shared_dir)], "shared")
    slave = tmp_path / "slave"
    slave.mkdir()
    sh("mount", "--bind", str(shared_dir), str(slave))
    sh("mount", "--make-slave", str(slave))
    assert tag(mountinfo(os.getpid())[str(slave)], "master") == peer
    pod, cfg = run_pod(d, tmp_path, linux=userns())
    c = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=[
        vol("/h2c", slave / "vol", pb.PROPAGATION_HOST_TO_CONTAINER)])
    pid = pid_of(d, c)
    assert tag(mountinfo(pid)["/h2c"], "master") == peer
    src = shared_dir / "vol"
    (src / "late").mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "late", str(src / "late"))
    try:
        (src / "late" / "f").write_text("late\n")
        assert exec_out(d, c, ["cat", "/h2c/late/f"]) == "late\n"
        # The kernel propagates the host's mount as it is, not idmapped:
        # host root's file reads as the overflow id inside.
        assert exec_out(d, c, ["stat", "-c", "%u:%g", "/h2c/late/f"]).strip() == \
            "65534:65534"
    finally:
        sh("umount", str(src / "late"))
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c]) == []
