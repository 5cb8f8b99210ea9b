/* Reservations and kept results of creations, by identity (see keep.h).
 * A list under one lock, its length bounded by the calls in flight plus the
 * kept results (up to RT_KEEP_MAX), with an index by id: a teardown looks up
 * and drops each pod's id, and walks of 1000 entries for that were ~1 % of
 * the machine's CPU. Lookups by key (one per creation), the bound and expiry
 * still walk the list, comparing each entry's hash of its key first. */
#include "runtime/keep.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

/* How often a waiter looks at its caller's cancel object: the server sets
 * the flag without telling anyone. */
#define KEEP_POLL_NS (50 * 1000000LL)

enum keep_state { KEEP_RESERVED, KEEP_KEPT, KEEP_REMOVING };

struct keep_entry {
	char *key, *what, *digest, *id;
	uint64_t key_hash, id_hash; /* str_hash of key and id (0: no id) */
	int kind;
	enum keep_state state;
	bool collected; /* some caller got the id */
	/* Set (atomically: the creator reads it without the lock) when a Stop
	 * or Remove asks the creation to give up. */
	struct husk_cancel abort;
	long long expires_ns;
	uint64_t seq; /* order of creation */
	/* The list, newest first; pprev points at the pointer to this entry,
	 * so that unlinking it is no walk. */
	struct keep_entry *next, **pprev;
	struct keep_entry *id_next; /* its bucket of the id index */
};

struct keep {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* any entry changed state, or stop */
	struct keep_entry *head;
	/* The entries that have an id, chained in buckets by id_hash, each
	 * bucket newest first as the list is: find_id returns the entry a walk
	 * of the list would, also when entries share an id. At most one entry
	 * per bucket on average (ids_n <= ids_cap, a power of two or 0). */
	struct keep_entry **ids;
	size_t ids_cap, ids_n;
	uint64_t seq; /* of the last entry made */
	long long period_ns;
	size_t max;
	size_t waiters;
	bool stopping;
};

struct keep *keep_new(long long period_ns, size_t max)
{
	struct keep *k = xnew(struct keep, 1);
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->cond, &ca);
	pthread_condattr_destroy(&ca);
	k->period_ns = period_ns;
	k->max = max ? max : 1;
	return k;
}

static void entry_free(struct keep_entry *e)
{
	free(e->key);
	free(e->what);
	free(e->digest);
	free(e->id);
	free(e);
}

void keep_free(struct keep *k)
{
	if (!k)
		return;
	while (k->head) {
		struct keep_entry *e = k->head;
		k->head = e->next;
		entry_free(e);
	}
	free(k->ids);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
	free(k);
}

/* FNV-1a, 64 bits. */
static uint64_t str_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static size_t id_bucket(const struct keep *k, uint64_t h)
{
	return (size_t)(h ^ (h >> 32)) & (k->ids_cap - 1);
}

/* Into its bucket, after the entries newer than it. */
static void index_link(struct keep *k, struct keep_entry *e)
{
	struct keep_entry **p = &k->ids[id_bucket(k, e->id_hash)];
	while (*p && (*p)->seq > e->seq)
		p = &(*p)->id_next;
	e->id_next = *p;
	*p = e;
}

static void index_unlink(struct keep *k, struct keep_entry *e)
{
	for (struct keep_entry **p = &k->ids[id_bucket(k, e->id_hash)]; *p; p = &(*p)->id_next)
		if (*p == e) {
			*p = e->id_next;
			e->id_next = NULL;
			k->ids_n--;
			return;
		}
}

static void index_add(struct keep *k, struct keep_entry *e)
{
	if (k->ids_n >= k->ids_cap) {
		struct keep_entry **old = k->ids;
		size_t old_cap = k->ids_cap;
		k->ids_cap = old_cap ? 2 * old_cap : 64;
		k->ids = xnew(struct keep_entry *, k->ids_cap);
		for (size_t i = 0; i < old_cap; i++)
			while (old[i]) {
				struct keep_entry *m = old[i];
				old[i] = m->id_next;
				index_link(k, m);
			}
		free(old);
	}
	index_link(k, e);
	k->ids_n++;
}

static void entry_set_id(struct keep *k, struct keep_entry *e, const char *id)
{
	/* keep_end mostly repeats the id keep_set_id gave. */
	if (e->id && streq(e->id, id))
		return;
	if (e->id)
		index_unlink(k, e);
	free(e->id);
	e->id = xstrdup(id);
	e->id_hash = str_hash(id);
	index_add(k, e);
}

static void unlink_entry(struct keep *k, struct keep_entry *e)
{
	*e->pprev = e->next;
	if (e->next)
		e->next->pprev = e->pprev;
	if (e->id)
		index_unlink(k, e);
	entry_free(e);
	pthread_cond_broadcast(&k->cond);
}

static struct keep_entry *find_key(struct keep *k, const char *key)
{
	uint64_t h = str_hash(key);
	for (struct keep_entry *e = k->head; e; e = e->next)
		if (e->key_hash == h && streq(e->key, key))
			return e;
	return NULL;
}

static struct keep_entry *find_id(struct keep *k, const char *id, enum keep_state state)
{
	if (!k->ids_n)
		return NULL;
	uint64_t h = str_hash(id);
	for (struct keep_entry *e = k->ids[id_bucket(k, h)]; e; e = e->id_next)
		if (e->state == state && e->id_hash == h && streq(e->id, id))
			return e;
	return NULL;
}

static struct timespec mono_ts(long long ns)
{
	return (struct timespec){ns / 1000000000LL, ns % 1000000000LL};
}

/* One step of a wait on the store (lock held): until something changes,
 * or at most KEEP_POLL_NS. Fails once the caller has gone. */
static int wait_step(struct keep *k, const char *what, const struct husk_cancel *cancel,
		     struct husk_error *err)
{
	if (husk_cancelled(cancel)) {
		bool flag = __atomic_load_n(&cancel->cancelled, __ATOMIC_ACQUIRE);
		return husk_error_set(err, flag ? ECANCELED : ETIMEDOUT,
				      "%s: the call that creates it is still running; %s while "
				      "waiting for it",
				      what, flag ? "cancelled" : "deadline exceeded");
	}
	long long until = now_mono_ns() + KEEP_POLL_NS;
	if (cancel && cancel->deadline_ns > 0 && cancel->deadline_ns < until)
		until = cancel->deadline_ns;
	struct timespec ts = mono_ts(until);
	k->waiters++;
	pthread_cond_timedwait(&k->cond, &k->lock, &ts);
	k->waiters--;
	return 0;
}

/* Beyond max kept results, the oldest one's keep period ends now. */
static void bound_locked(struct keep *k)
{
	size_t n = 0;
	struct keep_entry *oldest = NULL;
	for (struct keep_entry *e = k->head; e; e = e->next) {
		if (e->state != KEEP_KEPT || e->expires_ns == 0)
			continue;
		n++;
		if (!oldest || e->expires_ns < oldest->expires_ns)
			oldest = e;
	}
	if (n > k->max && oldest) {
		oldest->expires_ns = 0;
		pthread_cond_broadcast(&k->cond);
	}
}

int keep_begin(struct keep *k, const char *key, const char *what, const char *digest, int kind,
	       const struct husk_cancel *cancel, struct keep_entry **ret_entry, char **ret_id,
	       struct husk_error *err)
{
	pthread_mutex_lock(&k->lock);
	int r = 0;
	bool waited = false;
	for (;;) {
		struct keep_entry *e = find_key(k, key);
		if (!e) {
			e = xnew(struct keep_entry, 1);
			e->key = xstrdup(key);
			e->key_hash = str_hash(key);
			e->what = xstrdup(what);
			e->digest = xstrdup(digest ? digest : "");
			e->kind = kind;
			e->state = KEEP_RESERVED;
			e->seq = ++k->seq;
			e->next = k->head;
			if (e->next)
				e->next->pprev = &e->next;
			e->pprev = &k->head;
			k->head = e;
			*ret_entry = e;
			*ret_id = NULL;
			break;
		}
		if (!streq(e->digest, digest ? digest : "")) {
			if (e->state == KEEP_RESERVED)
				r = husk_error_set(err, EEXIST,
						   "%s is being created by an earlier call "
						   "with a different config",
						   what);
			else
				r = husk_error_set(err, EEXIST,
						   "%s already exists as '%s', created "
						   "with a different config",
						   what, e->id);
			break;
		}
		if (e->state == KEEP_KEPT && e->collected && !waited) {
			r = husk_error_set(err, EEXIST, "%s already exists as '%s'", what, e->id);
			break;
		}
		if (e->state == KEEP_KEPT) {
			if (!husk_cancelled(cancel))
				e->collected = true;
			*ret_entry = NULL;
			*ret_id = xstrdup(e->id);
			break;
		}
		waited = true;
		if ((r = wait_step(k, what, cancel, err)) < 0)
			break;
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

void keep_set_id(struct keep *k, struct keep_entry *e, const char *id)
{
	pthread_mutex_lock(&k->lock);
	entry_set_id(k, e, id);
	pthread_mutex_unlock(&k->lock);
}

bool keep_aborted(struct keep *k _unused_, const struct keep_entry *e)
{
	return husk_cancelled(&e->abort);
}

const struct husk_cancel *keep_abort_cancel(const struct keep_entry *e)
{
	return &e->abort;
}

void keep_end(struct keep *k, struct keep_entry *e, const char *id, bool collected)
{
	pthread_mutex_lock(&k->lock);
	if (!id) {
		unlink_entry(k, e);
	} else {
		entry_set_id(k, e, id);
		e->state = KEEP_KEPT;
		e->collected = collected;
		e->expires_ns = now_mono_ns() + k->period_ns;
		bound_locked(k);
		pthread_cond_broadcast(&k->cond);
	}
	pthread_mutex_unlock(&k->lock);
}

int keep_abort_id(struct keep *k, const char *id, const struct husk_cancel *cancel,
		  struct husk_error *err)
{
	pthread_mutex_lock(&k->lock);
	int r = 0;
	struct keep_entry *e;
	while ((e = find_id(k, id, KEEP_RESERVED))) {
		__atomic_store_n(&e->abort.cancelled, true, __ATOMIC_RELEASE);
		r = 1;
		int w = wait_step(k, e->what, cancel, err);
		if (w < 0) {
			r = w;
			break;
		}
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

void keep_forget_id(struct keep *k, const char *id)
{
	pthread_mutex_lock(&k->lock);
	struct keep_entry *e = find_id(k, id, KEEP_KEPT);
	if (e)
		unlink_entry(k, e);
	pthread_mutex_unlock(&k->lock);
}

void keep_collect_id(struct keep *k, const char *id)
{
	pthread_mutex_lock(&k->lock);
	struct keep_entry *e = find_id(k, id, KEEP_KEPT);
	if (e)
		e->collected = true;
	pthread_mutex_unlock(&k->lock);
}

int keep_next_expired(struct keep *k, char **ret_id, int *ret_kind, char **ret_what)
{
	pthread_mutex_lock(&k->lock);
	int r = 0;
	while (!k->stopping) {
		long long now = now_mono_ns(), next = 0;
		struct keep_entry *due = NULL;
		for (struct keep_entry *e = k->head, *nx; e; e = nx) {
			nx = e->next;
			if (e->state != KEEP_KEPT)
				continue;
			if (e->expires_ns > now) {
				if (!next || e->expires_ns < next)
					next = e->expires_ns;
				continue;
			}
			if (e->collected) {
				unlink_entry(k, e);
				continue;
			}
			due = e;
			break;
		}
		if (due) {
			due->state = KEEP_REMOVING;
			*ret_id = xstrdup(due->id);
			*ret_kind = due->kind;
			*ret_what = xstrdup(due->what);
			r = 1;
			break;
		}
		if (next) {
			struct timespec ts = mono_ts(next);
			pthread_cond_timedwait(&k->cond, &k->lock, &ts);
		} else {
			pthread_cond_wait(&k->cond, &k->lock);
		}
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

void keep_removed(struct keep *k, const char *id)
{
	pthread_mutex_lock(&k->lock);
	struct keep_entry *e = find_id(k, id, KEEP_REMOVING);
	if (e)
		unlink_entry(k, e);
	pthread_mutex_unlock(&k->lock);
}

void keep_stop(struct keep *k)
{
	pthread_mutex_lock(&k->lock);
	k->stopping = true;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
}

size_t keep_waiters(struct keep *k)
{
	pthread_mutex_lock(&k->lock);
	size_t n = k->waiters;
	pthread_mutex_unlock(&k->lock);
	return n;
}

size_t keep_count(struct keep *k)
{
	pthread_mutex_lock(&k->lock);
	size_t n = 0;
	for (struct keep_entry *e = k->head; e; e = e->next)
		n++;
	pthread_mutex_unlock(&k->lock);
	return n;
}
