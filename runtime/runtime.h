/* The pod and container manager: ties the state records, pod sandboxes,
 * cgroups and the launcher/shim into the lifecycle CRI asks for. The
 * server translates CRI messages into these structs; nothing here knows
 * protobuf. All functions are thread-safe: operations on one pod or one
 * container are serialised, different objects proceed in parallel. */
#ifndef HUSK_RUNTIME_RUNTIME_H
#define HUSK_RUNTIME_RUNTIME_H

#include "common/cancel.h"
#include "common/error.h"
#include "runtime/cgroup/cgroup.h"
#include "runtime/sandbox.h"
#include "runtime/state/state.h"

/* Container lifecycle events, values as CRI's ContainerEventType. */
enum rt_event { RT_EVENT_CREATED, RT_EVENT_STARTED, RT_EVENT_STOPPED, RT_EVENT_DELETED };

struct rt_pod_config;

struct rt_options {
	const char *root;  /* persistent data (default /var/lib/husk) */
	const char *state; /* runtime state (default /run/husk) */
	enum cg_driver cgroup_driver;
	const char *cgroup_base;       /* NULL: /sys/fs/cgroup */
	const char *pod_cgroup_parent; /* NULL or "": husk's default (cg_options.pod_parent) */
	const char *shim_path;	       /* the husk-shim binary */
	/* The init of pods sharing one PID namespace (husk-pause); NULL: a
	 * fork of huskd does the same job, holding a copy of its memory. */
	const char *pause_path;
	long long pids_limit; /* for every container; 0: none */
	/* Called after each container lifecycle change (any thread). */
	void (*on_event)(void *data, enum rt_event ev, const char *ctr_id, const char *pod_id);
	/* Root file systems come from the image layer: make_rootfs mounts
	 * image's layers for container ctr_id and returns the mount point;
	 * with userns (the pin of a pod's user namespace; NULL: none) the
	 * layers are idmapped with its mapping. release_rootfs undoes it (an
	 * unknown id is success). */
	int (*make_rootfs)(void *data, const char *ctr_id, const char *image, bool readonly,
			   const char *userns, char **ret_path, struct husk_error *err);
	int (*release_rootfs)(void *data, const char *ctr_id, struct husk_error *err);
	/* Mount the rootfs of ctr_id again when it is not mounted (a reboot
	 * with the state kept, someone's umount), as make_rootfs made it,
	 * idmapping included; called by StartContainer. NULL: not done. */
	int (*remount_rootfs)(void *data, const char *ctr_id, struct husk_error *err);
	/* Pod networking (CNI): net_setup runs for a pod with its own network
	 * namespace after the namespace exists and before the pod is recorded;
	 * on success *ret_ips (NULL-terminated, caller frees; may be empty)
	 * are the pod's addresses, the first one primary. net_teardown must be
	 * idempotent and work after a huskd restart (keep what ADD returned
	 * on disk); it runs at StopPodSandbox, at RemovePodSandbox and when
	 * RunPodSandbox fails after net_setup. net_setup gives up (ECANCELED,
	 * nothing left) once cancel says so: a Stop or Remove of the pod came
	 * while it ran. NULL hooks: no pod network. */
	int (*net_setup)(void *data, const char *pod_id, const char *netns,
			 const struct rt_pod_config *cfg, const struct husk_cancel *cancel,
			 char ***ret_ips, struct husk_error *err);
	int (*net_teardown)(void *data, const char *pod_id, const char *netns,
			    struct husk_error *err);
	void *data;
	/* Seconds the result of a RunPodSandbox or CreateContainer is kept
	 * for a retry of its identity (0: RT_KEEP_PERIOD_DEFAULT); one whose
	 * caller had gone and that no retry collected is removed then (a
	 * CreateContainer in such a pod, a StartContainer of such a container
	 * count as collecting it). */
	long long keep_period_s;
	/* Tests only: while this file exists, CreateContainer waits (up to
	 * RT_TEST_HOLD_MAX_S) after reserving its identity, as a slow image
	 * unpack would. NULL: never. */
	const char *test_create_hold;
	/* Tests only: how many of the 64 lock stripes ids hash to
	 * (1: every pod and container shares one); 0: all of them. */
	unsigned test_stripes;
	/* No template mount namespace: husk's launcher copies the caller's
	 * namespace for each container, as before (for A/B measurements;
	 * HUSK_MOUNT_TEMPLATE=off). */
	bool no_mount_template;
};

#define RT_KEEP_PERIOD_DEFAULT 300
/* At most this many results are kept; beyond it the oldest is let go. */
#define RT_KEEP_MAX 1024
#define RT_TEST_HOLD_MAX_S 120

struct rt;

/* Open the manager: detect the cgroup hierarchy, load the records under
 * <state>/records, and reconcile them with the kernel (sandboxes whose pins
 * are gone become NOTREADY; sandboxes without a record, left by a crash in
 * the middle of RunPodSandbox, are destroyed). Problems found on the way are
 * logged. */
int rt_open(const struct rt_options *opts, struct rt **ret, struct husk_error *err);
void rt_free(struct rt *rt);

enum cg_version rt_cgroup_version(const struct rt *rt);

/* ---- pods ---- */

/* PortMapping of CRI: protocol "TCP", "UDP" or "SCTP"; host_ip "" for any. */
struct rt_port_mapping {
	const char *protocol;
	int container_port;
	int host_port;
	const char *host_ip;
};

struct rt_pod_config {
	const char *name, *uid, *namespace; /* metadata; name is required */
	unsigned attempt;
	const char *hostname;
	const char *log_directory;
	const char *runtime_handler;
	const char *cgroup_parent;
	const struct state_map *labels, *annotations;
	enum pod_ns_mode net, ipc, pid; /* POD or NODE (pid also CONTAINER) */
	const struct pod_sysctl *sysctls;
	size_t n_sysctls;
	char *const *dns_servers, *const *dns_searches, *const *dns_options;
	const struct rt_port_mapping *port_mappings;
	size_t n_port_mappings;
	/* LinuxSandboxSecurityContext.privileged: only such a pod may hold
	 * privileged containers. */
	bool privileged;
	/* NamespaceOption.userns_options mode POD: a user namespace of the
	 * pod's own with these mappings (see pod_sandbox_spec); refused with
	 * privileged. false: the host's. */
	bool userns;
	const struct pod_idmap *uid_map, *gid_map;
	size_t n_uid_map, n_gid_map;
	/* Limits of the pod cgroup (the server folds CRI's resources and
	 * overhead into one); NULL: none. */
	const struct cg_resources *resources;
	/* The whole config in one opaque string (the server hashes the
	 * request): a retry is the same call when its digest is equal. */
	const char *digest;
};

/* Create and start a pod sandbox. On success *ret_id is the new id (caller
 * frees). The identity (name, namespace, uid, attempt) is reserved while
 * it runs and its result kept for keep_period_s: a call with the same
 * identity and digest waits for a running one (within cancel: ETIMEDOUT
 * or ECANCELED) and gets the same id, and so does one that comes later
 * when the first call's caller had gone. cancel is the caller's: the
 * creation goes on when it has gone, and the pod is then removed unless a
 * retry collects it in time (see keep.h). Errors: EINVAL (names the
 * field), EEXIST (a pod with the same metadata exists and its caller had
 * it, or it exists or is being created with another digest; the message
 * names it), ECANCELED (a Stop or Remove of its id came during the
 * creation), and those of pod_sandbox_create and cg_group_create. A
 * failure leaves nothing behind. */
int rt_pod_run(struct rt *rt, const struct rt_pod_config *cfg, const struct husk_cancel *cancel,
	       char **ret_id, struct husk_error *err);

/* Stop every container of the pod (SIGKILL) and mark it NOTREADY.
 * Idempotent. ENOENT for an unknown pod. A pod still being created is
 * told to give up (it rolls back at its next step) and waited for, within
 * cancel; nothing is left of it then, and that is success. */
int rt_pod_stop(struct rt *rt, const char *ref, const struct husk_cancel *cancel,
		struct husk_error *err);

/* Stop and remove the pod's containers, tear down the sandbox and its cgroup,
 * and forget the pod. An unknown pod is success; one still being created
 * is handled as rt_pod_stop does. */
int rt_pod_remove(struct rt *rt, const char *ref, const struct husk_cancel *cancel,
		  struct husk_error *err);

/* A copy of the pod's record. ENOENT when unknown, EINVAL for an ambiguous
 * prefix. */
int rt_pod_get(struct rt *rt, const char *ref, struct pod_record **ret, struct husk_error *err);

/* The pods matching f (NULL: all), oldest first: the store's records,
 * shared and read-only, released with pod_records_release
 * (runtime/state/state.h says why they stay valid). */
int rt_pod_list(struct rt *rt, const struct pod_filter *f, const struct pod_record ***ret,
		size_t *ret_n, struct husk_error *err);

/* Usage counters of the pod's cgroup (containers included). */
/* The kernel's view of the pod as JSON text the caller frees: readAt, its
 * namespaces (link as readlink prints it, pin path, sharedWith pod or
 * host), the PID-namespace init's pid, cgroupVersion and cgroup (path and
 * the directory in each hierarchy), ips. Live while the pod is ready
 * (*ret_live true) and recorded at each read; the record once it is not.
 * ENOENT when no view was ever recorded. */
int rt_pod_kernel_view(struct rt *rt, const char *ref, char **ret_json, bool *ret_live,
		       struct husk_error *err);

int rt_pod_stats(struct rt *rt, const char *ref, struct cg_stats *ret, struct husk_error *err);

/* Write res to the pod's cgroup (UpdatePodSandboxResources). ENOENT for an
 * unknown pod, EBUSY when it is not ready, EINVAL (from cg_group_set) for
 * a value refused here or by the kernel. */
int rt_pod_update_resources(struct rt *rt, const char *ref, const struct cg_resources *res,
			    struct husk_error *err);

/* ---- containers ---- */

struct rt_mount {
	const char *container_path; /* absolute */
	const char *host_path;	    /* absolute, must exist */
	bool readonly;
	int propagation; /* CRI MountPropagation: 0 private, 1 rslave, 2 rshared */
};

struct rt_device {
	const char *container_path;
	const char *host_path;
	const char *permissions; /* "rwm" */
};

struct rt_ctr_config {
	const char *pod_id; /* full id or unique prefix */
	const char *name;   /* metadata.name, required */
	unsigned attempt;
	const char *image;     /* as asked */
	const char *image_id;  /* resolved, for make_rootfs */
	const char *image_ref; /* reported back */
	char *const *args;     /* final argv (entrypoint/cmd merged), required */
	char *const *env;      /* final environment */
	const char *cwd;       /* NULL or "": "/" */
	/* Who runs it: a uid (has_uid) or a user name, and optionally a gid;
	 * else the image's User string ("", "1002", "app", "1002:1002"). Names
	 * are resolved in the container's /etc/passwd and /etc/group. */
	bool has_uid;
	long long uid;
	const char *username;
	bool has_gid;
	long long gid;
	const char *image_user;
	const long long *supplemental_groups;
	size_t n_supplemental_groups;
	bool groups_strict; /* SupplementalGroupsPolicy Strict: no image groups */
	bool tty, stdin_open, stdin_once;
	const char *log_path; /* absolute; NULL: output is dropped */
	const struct rt_mount *mounts;
	size_t n_mounts;
	const struct rt_device *devices;
	size_t n_devices;
	const struct state_map *labels, *annotations;
	const char *stop_signal; /* "SIGTERM", "15", ...; NULL: SIGTERM */
	/* security */
	bool privileged; /* all capabilities, the host's devices, no seccomp,
			    no masked or read-only paths, writable /sys; the
			    pod must be privileged */
	char *const *caps_add, *const *caps_drop;
	char *const *caps_ambient; /* also added to every other set */
	bool no_new_privs;
	bool readonly_rootfs;
	int seccomp_mode; /* enum lc_seccomp_mode */
	const char *seccomp_profile;
	const char *apparmor_profile; /* a loaded profile; NULL: none */
	char *const *masked_paths;    /* NULL: the defaults; empty: none */
	char *const *readonly_paths;  /* NULL: the defaults; empty: none */
	enum pod_ns_mode pid_mode;    /* POD, CONTAINER, NODE or TARGET */
	const char *pid_target;	      /* TARGET: the container whose PID ns to join */
	/* resources */
	const struct cg_resources *resources; /* NULL: none */
	bool has_oom_score_adj;
	int oom_score_adj;  /* -1000..1000; below huskd's own it is clamped */
	const char *digest; /* as rt_pod_config's */
	/* The pod's RuntimeClass handler when it is an OCI runtime (runc,
	 * crun): husk-shim runs the container with it from config.json.
	 * NULL oci_path: husk's launcher. */
	const char *oci_path, *oci_root;
	char *const *oci_args;
	bool oci_systemd_cgroup;
};

/* Create a container in a READY pod: its cgroup, root file system, spec
 * and record. *ret_id is the new id. The identity (pod, name, attempt) is
 * reserved and its result kept as rt_pod_run does. Errors: ENOENT unknown
 * pod, EBUSY pod not ready, EEXIST same name and attempt in the pod with
 * another digest, EINVAL for a bad config (the message names the field: an
 * unknown capability, a malformed seccomp profile, a limit the cgroup
 * refuses, a privileged container in a pod that is not), ENOENT for a
 * missing seccomp profile, ECANCELED when a RemoveContainer of its id came
 * during the creation. Nothing is left on failure. */
int rt_ctr_create(struct rt *rt, const struct rt_ctr_config *cfg, const struct husk_cancel *cancel,
		  char **ret_id, struct husk_error *err);

/* Start a CREATED container through husk-shim. EBUSY when it is not in
 * CREATED state; a launch failure leaves the container EXITED with reason
 * StartError and returns the launcher's error. */
int rt_ctr_start(struct rt *rt, const char *ref, struct husk_error *err);

/* Send the stop signal, wait up to timeout_s, then SIGKILL. Idempotent. */
int rt_ctr_stop(struct rt *rt, const char *ref, long long timeout_s, struct husk_error *err);

/* Stop (forcibly) and forget the container. Unknown is success; one still
 * being created is told to give up and waited for, within cancel. */
int rt_ctr_remove(struct rt *rt, const char *ref, const struct husk_cancel *cancel,
		  struct husk_error *err);

/* A copy of the container's record, brought up to date with its shim. */
int rt_ctr_get(struct rt *rt, const char *ref, struct ctr_record **ret, struct husk_error *err);
/* The containers matching f, as rt_pod_list; release with
 * ctr_records_release. */
int rt_ctr_list(struct rt *rt, const struct ctr_filter *f, const struct ctr_record ***ret,
		size_t *ret_n, struct husk_error *err);

/* How many husk-shim processes of known containers are alive (a shim
 * outlives its container until the container is removed). Reads each
 * started container's shim pid file. */
unsigned rt_shims_running(struct rt *rt);

/* True when id (a full id) is a container the manager knows. */
bool rt_ctr_known(struct rt *rt, const char *id);

/* The container's launcher spec as read back from its config.json (or the
 * spec.json of an older huskd), for status: caller frees. */
struct ctr_spec;
int rt_ctr_spec(struct rt *rt, const char *ref, struct ctr_spec **ret, struct husk_error *err);
/* The container's OCI runtime-spec config (its bundle's config.json) as
 * JSON text, for verbose status. ENOENT for a container created before
 * husk wrote one. */
int rt_ctr_oci_config(struct rt *rt, const char *ref, char **ret, struct husk_error *err);

/* The kernel's view of the container's process (runtime/kview.h), as JSON
 * text the caller frees. Read live from /proc while the container runs
 * (*ret_live true) and recorded in its state dir at each read and at start;
 * once it has exited, the view last recorded (*ret_live false). ENOENT when
 * no view was ever recorded. */
int rt_ctr_kernel_view(struct rt *rt, const char *ref, char **ret_json, bool *ret_live,
		       struct husk_error *err);

/* Run cmd in the running container and capture its output (ExecSync).
 * timeout_s 0: none. ETIMEDOUT when the timeout killed it. */
struct rt_exec_result {
	int exit_code;
	char *out, *err_out;
	size_t out_len, err_len;
};
void rt_exec_result_clear(struct rt_exec_result *r);
int rt_ctr_exec_sync(struct rt *rt, const char *ref, char *const *cmd, long long timeout_s,
		     struct rt_exec_result *ret, struct husk_error *err);

int rt_ctr_stats(struct rt *rt, const char *ref, struct cg_stats *ret, struct husk_error *err);
int rt_ctr_reopen_log(struct rt *rt, const char *ref, struct husk_error *err);
/* Write res to the container's cgroup (UpdateContainerResources). EINVAL
 * from cg_group_set for a value refused here or by the kernel. */
int rt_ctr_update_resources(struct rt *rt, const char *ref, const struct cg_resources *res,
			    struct husk_error *err);
/* The resources in force in the container's cgroup (cg_resources_clear),
 * and its oom_score_adj: the running process's, else the one asked for
 * (*ret_has_oom false when neither is known). */
int rt_ctr_resources(struct rt *rt, const char *ref, struct cg_resources *ret, bool *ret_has_oom,
		     int *ret_oom, struct husk_error *err);

/* ---- metrics (runtime/metrics.c) ---- */

/* One interface of a pod's network namespace, as /proc/net/dev counts it. */
struct rt_net_iface {
	char name[32];
	uint64_t rx_bytes, rx_packets, rx_errors, rx_dropped;
	uint64_t tx_bytes, tx_packets, tx_errors, tx_dropped;
};
#define RT_NET_IFACES_MAX 256
#define RT_NET_DEV_MAX (1 << 20)
void rt_net_ifaces_free(struct rt_net_iface *v);
/* Parse /proc/net/dev text, leaving out lo. EIO for a malformed line, E2BIG
 * beyond RT_NET_IFACES_MAX interfaces. *ret is the caller's. */
int rt_net_dev_parse(const char *text, struct rt_net_iface **ret, size_t *ret_n,
		     struct husk_error *err);

/* The interfaces of pod ref's own network namespace, read from
 * /proc/PID/net/dev of a process in it (the pod's PID-namespace init, else
 * a running container's process) after checking that the process is the
 * recorded one and that its namespace is the pod's pin: nothing enters the
 * namespace. *ret_n 0 (and *ret NULL) when the pod shares the host's
 * network, is stopped, or has no process to read through. ENOENT for an
 * unknown pod. *ret is the caller's (rt_net_ifaces_free). */
int rt_pod_net_stats(struct rt *rt, const char *ref, struct rt_net_iface **ret, size_t *ret_n,
		     struct husk_error *err);

/* usage_nano_cores of object id (a pod or container) as cAdvisor has it:
 * the rate of its cumulative CPU time usage_ns between this sample and the
 * one before. Samples closer than 100 ms to the last one reuse its rate.
 * False at the first sample (and after the counter went back). */
bool rt_cpu_nano_cores(struct rt *rt, const char *id, uint64_t usage_ns, uint64_t *ret);

/* Processes, their threads and open fds in a container's (or a pod's, its
 * containers included) cgroup. */
struct rt_proc_stats {
	uint64_t processes, threads, fds;
};
int rt_ctr_proc_stats(struct rt *rt, const char *ref, struct rt_proc_stats *ret,
		      struct husk_error *err);
int rt_pod_proc_stats(struct rt *rt, const char *ref, struct rt_proc_stats *ret,
		      struct husk_error *err);

/* ---- streaming (Exec, Attach, PortForward; runtime/stream_exec.c) ---- */

/* A process started for a streaming Exec. Its stdio are fds the caller
 * owns: in (write end of its stdin, -1 unless asked), out and err (read
 * ends, -1 unless asked). With a tty, in and out are both the pty master
 * (dups of pty) and err is -1. pidfd becomes readable when it exits. */
struct rt_exec_proc {
	pid_t pid;
	int pidfd;
	int in, out, err;
	int pty;
	bool reaped;
	int exit_code; /* once reaped: 128 + signal when killed */
	/* An OCI handler's: pid is the runtime's exec, this the process it
	 * runs in the container (and its start time); 0 otherwise. */
	pid_t target;
	unsigned long long target_start;
};
#define RT_EXEC_PROC_INIT ((struct rt_exec_proc){0, -1, -1, -1, -1, -1, false, 0, 0, 0})

/* Start cmd in the running container ref as ExecSync runs it (all its
 * namespaces, cgroup, user, capabilities, seccomp), on a pty when tty.
 * EBUSY when the container is not running, ENOENT when unknown, and the
 * launcher's errors (ENOENT "exec 'x': No such file or directory"). */
int rt_ctr_exec_start(struct rt *rt, const char *ref, char *const *cmd, bool tty, bool in, bool out,
		      bool err_out, unsigned rows, unsigned cols, struct rt_exec_proc *ret,
		      struct husk_error *err);
/* Reap the process if it has exited (block: wait for it). true once
 * reaped, with p->exit_code set. */
bool rt_exec_proc_reap(struct rt_exec_proc *p, bool block);
/* Set the terminal size (tty only; EINVAL otherwise). */
int rt_exec_proc_resize(struct rt_exec_proc *p, unsigned rows, unsigned cols,
			struct husk_error *err);
/* Close the caller's end of stdin (EOF for the process). */
void rt_exec_proc_close_stdin(struct rt_exec_proc *p);
/* Kill what is left (SIGKILL to its process group), reap it and close
 * every fd. Safe to call twice. */
void rt_exec_proc_release(struct rt_exec_proc *p);

/* Attach to the running container's own stdio through its husk-shim. On
 * success *ret_fd is a SOCK_SEQPACKET connection carrying the shim's
 * attach packets (see runtime/shim_client.h), and *ret_tty / *ret_stdin say
 * whether the container has a terminal and an open stdin. EBUSY when it is
 * not running. */
int rt_ctr_attach(struct rt *rt, const char *ref, int *ret_fd, bool *ret_tty, bool *ret_stdin,
		  bool *ret_stdin_once, struct husk_error *err);

/* A TCP connection to 127.0.0.1:port inside the network namespace of pod
 * ref (the host's for a host-network pod); *ret_fd is the connected
 * socket (non-blocking, close-on-exec). EBUSY when the pod is not ready,
 * ECONNREFUSED when nothing listens, ETIMEDOUT after timeout_ms. */
int rt_pod_port_connect(struct rt *rt, const char *ref, int port, int timeout_ms, int *ret_fd,
			struct husk_error *err);

#endif
