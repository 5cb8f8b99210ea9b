/* image/usage.c: writable-layer usage walks on every call without the
 * refresh thread; with it, the first call walks and later ones answer from
 * the cache until the thread has walked again; a layer that goes is
 * dropped; among a thousand containers each has its own figure, and a
 * removal forgets its own only. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "image/image.h"
#include "unit.h"

static char *upper_file(const char *root, const char *name)
{
	return xasprintf("%s/image/containers/c1/upper/%s", root, name);
}

static void put(const char *root, const char *name, size_t size)
{
	_cleanup_free_ char *p = upper_file(root, name);
	FILE *f = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (size_t i = 0; i < size; i++)
		fputc('x', f);
	fclose(f);
}

static struct img_fs_usage usage(struct img_store *s, int *ret)
{
	struct img_fs_usage u = {0};
	struct husk_error err = HUSK_ERROR_INIT;
	*ret = img_rootfs_usage(s, "c1", &u, &err);
	husk_error_clear(&err);
	return u;
}

static void test_cache(void)
{
	char *root = unit_tmpdir();
	struct img_options o = {.root = root};
	struct img_store *s = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(img_store_open(&o, &s, &err), 0);
	_cleanup_free_ char *upper = xasprintf("%s/image/containers/c1/upper", root);
	CU_ASSERT_EQUAL_FATAL(fs_mkdir_p(upper, 0755, NULL), 0);
	put(root, "a", 100000);
	int r;
	/* no thread: every call walks */
	struct img_fs_usage u1 = usage(s, &r);
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT(u1.bytes >= 100000);
	CU_ASSERT(u1.inodes >= 1);
	CU_ASSERT_STRING_EQUAL(u1.mountpoint, upper);
	put(root, "b", 200000);
	struct img_fs_usage u2 = usage(s, &r);
	CU_ASSERT(u2.bytes >= 300000);
	CU_ASSERT_EQUAL(u2.inodes, u1.inodes + 1);
	img_fs_usage_clear(&u1);

	/* with the thread: cached until it walks again */
	CU_ASSERT_EQUAL(img_usage_refresh_start(s, 50, &err), 0);
	uint64_t before = u2.inodes;
	u1 = usage(s, &r);
	CU_ASSERT_EQUAL(u1.inodes, before);
	put(root, "c", 300000);
	img_fs_usage_clear(&u2);
	u2 = usage(s, &r);
	CU_ASSERT_EQUAL(u2.bytes, u1.bytes);
	CU_ASSERT_EQUAL(u2.at, u1.at);
	img_fs_usage_clear(&u2);
	for (int i = 0; i < 500; i++) {
		u2 = usage(s, &r);
		if (u2.inodes == before + 1)
			break;
		img_fs_usage_clear(&u2);
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	CU_ASSERT_EQUAL(u2.inodes, before + 1);
	CU_ASSERT(u2.bytes >= u1.bytes + 300000);
	CU_ASSERT(u2.at > u1.at);
	img_fs_usage_clear(&u1);
	img_fs_usage_clear(&u2);

	/* Nothing walks while nobody asks: six intervals later the first call
	 * still answers from the last walk (and has the thread walk again). */
	u1 = usage(s, &r);
	put(root, "d", 100000);
	nanosleep(&(struct timespec){0, 300000000}, NULL);
	u2 = usage(s, &r);
	CU_ASSERT_EQUAL(u2.inodes, u1.inodes);
	CU_ASSERT_EQUAL(u2.at, u1.at);
	img_fs_usage_clear(&u2);
	for (int i = 0; i < 500; i++) {
		u2 = usage(s, &r);
		if (u2.inodes == u1.inodes + 1)
			break;
		img_fs_usage_clear(&u2);
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	CU_ASSERT_EQUAL(u2.inodes, u1.inodes + 1);
	img_fs_usage_clear(&u1);
	img_fs_usage_clear(&u2);

	/* the layer goes: the refresh drops it, and the call says ENOENT */
	_cleanup_free_ char *dir = xasprintf("%s/image/containers/c1", root);
	fs_rm_rf(dir, NULL);
	for (int i = 0; i < 500; i++) {
		u2 = usage(s, &r);
		img_fs_usage_clear(&u2);
		if (r == -ENOENT)
			break;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	CU_ASSERT_EQUAL(r, -ENOENT);
	/* bad ids are refused */
	CU_ASSERT_EQUAL(img_rootfs_usage(s, "../x", &u1, &err), -EINVAL);
	husk_error_clear(&err);
	img_store_free(s);
	unit_rmdir(root);
}

#define MANY 1000

/* The inodes img_rootfs_usage reports for container id, -errno on failure. */
static long long inodes_of(struct img_store *s, const char *id)
{
	struct img_fs_usage u = {0};
	struct husk_error err = HUSK_ERROR_INIT;
	int r = img_rootfs_usage(s, id, &u, &err);
	husk_error_clear(&err);
	long long n = r < 0 ? r : (long long)u.inodes;
	img_fs_usage_clear(&u);
	return n;
}

static void add_file(const char *root, int i, int k)
{
	_cleanup_free_ char *p = xasprintf("%s/image/containers/c-%d/upper/f%d", root, i, k);
	FILE *f = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fclose(f);
}

/* A thousand cached figures: each container gets its own, a removal
 * forgets its container's only. */
static void test_cache_among_many(void)
{
	char *root = unit_tmpdir();
	struct img_options o = {.root = root};
	struct img_store *s = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(img_store_open(&o, &s, &err), 0);
	/* No refresh within the test: figures stay as first walked. */
	CU_ASSERT_EQUAL(img_usage_refresh_start(s, 3600 * 1000, &err), 0);
	static long long first[MANY];
	for (int i = 0; i < MANY; i++) {
		_cleanup_free_ char *upper = xasprintf("%s/image/containers/c-%d/upper", root, i);
		CU_ASSERT_EQUAL_FATAL(fs_mkdir_p(upper, 0755, NULL), 0);
		for (int k = 0; k < i % 4; k++)
			add_file(root, i, k);
		_cleanup_free_ char *id = xasprintf("c-%d", i);
		first[i] = inodes_of(s, id);
	}
	bool ok = true;
	for (int i = 0; i < MANY; i++) {
		ok &= first[i] == first[i % 4];
		add_file(root, i, 9);
	}
	CU_ASSERT(ok);
	/* Removed: the next call walks and finds nothing. Kept: the cached
	 * figure, without the new file. */
	for (int i = 0; i < MANY; i += 2) {
		_cleanup_free_ char *id = xasprintf("c-%d", i);
		CU_ASSERT_EQUAL(img_rootfs_remove(s, id, &err), 0);
	}
	for (int i = 0; i < MANY; i++) {
		_cleanup_free_ char *id = xasprintf("c-%d", i);
		ok &= inodes_of(s, id) == (i % 2 ? first[i] : -ENOENT);
	}
	CU_ASSERT(ok);
	husk_error_clear(&err);
	img_store_free(s);
	unit_rmdir(root);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"usage cache", test_cache},
	    {"usage cache among many", test_cache_among_many},
	};
	return unit_run("image_usage", tests, ARRAY_SIZE(tests));
}
