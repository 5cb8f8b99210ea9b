"""Security contexts on the real kernel: capabilities (add, drop, ALL,
ambient, privileged), users and groups, read-only root, no_new_privs,
masked and read-only paths, seccomp, AppArmor/SELinux refusals, namespace
modes (TARGET, NODE) and pod sysctls; every refusal leaves nothing behind."""
import os

import grpc
import pytest

from conftest import POD_CG_PARENT, pb
from pods import (busybox, ctr_config, expect_error, leftovers, ns_inode, pid_of,  # noqa: F401
                  proc_status, run_ctr, run_pod, status, wait_exited)
from registry import load_images_module, registries  # noqa: F401

# The tests that make containers run once per RuntimeClass handler.
pytestmark = pytest.mark.per_handler

E = grpc.StatusCode
SLEEP = ["sleep", "1000"]
DEFAULT_CAPS = 0xa80425fb
# What the kubelet sends for a container with the Default procMount.
KUBELET_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                  "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                  "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                  "/sys/devices/virtual/powercap"]
KUBELET_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def sc(**kw):
    return {"linux": {"security_context": kw}}


def caps(pid):
    s = proc_status(pid)
    return {k: int(s[k], 16) for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}


def huskd_caps(d):
    return caps(d.proc.pid)


def exec_out(d, cid, cmd, code=0):
    r = d.rt.ExecSync(container_id=cid, cmd=cmd, timeout=20)
    assert r.exit_code == code, (cmd, r.exit_code, r.stdout, r.stderr)
    return r.stdout.decode()


def mount_points(d, cid):
    """Mount points and their options as the container sees them."""
    out = {}
    for line in exec_out(d, cid, ["cat", "/proc/self/mountinfo"]).splitlines():
        f = line.split()
        out[f[4]] = f[5].split(",")
    return out


def child_cgroups(pod):
    out = set()
    for ctl in ("memory", "cpu", "pids", "cpuset"):
        pod_cg = f"/sys/fs/cgroup/{ctl}/{POD_CG_PARENT}/{pod}"
        if os.path.isdir(pod_cg):
            out |= {f"{ctl}/{n}" for n in os.listdir(pod_cg)
                    if os.path.isdir(os.path.join(pod_cg, n))}
    return out


def create_refused(d, pod, cfg, image, code, cmd=SLEEP, **kw):
    """CreateContainer must fail with code and leave nothing behind: no
    state directory, no record, no cgroup, no root file system mount."""
    ctr_dir = os.path.join(d.state, "containers")
    before = (set(os.listdir(ctr_dir)), child_cgroups(pod), len(leftovers(d, [])),
              len(d.rt.ListContainers().containers))
    msg = expect_error(code, d.rt.CreateContainer, pod_sandbox_id=pod,
                       config=ctr_config(image, cmd, **kw), sandbox_config=cfg)
    after = (set(os.listdir(ctr_dir)), child_cgroups(pod), len(leftovers(d, [])),
             len(d.rt.ListContainers().containers))
    assert after == before, (before, after)
    return msg


# ---- capabilities ----

def test_capabilities_add_drop(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    own = huskd_caps(d)["CapBnd"]
    full = (1 << (int(open("/proc/sys/kernel/cap_last_cap").read()) + 1)) - 1
    bit = {"CHOWN": 0, "KILL": 5, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_ADMIN": 21,
           "SYS_TIME": 25}
    cases = [
        (None, None, DEFAULT_CAPS),
        (["SYS_ADMIN", "CAP_NET_ADMIN"], ["chown", "NET_RAW"],
         (DEFAULT_CAPS | 1 << bit["SYS_ADMIN"] | 1 << bit["NET_ADMIN"])
         & ~(1 << bit["CHOWN"] | 1 << bit["NET_RAW"])),
        (["kill"], ["ALL"], 1 << bit["KILL"]),
        (["ALL"], ["CAP_CHOWN"], full & own & ~(1 << bit["CHOWN"])),
        (["cap_sys_time"], [], DEFAULT_CAPS | 1 << bit["SYS_TIME"]),
        ([], ["all"], 0),
    ]
    for add, drop, want in cases:
        kw = {}
        if add is not None:
            kw = sc(capabilities={"add_capabilities": add, "drop_capabilities": drop})
        c = run_ctr(d, pod, cfg, busybox, SLEEP, **kw)
        got = caps(pid_of(d, c))
        assert got["CapEff"] == want, (add, drop, hex(got["CapEff"]), hex(want))
        assert got["CapPrm"] == want and got["CapBnd"] == want, (add, drop, got)
        assert got["CapInh"] == 0 and got["CapAmb"] == 0, (add, drop, got)
    # The capabilities work: NET_ADMIN lets it add an address to lo.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(capabilities={"add_capabilities": ["NET_ADMIN"]}))
    exec_out(d, c, ["ip", "addr", "add", "10.9.9.9/32", "dev", "lo"])
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    r = d.rt.ExecSync(container_id=c, cmd=["ip", "addr", "add", "10.9.9.8/32", "dev", "lo"],
                      timeout=10)
    assert r.exit_code != 0


def test_ambient_capabilities(daemon, busybox, registries, tmp_path):  # noqa: F811
    d = daemon
    user_img = f"{registries.open.host}/test/busybox-user:latest"
    d.img.PullImage(image={"image": user_img})
    pod, cfg = run_pod(d, tmp_path)
    nbs = 1 << 10  # CAP_NET_BIND_SERVICE
    # A non-root user keeps nothing across execve...
    c = run_ctr(d, pod, cfg, user_img, SLEEP)
    got = caps(pid_of(d, c))
    assert (got["CapEff"], got["CapPrm"], got["CapAmb"]) == (0, 0, 0)
    assert got["CapBnd"] == DEFAULT_CAPS
    r = d.rt.ExecSync(container_id=c, cmd=["nc", "-l", "-p", "80", "-w", "1"], timeout=10)
    assert r.exit_code != 0 and b"ermission denied" in r.stderr, r
    # ...but its ambient capabilities, in every set.
    c = run_ctr(d, pod, cfg, user_img, SLEEP, **sc(capabilities={
        "drop_capabilities": ["ALL"], "add_ambient_capabilities": ["NET_BIND_SERVICE"]}))
    got = caps(pid_of(d, c))
    assert got == {"CapInh": nbs, "CapPrm": nbs, "CapEff": nbs, "CapBnd": nbs, "CapAmb": nbs}
    assert exec_out(d, c, ["id", "-u"]).strip() == "1002"
    # It can bind port 80 now (nc exits when the wait times out).
    r = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "nc -l -p 80 -w 1; echo rc=$?"], timeout=10)
    assert b"ermission denied" not in r.stderr, r
    # Root with an ambient capability on top of the defaults.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(capabilities={
        "add_ambient_capabilities": ["CAP_SYS_TIME"]}))
    got = caps(pid_of(d, c))
    assert got["CapAmb"] == 1 << 25 and got["CapInh"] == 1 << 25
    assert got["CapEff"] == DEFAULT_CAPS | 1 << 25


def test_unknown_capability_refused(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    for field in ("add_capabilities", "drop_capabilities", "add_ambient_capabilities"):
        msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                             **sc(capabilities={field: ["CAP_BOGUS"]}))
        assert "CAP_BOGUS" in msg and "capability" in msg


def test_privileged(daemon, busybox, tmp_path):
    d = daemon
    # Only a privileged pod may hold privileged containers.
    pod, cfg = run_pod(d, tmp_path)
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **sc(privileged=True))
    assert "privileged" in msg and pod in msg
    ppod, pcfg = run_pod(d, tmp_path, linux={"security_context": {"privileged": True}})
    # Seccomp and masked paths asked for are ignored for a privileged one.
    c = run_ctr(d, ppod, pcfg, busybox, SLEEP, **sc(
        privileged=True, seccomp={"profile_type": pb.SecurityProfile.RuntimeDefault},
        masked_paths=KUBELET_MASKED, readonly_paths=KUBELET_READONLY))
    pid = pid_of(d, c)
    got = caps(pid)
    own = huskd_caps(d)
    assert got["CapEff"] == own["CapEff"] and got["CapBnd"] == own["CapBnd"]
    assert proc_status(pid)["Seccomp"] == "0"
    mounts = mount_points(d, c)
    assert "/proc/keys" not in mounts and "/proc/sys" not in mounts
    assert "rw" in mounts["/sys"] and "rw" in mounts["/proc"]
    # /proc/sys is writable: a namespaced sysctl of the pod's own netns.
    exec_out(d, c, ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
    # The host's devices, with their numbers.
    std = {"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"}
    host_dev = None
    for name in sorted(os.listdir("/dev")):
        p = os.path.join("/dev", name)
        st = os.lstat(p)
        is_dev = os.path.stat.S_ISCHR(st.st_mode) or os.path.stat.S_ISBLK(st.st_mode)
        if name not in std and is_dev:
            host_dev = (p, os.major(st.st_rdev), os.minor(st.st_rdev))
            break
    assert host_dev, "the host has no device node to look for"
    out = exec_out(d, c, ["stat", "-c", "%t %T", host_dev[0]]).split()
    assert (int(out[0], 16), int(out[1], 16)) == host_dev[1:]
    # A non-privileged container in the same pod has none of that.
    c2 = run_ctr(d, ppod, pcfg, busybox, SLEEP, **sc(
        masked_paths=KUBELET_MASKED, readonly_paths=KUBELET_READONLY))
    r = d.rt.ExecSync(container_id=c2, cmd=["stat", host_dev[0]], timeout=10)
    assert r.exit_code != 0
    m2 = mount_points(d, c2)
    assert "/proc/keys" in m2 and "ro" in m2["/proc/sys"] and "ro" in m2["/sys"]


def test_device_cgroup(daemon, busybox, tmp_path):
    if not os.path.isdir("/sys/fs/cgroup/devices"):
        pytest.skip("no v1 devices controller")
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP, devices=[
        {"container_path": "/dev/ro-zero", "host_path": "/dev/zero", "permissions": "r"},
        {"container_path": "/dev/my-null", "host_path": "/dev/null", "permissions": "rw"}])
    rules = exec_out(d, c, ["cat", "/sys/fs/cgroup/devices/devices.list"]).split("\n")
    assert "a *:* rwm" not in rules
    assert "c 1:3 rwm" in rules and "c 136:* rwm" in rules and "b *:* m" in rules
    # A config device with its permissions (/dev/zero is 1:5, also a
    # default: it stays usable; the read-only one is checked on a node of
    # its own below).
    exec_out(d, c, ["head", "-c", "4", "/dev/ro-zero"])
    exec_out(d, c, ["sh", "-c", "echo x > /dev/my-null"])
    # A node it may create but not open: the host's disk, say.
    disk = next((os.path.join("/dev", n) for n in sorted(os.listdir("/dev"))
                 if os.path.stat.S_ISBLK(os.lstat(os.path.join("/dev", n)).st_mode)), None)
    if disk:
        st = os.lstat(disk)
        mknod = f"mknod /tmp/disk b {os.major(st.st_rdev)} {os.minor(st.st_rdev)}"
        r = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", f"{mknod} && head -c 1 /tmp/disk"],
                          timeout=10)
        assert r.exit_code != 0 and b"Operation not permitted" in r.stderr, r
    # Read-only permission on a device no default allows: /dev/kmsg (1:11).
    if os.path.exists("/dev/kmsg"):
        c2 = run_ctr(d, pod, cfg, busybox, SLEEP, devices=[
            {"container_path": "/dev/kmsg", "host_path": "/dev/kmsg", "permissions": "r"}])
        assert "c 1:11 r" in exec_out(d, c2, ["cat", "/sys/fs/cgroup/devices/devices.list"])
        r = d.rt.ExecSync(container_id=c2, cmd=["sh", "-c", "echo hi > /dev/kmsg"], timeout=10)
        assert r.exit_code != 0 and b"Operation not permitted" in r.stderr, r
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, devices=[
        {"container_path": "/dev/x", "host_path": "/dev/null", "permissions": "rwx"}])
    assert "'rwx'" in msg
    # Privileged: no restriction.
    ppod, pcfg = run_pod(d, tmp_path, linux={"security_context": {"privileged": True}})
    p = run_ctr(d, ppod, pcfg, busybox, SLEEP, **sc(privileged=True))
    assert "a *:* rwm" in exec_out(d, p, ["cat", "/sys/fs/cgroup/devices/devices.list"])


# ---- users and groups ----

def id_of(d, cid):
    """uid, gid and the groups (the kernel keeps them sorted)."""
    return (exec_out(d, cid, ["id", "-u"]).strip(), exec_out(d, cid, ["id", "-g"]).strip(),
            sorted(exec_out(d, cid, ["id", "-G"]).split(), key=int))


def status_user(d, cid):
    u = status(d, cid).status.user.linux
    return u.uid, u.gid, list(u.supplemental_groups)


def test_users_and_groups(daemon, busybox, registries, tmp_path):  # noqa: F811
    d = daemon
    host = registries.open.host
    for img in ("busybox-user", "busybox-nobody"):
        d.img.PullImage(image={"image": f"{host}/test/{img}:latest"})
    pod, cfg = run_pod(d, tmp_path)
    # The image's user (USER 1002; USER nobody).
    c = run_ctr(d, pod, cfg, f"{host}/test/busybox-user:latest", SLEEP)
    assert id_of(d, c) == ("1002", "1002", ["1002"])
    assert status_user(d, c) == (1002, 1002, [1002])
    c = run_ctr(d, pod, cfg, f"{host}/test/busybox-nobody:latest", SLEEP)
    assert id_of(d, c) == ("65534", "65534", ["65534"])
    # run_as_user / run_as_group / supplemental_groups.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(
        run_as_user={"value": 1234}, run_as_group={"value": 5678},
        supplemental_groups=[100, 200]))
    assert id_of(d, c) == ("1234", "5678", ["100", "200", "5678"])
    assert status_user(d, c) == (1234, 5678, [5678, 100, 200])
    s = proc_status(pid_of(d, c))
    assert s["Uid"].split()[0] == "1234" and s["Gid"].split()[0] == "5678"
    # run_as_username resolved in the image's /etc/passwd.
    c = run_ctr(d, pod, cfg, f"{host}/test/busybox-user:latest", SLEEP,
                **sc(run_as_username="nobody"))
    assert id_of(d, c) == ("65534", "65534", ["65534"])
    # run_as_user overrides the image's USER.
    c = run_ctr(d, pod, cfg, f"{host}/test/busybox-user:latest", SLEEP,
                **sc(run_as_user={"value": 0}))
    assert id_of(d, c)[0] == "0"
    # Refusals.
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                         **sc(run_as_group={"value": 10}))
    assert "run_as_group" in msg
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                         **sc(run_as_username="ghost"))
    assert "'ghost'" in msg and "/etc/passwd" in msg
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                         **sc(run_as_user={"value": 1}, run_as_username="nobody"))
    assert "run_as_username" in msg
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                         **sc(run_as_user={"value": -5}))
    assert "run_as_user" in msg


def push_groups_image(registries):  # noqa: F811
    """busybox whose /etc/group makes user app (1000, group 3000) a member
    of groups 10 and 50000, like the example of KEP-3619."""
    mti = load_images_module()
    base = mti.busybox_layer("app:x:1000:3000::/home:/bin/sh\n").finish()
    top = mti.Layer().dir("etc").file(
        "etc/group", "root:x:0:\nwheel:x:10:app\napp:x:3000:\nextra:x:50000:app\n").finish()
    img = mti.Image([base, top])
    img.push(mti.Registry(registries.open.host), "test/busybox-groups", "latest")
    return f"{registries.open.host}/test/busybox-groups:latest"


@pytest.mark.per_handler  # makes containers of an image of its own, not busybox
def test_supplemental_groups_policy(daemon, registries, tmp_path):  # noqa: F811
    d = daemon
    assert d.rt.Status().features.supplemental_groups_policy
    ref = push_groups_image(registries)
    d.img.PullImage(image={"image": ref})
    pod, cfg = run_pod(d, tmp_path)
    base = dict(run_as_username="app", supplemental_groups=[4000])
    merge = run_ctr(d, pod, cfg, ref, SLEEP, **sc(**base))
    assert id_of(d, merge) == ("1000", "3000", ["10", "3000", "4000", "50000"])
    assert status_user(d, merge) == (1000, 3000, [3000, 10, 50000, 4000])
    strict = run_ctr(d, pod, cfg, ref, SLEEP, **sc(
        **base, supplemental_groups_policy=pb.Strict))
    assert id_of(d, strict) == ("1000", "3000", ["3000", "4000"])
    assert status_user(d, strict) == (1000, 3000, [3000, 4000])
    # Strict with an explicit group and no supplemental ones.
    only = run_ctr(d, pod, cfg, ref, SLEEP, **sc(
        run_as_user={"value": 1000}, run_as_group={"value": 7},
        supplemental_groups_policy=pb.Strict))
    assert id_of(d, only) == ("1000", "7", ["7"])


# ---- root file system, no_new_privs, masked paths ----

def test_readonly_rootfs_and_no_new_privs(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    vol = tmp_path / "vol"
    vol.mkdir()
    c = run_ctr(d, pod, cfg, busybox, SLEEP,
                mounts=[{"container_path": "/data", "host_path": str(vol)}],
                **sc(readonly_rootfs=True, no_new_privs=True))
    r = d.rt.ExecSync(container_id=c, cmd=["touch", "/newfile"], timeout=10)
    assert r.exit_code != 0 and b"Read-only file system" in r.stderr, r
    r = d.rt.ExecSync(container_id=c, cmd=["sh", "-c", "echo x > /etc/hosts"], timeout=10)
    assert r.exit_code != 0
    # Volumes and /dev/shm stay writable.
    exec_out(d, c, ["touch", "/data/ok", "/dev/shm/ok"])
    assert (vol / "ok").exists()
    assert proc_status(pid_of(d, c))["NoNewPrivs"] == "1"
    # And the defaults: writable, no_new_privs off.
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    exec_out(d, c, ["touch", "/newfile"])
    assert proc_status(pid_of(d, c))["NoNewPrivs"] == "0"


def test_masked_and_readonly_paths(daemon, busybox, tmp_path, handler):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    # No security context at all: husk's defaults (runc's lists).
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    m = mount_points(d, c)
    assert "/proc/keys" in m and "ro" in m["/proc/sys"]
    # The kubelet's lists.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(masked_paths=KUBELET_MASKED,
                                                 readonly_paths=KUBELET_READONLY))
    m = mount_points(d, c)
    assert "/proc/timer_list" in m and "/proc/keys" in m and "ro" in m["/proc/sys"]
    assert exec_out(d, c, ["cat", "/proc/keys"]) == ""
    # Lists of our own: exactly those.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(masked_paths=["/proc/cpuinfo", "/etc/hostname"],
                                                 readonly_paths=["/tmp"]))
    m = mount_points(d, c)
    assert "/proc/cpuinfo" in m and "/proc/keys" not in m and "/proc/sys" not in m
    assert exec_out(d, c, ["cat", "/proc/cpuinfo"]) == ""
    r = d.rt.ExecSync(container_id=c, cmd=["touch", "/tmp/x"], timeout=10)
    assert r.exit_code != 0
    # Masked directories: each an empty read-only tmpfs; with husk's
    # launcher all of one container's the same one, which is also /dev's
    # (a superblock each would cost the node at every memory cgroup's
    # removal), bound read-only.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(masked_paths=["/home", "/root", "/proc/cpuinfo"],
                                                 readonly_paths=[]))
    info = {}
    with open(f"/proc/{pid_of(d, c)}/mountinfo") as f:
        for line in f:
            x = line.split()
            info[x[4]] = (x[2], x[5].split(","), x[x.index("-") + 1])
    if handler == "husk":
        assert info["/home"][0] == info["/root"][0] == info["/dev"][0], info
        assert info["/dev"][2] == "tmpfs" and "ro" not in info["/dev"][1], info["/dev"]
        assert "nodev" not in info["/dev"][1] and "nodev" in info["/home"][1], info
        assert exec_out(d, c, ["ls", "/dev/null", "/dev/pts/ptmx"]).split() != []
        # On v1 the same tmpfs as /sys/fs/cgroup, whose other directory it is.
        if info.get("/sys/fs/cgroup", ("", [], ""))[2] == "tmpfs":
            assert info["/home"][0] == info["/sys/fs/cgroup"][0], info
            assert exec_out(d, c, ["ls", "/sys/fs/cgroup"]).split() != []
    for p in ("/home", "/root"):
        assert info[p][2] == "tmpfs" and "ro" in info[p][1], info[p]
        r = d.rt.ExecSync(container_id=c, cmd=["touch", f"{p}/x"], timeout=10)
        assert r.exit_code != 0 and b"Read-only file system" in r.stderr, r
    assert exec_out(d, c, ["ls", "-A", "/home", "/root"]).split() == ["/home:", "/root:"]
    assert exec_out(d, c, ["cat", "/proc/cpuinfo"]) == ""
    # A security context with empty lists (procMount: Unmasked): none.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(run_as_user={"value": 0}))
    m = mount_points(d, c)
    assert not [p for p in m if p.startswith("/proc/") or p == "/sys/firmware"], m
    assert exec_out(d, c, ["cat", "/proc/self/status"])


# ---- seccomp ----

BLOCK_MKDIR = """{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"""


def test_seccomp_profiles(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    RD = {"profile_type": pb.SecurityProfile.RuntimeDefault}
    # RuntimeDefault: filter on, unshare(CLONE_NEWUSER) refused with EPERM.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(seccomp=RD))
    assert proc_status(pid_of(d, c))["Seccomp"] == "2"
    r = d.rt.ExecSync(container_id=c, cmd=["unshare", "-U", "true"], timeout=10)
    assert r.exit_code != 0 and b"Operation not permitted" in r.stderr, r
    exec_out(d, c, ["mkdir", "/tmp/a"])
    # Unconfined (and no seccomp field at all).
    for kw in (sc(seccomp={"profile_type": pb.SecurityProfile.Unconfined}), {}):
        c = run_ctr(d, pod, cfg, busybox, SLEEP, **kw)
        assert proc_status(pid_of(d, c))["Seccomp"] == "0"
        exec_out(d, c, ["unshare", "-U", "true"])
    # Localhost: a profile of our own blocks mkdir with EPERM.
    prof = tmp_path / "block-mkdir.json"
    prof.write_text(BLOCK_MKDIR)
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(seccomp={
        "profile_type": pb.SecurityProfile.Localhost, "localhost_ref": str(prof)}))
    assert proc_status(pid_of(d, c))["Seccomp"] == "2"
    r = d.rt.ExecSync(container_id=c, cmd=["mkdir", "/tmp/b"], timeout=10)
    assert r.exit_code != 0 and b"Operation not permitted" in r.stderr, r
    exec_out(d, c, ["touch", "/tmp/file"])
    # The deprecated string form, each kind.
    for path, mode, mkdir_ok in (("runtime/default", "2", True), ("unconfined", "0", True),
                                 (f"localhost/{prof}", "2", False)):
        c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(seccomp_profile_path=path))
        assert proc_status(pid_of(d, c))["Seccomp"] == mode, path
        r = d.rt.ExecSync(container_id=c, cmd=["mkdir", "/tmp/c"], timeout=10)
        assert (r.exit_code == 0) == mkdir_ok, (path, r)


def test_seccomp_errors(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    missing = str(tmp_path / "nope.json")
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **sc(seccomp={
        "profile_type": pb.SecurityProfile.Localhost, "localhost_ref": missing}))
    assert missing in msg
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                         **sc(seccomp_profile_path=f"localhost/{missing}"))
    assert missing in msg
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                         **sc(seccomp_profile_path="weird/default"))
    assert "seccomp_profile_path" in msg
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [}')
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **sc(seccomp={
        "profile_type": pb.SecurityProfile.Localhost, "localhost_ref": str(bad)}))
    assert str(bad) in msg and "byte" in msg, msg
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": ['
                     '{"names": ["mkdir"], "action": "SCMP_ACT_EXPLODE"}]}')
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **sc(seccomp={
        "profile_type": pb.SecurityProfile.Localhost, "localhost_ref": str(wrong)}))
    assert str(wrong) in msg and "SCMP_ACT_EXPLODE" in msg and "syscalls[0]" in msg, msg
    # A privileged container ignores the profile entirely.
    ppod, pcfg = run_pod(d, tmp_path, linux={"security_context": {"privileged": True}})
    run_ctr(d, ppod, pcfg, busybox, SLEEP, **sc(privileged=True, seccomp={
        "profile_type": pb.SecurityProfile.Localhost, "localhost_ref": missing}))
    # The same at pod level.
    msg = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path, linux={"security_context": {
        "seccomp": {"profile_type": pb.SecurityProfile.Localhost, "localhost_ref": str(bad)}}})
    assert str(bad) in msg


# ---- AppArmor and SELinux (neither is enabled on this kernel) ----

def test_apparmor_selinux_not_enabled(daemon, busybox, tmp_path):
    d = daemon
    if os.path.exists("/sys/module/apparmor") or os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("this kernel has AppArmor or SELinux enabled")
    pod, cfg = run_pod(d, tmp_path)
    # Accepted: nothing to apply.
    run_ctr(d, pod, cfg, busybox, SLEEP, **sc(
        apparmor={"profile_type": pb.SecurityProfile.RuntimeDefault}))
    run_ctr(d, pod, cfg, busybox, SLEEP, **sc(
        apparmor={"profile_type": pb.SecurityProfile.Unconfined}, apparmor_profile="unconfined"))
    run_ctr(d, pod, cfg, busybox, SLEEP, **sc(apparmor_profile="runtime/default",
                                             selinux_options={}))
    # Refused: an explicit profile or label.
    msg = create_refused(d, pod, cfg, busybox, E.FAILED_PRECONDITION, **sc(apparmor={
        "profile_type": pb.SecurityProfile.Localhost, "localhost_ref": "my-profile"}))
    assert "my-profile" in msg and "AppArmor is not enabled" in msg
    msg = create_refused(d, pod, cfg, busybox, E.FAILED_PRECONDITION,
                         **sc(apparmor_profile="localhost/other"))
    assert "'other'" in msg and "AppArmor is not enabled" in msg
    msg = create_refused(d, pod, cfg, busybox, E.FAILED_PRECONDITION,
                         **sc(selinux_options={"type": "spc_t", "level": "s0:c1,c2"}))
    assert "selinux_options.type" in msg and "SELinux is not enabled" in msg
    msg = expect_error(E.FAILED_PRECONDITION, run_pod, d, tmp_path, linux={"security_context": {
        "selinux_options": {"level": "s0:c5,c6"}}})
    assert "SELinux is not enabled" in msg
    msg = expect_error(E.FAILED_PRECONDITION, run_pod, d, tmp_path, linux={"security_context": {
        "apparmor": {"profile_type": pb.SecurityProfile.Localhost, "localhost_ref": "p"}}})
    assert "AppArmor is not enabled" in msg
    assert len(d.rt.ListPodSandbox().items) == 1


# ---- namespaces ----

def test_pid_namespace_modes(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    target = run_ctr(d, pod, cfg, busybox, ["sh", "-c", "exec sleep 4242"])
    tpid = pid_of(d, target)
    # TARGET: joins the target's PID namespace and sees its processes.
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(namespace_options={
        "pid": pb.TARGET, "target_id": target}))
    assert ns_inode(pid_of(d, c), "pid") == ns_inode(tpid, "pid")
    ps = exec_out(d, c, ["ps", "-o", "pid,args"])
    assert "sleep 4242" in ps and "sleep 1000" in ps, ps
    # The target sees the newcomer too.
    assert "sleep 1000" in exec_out(d, target, ["ps", "-o", "args"])
    # CONTAINER: its own.
    own = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(namespace_options={"pid": pb.CONTAINER}))
    assert "sleep 4242" not in exec_out(d, own, ["ps", "-o", "args"])
    # NODE: the host's.
    host = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(namespace_options={"pid": pb.NODE}))
    assert ns_inode(pid_of(d, host), "pid") == ns_inode(os.getpid(), "pid")
    assert str(d.proc.pid) in exec_out(d, host, ["ps", "-o", "pid"]).split()
    # Errors: a target that is not a running container of the pod.
    msg = create_refused(d, pod, cfg, busybox, E.NOT_FOUND, **sc(namespace_options={
        "pid": pb.TARGET, "target_id": "f" * 64}))
    assert "target_id" in msg
    msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT, **sc(namespace_options={
        "pid": pb.TARGET}))
    assert "target_id" in msg
    stopped = run_ctr(d, pod, cfg, busybox, ["true"])
    wait_exited(d, stopped)
    msg = create_refused(d, pod, cfg, busybox, E.FAILED_PRECONDITION, **sc(namespace_options={
        "pid": pb.TARGET, "target_id": stopped}))
    assert stopped in msg
    # POD (protobuf's zero value) in a pod without a shared PID namespace:
    # a PID namespace of the container's own, seeing nothing of the others.
    own = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(namespace_options={"pid": pb.POD}))
    assert ns_inode(pid_of(d, own), "pid") not in (
        ns_inode(os.getpid(), "pid"), ns_inode(pid_of(d, target), "pid"))
    assert "4242" not in exec_out(d, own, ["ps", "-o", "args"])


def test_network_ipc_namespace_modes(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    c = run_ctr(d, pod, cfg, busybox, SLEEP, **sc(namespace_options={
        "network": pb.POD, "ipc": pb.POD, "pid": pb.CONTAINER}))
    assert ns_inode(pid_of(d, c), "net") != ns_inode(os.getpid(), "net")
    for field in ("network", "ipc"):
        for mode in (pb.NODE, pb.CONTAINER, pb.TARGET):
            msg = create_refused(d, pod, cfg, busybox, E.INVALID_ARGUMENT,
                                 **sc(namespace_options={field: mode, "pid": pb.CONTAINER}))
            assert f"namespace_options.{field}" in msg
    # A host-network, host-IPC pod: its containers say NODE (or POD).
    hpod, hcfg = run_pod(d, tmp_path, linux={"security_context": {"namespace_options": {
        "network": pb.NODE, "ipc": pb.NODE, "pid": pb.CONTAINER}}})
    for mode in (pb.NODE, pb.POD):
        c = run_ctr(d, hpod, hcfg, busybox, SLEEP, **sc(namespace_options={
            "network": mode, "ipc": mode, "pid": pb.CONTAINER}))
        for kind in ("net", "ipc"):
            assert ns_inode(pid_of(d, c), kind) == ns_inode(os.getpid(), kind)


def test_pod_sysctls(daemon, busybox, tmp_path):
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux={"sysctls": {
        "net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1",
        "net.ipv4.conf.all.forwarding": "1"}})
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    assert exec_out(d, c, ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]).strip() == "80"
    assert exec_out(d, c, ["cat", "/proc/sys/kernel/shm_rmid_forced"]).strip() == "1"
    assert exec_out(d, c, ["cat", "/proc/sys/net/ipv4/conf/all/forwarding"]).strip() == "1"
    n = len(d.rt.ListPodSandbox().items)
    pods_dir = os.path.join(d.state, "pods")
    before = set(os.listdir(pods_dir))
    for key, val in (("kernel.panic", "1"), ("vm.swappiness", "10"), ("net.nope/../x", "1"),
                     ("kernel.hostname", "x")):
        msg = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path,
                           linux={"sysctls": {key: val}})
        assert key in msg
    # Namespaced but the pod shares the host's namespace.
    msg = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path, linux={
        "sysctls": {"net.ipv4.ip_forward": "1"},
        "security_context": {"namespace_options": {"network": pb.NODE}}})
    assert "net.ipv4.ip_forward" in msg
    assert len(d.rt.ListPodSandbox().items) == n
    assert set(os.listdir(pods_dir)) == before


def test_pod_security_context_checks(daemon, busybox, tmp_path):
    d = daemon
    n_pods_dirs = len(os.listdir(os.path.join(d.state, "pods"))) if os.path.isdir(
        os.path.join(d.state, "pods")) else 0
    msg = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path, linux={"security_context": {
        "run_as_group": {"value": 5}}})
    assert "run_as_group" in msg
    msg = expect_error(E.INVALID_ARGUMENT, run_pod, d, tmp_path, linux={"security_context": {
        "seccomp_profile_path": "localhost/relative.json"}})
    assert "seccomp_profile_path" in msg
    assert not d.rt.ListPodSandbox().items
    pods_dir = os.path.join(d.state, "pods")
    assert (len(os.listdir(pods_dir)) if os.path.isdir(pods_dir) else 0) == n_pods_dirs
    # Accepted: a pod-level user, groups, read-only root, RuntimeDefault.
    pod, cfg = run_pod(d, tmp_path, linux={"security_context": {
        "run_as_user": {"value": 1000}, "run_as_group": {"value": 1000},
        "supplemental_groups": [5], "readonly_rootfs": True,
        "seccomp": {"profile_type": pb.SecurityProfile.RuntimeDefault},
        "supplemental_groups_policy": pb.Strict}})
    c = run_ctr(d, pod, cfg, busybox, SLEEP)
    # Nothing of it reaches the containers, which the kubelet configures
    # one by one: root, writable.
    assert id_of(d, c)[0] == "0"
    exec_out(d, c, ["touch", "/ok"])
