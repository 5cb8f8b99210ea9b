/* The gRPC C-core server: completion-queue pollers plus a growing worker
 * pool that runs the handlers from the method table. The only interface
 * between huskd's main and grpc. */
#ifndef HUSK_SERVER_GRPC_H
#define HUSK_SERVER_GRPC_H

#include "server/server.h"

#define SRV_MAX_MESSAGE (16 * 1024 * 1024)

struct srv_grpc;

struct srv_grpc_opts {
	int max_workers;    /* threads of the main pool (grows on demand) */
	int max_pulls;	    /* threads of the PullImage pool; more pulls queue */
	int idle_timeout_s; /* an idle worker above the minimum exits after this */
};

/* Listen on the unix socket path (which must not exist), with every method
 * of the table registered. Calls run handlers with ctx. */
int srv_grpc_start(struct srv_ctx *ctx, const char *socket_path, const struct srv_grpc_opts *opts,
		   struct srv_grpc **ret, struct husk_error *err);

/* Stop accepting calls, let in-flight calls finish for up to timeout_s
 * seconds, cancel the rest, and release everything. */
void srv_grpc_stop(struct srv_grpc *g, int timeout_s);

#endif
