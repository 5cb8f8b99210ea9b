"""huskd killed with SIGKILL at arbitrary moments while pods and containers
are being created and removed: after each restart every record is usable,
everything can be removed, and nothing is left behind."""
import os
import random
import threading
import time

import grpc

from conftest import mounts_under
from pods import busybox, leftovers, run_ctr, run_pod  # noqa: F401
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
    for sub in ("state/pods", "state/containers", "root/image/containers"):
        path = os.path.join(d.base, sub)
        assert not os.path.exists(path) or os.listdir(path) == [], (sub, os.listdir(path))
    assert mounts_under(d.base) in ([], [os.path.join(d.state, "pods")])
