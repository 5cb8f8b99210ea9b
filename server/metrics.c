/* huskd's /metrics content: CRI request counters (updated by the gRPC loop
 * with atomics), the image and CNI counters the libraries keep, pods,
 * containers, shims and stream sessions counted at scrape time, and the
 * process figures from /proc/self. */
#include "server/metrics.h"

#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/fs.h"
#include "image/image.h"
#include "network/network.h"
#include "runtime/runtime.h"
#include "server/stream.h"

#define SRV_CODES 17 /* gRPC status codes 0..16 */

struct srv_metrics {
	size_t n;		      /* srv_methods_count + 1; the last row is unknown paths */
	uint64_t (*calls)[SRV_CODES]; /* [n][code] */
	struct mx_histogram *latency; /* [n] */
	uint64_t in_flight;
};

struct srv_metrics *srv_metrics_new(void)
{
	struct srv_metrics *m = xnew(struct srv_metrics, 1);
	m->n = srv_methods_count + 1;
	m->calls = xcalloc(m->n, sizeof(*m->calls));
	m->latency = xnew(struct mx_histogram, m->n);
	for (size_t i = 0; i < m->n; i++)
		m->latency[i].b = &mx_buckets_default;
	return m;
}

void srv_metrics_free(struct srv_metrics *m)
{
	if (!m)
		return;
	free(m->calls);
	free(m->latency);
	free(m);
}

void srv_metrics_call_begin(struct srv_metrics *m)
{
	if (m)
		mx_inc(&m->in_flight, 1);
}

void srv_metrics_call_end(struct srv_metrics *m, const struct srv_method *method,
			  enum srv_code code, long long duration_ns)
{
	if (!m)
		return;
	size_t row = method ? (size_t)(method - srv_methods) : m->n - 1;
	if (row >= m->n)
		row = m->n - 1;
	unsigned c = (unsigned)code < SRV_CODES ? (unsigned)code : SRV_UNKNOWN;
	mx_inc(&m->calls[row][c], 1);
	mx_hist_observe_ns(&m->latency[row], duration_ns);
	__atomic_fetch_sub(&m->in_flight, 1, __ATOMIC_RELAXED);
}

/* "/runtime.v1.RuntimeService/Version" -> service and method labels. */
static void split_path(const char *path, char *svc, size_t svc_len, const char **ret_method)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash && slash > path ? (size_t)(slash - path - 1) : 0;
	if (n >= svc_len)
		n = svc_len - 1;
	memcpy(svc, path + 1, n);
	svc[n] = '\0';
	*ret_method = slash ? slash + 1 : path;
}

static void render_requests(struct srv_metrics *m, struct mx_text *t)
{
	mx_family(t, "husk_cri_requests_total", "counter",
		  "CRI requests handled, by service, method and gRPC status code.");
	for (size_t i = 0; i < m->n; i++) {
		char svc[64] = "";
		const char *method = "unknown";
		if (i < srv_methods_count)
			split_path(srv_methods[i].path, svc, sizeof(svc), &method);
		for (unsigned c = 0; c < SRV_CODES; c++) {
			uint64_t v = mx_get(&m->calls[i][c]);
			if (!v)
				continue;
			const char *labels[] = {"service",	  svc, "method", method, "code",
						srv_code_name(c), NULL};
			mx_sample(t, "husk_cri_requests_total", labels, (double)v);
		}
	}
	mx_family(t, "husk_cri_request_duration_seconds", "histogram",
		  "Time from the start of a CRI request to its status, by method.");
	for (size_t i = 0; i < m->n; i++) {
		struct mx_histogram h;
		mx_hist_snapshot(&m->latency[i], &h);
		uint64_t total = 0;
		for (size_t b = 0; b <= MX_MAX_BUCKETS; b++)
			total += h.counts[b];
		if (!total)
			continue;
		char svc[64] = "";
		const char *method = "unknown";
		if (i < srv_methods_count)
			split_path(srv_methods[i].path, svc, sizeof(svc), &method);
		const char *labels[] = {"service", svc, "method", method, NULL};
		mx_histogram(t, "husk_cri_request_duration_seconds", labels, &h);
	}
	mx_family(t, "husk_cri_requests_in_flight", "gauge", "CRI requests being handled now.");
	mx_sample(t, "husk_cri_requests_in_flight", NULL, (double)mx_get(&m->in_flight));
}

static void render_images(struct img_store *s, struct mx_text *t)
{
	struct img_pull_stats st;
	img_pull_stats_get(s, &st);
	mx_family(t, "husk_image_pulls_total", "counter", "Image pulls finished, failed included.");
	mx_sample(t, "husk_image_pulls_total", NULL, (double)st.pulls);
	mx_family(t, "husk_image_pull_failures_total", "counter", "Image pulls that failed.");
	mx_sample(t, "husk_image_pull_failures_total", NULL, (double)st.failures);
	mx_family(t, "husk_image_pull_bytes_total", "counter",
		  "Bytes of layers and configs received from registries.");
	mx_sample(t, "husk_image_pull_bytes_total", NULL, (double)st.bytes);
	mx_family(t, "husk_image_pull_duration_seconds", "histogram",
		  "Duration of image pulls, failed included.");
	mx_histogram(t, "husk_image_pull_duration_seconds", NULL, &st.duration);
}

static void render_cni(struct net_cni *n, struct mx_text *t)
{
	struct net_cni_stats st;
	net_cni_stats_get(n, &st);
	mx_family(t, "husk_cni_plugin_duration_seconds", "histogram",
		  "Duration of CNI plugin calls, by operation.");
	for (int op = 0; op < NET_OP_COUNT; op++) {
		const char *labels[] = {"operation", net_op_name(op), NULL};
		mx_histogram(t, "husk_cni_plugin_duration_seconds", labels, &st.duration[op]);
	}
	mx_family(t, "husk_cni_plugin_failures_total", "counter",
		  "CNI plugin calls that failed, by operation.");
	for (int op = 0; op < NET_OP_COUNT; op++) {
		const char *labels[] = {"operation", net_op_name(op), NULL};
		mx_sample(t, "husk_cni_plugin_failures_total", labels, (double)st.failures[op]);
	}
}

static void render_objects(struct rt *rt, struct mx_text *t)
{
	unsigned pods[2] = {0}, ctrs[4] = {0};
	const struct pod_record **pv = NULL;
	size_t pn = 0;
	if (rt_pod_list(rt, NULL, &pv, &pn, NULL) == 0) {
		for (size_t i = 0; i < pn; i++)
			if ((unsigned)pv[i]->state < ARRAY_SIZE(pods))
				pods[pv[i]->state]++;
		pod_records_release(pv, pn);
	}
	const struct ctr_record **cv = NULL;
	size_t cn = 0;
	if (rt_ctr_list(rt, NULL, &cv, &cn, NULL) == 0) {
		for (size_t i = 0; i < cn; i++)
			if ((unsigned)cv[i]->state < ARRAY_SIZE(ctrs))
				ctrs[cv[i]->state]++;
		ctr_records_release(cv, cn);
	}
	mx_family(t, "husk_pods", "gauge", "Pod sandboxes by state.");
	for (unsigned s = 0; s < ARRAY_SIZE(pods); s++) {
		const char *labels[] = {"state", pod_state_name(s), NULL};
		mx_sample(t, "husk_pods", labels, pods[s]);
	}
	mx_family(t, "husk_containers", "gauge", "Containers by state.");
	for (unsigned s = 0; s < ARRAY_SIZE(ctrs); s++) {
		const char *labels[] = {"state", ctr_state_name(s), NULL};
		mx_sample(t, "husk_containers", labels, ctrs[s]);
	}
	mx_family(t, "husk_shims_running", "gauge", "husk-shim processes alive.");
	mx_sample(t, "husk_shims_running", NULL, rt_shims_running(rt));
}

/* Fields of /proc/self/stat after the command name: utime 14, stime 15,
 * num_threads 20, starttime 22, vsize 23, rss 24 (1-based). */
static void render_process(struct mx_text *t)
{
	_cleanup_free_ char *stat = NULL;
	if (fs_read_file("/proc/self/stat", 4096, &stat, NULL, NULL) < 0)
		return;
	const char *p = strrchr(stat, ')');
	if (!p)
		return;
	unsigned long long f[25] = {0};
	int field = 3; /* p + 2 starts field 3, the state letter */
	p += 2;
	while (*p && field <= 24) {
		if (field > 3)
			f[field] = strtoull(p, NULL, 10);
		p = strchr(p, ' ');
		if (!p)
			break;
		p++;
		field++;
	}
	double tick = (double)sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	unsigned long long btime = 0;
	_cleanup_free_ char *pstat = NULL;
	if (fs_read_file("/proc/stat", 1 << 20, &pstat, NULL, NULL) == 0) {
		const char *b = strstr(pstat, "\nbtime ");
		if (b)
			btime = strtoull(b + 7, NULL, 10);
	}
	unsigned fds = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				fds++;
		closedir(d);
		fds--; /* the directory's own fd */
	}
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);

	mx_family(t, "process_cpu_seconds_total", "counter", "User and system CPU time of huskd.");
	mx_sample(t, "process_cpu_seconds_total", NULL, (double)(f[14] + f[15]) / tick);
	mx_family(t, "process_resident_memory_bytes", "gauge", "Resident memory of huskd.");
	mx_sample(t, "process_resident_memory_bytes", NULL, (double)f[24] * (double)page);
	mx_family(t, "process_virtual_memory_bytes", "gauge", "Virtual memory of huskd.");
	mx_sample(t, "process_virtual_memory_bytes", NULL, (double)f[23]);
	mx_family(t, "process_open_fds", "gauge", "Open file descriptors of huskd.");
	mx_sample(t, "process_open_fds", NULL, fds);
	mx_family(t, "process_max_fds", "gauge", "huskd's limit of open file descriptors.");
	mx_sample(t, "process_max_fds", NULL, (double)rl.rlim_cur);
	mx_family(t, "process_threads", "gauge", "Threads of huskd.");
	mx_sample(t, "process_threads", NULL, (double)f[20]);
	mx_family(t, "process_start_time_seconds", "gauge",
		  "Start time of huskd since the epoch, in seconds.");
	mx_sample(t, "process_start_time_seconds", NULL, (double)btime + (double)f[22] / tick);
}

void srv_metrics_render(struct srv_ctx *ctx, struct mx_text *out)
{
	if (ctx->metrics)
		render_requests(ctx->metrics, out);
	if (ctx->image)
		render_images(ctx->image, out);
	if (ctx->network)
		render_cni(ctx->network, out);
	if (ctx->runtime)
		render_objects(ctx->runtime, out);
	if (ctx->streamer) {
		mx_family(out, "husk_stream_sessions_open", "gauge",
			  "Exec, attach and port-forward sessions open.");
		mx_sample(out, "husk_stream_sessions_open", NULL,
			  srv_streamer_sessions(ctx->streamer));
	}
	render_process(out);
}
