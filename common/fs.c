/* Bounded reads, atomic writes and directory helpers. */
#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "common/compat.h"

int fs_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len,
		 struct husk_error *err)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_errno(err, errno, "open '%s'", path);
	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = xmalloc(cap + 1);
	for (;;) {
		if (len == cap) {
			if (cap > max)
				break;
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return husk_error_errno(err, errno, "read '%s'", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max)
		return husk_error_set(err, EFBIG, "read '%s': larger than %zu bytes", path, max);
	buf[len] = '\0';
	*ret_buf = steal_ptr(&buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_renamed(const char *path, const void *data, size_t len, mode_t mode, bool durable,
			 struct husk_error *err)
{
	/* pid and thread id: two threads writing one path must not share a
	 * temporary file. */
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.%d.%d", path, (int)getpid(), (int)gettid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return husk_error_errno(err, errno, "create '%s'", tmp);
	int r = write_all(fd, data, len);
	if (r == 0 && durable && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		return husk_error_errno(err, -r, "write '%s'", path);
	}
	if (durable) {
		_cleanup_free_ char *dircopy = xstrdup(path);
		_cleanup_close_ int dfd =
		    open(dirname(dircopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0)
			fsync(dfd);
	}
	return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		    struct husk_error *err)
{
	return write_renamed(path, data, len, mode, true, err);
}

int fs_write_replace(const char *path, const void *data, size_t len, mode_t mode,
		     struct husk_error *err)
{
	return write_renamed(path, data, len, mode, false, err);
}

static int mkdir_each(const char *path, mode_t mode, struct husk_error *err)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return husk_error_errno(err, errno, "mkdir '%s'", p);
		*s = c;
		if (!c)
			return 0;
	}
}

int fs_mkdir_p(const char *path, mode_t mode, struct husk_error *err)
{
	/* Mostly the parent exists: one call, not one per level. */
	if (mkdir(path, mode) == 0)
		return 0;
	int e = errno;
	/* A parent missing, or one in the way: level by level, naming it. */
	if (e == ENOENT || e == ENOTDIR) {
		int r = mkdir_each(path, mode, err);
		if (r < 0)
			return r;
	} else if (e != EEXIST) {
		return husk_error_errno(err, e, "mkdir '%s'", path);
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return husk_error_errno(err, errno, "stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return husk_error_set(err, ENOTDIR, "mkdir '%s': not a directory", path);
	return 0;
}

/* fs_rm_rf walks by directory fd, never by path: a tree a container made
 * can be deeper than PATH_MAX (nftw failed on it, and its layer stayed on
 * disk), and a name on the way cannot be swapped for a symlink to
 * elsewhere. It holds an open directory for the first RM_OPEN_LEVELS
 * levels and rescans deeper ones after each subdirectory, so a hostile
 * depth costs time, not file descriptors. */
#define RM_OPEN_LEVELS 32

struct rm_level {
	DIR *d;	    /* NULL below RM_OPEN_LEVELS once left for a subdirectory */
	char *name; /* in the level above; NULL at the top */
	dev_t dev;
	ino_t ino;
};

static int rm_open_dir(int at, const char *name, dev_t top_dev, struct rm_level *l)
{
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct statx stx;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_INO, &stx) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	/* Another mount (here or under another name): not ours to empty. */
	if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != top_dev ||
	    (at != AT_FDCWD && (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	     (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))) {
		close(fd);
		return -EXDEV;
	}
	l->dev = top_dev;
	l->ino = stx.stx_ino;
	l->d = fdopendir(fd);
	if (!l->d) {
		int e = errno;
		close(fd);
		return -e;
	}
	return 0;
}

/* Back at level l (above the one just removed) without its DIR: through
 * "..", which must still be the directory that was left. */
static int rm_reopen(struct rm_level *l, int child_fd)
{
	int fd = openat(child_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_dev != l->dev || st.st_ino != l->ino) {
		close(fd);
		return -ESTALE;
	}
	l->d = fdopendir(fd);
	if (!l->d) {
		int e = errno;
		close(fd);
		return -e;
	}
	return 0;
}

static bool rm_is_dir(DIR *d, const struct dirent *de)
{
	if (de->d_type != DT_UNKNOWN)
		return de->d_type == DT_DIR;
	struct stat st;
	return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int fs_rm_rf(const char *path, struct husk_error *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : husk_error_errno(err, errno, "stat '%s'", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return husk_error_errno(err, errno, "remove '%s'", path);
		return 0;
	}
	size_t n = 1, cap = 8;
	struct rm_level *lv = xnew(struct rm_level, cap);
	lv[0] = (struct rm_level){0};
	int r = rm_open_dir(AT_FDCWD, path, st.st_dev, &lv[0]);
	_cleanup_free_ char *bad = NULL; /* the name an error is about */
	while (r == 0 && n > 0) {
		size_t i = n - 1;
		DIR *d = lv[i].d;
		struct dirent *de;
		bool down = false;
		errno = 0;
		while (r == 0 && !down && (de = readdir(d))) {
			const char *name = de->d_name;
			if (streq(name, ".") || streq(name, ".."))
				continue;
			if (!rm_is_dir(d, de)) {
				if (unlinkat(dirfd(d), name, 0) < 0 && errno != ENOENT)
					r = -errno;
			} else if (unlinkat(dirfd(d), name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
				/* was empty */
			} else if (errno != ENOTEMPTY && errno != EEXIST) {
				r = -errno;
			} else {
				if (n == cap)
					lv = xrealloc(lv, (cap *= 2) * sizeof(*lv));
				lv[n] = (struct rm_level){.name = xstrdup(name)};
				r = rm_open_dir(dirfd(d), name, st.st_dev, &lv[n]);
				if (r < 0) {
					free(lv[n].name);
				} else {
					/* Deep down, this level is read again from
					 * the start once back: what is gone is not
					 * listed any more. */
					if (n > RM_OPEN_LEVELS) {
						closedir(d);
						lv[i].d = NULL;
					}
					n++;
					down = true;
				}
			}
			if (r < 0)
				bad = xstrdup(name);
			errno = 0;
		}
		if (r < 0 || down)
			continue;
		if (errno) {
			r = -errno;
			break;
		}
		/* Level i is empty: remove it from the level above. */
		struct rm_level *up = i > 0 ? &lv[i - 1] : NULL;
		if (up && !up->d)
			r = rm_reopen(up, dirfd(d));
		closedir(d);
		lv[i].d = NULL;
		if (r == 0 && up && unlinkat(dirfd(up->d), lv[i].name, AT_REMOVEDIR) < 0 &&
		    errno != ENOENT)
			r = -errno;
		if (r < 0)
			bad = steal_ptr(&lv[i].name);
		free(lv[i].name);
		n--;
	}
	for (size_t i = 0; i < n; i++) {
		if (lv[i].d)
			closedir(lv[i].d);
		free(lv[i].name);
	}
	free(lv);
	if (r == 0 && rmdir(path) < 0 && errno != ENOENT)
		r = -errno;
	if (r < 0 && bad)
		return husk_error_errno(err, -r, "remove '%s' under '%s'", bad, path);
	if (r < 0)
		return husk_error_errno(err, -r, "remove '%s'", path);
	return 0;
}

bool fs_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

bool fs_is_mount_root(int dfd, const char *name)
{
	struct statx stx;
	if (statx(dfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, 0, &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

int fs_private_mount_ensure(const char *dir, mode_t mode, struct husk_error *err)
{
	int r = fs_mkdir_p(dir, mode, err);
	if (r < 0)
		return r;
	struct stat st;
	if (lstat(dir, &st) < 0)
		return husk_error_errno(err, errno, "stat '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return husk_error_set(err, ENOTDIR, "'%s' is not a directory", dir);
	if (!fs_is_mount_root(AT_FDCWD, dir) && mount(dir, dir, NULL, MS_BIND, NULL) < 0)
		return husk_error_errno(err, errno, "bind mount '%s' on itself", dir);
	/* Also when the mount was there: on a shared parent (systemd hosts)
	 * the bind joined its peer group, and what is mounted below must not
	 * propagate to other mount namespaces. */
	if (mount(NULL, dir, NULL, MS_PRIVATE, NULL) < 0)
		return husk_error_errno(err, errno, "make '%s' private", dir);
	return 0;
}

int fs_private_mount_release(const char *dir, struct husk_error *err)
{
	_cleanup_strv_ char **names = NULL;
	int r = fs_list_dir(dir, NULL, &names, err);
	if (r < 0)
		return r;
	if (names[0])
		return husk_error_set(err, EBUSY, "release '%s': %zu entries remain", dir,
				      strv_length(names));
	/* Stacked mounts (a bind made twice by hand) go one at a time. */
	for (int i = 0; i < 16 && fs_is_mount_root(AT_FDCWD, dir); i++)
		if (umount2(dir, UMOUNT_NOFOLLOW) < 0 &&
		    umount2(dir, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL &&
		    errno != ENOENT)
			return husk_error_errno(err, errno, "unmount '%s'", dir);
	if (rmdir(dir) < 0 && errno != ENOENT)
		return husk_error_errno(err, errno, "remove '%s'", dir);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int fs_list_dir(const char *dir, const char *suffix, char ***ret_names, struct husk_error *err)
{
	DIR *d = opendir(dir);
	char **names = xnew(char *, 1);
	if (!d) {
		if (errno == ENOENT) {
			*ret_names = names;
			return 0;
		}
		int e = errno;
		strv_free(names);
		return husk_error_errno(err, e, "open directory '%s'", dir);
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (suffix && !endswith(de->d_name, suffix))
			continue;
		names = strv_append(names, de->d_name);
	}
	closedir(d);
	qsort(names, strv_length(names), sizeof(char *), cmp_str);
	*ret_names = names;
	return 0;
}
