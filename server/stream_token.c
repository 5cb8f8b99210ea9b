/* Single-use tokens of the streaming server's URLs: 8 random base64url
 * characters naming a pending request, valid for a minute, at most 1000
 * outstanding. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>

#include "server/stream_proto.h"

struct token {
	char id[STREAM_TOKEN_LEN + 1];
	long long expires;
	void *payload;
};

struct srv_tokens {
	pthread_mutex_t lock;
	long long ttl;
	long long (*clock)(void);
	void (*free_fn)(void *);
	struct token v[STREAM_TOKEN_MAX];
	size_t n;
};

struct srv_tokens *srv_tokens_new(long long ttl_ns, long long (*clock)(void),
				  void (*free_fn)(void *))
{
	struct srv_tokens *t = xnew(struct srv_tokens, 1);
	pthread_mutex_init(&t->lock, NULL);
	t->ttl = ttl_ns > 0 ? ttl_ns : STREAM_TOKEN_TTL_NS;
	t->clock = clock ? clock : now_mono_ns;
	t->free_fn = free_fn ? free_fn : free;
	return t;
}

void srv_tokens_free(struct srv_tokens *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		t->free_fn(t->v[i].payload);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void drop_locked(struct srv_tokens *t, size_t i)
{
	t->v[i] = t->v[--t->n];
}

static void expire_locked(struct srv_tokens *t, long long now)
{
	for (size_t i = 0; i < t->n;) {
		if (t->v[i].expires <= now) {
			t->free_fn(t->v[i].payload);
			drop_locked(t, i);
		} else {
			i++;
		}
	}
}

static void random_token(char *out)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	uint8_t rnd[STREAM_TOKEN_LEN];
	size_t got = 0;
	while (got < sizeof(rnd)) {
		ssize_t n = getrandom(rnd + got, sizeof(rnd) - got, 0);
		if (n > 0)
			got += (size_t)n;
		else if (errno != EINTR)
			abort(); /* no entropy source at all: nothing sane to do */
	}
	for (int i = 0; i < STREAM_TOKEN_LEN; i++)
		out[i] = alphabet[rnd[i] & 63];
	out[STREAM_TOKEN_LEN] = '\0';
}

int srv_tokens_issue(struct srv_tokens *t, void *payload, char *ret_token, struct husk_error *err)
{
	pthread_mutex_lock(&t->lock);
	long long now = t->clock();
	expire_locked(t, now);
	if (t->n >= STREAM_TOKEN_MAX) {
		pthread_mutex_unlock(&t->lock);
		t->free_fn(payload);
		return husk_error_set(err, ENOSPC,
				      "stream server: %d requests are already waiting for a client",
				      STREAM_TOKEN_MAX);
	}
	struct token *k = &t->v[t->n];
	bool unique;
	do {
		random_token(k->id);
		unique = true;
		for (size_t i = 0; i < t->n && unique; i++)
			unique = !streq(t->v[i].id, k->id);
	} while (!unique);
	k->expires = now + t->ttl;
	k->payload = payload;
	t->n++;
	memcpy(ret_token, k->id, STREAM_TOKEN_LEN + 1);
	pthread_mutex_unlock(&t->lock);
	return 0;
}

void *srv_tokens_take(struct srv_tokens *t, const char *token)
{
	if (!token || strlen(token) != STREAM_TOKEN_LEN)
		return NULL;
	pthread_mutex_lock(&t->lock);
	expire_locked(t, t->clock());
	void *p = NULL;
	for (size_t i = 0; i < t->n; i++) {
		if (streq(t->v[i].id, token)) {
			p = t->v[i].payload;
			drop_locked(t, i);
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return p;
}

size_t srv_tokens_count(struct srv_tokens *t)
{
	pthread_mutex_lock(&t->lock);
	expire_locked(t, t->clock());
	size_t n = t->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}
