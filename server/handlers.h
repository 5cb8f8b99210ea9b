/* CRI handlers, one per implemented method; each file *_service.c holds
 * the handlers of one area. Signatures are srv_unary_fn / srv_stream_fn. */
#ifndef HUSK_SERVER_HANDLERS_H
#define HUSK_SERVER_HANDLERS_H

#include "server/server.h"

/* runtime_service.c: the runtime itself */
int srv_version(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_status(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_runtime_config(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
/* The pod CIDR UpdateRuntimeConfig kept in <state>/pod-cidr, into ctx. */
void srv_pod_cidr_load(struct srv_ctx *ctx);
int srv_update_runtime_config(struct srv_ctx *ctx, const void *in, void **ret_out,
			      struct husk_error *err);

int srv_get_container_events(struct srv_ctx *ctx, const void *in, struct srv_stream *out,
			     struct husk_error *err);

/* image_service.c: ImageService, and the image store's start and stop
 * (ctx->image; called by main.c) */
int srv_image_init(struct srv_ctx *ctx, struct husk_error *err);
void srv_image_shutdown(struct srv_ctx *ctx);
int srv_list_images(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_stream_images(struct srv_ctx *ctx, const void *in, struct srv_stream *out,
		      struct husk_error *err);
int srv_image_status(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_pull_image(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_remove_image(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_image_fs_info(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);

/* pod_service.c: pod sandboxes */
#define SRV_UNARY(name) \
	int name(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
SRV_UNARY(srv_run_pod_sandbox);
SRV_UNARY(srv_stop_pod_sandbox);
SRV_UNARY(srv_remove_pod_sandbox);
SRV_UNARY(srv_pod_sandbox_status);
SRV_UNARY(srv_list_pod_sandbox);
SRV_UNARY(srv_update_pod_sandbox_resources);

/* container_service.c: containers, stats, and the runtime manager's start
 * and stop (ctx->runtime; called by main.c after the image store) */
int srv_runtime_init(struct srv_ctx *ctx, struct husk_error *err);
void srv_runtime_shutdown(struct srv_ctx *ctx);
SRV_UNARY(srv_create_container);
SRV_UNARY(srv_start_container);
SRV_UNARY(srv_stop_container);
SRV_UNARY(srv_remove_container);
SRV_UNARY(srv_container_status);
SRV_UNARY(srv_list_containers);
SRV_UNARY(srv_exec_sync);
SRV_UNARY(srv_reopen_container_log);
SRV_UNARY(srv_update_container_resources);
SRV_UNARY(srv_container_stats);
SRV_UNARY(srv_list_container_stats);
SRV_UNARY(srv_pod_sandbox_stats);
SRV_UNARY(srv_list_pod_sandbox_stats);

/* metrics_service.c: the CRI metrics methods (cAdvisor's names) */
SRV_UNARY(srv_list_metric_descriptors);
SRV_UNARY(srv_list_pod_sandbox_metrics);

/* network_service.c: pod networking through CNI (ctx->network). main.c
 * calls srv_network_init before srv_runtime_init, srv_network_gc once the
 * runtime is open (tears down attachments of pods that are gone) and
 * srv_network_shutdown after the runtime's shutdown. srv_net_setup and
 * srv_net_teardown are the runtime's net_setup/net_teardown hooks (data is
 * the struct srv_ctx *). srv_network_ready answers NetworkReady: 0 with the
 * config file in *ret_path (caller frees), or EAGAIN with the reason. */
struct rt_pod_config;
int srv_network_init(struct srv_ctx *ctx, struct husk_error *err);
void srv_network_shutdown(struct srv_ctx *ctx);
void srv_network_gc(struct srv_ctx *ctx);
int srv_network_ready(struct srv_ctx *ctx, char **ret_path, struct husk_error *err);
int srv_net_setup(void *data, const char *pod_id, const char *netns,
		  const struct rt_pod_config *cfg, const struct husk_cancel *cancel,
		  char ***ret_ips, struct husk_error *err);
int srv_net_teardown(void *data, const char *pod_id, const char *netns, struct husk_error *err);

/* stream_service.c: Exec, Attach, PortForward and the streaming server
 * (ctx->streamer; main.c starts it after the runtime and stops it before
 * the runtime's shutdown). */
int srv_streaming_init(struct srv_ctx *ctx, struct husk_error *err);
void srv_streaming_shutdown(struct srv_ctx *ctx);
SRV_UNARY(srv_exec);
SRV_UNARY(srv_attach);
SRV_UNARY(srv_port_forward);

/* list_streams.c: the Stream* variants of the List methods */
#define SRV_STREAM(name)                                                      \
	int name(struct srv_ctx *ctx, const void *in, struct srv_stream *out, \
		 struct husk_error *err)
SRV_STREAM(srv_stream_pod_sandboxes);
SRV_STREAM(srv_stream_containers);
SRV_STREAM(srv_stream_container_stats);
SRV_STREAM(srv_stream_pod_sandbox_stats);
SRV_STREAM(srv_stream_pod_sandbox_metrics);

#endif
