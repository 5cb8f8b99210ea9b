/* The SPDY/3.1 decoder a streaming client talks to: frames cut from a
 * byte stream (spdy_frame_parse) and header blocks inflated with the
 * connection's zlib stream (spdy_headers_decode). The first input byte
 * picks the mode: even, the rest is a frame stream as a client sends it;
 * odd, the rest is one raw header block (pairs count, lengths, names,
 * values), compressed here so that the parser behind zlib sees any bytes.
 * Decoded headers must survive a write and a second decode. */
#include <strings.h>
#include <zlib.h>

#include "server/stream_proto.h"
#include "tests/fuzz/fuzz.h"

/* What spdy_put_syn_reply sends must decode to the same pairs (names
 * lowercased). */
static void check_round_trip(const struct spdy_headers *h)
{
	struct spdy_zlib *tx = spdy_zlib_new(), *rx = spdy_zlib_new();
	struct srv_buf out = {0};
	spdy_put_syn_reply(tx, &out, 1, 0, h);
	struct spdy_frame f;
	size_t used = 0;
	struct husk_error err = HUSK_ERROR_INIT;
	FUZZ_CHECK(spdy_frame_parse(out.data, out.len, &f, &used, &err) == 1);
	FUZZ_CHECK(f.type == SPDY_SYN_REPLY && used == out.len);
	struct spdy_headers back = {0};
	if (spdy_headers_decode(rx, f.data, f.len, &back, &err) < 0) {
		fprintf(stderr, "re-encoded headers do not decode: %s\n", err.msg);
		abort();
	}
	FUZZ_CHECK(back.n == h->n);
	for (size_t i = 0; i < h->n; i++) {
		FUZZ_CHECK(strcasecmp(back.name[i], h->name[i]) == 0);
		FUZZ_CHECK(streq(back.value[i], h->value[i]));
	}
	spdy_headers_clear(&back);
	srv_buf_clear(&out);
	spdy_zlib_free(tx);
	spdy_zlib_free(rx);
}

static void use_headers(const struct spdy_headers *h)
{
	FUZZ_CHECK(h->n <= SPDY_MAX_HEADERS);
	(void)spdy_headers_get(h, "streamtype");
	(void)spdy_headers_get(h, "port");
	check_round_trip(h);
}

static void frames(const uint8_t *data, size_t size)
{
	_cleanup_(spdy_zlib_freep) struct spdy_zlib *z = spdy_zlib_new();
	while (size) {
		struct spdy_frame f;
		size_t used = 0;
		struct husk_error err = HUSK_ERROR_INIT;
		int r = spdy_frame_parse(data, size, &f, &used, &err);
		if (r < 0)
			FUZZ_CHECK(err.msg && (err.code == EINVAL || err.code == EMSGSIZE));
		husk_error_clear(&err);
		if (r <= 0)
			return;
		FUZZ_CHECK(used >= 8 && used <= size);
		if (f.len)
			FUZZ_CHECK(f.data >= data && f.data + f.len <= data + used);
		if (f.type == SPDY_SYN_STREAM || f.type == SPDY_SYN_REPLY ||
		    f.type == SPDY_HEADERS) {
			struct spdy_headers h = {0};
			if (spdy_headers_decode(z, f.data, f.len, &h, &err) < 0) {
				husk_error_clear(&err);
				return; /* the inflater is out of step: the session ends */
			}
			use_headers(&h);
			spdy_headers_clear(&h);
		}
		data += used;
		size -= used;
	}
}

static void raw_block(const uint8_t *data, size_t size)
{
	size_t dlen;
	const uint8_t *dict = spdy_dictionary(&dlen);
	z_stream s = {0};
	FUZZ_CHECK(deflateInit(&s, Z_DEFAULT_COMPRESSION) == Z_OK);
	FUZZ_CHECK(deflateSetDictionary(&s, dict, (uInt)dlen) == Z_OK);
	size_t cap = deflateBound(&s, size) + 64;
	uint8_t *block = xmalloc(cap);
	s.next_in = (Bytef *)data;
	s.avail_in = (uInt)size;
	s.next_out = block;
	s.avail_out = (uInt)cap;
	FUZZ_CHECK(deflate(&s, Z_SYNC_FLUSH) == Z_OK && s.avail_in == 0);
	size_t blen = cap - s.avail_out;
	deflateEnd(&s);

	struct spdy_zlib *z = spdy_zlib_new();
	struct spdy_headers h = {0};
	struct husk_error err = HUSK_ERROR_INIT;
	if (spdy_headers_decode(z, block, blen, &h, &err) == 0) {
		use_headers(&h);
		spdy_headers_clear(&h);
	} else {
		FUZZ_CHECK(err.msg && (err.code == EINVAL || err.code == EMSGSIZE));
		husk_error_clear(&err);
	}
	spdy_zlib_free(z);
	free(block);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t mode = fuzz_byte(&data, &size);
	if (mode & 1)
		raw_block(data, size);
	else
		frames(data, size);
	return 0;
}
