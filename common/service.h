/* Talking to the service manager (systemd) that started the daemon:
 * readiness, status and watchdog notifications over $NOTIFY_SOCKET, log
 * events to the journal with fields, and the environment children get
 * without the manager's variables. Everything is a no-op without systemd. */
#ifndef HUSK_COMMON_SERVICE_H
#define HUSK_COMMON_SERVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"

/* Send one notification ("READY=1", "STOPPING=1", "WATCHDOG=1", several
 * separated by '\n') when $NOTIFY_SOCKET is set; nothing otherwise.
 * Failures are ignored: the manager may be gone. */
void svc_notify(const char *state);
/* "STATUS=<text>", one line (newlines folded). */
void svc_statusf(const char *fmt, ...) _printf_(1, 2);

/* The watchdog interval in microseconds from $WATCHDOG_USEC (honouring
 * $WATCHDOG_PID), 0 when the manager expects no pings. */
uint64_t svc_watchdog_usec(void);

/* True when logs should go to the journal: stderr is a journal stream
 * ($JOURNAL_STREAM names it), or the manager runs us ($NOTIFY_SOCKET set)
 * and journald's socket exists. */
bool svc_journal_wanted(void);
/* Install the journal as the log sink (common/log.h): each event goes out
 * with sd_journal_send fields MESSAGE, PRIORITY, SYSLOG_IDENTIFIER=huskd,
 * CRI_METHOD (the calling thread's call, or a "method=" token), POD_ID
 * ("pod=" token) and CONTAINER_ID ("container=" token). An event journald
 * refuses goes to stderr. */
void svc_journal_enable(void);

/* A copy of the environment without the variables that address the
 * service manager to us (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*), for
 * processes huskd starts (shims, CNI plugins). Caller frees (strv_free). */
char **svc_child_environ(void);

#endif
