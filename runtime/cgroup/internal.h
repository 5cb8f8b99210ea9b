/* Internals shared by the cgroup library's files: the manager and group
 * structs, the v1/v2 operation table and the naming table, small file
 * helpers and the v2 device filter. Not for use outside runtime/cgroup*.c
 * (and their unit tests). */
#ifndef HUSK_RUNTIME_CGROUP_INTERNAL_H
#define HUSK_RUNTIME_CGROUP_INTERNAL_H

#include "runtime/cgroup/cgroup.h"

/* Controllers husk knows, as bits. */
enum {
	CG_C_CPU = 1 << 0,
	CG_C_CPUACCT = 1 << 1,
	CG_C_CPUSET = 1 << 2,
	CG_C_MEMORY = 1 << 3,
	CG_C_PIDS = 1 << 4,
	CG_C_HUGETLB = 1 << 5,
	CG_C_FREEZER = 1 << 6,
	CG_C_DEVICES = 1 << 7,
	CG_C_BLKIO = 1 << 8,
	CG_C_IO = 1 << 9,
};

/* Controllers per version that husk places its cgroups in. */
#define CG_V1_USED                                                                        \
	(CG_C_CPU | CG_C_CPUACCT | CG_C_CPUSET | CG_C_MEMORY | CG_C_PIDS | CG_C_HUGETLB | \
	 CG_C_FREEZER | CG_C_DEVICES | CG_C_BLKIO)
#define CG_V2_USED (CG_C_CPU | CG_C_CPUSET | CG_C_MEMORY | CG_C_PIDS | CG_C_HUGETLB | CG_C_IO)

/* Bit of a controller name, 0 when unknown. */
unsigned cg_controller_bit(const char *name);
/* Space-separated names of the bits in mask, "+"-prefixed when plus. */
char *cg_controller_names(unsigned mask, bool plus);

/* One hierarchy: a v1 mount (one or more controllers) or the v2 root. */
struct cg_hier {
	char *name;	      /* "memory", "cpu,cpuacct", "unified" */
	char *mount;	      /* absolute directory */
	unsigned controllers; /* CG_C_* bits husk uses in it */
};

struct cg_manager;
struct cg_group;

/* What differs between cgroup v1 and v2. */
struct cg_ops {
	enum cg_version version;
	/* Called top-down for every level of a new group, root first (dir is
	 * the level's directory, created says whether this call made it,
	 * leaf whether it is the group's own directory). */
	int (*prepare_level)(const struct cg_manager *m, const struct cg_hier *h, const char *dir,
			     bool created, bool leaf, struct husk_error *err);
	int (*set)(const struct cg_group *g, const struct cg_resources *r, struct husk_error *err);
	int (*get)(const struct cg_group *g, struct cg_resources *ret, struct husk_error *err);
	int (*stats)(const struct cg_group *g, struct cg_stats *ret, struct husk_error *err);
	int (*oom_kill_count)(const struct cg_group *g, uint64_t *ret, struct husk_error *err);
	/* Kill everything in one step when the kernel can: > 0 done, 0 not
	 * supported, < 0 error. */
	int (*kill_all)(const struct cg_group *g, struct husk_error *err);
	/* Whether any task is in the group or beneath it, from the one file
	 * the kernel keeps the count in (v2: cgroup.events "populated"; v1:
	 * the pids controller's hierarchical pids.current, which still counts
	 * an exited task until it is reaped): 1 yes, 0 no, -1 unknown (no such
	 * file), when only a listing can tell. */
	int (*populated)(const struct cg_group *g);
	/* Freeze or thaw (best effort: waits a bounded time for the state). */
	int (*freeze)(const struct cg_group *g, bool frozen, struct husk_error *err);
	/* cg_group_allow_devices with rules already checked. */
	int (*allow_devices)(const struct cg_group *g, const struct cg_device_rule *rules, size_t n,
			     struct husk_error *err);
};

extern const struct cg_ops cg_v1_ops;
extern const struct cg_ops cg_v2_ops;

/* What differs between the cgroupfs and systemd drivers. */
struct cg_naming {
	enum cg_driver driver;
	const char *name;
	/* dflt: the parent of pods whose request names none (cgroupfs: a
	 * path; systemd: a slice name); never NULL. */
	int (*pod_path)(const char *parent, const char *dflt, const char *pod_id, char **ret,
			struct husk_error *err);
	const char *default_parent; /* "husk", "husk.slice" */
	int (*container_path)(const char *pod_path, const char *ctr_id, char **ret,
			      struct husk_error *err);
};

extern const struct cg_naming cg_naming_cgroupfs;
extern const struct cg_naming cg_naming_systemd;

struct cg_bus;

struct cg_manager {
	char *base;
	char *hugepages_dir; /* the kernel's pools (cg_options.hugepages_dir) */
	enum cg_version version;
	bool emulated;
	struct cg_hier *hiers; /* v2: exactly one */
	size_t n_hiers;
	unsigned controllers; /* all CG_C_* bits available and used */
	const struct cg_ops *ops;
	const struct cg_naming *naming;
	char *pod_parent; /* cg_options.pod_parent, or the naming's default */
	/* systemd driver on a real hierarchy: the D-Bus connection to
	 * systemd and its calls (systemd.c); NULL otherwise. */
	struct cg_bus *bus;
	const struct cg_bus_ops *bus_ops;
};

struct cg_group {
	struct cg_manager *m; /* borrowed */
	char *path;	      /* normalised, relative */
	int *created;	      /* per hierarchy: trailing components husk created */
};

/* ---- the systemd driver's D-Bus half (systemd.c) ---- */

/* Reached through this table (cg_manager.bus_ops), like the v1/v2 tables:
 * the driver is built on the core and the core never calls up into it. */
struct cg_bus_ops {
	/* Connect to systemd (system bus, else /run/systemd/private), check
	 * it answers and subscribe to job results. EHOSTDOWN with a message
	 * naming both ways tried when systemd is not reachable. */
	int (*connect)(struct cg_manager *m, struct husk_error *err);
	void (*disconnect)(struct cg_manager *m); /* NULL bus is fine */
	/* StartTransientUnit for the unit g's leaf names: a ".slice" empty
	 * (pid 0), a ".scope" with pid, Delegate=yes when delegate, and the
	 * resources in force read back from the cgroup, in the slice of its
	 * parent component. Waits for the job; a result other than "done" is
	 * EIO naming it, as are systemd's errors (its message quoted). */
	int (*start)(const struct cg_group *g, pid_t pid, bool delegate, struct husk_error *err);
	/* SetUnitProperties (runtime) with the set fields of res; a unit not
	 * started yet is no error. */
	int (*set)(const struct cg_group *g, const struct cg_resources *res,
		   struct husk_error *err);
	/* StopUnit and wait; a unit already gone is success; failed ones are
	 * reset. */
	int (*stop)(const struct cg_group *g, struct husk_error *err);
};

extern const struct cg_bus_ops cg_systemd_bus_ops;

/* One unit property of a resource: a u64 ('t') or a byte mask ('y'). */
#define CG_UNIT_PROPS_MAX 16
struct cg_unit_prop {
	const char *name; /* "CPUShares", "IOWeight", "AllowedCPUs", ... */
	char type;
	uint64_t u64;
	uint8_t mask[128];
	size_t n_mask;
};
/* The set fields of r as systemd unit properties with version's names
 * (CPUWeight or CPUShares, MemoryMax or MemoryLimit, IOWeight or
 * BlockIOWeight, ...). io_weight (0: none) is the weight in force; a v2
 * unified "io.weight" in r overrides it. EINVAL for a bad cpuset list.
 * (systemd.c; pure, for the unit tests.) */
int cg_systemd_props(enum cg_version version, const struct cg_resources *r, uint64_t io_weight,
		     struct cg_unit_prop ret[CG_UNIT_PROPS_MAX], size_t *ret_n);

/* Hierarchy holding controller bit c, NULL when none. */
const struct cg_hier *cg_hier_for(const struct cg_manager *m, unsigned c);
/* "<mount>/<path>" of g in h. */
char *cg_group_hier_dir(const struct cg_group *g, const struct cg_hier *h);
/* Directory of g for controller bit c (v2: the unified one), NULL if absent. */
char *cg_group_dir_bit(const struct cg_group *g, unsigned c);

/* Normalise a relative cgroup path into *ret; EINVAL when malformed. */
int cg_path_normalize(const char *path, char **ret, struct husk_error *err);
/* True for a name usable as one path component. */
bool cg_component_valid(const char *s, size_t len);

/* Files. Reads are bounded; a missing file is ENOENT. */
#define CG_READ_MAX (1u << 20)
#define CG_PROCS_READ_MAX (32u << 20)
int cg_read(const char *dir, const char *file, char **ret, struct husk_error *err);
/* Read a file and strip trailing whitespace. */
int cg_read_line(const char *dir, const char *file, char **ret, struct husk_error *err);
/* One write(2) of value to dir/file (created when the manager is emulated).
 * Error message: "write '<path>' value '<value>': <strerror>". */
int cg_write(const struct cg_manager *m, const char *dir, const char *file, const char *value,
	     struct husk_error *err);
/* cg_write for cg_group_set: errors the kernel gives for refused values
 * (and a missing file) become EINVAL. */
int cg_write_limit(const struct cg_manager *m, const char *dir, const char *file, const char *value,
		   struct husk_error *err);
bool cg_file_exists(const char *dir, const char *file);

/* Parsing. */
/* Unsigned decimal of the whole (trimmed) string. */
int cg_parse_u64(const char *s, uint64_t *ret);
/* Value of "key value" lines in buf; -ENOENT if absent, -EINVAL if bad. */
int cg_parse_keyed(const char *buf, const char *key, uint64_t *ret);
/* Read a single unsigned number, or "max" (ret CG_MAX) when allow_max. */
int cg_read_num(const char *dir, const char *file, bool allow_max, int64_t *ret,
		struct husk_error *err);

/* For stats: read key from dir/file (key NULL: the file is one number).
 * 1 found, 0 when the file or key is missing, < 0 (EIO naming the file)
 * when it does not parse. dir NULL counts as missing. */
int cg_stat_value(const char *dir, const char *file, const char *key, uint64_t *ret,
		  struct husk_error *err);
/* For get: cg_read_num into *field, leaving it alone when the file is
 * missing. dir NULL counts as missing. */
int cg_get_num(const char *dir, const char *file, bool allow_max, int64_t *field,
	       struct husk_error *err);
/* For get: the trimmed file into *field (NULL when empty or missing). */
int cg_get_str(const char *dir, const char *file, char **field, struct husk_error *err);
/* "hugetlb.<size>.<suffix>" names in dir, sizes only, sorted. */
int cg_hugepage_sizes(const char *dir, const char *suffix, char ***ret, struct husk_error *err);
/* An error for a controller husk needs but the host lacks (EINVAL). */
int cg_need_dir(const struct cg_group *g, unsigned bit, const char *what, char **ret_dir,
		struct husk_error *err);

/* The writes v1 and v2 share: cpuset.cpus/mems, pids.max and the hugetlb
 * limits, whose file names ("hugetlb.%s.limit_in_bytes" / "hugetlb.%s.max",
 * with a reserved twin) and spelling of "no limit" (fmt) differ. */
struct cg_hugetlb_names {
	const char *limit; /* printf format taking the page size */
	const char *rsvd;
	char *(*fmt)(int64_t value);
};
int cg_set_shared(const struct cg_group *g, const struct cg_resources *r,
		  const struct cg_hugetlb_names *huge, struct husk_error *err);

/* Validate a hugepage size name ("2MB"). */
bool cg_hugepage_size_valid(const char *s);
/* The hugepage limits of r on a host without the hugetlb controller: 0 when
 * each is 0 and the pool of its size is empty or missing (nothing can be
 * allocated), else EINVAL naming the size. */
int cg_hugepages_without_controller(const struct cg_manager *m, const struct cg_resources *r,
				    struct husk_error *err);

/* Conversions between v1 cpu.shares and v2 cpu.weight. */
uint64_t cg_shares_to_weight(uint64_t shares);
uint64_t cg_weight_to_shares(uint64_t weight);

/* ---- device rules and the v2 device filter (bpf.c) ---- */

struct bpf_insn;

/* Device programs one cgroup may hold directly before husk gives up. */
#define CG_BPF_ATTACHED_MAX 64
/* What an emulated v2 group records instead of loading a program. */
#define CG_BPF_EMULATED_FILE "devices.bpf"

/* BPF_DEVCG_ACC_* bits (the same as v1's) of an access string. */
unsigned cg_device_access_bits(const char *access);
/* "c 1:3 rwm", "b *:* m": a rule as v1's devices.allow and devices.list
 * spell it. */
void cg_device_rule_format(const struct cg_device_rule *r, char *buf, size_t len);
/* The rules as v1 keeps them: rules of the same type, major and minor
 * become one whose access is the union (in "rwm" order), first one's
 * place kept. Returns the count; *ret (at least one element) is the
 * caller's. */
size_t cg_device_rules_merge(const struct cg_device_rule *rules, size_t n,
			     struct cg_device_rule **ret);
/* The BPF_PROG_TYPE_CGROUP_DEVICE program for merged rules: returns 1
 * (allow) when one rule has the device's type (or 'a'), major and minor
 * (or -1) and every access bit asked for, else 0. Returns the instruction
 * count; *ret is the caller's. Never fails. */
size_t cg_bpf_devices_program(const struct cg_device_rule *rules, size_t n, struct bpf_insn **ret);
/* Load a device program. EOPNOTSUPP when the kernel has no bpf(2); EIO
 * otherwise, with strerror and the end of the verifier's log. *ret_fd is
 * the caller's (close-on-exec). */
int cg_bpf_devices_load(const struct bpf_insn *insns, size_t n, int *ret_fd,
			struct husk_error *err);
/* Attach prog_fd to the cgroup directory dir (BPF_F_ALLOW_MULTI), then
 * detach every device program attached there before. errno of bpf(2),
 * naming dir. */
int cg_bpf_devices_attach(const char *dir, int prog_fd, struct husk_error *err);
/* Ids of the device programs attached directly to dir. *ret_ids is the
 * caller's. */
int cg_bpf_devices_attached(const char *dir, uint32_t **ret_ids, size_t *ret_n,
			    struct husk_error *err);
/* Merge, compile, load and attach rules to dir; on an emulated manager
 * only write the merged rules, one a line, to dir/CG_BPF_EMULATED_FILE. */
int cg_bpf_devices_apply(const struct cg_manager *m, const char *dir,
			 const struct cg_device_rule *rules, size_t n, struct husk_error *err);

#endif
