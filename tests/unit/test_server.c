/* The request layer without a socket: the method table against the
 * generated descriptors, status mapping, codec, and the runtime handlers
 * called directly. */
#include <errno.h>
#include <string.h>

#include "server/handlers.h"
#include "server/translate.h"
#include "unit.h"

static void test_table_matches_proto(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(srv_methods_verify(&err), 0);
	if (err.msg)
		fprintf(stderr, "\n  %s\n", err.msg);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(srv_methods_count, 41);
	const struct srv_method *m =
	    srv_method_find("/runtime.v1.RuntimeService/GetContainerEvents");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(m->server_streaming);
	CU_ASSERT_PTR_NULL(srv_method_find("/runtime.v1.RuntimeService/Nope"));
}

static void test_status_mapping(void)
{
	CU_ASSERT_EQUAL(srv_status_from(EINVAL), SRV_INVALID_ARGUMENT);
	CU_ASSERT_EQUAL(srv_status_from(ENOENT), SRV_NOT_FOUND);
	CU_ASSERT_EQUAL(srv_status_from(EEXIST), SRV_ALREADY_EXISTS);
	CU_ASSERT_EQUAL(srv_status_from(EBUSY), SRV_FAILED_PRECONDITION);
	CU_ASSERT_EQUAL(srv_status_from(ENOSYS), SRV_UNIMPLEMENTED);
	CU_ASSERT_EQUAL(srv_status_from(ETIMEDOUT), SRV_DEADLINE_EXCEEDED);
	CU_ASSERT_EQUAL(srv_status_from(EIO), SRV_INTERNAL);
	/* ENOENT is NOT_FOUND for an unknown object only: from a system call
	 * (here the child's report of a failed exec) it is FAILED_PRECONDITION. */
	struct husk_error e = HUSK_ERROR_INIT;
	husk_error_set(&e, ENOENT, "container 'x': not found");
	CU_ASSERT_EQUAL(srv_status_of(&e), SRV_NOT_FOUND);
	husk_error_errno(&e, ENOENT, "open '/data'");
	husk_error_prefix(&e, "create container 'web'");
	CU_ASSERT_EQUAL(srv_status_of(&e), SRV_FAILED_PRECONDITION);
	husk_error_sys(&e, ENOENT, "exec '/bin/nope': No such file or directory");
	CU_ASSERT_EQUAL(srv_status_of(&e), SRV_FAILED_PRECONDITION);
	struct husk_error moved = HUSK_ERROR_INIT;
	husk_error_move(&moved, &e);
	CU_ASSERT_EQUAL(srv_status_of(&moved), SRV_FAILED_PRECONDITION);
	husk_error_set(&moved, ENOENT, "pod 'p': not found");
	CU_ASSERT_EQUAL(srv_status_of(&moved), SRV_NOT_FOUND);
	husk_error_clear(&moved);
	CU_ASSERT_STRING_EQUAL(srv_code_name(SRV_NOT_FOUND), "NOT_FOUND");
}

static void test_codec(void)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff};
	CU_ASSERT_PTR_NULL(
	    srv_decode(&runtime__v1__version_request__descriptor, garbage, sizeof(garbage)));
	Runtime__V1__VersionRequest req = RUNTIME__V1__VERSION_REQUEST__INIT;
	req.version = "v1";
	uint8_t *buf = NULL;
	size_t len = srv_encode(&req, &buf);
	Runtime__V1__VersionRequest *back =
	    srv_decode(&runtime__v1__version_request__descriptor, buf, len);
	CU_ASSERT_PTR_NOT_NULL_FATAL(back);
	CU_ASSERT_STRING_EQUAL(back->version, "v1");
	srv_message_free(back);
	free(buf);
}

/* List items packed at once from borrowed strings read back as the
 * ordinary repeated field, in order, maps and empty strings included. */
static void test_packed_items(void)
{
	Runtime__V1__ListContainersResponse *resp = srv_new(
	    Runtime__V1__ListContainersResponse, RUNTIME__V1__LIST_CONTAINERS_RESPONSE__INIT);
	struct state_map labels = {0};
	state_map_set(&labels, "app", "web");
	state_map_set(&labels, "tier", "");
	struct state_map none = {0};
	_cleanup_free_ char *big = xmalloc(300);
	memset(big, 'x', 299);
	big[299] = '\0';
	for (int i = 0; i < 20; i++) {
		_cleanup_free_ char *id = xasprintf("c%d", i);
		Runtime__V1__ContainerMetadata md = RUNTIME__V1__CONTAINER_METADATA__INIT;
		md.name = i % 2 ? big : "short"; /* a length prefix of two bytes */
		md.attempt = (uint32_t)i;
		Runtime__V1__Container m = RUNTIME__V1__CONTAINER__INIT;
		m.id = id;
		m.metadata = &md;
		m.image_ref = NULL; /* absent: packed as "" */
		m.state = RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
		m.created_at = 1000 + i;
		_cleanup_free_ void *lb =
		    srv_map_borrow(i % 3 ? &labels : &none, &m.labels, &m.n_labels,
				   &runtime__v1__container__labels_entry__descriptor);
		CU_ASSERT_EQUAL(m.n_labels, i % 3 ? 2 : 0);
		CU_ASSERT((lb == NULL) == !(i % 3));
		srv_repeated_add_packed(resp, 1, &m);
	}
	state_map_clear(&labels);
	CU_ASSERT_EQUAL(resp->n_containers, 0);
	Runtime__V1__ListContainersResponse *back = srv_message_copy(resp);
	srv_message_free(resp);
	CU_ASSERT_EQUAL_FATAL(back->n_containers, 20);
	CU_ASSERT_EQUAL(back->base.n_unknown_fields, 0);
	for (size_t i = 0; i < back->n_containers; i++) {
		const Runtime__V1__Container *c = back->containers[i];
		_cleanup_free_ char *id = xasprintf("c%zu", i);
		CU_ASSERT_STRING_EQUAL(c->id, id);
		CU_ASSERT_STRING_EQUAL(c->metadata->name, i % 2 ? big : "short");
		CU_ASSERT_EQUAL(c->metadata->attempt, i);
		CU_ASSERT_STRING_EQUAL(c->image_ref, "");
		CU_ASSERT_EQUAL(c->state, RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING);
		CU_ASSERT_EQUAL(c->created_at, 1000 + (int64_t)i);
		CU_ASSERT_EQUAL_FATAL(c->n_labels, i % 3 ? 2 : 0);
		if (i % 3) {
			CU_ASSERT_STRING_EQUAL(c->labels[0]->key, "app");
			CU_ASSERT_STRING_EQUAL(c->labels[0]->value, "web");
			CU_ASSERT_STRING_EQUAL(c->labels[1]->key, "tier");
			CU_ASSERT_STRING_EQUAL(c->labels[1]->value, "");
		}
	}
	srv_message_free(back);
}

static Runtime__V1__RunPodSandboxRequest *pod_request(const char *const *labels)
{
	Runtime__V1__RunPodSandboxRequest *r =
	    srv_new(Runtime__V1__RunPodSandboxRequest, RUNTIME__V1__RUN_POD_SANDBOX_REQUEST__INIT);
	r->config = srv_new(Runtime__V1__PodSandboxConfig, RUNTIME__V1__POD_SANDBOX_CONFIG__INIT);
	r->config->hostname = xstrdup("web");
	for (size_t i = 0; labels[i]; i += 2)
		srv_map_add(&r->config->labels, &r->config->n_labels,
			    &runtime__v1__pod_sandbox_config__labels_entry__descriptor, labels[i],
			    labels[i + 1]);
	return r;
}

static char *digest_of(const char *const *labels)
{
	Runtime__V1__RunPodSandboxRequest *r = pod_request(labels);
	void *copy = srv_message_copy(r);
	char *d = srv_digest(copy);
	srv_message_free(copy);
	/* The original keeps its order: only the copy was sorted. */
	CU_ASSERT_STRING_EQUAL(r->config->labels[0]->key, labels[0]);
	srv_message_free(r);
	return d;
}

static void test_digest(void)
{
	static const char *const ab[] = {"a", "1", "b", "2", "c", "3", NULL};
	static const char *const ba[] = {"c", "3", "b", "2", "a", "1", NULL};
	static const char *const changed[] = {"a", "1", "b", "2", "c", "4", NULL};
	_cleanup_free_ char *d1 = digest_of(ab), *d2 = digest_of(ba), *d3 = digest_of(changed);
	CU_ASSERT_EQUAL(strlen(d1), 64);
	CU_ASSERT_STRING_EQUAL(d1, d2);
	CU_ASSERT_STRING_NOT_EQUAL(d1, d3);
}

static char *ctx_dir; /* config and state of the test's ctx */

static struct srv_ctx *ctx_new(void)
{
	struct srv_ctx *ctx = xnew(struct srv_ctx, 1);
	struct husk_error err = HUSK_ERROR_INIT;
	ctx_dir = unit_tmpdir();
	_cleanup_free_ char *json = xasprintf("{\"cgroup_driver\": \"systemd\", "
					      "\"cni_conf_dir\": \"/nonexistent\", "
					      "\"state\": \"%s\"}",
					      ctx_dir);
	unit_write(ctx_dir, "husk.json", json);
	_cleanup_free_ char *p = xasprintf("%s/husk.json", ctx_dir);
	struct srv_flags f = {.config = p};
	CU_ASSERT_EQUAL(srv_config_load(&f, &ctx->config, &err), 0);
	pthread_mutex_init(&ctx->lock, NULL);
	return ctx;
}

static void ctx_free(struct srv_ctx *ctx)
{
	srv_config_free(ctx->config);
	free(ctx->pod_cidr);
	free(ctx);
	unit_rmdir(ctx_dir);
}

static void test_handlers(void)
{
	struct srv_ctx *ctx = ctx_new();
	struct husk_error err = HUSK_ERROR_INIT;
	Runtime__V1__VersionRequest vreq = RUNTIME__V1__VERSION_REQUEST__INIT;
	Runtime__V1__VersionResponse *v = NULL;
	CU_ASSERT_EQUAL(srv_version(ctx, &vreq, (void **)&v, &err), 0);
	CU_ASSERT_STRING_EQUAL(v->runtime_name, "husk");
	CU_ASSERT_STRING_EQUAL(v->runtime_api_version, "v1");
	srv_message_free(v);

	Runtime__V1__RuntimeConfigRequest rreq = RUNTIME__V1__RUNTIME_CONFIG_REQUEST__INIT;
	Runtime__V1__RuntimeConfigResponse *rc = NULL;
	CU_ASSERT_EQUAL(srv_runtime_config(ctx, &rreq, (void **)&rc, &err), 0);
	CU_ASSERT_EQUAL(rc->linux->cgroup_driver, RUNTIME__V1__CGROUP_DRIVER__SYSTEMD);
	srv_message_free(rc);

	Runtime__V1__NetworkConfig nc = RUNTIME__V1__NETWORK_CONFIG__INIT;
	nc.pod_cidr = "10.1.0.0/16";
	Runtime__V1__RuntimeConfig cfg = RUNTIME__V1__RUNTIME_CONFIG__INIT;
	cfg.network_config = &nc;
	Runtime__V1__UpdateRuntimeConfigRequest ureq =
	    RUNTIME__V1__UPDATE_RUNTIME_CONFIG_REQUEST__INIT;
	ureq.runtime_config = &cfg;
	void *uresp = NULL;
	CU_ASSERT_EQUAL(srv_update_runtime_config(ctx, &ureq, &uresp, &err), 0);
	srv_message_free(uresp);
	CU_ASSERT_STRING_EQUAL(ctx->pod_cidr, "10.1.0.0/16");
	/* Kept for a restarted huskd; garbage refused naming it. */
	free(steal_ptr(&ctx->pod_cidr));
	srv_pod_cidr_load(ctx);
	CU_ASSERT_STRING_EQUAL(ctx->pod_cidr, "10.1.0.0/16");
	nc.pod_cidr = "10.1.0.0/16,fd00::/64";
	CU_ASSERT_EQUAL(srv_update_runtime_config(ctx, &ureq, &uresp, &err), 0);
	srv_message_free(uresp);
	nc.pod_cidr = "10.1.0.0/33";
	CU_ASSERT_EQUAL(srv_update_runtime_config(ctx, &ureq, &uresp, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "10.1.0.0/33"));
	husk_error_clear(&err);
	CU_ASSERT_STRING_EQUAL(ctx->pod_cidr, "10.1.0.0/16,fd00::/64");

	Runtime__V1__StatusRequest sreq = RUNTIME__V1__STATUS_REQUEST__INIT;
	sreq.verbose = true;
	Runtime__V1__StatusResponse *st = NULL;
	CU_ASSERT_EQUAL(srv_status(ctx, &sreq, (void **)&st, &err), 0);
	CU_ASSERT_EQUAL_FATAL(st->status->n_conditions, 2);
	CU_ASSERT(st->status->conditions[0]->status);
	CU_ASSERT_FALSE(st->status->conditions[1]->status);
	CU_ASSERT_PTR_NOT_NULL(strstr(st->status->conditions[1]->message, "/nonexistent"));
	CU_ASSERT(st->n_info >= 2);
	CU_ASSERT_STRING_EQUAL(st->info[0]->key, "config");
	CU_ASSERT_PTR_NOT_NULL(strstr(st->info[0]->value, "\"cgroup_driver\":\"systemd\""));
	srv_message_free(st);
	ctx_free(ctx);
}

static void test_cancel(void)
{
	CU_ASSERT_FALSE(husk_cancelled(NULL));
	struct husk_cancel c = {0};
	CU_ASSERT_FALSE(husk_cancelled(&c));
	c.deadline_ns = now_mono_ns() + 3600LL * 1000000000LL;
	CU_ASSERT_FALSE(husk_cancelled(&c));
	c.deadline_ns = now_mono_ns() - 1;
	CU_ASSERT(husk_cancelled(&c));
	c.deadline_ns = 0;
	__atomic_store_n(&c.cancelled, true, __ATOMIC_RELEASE);
	CU_ASSERT(husk_cancelled(&c));
	/* Outside a call: a static object that is never cancelled. */
	const struct husk_cancel *none = srv_call_cancel();
	CU_ASSERT_PTR_NOT_NULL_FATAL(none);
	CU_ASSERT_FALSE(husk_cancelled(none));
}

static void test_request_check(void)
{
	CU_ASSERT(husk_id_valid("abc", 3));
	CU_ASSERT_FALSE(husk_id_valid("a\0b", 3));
	_cleanup_free_ char *big = xmalloc(HUSK_ID_MAX + 1);
	memset(big, 'x', HUSK_ID_MAX + 1);
	CU_ASSERT(husk_id_valid(big, HUSK_ID_MAX));
	CU_ASSERT_FALSE(husk_id_valid(big, HUSK_ID_MAX + 1));

	/* The rule of ids that name files and cgroups, shared by runtime/,
	 * image/ and the record store. */
	CU_ASSERT(husk_obj_id_valid("0123abcdef"));
	CU_ASSERT(husk_obj_id_valid("web-1_a.b"));
	CU_ASSERT_FALSE(husk_obj_id_valid(NULL));
	CU_ASSERT_FALSE(husk_obj_id_valid(""));
	CU_ASSERT_FALSE(husk_obj_id_valid("."));
	CU_ASSERT_FALSE(husk_obj_id_valid(".."));
	CU_ASSERT_FALSE(husk_obj_id_valid(".hidden"));
	CU_ASSERT_FALSE(husk_obj_id_valid("a/b"));
	CU_ASSERT_FALSE(husk_obj_id_valid("a b"));
	big[HUSK_OBJ_ID_MAX] = '\0';
	CU_ASSERT(husk_obj_id_valid(big));
	big[HUSK_OBJ_ID_MAX] = 'x';
	big[HUSK_ID_MAX] = '\0';
	CU_ASSERT_FALSE(husk_obj_id_valid(big));

	/* ContainerStatusRequest{container_id = 1}: field 1, wire type 2. */
	static const uint8_t ok[] = {0x0a, 3, 'a', 'b', 'c'};
	static const uint8_t nul[] = {0x0a, 3, 'a', 0, 'b'};
	static const uint8_t cut[] = {0x0a, 9, 'a'};
	const ProtobufCMessageDescriptor *d = &runtime__v1__container_status_request__descriptor;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(srv_request_check(d, ok, sizeof(ok), &err), 0);
	CU_ASSERT_EQUAL(srv_request_check(d, cut, sizeof(cut), &err), 0); /* left to decode */
	CU_ASSERT_EQUAL(srv_request_check(d, nul, sizeof(nul), &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'container_id' contains a NUL"));
	husk_error_clear(&err);
	size_t n = HUSK_ID_MAX + 1;
	_cleanup_free_ uint8_t *longer = xmalloc(n + 3);
	longer[0] = 0x0a;
	longer[1] = (uint8_t)(0x80 | (n & 0x7f));
	longer[2] = (uint8_t)(n >> 7);
	memset(longer + 3, 'x', n);
	CU_ASSERT_EQUAL(srv_request_check(d, longer, n + 3, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'container_id' is 254 bytes long"));
	husk_error_clear(&err);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"method table matches the proto", test_table_matches_proto},
	    {"errno to gRPC status", test_status_mapping},
	    {"codec", test_codec},
	    {"list items packed from borrowed strings", test_packed_items},
	    {"request digest ignores map order", test_digest},
	    {"runtime handlers", test_handlers},
	    {"call cancellation", test_cancel},
	    {"request check: ids, names, NUL bytes", test_request_check},
	};
	return unit_run("server", tests, ARRAY_SIZE(tests));
}
