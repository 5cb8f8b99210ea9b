/* Internals of the streaming server, shared by its three files: the
 * transport (stream.c: the listener, the HTTP upgrade, SPDY and WebSocket
 * input, the session loop), the channels' output framing
 * (stream_channel.c) and the sessions (stream_session.c: exec, attach,
 * port-forward). From the top down: stream.c calls the sessions, which
 * call the channels; none calls one above it. Not an API: stream.h is. */
#ifndef HUSK_SERVER_STREAM_INTERNAL_H
#define HUSK_SERVER_STREAM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/runtime.h"
#include "server/stream.h"
#include "server/stream_proto.h"

#define HTTP_MAX_REQUEST (16u << 10)
#define HTTP_TIMEOUT_MS 10000
#define READ_CHUNK (32u << 10)
/* Output waiting for a slow client: the session stops reading its
 * process (or shim, or connections) above this. */
#define OUT_HIGH (1u << 20)
/* Input from the client waiting for the process: the session stops
 * reading the client above this. */
#define IN_HIGH (1u << 20)
/* After the exec'd process ends, how long to wait for output that a
 * background child may still hold. */
#define DRAIN_MS 200
/* After the session's last frame, how long to wait for the client to
 * close before closing ourselves. */
#define LINGER_MS 5000
#define CONNECT_TIMEOUT_MS 5000
#define SHIM_PACKET (8192 + 1)

enum { CH_STDIN, CH_STDOUT, CH_STDERR, CH_ERROR, CH_RESIZE, CH_COUNT };

struct srv_streamer {
	struct rt *rt;
	int listen_fd;
	int wake[2];
	char *url_base; /* http://ADDR:PORT */
	int port;
	struct srv_tokens *tokens;
	pthread_t acceptor;
	pthread_mutex_t lock; /* guards the list below */
	pthread_cond_t cond;
	struct session *sessions; /* newest first, pending or upgraded */
	int n_pending;		  /* connections still in their handshake */
	int n_sessions;		  /* connections with a session (token taken) */
	bool stopping;
};

struct pf_pair {
	char *request_id;
	int port;
	uint32_t data_id, error_id;
	int fd;
	struct srv_buf to_tcp;
	bool client_fin, shut_wr;
	long long created;
};

struct session {
	struct srv_streamer *srv;
	struct session *prev, *next;
	int fd;
	struct srv_stream_req *req;
	char peer[64];
	bool upgraded; /* counted in n_sessions, else in n_pending */
	bool evicted;  /* dropped for a newer pending connection */

	/* transport */
	bool ws;
	bool b64;
	int version; /* remotecommand protocol 1..5; port forward: 0 */
	struct spdy_zlib *z;
	struct srv_buf in, out;
	struct srv_buf wsmsg;
	uint8_t wsop;
	bool client_gone; /* EOF, error, GOAWAY or close frame */
	bool finished;	  /* the last frames are queued */
	bool shut;	  /* ... and written, SHUT_WR done */
	long long deadline;

	/* exec and attach */
	uint32_t sid[CH_COUNT];
	bool fin_sent[CH_COUNT];
	int expected, have;
	bool started;
	struct srv_buf stdin_buf;
	bool stdin_eof, stdin_closed;
	struct srv_buf resize_buf;
	/* The last size the client sent before the process or attach
	 * started (0: none), applied when it starts. */
	unsigned pending_rows, pending_cols;
	struct rt_exec_proc proc;
	bool out_open[2];
	long long drain_until;
	int shim;
	bool shim_eof;

	/* port forward */
	struct pf_pair *pairs[SRV_STREAM_MAX_PAIRS];
	size_t n_pairs;
};

/* ---- stream_channel.c: output to the client ---- */

/* Queue data on channel ch in the session's framing (WebSocket message,
 * base64 or binary, or SPDY data frames of the channel's stream). */
void srv_channel_emit(struct session *s, int ch, const void *data, size_t len);
/* End channel ch's SPDY stream (once; nothing for WebSocket). */
void srv_channel_fin(struct session *s, int ch);
/* Queue the session's last frames: the status on the error stream, then
 * the end of every stream we opened. error: a failure of the runtime. */
void srv_channel_finish(struct session *s, int exit_code, const char *error);

/* ---- stream_session.c: exec, attach and port-forward ---- */

/* Input from the client, as the transport decoded it: data on channel ch,
 * the end of channel ch, a new SPDY stream, a SPDY data frame, a reset. */
void srv_session_data(struct session *s, int ch, const uint8_t *data, size_t len);
void srv_session_close(struct session *s, int ch);
void srv_session_syn(struct session *s, const struct spdy_frame *f, const struct spdy_headers *h);
void srv_session_spdy_data(struct session *s, const struct spdy_frame *f);
void srv_session_rst(struct session *s, uint32_t stream_id);
/* Start the exec'd process or attach to the container (a failure ends
 * the session with its message). */
void srv_session_exec_start(struct session *s);
void srv_session_attach_start(struct session *s);
/* Move bytes between the client's buffers and the process's pipes (i: 0
 * stdout, 1 stderr), the shim's attach socket, or a port-forward pair's
 * TCP connection. */
void srv_session_read_output(struct session *s, int i);
void srv_session_feed_exec_stdin(struct session *s);
void srv_session_feed_shim(struct session *s);
void srv_session_read_shim(struct session *s);
void srv_session_pair_read(struct session *s, size_t i);
void srv_session_pair_write(struct pf_pair *p);
void srv_session_pair_free(struct pf_pair *p);
void srv_session_pair_remove(struct session *s, size_t i);

#endif
