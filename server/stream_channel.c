/* The streaming server's output to the client: a channel's data framed
 * for the session's transport (WebSocket messages, SPDY data frames), the
 * end of a channel, and a session's last frames (its status). */
#include <string.h>

#include "common/json.h"
#include "server/stream-internal.h"

void srv_channel_emit(struct session *s, int ch, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (s->ws) {
		do {
			size_t take = len > READ_CHUNK ? READ_CHUNK : len;
			if (s->b64) {
				size_t bl;
				_cleanup_free_ char *enc = srv_base64_encode(p, take, &bl);
				_cleanup_free_ char *msg = xmalloc(bl + 1);
				msg[0] = (char)('0' + ch);
				memcpy(msg + 1, enc, bl);
				ws_put_frame(&s->out, WS_OP_TEXT, msg, bl + 1, NULL);
			} else {
				_cleanup_free_ uint8_t *msg = xmalloc(take + 1);
				msg[0] = (uint8_t)ch;
				memcpy(msg + 1, p, take);
				ws_put_frame(&s->out, WS_OP_BINARY, msg, take + 1, NULL);
			}
			p += take;
			len -= take;
		} while (len);
		return;
	}
	if (!s->sid[ch] || s->fin_sent[ch])
		return;
	while (len) {
		size_t take = len > READ_CHUNK ? READ_CHUNK : len;
		spdy_put_data(&s->out, s->sid[ch], 0, p, take);
		p += take;
		len -= take;
	}
}

void srv_channel_fin(struct session *s, int ch)
{
	if (s->ws || !s->sid[ch] || s->fin_sent[ch])
		return;
	spdy_put_data(&s->out, s->sid[ch], SPDY_FLAG_FIN, NULL, 0);
	s->fin_sent[ch] = true;
}

/* The metav1.Status the v4 protocols end the error stream with. */
static char *status_json(int exit_code, const char *error)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	json_key(g, "metadata");
	yajl_gen_map_open(g);
	yajl_gen_map_close(g);
	if (!error && exit_code == 0) {
		json_kv_str(g, "status", "Success");
		yajl_gen_map_close(g);
		return json_gen_steal(g);
	}
	json_kv_str(g, "status", "Failure");
	_cleanup_free_ char *code = xasprintf("%d", exit_code);
	if (error) {
		_cleanup_free_ char *msg = xasprintf("Internal error occurred: %s", error);
		json_kv_str(g, "message", msg);
		json_kv_str(g, "reason", "InternalError");
		json_key(g, "details");
		yajl_gen_map_open(g);
		json_key(g, "causes");
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		json_kv_str(g, "message", error);
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
		json_kv_int(g, "code", 500);
	} else {
		_cleanup_free_ char *msg = xasprintf(
		    "command terminated with non-zero exit code: error executing command, exit "
		    "code %d",
		    exit_code);
		json_kv_str(g, "message", msg);
		json_kv_str(g, "reason", "NonZeroExitCode");
		json_key(g, "details");
		yajl_gen_map_open(g);
		json_key(g, "causes");
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		json_kv_str(g, "reason", "ExitCode");
		json_kv_str(g, "message", code);
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}

void srv_channel_finish(struct session *s, int exit_code, const char *error)
{
	if (s->finished)
		return;
	if (s->version >= 4) {
		_cleanup_free_ char *st = status_json(exit_code, error);
		srv_channel_emit(s, CH_ERROR, st, strlen(st));
	} else if (error || exit_code) {
		_cleanup_free_ char *msg =
		    error ? xstrdup(error)
			  : xasprintf("command terminated with non-zero exit code: exit code %d",
				      exit_code);
		srv_channel_emit(s, CH_ERROR, msg, strlen(msg));
	}
	if (s->ws) {
		uint8_t close_body[2] = {0x03, 0xe8}; /* 1000: normal closure */
		ws_put_frame(&s->out, WS_OP_CLOSE, close_body, 2, NULL);
	} else {
		for (int ch = 0; ch < CH_COUNT; ch++)
			srv_channel_fin(s, ch);
	}
	s->finished = true;
	s->deadline = now_mono_ns() + LINGER_MS * 1000000LL;
}
