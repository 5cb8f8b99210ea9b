/* The store of creations by identity (runtime/keep.c): reservations, kept
 * results handed to retries, config mismatches, waiting within a caller's
 * deadline, aborts, expiry of uncollected results, the count bound, and
 * lookups by id among thousands of entries in each state; the bound and
 * the order of expiry among thousands of results, and the remover's
 * wake-ups. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "runtime/keep.h"
#include "unit.h"

#define SEC 1000000000LL

static struct keep_entry *reserve(struct keep *k, const char *key, const char *digest)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct keep_entry *e = NULL;
	char *id = NULL;
	int r = keep_begin(k, key, key, digest, 7, NULL, &e, &id, &err);
	CU_ASSERT_EQUAL(r, 0);
	CU_ASSERT_PTR_NOT_NULL(e);
	CU_ASSERT_PTR_NULL(id);
	husk_error_clear(&err);
	return e;
}

static void test_kept_result_goes_to_the_retry(void)
{
	struct keep *k = keep_new(60 * SEC, 16);
	struct keep_entry *e = reserve(k, "pod-a", "d1");
	keep_set_id(k, e, "id-1");
	keep_end(k, e, "id-1", false);

	struct husk_error err = HUSK_ERROR_INIT;
	struct keep_entry *e2 = NULL;
	char *id = NULL;
	CU_ASSERT_EQUAL(keep_begin(k, "pod-a", "pod 'a'", "d1", 7, NULL, &e2, &id, &err), 0);
	CU_ASSERT_PTR_NULL(e2);
	CU_ASSERT_STRING_EQUAL(id, "id-1");
	free(id);
	id = NULL;

	/* Collected now: one more call is a duplicate, as without keep. */
	CU_ASSERT_EQUAL(keep_begin(k, "pod-a", "pod 'a'", "d1", 7, NULL, &e2, &id, &err), -EEXIST);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err), "pod 'a' already exists as 'id-1'");
	CU_ASSERT_PTR_NULL(id);
	husk_error_clear(&err);

	/* Another config for the same identity is refused, naming both. */
	CU_ASSERT_EQUAL(keep_begin(k, "pod-a", "pod 'a'", "d2", 7, NULL, &e2, &id, &err), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "pod 'a' already exists as 'id-1'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "different config"));
	husk_error_clear(&err);

	/* A failed creation frees its key. */
	struct keep_entry *b = reserve(k, "pod-b", "d1");
	keep_end(k, b, NULL, false);
	CU_ASSERT_EQUAL(keep_count(k), 1);
	keep_end(k, reserve(k, "pod-b", "d9"), NULL, false);

	keep_forget_id(k, "id-1");
	CU_ASSERT_EQUAL(keep_count(k), 0);
	keep_free(k);
}

struct waiter {
	struct keep *k;
	const char *digest;
	struct husk_cancel cancel;
	int r;
	char *id;
	char *msg;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	struct husk_error err = HUSK_ERROR_INIT;
	struct keep_entry *e = NULL;
	w->r =
	    keep_begin(w->k, "ctr-a", "container 'a'", w->digest, 1, &w->cancel, &e, &w->id, &err);
	w->msg = err.msg ? xstrdup(err.msg) : NULL;
	husk_error_clear(&err);
	return NULL;
}

static void test_retry_waits_for_the_running_creation(void)
{
	struct keep *k = keep_new(60 * SEC, 16);
	struct keep_entry *e = reserve(k, "ctr-a", "d1");
	struct waiter w = {.k = k, .digest = "d1"};
	pthread_t t;
	pthread_create(&t, NULL, wait_main, &w);
	while (keep_waiters(k) == 0)
		usleep(1000);
	/* A call that came while the first ran gets the id even when the
	 * first call's caller got it too. */
	keep_set_id(k, e, "id-7");
	keep_end(k, e, "id-7", true);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(w.r, 0);
	CU_ASSERT_STRING_EQUAL(w.id, "id-7");
	free(w.id);

	/* Collected by the retry: its expiry hands nothing out. */
	keep_stop(k);
	char *id = NULL, *what = NULL;
	int kind = 0;
	CU_ASSERT_EQUAL(keep_next_expired(k, &id, &kind, &what), 0);
	keep_free(k);
}

static void test_wait_ends_at_the_callers_deadline(void)
{
	struct keep *k = keep_new(60 * SEC, 16);
	struct keep_entry *e = reserve(k, "ctr-a", "d1");
	struct waiter w = {.k = k, .digest = "d1", .cancel = {false, now_mono_ns() + SEC / 20}};
	wait_main(&w);
	CU_ASSERT_EQUAL(w.r, -ETIMEDOUT);
	CU_ASSERT_PTR_NOT_NULL(w.msg && strstr(w.msg, "still running"));
	free(w.msg);

	struct waiter c = {.k = k, .digest = "d1", .cancel = {true, 0}};
	wait_main(&c);
	CU_ASSERT_EQUAL(c.r, -ECANCELED);
	free(c.msg);

	/* A different config while it runs: refused at once. */
	struct waiter d = {.k = k, .digest = "d2"};
	wait_main(&d);
	CU_ASSERT_EQUAL(d.r, -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(d.msg && strstr(d.msg, "different config"));
	free(d.msg);
	keep_end(k, e, NULL, false);
	CU_ASSERT_EQUAL(keep_count(k), 0);
	keep_free(k);
}

struct creator {
	struct keep *k;
	struct keep_entry *e;
	bool saw_abort;
};

static void *creator_main(void *arg)
{
	struct creator *c = arg;
	while (!keep_aborted(c->k, c->e))
		usleep(1000);
	c->saw_abort = true;
	keep_end(c->k, c->e, NULL, false);
	return NULL;
}

static void test_abort_by_id(void)
{
	struct keep *k = keep_new(60 * SEC, 16);
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(keep_abort_id(k, "nope", NULL, &err), 0);
	struct creator c = {.k = k, .e = reserve(k, "pod-x", "d")};
	keep_set_id(k, c.e, "id-x");
	pthread_t t;
	pthread_create(&t, NULL, creator_main, &c);
	CU_ASSERT_EQUAL(keep_abort_id(k, "id-x", NULL, &err), 1);
	CU_ASSERT(c.saw_abort);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(keep_count(k), 0);
	keep_free(k);
}

static void test_uncollected_results_expire(void)
{
	struct keep *k = keep_new(SEC / 20, 16);
	struct keep_entry *a = reserve(k, "pod-a", "d");
	keep_end(k, a, "id-a", false); /* nobody got it */
	struct keep_entry *b = reserve(k, "pod-b", "d");
	keep_end(k, b, "id-b", true); /* its caller got it */
	char *id = NULL, *what = NULL;
	int kind = 0;
	CU_ASSERT_EQUAL(keep_next_expired(k, &id, &kind, &what), 1);
	CU_ASSERT_STRING_EQUAL(id, "id-a");
	CU_ASSERT_STRING_EQUAL(what, "pod-a");
	CU_ASSERT_EQUAL(kind, 7);

	/* While it is being removed a retry waits, then creates anew. */
	struct husk_error err = HUSK_ERROR_INIT;
	struct keep_entry *e = NULL;
	char *got = NULL;
	struct husk_cancel soon = {false, now_mono_ns() + SEC / 50};
	CU_ASSERT_EQUAL(keep_begin(k, "pod-a", "pod-a", "d", 7, &soon, &e, &got, &err), -ETIMEDOUT);
	husk_error_clear(&err);
	keep_removed(k, id);
	e = reserve(k, "pod-a", "d");
	keep_end(k, e, NULL, false);
	free(id);
	free(what);
	/* The collected one was dropped without being handed out. */
	keep_stop(k);
	CU_ASSERT_EQUAL(keep_next_expired(k, &id, &kind, &what), 0);
	CU_ASSERT_EQUAL(keep_count(k), 0);
	keep_free(k);
}

static void test_adopted_results_are_collected(void)
{
	struct keep *k = keep_new(SEC / 20, 16);
	struct keep_entry *a = reserve(k, "pod-a", "d");
	keep_end(k, a, "id-a", false);
	struct keep_entry *b = reserve(k, "pod-b", "d");
	keep_end(k, b, "id-b", false); /* expires after a */
	keep_collect_id(k, "id-a");    /* the client found and used it */
	char *id = NULL, *what = NULL;
	int kind = 0;
	CU_ASSERT_EQUAL(keep_next_expired(k, &id, &kind, &what), 1);
	CU_ASSERT_STRING_EQUAL(id, "id-b");
	keep_removed(k, id);
	free(id);
	free(what);
	keep_free(k);
}

static void test_count_is_bounded(void)
{
	struct keep *k = keep_new(3600 * SEC, 2);
	const char *keys[] = {"k1", "k2", "k3"};
	for (size_t i = 0; i < 3; i++) {
		struct keep_entry *e = reserve(k, keys[i], "d");
		_cleanup_free_ char *id = xasprintf("id-%zu", i + 1);
		keep_end(k, e, id, false);
	}
	/* The oldest ends its keep period at once. */
	char *id = NULL, *what = NULL;
	int kind = 0;
	CU_ASSERT_EQUAL(keep_next_expired(k, &id, &kind, &what), 1);
	CU_ASSERT_STRING_EQUAL(id, "id-1");
	keep_removed(k, id);
	free(id);
	free(what);
	CU_ASSERT_EQUAL(keep_count(k), 2);
	keep_free(k);
}

/* Whether keep_abort_id finds a reservation making id; the cancelled
 * caller does not wait for it to give up. */
static bool abort_finds(struct keep *k, const char *id)
{
	struct husk_cancel gone = {true, 0};
	struct husk_error err = HUSK_ERROR_INIT;
	int r = keep_abort_id(k, id, &gone, &err);
	CU_ASSERT(r == 0 || r == -ECANCELED);
	husk_error_clear(&err);
	return r == -ECANCELED;
}

/* Whether a kept result names id, seen as keep_forget_id dropping it. */
static bool forget_finds(struct keep *k, const char *id)
{
	size_t n = keep_count(k);
	keep_forget_id(k, id);
	return keep_count(k) == n - 1;
}

/* Whether a result being removed names id, seen as keep_removed dropping it. */
static bool removed_finds(struct keep *k, const char *id)
{
	size_t n = keep_count(k);
	keep_removed(k, id);
	return keep_count(k) == n - 1;
}

/* For the key of a kept result: whether it counts as collected (a retry is
 * a duplicate), else the retry gets id (and collects it). */
static bool kept_collected(struct keep *k, const char *key, const char *id)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct keep_entry *e = NULL;
	char *got = NULL;
	int r = keep_begin(k, key, key, "d", 7, NULL, &e, &got, &err);
	CU_ASSERT_PTR_NULL(e);
	if (r == 0) {
		CU_ASSERT_STRING_EQUAL(got, id);
	} else {
		CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), id));
	}
	free(got);
	husk_error_clear(&err);
	return r == -EEXIST;
}

#define MANY 3000
enum { RESERVED, KEPT, REMOVING };

/* Entry i is reserved, kept or being removed as i % 3; the period is 0 so
 * that keep_next_expired hands out at once the result just kept, and the
 * ones to be removed are kept first (results come out in the order they
 * were kept). */
static void test_lookups_by_id_among_many(void)
{
	struct keep *k = keep_new(0, 2 * MANY);
	static struct keep_entry *e[MANY];
	static char *key[MANY], *id[MANY];
	for (int i = 0; i < MANY; i++) {
		key[i] = xasprintf("key-%d", i);
		id[i] = xasprintf("id-%d", i);
		e[i] = reserve(k, key[i], "d");
		keep_set_id(k, e[i], id[i]);
	}
	for (int i = REMOVING; i < MANY; i += 3) {
		keep_end(k, e[i], id[i], false);
		char *got = NULL, *what = NULL;
		int kind = 0;
		CU_ASSERT_EQUAL(keep_next_expired(k, &got, &kind, &what), 1);
		CU_ASSERT_STRING_EQUAL(got, id[i]);
		free(got);
		free(what);
	}
	for (int i = KEPT; i < MANY; i += 3)
		keep_end(k, e[i], id[i], false);
	CU_ASSERT_EQUAL(keep_count(k), MANY);

	/* Each id is found in its own state only; the even reservations are
	 * asked to give up, some kept results are adopted. */
	for (int i = 0; i < MANY; i++) {
		_cleanup_free_ char *other = xasprintf("id-%d", MANY + i);
		CU_ASSERT(!abort_finds(k, other));
		CU_ASSERT(!forget_finds(k, other));
		CU_ASSERT(!removed_finds(k, other));
		if (i % 3 == RESERVED) {
			if (i % 2 == 0)
				CU_ASSERT(abort_finds(k, id[i]));
			CU_ASSERT(!forget_finds(k, id[i]));
			CU_ASSERT(!removed_finds(k, id[i]));
		} else if (i % 3 == KEPT) {
			CU_ASSERT(!abort_finds(k, id[i]));
			CU_ASSERT(!removed_finds(k, id[i]));
			if (i % 4 == 1)
				keep_collect_id(k, id[i]);
		} else {
			CU_ASSERT(!abort_finds(k, id[i]));
			CU_ASSERT(!forget_finds(k, id[i]));
		}
	}
	for (int i = 0; i < MANY; i += 3)
		CU_ASSERT_EQUAL(keep_aborted(k, e[i]), i % 2 == 0);
	CU_ASSERT_EQUAL(keep_count(k), MANY);

	/* Half of each state goes. */
	for (int i = 0; i < MANY; i += 2) {
		if (i % 3 == RESERVED) {
			keep_end(k, e[i], NULL, false);
		} else if (i % 3 == KEPT) {
			CU_ASSERT(forget_finds(k, id[i]));
		} else {
			CU_ASSERT(removed_finds(k, id[i]));
		}
	}
	CU_ASSERT_EQUAL(keep_count(k), MANY / 2);

	/* None of those is found again; each of the others still is, and
	 * then goes too. */
	for (int i = 0; i < MANY; i++) {
		if (i % 2 == 0) {
			CU_ASSERT(!abort_finds(k, id[i]));
			CU_ASSERT(!forget_finds(k, id[i]));
			CU_ASSERT(!removed_finds(k, id[i]));
		} else if (i % 3 == RESERVED) {
			CU_ASSERT(!keep_aborted(k, e[i]));
			CU_ASSERT(abort_finds(k, id[i]));
			CU_ASSERT(keep_aborted(k, e[i]));
			keep_end(k, e[i], NULL, false);
		} else if (i % 3 == KEPT) {
			CU_ASSERT(!abort_finds(k, id[i]));
			CU_ASSERT(!removed_finds(k, id[i]));
			CU_ASSERT_EQUAL(kept_collected(k, key[i], id[i]), i % 4 == 1);
			CU_ASSERT(forget_finds(k, id[i]));
		} else {
			CU_ASSERT(!abort_finds(k, id[i]));
			CU_ASSERT(!forget_finds(k, id[i]));
			CU_ASSERT(removed_finds(k, id[i]));
		}
	}
	CU_ASSERT_EQUAL(keep_count(k), 0);
	keep_free(k);
	for (int i = 0; i < MANY; i++) {
		free(key[i]);
		free(id[i]);
	}
}

/* Ids that several entries share, in the same state or not, and an id an
 * entry changes: lookups pick what a walk of all entries, newest first,
 * did. */
static void test_shared_and_changed_ids(void)
{
	struct keep *k = keep_new(3600 * SEC, 16);
	struct keep_entry *a = reserve(k, "a", "d");
	struct keep_entry *b = reserve(k, "b", "d");
	struct keep_entry *c = reserve(k, "c", "d");
	keep_end(k, c, "same", false);
	keep_set_id(k, b, "same");
	keep_end(k, a, "same", false);
	CU_ASSERT(abort_finds(k, "same"));
	CU_ASSERT(keep_aborted(k, b));
	CU_ASSERT(!removed_finds(k, "same"));
	/* The newest kept one goes first, whichever got its id first: c,
	 * then a. */
	CU_ASSERT(forget_finds(k, "same"));
	CU_ASSERT(!kept_collected(k, "a", "same"));
	CU_ASSERT(forget_finds(k, "same"));
	CU_ASSERT(!forget_finds(k, "same"));
	CU_ASSERT_EQUAL(keep_count(k), 1);

	/* The creation makes another id than it said at first. */
	keep_set_id(k, b, "other");
	CU_ASSERT(!abort_finds(k, "same"));
	CU_ASSERT(abort_finds(k, "other"));
	keep_end(k, b, "third", false);
	CU_ASSERT(!forget_finds(k, "other"));
	CU_ASSERT(forget_finds(k, "third"));
	CU_ASSERT_EQUAL(keep_count(k), 0);
	CU_ASSERT(!abort_finds(k, "same"));
	CU_ASSERT(!abort_finds(k, "other"));
	CU_ASSERT(!forget_finds(k, "third"));
	keep_free(k);
}

/* Two ids with one 64-bit FNV-1a hash, 0x7908c4b26e2bd37e (found by a
 * search for a collision of the hash on 11-character strings): each finds
 * its own entry only. */
static void test_ids_with_one_hash(void)
{
	static const char *x = "P9lKE-HxScI", *y = "PvtqqRrEz_C";
	struct keep *k = keep_new(3600 * SEC, 16);
	keep_end(k, reserve(k, "x", "d"), x, false);
	struct keep_entry *ey = reserve(k, "y", "d");
	keep_set_id(k, ey, y);
	CU_ASSERT(!abort_finds(k, x));
	CU_ASSERT(!keep_aborted(k, ey));
	keep_end(k, ey, y, false);
	CU_ASSERT(forget_finds(k, x));
	CU_ASSERT(!forget_finds(k, x));
	CU_ASSERT(!kept_collected(k, "y", y));
	CU_ASSERT(forget_finds(k, y));
	CU_ASSERT_EQUAL(keep_count(k), 0);
	keep_free(k);
}

/* The next result keep_next_expired hands out: its id (caller frees), after
 * keep_removed. */
static char *next_expired(struct keep *k)
{
	char *id = NULL, *what = NULL;
	int kind = 0;
	CU_ASSERT_EQUAL(keep_next_expired(k, &id, &kind, &what), 1);
	if (id)
		keep_removed(k, id);
	free(what);
	return id;
}

/* Whether the next result handed out names id. */
static bool next_is(struct keep *k, const char *id)
{
	_cleanup_free_ char *got = next_expired(k);
	return streq(got, id);
}

#define BOUND 100
#define BOUND_MANY 1000

/* A thousand results kept, a hundred at most: the bound ends the oldest
 * ones' periods as the new ones come, forgotten results no longer count,
 * and the remover gets the uncollected ones of those the bound ended,
 * oldest first, while the newest stay kept. */
static void test_bound_among_many(void)
{
	struct keep *k = keep_new(3600 * SEC, BOUND);
	for (int i = 0; i < BOUND_MANY; i++) {
		_cleanup_free_ char *key = xasprintf("key-%d", i);
		_cleanup_free_ char *id = xasprintf("id-%d", i);
		keep_end(k, reserve(k, key, "d"), id, i % 5 == 0);
	}
	CU_ASSERT_EQUAL(keep_count(k), BOUND_MANY);
	/* Ten of the kept ones go: ten more fit without ending another. */
	for (int i = 950; i < 960; i++) {
		_cleanup_free_ char *id = xasprintf("id-%d", i);
		CU_ASSERT(forget_finds(k, id));
	}
	for (int i = BOUND_MANY; i < BOUND_MANY + 10; i++) {
		_cleanup_free_ char *key = xasprintf("key-%d", i);
		_cleanup_free_ char *id = xasprintf("id-%d", i);
		keep_end(k, reserve(k, key, "d"), id, false);
	}
	bool order = true;
	for (int i = 0; i < BOUND_MANY - BOUND; i++) {
		if (i % 5 == 0)
			continue; /* collected: dropped, not handed out */
		_cleanup_free_ char *id = xasprintf("id-%d", i);
		order &= next_is(k, id);
	}
	CU_ASSERT(order);
	CU_ASSERT_EQUAL(keep_count(k), BOUND);
	/* Nothing else is due: a stop ends the wait at once. */
	keep_stop(k);
	char *id = NULL, *what = NULL;
	int kind = 0;
	CU_ASSERT_EQUAL(keep_next_expired(k, &id, &kind, &what), 0);
	CU_ASSERT_EQUAL(keep_count(k), BOUND);
	/* The remaining ones are still kept; the forgotten are not. */
	for (int i = BOUND_MANY - BOUND; i < BOUND_MANY + 10; i++) {
		_cleanup_free_ char *key = xasprintf("key-%d", i);
		_cleanup_free_ char *kid = xasprintf("id-%d", i);
		if (i >= 950 && i < 960) {
			keep_end(k, reserve(k, key, "d"), NULL, false);
			continue;
		}
		CU_ASSERT_EQUAL(kept_collected(k, key, kid), i % 5 == 0 && i < BOUND_MANY);
	}
	keep_free(k);
}

#define ORDER_MANY 2000
#define ORDER_PERIOD (SEC / 5)

/* Results come out in the order their periods end, which is the order of
 * keep_end, not of creation; none before its period is over; adopted and
 * collected ones are dropped, forgotten ones never come. */
static void test_expiry_order_among_many(void)
{
	struct keep *k = keep_new(ORDER_PERIOD, 2 * ORDER_MANY);
	static struct keep_entry *e[ORDER_MANY];
	for (int i = 0; i < ORDER_MANY; i++) {
		_cleanup_free_ char *key = xasprintf("key-%d", i);
		e[i] = reserve(k, key, "d");
	}
	/* Ended in another order than made: 7 and ORDER_MANY are coprime. */
	long long first_end = now_mono_ns();
	for (int j = 0; j < ORDER_MANY; j++) {
		int i = (7 * j) % ORDER_MANY;
		_cleanup_free_ char *id = xasprintf("id-%d", i);
		keep_end(k, e[i], id, j % 4 == 0);
	}
	for (int j = 1; j < ORDER_MANY; j += 4) {
		_cleanup_free_ char *id = xasprintf("id-%d", (7 * j) % ORDER_MANY);
		keep_collect_id(k, id);
	}
	for (int j = 2; j < ORDER_MANY; j += 4) {
		_cleanup_free_ char *id = xasprintf("id-%d", (7 * j) % ORDER_MANY);
		CU_ASSERT(forget_finds(k, id));
	}
	CU_ASSERT_EQUAL(keep_count(k), ORDER_MANY * 3 / 4);
	bool order = true;
	for (int j = 3; j < ORDER_MANY; j += 4) {
		_cleanup_free_ char *id = xasprintf("id-%d", (7 * j) % ORDER_MANY);
		order &= next_is(k, id);
		if (j == 3)
			CU_ASSERT(now_mono_ns() >= first_end + ORDER_PERIOD);
	}
	CU_ASSERT(order);
	CU_ASSERT_EQUAL(keep_count(k), 0);
	keep_free(k);
}

struct remover {
	struct keep *k;
	char *id;
	long long at_ns;
	int r;
};

static void *remover_main(void *arg)
{
	struct remover *m = arg;
	char *what = NULL;
	int kind = 0;
	m->r = keep_next_expired(m->k, &m->id, &kind, &what);
	m->at_ns = now_mono_ns();
	free(what);
	return NULL;
}

/* The remover waits on its own deadline: a first result gives it one, and
 * a result whose period the bound ends wakes it at once, long before the
 * hour it was waiting for. */
static void test_remover_wakes_when_its_deadline_comes_earlier(void)
{
	struct keep *k = keep_new(SEC / 10, 1);
	struct remover m = {.k = k};
	pthread_t t;
	pthread_create(&t, NULL, remover_main, &m);
	usleep(20000); /* waiting with nothing kept */
	long long start = now_mono_ns();
	keep_end(k, reserve(k, "a", "d"), "id-a", false);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(m.r, 1);
	CU_ASSERT_STRING_EQUAL(m.id, "id-a");
	CU_ASSERT(m.at_ns >= start + SEC / 10);
	keep_removed(k, m.id);
	free(m.id);
	keep_free(k);

	k = keep_new(3600 * SEC, 1);
	m = (struct remover){.k = k};
	keep_end(k, reserve(k, "a", "d"), "id-a", false);
	pthread_create(&t, NULL, remover_main, &m);
	usleep(20000); /* waiting for a's hour */
	start = now_mono_ns();
	keep_end(k, reserve(k, "b", "d"), "id-b", false);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(m.r, 1);
	CU_ASSERT_STRING_EQUAL(m.id, "id-a");
	CU_ASSERT(m.at_ns < start + 10 * SEC);
	keep_removed(k, m.id);
	free(m.id);

	/* A stop ends its wait too. */
	m = (struct remover){.k = k};
	pthread_create(&t, NULL, remover_main, &m);
	usleep(20000);
	keep_stop(k);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(m.r, 0);
	CU_ASSERT_EQUAL(keep_count(k), 1);
	keep_free(k);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"kept result goes to the retry", test_kept_result_goes_to_the_retry},
	    {"retry waits for the running creation", test_retry_waits_for_the_running_creation},
	    {"wait ends at the caller's deadline", test_wait_ends_at_the_callers_deadline},
	    {"abort by id", test_abort_by_id},
	    {"uncollected results expire", test_uncollected_results_expire},
	    {"adopted results are collected", test_adopted_results_are_collected},
	    {"count is bounded", test_count_is_bounded},
	    {"lookups by id among many", test_lookups_by_id_among_many},
	    {"shared and changed ids", test_shared_and_changed_ids},
	    {"ids with one hash", test_ids_with_one_hash},
	    {"bound among many", test_bound_among_many},
	    {"expiry order among many", test_expiry_order_among_many},
	    {"remover wakes when its deadline comes earlier",
	     test_remover_wakes_when_its_deadline_comes_earlier},
	};
	return unit_run("keep", tests, ARRAY_SIZE(tests));
}
