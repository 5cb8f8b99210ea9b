"""huskd killed with SIGKILL at arbitrary moments while pods and containers
are being created and removed: after each restart every record is usable,
everything can be removed, and nothing is left behind."""
import glob
import os
import random
import threading
import time

import grpc

from conftest import POD_CG_PARENT, mounts_under
from pods import (CGROUP_ROOT, busybox, huskd_own_mounts, leftovers, run_ctr,  # noqa: F401
                  run_pod)
from registry import registries  # noqa: F401


def churn(d, tmp_path, image, stop, made):
    while not stop.is_set():
        try:
            pod, cfg = run_pod(d, tmp_path)
            made.append(pod)
            c = run_ctr(d, pod, cfg, image, ["sleep", "1000"])
            made.append(c)
            if random.random() < 0.5:
                d.rt.StopPodSandbox(pod_sandbox_id=pod)
                d.rt.RemovePodSandbox(pod_sandbox_id=pod)
        except (grpc.RpcError, ValueError, AttributeError):
            return  # the daemon went away under us


def test_sigkill_during_churn(daemon, busybox, tmp_path):
    d = daemon
    rnd = random.Random(int(os.environ.get("HUSK_CHAOS_SEED", "1234")))
    made = []
    for _ in range(3):
        stop = threading.Event()
        workers = [threading.Thread(target=churn, args=(d, tmp_path, busybox, stop, made))
                   for _ in range(3)]
        for w in workers:
            w.start()
        time.sleep(rnd.uniform(0.3, 1.5))
        d.kill()
        stop.set()
        for w in workers:
            w.join(30)
        d.start()
        # Every pod and container the daemon knows answers status.
        for p in d.rt.ListPodSandbox().items:
            d.rt.PodSandboxStatus(pod_sandbox_id=p.id)
        for c in d.rt.ListContainers().containers:
            d.rt.ContainerStatus(container_id=c.id)
    for c in d.rt.ListContainers().containers:
        d.rt.RemoveContainer(container_id=c.id)
    for p in d.rt.ListPodSandbox().items:
        d.rt.StopPodSandbox(pod_sandbox_id=p.id)
        d.rt.RemovePodSandbox(pod_sandbox_id=p.id)
    d.restart()  # and once more, cleanly: nothing to recover
    assert leftovers(d, made) == []
    # Including what was made but never answered (killed mid-call).
    for sub in ("state/pods", "state/pods-mnt", "state/containers", "root/image/containers",
                "root/image/mnt"):
        path = os.path.join(d.base, sub)
        assert not os.path.exists(path) or os.listdir(path) == [], (sub, os.listdir(path))
    assert [m for m in mounts_under(d.base) if m not in huskd_own_mounts(d)] == []


def husk_cgroups():
    """Every cgroup directory beneath this run's pod parent, in every
    hierarchy (v1 controllers and the v2 mount), relative to the parent."""
    out = set()
    for top in glob.glob(f"{CGROUP_ROOT}/*/{POD_CG_PARENT}"):
        for root, dirs, _ in os.walk(top):
            out |= {os.path.relpath(os.path.join(root, n), top) for n in dirs}
    return out


def create_loop(d, pod, cfg, image, stop):
    while not stop.is_set():
        try:
            run_ctr(d, pod, cfg, image, ["sleep", "1000"], start=False)
        except (grpc.RpcError, ValueError, AttributeError):
            return


def pod_loop(d, tmp_path, stop):
    while not stop.is_set():
        try:
            run_pod(d, tmp_path)
        except (grpc.RpcError, ValueError, AttributeError):
            return


def test_sigkill_during_creates_leaves_no_cgroup(daemon, busybox, tmp_path):
    """issue 10 finding 9: a cgroup made by RunPodSandbox or CreateContainer
    before huskd died, with no record yet, is removed at the next start."""
    d = daemon
    rnd = random.Random(int(os.environ.get("HUSK_CHAOS_SEED", "4321")))
    pod, cfg = run_pod(d, tmp_path)
    for _ in range(4):
        stop = threading.Event()
        workers = [threading.Thread(target=create_loop, args=(d, pod, cfg, busybox, stop))
                   for _ in range(2)]
        workers.append(threading.Thread(target=pod_loop, args=(d, tmp_path, stop)))
        for w in workers:
            w.start()
        time.sleep(rnd.uniform(0.2, 1.0))
        d.kill()
        stop.set()
        for w in workers:
            w.join(30)
        d.start()
        # Each cgroup is a known pod's, or a known container's or init's
        # within its pod's.
        pods = {p.id for p in d.rt.ListPodSandbox().items}
        ctrs = {c.id for c in d.rt.ListContainers().containers}
        stray = {p for p in husk_cgroups()
                 if p.split("/")[0] not in pods
                 or (p.count("/") == 1 and p.split("/")[1] not in ctrs | {"init"})}
        assert stray == set(), (stray, d.logs()[-3000:])
    for c in d.rt.ListContainers().containers:
        d.rt.RemoveContainer(container_id=c.id)
    for p in d.rt.ListPodSandbox().items:
        d.rt.StopPodSandbox(pod_sandbox_id=p.id)
        d.rt.RemovePodSandbox(pod_sandbox_id=p.id)
    assert husk_cgroups() == set()
    assert not glob.glob(f"{CGROUP_ROOT}/*/{POD_CG_PARENT}")
    pending = os.path.join(d.state, "cgroups-pending")
    assert not os.path.isdir(pending) or os.listdir(pending) == []
