"""README's "Your first hour", step by step with crictl as written there:
hack/start on a node without a CNI config, then the first pod from
deploy/examples (runp, create, start, ps, logs, exec -s, exec -i,
port-forward), inspect and inspectp, and the clean-up. The differences
from the README are only where the steps would touch the machine: a
private install, socket and CNI dir (hack/start's environment overrides),
the bridge and subnet of the network fixture, the image from the local
registry, and the log directory under the test's tmp dir."""
import json
import os
import shutil
import subprocess
import time
import urllib.request

import pytest

from registry import registries  # noqa: F401
from test_hack_scripts import REPO, Node
from test_network import cni, free_port  # noqa: F401

CRICTL = os.environ.get("HUSK_CRICTL") or shutil.which("crictl") or \
    "/work/shared/tools/cri-tools/crictl"
README_IMAGE = "docker.io/library/busybox:1.36"

pytestmark = [
    pytest.mark.skipif(not os.access(CRICTL, os.X_OK), reason="crictl not found"),
    pytest.mark.skipif(os.path.isdir("/run/systemd/system"),
                       reason="systemd is PID 1: hack/start uses the unit"),
]


@pytest.fixture
def node(tmp_path):
    n = Node(str(tmp_path))
    yield n
    n.run("stop")


def test_first_hour(node, cni, registries, tmp_path):  # noqa: F811
    env = dict(os.environ, CONTAINER_RUNTIME_ENDPOINT=f"unix://{node.socket}",
               IMAGE_SERVICE_ENDPOINT=f"unix://{node.socket}")

    def crictl(*args, input=None):
        r = subprocess.run([CRICTL, *args], env=env, capture_output=True, text=True,
                           input=input, timeout=60)
        assert r.returncode == 0, f"crictl {' '.join(args)}: {r.stdout}{r.stderr}"
        return r.stdout

    # 1. Start a node and talk to it.
    r = node.run("start", "--no-build")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "installed the default pod network" in r.stdout
    conf_path = os.path.join(node.cni_dir, "10-husk-bridge.conflist")
    conf = json.load(open(conf_path))
    conf["plugins"][0]["bridge"] = cni.bridge
    conf["plugins"][0]["ipam"]["ranges"] = [[{"subnet": cni.subnet}]]
    conf["plugins"][0]["ipam"]["dataDir"] = cni.data_dir
    with open(conf_path, "w") as f:
        json.dump(conf, f)
    info = json.loads(crictl("info"))
    conditions = {c["type"]: c["status"] for c in info["status"]["conditions"]}
    assert conditions == {"RuntimeReady": True, "NetworkReady": True}

    # 2. The first pod, from deploy/examples.
    image = f"{registries.open.host}/test/busybox:latest"
    logs = str(tmp_path / "pods")
    examples = os.path.join(REPO, "deploy", "examples")
    pod_json, ctr_json = str(tmp_path / "pod.json"), str(tmp_path / "container.json")
    with open(os.path.join(examples, "pod.json")) as f:
        pod_cfg = json.load(f)
    pod_cfg["log_directory"] = pod_cfg["log_directory"].replace("/var/log/pods", logs)
    json.dump(pod_cfg, open(pod_json, "w"))
    with open(os.path.join(examples, "container.json")) as f:
        ctr_cfg = json.load(f)
    assert ctr_cfg["image"]["image"] == README_IMAGE
    ctr_cfg["image"]["image"] = image
    json.dump(ctr_cfg, open(ctr_json, "w"))

    crictl("pull", image)
    pod = crictl("runp", pod_json).strip()
    ip = json.loads(crictl("inspectp", pod))["status"]["network"]["ip"]
    assert ip.startswith(cni.subnet.rsplit(".", 2)[0] + ".")
    ctr = crictl("create", pod, ctr_json, pod_json).strip()
    crictl("start", ctr)
    assert "Running" in crictl("ps")
    deadline = time.time() + 20
    while "serving /www on port 80" not in crictl("logs", ctr) and time.time() < deadline:
        time.sleep(0.1)
    assert "serving /www on port 80" in crictl("logs", ctr)
    log_file = os.path.join(pod_cfg["log_directory"], "web.log")
    assert " stdout F serving /www on port 80" in open(log_file).read()
    assert crictl("exec", "-s", ctr, "hostname").strip() == "hello"
    out = crictl("exec", "-i", ctr, "sh", "-c", "id; cat", input="hi\n")
    assert "uid=0(root)" in out and "hi" in out
    port = free_port()
    pf = subprocess.Popen([CRICTL, "port-forward", pod, f"{port}:80"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "Forwarding from" in pf.stdout.readline()
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read()
        assert body == b"hello from husk\n"
    finally:
        pf.terminate()
        pf.wait()

    # 3. Inspect it.
    k = json.loads(crictl("inspect", ctr))["info"]["kernel"]
    assert k["source"] == "live" and k["namespaces"]["net"]["sharedWith"] == "pod"
    assert crictl("inspect", "-o", "go-template", "--template",
                  "{{.info.kernel.seccomp.mode}}", ctr).strip() == "filter"
    kp = json.loads(crictl("inspectp", pod))["info"]["kernel"]
    assert kp["ips"] == [ip]

    # 4. Clean up.
    crictl("stop", ctr)
    crictl("rm", ctr)
    crictl("stopp", pod)
    crictl("rmp", pod)
    crictl("rmi", image)
    assert pod[:13] not in crictl("pods")
    r = node.run("stop")
    assert r.returncode == 0 and "stopping huskd" in r.stdout, r.stdout + r.stderr
