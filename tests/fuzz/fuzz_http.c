/* The HTTP/1.1 request head that opens every streaming connection, as the
 * handshake reads it: the text up to the first blank line (CRLF CRLF),
 * parsed by srv_http_parse, then the header lookups of the upgrade. */
#include "server/stream_proto.h"
#include "tests/fuzz/fuzz.h"

static void list(const struct srv_http_req *h, const char *name)
{
	_cleanup_strv_ char **v = srv_http_list(h, name);
	for (size_t i = 0; v[i]; i++) {
		size_t n = strlen(v[i]);
		FUZZ_CHECK(n > 0 && v[i][0] != ' ' && v[i][n - 1] != ' ' && !strchr(v[i], ','));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The handshake stops reading at the blank line and copies the
	 * head as a C string. */
	const uint8_t *end = size >= 4 ? memmem(data, size, "\r\n\r\n", 4) : NULL;
	size_t n = end ? (size_t)(end - data) : size;
	_cleanup_free_ char *head = xstrndup((const char *)data, n);
	struct srv_http_req h = {0};
	if (srv_http_parse(head, &h) == 0) {
		FUZZ_CHECK(h.method && h.path && h.n <= SRV_HTTP_MAX_HEADERS);
		(void)srv_http_has_token(&h, "Upgrade", "websocket");
		(void)srv_http_has_token(&h, "Connection", "Upgrade");
		list(&h, "X-Stream-Protocol-Version");
		list(&h, "Sec-WebSocket-Protocol");
		const char *key = srv_http_get(&h, "Sec-WebSocket-Key");
		if (key) {
			_cleanup_free_ char *accept = ws_accept_key(key);
			FUZZ_CHECK(strlen(accept) == 28);
		}
	}
	srv_http_req_clear(&h);
	return 0;
}
