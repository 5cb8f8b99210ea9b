/* cgroup v1: one hierarchy per controller mount. Resources go to the
 * controllers' own files (cpu.cfs_*, memory.limit_in_bytes and memsw, ...),
 * stats come from cpuacct and memory.stat, freezing from the freezer. */
#include "runtime/cgroup/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FREEZE_WAIT_MS 500

/* v1 reports "no limit" as the largest page-aligned value (9223372036854771712
 * with 4 KiB pages); anything that close to INT64_MAX means unlimited. */
static int64_t v1_limit(int64_t v)
{
	return v >= INT64_MAX - (1LL << 30) ? CG_MAX : v;
}

static char *v1_fmt(int64_t v)
{
	return v == CG_MAX ? xstrdup("-1") : xasprintf("%" PRId64, v);
}

/* Serialises the cpuset copies of concurrent creations: a level another
 * thread has just made may not have its cpus and mems yet. */
static pthread_mutex_t cpuset_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether the node's top cpuset balances every CPU (its
 * sched_load_balance is 1): then the scheduler has one domain whatever the
 * flag of any cpuset below says. */
static bool top_balances(const struct cg_hier *h)
{
	_cleanup_free_ char *v = NULL;
	return cg_read_line(h->mount, "cpuset.sched_load_balance", &v, NULL) == 0 && v &&
	       streq(v, "1");
}

static int v1_prepare_level(const struct cg_manager *m, const struct cg_hier *h, const char *dir,
			    bool created, bool leaf _unused_, struct husk_error *err)
{
	/* A new cpuset cgroup starts with no cpus and no mems and refuses
	 * tasks until it has both: copy them from the parent. Levels made by
	 * another creation are checked too: it may still be copying, and a
	 * child copied from an empty parent stays empty (ENOSPC at join). */
	if (!(h->controllers & CG_C_CPUSET))
		return 0;
	_cleanup_free_ char *copy = xstrdup(dir);
	const char *parent = dirname(copy);
	static const char *const files[] = {"cpuset.cpus", "cpuset.mems"};
	pthread_mutex_lock(&cpuset_lock);
	int r = 0;
	/* A cpuset that balances, with cpus, rebuilds the scheduler domains
	 * (a walk of every cpuset on the node, under the kernel's cgroup
	 * mutex) when its cpus are written and again when it is removed:
	 * O(pods) per start and per teardown, some 3 ms a cgroup with a
	 * thousand pods (issue 12). A level husk makes gets the flag off
	 * before it has cpus (so no rebuild at all) when the top cpuset
	 * balances every CPU, where the flag below changes nothing; and no
	 * clone_children, so its own children are born empty and do the same
	 * (a level born with cpus pays one rebuild here instead of one at
	 * its removal). Best effort: a level that keeps the flag on works as
	 * before. */
	if (created) {
		_cleanup_free_ char *f = xasprintf("%s/cgroup.clone_children", dir);
		_cleanup_close_ int fd = open(f, O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			ssize_t w _unused_ = write(fd, "0", 1);
		}
		if (top_balances(h))
			cg_write(m, dir, "cpuset.sched_load_balance", "0", NULL);
	}
	for (size_t i = 0; i < ARRAY_SIZE(files) && r >= 0; i++) {
		_cleanup_free_ char *cur = NULL;
		_cleanup_free_ char *val = NULL;
		if ((r = cg_get_str(dir, files[i], &cur, err)) < 0 || cur)
			continue;
		if ((r = cg_read_line(parent, files[i], &val, err)) < 0 ||
		    (r = cg_write(m, dir, files[i], val, err)) < 0)
			husk_error_prefix(err, "copy cpuset to '%s'", dir);
	}
	pthread_mutex_unlock(&cpuset_lock);
	return r;
}

static int v1_set_cpu(const struct cg_group *g, const struct cg_resources *r,
		      struct husk_error *err)
{
	if (r->cpu_shares == CG_UNSET && r->cpu_period == CG_UNSET && r->cpu_quota == CG_UNSET)
		return 0;
	_cleanup_free_ char *dir = NULL;
	int rc = cg_need_dir(g, CG_C_CPU, "cpu limits", &dir, err);
	if (rc < 0)
		return rc;
	const struct cg_manager *m = g->m;
	if (r->cpu_shares != CG_UNSET) {
		_cleanup_free_ char *v = v1_fmt(r->cpu_shares);
		if ((rc = cg_write_limit(m, dir, "cpu.shares", v, err)) < 0)
			return rc;
		/* The kernel clamps shares silently; a clamped value is a
		 * refused one. */
		int64_t back = 0;
		if ((rc = cg_read_num(dir, "cpu.shares", false, &back, err)) < 0)
			return rc;
		if (back != r->cpu_shares)
			return husk_error_set(err, EINVAL,
					      "write '%s/cpu.shares' value '%s': the kernel "
					      "kept %" PRId64,
					      dir, v, back);
	}
	_cleanup_free_ char *quota = r->cpu_quota != CG_UNSET ? v1_fmt(r->cpu_quota) : NULL;
	bool quota_done = false;
	if (r->cpu_period != CG_UNSET) {
		_cleanup_free_ char *period = v1_fmt(r->cpu_period);
		rc = cg_write_limit(m, dir, "cpu.cfs_period_us", period, err);
		/* A shorter period can break the quota/period ratio the
		 * old quota had against the parent: quota first then. */
		if (rc == -EINVAL && quota) {
			if ((rc = cg_write_limit(m, dir, "cpu.cfs_quota_us", quota, err)) < 0)
				return rc;
			quota_done = true;
			rc = cg_write_limit(m, dir, "cpu.cfs_period_us", period, err);
		}
		if (rc < 0)
			return rc;
	}
	if (quota && !quota_done)
		return cg_write_limit(m, dir, "cpu.cfs_quota_us", quota, err);
	return 0;
}

static int v1_write_swap(const struct cg_manager *m, const char *dir, int64_t swap, int64_t memory,
			 struct husk_error *err)
{
	if (!cg_file_exists(dir, "memory.memsw.limit_in_bytes")) {
		/* Without swap accounting there is no swap to limit: "no swap"
		 * (swap == memory) and "unlimited" are both what we have. */
		if (memory == CG_UNSET) {
			int rc = cg_read_num(dir, "memory.limit_in_bytes", true, &memory, err);
			if (rc < 0)
				return rc;
			memory = v1_limit(memory);
		}
		if (swap == CG_MAX || swap == memory)
			return 0;
		return husk_error_set(err, EINVAL,
				      "memory swap limit %" PRId64
				      ": swap accounting is not enabled ('%s/memory.memsw."
				      "limit_in_bytes' missing)",
				      swap, dir);
	}
	_cleanup_free_ char *v = v1_fmt(swap);
	return cg_write_limit(m, dir, "memory.memsw.limit_in_bytes", v, err);
}

static int v1_set_memory(const struct cg_group *g, const struct cg_resources *r,
			 struct husk_error *err)
{
	int64_t memory = r->memory_limit, swap = r->memory_swap_limit;
	if (memory == CG_UNSET && swap == CG_UNSET)
		return 0;
	_cleanup_free_ char *dir = NULL;
	int rc = cg_need_dir(g, CG_C_MEMORY, "memory limit", &dir, err);
	if (rc < 0)
		return rc;
	const struct cg_manager *m = g->m;
	/* Unlimited memory with swap unset means unlimited swap too. */
	if (memory == CG_MAX && swap == CG_UNSET &&
	    cg_file_exists(dir, "memory.memsw.limit_in_bytes"))
		swap = CG_MAX;
	/* memsw must stay >= memory at every moment: raise memsw before
	 * memory when it grows past the current memory limit, else after. */
	bool swap_first = false;
	if (memory != CG_UNSET && swap != CG_UNSET) {
		int64_t cur = CG_MAX;
		if ((rc = cg_get_num(dir, "memory.limit_in_bytes", true, &cur, err)) < 0)
			return rc;
		cur = v1_limit(cur);
		swap_first = swap == CG_MAX || (cur != CG_MAX && cur < swap);
	}
	if (swap_first && (rc = v1_write_swap(m, dir, swap, memory, err)) < 0)
		return rc;
	if (memory != CG_UNSET) {
		_cleanup_free_ char *v = v1_fmt(memory);
		if ((rc = cg_write_limit(m, dir, "memory.limit_in_bytes", v, err)) < 0)
			return rc;
	}
	if (!swap_first && swap != CG_UNSET)
		return v1_write_swap(m, dir, swap, memory, err);
	return 0;
}

static int v1_set(const struct cg_group *g, const struct cg_resources *r, struct husk_error *err)
{
	if (r->n_unified)
		return husk_error_set(err, EINVAL, "unified key '%s': needs cgroup v2",
				      r->unified[0].key);
	int rc = v1_set_cpu(g, r, err);
	if (rc < 0)
		return rc;
	if ((rc = v1_set_memory(g, r, err)) < 0)
		return rc;
	static const struct cg_hugetlb_names huge = {"hugetlb.%s.limit_in_bytes",
						     "hugetlb.%s.rsvd.limit_in_bytes", v1_fmt};
	if ((rc = cg_set_shared(g, r, &huge, err)) < 0)
		return rc;
	return 0;
}

static int v1_get(const struct cg_group *g, struct cg_resources *ret, struct husk_error *err)
{
	_cleanup_free_ char *cpu = cg_group_dir_bit(g, CG_C_CPU);
	_cleanup_free_ char *mem = cg_group_dir_bit(g, CG_C_MEMORY);
	_cleanup_free_ char *cpuset = cg_group_dir_bit(g, CG_C_CPUSET);
	_cleanup_free_ char *pids = cg_group_dir_bit(g, CG_C_PIDS);
	_cleanup_free_ char *huge = cg_group_dir_bit(g, CG_C_HUGETLB);
	int rc;
	if ((rc = cg_get_num(cpu, "cpu.cfs_period_us", false, &ret->cpu_period, err)) < 0 ||
	    (rc = cg_get_num(cpu, "cpu.cfs_quota_us", true, &ret->cpu_quota, err)) < 0 ||
	    (rc = cg_get_num(cpu, "cpu.shares", false, &ret->cpu_shares, err)) < 0 ||
	    (rc = cg_get_num(mem, "memory.limit_in_bytes", true, &ret->memory_limit, err)) < 0 ||
	    (rc = cg_get_num(mem, "memory.memsw.limit_in_bytes", true, &ret->memory_swap_limit,
			     err)) < 0 ||
	    (rc = cg_get_str(cpuset, "cpuset.cpus", &ret->cpuset_cpus, err)) < 0 ||
	    (rc = cg_get_str(cpuset, "cpuset.mems", &ret->cpuset_mems, err)) < 0 ||
	    (rc = cg_get_num(pids, "pids.max", true, &ret->pids_limit, err)) < 0)
		return rc;
	if (ret->memory_limit != CG_UNSET)
		ret->memory_limit = v1_limit(ret->memory_limit);
	if (ret->memory_swap_limit != CG_UNSET)
		ret->memory_swap_limit = v1_limit(ret->memory_swap_limit);
	if (!huge)
		return 0;
	_cleanup_strv_ char **sizes = NULL;
	if ((rc = cg_hugepage_sizes(huge, ".limit_in_bytes", &sizes, err)) < 0)
		return rc;
	for (char **s = sizes; *s; s++) {
		_cleanup_free_ char *file = xasprintf("hugetlb.%s.limit_in_bytes", *s);
		int64_t v = CG_UNSET;
		if ((rc = cg_get_num(huge, file, true, &v, err)) < 0)
			return rc;
		if (v != CG_UNSET)
			cg_resources_add_hugepage(ret, *s, v1_limit(v));
	}
	return 0;
}

static int v1_stats(const struct cg_group *g, struct cg_stats *s, struct husk_error *err)
{
	_cleanup_free_ char *acct = cg_group_dir_bit(g, CG_C_CPUACCT);
	_cleanup_free_ char *cpu = cg_group_dir_bit(g, CG_C_CPU);
	_cleanup_free_ char *mem = cg_group_dir_bit(g, CG_C_MEMORY);
	_cleanup_free_ char *pids = cg_group_dir_bit(g, CG_C_PIDS);
	int rc = cg_stat_value(acct, "cpuacct.usage", NULL, &s->cpu_usage_ns, err);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		s->valid |= CG_STAT_CPU;
		/* cpuacct.stat counts USER_HZ ticks (_SC_CLK_TCK). */
		uint64_t user = 0, sys = 0,
			 ns_per_tick = 1000000000ULL / (uint64_t)sysconf(_SC_CLK_TCK);
		if ((rc = cg_stat_value(acct, "cpuacct.stat", "user", &user, err)) < 0 ||
		    (rc = cg_stat_value(acct, "cpuacct.stat", "system", &sys, err)) < 0)
			return rc;
		s->cpu_user_ns = user * ns_per_tick;
		s->cpu_system_ns = sys * ns_per_tick;
	}
	rc = cg_stat_value(cpu, "cpu.stat", "nr_periods", &s->cpu_periods, err);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		s->valid |= CG_STAT_CFS;
		if ((rc = cg_stat_value(cpu, "cpu.stat", "nr_throttled", &s->cpu_throttled_periods,
					err)) < 0 ||
		    (rc = cg_stat_value(cpu, "cpu.stat", "throttled_time", &s->cpu_throttled_ns,
					err)) < 0)
			return rc;
	}
	rc = cg_stat_value(mem, "memory.usage_in_bytes", NULL, &s->memory_usage, err);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		s->valid |= CG_STAT_MEMORY;
		_cleanup_free_ char *stat = NULL;
		if ((rc = cg_read(mem, "memory.stat", &stat, err)) < 0)
			return rc;
		/* total_* count the whole subtree (a pod's containers); plain
		 * names are the fallback for kernels without them. */
		static const struct {
			const char *total, *local;
			size_t off;
		} keys[] = {
		    {"total_rss", "rss", offsetof(struct cg_stats, memory_rss)},
		    {"total_pgfault", "pgfault", offsetof(struct cg_stats, memory_page_faults)},
		    {"total_pgmajfault", "pgmajfault",
		     offsetof(struct cg_stats, memory_major_page_faults)},
		    {"total_cache", "cache", offsetof(struct cg_stats, memory_cache)},
		    {"total_inactive_file", "inactive_file", 0},
		};
		uint64_t inactive = 0;
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			uint64_t *field =
			    keys[i].off ? (uint64_t *)((char *)s + keys[i].off) : &inactive;
			rc = cg_parse_keyed(stat, keys[i].total, field);
			if (rc == -ENOENT)
				rc = cg_parse_keyed(stat, keys[i].local, field);
			if (rc == -EINVAL)
				return husk_error_set(err, EIO,
						      "read '%s/memory.stat': bad value for '%s'",
						      mem, keys[i].local);
		}
		s->memory_working_set = s->memory_usage > inactive ? s->memory_usage - inactive : 0;
		/* total_swap is there only with swap accounting (memsw). */
		rc = cg_parse_keyed(stat, "total_swap", &s->memory_swap);
		if (rc == 0)
			s->valid |= CG_STAT_SWAP;
		uint64_t limit = 0;
		if ((rc = cg_stat_value(mem, "memory.failcnt", NULL, &s->memory_failcnt, err)) <
			0 ||
		    (rc = cg_stat_value(mem, "memory.max_usage_in_bytes", NULL,
					&s->memory_max_usage, err)) < 0 ||
		    (rc = cg_stat_value(mem, "memory.limit_in_bytes", NULL, &limit, err)) < 0)
			return rc;
		s->memory_limit = v1_limit((int64_t)(limit & INT64_MAX)) == CG_MAX ? 0 : limit;
	}
	rc = cg_stat_value(mem, "memory.oom_control", "oom_kill", &s->oom_kill_count, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		s->valid |= CG_STAT_OOM;
	rc = cg_stat_value(pids, "pids.current", NULL, &s->pids_current, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		s->valid |= CG_STAT_PIDS;
	return 0;
}

static int v1_oom_kill_count(const struct cg_group *g, uint64_t *ret, struct husk_error *err)
{
	_cleanup_free_ char *mem = cg_group_dir_bit(g, CG_C_MEMORY);
	int rc = cg_stat_value(mem, "memory.oom_control", "oom_kill", ret, err);
	return rc < 0 ? rc : 0;
}

static int v1_kill_all(const struct cg_group *g _unused_, struct husk_error *err _unused_)
{
	return 0; /* v1 has no cgroup.kill */
}

static int v1_populated(const struct cg_group *g)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, CG_C_PIDS);
	uint64_t n = 0;
	if (cg_stat_value(dir, "pids.current", NULL, &n, NULL) <= 0)
		return -1;
	return n > 0;
}

static int v1_freeze(const struct cg_group *g, bool frozen, struct husk_error *err)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, CG_C_FREEZER);
	if (!dir)
		return husk_error_set(err, ENOTSUP, "no freezer hierarchy");
	const char *want = frozen ? "FROZEN" : "THAWED";
	int rc = cg_write(g->m, dir, "freezer.state", want, err);
	if (rc < 0 || !frozen)
		return rc;
	/* FREEZING until every task stopped; bounded, as a task in an
	 * uninterruptible sleep can hold it there. */
	for (int waited = 0; waited < FREEZE_WAIT_MS; waited += 2) {
		_cleanup_free_ char *state = NULL;
		if ((rc = cg_read_line(dir, "freezer.state", &state, err)) < 0)
			return rc;
		if (streq(state, "FROZEN"))
			return 0;
		nanosleep(&(struct timespec){0, 2000000}, NULL);
	}
	return 0;
}

static int v1_allow_devices(const struct cg_group *g, const struct cg_device_rule *rules, size_t n,
			    struct husk_error *err)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, CG_C_DEVICES);
	if (!dir)
		return husk_error_set(err, EOPNOTSUPP, "the devices controller is not available");
	int r = cg_write(g->m, dir, "devices.deny", "a", err);
	for (size_t i = 0; i < n && r == 0; i++) {
		char line[64];
		cg_device_rule_format(&rules[i], line, sizeof(line));
		r = cg_write(g->m, dir, "devices.allow", line, err);
	}
	return r;
}

const struct cg_ops cg_v1_ops = {
    .version = CG_V1,
    .prepare_level = v1_prepare_level,
    .set = v1_set,
    .get = v1_get,
    .stats = v1_stats,
    .oom_kill_count = v1_oom_kill_count,
    .kill_all = v1_kill_all,
    .populated = v1_populated,
    .freeze = v1_freeze,
    .allow_devices = v1_allow_devices,
};
