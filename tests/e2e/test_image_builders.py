"""Images as real builders make them, from Debian's tools: umoci (insert,
repack, config: layers that end without padding and hold an entry '/'),
buildah (a Containerfile with RUN, COPY, USER, a deleted file and a deleted
directory, setcap; vfs storage, chroot isolation, a base of busybox files)
and skopeo copies between formats (Docker schema 2 and OCI manifests;
gzip, zstd and uncompressed layers). Each is pulled through CRI and run;
the checks read the running container's view through /proc/PID/root and
/proc/PID/status. The images are built once per module."""
import gzip
import json
import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from pods import pid_of, proc_status, run_ctr, run_pod
from registry import chain_ids, layer_dir, mti, registries  # noqa: F401

SLEEP = ["sleep", "3600"]
CAP_NET_BIND_SERVICE = 10
CAP_NET_BIND_V2 = mti.CAP_NET_BIND_V2


def sh(*cmd, cwd=None):
    r = subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stdout}{r.stderr}"
    return r.stdout


def busybox_rootfs(dest):
    """bin/busybox with its applets as symlinks and the libraries it needs."""
    bb, libs, applets = mti.busybox_files()
    os.makedirs(os.path.join(dest, "bin"))
    shutil.copy2(bb, os.path.join(dest, "bin/busybox"))
    for a in applets:
        if a != "busybox":
            os.symlink("busybox", os.path.join(dest, "bin", a))
    for lib in libs:
        to = os.path.join(dest, lib.lstrip("/"))
        os.makedirs(os.path.dirname(to), exist_ok=True)
        shutil.copy(os.path.realpath(lib), to)


def tar_shape(data):
    """Raw names of a layer's entries (the header's name field, or a PAX
    path) and whether the tar lacks the end-of-archive blocks."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    names, o, path = [], 0, None
    while o + 512 <= len(data) and data[o:o + 512] != bytes(512):
        h = data[o:o + 512]
        size = int(h[124:136].split(b"\0")[0].strip() or b"0", 8)
        body = data[o + 512:o + 512 + size]
        if h[156:157] == b"x":
            for rec in body.split(b"\n"):
                if b" path=" in rec:
                    path = rec.split(b" path=", 1)[1]
        elif h[156:157] != b"g":
            names.append(path if path is not None else h[:100].split(b"\0")[0])
            path = None
        o += 512 + (size + 511) // 512 * 512
    return names, not data.endswith(bytes(1024))


def push_layout(reg, blobs, manifest, media_type, repo):
    """Push blobs (digest -> bytes) and a manifest as they are."""
    r = mti.Registry(reg)
    for digest, data in blobs.items():
        r.put_blob(repo, digest, data)
    r.put_manifest(repo, "latest", manifest, media_type)


def read_oci_layout(path):
    with open(os.path.join(path, "index.json")) as f:
        top = json.load(f)["manifests"][0]
    blob = lambda d: open(os.path.join(path, "blobs", "sha256", d.split(":")[1]), "rb").read()
    man = blob(top["digest"])
    m = json.loads(man)
    blobs = {d["digest"]: blob(d["digest"]) for d in [m["config"]] + m["layers"]}
    return blobs, man, top["mediaType"], m


def read_dir_layout(path):
    """skopeo's dir: transport (manifest.json, blobs named by hex)."""
    with open(os.path.join(path, "manifest.json"), "rb") as f:
        man = f.read()
    m = json.loads(man)
    blobs = {}
    for d in [m["config"]] + m["layers"]:
        with open(os.path.join(path, d["digest"].split(":")[1]), "rb") as f:
            blobs[d["digest"]] = f.read()
    return blobs, man, m["mediaType"], m


CONTAINERFILE = """\
FROM scratch
COPY rootfs/ /
RUN mkdir -p /srv/data/sub /srv/keep && echo one > /srv/data/sub/f && \\
    echo gone > /srv/gone && echo kept > /srv/keep/k && \\
    chown -R 1500:1500 /srv/keep && chmod 0750 /srv/keep
COPY --chown=1500:1500 payload.txt /srv/payload.txt
COPY setcap/ /opt/setcap/
RUN cp /bin/busybox /srv/busybox-cap && \\
    LD_LIBRARY_PATH=/opt/setcap /opt/setcap/setcap cap_net_bind_service+ep /srv/busybox-cap && \\
    cp /bin/busybox /srv/suid && chmod 4755 /srv/suid
RUN rm /srv/gone && rm -rf /srv/data /opt/setcap
USER 1500
CMD ["sleep", "3600"]
"""


class Corpus:
    def __init__(self, reg):
        self.host = reg.open.host
        self.base = tempfile.mkdtemp(prefix="husk-builders-", dir="/tmp")
        self.refs = {}
        self.umoci()
        self.buildah()
        self.skopeo()

    def ref(self, name):
        return f"{self.host}/test/{name}:latest"

    def umoci(self):
        d = os.path.join(self.base, "umoci")
        os.makedirs(d)
        lay, img = os.path.join(d, "oci"), os.path.join(d, "oci") + ":img"
        sh("umoci", "init", "--layout", lay)
        sh("umoci", "new", "--image", img)
        # repack of a whole root filesystem
        b1 = os.path.join(d, "b1")
        sh("umoci", "unpack", "--image", img, b1)
        busybox_rootfs(os.path.join(b1, "rootfs"))
        os.makedirs(os.path.join(b1, "rootfs/srv/old"))
        for n in ("srv/old/f", "srv/drop"):
            with open(os.path.join(b1, "rootfs", n), "w") as f:
                f.write(n + "\n")
        sh("umoci", "repack", "--image", img, b1)
        # insert of a file, and of a directory at '/' (an entry named "/")
        payload = os.path.join(d, "payload.txt")
        with open(payload, "w") as f:
            f.write("payload\n")
        sh("umoci", "insert", "--image", img, payload, "/srv/payload.txt")
        ins = os.path.join(d, "ins")
        os.makedirs(os.path.join(ins, "etc"))
        with open(os.path.join(ins, "etc/app.conf"), "w") as f:
            f.write("cfg\n")
        os.chmod(os.path.join(ins, "etc/app.conf"), 0o640)
        sh("umoci", "insert", "--image", img, ins, "/")
        # a repack that deletes a file and a directory and changes modes
        b2 = os.path.join(d, "b2")
        sh("umoci", "unpack", "--image", img, b2)
        os.unlink(os.path.join(b2, "rootfs/srv/drop"))
        shutil.rmtree(os.path.join(b2, "rootfs/srv/old"))
        os.chmod(os.path.join(b2, "rootfs/srv"), 0o700)
        os.chown(os.path.join(b2, "rootfs/srv/payload.txt"), 1500, 1500)
        sh("umoci", "repack", "--image", img, b2)
        sh("umoci", "config", "--image", img, "--config.user", "1500",
           "--config.cmd", "sleep", "--config.cmd", "3600")
        self.umoci_layers = self._layers(lay)
        sh("skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{img}",
           f"docker://{self.ref('umoci')}")
        self.refs["umoci"] = self.ref("umoci")

    @staticmethod
    def _layers(lay):
        blobs, _, _, m = read_oci_layout(lay)
        return [blobs[x["digest"]] for x in m["layers"]]

    def buildah(self):
        d = os.path.join(self.base, "buildah")
        ctx = os.path.join(d, "ctx")
        busybox_rootfs(os.path.join(ctx, "rootfs"))
        os.makedirs(os.path.join(ctx, "setcap"))
        shutil.copy("/usr/sbin/setcap", os.path.join(ctx, "setcap"))
        out = subprocess.run(["ldd", "/usr/sbin/setcap"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if "libcap.so" in line:
                shutil.copy(line.split()[2], os.path.join(ctx, "setcap"))
        with open(os.path.join(ctx, "payload.txt"), "w") as f:
            f.write("payload\n")
        with open(os.path.join(ctx, "Containerfile"), "w") as f:
            f.write(CONTAINERFILE)
        self.buildah_cmd = ["buildah", "--storage-driver", "vfs",
                            "--root", os.path.join(d, "root"),
                            "--runroot", os.path.join(d, "run")]
        sh(*self.buildah_cmd, "bud", "--layers", "--isolation", "chroot", "--quiet",
           "-f", os.path.join(ctx, "Containerfile"), "-t", "localhost/husk-buildah", ctx)
        sh(*self.buildah_cmd, "push", "--quiet", "--tls-verify=false",
           "localhost/husk-buildah", f"docker://{self.ref('buildah')}")
        self.refs["buildah"] = self.ref("buildah")

    def skopeo(self):
        src = f"docker://{self.ref('buildah')}"
        # Docker schema 2, gzip layers, straight to the registry
        sh("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-tls-verify=false",
           "--format", "v2s2", src, f"docker://{self.ref('skopeo-v2s2')}")
        self.refs["skopeo-v2s2"] = self.ref("skopeo-v2s2")
        # OCI with uncompressed and with zstd layers; skopeo's registry
        # destination would reuse the gzip blobs the registry has, so the
        # layouts skopeo writes are pushed as they are
        plain = os.path.join(self.base, "plain")
        sh("skopeo", "copy", "--quiet", "--src-tls-verify=false", "--dest-decompress",
           "--format", "oci", src, f"dir:{plain}")
        push_layout(self.host, *read_dir_layout(plain)[:3], "test/skopeo-plain")
        self.refs["skopeo-plain"] = self.ref("skopeo-plain")
        zst = os.path.join(self.base, "zstd")
        sh("skopeo", "copy", "--quiet", "--format", "oci", "--dest-compress-format", "zstd",
           f"dir:{plain}", f"oci:{zst}:img")
        push_layout(self.host, *read_oci_layout(zst)[:3], "test/skopeo-zstd")
        self.refs["skopeo-zstd"] = self.ref("skopeo-zstd")

    def manifest(self, name):
        import urllib.request
        req = urllib.request.Request(
            f"http://{self.host}/v2/test/{name}/manifests/latest",
            headers={"Accept": ", ".join([mti.MT_OCI_MANIFEST, mti.MT_DOCKER_MANIFEST])})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def config(self, name):
        import urllib.request
        digest = self.manifest(name)["config"]["digest"]
        with urllib.request.urlopen(f"http://{self.host}/v2/test/{name}/blobs/{digest}",
                                    timeout=30) as r:
            return json.load(r)

    def remove(self):
        subprocess.run([*self.buildah_cmd, "rmi", "--all", "--force"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def corpus(registries):  # noqa: F811
    c = Corpus(registries)
    yield c
    c.remove()


def start(d, tmp_path, ref, cmd=None):
    """Pull ref through CRI and run a container of it (the image's command
    and user unless cmd is given); returns the container's pid."""
    d.img.PullImage(image={"image": ref}, _timeout=120)
    pod, cfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, cfg, ref, cmd or [])
    return cid, pid_of(d, cid)


def root_of(pid):
    return f"/proc/{pid}/root"


def cap_eff(pid):
    return int(proc_status(pid)["CapEff"], 16)


def test_umoci(daemon, tmp_path, corpus):
    # what makes these layers special, checked on what was pushed
    shapes = [tar_shape(b) for b in corpus.umoci_layers]
    assert any(b"/" in names for names, _ in shapes), shapes
    assert any(unpadded for _, unpadded in shapes), shapes

    d = daemon
    cid, pid = start(d, tmp_path, corpus.refs["umoci"])
    root = root_of(pid)
    assert proc_status(pid)["Uid"].split()[0] == "1500"
    with open(f"{root}/etc/app.conf") as f:
        assert f.read() == "cfg\n"
    assert stat.S_IMODE(os.stat(f"{root}/etc/app.conf").st_mode) == 0o640
    st = os.stat(f"{root}/srv")
    assert stat.S_IMODE(st.st_mode) == 0o700
    st = os.stat(f"{root}/srv/payload.txt")
    assert (st.st_uid, st.st_gid) == (1500, 1500)
    # deleted by the last repack: whiteouts
    assert not os.path.lexists(f"{root}/srv/drop")
    assert not os.path.lexists(f"{root}/srv/old")
    assert os.stat(f"{root}/bin/busybox").st_mode & 0o777 == 0o755
    # /srv is root's and 0700 now: the image's user 1500 may not enter
    r = d.rt.ExecSync(container_id=cid, cmd=["cat", "/srv/payload.txt"], timeout=10)
    assert r.exit_code != 0 and b"Permission denied" in r.stderr, r.stderr
    r = d.rt.ExecSync(container_id=cid, cmd=["id", "-u"], timeout=10)
    assert r.stdout == b"1500\n"


def test_buildah(daemon, tmp_path, corpus):
    d = daemon
    # the capability binary as the main process, as the image's user
    cid, pid = start(d, tmp_path, corpus.refs["buildah"], cmd=["/srv/busybox-cap", "sleep", "3600"])
    root = root_of(pid)
    assert proc_status(pid)["Uid"].split()[0] == "1500"
    assert cap_eff(pid) == 1 << CAP_NET_BIND_SERVICE
    assert os.getxattr(f"{root}/srv/busybox-cap", "security.capability") == CAP_NET_BIND_V2
    # the same user running busybox without the file capability has none
    r = d.rt.ExecSync(container_id=cid, cmd=["grep", "CapEff", "/proc/self/status"], timeout=10)
    assert r.stdout.split()[1] == b"0000000000000000", r.stdout
    r = d.rt.ExecSync(container_id=cid, cmd=["/srv/busybox-cap", "grep", "CapEff", "/proc/self/status"],
                      timeout=10)
    assert int(r.stdout.split()[1], 16) == 1 << CAP_NET_BIND_SERVICE, r.stdout

    # COPY --chown, RUN chown/chmod, setuid
    st = os.stat(f"{root}/srv/payload.txt")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1500, 1500, 0o644)
    st = os.stat(f"{root}/srv/keep")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (1500, 0o750)
    with open(f"{root}/srv/keep/k") as f:
        assert f.read() == "kept\n"
    st = os.stat(f"{root}/srv/suid")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o4755)
    # a deleted file and deleted directories (their parent stays)
    assert not os.path.lexists(f"{root}/srv/gone")
    assert not os.path.lexists(f"{root}/srv/data")
    assert not os.path.lexists(f"{root}/opt/setcap")
    assert os.path.isdir(f"{root}/opt")


@pytest.mark.parametrize("name,manifest_type,layer_type", [
    ("skopeo-v2s2", mti.MT_DOCKER_MANIFEST, mti.MT_DOCKER_LAYER),
    ("skopeo-plain", mti.MT_OCI_MANIFEST, mti.MT_OCI_LAYER),
    ("skopeo-zstd", mti.MT_OCI_MANIFEST, mti.MT_OCI_LAYER + "+zstd"),
])
def test_skopeo_formats(daemon, tmp_path, corpus, name, manifest_type, layer_type):
    m = corpus.manifest(name)
    assert m["mediaType"] == manifest_type
    assert {x["mediaType"] for x in m["layers"]} == {layer_type}
    d = daemon
    cid, pid = start(d, tmp_path, corpus.refs[name], cmd=["/srv/busybox-cap", "sleep", "3600"])
    root = root_of(pid)
    # the same image whatever the format: buildah's diff_ids, unpacked
    # into the same trees
    cfg = corpus.config(name)
    assert cfg["rootfs"]["diff_ids"] == corpus.config("buildah")["rootfs"]["diff_ids"]
    for chain in chain_ids(cfg["rootfs"]["diff_ids"]):
        assert os.path.isdir(layer_dir(d.root, chain))
    assert cap_eff(pid) == 1 << CAP_NET_BIND_SERVICE
    assert os.getxattr(f"{root}/srv/busybox-cap", "security.capability") == CAP_NET_BIND_V2
    assert not os.path.lexists(f"{root}/srv/gone")
    assert not os.path.lexists(f"{root}/opt/setcap")
    assert stat.S_IMODE(os.stat(f"{root}/srv/suid").st_mode) == 0o4755
    with open(f"{root}/srv/payload.txt") as f:
        assert f.read() == "payload\n"


def test_links_to_lower_layers_and_overlay_xattrs(daemon, registries, tmp_path):  # noqa: F811
    """Hard links to a file of the layer below land as overlayfs would make
    them; overlayfs's own xattrs from a layer are dropped (an 'opaque' dir
    does not hide the layer below), user.* and file capabilities stay."""
    d, reg = daemon, registries
    im = reg.images["test/lowerlink:latest"]
    ref = f"{reg.open.host}/test/lowerlink:latest"
    cid, pid = start(d, tmp_path, ref, cmd=SLEEP)
    two = layer_dir(d.root, chain_ids(im.diff_ids)[1])
    bb = os.lstat(os.path.join(two, "bin/busybox"))
    for n in ("bin/busybox-again", "usr/local/bin/bb"):
        assert os.lstat(os.path.join(two, n)).st_ino == bb.st_ino
    for n in ("ovl", "ovl/above", "capped"):
        names = os.listxattr(os.path.join(two, n), follow_symlinks=False)
        assert not [x for x in names if ".overlay." in x], (n, names)
    assert os.getxattr(os.path.join(two, "ovl/above"), "user.keep") == b"k"

    root = root_of(pid)
    assert sorted(os.listdir(f"{root}/ovl")) == ["above", "below"]
    assert os.stat(f"{root}/usr/local/bin/bb").st_ino == os.stat(f"{root}/bin/busybox").st_ino
    assert os.getxattr(f"{root}/capped", "security.capability") == CAP_NET_BIND_V2
    r = d.rt.ExecSync(container_id=cid, cmd=["/bin/busybox-again", "true"], timeout=10)
    assert r.exit_code == 0, r.stderr
