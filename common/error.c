/* struct husk_error helpers. */
#include "common/error.h"

#include <errno.h>
#include <string.h>

static int set_va(struct husk_error *err, int code, bool with_errno, bool sys, const char *fmt,
		  va_list ap)
{
	if (code <= 0)
		code = EIO;
	if (!err)
		return -code;
	char *msg = xvasprintf(fmt, ap);
	if (with_errno) {
		char *full = xasprintf("%s: %s", msg, strerror(code));
		free(msg);
		msg = full;
	}
	free(err->msg);
	err->msg = msg;
	err->code = code;
	err->sys = sys;
	return -code;
}

int husk_error_set(struct husk_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_va(err, code, false, false, fmt, ap);
	va_end(ap);
	return r;
}

int husk_error_errno(struct husk_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_va(err, code, true, true, fmt, ap);
	va_end(ap);
	return r;
}

int husk_error_sys(struct husk_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = set_va(err, code, false, true, fmt, ap);
	va_end(ap);
	return r;
}

int husk_error_prefix(struct husk_error *err, const char *fmt, ...)
{
	if (!err)
		return -EIO;
	if (err->code <= 0)
		err->code = EIO;
	va_list ap;
	va_start(ap, fmt);
	char *ctx = xvasprintf(fmt, ap);
	va_end(ap);
	char *msg = xasprintf("%s: %s", ctx, husk_error_msg(err));
	free(ctx);
	free(err->msg);
	err->msg = msg;
	return -err->code;
}

int husk_error_move(struct husk_error *dst, struct husk_error *src)
{
	int code = src->code > 0 ? src->code : EIO;
	if (dst) {
		free(dst->msg);
		dst->msg = steal_ptr(&src->msg);
		dst->code = code;
		dst->sys = src->sys;
	}
	husk_error_clear(src);
	return -code;
}

void husk_error_clear(struct husk_error *err)
{
	if (!err)
		return;
	free(err->msg);
	err->msg = NULL;
	err->code = 0;
	err->sys = false;
}
