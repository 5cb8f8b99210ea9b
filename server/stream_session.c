/* The streaming server's sessions: exec (a process started in the
 * container), attach (the shim's attach socket) and port-forward (TCP
 * connections into the pod, one per pair of SPDY streams), fed with what
 * the transport decoded from the client and answering through the
 * channels. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "server/stream-internal.h"

static const char *const ch_names[CH_COUNT] = {"stdin", "stdout", "stderr", "error", "resize"};

/* Resize the exec's terminal, or pass the size on to the attached shim. */
static void apply_resize(struct session *s, unsigned rows, unsigned cols)
{
	if (s->req->kind == SRV_STREAM_EXEC) {
		rt_exec_proc_resize(&s->proc, rows, cols, NULL);
	} else if (s->shim >= 0) {
		char pkt[64];
		int l = snprintf(pkt, sizeof(pkt), "r %u %u", rows, cols);
		send(s->shim, pkt, (size_t)l, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
}

static void on_resize_data(struct session *s, const uint8_t *data, size_t len)
{
	srv_buf_add(&s->resize_buf, data, len);
	if (s->resize_buf.len > 4096) {
		s->resize_buf.len = 0;
		return;
	}
	/* Each resize is one JSON object; take every complete one. (The
	 * buffer has no memory yet after an empty first frame.) */
	for (;;) {
		uint8_t *close_ =
		    s->resize_buf.len ? memchr(s->resize_buf.data, '}', s->resize_buf.len) : NULL;
		if (!close_)
			return;
		size_t n = (size_t)(close_ - s->resize_buf.data) + 1;
		_cleanup_json_ yajl_val v = NULL;
		if (json_parse((const char *)s->resize_buf.data, n, "resize", &v, NULL) == 0) {
			long long w = json_get_int(v, "Width", 0), h = json_get_int(v, "Height", 0);
			/* A size sent before the start (a client sends it
			 * right after its streams, and they can come in the
			 * same read) is kept for it, not dropped: the
			 * terminal would stay 0x0 (test_exec_tty_resize). */
			if (w > 0 && h > 0 && w < 65536 && h < 65536) {
				if (s->started) {
					apply_resize(s, (unsigned)h, (unsigned)w);
				} else {
					s->pending_rows = (unsigned)h;
					s->pending_cols = (unsigned)w;
				}
			}
		}
		srv_buf_consume(&s->resize_buf, n);
	}
}

void srv_session_data(struct session *s, int ch, const uint8_t *data, size_t len)
{
	if (ch == CH_STDIN && !s->stdin_eof && s->req->in)
		srv_buf_add(&s->stdin_buf, data, len);
	else if (ch == CH_RESIZE)
		on_resize_data(s, data, len);
}

void srv_session_close(struct session *s, int ch)
{
	if (ch == CH_STDIN)
		s->stdin_eof = true;
}

static int channel_of(struct session *s, uint32_t id)
{
	for (int ch = 0; ch < CH_COUNT; ch++)
		if (s->sid[ch] == id)
			return ch;
	return -1;
}

static struct pf_pair *pair_by_stream(struct session *s, uint32_t id, size_t *ret_i)
{
	for (size_t i = 0; i < s->n_pairs; i++)
		if (s->pairs[i]->data_id == id || s->pairs[i]->error_id == id) {
			if (ret_i)
				*ret_i = i;
			return s->pairs[i];
		}
	return NULL;
}

void srv_session_pair_free(struct pf_pair *p)
{
	if (p->fd >= 0)
		close(p->fd);
	srv_buf_clear(&p->to_tcp);
	free(p->request_id);
	free(p);
}

void srv_session_pair_remove(struct session *s, size_t i)
{
	srv_session_pair_free(s->pairs[i]);
	s->pairs[i] = s->pairs[--s->n_pairs];
}

/* Both halves of a pair are here: connect inside the pod. */
static void pair_connect(struct session *s, struct pf_pair *p, size_t i)
{
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	int fd = -1;
	if (rt_pod_port_connect(s->srv->rt, s->req->target, p->port, CONNECT_TIMEOUT_MS, &fd, &e) <
	    0) {
		_cleanup_free_ char *msg = xasprintf("error forwarding port %d to pod %s: %s",
						     p->port, s->req->target, husk_error_msg(&e));
		log_debug("stream session=%s %s", s->peer, msg);
		spdy_put_data(&s->out, p->error_id, 0, msg, strlen(msg));
		spdy_put_data(&s->out, p->error_id, SPDY_FLAG_FIN, NULL, 0);
		spdy_put_data(&s->out, p->data_id, SPDY_FLAG_FIN, NULL, 0);
		srv_session_pair_remove(s, i);
		return;
	}
	p->fd = fd;
}

/* A port header: decimal digits only, 1 to 65535; 0 for anything else
 * (atoi would take "4294967376" as 80). */
static int port_number(const char *s)
{
	if (isempty(s) || strlen(s) > 5 || strspn(s, "0123456789") != strlen(s))
		return 0;
	int n = atoi(s);
	return n <= 65535 ? n : 0;
}

void srv_session_syn(struct session *s, const struct spdy_frame *f, const struct spdy_headers *h)
{
	struct spdy_headers empty = {0};
	const char *type = spdy_headers_get(h, "streamtype");
	if (f->stream_id == 0 || !type) {
		spdy_put_rst_stream(&s->out, f->stream_id, SPDY_RST_PROTOCOL_ERROR);
		return;
	}
	if (s->req->kind == SRV_STREAM_PORTFORWARD) {
		const char *port = spdy_headers_get(h, "port");
		const char *rid = spdy_headers_get(h, "requestid");
		bool data = streq(type, "data"), error = streq(type, "error");
		int portn = port_number(port);
		if ((!data && !error) || portn <= 0 || portn > 65535) {
			spdy_put_rst_stream(&s->out, f->stream_id, SPDY_RST_PROTOCOL_ERROR);
			return;
		}
		/* Old clients send no requestID: then the port pairs them. */
		_cleanup_free_ char *key = rid ? xstrdup(rid) : xasprintf("port-%d", portn);
		struct pf_pair *p = NULL;
		size_t idx = 0;
		for (size_t i = 0; i < s->n_pairs && !p; i++)
			if (streq(s->pairs[i]->request_id, key)) {
				p = s->pairs[i];
				idx = i;
			}
		if (!p) {
			if (s->n_pairs >= SRV_STREAM_MAX_PAIRS) {
				spdy_put_rst_stream(&s->out, f->stream_id, SPDY_RST_REFUSED_STREAM);
				return;
			}
			p = xnew(struct pf_pair, 1);
			p->request_id = steal_ptr(&key);
			p->port = portn;
			p->fd = -1;
			p->created = now_mono_ns();
			idx = s->n_pairs;
			s->pairs[s->n_pairs++] = p;
		}
		uint32_t *slot = data ? &p->data_id : &p->error_id;
		if (*slot) {
			spdy_put_rst_stream(&s->out, f->stream_id, SPDY_RST_PROTOCOL_ERROR);
			return;
		}
		*slot = f->stream_id;
		spdy_put_syn_reply(s->z, &s->out, f->stream_id, 0, &empty);
		if (data && (f->flags & SPDY_FLAG_FIN))
			p->client_fin = true;
		if (p->data_id && p->error_id)
			pair_connect(s, p, idx);
		return;
	}
	int ch = -1;
	for (int k = 0; k < CH_COUNT; k++)
		if (streq(type, ch_names[k]))
			ch = k;
	spdy_put_syn_reply(s->z, &s->out, f->stream_id, 0, &empty);
	if (ch < 0 || s->sid[ch]) {
		log_debug("stream session=%s unexpected stream type '%s'", s->peer, type);
		return;
	}
	s->sid[ch] = f->stream_id;
	s->have++;
	if (f->flags & SPDY_FLAG_FIN)
		srv_session_close(s, ch);
}

void srv_session_spdy_data(struct session *s, const struct spdy_frame *f)
{
	if (s->req->kind == SRV_STREAM_PORTFORWARD) {
		struct pf_pair *p = pair_by_stream(s, f->stream_id, NULL);
		if (!p || f->stream_id != p->data_id)
			return;
		if (!p->client_fin)
			srv_buf_add(&p->to_tcp, f->data, f->len);
		if (f->flags & SPDY_FLAG_FIN)
			p->client_fin = true;
		return;
	}
	int ch = channel_of(s, f->stream_id);
	if (ch < 0)
		return;
	srv_session_data(s, ch, f->data, f->len);
	if (f->flags & SPDY_FLAG_FIN)
		srv_session_close(s, ch);
}

void srv_session_exec_start(struct session *s)
{
	s->started = true;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	const struct srv_stream_req *q = s->req;
	/* A size the client sent already goes with the start: an OCI
	 * runtime sizes the terminal before the process runs (its own relay
	 * passes stdin on before a later size). */
	if (rt_ctr_exec_start(s->srv->rt, q->target, q->cmd, q->tty, q->in, q->out,
			      q->err && !q->tty, s->pending_rows, s->pending_cols, &s->proc,
			      &e) < 0) {
		log_debug("stream session=%s exec: %s", s->peer, e.msg);
		srv_channel_finish(s, 0, husk_error_msg(&e));
		return;
	}
	s->out_open[0] = s->proc.out >= 0;
	s->out_open[1] = s->proc.err >= 0;
}

void srv_session_attach_start(struct session *s)
{
	s->started = true;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	bool tty = false, in = false, once = false;
	if (rt_ctr_attach(s->srv->rt, s->req->target, &s->shim, &tty, &in, &once, &e) < 0) {
		log_debug("stream session=%s attach: %s", s->peer, e.msg);
		srv_channel_finish(s, 0, husk_error_msg(&e));
		return;
	}
	fcntl(s->shim, F_SETFL, O_NONBLOCK);
	if (!in)
		s->stdin_eof = true;
	if (s->pending_rows)
		apply_resize(s, s->pending_rows, s->pending_cols);
}

void srv_session_read_output(struct session *s, int i)
{
	int fd = i == 0 ? s->proc.out : s->proc.err;
	uint8_t buf[READ_CHUNK];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* EOF, or EIO from a pty master once the process side closed. */
		s->out_open[i] = false;
		return;
	}
	srv_channel_emit(s, i == 0 ? CH_STDOUT : CH_STDERR, buf, (size_t)n);
}

void srv_session_feed_exec_stdin(struct session *s)
{
	while (s->stdin_buf.len && s->proc.in >= 0) {
		ssize_t w = write(s->proc.in, s->stdin_buf.data, s->stdin_buf.len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			s->stdin_buf.len = 0; /* the process closed its stdin */
			break;
		}
		srv_buf_consume(&s->stdin_buf, (size_t)w);
	}
	if (!s->stdin_buf.len && s->stdin_eof && !s->stdin_closed) {
		rt_exec_proc_close_stdin(&s->proc);
		s->stdin_closed = true;
	}
}

void srv_session_feed_shim(struct session *s)
{
	uint8_t pkt[SHIM_PACKET];
	while (s->stdin_buf.len) {
		size_t take =
		    s->stdin_buf.len > SHIM_PACKET - 1 ? SHIM_PACKET - 1 : s->stdin_buf.len;
		pkt[0] = '0';
		memcpy(pkt + 1, s->stdin_buf.data, take);
		ssize_t w = send(s->shim, pkt, take + 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			s->stdin_buf.len = 0;
			break;
		}
		srv_buf_consume(&s->stdin_buf, take);
	}
	if (s->stdin_eof && !s->stdin_closed) {
		if (send(s->shim, "0", 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EAGAIN)
			return;
		s->stdin_closed = true;
	}
}

void srv_session_read_shim(struct session *s)
{
	uint8_t pkt[SHIM_PACKET + 1];
	for (int round = 0; round < 16 && s->out.len < OUT_HIGH; round++) {
		ssize_t n = recv(s->shim, pkt, sizeof(pkt), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			s->shim_eof = true;
			return;
		}
		if (pkt[0] == '1' && s->req->out)
			srv_channel_emit(s, CH_STDOUT, pkt + 1, (size_t)n - 1);
		else if (pkt[0] == '2' && (s->req->err || s->req->out))
			srv_channel_emit(s, s->req->err ? CH_STDERR : CH_STDOUT, pkt + 1,
					 (size_t)n - 1);
	}
}

void srv_session_pair_read(struct session *s, size_t i)
{
	struct pf_pair *p = s->pairs[i];
	uint8_t buf[READ_CHUNK];
	ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		spdy_put_data(&s->out, p->data_id, SPDY_FLAG_FIN, NULL, 0);
		spdy_put_data(&s->out, p->error_id, SPDY_FLAG_FIN, NULL, 0);
		srv_session_pair_remove(s, i);
		return;
	}
	spdy_put_data(&s->out, p->data_id, 0, buf, (size_t)n);
}

void srv_session_pair_write(struct pf_pair *p)
{
	while (p->to_tcp.len) {
		ssize_t w = send(p->fd, p->to_tcp.data, p->to_tcp.len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			p->to_tcp.len = 0;
			break;
		}
		srv_buf_consume(&p->to_tcp, (size_t)w);
	}
	if (p->client_fin && !p->shut_wr) {
		shutdown(p->fd, SHUT_WR);
		p->shut_wr = true;
	}
}

void srv_session_rst(struct session *s, uint32_t stream_id)
{
	if (s->req->kind == SRV_STREAM_PORTFORWARD) {
		size_t i;
		if (pair_by_stream(s, stream_id, &i))
			srv_session_pair_remove(s, i);
	} else {
		int ch = channel_of(s, stream_id);
		if (ch >= 0) {
			s->fin_sent[ch] = true;
			srv_session_close(s, ch);
		}
	}
}
