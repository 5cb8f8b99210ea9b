/* CUnit tests of runtime/cgroup: detection, naming, create/remove, resource
 * files, stats and kill against temporary directories laid out like v1 and
 * v2 mounts (no root needed), plus one test on this machine's real v1. */
#include "runtime/cgroup/cgroup.h"
#include "runtime/cgroup/internal.h"

#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"

/* ---- helpers ---------------------------------------------------------- */

static char *tmp_base(void)
{
	char *t = xstrdup("/tmp/husk-cg-test-XXXXXX");
	if (!mkdtemp(t))
		abort();
	return t;
}

static void put(const char *dir, const char *file, const char *content)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
	FILE *f = fopen(p, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs(content, f);
	fclose(f);
}

/* File content with trailing newlines stripped; "" when missing. */
static char *get(const char *dir, const char *file)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, file);
	char *buf = NULL;
	if (fs_read_file(p, 1 << 20, &buf, NULL, NULL) < 0)
		return xstrdup("<missing>");
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return buf;
}

#define CHECK_FILE(dir, file, want)                                                              \
	do {                                                                                     \
		_cleanup_free_ char *_got = get(dir, file);                                      \
		if (!streq(_got, want))                                                          \
			fprintf(stderr, "\n%s/%s: got '%s' want '%s'\n", dir, file, _got, want); \
		CU_ASSERT_STRING_EQUAL(_got, want);                                              \
	} while (0)

static void mkdirs(const char *dir, const char *sub)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, sub);
	CU_ASSERT_FATAL(fs_mkdir_p(p, 0755, NULL) == 0);
}

static bool isdir(const char *dir, const char *sub)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, sub);
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void rm_base(char *base)
{
	fs_rm_rf(base, NULL);
	free(base);
}

static const char *const v1_dirs[] = {"memory",	 "cpu,cpuacct", "cpuset",  "pids",
				      "freezer", "blkio",	"devices", "hugetlb"};

/* Like a systemd hybrid host: per-controller mounts, cpu and cpuacct
 * co-mounted with symlinks, name=systemd, an empty unified. */
static char *layout_v1(void)
{
	char *b = tmp_base();
	for (size_t i = 0; i < ARRAY_SIZE(v1_dirs); i++)
		mkdirs(b, v1_dirs[i]);
	mkdirs(b, "systemd");
	mkdirs(b, "unified");
	put(b, "unified/cgroup.controllers", "");
	_cleanup_free_ char *cpu = xasprintf("%s/cpu", b);
	_cleanup_free_ char *acct = xasprintf("%s/cpuacct", b);
	CU_ASSERT(symlink("cpu,cpuacct", cpu) == 0);
	CU_ASSERT(symlink("cpu,cpuacct", acct) == 0);
	put(b, "cpuset/cpuset.cpus", "0-1\n");
	put(b, "cpuset/cpuset.mems", "0\n");
	return b;
}

static char *layout_v2(const char *controllers)
{
	char *b = tmp_base();
	put(b, "cgroup.controllers", controllers);
	put(b, "cgroup.subtree_control", "");
	put(b, "cgroup.procs", "");
	return b;
}

static struct cg_manager *open_at(const char *base, enum cg_driver driver)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_manager *m = cg_manager_new(base, driver, &err);
	if (!m)
		fprintf(stderr, "\nopen: %s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	return m;
}

static struct cg_group *create(struct cg_manager *m, const char *path)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = NULL;
	int r = cg_group_create(m, path, &g, &err);
	if (r < 0)
		fprintf(stderr, "\ncreate: %s\n", husk_error_msg(&err));
	CU_ASSERT_FATAL(r == 0);
	return g;
}

static int set(struct cg_group *g, struct cg_resources *r, struct husk_error *err)
{
	int rc = cg_group_set(g, r, err);
	if (rc < 0 && err->code != EINVAL)
		fprintf(stderr, "\nset: %s\n", husk_error_msg(err));
	return rc;
}

/* ---- detection -------------------------------------------------------- */

static void test_detect_v1_layout(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	CU_ASSERT_EQUAL(cg_manager_version(m), CG_V1);
	CU_ASSERT(cg_manager_emulated(m));
	CU_ASSERT_STRING_EQUAL(cg_manager_base(m), b);
	const char *have[] = {"memory",	 "cpu",	    "cpuacct", "cpuset", "pids",
			      "freezer", "devices", "blkio",   "hugetlb"};
	for (size_t i = 0; i < ARRAY_SIZE(have); i++)
		CU_ASSERT(cg_manager_has_controller(m, have[i]));
	CU_ASSERT(!cg_manager_has_controller(m, "io"));
	CU_ASSERT(!cg_manager_has_controller(m, "systemd"));

	/* cpu and cpuacct share one hierarchy: the real directory. */
	struct cg_group *g = create(m, "x");
	_cleanup_free_ char *cpu = cg_group_dir(g, "cpu");
	_cleanup_free_ char *acct = cg_group_dir(g, "cpuacct");
	_cleanup_free_ char *want = xasprintf("%s/cpu,cpuacct/x", b);
	CU_ASSERT_STRING_EQUAL(cpu, want);
	CU_ASSERT_STRING_EQUAL(acct, want);
	CU_ASSERT_PTR_NULL(cg_group_dir(g, "io"));
	char **procs = cg_group_procs_files(g);
	CU_ASSERT_EQUAL(strv_length(procs), ARRAY_SIZE(v1_dirs));
	strv_free(procs);
	cg_group_free(g);
	cg_manager_free(m);

	/* A trailing slash is normalised. */
	_cleanup_free_ char *slash = xasprintf("%s/", b);
	m = open_at(slash, CG_DRIVER_SYSTEMD);
	CU_ASSERT_STRING_EQUAL(cg_manager_base(m), b);
	CU_ASSERT_EQUAL(cg_manager_driver(m), CG_DRIVER_SYSTEMD);
	cg_manager_free(m);
	rm_base(b);
}

static void test_detect_v2_layout(void)
{
	char *b = layout_v2("cpuset cpu io memory hugetlb pids rdma misc\n");
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	CU_ASSERT_EQUAL(cg_manager_version(m), CG_V2);
	CU_ASSERT(cg_manager_has_controller(m, "io"));
	CU_ASSERT(cg_manager_has_controller(m, "hugetlb"));
	CU_ASSERT(!cg_manager_has_controller(m, "freezer"));
	CU_ASSERT(!cg_manager_has_controller(m, "rdma"));
	cg_manager_free(m);
	rm_base(b);
}

static void test_detect_none(void)
{
	char *b = tmp_base();
	mkdirs(b, "unified"); /* not a controller */
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_PTR_NULL(cg_manager_new(b, CG_DRIVER_CGROUPFS, &err));
	CU_ASSERT_EQUAL(err.code, ENOENT);
	CU_ASSERT_PTR_NULL(cg_manager_new("relative", CG_DRIVER_CGROUPFS, &err));
	CU_ASSERT_EQUAL(err.code, EINVAL);
	struct cg_manager *m = NULL;
	struct cg_options bad = {.base = b, .driver = (enum cg_driver)7};
	CU_ASSERT_EQUAL(cg_manager_open(&bad, &m, &err), -EINVAL);
	enum cg_driver d;
	CU_ASSERT_EQUAL(cg_driver_parse("systemd", &d, &err), 0);
	CU_ASSERT_EQUAL(d, CG_DRIVER_SYSTEMD);
	CU_ASSERT_EQUAL(cg_driver_parse("cgroupfs", &d, &err), 0);
	CU_ASSERT_EQUAL(d, CG_DRIVER_CGROUPFS);
	CU_ASSERT_EQUAL(cg_driver_parse("other", &d, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(cg_driver_name(CG_DRIVER_SYSTEMD), "systemd");
	rm_base(b);
}

/* mountinfo decides over the directory names: the mounts sit at
 * unusual places, one of them with a space in its name. */
static void test_detect_mountinfo(void)
{
	char *b = tmp_base();
	mkdirs(b, "mem ory");
	mkdirs(b, "cc");
	mkdirs(b, "p");
	mkdirs(b, "sd");
	mkdirs(b, "unified");
	mkdirs(b, "other");
	_cleanup_free_ char *mi = xasprintf("%s/other/mountinfo", b);
	_cleanup_free_ char *text =
	    xasprintf("22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		      "31 23 0:28 / %s rw,relatime - tmpfs tmpfs rw,mode=755\n"
		      "32 31 0:29 / %s/mem\\040ory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
		      "33 31 0:30 / %s/cc rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
		      "34 31 0:31 / %s/p rw,relatime - cgroup cgroup rw,pids\n"
		      "35 31 0:32 / %s/sd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
		      "36 31 0:33 / %s/unified rw,relatime - cgroup2 cgroup2 rw\n"
		      "37 31 0:34 / /elsewhere/memory rw - cgroup cgroup rw,memory\n"
		      "garbage line\n",
		      b, b, b, b, b, b);
	put(b, "other/mountinfo", text);
	struct cg_options o = {.base = b, .driver = CG_DRIVER_CGROUPFS, .mountinfo = mi};
	struct cg_manager *m = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_FATAL(cg_manager_open(&o, &m, &err) == 0);
	CU_ASSERT_EQUAL(cg_manager_version(m), CG_V1);
	CU_ASSERT(cg_manager_has_controller(m, "memory"));
	CU_ASSERT(cg_manager_has_controller(m, "cpuacct"));
	CU_ASSERT(!cg_manager_has_controller(m, "cpuset"));
	struct cg_group *g = create(m, "husk");
	_cleanup_free_ char *mem = cg_group_dir(g, "memory");
	_cleanup_free_ char *want = xasprintf("%s/mem ory/husk", b);
	CU_ASSERT_STRING_EQUAL(mem, want);
	CU_ASSERT(isdir(b, "cc/husk"));
	CU_ASSERT(isdir(b, "p/husk"));
	CU_ASSERT(!isdir(b, "sd/husk"));
	CU_ASSERT(!isdir(b, "unified/husk"));
	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	CU_ASSERT(!isdir(b, "p/husk"));
	cg_group_free(g);
	cg_manager_free(m);

	/* cgroup2 at the base itself: v2. */
	put(b, "cgroup.controllers", "cpu memory pids\n");
	_cleanup_free_ char *text2 =
	    xasprintf("40 1 0:40 / %s rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", b);
	put(b, "other/mountinfo", text2);
	CU_ASSERT_FATAL(cg_manager_open(&o, &m, &err) == 0);
	CU_ASSERT_EQUAL(cg_manager_version(m), CG_V2);
	CU_ASSERT(cg_manager_has_controller(m, "pids"));
	CU_ASSERT(!cg_manager_has_controller(m, "io"));
	cg_manager_free(m);
	rm_base(b);
}

/* ---- naming ----------------------------------------------------------- */

static void expect_path_fn(int r, char *got, const char *want, struct husk_error *err)
{
	if (r < 0)
		fprintf(stderr, "\nnaming: %s\n", husk_error_msg(err));
	CU_ASSERT_EQUAL(r, 0);
	if (r == 0)
		CU_ASSERT_STRING_EQUAL(got, want);
	free(got);
}

static void expect_bad_fn(int r, char *got, struct husk_error *err)
{
	CU_ASSERT_EQUAL(r, -EINVAL);
	CU_ASSERT_EQUAL(err->code, EINVAL);
	if (r == 0)
		fprintf(stderr, "\nunexpectedly accepted: %s\n", got);
}

/* The call fills p: read it only after the call. */
#define expect_path(call, p_, want, errp)          \
	do {                                       \
		p = NULL;                          \
		int r_ = (call);                   \
		expect_path_fn(r_, p, want, errp); \
	} while (0)
#define expect_bad(call, p_, errp)          \
	do {                                \
		p = NULL;                   \
		int r_ = (call);            \
		expect_bad_fn(r_, p, errp); \
		free(p);                    \
	} while (0)

static void test_naming_cgroupfs(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	char *p = NULL;
	expect_path(cg_manager_pod_path(m, "/kubepods/burstable/pod1234", "x", &p, &err), p,
		    "kubepods/burstable/pod1234", &err);
	expect_path(cg_manager_pod_path(m, "kubepods//besteffort/podA/", NULL, &p, &err), p,
		    "kubepods/besteffort/podA", &err);
	expect_path(cg_manager_pod_path(m, "", "abc123", &p, &err), p, "husk/abc123", &err);
	expect_path(cg_manager_pod_path(m, NULL, "abc123", &p, &err), p, "husk/abc123", &err);
	expect_path(cg_manager_container_path(m, "kubepods/burstable/pod1234", "c0ffee", &p, &err),
		    p, "kubepods/burstable/pod1234/c0ffee", &err);
	p = NULL;
	expect_bad(cg_manager_pod_path(m, "/kubepods/../etc", "x", &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "/", "x", &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "/a/./b", "x", &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "/a\nb", "x", &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "", NULL, &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "", "a/b", &p, &err), p, &err);
	expect_bad(cg_manager_container_path(m, "kubepods", "..", &p, &err), p, &err);
	expect_bad(cg_manager_container_path(m, "kubepods", "a/b", &p, &err), p, &err);
	expect_bad(cg_manager_container_path(m, "kubepods", "", &p, &err), p, &err);
	expect_bad(cg_manager_container_path(m, "", "abc", &p, &err), p, &err);
	_cleanup_free_ char *deep = xstrdup("");
	for (int i = 0; i < CG_DEPTH_MAX + 1; i++) {
		char *n = xasprintf("%s/d", deep);
		free(deep);
		deep = n;
	}
	expect_bad(cg_manager_pod_path(m, deep, "x", &p, &err), p, &err);
	cg_manager_free(m);
	rm_base(b);
}

/* pod_parent: where pods that name no parent go, per driver; a parent the
 * driver cannot name refuses the manager. */
static void test_naming_pod_parent(void)
{
	char *b = layout_v1();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	char *p = NULL;
	struct cg_options o = {.base = b, .driver = CG_DRIVER_CGROUPFS, .pod_parent = "/e2e/run1/"};
	struct cg_manager *m = NULL;
	CU_ASSERT_FATAL(cg_manager_open(&o, &m, &err) == 0);
	expect_path(cg_manager_pod_path(m, "", "abc", &p, &err), p, "e2e/run1/abc", &err);
	expect_path(cg_manager_pod_path(m, "kubepods/podA", "abc", &p, &err), p, "kubepods/podA",
		    &err);
	cg_manager_free(m);
	o.driver = CG_DRIVER_SYSTEMD;
	o.pod_parent = "e2e-run1.slice";
	CU_ASSERT_FATAL(cg_manager_open(&o, &m, &err) == 0);
	expect_path(cg_manager_pod_path(m, NULL, "abc", &p, &err), p,
		    "e2e.slice/e2e-run1.slice/e2e-run1-abc.slice", &err);
	cg_manager_free(m);
	m = NULL;
	const char *bad[][2] = {{"cgroupfs", "/a/../b"}, {"systemd", "e2e"}, {"systemd", "a/b"}};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		o.driver = streq(bad[i][0], "systemd") ? CG_DRIVER_SYSTEMD : CG_DRIVER_CGROUPFS;
		o.pod_parent = bad[i][1];
		CU_ASSERT_EQUAL(cg_manager_open(&o, &m, &err), -EINVAL);
		CU_ASSERT_PTR_NULL(m);
		CU_ASSERT(strstr(husk_error_msg(&err), "pod cgroup parent") != NULL);
		husk_error_clear(&err);
	}
	rm_base(b);
}

static void test_naming_systemd(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_SYSTEMD);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	char *p = NULL;
	expect_path(cg_manager_pod_path(m, "kubepods-burstable-pod1234_5678.slice", NULL, &p, &err),
		    p,
		    "kubepods.slice/kubepods-burstable.slice/"
		    "kubepods-burstable-pod1234_5678.slice",
		    &err);
	expect_path(cg_manager_pod_path(m, "kubepods.slice", NULL, &p, &err), p, "kubepods.slice",
		    &err);
	expect_path(cg_manager_pod_path(m, "kubepods-podX.slice", NULL, &p, &err), p,
		    "kubepods.slice/kubepods-podX.slice", &err);
	expect_path(cg_manager_pod_path(m, "", "abc", &p, &err), p, "husk.slice/husk-abc.slice",
		    &err);
	expect_path(cg_manager_pod_path(m, "/kubepods.slice/kubepods-podX.slice", NULL, &p, &err),
		    p, "kubepods.slice/kubepods-podX.slice", &err);
	expect_path(
	    cg_manager_container_path(m, "kubepods.slice/kubepods-podX.slice", "c0ffee", &p, &err),
	    p, "kubepods.slice/kubepods-podX.slice/husk-c0ffee.scope", &err);
	p = NULL;
	expect_bad(cg_manager_pod_path(m, "-.slice", NULL, &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "kubepods", NULL, &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "a--b.slice", NULL, &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "-a.slice", NULL, &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "a-.slice", NULL, &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, ".slice", NULL, &p, &err), p, &err);
	expect_bad(cg_manager_pod_path(m, "a b.slice", NULL, &p, &err), p, &err);
	expect_path(cg_manager_pod_path(m, "", "a-b", &p, &err), p,
		    "husk.slice/husk-a.slice/husk-a-b.slice", &err);
	p = NULL;
	expect_bad(cg_manager_container_path(m, "kubepods.slice", "a/b", &p, &err), p, &err);

	/* Creating with systemd names makes the slices themselves. */
	char *pod = NULL, *ctr = NULL;
	CU_ASSERT_FATAL(
	    cg_manager_pod_path(m, "kubepods-besteffort-podU.slice", NULL, &pod, &err) == 0);
	CU_ASSERT_FATAL(cg_manager_container_path(m, pod, "abc", &ctr, &err) == 0);
	struct cg_group *g = create(m, ctr);
	CU_ASSERT(isdir(b, "memory/kubepods.slice/kubepods-besteffort.slice/"
			   "kubepods-besteffort-podU.slice/husk-abc.scope"));
	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	CU_ASSERT(!isdir(b, "memory/kubepods.slice"));
	cg_group_free(g);
	free(pod);
	free(ctr);
	cg_manager_free(m);
	rm_base(b);
}

/* ---- create / remove -------------------------------------------------- */

/* A level another creation has just made, before it copied the cpuset in:
 * this creation fills it rather than copying its emptiness further down. */
static void test_cpuset_level_of_another(void)
{
	char *b = layout_v1();
	mkdirs(b, "cpuset/kubepods");
	put(b, "cpuset/kubepods/cpuset.cpus", "\n");
	put(b, "cpuset/kubepods/cpuset.mems", "\n");
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	struct cg_group *pod = create(m, "kubepods/pod1");
	CHECK_FILE(b, "cpuset/kubepods/cpuset.cpus", "0-1");
	CHECK_FILE(b, "cpuset/kubepods/cpuset.mems", "0");
	CHECK_FILE(b, "cpuset/kubepods/pod1/cpuset.mems", "0");
	cg_group_free(pod);
	cg_manager_free(m);
	rm_base(b);
}

static void test_create_remove_v1(void)
{
	char *b = layout_v1();
	/* kubepods exists in memory already (the kubelet's): not husk's. */
	mkdirs(b, "memory/kubepods");
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *pod = create(m, "/kubepods/burstable/pod1/");
	CU_ASSERT_STRING_EQUAL(cg_group_path(pod), "kubepods/burstable/pod1");
	struct cg_group *ctr = create(m, "kubepods/burstable/pod1/ctr1");
	for (size_t i = 0; i < ARRAY_SIZE(v1_dirs); i++) {
		_cleanup_free_ char *d = xasprintf("%s/kubepods/burstable/pod1/ctr1", v1_dirs[i]);
		CU_ASSERT(isdir(b, d));
	}
	CU_ASSERT(!isdir(b, "systemd/kubepods"));
	CU_ASSERT(!isdir(b, "unified/kubepods"));
	/* cpuset copied down every new level. */
	CHECK_FILE(b, "cpuset/kubepods/cpuset.cpus", "0-1");
	CHECK_FILE(b, "cpuset/kubepods/burstable/pod1/cpuset.mems", "0");
	CHECK_FILE(b, "cpuset/kubepods/burstable/pod1/ctr1/cpuset.cpus", "0-1");

	/* Enter writes the pid in every hierarchy. */
	CU_ASSERT_EQUAL(cg_group_enter(ctr, 4242, &err), 0);
	CHECK_FILE(b, "memory/kubepods/burstable/pod1/ctr1/cgroup.procs", "4242");
	CHECK_FILE(b, "freezer/kubepods/burstable/pod1/ctr1/cgroup.procs", "4242");
	CU_ASSERT_EQUAL(cg_group_enter(ctr, -3, &err), -EINVAL);

	/* Removing the container leaves the pod; nothing of the pod's was
	 * created by the container's create. */
	CU_ASSERT_EQUAL(cg_group_remove(ctr, &err), 0);
	CU_ASSERT(!isdir(b, "memory/kubepods/burstable/pod1/ctr1"));
	CU_ASSERT(isdir(b, "memory/kubepods/burstable/pod1"));
	CU_ASSERT_EQUAL(cg_group_remove(ctr, &err), 0); /* twice is fine */

	/* A leftover child cgroup goes with the pod. */
	mkdirs(b, "pids/kubepods/burstable/pod1/stray");
	CU_ASSERT_EQUAL(cg_group_remove(pod, &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(v1_dirs); i++) {
		_cleanup_free_ char *d = xasprintf("%s/kubepods", v1_dirs[i]);
		CU_ASSERT_EQUAL(isdir(b, d), streq(v1_dirs[i], "memory"));
	}
	CU_ASSERT(!isdir(b, "memory/kubepods/burstable"));
	cg_group_free(ctr);
	cg_group_free(pod);

	/* A parent in use by a sibling stays. */
	struct cg_group *a = create(m, "husk/a");
	struct cg_group *bb = create(m, "husk/b");
	CU_ASSERT_EQUAL(cg_group_remove(a, &err), 0);
	CU_ASSERT(isdir(b, "memory/husk/b"));
	CU_ASSERT(!isdir(b, "memory/husk/a"));
	CU_ASSERT_EQUAL(cg_group_remove(bb, &err), 0);
	CU_ASSERT(isdir(b, "memory/husk")); /* b did not create it */
	cg_group_free(a);
	cg_group_free(bb);
	/* The hierarchies' own mounts, not what lies beside or below them. */
	_cleanup_free_ char *mem_mount = xasprintf("%s/memory", b);
	_cleanup_free_ char *cpu_mount = xasprintf("%s/cpu,cpuacct", b);
	_cleanup_free_ char *sd_mount = xasprintf("%s/systemd", b);
	CU_ASSERT(cg_manager_is_hier_mount(m, mem_mount));
	CU_ASSERT(cg_manager_is_hier_mount(m, cpu_mount));
	CU_ASSERT(!cg_manager_is_hier_mount(m, sd_mount));
	CU_ASSERT(!cg_manager_is_hier_mount(m, b));
	/* husk's own parent goes when empty, and only then. */
	mkdirs(b, "pids/husk/busy");
	CU_ASSERT_EQUAL(cg_manager_remove_empty(m, "husk", &err), 0);
	CU_ASSERT(!isdir(b, "memory/husk"));
	CU_ASSERT(isdir(b, "pids/husk/busy"));
	CU_ASSERT_EQUAL(cg_manager_remove_empty(m, "husk", &err), 0);
	CU_ASSERT_EQUAL(cg_manager_remove_empty(m, "..", &err), -EINVAL);
	_cleanup_free_ char *busy = xasprintf("%s/pids/husk/busy", b);
	rmdir(busy);
	mkdirs(b, "memory/husk");

	/* Open owns nothing; a file in the way is ENOTDIR. */
	struct cg_group *o = NULL;
	CU_ASSERT_EQUAL(cg_group_open(m, "husk", &o, &err), 0);
	CU_ASSERT_EQUAL(cg_group_remove(o, &err), 0);
	CU_ASSERT(isdir(b, "memory/husk"));
	cg_group_free(o);
	/* Adopted, it owns its directory wherever it is: found in two
	 * hierarchies, it goes from both (with a child and a file in one),
	 * and the others are nothing to do. */
	mkdirs(b, "pids/husk/kid");
	put(b, "memory/husk/memory.limit_in_bytes", "1");
	CU_ASSERT_EQUAL(cg_group_open(m, "husk", &o, &err), 0);
	cg_group_adopt(o);
	CU_ASSERT_EQUAL(cg_group_remove(o, &err), 0);
	CU_ASSERT(!isdir(b, "memory/husk"));
	CU_ASSERT(!isdir(b, "pids/husk"));
	cg_group_free(o);
	mkdirs(b, "memory/husk");
	CU_ASSERT_EQUAL(cg_group_open(m, "nope", &o, &err), -ENOENT);
	CU_ASSERT_EQUAL(cg_group_open(m, "../x", &o, &err), -EINVAL);
	put(b, "memory/husk/file", "x");
	struct cg_group *bad = NULL;
	CU_ASSERT_EQUAL(cg_group_create(m, "husk/file/x", &bad, &err), -ENOTDIR);
	CU_ASSERT_PTR_NULL(bad);
	CU_ASSERT_EQUAL(cg_group_create(m, "/", &bad, &err), -EINVAL);
	CU_ASSERT_EQUAL(cg_group_create(m, "a/../../b", &bad, &err), -EINVAL);
	/* A failed create leaves nothing it made in other hierarchies
	 * (blkio sorts before memory, where the file is). */
	CU_ASSERT(!isdir(b, "blkio/husk"));
	CU_ASSERT(isdir(b, "memory/husk"));
	cg_manager_free(m);
	rm_base(b);
}

static void test_create_remove_v2(void)
{
	char *b = layout_v2("cpuset cpu io memory pids rdma\n");
	put(b, "cgroup.subtree_control", "cpu memory\n");
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "kubepods/burstable/pod1/ctr");
	/* The root had cpu and memory: only the rest is enabled there. */
	CHECK_FILE(b, "cgroup.subtree_control", "+cpuset +pids +io");
	CHECK_FILE(b, "kubepods/cgroup.subtree_control", "+cpu +cpuset +memory +pids +io");
	CHECK_FILE(b, "kubepods/burstable/pod1/cgroup.subtree_control",
		   "+cpu +cpuset +memory +pids +io");
	/* Never in the leaf, which holds processes. */
	CHECK_FILE(b, "kubepods/burstable/pod1/ctr/cgroup.subtree_control", "<missing>");
	_cleanup_free_ char *dir = cg_group_dir(g, NULL);
	_cleanup_free_ char *want = xasprintf("%s/kubepods/burstable/pod1/ctr", b);
	CU_ASSERT_STRING_EQUAL(dir, want);
	_cleanup_free_ char *mem = cg_group_dir(g, "memory");
	CU_ASSERT_STRING_EQUAL(mem, want);
	CU_ASSERT_PTR_NULL(cg_group_dir(g, "hugetlb"));
	CU_ASSERT_PTR_NULL(cg_group_dir(g, "freezer"));

	CU_ASSERT_EQUAL(cg_group_enter(g, 77, &err), 0);
	CHECK_FILE(want, "cgroup.procs", "77");

	/* Its typed parts rebuild it with its ownership across a restart. */
	CU_ASSERT_EQUAL_FATAL(cg_group_n_hiers(g), 1);
	CU_ASSERT_STRING_EQUAL(cg_group_hier_name(g, 0), "unified");
	CU_ASSERT_EQUAL(cg_group_hier_created(g, 0), 4);
	CU_ASSERT_STRING_EQUAL(cg_group_path(g), "kubepods/burstable/pod1/ctr");
	cg_group_free(g);
	g = NULL;
	const char *names[] = {"unified", "gone"};
	const int created[] = {4, 1}, deep[] = {9};
	CU_ASSERT_EQUAL(cg_group_rebuild(m, "a/b", names, deep, 1, &g, &err), -EINVAL);
	CU_ASSERT_EQUAL(cg_group_rebuild(m, "..", names, created, 1, &g, &err), -EINVAL);
	CU_ASSERT_EQUAL(
	    cg_group_rebuild(m, "kubepods/burstable/pod1/ctr", names, created, 2, &g, &err), 0);
	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	CU_ASSERT(!isdir(b, "kubepods"));
	CHECK_FILE(b, "cgroup.subtree_control", "+cpuset +pids +io");
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

/* ---- resources: v1 ---------------------------------------------------- */

static void test_set_get_v1(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "kubepods/pod1");
	_cleanup_free_ char *cpu = cg_group_dir(g, "cpu");
	_cleanup_free_ char *mem = cg_group_dir(g, "memory");
	_cleanup_free_ char *cs = cg_group_dir(g, "cpuset");
	_cleanup_free_ char *pids = cg_group_dir(g, "pids");
	_cleanup_free_ char *huge = cg_group_dir(g, "hugetlb");
	/* Files the kernel would show. */
	put(mem, "memory.limit_in_bytes", "9223372036854771712\n");
	put(mem, "memory.memsw.limit_in_bytes", "9223372036854771712\n");
	put(huge, "hugetlb.2MB.limit_in_bytes", "9223372036854771712\n");
	put(huge, "hugetlb.2MB.rsvd.limit_in_bytes", "9223372036854771712\n");
	put(huge, "hugetlb.1GB.limit_in_bytes", "9223372036854771712\n");

	struct cg_resources r;
	cg_resources_init(&r);
	r.cpu_shares = 512;
	r.cpu_period = 100000;
	r.cpu_quota = 50000;
	r.memory_limit = 100 << 20;
	r.memory_swap_limit = 200 << 20;
	r.cpuset_cpus = xstrdup("1");
	r.cpuset_mems = xstrdup("0");
	r.pids_limit = 100;
	cg_resources_add_hugepage(&r, "2MB", 4 << 20);
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(cpu, "cpu.shares", "512");
	CHECK_FILE(cpu, "cpu.cfs_period_us", "100000");
	CHECK_FILE(cpu, "cpu.cfs_quota_us", "50000");
	CHECK_FILE(mem, "memory.limit_in_bytes", "104857600");
	CHECK_FILE(mem, "memory.memsw.limit_in_bytes", "209715200");
	CHECK_FILE(cs, "cpuset.cpus", "1");
	CHECK_FILE(cs, "cpuset.mems", "0");
	CHECK_FILE(pids, "pids.max", "100");
	CHECK_FILE(huge, "hugetlb.2MB.limit_in_bytes", "4194304");
	CHECK_FILE(huge, "hugetlb.2MB.rsvd.limit_in_bytes", "4194304");

	struct cg_resources got;
	CU_ASSERT_FATAL(cg_group_get(g, &got, &err) == 0);
	CU_ASSERT_EQUAL(got.cpu_shares, 512);
	CU_ASSERT_EQUAL(got.cpu_period, 100000);
	CU_ASSERT_EQUAL(got.cpu_quota, 50000);
	CU_ASSERT_EQUAL(got.memory_limit, 100 << 20);
	CU_ASSERT_EQUAL(got.memory_swap_limit, 200 << 20);
	CU_ASSERT_STRING_EQUAL(got.cpuset_cpus, "1");
	CU_ASSERT_STRING_EQUAL(got.cpuset_mems, "0");
	CU_ASSERT_EQUAL(got.pids_limit, 100);
	CU_ASSERT_EQUAL_FATAL(got.n_hugepages, 2);
	CU_ASSERT_STRING_EQUAL(got.hugepages[0].page_size, "1GB");
	CU_ASSERT_EQUAL(got.hugepages[0].limit, CG_MAX);
	CU_ASSERT_STRING_EQUAL(got.hugepages[1].page_size, "2MB");
	CU_ASSERT_EQUAL(got.hugepages[1].limit, 4 << 20);
	CU_ASSERT_EQUAL(got.n_unified, 0);
	cg_resources_clear(&got);

	/* Lifting limits: -1 and "max"; memory unlimited lifts swap. */
	cg_resources_clear(&r);
	r.cpu_quota = CG_MAX;
	r.memory_limit = CG_MAX;
	r.pids_limit = CG_MAX;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(cpu, "cpu.cfs_quota_us", "-1");
	CHECK_FILE(cpu, "cpu.cfs_period_us", "100000");
	CHECK_FILE(mem, "memory.limit_in_bytes", "-1");
	CHECK_FILE(mem, "memory.memsw.limit_in_bytes", "-1");
	CHECK_FILE(pids, "pids.max", "max");
	put(mem, "memory.limit_in_bytes", "9223372036854771712\n");
	put(cpu, "cpu.cfs_quota_us", "-1\n");
	CU_ASSERT_FATAL(cg_group_get(g, &got, &err) == 0);
	CU_ASSERT_EQUAL(got.cpu_quota, CG_MAX);
	CU_ASSERT_EQUAL(got.memory_limit, CG_MAX);
	CU_ASSERT_EQUAL(got.pids_limit, CG_MAX);
	cg_resources_clear(&got);

	/* Swap only: memsw goes. Unset fields are left alone. */
	r.memory_limit = CG_UNSET;
	r.cpu_quota = CG_UNSET;
	r.pids_limit = CG_UNSET;
	r.memory_swap_limit = 300 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(mem, "memory.memsw.limit_in_bytes", "314572800");
	CHECK_FILE(pids, "pids.max", "max");
	/* "" is unset too. */
	r.cpuset_cpus = xstrdup("");
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(cs, "cpuset.cpus", "1");
	cg_resources_clear(&r);

	/* Unified keys need v2. */
	cg_resources_add_unified(&r, "memory.high", "1000");
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "needs cgroup v2"));
	cg_resources_clear(&r);

	/* A hugepage size the host lacks. */
	cg_resources_add_hugepage(&r, "16GB", 1 << 30);
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "16GB"));
	cg_resources_clear(&r);

	/* Without swap accounting: "no swap" passes, real swap is refused. */
	_cleanup_free_ char *memsw = xasprintf("%s/memory.memsw.limit_in_bytes", mem);
	unlink(memsw);
	r.memory_limit = 64 << 20;
	r.memory_swap_limit = 64 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(mem, "memory.limit_in_bytes", "67108864");
	CU_ASSERT(!fs_exists(memsw));
	r.memory_swap_limit = 128 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "swap accounting"));
	r.memory_limit = CG_MAX;
	r.memory_swap_limit = CG_UNSET;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CU_ASSERT(!fs_exists(memsw));
	cg_resources_clear(&r);

	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

/* Values refused before any file is touched, and the kernel's refusals. */
static void test_set_invalid(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "husk/x");
	struct cg_resources r;
	cg_resources_init(&r);
	struct {
		int64_t *field;
		int64_t value;
	} bad[] = {
	    {&r.cpu_shares, 1},	      {&r.cpu_shares, 262145}, {&r.cpu_period, 0},
	    {&r.cpu_period, 2000000}, {&r.cpu_quota, -5},      {&r.memory_limit, 0},
	    {&r.memory_limit, -2},    {&r.pids_limit, 0},      {&r.memory_swap_limit, -7},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cg_resources_init(&r);
		*bad[i].field = bad[i].value;
		CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	}
	cg_resources_init(&r);
	r.memory_limit = 100;
	r.memory_swap_limit = 50;
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	cg_resources_init(&r);
	r.memory_limit = CG_MAX;
	r.memory_swap_limit = 50;
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	cg_resources_init(&r);
	r.cpuset_cpus = xstrdup("0;rm");
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	cg_resources_clear(&r);
	const char *sizes[] = {"2M", "MB", "02MB", "2XB", "2MB/x"};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		cg_resources_add_hugepage(&r, sizes[i], 1);
		CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
		cg_resources_clear(&r);
	}
	for (int i = 0; i <= CG_HUGEPAGES_MAX; i++)
		cg_resources_add_hugepage(&r, "2MB", 1);
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	cg_resources_clear(&r);

	/* The kernel refusing a value (here ENOSPC from /dev/full) is
	 * EINVAL naming the file and the value. */
	_cleanup_free_ char *mem = cg_group_dir(g, "memory");
	_cleanup_free_ char *lim = xasprintf("%s/memory.limit_in_bytes", mem);
	CU_ASSERT_FATAL(symlink("/dev/full", lim) == 0);
	r.memory_limit = 1 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	CU_ASSERT_EQUAL(err.code, EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "memory.limit_in_bytes"));
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'1048576'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "husk/x"));
	unlink(lim);
	cg_resources_clear(&r);

	/* A controller the host lacks. */
	_cleanup_free_ char *hug = xasprintf("%s/hugetlb", b);
	CU_ASSERT_EQUAL(fs_rm_rf(hug, NULL), 0);
	cg_manager_free(m);
	m = open_at(b, CG_DRIVER_CGROUPFS);
	struct cg_group *g2 = NULL;
	CU_ASSERT_FATAL(cg_group_open(m, "husk/x", &g2, &err) == 0);
	cg_resources_add_hugepage(&r, "2MB", 1);
	CU_ASSERT_EQUAL(set(g2, &r, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "hugetlb controller"));
	cg_resources_clear(&r);
	cg_group_free(g2);
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

/* ---- resources: v2 ---------------------------------------------------- */

static void test_set_get_v2(void)
{
	char *b = layout_v2("cpuset cpu io memory hugetlb pids\n");
	struct cg_manager *m = open_at(b, CG_DRIVER_SYSTEMD);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "kubepods.slice/husk-c.scope");
	_cleanup_free_ char *d = cg_group_dir(g, NULL);
	put(d, "cpu.max", "max 100000\n");
	put(d, "memory.max", "max\n");
	put(d, "memory.swap.max", "max\n");
	put(d, "hugetlb.2MB.max", "max\n");
	put(d, "hugetlb.2MB.rsvd.max", "max\n");
	put(d, "hugetlb.2MB.current", "0\n");
	put(d, "memory.high", "max\n");

	struct cg_resources r;
	cg_resources_init(&r);
	r.cpu_shares = 1024;
	r.cpu_period = 100000;
	r.cpu_quota = 50000;
	r.memory_limit = 100 << 20;
	r.memory_swap_limit = 300 << 20;
	r.cpuset_cpus = xstrdup("0-1");
	r.cpuset_mems = xstrdup("0");
	r.pids_limit = 64;
	cg_resources_add_hugepage(&r, "2MB", 2 << 20);
	cg_resources_add_unified(&r, "memory.high", "94371840");
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.weight", "39");
	CHECK_FILE(d, "cpu.max", "50000 100000");
	CHECK_FILE(d, "memory.max", "104857600");
	CHECK_FILE(d, "memory.swap.max", "209715200"); /* swap alone */
	CHECK_FILE(d, "cpuset.cpus", "0-1");
	CHECK_FILE(d, "cpuset.mems", "0");
	CHECK_FILE(d, "pids.max", "64");
	CHECK_FILE(d, "hugetlb.2MB.max", "2097152");
	CHECK_FILE(d, "hugetlb.2MB.rsvd.max", "2097152");
	CHECK_FILE(d, "memory.high", "94371840");

	struct cg_resources got;
	CU_ASSERT_FATAL(cg_group_get(g, &got, &err) == 0);
	CU_ASSERT_EQUAL(got.cpu_shares, 998); /* weight 39, lossy */
	CU_ASSERT_EQUAL(got.cpu_period, 100000);
	CU_ASSERT_EQUAL(got.cpu_quota, 50000);
	CU_ASSERT_EQUAL(got.memory_limit, 100 << 20);
	CU_ASSERT_EQUAL(got.memory_swap_limit, 300 << 20);
	CU_ASSERT_STRING_EQUAL(got.cpuset_cpus, "0-1");
	CU_ASSERT_EQUAL(got.pids_limit, 64);
	CU_ASSERT_EQUAL_FATAL(got.n_hugepages, 1);
	CU_ASSERT_STRING_EQUAL(got.hugepages[0].page_size, "2MB");
	CU_ASSERT_EQUAL(got.hugepages[0].limit, 2 << 20);
	cg_resources_clear(&got);

	/* The shares conversion at the ends of the range. */
	cg_resources_clear(&r);
	r.cpu_shares = 2;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.weight", "1");
	r.cpu_shares = 262144;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.weight", "10000");
	r.cpu_shares = 100;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.weight", "4");
	r.cpu_shares = CG_UNSET;

	/* Period alone keeps the quota; quota alone keeps the period. */
	r.cpu_period = 200000;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.max", "50000 200000");
	r.cpu_period = CG_UNSET;
	r.cpu_quota = CG_MAX;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.max", "max");
	r.cpu_quota = 20000;
	r.cpu_period = 100000;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.max", "20000 100000");
	r.cpu_quota = CG_MAX;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "cpu.max", "max 100000");
	r.cpu_quota = r.cpu_period = CG_UNSET;

	/* Swap equal to memory: no swap. */
	r.memory_limit = 50 << 20;
	r.memory_swap_limit = 50 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "memory.swap.max", "0");
	CHECK_FILE(d, "memory.max", "52428800");
	/* Swap alone uses the memory limit in force. */
	r.memory_limit = CG_UNSET;
	r.memory_swap_limit = 60 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "memory.swap.max", "10485760");
	/* Unlimited memory, swap unset: both max. */
	r.memory_limit = CG_MAX;
	r.memory_swap_limit = CG_UNSET;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "memory.max", "max");
	CHECK_FILE(d, "memory.swap.max", "max");
	CU_ASSERT_FATAL(cg_group_get(g, &got, &err) == 0);
	CU_ASSERT_EQUAL(got.memory_limit, CG_MAX);
	CU_ASSERT_EQUAL(got.memory_swap_limit, CG_MAX);
	cg_resources_clear(&got);
	/* A swap limit without a memory limit is refused. */
	r.memory_limit = CG_UNSET;
	r.memory_swap_limit = 10 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "needs a memory limit"));
	/* Swap below the memory in force is refused. */
	put(d, "memory.max", "104857600\n");
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	/* No swap accounting: only "no swap" passes. */
	_cleanup_free_ char *swapmax = xasprintf("%s/memory.swap.max", d);
	unlink(swapmax);
	r.memory_limit = 100 << 20;
	r.memory_swap_limit = 100 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CU_ASSERT(!fs_exists(swapmax));
	r.memory_swap_limit = 200 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	cg_resources_clear(&r);

	/* Unified keys: only existing interface files of this cgroup. */
	const char *bad_keys[] = {"memory.nope", "cgroup.procs", "cgroup.kill", "../x",
				  "memory",	 ".hidden",	 "a/b.c",	""};
	for (size_t i = 0; i < ARRAY_SIZE(bad_keys); i++) {
		cg_resources_add_unified(&r, bad_keys[i], "1");
		CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
		cg_resources_clear(&r);
	}
	cg_resources_add_unified(&r, "memory.high", "max");
	CU_ASSERT_EQUAL(set(g, &r, &err), 0);
	CHECK_FILE(d, "memory.high", "max");
	cg_resources_clear(&r);
	/* Hugepage sizes the host lacks. */
	cg_resources_add_hugepage(&r, "1GB", 1);
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	cg_resources_clear(&r);

	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	CU_ASSERT(!isdir(b, "kubepods.slice"));
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

static void test_shares_weight(void)
{
	/* Shares 2..262144 map onto weight 1..10000. */
	const struct {
		int64_t shares;
		const char *weight;
	} cases[] = {{2, "1"},	   {3, "1"},	 {512, "20"},
		     {1024, "39"}, {2048, "79"}, {262144, "10000"}};
	char *b = layout_v2("cpu\n");
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "w");
	_cleanup_free_ char *d = cg_group_dir(g, NULL);
	struct cg_resources r;
	cg_resources_init(&r);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		r.cpu_shares = cases[i].shares;
		CU_ASSERT_EQUAL(set(g, &r, &err), 0);
		CHECK_FILE(d, "cpu.weight", cases[i].weight);
	}
	/* No memory controller on this host. */
	r.cpu_shares = CG_UNSET;
	r.memory_limit = 1 << 20;
	CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "memory controller"));
	cg_group_remove(g, &err);
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

/* ---- stats and OOM ---------------------------------------------------- */

static const char v1_memory_stat[] =
    "cache 270336\nrss 1388544\nrss_huge 0\nshmem 0\nmapped_file 135168\n"
    "dirty 0\nwriteback 0\nswap 0\npgpgin 1287\npgpgout 884\npgfault 1503\n"
    "pgmajfault 1\ninactive_anon 1384448\nactive_anon 0\ninactive_file 135168\n"
    "active_file 135168\nunevictable 0\nhierarchical_memory_limit 104857600\n"
    "hierarchical_memsw_limit 209715200\ntotal_cache 540672\ntotal_rss 2777088\n"
    "total_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 270336\ntotal_dirty 0\n"
    "total_writeback 0\ntotal_swap 0\ntotal_pgpgin 2574\ntotal_pgpgout 1768\n"
    "total_pgfault 3006\ntotal_pgmajfault 2\ntotal_inactive_anon 2768896\n"
    "total_active_anon 0\ntotal_inactive_file 270336\ntotal_active_file 270336\n"
    "total_unevictable 0\n";

static const char v2_memory_stat[] =
    "anon 1388544\nfile 270336\nkernel 258048\nkernel_stack 16384\n"
    "pagetables 45056\nsec_pagetables 0\npercpu 0\nsock 0\nvmalloc 0\nshmem 0\n"
    "zswap 0\nzswapped 0\nfile_mapped 135168\nfile_dirty 0\nfile_writeback 0\n"
    "swapcached 0\nanon_thp 0\nfile_thp 0\nshmem_thp 0\ninactive_anon 1384448\n"
    "active_anon 4096\ninactive_file 135168\nactive_file 135168\nunevictable 0\n"
    "slab_reclaimable 52224\nslab_unreclaimable 93120\nslab 145344\n"
    "workingset_refault_anon 0\nworkingset_refault_file 0\n"
    "workingset_activate_anon 0\nworkingset_activate_file 0\n"
    "workingset_restore_anon 0\nworkingset_restore_file 0\n"
    "workingset_nodereclaim 0\npgscan 0\npgsteal 0\npgscan_kswapd 0\n"
    "pgscan_direct 0\npgsteal_kswapd 0\npgsteal_direct 0\npgfault 1503\n"
    "pgmajfault 1\npgrefill 0\npgactivate 0\npgdeactivate 0\npglazyfree 0\n"
    "pglazyfreed 0\nthp_fault_alloc 0\nthp_collapse_alloc 0\n";

static void test_stats_v1(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "kubepods/pod1");
	_cleanup_free_ char *acct = cg_group_dir(g, "cpuacct");
	_cleanup_free_ char *mem = cg_group_dir(g, "memory");
	_cleanup_free_ char *pids = cg_group_dir(g, "pids");

	/* Nothing there yet: no fields, no error. */
	struct cg_stats s;
	CU_ASSERT_FATAL(cg_group_stats(g, &s, &err) == 0);
	CU_ASSERT_EQUAL(s.valid, 0);
	CU_ASSERT(s.timestamp_ns > 0);
	uint64_t ooms = 99;
	CU_ASSERT_EQUAL(cg_group_oom_kill_count(g, &ooms, &err), 0);
	CU_ASSERT_EQUAL(ooms, 0);

	put(acct, "cpuacct.usage", "123456789012\n");
	put(mem, "memory.usage_in_bytes", "3317760\n");
	put(mem, "memory.stat", v1_memory_stat);
	put(mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
	put(pids, "pids.current", "7\n");
	/* The kernel's "unlimited" (PAGE_COUNTER_MAX pages) reads as 0. */
	put(mem, "memory.limit_in_bytes", "9223372036854771712\n");
	CU_ASSERT_FATAL(cg_group_stats(g, &s, &err) == 0);
	/* total_swap (0) is there, so swap is accounted */
	CU_ASSERT_EQUAL(s.valid,
			CG_STAT_CPU | CG_STAT_MEMORY | CG_STAT_PIDS | CG_STAT_OOM | CG_STAT_SWAP);
	CU_ASSERT_EQUAL(s.memory_limit, 0);
	CU_ASSERT_EQUAL(s.memory_cache, 540672);
	CU_ASSERT_EQUAL(s.cpu_usage_ns, 123456789012ULL);
	CU_ASSERT_EQUAL(s.memory_usage, 3317760);
	CU_ASSERT_EQUAL(s.memory_working_set, 3317760 - 270336);
	CU_ASSERT_EQUAL(s.memory_rss, 2777088);
	CU_ASSERT_EQUAL(s.memory_page_faults, 3006);
	CU_ASSERT_EQUAL(s.memory_major_page_faults, 2);
	CU_ASSERT_EQUAL(s.pids_current, 7);
	CU_ASSERT_EQUAL(s.oom_kill_count, 2);
	CU_ASSERT_EQUAL(cg_group_oom_kill_count(g, &ooms, &err), 0);
	CU_ASSERT_EQUAL(ooms, 2);

	/* user/system in USER_HZ ticks, CFS throttling, failcnt, max usage
	 * and a real limit. */
	_cleanup_free_ char *cpu = cg_group_dir(g, "cpu");
	uint64_t hz = (uint64_t)sysconf(_SC_CLK_TCK);
	put(acct, "cpuacct.stat", "user 150\nsystem 25\n");
	put(cpu, "cpu.stat", "nr_periods 40\nnr_throttled 3\nthrottled_time 7000000\n");
	put(mem, "memory.failcnt", "5\n");
	put(mem, "memory.max_usage_in_bytes", "4194304\n");
	put(mem, "memory.limit_in_bytes", "268435456\n");
	CU_ASSERT_FATAL(cg_group_stats(g, &s, &err) == 0);
	CU_ASSERT(s.valid & CG_STAT_CFS);
	CU_ASSERT_EQUAL(s.cpu_user_ns, 150 * (1000000000ULL / hz));
	CU_ASSERT_EQUAL(s.cpu_system_ns, 25 * (1000000000ULL / hz));
	CU_ASSERT_EQUAL(s.cpu_periods, 40);
	CU_ASSERT_EQUAL(s.cpu_throttled_periods, 3);
	CU_ASSERT_EQUAL(s.cpu_throttled_ns, 7000000);
	CU_ASSERT_EQUAL(s.memory_failcnt, 5);
	CU_ASSERT_EQUAL(s.memory_max_usage, 4194304);
	CU_ASSERT_EQUAL(s.memory_limit, 268435456);

	/* Without total_* keys, the local ones; inactive above usage floors
	 * the working set at 0. */
	put(mem, "memory.stat", "rss 10\npgfault 20\npgmajfault 30\ninactive_file 5000000\n");
	CU_ASSERT_FATAL(cg_group_stats(g, &s, &err) == 0);
	CU_ASSERT_EQUAL(s.memory_rss, 10);
	CU_ASSERT_EQUAL(s.memory_page_faults, 20);
	CU_ASSERT_EQUAL(s.memory_major_page_faults, 30);
	CU_ASSERT_EQUAL(s.memory_working_set, 0);

	/* An old kernel without oom_kill in oom_control: 0. */
	put(mem, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n");
	CU_ASSERT_EQUAL(cg_group_oom_kill_count(g, &ooms, &err), 0);
	CU_ASSERT_EQUAL(ooms, 0);

	/* Garbage is EIO naming the file. */
	put(acct, "cpuacct.usage", "lots\n");
	CU_ASSERT_EQUAL(cg_group_stats(g, &s, &err), -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "cpuacct.usage"));
	put(acct, "cpuacct.usage", "1\n");
	put(mem, "memory.stat", "total_rss x\n");
	CU_ASSERT_EQUAL(cg_group_stats(g, &s, &err), -EIO);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "memory.stat"));

	cg_group_remove(g, &err);
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

static void test_stats_v2(void)
{
	char *b = layout_v2("cpuset cpu io memory hugetlb pids\n");
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "kubepods/pod1");
	_cleanup_free_ char *d = cg_group_dir(g, NULL);
	put(d, "cpu.stat",
	    "usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n"
	    "core_sched.force_idle_usec 0\nnr_periods 0\nnr_throttled 0\n"
	    "throttled_usec 0\nnr_bursts 0\nburst_usec 0\n");
	put(d, "memory.current", "3317760\n");
	put(d, "memory.stat", v2_memory_stat);
	put(d, "memory.events", "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n");
	put(d, "pids.current", "3\n");
	put(d, "memory.max", "max\n");
	struct cg_stats s;
	CU_ASSERT_FATAL(cg_group_stats(g, &s, &err) == 0);
	CU_ASSERT_EQUAL(s.valid,
			CG_STAT_CPU | CG_STAT_MEMORY | CG_STAT_PIDS | CG_STAT_OOM | CG_STAT_CFS);
	CU_ASSERT_EQUAL(s.cpu_usage_ns, 123456000ULL);
	CU_ASSERT_EQUAL(s.cpu_user_ns, 100000000ULL);
	CU_ASSERT_EQUAL(s.cpu_system_ns, 23456000ULL);
	CU_ASSERT_EQUAL(s.memory_limit, 0);
	CU_ASSERT_EQUAL(s.memory_failcnt, 3);
	CU_ASSERT_EQUAL(s.memory_max_usage, 0); /* no memory.peak on this kernel */
	CU_ASSERT_EQUAL(s.memory_usage, 3317760);
	CU_ASSERT_EQUAL(s.memory_working_set, 3317760 - 135168);
	CU_ASSERT_EQUAL(s.memory_rss, 1388544);
	CU_ASSERT_EQUAL(s.memory_page_faults, 1503);
	CU_ASSERT_EQUAL(s.memory_major_page_faults, 1);
	CU_ASSERT_EQUAL(s.pids_current, 3);
	CU_ASSERT_EQUAL(s.oom_kill_count, 1);
	uint64_t ooms = 0;
	CU_ASSERT_EQUAL(cg_group_oom_kill_count(g, &ooms, &err), 0);
	CU_ASSERT_EQUAL(ooms, 1);
	put(d, "cpu.stat",
	    "usage_usec 1\nuser_usec 1\nsystem_usec 0\nnr_periods 9\nnr_throttled 4\n"
	    "throttled_usec 2500\n");
	put(d, "memory.max", "1048576\n");
	put(d, "memory.peak", "2097152\n");
	put(d, "memory.swap.current", "8192\n");
	CU_ASSERT_FATAL(cg_group_stats(g, &s, &err) == 0);
	CU_ASSERT(s.valid & CG_STAT_SWAP);
	CU_ASSERT_EQUAL(s.cpu_periods, 9);
	CU_ASSERT_EQUAL(s.cpu_throttled_periods, 4);
	CU_ASSERT_EQUAL(s.cpu_throttled_ns, 2500000);
	CU_ASSERT_EQUAL(s.memory_limit, 1048576);
	CU_ASSERT_EQUAL(s.memory_max_usage, 2097152);
	CU_ASSERT_EQUAL(s.memory_swap, 8192);
	put(d, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
	CU_ASSERT_EQUAL(cg_group_oom_kill_count(g, &ooms, &err), 0);
	CU_ASSERT_EQUAL(ooms, 0);
	put(d, "memory.events", "oom_kill -1\n");
	CU_ASSERT_EQUAL(cg_group_oom_kill_count(g, &ooms, &err), -EIO);
	cg_group_remove(g, &err);
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

/* ---- pids and kill ---------------------------------------------------- */

static void test_pids(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *pod = create(m, "husk/pod");
	struct cg_group *c = create(m, "husk/pod/c");
	pid_t *pids = NULL;
	size_t n = 9;
	CU_ASSERT_EQUAL(cg_group_pids(pod, &pids, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 0);
	free(pids);
	/* Descendants count, every hierarchy counts, duplicates go. */
	put(b, "memory/husk/pod/cgroup.procs", "30\n10\n");
	put(b, "pids/husk/pod/cgroup.procs", "10\n");
	put(b, "freezer/husk/pod/c/cgroup.procs", "20\n");
	put(b, "memory/husk/cgroup.procs", "99\n"); /* the parent: not ours */
	CU_ASSERT_EQUAL(cg_group_pids(pod, &pids, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_EQUAL(pids[0], 10);
	CU_ASSERT_EQUAL(pids[1], 20);
	CU_ASSERT_EQUAL(pids[2], 30);
	free(pids);
	CU_ASSERT_EQUAL(cg_group_pids(c, &pids, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(pids[0], 20);
	free(pids);
	put(b, "freezer/husk/pod/c/cgroup.procs", "abc\n");
	CU_ASSERT_EQUAL(cg_group_pids(c, &pids, &n, &err), -EIO);
	cg_group_free(c);
	cg_group_free(pod);
	cg_manager_free(m);
	rm_base(b);
}

static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		for (;;)
			pause();
	}
	CU_ASSERT_FATAL(pid > 0);
	return pid;
}

/* Plays the kernel for an emulated tree: once the trigger file holds
 * trigger_value (or at once when there is none), waits for the child to
 * die (killing it when kill_it), then empties the cgroup.procs files. */
struct fake_kernel {
	pid_t child;
	const char *trigger_dir, *trigger_file;
	const char *trigger_value;
	bool kill_it;
	char *procs[4];
	int status;
};

static void *fake_kernel_run(void *arg)
{
	struct fake_kernel *k = arg;
	for (int i = 0; k->trigger_dir && i < 5000; i++) {
		_cleanup_free_ char *v = get(k->trigger_dir, k->trigger_file);
		if (streq(v, k->trigger_value))
			break;
		usleep(1000);
	}
	if (k->kill_it)
		kill(k->child, SIGKILL);
	waitpid(k->child, &k->status, 0);
	for (int i = 0; i < 4 && k->procs[i]; i++)
		truncate(k->procs[i], 0);
	return NULL;
}

static void test_kill_v2(void)
{
	char *b = layout_v2("cpu memory pids\n");
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *g = create(m, "husk/k");
	_cleanup_free_ char *d = cg_group_dir(g, NULL);
	put(d, "cgroup.kill", "");
	pid_t child = spawn_sleeper();
	CU_ASSERT_EQUAL(cg_group_enter(g, child, &err), 0);
	_cleanup_free_ char *kill_file = xasprintf("%s/cgroup.kill", d);
	_cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", d);
	struct fake_kernel k = {child, d, "cgroup.kill", "1", true, {procs}, 0};
	pthread_t t;
	pthread_create(&t, NULL, fake_kernel_run, &k);
	CU_ASSERT_EQUAL(cg_group_kill(g, 5000, &err), 0);
	pthread_join(t, NULL);
	CU_ASSERT(WIFSIGNALED(k.status) && WTERMSIG(k.status) == SIGKILL);
	CHECK_FILE(d, "cgroup.kill", "1");

	/* Without cgroup.kill: freeze, SIGKILL from us, thaw. */
	unlink(kill_file);
	put(d, "cgroup.freeze", "0\n");
	put(d, "cgroup.events", "populated 1\nfrozen 1\n");
	child = spawn_sleeper();
	CU_ASSERT_EQUAL(cg_group_enter(g, child, &err), 0);
	struct fake_kernel k2 = {child, NULL, NULL, NULL, false, {procs}, 0};
	pthread_create(&t, NULL, fake_kernel_run, &k2);
	CU_ASSERT_EQUAL(cg_group_kill(g, 5000, &err), 0);
	pthread_join(t, NULL);
	CU_ASSERT(WIFSIGNALED(k2.status) && WTERMSIG(k2.status) == SIGKILL);
	CHECK_FILE(d, "cgroup.freeze", "0");

	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

static void test_kill_v1(void)
{
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct cg_group *pod = create(m, "husk/pod");
	struct cg_group *c = create(m, "husk/pod/c");
	pid_t child = spawn_sleeper();
	/* In the container's cgroup: killing the pod reaches it. */
	CU_ASSERT_EQUAL(cg_group_enter(c, child, &err), 0);
	_cleanup_free_ char *fz = cg_group_dir(pod, "freezer");
	put(fz, "freezer.state", "THAWED\n");
	struct fake_kernel k = {child, NULL, NULL, NULL, false, {0}, 0};
	char **files = cg_group_procs_files(c);
	for (int i = 0; i < 4 && files[i]; i++)
		k.procs[i] = files[i];
	/* More hierarchies than the fake kernel empties: clear the rest now. */
	for (int i = 4; files[i]; i++)
		truncate(files[i], 0);
	pthread_t t;
	pthread_create(&t, NULL, fake_kernel_run, &k);
	CU_ASSERT_EQUAL(cg_group_kill(pod, 5000, &err), 0);
	pthread_join(t, NULL);
	strv_free(files);
	CU_ASSERT(WIFSIGNALED(k.status) && WTERMSIG(k.status) == SIGKILL);
	CHECK_FILE(fz, "freezer.state", "THAWED");

	/* Ourselves in the list: never signalled, not waited for. */
	_cleanup_free_ char *self = xasprintf("%d\n", (int)getpid());
	_cleanup_free_ char *mem = cg_group_dir(c, "memory");
	put(mem, "cgroup.procs", self);
	CU_ASSERT_EQUAL(cg_group_kill(pod, 1000, &err), 0);

	/* A process that never leaves: ETIMEDOUT. */
	child = spawn_sleeper();
	CU_ASSERT_EQUAL(cg_group_enter(c, child, &err), 0);
	CU_ASSERT_EQUAL(cg_group_kill(pod, 100, &err), -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "husk/pod"));
	int status;
	waitpid(child, &status, 0);
	CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

	CU_ASSERT_EQUAL(cg_group_remove(pod, &err), 0);
	CU_ASSERT(!isdir(b, "memory/husk"));
	cg_group_free(c);
	cg_group_free(pod);
	cg_manager_free(m);
	rm_base(b);
}

/* ---- the real hierarchy (root, v1) ------------------------------------ */

static void test_real_v1(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (geteuid() != 0) {
		CU_PASS("skipped: the real cgroup test needs root");
		printf("\n    (skipped: not root) ");
		return;
	}
	struct cg_manager *m = cg_manager_new(NULL, CG_DRIVER_CGROUPFS, &err);
	if (!m || cg_manager_version(m) != CG_V1) {
		CU_PASS("skipped: the real cgroup test needs cgroup v1");
		printf("\n    (skipped: not cgroup v1) ");
		cg_manager_free(m);
		return;
	}
	CU_ASSERT(!cg_manager_emulated(m));
	_cleanup_free_ char *path = xasprintf("husk-test-%d", (int)getpid());
	_cleanup_free_ char *cpath = xasprintf("%s/c1", path);
	struct cg_group *g = NULL, *c = NULL;
	int r = cg_group_create(m, path, &g, &err);
	if (r == 0)
		r = cg_group_create(m, cpath, &c, &err);
	if (r < 0)
		fprintf(stderr, "\ncreate: %s\n", husk_error_msg(&err));
	CU_ASSERT_FATAL(r == 0);
	_cleanup_free_ char *mem = cg_group_dir(c, "memory");
	_cleanup_free_ char *want = xasprintf("/sys/fs/cgroup/memory/%s", cpath);
	CU_ASSERT_STRING_EQUAL(mem, want);
	if (cg_manager_has_controller(m, "cpuset")) {
		_cleanup_free_ char *cs = cg_group_dir(c, "cpuset");
		_cleanup_free_ char *cpus = get(cs, "cpuset.cpus");
		CU_ASSERT(strlen(cpus) > 0);
	}

	/* The child lives in the container cgroup, beneath the pod's. */
	pid_t child = spawn_sleeper();
	r = cg_group_enter(c, child, &err);
	if (r < 0)
		fprintf(stderr, "\nenter: %s\n", husk_error_msg(&err));
	CU_ASSERT(r == 0);
	pid_t *pids = NULL;
	size_t n = 0;
	CU_ASSERT(cg_group_pids(g, &pids, &n, &err) == 0);
	CU_ASSERT(n == 1 && pids && pids[0] == child);
	free(pids);

	struct cg_resources res;
	cg_resources_init(&res);
	res.memory_limit = 64 << 20;
	res.cpu_shares = 512;
	res.cpu_period = 100000;
	res.cpu_quota = 50000;
	if (cg_manager_has_controller(m, "pids"))
		res.pids_limit = 50;
	r = cg_group_set(c, &res, &err);
	if (r < 0)
		fprintf(stderr, "\nset: %s\n", husk_error_msg(&err));
	CU_ASSERT(r == 0);
	struct cg_resources got;
	r = cg_group_get(c, &got, &err);
	CU_ASSERT(r == 0);
	if (r == 0) {
		CU_ASSERT_EQUAL(got.memory_limit, 64 << 20);
		CU_ASSERT_EQUAL(got.cpu_shares, 512);
		CU_ASSERT_EQUAL(got.cpu_quota, 50000);
		CU_ASSERT_EQUAL(got.cpu_period, 100000);
		if (cg_manager_has_controller(m, "pids"))
			CU_ASSERT_EQUAL(got.pids_limit, 50);
		cg_resources_clear(&got);
	}
	CHECK_FILE(mem, "memory.limit_in_bytes", "67108864");
	cg_resources_clear(&res);

	/* memsw must stay >= memory at every moment: raising both and
	 * lowering both need opposite write orders, and the kernel checks. */
	if (fs_exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")) {
		const int64_t steps[][2] = {{256 << 20, 512 << 20},
					    {32 << 20, 32 << 20},
					    {128 << 20, CG_MAX},
					    {16 << 20, 48 << 20}};
		for (size_t i = 0; i < ARRAY_SIZE(steps); i++) {
			res.memory_limit = steps[i][0];
			res.memory_swap_limit = steps[i][1];
			r = cg_group_set(c, &res, &err);
			if (r < 0)
				fprintf(stderr, "\nset step %zu: %s\n", i, husk_error_msg(&err));
			CU_ASSERT(r == 0);
			r = cg_group_get(c, &got, &err);
			CU_ASSERT(r == 0);
			if (r == 0) {
				CU_ASSERT_EQUAL(got.memory_limit, steps[i][0]);
				CU_ASSERT_EQUAL(got.memory_swap_limit, steps[i][1]);
				cg_resources_clear(&got);
			}
		}
		cg_resources_clear(&res);
	}

	/* The kernel refuses a cpu the machine lacks. */
	if (cg_manager_has_controller(m, "cpuset")) {
		res.cpuset_cpus = xstrdup("1000");
		CU_ASSERT_EQUAL(cg_group_set(c, &res, &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "cpuset.cpus"));
		CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'1000'"));
		cg_resources_clear(&res);
	}
	/* Hugepages where the host has no hugetlb hierarchy: refused. */
	if (!cg_manager_has_controller(m, "hugetlb")) {
		cg_resources_add_hugepage(&res, "2MB", 2 << 20);
		CU_ASSERT_EQUAL(cg_group_set(c, &res, &err), -EINVAL);
		cg_resources_clear(&res);
	}

	struct cg_stats s;
	CU_ASSERT(cg_group_stats(g, &s, &err) == 0);
	CU_ASSERT(s.valid & CG_STAT_MEMORY);
	CU_ASSERT(s.valid & CG_STAT_CPU);
	/* v1 does not move a process's charges with it: usage may be 0. */
	if (s.valid & CG_STAT_PIDS)
		CU_ASSERT_EQUAL(s.pids_current, 1);
	uint64_t ooms = 1;
	CU_ASSERT(cg_group_oom_kill_count(c, &ooms, &err) == 0);
	CU_ASSERT_EQUAL(ooms, 0);

	/* Removing a cgroup with a live process fails with EBUSY. */
	CU_ASSERT_EQUAL(cg_group_remove(c, &err), -EBUSY);

	/* Killing the pod reaches the container's process. */
	r = cg_group_kill(g, 5000, &err);
	if (r < 0)
		fprintf(stderr, "\nkill: %s\n", husk_error_msg(&err));
	CU_ASSERT(r == 0);
	int status = 0;
	if (r < 0)
		kill(child, SIGKILL);
	waitpid(child, &status, 0);
	CU_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	_cleanup_free_ char *fz = cg_group_dir(g, "freezer");
	if (fz) {
		_cleanup_free_ char *state = get(fz, "freezer.state");
		CU_ASSERT_STRING_EQUAL(state, "THAWED");
	}
	r = cg_group_remove(g, &err);
	if (r < 0)
		fprintf(stderr, "\nremove: %s\n", husk_error_msg(&err));
	CU_ASSERT(r == 0);
	const char *ctls[] = {"memory",	 "cpu",	    "cpuacct", "cpuset", "pids",
			      "freezer", "devices", "blkio",   "hugetlb"};
	for (size_t i = 0; i < ARRAY_SIZE(ctls); i++) {
		_cleanup_free_ char *dir = cg_group_dir(g, ctls[i]);
		if (dir)
			CU_ASSERT(!fs_exists(dir));
	}
	cg_group_free(c);
	cg_group_free(g);
	cg_manager_free(m);
}

/* Without the hugetlb controller (v1 and v2 alike): limits of 0 pass while
 * the pools of those sizes are empty (what the kubelet sends for every size
 * the kernel knows), anything else is refused naming the size. */
static void test_hugepages_without_controller(void)
{
	for (int version = 1; version <= 2; version++) {
		char *b = version == 1 ? layout_v1() : layout_v2("cpuset cpu io memory pids\n");
		if (version == 1) {
			_cleanup_free_ char *hug = xasprintf("%s/hugetlb", b);
			CU_ASSERT_EQUAL(fs_rm_rf(hug, NULL), 0);
		}
		_cleanup_free_ char *pools = xasprintf("%s-pools", b);
		mkdirs(pools, "hugepages-2048kB");
		mkdirs(pools, "hugepages-1048576kB");
		put(pools, "hugepages-2048kB/nr_hugepages", "0\n");
		put(pools, "hugepages-2048kB/nr_overcommit_hugepages", "0\n");
		put(pools, "hugepages-1048576kB/nr_hugepages", "0\n");
		put(pools, "hugepages-1048576kB/nr_overcommit_hugepages", "0\n");
		struct cg_options o = {.base = b, .hugepages_dir = pools};
		struct cg_manager *m = NULL;
		_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
		CU_ASSERT_FATAL(cg_manager_open(&o, &m, &err) == 0);
		CU_ASSERT(!cg_manager_has_controller(m, "hugetlb"));
		struct cg_group *g = create(m, "husk/h");
		struct cg_resources r;
		cg_resources_init(&r);
		cg_resources_add_hugepage(&r, "2MB", 0);
		cg_resources_add_hugepage(&r, "1GB", 0);
		cg_resources_add_hugepage(&r, "64KB", 0); /* no such pool: none to get */
		CU_ASSERT_EQUAL(set(g, &r, &err), 0);
		/* Pages in the pool (or overcommit allowed): 0 no longer holds. */
		put(pools, "hugepages-2048kB/nr_overcommit_hugepages", "4\n");
		CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "2MB=0"));
		CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "hugetlb controller"));
		husk_error_clear(&err);
		put(pools, "hugepages-2048kB/nr_overcommit_hugepages", "0\n");
		/* A real limit cannot be honoured at all. */
		cg_resources_clear(&r);
		cg_resources_add_hugepage(&r, "1GB", 1 << 30);
		CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "1GB=1073741824"));
		husk_error_clear(&err);
		cg_resources_clear(&r);
		cg_resources_add_hugepage(&r, "2MB", CG_MAX);
		CU_ASSERT_EQUAL(set(g, &r, &err), -EINVAL);
		husk_error_clear(&err);
		cg_resources_clear(&r);
		CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
		cg_group_free(g);
		cg_manager_free(m);
		fs_rm_rf(pools, NULL);
		rm_base(b);
	}
}

/* Device rules: v1 denies everything then allows each rule (one write
 * each: the emulated file keeps the last); an emulated v2 records the
 * rules its eBPF filter would allow (test_cgroup_bpf has the rest). */
static void test_devices(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	const struct cg_device_rule rules[] = {
	    {'c', -1, -1, "m"},
	    {'c', 1, 3, "rwm"},
	    {'b', 8, 0, "r"},
	};
	char *b = layout_v1();
	struct cg_manager *m = open_at(b, CG_DRIVER_CGROUPFS);
	struct cg_group *g = create(m, "husk/dev");
	_cleanup_free_ char *dir = cg_group_dir(g, "devices");
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, rules, ARRAY_SIZE(rules), &err), 0);
	CHECK_FILE(dir, "devices.deny", "a");
	CHECK_FILE(dir, "devices.allow", "b 8:0 r");
	const struct cg_device_rule bad[][1] = {
	    {{'x', 1, 3, "r"}}, {{'c', 1, 3, ""}}, {{'c', 1, 3, "rwx"}}, {{'c', -2, 3, "r"}}};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CU_ASSERT_EQUAL(cg_group_allow_devices(g, bad[i], 1, &err), -EINVAL);
		husk_error_clear(&err);
	}
	/* No devices controller on this host. */
	_cleanup_free_ char *devs = xasprintf("%s/devices", b);
	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	cg_group_free(g);
	cg_manager_free(m);
	CU_ASSERT_EQUAL(fs_rm_rf(devs, NULL), 0);
	m = open_at(b, CG_DRIVER_CGROUPFS);
	g = create(m, "husk/dev");
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, rules, ARRAY_SIZE(rules), &err), -EOPNOTSUPP);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);

	b = layout_v2("cpuset cpu io memory pids\n");
	m = open_at(b, CG_DRIVER_CGROUPFS);
	g = create(m, "husk/dev");
	CU_ASSERT_EQUAL(cg_group_allow_devices(g, rules, ARRAY_SIZE(rules), &err), 0);
	_cleanup_free_ char *v2dir = cg_group_dir(g, NULL);
	CHECK_FILE(v2dir, "devices.bpf", "c *:* m\nc 1:3 rwm\nb 8:0 r");
	CU_ASSERT_EQUAL(cg_group_remove(g, &err), 0);
	cg_group_free(g);
	cg_manager_free(m);
	rm_base(b);
}

/* ---- systemd unit properties ------------------------------------------ */

static const struct cg_unit_prop *find_prop(const struct cg_unit_prop *p, size_t n,
					    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(p[i].name, name))
			return &p[i];
	return NULL;
}

static void test_systemd_props(void)
{
	struct cg_resources r;
	cg_resources_init(&r);
	struct cg_unit_prop p[CG_UNIT_PROPS_MAX];
	size_t n = 99;
	/* Nothing set, no weight in force: no property. */
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V2, &r, 0, p, &n), 0);
	CU_ASSERT_EQUAL(n, 0);

	r.cpu_shares = 1024;
	r.memory_limit = 64 << 20;
	r.pids_limit = CG_MAX;
	/* v1: the weight in force is passed as BlockIOWeight. */
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V1, &r, 500, p, &n), 0);
	CU_ASSERT_EQUAL(find_prop(p, n, "CPUShares")->u64, 1024);
	CU_ASSERT_EQUAL(find_prop(p, n, "MemoryLimit")->u64, 64 << 20);
	CU_ASSERT_EQUAL(find_prop(p, n, "TasksMax")->u64, UINT64_MAX);
	CU_ASSERT_EQUAL(find_prop(p, n, "BlockIOWeight")->u64, 500);
	CU_ASSERT_PTR_NULL(find_prop(p, n, "IOWeight"));
	/* Out of v1's 10..1000: not passed. */
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V1, &r, 5000, p, &n), 0);
	CU_ASSERT_PTR_NULL(find_prop(p, n, "BlockIOWeight"));

	/* v2: IOWeight from the weight in force, overridden by io.weight. */
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V2, &r, 100, p, &n), 0);
	CU_ASSERT_EQUAL(find_prop(p, n, "IOWeight")->u64, 100);
	CU_ASSERT_PTR_NOT_NULL(find_prop(p, n, "CPUWeight"));
	CU_ASSERT_EQUAL(find_prop(p, n, "MemoryMax")->u64, 64 << 20);
	cg_resources_add_unified(&r, "io.weight", "default 250");
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V2, &r, 100, p, &n), 0);
	CU_ASSERT_EQUAL(find_prop(p, n, "IOWeight")->u64, 250);
	cg_resources_clear(&r);
	cg_resources_init(&r);
	cg_resources_add_unified(&r, "io.weight", "7000");
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V2, &r, 0, p, &n), 0);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(find_prop(p, n, "IOWeight")->u64, 7000);
	/* Per-device lines only, or out of range: no IOWeight. */
	cg_resources_clear(&r);
	cg_resources_init(&r);
	cg_resources_add_unified(&r, "io.weight", "8:0 200");
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V2, &r, 0, p, &n), 0);
	CU_ASSERT_EQUAL(n, 0);
	cg_resources_clear(&r);

	/* AllowedCPUs as a little-endian mask; a bad list is EINVAL. */
	cg_resources_init(&r);
	r.cpuset_cpus = xstrdup("0-1,9");
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V2, &r, 0, p, &n), 0);
	const struct cg_unit_prop *cpus = find_prop(p, n, "AllowedCPUs");
	CU_ASSERT_EQUAL(cpus->n_mask, 2);
	CU_ASSERT_EQUAL(cpus->mask[0], 0x03);
	CU_ASSERT_EQUAL(cpus->mask[1], 0x02);
	free(r.cpuset_cpus);
	r.cpuset_cpus = xstrdup("3-1");
	CU_ASSERT_EQUAL(cg_systemd_props(CG_V2, &r, 0, p, &n), -EINVAL);
	cg_resources_clear(&r);
}

int main(void)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	struct {
		const char *name;
		CU_TestFunc fn;
	} tests[] = {
	    {"detect v1 layout", test_detect_v1_layout},
	    {"detect v2 layout", test_detect_v2_layout},
	    {"detect nothing", test_detect_none},
	    {"detect from mountinfo", test_detect_mountinfo},
	    {"naming cgroupfs", test_naming_cgroupfs},
	    {"naming systemd", test_naming_systemd},
	    {"naming pod parent", test_naming_pod_parent},
	    {"cpuset of a level another creation made", test_cpuset_level_of_another},
	    {"create/remove v1", test_create_remove_v1},
	    {"create/remove v2", test_create_remove_v2},
	    {"set/get v1", test_set_get_v1},
	    {"set invalid", test_set_invalid},
	    {"set/get v2", test_set_get_v2},
	    {"shares to weight", test_shares_weight},
	    {"hugepages without the controller", test_hugepages_without_controller},
	    {"device rules", test_devices},
	    {"stats v1", test_stats_v1},
	    {"stats v2", test_stats_v2},
	    {"pids", test_pids},
	    {"kill v2", test_kill_v2},
	    {"kill v1", test_kill_v1},
	    {"real v1 hierarchy (root)", test_real_v1},
	    {"systemd unit properties", test_systemd_props},
	};
	CU_pSuite suite = CU_add_suite("cgroup", NULL, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
		CU_add_test(suite, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
