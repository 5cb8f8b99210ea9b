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
