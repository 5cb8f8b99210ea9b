/* common/fs: fs_rm_rf removes a tree of any depth (deeper than PATH_MAX, as
 * a container can make in its writable layer) by directory fd, never
 * follows a symlink out of it, stops at another mount, and leaves no fd. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "unit.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* depth levels of name under dir, each with a file and a symlink. */
static void make_chain(const char *dir, const char *name, int depth, bool files)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0);
	for (int i = 0; i < depth; i++) {
		CU_ASSERT_FATAL(mkdirat(fd, name, 0755) == 0);
		if (files) {
			_cleanup_free_ char *f = xasprintf("%s.file", name);
			_cleanup_free_ char *l = xasprintf("%s.root-link", name);
			int ffd = openat(fd, f, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
			CU_ASSERT_FATAL(ffd >= 0);
			close(ffd);
			CU_ASSERT_FATAL(symlinkat("/", fd, l) == 0);
		}
		int next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		CU_ASSERT_FATAL(next >= 0);
		close(fd);
		fd = next;
	}
	close(fd);
}

static void test_tree(void)
{
	_cleanup_free_ char *t = unit_tmpdir();
	_cleanup_free_ char *x = xasprintf("%s/x", t), *keep = xasprintf("%s/keep", t);
	CU_ASSERT_FATAL(mkdir(x, 0755) == 0 && mkdir(keep, 0755) == 0);
	unit_write(keep, "precious", "yes");
	/* Wide and deep: siblings at every level, past the open levels. */
	for (int i = 0; i < 5; i++) {
		_cleanup_free_ char *n = xasprintf("d%d", i);
		make_chain(x, n, 40, true);
	}
	_cleanup_free_ char *lnk = xasprintf("%s/to-keep", x);
	CU_ASSERT_FATAL(symlink(keep, lnk) == 0);
	_cleanup_free_ char *empty = xasprintf("%s/empty", x);
	CU_ASSERT_FATAL(mkdir(empty, 0700) == 0);
	int fds = count_fds();
	struct husk_error e = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(fs_rm_rf(x, &e), 0);
	CU_ASSERT_FALSE(fs_exists(x));
	/* The symlinks went, not what they point at. */
	_cleanup_free_ char *p = xasprintf("%s/precious", keep);
	CU_ASSERT_TRUE(fs_exists(p));
	CU_ASSERT_EQUAL(count_fds(), fds);
	husk_error_clear(&e);
	unit_rmdir(steal_ptr(&t));
}

static void test_deeper_than_path_max(void)
{
	_cleanup_free_ char *t = unit_tmpdir();
	/* 3000 levels of "aaaa/": 15000 bytes of path. */
	make_chain(t, "aaaa", 3000, false);
	int fds = count_fds();
	struct husk_error e = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(fs_rm_rf(t, &e), 0);
	if (e.msg)
		fprintf(stderr, "%s\n", e.msg);
	CU_ASSERT_FALSE(fs_exists(t));
	CU_ASSERT_EQUAL(count_fds(), fds);
	husk_error_clear(&e);
}

static void test_missing_and_file(void)
{
	_cleanup_free_ char *t = unit_tmpdir();
	_cleanup_free_ char *f = xasprintf("%s/f", t), *none = xasprintf("%s/none", t);
	unit_write(t, "f", "x");
	CU_ASSERT_EQUAL(fs_rm_rf(none, NULL), 0);
	CU_ASSERT_EQUAL(fs_rm_rf(f, NULL), 0);
	CU_ASSERT_FALSE(fs_exists(f));
	/* A symlink given as the path is removed, not followed. */
	_cleanup_free_ char *d = xasprintf("%s/d", t), *l = xasprintf("%s/l", t);
	CU_ASSERT_FATAL(mkdir(d, 0755) == 0 && symlink(d, l) == 0);
	unit_write(d, "in", "x");
	CU_ASSERT_EQUAL(fs_rm_rf(l, NULL), 0);
	CU_ASSERT_FALSE(fs_exists(l));
	_cleanup_free_ char *in = xasprintf("%s/in", d);
	CU_ASSERT_TRUE(fs_exists(in));
	unit_rmdir(steal_ptr(&t));
}

/* fs_mkdir_p: one level or many, an existing directory, and what is in the
 * way named in the error. */
static void test_mkdir_p(void)
{
	_cleanup_free_ char *t = unit_tmpdir();
	_cleanup_free_ char *one = xasprintf("%s/one", t), *deep = xasprintf("%s/a/b/c", t);
	CU_ASSERT_EQUAL(fs_mkdir_p(one, 0700, NULL), 0);
	CU_ASSERT_EQUAL(fs_mkdir_p(one, 0700, NULL), 0);
	CU_ASSERT_EQUAL(fs_mkdir_p(deep, 0700, NULL), 0);
	struct stat st;
	CU_ASSERT(stat(deep, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
	unit_write(t, "f", "x");
	_cleanup_free_ char *f = xasprintf("%s/f", t), *under = xasprintf("%s/f/g/h", t);
	struct husk_error e = HUSK_ERROR_INIT;
	CU_ASSERT(fs_mkdir_p(f, 0700, &e) < 0);
	CU_ASSERT_EQUAL(e.code, ENOTDIR);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, f));
	husk_error_clear(&e);
	CU_ASSERT(fs_mkdir_p(under, 0700, &e) < 0);
	CU_ASSERT_EQUAL(e.code, ENOTDIR);
	_cleanup_free_ char *fg = xasprintf("'%s/f/g'", t);
	CU_ASSERT_PTR_NOT_NULL(strstr(e.msg, fg));
	husk_error_clear(&e);
	unit_rmdir(steal_ptr(&t));
}

static void test_stops_at_a_mount(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "(mount part needs root) ");
		return;
	}
	_cleanup_free_ char *t = unit_tmpdir();
	_cleanup_free_ char *m = xasprintf("%s/a/b/m", t);
	CU_ASSERT_FATAL(fs_mkdir_p(m, 0755, NULL) == 0);
	CU_ASSERT_FATAL(mount("husk-unit", m, "tmpfs", 0, "size=64k") == 0);
	unit_write(m, "on-the-mount", "x");
	int fds = count_fds();
	struct husk_error e = HUSK_ERROR_INIT;
	CU_ASSERT(fs_rm_rf(t, &e) < 0);
	CU_ASSERT_PTR_NOT_NULL(e.msg && strstr(e.msg, "'m' under") ? e.msg : NULL);
	_cleanup_free_ char *p = xasprintf("%s/on-the-mount", m);
	CU_ASSERT_TRUE(fs_exists(p));
	CU_ASSERT_EQUAL(count_fds(), fds);
	husk_error_clear(&e);
	CU_ASSERT_EQUAL(umount2(m, MNT_DETACH), 0);
	CU_ASSERT_EQUAL(fs_rm_rf(t, NULL), 0);
	CU_ASSERT_FALSE(fs_exists(t));
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"tree", test_tree},
	    {"deeper than PATH_MAX", test_deeper_than_path_max},
	    {"missing path, a file, a symlink", test_missing_and_file},
	    {"stops at a mount", test_stops_at_a_mount},
	    {"mkdir -p", test_mkdir_p},
	};
	return unit_run("fs", tests, ARRAY_SIZE(tests));
}
