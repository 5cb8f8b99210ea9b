"""A kind-style node booted for the tests: systemd as PID 1 of new PID,
mount, UTS, IPC and cgroup namespaces over the Debian rootfs that
deploy/node/build-rootfs caches, with husk's fresh binaries, unit and
config copied in and huskd enabled. The node shares the host's network
(pods inside use the node's network), so it reaches the test registries
on loopback. Its socket, /var/lib/husk and huskd's state are host
directories (ext4, not overlay) bound in; its cgroups are husk/<name> in
every hierarchy, removed when it stops."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import pytest

from conftest import BUILD, REPO, make_channel, CRIClient

CACHE = os.environ.get("HUSK_NODE_CACHE", "/var/cache/husk-node")
CGROUP = "/sys/fs/cgroup"


def build_rootfs():
    p = subprocess.run(["bash", os.path.join(REPO, "deploy", "node", "build-rootfs"), CACHE],
                       capture_output=True, text=True)
    if p.returncode == 3:
        pytest.skip(f"node rootfs: {p.stderr.strip()}")
    assert p.returncode == 0, f"build-rootfs failed:\n{p.stderr}"
    return p.stdout.strip().splitlines()[-1]


def cgroup_mounts():
    """(directory, fstype, options) of the host's cgroup hierarchies."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, post = line.split(" - ")
            mp = pre.split()[4]
            fstype, _src, opts = post.split()[:3]
            if fstype in ("cgroup", "cgroup2") and mp.startswith(CGROUP + "/"):
                out.append((mp, fstype, opts))
    return out


BOOT = r"""
set -eu
mount --make-rprivate /
R=$NODE_MERGED
mount -t overlay overlay -o "lowerdir=$NODE_LOWER,upperdir=$NODE_UPPER,workdir=$NODE_WORK" "$R"
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount --make-rslave "$R/sys"
mount -t tmpfs -o nosuid,nodev,noexec,mode=755 tmpfs "$R/sys/fs/cgroup"
for m in $NODE_CGROUPS; do
	name=${m%%:*}; opts=${m#*:}
	mkdir -p "$R/sys/fs/cgroup/$name"
	if [ "$name" = unified ]; then
		mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup/unified"
	else
		mount -t cgroup -o "$opts" cgroup "$R/sys/fs/cgroup/$name"
	fi
done
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs "$R/run"
mkdir -p "$R/run/husk" "$R/run/lock"
mount --bind "$NODE_RUN" "$R/run/husk"
mount --bind "$NODE_LIB" "$R/var/lib/husk"
mount -t tmpfs -o nosuid,mode=755 tmpfs "$R/dev"
for n in null zero full random urandom tty; do
	touch "$R/dev/$n"; mount --bind "/dev/$n" "$R/dev/$n"
done
touch "$R/dev/console"; mount --bind /dev/null "$R/dev/console"
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o nosuid,nodev tmpfs "$R/dev/shm"
cd "$R"
mkdir -p .oldroot
pivot_root . .oldroot
umount -l /.oldroot
rmdir /.oldroot
exec env container=husk-node /lib/systemd/systemd --log-target=console
"""


class Node:
    def __init__(self, lower, config):
        self.name = "node-" + uuid.uuid4().hex[:8]
        self.base = tempfile.mkdtemp(prefix="husk-node-", dir="/tmp")
        self.lower = lower
        self.upper = os.path.join(self.base, "upper")
        self.work = os.path.join(self.base, "work")
        self.merged = os.path.join(self.base, "merged")
        self.run = os.path.join(self.base, "run")
        self.lib = os.path.join(self.base, "lib")
        for d in (self.upper, self.work, self.merged, self.run, self.lib):
            os.makedirs(d)
        self.socket = os.path.join(self.run, "husk.sock")
        self.cgroups = []
        self.proc = None
        self.channel = None
        self._install(config)

    def _install(self, config):
        u = self.upper
        os.makedirs(os.path.join(u, "usr/local/bin"))
        for b in ("huskd", "husk-shim", "husk-pause"):
            shutil.copy2(os.path.join(BUILD, b), os.path.join(u, "usr/local/bin", b))
        # Libraries the build links that the rootfs lacks (an ASan build's
        # runtime, say) come from the host, which is the same Debian.
        out = subprocess.run(["ldd", os.path.join(BUILD, "huskd")], capture_output=True,
                             text=True, check=True).stdout
        for line in out.splitlines():
            parts = line.split("=>")
            path = (parts[1] if len(parts) == 2 else parts[0]).split("(")[0].strip()
            if not path.startswith("/"):
                continue
            real = os.path.realpath(path)
            for p in {path, real}:
                if os.path.lexists(self.lower + p):
                    continue
                os.makedirs(os.path.dirname(u + p), exist_ok=True)
                shutil.copy2(real, u + p)
        os.makedirs(os.path.join(u, "etc/husk"))
        with open(os.path.join(u, "etc/husk/husk.json"), "w") as f:
            json.dump(config, f)
        sysd = os.path.join(u, "etc/systemd/system")
        os.makedirs(os.path.join(sysd, "multi-user.target.wants"))
        shutil.copy2(os.path.join(REPO, "deploy", "huskd.service"),
                     os.path.join(sysd, "huskd.service"))
        os.symlink("/etc/systemd/system/huskd.service",
                   os.path.join(sysd, "multi-user.target.wants", "huskd.service"))

    def _make_cgroups(self):
        spec = []
        for mp, fstype, opts in cgroup_mounts():
            d = os.path.join(mp, "husk", self.name)
            os.makedirs(d, exist_ok=True)
            self.cgroups.append(d)
            name = os.path.basename(mp)
            if fstype == "cgroup2":
                spec.append("unified:")
                continue
            if "cpuset" in opts.split(","):
                for f in ("cpuset.cpus", "cpuset.mems"):
                    for child in (os.path.join(mp, "husk"), d):
                        with open(os.path.join(os.path.dirname(child), f)) as src:
                            v = src.read().strip()
                        with open(os.path.join(child, f)) as cur:
                            if cur.read().strip():
                                continue
                        with open(os.path.join(child, f), "w") as dst:
                            dst.write(v)
            keep = [o for o in opts.split(",") if o not in ("rw", "ro") and "=" not in o
                    or o.startswith("name=")]
            if any(o.startswith("name=") for o in keep):
                keep = ["none"] + keep
            spec.append(f"{name}:{','.join(keep)}")
        return spec

    def boot(self):
        spec = self._make_cgroups()
        procs = " ".join(os.path.join(d, "cgroup.procs") for d in self.cgroups)
        env = {**os.environ, "NODE_MERGED": self.merged, "NODE_LOWER": self.lower,
               "NODE_UPPER": self.upper, "NODE_WORK": self.work, "NODE_RUN": self.run,
               "NODE_LIB": self.lib, "NODE_CGROUPS": " ".join(spec)}
        self.log = open(os.path.join(self.base, "console.log"), "ab")
        script = (f"for f in {procs}; do echo $$ > $f; done; exec unshare --pid --mount --uts "
                  f"--ipc --cgroup --fork --kill-child sh -c '{BOOT}'")
        self.proc = subprocess.Popen(["sh", "-c", script], env=env, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log)
        return self

    @property
    def pid(self):
        """The node's systemd (PID 1 inside), from the host."""
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return int(f.read().split()[0])

    def sh(self, *cmd, check=True):
        p = subprocess.run(["nsenter", "-t", str(self.pid), "-a", *cmd], capture_output=True,
                           text=True, timeout=120)
        if check:
            assert p.returncode == 0, f"{cmd}: {p.returncode}\n{p.stdout}\n{p.stderr}"
        return p.stdout

    def wait_running(self, timeout=120):
        """Waits for systemd's boot to finish; the timeout bounds a hang only."""
        deadline = time.time() + timeout
        state = ""
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited {self.proc.returncode}:\n{self.console()}")
            try:
                state = self.sh("systemctl", "is-system-running", check=False).strip()
            except (FileNotFoundError, IndexError, subprocess.TimeoutExpired):
                state = ""
            if state in ("running", "degraded"):
                return state
            time.sleep(0.2)
        raise RuntimeError(f"node not running ({state}):\n{self.console()[-4000:]}")

    def connect(self):
        self.channel = make_channel(self.socket)
        return self

    @property
    def rt(self):
        return CRIClient(self.channel, "RuntimeService")

    @property
    def img(self):
        return CRIClient(self.channel, "ImageService")

    def console(self):
        with open(os.path.join(self.base, "console.log"), errors="replace") as f:
            return f.read()

    def show(self, unit, prop):
        return self.sh("systemctl", "show", "-P", prop, unit, check=False).strip()

    def stop(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.sh("systemctl", "poweroff", check=False)
                self.proc.wait(timeout=90)
            except (subprocess.TimeoutExpired, IndexError, FileNotFoundError):
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.log.close()
        left = []
        for d in self.cgroups:
            # Children first; whatever stays is reported.
            for root, dirs, _ in sorted(os.walk(d, topdown=False), key=lambda t: -len(t[0])):
                try:
                    os.rmdir(root)
                except OSError:
                    if os.path.exists(root):
                        left.append(root)
            try:
                os.rmdir(os.path.dirname(d))  # husk/, once no node or pod is left
            except OSError:
                pass
        return left
