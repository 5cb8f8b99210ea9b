/* The cgroup manager: hierarchy detection from mountinfo (or a directory's
 * layout), group lifecycle (create, enter, kill, remove, pids) and
 * persistence of ownership, over the v1/v2 and systemd tables. */
#include "runtime/cgroup/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/fs.h"

#define MOUNTINFO_MAX (64u << 20) /* a node with many pods has many mounts */
#define KILL_TIMEOUT_MS_DEFAULT 5000
/* The longest wait on the pidfds of one round's killed processes. */
#define KILL_EXIT_WAIT_MS 250
#define REMOVE_BUSY_MS 1000
#define WALK_DIRS_MAX 4096

/* ---- controllers ------------------------------------------------------ */

static const struct {
	const char *name;
	unsigned bit;
} controllers[] = {
    {"cpu", CG_C_CPU},	       {"cpuacct", CG_C_CPUACCT}, {"cpuset", CG_C_CPUSET},
    {"memory", CG_C_MEMORY},   {"pids", CG_C_PIDS},	  {"hugetlb", CG_C_HUGETLB},
    {"freezer", CG_C_FREEZER}, {"devices", CG_C_DEVICES}, {"blkio", CG_C_BLKIO},
    {"io", CG_C_IO},
};

unsigned cg_controller_bit(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++)
		if (streq(controllers[i].name, name))
			return controllers[i].bit;
	return 0;
}

char *cg_controller_names(unsigned mask, bool plus)
{
	char *s = xstrdup("");
	for (size_t i = 0; i < ARRAY_SIZE(controllers); i++) {
		if (!(mask & controllers[i].bit))
			continue;
		char *n =
		    xasprintf("%s%s%s%s", s, *s ? " " : "", plus ? "+" : "", controllers[i].name);
		free(s);
		s = n;
	}
	return s;
}

/* Bits of the controller names in a separated list ("rw,cpu,cpuacct" or
 * "cpu memory" or "+cpu +memory"). */
static unsigned controller_mask(const char *list, const char *seps)
{
	unsigned mask = 0;
	_cleanup_free_ char *copy = xstrdup(list);
	char *save = NULL;
	for (char *t = strtok_r(copy, seps, &save); t; t = strtok_r(NULL, seps, &save)) {
		if (*t == '+')
			t++;
		mask |= cg_controller_bit(t);
	}
	return mask;
}

/* ---- paths ------------------------------------------------------------ */

bool cg_component_valid(const char *s, size_t len)
{
	if (len == 0 || len > 255)
		return false;
	if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '/' || c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

int cg_path_normalize(const char *path, char **ret, struct husk_error *err)
{
	if (isempty(path))
		return husk_error_set(err, EINVAL, "cgroup path is empty");
	if (strlen(path) > CG_PATH_MAX)
		return husk_error_set(err, EINVAL, "cgroup path '%.64s...' longer than %d bytes",
				      path, CG_PATH_MAX);
	_cleanup_free_ char *out = xmalloc(strlen(path) + 1);
	size_t len = 0;
	int depth = 0;
	for (const char *p = path; *p;) {
		if (*p == '/') {
			p++;
			continue;
		}
		size_t n = strcspn(p, "/");
		if (!cg_component_valid(p, n))
			return husk_error_set(err, EINVAL, "cgroup path '%s': bad component '%.*s'",
					      path, (int)n, p);
		if (++depth > CG_DEPTH_MAX)
			return husk_error_set(err, EINVAL,
					      "cgroup path '%s': more than %d components", path,
					      CG_DEPTH_MAX);
		if (len)
			out[len++] = '/';
		memcpy(out + len, p, n);
		len += n;
		p += n;
	}
	if (len == 0)
		return husk_error_set(err, EINVAL, "cgroup path '%s' names the root", path);
	out[len] = '\0';
	*ret = steal_ptr(&out);
	return 0;
}

/* Number of components of a normalised path. */
static int path_depth(const char *p)
{
	int n = 1;
	for (; *p; p++)
		n += *p == '/';
	return n;
}

/* The first k components of a normalised path. */
static char *path_prefix(const char *p, int k)
{
	const char *e = p;
	for (int i = 0; i < k; i++) {
		e += strcspn(e, "/");
		if (i + 1 < k && *e)
			e++;
	}
	return xstrndup(p, (size_t)(e - p));
}

/* ---- detection -------------------------------------------------------- */

/* Undo mountinfo's octal escapes ("\040" for a space) in place. */
static void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
}

static void add_hier(struct cg_manager *m, const char *name, const char *mount, unsigned mask)
{
	m->hiers = xrealloc(m->hiers, (m->n_hiers + 1) * sizeof(*m->hiers));
	m->hiers[m->n_hiers++] = (struct cg_hier){
	    .name = xstrdup(name),
	    .mount = xstrdup(mount),
	    .controllers = mask,
	};
	m->controllers |= mask;
}

static void free_hiers(struct cg_manager *m)
{
	for (size_t i = 0; i < m->n_hiers; i++) {
		free(m->hiers[i].name);
		free(m->hiers[i].mount);
	}
	free(m->hiers);
	m->hiers = NULL;
	m->n_hiers = 0;
	m->controllers = 0;
}

/* Name of a v1 hierarchy: its controllers husk uses, comma-joined. */
static char *v1_hier_name(unsigned mask)
{
	_cleanup_free_ char *spaced = cg_controller_names(mask, false);
	for (char *p = spaced; *p; p++)
		if (*p == ' ')
			*p = ',';
	return steal_ptr(&spaced);
}

static int setup_v2(struct cg_manager *m, struct husk_error *err)
{
	_cleanup_free_ char *ctl = NULL;
	int r = cg_read(m->base, "cgroup.controllers", &ctl, err);
	if (r < 0)
		return husk_error_prefix(err, "cgroup v2 at '%s'", m->base);
	m->version = CG_V2;
	add_hier(m, "unified", m->base, controller_mask(ctl, " \t\n") & CG_V2_USED);
	return 0;
}

/* Look at mountinfo: 1 when it settled the version, 0 when it knows nothing
 * about the base. */
static int detect_mountinfo(struct cg_manager *m, const char *mountinfo, struct husk_error *err)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_error_ struct husk_error rerr = HUSK_ERROR_INIT;
	int r = fs_read_file(mountinfo, MOUNTINFO_MAX, &buf, NULL, &rerr);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		husk_error_move(err, &rerr);
		return husk_error_prefix(err, "detect cgroups");
	}
	bool v2_root = false;
	size_t blen = strlen(m->base);
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		/* id parent maj:min root mountpoint opts [optional...] - fstype source super */
		char *f[6] = {0};
		char *lsave = NULL, *t = strtok_r(line, " ", &lsave);
		int i = 0;
		for (; t && i < 6; t = strtok_r(NULL, " ", &lsave))
			f[i++] = t;
		while (t && !streq(t, "-"))
			t = strtok_r(NULL, " ", &lsave);
		if (i < 6 || !t)
			continue;
		char *fstype = strtok_r(NULL, " ", &lsave);
		char *source = strtok_r(NULL, " ", &lsave);
		char *super = strtok_r(NULL, " ", &lsave);
		if (!fstype || !source || !super)
			continue;
		char *mp = f[4];
		unescape_octal(mp);
		if (streq(fstype, "cgroup2") && streq(mp, m->base)) {
			v2_root = true;
			continue;
		}
		if (!streq(fstype, "cgroup") || strncmp(mp, m->base, blen) != 0 || mp[blen] != '/')
			continue;
		unsigned mask = controller_mask(super, ",") & CG_V1_USED;
		if (mask == 0 || (mask & m->controllers))
			continue;
		_cleanup_free_ char *name = v1_hier_name(mask);
		add_hier(m, name, mp, mask);
	}
	if (v2_root) {
		free_hiers(m);
		r = setup_v2(m, err);
		return r < 0 ? r : 1;
	}
	if (m->n_hiers) {
		m->version = CG_V1;
		return 1;
	}
	return 0;
}

/* No mount known at base: decide from what is in the directory. */
static int detect_layout(struct cg_manager *m, struct husk_error *err)
{
	if (cg_file_exists(m->base, "cgroup.controllers"))
		return setup_v2(m, err);
	_cleanup_strv_ char **names = NULL;
	int r = fs_list_dir(m->base, NULL, &names, err);
	if (r < 0)
		return husk_error_prefix(err, "detect cgroups");
	/* Real directories first, so "cpu -> cpu,cpuacct" symlinks lose. */
	for (int pass = 0; pass < 2; pass++) {
		for (char **n = names; *n; n++) {
			_cleanup_free_ char *p = xasprintf("%s/%s", m->base, *n);
			struct stat st, lst;
			if (stat(p, &st) < 0 || !S_ISDIR(st.st_mode) || lstat(p, &lst) < 0)
				continue;
			if (S_ISLNK(lst.st_mode) != (pass == 1))
				continue;
			unsigned mask = controller_mask(*n, ",") & CG_V1_USED;
			if (mask == 0 || (mask & m->controllers))
				continue;
			_cleanup_free_ char *name = v1_hier_name(mask);
			add_hier(m, name, p, mask);
		}
	}
	if (m->n_hiers == 0)
		return husk_error_set(err, ENOENT, "no cgroup hierarchy found at '%s'", m->base);
	m->version = CG_V1;
	return 0;
}

static bool is_cgroupfs(const char *dir)
{
	struct statfs sf;
	if (statfs(dir, &sf) < 0)
		return false;
	return sf.f_type == CGROUP_SUPER_MAGIC || sf.f_type == CGROUP2_SUPER_MAGIC;
}

/* ---- manager ---------------------------------------------------------- */

int cg_manager_open(const struct cg_options *opts, struct cg_manager **ret_manager,
		    struct husk_error *err)
{
	const char *base = opts && opts->base ? opts->base : CG_DEFAULT_BASE;
	enum cg_driver driver = opts ? opts->driver : CG_DRIVER_CGROUPFS;
	const char *mountinfo = opts && opts->mountinfo ? opts->mountinfo : "/proc/self/mountinfo";
	if (base[0] != '/' || strlen(base) > CG_PATH_MAX)
		return husk_error_set(err, EINVAL, "cgroup base '%s' is not an absolute path",
				      base);
	_cleanup_(cg_manager_freep) struct cg_manager *m = xnew(struct cg_manager, 1);
	switch (driver) {
	case CG_DRIVER_CGROUPFS:
		m->naming = &cg_naming_cgroupfs;
		break;
	case CG_DRIVER_SYSTEMD:
		m->naming = &cg_naming_systemd;
		break;
	default:
		return husk_error_set(err, EINVAL, "unknown cgroup driver %d", (int)driver);
	}
	m->pod_parent = xstrdup(opts && !isempty(opts->pod_parent) ? opts->pod_parent
								   : m->naming->default_parent);
	_cleanup_free_ char *probe = NULL;
	if (m->naming->pod_path(NULL, m->pod_parent, "x", &probe, err) < 0)
		return husk_error_prefix(err, "pod cgroup parent '%s'", m->pod_parent);
	m->base = xstrdup(base);
	m->hugepages_dir =
	    xstrdup(opts && opts->hugepages_dir ? opts->hugepages_dir : "/sys/kernel/mm/hugepages");
	for (size_t n = strlen(m->base); n > 1 && m->base[n - 1] == '/'; n--)
		m->base[n - 1] = '\0';
	struct stat st;
	if (stat(m->base, &st) < 0)
		return husk_error_errno(err, errno, "cgroup base '%s'", m->base);
	int r = detect_mountinfo(m, mountinfo, err);
	if (r == 0)
		r = detect_layout(m, err);
	if (r < 0)
		return r;
	m->ops = m->version == CG_V2 ? &cg_v2_ops : &cg_v1_ops;
	m->emulated = !is_cgroupfs(m->hiers[0].mount);
	/* The systemd driver places groups through systemd; without it there
	 * is no such driver (no silent fallback to writing directories). */
	if (driver == CG_DRIVER_SYSTEMD && !m->emulated) {
		m->bus_ops = &cg_systemd_bus_ops;
		if ((r = m->bus_ops->connect(m, err)) < 0)
			return r;
	}
	*ret_manager = steal_ptr(&m);
	return 0;
}

struct cg_manager *cg_manager_new(const char *base, enum cg_driver driver, struct husk_error *err)
{
	struct cg_options opts = {.base = base, .driver = driver};
	struct cg_manager *m = NULL;
	if (cg_manager_open(&opts, &m, err) < 0)
		return NULL;
	return m;
}

void cg_manager_free(struct cg_manager *m)
{
	if (!m)
		return;
	if (m->bus_ops)
		m->bus_ops->disconnect(m);
	free_hiers(m);
	free(m->base);
	free(m->hugepages_dir);
	free(m->pod_parent);
	free(m);
}

enum cg_version cg_manager_version(const struct cg_manager *m)
{
	return m->version;
}
enum cg_driver cg_manager_driver(const struct cg_manager *m)
{
	return m->naming->driver;
}
const char *cg_manager_base(const struct cg_manager *m)
{
	return m->base;
}
bool cg_manager_emulated(const struct cg_manager *m)
{
	return m->emulated;
}

bool cg_manager_has_controller(const struct cg_manager *m, const char *controller)
{
	unsigned bit = cg_controller_bit(controller);
	return bit && (m->controllers & bit);
}

bool cg_manager_is_hier_mount(const struct cg_manager *m, const char *dir)
{
	for (size_t i = 0; i < m->n_hiers; i++)
		if (streq(m->hiers[i].mount, dir))
			return true;
	return false;
}

int cg_driver_parse(const char *name, enum cg_driver *ret_driver, struct husk_error *err)
{
	if (streq(name, "cgroupfs"))
		*ret_driver = CG_DRIVER_CGROUPFS;
	else if (streq(name, "systemd"))
		*ret_driver = CG_DRIVER_SYSTEMD;
	else
		return husk_error_set(err, EINVAL, "unknown cgroup driver '%s'", name ? name : "");
	return 0;
}

const char *cg_driver_name(enum cg_driver driver)
{
	return driver == CG_DRIVER_SYSTEMD ? "systemd" : "cgroupfs";
}

int cg_manager_pod_path(const struct cg_manager *m, const char *cgroup_parent, const char *pod_id,
			char **ret_path, struct husk_error *err)
{
	return m->naming->pod_path(cgroup_parent, m->pod_parent, pod_id, ret_path, err);
}

int cg_manager_container_path(const struct cg_manager *m, const char *pod_path, const char *ctr_id,
			      char **ret_path, struct husk_error *err)
{
	return m->naming->container_path(pod_path, ctr_id, ret_path, err);
}

const struct cg_hier *cg_hier_for(const struct cg_manager *m, unsigned c)
{
	for (size_t i = 0; i < m->n_hiers; i++)
		if (m->hiers[i].controllers & c)
			return &m->hiers[i];
	return NULL;
}

/* ---- groups ----------------------------------------------------------- */

static struct cg_group *group_new(struct cg_manager *m, char *path)
{
	struct cg_group *g = xnew(struct cg_group, 1);
	g->m = m;
	g->path = path;
	g->created = xnew(int, m->n_hiers);
	return g;
}

void cg_group_free(struct cg_group *g)
{
	if (!g)
		return;
	free(g->path);
	free(g->created);
	free(g);
}

const char *cg_group_path(const struct cg_group *g)
{
	return g->path;
}

char *cg_group_hier_dir(const struct cg_group *g, const struct cg_hier *h)
{
	return xasprintf("%s/%s", h->mount, g->path);
}

char *cg_group_dir_bit(const struct cg_group *g, unsigned c)
{
	const struct cg_hier *h = c ? cg_hier_for(g->m, c) : &g->m->hiers[0];
	return h ? cg_group_hier_dir(g, h) : NULL;
}

char *cg_group_dir(const struct cg_group *g, const char *controller)
{
	if (!controller)
		return cg_group_dir_bit(g, g->m->version == CG_V2 ? 0 : CG_C_MEMORY);
	unsigned bit = cg_controller_bit(controller);
	return bit ? cg_group_dir_bit(g, bit) : NULL;
}

char **cg_group_procs_files(const struct cg_group *g)
{
	char **v = xnew(char *, 1);
	for (size_t i = 0; i < g->m->n_hiers; i++) {
		_cleanup_free_ char *p =
		    xasprintf("%s/%s/cgroup.procs", g->m->hiers[i].mount, g->path);
		v = strv_append(v, p);
	}
	return v;
}

static int mkdir_level(const char *dir, bool *ret_created, struct husk_error *err)
{
	if (mkdir(dir, 0755) == 0) {
		*ret_created = true;
		return 0;
	}
	if (errno != EEXIST)
		return husk_error_errno(err, errno, "create cgroup '%s'", dir);
	struct stat st;
	if (stat(dir, &st) < 0)
		return husk_error_errno(err, errno, "create cgroup '%s'", dir);
	if (!S_ISDIR(st.st_mode))
		return husk_error_set(err, ENOTDIR, "create cgroup '%s': not a directory", dir);
	*ret_created = false;
	return 0;
}

/* mkdir -p of g's path in hierarchy i, preparing each level top-down. */
static int create_in_hier(struct cg_group *g, size_t i, struct husk_error *err)
{
	const struct cg_manager *m = g->m;
	const struct cg_hier *h = &m->hiers[i];
	int depth = path_depth(g->path);
	int r = m->ops->prepare_level(m, h, h->mount, false, false, err);
	if (r < 0)
		return r;
	for (int k = 1; k <= depth; k++) {
		_cleanup_free_ char *rel = path_prefix(g->path, k);
		_cleanup_free_ char *dir = xasprintf("%s/%s", h->mount, rel);
		bool created = false;
		r = mkdir_level(dir, &created, err);
		if (r < 0)
			return r;
		/* Once a level is new, every deeper one is too. */
		if (created && g->created[i] == 0)
			g->created[i] = depth - k + 1;
		r = m->ops->prepare_level(m, h, dir, created, k == depth, err);
		if (r < 0)
			return r;
	}
	return 0;
}

int cg_group_create(struct cg_manager *m, const char *path, struct cg_group **ret_group,
		    struct husk_error *err)
{
	char *norm = NULL;
	int r = cg_path_normalize(path, &norm, err);
	if (r < 0)
		return r;
	_cleanup_(cg_group_freep) struct cg_group *g = group_new(m, norm);
	for (size_t i = 0; i < m->n_hiers; i++) {
		/* A concurrent removal of a shared parent shows as ENOENT:
		 * try again a few times. */
		for (int attempt = 0;; attempt++) {
			r = create_in_hier(g, i, err);
			if (r != -ENOENT || attempt == 3)
				break;
		}
		if (r < 0) {
			_cleanup_error_ struct husk_error rmerr = HUSK_ERROR_INIT;
			cg_group_remove(g, &rmerr);
			return r;
		}
	}
	/* A slice can be started empty; a scope needs its first process
	 * (cg_group_register). */
	if (m->bus && endswith(g->path, ".slice") &&
	    (r = m->bus_ops->start(g, 0, false, err)) < 0) {
		_cleanup_error_ struct husk_error rmerr = HUSK_ERROR_INIT;
		cg_group_remove(g, &rmerr);
		return husk_error_prefix(err, "create cgroup '%s'", g->path);
	}
	*ret_group = steal_ptr(&g);
	return 0;
}

int cg_group_register(const struct cg_group *g, pid_t pid, bool delegate, struct husk_error *err)
{
	if (!g->m->bus || !endswith(g->path, ".scope"))
		return 0;
	if (pid <= 0)
		return husk_error_set(err, EINVAL, "register cgroup '%s': bad pid %d", g->path,
				      (int)pid);
	int r = g->m->bus_ops->start(g, pid, delegate, err);
	return r < 0 ? husk_error_prefix(err, "register cgroup '%s'", g->path) : 0;
}

int cg_group_open(struct cg_manager *m, const char *path, struct cg_group **ret_group,
		  struct husk_error *err)
{
	char *norm = NULL;
	int r = cg_path_normalize(path, &norm, err);
	if (r < 0)
		return r;
	_cleanup_(cg_group_freep) struct cg_group *g = group_new(m, norm);
	bool found = false;
	for (size_t i = 0; i < m->n_hiers && !found; i++) {
		_cleanup_free_ char *dir = cg_group_hier_dir(g, &m->hiers[i]);
		struct stat st;
		found = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
	}
	if (!found)
		return husk_error_set(err, ENOENT, "cgroup '%s' not found", g->path);
	*ret_group = steal_ptr(&g);
	return 0;
}

void cg_group_adopt(struct cg_group *g)
{
	/* No stat of each hierarchy's directory to see whether it is there:
	 * the removal's rmdir finds out at no extra cost (ENOENT is done). */
	for (size_t i = 0; i < g->m->n_hiers; i++)
		if (g->created[i] == 0)
			g->created[i] = 1;
}

size_t cg_group_n_hiers(const struct cg_group *g)
{
	return g->m->n_hiers;
}

const char *cg_group_hier_name(const struct cg_group *g, size_t i)
{
	return g->m->hiers[i].name;
}

int cg_group_hier_created(const struct cg_group *g, size_t i)
{
	return g->created[i];
}

int cg_group_rebuild(struct cg_manager *m, const char *path, const char *const *names,
		     const int *created, size_t n, struct cg_group **ret_group,
		     struct husk_error *err)
{
	char *norm = NULL;
	if (cg_path_normalize(path, &norm, err) < 0)
		return husk_error_prefix(err, "recorded cgroup");
	_cleanup_(cg_group_freep) struct cg_group *g = group_new(m, norm);
	int depth = path_depth(g->path);
	for (size_t j = 0; j < n; j++) {
		if (created[j] < 0 || created[j] > depth)
			return husk_error_set(err, EINVAL,
					      "recorded cgroup '%s': %d directories of %s "
					      "created, deeper than the path",
					      path, created[j], names[j]);
		for (size_t i = 0; i < m->n_hiers; i++)
			if (streq(m->hiers[i].name, names[j]))
				g->created[i] = created[j];
	}
	*ret_group = steal_ptr(&g);
	return 0;
}

int cg_group_enter(const struct cg_group *g, pid_t pid, struct husk_error *err)
{
	if (pid < 0)
		return husk_error_set(err, EINVAL, "enter cgroup '%s': bad pid %d", g->path,
				      (int)pid);
	char value[16];
	snprintf(value, sizeof(value), "%d", (int)pid);
	for (size_t i = 0; i < g->m->n_hiers; i++) {
		_cleanup_free_ char *dir = cg_group_hier_dir(g, &g->m->hiers[i]);
		int r = cg_write(g->m, dir, "cgroup.procs", value, err);
		if (r < 0)
			return husk_error_prefix(err, "enter cgroup '%s'", g->path);
	}
	return 0;
}

int cg_need_dir(const struct cg_group *g, unsigned bit, const char *what, char **ret_dir,
		struct husk_error *err)
{
	char *dir = cg_group_dir_bit(g, bit);
	if (!dir) {
		_cleanup_free_ char *name = cg_controller_names(bit, false);
		return husk_error_set(err, EINVAL, "%s: the %s controller is not available", what,
				      name);
	}
	*ret_dir = dir;
	return 0;
}

/* ---- resources -------------------------------------------------------- */

void cg_resources_init(struct cg_resources *r)
{
	*r = (struct cg_resources){
	    .cpu_period = CG_UNSET,
	    .cpu_quota = CG_UNSET,
	    .cpu_shares = CG_UNSET,
	    .memory_limit = CG_UNSET,
	    .memory_swap_limit = CG_UNSET,
	    .pids_limit = CG_UNSET,
	};
}

void cg_resources_clear(struct cg_resources *r)
{
	if (!r)
		return;
	free(r->cpuset_cpus);
	free(r->cpuset_mems);
	for (size_t i = 0; i < r->n_hugepages; i++)
		free(r->hugepages[i].page_size);
	free(r->hugepages);
	for (size_t i = 0; i < r->n_unified; i++) {
		free(r->unified[i].key);
		free(r->unified[i].value);
	}
	free(r->unified);
	cg_resources_init(r);
}

void cg_resources_add_hugepage(struct cg_resources *r, const char *page_size, int64_t limit)
{
	r->hugepages = xrealloc(r->hugepages, (r->n_hugepages + 1) * sizeof(*r->hugepages));
	r->hugepages[r->n_hugepages++] = (struct cg_hugepage){xstrdup(page_size), limit};
}

void cg_resources_add_unified(struct cg_resources *r, const char *key, const char *value)
{
	r->unified = xrealloc(r->unified, (r->n_unified + 1) * sizeof(*r->unified));
	r->unified[r->n_unified++] = (struct cg_kv){xstrdup(key), xstrdup(value)};
}

static bool limit_ok(int64_t v, bool zero_ok)
{
	return v == CG_UNSET || v == CG_MAX || v > 0 || (zero_ok && v == 0);
}

static bool cpuset_ok(const char *s)
{
	return strlen(s) <= CG_VALUE_MAX && strspn(s, "0123456789,- ") == strlen(s);
}

/* Checks that need no kernel: the same answer on v1 and v2. */
static int validate_resources(const struct cg_resources *r, struct husk_error *err)
{
	if (r->cpu_shares != CG_UNSET && (r->cpu_shares < 2 || r->cpu_shares > 262144))
		return husk_error_set(err, EINVAL, "cpu shares %" PRId64 " not in 2..262144",
				      r->cpu_shares);
	if (r->cpu_period != CG_UNSET && (r->cpu_period <= 0 || r->cpu_period > 1000000))
		return husk_error_set(err, EINVAL, "cpu period %" PRId64 " not in 1..1000000",
				      r->cpu_period);
	if (!limit_ok(r->cpu_quota, false))
		return husk_error_set(err, EINVAL, "cpu quota %" PRId64 " is invalid",
				      r->cpu_quota);
	if (!limit_ok(r->memory_limit, false))
		return husk_error_set(err, EINVAL, "memory limit %" PRId64 " is invalid",
				      r->memory_limit);
	if (!limit_ok(r->memory_swap_limit, false))
		return husk_error_set(err, EINVAL, "memory swap limit %" PRId64 " is invalid",
				      r->memory_swap_limit);
	if (r->memory_limit > 0 && r->memory_swap_limit > 0 &&
	    r->memory_swap_limit < r->memory_limit)
		return husk_error_set(
		    err, EINVAL, "memory swap limit %" PRId64 " is below the memory limit %" PRId64,
		    r->memory_swap_limit, r->memory_limit);
	if (r->memory_limit == CG_MAX && r->memory_swap_limit > 0)
		return husk_error_set(err, EINVAL,
				      "memory swap limit %" PRId64 " needs a memory limit",
				      r->memory_swap_limit);
	if (!limit_ok(r->pids_limit, false))
		return husk_error_set(err, EINVAL, "pids limit %" PRId64 " is invalid",
				      r->pids_limit);
	if (r->cpuset_cpus && !cpuset_ok(r->cpuset_cpus))
		return husk_error_set(err, EINVAL, "cpuset cpus '%.64s' is invalid",
				      r->cpuset_cpus);
	if (r->cpuset_mems && !cpuset_ok(r->cpuset_mems))
		return husk_error_set(err, EINVAL, "cpuset mems '%.64s' is invalid",
				      r->cpuset_mems);
	if (r->n_hugepages > CG_HUGEPAGES_MAX)
		return husk_error_set(err, EINVAL, "more than %d hugepage limits",
				      CG_HUGEPAGES_MAX);
	for (size_t i = 0; i < r->n_hugepages; i++) {
		const struct cg_hugepage *h = &r->hugepages[i];
		if (!cg_hugepage_size_valid(h->page_size))
			return husk_error_set(err, EINVAL, "hugepage size '%.32s' is invalid",
					      h->page_size ? h->page_size : "");
		if (!limit_ok(h->limit, true) || h->limit == CG_UNSET)
			return husk_error_set(err, EINVAL,
					      "hugepage %s limit %" PRId64 " is invalid",
					      h->page_size, h->limit);
	}
	if (r->n_unified > CG_UNIFIED_MAX)
		return husk_error_set(err, EINVAL, "more than %d unified keys", CG_UNIFIED_MAX);
	for (size_t i = 0; i < r->n_unified; i++) {
		const struct cg_kv *kv = &r->unified[i];
		const char *k = kv->key ? kv->key : "";
		/* Keys are interface files of this cgroup: never a path, and
		 * never the core files that move, kill or restructure. */
		bool bad = !cg_component_valid(k, strlen(k)) || k[0] == '.' || !strchr(k, '.') ||
			   (startswith(k, "cgroup.") && !streq(k, "cgroup.max.depth") &&
			    !streq(k, "cgroup.max.descendants"));
		if (bad)
			return husk_error_set(err, EINVAL, "unified key '%.64s' is not allowed", k);
		if (!kv->value || strlen(kv->value) > CG_VALUE_MAX)
			return husk_error_set(err, EINVAL, "unified key '%s': bad value", k);
	}
	return 0;
}

static bool resources_empty_str(const char *s)
{
	return !s || !*s;
}

int cg_group_set(const struct cg_group *g, const struct cg_resources *r, struct husk_error *err)
{
	int ret = validate_resources(r, err);
	if (ret == 0) {
		/* "" is treated as unset, like NULL. */
		struct cg_resources view = *r;
		if (resources_empty_str(view.cpuset_cpus))
			view.cpuset_cpus = NULL;
		if (resources_empty_str(view.cpuset_mems))
			view.cpuset_mems = NULL;
		ret = g->m->ops->set(g, &view, err);
		/* Tell systemd too, or it writes its own values back the next
		 * time it realizes the unit. */
		if (ret == 0 && g->m->bus)
			ret = g->m->bus_ops->set(g, &view, err);
	}
	if (ret < 0)
		return husk_error_prefix(err, "set resources of cgroup '%s'", g->path);
	return 0;
}

static bool device_rule_ok(const struct cg_device_rule *r)
{
	if (r->type != 'a' && r->type != 'c' && r->type != 'b')
		return false;
	if (r->major < -1 || r->major > UINT32_MAX || r->minor < -1 || r->minor > UINT32_MAX)
		return false;
	size_t n = strnlen(r->access, sizeof(r->access));
	if (n == 0 || n == sizeof(r->access) || strspn(r->access, "rwm") != n)
		return false;
	/* v1 reads any "a" line in devices.allow as "everything": say so. */
	if (r->type == 'a')
		return r->major == -1 && r->minor == -1 && strchr(r->access, 'r') &&
		       strchr(r->access, 'w') && strchr(r->access, 'm');
	return true;
}

int cg_group_allow_devices(const struct cg_group *g, const struct cg_device_rule *rules, size_t n,
			   struct husk_error *err)
{
	if (n > CG_DEVICE_RULES_MAX)
		return husk_error_set(err, EINVAL, "more than %d device rules",
				      CG_DEVICE_RULES_MAX);
	for (size_t i = 0; i < n; i++)
		if (!device_rule_ok(&rules[i]))
			return husk_error_set(
			    err, EINVAL, "device rule %zu: type '%c', access '%.4s' is invalid", i,
			    rules[i].type ? rules[i].type : '?', rules[i].access);
	if (g->m->ops->allow_devices(g, rules, n, err) < 0)
		return husk_error_prefix(err, "devices of cgroup '%s'", g->path);
	return 0;
}

int cg_group_get(const struct cg_group *g, struct cg_resources *ret, struct husk_error *err)
{
	struct cg_resources r;
	cg_resources_init(&r);
	int rc = g->m->ops->get(g, &r, err);
	if (rc < 0) {
		cg_resources_clear(&r);
		return husk_error_prefix(err, "read resources of cgroup '%s'", g->path);
	}
	*ret = r;
	return 0;
}

int cg_group_stats(const struct cg_group *g, struct cg_stats *ret, struct husk_error *err)
{
	struct cg_stats s = {.timestamp_ns = now_real_ns()};
	int r = g->m->ops->stats(g, &s, err);
	if (r < 0)
		return husk_error_prefix(err, "stats of cgroup '%s'", g->path);
	*ret = s;
	return 0;
}

int cg_group_oom_kill_count(const struct cg_group *g, uint64_t *ret_count, struct husk_error *err)
{
	uint64_t n = 0;
	int r = g->m->ops->oom_kill_count(g, &n, err);
	if (r < 0)
		return husk_error_prefix(err, "oom events of cgroup '%s'", g->path);
	*ret_count = n;
	return 0;
}

/* ---- pids, kill, remove ----------------------------------------------- */

struct pidset {
	pid_t *v;
	size_t n, cap;
};

static void pidset_add(struct pidset *s, pid_t p)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = p;
}

static int cmp_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

static int read_procs(const char *dir, struct pidset *s, struct husk_error *err)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_error_ struct husk_error rerr = HUSK_ERROR_INIT;
	int r = cg_read(dir, "cgroup.procs", &buf, &rerr);
	if (r == -ENOENT || r == -ENODEV)
		return 0; /* removed meanwhile */
	if (r < 0)
		return husk_error_move(err, &rerr);
	for (char *p = buf; *p;) {
		char *end = NULL;
		long v = strtol(p, &end, 10);
		if (end == p)
			return husk_error_set(err, EIO, "read '%s/cgroup.procs': bad pid", dir);
		if (v > 0 && v <= INT32_MAX)
			pidset_add(s, (pid_t)v);
		p = end;
		while (*p == '\n' || *p == ' ')
			p++;
	}
	return 0;
}

/* Calls fn on dir and every directory beneath it, children before parents
 * when post is set. Bounded in depth and count. */
static int walk_dirs(const char *dir, int depth, bool post, int *budget,
		     int (*fn)(const char *dir, void *data), void *data, struct husk_error *err)
{
	if (depth > CG_DEPTH_MAX || --*budget < 0)
		return husk_error_set(err, E2BIG, "cgroup tree at '%s' is too large", dir);
	int r;
	if (!post && (r = fn(dir, data)) < 0)
		return r;
	/* A directory's link count is 2 plus its subdirectories (cgroupfs,
	 * tmpfs, ext4; btrfs says 1): a leaf, most of a teardown's walks of
	 * every hierarchy, is not listed. */
	struct stat st;
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 2)
		return post ? fn(dir, data) : 0;
	DIR *d = opendir(dir);
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return husk_error_errno(err, errno, "open '%s'", dir);
	}
	struct dirent *de;
	r = 0;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_free_ char *sub = xasprintf("%s/%s", dir, de->d_name);
		if (de->d_type != DT_DIR) {
			struct stat st;
			if (de->d_type != DT_UNKNOWN || lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
				continue;
		}
		r = walk_dirs(sub, depth + 1, post, budget, fn, data, err);
		if (r < 0)
			break;
	}
	closedir(d);
	if (r == 0 && post)
		r = fn(dir, data);
	return r;
}

struct procs_walk {
	struct pidset *set;
	struct husk_error *err;
};

static int procs_fn(const char *dir, void *data)
{
	struct procs_walk *w = data;
	return read_procs(dir, w->set, w->err);
}

/* Processes in the hierarchies [first, end) of g, sorted and unique. */
static int pids_in(const struct cg_group *g, size_t first, size_t end, pid_t **ret_pids,
		   size_t *ret_n, struct husk_error *err)
{
	struct pidset s = {0};
	for (size_t i = first; i < end && i < g->m->n_hiers; i++) {
		_cleanup_free_ char *dir = cg_group_hier_dir(g, &g->m->hiers[i]);
		int budget = WALK_DIRS_MAX;
		struct procs_walk w = {&s, err};
		int r = walk_dirs(dir, 0, false, &budget, procs_fn, &w, err);
		if (r < 0) {
			free(s.v);
			return husk_error_prefix(err, "list processes of cgroup '%s'", g->path);
		}
	}
	if (s.n)
		qsort(s.v, s.n, sizeof(*s.v), cmp_pid);
	size_t n = 0;
	for (size_t i = 0; i < s.n; i++)
		if (n == 0 || s.v[n - 1] != s.v[i])
			s.v[n++] = s.v[i];
	*ret_pids = s.v;
	*ret_n = n;
	return 0;
}

int cg_group_pids(const struct cg_group *g, pid_t **ret_pids, size_t *ret_n, struct husk_error *err)
{
	return pids_in(g, 0, g->m->n_hiers, ret_pids, ret_n, err);
}

int cg_group_pids_first(const struct cg_group *g, pid_t **ret_pids, size_t *ret_n,
			struct husk_error *err)
{
	return pids_in(g, 0, 1, ret_pids, ret_n, err);
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* The hierarchy whose count the kernel keeps for the whole subtree
 * (ops->populated): v2's only one, v1's pids. A kill lists only it, as
 * that count is what says the group is empty; -1 when there is none (v1
 * without pids, an emulated tree), and every hierarchy is listed. */
static ssize_t populated_hier(const struct cg_manager *m)
{
	if (m->emulated)
		return -1;
	if (m->version == CG_V2)
		return 0;
	for (size_t i = 0; i < m->n_hiers; i++)
		if (m->hiers[i].controllers & CG_C_PIDS)
			return (ssize_t)i;
	return -1;
}

/* Processes in the group, not counting ourselves: one listing of the
 * counted hierarchy, or of every hierarchy when there is none (a process
 * moved in one of them is still found). */
static int live_pids(const struct cg_group *g, ssize_t counted, pid_t **ret, size_t *ret_n,
		     struct husk_error *err)
{
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int r = counted < 0 ? cg_group_pids(g, &pids, &n, err)
			    : pids_in(g, (size_t)counted, (size_t)counted + 1, &pids, &n, err);
	if (r < 0)
		return r;
	pid_t self = getpid();
	size_t live = 0;
	for (size_t i = 0; i < n; i++)
		if (pids[i] != self)
			pids[live++] = pids[i];
	*ret = steal_ptr(&pids);
	*ret_n = live;
	return 0;
}

/* At most this many exits are waited for by pidfd in one round; the rest
 * of a larger group is signalled by pid and found by the next listing. */
#define KILL_WAIT_FDS 256

struct kill_wait {
	struct pollfd fds[KILL_WAIT_FDS];
	size_t n;
};

static void kill_wait_clear(struct kill_wait *w)
{
	for (size_t i = 0; i < w->n; i++)
		close(w->fds[i].fd);
	w->n = 0;
}

/* Signal pid (sig 0: the kernel kills) and keep a pidfd of it to wait on
 * while it runs. One that has exited already (a zombie, which the kernel
 * does not list) is not waited for. */
static int kill_one(struct kill_wait *w, pid_t pid, int sig, struct husk_error *err)
{
	/* Never signal init, a process group or ourselves, whatever a
	 * cgroup.procs file may say. */
	if (pid <= 1 || pid == getpid())
		return 0;
	int fd = w->n < KILL_WAIT_FDS ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (fd < 0) {
		if (sig && kill(pid, sig) < 0 && errno != ESRCH)
			return husk_error_errno(err, errno, "kill pid %d", (int)pid);
		return 0;
	}
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 0) > 0) {
		close(fd);
		return 0;
	}
	if (sig && syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0 && errno != ESRCH) {
		int e = errno;
		close(fd);
		return husk_error_errno(err, e, "kill pid %d", (int)pid);
	}
	w->fds[w->n++] = p;
	return 0;
}

/* Until every process waited for has exited, or ms have passed. With none
 * to wait for (all exited, or listed by an emulated tree that does not
 * update itself) it sleeps ms, so a listing that still shows them is not
 * read again at once. */
static void kill_wait_exits(struct kill_wait *w, int ms)
{
	if (w->n == 0) {
		sleep_ms(ms);
		return;
	}
	long long deadline = now_mono_ns() + (long long)ms * 1000000LL;
	for (;;) {
		size_t left = 0;
		for (size_t i = 0; i < w->n; i++) {
			/* A negative fd is one poll skips: this one has exited. */
			if (w->fds[i].fd >= 0 && (w->fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				w->fds[i].fd = ~w->fds[i].fd;
			w->fds[i].revents = 0;
			left += w->fds[i].fd >= 0;
		}
		long long now = now_mono_ns();
		if (left == 0 || now >= deadline)
			break;
		if (poll(w->fds, w->n, (int)((deadline - now + 999999) / 1000000)) < 0 &&
		    errno != EINTR)
			break;
	}
	for (size_t i = 0; i < w->n; i++)
		if (w->fds[i].fd < 0)
			w->fds[i].fd = ~w->fds[i].fd;
	kill_wait_clear(w);
}

int cg_group_kill(const struct cg_group *g, int timeout_ms, struct husk_error *err)
{
	if (timeout_ms <= 0)
		timeout_ms = KILL_TIMEOUT_MS_DEFAULT;
	long long deadline = now_mono_ns() + (long long)timeout_ms * 1000000LL;
	int r = g->m->ops->kill_all(g, err);
	if (r < 0)
		return husk_error_prefix(err, "kill cgroup '%s'", g->path);
	bool by_kernel = r > 0;
	ssize_t counted = populated_hier(g->m);
	struct kill_wait w = {.n = 0};
	/* One listing a round, after the kernel's count said someone is
	 * there: a group already empty (a stopped pod's, at its removal) or
	 * emptied by the last round costs one read, where a listing reads
	 * cgroup.procs in each of its directories (in each of v1's eight
	 * hierarchies before: a quarter of huskd's CPU in a teardown, issue
	 * 12). The wait between rounds ends with the exits (pidfds), not
	 * after a sleep: the delay only bounds it. */
	for (int round = 0, delay = 5;; round++, delay = delay < 50 ? delay * 2 : 50) {
		_cleanup_free_ pid_t *pids = NULL;
		size_t n = 0;
		/* No count (the group has no directory there): every
		 * hierarchy is listed. */
		int pop = counted >= 0 ? g->m->ops->populated(g) : -1;
		if (pop == 0)
			return 0;
		if (pop < 0)
			counted = -1;
		if (live_pids(g, counted, &pids, &n, err) < 0)
			return husk_error_prefix(err, "kill cgroup '%s'", g->path);
		if (n == 0)
			return 0;
		if (now_mono_ns() > deadline)
			return husk_error_set(err, ETIMEDOUT,
					      "kill cgroup '%s': %zu processes left after %d ms",
					      g->path, n, timeout_ms);
		r = 0;
		if (!by_kernel) {
			/* Frozen, nothing can fork between listing and killing;
			 * the kill lands at the thaw. Not in the first round: a
			 * v1 freeze flips a static key (text patching on every
			 * CPU, serialised machine-wide) when no other group is
			 * frozen, which was a third of huskd's CPU in a pod
			 * teardown (issue 12), and a group rarely forks while
			 * it is killed; one that did is frozen next round, and
			 * listed again under the freeze. */
			_cleanup_error_ struct husk_error ferr = HUSK_ERROR_INIT;
			bool frozen = round > 0 && g->m->ops->freeze(g, true, &ferr) == 0;
			if (frozen) {
				free(steal_ptr(&pids));
				r = live_pids(g, counted, &pids, &n, err);
			}
			for (size_t i = 0; r == 0 && i < n; i++)
				r = kill_one(&w, pids[i], SIGKILL, err);
			if (frozen)
				g->m->ops->freeze(g, false, &ferr);
		} else {
			for (size_t i = 0; i < n; i++)
				kill_one(&w, pids[i], 0, NULL);
		}
		if (r < 0) {
			kill_wait_clear(&w);
			return husk_error_prefix(err, "kill cgroup '%s'", g->path);
		}
		/* Everything listed was killed, so the wait on its pidfds ends
		 * when it has exited, milliseconds later; the bound is only for
		 * one stuck in the kernel, or one that forked meanwhile (its
		 * child is found by the next listing). A bound of a few ms (as
		 * for the sleep without pidfds) ended the wait before a busy
		 * node's exits, and the next round froze the group: two
		 * static-key flips machine-wide per pod. */
		kill_wait_exits(&w, w.n ? KILL_EXIT_WAIT_MS : delay);
	}
}

/* rmdir with EBUSY retried until the deadline. An emulated tree holds plain
 * files that must go first. */
struct rm_ctx {
	const struct cg_manager *m;
	long long deadline;
	struct husk_error *err;
};

static void unlink_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && !S_ISDIR(st.st_mode))
			unlink(p);
	}
	closedir(d);
}

static bool has_subdirs(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *de;
	while (!found && (de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s", dir, de->d_name);
		struct stat st;
		found = lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
	}
	closedir(d);
	return found;
}

static int rmdir_busy(const struct rm_ctx *c, const char *dir, bool retry)
{
	if (c->m->emulated && !has_subdirs(dir))
		unlink_files(dir);
	for (int delay = 5;; delay = delay < 100 ? delay * 2 : 100) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (!retry || errno != EBUSY || now_mono_ns() > c->deadline)
			return -errno;
		sleep_ms(delay);
	}
}

static int rm_fn(const char *dir, void *data)
{
	const struct rm_ctx *c = data;
	int r = rmdir_busy(c, dir, true);
	if (r < 0)
		return husk_error_errno(c->err, -r, "remove cgroup '%s'", dir);
	return 0;
}

/* dir and every cgroup beneath it, deepest first. By its removal a group
 * is most often a leaf (a container's; a pod's, after its containers and
 * its init), or gone (systemd removed its unit's; a hierarchy it was never
 * made in): one rmdir settles it, with no stat to learn whether it has
 * children. Anything else (children: EBUSY, or ENOTEMPTY in an emulated
 * tree; processes left: EBUSY) takes the walk, which lists what is beneath
 * and retries EBUSY as before. */
static int remove_tree(struct rm_ctx *c, const char *dir, struct husk_error *err)
{
	if (rmdir(dir) == 0 || errno == ENOENT)
		return 0;
	int budget = WALK_DIRS_MAX;
	return walk_dirs(dir, 0, true, &budget, rm_fn, c, err);
}

/* The cgroup hierarchies mounted under a v1 base that the manager does
 * not manage, as mount directories; NULL when there is nothing to do (v2,
 * systemd driver, emulated tree). */
static char **unmanaged_mounts(const struct cg_manager *m)
{
	if (m->version != CG_V1 || m->bus || m->emulated)
		return NULL;
	DIR *d = opendir(m->base);
	if (!d)
		return NULL;
	char **v = xnew(char *, 1);
	struct dirent *de;
	while ((de = readdir(d))) {
		/* Symlinks name co-mounted controllers ("cpu -> cpu,cpuacct"). */
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		_cleanup_free_ char *mp = xasprintf("%s/%s", m->base, de->d_name);
		bool managed = false;
		for (size_t i = 0; i < m->n_hiers && !managed; i++)
			managed = streq(m->hiers[i].mount, mp);
		if (!managed && is_cgroupfs(mp))
			v = strv_append(v, mp);
	}
	closedir(d);
	return v;
}

int cg_group_add_unmanaged(const struct cg_group *g, char ***procs, struct husk_error *err)
{
	_cleanup_strv_ char **mounts = unmanaged_mounts(g->m);
	for (char **mp = mounts; mp && *mp; mp++) {
		_cleanup_free_ char *dir = xasprintf("%s/%s", *mp, g->path);
		if (fs_mkdir_p(dir, 0755, err) < 0)
			return husk_error_prefix(err, "cgroup '%s'", g->path);
		_cleanup_free_ char *p = xasprintf("%s/cgroup.procs", dir);
		*procs = strv_append(*procs, p);
	}
	return 0;
}

/* What cg_group_add_unmanaged made, and what a process in it made below
 * (systemd's slices and scopes), deepest first; the first error is kept. */
static int remove_unmanaged(const struct cg_group *g, struct rm_ctx *c, int first,
			    struct husk_error *err)
{
	/* A group husk did not make (a kubelet's pod cgroup) is not its to
	 * remove in any hierarchy. */
	bool owned = false;
	for (size_t i = 0; i < g->m->n_hiers; i++)
		owned |= g->created[i] > 0;
	_cleanup_strv_ char **mounts = owned ? unmanaged_mounts(g->m) : NULL;
	for (char **mp = mounts; mp && *mp; mp++) {
		_cleanup_free_ char *dir = xasprintf("%s/%s", *mp, g->path);
		struct husk_error herr = HUSK_ERROR_INIT;
		c->err = &herr;
		if (remove_tree(c, dir, &herr) < 0 && first == 0)
			first = husk_error_move(err, &herr);
		husk_error_clear(&herr);
	}
	return first;
}

int cg_group_remove(struct cg_group *g, struct husk_error *err)
{
	struct rm_ctx c = {g->m, now_mono_ns() + REMOVE_BUSY_MS * 1000000LL, err};
	int first = 0;
	/* systemd removes the unit's cgroups; husk then removes what it made
	 * and systemd did not. */
	if (g->m->bus)
		first = g->m->bus_ops->stop(g, err);
	int depth = path_depth(g->path);
	for (size_t i = 0; i < g->m->n_hiers; i++) {
		int owned = g->created[i];
		if (owned <= 0)
			continue;
		const struct cg_hier *h = &g->m->hiers[i];
		_cleanup_free_ char *leaf = cg_group_hier_dir(g, h);
		struct husk_error herr = HUSK_ERROR_INIT;
		c.err = &herr;
		int r = remove_tree(&c, leaf, &herr);
		if (r < 0) {
			if (first == 0)
				first = husk_error_move(err, &herr);
			husk_error_clear(&herr);
			continue;
		}
		/* Parents husk made go too, until one is still in use (EBUSY
		 * there means siblings: no waiting). */
		for (int k = 1; k < owned; k++) {
			_cleanup_free_ char *rel = path_prefix(g->path, depth - k);
			_cleanup_free_ char *dir = xasprintf("%s/%s", h->mount, rel);
			if (rmdir_busy(&c, dir, false) < 0)
				break;
		}
	}
	return remove_unmanaged(g, &c, first, err);
}

int cg_manager_remove_empty(struct cg_manager *m, const char *path, struct husk_error *err)
{
	_cleanup_free_ char *norm = NULL;
	int r = cg_path_normalize(path, &norm, err);
	if (r < 0)
		return r;
	struct rm_ctx c = {m, 0, err};
	for (size_t i = 0; i < m->n_hiers; i++) {
		_cleanup_free_ char *dir = xasprintf("%s/%s", m->hiers[i].mount, norm);
		/* With subdirectories (more than 2 links) it is in use: no
		 * rmdir, which takes the kernel's cgroup mutex to say EBUSY
		 * (every pod's removal asked it of the shared parent). */
		struct stat st;
		if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink > 2)
			continue;
		r = rmdir_busy(&c, dir, false);
		/* In use (children or processes) is the expected answer. */
		if (r < 0 && r != -EBUSY && r != -ENOTEMPTY && r != -EEXIST)
			return husk_error_errno(err, -r, "remove cgroup '%s'", dir);
	}
	return 0;
}

int cg_set_shared(const struct cg_group *g, const struct cg_resources *r,
		  const struct cg_hugetlb_names *huge, struct husk_error *err)
{
	const struct cg_manager *m = g->m;
	int rc;
	if (r->cpuset_cpus || r->cpuset_mems) {
		_cleanup_free_ char *dir = NULL;
		if ((rc = cg_need_dir(g, CG_C_CPUSET, "cpuset", &dir, err)) < 0)
			return rc;
		if (r->cpuset_cpus &&
		    (rc = cg_write_limit(m, dir, "cpuset.cpus", r->cpuset_cpus, err)) < 0)
			return rc;
		if (r->cpuset_mems &&
		    (rc = cg_write_limit(m, dir, "cpuset.mems", r->cpuset_mems, err)) < 0)
			return rc;
	}
	if (r->pids_limit != CG_UNSET) {
		_cleanup_free_ char *dir = NULL;
		if ((rc = cg_need_dir(g, CG_C_PIDS, "pids limit", &dir, err)) < 0)
			return rc;
		/* pids.max says "max" on both versions. */
		_cleanup_free_ char *v =
		    r->pids_limit == CG_MAX ? xstrdup("max") : xasprintf("%" PRId64, r->pids_limit);
		if ((rc = cg_write_limit(m, dir, "pids.max", v, err)) < 0)
			return rc;
	}
	if (!r->n_hugepages)
		return 0;
	_cleanup_free_ char *dir = cg_group_dir_bit(g, CG_C_HUGETLB);
	if (!dir)
		return cg_hugepages_without_controller(m, r, err);
	for (size_t i = 0; i < r->n_hugepages; i++) {
		const struct cg_hugepage *h = &r->hugepages[i];
		_cleanup_free_ char *file = xasprintf(huge->limit, h->page_size);
		_cleanup_free_ char *rsvd = xasprintf(huge->rsvd, h->page_size);
		_cleanup_free_ char *v = huge->fmt(h->limit);
		if (!cg_file_exists(dir, file))
			return husk_error_set(
			    err, EINVAL, "hugepage size '%s' is not supported ('%s/%s' missing)",
			    h->page_size, dir, file);
		if ((rc = cg_write_limit(m, dir, file, v, err)) < 0)
			return rc;
		if (cg_file_exists(dir, rsvd) && (rc = cg_write_limit(m, dir, rsvd, v, err)) < 0)
			return rc;
	}
	return 0;
}
