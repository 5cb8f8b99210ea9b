/* Naming a process without the risk of pid reuse: its pid plus its start
 * time, read from /proc/PID/stat. */
#ifndef HUSK_COMMON_PROC_H
#define HUSK_COMMON_PROC_H

#include <sys/types.h>

#include "common/error.h"

/* Field 3 (the state letter) and field 22 (the start time, clock ticks
 * since boot) of /proc/PID/stat. ESRCH when there is no such process. */
int proc_stat_read(pid_t pid, char *ret_state, unsigned long long *ret_start,
		   struct husk_error *err);

/* The start time of pid; ESRCH when it is gone or a zombie. */
int proc_start_time(pid_t pid, unsigned long long *ret, struct husk_error *err);

/* True when pid is alive (not a zombie) and still the process that started
 * at start_time. */
bool proc_alive(pid_t pid, unsigned long long start_time);

#endif
