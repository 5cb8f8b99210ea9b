/* The only place that packs and unpacks protobuf-c messages, and the map
 * from husk error codes to gRPC status codes. */
#include <errno.h>
#include <string.h>

#include "server/server.h"

void *srv_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len)
{
	return protobuf_c_message_unpack(desc, NULL, len, data);
}

size_t srv_encode(const void *msg, uint8_t **ret_buf)
{
	const ProtobufCMessage *m = msg;
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = xmalloc(len);
	protobuf_c_message_pack(m, buf);
	*ret_buf = buf;
	return len;
}

void srv_message_free(void *msg)
{
	/* Works for decoded messages and for responses the handlers built from
	 * heap memory: both are released through the default allocator. */
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
}

char *srv_strdup(const char *s)
{
	return xstrdup(s ? s : "");
}

enum srv_code srv_status_from(int code)
{
	switch (code) {
	case 0:
		return SRV_OK;
	case EINVAL:
	case E2BIG:
	case ENAMETOOLONG:
		return SRV_INVALID_ARGUMENT;
	case ENOENT:
	case ESRCH:
		return SRV_NOT_FOUND;
	case EEXIST:
		return SRV_ALREADY_EXISTS;
	case EBUSY:
	case ENOTEMPTY:
	case EALREADY:
	case EXDEV: /* a volume's host mount cannot propagate as asked */
		return SRV_FAILED_PRECONDITION;
	case ENOSYS:
	case EOPNOTSUPP:
		return SRV_UNIMPLEMENTED;
	case EACCES:
		return SRV_PERMISSION_DENIED;
	case ETIMEDOUT:
		return SRV_DEADLINE_EXCEEDED;
	case ENOSPC:
	case EMFILE:
	case ENFILE:
	case EDQUOT:
		return SRV_RESOURCE_EXHAUSTED;
	case EAGAIN:
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
		return SRV_UNAVAILABLE;
	case ECANCELED:
		return SRV_CANCELLED;
	default:
		return SRV_INTERNAL;
	}
}

const char *srv_code_name(enum srv_code code)
{
	static const char *const names[] = {
	    "OK",
	    "CANCELLED",
	    "UNKNOWN",
	    "INVALID_ARGUMENT",
	    "DEADLINE_EXCEEDED",
	    "NOT_FOUND",
	    "ALREADY_EXISTS",
	    "PERMISSION_DENIED",
	    "RESOURCE_EXHAUSTED",
	    "FAILED_PRECONDITION",
	    "ABORTED",
	    "OUT_OF_RANGE",
	    "UNIMPLEMENTED",
	    "INTERNAL",
	    "UNAVAILABLE",
	};
	return (unsigned)code < ARRAY_SIZE(names) ? names[code] : "UNKNOWN";
}

void srv_repeated_add(void *field, size_t *n, void *msg)
{
	void ***arr = field;
	*arr = xrealloc(*arr, (*n + 1) * sizeof(void *));
	(*arr)[(*n)++] = msg;
}

void srv_map_add(void *entries_field, size_t *n, const ProtobufCMessageDescriptor *entry,
		 const char *key, const char *value)
{
	ProtobufCMessage *m = xzalloc(entry->sizeof_message);
	protobuf_c_message_init(entry, m);
	const ProtobufCFieldDescriptor *fk = protobuf_c_message_descriptor_get_field(entry, 1);
	const ProtobufCFieldDescriptor *fv = protobuf_c_message_descriptor_get_field(entry, 2);
	*(char **)((char *)m + fk->offset) = srv_strdup(key);
	*(char **)((char *)m + fv->offset) = srv_strdup(value);
	srv_repeated_add(entries_field, n, m);
}
