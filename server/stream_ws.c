/* WebSocket framing (RFC 6455) for the streaming server: frame parsing
 * with unmasking, frame writing, the handshake's accept key, and base64
 * for the base64.channel.k8s.io protocols. */
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "server/stream_proto.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int ws_frame_parse(uint8_t *buf, size_t len, bool require_mask, struct ws_frame *f,
		   size_t *ret_used, struct husk_error *err)
{
	if (len < 2)
		return 0;
	bool fin = buf[0] & 0x80;
	uint8_t opcode = buf[0] & 0x0f;
	bool masked = buf[1] & 0x80;
	uint64_t plen = buf[1] & 0x7f;
	size_t off = 2;
	if (buf[0] & 0x70)
		return husk_error_set(err, EINVAL, "websocket: reserved bits set");
	if (plen == 126) {
		if (len < 4)
			return 0;
		plen = (uint64_t)buf[2] << 8 | buf[3];
		off = 4;
	} else if (plen == 127) {
		if (len < 10)
			return 0;
		plen = 0;
		for (int i = 0; i < 8; i++)
			plen = plen << 8 | buf[2 + i];
		off = 10;
	}
	if (plen > WS_MAX_MESSAGE)
		return husk_error_set(err, EMSGSIZE, "websocket: frame of %llu bytes is too large",
				      (unsigned long long)plen);
	if (require_mask && !masked)
		return husk_error_set(err, EINVAL, "websocket: client frame is not masked");
	if (opcode >= 0x8 && (!fin || plen > 125))
		return husk_error_set(err, EINVAL, "websocket: bad control frame");
	uint8_t mask[4] = {0};
	if (masked) {
		if (len < off + 4)
			return 0;
		memcpy(mask, buf + off, 4);
		off += 4;
	}
	if (len < off + plen)
		return 0;
	uint8_t *d = buf + off;
	if (masked)
		for (size_t i = 0; i < plen; i++)
			d[i] ^= mask[i & 3];
	*f = (struct ws_frame){.fin = fin, .opcode = opcode, .data = d, .len = (size_t)plen};
	*ret_used = off + (size_t)plen;
	return 1;
}

void ws_put_frame(struct srv_buf *out, uint8_t opcode, const void *data, size_t len,
		  const uint8_t *mask)
{
	srv_buf_add_u8(out, 0x80 | (opcode & 0x0f));
	uint8_t m = mask ? 0x80 : 0;
	if (len < 126) {
		srv_buf_add_u8(out, m | (uint8_t)len);
	} else if (len <= 0xffff) {
		srv_buf_add_u8(out, m | 126);
		srv_buf_add_be16(out, (uint16_t)len);
	} else {
		srv_buf_add_u8(out, m | 127);
		srv_buf_add_be32(out, (uint32_t)((uint64_t)len >> 32));
		srv_buf_add_be32(out, (uint32_t)len);
	}
	if (!mask) {
		srv_buf_add(out, data, len);
		return;
	}
	srv_buf_add(out, mask, 4);
	size_t at = out->len;
	srv_buf_add(out, data, len);
	for (size_t i = 0; i < len; i++)
		out->data[at + i] ^= mask[i & 3];
}

char *srv_base64_encode(const void *data, size_t len, size_t *ret_len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	int n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	if (ret_len)
		*ret_len = (size_t)n;
	return out;
}

int srv_base64_decode(const char *text, size_t len, uint8_t **ret, size_t *ret_len)
{
	if (len % 4)
		return -EINVAL;
	uint8_t *out = xmalloc(len / 4 * 3 + 1);
	int n = len ? EVP_DecodeBlock(out, (const unsigned char *)text, (int)len) : 0;
	if (n < 0) {
		free(out);
		return -EINVAL;
	}
	/* EVP_DecodeBlock counts the padding as data. */
	if (len && text[len - 1] == '=')
		n--;
	if (len > 1 && text[len - 2] == '=')
		n--;
	*ret = out;
	*ret_len = (size_t)n;
	return 0;
}

char *ws_accept_key(const char *key)
{
	_cleanup_free_ char *cat = xasprintf("%s%s", key, WS_GUID);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(cat, strlen(cat), md, &n, EVP_sha1(), NULL);
	return srv_base64_encode(md, n, NULL);
}
