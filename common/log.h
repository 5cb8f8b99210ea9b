/* Leveled logging to stderr, one line per event, journald-friendly: a
 * "<N>" syslog priority prefix when stderr is the journal, otherwise a
 * timestamp and level word. Ids go in key=value fields. Thread-safe. */
#ifndef HUSK_COMMON_LOG_H
#define HUSK_COMMON_LOG_H

#include "common/util.h"

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error", "warn", "info" or "debug"; returns -1 on anything else. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level level);

void log_write(enum log_level level, const char *fmt, ...) _printf_(2, 3);

/* Where events go instead of stderr: fn gets the level and the formatted
 * message (at most 4095 bytes, no newline added) and returns < 0 to let
 * the line go to stderr after all. NULL restores stderr. Set once at start,
 * before other threads log. */
typedef int (*log_sink_fn)(enum log_level level, const char *msg);
void log_set_sink(log_sink_fn fn);

/* The CRI method the calling thread serves ("/runtime.v1.RuntimeService/
 * RunPodSandbox"), for sinks that record it as a field; NULL when none.
 * The string must outlive the call. */
void log_set_method(const char *method);
const char *log_get_method(void);

/* The value of the first "key=value" token of msg (key at the start or
 * after a space; value of [A-Za-z0-9_.-/]) into buf; false when absent or
 * longer than len - 1. */
bool log_field(const char *msg, const char *key, char *buf, size_t len);

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                           \
	do {                                                     \
		if (log_get_level() >= LOG_LEVEL_DEBUG)          \
			log_write(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
