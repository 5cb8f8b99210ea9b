/* The kernel's view of a container's process, read from /proc the way an
 * operator checks it (readlink /proc/PID/ns/TYPE, /proc/PID/cgroup,
 * /proc/PID/status, /proc/PID/attr), for verbose ContainerStatus and
 * PodSandboxStatus. JSON text out; no protobuf. */
#ifndef HUSK_RUNTIME_KVIEW_H
#define HUSK_RUNTIME_KVIEW_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* The namespace types of /proc/PID/ns, in the order the view lists them. */
enum {
	CTR_KVIEW_NS_CGROUP,
	CTR_KVIEW_NS_IPC,
	CTR_KVIEW_NS_MNT,
	CTR_KVIEW_NS_NET,
	CTR_KVIEW_NS_PID,
	CTR_KVIEW_NS_TIME,
	CTR_KVIEW_NS_USER,
	CTR_KVIEW_NS_UTS,
	CTR_KVIEW_N_NS
};

/* "cgroup", "ipc", ... as /proc/PID/ns names them. */
const char *ctr_kview_ns_name(int type);

/* The fields of /proc/PID/status the view shows. */
struct ctr_kview_status {
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;    /* 0 or 1; -1: not in the text */
	int seccomp;	     /* 0 disabled, 1 strict, 2 filter; -1: not in the text */
	int seccomp_filters; /* -1: not in the text (kernels before 5.9) */
	long long uid[4];    /* real, effective, saved, filesystem */
	long long gid[4];
	long long *groups; /* supplementary groups */
	size_t n_groups;
};
void ctr_kview_status_clear(struct ctr_kview_status *s);

/* Parse the text of /proc/PID/status. EINVAL naming the line when a field
 * the view needs (the Cap*, Uid and Gid lines) is missing or malformed. */
int ctr_kview_parse_status(const char *text, struct ctr_kview_status *ret, struct husk_error *err);

/* The names of the capabilities in mask as `capsh --decode` lists them
 * (upper case, CAP_ prefix), in number order; a bit husk has no name for
 * is given as its number ("41"), as capsh does. Caller frees (strv_free). */
char **ctr_kview_cap_names(uint64_t mask);

/* "disabled", "strict" or "filter" for /proc/PID/status's Seccomp value;
 * "unknown" otherwise. */
const char *ctr_kview_seccomp_mode(int seccomp);

/* What a process's namespaces are compared with: the pod's own (the
 * inodes of its namespace pins; 0 where the pod has none of that type)
 * and the host's (huskd's own, /proc/self/ns). */
struct ctr_kview_refs {
	ino_t pod[CTR_KVIEW_N_NS];
	ino_t host[CTR_KVIEW_N_NS];
	int cgroup_version; /* 1 or 2: the hierarchy husk manages */
	bool apparmor, selinux;
};

/* Fill refs: pod_pins[type] is the pod's pin of that namespace type or
 * NULL. Never fails: what cannot be read stays 0 (matches nothing). */
void ctr_kview_refs_init(struct ctr_kview_refs *refs, const char *const pod_pins[CTR_KVIEW_N_NS],
			 int cgroup_version);

/* The view of pid as one JSON object (text the caller frees): readAt,
 * pid, namespaces (link as readlink prints it, sharedWith pod, host or
 * none), cgroupVersion and cgroups (the lines of /proc/PID/cgroup),
 * capabilities (the five sets, hex and names), noNewPrivs, seccomp (mode,
 * filters), uids, gids, groups, and the AppArmor and SELinux labels when
 * those are enabled. pid must still be the process that started at
 * start_time (checked before and after the reads): ESRCH when it is gone
 * or was replaced. */
int ctr_kview_process_json(pid_t pid, unsigned long long start_time,
			   const struct ctr_kview_refs *refs, char **ret_json,
			   struct husk_error *err);

/* ns since the epoch as RFC 3339 UTC with nanoseconds. Caller frees. */
char *ctr_kview_time(long long ns);

/* "net:[4026532305]" for the namespace at path (a /proc/PID/ns link or a
 * pin), as readlink prints it; NULL when it cannot be read. */
char *ctr_kview_ns_link(const char *path, int type);

#endif
