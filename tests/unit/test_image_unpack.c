/* Unit tests for layer unpacking: whiteout names, gzip/zstd/plain streams,
 * overlayfs whiteouts and opaque dirs, metadata, diff IDs, size limits,
 * every kind of entry that tries to leave the layer directory, tars without
 * padding or end blocks and tars cut short, name forms, long names, sparse
 * files, the xattr filter and hard links into earlier layers. Needs root
 * (device nodes, trusted.* xattrs, ownership). */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zlib.h>

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
	int r = img_unpack(fd, dir, max, NULL, &diff, NULL, err);
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
	add(t, ".wh..wh.plnk/123.456", AE_IFREG, 0644, "aufs", NULL);
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
static void esc_dotdot_deep(struct tar *t)
{
	add(t, "a/b/../../../husk-unit-escaped", AE_IFREG, 0644, "x", NULL);
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
	expect_escape(esc_dotdot, "'..' climbs out of the layer");
	expect_escape(esc_dotdot_deep, "'..' climbs out of the layer");
	expect_escape(esc_symlink, "through the symlink 'up'");
	expect_escape(esc_symlink_dir, "through the symlink 'd/up'");
	expect_escape(esc_hardlink, "hard link 'h' to '../../etc/passwd'");
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
	CU_ASSERT_EQUAL(img_unpack(fd, dir, 0, NULL, &diff, NULL, &err), -EBADMSG);
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
	CU_ASSERT_EQUAL(img_unpack(fd, dir, 0, NULL, &diff, NULL, &err), -EBADMSG);
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, "gzip"));
	close(fd);
	unlink(file);
	husk_error_clear(&err);
	unit_rmdir(dir);

	/* an empty stream is an empty layer */
	dir = unit_tmpdir();
	fd = open("/dev/null", O_RDONLY);
	CU_ASSERT_EQUAL(img_unpack(fd, dir, 0, NULL, &diff, NULL, &err), 0);
	close(fd);
	free(diff);
	unit_rmdir(dir);
}

/* Close the tar and return its bytes (caller frees). */
static char *tar_bytes(struct tar *t, size_t *len)
{
	archive_write_close(t->a);
	archive_write_free(t->a);
	*len = t->used;
	return t->buf;
}

/* Unpack len bytes of buf (gzip-compressed first when gz) into a new dir. */
static int unpack_bytes(const char *buf, size_t len, bool gz, char **ret_dir, char **ret_diff,
			char ***ret_links, struct husk_error *err)
{
	char *dir = unit_tmpdir();
	_cleanup_free_ char *file = xasprintf("%s.tar", dir);
	if (gz) {
		gzFile g = gzopen(file, "wb");
		gzwrite(g, buf, (unsigned)len);
		gzclose(g);
	} else {
		FILE *f = fopen(file, "w");
		fwrite(buf, 1, len, f);
		fclose(f);
	}
	int fd = open(file, O_RDONLY);
	unlink(file);
	char *diff = NULL;
	int r = img_unpack(fd, dir, 0, ret_links, &diff, NULL, err);
	close(fd);
	*ret_dir = dir;
	if (ret_diff)
		*ret_diff = diff;
	else
		free(diff);
	return r;
}

static char *file_text(const char *dir, const char *rel)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, rel);
	char *buf = NULL;
	size_t len = 0;
	if (fs_read_file(p, 1 << 20, &buf, &len, NULL) < 0)
		return xstrdup("<missing>");
	return buf;
}

/* umoci and others end a tar right after the last entry's data: no padding
 * to a block, no end-of-archive blocks. Every cut at or after the end of
 * the data is a whole archive; the diff ID is that of the bytes as sent. */
static void test_no_padding(void)
{
	struct tar t;
	tar_open(&t, IMG_COMP_NONE);
	add(&t, "d/", AE_IFDIR, 0755, NULL, NULL);
	add(&t, "d/first", AE_IFREG, 0644, "first\n", NULL);
	add(&t, "d/last", AE_IFREG, 0600, "hello", NULL);
	size_t len;
	_cleanup_free_ char *buf = tar_bytes(&t, &len);
	/* the data of d/last ends 5 bytes into the block after its header */
	size_t data_end = len - 1024 - 512 + 5;
	const size_t cuts[] = {data_end, data_end + 1, len - 1024, len - 512, len};
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++)
		for (int gz = 0; gz <= 1; gz++) {
			char *dir = NULL, *diff = NULL;
			struct husk_error err = HUSK_ERROR_INIT;
			int r = unpack_bytes(buf, cuts[i], gz, &dir, &diff, NULL, &err);
			if (r < 0)
				fprintf(stderr, "\ncut %zu gz %d: %s\n", cuts[i], gz, err.msg);
			CU_ASSERT_EQUAL(r, 0);
			_cleanup_free_ char *a = file_text(dir, "d/first");
			_cleanup_free_ char *b = file_text(dir, "d/last");
			CU_ASSERT_STRING_EQUAL(a, "first\n");
			CU_ASSERT_STRING_EQUAL(b, "hello");
			_cleanup_free_ char *want = img_digest_of(buf, cuts[i]);
			CU_ASSERT_TRUE(diff && streq(diff, want));
			free(diff);
			husk_error_clear(&err);
			unit_rmdir(dir);
		}
	/* a header that is the last thing in the stream */
	tar_open(&t, IMG_COMP_NONE);
	add(&t, "f", AE_IFREG, 0644, "f", NULL);
	add(&t, "empty", AE_IFREG, 0644, NULL, NULL);
	_cleanup_free_ char *buf2 = tar_bytes(&t, &len);
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(unpack_bytes(buf2, len - 1024, false, &dir, NULL, NULL, &err), 0);
	_cleanup_free_ char *e = xasprintf("%s/empty", dir);
	CU_ASSERT_TRUE(fs_exists(e));
	unit_rmdir(dir);
}

/* A layer that ends inside an entry's data fails, naming the entry; the
 * end zeros never complete the file. */
static void test_cut_short(void)
{
	struct tar t;
	tar_open(&t, IMG_COMP_NONE);
	add(&t, "whole", AE_IFREG, 0644, "whole\n", NULL);
	char big[3000];
	memset(big, 'b', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	add(&t, "big", AE_IFREG, 0644, big, NULL);
	size_t len;
	_cleanup_free_ char *buf = tar_bytes(&t, &len);
	size_t big_data = 1024 + 512; /* whole: header + 1 block, big: header */
	const size_t cuts[] = {big_data + 1, big_data + 512, big_data + 2998};
	for (size_t i = 0; i < ARRAY_SIZE(cuts); i++)
		for (int gz = 0; gz <= 1; gz++) {
			char *dir = NULL;
			struct husk_error err = HUSK_ERROR_INIT;
			CU_ASSERT_EQUAL(unpack_bytes(buf, cuts[i], gz, &dir, NULL, NULL, &err),
					-EBADMSG);
			if (!(err.msg && strstr(err.msg, "entry 'big' is cut short"))) {
				fprintf(stderr, "\ncut %zu: '%s'\n", cuts[i], err.msg);
				CU_FAIL("message");
			}
			husk_error_clear(&err);
			unit_rmdir(dir);
		}
	/* cut inside a header: the block is not a header */
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(unpack_bytes(buf, 1024 + 100, false, &dir, NULL, NULL, &err), -EBADMSG);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* "/", "./", "./x", "/x", "x/../y" and "//z" as GNU tar and Docker read
 * them; the (last) root entry's owner, mode and time are the layer root's. */
static void test_name_forms(void)
{
	struct tar t;
	tar_open(&t, IMG_COMP_GZIP);
	add(&t, "./", AE_IFDIR, 0700, NULL, NULL);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "/");
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0751);
	archive_entry_set_uid(e, 7);
	archive_entry_set_gid(e, 8);
	archive_entry_set_mtime(e, 1600000000, 0);
	add_special(&t, e);
	archive_entry_free(e);
	add(&t, "./dot", AE_IFREG, 0644, "dot", NULL);
	add(&t, "/abs", AE_IFREG, 0644, "abs", NULL);
	add(&t, "/tmp/husk-unit-escaped", AE_IFREG, 0644, "in", NULL);
	add(&t, "x/../y", AE_IFREG, 0644, "y", NULL);
	add(&t, "//z", AE_IFREG, 0644, "z", NULL);
	add(&t, "/abs-link", AE_IFREG, 0644, NULL, "/abs");
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	int r = tar_unpack(&t, &dir, NULL, &err, 0);
	if (r < 0)
		fprintf(stderr, "\n%s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	const char *names[] = {"dot", "abs", "tmp/husk-unit-escaped", "y", "z", "abs-link"};
	const char *texts[] = {"dot", "abs", "in", "y", "z", "abs"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *got = file_text(dir, names[i]);
		CU_ASSERT_STRING_EQUAL(got, texts[i]);
	}
	CU_ASSERT_FALSE(fs_exists("/tmp/husk-unit-escaped"));
	struct stat st;
	CU_ASSERT_EQUAL(stat(dir, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 0751);
	CU_ASSERT_EQUAL(st.st_uid, 7);
	CU_ASSERT_EQUAL(st.st_gid, 8);
	CU_ASSERT_EQUAL(st.st_mtime, 1600000000);
	unit_rmdir(dir);

	/* a root entry that is not a directory */
	tar_open(&t, IMG_COMP_GZIP);
	add(&t, ".", AE_IFREG, 0644, "x", NULL);
	CU_ASSERT_EQUAL(tar_unpack(&t, &dir, NULL, &err, 0), -EPERM);
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, "names the layer root"));
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* PAX and GNU long names and link targets. */
static void test_long_names(void)
{
	char longdir[200], name[400], name2[400];
	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[sizeof(longdir) - 1] = '\0';
	snprintf(name, sizeof(name), "%s/%s", longdir, "a-file-name-well-beyond-100-bytes");
	snprintf(name2, sizeof(name2), "%s/%s", longdir, "its-hard-link-also-long");
	for (int gnu = 0; gnu <= 1; gnu++) {
		struct tar t;
		tar_open(&t, IMG_COMP_NONE);
		if (gnu) {
			archive_write_free(t.a);
			free(t.buf);
			t.cap = 4 << 20;
			t.buf = xmalloc(t.cap);
			t.a = archive_write_new();
			archive_write_set_format_gnutar(t.a);
			archive_write_open_memory(t.a, t.buf, t.cap, &t.used);
		}
		add(&t, name, AE_IFREG, 0644, "long", NULL);
		add(&t, name2, AE_IFREG, 0644, NULL, name);
		char *dir = NULL;
		struct husk_error err = HUSK_ERROR_INIT;
		int r = tar_unpack(&t, &dir, NULL, &err, 0);
		if (r < 0)
			fprintf(stderr, "\ngnu %d: %s\n", gnu, err.msg);
		CU_ASSERT_EQUAL(r, 0);
		_cleanup_free_ char *got = file_text(dir, name);
		CU_ASSERT_STRING_EQUAL(got, "long");
		_cleanup_free_ char *a = xasprintf("%s/%s", dir, name);
		_cleanup_free_ char *b = xasprintf("%s/%s", dir, name2);
		struct stat sa, sb;
		CU_ASSERT_TRUE(stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_ino == sb.st_ino);
		unit_rmdir(dir);
	}
}

/* Sparse files as GNU tar writes them (old GNU and PAX 1.0 forms). */
static void test_sparse(void)
{
	char *src = unit_tmpdir();
	_cleanup_free_ char *f = xasprintf("%s/sparse", src);
	int fd = open(f, O_WRONLY | O_CREAT, 0640);
	CU_ASSERT_EQUAL(pwrite(fd, "head", 4, 0), 4);
	CU_ASSERT_EQUAL(pwrite(fd, "middle", 6, 1 << 20), 6);
	CU_ASSERT_EQUAL(ftruncate(fd, 3 << 20), 0);
	close(fd);
	const char *formats[] = {"gnu", "posix"};
	for (size_t i = 0; i < ARRAY_SIZE(formats); i++) {
		_cleanup_free_ char *tarf = xasprintf("%s/sparse-%s.tar", src, formats[i]);
		_cleanup_free_ char *cmd = xasprintf("tar -C %s --sparse --format=%s -cf %s sparse",
						     src, formats[i], tarf);
		CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
		char *dir = unit_tmpdir();
		fd = open(tarf, O_RDONLY);
		char *diff = NULL;
		struct husk_error err = HUSK_ERROR_INIT;
		int r = img_unpack(fd, dir, 0, NULL, &diff, NULL, &err);
		close(fd);
		if (r < 0)
			fprintf(stderr, "\n%s: %s\n", formats[i], err.msg);
		CU_ASSERT_EQUAL(r, 0);
		free(diff);
		_cleanup_free_ char *out = xasprintf("%s/sparse", dir);
		struct stat st;
		CU_ASSERT_EQUAL_FATAL(stat(out, &st), 0);
		CU_ASSERT_EQUAL(st.st_size, 3 << 20);
		CU_ASSERT_EQUAL(st.st_mode & 07777, 0640);
		char b[8] = "";
		fd = open(out, O_RDONLY);
		CU_ASSERT_EQUAL(pread(fd, b, 4, 0), 4);
		CU_ASSERT_EQUAL(memcmp(b, "head", 4), 0);
		CU_ASSERT_EQUAL(pread(fd, b, 6, 1 << 20), 6);
		CU_ASSERT_EQUAL(memcmp(b, "middle", 6), 0);
		CU_ASSERT_EQUAL(pread(fd, b, 4, (2 << 20) + 5), 4);
		CU_ASSERT_EQUAL(memcmp(b, "\0\0\0\0", 4), 0);
		close(fd);
		unit_rmdir(dir);
	}
	unit_rmdir(src);
}

/* cap_net_bind_service+ep in the v2 and v3 (rootid 1000) forms. */
static const unsigned char CAP_V2[20] = {0x01, 0, 0, 0x02, 0, 0x04, 0, 0};
static const unsigned char CAP_V3[24] = {0x01, 0, 0, 0x03, 0, 0x04, 0, 0, [20] = 0xe8, 0x03};

static void test_xattr_filter(void)
{
	CU_ASSERT_TRUE(img_xattr_kept("security.capability"));
	CU_ASSERT_TRUE(img_xattr_kept("user.mime_type"));
	CU_ASSERT_FALSE(img_xattr_kept("user.overlay.redirect"));
	CU_ASSERT_FALSE(img_xattr_kept("trusted.overlay.opaque"));
	CU_ASSERT_FALSE(img_xattr_kept("trusted.overlay.metacopy"));
	CU_ASSERT_FALSE(img_xattr_kept("trusted.other"));
	CU_ASSERT_FALSE(img_xattr_kept("security.selinux"));
	CU_ASSERT_FALSE(img_xattr_kept("security.ima"));
	CU_ASSERT_FALSE(img_xattr_kept("system.posix_acl_access"));

	struct tar t;
	tar_open(&t, IMG_COMP_GZIP);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "dir");
	archive_entry_set_filetype(e, AE_IFDIR);
	archive_entry_set_perm(e, 0755);
	archive_entry_xattr_add_entry(e, "trusted.overlay.opaque", "y", 1);
	archive_entry_xattr_add_entry(e, "trusted.overlay.redirect", "/etc", 4);
	archive_entry_xattr_add_entry(e, "user.overlay.opaque", "y", 1);
	add_special(&t, e);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "dir/server");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 04755);
	archive_entry_set_uid(e, 1000);
	archive_entry_set_gid(e, 1000);
	archive_entry_set_mtime(e, 1650000000, 0);
	archive_entry_xattr_add_entry(e, "security.capability", CAP_V2, sizeof(CAP_V2));
	archive_entry_xattr_add_entry(e, "trusted.overlay.metacopy", "", 0);
	archive_entry_xattr_add_entry(e, "trusted.husk", "t", 1);
	archive_entry_xattr_add_entry(e, "security.selinux", "system_u:object_r:bin_t:s0", 26);
	archive_entry_xattr_add_entry(e, "user.kept", "k", 1);
	archive_entry_set_size(e, 3);
	add_special(&t, e);
	archive_write_data(t.a, "bin", 3);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "v3");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0755);
	archive_entry_xattr_add_entry(e, "security.capability", CAP_V3, sizeof(CAP_V3));
	add_special(&t, e);
	archive_entry_free(e);
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	int r = tar_unpack(&t, &dir, NULL, &err, 0);
	if (r < 0)
		fprintf(stderr, "\n%s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	_cleanup_free_ char *d = xasprintf("%s/dir", dir);
	_cleanup_free_ char *f = xasprintf("%s/dir/server", dir);
	_cleanup_free_ char *v3 = xasprintf("%s/v3", dir);
	char names[1024];
	CU_ASSERT_EQUAL(llistxattr(d, names, sizeof(names)), 0);
	ssize_t n = llistxattr(f, names, sizeof(names));
	/* exactly the two kept ones */
	CU_ASSERT_EQUAL(n, (ssize_t)(sizeof("security.capability") + sizeof("user.kept")));
	unsigned char cap[32];
	CU_ASSERT_EQUAL(lgetxattr(f, "security.capability", cap, sizeof(cap)), 20);
	CU_ASSERT_EQUAL(memcmp(cap, CAP_V2, 20), 0);
	struct stat st;
	CU_ASSERT_EQUAL(lstat(f, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 04755);
	CU_ASSERT_EQUAL(st.st_uid, 1000);
	CU_ASSERT_EQUAL(st.st_mtime, 1650000000);
	/* v3 becomes v2: its rootid names nobody here */
	CU_ASSERT_EQUAL(lgetxattr(v3, "security.capability", cap, sizeof(cap)), 20);
	CU_ASSERT_EQUAL(memcmp(cap, CAP_V2, 20), 0);
	unit_rmdir(dir);
}

static void test_special_files(void)
{
	struct tar t;
	tar_open(&t, IMG_COMP_ZSTD);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "fifo");
	archive_entry_set_filetype(e, AE_IFIFO);
	archive_entry_set_perm(e, 0620);
	archive_entry_set_uid(e, 33);
	add_special(&t, e);
	archive_entry_clear(e);
	archive_entry_set_pathname(e, "loop9");
	archive_entry_set_filetype(e, AE_IFBLK);
	archive_entry_set_perm(e, 0660);
	archive_entry_set_rdevmajor(e, 7);
	archive_entry_set_rdevminor(e, 9);
	add_special(&t, e);
	archive_entry_free(e);
	add(&t, "shared/", AE_IFDIR, 02775, NULL, NULL);
	add(&t, "shared/sgid", AE_IFREG, 02711, "g", NULL);
	add(&t, "sticky/", AE_IFDIR, 01777, NULL, NULL);
	char *dir = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(tar_unpack(&t, &dir, NULL, &err, 0), 0);
	_cleanup_free_ char *fifo = xasprintf("%s/fifo", dir);
	_cleanup_free_ char *blk = xasprintf("%s/loop9", dir);
	struct stat st;
	CU_ASSERT_EQUAL(lstat(fifo, &st), 0);
	CU_ASSERT(S_ISFIFO(st.st_mode) && (st.st_mode & 07777) == 0620 && st.st_uid == 33);
	CU_ASSERT_EQUAL(lstat(blk, &st), 0);
	CU_ASSERT(S_ISBLK(st.st_mode) && major(st.st_rdev) == 7 && minor(st.st_rdev) == 9);
	const char *names[] = {"shared", "shared/sgid", "sticky"};
	const mode_t modes[] = {02775, 02711, 01777};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, names[i]);
		CU_ASSERT_EQUAL(lstat(p, &st), 0);
		CU_ASSERT_EQUAL(st.st_mode & 07777, modes[i]);
	}
	unit_rmdir(dir);
}

/* Lower layers for the link tests: l0 has usr/bin/tool (setuid, owned,
 * with a capability and a user xattr), usr/bin/gone, usr/old/f; l1 whites
 * out usr/bin/gone, makes usr/old opaque and has its own usr (0750, 3:4). */
static void make_lowers(char **l0, char **l1)
{
	*l0 = unit_tmpdir();
	*l1 = unit_tmpdir();
	_cleanup_free_ char *usr = xasprintf("%s/usr", *l0);
	_cleanup_free_ char *bin = xasprintf("%s/usr/bin", *l0);
	_cleanup_free_ char *old = xasprintf("%s/usr/old", *l0);
	mkdir(usr, 0755);
	mkdir(bin, 0755);
	mkdir(old, 0755);
	unit_write(*l0, "usr/bin/tool", "tool\n");
	unit_write(*l0, "usr/bin/gone", "gone\n");
	unit_write(*l0, "usr/old/f", "f\n");
	_cleanup_free_ char *tool = xasprintf("%s/usr/bin/tool", *l0);
	chown(tool, 5, 6);
	chmod(tool, 04711);
	lsetxattr(tool, "user.a", "b", 1, 0);
	lsetxattr(tool, "security.capability", CAP_V2, sizeof(CAP_V2), 0);
	struct timespec ts[2] = {{1500000000, 0}, {1500000000, 0}};
	utimensat(AT_FDCWD, tool, ts, AT_SYMLINK_NOFOLLOW);
	_cleanup_free_ char *usr1 = xasprintf("%s/usr", *l1);
	_cleanup_free_ char *bin1 = xasprintf("%s/usr/bin", *l1);
	_cleanup_free_ char *old1 = xasprintf("%s/usr/old", *l1);
	_cleanup_free_ char *gone1 = xasprintf("%s/usr/bin/gone", *l1);
	mkdir(usr1, 0750);
	mkdir(bin1, 0755);
	mkdir(old1, 0755);
	lsetxattr(old1, "trusted.overlay.opaque", "y", 1, 0);
	mknod(gone1, S_IFCHR, makedev(0, 0));
	/* the upper layer's usr is what the merged view shows */
	chown(usr1, 3, 4);
	utimensat(AT_FDCWD, usr1, ts, AT_SYMLINK_NOFOLLOW);
}

static void test_links_to_lower_layers(void)
{
	char *l0, *l1;
	make_lowers(&l0, &l1);
	struct tar t;
	tar_open(&t, IMG_COMP_GZIP);
	add(&t, "usr/bin/tool2", AE_IFREG, 0644, NULL, "usr/bin/tool");
	add(&t, "/top", AE_IFREG, 0644, NULL, "/usr/bin/tool");
	add(&t, "local", AE_IFREG, 0644, "local\n", NULL);
	add(&t, "local2", AE_IFREG, 0644, NULL, "./local");
	archive_write_close(t.a);
	archive_write_free(t.a);
	char *dir = NULL;
	char **links = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	int r = unpack_bytes(t.buf, t.used, false, &dir, NULL, &links, &err);
	free(t.buf);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	/* two left for later (four strings each); the local one made */
	CU_ASSERT_EQUAL(strv_length(links), 8);
	CU_ASSERT_STRING_EQUAL(links[0], "usr/bin/tool2");
	CU_ASSERT_STRING_EQUAL(links[3], "usr/bin/tool");
	_cleanup_free_ char *local2 = file_text(dir, "local2");
	CU_ASSERT_STRING_EQUAL(local2, "local\n");

	char *lowers[] = {l1, l0, NULL};
	r = img_unpack_links(dir, links, lowers, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	strv_free(links);
	/* the target copied up, then linked twice */
	_cleanup_free_ char *tool = xasprintf("%s/usr/bin/tool", dir);
	_cleanup_free_ char *tool2 = xasprintf("%s/usr/bin/tool2", dir);
	_cleanup_free_ char *top = xasprintf("%s/top", dir);
	_cleanup_free_ char *usr = xasprintf("%s/usr", dir);
	struct stat st, st2, st3;
	CU_ASSERT_EQUAL_FATAL(lstat(tool, &st), 0);
	CU_ASSERT_EQUAL(lstat(tool2, &st2), 0);
	CU_ASSERT_EQUAL(lstat(top, &st3), 0);
	CU_ASSERT(st.st_ino == st2.st_ino && st.st_ino == st3.st_ino && st.st_nlink == 3);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 04711);
	CU_ASSERT(st.st_uid == 5 && st.st_gid == 6);
	CU_ASSERT_EQUAL(st.st_mtime, 1500000000);
	_cleanup_free_ char *text = file_text(dir, "top");
	CU_ASSERT_STRING_EQUAL(text, "tool\n");
	char v[32];
	CU_ASSERT_EQUAL(lgetxattr(tool, "user.a", v, sizeof(v)), 1);
	CU_ASSERT_EQUAL(lgetxattr(tool, "security.capability", v, sizeof(v)), 20);
	/* parent directories as the layers below have them */
	CU_ASSERT_EQUAL(lstat(usr, &st), 0);
	CU_ASSERT(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750 && st.st_uid == 3);
	CU_ASSERT_EQUAL(st.st_mtime, 1500000000);
	unit_rmdir(dir);

	/* whited out, hidden by an opaque directory, missing; and without a
	 * place to keep them, links to other layers fail at once */
	const char *hidden[] = {"usr/bin/gone", "usr/old/f", "usr/bin/none"};
	for (size_t i = 0; i <= ARRAY_SIZE(hidden); i++) {
		tar_open(&t, IMG_COMP_GZIP);
		add(&t, "l", AE_IFREG, 0644, NULL, i < ARRAY_SIZE(hidden) ? hidden[i] : "x");
		archive_write_close(t.a);
		archive_write_free(t.a);
		links = NULL;
		r = unpack_bytes(t.buf, t.used, false, &dir, NULL,
				 i < ARRAY_SIZE(hidden) ? &links : NULL, &err);
		free(t.buf);
		if (i < ARRAY_SIZE(hidden)) {
			CU_ASSERT_EQUAL(r, 0);
			r = img_unpack_links(dir, links, lowers, &err);
			strv_free(links);
		}
		CU_ASSERT_EQUAL(r, -EBADMSG);
		CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, "hard link 'l' to"));
		husk_error_clear(&err);
		_cleanup_free_ char *l = xasprintf("%s/l", dir);
		CU_ASSERT_FALSE(fs_exists(l));
		unit_rmdir(dir);
	}
	unit_rmdir(l0);
	unit_rmdir(l1);
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
	    {"no_padding", test_no_padding},
	    {"cut_short", test_cut_short},
	    {"name_forms", test_name_forms},
	    {"long_names", test_long_names},
	    {"sparse", test_sparse},
	    {"xattr_filter", test_xattr_filter},
	    {"special_files", test_special_files},
	    {"links_to_lower_layers", test_links_to_lower_layers},
	};
	return unit_run("image_unpack", tests, ARRAY_SIZE(tests));
}
