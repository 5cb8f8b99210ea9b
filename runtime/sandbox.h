/* Pod sandboxes at the OS level: the pod's network, IPC and UTS namespaces
 * (and a PID namespace with husk's own init when the pod shares one), pinned
 * by bind mounts under the state dir, and the pod's hostname, hosts,
 * resolv.conf files and /dev/shm tmpfs. No process runs for a pod unless it
 * shares a PID namespace. */
#ifndef HUSK_RUNTIME_SANDBOX_H
#define HUSK_RUNTIME_SANDBOX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* Layout under a state dir S (all paths are built from S; nothing is
 * hard-coded):
 *   S/pods/ID/{hostname,hosts,resolv.conf}   bind sources of the containers
 *   S/pods/ID/sandbox.json   what pod_sandbox_load() and teardown read;
 *                            written last, so its presence means complete
 *   S/pods-mnt/              a private bind mount of itself: every mount of
 *                            a pod is below it, none of the files above
 *   S/pods-mnt/ID/ns/{user,net,ipc,uts,pid}   namespace pins (new ones only)
 *   S/pods-mnt/ID/shm/       the pod's /dev/shm tmpfs (not for host IPC)
 * Each new mount makes the kernel walk the child mounts of the mount that
 * holds its source (has_locked_children): kept apart, those are a few, not
 * every pod's pins (issue 12). Pods made before the split (sandbox.json
 * version 1) have ns/ and shm/ in S/pods/ID, and are loaded and torn down
 * as they are. */

/* Values as CRI's NamespaceMode, so the server can copy them across. */
enum pod_ns_mode {
	POD_NS_POD = 0,	      /* a namespace of the pod's own, shared by its containers */
	POD_NS_CONTAINER = 1, /* pid only: each container gets its own */
	POD_NS_NODE = 2,      /* the host's namespace */
	POD_NS_TARGET = 3,    /* container level only; refused for a pod */
};

/* "POD", "CONTAINER", "NODE", "TARGET"; NULL for anything else. */
const char *pod_ns_mode_name(enum pod_ns_mode mode);
/* The inverse; -1 for an unknown name. */
int pod_ns_mode_parse(const char *name);

#define POD_ID_MAX HUSK_OBJ_ID_MAX
#define POD_HOSTNAME_MAX 64
#define POD_MAX_SYSCTLS 256
#define POD_SYSCTL_NAME_MAX 256
#define POD_SYSCTL_VALUE_MAX 4096
#define POD_MAX_DNS_SERVERS 16
#define POD_MAX_DNS_SEARCHES 32
#define POD_MAX_DNS_OPTIONS 32
#define POD_SHM_SIZE_DEFAULT (64ULL << 20)
/* Bound on the host files copied into the pod (hosts, resolv.conf). */
#define POD_HOST_FILE_MAX (1U << 20)

/* One line of a uid_map or gid_map: size ids from container_id inside
 * the pod's user namespace are host_id... on the host. */
struct pod_idmap {
	uint32_t container_id, host_id, size;
};
/* The most lines the kernel takes in one uid_map or gid_map. */
#define POD_MAX_IDMAPS 340

/* Check one kind of id mappings (field names it in messages, e.g.
 * "userns_options.uids"): 1..POD_MAX_IDMAPS ranges, none empty, none past
 * id 4294967294, none overlapping another on either side, and none that maps the
 * host's root (host id 0) into the pod. EINVAL naming field[i]. */
int pod_idmaps_check(const struct pod_idmap *m, size_t n, const char *field,
		     struct husk_error *err);

struct pod_sysctl {
	const char *name; /* "net.ipv4.ip_forward" or "net/ipv4/conf/eth0.1/rp_filter" */
	const char *value;
};

/* Everything a pod sandbox is made from. The spec is borrowed: create reads
 * it and keeps no pointer into it. */
struct pod_sandbox_spec {
	const char *id; /* required; husk_obj_id_valid (common/util.h) */
	/* Hostname for a new UTS namespace and /etc/hostname. NULL or "": the first
	 * 12 characters of the id. With uts NODE the host's name is used instead. */
	const char *hostname;
	/* net, ipc, uts: POD (new) or NODE. uts should follow net, as CRI has no
	 * UTS option of its own. pid: POD (new namespace with an init), or
	 * CONTAINER/NODE (nothing at the pod level). Zero-initialised = POD. */
	enum pod_ns_mode net, ipc, uts, pid;
	/* Namespaced sysctls applied inside the pod's namespaces: net.*, needing
	 * net POD; kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.*, needing
	 * ipc POD. Anything else is refused (EINVAL naming the sysctl). */
	const struct pod_sysctl *sysctls;
	size_t n_sysctls;
	/* DNSConfig (NULL-terminated, NULL for none). When all three are empty the
	 * host's resolv.conf is copied. Servers must be IP addresses; searches and
	 * options single words. */
	char *const *dns_servers;
	char *const *dns_searches;
	char *const *dns_options;
	uint64_t shm_size; /* bytes of the pod's /dev/shm; 0: POD_SHM_SIZE_DEFAULT */
	/* Program exec'd as the PID namespace's init (argv = {init_path}, empty
	 * env, stdio on /dev/null). NULL: a built-in loop in a forked child that
	 * reaps zombies and exits on SIGTERM/SIGINT, like a pause container. */
	const char *init_path;
	/* Host files copied for a host-network pod (hosts) and when no DNS is
	 * given (resolv.conf). NULL: /etc/hosts and /etc/resolv.conf. A missing
	 * file gives an empty copy. */
	const char *host_hosts;
	const char *host_resolv;
	/* A user namespace of the pod's own (CRI userns_options mode POD) with
	 * these mappings, written by create from outside. It is made first and
	 * owns the pod's network, IPC, UTS and PID namespaces, so net, ipc and
	 * uts must be POD and pid not NODE. false: the host's. */
	bool userns;
	const struct pod_idmap *uid_map, *gid_map;
	size_t n_uid_map, n_gid_map;
};

/* What a sandbox is made of; every string is owned by the struct. */
struct pod_sandbox_info {
	char *id;
	char *dir;	     /* S/pods/ID (the pins and shm are in S/pods-mnt/ID) */
	char *user_ns;	     /* pin path; NULL when the pod uses the host's */
	char *net_ns;	     /* pin path; NULL when the pod uses the host's */
	char *ipc_ns;	     /* pin path; NULL for host IPC */
	char *uts_ns;	     /* pin path; NULL for host UTS */
	char *pid_ns;	     /* pin path; NULL unless pid is POD */
	char *shm;	     /* the pod's tmpfs, or "/dev/shm" for host IPC */
	char *hostname;	     /* the hostname the pod has */
	char *hostname_file; /* for the containers' /etc/hostname */
	char *hosts_file;    /* for /etc/hosts */
	char *resolv_file;   /* for /etc/resolv.conf */
	enum pod_ns_mode net, ipc, uts, pid;
	bool userns; /* a user namespace of its own, pinned at user_ns */
	/* Its mappings as the spec gave them (NULL and 0 without userns, or
	 * in records from before they were kept). */
	struct pod_idmap *uid_map, *gid_map;
	size_t n_uid_map, n_gid_map;
	pid_t init_pid; /* the PID namespace's init, in husk's PID ns; 0: none */
	unsigned long long init_start_time; /* its /proc/PID/stat start time (ticks) */
};

/* Free the members and zero the struct; NULL and repeated calls are fine. */
void pod_sandbox_info_clear(struct pod_sandbox_info *info);
/* Deep copy of src into dst (dst's old contents are not freed). */
void pod_sandbox_info_copy(struct pod_sandbox_info *dst, const struct pod_sandbox_info *src);

/* Check one sysctl against the pod's namespace modes: the name well formed,
 * namespaced, and its namespace the pod's own; the value one line of at most
 * POD_SYSCTL_VALUE_MAX bytes. EINVAL naming the sysctl otherwise. */
int pod_sysctl_check(const char *name, const char *value, enum pod_ns_mode net,
		     enum pod_ns_mode ipc, struct husk_error *err);

/* Create the sandbox described by spec under state_dir. Makes S/pods and
 * S/pods-mnt (pod_sandbox_root_ensure) if need be, forks a
 * child that unshares the new namespaces, sets the hostname, brings loopback
 * up and applies the sysctls, pins its namespaces, starts the PID namespace
 * init when asked, mounts the shm tmpfs and writes the files. The init runs in
 * its own session, survives huskd and exits by itself if huskd dies before
 * create has pinned it. On success fills *ret_info (caller clears it).
 * On failure everything create made is released and S/pods/ID is gone.
 * Errors: EINVAL for a bad spec (the message names the field or sysctl,
 * including a sysctl the kernel rejected), EEXIST when S/pods/ID exists,
 * ETIMEDOUT when the namespace child did not answer, others from the kernel.
 * Needs CAP_SYS_ADMIN (and CAP_NET_ADMIN for loopback). The caller
 * serialises create/destroy of one id; different ids may run in parallel. */
int pod_sandbox_create(const char *state_dir, const struct pod_sandbox_spec *spec,
		       struct pod_sandbox_info *ret_info, struct husk_error *err);

/* Tear down pod id: SIGKILL the PID namespace init (checked against its
 * recorded start time; for a half-created pod every process found in the
 * pinned PID namespace) and wait up to 5 s for it, unmount everything
 * mounted under S/pods-mnt/ID and S/pods/ID (lazily when busy), remove
 * both directories.
 * Idempotent: an unknown or already destroyed id is success, and a
 * half-created pod is cleaned up. Errors: ETIMEDOUT when the init would not
 * die, EBUSY when a mount would not go, EINVAL for a malformed id. */
int pod_sandbox_destroy(const char *state_dir, const char *id, struct husk_error *err);

/* Rebuild the info of an existing sandbox from S/pods/ID/sandbox.json, for
 * a restarted huskd. ENOENT when there is no complete sandbox of that id. */
int pod_sandbox_load(const char *state_dir, const char *id, struct pod_sandbox_info *ret_info,
		     struct husk_error *err);

/* Ids of every sandbox directory under S/pods or S/pods-mnt, complete or
 * not, sorted; to find orphans after a restart. A missing S/pods gives an
 * empty vector. */
int pod_sandbox_list(const char *state_dir, char ***ret_ids, struct husk_error *err);

/* What is left of pod id on the host, one description per item ("mount
 * PATH", "directory PATH", "process PID"); an empty vector when nothing is.
 * Mounts are read from /proc/self/mountinfo. */
int pod_sandbox_leftovers(const char *state_dir, const char *id, char ***ret_items,
			  struct husk_error *err);

/* Rewrite the pod's hosts file (new network only) with lines mapping each
 * of ips to the pod's hostname, e.g. once pod networking has addresses. An
 * empty ips maps the hostname to 127.0.1.1. EINVAL for a malformed address,
 * ENOENT for an unknown pod, EBUSY for a host-network pod. */
int pod_sandbox_set_ips(const char *state_dir, const char *id, char *const *ips,
			struct husk_error *err);

/* Make S/pods and S/pods-mnt, the latter a private bind mount of itself
 * (fs_private_mount_ensure); idempotent, for huskd's start. */
int pod_sandbox_root_ensure(const char *state_dir, struct husk_error *err);

/* Undo pod_sandbox_root_ensure (and the private self bind of S/pods that
 * huskd made before S/pods-mnt, on a shared mount): unmount and remove the
 * empty directories, at huskd's stop. EBUSY while a pod remains. */
int pod_sandbox_root_release(const char *state_dir, struct husk_error *err);

/* Inode of the namespace pinned (or linked, as /proc/PID/ns/X) at path, to
 * compare namespaces and check that a pin is alive. ENOENT when path is
 * missing, ENXIO when it is not a namespace (a pin file whose mount is gone). */
int pod_ns_inode(const char *path, ino_t *ret_ino, struct husk_error *err);

/* ---- sandbox_files.c, for sandbox.c ---- */

/* Write info's hostname, hosts and resolv.conf files from spec (the host's
 * hosts for a node-network pod, the host's resolv.conf without DNS config). */
int pod_sandbox_write_files(const struct pod_sandbox_spec *spec,
			    const struct pod_sandbox_info *info, struct husk_error *err);

/* ---- sandbox_check.c, for sandbox.c ---- */

/* An IPv4 or IPv6 address (with an optional %zone). */
bool pod_ip_valid(const char *s);
enum sysctl_ns { SYSCTL_NONE, SYSCTL_NET, SYSCTL_IPC };
/* Split a sysctl name into /proc/sys path components. Dots separate, unless
 * the name uses slashes, in which case dots are part of a component (an
 * interface name like "eth0.100"). Returns the /proc/sys path or NULL. */
char *pod_sysctl_path(const char *name, enum sysctl_ns *ret_ns);
/* Every field of a spec create would use, checked before anything is
 * made; EINVAL naming the field. */
int pod_spec_check(const struct pod_sandbox_spec *s, struct husk_error *err);
/* A copy of n mappings (NULL when there are none). */
struct pod_idmap *pod_idmaps_dup(const struct pod_idmap *m, size_t n);

#endif
