/* Internals shared by the launcher's files: launch.c (launch and the
 * child's last steps), fs.c (rootfs, mounts, pivot_root), exec.c (exec in
 * a running container) and sync.c (the messages between them). Not an
 * API: only the launcher files and its unit tests include it. */
#ifndef HUSK_RUNTIME_LAUNCHER_INTERNAL_H
#define HUSK_RUNTIME_LAUNCHER_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>

#include "common/json.h"
#include "runtime/launcher/launcher.h"

/* The device nodes every container gets (/dev/null ... /dev/tty). */
#define LC_STD_DEVICES 6

/* The most v1 hierarchies /sys/fs/cgroup shows in a container. */
#define LC_CGROUP_TREES_MAX 32

/* Everything the children need, computed in the parent before fork so the
 * last child mostly makes syscalls. */
struct lc {
	const struct ctr_spec *spec;
	char *const *args;
	char *const *envp;
	const char *cwd;
	bool tty;
	struct lc_caps caps; /* clamped to what the caller holds */
	int last_cap;
	struct lc_seccomp_bpf *bpf; /* NULL: unconfined or not compiled yet */
	bool need_compile;	    /* confined, but no filter file */
	struct ctr_rlimit *rlimits; /* clamped */
	size_t n_rlimits;
	bool set_oom;
	int oom_score_adj; /* clamped */
	int devnull;
	int sock; /* the child's end of the sync socket */
	struct ctr_stdio stdio;
	/* An exec'd process dies with the huskd thread that runs its session
	 * (SIGKILL of huskd included); a container outlives its shim. */
	bool die_with_parent;
	/* Idmapped clones (open_tree) of the pod files (shm, hostname, hosts,
	 * resolv.conf) and of each bind mount's source, made by stage 1 before
	 * it joins the user namespace (spec idmapped_mounts), moved into place
	 * by lc_setup_rootfs; -1: none. The rootfs overlay is idmapped by the
	 * image layer (its layers; overlayfs cannot be idmapped itself). */
	int idmap_files[4];
	/* Stage 1 chdir'd into the rootfs (a mount root) before joining a
	 * user namespace whose root may not walk to it by name: unshare keeps
	 * the cwd on the new namespace's copy of that mount. */
	bool root_by_cwd;
	int *idmap_mounts; /* one per spec mount */
	/* Read-only clones of the container's own cgroup directory in each
	 * v1 hierarchy, made by stage 1 before it joins a user namespace
	 * (lc_cgroup_prepare), with the controllers as /proc/self/cgroup
	 * names them ("cpu,cpuacct", "name=systemd"); moved into place under
	 * /sys/fs/cgroup by lc_setup_rootfs. */
	int cgroup_trees[LC_CGROUP_TREES_MAX];
	char *cgroup_ctrls[LC_CGROUP_TREES_MAX];
	size_t n_cgroup_trees;
	/* Stage 1 entered the template mount namespace (spec mount_template,
	 * lc_template_prepare): the container's namespace is a copy of it,
	 * not of the caller's. Stage 1 cloned every source from the caller's
	 * namespace before: idmap_files and idmap_mounts hold plain clones
	 * where not idmapped, and (-1: none): */
	bool in_template;
	int rootfs_tree;		   /* the rootfs */
	int sys_tree;			   /* /sys, for a user namespace's fallback */
	int std_dev_trees[LC_STD_DEVICES]; /* the host's /dev/null ... (userns) */
	int *dev_trees;			   /* one per spec device with a host path */
	/* Stage 1 and 2 run in the caller's memory (lc_run, ctr_launch): set
	 * by lc_run where the launch may, read by stage 1 to clone stage 2. */
	bool share_memory;
};

int lc_prepare(struct lc *lc, const struct ctr_spec *spec, char *const *args, char *const *env,
	       const char *cwd, bool tty, const struct ctr_stdio *stdio, struct husk_error *err);
void lc_release(struct lc *lc);

/* The sync socket (SOCK_SEQPACKET) between the caller and its children. */
enum lc_msg_type {
	LC_MSG_PID = 1,	    /* stage 1 -> caller: the pid of the process */
	LC_MSG_USERNS,	    /* stage 1 -> caller: write my id maps */
	LC_MSG_USERNS_DONE, /* caller -> stage 1: maps written (code = errno) */
	LC_MSG_PTY,	    /* child -> caller: the pty master (SCM_RIGHTS) */
	LC_MSG_READY,	    /* child -> caller: setup done, about to exec */
	LC_MSG_ERROR,	    /* child -> caller: code + message */
};

#define LC_MSG_TEXT 1024
struct lc_msg {
	int32_t type;
	int32_t code;
	int32_t pid;
	char text[LC_MSG_TEXT];
};

int lc_send(int sock, int type, int code, pid_t pid, const char *text, int fd);
/* Receive one message; *ret_fd gets a passed fd or -1. 0 on EOF, 1 on a
 * message, -errno on error. */
int lc_recv(int sock, struct lc_msg *m, int *ret_fd);

/* The caller's side of a launch or exec: read messages until the children
 * are done (EOF), writing id maps when asked, then reap stage 1 (s1). On
 * success ret holds the process (and pty). deadline_ns is CLOCK_MONOTONIC. */
int lc_parent_sync(struct lc *lc, int sock, pid_t s1, long long deadline_ns,
		   struct ctr_process *ret, struct husk_error *err);

/* Fork stage 1 with a sync socket, run stage1(lc, arg) in it (it never
 * returns) and do the caller's side with lc_parent_sync. Releases lc. */
int lc_run(struct lc *lc, _noreturn_ void (*stage1)(struct lc *lc, void *arg), void *arg,
	   long long timeout_ns, struct ctr_process *ret, struct husk_error *err);

/* Child side, first thing after the fork: non-dumpable until execve, the
 * container's stdio on 0-2 (lc->stdio becomes {0, 1, 2}), every other fd
 * closed but lc->sock and lc->devnull, oom_score_adj set. Fails through
 * lc_fail. */
void lc_isolate(struct lc *lc);
/* chdir, then check the directory is reachable from our root (not a host
 * directory reached through a magic link): EINVAL naming cwd if not. */
int lc_chdir(const char *cwd, struct husk_error *err);
/* Child side. lc_fail sends err to the caller and exits; it never returns. */
_noreturn_ void lc_fail(const struct lc *lc, const struct husk_error *err);
/* Reset signal dispositions and the mask the caller (shim, huskd) set. */
void lc_reset_signals(void);
int lc_join_cgroups(char *const *procs, struct husk_error *err);
pid_t lc_clone_parent(void);
/* stdin/stdout/stderr from lc->stdio (non-tty). */
int lc_setup_stdio(const struct lc *lc, struct husk_error *err);
/* A pty from the devpts at /dev/pts: the master goes to the caller, the
 * slave becomes the controlling terminal and fds 0-2; console: also
 * bind it to /dev/console. */
int lc_setup_tty(const struct lc *lc, bool console, struct husk_error *err);
/* Stage 1, still in the caller's user and mount namespaces: fill the
 * lc->idmap_* fds when the spec asks for idmapped mounts (a no-op
 * otherwise). EINVAL naming the source a file system cannot idmap. */
int lc_idmap_prepare(struct lc *lc, struct husk_error *err);
/* Open the template mount namespace pinned at path: an fd, or -ENOENT,
 * -ENXIO (not a mount namespace) and the like. */
int lc_template_open(const char *path);
/* Stage 1, after lc_idmap_prepare and lc_cgroup_prepare, in the caller's
 * namespaces: when the spec names a usable template, open it and clone the
 * rootfs, the pod files, every bind source, /sys and the device nodes a
 * user namespace binds (propagation as the old copy of the caller's
 * namespace had it), then enter the template (the cwd and root with it).
 * Nothing done without one. */
int lc_template_prepare(struct lc *lc, struct husk_error *err);
/* Stage 1, in its cgroups and still in the caller's user and mount
 * namespaces: when the container gets a user namespace and a cgroup
 * namespace, fill lc->cgroup_trees (v1 hierarchies can only be mounted
 * from the initial user namespace; a bind of the container's own cgroup
 * directory shows what a cgroup namespace's mount would). Hierarchies not
 * mounted at the host's /sys/fs/cgroup/<name> are left out. */
int lc_cgroup_prepare(struct lc *lc, struct husk_error *err);
/* Stage 1, after the two above and the chdir into the rootfs, still in the
 * caller's user namespace: when there are clones, move them into a mount
 * namespace of stage 1's own under a tmpfs on the rootfs' /proc, so that
 * the container's namespace copied from it has their flags locked (a
 * read-only volume stays read-only for container root); their slots are
 * then taken again by lc_setup_rootfs. */
int lc_stage_clones(struct lc *lc, struct husk_error *err);
/* ctr_make_targets below rootfd (tests). */
void lc_make_targets_at(int rootfd, const struct ctr_spec *s, const char *cwd);
/* The rootfs: propagation, /proc, /sys, /dev, pod files, mounts, devices,
 * pivot_root, sysctls, masked and read-only paths, read-only root. */
int lc_setup_rootfs(struct lc *lc, struct husk_error *err);
/* rlimits, seccomp, capabilities, user, no_new_privs, cwd,
 * exec. Returns only on failure. */
int lc_finish_and_exec(const struct lc *lc, struct husk_error *err);

/* Resolve path inside the tree rooted at rootfd, so that neither symlinks
 * nor ".." can leave it; returns an O_PATH fd in *ret_fd. create makes the
 * missing components (directories, and a file or a directory for the last
 * one). use_openat2 false forces the component-by-component walk used on
 * kernels without openat2(2). Exposed for the unit tests. */
enum { CTR_CREATE_NONE, CTR_CREATE_DIR, CTR_CREATE_FILE };
int ctr_open_in_root(int rootfd, const char *path, int create, bool use_openat2, int *ret_fd,
		     struct husk_error *err);
/* The same without following any symlink at all (ELOOP when the path has
 * one), for masked and read-only paths. */
int ctr_open_in_root_nofollow(int rootfd, const char *path, bool use_openat2, int *ret_fd,
			      struct husk_error *err);
/* The component-by-component walk behind both: LC_WALK_NOFOLLOW fails
 * with ELOOP at a symlink, LC_WALK_SAME_DEV with EXDEV at a directory on
 * another file system than rootfd's (a mount inside the tree). */
enum { LC_WALK_NOFOLLOW = 1, LC_WALK_SAME_DEV = 2 };
int lc_walk_in_root(int rootfd, const char *path, int create, unsigned flags, int *ret_fd,
		    struct husk_error *err);

/* ---- JSON readers shared by the two spec formats: the OCI config
 * (config.c) and the spec file of an older huskd (spec.c) ---- */

/* Where a value comes from, for messages: "<kind> '<what>': <field>: ...". */
struct lcj {
	const char *kind; /* "config" or "spec" */
	const char *what; /* the file */
	struct husk_error *err;
};

/* EINVAL "<kind> '<what>': <field>: <message>". */
_printf_(3, 4) int lcj_err(struct lcj *c, const char *field, const char *fmt, ...);
/* Typed members of obj; a missing or null key leaves *out as it is. */
int lcj_str(struct lcj *c, yajl_val obj, const char *key, const char *field, char **out);
int lcj_bool(struct lcj *c, yajl_val obj, const char *key, const char *field, bool *out);
int lcj_u32(struct lcj *c, yajl_val obj, const char *key, const char *field, uint32_t *out);
int lcj_u64v(struct lcj *c, yajl_val v, const char *field, uint64_t max, uint64_t *out);
int lcj_strv(struct lcj *c, yajl_val v, const char *field, size_t max, char ***out);
int lcj_strv_key(struct lcj *c, yajl_val obj, const char *key, const char *field, size_t max,
		 char ***out);
/* *out: the array at key, or NULL when missing or null. */
int lcj_array(struct lcj *c, yajl_val obj, const char *key, const char *field, size_t max,
	      yajl_val *out);
/* The five capability sets of process.capabilities (missing ones empty). */
int lcj_caps(struct lcj *c, yajl_val v, struct lc_caps *caps);
/* process.rlimits: [{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 2}]. */
int lcj_rlimits(struct lcj *c, yajl_val v, struct ctr_spec *s);
/* One mount {"destination", "type", "source", "options"} into cm (zeroed
 * by the caller), options as ctr_mount_option reads them, the rest data. */
int lcj_mount(struct lcj *c, yajl_val m, const char *field, struct ctr_mount *cm);

#endif
