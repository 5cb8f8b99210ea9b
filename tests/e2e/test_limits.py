"""Resource use under hostile or heavy load: oversized ids and names are
refused before any work, NUL bytes never reach a C string, idle workers go
within their timeout and RSS returns near its baseline."""
import concurrent.futures
import os
import time

import grpc
import pytest

from test_pull_cancel import settle, threads


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def expect_invalid(fn, *a, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*a, **kw)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
    return e.value.details()


def test_huge_ids_refused_and_rss_comes_back(daemon_factory):
    d = daemon_factory({"worker_idle_timeout": 2})
    pid = d.proc.pid
    d.rt.Version(version="v1")
    base = rss_kib(pid)
    huge = "x" * (15 << 20)

    def one(i):
        if i % 2:
            return expect_invalid(d.rt.ContainerStatus, container_id=huge, _timeout=60)
        return expect_invalid(d.rt.RunPodSandbox, _timeout=60,
                              config={"metadata": {"name": huge, "uid": "u",
                                                   "namespace": "ns"}})

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        details = list(ex.map(one, range(32)))
    assert any("field 'container_id' is 15728640 bytes long; an id or name may have at most"
               " 253" in m for m in details), details[:2]
    assert any("field 'config.metadata.name' is 15728640 bytes long" in m
               for m in details), details[:2]
    assert all(huge[:100] not in m for m in details)
    # The daemon gives the buffers back: RSS ends near where it started.
    peak_allowed = base + (16 << 10)
    got = settle(lambda: rss_kib(pid), peak_allowed, timeout=30)
    print(f"RSS baseline {base} KiB, after 32 x 15 MiB ids {got} KiB")
    # Under the sanitizers freed memory sits in ASan's quarantine instead.
    with open(f"/proc/{pid}/maps") as f:
        if "libasan" not in f.read():
            assert got <= peak_allowed
    assert d.rt.Version(version="v1").runtime_name == "husk"


def test_nul_byte_in_ids_and_names_refused(daemon):
    d = daemon
    m = expect_invalid(d.rt.ContainerStatus, container_id="a\0b")
    assert "field 'container_id' contains a NUL byte" in m
    m = expect_invalid(d.rt.RunPodSandbox,
                       config={"metadata": {"name": "a\0b", "uid": "u", "namespace": "ns"}})
    assert "field 'config.metadata.name' contains a NUL byte" in m
    # Any string: a label value with a NUL would be cut short as well.
    m = expect_invalid(d.rt.RunPodSandbox,
                       config={"metadata": {"name": "a", "uid": "u", "namespace": "ns"},
                               "labels": {"k": "v\0w"}})
    assert "field 'config.labels.value' contains a NUL byte" in m
    assert list(d.rt.ListPodSandbox().items) == []


def test_idle_workers_exit_after_a_burst(daemon_factory):
    d = daemon_factory({"worker_idle_timeout": 2})
    pid = d.proc.pid
    assert threads(pid, "huskd-main") == 4
    # A burst: 40 event streams each hold a worker until they are cancelled.
    streams = [d.rt.GetContainerEvents() for _ in range(40)]
    deadline = time.time() + 30
    while threads(pid, "huskd-main") < 40 and time.time() < deadline:
        time.sleep(0.1)
    peak = threads(pid, "huskd-main")
    assert peak >= 40, peak
    for s in streams:
        s.cancel()
    # Every idle worker above the minimum goes within its timeout, not one
    # per timeout (an exiting worker must not restart the others' timers:
    # that took 40 x 2 s here).
    assert settle(lambda: threads(pid, "huskd-main"), 4, timeout=30) == 4
    assert d.rt.Version(version="v1").runtime_name == "husk"


# ---- small fields of pods and containers ----

from pods import busybox, cgroup_dirs_named, expect_error, run_ctr, run_pod  # noqa: E402,F401
from pods import ctr_config, wait_exited  # noqa: E402
from registry import registries  # noqa: E402,F401


def test_relative_log_directory_refused(daemon):
    m = expect_invalid(daemon.rt.RunPodSandbox,
                       config={"metadata": {"name": "p", "uid": "u", "namespace": "ns"},
                               "log_directory": "logs"})
    assert "log_directory 'logs' is not an absolute path" in m
    assert list(daemon.rt.ListPodSandbox().items) == []
    assert not os.path.exists("logs")


def test_log_path_dots_only_refused_as_a_component(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    for bad in ("../x.log", "a/../x.log", "..", "a/.."):
        m = expect_invalid(d.rt.CreateContainer, pod_sandbox_id=pod, sandbox_config=cfg,
                           config=ctr_config(busybox, ["true"], log_path=bad))
        assert "must be relative to the pod's log_directory" in m
    cid = run_ctr(d, pod, cfg, busybox, ["echo", "dots"], log_path="my..log")
    wait_exited(d, cid)
    with open(os.path.join(cfg["log_directory"], "my..log")) as f:
        assert "dots" in f.read()


def test_env_or_spec_beyond_the_launcher_limit_refused(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    cgroups = sorted(cgroup_dirs_named(pod))
    big = "v" * (5 << 20)
    m = expect_invalid(d.rt.CreateContainer, pod_sandbox_id=pod, sandbox_config=cfg,
                       config=ctr_config(busybox, ["true"],
                                         envs=[{"key": "BIG", "value": big.encode()}]))
    assert "config.envs: 5242885 bytes of environment, more than the 4194304" in m
    m = expect_invalid(d.rt.CreateContainer, pod_sandbox_id=pod, sandbox_config=cfg,
                       config=ctr_config(busybox, ["true"],
                                         envs=[{"key": "K", "value": b"a\0b"}]))
    assert "config.envs 'K': the value contains a NUL byte" in m
    # Within the env limit but a spec the launcher would not read: the
    # runtime refuses it and undoes what it took (rootfs, cgroup, files).
    m = expect_invalid(d.rt.CreateContainer, pod_sandbox_id=pod, sandbox_config=cfg,
                       config=ctr_config(busybox, ["true", "a" * (3 << 20), "b" * (2 << 20)]))
    assert "more than the 4194304 the launcher reads" in m
    assert list(d.rt.ListContainers().containers) == []
    assert os.listdir(os.path.join(d.state, "containers")) == []
    assert os.listdir(os.path.join(d.root, "image", "containers")) == []
    assert sorted(cgroup_dirs_named(pod)) == cgroups
    # A container with a normal environment still starts.
    cid = run_ctr(d, pod, cfg, busybox, ["true"], envs=[{"key": "A", "value": b"1"}])
    assert wait_exited(d, cid).exit_code == 0
