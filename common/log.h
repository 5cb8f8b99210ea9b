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

#define log_error(...) log_write(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_write(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_write(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)                                           \
	do {                                                     \
		if (log_get_level() >= LOG_LEVEL_DEBUG)          \
			log_write(LOG_LEVEL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
