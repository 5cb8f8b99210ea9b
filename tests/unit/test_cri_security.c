/* CUnit tests of server/security: CRI security contexts and resources
 * turned into the runtime's structs, called directly on protobuf-c
 * messages (the rules CRI sets for runtimes, the masked-path semantics,
 * refusals that name the field, and pod resources plus overhead). */
#include <errno.h>
#include <string.h>

#include "runtime/launcher/launcher.h"
#include "server/security.h"
#include "unit.h"

static Runtime__V1__LinuxContainerSecurityContext new_sc(void)
{
	return (Runtime__V1__LinuxContainerSecurityContext)
	    RUNTIME__V1__LINUX_CONTAINER_SECURITY_CONTEXT__INIT;
}

static const struct lc_lsm no_lsm = {0};

static int translate(const Runtime__V1__LinuxContainerSecurityContext *sc, struct rt_ctr_config *rc,
		     struct srv_ctr_security *h, struct husk_error *err)
{
	*rc = (struct rt_ctr_config){0};
	srv_ctr_security_clear(h);
	husk_error_clear(err);
	return srv_ctr_security_from_cri(sc, &no_lsm, POD_NS_POD, POD_NS_POD, rc, h, err);
}

static void test_no_context(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(srv_ctr_security_clear) struct srv_ctr_security h = {0};
	struct rt_ctr_config rc;
	CU_ASSERT_EQUAL(translate(NULL, &rc, &h, &err), 0);
	/* The defaults: masked paths NULL (runc's lists), unconfined, own PID
	 * namespace. */
	CU_ASSERT_PTR_NULL(rc.masked_paths);
	CU_ASSERT_PTR_NULL(rc.readonly_paths);
	CU_ASSERT_EQUAL(rc.seccomp_mode, LC_SECCOMP_UNCONFINED);
	CU_ASSERT_EQUAL(rc.pid_mode, POD_NS_CONTAINER);
	CU_ASSERT_FALSE(rc.privileged);
}

static void test_paths_users_caps(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(srv_ctr_security_clear) struct srv_ctr_security h = {0};
	struct rt_ctr_config rc;
	Runtime__V1__LinuxContainerSecurityContext sc = new_sc();
	/* A context without lists: none (the kubelet's Unmasked). */
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rc.masked_paths);
	CU_ASSERT_PTR_NULL(rc.masked_paths[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(rc.readonly_paths);
	CU_ASSERT_PTR_NULL(rc.readonly_paths[0]);
	char *masked[] = {"/proc/kcore"};
	sc.masked_paths = masked;
	sc.n_masked_paths = 1;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_STRING_EQUAL(rc.masked_paths[0], "/proc/kcore");
	CU_ASSERT_PTR_NULL(rc.readonly_paths[0]);

	/* Users. */
	Runtime__V1__Int64Value uid = RUNTIME__V1__INT64_VALUE__INIT, gid = uid;
	uid.value = 1000;
	gid.value = 3000;
	sc.run_as_group = &gid;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "run_as_group needs run_as_user"));
	sc.run_as_user = &uid;
	sc.supplemental_groups_policy = RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_TRUE(rc.has_uid && rc.uid == 1000 && rc.has_gid && rc.gid == 3000);
	CU_ASSERT_TRUE(rc.groups_strict);
	sc.run_as_username = "app";
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	sc.run_as_username = "";
	uid.value = -1;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "run_as_user -1"));
	uid.value = 1000;
	sc.supplemental_groups_policy = 7;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	sc.supplemental_groups_policy = 0;

	/* Capabilities are passed on (the runtime checks the names). */
	Runtime__V1__Capability caps = RUNTIME__V1__CAPABILITY__INIT;
	char *add[] = {"NET_ADMIN"}, *amb[] = {"NET_BIND_SERVICE"};
	caps.add_capabilities = add;
	caps.n_add_capabilities = 1;
	caps.add_ambient_capabilities = amb;
	caps.n_add_ambient_capabilities = 1;
	sc.capabilities = &caps;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_STRING_EQUAL(rc.caps_add[0], "NET_ADMIN");
	CU_ASSERT_PTR_NULL(rc.caps_drop[0]);
	CU_ASSERT_STRING_EQUAL(rc.caps_ambient[0], "NET_BIND_SERVICE");
}

static void test_seccomp_apparmor_selinux(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(srv_ctr_security_clear) struct srv_ctr_security h = {0};
	struct rt_ctr_config rc;
	Runtime__V1__LinuxContainerSecurityContext sc = new_sc();
	Runtime__V1__SecurityProfile p = RUNTIME__V1__SECURITY_PROFILE__INIT;
	sc.seccomp = &p;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_EQUAL(rc.seccomp_mode, LC_SECCOMP_RUNTIME_DEFAULT);
	p.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	p.localhost_ref = "/nonexistent/p.json";
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'/nonexistent/p.json' does not exist"));
	p.localhost_ref = "rel.json";
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	/* Privileged: nothing asked for seccomp matters. */
	sc.privileged = true;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	sc.privileged = false;
	/* The deprecated string when there is no SecurityProfile. */
	char *dir = unit_tmpdir();
	unit_write(dir, "p.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}");
	_cleanup_free_ char *path = xasprintf("localhost/%s/p.json", dir);
	sc.seccomp = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	sc.seccomp_profile_path = path;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_EQUAL(rc.seccomp_mode, LC_SECCOMP_LOCALHOST);
	CU_ASSERT_STRING_EQUAL(rc.seccomp_profile, path + strlen("localhost/"));
	sc.seccomp_profile_path = "runtime/default";
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_EQUAL(rc.seccomp_mode, LC_SECCOMP_RUNTIME_DEFAULT);
	sc.seccomp_profile_path = "";
	/* AppArmor without AppArmor: default fine, Localhost refused. */
	sc.apparmor_profile = "localhost/x";
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "security_context.apparmor_profile"));
	sc.apparmor_profile = "";
#pragma GCC diagnostic pop
	Runtime__V1__SecurityProfile aa = RUNTIME__V1__SECURITY_PROFILE__INIT;
	sc.apparmor = &aa;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_PTR_NULL(rc.apparmor_profile);
	Runtime__V1__SELinuxOption se = RUNTIME__V1__SELINUX_OPTION__INIT;
	sc.selinux_options = &se;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	se.role = "system_r";
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EBUSY);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "selinux_options.role"));
	unit_rmdir(dir);
}

static void test_namespaces(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(srv_ctr_security_clear) struct srv_ctr_security h = {0};
	struct rt_ctr_config rc = {0};
	Runtime__V1__LinuxContainerSecurityContext sc = new_sc();
	Runtime__V1__NamespaceOption no = RUNTIME__V1__NAMESPACE_OPTION__INIT;
	sc.namespace_options = &no;
	no.pid = RUNTIME__V1__NAMESPACE_MODE__TARGET;
	no.target_id = "abc";
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), 0);
	CU_ASSERT_EQUAL(rc.pid_mode, POD_NS_TARGET);
	CU_ASSERT_STRING_EQUAL(rc.pid_target, "abc");
	no.network = RUNTIME__V1__NAMESPACE_MODE__NODE;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "namespace_options.network NODE"));
	/* NODE is right for a host-network pod. */
	husk_error_clear(&err);
	srv_ctr_security_clear(&h);
	CU_ASSERT_EQUAL(
	    srv_ctr_security_from_cri(&sc, &no_lsm, POD_NS_NODE, POD_NS_POD, &rc, &h, &err), 0);
	no.network = RUNTIME__V1__NAMESPACE_MODE__POD;
	no.ipc = RUNTIME__V1__NAMESPACE_MODE__CONTAINER;
	CU_ASSERT_EQUAL(translate(&sc, &rc, &h, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "namespace_options.ipc CONTAINER"));
}

static Runtime__V1__LinuxContainerResources new_res(void)
{
	return (Runtime__V1__LinuxContainerResources)RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT;
}

static void test_resources(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	Runtime__V1__LinuxContainerResources r = new_res();
	Runtime__V1__HugepageLimit h = RUNTIME__V1__HUGEPAGE_LIMIT__INIT;
	Runtime__V1__HugepageLimit *hp[] = {&h};
	h.page_size = "2MB";
	h.limit = UINT64_MAX;
	r.hugepage_limits = hp;
	r.n_hugepage_limits = 1;
	r.cpu_quota = -1;
	r.memory_limit_in_bytes = 100;
	r.oom_score_adj = -999;
	struct cg_resources c;
	int oom = 0;
	CU_ASSERT_EQUAL(srv_resources_from_cri(&r, &c, &oom, &err), 0);
	CU_ASSERT_EQUAL(c.cpu_quota, CG_MAX);
	CU_ASSERT_EQUAL(c.cpu_period, CG_UNSET); /* 0 is unset */
	CU_ASSERT_EQUAL(c.cpu_shares, CG_UNSET);
	CU_ASSERT_EQUAL(c.memory_limit, 100);
	CU_ASSERT_EQUAL(c.hugepages[0].limit, CG_MAX);
	CU_ASSERT_EQUAL(oom, -999);
	cg_resources_clear(&c);
	r.oom_score_adj = 1001;
	CU_ASSERT_EQUAL(srv_resources_from_cri(&r, &c, &oom, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "oom_score_adj 1001"));
	cg_resources_clear(&c);
}

static void test_pod_resources(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	Runtime__V1__LinuxContainerResources r = new_res(), o = new_res();
	r.cpu_period = 100000;
	r.cpu_quota = 100000;
	r.cpu_shares = 1024;
	r.memory_limit_in_bytes = 128 << 20;
	r.memory_swap_limit_in_bytes = 128 << 20;
	r.cpuset_cpus = "0-1";
	o.cpu_period = 50000; /* its quota is per this period */
	o.cpu_quota = 5000;
	o.cpu_shares = 100;
	o.memory_limit_in_bytes = 16 << 20;
	struct cg_resources c;
	bool any = false;
	CU_ASSERT_EQUAL(srv_pod_resources_from_cri(&r, &o, &c, &any, &err), 0);
	CU_ASSERT_TRUE(any);
	CU_ASSERT_EQUAL(c.cpu_shares, 1124);
	CU_ASSERT_EQUAL(c.cpu_period, 100000);
	CU_ASSERT_EQUAL(c.cpu_quota, 110000);
	CU_ASSERT_EQUAL(c.memory_limit, 144 << 20);
	CU_ASSERT_EQUAL(c.memory_swap_limit, 144 << 20);
	CU_ASSERT_STRING_EQUAL(c.cpuset_cpus, "0-1");
	cg_resources_clear(&c);
	/* Containers without limits: the overhead alone limits nothing. */
	r = new_res();
	r.cpu_shares = 2;
	CU_ASSERT_EQUAL(srv_pod_resources_from_cri(&r, &o, &c, &any, &err), 0);
	CU_ASSERT_EQUAL(c.cpu_shares, 102);
	CU_ASSERT_EQUAL(c.cpu_quota, CG_UNSET);
	CU_ASSERT_EQUAL(c.memory_limit, CG_UNSET);
	cg_resources_clear(&c);
	/* Shares are capped at the kernel's maximum. */
	r.cpu_shares = 262144;
	CU_ASSERT_EQUAL(srv_pod_resources_from_cri(&r, &o, &c, &any, &err), 0);
	CU_ASSERT_EQUAL(c.cpu_shares, 262144);
	cg_resources_clear(&c);
	/* Nothing at all. */
	CU_ASSERT_EQUAL(srv_pod_resources_from_cri(NULL, NULL, &c, &any, &err), 0);
	CU_ASSERT_FALSE(any);
	cg_resources_clear(&c);
	/* Errors say which of the two. */
	o.cpu_period = -1;
	CU_ASSERT_EQUAL(srv_pod_resources_from_cri(&r, &o, &c, &any, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "overhead: linux.resources.cpu_period"));
	cg_resources_clear(&c);
}

static void test_pod_security(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	Runtime__V1__LinuxSandboxSecurityContext sc =
	    RUNTIME__V1__LINUX_SANDBOX_SECURITY_CONTEXT__INIT;
	bool priv = true;
	CU_ASSERT_EQUAL(srv_pod_security_from_cri(NULL, &no_lsm, &priv, &err), 0);
	CU_ASSERT_FALSE(priv);
	sc.privileged = true;
	CU_ASSERT_EQUAL(srv_pod_security_from_cri(&sc, &no_lsm, &priv, &err), 0);
	CU_ASSERT_TRUE(priv);
	Runtime__V1__Int64Value g = RUNTIME__V1__INT64_VALUE__INIT;
	sc.run_as_group = &g;
	CU_ASSERT_EQUAL(srv_pod_security_from_cri(&sc, &no_lsm, &priv, &err), -EINVAL);
	husk_error_clear(&err);
	sc.run_as_group = NULL;
	sc.privileged = false;
	char *dir = unit_tmpdir();
	unit_write(dir, "bad.json", "{\"defaultAction\": 12}");
	_cleanup_free_ char *bad = xasprintf("%s/bad.json", dir);
	Runtime__V1__SecurityProfile p = RUNTIME__V1__SECURITY_PROFILE__INIT;
	p.profile_type = RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost;
	p.localhost_ref = bad;
	sc.seccomp = &p;
	CU_ASSERT_EQUAL(srv_pod_security_from_cri(&sc, &no_lsm, &priv, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, bad));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "defaultAction"));
	unit_rmdir(dir);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"no security context", test_no_context},
	    {"paths, users, capabilities", test_paths_users_caps},
	    {"seccomp, AppArmor, SELinux", test_seccomp_apparmor_selinux},
	    {"namespace modes", test_namespaces},
	    {"container resources", test_resources},
	    {"pod resources and overhead", test_pod_resources},
	    {"pod security context", test_pod_security},
	};
	return unit_run("cri security", tests, ARRAY_SIZE(tests));
}
