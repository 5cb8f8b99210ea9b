/* The streaming server's transport: a TCP listener whose connections each
 * get a thread. A connection sends one HTTP/1.1 request naming a token, is
 * upgraded to SPDY/3.1 or WebSocket, and then runs one session (exec,
 * attach or port-forward: stream_session.c) in a poll loop over the client
 * socket and the session's process, shim connection or TCP connections;
 * this file decodes the client's frames and hands them to the session. */
#include "server/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/json.h"
#include "common/log.h"
#include "runtime/runtime.h"
#include "server/stream-internal.h"
#include "server/stream_proto.h"

void srv_stream_req_free(struct srv_stream_req *r)
{
	if (!r)
		return;
	free(r->target);
	strv_free(r->cmd);
	free(r);
}

static void req_free_void(void *p)
{
	srv_stream_req_free(p);
}

/* ---- HTTP ---- */

static void write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t w = send(fd, data, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = {fd, POLLOUT, 0};
			if (poll(&pf, 1, HTTP_TIMEOUT_MS) <= 0)
				return;
			continue;
		}
		if (w <= 0)
			return;
		data += w;
		len -= (size_t)w;
	}
}

static void http_error(int fd, int code, const char *reason, const char *extra_headers,
		       const char *body)
{
	_cleanup_free_ char *resp =
	    xasprintf("HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
		      "Content-Length: %zu\r\nConnection: close\r\n%s\r\n%s",
		      code, reason, strlen(body) + 1, extra_headers ? extra_headers : "", body);
	/* The body ends with a newline, counted above. */
	_cleanup_free_ char *full = xasprintf("%s\n", resp);
	write_all(fd, full, strlen(full));
}

/* Read the request head; leftover bytes go to s->in. */
static int http_read(struct session *s, char **ret_head)
{
	struct srv_buf b = {0};
	long long deadline = now_mono_ns() + HTTP_TIMEOUT_MS * 1000000LL;
	for (;;) {
		uint8_t *end = b.len >= 4 ? memmem(b.data, b.len, "\r\n\r\n", 4) : NULL;
		if (end) {
			size_t head = (size_t)(end - b.data);
			*ret_head = xstrndup((const char *)b.data, head);
			srv_buf_add(&s->in, end + 4, b.len - head - 4);
			srv_buf_clear(&b);
			return 0;
		}
		if (b.len >= HTTP_MAX_REQUEST) {
			srv_buf_clear(&b);
			return -EMSGSIZE;
		}
		long long left = (deadline - now_mono_ns()) / 1000000;
		struct pollfd pf = {s->fd, POLLIN, 0};
		if (left <= 0 || poll(&pf, 1, (int)left) == 0) {
			srv_buf_clear(&b);
			return -ETIMEDOUT;
		}
		uint8_t chunk[4096];
		ssize_t n = recv(s->fd, chunk, sizeof(chunk), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			srv_buf_clear(&b);
			return -ECONNRESET;
		}
		srv_buf_add(&b, chunk, (size_t)n);
	}
}

/* ---- protocol negotiation ---- */

struct proto {
	const char *name;
	int version;
	bool b64;
};

static const struct proto spdy_exec_protos[] = {
    {"v4.channel.k8s.io", 4, false},
    {"v3.channel.k8s.io", 3, false},
    {"v2.channel.k8s.io", 2, false},
    {"channel.k8s.io", 1, false},
};
static const struct proto ws_exec_protos[] = {
    {"v5.channel.k8s.io", 5, false},	   {"v4.channel.k8s.io", 4, false},
    {"v4.base64.channel.k8s.io", 4, true}, {"channel.k8s.io", 1, false},
    {"base64.channel.k8s.io", 1, true},
};
static const struct proto spdy_pf_protos[] = {{"portforward.k8s.io", 0, false}};

static const struct proto *negotiate(char **offered, const struct proto *server, size_t n)
{
	for (size_t i = 0; offered[i]; i++)
		for (size_t k = 0; k < n; k++)
			if (streq(offered[i], server[k].name))
				return &server[k];
	return NULL;
}

static void refuse_protocols(struct session *s, char **offered, const struct proto *server,
			     size_t n, bool ws)
{
	_cleanup_free_ char *hdrs = xstrdup(""), *cl = xstrdup(""), *sv = xstrdup("");
	for (size_t k = 0; k < n; k++) {
		char *x = xasprintf("%sX-Accepted-Stream-Protocol-Versions: %s\r\n", hdrs,
				    server[k].name);
		free(hdrs);
		hdrs = x;
		x = xasprintf("%s%s%s", sv, k ? " " : "", server[k].name);
		free(sv);
		sv = x;
	}
	for (size_t i = 0; offered[i]; i++) {
		char *x = xasprintf("%s%s%s", cl, i ? " " : "", offered[i]);
		free(cl);
		cl = x;
	}
	_cleanup_free_ char *body = xasprintf(
	    "unable to upgrade: unable to negotiate protocol: client supports [%s], server "
	    "accepts [%s]",
	    cl, sv);
	http_error(s->fd, ws ? 400 : 403, ws ? "Bad Request" : "Forbidden", hdrs, body);
}

static const char *kind_name(enum srv_stream_kind k)
{
	return k == SRV_STREAM_EXEC ? "exec" : k == SRV_STREAM_ATTACH ? "attach" : "portforward";
}

/* Read the request, spend its token and upgrade. On failure the client
 * got its answer and the session ends. */
/* The request named a valid token: the connection now takes a session's
 * place. -EBUSY when every place is taken or the connection was dropped. */
static int session_promote(struct session *s)
{
	struct srv_streamer *srv = s->srv;
	pthread_mutex_lock(&srv->lock);
	int r = -EBUSY;
	if (!s->evicted && srv->n_sessions < SRV_STREAM_MAX_SESSIONS) {
		srv->n_pending--;
		srv->n_sessions++;
		s->upgraded = true;
		r = 0;
	}
	pthread_mutex_unlock(&srv->lock);
	return r;
}

static int handshake(struct session *s)
{
	_cleanup_free_ char *head = NULL;
	int r = http_read(s, &head);
	if (r < 0) {
		if (r == -EMSGSIZE)
			http_error(s->fd, 431, "Request Header Fields Too Large", NULL,
				   "request head too large");
		return r;
	}
	struct srv_http_req h = {0};
	if (srv_http_parse(head, &h) < 0) {
		http_error(s->fd, 400, "Bad Request", NULL, "malformed HTTP request");
		srv_http_req_clear(&h);
		return -EINVAL;
	}
	r = -EINVAL;
	char *q = strchr(h.path, '?');
	if (q)
		*q = '\0';
	const char *token = NULL;
	enum srv_stream_kind kind = SRV_STREAM_EXEC;
	static const struct {
		const char *prefix;
		enum srv_stream_kind kind;
	} routes[] = {{"/exec/", SRV_STREAM_EXEC},
		      {"/attach/", SRV_STREAM_ATTACH},
		      {"/portforward/", SRV_STREAM_PORTFORWARD}};
	for (size_t i = 0; i < ARRAY_SIZE(routes) && !token; i++)
		if (startswith(h.path, routes[i].prefix)) {
			token = h.path + strlen(routes[i].prefix);
			kind = routes[i].kind;
		}
	struct srv_stream_req *req = token ? srv_tokens_take(s->srv->tokens, token) : NULL;
	if (req && req->kind != kind) {
		srv_stream_req_free(req);
		req = NULL;
	}
	if (!req || (!streq(h.method, "GET") && !streq(h.method, "POST"))) {
		http_error(s->fd, 404, "Not Found", NULL,
			   "404 page not found: unknown or expired token");
		srv_stream_req_free(req);
		goto out;
	}
	s->req = req;
	if (session_promote(s) < 0) {
		http_error(s->fd, 503, "Service Unavailable", NULL, "too many streaming sessions");
		goto out;
	}
	bool ws = srv_http_has_token(&h, "Upgrade", "websocket");
	bool spdy = srv_http_has_token(&h, "Upgrade", "SPDY/3.1");
	if (!srv_http_has_token(&h, "Connection", "Upgrade") || (!ws && !spdy)) {
		http_error(s->fd, 400, "Bad Request", NULL,
			   "unable to upgrade: missing upgrade headers in request: Connection: "
			   "Upgrade with Upgrade: SPDY/3.1 or websocket");
		goto out;
	}
	if (spdy) {
		_cleanup_strv_ char **offered = srv_http_list(&h, "X-Stream-Protocol-Version");
		const struct proto *tab =
		    kind == SRV_STREAM_PORTFORWARD ? spdy_pf_protos : spdy_exec_protos;
		size_t n = kind == SRV_STREAM_PORTFORWARD ? ARRAY_SIZE(spdy_pf_protos)
							  : ARRAY_SIZE(spdy_exec_protos);
		const struct proto *p = offered[0] ? negotiate(offered, tab, n) : &tab[n - 1];
		if (!p) {
			refuse_protocols(s, offered, tab, n, false);
			goto out;
		}
		s->version = p->version;
		s->z = spdy_zlib_new();
		_cleanup_free_ char *resp =
		    xasprintf("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "
			      "SPDY/3.1\r\nX-Stream-Protocol-Version: %s\r\n\r\n",
			      p->name);
		write_all(s->fd, resp, strlen(resp));
	} else {
		const char *key = srv_http_get(&h, "Sec-WebSocket-Key");
		const char *ver = srv_http_get(&h, "Sec-WebSocket-Version");
		if (isempty(key) || !streq(ver, "13")) {
			http_error(s->fd, 400, "Bad Request", NULL,
				   "unable to upgrade: websocket needs Sec-WebSocket-Key and "
				   "Sec-WebSocket-Version: 13");
			goto out;
		}
		if (kind == SRV_STREAM_PORTFORWARD) {
			http_error(s->fd, 400, "Bad Request", NULL,
				   "unable to upgrade: port forwarding needs SPDY/3.1");
			goto out;
		}
		_cleanup_strv_ char **offered = srv_http_list(&h, "Sec-WebSocket-Protocol");
		const struct proto *p =
		    offered[0] ? negotiate(offered, ws_exec_protos, ARRAY_SIZE(ws_exec_protos))
			       : &ws_exec_protos[3];
		if (!p) {
			refuse_protocols(s, offered, ws_exec_protos, ARRAY_SIZE(ws_exec_protos),
					 true);
			goto out;
		}
		s->ws = true;
		s->version = p->version;
		s->b64 = p->b64;
		_cleanup_free_ char *accept = ws_accept_key(key);
		_cleanup_free_ char *proto_hdr =
		    offered[0] ? xasprintf("Sec-WebSocket-Protocol: %s\r\n", p->name) : xstrdup("");
		_cleanup_free_ char *resp =
		    xasprintf("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
			      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n%s\r\n",
			      accept, proto_hdr);
		write_all(s->fd, resp, strlen(resp));
	}
	log_debug("stream session=%s kind=%s target=%s transport=%s version=%d", s->peer,
		  kind_name(kind), s->req->target, s->ws ? "websocket" : "spdy", s->version);
	r = 0;
out:
	srv_http_req_clear(&h);
	return r;
}

/* ---- input from the client ---- */

static int on_spdy_input(struct session *s)
{
	for (;;) {
		struct spdy_frame f;
		size_t used = 0;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		int r = spdy_frame_parse(s->in.data, s->in.len, &f, &used, &e);
		if (r < 0) {
			log_debug("stream session=%s %s", s->peer, e.msg);
			return r;
		}
		if (r == 0)
			return 0;
		switch (f.type) {
		case SPDY_DATA:
			srv_session_spdy_data(s, &f);
			break;
		case SPDY_SYN_STREAM:
		case SPDY_SYN_REPLY:
		case SPDY_HEADERS: {
			/* Every block goes through the inflater to keep it in step. */
			struct spdy_headers h = {0};
			if (spdy_headers_decode(s->z, f.data, f.len, &h, &e) < 0) {
				log_debug("stream session=%s %s", s->peer, e.msg);
				return -EINVAL;
			}
			if (f.type == SPDY_SYN_STREAM && !s->finished)
				srv_session_syn(s, &f, &h);
			spdy_headers_clear(&h);
			break;
		}
		case SPDY_RST_STREAM:
			srv_session_rst(s, f.stream_id);
			break;
		case SPDY_PING:
			spdy_put_ping(&s->out, f.value);
			break;
		case SPDY_GOAWAY:
			s->client_gone = true;
			break;
		default:
			break; /* SETTINGS, WINDOW_UPDATE: we keep no windows */
		}
		srv_buf_consume(&s->in, used);
	}
}

static void on_ws_message(struct session *s, const uint8_t *data, size_t len)
{
	if (!len)
		return;
	if (s->version >= 5 && data[0] == 255) {
		if (len == 2 && data[1] < CH_COUNT)
			srv_session_close(s, data[1]);
		return;
	}
	int ch = s->b64 ? data[0] - '0' : data[0];
	if (ch < 0 || ch >= CH_COUNT)
		return;
	if (!s->b64) {
		srv_session_data(s, ch, data + 1, len - 1);
		return;
	}
	_cleanup_free_ uint8_t *raw = NULL;
	size_t rl = 0;
	if (srv_base64_decode((const char *)data + 1, len - 1, &raw, &rl) == 0)
		srv_session_data(s, ch, raw, rl);
}

static int on_ws_input(struct session *s)
{
	for (;;) {
		struct ws_frame f;
		size_t used = 0;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		int r = ws_frame_parse(s->in.data, s->in.len, true, &f, &used, &e);
		if (r < 0) {
			log_debug("stream session=%s %s", s->peer, e.msg);
			return r;
		}
		if (r == 0)
			return 0;
		switch (f.opcode) {
		case WS_OP_PING:
			ws_put_frame(&s->out, WS_OP_PONG, f.data, f.len, NULL);
			break;
		case WS_OP_PONG:
			break;
		case WS_OP_CLOSE:
			s->client_gone = true;
			break;
		case WS_OP_TEXT:
		case WS_OP_BINARY:
		case WS_OP_CONT:
			if (f.opcode != WS_OP_CONT)
				s->wsmsg.len = 0;
			if (s->wsmsg.len + f.len > WS_MAX_MESSAGE)
				return -EMSGSIZE;
			srv_buf_add(&s->wsmsg, f.data, f.len);
			if (f.fin) {
				on_ws_message(s, s->wsmsg.data, s->wsmsg.len);
				s->wsmsg.len = 0;
			}
			break;
		default:
			return -EINVAL;
		}
		srv_buf_consume(&s->in, used);
	}
}

static void read_client(struct session *s)
{
	uint8_t buf[READ_CHUNK];
	ssize_t n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		s->client_gone = true;
		return;
	}
	if (s->shut)
		return; /* lingering: the client's last words are not needed */
	srv_buf_add(&s->in, buf, (size_t)n);
	int r = s->ws ? on_ws_input(s) : on_spdy_input(s);
	if (r < 0)
		s->client_gone = true;
}

static void write_client(struct session *s)
{
	while (s->out.len) {
		ssize_t w = send(s->fd, s->out.data, s->out.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			s->client_gone = true;
			s->out.len = 0;
			return;
		}
		srv_buf_consume(&s->out, (size_t)w);
	}
}

/* ---- the session loop ---- */

static size_t pending_input(const struct session *s)
{
	size_t n = s->stdin_buf.len;
	for (size_t i = 0; i < s->n_pairs; i++)
		n += s->pairs[i]->to_tcp.len;
	return n;
}

static void expected_streams(struct session *s)
{
	const struct srv_stream_req *q = s->req;
	s->expected = 1 + q->in + q->out + (q->err && !q->tty) + (q->tty && s->version >= 3);
}

static void session_run(struct session *s)
{
	fcntl(s->fd, F_SETFL, O_NONBLOCK);
	enum srv_stream_kind kind = s->req->kind;
	s->deadline = now_mono_ns() + SRV_STREAM_CREATE_TIMEOUT_MS * 1000000LL;
	if (kind != SRV_STREAM_PORTFORWARD)
		expected_streams(s);
	if (s->in.len) {
		int r = s->ws ? on_ws_input(s) : on_spdy_input(s);
		if (r < 0)
			return;
	}
	for (;;) {
		long long now = now_mono_ns();
		/* Start once the client's streams are all there (WebSocket
		 * has its channels from the start). */
		if (!s->started && !s->finished && kind != SRV_STREAM_PORTFORWARD &&
		    (s->ws || s->have >= s->expected)) {
			if (kind == SRV_STREAM_EXEC)
				srv_session_exec_start(s);
			else
				srv_session_attach_start(s);
		}
		if (s->started && !s->finished) {
			if (kind == SRV_STREAM_EXEC) {
				srv_session_feed_exec_stdin(s);
				if (!s->proc.reaped && rt_exec_proc_reap(&s->proc, false))
					s->drain_until = now + DRAIN_MS * 1000000LL;
				if (s->proc.reaped &&
				    ((!s->out_open[0] && !s->out_open[1]) || now >= s->drain_until))
					srv_channel_finish(s, s->proc.exit_code, NULL);
			} else {
				srv_session_feed_shim(s);
				if (s->shim_eof)
					srv_channel_finish(s, 0, NULL);
			}
		}
		if (s->finished && !s->out.len && !s->shut) {
			shutdown(s->fd, SHUT_WR);
			s->shut = true;
		}
		if (s->client_gone)
			return;
		if (now >= s->deadline) {
			if (s->finished)
				return;
			if (!s->started && kind != SRV_STREAM_PORTFORWARD) {
				log_info("stream session=%s: timed out waiting for the client's "
					 "streams (%d of %d)",
					 s->peer, s->have, s->expected);
				return;
			}
		}
		/* Port-forward halves whose other half never came. */
		for (size_t i = 0; i < s->n_pairs;) {
			struct pf_pair *p = s->pairs[i];
			if (p->fd < 0 &&
			    now - p->created > SRV_STREAM_CREATE_TIMEOUT_MS * 1000000LL) {
				spdy_put_rst_stream(&s->out, p->data_id ? p->data_id : p->error_id,
						    SPDY_RST_CANCEL);
				srv_session_pair_remove(s, i);
			} else {
				i++;
			}
		}

		struct pollfd pf[5 + SRV_STREAM_MAX_PAIRS];
		nfds_t n = 0;
		short cev =
		    (short)((pending_input(s) < IN_HIGH ? POLLIN : 0) | (s->out.len ? POLLOUT : 0));
		pf[n++] = (struct pollfd){s->fd, cev, 0};
		bool room = s->out.len < OUT_HIGH && !s->finished;
		int i_out = -1, i_err = -1, i_pid = -1, i_in = -1, i_shim = -1;
		size_t i_pairs = 0;
		if (kind == SRV_STREAM_EXEC && s->started && !s->finished) {
			if (s->out_open[0] && room) {
				i_out = (int)n;
				pf[n++] = (struct pollfd){s->proc.out, POLLIN, 0};
			}
			if (s->out_open[1] && room) {
				i_err = (int)n;
				pf[n++] = (struct pollfd){s->proc.err, POLLIN, 0};
			}
			if (!s->proc.reaped) {
				i_pid = (int)n;
				pf[n++] = (struct pollfd){s->proc.pidfd, POLLIN, 0};
			}
			if (s->stdin_buf.len && s->proc.in >= 0) {
				i_in = (int)n;
				pf[n++] = (struct pollfd){s->proc.in, POLLOUT, 0};
			}
		} else if (kind == SRV_STREAM_ATTACH && s->started && !s->finished) {
			i_shim = (int)n;
			short ev = (short)((room ? POLLIN : 0) |
					   (s->stdin_buf.len || (s->stdin_eof && !s->stdin_closed)
						? POLLOUT
						: 0));
			pf[n++] = (struct pollfd){s->shim, ev, 0};
		} else if (kind == SRV_STREAM_PORTFORWARD) {
			i_pairs = n;
			for (size_t i = 0; i < s->n_pairs; i++) {
				struct pf_pair *p = s->pairs[i];
				short ev = (short)((room ? POLLIN : 0) |
						   (p->to_tcp.len || (p->client_fin && !p->shut_wr)
							? POLLOUT
							: 0));
				pf[n++] = (struct pollfd){p->fd, p->fd >= 0 ? ev : 0, 0};
			}
		}
		int timeout = (int)((s->deadline - now) / 1000000) + 1;
		if (timeout < 0 || (s->started && !s->finished && kind != SRV_STREAM_PORTFORWARD))
			timeout = -1;
		if (kind == SRV_STREAM_PORTFORWARD && !s->finished)
			timeout = 1000; /* for the half-pair check */
		if (s->proc.reaped && !s->finished)
			timeout = DRAIN_MS / 4 + 1;
		int pr = poll(pf, n, timeout);
		if (pr < 0 && errno != EINTR)
			return;
		if (pr <= 0)
			continue;
		if (pf[0].revents & (POLLERR | POLLNVAL)) {
			s->client_gone = true;
			continue;
		}
		if (pf[0].revents & POLLOUT)
			write_client(s);
		if (pf[0].revents & (POLLIN | POLLHUP))
			read_client(s);
		if (i_out >= 0 && pf[i_out].revents)
			srv_session_read_output(s, 0);
		if (i_err >= 0 && pf[i_err].revents)
			srv_session_read_output(s, 1);
		if (i_pid >= 0 && pf[i_pid].revents && rt_exec_proc_reap(&s->proc, false))
			s->drain_until = now_mono_ns() + DRAIN_MS * 1000000LL;
		(void)i_in; /* stdin is fed at the top of the loop */
		if (i_shim >= 0 && (pf[i_shim].revents & (POLLIN | POLLHUP | POLLERR)))
			srv_session_read_shim(s);
		if (kind == SRV_STREAM_PORTFORWARD) {
			/* Walk backwards: pair_read may remove the current pair and
			 * move the last one into its place. */
			for (size_t k = s->n_pairs; k-- > 0;) {
				if (i_pairs + k >= n || !pf[i_pairs + k].revents)
					continue;
				struct pf_pair *p = s->pairs[k];
				if (pf[i_pairs + k].revents & POLLOUT)
					srv_session_pair_write(p);
				if (pf[i_pairs + k].revents & (POLLIN | POLLHUP | POLLERR))
					srv_session_pair_read(s, k);
			}
		}
		if (s->out.len)
			write_client(s);
	}
}

static void session_free(struct session *s)
{
	rt_exec_proc_release(&s->proc);
	if (s->shim >= 0)
		close(s->shim);
	for (size_t i = 0; i < s->n_pairs; i++)
		srv_session_pair_free(s->pairs[i]);
	spdy_zlib_free(s->z);
	srv_buf_clear(&s->in);
	srv_buf_clear(&s->out);
	srv_buf_clear(&s->wsmsg);
	srv_buf_clear(&s->stdin_buf);
	srv_buf_clear(&s->resize_buf);
	srv_stream_req_free(s->req);
	free(s);
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	struct srv_streamer *srv = s->srv;
	if (handshake(s) == 0)
		session_run(s);
	if (s->req && s->req->kind == SRV_STREAM_EXEC && s->proc.pid > 0 && !s->proc.reaped)
		log_info("stream session=%s: client went away; killing exec process %d", s->peer,
			 (int)s->proc.pid);
	log_debug("stream session=%s ended", s->peer);
	/* Off the list first, so that stop never touches a closed fd. */
	pthread_mutex_lock(&srv->lock);
	if (s->prev)
		s->prev->next = s->next;
	else
		srv->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	bool upgraded = s->upgraded;
	pthread_mutex_unlock(&srv->lock);
	close(s->fd);
	session_free(s);
	pthread_mutex_lock(&srv->lock);
	if (upgraded)
		srv->n_sessions--;
	else
		srv->n_pending--;
	pthread_cond_broadcast(&srv->cond);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

/* ---- the listener ---- */

/* Under srv->lock: drop the connection that has waited longest without
 * sending its request (the list is newest first). A real client sends its
 * request at once, so it is never the oldest for long; its thread sees EOF
 * and ends. */
static void evict_oldest_pending_locked(struct srv_streamer *srv)
{
	struct session *oldest = NULL;
	for (struct session *s = srv->sessions; s; s = s->next)
		if (!s->upgraded && !s->evicted)
			oldest = s;
	if (!oldest)
		return;
	oldest->evicted = true;
	shutdown(oldest->fd, SHUT_RDWR);
	log_debug("stream session=%s: dropped, still silent with %d connections waiting",
		  oldest->peer, srv->n_pending);
}

/* How long accept waits for evicted connections to end before it refuses. */
#define EVICTED_WAIT_S 1

static void accept_one(struct srv_streamer *srv)
{
	struct sockaddr_storage a;
	socklen_t al = sizeof(a);
	int fd = accept4(srv->listen_fd, (struct sockaddr *)&a, &al, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	struct session *s = xnew(struct session, 1);
	s->srv = srv;
	s->fd = fd;
	s->shim = -1;
	s->proc = RT_EXEC_PROC_INIT;
	char host[INET6_ADDRSTRLEN] = "?", port[8] = "?";
	getnameinfo((struct sockaddr *)&a, al, host, sizeof(host), port, sizeof(port),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(s->peer, sizeof(s->peer), "%s:%s", host, port);
	pthread_mutex_lock(&srv->lock);
	if (srv->n_pending >= SRV_STREAM_MAX_PENDING)
		evict_oldest_pending_locked(srv);
	/* Evicted connections are still on their way out: bound the threads.
	 * Each ends at its EOF, but on a busy node a flood's can take a while
	 * to run: wait for them (briefly; the listen backlog holds the next
	 * connections) rather than refuse a client that came right after the
	 * flood (test_silent_connections_do_not_refuse_exec failed so once in
	 * the test loop). */
	if (srv->n_pending >= 2 * SRV_STREAM_MAX_PENDING) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += EVICTED_WAIT_S;
		while (srv->n_pending >= 2 * SRV_STREAM_MAX_PENDING && !srv->stopping)
			if (pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) == ETIMEDOUT)
				break;
	}
	if (srv->n_pending >= 2 * SRV_STREAM_MAX_PENDING || srv->stopping) {
		pthread_mutex_unlock(&srv->lock);
		http_error(fd, 503, "Service Unavailable", NULL, "too many connections");
		close(fd);
		free(s);
		return;
	}
	s->next = srv->sessions;
	if (s->next)
		s->next->prev = s;
	srv->sessions = s;
	srv->n_pending++;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 512 << 10);
	int r = pthread_create(&(pthread_t){0}, &attr, session_main, s);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		srv->sessions = s->next;
		if (s->next)
			s->next->prev = NULL;
		srv->n_pending--;
		pthread_mutex_unlock(&srv->lock);
		log_warn("stream server: cannot start a session thread: %s", strerror(r));
		http_error(fd, 503, "Service Unavailable", NULL, "cannot start a session");
		close(fd);
		free(s);
		return;
	}
	pthread_mutex_unlock(&srv->lock);
}

static void *acceptor_main(void *arg)
{
	struct srv_streamer *srv = arg;
	for (;;) {
		struct pollfd pf[2] = {{srv->listen_fd, POLLIN, 0}, {srv->wake[0], POLLIN, 0}};
		int r = poll(pf, 2, -1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || pf[1].revents)
			break;
		if (pf[0].revents)
			accept_one(srv);
	}
	return NULL;
}

static long long token_ttl_ns(void)
{
	const char *e = getenv("HUSK_STREAM_TOKEN_TTL_MS");
	long long ms = e ? atoll(e) : 0;
	return ms > 0 ? ms * 1000000LL : 0;
}

int srv_streamer_start(const char *address, int port, struct rt *rt, struct srv_streamer **ret,
		       struct husk_error *err)
{
	const char *addr = isempty(address) ? "127.0.0.1" : address;
	if (port < 0 || port > 65535)
		return husk_error_set(err, EINVAL, "stream server: bad port %d", port);
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	bool v6 = false;
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*a6);
		v6 = true;
	} else {
		return husk_error_set(err, EINVAL, "stream server: '%s' is not an IP address",
				      addr);
	}
	_cleanup_close_ int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return husk_error_errno(err, errno, "stream server: socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0)
		return husk_error_errno(err, errno, "stream server: bind %s%s%s:%d", v6 ? "[" : "",
					addr, v6 ? "]" : "", port);
	if (listen(fd, 128) < 0)
		return husk_error_errno(err, errno, "stream server: listen");
	sl = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	int bound = ntohs(v6 ? a6->sin6_port : a4->sin_port);

	struct srv_streamer *srv = xnew(struct srv_streamer, 1);
	srv->rt = rt;
	srv->port = bound;
	srv->tokens = srv_tokens_new(token_ttl_ns(), NULL, req_free_void);
	/* An unspecified address is not one a client can reach. */
	const char *url_host = streq(addr, "0.0.0.0") ? "127.0.0.1"
			       : streq(addr, "::")    ? "::1"
						      : addr;
	srv->url_base =
	    xasprintf("http://%s%s%s:%d", v6 ? "[" : "", url_host, v6 ? "]" : "", bound);
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->cond, NULL);
	if (pipe2(srv->wake, O_CLOEXEC) < 0) {
		int e = errno;
		srv_tokens_free(srv->tokens);
		free(srv->url_base);
		free(srv);
		return husk_error_errno(err, e, "stream server: pipe");
	}
	srv->listen_fd = steal_fd(&fd);
	int r = pthread_create(&srv->acceptor, NULL, acceptor_main, srv);
	if (r != 0) {
		close(srv->listen_fd);
		close(srv->wake[0]);
		close(srv->wake[1]);
		srv_tokens_free(srv->tokens);
		free(srv->url_base);
		free(srv);
		return husk_error_errno(err, r, "stream server: thread");
	}
	*ret = srv;
	return 0;
}

int srv_streamer_sessions(struct srv_streamer *s)
{
	pthread_mutex_lock(&s->lock);
	int n = s->n_sessions;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int srv_streamer_port(const struct srv_streamer *s)
{
	return s->port;
}

void srv_streamer_stop(struct srv_streamer *srv)
{
	if (!srv)
		return;
	ssize_t w _unused_ = write(srv->wake[1], "x", 1);
	pthread_join(srv->acceptor, NULL);
	close(srv->listen_fd);
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	for (struct session *s = srv->sessions; s; s = s->next)
		shutdown(s->fd, SHUT_RDWR);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	while (srv->n_sessions + srv->n_pending > 0)
		if (pthread_cond_timedwait(&srv->cond, &srv->lock, &ts) == ETIMEDOUT)
			break;
	int left = srv->n_sessions + srv->n_pending;
	pthread_mutex_unlock(&srv->lock);
	if (left) {
		/* A session is stuck in a system call; the process is exiting
		 * anyway, so leave the server to the kernel. */
		log_warn("stream server: %d session(s) still running at shutdown", left);
		return;
	}
	close(srv->wake[0]);
	close(srv->wake[1]);
	srv_tokens_free(srv->tokens);
	pthread_mutex_destroy(&srv->lock);
	pthread_cond_destroy(&srv->cond);
	free(srv->url_base);
	free(srv);
}

int srv_streamer_issue(struct srv_streamer *srv, struct srv_stream_req *req, char **ret_url,
		       struct husk_error *err)
{
	enum srv_stream_kind kind = req->kind;
	char token[STREAM_TOKEN_LEN + 1];
	if (srv_tokens_issue(srv->tokens, req, token, err) < 0)
		return -err->code;
	*ret_url = xasprintf("%s/%s/%s", srv->url_base, kind_name(kind), token);
	return 0;
}
