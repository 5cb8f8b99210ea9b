/* common/metrics.c: the Prometheus text format (escaping, values,
 * cumulative histogram buckets) and histogram bucketing. */
#include <math.h>
#include <string.h>

#include "common/metrics.h"
#include "unit.h"

static void test_samples_and_escaping(void)
{
	struct mx_text t = {0};
	mx_family(&t, "x_total", "counter", "Help with \\ and\nnewline.");
	mx_sample(&t, "x_total", NULL, 3);
	const char *labels[] = {"a", "q\"uote", "b", "back\\slash\nnl", NULL};
	mx_sample(&t, "x_total", labels, 0.25);
	mx_sample(&t, "x_total", (const char *[]){"k", "v", NULL}, 1e20);
	mx_sample(&t, "x_total", (const char *[]){"k", "inf", NULL}, INFINITY);
	mx_sample(&t, "x_total", (const char *[]){"k", "nan", NULL}, NAN);
	mx_sample(&t, "x_total", (const char *[]){"k", "big", NULL}, 18446744073709551615.0);
	mx_sample(&t, "x_total", (const char *[]){"k", "neg", NULL}, -2);
	CU_ASSERT_STRING_EQUAL(t.buf, "# HELP x_total Help with \\\\ and\\nnewline.\n"
				      "# TYPE x_total counter\n"
				      "x_total 3\n"
				      "x_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 0.25\n"
				      "x_total{k=\"v\"} 1e+20\n"
				      "x_total{k=\"inf\"} +Inf\n"
				      "x_total{k=\"nan\"} NaN\n"
				      "x_total{k=\"big\"} 1.8446744073709552e+19\n"
				      "x_total{k=\"neg\"} -2\n");
	mx_text_clear(&t);
	CU_ASSERT_PTR_NULL(t.buf);
}

static void test_histogram(void)
{
	static const double bounds[] = {0.1, 1};
	static const struct mx_buckets b = {bounds, 2};
	struct mx_histogram h = {.b = &b};
	mx_hist_observe_ns(&h, 50000000);     /* 0.05 s */
	mx_hist_observe_ns(&h, 100000000);    /* 0.1 s: le is inclusive */
	mx_hist_observe_ns(&h, 500000000);    /* 0.5 s */
	mx_hist_observe_ns(&h, 3000000000LL); /* 3 s */
	mx_hist_observe_ns(&h, -5);	      /* counts as 0 */
	struct mx_histogram snap;
	mx_hist_snapshot(&h, &snap);
	struct mx_text t = {0};
	mx_histogram(&t, "d_seconds", (const char *[]){"op", "ADD", NULL}, &snap);
	CU_ASSERT_STRING_EQUAL(t.buf, "d_seconds_bucket{op=\"ADD\",le=\"0.1\"} 3\n"
				      "d_seconds_bucket{op=\"ADD\",le=\"1\"} 4\n"
				      "d_seconds_bucket{op=\"ADD\",le=\"+Inf\"} 5\n"
				      "d_seconds_sum{op=\"ADD\"} 3.65\n"
				      "d_seconds_count{op=\"ADD\"} 5\n");
	mx_text_clear(&t);
	mx_histogram(&t, "e_seconds", NULL, &(struct mx_histogram){.b = &b});
	CU_ASSERT_PTR_NOT_NULL(strstr(t.buf, "e_seconds_bucket{le=\"+Inf\"} 0\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(t.buf, "e_seconds_count 0\n"));
	mx_text_clear(&t);
}

static void test_long_output_grows(void)
{
	struct mx_text t = {0};
	char name[300];
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	for (int i = 0; i < 1000; i++)
		mx_sample(&t, name, NULL, i);
	CU_ASSERT_EQUAL(t.len, strlen(t.buf));
	CU_ASSERT_PTR_NOT_NULL(strstr(t.buf, "n 999\n"));
	mx_text_clear(&t);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"samples and escaping", test_samples_and_escaping},
	    {"histogram", test_histogram},
	    {"long output", test_long_output_grows},
	};
	return unit_run("metrics", tests, ARRAY_SIZE(tests));
}
