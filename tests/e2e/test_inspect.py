"""The kernel's view in verbose ContainerStatus and PodSandboxStatus
(`crictl inspect`, `crictl inspectp`), checked against what the test reads
from /proc itself: namespaces as readlink prints them and with whom they
are shared, cgroups, the five capability sets decoded as capsh does,
no_new_privs, seccomp, credentials; a stopped container shows what was
recorded, not live data."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import pb
from pods import busybox, proc_status, run_ctr, run_pod, wait_exited  # noqa: F401
from registry import registries  # noqa: F401

# The tests that make containers run once per RuntimeClass handler.
pytestmark = pytest.mark.per_handler

SLEEP = ["sleep", "1000"]
NS = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")
SETS = {"effective": "CapEff", "permitted": "CapPrm", "inheritable": "CapInh",
        "bounding": "CapBnd", "ambient": "CapAmb"}
SECCOMP = {"0": "disabled", "1": "strict", "2": "filter"}


def kernel(d, cid):
    info = d.rt.ContainerStatus(container_id=cid, verbose=True).info["info"]
    return json.loads(info)["kernel"]


def pod_kernel(d, pod):
    info = d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True).info["info"]
    return json.loads(info)["kernel"]


def capsh_names(hexmask):
    """What `capsh --decode` prints, in the view's spelling (upper case)."""
    out = subprocess.run(["capsh", f"--decode=0x{hexmask}"], capture_output=True,
                         text=True, check=True).stdout.strip()
    names = out.partition("=")[2]
    return [n.upper() if n.startswith("cap_") else n for n in names.split(",") if n]


def check_against_proc(k, pid, pod_pins, host_pid):
    assert k["pid"] == pid
    for t in NS:
        path = f"/proc/{pid}/ns/{t}"
        if not os.path.exists(path):
            continue
        assert k["namespaces"][t]["link"] == os.readlink(path), t
        ino = os.stat(path).st_ino
        want = ("pod" if t in pod_pins and os.stat(pod_pins[t]).st_ino == ino else
                "host" if os.stat(f"/proc/{host_pid}/ns/{t}").st_ino == ino else "none")
        assert k["namespaces"][t]["sharedWith"] == want, t
    assert k["cgroups"] == open(f"/proc/{pid}/cgroup").read().splitlines()
    s = proc_status(pid)
    for name, field in SETS.items():
        assert k["capabilities"][name]["hex"] == s[field], name
        if shutil.which("capsh"):
            assert k["capabilities"][name]["names"] == capsh_names(s[field]), name
    assert k["noNewPrivs"] == (s["NoNewPrivs"] == "1")
    assert k["seccomp"]["mode"] == SECCOMP[s["Seccomp"]]
    assert k["seccomp"]["filters"] == int(s["Seccomp_filters"])
    keys = ("real", "effective", "saved", "filesystem")
    assert [k["uids"][x] for x in keys] == [int(v) for v in s["Uid"].split()]
    assert [k["gids"][x] for x in keys] == [int(v) for v in s["Gid"].split()]
    assert k["groups"] == [int(v) for v in s["Groups"].split()]


def test_container_kernel_view_live_then_recorded(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    pinfo = json.loads(d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True).info["info"])
    pins = {"net": pinfo["namespaces"]["network"], "ipc": pinfo["namespaces"]["ipc"],
            "uts": pinfo["namespaces"]["uts"]}
    c = run_ctr(d, pod, cfg, busybox, SLEEP, linux={"security_context": {
        "seccomp": {"profile_type": pb.SecurityProfile.RuntimeDefault}, "no_new_privs": True,
        "run_as_user": {"value": 1234}, "run_as_group": {"value": 567},
        "supplemental_groups": [88, 99],
        "capabilities": {"add_capabilities": ["NET_ADMIN"], "drop_capabilities": ["KILL"]}}})
    k = kernel(d, c)
    assert k["source"] == "live"
    pid = k["pid"]
    check_against_proc(k, pid, pins, d.proc.pid)
    assert k["namespaces"]["net"]["sharedWith"] == "pod"
    assert k["namespaces"]["mnt"]["sharedWith"] == "none"
    assert k["uids"]["effective"] == 1234 and k["gids"]["effective"] == 567
    assert 88 in k["groups"] and 99 in k["groups"]
    assert "CAP_NET_ADMIN" in k["capabilities"]["bounding"]["names"]
    assert "CAP_KILL" not in k["capabilities"]["bounding"]["names"]
    assert k["seccomp"]["mode"] == "filter" and k["seccomp"]["filters"] >= 1
    assert k["noNewPrivs"] is True
    assert k["cgroupVersion"] in ("v1", "v2")

    # Stopped: what was recorded, never re-read (the pid may be reused).
    d.rt.StopContainer(container_id=c, timeout=0)
    wait_exited(d, c)
    r1 = kernel(d, c)
    assert r1["source"] == "recorded"
    assert r1["pid"] == pid and r1["namespaces"] == k["namespaces"]
    assert r1["readAt"] == kernel(d, c)["readAt"]


def test_host_namespaces_and_short_lived_container(daemon, busybox, tmp_path):
    d = daemon
    host = {"security_context": {"namespace_options": {
        "network": pb.NODE, "ipc": pb.NODE, "pid": pb.NODE}}}
    pod, cfg = run_pod(d, tmp_path, linux=host)
    c = run_ctr(d, pod, cfg, busybox, SLEEP, linux=host)
    k = kernel(d, c)
    check_against_proc(k, k["pid"], {}, d.proc.pid)
    for t in ("net", "ipc", "pid"):
        assert k["namespaces"][t]["sharedWith"] == "host", t
        assert k["namespaces"][t]["link"] == os.readlink(f"/proc/{d.proc.pid}/ns/{t}")
    # A container that is gone before anyone asks: the view of its start
    # (recorded before StartContainer returns).
    q = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "while [ ! -e /go ]; do sleep 0.1; done"])
    d.rt.ExecSync(container_id=q, cmd=["touch", "/go"], timeout=10)
    wait_exited(d, q)
    kq = kernel(d, q)
    assert kq["source"] == "recorded" and kq["pid"] > 0
    assert kq["namespaces"]["net"]["sharedWith"] == "host"


def test_pod_kernel_view(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux={"security_context": {
        "namespace_options": {"pid": pb.POD}}})
    k = pod_kernel(d, pod)
    assert k["source"] == "live"
    for t in ("net", "ipc", "uts", "pid"):
        ns = k["namespaces"][t]
        assert ns["sharedWith"] == "pod"
        assert ns["link"] == f"{t}:[{os.stat(ns['pin']).st_ino}]"
    init = k["initPid"]
    assert k["namespaces"]["net"]["link"] == os.readlink(f"/proc/{init}/ns/net")
    assert k["namespaces"]["pid"]["link"] == os.readlink(f"/proc/{init}/ns/pid_for_children")
    # The pod cgroup holds the pod's init (directly or in a child).
    dirs = k["cgroup"]["dirs"]
    assert dirs and all(os.path.isdir(x) for x in dirs)
    own = open(f"/proc/{init}/cgroup").read()
    assert k["cgroup"]["path"].strip("/") in own
    assert k["ips"] == []  # no pod network on this daemon
    # A container of the pod shares the pod's namespaces.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, linux={"security_context": {
        "namespace_options": {"pid": pb.POD}}})
    kc = kernel(d, c)
    for t in ("net", "ipc", "uts", "pid"):
        assert kc["namespaces"][t]["link"] == k["namespaces"][t]["link"], t
        assert kc["namespaces"][t]["sharedWith"] == "pod", t
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    r = pod_kernel(d, pod)
    assert r["source"] == "recorded" and r["namespaces"] == k["namespaces"]
    assert kernel(d, c)["source"] == "recorded"
