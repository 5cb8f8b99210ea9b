/* A whole streaming connection as a client drives it, minus the process
 * it would reach: the HTTP request (with "@@@@@@@@" in its head standing
 * for a token issued for this input), the SPDY/3.1 or WebSocket upgrade, then every
 * frame through the session's input handling (streams, data, resize
 * messages, port-forward pairs, pings, resets). Nothing is started:
 * exec and attach wait for their streams, and a port-forward pair's
 * connect finds no such pod in an empty store. server/stream.c is
 * compiled into this file for its static functions.
 * First input byte: bits 0-1 the kind (exec, attach, port-forward),
 * bits 2-5 the request's tty, stdin, stdout and stderr. */
#include "server/stream.c"

#include "runtime/runtime-internal.h"
#include "tests/fuzz/fuzz.h"

#define PLACEHOLDER "@@@@@@@@"
/* A request is at most what a socket buffer takes at once, so that one
 * write with the reader not started cannot block. */
#define MAX_INPUT (64u << 10)

static struct srv_streamer *streamer(void)
{
	static struct srv_streamer *srv;
	if (srv)
		return srv;
	/* The runtime has a record store only, empty: lookups find nothing. */
	struct rt *rt = xnew(struct rt, 1);
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *dir = xasprintf("%s/records", fuzz_tmpdir());
	if (state_store_open(dir, NULL, &rt->store, NULL, &err) < 0)
		abort();
	srv = xnew(struct srv_streamer, 1);
	srv->rt = rt;
	srv->tokens = srv_tokens_new(0, NULL, req_free_void);
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	return srv;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	log_set_level(LOG_LEVEL_ERROR);
	uint8_t sel = fuzz_byte(&data, &size);
	struct srv_streamer *srv = streamer();

	struct srv_stream_req *req = xnew(struct srv_stream_req, 1);
	req->kind = (enum srv_stream_kind)((sel & 3) % 3);
	req->target = xstrdup("fuzz");
	req->cmd = strv_append(NULL, "sh");
	req->tty = sel & 4;
	req->in = sel & 8;
	req->out = sel & 16;
	req->err = sel & 32;
	char token[STREAM_TOKEN_LEN + 1];
	struct husk_error err = HUSK_ERROR_INIT;
	FUZZ_CHECK(srv_tokens_issue(srv->tokens, req, token, &err) == 0);

	_cleanup_free_ uint8_t *in = xmalloc(size ? size : 1);
	if (size)
		memcpy(in, data, size);
	/* Only in the request head: the token is random, and frames after it
	 * must reach the parsers as the input has them. */
	const uint8_t *end = size >= 4 ? memmem(in, size, "\r\n\r\n", 4) : NULL;
	size_t head = end ? (size_t)(end - in) : size;
	for (uint8_t *p = in; (p = memmem(p, head - (size_t)(p - in), PLACEHOLDER, 8));)
		memcpy(p, token, 8), p += 8;

	int sv[2];
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	int buf = (int)MAX_INPUT * 4;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	FUZZ_CHECK(size == 0 || send(sv[1], in, size, MSG_NOSIGNAL) == (ssize_t)size);
	shutdown(sv[1], SHUT_WR);

	struct session *s = xnew(struct session, 1);
	s->srv = srv;
	s->fd = sv[0];
	s->shim = -1;
	s->proc = RT_EXEC_PROC_INIT;
	snprintf(s->peer, sizeof(s->peer), "fuzz");
	srv->n_pending++; /* as accept_one counts it */
	if (handshake(s) == 0) {
		FUZZ_CHECK(s->req);
		if (s->req->kind != SRV_STREAM_PORTFORWARD)
			expected_streams(s);
		/* What came with the request, then the rest of the stream, as
		 * the session loop would read it. */
		int r = 0;
		if (s->in.len)
			r = s->ws ? on_ws_input(s) : on_spdy_input(s);
		while (r == 0 && !s->client_gone) {
			read_client(s);
			s->out.len = 0; /* what we would send is not read here */
		}
		FUZZ_CHECK(s->n_pairs <= SRV_STREAM_MAX_PAIRS);
		FUZZ_CHECK(s->have <= CH_COUNT);
	}
	/* A token the request did not spend must not pile up. */
	srv_stream_req_free(srv_tokens_take(srv->tokens, token));
	/* Give the place back as session_main does. */
	if (s->upgraded)
		srv->n_sessions--;
	else
		srv->n_pending--;
	close(s->fd);
	close(sv[1]);
	session_free(s);
	return 0;
}
