/* CUnit tests of the launcher's pure parts: the spec file (defaults, round
 * trip, errors), capability names and the CRI add/drop rules, mount
 * options, rlimit names, and resolving paths inside a root (both openat2
 * and the fallback walk) against symlinks that try to escape. No root. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/launcher/internal.h"
#include "runtime/launcher/launcher.h"
#include "unit.h"

static struct ctr_spec *parse(const char *json, struct husk_error *err)
{
	struct ctr_spec *s = NULL;
	if (ctr_spec_from_json(json, strlen(json), "t.json", &s, err) < 0)
		return NULL;
	return s;
}

#define MINIMAL "\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\"]}"

static void test_spec_defaults(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = parse("{" MINIMAL "}", &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s->rootfs, "/r");
	CU_ASSERT_STRING_EQUAL(s->cwd, "/");
	CU_ASSERT_EQUAL(s->caps.bounding, LC_CAPS_DEFAULT);
	CU_ASSERT_EQUAL(s->caps.effective, LC_CAPS_DEFAULT);
	CU_ASSERT_EQUAL(s->caps.inheritable, 0);
	CU_ASSERT_EQUAL(s->seccomp, LC_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_MNT].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_PID].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_NET].mode, CTR_NS_HOST);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_USER].mode, CTR_NS_HOST);
	CU_ASSERT_PTR_NULL(s->masked_paths);
	CU_ASSERT_PTR_NULL(s->readonly_paths);
	CU_ASSERT_FALSE(s->has_oom_score_adj);
	CU_ASSERT_EQUAL(strv_length((char **)ctr_default_masked_paths), 10);
	CU_ASSERT_EQUAL(strv_length((char **)ctr_default_readonly_paths), 6);
}

static const char *full_spec =
    "{\"version\": 1, \"id\": \"web\","
    " \"root\": {\"path\": \"/var/lib/husk/c/rootfs\", \"readonly\": true,"
    "   \"propagation\": \"rslave\"},"
    " \"process\": {\"args\": [\"sh\", \"-c\", \"echo hi\"], \"env\": [\"PATH=/bin\", \"A=b c\"],"
    "   \"cwd\": \"/work\", \"user\": {\"uid\": 1000, \"gid\": 100, \"additional_gids\": [10, 20]},"
    "   \"tty\": true, \"stdin\": true, \"stdin_once\": true, \"no_new_privs\": true,"
    "   \"capabilities\": {\"bounding\": [\"CAP_CHOWN\", \"net_raw\"], \"effective\": [\"KILL\"],"
    "     \"permitted\": [\"CAP_KILL\"], \"inheritable\": [], \"ambient\": [\"CAP_KILL\"]},"
    "   \"seccomp\": {\"mode\": \"localhost\", \"profile\": \"/p.json\", \"filter\": \"/f.bpf\"},"
    "   \"apparmor_profile\": \"my-prof\","
    "   \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1024, \"hard\": 4096},"
    "                 {\"type\": \"core\", \"soft\": 18446744073709551615,"
    "                  \"hard\": 18446744073709551615}],"
    "   \"oom_score_adj\": -500},"
    " \"hostname\": \"web-1\","
    " \"namespaces\": {\"net\": {\"path\": \"/run/husk/pods/p/ns/net\"}, \"ipc\": \"host\","
    "   \"user\": \"new\"},"
    " \"uid_mappings\": [{\"container_id\": 0, \"host_id\": 100000, \"size\": 65536}],"
    " \"gid_mappings\": [{\"container_id\": 0, \"host_id\": 100000, \"size\": 65536}],"
    " \"mounts\": [{\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv/d\","
    "   \"options\": [\"rbind\", \"ro\", \"nosuid\", \"rslave\"]},"
    "   {\"destination\": \"/scratch\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
    "    \"options\": [\"nodev\", \"size=1m\", \"mode=700\"]}],"
    " \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229,"
    "   \"file_mode\": 438, \"uid\": 0, \"gid\": 0}],"
    " \"masked_paths\": [], \"readonly_paths\": [\"/proc/sys\"],"
    " \"sysctls\": {\"net.ipv4.ping_group_range\": \"0 0\"},"
    " \"cgroup_procs\": [\"/sys/fs/cgroup/pids/husk/c/cgroup.procs\"],"
    " \"privileged\": false,"
    " \"pod_files\": {\"shm\": \"/run/husk/pods/p/shm\", \"hosts\": \"/run/husk/pods/p/hosts\"},"
    " \"shim\": {\"state_dir\": \"/run/husk/c/web\", \"log_path\": \"/var/log/pods/x/0.log\","
    "   \"oom_file\": \"/sys/fs/cgroup/memory/x/memory.oom_control\"},"
    " \"future_field\": {\"ignored\": true}}";

static void check_full(const struct ctr_spec *s)
{
	CU_ASSERT_STRING_EQUAL(s->id, "web");
	CU_ASSERT_TRUE(s->readonly_rootfs);
	CU_ASSERT_EQUAL(s->rootfs_propagation, CTR_PROP_RSLAVE);
	CU_ASSERT_EQUAL(strv_length(s->args), 3);
	CU_ASSERT_STRING_EQUAL(s->env[1], "A=b c");
	CU_ASSERT_STRING_EQUAL(s->cwd, "/work");
	CU_ASSERT_EQUAL(s->uid, 1000);
	CU_ASSERT_EQUAL(s->gid, 100);
	CU_ASSERT_EQUAL_FATAL(s->n_additional_gids, 2);
	CU_ASSERT_EQUAL(s->additional_gids[1], 20);
	CU_ASSERT_TRUE(s->tty && s->stdin_open && s->stdin_once && s->no_new_privs);
	CU_ASSERT_EQUAL(s->caps.bounding, LC_CAP_BIT(0) | LC_CAP_BIT(13));
	CU_ASSERT_EQUAL(s->caps.effective, LC_CAP_BIT(5));
	CU_ASSERT_EQUAL(s->caps.ambient, LC_CAP_BIT(5));
	CU_ASSERT_EQUAL(s->caps.inheritable, 0);
	CU_ASSERT_EQUAL(s->seccomp, LC_SECCOMP_LOCALHOST);
	CU_ASSERT_STRING_EQUAL(s->seccomp_profile, "/p.json");
	CU_ASSERT_STRING_EQUAL(s->seccomp_filter, "/f.bpf");
	CU_ASSERT_STRING_EQUAL(s->apparmor_profile, "my-prof");
	CU_ASSERT_EQUAL_FATAL(s->n_rlimits, 2);
	CU_ASSERT_EQUAL(s->rlimits[0].resource, RLIMIT_NOFILE);
	CU_ASSERT_EQUAL(s->rlimits[0].hard, 4096);
	CU_ASSERT_EQUAL(s->rlimits[1].resource, RLIMIT_CORE);
	CU_ASSERT_EQUAL(s->rlimits[1].soft, UINT64_MAX);
	CU_ASSERT_TRUE(s->has_oom_score_adj);
	CU_ASSERT_EQUAL(s->oom_score_adj, -500);
	CU_ASSERT_STRING_EQUAL(s->hostname, "web-1");
	CU_ASSERT_EQUAL(s->ns[CTR_NS_NET].mode, CTR_NS_JOIN);
	CU_ASSERT_STRING_EQUAL(s->ns[CTR_NS_NET].path, "/run/husk/pods/p/ns/net");
	CU_ASSERT_EQUAL(s->ns[CTR_NS_IPC].mode, CTR_NS_HOST);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_USER].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_UTS].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL_FATAL(s->n_uid_map, 1);
	CU_ASSERT_EQUAL(s->uid_map[0].host_id, 100000);
	CU_ASSERT_EQUAL_FATAL(s->n_mounts, 2);
	const struct ctr_mount *m = &s->mounts[0];
	CU_ASSERT_STRING_EQUAL(m->destination, "/data");
	CU_ASSERT_TRUE(m->bind && m->recursive);
	CU_ASSERT_EQUAL(m->flags, MS_RDONLY | MS_NOSUID);
	CU_ASSERT_EQUAL(m->propagation, CTR_PROP_RSLAVE);
	m = &s->mounts[1];
	CU_ASSERT_FALSE(m->bind);
	CU_ASSERT_STRING_EQUAL(m->type, "tmpfs");
	CU_ASSERT_EQUAL(m->flags, MS_NODEV);
	CU_ASSERT_STRING_EQUAL(m->data, "size=1m,mode=700");
	CU_ASSERT_EQUAL_FATAL(s->n_devices, 1);
	CU_ASSERT_EQUAL(s->devices[0].type, 'c');
	CU_ASSERT_EQUAL(s->devices[0].minor, 229);
	CU_ASSERT_EQUAL(s->devices[0].file_mode, 0666);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s->masked_paths);
	CU_ASSERT_EQUAL(strv_length(s->masked_paths), 0);
	CU_ASSERT_EQUAL(strv_length(s->readonly_paths), 1);
	CU_ASSERT_EQUAL_FATAL(s->n_sysctls, 1);
	CU_ASSERT_STRING_EQUAL(s->sysctls[0].value, "0 0");
	CU_ASSERT_EQUAL(strv_length(s->cgroup_procs), 1);
	CU_ASSERT_STRING_EQUAL(s->shm_path, "/run/husk/pods/p/shm");
	CU_ASSERT_PTR_NULL(s->resolv_path);
	CU_ASSERT_STRING_EQUAL(s->state_dir, "/run/husk/c/web");
	CU_ASSERT_STRING_EQUAL(s->oom_file, "/sys/fs/cgroup/memory/x/memory.oom_control");
}

static void test_spec_full_roundtrip(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = parse(full_spec, &err);
	if (!s)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	check_full(s);
	_cleanup_free_ char *json = ctr_spec_to_json(s);
	_cleanup_(ctr_spec_freep) struct ctr_spec *s2 = parse(json, &err);
	if (!s2)
		fprintf(stderr, "\n%s\n%s\n", husk_error_msg(&err), json);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	check_full(s2);
	_cleanup_free_ char *json2 = ctr_spec_to_json(s2);
	CU_ASSERT_STRING_EQUAL(json, json2);
}

/* A pod's user namespace: joined, with idmapped mounts, and back. */
static void test_spec_idmapped_mounts(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    parse("{" MINIMAL ", \"namespaces\": {\"user\": {\"path\": \"/run/p/ns/user\"}},"
		  " \"idmapped_mounts\": true}",
		  &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE(s->idmapped_mounts);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_USER].mode, CTR_NS_JOIN);
	_cleanup_free_ char *json = ctr_spec_to_json(s);
	_cleanup_(ctr_spec_freep) struct ctr_spec *s2 = parse(json, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	CU_ASSERT_TRUE(s2->idmapped_mounts);
	/* The joined namespace's maps, as an OCI config lists them for runc:
	 * accepted, and not the launcher's to write. */
	_cleanup_(ctr_spec_freep) struct ctr_spec *s3 =
	    parse("{" MINIMAL ", \"namespaces\": {\"user\": {\"path\": \"/run/p/ns/user\"}},"
		  " \"uid_mappings\": [{\"container_id\": 0, \"host_id\": 100000, \"size\": 10}],"
		  " \"gid_mappings\": [{\"container_id\": 0, \"host_id\": 100000, \"size\": 10}]}",
		  &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s3);
	CU_ASSERT_EQUAL(s3->n_uid_map, 1);
}

static void expect_error(const char *json, const char *needle)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = parse(json, &err);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(err.code, EINVAL);
	if (!err.msg || !strstr(err.msg, needle))
		fprintf(stderr, "\nwant '%s' in '%s'\n", needle, husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, needle));
}

static void test_spec_errors(void)
{
	expect_error("{", "t.json");
	expect_error("[]", "top level");
	expect_error("{\"process\": {\"args\": [\"sh\"]}}", "root");
	expect_error("{\"root\": {\"path\": \"rel\"}, \"process\": {\"args\": [\"sh\"]}}",
		     "root.path must be an absolute path");
	expect_error("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": []}}",
		     "process.args is empty");
	expect_error("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\", 3]}}",
		     "process.args: entry 1: expected a string, got number");
	expect_error("{" MINIMAL ", \"version\": 2}", "unsupported version 2");
	expect_error("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\"],"
		     " \"capabilities\": {\"bounding\": [\"CAP_NOPE\"]}}}",
		     "process.capabilities.bounding: unknown capability 'CAP_NOPE'");
	expect_error("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\"],"
		     " \"rlimits\": [{\"type\": \"RLIMIT_BOGUS\", \"soft\": 1, \"hard\": 1}]}}",
		     "unknown rlimit 'RLIMIT_BOGUS'");
	expect_error("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\"],"
		     " \"oom_score_adj\": 5000}}",
		     "process.oom_score_adj");
	expect_error("{" MINIMAL ", \"namespaces\": {\"mount\": \"host\"}}",
		     "namespaces.mount must be \"new\"");
	expect_error("{" MINIMAL ", \"namespaces\": {\"time\": \"new\"}}",
		     "namespaces.time: unknown namespace");
	expect_error("{" MINIMAL ", \"idmapped_mounts\": true}",
		     "idmapped_mounts: needs a user namespace to join");
	expect_error("{" MINIMAL ", \"namespaces\": {\"user\": \"new\"}}",
		     "a new user namespace needs uid and gid mappings");
	expect_error("{" MINIMAL ", \"uid_mappings\": [{\"container_id\": 0, \"host_id\": 1,"
		     " \"size\": 1}]}",
		     "uid/gid mappings need a user namespace");
	expect_error("{" MINIMAL
		     ", \"mounts\": [{\"destination\": \"data\", \"type\": \"tmpfs\"}]}",
		     "mount 'data': destination is not absolute");
	expect_error("{" MINIMAL ", \"mounts\": [{\"destination\": \"/d\", \"type\": \"bind\","
		     " \"source\": \"rel\"}]}",
		     "bind source 'rel' is not absolute");
	expect_error("{" MINIMAL ", \"sysctls\": {\"../../etc\": \"1\"}}", "sysctl '../../etc'");
	expect_error("{" MINIMAL ", \"devices\": [{\"path\": \"/dev/x\", \"type\": \"z\"}]}",
		     "type must be c, b or p");
	expect_error("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\"],"
		     " \"seccomp\": {\"mode\": \"localhost\"}}}",
		     "localhost needs an absolute profile path");
	expect_error("{\"root\": {\"path\": \"/r\"}, \"process\": {\"args\": [\"sh\"],"
		     " \"seccomp\": {\"mode\": \"weird\"}}}",
		     "unknown mode 'weird'");
}

static void test_caps_names(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int cap = -1;
	CU_ASSERT_EQUAL(lc_cap_from_name("CAP_SYS_ADMIN", &cap, &err), 0);
	CU_ASSERT_EQUAL(cap, 21);
	CU_ASSERT_EQUAL(lc_cap_from_name("net_bind_service", &cap, &err), 0);
	CU_ASSERT_EQUAL(cap, 10);
	CU_ASSERT_EQUAL(lc_cap_from_name("cap_bpf", &cap, &err), 0);
	CU_ASSERT_EQUAL(cap, 39);
	CU_ASSERT_EQUAL(lc_cap_from_name("CAP_", &cap, &err), -EINVAL);
	CU_ASSERT_EQUAL(lc_cap_from_name("FLY", &cap, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "unknown capability 'FLY'");
	CU_ASSERT_STRING_EQUAL(lc_cap_name(0), "CAP_CHOWN");
	CU_ASSERT_PTR_NULL(lc_cap_name(63));

	char *defaults[] = {"CHOWN",
			    "DAC_OVERRIDE",
			    "FSETID",
			    "FOWNER",
			    "MKNOD",
			    "NET_RAW",
			    "SETGID",
			    "SETUID",
			    "SETFCAP",
			    "SETPCAP",
			    "NET_BIND_SERVICE",
			    "SYS_CHROOT",
			    "KILL",
			    "AUDIT_WRITE",
			    NULL};
	uint64_t mask = 0;
	CU_ASSERT_EQUAL(lc_caps_from_names(defaults, &mask, &err), 0);
	CU_ASSERT_EQUAL(mask, LC_CAPS_DEFAULT);
	CU_ASSERT_EQUAL(mask, UINT64_C(0xa80425fb));
	_cleanup_strv_ char **names = lc_caps_to_names(mask);
	CU_ASSERT_EQUAL(strv_length(names), 14);
	CU_ASSERT_STRING_EQUAL(names[0], "CAP_CHOWN");
	CU_ASSERT_STRING_EQUAL(names[13], "CAP_SETFCAP");

	char *all[] = {"ALL", NULL};
	CU_ASSERT_EQUAL(lc_caps_from_names(all, &mask, &err), 0);
	CU_ASSERT_EQUAL(mask, lc_caps_all());
	CU_ASSERT_TRUE((mask & LC_CAP_BIT(lc_caps_last_cap())) != 0);
	CU_ASSERT_TRUE((mask & LC_CAP_BIT(lc_caps_last_cap() + 1)) == 0);
}

static void test_caps_add_drop(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	uint64_t m;
	char *add[] = {"SYS_ADMIN", "CAP_NET_ADMIN", NULL};
	char *drop[] = {"chown", "NET_RAW", NULL};
	CU_ASSERT_EQUAL(lc_caps_add_drop(LC_CAPS_DEFAULT, add, drop, &m, &err), 0);
	CU_ASSERT_EQUAL(m, (LC_CAPS_DEFAULT | LC_CAP_BIT(21) | LC_CAP_BIT(12)) &
			       ~(LC_CAP_BIT(0) | LC_CAP_BIT(13)));
	/* ALL then drop one. */
	char *add_all[] = {"ALL", NULL};
	char *drop_chown[] = {"CHOWN", NULL};
	CU_ASSERT_EQUAL(lc_caps_add_drop(LC_CAPS_DEFAULT, add_all, drop_chown, &m, &err), 0);
	CU_ASSERT_EQUAL(m, lc_caps_all() & ~LC_CAP_BIT(0));
	/* Drop ALL then add one. */
	char *drop_all[] = {"all", NULL};
	char *add_kill[] = {"KILL", NULL};
	CU_ASSERT_EQUAL(lc_caps_add_drop(LC_CAPS_DEFAULT, add_kill, drop_all, &m, &err), 0);
	CU_ASSERT_EQUAL(m, LC_CAP_BIT(5));
	char *bad[] = {"CAP_WHAT", NULL};
	CU_ASSERT_EQUAL(lc_caps_add_drop(LC_CAPS_DEFAULT, bad, NULL, &m, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "add capability: unknown capability 'CAP_WHAT'");
	husk_error_clear(&err);
	/* "CAP_" is optional and case does not matter, in add and drop. */
	char *add_lc[] = {"cap_sys_time", "net_admin", NULL};
	char *drop_lc[] = {"Cap_Kill", NULL};
	CU_ASSERT_EQUAL(lc_caps_add_drop(0, add_lc, drop_lc, &m, &err), 0);
	CU_ASSERT_EQUAL(m, LC_CAP_BIT(25) | LC_CAP_BIT(12));
}

static void test_caps_ambient(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct lc_caps c;
	/* Ambient ones join every set, even when add/drop left them out. */
	char *amb[] = {"NET_BIND_SERVICE", "CAP_NET_ADMIN", NULL};
	CU_ASSERT_EQUAL(lc_caps_container(LC_CAP_BIT(0), amb, &c, &err), 0);
	uint64_t a = LC_CAP_BIT(10) | LC_CAP_BIT(12);
	CU_ASSERT_EQUAL(c.ambient, a);
	CU_ASSERT_EQUAL(c.inheritable, a);
	CU_ASSERT_EQUAL(c.permitted, a | LC_CAP_BIT(0));
	CU_ASSERT_EQUAL(c.effective, a | LC_CAP_BIT(0));
	CU_ASSERT_EQUAL(c.bounding, a | LC_CAP_BIT(0));
	/* None: the plain sets. */
	CU_ASSERT_EQUAL(lc_caps_container(LC_CAPS_DEFAULT, NULL, &c, &err), 0);
	CU_ASSERT_EQUAL(c.ambient | c.inheritable, 0);
	CU_ASSERT_EQUAL(c.bounding, LC_CAPS_DEFAULT);
	char *bad[] = {"NOPE", NULL};
	CU_ASSERT_EQUAL(lc_caps_container(0, bad, &c, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "ambient capability: unknown capability 'NOPE'");
}

static void test_mount_options_rlimits(void)
{
	struct ctr_mount m = {0};
	CU_ASSERT_TRUE(ctr_mount_option(&m, "bind"));
	CU_ASSERT_TRUE(m.bind && !m.recursive);
	CU_ASSERT_TRUE(ctr_mount_option(&m, "ro"));
	CU_ASSERT_TRUE(ctr_mount_option(&m, "noexec"));
	CU_ASSERT_TRUE(ctr_mount_option(&m, "rw"));
	CU_ASSERT_EQUAL(m.flags, MS_NOEXEC);
	CU_ASSERT_TRUE(ctr_mount_option(&m, "rshared"));
	CU_ASSERT_EQUAL(m.propagation, CTR_PROP_RSHARED);
	CU_ASSERT_FALSE(ctr_mount_option(&m, "size=10m"));

	/* An entry with commas is several options (tests/fuzz/fuzz_spec.c
	 * found "r,bind" read as data, written back as "r" and "bind", and
	 * read again as a non-recursive bind). */
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    parse("{" MINIMAL ", \"mounts\": [{\"destination\": \"/d\", \"type\": \"bind\", "
		  "\"source\": \"/s\", \"options\": [\"x=1,bind\", \"ro,,y\"]}]}",
		  &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL_FATAL(s->n_mounts, 1);
	CU_ASSERT_TRUE(s->mounts[0].bind && !s->mounts[0].recursive);
	CU_ASSERT_EQUAL(s->mounts[0].flags, MS_RDONLY);
	CU_ASSERT_STRING_EQUAL(s->mounts[0].data, "x=1,y");
	_cleanup_free_ char *json = ctr_spec_to_json(s);
	_cleanup_(ctr_spec_freep) struct ctr_spec *s2 = parse(json, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	_cleanup_free_ char *json2 = ctr_spec_to_json(s2);
	CU_ASSERT_STRING_EQUAL(json, json2);
	CU_ASSERT_EQUAL(ctr_rlimit_from_name("RLIMIT_NPROC"), RLIMIT_NPROC);
	CU_ASSERT_EQUAL(ctr_rlimit_from_name("nofile"), RLIMIT_NOFILE);
	CU_ASSERT_EQUAL(ctr_rlimit_from_name("RLIMIT_X"), -1);
	CU_ASSERT_STRING_EQUAL(ctr_rlimit_name(RLIMIT_STACK), "RLIMIT_STACK");
}

/* ---- resolving inside a root ---- */

static char *fd_target(int fd)
{
	char p[64], buf[4096];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = '\0';
	return xstrdup(buf);
}

static void resolve_cases(bool use_openat2)
{
	char *base = unit_tmpdir();
	_cleanup_free_ char *root = xasprintf("%s/root", base);
	_cleanup_free_ char *outside = xasprintf("%s/outside", base);
	CU_ASSERT_EQUAL(mkdir(root, 0755), 0);
	CU_ASSERT_EQUAL(mkdir(outside, 0755), 0);
	_cleanup_free_ char *cmd = xasprintf(
	    "cd %s && mkdir -p etc a/b && touch etc/file && ln -s /etc abs && "
	    "ln -s ../../../../../.. dotdot && ln -s %s host && ln -s nowhere/x dangling && "
	    "ln -s loop2 loop1 && ln -s loop1 loop2 && ln -s a/b rel",
	    root, outside);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY);
	CU_ASSERT_FATAL(rootfd >= 0);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int fd = -1;

	struct {
		const char *path;
		int create;
		const char *want; /* relative to root, NULL: expect failure */
	} cases[] = {
	    {"/etc/file", CTR_CREATE_NONE, "/etc/file"},
	    {"/abs/file", CTR_CREATE_NONE, "/etc/file"},	/* absolute link stays in root */
	    {"/dotdot/etc/file", CTR_CREATE_NONE, "/etc/file"}, /* ".." clamps at root */
	    {"/../../etc", CTR_CREATE_NONE, "/etc"},
	    {"/rel/../b", CTR_CREATE_NONE, "/a/b"},
	    {"/host/new", CTR_CREATE_FILE, NULL}, /* not created on the host */
	    {"/abs/created/dir", CTR_CREATE_DIR, "/etc/created/dir"},
	    {"/dangling", CTR_CREATE_DIR, "/nowhere/x"},
	    {"/loop1", CTR_CREATE_NONE, NULL},
	    {"/etc/file/sub", CTR_CREATE_NONE, NULL},
	    {"/missing", CTR_CREATE_NONE, NULL},
	    {"/", CTR_CREATE_NONE, ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		husk_error_clear(&err);
		int r = ctr_open_in_root(rootfd, cases[i].path, cases[i].create, use_openat2, &fd,
					 &err);
		if (!cases[i].want) {
			if (!strcmp(cases[i].path, "/host/new")) {
				/* It may succeed, but only inside the root. */
				if (r == 0) {
					_cleanup_free_ char *t = fd_target(fd);
					CU_ASSERT_TRUE(startswith(t, root));
					close(fd);
				}
				continue;
			}
			if (r == 0) {
				fprintf(stderr, "\n%s: resolved unexpectedly\n", cases[i].path);
				close(fd);
			}
			CU_ASSERT(r < 0);
			continue;
		}
		if (r < 0)
			fprintf(stderr, "\n%s: %s\n", cases[i].path, husk_error_msg(&err));
		CU_ASSERT_EQUAL_FATAL(r, 0);
		_cleanup_free_ char *t = fd_target(fd);
		_cleanup_free_ char *want = xasprintf("%s%s", root, cases[i].want);
		if (!streq(t, want))
			fprintf(stderr, "\n%s: got %s want %s\n", cases[i].path, t, want);
		CU_ASSERT_STRING_EQUAL(t, want);
		close(fd);
	}
	/* The host side saw nothing. */
	_cleanup_free_ char *hostnew = xasprintf("%s/new", outside);
	CU_ASSERT_FALSE(fs_exists(hostnew));
	_cleanup_free_ char *loop_err = NULL;
	husk_error_clear(&err);
	CU_ASSERT(ctr_open_in_root(rootfd, "/loop1", CTR_CREATE_NONE, use_openat2, &fd, &err) < 0);
	CU_ASSERT_EQUAL(err.code, ELOOP);
	/* Without following symlinks at all: plain paths only, a link
	 * anywhere (last component included) is ELOOP. */
	static const struct {
		const char *path;
		int code;
	} nofollow[] = {
	    {"/etc/file", 0}, {"/a/b", 0},	    {"/../etc", 0},	  {"/abs/file", ELOOP},
	    {"/abs", ELOOP},  {"/rel/../b", ELOOP}, {"/dangling", ELOOP}, {"/missing", ENOENT},
	};
	for (size_t i = 0; i < ARRAY_SIZE(nofollow); i++) {
		husk_error_clear(&err);
		fd = -1;
		int r = ctr_open_in_root_nofollow(rootfd, nofollow[i].path, use_openat2, &fd, &err);
		if (r != -nofollow[i].code)
			fprintf(stderr, "\nnofollow %s: %d %s\n", nofollow[i].path, r,
				husk_error_msg(&err));
		CU_ASSERT_EQUAL(r, -nofollow[i].code);
		if (fd >= 0)
			close(fd);
	}
	unit_rmdir(base);
}

static void test_mount_destinations(void)
{
	static const char *const fold[][2] = {
	    {"/", "/"},
	    {"//", "/"},
	    {"/a//b/", "/a/b"},
	    {"/a/./b/.", "/a/b"},
	    {"/a/../..", "/"},
	    {"/../proc/self", "/proc/self"},
	    {"/x/../proc", "/proc"},
	    {"/proc/..", "/"},
	    {"/sysfoo/..//sys", "/sys"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(fold); i++) {
		_cleanup_free_ char *f = ctr_path_fold(fold[i][0]);
		CU_ASSERT_STRING_EQUAL(f, fold[i][1]);
	}
	static const struct {
		const char *dest;
		bool privileged, ok;
	} cases[] = {
	    {"/data", false, true},
	    {"/", false, false},
	    {"/.", true, false},
	    {"/proc", false, false},
	    {"/proc", true, false},
	    {"/proc/self", false, false},
	    {"//proc//sys/kernel", false, false},
	    {"/proc/meminfo", false, true},
	    {"/proc/meminfo/x", false, false},
	    {"/procx", false, true},
	    {"/sys", false, false},
	    {"/sys/fs/cgroup", false, false},
	    {"/sys/kernel", true, true},
	    {"/x/../sys/y", false, false},
	    {"/system", false, true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
		int r = ctr_mount_destination_check(cases[i].dest, cases[i].privileged, &err);
		if ((r == 0) != cases[i].ok)
			fprintf(stderr, "\n'%s' privileged=%d: %d %s\n", cases[i].dest,
				cases[i].privileged, r, husk_error_msg(&err));
		CU_ASSERT_EQUAL(r == 0, cases[i].ok);
		if (r < 0) {
			_cleanup_free_ char *want = xasprintf("mount '%s': ", cases[i].dest);
			CU_ASSERT(startswith(husk_error_msg(&err), want));
			CU_ASSERT_EQUAL(err.code, EINVAL);
		}
	}
}

static void test_resolve_openat2(void)
{
	resolve_cases(true);
}
static void test_resolve_walk(void)
{
	resolve_cases(false);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"spec defaults", test_spec_defaults},
	    {"spec full and round trip", test_spec_full_roundtrip},
	    {"spec idmapped mounts", test_spec_idmapped_mounts},
	    {"spec errors", test_spec_errors},
	    {"capability names", test_caps_names},
	    {"capability add/drop", test_caps_add_drop},
	    {"caps ambient", test_caps_ambient},
	    {"mount options and rlimits", test_mount_options_rlimits},
	    {"mount destinations: /, /proc, /sys", test_mount_destinations},
	    {"resolve in root (openat2)", test_resolve_openat2},
	    {"resolve in root (walk)", test_resolve_walk},
	};
	return unit_run("launcher", tests, ARRAY_SIZE(tests));
}
