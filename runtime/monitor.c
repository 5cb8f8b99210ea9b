/* The exit monitor: container exits reach huskd as events. Each running
 * container has an inotify watch on its shim's directory (the shim renames
 * the "exit" file into it) and a pidfd of its shim (a shim killed with
 * SIGKILL writes nothing). One thread waits on both with epoll and records
 * the exit; nothing wakes per container while containers run. The watches
 * are found by container id, inotify watch and epoll tag through hash
 * indexes, so neither a start nor an exit walks the others. */
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

/* epoll tags below TAG_FIRST are fds of the monitor itself, not entries. */
enum { TAG_INOTIFY = 1, TAG_WAKE = 2, TAG_FIRST = 16 };

/* One container's watch, under monitor_lock. */
struct rt_watch {
	char *id;
	int wd;	   /* inotify watch of the shim directory, -1 when none */
	int pidfd; /* the shim's pidfd, -1 when none */
	/* The epoll tag of its pidfd: a number never reused, not the
	 * pointer, since an event may come for an entry another thread has
	 * freed meanwhile. */
	uint64_t tag;
	/* In rt->mon_ids; in rt->mon_wds while wd >= 0; in rt->mon_tags. */
	struct hindex_node by_id, by_wd, by_tag;
	/* An exit to record (seen by a thread other than the monitor): in
	 * the list at rt->mon_pending while set. */
	bool pending;
	struct rt_watch *pending_next, **pending_pprev;
};

static uint64_t wd_hash(int wd)
{
	return hindex_hash_more(HINDEX_HASH_START, &wd, sizeof(wd));
}

static uint64_t tag_hash(uint64_t tag)
{
	return hindex_hash_more(HINDEX_HASH_START, &tag, sizeof(tag));
}

static void watch_set_pending(struct rt *rt, struct rt_watch *w)
{
	if (w->pending)
		return;
	w->pending = true;
	w->pending_next = rt->mon_pending;
	if (w->pending_next)
		w->pending_next->pending_pprev = &w->pending_next;
	w->pending_pprev = &rt->mon_pending;
	rt->mon_pending = w;
}

/* Into the indexes (monitor_lock held), pending or not. */
static void watch_link(struct rt *rt, struct rt_watch *w)
{
	hindex_add(&rt->mon_ids, &w->by_id, hindex_hash(w->id));
	if (w->wd >= 0)
		hindex_add(&rt->mon_wds, &w->by_wd, wd_hash(w->wd));
	hindex_add(&rt->mon_tags, &w->by_tag, tag_hash(w->tag));
	if (w->pending) {
		w->pending = false;
		watch_set_pending(rt, w);
	}
}

static void watch_unlink(struct rt *rt, struct rt_watch *w)
{
	hindex_remove(&rt->mon_ids, &w->by_id);
	hindex_remove(&rt->mon_wds, &w->by_wd);
	hindex_remove(&rt->mon_tags, &w->by_tag);
	if (w->pending_pprev) {
		*w->pending_pprev = w->pending_next;
		if (w->pending_next)
			w->pending_next->pending_pprev = w->pending_pprev;
		w->pending_pprev = NULL;
	}
}

static struct rt_watch *watch_by_wd(struct rt *rt, int wd)
{
	for (struct hindex_node *n = hindex_find(&rt->mon_wds, wd_hash(wd)); n;
	     n = hindex_find_next(n)) {
		struct rt_watch *w = hindex_entry(n, struct rt_watch, by_wd);
		if (w->wd == wd)
			return w;
	}
	return NULL;
}

static struct rt_watch *watch_by_tag(struct rt *rt, uint64_t tag)
{
	for (struct hindex_node *n = hindex_find(&rt->mon_tags, tag_hash(tag)); n;
	     n = hindex_find_next(n)) {
		struct rt_watch *w = hindex_entry(n, struct rt_watch, by_tag);
		if (w->tag == tag)
			return w;
	}
	return NULL;
}

/* Parked: held as long as the container runs, kept out of the clones. */
static int pidfd_open_(pid_t pid)
{
	return proc_fd_park((int)syscall(SYS_pidfd_open, pid, 0));
}

/* Free w, unlinked; keep_wd is a watch descriptor not to remove (-1:
 * none). */
static void watch_free(struct rt *rt, struct rt_watch *w, int keep_wd)
{
	if (w->wd >= 0 && w->wd != keep_wd)
		inotify_rm_watch(rt->mon_inotify, w->wd);
	if (w->pidfd >= 0) {
		epoll_ctl(rt->mon_epoll, EPOLL_CTL_DEL, w->pidfd, NULL);
		close(w->pidfd);
	}
	free(w->id);
	free(w);
}

/* Unlink and free every entry of id (monitor_lock held). keep_wd as for
 * watch_free: a new watch of the same directory has the same descriptor
 * (inotify_add_watch), which removing the old one would remove too. */
static void watch_drop_locked(struct rt *rt, const char *id, int keep_wd)
{
	for (struct hindex_node *n = hindex_find(&rt->mon_ids, hindex_hash(id)), *nx; n; n = nx) {
		nx = hindex_find_next(n);
		struct rt_watch *w = hindex_entry(n, struct rt_watch, by_id);
		if (streq(w->id, id)) {
			watch_unlink(rt, w);
			watch_free(rt, w, keep_wd);
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
	watch_drop_locked(rt, id, -1);
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
	watch_drop_locked(rt, id, w->wd);
	if (rt->mon_next_tag < TAG_FIRST)
		rt->mon_next_tag = TAG_FIRST;
	w->tag = rt->mon_next_tag++;
	if (w->pidfd >= 0) {
		struct epoll_event ev = {.events = EPOLLIN, .data.u64 = w->tag};
		if (epoll_ctl(rt->mon_epoll, EPOLL_CTL_ADD, w->pidfd, &ev) < 0) {
			close(w->pidfd);
			w->pidfd = -1;
		}
	}
	bool pending = w->pending;
	watch_link(rt, w);
	pthread_mutex_unlock(&rt->monitor_lock);
	/* An exit written before the watch existed has no event of its own.
	 * w may be gone already (an exit seen, another watch of id): by id
	 * from here on. */
	struct ctr_exit ex;
	if (pending || ctr_shim_read_exit(dir, &ex, NULL) == 0) {
		pthread_mutex_lock(&rt->monitor_lock);
		for (struct hindex_node *n = hindex_find(&rt->mon_ids, hindex_hash(id)); n;
		     n = hindex_find_next(n)) {
			struct rt_watch *x = hindex_entry(n, struct rt_watch, by_id);
			if (streq(x->id, id))
				watch_set_pending(rt, x);
		}
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
			struct rt_watch *w = watch_by_wd(rt, ev->wd);
			if (w && (ev->mask & IN_IGNORED)) {
				/* the directory is gone */
				hindex_remove(&rt->mon_wds, &w->by_wd);
				w->wd = -1;
			} else if (w) {
				id = xstrdup(w->id);
			}
			pthread_mutex_unlock(&rt->monitor_lock);
			if (id)
				exit_seen(rt, id);
		}
	}
}

/* The entry whose shim's pidfd fired (tag; 0: none), if it is still
 * there, then those whose exit another thread saw. */
static void handle_marked(struct rt *rt, uint64_t fired)
{
	for (;;) {
		_cleanup_free_ char *id = NULL;
		pthread_mutex_lock(&rt->monitor_lock);
		struct rt_watch *w = fired ? watch_by_tag(rt, fired) : NULL;
		if (!w)
			w = rt->mon_pending;
		if (w)
			id = xstrdup(w->id);
		pthread_mutex_unlock(&rt->monitor_lock);
		if (!id)
			return;
		fired = 0;
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
			uint64_t tag = evs[i].data.u64;
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
				handle_marked(rt, 0);
			} else {
				/* A shim's pidfd: the shim exited; its exit file, if it
				 * wrote one, is there now. */
				handle_marked(rt, tag);
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
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = TAG_INOTIFY};
	struct epoll_event wake = {.events = EPOLLIN, .data.u64 = TAG_WAKE};
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
	for (struct hindex_node *n = hindex_first(&rt->mon_ids), *nx; n; n = nx) {
		nx = hindex_next(&rt->mon_ids, n);
		struct rt_watch *w = hindex_entry(n, struct rt_watch, by_id);
		watch_unlink(rt, w);
		watch_free(rt, w, -1);
	}
	hindex_clear(&rt->mon_ids);
	hindex_clear(&rt->mon_wds);
	hindex_clear(&rt->mon_tags);
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
