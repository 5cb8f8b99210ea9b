/* Leveled logging. A sink installed by the daemon (the journal) takes each
 * event first; otherwise, or when it fails, the line goes to stderr. When
 * JOURNAL_STREAM names our stderr, lines carry a "<N>" priority prefix that
 * journald understands; otherwise they start with an RFC 3339 UTC timestamp
 * and the level. */
#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static atomic_int current_level = LOG_LEVEL_INFO;
static int journal = -1;
static _Atomic(log_sink_fn) sink;
static _Thread_local const char *thread_method;

static const char *const names[] = {"error", "warn", "info", "debug"};
static const int priorities[] = {3, 4, 6, 7};

void log_set_level(enum log_level level)
{
	current_level = level;
}
enum log_level log_get_level(void)
{
	return current_level;
}

int log_level_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (streq(s, names[i]))
			return (int)i;
	if (streq(s, "warning"))
		return LOG_LEVEL_WARN;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return level <= LOG_LEVEL_DEBUG ? names[level] : "?";
}

void log_set_sink(log_sink_fn fn)
{
	sink = fn;
}

void log_set_method(const char *method)
{
	thread_method = method;
}

const char *log_get_method(void)
{
	return thread_method;
}

bool log_field(const char *msg, const char *key, char *buf, size_t len)
{
	size_t kl = strlen(key);
	const char *ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/";
	for (const char *p = msg; (p = strstr(p, key)); p += kl) {
		if ((p != msg && p[-1] != ' ' && p[-1] != '(') || p[kl] != '=')
			continue;
		const char *v = p + kl + 1;
		size_t n = strspn(v, ok);
		if (n == 0 || n >= len)
			continue;
		memcpy(buf, v, n);
		buf[n] = '\0';
		return true;
	}
	return false;
}

static bool stderr_is_journal(void)
{
	if (journal < 0) {
		const char *e = getenv("JOURNAL_STREAM");
		struct stat st;
		unsigned long dev, ino;
		journal = e && sscanf(e, "%lu:%lu", &dev, &ino) == 2 &&
			  fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
	}
	return journal;
}

void log_write(enum log_level level, const char *fmt, ...)
{
	if (level > (enum log_level)current_level)
		return;
	char line[4096];
	size_t n;
	log_sink_fn fn = sink;
	if (fn) {
		va_list ap;
		va_start(ap, fmt);
		int m = vsnprintf(line, sizeof(line), fmt, ap);
		va_end(ap);
		if (m >= 0 && fn(level, line) >= 0)
			return;
	}
	if (stderr_is_journal()) {
		n = (size_t)snprintf(line, sizeof(line), "<%d>", priorities[level]);
	} else {
		struct timespec ts;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%06ldZ %-5s ",
				      ts.tv_nsec / 1000, names[level]);
	}
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		return;
	n += (size_t)m;
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* One event, one line: fold embedded newlines. */
	for (char *p = line; p < line + n; p++)
		if (*p == '\n')
			*p = ' ';
	line[n++] = '\n';
	/* A single write(2) keeps lines from concurrent threads whole. */
	ssize_t w _unused_ = write(STDERR_FILENO, line, n);
}
