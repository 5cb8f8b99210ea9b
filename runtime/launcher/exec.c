/* Running another process inside a running container (ExecSync, Exec): the
 * caller forks stage 1, which joins the container's cgroups and namespaces
 * and clones the process as the caller's child; that one takes the
 * container's user, capabilities, seccomp and no_new_privs and execs. */
#include <errno.h>
#include <fcntl.h>
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
#include <time.h>
#include <unistd.h>

#include "common/proc.h"
#include "runtime/launcher/internal.h"

#define EXEC_SETUP_TIMEOUT_NS (60LL * 1000000000LL)
/* After the process ends, how long to keep reading output that a
 * background child may still hold open. */
#define EXEC_DRAIN_NS (200LL * 1000000LL)

static const struct {
	const char *name;
	int flag;
} exec_ns[] = {
    /* User first: the others may belong to it. Mount last. */
    {"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
    {"net", CLONE_NEWNET},   {"pid", CLONE_NEWPID}, {"cgroup", CLONE_NEWCGROUP},
    {"mnt", CLONE_NEWNS},
};

static bool same_ns(int fd, const char *name)
{
	char path[64];
	struct stat a, b;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", name);
	return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

static _noreturn_ void exec_stage2(struct lc *lc)
{
	struct husk_error err = HUSK_ERROR_INIT;
	/* CLONE_PARENT made us the child of the huskd thread that started the
	 * exec: if huskd dies (even by SIGKILL), so do we, instead of living
	 * on unattended in the container. */
	lc->die_with_parent = true;
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (setsid() < 0) {
		husk_error_errno(&err, errno, "setsid");
		lc_fail(lc, &err);
	}
	if (lc->tty ? lc_setup_tty(lc, false, &err) < 0 : lc_setup_stdio(lc, &err) < 0)
		lc_fail(lc, &err);
	lc_finish_and_exec(lc, &err);
	lc_fail(lc, &err);
}

static _noreturn_ void exec_stage1(struct lc *lc, void *arg)
{
	pid_t target = *(pid_t *)arg;
	struct husk_error err = HUSK_ERROR_INIT;
	int fds[ARRAY_SIZE(exec_ns)];
	unsigned long long start1 = 0, start2 = 0;
	lc_reset_signals();
	/* Compiled here, not in the caller (huskd), to keep libseccomp's
	 * working memory out of it; read before we enter the container. */
	if (lc->need_compile && ctr_spec_seccomp_compile(lc->spec, &lc->bpf, &err) < 0)
		lc_fail(lc, &err);
	if (proc_start_time(target, &start1, &err) < 0) {
		husk_error_set(&err, ESRCH, "container process %d is gone", (int)target);
		lc_fail(lc, &err);
	}
	for (size_t i = 0; i < ARRAY_SIZE(exec_ns); i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)target, exec_ns[i].name);
		fds[i] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0) {
			husk_error_errno(&err, errno == ENOENT ? ESRCH : errno, "open '%s'", path);
			lc_fail(lc, &err);
		}
	}
	/* The fds are the container's only if its pid still names the same
	 * process. */
	if (proc_start_time(target, &start2, &err) < 0 || start1 != start2) {
		husk_error_set(&err, ESRCH, "container process %d is gone", (int)target);
		lc_fail(lc, &err);
	}
	if (lc_join_cgroups(lc->spec->cgroup_procs, &err) < 0)
		lc_fail(lc, &err);
	for (size_t i = 0; i < ARRAY_SIZE(exec_ns); i++) {
		if (same_ns(fds[i], exec_ns[i].name))
			continue;
		if (setns(fds[i], exec_ns[i].flag) < 0) {
			husk_error_errno(&err, errno, "join the container's %s namespace",
					 exec_ns[i].name);
			lc_fail(lc, &err);
		}
	}
	/* The process that enters the container keeps no namespace fd (one
	 * may be the host's user namespace). */
	for (size_t i = 0; i < ARRAY_SIZE(exec_ns); i++)
		close(fds[i]);
	pid_t pid = lc_clone_parent();
	if (pid < 0) {
		husk_error_errno(&err, errno, "clone the exec process");
		lc_fail(lc, &err);
	}
	if (pid == 0)
		exec_stage2(lc);
	lc_send(lc->sock, LC_MSG_PID, 0, pid, NULL, -1);
	_exit(0);
}

int ctr_exec_spawn(const struct ctr_exec_opts *o, const struct ctr_stdio *stdio,
		   struct ctr_process *ret, struct husk_error *err)
{
	if (strv_length(o->args) == 0 || isempty(o->args[0]))
		return husk_error_set(err, EINVAL, "exec: no command");
	if (strv_length(o->args) > CTR_SPEC_MAX_ARGS)
		return husk_error_set(err, EINVAL, "exec: more than %d arguments",
				      CTR_SPEC_MAX_ARGS);
	if (o->pid <= 0)
		return husk_error_set(err, EINVAL, "exec: no container process");
	const char *cwd = o->cwd ? o->cwd : o->spec->cwd;
	struct lc lc;
	int r = lc_prepare(&lc, o->spec, o->args, o->env ? o->env : o->spec->env, cwd ? cwd : "/",
			   o->tty, stdio, err);
	if (r < 0) {
		lc_release(&lc);
		return r;
	}
	return lc_run(&lc, exec_stage1, &(pid_t){o->pid}, EXEC_SETUP_TIMEOUT_NS, ret, err);
}

void ctr_exec_kill(const struct ctr_process *p)
{
	/* The target first: a runtime killed first would leave it running.
	 * Its pid is stable while the runtime, its parent, is not reaped. */
	if (p->target > 0 && p->target_start && proc_alive(p->target, p->target_start)) {
		kill(-p->target, SIGKILL);
		kill(p->target, SIGKILL);
		/* Give its parent (an OCI runtime's exec) a moment to reap it:
		 * orphaned, it would go to the container's PID 1, which need
		 * not reap anything, and stay there as a zombie. The parent
		 * stays unreaped for the caller: its pidfd only says it exited. */
		if (p->pid > 0 && p->pid != p->target) {
			_cleanup_close_ int pfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
			if (pfd >= 0)
				poll(&(struct pollfd){.fd = pfd, .events = POLLIN}, 1, 2000);
		}
	}
	if (p->pid > 0) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
	}
}

void ctr_exec_result_free(struct ctr_exec_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err_out);
	r->out = r->err_out = NULL;
}

struct capture {
	int fd;
	char *buf;
	size_t len, cap, max;
	bool truncated;
};

/* Read what is there; false at EOF or on error. */
static bool capture_read(struct capture *c)
{
	char tmp[16384];
	/* Bounded, so that a fast writer cannot keep us from the clock. */
	for (int round = 0; round < 64; round++) {
		ssize_t n = read(c->fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return true;
		if (n <= 0)
			return false;
		size_t take = (size_t)n;
		if (c->len + take > c->max) {
			take = c->max - c->len;
			c->truncated = true;
		}
		if (c->len + take + 1 > c->cap) {
			size_t nc = c->cap ? c->cap : 4096;
			while (nc < c->len + take + 1)
				nc *= 2;
			c->buf = xrealloc(c->buf, nc);
			c->cap = nc;
		}
		memcpy(c->buf + c->len, tmp, take);
		c->len += take;
		if ((size_t)n < sizeof(tmp))
			return true;
	}
	return true;
}

static char *cmdline(char *const *args)
{
	_cleanup_free_ char *s = xstrdup("");
	for (size_t i = 0; args[i] && i < 8; i++) {
		char *n = xasprintf("%s%s%s", s, i ? " " : "", args[i]);
		free(s);
		s = n;
	}
	if (strlen(s) > 200)
		strcpy(s + 197, "...");
	return steal_ptr(&s);
}

int ctr_exec_sync(const struct ctr_exec_opts *o, long long timeout_ns, size_t max_output,
		  struct ctr_exec_result *ret, struct husk_error *err)
{
	if (o->tty)
		return husk_error_set(err, EINVAL, "exec: ExecSync has no terminal");
	if (max_output == 0 || max_output > CTR_EXEC_MAX_OUTPUT)
		max_output = CTR_EXEC_MAX_OUTPUT;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1};
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		int e = errno;
		if (outp[0] >= 0) {
			close(outp[0]);
			close(outp[1]);
		}
		return husk_error_errno(err, e, "exec: pipe");
	}
	struct capture cap[2] = {{.fd = outp[0], .max = max_output},
				 {.fd = errp[0], .max = max_output}};
	struct ctr_stdio io = {-1, outp[1], errp[1]};
	struct ctr_process p;
	long long start = now_mono_ns();
	int r = o->spawn ? o->spawn(o, &io, &p, err) : ctr_exec_spawn(o, &io, &p, err);
	close(outp[1]);
	close(errp[1]);
	if (r < 0) {
		close(outp[0]);
		close(errp[0]);
		return r;
	}
	fcntl(outp[0], F_SETFL, O_NONBLOCK);
	fcntl(errp[0], F_SETFL, O_NONBLOCK);
	/* The exit wakes the poll below through the process's pidfd; without
	 * one (an old kernel), a short timeout notices it. */
	_cleanup_close_ int pidfd = (int)syscall(SYS_pidfd_open, p.pid, 0);

	long long deadline = timeout_ns > 0 ? start + timeout_ns : 0;
	long long drain_until = 0;
	bool open_[2] = {true, true}, exited = false, timed_out = false;
	int status = 0;
	while (open_[0] || open_[1] || !exited) {
		if (!exited) {
			pid_t w = waitpid(p.pid, &status, WNOHANG);
			/* ECHILD: someone else reaped it (a waitpid(-1) in the
			 * caller); its status is lost. */
			if (w < 0 && errno == ECHILD)
				status = 255 << 8;
			if (w == p.pid || (w < 0 && errno == ECHILD)) {
				exited = true;
				drain_until = now_mono_ns() + EXEC_DRAIN_NS;
			}
		}
		long long now = now_mono_ns();
		if (exited && !(open_[0] || open_[1]))
			break;
		if (exited && now >= drain_until)
			break;
		if (!exited && deadline && now >= deadline) {
			/* Kill the whole session the process leads. */
			ctr_exec_kill(&p);
			timed_out = true;
			while (waitpid(p.pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		/* The pipes may stay open in a background child after the exit:
		 * the exit itself must wake us. */
		int wait_ms = exited	   ? (int)((drain_until - now) / 1000000) + 1
			      : pidfd >= 0 ? -1
					   : 50;
		if (deadline && !exited && (wait_ms < 0 || (deadline - now) / 1000000 < wait_ms))
			wait_ms = (int)((deadline - now) / 1000000) + 1;
		struct pollfd pf[3];
		nfds_t n = 0;
		int idx[3];
		for (int i = 0; i < 2; i++)
			if (open_[i]) {
				pf[n] = (struct pollfd){cap[i].fd, POLLIN, 0};
				idx[n++] = i;
			}
		if (!exited && pidfd >= 0) {
			pf[n] = (struct pollfd){pidfd, POLLIN, 0};
			idx[n++] = 2;
		}
		int pr = poll(pf, n, wait_ms);
		if (pr < 0 && errno != EINTR)
			break;
		for (nfds_t k = 0; pr > 0 && k < n; k++)
			if (idx[k] < 2 && pf[k].revents && !capture_read(&cap[idx[k]]))
				open_[idx[k]] = false;
	}
	close(outp[0]);
	close(errp[0]);
	if (timed_out) {
		free(cap[0].buf);
		free(cap[1].buf);
		_cleanup_free_ char *cmd = cmdline(o->args);
		long long s = timeout_ns / 1000000000LL, ms = (timeout_ns / 1000000) % 1000;
		if (ms)
			return husk_error_set(
			    err, ETIMEDOUT, "exec '%s': timed out after %lld.%03llds", cmd, s, ms);
		return husk_error_set(err, ETIMEDOUT, "exec '%s': timed out after %llds", cmd, s);
	}
	if (!exited)
		while (waitpid(p.pid, &status, 0) < 0 && errno == EINTR)
			;
	*ret = (struct ctr_exec_result){
	    .exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
	    .out = cap[0].buf ? cap[0].buf : xstrdup(""),
	    .err_out = cap[1].buf ? cap[1].buf : xstrdup(""),
	    .out_len = cap[0].len,
	    .err_len = cap[1].len,
	    .out_truncated = cap[0].truncated,
	    .err_truncated = cap[1].truncated,
	};
	ret->out[ret->out_len] = '\0';
	ret->err_out[ret->err_len] = '\0';
	return 0;
}
