/* common/util: tty_set_size sets a pty's size from either side, clamps what
 * a client sends to the kernel's 16 bits and leaves a 0 size alone. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "common/util.h"
#include "unit.h"

static void test_tty_set_size(void)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	CU_ASSERT_FATAL(master >= 0);
	CU_ASSERT_FATAL(grantpt(master) == 0 && unlockpt(master) == 0);
	int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	CU_ASSERT_FATAL(slave >= 0);
	struct winsize ws;

	CU_ASSERT_EQUAL(tty_set_size(master, 45, 123), 0);
	CU_ASSERT_EQUAL(ioctl(slave, TIOCGWINSZ, &ws), 0);
	CU_ASSERT_EQUAL(ws.ws_row, 45);
	CU_ASSERT_EQUAL(ws.ws_col, 123);

	/* The slave side sets the same pair's size. */
	CU_ASSERT_EQUAL(tty_set_size(slave, 24, 80), 0);
	CU_ASSERT_EQUAL(ioctl(master, TIOCGWINSZ, &ws), 0);
	CU_ASSERT_EQUAL(ws.ws_row, 24);
	CU_ASSERT_EQUAL(ws.ws_col, 80);

	/* A 0 in either is no size: nothing changes. */
	CU_ASSERT_EQUAL(tty_set_size(master, 0, 100), 0);
	CU_ASSERT_EQUAL(tty_set_size(master, 100, 0), 0);
	CU_ASSERT_EQUAL(ioctl(slave, TIOCGWINSZ, &ws), 0);
	CU_ASSERT_EQUAL(ws.ws_row, 24);
	CU_ASSERT_EQUAL(ws.ws_col, 80);

	/* Over 16 bits: clamped, not wrapped to a small size. */
	CU_ASSERT_EQUAL(tty_set_size(master, 70000, 65536), 0);
	CU_ASSERT_EQUAL(ioctl(slave, TIOCGWINSZ, &ws), 0);
	CU_ASSERT_EQUAL(ws.ws_row, 65535);
	CU_ASSERT_EQUAL(ws.ws_col, 65535);

	/* Not a terminal: the kernel's error. */
	int p[2];
	CU_ASSERT_FATAL(pipe(p) == 0);
	CU_ASSERT_EQUAL(tty_set_size(p[0], 1, 1), -ENOTTY);
	close(p[0]);
	close(p[1]);
	close(slave);
	close(master);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"tty size", test_tty_set_size},
	};
	return unit_run("util", tests, ARRAY_SIZE(tests));
}
