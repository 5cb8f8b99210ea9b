/* CUnit tests of the launcher's pure parts: its spec read from an OCI
 * config.json (what the config leaves out, every field, a config husk
 * wrote read back to the same spec, hostile values), the spec.json of an
 * older huskd, capability names and the CRI add/drop rules, mount options,
 * rlimit names, and resolving paths inside a root (both openat2 and the
 * fallback walk) against symlinks that try to escape. No root. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/launcher/internal.h"
#include "runtime/launcher/launcher.h"
#include "runtime/oci.h"
#include "unit.h"

static struct ctr_spec *parse(const char *json, struct husk_error *err)
{
	struct ctr_spec *s = NULL;
	if (ctr_spec_from_oci(json, strlen(json), "t.json", &s, err) < 0)
		return NULL;
	return s;
}

#define OCI_HEAD "\"ociVersion\": \"1.0.2-dev\", \"root\": {\"path\": \"/r\"}, "
#define OCI_ARGS "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, "
#define OCI_LINUX "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}]}"
#define MINIMAL OCI_HEAD OCI_ARGS OCI_LINUX

static void test_spec_defaults(void)
{
	/* A spec built by huskd starts from ctr_spec_new. */
	_cleanup_(ctr_spec_freep) struct ctr_spec *n = ctr_spec_new();
	CU_ASSERT_STRING_EQUAL(n->cwd, "/");
	CU_ASSERT_EQUAL(n->caps.bounding, LC_CAPS_DEFAULT);
	CU_ASSERT_EQUAL(n->caps.effective, LC_CAPS_DEFAULT);
	CU_ASSERT_EQUAL(n->caps.inheritable, 0);
	CU_ASSERT_EQUAL(n->seccomp, LC_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(n->ns[CTR_NS_MNT].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL(n->ns[CTR_NS_PID].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL(n->ns[CTR_NS_NET].mode, CTR_NS_HOST);
	CU_ASSERT_EQUAL(n->ns[CTR_NS_USER].mode, CTR_NS_HOST);
	CU_ASSERT_PTR_NULL(n->masked_paths);
	CU_ASSERT_EQUAL(strv_length((char **)ctr_default_masked_paths), 10);
	CU_ASSERT_EQUAL(strv_length((char **)ctr_default_readonly_paths), 6);

	/* What a config leaves out is off, as an OCI runtime reads it: host
	 * namespaces, no capabilities, no seccomp, nothing masked. */
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = parse("{" MINIMAL "}", &err);
	if (!s)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_STRING_EQUAL(s->rootfs, "/r");
	CU_ASSERT_STRING_EQUAL(s->cwd, "/");
	CU_ASSERT_EQUAL(s->caps.bounding, 0);
	CU_ASSERT_EQUAL(s->caps.effective, 0);
	CU_ASSERT_EQUAL(s->seccomp, LC_SECCOMP_UNCONFINED);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_MNT].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_PID].mode, CTR_NS_HOST);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_UTS].mode, CTR_NS_HOST);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s->masked_paths);
	CU_ASSERT_EQUAL(strv_length(s->masked_paths), 0);
	CU_ASSERT_EQUAL(strv_length(s->readonly_paths), 0);
	CU_ASSERT_EQUAL(s->rootfs_propagation, CTR_PROP_DEFAULT);
	CU_ASSERT_FALSE(s->has_oom_score_adj || s->tty || s->stdin_open || s->privileged);
	CU_ASSERT_PTR_NULL(s->state_dir);
	CU_ASSERT_PTR_NULL(s->oci_path);
	CU_ASSERT_EQUAL(s->n_mounts, 0);
}

/* Every field the launcher reads, in the OCI form; %s is the Localhost
 * seccomp profile. */
static const char *full_fmt =
    "{\"ociVersion\": \"1.0.2-dev\", \"hostname\": \"web-1\","
    " \"root\": {\"path\": \"/var/lib/husk/c/rootfs\", \"readonly\": true},"
    " \"process\": {\"terminal\": true,"
    "   \"user\": {\"uid\": 1000, \"gid\": 100, \"additionalGids\": [10, 20], \"umask\": 63},"
    "   \"consoleSize\": {\"height\": 24, \"width\": 80},"
    "   \"args\": [\"sh\", \"-c\", \"echo hi\"], \"env\": [\"PATH=/bin\", \"A=b c\"],"
    "   \"cwd\": \"/work\", \"noNewPrivileges\": true, \"apparmorProfile\": \"my-prof\","
    "   \"capabilities\": {\"bounding\": [\"CAP_CHOWN\", \"CAP_NET_RAW\"],"
    "     \"effective\": [\"CAP_KILL\"], \"permitted\": [\"CAP_KILL\"], \"inheritable\": [],"
    "     \"ambient\": [\"CAP_KILL\"]},"
    "   \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 4096, \"soft\": 1024},"
    "                 {\"type\": \"RLIMIT_CORE\", \"hard\": 18446744073709551615,"
    "                  \"soft\": 18446744073709551615}],"
    "   \"oomScoreAdj\": -500},"
    " \"mounts\": ["
    "   {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
    "   {\"destination\": \"/dev/shm\", \"type\": \"bind\", \"source\": \"/run/husk/pods/p/shm\","
    "    \"options\": [\"rbind\", \"rprivate\"]},"
    "   {\"destination\": \"/etc/hosts\", \"type\": \"bind\", \"source\": "
    "\"/run/husk/pods/p/hosts\","
    "    \"options\": [\"bind\", \"rprivate\", \"ro\"]},"
    "   {\"destination\": \"/etc/hosts\", \"type\": \"bind\", \"source\": \"/srv/hosts\","
    "    \"options\": [\"rbind\", \"ro\"]},"
    "   {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv/d\","
    "    \"options\": [\"rbind\", \"ro\", \"nosuid\", \"rslave\"]},"
    "   {\"destination\": \"/scratch\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
    "    \"options\": [\"nodev\", \"size=1m\", \"mode=700\"]}],"
    " \"annotations\": {\"io.kubernetes.cri.container-type\": \"container\","
    "   \"io.husk.container-id\": \"web\", \"io.husk.runtime-mounts\": \"3\","
    "   \"io.husk.stdin\": \"true\", \"io.husk.stdin-once\": \"true\","
    "   \"io.husk.seccomp-profile\": \"%s\", \"io.husk.seccomp-filter\": \"/f.bpf\","
    "   \"io.husk.cgroup-procs\": \"[\\\"/sys/fs/cgroup/pids/husk/c/cgroup.procs\\\"]\","
    "   \"io.husk.device-sources\": \"{\\\"/dev/fuse\\\": \\\"/dev/fuse\\\"}\","
    "   \"io.husk.state-dir\": \"/run/husk/c/web\", \"io.husk.log-path\": "
    "\"/var/log/pods/x/0.log\","
    "   \"io.husk.oom-file\": \"/sys/fs/cgroup/memory/x/memory.oom_control\","
    "   \"io.husk.some-future-key\": \"ignored\"},"
    " \"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"network\","
    "     \"path\": \"/run/husk/pods/p/ns/net\"}, {\"type\": \"mount\"}, {\"type\": \"uts\"},"
    "     {\"type\": \"cgroup\"}, {\"type\": \"user\"}],"
    "   \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],"
    "   \"gidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],"
    "   \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229,"
    "     \"fileMode\": 438, \"uid\": 0, \"gid\": 0}],"
    "   \"cgroupsPath\": \"/husk/p/c\", \"resources\": {\"devices\": []},"
    "   \"rootfsPropagation\": \"shared\","
    "   \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ERRNO\"},"
    "   \"sysctl\": {\"net.ipv4.ping_group_range\": \"0 0\"},"
    "   \"maskedPaths\": [], \"readonlyPaths\": [\"/proc/sys\"]},"
    " \"future_field\": {\"ignored\": true}}";

static void check_full(const struct ctr_spec *s, const char *profile)
{
	CU_ASSERT_STRING_EQUAL(s->id, "web");
	CU_ASSERT_STRING_EQUAL(s->rootfs, "/var/lib/husk/c/rootfs");
	CU_ASSERT_TRUE(s->readonly_rootfs);
	CU_ASSERT_EQUAL(s->rootfs_propagation, CTR_PROP_RSHARED);
	CU_ASSERT_EQUAL(strv_length(s->args), 3);
	CU_ASSERT_STRING_EQUAL(s->env[1], "A=b c");
	CU_ASSERT_STRING_EQUAL(s->cwd, "/work");
	CU_ASSERT_EQUAL(s->uid, 1000);
	CU_ASSERT_EQUAL(s->gid, 100);
	CU_ASSERT_EQUAL_FATAL(s->n_additional_gids, 2);
	CU_ASSERT_EQUAL(s->additional_gids[1], 20);
	CU_ASSERT_TRUE(s->has_umask);
	CU_ASSERT_EQUAL(s->umask, 077);
	CU_ASSERT_EQUAL(s->console_height, 24);
	CU_ASSERT_EQUAL(s->console_width, 80);
	CU_ASSERT_TRUE(s->tty && s->stdin_open && s->stdin_once && s->no_new_privs);
	CU_ASSERT_EQUAL(s->caps.bounding, LC_CAP_BIT(0) | LC_CAP_BIT(13));
	CU_ASSERT_EQUAL(s->caps.effective, LC_CAP_BIT(5));
	CU_ASSERT_EQUAL(s->caps.ambient, LC_CAP_BIT(5));
	CU_ASSERT_EQUAL(s->caps.inheritable, 0);
	CU_ASSERT_EQUAL(s->seccomp, LC_SECCOMP_LOCALHOST);
	CU_ASSERT_STRING_EQUAL(s->seccomp_profile, profile);
	CU_ASSERT_STRING_EQUAL(s->seccomp_filter, "/f.bpf");
	CU_ASSERT_STRING_EQUAL(s->apparmor_profile, "my-prof");
	CU_ASSERT_EQUAL_FATAL(s->n_rlimits, 2);
	CU_ASSERT_EQUAL(s->rlimits[0].resource, RLIMIT_NOFILE);
	CU_ASSERT_EQUAL(s->rlimits[0].hard, 4096);
	CU_ASSERT_EQUAL(s->rlimits[0].soft, 1024);
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
	CU_ASSERT_EQUAL(s->ns[CTR_NS_PID].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_CGROUP].mode, CTR_NS_NEW);
	CU_ASSERT_EQUAL_FATAL(s->n_uid_map, 1);
	CU_ASSERT_EQUAL(s->uid_map[0].host_id, 100000);
	CU_ASSERT_EQUAL(s->uid_map[0].size, 65536);
	CU_ASSERT_EQUAL_FATAL(s->n_gid_map, 1);
	/* The runtime's mounts give the pod files; the container's own
	 * /etc/hosts after them stays a mount. */
	CU_ASSERT_STRING_EQUAL(s->shm_path, "/run/husk/pods/p/shm");
	CU_ASSERT_STRING_EQUAL(s->hosts_path, "/run/husk/pods/p/hosts");
	CU_ASSERT_PTR_NULL(s->hostname_path);
	CU_ASSERT_PTR_NULL(s->resolv_path);
	CU_ASSERT_EQUAL_FATAL(s->n_mounts, 3);
	const struct ctr_mount *m = &s->mounts[0];
	CU_ASSERT_STRING_EQUAL(m->destination, "/etc/hosts");
	CU_ASSERT_STRING_EQUAL(m->source, "/srv/hosts");
	m = &s->mounts[1];
	CU_ASSERT_STRING_EQUAL(m->destination, "/data");
	CU_ASSERT_TRUE(m->bind && m->recursive);
	CU_ASSERT_EQUAL(m->flags, MS_RDONLY | MS_NOSUID);
	CU_ASSERT_EQUAL(m->propagation, CTR_PROP_RSLAVE);
	m = &s->mounts[2];
	CU_ASSERT_FALSE(m->bind);
	CU_ASSERT_STRING_EQUAL(m->type, "tmpfs");
	CU_ASSERT_EQUAL(m->flags, MS_NODEV);
	CU_ASSERT_STRING_EQUAL(m->data, "size=1m,mode=700");
	CU_ASSERT_EQUAL_FATAL(s->n_devices, 1);
	CU_ASSERT_EQUAL(s->devices[0].type, 'c');
	CU_ASSERT_EQUAL(s->devices[0].major, 10);
	CU_ASSERT_EQUAL(s->devices[0].minor, 229);
	CU_ASSERT_EQUAL(s->devices[0].file_mode, 0666);
	CU_ASSERT_STRING_EQUAL(s->devices[0].host_path, "/dev/fuse");
	CU_ASSERT_PTR_NOT_NULL_FATAL(s->masked_paths);
	CU_ASSERT_EQUAL(strv_length(s->masked_paths), 0);
	CU_ASSERT_EQUAL(strv_length(s->readonly_paths), 1);
	CU_ASSERT_EQUAL_FATAL(s->n_sysctls, 1);
	CU_ASSERT_STRING_EQUAL(s->sysctls[0].key, "net.ipv4.ping_group_range");
	CU_ASSERT_STRING_EQUAL(s->sysctls[0].value, "0 0");
	CU_ASSERT_EQUAL_FATAL(strv_length(s->cgroup_procs), 1);
	CU_ASSERT_STRING_EQUAL(s->cgroup_procs[0], "/sys/fs/cgroup/pids/husk/c/cgroup.procs");
	CU_ASSERT_FALSE(s->privileged || s->idmapped_mounts);
	CU_ASSERT_STRING_EQUAL(s->state_dir, "/run/husk/c/web");
	CU_ASSERT_STRING_EQUAL(s->log_path, "/var/log/pods/x/0.log");
	CU_ASSERT_STRING_EQUAL(s->oom_file, "/sys/fs/cgroup/memory/x/memory.oom_control");
	CU_ASSERT_PTR_NULL(s->oci_path);
}

static void test_spec_full(void)
{
	char *dir = unit_tmpdir();
	unit_write(dir, "p.json", "{\"defaultAction\": \"SCMP_ACT_ALLOW\"}");
	_cleanup_free_ char *profile = xasprintf("%s/p.json", dir);
	_cleanup_free_ char *json = xasprintf(full_fmt, profile);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = parse(json, &err);
	if (!s)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	check_full(s, profile);
	/* Written again by huskd's writer, read again: the same spec, and
	 * the same text the second time. */
	_cleanup_free_ char *out = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config(s, NULL, &out, &err), 0);
	_cleanup_(ctr_spec_freep) struct ctr_spec *s2 = parse(out, &err);
	if (!s2)
		fprintf(stderr, "\n%s\n%s\n", husk_error_msg(&err), out);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	check_full(s2, profile);
	_cleanup_free_ char *out2 = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config(s2, NULL, &out2, &err), 0);
	CU_ASSERT_STRING_EQUAL(out, out2);
	unit_rmdir(dir);
}

/* ---- a config husk wrote reads back to the spec it was written from ---- */

static bool strv_same(char *const *a, char *const *b)
{
	size_t n = strv_length((char **)a);
	if (n != strv_length((char **)b))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!streq(a[i], b[i]))
			return false;
	return true;
}

static bool str_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && streq(a, b));
}

#define SAME_STR(f) CU_ASSERT_TRUE(str_same(a->f, b->f))
#define SAME(f) CU_ASSERT_EQUAL(a->f, b->f)

/* b read back from the config written from a: every field the same (NULL
 * masked and read-only paths mean the defaults, which the config lists). */
static void assert_same_spec(const struct ctr_spec *a, const struct ctr_spec *b)
{
	SAME_STR(id);
	CU_ASSERT_TRUE(strv_same(a->args, b->args));
	CU_ASSERT_TRUE(strv_same(a->env, b->env));
	SAME_STR(cwd);
	SAME(uid);
	SAME(gid);
	SAME(n_additional_gids);
	for (size_t i = 0; i < a->n_additional_gids && i < b->n_additional_gids; i++)
		SAME(additional_gids[i]);
	SAME(has_umask);
	SAME(umask);
	SAME(console_height);
	SAME(console_width);
	SAME(tty);
	SAME(stdin_open);
	SAME(stdin_once);
	SAME(no_new_privs);
	SAME(caps.bounding);
	SAME(caps.effective);
	SAME(caps.permitted);
	SAME(caps.inheritable);
	SAME(caps.ambient);
	SAME(seccomp);
	SAME_STR(seccomp_profile);
	SAME_STR(seccomp_filter);
	SAME_STR(apparmor_profile);
	SAME(n_rlimits);
	for (size_t i = 0; i < a->n_rlimits && i < b->n_rlimits; i++) {
		SAME(rlimits[i].resource);
		SAME(rlimits[i].soft);
		SAME(rlimits[i].hard);
	}
	SAME(has_oom_score_adj);
	SAME(oom_score_adj);
	SAME_STR(rootfs);
	SAME(readonly_rootfs);
	SAME(rootfs_propagation);
	SAME_STR(hostname);
	for (int i = 0; i < CTR_NS_COUNT; i++) {
		SAME(ns[i].mode);
		SAME_STR(ns[i].path);
	}
	SAME(n_uid_map);
	SAME(n_gid_map);
	for (size_t i = 0; i < a->n_uid_map && i < b->n_uid_map; i++)
		CU_ASSERT_EQUAL(memcmp(&a->uid_map[i], &b->uid_map[i], sizeof(a->uid_map[i])), 0);
	for (size_t i = 0; i < a->n_gid_map && i < b->n_gid_map; i++)
		CU_ASSERT_EQUAL(memcmp(&a->gid_map[i], &b->gid_map[i], sizeof(a->gid_map[i])), 0);
	SAME(idmapped_mounts);
	SAME(n_mounts);
	for (size_t i = 0; i < a->n_mounts && i < b->n_mounts; i++) {
		SAME_STR(mounts[i].destination);
		SAME_STR(mounts[i].type);
		SAME_STR(mounts[i].source);
		SAME_STR(mounts[i].data);
		SAME(mounts[i].flags);
		SAME(mounts[i].bind);
		SAME(mounts[i].recursive);
		SAME(mounts[i].propagation);
	}
	SAME(n_devices);
	for (size_t i = 0; i < a->n_devices && i < b->n_devices; i++) {
		SAME_STR(devices[i].path);
		SAME(devices[i].type);
		SAME(devices[i].major);
		SAME(devices[i].minor);
		SAME(devices[i].file_mode);
		SAME(devices[i].uid);
		SAME(devices[i].gid);
		SAME_STR(devices[i].host_path);
	}
	CU_ASSERT_TRUE(
	    strv_same(a->masked_paths ? a->masked_paths : (char *const *)ctr_default_masked_paths,
		      b->masked_paths));
	CU_ASSERT_TRUE(strv_same(a->readonly_paths ? a->readonly_paths
						   : (char *const *)ctr_default_readonly_paths,
				 b->readonly_paths));
	SAME(n_sysctls);
	for (size_t i = 0; i < a->n_sysctls && i < b->n_sysctls; i++) {
		SAME_STR(sysctls[i].key);
		SAME_STR(sysctls[i].value);
	}
	CU_ASSERT_TRUE(strv_same(a->cgroup_procs, b->cgroup_procs));
	SAME(privileged);
	SAME_STR(shm_path);
	SAME_STR(hostname_path);
	SAME_STR(hosts_path);
	SAME_STR(resolv_path);
	SAME_STR(state_dir);
	SAME_STR(log_path);
	SAME_STR(oom_file);
	SAME_STR(oci_path);
	SAME_STR(oci_root);
	CU_ASSERT_TRUE(strv_same(a->oci_args, b->oci_args));
	SAME(oci_systemd_cgroup);
}

static char **strv_dup(char *const *v)
{
	char **r = xnew(char *, 1);
	for (size_t i = 0; v[i]; i++)
		r = strv_append(r, v[i]);
	return r;
}

static struct ctr_spec *roundtrip(const struct ctr_spec *a)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *text = NULL;
	if (ctr_oci_config(a, NULL, &text, &err) < 0) {
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
		return NULL;
	}
	struct ctr_spec *b = parse(text, &err);
	if (!b)
		fprintf(stderr, "\n%s\n%s\n", husk_error_msg(&err), text);
	return b;
}

static void add_mount(struct ctr_spec *s, const char *dest, const char *type, const char *src,
		      const char *data, unsigned long flags, bool bind, bool rec,
		      enum ctr_propagation prop)
{
	s->mounts = xrealloc(s->mounts, (s->n_mounts + 1) * sizeof(*s->mounts));
	s->mounts[s->n_mounts++] = (struct ctr_mount){
	    .destination = xstrdup(dest),
	    .type = xstrdup(type),
	    .source = xstrdup(src),
	    .data = data ? xstrdup(data) : NULL,
	    .flags = flags,
	    .bind = bind,
	    .recursive = rec,
	    .propagation = prop,
	};
}

/* The spec as huskd builds one (runtime/container.c), every field set. */
static struct ctr_spec *husk_spec(void)
{
	struct ctr_spec *s = ctr_spec_new();
	s->id = xstrdup("0123abcd");
	char *args[] = {"/bin/sh", "-c", "echo 'a b' \"c\"", NULL};
	s->args = strv_dup(args);
	char *env[] = {"PATH=/usr/bin:/bin", "EMPTY=", "UTF=\xc3\xa9", NULL};
	strv_free(s->env);
	s->env = strv_dup(env);
	free(s->cwd);
	s->cwd = xstrdup("/srv/app");
	s->uid = 65534;
	s->gid = 65533;
	s->additional_gids = xnew(uint32_t, 3);
	s->additional_gids[0] = 4;
	s->additional_gids[1] = 4294967294u;
	s->n_additional_gids = 2;
	s->has_umask = true;
	s->umask = 027;
	s->stdin_open = true;
	s->no_new_privs = true;
	s->caps.ambient = LC_CAP_BIT(10);
	s->caps.inheritable = LC_CAP_BIT(10);
	s->seccomp_filter = xstrdup("/run/husk/containers/0123abcd/seccomp.bpf");
	s->apparmor_profile = xstrdup("husk-default");
	s->rlimits = xnew(struct ctr_rlimit, 2);
	s->rlimits[0] = (struct ctr_rlimit){RLIMIT_NOFILE, 1024, 1048576};
	s->rlimits[1] = (struct ctr_rlimit){RLIMIT_NPROC, 0, UINT64_MAX};
	s->n_rlimits = 2;
	s->has_oom_score_adj = true;
	s->oom_score_adj = 1000;
	s->rootfs = xstrdup("/var/lib/husk/overlay/0123abcd/merged");
	s->readonly_rootfs = true;
	s->hostname = xstrdup("pod-a");
	s->ns[CTR_NS_NET] = (struct ctr_namespace){CTR_NS_JOIN, xstrdup("/run/husk/pods/p/ns/net")};
	s->ns[CTR_NS_IPC] = (struct ctr_namespace){CTR_NS_JOIN, xstrdup("/run/husk/pods/p/ns/ipc")};
	s->ns[CTR_NS_UTS] = (struct ctr_namespace){CTR_NS_JOIN, xstrdup("/run/husk/pods/p/ns/uts")};
	s->ns[CTR_NS_USER] =
	    (struct ctr_namespace){CTR_NS_JOIN, xstrdup("/run/husk/pods/p/ns/user")};
	s->ns[CTR_NS_CGROUP].mode = CTR_NS_HOST;
	s->idmapped_mounts = true;
	add_mount(s, "/data", "bind", "/srv/data", NULL, MS_RDONLY | MS_NOSUID | MS_NODEV, true,
		  true, CTR_PROP_RPRIVATE);
	add_mount(s, "/etc/hosts", "bind", "/var/lib/kubelet/pods/x/etc-hosts", NULL, 0, true, true,
		  CTR_PROP_DEFAULT);
	add_mount(s, "/dev/termination-log", "bind", "/var/lib/kubelet/t", NULL, 0, true, false,
		  CTR_PROP_RSLAVE);
	add_mount(s, "/cache", "tmpfs", "tmpfs", "size=1m,mode=1777", MS_NOEXEC, false, false,
		  CTR_PROP_DEFAULT);
	s->devices = xnew(struct ctr_device, 3);
	s->devices[0] = (struct ctr_device){xstrdup("/dev/fuse"), 'c', 10, 229, 0666, 0, 0,
					    xstrdup("/dev/fuse")};
	s->devices[1] =
	    (struct ctr_device){xstrdup("/dev/xvda"), 'b', 202, 0, 0660, 0, 6, xstrdup("/dev/sda")};
	s->devices[2] = (struct ctr_device){xstrdup("/dev/fifo"), 'p', 0, 0, 0600, 1, 1, NULL};
	s->n_devices = 3;
	char *masked[] = {"/proc/kcore", NULL};
	s->masked_paths = strv_dup(masked);
	s->sysctls = xnew(struct ctr_sysctl, 1);
	s->sysctls[0] =
	    (struct ctr_sysctl){xstrdup("net.ipv4.ip_unprivileged_port_start"), xstrdup("0")};
	s->n_sysctls = 1;
	char *procs[] = {"/sys/fs/cgroup/cpu,cpuacct/husk/p/c/cgroup.procs",
			 "/sys/fs/cgroup/name=systemd/husk/p/c/cgroup.procs", NULL};
	s->cgroup_procs = strv_dup(procs);
	s->shm_path = xstrdup("/run/husk/pods/p/shm");
	s->hostname_path = xstrdup("/run/husk/pods/p/hostname");
	s->hosts_path = xstrdup("/run/husk/pods/p/hosts");
	s->resolv_path = xstrdup("/run/husk/pods/p/resolv.conf");
	s->state_dir = xstrdup("/run/husk/containers/0123abcd");
	s->log_path = xstrdup("/var/log/pods/ns_pod_uid/c/0.log");
	s->oom_file = xstrdup("/sys/fs/cgroup/memory/husk/p/c/memory.oom_control");
	return s;
}

static void test_spec_husk_roundtrip(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *a = husk_spec();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(ctr_spec_validate(a, &err), 0);
	_cleanup_(ctr_spec_freep) struct ctr_spec *b = roundtrip(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	assert_same_spec(a, b);

	/* The other side of each choice: a new user namespace with its
	 * mappings, a privileged unconfined container with a tty and no pod
	 * files, an OCI runtime handler, default masked paths. */
	_cleanup_(ctr_spec_freep) struct ctr_spec *c = husk_spec();
	free(c->ns[CTR_NS_USER].path);
	c->ns[CTR_NS_USER] = (struct ctr_namespace){CTR_NS_NEW, NULL};
	c->idmapped_mounts = false;
	c->uid_map = xnew(struct ctr_idmap, 2);
	c->uid_map[0] = (struct ctr_idmap){0, 100000, 65536};
	c->uid_map[1] = (struct ctr_idmap){65536, 1000, 1};
	c->n_uid_map = 2;
	c->gid_map = xnew(struct ctr_idmap, 1);
	c->gid_map[0] = (struct ctr_idmap){0, 100000, 65536};
	c->n_gid_map = 1;
	c->privileged = true;
	c->tty = true;
	c->console_height = 50;
	c->console_width = 132;
	c->has_umask = false;
	c->umask = 0;
	c->stdin_once = true;
	c->seccomp = LC_SECCOMP_UNCONFINED;
	free(steal_ptr(&c->seccomp_filter));
	free(steal_ptr(&c->apparmor_profile));
	c->has_oom_score_adj = false;
	c->oom_score_adj = 0;
	c->readonly_rootfs = false;
	c->rootfs_propagation = CTR_PROP_RSHARED;
	free(steal_ptr(&c->shm_path));
	free(steal_ptr(&c->hostname_path));
	free(steal_ptr(&c->hosts_path));
	free(steal_ptr(&c->resolv_path));
	free(steal_ptr(&c->hostname));
	strv_free(steal_ptr(&c->masked_paths));
	c->oci_path = xstrdup("/usr/sbin/runc");
	c->oci_root = xstrdup("/run/husk/runtimes/runc");
	char *oargs[] = {"--debug", NULL};
	c->oci_args = strv_dup(oargs);
	c->oci_systemd_cgroup = true;
	CU_ASSERT_EQUAL_FATAL(ctr_spec_validate(c, &err), 0);
	_cleanup_(ctr_spec_freep) struct ctr_spec *d = roundtrip(c);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	assert_same_spec(c, d);
}

/* A CRI annotation may not pose as one of husk's: ctr_oci_config drops
 * it, and husk's own is the only one in the config. */
static void test_spec_annotation_spoof(void)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *a = husk_spec();
	const struct ctr_oci_kv ann[] = {
	    {"io.husk.seccomp-filter", "/tmp/allow-all.bpf"},
	    {"io.husk.cgroup-procs", "[\"/sys/fs/cgroup/cpu/cgroup.procs\"]"},
	    {"io.husk.privileged", "true"},
	    {"example.com/x", "kept"},
	};
	struct ctr_oci_extra x = {.annotations = ann, .n_annotations = ARRAY_SIZE(ann)};
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *text = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config(a, &x, &text, &err), 0);
	CU_ASSERT_PTR_NULL(strstr(text, "allow-all"));
	CU_ASSERT_PTR_NULL(strstr(text, "/sys/fs/cgroup/cpu/cgroup.procs"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"example.com/x\":\"kept\""));
	_cleanup_(ctr_spec_freep) struct ctr_spec *b = parse(text, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	assert_same_spec(a, b);
}

/* A pod's user namespace: joined, with idmapped mounts. */
static void test_spec_idmapped_mounts(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    parse("{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"mount\"},"
		  " {\"type\": \"user\", \"path\": \"/run/p/ns/user\"}]},"
		  " \"annotations\": {\"io.husk.idmapped-mounts\": \"true\"}}",
		  &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE(s->idmapped_mounts);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_USER].mode, CTR_NS_JOIN);
	CU_ASSERT_STRING_EQUAL(s->ns[CTR_NS_USER].path, "/run/p/ns/user");
	/* The joined namespace's maps, as an OCI config lists them for runc:
	 * accepted, and not the launcher's to write. */
	_cleanup_(ctr_spec_freep) struct ctr_spec *s3 =
	    parse("{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"mount\"},"
		  " {\"type\": \"user\", \"path\": \"/run/p/ns/user\"}],"
		  " \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 10}],"
		  " \"gidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 10}]}}",
		  &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s3);
	CU_ASSERT_EQUAL(s3->n_uid_map, 1);
	CU_ASSERT_EQUAL(s3->ns[CTR_NS_USER].mode, CTR_NS_JOIN);
}

/* The spec.json of an older huskd is still read (exec in, or start of, a
 * container it made). */
static void test_spec_legacy(void)
{
	static const char legacy[] =
	    "{\"version\": 1, \"id\": \"old\", \"root\": {\"path\": \"/r\"},"
	    " \"process\": {\"args\": [\"sh\"], \"user\": {\"uid\": 7, \"additional_gids\": [3]},"
	    "   \"seccomp\": {\"mode\": \"runtime_default\", \"filter\": \"/c/seccomp.bpf\"},"
	    "   \"rlimits\": [{\"type\": \"nofile\", \"soft\": 1, \"hard\": 2}]},"
	    " \"namespaces\": {\"net\": {\"path\": \"/p/ns/net\"}},"
	    " \"mounts\": [{\"destination\": \"/d\", \"type\": \"bind\", \"source\": \"/s\","
	    "   \"options\": [\"ro\"]}],"
	    " \"cgroup_procs\": [\"/sys/fs/cgroup/pids/x/cgroup.procs\"],"
	    " \"pod_files\": {\"hosts\": \"/p/hosts\"},"
	    " \"shim\": {\"state_dir\": \"/c\", \"log_path\": \"/l\"}}";
	char *dir = unit_tmpdir();
	unit_write(dir, "spec.json", legacy);
	unit_write(dir, "config.json", "{\"ociVersion\": \"1.0.2-dev\"}");
	_cleanup_free_ char *want = xasprintf("%s/spec.json", dir);
	_cleanup_free_ char *path = ctr_spec_path(dir);
	CU_ASSERT_STRING_EQUAL(path, want);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_spec_load(dir, &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(s->id, "old");
	CU_ASSERT_EQUAL(s->uid, 7);
	CU_ASSERT_EQUAL(s->n_additional_gids, 1);
	CU_ASSERT_EQUAL(s->seccomp, LC_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_STRING_EQUAL(s->seccomp_filter, "/c/seccomp.bpf");
	CU_ASSERT_EQUAL(s->n_rlimits, 1);
	CU_ASSERT_EQUAL(s->ns[CTR_NS_NET].mode, CTR_NS_JOIN);
	CU_ASSERT_EQUAL_FATAL(s->n_mounts, 1);
	CU_ASSERT_EQUAL(s->mounts[0].flags, MS_RDONLY);
	CU_ASSERT_STRING_EQUAL(s->hosts_path, "/p/hosts");
	CU_ASSERT_STRING_EQUAL(s->state_dir, "/c");
	/* Without spec.json: config.json, here refused naming its key. */
	_cleanup_free_ char *old = xasprintf("%s/spec.json", dir);
	unlink(old);
	_cleanup_free_ char *cfg = ctr_spec_path(dir);
	CU_ASSERT_PTR_NOT_NULL(strstr(cfg, "/config.json"));
	_cleanup_(ctr_spec_freep) struct ctr_spec *s2 = NULL;
	CU_ASSERT_TRUE(ctr_spec_load(dir, &s2, &err) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "config.json': root: missing"));
	unit_rmdir(dir);
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

#define ANN(k, v) "{" MINIMAL ", \"annotations\": {\"" k "\": \"" v "\"}}"
#define LINUX(x) \
	"{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"mount\"}], " x "}}"
#define PROC(x) \
	"{" OCI_HEAD "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", " x "}, " OCI_LINUX "}"

/* Hostile or broken values: refused, the message naming the file and the key. */
static void test_spec_errors(void)
{
	expect_error("{", "config: parse 't.json'");
	expect_error("[]", "config 't.json': top level: expected an object, got array");
	expect_error("{\"root\": {\"path\": \"/r\"}}", "ociVersion: missing or not a string");
	expect_error("{\"ociVersion\": \"2.0.0\"}", "ociVersion: unsupported version '2.0.0'");
	expect_error("{\"ociVersion\": \"1.0.2\", " OCI_ARGS OCI_LINUX "}", "root: missing");
	expect_error("{" OCI_HEAD OCI_LINUX "}", "process: missing");
	expect_error("{" OCI_HEAD OCI_ARGS "\"x\": 1}", "linux: missing");
	expect_error(
	    "{\"ociVersion\": \"1.0.2\", \"root\": {\"path\": \"rel\"}, " OCI_ARGS OCI_LINUX "}",
	    "root.path must be an absolute path");
	expect_error("{" OCI_HEAD "\"process\": {\"args\": [], \"cwd\": \"/\"}, " OCI_LINUX "}",
		     "process.args is empty");
	expect_error(PROC("\"env\": [\"A=1\", 3]"),
		     "process.env: entry 1: expected a string, got number");
	expect_error(PROC("\"user\": {\"uid\": \"0\"}"),
		     "process.user.uid: expected a non-negative integer, got string");
	expect_error(PROC("\"user\": {\"uid\": -1}"), "process.user.uid: expected a non-negative");
	expect_error(PROC("\"user\": {\"uid\": 4294967296}"),
		     "process.user.uid: integer out of range");
	expect_error(PROC("\"user\": {\"additionalGids\": [1, 1.5]}"),
		     "process.user.additionalGids");
	expect_error(PROC("\"user\": {\"umask\": 512}"),
		     "process.user.umask: integer out of range");
	expect_error(PROC("\"consoleSize\": {\"height\": 70000, \"width\": 1}"),
		     "process.consoleSize: more than 65535 rows or columns");
	expect_error(PROC("\"terminal\": \"yes\""),
		     "process.terminal: expected a boolean, got string");
	expect_error(PROC("\"capabilities\": {\"bounding\": [\"CAP_NOPE\"]}"),
		     "process.capabilities.bounding: unknown capability 'CAP_NOPE'");
	expect_error(PROC("\"rlimits\": [{\"type\": \"RLIMIT_BOGUS\", \"soft\": 1, \"hard\": 1}]"),
		     "process.rlimits: unknown rlimit 'RLIMIT_BOGUS'");
	expect_error(PROC("\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1}]"),
		     "process.rlimits: 'RLIMIT_NOFILE' needs soft and hard");
	expect_error(PROC("\"oomScoreAdj\": 5000"), "process.oomScoreAdj: expected an integer");
	expect_error("{" OCI_HEAD OCI_ARGS "\"linux\": {}}", "namespaces.mount must be \"new\"");
	expect_error("{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"time\"}]}}",
		     "linux.namespaces[0]: unknown namespace type 'time'");
	expect_error("{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"mount\"},"
		     " {\"type\": \"mount\"}]}}",
		     "linux.namespaces[1]: namespace 'mount' given twice");
	expect_error("{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"mount\"},"
		     " {\"type\": \"network\", \"path\": 7}]}}",
		     "linux.namespaces[1]: expected a string, got number");
	expect_error("{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"mount\"},"
		     " {\"type\": \"user\"}]}}",
		     "a new user namespace needs uid and gid mappings");
	expect_error("{" OCI_HEAD OCI_ARGS "\"linux\": {\"namespaces\": [{\"type\": \"mount\"},"
		     " {\"type\": \"user\"}], \"uidMappings\": [{\"containerID\": 0,"
		     " \"hostID\": 1, \"size\": 0}]}}",
		     "linux.uidMappings[0]: size is 0");
	expect_error(LINUX("\"devices\": [{\"path\": \"/dev/x\", \"type\": \"z\"}]"),
		     "type must be c, b or p");
	expect_error(
	    LINUX("\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\", \"major\": \"1\"}]"),
	    "linux.devices[0]: expected a non-negative integer, got string");
	expect_error(LINUX("\"sysctl\": {\"../../etc\": \"1\"}"), "sysctl '../../etc'");
	expect_error(LINUX("\"sysctl\": {\"kernel.x\": 1}"),
		     "linux.sysctl: 'kernel.x': expected a string, got number");
	expect_error(LINUX("\"rootfsPropagation\": \"unbindable\""),
		     "linux.rootfsPropagation: unsupported propagation 'unbindable'");
	expect_error(LINUX("\"maskedPaths\": [\"proc/kcore\"]"),
		     "masked_paths: path 'proc/kcore' is not absolute");
	expect_error(LINUX("\"seccomp\": []"), "linux.seccomp: expected an object, got array");
	expect_error(LINUX("\"uidMappings\": [{\"containerID\": 0, \"hostID\": 1, \"size\": 1}]"),
		     "uid/gid mappings need a user namespace");
	expect_error("{" MINIMAL
		     ", \"mounts\": [{\"destination\": \"data\", \"type\": \"tmpfs\"}]}",
		     "mount 'data': destination is not absolute");
	expect_error("{" MINIMAL ", \"mounts\": [{\"destination\": \"/d\", \"type\": \"bind\","
		     " \"source\": \"rel\"}]}",
		     "bind source 'rel' is not absolute");
	expect_error("{" MINIMAL
		     ", \"mounts\": [{\"destination\": \"/proc\", \"type\": \"proc\"}]}",
		     "mount '/proc': the runtime owns /proc");
	expect_error("{" MINIMAL ", \"mounts\": [{\"destination\": \"/x\", \"type\": \"tmpfs\","
		     " \"options\": \"ro\"}]}",
		     "mounts[0]: expected an array, got string");
	/* The annotations. */
	expect_error("{" MINIMAL ", \"annotations\": []}", "annotations: expected an object");
	expect_error("{" MINIMAL ", \"annotations\": {\"a\": 1}}",
		     "annotations: 'a': expected a string, got number");
	expect_error("{" MINIMAL ", \"annotations\": {\"io.husk.stdin\": \"true\","
		     " \"io.husk.stdin\": \"true\"}}",
		     "annotations: 'io.husk.stdin' given twice");
	expect_error(ANN("io.husk.privileged", "yes"),
		     "io.husk.privileged: expected \"true\" or \"false\", got 'yes'");
	expect_error(ANN("io.husk.seccomp-filter", "f.bpf"),
		     "io.husk.seccomp-filter: 'f.bpf' is not an absolute path");
	expect_error(ANN("io.husk.seccomp-profile", "/p.json"),
		     "io.husk.seccomp-profile: given without linux.seccomp");
	expect_error(ANN("io.husk.cgroup-procs", "/sys/fs/cgroup/x"), "io.husk.cgroup-procs");
	expect_error(ANN("io.husk.cgroup-procs", "[1]"),
		     "io.husk.cgroup-procs: entry 0: expected a string, got number");
	expect_error(ANN("io.husk.cgroup-procs", "[\\\"x/cgroup.procs\\\"]"),
		     "cgroup_procs: path 'x/cgroup.procs' is not absolute");
	expect_error(ANN("io.husk.oci-runtime", "{\\\"path\\\": \\\"runc\\\"}"),
		     "io.husk.oci-runtime: path and root must be absolute paths");
	expect_error(ANN("io.husk.runtime-mounts", "1"),
		     "io.husk.runtime-mounts: '1' is not a count of mounts (0 to 0)");
	expect_error(ANN("io.husk.runtime-mounts", "-0"), "io.husk.runtime-mounts");
	expect_error("{" MINIMAL
		     ", \"mounts\": [{\"destination\": \"/etc/passwd\", \"type\": \"bind\","
		     " \"source\": \"/x\"}], \"annotations\": {\"io.husk.runtime-mounts\": \"1\"}}",
		     "mounts[0]: '/etc/passwd' is not a mount the runtime sets up");
	expect_error("{" MINIMAL
		     ", \"mounts\": [{\"destination\": \"/etc/hosts\", \"type\": \"bind\","
		     " \"source\": \"x\"}], \"annotations\": {\"io.husk.runtime-mounts\": \"1\"}}",
		     "mounts[0]: source of '/etc/hosts' is not an absolute path");
	expect_error(LINUX("\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\"}]}, "
			   "\"annotations\": {\"io.husk.device-sources\": \"{\\\"/dev/x\\\": "
			   "\\\"x\\\"}\"}, \"z\": {"),
		     "io.husk.device-sources: '/dev/x': source 'x' is not an absolute path");
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
	_cleanup_(ctr_spec_freep) struct ctr_spec *s2 = roundtrip(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s2);
	assert_same_spec(s, s2);
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

/* ---- mount targets made before the cgroup join ---- */

static mode_t mode_of(const char *root, const char *rel)
{
	_cleanup_free_ char *p = xasprintf("%s%s", root, rel);
	struct stat st;
	return lstat(p, &st) == 0 ? st.st_mode : 0;
}

/* A mount inside the tree stops the walk of the targets (stage 2 may
 * mount over it, or it is a file system the container does not own):
 * in a mount namespace of a child's own, with a tmpfs on /mnt. */
static void test_make_targets_stop_at_a_mount(void)
{
	char *base = unit_tmpdir();
	_cleanup_free_ char *root = xasprintf("%s/root-mnt", base);
	_cleanup_free_ char *mnt = xasprintf("%s/mnt", root);
	CU_ASSERT_EQUAL_FATAL(mkdir(root, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(mnt, 0755), 0);
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNS) < 0 ||
		    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("tmpfs", mnt, "tmpfs", 0, "size=64k") < 0)
			_exit(10);
		int rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
		struct ctr_mount m[] = {{.destination = "/mnt/vol", .type = "tmpfs"},
					{.destination = "/on-root", .type = "tmpfs"}};
		struct ctr_spec sp = {.mounts = m, .n_mounts = ARRAY_SIZE(m), .rootfs = root};
		lc_make_targets_at(rootfd, &sp, "/mnt/wd");
		struct stat st;
		if (fstatat(rootfd, "mnt/vol", &st, 0) == 0 ||
		    fstatat(rootfd, "mnt/wd", &st, 0) == 0)
			_exit(11);
		if (fstatat(rootfd, "on-root", &st, 0) < 0)
			_exit(12);
		/* The walk itself: EXDEV with LC_WALK_SAME_DEV, through without. */
		struct husk_error e = HUSK_ERROR_INIT;
		int fd = -1;
		if (lc_walk_in_root(rootfd, "/mnt/x", CTR_CREATE_DIR, LC_WALK_SAME_DEV, &fd, &e) !=
			-EXDEV ||
		    e.code != EXDEV)
			_exit(13);
		husk_error_clear(&e);
		if (lc_walk_in_root(rootfd, "/mnt/x", CTR_CREATE_DIR, 0, &fd, &e) < 0)
			_exit(14);
		_exit(0);
	}
	int status = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
	CU_ASSERT_TRUE(WIFEXITED(status));
	CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
	/* The child's tmpfs went with its namespace: nothing on the host. */
	struct stat st;
	CU_ASSERT_EQUAL(lstat(mnt, &st), 0);
	_cleanup_free_ char *x = xasprintf("%s/x", mnt);
	CU_ASSERT_FALSE(fs_exists(x));
	unit_rmdir(base);
}

static void test_make_targets(void)
{
	char *base = unit_tmpdir();
	_cleanup_free_ char *root = xasprintf("%s/root", base);
	_cleanup_free_ char *outside = xasprintf("%s/outside", base);
	_cleanup_free_ char *cmd =
	    xasprintf("mkdir -p %s/etc %s/var %s && ln -s %s %s/var/run && ln -s /etc %s/etcl && "
		      "mkdir %s/srcdir && touch %s/srcfile",
		      root, root, outside, outside, root, root, base, base);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	_cleanup_free_ char *srcdir = xasprintf("%s/srcdir", base);
	_cleanup_free_ char *srcfile = xasprintf("%s/srcfile", base);
	struct ctr_mount mounts[] = {
	    {.destination = "/data/vol", .source = srcdir, .bind = true},
	    {.destination = "/etc/app.yaml", .source = srcfile, .bind = true},
	    {.destination = "/cache", .type = "tmpfs"},
	    {.destination = "/cache/inner", .source = srcdir, .bind = true},
	    {.destination = "/dev/termination-log", .source = srcfile, .bind = true},
	    {.destination = "/proc/x", .source = srcdir, .bind = true},
	    {.destination = "/sys/y", .source = srcdir, .bind = true},
	    {.destination = "/var/run/secrets", .source = srcdir, .bind = true},
	    {.destination = "/etcl/via-link", .source = srcfile, .bind = true},
	    {.destination = "/gone", .source = "/nonexistent/husk", .bind = true},
	    {.destination = "//twice//slashes/", .source = srcdir, .bind = true},
	};
	struct ctr_spec s = {0};
	s.mounts = mounts;
	s.n_mounts = ARRAY_SIZE(mounts);
	s.hostname_path = srcfile;
	s.hosts_path = srcfile;
	s.rootfs = root;
	_cleanup_close_ int rootfd = open(root, O_PATH | O_DIRECTORY);
	CU_ASSERT_FATAL(rootfd >= 0);
	mode_t old = umask(077);
	lc_make_targets_at(rootfd, &s, "/work/dir");
	umask(old);

	/* What stage 2 would create on the rootfs, with its modes. */
	static const struct {
		const char *rel;
		mode_t mode;
	} made[] = {
	    {"/etc/hostname", S_IFREG | 0644},	{"/etc/hosts", S_IFREG | 0644},
	    {"/data", S_IFDIR | 0755},		{"/data/vol", S_IFDIR | 0755},
	    {"/etc/app.yaml", S_IFREG | 0644},	{"/cache", S_IFDIR | 0755},
	    {"/twice/slashes", S_IFDIR | 0755}, {"/work/dir", S_IFDIR | 0755},
	};
	for (size_t i = 0; i < ARRAY_SIZE(made); i++) {
		mode_t m = mode_of(root, made[i].rel);
		if (m != made[i].mode)
			fprintf(stderr, "\n%s: mode %o, want %o\n", made[i].rel, m, made[i].mode);
		CU_ASSERT_EQUAL(m, made[i].mode);
	}
	/* Not asked for, under a mount stage 2 makes first, under the
	 * runtime's trees, through a symlink, with "..", or of a source
	 * that is gone: left to stage 2. */
	static const char *const not_made[] = {
	    "/etc/resolv.conf", "/cache/inner",	 "/dev",  "/proc", "/sys",
	    "/var/run/secrets", "/etc/via-link", "/gone",
	};
	for (size_t i = 0; i < ARRAY_SIZE(not_made); i++) {
		if (mode_of(root, not_made[i]))
			fprintf(stderr, "\n%s: made\n", not_made[i]);
		CU_ASSERT_EQUAL(mode_of(root, not_made[i]), 0);
	}
	_cleanup_free_ char *leak = xasprintf("%s/secrets", outside);
	CU_ASSERT_FALSE(fs_exists(leak));
	/* The working directory under a mount is stage 2's too. */
	lc_make_targets_at(rootfd, &s, "/cache/wd");
	CU_ASSERT_EQUAL(mode_of(root, "/cache/wd"), 0);
	/* A destination with "..": where it lands is stage 2's to find (a
	 * symlink may decide), so neither it nor anything after it is made. */
	struct ctr_mount dotdot[] = {
	    {.destination = "/x/../dotdot", .source = srcdir, .bind = true},
	    {.destination = "/after", .source = srcdir, .bind = true},
	};
	struct ctr_spec s2 = {.mounts = dotdot, .n_mounts = ARRAY_SIZE(dotdot), .rootfs = root};
	lc_make_targets_at(rootfd, &s2, "/after-wd");
	CU_ASSERT_EQUAL(mode_of(root, "/dotdot"), 0);
	CU_ASSERT_EQUAL(mode_of(root, "/x"), 0);
	CU_ASSERT_EQUAL(mode_of(root, "/after"), 0);
	CU_ASSERT_EQUAL(mode_of(root, "/after-wd"), 0);

	/* With a user namespace stage 2 creates, as the namespace's root. */
	_cleanup_free_ char *root2 = xasprintf("%s/root2", base);
	CU_ASSERT_EQUAL_FATAL(mkdir(root2, 0755), 0);
	_cleanup_close_ int root2fd = open(root2, O_PATH | O_DIRECTORY);
	s.ns[CTR_NS_USER].mode = CTR_NS_NEW;
	lc_make_targets_at(root2fd, &s, "/work");
	s.ns[CTR_NS_USER].mode = CTR_NS_JOIN;
	lc_make_targets_at(root2fd, &s, "/work");
	CU_ASSERT_EQUAL(mode_of(root2, "/etc"), 0);
	CU_ASSERT_EQUAL(mode_of(root2, "/work"), 0);
	unit_rmdir(base);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"spec defaults", test_spec_defaults},
	    {"config: every field", test_spec_full},
	    {"config husk wrote reads back to its spec", test_spec_husk_roundtrip},
	    {"config: io.husk annotations of a CRI request dropped", test_spec_annotation_spoof},
	    {"config: idmapped mounts", test_spec_idmapped_mounts},
	    {"spec.json of an older huskd", test_spec_legacy},
	    {"config errors name the key", test_spec_errors},
	    {"capability names", test_caps_names},
	    {"capability add/drop", test_caps_add_drop},
	    {"caps ambient", test_caps_ambient},
	    {"mount options and rlimits", test_mount_options_rlimits},
	    {"mount destinations: /, /proc, /sys", test_mount_destinations},
	    {"resolve in root (openat2)", test_resolve_openat2},
	    {"resolve in root (walk)", test_resolve_walk},
	    {"mount targets made before the cgroup join", test_make_targets},
	    {"mount targets stop at a mount inside the rootfs", test_make_targets_stop_at_a_mount},
	};
	return unit_run("launcher", tests, ARRAY_SIZE(tests));
}
