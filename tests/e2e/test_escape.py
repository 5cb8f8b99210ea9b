"""Escapes a hostile container may try (issue 10, findings 1, 4 and 5):
husk's helpers that enter a running container (ExecSync, Exec) while the
container scans /proc for what they carry; working directories through
leaked fds; io_uring under RuntimeDefault seccomp; volumes over /, /proc
and /sys; masked and read-only paths through symlinks."""
import hashlib
import os
import re
import shutil
import subprocess
import threading

import grpc
import pytest

from conftest import BUILD, pb
from pods import (busybox, ctr_config, expect_error, leftovers, pid_of, run_ctr,  # noqa: F401
                  run_pod, status, wait_exited)
from registry import load_images_module, registries  # noqa: F401
from streamclient import spdy_exec

E = grpc.StatusCode
SLEEP = ["sleep", "1000"]
RD = {"profile_type": pb.SecurityProfile.RuntimeDefault}


def sc(**kw):
    return {"linux": {"security_context": kw}}


# ---- finding 1: what exec helpers show to the container ----

# Two loops, as fast as busybox goes: one reads every process's fd, exe and
# cwd links (readlink needs the same ptrace access as opening them), the
# other opens and reads every process's exe. Both keep distinct results.
SCANNER = r"""
scan_links() {
  n=0
  while [ ! -e /tmp/stop ]; do
    ls -l /proc/[0-9]*/fd/ /proc/[0-9]*/exe /proc/[0-9]*/cwd /proc/[0-9]*/root \
      2>/dev/null | sed -n 's/.* -> //p' >> /tmp/links
    n=$((n+1))
    [ $((n % 50)) = 0 ] && sort -u /tmp/links -o /tmp/links
  done
  echo links $n > /tmp/links.done
}
scan_exe() {
  n=0
  while [ ! -e /tmp/stop ]; do
    md5sum /proc/[0-9]*/exe 2>/dev/null | cut -d' ' -f1 >> /tmp/sums
    n=$((n+1))
    [ $((n % 50)) = 0 ] && sort -u /tmp/sums -o /tmp/sums
  done
  echo exe $n > /tmp/sums.done
}
: > /tmp/links; : > /tmp/sums
scan_links & scan_exe & scan_links &
wait
sleep 1000
"""

NS_LINK = re.compile(r"^(cgroup|ipc|mnt|net|pid|time|user|uts)(_for_children)?:\[")


def md5_of(path):
    with open(path, "rb") as f:
        return hashlib.md5(f.read()).hexdigest()


def test_exec_helpers_show_nothing_of_the_host(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    scanner = run_ctr(d, pod, cfg, busybox, ["sh", "-c", SCANNER], **sc(seccomp=RD))
    c = scanner
    errors = []

    def execs():
        try:
            for _ in range(100):
                r = d.rt.ExecSync(container_id=c, cmd=["true"], timeout=20)
                assert r.exit_code == 0, r
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    def streams():
        try:
            for _ in range(100):
                url = d.rt.Exec(container_id=c, cmd=["true"], stdout=True, stderr=True).url
                r = spdy_exec(url)
                assert r.exit_code() == 0, r.status
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=execs), threading.Thread(target=streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    r = d.rt.ExecSync(container_id=c, cmd=["touch", "/tmp/stop"], timeout=20)
    assert r.exit_code == 0
    r = d.rt.ExecSync(container_id=c, timeout=30, cmd=[
        "sh", "-c", "while [ ! -e /tmp/links.done ] || [ ! -e /tmp/sums.done ]; do sleep 0.1; "
        "done; cat /tmp/links.done /tmp/sums.done >&2; sort -u /tmp/links; echo ==; "
        "sort -u /tmp/sums"])
    assert r.exit_code == 0, r
    links, _, sums = r.stdout.decode().partition("==\n")
    links, sums = set(links.split()), set(sums.split())
    # The scanners ran, and saw their own container.
    assert "/bin/busybox" in links or "/bin/sh" in links or "/bin/sleep" in links, links
    assert any(x.startswith("pipe:[") for x in links), links

    husk_paths = (d.base, d.root, d.state, os.path.realpath(BUILD), "huskd", "husk-shim",
                  "husk.sock", ".lock")
    host = sorted(x for x in links if NS_LINK.match(x) or any(p in x for p in husk_paths))
    assert not host, f"the container saw the host's files: {host}\n{r.stderr.decode()}"
    binaries = {md5_of(os.path.join(BUILD, b)): b for b in ("huskd", "husk-shim")}
    opened = [binaries[s] for s in sums if s in binaries]
    assert not opened, f"the container opened {opened}"


def test_working_dir_through_a_leaked_fd(daemon, busybox, tmp_path):
    """CVE-2024-21626: a working_dir of /proc/self/fd/N may only fail or
    stay inside the container, for the container and for exec."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    for n in range(3, 16):
        wd = f"/proc/self/fd/{n}"
        cid = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "ls -di . > /dev/stderr; sleep 1000"],
                      start=False, working_dir=wd)
        try:
            d.rt.StartContainer(container_id=cid)
        except grpc.RpcError as e:
            assert e.code() != E.OK
            continue
        # It started: its cwd must be inside its own root.
        pid = pid_of(d, cid)
        cwd = os.readlink(f"/proc/{pid}/cwd")
        root = os.readlink(f"/proc/{pid}/root")
        assert cwd == root or cwd.startswith(root + "/"), (wd, cwd, root)


# ---- finding 4: io_uring and newer syscalls under RuntimeDefault ----

SYSCALLS_C = r"""
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void try(const char *name, long r)
{
	printf("%s %s\n", name, r < 0 ? strerrorname_np(errno) : "OK");
}

int main(void)
{
	char params[120] = {0};
	try("io_uring_setup", syscall(425, 1, params));
	try("io_uring_enter", syscall(426, -1, 0, 0, 0, NULL, 0));
	try("io_uring_register", syscall(427, -1, 0, NULL, 0));
	try("fchmodat2", syscall(452, AT_FDCWD, "/nonexistent", 0, 0));
	try("cachestat", syscall(451, -1, NULL, NULL, 0));
	try("statmount", syscall(457, NULL, NULL, 0, 0));
	return 0;
}
"""


@pytest.fixture(scope="module")
def syscalls_bin(tmp_path_factory):
    if not shutil.which("gcc"):
        pytest.skip("no gcc")
    d = tmp_path_factory.mktemp("syscalls")
    src = d / "syscalls.c"
    src.write_text(SYSCALLS_C)
    subprocess.run(["gcc", "-static", "-O2", "-o", str(d / "syscalls"), str(src)], check=True)
    os.chmod(d, 0o755)
    return d


def test_runtime_default_refuses_io_uring(daemon, busybox, tmp_path, syscalls_bin):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    vol = [{"container_path": "/t", "host_path": str(syscalls_bin), "readonly": True}]
    out = {}
    for name, kw in (("default", sc(seccomp=RD)),
                     ("unconfined", sc(seccomp={"profile_type": pb.SecurityProfile.Unconfined}))):
        c = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=vol, **kw)
        r = d.rt.ExecSync(container_id=c, cmd=["/t/syscalls"], timeout=20)
        assert r.exit_code == 0, r
        out[name] = dict(line.split() for line in r.stdout.decode().splitlines())
    rd, unc = out["default"], out["unconfined"]
    # Refused by the filter with EPERM, as Docker does...
    for s in ("io_uring_setup", "io_uring_enter", "io_uring_register"):
        assert rd[s] == "EPERM", rd
    # ...where the kernel itself would have answered.
    assert unc["io_uring_setup"] != "EPERM" and unc["io_uring_enter"] == "EBADF", unc
    # Newer calls Docker allows reach the kernel.
    assert rd["fchmodat2"] == "ENOENT" and rd["cachestat"] == "EBADF", rd
    assert rd["statmount"] == unc["statmount"] != "EPERM", (rd, unc)


# ---- finding 5: volumes over /, /proc and /sys; masks through symlinks ----

def refused_mount(d, pod, cfg, image, path, host, **kw):
    """CreateContainer with a volume at path: INVALID_ARGUMENT naming it,
    nothing left behind."""
    ctr_dir = os.path.join(d.state, "containers")
    before = (sorted(os.listdir(ctr_dir)), len(d.rt.ListContainers().containers))
    msg = expect_error(E.INVALID_ARGUMENT, d.rt.CreateContainer, pod_sandbox_id=pod,
                       sandbox_config=cfg, config=ctr_config(
                           image, SLEEP, mounts=[{"container_path": path, "host_path": host}],
                           **kw))
    after = (sorted(os.listdir(ctr_dir)), len(d.rt.ListContainers().containers))
    assert after == before
    assert f"mount '{path}'" in msg and "container_path" in msg, msg
    return msg


def test_volumes_over_runtime_mounts_refused(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "link").symlink_to("/etc")
    # The host's /proc over the container's: ~100 host processes otherwise.
    assert "/proc" in refused_mount(d, pod, cfg, busybox, "/proc", "/proc")
    refused_mount(d, pod, cfg, busybox, "/proc/self", str(vol))
    refused_mount(d, pod, cfg, busybox, "//proc/../proc/sys/", str(vol))
    refused_mount(d, pod, cfg, busybox, "/", str(vol))
    refused_mount(d, pod, cfg, busybox, "/tmp/..", str(vol))
    refused_mount(d, pod, cfg, busybox, "/sys", "/sys")
    refused_mount(d, pod, cfg, busybox, "/sys/fs/cgroup", str(vol))
    # A privileged container may have /sys volumes, never /proc ones.
    ppod, pcfg = run_pod(d, tmp_path, linux={"security_context": {"privileged": True}})
    priv = sc(privileged=True)
    refused_mount(d, ppod, pcfg, busybox, "/proc", "/proc", **priv)
    c = run_ctr(d, ppod, pcfg, busybox, SLEEP, **priv,
                mounts=[{"container_path": "/sys/fs/bpf", "host_path": str(vol)}])
    assert status(d, c).status.state == pb.CONTAINER_RUNNING
    # What lxcfs covers stays possible, as in runc.
    (tmp_path / "meminfo").write_text("MemTotal: 1 kB\n")
    c = run_ctr(d, pod, cfg, busybox, SLEEP, mounts=[
        {"container_path": "/proc/meminfo", "host_path": str(tmp_path / "meminfo")}])
    r = d.rt.ExecSync(container_id=c, cmd=["cat", "/proc/meminfo"], timeout=20)
    assert r.stdout == b"MemTotal: 1 kB\n", r


def push_symlink_image(registries, name, top):  # noqa: F811
    mti = load_images_module()
    base = mti.busybox_layer().finish()
    img = mti.Image([base, top.finish()])
    img.push(mti.Registry(registries.open.host), f"test/{name}", "latest")
    return f"{registries.open.host}/test/{name}:latest"


def start_fails(d, pod, cfg, image, want, **kw):
    cid = run_ctr(d, pod, cfg, image, SLEEP, start=False, **kw)
    with pytest.raises(grpc.RpcError) as e:
        d.rt.StartContainer(container_id=cid)
    msg = e.value.details()
    assert want in msg, msg
    assert status(d, cid).status.state != pb.CONTAINER_RUNNING
    return msg


def test_masks_never_follow_an_images_symlinks(daemon, registries, tmp_path):  # noqa: F811
    d = daemon
    mti = load_images_module()
    # An image whose /proc is a symlink: procfs, and the masks on
    # /proc/kcore and the rest, would land where the image says.
    proc_img = push_symlink_image(registries, "proc-symlink", mti.Layer().dir(
        "fakeproc").symlink("proc", "/fakeproc"))
    # An image with a link where the pod asks for a mask: masking it would
    # hide what it points to instead.
    link_img = push_symlink_image(registries, "mask-symlink", mti.Layer().dir("etc").symlink(
        "etc/secret", "/etc/passwd"))
    for ref in (proc_img, link_img):
        d.img.PullImage(image={"image": ref})
    pod, cfg = run_pod(d, tmp_path)
    start_fails(d, pod, cfg, proc_img, "mount '/proc': the path goes through a symlink")
    start_fails(d, pod, cfg, link_img, "mask '/etc/secret': the path goes through a symlink",
                **sc(masked_paths=["/etc/secret", "/proc/kcore"], readonly_paths=[]))
    # Without the mask the same image runs, its /etc/passwd intact.
    c = run_ctr(d, pod, cfg, link_img, SLEEP)
    r = d.rt.ExecSync(container_id=c, cmd=["cat", "/etc/secret"], timeout=20)
    assert r.stdout.startswith(b"root:x:0:0"), r


def test_writable_layer_deeper_than_path_max_is_removed(daemon, busybox, tmp_path):
    """A container can nest directories in its writable layer past
    PATH_MAX: RemoveContainer removed the layer by path (nftw) and failed
    with "File name too long", leaving it on disk for good. It now walks by
    directory fd."""
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    # 100 levels at a time, each path given short: t moves under 100 new
    # levels, which become t. 2500 levels, a 5000-byte path at the bottom.
    level = "/".join(["a"] * 100)
    script = (f"mkdir /d && cd /d && mkdir t && i=0 && while [ $i -lt 25 ]; do "
              f"mkdir -p n/{level} && mv t n/{level}/t && mv n t || exit 1; "
              "i=$((i+1)); done")
    c = run_ctr(d, pod, cfg, busybox, ["sh", "-c", script])
    st = wait_exited(d, c, timeout=60)
    assert st.exit_code == 0, (st.exit_code, open(st.log_path, "rb").read()[-300:])
    # Deeper than PATH_MAX in the layer on the host, counted by fd.
    fd, depth = os.open(os.path.join(d.root, "image", "containers", c, "upper", "d"),
                        os.O_RDONLY | os.O_DIRECTORY), 0
    try:
        while True:
            name = "t" if depth % 101 == 0 else "a"
            try:
                nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                break
            os.close(fd)
            fd, depth = nfd, depth + 1
    finally:
        os.close(fd)
    assert depth * 2 > 5000, depth
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemoveContainer(container_id=c)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert leftovers(d, [pod, c]) == []
