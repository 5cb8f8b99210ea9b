/* The file and parsing helpers the cgroup files share: reading and
 * writing one cgroup file (with the limits the kernel refuses named),
 * numbers and keyed stats, hugepage pools, and CPU shares <-> weight. */
#include "runtime/cgroup/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"

/* ---- files ------------------------------------------------------------ */

int cg_read(const char *dir, const char *file, char **ret, struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
	size_t max = streq(file, "cgroup.procs") ? CG_PROCS_READ_MAX : CG_READ_MAX;
	return fs_read_file(path, max, ret, NULL, err);
}

static void rstrip(char *s)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

int cg_read_line(const char *dir, const char *file, char **ret, struct husk_error *err)
{
	char *buf = NULL;
	int r = cg_read(dir, file, &buf, err);
	if (r < 0)
		return r;
	rstrip(buf);
	*ret = buf;
	return 0;
}

bool cg_file_exists(const char *dir, const char *file)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
	return access(path, F_OK) == 0;
}

int cg_write(const struct cg_manager *m, const char *dir, const char *file, const char *value,
	     struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/%s", dir, file);
	int flags = O_WRONLY | O_CLOEXEC;
	if (m->emulated)
		flags |= O_CREAT | O_TRUNC;
	_cleanup_close_ int fd = open(path, flags, 0644);
	if (fd < 0)
		return husk_error_errno(err, errno, "write '%s' value '%s'", path, value);
	size_t len = strlen(value);
	/* cgroupfs takes one value per write(2): never split it. */
	ssize_t n;
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return husk_error_errno(err, errno, "write '%s' value '%s'", path, value);
	if ((size_t)n != len)
		return husk_error_set(err, EIO, "write '%s' value '%s': short write", path, value);
	return 0;
}

int cg_write_limit(const struct cg_manager *m, const char *dir, const char *file, const char *value,
		   struct husk_error *err)
{
	int r = cg_write(m, dir, file, value, err);
	if (r == 0)
		return 0;
	switch (-r) {
	case EINVAL:
	case ERANGE:
	case EBUSY:
	case ENOSPC:
	case EOPNOTSUPP:
	case EDOM:
	case ENOENT:
	case EOVERFLOW:
		if (err)
			err->code = EINVAL;
		return -EINVAL;
	default:
		return r;
	}
}

/* ---- parsing ---------------------------------------------------------- */

int cg_parse_u64(const char *s, uint64_t *ret)
{
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cg_parse_keyed(const char *buf, const char *key, uint64_t *ret)
{
	size_t klen = strlen(key);
	for (const char *line = buf; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		if (len > klen && strncmp(line, key, klen) == 0 && line[klen] == ' ') {
			char num[32];
			size_t vlen = len - klen - 1;
			if (vlen == 0 || vlen >= sizeof(num))
				return -EINVAL;
			memcpy(num, line + klen + 1, vlen);
			num[vlen] = '\0';
			return cg_parse_u64(num, ret);
		}
		line = nl ? nl + 1 : NULL;
	}
	return -ENOENT;
}

int cg_read_num(const char *dir, const char *file, bool allow_max, int64_t *ret,
		struct husk_error *err)
{
	_cleanup_free_ char *s = NULL;
	int r = cg_read_line(dir, file, &s, err);
	if (r < 0)
		return r;
	if (allow_max && (streq(s, "max") || streq(s, "-1"))) {
		*ret = CG_MAX;
		return 0;
	}
	uint64_t v;
	if (cg_parse_u64(s, &v) < 0 || v > INT64_MAX)
		return husk_error_set(err, EIO, "read '%s/%s': bad number '%.32s'", dir, file, s);
	*ret = (int64_t)v;
	return 0;
}

int cg_stat_value(const char *dir, const char *file, const char *key, uint64_t *ret,
		  struct husk_error *err)
{
	if (!dir)
		return 0;
	_cleanup_free_ char *buf = NULL;
	_cleanup_error_ struct husk_error rerr = HUSK_ERROR_INIT;
	int r = cg_read(dir, file, &buf, &rerr);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return husk_error_move(err, &rerr);
	r = key ? cg_parse_keyed(buf, key, ret) : cg_parse_u64(buf, ret);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return husk_error_set(err, EIO, "read '%s/%s': bad value%s%s", dir, file,
				      key ? " for " : "", key ? key : "");
	return 1;
}

int cg_get_num(const char *dir, const char *file, bool allow_max, int64_t *field,
	       struct husk_error *err)
{
	if (!dir || !cg_file_exists(dir, file))
		return 0;
	int64_t v;
	int r = cg_read_num(dir, file, allow_max, &v, err);
	if (r < 0)
		return r;
	*field = v;
	return 0;
}

int cg_get_str(const char *dir, const char *file, char **field, struct husk_error *err)
{
	if (!dir || !cg_file_exists(dir, file))
		return 0;
	char *s = NULL;
	int r = cg_read_line(dir, file, &s, err);
	if (r < 0)
		return r;
	free(*field);
	*field = NULL;
	if (*s)
		*field = s;
	else
		free(s);
	return 0;
}

int cg_hugepage_sizes(const char *dir, const char *suffix, char ***ret, struct husk_error *err)
{
	_cleanup_strv_ char **names = NULL;
	int r = fs_list_dir(dir, suffix, &names, err);
	if (r < 0)
		return r;
	char **sizes = xnew(char *, 1);
	for (char **n = names; *n; n++) {
		if (!startswith(*n, "hugetlb."))
			continue;
		const char *sz = *n + strlen("hugetlb.");
		size_t len = strlen(sz) - strlen(suffix);
		_cleanup_free_ char *size = xstrndup(sz, len);
		/* "hugetlb.2MB.rsvd.max" gives "2MB.rsvd": not a size. */
		if (cg_hugepage_size_valid(size))
			sizes = strv_append(sizes, size);
	}
	*ret = sizes;
	return 0;
}

bool cg_hugepage_size_valid(const char *s)
{
	if (isempty(s) || strlen(s) > 16)
		return false;
	size_t digits = strspn(s, "0123456789");
	if (digits == 0 || s[0] == '0')
		return false;
	const char *u = s + digits;
	return streq(u, "KB") || streq(u, "MB") || streq(u, "GB") || streq(u, "TB");
}

/* "2MB" -> 2048 (kB); 0 when it overflows. */
static uint64_t hugepage_kb(const char *size)
{
	uint64_t n = strtoull(size, NULL, 10);
	const char *u = size + strspn(size, "0123456789");
	unsigned shift = streq(u, "KB") ? 0 : streq(u, "MB") ? 10 : streq(u, "GB") ? 20 : 30;
	return n > (UINT64_MAX >> shift) ? 0 : n << shift;
}

/* Pages of the pool that can ever be had: nr_hugepages plus the overcommit
 * allowance. A missing pool has none. */
static int hugepage_pool(const char *pools, const char *size, uint64_t *ret, struct husk_error *err)
{
	_cleanup_free_ char *dir =
	    xasprintf("%s/hugepages-%" PRIu64 "kB", pools, hugepage_kb(size));
	*ret = 0;
	static const char *const files[] = {"nr_hugepages", "nr_overcommit_hugepages"};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		uint64_t v = 0;
		int r = cg_stat_value(dir, files[i], NULL, &v, err);
		if (r < 0)
			return r;
		*ret += v;
	}
	return 0;
}

int cg_hugepages_without_controller(const struct cg_manager *m, const struct cg_resources *r,
				    struct husk_error *err)
{
	for (size_t i = 0; i < r->n_hugepages; i++) {
		const struct cg_hugepage *h = &r->hugepages[i];
		uint64_t pool = 0;
		if (h->limit == 0) {
			int rc = hugepage_pool(m->hugepages_dir, h->page_size, &pool, err);
			if (rc < 0)
				return rc;
			if (pool == 0)
				continue;
		}
		_cleanup_free_ char *lim =
		    h->limit == CG_MAX ? xstrdup("max") : xasprintf("%" PRId64, h->limit);
		return husk_error_set(err, EINVAL,
				      "hugepage limit %s=%s: the hugetlb controller is not "
				      "available%s",
				      h->page_size, lim,
				      h->limit == 0 ? " and the host has pages of that size" : "");
	}
	return 0;
}

uint64_t cg_shares_to_weight(uint64_t shares)
{
	if (shares < 2)
		shares = 2;
	if (shares > 262144)
		shares = 262144;
	return 1 + ((shares - 2) * 9999) / 262142;
}

uint64_t cg_weight_to_shares(uint64_t weight)
{
	if (weight < 1)
		weight = 1;
	if (weight > 10000)
		weight = 10000;
	return 2 + ((weight - 1) * 262142) / 9999;
}
