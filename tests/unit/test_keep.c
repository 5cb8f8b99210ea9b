/* The store of creations by identity (runtime/keep.c): reservations, kept
 * results handed to retries, config mismatches, waiting within a caller's
 * deadline, aborts, expiry of uncollected results and the count bound. */
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
	};
	return unit_run("keep", tests, ARRAY_SIZE(tests));
}
