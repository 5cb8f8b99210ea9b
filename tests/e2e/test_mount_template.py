"""The template mount namespace (runtime/launcher/template.c): huskd pins one
at start and unpins it at stop; husk's launcher copies it instead of the
host's namespace and clones each source from the host per start, so a
mount the host makes after huskd started is seen in a volume, in a plain
container and in a user namespace's. Each test runs with the template and
with HUSK_MOUNT_TEMPLATE=off (the old copy of the host's namespace): both
must give the same view."""
import fcntl
import os
import subprocess

import pytest

from conftest import mounts_under
from pods import busybox, pid_of, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401
from test_propagation import mountinfo, vol
from test_userns import userns

SLEEP = ["sleep", "1000"]
NS_GET_NSTYPE = 0xb703
CLONE_NEWNS = 0x20000


@pytest.fixture(params=["template", "copy"])
def daemon(daemon_factory, request):
    env = {"HUSK_MOUNT_TEMPLATE": "off"} if request.param == "copy" else None
    d = daemon_factory(env=env)
    d.template = request.param == "template"
    return d


def pin_of(d):
    return os.path.join(os.path.realpath(d.state), "mount-template", "mnt")


def fstype(point):
    """The file system type of the mount at point, from our mountinfo."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == point:
                return fields[fields.index("-") + 1]
    return None


@pytest.fixture
def late_source(tmp_path):
    """A directory whose tmpfs (and a tmpfs below it) the host mounts after
    huskd started; unmounted by the test."""
    src = tmp_path / "late"
    src.mkdir()
    yield src
    for m in reversed(mounts_under(str(tmp_path))):
        subprocess.run(["umount", "-l", m], check=False)
    assert mounts_under(str(tmp_path)) == []


def mount_late(src):
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "late", str(src)], check=True)
    (src / "f").write_text("top\n")
    (src / "sub").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "sub", str(src / "sub")],
                   check=True)
    (src / "sub" / "g").write_text("below\n")


def test_pin_lifecycle(daemon):
    d = daemon
    pin = pin_of(d)
    if d.template:
        # the kernel's view: a mount namespace file pinned under the state
        # dir, on a private mount of its own
        assert fstype(pin) == "nsfs"
        assert os.path.dirname(pin) in mounts_under(d.state)
        with open(pin) as f:
            assert fcntl.ioctl(f.fileno(), NS_GET_NSTYPE) == CLONE_NEWNS
        assert os.stat(pin).st_ino != os.stat("/proc/self/ns/mnt").st_ino
    else:
        assert fstype(pin) is None
    d.restart(kill=True)
    assert (fstype(pin) == "nsfs") == d.template
    assert len([m for m in mounts_under(d.state) if m == pin]) == (1 if d.template else 0)
    d.stop()
    assert mounts_under(d.state) == []
    d.start()


def test_source_mounted_after_start(daemon, busybox, tmp_path, late_source):  # noqa: F811
    d = daemon
    mount_late(late_source)
    pod, pcfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, pcfg, busybox, SLEEP, mounts=[vol("/late", late_source, 0)])
    pid = pid_of(d, cid)
    r = d.rt.ExecSync(container_id=cid, cmd=["cat", "/late/f", "/late/sub/g"], timeout=20)
    assert (r.exit_code, r.stdout) == (0, b"top\nbelow\n"), r.stderr
    mi = mountinfo(pid)
    assert "/late" in mi and "/late/sub" in mi
    # the container's namespace holds its own mounts, none of the host's
    # beyond the volume (nor the template's /rootfs or /stage)
    points = set(mi)
    assert not any(p.startswith(str(tmp_path)) for p in points)
    assert not points & {"/rootfs", "/stage"}
    assert os.stat(f"/proc/{pid}/ns/mnt").st_ino != os.stat("/proc/self/ns/mnt").st_ino


def test_userns_source_mounted_after_start(daemon, busybox, tmp_path,  # noqa: F811
                                           late_source):
    d = daemon
    mount_late(late_source)
    pod, pcfg = run_pod(d, tmp_path, linux=userns())
    cid = run_ctr(d, pod, pcfg, busybox, SLEEP,
                  mounts=[vol("/late", late_source, 0, readonly=True)])
    r = d.rt.ExecSync(container_id=cid, cmd=["cat", "/late/f", "/late/sub/g"], timeout=20)
    assert (r.exit_code, r.stdout) == (0, b"top\nbelow\n"), r.stderr
    # a read-only volume stays read-only for container root: its flag is
    # locked, and the mount below it cannot be taken off to show what is
    # under it
    for cmd in (["mount", "-o", "remount,bind,rw", "/late"], ["umount", "/late/sub"],
                ["touch", "/late/x"]):
        r = d.rt.ExecSync(container_id=cid, cmd=cmd, timeout=20)
        assert r.exit_code != 0, cmd
    assert not (late_source / "x").exists()
