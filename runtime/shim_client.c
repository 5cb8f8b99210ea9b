/* huskd's side of husk-shim: start it detached (two spawned children, no fork), wait for its
 * report, read the files it keeps in its state directory and send it control requests. */
#include "runtime/shim_client.h"

#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/service.h"
#include "runtime/launcher/launcher.h"

#define STATE_FILE_MAX 65536
#define REPLY_MAX 1024
#define REQUEST_TIMEOUT_MS 5000

static char *state_path(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static int read_json(const char *dir, const char *name, yajl_val *ret, struct husk_error *err)
{
	_cleanup_free_ char *path = state_path(dir, name);
	return json_parse_file(path, STATE_FILE_MAX, ret, err);
}

static int read_pidinfo(const char *dir, const char *name, struct ctr_pidinfo *ret,
			struct husk_error *err)
{
	_cleanup_json_ yajl_val v = NULL;
	int r = read_json(dir, name, &v, err);
	if (r < 0)
		return r;
	long long pid = json_get_int(v, "pid", 0);
	yajl_val st = json_get(v, "start_time");
	if (pid <= 0 || !YAJL_IS_NUMBER(st) || !st->u.number.r)
		return husk_error_set(err, EIO, "'%s/%s': no pid or start time", dir, name);
	*ret = (struct ctr_pidinfo){
	    .pid = (pid_t)pid,
	    .start_time = strtoull(st->u.number.r, NULL, 10),
	    .started_at = json_get_int(v, "started_at", 0),
	};
	return 0;
}

int ctr_shim_read_pid(const char *dir, struct ctr_pidinfo *ret, struct husk_error *err)
{
	return read_pidinfo(dir, "pid", ret, err);
}

int ctr_shim_read_shim_pid(const char *dir, struct ctr_pidinfo *ret, struct husk_error *err)
{
	return read_pidinfo(dir, "shim.pid", ret, err);
}

int ctr_shim_read_exit(const char *dir, struct ctr_exit *ret, struct husk_error *err)
{
	_cleanup_json_ yajl_val v = NULL;
	int r = read_json(dir, "exit", &v, err);
	if (r < 0)
		return r;
	yajl_val oom = json_get(v, "oom_killed");
	*ret = (struct ctr_exit){
	    .exit_code = (int)json_get_int(v, "exit_code", 255),
	    .signal = (int)json_get_int(v, "signal", 0),
	    .oom_killed = YAJL_IS_TRUE(oom),
	    .exited_at = json_get_int(v, "exited_at", 0),
	};
	return 0;
}

int ctr_shim_read_error(const char *dir, int *ret_code, char **ret_msg, struct husk_error *err)
{
	_cleanup_json_ yajl_val v = NULL;
	int r = read_json(dir, "error", &v, err);
	if (r < 0)
		return r;
	const char *m = json_get_string(v, "message");
	*ret_code = (int)json_get_int(v, "code", EIO);
	*ret_msg = xstrdup(m ? m : "unknown error");
	return 0;
}

/* Field 3 (state) and 22 (start time) of /proc/PID/stat. */
int ctr_proc_kill(const struct ctr_pidinfo *p, int sig, struct husk_error *err)
{
	_cleanup_close_ int pfd = pidfd_open(p->pid, 0);
	if (pfd < 0)
		return husk_error_errno(err, errno == EINVAL ? ESRCH : errno, "process %d",
					(int)p->pid);
	/* The pidfd pins the process; if the start time matches now, it is
	 * the one we mean and stays so. */
	if (!proc_alive(p->pid, p->start_time))
		return husk_error_set(err, ESRCH, "process %d is not running", (int)p->pid);
	if (pidfd_send_signal(pfd, sig, NULL, 0) < 0)
		return husk_error_errno(err, errno, "signal %d to process %d", sig, (int)p->pid);
	return 0;
}

static int shim_connect(const char *dir, int *ret_fd, struct husk_error *err)
{
	/* Reach the socket through an fd of its directory: state paths can
	 * be longer than sun_path. */
	_cleanup_close_ int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return husk_error_errno(err, errno == ENOENT ? ESRCH : errno, "shim state '%s'",
					dir);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "/proc/self/fd/%d/%s", dfd, CTR_SHIM_CONTROL);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return husk_error_errno(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED)
			return husk_error_set(err, ESRCH, "shim of '%s' is not running", dir);
		return husk_error_errno(err, errno, "connect to the shim of '%s'", dir);
	}
	struct timeval tv = {REQUEST_TIMEOUT_MS / 1000, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	*ret_fd = steal_fd(&fd);
	return 0;
}

int ctr_shim_request(const char *dir, const char *request, char **ret_reply, struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	int r = shim_connect(dir, &fd, err);
	if (r < 0)
		return r;
	if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0)
		return husk_error_errno(err, errno == EPIPE ? ESRCH : errno, "send to the shim");
	char buf[REPLY_MAX + 1];
	ssize_t n;
	do
		n = recv(fd, buf, REPLY_MAX, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return husk_error_errno(err, errno == EAGAIN ? ETIMEDOUT : errno,
					"no answer from the shim of '%s'", dir);
	if (n == 0)
		return husk_error_set(err, ESRCH, "shim of '%s' closed the connection", dir);
	buf[n] = '\0';
	if (startswith(buf, "ok")) {
		const char *rest = buf + 2;
		while (*rest == ' ')
			rest++;
		if (ret_reply)
			*ret_reply = xstrdup(rest);
		return 0;
	}
	int code = EIO, off = 0;
	if (sscanf(buf, "error %d %n", &code, &off) >= 1 && off > 0)
		return husk_error_sys(err, code > 0 ? code : EIO, "%s", buf + off);
	return husk_error_set(err, EIO, "bad answer from the shim: '%s'", buf);
}

int ctr_shim_attach(const char *dir, int *ret_fd, bool *ret_tty, bool *ret_stdin,
		    struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	int r = shim_connect(dir, &fd, err);
	if (r < 0)
		return r;
	if (send(fd, "attach", 6, MSG_NOSIGNAL) < 0)
		return husk_error_errno(err, errno == EPIPE ? ESRCH : errno, "send to the shim");
	char buf[REPLY_MAX + 1];
	ssize_t n;
	do
		n = recv(fd, buf, REPLY_MAX, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return husk_error_errno(err, errno == EAGAIN ? ETIMEDOUT : errno,
					"no answer from the shim of '%s'", dir);
	if (n == 0)
		return husk_error_set(err, ESRCH, "shim of '%s' closed the connection", dir);
	buf[n] = '\0';
	int tty, in, code = EIO, off = 0;
	if (sscanf(buf, "ok %d %d", &tty, &in) == 2) {
		/* From here on the connection streams: no timeouts. */
		struct timeval tv = {0, 0};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		*ret_tty = tty;
		*ret_stdin = in;
		*ret_fd = steal_fd(&fd);
		return 0;
	}
	if (sscanf(buf, "error %d %n", &code, &off) >= 1 && off > 0)
		return husk_error_sys(err, code > 0 ? code : EIO, "attach: %s", buf + off);
	return husk_error_set(err, EIO, "attach: bad answer from the shim: '%s'", buf);
}

int ctr_shim_signal(const char *dir, int sig, struct husk_error *err)
{
	_cleanup_free_ char *req = xasprintf("signal %d", sig);
	struct husk_error e = HUSK_ERROR_INIT;
	int r = ctr_shim_request(dir, req, NULL, &e);
	if (r == 0)
		return 0;
	if (e.code != ESRCH)
		return husk_error_move(err, &e);
	husk_error_clear(&e);
	/* The shim is gone but the container may not be. */
	struct ctr_exit ex;
	if (ctr_shim_read_exit(dir, &ex, NULL) == 0)
		return husk_error_set(err, ESRCH, "container has exited");
	struct ctr_pidinfo p;
	if (ctr_shim_read_pid(dir, &p, NULL) < 0)
		return husk_error_set(err, ESRCH, "container is not running");
	return ctr_proc_kill(&p, sig, err);
}

int ctr_shim_reopen_log(const char *dir, struct husk_error *err)
{
	return ctr_shim_request(dir, "reopen", NULL, err);
}

int ctr_shim_resize(const char *dir, unsigned rows, unsigned cols, struct husk_error *err)
{
	_cleanup_free_ char *req = xasprintf("resize %u %u", rows, cols);
	return ctr_shim_request(dir, req, NULL, err);
}

int ctr_shim_wait_exit(const char *dir, long long timeout_ns, struct ctr_exit *ret,
		       struct husk_error *err)
{
	long long deadline = now_mono_ns() + timeout_ns;
	long long next_check = 0;
	for (;;) {
		struct husk_error e = HUSK_ERROR_INIT;
		int r = ctr_shim_read_exit(dir, ret, &e);
		if (r == 0)
			return 0;
		if (e.code != ENOENT)
			return husk_error_move(err, &e);
		husk_error_clear(&e);
		long long now = now_mono_ns();
		if (now >= next_check) {
			/* A shim that died (SIGKILL) never writes the file. */
			struct ctr_pidinfo sp;
			if (ctr_shim_read_shim_pid(dir, &sp, NULL) == 0 &&
			    !proc_alive(sp.pid, sp.start_time) &&
			    ctr_shim_read_exit(dir, ret, NULL) < 0)
				return husk_error_set(
				    err, EIO, "husk-shim of '%s' died without recording the exit",
				    dir);
			next_check = now + 100000000LL;
		}
		if (now >= deadline)
			return husk_error_set(err, ETIMEDOUT, "container did not exit in time");
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
}

/* ---- start ---- */

static void kill_by_file(const char *dir, const char *name, bool group)
{
	struct ctr_pidinfo p;
	if (read_pidinfo(dir, name, &p, NULL) < 0 || !proc_alive(p.pid, p.start_time))
		return;
	if (group)
		kill(-p.pid, SIGKILL);
	ctr_proc_kill(&p, SIGKILL, NULL);
}

static void child_write_error(int fd, const char *what, int e)
{
	/* Async-signal-safe: no stdio, no malloc. */
	char num[16];
	int i = (int)sizeof(num);
	num[--i] = '\0';
	do
		num[--i] = (char)('0' + e % 10);
	while ((e /= 10) && i > 0);
	ssize_t r _unused_ = write(fd, "error ", 6);
	r = write(fd, num + i, strlen(num + i));
	r = write(fd, " ", 1);
	r = write(fd, what, strlen(what));
}

/* What the shim's two spawned children need (ctr_shim_start). */
struct shim_exec {
	int devnull, wr;
	const char *path;
	char **argv, **envp;
	const char *what;
};

/* The grandchild: becomes husk-shim, fd 3 its report pipe. */
static int shim_exec(void *p)
{
	const struct shim_exec *x = p;
	dup2(x->devnull, 0);
	dup2(x->devnull, 1);
	dup2(x->devnull, 2);
	dup2(x->wr, 3);
	close_range(4, ~0U, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execve(x->path, x->argv, x->envp);
	child_write_error(3, x->what, errno);
	return 127;
}

/* The child: a session of its own, then the shim in it, then gone, so that
 * the shim is nobody's child in huskd (init or the subreaper reaps it). Both
 * share huskd's memory until they exec or exit (proc_clone_vm). */
static int shim_session(void *p)
{
	setsid();
	const struct shim_exec *x = p;
	return proc_clone_vm(0, x->devnull > x->wr ? x->devnull : x->wr, shim_exec, p) < 0 ? 1 : 0;
}

int ctr_shim_start(const char *shim_path, const char *spec_path, const char *state_dir,
		   long long timeout_ns, struct ctr_pidinfo *ret, struct husk_error *err)
{
	int r = fs_mkdir_p(state_dir, 0700, err);
	if (r < 0)
		return husk_error_prefix(err, "start shim");
	static const char *const stale[] = {"pid", "exit", "error", "shim.pid"};
	for (size_t i = 0; i < ARRAY_SIZE(stale); i++) {
		_cleanup_free_ char *p = state_path(state_dir, stale[i]);
		unlink(p);
	}
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return husk_error_errno(err, errno, "start shim: pipe");
	/* Keep our fds off 0-3, which the child rearranges. */
	_cleanup_close_ int rd = fcntl(p[0], F_DUPFD_CLOEXEC, 10);
	_cleanup_close_ int wr = fcntl(p[1], F_DUPFD_CLOEXEC, 10);
	close(p[0]);
	close(p[1]);
	_cleanup_close_ int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (rd < 0 || wr < 0 || devnull < 0)
		return husk_error_errno(err, errno, "start shim: fds");
	int dn = fcntl(devnull, F_DUPFD_CLOEXEC, 10);
	close(devnull);
	devnull = dn;
	_cleanup_free_ char *what = xasprintf("exec '%s' failed", shim_path);
	char *argv[] = {(char *)"husk-shim", (char *)spec_path, (char *)"3", NULL};
	/* The shim outlives huskd: it must not speak for huskd to systemd. */
	_cleanup_strv_ char **envp = svc_child_environ();

	struct shim_exec x = {.devnull = devnull,
			      .wr = wr,
			      .path = shim_path,
			      .argv = argv,
			      .envp = envp,
			      .what = what};
	pid_t c = proc_clone_vm(0, devnull > wr ? devnull : wr, shim_session, &x);
	if (c < 0)
		return husk_error_errno(err, (int)-c, "start shim: clone");
	close(wr);
	wr = -1;
	int st;
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;

	char buf[2048];
	size_t len = 0;
	long long deadline = now_mono_ns() + timeout_ns;
	bool timed_out = false;
	for (;;) {
		long long left = deadline - now_mono_ns();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		struct pollfd pf = {rd, POLLIN, 0};
		int pr = poll(&pf, 1, (int)(left / 1000000) + 1);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return husk_error_errno(err, errno, "start shim: poll");
		if (pr == 0)
			continue;
		ssize_t n = read(rd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = '\0';
	if (timed_out) {
		kill_by_file(state_dir, "shim.pid", true);
		kill_by_file(state_dir, "pid", false);
		return husk_error_set(err, ETIMEDOUT, "start shim: no report within %lld ms",
				      timeout_ns / 1000000);
	}
	if (startswith(buf, "ok ")) {
		r = ctr_shim_read_pid(state_dir, ret, err);
		return r < 0 ? husk_error_prefix(err, "start shim") : 0;
	}
	int code = EIO, off = 0;
	if (sscanf(buf, "error %d %n", &code, &off) >= 1 && off > 0)
		return husk_error_sys(err, code > 0 ? code : EIO, "%s", buf + off);
	/* The shim died before it could report; it may have left the file. */
	_cleanup_free_ char *msg = NULL;
	if (ctr_shim_read_error(state_dir, &code, &msg, NULL) == 0)
		return husk_error_sys(err, code, "%s", msg);
	return husk_error_set(err, EIO, "start shim: exited without a report (see '%s/shim.log')",
			      state_dir);
}
