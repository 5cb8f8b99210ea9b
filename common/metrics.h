/* Counters and histograms the libraries keep for huskd's /metrics, and a
 * writer of the Prometheus text exposition format (version 0.0.4). Counters
 * are plain integers updated with atomics; nothing here knows HTTP. */
#ifndef HUSK_COMMON_METRICS_H
#define HUSK_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* ---- histograms of durations ---- */

#define MX_MAX_BUCKETS 16

/* Upper bounds in seconds, ascending; one fixed set per histogram. */
struct mx_buckets {
	const double *bounds;
	size_t n; /* <= MX_MAX_BUCKETS */
};
/* 5 ms .. 60 s, for RPCs and plugin calls. */
extern const struct mx_buckets mx_buckets_default;
/* 100 ms .. 30 min, for image pulls. */
extern const struct mx_buckets mx_buckets_slow;

/* Zero-initialised is empty; set b before the first observation. */
struct mx_histogram {
	const struct mx_buckets *b;
	uint64_t counts[MX_MAX_BUCKETS + 1]; /* per bucket (not cumulative), last +Inf */
	uint64_t sum_ns;
};

/* Record one duration (negative counts as 0). Thread-safe. */
void mx_hist_observe_ns(struct mx_histogram *h, long long ns);
/* A consistent-enough copy for rendering (each field read atomically). */
void mx_hist_snapshot(const struct mx_histogram *h, struct mx_histogram *ret);

static inline void mx_inc(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}
static inline uint64_t mx_get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* ---- the text format ---- */

/* A growing output buffer. */
struct mx_text {
	char *buf;
	size_t len, cap;
};
void mx_text_clear(struct mx_text *t);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void mx_family(struct mx_text *t, const char *name, const char *type, const char *help);
/* One sample: name{k1="v1",...} value. labels is NULL or a NULL-terminated
 * list of key, value pairs; values are escaped (\\, \", \n). */
void mx_sample(struct mx_text *t, const char *name, const char *const *labels, double value);
/* The _bucket (cumulative, le as the exposition format writes it), _sum
 * (seconds) and _count samples of a histogram with these labels. */
void mx_histogram(struct mx_text *t, const char *name, const char *const *labels,
		  const struct mx_histogram *h);

#endif
