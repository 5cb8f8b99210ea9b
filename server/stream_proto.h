/* Wire codecs of the streaming server, pure logic without sockets or grpc
 * so the unit tests and fuzzers can drive them: a growable byte buffer,
 * the HTTP/1.1 request head, SPDY/3.1 framing with zlib header compression
 * (the SPDY/3 dictionary), RFC 6455 WebSocket framing and handshake, and
 * the token store of stream URLs. */
#ifndef HUSK_SERVER_STREAM_PROTO_H
#define HUSK_SERVER_STREAM_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* ---- byte buffer ---- */

struct srv_buf {
	uint8_t *data;
	size_t len, cap;
};
void srv_buf_add(struct srv_buf *b, const void *data, size_t len);
void srv_buf_add_u8(struct srv_buf *b, uint8_t v);
void srv_buf_add_be16(struct srv_buf *b, uint16_t v);
void srv_buf_add_be32(struct srv_buf *b, uint32_t v);
/* Drop the first n bytes. */
void srv_buf_consume(struct srv_buf *b, size_t n);
void srv_buf_clear(struct srv_buf *b); /* frees the memory */

/* ---- HTTP/1.1 request head ---- */

#define SRV_HTTP_MAX_HEADERS 64

/* The request line and headers of one request; names and values as sent
 * (values without leading blanks). */
struct srv_http_req {
	char *method, *path;
	size_t n;
	char *name[SRV_HTTP_MAX_HEADERS], *value[SRV_HTTP_MAX_HEADERS];
};
/* Parse head (NUL-terminated, the text before the blank line; modified in
 * place) into *h, which must be zeroed. -EINVAL for a malformed request
 * line or header, or more than SRV_HTTP_MAX_HEADERS headers; *h may then
 * hold part of the request: clear it either way. */
int srv_http_parse(char *head, struct srv_http_req *h);
void srv_http_req_clear(struct srv_http_req *h);
/* The value of the first header called name (case-insensitive), or NULL. */
const char *srv_http_get(const struct srv_http_req *h, const char *name);
/* Every value of every header called name, split at commas and trimmed,
 * empty ones dropped, in order (NULL-terminated; caller frees). */
char **srv_http_list(const struct srv_http_req *h, const char *name);
/* Whether token (case-insensitive) is among srv_http_list(h, name). */
bool srv_http_has_token(const struct srv_http_req *h, const char *name, const char *token);

/* ---- SPDY/3.1 ---- */

#define SPDY_VERSION 3
#define SPDY_FLAG_FIN 0x01
#define SPDY_FLAG_UNIDIRECTIONAL 0x02
/* Frames carry 24-bit lengths; we refuse anything larger than this. */
#define SPDY_MAX_FRAME (1u << 20)
/* Bound on a decompressed header block and on its number of pairs. */
#define SPDY_MAX_HEADER_BLOCK (64u << 10)
#define SPDY_MAX_HEADERS 64

enum spdy_type {
	SPDY_DATA = 0, /* not a control type: a data frame */
	SPDY_SYN_STREAM = 1,
	SPDY_SYN_REPLY = 2,
	SPDY_RST_STREAM = 3,
	SPDY_SETTINGS = 4,
	SPDY_PING = 6,
	SPDY_GOAWAY = 7,
	SPDY_HEADERS = 8,
	SPDY_WINDOW_UPDATE = 9,
};

/* RST_STREAM status codes used here. */
#define SPDY_RST_PROTOCOL_ERROR 1
#define SPDY_RST_REFUSED_STREAM 3
#define SPDY_RST_CANCEL 5

/* One parsed frame; data points into the caller's input. For SYN_STREAM,
 * SYN_REPLY and HEADERS, data/len is the compressed header block. */
struct spdy_frame {
	enum spdy_type type;
	uint8_t flags;
	uint32_t stream_id; /* data, SYN_*, RST, HEADERS, WINDOW_UPDATE */
	uint32_t assoc_id;  /* SYN_STREAM */
	uint8_t priority;   /* SYN_STREAM */
	uint32_t value;	    /* RST/GOAWAY status, PING id, WINDOW_UPDATE delta,
			       GOAWAY last good stream */
	uint32_t value2;    /* GOAWAY status */
	const uint8_t *data;
	size_t len;
};

/* Parse one frame from buf. Returns 1 with *f filled and *ret_used set,
 * 0 when more bytes are needed, or -EINVAL/-EMSGSIZE (err filled) for a
 * malformed or oversized frame or a version other than 3. Unknown control
 * types parse (type is then the raw number) so callers can skip them. */
int spdy_frame_parse(const uint8_t *buf, size_t len, struct spdy_frame *f, size_t *ret_used,
		     struct husk_error *err);

/* A header block: lowercase names, values (several values of one name
 * are joined with NUL bytes in SPDY; here they stay one value). */
struct spdy_headers {
	size_t n;
	char *name[SPDY_MAX_HEADERS];
	char *value[SPDY_MAX_HEADERS];
};
void spdy_headers_clear(struct spdy_headers *h);
/* Append a pair (copied). false when full. */
bool spdy_headers_add(struct spdy_headers *h, const char *name, const char *value);
/* The value of name (case-insensitive), or NULL. */
const char *spdy_headers_get(const struct spdy_headers *h, const char *name);

/* The two zlib streams of one connection: one compresses what we send,
 * one decompresses what we receive, each across every header block of the
 * connection, primed with the SPDY/3 dictionary. */
struct spdy_zlib;
struct spdy_zlib *spdy_zlib_new(void);
void spdy_zlib_free(struct spdy_zlib *z);
static inline void spdy_zlib_freep(struct spdy_zlib **z)
{
	spdy_zlib_free(*z);
}
/* Decompress and parse a received header block. EINVAL for corrupt data
 * or a bad block, EMSGSIZE beyond the limits. The stream is unusable
 * after an error (the connection must end). */
int spdy_headers_decode(struct spdy_zlib *z, const uint8_t *block, size_t len,
			struct spdy_headers *ret, struct husk_error *err);

/* Frame writers: append one frame to out. */
void spdy_put_data(struct srv_buf *out, uint32_t stream_id, uint8_t flags, const void *data,
		   size_t len);
void spdy_put_syn_stream(struct spdy_zlib *z, struct srv_buf *out, uint32_t stream_id,
			 uint32_t assoc_id, uint8_t flags, const struct spdy_headers *h);
void spdy_put_syn_reply(struct spdy_zlib *z, struct srv_buf *out, uint32_t stream_id, uint8_t flags,
			const struct spdy_headers *h);
void spdy_put_rst_stream(struct srv_buf *out, uint32_t stream_id, uint32_t status);
void spdy_put_ping(struct srv_buf *out, uint32_t id);
void spdy_put_goaway(struct srv_buf *out, uint32_t last_good, uint32_t status);
void spdy_put_window_update(struct srv_buf *out, uint32_t stream_id, uint32_t delta);

/* The SPDY/3 header dictionary (1423 bytes), built once. */
const uint8_t *spdy_dictionary(size_t *ret_len);

/* ---- WebSocket (RFC 6455) ---- */

#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xa
/* Bound on one frame's payload and on a reassembled message. */
#define WS_MAX_MESSAGE (1u << 20)

/* One parsed frame, payload unmasked in place in the caller's buffer. */
struct ws_frame {
	bool fin;
	uint8_t opcode;
	uint8_t *data;
	size_t len;
};

/* Parse one frame from buf, unmasking it in place. require_mask: frames
 * from a client must be masked (EINVAL otherwise). Returns 1 with *f and
 * *ret_used, 0 when more bytes are needed, or -EINVAL/-EMSGSIZE. */
int ws_frame_parse(uint8_t *buf, size_t len, bool require_mask, struct ws_frame *f,
		   size_t *ret_used, struct husk_error *err);
/* Append one final frame; mask non-NULL masks it with those 4 bytes (a
 * client's frame; the server's are not masked). */
void ws_put_frame(struct srv_buf *out, uint8_t opcode, const void *data, size_t len,
		  const uint8_t *mask);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (caller frees). */
char *ws_accept_key(const char *key);

/* base64 (standard alphabet, padded) for the base64 channel protocols.
 * Decoding returns -EINVAL for bad input. Caller frees the results. */
char *srv_base64_encode(const void *data, size_t len, size_t *ret_len);
int srv_base64_decode(const char *text, size_t len, uint8_t **ret, size_t *ret_len);

/* ---- tokens ---- */

#define STREAM_TOKEN_LEN 8
#define STREAM_TOKEN_MAX 1000
#define STREAM_TOKEN_TTL_NS (60LL * 1000000000LL)

/* A store of single-use tokens, each with a payload the store owns and
 * frees with free_fn. Thread-safe. clock returns monotonic ns (NULL:
 * now_mono_ns), ttl_ns 0 the default minute. */
struct srv_tokens;
struct srv_tokens *srv_tokens_new(long long ttl_ns, long long (*clock)(void),
				  void (*free_fn)(void *));
void srv_tokens_free(struct srv_tokens *t);
/* Store payload under a new token of STREAM_TOKEN_LEN base64url
 * characters written to ret_token (STREAM_TOKEN_LEN + 1 bytes). Expired
 * tokens are dropped first; ENOSPC with STREAM_TOKEN_MAX outstanding (the
 * payload is then freed). */
int srv_tokens_issue(struct srv_tokens *t, void *payload, char *ret_token, struct husk_error *err);
/* Take the payload of a live token (the token is spent); NULL when the
 * token is unknown, spent or expired. The caller then owns the payload. */
void *srv_tokens_take(struct srv_tokens *t, const char *token);
size_t srv_tokens_count(struct srv_tokens *t);

#endif
