/* What the metrics and stats need beyond the cgroup files: the processes,
 * threads and open fds of a container's cgroup, and the interface counters
 * of a pod's network namespace, read from /proc/PID/net/dev of a process
 * inside it (no setns, no fork). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/proc.h"
#include "runtime/runtime-internal.h"
#include "runtime/runtime.h"

/* One object's last CPU sample, in rt->rates. */
struct rt_rate {
	struct hindex_node node;
	char id[80];
	uint64_t usage_ns;   /* cumulative CPU at the sample */
	long long mono_ns;   /* when it was taken */
	uint64_t nano_cores; /* the rate computed at that sample */
	bool has_rate;
	long long used_ns; /* last asked for; idle entries are dropped */
};

#define RATE_MIN_INTERVAL_NS 100000000LL /* closer samples reuse the last rate */
#define RATE_IDLE_NS (600 * 1000000000LL)

/* Samples nobody asked for in RATE_IDLE_NS go (their objects are gone), a
 * walk of all now and then: a stats list asks for every object, and a walk
 * per object made it O(n^2) (issue 12). Under rate_lock. */
static void rates_sweep(struct rt *rt, long long now)
{
	if (now - rt->rates_swept_ns < RATE_IDLE_NS / 8)
		return;
	rt->rates_swept_ns = now;
	for (struct hindex_node *n = hindex_first(&rt->rates), *next; n; n = next) {
		next = hindex_next(&rt->rates, n);
		struct rt_rate *e = hindex_entry(n, struct rt_rate, node);
		if (now - e->used_ns > RATE_IDLE_NS) {
			hindex_remove(&rt->rates, n);
			free(e);
		}
	}
}

void rt_rates_free(struct rt *rt)
{
	for (struct hindex_node *n = hindex_first(&rt->rates), *next; n; n = next) {
		next = hindex_next(&rt->rates, n);
		hindex_remove(&rt->rates, n);
		free(hindex_entry(n, struct rt_rate, node));
	}
	hindex_clear(&rt->rates);
}

bool rt_cpu_nano_cores(struct rt *rt, const char *id, uint64_t usage_ns, uint64_t *ret)
{
	long long now = now_mono_ns();
	bool have = false;
	uint64_t h = hindex_hash(id);
	pthread_mutex_lock(&rt->rate_lock);
	rates_sweep(rt, now);
	struct rt_rate *e = NULL;
	for (struct hindex_node *n = hindex_find(&rt->rates, h); n && !e; n = hindex_find_next(n))
		if (streq(hindex_entry(n, struct rt_rate, node)->id, id))
			e = hindex_entry(n, struct rt_rate, node);
	if (!e) {
		if (strlen(id) < sizeof(e->id)) {
			e = xnew(struct rt_rate, 1);
			e->usage_ns = usage_ns;
			e->mono_ns = now;
			e->used_ns = now;
			snprintf(e->id, sizeof(e->id), "%s", id);
			hindex_add(&rt->rates, &e->node, h);
		}
	} else if (now - e->used_ns > RATE_IDLE_NS) {
		/* Idle that long: its sample is no base for a rate. */
		e->usage_ns = usage_ns;
		e->mono_ns = now;
		e->used_ns = now;
		e->has_rate = false;
	} else {
		e->used_ns = now;
		if (now - e->mono_ns >= RATE_MIN_INTERVAL_NS) {
			/* A counter that went back (a restarted cgroup) starts over. */
			if (usage_ns >= e->usage_ns) {
				e->nano_cores = (uint64_t)((double)(usage_ns - e->usage_ns) * 1e9 /
							   (double)(now - e->mono_ns));
				e->has_rate = true;
			} else {
				e->has_rate = false;
			}
			e->usage_ns = usage_ns;
			e->mono_ns = now;
		}
		if (e->has_rate) {
			*ret = e->nano_cores;
			have = true;
		}
	}
	pthread_mutex_unlock(&rt->rate_lock);
	return have;
}

void rt_net_ifaces_free(struct rt_net_iface *v)
{
	free(v);
}

/* Lines after the two headers: "  eth0: rx_bytes rx_packets rx_errs rx_drop
 * fifo frame compressed multicast tx_bytes tx_packets tx_errs tx_drop ...". */
int rt_net_dev_parse(const char *text, struct rt_net_iface **ret, size_t *ret_n,
		     struct husk_error *err)
{
	struct rt_net_iface *v = NULL;
	size_t n = 0;
	const char *line = text;
	for (int lineno = 1; line && *line; lineno++) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (lineno > 2 && len > 0) {
			_cleanup_free_ char *copy = xstrndup(line, len);
			char *colon = strchr(copy, ':');
			if (!colon) {
				free(v);
				return husk_error_set(err, EIO, "net/dev line %d: no ':'", lineno);
			}
			*colon = '\0';
			char *name = copy + strspn(copy, " ");
			unsigned long long f[16];
			int got =
			    sscanf(colon + 1,
				   "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu "
				   "%llu %llu %llu %llu %llu",
				   &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8],
				   &f[9], &f[10], &f[11], &f[12], &f[13], &f[14], &f[15]);
			if (got != 16 || strlen(name) >= sizeof(v->name) || !*name) {
				free(v);
				return husk_error_set(err, EIO, "net/dev line %d: malformed",
						      lineno);
			}
			if (!streq(name, "lo")) {
				if (n >= RT_NET_IFACES_MAX) {
					free(v);
					return husk_error_set(err, E2BIG,
							      "net/dev: more than %d interfaces",
							      RT_NET_IFACES_MAX);
				}
				v = xrealloc(v, (n + 1) * sizeof(*v));
				struct rt_net_iface *i = &v[n++];
				memset(i, 0, sizeof(*i));
				snprintf(i->name, sizeof(i->name), "%s", name);
				i->rx_bytes = f[0];
				i->rx_packets = f[1];
				i->rx_errors = f[2];
				i->rx_dropped = f[3];
				i->tx_bytes = f[8];
				i->tx_packets = f[9];
				i->tx_errors = f[10];
				i->tx_dropped = f[11];
			}
		}
		line = end ? end + 1 : NULL;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Read net/dev through /proc/pid when that process is still the one that
 * started at start_time and sits in the namespace whose inode is ns_ino. The
 * directory fd pins the process, so a reused pid cannot slip in between
 * the checks and the read. 1 done, 0 not usable, < 0 error. */
static int read_through(pid_t pid, unsigned long long start_time, const struct stat *ns,
			struct rt_net_iface **ret, size_t *ret_n, struct husk_error *err)
{
	if (pid <= 0)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	_cleanup_close_ int dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return 0;
	struct stat st;
	if (fstatat(dir, "ns/net", &st, 0) < 0 || st.st_ino != ns->st_ino ||
	    st.st_dev != ns->st_dev)
		return 0;
	if (!proc_alive(pid, start_time))
		return 0;
	_cleanup_close_ int fd = openat(dir, "net/dev", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	_cleanup_free_ char *text = NULL;
	size_t cap = 0, len = 0;
	for (;;) {
		if (len + 4096 + 1 > cap) {
			if (cap >= RT_NET_DEV_MAX)
				return husk_error_set(err, EFBIG,
						      "%s/net/dev: larger than %d bytes", path,
						      RT_NET_DEV_MAX);
			cap = cap ? cap * 2 : 8192;
			text = xrealloc(text, cap);
		}
		ssize_t r = read(fd, text + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return 0; /* the process went away */
		if (r == 0)
			break;
		len += (size_t)r;
	}
	text[len] = '\0';
	if (rt_net_dev_parse(text, ret, ret_n, err) < 0)
		return husk_error_prefix(err, "%s", path);
	return 1;
}

int rt_pod_net_stats(struct rt *rt, const char *ref, struct rt_net_iface **ret, size_t *ret_n,
		     struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, ref, &pod, err) < 0)
		return -err->code;
	*ret = NULL;
	*ret_n = 0;
	if (pod->sandbox.net != POD_NS_POD || !pod->sandbox.net_ns)
		return 0; /* the host's network is not the pod's to report */
	struct stat ns;
	if (stat(pod->sandbox.net_ns, &ns) < 0)
		return 0; /* the pin is gone: the pod is stopped */
	int r =
	    read_through(pod->sandbox.init_pid, pod->sandbox.init_start_time, &ns, ret, ret_n, err);
	if (r != 0)
		return r < 0 ? r : 0;
	struct ctr_filter f = {.pod_id = pod->id, .has_state = true, .state = CTR_STATE_RUNNING};
	struct ctr_record **v = NULL;
	size_t n = 0;
	if (state_ctr_list(rt->store, &f, &v, &n, err) < 0)
		return -err->code;
	for (size_t i = 0; i < n && r == 0; i++)
		r = read_through(v[i]->pid, v[i]->pid_start_time, &ns, ret, ret_n, err);
	ctr_records_free(v, n);
	return r < 0 ? r : 0;
}

/* Threads (field 20 of /proc/PID/stat) and open fds of one process; false
 * when it is gone. */
static bool proc_counts(pid_t pid, uint64_t *threads, uint64_t *fds)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_free_ char *stat = NULL;
	if (fs_read_file(path, 4096, &stat, NULL, NULL) < 0)
		return false;
	const char *p = strrchr(stat, ')');
	if (!p)
		return false;
	/* p + 2 is field 3; skip to field 20 */
	p += 2;
	for (int field = 3; field < 20 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	if (!p)
		return false;
	*threads += strtoull(p, NULL, 10);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (e->d_name[0] != '.')
				(*fds)++;
		closedir(d);
	}
	return true;
}

static int group_procs(struct cg_group *cg, struct rt_proc_stats *ret, struct husk_error *err)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if (cg_group_pids_first(cg, &pids, &n, err) < 0)
		return -err->code;
	struct rt_proc_stats s = {0};
	for (size_t i = 0; i < n; i++)
		if (proc_counts(pids[i], &s.threads, &s.fds))
			s.processes++;
	*ret = s;
	return 0;
}

int rt_ctr_proc_stats(struct rt *rt, const char *ref, struct rt_proc_stats *ret,
		      struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_ctr_cgroup(rt, ref, err);
	return cg ? group_procs(cg, ret, err) : -err->code;
}

int rt_pod_proc_stats(struct rt *rt, const char *ref, struct rt_proc_stats *ret,
		      struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_pod_cgroup(rt, ref, err);
	return cg ? group_procs(cg, ret, err) : -err->code;
}
