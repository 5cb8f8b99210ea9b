"""Pods and containers on the real kernel: namespaces, confinement, logs,
exec, stop, restart of huskd, and nothing left behind."""
import json
import os
import re
import signal
import time

import grpc
import pytest

from conftest import pb
from pods import (busybox, ctr_config, expect_error, leftovers, ns_inode, pid_of,  # noqa: F401
                  proc_status, run_ctr, run_pod, run_trapping, status, wait_exited)
from registry import registries  # noqa: F401

# The tests that make containers run once per RuntimeClass handler.
pytestmark = pytest.mark.per_handler

SLEEP = ["sleep", "1000"]
DEFAULT_CAPS = "00000000a80425fb"
# As the kubelet sends it: a security context carries the masked and
# read-only path lists (an empty list would mean none).
RUNTIME_DEFAULT = {"linux": {"security_context": {
    "seccomp": {"profile_type": pb.SecurityProfile.RuntimeDefault}, "no_new_privs": True,
    "masked_paths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                     "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                     "/proc/scsi", "/sys/firmware"],
    "readonly_paths": ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                       "/proc/sysrq-trigger"]}}}


def test_pod_lifecycle_status_list(daemon, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, labels={"app": "web"}, annotations={"a": "b"})
    st = d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True)
    assert st.status.id == pod
    assert st.status.state == pb.SANDBOX_READY
    assert st.status.metadata.name == cfg["metadata"]["name"]
    assert st.status.labels["app"] == "web" and st.status.annotations["a"] == "b"
    assert st.status.linux.namespaces.options.network == pb.POD
    info = json.loads(st.info["info"])
    net_pin = info["namespaces"]["network"]
    # The pinned namespaces are real and not the host's.
    assert os.stat(net_pin).st_ino != os.stat("/proc/self/ns/net").st_ino
    # Prefix lookup, list filters.
    assert d.rt.PodSandboxStatus(pod_sandbox_id=pod[:12]).status.id == pod
    items = d.rt.ListPodSandbox(filter={"label_selector": {"app": "web"}}).items
    assert [p.id for p in items] == [pod]
    assert not d.rt.ListPodSandbox(filter={"label_selector": {"app": "db"}}).items
    ready = {"state": {"state": pb.SANDBOX_READY}}
    assert [p.id for p in d.rt.ListPodSandbox(filter=ready).items] == [pod]
    # Same metadata twice is refused, naming the first.
    details = expect_error(grpc.StatusCode.ALREADY_EXISTS, d.rt.RunPodSandbox, config=cfg)
    assert pod in details
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.StopPodSandbox(pod_sandbox_id=pod)  # idempotent
    assert d.rt.PodSandboxStatus(pod_sandbox_id=pod).status.state == pb.SANDBOX_NOTREADY
    assert not d.rt.ListPodSandbox(filter=ready).items
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)  # unknown is fine
    expect_error(grpc.StatusCode.NOT_FOUND, d.rt.PodSandboxStatus, pod_sandbox_id=pod)
    assert not os.path.exists(net_pin)
    assert leftovers(d, [pod]) == []


def test_container_basics_logs_and_exit_code(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, hostname="web-0")
    script = "echo out-line; echo err-line >&2; printf partial; hostname; exit 3"
    c = run_ctr(d, pod, cfg, busybox, ["/bin/sh", "-c", script], log_path="c.log",
                labels={"tier": "x"})
    st = wait_exited(d, c)
    assert st.exit_code == 3
    assert st.reason == "Error"
    assert st.started_at > 0 and st.finished_at >= st.started_at
    assert st.image.image == busybox and st.image_ref.startswith(busybox.split("/")[0])
    assert st.labels["tier"] == "x"
    log = open(os.path.join(cfg["log_directory"], "c.log")).read().splitlines()
    line = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z (stdout|stderr) (F|P) (.*)$")
    parsed = [line.match(x).groups() for x in log]
    assert ("stdout", "F", "out-line") in parsed
    assert ("stderr", "F", "err-line") in parsed
    # "partial" has no newline of its own before hostname's output.
    assert ("stdout", "F", "partialweb-0") in parsed or ("stdout", "P", "partial") in parsed
    # A clean exit is Completed.
    c2 = run_ctr(d, pod, cfg, busybox, ["true"])
    st2 = wait_exited(d, c2)
    assert (st2.exit_code, st2.reason) == (0, "Completed")
    cs = d.rt.ListContainers(filter={"pod_sandbox_id": pod}).containers
    assert sorted(x.id for x in cs) == sorted([c, c2])
    assert [x.id for x in d.rt.ListContainers(filter={"label_selector": {"tier": "x"}}).containers] == [c]


def test_namespaces_shared_and_private(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    a = run_ctr(d, pod, cfg, busybox, SLEEP)
    b = run_ctr(d, pod, cfg, busybox, SLEEP)
    pa, pb_ = pid_of(d, a), pid_of(d, b)
    for kind in ("net", "ipc", "uts"):
        assert ns_inode(pa, kind) == ns_inode(pb_, kind), kind
        assert ns_inode(pa, kind) != ns_inode(os.getpid(), kind), kind
    for kind in ("mnt", "pid"):
        assert ns_inode(pa, kind) != ns_inode(pb_, kind), kind
    # Each container sees only its own processes: it is PID 1 there.
    out = d.rt.ExecSync(container_id=a, cmd=["ps", "-o", "pid,comm"], timeout=10)
    assert out.exit_code == 0
    pids = [l.split()[0] for l in out.stdout.decode().splitlines()[1:]]
    assert "1" in pids and len(pids) <= 3, out.stdout
    host = d.rt.ExecSync(container_id=a, cmd=["hostname"], timeout=10).stdout.decode().strip()
    assert host == cfg["hostname"]


def test_confinement_caps_nnp_seccomp_masked(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **RUNTIME_DEFAULT)
    s = proc_status(pid_of(d, c))
    assert s["CapEff"] == DEFAULT_CAPS and s["CapBnd"] == DEFAULT_CAPS
    assert s["NoNewPrivs"] == "1"
    assert s["Seccomp"] == "2"
    # The same from inside, through ExecSync.
    out = d.rt.ExecSync(container_id=c, cmd=["cat", "/proc/self/status"], timeout=10)
    assert f"CapEff:\t{DEFAULT_CAPS}" in out.stdout.decode()
    # Masked paths read as empty or are refused; read-only ones refuse writes.
    kcore = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "wc -c < /proc/kcore"], timeout=10)
    assert kcore.stdout.decode().strip() in ("0", "") or kcore.exit_code != 0
    sysrq = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "echo h > /proc/sysrq-trigger"],
                          timeout=10)
    assert sysrq.exit_code != 0
    # /sys is read-only.
    w = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "touch /sys/kernel/x"], timeout=10)
    assert w.exit_code != 0


def test_exec_sync_output_exit_code_timeout(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    r = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "echo a; echo b >&2; exit 7"], timeout=10)
    assert (r.stdout, r.stderr, r.exit_code) == (b"a\n", b"b\n", 7)
    big = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "head -c 3000000 /dev/zero"], timeout=20)
    assert len(big.stdout) == 3000000
    t0 = time.time()
    details = expect_error(grpc.StatusCode.DEADLINE_EXCEEDED, d.rt.ExecSync, container_id=c,
                           cmd=["sleep", "30"], timeout=1)
    assert time.time() - t0 < 10
    assert "timed out" in details
    # The timed-out process is gone; no zombie or sleeper left in the container.
    ps = d.rt.ExecSync(container_id=c, cmd=["ps", "-o", "comm"], timeout=10).stdout.decode()
    assert ps.count("sleep") == 1, ps  # the container's own
    # A command that is not in the image: the container is there, the file
    # is not (FAILED_PRECONDITION, as at StartContainer; NOT_FOUND would say
    # the container is unknown). Whatever the handler.
    details = expect_error(grpc.StatusCode.FAILED_PRECONDITION, d.rt.ExecSync, container_id=c,
                           cmd=["/bin/nope"], timeout=5)
    assert "/bin/nope" in details


def test_cgroup_memory_limit(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP, linux={"resources": {
        "memory_limit_in_bytes": 64 << 20, "cpu_shares": 512}})
    pid = pid_of(d, c)
    with open(f"/proc/{pid}/cgroup") as f:
        mem = [l.split(":", 2)[2].strip() for l in f if ":memory:" in l]
    if mem:  # cgroup v1
        limit = open(f"/sys/fs/cgroup/memory{mem[0]}/memory.limit_in_bytes").read().strip()
        assert int(limit) == 64 << 20
        assert c in mem[0] and pod in mem[0]
    else:
        path = open(f"/proc/{pid}/cgroup").read().strip().split("::", 1)[1]
        assert open(f"/sys/fs/cgroup{path}/memory.max").read().strip() == str(64 << 20)
    res = status(d, c).status.resources.linux
    assert res.memory_limit_in_bytes == 64 << 20
    # Live update.
    d.rt.UpdateContainerResources(container_id=c, linux={"memory_limit_in_bytes": 96 << 20})
    assert status(d, c).status.resources.linux.memory_limit_in_bytes == 96 << 20


def test_stop_timeout_then_sigkill(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    # Ignores SIGTERM: only SIGKILL ends it.
    c = run_trapping(d, pod, cfg, busybox, "trap '' TERM")
    t0 = time.time()
    d.rt.StopContainer(container_id=c, timeout=2)
    took = time.time() - t0
    st = status(d, c).status
    assert st.state == pb.CONTAINER_EXITED
    assert st.exit_code == 137
    assert 1.5 < took < 12, took
    # A well-behaved one stops at once on SIGTERM.
    c2 = run_trapping(d, pod, cfg, busybox, "trap 'exit 0' TERM")
    t0 = time.time()
    d.rt.StopContainer(container_id=c2, timeout=30)
    assert time.time() - t0 < 5
    assert status(d, c2).status.exit_code == 0
    d.rt.StopContainer(container_id=c2, timeout=30)  # idempotent


def test_huskd_sigkill_and_restart_keeps_container(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done"],
                log_path="ticks.log")
    short = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "sleep 2; exit 5"])
    pid = pid_of(d, c)
    log = os.path.join(cfg["log_directory"], "ticks.log")
    d.kill()
    n0 = len(open(log).read().splitlines())
    time.sleep(3)
    assert os.path.exists(f"/proc/{pid}")  # kept running without huskd
    assert len(open(log).read().splitlines()) > n0  # and kept logging
    d.start()
    st = status(d, c).status
    assert st.state == pb.CONTAINER_RUNNING
    assert pid_of(d, c) == pid
    assert d.rt.PodSandboxStatus(pod_sandbox_id=pod).status.state == pb.SANDBOX_READY
    # The one that exited while huskd was down reports its real exit.
    st2 = wait_exited(d, short)
    assert st2.exit_code == 5
    assert st2.finished_at - st2.started_at >= 1.5e9
    d.rt.StopContainer(container_id=c, timeout=1)
    assert status(d, c).status.state == pb.CONTAINER_EXITED


def test_errors(daemon, busybox, tmp_path, registries):
    d = daemon
    E = grpc.StatusCode
    expect_error(E.NOT_FOUND, d.rt.ContainerStatus, container_id="f" * 64)
    expect_error(E.NOT_FOUND, d.rt.StopPodSandbox, pod_sandbox_id="f" * 64)
    expect_error(E.INVALID_ARGUMENT, d.rt.RunPodSandbox, config={"metadata": {"name": ""}})
    pod, cfg = run_pod(d, tmp_path)
    before = set(os.listdir(os.path.join(d.state, "containers")))
    # Bad mounts, missing image, unknown pod: refused, nothing left.
    msg = expect_error(E.INVALID_ARGUMENT, d.rt.CreateContainer, pod_sandbox_id=pod,
                       config=ctr_config(busybox, SLEEP, mounts=[{"container_path": "/data",
                                                                  "host_path": "relative/x"}]),
                       sandbox_config=cfg)
    assert "relative/x" in msg
    msg = expect_error(E.INVALID_ARGUMENT, d.rt.CreateContainer, pod_sandbox_id=pod,
                       config=ctr_config(busybox, SLEEP, mounts=[{"container_path": "/data",
                                                                  "host_path": "/nonexistent/x"}]),
                       sandbox_config=cfg)
    assert "/nonexistent/x" in msg
    missing = f"{registries.open.host}/test/none:latest"
    msg = expect_error(E.FAILED_PRECONDITION, d.rt.CreateContainer, pod_sandbox_id=pod,
                       config=ctr_config(missing, SLEEP), sandbox_config=cfg)
    assert missing in msg
    expect_error(E.NOT_FOUND, d.rt.CreateContainer, pod_sandbox_id="0" * 64,
                 config=ctr_config(busybox, SLEEP), sandbox_config=cfg)
    # Start of a missing binary: the launcher's error, and the container EXITED.
    # The exec's ENOENT is not an unknown container: FAILED_PRECONDITION, not
    # NOT_FOUND, which is kept for unknown objects.
    c = run_ctr(d, pod, cfg, busybox, ["/bin/nope"], start=False)
    msg = expect_error(E.FAILED_PRECONDITION, d.rt.StartContainer, container_id=c)
    assert "/bin/nope" in msg
    st = status(d, c).status
    assert st.state == pb.CONTAINER_EXITED and st.reason == "StartError"
    # Double start.
    c2 = run_ctr(d, pod, cfg, busybox, SLEEP)
    msg = expect_error(E.FAILED_PRECONDITION, d.rt.StartContainer, container_id=c2)
    assert c2 in msg
    # Same name and attempt twice.
    name_cfg = ctr_config(busybox, SLEEP, name="dup")
    d.rt.CreateContainer(pod_sandbox_id=pod, config=name_cfg, sandbox_config=cfg)
    expect_error(E.ALREADY_EXISTS, d.rt.CreateContainer, pod_sandbox_id=pod, config=name_cfg,
                 sandbox_config=cfg)
    after = set(os.listdir(os.path.join(d.state, "containers")))
    assert len(after - before) == 3  # c, c2, dup: the refused ones left nothing
    # A container in a stopped pod.
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    assert status(d, c2).status.state == pb.CONTAINER_EXITED
    msg = expect_error(E.FAILED_PRECONDITION, d.rt.CreateContainer, pod_sandbox_id=pod,
                       config=ctr_config(busybox, SLEEP), sandbox_config=cfg)
    assert pod in msg
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c, c2]) == []


def test_stats(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "head -c 20000000 /dev/zero > /tmp/f; sleep 1000"])
    # The write takes a while on a loaded machine: wait for the layer to
    # show it rather than for a fixed time.
    deadline = time.time() + 60
    while True:
        s = d.rt.ContainerStats(container_id=c).stats
        if s.writable_layer.used_bytes.value >= 20000000 or time.time() > deadline:
            break
        time.sleep(0.2)
    assert s.attributes.id == c
    assert s.cpu.usage_core_nano_seconds.value > 0
    assert s.memory.usage_bytes.value > 0
    assert s.writable_layer.used_bytes.value >= 20000000
    ps = d.rt.PodSandboxStats(pod_sandbox_id=pod).stats
    assert ps.attributes.id == pod
    assert ps.linux.memory.usage_bytes.value >= s.memory.working_set_bytes.value
    assert [x.attributes.id for x in ps.linux.containers] == [c]
    assert [x.attributes.id for x in d.rt.ListContainerStats().stats] == [c]
    assert [x.attributes.id for x in d.rt.ListPodSandboxStats().stats] == [pod]


def test_events_stream(daemon, busybox, tmp_path):
    d = daemon
    stream = d.rt.GetContainerEvents(_timeout=60)
    time.sleep(0.3)
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["true"])
    wait_exited(d, c)
    d.rt.RemoveContainer(container_id=c)
    want = [pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT, pb.CONTAINER_STOPPED_EVENT,
            pb.CONTAINER_DELETED_EVENT]
    got = []
    for ev in stream:
        if ev.container_id == c:
            got.append(ev.container_event_type)
        if len(got) == len(want):
            break
    stream.cancel()
    assert got == want


def test_20_pods_leave_nothing(daemon, busybox, tmp_path):
    d = daemon
    ids = []
    for i in range(20):
        pod, cfg = run_pod(d, tmp_path, linux={"security_context": {
            "namespace_options": {"pid": pb.POD if i % 2 else pb.CONTAINER}}})
        c = run_ctr(d, pod, cfg, busybox, SLEEP)
        ids += [pod, c]
        d.rt.StopPodSandbox(pod_sandbox_id=pod)
        d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, ids) == []
    assert not d.rt.ListPodSandbox().items and not d.rt.ListContainers().containers


def test_long_root_path(daemon_factory, registries, tmp_path):
    # Overlay options grow with the root's path; a long one must still fit.
    d = daemon_factory(start=False)
    # Inside the daemon's base, which the fixture removes after its teardown.
    d.args += ["--root", os.path.join(d.base, "husk-long-root-" + "x" * 120)]
    d.start()
    ref = f"{registries.open.host}/test/busybox:latest"
    d.img.PullImage(image={"image": ref})
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, ref, ["true"])
    assert wait_exited(d, c).exit_code == 0
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)


def test_config_merge_mounts_devices_user(daemon, registries, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "hello").write_text("from host\n")
    c = run_ctr(d, pod, cfg, busybox, SLEEP, working_dir="/tmp",
                envs=[{"key": "FOO", "value": b"bar"}, {"key": "PATH", "value": b"/bin:/usr/bin"}],
                mounts=[{"container_path": "/data", "host_path": str(data), "readonly": True}],
                devices=[{"container_path": "/dev/myzero", "host_path": "/dev/zero",
                          "permissions": "rwm"}])
    run = lambda *cmd: d.rt.ExecSync(container_id=c, cmd=list(cmd), timeout=10)  # noqa: E731
    env = run("env").stdout.decode().splitlines()
    assert "FOO=bar" in env and "PATH=/bin:/usr/bin" in env and "HOME=/root" in env
    assert run("pwd").stdout == b"/tmp\n"
    assert run("cat", "/data/hello").stdout == b"from host\n"
    assert run("touch", "/data/x").exit_code != 0  # read-only
    assert run("head", "-c", "4", "/dev/myzero").stdout == b"\0\0\0\0"
    st = status(d, c).status
    assert [(m.container_path, m.host_path, m.readonly) for m in st.mounts] == \
        [("/data", str(data), True)]
    # The image's USER (1002, listed in its /etc/passwd) when none is asked.
    uref = f"{registries.open.host}/test/busybox-user:latest"
    d.img.PullImage(image={"image": uref})
    u = run_ctr(d, pod, cfg, uref, SLEEP)
    out = d.rt.ExecSync(container_id=u, cmd=["id"], timeout=10).stdout.decode()
    assert out.startswith("uid=1002(u1002) gid=1002"), out
    assert status(d, u).status.user.linux.uid == 1002


def test_reopen_container_log(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "while :; do echo line; sleep 0.1; done"],
                log_path="r.log")
    log = os.path.join(cfg["log_directory"], "r.log")
    time.sleep(0.5)
    os.rename(log, log + ".1")
    d.rt.ReopenContainerLog(container_id=c)
    time.sleep(0.5)
    assert os.path.getsize(log) > 0  # new lines go to a new file
    n1 = os.path.getsize(log + ".1")
    time.sleep(0.3)
    assert os.path.getsize(log + ".1") == n1  # the rotated one is left alone
    d.rt.StopContainer(container_id=c, timeout=0)
    expect_error(grpc.StatusCode.FAILED_PRECONDITION, d.rt.ReopenContainerLog, container_id=c)


def test_restart_removes_what_a_crash_left(daemon, busybox, tmp_path):
    """huskd killed between making a container's root filesystem and
    recording it: the next start removes the orphans."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP, start=False)
    merged = os.path.join(d.root, "image", "mnt", c)
    assert os.path.ismount(merged)
    d.kill()
    os.unlink(os.path.join(d.state, "records", "containers", c + ".json"))
    d.start()
    assert not os.path.exists(os.path.join(d.root, "image", "containers", c))
    assert not os.path.exists(os.path.join(d.state, "containers", c))
    assert not os.path.ismount(merged) and not os.path.exists(merged)
    expect_error(grpc.StatusCode.NOT_FOUND, d.rt.ContainerStatus, container_id=c)
    assert "left without a record" in d.logs() or "unknown container" in d.logs()


def test_stream_list_methods(daemon, busybox, tmp_path):
    d = daemon
    pods = [run_pod(d, tmp_path, labels={"i": str(i)}) for i in range(3)]
    ctrs = [run_ctr(d, p, cfg, busybox, SLEEP) for p, cfg in pods]

    def streamed(method, field, **kw):
        return [x for msg in getattr(d.rt, method)(**kw) for x in getattr(msg, field)]

    assert sorted(p.id for p in streamed("StreamPodSandboxes", "pod_sandboxes")) == \
        sorted(p for p, _ in pods)
    one = streamed("StreamPodSandboxes", "pod_sandboxes", filter={"label_selector": {"i": "1"}})
    assert [p.id for p in one] == [pods[1][0]]
    assert sorted(c.id for c in streamed("StreamContainers", "containers")) == sorted(ctrs)
    only = streamed("StreamContainers", "containers", filter={"pod_sandbox_id": pods[2][0]})
    assert [c.id for c in only] == [ctrs[2]]
    stats = streamed("StreamContainerStats", "container_stats")
    assert sorted(s.attributes.id for s in stats) == sorted(ctrs)
    pstats = streamed("StreamPodSandboxStats", "pod_sandbox_stats", filter={"id": pods[0][0]})
    assert [s.attributes.id for s in pstats] == [pods[0][0]]
    assert [i for i in d.img.StreamImages()][0].images[0].repo_tags[0] == busybox


def test_stream_list_methods_send_batches_of_100(daemon, busybox, tmp_path):
    # 205 pods and containers (created, not started, so no container
    # stats): each Stream* answer
    # comes as messages of at most 100 items (server/list_streams.c), all
    # of them once, the same as the List call's.
    d = daemon
    host = {"security_context": {"namespace_options": {"network": pb.NODE}}}
    pods = [run_pod(d, linux=host) for _ in range(205)]
    ctrs = [run_ctr(d, p, cfg, busybox, SLEEP, start=False) for p, cfg in pods]
    try:
        for method, field, want in (
                ("StreamPodSandboxes", "pod_sandboxes", [p for p, _ in pods]),
                ("StreamContainers", "containers", ctrs),
                ("StreamPodSandboxStats", "pod_sandbox_stats", [p for p, _ in pods])):
            sizes, ids = [], []
            for msg in getattr(d.rt, method)():
                items = list(getattr(msg, field))
                sizes.append(len(items))
                ids += [getattr(x, "id", None) or x.attributes.id for x in items]
            assert sizes == [100, 100, 5], (method, sizes)
            assert sorted(ids) == sorted(want), method
        listed = sorted(p.id for p in d.rt.ListPodSandbox().items)
        assert listed == sorted(p for p, _ in pods)
    finally:
        for p, _ in pods:
            d.rt.StopPodSandbox(pod_sandbox_id=p)
            d.rt.RemovePodSandbox(pod_sandbox_id=p)
    assert leftovers(d, [p for p, _ in pods] + ctrs) == []


def test_husk_shim_stays_small(daemon, busybox, tmp_path):
    """One shim per container: linked statically against musl it holds at
    most 300 KiB of RSS once the container runs (issue 17)."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    cs = [run_ctr(d, pod, cfg, busybox, SLEEP) for _ in range(3)]
    rss = []
    for c in cs:
        with open(os.path.join(d.state, "containers", c, "shim.pid")) as f:
            shim = json.load(f)["pid"]
        assert os.readlink(f"/proc/{shim}/exe").endswith("/husk-shim")
        if "ld-linux" in open(f"/proc/{shim}/maps").read():
            pytest.skip("husk-shim is linked dynamically (sanitizer build)")
        rss.append(int(proc_status(shim)["VmRSS"].split()[0]))
    assert sorted(rss)[1] <= 300, rss  # KiB, the median


def test_pod_namespaces_without_an_init(daemon, busybox, tmp_path):
    # The kubelet's pods (PID namespace per container): no process is left
    # behind; a child cloned into the new namespaces configures and pins
    # them itself (runtime/sandbox.c pin_self), and huskd is not forked.
    d = daemon

    def exec_out(cmd):
        r = d.rt.ExecSync(container_id=c, cmd=cmd, timeout=10)
        assert r.exit_code == 0, r
        return r.stdout.decode()

    pod, cfg = run_pod(d, tmp_path, hostname="pinned-web", linux={
        "sysctls": {"net.ipv4.ip_unprivileged_port_start": "81", "kernel.shm_rmid_forced": "1"},
        "security_context": {"namespace_options": {"pid": pb.CONTAINER}}})
    info = json.loads(d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True).info["info"])
    assert not info.get("pid"), info
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    pins = os.path.join(d.state, "pods-mnt", pod, "ns")
    for kind in ("net", "ipc", "uts"):
        assert os.stat(os.path.join(pins, kind)).st_ino == ns_inode(pid_of(d, c), kind), kind
        assert ns_inode(pid_of(d, c), kind) != ns_inode(os.getpid(), kind), kind
    assert not os.path.exists(os.path.join(pins, "pid"))
    with open("/proc/self/mountinfo") as f:
        pinned = [l.split()[4] for l in f if l.split()[4].startswith(pins + "/")]
    assert sorted(os.path.basename(p) for p in pinned) == ["ipc", "net", "uts"], pinned
    assert exec_out(["hostname"]).strip() == "pinned-web"
    assert exec_out(["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]).strip() == "81"
    assert exec_out(["cat", "/proc/sys/kernel/shm_rmid_forced"]).strip() == "1"
    # A step of the child that fails (a sysctl of an interface the new
    # network namespace does not have) fails the pod naming it, and
    # leaves no pod, pin, mount or directory behind.
    n = len(d.rt.ListPodSandbox().items)
    pods_mnt = set(os.listdir(os.path.join(d.state, "pods-mnt")))
    msg = expect_error(grpc.StatusCode.INVALID_ARGUMENT, run_pod, d, tmp_path, linux={
        "sysctls": {"net.ipv4.conf.eth9.forwarding": "1"},
        "security_context": {"namespace_options": {"pid": pb.CONTAINER}}})
    assert "net.ipv4.conf.eth9.forwarding" in msg and "not available" in msg, msg
    assert len(d.rt.ListPodSandbox().items) == n
    assert set(os.listdir(os.path.join(d.state, "pods-mnt"))) == pods_mnt
    ours = os.path.join(d.state, "pods-mnt") + "/"  # not other daemons' on this host
    with open("/proc/self/mountinfo") as f:
        assert [l for l in f if l.split()[4].startswith(ours) and pod not in l] == []
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c]) == []


def test_shared_pid_namespace_runs_husk_pause(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux={"security_context": {
        "namespace_options": {"pid": pb.POD}}})
    info = json.loads(d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True).info["info"])
    init = info["pid"]
    assert os.readlink(f"/proc/{init}/exe").endswith("/husk-pause")
    # Small when linked statically against musl, as `make` does (sanitizer
    # builds link it dynamically with their runtimes, and then it is not).
    if "ld-linux" not in open(f"/proc/{init}/maps").read():
        assert int(proc_status(init)["VmRSS"].split()[0]) <= 300  # KiB
        # It starts with no signal ignored (huskd ignores SIGPIPE) and no
        # handler; it blocks every signal itself and takes them in turn.
        # (A sanitizer's runtime installs handlers of its own.)
        st = proc_status(init)
        assert (st["SigIgn"], st["SigCgt"]) == ("0" * 16, "0" * 16), st
    a = run_ctr(d, pod, cfg, busybox, SLEEP, linux={"security_context": {
        "namespace_options": {"pid": pb.POD}}})
    # So does the container's process (the shim ignores SIGPIPE too), with
    # nothing blocked.
    st = proc_status(pid_of(d, a))
    assert (st["SigIgn"], st["SigCgt"], st["SigBlk"]) == ("0" * 16,) * 3, st
    b = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "exec sleep 777"], linux={
        "security_context": {"namespace_options": {"pid": pb.POD}}})
    ps = d.rt.ExecSync(container_id=a, cmd=["ps", "-o", "pid,args"], timeout=10).stdout.decode()
    assert "husk-pause" in ps and "sleep 777" in ps, ps
    first = ps.splitlines()[1].split()
    assert first[0] == "1" and first[1].endswith("husk-pause")
    # An orphan in the pod is reaped by the init: no zombie stays.
    d.rt.ExecSync(container_id=b, cmd=["sh", "-c", "sleep 0.1 & exit 0"], timeout=10)
    time.sleep(0.5)
    ps = d.rt.ExecSync(container_id=a, cmd=["ps", "-o", "stat,args"], timeout=10).stdout.decode()
    assert not [l for l in ps.splitlines() if l.strip().startswith("Z")], ps
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    assert not os.path.exists(f"/proc/{init}") or proc_status(init)["State"].startswith("Z")


@pytest.mark.xfail_handler("runc", reason="ExecSync through `runc exec`: the exec'd process "
                         "lives on in the container when huskd is SIGKILLed")
def test_exec_processes_die_with_huskd(daemon, busybox, tmp_path):
    """An ExecSync still running when huskd is SIGKILLed does not live on
    unattended in the container; the container itself does."""
    import threading
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    def exec_long():
        with pytest.raises(grpc.RpcError):  # the daemon goes away under it
            d.rt.ExecSync(container_id=c, cmd=["sleep", "555"], timeout=60)

    ctr_pid = pid_of(d, c)
    ctr_mnt = ns_inode(ctr_pid, "mnt")
    t = threading.Thread(target=exec_long, daemon=True)
    t.start()

    def sleepers():
        """The exec's sleep, in this container (not another run's)."""
        out = []
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    if (open(f"/proc/{p}/cmdline", "rb").read() == b"sleep\x00555\x00"
                            and ns_inode(p, "mnt") == ctr_mnt):
                        out.append(p)
                except OSError:
                    pass
        return out

    deadline = time.time() + 10
    while not sleepers() and time.time() < deadline:
        time.sleep(0.05)
    assert sleepers()
    d.kill()
    t.join(10)
    deadline = time.time() + 5
    while sleepers() and time.time() < deadline:
        time.sleep(0.05)
    assert not sleepers()
    assert os.path.exists(f"/proc/{ctr_pid}")
    d.start()
    assert status(d, c).status.state == pb.CONTAINER_RUNNING
