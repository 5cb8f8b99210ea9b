/* common/hindex: the FNV-1a hash, and the index under many nodes: every key
 * found after adds, growth and removes, keys that share a hash, removes in
 * the middle of a walk, and the walk over every node. */
#include <string.h>

#include "common/hindex.h"
#include "unit.h"

struct item {
	char *key;
	int value;
	bool seen;
	struct hindex_node node;
};

static struct item *find(const struct hindex *h, const char *key)
{
	for (struct hindex_node *n = hindex_find(h, hindex_hash(key)); n; n = hindex_find_next(n)) {
		struct item *it = hindex_entry(n, struct item, node);
		if (streq(it->key, key))
			return it;
	}
	return NULL;
}

static void test_hash(void)
{
	/* The published FNV-1a 64-bit test vectors. */
	CU_ASSERT_EQUAL(hindex_hash(""), 0xcbf29ce484222325ULL);
	CU_ASSERT_EQUAL(hindex_hash("a"), 0xaf63dc4c8601ec8cULL);
	CU_ASSERT_EQUAL(hindex_hash("foobar"), 0x85944171f73967e8ULL);
	CU_ASSERT_EQUAL(hindex_hash_more(HINDEX_HASH_START, "foobar", 6), hindex_hash("foobar"));
	CU_ASSERT_EQUAL(hindex_hash_more(hindex_hash("foo"), "bar", 3), hindex_hash("foobar"));
	/* Fields hashed with their NUL do not run into each other. */
	uint64_t ab_c = hindex_hash_more(hindex_hash_more(HINDEX_HASH_START, "ab", 3), "c", 2);
	uint64_t a_bc = hindex_hash_more(hindex_hash_more(HINDEX_HASH_START, "a", 2), "bc", 3);
	CU_ASSERT_NOT_EQUAL(ab_c, a_bc);
	CU_ASSERT_PTR_NULL(hindex_entry(NULL, struct item, node));
}

#define MANY 20000

static void test_many_keys(void)
{
	struct hindex h = {0};
	CU_ASSERT_PTR_NULL(hindex_find(&h, hindex_hash("x")));
	CU_ASSERT_PTR_NULL(hindex_first(&h));
	struct item *v = xnew(struct item, MANY);
	for (int i = 0; i < MANY; i++) {
		v[i].key = xasprintf("key-%d", i);
		v[i].value = i;
		CU_ASSERT(!hindex_linked(&v[i].node));
		hindex_add(&h, &v[i].node, hindex_hash(v[i].key));
		CU_ASSERT(hindex_linked(&v[i].node));
	}
	CU_ASSERT_EQUAL(hindex_count(&h), MANY);
	/* Chains stay short: the buckets grew with the count. */
	CU_ASSERT(h.cap >= MANY);
	for (int i = 0; i < MANY; i++) {
		struct item *it = find(&h, v[i].key);
		CU_ASSERT_PTR_EQUAL(it, &v[i]);
	}
	CU_ASSERT_PTR_NULL(find(&h, "key-20000"));
	CU_ASSERT_PTR_NULL(find(&h, "key-"));

	/* Every third goes; a second remove is nothing. */
	for (int i = 0; i < MANY; i += 3) {
		hindex_remove(&h, &v[i].node);
		CU_ASSERT(!hindex_linked(&v[i].node));
		hindex_remove(&h, &v[i].node);
	}
	CU_ASSERT_EQUAL(hindex_count(&h), MANY - (MANY + 2) / 3);
	for (int i = 0; i < MANY; i++) {
		struct item *it = find(&h, v[i].key);
		CU_ASSERT_PTR_EQUAL(it, i % 3 == 0 ? NULL : &v[i]);
	}

	/* They come back, and the walk sees each node once. */
	for (int i = 0; i < MANY; i += 3)
		hindex_add(&h, &v[i].node, hindex_hash(v[i].key));
	size_t n = 0;
	bool twice = false;
	for (struct hindex_node *x = hindex_first(&h); x; x = hindex_next(&h, x)) {
		struct item *it = hindex_entry(x, struct item, node);
		twice |= it->seen;
		it->seen = true;
		n++;
	}
	CU_ASSERT(!twice);
	CU_ASSERT_EQUAL(n, MANY);

	/* Removing each node as the walk passes it empties the index. */
	n = 0;
	for (struct hindex_node *x = hindex_first(&h), *nx; x; x = nx) {
		nx = hindex_next(&h, x);
		hindex_remove(&h, x);
		n++;
	}
	CU_ASSERT_EQUAL(n, MANY);
	CU_ASSERT_EQUAL(hindex_count(&h), 0);
	CU_ASSERT_PTR_NULL(hindex_first(&h));
	CU_ASSERT_PTR_NULL(find(&h, v[1].key));
	hindex_clear(&h);
	CU_ASSERT_PTR_NULL(find(&h, v[1].key));
	for (int i = 0; i < MANY; i++)
		free(v[i].key);
	free(v);
}

/* Many nodes with one hash (keys the hash cannot tell apart, or one key
 * several objects share): each is found, and removes while walking them
 * leave the rest. */
static void test_one_hash(void)
{
	struct hindex h = {0};
	enum { N = 300 };
	/* Another hash that lands in the bucket of 42 (the bucket is of the
	 * hash folded: its high half xor its low half). */
	const uint64_t near = (1ULL << 63) | (1ULL << 31) | 42;
	struct item v[N] = {0};
	struct item other = {.key = "other"};
	for (int i = 0; i < N; i++) {
		v[i].value = i;
		hindex_add(&h, &v[i].node, 42);
		/* Others that land in the same bucket are skipped. */
		if (i == N / 2)
			hindex_add(&h, &other.node, near);
	}
	int count[N] = {0};
	for (struct hindex_node *x = hindex_find(&h, 42), *nx; x; x = nx) {
		nx = hindex_find_next(x);
		struct item *it = hindex_entry(x, struct item, node);
		CU_ASSERT_PTR_NOT_EQUAL(it, &other);
		count[it->value]++;
		if (it->value % 2)
			hindex_remove(&h, x);
	}
	for (int i = 0; i < N; i++)
		CU_ASSERT_EQUAL(count[i], 1);
	size_t n = 0;
	for (struct hindex_node *x = hindex_find(&h, 42); x; x = hindex_find_next(x)) {
		CU_ASSERT_EQUAL(hindex_entry(x, struct item, node)->value % 2, 0);
		n++;
	}
	CU_ASSERT_EQUAL(n, N / 2);
	CU_ASSERT_PTR_EQUAL(hindex_find(&h, near), &other.node);
	CU_ASSERT_PTR_NULL(hindex_find(&h, 43));
	CU_ASSERT_EQUAL(hindex_count(&h), N / 2 + 1);
	hindex_clear(&h);
}

/* Two strings with one FNV-1a hash (see test_keep.c): each finds itself. */
static void test_colliding_strings(void)
{
	struct item x = {.key = "P9lKE-HxScI"}, y = {.key = "PvtqqRrEz_C"};
	CU_ASSERT_EQUAL(hindex_hash(x.key), hindex_hash(y.key));
	struct hindex h = {0};
	hindex_add(&h, &x.node, hindex_hash(x.key));
	CU_ASSERT_PTR_NULL(find(&h, y.key));
	hindex_add(&h, &y.node, hindex_hash(y.key));
	CU_ASSERT_PTR_EQUAL(find(&h, x.key), &x);
	CU_ASSERT_PTR_EQUAL(find(&h, y.key), &y);
	hindex_remove(&h, &x.node);
	CU_ASSERT_PTR_NULL(find(&h, x.key));
	CU_ASSERT_PTR_EQUAL(find(&h, y.key), &y);
	hindex_clear(&h);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"hash", test_hash},
	    {"many keys", test_many_keys},
	    {"one hash", test_one_hash},
	    {"colliding strings", test_colliding_strings},
	};
	return unit_run("hindex", tests, ARRAY_SIZE(tests));
}
