/* Compiled seccomp filters: the filter file huskd writes at create time,
 * reading it back, and installing it. Nothing here uses libseccomp, so
 * husk-shim, which only installs filters, does not link it. */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fs.h"
#include "runtime/launcher/seccomp.h"

#define FILTER_MAGIC "HUSKBPF1"

struct filter_header {
	char magic[8];
	uint32_t flags;
	uint32_t len; /* instructions */
};

void lc_seccomp_bpf_free(struct lc_seccomp_bpf *b)
{
	if (!b)
		return;
	free(b->insns);
	free(b);
}

int lc_seccomp_install(const struct lc_seccomp_bpf *b)
{
	struct sock_fprog prog = {.len = b->len, .filter = b->insns};
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, b->flags, &prog) < 0)
		return -errno;
	return 0;
}

int lc_seccomp_bpf_write(const struct lc_seccomp_bpf *b, const char *path, struct husk_error *err)
{
	size_t n = b->len * sizeof(struct sock_filter);
	struct filter_header h = {.flags = b->flags, .len = b->len};
	memcpy(h.magic, FILTER_MAGIC, sizeof(h.magic));
	_cleanup_free_ char *buf = xmalloc(sizeof(h) + n);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), b->insns, n);
	return fs_write_replace(path, buf, sizeof(h) + n, 0600, err);
}

int lc_seccomp_bpf_read(const char *path, struct lc_seccomp_bpf **ret, struct husk_error *err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len;
	size_t max = sizeof(struct filter_header) + BPF_MAXINSNS * sizeof(struct sock_filter);
	int r = fs_read_file(path, max, &buf, &len, err);
	if (r < 0)
		return husk_error_prefix(err, "seccomp filter");
	struct filter_header h;
	if (len < sizeof(h))
		return husk_error_set(err, EINVAL, "seccomp filter '%s': truncated", path);
	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, FILTER_MAGIC, sizeof(h.magic)) != 0 || h.len == 0 ||
	    h.len > BPF_MAXINSNS || len != sizeof(h) + h.len * sizeof(struct sock_filter))
		return husk_error_set(err, EINVAL, "seccomp filter '%s': not a husk filter file",
				      path);
	struct lc_seccomp_bpf *b = xnew(struct lc_seccomp_bpf, 1);
	b->len = (unsigned short)h.len;
	b->flags = h.flags;
	b->insns = xmalloc(h.len * sizeof(struct sock_filter));
	memcpy(b->insns, buf + sizeof(h), h.len * sizeof(struct sock_filter));
	*ret = b;
	return 0;
}

static const char *const mode_names[] = {
    [LC_SECCOMP_UNCONFINED] = "unconfined",
    [LC_SECCOMP_RUNTIME_DEFAULT] = "runtime_default",
    [LC_SECCOMP_LOCALHOST] = "localhost",
};

int lc_seccomp_mode_parse(const char *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(mode_names); i++)
		if (streq(s, mode_names[i]))
			return (int)i;
	return -1;
}

const char *lc_seccomp_mode_name(int mode)
{
	if (mode < 0 || (size_t)mode >= ARRAY_SIZE(mode_names))
		return NULL;
	return mode_names[mode];
}
