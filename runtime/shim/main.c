/* husk-shim: one small process per container. It launches the container
 * from a spec file, is its parent and subreaper, writes its output to the
 * CRI log, records its start and exit in the state directory, and answers
 * control requests, whether or not huskd is running.
 *
 * Usage: husk-shim SPEC_FILE [SYNC_FD]. SYNC_FD, when given, receives one
 * line, "ok PID" or "error ERRNO MESSAGE", and is then closed. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "runtime/launcher/launcher.h"
#include "runtime/shim/oci.h"
#include "runtime/shim_client.h"

#define MAX_CLIENTS 8
#define MAX_ATTACH CTR_SHIM_MAX_ATTACH
/* Attach connections get a large send buffer so that a reader that is
 * briefly slow is not dropped at once. */
#define ATTACH_SNDBUF (1 << 20)
#define REQUEST_MAX 256
#define READ_CHUNK 8192
/* After the container's init exits, how long to wait for the rest of its
 * output (a background process of a host-PID container may hold it). */
#define DRAIN_NS (1000LL * 1000000LL)

struct shim {
	struct ctr_spec *spec;
	int sync_fd;
	struct lc_log *log;
	pid_t pid;
	int fds[2];   /* stdout, stderr read ends (the pty master as stdout) */
	int pty;      /* -1 unless tty */
	int stdin_wr; /* held open for the container's stdin */
	int sigfd;
	int listen_fd;
	int clients[MAX_CLIENTS];
	int attach[MAX_ATTACH];
	/* stdin bytes from an attached client the container has not taken
	 * yet; while there are some, attached clients are not read. */
	char *in_pending;
	size_t in_len;
	bool exited;
	int status;
	long long exited_at;
	bool have_oom;
	long long oom_base;
};

static const char *cid(const struct shim *s)
{
	return s->spec && s->spec->id ? s->spec->id : "-";
}

static void sync_report(struct shim *s, const char *fmt, ...) _printf_(2, 3);
static void sync_report(struct shim *s, const char *fmt, ...)
{
	if (s->sync_fd < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *line = xvasprintf(fmt, ap);
	va_end(ap);
	ssize_t r _unused_ = write(s->sync_fd, line, strlen(line));
	close(s->sync_fd);
	s->sync_fd = -1;
}

static void write_state(const char *name, char *json)
{
	struct husk_error e = HUSK_ERROR_INIT;
	if (fs_write_replace(name, json, strlen(json), 0644, &e) < 0)
		log_error("write state file: %s", husk_error_msg(&e));
	husk_error_clear(&e);
	free(json);
}

static _noreturn_ void fail(struct shim *s, const struct husk_error *err)
{
	log_error("container=%s launch failed: %s", cid(s), husk_error_msg(err));
	if (s->spec) {
		_cleanup_gen_ yajl_gen g = json_gen_new(false);
		yajl_gen_map_open(g);
		json_kv_int(g, "code", err->code ? err->code : EIO);
		json_kv_str(g, "message", husk_error_msg(err));
		yajl_gen_map_close(g);
		write_state("error", json_gen_steal(g));
		unlink(CTR_SHIM_CONTROL);
	}
	/* The message goes on one line. */
	char msg[1024];
	snprintf(msg, sizeof(msg), "%s", husk_error_msg(err));
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	sync_report(s, "error %d %s\n", err->code ? err->code : EIO, msg);
	exit(1);
}

static int read_oom_count(const char *path, long long *ret)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	char line[128];
	while (fgets(line, sizeof(line), f)) {
		long long v;
		if (sscanf(line, "oom_kill %lld", &v) == 1) {
			*ret = v;
			return 0;
		}
	}
	return -ENOENT;
}

static void write_pid_file(const char *name, pid_t pid, long long started_at)
{
	unsigned long long st = 0;
	proc_start_time(pid, &st, NULL);
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	json_kv_int(g, "pid", pid);
	json_kv_int(g, "start_time", (long long)st);
	if (started_at)
		json_kv_int(g, "started_at", started_at);
	yajl_gen_map_close(g);
	write_state(name, json_gen_steal(g));
}

static int setup_control(struct shim *s, struct husk_error *err)
{
	/* We run in the state directory, so the name fits sun_path. */
	unlink(CTR_SHIM_CONTROL);
	s->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->listen_fd < 0)
		return husk_error_errno(err, errno, "control socket");
	struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = CTR_SHIM_CONTROL};
	if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(s->listen_fd, MAX_CLIENTS) < 0)
		return husk_error_errno(err, errno, "control socket");
	chmod(CTR_SHIM_CONTROL, 0600);
	return 0;
}

static void reap(struct shim *s)
{
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, WNOHANG);
		if (w <= 0)
			return;
		if (w == s->pid && !s->exited) {
			s->exited = true;
			s->status = st;
			s->exited_at = now_real_ns();
		}
	}
}

/* ---- attach ---- */

static int stdin_fd(const struct shim *s)
{
	if (s->pty >= 0)
		return s->spec->stdin_open ? s->pty : -1;
	return s->stdin_wr;
}

static void close_stdin(struct shim *s)
{
	if (s->stdin_wr >= 0) {
		close(s->stdin_wr);
		s->stdin_wr = -1;
	}
	free(s->in_pending);
	s->in_pending = NULL;
	s->in_len = 0;
}

static void attach_drop(struct shim *s, int k)
{
	if (s->attach[k] < 0)
		return;
	close(s->attach[k]);
	s->attach[k] = -1;
	if (s->spec->stdin_once)
		close_stdin(s);
}

static void attach_broadcast(struct shim *s, int stream, const char *data, size_t len)
{
	char pkt[1 + READ_CHUNK];
	pkt[0] = (char)('1' + stream);
	memcpy(pkt + 1, data, len);
	for (int k = 0; k < MAX_ATTACH; k++) {
		if (s->attach[k] < 0)
			continue;
		if (send(s->attach[k], pkt, len + 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
			log_warn("container=%s attached client %d dropped: %s", cid(s), k,
				 strerror(errno));
			attach_drop(s, k);
		}
	}
}

/* Write to the container's stdin without ever blocking: what it does not
 * take now waits in in_pending. */
static void stdin_feed(struct shim *s, const char *data, size_t len)
{
	int fd = stdin_fd(s);
	if (fd < 0)
		return;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			break;
		if (w < 0) {
			/* The container closed its stdin: drop what comes. */
			return;
		}
		off += (size_t)w;
	}
	if (off < len) {
		char *p = xmalloc(s->in_len + len - off);
		memcpy(p, s->in_pending, s->in_len);
		memcpy(p + s->in_len, data + off, len - off);
		free(s->in_pending);
		s->in_pending = p;
		s->in_len += len - off;
	}
}

static void stdin_flush(struct shim *s)
{
	_cleanup_free_ char *p = steal_ptr(&s->in_pending);
	size_t len = s->in_len;
	s->in_len = 0;
	if (p)
		stdin_feed(s, p, len);
}

static void attach_input(struct shim *s, int k)
{
	char pkt[1 + READ_CHUNK + 1];
	ssize_t n = recv(s->attach[k], pkt, sizeof(pkt) - 1, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		attach_drop(s, k);
		return;
	}
	unsigned rows, cols;
	pkt[n] = '\0';
	if (pkt[0] == '0' && n == 1) {
		if (s->spec->stdin_once)
			close_stdin(s);
	} else if (pkt[0] == '0') {
		stdin_feed(s, pkt + 1, (size_t)n - 1);
	} else if (pkt[0] == 'r' && sscanf(pkt, "r %u %u", &rows, &cols) == 2 && s->pty >= 0) {
		tty_set_size(s->pty, rows, cols);
	}
}

static void attach_add(struct shim *s, int fd, char *reply, size_t size)
{
	int slot = -1;
	for (int k = 0; k < MAX_ATTACH && slot < 0; k++)
		if (s->attach[k] < 0)
			slot = k;
	if (s->exited) {
		snprintf(reply, size, "error %d container has exited", ESRCH);
		return;
	}
	if (slot < 0) {
		snprintf(reply, size, "error %d %d clients are attached already", EAGAIN,
			 MAX_ATTACH);
		return;
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (s->clients[i] == fd)
			s->clients[i] = -1;
	int sz = ATTACH_SNDBUF;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	s->attach[slot] = fd;
	snprintf(reply, size, "ok %d %d", s->spec->tty ? 1 : 0, stdin_fd(s) >= 0 ? 1 : 0);
}

static void close_stream(struct shim *s, int i)
{
	if (s->fds[i] < 0)
		return;
	lc_log_flush(s->log, (enum lc_log_stream)i);
	close(s->fds[i]);
	s->fds[i] = -1;
}

static void read_stream(struct shim *s, int i)
{
	char buf[READ_CHUNK];
	ssize_t n = read(s->fds[i], buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	/* EOF, or EIO from a pty master once the last slave fd is gone. */
	if (n <= 0) {
		close_stream(s, i);
		return;
	}
	lc_log_write(s->log, (enum lc_log_stream)i, buf, (size_t)n);
	attach_broadcast(s, i, buf, (size_t)n);
}

static void handle_request(struct shim *s, int fd)
{
	char req[REQUEST_MAX + 1], reply[REQUEST_MAX];
	ssize_t n = recv(fd, req, REQUEST_MAX, MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (s->clients[i] == fd)
				s->clients[i] = -1;
		close(fd);
		return;
	}
	req[n] = '\0';
	int sig;
	unsigned rows, cols;
	struct husk_error e = HUSK_ERROR_INIT;
	if (sscanf(req, "signal %d", &sig) == 1) {
		if (s->exited)
			snprintf(reply, sizeof(reply), "error %d container has exited", ESRCH);
		else if (kill(s->pid, sig) < 0)
			snprintf(reply, sizeof(reply), "error %d signal %d: %s", errno, sig,
				 strerror(errno));
		else
			snprintf(reply, sizeof(reply), "ok");
	} else if (streq(req, "reopen")) {
		if (lc_log_reopen(s->log, &e) < 0)
			snprintf(reply, sizeof(reply), "error %d %s", e.code, husk_error_msg(&e));
		else
			snprintf(reply, sizeof(reply), "ok");
	} else if (sscanf(req, "resize %u %u", &rows, &cols) == 2) {
		int r = 0;
		if (s->pty < 0)
			snprintf(reply, sizeof(reply), "error %d container has no terminal",
				 EINVAL);
		else if ((r = tty_set_size(s->pty, rows, cols)) < 0)
			snprintf(reply, sizeof(reply), "error %d resize: %s", -r, strerror(-r));
		else
			snprintf(reply, sizeof(reply), "ok");
	} else if (streq(req, "state")) {
		if (s->exited)
			snprintf(reply, sizeof(reply), "ok exited %d",
				 WIFEXITED(s->status) ? WEXITSTATUS(s->status)
						      : 128 + WTERMSIG(s->status));
		else
			snprintf(reply, sizeof(reply), "ok running %d", (int)s->pid);
	} else if (streq(req, "attach")) {
		attach_add(s, fd, reply, sizeof(reply));
	} else {
		snprintf(reply, sizeof(reply), "error %d unknown request", EINVAL);
	}
	husk_error_clear(&e);
	send(fd, reply, strlen(reply), MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void accept_client(struct shim *s)
{
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (s->clients[i] < 0) {
			s->clients[i] = fd;
			return;
		}
	/* Full: one-shot requests finish quickly, so refuse this one. */
	const char *busy = "error 11 too many control connections";
	send(fd, busy, strlen(busy), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void handle_signal(struct shim *s)
{
	struct signalfd_siginfo si;
	while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(s);
			break;
		case SIGUSR1: {
			struct husk_error e = HUSK_ERROR_INIT;
			if (lc_log_reopen(s->log, &e) < 0)
				log_warn("container=%s reopen log: %s", cid(s), husk_error_msg(&e));
			husk_error_clear(&e);
			break;
		}
		default:
			/* SIGTERM, SIGINT, SIGHUP: pass them on. */
			if (!s->exited)
				kill(s->pid, (int)si.ssi_signo);
			break;
		}
	}
}

static void run(struct shim *s)
{
	long long drain_until = 0;
	for (;;) {
		if (s->exited) {
			if (s->fds[0] < 0 && s->fds[1] < 0)
				break;
			long long now = now_mono_ns();
			if (!drain_until)
				drain_until = now + DRAIN_NS;
			if (now >= drain_until)
				break;
		}
		struct pollfd pf[5 + MAX_CLIENTS + MAX_ATTACH];
		nfds_t n = 0;
		pf[n++] = (struct pollfd){s->sigfd, POLLIN, 0};
		pf[n++] = (struct pollfd){s->listen_fd, POLLIN, 0};
		pf[n++] = (struct pollfd){s->fds[0], POLLIN, 0};
		pf[n++] = (struct pollfd){s->fds[1], POLLIN, 0};
		for (int i = 0; i < MAX_CLIENTS; i++)
			pf[n++] = (struct pollfd){s->clients[i], POLLIN, 0};
		/* Attached clients are read only when their last stdin went in. */
		for (int k = 0; k < MAX_ATTACH; k++)
			pf[n++] = (struct pollfd){s->attach[k], s->in_len ? 0 : POLLIN, 0};
		pf[n++] = (struct pollfd){s->in_len ? stdin_fd(s) : -1, POLLOUT, 0};
		int timeout = -1;
		if (drain_until)
			timeout = (int)((drain_until - now_mono_ns()) / 1000000) + 1;
		int r = poll(pf, n, timeout);
		if (r < 0 && errno != EINTR) {
			log_error("container=%s poll: %s", cid(s), strerror(errno));
			break;
		}
		if (r <= 0)
			continue;
		if (pf[0].revents)
			handle_signal(s);
		if (pf[1].revents)
			accept_client(s);
		for (int i = 0; i < 2; i++)
			if (pf[2 + i].revents && s->fds[i] >= 0)
				read_stream(s, i);
		for (int i = 0; i < MAX_CLIENTS; i++)
			if (pf[4 + i].revents && pf[4 + i].fd >= 0)
				handle_request(s, pf[4 + i].fd);
		for (int k = 0; k < MAX_ATTACH; k++)
			if (pf[4 + MAX_CLIENTS + k].revents && s->attach[k] >= 0)
				attach_input(s, k);
		if (pf[4 + MAX_CLIENTS + MAX_ATTACH].revents)
			stdin_flush(s);
	}
	close_stream(s, 0);
	close_stream(s, 1);
	for (int k = 0; k < MAX_ATTACH; k++)
		if (s->attach[k] >= 0) {
			close(s->attach[k]);
			s->attach[k] = -1;
		}
	close_stdin(s);
}

static void record_exit(struct shim *s)
{
	long long count;
	bool oom =
	    s->have_oom && read_oom_count(s->spec->oom_file, &count) == 0 && count > s->oom_base;
	int sig = WIFSIGNALED(s->status) ? WTERMSIG(s->status) : 0;
	int code = WIFEXITED(s->status) ? WEXITSTATUS(s->status) : 128 + sig;
	/* An OCI runtime's container is deleted (its cgroup with it) before
	 * the exit is recorded, after the OOM count was read: a client that
	 * sees the container exited sees the runtime done with it. */
	if (s->spec->oci_path)
		shim_oci_delete(s->spec);
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	json_kv_int(g, "exit_code", code);
	json_kv_int(g, "signal", sig);
	json_kv_int(g, "exited_at", s->exited_at);
	json_kv_bool(g, "oom_killed", oom);
	yajl_gen_map_close(g);
	unlink(CTR_SHIM_CONTROL);
	write_state("exit", json_gen_steal(g));
	log_info("container=%s exited code=%d signal=%d oom_killed=%d", cid(s), code, sig, oom);
}

static int make_pipe(int ret[2], struct husk_error *err)
{
	if (pipe2(ret, O_CLOEXEC) < 0)
		return husk_error_errno(err, errno, "pipe");
	return 0;
}

int main(int argc, char **argv)
{
	struct shim s = {.sync_fd = -1,
			 .fds = {-1, -1},
			 .pty = -1,
			 .stdin_wr = -1,
			 .sigfd = -1,
			 .listen_fd = -1};
	struct husk_error err = HUSK_ERROR_INIT;
	for (int i = 0; i < MAX_CLIENTS; i++)
		s.clients[i] = -1;
	for (int k = 0; k < MAX_ATTACH; k++)
		s.attach[k] = -1;
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: husk-shim CONFIG_FILE [SYNC_FD]\n");
		return 2;
	}
	if (argc == 3) {
		s.sync_fd = atoi(argv[2]);
		if (s.sync_fd < 0 || fcntl(s.sync_fd, F_SETFD, FD_CLOEXEC) < 0)
			s.sync_fd = -1;
	}

	/* huskd's signal mask and dispositions are not ours. */
	sigset_t mask;
	sigemptyset(&mask);
	sigprocmask(SIG_SETMASK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	s.sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

	if (ctr_spec_read_any(argv[1], &s.spec, &err) < 0)
		fail(&s, &err);
	if (isempty(s.spec->state_dir)) {
		husk_error_set(&err, EINVAL, "config '%s': no " CTR_ANN_STATE_DIR " annotation",
			       argv[1]);
		ctr_spec_free(steal_ptr(&s.spec));
		fail(&s, &err);
	}
	if (fs_mkdir_p(s.spec->state_dir, 0700, &err) < 0 || chdir(s.spec->state_dir) < 0) {
		if (!err.code)
			husk_error_errno(&err, errno, "chdir '%s'", s.spec->state_dir);
		ctr_spec_free(steal_ptr(&s.spec));
		fail(&s, &err);
	}
	int logfd = open("shim.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (logfd >= 0 && logfd != STDERR_FILENO) {
		dup2(logfd, STDERR_FILENO);
		close(logfd);
	}
	write_pid_file("shim.pid", getpid(), 0);
	if (s.sigfd < 0) {
		husk_error_errno(&err, errno, "signalfd");
		fail(&s, &err);
	}
	/* Orphans of the container are ours to reap, not init's. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		husk_error_errno(&err, errno, "become subreaper");
		fail(&s, &err);
	}
	if (setup_control(&s, &err) < 0)
		fail(&s, &err);
	s.log = lc_log_new(s.spec->log_path, 0);
	if (lc_log_reopen(s.log, &err) < 0)
		fail(&s, &err);
	if (s.spec->oom_file)
		s.have_oom = read_oom_count(s.spec->oom_file, &s.oom_base) == 0;

	struct ctr_stdio io = CTR_STDIO_NULL;
	int outp[2] = {-1, -1}, errp[2] = {-1, -1}, inp[2] = {-1, -1};
	if (!s.spec->tty) {
		if (make_pipe(outp, &err) < 0 || make_pipe(errp, &err) < 0)
			fail(&s, &err);
		io.out = outp[1];
		io.err = errp[1];
	}
	if (s.spec->stdin_open && !s.spec->tty) {
		if (make_pipe(inp, &err) < 0)
			fail(&s, &err);
		io.in = inp[0];
	}
	struct ctr_process proc;
	int lr = s.spec->oci_path ? shim_oci_launch(s.spec, &io, &proc, &err)
				  : ctr_launch(s.spec, &io, &proc, &err);
	if (lr < 0)
		fail(&s, &err);
	long long started_at = now_real_ns();
	s.pid = proc.pid;
	if (s.spec->tty) {
		s.pty = proc.pty_master;
		s.fds[0] = fcntl(s.pty, F_DUPFD_CLOEXEC, 3);
	} else {
		close(outp[1]);
		close(errp[1]);
		s.fds[0] = outp[0];
		s.fds[1] = errp[0];
		if (inp[0] >= 0) {
			close(inp[0]);
			s.stdin_wr = inp[1];
			fcntl(s.stdin_wr, F_SETFL, O_NONBLOCK);
		}
	}
	for (int i = 0; i < 2; i++)
		if (s.fds[i] >= 0)
			fcntl(s.fds[i], F_SETFL, O_NONBLOCK);
#ifdef __GLIBC__
	/* The launch's working memory is not needed any more (musl's malloc
	 * returns freed memory by itself). */
	malloc_trim(0);
#endif
	write_pid_file("pid", s.pid, started_at);
	log_info("container=%s started pid=%d", cid(&s), (int)s.pid);
	sync_report(&s, "ok %d\n", (int)s.pid);

	run(&s);
	record_exit(&s);
	reap(&s);
	lc_log_free(s.log);
	ctr_spec_free(s.spec);
	return 0;
}
