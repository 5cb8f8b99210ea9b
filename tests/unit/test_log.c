/* common/log.c and common/service.c: the key=value tokens the journal sink
 * turns into fields, the sink hook and the environment children get. */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/service.h"
#include "unit.h"

static void test_fields(void)
{
	char buf[64];
	CU_ASSERT_TRUE(log_field("container=abc started pid=3", "container", buf, sizeof(buf)));
	CU_ASSERT_STRING_EQUAL(buf, "abc");
	CU_ASSERT_TRUE(log_field("container created container=c1 pod=p-1.x name=web", "pod", buf,
				 sizeof(buf)));
	CU_ASSERT_STRING_EQUAL(buf, "p-1.x");
	/* "pod=x:" stops at the colon. */
	CU_ASSERT_TRUE(log_field("recover pod=abc: sandbox is gone", "pod", buf, sizeof(buf)));
	CU_ASSERT_STRING_EQUAL(buf, "abc");
	CU_ASSERT_TRUE(log_field("call method=/runtime.v1.RuntimeService/Version status=OK",
				 "method", buf, sizeof(buf)));
	CU_ASSERT_STRING_EQUAL(buf, "/runtime.v1.RuntimeService/Version");
	/* Keys inside other words or values do not count. */
	CU_ASSERT_FALSE(log_field("subpod=abc", "pod", buf, sizeof(buf)));
	CU_ASSERT_FALSE(log_field("name=pod=abc", "pod", buf, sizeof(buf)));
	CU_ASSERT_FALSE(log_field("pod= empty", "pod", buf, sizeof(buf)));
	CU_ASSERT_FALSE(log_field("no fields", "pod", buf, sizeof(buf)));
	/* Too long for the buffer: absent rather than cut. */
	CU_ASSERT_FALSE(log_field("pod=0123456789", "pod", buf, 8));
	/* The first usable one wins. */
	CU_ASSERT_TRUE(log_field("pod= x pod=second", "pod", buf, sizeof(buf)));
	CU_ASSERT_STRING_EQUAL(buf, "second");
}

static char sunk[256];
static enum log_level sunk_level;
static int sink_result;

static int sink(enum log_level level, const char *msg)
{
	snprintf(sunk, sizeof(sunk), "%s", msg);
	sunk_level = level;
	return sink_result;
}

static void test_sink(void)
{
	log_set_sink(sink);
	sink_result = 0;
	log_warn("container=%s oops", "x1");
	CU_ASSERT_STRING_EQUAL(sunk, "container=x1 oops");
	CU_ASSERT_EQUAL(sunk_level, LOG_LEVEL_WARN);
	/* Below the level: the sink never hears of it. */
	sunk[0] = '\0';
	log_debug("quiet");
	CU_ASSERT_STRING_EQUAL(sunk, "");
	log_set_sink(NULL);
	log_set_method("/runtime.v1.RuntimeService/Version");
	CU_ASSERT_STRING_EQUAL(log_get_method(), "/runtime.v1.RuntimeService/Version");
	log_set_method(NULL);
	CU_ASSERT_PTR_NULL(log_get_method());
}

static void test_child_environ(void)
{
	setenv("NOTIFY_SOCKET", "/run/x", 1);
	setenv("WATCHDOG_USEC", "1000", 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("HUSK_UNIT_KEEP", "yes", 1);
	_cleanup_strv_ char **env = svc_child_environ();
	bool keep = false;
	for (char **e = env; *e; e++) {
		CU_ASSERT_FALSE(startswith(*e, "NOTIFY_SOCKET="));
		CU_ASSERT_FALSE(startswith(*e, "WATCHDOG_"));
		CU_ASSERT_FALSE(startswith(*e, "LISTEN_"));
		keep = keep || streq(*e, "HUSK_UNIT_KEEP=yes");
	}
	CU_ASSERT_TRUE(keep);
	/* Our own environment is untouched: sd_notify still needs it. */
	CU_ASSERT_STRING_EQUAL(getenv("NOTIFY_SOCKET"), "/run/x");
	CU_ASSERT_EQUAL(svc_watchdog_usec(), 1000);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("LISTEN_FDS");
	CU_ASSERT_EQUAL(svc_watchdog_usec(), 0);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"key=value fields", test_fields},
	    {"sink", test_sink},
	    {"child environment", test_child_environ},
	};
	return unit_run("log", tests, ARRAY_SIZE(tests));
}
