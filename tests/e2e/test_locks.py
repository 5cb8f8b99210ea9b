"""No lock across a wait: a StopContainer in its grace period and a pod whose
CNI ADD is slow hold up nothing but calls on that same object. huskd runs
with HUSK_TEST_STRIPES=1, so every pod and container shares one lock stripe
(without it two ids share one of 64 stripes by chance)."""
import os
import time

import grpc
import pytest

from conftest import pb
from pods import (ctr_config, expect_error, pid_of, pod_config, run_ctr, run_pod, run_trapping,
                  status)
from registry import registries  # noqa: F401
from test_network import busybox_in, cni, exec_ok  # noqa: F401
from test_retry import Gate

E = grpc.StatusCode
QUICK = 15  # client deadline of the calls that must not wait out the stop
# Notes SIGTERM in its root but ignores it otherwise.
STUBBORN_TRAP = "trap 'touch /got-term' TERM"


def run_stubborn(d, pod, cfg, image):
    return run_trapping(d, pod, cfg, image, STUBBORN_TRAP)
SLEEP = ["sleep", "1000"]


@pytest.fixture
def one_stripe(monkeypatch):
    monkeypatch.setenv("HUSK_TEST_STRIPES", "1")


def wait_for(pred, what, timeout=30):
    end = time.time() + timeout
    while not pred():
        assert time.time() < end, what
        time.sleep(0.05)


def test_stop_in_grace_period_blocks_no_other_container(one_stripe, daemon_factory,
                                                        registries, tmp_path):  # noqa: F811
    d = daemon_factory()
    image = busybox_in(d, registries)
    pod, cfg = run_pod(d, tmp_path)
    slow = run_stubborn(d, pod, cfg, image)
    other = run_ctr(d, pod, cfg, image, SLEEP)
    third = run_ctr(d, pod, cfg, image, SLEEP)
    slow_pid = pid_of(d, slow)
    first = d.rt.StopContainer.future(container_id=slow, timeout=30, _timeout=60)
    # The kernel's view: the stop's SIGTERM reached the process.
    wait_for(lambda: os.path.exists(f"/proc/{slow_pid}/root/got-term"), "no SIGTERM came")
    # Calls on other containers of the same stripe go on meanwhile.
    assert d.rt.ContainerStatus(container_id=other, _timeout=QUICK).status.state == pb.CONTAINER_RUNNING
    assert exec_ok(d, other, ["echo", "hi"]).strip() == "hi"
    d.rt.StopContainer(container_id=third, timeout=0, _timeout=QUICK)
    assert status(d, third).status.state == pb.CONTAINER_EXITED
    d.rt.RemoveContainer(container_id=third, _timeout=QUICK)
    # And a status of the one stopping: still running, in its grace period.
    assert d.rt.ContainerStatus(container_id=slow, _timeout=QUICK).status.state == pb.CONTAINER_RUNNING
    assert not first.done(), "the first stop ended within its grace period"
    with open(f"/proc/{slow_pid}/status") as f:
        assert "State:\tZ" not in f.read()
    # A second stop with a shorter timeout joins the first and escalates:
    # SIGKILL at its own deadline; both calls end with the one exit.
    d.rt.StopContainer(container_id=slow, timeout=1, _timeout=QUICK)
    first.result(timeout=QUICK)
    st = status(d, slow).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137, st
    assert not os.path.exists(f"/proc/{slow_pid}")
    # RemoveContainer waits for no one now either.
    d.rt.RemoveContainer(container_id=slow, _timeout=QUICK)
    assert status(d, other).status.state == pb.CONTAINER_RUNNING


def test_stop_of_a_container_being_stopped_waits_for_its_exit(one_stripe, daemon_factory,
                                                               registries, tmp_path):  # noqa: F811
    """A second stop with a longer timeout waits for the first's outcome and
    sends nothing of its own past it: the first's SIGKILL ends both."""
    d = daemon_factory()
    image = busybox_in(d, registries)
    pod, cfg = run_pod(d, tmp_path)
    slow = run_stubborn(d, pod, cfg, image)
    slow_pid = pid_of(d, slow)
    first = d.rt.StopContainer.future(container_id=slow, timeout=2, _timeout=60)
    wait_for(lambda: os.path.exists(f"/proc/{slow_pid}/root/got-term"), "no SIGTERM came")
    d.rt.StopContainer(container_id=slow, timeout=30, _timeout=QUICK)
    first.result(timeout=QUICK)
    st = status(d, slow).status
    assert st.state == pb.CONTAINER_EXITED and st.exit_code == 137, st


def test_slow_cni_add_blocks_no_other_pod(one_stripe, daemon_factory, cni,  # noqa: F811
                                          registries):  # noqa: F811
    cni.base = os.path.dirname(cni.conf_dir)
    d = daemon_factory(cni.daemon_config())
    gate = Gate(cni)
    image = busybox_in(d, registries)
    other_cfg = pod_config()
    other = d.rt.RunPodSandbox(config=other_cfg).pod_sandbox_id
    gate.close()
    slow_cfg = pod_config()
    slow = d.rt.RunPodSandbox.future(config=slow_cfg, _timeout=60)
    slow_id = gate.wait_add(2)  # the first ADD was the other pod's
    # The pod being made is not there yet for anyone.
    expect_error(E.NOT_FOUND, d.rt.PodSandboxStatus, pod_sandbox_id=slow_id)
    # Every call on a pod of the same stripe goes on.
    st = d.rt.PodSandboxStatus(pod_sandbox_id=other, _timeout=QUICK).status
    assert st.state == pb.SANDBOX_READY
    cid = d.rt.CreateContainer(pod_sandbox_id=other, config=ctr_config(image, SLEEP),
                               sandbox_config=other_cfg, _timeout=QUICK).container_id
    d.rt.StartContainer(container_id=cid, _timeout=QUICK)
    assert exec_ok(d, cid, ["true"]) == ""
    d.rt.StopPodSandbox(pod_sandbox_id=other, _timeout=QUICK)
    d.rt.RemovePodSandbox(pod_sandbox_id=other, _timeout=QUICK)
    assert not slow.done(), "the slow pod was made while its ADD was held"
    gate.open()
    assert slow.result(timeout=QUICK).pod_sandbox_id == slow_id
    st = d.rt.PodSandboxStatus(pod_sandbox_id=slow_id).status
    assert st.state == pb.SANDBOX_READY
    d.rt.StopPodSandbox(pod_sandbox_id=slow_id)
    d.rt.RemovePodSandbox(pod_sandbox_id=slow_id)
