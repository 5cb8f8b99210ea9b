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

#define CHECK_DEPTH 32

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

static bool small_field(const char *name)
{
	return streq(name, "id") || endswith(name, "_id") || streq(name, "name") ||
	       streq(name, "namespace") || streq(name, "uid") || streq(name, "runtime_handler");
}

/* Walk one message's fields. Returns 0 when done or when the bytes do not
 * parse (srv_decode reports that), -EINVAL for a bad string. */
static int check_message(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
			 const uint8_t *end, const char *path, int depth, struct husk_error *err)
{
	if (depth > CHECK_DEPTH)
		return 0;
	while (p < end) {
		uint64_t key, n;
		if (!read_varint(&p, end, &key))
			return 0;
		switch (key & 7) {
		case 0:
			if (!read_varint(&p, end, &n))
				return 0;
			continue;
		case 1:
			if (end - p < 8)
				return 0;
			p += 8;
			continue;
		case 5:
			if (end - p < 4)
				return 0;
			p += 4;
			continue;
		case 2:
			break;
		default:
			return 0;
		}
		if (!read_varint(&p, end, &n) || n > (uint64_t)(end - p))
			return 0;
		const uint8_t *val = p;
		p += n;
		if (key >> 3 > UINT32_MAX)
			return 0;
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
		if (!f)
			continue;
		if (f->type == PROTOBUF_C_TYPE_STRING) {
			const char *s = (const char *)val;
			if (memchr(s, '\0', n))
				return husk_error_set(err, EINVAL,
						      "field '%s%s%s' contains a NUL byte", path,
						      *path ? "." : "", f->name);
			if (small_field(f->name) && !husk_id_valid(s, n))
				return husk_error_set(err, EINVAL,
						      "field '%s%s%s' is %llu bytes long; an id or "
						      "name may have at most %d",
						      path, *path ? "." : "", f->name,
						      (unsigned long long)n, HUSK_ID_MAX);
		} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
			_cleanup_free_ char *sub =
			    xasprintf("%s%s%s", path, *path ? "." : "", f->name);
			int r = check_message(f->descriptor, val, val + n, sub, depth + 1, err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

int srv_request_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		      struct husk_error *err)
{
	return check_message(desc, data, data + len, "", 0, err);
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

void srv_repeated_add_packed(void *msg, unsigned field, const void *item)
{
	ProtobufCMessage *m = msg;
	size_t len = protobuf_c_message_get_packed_size(item);
	/* A length-delimited unknown field holds its length prefix too. */
	uint8_t prefix[10];
	size_t np = 0;
	for (size_t v = len; np == 0 || v; v >>= 7)
		prefix[np++] = (uint8_t)((v & 0x7f) | (v >> 7 ? 0x80 : 0));
	uint8_t *data = xmalloc(np + len);
	memcpy(data, prefix, np);
	protobuf_c_message_pack(item, data + np);
	/* Capacity doubles at each power of two: thousands of items must not
	 * mean thousands of reallocs. */
	unsigned n = m->n_unknown_fields;
	if (n == 0 || (n >= 8 && !(n & (n - 1))))
		m->unknown_fields =
		    xrealloc(m->unknown_fields, (n ? 2 * n : 8) * sizeof(*m->unknown_fields));
	m->unknown_fields[n] = (ProtobufCMessageUnknownField){
	    .tag = field,
	    .wire_type = PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED,
	    .len = np + len,
	    .data = data,
	};
	m->n_unknown_fields = n + 1;
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

enum srv_code srv_status_of(const struct husk_error *err)
{
	/* NOT_FOUND is for unknown objects: a file a step on a known object
	 * missed is the state of the host or the image. */
	if (err->sys && err->code == ENOENT)
		return SRV_FAILED_PRECONDITION;
	return srv_status_from(err->code);
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
	case EXDEV:  /* a volume's host mount cannot propagate as asked */
	case ESTALE: /* a pod's user namespace is gone (after a reboot) */
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
