"""A kind-style node run by husk itself: deploy/node/build-image's image
pushed to the test registry, pulled by the host huskd and run as a
privileged pod in systemd mode (private cgroup namespace, its own
writable cgroup tree, tmpfs /run and /tmp, SIGRTMIN+3 to stop), with
/var/lib/husk and the inner socket directory as host directories. The
node's huskd (the systemd driver) is then driven over its socket, and the
node pod's removal must leave nothing on the host."""
import json
import os
import uuid

import grpc
import pytest

from conftest import pb
from node import CGROUP, NodePod, host_cgroup_dirs, node_image, pids_in_tree  # noqa: F401
from pods import busybox, ctr_config, pod_config, pid_of, run_pod  # noqa: F401
from registry import registries  # noqa: F401  (fixture)

MiB = 1 << 20


def node_config(host):
    return {"cgroup_driver": "systemd", "require_pod_network": False, "log_level": "debug",
            "registries": {host: {"insecure": True}}}


def test_node_as_a_pod(daemon_factory, registries, node_image):  # noqa: F811
    d = daemon_factory()
    host = registries.open.host
    d.img.PullImage(image={"image": node_image})
    n = NodePod(d, node_image, node_config(host)).start()
    try:
        _drive(n, host, n.cgdirs)
    except BaseException:
        print(n.log())
        n.remove()  # its host directories too
        raise
    # The node stops as systemd wants (SIGRTMIN+3: a clean shutdown, its
    # own units stopped), and nothing of it stays on the host.
    left = n.remove()
    assert n.exit_code == 130, n.log()
    assert not left, f"left on the host: {left}"


def _drive(n, host, cgdirs):
    # The kernel's view of the node's PID 1: systemd, in a cgroup namespace
    # of its own whose root is its cgroup on the host, in every hierarchy
    # (the ones husk manages and name=systemd and the cgroup2).
    assert os.readlink(f"/proc/{n.pid}/exe").endswith("/systemd")
    assert os.readlink(f"/proc/{n.pid}/ns/cgroup") != os.readlink("/proc/self/ns/cgroup")
    assert "systemd" in cgdirs and "memory" in cgdirs
    for name, path in cgdirs.items():
        assert os.path.isdir(path), name
        assert path != os.path.join(CGROUP, name) + "/", name
    env = open(f"/proc/{n.pid}/environ", "rb").read().split(b"\0")
    assert b"container=husk" in env

    n.wait_running()
    # A tty (as kind gives its nodes) is systemd's /dev/console: what it
    # writes there is the pod's log (how much of the boot it shows varies).
    assert " stdout " in n.log(), n.log()
    inner_cg = n.sh("cat", "/proc/1/cgroup")
    assert "name=systemd:/init.scope" in inner_cg
    # /run, /tmp tmpfs; /var/lib/husk the host directory (not overlay);
    # the cgroup tree writable.
    mounts = {}
    for line in n.sh("cat", "/proc/1/mountinfo").splitlines():
        pre, post = line.split(" - ")
        mounts[pre.split()[4]] = (post.split()[0], pre.split()[5])
    assert mounts["/run"][0] == "tmpfs" and mounts["/tmp"][0] == "tmpfs"
    assert mounts["/run/lock"][0] == "tmpfs"
    assert mounts["/var/lib/husk"][0] != "overlay"
    assert mounts["/sys/fs/cgroup/systemd"][1].startswith("rw")
    assert mounts["/sys"][1].startswith("rw")

    # The inner huskd (Type=notify: active means it said READY=1).
    assert n.sh("systemctl", "is-active", "huskd", check=False).strip() == "active", \
        n.sh("journalctl", "--no-pager", "-u", "huskd", check=False)
    n.connect()
    assert n.rt.RuntimeConfig().linux.cgroup_driver == pb.SYSTEMD
    ref = f"{host}/test/busybox:latest"
    n.img.PullImage(image={"image": ref})

    uid = uuid.uuid4().hex
    pod_slice = f"kubepods-burstable-pod{uid}.slice"
    pod_cfg = pod_config(linux={"cgroup_parent": pod_slice, "security_context": {
        "namespace_options": {"network": pb.NODE}}},
        log_directory=f"/var/lib/husk/logs/{uid}")
    pod = n.rt.RunPodSandbox(config=pod_cfg).pod_sandbox_id
    slice_path = ["kubepods.slice", "kubepods-burstable.slice", pod_slice]
    assert n.show(pod_slice, "ActiveState") == "active"
    ids = []
    for name in ("one", "two"):
        cfg = ctr_config(ref, ["sh", "-c", f"echo hello from {name}; exec sleep 1000"],
                         name=name, log_path=f"{name}.log",
                         linux={"resources": {"memory_limit_in_bytes": 64 * MiB}})
        cid = n.rt.CreateContainer(pod_sandbox_id=pod, config=cfg,
                                   sandbox_config=pod_cfg).container_id
        n.rt.StartContainer(container_id=cid)
        ids.append(cid)
    for cid in ids:
        scope = f"husk-{cid}.scope"
        assert n.show(scope, "ActiveState") == "active"
        assert n.show(scope, "Slice") == pod_slice
        assert "sleep 1000" in n.sh("systemctl", "status", "--no-pager", scope)
        # On the host: below the node's own cgroup, with the limit.
        for ctrl in ("systemd", "memory"):
            d = os.path.join(cgdirs[ctrl], *slice_path, scope)
            with open(os.path.join(d, "cgroup.procs")) as f:
                assert f.read().split(), (ctrl, scope)
        with open(os.path.join(cgdirs["memory"], *slice_path, scope,
                               "memory.limit_in_bytes")) as f:
            assert int(f.read()) == 64 * MiB

    r = n.rt.ExecSync(container_id=ids[0], cmd=["sh", "-c", "echo exec-ok"], timeout=30)
    assert r.exit_code == 0 and r.stdout == b"exec-ok\n"
    with open(os.path.join(n.lib, "logs", uid, "two.log")) as f:
        assert "hello from two" in f.read()

    # A restart of the inner huskd keeps its pods and their units.
    n.channel.close()
    n.channel = None
    n.sh("systemctl", "restart", "huskd")
    n.connect()
    st = {c.id: c.state for c in n.rt.ListContainers().containers}
    assert st == {ids[0]: pb.CONTAINER_RUNNING, ids[1]: pb.CONTAINER_RUNNING}

    n.rt.StopContainer(container_id=ids[0], timeout=0)
    n.rt.RemoveContainer(container_id=ids[0])
    assert n.show(f"husk-{ids[0]}.scope", "LoadState") == "not-found"
    # The second one stays running: the node's stop takes it down.
    n.rt.StopPodSandbox(pod_sandbox_id=pod)
    n.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert n.show(f"husk-{ids[1]}.scope", "LoadState") == "not-found"
    assert not os.path.exists(os.path.join(cgdirs["memory"], *slice_path))
    # A pod left running inside: the node's stop must take it down too.
    pod2 = n.rt.RunPodSandbox(config=pod_config(linux={"security_context": {
        "namespace_options": {"network": pb.NODE}}})).pod_sandbox_id
    assert pod2
    assert pids_in_tree(cgdirs["memory"])


def runtime_spec(d, cid):
    info = json.loads(d.rt.ContainerStatus(container_id=cid, verbose=True).info["info"])
    return info["runtimeSpec"]


def test_systemd_mode(daemon, busybox, tmp_path):  # noqa: F811
    """systemd mode: asked by the annotation or by init as the command;
    tmpfs where systemd keeps its state (a CRI mount there wins),
    container= in the environment; "false" turns it off; another value is
    refused naming the annotation."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    vol = tmp_path / "tmp"
    vol.mkdir()

    def create(cmd, annotations=None, **kw):
        c = ctr_config(busybox, cmd, annotations=annotations or {}, **kw)
        return d.rt.CreateContainer(pod_sandbox_id=pod, config=c, sandbox_config=cfg).container_id

    def tmpfs(spec):
        return {m["destination"] for m in spec["mounts"] if m["type"] == "tmpfs"}

    on = create(["sleep", "1000"], {"io.husk.systemd": "true"},
                mounts=[{"container_path": "/tmp", "host_path": str(vol)}])
    spec = runtime_spec(d, on)
    assert {"/run", "/run/lock", "/var/log/journal"} <= tmpfs(spec)
    assert "/tmp" not in tmpfs(spec)  # the CRI mount's
    assert "container=husk" in spec["process"]["env"]
    assert "cgroup" in [ns["type"] for ns in spec["linux"]["namespaces"]]
    # Running: the kernel's view of its mounts.
    d.rt.StartContainer(container_id=on)
    mounts = {}
    with open(f"/proc/{pid_of(d, on)}/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ")
            mounts[pre.split()[4]] = post.split()[0]
    assert mounts["/run"] == "tmpfs" and mounts["/run/lock"] == "tmpfs"
    assert mounts["/tmp"] != "tmpfs"

    auto = create(["/sbin/init"])
    assert "/run" in tmpfs(runtime_spec(d, auto))
    off = create(["/lib/systemd/systemd"], {"io.husk.systemd": "false"})
    spec = runtime_spec(d, off)
    assert "/run" not in tmpfs(spec)
    assert "container=husk" not in spec["process"]["env"]
    plain = create(["sleep", "1"])
    assert "/run" not in tmpfs(runtime_spec(d, plain))

    with pytest.raises(grpc.RpcError) as e:
        create(["sleep", "1"], {"io.husk.systemd": "yes"})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "io.husk.systemd" in e.value.details()

    # Its own cgroup in the hierarchies husk does not manage (name=systemd,
    # the v1 host's cgroup2), gone with it; none for a plain container.
    mine = host_cgroup_dirs(pid_of(d, on))
    unmanaged = [mine[k] for k in ("systemd", "unified") if k in mine]
    if not unmanaged:
        return  # a v2 host: husk manages the one hierarchy
    pod_dirs = [os.path.dirname(u.rstrip("/")) for u in unmanaged]
    for u in unmanaged:
        assert u.rstrip("/") not in (os.path.join(CGROUP, "systemd"),
                                     os.path.join(CGROUP, "unified"))
        with open(os.path.join(u, "cgroup.procs")) as f:
            assert str(pid_of(d, on)) in f.read().split()

    def subdirs():
        return sorted(e for p in pod_dirs for e in os.listdir(p)
                      if os.path.isdir(os.path.join(p, e)))

    # on, auto and off in systemd mode or not: on and auto have theirs.
    assert len(subdirs()) == 2 * len(pod_dirs)
    # A creation that fails after they were made (the launcher's limit on
    # arguments) leaves none; a start that fails, none after removal.
    with pytest.raises(grpc.RpcError) as e:
        create(["sleep"] + ["1"] * 5000, {"io.husk.systemd": "true"})
    assert "args" in e.value.details()
    assert len(subdirs()) == 2 * len(pod_dirs)
    bad = create(["/nonexistent/systemd"])
    assert len(subdirs()) == 3 * len(pod_dirs)
    with pytest.raises(grpc.RpcError):
        d.rt.StartContainer(container_id=bad)
    for cid in (bad, on, auto, off, plain):
        d.rt.StopContainer(container_id=cid, timeout=0)
        d.rt.RemoveContainer(container_id=cid)
    assert subdirs() == []
    for u in unmanaged:
        assert not os.path.exists(u)
