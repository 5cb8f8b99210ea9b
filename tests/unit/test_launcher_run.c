/* Root tests of the launcher, husk-shim and exec on the real kernel, with a
 * rootfs made of Debian's dynamic busybox and its libraries (no image).
 * Skipped when not root. They check the kernel's view: /proc/PID/status of
 * the container, its mounts and namespaces, exit codes, the CRI log, the
 * shim outliving its parent, and exec into a running container. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "runtime/launcher/launcher.h"
#include "runtime/oci.h"
#include "runtime/shim_client.h"
#include "unit.h"

#define SEC 1000000000LL

static char *g_base;   /* temp dir for everything */
static char *g_rootfs; /* busybox rootfs */
static char *g_shim;   /* husk-shim beside the tests dir, or NULL */
static bool g_root;

#define NEED_ROOT()                                               \
	do {                                                      \
		if (!g_root) {                                    \
			fprintf(stderr, " (skipped: not root) "); \
			return;                                   \
		}                                                 \
	} while (0)

static int build_rootfs(const char *dir)
{
	_cleanup_free_ char *cmd = xasprintf(
	    "set -e; d=%s; mkdir -p $d/bin $d/etc $d/proc $d/sys $d/dev $d/tmp $d/root $d/home/u;"
	    "cp /bin/busybox $d/bin/;"
	    "for l in $(ldd /bin/busybox | grep -o '/[^ ]*'); do"
	    "  mkdir -p $d$(dirname $l); cp -L $l $d$l; done;"
	    "for a in $(/bin/busybox --list); do [ -e $d/bin/$a ] || ln -s busybox $d/bin/$a; done;"
	    "echo 'root:x:0:0:root:/root:/bin/sh' > $d/etc/passwd;"
	    "echo 'root:x:0:' > $d/etc/group;"
	    "echo image > $d/etc/hostname; chmod 700 $d/root; chmod 1777 $d/tmp;"
	    "ln -s /etc $d/evil-abs; ln -s ../../../../../../../../tmp $d/evil-rel;"
	    "ln -s /proc $d/myproc; ln -s / $d/myroot; ln -s /sys/kernel $d/mysys;"
	    "ln -s /etc/passwd $d/etc/passwd-link",
	    dir);
	return system(cmd);
}

/* ctr_launch wants the compiled seccomp filter, as huskd writes it at
 * create time. */
static void prep(struct ctr_spec *s)
{
	static int n;
	if (s->seccomp == LC_SECCOMP_UNCONFINED)
		return;
	free(s->seccomp_filter);
	s->seccomp_filter = xasprintf("%s/filter-%d.bpf", g_base, n++);
	struct husk_error e = HUSK_ERROR_INIT;
	if (ctr_spec_seccomp_write(s, s->seccomp_filter, &e) < 0) {
		/* Let the launch report it (a missing Localhost profile). */
		free(s->seccomp_filter);
		s->seccomp_filter = NULL;
	}
	husk_error_clear(&e);
}

static struct ctr_spec *mkspec(const char *const *args)
{
	struct ctr_spec *s = ctr_spec_new();
	s->id = xstrdup("t");
	s->rootfs = xstrdup(g_rootfs);
	s->args = xnew(char *, 1);
	for (size_t i = 0; args[i]; i++)
		s->args = strv_append(s->args, args[i]);
	s->env = strv_append(s->env, "PATH=/bin");
	return s;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

struct run {
	int status;
	char *out, *err;
};

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static void drain(int fd, char **ret)
{
	size_t len = 0, cap = 4096;
	char *buf = xmalloc(cap);
	for (;;) {
		if (len + 1 == cap)
			buf = xrealloc(buf, cap *= 2);
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
}

/* Launch, collect stdout and stderr until EOF, reap. -code on failure. */
static int run_capture(struct ctr_spec *s, struct run *ret, struct husk_error *err)
{
	prep(s);
	int o[2], e[2];
	if (pipe2(o, O_CLOEXEC) < 0 || pipe2(e, O_CLOEXEC) < 0)
		abort();
	struct ctr_stdio io = {-1, o[1], e[1]};
	struct ctr_process p;
	int r = ctr_launch(s, &io, &p, err);
	close(o[1]);
	close(e[1]);
	if (r < 0) {
		close(o[0]);
		close(e[0]);
		return r;
	}
	/* Small outputs: read one then the other. */
	drain(o[0], &ret->out);
	drain(e[0], &ret->err);
	close(o[0]);
	close(e[0]);
	waitpid(p.pid, &ret->status, 0);
	return 0;
}

static char *status_field(pid_t pid, const char *field)
{
	_cleanup_free_ char *path = xasprintf("/proc/%d/status", (int)pid);
	_cleanup_free_ char *buf = NULL;
	if (fs_read_file(path, 1 << 16, &buf, NULL, NULL) < 0)
		return xstrdup("");
	_cleanup_free_ char *key = xasprintf("\n%s:", field);
	char *p = strstr(buf, key);
	if (!p)
		return xstrdup("");
	p += strlen(key);
	while (*p == ' ' || *p == '\t')
		p++;
	return xstrndup(p, strcspn(p, "\n"));
}

static bool contains(const char *hay, const char *needle)
{
	bool ok = hay && strstr(hay, needle);
	if (!ok)
		fprintf(stderr, "\nwant '%s' in:\n%s\n", needle, hay ? hay : "(null)");
	return ok;
}

/* ---- launcher ---- */

static void test_launch_status(void)
{
	NEED_ROOT();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = mkspec(ARGS("sleep", "30"));
	s->no_new_privs = true;
	struct ctr_process p;
	prep(s);
	int r = ctr_launch(s, NULL, &p, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(p.pty_master, -1);
	_cleanup_free_ char *eff = status_field(p.pid, "CapEff");
	_cleanup_free_ char *prm = status_field(p.pid, "CapPrm");
	_cleanup_free_ char *bnd = status_field(p.pid, "CapBnd");
	_cleanup_free_ char *inh = status_field(p.pid, "CapInh");
	_cleanup_free_ char *amb = status_field(p.pid, "CapAmb");
	_cleanup_free_ char *nnp = status_field(p.pid, "NoNewPrivs");
	_cleanup_free_ char *sec = status_field(p.pid, "Seccomp");
	_cleanup_free_ char *nspid = status_field(p.pid, "NSpid");
	CU_ASSERT_STRING_EQUAL(eff, "00000000a80425fb");
	CU_ASSERT_STRING_EQUAL(prm, "00000000a80425fb");
	CU_ASSERT_STRING_EQUAL(bnd, "00000000a80425fb");
	CU_ASSERT_STRING_EQUAL(inh, "0000000000000000");
	CU_ASSERT_STRING_EQUAL(amb, "0000000000000000");
	CU_ASSERT_STRING_EQUAL(nnp, "1");
	CU_ASSERT_STRING_EQUAL(sec, "2");
	/* PID 1 of a namespace of its own. */
	_cleanup_free_ char *want_nspid = xasprintf("%d\t1", (int)p.pid);
	CU_ASSERT_STRING_EQUAL(nspid, want_nspid);
	/* Other namespaces: new mnt, pid, ipc, uts, cgroup; host net. */
	static const char *const ns[] = {"mnt", "pid", "ipc", "uts", "cgroup", "net"};
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		char a[64], b[64], la[128] = "", lb[128] = "";
		snprintf(a, sizeof(a), "/proc/self/ns/%s", ns[i]);
		snprintf(b, sizeof(b), "/proc/%d/ns/%s", (int)p.pid, ns[i]);
		CU_ASSERT(readlink(a, la, sizeof(la) - 1) > 0);
		CU_ASSERT(readlink(b, lb, sizeof(lb) - 1) > 0);
		if (streq(ns[i], "net")) {
			CU_ASSERT_STRING_EQUAL(la, lb);
		} else {
			CU_ASSERT_STRING_NOT_EQUAL(la, lb);
		}
	}
	/* The root is the busybox rootfs. */
	char root[256] = "";
	_cleanup_free_ char *rl = xasprintf("/proc/%d/root/bin/busybox", (int)p.pid);
	CU_ASSERT_TRUE(fs_exists(rl));
	_cleanup_free_ char *rp = xasprintf("/proc/%d/root/usr/bin/python3", (int)p.pid);
	CU_ASSERT_FALSE(fs_exists(rp));
	(void)root;
	kill(p.pid, SIGKILL);
	int st;
	CU_ASSERT_EQUAL(waitpid(p.pid, &st, 0), p.pid);
	CU_ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_launch_view(void)
{
	NEED_ROOT();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = mkspec(
	    ARGS("sh", "-c",
		 "echo pid=$$; ls /; cat /etc/hostname; hostname; "
		 "echo tl=$(wc -c < /proc/timer_list); echo keys=$(cat /proc/keys | wc -c); "
		 "echo acpi=$(ls /proc/acpi | wc -l); echo fw=$(ls /sys/firmware | wc -l); "
		 "echo x > /proc/sys/kernel/domainname || echo sysro; "
		 "touch /sys/x 2>/dev/null || echo sysfs-ro; "
		 "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/ptmx; "
		 "grep -E ' /dev/(pts|shm|mqueue) ' /proc/self/mounts | cut -d' ' -f2,3; "
		 "echo comm1=$(cat /proc/1/comm); echo cwd=$(pwd); id; "
		 "n=0; while read p; do n=$((n+1)); done < /sys/fs/cgroup/pids/cgroup.procs; "
		 "echo procs=$n; ls /sys/fs/cgroup | tr '\\n' ' ';"
		 " echo; mkdir /sys/fs/cgroup/pids/x 2>/dev/null || echo cgroup-ro;"
		 " cat /proc/self/cgroup; exit 7"));
	s->hostname = xstrdup("boxy");
	struct run out = {0};
	int r = run_capture(s, &out, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_TRUE(WIFEXITED(out.status) && WEXITSTATUS(out.status) == 7);
	CU_ASSERT_TRUE(contains(out.out, "pid=1\n"));
	CU_ASSERT_TRUE(contains(out.out, "evil-abs"));
	CU_ASSERT_TRUE(contains(out.out, "image\nboxy\n"));
	CU_ASSERT_TRUE(contains(out.out, "tl=0\n"));
	CU_ASSERT_TRUE(contains(out.out, "keys=0\n"));
	CU_ASSERT_TRUE(contains(out.out, "acpi=0\n"));
	CU_ASSERT_TRUE(contains(out.out, "fw=0\n"));
	CU_ASSERT_TRUE(contains(out.out, "sysro\n"));
	CU_ASSERT_TRUE(contains(out.out, "sysfs-ro\n"));
	CU_ASSERT_TRUE(contains(out.out, "1,   3"));
	CU_ASSERT_TRUE(contains(out.out, "/dev/ptmx -> pts/ptmx"));
	CU_ASSERT_TRUE(contains(out.out, "/dev/pts devpts"));
	CU_ASSERT_TRUE(contains(out.out, "/dev/shm tmpfs"));
	CU_ASSERT_TRUE(contains(out.out, "/dev/mqueue mqueue"));
	CU_ASSERT_TRUE(contains(out.out, "comm1=sh\n"));
	CU_ASSERT_TRUE(contains(out.out, "cwd=/\n"));
	CU_ASSERT_TRUE(contains(out.out, "uid=0(root) gid=0(root)"));
	/* The container's own cgroups, read-only: only sh is in pids (read by
	 * the shell itself: a pipeline's processes may or may not be there yet). */
	CU_ASSERT_TRUE(contains(out.out, "procs=1\n"));
	CU_ASSERT_TRUE(contains(out.out, "memory pids "));
	CU_ASSERT_TRUE(contains(out.out, "cgroup-ro\n"));
	CU_ASSERT_TRUE(contains(out.out, ":pids:/\n"));
	if (out.err && *out.err)
		fprintf(stderr, "\nstderr: %s\n", out.err);
	run_free(&out);
}

static void expect_launch_error(struct ctr_spec *s, int code, const char *msg)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct run out = {0};
	int r = run_capture(s, &out, &err);
	CU_ASSERT_EQUAL(r, -code);
	if (!err.msg || !streq(err.msg, msg))
		fprintf(stderr, "\ngot '%s' (%d) want '%s'\n", husk_error_msg(&err), err.code, msg);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err), msg);
	run_free(&out);
}

static void test_launch_errors(void)
{
	NEED_ROOT();
	struct ctr_spec *s = mkspec(ARGS("/bin/nope"));
	expect_launch_error(s, ENOENT, "exec '/bin/nope': No such file or directory");
	ctr_spec_free(s);
	s = mkspec(ARGS("nope"));
	expect_launch_error(s, ENOENT, "exec 'nope': executable file not found in $PATH");
	ctr_spec_free(s);
	s = mkspec(ARGS("/etc/passwd"));
	expect_launch_error(s, EACCES, "exec '/etc/passwd': Permission denied");
	ctr_spec_free(s);
	s = mkspec(ARGS("true"));
	s->uid = 1000;
	free(s->cwd);
	s->cwd = xstrdup("/etc/passwd");
	expect_launch_error(s, ENOTDIR, "chdir '/etc/passwd': Not a directory");
	ctr_spec_free(s);
	s = mkspec(ARGS("true"));
	s->mounts = xnew(struct ctr_mount, 1);
	s->mounts[0] = (struct ctr_mount){.destination = xstrdup("/data"),
					  .type = xstrdup("bind"),
					  .source = xstrdup("/nonexistent-husk"),
					  .bind = true};
	s->n_mounts = 1;
	expect_launch_error(s, ENOENT,
			    "mount '/data': source '/nonexistent-husk': No such file or directory");
	ctr_spec_free(s);
	s = mkspec(ARGS("true"));
	s->ns[CTR_NS_NET].mode = CTR_NS_JOIN;
	s->ns[CTR_NS_NET].path = xstrdup("/nonexistent/ns/net");
	expect_launch_error(s, ENOENT,
			    "open net namespace '/nonexistent/ns/net': No such file or directory");
	ctr_spec_free(s);
	/* A missing Localhost profile fails when the filter is compiled (at
	 * create); a launch without the filter file is refused. */
	s = mkspec(ARGS("true"));
	s->seccomp = LC_SECCOMP_LOCALHOST;
	s->seccomp_profile = xstrdup("/nonexistent/profile.json");
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	struct lc_seccomp_bpf *b = NULL;
	CU_ASSERT_EQUAL(ctr_spec_seccomp_compile(s, &b, &e), -ENOENT);
	CU_ASSERT_STRING_EQUAL(
	    husk_error_msg(&e),
	    "seccomp profile '/nonexistent/profile.json': No such file or directory");
	expect_launch_error(s, EINVAL,
			    "seccomp: the spec has no compiled filter (process.seccomp.filter)");
	ctr_spec_free(s);
}

static void test_launch_user_mounts(void)
{
	NEED_ROOT();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *data = xasprintf("%s/data", g_base);
	_cleanup_free_ char *file = xasprintf("%s/hosts", g_base);
	_cleanup_free_ char *secret = xasprintf("%s/secret", g_base);
	CU_ASSERT_EQUAL(fs_mkdir_p(data, 0755, NULL), 0);
	unit_write(data, "in-data", "d\n");
	unit_write(g_base, "hosts", "127.0.0.1 podhost\n");
	unit_write(g_base, "secret", "s\n");
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = mkspec(
	    ARGS("sh", "-c",
		 "cat /data/in-data; touch /data/w 2>/dev/null || echo data-ro; cat /etc/hosts;"
		 "cat /etc/husk-sneaky; cat /tmp/husk-sneaky2; ls -d /scratch; echo -n $(id -u) "
		 "$(id -G);"
		 " echo; touch /newfile 2>/dev/null || echo root-ro; echo t > /scratch/ok && echo "
		 "tmpfs-rw;"
		 " ls -l /dev/husktest; cat /proc/sys/net/ipv4/ping_group_range;"
		 " cat /proc/self/oom_score_adj; ulimit -n; ulimit -Hn"));
	s->readonly_rootfs = true;
	s->uid = 1000;
	s->gid = 1000;
	s->n_additional_gids = 2;
	s->additional_gids = xnew(uint32_t, 2);
	s->additional_gids[0] = 10;
	s->additional_gids[1] = 20;
	s->hosts_path = xstrdup(file);
	s->n_mounts = 4;
	s->mounts = xnew(struct ctr_mount, 4);
	s->mounts[0] = (struct ctr_mount){.destination = xstrdup("/data"),
					  .type = xstrdup("bind"),
					  .source = xstrdup(data),
					  .bind = true,
					  .recursive = true,
					  .flags = MS_RDONLY};
	/* Through symlinks that point outside: must land inside the rootfs. */
	s->mounts[1] = (struct ctr_mount){.destination = xstrdup("/evil-abs/husk-sneaky"),
					  .type = xstrdup("bind"),
					  .source = xstrdup(secret),
					  .bind = true};
	s->mounts[2] = (struct ctr_mount){.destination = xstrdup("/evil-rel/husk-sneaky2"),
					  .type = xstrdup("bind"),
					  .source = xstrdup(secret),
					  .bind = true};
	s->mounts[3] = (struct ctr_mount){.destination = xstrdup("/scratch"),
					  .type = xstrdup("tmpfs"),
					  .source = xstrdup("tmpfs"),
					  .data = xstrdup("size=1m,mode=1777"),
					  .flags = MS_NODEV};
	s->n_devices = 1;
	s->devices = xnew(struct ctr_device, 1);
	s->devices[0] = (struct ctr_device){.path = xstrdup("/dev/husktest"),
					    .type = 'c',
					    .major = 1,
					    .minor = 3,
					    .file_mode = 0600,
					    .uid = 1000,
					    .gid = 1000};
	s->n_sysctls = 1;
	s->sysctls = xnew(struct ctr_sysctl, 1);
	s->sysctls[0] = (struct ctr_sysctl){xstrdup("net.ipv4.ping_group_range"), xstrdup("0 0")};
	s->ns[CTR_NS_NET].mode = CTR_NS_NEW;
	s->has_oom_score_adj = true;
	s->oom_score_adj = -999; /* below ours: clamped */
	s->n_rlimits = 1;
	s->rlimits = xnew(struct ctr_rlimit, 1);
	/* A hard limit above ours is clamped to ours (no CAP_SYS_RESOURCE). */
	struct rlimit own;
	getrlimit(RLIMIT_NOFILE, &own);
	s->rlimits[0] = (struct ctr_rlimit){RLIMIT_NOFILE, 123, (uint64_t)own.rlim_max + 1000};
	struct run out = {0};
	int r = run_capture(s, &out, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_TRUE(contains(out.out, "d\ndata-ro\n127.0.0.1 podhost\ns\ns\n/scratch\n"));
	CU_ASSERT_TRUE(contains(out.out, "1000 1000 10 20\nroot-ro\ntmpfs-rw\n"));
	CU_ASSERT_TRUE(contains(out.out, "crw-------    1 1000     1000        1,   3"));
	CU_ASSERT_TRUE(contains(out.out, "0\t0\n") || contains(out.out, "0 0\n"));
	_cleanup_free_ char *lim = xasprintf("\n0\n123\n%llu\n", (unsigned long long)own.rlim_max);
	CU_ASSERT_TRUE(contains(out.out, lim));
	CU_ASSERT_TRUE(WIFEXITED(out.status) && WEXITSTATUS(out.status) == 0);
	/* Nothing appeared on the host. */
	CU_ASSERT_FALSE(fs_exists("/etc/husk-sneaky"));
	CU_ASSERT_FALSE(fs_exists("/tmp/husk-sneaky2"));
	_cleanup_free_ char *inside = xasprintf("%s/etc/husk-sneaky", g_rootfs);
	CU_ASSERT_TRUE(fs_exists(inside));
	run_free(&out);
}

/* Pod files, the pod's /dev/shm, and rslave / private propagation of a
 * bind mount whose host side is shared. */
/* Volumes may not cover the root, /proc or (unless privileged) /sys, by
 * name or through an image's symlinks; masked and read-only paths never go
 * through a symlink (issue 10). */
static void expect_mount_refused(const char *dest, bool dir, const char *want)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = mkspec(ARGS("true"));
	s->n_mounts = 1;
	s->mounts = xnew(struct ctr_mount, 1);
	s->mounts[0] = (struct ctr_mount){.destination = xstrdup(dest),
					  .type = xstrdup("bind"),
					  .source = dir ? xasprintf("%s/data", g_base)
							: xasprintf("%s/hosts", g_base),
					  .bind = true};
	expect_launch_error(s, EINVAL, want);
}

static void test_launch_protected_targets(void)
{
	NEED_ROOT();
	_cleanup_free_ char *data = xasprintf("%s/data", g_base);
	CU_ASSERT_EQUAL(fs_mkdir_p(data, 0755, NULL), 0);
	unit_write(g_base, "hosts", "127.0.0.1 podhost\n");
	/* By name. */
	expect_mount_refused("/", true, "mount '/': a volume cannot replace the container's root");
	expect_mount_refused("/x/..//.", true,
			     "mount '/x/..//.': a volume cannot replace the container's root");
	expect_mount_refused("/proc", true,
			     "mount '/proc': the runtime owns /proc; only a few of its files (as "
			     "lxcfs provides them) may be covered");
	expect_mount_refused("/proc/self", true,
			     "mount '/proc/self': the runtime owns /proc; only a few of its files "
			     "(as lxcfs provides them) may be covered");
	expect_mount_refused("/sys/kernel", true,
			     "mount '/sys/kernel': the runtime owns /sys in a non-privileged "
			     "container");
	/* Through the image's symlinks. */
	expect_mount_refused("/myroot", true,
			     "mount '/myroot': resolves to the container's root, which a volume "
			     "cannot replace");
	expect_mount_refused("/myproc/uptime", false,
			     "mount '/myproc/uptime': resolves into /proc, which the runtime owns");
	expect_mount_refused("/mysys", true,
			     "mount '/mysys': resolves into /sys, which the runtime owns in a "
			     "non-privileged container");
	/* What lxcfs covers is allowed, as in runc. */
	_cleanup_(ctr_spec_freep) struct ctr_spec *ok = mkspec(ARGS("cat", "/proc/uptime"));
	ok->n_mounts = 1;
	ok->mounts = xnew(struct ctr_mount, 1);
	ok->mounts[0] = (struct ctr_mount){.destination = xstrdup("/proc/uptime"),
					   .type = xstrdup("bind"),
					   .source = xasprintf("%s/hosts", g_base),
					   .bind = true};
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct run out = {0};
	CU_ASSERT_EQUAL(run_capture(ok, &out, &err), 0);
	CU_ASSERT_STRING_EQUAL(out.out, "127.0.0.1 podhost\n");
	run_free(&out);

	/* A masked path that is a symlink: not followed (it would hide
	 * /etc/passwd), the container fails. */
	_cleanup_(ctr_spec_freep) struct ctr_spec *m = mkspec(ARGS("cat", "/etc/passwd"));
	m->masked_paths = xnew(char *, 2);
	m->masked_paths[0] = xstrdup("/etc/passwd-link");
	expect_launch_error(m, ELOOP, "mask '/etc/passwd-link': the path goes through a symlink");
	_cleanup_(ctr_spec_freep) struct ctr_spec *ro = mkspec(ARGS("true"));
	ro->readonly_paths = xnew(char *, 2);
	ro->readonly_paths[0] = xstrdup("/evil-abs/hostname");
	expect_launch_error(ro, ELOOP,
			    "make read-only '/evil-abs/hostname': the path goes through a symlink");
}

static void test_launch_pod_files_propagation(void)
{
	NEED_ROOT();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *pod = xasprintf("%s/pod", g_base);
	_cleanup_free_ char *shm = xasprintf("%s/pod/shm", g_base);
	_cleanup_free_ char *vol = xasprintf("%s/husk-vol", g_base);
	_cleanup_free_ char *sub = xasprintf("%s/husk-vol/sub", g_base);
	CU_ASSERT_EQUAL(fs_mkdir_p(shm, 0755, NULL), 0);
	CU_ASSERT_EQUAL(fs_mkdir_p(sub, 0755, NULL), 0);
	unit_write(shm, "seg", "shared\n");
	unit_write(pod, "hostname", "pod-name\n");
	unit_write(pod, "resolv.conf", "nameserver 10.0.0.10\n");
	/* A shared mount on the host side, in our own temp dir. */
	CU_ASSERT_EQUAL_FATAL(mount(vol, vol, NULL, MS_BIND, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(mount(NULL, vol, NULL, MS_SHARED, NULL), 0);

	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    mkspec(ARGS("sh", "-c",
			"cat /dev/shm/seg /etc/hostname /etc/resolv.conf; read x;"
			" ls /slave/sub /private/sub; echo done"));
	s->stdin_open = true;
	s->shm_path = xstrdup(shm);
	_cleanup_free_ char *hn = xasprintf("%s/hostname", pod);
	_cleanup_free_ char *rc = xasprintf("%s/resolv.conf", pod);
	s->hostname_path = xstrdup(hn);
	s->resolv_path = xstrdup(rc);
	s->n_mounts = 2;
	s->mounts = xnew(struct ctr_mount, 2);
	s->mounts[0] = (struct ctr_mount){.destination = xstrdup("/slave"),
					  .type = xstrdup("bind"),
					  .source = xstrdup(vol),
					  .bind = true,
					  .recursive = true,
					  .propagation = CTR_PROP_RSLAVE};
	s->mounts[1] = (struct ctr_mount){.destination = xstrdup("/private"),
					  .type = xstrdup("bind"),
					  .source = xstrdup(vol),
					  .bind = true,
					  .recursive = true};
	prep(s);
	int in[2], o[2];
	CU_ASSERT_EQUAL_FATAL(pipe2(in, O_CLOEXEC), 0);
	CU_ASSERT_EQUAL_FATAL(pipe2(o, O_CLOEXEC), 0);
	struct ctr_stdio io = {in[0], o[1], o[1]};
	struct ctr_process p;
	int r = ctr_launch(s, &io, &p, &err);
	close(in[0]);
	close(o[1]);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	/* Mounted on the host after the container started. */
	CU_ASSERT_EQUAL(mount("tmpfs", sub, "tmpfs", 0, "size=64k"), 0);
	unit_write(sub, "late", "x");
	CU_ASSERT_EQUAL(write(in[1], "go\n", 3), 3);
	close(in[1]);
	_cleanup_free_ char *out = NULL;
	drain(o[0], &out);
	close(o[0]);
	int st;
	waitpid(p.pid, &st, 0);
	CU_ASSERT_TRUE(contains(out, "shared\npod-name\nnameserver 10.0.0.10\n"));
	/* The rslave mount saw the late tmpfs (its file), the private one
	 * shows the empty directory underneath. */
	CU_ASSERT_TRUE(contains(out, "/private/sub:\n\n/slave/sub:\nlate\ndone\n"));
	umount2(sub, MNT_DETACH);
	umount2(vol, MNT_DETACH);
}

static bool is_mount_point(const char *path)
{
	_cleanup_free_ char *parent = xasprintf("%s/..", path);
	struct statx a, b;
	return statx(AT_FDCWD, path, 0, STATX_MNT_ID, &a) == 0 &&
	       statx(AT_FDCWD, parent, 0, STATX_MNT_ID, &b) == 0 && a.stx_mnt_id != b.stx_mnt_id;
}

/* Mount points under dir in this namespace. */
static size_t mounts_below(const char *dir)
{
	_cleanup_free_ char *text = NULL;
	/* Unread, every count would be 0 and every leak check pass. */
	CU_ASSERT_EQUAL_FATAL(fs_read_file("/proc/self/mountinfo", 64 << 20, &text, NULL, NULL), 0);
	_cleanup_free_ char *prefix = xasprintf(" %s/", dir);
	size_t n = 0;
	for (const char *p = text; p && (p = strstr(p, prefix)); p++)
		n++;
	return n;
}

/* An rshared root and an rshared bind of a shared host mount: mounts go
 * both ways through it, only host to container through an rslave bind of
 * the same source, and nothing the launcher mounts lands on the host. */
static void test_launch_bidirectional(void)
{
	NEED_ROOT();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *vol = xasprintf("%s/husk-bidi", g_base);
	_cleanup_free_ char *fromhost = xasprintf("%s/fromhost", vol);
	_cleanup_free_ char *fromctr = xasprintf("%s/fromctr", vol);
	_cleanup_free_ char *slave = xasprintf("%s/slave", vol);
	CU_ASSERT_EQUAL(fs_mkdir_p(fromhost, 0755, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(mount(vol, vol, NULL, MS_BIND, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(mount(NULL, vol, NULL, MS_SHARED, NULL), 0);
	size_t before = mounts_below(g_base);

	_cleanup_(ctr_spec_freep) struct ctr_spec *s = mkspec(
	    ARGS("sh", "-c",
		 "read x; cat /both/fromhost/f /h2c/fromhost/f;"
		 " mkdir /both/fromctr /both/slave && mount -t tmpfs t /both/fromctr &&"
		 " echo c > /both/fromctr/f && mount -t tmpfs t /h2c/slave && echo done; read y"));
	s->stdin_open = true;
	s->privileged = true;
	s->seccomp = LC_SECCOMP_UNCONFINED;
	lc_caps_init(&s->caps, lc_caps_all());
	s->rootfs_propagation = CTR_PROP_RSHARED;
	s->n_mounts = 2;
	s->mounts = xnew(struct ctr_mount, 2);
	s->mounts[0] = (struct ctr_mount){.destination = xstrdup("/both"),
					  .type = xstrdup("bind"),
					  .source = xstrdup(vol),
					  .bind = true,
					  .recursive = true,
					  .propagation = CTR_PROP_RSHARED};
	s->mounts[1] = (struct ctr_mount){.destination = xstrdup("/h2c"),
					  .type = xstrdup("bind"),
					  .source = xstrdup(vol),
					  .bind = true,
					  .recursive = true,
					  .propagation = CTR_PROP_RSLAVE};
	prep(s);
	int in[2], o[2];
	CU_ASSERT_EQUAL_FATAL(pipe2(in, O_CLOEXEC), 0);
	CU_ASSERT_EQUAL_FATAL(pipe2(o, O_CLOEXEC), 0);
	struct ctr_stdio io = {in[0], o[1], o[1]};
	struct ctr_process p;
	int r = ctr_launch(s, &io, &p, &err);
	close(in[0]);
	close(o[1]);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	/* Nothing of the launcher's (rootfs bind, /proc, /dev...) on the host. */
	CU_ASSERT_EQUAL(mounts_below(g_base), before);
	CU_ASSERT_EQUAL(mount("tmpfs", fromhost, "tmpfs", 0, "size=64k"), 0);
	unit_write(fromhost, "f", "h\n");
	CU_ASSERT_EQUAL(write(in[1], "go\n", 3), 3);
	char buf[256];
	size_t len = 0;
	while (len < sizeof(buf) - 1 && !memmem(buf, len, "done\n", 5)) {
		ssize_t n = read(o[0], buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	CU_ASSERT_STRING_EQUAL(buf, "h\nh\ndone\n");
	/* The container's tmpfs through /both is on the host, a peer; the
	 * one through /h2c is not. */
	CU_ASSERT_TRUE(is_mount_point(fromctr));
	_cleanup_free_ char *f = xasprintf("%s/f", fromctr), *text = NULL;
	CU_ASSERT_EQUAL(fs_read_file(f, 64, &text, NULL, NULL), 0);
	CU_ASSERT_STRING_EQUAL(text ? text : "", "c\n");
	CU_ASSERT_FALSE(is_mount_point(slave));
	close(in[1]);
	_cleanup_free_ char *rest = NULL;
	drain(o[0], &rest);
	close(o[0]);
	int st;
	waitpid(p.pid, &st, 0);
	umount2(fromctr, MNT_DETACH);
	umount2(fromhost, MNT_DETACH);
	umount2(vol, MNT_DETACH);
	CU_ASSERT_EQUAL(mounts_below(g_base), 0);
}

static void test_launch_join_and_cgroup(void)
{
	NEED_ROOT();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	/* A process with its own network namespace stands in for a pod. */
	int pp[2];
	CU_ASSERT_EQUAL_FATAL(pipe(pp), 0);
	pid_t holder = fork();
	if (holder == 0) {
		unshare(CLONE_NEWNET);
		ssize_t w _unused_ = write(pp[1], "x", 1);
		pause();
		_exit(0);
	}
	char c;
	CU_ASSERT_EQUAL(read(pp[0], &c, 1), 1);
	close(pp[0]);
	close(pp[1]);
	_cleanup_free_ char *cg = xasprintf("/sys/fs/cgroup/pids/husk-ln-test-%d", (int)getpid());
	bool have_cg = mkdir(cg, 0755) == 0;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = mkspec(ARGS("sleep", "30"));
	s->ns[CTR_NS_NET].mode = CTR_NS_JOIN;
	s->ns[CTR_NS_NET].path = xasprintf("/proc/%d/ns/net", (int)holder);
	if (have_cg) {
		s->cgroup_procs = xnew(char *, 1);
		_cleanup_free_ char *procs = xasprintf("%s/cgroup.procs", cg);
		s->cgroup_procs = strv_append(s->cgroup_procs, procs);
	}
	struct ctr_process p;
	prep(s);
	int r = ctr_launch(s, NULL, &p, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	char a[128] = "", b[128] = "";
	_cleanup_free_ char *pa = xasprintf("/proc/%d/ns/net", (int)holder);
	_cleanup_free_ char *pb = xasprintf("/proc/%d/ns/net", (int)p.pid);
	CU_ASSERT(readlink(pa, a, sizeof(a) - 1) > 0);
	CU_ASSERT(readlink(pb, b, sizeof(b) - 1) > 0);
	CU_ASSERT_STRING_EQUAL(a, b);
	if (have_cg) {
		_cleanup_free_ char *path = xasprintf("/proc/%d/cgroup", (int)p.pid);
		_cleanup_free_ char *txt = NULL;
		fs_read_file(path, 65536, &txt, NULL, NULL);
		_cleanup_free_ char *want = xasprintf("pids:/husk-ln-test-%d\n", (int)getpid());
		CU_ASSERT_TRUE(contains(txt, want));
	}
	kill(p.pid, SIGKILL);
	waitpid(p.pid, NULL, 0);
	kill(holder, SIGKILL);
	waitpid(holder, NULL, 0);
	if (have_cg)
		rmdir(cg);
}

static void test_launch_userns(void)
{
	NEED_ROOT();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    mkspec(ARGS("sh", "-c", "id -u; cat /proc/self/uid_map; ls /dev/null; sleep 30"));
	s->ns[CTR_NS_USER].mode = CTR_NS_NEW;
	s->n_uid_map = s->n_gid_map = 1;
	s->uid_map = xnew(struct ctr_idmap, 1);
	s->gid_map = xnew(struct ctr_idmap, 1);
	s->uid_map[0] = (struct ctr_idmap){0, 200000, 65536};
	s->gid_map[0] = (struct ctr_idmap){0, 200000, 65536};
	int o[2];
	CU_ASSERT_EQUAL_FATAL(pipe2(o, O_CLOEXEC), 0);
	struct ctr_stdio io = {-1, o[1], -1};
	struct ctr_process p;
	prep(s);
	int r = ctr_launch(s, &io, &p, &err);
	close(o[1]);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	_cleanup_free_ char *uid = status_field(p.pid, "Uid");
	CU_ASSERT_STRING_EQUAL(uid, "200000\t200000\t200000\t200000");
	char buf[512] = "";
	ssize_t n = 0, k;
	while (n < (ssize_t)sizeof(buf) - 1 &&
	       (k = read(o[0], buf + n, sizeof(buf) - 1 - (size_t)n)) > 0) {
		n += k;
		if (strstr(buf, "/dev/null"))
			break;
	}
	CU_ASSERT_TRUE(contains(buf, "0\n"));
	CU_ASSERT_TRUE(contains(buf, "200000"));
	kill(p.pid, SIGKILL);
	waitpid(p.pid, NULL, 0);
	close(o[0]);
}

/* ---- husk-shim ---- */

static char *write_spec(struct ctr_spec *s, const char *name)
{
	prep(s);
	_cleanup_free_ char *json = NULL;
	struct husk_error e = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(ctr_oci_config(s, NULL, &json, &e), 0);
	char *path = xasprintf("%s/%s.json", g_base, name);
	unit_write(g_base, strrchr(path, '/') + 1, json);
	return path;
}

static struct ctr_spec *shim_spec(const char *name, const char *const *args)
{
	struct ctr_spec *s = mkspec(args);
	free(s->id);
	s->id = xstrdup(name);
	s->state_dir = xasprintf("%s/state-%s", g_base, name);
	s->log_path = xasprintf("%s/%s.log", g_base, name);
	return s;
}

#define NEED_SHIM()                                                   \
	do {                                                          \
		NEED_ROOT();                                          \
		if (!g_shim) {                                        \
			fprintf(stderr, " (skipped: no husk-shim) "); \
			return;                                       \
		}                                                     \
	} while (0)

static long smaps_kb(pid_t pid, const char *key)
{
	_cleanup_free_ char *path = xasprintf("/proc/%d/smaps_rollup", (int)pid);
	_cleanup_free_ char *buf = NULL;
	if (fs_read_file(path, 1 << 16, &buf, NULL, NULL) < 0)
		return -1;
	_cleanup_free_ char *k = xasprintf("\n%s:", key);
	char *p = strstr(buf, k);
	return p ? atol(p + strlen(k)) : -1;
}

/* Under 1 MiB. A static husk-shim is measured by VmRSS; a dynamic one maps
 * all of glibc's text (large folios on this kernel) into VmRSS although it
 * is shared, so there the private memory is what is held to the limit. */
static void check_rss(pid_t pid)
{
	_cleanup_free_ char *v = status_field(pid, "VmRSS");
	long rss = atol(v);
	long priv = smaps_kb(pid, "Private_Clean") + smaps_kb(pid, "Private_Dirty");
	long pss = smaps_kb(pid, "Pss");
	_cleanup_free_ char *maps_path = xasprintf("/proc/%d/maps", (int)pid);
	_cleanup_free_ char *maps = NULL;
	fs_read_file(maps_path, 1 << 20, &maps, NULL, NULL);
	bool dynamic = maps && strstr(maps, "/ld-linux");
	fprintf(stderr, " [husk-shim %s: VmRSS %ld kB, Pss %ld kB, private %ld kB] ",
		dynamic ? "dynamic" : "static", rss, pss, priv);
#if !defined(__SANITIZE_ADDRESS__)
	if (dynamic) {
		CU_ASSERT(priv > 0 && priv < 1024);
	} else {
		CU_ASSERT(rss > 0 && rss < 1024);
	}
#endif
}

static void test_shim_run_and_log(void)
{
	NEED_SHIM();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    shim_spec("logs", ARGS("sh", "-c",
				   "echo hello; echo oops >&2; printf 'no newline'; sleep 0.2;"
				   " head -c 20000 /dev/zero | tr '\\0' x; echo; exit 3"));
	_cleanup_free_ char *spec = write_spec(s, "logs");
	struct ctr_pidinfo pi;
	int r = ctr_shim_start(g_shim, spec, s->state_dir, 10 * SEC, &pi, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT(pi.pid > 0 && pi.start_time > 0 && pi.started_at > 0);
	struct ctr_exit ex;
	r = ctr_shim_wait_exit(s->state_dir, 10 * SEC, &ex, &err);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(ex.exit_code, 3);
	CU_ASSERT_EQUAL(ex.signal, 0);
	CU_ASSERT_FALSE(ex.oom_killed);
	CU_ASSERT(ex.exited_at >= pi.started_at);
	_cleanup_free_ char *log = NULL;
	CU_ASSERT_EQUAL_FATAL(fs_read_file(s->log_path, 1 << 20, &log, NULL, NULL), 0);
	/* Each line: time, stream, tag, text. */
	int lines = 0, partial = 0;
	bool hello = false, oops = false, nonl = false;
	for (char *save = NULL, *l = strtok_r(log, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		lines++;
		CU_ASSERT(strlen(l) > 31 && l[4] == '-' && l[10] == 'T' && l[19] == '.' &&
			  l[29] == 'Z');
		const char *rest = l + 31;
		if (streq(rest, "stdout F hello"))
			hello = true;
		if (streq(rest, "stderr F oops"))
			oops = true;
		if (startswith(rest, "stdout F no newline") ||
		    startswith(rest, "stdout P no newline"))
			nonl = true;
		if (startswith(rest, "stdout P "))
			partial++;
	}
	CU_ASSERT_TRUE(hello && oops && nonl);
	CU_ASSERT(partial >= 1);
	CU_ASSERT_EQUAL(lines, 4); /* hello, oops, P "no newline"+x..., F x... */
	_cleanup_free_ char *sock = xasprintf("%s/%s", s->state_dir, CTR_SHIM_CONTROL);
	CU_ASSERT_FALSE(fs_exists(sock));
}

static void test_shim_launch_error(void)
{
	NEED_SHIM();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = shim_spec("nope", ARGS("/bin/nope", "x"));
	_cleanup_free_ char *spec = write_spec(s, "nope");
	struct ctr_pidinfo pi;
	int r = ctr_shim_start(g_shim, spec, s->state_dir, 10 * SEC, &pi, &err);
	CU_ASSERT_EQUAL(r, -ENOENT);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err), "exec '/bin/nope': No such file or directory");
	int code = 0;
	_cleanup_free_ char *msg = NULL;
	CU_ASSERT_EQUAL(ctr_shim_read_error(s->state_dir, &code, &msg, NULL), 0);
	CU_ASSERT_EQUAL(code, ENOENT);
	CU_ASSERT_STRING_EQUAL(msg, "exec '/bin/nope': No such file or directory");
	husk_error_clear(&err);
	/* A bad spec file and a missing shim binary report too. */
	_cleanup_free_ char *state = xasprintf("%s/state-bad", g_base);
	unit_write(g_base, "bad.json", "{\"ociVersion\": \"1.0.2-dev\", \"root\": 3}");
	_cleanup_free_ char *bad = xasprintf("%s/bad.json", g_base);
	r = ctr_shim_start(g_shim, bad, state, 10 * SEC, &pi, &err);
	CU_ASSERT_EQUAL(r, -EINVAL);
	CU_ASSERT_TRUE(contains(husk_error_msg(&err), "root: missing or not an object"));
	husk_error_clear(&err);
	r = ctr_shim_start("/nonexistent/husk-shim", bad, state, 10 * SEC, &pi, &err);
	CU_ASSERT_EQUAL(r, -ENOENT);
	CU_ASSERT_TRUE(contains(husk_error_msg(&err), "exec '/nonexistent/husk-shim' failed"));
}

/* The shim outlives the process that started it (huskd SIGKILLed), keeps
 * logging, reopens its log, and answers control requests; RSS stays small. */
static void test_shim_survives_and_control(void)
{
	NEED_SHIM();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *oom = xasprintf("%s/memory.oom_control", g_base);
	unit_write(g_base, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 4\n");
	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    shim_spec("survive", ARGS("sh", "-c",
				      "trap 'echo got-term; exit 143' TERM;"
				      " while true; do echo tick; sleep 0.05; done"));
	s->oom_file = xstrdup(oom);
	_cleanup_free_ char *spec = write_spec(s, "survive");

	int pp[2];
	CU_ASSERT_EQUAL_FATAL(pipe(pp), 0);
	pid_t fake_huskd = fork();
	if (fake_huskd == 0) {
		struct ctr_pidinfo pi;
		struct husk_error e = HUSK_ERROR_INIT;
		int r = ctr_shim_start(g_shim, spec, s->state_dir, 10 * SEC, &pi, &e);
		ssize_t w _unused_ = write(pp[1], &r, sizeof(r));
		pause();
		_exit(0);
	}
	close(pp[1]);
	int r = -1;
	CU_ASSERT_EQUAL(read(pp[0], &r, sizeof(r)), (ssize_t)sizeof(r));
	close(pp[0]);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	kill(fake_huskd, SIGKILL);
	waitpid(fake_huskd, NULL, 0);

	struct ctr_pidinfo pi, sp;
	CU_ASSERT_EQUAL_FATAL(ctr_shim_read_pid(s->state_dir, &pi, &err), 0);
	CU_ASSERT_EQUAL_FATAL(ctr_shim_read_shim_pid(s->state_dir, &sp, &err), 0);
	struct timespec ts = {0, 200000000};
	nanosleep(&ts, NULL);
	CU_ASSERT_TRUE(proc_alive(pi.pid, pi.start_time));
	CU_ASSERT_TRUE(proc_alive(sp.pid, sp.start_time));
	CU_ASSERT_FALSE(proc_alive(pi.pid, pi.start_time + 1));
	/* The container is the shim's child; the shim has its own session. */
	_cleanup_free_ char *ppid = status_field(pi.pid, "PPid");
	CU_ASSERT_EQUAL(atoi(ppid), sp.pid);
	CU_ASSERT_NOT_EQUAL(getsid(sp.pid), getsid(0));
	check_rss(sp.pid);
	char *reply = NULL;
	CU_ASSERT_EQUAL(ctr_shim_request(s->state_dir, "state", &reply, &err), 0);
	_cleanup_free_ char *want = xasprintf("running %d", (int)pi.pid);
	CU_ASSERT_STRING_EQUAL(reply, want);
	free(reply);
	CU_ASSERT_EQUAL(ctr_shim_resize(s->state_dir, 24, 80, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "container has no terminal");
	husk_error_clear(&err);
	/* Attach: the output comes as "1<data>" packets beside the log. */
	int afd = -1;
	bool atty = true, ain = true;
	CU_ASSERT_EQUAL_FATAL(ctr_shim_attach(s->state_dir, &afd, &atty, &ain, &err), 0);
	CU_ASSERT_FALSE(atty);
	CU_ASSERT_FALSE(ain);
	char pkt[64] = "";
	CU_ASSERT(recv(afd, pkt, sizeof(pkt) - 1, 0) > 0);
	CU_ASSERT(startswith(pkt, "1tick\n"));
	close(afd);
	husk_error_clear(&err);

	/* Rotate, reopen: new lines go to the new file. */
	_cleanup_free_ char *rotated = xasprintf("%s.1", s->log_path);
	CU_ASSERT_EQUAL(rename(s->log_path, rotated), 0);
	CU_ASSERT_EQUAL(ctr_shim_reopen_log(s->state_dir, &err), 0);
	nanosleep(&ts, NULL);
	_cleanup_free_ char *newlog = NULL;
	CU_ASSERT_EQUAL(fs_read_file(s->log_path, 1 << 20, &newlog, NULL, NULL), 0);
	CU_ASSERT_TRUE(contains(newlog, " stdout F tick\n"));

	/* An OOM kill counted while it ran is reported. */
	unit_write(g_base, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n");
	CU_ASSERT_EQUAL(ctr_shim_signal(s->state_dir, SIGTERM, &err), 0);
	struct ctr_exit ex;
	CU_ASSERT_EQUAL_FATAL(ctr_shim_wait_exit(s->state_dir, 10 * SEC, &ex, &err), 0);
	CU_ASSERT_EQUAL(ex.exit_code, 143);
	CU_ASSERT_TRUE(ex.oom_killed);
	CU_ASSERT_EQUAL(ctr_shim_signal(s->state_dir, SIGKILL, &err), -ESRCH);
	husk_error_clear(&err);
	_cleanup_free_ char *final = NULL;
	fs_read_file(s->log_path, 1 << 20, &final, NULL, NULL);
	CU_ASSERT_TRUE(contains(final, " stdout F got-term\n"));
	for (int i = 0; i < 100 && proc_alive(sp.pid, sp.start_time); i++)
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	CU_ASSERT_FALSE(proc_alive(sp.pid, sp.start_time));
}

static void test_shim_tty(void)
{
	NEED_SHIM();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s =
	    shim_spec("tty", ARGS("sh", "-c", "tty; stty size; sleep 0.3; stty size"));
	s->tty = true;
	_cleanup_free_ char *spec = write_spec(s, "tty");
	struct ctr_pidinfo pi;
	int r = ctr_shim_start(g_shim, spec, s->state_dir, 10 * SEC, &pi, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(ctr_shim_resize(s->state_dir, 33, 101, &err), 0);
	struct ctr_exit ex;
	CU_ASSERT_EQUAL_FATAL(ctr_shim_wait_exit(s->state_dir, 10 * SEC, &ex, &err), 0);
	CU_ASSERT_EQUAL(ex.exit_code, 0);
	_cleanup_free_ char *log = NULL;
	fs_read_file(s->log_path, 1 << 20, &log, NULL, NULL);
	CU_ASSERT_TRUE(contains(log, " stdout F /dev/pts/0\r\n") || contains(log, "/dev/pts/0"));
	CU_ASSERT_TRUE(contains(log, "33 101"));
}

/* process.consoleSize and process.user.umask of config.json reach the
 * container's first process. */
static void test_shim_console_umask(void)
{
	NEED_SHIM();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = shim_spec(
	    "console", ARGS("sh", "-c", "stty size; umask; touch /tmp/f; stat -c %a /tmp/f"));
	s->tty = true;
	s->console_height = 24;
	s->console_width = 77;
	s->has_umask = true;
	s->umask = 027;
	_cleanup_free_ char *spec = write_spec(s, "console");
	struct ctr_pidinfo pi;
	int r = ctr_shim_start(g_shim, spec, s->state_dir, 10 * SEC, &pi, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	struct ctr_exit ex;
	CU_ASSERT_EQUAL_FATAL(ctr_shim_wait_exit(s->state_dir, 10 * SEC, &ex, &err), 0);
	CU_ASSERT_EQUAL(ex.exit_code, 0);
	_cleanup_free_ char *log = NULL;
	fs_read_file(s->log_path, 1 << 20, &log, NULL, NULL);
	if (!contains(log, "24 77") || !contains(log, "0027") || !contains(log, "640"))
		fprintf(stderr, "\n%s\n", log ? log : "");
	CU_ASSERT_TRUE(contains(log, "24 77"));
	CU_ASSERT_TRUE(contains(log, "0027"));
	CU_ASSERT_TRUE(contains(log, "640"));
}

/* ---- exec ---- */

static void test_exec(void)
{
	NEED_SHIM();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = shim_spec("exec", ARGS("sleep", "60"));
	s->no_new_privs = true;
	s->uid = 0;
	_cleanup_free_ char *spec = write_spec(s, "exec");
	struct ctr_pidinfo pi;
	int r = ctr_shim_start(g_shim, spec, s->state_dir, 10 * SEC, &pi, &err);
	CU_ASSERT_EQUAL_FATAL(r, 0);
	/* huskd reads the spec back from the file, as after a restart. */
	_cleanup_(ctr_spec_freep) struct ctr_spec *cs = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_spec_read_oci_file(spec, &cs, &err), 0);

	char *args1[] = {
	    "sh", "-c",
	    "echo out; echo err >&2; grep -E '^(CapEff|NoNewPrivs|Seccomp):' "
	    "/proc/self/status; ls /proc | grep -c '^[0-9]'; cat /proc/1/cmdline; exit 7",
	    NULL};
	struct ctr_exec_opts o = {.spec = cs, .pid = pi.pid, .args = args1};
	struct ctr_exec_result res;
	r = ctr_exec_sync(&o, 10 * SEC, 0, &res, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(res.exit_code, 7);
	CU_ASSERT_TRUE(
	    contains(res.out, "out\nCapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\n"));
	/* sleep, sh, grep/ls... only the container's processes. */
	CU_ASSERT_TRUE(contains(res.out, "sleep"));
	CU_ASSERT_STRING_EQUAL(res.err_out, "err\n");
	CU_ASSERT_FALSE(res.out_truncated);
	ctr_exec_result_free(&res);

	/* Output above the limit is cut and flagged. */
	char *args2[] = {"sh", "-c", "head -c 100000 /dev/zero", NULL};
	o.args = args2;
	CU_ASSERT_EQUAL_FATAL(ctr_exec_sync(&o, 10 * SEC, 1000, &res, &err), 0);
	CU_ASSERT_EQUAL(res.out_len, 1000);
	CU_ASSERT_TRUE(res.out_truncated);
	CU_ASSERT_EQUAL(res.exit_code, 0);
	ctr_exec_result_free(&res);

	/* A timeout kills it, and says so, quickly. */
	char *args3[] = {"sh", "-c", "sleep 30 & sleep 30", NULL};
	o.args = args3;
	long long t0 = now_mono_ns();
	r = ctr_exec_sync(&o, SEC / 2, 0, &res, &err);
	long long took = now_mono_ns() - t0;
	CU_ASSERT_EQUAL(r, -ETIMEDOUT);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err),
			       "exec 'sh -c sleep 30 & sleep 30': timed out after 0.500s");
	CU_ASSERT(took < 2 * SEC);
	husk_error_clear(&err);
	/* Also when it floods its output. */
	char *args3b[] = {"yes", NULL};
	o.args = args3b;
	t0 = now_mono_ns();
	CU_ASSERT_EQUAL(ctr_exec_sync(&o, SEC / 2, 0, &res, &err), -ETIMEDOUT);
	CU_ASSERT(now_mono_ns() - t0 < 2 * SEC);
	husk_error_clear(&err);
	/* Nothing of it is left in the container. */
	char *args4[] = {"sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null | grep -c '(sleep) [^Z]'",
			 NULL};
	o.args = args4;
	CU_ASSERT_EQUAL_FATAL(ctr_exec_sync(&o, 10 * SEC, 0, &res, &err), 0);
	CU_ASSERT_STRING_EQUAL(res.out, "1\n");
	ctr_exec_result_free(&res);

	/* Errors come back like the launcher's. */
	char *args5[] = {"/bin/nope", NULL};
	o.args = args5;
	CU_ASSERT_EQUAL(ctr_exec_sync(&o, 10 * SEC, 0, &res, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err), "exec '/bin/nope': No such file or directory");
	husk_error_clear(&err);

	CU_ASSERT_EQUAL(ctr_shim_signal(s->state_dir, SIGKILL, &err), 0);
	struct ctr_exit ex;
	CU_ASSERT_EQUAL_FATAL(ctr_shim_wait_exit(s->state_dir, 10 * SEC, &ex, &err), 0);
	CU_ASSERT_EQUAL(ex.exit_code, 137);
	CU_ASSERT_EQUAL(ex.signal, SIGKILL);
	/* Exec into a container that is gone. */
	o.args = args1;
	CU_ASSERT_EQUAL(ctr_exec_sync(&o, 10 * SEC, 0, &res, &err), -ESRCH);
}

/* Nothing of the caller's reaches the container (issue 10): a working
 * directory through one of the caller's fds (CVE-2024-21626) fails, for a
 * launch and for an exec, instead of landing in a host directory. */
static void test_no_caller_fds(void)
{
	NEED_SHIM();
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_close_ int dir = open(g_base, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int leak = fcntl(dir, F_DUPFD_CLOEXEC, 77);
	CU_ASSERT_FATAL(leak >= 77);
	_cleanup_free_ char *cwd = xasprintf("/proc/self/fd/%d", leak);
	_cleanup_free_ char *want = xasprintf("chdir '%s': No such file or directory", cwd);

	_cleanup_(ctr_spec_freep) struct ctr_spec *l = mkspec(ARGS("pwd"));
	free(l->cwd);
	l->cwd = xstrdup(cwd);
	struct run out = {0};
	int r = run_capture(l, &out, &err);
	if (r == 0)
		fprintf(stderr, "\nthe container ran in '%s'\n", out.out);
	CU_ASSERT_EQUAL(r, -ENOENT);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err), want);
	husk_error_clear(&err);
	run_free(&out);

	_cleanup_(ctr_spec_freep) struct ctr_spec *s = shim_spec("leak", ARGS("sleep", "60"));
	_cleanup_free_ char *spec = write_spec(s, "leak");
	struct ctr_pidinfo pi;
	CU_ASSERT_EQUAL_FATAL(ctr_shim_start(g_shim, spec, s->state_dir, 10 * SEC, &pi, &err), 0);
	char *args[] = {"pwd", NULL};
	struct ctr_exec_opts o = {.spec = s, .pid = pi.pid, .args = args, .cwd = cwd};
	struct ctr_exec_result res = {0};
	r = ctr_exec_sync(&o, 10 * SEC, 0, &res, &err);
	if (r == 0)
		fprintf(stderr, "\nthe exec ran in '%s'\n", res.out);
	CU_ASSERT_EQUAL(r, -ENOENT);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err), want);
	husk_error_clear(&err);
	ctr_exec_result_free(&res);
	/* An exec holds its stdio only (ls's own directory is 3). */
	char *ls[] = {"ls", "/proc/self/fd", NULL};
	o = (struct ctr_exec_opts){.spec = s, .pid = pi.pid, .args = ls};
	CU_ASSERT_EQUAL(ctr_exec_sync(&o, 10 * SEC, 0, &res, &err), 0);
	CU_ASSERT_STRING_EQUAL(res.out, "0\n1\n2\n3\n");
	ctr_exec_result_free(&res);
	CU_ASSERT_EQUAL(ctr_shim_signal(s->state_dir, SIGKILL, &err), 0);
	struct ctr_exit ex;
	CU_ASSERT_EQUAL(ctr_shim_wait_exit(s->state_dir, 10 * SEC, &ex, &err), 0);
}

static char *find_shim(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	/* BUILD/tests/test_launcher_run -> BUILD/husk-shim */
	for (int i = 0; i < 2; i++) {
		char *slash = strrchr(exe, '/');
		if (!slash)
			return NULL;
		*slash = '\0';
	}
	char *p = xasprintf("%s/husk-shim", exe);
	if (access(p, X_OK) == 0)
		return p;
	free(p);
	return NULL;
}

int main(void)
{
	g_root = geteuid() == 0;
	g_base = xstrdup("/tmp/husk-ln-XXXXXX");
	if (!mkdtemp(g_base))
		abort();
	chmod(g_base, 0755);
	g_rootfs = xasprintf("%s/rootfs", g_base);
	if (g_root && build_rootfs(g_rootfs) != 0) {
		fprintf(stderr, "cannot build the busybox rootfs\n");
		return 2;
	}
	g_shim = find_shim();
	static const struct unit_test tests[] = {
	    {"launch: caps, no_new_privs, seccomp, namespaces", test_launch_status},
	    {"launch: rootfs view, masked and read-only paths", test_launch_view},
	    {"launch: errors reach the caller", test_launch_errors},
	    {"launch: mounts, symlink escapes, user, devices, sysctls", test_launch_user_mounts},
	    {"launch: no volume over /, /proc, /sys; masks never through symlinks",
	     test_launch_protected_targets},
	    {"launch: pod files, /dev/shm, mount propagation", test_launch_pod_files_propagation},
	    {"launch: bidirectional propagation", test_launch_bidirectional},
	    {"launch: join a namespace, cgroup placement", test_launch_join_and_cgroup},
	    {"launch: user namespace", test_launch_userns},
	    {"shim: run, exit code, CRI log", test_shim_run_and_log},
	    {"shim: launch errors", test_shim_launch_error},
	    {"shim: survives its parent, control, reopen, oom, RSS",
	     test_shim_survives_and_control},
	    {"shim: consoleSize and umask", test_shim_console_umask},
	    {"shim: tty and resize", test_shim_tty},
	    {"exec: output, exit code, limit, timeout, errors", test_exec},
	    {"launch, exec: no fd of the caller's reaches the container", test_no_caller_fds},
	};
	int r = unit_run("launcher (root)", tests, ARRAY_SIZE(tests));
	/* HUSK_TEST_KEEP=1 leaves the rootfs, specs, logs and state (the
	 * shims' own logs) for a look. */
	if (getenv("HUSK_TEST_KEEP"))
		fprintf(stderr, "kept %s\n", g_base);
	else
		unit_rmdir(g_base);
	free(g_rootfs);
	free(g_shim);
	return r;
}
