"""Pod networking through Debian's CNI plugins (bridge, host-local, portmap,
loopback): addresses, reachability between pods, hostPort, NetworkReady,
failures that leave nothing behind, a SIGKILLed huskd, and many cycles.

Each test has its own bridge, pod subnet (10.244.X.0/24), host-local data
dir and CNI dirs. The bridge plugin turns on ip_forward for its gateway:
the fixture saves and restores it and drops forwarded traffic leaving the
pod subnet, so pods reach only each other and the host."""
import hashlib
import json
import os
import random
import re
import shlex
import socket
import subprocess
import time
import urllib.request
import uuid

import grpc
import pytest

from conftest import REPO, RUN_TAG, mounts_under, pb
from pods import ctr_config, expect_error, leftovers, pod_config
from registry import registries  # noqa: F401

CNI_BIN = "/usr/lib/cni"
PLUGINS = ("bridge", "host-local", "portmap", "loopback")
BUSYBOX_SLEEP = ["sleep", "1000"]

pytestmark = pytest.mark.skipif(
    not all(os.access(os.path.join(CNI_BIN, p), os.X_OK) for p in PLUGINS),
    reason="containernetworking-plugins not installed")

E = grpc.StatusCode


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True)


def nat_chains():
    out = sh("iptables-save", "-t", "nat").stdout
    return {line[1:].split()[0] for line in out.splitlines() if line.startswith(":")}


class Net:
    """One test's CNI world: dirs, a bridge name, a subnet, and views of
    what the plugins left on the host."""

    def __init__(self, base):
        self.x = random.randint(100, 250)
        tag = uuid.uuid4().hex[:6]
        # The run's tag in the bridge's name (at most 15 bytes) and the
        # network's, which portmap's iptables comments carry: what the
        # plugins leave on the host can be told from other runs'.
        self.bridge = "hk" + RUN_TAG[:8] + tag[:4]
        self.name = f"husk-e2e-{RUN_TAG}-{tag}"
        self.subnet = f"10.244.{self.x}.0/24"
        self.conf_dir = os.path.join(base, "net.d")
        self.bin_dir = os.path.join(base, "cni-bin")
        self.data_dir = os.path.join(base, "ipam")
        for p in (self.conf_dir, self.bin_dir, self.data_dir):
            os.makedirs(p, exist_ok=True)

    def daemon_config(self, **kw):
        cfg = {"cni_conf_dir": self.conf_dir, "cni_bin_dirs": [self.bin_dir, CNI_BIN]}
        cfg.update(kw)
        return cfg

    def conflist(self, extra_plugins=(), ipam=None, version="1.0.0"):
        ipam = ipam or {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                        "dataDir": self.data_dir}
        return {
            "cniVersion": version,
            "name": self.name,
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": True,
                 "ipMasq": False, "ipam": ipam},
                *extra_plugins,
                {"type": "portmap", "capabilities": {"portMappings": True}},
                {"type": "loopback"},
            ],
        }

    def write(self, conf=None, name="10-husk-e2e.conflist", text=None):
        path = os.path.join(self.conf_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(text if text is not None else json.dumps(conf or self.conflist()))
        os.rename(path + ".tmp", path)
        return path

    def fake_plugin(self, name, script):
        path = os.path.join(self.bin_dir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + script)
        os.chmod(path, 0o755)

    def leases(self):
        d = os.path.join(self.data_dir, self.name)
        if not os.path.isdir(d):
            return []
        return sorted(n for n in os.listdir(d) if re.match(r"^[0-9a-f.:]+$", n))

    def veths(self):
        out = sh("ip", "-o", "link", "show", "master", self.bridge, check=False).stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def iptables_mentions(self, ids):
        out = sh("iptables-save").stdout
        return [line for line in out.splitlines() if any(i in line for i in ids)]


@pytest.fixture
def cni(tmp_path):
    """A Net with ip_forward saved and restored, a FORWARD DROP rule for
    traffic leaving the pod subnet, and the bridge and portmap's top-level
    chains removed afterwards."""
    n = Net(str(tmp_path))
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        forward = f.read().strip()
    chains_before = nat_chains()
    rule = ["FORWARD", "-s", n.subnet, "!", "-d", n.subnet, "-m", "comment",
            "--comment", "husk-e2e", "-j", "DROP"]
    sh("iptables", "-I", *rule)
    try:
        yield n
    finally:
        sh("iptables", "-D", *rule, check=False)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write(forward)
        sh("ip", "link", "del", n.bridge, check=False)
        remove_new_nat_chains(chains_before)


def remove_new_nat_chains(before):
    """portmap leaves its shared chains, and the jumps to them, once used."""
    new = nat_chains() - before
    if not new:
        return
    for line in sh("iptables-save", "-t", "nat").stdout.splitlines():
        parts = shlex.split(line)
        if len(parts) > 2 and parts[0] == "-A" and parts[1] not in new and \
                parts[-2] == "-j" and parts[-1] in new:
            sh("iptables", "-t", "nat", "-D", *parts[1:], check=False)
    for chain in sorted(new):
        sh("iptables", "-t", "nat", "-F", chain, check=False)
    for chain in sorted(new):
        sh("iptables", "-t", "nat", "-X", chain, check=False)


def net_daemon(daemon_factory, cni, write=True, **kw):
    if write:
        cni.write()
    return daemon_factory(cni.daemon_config(**kw))


def busybox_in(d, registries):  # noqa: F811
    ref = f"{registries.open.host}/test/busybox:latest"
    d.img.PullImage(image={"image": ref})
    return ref


def run_pod(d, **kw):
    cfg = pod_config(**kw)
    return d.rt.RunPodSandbox(config=cfg).pod_sandbox_id, cfg


def pod_ips(d, pod):
    net = d.rt.PodSandboxStatus(pod_sandbox_id=pod).status.network
    return [net.ip] + [a.ip for a in net.additional_ips] if net.ip else []


def netns_pin(d, pod):
    info = json.loads(d.rt.PodSandboxStatus(pod_sandbox_id=pod, verbose=True).info["info"])
    return info["namespaces"]["network"]


def cni_records(d):
    p = os.path.join(d.root, "cni", "results")
    return sorted(os.listdir(p)) if os.path.isdir(p) else []


def network_condition(d):
    conds = d.rt.Status(verbose=True).status.conditions
    return next(c for c in conds if c.type == "NetworkReady")


def exec_ok(d, cid, cmd, timeout=20):
    r = d.rt.ExecSync(container_id=cid, cmd=cmd, timeout=timeout)
    assert r.exit_code == 0, (cmd, r.stdout, r.stderr)
    return r.stdout.decode()


def start_ctr(d, pod, cfg, image, cmd):
    cid = d.rt.CreateContainer(pod_sandbox_id=pod, config=ctr_config(image, cmd),
                               sandbox_config=cfg).container_id
    d.rt.StartContainer(container_id=cid)
    return cid


def assert_clean(d, cni, ids):
    """Nothing of the given pods is left: no netns pin or other file or
    mount, no veth on the bridge, no lease, no iptables rule, no record."""
    assert leftovers(d, ids) == []
    assert cni.veths() == []
    assert cni.leases() == []
    assert cni.iptables_mentions(ids) == []
    assert cni_records(d) == []


def http_get(url, timeout=2):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def wait_http(url, deadline=15):
    end = time.time() + deadline
    while True:
        try:
            return http_get(url)
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.2)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- tests ----


def test_network_ready_follows_the_config(daemon_factory, cni):
    d = net_daemon(daemon_factory, cni, write=False)
    c = network_condition(d)
    assert not c.status
    assert c.reason == "NetworkPluginNotReady"
    assert cni.conf_dir in c.message and "no network config" in c.message
    # Without any config, pods still run with loopback only and no address.
    pod, _ = run_pod(d)
    assert pod_ips(d, pod) == []
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)

    cni.write(text="{not json", name="05-broken.conflist")
    c = network_condition(d)
    assert not c.status and "05-broken.conflist" in c.message
    # A config that exists but is unusable refuses pods, saying why.
    details = expect_error(E.UNAVAILABLE, d.rt.RunPodSandbox, config=pod_config())
    assert "05-broken.conflist" in details
    os.unlink(os.path.join(cni.conf_dir, "05-broken.conflist"))

    conf = cni.conflist()
    conf["plugins"].insert(1, {"type": "flannel-husk-missing"})
    cni.write(conf)
    c = network_condition(d)
    assert not c.status and "'flannel-husk-missing' not found" in c.message

    path = cni.write()
    c = network_condition(d)
    assert c.status, c.message
    assert d.rt.Status(verbose=True).info["networkConfig"] == path
    assert not d.rt.ListPodSandbox().items


def test_two_pods_get_addresses_and_reach_each_other(daemon_factory, cni, registries):  # noqa: F811
    d = net_daemon(daemon_factory, cni)
    image = busybox_in(d, registries)
    pods = [run_pod(d) for _ in range(2)]
    ips = [pod_ips(d, p) for p, _ in pods]
    assert all(len(i) == 1 for i in ips), ips
    a, b = ips[0][0], ips[1][0]
    assert a != b
    assert a.startswith(f"10.244.{cni.x}.") and b.startswith(f"10.244.{cni.x}.")
    assert cni.leases() == sorted([a, b])
    assert len(cni.veths()) == 2
    # The kernel's view: each pinned namespace has its address on eth0.
    for (pod, _), ip in zip(pods, (a, b)):
        out = sh("nsenter", f"--net={netns_pin(d, pod)}", "ip", "-o", "addr", "show", "eth0").stdout
        assert f"inet {ip}/24" in out
    # Reachable from one namespace to the other...
    sh("nsenter", f"--net={netns_pin(d, pods[0][0])}", "busybox", "ping", "-c1", "-W2", b)
    # ... and from containers, which also find their address in /etc/hosts.
    ca = start_ctr(d, pods[0][0], pods[0][1], image, BUSYBOX_SLEEP)
    start_ctr(d, pods[1][0], pods[1][1], image,
              ["sh", "-c", "mkdir /www && echo from-b > /www/index.html && "
                           "exec httpd -f -p 8080 -h /www"])
    assert a in exec_ok(d, ca, ["cat", "/etc/hosts"])
    exec_ok(d, ca, ["ping", "-c1", "-W2", b])
    end = time.time() + 10
    while True:
        r = d.rt.ExecSync(container_id=ca, cmd=["wget", "-q", "-O-", f"http://{b}:8080/"],
                          timeout=10)
        if r.exit_code == 0 or time.time() > end:
            break
        time.sleep(0.2)
    assert r.stdout.decode().strip() == "from-b", r.stderr
    # The pod subnet cannot reach beyond itself (the test's own DROP rule).
    assert d.rt.ExecSync(container_id=ca, cmd=["ping", "-c1", "-W1", "10.255.255.1"],
                         timeout=10).exit_code != 0

    # Stop releases the addresses; remove leaves nothing at all.
    d.rt.StopPodSandbox(pod_sandbox_id=pods[0][0])
    assert cni.leases() == [b]
    assert len(cni.veths()) == 1
    assert d.rt.PodSandboxStatus(pod_sandbox_id=pods[0][0]).status.network.ip == a
    for pod, _ in pods:
        d.rt.StopPodSandbox(pod_sandbox_id=pod)
        d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [p for p, _ in pods])


def test_host_port_reaches_httpd_until_removed(daemon_factory, cni, registries):  # noqa: F811
    d = net_daemon(daemon_factory, cni)
    image = busybox_in(d, registries)
    port = free_port()
    pod, cfg = run_pod(d, port_mappings=[{"protocol": pb.TCP, "container_port": 80,
                                          "host_port": port, "host_ip": "127.0.0.1"}])
    ip = pod_ips(d, pod)[0]
    start_ctr(d, pod, cfg, image,
              ["sh", "-c", "mkdir /www && echo hello-husk > /www/index.html && "
                           "exec httpd -f -p 80 -h /www"])
    assert wait_http(f"http://127.0.0.1:{port}/").strip() == "hello-husk"
    assert http_get(f"http://{ip}:80/").strip() == "hello-husk"  # the host reaches the pod
    assert cni.iptables_mentions([pod]), "portmap rules name the pod"
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{port}/", timeout=1)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    with pytest.raises(OSError):
        http_get(f"http://127.0.0.1:{port}/", timeout=1)
    assert_clean(d, cni, [pod])


def test_host_network_pod_skips_cni(daemon_factory, cni):
    d = net_daemon(daemon_factory, cni)
    node = {"security_context": {"namespace_options": {"network": pb.NODE}}}
    pod, _ = run_pod(d, linux=node)
    assert pod_ips(d, pod) == []
    assert cni.leases() == [] and cni_records(d) == []
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)


def test_broken_config_and_failing_plugins_leave_nothing(daemon_factory, cni):
    d = net_daemon(daemon_factory, cni, write=False, cni_plugin_timeout=2)
    tried = []

    def refused(code, *needles):
        cfg = pod_config()
        details = expect_error(code, d.rt.RunPodSandbox, config=cfg)
        for n in needles:
            assert n in details, details
        assert not d.rt.ListPodSandbox().items
        # no pod dir, no netns pin, no mount, no veth, lease or record
        pods_dir = os.path.join(d.state, "pods")
        assert not os.path.isdir(pods_dir) or os.listdir(pods_dir) == []
        assert [m for m in mounts_under(d.base) if "/ns/" in m] == []
        assert cni.veths() == [] and cni.leases() == [] and cni_records(d) == []
        tried.append(cfg["metadata"]["name"])
        return details

    # A config that does not parse.
    cni.write(text='{"cniVersion": "1.0.0", "name": ', name="10-husk-e2e.conflist")
    refused(E.UNAVAILABLE, "10-husk-e2e.conflist", "network not ready")

    # A plugin failing after bridge and host-local did their part: its own
    # CNI error message comes back, and DEL undid the others.
    cni.fake_plugin("husk-fail", 'cat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\n'
                    'echo \'{"cniVersion":"1.0.0","code":7,"msg":"husk-fail refuses",'
                    '"details":"on purpose"}\'\nexit 1\n')
    cni.write(cni.conflist(extra_plugins=[{"type": "husk-fail"}]))
    refused(E.INTERNAL, "CNI plugin 'husk-fail' ADD failed: husk-fail refuses: on purpose")

    # A plugin that hangs is killed at cni_plugin_timeout.
    cni.fake_plugin("husk-hang", 'cat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\n'
                    'exec sleep 60\n')
    cni.write(cni.conflist(extra_plugins=[{"type": "husk-hang"}]))
    t0 = time.time()
    refused(E.DEADLINE_EXCEEDED, "'husk-hang' ADD: no answer within 2000 ms")
    assert time.time() - t0 < 15

    # The real host-local's own message when its range is used up.
    one_ip = {"type": "host-local", "dataDir": cni.data_dir,
              "ranges": [[{"subnet": cni.subnet, "rangeStart": f"10.244.{cni.x}.10",
                           "rangeEnd": f"10.244.{cni.x}.10"}]]}
    cni.write(cni.conflist(ipam=one_ip))
    first, _ = run_pod(d)
    assert pod_ips(d, first) == [f"10.244.{cni.x}.10"]
    cfg = pod_config()
    details = expect_error(E.INTERNAL, d.rt.RunPodSandbox, config=cfg)
    assert "no IP addresses available" in details, details
    assert [p.id for p in d.rt.ListPodSandbox().items] == [first]
    assert len(cni.veths()) == 1 and cni.leases() == [f"10.244.{cni.x}.10"]
    d.rt.RemovePodSandbox(pod_sandbox_id=first)

    # A bad bandwidth annotation is refused before any plugin runs.
    cni.write()
    details = expect_error(E.INVALID_ARGUMENT, d.rt.RunPodSandbox,
                           config=pod_config(annotations={
                               "kubernetes.io/ingress-bandwidth": "fast"}))
    assert "kubernetes.io/ingress-bandwidth" in details
    assert_clean(d, cni, tried + [first])


def test_stop_after_sigkill_releases_the_address(daemon_factory, cni):
    d = net_daemon(daemon_factory, cni)
    pod, _ = run_pod(d)
    ip = pod_ips(d, pod)[0]
    assert cni.leases() == [ip]
    d.kill()
    # DEL uses what ADD was given, even when the config has gone meanwhile.
    os.unlink(os.path.join(cni.conf_dir, "10-husk-e2e.conflist"))
    d.start()
    assert pod_ips(d, pod) == [ip]
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    assert cni.leases() == []
    assert cni.veths() == []
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [pod])


def test_sigkill_during_add_is_cleaned_up_at_restart(daemon_factory, cni):
    """huskd dies while a plugin runs: the runtime drops the half-made
    sandbox at restart, and the network's record of the attachment turns
    into a DEL that releases the address."""
    cni.fake_plugin("husk-slow", 'cat >/dev/null\n[ "$CNI_COMMAND" = ADD ] && exec sleep 30\n'
                    'exit 0\n')
    cni.write(cni.conflist(extra_plugins=[{"type": "husk-slow"}]))
    d = net_daemon(daemon_factory, cni, write=False)
    fut = d.rt.RunPodSandbox.future(config=pod_config())
    end = time.time() + 15
    while not cni.leases() and time.time() < end:
        time.sleep(0.05)
    assert len(cni.leases()) == 1 and len(cni_records(d)) == 1
    time.sleep(0.3)
    d.kill()
    with pytest.raises(grpc.RpcError):
        fut.result()
    cni.write()
    d.start()
    assert cni.leases() == []
    assert cni.veths() == []
    assert cni_records(d) == []
    assert not d.rt.ListPodSandbox().items


def dnat_chains():
    return {line.split()[0][1:] for line in sh("iptables-save", "-t", "nat").stdout.splitlines()
            if line.startswith(":CNI-DN-")}


def dnat_chain(net, pod):
    """portmap's DNAT chain of a pod: CNI-DN- and the hex SHA-512 of the
    network's name and the container id, cut to iptables' 28 characters."""
    return ("CNI-DN-" + hashlib.sha512((net + pod).encode()).hexdigest())[:28]


@pytest.mark.parametrize("cycles", [50])
def test_many_cycles_leave_nothing(daemon_factory, cni, cycles):
    d = net_daemon(daemon_factory, cni)
    ids = []
    seen = set()
    for i in range(cycles):
        port = 40000 + i
        pod, _ = run_pod(d, port_mappings=[{"protocol": pb.TCP, "container_port": 80,
                                            "host_port": port}])
        ids.append(pod)
        seen.update(pod_ips(d, pod))
        if i == 0:  # the pods' own chains are told apart from other runs' by name
            assert dnat_chain(cni.name, pod) in dnat_chains()
        if i % 2:
            d.rt.StopPodSandbox(pod_sandbox_id=pod)
        d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert len(seen) >= 2  # host-local hands out new addresses, then reuses
    assert_clean(d, cni, ids)
    assert dnat_chains() & {dnat_chain(cni.name, p) for p in ids} == set()


def test_parallel_pods_get_distinct_addresses(daemon_factory, cni):
    d = net_daemon(daemon_factory, cni)
    futs = [d.rt.RunPodSandbox.future(config=pod_config()) for _ in range(8)]
    pods = [f.result().pod_sandbox_id for f in futs]
    ips = [pod_ips(d, p)[0] for p in pods]
    assert len(set(ips)) == 8 and cni.leases() == sorted(ips)
    assert len(cni.veths()) == 8
    futs = [d.rt.RemovePodSandbox.future(pod_sandbox_id=p) for p in pods]
    for f in futs:
        f.result()
    assert_clean(d, cni, pods)


def test_dual_stack_reports_both_addresses(daemon_factory, cni):
    # No gateway: the host's forwarding settings stay as they are.
    conf = cni.conflist(ipam={"type": "host-local", "dataDir": cni.data_dir,
                              "ranges": [[{"subnet": cni.subnet}],
                                         [{"subnet": f"fd44:244:{cni.x}::/64"}]]})
    conf["plugins"][0]["isGateway"] = False
    cni.write(conf)
    d = net_daemon(daemon_factory, cni, write=False)
    pod, _ = run_pod(d)
    net = d.rt.PodSandboxStatus(pod_sandbox_id=pod).status.network
    assert net.ip.startswith(f"10.244.{cni.x}.")
    assert [a.ip for a in net.additional_ips][0].startswith(f"fd44:244:{cni.x}::")
    assert len(cni.leases()) == 2
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [pod])


def test_bandwidth_annotations_shape_traffic(daemon_factory, cni):
    if not os.access(os.path.join(CNI_BIN, "bandwidth"), os.X_OK):
        pytest.skip("no bandwidth plugin")
    cni.write(cni.conflist(extra_plugins=[{"type": "bandwidth",
                                           "capabilities": {"bandwidth": True}}]))
    d = net_daemon(daemon_factory, cni, write=False)
    pod, _ = run_pod(d, annotations={"kubernetes.io/ingress-bandwidth": "10M",
                                     "kubernetes.io/egress-bandwidth": "20M"})
    veth = cni.veths()[0]
    qdisc = sh("tc", "qdisc", "show", "dev", veth).stdout
    assert "tbf" in qdisc and "10Mbit" in qdisc, qdisc
    ifbs = [ln for ln in sh("ip", "-o", "link").stdout.splitlines() if ": bwp" in ln]
    assert len(ifbs) == 1, ifbs
    ifb = ifbs[0].split(":")[1].strip()
    assert "20Mbit" in sh("tc", "qdisc", "show", "dev", ifb).stdout
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert not [ln for ln in sh("ip", "-o", "link").stdout.splitlines() if ": bwp" in ln]
    assert_clean(d, cni, [pod])


def test_restart_checks_running_pods(daemon_factory, cni):
    d = net_daemon(daemon_factory, cni)
    healthy, _ = run_pod(d)
    hurt, _ = run_pod(d)
    sh("nsenter", f"--net={netns_pin(d, hurt)}", "ip", "link", "del", "eth0")
    d.kill()
    d.start()
    logs = d.logs()
    assert f"pod network check failed pod={hurt}" in logs
    assert f"pod network check failed pod={healthy}" not in logs
    for pod in (healthy, hurt):
        d.rt.StopPodSandbox(pod_sandbox_id=pod)
        d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [healthy, hurt])


def test_restart_check_quiet_for_absent_ip_families(daemon_factory, cni):
    """The README's example network (bridge, host-local IPv4, portmap) and
    a pod with a hostPort: portmap's CHECK also looks for the pod's DNAT
    chain in ip6tables, where an IPv4-only pod has none. That is no fault
    of the pod's network and must not be reported at restart."""
    with open(os.path.join(REPO, "deploy", "cni", "10-husk-bridge.conflist")) as f:
        conf = json.load(f)
    conf["name"] = cni.name
    bridge = conf["plugins"][0]
    bridge.update(bridge=cni.bridge, ipMasq=False)
    bridge["ipam"].update(ranges=[[{"subnet": cni.subnet}]], dataDir=cni.data_dir)
    cni.write(conf)
    d = net_daemon(daemon_factory, cni, write=False)
    pod, _ = run_pod(d, port_mappings=[{"protocol": pb.TCP, "container_port": 80,
                                        "host_port": free_port(), "host_ip": "127.0.0.1"}])
    assert all(":" not in ip for ip in pod_ips(d, pod))
    d.kill()
    d.start()
    logs = d.logs()
    assert "pod network check" not in logs and "CHECK failed" not in logs, logs[-3000:]
    # A real fault of the pod's own family is still reported.
    jumps = [ln.split()[-1] for ln in sh("iptables-save", "-t", "nat").stdout.splitlines()
             if pod in ln and " -j CNI-DN-" in ln]
    assert jumps, "portmap made a DNAT chain for the pod"
    sh("iptables", "-t", "nat", "-F", jumps[0])
    d.kill()
    d.start()
    assert f"pod network check failed pod={pod}" in d.logs()
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    assert_clean(d, cni, [pod])


def test_no_cni_config_refuses_pods_unless_allowed(daemon_factory, tmp_path):
    """With no network config at all, a pod that needs a network is refused
    (as containerd does) unless require_pod_network is false; a host-network
    pod runs either way."""
    d = daemon_factory({"cni_conf_dir": str(tmp_path / "none"), "require_pod_network": True})
    cfg = {"metadata": {"name": "p", "uid": "u", "namespace": "n"}}
    with pytest.raises(grpc.RpcError) as e:
        d.rt.RunPodSandbox(config=cfg)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no CNI network config" in e.value.details() and str(tmp_path / "none") in e.value.details()
    assert not d.rt.ListPodSandbox().items
    assert not os.listdir(os.path.join(d.state, "pods")) if os.path.exists(
        os.path.join(d.state, "pods")) else True
    host = dict(cfg, linux={"security_context": {"namespace_options": {"network": pb.NODE}}})
    pod = d.rt.RunPodSandbox(config=host).pod_sandbox_id
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
