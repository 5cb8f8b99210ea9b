/* husk's cgroup library: detects the host's hierarchy (v1 or v2), names pod
 * and container cgroups after the kubelet's driver (cgroupfs or systemd), and
 * creates, fills, inspects, kills and removes the cgroups husk owns. */
#ifndef HUSK_RUNTIME_CGROUP_H
#define HUSK_RUNTIME_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/*
 * Overview
 *
 * A `struct cg_manager` is opened once at start: it reads /proc/self/mountinfo
 * to find what is mounted at the base directory (default /sys/fs/cgroup):
 *   - cgroup2 mounted at the base itself             -> CG_V2 (unified);
 *   - cgroup (v1) mounts beneath the base            -> CG_V1, one hierarchy
 *     per mount, each holding one or more controllers ("cpu,cpuacct"); a
 *     cgroup2 mount beneath the base (hybrid's "unified") is ignored.
 * When mountinfo knows nothing of the base (unit tests point the base at a
 * temporary directory), the layout decides: a cgroup.controllers file at the
 * base means v2, directories named after controllers mean v1.
 *
 * When the base is not a cgroup file system at all (statfs), the manager is
 * "emulated": writes create missing files, removal unlinks the plain files a
 * directory holds before rmdir. That is how the unit tests run without root;
 * on a real mount nothing changes.
 *
 * Paths: every cgroup is named by a path relative to the hierarchy root
 * ("kubepods/burstable/pod123/abc"), the same in every v1 hierarchy. Paths
 * are normalised (no leading or trailing '/', no "." or ".." or empty
 * components, at most CG_PATH_MAX bytes and CG_DEPTH_MAX components); the
 * root itself is never a valid path, so husk can never write to, kill or
 * remove the root cgroup. Nothing is ever created outside the given path.
 *
 * Drivers (naming only):
 *   CG_DRIVER_CGROUPFS: parent "/kubepods/burstable/podUID" is that path;
 *                       a container is "<pod path>/<id>".
 *   CG_DRIVER_SYSTEMD:  parent "kubepods-burstable-podUID.slice" expands to
 *                       "kubepods.slice/kubepods-burstable.slice/
 *                        kubepods-burstable-podUID.slice"; a container is
 *                       "<pod path>/husk-<id>.scope".
 * With the systemd driver on a real hierarchy the manager talks to systemd
 * over D-Bus (systemd.c; opening fails with EHOSTDOWN when systemd
 * is not reachable): cg_group_create of a ".slice" path starts that slice
 * as a transient unit (empty), cg_group_register starts a ".scope" with its
 * first process (Delegate=yes on request), cg_group_set also sets the unit's
 * properties (CPUShares/CPUWeight, CPUQuotaPerSecUSec, CPUQuotaPeriodUSec,
 * MemoryLimit/MemoryMax, TasksMax, AllowedCPUs/AllowedMemoryNodes on v2)
 * and cg_group_remove stops the unit first. husk still creates the
 * directories and writes the cgroup files itself, so controllers systemd
 * does not drive (v1 cpuset, hugetlb, devices, swap) work alike.
 *
 * v2 and the "no internal processes" rule: controllers are enabled in the
 * cgroup.subtree_control of every ancestor of a new cgroup (root included),
 * never in the new cgroup itself. So a cgroup that holds processes cannot
 * get children afterwards (the kernel answers EBUSY): the pod layer must put
 * a pod's own processes (an init) in a child cgroup, not in the pod cgroup.
 *
 * Threads: a manager is immutable after opening and may be shared between
 * threads. A `struct cg_group` is used by one thread at a time. Nothing here
 * is async-signal-safe; a forked child that must enter a cgroup before exec
 * should use cg_group_procs_files() computed before fork().
 */

enum cg_version { CG_V1 = 1, CG_V2 = 2 };
enum cg_driver { CG_DRIVER_CGROUPFS, CG_DRIVER_SYSTEMD };

#define CG_DEFAULT_BASE "/sys/fs/cgroup"
#define CG_PATH_MAX 1024
#define CG_DEPTH_MAX 32
#define CG_ID_MAX HUSK_OBJ_ID_MAX

struct cg_manager;
struct cg_group;

/* ---- manager ---------------------------------------------------------- */

struct cg_options {
	const char *base; /* cgroup mount root; NULL: CG_DEFAULT_BASE */
	enum cg_driver driver;
	const char *mountinfo; /* NULL: /proc/self/mountinfo (tests pass a sample) */
	/* The kernel's hugepage pools, one hugepages-<size>kB directory per
	 * size; NULL: /sys/kernel/mm/hugepages (tests pass a directory). */
	const char *hugepages_dir;
	/* The parent of pods whose cgroup_parent is empty: a path for
	 * cgroupfs, a slice for systemd. NULL or "": "husk" / "husk.slice". */
	const char *pod_parent;
};

/* Detect the hierarchy under opts->base and choose the v1/v2 and naming
 * tables. ENOENT when no cgroup hierarchy is found there, EINVAL for a bad
 * driver, EIO on an unreadable mountinfo. *ret_manager is owned by the caller
 * (cg_manager_free) and must outlive every group opened through it. */
int cg_manager_open(const struct cg_options *opts, struct cg_manager **ret_manager,
		    struct husk_error *err);

/* Shorthand for cg_manager_open with the default mountinfo; NULL base means
 * CG_DEFAULT_BASE. Returns NULL with err filled on failure. */
struct cg_manager *cg_manager_new(const char *base, enum cg_driver driver, struct husk_error *err);

void cg_manager_free(struct cg_manager *m); /* accepts NULL */
static inline void cg_manager_freep(struct cg_manager **m)
{
	cg_manager_free(*m);
}

enum cg_version cg_manager_version(const struct cg_manager *m);
enum cg_driver cg_manager_driver(const struct cg_manager *m);
/* The normalised base directory (no trailing '/'). Owned by the manager. */
const char *cg_manager_base(const struct cg_manager *m);
/* True when the base is a plain directory tree rather than cgroupfs. */
bool cg_manager_emulated(const struct cg_manager *m);
/* True when the controller ("memory", "cpu", "cpuacct", "cpuset", "pids",
 * "hugetlb", "freezer", "devices", "blkio" on v1; "cpu", "cpuset", "memory",
 * "pids", "hugetlb", "io" on v2) is mounted (v1) or available at the root
 * (v2) and husk uses it. */
bool cg_manager_has_controller(const struct cg_manager *m, const char *controller);
/* True when dir (as "<base>/<name>") is where one of the manager's
 * hierarchies is mounted: one whose groups it removes itself. */
bool cg_manager_is_hier_mount(const struct cg_manager *m, const char *dir);

/* Parse a driver name: "cgroupfs" or "systemd". EINVAL otherwise. */
int cg_driver_parse(const char *name, enum cg_driver *ret_driver, struct husk_error *err);
const char *cg_driver_name(enum cg_driver driver);

/* ---- naming (driver table) -------------------------------------------- */

/* The pod cgroup's path from the kubelet's cgroup_parent (see Drivers
 * above). An empty or NULL parent gives husk's default for pod_id:
 * "husk/<pod_id>" (cgroupfs) or "husk.slice/husk-<pod_id>.slice" (systemd),
 * or the same beneath cg_options.pod_parent.
 * With the systemd driver a parent containing '/' is taken as an already
 * expanded path. EINVAL for a malformed parent or id. *ret_path is the
 * caller's. */
int cg_manager_pod_path(const struct cg_manager *m, const char *cgroup_parent, const char *pod_id,
			char **ret_path, struct husk_error *err);

/* The path of container ctr_id's cgroup beneath pod_path (a path as
 * returned above). Ids follow husk_obj_id_valid (common/util.h). EINVAL on bad
 * input. */
int cg_manager_container_path(const struct cg_manager *m, const char *pod_path, const char *ctr_id,
			      char **ret_path, struct husk_error *err);

/* ---- groups ----------------------------------------------------------- */

/* Create path (mkdir -p) in every hierarchy husk uses (v1) or in the unified
 * tree with husk's controllers enabled in each ancestor's subtree_control
 * (v2). On v1 a new cpuset cgroup gets cpuset.cpus/mems copied from its
 * parent when empty. Existing directories are fine: the group remembers, per
 * hierarchy, which directories this call created, and only those are ever
 * removed. EINVAL for a bad path, ENOTDIR when a component is a file, errno
 * of mkdir/write otherwise (the message names the directory). On failure
 * the directories this call created are removed again. */
int cg_group_create(struct cg_manager *m, const char *path, struct cg_group **ret_group,
		    struct husk_error *err);

/* systemd driver: start the ".scope" g names as a transient unit holding
 * pid (already in the group's directories), with the resources in force as
 * its properties, in the slice of its parent, Delegate=yes when delegate
 * (the group's processes manage their own subtree; note that on v1 systemd
 * then opens the group's device cgroup to all devices); wait for
 * systemd's job.
 * No-op (0) for other drivers and paths. EIO with systemd's reason when
 * the unit does not start. */
int cg_group_register(const struct cg_group *g, pid_t pid, bool delegate, struct husk_error *err);

/* Open an existing group without owning any directory (cg_group_remove then
 * removes nothing). ENOENT when the path exists in no hierarchy. */
int cg_group_open(struct cg_manager *m, const char *path, struct cg_group **ret_group,
		  struct husk_error *err);

/* Make g own its own directory (not its parents) in every hierarchy, so
 * that cg_group_remove removes it and what lies beneath it wherever it
 * exists (where it does not, the removal finds nothing to do). For a group
 * whose creation a crash interrupted (its path is known from an intent
 * record; which directories were new is not), or one cg_group_open found.
 * No file-system access. */
void cg_group_adopt(struct cg_group *g);

/* Persist a group across a daemon restart as typed parts for the caller's
 * record: the group's hierarchies (those of its manager), each one's name
 * and how many trailing directories of the path husk created in it. */
size_t cg_group_n_hiers(const struct cg_group *g);
const char *cg_group_hier_name(const struct cg_group *g, size_t i);
int cg_group_hier_created(const struct cg_group *g, size_t i);
/* The group back from its typed parts: created[i] directories in
 * hierarchy names[i], for n of them; hierarchies gone since (a reboot) are
 * dropped. No file-system access. EINVAL on a bad path or a count deeper
 * than the path. */
int cg_group_rebuild(struct cg_manager *m, const char *path, const char *const *names,
		     const int *created, size_t n, struct cg_group **ret_group,
		     struct husk_error *err);

void cg_group_free(struct cg_group *g); /* accepts NULL; touches no file */
static inline void cg_group_freep(struct cg_group **g)
{
	cg_group_free(*g);
}

/* The normalised relative path. Owned by the group. */
const char *cg_group_path(const struct cg_group *g);

/* The group's directory for controller (see cg_manager_has_controller;
 * NULL picks the unified directory on v2, the memory one on v1). NULL when
 * that controller is not available. Caller frees. */
char *cg_group_dir(const struct cg_group *g, const char *controller);

/* The cgroup.procs files of the group, one per hierarchy (v1) or one (v2),
 * as a NULL-terminated vector the caller frees with strv_free. Meant to be
 * computed before fork() so the child can write "0" to each without
 * allocating. */
char **cg_group_procs_files(const struct cg_group *g);

/* A container that owns a cgroup tree (systemd in it, a private cgroup
 * namespace, writable cgroup mounts) must have its own cgroup in every
 * hierarchy it sees, not only in those husk manages: on a v1 host with the
 * cgroupfs driver, make g's path in the other hierarchies mounted under the
 * base (name=systemd, the cgroup2 at <base>/unified, controllers husk does
 * not use) and add their cgroup.procs files to *procs (a strv, grown).
 * cg_group_remove removes these trees too. A no-op on v2, with the systemd
 * driver (systemd owns those hierarchies) and on an emulated tree. */
int cg_group_add_unmanaged(const struct cg_group *g, char ***procs, struct husk_error *err);

/* Move process pid (0: the caller) into the group in every hierarchy.
 * The error names the cgroup.procs file; ESRCH for a gone pid. */
int cg_group_enter(const struct cg_group *g, pid_t pid, struct husk_error *err);

/* ---- resources -------------------------------------------------------- */

/* Integer fields: CG_UNSET leaves the kernel's value alone, CG_MAX means
 * "no limit" where that makes sense (quota, memory, swap, pids, hugepages).
 * String fields: NULL or "" leaves the value alone. The struct owns its strings
 * and arrays (cg_resources_clear frees them). */
#define CG_UNSET INT64_MIN
#define CG_MAX ((int64_t)-1)
#define CG_HUGEPAGES_MAX 16
#define CG_UNIFIED_MAX 64
#define CG_VALUE_MAX 4096

struct cg_hugepage {
	char *page_size; /* as the kernel names it: "2MB", "1GB", "64KB" */
	int64_t limit;	 /* bytes or CG_MAX */
};

struct cg_kv {
	char *key;   /* a v2 interface file name, e.g. "memory.high" */
	char *value; /* written verbatim */
};

struct cg_resources {
	int64_t cpu_period;	   /* microseconds */
	int64_t cpu_quota;	   /* microseconds per period, or CG_MAX */
	int64_t cpu_shares;	   /* 2..262144; v2: cpu.weight by the runc/crun
				    * conversion 1 + ((shares - 2) * 9999) / 262142 */
	int64_t memory_limit;	   /* bytes or CG_MAX */
	int64_t memory_swap_limit; /* memory + swap, bytes, or CG_MAX (v1 memsw
				    * semantics; v2 writes swap = this - memory) */
	char *cpuset_cpus;	   /* "0-3,5" */
	char *cpuset_mems;
	int64_t pids_limit; /* number or CG_MAX */
	struct cg_hugepage *hugepages;
	size_t n_hugepages;
	struct cg_kv *unified; /* v2 only; written last, overriding the above */
	size_t n_unified;
};

/* Everything unset and empty. */
void cg_resources_init(struct cg_resources *r);
/* Free strings and arrays; leaves r as after cg_resources_init. */
void cg_resources_clear(struct cg_resources *r);
/* Append copies (no check here; cg_group_set validates). */
void cg_resources_add_hugepage(struct cg_resources *r, const char *page_size, int64_t limit);
void cg_resources_add_unified(struct cg_resources *r, const char *key, const char *value);

/* Write the set fields of r to the group. Swap follows runc: memory =
 * CG_MAX with swap unset also lifts swap; on v1 memsw and memory are
 * written in the order the kernel accepts; on v2 memory.swap.max = swap -
 * memory (swap limit without a memory limit is refused). Without swap
 * accounting, a swap limit equal to the memory limit (no swap) or CG_MAX is
 * skipped, others refused. Without the hugetlb controller, a hugepage limit
 * of 0 is accepted when the host's pool of that size is empty (nothing can
 * be allocated, so the limit holds; the kubelet sends 0 for every size the
 * kernel knows), any other is refused. Errors are EINVAL, with the file and
 * value in the message, both for values refused here (out of range, unified
 * keys on v1, a controller not available, a hugepage size the host lacks)
 * and for values the kernel rejects. Fields written before a failure stay
 * written. */
int cg_group_set(const struct cg_group *g, const struct cg_resources *r, struct husk_error *err);

/* Read back the resources in force into *ret (initialised here; clear it
 * with cg_resources_clear). Unavailable values stay CG_UNSET; v2 weight is
 * converted back to shares (lossy: 1024 reads back as 998); unified is left
 * empty; hugepages lists every size the host has. */
int cg_group_get(const struct cg_group *g, struct cg_resources *ret, struct husk_error *err);

/* ---- devices ---------------------------------------------------------- */

#define CG_DEVICE_RULES_MAX 8192

/* One rule of the device controller: type 'c' or 'b', major and minor -1
 * for any ("*"), access a non-empty subset of "rwm" (read, write, mknod);
 * or type 'a' with -1:-1 and "rwm" for every device (v1 takes any "a" rule
 * that way, so nothing narrower is accepted). */
struct cg_device_rule {
	char type;
	int64_t major, minor;
	char access[4];
};

/* Let the group's processes use only the devices rules allow (everything
 * else denied), before any process joins. An access (read, write or both
 * when opening a node; mknod when creating one) is allowed when one rule
 * covers the device and every bit of it; rules of the same type, major and
 * minor add up (so "c 1:3 r" and "c 1:3 w" allow opening it read-write),
 * as v1's exception list does.
 *   v1: "a" to devices.deny, then one devices.allow line per rule.
 *   v2: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) built from the rules
 *       is loaded and attached to the group's directory with
 *       BPF_F_ALLOW_MULTI; device programs attached there before are
 *       detached after it, so calling again replaces the filter (both
 *       apply in between, never neither). Ancestors' programs still apply.
 *       The program lives with the cgroup: nothing to save. An emulated
 *       manager writes the merged rules to the directory's "devices.bpf"
 *       instead (one "c 1:3 rwm" line each).
 * EOPNOTSUPP when the kernel offers no way: a v1 host without the devices
 * controller, a kernel without bpf(2); the caller decides. EINVAL for a
 * malformed rule or more than CG_DEVICE_RULES_MAX. Other failures to load
 * or attach are EIO or bpf(2)'s errno, the message naming the cgroup (and
 * carrying the verifier's last words when it refused the program). */
int cg_group_allow_devices(const struct cg_group *g, const struct cg_device_rule *rules, size_t n,
			   struct husk_error *err);

/* ---- stats and events ------------------------------------------------- */

enum {
	CG_STAT_CPU = 1 << 0,	 /* cpu_usage_ns, cpu_user_ns, cpu_system_ns */
	CG_STAT_MEMORY = 1 << 1, /* memory_* */
	CG_STAT_PIDS = 1 << 2,	 /* pids_current */
	CG_STAT_OOM = 1 << 3,	 /* oom_kill_count */
	CG_STAT_CFS = 1 << 4,	 /* cpu_periods, cpu_throttled_* */
	CG_STAT_SWAP = 1 << 5,	 /* memory_swap */
};

struct cg_stats {
	int64_t timestamp_ns;		   /* wall clock when read */
	uint64_t cpu_usage_ns;		   /* cumulative, core-nanoseconds */
	uint64_t cpu_user_ns;		   /* ... of which user (v1: tick resolution) */
	uint64_t cpu_system_ns;		   /* ... and system */
	uint64_t cpu_periods;		   /* CFS enforcement periods elapsed */
	uint64_t cpu_throttled_periods;	   /* ... in which the group was throttled */
	uint64_t cpu_throttled_ns;	   /* time throttled */
	uint64_t memory_usage;		   /* bytes */
	uint64_t memory_working_set;	   /* usage - inactive_file, floored at 0 */
	uint64_t memory_rss;		   /* v1 total_rss, v2 anon */
	uint64_t memory_cache;		   /* v1 total_cache, v2 file */
	uint64_t memory_swap;		   /* v1 total_swap, v2 memory.swap.current */
	uint64_t memory_failcnt;	   /* v1 memory.failcnt, v2 memory.events max */
	uint64_t memory_max_usage;	   /* v1 max_usage_in_bytes, v2 memory.peak (0: unknown) */
	uint64_t memory_limit;		   /* bytes; 0 when unlimited */
	uint64_t memory_page_faults;	   /* pgfault */
	uint64_t memory_major_page_faults; /* pgmajfault */
	uint64_t pids_current;
	uint64_t oom_kill_count;
	unsigned valid; /* CG_STAT_* bits of the fields read */
};

/* Read usage counters (hierarchical: a pod's include its containers).
 * Missing controller files leave their fields 0 and their bit clear; a file
 * that exists but does not parse is EIO naming it. */
int cg_group_stats(const struct cg_group *g, struct cg_stats *ret, struct husk_error *err);

/* Number of OOM kills in the group and its descendants so far: memory.events
 * oom_kill (v2) or memory.oom_control oom_kill (v1). An OOM kill happened
 * when the count grew; 0 when the memory controller is absent. */
int cg_group_oom_kill_count(const struct cg_group *g, uint64_t *ret_count, struct husk_error *err);

/* Pids of all processes in the group and its descendants, in every
 * hierarchy, sorted and unique. *ret_pids is the caller's (may be NULL when
 * *ret_n is 0). */
int cg_group_pids(const struct cg_group *g, pid_t **ret_pids, size_t *ret_n,
		  struct husk_error *err);
/* The same from the first hierarchy alone, where husk places every
 * process too: enough to count them (stats), not to kill them all (a
 * process could have been moved in one v1 hierarchy only). */
int cg_group_pids_first(const struct cg_group *g, pid_t **ret_pids, size_t *ret_n,
			struct husk_error *err);

/* SIGKILL every process in the group and its descendants and wait until
 * none is left: cgroup.kill on v2 when the kernel has it; otherwise rounds
 * of SIGKILL of each pid listed (frozen from the second round on). Between
 * rounds it waits on pidfds of the processes listed, for their exits, up to
 * 5-50 ms. timeout_ms <= 0 means 5000.
 * ETIMEDOUT when processes remain (zombies are not listed by the kernel, so
 * the caller need not have reaped its children). */
int cg_group_kill(const struct cg_group *g, int timeout_ms, struct husk_error *err);

/* Remove the directories this group created, deepest first: the group's own
 * directory with any descendant cgroups, then created parents until one is
 * still in use (not an error). EBUSY is retried for about a second, then
 * returned; a failing hierarchy does not stop the others (the first error
 * is returned). Directories husk did not create are never removed; a
 * missing directory is success, so remove may run twice.
 * Note: a parent created by one group and shared by a sibling created later
 * outlives both (the sibling found it existing); see
 * cg_manager_remove_empty for husk's own parents. */
int cg_group_remove(struct cg_group *g, struct husk_error *err);

/* rmdir path in every hierarchy when it is empty: no processes, no child
 * cgroups. In use or missing is success. Meant for parents that are husk's
 * by name (the defaults "husk" and "husk.slice" of cg_manager_pod_path),
 * after removing a pod. EINVAL for a bad path. */
int cg_manager_remove_empty(struct cg_manager *m, const char *path, struct husk_error *err);

#endif
