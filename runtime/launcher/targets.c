/* Mount targets made by stage 1 before it joins the container's cgroups.
 *
 * Stage 2 creates what its mounts need in the rootfs: /etc/hostname, a
 * volume's directory, the working directory. When the directory that gets
 * the new entry exists only in an image layer, overlayfs first copies it
 * up, and the upper file system's new directory block enters the page
 * cache charged to the memory cgroup of the process that made it. Made
 * from the container's cgroup, that page outlives the container: the
 * removed memory cgroup, and the pod's above it, stay in the kernel as
 * dying cgroups until the page is reclaimed. Each keeps its per-cgroup
 * shrinker and LRU state, which every later cgroup and mount pays for
 * (about 400 KiB of unreclaimable kernel memory each, measured here).
 * Stage 1 runs in the shim's cgroup; what it makes there stage 2 finds.
 * The shim does the same before it runs an OCI runtime, whose init sets
 * up the rootfs from the container's cgroup too.
 *
 * Best effort, and the same result as stage 2's: the same names, modes
 * and owner. Nothing is done for a container with a user namespace, whose
 * stage 2 creates as the namespace's root. Only targets that stage 2 would
 * create on the rootfs itself are made: never under /proc, /sys, /dev or
 * an earlier mount of the container, and no symlink is followed (it may
 * lead into one of those mounts, which do not exist yet). */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/launcher/internal.h"

/* dir: "/" or a folded absolute path; path under dir or dir itself. */
static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);
	if (streq(dir, "/"))
		return true;
	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static bool has_dotdot(const char *path)
{
	for (const char *p = path; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += len;
		while (*p == '/')
			p++;
	}
	return false;
}

/* Create folded (absolute, no "." or "..") below rootfd with stage 2's
 * walk: missing directories 0755, the target a directory 0755 or an empty
 * file 0644. Stops quietly at a symlink, a non-directory, another file
 * system or any error. */
static void make_target(int rootfd, const char *folded, bool dir)
{
	struct husk_error e = HUSK_ERROR_INIT;
	_cleanup_close_ int fd = -1;
	lc_walk_in_root(rootfd, folded, dir ? CTR_CREATE_DIR : CTR_CREATE_FILE,
			LC_WALK_NOFOLLOW | LC_WALK_SAME_DEV, &fd, &e);
	husk_error_clear(&e);
}

/* Make dest unless it is one stage 2 would not create on the rootfs:
 * under the kernel's and the runtime's own trees or under one of the
 * n earlier mount destinations of s. */
static void make_one(int rootfd, const struct ctr_spec *s, size_t n, const char *dest, bool dir)
{
	static const char *const owned[] = {"/proc", "/sys", "/dev"};
	if (!dest || dest[0] != '/' || has_dotdot(dest))
		return;
	_cleanup_free_ char *f = ctr_path_fold(dest);
	if (streq(f, "/"))
		return;
	for (size_t i = 0; i < ARRAY_SIZE(owned); i++)
		if (under(f, owned[i]))
			return;
	for (size_t i = 0; i < n; i++) {
		const char *m = s->mounts[i].destination;
		if (!m || has_dotdot(m))
			return;
		_cleanup_free_ char *mf = ctr_path_fold(m);
		if (under(f, mf))
			return;
	}
	make_target(rootfd, f, dir);
}

void lc_make_targets_at(int rootfd, const struct ctr_spec *s, const char *cwd)
{
	if (s->ns[CTR_NS_USER].mode != CTR_NS_HOST)
		return;
	mode_t old_umask = umask(0);
	const char *files[][2] = {{s->hostname_path, "/etc/hostname"},
				  {s->hosts_path, "/etc/hosts"},
				  {s->resolv_path, "/etc/resolv.conf"}};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i][0])
			make_one(rootfd, s, 0, files[i][1], false);
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		bool dir = true;
		if (m->bind) {
			struct stat st;
			if (!m->source || stat(m->source, &st) < 0)
				continue;
			dir = S_ISDIR(st.st_mode);
		}
		make_one(rootfd, s, i, m->destination, dir);
	}
	if (cwd)
		make_one(rootfd, s, s->n_mounts, cwd, true);
	umask(old_umask);
}

void ctr_make_targets(const struct ctr_spec *s, const char *cwd)
{
	if (s->ns[CTR_NS_USER].mode != CTR_NS_HOST || !s->rootfs)
		return;
	_cleanup_close_ int rootfd = open(s->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd >= 0)
		lc_make_targets_at(rootfd, s, cwd);
}
