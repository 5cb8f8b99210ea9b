/* Container root filesystems: an overlay of the image's layer directories
 * with a per-container upper and work dir under containers/<id>, mounted at
 * mnt/<id>, recorded in containers/<id>/rootfs.json so the image stays in
 * use across restarts. */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "image/internal.h"

/* ---- mounting the overlay ----
 *
 * Two ways, chosen once when the store opens (img_store_open):
 * - fsconfig: the new mount API adds lower layers one at a time with
 *   "lowerdir+" (Linux 6.8+), so the only limit is overlayfs' own stack
 *   depth (500 layers);
 * - legacy: one mount(2) whose options must fit in a page. Each directory
 *   is named /proc/self/fd/N of an O_PATH fd, about 18 bytes, so some 200
 *   layers fit where the store's 64-hex-digit layer paths allowed about 40.
 *   Relative paths after a chdir would not be shorter for those names, and
 *   a chdir would move every thread of huskd. */

/* mount(2) copies at most one page of options */
#define MAX_MOUNT_DATA 4095
/* fsconfig(2) copies at most 256 bytes of a string value */
#define MAX_FSCONFIG_STRING 255

static int fd_name(const char *path, int *fds, size_t *n_fds, char **ret, struct husk_error *err)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_errno(err, errno, "open '%s'", path);
	fds[(*n_fds)++] = fd;
	*ret = xasprintf("/proc/self/fd/%d", fd);
	return 0;
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
}

static int mount_legacy(const struct img_ovl_dirs *d, const char *target, bool readonly,
			struct husk_error *err)
{
	if (d->idmapped)
		return husk_error_set(err, EOPNOTSUPP,
				      "idmapped layers need overlayfs layers given by fd "
				      "(Linux 6.13+)");
	size_t n = strv_length(d->lowers);
	_cleanup_free_ int *fds = xnew(int, n + 2);
	size_t n_fds = 0;
	char *o = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&o, &len);
	if (!f)
		abort();
	fputs("lowerdir=", f);
	int r = 0;
	for (size_t i = 0; r == 0 && i < n; i++) {
		_cleanup_free_ char *name = NULL;
		if ((r = fd_name(d->lowers[i], fds, &n_fds, &name, err)) == 0)
			fprintf(f, "%s%s", i ? ":" : "", name);
	}
	_cleanup_free_ char *upper = NULL, *work = NULL;
	if (r == 0 && d->upper && (r = fd_name(d->upper, fds, &n_fds, &upper, err)) == 0 &&
	    (r = fd_name(d->work, fds, &n_fds, &work, err)) == 0)
		fprintf(f, ",upperdir=%s,workdir=%s", upper, work);
	fclose(f);
	_cleanup_free_ char *opts = o;
	if (r == 0 && len > MAX_MOUNT_DATA)
		r = husk_error_set(err, E2BIG,
				   "%zu layers make overlay options longer than a page (this "
				   "kernel has no overlayfs lowerdir+)",
				   n);
	if (r == 0 && mount("overlay", target, "overlay", readonly ? MS_RDONLY : 0, opts) < 0)
		r = husk_error_errno(err, errno, "mount overlay on '%s'", target);
	close_all(fds, n_fds);
	return r;
}

/* Append what the kernel logged on the fs context (overlayfs says which
 * layer it could not use) to a failure. */
static int fsctx_error(int fsfd, struct husk_error *err, int code, const char *what,
		       const char *value)
{
	char msg[512] = "";
	ssize_t k = read(fsfd, msg, sizeof(msg) - 1);
	msg[k > 0 ? k : 0] = '\0';
	msg[strcspn(msg, "\n")] = '\0';
	if (value)
		return husk_error_set(err, code, "overlay %s '%s': %s%s%s%s", what, value,
				      strerror(code), *msg ? " (" : "", msg, *msg ? ")" : "");
	return husk_error_set(err, code, "overlay %s: %s%s%s%s", what, strerror(code),
			      *msg ? " (" : "", msg, *msg ? ")" : "");
}

static int set_dir(int fsfd, const char *key, const char *path, int *fds, size_t *n_fds,
		   struct husk_error *err)
{
	_cleanup_free_ char *name = NULL;
	if (strlen(path) > MAX_FSCONFIG_STRING) {
		int r = fd_name(path, fds, n_fds, &name, err);
		if (r < 0)
			return r;
	}
	if (fsconfig(fsfd, FSCONFIG_SET_STRING, key, name ? name : path, 0) < 0)
		return fsctx_error(fsfd, err, errno, key, path);
	return 0;
}

/* What an id the mount's idmapping does not map reads as (the kernel's
 * default overflowuid and overflowgid). */
#define OVERFLOW_ID 65534

/* A detached clone of the mount at dir, idmapped with userns. */
static int idmapped_tree(const char *dir, int userns, int *ret_fd, struct husk_error *err)
{
	_cleanup_close_ int fd = open_tree(AT_FDCWD, dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return husk_error_errno(err, errno, "clone mount of '%s'", dir);
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
	if (mount_setattr(fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
		return husk_error_errno(err, errno, "idmapped mount of '%s'", dir);
	*ret_fd = steal_fd(&fd);
	return 0;
}

static int set_fd(int fsfd, const char *key, int fd, const char *path, struct husk_error *err)
{
	if (fsconfig(fsfd, FSCONFIG_SET_FD, key, NULL, fd) < 0) {
		if (errno == EINVAL)
			return fsctx_error(fsfd, err, EOPNOTSUPP,
					   "idmapped layer (layers by fd need Linux 6.13+)", path);
		return fsctx_error(fsfd, err, errno, key, path);
	}
	return 0;
}

/* Lower layers as idmapped clones handed over by fd (kept in fds until
 * create: overlayfs clones them only then, and a detached tree is gone
 * once its open_tree fd closes). The upper dir cannot be idmapped (the
 * mounter, host root, has no id in the mapping to write work files as):
 * it is a plain dir owned by the namespace's root instead, as containerd
 * does, so copies-up land with the ids the lowers show. */
static int set_idmapped_dirs(int fsfd, const struct img_ovl_dirs *d, int *fds, size_t *n_fds,
			     struct husk_error *err)
{
	int r = 0;
	for (size_t i = 0; r == 0 && d->lowers[i]; i++) {
		int t = -1;
		if ((r = idmapped_tree(d->lowers[i], d->userns_fd, &t, err)) == 0) {
			fds[(*n_fds)++] = t;
			r = set_fd(fsfd, "lowerdir+", t, d->lowers[i], err);
		}
	}
	if (r < 0 || !d->upper)
		return r;
	/* Which host ids root inside is: how a directory of host root looks
	 * through an idmapped clone of it. Not the upper dir itself, which a
	 * mount again (after a reboot) finds chowned already: the container's
	 * directory above it, which husk made and never chowns. */
	_cleanup_free_ char *probe = xstrdup(d->upper);
	*strrchr(probe, '/') = '\0';
	struct stat st;
	if (lstat(probe, &st) < 0)
		return husk_error_errno(err, errno, "stat '%s'", probe);
	if (st.st_uid != 0 || st.st_gid != 0)
		return husk_error_set(err, EPERM, "'%s' is not owned by root", probe);
	_cleanup_close_ int t = -1;
	if ((r = idmapped_tree(probe, d->userns_fd, &t, err)) < 0)
		return r;
	if (fstat(t, &st) < 0)
		return husk_error_errno(err, errno, "stat '%s'", probe);
	if (st.st_uid == OVERFLOW_ID || st.st_gid == OVERFLOW_ID)
		return husk_error_set(err, EINVAL,
				      "the user namespace does not map root (container id 0)");
	if (chown(d->upper, st.st_uid, st.st_gid) < 0)
		return husk_error_errno(err, errno, "chown '%s'", d->upper);
	if ((r = set_dir(fsfd, "upperdir", d->upper, fds, n_fds, err)) < 0)
		return r;
	return set_dir(fsfd, "workdir", d->work, fds, n_fds, err);
}

static int mount_fsconfig(const struct img_ovl_dirs *d, const char *target, bool readonly,
			  struct husk_error *err)
{
	size_t n = strv_length(d->lowers);
	_cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd < 0)
		return husk_error_errno(err, errno, "overlay: fsopen");
	/* Paths too long for fsconfig go by fd; each is closed once used. */
	_cleanup_free_ int *fds = xnew(int, n + 4);
	size_t n_fds = 0;
	int r = 0;
	if (d->idmapped)
		r = set_idmapped_dirs(fsfd, d, fds, &n_fds, err);
	for (size_t i = 0; !d->idmapped && r == 0 && i < n; i++)
		r = set_dir(fsfd, "lowerdir+", d->lowers[i], fds, &n_fds, err);
	if (!d->idmapped && r == 0 && d->upper)
		r = set_dir(fsfd, "upperdir", d->upper, fds, &n_fds, err);
	if (!d->idmapped && r == 0 && d->work)
		r = set_dir(fsfd, "workdir", d->work, fds, &n_fds, err);
	if (r == 0 && fsconfig(fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		r = fsctx_error(fsfd, err, errno, "create", NULL);
	close_all(fds, n_fds);
	if (r < 0)
		return r;
	_cleanup_close_ int mfd = fsmount(fsfd, FSMOUNT_CLOEXEC, readonly ? MOUNT_ATTR_RDONLY : 0);
	if (mfd < 0)
		return fsctx_error(fsfd, err, errno, "fsmount", NULL);
	if (move_mount(mfd, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return husk_error_errno(err, errno, "mount overlay on '%s'", target);
	return 0;
}

const struct img_overlay_ops img_overlay_fsconfig = {"fsconfig", mount_fsconfig};
const struct img_overlay_ops img_overlay_legacy = {"legacy", mount_legacy};

const struct img_overlay_ops *img_overlay_probe(const char *dir)
{
	_cleanup_close_ int fsfd = fsopen("overlay", FSOPEN_CLOEXEC);
	if (fsfd >= 0 && fsconfig(fsfd, FSCONFIG_SET_STRING, "lowerdir+", dir, 0) == 0)
		return &img_overlay_fsconfig;
	return &img_overlay_legacy;
}

/* A mount point of the store's own, <mnt>/<name>. */
static bool img_in_mnt(const struct img_store *s, const char *path)
{
	size_t n = strlen(s->mnt);
	return strncmp(path, s->mnt, n) == 0 && path[n] == '/' && path[n + 1] &&
	       !strchr(path + n + 1, '/');
}

static bool is_mounted(const char *path)
{
	struct stat a, b;
	_cleanup_free_ char *parent = xasprintf("%s/..", path);
	if (stat(path, &a) < 0 || stat(parent, &b) < 0)
		return false;
	return a.st_dev != b.st_dev;
}

static int do_mount(struct img_store *s, const char *cid, const char *image_id, const char *target,
		    bool readonly, const char *userns, struct husk_error *err)
{
	pthread_mutex_lock(&s->lock);
	struct img_record *rec = img_store_record(s, image_id);
	_cleanup_strv_ char **chains = NULL;
	if (rec) {
		chains = xnew(char *, 1);
		for (size_t i = 0; rec->chain_ids[i]; i++)
			chains = strv_append(chains, rec->chain_ids[i]);
	}
	pthread_mutex_unlock(&s->lock);
	if (!chains)
		return husk_error_set(err, ENOENT, "rootfs '%s': image '%s' not found", cid,
				      image_id);
	if (!chains[0])
		return husk_error_set(err, EINVAL, "rootfs '%s': image '%s' has no layers", cid,
				      image_id);
	size_t n = strv_length(chains);
	struct img_ovl_dirs d = {
	    .lowers = xnew(char *, n + 1),
	    .upper = xasprintf("%s/%s/upper", s->containers, cid),
	    .work = xasprintf("%s/%s/work", s->containers, cid),
	    .userns_fd = -1,
	};
	/* overlayfs lists the top layer first */
	for (size_t i = 0; i < n; i++)
		d.lowers[i] = xasprintf("%s/%s/diff", s->layers, img_digest_hex(chains[n - 1 - i]));
	int r = fs_mkdir_p(target, 0755, err);
	if (r == 0 && userns) {
		d.idmapped = true;
		struct statfs sf;
		if ((d.userns_fd = open(userns, O_RDONLY | O_CLOEXEC)) < 0)
			r = husk_error_errno(err, errno, "open user namespace '%s'", userns);
		/* A pin outlives its namespace only as an empty file (after a
		 * reboot): refuse it rather than mount without the mapping. */
		else if (fstatfs(d.userns_fd, &sf) < 0 || sf.f_type != NSFS_MAGIC ||
			 ioctl(d.userns_fd, NS_GET_NSTYPE) != CLONE_NEWUSER)
			r = husk_error_set(err, ESTALE,
					   "'%s' is not a user namespace (any more): the layers "
					   "cannot be idmapped with it",
					   userns);
	}
	if (r < 0)
		r = husk_error_prefix(err, "rootfs '%s'", cid);
	else if ((r = s->overlay->mount(&d, target, readonly, err)) < 0)
		r = husk_error_prefix(err, "rootfs '%s'", cid);
	if (d.userns_fd >= 0)
		close(d.userns_fd);
	strv_free(d.lowers);
	free(d.upper);
	free(d.work);
	return r;
}

int img_rootfs_create(struct img_store *s, const char *image, const char *id,
		      const struct img_rootfs_opts *opts, char **ret_path, struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "rootfs: invalid container id '%s'",
				      id ? id : "");
	bool readonly = opts && opts->readonly;
	_cleanup_free_ char *dir = xasprintf("%s/%s", s->containers, id);
	/* Records from before mnt/ name containers/<id>/merged: they are read
	 * back as they are, this is only for a new one. */
	bool own_target = !opts || isempty(opts->target);
	_cleanup_free_ char *target =
	    own_target ? xasprintf("%s/%s", s->mnt, id) : xstrdup(opts->target);

	/* Claim the image under the lock so a removal cannot slip between
	 * the lookup and the record. */
	pthread_mutex_lock(&s->lock);
	struct img_record *rec;
	int r = img_store_lookup(s, image, &rec, NULL, err);
	if (r < 0) {
		pthread_mutex_unlock(&s->lock);
		return husk_error_prefix(err, "rootfs '%s'", id);
	}
	if (img_store_user_find(s, id) || fs_exists(dir) || (own_target && fs_exists(target))) {
		pthread_mutex_unlock(&s->lock);
		return husk_error_set(err, EEXIST, "rootfs '%s' already exists", id);
	}
	_cleanup_free_ char *image_id = xstrdup(rec->id);
	struct img_user *u = xnew(struct img_user, 1);
	u->cid = xstrdup(id);
	u->id = xstrdup(image_id);
	u->mountpoint = xstrdup(target);
	u->readonly = readonly;
	u->idmap_userns = opts && opts->idmap_userns ? xstrdup(opts->idmap_userns) : NULL;
	img_store_user_add(s, u);
	pthread_mutex_unlock(&s->lock);

	_cleanup_free_ char *upper = xasprintf("%s/upper", dir);
	_cleanup_free_ char *work = xasprintf("%s/work", dir);
	/* Root of a user namespace is nobody here: it must be able to walk
	 * to its rootfs (merged) by name, though not list the directory. */
	bool userns = opts && opts->idmap_userns;
	if (mkdir(dir, userns ? 0711 : 0700) < 0 || (userns && chmod(dir, 0711) < 0)) {
		r = husk_error_errno(err, errno, "rootfs '%s': create '%s'", id, dir);
		goto fail;
	}
	if (mkdir(upper, 0755) < 0 || mkdir(work, 0700) < 0) {
		r = husk_error_errno(err, errno, "rootfs '%s': create upper and work dirs", id);
		goto fail;
	}
	{
		_cleanup_gen_ yajl_gen g = json_gen_new(true);
		yajl_gen_map_open(g);
		json_kv_str(g, "image", image_id);
		json_kv_str(g, "mountpoint", target);
		json_kv_bool(g, "readonly", readonly);
		/* For a mount again after a reboot: the same idmapping. */
		if (opts && opts->idmap_userns)
			json_kv_str(g, "idmap_userns", opts->idmap_userns);
		yajl_gen_map_close(g);
		_cleanup_free_ char *text = json_gen_steal(g);
		_cleanup_free_ char *path = xasprintf("%s/rootfs.json", dir);
		r = fs_write_atomic(path, text, strlen(text), 0600, err);
		if (r < 0)
			goto fail;
	}
	r = do_mount(s, id, image_id, target, readonly, opts ? opts->idmap_userns : NULL, err);
	if (r < 0)
		goto fail;
	if (ret_path)
		*ret_path = xstrdup(target);
	return 0;
fail:
	fs_rm_rf(dir, NULL);
	if (own_target)
		rmdir(target);
	pthread_mutex_lock(&s->lock);
	img_store_user_drop(s, id);
	pthread_mutex_unlock(&s->lock);
	return r;
}

int img_rootfs_mount(struct img_store *s, const char *id, char **ret_path, struct husk_error *err)
{
	pthread_mutex_lock(&s->lock);
	struct img_user *u = img_store_user_find(s, id);
	_cleanup_free_ char *target = u ? xstrdup(u->mountpoint) : NULL;
	_cleanup_free_ char *image_id = u ? xstrdup(u->id) : NULL;
	_cleanup_free_ char *userns = u && u->idmap_userns ? xstrdup(u->idmap_userns) : NULL;
	bool readonly = u && u->readonly;
	pthread_mutex_unlock(&s->lock);
	if (!u)
		return husk_error_set(err, ENOENT, "rootfs '%s' not found", id);
	if (!is_mounted(target)) {
		int r = do_mount(s, id, image_id, target, readonly, userns, err);
		if (r < 0)
			return r;
	}
	if (ret_path)
		*ret_path = steal_ptr(&target);
	return 0;
}

int img_rootfs_remove(struct img_store *s, const char *id, struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "rootfs: invalid container id '%s'",
				      id ? id : "");
	pthread_mutex_lock(&s->lock);
	struct img_user *u = img_store_user_find(s, id);
	_cleanup_free_ char *target = u ? xstrdup(u->mountpoint) : NULL;
	pthread_mutex_unlock(&s->lock);
	_cleanup_free_ char *dir = xasprintf("%s/%s", s->containers, id);
	if (target) {
		/* Detach: the container's processes may still hold it briefly. */
		while (umount2(target, MNT_DETACH) == 0)
			;
		if (errno != EINVAL && errno != ENOENT)
			return husk_error_errno(err, errno, "rootfs '%s': unmount '%s'", id,
						target);
		/* Its own directory under mnt/ (one in dir goes with dir). */
		if (img_in_mnt(s, target) && rmdir(target) < 0 && errno != ENOENT)
			return husk_error_errno(err, errno, "rootfs '%s': remove '%s'", id, target);
	}
	int r = fs_rm_rf(dir, err);
	if (r < 0)
		return husk_error_prefix(err, "rootfs '%s'", id);
	pthread_mutex_lock(&s->lock);
	img_store_user_drop(s, id);
	pthread_mutex_unlock(&s->lock);
	img_usage_forget(s, id);
	return 0;
}

char **img_rootfs_list(struct img_store *s)
{
	char **v = xnew(char *, 1);
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->n_users; i++)
		v = strv_append(v, s->users[i]->cid);
	pthread_mutex_unlock(&s->lock);
	return v;
}
