"""`huskd config`: files, drop-ins, flags and the errors they give."""
import json
import subprocess

from conftest import HUSKD


def run(*args):
    return subprocess.run([HUSKD, *args], capture_output=True, text=True, timeout=10)


def effective(tmp_path, main=None, dropins=(), args=()):
    cfg = tmp_path / "husk.json"
    if main is not None:
        cfg.write_text(main if isinstance(main, str) else json.dumps(main))
    if dropins:
        (tmp_path / "husk.d").mkdir()
        for name, body in dropins:
            (tmp_path / "husk.d" / name).write_text(body if isinstance(body, str) else json.dumps(body))
    return run("--config", str(cfg), *args, "config")


def test_defaults(tmp_path):
    r = effective(tmp_path, {})
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    assert c["socket"] == "/run/husk/husk.sock"
    assert c["root"] == "/var/lib/husk"
    assert c["state"] == "/run/husk"
    # As configured, so that a file written from it keeps "auto"; what auto
    # is on this host goes to stderr.
    assert c["cgroup_driver"] == "auto"
    assert 'cgroup_driver "auto" is "cgroupfs"' in r.stderr or \
        'cgroup_driver "auto" is "systemd"' in r.stderr, r.stderr
    r = effective(tmp_path, {}, args=["--cgroup-driver", "cgroupfs"])
    assert json.loads(r.stdout)["cgroup_driver"] == "cgroupfs" and "auto" not in r.stderr


def test_help_lists_every_flag_and_driver():
    r = run("--help")
    assert r.returncode == 0
    for word in ("config", "--config", "--socket", "--root", "--state", "--log-level",
                 "--cgroup-driver", "cgroupfs", "systemd", "auto", "--version", "--help"):
        assert word in r.stdout, word


def test_dropins_in_name_order_then_flags(tmp_path):
    r = effective(tmp_path, {"log_level": "warn", "root": "/a"},
                  [("20-b.json", {"root": "/c"}), ("10-a.json", {"root": "/b", "state": "/s"}),
                   ("30-ignored.txt", "not json")],
                  ["--state", "/flag"])
    assert r.returncode == 0, r.stderr
    c = json.loads(r.stdout)
    assert c["log_level"] == "warn"
    assert c["root"] == "/c"        # 20-b after 10-a
    assert c["state"] == "/flag"    # flags win
    # A file that is not *.json is not read, and huskd says so.
    assert "30-ignored.txt" in r.stderr and "ignoring" in r.stderr, r.stderr
    assert "10-a.json" not in r.stderr


def test_registries_merge(tmp_path):
    r = effective(tmp_path, {"registries": {"127.0.0.1:5000": {"insecure": True}}},
                  [("10.json", {"registries": {"127.0.0.1:5000": {"mirrors": ["127.0.0.1:5001"]}}})])
    assert r.returncode == 0, r.stderr
    reg = json.loads(r.stdout)["registries"]["127.0.0.1:5000"]
    assert reg == {"insecure": True, "mirrors": ["127.0.0.1:5001"]}


def test_errors_name_file_and_key(tmp_path):
    cases = [
        ({"nope": 1}, ["unknown key 'nope'"]),
        ({"log_level": "loud"}, ["log_level", "loud"]),
        ({"shutdown_timeout": "5"}, ["shutdown_timeout", "expected an integer"]),
        ({"socket": "relative.sock"}, ["socket", "not an absolute path"]),
        ({"registries": {"r": {"insecure": "yes"}}}, ["registries", "insecure"]),
        ('{"root": ', ["parse"]),
    ]
    for body, words in cases:
        r = effective(tmp_path, body)
        assert r.returncode != 0, body
        assert str(tmp_path / "husk.json") in r.stderr, r.stderr
        for w in words:
            assert w in r.stderr, (body, r.stderr)


def test_bad_dropin_named(tmp_path):
    r = effective(tmp_path, {}, [("50-bad.json", {"cgroup_driver": "lxc"})])
    assert r.returncode != 0
    assert "50-bad.json" in r.stderr and "cgroup_driver" in r.stderr


def test_missing_named_config_is_an_error(tmp_path):
    r = run("--config", str(tmp_path / "none.json"), "config")
    assert r.returncode != 0
    assert "none.json" in r.stderr


def test_bad_flag_value(tmp_path):
    r = effective(tmp_path, {}, args=["--log-level", "chatty"])
    assert r.returncode != 0 and "--log_level" in r.stderr or "log_level" in r.stderr


def test_kubelet_fragment_leaves_the_driver_to_the_cri():
    """deploy/kubelet-config.yaml: the kubelet learns the cgroup driver from
    husk's RuntimeConfig, so the fragment must not pin one."""
    import os
    from conftest import REPO
    with open(os.path.join(REPO, "deploy", "kubelet-config.yaml")) as f:
        lines = f.read().splitlines()
    assert not [ln for ln in lines if ln.strip().startswith("cgroupDriver:")]
    assert any("RuntimeConfig" in ln for ln in lines if ln.startswith("#"))
