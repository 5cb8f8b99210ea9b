/* runtime/metrics.c: /proc/net/dev parsing (lo left out, bounds, errors). */
#include <errno.h>
#include <string.h>

#include "runtime/runtime.h"
#include "unit.h"

#define HEAD                                                                                       \
	"Inter-|   Receive                                                |  Transmit\n"           \
	" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs " \
	"drop fifo colls carrier compressed\n"

static void test_parse(void)
{
	struct rt_net_iface *v = NULL;
	size_t n = 0;
	struct husk_error err = HUSK_ERROR_INIT;
	const char *text = HEAD "    lo:  100  2 0 0 0 0 0 0  100  2 0 0 0 0 0 0\n"
				"  eth0: 3000123 2100 1 2 0 0 0 0 45678 900 3 4 0 0 0 0\n";
	CU_ASSERT_EQUAL(rt_net_dev_parse(text, &v, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(v[0].name, "eth0");
	CU_ASSERT_EQUAL(v[0].rx_bytes, 3000123);
	CU_ASSERT_EQUAL(v[0].rx_packets, 2100);
	CU_ASSERT_EQUAL(v[0].rx_errors, 1);
	CU_ASSERT_EQUAL(v[0].rx_dropped, 2);
	CU_ASSERT_EQUAL(v[0].tx_bytes, 45678);
	CU_ASSERT_EQUAL(v[0].tx_packets, 900);
	CU_ASSERT_EQUAL(v[0].tx_errors, 3);
	CU_ASSERT_EQUAL(v[0].tx_dropped, 4);
	rt_net_ifaces_free(v);
	/* only the headers: no interfaces */
	CU_ASSERT_EQUAL(rt_net_dev_parse(HEAD, &v, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(v);
}

static void test_errors(void)
{
	struct rt_net_iface *v = NULL;
	size_t n = 0;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(rt_net_dev_parse(HEAD "eth0 1 2 3\n", &v, &n, &err), -EIO);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(rt_net_dev_parse(HEAD "eth0: 1 2 3\n", &v, &n, &err), -EIO);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(rt_net_dev_parse(HEAD "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa: 1 2 3 4 5 "
					      "6 7 8 9 10 11 12 13 14 15 16\n",
					 &v, &n, &err),
			-EIO);
	husk_error_clear(&err);
	/* more interfaces than RT_NET_IFACES_MAX */
	char *big = xstrdup(HEAD);
	for (int i = 0; i <= RT_NET_IFACES_MAX; i++) {
		char *next = xasprintf("%sv%d: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", big, i);
		free(big);
		big = next;
	}
	CU_ASSERT_EQUAL(rt_net_dev_parse(big, &v, &n, &err), -E2BIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "more than 256"));
	husk_error_clear(&err);
	free(big);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"parse", test_parse},
	    {"errors", test_errors},
	};
	return unit_run("net_dev", tests, ARRAY_SIZE(tests));
}
