/* The runtime's side of streaming: a process started in a container with
 * its stdio on fds the caller streams (Exec), a connection to a
 * container's stdio through its shim (Attach), and a TCP connection made
 * inside a pod's network namespace (PortForward). */
#include <errno.h>
#include <fcntl.h>
#include <linux/major.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>

#include "common/proc.h"

#include "runtime/launcher/launcher.h"
#include "runtime/oci.h"
#include "runtime/runtime-internal.h"
#include "runtime/shim_client.h"

static int running_ctr(struct rt *rt, const char *ref, const char *what, struct ctr_record **ret,
		       struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (rt_ctr_get(rt, ref, &rec, err) < 0)
		return -err->code;
	if (rec->state != CTR_STATE_RUNNING)
		return husk_error_set(err, EBUSY, "%s '%s': container is %s, not RUNNING", what,
				      rec->id, ctr_state_name(rec->state));
	*ret = steal_ptr(&rec);
	return 0;
}

/* ---- exec ---- */

int rt_ctr_exec_start(struct rt *rt, const char *ref, char *const *cmd, bool tty, bool in, bool out,
		      bool err_out, unsigned rows, unsigned cols, struct rt_exec_proc *ret,
		      struct husk_error *err)
{
	if (!cmd || !cmd[0] || !*cmd[0])
		return husk_error_set(err, EINVAL, "exec: cmd is empty");
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (running_ctr(rt, ref, "exec in container", &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = xasprintf("%s/%s", rt->containers_dir, rec->id);
	_cleanup_(ctr_spec_freep) struct ctr_spec *spec = NULL;
	if (ctr_spec_load(dir, &spec, err) < 0)
		return -err->code;

	/* Our ends and the child's, in that order. */
	int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
	int r = 0;
	if (!tty && ((in && pipe2(pin, O_CLOEXEC) < 0) || (out && pipe2(pout, O_CLOEXEC) < 0) ||
		     (err_out && pipe2(perr, O_CLOEXEC) < 0))) {
		r = husk_error_errno(err, errno, "exec: pipe");
		goto fail;
	}
	struct ctr_stdio io = {pin[0], pout[1], perr[1]};
	struct ctr_exec_opts o = {.spec = spec,
				  .pid = rec->pid,
				  .args = (char **)cmd,
				  .tty = tty,
				  .rows = rows,
				  .cols = cols};
	struct ctr_process p;
	r = spec->oci_path ? ctr_oci_exec_spawn(&o, &io, &p, err)
			   : ctr_exec_spawn(&o, &io, &p, err);
	closep(&pin[0]);
	closep(&pout[1]);
	closep(&perr[1]);
	if (r < 0)
		goto fail;
	struct rt_exec_proc x = RT_EXEC_PROC_INIT;
	x.pid = p.pid;
	x.target = p.target;
	x.target_start = p.target_start;
	x.pidfd = pidfd_open(p.pid, 0);
	if (x.pidfd < 0) {
		r = husk_error_errno(err, errno, "exec: pidfd of process %d", (int)p.pid);
		x.pty = p.pty_master;
		rt_exec_proc_release(&x);
		goto fail;
	}
	if (tty) {
		x.pty = p.pty_master;
		/* An OCI runtime had the size before it ran (consoleSize). */
		if (!spec->oci_path)
			rt_exec_proc_resize(&x, rows, cols, NULL);
		x.out = fcntl(x.pty, F_DUPFD_CLOEXEC, 3);
		x.in = in ? fcntl(x.pty, F_DUPFD_CLOEXEC, 3) : -1;
		fcntl(x.pty, F_SETFL, O_NONBLOCK);
	} else {
		x.in = steal_fd(&pin[1]);
		x.out = steal_fd(&pout[0]);
		x.err = steal_fd(&perr[0]);
		int fds[] = {x.in, x.out, x.err};
		for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
			if (fds[i] >= 0)
				fcntl(fds[i], F_SETFL, O_NONBLOCK);
	}
	*ret = x;
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		closep(&pin[i]);
		closep(&pout[i]);
		closep(&perr[i]);
	}
	return r;
}

bool rt_exec_proc_reap(struct rt_exec_proc *p, bool block)
{
	if (p->reaped)
		return true;
	if (p->pid <= 0)
		return false;
	int st;
	pid_t w;
	do
		w = waitpid(p->pid, &st, block ? 0 : WNOHANG);
	while (w < 0 && errno == EINTR);
	if (w == 0)
		return false;
	if (w < 0) {
		/* ECHILD: reaped elsewhere, the status is lost. */
		st = 255 << 8;
	}
	p->reaped = true;
	p->exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return true;
}

/* An OCI runtime's exec relays between our pty and one it made in the
 * container, and passes a new size on from its SIGWINCH handler, after
 * input its relay may already have passed: a shell could read a command
 * written after a resize before the size (test_exec_tty_resize). Size the
 * container's terminal, the process's stdin, too, before any later input.
 * The process may be hostile: its fd 0 is taken through a pidfd of the
 * process that started at target_start, never through a path, and only a
 * pty's slave is touched. */
static void resize_target_tty(const struct rt_exec_proc *p, unsigned rows, unsigned cols)
{
	/* The pidfd pins the process: alive with its start time, it is ours. */
	_cleanup_close_ int pidfd = pidfd_open(p->target, 0);
	if (pidfd < 0 || !proc_alive(p->target, p->target_start))
		return;
	_cleanup_close_ int fd = pidfd_getfd(pidfd, STDIN_FILENO, 0);
	/* The inode's cached type: a FUSE server the container runs is never
	 * asked (it could hold this thread), and a device node's file is the
	 * driver's whatever file system it is on. */
	struct statx stx;
	if (fd < 0 || statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_TYPE, &stx) < 0 ||
	    !S_ISCHR(stx.stx_mode) || stx.stx_rdev_major < UNIX98_PTY_SLAVE_MAJOR ||
	    stx.stx_rdev_major >= UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT)
		return;
	tty_set_size(fd, rows, cols);
}

int rt_exec_proc_resize(struct rt_exec_proc *p, unsigned rows, unsigned cols,
			struct husk_error *err)
{
	if (p->pty < 0)
		return husk_error_set(err, EINVAL, "resize: the process has no terminal");
	int r = tty_set_size(p->pty, rows, cols);
	if (r < 0)
		return husk_error_errno(err, -r, "resize");
	if (p->target > 0 && !p->reaped)
		resize_target_tty(p, rows, cols);
	return 0;
}

void rt_exec_proc_close_stdin(struct rt_exec_proc *p)
{
	/* A terminal has no end of input short of hanging it up. */
	if (p->pty < 0)
		closep(&p->in);
}

void rt_exec_proc_release(struct rt_exec_proc *p)
{
	if (p->pid > 0 && !p->reaped) {
		/* The process in the container first (an OCI runtime's exec
		 * stands between): its runtime, our child, is not reaped yet. */
		struct ctr_process cp = {
		    .pid = 0, .target = p->target, .target_start = p->target_start};
		ctr_exec_kill(&cp);
		/* The process leads a session of its own: kill all of it. The
		 * pidfd names it even if it was reaped meanwhile. */
		kill(-p->pid, SIGKILL);
		if (p->pidfd >= 0)
			pidfd_send_signal(p->pidfd, SIGKILL, NULL, 0);
		rt_exec_proc_reap(p, true);
	}
	closep(&p->pidfd);
	closep(&p->in);
	closep(&p->out);
	closep(&p->err);
	closep(&p->pty);
}

/* ---- attach ---- */

int rt_ctr_attach(struct rt *rt, const char *ref, int *ret_fd, bool *ret_tty, bool *ret_stdin,
		  bool *ret_stdin_once, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (running_ctr(rt, ref, "attach to container", &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = xasprintf("%s/%s", rt->containers_dir, rec->id);
	_cleanup_(ctr_spec_freep) struct ctr_spec *spec = NULL;
	if (ctr_spec_load(dir, &spec, err) < 0)
		return -err->code;
	if (ctr_shim_attach(dir, ret_fd, ret_tty, ret_stdin, err) < 0)
		return husk_error_prefix(err, "attach to container '%s'", rec->id);
	*ret_stdin_once = spec->stdin_once;
	return 0;
}

/* ---- port forward ---- */

struct connect_job {
	const char *netns; /* NULL: the host's */
	int port, timeout_ms;
	int fd;
	struct husk_error err;
};

static int connect_here(struct connect_job *j)
{
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return husk_error_errno(&j->err, errno, "socket");
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)j->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
		return husk_error_errno(&j->err, errno, "connect to 127.0.0.1:%d", j->port);
	struct pollfd pf = {fd, POLLOUT, 0};
	int pr;
	do
		pr = poll(&pf, 1, j->timeout_ms);
	while (pr < 0 && errno == EINTR);
	if (pr == 0)
		return husk_error_set(&j->err, ETIMEDOUT, "connect to 127.0.0.1:%d: timed out",
				      j->port);
	int e = 0;
	socklen_t el = sizeof(e);
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
	if (e)
		return husk_error_errno(&j->err, e, "connect to 127.0.0.1:%d", j->port);
	j->fd = steal_fd(&fd);
	return 0;
}

/* The network namespace is per thread: this thread enters the pod's,
 * connects and ends, and the socket stays in the namespace it was made in. */
static void *connect_thread(void *arg)
{
	struct connect_job *j = arg;
	if (j->netns) {
		_cleanup_close_ int ns = open(j->netns, O_RDONLY | O_CLOEXEC);
		if (ns < 0) {
			husk_error_errno(&j->err, errno, "open network namespace '%s'", j->netns);
			return NULL;
		}
		if (setns(ns, CLONE_NEWNET) < 0) {
			husk_error_errno(&j->err, errno, "join network namespace '%s'", j->netns);
			return NULL;
		}
	}
	connect_here(j);
	return NULL;
}

int rt_pod_port_connect(struct rt *rt, const char *ref, int port, int timeout_ms, int *ret_fd,
			struct husk_error *err)
{
	if (port <= 0 || port > 65535)
		return husk_error_set(err, EINVAL, "port forward: bad port %d", port);
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (rt_pod_get(rt, ref, &pod, err) < 0)
		return -err->code;
	if (pod->state != POD_STATE_READY)
		return husk_error_set(err, EBUSY,
				      "port forward to pod sandbox '%s': it is not ready", pod->id);
	struct connect_job j = {.netns = pod->sandbox.net_ns,
				.port = port,
				.timeout_ms = timeout_ms > 0 ? timeout_ms : 10000,
				.fd = -1,
				.err = HUSK_ERROR_INIT};
	pthread_t t;
	int r = pthread_create(&t, NULL, connect_thread, &j);
	if (r != 0)
		return husk_error_errno(err, r, "port forward: thread");
	pthread_join(t, NULL);
	if (j.fd < 0) {
		if (!j.err.code)
			husk_error_set(&j.err, EIO, "connect to 127.0.0.1:%d failed", port);
		return husk_error_move(err, &j.err);
	}
	*ret_fd = j.fd;
	return 0;
}
