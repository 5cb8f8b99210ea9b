/* Unit tests for the image store without a registry: a store laid out by
 * hand, then lookup, listing, removal rules, container root filesystems
 * (overlay mounts; needs root) and the in-use record surviving a reopen,
 * also with a thousand of them. */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "image/internal.h"
#include "unit.h"

static char *root;
static char *image_id, *manifest_digest;

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *p = xasprintf("%s/image/%s", root, rel);
	_cleanup_free_ char *d = xstrdup(p);
	*strrchr(d, '/') = '\0';
	fs_mkdir_p(d, 0755, NULL);
	unit_write("/", p + 1, text);
}

static void make_store(void)
{
	root = unit_tmpdir();
	_cleanup_free_ char *diff = img_digest_of("layer-1", 7);
	_cleanup_free_ char *config =
	    xasprintf("{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"1002\","
		      "\"Cmd\":[\"sh\"],\"Env\":[\"A=1\"]},\"rootfs\":{\"type\":\"layers\","
		      "\"diff_ids\":[\"%s\"]}}",
		      diff);
	image_id = img_digest_of(config, strlen(config));
	manifest_digest = img_digest_of("manifest", 8);
	_cleanup_free_ char *p = NULL;
	put((free(p), p = xasprintf("layers/%s/diff/hello", img_digest_hex(diff))), "hi\n");
	put((free(p), p = xasprintf("blobs/sha256/%s", img_digest_hex(image_id))), config);
	put((free(p), p = xasprintf("blobs/sha256/%s", img_digest_hex(manifest_digest))),
	    "manifest");
	_cleanup_free_ char *rec =
	    xasprintf("{\"id\":\"%s\",\"manifest\":\"%s\",\"top\":\"%s\",\"blobs\":[\"%s\",\"%s\"],"
		      "\"layers\":[\"%s\"],\"size\":10,\"user\":\"1002\",\"created\":1}",
		      image_id, manifest_digest, manifest_digest, manifest_digest, image_id, diff);
	put((free(p), p = xasprintf("images/%s.json", img_digest_hex(image_id))), rec);
	_cleanup_free_ char *index =
	    xasprintf("{\"refs\":{\"example.com/app:v1\":\"%s\",\"example.com/app:v2\":\"%s\","
		      "\"example.com/app@%s\":\"%s\"}}",
		      image_id, image_id, manifest_digest, image_id);
	put("index.json", index);
	/* leftovers of an interrupted run */
	put("tmp/layer-abc/diff/x", "x");
	put("containers/half/upper/x", "x");
	put((free(p),
	     p = xasprintf("layers/%s/diff/orphan",
			   "ab"
			   "abababababababababababababababababababababababababababababababab")),
	    "o");
}

static struct img_store *open_store(void)
{
	struct img_options o = {.root = root};
	struct img_store *s = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	int r = img_store_open(&o, &s, &err);
	if (r < 0)
		fprintf(stderr, "\nopen: %s\n", err.msg);
	husk_error_clear(&err);
	return s;
}

static bool exists(const char *rel)
{
	_cleanup_free_ char *p = xasprintf("%s/image/%s", root, rel);
	struct stat st;
	return lstat(p, &st) == 0;
}

/* mountinfo's id of the mount at exactly path (the last one listed) and
 * its parent's; -1 when nothing is mounted there. */
static int mount_id(const char *path, int *ret_parent)
{
	char *text = NULL;
	int id = -1, parent = -1;
	if (fs_read_file("/proc/self/mountinfo", 16 << 20, &text, NULL, NULL) < 0)
		return -1;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		int a, b;
		char point[4096];
		if (sscanf(line, "%d %d %*s %*s %4095s", &a, &b, point) == 3 &&
		    streq(point, path)) {
			id = a;
			parent = b;
		}
	}
	free(text);
	if (ret_parent)
		*ret_parent = parent;
	return id;
}

static void test_open_lookup_list(void)
{
	make_store();
	struct img_store *s = open_store();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_FALSE(exists("tmp/layer-abc"));
	CU_ASSERT_FALSE(exists("containers/half"));
	CU_ASSERT_FALSE(
	    exists("layers/abababababababababababababababababababababababababababababababab"));

	struct img_info **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(img_list(s, NULL, &v, &n, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(v[0]->id, image_id);
	CU_ASSERT_EQUAL(strv_length(v[0]->repo_tags), 2);
	CU_ASSERT_STRING_EQUAL(v[0]->repo_tags[0], "example.com/app:v1");
	CU_ASSERT_STRING_EQUAL(v[0]->repo_tags[1], "example.com/app:v2");
	CU_ASSERT_EQUAL(strv_length(v[0]->repo_digests), 1);
	CU_ASSERT_STRING_EQUAL(v[0]->user, "1002");
	CU_ASSERT_EQUAL(v[0]->size, 10);
	img_info_list_free(v, n);

	_cleanup_free_ char *dref = xasprintf("example.com/app@%s", manifest_digest);
	const char *names[] = {"example.com/app:v1", image_id, img_digest_hex(image_id), dref};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct img_info *info = NULL;
		CU_ASSERT_EQUAL(img_status(s, names[i], 0, &info, NULL), 0);
		CU_ASSERT_PTR_NOT_NULL(info);
		img_info_free(info);
	}
	_cleanup_free_ char *prefix = xstrndup(img_digest_hex(image_id), 8);
	struct img_info *info = NULL;
	CU_ASSERT_EQUAL(img_status(s, prefix, IMG_INFO_CONFIG, &info, NULL), 0);
	CU_ASSERT_PTR_NOT_NULL(info && strstr(info->config_json, "diff_ids"));
	img_info_free(info);
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(img_status(s, "example.com/app:v3", 0, &info, &err), -ENOENT);
	CU_ASSERT_EQUAL(img_status(s, "Bad:Name:x", 0, &info, &err), -EINVAL);
	husk_error_clear(&err);

	struct img_config *c = NULL;
	CU_ASSERT_EQUAL_FATAL(img_config_get(s, "example.com/app:v1", &c, NULL), 0);
	CU_ASSERT_STRING_EQUAL(c->cmd[0], "sh");
	CU_ASSERT_STRING_EQUAL(c->env[0], "A=1");
	CU_ASSERT_STRING_EQUAL(c->user, "1002");
	img_config_free(c);

	struct img_fs_usage a = {0}, b = {0};
	CU_ASSERT_EQUAL(img_fs_info(s, &a, &b, NULL), 0);
	CU_ASSERT(a.bytes > 0 && a.inodes > 5);
	img_fs_usage_clear(&a);
	img_fs_usage_clear(&b);
	img_store_free(s);
}

static void test_rootfs_and_in_use(void)
{
	struct img_store *s = open_store();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	struct husk_error err = HUSK_ERROR_INIT;
	char *path = NULL;
	int r = img_rootfs_create(s, "example.com/app:v1", "ctr1", NULL, &path, &err);
	if (r < 0)
		fprintf(stderr, "\nrootfs: %s\n", err.msg);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	_cleanup_free_ char *want = xasprintf("%s/image/mnt/ctr1", root);
	CU_ASSERT_STRING_EQUAL(path, want);
	/* mounted on image/mnt, a private mount of its own, not on the
	 * mount that holds the layers and the upper dir */
	_cleanup_free_ char *mnt = xasprintf("%s/image/mnt", root);
	int top = mount_id(mnt, NULL), parent = -1;
	CU_ASSERT(top > 0);
	CU_ASSERT(mount_id(want, &parent) > 0);
	CU_ASSERT_EQUAL(parent, top);
	_cleanup_free_ char *hello = xasprintf("%s/hello", path);
	CU_ASSERT_TRUE(fs_exists(hello));
	_cleanup_free_ char *newf = xasprintf("%s/new", path);
	FILE *f = fopen(newf, "w");
	CU_ASSERT_PTR_NOT_NULL(f);
	if (f)
		fclose(f);
	CU_ASSERT_TRUE(exists("containers/ctr1/upper/new"));
	free(path);

	CU_ASSERT_EQUAL(img_rootfs_create(s, image_id, "ctr1", NULL, NULL, &err), -EEXIST);
	CU_ASSERT_EQUAL(img_rootfs_create(s, image_id, "../x", NULL, NULL, &err), -EINVAL);
	CU_ASSERT_EQUAL(img_rootfs_create(s, "example.com/none", "c9", NULL, NULL, &err), -ENOENT);
	struct img_rootfs_opts ro = {.readonly = true};
	CU_ASSERT_EQUAL_FATAL(img_rootfs_create(s, image_id, "ctr2", &ro, &path, &err), 0);
	_cleanup_free_ char *rofile = xasprintf("%s/nope", path);
	CU_ASSERT_PTR_NULL(fopen(rofile, "w"));
	CU_ASSERT_EQUAL(errno, EROFS);
	free(path);

	/* one tag of two: fine while in use; the last one: refused */
	CU_ASSERT_EQUAL(img_remove(s, "example.com/app:v2", &err), 0);
	CU_ASSERT_EQUAL(img_remove(s, "example.com/app:v1", &err), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, "in use by container 'ctr"));
	CU_ASSERT_EQUAL(img_remove(s, image_id, &err), -EBUSY);
	husk_error_clear(&err);

	/* the use survives a restart */
	img_store_free(s);
	s = open_store();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(img_remove(s, image_id, &err), -EBUSY);
	husk_error_clear(&err);
	_cleanup_strv_ char **users = img_rootfs_list(s);
	CU_ASSERT_EQUAL(strv_length(users), 2);
	/* mounted again after a reboot */
	umount2(want, MNT_DETACH);
	CU_ASSERT_FALSE(fs_exists(hello));
	CU_ASSERT_EQUAL(img_rootfs_mount(s, "ctr1", NULL, &err), 0);
	CU_ASSERT_TRUE(fs_exists(hello));

	CU_ASSERT_EQUAL(img_rootfs_remove(s, "ctr1", &err), 0);
	CU_ASSERT_EQUAL(img_rootfs_remove(s, "ctr2", &err), 0);
	CU_ASSERT_EQUAL(img_rootfs_remove(s, "ctr2", &err), 0);
	CU_ASSERT_FALSE(exists("containers/ctr1"));
	CU_ASSERT_FALSE(exists("mnt/ctr1"));
	CU_ASSERT_EQUAL(img_rootfs_mount(s, "ctr1", NULL, &err), -ENOENT);
	husk_error_clear(&err);

	CU_ASSERT_EQUAL(img_remove(s, "example.com/app:v1", &err), 0);
	CU_ASSERT_EQUAL(img_remove(s, "example.com/app:v1", &err), 0);
	struct img_info **v = NULL;
	size_t n = 9;
	CU_ASSERT_EQUAL(img_list(s, NULL, &v, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 0);
	img_info_list_free(v, n);
	_cleanup_strv_ char **layers = NULL, **blobs = NULL;
	_cleanup_free_ char *ldir = xasprintf("%s/image/layers", root);
	_cleanup_free_ char *bdir = xasprintf("%s/image/blobs/sha256", root);
	fs_list_dir(ldir, NULL, &layers, NULL);
	fs_list_dir(bdir, NULL, &blobs, NULL);
	CU_ASSERT_EQUAL(strv_length(layers), 0);
	CU_ASSERT_EQUAL(strv_length(blobs), 0);
	img_store_free(s);
	/* released with the last rootfs gone */
	CU_ASSERT_EQUAL(mount_id(mnt, NULL), -1);
	CU_ASSERT_FALSE(fs_exists(mnt));
	unit_rmdir(root);
	free(image_id);
	free(manifest_digest);
}

/* A thousand containers' rootfs records, as a restart finds them: each
 * holds the image until it is removed, and removals in a scattered order
 * leave the others, listed and holding it. */
static void test_users_among_many(void)
{
	make_store();
	enum { N = 1000 };
	for (int i = 0; i < N; i++) {
		_cleanup_free_ char *rel = xasprintf("containers/c-%d/rootfs.json", i);
		_cleanup_free_ char *text = xasprintf(
		    "{\"image\":\"%s\",\"mountpoint\":\"%s/image/mnt/c-%d\",\"readonly\":false}",
		    image_id, root, i);
		put(rel, text);
	}
	struct img_store *s = open_store();
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_strv_ char **all = img_rootfs_list(s);
	CU_ASSERT_EQUAL(strv_length(all), N);
	/* All but every seventh go; 3 and N are coprime. */
	for (int j = 0; j < N; j++) {
		int i = (3 * j) % N;
		if (i % 7 == 0)
			continue;
		_cleanup_free_ char *id = xasprintf("c-%d", i);
		CU_ASSERT_EQUAL(img_rootfs_remove(s, id, &err), 0);
		if (j % 50 == 1) {
			CU_ASSERT_EQUAL(img_rootfs_mount(s, id, NULL, &err), -ENOENT);
			husk_error_clear(&err);
		}
	}
	_cleanup_strv_ char **left = img_rootfs_list(s);
	CU_ASSERT_EQUAL(strv_length(left), (N + 6) / 7);
	bool ok = true;
	for (size_t k = 0; left[k]; k++) {
		int i = -1;
		ok &= sscanf(left[k], "c-%d", &i) == 1 && i % 7 == 0;
	}
	CU_ASSERT(ok);
	CU_ASSERT_EQUAL(img_remove(s, image_id, &err), -EBUSY);
	const char *named = err.msg ? strstr(err.msg, "container 'c-") : NULL;
	CU_ASSERT(named && atoi(named + strlen("container 'c-")) % 7 == 0);
	husk_error_clear(&err);
	for (size_t k = 0; left[k]; k++)
		CU_ASSERT_EQUAL(img_rootfs_remove(s, left[k], &err), 0);
	_cleanup_strv_ char **none = img_rootfs_list(s);
	CU_ASSERT_EQUAL(strv_length(none), 0);
	CU_ASSERT_EQUAL(img_remove(s, image_id, &err), 0);
	husk_error_clear(&err);
	img_store_free(s);
	unit_rmdir(root);
	free(image_id);
	free(manifest_digest);
}

static int open_fds(void)
{
	_cleanup_strv_ char **v = NULL;
	fs_list_dir("/proc/self/fd", NULL, &v, NULL);
	return (int)strv_length(v);
}

/* n lower dirs (top first) under a directory whose path is longer than
 * fsconfig takes as a string; layer i holds file i and "top" saying i. */
static struct img_ovl_dirs many_lowers(const char *base, size_t n)
{
	struct img_ovl_dirs d = {.lowers = xnew(char *, n + 1)};
	_cleanup_free_ char *deep = xasprintf("%s/%0200d/%0100d", base, 0, 0);
	fs_mkdir_p(deep, 0755, NULL);
	for (size_t i = 0; i < n; i++) {
		size_t layer = n - i;
		d.lowers[i] = xasprintf("%s/l%zu", deep, layer);
		fs_mkdir_p(d.lowers[i], 0755, NULL);
		_cleanup_free_ char *name = xasprintf("%zu", layer);
		_cleanup_free_ char *text = xasprintf("%zu\n", layer);
		unit_write(d.lowers[i], name, "x");
		unit_write(d.lowers[i], "top", text);
	}
	d.upper = xasprintf("%s/upper", base);
	d.work = xasprintf("%s/work", base);
	fs_mkdir_p(d.upper, 0755, NULL);
	fs_mkdir_p(d.work, 0755, NULL);
	return d;
}

static void ovl_dirs_free(struct img_ovl_dirs *d)
{
	strv_free(d->lowers);
	free(d->upper);
	free(d->work);
}

/* Both ways of mounting an overlay take 150 layers (paths longer than
 * fsconfig's 256 bytes included); the fallback refuses what does not fit
 * in a page, and failures leave no fd or mount behind. */
static void test_overlay_ways(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	char *base = unit_tmpdir();
	struct img_ovl_dirs d = many_lowers(base, 150);
	_cleanup_free_ char *target = xasprintf("%s/merged", base);
	fs_mkdir_p(target, 0755, NULL);
	const struct img_overlay_ops *ways[] = {&img_overlay_legacy, img_overlay_probe(base)};
	for (size_t w = 0; w < ARRAY_SIZE(ways); w++) {
		int fds = open_fds();
		int r = ways[w]->mount(&d, target, false, &err);
		if (r < 0)
			fprintf(stderr, "\n%s: %s\n", ways[w]->name, err.msg);
		CU_ASSERT_EQUAL_FATAL(r, 0);
		CU_ASSERT_EQUAL(open_fds(), fds);
		_cleanup_strv_ char **names = NULL;
		CU_ASSERT_EQUAL(fs_list_dir(target, NULL, &names, NULL), 0);
		CU_ASSERT_EQUAL(strv_length(names), 151);
		_cleanup_free_ char *top = NULL, *p = xasprintf("%s/top", target);
		CU_ASSERT_EQUAL(fs_read_file(p, 64, &top, NULL, NULL), 0);
		CU_ASSERT_STRING_EQUAL(top ? top : "", "150\n");
		CU_ASSERT_EQUAL(umount2(target, 0), 0);
	}
	if (!streq(img_overlay_probe(base)->name, "fsconfig"))
		fprintf(stderr, "\n(no lowerdir+ on this kernel: fsconfig not tried)\n");
	ovl_dirs_free(&d);

	/* 300 /proc/self/fd names pass a page */
	d = many_lowers(base, 300);
	int fds = open_fds();
	CU_ASSERT_EQUAL(img_overlay_legacy.mount(&d, target, false, &err), -E2BIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "300 layers"));
	CU_ASSERT_EQUAL(open_fds(), fds);
	husk_error_clear(&err);

	/* a missing layer: named, whichever way */
	free(d.lowers[7]);
	d.lowers[7] = xasprintf("%s/missing-layer", base);
	const struct img_overlay_ops *probed = img_overlay_probe(base);
	CU_ASSERT_EQUAL(probed->mount(&d, target, false, &err), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "missing-layer"));
	CU_ASSERT_EQUAL(open_fds(), fds);
	struct stat a, b;
	_cleanup_free_ char *parent = xasprintf("%s/..", target);
	CU_ASSERT_TRUE(stat(target, &a) == 0 && stat(parent, &b) == 0 && a.st_dev == b.st_dev);
	ovl_dirs_free(&d);
	unit_rmdir(base);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_image_store: needs root (overlay mounts), skipped\n");
		return 0;
	}
	static const struct unit_test tests[] = {
	    {"open_lookup_list", test_open_lookup_list},
	    {"rootfs_and_in_use", test_rootfs_and_in_use},
	    {"users_among_many", test_users_among_many},
	    {"overlay_ways", test_overlay_ways},
	};
	return unit_run("image_store", tests, ARRAY_SIZE(tests));
}
