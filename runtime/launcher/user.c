/* User and group resolution inside a container's root file system. */
#include "runtime/launcher/user.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>

#include "common/fs.h"

#define DB_MAX (4U << 20)

/* Read rootfs/path with every component resolved inside rootfs. A missing
 * file is an empty one. */
static int read_in_root(const char *rootfs, const char *path, char **ret, struct husk_error *err)
{
	_cleanup_close_ int root = open(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return husk_error_errno(err, errno, "open rootfs '%s'", rootfs);
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS};
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, root, path, &how, sizeof(how));
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			*ret = xstrdup("");
			return 0;
		}
		return husk_error_errno(err, errno, "open '%s' in the container", path);
	}
	_cleanup_free_ char *proc = xasprintf("/proc/self/fd/%d", fd);
	return fs_read_file(proc, DB_MAX, ret, NULL, err);
}

static bool parse_id(const char *s, long long *ret)
{
	if (isempty(s))
		return false;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || v < 0 || v > UINT32_MAX - 1)
		return false;
	*ret = v;
	return true;
}

/* Find a line of a colon-separated database by name (field 0) or by id
 * (field 2). Fields are copied into f (up to n). */
static bool db_find(char *db, const char *name, long long id, char **f, size_t n)
{
	for (char *save = NULL, *line = strtok_r(db, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (*line == '#' || *line == '\0')
			continue;
		char *copy = line;
		size_t i = 0;
		for (char *p = copy; i < n; i++) {
			f[i] = p;
			char *c = strchr(p, ':');
			if (!c) {
				i++;
				break;
			}
			*c = '\0';
			p = c + 1;
		}
		for (; i < n; i++)
			f[i] = (char *)"";
		long long fid;
		if ((name && streq(f[0], name)) || (!name && parse_id(f[2], &fid) && fid == id))
			return true;
	}
	return false;
}

static void add_group(struct lc_user *u, uint32_t g)
{
	for (size_t i = 0; i < u->n_groups; i++)
		if (u->groups[i] == g)
			return;
	u->groups = xrealloc(u->groups, (u->n_groups + 1) * sizeof(*u->groups));
	u->groups[u->n_groups++] = g;
}

void lc_user_clear(struct lc_user *u)
{
	free(u->groups);
	free(u->home);
	*u = (struct lc_user){0};
}

int lc_user_resolve(const char *rootfs, const struct lc_user_request *req, struct lc_user *ret,
		    struct husk_error *err)
{
	_cleanup_free_ char *passwd = NULL, *group = NULL;
	if (read_in_root(rootfs, "/etc/passwd", &passwd, err) < 0 ||
	    read_in_root(rootfs, "/etc/group", &group, err) < 0)
		return -err->code;

	_cleanup_free_ char *user_part = NULL, *group_part = NULL;
	if (req->has_uid) {
		user_part = xasprintf("%lld", req->uid);
	} else if (!isempty(req->username)) {
		user_part = xstrdup(req->username);
	} else if (!isempty(req->image_user)) {
		user_part = xstrdup(req->image_user);
		char *colon = strchr(user_part, ':');
		if (colon) {
			*colon = '\0';
			group_part = xstrdup(colon + 1);
		}
	} else {
		user_part = xstrdup("0");
	}
	if (req->has_gid) {
		free(group_part);
		group_part = xasprintf("%lld", req->gid);
	}

	struct lc_user u = {0};
	long long id;
	char *f[7];
	_cleanup_free_ char *pw = xstrdup(passwd);
	bool numeric = parse_id(user_part, &id);
	bool found = db_find(pw, numeric ? NULL : user_part, numeric ? id : -1, f, 7);
	if (!found && !numeric)
		return husk_error_set(err, EINVAL,
				      "user '%s' is not in the container's /etc/passwd", user_part);
	long long gid = 0;
	if (found) {
		if (!parse_id(f[2], &id) || !parse_id(f[3], &gid))
			return husk_error_set(
			    err, EINVAL, "user '%s': malformed line in the container's /etc/passwd",
			    user_part);
		u.home = xstrdup(isempty(f[5]) ? "/" : f[5]);
	} else {
		u.home = xstrdup("/");
	}
	u.uid = (uint32_t)id;
	const char *uname = found ? f[0] : NULL;
	_cleanup_free_ char *uname_copy = uname ? xstrdup(uname) : NULL;

	if (!isempty(group_part)) {
		long long g;
		if (parse_id(group_part, &g)) {
			gid = g;
		} else {
			_cleanup_free_ char *gr = xstrdup(group);
			if (!db_find(gr, group_part, -1, f, 4) || !parse_id(f[2], &g)) {
				lc_user_clear(&u);
				return husk_error_set(
				    err, EINVAL, "group '%s' is not in the container's /etc/group",
				    group_part);
			}
			gid = g;
		}
	}
	u.gid = (uint32_t)gid;
	/* The primary group is listed too, as containerd and CRI-O list it
	 * (the kubelet's ContainerUser and `id -G` show it first). */
	add_group(&u, u.gid);

	/* The user's groups from /etc/group, as login(1) would give them. */
	if (uname_copy && !req->groups_strict) {
		_cleanup_free_ char *gr = xstrdup(group);
		for (char *save = NULL, *line = strtok_r(gr, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save)) {
			char *fields[4] = {0};
			char *p = line;
			size_t i = 0;
			for (; i < 4 && p; i++) {
				fields[i] = p;
				p = strchr(p, ':');
				if (p)
					*p++ = '\0';
			}
			long long g;
			if (i < 4 || !parse_id(fields[2], &g))
				continue;
			for (char *s2 = NULL, *m = strtok_r(fields[3], ",", &s2); m;
			     m = strtok_r(NULL, ",", &s2))
				if (streq(m, uname_copy))
					add_group(&u, (uint32_t)g);
		}
	}
	for (size_t i = 0; i < req->n_supplemental_groups; i++) {
		long long g = req->supplemental_groups[i];
		if (g < 0 || g > UINT32_MAX - 1) {
			lc_user_clear(&u);
			return husk_error_set(err, EINVAL,
					      "supplemental group %lld is out of range", g);
		}
		add_group(&u, (uint32_t)g);
	}
	if (u.n_groups > LC_USER_MAX_GROUPS) {
		size_t n = u.n_groups;
		lc_user_clear(&u);
		return husk_error_set(err, EINVAL, "%zu groups, more than the %d allowed", n,
				      LC_USER_MAX_GROUPS);
	}
	*ret = u;
	return 0;
}
