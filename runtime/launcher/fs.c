/* The container's file system, set up by the launcher's stage 2 in its new
 * mount namespace: every target is resolved inside the rootfs (openat2
 * RESOLVE_IN_ROOT, or a careful walk) and mounted through /proc/self/fd/N,
 * so a symlink in an image can never redirect a mount onto the host. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "common/compat.h"
#include "runtime/launcher/internal.h"

#define WALK_MAX_DEPTH 256
#define WALK_MAX_LINKS 40

/* ---- resolving paths inside the rootfs ---- */

static bool have_openat2 = true;

int lc_walk_in_root(int rootfd, const char *path, int create, unsigned flags, int *ret_fd,
		    struct husk_error *err)
{
	int stack[WALK_MAX_DEPTH];
	size_t depth = 0, pos = 0;
	int links = 0, r = 0;
	bool nofollow = flags & LC_WALK_NOFOLLOW;
	struct stat root = {0};
	if ((flags & LC_WALK_SAME_DEV) && fstat(rootfd, &root) < 0)
		return husk_error_errno(err, errno, "resolve '%s'", path);
	_cleanup_free_ char *rest = xstrdup(path);

	stack[depth] = openat(rootfd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (stack[depth] < 0)
		return husk_error_errno(err, errno, "resolve '%s'", path);
	depth++;
	for (;;) {
		while (rest[pos] == '/')
			pos++;
		if (!rest[pos])
			break;
		size_t len = strcspn(rest + pos, "/");
		char comp[NAME_MAX + 1];
		if (len > NAME_MAX) {
			r = husk_error_errno(err, ENAMETOOLONG, "resolve '%s'", path);
			goto out;
		}
		memcpy(comp, rest + pos, len);
		comp[len] = '\0';
		pos += len;
		size_t after = pos;
		while (rest[after] == '/')
			after++;
		bool last = rest[after] == '\0';

		if (streq(comp, "."))
			continue;
		if (streq(comp, "..")) {
			/* ".." at the root stays at the root, as in chroot. */
			if (depth > 1)
				close(stack[--depth]);
			continue;
		}
		int top = stack[depth - 1];
		int fd = openat(top, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && errno == ENOENT && create != CTR_CREATE_NONE) {
			if (!last || create == CTR_CREATE_DIR) {
				if (mkdirat(top, comp, 0755) < 0 && errno != EEXIST) {
					r = husk_error_errno(err, errno, "create '%s'", path);
					goto out;
				}
			} else {
				int f = openat(top, comp,
					       O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC,
					       0644);
				if (f < 0 && errno != EEXIST) {
					r = husk_error_errno(err, errno, "create '%s'", path);
					goto out;
				}
				if (f >= 0)
					close(f);
			}
			fd = openat(top, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		}
		if (fd < 0) {
			r = husk_error_errno(err, errno, "resolve '%s'", path);
			goto out;
		}
		struct stat st;
		if (fstat(fd, &st) < 0) {
			r = husk_error_errno(err, errno, "resolve '%s'", path);
			close(fd);
			goto out;
		}
		if (S_ISLNK(st.st_mode) && nofollow) {
			close(fd);
			r = husk_error_errno(err, ELOOP, "resolve '%s'", path);
			goto out;
		}
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t n = ++links > WALK_MAX_LINKS
					? (errno = ELOOP, -1)
					: readlinkat(fd, "", target, sizeof(target) - 1);
			close(fd);
			if (n <= 0) {
				r = husk_error_errno(err, n < 0 ? errno : ENOENT, "resolve '%s'",
						     path);
				goto out;
			}
			target[n] = '\0';
			/* An absolute target starts again from the root of the
			 * container, never from the host's. */
			if (target[0] == '/')
				while (depth > 1)
					close(stack[--depth]);
			char *nr = xasprintf("%s/%s", target, rest + pos);
			free(rest);
			rest = nr;
			pos = 0;
			continue;
		}
		if (!last && !S_ISDIR(st.st_mode)) {
			close(fd);
			r = husk_error_errno(err, ENOTDIR, "resolve '%s'", path);
			goto out;
		}
		if ((flags & LC_WALK_SAME_DEV) && S_ISDIR(st.st_mode) && st.st_dev != root.st_dev) {
			close(fd);
			r = husk_error_errno(err, EXDEV, "resolve '%s'", path);
			goto out;
		}
		if (depth == WALK_MAX_DEPTH) {
			close(fd);
			r = husk_error_errno(err, ENAMETOOLONG, "resolve '%s'", path);
			goto out;
		}
		stack[depth++] = fd;
	}
	*ret_fd = stack[--depth];
out:
	while (depth > 0)
		close(stack[--depth]);
	return r;
}

int ctr_open_in_root(int rootfd, const char *path, int create, bool use_openat2, int *ret_fd,
		     struct husk_error *err)
{
	if (use_openat2 && have_openat2) {
		struct open_how how = {
		    .flags = O_PATH | O_CLOEXEC,
		    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
		};
		int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
		if (errno == ENOSYS)
			have_openat2 = false;
		else if (errno != ENOENT || create == CTR_CREATE_NONE)
			return husk_error_errno(err, errno, "resolve '%s'", path);
		/* Missing pieces are created by the walk, which is just as
		 * strict about staying inside the root. */
	}
	return lc_walk_in_root(rootfd, path, create, 0, ret_fd, err);
}

int ctr_open_in_root_nofollow(int rootfd, const char *path, bool use_openat2, int *ret_fd,
			      struct husk_error *err)
{
	if (use_openat2 && have_openat2) {
		struct open_how how = {
		    /* Not O_NOFOLLOW: with it a trailing symlink would be
		     * opened itself rather than refused. */
		    .flags = O_PATH | O_CLOEXEC,
		    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
		};
		int fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
		if (fd >= 0) {
			*ret_fd = fd;
			return 0;
		}
		if (errno != ENOSYS)
			return husk_error_errno(err, errno, "resolve '%s'", path);
		have_openat2 = false;
	}
	return lc_walk_in_root(rootfd, path, CTR_CREATE_NONE, LC_WALK_NOFOLLOW, ret_fd, err);
}

/* ---- mount helpers ---- */

#define FDPATH(buf, fd) (snprintf((buf), sizeof(buf), "/proc/self/fd/%d", (fd)), (buf))

static int open_in(int rootfd, const char *path, int create, int *ret_fd, struct husk_error *err)
{
	return ctr_open_in_root(rootfd, path, create, true, ret_fd, err);
}

static unsigned long prop_flags(enum ctr_propagation p)
{
	switch (p) {
	case CTR_PROP_PRIVATE:
		return MS_PRIVATE;
	case CTR_PROP_SLAVE:
		return MS_SLAVE;
	case CTR_PROP_RSLAVE:
		return MS_SLAVE | MS_REC;
	case CTR_PROP_SHARED:
		return MS_SHARED;
	case CTR_PROP_RSHARED:
		return MS_SHARED | MS_REC;
	case CTR_PROP_RPRIVATE:
	case CTR_PROP_DEFAULT:
	default:
		return MS_PRIVATE | MS_REC;
	}
}

#define ATTR_FLAGS                                                                 \
	(MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME | MS_RELATIME | \
	 MS_STRICTATIME | MS_NODIRATIME)

/* Apply per-mount flags to the mount whose root fd is (recursively for a
 * recursive bind). mount_setattr does it for a whole tree; the old remount
 * only for the top mount and must repeat the locked flags. */
static int set_mount_flags(int fd, unsigned long flags, bool recursive)
{
	struct mount_attr a = {0};
	if (flags & MS_RDONLY)
		a.attr_set |= MOUNT_ATTR_RDONLY;
	if (flags & MS_NOSUID)
		a.attr_set |= MOUNT_ATTR_NOSUID;
	if (flags & MS_NODEV)
		a.attr_set |= MOUNT_ATTR_NODEV;
	if (flags & MS_NOEXEC)
		a.attr_set |= MOUNT_ATTR_NOEXEC;
	if (flags & MS_NODIRATIME)
		a.attr_set |= MOUNT_ATTR_NODIRATIME;
	if (flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)) {
		a.attr_clr |= MOUNT_ATTR__ATIME;
		a.attr_set |= flags & MS_NOATIME    ? MOUNT_ATTR_NOATIME
			      : flags & MS_RELATIME ? MOUNT_ATTR_RELATIME
						    : MOUNT_ATTR_STRICTATIME;
	}
	if (mount_setattr(fd, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a)) ==
	    0)
		return 0;
	if (errno != ENOSYS)
		return -errno;
	struct statvfs sv;
	unsigned long keep = 0;
	if (fstatvfs(fd, &sv) == 0) {
		if (sv.f_flag & ST_NOSUID)
			keep |= MS_NOSUID;
		if (sv.f_flag & ST_NODEV)
			keep |= MS_NODEV;
		if (sv.f_flag & ST_NOEXEC)
			keep |= MS_NOEXEC;
	}
	char p[64];
	if (mount(NULL, FDPATH(p, fd), NULL, MS_BIND | MS_REMOUNT | keep | (flags & ATTR_FLAGS),
		  NULL) < 0)
		return -errno;
	return 0;
}

/* A container's own mount (spec->mounts) may not land where
 * ctr_mount_destination_check refuses, whatever symlinks the image or an
 * earlier volume put on the way: fd is the resolved target, the one the
 * mount then goes on. */
static int check_user_target(int rootfd, int fd, const char *dest, const struct ctr_spec *s,
			     struct husk_error *err)
{
	struct stat a, b;
	struct statfs sf;
	if (fstat(fd, &a) < 0 || fstat(rootfd, &b) < 0 || fstatfs(fd, &sf) < 0)
		return husk_error_errno(err, errno, "mount '%s'", dest);
	if (a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return husk_error_set(
		    err, EINVAL,
		    "mount '%s': resolves to the container's root, which a volume "
		    "cannot replace",
		    dest);
	_cleanup_free_ char *f = ctr_path_fold(dest);
	if (sf.f_type == PROC_SUPER_MAGIC && !ctr_proc_mount_allowed(f))
		return husk_error_set(
		    err, EINVAL, "mount '%s': resolves into /proc, which the runtime owns", dest);
	if (!s->privileged && (sf.f_type == SYSFS_MAGIC || sf.f_type == CGROUP_SUPER_MAGIC ||
			       sf.f_type == CGROUP2_SUPER_MAGIC))
		return husk_error_set(err, EINVAL,
				      "mount '%s': resolves into /sys, which the runtime owns in a "
				      "non-privileged container",
				      dest);
	return 0;
}

/* Mount a file system (not a bind) at dest inside the root; s: check the
 * target as a container's own mount. */
static int mount_fs_checked(int rootfd, const char *dest, const char *src, const char *type,
			    unsigned long flags, const char *data, const struct ctr_spec *s,
			    struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	int r = open_in(rootfd, dest, CTR_CREATE_DIR, &fd, err);
	if (r < 0)
		return husk_error_prefix(err, "mount '%s'", dest);
	if (s && (r = check_user_target(rootfd, fd, dest, s, err)) < 0)
		return r;
	char p[64];
	if (mount(src, FDPATH(p, fd), type, flags, data) < 0)
		return husk_error_errno(err, errno, "mount '%s' (%s)", dest, type);
	return 0;
}

static int mount_fs(int rootfd, const char *dest, const char *src, const char *type,
		    unsigned long flags, const char *data, struct husk_error *err)
{
	return mount_fs_checked(rootfd, dest, src, type, flags, data, NULL, err);
}

/* Bind src (a host path or a /proc/self/fd path) at dest inside the root,
 * then apply flags and propagation to the new mount; s: check the target
 * as a container's own mount; tree >= 0: a detached mount prepared for dest
 * (an idmapped clone of src, a clone of a cgroup, the container's tmpfs) to
 * move there instead of binding src. */
static int bind_checked(int rootfd, const char *dest, const char *src, int tree, bool recursive,
			unsigned long flags, enum ctr_propagation prop, const struct ctr_spec *s,
			struct husk_error *err)
{
	struct stat st;
	if ((tree >= 0 ? fstat(tree, &st) : stat(src, &st)) < 0)
		return husk_error_errno(err, errno, "mount '%s': source '%s'", dest, src);
	_cleanup_close_ int fd = -1;
	int r =
	    open_in(rootfd, dest, S_ISDIR(st.st_mode) ? CTR_CREATE_DIR : CTR_CREATE_FILE, &fd, err);
	if (r < 0)
		return husk_error_prefix(err, "mount '%s'", dest);
	if (s && (r = check_user_target(rootfd, fd, dest, s, err)) < 0)
		return r;
	char p[64];
	if (tree >= 0) {
		if (move_mount(tree, "", fd, "",
			       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return husk_error_errno(err, errno, "mount '%s': move the prepared mount",
						dest);
	} else if (mount(src, FDPATH(p, fd), NULL, MS_BIND | (recursive ? MS_REC : 0), NULL) < 0) {
		return husk_error_errno(err, errno, "mount '%s'", dest);
	}
	/* fd names the directory under the new mount; look again to get the
	 * mount itself. */
	_cleanup_close_ int top = -1;
	if ((r = open_in(rootfd, dest, CTR_CREATE_NONE, &top, err)) < 0)
		return husk_error_prefix(err, "mount '%s'", dest);
	if ((flags & ATTR_FLAGS) && (r = set_mount_flags(top, flags, recursive)) < 0)
		return husk_error_errno(err, -r, "mount '%s': set flags", dest);
	if (mount(NULL, FDPATH(p, top), NULL, prop_flags(prop), NULL) < 0)
		return husk_error_errno(err, errno, "mount '%s': set propagation", dest);
	return 0;
}

static int bind_at(int rootfd, const char *dest, const char *src, int tree, bool recursive,
		   unsigned long flags, enum ctr_propagation prop, struct husk_error *err)
{
	return bind_checked(rootfd, dest, src, tree, recursive, flags, prop, NULL, err);
}

/* ---- idmapped mounts ---- */

/* A detached clone of src (open_tree). rdonly: read-only from the start,
 * so that the flag is locked with the clone (lc_stage_clones) and container
 * root cannot remount it writable. userns >= 0: idmapped with its mapping.
 * prop: a propagation to give the whole clone (0: keep the source's). */
static int tree_clone(const char *src, bool recursive, bool rdonly, int userns, unsigned long prop,
		      int *ret_fd, struct husk_error *err)
{
	unsigned rec = recursive ? AT_RECURSIVE : 0;
	_cleanup_close_ int fd =
	    open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
	if (fd < 0)
		return husk_error_errno(err, errno, "clone mount of '%s'", src);
	struct mount_attr a = {.attr_set = (userns >= 0 ? MOUNT_ATTR_IDMAP : 0) |
					   (rdonly ? MOUNT_ATTR_RDONLY : 0),
			       .userns_fd = userns >= 0 ? (uint64_t)userns : 0,
			       .propagation = prop};
	if ((a.attr_set || prop) && mount_setattr(fd, "", AT_EMPTY_PATH | rec, &a, sizeof(a)) < 0) {
		if (errno == EINVAL && userns >= 0)
			return husk_error_set(err, EINVAL,
					      "idmapped mount of '%s': its file system (or one "
					      "mounted below it) does not support idmapped mounts",
					      src);
		return husk_error_errno(err, errno, "idmapped mount of '%s'", src);
	}
	*ret_fd = steal_fd(&fd);
	return 0;
}

int lc_idmap_prepare(struct lc *lc, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	if (!s->idmapped_mounts)
		return 0;
	const char *path = s->ns[CTR_NS_USER].path;
	_cleanup_close_ int userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return husk_error_errno(err, errno, "open user namespace '%s'", path);
	int r = 0;
	const char *files[] = {s->shm_path, s->hostname_path, s->hosts_path, s->resolv_path};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i] && (r = tree_clone(files[i], false, i > 0 && s->readonly_rootfs,
						userns, 0, &lc->idmap_files[i], err)) < 0)
			return r;
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		if (m->bind && (r = tree_clone(m->source, m->recursive, m->flags & MS_RDONLY,
					       userns, 0, &lc->idmap_mounts[i], err)) < 0)
			return husk_error_prefix(err, "mount '%s'", m->destination);
	}
	return 0;
}

/* ---- the template mount namespace ---- */

static const struct {
	const char *name;
	unsigned major, minor;
} std_devices[LC_STD_DEVICES] = {
    {"null", 1, 3},   {"zero", 1, 5},	 {"full", 1, 7},
    {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
};

/* A mount that is not a bind takes its source and data as paths in the
 * namespace it is made in, where the template has none of the host's:
 * only these types are mounted in a copy of the template. */
static bool template_fits(const struct ctr_spec *s)
{
	static const char *const pathless[] = {"tmpfs", "ramfs", "mqueue", "devpts",
					       "proc",	"sysfs", "cgroup", "cgroup2"};
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		bool ok = m->bind;
		for (size_t k = 0; !ok && k < ARRAY_SIZE(pathless); k++)
			ok = m->type && streq(m->type, pathless[k]);
		if (!ok)
			return false;
	}
	return true;
}

/* What the copy of the caller's namespace had, for the clones that replace
 * it: its root rslave by default, so a mount the host makes below a
 * source later shows in the container; rprivate on request; rshared (the
 * clones stay peers of the host's mounts) when a volume propagates both
 * ways. 0: keep the clone's. */
static unsigned long copy_propagation(const struct ctr_spec *s)
{
	switch (s->rootfs_propagation) {
	case CTR_PROP_PRIVATE:
	case CTR_PROP_RPRIVATE:
		return MS_PRIVATE;
	case CTR_PROP_SHARED:
	case CTR_PROP_RSHARED:
		return 0;
	default:
		return MS_SLAVE;
	}
}

int lc_template_prepare(struct lc *lc, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	if (!s->mount_template || !template_fits(s))
		return 0;
	_cleanup_close_ int ns = lc_template_open(s->mount_template);
	if (ns < 0)
		return 0; /* gone (huskd stopped, or made none): the caller's */
	unsigned long prop = copy_propagation(s);
	int r;
	/* The rootfs mount itself is private (nothing mounted on it goes back
	 * to the host), what is mounted below it as the copy had it. */
	if ((r = tree_clone(s->rootfs, true, false, -1, prop, &lc->rootfs_tree, err)) < 0)
		return husk_error_prefix(err, "rootfs");
	struct mount_attr priv = {.propagation = MS_PRIVATE};
	if (mount_setattr(lc->rootfs_tree, "", AT_EMPTY_PATH, &priv, sizeof(priv)) < 0)
		return husk_error_errno(err, errno, "make rootfs '%s' private", s->rootfs);
	const char *files[] = {s->shm_path, s->hostname_path, s->hosts_path, s->resolv_path};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i] && lc->idmap_files[i] < 0 &&
		    (r = tree_clone(files[i], false, i > 0 && s->readonly_rootfs, -1, prop,
				    &lc->idmap_files[i], err)) < 0)
			return r;
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		if (!m->bind || lc->idmap_mounts[i] >= 0)
			continue;
		if (tree_clone(m->source, m->recursive, m->flags & MS_RDONLY, -1, prop,
			       &lc->idmap_mounts[i], err) < 0) {
			int e = err->code;
			husk_error_clear(err);
			return husk_error_errno(err, e, "mount '%s': source '%s'", m->destination,
						m->source);
		}
	}
	if (s->ns[CTR_NS_USER].mode != CTR_NS_HOST) {
		/* What a user namespace binds from the host when it may not
		 * mount sysfs or make device nodes; a missing one fails only
		 * when needed, as the bind did. */
		struct husk_error e = HUSK_ERROR_INIT;
		tree_clone("/sys", true, false, -1, prop, &lc->sys_tree, &e);
		for (size_t i = 0; i < LC_STD_DEVICES; i++) {
			_cleanup_free_ char *p = xasprintf("/dev/%s", std_devices[i].name);
			tree_clone(p, false, false, -1, prop, &lc->std_dev_trees[i], &e);
		}
		for (size_t i = 0; i < s->n_devices; i++)
			if (s->devices[i].host_path)
				tree_clone(s->devices[i].host_path, false, false, -1, prop,
					   &lc->dev_trees[i], &e);
		husk_error_clear(&e);
	}
	/* setns takes the cwd and root with it. */
	if (setns(ns, CLONE_NEWNS) < 0)
		return husk_error_errno(err, errno, "enter the mount template '%s'",
					s->mount_template);
	lc->in_template = true;
	return 0;
}

/* ---- locking the clones' flags ----
 *
 * A mount's flags are locked (MNT_LOCK_READONLY and the like) only when a
 * mount namespace is copied into one that a less privileged user namespace
 * owns. Clones moved straight into the container's namespace (which the
 * pod's user namespace owns) are not: container root with CAP_SYS_ADMIN
 * could remount a read-only volume writable and, through the idmapping,
 * write as host root. So stage 1 parks them, still in the host's user
 * namespace, in a mount namespace of its own (M1) under a tmpfs on the
 * rootfs' /proc; the container's namespace, copied from M1 after joining
 * the user namespace, then has them locked, and lc_setup_rootfs takes
 * clones of those (which keep the locks) before /proc covers the tmpfs. */

#define LC_STAGE_DIR "/proc"
#define LC_TEMPLATE_STAGE_DIR "/stage" /* made by ctr_mount_template_make */
#define LC_STAGED (-2)		       /* a slot whose clone waits under LC_STAGE_DIR */

/* The clone fd slots of lc, always in the same order. */
static size_t clone_slots(struct lc *lc, int ***ret)
{
	size_t n = ARRAY_SIZE(lc->idmap_files) + lc->spec->n_mounts + lc->n_cgroup_trees + 2 +
		   LC_STD_DEVICES + lc->spec->n_devices,
	       k = 0;
	int **v = xnew(int *, n + 1);
	for (size_t i = 0; i < ARRAY_SIZE(lc->idmap_files); i++)
		v[k++] = &lc->idmap_files[i];
	for (size_t i = 0; i < lc->spec->n_mounts; i++)
		v[k++] = &lc->idmap_mounts[i];
	for (size_t i = 0; i < lc->n_cgroup_trees; i++)
		v[k++] = &lc->cgroup_trees[i];
	v[k++] = &lc->rootfs_tree;
	v[k++] = &lc->sys_tree;
	for (size_t i = 0; i < LC_STD_DEVICES; i++)
		v[k++] = &lc->std_dev_trees[i];
	for (size_t i = 0; i < lc->spec->n_devices; i++)
		v[k++] = &lc->dev_trees[i];
	*ret = v;
	return k;
}

static int open_protected(int rootfd, const char *path, const char *what, int *ret_fd,
			  struct husk_error *err);

int lc_stage_clones(struct lc *lc, struct husk_error *err)
{
	_cleanup_free_ int **slots = NULL;
	size_t n = clone_slots(lc, &slots), any = 0;
	for (size_t i = 0; i < n; i++)
		any += *slots[i] >= 0;
	/* In the template, a user namespace's container gets all its clones
	 * through here (its namespace is made after joining that user
	 * namespace); they wait on its LC_TEMPLATE_STAGE_DIR. */
	bool userns = lc->spec->ns[CTR_NS_USER].mode != CTR_NS_HOST;
	if (!any || !(lc->root_by_cwd || (lc->in_template && userns)))
		return 0;
	/* Private, so nothing mounted here reaches the host; the clones keep
	 * the propagation of their sources. */
	if (unshare(CLONE_NEWNS) < 0 ||
	    (!lc->in_template && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0))
		return husk_error_errno(err, errno, "stage idmapped mounts: mount namespace");
	const char *stage = lc->in_template ? LC_TEMPLATE_STAGE_DIR : LC_STAGE_DIR;
	_cleanup_close_ int root =
	    open(lc->in_template ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return husk_error_errno(err, errno, "open rootfs '%s'", lc->spec->rootfs);
	_cleanup_close_ int dir = -1, top = -1;
	int r = open_protected(root, stage, "mount", &dir, err);
	if (r == 0)
		r = open_in(root, stage, CTR_CREATE_DIR, &dir, err);
	if (r < 0)
		return r;
	/* Host root's: the user namespace's root may only walk through. */
	char p[64];
	if (mount("husk-stage", FDPATH(p, dir), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=711,size=16k") < 0)
		return husk_error_errno(err, errno, "stage idmapped mounts: mount tmpfs");
	if ((r = open_in(root, stage, CTR_CREATE_NONE, &top, err)) < 0)
		return r;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (*slots[i] < 0)
			continue;
		char name[24];
		snprintf(name, sizeof(name), "%zu", k++);
		struct stat st;
		if (fstat(*slots[i], &st) < 0 ||
		    (S_ISDIR(st.st_mode) ? mkdirat(top, name, 0700)
					 : mknodat(top, name, S_IFREG | 0600, 0)) < 0 ||
		    move_mount(*slots[i], "", top, name, MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return husk_error_errno(err, errno, "stage idmapped mount %s", name);
		close(*slots[i]);
		*slots[i] = LC_STAGED;
	}
	return 0;
}

static void close_clones(struct lc *lc)
{
	_cleanup_free_ int **slots = NULL;
	size_t n = clone_slots(lc, &slots);
	for (size_t i = 0; i < n; i++)
		if (*slots[i] >= 0)
			closep(slots[i]);
}

/* In the container's mount namespace, before anything covers
 * LC_STAGE_DIR: a detached clone of each staged mount into its slot. */
static int unstage_clones(struct lc *lc, int rootfd, const char *stage, struct husk_error *err)
{
	_cleanup_free_ int **slots = NULL;
	size_t n = clone_slots(lc, &slots), k = 0;
	for (size_t i = 0; i < n; i++) {
		if (*slots[i] != LC_STAGED)
			continue;
		char path[64];
		snprintf(path, sizeof(path), "%s/%zu", stage, k++);
		_cleanup_close_ int fd = -1;
		int r = open_in(rootfd, path, CTR_CREATE_NONE, &fd, err);
		if (r < 0)
			return husk_error_prefix(err, "staged idmapped mount");
		int t = open_tree(
		    fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
		if (t < 0)
			return husk_error_errno(err, errno, "clone staged idmapped mount %s", path);
		*slots[i] = t;
	}
	return 0;
}

/* ---- /dev ---- */

/* Create a device node in dirfd, or bind the host's node over an empty
 * file when mknod is refused (in a user namespace): tree, its clone from
 * the host (lc_template_prepare), or else host_path. */
static int make_node(int dirfd, const char *name, const char *where, mode_t type, dev_t dev,
		     mode_t perm, uid_t uid, gid_t gid, int tree, const char *host_path,
		     struct husk_error *err)
{
	unlinkat(dirfd, name, 0);
	if (mknodat(dirfd, name, type | perm, dev) == 0) {
		if (fchownat(dirfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
			return husk_error_errno(err, errno, "chown device '%s'", where);
		return 0;
	}
	if (errno != EPERM || (tree < 0 && !host_path))
		return husk_error_errno(err, errno, "create device '%s'", where);
	int f = openat(dirfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (f < 0)
		return husk_error_errno(err, errno, "create device '%s'", where);
	char p[64];
	int r = tree >= 0
		    ? move_mount(tree, "", f, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
		    : mount(host_path, FDPATH(p, f), NULL, MS_BIND, NULL);
	int e = errno;
	close(f);
	if (r < 0)
		return husk_error_errno(err, e, "bind device '%s'", where);
	return 0;
}

/* The container's own tmpfs: /dev, the tmpfs under /sys/fs/cgroup (v1 with
 * a cgroup namespace) and the empty directory the masks show are three
 * directories of one tmpfs, not three superblocks. The kernel walks every
 * superblock's LRU lists (dentries, inodes) each time a memory cgroup is
 * removed anywhere on the node, under cgroup_mutex: with 1000 pods, each
 * superblock a container keeps adds a walk of a list per pod still running
 * to every pod's teardown.
 *
 * Mounted at /dev as a stage, the tmpfs gets "dev", "empty" and, when
 * cgroup is set, "cgroup"; each becomes a detached clone of its own
 * (open_tree), the stage is detached, and the clones go where they belong:
 * tmp->dev at /dev (setup_dev), tmp->cgroup at /sys/fs/cgroup
 * (setup_cgroupfs), tmp->empty on the first masked directory (mask_path).
 * /dev is nosuid and strictatime, as runc mounts it; the other two also
 * nodev and noexec. One size for all: 64 MiB, /dev's. */
struct own_tmpfs {
	int dev, cgroup, empty;
};

static void own_tmpfs_close(struct own_tmpfs *t)
{
	closep(&t->dev);
	closep(&t->cgroup);
	closep(&t->empty);
}

static int own_tmpfs_open(int rootfd, bool cgroup, struct own_tmpfs *t, struct husk_error *err)
{
	int r = mount_fs(rootfd, "/dev", "tmpfs", "tmpfs", MS_NOSUID | MS_STRICTATIME,
			 "mode=755,size=65536k", err);
	if (r < 0)
		return r;
	_cleanup_close_ int top = -1;
	if ((r = open_in(rootfd, "/dev", CTR_CREATE_NONE, &top, err)) < 0)
		return r;
	if (mkdirat(top, "dev", 0755) < 0 || mkdirat(top, "empty", 01777) < 0 ||
	    (cgroup && mkdirat(top, "cgroup", 0755) < 0))
		return husk_error_errno(err, errno, "mount '/dev': directories");
	t->dev = open_tree(top, "dev", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	t->empty = open_tree(top, "empty", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (cgroup)
		t->cgroup = open_tree(top, "cgroup", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (t->dev < 0 || t->empty < 0 || (cgroup && t->cgroup < 0))
		return husk_error_errno(err, errno, "mount '/dev': clone");
	if ((r = set_mount_flags(t->empty, MS_NODEV | MS_NOEXEC, false)) < 0 ||
	    (cgroup && (r = set_mount_flags(t->cgroup, MS_NODEV | MS_NOEXEC, false)) < 0))
		return husk_error_errno(err, -r, "mount '/dev': flags");
	char p[64];
	if (umount2(FDPATH(p, top), MNT_DETACH) < 0)
		return husk_error_errno(err, errno, "mount '/dev': unmount the stage");
	return 0;
}

static int setup_dev(int rootfd, const struct lc *lc, struct own_tmpfs *tmp, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	int r = bind_at(rootfd, "/dev", "/dev", tmp->dev, false, 0, CTR_PROP_RPRIVATE, err);
	if (r < 0)
		return r;
	_cleanup_close_ int dev = -1;
	if ((r = open_in(rootfd, "/dev", CTR_CREATE_NONE, &dev, err)) < 0)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(std_devices); i++) {
		_cleanup_free_ char *where = xasprintf("/dev/%s", std_devices[i].name);
		r = make_node(dev, std_devices[i].name, where, S_IFCHR,
			      makedev(std_devices[i].major, std_devices[i].minor), 0666, 0, 0,
			      lc->std_dev_trees[i], lc->in_template ? NULL : where, err);
		if (r < 0)
			return r;
	}
	/* A devpts of the container's own, so its ptys are not the host's. */
	r = mount_fs(rootfd, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
		     "newinstance,ptmxmode=0666,mode=0620,gid=5", err);
	if (r < 0) {
		/* gid 5 may not be mapped in a user namespace. */
		husk_error_clear(err);
		r = mount_fs(rootfd, "/dev/pts", "devpts", "devpts", MS_NOSUID | MS_NOEXEC,
			     "newinstance,ptmxmode=0666,mode=0620", err);
		if (r < 0)
			return r;
	}
	if (symlinkat("pts/ptmx", dev, "ptmx") < 0)
		return husk_error_errno(err, errno, "create '/dev/ptmx'");
	if (s->shm_path)
		r = bind_at(rootfd, "/dev/shm", s->shm_path, lc->idmap_files[0], false, 0,
			    CTR_PROP_RPRIVATE, err);
	else
		r = mount_fs(rootfd, "/dev/shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     "mode=1777,size=65536k", err);
	if (r < 0)
		return r;
	r = mount_fs(rootfd, "/dev/mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     NULL, err);
	if (r < 0)
		return r;
	static const char *const links[][2] = {
	    {"/proc/self/fd", "fd"},
	    {"/proc/self/fd/0", "stdin"},
	    {"/proc/self/fd/1", "stdout"},
	    {"/proc/self/fd/2", "stderr"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(links); i++)
		if (symlinkat(links[i][0], dev, links[i][1]) < 0)
			return husk_error_errno(err, errno, "create '/dev/%s'", links[i][1]);
	return 0;
}

static int setup_devices(int rootfd, const struct lc *lc, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct ctr_device *d = &s->devices[i];
		_cleanup_free_ char *dir = xstrdup(d->path);
		char *slash = strrchr(dir, '/');
		const char *name = d->path + (slash - dir) + 1;
		*slash = '\0';
		if (!*name)
			return husk_error_set(err, EINVAL, "device '%s': no file name", d->path);
		_cleanup_close_ int dfd = -1;
		int r = open_in(rootfd, *dir ? dir : "/", CTR_CREATE_DIR, &dfd, err);
		if (r < 0)
			return husk_error_prefix(err, "device '%s'", d->path);
		mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
		r = make_node(dfd, name, d->path, type, makedev(d->major, d->minor), d->file_mode,
			      d->uid, d->gid, lc->dev_trees[i],
			      lc->in_template ? NULL : d->host_path, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- /sys/fs/cgroup ---- */

/* v1 controllers as /proc/self/cgroup lists them ("cpu,cpuacct",
 * "name=systemd") to the directory they get under /sys/fs/cgroup. */
static const char *cgroup_v1_dir(const char *ctrls)
{
	return startswith(ctrls, "name=") ? ctrls + 5 : ctrls;
}

int lc_cgroup_prepare(struct lc *lc, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	if (s->ns[CTR_NS_CGROUP].mode != CTR_NS_NEW || s->ns[CTR_NS_USER].mode == CTR_NS_HOST)
		return 0;
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return husk_error_errno(err, errno, "read '/proc/self/cgroup'");
	struct mount_attr a = {.attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV |
					   MOUNT_ATTR_NOEXEC |
					   (s->privileged ? 0 : MOUNT_ATTR_RDONLY)};
	char line[PATH_MAX + 128];
	while (fgets(line, sizeof(line), f) && lc->n_cgroup_trees < LC_CGROUP_TREES_MAX) {
		char *c = strchr(line, ':'), *p = c ? strchr(c + 1, ':') : NULL;
		if (!p || p == c + 1 || p[1] != '/')
			continue; /* v2 (mounted in the namespace itself) or not a line */
		*p++ = '\0';
		p[strcspn(p, "\n")] = '\0';
		const char *ctrls = c + 1;
		_cleanup_free_ char *top = xasprintf("/sys/fs/cgroup/%s", cgroup_v1_dir(ctrls));
		struct statfs sf;
		if (statfs(top, &sf) < 0 || sf.f_type != CGROUP_SUPER_MAGIC)
			continue;
		_cleanup_free_ char *dir = xasprintf("%s%s", top, streq(p, "/") ? "" : p);
		_cleanup_close_ int fd = open_tree(
		    AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_SYMLINK_NOFOLLOW);
		if (fd < 0)
			return husk_error_errno(err, errno, "cgroup: clone mount of '%s'", dir);
		if (mount_setattr(fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
			return husk_error_errno(err, errno, "cgroup: set flags of '%s'", dir);
		lc->cgroup_ctrls[lc->n_cgroup_trees] = xstrdup(ctrls);
		lc->cgroup_trees[lc->n_cgroup_trees++] = steal_fd(&fd);
	}
	return 0;
}

/* The container's own cgroups at /sys/fs/cgroup, read-only unless
 * privileged: with a cgroup namespace of its own, a cgroup file system
 * mounted here shows the container's cgroup as its root. v2 alone: one
 * cgroup2 mount; v1 (or hybrid): a tmpfs with one mount per hierarchy as
 * /proc/self/cgroup lists them, and symlinks for co-mounted controllers.
 * v1 hierarchies can only be mounted from the initial user namespace: in
 * a user namespace of its own the container gets the clones stage 1 made
 * of its cgroup directories instead (lc_cgroup_prepare). cgroup2 mounts
 * in a cgroup namespace its user namespace owns. The tmpfs is tmp->cgroup
 * (own_tmpfs_open, made for every container with a cgroup namespace; left
 * unused on v2). */
static int setup_cgroupfs(int rootfd, const struct lc *lc, struct own_tmpfs *tmp,
			  struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	if (s->ns[CTR_NS_CGROUP].mode != CTR_NS_NEW)
		return 0;
	bool userns = s->ns[CTR_NS_USER].mode != CTR_NS_HOST;
	unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	unsigned long ro = s->privileged ? 0 : MS_RDONLY;
	_cleanup_fclose_ FILE *f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return husk_error_errno(err, errno, "read '/proc/self/cgroup'");
	char line[512];
	char *v1[32];
	size_t n = 0;
	bool v2 = false;
	while (fgets(line, sizeof(line), f)) {
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!b)
			continue;
		*b = '\0';
		if (b == a + 1)
			v2 = true;
		else if (n < ARRAY_SIZE(v1))
			v1[n++] = xstrdup(a + 1);
	}
	int r = 0;
	if (n == 0) {
		if (v2)
			r = mount_fs(rootfd, "/sys/fs/cgroup", "cgroup2", "cgroup2", fl | ro, NULL,
				     err);
		return r;
	}
	r = tmp->cgroup >= 0 ? bind_at(rootfd, "/sys/fs/cgroup", "/sys/fs/cgroup", tmp->cgroup,
				       false, 0, CTR_PROP_RPRIVATE, err)
			     : husk_error_set(err, EINVAL, "mount '/sys/fs/cgroup': no tmpfs");
	_cleanup_close_ int dir = -1;
	if (r == 0)
		r = open_in(rootfd, "/sys/fs/cgroup", CTR_CREATE_NONE, &dir, err);
	for (size_t i = 0; i < n; i++) {
		const char *ctrls = v1[i];
		bool named = startswith(ctrls, "name=");
		const char *name = cgroup_v1_dir(ctrls);
		_cleanup_free_ char *dest = xasprintf("/sys/fs/cgroup/%s", name);
		_cleanup_free_ char *data = named ? xasprintf("none,%s", ctrls) : xstrdup(ctrls);
		int tree = -1;
		for (size_t k = 0; userns && k < lc->n_cgroup_trees; k++)
			if (streq(lc->cgroup_ctrls[k], ctrls))
				tree = lc->cgroup_trees[k];
		if (userns && tree < 0)
			continue; /* not mounted on the host where husk looks */
		if (r == 0 && userns)
			r = bind_at(rootfd, dest, dest, tree, false, 0, CTR_PROP_RPRIVATE, err);
		else if (r == 0)
			r = mount_fs(rootfd, dest, "cgroup", "cgroup", fl | ro, data, err);
		/* "cpu,cpuacct" is also reachable as cpu and cpuacct. */
		if (r == 0 && !named && strchr(ctrls, ',')) {
			_cleanup_free_ char *copy = xstrdup(ctrls);
			char *save = NULL;
			for (char *c = strtok_r(copy, ",", &save); c;
			     c = strtok_r(NULL, ",", &save))
				if (symlinkat(name, dir, c) < 0 && errno != EEXIST)
					r = husk_error_errno(err, errno, "link '/sys/fs/cgroup/%s'",
							     c);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(v1[i]);
	if (r == 0 && v2)
		r = mount_fs(rootfd, "/sys/fs/cgroup/unified", "cgroup2", "cgroup2", fl | ro, NULL,
			     err);
	if (r == 0 && ro && (r = set_mount_flags(dir, fl | MS_RDONLY, false)) < 0)
		r = husk_error_errno(err, -r, "make '/sys/fs/cgroup' read-only");
	return r;
}

/* ---- after pivot_root ---- */

static int apply_sysctls(const struct ctr_spec *s, struct husk_error *err)
{
	for (size_t i = 0; i < s->n_sysctls; i++) {
		const struct ctr_sysctl *c = &s->sysctls[i];
		_cleanup_free_ char *path = xasprintf("/proc/sys/%s", c->key);
		/* Dotted names map to directories unless the name already
		 * uses slashes (for interface names with dots). */
		if (!strchr(c->key, '/'))
			for (char *p = path + 10; *p; p++)
				if (*p == '.')
					*p = '/';
		_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		size_t n = strlen(c->value);
		if (fd < 0 || write(fd, c->value, n) != (ssize_t)n)
			return husk_error_errno(err, errno, "sysctl '%s'", c->key);
	}
	return 0;
}

/* Masked and read-only paths are resolved without following any symlink:
 * what an image or a volume plants there (/proc made a link to a directory
 * of its own, a link to a file it wants hidden instead) must not move the
 * mask. A path through a symlink fails the container. */
static int open_protected(int rootfd, const char *path, const char *what, int *ret_fd,
			  struct husk_error *err)
{
	struct husk_error e = HUSK_ERROR_INIT;
	if (ctr_open_in_root_nofollow(rootfd, path, true, ret_fd, &e) == 0)
		return 1;
	int code = e.code;
	husk_error_clear(&e);
	if (code == ENOENT)
		return 0;
	if (code == ELOOP)
		return husk_error_set(err, ELOOP, "%s '%s': the path goes through a symlink", what,
				      path);
	return husk_error_errno(err, code, "%s '%s'", what, path);
}

/* A file is masked with /dev/null, a directory with the empty directory of
 * the container's tmpfs (own_tmpfs_open), read-only: the first masked
 * directory gets *tree, *empty then holds its root and the others are
 * binds of it. */
static int mask_path(int rootfd, const char *path, int *empty, int *tree, struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	int found = open_protected(rootfd, path, "mask", &fd, err);
	if (found <= 0)
		return found;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return husk_error_errno(err, errno, "mask '%s'", path);
	char p[64], q[64];
	int r;
	if (!S_ISDIR(st.st_mode))
		r = mount("/dev/null", FDPATH(p, fd), NULL, MS_BIND, NULL);
	else if (*empty >= 0)
		r = mount(FDPATH(q, *empty), FDPATH(p, fd), NULL, MS_BIND, NULL);
	else
		r = move_mount(*tree, "", fd, "",
			       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
	if (r < 0)
		return husk_error_errno(err, errno, "mask '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return 0;
	_cleanup_close_ int top = -1;
	if ((r = open_protected(rootfd, path, "mask", &top, err)) <= 0)
		return r < 0 ? r : husk_error_set(err, ENOENT, "mask '%s': gone", path);
	if ((r = set_mount_flags(top, MS_RDONLY, false)) < 0)
		return husk_error_errno(err, -r, "mask '%s'", path);
	if (*empty < 0) {
		*empty = steal_fd(&top);
		closep(tree);
	}
	return 0;
}

static int readonly_path(int rootfd, const char *path, struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	int found = open_protected(rootfd, path, "make read-only", &fd, err);
	if (found <= 0)
		return found;
	char p[64];
	if (mount(FDPATH(p, fd), p, NULL, MS_BIND | MS_REC, NULL) < 0)
		return husk_error_errno(err, errno, "make '%s' read-only", path);
	_cleanup_close_ int top = -1;
	int r = open_protected(rootfd, path, "make read-only", &top, err);
	if (r == 0)
		r = husk_error_set(err, ENOENT, "make read-only '%s': gone", path);
	if (r < 0)
		return r;
	if ((r = set_mount_flags(top, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, true)) < 0)
		return husk_error_errno(err, -r, "make '%s' read-only", path);
	return 0;
}

static int pivot(int rootfd, const char *rootfs, struct husk_error *err)
{
	_cleanup_close_ int oldroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (oldroot < 0)
		return husk_error_errno(err, errno, "open '/'");
	/* pivot_root(".", ".") stacks the old root on the new one; detaching
	 * it leaves the new root alone, without a directory for the old. */
	if (fchdir(rootfd) < 0)
		return husk_error_errno(err, errno, "chdir to rootfs '%s'", rootfs);
	if (syscall(SYS_pivot_root, ".", ".") < 0)
		return husk_error_errno(err, errno, "pivot_root to '%s'", rootfs);
	/* The old root may hold peers of the host's mounts (rshared root):
	 * unmounting them would propagate, so make it a slave first. From the
	 * new root, mount(2) would take "." as the new root (unlike umount2,
	 * it does not go down to the mount stacked on it): chdir into the old
	 * root's own mount first. */
	if (fchdir(oldroot) < 0)
		return husk_error_errno(err, errno, "chdir to the old root");
	if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
		return husk_error_errno(err, errno, "make the old root a slave");
	if (umount2(".", MNT_DETACH) < 0)
		return husk_error_errno(err, errno, "detach the old root");
	if (chdir("/") < 0)
		return husk_error_errno(err, errno, "chdir '/'");
	return 0;
}

/* The mount point path is on: path itself or its nearest parent that is
 * the root of a mount. */
static int mount_point_of(const char *path, char **ret, struct husk_error *err)
{
	_cleanup_free_ char *p = realpath(path, NULL);
	if (!p)
		return husk_error_errno(err, errno, "resolve '%s'", path);
	while (!streq(p, "/")) {
		char *slash = strrchr(p, '/');
		_cleanup_free_ char *parent = slash == p ? xstrdup("/") : xstrndup(p, slash - p);
		struct statx a, b;
		if (statx(AT_FDCWD, p, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &a) < 0 ||
		    statx(AT_FDCWD, parent, AT_SYMLINK_NOFOLLOW, STATX_MNT_ID, &b) < 0)
			return husk_error_errno(err, errno, "stat '%s'", p);
		/* A bind mount of a directory of the same file system shows
		 * only in the mount id (Linux 5.8+); before, the device. */
		bool top =
		    (a.stx_mask & b.stx_mask & STATX_MNT_ID)
			? a.stx_mnt_id != b.stx_mnt_id
			: a.stx_dev_major != b.stx_dev_major || a.stx_dev_minor != b.stx_dev_minor;
		if (top)
			break;
		free(p);
		p = steal_ptr(&parent);
	}
	*ret = steal_ptr(&p);
	return 0;
}

/* The rootfs in a copy of the caller's namespace, as a mount of its own;
 * *ret_rootfd: its root. */
static int root_in_copy(struct lc *lc, int *ret_rootfd, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	int r;
	/* The propagation of the copy of the host's mounts, as runc sets it:
	 * rslave by default (host mounts reach the container, nothing goes
	 * back); rprivate on request; rshared when a volume propagates both
	 * ways, so that its source stays a peer of the host's mount and the
	 * volume's bind joins that peer group. */
	bool shared_root =
	    s->rootfs_propagation == CTR_PROP_SHARED || s->rootfs_propagation == CTR_PROP_RSHARED;
	unsigned long root_prop =
	    s->rootfs_propagation == CTR_PROP_PRIVATE || s->rootfs_propagation == CTR_PROP_RPRIVATE
		? MS_PRIVATE | MS_REC
	    : shared_root ? prop_flags(s->rootfs_propagation)
			  : MS_SLAVE | MS_REC;
	if (mount(NULL, "/", NULL, root_prop, NULL) < 0)
		return husk_error_errno(err, errno, "make '/' %s",
					root_prop & MS_PRIVATE	? "private"
					: root_prop & MS_SHARED ? "shared"
								: "slave");
	/* Everything the launcher mounts goes on the rootfs: make the mount it
	 * is on private so none of it propagates to the host, whatever the
	 * root's propagation (pivot_root also refuses a shared parent). */
	_cleanup_close_ int rootfd = -1;
	if (lc->root_by_cwd) {
		/* "." is the root of the rootfs mount itself (see root_by_cwd),
		 * copied from the host's namespace and so locked, which
		 * pivot_root refuses: put a clone of our own on top of it, and
		 * keep its fd, as the path cannot be walked. */
		if (mount(NULL, ".", NULL, MS_PRIVATE, NULL) < 0)
			return husk_error_errno(err, errno, "make rootfs '%s' private", s->rootfs);
		rootfd =
		    open_tree(AT_FDCWD, ".", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (rootfd < 0)
			return husk_error_errno(err, errno, "clone rootfs '%s'", s->rootfs);
		if (move_mount(rootfd, "", AT_FDCWD, ".", MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return husk_error_errno(err, errno, "mount rootfs '%s'", s->rootfs);
	} else {
		_cleanup_free_ char *point = NULL;
		if ((r = mount_point_of(s->rootfs, &point, err)) < 0)
			return husk_error_prefix(err, "rootfs");
		if (mount(NULL, point, NULL, MS_PRIVATE, NULL) < 0)
			return husk_error_errno(err, errno, "make '%s' private", point);
		/* pivot_root needs the new root to be a mount point. */
		if (mount(s->rootfs, s->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
			return husk_error_errno(err, errno, "bind rootfs '%s'", s->rootfs);
	}
	if (rootfd < 0)
		rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return husk_error_errno(err, errno, "open rootfs '%s'", s->rootfs);
	if ((r = unstage_clones(lc, rootfd, LC_STAGE_DIR, err)) < 0)
		return r;
	*ret_rootfd = steal_fd(&rootfd);
	return 0;
}

/* The rootfs in a copy of the template: stage 1's clone (its propagation
 * and that of every other clone set by lc_template_prepare) on the
 * template's /rootfs. */
static int root_in_template(struct lc *lc, int *ret_rootfd, struct husk_error *err)
{
	_cleanup_close_ int top = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (top < 0)
		return husk_error_errno(err, errno, "open '/'");
	int r = unstage_clones(lc, top, LC_TEMPLATE_STAGE_DIR, err);
	if (r < 0)
		return r;
	if (move_mount(lc->rootfs_tree, "", top, "rootfs", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return husk_error_errno(err, errno, "mount rootfs '%s'", lc->spec->rootfs);
	*ret_rootfd = steal_fd(&lc->rootfs_tree);
	return 0;
}

int lc_setup_rootfs(struct lc *lc, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	int r;
	mode_t old_umask = umask(0);

	_cleanup_close_ int rootfd = -1;
	if ((r = lc->in_template ? root_in_template(lc, &rootfd, err)
				 : root_in_copy(lc, &rootfd, err)) < 0)
		return r;

	/* An image may not make /proc or /sys a symlink: procfs and sysfs
	 * would land elsewhere and the masked paths with them (runc refuses
	 * it too). */
	static const char *const own[] = {"/proc", "/sys"};
	for (size_t i = 0; i < ARRAY_SIZE(own); i++) {
		_cleanup_close_ int fd = -1;
		if ((r = open_protected(rootfd, own[i], "mount", &fd, err)) < 0)
			return r;
	}
	if ((r = mount_fs(rootfd, "/proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL,
			  err)) < 0)
		return r;
	unsigned long sysflags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (s->privileged ? 0 : MS_RDONLY);
	r = mount_fs(rootfd, "/sys", "sysfs", "sysfs", sysflags, NULL, err);
	if (r < 0 && err->code == EPERM && (!lc->in_template || lc->sys_tree >= 0)) {
		/* sysfs needs a network namespace of our own user namespace;
		 * otherwise show the host's, read-only. */
		husk_error_clear(err);
		r = bind_at(rootfd, "/sys", "/sys", lc->sys_tree, true, sysflags, CTR_PROP_RPRIVATE,
			    err);
	}
	if (r < 0)
		return r;
	_cleanup_(own_tmpfs_close) struct own_tmpfs tmp = {-1, -1, -1};
	if ((r = own_tmpfs_open(rootfd, s->ns[CTR_NS_CGROUP].mode == CTR_NS_NEW, &tmp, err)) < 0)
		return r;
	if ((r = setup_cgroupfs(rootfd, lc, &tmp, err)) < 0)
		return r;
	if ((r = setup_dev(rootfd, lc, &tmp, err)) < 0)
		return r;

	unsigned long etc_flags = s->readonly_rootfs ? MS_RDONLY : 0;
	const char *files[][2] = {{s->hostname_path, "/etc/hostname"},
				  {s->hosts_path, "/etc/hosts"},
				  {s->resolv_path, "/etc/resolv.conf"}};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i][0] &&
		    (r = bind_at(rootfd, files[i][1], files[i][0], lc->idmap_files[i + 1], false,
				 etc_flags, CTR_PROP_RPRIVATE, err)) < 0)
			return r;

	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		if (m->bind) {
			r = bind_checked(rootfd, m->destination, m->source, lc->idmap_mounts[i],
					 m->recursive, m->flags, m->propagation, s, err);
		} else {
			r = mount_fs_checked(rootfd, m->destination,
					     m->source ? m->source : m->type, m->type, m->flags,
					     m->data, s, err);
			if (r == 0 && m->propagation != CTR_PROP_DEFAULT) {
				_cleanup_close_ int top = -1;
				char p[64];
				if ((r = open_in(rootfd, m->destination, CTR_CREATE_NONE, &top,
						 err)) == 0 &&
				    mount(NULL, FDPATH(p, top), NULL, prop_flags(m->propagation),
					  NULL) < 0)
					r = husk_error_errno(err, errno,
							     "mount '%s': set propagation",
							     m->destination);
			}
		}
		if (r < 0)
			return r;
	}
	if ((r = setup_devices(rootfd, lc, err)) < 0)
		return r;
	{
		/* runc creates a missing working directory; do the same, as
		 * root and inside the rootfs. A failure shows at chdir. */
		_cleanup_close_ int cwd = -1;
		struct husk_error e = HUSK_ERROR_INIT;
		ctr_open_in_root(rootfd, lc->cwd, CTR_CREATE_DIR, true, &cwd, &e);
		husk_error_clear(&e);
	}

	if ((r = pivot(rootfd, s->rootfs, err)) < 0)
		return r;
	/* The clones are in place or unused (a detached clone of the host's
	 * /sys or a device node): none may stay open for the process to
	 * reach through /proc/self/fd (a working_dir there, CVE-2024-21626). */
	close_clones(lc);
	_cleanup_close_ int newroot = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (newroot < 0)
		return husk_error_errno(err, errno, "open '/'");

	if ((r = apply_sysctls(s, err)) < 0)
		return r;
	char *const *masked =
	    s->masked_paths ? s->masked_paths : (char *const *)ctr_default_masked_paths;
	char *const *ro =
	    s->readonly_paths ? s->readonly_paths : (char *const *)ctr_default_readonly_paths;
	_cleanup_close_ int empty = -1;
	for (size_t i = 0; masked[i]; i++)
		if ((r = mask_path(newroot, masked[i], &empty, &tmp.empty, err)) < 0)
			return r;
	for (size_t i = 0; ro[i]; i++)
		if ((r = readonly_path(newroot, ro[i], err)) < 0)
			return r;
	if (s->readonly_rootfs && (r = set_mount_flags(newroot, MS_RDONLY, false)) < 0)
		return husk_error_errno(err, -r, "make the rootfs read-only");
	if (s->rootfs_propagation == CTR_PROP_SHARED || s->rootfs_propagation == CTR_PROP_RSHARED) {
		if (mount(NULL, "/", NULL, prop_flags(s->rootfs_propagation), NULL) < 0)
			return husk_error_errno(err, errno, "make '/' shared");
	}
	umask(old_umask);
	return 0;
}

int lc_setup_tty(const struct lc *lc, bool console, struct husk_error *err)
{
	_cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return husk_error_errno(err, errno, "open '/dev/ptmx'");
	int unlock = 0;
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		return husk_error_errno(err, errno, "unlock the pty");
	_cleanup_close_ int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return husk_error_errno(err, errno, "open the pty");
	if (console) {
		_cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		_cleanup_close_ int fd = -1;
		char p[64], q[64];
		int r = root < 0 ? husk_error_errno(err, errno, "open '/'")
				 : open_in(root, "/dev/console", CTR_CREATE_FILE, &fd, err);
		if (r < 0)
			return r;
		snprintf(q, sizeof(q), "/proc/self/fd/%d", slave);
		if (mount(q, FDPATH(p, fd), NULL, MS_BIND, NULL) < 0)
			return husk_error_errno(err, errno, "bind '/dev/console'");
		const struct ctr_spec *sp = lc->spec;
		r = tty_set_size(slave, sp->console_height, sp->console_width);
		if (r < 0)
			return husk_error_errno(err, -r, "set the console size");
	}
	int r = lc_send(lc->sock, LC_MSG_PTY, 0, 0, NULL, master);
	if (r < 0)
		return husk_error_errno(err, -r, "pass the pty");
	if (ioctl(slave, TIOCSCTTY, 0) < 0)
		return husk_error_errno(err, errno, "set the controlling terminal");
	for (int i = 0; i < 3; i++)
		if (dup2(slave, i) < 0)
			return husk_error_errno(err, errno, "set up the terminal");
	return 0;
}
