"""The daemon itself: CRI basics, errors, concurrency, locking, shutdown."""
import concurrent.futures
import json
import os
import signal
import stat
import subprocess
import time

import grpc
import pytest

from conftest import HUSKD, pb
from registry import Proxy, registries  # noqa: F401


def test_version(daemon):
    v = daemon.rt.Version(version="v1")
    assert v.runtime_name == "husk"
    assert v.runtime_api_version == "v1"
    assert v.runtime_version  # from the Makefile
    out = subprocess.run([HUSKD, "--version"], capture_output=True, text=True, check=True)
    assert v.runtime_version in out.stdout


def test_status_conditions_and_verbose_config(daemon):
    st = daemon.rt.Status(verbose=True)
    conds = {c.type: c for c in st.status.conditions}
    assert conds["RuntimeReady"].status is True
    # No CNI config in the default dir of this test daemon's config.
    assert "NetworkReady" in conds
    cfg = json.loads(st.info["config"])
    assert cfg["socket"] == daemon.socket
    assert cfg["root"] == daemon.root
    assert cfg["cgroup_driver"] == "auto"  # as configured; what it is, apart:
    assert st.info["cgroupDriver"] in ("cgroupfs", "systemd")
    # Without verbose, no info map.
    assert len(daemon.rt.Status().info) == 0


def test_network_ready_follows_cni_dir(daemon_factory, tmp_path):
    d = daemon_factory({"cni_conf_dir": str(tmp_path)})
    net = {c.type: c for c in d.rt.Status().status.conditions}["NetworkReady"]
    assert net.status is False
    assert net.reason == "NetworkPluginNotReady"
    assert str(tmp_path) in net.message
    (tmp_path / "10-test.conflist").write_text(json.dumps(
        {"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "loopback"}]}))
    net = {c.type: c for c in d.rt.Status().status.conditions}["NetworkReady"]
    assert net.status is True


def test_runtime_config_cgroup_driver(daemon_factory):
    d = daemon_factory({"cgroup_driver": "cgroupfs"})
    assert d.rt.RuntimeConfig().linux.cgroup_driver == pb.CGROUPFS
    # With systemd (tests/e2e/test_systemd.py boots one) it says SYSTEMD.


def test_systemd_driver_without_systemd_fails_at_start(daemon_factory):
    """PID 1 here is not systemd: the systemd driver refuses to start and
    says why, rather than falling back to writing directories; the flag
    overrides the file."""
    d = daemon_factory({"cgroup_driver": "cgroupfs"}, args=["--cgroup-driver", "systemd"],
                       start=False)
    d.start(wait=False)
    assert d.proc.wait(timeout=60) == 1
    d.proc = None
    d.log.close()
    log = d.logs()
    assert "cgroup driver 'systemd': systemd is not reachable over D-Bus" in log, log
    assert "/run/systemd/private" in log and "cgroupfs driver" in log


def test_update_runtime_config_keeps_pod_cidr(daemon):
    daemon.rt.UpdateRuntimeConfig(runtime_config={"network_config": {"pod_cidr": "10.88.0.0/16"}})
    assert daemon.rt.Status(verbose=True).info["podCIDR"] == "10.88.0.0/16"
    # An empty update leaves it as it was.
    daemon.rt.UpdateRuntimeConfig(runtime_config={"network_config": {"pod_cidr": ""}})
    assert daemon.rt.Status(verbose=True).info["podCIDR"] == "10.88.0.0/16"
    # The kubelet does not send it again after a restart of huskd.
    daemon.restart(kill=True)
    assert daemon.rt.Status(verbose=True).info["podCIDR"] == "10.88.0.0/16"
    with pytest.raises(grpc.RpcError) as e:
        daemon.rt.UpdateRuntimeConfig(runtime_config={"network_config": {"pod_cidr": "nope"}})
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "nope" in e.value.details()


def test_unimplemented_method_names_itself(daemon):
    with pytest.raises(grpc.RpcError) as e:
        daemon.rt.CheckpointContainer(container_id="x")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "CheckpointContainer" in e.value.details()


def test_unknown_path_is_unimplemented(daemon):
    with pytest.raises(grpc.RpcError) as e:
        daemon.channel.unary_unary("/runtime.v1.RuntimeService/NoSuchThing")(b"", timeout=5)
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "NoSuchThing" in e.value.details()


def test_garbage_request_is_invalid_argument(daemon):
    for payload in (b"\xff\xff\xff\xff", b"\x0a\x05ab", os.urandom(64) + b"\xff"):
        with pytest.raises(grpc.RpcError) as e:
            daemon.rt.raw("Version", payload)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "VersionRequest" in e.value.details()
    # The daemon lives on.
    assert daemon.rt.Version(version="v1").runtime_name == "husk"
    assert daemon.proc.poll() is None


def test_large_messages(daemon):
    # Up to 16 MiB is accepted...
    v = daemon.rt.Version(version="x" * (15 << 20))
    assert v.runtime_name == "husk"
    # ... and more is refused by the transport, not by a crash.
    with pytest.raises(grpc.RpcError) as e:
        daemon.rt.Version(version="x" * (17 << 20))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert daemon.rt.Version(version="v1").runtime_name == "husk"


def test_200_concurrent_version_calls(daemon):
    futures = [daemon.rt.Version.future(version="v1") for _ in range(200)]
    results = [f.result(timeout=60) for f in futures]
    assert len(results) == 200
    assert all(r.runtime_name == "husk" for r in results)
    # And from many client threads with their own calls in flight.
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        got = list(ex.map(lambda _: daemon.rt.Version(version="v1").runtime_name, range(200)))
    assert got == ["husk"] * 200


def test_socket_permissions(daemon):
    st = os.stat(daemon.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert stat.S_IMODE(os.stat(os.path.dirname(daemon.socket)).st_mode) == 0o700


def _run_second(args, timeout=10):
    return subprocess.run([HUSKD, *args], capture_output=True, text=True, timeout=timeout)


def test_second_daemon_same_socket_refuses(daemon, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    r = _run_second(["--config", str(cfg), "--socket", daemon.socket,
                     "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state")])
    assert r.returncode != 0
    assert "another huskd" in r.stderr and daemon.socket in r.stderr
    assert str(daemon.proc.pid) in r.stderr
    # The first one is untouched and still answers on its socket.
    assert os.path.exists(daemon.socket)
    assert daemon.rt.Version(version="v1").runtime_name == "husk"


def test_second_daemon_same_root_refuses(daemon, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text("{}")
    r = _run_second(["--config", str(cfg), "--socket", str(tmp_path / "other.sock"),
                     "--root", daemon.root, "--state", str(tmp_path / "state")])
    assert r.returncode != 0
    assert "another huskd" in r.stderr and daemon.root in r.stderr
    assert not os.path.exists(tmp_path / "other.sock")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_removes_socket_and_exits_zero(daemon, sig):
    assert os.path.exists(daemon.socket)
    assert daemon.stop(sig) == 0
    assert not os.path.exists(daemon.socket)
    assert "huskd stopped" in daemon.logs()


def test_restart_after_sigkill_reclaims_socket(daemon):
    daemon.kill()
    assert os.path.exists(daemon.socket)  # stale socket left by the kill
    daemon.start()
    assert daemon.rt.Version(version="v1").runtime_name == "husk"


def test_calls_logged_at_debug(daemon):
    daemon.rt.Version(version="v1")
    with pytest.raises(grpc.RpcError):
        daemon.rt.CheckpointContainer(container_id="x")
    daemon.stop()
    log = daemon.logs()
    assert "method=/runtime.v1.RuntimeService/Version status=OK duration_us=" in log
    assert "method=/runtime.v1.RuntimeService/CheckpointContainer status=UNIMPLEMENTED" in log
    for line in log.splitlines():
        assert line.split()[1] in ("error", "warn", "info", "debug"), line


def test_stream_stays_open_and_client_cancel_frees_it(daemon):
    stream = daemon.rt.GetContainerEvents(_timeout=30)
    time.sleep(1.0)
    assert stream.running()
    stream.cancel()
    with pytest.raises(grpc.RpcError) as e:
        next(stream)
    assert e.value.code() == grpc.StatusCode.CANCELLED
    # The handler noticed and finished; fast calls were never blocked.
    deadline = time.time() + 5
    while "method=/runtime.v1.RuntimeService/GetContainerEvents" not in daemon.logs():
        assert time.time() < deadline, daemon.logs()
        time.sleep(0.1)
    assert daemon.rt.Version(version="v1").runtime_name == "husk"


def test_sigterm_cancels_streams_after_shutdown_timeout(daemon_factory):
    d = daemon_factory({"shutdown_timeout": 1})
    streams = [d.rt.GetContainerEvents(_timeout=60) for _ in range(3)]
    time.sleep(0.5)
    t0 = time.time()
    d.proc.send_signal(signal.SIGTERM)
    for s in streams:
        with pytest.raises(grpc.RpcError):
            next(s)
    assert d.stop() == 0
    elapsed = time.time() - t0
    assert elapsed < 8, elapsed
    log = d.logs()
    assert "cancelling them" in log
    assert not os.path.exists(d.socket)


def test_sigterm_drains_an_inflight_pull(daemon_factory, registries):
    """A slow call in flight when SIGTERM arrives finishes, then huskd
    exits 0."""
    regs = registries
    # busybox is ~1 MB: at 400 KB/s its pull takes a few seconds.
    slow = Proxy(regs.open.host, rate=400_000)
    try:
        d = daemon_factory({"shutdown_timeout": 30})
        fut = d.img.PullImage.future(image={"image": f"{slow.host}/test/busybox:latest"})
        deadline = time.time() + 10
        while not slow.gets("/blobs/") and time.time() < deadline:
            time.sleep(0.05)
        assert slow.gets("/blobs/"), "the pull never reached the registry"
        fut_running = not fut.done()
        d.proc.send_signal(signal.SIGTERM)
        resp = fut.result(timeout=60)
        assert resp.image_ref.startswith("sha256:")
        assert fut_running
        assert d.stop() == 0
        assert "draining calls" in d.logs()
        assert not os.path.exists(d.socket)
    finally:
        slow.stop()


def test_start_failure_names_the_cause_and_leaves_no_socket(daemon_factory):
    d = daemon_factory({"shim_path": "/nonexistent/husk-shim"}, start=False)
    d.start(wait=False)
    rc = d.proc.wait(timeout=20)
    d.proc = None
    assert rc == 1
    log = d.logs()
    assert "start: runtime: husk-shim '/nonexistent/husk-shim'" in log, log
    assert not os.path.exists(d.socket)


def test_socket_in_existing_dir_keeps_its_mode(daemon_factory, tmp_path):
    shared = tmp_path / "x"
    shared.mkdir()
    os.chmod(shared, 0o755)
    d = daemon_factory(start=False)
    d.socket = str(shared / "husk.sock")
    d.start()
    assert stat.S_ISSOCK(os.lstat(d.socket).st_mode)
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    assert d.stop() == 0
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
    assert not os.path.exists(d.socket)


def test_socket_dir_made_by_huskd_is_private(daemon_factory, tmp_path):
    d = daemon_factory(start=False)
    d.socket = str(tmp_path / "new" / "sub" / "husk.sock")
    d.start()
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "sub").st_mode) == 0o700


def test_socket_path_that_is_a_file_is_refused_and_kept(daemon_factory, tmp_path):
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0\n")
    d = daemon_factory(start=False)
    d.socket = str(victim)
    d.start(wait=False)
    rc = d.proc.wait(timeout=20)
    d.proc = None
    assert rc == 1
    assert f"socket '{victim}': the path exists and is not a socket" in d.logs(), d.logs()
    assert victim.read_text() == "root:x:0:0\n"
    assert not os.path.exists(str(victim) + ".lock")


def test_exit_removes_only_its_own_socket(daemon):
    # Someone replaced the socket with a file while huskd ran: exit keeps it.
    os.unlink(daemon.socket)
    with open(daemon.socket, "w") as f:
        f.write("data")
    assert daemon.stop() == 0
    with open(daemon.socket) as f:
        assert f.read() == "data"
    os.unlink(daemon.socket)  # so that teardown can restart it and clean up


def test_crash_leaves_its_stack_in_the_log(daemon):
    """A fatal signal writes huskd's stack to its log before the default
    action (the exit code stays the signal's): a rare crash says where it
    was without a core dump. Not in an ASan build, whose own report does."""
    d = daemon
    assert d.rt.Version(version="v1").runtime_name == "husk"
    if "libasan" in subprocess.run(["ldd", HUSKD], capture_output=True, text=True).stdout:
        pytest.skip("an ASan build reports crashes itself")
    rc = d.stop(signal.SIGSEGV)
    assert rc == -signal.SIGSEGV
    log = d.logs()
    assert "huskd: fatal signal 11 (SEGV), stack:" in log, log[-2000:]
    assert "huskd(+0x" in log.split("fatal signal 11")[1]
    # Started again on the same root, it takes over what the crash left.
    d.start()
    assert d.rt.Version(version="v1").runtime_name == "husk"
