/* runtime/oci_cli.c and the parts of runtime/oci_spec.c huskd hands an OCI
 * runtime after create: the argv of a verb (--systemd-cgroup included),
 * the systemd cgroupsPath, exec's process.json, update's resources and
 * config.json rewritten after an update. */
#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "runtime/oci.h"
#include "unit.h"

static struct ctr_spec *oci_spec(bool systemd)
{
	struct ctr_spec *s = ctr_spec_new();
	s->id = xstrdup("c1");
	s->args = strv_append(xnew(char *, 1), "sleep");
	strv_free(s->env); /* ctr_spec_new's defaults */
	s->env = strv_append(xnew(char *, 1), "PATH=/bin");
	s->env = strv_append(s->env, "WHO=ctr");
	free(s->cwd);
	s->cwd = xstrdup("/work");
	s->uid = 1000;
	s->gid = 2000;
	s->no_new_privs = true;
	s->caps.bounding = s->caps.effective = s->caps.permitted = 1ULL << 0; /* CAP_CHOWN */
	s->apparmor_profile = xstrdup("husk-default");
	s->oci_path = xstrdup("/usr/sbin/runc");
	s->oci_root = xstrdup("/run/husk/runtimes/runc");
	s->oci_args = strv_append(xnew(char *, 1), "--debug");
	s->oci_systemd_cgroup = systemd;
	return s;
}

static char *joined(char **v)
{
	_cleanup_free_ char *s = xstrdup("");
	for (size_t i = 0; v[i]; i++) {
		char *n = xasprintf("%s%s%s", s, i ? " " : "", v[i]);
		free(s);
		s = n;
	}
	return steal_ptr(&s);
}

static void test_argv(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = oci_spec(false);
	const char *verb[] = {"update", "--resources", "-", "c1", NULL};
	_cleanup_strv_ char **v = ctr_oci_argv(s, "/x/log", verb);
	_cleanup_free_ char *j = joined(v);
	CU_ASSERT_STRING_EQUAL(j, "/usr/sbin/runc --debug --root /run/husk/runtimes/runc --log "
				  "/x/log update --resources - c1");
	_cleanup_(ctr_spec_freep) struct ctr_spec *sd = oci_spec(true);
	const char *del[] = {"delete", "--force", "c1", NULL};
	_cleanup_strv_ char **w = ctr_oci_argv(sd, NULL, del);
	_cleanup_free_ char *k = joined(w);
	/* Global options before the verb, as runc and crun parse them. */
	CU_ASSERT_STRING_EQUAL(k, "/usr/sbin/runc --debug --root /run/husk/runtimes/runc "
				  "--systemd-cgroup delete --force c1");
}

static void test_systemd_cgroups_path(void)
{
	const struct {
		const char *in, *want;
	} cases[] = {
	    {"/husk.slice/husk-kubepods.slice/husk-pod1.slice/husk-c1.scope",
	     "husk-pod1.slice:husk:c1"},
	    {"/p.slice/husk-abc123.scope", "p.slice:husk:abc123"},
	    /* Not the systemd driver's layout: kept as it is. */
	    {"/husk/pod1/c1", NULL},
	    {"/p.slice/other-c1.scope", NULL},
	    {"/p.slice/husk-.scope", NULL},
	    {"/husk-c1.scope", NULL},
	    {"/x/husk-c1.scope", NULL},
	    {"/x/.slice/husk-c1.scope", NULL},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_free_ char *got = ctr_oci_systemd_cgroups_path(cases[i].in);
		if (!cases[i].want) {
			CU_ASSERT_PTR_NULL(got);
			continue;
		}
		CU_ASSERT_PTR_NOT_NULL_FATAL(got);
		CU_ASSERT_STRING_EQUAL(got, cases[i].want);
	}
}

static void test_process_json(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = oci_spec(false);
	char *args[] = {"sh", "-c", "id", NULL};
	_cleanup_free_ char *text = ctr_oci_process(s, args, NULL, NULL, true, 33, 111);
	_cleanup_json_ yajl_val t = NULL;
	CU_ASSERT_EQUAL_FATAL(json_parse(text, strlen(text), "process", &t, NULL), 0);
	CU_ASSERT(YAJL_IS_TRUE(json_get(t, "terminal")));
	/* An exec's terminal is sized before its process runs. */
	yajl_val cs = json_get(t, "consoleSize");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cs);
	CU_ASSERT_EQUAL(json_get_int(cs, "height", -1), 33);
	CU_ASSERT_EQUAL(json_get_int(cs, "width", -1), 111);
	yajl_val a = json_get(t, "args");
	CU_ASSERT_EQUAL_FATAL(a->u.array.len, 3);
	CU_ASSERT_STRING_EQUAL(a->u.array.values[2]->u.string, "id");
	/* The container's env, cwd, user, caps, no_new_privs and profile. */
	CU_ASSERT_EQUAL(json_get(t, "env")->u.array.len, 2);
	CU_ASSERT_STRING_EQUAL(json_get_string(t, "cwd"), "/work");
	CU_ASSERT_EQUAL(json_get_int(json_get(t, "user"), "uid", -1), 1000);
	CU_ASSERT_EQUAL(json_get_int(json_get(t, "user"), "gid", -1), 2000);
	CU_ASSERT(YAJL_IS_TRUE(json_get(t, "noNewPrivileges")));
	CU_ASSERT_STRING_EQUAL(json_get_string(t, "apparmorProfile"), "husk-default");
	yajl_val eff = json_get(json_get(t, "capabilities"), "effective");
	CU_ASSERT_EQUAL_FATAL(eff->u.array.len, 1);
	CU_ASSERT_STRING_EQUAL(eff->u.array.values[0]->u.string, "CAP_CHOWN");
	CU_ASSERT_EQUAL(json_get(json_get(t, "capabilities"), "ambient")->u.array.len, 0);
	/* Overrides. */
	char *env[] = {"A=1", NULL};
	_cleanup_free_ char *text2 = ctr_oci_process(s, args, env, "/tmp", false, 33, 111);
	_cleanup_json_ yajl_val t2 = NULL;
	CU_ASSERT_EQUAL_FATAL(json_parse(text2, strlen(text2), "process", &t2, NULL), 0);
	CU_ASSERT(YAJL_IS_FALSE(json_get(t2, "terminal")));
	CU_ASSERT_PTR_NULL(json_get(t2, "consoleSize")); /* no terminal, no size */
	CU_ASSERT_EQUAL(json_get(t2, "env")->u.array.len, 1);
	CU_ASSERT_STRING_EQUAL(json_get_string(t2, "cwd"), "/tmp");
}

static void test_resources_and_rewrite(void)
{
	struct cg_resources r;
	cg_resources_init(&r);
	r.memory_limit = 96 << 20;
	r.cpu_quota = 20000;
	r.cpu_period = 100000;
	_cleanup_free_ char *text = ctr_oci_resources(&r);
	CU_ASSERT_STRING_EQUAL(text, "{\"memory\":{\"limit\":100663296},\"cpu\":{\"quota\":20000,"
				     "\"period\":100000}}");

	const char *config =
	    "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"args\":[\"sh\"]},"
	    "\"linux\":{\"cgroupsPath\":\"/p/c\",\"resources\":{\"devices\":[{\"allow\":false,"
	    "\"access\":\"rwm\"}],\"memory\":{\"limit\":67108864,\"swap\":134217728},"
	    "\"cpu\":{\"shares\":256}},\"sysctl\":{}}}";
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *out = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config_set_resources(config, strlen(config), &r, &out, &err),
			      0);
	CU_ASSERT_STRING_EQUAL(
	    out, "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"args\":[\"sh\"]},"
		 "\"linux\":{\"cgroupsPath\":\"/p/c\",\"resources\":{\"devices\":[{\"allow\":false,"
		 "\"access\":\"rwm\"}],\"memory\":{\"limit\":100663296,\"swap\":134217728},"
		 "\"cpu\":{\"shares\":256,\"quota\":20000,\"period\":100000}},\"sysctl\":{}}}");
	/* No resources yet: added. */
	const char *bare = "{\"linux\":{}}";
	_cleanup_free_ char *out2 = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config_set_resources(bare, strlen(bare), &r, &out2, &err), 0);
	CU_ASSERT_STRING_EQUAL(out2, "{\"linux\":{\"resources\":{\"memory\":{\"limit\":100663296},"
				     "\"cpu\":{\"quota\":20000,\"period\":100000}}}}");
	/* Not an OCI config. */
	_cleanup_free_ char *out3 = NULL;
	CU_ASSERT_EQUAL(ctr_oci_config_set_resources("[1]", 3, &r, &out3, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "config.json"));
	husk_error_clear(&err);
	CU_ASSERT(ctr_oci_config_set_resources("{", 1, &r, &out3, &err) < 0);
	husk_error_clear(&err);
}

static void test_userns_config(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = oci_spec(false);
	s->rootfs = xstrdup("/r/rootfs");
	s->state_dir = xstrdup("/s/containers/c1");
	s->hosts_path = xstrdup("/s/pods/p1/hosts");
	s->shm_path = xstrdup("/s/pods/p1/shm");
	s->mounts = xnew(struct ctr_mount, 2);
	s->mounts[0] = (struct ctr_mount){.destination = xstrdup("/data"),
					  .type = xstrdup("bind"),
					  .source = xstrdup("/host/data"),
					  .bind = true};
	s->mounts[1] = (struct ctr_mount){
	    .destination = xstrdup("/scratch"), .type = xstrdup("tmpfs"), .source = NULL};
	s->n_mounts = 2;
	const struct ctr_idmap map[] = {{0, 1 << 20, 65536}};
	struct ctr_oci_extra x = {.uid_map = map, .gid_map = map, .n_uid_map = 1, .n_gid_map = 1};
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *text = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config(s, &x, &text, &err), 0);
	_cleanup_json_ yajl_val t = NULL;
	CU_ASSERT_EQUAL_FATAL(json_parse(text, strlen(text), "config", &t, &err), 0);
	yajl_val um = json_get(json_get(t, "linux"), "uidMappings");
	CU_ASSERT_FATAL(YAJL_IS_ARRAY(um) && um->u.array.len == 1);
	CU_ASSERT_EQUAL(json_get_int(um->u.array.values[0], "hostID", 0), 1 << 20);
	CU_ASSERT_EQUAL(json_get_int(um->u.array.values[0], "size", 0), 65536);
	CU_ASSERT_PTR_NOT_NULL(json_get(json_get(t, "linux"), "gidMappings"));

	/* The runtime's bundle: bind mounts of the given sources read from
	 * their idmapped mounts; the rest, and every other key, as they were. */
	const char *from[] = {"/host/data", "/s/pods/p1/hosts", "/s/pods/p1/shm"};
	const char *to[] = {"/s/containers/c1/idmap/m0", "/s/containers/c1/idmap/hosts",
			    "/s/containers/c1/idmap/shm"};
	_cleanup_free_ char *out = NULL;
	CU_ASSERT_EQUAL_FATAL(
	    ctr_oci_config_bind_sources(text, strlen(text), from, to, 3, &out, &err), 0);
	_cleanup_json_ yajl_val b = NULL;
	CU_ASSERT_EQUAL_FATAL(json_parse(out, strlen(out), "bundle", &b, &err), 0);
	yajl_val mounts = json_get(b, "mounts");
	int seen = 0;
	for (size_t i = 0; i < mounts->u.array.len; i++) {
		const char *dst = json_get_string(mounts->u.array.values[i], "destination");
		const char *src = json_get_string(mounts->u.array.values[i], "source");
		if (streq(dst, "/data"))
			seen += streq(src, "/s/containers/c1/idmap/m0");
		else if (streq(dst, "/etc/hosts"))
			seen += streq(src, "/s/containers/c1/idmap/hosts");
		else if (streq(dst, "/dev/shm"))
			seen += streq(src, "/s/containers/c1/idmap/shm");
		else if (streq(dst, "/scratch"))
			seen += streq(src, "tmpfs");
		else if (streq(dst, "/proc"))
			seen += streq(src, "proc");
	}
	CU_ASSERT_EQUAL(seen, 5);
	CU_ASSERT_PTR_NOT_NULL(json_get(json_get(b, "linux"), "uidMappings"));
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(b, "root"), "path"), "/r/rootfs");
	/* A tmpfs whose source happens to be a listed path is not a bind. */
	const char *tricky = "{\"mounts\":[{\"destination\":\"/x\",\"type\":\"tmpfs\","
			     "\"source\":\"/host/data\"}]}";
	_cleanup_free_ char *out2 = NULL;
	CU_ASSERT_EQUAL_FATAL(
	    ctr_oci_config_bind_sources(tricky, strlen(tricky), from, to, 3, &out2, &err), 0);
	CU_ASSERT_STRING_EQUAL(out2, tricky);
	_cleanup_free_ char *out3 = NULL;
	CU_ASSERT_EQUAL(ctr_oci_config_bind_sources("[]", 2, from, to, 3, &out3, &err), -EINVAL);
	husk_error_clear(&err);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"argv", test_argv},
	    {"systemd cgroupsPath", test_systemd_cgroups_path},
	    {"exec process.json", test_process_json},
	    {"update resources and config.json", test_resources_and_rewrite},
	    {"user namespace in config.json", test_userns_config},
	};
	return unit_run("oci_run", tests, ARRAY_SIZE(tests));
}
