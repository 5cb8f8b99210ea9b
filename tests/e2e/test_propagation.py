"""Mount propagation of volumes as runc gives it: BIDIRECTIONAL (rshared)
both ways, HOST_TO_CONTAINER (rslave) host to container only, PRIVATE
neither; refusals for sources that cannot propagate and for BIDIRECTIONAL
in a non-privileged container. The host side is a shared bind mount of a
directory of the test's own temp dir; every mount a test makes (on the host
or in a container) is unmounted by the test."""
import os
import subprocess

import grpc
import pytest

from conftest import mounts_under, pb
from pods import busybox, expect_error, leftovers, pid_of, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401

E = grpc.StatusCode
SLEEP = ["sleep", "1000"]
PRIV = {"linux": {"security_context": {"privileged": True}}}


def sh(*args):
    subprocess.run(list(args), check=True, capture_output=True)


@pytest.fixture
def shared_dir(tmp_path):
    """tmp_path/host: a bind mount of itself made shared; vol inside it."""
    host = tmp_path / "host"
    (host / "vol").mkdir(parents=True)
    sh("mount", "--bind", str(host), str(host))
    sh("mount", "--make-shared", str(host))
    yield host
    for m in reversed(mounts_under(str(tmp_path))):
        subprocess.run(["umount", "-l", m], check=False)
    assert mounts_under(str(tmp_path)) == []


def mountinfo(pid):
    """{mount point: optional fields (shared:N, master:N)} of pid's namespace."""
    out = {}
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            fields = line.split()
            out[fields[4]] = fields[6:fields.index("-")]
    return out


def tag(fields, kind):
    got = [f.split(":")[1] for f in fields if f.startswith(kind + ":")]
    return got[0] if got else None


def vol(path, host_path, prop, **kw):
    return {"container_path": path, "host_path": str(host_path), "propagation": prop, **kw}


def sh_in(d, cid, script):
    r = d.rt.ExecSync(container_id=cid, cmd=["sh", "-c", script], timeout=20)
    assert r.exit_code == 0, (script, r.stdout, r.stderr)
    return r.stdout.decode()


def test_propagation_modes(daemon, busybox, tmp_path, shared_dir):  # noqa: F811
    d = daemon
    host, src = shared_dir, shared_dir / "vol"
    peer = tag(mountinfo(os.getpid())[str(host)], "shared")
    assert peer
    pod, pcfg = run_pod(d, tmp_path, linux={"security_context": {"privileged": True}})
    cid = run_ctr(d, pod, pcfg, busybox, SLEEP, mounts=[
        vol("/both", src, pb.PROPAGATION_BIDIRECTIONAL),
        vol("/h2c", src, pb.PROPAGATION_HOST_TO_CONTAINER),
        vol("/none", src, pb.PROPAGATION_PRIVATE)], **PRIV)
    pid = pid_of(d, cid)

    # the kernel's view: /both is in the host mount's peer group, /h2c
    # receives from it, /none neither
    mi = mountinfo(pid)
    assert tag(mi["/both"], "shared") == peer and tag(mi["/both"], "master") is None
    assert tag(mi["/h2c"], "master") == peer and tag(mi["/h2c"], "shared") != peer
    assert tag(mi["/none"], "master") is None and tag(mi["/none"], "shared") != peer
    # nothing husk mounted for the container shows on the host
    assert mounts_under(str(host)) == [str(host)]
    assert [m for m in mounts_under(d.base) if "/containers/" in m and
            not m.endswith("/merged")] == []

    # host -> container: a tmpfs mounted on the host after the start
    (src / "fromhost").mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "fromhost", str(src / "fromhost"))
    (src / "fromhost" / "f").write_text("from host\n")
    mi = mountinfo(pid)
    assert "/both/fromhost" in mi and "/h2c/fromhost" in mi and "/none/fromhost" not in mi
    assert sh_in(d, cid, "cat /both/fromhost/f /h2c/fromhost/f") == "from host\n" * 2
    assert sh_in(d, cid, "ls /none/fromhost") == ""

    # container -> host: only through the bidirectional volume
    for name, where in (("c1", "/both"), ("c2", "/h2c"), ("c3", "/none")):
        sh_in(d, cid, f"mkdir {where}/{name} && mount -t tmpfs -o size=64k {name} "
                      f"{where}/{name} && echo {name} > {where}/{name}/f")
    on_host = mounts_under(str(src))
    assert str(src / "c1") in on_host
    assert str(src / "c2") not in on_host and str(src / "c3") not in on_host
    assert (src / "c1" / "f").read_text() == "c1\n"
    assert not (src / "c2" / "f").exists() and not (src / "c3" / "f").exists()
    assert tag(mountinfo(os.getpid())[str(src / "c1")], "shared")  # a peer of /both/c1
    # the rslave volume's mount did not reach the bidirectional one either
    mi = mountinfo(pid)
    assert "/both/c1" in mi and "/h2c/c1" in mi and "/both/c2" not in mi

    # clean up what the test mounted, on both sides
    sh_in(d, cid, "umount /h2c/c2 && umount /none/c3")
    sh("umount", str(src / "c1"))
    sh("umount", str(src / "fromhost"))
    assert "/both/c1" not in mountinfo(pid) and "/h2c/fromhost" not in mountinfo(pid)
    d.rt.StopContainer(container_id=cid, timeout=0)
    d.rt.RemoveContainer(container_id=cid)
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, cid]) == []
    assert mounts_under(str(host)) == [str(host)]


def test_host_to_container_unprivileged(daemon, busybox, tmp_path, shared_dir):  # noqa: F811
    """rslave needs no privilege; the root stays rslave."""
    d = daemon
    src = shared_dir / "vol"
    peer = tag(mountinfo(os.getpid())[str(shared_dir)], "shared")
    pod, pcfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, pcfg, busybox, SLEEP,
                  mounts=[vol("/h2c", src, pb.PROPAGATION_HOST_TO_CONTAINER, readonly=True)])
    pid = pid_of(d, cid)
    mi = mountinfo(pid)
    assert mi["/h2c"] == [f"master:{peer}"]
    assert all(tag(f, "shared") is None for f in mi.values())  # rslave root
    (src / "late").mkdir()
    sh("mount", "-t", "tmpfs", "-o", "size=64k", "late", str(src / "late"))
    (src / "late" / "f").write_text("late\n")
    assert sh_in(d, cid, "cat /h2c/late/f") == "late\n"
    sh("umount", str(src / "late"))
    assert "/h2c/late" not in mountinfo(pid)


def test_propagation_refused(daemon, busybox, tmp_path, shared_dir):  # noqa: F811
    d = daemon
    plain = tmp_path / "plain"  # on a private mount of this host
    plain.mkdir()
    ppod, pcfg = run_pod(d, tmp_path, linux={"security_context": {"privileged": True}})
    before = leftovers(d, [])

    def refused(code, mounts, **kw):
        cfg = {"metadata": {"name": "refused"}, "image": {"image": busybox},
               "command": SLEEP, "mounts": mounts, **kw}
        msg = expect_error(code, d.rt.CreateContainer, pod_sandbox_id=ppod, config=cfg,
                           sandbox_config=pcfg)
        assert list(d.rt.ListContainers().containers) == []
        assert leftovers(d, []) == before
        return msg

    point = subprocess.run(["findmnt", "-n", "-o", "TARGET", "-T", str(plain)], check=True,
                           capture_output=True, text=True).stdout.strip()
    msg = refused(E.FAILED_PRECONDITION, [vol("/both", plain, pb.PROPAGATION_BIDIRECTIONAL)],
                  **PRIV)
    assert msg.endswith(f"mount '/both': path '{plain}' is mounted on '{point}' but it is not "
                        "a shared mount"), msg
    msg = refused(E.FAILED_PRECONDITION,
                  [vol("/h2c", plain, pb.PROPAGATION_HOST_TO_CONTAINER)])
    assert f"path '{plain}' is mounted on '{point}' but it is not a shared or slave mount" in msg
    # as Kubernetes validates it: bidirectional only for privileged containers
    msg = refused(E.INVALID_ARGUMENT,
                  [vol("/both", shared_dir / "vol", pb.PROPAGATION_BIDIRECTIONAL)])
    assert "mount '/both': propagation BIDIRECTIONAL needs a privileged container" in msg
    # a slave source is enough for HOST_TO_CONTAINER
    slave = tmp_path / "slave"
    slave.mkdir()
    sh("mount", "--bind", str(shared_dir), str(slave))
    sh("mount", "--make-slave", str(slave))
    cid = run_ctr(d, ppod, pcfg, busybox, SLEEP,
                  mounts=[vol("/h2c", slave / "vol", pb.PROPAGATION_HOST_TO_CONTAINER)])
    peer = tag(mountinfo(os.getpid())[str(shared_dir)], "shared")
    assert tag(mountinfo(pid_of(d, cid))["/h2c"], "master") == peer
