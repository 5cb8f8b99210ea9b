/* Pod sandboxes on the real kernel (root only; each test skips otherwise):
 * namespaces pinned and configured, files and shm, the PID-namespace init,
 * failure and teardown leaving nothing in mountinfo or the state dir. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "common/proc.h"
#include "runtime/sandbox.h"
#include "unit.h"

static bool have_root(void)
{
	if (geteuid() == 0)
		return true;
	printf("  (skipped: needs root) ");
	return false;
}

static char *new_id(void)
{
	unsigned char b[32];
	if (getrandom(b, sizeof(b), 0) != sizeof(b))
		abort();
	char *s = xmalloc(65);
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(s + 2 * i, 3, "%02x", b[i]);
	return s;
}

/* Up to 64 MiB: mountinfo lists the mounts of every pod on the node (a
 * thousand-pod benchmark beside the tests is over 1 MiB of it). */
static char *slurp(const char *path)
{
	char *text = NULL;
	if (fs_read_file(path, 64 << 20, &text, NULL, NULL) < 0)
		return NULL;
	return text;
}

/* Mount points at or under dir, straight from /proc/self/mountinfo. */
static int mounts_under(const char *dir)
{
	_cleanup_free_ char *text = slurp("/proc/self/mountinfo");
	/* Unread, every count would be 0 and every leak check pass. */
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	int n = 0;
	size_t len = strlen(dir);
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char point[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 &&
		    strncmp(point, dir, len) == 0 && (point[len] == '/' || point[len] == '\0'))
			n++;
		line = nl ? nl + 1 : NULL;
	}
	return n;
}

/* The last mountinfo line of the mount at exactly path, or NULL. */
static char *mount_line(const char *path)
{
	_cleanup_free_ char *text = slurp("/proc/self/mountinfo");
	CU_ASSERT_PTR_NOT_NULL_FATAL(text);
	char *found = NULL;
	for (char *line = text; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char point[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) == 1 && streq(point, path)) {
			free(found);
			found = xstrdup(line);
		}
		line = nl ? nl + 1 : NULL;
	}
	return found;
}

static ino_t ns_ino(const char *path)
{
	ino_t ino = 0;
	struct husk_error err = HUSK_ERROR_INIT;
	if (pod_ns_inode(path, &ino, &err) < 0)
		husk_error_clear(&err);
	return ino;
}

/* Run fn in a forked child after joining the namespace pinned at pin;
 * returns the child's exit status (0: the check passed). */
static int in_ns(const char *pin, int nstype, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(pin, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, nstype) < 0)
			_exit(100);
		_exit(fn(arg));
	}
	int status = 0;
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

static int check_lo_up(void *arg _unused_)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		return 2;
	return (ifr.ifr_flags & IFF_UP) ? 0 : 1;
}

static int check_hostname(void *arg)
{
	struct utsname u;
	uname(&u);
	return streq(u.nodename, arg) ? 0 : 1;
}

struct sysctl_want {
	const char *path;
	const char *value;
};

static int check_sysctl(void *arg)
{
	const struct sysctl_want *w = arg;
	_cleanup_free_ char *v = slurp(w->path);
	if (!v)
		return 2;
	v[strcspn(v, "\n")] = '\0';
	/* Tabs and spaces vary between kernels for multi-value sysctls. */
	for (char *p = v; *p; p++)
		if (*p == '\t')
			*p = ' ';
	return streq(v, w->value) ? 0 : 1;
}

static void assert_clean(const char *state, const char *id)
{
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_strv_ char **left = NULL;
	CU_ASSERT_EQUAL(pod_sandbox_leftovers(state, id, &left, &err), 0);
	for (size_t i = 0; left && left[i]; i++)
		printf("\n    leftover: %s", left[i]);
	CU_ASSERT_EQUAL(strv_length(left), 0);
	_cleanup_free_ char *dir = xasprintf("%s/pods/%s", state, id);
	CU_ASSERT_FALSE(fs_exists(dir));
	_cleanup_free_ char *mnt = xasprintf("%s/pods-mnt/%s", state, id);
	CU_ASSERT_FALSE(fs_exists(mnt));
	_cleanup_free_ char *pods = xasprintf("%s/pods", state);
	CU_ASSERT_EQUAL(mounts_under(pods), 0);
	/* only the private mount of pods-mnt/ itself */
	_cleanup_free_ char *mnts = xasprintf("%s/pods-mnt", state);
	CU_ASSERT(mounts_under(mnts) <= 1);
	husk_error_clear(&err);
}

/* Release the state dir's pods/ and check nothing at all is mounted. */
static void release_state(char *state)
{
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(pod_sandbox_root_release(state, &err), 0);
	CU_ASSERT_EQUAL(mounts_under(state), 0);
	husk_error_clear(&err);
	unit_rmdir(state);
}

/* ---- validation (no root needed) ------------------------------------------ */

static void expect_refused(const struct pod_sandbox_spec *spec, int code, const char *needle)
{
	char *state = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL(pod_sandbox_create(state, spec, &info, &err), -code);
	CU_ASSERT_EQUAL(err.code, code);
	if (!strstr(husk_error_msg(&err), needle))
		printf("\n    message '%s' lacks '%s'", husk_error_msg(&err), needle);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), needle));
	CU_ASSERT_PTR_NULL(info.dir);
	_cleanup_free_ char *pods = xasprintf("%s/pods", state);
	CU_ASSERT_FALSE(fs_exists(pods));
	husk_error_clear(&err);
	unit_rmdir(state);
}

static void test_spec_refused(void)
{
	struct pod_sandbox_spec s = {.id = "abc"};
	s.id = "../x";
	expect_refused(&s, EINVAL, "pod id");
	s.id = "";
	expect_refused(&s, EINVAL, "pod id");
	s.id = "abc";
	s.net = POD_NS_TARGET;
	expect_refused(&s, EINVAL, "network namespace mode");
	s.net = POD_NS_POD;
	s.pid = POD_NS_TARGET;
	expect_refused(&s, EINVAL, "PID namespace mode");
	s.pid = POD_NS_CONTAINER;
	s.hostname = "bad host";
	expect_refused(&s, EINVAL, "hostname 'bad host'");
	s.hostname = "ok";
	char *servers[] = {"10.0.0.1", "not-an-ip", NULL};
	s.dns_servers = servers;
	expect_refused(&s, EINVAL, "dns server 'not-an-ip'");
	char *servers_ok[] = {"10.0.0.1", "fd00::1", "fe80::1%eth0", NULL};
	char *searches[] = {"a b", NULL};
	s.dns_servers = servers_ok;
	s.dns_searches = searches;
	expect_refused(&s, EINVAL, "dns search 'a b'");
	s.dns_searches = NULL;
	s.init_path = "relative/init";
	expect_refused(&s, EINVAL, "init path");
}

static void test_sysctls_refused(void)
{
	/* A good sysctl first and the bad one last: nothing is created. */
	struct pod_sysctl bad[][2] = {
	    {{"net.ipv4.ip_forward", "1"}, {"kernel.panic", "1"}},
	    {{"net.ipv4.ip_forward", "1"}, {"vm.swappiness", "1"}},
	    {{"net.ipv4.ip_forward", "1"}, {"kernel.hostname", "x"}},
	    {{"net.ipv4.ip_forward", "1"}, {"net..ipv4", "1"}},
	    {{"net.ipv4.ip_forward", "1"}, {"net/ipv4/../../kernel/panic", "1"}},
	    {{"net.ipv4.ip_forward", "1"}, {"fs.mqueue", "1"}},
	    {{"net.ipv4.ip_forward", "1"}, {"net.ipv4.ip_forward", "1\nkernel.panic=1"}},
	};
	const char *names[] = {"kernel.panic",
			       "vm.swappiness",
			       "kernel.hostname",
			       "net..ipv4",
			       "net/ipv4/../../kernel/panic",
			       "fs.mqueue",
			       "net.ipv4.ip_forward"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct pod_sandbox_spec s = {.id = "abc", .sysctls = bad[i], .n_sysctls = 2};
		_cleanup_free_ char *needle = xasprintf("sysctl '%s'", names[i]);
		expect_refused(&s, EINVAL, needle);
	}
	struct pod_sysctl net[] = {{"net.core.somaxconn", "1024"}};
	struct pod_sandbox_spec host = {
	    .id = "abc", .net = POD_NS_NODE, .sysctls = net, .n_sysctls = 1};
	expect_refused(&host, EINVAL, "host network");
	struct pod_sysctl ipc[] = {{"kernel.shmmax", "1024"}};
	struct pod_sandbox_spec hostipc = {
	    .id = "abc", .ipc = POD_NS_NODE, .sysctls = ipc, .n_sysctls = 1};
	expect_refused(&hostipc, EINVAL, "host IPC");
}

static void test_sysctl_check(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	const char *ok[] = {"net.ipv4.ip_forward",  "net/ipv4/conf/eth0.100/rp_filter",
			    "kernel.shmmax",	    "kernel.shm_rmid_forced",
			    "kernel.msgmnb",	    "kernel.sem",
			    "fs.mqueue.queues_max", "net.core.somaxconn"};
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		CU_ASSERT_EQUAL(pod_sysctl_check(ok[i], "1", POD_NS_POD, POD_NS_POD, &err), 0);
	CU_ASSERT_EQUAL(
	    pod_sysctl_check("kernel.sem", "250 32000 32 128", POD_NS_NODE, POD_NS_POD, &err), 0);
	CU_ASSERT_EQUAL(pod_sysctl_check("net.ipv4.ip_forward", "", POD_NS_POD, POD_NS_POD, &err),
			-EINVAL);
	CU_ASSERT_EQUAL(pod_sysctl_check("kernel.semx", "1", POD_NS_POD, POD_NS_POD, &err),
			-EINVAL);
	CU_ASSERT_EQUAL(pod_sysctl_check("net", "1", POD_NS_POD, POD_NS_POD, &err), -EINVAL);
	CU_ASSERT_EQUAL(pod_sysctl_check("net.ipv4.ip_forward", "1", POD_NS_NODE, POD_NS_POD, &err),
			-EINVAL);
	husk_error_clear(&err);
	CU_ASSERT_STRING_EQUAL(pod_ns_mode_name(POD_NS_NODE), "NODE");
	CU_ASSERT_EQUAL(pod_ns_mode_parse("CONTAINER"), POD_NS_CONTAINER);
	CU_ASSERT_EQUAL(pod_ns_mode_parse("x"), -1);
}

static void test_destroy_unknown(void)
{
	char *state = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "nothere", &err), 0);
	CU_ASSERT_EQUAL(pod_sandbox_destroy("/nonexistent/husk-state", "nothere", &err), 0);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "../etc", &err), -EINVAL);
	struct pod_sandbox_info info;
	CU_ASSERT_EQUAL(pod_sandbox_load(state, "nothere", &info, &err), -ENOENT);
	_cleanup_strv_ char **ids = NULL;
	CU_ASSERT_EQUAL(pod_sandbox_list(state, &ids, &err), 0);
	CU_ASSERT_EQUAL(strv_length(ids), 0);
	husk_error_clear(&err);
	unit_rmdir(state);
}

/* ---- real pods ----------------------------------------------------------------- */

static void test_create_and_destroy(void)
{
	if (!have_root())
		return;
	char *state = unit_tmpdir();
	_cleanup_free_ char *id = new_id();
	struct pod_sysctl sysctls[] = {
	    {"net.ipv4.ip_forward", "1"},
	    {"net.ipv4.ping_group_range", "0 2147483647"},
	    {"kernel.shmmni", "1234"},
	    {"fs.mqueue.queues_max", "77"},
	};
	char *servers[] = {"10.96.0.10", "fd00::10", NULL};
	char *searches[] = {"default.svc.cluster.local", "svc.cluster.local", NULL};
	char *options[] = {"ndots:5", "timeout:2", NULL};
	struct pod_sandbox_spec spec = {
	    .id = id,
	    .hostname = "web-1",
	    .pid = POD_NS_CONTAINER,
	    .sysctls = sysctls,
	    .n_sysctls = ARRAY_SIZE(sysctls),
	    .dns_servers = servers,
	    .dns_searches = searches,
	    .dns_options = options,
	};
	_cleanup_free_ char *host_fwd = slurp("/proc/sys/net/ipv4/ip_forward");
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	int r = pod_sandbox_create(state, &spec, &info, &err);
	if (r < 0)
		printf("\n    create: %s", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);

	_cleanup_free_ char *dir = xasprintf("%s/pods/%s", state, id);
	CU_ASSERT_STRING_EQUAL(info.dir, dir);
	CU_ASSERT_STRING_EQUAL(info.hostname, "web-1");
	CU_ASSERT_PTR_NULL(info.pid_ns);
	CU_ASSERT_EQUAL(info.init_pid, 0);

	/* Each pin is a live namespace, not the host's. */
	const char *host[] = {"/proc/self/ns/net", "/proc/self/ns/ipc", "/proc/self/ns/uts"};
	const char *pins[] = {info.net_ns, info.ipc_ns, info.uts_ns};
	for (int i = 0; i < 3; i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(pins[i]);
		ino_t a = ns_ino(pins[i]), b = ns_ino(host[i]);
		CU_ASSERT(a != 0);
		CU_ASSERT(b != 0);
		CU_ASSERT(a != b);
	}

	CU_ASSERT_EQUAL(in_ns(info.net_ns, CLONE_NEWNET, check_lo_up, NULL), 0);
	CU_ASSERT_EQUAL(in_ns(info.uts_ns, CLONE_NEWUTS, check_hostname, "web-1"), 0);
	struct sysctl_want fwd = {"/proc/sys/net/ipv4/ip_forward", "1"};
	struct sysctl_want ping = {"/proc/sys/net/ipv4/ping_group_range", "0 2147483647"};
	struct sysctl_want shm = {"/proc/sys/kernel/shmmni", "1234"};
	struct sysctl_want mq = {"/proc/sys/fs/mqueue/queues_max", "77"};
	CU_ASSERT_EQUAL(in_ns(info.net_ns, CLONE_NEWNET, check_sysctl, &fwd), 0);
	CU_ASSERT_EQUAL(in_ns(info.net_ns, CLONE_NEWNET, check_sysctl, &ping), 0);
	CU_ASSERT_EQUAL(in_ns(info.ipc_ns, CLONE_NEWIPC, check_sysctl, &shm), 0);
	CU_ASSERT_EQUAL(in_ns(info.ipc_ns, CLONE_NEWIPC, check_sysctl, &mq), 0);
	/* The host keeps its own values. */
	_cleanup_free_ char *host_fwd_after = slurp("/proc/sys/net/ipv4/ip_forward");
	CU_ASSERT_STRING_EQUAL(host_fwd, host_fwd_after);
	struct utsname u;
	uname(&u);
	CU_ASSERT_STRING_NOT_EQUAL(u.nodename, "web-1");

	/* shm: a 64 MiB tmpfs, 1777, nosuid,nodev,noexec. */
	struct statfs sfs;
	CU_ASSERT_EQUAL_FATAL(statfs(info.shm, &sfs), 0);
	CU_ASSERT_EQUAL(sfs.f_type, TMPFS_MAGIC);
	CU_ASSERT_EQUAL((unsigned long long)sfs.f_blocks * sfs.f_bsize, 64ULL << 20);
	struct stat st;
	CU_ASSERT_EQUAL(stat(info.shm, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 07777, 01777);
	_cleanup_free_ char *fields = mount_line(info.shm);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fields);
	CU_ASSERT_PTR_NOT_NULL(strstr(fields, "nosuid"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fields, "nodev"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fields, "noexec"));

	_cleanup_free_ char *resolv = slurp(info.resolv_file);
	CU_ASSERT_STRING_EQUAL(resolv, "search default.svc.cluster.local svc.cluster.local\n"
				       "nameserver 10.96.0.10\n"
				       "nameserver fd00::10\n"
				       "options ndots:5 timeout:2\n");
	_cleanup_free_ char *hostname = slurp(info.hostname_file);
	CU_ASSERT_STRING_EQUAL(hostname, "web-1\n");
	_cleanup_free_ char *hosts = slurp(info.hosts_file);
	CU_ASSERT_PTR_NOT_NULL(strstr(hosts, "127.0.0.1\tlocalhost\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(hosts, "::1\tlocalhost"));
	CU_ASSERT_PTR_NOT_NULL(strstr(hosts, "\tweb-1\n"));

	/* Addresses from pod networking replace the placeholder line. */
	char *ips[] = {"10.1.2.3", "fd00::3", NULL};
	CU_ASSERT_EQUAL(pod_sandbox_set_ips(state, id, ips, &err), 0);
	free(hosts);
	hosts = slurp(info.hosts_file);
	CU_ASSERT_PTR_NOT_NULL(strstr(hosts, "10.1.2.3\tweb-1\nfd00::3\tweb-1\n"));
	CU_ASSERT_PTR_NULL(strstr(hosts, "127.0.1.1"));
	char *bad_ips[] = {"10.1.2.3\n1.1.1.1 evil", NULL};
	CU_ASSERT_EQUAL(pod_sandbox_set_ips(state, id, bad_ips, &err), -EINVAL);

	/* A restarted daemon sees the same sandbox. */
	struct pod_sandbox_info again = {0};
	CU_ASSERT_EQUAL(pod_sandbox_load(state, id, &again, &err), 0);
	CU_ASSERT_STRING_EQUAL(again.net_ns, info.net_ns);
	CU_ASSERT_STRING_EQUAL(again.shm, info.shm);
	CU_ASSERT_STRING_EQUAL(again.hostname, "web-1");
	CU_ASSERT_EQUAL(again.pid, POD_NS_CONTAINER);
	pod_sandbox_info_clear(&again);
	_cleanup_strv_ char **ids = NULL;
	CU_ASSERT_EQUAL(pod_sandbox_list(state, &ids, &err), 0);
	CU_ASSERT_EQUAL(strv_length(ids), 1);
	CU_ASSERT_STRING_EQUAL(ids[0], id);

	/* The same id again is refused and leaves the first pod alone. */
	struct pod_sandbox_info dup = {0};
	CU_ASSERT_EQUAL(pod_sandbox_create(state, &spec, &dup, &err), -EEXIST);
	CU_ASSERT(ns_ino(info.net_ns) != 0);

	_cleanup_strv_ char **left = NULL;
	CU_ASSERT_EQUAL(pod_sandbox_leftovers(state, id, &left, &err), 0);
	CU_ASSERT(strv_length(left) >= 5); /* 4 mounts and the directory */

	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, id, &err), 0);
	assert_clean(state, id);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, id, &err), 0);
	pod_sandbox_info_clear(&info);
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

static void test_host_namespaces(void)
{
	if (!have_root())
		return;
	char *state = unit_tmpdir();
	unit_write(state, "etc-hosts", "127.0.0.1 localhost\n10.0.0.5 node-a\n");
	unit_write(state, "etc-resolv", "nameserver 192.0.2.53\n");
	_cleanup_free_ char *hosts_src = xasprintf("%s/etc-hosts", state);
	_cleanup_free_ char *resolv_src = xasprintf("%s/etc-resolv", state);
	struct pod_sandbox_spec spec = {
	    .id = "hostpod",
	    .hostname = "ignored",
	    .net = POD_NS_NODE,
	    .ipc = POD_NS_NODE,
	    .uts = POD_NS_NODE,
	    .pid = POD_NS_NODE,
	    .host_hosts = hosts_src,
	    .host_resolv = resolv_src,
	};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	CU_ASSERT_PTR_NULL(info.net_ns);
	CU_ASSERT_PTR_NULL(info.ipc_ns);
	CU_ASSERT_PTR_NULL(info.uts_ns);
	CU_ASSERT_PTR_NULL(info.pid_ns);
	CU_ASSERT_STRING_EQUAL(info.shm, "/dev/shm");
	struct utsname u;
	uname(&u);
	CU_ASSERT_STRING_EQUAL(info.hostname, u.nodename);
	_cleanup_free_ char *hosts = slurp(info.hosts_file);
	CU_ASSERT_STRING_EQUAL(hosts, "127.0.0.1 localhost\n10.0.0.5 node-a\n");
	_cleanup_free_ char *resolv = slurp(info.resolv_file);
	CU_ASSERT_STRING_EQUAL(resolv, "nameserver 192.0.2.53\n");
	_cleanup_free_ char *dir = xasprintf("%s/pods/hostpod", state);
	CU_ASSERT_EQUAL(mounts_under(dir), 0);
	char *ips[] = {"10.0.0.9", NULL};
	CU_ASSERT_EQUAL(pod_sandbox_set_ips(state, "hostpod", ips, &err), -EBUSY);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "hostpod", &err), 0);
	assert_clean(state, "hostpod");
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

static void test_failure_midway_leaves_nothing(void)
{
	if (!have_root())
		return;
	char *state = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};

	/* Passes validation, fails in the kernel after the directory, the child
	 * and its namespaces exist. */
	struct pod_sysctl missing[] = {{"net.ipv4.ip_forward", "1"},
				       {"net.ipv4.husk_no_such_knob", "1"}};
	struct pod_sandbox_spec spec = {.id = "fail1", .sysctls = missing, .n_sysctls = 2};
	CU_ASSERT_EQUAL(pod_sandbox_create(state, &spec, &info, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "net.ipv4.husk_no_such_knob"));
	assert_clean(state, "fail1");

	struct pod_sysctl badval[] = {{"net.ipv4.ip_forward", "banana"}};
	spec = (struct pod_sandbox_spec){.id = "fail2", .sysctls = badval, .n_sysctls = 1};
	CU_ASSERT_EQUAL(pod_sandbox_create(state, &spec, &info, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "net.ipv4.ip_forward"));
	assert_clean(state, "fail2");

	/* Fails after every namespace is pinned and the init released. */
	spec = (struct pod_sandbox_spec){
	    .id = "fail3", .pid = POD_NS_POD, .init_path = "/nonexistent/husk-init"};
	CU_ASSERT_EQUAL(pod_sandbox_create(state, &spec, &info, &err), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "exec pod init"));
	assert_clean(state, "fail3");

	/* The same in the init cloned straight into its namespaces (a PID
	 * namespace and an init binary): it fails before it execs. */
	spec = (struct pod_sandbox_spec){.id = "fail5",
					 .pid = POD_NS_POD,
					 .init_path = "/bin/true",
					 .sysctls = missing,
					 .n_sysctls = 2};
	CU_ASSERT_EQUAL(pod_sandbox_create(state, &spec, &info, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "net.ipv4.husk_no_such_knob"));
	assert_clean(state, "fail5");

	/* Fails on the last file, after shm is mounted. */
	_cleanup_free_ char *a_dir = xasprintf("%s/a-dir", state);
	mkdir(a_dir, 0755);
	spec = (struct pod_sandbox_spec){.id = "fail4", .pid = POD_NS_POD, .host_resolv = a_dir};
	CU_ASSERT(pod_sandbox_create(state, &spec, &info, &err) < 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "resolv.conf"));
	assert_clean(state, "fail4");
	CU_ASSERT_PTR_NULL(info.dir);
	rmdir(a_dir);
	husk_error_clear(&err);
	release_state(state);
}

/* Processes whose parent is ppid (zombies included). */
static int children_of(pid_t ppid)
{
	int n = 0;
	_cleanup_strv_ char **names = NULL;
	fs_list_dir("/proc", NULL, &names, NULL);
	for (size_t i = 0; names && names[i]; i++) {
		if (!isdigit((unsigned char)names[i][0]))
			continue;
		_cleanup_free_ char *p = xasprintf("/proc/%s/stat", names[i]);
		_cleanup_free_ char *text = slurp(p);
		char *rp = text ? strrchr(text, ')') : NULL;
		int parent = 0;
		if (rp && sscanf(rp + 1, " %*c %d", &parent) == 1 && parent == ppid)
			n++;
	}
	return n;
}

static void test_idmaps_check(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_idmap one[] = {{0, 1U << 20, 65536}};
	CU_ASSERT_EQUAL(pod_idmaps_check(one, 1, "uids", &err), 0);
	struct pod_idmap split[] = {{0, 200000, 1000}, {1000, 300000, 64536}};
	CU_ASSERT_EQUAL(pod_idmaps_check(split, 2, "uids", &err), 0);
	struct {
		struct pod_idmap m[2];
		size_t n;
		const char *msg;
	} bad[] = {
	    {{{0, 0, 0}}, 0, "uids: no mapping"},
	    {{{0, 200000, 0}}, 1, "uids[0]: length 0"},
	    {{{0, 0, 65536}}, 1, "uids[0]: maps the host's root"},
	    {{{0, 4294967295U, 2}}, 1, "uids[0]: range past"},
	    {{{0, 4294967295U, 1}}, 1, "uids[0]: range past"}, /* (uid_t)-1 is no id */
	    {{{0, 200000, 100}, {99, 300000, 1}}, 2, "uids[1]: overlaps uids[0] (container ids)"},
	    {{{0, 200000, 100}, {100, 200099, 1}}, 2, "uids[1]: overlaps uids[0] (host ids)"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CU_ASSERT_EQUAL(pod_idmaps_check(bad[i].m, bad[i].n, "uids", &err), -EINVAL);
		CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), bad[i].msg));
		husk_error_clear(&err);
	}
	/* The host's namespaces cannot belong to the pod's user namespace. */
	struct pod_sandbox_spec spec = {.id = "u1",
					.userns = true,
					.net = POD_NS_NODE,
					.uid_map = one,
					.gid_map = one,
					.n_uid_map = 1,
					.n_gid_map = 1};
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL(pod_sandbox_create("/nonexistent", &spec, &info, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "namespace_options.network"));
	husk_error_clear(&err);
}

/* A pod user namespace: made first, mapped as asked, owning the others
 * (the net pin's sysctls are its root's); failure and destroy leave
 * nothing. */
static void test_user_namespace(void)
{
	if (!have_root())
		return;
	char *state = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	struct pod_idmap uids[] = {{0, 400000, 65536}};
	struct pod_idmap gids[] = {{0, 500000, 65536}};
	struct pod_sysctl sysctls[] = {{"net.ipv4.ip_unprivileged_port_start", "80"},
				       {"kernel.shmmni", "1234"},
				       {"fs.mqueue.queues_max", "77"}};
	struct pod_sandbox_spec spec = {.id = "user1",
					.pid = POD_NS_POD,
					.sysctls = sysctls,
					.n_sysctls = ARRAY_SIZE(sysctls),
					.userns = true,
					.uid_map = uids,
					.gid_map = gids,
					.n_uid_map = 1,
					.n_gid_map = 1};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(info.user_ns);
	ino_t user, host;
	CU_ASSERT_EQUAL(pod_ns_inode(info.user_ns, &user, &err), 0);
	CU_ASSERT_EQUAL(pod_ns_inode("/proc/self/ns/user", &host, &err), 0);
	CU_ASSERT_NOT_EQUAL(user, host);
	/* The init runs in it, with root inside being 400000 outside. */
	_cleanup_free_ char *map_path = xasprintf("/proc/%d/uid_map", (int)info.init_pid);
	_cleanup_free_ char *gmap_path = xasprintf("/proc/%d/gid_map", (int)info.init_pid);
	_cleanup_free_ char *map = slurp(map_path), *gmap = slurp(gmap_path);
	unsigned a = 1, b = 0, c = 0;
	CU_ASSERT(map && sscanf(map, "%u %u %u", &a, &b, &c) == 3 && a == 0 && b == 400000 &&
		  c == 65536);
	CU_ASSERT(gmap && sscanf(gmap, "%u %u %u", &a, &b, &c) == 3 && b == 500000);
	/* Its network namespace's sysctls belong to the pod's root. */
	int fd = open(info.net_ns, O_RDONLY | O_CLOEXEC);
	CU_ASSERT_FATAL(fd >= 0);
	int owner = ioctl(fd, _IO(0xb7, 0x1)); /* NS_GET_USERNS */
	close(fd);
	struct stat st;
	CU_ASSERT(owner >= 0 && fstat(owner, &st) == 0 && st.st_ino == user);
	if (owner >= 0)
		close(owner);
	pod_sandbox_info_clear(&info);
	struct pod_sandbox_info loaded = {0};
	CU_ASSERT_EQUAL(pod_sandbox_load(state, "user1", &loaded, &err), 0);
	CU_ASSERT(loaded.userns && loaded.user_ns);
	pod_sandbox_info_clear(&loaded);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "user1", &err), 0);
	assert_clean(state, "user1");

	/* Fails in the kernel after the user namespace is pinned. */
	struct pod_sysctl bad[] = {{"net.ipv4.ip_forward", "banana"}};
	spec.id = "user2";
	spec.sysctls = bad;
	spec.n_sysctls = 1;
	CU_ASSERT_EQUAL(pod_sandbox_create(state, &spec, &info, &err), -EINVAL);
	assert_clean(state, "user2");
	husk_error_clear(&err);
	release_state(state);
}

static void test_pid_namespace_init(void)
{
	if (!have_root())
		return;
	char *state = unit_tmpdir();
	struct pod_sandbox_spec spec = {.id = "pidpod", .hostname = "p", .pid = POD_NS_POD};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	int r = pod_sandbox_create(state, &spec, &info, &err);
	if (r < 0)
		printf("\n    create: %s", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(info.pid_ns);
	CU_ASSERT(info.init_pid > 0);
	CU_ASSERT(proc_alive(info.init_pid, info.init_start_time));
	CU_ASSERT(ns_ino(info.pid_ns) != ns_ino("/proc/self/ns/pid"));
	_cleanup_free_ char *init_ns = xasprintf("/proc/%d/ns/pid", (int)info.init_pid);
	CU_ASSERT_EQUAL(ns_ino(init_ns), ns_ino(info.pid_ns));
	/* Its own session, PID 1 of the namespace, in the pod's other namespaces. */
	CU_ASSERT_EQUAL(getsid(info.init_pid), info.init_pid);
	_cleanup_free_ char *status_path = xasprintf("/proc/%d/status", (int)info.init_pid);
	_cleanup_free_ char *status = slurp(status_path);
	_cleanup_free_ char *nspid = xasprintf("NSpid:\t%d\t1\n", (int)info.init_pid);
	CU_ASSERT_PTR_NOT_NULL(strstr(status, nspid));
	_cleanup_free_ char *init_net = xasprintf("/proc/%d/ns/net", (int)info.init_pid);
	CU_ASSERT_EQUAL(ns_ino(init_net), ns_ino(info.net_ns));

	/* An orphan in the pod's PID namespace is reaped by the init. */
	pid_t c = fork();
	if (c == 0) {
		int fd = open(info.pid_ns, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, CLONE_NEWPID) < 0)
			_exit(1);
		pid_t g = fork(); /* in the pod's PID namespace */
		if (g == 0) {
			if (fork() == 0) {
				usleep(100 * 1000);
				_exit(0);
			}
			_exit(0);
		}
		waitpid(g, NULL, 0);
		_exit(0);
	}
	int status_c = 0;
	waitpid(c, &status_c, 0);
	CU_ASSERT(WIFEXITED(status_c) && WEXITSTATUS(status_c) == 0);
	int kids = -1;
	for (int i = 0; i < 300 && kids != 0; i++) {
		usleep(10 * 1000);
		kids = children_of(info.init_pid);
	}
	CU_ASSERT_EQUAL(kids, 0);
	CU_ASSERT(proc_alive(info.init_pid, info.init_start_time));

	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "pidpod", &err), 0);
	CU_ASSERT_FALSE(proc_alive(info.init_pid, info.init_start_time));
	assert_clean(state, "pidpod");
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "pidpod", &err), 0);
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

static void test_init_binary(void)
{
	if (!have_root())
		return;
	/* With an init binary the init is cloned into the pod's namespaces and
	 * execs at once (no fork of the caller): PID 1 of its namespace, in
	 * all the pod's namespaces, its own session, nothing blocked. */
	char *state = unit_tmpdir();
	unit_write(state, "init", "#!/bin/sh\nexec sleep 1000\n");
	_cleanup_free_ char *init = xasprintf("%s/init", state);
	CU_ASSERT_EQUAL_FATAL(chmod(init, 0755), 0);
	struct pod_sysctl sysctls[] = {{"kernel.shmmni", "1234"}};
	struct pod_sandbox_spec spec = {.id = "initpod",
					.hostname = "i",
					.pid = POD_NS_POD,
					.init_path = init,
					.sysctls = sysctls,
					.n_sysctls = 1};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	int r = pod_sandbox_create(state, &spec, &info, &err);
	if (r < 0)
		printf("\n    create: %s", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT(proc_alive(info.init_pid, info.init_start_time));
	CU_ASSERT_EQUAL(getsid(info.init_pid), info.init_pid);
	_cleanup_free_ char *status_path = xasprintf("/proc/%d/status", (int)info.init_pid);
	_cleanup_free_ char *status = slurp(status_path);
	_cleanup_free_ char *nspid = xasprintf("NSpid:\t%d\t1\n", (int)info.init_pid);
	CU_ASSERT_PTR_NOT_NULL(strstr(status, nspid));
	CU_ASSERT_PTR_NOT_NULL(strstr(status, "SigBlk:\t0000000000000000\n"));
	const char *names[] = {"pid", "net", "ipc", "uts"};
	const char *pins[] = {info.pid_ns, info.net_ns, info.ipc_ns, info.uts_ns};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *ns = xasprintf("/proc/%d/ns/%s", (int)info.init_pid, names[i]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(pins[i]);
		CU_ASSERT_EQUAL(ns_ino(ns), ns_ino(pins[i]));
		_cleanup_free_ char *self = xasprintf("/proc/self/ns/%s", names[i]);
		CU_ASSERT(ns_ino(ns) != ns_ino(self));
	}
	/* The sysctl was written in the pod's IPC namespace, before the exec. */
	int fd = open(info.ipc_ns, O_RDONLY | O_CLOEXEC);
	pid_t c = fork();
	if (c == 0) {
		if (setns(fd, CLONE_NEWIPC) < 0)
			_exit(1);
		_cleanup_free_ char *v = slurp("/proc/sys/kernel/shmmni");
		_exit(v && strcmp(v, "1234\n") == 0 ? 0 : 2);
	}
	close(fd);
	int st = -1;
	waitpid(c, &st, 0);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pid_t pid = info.init_pid;
	unsigned long long start = info.init_start_time;
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "initpod", &err), 0);
	CU_ASSERT_FALSE(proc_alive(pid, start));
	assert_clean(state, "initpod");
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

static void test_init_outlives_creator(void)
{
	if (!have_root())
		return;
	/* huskd may die or restart: the init it started keeps the pod's PID
	 * namespace, and a later process tears it down from the record. */
	char *state = unit_tmpdir();
	int fds[2];
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	pid_t creator = fork();
	if (creator == 0) {
		struct pod_sandbox_spec spec = {.id = "orphan", .pid = POD_NS_POD};
		struct pod_sandbox_info info = {0};
		if (pod_sandbox_create(state, &spec, &info, NULL) < 0)
			_exit(1);
		unsigned long long msg[2] = {(unsigned long long)info.init_pid,
					     info.init_start_time};
		_exit(write(fds[1], msg, sizeof(msg)) == sizeof(msg) ? 0 : 1);
	}
	close(fds[1]);
	unsigned long long msg[2] = {0, 0};
	CU_ASSERT_EQUAL(read(fds[0], msg, sizeof(msg)), (ssize_t)sizeof(msg));
	close(fds[0]);
	int status = 0;
	waitpid(creator, &status, 0);
	CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	usleep(50 * 1000);
	CU_ASSERT(proc_alive((pid_t)msg[0], msg[1]));
	struct pod_sandbox_info loaded = {0};
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(pod_sandbox_load(state, "orphan", &loaded, &err), 0);
	CU_ASSERT_EQUAL(loaded.init_pid, (pid_t)msg[0]);
	CU_ASSERT_EQUAL(loaded.init_start_time, msg[1]);
	pod_sandbox_info_clear(&loaded);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "orphan", &err), 0);
	CU_ASSERT_FALSE(proc_alive((pid_t)msg[0], msg[1]));
	assert_clean(state, "orphan");
	husk_error_clear(&err);
	release_state(state);
}

static void test_half_created_pod(void)
{
	if (!have_root())
		return;
	/* A daemon killed before it wrote sandbox.json: the init is found
	 * through the pinned PID namespace and the rest through mountinfo. */
	char *state = unit_tmpdir();
	struct pod_sandbox_spec spec = {.id = "half", .pid = POD_NS_POD};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	_cleanup_free_ char *rec = xasprintf("%s/sandbox.json", info.dir);
	CU_ASSERT_EQUAL(unlink(rec), 0);
	struct pod_sandbox_info loaded;
	CU_ASSERT_EQUAL(pod_sandbox_load(state, "half", &loaded, &err), -ENOENT);
	_cleanup_strv_ char **ids = NULL;
	CU_ASSERT_EQUAL(pod_sandbox_list(state, &ids, &err), 0);
	CU_ASSERT_EQUAL(strv_length(ids), 1);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "half", &err), 0);
	CU_ASSERT_FALSE(proc_alive(info.init_pid, info.init_start_time));
	assert_clean(state, "half");
	pod_sandbox_info_clear(&info);

	/* A garbled record: load says so, destroy still cleans everything. */
	spec.id = "garbled";
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	unit_write(info.dir, "sandbox.json", "{\"id\": \"garbled\", \"init_pid\": 1,");
	CU_ASSERT_EQUAL(pod_sandbox_load(state, "garbled", &loaded, &err), -EINVAL);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "garbled", &err), 0);
	CU_ASSERT_FALSE(proc_alive(info.init_pid, info.init_start_time));
	assert_clean(state, "garbled");
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

static void test_busy_shm(void)
{
	if (!have_root())
		return;
	/* A file held open on the pod's shm makes a plain unmount fail with
	 * EBUSY; destroy detaches it instead. */
	char *state = unit_tmpdir();
	struct pod_sandbox_spec spec = {.id = "busy"};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	_cleanup_free_ char *f = xasprintf("%s/segment", info.shm);
	int fd = open(f, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CU_ASSERT(fd >= 0);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "busy", &err), 0);
	assert_clean(state, "busy");
	CU_ASSERT_EQUAL(write(fd, "x", 1), 1); /* still usable, just detached */
	close(fd);
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

static void test_foreign_mounts(void)
{
	if (!have_root())
		return;
	/* Destroy finds mounts by walking the pod's directory, not mountinfo:
	 * one it did not make, one stacked on a pin, one inside shm (which the
	 * walk does not enter) all go. */
	char *state = unit_tmpdir();
	struct pod_sandbox_spec spec = {.id = "foreign"};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	_cleanup_free_ char *extra = xasprintf("%s/extra", info.dir);
	CU_ASSERT_EQUAL(mkdir(extra, 0700), 0);
	CU_ASSERT_EQUAL(mount("husk-unit", extra, "tmpfs", 0, "size=1m"), 0);
	CU_ASSERT_EQUAL(mount(info.net_ns, info.ipc_ns, NULL, MS_BIND, NULL), 0);
	_cleanup_free_ char *inner = xasprintf("%s/inner", info.shm);
	CU_ASSERT_EQUAL(mkdir(inner, 0700), 0);
	CU_ASSERT_EQUAL(mount("husk-unit", inner, "tmpfs", 0, "size=1m"), 0);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "foreign", &err), 0);
	assert_clean(state, "foreign");
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

static void test_shared_parent_mount(void)
{
	if (!have_root())
		return;
	/* On a shared mount (systemd hosts), pods-mnt/ is a private bind of
	 * itself so the pins never propagate to other mount namespaces. */
	char *state = unit_tmpdir();
	CU_ASSERT_EQUAL_FATAL(mount("husk-unit", state, "tmpfs", 0, "size=1m"), 0);
	CU_ASSERT_EQUAL_FATAL(mount(NULL, state, NULL, MS_SHARED, NULL), 0);
	struct pod_sandbox_spec spec = {.id = "shared"};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	_cleanup_free_ char *mnts = xasprintf("%s/pods-mnt", state);
	_cleanup_free_ char *fields = mount_line(mnts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fields);
	CU_ASSERT_PTR_NULL(strstr(fields, "shared:"));
	_cleanup_free_ char *net_fields = mount_line(info.net_ns);
	CU_ASSERT_PTR_NOT_NULL_FATAL(net_fields);
	CU_ASSERT_PTR_NULL(strstr(net_fields, "shared:"));
	CU_ASSERT_EQUAL(pod_sandbox_root_release(state, &err), -EBUSY);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "shared", &err), 0);
	CU_ASSERT_EQUAL(pod_sandbox_root_release(state, &err), 0);
	CU_ASSERT_EQUAL(mounts_under(state), 1); /* only the test's tmpfs */
	CU_ASSERT_EQUAL(umount2(state, 0), 0);
	CU_ASSERT_EQUAL(mounts_under(state), 0);
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	unit_rmdir(state);
}

/* The id of the mount at exactly path and of its parent (mountinfo's first
 * two fields), -1 when nothing is mounted there. */
static int mount_ids(const char *path, int *ret_parent)
{
	_cleanup_free_ char *line = mount_line(path);
	int id = -1, parent = -1;
	if (!line || sscanf(line, "%d %d", &id, &parent) != 2)
		return -1;
	*ret_parent = parent;
	return id;
}

static void test_mounts_apart(void)
{
	if (!have_root())
		return;
	/* Every mount of a pod is a child of pods-mnt/ (its own private
	 * mount), and its files sit on the state dir's mount with none of the
	 * pods' mounts below it: a bind of them walks no pins. */
	char *state = unit_tmpdir();
	struct pod_sandbox_spec spec = {.id = "apart", .pid = POD_NS_POD};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	_cleanup_free_ char *mnts = xasprintf("%s/pods-mnt", state);
	_cleanup_free_ char *mnt = xasprintf("%s/apart", mnts);
	_cleanup_free_ char *fields = mount_line(mnts);
	CU_ASSERT_PTR_NOT_NULL_FATAL(fields);
	CU_ASSERT_PTR_NULL(strstr(fields, "shared:"));
	CU_ASSERT_PTR_NULL(strstr(fields, "master:"));
	int parent = -1, top = mount_ids(mnts, &parent);
	CU_ASSERT(top > 0);
	const char *pins[] = {info.net_ns, info.ipc_ns, info.uts_ns, info.pid_ns, info.shm};
	for (size_t i = 0; i < ARRAY_SIZE(pins); i++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(pins[i]);
		CU_ASSERT_NSTRING_EQUAL(pins[i], mnt, strlen(mnt));
		int p = -1;
		CU_ASSERT(mount_ids(pins[i], &p) > 0);
		CU_ASSERT_EQUAL(p, top);
	}
	CU_ASSERT_EQUAL(mounts_under(info.dir), 0);
	/* created again at the same place: no second mount on pods-mnt */
	CU_ASSERT_EQUAL(pod_sandbox_root_ensure(state, &err), 0);
	CU_ASSERT_EQUAL(mounts_under(mnts), 6);
	/* released only once no pod is left */
	CU_ASSERT_EQUAL(pod_sandbox_root_release(state, &err), -EBUSY);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "apart", &err), 0);
	assert_clean(state, "apart");
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
	CU_ASSERT_FALSE(fs_exists(mnts));
}

static void test_old_layout(void)
{
	if (!have_root())
		return;
	/* A pod made by huskd before the mounts moved (sandbox.json version
	 * 1, pins and shm in pods/ID): loaded with those paths, and destroy
	 * clears them. Made here by moving a new pod's mounts back. */
	char *state = unit_tmpdir();
	struct pod_sandbox_spec spec = {.id = "old", .pid = POD_NS_POD};
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_sandbox_info info = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_create(state, &spec, &info, &err), 0);
	_cleanup_free_ char *ns = xasprintf("%s/ns", info.dir);
	CU_ASSERT_EQUAL(mkdir(ns, 0711), 0);
	const char *names[] = {"ns/net", "ns/ipc", "ns/uts", "ns/pid", "shm"};
	const char *pins[] = {info.net_ns, info.ipc_ns, info.uts_ns, info.pid_ns, info.shm};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		_cleanup_free_ char *to = xasprintf("%s/%s", info.dir, names[i]);
		if (i < 4)
			unit_write(info.dir, names[i], "");
		else
			CU_ASSERT_EQUAL(mkdir(to, 0755), 0);
		CU_ASSERT_EQUAL(mount(pins[i], to, NULL, MS_MOVE, NULL), 0);
	}
	_cleanup_free_ char *mnt = xasprintf("%s/pods-mnt/old", state);
	CU_ASSERT_EQUAL(fs_rm_rf(mnt, &err), 0);
	_cleanup_free_ char *rec_path = xasprintf("%s/sandbox.json", info.dir);
	_cleanup_free_ char *rec = slurp(rec_path);
	char *version = rec ? strstr(rec, "\"version\"") : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(version);
	char *two = strchr(version, '2');
	CU_ASSERT_PTR_NOT_NULL_FATAL(two);
	*two = '1';
	unit_write(info.dir, "sandbox.json", rec);

	struct pod_sandbox_info loaded = {0};
	CU_ASSERT_EQUAL_FATAL(pod_sandbox_load(state, "old", &loaded, &err), 0);
	_cleanup_free_ char *old_net = xasprintf("%s/ns/net", info.dir);
	_cleanup_free_ char *old_shm = xasprintf("%s/shm", info.dir);
	CU_ASSERT_STRING_EQUAL(loaded.net_ns, old_net);
	CU_ASSERT_STRING_EQUAL(loaded.shm, old_shm);
	CU_ASSERT_EQUAL(ns_ino(loaded.net_ns), ns_ino(old_net));
	CU_ASSERT(ns_ino(loaded.pid_ns) != 0);
	_cleanup_strv_ char **ids = NULL;
	CU_ASSERT_EQUAL(pod_sandbox_list(state, &ids, &err), 0);
	CU_ASSERT_EQUAL(strv_length(ids), 1);
	CU_ASSERT_EQUAL(mounts_under(info.dir), 5);
	CU_ASSERT_EQUAL(pod_sandbox_destroy(state, "old", &err), 0);
	CU_ASSERT_FALSE(proc_alive(info.init_pid, info.init_start_time));
	assert_clean(state, "old");
	pod_sandbox_info_clear(&loaded);
	pod_sandbox_info_clear(&info);
	husk_error_clear(&err);
	release_state(state);
}

struct par {
	const char *state;
	char id[16];
	int r;
	struct pod_sandbox_info info;
};

static void *par_create(void *arg)
{
	struct par *p = arg;
	struct pod_sandbox_spec spec = {.id = p->id,
					.pid = (p->id[1] % 2) ? POD_NS_POD : POD_NS_CONTAINER};
	struct husk_error err = HUSK_ERROR_INIT;
	p->r = pod_sandbox_create(p->state, &spec, &p->info, &err);
	if (p->r < 0)
		printf("\n    create %s: %s", p->id, husk_error_msg(&err));
	husk_error_clear(&err);
	return NULL;
}

static void *par_destroy(void *arg)
{
	struct par *p = arg;
	struct husk_error err = HUSK_ERROR_INIT;
	p->r = pod_sandbox_destroy(p->state, p->id, &err);
	husk_error_clear(&err);
	return NULL;
}

static void test_parallel_pods(void)
{
	if (!have_root())
		return;
	char *state = unit_tmpdir();
	struct par ps[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		ps[i] = (struct par){.state = state};
		snprintf(ps[i].id, sizeof(ps[i].id), "p%d", i);
		pthread_create(&th[i], NULL, par_create, &ps[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(ps[i].r, 0);
	}
	for (int i = 0; i < 8; i++)
		for (int j = i + 1; j < 8; j++)
			CU_ASSERT(ns_ino(ps[i].info.net_ns) != ns_ino(ps[j].info.net_ns));
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, par_destroy, &ps[i]);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(ps[i].r, 0);
		assert_clean(state, ps[i].id);
		if (ps[i].info.init_pid)
			CU_ASSERT_FALSE(
			    proc_alive(ps[i].info.init_pid, ps[i].info.init_start_time));
		pod_sandbox_info_clear(&ps[i].info);
	}
	release_state(state);
}

int main(void)
{
	/* Killed pod inits are reparented here rather than to a PID 1 that may
	 * not reap (as on the test VM); destroy reaps them, which this checks. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	static const struct unit_test tests[] = {
	    {"spec refused", test_spec_refused},
	    {"sysctls refused", test_sysctls_refused},
	    {"sysctl check", test_sysctl_check},
	    {"destroy unknown", test_destroy_unknown},
	    {"create and destroy", test_create_and_destroy},
	    {"host namespaces", test_host_namespaces},
	    {"failure midway leaves nothing", test_failure_midway_leaves_nothing},
	    {"id maps check", test_idmaps_check},
	    {"user namespace", test_user_namespace},
	    {"pid namespace init", test_pid_namespace_init},
	    {"init binary", test_init_binary},
	    {"init outlives its creator", test_init_outlives_creator},
	    {"half-created pod", test_half_created_pod},
	    {"busy shm", test_busy_shm},
	    {"foreign mounts", test_foreign_mounts},
	    {"shared parent mount", test_shared_parent_mount},
	    {"mounts apart from the pod's files", test_mounts_apart},
	    {"pod of the old layout", test_old_layout},
	    {"parallel pods", test_parallel_pods},
	};
	return unit_run("sandbox", tests, ARRAY_SIZE(tests));
}
