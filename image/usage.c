/* The writable layers' usage, cached: the stats calls ask for every running
 * container's usage each time, and walking 200 upper dirs per call is what
 * made them slow. A layer is walked on its first request and then by the
 * refresh thread only, when a request finds its figure older than the
 * interval: nothing is walked for containers nobody asks about, and the
 * thread sleeps while no stats are asked for. Entries are found by id through
 * a hash index: a stats call asks for each container, a removal forgets
 * one. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "image/internal.h"

struct img_usage_entry {
	char *id;
	uint64_t bytes, inodes;
	long long at;
	long long walked_ns; /* monotonic time of the walk */
	bool queued;	     /* for the refresh thread */
	struct hindex_node node;
};

static struct img_usage_entry *find(struct img_store *s, const char *id)
{
	for (struct hindex_node *n = hindex_find(&s->usage, hindex_hash(id)); n;
	     n = hindex_find_next(n)) {
		struct img_usage_entry *e = hindex_entry(n, struct img_usage_entry, node);
		if (streq(e->id, id))
			return e;
	}
	return NULL;
}

static void drop_at(struct img_store *s, struct img_usage_entry *e)
{
	hindex_remove(&s->usage, &e->node);
	free(e->id);
	free(e);
}

void img_usage_forget(struct img_store *s, const char *id)
{
	pthread_mutex_lock(&s->usage_lock);
	struct img_usage_entry *e = find(s, id);
	if (e)
		drop_at(s, e);
	pthread_mutex_unlock(&s->usage_lock);
}

static char *upper_of(struct img_store *s, const char *id)
{
	return xasprintf("%s/%s/upper", s->containers, id);
}

int img_rootfs_usage(struct img_store *s, const char *id, struct img_fs_usage *ret,
		     struct husk_error *err)
{
	if (isempty(id) || strchr(id, '/') || id[0] == '.')
		return husk_error_set(err, EINVAL, "rootfs usage: bad container id '%s'",
				      id ? id : "");
	_cleanup_free_ char *upper = upper_of(s, id);
	pthread_mutex_lock(&s->usage_lock);
	struct img_usage_entry *e = find(s, id);
	if (e) {
		*ret = (struct img_fs_usage){xstrdup(upper), e->bytes, e->inodes, e->at};
		if (!e->queued &&
		    now_mono_ns() - e->walked_ns >= s->usage_interval_ms * 1000000LL) {
			e->queued = true;
			s->usage_queued++;
			pthread_cond_signal(&s->usage_cond);
		}
		pthread_mutex_unlock(&s->usage_lock);
		return 0;
	}
	bool cache = s->usage_running;
	pthread_mutex_unlock(&s->usage_lock);
	struct img_fs_usage u = {0};
	long long walked = now_mono_ns();
	int r = img_dir_usage(upper, NULL, &u, err);
	if (r < 0)
		return r;
	if (cache) {
		pthread_mutex_lock(&s->usage_lock);
		if (!find(s, id)) {
			struct img_usage_entry *n = xnew(struct img_usage_entry, 1);
			*n = (struct img_usage_entry){xstrdup(id), u.bytes, u.inodes, u.at, walked};
			hindex_add(&s->usage, &n->node, hindex_hash(id));
		}
		pthread_mutex_unlock(&s->usage_lock);
	}
	*ret = u;
	return 0;
}

/* Walk the layers requests queued. Called and returns with usage_lock
 * held; drops it while walking. */
static void refresh_queued(struct img_store *s)
{
	_cleanup_strv_ char **ids = xnew(char *, hindex_count(&s->usage) + 1);
	size_t n = 0;
	for (struct hindex_node *x = hindex_first(&s->usage); x; x = hindex_next(&s->usage, x)) {
		struct img_usage_entry *e = hindex_entry(x, struct img_usage_entry, node);
		if (e->queued)
			ids[n++] = xstrdup(e->id);
	}
	s->usage_queued = 0;
	pthread_mutex_unlock(&s->usage_lock);
	for (size_t i = 0; ids[i]; i++) {
		_cleanup_free_ char *upper = upper_of(s, ids[i]);
		struct img_fs_usage u = {0};
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		long long walked = now_mono_ns();
		int r = img_dir_usage(upper, NULL, &u, &e);
		pthread_mutex_lock(&s->usage_lock);
		struct img_usage_entry *ent = find(s, ids[i]);
		bool stop = s->usage_stop;
		if (ent)
			ent->queued = false;
		if (ent && r == 0) {
			ent->bytes = u.bytes;
			ent->inodes = u.inodes;
			ent->at = u.at;
			ent->walked_ns = walked;
		} else if (ent && e.code == ENOENT) {
			drop_at(s, ent); /* the container went without img_rootfs_remove */
		}
		pthread_mutex_unlock(&s->usage_lock);
		img_fs_usage_clear(&u);
		if (stop)
			break;
	}
	pthread_mutex_lock(&s->usage_lock);
}

static void *refresh_main(void *arg)
{
	struct img_store *s = arg;
	pthread_mutex_lock(&s->usage_lock);
	while (!s->usage_stop) {
		/* No timer: woken by a request that found a stale figure. */
		if (!s->usage_queued) {
			pthread_cond_wait(&s->usage_cond, &s->usage_lock);
			continue;
		}
		refresh_queued(s);
	}
	pthread_mutex_unlock(&s->usage_lock);
	return NULL;
}

int img_usage_refresh_start(struct img_store *s, int interval_ms, struct husk_error *err)
{
	if (interval_ms <= 0)
		return husk_error_set(err, EINVAL, "usage refresh: interval %d ms", interval_ms);
	pthread_mutex_lock(&s->usage_lock);
	if (s->usage_running) {
		pthread_mutex_unlock(&s->usage_lock);
		return 0;
	}
	s->usage_interval_ms = interval_ms;
	s->usage_stop = false;
	/* The cond waits on CLOCK_MONOTONIC: a wall clock step must not stall
	 * or hurry the refresh. */
	pthread_cond_destroy(&s->usage_cond);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->usage_cond, &ca);
	pthread_condattr_destroy(&ca);
	int r = pthread_create(&s->usage_thread, NULL, refresh_main, s);
	if (r == 0)
		s->usage_running = true;
	pthread_mutex_unlock(&s->usage_lock);
	if (r != 0)
		return husk_error_errno(err, r, "usage refresh: start thread");
	return 0;
}

void img_usage_stop(struct img_store *s)
{
	pthread_mutex_lock(&s->usage_lock);
	bool running = s->usage_running;
	s->usage_stop = true;
	pthread_cond_broadcast(&s->usage_cond);
	pthread_mutex_unlock(&s->usage_lock);
	if (running)
		pthread_join(s->usage_thread, NULL);
	pthread_mutex_lock(&s->usage_lock);
	s->usage_running = false;
	for (struct hindex_node *x = hindex_first(&s->usage), *nx; x; x = nx) {
		nx = hindex_next(&s->usage, x);
		drop_at(s, hindex_entry(x, struct img_usage_entry, node));
	}
	hindex_clear(&s->usage);
	pthread_mutex_unlock(&s->usage_lock);
}
