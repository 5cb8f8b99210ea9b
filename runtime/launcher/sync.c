/* The sync messages between a launch's caller and its children (struct
 * lc_msg over a SOCK_SEQPACKET socket, an fd passed with SCM_RIGHTS), and
 * a child's last report of its failure. Below launch.c, exec.c and fs.c. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/launcher/internal.h"

int lc_send(int sock, int type, int code, pid_t pid, const char *text, int fd)
{
	struct lc_msg m = {.type = type, .code = code, .pid = pid};
	size_t tl = 0;
	if (text) {
		tl = strnlen(text, LC_MSG_TEXT - 1);
		memcpy(m.text, text, tl);
	}
	m.text[tl] = '\0';
	struct iovec iov = {&m, offsetof(struct lc_msg, text) + tl + 1};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	for (;;) {
		if (sendmsg(sock, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int lc_recv(int sock, struct lc_msg *m, int *ret_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = {m, sizeof(*m)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	*ret_fd = -1;
	memset(m, 0, sizeof(*m));
	ssize_t n;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			memcpy(ret_fd, CMSG_DATA(c), sizeof(int));
	m->text[LC_MSG_TEXT - 1] = '\0';
	return 1;
}

_noreturn_ void lc_fail(const struct lc *lc, const struct husk_error *err)
{
	lc_send(lc->sock, LC_MSG_ERROR, err->code ? err->code : EIO, 0, husk_error_msg(err), -1);
	_exit(127);
}
