/* The only place that packs and unpacks protobuf-c messages, and the map
 * from husk error codes to gRPC status codes. */
#include <errno.h>
#include <openssl/evp.h>
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

void *srv_message_copy(const void *msg)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = srv_encode(msg, &buf);
	void *copy = srv_decode(((const ProtobufCMessage *)msg)->descriptor, buf, len);
	if (!copy)
		abort(); /* what we packed ourselves always unpacks */
	return copy;
}

/* protobuf-c has no flag for the entry messages of a map<string, ...>. */
static bool is_string_map_entry(const ProtobufCMessageDescriptor *d)
{
	return d->n_fields == 2 && endswith(d->name, "Entry") && streq(d->fields[0].name, "key") &&
	       streq(d->fields[1].name, "value") && d->fields[0].type == PROTOBUF_C_TYPE_STRING;
}

static int entry_cmp(const void *a, const void *b)
{
	const ProtobufCMessage *x = *(ProtobufCMessage *const *)a;
	const ProtobufCMessage *y = *(ProtobufCMessage *const *)b;
	unsigned off = x->descriptor->fields[0].offset;
	const char *kx = *(char *const *)((const char *)x + off);
	const char *ky = *(char *const *)((const char *)y + off);
	return strcmp(kx ? kx : "", ky ? ky : "");
}

/* Map entries in key order, everywhere in m: senders order them as they
 * please (Go's marshalling follows its random map order). */
static void canonicalize(ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		if (f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		char *member = (char *)m + f->offset;
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
		    *(uint32_t *)((char *)m + f->quantifier_offset) != f->id)
			continue;
		if (f->label != PROTOBUF_C_LABEL_REPEATED) {
			ProtobufCMessage *sub = *(ProtobufCMessage **)member;
			if (sub)
				canonicalize(sub);
			continue;
		}
		size_t n = *(size_t *)((char *)m + f->quantifier_offset);
		ProtobufCMessage **v = *(ProtobufCMessage ***)member;
		if (n > 1 && is_string_map_entry(f->descriptor))
			qsort(v, n, sizeof(*v), entry_cmp);
		for (size_t j = 0; j < n; j++)
			canonicalize(v[j]);
	}
}

char *srv_digest(void *msg)
{
	canonicalize(msg);
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = srv_encode(msg, &buf);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	if (!EVP_Digest(buf, len, md, &n, EVP_sha256(), NULL))
		abort(); /* only fails out of memory */
	char *hex = xmalloc(2 * n + 1);
	for (unsigned i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	return hex;
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
