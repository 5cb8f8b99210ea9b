/* Naming a process without the risk of pid reuse: its pid plus its start
 * time, read from /proc/PID/stat; and starting one without fork()'s cost. */
#ifndef HUSK_COMMON_PROC_H
#define HUSK_COMMON_PROC_H

#include <stdbool.h>
#include <stdint.h>
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

/* The signals this process catches and ignores (SigCgt and SigIgn of
 * /proc/self/status; bit s - 1 for signal s); -errno when /proc cannot say.
 * Async-signal-safe, as is proc_signals_default. */
int proc_signal_masks(uint64_t *ret_caught, uint64_t *ret_ignored);
/* Every caught signal (and every ignored one, with ignored_too) back to
 * SIG_DFL: a few calls where a loop over every signal made 64 (each child
 * of proc_clone_vm did, issue 12). Without /proc it asks each signal. The
 * C library's own (32, 33; 34 for musl), which its sigaction refuses, go
 * by the system call: a process can inherit them ignored. */
void proc_signals_default(bool ignored_too);

/* Descriptors huskd holds for an object's whole life (a pidfd per running
 * container) are parked at or above PROC_FD_PARK, where proc_clone_vm's
 * children do not copy them: a thousand of them cost every clone a copy of
 * the table and every child a thousand closes (issue 12). */
#define PROC_FD_PARK 1024

/* Moves fd to the lowest free descriptor at or above PROC_FD_PARK,
 * close-on-exec, and closes fd; returns the new descriptor. Where that
 * fails (the open file limit is below it) fd stays where it is and is
 * returned: only the saving is lost. */
int proc_fd_park(int fd);

/* Runs fn(arg) in a child that shares this process's memory (clone with
 * CLONE_VM | CLONE_VFORK, plus the namespace and parent flags given) on a
 * stack of its own, and returns once the child has exec'd or exited: the
 * child's pid, or -errno when clone failed. Unlike fork() it copies no page
 * tables and leaves nothing copy-on-write, whose faults (each with a TLB
 * shootdown) every thread of huskd paid after each pod and container start
 * (issue 12). The child runs with every signal blocked and every caught
 * signal back at SIG_DFL; fn may make async-signal-safe calls only (it
 * writes to huskd's memory), unblocks what it wants, and ends in execve or
 * _exit (returning from fn exits with its value). The exit signal is
 * SIGCHLD. Async-signal-safe itself, so a child may nest it.
 * maxfd is the highest descriptor fn uses or hands on (-1: none above 2).
 * Below PROC_FD_PARK, the child's descriptor table is a copy of ours below
 * PROC_FD_PARK only (CLONE_FILES, then close_range's CLOSE_RANGE_UNSHARE
 * as its first step): the parked ones are neither copied nor closed. At or
 * above it, the child gets a copy of all, as with a plain clone. */
pid_t proc_clone_vm(unsigned long flags, int maxfd, int (*fn)(void *), void *arg);

#endif
