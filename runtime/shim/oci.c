/* husk-shim running a container through an OCI runtime's create, start and
 * delete (see runtime/shim/oci.h). */
#include "runtime/shim/oci.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/proc.h"
#include "runtime/oci.h"

#define OCI_LOG "oci.log"
#define OCI_PID "oci.pid"
#define OCI_LOG_TAIL 512
#define OCI_CONSOLE "console.sock"

static char **oci_argv(const struct ctr_spec *s, const char *const *verb)
{
	_cleanup_free_ char *log = xasprintf("%s/" OCI_LOG, s->state_dir);
	return ctr_oci_argv(s, log, verb);
}

/* The last line the runtime logged, for an error message. */
static char *log_tail(const struct ctr_spec *s)
{
	_cleanup_free_ char *path = xasprintf("%s/" OCI_LOG, s->state_dir);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	if (fs_read_file(path, 1 << 20, &text, &len, NULL) < 0 || len == 0)
		return xstrdup("no message");
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
		text[--len] = '\0';
	char *nl = strrchr(text, '\n');
	const char *line = nl ? nl + 1 : text;
	return xasprintf("%.*s", OCI_LOG_TAIL, line);
}

/* The errno a runtime's failure stands for, read from its message, so that
 * CRI gets the status husk's own launcher gives for the same cause (a
 * missing executable is NOT_FOUND): runc says "exec: \"X\": stat X: no
 * such file or directory" or "executable file not found in $PATH", crun
 * "executable file `X` not found in $PATH: No such file or directory". */
static int rt_errno(const char *msg)
{
	if (strcasestr(msg, "no such file or directory") || strstr(msg, "not found in $PATH"))
		return ENOENT;
	if (strcasestr(msg, "permission denied"))
		return EACCES;
	return EIO;
}

static int dup_or_null(int fd, int target)
{
	if (fd < 0) {
		fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			return -1;
	}
	return dup2(fd, target) < 0 ? -1 : 0;
}

/* Run the runtime with verb and wait for it; 0 when it exits 0. */
static int run_rt(const struct ctr_spec *s, const char *const *verb, const struct ctr_stdio *io,
		  struct husk_error *err)
{
	_cleanup_strv_ char **argv = oci_argv(s, verb);
	pid_t pid = fork();
	if (pid < 0)
		return husk_error_errno(err, errno, "fork '%s'", s->oci_path);
	if (pid == 0) {
		/* The shim's signal mask and ignored signals (SIGPIPE, and what
		 * it inherited) are not the runtime's, nor the container's it
		 * starts. */
		proc_signals_default(true);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		struct ctr_stdio null = CTR_STDIO_NULL;
		if (!io)
			io = &null;
		if (dup_or_null(io->in, 0) < 0 || dup_or_null(io->out, 1) < 0 ||
		    dup_or_null(io->err, 2) < 0)
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return husk_error_errno(err, errno, "wait for '%s'", s->oci_path);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	_cleanup_free_ char *msg = log_tail(s);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return husk_error_set(err, ENOENT, "%s %s: cannot execute '%s'", s->oci_path,
				      verb[0], s->oci_path);
	return husk_error_set(err, rt_errno(msg), "%s %s: %s %d: %s", s->oci_path, verb[0],
			      WIFEXITED(st) ? "exit status" : "signal",
			      WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), msg);
}

/* The pty master the runtime sends over the console socket (SCM_RIGHTS).
 * It connected and sent during create, which has returned: the connection
 * waits in the listen queue. */
static int console_master(int lfd, struct husk_error *err)
{
	_cleanup_close_ int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return husk_error_errno(err, errno,
					"console socket: no connection from the runtime");
	char buf[256];
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} cm;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr m = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.b, .msg_controllen = sizeof(cm.b)};
	if (recvmsg(c, &m, MSG_CMSG_CLOEXEC) < 0)
		return husk_error_errno(err, errno, "console socket");
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	if (!h || h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS ||
	    h->cmsg_len != CMSG_LEN(sizeof(int)))
		return husk_error_set(err, EIO, "console socket: no terminal fd from the runtime");
	int fd;
	memcpy(&fd, CMSG_DATA(h), sizeof(fd));
	return fd;
}

static int launch(const struct ctr_spec *s, const char *bundle, const struct ctr_stdio *io,
		  struct ctr_process *ret, struct husk_error *err);

/* Undo a create whose start cannot follow. */
static void undo_create(const struct ctr_spec *s, pid_t pid, int master)
{
	if (master >= 0)
		close(master);
	shim_oci_delete(s);
	if (pid > 0)
		waitpid(pid, NULL, WNOHANG);
}

int shim_oci_launch(const struct ctr_spec *s, const struct ctr_stdio *io, struct ctr_process *ret,
		    struct husk_error *err)
{
	if (fs_mkdir_p(s->oci_root, 0700, err) < 0)
		return husk_error_prefix(err, "runtime root");
	/* A pod's user namespace: the bundle the runtime gets has idmapped
	 * bind sources. */
	_cleanup_free_ char *bundle = NULL;
	if (ctr_oci_idmap_prepare(s, &bundle, err) < 0)
		return -err->code;
	/* The runtime's init makes what is missing from the container's
	 * cgroup; made here, from the shim's, its page cache does not keep
	 * that cgroup in the kernel after the container. */
	ctr_make_targets(s, s->cwd);
	int r = launch(s, bundle, io, ret, err);
	if (r < 0)
		ctr_oci_idmap_release(s->state_dir);
	return r;
}

static int launch(const struct ctr_spec *s, const char *bundle, const struct ctr_stdio *io,
		  struct ctr_process *ret, struct husk_error *err)
{
	_cleanup_free_ char *pidfile = xasprintf("%s/" OCI_PID, s->state_dir);
	unlink(pidfile);
	_cleanup_close_ int lfd = -1;
	if (s->tty) {
		/* We run in the state directory, so the name fits sun_path. */
		unlink(OCI_CONSOLE);
		struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = OCI_CONSOLE};
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    listen(lfd, 1) < 0)
			return husk_error_errno(err, errno, "console socket");
	}
	const char *create[9] = {"create", "--bundle", bundle, "--pid-file", pidfile};
	size_t n = 5;
	if (s->tty) {
		create[n++] = "--console-socket";
		/* Relative: the runtime runs in the state directory (also the
		 * bundle), and the absolute path may not fit sun_path. */
		create[n++] = OCI_CONSOLE;
	}
	create[n++] = s->id;
	create[n] = NULL;
	int r = run_rt(s, create, io, err);
	if (s->tty)
		unlink(OCI_CONSOLE);
	if (r < 0)
		return r;
	int master = -1;
	if (s->tty && (master = console_master(lfd, err)) < 0) {
		undo_create(s, 0, -1);
		return master;
	}
	_cleanup_free_ char *text = NULL;
	long pid = 0;
	if (fs_read_file(pidfile, 64, &text, NULL, err) < 0 ||
	    (pid = strtol(text, NULL, 10)) <= 0) {
		if (!err->code)
			husk_error_set(err, EIO, "%s create: no pid in '%s'", s->oci_path, pidfile);
		undo_create(s, 0, master);
		return -err->code;
	}
	/* Into husk's cgroup (where huskd set the limits and device rules)
	 * before the container's process execs: a runtime that placed it
	 * there already is unaffected, one whose cgroup manager is off
	 * (crun --cgroup-manager=disabled) gets it so. */
	_cleanup_free_ char *pidtext = xasprintf("%ld", pid);
	for (size_t i = 0; s->cgroup_procs && s->cgroup_procs[i]; i++) {
		int fd = open(s->cgroup_procs[i], O_WRONLY | O_CLOEXEC);
		ssize_t w = fd < 0 ? -1 : write(fd, pidtext, strlen(pidtext));
		r = w < 0 ? husk_error_errno(err, errno, "join cgroup '%s'", s->cgroup_procs[i])
			  : 0;
		if (fd >= 0)
			close(fd);
		if (r < 0) {
			undo_create(s, (pid_t)pid, master);
			return r;
		}
	}
	const char *start[] = {"start", s->id, NULL};
	if ((r = run_rt(s, start, NULL, err)) < 0) {
		undo_create(s, (pid_t)pid, master);
		return r;
	}
	*ret = (struct ctr_process){.pid = (pid_t)pid, .pty_master = master};
	return 0;
}

void shim_oci_delete(const struct ctr_spec *s)
{
	const char *del[] = {"delete", "--force", s->id, NULL};
	struct husk_error e = HUSK_ERROR_INIT;
	if (run_rt(s, del, NULL, &e) < 0)
		log_warn("container=%s runtime delete: %s", s->id, husk_error_msg(&e));
	husk_error_clear(&e);
	ctr_oci_idmap_release(s->state_dir);
}
