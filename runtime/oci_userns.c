/* A pod's user namespace handed to an OCI runtime: the mappings read back
 * from the pinned namespace (the runtime wants them in config.json even
 * when it joins one), and the idmapped mounts husk-shim makes on the host
 * for every bind source, because runc 1.1 and crun 1.8 cannot make them. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/compat.h"
#include "common/fs.h"
#include "common/json.h"
#include "runtime/oci.h"

#define MAP_TEXT_MAX 4096

/* The forked child of a multi-threaded huskd: syscalls only. Inside the
 * namespace, /proc/self/uid_map reads as ids of its parent (the host). */
static _noreturn_ void read_maps_child(int userns, int out)
{
	if (setns(userns, CLONE_NEWUSER) < 0)
		_exit(1);
	static const char *const files[] = {"/proc/self/uid_map", "/proc/self/gid_map"};
	for (size_t i = 0; i < 2; i++) {
		char buf[MAP_TEXT_MAX];
		int fd = open(files[i], O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
		if (n <= 0)
			_exit(2);
		if (write(out, buf, (size_t)n) != n || write(out, "-\n", 2) != 2)
			_exit(3);
	}
	_exit(0);
}

static int parse_maps(char *text, struct ctr_idmap **ret, size_t *ret_n, struct husk_error *err)
{
	_cleanup_free_ struct ctr_idmap *m = xnew(struct ctr_idmap, CTR_SPEC_MAX_IDMAPS);
	size_t n = 0;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long c, h, s;
		if (sscanf(line, "%lu %lu %lu", &c, &h, &s) != 3 || n == CTR_SPEC_MAX_IDMAPS ||
		    c > UINT32_MAX || h > UINT32_MAX || s > UINT32_MAX)
			return husk_error_set(err, EIO, "user namespace map line '%s'", line);
		m[n++] = (struct ctr_idmap){(uint32_t)c, (uint32_t)h, (uint32_t)s};
	}
	if (n == 0)
		return husk_error_set(err, EIO, "user namespace without a map");
	*ret = steal_ptr(&m);
	*ret_n = n;
	return 0;
}

int ctr_oci_userns_maps(const char *userns_path, struct ctr_idmap **ret_uid, size_t *ret_n_uid,
			struct ctr_idmap **ret_gid, size_t *ret_n_gid, struct husk_error *err)
{
	_cleanup_close_ int ns = open(userns_path, O_RDONLY | O_CLOEXEC);
	if (ns < 0)
		return husk_error_errno(err, errno, "open user namespace '%s'", userns_path);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return husk_error_errno(err, errno, "pipe");
	pid_t pid = fork();
	if (pid == 0)
		read_maps_child(ns, p[1]);
	close(p[1]);
	_cleanup_close_ int in = p[0];
	if (pid < 0)
		return husk_error_errno(err, errno, "fork");
	char buf[2 * MAP_TEXT_MAX + 8];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(in, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1)
			break;
	}
	buf[len] = '\0';
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return husk_error_set(err, EIO, "read the maps of user namespace '%s'",
				      userns_path);
	char *sep = strstr(buf, "-\n");
	if (!sep)
		return husk_error_set(err, EIO, "read the maps of user namespace '%s'",
				      userns_path);
	*sep = '\0';
	_cleanup_free_ struct ctr_idmap *uid = NULL, *gid = NULL;
	size_t nu = 0, ng = 0;
	char *rest = sep + 2;
	char *sep2 = strstr(rest, "-\n");
	if (sep2)
		*sep2 = '\0';
	if (parse_maps(buf, &uid, &nu, err) < 0 || parse_maps(rest, &gid, &ng, err) < 0)
		return husk_error_prefix(err, "user namespace '%s'", userns_path);
	*ret_uid = steal_ptr(&uid);
	*ret_n_uid = nu;
	*ret_gid = steal_ptr(&gid);
	*ret_n_gid = ng;
	return 0;
}

/* ---- the idmapped bind sources ---- */

#define BUNDLE_DIR "bundle"
#define CONFIG_MAX (16u << 20)

/* An idmapped clone of src attached at dst (made as src's kind). rdonly:
 * read-only on the host already, so that the runtime's container mount
 * namespace (a copy made inside the pod's user namespace) has the flag
 * locked and its binds keep it: container root with CAP_SYS_ADMIN cannot
 * remount a read-only volume writable (and write as host root). */
static int idmap_mount(const char *src, bool recursive, bool rdonly, int userns, const char *dst,
		       struct husk_error *err)
{
	struct stat st;
	if (stat(src, &st) < 0)
		return husk_error_errno(err, errno, "idmapped mount of '%s'", src);
	if (S_ISDIR(st.st_mode) ? mkdir(dst, 0700) < 0 && errno != EEXIST
				: mknod(dst, S_IFREG | 0600, 0) < 0 && errno != EEXIST)
		return husk_error_errno(err, errno, "make '%s'", dst);
	unsigned rec = recursive ? AT_RECURSIVE : 0;
	_cleanup_close_ int fd =
	    open_tree(AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
	if (fd < 0)
		return husk_error_errno(err, errno, "clone mount of '%s'", src);
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP | (rdonly ? MOUNT_ATTR_RDONLY : 0),
			       .userns_fd = (uint64_t)userns};
	if (mount_setattr(fd, "", AT_EMPTY_PATH | rec, &a, sizeof(a)) < 0) {
		if (errno == EINVAL)
			return husk_error_set(err, EINVAL,
					      "idmapped mount of '%s': its file system (or one "
					      "mounted below it) does not support idmapped mounts",
					      src);
		return husk_error_errno(err, errno, "idmapped mount of '%s'", src);
	}
	if (move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return husk_error_errno(err, errno, "attach idmapped mount of '%s' at '%s'", src,
					dst);
	return 0;
}

static bool is_bind(yajl_val m)
{
	const char *type = json_get_string(m, "type");
	if (type && streq(type, "bind"))
		return true;
	yajl_val o = json_get(m, "options");
	for (size_t i = 0; YAJL_IS_ARRAY(o) && i < o->u.array.len; i++) {
		const char *v =
		    YAJL_IS_STRING(o->u.array.values[i]) ? o->u.array.values[i]->u.string : NULL;
		if (v && (streq(v, "bind") || streq(v, "rbind")))
			return true;
	}
	return false;
}

/* Each pair is taken once, in order: two volumes of one source (one
 * read-only, one not) have clones of their own. */
static void gen_mount(yajl_gen g, yajl_val m, const char *const *from, const char *const *to,
		      bool *used, size_t n)
{
	const char *src = json_get_string(m, "source");
	const char *repl = NULL;
	for (size_t i = 0; src && is_bind(m) && i < n && !repl; i++)
		if (!used[i] && streq(src, from[i])) {
			used[i] = true;
			repl = to[i];
		}
	if (!repl || !is_bind(m)) {
		json_gen_tree(g, m);
		return;
	}
	yajl_gen_map_open(g);
	for (size_t i = 0; i < m->u.object.len; i++) {
		json_key(g, m->u.object.keys[i]);
		if (streq(m->u.object.keys[i], "source"))
			json_str(g, repl);
		else
			json_gen_tree(g, m->u.object.values[i]);
	}
	yajl_gen_map_close(g);
}

int ctr_oci_config_bind_sources(const char *config, size_t len, const char *const *from,
				const char *const *to, size_t n, char **ret, struct husk_error *err)
{
	_cleanup_json_ yajl_val root = NULL;
	if (json_parse(config, len, "config.json", &root, err) < 0)
		return -err->code;
	if (!YAJL_IS_OBJECT(root))
		return husk_error_set(err, EINVAL, "config.json: not an object");
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	_cleanup_free_ bool *used = xnew(bool, n + 1);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < root->u.object.len; i++) {
		yajl_val v = root->u.object.values[i];
		json_key(g, root->u.object.keys[i]);
		if (!streq(root->u.object.keys[i], "mounts") || !YAJL_IS_ARRAY(v)) {
			json_gen_tree(g, v);
			continue;
		}
		yajl_gen_array_open(g);
		for (size_t j = 0; j < v->u.array.len; j++)
			gen_mount(g, v->u.array.values[j], from, to, used, n);
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
	*ret = json_gen_steal(g);
	return 0;
}

/* The runtime's bundle: config.json with the idmapped sources. */
static int write_bundle(const struct ctr_spec *s, const char *const *from, const char *const *to,
			size_t n, char **ret, struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/config.json", s->state_dir);
	_cleanup_free_ char *text = NULL, *out = NULL;
	size_t len = 0;
	if (fs_read_file(path, CONFIG_MAX, &text, &len, err) < 0 ||
	    ctr_oci_config_bind_sources(text, len, from, to, n, &out, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = xasprintf("%s/" BUNDLE_DIR, s->state_dir);
	_cleanup_free_ char *bpath = xasprintf("%s/config.json", dir);
	if ((mkdir(dir, 0700) < 0 && errno != EEXIST))
		return husk_error_errno(err, errno, "make '%s'", dir);
	if (fs_write_atomic(bpath, out, strlen(out), 0600, err) < 0)
		return -err->code;
	/* husk-shim's console socket (a relative name, as sun_path is short)
	 * from the bundle too, where runc has moved by the time it dials it. */
	_cleanup_free_ char *console = xasprintf("%s/console.sock", dir);
	if (symlink("../console.sock", console) < 0 && errno != EEXIST)
		return husk_error_errno(err, errno, "make '%s'", console);
	*ret = steal_ptr(&dir);
	return 0;
}

int ctr_oci_idmap_prepare(const struct ctr_spec *s, char **ret_bundle, struct husk_error *err)
{
	if (!s->idmapped_mounts) {
		*ret_bundle = xstrdup(s->state_dir);
		return 0;
	}
	const char *path = s->ns[CTR_NS_USER].path;
	_cleanup_close_ int userns = open(path, O_RDONLY | O_CLOEXEC);
	if (userns < 0)
		return husk_error_errno(err, errno, "open user namespace '%s'", path);
	_cleanup_free_ char *dir = xasprintf("%s/" CTR_OCI_IDMAP_DIR, s->state_dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return husk_error_errno(err, errno, "make '%s'", dir);
	const struct {
		const char *src, *name;
	} files[] = {{s->shm_path, "shm"},
		     {s->hostname_path, "hostname"},
		     {s->hosts_path, "hosts"},
		     {s->resolv_path, "resolv.conf"}};
	size_t cap = ARRAY_SIZE(files) + s->n_mounts, n = 0;
	_cleanup_free_ const char **from = xnew(const char *, cap);
	_cleanup_strv_ char **to = xnew(char *, cap + 1);
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		if (!files[i].src)
			continue;
		char *dst = xasprintf("%s/%s", dir, files[i].name);
		from[n] = files[i].src;
		to[n++] = dst;
		if ((r = idmap_mount(files[i].src, false, i > 0 && s->readonly_rootfs, userns, dst,
				     err)) < 0)
			goto undo;
	}
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		if (!m->bind)
			continue;
		char *dst = xasprintf("%s/m%zu", dir, i);
		from[n] = m->source;
		to[n++] = dst;
		if ((r = idmap_mount(m->source, m->recursive, m->flags & MS_RDONLY, userns, dst,
				     err)) < 0) {
			husk_error_prefix(err, "mount '%s'", m->destination);
			goto undo;
		}
	}
	if ((r = write_bundle(s, from, (const char *const *)to, n, ret_bundle, err)) < 0)
		goto undo;
	return 0;
undo:
	ctr_oci_idmap_release(s->state_dir);
	return r;
}

void ctr_oci_idmap_release(const char *state_dir)
{
	_cleanup_free_ char *bundle = xasprintf("%s/" BUNDLE_DIR, state_dir);
	fs_rm_rf(bundle, NULL);
	_cleanup_free_ char *dir = xasprintf("%s/" CTR_OCI_IDMAP_DIR, state_dir);
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(dir, NULL, &names, NULL) < 0)
		return;
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, names[i]);
		/* Detached: the container's own binds of it may still be up
		 * (a mount namespace that lives on). */
		while (umount2(p, MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
			;
		remove(p);
	}
	rmdir(dir);
}
