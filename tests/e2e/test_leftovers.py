"""hack/leftovers: a snapshot, then a check that lists what this run (its
HUSK_RUN_TAG) left on the host, and passes once it is gone."""
import os
import subprocess

from conftest import POD_CG_PARENT, REPO, RUN_TAG, run_tmpdir

TOOL = os.path.join(REPO, "hack", "leftovers")


def leftovers(cmd, path, **env):
    return subprocess.run([TOOL, cmd, path], capture_output=True, text=True,
                          env=dict(os.environ, HUSK_RUN_TAG=RUN_TAG, **env))


def test_check_lists_what_the_run_left(tmp_path):
    snap = str(tmp_path / "snap.json")
    assert leftovers("snapshot", snap).returncode == 0
    left = run_tmpdir("left")
    cg = f"/sys/fs/cgroup/memory/{POD_CG_PARENT}-leftovers"
    made_cg = os.path.isdir("/sys/fs/cgroup/memory") and not os.path.exists(cg)
    if made_cg:
        os.mkdir(cg)
    try:
        r = leftovers("check", snap)
        assert r.returncode == 1
        assert f"file {left}" in r.stderr, r.stderr
        if made_cg:
            assert f"cgroup {cg}" in r.stderr, r.stderr
    finally:
        os.rmdir(left)
        if made_cg:
            os.rmdir(cg)
    # The check consumed its snapshot; a new one over a clean run passes.
    assert not os.path.exists(snap)
    assert leftovers("snapshot", snap).returncode == 0
    r = leftovers("check", snap, HUSK_LEFTOVERS="shared")
    assert r.returncode == 0, r.stderr
    assert "CLEAN" in r.stdout


def test_pod_in_a_kubelet_made_cgroup_leaves_it_empty(daemon, tmp_path):
    """The kubelet makes a pod's cgroup before RunPodSandbox and removes it
    after RemovePodSandbox: husk must leave nothing of its own in it (the
    pod init's group), or the kubelet's rmdir fails."""
    from pods import run_pod
    from conftest import pb
    d = daemon
    parent = f"{POD_CG_PARENT}/kubelet-pod"
    made = []
    for top in sorted(os.listdir("/sys/fs/cgroup")):
        if top == "unified":  # v1 here; the v2 mount is tested apart
            continue
        p = f"/sys/fs/cgroup/{top}/{parent}"
        if os.path.isdir(f"/sys/fs/cgroup/{top}") and not os.path.exists(p):
            os.makedirs(p)
            made.append(p)
    try:
        pod, _ = run_pod(d, tmp_path, linux={"cgroup_parent": parent, "security_context": {
            "namespace_options": {"pid": pb.POD}}})
        assert any(os.path.isdir(f"{p}/init") for p in made)
        d.rt.StopPodSandbox(pod_sandbox_id=pod)
        d.rt.RemovePodSandbox(pod_sandbox_id=pod)
        left = [os.path.join(p, n) for p in made for n in os.listdir(p)
                if os.path.isdir(os.path.join(p, n))]
        assert left == []
        assert all(os.path.isdir(p) for p in made)  # the kubelet's, not husk's
    finally:
        for p in made:
            for sub in ("init", ""):
                try:
                    os.rmdir(os.path.join(p, sub) if sub else p)
                except OSError:
                    pass
            try:
                os.rmdir(os.path.dirname(p))
            except OSError:
                pass
