/* The WebSocket side of the streaming server: frames cut from what a
 * client sends (ws_frame_parse, which unmasks in place), messages
 * reassembled from fragments within WS_MAX_MESSAGE as the session does,
 * and the base64 of the base64.channel.k8s.io protocols. The first input
 * byte's low bit says whether frames must be masked. Every frame must
 * come back the same from ws_put_frame. */
#include "server/stream_proto.h"
#include "tests/fuzz/fuzz.h"

static void check_round_trip(const struct ws_frame *f)
{
	static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
	struct srv_buf out = {0};
	ws_put_frame(&out, f->opcode, f->data, f->len, mask);
	struct ws_frame g;
	size_t used = 0;
	struct husk_error err = HUSK_ERROR_INIT;
	FUZZ_CHECK(ws_frame_parse(out.data, out.len, true, &g, &used, &err) == 1);
	FUZZ_CHECK(used == out.len && g.opcode == f->opcode && g.fin && g.len == f->len);
	FUZZ_CHECK(!f->len || memcmp(g.data, f->data, f->len) == 0);
	srv_buf_clear(&out);
}

static void on_message(const uint8_t *data, size_t len)
{
	if (len < 1)
		return;
	uint8_t *raw = NULL;
	size_t rl = 0;
	if (srv_base64_decode((const char *)data + 1, len - 1, &raw, &rl) < 0)
		return;
	FUZZ_CHECK(rl <= (len - 1) / 4 * 3);
	size_t el = 0;
	_cleanup_free_ char *enc = srv_base64_encode(raw, rl, &el);
	FUZZ_CHECK(el == strlen(enc));
	free(raw);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool require_mask = fuzz_byte(&data, &size) & 1;
	/* ws_frame_parse writes into the buffer: work on a copy. */
	_cleanup_free_ uint8_t *buf = xmalloc(size ? size : 1);
	if (size)
		memcpy(buf, data, size);
	struct srv_buf msg = {0};
	size_t off = 0;
	while (off < size) {
		struct ws_frame f;
		size_t used = 0;
		struct husk_error err = HUSK_ERROR_INIT;
		int r = ws_frame_parse(buf + off, size - off, require_mask, &f, &used, &err);
		if (r < 0)
			FUZZ_CHECK(err.msg && (err.code == EINVAL || err.code == EMSGSIZE));
		husk_error_clear(&err);
		if (r <= 0)
			break;
		FUZZ_CHECK(used >= 2 && used <= size - off);
		FUZZ_CHECK(f.len <= WS_MAX_MESSAGE);
		if (f.len)
			FUZZ_CHECK(f.data >= buf + off && f.data + f.len <= buf + off + used);
		check_round_trip(&f);
		off += used;
		if (f.opcode >= 0x8)
			continue; /* control frames: ping, pong, close */
		if (f.opcode != WS_OP_CONT)
			msg.len = 0;
		if (msg.len + f.len > WS_MAX_MESSAGE)
			break;
		srv_buf_add(&msg, f.data, f.len);
		if (f.fin) {
			on_message(msg.data, msg.len);
			msg.len = 0;
		}
	}
	srv_buf_clear(&msg);
	return 0;
}
