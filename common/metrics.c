/* Duration histograms updated with atomics, and the Prometheus text
 * exposition format: HELP/TYPE lines, samples with escaped label values,
 * histograms as cumulative _bucket lines plus _sum and _count. */
#include "common/metrics.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

static const double default_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
					0.5,   1,    2.5,   5,	  10,  60};
const struct mx_buckets mx_buckets_default = {default_bounds, ARRAY_SIZE(default_bounds)};
static const double slow_bounds[] = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800};
const struct mx_buckets mx_buckets_slow = {slow_bounds, ARRAY_SIZE(slow_bounds)};

void mx_hist_observe_ns(struct mx_histogram *h, long long ns)
{
	if (ns < 0)
		ns = 0;
	double s = (double)ns / 1e9;
	size_t i = 0;
	while (i < h->b->n && s > h->b->bounds[i])
		i++;
	mx_inc(&h->counts[i], 1);
	mx_inc(&h->sum_ns, (uint64_t)ns);
}

void mx_hist_snapshot(const struct mx_histogram *h, struct mx_histogram *ret)
{
	ret->b = h->b;
	for (size_t i = 0; i <= MX_MAX_BUCKETS; i++)
		ret->counts[i] = mx_get(&h->counts[i]);
	ret->sum_ns = mx_get(&h->sum_ns);
}

void mx_text_clear(struct mx_text *t)
{
	free(t->buf);
	*t = (struct mx_text){0};
}

static void put(struct mx_text *t, const char *s, size_t n)
{
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (t->len + n + 1 > cap)
			cap *= 2;
		t->buf = xrealloc(t->buf, cap);
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = '\0';
}

static void puts_(struct mx_text *t, const char *s)
{
	put(t, s, strlen(s));
}

static void _printf_(2, 3) putf(struct mx_text *t, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		put(t, small, (size_t)n);
		return;
	}
	va_start(ap, fmt);
	_cleanup_free_ char *big = xvasprintf(fmt, ap);
	va_end(ap);
	puts_(t, big);
}

/* HELP text escapes only \ and newline; label values also escape ". */
static void put_escaped(struct mx_text *t, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			puts_(t, "\\\\");
		else if (*s == '\n')
			puts_(t, "\\n");
		else if (quote && *s == '"')
			puts_(t, "\\\"");
		else
			put(t, s, 1);
	}
}

static void put_value(struct mx_text *t, double v)
{
	if (isnan(v))
		puts_(t, "NaN");
	else if (isinf(v))
		puts_(t, v > 0 ? "+Inf" : "-Inf");
	else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(long long)v)
		putf(t, "%lld", (long long)v);
	else {
		/* The shortest of these that reads back as v. */
		char buf[64];
		snprintf(buf, sizeof(buf), "%.15g", v);
		if (strtod(buf, NULL) != v)
			snprintf(buf, sizeof(buf), "%.17g", v);
		puts_(t, buf);
	}
}

void mx_family(struct mx_text *t, const char *name, const char *type, const char *help)
{
	putf(t, "# HELP %s ", name);
	put_escaped(t, help, false);
	putf(t, "\n# TYPE %s %s\n", name, type);
}

/* name{labels[,extra_key="extra_value"]} */
static void put_series(struct mx_text *t, const char *name, const char *suffix,
		       const char *const *labels, const char *extra_key, const char *extra_value)
{
	puts_(t, name);
	puts_(t, suffix);
	bool any = (labels && labels[0]) || extra_key;
	if (!any)
		return;
	put(t, "{", 1);
	bool first = true;
	for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
		if (!first)
			put(t, ",", 1);
		first = false;
		puts_(t, labels[i]);
		puts_(t, "=\"");
		put_escaped(t, labels[i + 1], true);
		put(t, "\"", 1);
	}
	if (extra_key) {
		if (!first)
			put(t, ",", 1);
		putf(t, "%s=\"%s\"", extra_key, extra_value);
	}
	put(t, "}", 1);
}

void mx_sample(struct mx_text *t, const char *name, const char *const *labels, double value)
{
	put_series(t, name, "", labels, NULL, NULL);
	put(t, " ", 1);
	put_value(t, value);
	put(t, "\n", 1);
}

void mx_histogram(struct mx_text *t, const char *name, const char *const *labels,
		  const struct mx_histogram *h)
{
	uint64_t cum = 0;
	size_t n = h->b ? h->b->n : 0;
	for (size_t i = 0; i <= n; i++) {
		cum += h->counts[i];
		char le[64];
		if (i == n)
			snprintf(le, sizeof(le), "+Inf");
		else
			snprintf(le, sizeof(le), "%g", h->b->bounds[i]);
		put_series(t, name, "_bucket", labels, "le", le);
		putf(t, " %llu\n", (unsigned long long)cum);
	}
	put_series(t, name, "_sum", labels, NULL, NULL);
	put(t, " ", 1);
	put_value(t, (double)h->sum_ns / 1e9);
	put(t, "\n", 1);
	put_series(t, name, "_count", labels, NULL, NULL);
	putf(t, " %llu\n", (unsigned long long)cum);
}
