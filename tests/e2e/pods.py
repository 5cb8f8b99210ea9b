"""Helpers for the pod and container suites: a pulled busybox image, pods
and containers with sensible defaults, and views of the kernel's state."""
import glob
import json
import os
import subprocess
import time
import uuid

import grpc
import pytest

from conftest import mounts_under, pb
from registry import registries  # noqa: F401  (fixture)

CGROUP_ROOT = "/sys/fs/cgroup"


@pytest.fixture
def busybox(daemon, registries):  # noqa: F811
    ref = f"{registries.open.host}/test/busybox:latest"
    daemon.img.PullImage(image={"image": ref})
    return ref


def pod_config(name=None, **kw):
    name = name or "pod-" + uuid.uuid4().hex[:8]
    cfg = {"metadata": {"name": name, "uid": uuid.uuid4().hex, "namespace": "e2e"},
           "hostname": kw.pop("hostname", name)}
    cfg.update(kw)
    return cfg


def run_pod(d, tmp_path=None, runtime_handler=None, **kw):
    """A pod with the daemon's handler (d.handler: "" for husk's own
    launcher, as the kubelet sends it without a RuntimeClass) unless
    runtime_handler names one."""
    if tmp_path is not None and "log_directory" not in kw:
        kw["log_directory"] = str(tmp_path / ("logs-" + uuid.uuid4().hex[:6]))
    if runtime_handler is None:
        runtime_handler = "" if d.handler == "husk" else d.handler
    cfg = pod_config(**kw)
    pid = d.rt.RunPodSandbox(config=cfg, runtime_handler=runtime_handler).pod_sandbox_id
    return pid, cfg


def ctr_config(image, cmd, name=None, **kw):
    cfg = {"metadata": {"name": name or "c-" + uuid.uuid4().hex[:6]},
           "image": {"image": image}, "command": list(cmd)}
    cfg.update(kw)
    return cfg


def run_ctr(d, pod, pod_cfg, image, cmd, start=True, **kw):
    if pod_cfg.get("log_directory") and "log_path" not in kw:
        kw["log_path"] = "ctr-" + uuid.uuid4().hex[:6] + ".log"
    cfg = ctr_config(image, cmd, **kw)
    cid = d.rt.CreateContainer(pod_sandbox_id=pod, config=cfg,
                               sandbox_config=pod_cfg).container_id
    if start:
        d.rt.StartContainer(container_id=cid)
        check_runtime_ran(d, pod, cid)
    return cid


def pod_runtime(d, pod):
    """The OCI runtime handler that runs pod's containers, None for husk's
    own launcher."""
    h = d.rt.PodSandboxStatus(pod_sandbox_id=pod).status.runtime_handler
    h = h or d.config.get("default_runtime", "husk")
    return None if h == "husk" else h


def rt_state(d, handler, cid):
    """`<runtime> --root <root> state <cid>` as a dict, None when the
    runtime does not know the container."""
    conf = d.config["runtimes"][handler]
    root = conf.get("root") or os.path.join(d.state, "runtimes", handler)
    out = subprocess.run([conf["path"], "--root", root, "state", cid], capture_output=True,
                         text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def check_runtime_ran(d, pod, cid):
    """For a pod whose handler is an OCI runtime: the runtime itself ran the
    started container and says it runs, with the pid CRI reports. One that
    ended already is EXITED for CRI, and its runtime says stopped or has
    forgotten it (husk-shim runs `<runtime> delete` once it records the
    exit)."""
    if not d.config.get("runtimes"):
        return  # husk's own launcher is the only handler
    handler = pod_runtime(d, pod)
    if handler is None:
        return
    s = rt_state(d, handler, cid)
    if s is not None and s["status"] == "running":
        assert s["pid"] == pid_of(d, cid), (s, pid_of(d, cid))
        return
    assert s is None or s["status"] == "stopped", s
    wait_exited(d, cid)


def status(d, cid, verbose=False):
    return d.rt.ContainerStatus(container_id=cid, verbose=verbose)


def wait_exited(d, cid, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st = status(d, cid).status
        if st.state == pb.CONTAINER_EXITED:
            return st
        time.sleep(0.05)
    raise AssertionError(f"container {cid} still {st.state} after {timeout}s")


def pid_of(d, cid):
    info = json.loads(status(d, cid, verbose=True).info["info"])
    return info["pid"]


def run_trapping(d, pod, pod_cfg, image, trap, loop="while :; do sleep 0.1; done", **kw):
    """A shell container that sets a SIGTERM trap, started and known to have
    set it: PID 1 ignores a signal it has no handler for, so a stop that
    came before the trap would be lost under load."""
    c = run_ctr(d, pod, pod_cfg, image, ["sh", "-c", f"{trap}; touch /trapped; {loop}"], **kw)
    pid = pid_of(d, c)
    deadline = time.time() + 60
    while not os.path.exists(f"/proc/{pid}/root/trapped"):
        assert time.time() < deadline, f"container {c} did not set its trap"
        time.sleep(0.05)
    return c


def ns_inode(pid, kind):
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cgroup_dirs_named(ident):
    """Every cgroup directory whose path contains ident (any hierarchy)."""
    hits = []
    for top in glob.glob(f"{CGROUP_ROOT}/*"):
        for root, dirs, _ in os.walk(top):
            for dname in dirs:
                if ident in dname or ident in root:
                    hits.append(os.path.join(root, dname))
    return hits


def mount_dirs(d):
    """The directories huskd mounts below, each a private bind mount of
    itself while huskd runs or pods and containers remain."""
    return [os.path.join(d.state, "pods-mnt"), os.path.join(d.root, "image", "mnt")]


def leftovers(d, ids):
    """What the given pod/container ids left on the host."""
    left = []
    for i in ids:
        left += [f"cgroup {p}" for p in cgroup_dirs_named(i)]
        for base in (d.state, d.root):
            for root, dirs, files in os.walk(base):
                for n in dirs + files:
                    if i in n:
                        left.append(f"file {os.path.join(root, n)}")
    own = huskd_own_mounts(d)
    left += [f"mount {m}" for m in mounts_under(d.base) if m not in own]
    return left


def huskd_own_mounts(d):
    """What a running huskd keeps mounted whatever its pods: the private
    self-binds of the dirs it mounts pins, shm and rootfs below (and of the
    pods dir, by a huskd from before those), the mount template's and its
    pin (runtime/launcher/template.c)."""
    template = os.path.join(d.state, "mount-template")
    return {os.path.join(d.state, "pods"), template, os.path.join(template, "mnt"),
            *mount_dirs(d)}


def expect_error(code, fn, *args, **kw):
    with pytest.raises(grpc.RpcError) as e:
        fn(*args, **kw)
    assert e.value.code() == code, e.value.details()
    return e.value.details()
