/* The CRI container log format, as husk-shim writes it: one record per
 * line, "2016-10-06T00:17:09.669794202Z stdout F text", with P (partial)
 * records for lines longer than the maximum and F for the end of a line. */
#ifndef HUSK_RUNTIME_SHIM_LOG_H
#define HUSK_RUNTIME_SHIM_LOG_H

#include "common/error.h"

#define LC_LOG_MAX_LINE (16u * 1024)
#define LC_LOG_TIME_LEN 30 /* "2016-10-06T00:17:09.669794202Z" */

enum lc_log_stream { LC_LOG_STDOUT, LC_LOG_STDERR };

struct lc_log;

/* A writer for path (NULL: records are dropped) cutting lines at max_line
 * bytes (0: LC_LOG_MAX_LINE). The file is opened by lc_log_reopen. */
struct lc_log *lc_log_new(const char *path, size_t max_line);
void lc_log_free(struct lc_log *l);
static inline void lc_log_freep(struct lc_log **l)
{
	lc_log_free(*l);
}

/* (Re)open the file for appending, creating it 0640 (ReopenContainerLog,
 * after the kubelet rotated it). The old fd is closed only on success. */
int lc_log_reopen(struct lc_log *l, struct husk_error *err);

/* Feed output of a stream. Complete lines become F records at once; the
 * rest waits for its newline, except that every max_line bytes without
 * one become a P record. */
void lc_log_write(struct lc_log *l, enum lc_log_stream s, const char *data, size_t len);

/* The stream ended: a pending unterminated line becomes an F record. */
void lc_log_flush(struct lc_log *l, enum lc_log_stream s);

/* Records that could not be written (disk full, no file). */
unsigned long long lc_log_dropped(const struct lc_log *l);

/* RFC 3339 with nanoseconds in UTC: always 9 fraction digits and "Z".
 * buf must hold LC_LOG_TIME_LEN + 1 bytes. Returns the length. */
size_t lc_log_format_time(long long realtime_ns, char *buf);

/* For tests: the clock used for records (default now_real_ns). */
void lc_log_set_clock(struct lc_log *l, long long (*clock)(void));

#endif
