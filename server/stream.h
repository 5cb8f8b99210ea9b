/* huskd's streaming server for Exec, Attach and PortForward: the CRI
 * handlers issue a single-use URL for a validated request; the client
 * (kubelet, crictl) then connects to it over HTTP/1.1 and upgrades to
 * SPDY/3.1 or WebSocket, and the server runs the session against the
 * runtime. No grpc here: handlers translate CRI messages into
 * struct srv_stream_req. */
#ifndef HUSK_SERVER_STREAM_H
#define HUSK_SERVER_STREAM_H

#include <stdbool.h>

#include "common/error.h"

struct rt;

enum srv_stream_kind { SRV_STREAM_EXEC, SRV_STREAM_ATTACH, SRV_STREAM_PORTFORWARD };

/* A validated request waiting for its client. */
struct srv_stream_req {
	enum srv_stream_kind kind;
	char *target; /* the container id (exec, attach) or the pod id */
	char **cmd;   /* exec: NULL-terminated */
	bool tty, in, out, err;
};
void srv_stream_req_free(struct srv_stream_req *r);
static inline void srv_stream_req_freep(struct srv_stream_req **r)
{
	srv_stream_req_free(*r);
}

/* Bounds on what clients can make the server hold. */
#define SRV_STREAM_MAX_SESSIONS 1024
/* Connections that have not sent their request yet count apart: above this
 * the oldest of them is dropped for the new one, so silent connections
 * never take a session's place. */
#define SRV_STREAM_MAX_PENDING 128
#define SRV_STREAM_MAX_PAIRS 128 /* port-forward connections per session */
/* How long a session waits for the client's streams (and port-forward
 * pairs for their second half). */
#define SRV_STREAM_CREATE_TIMEOUT_MS 30000

struct srv_streamer;

/* Listen on address:port (port 0: a free one) and serve sessions against
 * rt. The environment variable HUSK_STREAM_TOKEN_TTL_MS overrides the
 * tokens' minute (for tests). Errors: the bind's (EADDRINUSE, ...) and
 * EINVAL for an address that is not an IP address. */
int srv_streamer_start(const char *address, int port, struct rt *rt, struct srv_streamer **ret,
		       struct husk_error *err);
/* Stop listening, end every session (their processes are killed and
 * reaped) and free the server. NULL is fine. */
void srv_streamer_stop(struct srv_streamer *s);
/* Sessions running now (for /metrics). */
int srv_streamer_sessions(struct srv_streamer *s);
/* The port actually listened on. */
int srv_streamer_port(const struct srv_streamer *s);
/* Take req and return its URL, http://ADDR:PORT/{exec|attach|portforward}/
 * TOKEN (caller frees). ENOSPC when too many requests wait. */
int srv_streamer_issue(struct srv_streamer *s, struct srv_stream_req *req, char **ret_url,
		       struct husk_error *err);

#endif
