"""Resources on the real kernel (cgroup v1 here; v2 is covered by the unit
tests against a directory): every LinuxContainerResources field in the
container's cgroup files before and after UpdateContainerResources, the pod
cgroup from RunPodSandbox and UpdatePodSandboxResources, oom_score_adj and
its clamp, ContainerStatus, an OOM kill, and refusals that leave nothing."""
import os
import time

import grpc
import pytest

from conftest import POD_CG_PARENT
from pods import (busybox, ctr_config, expect_error, leftovers, pid_of, run_ctr,  # noqa: F401
                  run_pod, status, wait_exited)
from registry import registries  # noqa: F401

# The tests that make containers run once per RuntimeClass handler.
pytestmark = pytest.mark.per_handler

E = grpc.StatusCode
SLEEP = ["sleep", "1000"]
CG = "/sys/fs/cgroup"
MiB = 1 << 20


def v1_only():
    if not os.path.isdir(f"{CG}/memory"):
        pytest.skip("cgroup v1 only")


def cg_path(pid, controller):
    """The cgroup directory of pid for a v1 controller."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if controller in ctrls.split(","):
                return f"{CG}/{controller}{path}"
    raise AssertionError(f"no {controller} cgroup for {pid}")


def read(path):
    with open(path) as f:
        return f.read().strip()


def files(pid):
    cpu, mem = cg_path(pid, "cpu"), cg_path(pid, "memory")
    cpuset, pids = cg_path(pid, "cpuset"), cg_path(pid, "pids")
    return {
        "period": read(f"{cpu}/cpu.cfs_period_us"),
        "quota": read(f"{cpu}/cpu.cfs_quota_us"),
        "shares": read(f"{cpu}/cpu.shares"),
        "memory": read(f"{mem}/memory.limit_in_bytes"),
        "memsw": read(f"{mem}/memory.memsw.limit_in_bytes")
        if os.path.exists(f"{mem}/memory.memsw.limit_in_bytes") else None,
        "cpus": read(f"{cpuset}/cpuset.cpus"),
        "mems": read(f"{cpuset}/cpuset.mems"),
        "pids": read(f"{pids}/pids.max"),
        "oom": read(f"/proc/{pid}/oom_score_adj"),
    }


def hugepage_sizes():
    """The sizes the kernel knows, named as CRI names them ("2MB")."""
    out = []
    base = "/sys/kernel/mm/hugepages"
    for n in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        kb = int(n.split("-")[1][:-2])
        for unit, div in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kb % div == 0:
                out.append((f"{kb // div}{unit}", f"{base}/{n}"))
                break
    return out


def hugetlb_mounted():
    return os.path.isdir(f"{CG}/hugetlb")


def child_cgroups(pod):
    out = set()
    for ctl in ("memory", "cpu", "pids", "cpuset"):
        p = f"{CG}/{ctl}/{POD_CG_PARENT}/{pod}"
        if os.path.isdir(p):
            out |= {f"{ctl}/{n}" for n in os.listdir(p) if os.path.isdir(os.path.join(p, n))}
    return out


def create_refused(d, pod, cfg, image, code, **kw):
    ctr_dir = os.path.join(d.state, "containers")
    before = (set(os.listdir(ctr_dir)), child_cgroups(pod), len(leftovers(d, [])),
              len(d.rt.ListContainers().containers))
    msg = expect_error(code, d.rt.CreateContainer, pod_sandbox_id=pod,
                       config=ctr_config(image, SLEEP, **kw), sandbox_config=cfg)
    after = (set(os.listdir(ctr_dir)), child_cgroups(pod), len(leftovers(d, [])),
             len(d.rt.ListContainers().containers))
    assert after == before, (before, after)
    return msg


def res(**kw):
    return {"linux": {"resources": kw}}


def test_container_resources_and_update(daemon_factory, busybox, tmp_path):
    v1_only()
    d = daemon_factory({"pids_limit": 77})
    d.img.PullImage(image={"image": busybox})
    pod, cfg = run_pod(d, tmp_path)
    huge = [{"page_size": size, "limit": 0} for size, _ in hugepage_sizes()]
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **res(
        cpu_period=100000, cpu_quota=50000, cpu_shares=512, memory_limit_in_bytes=64 * MiB,
        memory_swap_limit_in_bytes=64 * MiB, cpuset_cpus="0", cpuset_mems="0",
        oom_score_adj=500, hugepage_limits=huge))
    pid = pid_of(d, c)
    got = files(pid)
    assert got == {"period": "100000", "quota": "50000", "shares": "512",
                   "memory": str(64 * MiB), "memsw": str(64 * MiB) if got["memsw"] else None,
                   "cpus": "0", "mems": "0", "pids": "77", "oom": "500"}
    # The container's cgroup sits in the pod's.
    assert cg_path(pid, "memory") == f"{CG}/memory/{POD_CG_PARENT}/{pod}/{c}"
    st = status(d, c).status.resources.linux
    assert (st.cpu_period, st.cpu_quota, st.cpu_shares) == (100000, 50000, 512)
    assert (st.memory_limit_in_bytes, st.cpuset_cpus, st.cpuset_mems) == (64 * MiB, "0", "0")
    assert st.oom_score_adj == 500
    if got["memsw"]:
        assert st.memory_swap_limit_in_bytes == 64 * MiB
    if hugetlb_mounted():
        assert {(h.page_size, h.limit) for h in st.hugepage_limits} >= {
            (h["page_size"], 0) for h in huge}

    # Live update of every cgroup field.
    d.rt.UpdateContainerResources(container_id=c, linux={
        "cpu_period": 200000, "cpu_quota": 20000, "cpu_shares": 256,
        "memory_limit_in_bytes": 96 * MiB, "memory_swap_limit_in_bytes": 96 * MiB,
        "cpuset_cpus": "0-1", "cpuset_mems": "0"})
    got = files(pid)
    assert (got["period"], got["quota"], got["shares"]) == ("200000", "20000", "256")
    assert (got["memory"], got["cpus"]) == (str(96 * MiB), "0-1")
    if got["memsw"]:
        assert got["memsw"] == str(96 * MiB)
    assert got["oom"] == "500"  # not a cgroup setting: unchanged
    st = status(d, c).status.resources.linux
    assert (st.cpu_period, st.cpu_quota, st.cpu_shares) == (200000, 20000, 256)
    assert (st.memory_limit_in_bytes, st.cpuset_cpus) == (96 * MiB, "0-1")
    # Unset fields (0) are left alone; -1 lifts a quota.
    d.rt.UpdateContainerResources(container_id=c, linux={"cpu_quota": -1})
    got = files(pid)
    assert (got["quota"], got["shares"], got["memory"]) == ("-1", "256", str(96 * MiB))
    assert status(d, c).status.resources.linux.cpu_quota == 0  # no limit reads as unset


def test_unlimited_reads_as_unset(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    st = status(d, c).status.resources.linux
    assert st.memory_limit_in_bytes == 0 and st.cpu_quota == 0
    assert st.memory_swap_limit_in_bytes == 0
    assert st.cpu_shares == 1024 and st.cpu_period == 100000  # the kernel's defaults
    # Update of an unknown container.
    expect_error(E.NOT_FOUND, d.rt.UpdateContainerResources, container_id="f" * 64,
                 linux={"cpu_shares": 2})


def test_cpuset_levels_do_not_balance(daemon, busybox, tmp_path):
    """Each cpuset level husk makes (pod, container) has sched_load_balance
    0 and no clone_children, and its parent's cpus and mems: a level that
    balances rebuilds the scheduler domains, a walk of every cpuset on the
    node, when its cpus are written and again when it is removed (O(pods)
    per teardown, issue 12). The top cpuset balances every CPU, so the
    scheduler's domains are the same."""
    v1_only()
    top = f"{CG}/cpuset"
    if read(f"{top}/cpuset.sched_load_balance") != "1":
        pytest.skip("the top cpuset does not balance: husk leaves the flag on")
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    ctr = cg_path(pid_of(d, c), "cpuset")
    pod_dir = os.path.dirname(ctr)
    assert os.path.basename(pod_dir) == pod
    for level in (ctr, pod_dir):
        assert read(f"{level}/cpuset.sched_load_balance") == "0", level
        assert read(f"{level}/cgroup.clone_children") == "0", level
        parent = os.path.dirname(level)
        for f in ("cpuset.cpus", "cpuset.mems"):
            assert read(f"{level}/{f}") == read(f"{parent}/{f}") != "", (level, f)
    # The container runs there, and may be given cpus of its own.
    d.rt.UpdateContainerResources(container_id=c, linux={"cpuset_cpus": "0"})
    assert read(f"{ctr}/cpuset.cpus") == "0"
    assert status(d, c).status.state == 1  # CONTAINER_RUNNING


def test_oom_score_adj_clamped(daemon, busybox, tmp_path):
    d = daemon
    own = int(read(f"/proc/{d.proc.pid}/oom_score_adj"))
    pod, cfg = run_pod(d, tmp_path)
    # Lowering below huskd's own needs CAP_SYS_RESOURCE, which this host
    # lacks: clamped to huskd's value (and logged), not refused.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **res(oom_score_adj=-998))
    pid = pid_of(d, c)
    want = -998 if own <= -998 else own
    assert int(read(f"/proc/{pid}/oom_score_adj")) == want
    assert status(d, c).status.resources.linux.oom_score_adj == want
    if want != -998:
        assert "oom_score_adj" in d.logs() and "clamped" in d.logs()
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **res(oom_score_adj=1000))
    assert read(f"/proc/{pid_of(d, c)}/oom_score_adj") == "1000"
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **res(oom_score_adj=1001))
    assert "oom_score_adj" in msg


def test_refused_resources_leave_nothing(daemon, busybox, tmp_path):
    v1_only()
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    # A limit the kernel rejects: a CPU this machine does not have.
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **res(cpuset_cpus="63"))
    assert "cpuset.cpus" in msg and "'63'" in msg
    # unified is cgroup v2 only.
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                         **res(unified={"memory.high": "100000000"}))
    assert "memory.high" in msg and "v2" in msg
    # Out of range, refused before the kernel sees them.
    for kw, word in ((dict(cpu_shares=1), "shares"), (dict(cpu_period=5000000), "period"),
                     (dict(memory_limit_in_bytes=64 * MiB, memory_swap_limit_in_bytes=32 * MiB),
                      "swap"),
                     (dict(hugepage_limits=[{"page_size": "2M", "limit": 0}]), "'2M'")):
        msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **res(**kw))
        assert word in msg, msg
    # A hugepage limit without the hugetlb controller cannot hold (a limit
    # of 0 holds while the host's pool is empty: see the first test).
    if not hugetlb_mounted():
        for size in [s for s, _ in hugepage_sizes()] + ["3MB"]:
            msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **res(
                hugepage_limits=[{"page_size": size, "limit": 4 * MiB}]))
            assert f"{size}={4 * MiB}" in msg and "hugetlb" in msg, msg
    # An update the kernel refuses leaves the old value in force.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **res(cpuset_cpus="0"))
    msg = expect_error(E.INVALID_ARGUMENT, d.rt.UpdateContainerResources, container_id=c,
                       linux={"cpuset_cpus": "63"})
    assert "cpuset.cpus" in msg and c in msg
    assert status(d, c).status.resources.linux.cpuset_cpus == "0"
    msg = expect_error(E.INVALID_ARGUMENT, d.rt.UpdateContainerResources, container_id=c,
                       linux={"unified": {"pids.max": "5"}})
    assert "pids.max" in msg
    # A memory limit below what the container holds (no swap to push it to).
    big = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "x=$(head -c 30000000 /dev/zero | tr '\\0' a);"
                                         " echo held; sleep 1000; echo ${#x}"],
                  **res(memory_limit_in_bytes=200 * MiB, memory_swap_limit_in_bytes=200 * MiB))
    deadline = time.time() + 20
    while "held" not in open(os.path.join(cfg["log_directory"], status(d, big).status.log_path
                                          .split("/")[-1])).read():
        assert time.time() < deadline
        time.sleep(0.1)
    msg = expect_error(E.INVALID_ARGUMENT, d.rt.UpdateContainerResources, container_id=big,
                       linux={"memory_limit_in_bytes": 4 * MiB,
                              "memory_swap_limit_in_bytes": 4 * MiB})
    assert "memory" in msg and str(4 * MiB) in msg, msg
    assert status(d, big).status.resources.linux.memory_limit_in_bytes == 200 * MiB


def test_memory_hog_is_oom_killed(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "x=a; while :; do x=$x$x; done"],
                **res(memory_limit_in_bytes=32 * MiB, memory_swap_limit_in_bytes=32 * MiB))
    st = wait_exited(d, c, timeout=60)
    assert st.reason == "OOMKilled", (st.reason, st.exit_code, st.message)
    assert st.exit_code == 137
    # A container that exits by itself under the same limit is not.
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "exit 3"],
                **res(memory_limit_in_bytes=32 * MiB))
    st = wait_exited(d, c)
    assert (st.reason, st.exit_code) == ("Error", 3)


def test_pod_resources_and_update(daemon, busybox, tmp_path):
    v1_only()
    d = daemon
    resources = {"cpu_period": 100000, "cpu_quota": 100000, "cpu_shares": 1024,
                 "memory_limit_in_bytes": 128 * MiB, "cpuset_cpus": "0-1"}
    overhead = {"cpu_period": 100000, "cpu_quota": 10000, "cpu_shares": 100,
                "memory_limit_in_bytes": 16 * MiB}
    pod, cfg = run_pod(d, tmp_path, linux={"resources": resources, "overhead": overhead})
    base = f"{POD_CG_PARENT}/{pod}"
    assert read(f"{CG}/cpu/{base}/cpu.shares") == "1124"
    assert read(f"{CG}/cpu/{base}/cpu.cfs_quota_us") == "110000"
    assert read(f"{CG}/cpu/{base}/cpu.cfs_period_us") == "100000"
    assert read(f"{CG}/memory/{base}/memory.limit_in_bytes") == str(144 * MiB)
    assert read(f"{CG}/cpuset/{base}/cpuset.cpus") == "0-1"
    # Containers live beneath it, within its limits.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **res(memory_limit_in_bytes=64 * MiB))
    assert cg_path(pid_of(d, c), "memory") == f"{CG}/memory/{base}/{c}"
    # In-place resize of the pod.
    d.rt.UpdatePodSandboxResources(pod_sandbox_id=pod, resources=dict(
        resources, cpu_quota=200000, cpu_shares=2048, memory_limit_in_bytes=256 * MiB),
        overhead=overhead)
    assert read(f"{CG}/cpu/{base}/cpu.shares") == "2148"
    assert read(f"{CG}/cpu/{base}/cpu.cfs_quota_us") == "210000"
    assert read(f"{CG}/memory/{base}/memory.limit_in_bytes") == str(272 * MiB)
    # Only resources, no overhead; nothing at all is a no-op.
    d.rt.UpdatePodSandboxResources(pod_sandbox_id=pod, resources={"cpu_shares": 512})
    assert read(f"{CG}/cpu/{base}/cpu.shares") == "512"
    d.rt.UpdatePodSandboxResources(pod_sandbox_id=pod)
    # Errors.
    expect_error(E.NOT_FOUND, d.rt.UpdatePodSandboxResources, pod_sandbox_id="f" * 64,
                 resources={"cpu_shares": 512})
    expect_error(E.NOT_FOUND, d.rt.UpdatePodSandboxResources, pod_sandbox_id="f" * 64)
    msg = expect_error(E.INVALID_ARGUMENT, d.rt.UpdatePodSandboxResources, pod_sandbox_id=pod,
                       resources={"cpuset_cpus": "63"})
    assert "cpuset.cpus" in msg
    assert read(f"{CG}/cpuset/{base}/cpuset.cpus") == "0-1"
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    msg = expect_error(E.FAILED_PRECONDITION, d.rt.UpdatePodSandboxResources,
                       pod_sandbox_id=pod, resources={"cpu_shares": 512})
    assert pod in msg
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c]) == []


def test_pod_resources_refused_leave_nothing(daemon, tmp_path):
    v1_only()
    d = daemon
    pods_dir = os.path.join(d.state, "pods")
    parent = POD_CG_PARENT
    husk_dirs = {ctl: set(os.listdir(f"{CG}/{ctl}/{parent}"))
                 if os.path.isdir(f"{CG}/{ctl}/{parent}") else set()
                 for ctl in ("cpu", "memory", "cpuset")}
    for bad, word in (({"cpuset_cpus": "63"}, "cpuset.cpus"),
                      ({"cpu_shares": 1}, "shares"),
                      ({"unified": {"memory.high": "1"}}, "memory.high"),
                      ({"oom_score_adj": -2000}, "oom_score_adj")):
        msg = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path,
                           linux={"resources": bad})
        assert word in msg, msg
    assert not d.rt.ListPodSandbox().items
    assert not os.path.isdir(pods_dir) or os.listdir(pods_dir) == []
    for ctl, before in husk_dirs.items():
        now = (set(os.listdir(f"{CG}/{ctl}/{parent}"))
               if os.path.isdir(f"{CG}/{ctl}/{parent}") else set())
        assert now <= before, (ctl, now - before)
