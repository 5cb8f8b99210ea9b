"""huskd's Prometheus endpoint (metrics_address): the text format as
Debian's python3-prometheus-client parses it, CRI request counters, image
pulls, CNI plugin calls, pods and containers by state, shims, and huskd's
process figures against /proc."""
import os
import socket
import subprocess
import urllib.error
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import HUSKD
from pods import busybox, pod_config, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401
from test_network import cni, net_daemon  # noqa: F401

E = grpc.StatusCode


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(addr, path="/metrics"):
    with urllib.request.urlopen(f"http://{addr}{path}", timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


class Metrics:
    """One scrape, parsed: value(name, **labels) of a sample."""

    def __init__(self, addr):
        self.text = scrape(addr)
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}

    def value(self, sample, **labels):
        for f in self.families.values():
            for s in f.samples:
                if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0


@pytest.fixture
def mdaemon(daemon_factory):
    addr = f"127.0.0.1:{free_port()}"
    d = daemon_factory({"metrics_address": addr})
    d.metrics_addr = addr
    return d


def run_config(tmp_path, cfg):
    path = tmp_path / "husk.json"
    path.write_text(cfg)
    return subprocess.run([HUSKD, "--config", str(path), "--socket", str(tmp_path / "s.sock"),
                           "--root", str(tmp_path / "root"), "--state",
                           str(tmp_path / "state")], capture_output=True, text=True, timeout=60)


def test_off_by_default_and_bad_addresses_stop_huskd(tmp_path):
    (tmp_path / "empty.json").write_text("{}")
    out = subprocess.run([HUSKD, "--config", str(tmp_path / "empty.json"), "config"],
                         capture_output=True, text=True, check=True)
    assert '"metrics_address": ""' in out.stdout
    for bad in ("nope", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "host.example:80",
                "[::1:80", ":9337"):
        r = run_config(tmp_path, f'{{"metrics_address": "{bad}"}}')
        assert r.returncode != 0
        assert "metrics_address" in r.stderr and bad in r.stderr, r.stderr


def test_address_in_use_stops_huskd(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        r = run_config(tmp_path, '{"require_pod_network": false, "metrics_address": "%s"}'
                       % addr)
    assert r.returncode == 1
    assert f"metrics_address '{addr}': bind: Address already in use" in r.stderr, r.stderr


def test_requests_by_method_and_code(mdaemon):
    d = mdaemon
    before = Metrics(d.metrics_addr)
    ok0 = before.value("husk_cri_requests_total", method="Version", code="OK")
    nf0 = before.value("husk_cri_requests_total", method="ContainerStatus", code="NOT_FOUND")
    for _ in range(3):
        d.rt.Version(version="v1")
    with pytest.raises(grpc.RpcError) as e:
        d.rt.ContainerStatus(container_id="nope")
    assert e.value.code() == E.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        d.rt.CheckpointContainer(container_id="x")
    assert e.value.code() == E.UNIMPLEMENTED

    m = Metrics(d.metrics_addr)
    assert m.families["husk_cri_requests"].type == "counter"
    assert m.value("husk_cri_requests_total", service="runtime.v1.RuntimeService",
                   method="Version", code="OK") == ok0 + 3
    assert m.value("husk_cri_requests_total", method="ContainerStatus",
                   code="NOT_FOUND") == nf0 + 1
    assert m.value("husk_cri_requests_total", method="CheckpointContainer",
                   code="UNIMPLEMENTED") == 1
    h = m.families["husk_cri_request_duration_seconds"]
    assert h.type == "histogram"
    count = m.value("husk_cri_request_duration_seconds_count", method="Version")
    assert count == ok0 + 3
    assert m.value("husk_cri_request_duration_seconds_bucket", method="Version",
                   le="+Inf") == count
    assert m.value("husk_cri_request_duration_seconds_sum", method="Version") > 0
    # scraping is not a CRI call
    assert m.value("husk_cri_requests_in_flight") == 0


def test_process_metrics_match_proc(mdaemon):
    d = mdaemon
    pid = d.proc.pid
    m = Metrics(d.metrics_addr)
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        btime = next(int(line.split()[1]) for line in f if line.startswith("btime "))
    assert m.value("process_start_time_seconds") == pytest.approx(
        btime + int(fields[19]) / tick, abs=0.01)
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    assert 0.5 * rss < m.value("process_resident_memory_bytes") < 2 * rss
    # the scrape's own connection is open while huskd counts
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    assert fds <= m.value("process_open_fds") <= fds + 1
    with open(f"/proc/{pid}/status") as f:
        threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
    assert m.value("process_threads") >= threads - 8 and m.value("process_threads") > 2
    cpu = (int(fields[11]) + int(fields[12])) / tick
    assert cpu - 0.05 <= m.value("process_cpu_seconds_total") <= cpu + 0.05
    with open(f"/proc/{pid}/limits") as f:
        soft = next(line.split()[3] for line in f if line.startswith("Max open files"))
    assert m.value("process_max_fds") == float(soft)


def test_pods_containers_shims_and_pulls(mdaemon, registries, tmp_path):  # noqa: F811
    d = mdaemon
    ref = f"{registries.open.host}/test/busybox:latest"
    d.img.PullImage(image={"image": ref})
    with pytest.raises(grpc.RpcError):
        d.img.PullImage(image={"image": f"{registries.open.host}/test/missing:latest"})
    m = Metrics(d.metrics_addr)
    assert m.value("husk_image_pulls_total") == 2
    assert m.value("husk_image_pull_failures_total") == 1
    assert m.value("husk_image_pull_duration_seconds_count") == 2
    # every layer and the config came over the wire once
    size = d.img.ImageStatus(image={"image": ref}).image.size
    assert size > 0
    assert m.value("husk_image_pull_bytes_total") == size

    pod, cfg = run_pod(d, tmp_path)
    run_ctr(d, pod, cfg, ref, ["sleep", "1000"])
    run_ctr(d, pod, cfg, ref, ["sleep", "1000"], start=False)
    m = Metrics(d.metrics_addr)
    assert m.value("husk_pods", state="READY") == 1
    assert m.value("husk_containers", state="RUNNING") == 1
    assert m.value("husk_containers", state="CREATED") == 1
    assert m.value("husk_shims_running") == 1
    shims = [p for p in os.listdir("/proc") if p.isdigit() and _comm(p) == "husk-shim"]
    assert len(shims) >= 1

    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    m = Metrics(d.metrics_addr)
    assert m.value("husk_pods", state="NOTREADY") == 1
    assert m.value("husk_pods", state="READY") == 0
    assert m.value("husk_containers", state="EXITED") == 1
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    m = Metrics(d.metrics_addr)
    assert m.value("husk_pods", state="NOTREADY") == 0
    assert m.value("husk_shims_running") == 0


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def test_cni_plugin_calls(daemon_factory, cni):  # noqa: F811
    addr = f"127.0.0.1:{free_port()}"
    d = net_daemon(daemon_factory, cni, metrics_address=addr)
    pod, _ = d.rt.RunPodSandbox(config=pod_config()).pod_sandbox_id, None
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    d.rt.RemovePodSandbox(pod_sandbox_id=pod)
    m = Metrics(addr)
    plugins = len(cni.conflist()["plugins"])
    assert m.value("husk_cni_plugin_duration_seconds_count", operation="ADD") == plugins
    assert m.value("husk_cni_plugin_duration_seconds_count", operation="DEL") == plugins
    assert m.value("husk_cni_plugin_failures_total", operation="ADD") == 0

    cni.fake_plugin("husk-fail", 'cat >/dev/null\n[ "$CNI_COMMAND" = DEL ] && exit 0\n'
                    'echo \'{"cniVersion":"1.0.0","code":7,"msg":"no"}\'\nexit 1\n')
    cni.write(cni.conflist(extra_plugins=[{"type": "husk-fail"}]))
    with pytest.raises(grpc.RpcError):
        d.rt.RunPodSandbox(config=pod_config())
    m = Metrics(addr)
    assert m.value("husk_cni_plugin_failures_total", operation="ADD") == 1
    assert m.value("husk_cni_plugin_failures_total", operation="DEL") == 0


def test_http_edges(mdaemon):
    d = mdaemon
    for path, code in (("/", 404), ("/metricsx", 404), ("/metrics/", 404)):
        with pytest.raises(urllib.error.HTTPError) as e:
            scrape(d.metrics_addr, path)
        assert e.value.code == code
    req = urllib.request.Request(f"http://{d.metrics_addr}/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405
    host, port = d.metrics_addr.rsplit(":", 1)
    # garbage and an oversized head get 400; a client that stalls is cut off
    # and does not keep the next one out
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"\x00\x01garbage\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000)
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    stalled = socket.create_connection((host, int(port)))
    stalled.sendall(b"GET /met")
    assert "husk_cri_requests_in_flight" in scrape(d.metrics_addr, "/metrics?x=1")
    stalled.close()
    # the listener goes with huskd
    pid = d.proc.pid
    assert d.stop() == 0
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, int(port)))
    assert not os.path.exists(f"/proc/{pid}")


def test_stream_sessions_open(mdaemon, registries, tmp_path):  # noqa: F811
    import time

    from streamclient import SpdyClient, remotecommand_streams
    d = mdaemon
    ref = f"{registries.open.host}/test/busybox:latest"
    d.img.PullImage(image={"image": ref})
    pod, cfg = run_pod(d, tmp_path)
    cid = run_ctr(d, pod, cfg, ref, ["sleep", "1000"])
    assert Metrics(d.metrics_addr).value("husk_stream_sessions_open") == 0
    url = d.rt.Exec(container_id=cid, cmd=["sleep", "1000"], stdout=True, stderr=True).url
    c = SpdyClient(url)
    try:
        remotecommand_streams(c, False, True, True, False)
        assert Metrics(d.metrics_addr).value("husk_stream_sessions_open") == 1
    finally:
        c.close()
    deadline = time.time() + 20
    while Metrics(d.metrics_addr).value("husk_stream_sessions_open") != 0:
        assert time.time() < deadline, "the session never ended"
        time.sleep(0.1)
