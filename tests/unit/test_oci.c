/* runtime/oci_spec.c: struct ctr_spec as an OCI config.json, checked field
 * by field and against the runtime-spec JSON schema (Debian's
 * golang-github-opencontainers-specs-dev, with python3-jsonschema). */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/json.h"
#include "runtime/oci.h"
#include "unit.h"

#define SCHEMA_DIR "/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema"

static const char *const validate_py =
    "import json, sys, jsonschema\n"
    "d = '" SCHEMA_DIR "'\n"
    "s = json.load(open(d + '/config-schema.json'))\n"
    "r = jsonschema.RefResolver(base_uri='file://' + d + '/', referrer=s)\n"
    "v = jsonschema.Draft4Validator(s, resolver=r)\n"
    "errs = list(v.iter_errors(json.load(open(sys.argv[1]))))\n"
    "for e in errs[:5]: print(list(e.path), e.message, file=sys.stderr)\n"
    "sys.exit(1 if errs else 0)\n";

/* 1: valid, 0: invalid, -1: no validator here. */
static int schema_valid(const char *text)
{
	if (access(SCHEMA_DIR "/config-schema.json", R_OK) < 0)
		return -1;
	char *dir = unit_tmpdir();
	unit_write(dir, "config.json", text);
	unit_write(dir, "v.py", validate_py);
	_cleanup_free_ char *py = xasprintf("%s/v.py", dir);
	_cleanup_free_ char *cfg = xasprintf("%s/config.json", dir);
	pid_t pid = fork();
	if (pid == 0) {
		execl("/usr/bin/python3", "python3", py, cfg, (char *)NULL);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	unit_rmdir(dir);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The validator is live: a config it must refuse is refused. */
static void test_validator_refuses(void)
{
	int v = schema_valid("{\"ociVersion\": 1, \"process\": {\"cwd\": \"/\"}}");
	if (v >= 0)
		CU_ASSERT_EQUAL(v, 0);
	v = schema_valid("{\"ociVersion\": \"1.0.2-dev\", \"linux\": {\"rootfsPropagation\": "
			 "\"rslave\"}}");
	if (v >= 0)
		CU_ASSERT_EQUAL(v, 0);
}

static struct ctr_spec *base_spec(void)
{
	struct ctr_spec *s = ctr_spec_new();
	s->id = xstrdup("c1");
	s->rootfs = xstrdup("/var/lib/husk/c1/rootfs");
	s->args = strv_append(xnew(char *, 1), "sh");
	s->env = strv_append(s->env, "PATH=/bin");
	s->ns[CTR_NS_NET].mode = CTR_NS_JOIN;
	s->ns[CTR_NS_NET].path = xstrdup("/run/husk/pods/p1/ns/net");
	s->hostname = xstrdup("web");
	return s;
}

static yajl_val gen(const struct ctr_spec *s, const struct ctr_oci_extra *x)
{
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *text = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config(s, x, &text, &err), 0);
	int v = schema_valid(text);
	if (v >= 0)
		CU_ASSERT_EQUAL(v, 1);
	yajl_val t = NULL;
	CU_ASSERT_EQUAL_FATAL(json_parse(text, strlen(text), "config", &t, &err), 0);
	return t;
}

static void test_default_spec(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = base_spec();
	_cleanup_json_ yajl_val t = gen(s, NULL);
	CU_ASSERT_STRING_EQUAL(json_get_string(t, "ociVersion"), CTR_OCI_VERSION);
	CU_ASSERT_STRING_EQUAL(json_get_string(t, "hostname"), "web");
	yajl_val linux = json_get(t, "linux");
	yajl_val ns = json_get(linux, "namespaces");
	bool net = false, mnt = false;
	for (size_t i = 0; i < ns->u.array.len; i++) {
		const char *type = json_get_string(ns->u.array.values[i], "type");
		const char *path = json_get_string(ns->u.array.values[i], "path");
		if (streq(type, "network"))
			net = path && streq(path, "/run/husk/pods/p1/ns/net");
		mnt |= streq(type, "mount") && !path;
		CU_ASSERT(!streq(type, "user")); /* host: left out */
	}
	CU_ASSERT(net && mnt);
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(linux, "seccomp"), "defaultAction"),
			       "SCMP_ACT_ERRNO");
	CU_ASSERT_EQUAL(json_get_int(json_get(linux, "seccomp"), "defaultErrnoRet", 0), EPERM);
	CU_ASSERT_STRING_EQUAL(json_get_string(linux, "rootfsPropagation"), "slave");
	CU_ASSERT_EQUAL(json_get(linux, "maskedPaths")->u.array.len, 10);
}

static void test_everything_set(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = base_spec();
	s->tty = true;
	s->uid = 1000;
	s->gid = 1000;
	s->additional_gids = xnew(uint32_t, 2);
	s->additional_gids[0] = 10;
	s->additional_gids[1] = 20;
	s->n_additional_gids = 2;
	s->no_new_privs = true;
	s->seccomp = LC_SECCOMP_UNCONFINED;
	s->apparmor_profile = xstrdup("husk-default");
	s->rlimits = xnew(struct ctr_rlimit, 1);
	s->rlimits[0] = (struct ctr_rlimit){RLIMIT_NOFILE, 1024, UINT64_MAX};
	s->n_rlimits = 1;
	s->has_oom_score_adj = true;
	s->oom_score_adj = -500;
	s->readonly_rootfs = true;
	s->ns[CTR_NS_USER].mode = CTR_NS_NEW;
	s->uid_map = xnew(struct ctr_idmap, 1);
	s->uid_map[0] = (struct ctr_idmap){0, 100000, 65536};
	s->n_uid_map = 1;
	s->gid_map = xnew(struct ctr_idmap, 1);
	s->gid_map[0] = (struct ctr_idmap){0, 100000, 65536};
	s->n_gid_map = 1;
	s->mounts = xnew(struct ctr_mount, 2);
	s->mounts[0] = (struct ctr_mount){.destination = xstrdup("/data"),
					  .source = xstrdup("/srv/data"),
					  .bind = true,
					  .recursive = true,
					  .flags = MS_RDONLY | MS_NOSUID,
					  .propagation = CTR_PROP_RSLAVE};
	s->mounts[1] = (struct ctr_mount){.destination = xstrdup("/scratch"),
					  .type = xstrdup("tmpfs"),
					  .source = xstrdup("tmpfs"),
					  .data = xstrdup("size=1m,mode=700")};
	s->n_mounts = 2;
	s->devices = xnew(struct ctr_device, 2);
	s->devices[0] = (struct ctr_device){.path = xstrdup("/dev/fuse"),
					    .type = 'c',
					    .major = 10,
					    .minor = 229,
					    .file_mode = 0666};
	s->devices[1] =
	    (struct ctr_device){.path = xstrdup("/dev/fifo"), .type = 'p', .file_mode = 0600};
	s->n_devices = 2;
	s->sysctls = xnew(struct ctr_sysctl, 1);
	s->sysctls[0] = (struct ctr_sysctl){xstrdup("net.ipv4.ping_group_range"), xstrdup("0 0")};
	s->n_sysctls = 1;
	strv_free(s->masked_paths);
	s->masked_paths = xnew(char *, 1);
	s->shm_path = xstrdup("/run/husk/pods/p1/shm");
	s->hosts_path = xstrdup("/run/husk/pods/p1/hosts");

	struct cg_resources res;
	cg_resources_init(&res);
	res.memory_limit = 64 << 20;
	res.memory_swap_limit = CG_MAX;
	res.cpu_shares = 512;
	res.cpu_quota = CG_MAX;
	res.cpu_period = 100000;
	res.pids_limit = 77;
	static const struct cg_device_rule rules[] = {{'c', 1, 3, "rwm"}, {'c', 136, -1, "rw"}};
	static const struct ctr_oci_kv ann[] = {{"io.kubernetes.cri.container-type", "container"},
						{"a", "b"}};
	struct ctr_oci_extra x = {
	    .cgroups_path = "/husk/p1/c1",
	    .resources = &res,
	    .device_rules = rules,
	    .n_device_rules = 2,
	    .annotations = ann,
	    .n_annotations = 2,
	};
	_cleanup_json_ yajl_val t = gen(s, &x);
	yajl_val p = json_get(t, "process");
	CU_ASSERT(YAJL_IS_TRUE(json_get(p, "terminal")));
	CU_ASSERT(YAJL_IS_TRUE(json_get(p, "noNewPrivileges")));
	CU_ASSERT_EQUAL(json_get_int(json_get(p, "user"), "uid", -1), 1000);
	CU_ASSERT_EQUAL(json_get(json_get(p, "user"), "additionalGids")->u.array.len, 2);
	CU_ASSERT_STRING_EQUAL(json_get_string(p, "apparmorProfile"), "husk-default");
	CU_ASSERT_EQUAL(json_get_int(p, "oomScoreAdj", 0), -500);
	yajl_val rl = json_get(p, "rlimits")->u.array.values[0];
	CU_ASSERT_STRING_EQUAL(json_get_string(rl, "type"), "RLIMIT_NOFILE");
	CU_ASSERT_STRING_EQUAL(json_get(rl, "hard")->u.number.r, "18446744073709551615");
	CU_ASSERT(YAJL_IS_TRUE(json_get(json_get(t, "root"), "readonly")));
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(t, "annotations"), "a"), "b");
	yajl_val linux = json_get(t, "linux");
	CU_ASSERT_STRING_EQUAL(json_get_string(linux, "cgroupsPath"), "/husk/p1/c1");
	CU_ASSERT_PTR_NULL(json_get(linux, "seccomp"));
	CU_ASSERT_EQUAL(json_get(linux, "maskedPaths")->u.array.len, 0);
	CU_ASSERT_EQUAL(json_get(linux, "uidMappings")->u.array.len, 1);
	CU_ASSERT_STRING_EQUAL(
	    json_get_string(json_get(linux, "sysctl"), "net.ipv4.ping_group_range"), "0 0");
	yajl_val r = json_get(linux, "resources");
	CU_ASSERT_EQUAL(json_get_int(json_get(r, "memory"), "limit", 0), 64 << 20);
	CU_ASSERT_EQUAL(json_get_int(json_get(r, "memory"), "swap", 0), -1);
	CU_ASSERT_EQUAL(json_get_int(json_get(r, "cpu"), "quota", 0), -1);
	CU_ASSERT_EQUAL(json_get_int(json_get(r, "pids"), "limit", 0), 77);
	yajl_val devs = json_get(r, "devices");
	CU_ASSERT_EQUAL(devs->u.array.len, 3); /* deny all, then the two */
	CU_ASSERT(YAJL_IS_FALSE(json_get(devs->u.array.values[0], "allow")));
	CU_ASSERT_PTR_NULL(json_get(devs->u.array.values[2], "minor")); /* any */
	/* /proc .. /sys/fs/cgroup, /etc/hosts, then the spec's two. */
	yajl_val mounts = json_get(t, "mounts");
	CU_ASSERT_EQUAL(mounts->u.array.len, 10);
	yajl_val shm = mounts->u.array.values[3];
	CU_ASSERT_STRING_EQUAL(json_get_string(shm, "source"), "/run/husk/pods/p1/shm");
	yajl_val data = mounts->u.array.values[8];
	CU_ASSERT_STRING_EQUAL(json_get_string(data, "destination"), "/data");
	yajl_val o = json_get(data, "options");
	CU_ASSERT_EQUAL(o->u.array.len, 4); /* rbind ro nosuid rslave */
	CU_ASSERT_STRING_EQUAL(o->u.array.values[0]->u.string, "rbind");
	CU_ASSERT_STRING_EQUAL(o->u.array.values[3]->u.string, "rslave");
}

static void test_localhost_profile(void)
{
	char *dir = unit_tmpdir();
	unit_write(
	    dir, "p.json",
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"mkdir\"], "
	    "\"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13}, {\"names\": [\"ptrace\"], "
	    "\"action\": \"SCMP_ACT_KILL_PROCESS\", \"includes\": {\"caps\": "
	    "[\"CAP_SYS_PTRACE\"]}}]}");
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = base_spec();
	s->seccomp = LC_SECCOMP_LOCALHOST;
	s->seccomp_profile = xasprintf("%s/p.json", dir);
	{
		_cleanup_json_ yajl_val t = gen(s, NULL);
		yajl_val sc = json_get(json_get(t, "linux"), "seccomp");
		CU_ASSERT_STRING_EQUAL(json_get_string(sc, "defaultAction"), "SCMP_ACT_ALLOW");
		/* The ptrace rule needs CAP_SYS_PTRACE, not in the default set. */
		yajl_val calls = json_get(sc, "syscalls");
		CU_ASSERT_EQUAL_FATAL(calls->u.array.len, 1);
		CU_ASSERT_EQUAL(json_get_int(calls->u.array.values[0], "errnoRet", 0), 13);
	}
	free(s->seccomp_profile);
	s->seccomp_profile = xasprintf("%s/missing.json", dir);
	struct husk_error err = HUSK_ERROR_INIT;
	char *text = NULL;
	CU_ASSERT_EQUAL(ctr_oci_config(s, NULL, &text, &err), -ENOENT);
	CU_ASSERT_PTR_NULL(text);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "missing.json"));
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* A host-network pod's container shares the host's UTS namespace: no
 * hostname (runc refuses one without a private UTS namespace). */
static void test_host_uts_has_no_hostname(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = base_spec();
	s->ns[CTR_NS_UTS].mode = CTR_NS_HOST;
	_cleanup_json_ yajl_val t = gen(s, NULL);
	CU_ASSERT_PTR_NULL(json_get(t, "hostname"));
	s->ns[CTR_NS_UTS].mode = CTR_NS_JOIN;
	s->ns[CTR_NS_UTS].path = xstrdup("/run/husk/pods/p1/ns/uts");
	_cleanup_json_ yajl_val j = gen(s, NULL);
	CU_ASSERT_STRING_EQUAL(json_get_string(j, "hostname"), "web");
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"the validator refuses", test_validator_refuses},
	    {"default spec", test_default_spec},
	    {"everything set", test_everything_set},
	    {"localhost profile", test_localhost_profile},
	    {"host UTS: no hostname", test_host_uts_has_no_hostname},
	};
	return unit_run("oci", tests, ARRAY_SIZE(tests));
}
