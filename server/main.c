/* huskd: the husk CRI daemon. Parses flags and config, takes the root and
 * socket locks, starts the subsystems and the gRPC server, and shuts down
 * cleanly on SIGTERM/SIGINT. `huskd config` prints the effective config. */
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/service.h"
#include "server/events.h"
#include "server/grpc.h"
#include "server/handlers.h"
#include "server/metrics.h"

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: huskd [OPTIONS] [config]\n"
		"Serve the Kubernetes CRI (runtime.v1) on a unix socket.\n\n"
		"  config                 print the effective configuration and exit\n"
		"  --config FILE          main config file (default %s);\n"
		"                         drop-ins are read from its directory's husk.d/\n"
		"  --socket PATH          CRI socket (default %s)\n"
		"  --root DIR             persistent data (default %s)\n"
		"  --state DIR            runtime state (default %s)\n"
		"  --log-level LEVEL      error, warn, info or debug\n"
		"  --cgroup-driver NAME   cgroupfs, systemd or auto (default: auto, which is\n"
		"                         systemd when systemd is PID 1, else cgroupfs)\n"
		"  --version              print the version and exit\n"
		"  --help                 show this help\n",
		SRV_DEFAULT_CONFIG, SRV_DEFAULT_SOCKET, SRV_DEFAULT_ROOT, SRV_DEFAULT_STATE);
}

/* Hold an exclusive flock on path for the life of the process. A second
 * daemon fails here with the holder's pid. */
static int take_lock(const char *path, const char *what, struct husk_error *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600);
	if (fd < 0)
		return husk_error_errno(err, errno, "open lock '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return husk_error_set(err, EEXIST, "lock '%s': not a regular file", path);
	}
	/* The huskd that wrote its pid here is gone but the lock is held: a
	 * child it cloned had not exec'd yet when it was SIGKILLed and holds
	 * a copy of the fd for a moment. Wait for that, not for a live huskd. */
	for (int i = 0; i < 100 && flock(fd, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK; i++) {
		char pid[32] = "";
		long holder = pread(fd, pid, sizeof(pid) - 1, 0) > 0 ? strtol(pid, NULL, 10) : 0;
		if (holder <= 0 || kill((pid_t)holder, 0) == 0 || errno != ESRCH)
			break;
		if (i == 0)
			log_info("lock '%s': huskd %ld is gone, waiting for its children", path,
				 holder);
		usleep(50 * 1000);
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char pid[32] = "";
		ssize_t n = pread(fd, pid, sizeof(pid) - 1, 0);
		close(fd);
		if (n > 0)
			pid[strcspn(pid, "\n")] = '\0';
		if (e == EWOULDBLOCK)
			return husk_error_set(
			    err, EBUSY, "another huskd (pid %s) is using %s; lock '%s' is held",
			    n > 0 ? pid : "?", what, path);
		return husk_error_errno(err, e, "lock '%s'", path);
	}
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)len, 0) != len)
		log_warn("write pid to lock '%s': %s", path, strerror(errno));
	return fd; /* deliberately kept open */
}

/* Create each missing directory of path with mode; directories that exist
 * are left as they are (a --socket in /tmp must not chmod /tmp). */
static int mkdir_missing(const char *path, mode_t mode, struct husk_error *err)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return husk_error_set(err, ENOTDIR,
					      "socket directory '%s': not a directory", path);
		return 0;
	}
	return fs_mkdir_p(path, mode, err);
}

static int prepare_dirs(const struct srv_config *c, struct husk_error *err)
{
	if (fs_mkdir_p(c->root, 0700, err) < 0 || fs_mkdir_p(c->state, 0700, err) < 0)
		return -err->code;
	_cleanup_free_ char *copy = xstrdup(c->socket);
	/* A directory huskd makes for its socket is its own (0700); the
	 * socket itself is 0660 so a group (e.g. for crictl users) can be
	 * given access. */
	if (mkdir_missing(dirname(copy), 0700, err) < 0)
		return -err->code;
	return 0;
}

/* The socket path may hold only a socket: anything else is someone's data
 * and is never removed. */
static int socket_path_check(const char *path, struct husk_error *err)
{
	struct stat st;
	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return husk_error_errno(err, errno, "socket '%s'", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return husk_error_set(err, EEXIST,
				      "socket '%s': the path exists and is not a socket; "
				      "refusing to replace it",
				      path);
	return 0;
}

/* Pings the service manager's watchdog at half its interval until stopped.
 * It runs beside the gRPC workers, so a daemon that can still schedule
 * threads stays alive; a hung process (or one stuck stopping) is killed. */
struct watchdog {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	uint64_t usec;
	bool stop;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	pthread_mutex_lock(&w->lock);
	while (!w->stop) {
		svc_notify("WATCHDOG=1");
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + w->usec / 2 * 1000;
		ts.tv_sec += (time_t)(ns / 1000000000);
		ts.tv_nsec = (long)(ns % 1000000000);
		while (!w->stop && pthread_cond_timedwait(&w->cond, &w->lock, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static int watchdog_start(struct watchdog *w)
{
	*w = (struct watchdog){.usec = svc_watchdog_usec()};
	if (w->usec == 0)
		return 0;
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &ca);
	pthread_condattr_destroy(&ca);
	int r = pthread_create(&w->thread, NULL, watchdog_main, w);
	if (r != 0) {
		log_warn("watchdog: cannot start its thread: %s", strerror(r));
		w->usec = 0;
		return -r;
	}
	log_info("watchdog usec=%llu: pinging every %llu ms", (unsigned long long)w->usec,
		 (unsigned long long)(w->usec / 2000));
	return 0;
}

static void watchdog_stop(struct watchdog *w)
{
	if (w->usec == 0)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	w->usec = 0;
}

static int network_gc(struct srv_ctx *ctx, struct husk_error *err _unused_)
{
	srv_network_gc(ctx);
	return 0;
}

/* Subsystems in start order; they stop in reverse. */
static const struct {
	const char *name;
	int (*start)(struct srv_ctx *ctx, struct husk_error *err);
	void (*stop)(struct srv_ctx *ctx);
} subsystems[] = {
    {"images", srv_image_init, srv_image_shutdown},
    {"network", srv_network_init, srv_network_shutdown},
    {"runtime", srv_runtime_init, srv_runtime_shutdown},
    /* Needs both: releases attachments of pods the runtime no longer has. */
    {"network gc", network_gc, NULL},
    {"streaming", srv_streaming_init, srv_streaming_shutdown},
    /* Reads all of the above at each scrape, so it starts last. */
    {"metrics", srv_metrics_http_start, srv_metrics_http_stop},
};

static int subsystems_start(struct srv_ctx *ctx, size_t *started, struct husk_error *err)
{
	for (*started = 0; *started < ARRAY_SIZE(subsystems); (*started)++) {
		svc_statusf("starting %s", subsystems[*started].name);
		if (subsystems[*started].start(ctx, err) < 0)
			return husk_error_prefix(err, "%s", subsystems[*started].name);
	}
	return 0;
}

static void subsystems_stop(struct srv_ctx *ctx, size_t started)
{
	while (started-- > 0)
		if (subsystems[started].stop)
			subsystems[started].stop(ctx);
}

/* A crash leaves its stack in the log (stderr): a rare one then says
 * where it was without a core dump. The handler runs once
 * (SA_RESETHAND) and raises the signal again for the default action.
 * Not under ASan, whose own handler says more. */
#if !defined(__SANITIZE_ADDRESS__)
static void on_fatal(int sig)
{
	void *frames[64];
	int n = backtrace(frames, (int)ARRAY_SIZE(frames));
	char head[80];
	int len = snprintf(head, sizeof(head), "huskd: fatal signal %d (%s), stack:\n", sig,
			   sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
	if (len > 0)
		(void)!write(STDERR_FILENO, head, (size_t)len);
	backtrace_symbols_fd(frames, n, STDERR_FILENO);
	raise(sig);
}
#endif

static void fatal_handlers(void)
{
#if !defined(__SANITIZE_ADDRESS__)
	/* The first backtrace loads the unwinder: not in the handler. */
	void *f[1];
	backtrace(f, 1);
	struct sigaction sa = {.sa_handler = on_fatal, .sa_flags = SA_RESETHAND | SA_NODEFER};
	sigemptyset(&sa.sa_mask);
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
#endif
}

static int serve(struct srv_config *config)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int r = srv_methods_verify(&err);
	if (r < 0) {
		log_error("%s", err.msg);
		return 1;
	}
	if (socket_path_check(config->socket, &err) < 0 || prepare_dirs(config, &err) < 0) {
		log_error("start: %s", err.msg);
		return 1;
	}
	_cleanup_free_ char *root_lock = xasprintf("%s/huskd.lock", config->root);
	_cleanup_free_ char *sock_lock = xasprintf("%s.lock", config->socket);
	if (take_lock(root_lock, config->root, &err) < 0 ||
	    take_lock(sock_lock, config->socket, &err) < 0) {
		log_error("start: %s", err.msg);
		return 1;
	}
	/* We hold the socket lock, so a socket left here is stale; check again
	 * under the lock that it is one. */
	if (socket_path_check(config->socket, &err) < 0) {
		log_error("start: %s", err.msg);
		return 1;
	}
	if (unlink(config->socket) < 0 && errno != ENOENT) {
		log_error("start: remove stale socket '%s': %s", config->socket, strerror(errno));
		return 1;
	}

	/* Signals are taken synchronously by this thread; every thread created
	 * from here on inherits the mask. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	fatal_handlers();

	/* Under systemd the watchdog runs from the start: recovering many
	 * records takes time but must not look like a hang. */
	struct watchdog wd;
	watchdog_start(&wd);

	struct srv_ctx ctx = {.config = config};
	pthread_mutex_init(&ctx.lock, NULL);
	ctx.events = srv_events_new();
	ctx.metrics = srv_metrics_new();
	srv_pod_cidr_load(&ctx);
	size_t started = 0;
	if (subsystems_start(&ctx, &started, &err) < 0) {
		log_error("start: %s", err.msg);
		svc_statusf("start failed: %s", err.msg);
		subsystems_stop(&ctx, started);
		watchdog_stop(&wd);
		return 1;
	}

	struct srv_grpc *g = NULL;
	mode_t old = umask(0117);
	struct srv_grpc_opts gopts = {
	    .max_workers = config->max_workers,
	    .max_pulls = config->max_concurrent_pulls,
	    .idle_timeout_s = config->worker_idle_timeout,
	};
	r = srv_grpc_start(&ctx, config->socket, &gopts, &g, &err);
	umask(old);
	if (r < 0) {
		log_error("start: %s", err.msg);
		svc_statusf("start failed: %s", err.msg);
		subsystems_stop(&ctx, started);
		watchdog_stop(&wd);
		return 1;
	}
	/* Remember which socket is ours, so that exit removes only it. */
	struct stat sock_st;
	bool have_sock = lstat(config->socket, &sock_st) == 0 && S_ISSOCK(sock_st.st_mode);
	if (have_sock && chmod(config->socket, 0660) < 0)
		log_warn("chmod socket '%s': %s", config->socket, strerror(errno));
	log_info("huskd %s serving CRI v1 socket=%s root=%s state=%s cgroup_driver=%s",
		 HUSK_VERSION, config->socket, config->root, config->state,
		 config->cgroup_driver_used);
	/* The socket accepts and serves calls from here on. */
	_cleanup_free_ char *ready =
	    xasprintf("READY=1\nSTATUS=serving CRI v1 on %s", config->socket);
	svc_notify(ready);

	int sig;
	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: configuration is read at start; restart huskd to apply "
				 "changes");
			continue;
		}
		break;
	}
	svc_notify("STOPPING=1\nSTATUS=draining calls");
	log_info("signal %s: draining calls for up to %ds", strsignal(sig),
		 config->shutdown_timeout);
	srv_grpc_stop(g, config->shutdown_timeout);
	subsystems_stop(&ctx, started);
	struct stat st;
	if (have_sock && lstat(config->socket, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == sock_st.st_dev && st.st_ino == sock_st.st_ino)
		unlink(config->socket);
	srv_events_free(ctx.events);
	srv_metrics_free(ctx.metrics);
	free(ctx.pod_cidr);
	pthread_mutex_destroy(&ctx.lock);
	watchdog_stop(&wd);
	log_info("huskd stopped");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"socket", required_argument, NULL, 's'},
	    {"root", required_argument, NULL, 'r'},
	    {"state", required_argument, NULL, 'S'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"cgroup-driver", required_argument, NULL, 'g'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 'h'},
	    {},
	};
	struct srv_flags flags = {0};
	int o;
	while ((o = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'c':
			flags.config = optarg;
			break;
		case 's':
			flags.socket = optarg;
			break;
		case 'r':
			flags.root = optarg;
			break;
		case 'S':
			flags.state = optarg;
			break;
		case 'l':
			flags.log_level = optarg;
			break;
		case 'g':
			flags.cgroup_driver = optarg;
			break;
		case 'V':
			printf("huskd %s (CRI v1)\n", HUSK_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	bool print_config = false;
	if (optind < argc) {
		if (!streq(argv[optind], "config") || optind + 1 < argc) {
			fprintf(stderr, "huskd: unknown command '%s'\n", argv[optind]);
			usage(stderr);
			return 2;
		}
		print_config = true;
	}

	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(srv_config_freep) struct srv_config *config = NULL;
	if (srv_config_load(&flags, &config, &err) < 0) {
		fprintf(stderr, "huskd: %s\n", err.msg);
		return 1;
	}
	if (print_config) {
		_cleanup_free_ char *json = srv_config_to_json(config, true);
		printf("%s\n", json);
		/* Beside the JSON, so a file written from stdout keeps "auto". */
		if (streq(config->cgroup_driver, "auto"))
			fprintf(stderr, "huskd: cgroup_driver \"auto\" is \"%s\" on this host\n",
				config->cgroup_driver_used);
		return 0;
	}
	log_set_level(log_level_parse(config->log_level));
	/* glibc makes up to 8 arenas per core for a pool of up to max_workers
	 * threads; memory freed in one is not reused by the others, so RSS
	 * after a burst stays high. A few arenas are enough for huskd. A
	 * fixed mmap threshold keeps big messages out of the arenas: glibc
	 * would raise it (and the trim threshold to twice that) after the
	 * first free of one, and then keep up to 32 MiB at the top of each
	 * arena, where malloc_trim does not reach. The trim threshold is
	 * raised from 128 KiB to 2 MiB, above what a List reply at 1000
	 * objects uses: else each such call gave its memory back on the way
	 * out and faulted it in again on the next (a third of ListContainers
	 * at 1000). At most that stays at the top of an arena. */
	mallopt(M_ARENA_MAX, 4);
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	mallopt(M_TRIM_THRESHOLD, 2 << 20);
	if (svc_journal_wanted())
		svc_journal_enable();
	return serve(config);
}
