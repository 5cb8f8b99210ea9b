/* Reservations and kept results of creations, by identity (see keep.h).
 * Entries under one lock, their number bounded by the calls in flight plus
 * the kept results (up to RT_KEEP_MAX), each found through a hash index of
 * its key (one lookup per creation) and of its id (one per teardown): walks
 * of 1000 entries for those, for the bound and for expiry were ~4 % of
 * huskd's CPU starting 1000 pods. Kept results sit in a list in the order
 * their keep periods end, so the bound and the remover look at one end. */
#include "runtime/keep.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "common/hindex.h"

/* How often a waiter looks at its caller's cancel object: the server sets
 * the flag without telling anyone. */
#define KEEP_POLL_NS (50 * 1000000LL)

enum keep_state { KEEP_RESERVED, KEEP_KEPT, KEEP_REMOVING };

struct keep_entry {
	char *key, *what, *digest, *id;
	int kind;
	enum keep_state state;
	bool collected; /* some caller got the id */
	/* Set (atomically: the creator reads it without the lock) when a Stop
	 * or Remove asks the creation to give up. */
	struct husk_cancel abort;
	/* KEPT: when the keep period ends; 0 once the bound ended it. */
	long long expires_ns;
	uint64_t seq; /* order of creation */
	/* In k->keys, and in k->ids while id is set. */
	struct hindex_node by_key, by_id;
	/* KEPT: the expiry list; pprev points at the pointer to this entry,
	 * so that unlinking it is no walk. */
	struct keep_entry *exp_next, **exp_pprev;
};

struct keep {
	pthread_mutex_t lock;
	/* For creators and aborts waiting on an entry: one changed state or
	 * went, or stop. */
	pthread_cond_t cond;
	/* For the remover alone: its next deadline came earlier, or stop.
	 * Apart from cond so that neither wakes the other's waiters. */
	pthread_cond_t remover_cond;
	struct hindex keys; /* every entry, one per key */
	/* The entries that have an id; several may share one (find_id picks
	 * the newest, as a walk of every entry newest first did). */
	struct hindex ids;
	/* The KEPT entries by expires_ns: first those whose period the bound
	 * ended (0), in the order it ended them, then the rest in the order
	 * keep_end made them, which is their order of expiry (the period is
	 * constant and keep_end reads the clock under the lock). live is the
	 * first of the rest, n_live their number: what the bound counts. */
	struct keep_entry *exp_head, **exp_tail;
	struct keep_entry *live;
	size_t n_live;
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
	pthread_cond_init(&k->remover_cond, &ca);
	pthread_condattr_destroy(&ca);
	k->exp_tail = &k->exp_head;
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
	for (struct hindex_node *n = hindex_first(&k->keys), *nx; n; n = nx) {
		nx = hindex_next(&k->keys, n);
		entry_free(hindex_entry(n, struct keep_entry, by_key));
	}
	hindex_clear(&k->keys);
	hindex_clear(&k->ids);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
	pthread_cond_destroy(&k->remover_cond);
	free(k);
}

static void entry_set_id(struct keep *k, struct keep_entry *e, const char *id)
{
	/* keep_end mostly repeats the id keep_set_id gave. */
	if (e->id && streq(e->id, id))
		return;
	hindex_remove(&k->ids, &e->by_id);
	free(e->id);
	e->id = xstrdup(id);
	hindex_add(&k->ids, &e->by_id, hindex_hash(id));
}

static void wake_creators(struct keep *k)
{
	if (k->waiters)
		pthread_cond_broadcast(&k->cond);
}

/* A KEPT entry into the expiry list, at its end (keep_end). */
static void exp_append(struct keep *k, struct keep_entry *e)
{
	e->exp_next = NULL;
	e->exp_pprev = k->exp_tail;
	*k->exp_tail = e;
	k->exp_tail = &e->exp_next;
	if (!k->live)
		k->live = e;
	k->n_live++;
	/* Only a first entry gives the remover a deadline it had not:
	 * behind others, this one expires after them. */
	if (k->exp_head == e)
		pthread_cond_broadcast(&k->remover_cond);
}

/* A removal makes the remover's next deadline later, never earlier: at
 * worst it wakes once for nothing. */
static void exp_unlink(struct keep *k, struct keep_entry *e)
{
	if (k->live == e)
		k->live = e->exp_next;
	if (e->expires_ns)
		k->n_live--;
	*e->exp_pprev = e->exp_next;
	if (e->exp_next)
		e->exp_next->exp_pprev = e->exp_pprev;
	else
		k->exp_tail = e->exp_pprev;
	e->exp_next = NULL;
	e->exp_pprev = NULL;
}

static void unlink_entry(struct keep *k, struct keep_entry *e)
{
	hindex_remove(&k->keys, &e->by_key);
	hindex_remove(&k->ids, &e->by_id);
	if (e->state == KEEP_KEPT)
		exp_unlink(k, e);
	entry_free(e);
	wake_creators(k);
}

static struct keep_entry *find_key(struct keep *k, const char *key)
{
	for (struct hindex_node *n = hindex_find(&k->keys, hindex_hash(key)); n;
	     n = hindex_find_next(n)) {
		struct keep_entry *e = hindex_entry(n, struct keep_entry, by_key);
		if (streq(e->key, key))
			return e;
	}
	return NULL;
}

/* The newest entry in state that names id. */
static struct keep_entry *find_id(struct keep *k, const char *id, enum keep_state state)
{
	struct keep_entry *found = NULL;
	for (struct hindex_node *n = hindex_find(&k->ids, hindex_hash(id)); n;
	     n = hindex_find_next(n)) {
		struct keep_entry *e = hindex_entry(n, struct keep_entry, by_id);
		if (e->state == state && streq(e->id, id) && (!found || e->seq > found->seq))
			found = e;
	}
	return found;
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

/* Beyond max kept results, the oldest one's keep period ends now. It is
 * the first of the live ones, and stays where it is: right after those
 * the bound ended before, it is in order with expires_ns 0. */
static void bound_locked(struct keep *k)
{
	while (k->n_live > k->max) {
		struct keep_entry *oldest = k->live;
		oldest->expires_ns = 0;
		k->live = oldest->exp_next;
		k->n_live--;
		/* Behind others the bound ended, the remover is due already. */
		if (k->exp_head == oldest)
			pthread_cond_broadcast(&k->remover_cond);
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
			e->what = xstrdup(what);
			e->digest = xstrdup(digest ? digest : "");
			e->kind = kind;
			e->state = KEEP_RESERVED;
			e->seq = ++k->seq;
			hindex_add(&k->keys, &e->by_key, hindex_hash(key));
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
		exp_append(k, e);
		bound_locked(k);
		wake_creators(k);
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
	for (;;) {
		struct keep_entry *e = k->exp_head;
		long long now = e && e->expires_ns ? now_mono_ns() : 0;
		/* Collected results past their period go even once stopping:
		 * nothing is left to do for them. */
		if (e && e->expires_ns <= now && e->collected) {
			unlink_entry(k, e);
			continue;
		}
		if (k->stopping)
			break;
		if (e && e->expires_ns <= now) {
			exp_unlink(k, e);
			e->state = KEEP_REMOVING;
			*ret_id = xstrdup(e->id);
			*ret_kind = e->kind;
			*ret_what = xstrdup(e->what);
			r = 1;
			break;
		}
		if (e) {
			struct timespec ts = mono_ts(e->expires_ns);
			pthread_cond_timedwait(&k->remover_cond, &k->lock, &ts);
		} else {
			pthread_cond_wait(&k->remover_cond, &k->lock);
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
	pthread_cond_broadcast(&k->remover_cond);
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
	size_t n = hindex_count(&k->keys);
	pthread_mutex_unlock(&k->lock);
	return n;
}
