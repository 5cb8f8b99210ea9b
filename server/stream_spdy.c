/* SPDY/3.1 framing for the streaming server: frame parsing and writing,
 * and header blocks compressed with zlib primed with the SPDY/3
 * dictionary (one deflate and one inflate stream per connection). */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "server/stream_proto.h"

/* ---- byte buffer ---- */

static void buf_reserve(struct srv_buf *b, size_t extra)
{
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra)
		cap *= 2;
	b->data = xrealloc(b->data, cap);
	b->cap = cap;
}

void srv_buf_add(struct srv_buf *b, const void *data, size_t len)
{
	if (!len)
		return;
	buf_reserve(b, len);
	memcpy(b->data + b->len, data, len);
	b->len += len;
}

void srv_buf_add_u8(struct srv_buf *b, uint8_t v)
{
	srv_buf_add(b, &v, 1);
}

void srv_buf_add_be16(struct srv_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
	srv_buf_add(b, x, 2);
}

void srv_buf_add_be32(struct srv_buf *b, uint32_t v)
{
	uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	srv_buf_add(b, x, 4);
}

void srv_buf_consume(struct srv_buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

void srv_buf_clear(struct srv_buf *b)
{
	free(b->data);
	*b = (struct srv_buf){0};
}

/* ---- the dictionary ---- */

/* SPDY/3 section 2.6.10.1: these names ('|' separates them here), each
 * preceded by its 32-bit length, then one run of status lines, dates and
 * common values. */
static const char dict_words[] =
    "options|head|post|put|delete|trace|accept|accept-charset|accept-encoding|"
    "accept-language|accept-ranges|age|allow|authorization|cache-control|connection|"
    "content-base|content-encoding|content-language|content-length|content-location|"
    "content-md5|content-range|content-type|date|etag|expect|expires|from|host|"
    "if-match|if-modified-since|if-none-match|if-range|if-unmodified-since|"
    "last-modified|location|max-forwards|pragma|proxy-authenticate|"
    "proxy-authorization|range|referer|retry-after|server|te|trailer|"
    "transfer-encoding|upgrade|user-agent|vary|via|warning|www-authenticate|method|"
    "get|status|200 OK|version|HTTP/1.1|url|public|set-cookie|keep-alive|origin";
static const char dict_tail[] =
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 "
    "Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 "
    "Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, "
    "Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/"
    "xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,"
    "sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";

static uint8_t dict[1423];
static size_t dict_len;
static pthread_once_t dict_once = PTHREAD_ONCE_INIT;

static void dict_build(void)
{
	size_t n = 0;
	for (const char *w = dict_words; *w;) {
		uint32_t l = (uint32_t)strcspn(w, "|");
		uint8_t be[4] = {(uint8_t)(l >> 24), (uint8_t)(l >> 16), (uint8_t)(l >> 8),
				 (uint8_t)l};
		memcpy(dict + n, be, 4);
		memcpy(dict + n + 4, w, l);
		n += 4 + l;
		w += l + (w[l] == '|');
	}
	memcpy(dict + n, dict_tail, sizeof(dict_tail) - 1);
	dict_len = n + sizeof(dict_tail) - 1;
}

const uint8_t *spdy_dictionary(size_t *ret_len)
{
	pthread_once(&dict_once, dict_build);
	*ret_len = dict_len;
	return dict;
}

/* ---- frames ---- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

int spdy_frame_parse(const uint8_t *buf, size_t len, struct spdy_frame *f, size_t *ret_used,
		     struct husk_error *err)
{
	if (len < 8)
		return 0;
	uint32_t flen = be24(buf + 5);
	if (flen > SPDY_MAX_FRAME)
		return husk_error_set(err, EMSGSIZE, "spdy: frame of %u bytes is too large", flen);
	if (len < 8 + (size_t)flen)
		return 0;
	const uint8_t *d = buf + 8;
	*f = (struct spdy_frame){.flags = buf[4]};
	*ret_used = 8 + flen;
	if (!(buf[0] & 0x80)) {
		f->type = SPDY_DATA;
		f->stream_id = be32(buf) & 0x7fffffff;
		f->data = d;
		f->len = flen;
		return 1;
	}
	unsigned version = ((unsigned)(buf[0] & 0x7f) << 8) | buf[1];
	if (version != SPDY_VERSION)
		return husk_error_set(err, EINVAL, "spdy: version %u is not 3", version);
	f->type = (enum spdy_type)(((unsigned)buf[2] << 8) | buf[3]);
	size_t need = 0;
	switch (f->type) {
	case SPDY_SYN_STREAM:
		need = 10;
		break;
	case SPDY_SYN_REPLY:
	case SPDY_HEADERS:
	case SPDY_PING:
		need = 4;
		break;
	case SPDY_RST_STREAM:
	case SPDY_GOAWAY:
	case SPDY_WINDOW_UPDATE:
		need = 8;
		break;
	default:
		f->data = d;
		f->len = flen;
		return 1;
	}
	if (flen < need)
		return husk_error_set(err, EINVAL,
				      "spdy: control frame %d of %u bytes is too short",
				      (int)f->type, flen);
	switch (f->type) {
	case SPDY_SYN_STREAM:
		f->stream_id = be32(d) & 0x7fffffff;
		f->assoc_id = be32(d + 4) & 0x7fffffff;
		f->priority = d[8] >> 5;
		f->data = d + 10;
		f->len = flen - 10;
		break;
	case SPDY_SYN_REPLY:
	case SPDY_HEADERS:
		f->stream_id = be32(d) & 0x7fffffff;
		f->data = d + 4;
		f->len = flen - 4;
		break;
	case SPDY_PING:
		f->value = be32(d);
		break;
	case SPDY_RST_STREAM:
	case SPDY_WINDOW_UPDATE:
		f->stream_id = be32(d) & 0x7fffffff;
		f->value = be32(d + 4) & (f->type == SPDY_WINDOW_UPDATE ? 0x7fffffff : 0xffffffff);
		break;
	case SPDY_GOAWAY:
		f->value = be32(d) & 0x7fffffff;
		f->value2 = be32(d + 4);
		break;
	default:
		break;
	}
	return 1;
}

static void put_control_header(struct srv_buf *out, enum spdy_type type, uint8_t flags,
			       uint32_t len)
{
	srv_buf_add_be16(out, 0x8000 | SPDY_VERSION);
	srv_buf_add_be16(out, (uint16_t)type);
	srv_buf_add_be32(out, (uint32_t)flags << 24 | (len & 0xffffff));
}

void spdy_put_data(struct srv_buf *out, uint32_t stream_id, uint8_t flags, const void *data,
		   size_t len)
{
	srv_buf_add_be32(out, stream_id & 0x7fffffff);
	srv_buf_add_be32(out, (uint32_t)flags << 24 | ((uint32_t)len & 0xffffff));
	srv_buf_add(out, data, len);
}

void spdy_put_rst_stream(struct srv_buf *out, uint32_t stream_id, uint32_t status)
{
	put_control_header(out, SPDY_RST_STREAM, 0, 8);
	srv_buf_add_be32(out, stream_id & 0x7fffffff);
	srv_buf_add_be32(out, status);
}

void spdy_put_ping(struct srv_buf *out, uint32_t id)
{
	put_control_header(out, SPDY_PING, 0, 4);
	srv_buf_add_be32(out, id);
}

void spdy_put_goaway(struct srv_buf *out, uint32_t last_good, uint32_t status)
{
	put_control_header(out, SPDY_GOAWAY, 0, 8);
	srv_buf_add_be32(out, last_good & 0x7fffffff);
	srv_buf_add_be32(out, status);
}

void spdy_put_window_update(struct srv_buf *out, uint32_t stream_id, uint32_t delta)
{
	put_control_header(out, SPDY_WINDOW_UPDATE, 0, 8);
	srv_buf_add_be32(out, stream_id & 0x7fffffff);
	srv_buf_add_be32(out, delta & 0x7fffffff);
}

/* ---- header blocks ---- */

struct spdy_zlib {
	z_stream def, inf;
	bool def_ok, inf_ok;
};

struct spdy_zlib *spdy_zlib_new(void)
{
	struct spdy_zlib *z = xnew(struct spdy_zlib, 1);
	size_t dlen;
	const uint8_t *d = spdy_dictionary(&dlen);
	if (deflateInit(&z->def, Z_DEFAULT_COMPRESSION) != Z_OK ||
	    deflateSetDictionary(&z->def, d, (uInt)dlen) != Z_OK)
		abort(); /* only out of memory fails here */
	z->def_ok = true;
	if (inflateInit(&z->inf) != Z_OK)
		abort();
	z->inf_ok = true;
	return z;
}

void spdy_zlib_free(struct spdy_zlib *z)
{
	if (!z)
		return;
	if (z->def_ok)
		deflateEnd(&z->def);
	if (z->inf_ok)
		inflateEnd(&z->inf);
	free(z);
}

void spdy_headers_clear(struct spdy_headers *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->name[i]);
		free(h->value[i]);
	}
	h->n = 0;
}

bool spdy_headers_add(struct spdy_headers *h, const char *name, const char *value)
{
	if (h->n >= SPDY_MAX_HEADERS)
		return false;
	h->name[h->n] = xstrdup(name);
	h->value[h->n] = xstrdup(value);
	h->n++;
	return true;
}

const char *spdy_headers_get(const struct spdy_headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->name[i], name) == 0)
			return h->value[i];
	return NULL;
}

int spdy_headers_decode(struct spdy_zlib *z, const uint8_t *block, size_t len,
			struct spdy_headers *ret, struct husk_error *err)
{
	_cleanup_free_ uint8_t *raw = xmalloc(SPDY_MAX_HEADER_BLOCK);
	z_stream *s = &z->inf;
	s->next_in = (Bytef *)block;
	s->avail_in = (uInt)len;
	s->next_out = raw;
	s->avail_out = SPDY_MAX_HEADER_BLOCK;
	while (s->avail_in > 0) {
		int r = inflate(s, Z_SYNC_FLUSH);
		if (r == Z_NEED_DICT) {
			size_t dlen;
			const uint8_t *d = spdy_dictionary(&dlen);
			if (inflateSetDictionary(s, d, (uInt)dlen) != Z_OK)
				return husk_error_set(
				    err, EINVAL, "spdy: header block needs another dictionary");
			continue;
		}
		if (r == Z_BUF_ERROR && s->avail_out == 0)
			return husk_error_set(err, EMSGSIZE,
					      "spdy: header block larger than %u bytes",
					      SPDY_MAX_HEADER_BLOCK);
		if (r != Z_OK && r != Z_BUF_ERROR)
			return husk_error_set(err, EINVAL, "spdy: corrupt header block (zlib %d)",
					      r);
		if (r == Z_BUF_ERROR)
			break;
	}
	size_t n = SPDY_MAX_HEADER_BLOCK - s->avail_out;
	if (n < 4)
		return husk_error_set(err, EINVAL, "spdy: header block of %zu bytes", n);
	uint32_t pairs = be32(raw);
	if (pairs > SPDY_MAX_HEADERS)
		return husk_error_set(err, EMSGSIZE, "spdy: %u headers (at most %d)", pairs,
				      SPDY_MAX_HEADERS);
	struct spdy_headers h = {0};
	size_t off = 4;
	for (uint32_t i = 0; i < pairs; i++) {
		char *field[2];
		for (int k = 0; k < 2; k++) {
			if (off + 4 > n || be32(raw + off) > n - off - 4) {
				if (k)
					free(field[0]);
				spdy_headers_clear(&h);
				return husk_error_set(err, EINVAL, "spdy: truncated header block");
			}
			uint32_t l = be32(raw + off);
			field[k] = xstrndup((const char *)raw + off + 4, l);
			/* A NUL inside joins several values: keep the first. */
			off += 4 + l;
		}
		h.name[h.n] = field[0];
		h.value[h.n] = field[1];
		h.n++;
	}
	*ret = h;
	return 0;
}

static void put_header_block(struct spdy_zlib *z, struct srv_buf *out, const struct spdy_headers *h)
{
	struct srv_buf raw = {0};
	srv_buf_add_be32(&raw, (uint32_t)h->n);
	for (size_t i = 0; i < h->n; i++) {
		size_t nl = strlen(h->name[i]), vl = strlen(h->value[i]);
		srv_buf_add_be32(&raw, (uint32_t)nl);
		for (size_t k = 0; k < nl; k++) {
			char c = h->name[i][k];
			srv_buf_add_u8(&raw, (uint8_t)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
		}
		srv_buf_add_be32(&raw, (uint32_t)vl);
		srv_buf_add(&raw, h->value[i], vl);
	}
	z_stream *s = &z->def;
	s->next_in = raw.data;
	s->avail_in = (uInt)raw.len;
	do {
		uint8_t chunk[1024];
		s->next_out = chunk;
		s->avail_out = sizeof(chunk);
		deflate(s, Z_SYNC_FLUSH);
		srv_buf_add(out, chunk, sizeof(chunk) - s->avail_out);
	} while (s->avail_out == 0);
	srv_buf_clear(&raw);
}

void spdy_put_syn_stream(struct spdy_zlib *z, struct srv_buf *out, uint32_t stream_id,
			 uint32_t assoc_id, uint8_t flags, const struct spdy_headers *h)
{
	struct srv_buf block = {0};
	put_header_block(z, &block, h);
	put_control_header(out, SPDY_SYN_STREAM, flags, (uint32_t)(10 + block.len));
	srv_buf_add_be32(out, stream_id & 0x7fffffff);
	srv_buf_add_be32(out, assoc_id & 0x7fffffff);
	srv_buf_add_be16(out, 0);
	srv_buf_add(out, block.data, block.len);
	srv_buf_clear(&block);
}

void spdy_put_syn_reply(struct spdy_zlib *z, struct srv_buf *out, uint32_t stream_id, uint8_t flags,
			const struct spdy_headers *h)
{
	struct srv_buf block = {0};
	put_header_block(z, &block, h);
	put_control_header(out, SPDY_SYN_REPLY, flags, (uint32_t)(4 + block.len));
	srv_buf_add_be32(out, stream_id & 0x7fffffff);
	srv_buf_add(out, block.data, block.len);
	srv_buf_clear(&block);
}
