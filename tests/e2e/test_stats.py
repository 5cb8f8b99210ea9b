"""ContainerStats and PodSandboxStats: every field the kubelet reads, against
the cgroup files: usage_nano_cores as a rate between samples, available
memory, process count, and the writable layer from a cache refreshed in the
background."""
import os
import time

import pytest

from conftest import pb  # noqa: F401
from pods import busybox, pid_of, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401
from test_resources import cg_path, read, v1_only

MIB = 1 << 20


def bracketed(d, cid, acct):
    """ContainerStats with the cgroup's CPU counter and the monotonic clock
    read just before and just after it."""
    u0, t0 = int(read(f"{acct}/cpuacct.usage")), time.monotonic_ns()
    s = d.rt.ContainerStats(container_id=cid).stats
    t1, u1 = time.monotonic_ns(), int(read(f"{acct}/cpuacct.usage"))
    return s, (u0, t0), (u1, t1)


def test_usage_nano_cores_is_the_rate_between_samples(daemon, busybox, tmp_path):  # noqa: F811
    v1_only()
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    busy = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "while :; do :; done"])
    idle = run_ctr(d, pod, cfg, busybox, ["sleep", "1000"])
    for cid in (busy, idle):
        acct = cg_path(pid_of(d, cid), "cpuacct")
        s1, b1, a1 = bracketed(d, cid, acct)
        # the first sample has nothing to compare with
        assert not s1.cpu.HasField("usage_nano_cores")
        assert b1[0] <= s1.cpu.usage_core_nano_seconds.value <= a1[0]
        time.sleep(1)
        s2, b2, a2 = bracketed(d, cid, acct)
        rate = s2.cpu.usage_nano_cores.value
        # huskd sampled inside each bracket, so its rate lies between these
        low = (b2[0] - a1[0]) * 1e9 / (a2[1] - b1[1])
        high = (a2[0] - b1[0]) * 1e9 / (b2[1] - a1[1])
        assert low - 1 <= rate <= high + 1, (cid, low, rate, high)
        if cid == idle:
            assert rate < 0.05e9
        # from now on every sample has a rate
        assert d.rt.ContainerStats(container_id=cid).stats.cpu.HasField("usage_nano_cores")
    # the pod has a rate of its own, from its cgroup
    d.rt.PodSandboxStats(pod_sandbox_id=pod)
    time.sleep(0.5)
    ps = d.rt.PodSandboxStats(pod_sandbox_id=pod).stats
    assert ps.linux.cpu.HasField("usage_nano_cores")
    assert ps.linux.cpu.usage_core_nano_seconds.value >= \
        sum(c.cpu.usage_core_nano_seconds.value for c in ps.linux.containers) - 5 * 10**8


def test_memory_fields_and_process_count(daemon, busybox, tmp_path):  # noqa: F811
    v1_only()
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    limited = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "sleep 1000 & sleep 1000 & wait"],
                      linux={"resources": {"memory_limit_in_bytes": 256 * MIB}})
    unlimited = run_ctr(d, pod, cfg, busybox, ["sleep", "1000"])
    mem = cg_path(pid_of(d, limited), "memory")
    deadline = time.time() + 20
    while len(read(f"{mem}/cgroup.procs").split()) < 3:
        assert time.time() < deadline
        time.sleep(0.1)
    s = d.rt.ContainerStats(container_id=limited).stats
    stat = dict(line.split() for line in read(f"{mem}/memory.stat").splitlines())
    usage = int(read(f"{mem}/memory.usage_in_bytes"))
    ws = s.memory.working_set_bytes.value
    assert abs(ws - (usage - int(stat["total_inactive_file"]))) < MIB
    assert s.memory.available_bytes.value == 256 * MIB - ws
    assert abs(s.memory.rss_bytes.value - int(stat["total_rss"])) < MIB
    assert s.memory.page_faults.value > 0
    assert s.memory.page_faults.value <= int(
        dict(line.split() for line in read(f"{mem}/memory.stat").splitlines())["total_pgfault"])
    assert not d.rt.ContainerStats(container_id=unlimited).stats.memory.HasField(
        "available_bytes")
    if "total_swap" in stat:
        assert s.swap.swap_usage_bytes.value == int(stat["total_swap"])
    # the pod counts processes, not threads: the shell, its two sleeps and
    # the other container's sleep
    pod_mem = os.path.dirname(mem)
    procs = set()
    for root, _, files in os.walk(pod_mem):
        if "cgroup.procs" in files:
            procs |= set(read(f"{root}/cgroup.procs").split())
    ps = d.rt.PodSandboxStats(pod_sandbox_id=pod).stats
    assert ps.linux.process.process_count.value == len(procs) >= 4
    # a pod without a network of its own but with loopback only: no
    # interfaces to report
    assert not ps.linux.HasField("network")


def test_writable_layer_comes_from_a_refreshed_cache(daemon_factory, busybox_factory,
                                                     tmp_path, monkeypatch):
    for refresh_ms, expect_fresh in ((None, False), (200, True)):
        if refresh_ms:
            monkeypatch.setenv("HUSK_USAGE_REFRESH_MS", str(refresh_ms))
        d = daemon_factory()
        image = busybox_factory(d)
        pod, cfg = run_pod(d, tmp_path)
        cid = run_ctr(d, pod, cfg, image, ["sleep", "1000"])
        first = d.rt.ContainerStats(container_id=cid).stats.writable_layer
        assert first.fs_id.mountpoint.endswith(f"/{cid}/upper")
        r = d.rt.ExecSync(container_id=cid, cmd=["dd", "if=/dev/zero", "of=/five", "bs=1M",
                                                 "count=5"])
        assert r.exit_code == 0
        if not expect_fresh:
            # no walk on this call: the default refresh is 10 s away
            again = d.rt.ContainerStats(container_id=cid).stats.writable_layer
            assert again.used_bytes.value == first.used_bytes.value
            assert again.timestamp == first.timestamp
        else:
            deadline = time.time() + 20
            while True:
                w = d.rt.ContainerStats(container_id=cid).stats.writable_layer
                if w.used_bytes.value >= first.used_bytes.value + 5 * MIB:
                    break
                assert time.time() < deadline, "the cache was never refreshed"
                time.sleep(0.1)
            assert w.inodes_used.value >= first.inodes_used.value + 1
            assert w.timestamp > first.timestamp
        d.rt.StopPodSandbox(pod_sandbox_id=pod)
        d.rt.RemovePodSandbox(pod_sandbox_id=pod)
        d.stop()


@pytest.fixture
def busybox_factory(registries):  # noqa: F811
    def pull(d):
        ref = f"{registries.open.host}/test/busybox:latest"
        d.img.PullImage(image={"image": ref})
        return ref
    return pull


def test_cgroup_v2_cpu_figures(daemon_factory, busybox_factory, tmp_path):
    """On this host's controller-less cgroup2 mount only cpu.stat's usage,
    user and system exist: the stats and metrics carry those, and no
    memory figures."""
    from test_cgroup_v2 import UNIFIED, cgroup2_mounted, v2_path
    if not cgroup2_mounted(UNIFIED):
        pytest.skip(f"no cgroup2 hierarchy at {UNIFIED}")
    d = daemon_factory({"cgroup_root": UNIFIED})
    image = busybox_factory(d)
    ns = {"security_context": {"namespace_options": {"pid": pb.POD}}}
    pod, cfg = run_pod(d, tmp_path, linux=ns)
    tick = os.sysconf("SC_CLK_TCK")
    cid = run_ctr(d, pod, cfg, image,
                  ["sh", "-c", "while :; do read -r s < /proc/$$/stat; set -- ${s##*) }; "
                               f"[ $(( ${{12}} )) -ge {tick} ] && break; done; "
                               "touch /tmp/done; exec sleep 1000"], linux=ns)
    deadline = time.time() + 120
    while d.rt.ExecSync(container_id=cid, cmd=["test", "-e", "/tmp/done"]).exit_code != 0:
        assert time.time() < deadline
        time.sleep(0.5)
    cg = "/sys/fs/cgroup/unified" + v2_path(pid_of(d, cid))
    cpu = dict(line.split() for line in read(f"{cg}/cpu.stat").splitlines())
    s = d.rt.ContainerStats(container_id=cid).stats
    assert s.cpu.usage_core_nano_seconds.value == int(cpu["usage_usec"]) * 1000
    assert int(cpu["usage_usec"]) >= 10**6
    assert not s.memory.HasField("usage_bytes")
    descs = {m.name: m for m in d.rt.ListMetricDescriptors().descriptors}
    pm = [p for p in d.rt.ListPodSandboxMetrics().pod_metrics if p.pod_sandbox_id == pod][0]
    got = {m.name: m.value.value for c in pm.container_metrics for m in c.metrics}
    assert got["container_cpu_user_seconds_total"] == int(cpu["user_usec"]) // 10**6 >= 1
    assert got["container_cpu_system_seconds_total"] == int(cpu["system_usec"]) // 10**6
    assert "container_memory_usage_bytes" not in got
    assert set(got) <= set(descs)


def test_status_and_stats_of_a_container_whose_cgroup_is_gone(daemon, busybox, tmp_path):  # noqa: F811
    """A running container's cgroup removed under huskd (its process moved
    out first, as an admin's tool or a node agent might): ContainerStatus
    and the stats calls answer with what they can read, and huskd stays up.
    (The reads these calls make after the lookup took no error object and
    dereferenced it when they failed: huskd died of SIGSEGV when a status
    read raced a container's exit; UBSan in make asan named the line.)"""
    v1_only()
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sleep", "1000"])
    pid = pid_of(d, c)
    moved = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            if not ctrls or path in ("", "/"):
                continue
            name = ctrls.replace("name=", "")
            leaf = f"/sys/fs/cgroup/{name}{path}"
            if not os.path.isdir(leaf):
                continue
            with open(os.path.join(os.path.dirname(leaf), "cgroup.procs"), "w") as p:
                p.write(str(pid))
            moved.append(leaf)
    assert moved
    for leaf in moved:
        os.rmdir(leaf)
    st = d.rt.ContainerStatus(container_id=c).status
    assert st.state == pb.CONTAINER_RUNNING
    d.rt.ContainerStats(container_id=c)
    d.rt.ListContainerStats()
    d.rt.PodSandboxStats(pod_sandbox_id=pod)
    d.rt.ListPodSandboxStats()
    assert d.proc.poll() is None
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert not os.path.exists(f"/proc/{pid}")
