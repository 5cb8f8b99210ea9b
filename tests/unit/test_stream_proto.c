/* The streaming server's codecs: SPDY/3.1 frames and header compression
 * round-trips, WebSocket framing and handshake key, base64, and the
 * token store's single use, expiry and limit (with an injected clock). */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "server/stream_proto.h"
#include "unit.h"

static void test_dictionary(void)
{
	size_t n;
	const uint8_t *d = spdy_dictionary(&n);
	CU_ASSERT_EQUAL(n, 1423);
	CU_ASSERT(memcmp(d, "\0\0\0\7options\0\0\0\4head", 19) == 0);
	CU_ASSERT(memcmp(d + n - 6, "enq=0.", 6) == 0);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int ml;
	EVP_Digest(d, n, md, &ml, EVP_sha256(), NULL);
	char hex[65];
	for (unsigned i = 0; i < ml; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
	CU_ASSERT_STRING_EQUAL(hex,
			       "51d27341373f923f3cd88e1eb7162aeaa3723d7585ff2399201dc06498407f02");
}

static void test_spdy_data_and_control_frames(void)
{
	struct srv_buf b = {0};
	spdy_put_data(&b, 5, SPDY_FLAG_FIN, "hello", 5);
	spdy_put_rst_stream(&b, 7, SPDY_RST_CANCEL);
	spdy_put_ping(&b, 0xdeadbeef);
	spdy_put_goaway(&b, 9, 2);
	spdy_put_window_update(&b, 3, 65536);
	struct spdy_frame f;
	size_t used, off = 0;
	struct husk_error e = HUSK_ERROR_INIT;
	/* Every proper prefix asks for more. */
	for (size_t k = 0; k < 13; k++)
		CU_ASSERT_EQUAL(spdy_frame_parse(b.data, k, &f, &used, &e), 0);
	CU_ASSERT_EQUAL(spdy_frame_parse(b.data, b.len, &f, &used, &e), 1);
	CU_ASSERT_EQUAL(f.type, SPDY_DATA);
	CU_ASSERT_EQUAL(f.stream_id, 5);
	CU_ASSERT_EQUAL(f.flags, SPDY_FLAG_FIN);
	CU_ASSERT(f.len == 5 && memcmp(f.data, "hello", 5) == 0);
	off += used;
	CU_ASSERT_EQUAL(spdy_frame_parse(b.data + off, b.len - off, &f, &used, &e), 1);
	CU_ASSERT(f.type == SPDY_RST_STREAM && f.stream_id == 7 && f.value == SPDY_RST_CANCEL);
	off += used;
	CU_ASSERT_EQUAL(spdy_frame_parse(b.data + off, b.len - off, &f, &used, &e), 1);
	CU_ASSERT(f.type == SPDY_PING && f.value == 0xdeadbeef);
	off += used;
	CU_ASSERT_EQUAL(spdy_frame_parse(b.data + off, b.len - off, &f, &used, &e), 1);
	CU_ASSERT(f.type == SPDY_GOAWAY && f.value == 9 && f.value2 == 2);
	off += used;
	CU_ASSERT_EQUAL(spdy_frame_parse(b.data + off, b.len - off, &f, &used, &e), 1);
	CU_ASSERT(f.type == SPDY_WINDOW_UPDATE && f.stream_id == 3 && f.value == 65536);
	off += used;
	CU_ASSERT_EQUAL(off, b.len);

	/* The wire bytes of a control frame: C bit, version 3, type, length. */
	b.len = 0;
	spdy_put_ping(&b, 1);
	static const uint8_t ping[] = {0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1};
	CU_ASSERT(b.len == sizeof(ping) && memcmp(b.data, ping, sizeof(ping)) == 0);

	/* Version 2 and oversized frames are refused. */
	uint8_t v2[] = {0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1};
	CU_ASSERT_EQUAL(spdy_frame_parse(v2, sizeof(v2), &f, &used, &e), -EINVAL);
	uint8_t big[] = {0, 0, 0, 1, 0, 0xff, 0xff, 0xff};
	CU_ASSERT_EQUAL(spdy_frame_parse(big, sizeof(big), &f, &used, &e), -EMSGSIZE);
	uint8_t short_rst[] = {0x80, 3, 0, 3, 0, 0, 0, 4, 0, 0, 0, 1};
	CU_ASSERT_EQUAL(spdy_frame_parse(short_rst, sizeof(short_rst), &f, &used, &e), -EINVAL);
	husk_error_clear(&e);
	srv_buf_clear(&b);
}

static void test_spdy_header_round_trips(void)
{
	/* One side's deflater feeds the other's inflater across blocks. */
	struct spdy_zlib *client = spdy_zlib_new(), *server = spdy_zlib_new();
	struct srv_buf b = {0};
	struct husk_error e = HUSK_ERROR_INIT;
	const char *types[] = {"error", "stdin", "stdout", "stderr", "resize"};
	for (uint32_t i = 0; i < 5; i++) {
		struct spdy_headers h = {0};
		spdy_headers_add(&h, "StreamType", types[i]);
		spdy_headers_add(&h, "port", "8080");
		spdy_headers_add(&h, "requestid", "0");
		b.len = 0;
		spdy_put_syn_stream(client, &b, 2 * i + 1, 0, i == 0 ? SPDY_FLAG_FIN : 0, &h);
		spdy_headers_clear(&h);
		struct spdy_frame f;
		size_t used;
		CU_ASSERT_EQUAL_FATAL(spdy_frame_parse(b.data, b.len, &f, &used, &e), 1);
		CU_ASSERT_EQUAL(used, b.len);
		CU_ASSERT_EQUAL(f.type, SPDY_SYN_STREAM);
		CU_ASSERT_EQUAL(f.stream_id, 2 * i + 1);
		CU_ASSERT_EQUAL(f.flags, i == 0 ? SPDY_FLAG_FIN : 0);
		struct spdy_headers got = {0};
		CU_ASSERT_EQUAL_FATAL(spdy_headers_decode(server, f.data, f.len, &got, &e), 0);
		CU_ASSERT_EQUAL(got.n, 3);
		/* Names go on the wire in lowercase. */
		CU_ASSERT_STRING_EQUAL(got.name[0], "streamtype");
		CU_ASSERT_STRING_EQUAL(spdy_headers_get(&got, "streamType"), types[i]);
		CU_ASSERT_STRING_EQUAL(spdy_headers_get(&got, "port"), "8080");
		CU_ASSERT_PTR_NULL(spdy_headers_get(&got, "missing"));
		spdy_headers_clear(&got);
	}
	/* And back: SYN_REPLY with no headers, then one with a few. */
	for (int k = 0; k < 2; k++) {
		struct spdy_headers h = {0};
		if (k)
			spdy_headers_add(&h, "x-a", "1");
		b.len = 0;
		spdy_put_syn_reply(server, &b, 3, 0, &h);
		spdy_headers_clear(&h);
		struct spdy_frame f;
		size_t used;
		CU_ASSERT_EQUAL_FATAL(spdy_frame_parse(b.data, b.len, &f, &used, &e), 1);
		CU_ASSERT(f.type == SPDY_SYN_REPLY && f.stream_id == 3);
		struct spdy_headers got = {0};
		CU_ASSERT_EQUAL_FATAL(spdy_headers_decode(client, f.data, f.len, &got, &e), 0);
		CU_ASSERT_EQUAL(got.n, (size_t)k);
		spdy_headers_clear(&got);
	}
	/* Garbage is refused, not crashed on. */
	struct spdy_zlib *fresh = spdy_zlib_new();
	struct spdy_headers got = {0};
	static const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8};
	CU_ASSERT(spdy_headers_decode(fresh, junk, sizeof(junk), &got, &e) < 0);
	spdy_zlib_free(fresh);
	husk_error_clear(&e);
	srv_buf_clear(&b);
	spdy_zlib_free(client);
	spdy_zlib_free(server);
}

static void test_ws_frames(void)
{
	static const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 200000};
	static const uint8_t mask[4] = {0x11, 0x22, 0x33, 0x44};
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		for (int masked = 0; masked < 2; masked++) {
			_cleanup_free_ uint8_t *payload = xmalloc(sizes[i] + 1);
			for (size_t k = 0; k < sizes[i]; k++)
				payload[k] = (uint8_t)(k * 7);
			struct srv_buf b = {0};
			ws_put_frame(&b, WS_OP_BINARY, payload, sizes[i], masked ? mask : NULL);
			struct ws_frame f;
			size_t used;
			struct husk_error e = HUSK_ERROR_INIT;
			CU_ASSERT_EQUAL(ws_frame_parse(b.data, b.len - 1, masked, &f, &used, &e),
					0);
			CU_ASSERT_EQUAL(ws_frame_parse(b.data, b.len, masked, &f, &used, &e), 1);
			CU_ASSERT(f.fin && f.opcode == WS_OP_BINARY && f.len == sizes[i]);
			CU_ASSERT(used == b.len);
			CU_ASSERT(memcmp(f.data, payload, sizes[i]) == 0);
			srv_buf_clear(&b);
			husk_error_clear(&e);
		}
	}
	/* The RFC's example: an unmasked "Hello" and a masked one. */
	uint8_t hello[] = {0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};
	uint8_t mhello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
	struct ws_frame f;
	size_t used;
	struct husk_error e = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(ws_frame_parse(mhello, sizeof(mhello), true, &f, &used, &e), 1);
	CU_ASSERT(f.opcode == WS_OP_TEXT && f.len == 5 && memcmp(f.data, "Hello", 5) == 0);
	/* A client must mask. */
	CU_ASSERT_EQUAL(ws_frame_parse(hello, sizeof(hello), true, &f, &used, &e), -EINVAL);
	CU_ASSERT_EQUAL(ws_frame_parse(hello, sizeof(hello), false, &f, &used, &e), 1);
	/* Control frames are short and final; reserved bits are refused. */
	uint8_t long_ping[130] = {0x89, 0x80 | 126, 0, 126};
	CU_ASSERT_EQUAL(ws_frame_parse(long_ping, sizeof(long_ping), true, &f, &used, &e), -EINVAL);
	uint8_t rsv[] = {0xc1, 0x80, 0, 0, 0, 0};
	CU_ASSERT_EQUAL(ws_frame_parse(rsv, sizeof(rsv), true, &f, &used, &e), -EINVAL);
	uint8_t huge[] = {0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0};
	CU_ASSERT_EQUAL(ws_frame_parse(huge, sizeof(huge), true, &f, &used, &e), -EMSGSIZE);
	husk_error_clear(&e);
}

static void test_ws_accept_and_base64(void)
{
	_cleanup_free_ char *acc = ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==");
	CU_ASSERT_STRING_EQUAL(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	const char *in = "any carnal pleasure";
	for (size_t n = 0; n <= strlen(in); n++) {
		size_t el;
		_cleanup_free_ char *enc = srv_base64_encode(in, n, &el);
		CU_ASSERT_EQUAL(el, strlen(enc));
		_cleanup_free_ uint8_t *dec = NULL;
		size_t dl;
		CU_ASSERT_EQUAL(srv_base64_decode(enc, el, &dec, &dl), 0);
		CU_ASSERT(dl == n && memcmp(dec, in, n) == 0);
	}
	uint8_t *dec = NULL;
	size_t dl;
	CU_ASSERT_EQUAL(srv_base64_decode("abc", 3, &dec, &dl), -EINVAL);
	CU_ASSERT_EQUAL(srv_base64_decode("a*c=", 4, &dec, &dl), -EINVAL);
}

static long long fake_now;
static long long fake_clock(void)
{
	return fake_now;
}
static int freed;
static void count_free(void *p)
{
	freed++;
	free(p);
}

static void test_tokens(void)
{
	fake_now = 1000;
	freed = 0;
	struct srv_tokens *t = srv_tokens_new(0, fake_clock, count_free);
	char tok[STREAM_TOKEN_LEN + 1], tok2[STREAM_TOKEN_LEN + 1];
	struct husk_error e = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(srv_tokens_issue(t, xstrdup("a"), tok, &e), 0);
	CU_ASSERT_EQUAL(strlen(tok), 8);
	CU_ASSERT_EQUAL(
	    strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 8);
	CU_ASSERT_EQUAL(srv_tokens_issue(t, xstrdup("b"), tok2, &e), 0);
	CU_ASSERT_STRING_NOT_EQUAL(tok, tok2);
	/* Single use. */
	char *p = srv_tokens_take(t, tok);
	CU_ASSERT_STRING_EQUAL(p, "a");
	free(p);
	CU_ASSERT_PTR_NULL(srv_tokens_take(t, tok));
	CU_ASSERT_PTR_NULL(srv_tokens_take(t, "AAAAAAAA"));
	CU_ASSERT_PTR_NULL(srv_tokens_take(t, "short"));
	CU_ASSERT_PTR_NULL(srv_tokens_take(t, NULL));
	/* Valid just under a minute, gone at it (and its payload freed). */
	fake_now += STREAM_TOKEN_TTL_NS - 1;
	CU_ASSERT_EQUAL(srv_tokens_count(t), 1);
	fake_now += 1;
	CU_ASSERT_EQUAL(srv_tokens_count(t), 0);
	CU_ASSERT_EQUAL(freed, 1);
	CU_ASSERT_PTR_NULL(srv_tokens_take(t, tok2));
	/* At most 1000 outstanding; expiry makes room again. */
	for (int i = 0; i < STREAM_TOKEN_MAX; i++)
		CU_ASSERT_EQUAL(srv_tokens_issue(t, xstrdup("x"), tok, &e), 0);
	CU_ASSERT_EQUAL(srv_tokens_issue(t, xstrdup("over"), tok, &e), -ENOSPC);
	CU_ASSERT_EQUAL(e.code, ENOSPC);
	CU_ASSERT_EQUAL(freed, 2); /* the refused payload */
	fake_now += STREAM_TOKEN_TTL_NS;
	CU_ASSERT_EQUAL(srv_tokens_issue(t, xstrdup("y"), tok, &e), 0);
	CU_ASSERT_EQUAL(freed, 2 + STREAM_TOKEN_MAX);
	srv_tokens_free(t); /* frees the one left */
	CU_ASSERT_EQUAL(freed, 3 + STREAM_TOKEN_MAX);
	husk_error_clear(&e);
	/* A custom TTL. */
	fake_now = 0;
	t = srv_tokens_new(500, fake_clock, NULL);
	CU_ASSERT_EQUAL(srv_tokens_issue(t, xstrdup("z"), tok, &e), 0);
	fake_now = 499;
	p = srv_tokens_take(t, tok);
	CU_ASSERT_PTR_NOT_NULL(p);
	free(p);
	srv_tokens_free(t);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"spdy dictionary", test_dictionary},
	    {"spdy data and control frames", test_spdy_data_and_control_frames},
	    {"spdy header compression round trips", test_spdy_header_round_trips},
	    {"websocket frames", test_ws_frames},
	    {"websocket accept key and base64", test_ws_accept_and_base64},
	    {"tokens: single use, expiry, limit", test_tokens},
	};
	return unit_run("stream_proto", tests, ARRAY_SIZE(tests));
}
