"""Pulls that must fail cleanly or stay consistent: hostile layers, corrupt
blobs, a huskd killed mid-pull, and concurrent pulls of one image."""
import glob
import os
import shutil
import threading
import time

import grpc
import pytest

from registry import Proxy, chain_ids, layer_dir, mti, registries  # noqa: F401
from test_image import listed, pull, store_empty

EVIL = ["dotdot", "symlink", "hardlink", "symlink-relative"]


@pytest.mark.parametrize("kind", EVIL)
def test_escaping_layer_refused(daemon, registries, kind):
    d, reg = daemon, registries
    for p in glob.glob("/tmp/husk-evil-*"):
        os.unlink(p)
    passwd = os.stat("/etc/passwd")
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.open.host}/test/evil-{kind}")
    msg = e.value.details()
    assert e.value.code() == grpc.StatusCode.INTERNAL, msg
    assert "escapes the layer directory" in msg, msg
    assert f"test/evil-{kind}" in msg
    assert glob.glob("/tmp/husk-evil-*") == []
    assert os.stat("/etc/passwd").st_nlink == passwd.st_nlink
    assert listed(d) == []
    store_empty(d.root)


def test_absolute_names_stay_inside(daemon, registries):
    """A leading '/' names a path in the layer, as GNU tar and Docker read
    it: the file lands inside, and a hard link to '/etc/passwd' looks for
    the layer's etc/passwd (there is none), never the host's."""
    d, reg = daemon, registries
    for p in glob.glob("/tmp/husk-evil-*"):
        os.unlink(p)
    passwd = os.stat("/etc/passwd")
    im = reg.images["test/evil-absolute:latest"]
    assert pull(d, f"{reg.open.host}/test/evil-absolute") == im.id
    diff = layer_dir(d.root, chain_ids(im.diff_ids)[0])
    with open(os.path.join(diff, "tmp/husk-evil-absolute")) as f:
        assert f.read() == "x"
    assert glob.glob("/tmp/husk-evil-*") == []

    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.open.host}/test/evil-hardlink-absolute")
    msg = e.value.details()
    assert e.value.code() == grpc.StatusCode.INTERNAL, msg
    assert "hard link 'shadow-link' to '/etc/passwd': no such file" in msg, msg
    assert os.stat("/etc/passwd").st_nlink == passwd.st_nlink
    assert len(listed(d)) == 1


def test_layer_cut_short(daemon, registries):
    """A layer whose tar ends inside an entry's data fails the pull naming
    the layer and the entry; nothing of the image stays."""
    d, reg = daemon, registries
    im = reg.images["test/cut:latest"]
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{reg.open.host}/test/cut")
    msg = e.value.details()
    assert f"layer {im.layer_digests[1]}" in msg, msg
    assert "entry 'cut' is cut short" in msg, msg
    assert listed(d) == []
    store_empty(d.root)


def test_digest_mismatch(daemon, registries):
    d, reg = daemon, registries
    r = reg.separate("corrupt")
    im = mti.Image([mti.busybox_layer().file("marker", "m\n").finish()])
    im.push(mti.Registry(r.host), "test/corrupt", "latest")
    # same size, other bytes: a valid gzip tar would not keep the length
    path = reg.blob_path(os.path.join(reg.base, "corrupt-storage"), im.layer_digests[0])
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xff]))
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{r.host}/test/corrupt")
    msg = e.value.details()
    assert im.layer_digests[0] in msg
    assert "digest mismatch" in msg or "gzip" in msg, msg
    store_empty(d.root)

    # a blob replaced by another valid layer: unpacks fine, digest differs
    other = mti.Layer().file("other", "o\n").finish()[0]
    with open(path, "wb") as f:
        f.write(other)
    with pytest.raises(grpc.RpcError) as e:
        pull(d, f"{r.host}/test/corrupt")
    assert "digest mismatch" in e.value.details() or "more data" in e.value.details()
    store_empty(d.root)


def test_concurrent_pulls_download_once(daemon, registries):
    d, reg = daemon, registries
    im = reg.images["test/layered:latest"]
    proxy = Proxy(reg.open.host, rate=2 << 20)
    try:
        ref = f"{proxy.host}/test/layered:latest"
        results, errors = [], []

        def one():
            try:
                results.append(pull(d, ref))
            except grpc.RpcError as e:
                errors.append(e.details())

        ts = [threading.Thread(target=one) for _ in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert errors == [] and results == [im.id] * 3
        for digest in im.layer_digests + [im.id]:
            assert len(proxy.gets(f"/blobs/{digest}")) == 1, digest
        assert len(listed(d)) == 1
    finally:
        proxy.stop()


def test_kill_during_pull_then_restart(daemon, registries):
    d, reg = daemon, registries
    im = mti.Image(mti.big_layers(n=3, mb=6))
    im.push(mti.Registry(reg.open.host), "test/killme", "latest")
    proxy = Proxy(reg.open.host, rate=3 << 20)
    try:
        ref = f"{proxy.host}/test/killme:latest"
        fut = d.img.PullImage.future(image={"image": ref})
        tmp = os.path.join(d.root, "image", "tmp")
        deadline = time.time() + 30
        # wait until layers are being unpacked, then kill -9
        while time.time() < deadline:
            busy = [p for p in glob.glob(os.path.join(tmp, "layer-*", "diff", "*"))]
            if busy:
                break
            time.sleep(0.05)
        assert busy, "pull never started unpacking"
        time.sleep(0.5)
        # SIGKILL before the channel closes: the client's cancel would make
        # the pull clean up its partial downloads first.
        d.proc.kill()
        d.proc.wait()
        d.kill()
        with pytest.raises(grpc.RpcError):
            fut.result()
        assert os.listdir(tmp), "nothing was in flight at the kill"
        d.start()
        assert listed(d) == []
        store_empty(d.root)
        # and the pull works afterwards
        assert pull(d, f"{reg.open.host}/test/killme") == im.id
    finally:
        proxy.stop()


def test_kill_after_layers_before_commit(daemon, registries):
    """Layers committed but no record/index: the restart drops them."""
    d, reg = daemon, registries
    im = reg.images["test/busybox:latest"]
    pull(d, f"{reg.open.host}/test/busybox")
    d.kill()
    # undo the commit by hand: the index without the image's refs
    with open(os.path.join(d.root, "image", "index.json"), "w") as f:
        f.write('{"refs": {}}')
    d.start()
    assert listed(d) == []
    store_empty(d.root)
    assert pull(d, f"{reg.open.host}/test/busybox") == im.id
    shutil.rmtree(os.path.join(d.root, "image", "layers", im.diff_ids[0].split(":")[1]))
    d.restart()
    # an image whose layer vanished is dropped, not served broken
    assert listed(d) == []


def test_record_write_fails(daemon, registries):
    """The image record cannot be written (a file stands where its directory
    was): the pull fails with that error, huskd lives on, and the next pull
    works. This path once freed an uninitialised pointer (found when clang,
    for the fuzz build, refused the goto that skipped its initialisation)."""
    d, reg = daemon, registries
    images = os.path.join(d.root, "image", "images")
    os.rmdir(images)
    open(images, "w").close()
    try:
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{reg.open.host}/test/busybox")
        assert "Not a directory" in e.value.details(), e.value.details()
    finally:
        os.unlink(images)
        os.mkdir(images)
    assert listed(d) == []
    assert pull(d, f"{reg.open.host}/test/busybox") == reg.images["test/busybox:latest"].id


def test_disk_full(daemon_factory, registries):
    import subprocess
    reg = registries
    d = daemon_factory(start=False)
    os.makedirs(d.root, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1500k", "husk-e2e-full", d.root],
                   check=True)
    try:
        d.start()
        with pytest.raises(grpc.RpcError) as e:
            pull(d, f"{reg.open.host}/test/busybox")
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, e.value.details()
        assert "No space left on device" in e.value.details()
        assert listed(d) == []
        store_empty(d.root)
    finally:
        if d.proc is not None:
            d.stop()
        subprocess.run(["umount", d.root], check=True)
