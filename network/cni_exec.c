/* Running one CNI plugin: posix_spawn without a shell, the CNI_* variables
 * in its environment, the config on stdin, stdout and stderr collected with
 * bounds, and a deadline after which its whole process group is killed. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "common/service.h"
#include "network/network.h"

extern char **environ;

#define CANCEL_POLL_MS 50

static const char default_path[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/* huskd's environment without CNI_* (a stale CNI_NETNS would confuse a
 * plugin), with PATH guaranteed (bridge and portmap run iptables), then
 * the variables of this call. */
static char **plugin_env(const struct net_exec *x)
{
	char **env = xnew(char *, 1);
	bool have_path = false;
	_cleanup_strv_ char **base = svc_child_environ();
	for (char **e = base; *e; e++) {
		if (startswith(*e, "CNI_"))
			continue;
		have_path = have_path || startswith(*e, "PATH=");
		env = strv_append(env, *e);
	}
	if (!have_path) {
		_cleanup_free_ char *p = xasprintf("PATH=%s", default_path);
		env = strv_append(env, p);
	}
	_cleanup_free_ char *path = xstrdup("");
	for (size_t i = 0; x->bin_dirs && x->bin_dirs[i]; i++) {
		char *p = xasprintf("%s%s%s", path, i ? ":" : "", x->bin_dirs[i]);
		free(path);
		path = p;
	}
	char *v;
	v = xasprintf("CNI_COMMAND=%s", x->command);
	env = strv_append(env, v);
	free(v);
	v = xasprintf("CNI_PATH=%s", path);
	env = strv_append(env, v);
	free(v);
	if (x->container_id) {
		v = xasprintf("CNI_CONTAINERID=%s", x->container_id);
		env = strv_append(env, v);
		free(v);
	}
	if (x->container_id || !isempty(x->netns)) {
		v = xasprintf("CNI_NETNS=%s", x->netns ? x->netns : "");
		env = strv_append(env, v);
		free(v);
	}
	if (x->ifname) {
		v = xasprintf("CNI_IFNAME=%s", x->ifname);
		env = strv_append(env, v);
		free(v);
	}
	if (x->args) {
		v = xasprintf("CNI_ARGS=%s", x->args);
		env = strv_append(env, v);
		free(v);
	}
	return env;
}

struct sink {
	char *buf;
	size_t len, max;
	bool overflow;
};

/* Read what is there; false at EOF or error. */
static bool drain(int fd, struct sink *s)
{
	char tmp[16384];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (n == 0)
			return false;
		size_t room = s->max - s->len;
		size_t take = (size_t)n < room ? (size_t)n : room;
		if (take < (size_t)n)
			s->overflow = true;
		if (take) {
			s->buf = xrealloc(s->buf, s->len + take + 1);
			memcpy(s->buf + s->len, tmp, take);
			s->len += take;
			s->buf[s->len] = '\0';
		}
	}
}

/* The last line of stderr with text, bounded, for an error message. */
static char *stderr_tail(const struct sink *s)
{
	if (!s->buf)
		return NULL;
	size_t end = s->len;
	while (end && (s->buf[end - 1] == '\n' || s->buf[end - 1] == ' ' ||
		       s->buf[end - 1] == '\r' || s->buf[end - 1] == '\t'))
		end--;
	if (!end)
		return NULL;
	size_t start = end;
	while (start && s->buf[start - 1] != '\n')
		start--;
	if (end - start > 512)
		start = end - 512;
	return xstrndup(s->buf + start, end - start);
}

/* write() to a pipe whose reader may be gone, without SIGPIPE killing a
 * process that did not ignore it: block it in this thread and swallow the
 * one the write raised. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t len)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w = write(fd, buf, len);
	int e = errno;
	if (w < 0 && e == EPIPE && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return w;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static long long deadline_left_ms(long long deadline_ns)
{
	long long left = deadline_ns - now_mono_ns();
	return left <= 0 ? 0 : (left + 999999) / 1000000; /* rounded up: never early */
}

static void kill_group(pid_t pid)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
}

static const char *plugin_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int spawn(const char *path, char **env, int in_fd, int out_fd, int err_fd, pid_t *ret_pid,
		 struct husk_error *err)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
	/* Nothing of huskd's (sockets, locks, other plugins' pipes) leaks in. */
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	/* huskd blocks its shutdown signals and ignores SIGPIPE; neither may
	 * reach the plugin or the iptables it runs. Its own process group lets
	 * a timeout kill what it started too. */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					    POSIX_SPAWN_SETPGROUP);
	char *const argv[] = {(char *)path, NULL};
	pid_t pid;
	int r = posix_spawn(&pid, path, &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r != 0)
		return husk_error_errno(err, r, "run CNI plugin '%s'", path);
	*ret_pid = pid;
	return 0;
}

int net_plugin_exec(const char *path, const struct net_exec *x, const char *stdin_data,
		    size_t stdin_len, char **ret_out, unsigned *ret_cni_code,
		    struct husk_error *err)
{
	const char *name = plugin_name(path);
	int timeout_ms = x->timeout_ms > 0 ? x->timeout_ms : NET_DEFAULT_TIMEOUT_MS;
	int in[2] = {-1, -1}, out[2] = {-1, -1}, errp[2] = {-1, -1};
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		int e = errno;
		for (int i = 0; i < 2; i++) {
			closep(&in[i]);
			closep(&out[i]);
			closep(&errp[i]);
		}
		return husk_error_errno(err, e, "run CNI plugin '%s': pipe", name);
	}
	_cleanup_close_ int in_w = in[1], out_r = out[0], err_r = errp[0];
	_cleanup_strv_ char **env = plugin_env(x);
	pid_t pid = -1;
	int r = spawn(path, env, in[0], out[1], errp[1], &pid, err);
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	if (r < 0)
		return r;

	fcntl(in_w, F_SETFL, O_NONBLOCK);
	fcntl(out_r, F_SETFL, O_NONBLOCK);
	fcntl(err_r, F_SETFL, O_NONBLOCK);
	struct sink so = {.max = NET_PLUGIN_OUTPUT_MAX}, se = {.max = NET_PLUGIN_STDERR_MAX};
	_cleanup_free_ char *so_buf = NULL, *se_buf = NULL;
	size_t written = 0;
	if (stdin_len == 0)
		close_fd(&in_w);
	long long deadline = now_mono_ns() + (long long)timeout_ms * 1000000;
	bool timed_out = false, cancelled = false;
	while (out_r >= 0 || err_r >= 0) {
		struct pollfd p[3];
		int n = 0, i_in = -1, i_out = -1, i_err = -1;
		if (in_w >= 0)
			p[i_in = n++] = (struct pollfd){.fd = in_w, .events = POLLOUT};
		if (out_r >= 0)
			p[i_out = n++] = (struct pollfd){.fd = out_r, .events = POLLIN};
		if (err_r >= 0)
			p[i_err = n++] = (struct pollfd){.fd = err_r, .events = POLLIN};
		long long left = deadline_left_ms(deadline);
		if (left == 0) {
			timed_out = true;
			break;
		}
		if (husk_cancelled(x->cancel)) {
			cancelled = true;
			break;
		}
		/* Nothing tells us of a cancel: look again at least this often. */
		if (x->cancel && left > CANCEL_POLL_MS)
			left = CANCEL_POLL_MS;
		int pr = poll(p, (nfds_t)n, (int)left);
		if (pr < 0 && errno != EINTR) {
			timed_out = true; /* treat as fatal; kill below */
			break;
		}
		if (pr <= 0)
			continue;
		if (i_in >= 0 && p[i_in].revents) {
			ssize_t w =
			    write_nosigpipe(in_w, stdin_data + written, stdin_len - written);
			if (w > 0)
				written += (size_t)w;
			/* EPIPE: the plugin did not read its config; it will say why. */
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_len)
				close_fd(&in_w);
		}
		if (i_out >= 0 && p[i_out].revents && !drain(out_r, &so))
			close_fd(&out_r);
		if (i_err >= 0 && p[i_err].revents && !drain(err_r, &se))
			close_fd(&err_r);
		if (so.overflow)
			break;
	}
	so_buf = so.buf;
	se_buf = se.buf;

	/* Output is closed; the plugin should be exiting. Wait without reaping
	 * so the group id stays ours while we kill what is left in it (a
	 * plugin that forked and exited would leave children holding on). */
	if (!timed_out && !so.overflow && !cancelled) {
		for (;;) {
			siginfo_t si = {0};
			int w = waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT);
			if (w == 0 && si.si_pid == pid)
				break;
			if (w < 0 && errno != EINTR)
				break;
			if (deadline_left_ms(deadline) == 0) {
				timed_out = true;
				break;
			}
			if (husk_cancelled(x->cancel)) {
				cancelled = true;
				break;
			}
			struct timespec ts = {0, 2 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	kill_group(pid);
	int status = 0;
	pid_t reaped;
	while ((reaped = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (reaped != pid && !timed_out && !cancelled)
		return husk_error_errno(err, errno, "CNI plugin '%s' %s: wait", name, x->command);

	if (ret_cni_code)
		*ret_cni_code = 0;
	if (cancelled)
		return husk_error_set(err, ECANCELED, "CNI plugin '%s' %s: cancelled; killed", name,
				      x->command);
	if (timed_out)
		return husk_error_set(err, ETIMEDOUT,
				      "CNI plugin '%s' %s: no answer within %d ms; killed", name,
				      x->command, timeout_ms);
	if (so.overflow)
		return husk_error_set(err, EFBIG, "CNI plugin '%s' %s: output larger than %u bytes",
				      name, x->command, NET_PLUGIN_OUTPUT_MAX);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		*ret_out = so_buf ? steal_ptr(&so_buf) : xstrdup("");
		return 0;
	}

	/* Failure: prefer the plugin's CNI error document. */
	unsigned code = 0;
	_cleanup_free_ char *msg = NULL;
	_cleanup_error_ struct husk_error perr = HUSK_ERROR_INIT;
	if (so_buf && net_error_parse(so_buf, so.len, &code, &msg, &perr) == 0) {
		if (ret_cni_code)
			*ret_cni_code = code;
		return husk_error_set(err, code == NET_CNI_ERR_TRY_AGAIN ? EAGAIN : EIO,
				      "CNI plugin '%s' %s failed: %s (code %u)", name, x->command,
				      msg, code);
	}
	_cleanup_free_ char *tail = stderr_tail(&se);
	if (!tail && so_buf) {
		struct sink tmp = {.buf = so_buf, .len = so.len};
		tail = stderr_tail(&tmp);
	}
	_cleanup_free_ char *how = NULL;
	if (WIFEXITED(status))
		how = xasprintf("exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		how = xasprintf("killed by signal %d", WTERMSIG(status));
	else
		how = xstrdup("ended abnormally");
	if (tail)
		return husk_error_set(err, EIO, "CNI plugin '%s' %s failed: %s (%s)", name,
				      x->command, tail, how);
	return husk_error_set(err, EIO, "CNI plugin '%s' %s failed: %s", name, x->command, how);
}
