/* Seccomp for containers: husk's built-in RuntimeDefault profile (the
 * syscall allow-list Docker and containerd use, default action EPERM), a
 * loader for Localhost profiles in the OCI / Docker JSON format, their
 * compilation with libseccomp to a BPF program (runtime/seccomp.c), and
 * the filter file and installation (runtime/seccomp_bpf.c). */
#ifndef HUSK_RUNTIME_SECCOMP_H
#define HUSK_RUNTIME_SECCOMP_H

#include <stdint.h>
#include <yajl/yajl_gen.h>

#include "common/error.h"

/* Limits on what a Localhost profile may hold. */
#define LC_SECCOMP_MAX_FILE (4u << 20)
#define LC_SECCOMP_MAX_RULES 4096
#define LC_SECCOMP_MAX_NAMES 4096
#define LC_SECCOMP_MAX_ARCHES 16

enum lc_seccomp_mode {
	LC_SECCOMP_UNCONFINED = 0,
	LC_SECCOMP_RUNTIME_DEFAULT,
	LC_SECCOMP_LOCALHOST,
};

/* One argument comparison; op is a libseccomp enum scmp_compare value. */
struct lc_seccomp_arg {
	unsigned index;
	uint64_t value;
	uint64_t value_two;
	int op;
};

/* A rule applies action (an SCMP_ACT_* value, errno included) to the
 * syscalls in names, when all of args match (args with a repeated index
 * are or-ed, as runc does). The Docker "includes"/"excludes" conditions
 * decide at compile time whether the rule is used at all: caps_all (every
 * one of them in the container's bounding set), caps_none (none of them),
 * arches / not_arches (Docker arch names: "amd64", "x86", "arm64", ...) and
 * min_kernel ("4.8"). */
struct lc_seccomp_rule {
	char **names;
	uint32_t action;
	struct lc_seccomp_arg *args;
	size_t n_args;
	uint64_t caps_all;
	uint64_t caps_none;
	char **arches;
	char **not_arches;
	char *min_kernel;
};

struct lc_seccomp_profile {
	uint32_t default_action;
	uint32_t arches[LC_SECCOMP_MAX_ARCHES]; /* SCMP_ARCH_* tokens */
	size_t n_arches;			/* 0: the native one only */
	unsigned flags;				/* SECCOMP_FILTER_FLAG_* */
	struct lc_seccomp_rule *rules;
	size_t n_rules;
};

void lc_seccomp_profile_free(struct lc_seccomp_profile *p);
static inline void lc_seccomp_profile_freep(struct lc_seccomp_profile **p)
{
	lc_seccomp_profile_free(*p);
}

/* Husk's RuntimeDefault profile (owned by the caller). Capability
 * conditioned rules (mount with CAP_SYS_ADMIN, ...) are resolved by
 * lc_seccomp_compile against the container's bounding set. */
struct lc_seccomp_profile *lc_seccomp_runtime_default(void);

/* Parse a profile in the OCI (linux.seccomp) or Docker format:
 * defaultAction, defaultErrnoRet, architectures or archMap, flags, and
 * syscalls[] with name or names, action, errnoRet, args[] (index, value,
 * valueTwo, op), includes/excludes. what names the source in errors. Errors
 * are EINVAL and locate the problem: "seccomp profile '/p.json':
 * syscalls[3].action: unknown action 'SCMP_ACT_FOO'" or, for bad JSON,
 * "... invalid JSON at byte 120: ...". */
int lc_seccomp_parse(const char *text, size_t len, const char *what,
		     struct lc_seccomp_profile **ret, struct husk_error *err);

/* Read and parse a Localhost profile file: ENOENT "seccomp profile
 * '/x.json': No such file or directory" when missing. */
int lc_seccomp_parse_file(const char *path, struct lc_seccomp_profile **ret,
			  struct husk_error *err);

/* A compiled filter, ready for lc_seccomp_install. */
struct lc_seccomp_bpf {
	void *insns; /* struct sock_filter[] */
	unsigned short len;
	unsigned flags;
};
void lc_seccomp_bpf_free(struct lc_seccomp_bpf *b);
static inline void lc_seccomp_bpf_freep(struct lc_seccomp_bpf **b)
{
	lc_seccomp_bpf_free(*b);
}

/* Build the BPF program for profile, resolving rule conditions against
 * caps (the container's bounding set) and the running kernel. Syscall names
 * libseccomp does not know are skipped, as Docker does. EINVAL when
 * libseccomp refuses a rule (the message names it). */
int lc_seccomp_compile(const struct lc_seccomp_profile *profile, uint64_t caps,
		       struct lc_seccomp_bpf **ret, struct husk_error *err);

/* Write profile as the OCI runtime-spec's linux.seccomp object (one map
 * into g): defaultAction and defaultErrnoRet, architectures (the native one
 * when the profile names none), flags, and syscalls with names, action,
 * errnoRet and args. Rule conditions (capabilities, arches, kernel) are
 * resolved against caps and the running kernel as lc_seccomp_compile
 * resolves them, so an OCI runtime gets the same rules. */
void lc_seccomp_gen_oci(yajl_gen g, const struct lc_seccomp_profile *profile, uint64_t caps);

/* The rest (runtime/seccomp_bpf.c) does not need libseccomp. */

/* Install the filter on the calling thread with seccomp(2). Needs
 * no_new_privs or CAP_SYS_ADMIN. Only makes the syscall; returns 0 or
 * -errno. */
int lc_seccomp_install(const struct lc_seccomp_bpf *b);

/* The filter file: huskd compiles the profile when the container is
 * created (where a bad profile must be refused) and the shim only reads
 * and installs it. Written atomically, mode 0600. Reading: ENOENT when
 * missing, EINVAL when it is not a husk filter file. */
int lc_seccomp_bpf_write(const struct lc_seccomp_bpf *b, const char *path, struct husk_error *err);
int lc_seccomp_bpf_read(const char *path, struct lc_seccomp_bpf **ret, struct husk_error *err);

/* CRI's deprecated seccomp_profile_path: "" and "unconfined" are
 * UNCONFINED, "runtime/default" (and Docker's "docker/default") are
 * RUNTIME_DEFAULT, "localhost/<absolute path>" is LOCALHOST with *ret_path
 * pointing at the path inside s. EINVAL naming field for anything else. */
int lc_seccomp_parse_path(const char *s, const char *field, int *ret_mode, const char **ret_path,
			  struct husk_error *err);

/* "runtime_default", "unconfined", "localhost" and back; -1 / NULL when
 * unknown. */
int lc_seccomp_mode_parse(const char *s);
const char *lc_seccomp_mode_name(int mode);

#endif
