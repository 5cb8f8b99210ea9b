/* Unit tests for layer unpacking: whiteout names, gzip/zstd/plain streams,
 * overlayfs whiteouts and opaque dirs, metadata, diff IDs, size limits and
 * every kind of entry that tries to leave the layer directory. Needs root
 * (device nodes, trusted.* xattrs, ownership). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include "image/internal.h"
#include "unit.h"

struct tar {
	struct archive *a;
	char *buf;
	size_t cap, used;
};

static void tar_open(struct tar *t, int filter)
{
	t->cap = 4 << 20;
	t->buf = xmalloc(t->cap);
	t->a = archive_write_new();
	archive_write_set_format_pax_restricted(t->a);
	if (filter == IMG_COMP_GZIP)
		archive_write_add_filter_gzip(t->a);
	else if (filter == IMG_COMP_ZSTD)
		archive_write_add_filter_zstd(t->a);
	archive_write_open_memory(t->a, t->buf, t->cap, &t->used);
}

static void add(struct tar *t, const char *name, mode_t type, mode_t mode, const char *data,
		const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, mode);
	archive_entry_set_mtime(e, 1700000000, 0);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	if (type == AE_IFREG && link)
		archive_entry_set_hardlink(e, link);
	size_t n = data ? strlen(data) : 0;
	archive_entry_set_size(e, (la_int64_t)n);
	archive_write_header(t->a, e);
	if (n)
		archive_write_data(t->a, data, n);
	archive_entry_free(e);
}

static void add_special(struct tar *t, struct archive_entry *e)
{
	archive_write_header(t->a, e);
}

/* Close the tar, unpack it into a new dir; returns the unpack result. */
static int tar_unpack(struct tar *t, char **ret_dir, char **ret_diff, struct husk_error *err,
		      uint64_t max)
{
	archive_write_close(t->a);
	archive_write_free(t->a);
	char *dir = unit_tmpdir();
	_cleanup_free_ char *file = xasprintf("%s.tar", dir);
	FILE *f = fopen(file, "w");
	fwrite(t->buf, 1, t->used, f);
	fclose(f);
	free(t->buf);
	int fd = open(file, O_RDONLY);
	unlink(file);
	char *diff = NULL;
	int r = img_unpack(fd, dir, max, &diff, NULL, err);
	close(fd);
	*ret_dir = dir;
	if (ret_diff)
		*ret_diff = diff;
	else
		free(diff);
	return r;
}

static void test_whiteout_names(void)
{
	const char *target = NULL;
	CU_ASSERT_EQUAL(img_whiteout_kind("file", &target), IMG_WH_NONE);
	CU_ASSERT_EQUAL(img_whiteout_kind(".wh.file", &target), IMG_WH_FILE);
	CU_ASSERT_STRING_EQUAL(target, "file");
	CU_ASSERT_EQUAL(img_whiteout_kind(".wh..wh..opq", &target), IMG_WH_OPAQUE);
	CU_ASSERT_EQUAL(img_whiteout_kind(".wh..wh.plnk", &target), IMG_WH_META);
	CU_ASSERT_EQUAL(img_whiteout_kind(".whx", &target), IMG_WH_NONE);
	CU_ASSERT_EQUAL(img_whiteout_kind(".wh.", &target), IMG_WH_FILE);
	CU_ASSERT_STRING_EQUAL(target, "");
}

static void check_tree(const char *dir)
{
	struct stat st;
	_cleanup_free_ char *p = NULL;
#define P(rel) (free(p), p = xasprintf("%s/%s", dir, rel))
	CU_ASSERT_EQUAL_FATAL(lstat(P("etc/hosts"), &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0640);
	CU_ASSERT_EQUAL(st.st_mtime, 1700000000);
	CU_ASSERT_EQUAL(st.st_size, 6);
	struct stat st2;
	CU_ASSERT_EQUAL(lstat(P("etc/hosts2"), &st2), 0);
	CU_ASSERT_EQUAL(st.st_ino, st2.st_ino);
	char link[64] = "";
	CU_ASSERT(readlink(P("etc/link"), link, sizeof(link)) > 0);
	CU_ASSERT_STRING_EQUAL(link, "/nowhere/at/all");
	/* whiteout: a 0:0 char device named after its target */
	CU_ASSERT_EQUAL(lstat(P("etc/gone"), &st), 0);
	CU_ASSERT(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	CU_ASSERT_NOT_EQUAL(lstat(P("etc/.wh.gone"), &st), 0);
	/* opaque directory, even one only named by the marker */
	char v[4] = "";
	CU_ASSERT_EQUAL(lgetxattr(P("opq"), "trusted.overlay.opaque", v, sizeof(v)), 1);
	CU_ASSERT_EQUAL(v[0], 'y');
	CU_ASSERT_EQUAL(lgetxattr(P("deep/er"), "trusted.overlay.opaque", v, sizeof(v)), 1);
	CU_ASSERT_NOT_EQUAL(lstat(P("opq/.wh..wh..opq"), &st), 0);
	CU_ASSERT_EQUAL(lstat(P("opq/kept"), &st), 0);
	/* aufs metadata skipped */
	CU_ASSERT_NOT_EQUAL(lstat(P(".wh..wh.plnk"), &st), 0);
#undef P
}

static void build_tree(struct tar *t)
{
	add(t, "./", AE_IFDIR, 0755, NULL, NULL);
	add(t, "./etc/", AE_IFDIR, 0755, NULL, NULL);
	add(t, "./etc/hosts", AE_IFREG, 0640, "hosts\n", NULL);
	add(t, "etc/hosts2", AE_IFREG, 0640, NULL, "etc/hosts");
	add(t, "etc/link", AE_IFLNK, 0777, NULL, "/nowhere/at/all");
	add(t, "etc/.wh.gone", AE_IFREG, 0644, NULL, NULL);
	add(t, "opq/", AE_IFDIR, 0755, NULL, NULL);
	add(t, "opq/.wh..wh..opq", AE_IFREG, 0644, NULL, NULL);
	add(t, "opq/kept", AE_IFREG, 0644, "k", NULL);
	add(t, "deep/er/.wh..wh..opq", AE_IFREG, 0644, NULL, NULL);
	add(t, ".wh..wh.plnk", AE_IFDIR, 0700, NULL, NULL);
}

static void test_unpack_formats(void)
{
	static const int filters[] = {IMG_COMP_NONE, IMG_COMP_GZIP, IMG_COMP_ZSTD};
	_cleanup_free_ char *first_diff = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(filters); i++) {
		struct tar t;
		tar_open(&t, filters[i]);
		build_tree(&t);
		char *dir = NULL, *diff = NULL;
		struct husk_error err = HUSK_ERROR_INIT;
		int r = tar_unpack(&t, &dir, &diff, &err, 0);
		if (r < 0)
			fprintf(stderr, "\nfilter %d: %s\n", filters[i], err.msg);
		CU_ASSERT_EQUAL(r, 0);
		if (r == 0) {
			check_tree(dir);
			CU_ASSERT_TRUE(img_digest_valid(diff));
			/* the diff ID is the uncompressed tar's, whatever the
			 * compression: the same tar gives the same ID */
			if (!first_diff)
				first_diff = xstrdup(diff);
			else
				CU_ASSERT_STRING_EQUAL(diff, first_diff);
		}
		free(diff);
		husk_error_clear(&err);
		unit_rmdir(dir);
	}
}

static void test_metadata(void)
{
	struct tar t;
	tar_open(&t, IMG_COMP_GZIP);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "owned");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 04750);
	archive_entry_set_uid(e, 1234);
	archive_entry_set_gid(e, 5678);
	archive_entry_set_uname(e, "root"); /* numeric IDs win, no name lookup */
	archive_entry_xattr_add_entry(e, "user.husk", "hello", 5);
	archive_entry_set_size(e, 0);
	add_special(&t, e);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "null");
	archive_entry_set_filetype(e, AE_IFCHR);
	archive_entry_set_perm(e, 0666);
	archive_entry_set_rdevmajor(e, 1);
	archive_entry_set_rdevminor(e, 3);
	add_special(&t, e);
	archive_entry_free(e);
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(tar_unpack(&t, &dir, NULL, &err, 0), 0);
	_cleanup_free_ char *owned = xasprintf("%s/owned", dir);
	_cleanup_free_ char *null = xasprintf("%s/null", dir);
	struct stat st;
	CU_ASSERT_EQUAL(lstat(owned, &st), 0);
	CU_ASSERT_EQUAL(st.st_uid, 1234);
	CU_ASSERT_EQUAL(st.st_gid, 5678);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 04750);
	char v[8] = "";
	CU_ASSERT_EQUAL(lgetxattr(owned, "user.husk", v, sizeof(v)), 5);
	CU_ASSERT_EQUAL(lstat(null, &st), 0);
	CU_ASSERT(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3);
	unit_rmdir(dir);
}

static void expect_escape(void (*build)(struct tar *), const char *why)
{
	struct tar t;
	tar_open(&t, IMG_COMP_GZIP);
	build(&t);
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(tar_unpack(&t, &dir, NULL, &err, 0), -EPERM);
	if (!(err.msg && strstr(err.msg, why))) {
		fprintf(stderr, "\nexpected '%s' in '%s'\n", why, err.msg ? err.msg : "");
		CU_FAIL("message");
	}
	husk_error_clear(&err);
	/* nothing landed beside the layer directory */
	_cleanup_free_ char *beside = xasprintf("%s/../husk-unit-escaped", dir);
	CU_ASSERT_FALSE(fs_exists(beside));
	unit_rmdir(dir);
}

static void esc_dotdot(struct tar *t)
{
	add(t, "a/../../husk-unit-escaped", AE_IFREG, 0644, "x", NULL);
}
static void esc_abs(struct tar *t)
{
	add(t, "/tmp/husk-unit-escaped", AE_IFREG, 0644, "x", NULL);
}
static void esc_symlink(struct tar *t)
{
	add(t, "up", AE_IFLNK, 0777, NULL, "..");
	add(t, "up/husk-unit-escaped", AE_IFREG, 0644, "x", NULL);
}
static void esc_symlink_dir(struct tar *t)
{
	add(t, "d/", AE_IFDIR, 0755, NULL, NULL);
	add(t, "d/up", AE_IFLNK, 0777, NULL, "/tmp");
	add(t, "d/up/sub/husk-unit-escaped", AE_IFREG, 0644, "x", NULL);
}
static void esc_hardlink(struct tar *t)
{
	add(t, "h", AE_IFREG, 0644, NULL, "../../etc/passwd");
}
static void esc_hardlink_abs(struct tar *t)
{
	add(t, "h", AE_IFREG, 0644, NULL, "/etc/passwd");
}
static void esc_hardlink_symlink(struct tar *t)
{
	add(t, "etc", AE_IFLNK, 0777, NULL, "/etc");
	add(t, "h", AE_IFREG, 0644, NULL, "etc/passwd");
}
static void esc_whiteout(struct tar *t)
{
	add(t, "up", AE_IFLNK, 0777, NULL, "/tmp");
	add(t, "up/.wh.husk-unit-escaped", AE_IFREG, 0644, NULL, NULL);
}

static void test_escapes(void)
{
	expect_escape(esc_dotdot, "'..' in name");
	expect_escape(esc_abs, "absolute name");
	expect_escape(esc_symlink, "through the symlink 'up'");
	expect_escape(esc_symlink_dir, "through the symlink 'd/up'");
	expect_escape(esc_hardlink, "hard link 'h' to '../../etc/passwd'");
	expect_escape(esc_hardlink_abs, "absolute name");
	expect_escape(esc_hardlink_symlink, "through the symlink 'etc'");
	expect_escape(esc_whiteout, "through the symlink 'up'");
}

static void test_limits_and_garbage(void)
{
	struct tar t;
	tar_open(&t, IMG_COMP_GZIP);
	char *big = xmalloc(100001);
	memset(big, 'a', 100000);
	big[100000] = '\0';
	add(&t, "big", AE_IFREG, 0644, big, NULL);
	free(big);
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(tar_unpack(&t, &dir, NULL, &err, 50000), -EFBIG);
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, "larger than 50000"));
	husk_error_clear(&err);
	unit_rmdir(dir);

	/* not a tar at all */
	dir = unit_tmpdir();
	_cleanup_free_ char *file = xasprintf("%s.bin", dir);
	unit_write("/", file + 1,
		   "this is not a tar archive, not even close, nope, no way at all"
		   " -- padding padding padding padding padding padding padding "
		   "padding padding padding padding padding padding padding padding");
	int fd = open(file, O_RDONLY);
	char *diff = NULL;
	CU_ASSERT_EQUAL(img_unpack(fd, dir, 0, &diff, NULL, &err), -EBADMSG);
	close(fd);
	unlink(file);
	husk_error_clear(&err);
	unit_rmdir(dir);

	/* truncated gzip */
	tar_open(&t, IMG_COMP_GZIP);
	add(&t, "f", AE_IFREG, 0644, "hello", NULL);
	archive_write_close(t.a);
	archive_write_free(t.a);
	dir = unit_tmpdir();
	free(file);
	file = xasprintf("%s.gz", dir);
	FILE *f = fopen(file, "w");
	fwrite(t.buf, 1, t.used - 8, f);
	fclose(f);
	free(t.buf);
	fd = open(file, O_RDONLY);
	CU_ASSERT_EQUAL(img_unpack(fd, dir, 0, &diff, NULL, &err), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, "gzip"));
	close(fd);
	unlink(file);
	husk_error_clear(&err);
	unit_rmdir(dir);

	/* an empty stream is an empty layer */
	dir = unit_tmpdir();
	fd = open("/dev/null", O_RDONLY);
	CU_ASSERT_EQUAL(img_unpack(fd, dir, 0, &diff, NULL, &err), 0);
	close(fd);
	free(diff);
	unit_rmdir(dir);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_image_unpack: needs root, skipped\n");
		return 0;
	}
	static const struct unit_test tests[] = {
	    {"whiteout_names", test_whiteout_names},
	    {"unpack_formats", test_unpack_formats},
	    {"metadata", test_metadata},
	    {"escapes", test_escapes},
	    {"limits_and_garbage", test_limits_and_garbage},
	};
	return unit_run("image_unpack", tests, ARRAY_SIZE(tests));
}
