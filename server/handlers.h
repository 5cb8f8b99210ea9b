/* CRI handlers, one per implemented method; each file *_service.c holds
 * the handlers of one area. Signatures are srv_unary_fn / srv_stream_fn. */
#ifndef HUSK_SERVER_HANDLERS_H
#define HUSK_SERVER_HANDLERS_H

#include "server/server.h"

/* runtime_service.c: the runtime itself */
int srv_version(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_status(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
int srv_runtime_config(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err);
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
int srv_image_fs_info(struct srv_ctx *ctx, const void *in, void **ret_out,
		      struct husk_error *err);

#endif
