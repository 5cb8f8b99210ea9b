/* CUnit tests of runtime/user: who a container runs as, from CRI's
 * run_as_user / run_as_username / run_as_group or the image's User, and its
 * groups under the Merge and Strict supplemental groups policies. */
#include "runtime/launcher/launcher.h"

#include <errno.h>
#include <string.h>

#include "unit.h"

static char *rootfs(void)
{
	char *root = unit_tmpdir();
	_cleanup_free_ char *etc = xasprintf("%s/etc", root);
	CU_ASSERT_FATAL(fs_mkdir_p(etc, 0755, NULL) == 0);
	unit_write(root, "etc/passwd",
		   "root:x:0:0:root:/root:/bin/sh\n"
		   "# a comment\n"
		   "app:x:1000:3000:App:/home/app:/bin/sh\n"
		   "u1002:x:1002:1002::/home/u1002:/bin/sh\n");
	unit_write(root, "etc/group",
		   "root:x:0:\n"
		   "wheel:x:10:root,app\n"
		   "app:x:3000:\n"
		   "extra:x:50000:app\n"
		   "u1002:x:1002:\n");
	return root;
}

static bool groups_are(const struct lc_user *u, const uint32_t *want, size_t n)
{
	if (u->n_groups != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (u->groups[i] != want[i])
			return false;
	return true;
}

static void test_merge_and_strict(void)
{
	char *root = rootfs();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	const long long sup[] = {4000};
	/* The blog example of KEP-3619: uid 1000, gid 3000, group 4000, and
	 * the image makes the user a member of 50000 (and wheel). */
	struct lc_user_request req = {.has_uid = true,
				      .uid = 1000,
				      .has_gid = true,
				      .gid = 3000,
				      .supplemental_groups = sup,
				      .n_supplemental_groups = 1};
	struct lc_user u = {0};
	CU_ASSERT_EQUAL_FATAL(lc_user_resolve(root, &req, &u, &err), 0);
	CU_ASSERT_EQUAL(u.uid, 1000);
	CU_ASSERT_EQUAL(u.gid, 3000);
	CU_ASSERT_STRING_EQUAL(u.home, "/home/app");
	const uint32_t merged[] = {3000, 10, 50000, 4000};
	CU_ASSERT_TRUE(groups_are(&u, merged, ARRAY_SIZE(merged)));
	lc_user_clear(&u);

	req.groups_strict = true;
	CU_ASSERT_EQUAL_FATAL(lc_user_resolve(root, &req, &u, &err), 0);
	const uint32_t strict[] = {3000, 4000};
	CU_ASSERT_TRUE(groups_are(&u, strict, ARRAY_SIZE(strict)));
	lc_user_clear(&u);

	/* By name, the passwd gid. */
	req = (struct lc_user_request){.username = "app"};
	CU_ASSERT_EQUAL_FATAL(lc_user_resolve(root, &req, &u, &err), 0);
	CU_ASSERT_EQUAL(u.uid, 1000);
	CU_ASSERT_EQUAL(u.gid, 3000);
	const uint32_t byname[] = {3000, 10, 50000};
	CU_ASSERT_TRUE(groups_are(&u, byname, ARRAY_SIZE(byname)));
	lc_user_clear(&u);
	unit_rmdir(root);
}

static void test_image_user_and_defaults(void)
{
	char *root = rootfs();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct lc_user u = {0};
	/* Nothing given: root, its groups. */
	struct lc_user_request req = {0};
	CU_ASSERT_EQUAL_FATAL(lc_user_resolve(root, &req, &u, &err), 0);
	CU_ASSERT_EQUAL(u.uid, 0);
	const uint32_t rootg[] = {0, 10};
	CU_ASSERT_TRUE(groups_are(&u, rootg, ARRAY_SIZE(rootg)));
	lc_user_clear(&u);
	/* The image's "user:group". */
	req.image_user = "u1002:extra";
	CU_ASSERT_EQUAL_FATAL(lc_user_resolve(root, &req, &u, &err), 0);
	CU_ASSERT_EQUAL(u.uid, 1002);
	CU_ASSERT_EQUAL(u.gid, 50000);
	lc_user_clear(&u);
	/* run_as_user overrides the image's user:group (as containerd does),
	 * and a uid unknown to /etc/passwd is fine with gid 0. */
	req.has_uid = true;
	req.uid = 4242;
	CU_ASSERT_EQUAL_FATAL(lc_user_resolve(root, &req, &u, &err), 0);
	CU_ASSERT_EQUAL(u.uid, 4242);
	CU_ASSERT_EQUAL(u.gid, 0); /* the image's group part goes with its user */
	CU_ASSERT_STRING_EQUAL(u.home, "/");
	lc_user_clear(&u);
	unit_rmdir(root);
}

static void test_errors(void)
{
	char *root = rootfs();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct lc_user u = {0};
	struct lc_user_request req = {.username = "nobody-here"};
	CU_ASSERT_EQUAL(lc_user_resolve(root, &req, &u, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "user 'nobody-here' is not in the container's /etc/passwd");
	husk_error_clear(&err);
	req = (struct lc_user_request){.image_user = "app:nogroup"};
	CU_ASSERT_EQUAL(lc_user_resolve(root, &req, &u, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "group 'nogroup' is not in the container's /etc/group");
	husk_error_clear(&err);
	const long long bad[] = {-1};
	req = (struct lc_user_request){.supplemental_groups = bad, .n_supplemental_groups = 1};
	CU_ASSERT_EQUAL(lc_user_resolve(root, &req, &u, &err), -EINVAL);
	husk_error_clear(&err);
	long long many[LC_USER_MAX_GROUPS + 1];
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = 100000 + (long long)i;
	req = (struct lc_user_request){.supplemental_groups = many,
				       .n_supplemental_groups = ARRAY_SIZE(many)};
	CU_ASSERT_EQUAL(lc_user_resolve(root, &req, &u, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "more than"));
	unit_rmdir(root);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"Merge and Strict groups", test_merge_and_strict},
	    {"image user and defaults", test_image_user_and_defaults},
	    {"errors", test_errors},
	};
	return unit_run("user", tests, ARRAY_SIZE(tests));
}
