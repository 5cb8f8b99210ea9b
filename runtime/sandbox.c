/* Pod sandboxes: namespaces made by a short-lived child (cloned with huskd's
 * memory; forked for a user namespace, or a PID namespace without an init
 * binary) and pinned by bind mounts, an optional PID-namespace init, the
 * pod's /dev/shm tmpfs and its hostname, hosts and resolv.conf files;
 * teardown that undoes any part of that, whatever state a previous run
 * left behind. */
#include "runtime/sandbox.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/proc.h"

#define SANDBOX_RECORD "sandbox.json"
#define SANDBOX_RECORD_MAX (64 * 1024)
/* 2: pins and shm under S/pods-mnt/ID; 1: under S/pods/ID */
#define SANDBOX_RECORD_VERSION 2
#define PODS_MNT_SUFFIX "-mnt"
#define CHILD_TIMEOUT_MS 10000
#define KILL_TIMEOUT_MS 5000
#define MOUNTINFO_MAX (64U << 20)

/* ---- /proc helpers -------------------------------------------------------- */

/* State letter and start time of pid from /proc/PID/stat. */
#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int pod_ns_inode(const char *path, ino_t *ret_ino, struct husk_error *err)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return husk_error_errno(err, errno, "stat '%s'", path);
	struct statfs sfs;
	if (statfs(path, &sfs) < 0)
		return husk_error_errno(err, errno, "statfs '%s'", path);
	if ((unsigned long)sfs.f_type != (unsigned long)NSFS_MAGIC)
		return husk_error_set(err, ENXIO, "'%s': not a namespace", path);
	*ret_ino = st.st_ino;
	return 0;
}

/* ---- mounts --------------------------------------------------------------- */

struct mnt {
	char *point;
	bool shared; /* a member of a peer group (shared:N) */
	bool slave;  /* receives from a master (master:N) */
};

static void mnts_free(struct mnt *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(m[i].point);
	free(m);
}

/* mountinfo escapes blanks and backslashes as \NNN octal. */
static char *unescape(const char *s)
{
	char *out = xmalloc(strlen(s) + 1), *o = out;
	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
	return out;
}

/* Every mount of this process's mount namespace, in mountinfo order. */
static int read_mounts(struct mnt **ret, size_t *ret_n, struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	int r = fs_read_file("/proc/self/mountinfo", MOUNTINFO_MAX, &text, NULL, err);
	if (r < 0)
		return r;
	struct mnt *m = NULL;
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* id parent maj:min root point options [optional...] - type src super */
		char *fsave = NULL, *point = NULL;
		bool shared = false, slave = false;
		int field = 0;
		for (char *tok = strtok_r(line, " ", &fsave); tok;
		     tok = strtok_r(NULL, " ", &fsave)) {
			field++;
			if (field == 5)
				point = tok;
			else if (field >= 7 && streq(tok, "-"))
				break;
			else if (field >= 7 && startswith(tok, "shared:"))
				shared = true;
			else if (field >= 7 && startswith(tok, "master:"))
				slave = true;
		}
		if (!point)
			continue;
		m = xrealloc(m, (n + 1) * sizeof(*m));
		m[n].point = unescape(point);
		m[n].shared = shared;
		m[n].slave = slave;
		n++;
	}
	*ret = m;
	*ret_n = n;
	return 0;
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (streq(dir, "/"))
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int rt_mount_of(const char *path, char **ret_point, bool *ret_shared, bool *ret_slave,
		struct husk_error *err)
{
	_cleanup_free_ char *real = realpath(path, NULL);
	if (!real)
		return husk_error_errno(err, errno, "'%s'", path);
	struct mnt *m;
	size_t n;
	int r = read_mounts(&m, &n, err);
	if (r < 0)
		return r;
	/* The deepest mount point above path; of mounts stacked on one point
	 * the last listed is on top. */
	const struct mnt *best = NULL;
	for (size_t i = 0; i < n; i++)
		if (path_under(real, m[i].point) &&
		    (!best || strlen(m[i].point) >= strlen(best->point)))
			best = &m[i];
	if (!best) {
		mnts_free(m, n);
		return husk_error_set(err, ENOENT, "'%s' is on no mount", real);
	}
	*ret_point = xstrdup(best->point);
	*ret_shared = best->shared;
	*ret_slave = best->slave;
	mnts_free(m, n);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_depth_desc(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

/* Mount points at or below dir, deepest first. */
static int mounts_under(const char *dir, char ***ret, struct husk_error *err)
{
	struct mnt *m;
	size_t n;
	int r = read_mounts(&m, &n, err);
	if (r < 0)
		return r;
	char **v = xnew(char *, 1);
	for (size_t i = 0; i < n; i++)
		if (path_under(m[i].point, dir))
			v = strv_append(v, m[i].point);
	mnts_free(m, n);
	qsort(v, strv_length(v), sizeof(char *), cmp_depth_desc);
	*ret = v;
	return 0;
}

static bool is_mount_root(int dfd, const char *name, mode_t *ret_mode)
{
	struct statx stx;
	if (statx(dfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_TYPE, &stx) < 0) {
		*ret_mode = 0;
		return false;
	}
	*ret_mode = stx.stx_mode;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

/* Append the mount points below the directory fd (named path; closed here)
 * to v; a mount is not entered (a pod's shm holds what its containers wrote). */
static void find_mounts(int fd, const char *path, int depth, char ***v)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	int dfd = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (streq(e->d_name, ".") || streq(e->d_name, ".."))
			continue;
		mode_t mode;
		_cleanup_free_ char *child = xasprintf("%s/%s", path, e->d_name);
		if (is_mount_root(dfd, e->d_name, &mode)) {
			*v = strv_append(*v, child);
		} else if (S_ISDIR(mode) && depth < 8) {
			int c =
			    openat(dfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (c >= 0)
				find_mounts(c, child, depth + 1, v);
		}
	}
	closedir(d);
}

/* Mount points at or below dir, deepest first, found by walking dir: huskd's
 * own few files, where /proc/self/mountinfo lists every mount of every pod
 * on the node and made each teardown cost O(pods) (issue 12). */
static int mounts_in_tree(const char *dir, char ***ret, struct husk_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		return husk_error_errno(err, errno, "open '%s'", dir);
	char **v = xnew(char *, 1);
	mode_t mode;
	if (fd >= 0 && is_mount_root(AT_FDCWD, dir, &mode))
		v = strv_append(v, dir);
	if (fd >= 0)
		find_mounts(fd, dir, 0, &v);
	qsort(v, strv_length(v), sizeof(char *), cmp_depth_desc);
	*ret = v;
	return 0;
}

static int unmount_under(const char *dir, struct husk_error *err)
{
	/* Stacked mounts show up once per layer; a few rounds clear them. */
	for (int round = 0; round < 16; round++) {
		_cleanup_strv_ char **points = NULL;
		int r = mounts_in_tree(dir, &points, err);
		if (r < 0)
			return r;
		if (!points[0])
			return 0;
		for (size_t i = 0; points[i]; i++) {
			if (umount2(points[i], UMOUNT_NOFOLLOW) == 0)
				continue;
			if (errno == EBUSY && umount2(points[i], MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
				continue;
			if (errno != EINVAL && errno != ENOENT)
				return husk_error_errno(err, errno, "unmount '%s'", points[i]);
		}
	}
	return husk_error_set(err, EBUSY, "unmount under '%s': mounts remain", dir);
}

static pthread_mutex_t root_lock = PTHREAD_MUTEX_INITIALIZER;
static char *root_ensured; /* the mounts dir ensure_root last made, under root_lock */

/* Make mnts (S/pods-mnt) the private mount of its own that every pin and
 * shm is mounted below (fs_private_mount_ensure says why). Checked once
 * per dir until pod_sandbox_root_release, and again if it was unmounted. */
static int ensure_root(const char *mnts, struct husk_error *err)
{
	pthread_mutex_lock(&root_lock);
	int r = 0;
	if (!root_ensured || !streq(root_ensured, mnts) || !fs_is_mount_root(AT_FDCWD, mnts)) {
		r = fs_private_mount_ensure(mnts, 0711, err);
		if (r == 0) {
			free(root_ensured);
			root_ensured = xstrdup(mnts);
		}
	}
	pthread_mutex_unlock(&root_lock);
	return r;
}

/* <realpath(state_dir)>/pods. With create the state dir is made first;
 * without, a missing state dir is ENOENT. */
static int pods_dir(const char *state_dir, bool create, char **ret, struct husk_error *err)
{
	if (isempty(state_dir))
		return husk_error_set(err, EINVAL, "state dir: empty path");
	if (create) {
		int r = fs_mkdir_p(state_dir, 0711, err);
		if (r < 0)
			return r;
	}
	_cleanup_free_ char *real = realpath(state_dir, NULL);
	if (!real)
		return husk_error_errno(err, errno, "resolve state dir '%s'", state_dir);
	*ret = xasprintf("%s/pods", streq(real, "/") ? "" : real);
	return 0;
}

/* ---- the sandbox record ---------------------------------------------------- */

/* Where pod dir S/pods/ID mounts its pins and shm: S/pods-mnt/ID, apart
 * from the pod's files (the launcher's bind sources) so that a new mount
 * walks none of the other pods' mounts (issue 12). */
static char *mounts_dir_of(const char *dir)
{
	const char *slash = strrchr(dir, '/');
	return xasprintf("%.*s" PODS_MNT_SUFFIX "%s", (int)(slash - dir), dir, slash);
}

/* mnt: where the pins and shm are (the pod's own dir in records of
 * version 1, before they moved). */
static void fill_paths(struct pod_sandbox_info *info, const char *dir, const char *mnt)
{
	info->dir = xstrdup(dir);
	info->user_ns = info->userns ? xasprintf("%s/ns/user", mnt) : NULL;
	info->net_ns = info->net == POD_NS_POD ? xasprintf("%s/ns/net", mnt) : NULL;
	info->ipc_ns = info->ipc == POD_NS_POD ? xasprintf("%s/ns/ipc", mnt) : NULL;
	info->uts_ns = info->uts == POD_NS_POD ? xasprintf("%s/ns/uts", mnt) : NULL;
	info->pid_ns = info->pid == POD_NS_POD ? xasprintf("%s/ns/pid", mnt) : NULL;
	info->shm = info->ipc == POD_NS_POD ? xasprintf("%s/shm", mnt) : xstrdup("/dev/shm");
	info->hostname_file = xasprintf("%s/hostname", dir);
	info->hosts_file = xasprintf("%s/hosts", dir);
	info->resolv_file = xasprintf("%s/resolv.conf", dir);
}

static int record_write(const struct pod_sandbox_info *info, struct husk_error *err)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(true);
	yajl_gen_map_open(g);
	json_kv_int(g, "version", SANDBOX_RECORD_VERSION);
	json_kv_str(g, "id", info->id);
	json_kv_str(g, "hostname", info->hostname);
	json_kv_str(g, "network", pod_ns_mode_name(info->net));
	json_kv_str(g, "ipc", pod_ns_mode_name(info->ipc));
	json_kv_str(g, "uts", pod_ns_mode_name(info->uts));
	json_kv_str(g, "pid", pod_ns_mode_name(info->pid));
	json_kv_str(g, "user", pod_ns_mode_name(info->userns ? POD_NS_POD : POD_NS_NODE));
	json_kv_int(g, "init_pid", info->init_pid);
	json_kv_int(g, "init_start_time", (long long)info->init_start_time);
	yajl_gen_map_close(g);
	_cleanup_free_ char *text = json_gen_steal(g);
	_cleanup_free_ char *path = xasprintf("%s/" SANDBOX_RECORD, info->dir);
	return fs_write_replace(path, text, strlen(text), 0644, err);
}

static int record_read(const char *dir, struct pod_sandbox_info *ret, struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" SANDBOX_RECORD, dir);
	_cleanup_json_ yajl_val tree = NULL;
	int r = json_parse_file(path, SANDBOX_RECORD_MAX, &tree, err);
	if (r < 0)
		return r;
	const char *id = json_get_string(tree, "id");
	const char *hostname = json_get_string(tree, "hostname");
	int modes[4];
	const char *keys[4] = {"network", "ipc", "uts", "pid"};
	for (int i = 0; i < 4; i++) {
		modes[i] = pod_ns_mode_parse(json_get_string(tree, keys[i]));
		if (modes[i] < 0)
			return husk_error_set(err, EIO, "parse '%s': bad '%s'", path, keys[i]);
	}
	if (!id || !hostname)
		return husk_error_set(err, EIO, "parse '%s': missing id or hostname", path);
	struct pod_sandbox_info info = {
	    .id = xstrdup(id),
	    .hostname = xstrdup(hostname),
	    .net = modes[0],
	    .ipc = modes[1],
	    .uts = modes[2],
	    .pid = modes[3],
	    /* Records from before user namespaces have no "user". */
	    .userns = streq(json_get_string(tree, "user"), "POD"),
	    .init_pid = (pid_t)json_get_int(tree, "init_pid", 0),
	    .init_start_time = (unsigned long long)json_get_int(tree, "init_start_time", 0),
	};
	/* Version 1: pins and shm in the pod's own dir (huskd before the
	 * mounts moved), which teardown still clears. */
	_cleanup_free_ char *mnt = mounts_dir_of(dir);
	fill_paths(&info, dir, json_get_int(tree, "version", 1) >= 2 ? mnt : dir);
	*ret = info;
	return 0;
}

/* ---- teardown ------------------------------------------------------------- */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait until the process pid that started at start is gone. A zombie
 * counts as gone, and is reaped when it is ours (husk may be a subreaper,
 * or the init may have died before its parent was released). */
static int wait_gone(pid_t pid, unsigned long long start, struct husk_error *err)
{
	for (long waited = 0;; waited += 2) {
		char state = 0;
		unsigned long long st = 0;
		if (proc_stat_read(pid, &state, &st, NULL) < 0 || st != start)
			return 0;
		if (state == 'Z' || state == 'X') {
			waitpid(pid, NULL, WNOHANG);
			return 0;
		}
		if (waited >= KILL_TIMEOUT_MS)
			return husk_error_set(err, ETIMEDOUT, "kill pod init %d: still running",
					      (int)pid);
		sleep_ms(2);
	}
}

/* Processes whose PID namespace has inode ino, with their start times. */
static size_t pidns_members(ino_t ino, pid_t *pids, unsigned long long *starts, size_t max)
{
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	char want[64];
	snprintf(want, sizeof(want), "pid:[%llu]", (unsigned long long)ino);
	size_t n = 0;
	struct dirent *de;
	while (n < max && (de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char link[64], target[64];
		snprintf(link, sizeof(link), "/proc/%ld/ns/pid", pid);
		ssize_t len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		char state = 0;
		if (!streq(target, want) ||
		    proc_stat_read((pid_t)pid, &state, &starts[n], NULL) < 0)
			continue;
		pids[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

static int kill_init(const char *dir, const char *mnt, const struct pod_sandbox_info *rec,
		     struct husk_error *err)
{
	/* Where either layout puts it: a pod made before the mounts moved to
	 * S/pods-mnt has it in its own dir. */
	_cleanup_free_ char *pin = xasprintf("%s/ns/pid", mnt);
	if (!fs_exists(pin)) {
		free(pin);
		pin = xasprintf("%s/ns/pid", dir);
	}
	ino_t ino = 0;
	bool pinned = pod_ns_inode(pin, &ino, NULL) == 0;
	/* The record is written after the pins, from the init they were taken
	 * from; a live init is checked against the pin all the same. */
	bool ns_init = rec && rec->init_pid > 0;
	if (rec && rec->init_pid > 0) {
		if (proc_alive(rec->init_pid, rec->init_start_time)) {
			char link[64];
			struct stat st;
			snprintf(link, sizeof(link), "/proc/%d/ns/pid", (int)rec->init_pid);
			if (stat(link, &st) == 0 && proc_alive(rec->init_pid, rec->init_start_time))
				ns_init = pinned && st.st_ino == ino;
			kill(rec->init_pid, SIGKILL);
		}
		int r = wait_gone(rec->init_pid, rec->init_start_time, err);
		if (r < 0)
			return r;
	}
	/* The kernel kills what runs in a PID namespace before its init is
	 * gone, and nothing enters it after: with the recorded init of the
	 * pinned namespace gone, nothing is left, and the scan of every
	 * process on the node below (O(pods) per teardown, issue 12) is not
	 * needed. */
	if (!pinned || ns_init)
		return 0;
	/* Whatever still runs in the pinned PID namespace goes too: after a
	 * crash before the record was written, or with a stale record. Killing
	 * the namespace's init takes the rest with it, so this is one round. */
	pid_t pids[256];
	unsigned long long starts[256];
	for (int round = 0; round < 4; round++) {
		size_t n = pidns_members(ino, pids, starts, ARRAY_SIZE(pids));
		if (n == 0)
			return 0;
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		for (size_t i = 0; i < n; i++) {
			int r = wait_gone(pids[i], starts[i], err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int teardown(const char *dir, struct husk_error *err)
{
	_cleanup_free_ char *mnt = mounts_dir_of(dir);
	struct stat st;
	bool have_dir = lstat(dir, &st) == 0;
	if (!have_dir && errno != ENOENT)
		return husk_error_errno(err, errno, "stat '%s'", dir);
	bool have_mnt = lstat(mnt, &st) == 0;
	if (!have_mnt && errno != ENOENT)
		return husk_error_errno(err, errno, "stat '%s'", mnt);
	if (!have_dir && !have_mnt)
		return 0;
	struct pod_sandbox_info rec = {0};
	bool have = have_dir && record_read(dir, &rec, NULL) == 0;
	int r = kill_init(dir, mnt, have ? &rec : NULL, err);
	pod_sandbox_info_clear(&rec);
	if (r < 0)
		return r;
	/* Both dirs whatever the record says (a half-made pod has none, one
	 * from before the move has its pins in dir); the mounts' dir first, as
	 * the pod's dir is what makes a pod listed until it is all gone. */
	r = unmount_under(mnt, err);
	if (r == 0)
		r = fs_rm_rf(mnt, err);
	if (r == 0)
		r = unmount_under(dir, err);
	if (r == 0)
		r = fs_rm_rf(dir, err);
	return r;
}

int pod_sandbox_destroy(const char *state_dir, const char *id, struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "destroy pod '%.*s': invalid id", POD_ID_MAX,
				      id ? id : "");
	_cleanup_free_ char *pods = NULL;
	int r = pods_dir(state_dir, false, &pods, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		return 0;
	}
	if (r < 0)
		return husk_error_prefix(err, "destroy pod '%s'", id);
	_cleanup_free_ char *dir = xasprintf("%s/%s", pods, id);
	r = teardown(dir, err);
	if (r < 0)
		return husk_error_prefix(err, "destroy pod '%s'", id);
	return 0;
}

/* ---- the namespace child and the init ---------------------------------------- */

/* What the namespace child sends back: success with the init's pid, or an
 * error (errno-style code, errno to append, and a message). */
struct child_report {
	int code;
	int sys_errno;
	bool map_me; /* in a new user namespace: write its maps, then send 'M' */
	pid_t init_pid;
	char msg[512];
};

struct ns_child {
	pid_t parent;
	int flags;
	bool userns;	      /* unshare a user namespace first, mapped by the parent */
	const char *hostname; /* NULL: leave as is */
	char **sysctl_paths;  /* /proc/sys/... */
	const struct pod_sysctl *sysctls;
	size_t n_sysctls;
	const char *init_path;
	int report[2], release[2], go[2], exec[2];
	pid_t init_pid;			     /* the fast path's init (init_spawn) */
	const struct pod_sandbox_info *info; /* where pin_self pins */
};

static void write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* The namespaces a pod may pin: clone flag, name under /proc/PID/ns, and
 * the pin's path in info (NULL where the pod uses the host's). */
enum { NS_PINS = 5 };
struct ns_pin {
	int flag;
	const char *name, *dst;
};

static void ns_pins(const struct pod_sandbox_info *info, struct ns_pin pins[NS_PINS])
{
	pins[0] = (struct ns_pin){CLONE_NEWUSER, "user", info->user_ns};
	pins[1] = (struct ns_pin){CLONE_NEWNET, "net", info->net_ns};
	pins[2] = (struct ns_pin){CLONE_NEWIPC, "ipc", info->ipc_ns};
	pins[3] = (struct ns_pin){CLONE_NEWUTS, "uts", info->uts_ns};
	pins[4] = (struct ns_pin){CLONE_NEWPID, "pid", info->pid_ns};
}

/* Pin the namespace file src at dst, a new empty file: 0, or the step
 * that failed (1: create dst, 2: bind), errno set. System calls only. */
static int pin_at(const char *src, const char *dst)
{
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		return 1;
	close(fd);
	return mount(src, dst, NULL, MS_BIND, NULL) < 0 ? 2 : 0;
}

static _noreturn_ _printf_(4, 5) void child_fail(int fd, int code, int sys_errno, const char *fmt,
						 ...)
{
	struct child_report rep = {.code = code, .sys_errno = sys_errno};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rep.msg, sizeof(rep.msg), fmt, ap);
	va_end(ap);
	write_full(fd, &rep, sizeof(rep));
	_exit(1);
}

/* The PID namespace's init. Waits for create to say go (or exits if create
 * went away), then either execs init_path or reaps zombies until SIGTERM or
 * SIGINT. Runs in a fork of a possibly multi-threaded process: only
 * async-signal-safe calls here. */
static _noreturn_ void init_main(int go_fd, int exec_fd, const char *init_path)
{
	char c = 0;
	ssize_t n;
	do
		n = read(go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n != 1 || c != 'G')
		_exit(0);
	setsid();
	if (chdir("/") < 0)
		_exit(1);
	if (exec_fd < 3)
		exec_fd = fcntl(exec_fd, F_DUPFD_CLOEXEC, 3);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0)
		for (int fd = 0; fd < 3; fd++)
			dup2(null, fd);
	proc_signals_default(true);
	sigset_t all;
	sigfillset(&all);
	if (init_path) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (exec_fd > 3)
			close_range(3, (unsigned)exec_fd - 1, 0);
		close_range((unsigned)exec_fd + 1, ~0U, 0);
		char *const argv[] = {(char *)init_path, NULL};
		char *const envp[] = {NULL};
		execve(init_path, argv, envp);
		int e = errno;
		write_full(exec_fd, &e, sizeof(e));
		_exit(127);
	}
	close_range(3, ~0U, 0);
	/* Blocked signals are queued even for a namespace init, so SIGTERM sent
	 * from inside the pod reaches sigwaitinfo. */
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (;;) {
		siginfo_t si;
		int s = sigwaitinfo(&all, &si);
		if (s == SIGTERM || s == SIGINT)
			_exit(0);
		if (s == SIGCHLD)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
	}
}

static void set_loopback_up(int rep)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		child_fail(rep, EIO, errno, "loopback: socket");
	struct ifreq ifr = {0};
	memcpy(ifr.ifr_name, "lo", 3);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		child_fail(rep, EIO, errno, "loopback: get flags");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		child_fail(rep, EIO, errno, "loopback: set up");
	close(s);
}

/* Inside the new namespaces: hostname, loopback, sysctls. */
static void configure(const struct ns_child *c, int rep)
{
	if (c->hostname && sethostname(c->hostname, strlen(c->hostname)) < 0)
		child_fail(rep, EIO, errno, "set hostname '%s'", c->hostname);
	if (c->flags & CLONE_NEWNET)
		set_loopback_up(rep);
	for (size_t i = 0; i < c->n_sysctls; i++) {
		const struct pod_sysctl *s = &c->sysctls[i];
		int fd = open(c->sysctl_paths[i], O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 && errno == ENOENT)
			child_fail(rep, EINVAL, 0,
				   "sysctl '%s': not available in the pod's namespaces", s->name);
		if (fd < 0)
			child_fail(rep, EINVAL, errno, "sysctl '%s'", s->name);
		size_t len = strlen(s->value);
		ssize_t n;
		do
			n = write(fd, s->value, len);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			child_fail(rep, EINVAL, errno, "sysctl '%s' = '%s'", s->name, s->value);
		close(fd);
	}
}

/* close_range() around the descriptors in keep (which it sorts; by hand,
 * as this runs in a forked child). */
static void close_all_but(int *keep, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	unsigned lo = 3;
	for (size_t i = 0; i < n; i++) {
		if (keep[i] < 0 || (unsigned)keep[i] < lo)
			continue;
		if ((unsigned)keep[i] > lo)
			close_range(lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	close_range(lo, ~0U, 0);
}

/* The namespace child: unshare, configure, report, then hold the
 * namespaces until the parent has pinned them and closes the release pipe.
 * Only async-signal-safe calls (plus vsnprintf without %m or wide strings). */
static _noreturn_ void ns_child_main(struct ns_child *c)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* Like every process forked to enter a container (runtime/launcher/launch.c):
	 * until the pod's init execs, nothing in the pod may ptrace it or open
	 * huskd's binary through /proc/PID/exe. */
	prctl(PR_SET_DUMPABLE, 0);
	if (getppid() != c->parent)
		_exit(1);
	/* Drop every inherited descriptor but our pipe ends: a concurrent create
	 * must never wait for EOF on a pipe this child (or the init) holds. */
	int keep[4] = {c->report[1], c->release[0], c->go[0], c->exec[1]};
	close_all_but(keep, ARRAY_SIZE(keep));
	int rep = c->report[1];
	if (c->userns) {
		/* First, so that it owns the others; the parent (root outside)
		 * writes the maps, then we are root inside it. */
		if (unshare(CLONE_NEWUSER) < 0)
			child_fail(rep, EIO, errno, "unshare user namespace");
		struct child_report ask = {.map_me = true};
		write_full(rep, &ask, sizeof(ask));
		char m = 0;
		ssize_t n;
		do
			n = read(c->release[0], &m, 1);
		while (n < 0 && errno == EINTR);
		if (n != 1 || m != 'M')
			_exit(1);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			child_fail(rep, EIO, errno, "user namespace: become root");
	}
	if (unshare(c->flags) < 0)
		child_fail(rep, EIO, errno, "unshare namespaces");
	configure(c, rep);
	pid_t init = 0;
	if (c->flags & CLONE_NEWPID) {
		init = fork();
		if (init < 0)
			child_fail(rep, EIO, errno, "fork pod init");
		if (init == 0) {
			close(rep);
			close(c->release[0]);
			init_main(c->go[0], c->exec[1], c->init_path);
		}
		close(c->go[0]);
		close(c->exec[1]);
	}
	struct child_report ok = {.init_pid = init};
	write_full(rep, &ok, sizeof(ok));
	char b;
	while (read(c->release[0], &b, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

/* The fast path (a PID namespace, an init binary, no user namespace): the
 * init is cloned into the pod's new namespaces, configures them and execs
 * before proc_clone_vm returns; huskd then pins them from it. No fork of
 * huskd (issue 12). Nothing else is in these namespaces yet, so nothing to
 * keep out while it shares huskd's memory (PR_SET_DUMPABLE would mark it). */
static int init_exec(void *p)
{
	const struct ns_child *c = p;
	int rep = c->report[1];
	if (rep < 3)
		rep = fcntl(rep, F_DUPFD_CLOEXEC, 3);
	configure(c, rep);
	setsid();
	if (chdir("/") < 0)
		child_fail(rep, EIO, errno, "pod init: chdir /");
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0)
		for (int fd = 0; fd < 3; fd++)
			dup2(null, fd);
	if (rep > 3)
		close_range(3, (unsigned)rep - 1, 0);
	close_range((unsigned)rep + 1, ~0U, 0);
	/* A pod init starts with no signal ignored or blocked. */
	proc_signals_default(true);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	char *const argv[] = {(char *)c->init_path, NULL};
	char *const envp[] = {NULL};
	execve(c->init_path, argv, envp);
	child_fail(rep, errno, errno, "exec pod init '%s'", c->init_path);
}

/* Between huskd and the init, so that the init is nobody's child in huskd
 * (init or the subreaper reaps it, as with the forked path). */
static int init_spawn(void *p)
{
	struct ns_child *c = p;
	pid_t pid = proc_clone_vm((unsigned long)c->flags, c->report[1], init_exec, c);
	if (pid < 0)
		child_fail(c->report[1], EIO, -pid, "clone pod init");
	c->init_pid = pid; /* our memory is huskd's */
	return 0;
}

/* Without a PID or user namespace (the kubelet's pods unless one sets
 * shareProcessNamespace): cloned into the new namespaces with huskd's
 * memory, the child configures and pins them itself (binds of
 * /proc/self/ns/NAME into huskd's mount namespace, as `ip netns add`
 * does) and exits. A fork of huskd here cost copy-on-write faults and TLB
 * shootdowns in all huskd's threads (issue 12). System calls only. */
static int pin_self(void *p)
{
	const struct ns_child *c = p;
	int rep = c->report[1];
	if (rep < 3)
		rep = fcntl(rep, F_DUPFD_CLOEXEC, 3);
	/* Our copy of huskd's descriptors: none held past this point. */
	if (rep > 3)
		close_range(3, (unsigned)rep - 1, 0);
	close_range((unsigned)rep + 1, ~0U, 0);
	configure(c, rep);
	struct ns_pin pins[NS_PINS];
	ns_pins(c->info, pins);
	for (size_t i = 0; i < NS_PINS; i++) {
		if (!(c->flags & pins[i].flag))
			continue;
		char src[32];
		snprintf(src, sizeof(src), "/proc/self/ns/%s", pins[i].name);
		int step = pin_at(src, pins[i].dst);
		if (step == 1)
			child_fail(rep, EIO, errno, "create pin '%s'", pins[i].dst);
		if (step == 2)
			child_fail(rep, EIO, errno, "pin '%s' at '%s'", src, pins[i].dst);
	}
	_exit(0);
}

/* ---- create ---------------------------------------------------------------- */

/* Everything create holds while it builds; released by build_abort. */
struct build {
	pid_t child;
	pid_t init;
	unsigned long long init_start;
	int report_rd, release_wr, go_wr, exec_rd;
};

static void build_close(struct build *b)
{
	closep(&b->release_wr);
	closep(&b->go_wr); /* an init still waiting exits when it reads EOF here */
	closep(&b->report_rd);
	closep(&b->exec_rd);
}

static void build_abort(struct build *b)
{
	build_close(b);
	if (b->child > 0) {
		kill(b->child, SIGKILL);
		waitpid(b->child, NULL, 0);
		b->child = 0;
	}
	if (b->init > 0 && b->init_start) {
		if (proc_alive(b->init, b->init_start))
			kill(b->init, SIGKILL);
		wait_gone(b->init, b->init_start, NULL);
	}
	b->init = 0;
}

/* Wait up to CHILD_TIMEOUT_MS for fd to become readable, then read len
 * bytes; returns the bytes read (less than len at EOF) or -errno. */
static ssize_t read_timeout(int fd, void *buf, size_t len)
{
	size_t got = 0;
	long long deadline = now_mono_ns() + CHILD_TIMEOUT_MS * 1000000LL;
	while (got < len) {
		long long left = (deadline - now_mono_ns()) / 1000000LL;
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static int child_status_error(pid_t child, struct husk_error *err)
{
	int status = 0;
	if (waitpid(child, &status, 0) < 0)
		return husk_error_errno(err, errno, "namespace child");
	if (WIFSIGNALED(status))
		return husk_error_set(err, EIO, "namespace child killed by signal %d",
				      WTERMSIG(status));
	return husk_error_set(err, EIO, "namespace child exited with status %d",
			      WEXITSTATUS(status));
}

static int make_pipe(int fds[2], struct husk_error *err)
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return husk_error_errno(err, errno, "pipe");
	return 0;
}

static int write_idmap(pid_t pid, const char *file, const struct pod_idmap *m, size_t n,
		       struct husk_error *err)
{
	char buf[POD_MAX_IDMAPS * 33 + 1];
	size_t len = 0;
	for (size_t i = 0; i < n && i < POD_MAX_IDMAPS; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n",
					m[i].container_id, m[i].host_id, m[i].size);
	_cleanup_free_ char *path = xasprintf("/proc/%d/%s", (int)pid, file);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_errno(err, errno, "user namespace: open '%s'", path);
	/* The kernel takes the whole map in one write or not at all. */
	if (write(fd, buf, len) != (ssize_t)len)
		return husk_error_errno(err, errno, "user namespace: write %s", file);
	return 0;
}

static int write_idmaps(pid_t child, const struct pod_sandbox_spec *spec, struct husk_error *err)
{
	int r = write_idmap(child, "uid_map", spec->uid_map, spec->n_uid_map, err);
	if (r == 0)
		r = write_idmap(child, "gid_map", spec->gid_map, spec->n_gid_map, err);
	return r;
}

/* Bind-mount each new namespace of flags (the PID namespace from init, the
 * others from child) onto its file in info. */
static int pin_namespaces(int flags, pid_t child, pid_t init, const struct pod_sandbox_info *info,
			  struct husk_error *err)
{
	struct ns_pin pins[NS_PINS];
	ns_pins(info, pins);
	for (size_t i = 0; i < NS_PINS; i++) {
		if (!(flags & pins[i].flag))
			continue;
		char src[64];
		pid_t owner = pins[i].flag == CLONE_NEWPID ? init : child;
		snprintf(src, sizeof(src), "/proc/%d/ns/%s", (int)owner, pins[i].name);
		int step = pin_at(src, pins[i].dst);
		if (step == 1)
			return husk_error_errno(err, errno, "create pin '%s'", pins[i].dst);
		if (step == 2)
			return husk_error_errno(err, errno, "pin '%s' at '%s'", src, pins[i].dst);
	}
	return 0;
}

/* Clone fn with huskd's memory (and flags) and wait for it and what it
 * starts: when this returns, they are past exec or exit, and a report,
 * if any, is written. */
static int clone_child(unsigned long flags, int (*fn)(void *), struct ns_child *c,
		       struct husk_error *err)
{
	int r = make_pipe(c->report, err);
	if (r < 0)
		return r;
	_cleanup_close_ int report_rd = steal_fd(&c->report[0]);
	pid_t pid = proc_clone_vm(flags, c->report[1], fn, c);
	closep(&c->report[1]);
	if (pid < 0)
		return husk_error_errno(err, (int)-pid, "clone namespace child");
	int status = 0;
	pid_t w;
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (fcntl(report_rd, F_SETFL, O_NONBLOCK) < 0)
		return husk_error_errno(err, errno, "read from namespace child");
	struct child_report rep;
	if (read(report_rd, &rep, sizeof(rep)) == (ssize_t)sizeof(rep)) {
		rep.msg[sizeof(rep.msg) - 1] = '\0';
		if (rep.sys_errno)
			return husk_error_set(err, rep.code ? rep.code : EIO, "%s: %s", rep.msg,
					      strerror(rep.sys_errno));
		return husk_error_set(err, rep.code ? rep.code : EIO, "%s", rep.msg);
	}
	if (w != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		return husk_error_set(err, EIO, "namespace child did not exit cleanly");
	return 0;
}

/* The fast path of make_namespaces (init_exec): when this returns, the init
 * has exec'd in its new namespaces or failed and said why. */
static int spawn_init(struct build *b, struct ns_child *c, struct pod_sandbox_info *info,
		      struct husk_error *err)
{
	int r = clone_child(0, init_spawn, c, err);
	if (r < 0)
		return r;
	if (c->init_pid <= 0)
		return husk_error_set(err, EIO, "namespace child did not exit cleanly");
	b->init = c->init_pid;
	r = proc_start_time(b->init, &b->init_start, err);
	if (r < 0)
		return husk_error_prefix(err, "pod init");
	info->init_pid = b->init;
	info->init_start_time = b->init_start;
	return pin_namespaces(c->flags, b->init, b->init, info, err);
}

/* Fork the namespace child, pin what it made, start the init. */
static int make_namespaces(struct build *b, const struct pod_sandbox_spec *spec,
			   struct pod_sandbox_info *info, struct husk_error *err)
{
	int flags = 0;
	if (spec->net == POD_NS_POD)
		flags |= CLONE_NEWNET;
	if (spec->ipc == POD_NS_POD)
		flags |= CLONE_NEWIPC;
	if (spec->uts == POD_NS_POD)
		flags |= CLONE_NEWUTS;
	if (spec->pid == POD_NS_POD)
		flags |= CLONE_NEWPID;
	if (!flags && !spec->userns)
		return 0;

	_cleanup_strv_ char **paths = xnew(char *, spec->n_sysctls + 1);
	for (size_t i = 0; i < spec->n_sysctls; i++) {
		enum sysctl_ns ns;
		paths[i] = pod_sysctl_path(spec->sysctls[i].name, &ns);
		if (!paths[i])
			return husk_error_set(err, EINVAL, "sysctl '%s': malformed name",
					      spec->sysctls[i].name);
	}
	struct ns_child c = {
	    .parent = getpid(),
	    .flags = flags,
	    .userns = spec->userns,
	    .hostname = spec->uts == POD_NS_POD ? info->hostname : NULL,
	    .sysctl_paths = paths,
	    .sysctls = spec->sysctls,
	    .n_sysctls = spec->n_sysctls,
	    .init_path = spec->init_path,
	    .report = {-1, -1},
	    .release = {-1, -1},
	    .go = {-1, -1},
	    .exec = {-1, -1},
	};
	if (!spec->userns && (flags & CLONE_NEWPID) && spec->init_path)
		return spawn_init(b, &c, info, err);
	/* pin_self's path: what it pinned before a failure is unmounted with
	 * the pod's directory, as after any failed create. */
	c.info = info;
	if (!spec->userns && !(flags & CLONE_NEWPID))
		return clone_child((unsigned long)flags, pin_self, &c, err);
	int r = make_pipe(c.report, err);
	if (r == 0)
		r = make_pipe(c.release, err);
	if (r == 0)
		r = make_pipe(c.go, err);
	if (r == 0)
		r = make_pipe(c.exec, err);
	if (r == 0) {
		b->child = fork();
		if (b->child < 0) {
			b->child = 0;
			r = husk_error_errno(err, errno, "fork namespace child");
		} else if (b->child == 0) {
			ns_child_main(&c);
		}
	}
	/* Keep only the parent's ends. */
	b->report_rd = steal_fd(&c.report[0]);
	b->release_wr = steal_fd(&c.release[1]);
	b->go_wr = steal_fd(&c.go[1]);
	b->exec_rd = steal_fd(&c.exec[0]);
	closep(&c.report[1]);
	closep(&c.release[0]);
	closep(&c.go[0]);
	closep(&c.exec[1]);
	if (r < 0)
		return r;

	struct child_report rep;
	ssize_t n = read_timeout(b->report_rd, &rep, sizeof(rep));
	if (spec->userns && n == (ssize_t)sizeof(rep) && rep.map_me) {
		r = write_idmaps(b->child, spec, err);
		if (r < 0)
			return r;
		write_full(b->release_wr, "M", 1);
		n = read_timeout(b->report_rd, &rep, sizeof(rep));
	}
	if (n == -ETIMEDOUT)
		return husk_error_set(err, ETIMEDOUT, "namespace child: no answer in %d ms",
				      CHILD_TIMEOUT_MS);
	if (n < 0)
		return husk_error_errno(err, (int)-n, "read from namespace child");
	if ((size_t)n < sizeof(rep)) {
		pid_t child = b->child;
		b->child = 0;
		return child_status_error(child, err);
	}
	rep.msg[sizeof(rep.msg) - 1] = '\0';
	if (rep.code) {
		if (rep.sys_errno)
			return husk_error_set(err, rep.code, "%s: %s", rep.msg,
					      strerror(rep.sys_errno));
		return husk_error_set(err, rep.code, "%s", rep.msg);
	}
	if (flags & CLONE_NEWPID) {
		b->init = rep.init_pid;
		r = proc_start_time(b->init, &b->init_start, err);
		if (r < 0)
			return husk_error_prefix(err, "pod init");
		info->init_pid = b->init;
		info->init_start_time = b->init_start;
	}

	if (spec->userns)
		flags |= CLONE_NEWUSER;
	r = pin_namespaces(flags, b->child, b->init, info, err);
	if (r < 0)
		return r;

	write_full(b->release_wr, "R", 1);
	closep(&b->release_wr);
	pid_t child = b->child;
	b->child = 0;
	int status;
	if (waitpid(child, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
		return husk_error_set(err, EIO, "namespace child did not exit cleanly");

	if (flags & CLONE_NEWPID) {
		write_full(b->go_wr, "G", 1);
		closep(&b->go_wr);
		int e = 0;
		n = read_timeout(b->exec_rd, &e, sizeof(e));
		closep(&b->exec_rd);
		if (n == -ETIMEDOUT)
			return husk_error_set(err, ETIMEDOUT, "pod init: no answer in %d ms",
					      CHILD_TIMEOUT_MS);
		if (n == (ssize_t)sizeof(e))
			return husk_error_errno(err, e, "exec pod init '%s'", spec->init_path);
	}
	closep(&b->report_rd);
	closep(&b->exec_rd);
	return 0;
}

static int mount_shm(const char *path, uint64_t size, struct husk_error *err)
{
	if (mkdir(path, 0755) < 0)
		return husk_error_errno(err, errno, "mkdir '%s'", path);
	char opts[64];
	snprintf(opts, sizeof(opts), "mode=1777,size=%llu", (unsigned long long)size);
	if (mount("shm", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0)
		return husk_error_errno(err, errno, "mount shm at '%s'", path);
	return 0;
}

static int build_sandbox(struct build *b, const struct pod_sandbox_spec *spec, const char *mnt,
			 struct pod_sandbox_info *info, struct husk_error *err)
{
	int r = 0;
	if (spec->userns || spec->net == POD_NS_POD || spec->ipc == POD_NS_POD ||
	    spec->uts == POD_NS_POD || spec->pid == POD_NS_POD) {
		if (mkdir(mnt, 0711) < 0)
			return husk_error_errno(err, errno, "mkdir '%s'", mnt);
		_cleanup_free_ char *ns = xasprintf("%s/ns", mnt);
		if (mkdir(ns, 0711) < 0)
			return husk_error_errno(err, errno, "mkdir '%s'", ns);
	}
	r = make_namespaces(b, spec, info, err);
	if (r < 0)
		return r;
	if (spec->ipc == POD_NS_POD) {
		r = mount_shm(info->shm, spec->shm_size ? spec->shm_size : POD_SHM_SIZE_DEFAULT,
			      err);
		if (r < 0)
			return r;
	}
	r = pod_sandbox_write_files(spec, info, err);
	if (r < 0)
		return r;
	/* Written last: its presence marks a complete sandbox. */
	return record_write(info, err);
}

int pod_sandbox_create(const char *state_dir, const struct pod_sandbox_spec *spec,
		       struct pod_sandbox_info *ret_info, struct husk_error *err)
{
	int r = pod_spec_check(spec, err);
	if (r < 0)
		return husk_error_prefix(err, "create pod sandbox");
	_cleanup_free_ char *pods = NULL, *mnts = NULL;
	r = pods_dir(state_dir, true, &pods, err);
	if (r == 0)
		r = fs_mkdir_p(pods, 0711, err);
	if (r == 0) {
		mnts = xasprintf("%s" PODS_MNT_SUFFIX, pods);
		r = ensure_root(mnts, err);
	}
	if (r < 0)
		return husk_error_prefix(err, "create pod '%s'", spec->id);

	struct pod_sandbox_info info = {
	    .id = xstrdup(spec->id),
	    .net = spec->net,
	    .ipc = spec->ipc,
	    .uts = spec->uts,
	    .pid = spec->pid,
	    .userns = spec->userns,
	};
	if (spec->userns) {
		info.uid_map = pod_idmaps_dup(spec->uid_map, spec->n_uid_map);
		info.gid_map = pod_idmaps_dup(spec->gid_map, spec->n_gid_map);
		info.n_uid_map = info.uid_map ? spec->n_uid_map : 0;
		info.n_gid_map = info.gid_map ? spec->n_gid_map : 0;
	}
	if (spec->uts == POD_NS_NODE) {
		char host[HOST_NAME_MAX + 1] = "";
		if (gethostname(host, sizeof(host)) < 0)
			host[0] = '\0';
		host[HOST_NAME_MAX] = '\0';
		info.hostname = xstrdup(host);
	} else if (!isempty(spec->hostname)) {
		info.hostname = xstrdup(spec->hostname);
	} else {
		info.hostname = xstrndup(spec->id, 12);
	}
	_cleanup_free_ char *dir = xasprintf("%s/%s", pods, spec->id);
	_cleanup_free_ char *mnt = xasprintf("%s/%s", mnts, spec->id);
	fill_paths(&info, dir, mnt);

	if (mkdir(dir, 0711) < 0) {
		r = errno == EEXIST
			? husk_error_set(err, EEXIST, "create pod '%s': '%s' exists", spec->id, dir)
			: husk_error_errno(err, errno, "create pod '%s': mkdir '%s'", spec->id,
					   dir);
		pod_sandbox_info_clear(&info);
		return r;
	}

	struct build b = {.report_rd = -1, .release_wr = -1, .go_wr = -1, .exec_rd = -1};
	r = build_sandbox(&b, spec, mnt, &info, err);
	if (r < 0) {
		build_abort(&b);
		/* The first error is the one to report; teardown is best effort. */
		teardown(dir, NULL);
		pod_sandbox_info_clear(&info);
		return husk_error_prefix(err, "create pod '%s'", spec->id);
	}
	build_close(&b);
	*ret_info = info;
	return 0;
}

/* ---- queries ------------------------------------------------------------------ */

int pod_sandbox_load(const char *state_dir, const char *id, struct pod_sandbox_info *ret_info,
		     struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "load pod '%.*s': invalid id", POD_ID_MAX,
				      id ? id : "");
	_cleanup_free_ char *pods = NULL;
	int r = pods_dir(state_dir, false, &pods, err);
	if (r < 0)
		return husk_error_prefix(err, "load pod '%s'", id);
	_cleanup_free_ char *dir = xasprintf("%s/%s", pods, id);
	struct pod_sandbox_info info;
	r = record_read(dir, &info, err);
	if (r == -ENOENT)
		return husk_error_set(err, ENOENT, "load pod '%s': no complete sandbox", id);
	if (r < 0)
		return husk_error_prefix(err, "load pod '%s'", id);
	if (!streq(info.id, id)) {
		pod_sandbox_info_clear(&info);
		return husk_error_set(err, EIO, "load pod '%s': record names another id", id);
	}
	*ret_info = info;
	return 0;
}

int pod_sandbox_list(const char *state_dir, char ***ret_ids, struct husk_error *err)
{
	_cleanup_free_ char *pods = NULL;
	int r = pods_dir(state_dir, false, &pods, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		*ret_ids = xnew(char *, 1);
		return 0;
	}
	if (r < 0)
		return r;
	/* A pod's dir goes after its mounts' dir, so one without the other
	 * is only a removal cut short; both are listed all the same. */
	_cleanup_free_ char *mnts = xasprintf("%s" PODS_MNT_SUFFIX, pods);
	const char *tops[] = {pods, mnts};
	_cleanup_strv_ char **ids = xnew(char *, 1);
	for (size_t t = 0; t < ARRAY_SIZE(tops); t++) {
		_cleanup_strv_ char **names = NULL;
		r = fs_list_dir(tops[t], NULL, &names, err);
		if (r < 0)
			return r;
		for (size_t i = 0; names[i]; i++) {
			_cleanup_free_ char *p = xasprintf("%s/%s", tops[t], names[i]);
			struct stat st;
			bool known = false;
			for (size_t j = 0; ids[j] && !known; j++)
				known = streq(ids[j], names[i]);
			if (!known && husk_obj_id_valid(names[i]) && lstat(p, &st) == 0 &&
			    S_ISDIR(st.st_mode))
				ids = strv_append(ids, names[i]);
		}
	}
	qsort(ids, strv_length(ids), sizeof(char *), cmp_str);
	*ret_ids = steal_ptr(&ids);
	return 0;
}

int pod_sandbox_leftovers(const char *state_dir, const char *id, char ***ret_items,
			  struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "pod '%.*s': invalid id", POD_ID_MAX,
				      id ? id : "");
	_cleanup_free_ char *pods = NULL;
	int r = pods_dir(state_dir, false, &pods, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		*ret_items = xnew(char *, 1);
		return 0;
	}
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = xasprintf("%s/%s", pods, id);
	_cleanup_free_ char *mnt = mounts_dir_of(dir);
	_cleanup_strv_ char **items = xnew(char *, 1);
	const char *dirs[] = {mnt, dir};
	for (size_t d = 0; d < ARRAY_SIZE(dirs); d++) {
		_cleanup_strv_ char **points = NULL;
		r = mounts_under(dirs[d], &points, err);
		if (r < 0)
			return r;
		for (size_t i = 0; points[i]; i++) {
			_cleanup_free_ char *s = xasprintf("mount %s", points[i]);
			items = strv_append(items, s);
		}
	}
	struct pod_sandbox_info rec;
	if (record_read(dir, &rec, NULL) == 0) {
		if (rec.init_pid > 0 && proc_alive(rec.init_pid, rec.init_start_time)) {
			_cleanup_free_ char *s = xasprintf("process %d", (int)rec.init_pid);
			items = strv_append(items, s);
		}
		pod_sandbox_info_clear(&rec);
	}
	for (size_t d = 0; d < ARRAY_SIZE(dirs); d++)
		if (fs_exists(dirs[d])) {
			_cleanup_free_ char *s = xasprintf("directory %s", dirs[d]);
			items = strv_append(items, s);
		}
	*ret_items = steal_ptr(&items);
	return 0;
}

int pod_sandbox_root_ensure(const char *state_dir, struct husk_error *err)
{
	_cleanup_free_ char *pods = NULL;
	int r = pods_dir(state_dir, true, &pods, err);
	if (r == 0)
		r = fs_mkdir_p(pods, 0711, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *mnts = xasprintf("%s" PODS_MNT_SUFFIX, pods);
	return ensure_root(mnts, err);
}

int pod_sandbox_root_release(const char *state_dir, struct husk_error *err)
{
	_cleanup_free_ char *pods = NULL;
	int r = pods_dir(state_dir, false, &pods, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	_cleanup_free_ char *mnts = xasprintf("%s" PODS_MNT_SUFFIX, pods);
	_cleanup_strv_ char **ids = NULL;
	r = pod_sandbox_list(state_dir, &ids, err);
	if (r < 0)
		return r;
	if (ids[0])
		return husk_error_set(err, EBUSY, "release '%s': %zu pods remain", pods,
				      strv_length(ids));
	pthread_mutex_lock(&root_lock);
	free(root_ensured);
	root_ensured = NULL;
	r = fs_private_mount_release(mnts, err);
	/* S/pods: a private bind of itself too where huskd before the move
	 * found it on a shared mount. */
	if (r == 0 && fs_exists(pods))
		r = unmount_under(pods, err);
	if (r == 0 && rmdir(pods) < 0 && errno != ENOENT)
		r = husk_error_errno(err, errno == ENOTEMPTY ? EBUSY : errno, "remove '%s'", pods);
	pthread_mutex_unlock(&root_lock);
	return r;
}
