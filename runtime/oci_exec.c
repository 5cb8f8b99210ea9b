/* What huskd asks of the OCI runtime that runs a container, besides what
 * husk-shim does: `<rt> exec` in the foreground for ExecSync and Exec, and
 * `<rt> update` for UpdateContainerResources (see runtime/oci.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/proc.h"
#include "runtime/oci.h"

#define EXEC_SETUP_TIMEOUT_NS (60LL * 1000000000LL)
#define RT_LOG_MAX (1 << 20)
#define RT_MSG_MAX 512
#define RT_INPUT_MAX (1 << 20)

/* A private directory for one call's files (process.json, pid file, log),
 * removed with everything in it. */
static void exec_dir_freep(char **dir)
{
	if (!*dir)
		return;
	fs_rm_rf(*dir, NULL);
	free(*dir);
	*dir = NULL;
}

/* The runtime's last words from its --log file: the msg="..." of its last
 * line (logrus text), or the line itself. */
static char *rt_message(const char *log)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (fs_read_file(log, RT_LOG_MAX, &text, &len, NULL) < 0 || len == 0)
		return xstrdup("no message");
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	char *nl = strrchr(text, '\n');
	const char *line = nl ? nl + 1 : text;
	const char *m = startswith(line, "msg=\"") ? line : strstr(line, " msg=\"");
	if (!m)
		return xasprintf("%.*s", RT_MSG_MAX, line);
	m = strchr(m, '"') + 1;
	char *out = xmalloc(RT_MSG_MAX + 1);
	size_t n = 0;
	for (const char *p = m; *p && *p != '"' && n < RT_MSG_MAX; p++) {
		if (*p == '\\' && p[1])
			p++;
		out[n++] = *p;
	}
	out[n] = '\0';
	return out;
}

static pid_t read_pid_file(const char *path)
{
	_cleanup_free_ char *text = NULL;
	if (fs_read_file(path, 64, &text, NULL, NULL) < 0)
		return 0;
	char *end;
	long v = strtol(text, &end, 10);
	return v > 0 && v < (1 << 22) && end != text ? (pid_t)v : 0;
}

/* The forked child, in a multi-threaded huskd: async-signal-safe calls
 * only, every argument made before the fork. */
struct runtime_call {
	char **argv;
	const int *fds;
	int ctty;
};

/* The highest descriptor exec_runtime uses (proc_clone_vm's maxfd). */
static int call_maxfd(const int fds[3], int ctty)
{
	int m = ctty;
	for (int i = 0; i < 3; i++)
		if (fds[i] > m)
			m = fds[i];
	return m;
}

/* In a child that shares huskd's memory until execv (proc_clone_vm): only
 * async-signal-safe calls. */
static int exec_runtime(void *p)
{
	const struct runtime_call *c = p;
	char **argv = c->argv;
	const int *fds = c->fds;
	int ctty = c->ctty;
	sigset_t none;
	sigemptyset(&none);
	proc_signals_default(true); /* SIGPIPE, and what huskd inherited ignored */
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* A session of its own: the terminal's, when there is one, so that
	 * a resize of our pty signals the runtime (SIGWINCH), which resizes
	 * the container's. */
	if (setsid() < 0 || (ctty >= 0 && ioctl(ctty, TIOCSCTTY, 0) < 0))
		_exit(126);
	/* Above the stdio numbers first, so that no dup2 clobbers another's
	 * source. */
	int high[3];
	for (int i = 0; i < 3; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3)) < 0)
			_exit(126);
	for (int i = 0; i < 3; i++)
		if (dup2(high[i], i) < 0)
			_exit(126);
	/* Nothing of huskd's but stdio reaches the runtime. */
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
	execv(argv[0], argv);
	_exit(127);
}

/* A pty of the host's: the runtime's stdio is its slave, which it puts in
 * raw mode itself; raw from the start, so nothing typed early echoes. */
static int open_pty(int *ret_master, int *ret_slave, struct husk_error *err)
{
	_cleanup_close_ int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	char name[64];
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof(name)) != 0)
		return husk_error_errno(err, errno, "exec: open a pty");
	_cleanup_close_ int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (s < 0)
		return husk_error_errno(err, errno, "exec: open '%s'", name);
	struct termios t;
	if (tcgetattr(s, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(s, TCSANOW, &t);
	}
	*ret_master = steal_fd(&m);
	*ret_slave = steal_fd(&s);
	return 0;
}

/* Wait until the runtime has written the pid file (the process runs) or
 * has exited (it failed to start it), up to the setup timeout. The pid, or
 * 0 with *ret_exited saying whether the runtime is gone. */
static pid_t wait_started(int ino, int pidfd, const char *pidfile, bool *ret_exited)
{
	long long deadline = now_mono_ns() + EXEC_SETUP_TIMEOUT_NS;
	*ret_exited = false;
	for (;;) {
		pid_t target = read_pid_file(pidfile);
		if (target > 0 || *ret_exited)
			return target;
		long long left = deadline - now_mono_ns();
		if (left <= 0)
			return 0;
		struct pollfd pf[2] = {{ino, POLLIN, 0}, {pidfd, POLLIN, 0}};
		int pr = poll(pf, 2, (int)(left / 1000000) + 1);
		if (pr < 0 && errno != EINTR)
			return 0;
		if (pr > 0 && pf[0].revents) {
			char buf[4096];
			while (read(ino, buf, sizeof(buf)) > 0)
				;
		}
		/* One more look at the pid file: a process that ends at once
		 * lets the runtime exit right after writing it. */
		if (pr > 0 && pf[1].revents)
			*ret_exited = true;
	}
}

int ctr_oci_exec_spawn(const struct ctr_exec_opts *o, const struct ctr_stdio *io,
		       struct ctr_process *ret, struct husk_error *err)
{
	const struct ctr_spec *s = o->spec;
	if (strv_length(o->args) == 0 || isempty(o->args[0]))
		return husk_error_set(err, EINVAL, "exec: no command");
	if (strv_length(o->args) > CTR_SPEC_MAX_ARGS)
		return husk_error_set(err, EINVAL, "exec: more than %d arguments",
				      CTR_SPEC_MAX_ARGS);
	if (!s->oci_path || isempty(s->state_dir))
		return husk_error_set(err, EINVAL, "exec: the container has no OCI runtime");

	_cleanup_(exec_dir_freep) char *dir = xasprintf("%s/exec-XXXXXX", s->state_dir);
	if (!mkdtemp(dir)) {
		int e = errno;
		free(steal_ptr(&dir));
		return husk_error_errno(err, e, "exec: make a directory in '%s'", s->state_dir);
	}
	_cleanup_free_ char *proc_path = xasprintf("%s/process.json", dir);
	_cleanup_free_ char *pid_path = xasprintf("%s/pid", dir);
	_cleanup_free_ char *log_path = xasprintf("%s/log", dir);
	_cleanup_free_ char *proc =
	    ctr_oci_process(s, o->args, o->env, o->cwd, o->tty, o->rows, o->cols);
	if (fs_write_atomic(proc_path, proc, strlen(proc), 0600, err) < 0)
		return husk_error_prefix(err, "exec");
	_cleanup_close_ int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (ino < 0 || inotify_add_watch(ino, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0)
		return husk_error_errno(err, errno, "exec: watch '%s'", dir);
	_cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return husk_error_errno(err, errno, "exec: open '/dev/null'");
	_cleanup_close_ int master = -1, slave = -1;
	if (o->tty && open_pty(&master, &slave, err) < 0)
		return -err->code;
	/* The runtime copies our terminal's size to the container's at its
	 * start: a 0x0 here would undo consoleSize. */
	if (o->tty)
		tty_set_size(master, o->rows, o->cols);
	int fds[3] = {slave, slave, slave};
	if (!o->tty) {
		fds[0] = io->in >= 0 ? io->in : null;
		fds[1] = io->out >= 0 ? io->out : null;
		fds[2] = io->err >= 0 ? io->err : null;
	}
	const char *verb[] = {"exec", "--process", proc_path, "--pid-file", pid_path, s->id, NULL};
	_cleanup_strv_ char **argv = ctr_oci_argv(s, log_path, verb);

	pid_t pid = proc_clone_vm(0, call_maxfd(fds, slave), exec_runtime,
				  &(struct runtime_call){argv, fds, slave});
	if (pid < 0)
		return husk_error_errno(err, -pid, "exec: start '%s'", s->oci_path);
	/* The runtime holds the slave now: its exit hangs the master up. */
	closep(&slave);
	_cleanup_close_ int pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		int e = errno;
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return husk_error_errno(err, e, "exec: pidfd of '%s'", s->oci_path);
	}
	bool exited = false;
	pid_t target = wait_started(ino, pidfd, pid_path, &exited);
	if (target <= 0) {
		int st = 0;
		if (!exited)
			kill(pid, SIGKILL);
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (!exited)
			return husk_error_set(
			    err, ETIMEDOUT, "exec '%s': %s exec did not start it in %llds",
			    o->args[0], s->oci_path, EXEC_SETUP_TIMEOUT_NS / 1000000000LL);
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			return husk_error_sys(err, ENOENT, "exec '%s': cannot execute '%s'",
					      o->args[0], s->oci_path);
		_cleanup_free_ char *msg = rt_message(log_path);
		/* runc: `exec: "x": executable file not found in $PATH`, or
		 * the kernel's ENOENT for a path. */
		int code = strstr(msg, "not found") || strstr(msg, "no such file") ? ENOENT : EIO;
		return husk_error_sys(err, code, "exec '%s': %s exec: %s", o->args[0], s->oci_path,
				      msg);
	}
	unsigned long long start = 0;
	proc_start_time(target, &start, NULL);
	*ret = (struct ctr_process){
	    .pid = pid, .pty_master = steal_fd(&master), .target = target, .target_start = start};
	return 0;
}

int ctr_oci_update(const struct ctr_spec *s, const char *resources_json, struct husk_error *err)
{
	if (!s->oci_path || isempty(s->state_dir))
		return husk_error_set(err, EINVAL, "update: the container has no OCI runtime");
	size_t len = strlen(resources_json);
	if (len > RT_INPUT_MAX)
		return husk_error_set(err, EINVAL, "update: resources of %zu bytes", len);
	_cleanup_(exec_dir_freep) char *dir = xasprintf("%s/update-XXXXXX", s->state_dir);
	if (!mkdtemp(dir)) {
		int e = errno;
		free(steal_ptr(&dir));
		return husk_error_errno(err, e, "update: make a directory in '%s'", s->state_dir);
	}
	_cleanup_free_ char *log_path = xasprintf("%s/log", dir);
	_cleanup_free_ char *in_path = xasprintf("%s/resources.json", dir);
	if (fs_write_atomic(in_path, resources_json, len, 0600, err) < 0)
		return husk_error_prefix(err, "update");
	/* "-": from stdin, as the file the runtime reads whole. */
	_cleanup_close_ int in = open(in_path, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (in < 0 || null < 0)
		return husk_error_errno(err, errno, "update: open '%s'", in_path);
	const char *verb[] = {"update", "--resources", "-", s->id, NULL};
	_cleanup_strv_ char **argv = ctr_oci_argv(s, log_path, verb);
	int fds[3] = {in, null, null};
	pid_t pid = proc_clone_vm(0, call_maxfd(fds, -1), exec_runtime,
				  &(struct runtime_call){argv, fds, -1});
	if (pid < 0)
		return husk_error_errno(err, -pid, "update: start '%s'", s->oci_path);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return husk_error_errno(err, errno, "update: wait for '%s'", s->oci_path);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return husk_error_set(err, ENOENT, "update: cannot execute '%s'", s->oci_path);
	_cleanup_free_ char *msg = rt_message(log_path);
	/* A value the kernel refused (EINVAL, ERANGE for a cpu it lacks,
	 * EBUSY for a memory limit below what the container holds) is the
	 * caller's, as with husk's own cgroup writes. */
	bool refused = strstr(msg, "invalid argument") || strstr(msg, "invalid configuration") ||
		       strstr(msg, "out of range") || strstr(msg, "device or resource busy") ||
		       strstr(msg, "unable to set");
	return husk_error_set(err, refused ? EINVAL : EIO, "%s update: %s", s->oci_path, msg);
}
