/* The record store's lookups among thousands of records: finds of pods
 * and containers by name tuple, name conflicts and the count of a pod's
 * containers, after adds, renames (and moves of containers between pods),
 * removes, and a reload of the files; lists by pod id and id prefix, also
 * with containers whose pod is gone. No root needed. */
#include <errno.h>
#include <string.h>

#include "runtime/state/state.h"
#include "unit.h"

#define PODS 2000

/* Pod i: name pod-i (renamed-i once renamed), namespace ns-(i % 7), uid
 * uid-i, attempt i % 3; containers a-i "app" (attempt 0) and b-i "side"
 * (attempt i % 2). */
static char *pod_id(int i)
{
	return xasprintf("p-%d", i);
}

static char *pod_name(int i, bool renamed)
{
	return xasprintf("%s-%d", renamed ? "renamed" : "pod", i);
}

static char *pod_ns(int i)
{
	return xasprintf("ns-%d", i % 7);
}

static char *pod_uid(int i)
{
	return xasprintf("uid-%d", i);
}

static void add_pod(struct state_store *s, int i)
{
	struct pod_record p = {.id = pod_id(i),
			       .name = pod_name(i, false),
			       .namespace = pod_ns(i),
			       .uid = pod_uid(i),
			       .attempt = (unsigned)i % 3};
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
	husk_error_clear(&err);
	pod_record_clear(&p);
}

static void add_ctr(struct state_store *s, const char *id, int pod, const char *name,
		    unsigned attempt)
{
	struct ctr_record c = {
	    .id = xstrdup(id), .pod_id = pod_id(pod), .name = xstrdup(name), .attempt = attempt};
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), 0);
	husk_error_clear(&err);
	ctr_record_clear(&c);
}

/* The id state_pod_find gives for pod i's tuple under name (NULL: none). */
static char *find_pod(struct state_store *s, int i, const char *name, unsigned attempt)
{
	_cleanup_free_ char *ns = pod_ns(i), *uid = pod_uid(i);
	struct pod_record *p = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	int r = state_pod_find(s, name, ns, uid, attempt, &p, &err);
	CU_ASSERT(r == 0 || r == -ENOENT);
	husk_error_clear(&err);
	char *id = p ? xstrdup(p->id) : NULL;
	pod_record_free(p);
	return id;
}

/* Whether pod i is found under its name (renamed or not) and not under
 * the other one nor another attempt. */
static bool pod_found(struct state_store *s, int i, bool renamed)
{
	_cleanup_free_ char *id = pod_id(i), *name = pod_name(i, renamed);
	_cleanup_free_ char *other = pod_name(i, !renamed);
	_cleanup_free_ char *got = find_pod(s, i, name, (unsigned)i % 3);
	_cleanup_free_ char *none = find_pod(s, i, other, (unsigned)i % 3);
	_cleanup_free_ char *none2 = find_pod(s, i, name, (unsigned)i % 3 + 1);
	return streq(got, id) && !none && !none2;
}

static bool pod_absent(struct state_store *s, int i)
{
	_cleanup_free_ char *a = pod_name(i, false), *b = pod_name(i, true);
	_cleanup_free_ char *x = find_pod(s, i, a, (unsigned)i % 3);
	_cleanup_free_ char *y = find_pod(s, i, b, (unsigned)i % 3);
	return !x && !y;
}

/* The id state_ctr_find gives, NULL for none. */
static char *find_ctr(struct state_store *s, int pod, const char *name, unsigned attempt)
{
	_cleanup_free_ char *pid = pod_id(pod);
	struct ctr_record *c = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	int r = state_ctr_find(s, pid, name, attempt, &c, &err);
	CU_ASSERT(r == 0 || r == -ENOENT);
	husk_error_clear(&err);
	char *id = c ? xstrdup(c->id) : NULL;
	ctr_record_free(c);
	return id;
}

static bool ctr_is(struct state_store *s, int pod, const char *name, unsigned attempt,
		   const char *want)
{
	_cleanup_free_ char *got = find_ctr(s, pod, name, attempt);
	return want ? streq(got, want) : !got;
}

static int rename_pod(struct pod_record *rec, void *data, struct husk_error *err _unused_)
{
	free(rec->name);
	rec->name = xstrdup(data);
	return 0;
}

struct ctr_move {
	const char *pod_id, *name;
};

static int move_ctr(struct ctr_record *rec, void *data, struct husk_error *err _unused_)
{
	const struct ctr_move *m = data;
	free(rec->pod_id);
	rec->pod_id = xstrdup(m->pod_id);
	free(rec->name);
	rec->name = xstrdup(m->name);
	return 0;
}

/* The count state_pod_remove's EBUSY gives for pod i, 0 when it removed
 * the pod. */
static size_t remove_pod(struct state_store *s, int i)
{
	_cleanup_free_ char *id = pod_id(i);
	struct husk_error err = HUSK_ERROR_INIT;
	int r = state_pod_remove(s, id, &err);
	size_t n = 0;
	if (r == -EBUSY) {
		CU_ASSERT_EQUAL(sscanf(strstr(husk_error_msg(&err), ": ") + 2, "%zu", &n), 1);
	} else {
		CU_ASSERT_EQUAL(r, 0);
	}
	husk_error_clear(&err);
	return n;
}

static void check_all(struct state_store *s, bool reloaded)
{
	bool ok = true;
	for (int i = 0; i < PODS; i++) {
		_cleanup_free_ char *a = xasprintf("a-%d", i), *b = xasprintf("b-%d", i);
		if (i % 4 == 0) {
			ok &= pod_absent(s, i);
			ok &= ctr_is(s, i, "app", 0, NULL) && ctr_is(s, i, "side", i % 2, NULL);
			continue;
		}
		ok &= pod_found(s, i, i % 3 == 0);
		/* a-i of each odd pod moved to pod i - 1 as "moved" */
		if (i % 2) {
			ok &= ctr_is(s, i, "app", 0, NULL);
			ok &= ctr_is(s, i - 1, "moved", 0, i % 4 == 1 ? NULL : a);
		} else {
			ok &= ctr_is(s, i, "app", 0, a);
		}
		ok &= ctr_is(s, i, "side", i % 2, i % 4 == 2 ? NULL : b);
		ok &= ctr_is(s, i, "side", (i + 1) % 2, NULL);
	}
	CU_ASSERT(ok);
	if (!ok)
		printf("\n    lookups wrong%s", reloaded ? " after the reload" : "");
}

static void test_finds_among_thousands(void)
{
	char *dir = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	struct state_store *s = NULL;
	CU_ASSERT_FATAL(state_store_open(dir, NULL, &s, NULL, &err) == 0);
	for (int i = 0; i < PODS; i++) {
		add_pod(s, i);
		_cleanup_free_ char *a = xasprintf("a-%d", i), *b = xasprintf("b-%d", i);
		add_ctr(s, a, i, "app", 0);
		add_ctr(s, b, i, "side", (unsigned)i % 2);
	}
	bool ok = true;
	for (int i = 0; i < PODS; i++) {
		_cleanup_free_ char *a = xasprintf("a-%d", i), *b = xasprintf("b-%d", i);
		ok &= pod_found(s, i, false);
		ok &= ctr_is(s, i, "app", 0, a) && ctr_is(s, i, "app", 1, NULL);
		ok &= ctr_is(s, i, "side", i % 2, b) && ctr_is(s, i, "other", 0, NULL);
	}
	CU_ASSERT(ok);

	/* Each name is taken: by the pod or container holding it. */
	struct pod_record p = {.id = xstrdup("dup"),
			       .name = pod_name(1234, false),
			       .namespace = pod_ns(1234),
			       .uid = pod_uid(1234),
			       .attempt = 1234 % 3};
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'p-1234'"));
	husk_error_clear(&err);
	struct ctr_record c = {
	    .id = xstrdup("dup"), .pod_id = pod_id(1234), .name = xstrdup("side"), .attempt = 0};
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'b-1234'"));
	husk_error_clear(&err);

	/* Renames: every third pod; a-i of each odd pod moves to pod i - 1
	 * as "moved". A rename onto a taken name changes nothing. */
	for (int i = 0; i < PODS; i += 3) {
		_cleanup_free_ char *id = pod_id(i), *name = pod_name(i, true);
		CU_ASSERT_EQUAL(state_pod_modify(s, id, rename_pod, name, &err), 0);
	}
	/* p-5 onto the tuple of p-1234 */
	free(p.id);
	p.id = pod_id(5);
	CU_ASSERT_EQUAL(state_pod_update(s, &p, &err), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'p-1234'"));
	husk_error_clear(&err);
	for (int i = 1; i < PODS; i += 2) {
		_cleanup_free_ char *a = xasprintf("a-%d", i), *to = pod_id(i - 1);
		struct ctr_move m = {to, "moved"};
		CU_ASSERT_EQUAL(state_ctr_modify(s, a, move_ctr, &m, &err), 0);
	}
	/* Onto a name taken (b-10 has attempt 0, as a-10). */
	struct ctr_move onto = {"p-10", "app"};
	CU_ASSERT_EQUAL(state_ctr_modify(s, "b-10", move_ctr, &onto, &err), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'a-10'"));
	husk_error_clear(&err);
	CU_ASSERT(ctr_is(s, 10, "side", 0, "b-10"));

	/* A pod's containers, counted: its own and those moved in. */
	CU_ASSERT_EQUAL(remove_pod(s, 10), 3);
	CU_ASSERT_EQUAL(remove_pod(s, 11), 1);

	/* Removes: pods i % 4 == 0 with their containers, and the moved a-i
	 * of pods i % 4 == 1, and b-i of pods i % 4 == 2. */
	for (int i = 0; i < PODS; i++) {
		_cleanup_free_ char *a = xasprintf("a-%d", i), *b = xasprintf("b-%d", i);
		if (i % 4 == 0) {
			_cleanup_free_ char *a1 = xasprintf("a-%d", i + 1);
			CU_ASSERT_EQUAL(state_ctr_remove(s, a, &err), 0);
			CU_ASSERT_EQUAL(state_ctr_remove(s, b, &err), 0);
			CU_ASSERT_EQUAL(remove_pod(s, i), 1); /* a-(i+1) moved in */
			CU_ASSERT_EQUAL(state_ctr_remove(s, a1, &err), 0);
			CU_ASSERT_EQUAL(remove_pod(s, i), 0);
		} else if (i % 4 == 2) {
			CU_ASSERT_EQUAL(state_ctr_remove(s, b, &err), 0);
		}
	}
	check_all(s, false);

	/* Freed names are free. */
	add_pod(s, 0);
	add_ctr(s, "again", 0, "app", 0);
	_cleanup_free_ char *again = find_ctr(s, 0, "app", 0);
	CU_ASSERT_STRING_EQUAL(again, "again");
	CU_ASSERT_EQUAL(state_ctr_remove(s, "again", &err), 0);
	CU_ASSERT_EQUAL(remove_pod(s, 0), 0);
	state_store_free(s);

	/* The load indexes the same. */
	s = NULL;
	CU_ASSERT_FATAL(state_store_open(dir, NULL, &s, NULL, &err) == 0);
	check_all(s, true);
	state_store_free(s);
	pod_record_clear(&p);
	ctr_record_clear(&c);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

#define LPODS 1000

/* The ids of a list, joined by spaces (caller frees). */
static char *joined(void *const *v, size_t n)
{
	char *out = xstrdup("");
	for (size_t i = 0; i < n; i++) {
		char *next = xasprintf("%s%s ", out, *(char *const *)v[i]);
		free(out);
		out = next;
	}
	return out;
}

/* What a list with f gives, by a walk of every record (state_ctr_list of
 * everything, filtered here), and what the store gives, copied and
 * shared: all three the same. */
static bool ctr_list_right(struct state_store *s, const struct ctr_filter *f)
{
	struct ctr_record **all = NULL, **got = NULL;
	const struct ctr_record **shared = NULL;
	size_t n_all = 0, n_got = 0, n_shared = 0;
	CU_ASSERT_EQUAL(state_ctr_list(s, NULL, &all, &n_all, NULL), 0);
	CU_ASSERT_EQUAL(state_ctr_list(s, f, &got, &n_got, NULL), 0);
	CU_ASSERT_EQUAL(state_ctr_list_shared(s, f, &shared, &n_shared, NULL), 0);
	struct ctr_record **want = xnew(struct ctr_record *, n_all + 1);
	size_t n_want = 0;
	for (size_t i = 0; i < n_all; i++)
		if ((!f->id || startswith(all[i]->id, f->id)) &&
		    (!f->pod_id || startswith(all[i]->pod_id, f->pod_id)) &&
		    (!f->has_state || all[i]->state == f->state))
			want[n_want++] = all[i];
	_cleanup_free_ char *a = joined((void **)want, n_want), *b = joined((void **)got, n_got);
	_cleanup_free_ char *c = joined((void **)shared, n_shared);
	bool ok = streq(a, b) && streq(a, c) && got[n_got] == NULL;
	if (!ok)
		printf("\n    filter id '%s' pod '%s': want %zu got %zu/%zu", f->id ? f->id : "",
		       f->pod_id ? f->pod_id : "", n_want, n_got, n_shared);
	free(want);
	ctr_records_free(all, n_all);
	ctr_records_free(got, n_got);
	ctr_records_release(shared, n_shared);
	return ok;
}

static bool pod_list_right(struct state_store *s, const char *prefix, size_t want)
{
	struct pod_filter f = {.id = prefix};
	struct pod_record **got = NULL;
	const struct pod_record **shared = NULL;
	size_t n = 0, n_shared = 0;
	CU_ASSERT_EQUAL(state_pod_list(s, &f, &got, &n, NULL), 0);
	CU_ASSERT_EQUAL(state_pod_list_shared(s, &f, &shared, &n_shared, NULL), 0);
	bool ok = n == want && n_shared == want && got[n] == NULL;
	for (size_t i = 0; i < n; i++)
		ok &= startswith(got[i]->id, prefix ? prefix : "") && shared[i] &&
		      streq(shared[i]->id, got[i]->id);
	pod_records_free(got, n);
	pod_records_release(shared, n_shared);
	return ok;
}

static const char *const prefixes[] = {NULL,	"",	  "q-",	     "q-0",    "q-05",
				       "q-050", "q-0500", "q-05000", "q-0999", "x"};

/* Lists by pod id prefix and by id prefix (what a StopPodSandbox,
 * RemovePodSandbox or PodSandboxStats lists) among a thousand pods, the
 * same as a walk of every record gives; also when a reload finds
 * containers whose pod is gone, and after that pod comes back. */
static void test_lists_among_thousands(void)
{
	char *dir = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	struct state_store *s = NULL;
	CU_ASSERT_FATAL(state_store_open(dir, NULL, &s, NULL, &err) == 0);
	/* Pod q-NNNN has NNNN % 3 containers, c-NNNN-K; every other running. */
	for (int i = 0; i < LPODS; i++) {
		struct pod_record p = {.id = xasprintf("q-%04d", i), .name = xasprintf("q%d", i)};
		CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
		for (int k = 0; k < i % 3; k++) {
			struct ctr_record c = {.id = xasprintf("c-%04d-%d", i, k),
					       .pod_id = xstrdup(p.id),
					       .name = xasprintf("n%d", k),
					       .state = (i + k) % 2 ? CTR_STATE_RUNNING
								    : CTR_STATE_CREATED};
			CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), 0);
			ctr_record_clear(&c);
		}
		pod_record_clear(&p);
	}
	bool ok = true;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		struct ctr_filter by_pod = {.pod_id = prefixes[i]};
		struct ctr_filter running = {
		    .pod_id = prefixes[i], .has_state = true, .state = CTR_STATE_RUNNING};
		struct ctr_filter both = {.id = "c-05", .pod_id = prefixes[i]};
		ok &= ctr_list_right(s, &by_pod) && ctr_list_right(s, &running) &&
		      ctr_list_right(s, &both);
	}
	static const char *const ids[] = {"c-", "c-01", "c-0101", "c-0101-1", "c-0101-2", "d"};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++)
		ok &= ctr_list_right(s, &(struct ctr_filter){.id = ids[i]});
	CU_ASSERT(ok);
	CU_ASSERT(pod_list_right(s, NULL, LPODS));
	CU_ASSERT(pod_list_right(s, "q-0", LPODS));
	CU_ASSERT(pod_list_right(s, "q-05", 100));
	CU_ASSERT(pod_list_right(s, "q-0500", 1));
	CU_ASSERT(pod_list_right(s, "q-05000", 0));
	state_store_free(s);

	/* Pod q-0500 (two containers) goes from the disk: its containers are
	 * loaded all the same. */
	_cleanup_free_ char *gone = xasprintf("%s/pods/q-0500.json", dir);
	_cleanup_free_ char *text = NULL;
	CU_ASSERT_EQUAL(fs_read_file(gone, 1 << 20, &text, NULL, NULL), 0);
	CU_ASSERT_EQUAL(unlink(gone), 0);
	CU_ASSERT_FATAL(state_store_open(dir, NULL, &s, NULL, &err) == 0);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		ok &= ctr_list_right(s, &(struct ctr_filter){.pod_id = prefixes[i]});
	struct ctr_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_ctr_list(s, &(struct ctr_filter){.pod_id = "q-0500"}, &v, &n, NULL),
			0);
	CU_ASSERT_EQUAL(n, 2);
	ctr_records_free(v, n);
	/* Back: its containers are found through it again. */
	struct pod_record p = {.id = xstrdup("q-0500"), .name = xstrdup("q500")};
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
	pod_record_clear(&p);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		ok &= ctr_list_right(s, &(struct ctr_filter){.pod_id = prefixes[i]});
	CU_ASSERT_EQUAL(state_ctr_list(s, &(struct ctr_filter){.pod_id = "q-0500"}, &v, &n, NULL),
			0);
	CU_ASSERT_EQUAL(n, 2);
	ctr_records_free(v, n);
	/* Moved to another pod, removed: lists follow. */
	struct ctr_move m = {"q-0501", "moved"};
	CU_ASSERT_EQUAL(state_ctr_modify(s, "c-0500-0", move_ctr, &m, &err), 0);
	CU_ASSERT_EQUAL(state_ctr_remove(s, "c-0500-1", &err), 0);
	CU_ASSERT_EQUAL(state_pod_remove(s, "q-0500", &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		ok &= ctr_list_right(s, &(struct ctr_filter){.pod_id = prefixes[i]});
	CU_ASSERT_EQUAL(state_ctr_list(s, &(struct ctr_filter){.pod_id = "q-0501"}, &v, &n, NULL),
			0);
	CU_ASSERT_EQUAL(n, 1);
	ctr_records_free(v, n);
	CU_ASSERT(ok);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"finds among thousands", test_finds_among_thousands},
	    {"lists among thousands", test_lists_among_thousands},
	};
	return unit_run("state names", tests, ARRAY_SIZE(tests));
}
