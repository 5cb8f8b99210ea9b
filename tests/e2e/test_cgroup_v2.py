"""The cgroup v2 code path on the real kernel: this machine's controllers are
on v1, but a cgroup2 hierarchy is mounted (with no controllers) at
/sys/fs/cgroup/unified. Pointed there with cgroup_root, huskd takes its v2
path for everything that needs no controller: the cgroup tree, placement of
processes, cgroup.kill, the eBPF device filter and removal."""
import os

import pytest

from conftest import POD_CG_PARENT, pb
from pods import leftovers, pid_of, run_ctr, run_pod, status, wait_exited  # noqa: F401
from registry import registries  # noqa: F401

UNIFIED = "/sys/fs/cgroup/unified"


def cgroup2_mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(l.split()[4] == path and " - cgroup2 " in l for l in f)


pytestmark = pytest.mark.skipif(not cgroup2_mounted(UNIFIED),
                                reason=f"no cgroup2 hierarchy at {UNIFIED}")


def v2_path(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return [l.strip().split("::", 1)[1] for l in f if l.startswith("0::")][0]


def test_v2_tree_placement_devices_and_removal(daemon_factory, registries, tmp_path):
    d = daemon_factory({"cgroup_root": UNIFIED})
    ref = f"{registries.open.host}/test/busybox:latest"
    d.img.PullImage(image={"image": ref})
    pod, cfg = run_pod(d, tmp_path, linux={"security_context": {
        "namespace_options": {"pid": pb.POD}}})
    c = run_ctr(d, pod, cfg, ref, ["sleep", "1000"], linux={"security_context": {
        "namespace_options": {"pid": pb.POD}}})
    path = v2_path(pid_of(d, c))
    assert path == f"/{POD_CG_PARENT}/{pod}/{c}"
    assert os.path.isdir(UNIFIED + path)
    # The pod's init sits in a child cgroup: on v2 a cgroup with processes
    # of its own cannot have the container cgroups beneath it.
    import json
    init = json.loads(d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True).info["info"])["pid"]
    assert v2_path(init) == f"/{POD_CG_PARENT}/{pod}/init"
    # The eBPF device filter: mknod of a host disk works (CAP_MKNOD), opening
    # it does not; the standard nodes do.
    r = d.rt.ExecSync(container_id=c, cmd=["sh", "-c",
                      "mknod /tmp/sda b 8 0 && head -c1 /tmp/sda"], timeout=10)
    assert r.exit_code != 0 and b"Operation not permitted" in r.stderr, r
    r = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "head -c3 /dev/zero | wc -c"],
                      timeout=10)
    assert r.stdout.strip() == b"3"
    # A configured device is allowed.
    c2 = run_ctr(d, pod, cfg, ref, ["sleep", "1000"], devices=[
        {"container_path": "/dev/xnull", "host_path": "/dev/null", "permissions": "rw"}],
        linux={"security_context": {"namespace_options": {"pid": pb.POD}}})
    r = d.rt.ExecSync(container_id=c2, cmd=["sh", "-c", "echo x > /dev/xnull"], timeout=10)
    assert r.exit_code == 0, r
    # Stop goes through cgroup.kill; removal leaves no cgroup behind.
    d.rt.StopContainer(container_id=c, timeout=0)
    assert status(d, c).status.state == pb.CONTAINER_EXITED
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert not os.path.exists(f"{UNIFIED}/{POD_CG_PARENT}/{pod}")
    assert leftovers(d, [pod, c, c2]) == []
