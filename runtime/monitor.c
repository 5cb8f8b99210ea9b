/* The exit monitor: container exits reach huskd as events. Each running
 * container has an inotify watch on its shim's directory (the shim renames
 * the "exit" file into it) and a pidfd of its shim (a shim killed with
 * SIGKILL writes nothing). One thread waits on both with epoll and records
 * the exit; nothing wakes per container while containers run. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "common/proc.h"
#include "runtime/runtime-internal.h"
#include "runtime/shim_client.h"

/* epoll tags below this are fds of the monitor itself, not entries. */
enum { TAG_INOTIFY = 1, TAG_WAKE = 2 };

struct rt_watch {
	char *id;
	int wd;	      /* inotify watch of the shim directory, -1 when none */
	int pidfd;    /* the shim's pidfd, -1 when none */
	bool pending; /* an exit to record (seen by a thread other than the monitor) */
	struct rt_watch *next;
};

/* Parked: held as long as the container runs, kept out of the clones. */
static int pidfd_open_(pid_t pid)
{
	return proc_fd_park((int)syscall(SYS_pidfd_open, pid, 0));
}

static void watch_free(struct rt *rt, struct rt_watch *w)
{
	if (w->wd >= 0)
		inotify_rm_watch(rt->mon_inotify, w->wd);
	if (w->pidfd >= 0) {
		epoll_ctl(rt->mon_epoll, EPOLL_CTL_DEL, w->pidfd, NULL);
		close(w->pidfd);
	}
	free(w->id);
	free(w);
}

/* Unlink and free every entry of id (monitor_lock held). */
static void watch_drop_locked(struct rt *rt, const char *id)
{
	for (struct rt_watch **p = &rt->mon_watches; *p;) {
		struct rt_watch *w = *p;
		if (streq(w->id, id)) {
			*p = w->next;
			watch_free(rt, w);
			rt->mon_count--;
		} else {
			p = &w->next;
		}
	}
}

/* The exit of id was seen: wake the waiters, then record it. The record is
 * written by a conditional update (rt_ctr_refresh records an exit once), so
 * the monitor never waits on a container's lock that a stop may hold. */
static void exit_seen(struct rt *rt, const char *id_in)
{
	_cleanup_free_ char *id = xstrdup(id_in);
	pthread_mutex_lock(&rt->monitor_lock);
	rt->mon_exits++;
	pthread_cond_broadcast(&rt->monitor_cond);
	watch_drop_locked(rt, id);
	pthread_mutex_unlock(&rt->monitor_lock);
	rt->mon_on_exit(rt, id);
}

void rt_monitor_watch(struct rt *rt, const char *id)
{
	_cleanup_free_ char *dir = xasprintf("%s/%s", rt->containers_dir, id);
	struct rt_watch *w = xnew(struct rt_watch, 1);
	w->id = xstrdup(id);
	w->pidfd = -1;
	w->wd = inotify_add_watch(rt->mon_inotify, dir, IN_MOVED_TO | IN_ONLYDIR);
	if (w->wd < 0)
		log_warn("container=%s: watch '%s': %s", id, dir, strerror(errno));
	struct ctr_pidinfo sp;
	if (ctr_shim_read_shim_pid(dir, &sp, NULL) == 0) {
		w->pidfd = pidfd_open_(sp.pid);
		/* The pid may have been reused since the file was written. */
		if (w->pidfd >= 0 && !proc_alive(sp.pid, sp.start_time)) {
			close(w->pidfd);
			w->pidfd = -1;
			w->pending = true;
		} else if (w->pidfd < 0) {
			w->pending = true; /* the shim is gone already */
		}
	}
	pthread_mutex_lock(&rt->monitor_lock);
	watch_drop_locked(rt, id);
	if (w->pidfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
		if (epoll_ctl(rt->mon_epoll, EPOLL_CTL_ADD, w->pidfd, &ev) < 0) {
			close(w->pidfd);
			w->pidfd = -1;
		}
	}
	w->next = rt->mon_watches;
	rt->mon_watches = w;
	rt->mon_count++;
	pthread_mutex_unlock(&rt->monitor_lock);
	/* An exit written before the watch existed has no event of its own. */
	struct ctr_exit ex;
	if (w->pending || ctr_shim_read_exit(dir, &ex, NULL) == 0) {
		pthread_mutex_lock(&rt->monitor_lock);
		w->pending = true;
		pthread_mutex_unlock(&rt->monitor_lock);
		uint64_t one = 1;
		if (write(rt->mon_wake, &one, sizeof(one)) < 0)
			log_warn("monitor: wake: %s", strerror(errno));
	}
}

static void handle_inotify(struct rt *rt)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(rt->mon_inotify, buf, sizeof(buf));
		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			p += sizeof(*ev) + ev->len;
			bool is_exit = ev->len && streq(ev->name, "exit");
			if (!is_exit && !(ev->mask & IN_IGNORED))
				continue;
			_cleanup_free_ char *id = NULL;
			pthread_mutex_lock(&rt->monitor_lock);
			for (struct rt_watch *w = rt->mon_watches; w; w = w->next) {
				if (w->wd == ev->wd) {
					if (ev->mask & IN_IGNORED)
						w->wd = -1; /* the directory is gone */
					else
						id = xstrdup(w->id);
					break;
				}
			}
			pthread_mutex_unlock(&rt->monitor_lock);
			if (id)
				exit_seen(rt, id);
		}
	}
}

/* Entries whose exit another thread saw, or whose shim's pidfd fired. */
static void handle_marked(struct rt *rt, const struct rt_watch *fired)
{
	for (;;) {
		_cleanup_free_ char *id = NULL;
		pthread_mutex_lock(&rt->monitor_lock);
		for (struct rt_watch *w = rt->mon_watches; w; w = w->next) {
			if (w->pending || w == fired) {
				id = xstrdup(w->id);
				break;
			}
		}
		pthread_mutex_unlock(&rt->monitor_lock);
		if (!id)
			return;
		fired = NULL;
		exit_seen(rt, id);
	}
}

static void *monitor_main(void *arg)
{
	struct rt *rt = arg;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(rt->mon_epoll, evs, 64, -1);
		if (n < 0 && errno != EINTR) {
			log_error("monitor: epoll_wait: %s", strerror(errno));
			return NULL;
		}
		for (int i = 0; i < n; i++) {
			uintptr_t tag = (uintptr_t)evs[i].data.ptr;
			if (tag == TAG_INOTIFY) {
				handle_inotify(rt);
			} else if (tag == TAG_WAKE) {
				uint64_t v;
				if (read(rt->mon_wake, &v, sizeof(v)) < 0 && errno != EAGAIN)
					log_warn("monitor: read wake: %s", strerror(errno));
				pthread_mutex_lock(&rt->monitor_lock);
				bool stop = rt->stopping;
				pthread_mutex_unlock(&rt->monitor_lock);
				if (stop)
					return NULL;
				handle_marked(rt, NULL);
			} else {
				/* A shim's pidfd: the shim exited; its exit file, if it
				 * wrote one, is there now. The entry is still listed:
				 * only this thread frees entries with a pidfd in epoll. */
				handle_marked(rt, (const struct rt_watch *)evs[i].data.ptr);
			}
		}
	}
}

int rt_monitor_start(struct rt *rt, void (*on_exit)(struct rt *rt, const char *id),
		     struct husk_error *err)
{
	rt->mon_on_exit = on_exit;
	/* Each running container holds a pidfd here: the soft fd limit (1024
	 * by default) would cap huskd near a thousand containers. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("monitor: raise the open file limit: %s", strerror(errno));
	}
	rt->mon_epoll = epoll_create1(EPOLL_CLOEXEC);
	rt->mon_inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	rt->mon_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (rt->mon_epoll < 0 || rt->mon_inotify < 0 || rt->mon_wake < 0)
		return husk_error_errno(err, errno, "start the container monitor");
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = (void *)(uintptr_t)TAG_INOTIFY};
	struct epoll_event wake = {.events = EPOLLIN, .data.ptr = (void *)(uintptr_t)TAG_WAKE};
	if (epoll_ctl(rt->mon_epoll, EPOLL_CTL_ADD, rt->mon_inotify, &ev) < 0 ||
	    epoll_ctl(rt->mon_epoll, EPOLL_CTL_ADD, rt->mon_wake, &wake) < 0)
		return husk_error_errno(err, errno, "start the container monitor");
	/* Containers that ran on while huskd was down. */
	struct ctr_filter f = {.has_state = true, .state = CTR_STATE_RUNNING};
	struct ctr_record **v = NULL;
	size_t n = 0;
	if (state_ctr_list(rt->store, &f, &v, &n, err) < 0)
		return -err->code;
	for (size_t i = 0; i < n; i++)
		rt_monitor_watch(rt, v[i]->id);
	ctr_records_free(v, n);
	int r = pthread_create(&rt->monitor, NULL, monitor_main, rt);
	if (r != 0)
		return husk_error_errno(err, r, "start the container monitor");
	rt->monitor_running = true;
	return 0;
}

void rt_monitor_stop(struct rt *rt)
{
	if (rt->monitor_running) {
		pthread_mutex_lock(&rt->monitor_lock);
		rt->stopping = true;
		pthread_cond_broadcast(&rt->monitor_cond);
		pthread_mutex_unlock(&rt->monitor_lock);
		uint64_t one = 1;
		if (write(rt->mon_wake, &one, sizeof(one)) < 0)
			log_warn("monitor: wake: %s", strerror(errno));
		pthread_join(rt->monitor, NULL);
		rt->monitor_running = false;
	}
	while (rt->mon_watches) {
		struct rt_watch *w = rt->mon_watches;
		rt->mon_watches = w->next;
		watch_free(rt, w);
	}
	rt->mon_count = 0;
	int *fds[] = {&rt->mon_epoll, &rt->mon_inotify, &rt->mon_wake};
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

int rt_monitor_wait_exit(struct rt *rt, const char *dir, long long timeout_ns, struct ctr_exit *ret,
			 struct husk_error *err)
{
	long long deadline = now_mono_ns() + timeout_ns;
	for (;;) {
		pthread_mutex_lock(&rt->monitor_lock);
		unsigned long long seen = rt->mon_exits;
		pthread_mutex_unlock(&rt->monitor_lock);
		struct husk_error e = HUSK_ERROR_INIT;
		if (ctr_shim_read_exit(dir, ret, &e) == 0)
			return 0;
		if (e.code != ENOENT)
			return husk_error_move(err, &e);
		husk_error_clear(&e);
		/* A shim that died (SIGKILL) never writes the file. */
		struct ctr_pidinfo sp;
		if (ctr_shim_read_shim_pid(dir, &sp, NULL) == 0 &&
		    !proc_alive(sp.pid, sp.start_time) && ctr_shim_read_exit(dir, ret, NULL) < 0)
			return husk_error_set(
			    err, EIO, "husk-shim of '%s' died without recording the exit", dir);
		long long now = now_mono_ns();
		if (now >= deadline)
			return husk_error_set(err, ETIMEDOUT, "container did not exit in time");
		/* Woken by any exit the monitor sees; the bound of a second only
		 * covers a container the monitor does not watch. */
		long long until = deadline < now + 1000000000LL ? deadline : now + 1000000000LL;
		struct timespec ts = {until / 1000000000LL, until % 1000000000LL};
		pthread_mutex_lock(&rt->monitor_lock);
		while (rt->mon_exits == seen && !rt->stopping) {
			if (pthread_cond_timedwait(&rt->monitor_cond, &rt->monitor_lock, &ts) ==
			    ETIMEDOUT)
				break;
		}
		pthread_mutex_unlock(&rt->monitor_lock);
	}
}
