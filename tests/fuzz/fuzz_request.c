/* The request check that runs on every CRI call's wire bytes before they
 * are decoded (srv_request_check in server/codec.c). Property: whatever the
 * check lets through and protobuf-c decodes holds no id or name longer than
 * HUSK_ID_MAX, so the walk and the decoder agree on the fields. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include "api/cri/v1/api.pb-c.c"
#pragma GCC diagnostic pop
#include "server/codec.c"
#include "tests/fuzz/fuzz.h"

static const ProtobufCMessageDescriptor *const inputs[] = {
    &runtime__v1__run_pod_sandbox_request__descriptor,
    &runtime__v1__create_container_request__descriptor,
    &runtime__v1__container_status_request__descriptor,
    &runtime__v1__pull_image_request__descriptor,
    &runtime__v1__exec_request__descriptor,
    &runtime__v1__list_containers_request__descriptor,
    &runtime__v1__update_container_resources_request__descriptor,
    &runtime__v1__port_forward_request__descriptor,
};

static bool is_small(const char *name)
{
	return small_field(name);
}

/* Every id or name of the decoded message, at any depth, within bounds. */
static void walk(const ProtobufCMessage *m, int depth)
{
	FUZZ_CHECK(depth <= 64);
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		bool rep = f->label == PROTOBUF_C_LABEL_REPEATED;
		size_t n = rep ? *(const size_t *)((const char *)m + f->quantifier_offset) : 1;
		for (size_t k = 0; k < n; k++) {
			const void *slot =
			    rep ? (*(void *const *)base == NULL
				       ? NULL
				       : (const char *)*(void *const *)base + k * sizeof(void *))
				: base;
			if (!slot)
				break;
			if (f->type == PROTOBUF_C_TYPE_STRING) {
				const char *s = *(const char *const *)slot;
				if (s && is_small(f->name))
					FUZZ_CHECK(strlen(s) <= HUSK_ID_MAX);
			} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const ProtobufCMessage *sub =
				    *(const ProtobufCMessage *const *)slot;
				if (sub)
					walk(sub, depth + 1);
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel = fuzz_byte(&data, &size);
	const ProtobufCMessageDescriptor *d = inputs[sel % ARRAY_SIZE(inputs)];
	struct husk_error err = HUSK_ERROR_INIT;
	int r = srv_request_check(d, data, size, &err);
	FUZZ_CHECK(r == 0 || (r == -EINVAL && err.msg && strstr(err.msg, "field '")));
	husk_error_clear(&err);
	if (r == 0) {
		void *m = srv_decode(d, data, size);
		if (m)
			walk(m, 0);
		srv_message_free(m);
	}
	return 0;
}
