/* cgroup v2: one unified tree. Controllers are enabled through the
 * ancestors' cgroup.subtree_control; resources map onto cpu.max, cpu.weight,
 * memory.max/swap.max and friends; cgroup.kill and cgroup.freeze when the
 * kernel has them. */
#include "runtime/cgroup/internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#define FREEZE_WAIT_MS 500

static char *v2_fmt(int64_t v)
{
	return v == CG_MAX ? xstrdup("max") : xasprintf("%" PRId64, v);
}

static unsigned read_mask(const char *dir, const char *file, unsigned missing, int *rc,
			  struct husk_error *err)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_error_ struct husk_error rerr = HUSK_ERROR_INIT;
	*rc = cg_read(dir, file, &buf, &rerr);
	if (*rc == -ENOENT) {
		*rc = 0;
		return missing;
	}
	if (*rc < 0) {
		husk_error_move(err, &rerr);
		return 0;
	}
	unsigned mask = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, " \t\n", &save); t; t = strtok_r(NULL, " \t\n", &save))
		mask |= cg_controller_bit(*t == '+' ? t + 1 : t);
	return mask;
}

static int v2_prepare_level(const struct cg_manager *m, const struct cg_hier *h, const char *dir,
			    bool created _unused_, bool leaf, struct husk_error *err)
{
	/* Controllers go on in every ancestor, never in the group itself:
	 * a cgroup with processes may not also have controllers for its
	 * children (the "no internal processes" rule). */
	if (leaf)
		return 0;
	int rc;
	/* An emulated level made by us has no cgroup.controllers: it would
	 * have what the root offers. */
	unsigned avail = read_mask(dir, "cgroup.controllers", h->controllers, &rc, err);
	if (rc < 0)
		return rc;
	unsigned cur = read_mask(dir, "cgroup.subtree_control", 0, &rc, err);
	if (rc < 0)
		return rc;
	unsigned missing = avail & h->controllers & ~cur;
	if (!missing)
		return 0;
	_cleanup_free_ char *all = cg_controller_names(missing, true);
	rc = cg_write(m, dir, "cgroup.subtree_control", all, err);
	if (rc == 0)
		return 0;
	/* One at a time, so that one the kernel refuses does not cost the
	 * others; cg_group_set reports what is then missing. */
	int enabled = 0;
	for (unsigned bit = 1; bit <= CG_C_IO; bit <<= 1) {
		if (!(missing & bit))
			continue;
		_cleanup_free_ char *one = cg_controller_names(bit, true);
		_cleanup_error_ struct husk_error oerr = HUSK_ERROR_INIT;
		enabled += cg_write(m, dir, "cgroup.subtree_control", one, &oerr) == 0;
	}
	if (enabled == 0)
		return husk_error_prefix(err, "enable controllers in '%s'", dir);
	husk_error_clear(err);
	return 0;
}

static int v2_set_cpu(const struct cg_group *g, const struct cg_resources *r,
		      struct husk_error *err)
{
	if (r->cpu_shares == CG_UNSET && r->cpu_period == CG_UNSET && r->cpu_quota == CG_UNSET)
		return 0;
	_cleanup_free_ char *dir = NULL;
	int rc = cg_need_dir(g, CG_C_CPU, "cpu limits", &dir, err);
	if (rc < 0)
		return rc;
	if (r->cpu_shares != CG_UNSET) {
		_cleanup_free_ char *w =
		    xasprintf("%" PRIu64, cg_shares_to_weight((uint64_t)r->cpu_shares));
		if ((rc = cg_write_limit(g->m, dir, "cpu.weight", w, err)) < 0)
			return rc;
	}
	if (r->cpu_quota == CG_UNSET && r->cpu_period == CG_UNSET)
		return 0;
	_cleanup_free_ char *quota = NULL;
	if (r->cpu_quota != CG_UNSET) {
		quota = v2_fmt(r->cpu_quota);
	} else {
		/* Period alone: keep the quota in force. */
		_cleanup_free_ char *cur = NULL;
		if ((rc = cg_get_str(dir, "cpu.max", &cur, err)) < 0)
			return rc;
		quota = cur ? xstrndup(cur, strcspn(cur, " ")) : xstrdup("max");
	}
	_cleanup_free_ char *v = r->cpu_period != CG_UNSET
				     ? xasprintf("%s %" PRId64, quota, r->cpu_period)
				     : xstrdup(quota);
	return cg_write_limit(g->m, dir, "cpu.max", v, err);
}

static int v2_read_max(const char *dir, const char *file, int64_t *ret, struct husk_error *err)
{
	*ret = CG_UNSET;
	return cg_get_num(dir, file, true, ret, err);
}

static int v2_set_memory(const struct cg_group *g, const struct cg_resources *r,
			 struct husk_error *err)
{
	int64_t memory = r->memory_limit, total = r->memory_swap_limit;
	if (memory == CG_UNSET && total == CG_UNSET)
		return 0;
	_cleanup_free_ char *dir = NULL;
	int rc = cg_need_dir(g, CG_C_MEMORY, "memory limit", &dir, err);
	if (rc < 0)
		return rc;
	/* The API speaks v1's memory+swap; v2's memory.swap.max is swap
	 * alone. Unlimited memory with swap unset lifts swap too. */
	int64_t swap = CG_UNSET;
	if (total == CG_MAX || (memory == CG_MAX && total == CG_UNSET)) {
		swap = CG_MAX;
	} else if (total != CG_UNSET) {
		int64_t mem = memory;
		if (mem == CG_UNSET && (rc = v2_read_max(dir, "memory.max", &mem, err)) < 0)
			return rc;
		if (mem == CG_UNSET || mem == CG_MAX)
			return husk_error_set(err, EINVAL,
					      "memory swap limit %" PRId64 " needs a memory limit",
					      total);
		if (total < mem)
			return husk_error_set(err, EINVAL,
					      "memory swap limit %" PRId64
					      " is below the memory limit %" PRId64,
					      total, mem);
		swap = total - mem;
	}
	if (swap != CG_UNSET) {
		_cleanup_free_ char *v = v2_fmt(swap);
		if (cg_file_exists(dir, "memory.swap.max")) {
			if ((rc = cg_write_limit(g->m, dir, "memory.swap.max", v, err)) < 0)
				return rc;
		} else if (swap != 0 && swap != CG_MAX) {
			return husk_error_set(err, EINVAL,
					      "memory swap limit: swap accounting is not "
					      "enabled ('%s/memory.swap.max' missing)",
					      dir);
		}
	}
	if (memory != CG_UNSET) {
		_cleanup_free_ char *v = v2_fmt(memory);
		if ((rc = cg_write_limit(g->m, dir, "memory.max", v, err)) < 0)
			return rc;
	}
	return 0;
}

static int v2_set(const struct cg_group *g, const struct cg_resources *r, struct husk_error *err)
{
	int rc = v2_set_cpu(g, r, err);
	if (rc < 0)
		return rc;
	if ((rc = v2_set_memory(g, r, err)) < 0)
		return rc;
	static const struct cg_hugetlb_names huge = {"hugetlb.%s.max", "hugetlb.%s.rsvd.max",
						     v2_fmt};
	if ((rc = cg_set_shared(g, r, &huge, err)) < 0)
		return rc;
	if (r->n_unified) {
		/* Last, so that explicit keys win over converted fields. */
		_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
		for (size_t i = 0; i < r->n_unified; i++) {
			const struct cg_kv *kv = &r->unified[i];
			if (!cg_file_exists(dir, kv->key))
				return husk_error_set(err, EINVAL,
						      "unified key '%s' is not supported "
						      "('%s/%s' missing)",
						      kv->key, dir, kv->key);
			if ((rc = cg_write_limit(g->m, dir, kv->key, kv->value, err)) < 0)
				return rc;
		}
	}
	return 0;
}

static int v2_get(const struct cg_group *g, struct cg_resources *ret, struct husk_error *err)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
	_cleanup_free_ char *cpumax = NULL;
	int rc = cg_get_str(dir, "cpu.max", &cpumax, err);
	if (rc < 0)
		return rc;
	if (cpumax) {
		char q[32] = "", p[32] = "";
		uint64_t qv, pv;
		if (sscanf(cpumax, "%31s %31s", q, p) != 2 || cg_parse_u64(p, &pv) < 0 ||
		    (!streq(q, "max") && cg_parse_u64(q, &qv) < 0))
			return husk_error_set(err, EIO, "read '%s/cpu.max': bad value '%.64s'", dir,
					      cpumax);
		ret->cpu_period = (int64_t)pv;
		ret->cpu_quota = streq(q, "max") ? CG_MAX : (int64_t)qv;
	}
	int64_t weight = CG_UNSET, memory = CG_UNSET, swap = CG_UNSET;
	if ((rc = cg_get_num(dir, "cpu.weight", false, &weight, err)) < 0)
		return rc;
	if (weight != CG_UNSET)
		ret->cpu_shares = (int64_t)cg_weight_to_shares((uint64_t)weight);
	if ((rc = v2_read_max(dir, "memory.max", &memory, err)) < 0 ||
	    (rc = v2_read_max(dir, "memory.swap.max", &swap, err)) < 0)
		return rc;
	ret->memory_limit = memory;
	/* Back to memory+swap. */
	if (memory == CG_MAX || swap == CG_MAX)
		ret->memory_swap_limit = swap == CG_UNSET ? CG_UNSET : CG_MAX;
	else if (memory != CG_UNSET && swap != CG_UNSET)
		ret->memory_swap_limit = memory + swap;
	if ((rc = cg_get_str(dir, "cpuset.cpus", &ret->cpuset_cpus, err)) < 0 ||
	    (rc = cg_get_str(dir, "cpuset.mems", &ret->cpuset_mems, err)) < 0 ||
	    (rc = cg_get_num(dir, "pids.max", true, &ret->pids_limit, err)) < 0)
		return rc;
	_cleanup_strv_ char **sizes = NULL;
	if ((rc = cg_hugepage_sizes(dir, ".max", &sizes, err)) < 0)
		return rc;
	for (char **s = sizes; *s; s++) {
		_cleanup_free_ char *file = xasprintf("hugetlb.%s.max", *s);
		int64_t v = CG_UNSET;
		if ((rc = cg_get_num(dir, file, true, &v, err)) < 0)
			return rc;
		if (v != CG_UNSET)
			cg_resources_add_hugepage(ret, *s, v);
	}
	return 0;
}

static int v2_stats(const struct cg_group *g, struct cg_stats *s, struct husk_error *err)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
	uint64_t usec = 0;
	int rc = cg_stat_value(dir, "cpu.stat", "usage_usec", &usec, err);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		s->cpu_usage_ns = usec * 1000;
		s->valid |= CG_STAT_CPU;
		uint64_t user = 0, sys = 0;
		if ((rc = cg_stat_value(dir, "cpu.stat", "user_usec", &user, err)) < 0 ||
		    (rc = cg_stat_value(dir, "cpu.stat", "system_usec", &sys, err)) < 0)
			return rc;
		s->cpu_user_ns = user * 1000;
		s->cpu_system_ns = sys * 1000;
	}
	/* nr_periods is in cpu.stat only where the cpu controller is enabled. */
	rc = cg_stat_value(dir, "cpu.stat", "nr_periods", &s->cpu_periods, err);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		s->valid |= CG_STAT_CFS;
		uint64_t throttled = 0;
		if ((rc = cg_stat_value(dir, "cpu.stat", "nr_throttled", &s->cpu_throttled_periods,
					err)) < 0 ||
		    (rc = cg_stat_value(dir, "cpu.stat", "throttled_usec", &throttled, err)) < 0)
			return rc;
		s->cpu_throttled_ns = throttled * 1000;
	}
	rc = cg_stat_value(dir, "memory.current", NULL, &s->memory_usage, err);
	if (rc < 0)
		return rc;
	if (rc > 0) {
		s->valid |= CG_STAT_MEMORY;
		_cleanup_free_ char *stat = NULL;
		if ((rc = cg_read(dir, "memory.stat", &stat, err)) < 0)
			return rc;
		uint64_t inactive = 0;
		static const struct {
			const char *key;
			size_t off;
		} keys[] = {
		    {"anon", offsetof(struct cg_stats, memory_rss)},
		    {"pgfault", offsetof(struct cg_stats, memory_page_faults)},
		    {"pgmajfault", offsetof(struct cg_stats, memory_major_page_faults)},
		    {"file", offsetof(struct cg_stats, memory_cache)},
		    {"inactive_file", 0},
		};
		for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
			uint64_t *field =
			    keys[i].off ? (uint64_t *)((char *)s + keys[i].off) : &inactive;
			if (cg_parse_keyed(stat, keys[i].key, field) == -EINVAL)
				return husk_error_set(err, EIO,
						      "read '%s/memory.stat': bad value for '%s'",
						      dir, keys[i].key);
		}
		s->memory_working_set = s->memory_usage > inactive ? s->memory_usage - inactive : 0;
		rc = cg_stat_value(dir, "memory.swap.current", NULL, &s->memory_swap, err);
		if (rc < 0)
			return rc;
		if (rc > 0)
			s->valid |= CG_STAT_SWAP;
		int64_t limit = CG_MAX;
		if ((rc = cg_stat_value(dir, "memory.events", "max", &s->memory_failcnt, err)) <
			0 ||
		    (rc = cg_stat_value(dir, "memory.peak", NULL, &s->memory_max_usage, err)) < 0 ||
		    (rc = cg_get_num(dir, "memory.max", true, &limit, err)) < 0)
			return rc;
		s->memory_limit = limit == CG_MAX || limit == CG_UNSET ? 0 : (uint64_t)limit;
	}
	rc = cg_stat_value(dir, "memory.events", "oom_kill", &s->oom_kill_count, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		s->valid |= CG_STAT_OOM;
	rc = cg_stat_value(dir, "pids.current", NULL, &s->pids_current, err);
	if (rc < 0)
		return rc;
	if (rc > 0)
		s->valid |= CG_STAT_PIDS;
	return 0;
}

static int v2_oom_kill_count(const struct cg_group *g, uint64_t *ret, struct husk_error *err)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
	int rc = cg_stat_value(dir, "memory.events", "oom_kill", ret, err);
	return rc < 0 ? rc : 0;
}

static int v2_kill_all(const struct cg_group *g, struct husk_error *err)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
	if (!cg_file_exists(dir, "cgroup.kill"))
		return 0; /* before Linux 5.14 */
	int rc = cg_write(g->m, dir, "cgroup.kill", "1", err);
	return rc < 0 ? rc : 1;
}

static int v2_populated(const struct cg_group *g)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
	uint64_t v = 0;
	if (cg_stat_value(dir, "cgroup.events", "populated", &v, NULL) <= 0)
		return -1;
	return v > 0;
}

static int v2_freeze(const struct cg_group *g, bool frozen, struct husk_error *err)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
	if (!cg_file_exists(dir, "cgroup.freeze"))
		return husk_error_set(err, ENOTSUP, "no cgroup.freeze in '%s'", dir);
	int rc = cg_write(g->m, dir, "cgroup.freeze", frozen ? "1" : "0", err);
	if (rc < 0 || !frozen)
		return rc;
	for (int waited = 0; waited < FREEZE_WAIT_MS; waited += 2) {
		uint64_t state = 0;
		rc = cg_stat_value(dir, "cgroup.events", "frozen", &state, err);
		if (rc < 0)
			return rc;
		if (rc == 0 || state == 1)
			return 0;
		nanosleep(&(struct timespec){0, 2000000}, NULL);
	}
	return 0;
}

static int v2_allow_devices(const struct cg_group *g, const struct cg_device_rule *rules, size_t n,
			    struct husk_error *err)
{
	/* v2 has no devices controller: an eBPF program attached to the
	 * cgroup decides instead. */
	_cleanup_free_ char *dir = cg_group_dir_bit(g, 0);
	return cg_bpf_devices_apply(g->m, dir, rules, n, err);
}

const struct cg_ops cg_v2_ops = {
    .version = CG_V2,
    .prepare_level = v2_prepare_level,
    .set = v2_set,
    .get = v2_get,
    .stats = v2_stats,
    .oom_kill_count = v2_oom_kill_count,
    .kill_all = v2_kill_all,
    .populated = v2_populated,
    .freeze = v2_freeze,
    .allow_devices = v2_allow_devices,
};
