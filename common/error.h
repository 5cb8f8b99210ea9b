/* Errors carried up the stack: an errno-style code plus a message that each
 * caller may prefix with its own context. The RPC edge maps the code to a
 * gRPC status (see server/status.c); library code never logs failures. */
#ifndef HUSK_COMMON_ERROR_H
#define HUSK_COMMON_ERROR_H

#include "common/util.h"

/* Codes are errno values. Beyond their usual meaning husk uses:
 *   EINVAL   bad input from the caller     -> INVALID_ARGUMENT
 *   ENOENT   unknown object                -> NOT_FOUND
 *   EEXIST   name already taken            -> ALREADY_EXISTS
 *   EBUSY    wrong state for the operation -> FAILED_PRECONDITION
 *   ENOSYS   not implemented               -> UNIMPLEMENTED
 *   EACCES   refused by a registry/policy  -> PERMISSION_DENIED
 *   ETIMEDOUT                              -> DEADLINE_EXCEEDED
 *   ENOSPC, EMFILE                         -> RESOURCE_EXHAUSTED
 *   EAGAIN, ECONNREFUSED                   -> UNAVAILABLE
 *   anything else                          -> INTERNAL
 * A code that a system call returned (husk_error_errno, husk_error_sys)
 * keeps the kernel's meaning: its ENOENT is a missing file inside a step
 * on a known object, not an unknown object, and maps to
 * FAILED_PRECONDITION (the message names the path). */
struct husk_error {
	int code;
	char *msg;
	bool sys; /* code is a system call's errno (see above) */
};

#define HUSK_ERROR_INIT \
	{               \
		0, NULL \
	}

/* Set err (if not NULL) to code and the formatted message, replacing any
 * earlier error. Returns -code so callers can `return husk_error_set(...)`. */
int husk_error_set(struct husk_error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Like husk_error_set, with ": strerror(code)" appended. */
int husk_error_errno(struct husk_error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Like husk_error_set, for an error another process reported with its
 * errno (a launcher child, husk-shim): code is a system call's. */
int husk_error_sys(struct husk_error *err, int code, const char *fmt, ...) _printf_(3, 4);
/* Prepend "context: " to the message; returns -err->code. */
int husk_error_prefix(struct husk_error *err, const char *fmt, ...) _printf_(2, 3);

/* Move src into dst (dst's old message is freed); returns -code. */
int husk_error_move(struct husk_error *dst, struct husk_error *src);

void husk_error_clear(struct husk_error *err);
static inline void husk_error_clearp(struct husk_error *err)
{
	husk_error_clear(err);
}
#define _cleanup_error_ _cleanup_(husk_error_clearp)
/* For a function that reads err->code but whose callers may pass NULL
 * ("the reason does not matter"): err then points at a local error that
 * is freed when the block ends. */
#define HUSK_ERROR_OPTIONAL(err)                                            \
	_cleanup_error_ struct husk_error err##_optional = HUSK_ERROR_INIT; \
	if (!(err))                                                         \
	(err) = &err##_optional

static inline const char *husk_error_msg(const struct husk_error *err)
{
	return err && err->msg ? err->msg : "unknown error";
}

#endif
