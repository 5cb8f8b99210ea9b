/* The hash index (hindex.h): buckets of doubly linked chains, so a node
 * unlinks itself with no walk, doubled when the count reaches the bucket
 * count to keep chains at about one node. */
#include "common/hindex.h"

#include "common/util.h"

#define HINDEX_MIN_CAP 64

uint64_t hindex_hash_more(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

uint64_t hindex_hash(const char *s)
{
	uint64_t h = HINDEX_HASH_START;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* FNV-1a's low bits mix less than its high ones: fold them in. */
static size_t bucket_of(size_t cap, uint64_t hash)
{
	return (size_t)(hash ^ (hash >> 32)) & (cap - 1);
}

static void link_node(struct hindex_node **bucket, struct hindex_node *node)
{
	node->next = *bucket;
	if (node->next)
		node->next->pprev = &node->next;
	node->pprev = bucket;
	*bucket = node;
}

static void grow(struct hindex *h)
{
	size_t cap = h->cap ? 2 * h->cap : HINDEX_MIN_CAP;
	struct hindex_node **b = xnew(struct hindex_node *, cap);
	for (size_t i = 0; i < h->cap; i++)
		while (h->buckets[i]) {
			struct hindex_node *node = h->buckets[i];
			h->buckets[i] = node->next;
			link_node(&b[bucket_of(cap, node->hash)], node);
		}
	free(h->buckets);
	h->buckets = b;
	h->cap = cap;
}

void hindex_add(struct hindex *h, struct hindex_node *node, uint64_t hash)
{
	if (h->n >= h->cap)
		grow(h);
	node->hash = hash;
	link_node(&h->buckets[bucket_of(h->cap, hash)], node);
	h->n++;
}

void hindex_remove(struct hindex *h, struct hindex_node *node)
{
	if (!node->pprev)
		return;
	*node->pprev = node->next;
	if (node->next)
		node->next->pprev = node->pprev;
	node->next = NULL;
	node->pprev = NULL;
	h->n--;
}

static struct hindex_node *same_hash(struct hindex_node *node, uint64_t hash)
{
	while (node && node->hash != hash)
		node = node->next;
	return node;
}

struct hindex_node *hindex_find(const struct hindex *h, uint64_t hash)
{
	if (!h->n)
		return NULL;
	return same_hash(h->buckets[bucket_of(h->cap, hash)], hash);
}

struct hindex_node *hindex_find_next(const struct hindex_node *node)
{
	return same_hash(node->next, node->hash);
}

static struct hindex_node *first_from(const struct hindex *h, size_t i)
{
	for (; i < h->cap; i++)
		if (h->buckets[i])
			return h->buckets[i];
	return NULL;
}

struct hindex_node *hindex_first(const struct hindex *h)
{
	return h->n ? first_from(h, 0) : NULL;
}

struct hindex_node *hindex_next(const struct hindex *h, const struct hindex_node *node)
{
	if (node->next)
		return node->next;
	return first_from(h, bucket_of(h->cap, node->hash) + 1);
}

void hindex_clear(struct hindex *h)
{
	free(h->buckets);
	*h = (struct hindex){0};
}
