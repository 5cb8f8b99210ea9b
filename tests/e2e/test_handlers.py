"""RuntimeClass handlers: the `runtimes` config key, pods whose handler is an
OCI runtime (Debian's runc and crun) run by husk-shim through the runtime's
create/start/delete, the same lifecycle checks for every installed handler
(husk's own launcher included), and an unknown handler refused with
nothing created."""
import json
import os
import subprocess
import time

import grpc
import pytest

from conftest import OCI_RUNTIMES as OCI, pb
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
    log = read_log(str(tmp_path / "logs" / "c.log"), "out-h")
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
        # husk-shim does not hand an OCI runtime a pod user namespace yet,
        # whatever the runtime could do (runc 1.1.5 and crun 1.8.1: no idmap).
        assert not feats[name].user_namespaces
    assert feats[""].user_namespaces and feats["husk"].user_namespaces


@pytest.mark.skipif(not OCI["runc"], reason="runc is not installed")
def test_user_namespace_pod_refused_for_oci_handler(hd, tmp_path):
    ids = [{"container_id": 0, "host_id": 1 << 20, "length": 65536}]
    cfg = pod_config(linux={"security_context": {"namespace_options": {"userns_options": {
        "mode": pb.POD, "uids": ids, "gids": ids}}}})
    with pytest.raises(grpc.RpcError) as e:
        hd.rt.RunPodSandbox(config=cfg, runtime_handler="runc")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED, e.value.details()
    assert "runtime handler 'runc'" in e.value.details()
    assert not hd.rt.ListPodSandbox().items


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
