/* CUnit tests of runtime/lsm: AppArmor and SELinux detection against a
 * directory laid out like /sys, CRI profiles resolved (or refused) with and
 * without AppArmor, the deprecated string form, and SELinux options. */
#include "runtime/launcher/launcher.h"

#include <errno.h>
#include <string.h>

#include "unit.h"

static void mk(const char *root, const char *sub)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", root, sub);
	CU_ASSERT_FATAL(fs_mkdir_p(p, 0755, NULL) == 0);
}

static void test_detect(void)
{
	char *root = unit_tmpdir();
	struct lc_lsm l;
	lc_lsm_detect(root, &l);
	CU_ASSERT_FALSE(l.apparmor);
	CU_ASSERT_FALSE(l.selinux);
	lc_lsm_clear(&l);

	mk(root, "sys/module/apparmor/parameters");
	unit_write(root, "sys/module/apparmor/parameters/enabled", "N\n");
	lc_lsm_detect(root, &l);
	CU_ASSERT_FALSE(l.apparmor);
	lc_lsm_clear(&l);
	unit_write(root, "sys/module/apparmor/parameters/enabled", "Y\n");
	mk(root, "sys/fs/selinux");
	unit_write(root, "sys/fs/selinux/enforce", "1");
	lc_lsm_detect(root, &l);
	CU_ASSERT_TRUE(l.apparmor);
	CU_ASSERT_TRUE(l.selinux);
	lc_lsm_clear(&l);
	lc_lsm_clear(&l); /* twice is fine */
	unit_rmdir(root);
}

static void test_apparmor_disabled(void)
{
	char *root = unit_tmpdir();
	struct lc_lsm l;
	lc_lsm_detect(root, &l);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	char *p = (char *)"x";
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_RUNTIME_DEFAULT, NULL, &p, &err),
			0);
	CU_ASSERT_PTR_NULL(p);
	p = (char *)"x";
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_UNCONFINED, NULL, &p, &err), 0);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_LOCALHOST, "my-prof", &p, &err),
			-EBUSY);
	CU_ASSERT_STRING_EQUAL(
	    err.msg, "apparmor: profile 'my-prof': AppArmor is not enabled on this kernel");
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", 7, NULL, &p, &err), -EINVAL);
	lc_lsm_clear(&l);
	unit_rmdir(root);
}

static void test_apparmor_enabled(void)
{
	char *root = unit_tmpdir();
	mk(root, "sys/module/apparmor/parameters");
	unit_write(root, "sys/module/apparmor/parameters/enabled", "Y\n");
	mk(root, "sys/kernel/security/apparmor");
	unit_write(root, "sys/kernel/security/apparmor/profiles",
		   "my-prof (enforce)\nother//child (complain)\n");
	struct lc_lsm l;
	lc_lsm_detect(root, &l);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	char *p = NULL;
	/* No husk-default loaded: nothing to apply for RuntimeDefault. */
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_RUNTIME_DEFAULT, NULL, &p, &err),
			0);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_LOCALHOST, "my-prof", &p, &err),
			0);
	CU_ASSERT_STRING_EQUAL(p, "my-prof");
	free(p);
	p = NULL;
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_LOCALHOST, "my", &p, &err),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "apparmor: AppArmor profile 'my' is not loaded");
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_LOCALHOST, "a b", &p, &err),
			-EINVAL);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_LOCALHOST, "", &p, &err),
			-EINVAL);
	husk_error_clear(&err);
	unit_write(root, "sys/kernel/security/apparmor/profiles",
		   "my-prof (enforce)\nhusk-default (enforce)\n");
	CU_ASSERT_EQUAL(lc_apparmor_profile(&l, "apparmor", LC_LSM_RUNTIME_DEFAULT, NULL, &p, &err),
			0);
	CU_ASSERT_STRING_EQUAL(p, LC_APPARMOR_DEFAULT_PROFILE);
	free(p);
	lc_lsm_clear(&l);
	unit_rmdir(root);
}

static void test_apparmor_parse_path(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int type = -1;
	const char *ref = NULL;
	CU_ASSERT_EQUAL(lc_apparmor_parse_path("", "f", &type, &ref, &err), 0);
	CU_ASSERT_EQUAL(type, LC_LSM_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(lc_apparmor_parse_path("runtime/default", "f", &type, &ref, &err), 0);
	CU_ASSERT_EQUAL(type, LC_LSM_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(lc_apparmor_parse_path("unconfined", "f", &type, &ref, &err), 0);
	CU_ASSERT_EQUAL(type, LC_LSM_UNCONFINED);
	CU_ASSERT_EQUAL(lc_apparmor_parse_path("localhost/p1", "f", &type, &ref, &err), 0);
	CU_ASSERT_EQUAL(type, LC_LSM_LOCALHOST);
	CU_ASSERT_STRING_EQUAL(ref, "p1");
	CU_ASSERT_EQUAL(lc_apparmor_parse_path("docker/weird", "f", &type, &ref, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'docker/weird'"));
}

static void test_selinux(void)
{
	struct lc_lsm off = {0}, on = {.selinux = true};
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(lc_selinux_check(&off, "selinux_options", NULL, "", NULL, "", &err), 0);
	CU_ASSERT_EQUAL(lc_selinux_check(&off, "selinux_options", NULL, NULL, "spc_t", NULL, &err),
			-EBUSY);
	CU_ASSERT_STRING_EQUAL(
	    err.msg, "selinux_options.type 'spc_t': SELinux is not enabled on this kernel");
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(
	    lc_selinux_check(&on, "selinux_options", NULL, NULL, NULL, "s0:c1,c2", &err), -EBUSY);
	CU_ASSERT_STRING_EQUAL(
	    err.msg, "selinux_options.level 's0:c1,c2': husk does not apply SELinux labels");
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"detect", test_detect},
	    {"AppArmor disabled", test_apparmor_disabled},
	    {"AppArmor enabled", test_apparmor_enabled},
	    {"AppArmor deprecated string", test_apparmor_parse_path},
	    {"SELinux options", test_selinux},
	};
	return unit_run("lsm", tests, ARRAY_SIZE(tests));
}
