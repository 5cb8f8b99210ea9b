/* The /metrics listener: one thread accepts on metrics_address and answers
 * each connection in turn (GET or HEAD /metrics; anything else 404/405/400)
 * within a fixed deadline, so a client that stalls holds nothing for long.
 * Connections are closed after one response. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "server/metrics.h"
#include "server/stream_proto.h"

#define HEAD_MAX 8192
#define CONN_DEADLINE_MS 5000

struct srv_metrics_http {
	struct srv_ctx *ctx;
	int listen_fd;
	int wake[2];
	pthread_t thread;
};

static int ms_left(long long deadline)
{
	long long left = (deadline - now_mono_ns()) / 1000000;
	return left > 0 ? (int)left : 0;
}

/* Read up to the blank line: 1 with the head in buf, 0 when the client
 * went away or ran out of time, -1 for a head that is too large or holds
 * a NUL byte. */
static int read_head(int fd, char *buf, size_t cap, long long deadline)
{
	size_t len = 0;
	while (len < cap - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		int left = ms_left(deadline);
		if (left == 0 || poll(&p, 1, left) <= 0)
			return 0;
		ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return 0;
		if (memchr(buf + len, '\0', (size_t)n))
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (end) {
			end[2] = '\0'; /* srv_http_parse takes the lines before the blank one */
			return 1;
		}
	}
	return -1;
}

static void write_all(int fd, const char *p, size_t len, long long deadline)
{
	while (len > 0) {
		struct pollfd pf = {fd, POLLOUT, 0};
		int left = ms_left(deadline);
		if (left == 0 || poll(&pf, 1, left) <= 0)
			return;
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void respond(int fd, const char *status, const char *type, const char *body, size_t body_len,
		    bool head_only, long long deadline)
{
	_cleanup_free_ char *hdr =
	    xasprintf("HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "Connection: close\r\n\r\n",
		      status, type, body_len);
	write_all(fd, hdr, strlen(hdr), deadline);
	if (!head_only)
		write_all(fd, body, body_len, deadline);
}

static void serve_conn(struct srv_metrics_http *h, int fd)
{
	long long deadline = now_mono_ns() + CONN_DEADLINE_MS * 1000000LL;
	char buf[HEAD_MAX];
	const char *plain = "text/plain; charset=utf-8";
	int r = read_head(fd, buf, sizeof(buf), deadline);
	if (r == 0)
		return;
	if (r < 0) {
		/* A second to take the answer, whatever the head took. */
		respond(fd, "400 Bad Request", plain, "bad request\n", 12, false,
			now_mono_ns() + 1000000000LL);
		return;
	}
	struct srv_http_req req = {0};
	if (srv_http_parse(buf, &req) < 0) {
		srv_http_req_clear(&req);
		respond(fd, "400 Bad Request", plain, "bad request\n", 12, false, deadline);
		return;
	}
	bool head = streq(req.method, "HEAD");
	size_t plen = strcspn(req.path, "?");
	if (!streq(req.method, "GET") && !head) {
		respond(fd, "405 Method Not Allowed", plain, "only GET and HEAD\n", 18, false,
			deadline);
	} else if (plen != strlen("/metrics") || strncmp(req.path, "/metrics", plen) != 0) {
		respond(fd, "404 Not Found", plain, "not found; try /metrics\n", 24, head,
			deadline);
	} else {
		struct mx_text t = {0};
		srv_metrics_render(h->ctx, &t);
		respond(fd, "200 OK", "text/plain; version=0.0.4; charset=utf-8",
			t.buf ? t.buf : "", t.len, head, deadline);
		mx_text_clear(&t);
	}
	srv_http_req_clear(&req);
}

static void *http_main(void *arg)
{
	struct srv_metrics_http *h = arg;
	for (;;) {
		struct pollfd p[2] = {{h->listen_fd, POLLIN, 0}, {h->wake[0], POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("metrics: poll: %s", strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		int fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("metrics: accept: %s", strerror(errno));
			if (errno == EMFILE || errno == ENFILE)
				poll(NULL, 0, 100); /* let fds free up rather than spin */
			continue;
		}
		serve_conn(h, fd);
		close(fd);
	}
	return NULL;
}

int srv_metrics_http_start(struct srv_ctx *ctx, struct husk_error *err)
{
	const char *addr = ctx->config->metrics_address;
	if (isempty(addr))
		return 0;
	struct sockaddr_storage ss;
	unsigned len;
	if (srv_host_port_parse(addr, &ss, &len, err) < 0)
		return husk_error_prefix(err, "metrics_address");
	_cleanup_close_ int fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
	if (fd < 0)
		return husk_error_errno(err, errno, "metrics_address '%s': socket", addr);
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		return husk_error_errno(err, errno, "metrics_address '%s': bind", addr);
	if (listen(fd, 16) < 0)
		return husk_error_errno(err, errno, "metrics_address '%s': listen", addr);
	struct srv_metrics_http *h = xnew(struct srv_metrics_http, 1);
	h->ctx = ctx;
	if (pipe2(h->wake, O_CLOEXEC) < 0) {
		int e = errno;
		free(h);
		return husk_error_errno(err, e, "metrics: pipe");
	}
	h->listen_fd = steal_fd(&fd);
	int r = pthread_create(&h->thread, NULL, http_main, h);
	if (r != 0) {
		close(h->listen_fd);
		close(h->wake[0]);
		close(h->wake[1]);
		free(h);
		return husk_error_errno(err, r, "metrics: start thread");
	}
	ctx->metrics_http = h;
	log_info("metrics: serving http://%s/metrics", addr);
	return 0;
}

void srv_metrics_http_stop(struct srv_ctx *ctx)
{
	struct srv_metrics_http *h = ctx->metrics_http;
	if (!h)
		return;
	ssize_t n = write(h->wake[1], "x", 1);
	(void)n;
	pthread_join(h->thread, NULL);
	close(h->listen_fd);
	close(h->wake[0]);
	close(h->wake[1]);
	free(h);
	ctx->metrics_http = NULL;
}
