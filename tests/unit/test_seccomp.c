/* CUnit tests of runtime/seccomp: parsing OCI and Docker profiles, errors
 * that locate the problem, the RuntimeDefault profile's conditions, and
 * filters installed in a forked child (no root needed: no_new_privs). */
#include "runtime/seccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/caps.h"
#include "unit.h"

static struct ctr_seccomp_profile *parse(const char *json, struct husk_error *err)
{
	struct ctr_seccomp_profile *p = NULL;
	if (ctr_seccomp_parse(json, strlen(json), "p.json", &p, err) < 0)
		return NULL;
	return p;
}

static void test_parse_oci(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_seccomp_profile_freep) struct ctr_seccomp_profile *p =
	    parse("{\"defaultAction\": \"SCMP_ACT_ALLOW\","
		  " \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\"],"
		  " \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],"
		  " \"syscalls\": ["
		  "  {\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", "
		  "\"errnoRet\": 13},"
		  "  {\"name\": \"personality\", \"action\": \"SCMP_ACT_ERRNO\","
		  "   \"args\": [{\"index\": 0, \"value\": 18446744073709551615, \"valueTwo\": 0,"
		  "    \"op\": \"SCMP_CMP_EQ\"}]},"
		  "  {\"names\": [\"kill\"], \"action\": \"SCMP_ACT_KILL_PROCESS\"}]}",
		  &err);
	if (!p)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->default_action, SCMP_ACT_ALLOW);
	CU_ASSERT_EQUAL(p->n_arches, 2);
	CU_ASSERT_EQUAL(p->arches[0], SCMP_ARCH_X86_64);
	CU_ASSERT_EQUAL(p->flags, 2u);
	CU_ASSERT_EQUAL_FATAL(p->n_rules, 3);
	CU_ASSERT_EQUAL(strv_length(p->rules[0].names), 2);
	CU_ASSERT_EQUAL(p->rules[0].action, SCMP_ACT_ERRNO(13));
	CU_ASSERT_EQUAL(p->rules[1].action, SCMP_ACT_ERRNO(EPERM));
	CU_ASSERT_EQUAL_FATAL(p->rules[1].n_args, 1);
	CU_ASSERT_EQUAL(p->rules[1].args[0].value, UINT64_MAX);
	CU_ASSERT_EQUAL(p->rules[1].args[0].op, SCMP_CMP_EQ);
	CU_ASSERT_EQUAL(p->rules[2].action, SCMP_ACT_KILL_PROCESS);
}

static void test_parse_docker(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_seccomp_profile_freep) struct ctr_seccomp_profile *p =
	    parse("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38,"
		  " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\","
		  "   \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},"
		  "  {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": "
		  "[\"SCMP_ARCH_ARM\"]}],"
		  " \"syscalls\": [{\"names\": [\"reboot\"], \"action\": \"SCMP_ACT_ALLOW\","
		  "   \"includes\": {\"caps\": [\"CAP_SYS_BOOT\"], \"minKernel\": \"4.8\"},"
		  "   \"excludes\": {\"arches\": [\"s390x\"]}, \"comment\": \"x\"}]}",
		  &err);
	if (!p)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->default_action, SCMP_ACT_ERRNO(38));
#if defined(__x86_64__)
	CU_ASSERT_EQUAL(p->n_arches, 3);
#endif
	CU_ASSERT_EQUAL_FATAL(p->n_rules, 1);
	CU_ASSERT_EQUAL(p->rules[0].caps_all, CTR_CAP_BIT(22));
	CU_ASSERT_STRING_EQUAL(p->rules[0].min_kernel, "4.8");
	CU_ASSERT_STRING_EQUAL(p->rules[0].not_arches[0], "s390x");
}

static void expect_error(const char *json, const char *needle)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_seccomp_profile_freep) struct ctr_seccomp_profile *p = parse(json, &err);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_EQUAL(err.code, EINVAL);
	if (!err.msg || !strstr(err.msg, needle))
		fprintf(stderr, "\nwant '%s' in '%s'\n", needle, husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, needle));
}

static void test_parse_errors(void)
{
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [}",
		     "seccomp profile 'p.json': invalid JSON at byte");
	expect_error("[]", "top level: expected an object");
	expect_error("{}", "defaultAction: expected a string, got null");
	expect_error("{\"defaultAction\": \"SCMP_ACT_MAYBE\"}",
		     "defaultAction: unknown action 'SCMP_ACT_MAYBE'");
	expect_error("{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "not supported");
	expect_error(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_Z80\"]}",
	    "architectures: unknown architecture 'SCMP_ARCH_Z80'");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ERRNO\"}, {\"names\": [\"b\"], \"action\": 3}]}",
		     "syscalls[1].action: expected a string, got number");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"action\": "
		     "\"SCMP_ACT_ALLOW\"}]}",
		     "syscalls[0]: no syscall names");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 9, \"op\": "
		     "\"SCMP_CMP_EQ\"}]}]}",
		     "syscalls[0].args[0]: index must be an integer from 0 to 5");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 1, \"op\": "
		     "\"SCMP_CMP_HUH\"}]}]}",
		     "syscalls[0].args[0]: unknown op 'SCMP_CMP_HUH'");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": -1}]}",
		     "errnoRet must be a non-negative integer");
	expect_error(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_X\"]}",
	    "flags: unknown flag");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_WHAT\"]}}]}",
		     "syscalls[0].includes.caps: unknown capability 'CAP_WHAT'");

	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct ctr_seccomp_profile *p = NULL;
	CU_ASSERT_EQUAL(ctr_seccomp_parse_file("/nonexistent/p.json", &p, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.msg,
			       "seccomp profile '/nonexistent/p.json': No such file or directory");
}

/* Run fn in a child under the filter; the child's exit code is returned. */
static int in_child(const struct ctr_seccomp_bpf *b, int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || ctr_seccomp_install(b) < 0)
			_exit(99);
		_exit(fn());
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int try_unshare_user(void)
{
	return unshare(CLONE_NEWUSER) < 0 ? errno : 0;
}
static int try_keyctl(void)
{
	return syscall(SYS_keyctl, 0, 0, 0, 0, 0) < 0 ? errno : 0;
}
static int try_getpid(void)
{
	return getpid() > 0 ? 0 : 1;
}
static int try_clone3(void)
{
	return syscall(SYS_clone3, NULL, 0) < 0 ? errno : 0;
}
static int try_personality(void)
{
	return syscall(SYS_personality, 0x0001) < 0 ? errno : 0;
}
static int try_mkdir(void)
{
	return mkdir("/tmp/husk-seccomp-never", 0700) < 0 ? errno : 0;
}
static int try_fork(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p < 0)
		return errno;
	waitpid(p, NULL, 0);
	return 0;
}

static void test_runtime_default(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_seccomp_profile_freep) struct ctr_seccomp_profile *p =
	    ctr_seccomp_runtime_default();
	CU_ASSERT_EQUAL(p->default_action, SCMP_ACT_ERRNO(EPERM));
	_cleanup_(ctr_seccomp_bpf_freep) struct ctr_seccomp_bpf *b = NULL;
	int r = ctr_seccomp_compile(p, CTR_CAPS_DEFAULT, &b, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT(b->len > 100);
	CU_ASSERT_EQUAL(in_child(b, try_getpid), 0);
	CU_ASSERT_EQUAL(in_child(b, try_fork), 0);
	CU_ASSERT_EQUAL(in_child(b, try_unshare_user), EPERM);
	CU_ASSERT_EQUAL(in_child(b, try_keyctl), EPERM);
	CU_ASSERT_EQUAL(in_child(b, try_clone3), ENOSYS);
	CU_ASSERT_EQUAL(in_child(b, try_personality), EPERM);

	/* With CAP_SYS_ADMIN, unshare and clone3 are in the list. */
	_cleanup_(ctr_seccomp_bpf_freep) struct ctr_seccomp_bpf *b2 = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_seccomp_compile(p, CTR_CAPS_DEFAULT | CTR_CAP_BIT(21), &b2, &err),
			      0);
	CU_ASSERT_EQUAL(in_child(b2, try_unshare_user), 0);
	CU_ASSERT_NOT_EQUAL(in_child(b2, try_clone3), ENOSYS);
}

static void test_localhost_compile(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_seccomp_profile_freep) struct ctr_seccomp_profile *p = parse(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\","
	    " \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\", \"no_such_syscall\"],"
	    "   \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13},"
	    "  {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 22,"
	    "   \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	    "              {\"index\": 0, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}]}]}",
	    &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	_cleanup_(ctr_seccomp_bpf_freep) struct ctr_seccomp_bpf *b = NULL;
	int r = ctr_seccomp_compile(p, 0, &b, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(in_child(b, try_mkdir), EACCES);
	CU_ASSERT_EQUAL(in_child(b, try_personality), EINVAL);
	CU_ASSERT_EQUAL(in_child(b, try_getpid), 0);
	CU_ASSERT_EQUAL(ctr_seccomp_mode_parse("runtime_default"), CTR_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(ctr_seccomp_mode_parse("nope"), -1);
	CU_ASSERT_STRING_EQUAL(ctr_seccomp_mode_name(CTR_SECCOMP_LOCALHOST), "localhost");
}

static void test_filter_file(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_seccomp_profile_freep) struct ctr_seccomp_profile *p =
	    ctr_seccomp_runtime_default();
	_cleanup_(ctr_seccomp_bpf_freep) struct ctr_seccomp_bpf *b = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_seccomp_compile(p, CTR_CAPS_DEFAULT, &b, &err), 0);
	char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/f.bpf", dir);
	CU_ASSERT_EQUAL_FATAL(ctr_seccomp_bpf_write(b, path, &err), 0);
	_cleanup_(ctr_seccomp_bpf_freep) struct ctr_seccomp_bpf *b2 = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_seccomp_bpf_read(path, &b2, &err), 0);
	CU_ASSERT_EQUAL(b2->len, b->len);
	CU_ASSERT_EQUAL(memcmp(b2->insns, b->insns, b->len * sizeof(struct sock_filter)), 0);
	CU_ASSERT_EQUAL(in_child(b2, try_keyctl), EPERM);
	unit_write(dir, "junk.bpf", "not a filter at all");
	_cleanup_free_ char *junk = xasprintf("%s/junk.bpf", dir);
	struct ctr_seccomp_bpf *b3 = NULL;
	CU_ASSERT_EQUAL(ctr_seccomp_bpf_read(junk, &b3, &err), -EINVAL);
	CU_ASSERT_TRUE(strstr(husk_error_msg(&err), "not a husk filter file") != NULL);
	husk_error_clear(&err);
	_cleanup_free_ char *missing = xasprintf("%s/missing.bpf", dir);
	CU_ASSERT_EQUAL(ctr_seccomp_bpf_read(missing, &b3, &err), -ENOENT);
	unit_rmdir(dir);
}

static void test_parse_path(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int mode = -1;
	const char *path = "x";
	CU_ASSERT_EQUAL(ctr_seccomp_parse_path("", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, CTR_SECCOMP_UNCONFINED);
	CU_ASSERT_PTR_NULL(path);
	CU_ASSERT_EQUAL(ctr_seccomp_parse_path("unconfined", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, CTR_SECCOMP_UNCONFINED);
	CU_ASSERT_EQUAL(ctr_seccomp_parse_path("runtime/default", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, CTR_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(ctr_seccomp_parse_path("docker/default", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, CTR_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(ctr_seccomp_parse_path("localhost//var/p.json", "f", &mode, &path, &err),
			0);
	CU_ASSERT_EQUAL(mode, CTR_SECCOMP_LOCALHOST);
	CU_ASSERT_STRING_EQUAL(path, "/var/p.json");
	CU_ASSERT_EQUAL(ctr_seccomp_parse_path("localhost/rel.json", "f", &mode, &path, &err),
			-EINVAL);
	CU_ASSERT_TRUE(strstr(husk_error_msg(&err), "f: 'localhost/rel.json'") != NULL);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(ctr_seccomp_parse_path("default", "f", &mode, &path, &err), -EINVAL);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"parse OCI profile", test_parse_oci},
	    {"parse Docker profile", test_parse_docker},
	    {"parse errors", test_parse_errors},
	    {"deprecated profile path", test_parse_path},
	    {"RuntimeDefault blocks and allows", test_runtime_default},
	    {"Localhost profile compiled and enforced", test_localhost_compile},
	    {"filter file round trip", test_filter_file},
	};
	return unit_run("seccomp", tests, ARRAY_SIZE(tests));
}
