"""The OCI runtime-spec config husk writes for every container (the
bundle's config.json, shown by `crictl inspect` as info.runtimeSpec):
valid against the runtime-spec JSON schema (Debian's
golang-github-opencontainers-specs-dev ships it) for the CRI field
combinations the e2e suites use, and saying what the kernel shows."""
import json
import os

import pytest

from conftest import pb
from pods import busybox, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401

# The tests that make containers run once per RuntimeClass handler.
pytestmark = pytest.mark.per_handler

jsonschema = pytest.importorskip("jsonschema")

SCHEMA_DIR = "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema"
SLEEP = ["sleep", "1000"]
MiB = 1 << 20
BLOCK_MKDIR = """{"defaultAction": "SCMP_ACT_ALLOW",
 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"""


def validator():
    path = os.path.join(SCHEMA_DIR, "config-schema.json")
    if not os.path.exists(path):
        pytest.skip("no runtime-spec schema (hack/install-deps installs it)")
    with open(path) as f:
        schema = json.load(f)
    resolver = jsonschema.RefResolver(base_uri=f"file://{SCHEMA_DIR}/", referrer=schema)
    return jsonschema.Draft4Validator(schema, resolver=resolver)


def runtime_spec(d, cid):
    info = json.loads(d.rt.ContainerStatus(container_id=cid, verbose=True).info["info"])
    return info["runtimeSpec"]


def sc(**kw):
    return {"linux": {"security_context": kw}}


def check(v, spec):
    errors = sorted(v.iter_errors(spec), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_oci_config_valid_for_cri_combinations(daemon, busybox, tmp_path):
    d = daemon
    v = validator()
    prof = tmp_path / "block-mkdir.json"
    prof.write_text(BLOCK_MKDIR)
    vol = tmp_path / "vol"
    vol.mkdir()
    pod, cfg = run_pod(d, tmp_path, linux={"sysctls": {"net.ipv4.ip_unprivileged_port_start":
                                                       "80"}})
    ppod, pcfg = run_pod(d, tmp_path, linux={"security_context": {"privileged": True}})
    RD = {"profile_type": pb.SecurityProfile.RuntimeDefault}
    combos = [
        (pod, cfg, {}),
        (pod, cfg, sc(seccomp=RD, no_new_privs=True, run_as_user={"value": 1234},
                      run_as_group={"value": 567}, supplemental_groups=[88, 99],
                      readonly_rootfs=True,
                      capabilities={"add_capabilities": ["NET_ADMIN"],
                                    "drop_capabilities": ["KILL"]})),
        (pod, cfg, sc(seccomp={"profile_type": pb.SecurityProfile.Localhost,
                               "localhost_ref": str(prof)})),
        (pod, cfg, sc(seccomp={"profile_type": pb.SecurityProfile.Unconfined},
                      masked_paths=[], readonly_paths=[],
                      namespace_options={"pid": pb.CONTAINER})),
        (pod, cfg, {"linux": {"resources": {
            "cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512,
            "memory_limit_in_bytes": 64 * MiB, "memory_swap_limit_in_bytes": 64 * MiB,
            "cpuset_cpus": "0", "cpuset_mems": "0", "oom_score_adj": 500}}}),
        (pod, cfg, {"mounts": [{"container_path": "/data", "host_path": str(vol),
                                "readonly": True},
                               {"container_path": "/rw", "host_path": str(vol)}],
                    "devices": [{"container_path": "/dev/mynull", "host_path": "/dev/null",
                                 "permissions": "rw"}],
                    "tty": True, "stdin": True, "envs": [{"key": "A", "value": b"b"}],
                    "working_dir": "/tmp",
                    "annotations": {"x.example/a": "1"}}),
        (ppod, pcfg, sc(privileged=True)),
    ]
    for p, pc, kw in combos:
        c = run_ctr(d, p, pc, busybox, SLEEP, **kw)
        spec = runtime_spec(d, c)
        check(v, spec)
        a = spec["annotations"]
        assert a["io.kubernetes.cri.container-type"] == "container"
        assert a["io.kubernetes.cri.sandbox-id"] == p
        assert a["io.kubernetes.cri.sandbox-name"] == pc["metadata"]["name"]
        assert a["io.kubernetes.cri.sandbox-namespace"] == "e2e"
        assert a["io.kubernetes.cri.image-name"] == busybox
        assert spec["process"]["args"] == SLEEP
        # Pod namespaces by path: the pod's pins, the same inodes the
        # container's process is in.
        info = json.loads(d.rt.ContainerStatus(container_id=c, verbose=True).info["info"])
        pid = info["pid"]
        byname = {n["type"]: n.get("path") for n in spec["linux"]["namespaces"]}
        for oci, proc in (("network", "net"), ("ipc", "ipc"), ("uts", "uts")):
            assert byname[oci], oci
            assert os.stat(byname[oci]).st_ino == os.stat(f"/proc/{pid}/ns/{proc}").st_ino
        assert "mount" in byname and byname["mount"] is None
        # cgroupsPath is where the kernel put the process.
        cgpath = spec["linux"]["cgroupsPath"]
        assert any(line.endswith(":" + cgpath)
                   for line in open(f"/proc/{pid}/cgroup").read().splitlines()), cgpath
    # Spot checks of what the combinations asked for.
    specs = [runtime_spec(d, c.id) for c in d.rt.ListContainers().containers]
    byargs = {}
    for s in specs:
        key = (s["process"]["user"]["uid"], s["linux"].get("seccomp", {}).get("defaultAction"))
        byargs[key] = s
    sec = byargs[(1234, "SCMP_ACT_ERRNO")]
    assert sec["process"]["user"]["gid"] == 567
    assert {88, 99} <= set(sec["process"]["user"]["additionalGids"])
    assert sec["process"]["noNewPrivileges"] is True
    assert sec["root"]["readonly"] is True
    assert "CAP_NET_ADMIN" in sec["process"]["capabilities"]["bounding"]
    assert "CAP_KILL" not in sec["process"]["capabilities"]["bounding"]
    # Pod sysctls live in the pod's namespaces, set once at RunPodSandbox;
    # the container joins them.
    assert sec["linux"]["sysctl"] == {}
    loc = byargs[(0, "SCMP_ACT_ALLOW")]
    assert loc["linux"]["seccomp"]["syscalls"] == [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    res = [s for s in specs if "memory" in s["linux"]["resources"]][0]
    assert res["linux"]["resources"]["memory"] == {"limit": 64 * MiB, "swap": 64 * MiB}
    assert res["linux"]["resources"]["cpu"] == {"shares": 512, "quota": 50000,
                                                "period": 100000, "cpus": "0", "mems": "0"}
    assert res["process"]["oomScoreAdj"] == 500
    priv = [s for s in specs if s["annotations"]["io.kubernetes.cri.sandbox-id"] == ppod][0]
    assert "seccomp" not in priv["linux"]
    assert priv["linux"]["maskedPaths"] == [] and priv["linux"]["readonlyPaths"] == []
    assert priv["linux"]["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    vols = [s for s in specs if "x.example/a" in s["annotations"]][0]
    assert vols["process"]["terminal"] is True
    assert vols["process"]["cwd"] == "/tmp" and "A=b" in vols["process"]["env"]
    m = {x["destination"]: x for x in vols["mounts"]}
    assert m["/data"]["source"] == str(vol) and "ro" in m["/data"]["options"]
    assert "rbind" in m["/rw"]["options"] and "ro" not in m["/rw"]["options"]
    dev = [x for x in vols["linux"]["devices"] if x["path"] == "/dev/mynull"][0]
    assert (dev["type"], dev["major"], dev["minor"]) == ("c", 1, 3)
    assert {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"} in \
        vols["linux"]["resources"]["devices"]
    own = [s for s in specs if s["linux"].get("maskedPaths") == []
           and "seccomp" not in s["linux"] and s is not priv][0]
    assert {"type": "pid"} in own["linux"]["namespaces"]


def test_launcher_runs_from_config_json(daemon, busybox, tmp_path):
    """husk's own launcher runs from config.json and nothing else: no second
    spec file is written, an edit of a created container's config.json is
    what the kernel then shows, io.husk.* annotations of a CRI request never
    reach the config, and a broken config fails StartContainer naming the
    key."""
    import grpc
    from pods import expect_error, pid_of, proc_status

    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    RD = {"profile_type": pb.SecurityProfile.RuntimeDefault}
    c = run_ctr(d, pod, cfg, busybox, SLEEP, start=False, **sc(seccomp=RD),
                annotations={"io.husk.seccomp-filter": "/nonexistent.bpf",
                             "io.husk.privileged": "true",
                             "io.husk.cgroup-procs": '["/sys/fs/cgroup/pids/cgroup.procs"]'})
    cdir = os.path.join(d.state, "containers", c)
    assert sorted(os.listdir(cdir)) == ["config.json", "seccomp.bpf"]
    path = os.path.join(cdir, "config.json")

    def edit(fn):
        with open(path) as f:
            conf = json.load(f)
        fn(conf)
        with open(path + ".new", "w") as f:
            json.dump(conf, f)
        os.rename(path + ".new", path)
        return conf

    def change(conf):
        a = conf["annotations"]
        assert a["io.husk.seccomp-filter"] == os.path.join(cdir, "seccomp.bpf")
        assert "io.husk.privileged" not in a
        assert "/sys/fs/cgroup/pids/cgroup.procs" not in a["io.husk.cgroup-procs"]
        conf["process"]["env"].append("FROM_CONFIG=yes")
        conf["process"]["user"]["uid"] = 4321
        conf["process"]["capabilities"]["bounding"].remove("CAP_KILL")

    edit(change)
    d.rt.StartContainer(container_id=c)
    pid = pid_of(d, c)
    with open(f"/proc/{pid}/environ", "rb") as f:
        assert b"FROM_CONFIG=yes" in f.read().split(b"\0")
    st = proc_status(pid)
    assert st["Uid"].split()[0] == "4321"
    assert not int(st["CapBnd"], 16) & (1 << 5)  # CAP_KILL
    assert st["Seccomp"] == "2"
    # exec reads the same file.
    r = d.rt.ExecSync(container_id=c, cmd=["id", "-u"], timeout=10)
    assert r.stdout.strip() == b"4321"

    c2 = run_ctr(d, pod, cfg, busybox, SLEEP, start=False)
    path = os.path.join(d.state, "containers", c2, "config.json")
    edit(lambda conf: conf["process"]["user"].update(uid="root"))
    msg = expect_error(grpc.StatusCode.INVALID_ARGUMENT, d.rt.StartContainer, container_id=c2)
    assert f"config '{path}': process.user.uid: expected a non-negative integer, got string" \
        in msg, msg
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
