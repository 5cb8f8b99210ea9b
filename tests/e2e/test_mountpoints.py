"""Where huskd mounts: every pod's pins and shm below <state>/pods-mnt and
every container's rootfs below <root>/image/mnt, each a private mount of
its own, apart from the files those mounts are made from (the pod's
hostname, hosts and resolv.conf, the layers, the upper dirs). The kernel
walks each child of a bind or overlay source's mount for every new mount
(has_locked_children): kept apart, that mount's children do not grow with
the pods (issue 12). Pods and rootfs made before the move are recovered
from their records and torn down (the old layout)."""
import glob
import json
import os
import subprocess

from conftest import mounts_under
from pods import busybox, mount_dirs, run_ctr, run_pod, status  # noqa: F401
from registry import registries  # noqa: F401

SLEEP = ["sleep", "3600"]


def mountinfo():
    """Every mount of this mount namespace: {"id", "parent", "point", "tags"}."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            out.append({"id": int(fields[0]), "parent": int(fields[1]),
                        "point": fields[4].encode().decode("unicode_escape"),
                        "tags": fields[6:sep]})
    return out


def mount_at(point):
    """The top mount at point, or None."""
    point = os.path.realpath(point)
    found = [m for m in mountinfo() if m["point"] == point]
    return found[-1] if found else None


def stacked(point):
    point = os.path.realpath(point)
    return len([m for m in mountinfo() if m["point"] == point])


def mount_holding(path):
    """The mount path's file is on (the deepest mount point above it)."""
    path = os.path.realpath(path)
    best = None
    for m in mountinfo():
        p = m["point"]
        if (path == p or path.startswith(p.rstrip("/") + "/")) and \
                (best is None or len(p) >= len(best["point"])):
            best = m
    return best


def children(mount):
    return [m for m in mountinfo() if m["parent"] == mount["id"]]


def assert_private_dir(path):
    m = mount_at(path)
    assert m is not None, f"{path} is no mount"
    assert stacked(path) == 1, f"{path} mounted {stacked(path)} times"
    assert not [t for t in m["tags"] if t.startswith(("shared:", "master:"))], m
    return m


def test_mounts_apart_from_their_sources(daemon, busybox, tmp_path):  # noqa: F811
    d = daemon
    pods_mnt, image_mnt = mount_dirs(d)
    top_pods = assert_private_dir(pods_mnt)
    top_image = assert_private_dir(image_mnt)
    pod, cfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, cfg, busybox, SLEEP)
    # The sources: the pod's files, the layers and the upper dir.
    files = os.path.join(d.state, "pods", pod)
    assert os.path.exists(os.path.join(files, "hostname"))
    upper = os.path.join(d.root, "image", "containers", cid, "upper")
    layers = glob.glob(os.path.join(d.root, "image", "layers", "*", "diff"))
    assert os.path.isdir(upper) and layers
    holders = {mount_holding(p)["id"] for p in [files, upper] + layers}

    def below_base(h):
        # Other huskds on the machine mount on the same file systems.
        base = os.path.realpath(d.base) + "/"
        return sorted(m["point"] for m in children({"id": h}) if m["point"].startswith(base))

    # huskd's own few (these two, its mount template's): none of a pod's.
    own = {h: below_base(h) for h in holders}
    for points in own.values():
        assert not [p for p in points if p.startswith((os.path.realpath(pods_mnt) + "/",
                                                       os.path.realpath(image_mnt) + "/"))]

    # The pins and shm are children of pods-mnt/, the rootfs of image/mnt.
    mine = mounts_under(os.path.join(pods_mnt, pod))
    assert sorted(os.path.relpath(m, os.path.join(pods_mnt, pod)) for m in mine) == \
        ["ns/ipc", "ns/net", "ns/pid", "ns/uts", "shm"] or \
        sorted(os.path.relpath(m, os.path.join(pods_mnt, pod)) for m in mine) == \
        ["ns/ipc", "ns/net", "ns/uts", "shm"]
    for m in mine:
        assert mount_at(m)["parent"] == top_pods["id"], m
    rootfs = os.path.join(image_mnt, cid)
    assert mount_at(rootfs)["parent"] == top_image["id"]
    assert mounts_under(files) == []
    assert mounts_under(os.path.join(d.root, "image", "containers")) == []
    # What the container sees through them is what it should.
    assert status(d, cid).status.state == 1  # CONTAINER_RUNNING
    out = d.rt.ExecSync(container_id=cid, cmd=["cat", "/etc/hostname"], timeout=20)
    assert out.stdout.decode().strip() == cfg["hostname"]

    # More pods add no child to the mounts that hold the sources.
    more = []
    for _ in range(3):
        p, c = run_pod(d, tmp_path)
        more.append((p, run_ctr(d, p, c, busybox, SLEEP)))
    assert {h: below_base(h) for h in holders} == own
    assert len(children(top_pods)) >= 4 * 4 and len(children(top_image)) == 4

    for p, c in [(pod, cid)] + more:
        d.rt.StopPodSandbox(pod_sandbox_id=p)
        d.rt.RemovePodSandbox(pod_sandbox_id=p)
        assert mounts_under(os.path.join(pods_mnt, p)) == []
        assert not os.path.exists(os.path.join(pods_mnt, p))
        assert not os.path.exists(os.path.join(image_mnt, c))
        assert not os.path.exists(os.path.join(d.state, "pods", p))
    assert children(top_pods) == [] and children(top_image) == []
    # Released with huskd once nothing is left in them.
    assert d.stop() == 0
    assert mounts_under(d.base) == []
    assert not os.path.exists(pods_mnt) and not os.path.exists(image_mnt)


def test_restart_keeps_one_mount(daemon, busybox, tmp_path):  # noqa: F811
    d = daemon
    pods_mnt, image_mnt = mount_dirs(d)
    pod, cfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, cfg, busybox, SLEEP)
    pins = mounts_under(os.path.join(pods_mnt, pod))
    # Pods and containers outlive huskd, and so do the mounts they are in.
    assert d.stop() == 0
    assert assert_private_dir(pods_mnt) and assert_private_dir(image_mnt)
    assert mounts_under(os.path.join(pods_mnt, pod)) == pins
    d.start()
    assert_private_dir(pods_mnt)
    assert_private_dir(image_mnt)
    assert status(d, cid).status.state == 1
    d.kill()
    d.start()
    assert_private_dir(pods_mnt)
    assert_private_dir(image_mnt)
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert d.stop() == 0
    assert mounts_under(d.base) == []


def move(src, dst, is_dir):
    """Move the mount at src to dst (made first), as huskd before the move
    had it."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    if is_dir:
        os.mkdir(dst)
    else:
        open(dst, "w").close()
    subprocess.run(["mount", "--move", src, dst], check=True)


def test_old_layout_recovered(daemon, busybox, tmp_path):  # noqa: F811
    """A pod and container from huskd before the move: pins and shm in
    <state>/pods/ID (sandbox.json version 1, records naming those paths),
    the rootfs at <root>/image/containers/ID/merged. The new huskd runs,
    stops and removes them and leaves nothing."""
    d = daemon
    pods_mnt, image_mnt = mount_dirs(d)
    pod, cfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, cfg, busybox, SLEEP)
    assert d.stop() == 0
    # Turn them into what the old huskd made.
    new_dir, old_dir = os.path.join(pods_mnt, pod), os.path.join(d.state, "pods", pod)
    for m in mounts_under(new_dir):
        rel = os.path.relpath(m, new_dir)
        move(m, os.path.join(old_dir, rel), rel == "shm")
    subprocess.run(["rm", "-r", new_dir], check=True)
    sandbox = os.path.join(old_dir, "sandbox.json")
    with open(sandbox) as f:
        rec = json.load(f)
    assert rec["version"] == 2
    with open(sandbox, "w") as f:
        json.dump({**rec, "version": 1}, f)
    cdir = os.path.join(d.root, "image", "containers", cid)
    move(os.path.join(image_mnt, cid), os.path.join(cdir, "merged"), True)
    os.rmdir(os.path.join(image_mnt, cid))
    # Every record and file that names a path names the old one: the pod
    # and container records, the container's config.json, rootfs.json.
    olds = {new_dir + "/": old_dir + "/",
            os.path.join(image_mnt, cid): os.path.join(cdir, "merged")}
    rewritten = 0
    for top in (d.state, cdir):
        for p in glob.glob(os.path.join(top, "**", "*.json"), recursive=True):
            with open(p) as f:
                text = f.read()
            if any(k in text for k in olds):
                for k, v in olds.items():
                    text = text.replace(k, v)
                with open(p, "w") as f:
                    f.write(text)
                rewritten += 1
    assert rewritten >= 3
    assert mounts_under(pods_mnt) == [os.path.realpath(pods_mnt)]
    assert len(mounts_under(old_dir)) >= 4

    d.start()
    st = d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True)
    assert st.status.state == 0  # SANDBOX_READY
    info = json.loads(st.info["info"])
    assert info["namespaces"]["network"] == os.path.join(old_dir, "ns", "net"), info
    assert info["shm"] == os.path.join(old_dir, "shm"), info
    assert status(d, cid).status.state == 1
    out = d.rt.ExecSync(container_id=cid, cmd=["cat", "/etc/hostname"], timeout=20)
    assert out.stdout.decode().strip() == cfg["hostname"]
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert mounts_under(old_dir) == [] and not os.path.exists(old_dir)
    assert mounts_under(cdir) == [] and not os.path.exists(cdir)
    assert d.stop() == 0
    assert mounts_under(d.base) == []
