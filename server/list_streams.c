/* The Stream* variants of the List methods (StreamPodSandboxes,
 * StreamContainers, StreamContainerStats, StreamPodSandboxStats,
 * StreamPodSandboxMetrics, StreamImages): the List handler's answer sent in batches, so that no
 * message comes near gRPC's size limit however many objects there are. */
#include <errno.h>
#include <string.h>

#include "server/handlers.h"

#define BATCH 100

/* Each Stream request carries the List request's filter as its field 1,
 * and each Stream response the List response's items as its field 1, so
 * the request is re-read as the List request and the items are handed
 * over by reference, a batch at a time. */
static int stream_list(struct srv_ctx *ctx, const void *in, struct srv_stream *out,
		       const ProtobufCMessageDescriptor *list_req, srv_unary_fn list,
		       const ProtobufCMessageDescriptor *stream_resp, struct husk_error *err)
{
	uint8_t *buf = NULL;
	size_t len = srv_encode(in, &buf);
	void *req = srv_decode(list_req, buf, len);
	free(buf);
	if (!req)
		return husk_error_set(err, EINVAL, "%s: filter does not fit %s", stream_resp->name,
				      list_req->name);
	ProtobufCMessage *resp = NULL;
	int r = list(ctx, req, (void **)&resp, err);
	srv_message_free(req);
	if (r < 0)
		return r;

	const ProtobufCFieldDescriptor *lf =
	    protobuf_c_message_descriptor_get_field(resp->descriptor, 1);
	const ProtobufCFieldDescriptor *sf =
	    protobuf_c_message_descriptor_get_field(stream_resp, 1);
	size_t n = *(size_t *)((char *)resp + lf->quantifier_offset);
	void **items = *(void ***)((char *)resp + lf->offset);
	ProtobufCMessage *batch = xzalloc(stream_resp->sizeof_message);
	protobuf_c_message_init(stream_resp, batch);
	for (size_t i = 0; i < n && r >= 0; i += BATCH) {
		*(size_t *)((char *)batch + sf->quantifier_offset) = n - i < BATCH ? n - i : BATCH;
		*(void ***)((char *)batch + sf->offset) = items + i;
		r = srv_stream_send(out, batch);
	}
	*(size_t *)((char *)batch + sf->quantifier_offset) = 0;
	/* Items a List handler packed at once (srv_repeated_add_packed) are
	 * its unknown fields, all of field 1: batched the same way. */
	for (size_t i = 0; i < resp->n_unknown_fields && r >= 0; i += BATCH) {
		size_t left = resp->n_unknown_fields - i;
		batch->n_unknown_fields = left < BATCH ? (unsigned)left : BATCH;
		batch->unknown_fields = resp->unknown_fields + i;
		r = srv_stream_send(out, batch);
	}
	free(batch); /* borrowed the items; resp still owns them */
	srv_message_free(resp);
	if (r < 0)
		return husk_error_set(err, -r, "%s: %s", stream_resp->name, strerror(-r));
	return 0;
}

#define STREAM_LIST(fn, list_req, list_fn, resp)                                                  \
	int fn(struct srv_ctx *ctx, const void *in, struct srv_stream *out,                       \
	       struct husk_error *err)                                                            \
	{                                                                                         \
		return stream_list(ctx, in, out, &runtime__v1__##list_req##__descriptor, list_fn, \
				   &runtime__v1__##resp##__descriptor, err);                      \
	}

STREAM_LIST(srv_stream_pod_sandboxes, list_pod_sandbox_request, srv_list_pod_sandbox,
	    stream_pod_sandboxes_response)
STREAM_LIST(srv_stream_containers, list_containers_request, srv_list_containers,
	    stream_containers_response)
STREAM_LIST(srv_stream_container_stats, list_container_stats_request, srv_list_container_stats,
	    stream_container_stats_response)
STREAM_LIST(srv_stream_pod_sandbox_stats, list_pod_sandbox_stats_request,
	    srv_list_pod_sandbox_stats, stream_pod_sandbox_stats_response)
STREAM_LIST(srv_stream_pod_sandbox_metrics, list_pod_sandbox_metrics_request,
	    srv_list_pod_sandbox_metrics, stream_pod_sandbox_metrics_response)
STREAM_LIST(srv_stream_images, list_images_request, srv_list_images, stream_images_response)
