/* CUnit tests of the CRI log writer husk-shim uses: timestamps, F and P
 * records, lines split across writes, the maximum line length, empty
 * lines, flush at end of stream, and reopening after rotation. */
#include "runtime/launcher/launcher.h"

#include <string.h>
#include <unistd.h>

#include "unit.h"

static long long fixed_clock(void)
{
	return 1475713029669794202LL;
} /* 2016-10-06T00:17:09.669794202Z */

static char *slurp(const char *path)
{
	char *buf = NULL;
	if (fs_read_file(path, 1 << 24, &buf, NULL, NULL) < 0)
		return xstrdup("");
	return buf;
}

static void test_time_format(void)
{
	char buf[LC_LOG_TIME_LEN + 1];
	CU_ASSERT_EQUAL(lc_log_format_time(fixed_clock(), buf), LC_LOG_TIME_LEN);
	CU_ASSERT_STRING_EQUAL(buf, "2016-10-06T00:17:09.669794202Z");
	lc_log_format_time(0, buf);
	CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00.000000000Z");
	lc_log_format_time(1000000000LL * 86400 * 365 + 5, buf);
	CU_ASSERT_STRING_EQUAL(buf, "1971-01-01T00:00:00.000000005Z");
}

#define TS "2016-10-06T00:17:09.669794202Z "

static void test_lines(void)
{
	char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/0.log", dir);
	_cleanup_(lc_log_freep) struct lc_log *l = lc_log_new(path, 8);
	lc_log_set_clock(l, fixed_clock);
	CU_ASSERT_EQUAL_FATAL(lc_log_reopen(l, NULL), 0);

	lc_log_write(l, LC_LOG_STDOUT, "hello\nwor", 9);
	lc_log_write(l, LC_LOG_STDERR, "oops\n", 5);
	lc_log_write(l, LC_LOG_STDOUT, "ld\n\n", 4);
	lc_log_write(l, LC_LOG_STDOUT, "12345678\n", 9);	   /* exactly max: one F */
	lc_log_write(l, LC_LOG_STDOUT, "abcdefghijklmnopq\n", 18); /* 17 bytes: P P F */
	lc_log_write(l, LC_LOG_STDERR, "1234567", 7);
	lc_log_write(l, LC_LOG_STDERR, "8", 1);	 /* full, no newline yet */
	lc_log_write(l, LC_LOG_STDERR, "\n", 1); /* still one F */
	lc_log_write(l, LC_LOG_STDOUT, "tail", 4);
	lc_log_flush(l, LC_LOG_STDOUT);
	lc_log_flush(l, LC_LOG_STDERR); /* nothing pending */

	_cleanup_free_ char *got = slurp(path);
	const char *want =
	    TS "stdout F hello\n" TS "stderr F oops\n" TS "stdout F world\n" TS "stdout F \n" TS
	       "stdout F 12345678\n" TS "stdout P abcdefgh\n" TS "stdout P ijklmnop\n" TS
	       "stdout F q\n" TS "stderr F 12345678\n" TS "stdout F tail\n";
	if (!streq(got, want))
		fprintf(stderr, "\ngot:\n%s\nwant:\n%s\n", got, want);
	CU_ASSERT_STRING_EQUAL(got, want);
	CU_ASSERT_EQUAL(lc_log_dropped(l), 0);
	unit_rmdir(dir);
}

static void test_default_max_and_rotation(void)
{
	char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/0.log", dir);
	_cleanup_free_ char *rotated = xasprintf("%s/0.log.1", dir);
	_cleanup_(lc_log_freep) struct lc_log *l = lc_log_new(path, 0);
	lc_log_set_clock(l, fixed_clock);
	CU_ASSERT_EQUAL_FATAL(lc_log_reopen(l, NULL), 0);

	/* 40000 bytes without newline, then one: 16384 + 16384 as P, rest F. */
	size_t n = 40000;
	char *big = xmalloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\n';
	for (size_t off = 0; off <= n; off += 1000)
		lc_log_write(l, LC_LOG_STDOUT, big + off, off + 1000 <= n + 1 ? 1000 : n + 1 - off);
	free(big);
	CU_ASSERT_EQUAL(rename(path, rotated), 0);
	lc_log_write(l, LC_LOG_STDOUT, "after\n", 6); /* still goes to the old file */
	CU_ASSERT_EQUAL(lc_log_reopen(l, NULL), 0);
	lc_log_write(l, LC_LOG_STDOUT, "new\n", 4);

	_cleanup_free_ char *old = slurp(rotated);
	_cleanup_free_ char *cur = slurp(path);
	CU_ASSERT_STRING_EQUAL(cur, TS "stdout F new\n");
	char *lines[5] = {0};
	size_t k = 0;
	for (char *save = NULL, *t = strtok_r(old, "\n", &save); t && k < 5;
	     t = strtok_r(NULL, "\n", &save))
		lines[k++] = t;
	CU_ASSERT_EQUAL_FATAL(k, 4);
	CU_ASSERT_TRUE(startswith(lines[0], TS "stdout P xxx"));
	CU_ASSERT_EQUAL(strlen(lines[0]), strlen(TS "stdout P ") + 16384);
	CU_ASSERT_TRUE(startswith(lines[1], TS "stdout P xxx"));
	CU_ASSERT_EQUAL(strlen(lines[1]), strlen(TS "stdout P ") + 16384);
	CU_ASSERT_TRUE(startswith(lines[2], TS "stdout F xxx"));
	CU_ASSERT_EQUAL(strlen(lines[2]), strlen(TS "stdout F ") + 40000 - 2 * 16384);
	CU_ASSERT_STRING_EQUAL(lines[3], TS "stdout F after");
	unit_rmdir(dir);
}

static void test_no_file(void)
{
	_cleanup_(lc_log_freep) struct lc_log *l = lc_log_new(NULL, 0);
	CU_ASSERT_EQUAL(lc_log_reopen(l, NULL), 0);
	lc_log_write(l, LC_LOG_STDOUT, "a\nb\n", 4);
	CU_ASSERT_EQUAL(lc_log_dropped(l), 2);
	_cleanup_(lc_log_freep) struct lc_log *bad = lc_log_new("/nonexistent/dir/0.log", 0);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(lc_log_reopen(bad, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.msg,
			       "open log '/nonexistent/dir/0.log': No such file or directory");
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"RFC 3339 nano time", test_time_format},
	    {"F and P records", test_lines},
	    {"16 KiB lines and rotation", test_default_max_and_rotation},
	    {"no file", test_no_file},
	};
	return unit_run("launcher log", tests, ARRAY_SIZE(tests));
}
