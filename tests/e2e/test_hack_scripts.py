"""hack/start, hack/stop and hack/restart on hosts without systemd, run on a
private socket, root, state and CNI dir (the scripts take them from the
environment) so that they never touch the huskd other tests run: the default
bridge network is installed only where no CNI config exists, stop and
restart signal only the huskd that holds the socket's lock."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import HUSKD, POD_CG_PARENT, make_channel, CRIClient
from test_network import cni, PLUGINS, CNI_BIN  # noqa: F401

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

pytestmark = pytest.mark.skipif(
    os.path.isdir("/run/systemd/system"), reason="systemd is PID 1: the scripts use the unit")


class Node:
    """A private install: HUSK_PREFIX/bin links to the build, a config
    whose paths all live under base."""

    def __init__(self, base):
        self.base = base
        self.prefix = os.path.join(base, "usr")
        os.makedirs(os.path.join(self.prefix, "bin"))
        build = os.path.dirname(HUSKD)
        for p in ("huskd", "husk-shim", "husk-pause"):
            os.symlink(os.path.join(build, p), os.path.join(self.prefix, "bin", p))
        self.socket = os.path.join(base, "run", "husk.sock")
        self.cni_dir = os.path.join(base, "net.d")
        self.config = os.path.join(base, "etc", "husk.json")
        os.makedirs(os.path.dirname(self.config))
        with open(self.config, "w") as f:
            json.dump({"socket": self.socket, "root": os.path.join(base, "root"),
                       "state": os.path.join(base, "state"), "cni_conf_dir": self.cni_dir,
                       "cni_bin_dirs": [CNI_BIN], "pod_cgroup_parent": POD_CG_PARENT}, f)
        self.log = os.path.join(base, "huskd.log")

    def run(self, script, *args, **env):
        e = dict(os.environ, HUSK_PREFIX=self.prefix, HUSK_CONFIG=self.config,
                 HUSK_LOG=self.log, **env)
        return subprocess.run(["bash", os.path.join(REPO, "hack", script), *args], env=e,
                              capture_output=True, text=True, timeout=120)

    def pid(self):
        """The pid in the socket's lock file, if a live huskd holds it."""
        try:
            with open(self.socket + ".lock") as f:
                pid = int(f.read().strip() or 0)
        except FileNotFoundError:
            return None
        return pid if pid and os.path.exists(f"/proc/{pid}") else None

    def rt(self):
        return CRIClient(make_channel(self.socket), "RuntimeService")


@pytest.fixture
def node(tmp_path):
    n = Node(str(tmp_path))
    yield n
    pid = n.pid()
    if pid:
        rt = n.rt()
        for p in rt.ListPodSandbox().items:
            rt.StopPodSandbox(pod_sandbox_id=p.id)
            rt.RemovePodSandbox(pod_sandbox_id=p.id)
        n.run("stop")


def conflist(n):
    with open(os.path.join(n.cni_dir, "10-husk-bridge.conflist")) as f:
        return json.load(f)


def test_start_installs_the_default_network_only_where_none_exists(node, daemon):
    r = node.run("start", "--no-build")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed the default pod network" in r.stdout
    with open(os.path.join(REPO, "deploy", "cni", "10-husk-bridge.conflist")) as f:
        assert conflist(node) == json.load(f)
    assert conflist(node)["plugins"][0]["ipMasq"] is False
    pid = node.pid()
    assert pid and open(f"/proc/{pid}/comm").read().strip() == "huskd"
    assert node.rt().Status().status.conditions  # serving
    # NAT only when asked for; an existing config is never touched.
    os.unlink(os.path.join(node.cni_dir, "10-husk-bridge.conflist"))
    r = node.run("restart", HUSK_CNI_NAT="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert conflist(node)["plugins"][0]["ipMasq"] is True
    assert node.pid() != pid
    mine = os.path.join(node.cni_dir, "10-husk-bridge.conflist")
    os.rename(mine, os.path.join(node.cni_dir, "50-mine.conflist"))
    before = os.listdir(node.cni_dir)
    r = node.run("restart")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed" not in r.stdout and os.listdir(node.cni_dir) == before
    # Another huskd on this machine was never signalled.
    assert daemon.proc.poll() is None
    daemon.rt.Version(version="v1")


def test_a_pod_gets_an_ip_right_after_start(node, cni):  # noqa: F811
    r = node.run("start", "--no-build")
    assert r.returncode == 0, r.stdout + r.stderr
    # The installed network as is, but on the fixture's bridge and subnet so
    # that the test leaves nothing behind on the host.
    conf = conflist(node)
    conf["plugins"][0]["bridge"] = cni.bridge
    conf["plugins"][0]["ipam"]["ranges"] = [[{"subnet": cni.subnet}]]
    conf["plugins"][0]["ipam"]["dataDir"] = cni.data_dir
    with open(os.path.join(node.cni_dir, "10-husk-bridge.conflist"), "w") as f:
        json.dump(conf, f)
    rt = node.rt()
    pod = rt.RunPodSandbox(config={"metadata": {"name": "first", "uid": "u-first",
                                                "namespace": "default"}}).pod_sandbox_id
    ip = rt.PodSandboxStatus(pod_sandbox_id=pod).status.network.ip
    assert ip.startswith(cni.subnet.rsplit(".", 2)[0] + ".")
    # The pod survives a restart of huskd.
    r = node.run("restart")
    assert r.returncode == 0, r.stdout + r.stderr
    rt = node.rt()
    st = rt.PodSandboxStatus(pod_sandbox_id=pod).status
    assert st.state == 0 and st.network.ip == ip  # SANDBOX_READY


def test_stop_signals_only_the_lock_holder(node, daemon):
    # No huskd on this socket: a lock file naming another huskd (stale or
    # forged) must not get that huskd killed.
    os.makedirs(os.path.dirname(node.socket))
    with open(node.socket + ".lock", "w") as f:
        f.write(f"{daemon.proc.pid}\n")
    r = node.run("stop")
    assert r.returncode == 0 and "no huskd holds" in r.stdout, r.stdout + r.stderr
    assert daemon.proc.poll() is None
    r = node.run("start", "--no-build")
    assert r.returncode == 0, r.stdout + r.stderr
    pid = node.pid()
    assert pid != daemon.proc.pid
    r = node.run("stop")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not os.path.exists(f"/proc/{pid}") or \
        open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    assert node.pid() is None
    assert daemon.proc.poll() is None
    daemon.rt.Version(version="v1")
