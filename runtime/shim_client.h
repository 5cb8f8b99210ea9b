/* huskd's side of husk-shim: start a container through its shim, read the
 * state the shim records, and talk to the shim's control socket. The shim
 * keeps running (and keeps these files current) while huskd is down.
 *
 * The shim's state directory (spec "shim.state_dir"), every file written
 * atomically (temp file + rename):
 *   shim.pid      {"pid": N, "start_time": T}        the shim itself
 *   pid           {"pid": N, "start_time": T, "started_at": NS}
 *                 the container's init (host pid), once it runs; T is
 *                 /proc/PID/stat field 22, NS wall-clock nanoseconds
 *   error         {"code": ERRNO, "message": "exec '/bin/nope': ..."}
 *                 the launch failed; the shim has exited
 *   exit          {"exit_code": 137, "signal": 9, "exited_at": NS,
 *                  "oom_killed": false}
 *                 the container ended (exit_code is 128+signal when
 *                 killed); the shim has exited or is about to
 *   control.sock  the control socket (below)
 *   shim.log      the shim's own log
 *
 * Control socket: AF_UNIX SOCK_SEQPACKET, one text request per packet and
 * one reply packet each, "ok ..." or "error ERRNO message":
 *   "signal N"          kill(container, N)
 *   "reopen"            reopen the log file (ReopenContainerLog)
 *   "resize ROWS COLS"  set the pty window size (tty containers)
 *   "state"             "ok running PID" or "ok exited CODE"
 *   "attach"            "ok TTY STDIN" (each 0 or 1: the container has a
 *                       terminal, an open stdin), then the connection is an
 *                       attach connection: the shim sends "1<data>" and
 *                       "2<data>" packets, the container's stdout and
 *                       stderr as they also go to the log (a terminal's
 *                       output is "1"), and takes "0<data>" (stdin), "r
 *                       ROWS COLS" (resize) and "0" alone (end of this
 *                       client's stdin). When an attached client ends its
 *                       stdin or goes away and the container has
 *                       stdin_once, the container's stdin is closed. At
 *                       most CTR_SHIM_MAX_ATTACH at once; a client that does
 *                       not keep up (its socket buffer full) is dropped, so
 *                       the container never waits for one. The shim closes
 *                       them all when the container's output ends. */
#ifndef HUSK_RUNTIME_SHIM_CLIENT_H
#define HUSK_RUNTIME_SHIM_CLIENT_H

#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

#define CTR_SHIM_CONTROL "control.sock"
#define CTR_SHIM_MAX_ATTACH 16

struct ctr_pidinfo {
	pid_t pid;
	unsigned long long start_time; /* /proc/PID/stat field 22 */
	long long started_at;	       /* wall clock, ns */
};

struct ctr_exit {
	int exit_code; /* 128 + signal when killed by a signal */
	int signal;    /* 0 unless killed by a signal */
	bool oom_killed;
	long long exited_at; /* wall clock, ns */
};

/* Start husk-shim (shim_path) for the spec file spec_path, whose
 * shim.state_dir must be state_dir (created 0700 if missing; stale pid,
 * exit and error files are removed). The shim is double-forked into its
 * own session, so it is not huskd's child and survives huskd. Waits up to
 * timeout_ns for the container to run and returns its pid; on a launch
 * failure returns the child's error as it was ("exec '/bin/nope': No such
 * file or directory", with its errno as the code). ETIMEDOUT when the shim
 * does not report in time (it and the container are then killed). Safe to
 * call from a multithreaded process. */
int ctr_shim_start(const char *shim_path, const char *spec_path, const char *state_dir,
		   long long timeout_ns, struct ctr_pidinfo *ret, struct husk_error *err);

/* The container's pid file: ENOENT when it never started. */
int ctr_shim_read_pid(const char *state_dir, struct ctr_pidinfo *ret, struct husk_error *err);
/* The shim's own pid file (no started_at). */
int ctr_shim_read_shim_pid(const char *state_dir, struct ctr_pidinfo *ret, struct husk_error *err);
/* The exit file: ENOENT while the container has not ended (or its shim
 * died before writing it: check proc_alive on the pid). */
int ctr_shim_read_exit(const char *state_dir, struct ctr_exit *ret, struct husk_error *err);
/* The launch error recorded by the shim: ENOENT when there is none;
 * otherwise ret_code and ret_msg (caller frees). */
int ctr_shim_read_error(const char *state_dir, int *ret_code, char **ret_msg,
			struct husk_error *err);

/* Wait for the exit file, up to timeout_ns (0: just look). ETIMEDOUT. */
int ctr_shim_wait_exit(const char *state_dir, long long timeout_ns, struct ctr_exit *ret,
		       struct husk_error *err);

/* Send sig to the container. Through the shim when it answers; otherwise
 * (the shim is gone) directly, by pidfd, after checking the start time.
 * ESRCH when the container is not running. */
int ctr_shim_signal(const char *state_dir, int sig, struct husk_error *err);

/* Direct kill of a process by pid and start time (pidfd_send_signal).
 * ESRCH when it is gone or the pid was reused. */
int ctr_proc_kill(const struct ctr_pidinfo *p, int sig, struct husk_error *err);

/* Ask the shim to reopen its log file (ReopenContainerLog). ESRCH when the
 * shim is not running. */
int ctr_shim_reopen_log(const char *state_dir, struct husk_error *err);

/* Set the container's terminal size. EINVAL for a container without tty. */
int ctr_shim_resize(const char *state_dir, unsigned rows, unsigned cols, struct husk_error *err);

/* Attach to the container's stdio (the "attach" request). On success
 * *ret_fd is the attach connection (blocking, close-on-exec; the caller
 * closes it to detach) and *ret_tty / *ret_stdin come from the reply.
 * ESRCH when the shim is not running, EAGAIN when it has too many. */
int ctr_shim_attach(const char *state_dir, int *ret_fd, bool *ret_tty, bool *ret_stdin,
		    struct husk_error *err);

/* One request on the control socket; *ret_reply (caller frees) is the
 * text after "ok" ("" when none). A reply "error N msg" becomes error N. */
int ctr_shim_request(const char *state_dir, const char *request, char **ret_reply,
		     struct husk_error *err);

#endif
