"""RuntimeClass handlers: the `runtimes` config key, pods whose handler is an
OCI runtime (Debian's runc and crun) run by husk-shim through the runtime's
create/start/delete, the same lifecycle checks for every installed handler
(husk's own launcher included), and an unknown handler refused with
nothing created."""
import json
import os
import subprocess
import threading
import time

import grpc
import pytest

from conftest import OCI_RUNTIMES as OCI, hybrid_with_v2_controllers, mounts_under, pb
from pods import (busybox, expect_error, leftovers, pod_config, rt_state, run_ctr,  # noqa: F401
                  run_pod, wait_exited)
from registry import registries  # noqa: F401

E = grpc.StatusCode
SLEEP = ["sleep", "1000"]


@pytest.fixture
def hd(daemon_factory, busybox, request):  # noqa: F811
    """A daemon with every installed OCI runtime configured."""
    runtimes = {n: {"path": p} for n, p in OCI.items() if p}

    d = daemon_factory({"runtimes": runtimes})
    d.img.PullImage(image={"image": busybox})
    return d


def exec_out(d, cid, cmd, code=0):
    r = d.rt.ExecSync(container_id=cid, cmd=cmd, timeout=20)
    assert r.exit_code == code, (cmd, r.exit_code, r.stdout, r.stderr)
    return r.stdout.decode()


def read_log(path, want, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and want in open(path).read():
            return open(path).read()
        time.sleep(0.05)
    raise AssertionError(f"{want!r} not in {path}")


@pytest.mark.per_handler  # skips crun on a hybrid host (conftest.handler_skip_reason)
def test_handler_lifecycle(hd, busybox, tmp_path, handler):  # noqa: F811
    d = hd
    pod = d.rt.RunPodSandbox(config={
        "metadata": {"name": f"p-{handler}", "uid": handler, "namespace": "e2e"},
        "hostname": "h", "log_directory": str(tmp_path / "logs")},
        runtime_handler="" if handler == "husk" else handler).pod_sandbox_id
    pcfg = {"metadata": {"name": f"p-{handler}", "uid": handler, "namespace": "e2e"},
            "log_directory": str(tmp_path / "logs")}
    st = d.rt.PodSandboxStatus(pod_sandbox_id=pod).status
    assert st.runtime_handler == ("" if handler == "husk" else handler)
    c = run_ctr(d, pod, pcfg, busybox,
                ["sh", "-c", "echo out-$(hostname); echo err >&2; exec sleep 1000"],
                log_path="c.log", linux={"resources": {"memory_limit_in_bytes": 64 << 20},
                                         "security_context": {
                                             "run_as_user": {"value": 1000},
                                             "capabilities": {"drop_capabilities": ["ALL"]},
                                             "no_new_privs": True}})
    info = json.loads(d.rt.ContainerStatus(container_id=c, verbose=True).info["info"])
    pid = info["pid"]
    if handler != "husk":
        # The runtime really ran it, and knows it as running.
        s = rt_state(d, handler, c)
        assert s and s["status"] == "running" and s["pid"] == pid, s
    # The kernel's view: the pod's namespaces, the user, the caps, the cgroup.
    spec = info["runtimeSpec"]
    net = [n["path"] for n in spec["linux"]["namespaces"] if n["type"] == "network"][0]
    assert os.stat(net).st_ino == os.stat(f"/proc/{pid}/ns/net").st_ino
    status = dict(line.split(":\t", 1) for line in open(f"/proc/{pid}/status").read()
                  .splitlines() if ":\t" in line)
    assert status["Uid"].split()[0] == "1000"
    assert status["CapEff"].strip() == "0000000000000000"
    assert status["NoNewPrivs"].strip() == "1"
    cg = open(f"/proc/{pid}/cgroup").read()
    assert spec["linux"]["cgroupsPath"] in cg
    mem = [ln for ln in cg.splitlines() if ":memory:" in ln]
    if mem:
        path = mem[0].split(":", 2)[2]
        limit = open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read().strip()
        assert limit == str(64 << 20)
    # Logs in CRI format through the shim's pipes.
    # The shim reads the two pipes apart: one line may land before the other.
    read_log(str(tmp_path / "logs" / "c.log"), "out-h")
    log = read_log(str(tmp_path / "logs" / "c.log"), " stderr F err")
    assert " stdout F out-h" in log and " stderr F err" in log
    # Exec.
    assert exec_out(d, c, ["id", "-u"]).strip() == "1000"
    assert d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "exit 3"], timeout=20).exit_code == 3
    # huskd restarts; the shim and the runtime's container carry on.
    d.restart()
    assert d.rt.ContainerStatus(container_id=c).status.state == pb.CONTAINER_RUNNING
    if handler != "husk":
        assert rt_state(d, handler, c)["status"] == "running"
    # Stop: SIGTERM is ignored by PID 1 sleep, so the grace period ends in SIGKILL.
    d.rt.StopContainer(container_id=c, timeout=1)
    st = wait_exited(d, c)
    assert st.exit_code == 137
    # An exit code of the container's own.
    c2 = run_ctr(d, pod, pcfg, busybox, ["sh", "-c", "exit 7"], log_path="c2.log")
    assert wait_exited(d, c2).exit_code == 7
    # A terminal: the runtime's pty (runc: over husk-shim's console socket).
    c3 = run_ctr(d, pod, pcfg, busybox, ["sh", "-c", "tty; exec sleep 1000"],
                 log_path="c3.log", tty=True, stdin=True)
    log = read_log(str(tmp_path / "logs" / "c3.log"), "/dev/pts/")
    assert " stdout " in log and "not a tty" not in log
    d.rt.StopContainer(container_id=c3, timeout=0)
    wait_exited(d, c3)
    for x in (c, c2, c3):
        d.rt.RemoveContainer(container_id=x)
        if handler != "husk":
            assert rt_state(d, handler, x) is None
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c, c2, c3]) == []


def test_unknown_handler_refused_with_nothing_created(hd, tmp_path):
    d = hd
    msg = expect_error(E.NOT_FOUND, d.rt.RunPodSandbox, config={
        "metadata": {"name": "p", "uid": "u", "namespace": "e2e"}},
        runtime_handler="kata")
    assert "'kata'" in msg and "husk" in msg
    assert list(d.rt.ListPodSandbox().items) == []
    assert not os.listdir(os.path.join(d.state, "pods")) if os.path.isdir(
        os.path.join(d.state, "pods")) else True


def test_status_lists_handlers(hd):
    r = hd.rt.Status(verbose=False)
    names = [h.name for h in r.runtime_handlers]
    assert names[:2] == ["", "husk"]
    assert set(names[2:]) == {n for n, p in OCI.items() if p}
    feats = {h.name: h.features for h in r.runtime_handlers}
    for name, path in OCI.items():
        if not path:
            continue
        out = subprocess.run([path, "features"], capture_output=True, text=True)
        want = json.loads(out.stdout) if out.returncode == 0 else {}
        assert feats[name].recursive_read_only_mounts == ("rro" in want.get("mountOptions", []))
        # husk-shim makes the idmapped mounts and the runtime joins the
        # pod's user namespace: no idmap support of the runtime's needed
        # (runc 1.1.5 and crun 1.8.1 have none). test_userns.py runs it.
        assert feats[name].user_namespaces
    assert feats[""].user_namespaces and feats["husk"].user_namespaces


def test_config_errors_name_the_key(daemon_factory):
    for bad, want in (({"runtimes": {"runc": {}}}, "runtimes"),
                      ({"runtimes": {"runc": {"path": "runc"}}}, "runc.path"),
                      ({"runtimes": {"Bad_Name": {"path": "/x"}}}, "Bad_Name"),
                      ({"runtimes": {"runc": {"path": "/x", "nope": 1}}}, "nope"),
                      ({"default_runtime": "kata"}, "default_runtime")):
        d = daemon_factory(bad, start=False)
        out = subprocess.run(d.cmdline()[:1] + ["config", "--config", d.config_path],
                             capture_output=True, text=True)
        assert out.returncode != 0 and want in out.stderr, (bad, out.stderr)


@pytest.mark.skipif(not OCI["runc"], reason="runc is not installed")
def test_default_runtime(daemon_factory, busybox, tmp_path):  # noqa: F811
    d = daemon_factory({"runtimes": {"runc": {"path": OCI["runc"]}}, "default_runtime": "runc"})
    d.img.PullImage(image={"image": busybox})
    # "" is runc now; "husk" still names husk's launcher.
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    assert rt_state(d, "runc", c)["status"] == "running"
    hpod = d.rt.RunPodSandbox(config={"metadata": {"name": "h", "uid": "h", "namespace": "e2e"}},
                              runtime_handler="husk").pod_sandbox_id
    hc = run_ctr(d, hpod, {"metadata": {"name": "h", "uid": "h", "namespace": "e2e"}}, busybox,
                 SLEEP)
    assert rt_state(d, "runc", hc) is None
    assert d.rt.ContainerStatus(container_id=hc).status.state == pb.CONTAINER_RUNNING


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline") as f:
            return f.read().split("\0")[:-1]
    except OSError:
        return []


def oci_pod(d, tmp_path, handler):
    name = f"x-{handler}"
    cfg = {"metadata": {"name": name, "uid": name, "namespace": "e2e"},
           "log_directory": str(tmp_path / "logs")}
    pod = d.rt.RunPodSandbox(config=cfg, runtime_handler="" if handler == "husk" else handler)
    return pod.pod_sandbox_id, cfg


def skip_crun(handler):
    if handler == "crun" and hybrid_with_v2_controllers():
        pytest.skip("crun 1.8.1 refuses a hybrid host whose cgroup2 has controllers")


@pytest.mark.parametrize("handler", [n for n, p in OCI.items() if p])
def test_exec_through_the_runtime(hd, busybox, tmp_path, handler):  # noqa: F811
    skip_crun(handler)
    d = hd
    pod, pcfg = oci_pod(d, tmp_path, handler)
    c = run_ctr(d, pod, pcfg, busybox, SLEEP, envs=[{"key": "WHO", "value": b"ctr-env"}],
                linux={"security_context": {"run_as_user": {"value": 1000},
                                            "capabilities": {"drop_capabilities": ["ALL"]},
                                            "no_new_privs": True}})
    init = json.loads(d.rt.ContainerStatus(container_id=c, verbose=True).info["info"])["pid"]
    # stdout and stderr apart, the exit code, the container's env and user.
    r = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "echo out $WHO; echo err >&2; exit 3"],
                      timeout=20)
    assert (r.stdout, r.stderr, r.exit_code) == (b"out ctr-env\n", b"err\n", 3)
    assert exec_out(d, c, ["id", "-u"]).strip() == "1000"
    # A command that is not there: an error naming it, as with husk's launcher.
    with pytest.raises(grpc.RpcError) as e:
        d.rt.ExecSync(container_id=c, cmd=["/bin/nope"], timeout=20)
    assert "nope" in e.value.details(), e.value.details()

    # A long exec: the runtime runs it (its `ps` lists it), as the child
    # of its `exec`, itself huskd's child; the exec timeout kills it.
    res = {}

    def long_exec():
        try:
            d.rt.ExecSync(container_id=c, cmd=["sleep", "301"], timeout=4)
        except grpc.RpcError as err:
            res["err"] = err

    t = threading.Thread(target=long_exec)
    t.start()
    root = os.path.join(d.state, "runtimes", handler)
    deadline, pids = time.time() + 20, []
    while time.time() < deadline:
        out = subprocess.run([OCI[handler], "--root", root, "ps", "--format", "json", c],
                             capture_output=True, text=True)
        pids = [p for p in json.loads(out.stdout or "[]") if p != init]
        # Past the runtime's own setup in the container (`runc init`).
        if pids and cmdline(pids[0]) == ["sleep", "301"]:
            break
        time.sleep(0.05)
    assert len(pids) == 1, pids
    pid = pids[0]
    st = proc_status(pid)
    assert st["Uid"].split()[0] == "1000" and st["NoNewPrivs"].strip() == "1"
    assert st["CapEff"].strip() == "0000000000000000"
    assert os.stat(f"/proc/{pid}/ns/mnt").st_ino == os.stat(f"/proc/{init}/ns/mnt").st_ino
    parent = int(st["PPid"])
    assert os.readlink(f"/proc/{parent}/exe") == os.path.realpath(OCI[handler])
    assert "exec" in cmdline(parent)
    assert int(proc_status(parent)["PPid"]) == d.proc.pid
    t.join(30)
    assert res["err"].code() == E.DEADLINE_EXCEEDED, res
    # Killed, and its runtime gone with it.
    assert not os.path.exists(f"/proc/{pid}") or proc_status(pid)["State"].startswith("Z")
    assert not os.path.exists(f"/proc/{parent}")
    out = subprocess.run([OCI[handler], "--root", root, "ps", "--format", "json", c],
                         capture_output=True, text=True)
    assert json.loads(out.stdout) == [init]
    # Nothing of the exec's own files left in the container's directory.
    assert not [n for n in os.listdir(os.path.join(d.state, "containers", c))
                if n.startswith("exec-")]
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)


def cgroup_file(pid, controller, name):
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, ctrls, path = line.split(":", 2)
        if controller in ctrls.split(","):
            return open(f"/sys/fs/cgroup/{ctrls}{path}/{name}").read().strip()
    raise AssertionError(f"no {controller} cgroup for {pid}")


@pytest.mark.skipif(not os.path.isdir("/sys/fs/cgroup/memory"), reason="needs cgroup v1 memory")
@pytest.mark.per_handler
def test_update_resources_through_the_runtime(hd, busybox, tmp_path, handler):  # noqa: F811
    skip_crun(handler)
    d = hd
    pod, pcfg = oci_pod(d, tmp_path, handler)
    c = run_ctr(d, pod, pcfg, busybox, SLEEP,
                linux={"resources": {"memory_limit_in_bytes": 64 << 20, "cpu_shares": 256}})
    pid = json.loads(d.rt.ContainerStatus(container_id=c, verbose=True).info["info"])["pid"]
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
    d.rt.UpdateContainerResources(container_id=c, linux={
        "memory_limit_in_bytes": 96 << 20, "cpu_period": 100000, "cpu_quota": 20000,
        "cpu_shares": 512})
    # The kernel's view.
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert cgroup_file(pid, "cpu", "cpu.cfs_quota_us") == "20000"
    assert cgroup_file(pid, "cpu", "cpu.shares") == "512"
    # config.json (crictl inspect's runtimeSpec) says the same, devices kept.
    spec = json.loads(d.rt.ContainerStatus(container_id=c, verbose=True)
                      .info["info"])["runtimeSpec"]
    res = spec["linux"]["resources"]
    assert res["memory"]["limit"] == 96 << 20
    assert res["cpu"]["quota"] == 20000 and res["cpu"]["period"] == 100000
    assert res["cpu"]["shares"] == 512
    assert res["devices"][0] == {"allow": False, "access": "rwm"}
    config = os.path.join(d.state, "containers", c, "config.json")
    with open(config) as f:
        assert json.load(f)["linux"]["resources"] == res
    # A refused update changes neither, and leaves nothing behind.
    before = open(config).read()
    with pytest.raises(grpc.RpcError):
        d.rt.UpdateContainerResources(container_id=c, linux={"cpuset_cpus": "4095"})
    assert open(config).read() == before
    assert cgroup_file(pid, "memory", "memory.limit_in_bytes") == str(96 << 20)
    assert not [n for n in os.listdir(os.path.dirname(config)) if n.startswith("update-")]
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)


@pytest.mark.skipif(not os.path.isdir("/run/systemd/system"),
                    reason="PID 1 is not systemd here: runc --systemd-cgroup asks systemd over "
                    "D-Bus for the container's scope (its argv and cgroupsPath are checked in "
                    "tests/unit/test_oci_run.c)")
@pytest.mark.skipif(not OCI["runc"], reason="runc is not installed")
def test_runc_systemd_cgroup(daemon_factory, busybox, tmp_path):  # noqa: F811
    d = daemon_factory({"cgroup_driver": "systemd", "default_runtime": "runc",
                        "runtimes": {"runc": {"path": OCI["runc"], "systemd_cgroup": True}}})
    d.img.PullImage(image={"image": busybox})
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    info = json.loads(d.rt.ContainerStatus(container_id=c, verbose=True).info["info"])
    slice_, prefix, name = info["runtimeSpec"]["linux"]["cgroupsPath"].split(":")
    assert slice_.endswith(".slice") and (prefix, name) == ("husk", c)
    assert f"/{slice_}/husk-{c}.scope" in open(f"/proc/{info['pid']}/cgroup").read()
    assert rt_state(d, "runc", c)["status"] == "running"
    assert exec_out(d, c, ["true"]) == ""
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)


@pytest.mark.skipif(not OCI["runc"], reason="runc is not installed")
def test_runc_userns_idmap_failure_leaves_nothing(daemon_factory, busybox, tmp_path):  # noqa: F811
    d = daemon_factory({"runtimes": {"runc": {"path": OCI["runc"]}}, "default_runtime": "runc"})
    os.chmod(d.base, 0o711)
    d.img.PullImage(image={"image": busybox})
    vol = tmp_path / "vol"
    vol.mkdir()
    ids = [{"container_id": 0, "host_id": 1 << 20, "length": 65536}]
    pod, cfg = run_pod(d, tmp_path, linux={"security_context": {"namespace_options": {
        "userns_options": {"mode": pb.POD, "uids": ids, "gids": ids}}}})
    # The second volume's file system (sysfs) has no idmapped mounts: the
    # start fails naming it, after the first one was made.
    mounts = [{"container_path": "/data", "host_path": str(vol)},
              {"container_path": "/k", "host_path": "/sys/kernel/mm"}]
    c = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=mounts, start=False)
    with pytest.raises(grpc.RpcError) as e:
        d.rt.StartContainer(container_id=c)
    assert "/sys/kernel/mm" in e.value.details() and "idmapped" in e.value.details()
    cdir = os.path.join(d.state, "containers", c)
    assert mounts_under(cdir) == []
    assert not os.path.exists(os.path.join(cdir, "idmap"))
    assert rt_state(d, "runc", c) is None
    # A terminal: runc dials husk-shim's console socket from its own bundle.
    c3 = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "tty; exec sleep 1000"], log_path="t.log",
                 tty=True, stdin=True)
    log = read_log(os.path.join(cfg["log_directory"], "t.log"), "/dev/pts/")
    assert "not a tty" not in log
    # A good one runs, and its idmapped sources go with it.
    c2 = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=mounts[:1])
    assert len(mounts_under(os.path.join(d.state, "containers", c2, "idmap"))) >= 2
    d.rt.StopContainer(container_id=c2, timeout=0)
    wait_exited(d, c2)
    # The shim releases them after `runc delete`, once it has recorded the exit.
    deadline = time.time() + 20
    while mounts_under(os.path.join(d.state, "containers", c2)) and time.time() < deadline:
        time.sleep(0.05)
    assert mounts_under(os.path.join(d.state, "containers", c2)) == []
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c, c2, c3]) == []
