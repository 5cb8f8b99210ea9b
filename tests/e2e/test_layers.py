"""Images with many layers: 128 layers create and run with every layer
visible, through the new mount API (overlayfs lowerdir+, Linux 6.8+) and
through the mount(2) fallback for older kernels (forced here with
HUSK_OVERLAY_MOUNT=legacy)."""
import os

import pytest

from pods import leftovers, pid_of, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401

N = 128


def overlay_lowers(pid):
    """The root mount of process pid as its mountinfo shows it."""
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/":
                sep = fields.index("-")
                return fields[sep + 1], fields[sep + 3]
    raise AssertionError(f"no root mount for {pid}")


def run_many(d, reg, tmp_path):
    ref = f"{reg.open.host}/test/layers-{N}:latest"
    im = reg.images[f"test/layers-{N}:latest"]
    assert len(im.diff_ids) == N
    assert d.img.PullImage(image={"image": ref}, _timeout=300).image_ref == im.id
    pod, pcfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, pcfg, ref, ["sleep", "1000"])
    pid = pid_of(d, cid)
    fstype, opts = overlay_lowers(pid)
    assert fstype == "overlay"
    # the kernel's view: every layer's file in the container's root
    root = f"/proc/{pid}/root"
    names = sorted(os.listdir(f"{root}/layers"))
    assert names == [f"{i:03d}" for i in range(1, N)] + ["top"]
    for i in range(1, N):
        with open(f"{root}/layers/{i:03d}") as f:
            assert f.read() == f"{i}\n"
    with open(f"{root}/layers/top") as f:
        assert f.read() == f"{N - 1}\n"  # the top layer wins
    assert os.path.exists(f"{root}/bin/busybox")  # the bottom layer
    r = d.rt.ExecSync(container_id=cid, cmd=["sh", "-c", "ls /layers | wc -l; cat /layers/top"],
                      timeout=20)
    assert r.exit_code == 0 and r.stdout.decode().split() == [str(N), str(N - 1)]
    # the writable layer works above 128 lowers
    r = d.rt.ExecSync(container_id=cid, cmd=["sh", "-c", "echo w > /layers/001 && cat /layers/001"],
                      timeout=20)
    assert r.stdout == b"w\n"
    d.rt.StopContainer(container_id=cid, timeout=0)
    d.rt.RemoveContainer(container_id=cid)
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, cid]) == []
    return opts


def kernel_at_least(major, minor):
    rel = os.uname().release.split("-")[0].split(".")
    return (int(rel[0]), int(rel[1])) >= (major, minor)


def test_128_layers_fsconfig(daemon, registries, tmp_path):
    if not kernel_at_least(6, 8):
        pytest.skip("overlayfs takes lowerdir+ from Linux 6.8")
    run_many(daemon, registries, tmp_path)
    assert "overlay_mount=fsconfig" in daemon.logs()


def test_128_layers_legacy(daemon_factory, registries, tmp_path, monkeypatch):
    monkeypatch.setenv("HUSK_OVERLAY_MOUNT", "legacy")
    d = daemon_factory()
    opts = run_many(d, registries, tmp_path)
    assert "overlay_mount=legacy" in d.logs()
    # the fallback names each directory by a short /proc/self/fd path
    assert "lowerdir=/proc/self/fd/" in opts
