"""ImageService against real registries: pull by tag and digest, list,
status, remove, fs info, pinned images, restarts, and the unpacked trees."""
import os
import stat

import grpc
import pytest

from registry import chain_ids, layer_dir, registries  # noqa: F401


def pull(d, ref, **auth):
    kw = {"image": {"image": ref}}
    if auth:
        kw["auth"] = auth
    return d.img.PullImage(**kw, _timeout=120).image_ref


def listed(d, ref=None):
    if ref:
        return list(d.img.ListImages(filter={"image": {"image": ref}}).images)
    return list(d.img.ListImages().images)


def status(d, ref, verbose=False):
    return d.img.ImageStatus(image={"image": ref}, verbose=verbose)


def store_empty(root):
    img = os.path.join(root, "image")
    for sub in ("tmp", "layers", "images", "blobs/sha256"):
        left = os.listdir(os.path.join(img, sub))
        assert left == [], f"{sub} not empty: {left}"


def test_pull_by_tag_list_status(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/busybox:latest"]
    ref = f"{reg.open.host}/test/busybox:latest"
    assert pull(d, ref) == im.id

    imgs = listed(d)
    assert len(imgs) == 1
    i = imgs[0]
    assert i.id == im.id
    assert list(i.repo_tags) == [ref]
    assert list(i.repo_digests) == [f"{reg.open.host}/test/busybox@{im.digest}"]
    assert i.size == len(im.config) + sum(len(im.blobs[x]) for x in im.layer_digests)
    assert not i.HasField("uid") and i.username == ""
    assert i.spec.image == im.id
    assert not i.pinned

    short = im.id.split(":")[1]
    for name in (ref, im.id, short, short[:12], f"{reg.open.host}/test/busybox@{im.digest}"):
        st = status(d, name)
        assert st.image.id == im.id, name
        assert len(listed(d, name)) == 1
    st = status(d, ref, verbose=True)
    info = st.info["info"]
    assert '"imageSpec"' in info and '"diff_ids"' in info and im.diff_ids[0] in info

    # unknown: an empty answer, not an error
    st = status(d, f"{reg.open.host}/test/nothing:latest")
    assert not st.HasField("image")
    assert listed(d, f"{reg.open.host}/test/nothing:latest") == []
    # bad reference: INVALID_ARGUMENT naming it
    for bad in ("Upper/Case", "busybox:bad:tag", "a@sha256:123", ""):
        with pytest.raises(grpc.RpcError) as e:
            pull(d, bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert f"'{bad}'" in e.value.details()

    # busybox, applets hard-linked to it, its libc
    diff = layer_dir(d.root, chain_ids(im.diff_ids)[0])
    bb = os.stat(os.path.join(diff, "bin/busybox"))
    assert os.stat(os.path.join(diff, "bin/sh")).st_ino == bb.st_ino
    assert bb.st_nlink > 100 and bb.st_mode & 0o777 == 0o755
    assert os.path.isfile(os.path.join(diff, "lib/x86_64-linux-gnu/libc.so.6"))
    assert os.path.isfile(os.path.join(diff, "lib64/ld-linux-x86-64.so.2"))
    assert stat.S_IMODE(os.stat(os.path.join(diff, "tmp")).st_mode) == 0o1777


def test_pull_by_digest_then_tag(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/busybox:latest"]
    dref = f"{reg.open.host}/test/busybox@{im.digest}"
    assert pull(d, dref) == im.id
    i = listed(d)[0]
    assert list(i.repo_tags) == [] and list(i.repo_digests) == [dref]
    assert pull(d, f"{reg.open.host}/test/busybox:v1") == im.id
    i = listed(d)[0]
    assert list(i.repo_tags) == [f"{reg.open.host}/test/busybox:v1"]
    # tag and digest together: the digest decides
    assert pull(d, f"{reg.open.host}/test/busybox:latest@{im.digest}") == im.id
    assert len(listed(d)) == 1
    # a digest nothing has
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.open.host}/test/busybox@sha256:" + "0" * 64)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_user_from_config(daemon, registries):
    d, reg = daemon, registries
    pull(d, f"{reg.open.host}/test/busybox-user")
    i = status(d, f"{reg.open.host}/test/busybox-user:latest").image
    assert i.uid.value == 1002 and i.username == ""
    pull(d, f"{reg.open.host}/test/busybox-nobody")
    i = status(d, f"{reg.open.host}/test/busybox-nobody").image
    assert not i.HasField("uid") and i.username == "nobody"


def test_remove_semantics(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/busybox:latest"]
    latest, v1 = f"{reg.open.host}/test/busybox:latest", f"{reg.open.host}/test/busybox:v1"
    pull(d, latest)
    pull(d, v1)
    assert sorted(listed(d)[0].repo_tags) == [latest, v1]
    # one tag of two: the image stays
    d.img.RemoveImage(image={"image": v1})
    i = listed(d)[0]
    assert list(i.repo_tags) == [latest]
    assert not status(d, v1).HasField("image")
    # the last tag: the image goes, with its layers and blobs
    d.img.RemoveImage(image={"image": latest})
    assert listed(d) == []
    store_empty(d.root)
    # missing image: success
    d.img.RemoveImage(image={"image": latest})
    d.img.RemoveImage(image={"image": im.id})
    # by ID with several tags: all go
    pull(d, latest)
    pull(d, v1)
    d.img.RemoveImage(image={"image": im.id})
    assert listed(d) == []
    # by digest reference
    pull(d, latest)
    d.img.RemoveImage(image={"image": f"{reg.open.host}/test/busybox@{im.digest}"})
    assert listed(d) == []
    store_empty(d.root)


def test_shared_layers(daemon, registries):
    """Images sharing a layer unpack it once and keep it while one is left."""
    d, reg = daemon, registries
    pull(d, f"{reg.open.host}/test/busybox")
    pull(d, f"{reg.open.host}/test/layered")
    layers = os.listdir(os.path.join(d.root, "image", "layers"))
    assert len(layers) == 3  # busybox base shared
    d.img.RemoveImage(image={"image": f"{reg.open.host}/test/busybox"})
    assert len(os.listdir(os.path.join(d.root, "image", "layers"))) == 3
    d.img.RemoveImage(image={"image": f"{reg.open.host}/test/layered"})
    store_empty(d.root)


def test_layered_whiteouts_and_attributes(daemon, registries, tmp_path):
    d, reg = daemon, registries
    im = reg.images["test/layered:latest"]
    assert pull(d, f"{reg.open.host}/test/layered") == im.id
    chains = chain_ids(im.diff_ids)
    two, three = layer_dir(d.root, chains[1]), layer_dir(d.root, chains[2])

    st = os.lstat(os.path.join(two, "data/owned"))
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4750)
    assert os.getxattr(os.path.join(two, "data/xattr"), "user.husk") == b"hello"
    st = os.lstat(os.path.join(two, "data/null"))
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert os.readlink(os.path.join(two, "data/link")) == "a"
    assert os.stat(os.path.join(two, "data/hard")).st_ino == \
        os.stat(os.path.join(two, "data/b")).st_ino
    assert os.lstat(os.path.join(two, "data/a")).st_mtime == 1700000000

    # whiteout: a 0:0 character device; opaque: the xattr; markers gone
    st = os.lstat(os.path.join(three, "data/a"))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert os.getxattr(os.path.join(three, "opaque"), "trusted.overlay.opaque") == b"y"
    assert os.getxattr(os.path.join(three, "data/sub"), "trusted.overlay.opaque") == b"y"
    for n in ("data/.wh.a", "opaque/.wh..wh..opq", "data/sub/.wh..wh..opq"):
        assert not os.path.lexists(os.path.join(three, n))

    # the merged view overlayfs makes of them
    lower = ":".join(layer_dir(d.root, c) for c in reversed(chains))
    merged = tmp_path / "merged"
    merged.mkdir()
    import subprocess
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}",
                    str(merged)], check=True)
    try:
        assert sorted(os.listdir(merged / "opaque")) == ["new"]
        assert sorted(os.listdir(merged / "data/sub")) == ["y"]
        assert not (merged / "data/a").exists()
        assert (merged / "data/b").read_text() == "b\n"
        assert (merged / "data/c").read_text() == "c\n"
        assert (merged / "bin/busybox").exists()
    finally:
        subprocess.run(["umount", str(merged)], check=True)

    cfg = status(d, im.id, verbose=True).info["info"]
    assert '"StopSignal":"SIGINT"' in cfg.replace(" ", "")


def test_multiarch(daemon, registries):
    d, reg = daemon, registries
    for name in ("test/multiarch:latest", "test/multiarch-docker:latest"):
        idx = reg.images[name]
        amd = [x for x in idx.images if x.arch == "amd64"][0]
        ref = f"{reg.open.host}/{name}"
        assert pull(d, ref) == amd.id
        i = status(d, ref).image
        # both indexes hold the same amd64 image: one image, two digests
        assert f"{reg.open.host}/{name.split(':')[0]}@{idx.digest}" in i.repo_digests
        diff = layer_dir(d.root, chain_ids(amd.diff_ids)[0])
        with open(os.path.join(diff, "ARCH")) as f:
            assert f.read() == "amd64\n"
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.open.host}/test/arm-only")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "linux/amd64" in e.value.details()


def test_missing_tag_and_repo(daemon, registries):
    d, reg = daemon, registries
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.open.host}/test/busybox:nope")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "MANIFEST_UNKNOWN" in e.value.details() and ":nope" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.open.host}/test/no-such-repo")
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    store_empty(d.root)


def test_fs_info(daemon, registries):
    d, reg = daemon, registries
    before = d.img.ImageFsInfo()
    pull(d, f"{reg.open.host}/test/busybox")
    r = d.img.ImageFsInfo()
    fs = r.image_filesystems[0]
    assert fs.fs_id.mountpoint == os.path.join(d.root, "image")
    assert fs.used_bytes.value > before.image_filesystems[0].used_bytes.value + 1_000_000
    assert fs.inodes_used.value > 20
    assert fs.timestamp > 0
    c = r.container_filesystems[0]
    assert c.fs_id.mountpoint == os.path.join(d.root, "image", "containers")


def test_pinned(daemon_factory, registries):
    reg = registries
    pinned = f"{reg.open.host}/test/busybox:latest"
    d = daemon_factory({"sandbox_image": pinned,
                        "pinned_images": [f"{reg.open.host}/test/busybox-user"]})
    pull(d, pinned)
    pull(d, f"{reg.open.host}/test/busybox-user")
    pull(d, f"{reg.open.host}/test/busybox-nobody")
    got = {i.repo_tags[0]: i.pinned for i in listed(d)}
    assert got == {pinned: True, f"{reg.open.host}/test/busybox-user:latest": True,
                   f"{reg.open.host}/test/busybox-nobody:latest": False}


def test_restart_keeps_images_and_cleans_leftovers(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/busybox:latest"]
    pull(d, f"{reg.open.host}/test/busybox")
    img = os.path.join(d.root, "image")
    # what a crash could leave: a download, an orphan layer, a record
    # nobody names, a temporary file
    os.makedirs(os.path.join(img, "tmp", "layer-junk", "diff"))
    os.makedirs(os.path.join(img, "layers", "ab" * 32, "diff"))
    with open(os.path.join(img, "images", "cd" * 32 + ".json"), "w") as f:
        f.write('{"id":"sha256:' + "cd" * 32 + '"}')
    with open(os.path.join(img, "images", "x.json.tmp.123"), "w") as f:
        f.write("{")
    d.restart()
    assert [i.id for i in listed(d)] == [im.id]
    assert os.listdir(os.path.join(img, "tmp")) == []
    assert os.listdir(os.path.join(img, "layers")) == [im.diff_ids[0].split(":")[1]]
    assert os.listdir(os.path.join(img, "images")) == [im.id.split(":")[1] + ".json"]
