/* The daemon's request layer, shared by the method table and the handlers.
 * Handlers never see grpc types: they take the daemon context, the decoded
 * protobuf-c request and fill a protobuf-c response that the codec encodes
 * and frees. Everything the response points to must be heap memory
 * (malloc/xstrdup/xnew), because it is released with
 * protobuf_c_message_free_unpacked(). */
#ifndef HUSK_SERVER_SERVER_H
#define HUSK_SERVER_SERVER_H

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>

#include "api/cri/v1/api.pb-c.h"
#include "common/cancel.h"
#include "common/error.h"
#include "server/config.h"

/* Process-wide daemon state handed to every handler. Subsystems add their
 * handles here (image store, pod manager, network, ...). */
struct img_store;
struct net_cni;
struct rt;
struct srv_events;
struct srv_metrics;
struct srv_streamer;
struct srv_metrics_http;

struct srv_ctx {
	struct srv_config *config;
	pthread_mutex_t lock;		       /* guards the mutable fields below */
	char *pod_cidr;			       /* from UpdateRuntimeConfig */
	struct img_store *image;	       /* the image store (image/) */
	struct rt *runtime;		       /* the pod and container manager (runtime/) */
	struct net_cni *network;	       /* CNI (network/) */
	struct srv_streamer *streamer;	       /* exec/attach/port-forward server (stream.h) */
	struct srv_events *events;	       /* container events for GetContainerEvents */
	struct srv_metrics *metrics;	       /* request counters (server/metrics.h) */
	struct srv_metrics_http *metrics_http; /* the /metrics listener, NULL when off */
};

/* A server-streaming call: srv_stream_send() blocks until the message is
 * written or the call is gone (-ECANCELED). Handlers poll
 * srv_stream_cancelled() while they wait for something to send. */
struct srv_stream;
int srv_stream_send(struct srv_stream *s, const ProtobufCMessage *msg);
bool srv_stream_cancelled(struct srv_stream *s);

/* The cancel object of the call the current worker thread runs: set once
 * its client cancels or its deadline passes. Valid until the handler
 * returns; never NULL (outside a call, a static one that is never
 * cancelled). Handlers pass it to lower layers that can wait long. */
const struct husk_cancel *srv_call_cancel(void);

/* Unary handler: in is the decoded request of the row's input type; on
 * success *ret_out is a new message of the row's output type. A negative
 * return with err filled becomes the gRPC status (see srv_status_of). */
typedef int (*srv_unary_fn)(struct srv_ctx *ctx, const void *in, void **ret_out,
			    struct husk_error *err);
/* Server-streaming handler: sends any number of messages, then returns. */
typedef int (*srv_stream_fn)(struct srv_ctx *ctx, const void *in, struct srv_stream *out,
			     struct husk_error *err);

/* Which worker pool runs a method: pulls wait on registries for minutes, so
 * they queue to a bounded pool of their own and never take the workers that
 * serve Version, Status, List* and container calls. */
enum srv_pool { SRV_POOL_MAIN = 0, SRV_POOL_PULL = 1, SRV_POOL_COUNT };

struct srv_method {
	const char *path; /* "/runtime.v1.RuntimeService/Version" */
	const ProtobufCMessageDescriptor *input;
	const ProtobufCMessageDescriptor *output;
	srv_unary_fn unary;   /* NULL for streams and unimplemented methods */
	srv_stream_fn stream; /* server-streaming methods */
	bool server_streaming;
	enum srv_pool pool;
};

/* The one table of every CRI method (server/methods.c). */
extern const struct srv_method srv_methods[];
extern const size_t srv_methods_count;
const struct srv_method *srv_method_find(const char *path);
/* Check the table against the generated service descriptors: every method
 * present once with matching types. Returns -EINVAL naming the first
 * difference. */
int srv_methods_verify(struct husk_error *err);

/* gRPC status codes (the numeric values are the protocol's). */
enum srv_code {
	SRV_OK = 0,
	SRV_CANCELLED = 1,
	SRV_UNKNOWN = 2,
	SRV_INVALID_ARGUMENT = 3,
	SRV_DEADLINE_EXCEEDED = 4,
	SRV_NOT_FOUND = 5,
	SRV_ALREADY_EXISTS = 6,
	SRV_PERMISSION_DENIED = 7,
	SRV_RESOURCE_EXHAUSTED = 8,
	SRV_FAILED_PRECONDITION = 9,
	SRV_ABORTED = 10,
	SRV_OUT_OF_RANGE = 11,
	SRV_UNIMPLEMENTED = 12,
	SRV_INTERNAL = 13,
	SRV_UNAVAILABLE = 14,
};
/* Map an errno-style husk_error code to a gRPC status. */
enum srv_code srv_status_from(int code);
/* The status of a failed call: srv_status_from, except that a system
 * call's ENOENT (err->sys) is FAILED_PRECONDITION, not NOT_FOUND. */
enum srv_code srv_status_of(const struct husk_error *err);
const char *srv_code_name(enum srv_code code);

/* Codec (server/codec.c): the only place that packs and unpacks. */
void *srv_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len);
/* Check a request's wire bytes before any decoding: no string field may
 * hold a NUL byte (C strings would cut it short), and ids and names (fields
 * named id, *_id, name, namespace, uid, runtime_handler) must pass
 * husk_id_valid. -EINVAL naming the field by its path
 * ("config.metadata.name"). Malformed input is left to srv_decode. */
int srv_request_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
		      struct husk_error *err);
size_t srv_encode(const void *msg, uint8_t **ret_buf);
void srv_message_free(void *msg);
/* A deep copy of a message (free with srv_message_free). */
void *srv_message_copy(const void *msg);
/* SHA-256 (hex) of msg's encoding with every map<string, ...> in key
 * order, so that equal requests give equal digests however the sender
 * ordered its maps. Sorts msg's maps in place: pass a copy. */
char *srv_digest(void *msg);

/* Helpers for building responses. */
char *srv_strdup(const char *s); /* NULL gives "" */
/* Append key=value to a map<string,string> field given as its entry array
 * and count (every such entry message is {base, key, value}). */
void srv_map_add(void *entries_field, size_t *n, const ProtobufCMessageDescriptor *entry,
		 const char *key, const char *value);
/* Append a message pointer to a repeated message field. */
void srv_repeated_add(void *field, size_t *n, void *msg);
/* Append item to the repeated message field number `field` of msg, packed
 * at once: its bytes are kept as a field protobuf-c does not know, which
 * it packs as they are, so the wire carries the same repeated field. item
 * may point at strings the caller holds only until this returns (nothing
 * of item is kept), which spares a list reply a copy of every string of
 * every record. The items are seen in C only after a pack and unpack
 * (srv_message_copy); msg's unknown fields must all come from here. */
void srv_repeated_add_packed(void *msg, unsigned field, const void *item);
#define srv_new(type, init)               \
	({                                \
		type *_m = xnew(type, 1); \
		type _i = init;           \
		*_m = _i;                 \
		_m;                       \
	})

#endif
