/* Cancellation of a request whose caller has gone. The server fills one
 * per call; lower layers that can wait long (a pull, a plugin) take a
 * const pointer and poll husk_cancelled() between steps. No grpc here. */
#ifndef HUSK_COMMON_CANCEL_H
#define HUSK_COMMON_CANCEL_H

#include <stdbool.h>

/* Set when the caller of a request has gone: its deadline passed or it cancelled. */
struct husk_cancel {
	bool cancelled;	       /* written by the server, read with __atomic loads */
	long long deadline_ns; /* CLOCK_MONOTONIC ns (now_mono_ns()), 0 = none */
};

/* NULL: false; flag set or deadline passed: true. Safe to call from any
 * thread while the server may set the flag. */
bool husk_cancelled(const struct husk_cancel *c);

#endif
