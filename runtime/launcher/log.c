/* CRI log records: timestamps, stream names, P/F tags, and buffering of
 * partial lines, each line buffer bounded by max_line. */
#include "runtime/launcher/log.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

struct pending {
	char *buf; /* allocated on first use, max_line bytes */
	size_t len;
};

struct lc_log {
	char *path;
	int fd;
	size_t max_line;
	struct pending p[2];
	unsigned long long dropped;
	long long (*clock)(void);
};

struct lc_log *lc_log_new(const char *path, size_t max_line)
{
	struct lc_log *l = xnew(struct lc_log, 1);
	l->path = path ? xstrdup(path) : NULL;
	l->fd = -1;
	l->max_line = max_line ? max_line : LC_LOG_MAX_LINE;
	l->clock = now_real_ns;
	return l;
}

void lc_log_free(struct lc_log *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->p[0].buf);
	free(l->p[1].buf);
	free(l->path);
	free(l);
}

void lc_log_set_clock(struct lc_log *l, long long (*clock)(void))
{
	l->clock = clock;
}

unsigned long long lc_log_dropped(const struct lc_log *l)
{
	return l->dropped;
}

int lc_log_reopen(struct lc_log *l, struct husk_error *err)
{
	if (!l->path)
		return 0;
	int fd = open(l->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd < 0)
		return husk_error_errno(err, errno, "open log '%s'", l->path);
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	return 0;
}

size_t lc_log_format_time(long long ns, char *buf)
{
	time_t sec = (time_t)(ns / 1000000000LL);
	long frac = (long)(ns % 1000000000LL);
	if (frac < 0) {
		frac += 1000000000L;
		sec--;
	}
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t n = strftime(buf, LC_LOG_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(buf + n, LC_LOG_TIME_LEN + 1 - n, ".%09ldZ", frac);
	return n;
}

static void emit(struct lc_log *l, enum lc_log_stream s, bool partial, const char *a, size_t alen,
		 const char *b, size_t blen)
{
	if (l->fd < 0) {
		l->dropped++;
		return;
	}
	char head[LC_LOG_TIME_LEN + 16];
	size_t hl = lc_log_format_time(l->clock(), head);
	const char *tag = s == LC_LOG_STDOUT ? (partial ? " stdout P " : " stdout F ")
					     : (partial ? " stderr P " : " stderr F ");
	memcpy(head + hl, tag, 10);
	hl += 10;
	struct iovec iov[4] = {{head, hl}, {(void *)a, alen}, {(void *)b, blen}, {(void *)"\n", 1}};
	size_t total = hl + alen + blen + 1;
	/* O_APPEND writes of one record are atomic on local file systems;
	 * finish a short write rather than leave half a line. */
	int idx = 0;
	while (total > 0) {
		ssize_t n = writev(l->fd, iov + idx, 4 - idx);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			l->dropped++;
			return;
		}
		total -= (size_t)n;
		while (idx < 4 && (size_t)n >= iov[idx].iov_len) {
			n -= (ssize_t)iov[idx].iov_len;
			idx++;
		}
		if (idx < 4) {
			iov[idx].iov_base = (char *)iov[idx].iov_base + n;
			iov[idx].iov_len -= (size_t)n;
		}
	}
}

void lc_log_write(struct lc_log *l, enum lc_log_stream s, const char *data, size_t len)
{
	struct pending *p = &l->p[s];
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t line = nl ? (size_t)(nl - data) : len;
		/* Whole lines that need no buffering go straight out. */
		while (line > 0) {
			if (p->len == l->max_line) {
				emit(l, s, true, p->buf, p->len, NULL, 0);
				p->len = 0;
			}
			if (p->len == 0 && nl && line <= l->max_line)
				break;
			size_t n = l->max_line - p->len;
			if (n > line)
				n = line;
			if (!p->buf)
				p->buf = xmalloc(l->max_line);
			memcpy(p->buf + p->len, data, n);
			p->len += n;
			data += n;
			len -= n;
			line -= n;
		}
		if (!nl)
			break;
		emit(l, s, false, p->buf, p->len, data, line);
		p->len = 0;
		data += line + 1;
		len -= line + 1;
	}
}

void lc_log_flush(struct lc_log *l, enum lc_log_stream s)
{
	struct pending *p = &l->p[s];
	if (p->len == 0)
		return;
	emit(l, s, false, p->buf, p->len, NULL, 0);
	p->len = 0;
}
