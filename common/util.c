/* Allocation, string and vector helpers shared by every layer. */
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>

static _noreturn_ void oom(void)
{
	static const char msg[] = "husk: out of memory\n";
	ssize_t r _unused_ = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom();
	return p;
}

void *xzalloc(size_t n)
{
	return xcalloc(1, n);
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	char *r = strdup(s ? s : "");
	if (!r)
		oom();
	return r;
}

char *xstrndup(const char *s, size_t n)
{
	char *r = strndup(s, n);
	if (!r)
		oom();
	return r;
}

char *xvasprintf(const char *fmt, va_list ap)
{
	char *r;
	if (vasprintf(&r, fmt, ap) < 0)
		oom();
	return r;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *r = xvasprintf(fmt, ap);
	va_end(ap);
	return r;
}

bool husk_id_valid(const char *s, size_t len)
{
	return len <= HUSK_ID_MAX && !memchr(s, '\0', len);
}

bool husk_obj_id_valid(const char *id)
{
	size_t n = id ? strnlen(id, HUSK_OBJ_ID_MAX + 1) : 0;
	if (n == 0 || n > HUSK_OBJ_ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

bool startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool endswith(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

size_t strv_length(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

char **strv_append(char **v, const char *s)
{
	size_t n = strv_length(v);
	v = xrealloc(v, (n + 2) * sizeof(char *));
	v[n] = xstrdup(s);
	v[n + 1] = NULL;
	return v;
}

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

void strvfreep(char ***v)
{
	strv_free(*v);
}

static long long clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}
long long now_real_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

int tty_set_size(int fd, unsigned rows, unsigned cols)
{
	if (!rows || !cols)
		return 0;
	struct winsize ws = {.ws_row = (unsigned short)(rows > 65535 ? 65535 : rows),
			     .ws_col = (unsigned short)(cols > 65535 ? 65535 : cols)};
	return ioctl(fd, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}
