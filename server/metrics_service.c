/* ListMetricDescriptors, ListPodSandboxMetrics (StreamPodSandboxMetrics is
 * in list_streams.c): cAdvisor's container_* metrics for each ready pod
 * and its running containers, from the runtime's cgroup, /proc and
 * network figures and the image store's writable-layer usage. */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "image/image.h"
#include "runtime/runtime.h"
#include "server/handlers.h"

enum { COUNTER = RUNTIME__V1__METRIC_TYPE__COUNTER, GAUGE = RUNTIME__V1__METRIC_TYPE__GAUGE };

/* One row per metric; the enum below indexes it. Label keys are id, name
 * and image (as CRI-O reports them), then extra when set. */
static const struct desc {
	const char *name, *help;
	int type;
	const char *extra; /* extra label key, or NULL */
} descs[] = {
#define D(n, h, t, x)      \
	{                  \
		n, h, t, x \
	}
    D("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", COUNTER,
      "cpu"),
    D("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", COUNTER,
      NULL),
    D("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.",
      COUNTER, NULL),
    D("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", COUNTER,
      NULL),
    D("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", COUNTER,
      NULL),
    D("container_cpu_cfs_throttled_seconds_total",
      "Total time duration the container has been throttled.", COUNTER, NULL),
    D("container_memory_usage_bytes",
      "Current memory usage in bytes, including all memory regardless of when it was accessed.",
      GAUGE, NULL),
    D("container_memory_working_set_bytes", "Current working set in bytes.", GAUGE, NULL),
    D("container_memory_rss", "Size of RSS in bytes.", GAUGE, NULL),
    D("container_memory_cache", "Number of bytes of page cache memory.", GAUGE, NULL),
    D("container_memory_swap", "Container swap usage in bytes.", GAUGE, NULL),
    D("container_memory_failcnt", "Number of memory usage hits limits.", COUNTER, NULL),
    D("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", GAUGE, NULL),
    D("container_oom_events_total", "Count of out of memory events observed for the container.",
      COUNTER, NULL),
    D("container_spec_memory_limit_bytes", "Memory limit for the container.", GAUGE, NULL),
    D("container_processes", "Number of processes running inside the container.", GAUGE, NULL),
    D("container_threads", "Number of threads running inside the container.", GAUGE, NULL),
    D("container_file_descriptors", "Number of open file descriptors for the container.", GAUGE,
      NULL),
    D("container_fs_usage_bytes",
      "Number of bytes that are consumed by the container on this filesystem.", GAUGE, "device"),
    D("container_fs_inodes_total", "Number of Inodes.", GAUGE, "device"),
    D("container_last_seen", "Last time a container was seen by the exporter.", GAUGE, NULL),
    D("container_start_time_seconds", "Start time of the container since unix epoch in seconds.",
      GAUGE, NULL),
    D("container_network_receive_bytes_total", "Cumulative count of bytes received.", COUNTER,
      "interface"),
    D("container_network_receive_packets_total", "Cumulative count of packets received.", COUNTER,
      "interface"),
    D("container_network_receive_errors_total",
      "Cumulative count of errors encountered while receiving.", COUNTER, "interface"),
    D("container_network_receive_packets_dropped_total",
      "Cumulative count of packets dropped while receiving.", COUNTER, "interface"),
    D("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", COUNTER,
      "interface"),
    D("container_network_transmit_packets_total", "Cumulative count of packets transmitted.",
      COUNTER, "interface"),
    D("container_network_transmit_errors_total",
      "Cumulative count of errors encountered while transmitting.", COUNTER, "interface"),
    D("container_network_transmit_packets_dropped_total",
      "Cumulative count of packets dropped while transmitting.", COUNTER, "interface"),
#undef D
};

enum {
	M_CPU_USAGE,
	M_CPU_USER,
	M_CPU_SYSTEM,
	M_CFS_PERIODS,
	M_CFS_THROTTLED_PERIODS,
	M_CFS_THROTTLED_SECONDS,
	M_MEM_USAGE,
	M_MEM_WORKING_SET,
	M_MEM_RSS,
	M_MEM_CACHE,
	M_MEM_SWAP,
	M_MEM_FAILCNT,
	M_MEM_MAX_USAGE,
	M_OOM_EVENTS,
	M_SPEC_MEM_LIMIT,
	M_PROCESSES,
	M_THREADS,
	M_FDS,
	M_FS_USAGE,
	M_FS_INODES_TOTAL,
	M_LAST_SEEN,
	M_START_TIME,
	M_NET_RX_BYTES,
	M_NET_RX_PACKETS,
	M_NET_RX_ERRORS,
	M_NET_RX_DROPPED,
	M_NET_TX_BYTES,
	M_NET_TX_PACKETS,
	M_NET_TX_ERRORS,
	M_NET_TX_DROPPED,
	M_COUNT
};
_Static_assert(ARRAY_SIZE(descs) == M_COUNT, "one row per metric");

int srv_list_metric_descriptors(struct srv_ctx *ctx _unused_, const void *in _unused_,
				void **ret_out, struct husk_error *err _unused_)
{
	Runtime__V1__ListMetricDescriptorsResponse *resp =
	    srv_new(Runtime__V1__ListMetricDescriptorsResponse,
		    RUNTIME__V1__LIST_METRIC_DESCRIPTORS_RESPONSE__INIT);
	for (size_t i = 0; i < M_COUNT; i++) {
		Runtime__V1__MetricDescriptor *d =
		    srv_new(Runtime__V1__MetricDescriptor, RUNTIME__V1__METRIC_DESCRIPTOR__INIT);
		d->name = xstrdup(descs[i].name);
		d->help = xstrdup(descs[i].help);
		d->n_label_keys = descs[i].extra ? 4 : 3;
		d->label_keys = xnew(char *, d->n_label_keys);
		d->label_keys[0] = xstrdup("id");
		d->label_keys[1] = xstrdup("name");
		d->label_keys[2] = xstrdup("image");
		if (descs[i].extra)
			d->label_keys[3] = xstrdup(descs[i].extra);
		srv_repeated_add(&resp->descriptors, &resp->n_descriptors, d);
	}
	*ret_out = resp;
	return 0;
}

/* The labels every metric of one container (or of the pod) carries. */
struct base {
	const char *id, *name, *image;
	int64_t ts;
};

static void add(Runtime__V1__Metric ***v, size_t *n, const struct base *b, int which,
		const char *extra, uint64_t value)
{
	Runtime__V1__Metric *m = srv_new(Runtime__V1__Metric, RUNTIME__V1__METRIC__INIT);
	m->name = xstrdup(descs[which].name);
	m->timestamp = b->ts;
	m->metric_type = descs[which].type;
	m->n_label_values = descs[which].extra ? 4 : 3;
	m->label_values = xnew(char *, m->n_label_values);
	m->label_values[0] = srv_strdup(b->id);
	m->label_values[1] = srv_strdup(b->name);
	m->label_values[2] = srv_strdup(b->image);
	if (descs[which].extra)
		m->label_values[3] = srv_strdup(extra);
	m->value = srv_new(Runtime__V1__UInt64Value, RUNTIME__V1__UINT64_VALUE__INIT);
	m->value->value = value;
	srv_repeated_add(v, n, m);
}

#define NS_PER_S 1000000000ULL

static Runtime__V1__ContainerMetrics *ctr_metrics(struct srv_ctx *ctx, const struct ctr_record *c)
{
	Runtime__V1__ContainerMetrics *cm =
	    srv_new(Runtime__V1__ContainerMetrics, RUNTIME__V1__CONTAINER_METRICS__INIT);
	cm->container_id = xstrdup(c->id);
	struct base b = {c->id, c->name, c->image, now_real_ns()};
	Runtime__V1__Metric ***v = &cm->metrics;
	size_t *n = &cm->n_metrics;
	/* CRI carries whole numbers: seconds are truncated, as CRI-O and
	 * containerd report them. */
	struct cg_stats s = {0};
	if (rt_ctr_stats(ctx->runtime, c->id, &s, NULL) == 0) {
		if (s.valid & CG_STAT_CPU) {
			add(v, n, &b, M_CPU_USAGE, "total", s.cpu_usage_ns / NS_PER_S);
			add(v, n, &b, M_CPU_USER, NULL, s.cpu_user_ns / NS_PER_S);
			add(v, n, &b, M_CPU_SYSTEM, NULL, s.cpu_system_ns / NS_PER_S);
		}
		if (s.valid & CG_STAT_CFS) {
			add(v, n, &b, M_CFS_PERIODS, NULL, s.cpu_periods);
			add(v, n, &b, M_CFS_THROTTLED_PERIODS, NULL, s.cpu_throttled_periods);
			add(v, n, &b, M_CFS_THROTTLED_SECONDS, NULL, s.cpu_throttled_ns / NS_PER_S);
		}
		if (s.valid & CG_STAT_MEMORY) {
			add(v, n, &b, M_MEM_USAGE, NULL, s.memory_usage);
			add(v, n, &b, M_MEM_WORKING_SET, NULL, s.memory_working_set);
			add(v, n, &b, M_MEM_RSS, NULL, s.memory_rss);
			add(v, n, &b, M_MEM_CACHE, NULL, s.memory_cache);
			if (s.valid & CG_STAT_SWAP)
				add(v, n, &b, M_MEM_SWAP, NULL, s.memory_swap);
			add(v, n, &b, M_MEM_FAILCNT, NULL, s.memory_failcnt);
			add(v, n, &b, M_MEM_MAX_USAGE, NULL, s.memory_max_usage);
			add(v, n, &b, M_SPEC_MEM_LIMIT, NULL, s.memory_limit);
		}
		if (s.valid & CG_STAT_OOM)
			add(v, n, &b, M_OOM_EVENTS, NULL, s.oom_kill_count);
	}
	struct rt_proc_stats p;
	if (rt_ctr_proc_stats(ctx->runtime, c->id, &p, NULL) == 0) {
		add(v, n, &b, M_PROCESSES, NULL, p.processes);
		add(v, n, &b, M_THREADS, NULL, p.threads);
		add(v, n, &b, M_FDS, NULL, p.fds);
	}
	struct img_fs_usage u = {0};
	if (ctx->image && img_rootfs_usage(ctx->image, c->id, &u, NULL) == 0) {
		add(v, n, &b, M_FS_USAGE, u.mountpoint, u.bytes);
		struct statvfs sv;
		if (statvfs(u.mountpoint, &sv) == 0)
			add(v, n, &b, M_FS_INODES_TOTAL, u.mountpoint, sv.f_files);
		img_fs_usage_clear(&u);
	}
	add(v, n, &b, M_LAST_SEEN, NULL, (uint64_t)b.ts / NS_PER_S);
	if (c->started_at > 0)
		add(v, n, &b, M_START_TIME, NULL, (uint64_t)c->started_at / NS_PER_S);
	return cm;
}

static Runtime__V1__PodSandboxMetrics *pod_metrics(struct srv_ctx *ctx, const struct pod_record *p)
{
	Runtime__V1__PodSandboxMetrics *pm =
	    srv_new(Runtime__V1__PodSandboxMetrics, RUNTIME__V1__POD_SANDBOX_METRICS__INIT);
	pm->pod_sandbox_id = xstrdup(p->id);
	/* Pod-level figures carry the pod's id and the name POD, as the
	 * kubelet's cAdvisor shows the sandbox. */
	struct base b = {p->id, "POD", "", now_real_ns()};
	struct rt_net_iface *ifs = NULL;
	size_t nifs = 0;
	if (rt_pod_net_stats(ctx->runtime, p->id, &ifs, &nifs, NULL) == 0) {
		for (size_t i = 0; i < nifs; i++) {
			const struct rt_net_iface *f = &ifs[i];
			Runtime__V1__Metric ***v = &pm->metrics;
			size_t *n = &pm->n_metrics;
			add(v, n, &b, M_NET_RX_BYTES, f->name, f->rx_bytes);
			add(v, n, &b, M_NET_RX_PACKETS, f->name, f->rx_packets);
			add(v, n, &b, M_NET_RX_ERRORS, f->name, f->rx_errors);
			add(v, n, &b, M_NET_RX_DROPPED, f->name, f->rx_dropped);
			add(v, n, &b, M_NET_TX_BYTES, f->name, f->tx_bytes);
			add(v, n, &b, M_NET_TX_PACKETS, f->name, f->tx_packets);
			add(v, n, &b, M_NET_TX_ERRORS, f->name, f->tx_errors);
			add(v, n, &b, M_NET_TX_DROPPED, f->name, f->tx_dropped);
		}
		rt_net_ifaces_free(ifs);
	}
	struct ctr_filter f = {.pod_id = p->id, .has_state = true, .state = CTR_STATE_RUNNING};
	const struct ctr_record **v = NULL;
	size_t n = 0;
	if (rt_ctr_list(ctx->runtime, &f, &v, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++)
			srv_repeated_add(&pm->container_metrics, &pm->n_container_metrics,
					 ctr_metrics(ctx, v[i]));
		ctr_records_release(v, n);
	}
	return pm;
}

int srv_list_pod_sandbox_metrics(struct srv_ctx *ctx, const void *in _unused_, void **ret_out,
				 struct husk_error *err)
{
	struct pod_filter f = {.has_state = true, .state = POD_STATE_READY};
	const struct pod_record **v = NULL;
	size_t n = 0;
	if (rt_pod_list(ctx->runtime, &f, &v, &n, err) < 0)
		return -err->code;
	Runtime__V1__ListPodSandboxMetricsResponse *resp =
	    srv_new(Runtime__V1__ListPodSandboxMetricsResponse,
		    RUNTIME__V1__LIST_POD_SANDBOX_METRICS_RESPONSE__INIT);
	for (size_t i = 0; i < n; i++)
		srv_repeated_add(&resp->pod_metrics, &resp->n_pod_metrics, pod_metrics(ctx, v[i]));
	pod_records_release(v, n);
	*ret_out = resp;
	return 0;
}
