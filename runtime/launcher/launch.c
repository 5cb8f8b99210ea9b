/* ctr_launch: the caller forks stage 1, which enters the cgroups and the
 * namespaces and clones stage 2 as the caller's own child (CLONE_PARENT);
 * stage 2 sets up the rootfs and the process and execs. Both report over a
 * SOCK_SEQPACKET socket so an error in the child reaches the caller. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/fs.h"
#include "common/log.h"
#include "common/proc.h"
#include "runtime/launcher/internal.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define LAUNCH_TIMEOUT_NS (120LL * 1000000000LL)

/* ---- caller side ---- */

static void lc_warn(const char *id, const char *what, const char *fmt, ...) _printf_(3, 4);
static void lc_warn(const char *id, const char *what, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	log_warn("container=%s %s: %s", id ? id : "-", what, m);
}

static int read_own_oom(int *ret)
{
	FILE *f = fopen("/proc/self/oom_score_adj", "re");
	if (!f)
		return -errno;
	int v, n = fscanf(f, "%d", &v);
	fclose(f);
	if (n != 1)
		return -EIO;
	*ret = v;
	return 0;
}

int lc_prepare(struct lc *lc, const struct ctr_spec *spec, char *const *args, char *const *env,
	       const char *cwd, bool tty, const struct ctr_stdio *stdio, struct husk_error *err)
{
	*lc = (struct lc){.spec = spec,
			  .args = args,
			  .envp = env,
			  .cwd = cwd,
			  .tty = tty,
			  .devnull = -1,
			  .sock = -1,
			  .stdio = stdio ? *stdio : CTR_STDIO_NULL,
			  .idmap_files = {-1, -1, -1, -1},
			  .rootfs_tree = -1,
			  .sys_tree = -1};
	lc->idmap_mounts = xnew(int, spec->n_mounts + 1);
	for (size_t i = 0; i < spec->n_mounts; i++)
		lc->idmap_mounts[i] = -1;
	for (size_t i = 0; i < LC_STD_DEVICES; i++)
		lc->std_dev_trees[i] = -1;
	lc->dev_trees = xnew(int, spec->n_devices + 1);
	for (size_t i = 0; i < spec->n_devices; i++)
		lc->dev_trees[i] = -1;
	lc->last_cap = lc_caps_last_cap();

	/* Capabilities husk does not hold cannot be granted (capset fails):
	 * drop them with a warning rather than fail privileged containers. */
	lc->caps = spec->caps;
	uint64_t own_perm, own_bnd;
	if (lc_caps_get_own(&own_perm, &own_bnd) == 0) {
		uint64_t missing = (spec->caps.bounding & ~own_bnd) |
				   ((spec->caps.permitted | spec->caps.effective |
				     spec->caps.inheritable | spec->caps.ambient) &
				    ~own_perm);
		missing &= lc_caps_all();
		if (missing) {
			_cleanup_strv_ char **names = lc_caps_to_names(missing);
			_cleanup_free_ char *list = xstrdup("");
			for (size_t i = 0; names[i]; i++) {
				char *n = xasprintf("%s%s%s", list, i ? "," : "", names[i]);
				free(list);
				list = n;
			}
			lc_warn(spec->id, "capabilities", "%s not held by husk, dropped", list);
		}
		lc->caps.bounding &= own_bnd;
		lc->caps.permitted &= own_perm;
		lc->caps.effective &= own_perm;
		lc->caps.inheritable &= own_perm;
		lc->caps.ambient &= own_perm;
	}
	lc->caps.bounding &= lc_caps_all();

	/* Raising a hard limit needs CAP_SYS_RESOURCE, which husk may lack:
	 * clamp to our own limits. */
	lc->rlimits = xnew(struct ctr_rlimit, spec->n_rlimits);
	lc->n_rlimits = spec->n_rlimits;
	for (size_t i = 0; i < spec->n_rlimits; i++) {
		struct ctr_rlimit l = spec->rlimits[i];
		struct rlimit own;
		if (getrlimit(l.resource, &own) == 0 && own.rlim_max != RLIM_INFINITY &&
		    l.hard > own.rlim_max) {
			lc_warn(spec->id, ctr_rlimit_name(l.resource),
				"hard limit %llu above husk's %llu, clamped",
				(unsigned long long)l.hard, (unsigned long long)own.rlim_max);
			l.hard = own.rlim_max;
		}
		if (l.soft > l.hard)
			l.soft = l.hard;
		lc->rlimits[i] = l;
	}

	if (spec->has_oom_score_adj) {
		int own = 0;
		lc->set_oom = true;
		lc->oom_score_adj = spec->oom_score_adj;
		/* Lowering oom_score_adj needs CAP_SYS_RESOURCE; containerd
		 * clamps the same way (restrict_oom_score_adj). */
		if (read_own_oom(&own) == 0 && spec->oom_score_adj < own) {
			lc_warn(spec->id, "oom_score_adj", "%d below husk's %d, clamped",
				spec->oom_score_adj, own);
			lc->oom_score_adj = own;
		}
	}

	if (spec->seccomp != LC_SECCOMP_UNCONFINED) {
		int r;
		if (!spec->seccomp_filter)
			lc->need_compile = true;
		else if ((r = lc_seccomp_bpf_read(spec->seccomp_filter, &lc->bpf, err)) < 0)
			return r;
	}

	lc->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (lc->devnull < 0)
		return husk_error_errno(err, errno, "open '/dev/null'");
	return 0;
}

void lc_release(struct lc *lc)
{
	lc_seccomp_bpf_free(lc->bpf);
	lc->bpf = NULL;
	free(lc->rlimits);
	lc->rlimits = NULL;
	free(lc->idmap_mounts);
	lc->idmap_mounts = NULL;
	free(lc->dev_trees);
	lc->dev_trees = NULL;
	if (lc->devnull >= 0)
		close(lc->devnull);
	lc->devnull = -1;
}

static int write_idmap(pid_t pid, const char *file, const struct ctr_idmap *m, size_t n,
		       struct husk_error *err)
{
	char buf[CTR_SPEC_MAX_IDMAPS * 36 + 1];
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%u %u %u\n",
					m[i].container_id, m[i].host_id, m[i].size);
	_cleanup_free_ char *path = xasprintf("/proc/%d/%s", (int)pid, file);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, len) != (ssize_t)len)
		return husk_error_errno(err, errno, "write %s", file);
	return 0;
}

static void kill_and_reap(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
}

static char *wait_status_str(int st)
{
	if (WIFEXITED(st))
		return xasprintf("exit status %d", WEXITSTATUS(st));
	if (WIFSIGNALED(st))
		return xasprintf("killed by signal %d", WTERMSIG(st));
	return xasprintf("status %#x", st);
}

int lc_parent_sync(struct lc *lc, int sock, pid_t s1, long long deadline_ns,
		   struct ctr_process *ret, struct husk_error *err)
{
	pid_t child = -1;
	_cleanup_close_ int pty = -1;
	bool ready = false, failed = false;
	struct husk_error child_err = HUSK_ERROR_INIT;
	int r = 0;

	for (;;) {
		long long left = deadline_ns - now_mono_ns();
		struct pollfd p = {sock, POLLIN, 0};
		int pr = left > 0 ? poll(&p, 1, (int)(left / 1000000) + 1) : 0;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			r = pr < 0 ? husk_error_errno(err, errno, "wait for the container process")
				   : husk_error_set(err, ETIMEDOUT,
						    "container setup did not finish in time");
			break;
		}
		struct lc_msg m;
		int fd;
		int n = lc_recv(sock, &m, &fd);
		if (n < 0) {
			r = husk_error_errno(err, -n, "read from the container process");
			break;
		}
		if (n == 0)
			break;
		switch (m.type) {
		case LC_MSG_PID:
			child = m.pid;
			break;
		case LC_MSG_USERNS: {
			struct husk_error e = HUSK_ERROR_INIT;
			int code = 0;
			if (write_idmap(m.pid, "uid_map", lc->spec->uid_map, lc->spec->n_uid_map,
					&e) < 0 ||
			    write_idmap(m.pid, "gid_map", lc->spec->gid_map, lc->spec->n_gid_map,
					&e) < 0)
				code = e.code;
			lc_send(sock, LC_MSG_USERNS_DONE, code, 0, e.msg, -1);
			husk_error_clear(&e);
			break;
		}
		case LC_MSG_PTY:
			if (pty >= 0)
				close(pty);
			pty = steal_fd(&fd);
			break;
		case LC_MSG_READY:
			ready = true;
			break;
		case LC_MSG_ERROR:
			if (!failed)
				husk_error_sys(&child_err, m.code ? m.code : EIO, "%s", m.text);
			failed = true;
			break;
		}
		if (fd >= 0)
			close(fd);
	}

	int st = 0;
	if (r < 0)
		kill(s1, SIGKILL);
	while (waitpid(s1, &st, 0) < 0 && errno == EINTR)
		;
	if (r == 0 && failed)
		r = husk_error_move(err, &child_err);
	husk_error_clear(&child_err);
	if (r == 0 && child <= 0) {
		_cleanup_free_ char *s = wait_status_str(st);
		r = husk_error_set(err, EIO, "container setup failed: stage 1 %s", s);
	}
	if (r == 0 && !ready) {
		int cst = 0;
		pid_t w;
		while ((w = waitpid(child, &cst, 0)) < 0 && errno == EINTR)
			;
		child = -1;
		_cleanup_free_ char *s = wait_status_str(cst);
		return husk_error_set(err, EIO,
				      "container setup failed: process %s without a report", s);
	}
	if (r < 0) {
		kill_and_reap(child);
		return r;
	}
	*ret = (struct ctr_process){.pid = child, .pty_master = steal_fd(&pty)};
	return 0;
}

/* ---- child side ---- */

void lc_reset_signals(void)
{
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	proc_signals_default(true);
}

pid_t lc_clone_parent(void)
{
	/* Like fork, but the new process is our parent's child: the caller
	 * gets to reap the container even though stage 1 has to fork it
	 * (a PID namespace applies to children only). No stack: the child
	 * continues on a copy of ours, as with fork. */
	return (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
}

int lc_join_cgroups(char *const *procs, struct husk_error *err)
{
	for (size_t i = 0; procs && procs[i]; i++) {
		_cleanup_close_ int fd = open(procs[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			return husk_error_errno(err, errno, "join cgroup '%s'", procs[i]);
	}
	return 0;
}

int lc_setup_stdio(const struct lc *lc, struct husk_error *err)
{
	int src[3] = {lc->stdio.in, lc->stdio.out, lc->stdio.err};
	int tmp[3];
	/* Move everything out of the way first: a source may be 0-2. */
	for (int i = 0; i < 3; i++) {
		int s = src[i] >= 0 ? src[i] : lc->devnull;
		tmp[i] = fcntl(s, F_DUPFD_CLOEXEC, 3);
		if (tmp[i] < 0)
			return husk_error_errno(err, errno, "set up stdio");
	}
	for (int i = 0; i < 3; i++) {
		if (dup2(tmp[i], i) < 0)
			return husk_error_errno(err, errno, "set up stdio");
		close(tmp[i]);
	}
	return 0;
}

static int write_file(const char *path, const char *s)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	size_t n = strlen(s);
	if (write(fd, s, n) != (ssize_t)n)
		return -errno;
	return 0;
}

/* "exec PROFILE" to the AppArmor exec attribute of this thread: the
 * interface of kernels with LSM stacking first, then the old one. */
static int set_apparmor_exec(const char *profile)
{
	char buf[300];
	int n = snprintf(buf, sizeof(buf), "exec %s", profile);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EINVAL;
	static const char *const files[] = {"/proc/thread-self/attr/apparmor/exec",
					    "/proc/thread-self/attr/exec"};
	int r = -ENOENT;
	for (size_t i = 0; i < ARRAY_SIZE(files) && r == -ENOENT; i++) {
		_cleanup_close_ int fd = open(files[i], O_WRONLY | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			continue;
		}
		r = write(fd, buf, (size_t)n) == n ? 0 : -errno;
	}
	return r;
}

static const char *env_path(char *const *envp)
{
	for (size_t i = 0; envp && envp[i]; i++)
		if (startswith(envp[i], "PATH="))
			return envp[i] + 5;
	return DEFAULT_PATH;
}

static int exec_search(const struct lc *lc, struct husk_error *err)
{
	const char *file = lc->args[0];
	if (strchr(file, '/')) {
		execve(file, lc->args, lc->envp);
		return husk_error_errno(err, errno, "exec '%s'", file);
	}
	const char *path = env_path(lc->envp);
	bool eacces = false;
	char buf[4096];
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		size_t dl = (size_t)(end - p);
		if (dl == 0) {
			p = ".";
			dl = 1;
		}
		if (dl + strlen(file) + 2 <= sizeof(buf)) {
			memcpy(buf, p, dl);
			buf[dl] = '/';
			strcpy(buf + dl + 1, file);
			execve(buf, lc->args, lc->envp);
			if (errno == EACCES)
				eacces = true;
			else if (errno != ENOENT && errno != ENOTDIR)
				return husk_error_errno(err, errno, "exec '%s'", buf);
		}
		if (!*end)
			break;
		p = end;
	}
	if (eacces)
		return husk_error_errno(err, EACCES, "exec '%s'", file);
	return husk_error_set(err, ENOENT, "exec '%s': executable file not found in $PATH", file);
}

int lc_chdir(const char *cwd, struct husk_error *err)
{
	if (chdir(cwd) < 0)
		return husk_error_errno(err, errno, "chdir '%s'", cwd);
	/* A path through a magic link (/proc/self/fd/N, /proc/N/cwd) can
	 * reach a directory outside our root (CVE-2024-21626); the kernel
	 * then has no path for it from the root: getcwd fails with ENOENT
	 * (glibc turns the kernel's "(unreachable)" into that). */
	char buf[PATH_MAX] = "";
	if (!getcwd(buf, sizeof(buf)) && errno != ENOENT)
		return husk_error_errno(err, errno, "chdir '%s': getcwd", cwd);
	if (buf[0] != '/')
		return husk_error_set(err, EINVAL,
				      "chdir '%s': the directory is not inside the container", cwd);
	return 0;
}

int lc_finish_and_exec(const struct lc *lc, struct husk_error *err)
{
	const struct ctr_spec *s = lc->spec;
	int r;
	umask(s->has_umask ? (mode_t)(s->umask & 0777) : 022);
	for (size_t i = 0; i < lc->n_rlimits; i++) {
		struct rlimit rl = {lc->rlimits[i].soft, lc->rlimits[i].hard};
		if (setrlimit(lc->rlimits[i].resource, &rl) < 0)
			return husk_error_errno(err, errno, "setrlimit %s",
						ctr_rlimit_name(lc->rlimits[i].resource));
	}
	/* The caller learns that setup went through; what follows can only
	 * fail with a message, which overrides this. Sent before seccomp so a
	 * profile that blocks sendmsg cannot hide a successful start. */
	lc_send(lc->sock, LC_MSG_READY, 0, 0, NULL, -1);
	if (!lc->die_with_parent)
		prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);

	/* The AppArmor profile takes effect at execve; set it while the
	 * profile of ours (unconfined) may still change its own. */
	if (s->apparmor_profile && (r = set_apparmor_exec(s->apparmor_profile)) < 0)
		return husk_error_errno(err, -r, "set AppArmor profile '%s'", s->apparmor_profile);
	/* Without no_new_privs the filter needs CAP_SYS_ADMIN, so it goes on
	 * while we still have it; the profile then has to allow the calls
	 * below (RuntimeDefault does). */
	if (lc->bpf && !s->no_new_privs && (r = lc_seccomp_install(lc->bpf)) < 0)
		return husk_error_errno(err, -r, "load seccomp profile");
	if ((r = lc_caps_drop_bounding(lc->caps.bounding, lc->last_cap)) < 0)
		return husk_error_errno(err, -r, "drop bounding capabilities");
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return husk_error_errno(err, errno, "keep capabilities");
	gid_t groups[CTR_SPEC_MAX_GROUPS];
	size_t ng =
	    s->n_additional_gids < CTR_SPEC_MAX_GROUPS ? s->n_additional_gids : CTR_SPEC_MAX_GROUPS;
	for (size_t i = 0; i < ng; i++)
		groups[i] = s->additional_gids[i];
	if (setgroups(ng, groups) < 0 && !(errno == EPERM && ng == 0))
		return husk_error_errno(err, errno, "setgroups");
	if (setresgid(s->gid, s->gid, s->gid) < 0)
		return husk_error_errno(err, errno, "setgid %u", s->gid);
	if (setresuid(s->uid, s->uid, s->uid) < 0)
		return husk_error_errno(err, errno, "setuid %u", s->uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return husk_error_errno(err, errno, "keep capabilities");
	if ((r = lc_caps_apply(&lc->caps, lc->last_cap)) < 0)
		return husk_error_errno(err, -r, "set capabilities");
	if (s->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return husk_error_errno(err, errno, "set no_new_privs");
	if ((r = lc_chdir(lc->cwd, err)) < 0)
		return r;
	if (lc->bpf && s->no_new_privs && (r = lc_seccomp_install(lc->bpf)) < 0)
		return husk_error_errno(err, -r, "load seccomp profile");
	/* lc_isolate closed what the caller had; this is for what setup may
	 * have left open since. */
	if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) < 0) {
		for (int fd = 3; fd < 65536; fd++)
			if (fd != lc->sock)
				close(fd);
	}
	return exec_search(lc, err);
}

/* Close [lo, hi] (hi >= lo), by hand where close_range is missing. */
static void close_between(unsigned lo, unsigned hi)
{
	if (close_range(lo, hi, 0) == 0)
		return;
	for (unsigned fd = lo; fd <= hi && fd < 65536; fd++)
		close((int)fd);
}

_noreturn_ static void isolate_fail(struct lc *lc, const char *what, int e)
{
	struct husk_error err = HUSK_ERROR_INIT;
	husk_error_errno(&err, e, "%s", what);
	lc_fail(lc, &err);
}

void lc_isolate(struct lc *lc)
{
	/* Not dumpable: nothing in the container may ptrace us, open our
	 * /proc/PID/exe (the caller's binary, CVE-2019-5736) or our fds, or
	 * read our memory until execve, which makes the container's program
	 * dumpable again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		isolate_fail(lc, "set non-dumpable", errno);
	/* The container's stdio becomes 0-2 now: the caller's own 0-2 (its
	 * log, for huskd) must not reach it either. A tty replaces them later. */
	if (lc->tty)
		lc->stdio = CTR_STDIO_NULL;
	/* Our own fds off 0-2 first (a caller started with those closed
	 * gets them from socketpair and open). */
	if (lc->sock < 3 && (lc->sock = fcntl(lc->sock, F_DUPFD_CLOEXEC, 3)) < 0)
		isolate_fail(lc, "move the sync socket", errno);
	if (lc->devnull < 3 && (lc->devnull = fcntl(lc->devnull, F_DUPFD_CLOEXEC, 3)) < 0)
		isolate_fail(lc, "move /dev/null", errno);
	struct husk_error err = HUSK_ERROR_INIT;
	if (lc_setup_stdio(lc, &err) < 0)
		lc_fail(lc, &err);
	lc->stdio = (struct ctr_stdio){0, 1, 2};
	/* Everything else the caller had open goes before we join anything
	 * (CVE-2016-9962, CVE-2024-21626): close-on-exec is too late, as the
	 * container can reach our fds while we set it up. */
	int a = lc->sock < lc->devnull ? lc->sock : lc->devnull;
	int b = lc->sock < lc->devnull ? lc->devnull : lc->sock;
	unsigned lo = 3;
	int keep[2] = {a, b};
	for (int i = 0; i < 2; i++) {
		if (keep[i] < (int)lo)
			continue;
		if ((unsigned)keep[i] > lo)
			close_between(lo, (unsigned)keep[i] - 1);
		lo = (unsigned)keep[i] + 1;
	}
	close_between(lo, ~0U);
	/* Before any namespace: in a user namespace of its own, a
	 * non-dumpable process cannot write its own /proc files. The value is
	 * inherited by the process that execs. */
	if (lc->set_oom) {
		char v[16];
		snprintf(v, sizeof(v), "%d", lc->oom_score_adj);
		int r = write_file("/proc/self/oom_score_adj", v);
		if (r < 0) {
			char what[64];
			snprintf(what, sizeof(what), "set oom_score_adj %d", lc->oom_score_adj);
			isolate_fail(lc, what, -r);
		}
	}
}

/* ---- launch ---- */

static const int ns_clone_flag[CTR_NS_COUNT] = {
    [CTR_NS_USER] = CLONE_NEWUSER,     [CTR_NS_MNT] = CLONE_NEWNS,  [CTR_NS_PID] = CLONE_NEWPID,
    [CTR_NS_NET] = CLONE_NEWNET,       [CTR_NS_IPC] = CLONE_NEWIPC, [CTR_NS_UTS] = CLONE_NEWUTS,
    [CTR_NS_CGROUP] = CLONE_NEWCGROUP,
};
static const char *const ns_name[CTR_NS_COUNT] = {
    [CTR_NS_USER] = "user",	[CTR_NS_MNT] = "mount", [CTR_NS_PID] = "pid",
    [CTR_NS_NET] = "net",	[CTR_NS_IPC] = "ipc",	[CTR_NS_UTS] = "uts",
    [CTR_NS_CGROUP] = "cgroup",
};
/* User first: the others may belong to it. Mount last. */
static const int join_order[] = {CTR_NS_USER, CTR_NS_IPC,    CTR_NS_UTS, CTR_NS_NET,
				 CTR_NS_PID,  CTR_NS_CGROUP, CTR_NS_MNT};

static _noreturn_ void launch_stage2(struct lc *lc)
{
	struct husk_error err = HUSK_ERROR_INIT;
	const struct ctr_spec *s = lc->spec;
	/* Die with the caller while still being set up; cleared before exec
	 * (a running container outlives its shim). */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (setsid() < 0) {
		husk_error_errno(&err, errno, "setsid");
		lc_fail(lc, &err);
	}
	if (!lc->tty && lc_setup_stdio(lc, &err) < 0)
		lc_fail(lc, &err);
	if (lc_setup_rootfs(lc, &err) < 0)
		lc_fail(lc, &err);
	if (lc->tty && lc_setup_tty(lc, true, &err) < 0)
		lc_fail(lc, &err);
	if (s->hostname && s->ns[CTR_NS_UTS].mode == CTR_NS_NEW &&
	    sethostname(s->hostname, strlen(s->hostname)) < 0) {
		husk_error_errno(&err, errno, "set hostname '%s'", s->hostname);
		lc_fail(lc, &err);
	}
	lc_finish_and_exec(lc, &err);
	lc_fail(lc, &err);
}

/* Stage 2 in stage 1's memory, which is the caller's: stage 1 sleeps
 * until this has exec'd or failed (proc_clone_vm). It starts with every
 * signal blocked; the container's process starts with none. */
static int stage2_vm(void *p)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	launch_stage2(p);
	return 127; /* stage 2 ends in execve or _exit */
}

static _noreturn_ void launch_stage1(struct lc *lc, void *arg _unused_)
{
	struct husk_error err = HUSK_ERROR_INIT;
	const struct ctr_spec *s = lc->spec;
	int nsfd[CTR_NS_COUNT];
	lc_reset_signals();
	ctr_make_targets(s, lc->cwd);
	if (lc_join_cgroups(s->cgroup_procs, &err) < 0)
		lc_fail(lc, &err);
	/* Only the user namespace's owner outside (husk, root) may idmap a
	 * mount: before joining it. */
	if (lc_idmap_prepare(lc, &err) < 0 || lc_cgroup_prepare(lc, &err) < 0)
		lc_fail(lc, &err);
	/* Opened by path while the caller's mount namespace shows them. */
	for (int i = 0; i < CTR_NS_COUNT; i++) {
		nsfd[i] = -1;
		if (s->ns[i].mode != CTR_NS_JOIN)
			continue;
		nsfd[i] = open(s->ns[i].path, O_RDONLY | O_CLOEXEC);
		if (nsfd[i] < 0) {
			husk_error_errno(&err, errno, "open %s namespace '%s'", ns_name[i],
					 s->ns[i].path);
			lc_fail(lc, &err);
		}
	}
	if (lc_template_prepare(lc, &err) < 0)
		lc_fail(lc, &err);
	if (s->ns[CTR_NS_USER].mode == CTR_NS_JOIN && !lc->in_template) {
		if (chdir(s->rootfs) < 0) {
			husk_error_errno(&err, errno, "chdir to rootfs '%s'", s->rootfs);
			lc_fail(lc, &err);
		}
		lc->root_by_cwd = true;
	}
	if (lc_stage_clones(lc, &err) < 0)
		lc_fail(lc, &err);
	for (size_t k = 0; k < ARRAY_SIZE(join_order); k++) {
		int i = join_order[k];
		if (nsfd[i] >= 0 && setns(nsfd[i], ns_clone_flag[i]) < 0) {
			husk_error_errno(&err, errno, "join %s namespace '%s'", ns_name[i],
					 s->ns[i].path);
			lc_fail(lc, &err);
		}
	}
	for (int i = 0; i < CTR_NS_COUNT; i++)
		if (nsfd[i] >= 0)
			close(nsfd[i]);
	/* Host root is nobody in a joined user namespace (a pod's): become
	 * its root, keeping the capabilities setns gave, so that what the
	 * launcher creates is owned by root inside. */
	if (s->ns[CTR_NS_USER].mode == CTR_NS_JOIN &&
	    (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)) {
		husk_error_errno(&err, errno, "user namespace '%s': become root",
				 s->ns[CTR_NS_USER].path);
		lc_fail(lc, &err);
	}
	int flags = 0;
	for (int i = 0; i < CTR_NS_COUNT; i++)
		if (s->ns[i].mode == CTR_NS_NEW)
			flags |= ns_clone_flag[i];
	if (flags && unshare(flags) < 0) {
		husk_error_errno(&err, errno, "create namespaces");
		lc_fail(lc, &err);
	}
	if (s->ns[CTR_NS_USER].mode == CTR_NS_NEW) {
		struct lc_msg m;
		int fd;
		if (lc_send(lc->sock, LC_MSG_USERNS, 0, getpid(), NULL, -1) < 0 ||
		    lc_recv(lc->sock, &m, &fd) <= 0 || m.type != LC_MSG_USERNS_DONE) {
			husk_error_set(&err, EIO, "user namespace: no answer from the caller");
			lc_fail(lc, &err);
		}
		if (m.code) {
			husk_error_set(&err, m.code, "user namespace: %s", m.text);
			lc_fail(lc, &err);
		}
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) {
			husk_error_errno(&err, errno, "user namespace: become root");
			lc_fail(lc, &err);
		}
	}
	pid_t pid = lc->share_memory ? proc_clone_vm(CLONE_PARENT, INT_MAX, stage2_vm, lc)
				     : lc_clone_parent();
	if (pid < 0) {
		husk_error_errno(&err, lc->share_memory ? -pid : errno,
				 "clone the container process");
		lc_fail(lc, &err);
	}
	if (pid == 0)
		launch_stage2(lc);
	lc_send(lc->sock, LC_MSG_PID, 0, pid, NULL, -1);
	_exit(0);
}

int ctr_launch(const struct ctr_spec *spec, const struct ctr_stdio *stdio, struct ctr_process *ret,
	       struct husk_error *err)
{
	int r = ctr_spec_validate(spec, err);
	if (r < 0)
		return r;
	struct lc lc;
	r = lc_prepare(&lc, spec, spec->args, spec->env, spec->cwd, spec->tty, stdio, err);
	if (r == 0 && lc.need_compile)
		r = husk_error_set(err, EINVAL,
				   "seccomp: the spec has no compiled filter "
				   "(process.seccomp.filter)");
	if (r < 0) {
		lc_release(&lc);
		return r;
	}
	/* A user namespace needs stage 1 forked: the caller writes its id
	 * maps while it waits (LC_MSG_USERNS), and setns(2) into a user
	 * namespace refuses a process that shares its memory. So do
	 * sanitizer builds: ASan cannot follow a thread onto a stack of its
	 * own (a noreturn call there warns, on the container's stderr, that
	 * false reports may follow). */
#ifdef __SANITIZE_ADDRESS__
	lc.share_memory = false;
#else
	lc.share_memory = spec->ns[CTR_NS_USER].mode == CTR_NS_HOST;
#endif
	return lc_run(&lc, launch_stage1, NULL, LAUNCH_TIMEOUT_NS, ret, err);
}

/* What stage 1 needs, forked or in the caller's memory. */
struct stage1_call {
	const struct lc *lc;
	int sock, other; /* the child's end of the sync socket; the caller's */
	_noreturn_ void (*stage1)(struct lc *lc, void *arg);
	void *arg;
};

static int stage1_vm(void *p)
{
	const struct stage1_call *c = p;
	/* A copy of its own: the descriptors and arrays stage 1 and 2 put
	 * in it are not the caller's to close or free. Both live on this
	 * stack, which stays until stage 1 exits. */
	struct lc lc = *c->lc;
	close(c->other);
	lc.sock = c->sock;
	lc_isolate(&lc);
	c->stage1(&lc, c->arg);
	return 127; /* stage 1 ends in _exit */
}

int lc_run(struct lc *lc, _noreturn_ void (*stage1)(struct lc *lc, void *arg), void *arg,
	   long long timeout_ns, struct ctr_process *ret, struct husk_error *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		lc_release(lc);
		return husk_error_errno(err, errno, "socketpair");
	}
	/* Shared memory: the caller (the shim: one thread) sleeps until
	 * stage 2 has exec'd, and no page table is copied, faulted copy on
	 * write or torn down, three times per container with fork (issue
	 * 12). Stage 1 and 2 may then call anything, as after vfork in a
	 * program of one thread, but write only their own copy of lc. */
	struct stage1_call c = {lc, sv[1], sv[0], stage1, arg};
	pid_t s1;
	if (lc->share_memory) {
		s1 = proc_clone_vm(0, INT_MAX, stage1_vm, &c);
		if (s1 < 0)
			errno = -s1;
	} else {
		s1 = fork();
	}
	if (s1 < 0) {
		int r = husk_error_errno(err, errno, "fork");
		close(sv[0]);
		close(sv[1]);
		lc_release(lc);
		return r;
	}
	if (s1 == 0)
		_exit(stage1_vm(&c)); /* forked: the copy of lc is ours anyway */
	close(sv[1]);
	int r = lc_parent_sync(lc, sv[0], s1, now_mono_ns() + timeout_ns, ret, err);
	close(sv[0]);
	lc_release(lc);
	return r;
}
