"""Clients that give up and retry (the kubelet after --runtime-request-timeout):
a RunPodSandbox or CreateContainer whose caller has gone goes on, and its
retry with the same identity and config gets the id that was made; a retry
while the first still runs waits for it; a changed config is refused; what
nobody collects is removed after retry_keep_period; a Stop or Remove during
the creation leaves nothing.

Pods are made slow by a CNI plugin of the test's that holds ADD while a gate
file exists (after bridge and host-local did their part); containers by
HUSK_TEST_CREATE_HOLD, which holds CreateContainer while its file exists."""
import json
import os
import time

import grpc
import pytest

from conftest import pb
from pods import ctr_config, expect_error, leftovers, pod_config
from registry import registries  # noqa: F401
from test_network import (BUSYBOX_SLEEP, assert_clean, busybox_in, cni,  # noqa: F401
                          exec_ok, net_daemon, netns_pin, pod_ips, sh)

E = grpc.StatusCode
SHORT = 1.5  # the first call's client deadline, well below the gate's hold

SLOW_PLUGIN = """#!/usr/bin/python3
# ADD: note the pod id, hold while the gate file exists, pass the result on.
import json, os, sys, time
conf = json.load(sys.stdin)
if os.environ.get("CNI_COMMAND") == "ADD":
    gate = conf["gate"]
    with open(gate + ".ids", "a") as f:
        f.write(os.environ["CNI_CONTAINERID"] + "\\n")
    end = time.time() + 50
    while os.path.exists(gate) and time.time() < end:
        time.sleep(0.02)
    result = dict(conf.get("prevResult") or {})
    result["cniVersion"] = conf["cniVersion"]
    json.dump(result, sys.stdout)
"""


class Gate:
    """The slow plugin's gate: closed while its file exists."""

    def __init__(self, cni):
        self.path = os.path.join(cni.base, "gate")
        plugin = os.path.join(cni.bin_dir, "husk-slow")
        with open(plugin, "w") as f:
            f.write(SLOW_PLUGIN)
        os.chmod(plugin, 0o755)
        cni.write(cni.conflist(extra_plugins=[{"type": "husk-slow", "gate": self.path}]))

    def close(self):
        open(self.path, "w").close()

    def open(self):
        os.unlink(self.path)

    def adds(self):
        """Pod ids ADD was called for, in order."""
        try:
            with open(self.path + ".ids") as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def wait_add(self, n=1, timeout=30):
        end = time.time() + timeout
        while len(self.adds()) < n:
            assert time.time() < end, "the slow plugin's ADD did not start"
            time.sleep(0.02)
        return self.adds()[n - 1]


@pytest.fixture
def gated(daemon_factory, cni):  # noqa: F811
    cni.base = os.path.dirname(cni.conf_dir)

    def make(**cfg):
        d = net_daemon(daemon_factory, cni, write=False, **cfg)
        return d, Gate(cni)
    return make


def wait_until(pred, what, timeout=40):
    end = time.time() + timeout
    while not pred():
        assert time.time() < end, what
        time.sleep(0.05)


def pod_ids(d):
    return [p.id for p in d.rt.ListPodSandbox().items]


def give_up(fn, **kw):
    """A call whose client deadline passes while huskd still works on it."""
    details = expect_error(E.DEADLINE_EXCEEDED, fn, _timeout=SHORT, **kw)
    return details


# ---- pods ----


def test_pod_retry_gets_the_pod_the_first_call_made(gated, cni, registries):  # noqa: F811
    d, gate = gated()
    gate.close()
    cfg = pod_config(labels={"a": "1", "b": "2", "c": "3"})
    give_up(d.rt.RunPodSandbox, config=cfg)
    pod = gate.wait_add()
    assert pod_ids(d) == []  # not made yet: the plugin holds it
    # The retry (its maps in another order: the same call) comes while the
    # first still runs: it waits for it.
    again = dict(cfg, labels={"c": "3", "b": "2", "a": "1"})
    retry = d.rt.RunPodSandbox.future(config=again, _timeout=40)
    time.sleep(0.3)  # ordering only: let the retry reach huskd
    gate.open()
    assert retry.result().pod_sandbox_id == pod
    assert gate.adds() == [pod], "one ADD: no second pod was started"
    # Once a caller had the id, the same call again is a duplicate.
    details = expect_error(E.ALREADY_EXISTS, d.rt.RunPodSandbox, config=cfg)
    assert f"already exists as '{pod}'" in details, details
    assert pod_ids(d) == [pod]
    st = d.rt.PodSandboxStatus(pod_sandbox_id=pod).status
    assert st.state == pb.SANDBOX_READY
    # The pod works: its address is on eth0 in its namespace, and a
    # container in it runs and sees it.
    (ip,) = pod_ips(d, pod)
    out = sh("nsenter", f"--net={netns_pin(d, pod)}", "ip", "-o", "addr", "show", "eth0").stdout
    assert f"inet {ip}/" in out
    image = busybox_in(d, registries)
    cid = d.rt.CreateContainer(pod_sandbox_id=pod, config=ctr_config(image, BUSYBOX_SLEEP),
                               sandbox_config=cfg).container_id
    d.rt.StartContainer(container_id=cid)
    assert ip in exec_ok(d, cid, ["cat", "/etc/hosts"])
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [pod, cid])
    assert "pod handed to a retry" in d.logs()


def test_pod_nobody_collects_is_removed_after_the_keep_period(gated, cni):  # noqa: F811
    d, gate = gated(retry_keep_period=2)
    gate.close()
    give_up(d.rt.RunPodSandbox, config=pod_config())
    pod = gate.wait_add()
    gate.open()
    wait_until(lambda: pod in pod_ids(d), "the pod was not made")
    assert len(cni.leases()) == 1
    wait_until(lambda: pod not in pod_ids(d), "the pod was not removed")
    assert_clean(d, cni, [pod])
    log = d.logs()
    assert "made for a caller that never came back" in log and f"pod={pod}" in log


def test_pod_used_without_a_retry_is_not_removed(gated, cni, registries):  # noqa: F811
    # The period must outlast the CreateContainer below on a loaded machine
    # (with 2 s, a run at load 18 removed the pod before it was used).
    d, gate = gated(retry_keep_period=8)
    image = busybox_in(d, registries)
    gate.close()
    cfg = pod_config()
    give_up(d.rt.RunPodSandbox, config=cfg)
    pod = gate.wait_add()
    gate.open()
    wait_until(lambda: pod in pod_ids(d), "the pod was not made")
    # The kubelet may find it in its list and use it without a retry.
    cid = d.rt.CreateContainer(pod_sandbox_id=pod, config=ctr_config(image, BUSYBOX_SLEEP),
                               sandbox_config=cfg).container_id
    d.rt.StartContainer(container_id=cid)
    # A pod nobody uses, made later, goes at the end of its own period,
    # after the first one's.
    gate.close()
    give_up(d.rt.RunPodSandbox, config=pod_config())
    lost = gate.wait_add(2)
    gate.open()
    wait_until(lambda: lost in pod_ids(d), "the second pod was not made")
    wait_until(lambda: lost not in pod_ids(d), "the second pod was not removed")
    assert pod_ids(d) == [pod]
    exec_ok(d, cid, ["true"])
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [pod, lost, cid])


def test_pod_retry_with_another_config_is_refused(gated, cni):  # noqa: F811
    d, gate = gated()
    gate.close()
    cfg = pod_config()
    give_up(d.rt.RunPodSandbox, config=cfg)
    pod = gate.wait_add()
    meta = cfg["metadata"]
    ident = f"pod sandbox '{meta['name']}' (namespace 'e2e', uid '{meta['uid']}', attempt 0)"
    changed = dict(cfg, hostname="elsewhere")
    # While the first runs...
    details = expect_error(E.ALREADY_EXISTS, d.rt.RunPodSandbox, config=changed)
    assert ident in details and "different config" in details, details
    gate.open()
    wait_until(lambda: pod in pod_ids(d), "the pod was not made")
    # ... and once it is kept (the pod is listed a moment before the first
    # call has returned; until then it is still "being created").
    last = []

    def kept():
        last[:] = [expect_error(E.ALREADY_EXISTS, d.rt.RunPodSandbox, config=changed)]
        return "already exists as" in last[0]
    wait_until(kept, "the first call did not finish")
    details = last[0]
    assert ident in details and f"already exists as '{pod}'" in details, details
    assert "different config" in details
    # The same config still gets it.
    assert d.rt.RunPodSandbox(config=cfg).pod_sandbox_id == pod
    assert gate.adds() == [pod]
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [pod])


@pytest.mark.parametrize("method", ["StopPodSandbox", "RemovePodSandbox"])
def test_stop_or_remove_during_creation_rolls_it_back(gated, cni, method):  # noqa: F811
    d, gate = gated()
    gate.close()
    cfg = pod_config()
    run = d.rt.RunPodSandbox.future(config=cfg, _timeout=40)
    pod = gate.wait_add()
    # The plugin holding ADD is killed, its chain undone, the pod rolled
    # back; the Stop or Remove returns once that is done, the gate still
    # closed.
    getattr(d.rt, method)(pod_sandbox_id=pod, _timeout=40)
    with pytest.raises(grpc.RpcError) as e:
        run.result()
    assert e.value.code() == E.CANCELLED, e.value.details()
    assert "stopped or removed while being created" in e.value.details()
    assert os.path.exists(gate.path)
    expect_error(E.NOT_FOUND, d.rt.StopPodSandbox, pod_sandbox_id=pod)  # as any unknown pod
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert pod_ids(d) == []
    assert_clean(d, cni, [pod])
    # The identity is free again: a new call makes a new pod.
    again = d.rt.RunPodSandbox.future(config=cfg, _timeout=40)
    gate.wait_add(2)
    gate.open()
    pod2 = again.result().pod_sandbox_id
    assert pod2 != pod and pod_ids(d) == [pod2]
    d.rt.StopPodSandbox(pod_sandbox_id=pod2)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod2)
    assert_clean(d, cni, [pod2])


# ---- containers ----


TERM = "/dev/termination-log"


def kubelet_ctr(image, name, tmp_path, cmd=BUSYBOX_SLEEP):
    """A config as the kubelet sends it: its termination message file has
    a new random name on each call."""
    host = tmp_path / ("term-" + os.urandom(4).hex())
    host.write_text("")
    return ctr_config(image, cmd, name=name,
                      annotations={"io.kubernetes.container.terminationMessagePath": TERM},
                      mounts=[{"container_path": TERM, "host_path": str(host)}])


@pytest.fixture
def held(daemon_factory, registries, tmp_path, monkeypatch):  # noqa: F811
    hold = tmp_path / "hold"
    monkeypatch.setenv("HUSK_TEST_CREATE_HOLD", str(hold))
    d = daemon_factory({"retry_keep_period": 3})
    image = busybox_in(d, registries)
    cfg = pod_config()
    pod = d.rt.RunPodSandbox(config=cfg).pod_sandbox_id
    return d, image, pod, cfg, hold


def ctr_ids(d):
    return [c.id for c in d.rt.ListContainers().containers]


def ctr_left(d, cid):
    """The container's cgroups, files and mounts (its pod's stay)."""
    return [x for x in leftovers(d, [cid]) if cid in x]


def test_container_retry_gets_the_container_the_first_call_made(held, tmp_path):
    d, image, pod, pcfg, hold = held
    hold.write_text("")
    give_up(d.rt.CreateContainer, pod_sandbox_id=pod,
            config=kubelet_ctr(image, "web", tmp_path), sandbox_config=pcfg)
    assert ctr_ids(d) == []
    retry = d.rt.CreateContainer.future(pod_sandbox_id=pod, _timeout=40,
                                        config=kubelet_ctr(image, "web", tmp_path),
                                        sandbox_config=pcfg)
    time.sleep(0.3)  # ordering only
    hold.unlink()
    cid = retry.result().container_id
    assert ctr_ids(d) == [cid]
    # A retry with another command is refused, naming the identity.
    details = expect_error(E.ALREADY_EXISTS, d.rt.CreateContainer, pod_sandbox_id=pod,
                           config=kubelet_ctr(image, "web", tmp_path, ["sleep", "7"]),
                           sandbox_config=pcfg)
    assert f"container 'web' (pod sandbox '{pod}', attempt 0)" in details, details
    assert f"already exists as '{cid}'" in details and "different config" in details
    # The container works.
    d.rt.StartContainer(container_id=cid)
    assert exec_ok(d, cid, ["echo", "alive"]).strip() == "alive"
    # Past the keep period a collected container stays.
    wait_until(lambda: "container handed to a retry" in d.logs(), "no retry log")
    d.rt.RemoveContainer(container_id=cid)
    assert ctr_left(d, cid) == []


def test_container_nobody_collects_is_removed(held, tmp_path):
    d, image, pod, pcfg, hold = held
    hold.write_text("")
    give_up(d.rt.CreateContainer, pod_sandbox_id=pod,
            config=kubelet_ctr(image, "lost", tmp_path), sandbox_config=pcfg)
    hold.unlink()
    wait_until(lambda: ctr_ids(d), "the container was not made")
    (cid,) = ctr_ids(d)
    wait_until(lambda: not ctr_ids(d), "the container was not removed")
    assert ctr_left(d, cid) == []
    assert f"container={cid}" in d.logs()
    assert "made for a caller that never came back" in d.logs()
    # The pod is untouched.
    assert d.rt.PodSandboxStatus(pod_sandbox_id=pod).status.state == pb.SANDBOX_READY


def test_started_container_is_not_removed(held, tmp_path):
    d, image, pod, pcfg, hold = held

    def lost_create(name):
        hold.write_text("")
        give_up(d.rt.CreateContainer, pod_sandbox_id=pod,
                config=kubelet_ctr(image, name, tmp_path), sandbox_config=pcfg)
        before = set(ctr_ids(d))
        hold.unlink()
        wait_until(lambda: set(ctr_ids(d)) - before, "the container was not made")
        (cid,) = set(ctr_ids(d)) - before
        return cid

    found = lost_create("found")
    # The kubelet may find it in its list and start it without a retry.
    d.rt.StartContainer(container_id=found)
    lost = lost_create("lost")
    wait_until(lambda: lost not in ctr_ids(d), "the second container was not removed")
    assert ctr_ids(d) == [found]
    exec_ok(d, found, ["true"])


def test_remove_pod_during_container_creation(held, tmp_path):
    d, image, pod, pcfg, hold = held
    hold.write_text("")
    create = d.rt.CreateContainer.future(pod_sandbox_id=pod, _timeout=40,
                                         config=kubelet_ctr(image, "late", tmp_path),
                                         sandbox_config=pcfg)
    time.sleep(0.3)  # ordering only
    remove = d.rt.RemovePodSandbox.future(pod_sandbox_id=pod, _timeout=40)
    time.sleep(0.3)
    hold.unlink()
    remove.result()
    try:
        cid = create.result().container_id
    except grpc.RpcError:
        cid = None
    assert pod_ids(d) == [] and ctr_ids(d) == []
    assert leftovers(d, [pod] + ([cid] if cid else [])) == []
