/* The container launcher: husk's own code that turns a struct ctr_spec into
 * a confined process (namespaces, pivot_root, mounts, cgroup placement,
 * rlimits, capabilities, no_new_privs, seccomp, user, exec), runs further
 * processes inside a running container (exec), and reads the spec from the
 * container's OCI config.json that huskd writes for husk-shim. */
#ifndef HUSK_RUNTIME_LAUNCHER_H
#define HUSK_RUNTIME_LAUNCHER_H

#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>

#include "common/error.h"
/* The folder's contract is this header: code outside runtime/launcher/
 * includes only it. Its parts, each with its own contracts: */
#include "runtime/launcher/caps.h"    /* capabilities (lc_caps_) */
#include "runtime/launcher/log.h"     /* the container log file (lc_log_) */
#include "runtime/launcher/lsm.h"     /* AppArmor, SELinux (lc_lsm_) */
#include "runtime/launcher/seccomp.h" /* profiles and filters (lc_seccomp_) */
#include "runtime/launcher/user.h"    /* the process's user (lc_user_) */

/* Limits on what a spec may hold (each is user-growable through CRI). */
#define CTR_SPEC_MAX_FILE (4u << 20)
#define CTR_SPEC_MAX_ARGS 4096
#define CTR_SPEC_MAX_ENV 4096
#define CTR_SPEC_MAX_MOUNTS 512
#define CTR_SPEC_MAX_DEVICES 4096 /* a privileged container gets the host's */
#define CTR_SPEC_MAX_PATHS 256	  /* masked, read-only, cgroup.procs */
#define CTR_SPEC_MAX_SYSCTLS 256
#define CTR_SPEC_MAX_GROUPS 256
#define CTR_SPEC_MAX_IDMAPS 64

/* ExecSync output limit per stream. */
#define CTR_EXEC_MAX_OUTPUT (16u << 20)

enum ctr_ns_kind {
	CTR_NS_USER,
	CTR_NS_MNT,
	CTR_NS_PID,
	CTR_NS_NET,
	CTR_NS_IPC,
	CTR_NS_UTS,
	CTR_NS_CGROUP,
	CTR_NS_COUNT,
};

enum ctr_ns_mode {
	CTR_NS_HOST = 0, /* share the launcher's namespace */
	CTR_NS_NEW,	 /* a new one for this container */
	CTR_NS_JOIN,	 /* setns(2) into path (/run/husk/pods/ID/ns/net) */
};

struct ctr_namespace {
	enum ctr_ns_mode mode;
	char *path; /* JOIN only */
};

/* Mount propagation. DEFAULT is rprivate for mounts and rslave for the
 * container's root. */
enum ctr_propagation {
	CTR_PROP_DEFAULT = 0,
	CTR_PROP_PRIVATE,
	CTR_PROP_RPRIVATE,
	CTR_PROP_SLAVE,
	CTR_PROP_RSLAVE,
	CTR_PROP_SHARED,
	CTR_PROP_RSHARED,
};

struct ctr_mount {
	char *destination;   /* absolute, resolved inside the rootfs */
	char *type;	     /* "bind" or a file system type ("tmpfs", ...) */
	char *source;	     /* bind: an absolute host path; else the fs source */
	char *data;	     /* mount(2) data ("size=65536k,mode=755") or NULL */
	unsigned long flags; /* MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_*ATIME */
	bool bind;	     /* a bind mount (type "bind" or option bind/rbind) */
	bool recursive;	     /* rbind (the default for bind mounts) */
	enum ctr_propagation propagation;
};

struct ctr_device {
	char *path; /* inside the container, e.g. /dev/fuse */
	char type;  /* 'c', 'b' or 'p' (fifo) */
	uint32_t major, minor;
	uint32_t file_mode; /* permission bits, e.g. 0666 */
	uint32_t uid, gid;
	char *host_path; /* bind-mounted from here when mknod is refused; optional */
};

struct ctr_rlimit {
	int resource; /* RLIMIT_* */
	uint64_t soft, hard;
};

struct ctr_idmap {
	uint32_t container_id, host_id, size;
};

struct ctr_sysctl {
	char *key; /* "net.ipv4.ip_unprivileged_port_start" */
	char *value;
};

struct ctr_spec {
	char *id; /* the container id, for messages and logs */

	/* The process. */
	char **args; /* args[0] is searched in the spec env's PATH */
	char **env;  /* "KEY=value" */
	char *cwd;   /* absolute; created in the rootfs when missing */
	uint32_t uid, gid;
	uint32_t *additional_gids;
	size_t n_additional_gids;
	bool has_umask;
	uint32_t umask; /* process.user.umask; without: 022 */
	/* process.consoleSize: the tty's first size (0: the kernel's). */
	uint32_t console_height, console_width;
	bool tty;	 /* a pty from the container's own devpts */
	bool stdin_open; /* keep stdin open (a pipe the caller holds) */
	bool stdin_once;
	bool no_new_privs;
	struct lc_caps caps;
	enum lc_seccomp_mode seccomp;
	char *seccomp_profile;	/* LOCALHOST: the JSON profile file */
	char *seccomp_filter;	/* the compiled filter (ctr_spec_seccomp_write);
				   ctr_launch needs it unless UNCONFINED */
	char *apparmor_profile; /* AppArmor profile to exec into; NULL: none */
	struct ctr_rlimit *rlimits;
	size_t n_rlimits;
	bool has_oom_score_adj;
	int oom_score_adj;

	/* The container. */
	char *rootfs; /* an already mounted directory (the overlay) */
	bool readonly_rootfs;
	enum ctr_propagation rootfs_propagation;
	char *hostname; /* set when the UTS namespace is NEW */
	struct ctr_namespace ns[CTR_NS_COUNT];
	struct ctr_idmap *uid_map, *gid_map; /* for a NEW user namespace */
	size_t n_uid_map, n_gid_map;
	/* With a JOIN user namespace (a pod's): the pod files and every bind
	 * mount are idmapped mounts with that namespace's mapping
	 * (made before joining it), so ids on disk read as the host's ids
	 * mapped back: a file of host root shows as root inside, and what
	 * root inside writes is owned by host root. */
	bool idmapped_mounts;
	struct ctr_mount *mounts;
	size_t n_mounts;
	struct ctr_device *devices;
	size_t n_devices;
	char **masked_paths;   /* NULL: the runc/crun defaults; {NULL}: none */
	char **readonly_paths; /* likewise */
	struct ctr_sysctl *sysctls;
	size_t n_sysctls;
	char **cgroup_procs; /* cgroup.procs files to write the pid into */
	bool privileged;     /* /sys and /proc writable (caps, seccomp, masks are
				set by the caller) */
	/* Pod files bind-mounted when set. */
	char *shm_path;	     /* -> /dev/shm (else a 64 MiB tmpfs) */
	char *hostname_path; /* -> /etc/hostname */
	char *hosts_path;    /* -> /etc/hosts */
	char *resolv_path;   /* -> /etc/resolv.conf */
	/* The pinned template mount namespace (ctr_mount_template_make) the
	 * container's namespace is copied from instead of the launcher's own;
	 * NULL, or a file that is not a mount namespace: the launcher's. */
	char *mount_template;

	/* For husk-shim only. */
	char *state_dir; /* the shim's files: pid, exit, control.sock, ... */
	char *log_path;	 /* the CRI log file; NULL: output is dropped */
	char *oom_file;	 /* memory.events (v2) or memory.oom_control (v1) */
	/* An OCI runtime (a RuntimeClass handler) that runs the container
	 * from the bundle <state_dir>/config.json in place of husk's launcher;
	 * NULL oci_path: husk's launcher. */
	char *oci_path;	 /* the binary */
	char *oci_root;	 /* its --root */
	char **oci_args; /* extra global arguments */
	bool oci_systemd_cgroup;
};

/* The default masked and read-only paths of runc and crun. */
extern const char *const ctr_default_masked_paths[];
extern const char *const ctr_default_readonly_paths[];

/* A spec with the defaults: new mount/PID/IPC/UTS/cgroup namespaces, host
 * network and user namespaces, the 14 default capabilities, RuntimeDefault
 * seccomp, default masked and read-only paths, cwd "/", uid 0. */
struct ctr_spec *ctr_spec_new(void);
void ctr_spec_free(struct ctr_spec *spec);
static inline void ctr_spec_freep(struct ctr_spec **s)
{
	ctr_spec_free(*s);
}

/* Check the spec is complete and coherent: rootfs and args set, absolute
 * paths, a NEW mount namespace, JOIN namespaces with paths, id maps only
 * with a NEW user namespace, limits. EINVAL naming the field. */
int ctr_spec_validate(const struct ctr_spec *spec, struct husk_error *err);

/* The container's description is its OCI runtime-spec config, config.json
 * in its state directory (written by ctr_oci_config, runtime/oci.h); husk's
 * launcher, husk-shim and exec read it back into a struct ctr_spec:
 *
 *   process: terminal, user (uid, gid, additionalGids), args, env, cwd,
 *     capabilities (5 sets; none when missing), rlimits, noNewPrivileges,
 *     apparmorProfile, oomScoreAdj
 *   root: path, readonly; hostname
 *   mounts: the first io.husk.runtime-mounts entries are the runtime's own
 *     (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup
 *     and the pod's /etc files): the launcher sets them up itself and takes
 *     from them only the sources of the pod's /dev/shm, /etc/hostname,
 *     /etc/hosts and /etc/resolv.conf binds; the rest are the container's
 *     mounts (options as ctr_mount_option reads them, others are data)
 *   linux: namespaces (type, path: a missing type is the host's),
 *     uidMappings, gidMappings, devices, sysctl, maskedPaths, readonlyPaths
 *     (missing: none), rootfsPropagation (slave, private, shared and their
 *     r-forms), seccomp (present: confined; the profile itself is compiled
 *     by huskd into the filter file below); cgroupsPath and resources are
 *     huskd's to apply and are not read.
 *
 * What OCI has no field for, as annotations (string values; the io.husk.*
 * keys of a CRI request never reach the config):
 */
#define CTR_ANN_PREFIX "io.husk."
#define CTR_ANN_ID "io.husk.container-id"		  /* ctr_spec.id */
#define CTR_ANN_RUNTIME_MOUNTS "io.husk.runtime-mounts"	  /* a count, see above */
#define CTR_ANN_PRIVILEGED "io.husk.privileged"		  /* "true" / "false" */
#define CTR_ANN_IDMAPPED "io.husk.idmapped-mounts"	  /* "true" / "false" */
#define CTR_ANN_STDIN "io.husk.stdin"			  /* "true" / "false" */
#define CTR_ANN_STDIN_ONCE "io.husk.stdin-once"		  /* "true" / "false" */
#define CTR_ANN_SECCOMP_PROFILE "io.husk.seccomp-profile" /* Localhost: the file */
#define CTR_ANN_SECCOMP_FILTER "io.husk.seccomp-filter"	  /* the compiled BPF file */
#define CTR_ANN_CGROUP_PROCS "io.husk.cgroup-procs"	  /* JSON list of cgroup.procs files */
/* JSON map from a device's path in the container to the host node it is
 * bind-mounted from when mknod is refused (a user namespace). */
#define CTR_ANN_DEVICE_SOURCES "io.husk.device-sources"
#define CTR_ANN_STATE_DIR "io.husk.state-dir" /* husk-shim's directory */
#define CTR_ANN_LOG_PATH "io.husk.log-path"   /* the CRI log file */
#define CTR_ANN_OOM_FILE "io.husk.oom-file"   /* memory.events or memory.oom_control */
/* JSON {"path", "root", "args", "systemd_cgroup"}: the OCI runtime (a
 * RuntimeClass handler) husk-shim runs the bundle with. */
#define CTR_ANN_OCI_RUNTIME "io.husk.oci-runtime"
#define CTR_ANN_MOUNT_TEMPLATE "io.husk.mount-template" /* ctr_spec.mount_template */

#define CTR_CONFIG_FILE "config.json"
/* The spec file of a huskd before config.json was the only description;
 * still read for its containers (exec, start after an upgrade). */
#define CTR_LEGACY_SPEC_FILE "spec.json"

/* Parse a config.json text. Unknown keys and unknown io.husk.* annotations
 * are ignored (a newer huskd's). EINVAL naming the file and the key:
 * "config 'F': process.user.uid: expected a non-negative integer, got
 * string", and then whatever ctr_spec_validate refuses. */
int ctr_spec_from_oci(const char *text, size_t len, const char *what, struct ctr_spec **ret,
		      struct husk_error *err);
int ctr_spec_read_oci_file(const char *path, struct ctr_spec **ret, struct husk_error *err);
/* The file a container's spec is read from in its state directory dir:
 * spec.json when an older huskd wrote one, else config.json (caller frees). */
char *ctr_spec_path(const char *dir);
/* Read the spec of the container whose state directory is dir (the file
 * ctr_spec_path names). */
int ctr_spec_load(const char *dir, struct ctr_spec **ret, struct husk_error *err);
/* Read path as config.json, or as the legacy spec file when it is named
 * spec.json (husk-shim is handed either). */
int ctr_spec_read_any(const char *path, struct ctr_spec **ret, struct husk_error *err);

/* The legacy spec file (spec.json, no longer written), JSON, one object:
 *
 * {"version": 1, "id": "c1",
 *  "root": {"path": "/var/lib/husk/.../rootfs", "readonly": false,
 *           "propagation": "rslave"},
 *  "process": {"args": ["sh", "-c", "echo hi"], "env": ["PATH=/bin"],
 *    "cwd": "/", "user": {"uid": 0, "gid": 0, "additional_gids": [10]},
 *    "tty": false, "stdin": false, "stdin_once": false,
 *    "no_new_privs": true,
 *    "capabilities": {"bounding": ["CAP_CHOWN", ...], "effective": [...],
 *      "permitted": [...], "inheritable": [], "ambient": []},
 *    "seccomp": {"mode": "runtime_default" | "unconfined" | "localhost",
 *      "profile": "/var/lib/kubelet/seccomp/p.json",
 *      "filter": "/run/husk/containers/c1/seccomp.bpf"},
 *    "apparmor_profile": "my-profile",      missing: none
 *    "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 4096}],
 *    "oom_score_adj": 100},
 *  "hostname": "web",
 *  "namespaces": {"net": {"path": "/run/husk/pods/P/ns/net"}, "pid": "new",
 *    "ipc": "host", ...},   keys user, mount, pid, net, ipc, uts, cgroup;
 *                           values "new", "host" or {"path": ...};
 *                           a missing key keeps the ctr_spec_new default
 *  "uid_mappings": [{"container_id": 0, "host_id": 100000, "size": 65536}],
 *  "gid_mappings": [...],
 *  "idmapped_mounts": false,
 *  "mounts": [{"destination": "/data", "type": "bind", "source": "/srv/d",
 *    "options": ["rbind", "ro", "nosuid", "rslave"]}],   OCI-style options:
 *      bind rbind ro rw nosuid suid nodev dev noexec exec relatime
 *      norelatime noatime atime strictatime nodiratime private rprivate
 *      slave rslave shared rshared; any other option goes to the mount data
 *  "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
 *    "file_mode": 438, "uid": 0, "gid": 0, "host_path": "/dev/fuse"}],
 *  "masked_paths": [...], "readonly_paths": [...],   missing: the defaults
 *  "sysctls": {"net.ipv4.ping_group_range": "0 0"},
 *  "cgroup_procs": ["/sys/fs/cgroup/memory/husk/P/c1/cgroup.procs"],
 *  "privileged": false,
 *  "pod_files": {"shm": "...", "hostname": "...", "hosts": "...",
 *    "resolv_conf": "..."},
 *  "shim": {"state_dir": "/run/husk/containers/c1",
 *    "log_path": "/var/log/pods/.../0.log",
 *    "oom_file": "/sys/fs/cgroup/memory/.../memory.oom_control",
 *    "oci_runtime": {"path": "/usr/sbin/runc", "root": "/run/husk/runtimes/runc",
 *      "args": [], "systemd_cgroup": false}}}   missing: husk's launcher
 *
 * Unknown keys are ignored so that newer huskd can add fields. Errors are
 * EINVAL and name the file and the field. */
int ctr_spec_from_json(const char *text, size_t len, const char *what, struct ctr_spec **ret,
		       struct husk_error *err);
int ctr_spec_read_file(const char *path, struct ctr_spec **ret, struct husk_error *err);

/* Parse "RLIMIT_NOFILE" / "nofile"; -1 when unknown. */
int ctr_rlimit_from_name(const char *name);
const char *ctr_rlimit_name(int resource);

/* May dest (absolute) take a container's mount? Not the root, nothing in
 * /proc but the files lxcfs emulates (/proc/meminfo, ... as runc allows),
 * and, unless privileged, nothing in /sys: the runtime sets those up, and a
 * volume there would show the host's or redirect masked paths. Judged on
 * the path with ".", ".." and repeated slashes folded; the launcher checks
 * the resolved target again (an image's symlinks). EINVAL "mount '/proc':
 * ..." naming dest. */
int ctr_mount_destination_check(const char *dest, bool privileged, struct husk_error *err);
/* dest folded as above ("/a//b/../c/." -> "/a/c"; caller frees). */
char *ctr_path_fold(const char *dest);
/* Before the container's process joins its cgroups: create in s->rootfs
 * the mount targets (pod files, mount destinations, cwd when not NULL)
 * that the launcher, or an OCI runtime, would otherwise create there from
 * the container's memory cgroup, where the page cache it takes would keep
 * that cgroup in the kernel after its removal (runtime/launcher/targets.c).
 * Best effort; nothing for a container with a user namespace. */
void ctr_make_targets(const struct ctr_spec *s, const char *cwd);
/* One of the /proc files a mount may cover (dest folded). */
bool ctr_proc_mount_allowed(const char *dest);

/* Parse one OCI mount option into m (flags, bind, propagation); false when
 * the option is not a known flag (the caller appends it to m->data). */
bool ctr_mount_option(struct ctr_mount *m, const char *opt);

/* Write m's "options" key and array (OCI mount options: bind or rbind, the
 * flags, the propagation, then the data split at its commas) into g. */
void ctr_mount_gen_options(yajl_gen g, const struct ctr_mount *m);

/* The spec's seccomp profile (RuntimeDefault, or the Localhost file)
 * compiled for its bounding set as the launcher will clamp it; *ret is
 * NULL when unconfined. EINVAL for a bad profile (the message locates the
 * problem), ENOENT for a missing Localhost file. Uses libseccomp; huskd
 * calls it at CreateContainer so a bad profile fails there. */
int ctr_spec_seccomp_compile(const struct ctr_spec *spec, struct lc_seccomp_bpf **ret,
			     struct husk_error *err);
/* Compile and write the filter file at path (then set spec->seccomp_filter
 * to path). Nothing is written for an unconfined spec. */
int ctr_spec_seccomp_write(const struct ctr_spec *spec, const char *path, struct husk_error *err);

/* ---- the template mount namespace ----
 *
 * unshare(CLONE_NEWNS) copies every mount of the caller's namespace, and
 * the launcher then walks them all again (propagation, pivot_root, the old
 * root's detach): on a node with many pods that is thousands of mounts per
 * container start. Instead, huskd makes one small namespace at start (a
 * read-only tmpfs root with /proc, /sys, and empty /rootfs and /stage for
 * the launcher) and pins it; the launcher clones what it needs from the
 * host (open_tree), enters the template and copies it. Its proc and sysfs
 * are there for the kernel's mount_too_revealing rule (a user namespace
 * may mount proc or sysfs only where one is fully visible). */

/* Make the template and pin it at path (a file, created; its directory is
 * made a private bind mount of itself so the pin does not propagate). A
 * template already pinned there is replaced (a huskd restart). */
int ctr_mount_template_make(const char *path, struct husk_error *err);
/* Unpin the template at path and undo what make did; nothing there is
 * success. */
int ctr_mount_template_release(const char *path, struct husk_error *err);

/* ---- running containers ---- */

/* The fds the new process gets as stdin, stdout and stderr; -1 means
 * /dev/null. They are duplicated, the caller keeps its copies. Ignored
 * for the tty case, where all three are the pty. */
struct ctr_stdio {
	int in, out, err;
};
#define CTR_STDIO_NULL ((struct ctr_stdio){-1, -1, -1})

struct ctr_process {
	pid_t pid;	/* in the caller's PID namespace; the caller's child */
	int pty_master; /* -1 unless tty; the caller owns it */
	/* When pid is an OCI runtime standing between (its exec): the process
	 * in the container, pid's child, and its start time; 0 otherwise. */
	pid_t target;
	unsigned long long target_start;
};

/* Launch the container described by spec: everything from namespaces to
 * exec happens before this returns; on success the process runs the
 * spec's args and is the caller's child (the caller reaps it). rlimits
 * above the caller's hard limits and an oom_score_adj below the caller's
 * own are clamped with a warning in the log (no CAP_SYS_RESOURCE here).
 * Capabilities the caller does not hold are dropped from the sets, with a
 * warning. A confined spec needs its compiled filter file
 * (spec->seccomp_filter; EINVAL without). Errors from the child come back as they happened, e.g.
 * ENOENT "exec '/bin/nope': No such file or directory", EACCES "chdir
 * '/root': Permission denied", or "mount '/data': ..." for a mount. */
int ctr_launch(const struct ctr_spec *spec, const struct ctr_stdio *stdio, struct ctr_process *ret,
	       struct husk_error *err);

/* Run another process in a running container (ExecSync, Exec): joins all
 * of the namespaces of pid (the container's init) that differ from the
 * caller's, writes itself into spec->cgroup_procs, then takes the spec's
 * user, groups, capabilities, rlimits, no_new_privs and seccomp profile.
 * args replace spec->args; env and cwd default to the spec's. */
struct ctr_exec_opts {
	const struct ctr_spec *spec;
	pid_t pid;
	char **args;
	char **env;	 /* NULL: spec->env */
	const char *cwd; /* NULL: spec->cwd */
	bool tty;	 /* a pty from the container's devpts */
	/* tty: its size at the start (0: none; an OCI runtime sizes the
	 * terminal before the process runs, husk's launcher right after). */
	unsigned rows, cols;
	/* NULL: ctr_exec_spawn; another way to start it (an OCI runtime's
	 * exec, ctr_oci_exec_spawn). */
	int (*spawn)(const struct ctr_exec_opts *opts, const struct ctr_stdio *stdio,
		     struct ctr_process *ret, struct husk_error *err);
};

/* Start the process; like ctr_launch it is the caller's child on return.
 * The same errors as ctr_launch, and ESRCH "container process N is gone". */
int ctr_exec_spawn(const struct ctr_exec_opts *opts, const struct ctr_stdio *stdio,
		   struct ctr_process *ret, struct husk_error *err);

/* SIGKILL for a process ctr_exec_spawn or opts->spawn started, and for the
 * session it leads: p->pid's, and p->target's when it is still the
 * process that started at p->target_start. */
void ctr_exec_kill(const struct ctr_process *p);

struct ctr_exec_result {
	int exit_code;	     /* 128 + signal when killed by a signal */
	char *out, *err_out; /* NUL-terminated; caller frees */
	size_t out_len, err_len;
	bool out_truncated, err_truncated; /* more than max_output was written */
};
void ctr_exec_result_free(struct ctr_exec_result *r); /* frees members */

/* ExecSync: run to completion with stdin from /dev/null, capturing stdout
 * and stderr up to max_output bytes each (0: CTR_EXEC_MAX_OUTPUT; the rest
 * is read and dropped). timeout_ns > 0 bounds the run: when it passes, the
 * process group is SIGKILLed and the call fails with ETIMEDOUT "exec 'cmd':
 * timed out after 2s". The caller must not reap children by waitpid(-1)
 * concurrently. */
int ctr_exec_sync(const struct ctr_exec_opts *opts, long long timeout_ns, size_t max_output,
		  struct ctr_exec_result *ret, struct husk_error *err);

#endif
