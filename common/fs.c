/* Bounded reads, atomic writes and directory helpers. */
#define _XOPEN_SOURCE 700
#include "common/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

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

int fs_mkdir_p(const char *path, mode_t mode, struct husk_error *err)
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
			break;
	}
	struct stat st;
	if (stat(path, &st) < 0)
		return husk_error_errno(err, errno, "stat '%s'", path);
	if (!S_ISDIR(st.st_mode))
		return husk_error_set(err, ENOTDIR, "mkdir '%s': not a directory", path);
	return 0;
}

static int rm_one(const char *path, const struct stat *st _unused_, int flag,
		  struct FTW *ftw _unused_)
{
	int r = flag == FTW_DP ? rmdir(path) : unlink(path);
	return r < 0 && errno != ENOENT ? -errno : 0;
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
	int r = nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (r != 0)
		return husk_error_errno(err, r < 0 ? -r : EIO, "remove '%s'", path);
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
