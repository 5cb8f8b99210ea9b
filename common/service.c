/* sd_notify and sd_journal_send for huskd (libsystemd). Kept apart from
 * common/log.c so that the static husk-shim never links libsystemd. */
#include "common/service.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "common/log.h"

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

extern char **environ;

void svc_notify(const char *state)
{
	if (getenv("NOTIFY_SOCKET"))
		(void)sd_notify(0, state);
}

void svc_statusf(const char *fmt, ...)
{
	if (!getenv("NOTIFY_SOCKET"))
		return;
	char buf[512] = "STATUS=";
	size_t n = strlen(buf);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	for (char *p = buf; *p; p++)
		if (*p == '\n')
			*p = ' ';
	(void)sd_notify(0, buf);
}

uint64_t svc_watchdog_usec(void)
{
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

bool svc_journal_wanted(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;
	if (e && sscanf(e, "%lu:%lu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
	    st.st_dev == dev && st.st_ino == ino)
		return true;
	return getenv("NOTIFY_SOCKET") && access(JOURNAL_SOCKET, W_OK) == 0;
}

static const int priorities[] = {3, 4, 6, 7};

static int journal_sink(enum log_level level, const char *msg)
{
	char method[128], pod[160], ctr[160];
	const char *m = log_get_method();
	if (!m && log_field(msg, "method", method, sizeof(method)))
		m = method;
	if (m && strrchr(m, '/'))
		m = strrchr(m, '/') + 1;
	char prio[16];
	snprintf(prio, sizeof(prio), "PRIORITY=%d", priorities[level]);
	/* sd_journal_sendv, not a format: the message is not ours to parse. */
	struct iovec iov[6];
	size_t n = 0;
	char *strs[6] = {0};
	strs[n] = xasprintf("MESSAGE=%s", msg);
	strs[++n] = xstrdup(prio);
	strs[++n] = xstrdup("SYSLOG_IDENTIFIER=huskd");
	if (m)
		strs[++n] = xasprintf("CRI_METHOD=%s", m);
	if (log_field(msg, "pod", pod, sizeof(pod)))
		strs[++n] = xasprintf("POD_ID=%s", pod);
	if (log_field(msg, "container", ctr, sizeof(ctr)))
		strs[++n] = xasprintf("CONTAINER_ID=%s", ctr);
	n++;
	for (size_t i = 0; i < n; i++)
		iov[i] = (struct iovec){.iov_base = strs[i], .iov_len = strlen(strs[i])};
	int r = sd_journal_sendv(iov, (int)n);
	for (size_t i = 0; i < n; i++)
		free(strs[i]);
	return r < 0 ? -1 : 0;
}

void svc_journal_enable(void)
{
	log_set_sink(journal_sink);
}

char **svc_child_environ(void)
{
	static const char *const drop[] = {"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=",
					   "LISTEN_FDS=",    "LISTEN_PID=",    "LISTEN_FDNAMES="};
	char **env = xnew(char *, 1);
	for (char **e = environ; e && *e; e++) {
		bool skip = false;
		for (size_t i = 0; i < ARRAY_SIZE(drop) && !skip; i++)
			skip = startswith(*e, drop[i]);
		if (!skip)
			env = strv_append(env, *e);
	}
	return env;
}
