"""The CRI metrics methods (ListMetricDescriptors, ListPodSandboxMetrics,
StreamPodSandboxMetrics) with cAdvisor's names, checked against the cgroup
files, /proc and known workloads: memory held by a container, CPU burnt
for a known time, and traffic of a known size between two pods."""
import os
import time

import pytest

from conftest import pb
from pods import busybox, pid_of, run_ctr, run_pod  # noqa: F401
from registry import registries  # noqa: F401
from test_network import busybox_in, cni, exec_ok, net_daemon, pod_ips  # noqa: F401
from test_network import run_pod as run_net_pod
from test_network import start_ctr
from test_resources import cg_path, read, v1_only

TICK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20

NEEDED = {
    "container_cpu_usage_seconds_total", "container_cpu_user_seconds_total",
    "container_cpu_system_seconds_total", "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total", "container_cpu_cfs_throttled_seconds_total",
    "container_memory_usage_bytes", "container_memory_working_set_bytes",
    "container_memory_rss", "container_memory_cache", "container_memory_swap",
    "container_memory_failcnt", "container_memory_max_usage_bytes",
    "container_oom_events_total", "container_spec_memory_limit_bytes", "container_processes",
    "container_threads", "container_file_descriptors", "container_fs_usage_bytes",
    "container_fs_inodes_total", "container_network_receive_bytes_total",
    "container_network_transmit_bytes_total", "container_network_receive_packets_total",
    "container_network_transmit_packets_total", "container_network_receive_errors_total",
    "container_network_transmit_errors_total",
    "container_network_receive_packets_dropped_total",
    "container_network_transmit_packets_dropped_total", "container_last_seen",
    "container_start_time_seconds",
}


def descriptors(d):
    return {m.name: m for m in d.rt.ListMetricDescriptors().descriptors}


def pod_metrics(d, pod):
    found = [p for p in d.rt.ListPodSandboxMetrics().pod_metrics if p.pod_sandbox_id == pod]
    assert len(found) == 1
    return found[0]


def values(metrics, descs):
    """{(name, extra label value or None): metric} with label checks."""
    out = {}
    for m in metrics:
        keys = list(descs[m.name].label_keys)
        assert len(m.label_values) == len(keys), (m.name, m.label_values, keys)
        extra = m.label_values[3] if len(keys) > 3 else None
        out[(m.name, extra)] = m
    return out


def ctr_values(d, pod, cid):
    descs = descriptors(d)
    pm = pod_metrics(d, pod)
    cm = [c for c in pm.container_metrics if c.container_id == cid]
    assert len(cm) == 1
    return values(cm[0].metrics, descs)


def test_descriptors_have_cadvisor_names_types_and_labels(daemon):
    descs = descriptors(daemon)
    assert NEEDED <= set(descs), NEEDED - set(descs)
    for name, dsc in descs.items():
        assert dsc.help
        assert list(dsc.label_keys[:3]) == ["id", "name", "image"]
    assert list(descs["container_cpu_usage_seconds_total"].label_keys) == \
        ["id", "name", "image", "cpu"]
    assert list(descs["container_network_receive_bytes_total"].label_keys)[3] == "interface"
    assert list(descs["container_fs_usage_bytes"].label_keys)[3] == "device"
    # nothing to report without pods, and the stream agrees with the list
    assert list(daemon.rt.ListPodSandboxMetrics().pod_metrics) == []
    assert [m for r in daemon.rt.StreamPodSandboxMetrics() for m in r.pod_sandbox_metrics] == []


def test_memory_against_cgroup_and_known_allocation(daemon, busybox, tmp_path):  # noqa: F811
    v1_only()
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    # 64 MiB on the pod's /dev/shm tmpfs (page cache that cannot be
    # reclaimed while the file exists), and a dd holding a 48 MiB buffer it
    # filled from /dev/zero (anonymous memory) while it waits to write it
    # into a pipe nobody reads.
    cid = run_ctr(d, pod, cfg, busybox,
                  ["sh", "-c", "dd if=/dev/zero of=/big bs=1M count=3 2>/dev/null; "
                               "dd if=/dev/zero of=/dev/shm/hold bs=1M count=64 2>/dev/null; "
                               "dd if=/dev/zero bs=48M count=1 2>/dev/null | sleep 1000"],
                  linux={"resources": {"memory_limit_in_bytes": 512 * MIB}})
    pid = pid_of(d, cid)
    mem = cg_path(pid, "memory")
    deadline = time.time() + 60
    while True:
        stat = dict(line.split() for line in read(f"{mem}/memory.stat").splitlines())
        if int(stat["total_rss"]) >= 48 * MIB and int(stat["total_shmem"]) >= 64 * MIB:
            break
        assert time.time() < deadline, f"workload never got there: {stat}"
        time.sleep(0.2)
    v = ctr_values(d, pod, cid)
    stat = dict(line.split() for line in read(f"{mem}/memory.stat").splitlines())
    val = lambda name, extra=None: v[(name, extra)].value.value  # noqa: E731
    # the cgroup's own numbers, within what a sleeping shell can change
    usage = int(read(f"{mem}/memory.usage_in_bytes"))
    assert abs(val("container_memory_usage_bytes") - usage) < 2 * MIB
    assert abs(val("container_memory_cache") - int(stat["total_cache"])) < 2 * MIB
    assert abs(val("container_memory_rss") - int(stat["total_rss"])) < 2 * MIB
    ws = usage - int(stat["total_inactive_file"])
    assert abs(val("container_memory_working_set_bytes") - ws) < 2 * MIB
    assert val("container_spec_memory_limit_bytes") == 512 * MIB
    assert val("container_memory_max_usage_bytes") >= val("container_memory_usage_bytes")
    assert val("container_memory_failcnt") == int(read(f"{mem}/memory.failcnt"))
    assert val("container_oom_events_total") == 0
    # the known workload
    assert val("container_memory_cache") >= 64 * MIB
    assert val("container_memory_rss") >= 48 * MIB
    assert val("container_memory_working_set_bytes") >= 64 * MIB + 48 * MIB
    # processes: the shell, dd and sleep
    procs = [int(p) for p in read(f"{mem}/cgroup.procs").split()]
    assert val("container_processes") == len(procs) == 3
    assert val("container_threads") == 3
    assert val("container_file_descriptors") == sum(len(os.listdir(f"/proc/{p}/fd"))
                                                    for p in procs)
    # types and the timestamp
    assert v[("container_memory_usage_bytes", None)].metric_type == pb.GAUGE
    assert v[("container_cpu_usage_seconds_total", "total")].metric_type == pb.COUNTER
    assert abs(v[("container_memory_usage_bytes", None)].timestamp / 1e9 - time.time()) < 60
    st = d.rt.ContainerStatus(container_id=cid).status
    assert val("container_start_time_seconds") == st.started_at // 10**9
    labels = v[("container_memory_usage_bytes", None)].label_values
    assert list(labels) == [cid, st.metadata.name, busybox]
    # the writable layer: the file of 3 MiB written in it shows up
    fs = [k for k in v if k[0] == "container_fs_usage_bytes"]
    assert len(fs) == 1 and fs[0][1].endswith("/upper")
    assert v[fs[0]].value.value >= 3 * MIB
    assert v[("container_fs_inodes_total", fs[0][1])].value.value == \
        os.statvfs(fs[0][1]).f_files


def test_cpu_burnt_for_a_known_time(daemon, busybox, tmp_path):  # noqa: F811
    v1_only()
    d = daemon
    pod, cfg = run_pod(d, tmp_path)
    # The shell spins until it has used 3 s of user CPU itself, then sleeps.
    cid = run_ctr(d, pod, cfg, busybox,
                  ["sh", "-c", "while :; do read -r s < /proc/$$/stat; set -- ${s##*) }; "
                               f"[ $(( ${{12}} )) -ge {3 * TICK} ] && break; done; "
                               "touch /tmp/done; exec sleep 1000"])
    pid = pid_of(d, cid)
    deadline = time.time() + 120
    while d.rt.ExecSync(container_id=cid, cmd=["test", "-e", "/tmp/done"]).exit_code != 0:
        assert time.time() < deadline, "the burner never finished"
        time.sleep(0.5)
    acct = cg_path(pid, "cpuacct")
    usage_ns = int(read(f"{acct}/cpuacct.usage"))
    user_ticks = int(read(f"{acct}/cpuacct.stat").split()[1])
    v = ctr_values(d, pod, cid)
    usage = v[("container_cpu_usage_seconds_total", "total")].value.value
    user = v[("container_cpu_user_seconds_total", None)].value.value
    # whole seconds, as CRI carries them; the container only sleeps now
    assert usage == usage_ns // 10**9 and usage >= 3
    assert user == user_ticks // TICK and user >= 3
    cpu = cg_path(pid, "cpu")
    cstat = dict(line.split() for line in read(f"{cpu}/cpu.stat").splitlines())
    assert v[("container_cpu_cfs_periods_total", None)].value.value == int(cstat["nr_periods"])
    assert v[("container_cpu_cfs_throttled_periods_total", None)].value.value == \
        int(cstat["nr_throttled"])


def net_by_iface(pm, descs):
    out = {}
    for (name, iface), m in values(pm.metrics, descs).items():
        assert list(m.label_values[:3]) == [pm.pod_sandbox_id, "POD", ""]
        out.setdefault(iface, {})[name] = m.value.value
    return out


def proc_net_dev(pid):
    with open(f"/proc/{pid}/net/dev") as f:
        rows = {}
        for line in f.readlines()[2:]:
            name, rest = line.split(":", 1)
            rows[name.strip()] = [int(x) for x in rest.split()]
        return rows


def test_traffic_between_two_pods(daemon_factory, cni, registries):  # noqa: F811
    d = net_daemon(daemon_factory, cni)
    image = busybox_in(d, registries)
    (pa, ca_cfg), (pb_, cb_cfg) = run_net_pod(d), run_net_pod(d)
    b_ip = pod_ips(d, pb_)[0]
    size = 3_000_000
    start_ctr(d, pb_, cb_cfg, image,
              ["sh", "-c", f"mkdir /www && head -c {size} /dev/zero > /www/f && "
                           "exec httpd -f -p 8080 -h /www"])
    ca = start_ctr(d, pa, ca_cfg, image, ["sleep", "1000"])
    descs = descriptors(d)
    before = net_by_iface(pod_metrics(d, pa), descs)
    assert set(before) == {"eth0"}  # lo is left out
    deadline = time.time() + 20
    while d.rt.ExecSync(container_id=ca, cmd=["wget", "-q", "-O/dev/null",
                                              f"http://{b_ip}:8080/f"],
                        timeout=20).exit_code != 0:
        assert time.time() < deadline
        time.sleep(0.2)
    after_a = net_by_iface(pod_metrics(d, pa), descs)["eth0"]
    after_b = net_by_iface(pod_metrics(d, pb_), descs)["eth0"]
    got = after_a["container_network_receive_bytes_total"] - \
        before["eth0"]["container_network_receive_bytes_total"]
    # the file plus TCP/IP and HTTP overhead (well under 10% at this size)
    assert size <= got < size * 1.1
    assert after_b["container_network_transmit_bytes_total"] >= size
    # (veth aggregates segments, so packets are fewer than size / MTU)
    assert after_a["container_network_receive_packets_total"] > \
        before["eth0"]["container_network_receive_packets_total"]
    # the kernel's own view of pod A's namespace agrees
    rows = proc_net_dev(pid_of(d, ca))["eth0"]
    assert after_a["container_network_receive_bytes_total"] <= rows[0]
    assert rows[0] - after_a["container_network_receive_bytes_total"] < 64 << 10
    assert after_a["container_network_transmit_packets_total"] <= rows[9]
    # PodSandboxStats reports the same interfaces
    net = d.rt.PodSandboxStats(pod_sandbox_id=pa).stats.linux.network
    assert net.default_interface.name == "eth0"
    assert [i.name for i in net.interfaces] == ["eth0"]
    rows = proc_net_dev(pid_of(d, ca))["eth0"]
    assert after_a["container_network_receive_bytes_total"] <= \
        net.default_interface.rx_bytes.value <= rows[0]
    # the stream carries the same pods
    streamed = {p.pod_sandbox_id for r in d.rt.StreamPodSandboxMetrics()
                for p in r.pod_sandbox_metrics}
    assert streamed == {pa, pb_}


def test_host_network_pod_reports_no_network(daemon, busybox, tmp_path):  # noqa: F811
    d = daemon
    pod, cfg = run_pod(d, tmp_path, linux={"security_context": {
        "namespace_options": {"network": pb.NODE}}})
    cid = run_ctr(d, pod, cfg, busybox, ["sleep", "1000"])
    pm = pod_metrics(d, pod)
    assert list(pm.metrics) == []
    assert not d.rt.PodSandboxStats(pod_sandbox_id=pod).stats.linux.HasField("network")
    assert [c.container_id for c in pm.container_metrics] == [cid]
    # a pod with its own namespace but no CNI reports its (down) interfaces
    # only: loopback is never listed
    pod2, cfg2 = run_pod(d, tmp_path)
    run_ctr(d, pod2, cfg2, busybox, ["sleep", "1000"])
    names = {m.label_values[3] for m in pod_metrics(d, pod2).metrics}
    assert "lo" not in names
    # stopped pods are not listed
    d.rt.StopPodSandbox(pod_sandbox_id=pod)
    assert pod not in {p.pod_sandbox_id for p in d.rt.ListPodSandboxMetrics().pod_metrics}
