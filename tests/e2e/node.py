"""A kind-style node for the tests, run by husk itself: deploy/node's
image (build-image over build-rootfs' cached rootfs, with this build's
binaries) pushed to the test registry, pulled by a host huskd and run as
the privileged pod of deploy/node/pod.json and container.json (systemd
mode: a private cgroup namespace, its own writable cgroup tree, tmpfs /run
and /tmp, SIGRTMIN+3 to stop) on the host's network, so it reaches the
test registries on loopback. /var/lib/husk and the inner socket's
directory are host directories (ext4, not overlay); the inner huskd runs
with the systemd driver and its config from a host file."""
import json
import os
import subprocess
import time
import uuid

import pytest

from conftest import BUILD, REPO, CRIClient, make_channel, mounts_under, run_tmpdir
from pods import pid_of
from registry import registries  # noqa: F401  (fixture)

CGROUP = "/sys/fs/cgroup"


@pytest.fixture(scope="session")
def node_image(registries_session):
    """The node image in the open test registry, built once a session (so
    from the session's registries: `registries` is per module)."""
    out = run_tmpdir("node-image")
    try:
        p = subprocess.run(["bash", os.path.join(REPO, "deploy", "node", "build-image"),
                            os.path.join(out, "layout"), BUILD], capture_output=True, text=True)
        if p.returncode == 3:
            pytest.skip(f"node rootfs: {p.stderr.strip()}")
        assert p.returncode == 0, f"build-image failed:\n{p.stderr}"
        ref = f"{registries_session.open.host}/husk/node:test"
        subprocess.run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                        f"oci:{out}/layout:node", f"docker://{ref}"], check=True,
                       capture_output=True)
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", out], check=False)
    return ref


def host_cgroup_dirs(pid):
    """The host directory of each hierarchy pid is in."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            name = "unified" if ctrls == "" else ctrls.replace("name=", "")
            d = os.path.join(CGROUP, name)
            if os.path.isdir(d):
                out[name] = d + path
    return out


def pids_in_tree(d):
    pids = set()
    for root, _dirs, files in os.walk(d):
        if "cgroup.procs" in files:
            with open(os.path.join(root, "cgroup.procs")) as f:
                pids.update(int(x) for x in f.read().split())
    return pids


class NodePod:
    """One node pod of the host huskd d; the inner huskd's config is
    config (husk.json)."""

    def __init__(self, d, image, config):
        self.d = d
        self.base = run_tmpdir("node-pod")
        self.lib = os.path.join(self.base, "lib")
        self.run = os.path.join(self.base, "run")
        os.makedirs(self.lib)
        os.makedirs(self.run)
        self.config = os.path.join(self.base, "husk.json")
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.socket = os.path.join(self.run, "husk.sock")
        self.image = image
        self.channel = None
        self.cid = self.pod = self.pid = None
        self.last_err = ""

    def start(self):
        """The pod and container of deploy/node/*.json (the README's), with
        this run's names, image and host directories."""
        with open(os.path.join(REPO, "deploy", "node", "pod.json")) as f:
            self.pod_cfg = json.load(f)
        self.pod_cfg["metadata"].update(name="node-" + uuid.uuid4().hex[:8],
                                        uid=uuid.uuid4().hex)
        self.pod_cfg["log_directory"] = os.path.join(self.base, "logs")
        with open(os.path.join(REPO, "deploy", "node", "container.json")) as f:
            cfg = json.load(f)
        cfg["image"]["image"] = self.image
        hosts = {"/var/lib/husk": self.lib, "/run/husk": self.run}
        for m in cfg["mounts"]:
            m["host_path"] = hosts[m["container_path"]]
        cfg["mounts"].append({"container_path": "/etc/husk/husk.json",
                              "host_path": self.config, "readonly": True})
        self.pod = self.d.rt.RunPodSandbox(config=self.pod_cfg).pod_sandbox_id
        self.cid = self.d.rt.CreateContainer(pod_sandbox_id=self.pod, config=cfg,
                                             sandbox_config=self.pod_cfg).container_id
        self.d.rt.StartContainer(container_id=self.cid)
        self.pid = pid_of(self.d, self.cid)
        # The container's cgroup: systemd may have moved itself to its
        # init.scope below it already.
        self.cgdirs = {k: v[:-len("/init.scope")] if v.endswith("/init.scope") else v
                       for k, v in host_cgroup_dirs(self.pid).items()}
        return self

    def wait_running(self, timeout=180):
        """systemctl answers once systemd's private socket is up; --wait
        then returns when the boot is done. The deadline bounds a hang."""
        deadline = time.time() + timeout
        state = ""
        while state not in ("running", "degraded") and time.time() < deadline:
            state = self.sh("systemctl", "is-system-running", "--wait", check=False).strip()
            if not state:
                time.sleep(0.2)
        assert state in ("running", "degraded"), (state, self.last_err, self.log(),
                                                  self.sh("systemctl", "--failed", check=False))
        return state

    def sh(self, *cmd, check=True, timeout=120):
        r = self.d.rt.ExecSync(container_id=self.cid, cmd=list(cmd), timeout=timeout,
                               _timeout=timeout + 30)
        out = r.stdout.decode(errors="replace")
        self.last_err = r.stderr.decode(errors="replace")
        if check:
            assert r.exit_code == 0, f"{cmd}: {r.exit_code}\n{out}\n{self.last_err}"
        return out

    def show(self, unit, prop):
        return self.sh("systemctl", "show", "-P", prop, unit, check=False).strip()

    def host_dir(self, ctrl, *parts):
        """A cgroup of the node, as the host sees it."""
        return os.path.join(self.cgdirs[ctrl], *parts)

    def log(self):
        try:
            with open(os.path.join(self.base, "logs", "node.log"), errors="replace") as f:
                return f.read()[-6000:]
        except OSError:
            return ""

    def connect(self):
        if self.channel is not None:
            self.channel.close()
        self.channel = make_channel(self.socket)
        return self

    @property
    def rt(self):
        return CRIClient(self.channel, "RuntimeService")

    @property
    def img(self):
        return CRIClient(self.channel, "ImageService")

    def remove(self):
        """Stop (SIGRTMIN+3: systemd halts; in a PID namespace reboot(2)
        ends its init with SIGINT, 128 + 2 = 130, where SIGKILL's 137 would
        mean the grace period ran out) and remove the node pod; returns
        what it left on the host (cgroups in any hierarchy, mounts, its
        PID 1)."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        # systemd's grace period, then the kill: the call may take longer
        # than the client's default deadline.
        self.d.rt.StopContainer(container_id=self.cid, timeout=60, _timeout=180)
        st = self.d.rt.ContainerStatus(container_id=self.cid).status
        self.exit_code = st.exit_code
        self.d.rt.RemoveContainer(container_id=self.cid)
        self.d.rt.StopPodSandbox(pod_sandbox_id=self.pod)
        self.d.rt.RemovePodSandbox(pod_sandbox_id=self.pod)
        left = [p for p in self.cgdirs.values() if os.path.exists(p)]
        left += mounts_under(self.base)
        if os.path.exists(f"/proc/{self.pid}"):
            left.append(f"pid {self.pid}")
        if not mounts_under(self.base):
            subprocess.run(["rm", "-rf", "--one-file-system", self.base], check=False)
        return left
