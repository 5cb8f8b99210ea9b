/* The container event ring: order, timeouts, readers that fall behind. */
#include "server/events.h"
#include "unit.h"

static void test_order_and_timeout(void)
{
	struct srv_events *ev = srv_events_new();
	uint64_t seq = srv_events_tail(ev);
	struct srv_event e;
	CU_ASSERT_EQUAL(srv_events_next(ev, &seq, 10, &e), 0);
	srv_events_publish(ev, SRV_EVENT_CREATED, "c1", "p1");
	srv_events_publish(ev, SRV_EVENT_STARTED, "c1", "p1");
	CU_ASSERT_EQUAL(srv_events_next(ev, &seq, 10, &e), 1);
	CU_ASSERT_STRING_EQUAL(e.container_id, "c1");
	CU_ASSERT_EQUAL(e.type, SRV_EVENT_CREATED);
	CU_ASSERT(e.created_at > 0);
	CU_ASSERT_EQUAL(srv_events_next(ev, &seq, 10, &e), 1);
	CU_ASSERT_EQUAL(e.type, SRV_EVENT_STARTED);
	CU_ASSERT_EQUAL(srv_events_next(ev, &seq, 10, &e), 0);
	srv_events_free(ev);
}

static void test_slow_reader_skips(void)
{
	struct srv_events *ev = srv_events_new();
	uint64_t seq = srv_events_tail(ev);
	for (int i = 0; i < SRV_EVENTS_RING + 5; i++)
		srv_events_publish(ev, SRV_EVENT_STOPPED, "c", "p");
	struct srv_event e;
	CU_ASSERT_EQUAL(srv_events_next(ev, &seq, 10, &e), -5);
	int n = 0;
	while (srv_events_next(ev, &seq, 0, &e) == 1)
		n++;
	CU_ASSERT_EQUAL(n, SRV_EVENTS_RING);
	srv_events_free(ev);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"order and timeout", test_order_and_timeout},
	    {"slow reader skips", test_slow_reader_skips},
	};
	return unit_run("events", tests, ARRAY_SIZE(tests));
}
