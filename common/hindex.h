/* A hash index of strings (or any key) to the caller's structs, for lookups
 * that must not walk every object: a node embedded in each struct, chained
 * in buckets that grow with the count. One hash may have several nodes. */
#ifndef HUSK_COMMON_HINDEX_H
#define HUSK_COMMON_HINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The caller's structs embed one of these per index they are in, zeroed
 * (xnew) before the first hindex_add. */
struct hindex_node {
	struct hindex_node *next, **pprev; /* pprev NULL: in no index */
	uint64_t hash;
};

/* Zeroed ({0}, xnew) it is empty; no lock inside: the caller guards each
 * index with its own. */
struct hindex {
	struct hindex_node **buckets;
	size_t cap; /* 0 or a power of two; never below n after an add */
	size_t n;
};

/* The struct of type that holds node as its member; NULL for NULL. */
#define hindex_entry(node, type, member)                                                 \
	({                                                                               \
		const struct hindex_node *node_ = (node);                                \
		node_ ? (type *)(void *)((char *)node_ - offsetof(type, member)) : NULL; \
	})

/* FNV-1a, 64 bits: hindex_hash of a string (its NUL not included), and
 * hindex_hash_more to go on with more bytes after h, for a key of several
 * fields (hash each string with its NUL, so "ab","c" and "a","bc" differ).
 * HINDEX_HASH_START is the hash of nothing. */
#define HINDEX_HASH_START 0xcbf29ce484222325ULL
uint64_t hindex_hash_more(uint64_t h, const void *p, size_t n);
uint64_t hindex_hash(const char *s);

/* Link node, with the hash of its key, in O(1) (amortised: the buckets
 * double when the count reaches them, about one per node). node must be in
 * no index; the caller's struct must stay where it is until removed. */
void hindex_add(struct hindex *h, struct hindex_node *node, uint64_t hash);
/* Unlink node, which is in h or in no index, in O(1) (no walk of its
 * bucket); a node in no index is left alone. */
void hindex_remove(struct hindex *h, struct hindex_node *node);
static inline bool hindex_linked(const struct hindex_node *node)
{
	return node->pprev != NULL;
}

/* The nodes added with hash, in no particular order: the first, then the
 * next after node, NULL after the last. The caller compares its own keys
 * (two keys may share a hash). The index must not change between calls,
 * except for a hindex_remove of a node already returned. To remove while
 * walking, take the next before removing the current one. */
struct hindex_node *hindex_find(const struct hindex *h, uint64_t hash);
struct hindex_node *hindex_find_next(const struct hindex_node *node);

/* Every node, in no particular order (for freeing all): the first, then
 * the one after node, which must still be linked (take it before removing
 * node). O(buckets + nodes) for the whole walk. */
struct hindex_node *hindex_first(const struct hindex *h);
struct hindex_node *hindex_next(const struct hindex *h, const struct hindex_node *node);

static inline size_t hindex_count(const struct hindex *h)
{
	return h->n;
}

/* Free the buckets and empty h; the nodes are forgotten, not touched (free
 * their structs first, by a walk). h may be used again afterwards. */
void hindex_clear(struct hindex *h);

#endif
