/* The template mount namespace huskd makes once and the launcher copies for
 * each container (launcher.h): making and pinning it, and opening it again
 * from its pin. */
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/fs.h"
#include "runtime/launcher/internal.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

int lc_template_open(const char *path)
{
	if (!path)
		return -ENOENT;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0)
		return -errno;
	if ((unsigned long)sf.f_type != (unsigned long)NSFS_MAGIC ||
	    ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNS)
		return -ENXIO;
	return steal_fd(&fd);
}

static char *template_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash && slash != path ? xstrndup(path, (size_t)(slash - path)) : xstrdup("/");
}

/* The child that builds the namespace: only syscalls (huskd may have
 * threads). dir: where its tmpfs goes before it becomes the root. */
static _noreturn_ void template_child(const char *dir, const char *const *sub, int ready, int hold)
{
	char c = 0;
	int fd = -1;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("husk-template", dir, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
		  "mode=755,size=16k,nr_inodes=16") < 0 ||
	    (fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		_exit(1);
	for (size_t i = 0; sub[i]; i++)
		if (mkdirat(fd, sub[i], 0755) < 0)
			_exit(1);
	char p[64];
	/* rw and relatime as the host's: a less permissive flag would keep
	 * them from counting as fully visible (mount_too_revealing). */
	snprintf(p, sizeof(p), "/proc/self/fd/%d/proc", fd);
	if (mount("proc", p, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		_exit(2);
	snprintf(p, sizeof(p), "/proc/self/fd/%d/sys", fd);
	if (mount("sysfs", p, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		_exit(3);
	if (fchdir(fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		_exit(4);
	if (mount(NULL, "/", NULL,
		  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		_exit(5);
	if (write(ready, &c, 1) != 1)
		_exit(6);
	/* Stay until the caller has pinned our namespace (EOF). */
	while (read(hold, &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

int ctr_mount_template_release(const char *path, struct husk_error *err)
{
	_cleanup_free_ char *dir = template_dir(path);
	if (umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
		return husk_error_errno(err, errno, "unpin mount template '%s'", path);
	if (unlink(path) < 0 && errno != ENOENT)
		return husk_error_errno(err, errno, "remove '%s'", path);
	/* The directory's own bind (one, or more left by crashed starts). */
	return fs_private_mount_release(dir, err);
}

int ctr_mount_template_make(const char *path, struct husk_error *err)
{
	if (!path || path[0] != '/')
		return husk_error_set(err, EINVAL, "mount template: '%s' is not absolute",
				      path ? path : "");
	int r = ctr_mount_template_release(path, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = template_dir(path);
	/* An nsfs pin may not propagate (the kernel refuses it in a peer):
	 * the directory becomes a private mount of its own. */
	if ((r = fs_private_mount_ensure(dir, 0700, err)) < 0)
		return husk_error_prefix(err, "mount template");
	_cleanup_close_ int pin = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (pin < 0) {
		r = husk_error_errno(err, errno, "mount template: create '%s'", path);
		goto fail;
	}
	int ready[2] = {-1, -1}, hold[2] = {-1, -1};
	if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) {
		r = husk_error_errno(err, errno, "mount template: pipe");
		goto fail_pipes;
	}
	static const char *const sub[] = {"proc", "sys", "rootfs", "stage", NULL};
	pid_t pid = fork();
	if (pid < 0) {
		r = husk_error_errno(err, errno, "mount template: fork");
		goto fail_pipes;
	}
	if (pid == 0) {
		close(ready[0]);
		close(hold[1]);
		template_child(dir, sub, ready[1], hold[0]);
	}
	close(ready[1]);
	close(hold[0]);
	ready[1] = hold[0] = -1;
	char c;
	ssize_t n;
	while ((n = read(ready[0], &c, 1)) < 0 && errno == EINTR)
		;
	if (n == 1) {
		char ns[64];
		snprintf(ns, sizeof(ns), "/proc/%d/ns/mnt", (int)pid);
		if (mount(ns, path, NULL, MS_BIND, NULL) < 0)
			r = husk_error_errno(err, errno, "mount template: pin '%s'", path);
	}
	close(hold[1]);
	hold[1] = -1;
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n != 1 && r == 0)
		r = husk_error_set(err, EIO, "mount template: the child failed (step %d)",
				   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
fail_pipes:
	for (int i = 0; i < 2; i++) {
		if (ready[i] >= 0)
			close(ready[i]);
		if (hold[i] >= 0)
			close(hold[i]);
	}
	if (r == 0)
		return 0;
fail : {
	struct husk_error e = HUSK_ERROR_INIT;
	ctr_mount_template_release(path, &e);
	husk_error_clear(&e);
}
	return r;
}
