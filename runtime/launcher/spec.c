/* struct ctr_spec: defaults, validation, mount options, the JSON readers
 * shared with the config.json reader (config.c), and the spec.json an
 * older huskd wrote, still read for its containers (launcher.h). */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/mount.h>

#include "common/fs.h"
#include "common/json.h"
#include "runtime/launcher/internal.h"

const char *const ctr_default_masked_paths[] = {
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
    NULL,
};

const char *const ctr_default_readonly_paths[] = {
    "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL,
};

static const char *const ns_keys[CTR_NS_COUNT] = {
    [CTR_NS_USER] = "user",	[CTR_NS_MNT] = "mount", [CTR_NS_PID] = "pid",
    [CTR_NS_NET] = "net",	[CTR_NS_IPC] = "ipc",	[CTR_NS_UTS] = "uts",
    [CTR_NS_CGROUP] = "cgroup",
};

static const char *const prop_names[] = {
    [CTR_PROP_DEFAULT] = NULL,	      [CTR_PROP_PRIVATE] = "private",
    [CTR_PROP_RPRIVATE] = "rprivate", [CTR_PROP_SLAVE] = "slave",
    [CTR_PROP_RSLAVE] = "rslave",     [CTR_PROP_SHARED] = "shared",
    [CTR_PROP_RSHARED] = "rshared",
};

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

int ctr_rlimit_from_name(const char *name)
{
	if (!name)
		return -1;
	const char *bare = strncasecmp(name, "RLIMIT_", 7) == 0 ? name + 7 : name;
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcasecmp(rlimit_names[i].name + 7, bare) == 0)
			return rlimit_names[i].resource;
	return -1;
}

const char *ctr_rlimit_name(int resource)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (rlimit_names[i].resource == resource)
			return rlimit_names[i].name;
	return NULL;
}

struct ctr_spec *ctr_spec_new(void)
{
	struct ctr_spec *s = xnew(struct ctr_spec, 1);
	s->cwd = xstrdup("/");
	s->env = xnew(char *, 1);
	lc_caps_init(&s->caps, LC_CAPS_DEFAULT);
	s->seccomp = LC_SECCOMP_RUNTIME_DEFAULT;
	s->ns[CTR_NS_MNT].mode = CTR_NS_NEW;
	s->ns[CTR_NS_PID].mode = CTR_NS_NEW;
	s->ns[CTR_NS_IPC].mode = CTR_NS_NEW;
	s->ns[CTR_NS_UTS].mode = CTR_NS_NEW;
	s->ns[CTR_NS_CGROUP].mode = CTR_NS_NEW;
	return s;
}

void ctr_spec_free(struct ctr_spec *s)
{
	if (!s)
		return;
	free(s->id);
	strv_free(s->args);
	strv_free(s->env);
	free(s->cwd);
	free(s->additional_gids);
	free(s->seccomp_profile);
	free(s->seccomp_filter);
	free(s->apparmor_profile);
	free(s->rlimits);
	free(s->rootfs);
	free(s->hostname);
	for (int i = 0; i < CTR_NS_COUNT; i++)
		free(s->ns[i].path);
	free(s->uid_map);
	free(s->gid_map);
	for (size_t i = 0; i < s->n_mounts; i++) {
		free(s->mounts[i].destination);
		free(s->mounts[i].type);
		free(s->mounts[i].source);
		free(s->mounts[i].data);
	}
	free(s->mounts);
	for (size_t i = 0; i < s->n_devices; i++) {
		free(s->devices[i].path);
		free(s->devices[i].host_path);
	}
	free(s->devices);
	strv_free(s->masked_paths);
	strv_free(s->readonly_paths);
	for (size_t i = 0; i < s->n_sysctls; i++) {
		free(s->sysctls[i].key);
		free(s->sysctls[i].value);
	}
	free(s->sysctls);
	strv_free(s->cgroup_procs);
	free(s->shm_path);
	free(s->hostname_path);
	free(s->hosts_path);
	free(s->resolv_path);
	free(s->mount_template);
	free(s->state_dir);
	free(s->log_path);
	free(s->oom_file);
	free(s->oci_path);
	free(s->oci_root);
	strv_free(s->oci_args);
	free(s);
}

/* ---- validation ---- */

char *ctr_path_fold(const char *dest)
{
	size_t n = strlen(dest);
	char *out = xmalloc(n + 2);
	size_t len = 0;
	for (const char *p = dest; *p;) {
		while (*p == '/')
			p++;
		size_t cl = strcspn(p, "/");
		if (cl == 0)
			break;
		if (cl == 1 && p[0] == '.') {
			/* nothing */
		} else if (cl == 2 && p[0] == '.' && p[1] == '.') {
			while (len > 0 && out[len - 1] != '/')
				len--;
			if (len > 0)
				len--;
		} else {
			out[len++] = '/';
			memcpy(out + len, p, cl);
			len += cl;
		}
		p += cl;
	}
	if (len == 0)
		out[len++] = '/';
	out[len] = '\0';
	return out;
}

/* The files under /proc runc lets a mount cover: what lxcfs emulates, and
 * ns_last_pid for checkpoint/restore. */
static const char *const proc_mount_files[] = {
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo",
    "/proc/stat",    "/proc/swaps",	"/proc/uptime",
    "/proc/loadavg", "/proc/slabinfo",	"/proc/sys/kernel/ns_last_pid",
};

bool ctr_proc_mount_allowed(const char *dest)
{
	for (size_t i = 0; i < ARRAY_SIZE(proc_mount_files); i++)
		if (streq(dest, proc_mount_files[i]))
			return true;
	return false;
}

static bool path_in(const char *p, const char *dir)
{
	size_t n = strlen(dir);
	return strncmp(p, dir, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

int ctr_mount_destination_check(const char *dest, bool privileged, struct husk_error *err)
{
	_cleanup_free_ char *f = ctr_path_fold(dest);
	if (streq(f, "/"))
		return husk_error_set(
		    err, EINVAL, "mount '%s': a volume cannot replace the container's root", dest);
	if (path_in(f, "/proc") && !ctr_proc_mount_allowed(f))
		return husk_error_set(err, EINVAL,
				      "mount '%s': the runtime owns /proc; only a few of its files "
				      "(as lxcfs provides them) may be covered",
				      dest);
	if (!privileged && path_in(f, "/sys"))
		return husk_error_set(
		    err, EINVAL, "mount '%s': the runtime owns /sys in a non-privileged container",
		    dest);
	return 0;
}

static bool abs_clean(const char *p)
{
	return p && p[0] == '/';
}

static int check_paths(char *const *v, const char *what, struct husk_error *err)
{
	if (strv_length(v) > CTR_SPEC_MAX_PATHS)
		return husk_error_set(err, EINVAL, "%s: more than %d paths", what,
				      CTR_SPEC_MAX_PATHS);
	for (size_t i = 0; v && v[i]; i++)
		if (!abs_clean(v[i]))
			return husk_error_set(err, EINVAL, "%s: path '%s' is not absolute", what,
					      v[i]);
	return 0;
}

static bool sysctl_key_ok(const char *k)
{
	if (isempty(k) || strstr(k, "..") || k[0] == '.' || k[0] == '/')
		return false;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '/' || *p == '-'))
			return false;
	return true;
}

int ctr_spec_validate(const struct ctr_spec *s, struct husk_error *err)
{
	if (!abs_clean(s->rootfs))
		return husk_error_set(err, EINVAL, "root.path must be an absolute path");
	size_t nargs = strv_length(s->args);
	if (nargs == 0 || isempty(s->args[0]))
		return husk_error_set(err, EINVAL, "process.args is empty");
	if (nargs > CTR_SPEC_MAX_ARGS)
		return husk_error_set(err, EINVAL, "process.args: more than %d entries",
				      CTR_SPEC_MAX_ARGS);
	if (strv_length(s->env) > CTR_SPEC_MAX_ENV)
		return husk_error_set(err, EINVAL, "process.env: more than %d entries",
				      CTR_SPEC_MAX_ENV);
	if (!abs_clean(s->cwd))
		return husk_error_set(err, EINVAL, "process.cwd '%s' is not absolute",
				      s->cwd ? s->cwd : "");
	if (s->n_additional_gids > CTR_SPEC_MAX_GROUPS)
		return husk_error_set(err, EINVAL, "process.user.additional_gids: too many");
	if (s->ns[CTR_NS_MNT].mode != CTR_NS_NEW)
		return husk_error_set(err, EINVAL, "namespaces.mount must be \"new\"");
	for (int i = 0; i < CTR_NS_COUNT; i++)
		if (s->ns[i].mode == CTR_NS_JOIN && !abs_clean(s->ns[i].path))
			return husk_error_set(err, EINVAL, "namespaces.%s: no absolute path",
					      ns_keys[i]);
	if (s->idmapped_mounts && s->ns[CTR_NS_USER].mode != CTR_NS_JOIN)
		return husk_error_set(err, EINVAL,
				      "idmapped_mounts: needs a user namespace to join "
				      "(namespaces.user with a path)");
	/* With a joined one they are that namespace's, as an OCI config lists
	 * them for a runtime that wants them (runc); the launcher writes maps
	 * only for a namespace it makes. */
	if ((s->n_uid_map || s->n_gid_map) && s->ns[CTR_NS_USER].mode == CTR_NS_HOST)
		return husk_error_set(err, EINVAL, "uid/gid mappings need a user namespace");
	if (s->ns[CTR_NS_USER].mode == CTR_NS_NEW && (!s->n_uid_map || !s->n_gid_map))
		return husk_error_set(err, EINVAL,
				      "a new user namespace needs uid and gid mappings");
	if (s->n_uid_map > CTR_SPEC_MAX_IDMAPS || s->n_gid_map > CTR_SPEC_MAX_IDMAPS)
		return husk_error_set(err, EINVAL, "too many id mappings");
	if (s->n_mounts > CTR_SPEC_MAX_MOUNTS)
		return husk_error_set(err, EINVAL, "mounts: more than %d", CTR_SPEC_MAX_MOUNTS);
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		if (!abs_clean(m->destination))
			return husk_error_set(err, EINVAL,
					      "mount '%s': destination is not absolute",
					      m->destination ? m->destination : "");
		if (m->bind && !abs_clean(m->source))
			return husk_error_set(err, EINVAL,
					      "mount '%s': bind source '%s' is not absolute",
					      m->destination, m->source ? m->source : "");
		if (!m->bind && isempty(m->type))
			return husk_error_set(err, EINVAL, "mount '%s': no type", m->destination);
		int r = ctr_mount_destination_check(m->destination, s->privileged, err);
		if (r < 0)
			return r;
	}
	if (s->n_devices > CTR_SPEC_MAX_DEVICES)
		return husk_error_set(err, EINVAL, "devices: more than %d", CTR_SPEC_MAX_DEVICES);
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct ctr_device *d = &s->devices[i];
		if (!abs_clean(d->path))
			return husk_error_set(err, EINVAL, "device '%s': path is not absolute",
					      d->path ? d->path : "");
		if (d->type != 'c' && d->type != 'b' && d->type != 'p')
			return husk_error_set(err, EINVAL, "device '%s': type must be c, b or p",
					      d->path);
	}
	int r;
	if ((r = check_paths(s->masked_paths, "masked_paths", err)) < 0 ||
	    (r = check_paths(s->readonly_paths, "readonly_paths", err)) < 0 ||
	    (r = check_paths(s->cgroup_procs, "cgroup_procs", err)) < 0)
		return r;
	if (s->n_sysctls > CTR_SPEC_MAX_SYSCTLS)
		return husk_error_set(err, EINVAL, "sysctls: more than %d", CTR_SPEC_MAX_SYSCTLS);
	for (size_t i = 0; i < s->n_sysctls; i++)
		if (!sysctl_key_ok(s->sysctls[i].key) || !s->sysctls[i].value)
			return husk_error_set(err, EINVAL, "sysctl '%s': invalid name",
					      s->sysctls[i].key ? s->sysctls[i].key : "");
	if (s->seccomp == LC_SECCOMP_LOCALHOST && !abs_clean(s->seccomp_profile))
		return husk_error_set(err, EINVAL,
				      "seccomp: localhost needs an absolute profile path");
	if (s->seccomp_filter && !abs_clean(s->seccomp_filter))
		return husk_error_set(err, EINVAL, "seccomp: filter path '%s' is not absolute",
				      s->seccomp_filter);
	if (s->apparmor_profile) {
		size_t n = strlen(s->apparmor_profile);
		bool ok = n > 0 && n <= 256;
		for (const char *p = s->apparmor_profile; ok && *p; p++)
			ok = (unsigned char)*p > ' ' && *p != 0x7f;
		if (!ok)
			return husk_error_set(err, EINVAL,
					      "apparmor_profile '%.256s' is not a profile name",
					      s->apparmor_profile);
	}
	const char *files[] = {s->shm_path, s->hostname_path, s->hosts_path, s->resolv_path};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i] && !abs_clean(files[i]))
			return husk_error_set(err, EINVAL, "pod file '%s' is not absolute",
					      files[i]);
	return 0;
}

/* ---- mount options ---- */

bool ctr_mount_option(struct ctr_mount *m, const char *o)
{
	static const struct {
		const char *name;
		bool clear;
		unsigned long flag;
	} flags[] = {
	    {"ro", false, MS_RDONLY},
	    {"rw", true, MS_RDONLY},
	    {"nosuid", false, MS_NOSUID},
	    {"suid", true, MS_NOSUID},
	    {"nodev", false, MS_NODEV},
	    {"dev", true, MS_NODEV},
	    {"noexec", false, MS_NOEXEC},
	    {"exec", true, MS_NOEXEC},
	    {"relatime", false, MS_RELATIME},
	    {"norelatime", true, MS_RELATIME},
	    {"noatime", false, MS_NOATIME},
	    {"atime", true, MS_NOATIME},
	    {"strictatime", false, MS_STRICTATIME},
	    {"nodiratime", false, MS_NODIRATIME},
	    {"diratime", true, MS_NODIRATIME},
	};
	for (size_t i = 0; i < ARRAY_SIZE(flags); i++)
		if (streq(o, flags[i].name)) {
			if (flags[i].clear)
				m->flags &= ~flags[i].flag;
			else
				m->flags |= flags[i].flag;
			return true;
		}
	if (streq(o, "bind") || streq(o, "rbind")) {
		m->bind = true;
		m->recursive = streq(o, "rbind");
		return true;
	}
	for (size_t i = 1; i < ARRAY_SIZE(prop_names); i++)
		if (streq(o, prop_names[i])) {
			m->propagation = (enum ctr_propagation)i;
			return true;
		}
	return false;
}

/* ---- JSON in ---- */

int lcj_err(struct lcj *c, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return husk_error_set(c->err, EINVAL, "%s '%s': %s: %s", c->kind, c->what, field, m);
}

int lcj_str(struct lcj *c, yajl_val obj, const char *key, const char *field, char **out)
{
	yajl_val v = json_get(obj, key);
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_STRING(v))
		return lcj_err(c, field, "expected a string, got %s", json_type_name(v));
	free(*out);
	*out = xstrdup(v->u.string);
	return 0;
}

int lcj_bool(struct lcj *c, yajl_val obj, const char *key, const char *field, bool *out)
{
	yajl_val v = json_get(obj, key);
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return lcj_err(c, field, "expected a boolean, got %s", json_type_name(v));
	*out = YAJL_IS_TRUE(v);
	return 0;
}

int lcj_u64v(struct lcj *c, yajl_val v, const char *field, uint64_t max, uint64_t *out)
{
	if (!YAJL_IS_NUMBER(v) || !v->u.number.r || v->u.number.r[0] == '-')
		return lcj_err(c, field, "expected a non-negative integer, got %s",
			       json_type_name(v));
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v->u.number.r, &end, 10);
	if (errno || *end || x > max)
		return lcj_err(c, field, "integer out of range");
	*out = x;
	return 0;
}

int lcj_u32(struct lcj *c, yajl_val obj, const char *key, const char *field, uint32_t *out)
{
	yajl_val v = json_get(obj, key);
	if (!v || YAJL_IS_NULL(v))
		return 0;
	uint64_t x;
	int r = lcj_u64v(c, v, field, UINT32_MAX, &x);
	if (r == 0)
		*out = (uint32_t)x;
	return r;
}

int lcj_strv(struct lcj *c, yajl_val v, const char *field, size_t max, char ***out)
{
	if (!YAJL_IS_ARRAY(v))
		return lcj_err(c, field, "expected an array, got %s", json_type_name(v));
	if (v->u.array.len > max)
		return lcj_err(c, field, "more than %zu entries", max);
	_cleanup_strv_ char **r = xnew(char *, 1);
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val s = v->u.array.values[i];
		if (!YAJL_IS_STRING(s))
			return lcj_err(c, field, "entry %zu: expected a string, got %s", i,
				       json_type_name(s));
		r = strv_append(r, s->u.string);
	}
	strv_free(*out);
	*out = steal_ptr(&r);
	return 0;
}

int lcj_strv_key(struct lcj *c, yajl_val obj, const char *key, const char *field, size_t max,
		 char ***out)
{
	yajl_val v = json_get(obj, key);
	if (!v || YAJL_IS_NULL(v))
		return 0;
	return lcj_strv(c, v, field, max, out);
}

int lcj_array(struct lcj *c, yajl_val obj, const char *key, const char *field, size_t max,
	      yajl_val *out)
{
	yajl_val v = json_get(obj, key);
	*out = NULL;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return lcj_err(c, field, "expected an array, got %s", json_type_name(v));
	if (v->u.array.len > max)
		return lcj_err(c, field, "more than %zu entries", max);
	*out = v;
	return 0;
}

static int j_prop(struct lcj *c, const char *s, const char *field, enum ctr_propagation *out)
{
	for (size_t i = 1; i < ARRAY_SIZE(prop_names); i++)
		if (streq(s, prop_names[i])) {
			*out = (enum ctr_propagation)i;
			return 0;
		}
	return lcj_err(c, field, "unknown propagation '%s'", s);
}

int lcj_caps(struct lcj *c, yajl_val v, struct lc_caps *caps)
{
	if (!YAJL_IS_OBJECT(v))
		return lcj_err(c, "process.capabilities", "expected an object");
	static const char *const keys[] = {"bounding", "effective", "permitted", "inheritable",
					   "ambient"};
	uint64_t *dst[] = {&caps->bounding, &caps->effective, &caps->permitted, &caps->inheritable,
			   &caps->ambient};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		yajl_val x = json_get(v, keys[i]);
		if (!x || YAJL_IS_NULL(x)) {
			*dst[i] = 0;
			continue;
		}
		_cleanup_free_ char *field = xasprintf("process.capabilities.%s", keys[i]);
		_cleanup_strv_ char **names = NULL;
		int r = lcj_strv(c, x, field, 128, &names);
		if (r < 0)
			return r;
		struct husk_error e = HUSK_ERROR_INIT;
		if (lc_caps_from_names(names, dst[i], &e) < 0) {
			r = lcj_err(c, field, "%s", husk_error_msg(&e));
			husk_error_clear(&e);
			return r;
		}
	}
	return 0;
}

int lcj_rlimits(struct lcj *c, yajl_val v, struct ctr_spec *s)
{
	if (!YAJL_IS_ARRAY(v))
		return lcj_err(c, "process.rlimits", "expected an array, got %s",
			       json_type_name(v));
	if (v->u.array.len > 64)
		return lcj_err(c, "process.rlimits", "more than 64 entries");
	free(s->rlimits);
	s->rlimits = xnew(struct ctr_rlimit, v->u.array.len);
	s->n_rlimits = v->u.array.len;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val l = v->u.array.values[i];
		const char *type = json_get_string(l, "type");
		int res = ctr_rlimit_from_name(type);
		if (res < 0)
			return lcj_err(c, "process.rlimits", "unknown rlimit '%s'",
				       type ? type : "");
		s->rlimits[i].resource = res;
		yajl_val soft = json_get(l, "soft"), hard = json_get(l, "hard");
		if (!soft || !hard)
			return lcj_err(c, "process.rlimits", "'%s' needs soft and hard", type);
		int r;
		if ((r = lcj_u64v(c, soft, "process.rlimits.soft", UINT64_MAX,
				  &s->rlimits[i].soft)) < 0 ||
		    (r = lcj_u64v(c, hard, "process.rlimits.hard", UINT64_MAX,
				  &s->rlimits[i].hard)) < 0)
			return r;
	}
	return 0;
}

static int parse_process(struct lcj *c, yajl_val p, struct ctr_spec *s)
{
	if (!YAJL_IS_OBJECT(p))
		return lcj_err(c, "process", "expected an object");
	int r;
	yajl_val v;
	if ((r = lcj_strv_key(c, p, "args", "process.args", CTR_SPEC_MAX_ARGS, &s->args)) < 0 ||
	    (r = lcj_strv_key(c, p, "env", "process.env", CTR_SPEC_MAX_ENV, &s->env)) < 0 ||
	    (r = lcj_str(c, p, "cwd", "process.cwd", &s->cwd)) < 0 ||
	    (r = lcj_bool(c, p, "tty", "process.tty", &s->tty)) < 0 ||
	    (r = lcj_bool(c, p, "stdin", "process.stdin", &s->stdin_open)) < 0 ||
	    (r = lcj_bool(c, p, "stdin_once", "process.stdin_once", &s->stdin_once)) < 0 ||
	    (r = lcj_bool(c, p, "no_new_privs", "process.no_new_privs", &s->no_new_privs)) < 0)
		return r;
	yajl_val user = json_get(p, "user");
	if (user && !YAJL_IS_NULL(user)) {
		if ((r = lcj_u32(c, user, "uid", "process.user.uid", &s->uid)) < 0 ||
		    (r = lcj_u32(c, user, "gid", "process.user.gid", &s->gid)) < 0)
			return r;
		if ((r = lcj_array(c, user, "additional_gids", "process.user.additional_gids",
				   CTR_SPEC_MAX_GROUPS, &v)) < 0)
			return r;
		if (v) {
			free(s->additional_gids);
			s->additional_gids = xnew(uint32_t, v->u.array.len);
			s->n_additional_gids = v->u.array.len;
			for (size_t i = 0; i < v->u.array.len; i++) {
				uint64_t g;
				if ((r = lcj_u64v(c, v->u.array.values[i],
						  "process.user.additional_gids", UINT32_MAX, &g)) <
				    0)
					return r;
				s->additional_gids[i] = (uint32_t)g;
			}
		}
	}
	v = json_get(p, "capabilities");
	if (v && !YAJL_IS_NULL(v) && (r = lcj_caps(c, v, &s->caps)) < 0)
		return r;
	v = json_get(p, "seccomp");
	if (v && !YAJL_IS_NULL(v)) {
		const char *mode = json_get_string(v, "mode");
		int m = lc_seccomp_mode_parse(mode);
		if (m < 0)
			return lcj_err(c, "process.seccomp.mode", "unknown mode '%s'",
				       mode ? mode : "");
		s->seccomp = (enum lc_seccomp_mode)m;
		if ((r = lcj_str(c, v, "profile", "process.seccomp.profile", &s->seccomp_profile)) <
			0 ||
		    (r = lcj_str(c, v, "filter", "process.seccomp.filter", &s->seccomp_filter)) < 0)
			return r;
	}
	if ((r = lcj_str(c, p, "apparmor_profile", "process.apparmor_profile",
			 &s->apparmor_profile)) < 0)
		return r;
	v = json_get(p, "rlimits");
	if (v && !YAJL_IS_NULL(v) && (r = lcj_rlimits(c, v, s)) < 0)
		return r;
	v = json_get(p, "oom_score_adj");
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_INTEGER(v) || v->u.number.i < -1000 || v->u.number.i > 1000)
			return lcj_err(c, "process.oom_score_adj",
				       "expected an integer in [-1000, 1000]");
		s->has_oom_score_adj = true;
		s->oom_score_adj = (int)v->u.number.i;
	}
	return 0;
}

static int parse_namespaces(struct lcj *c, yajl_val v, struct ctr_spec *s)
{
	if (!YAJL_IS_OBJECT(v))
		return lcj_err(c, "namespaces", "expected an object");
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val x = v->u.object.values[i];
		int kind = -1;
		for (int n = 0; n < CTR_NS_COUNT; n++)
			if (streq(k, ns_keys[n]))
				kind = n;
		_cleanup_free_ char *field = xasprintf("namespaces.%s", k);
		if (kind < 0)
			return lcj_err(c, field, "unknown namespace");
		struct ctr_namespace *ns = &s->ns[kind];
		free(ns->path);
		ns->path = NULL;
		if (YAJL_IS_STRING(x) && streq(x->u.string, "new")) {
			ns->mode = CTR_NS_NEW;
		} else if (YAJL_IS_STRING(x) && streq(x->u.string, "host")) {
			ns->mode = CTR_NS_HOST;
		} else if (YAJL_IS_OBJECT(x) && json_get_string(x, "path")) {
			ns->mode = CTR_NS_JOIN;
			ns->path = xstrdup(json_get_string(x, "path"));
		} else {
			return lcj_err(c, field, "expected \"new\", \"host\" or {\"path\": ...}");
		}
	}
	return 0;
}

static int parse_idmaps(struct lcj *c, yajl_val obj, const char *key, struct ctr_idmap **out,
			size_t *n)
{
	yajl_val v;
	int r = lcj_array(c, obj, key, key, CTR_SPEC_MAX_IDMAPS, &v);
	if (r < 0 || !v)
		return r;
	free(*out);
	*out = xnew(struct ctr_idmap, v->u.array.len);
	*n = v->u.array.len;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val m = v->u.array.values[i];
		if ((r = lcj_u32(c, m, "container_id", key, &(*out)[i].container_id)) < 0 ||
		    (r = lcj_u32(c, m, "host_id", key, &(*out)[i].host_id)) < 0 ||
		    (r = lcj_u32(c, m, "size", key, &(*out)[i].size)) < 0)
			return r;
		if ((*out)[i].size == 0)
			return lcj_err(c, key, "mapping %zu has size 0", i);
	}
	return 0;
}

int lcj_mount(struct lcj *c, yajl_val m, const char *field, struct ctr_mount *cm)
{
	if (!YAJL_IS_OBJECT(m))
		return lcj_err(c, field, "expected an object");
	int r;
	if ((r = lcj_str(c, m, "destination", field, &cm->destination)) < 0 ||
	    (r = lcj_str(c, m, "type", field, &cm->type)) < 0 ||
	    (r = lcj_str(c, m, "source", field, &cm->source)) < 0)
		return r;
	if (streq(cm->type, "bind")) {
		cm->bind = true;
		cm->recursive = true;
	}
	_cleanup_strv_ char **opts = NULL;
	if ((r = lcj_strv_key(c, m, "options", field, 64, &opts)) < 0)
		return r;
	/* Each comma-separated part of an entry is an option of its own, as
	 * mount(8) reads -o: ctr_mount_gen_options writes the data split at
	 * its commas, and must read back the same mount. */
	for (size_t k = 0; opts && opts[k]; k++) {
		char *save = NULL;
		for (char *o = strtok_r(opts[k], ",", &save); o; o = strtok_r(NULL, ",", &save)) {
			if (ctr_mount_option(cm, o))
				continue;
			char *d = cm->data ? xasprintf("%s,%s", cm->data, o) : xstrdup(o);
			free(cm->data);
			cm->data = d;
		}
	}
	return 0;
}

static int parse_mounts(struct lcj *c, yajl_val v, struct ctr_spec *s)
{
	s->mounts = xnew(struct ctr_mount, v->u.array.len);
	for (size_t i = 0; i < v->u.array.len; i++) {
		_cleanup_free_ char *field = xasprintf("mounts[%zu]", i);
		int r = lcj_mount(c, v->u.array.values[i], field, &s->mounts[s->n_mounts++]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_devices(struct lcj *c, yajl_val v, struct ctr_spec *s)
{
	s->devices = xnew(struct ctr_device, v->u.array.len);
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val d = v->u.array.values[i];
		struct ctr_device *cd = &s->devices[s->n_devices++];
		_cleanup_free_ char *field = xasprintf("devices[%zu]", i);
		if (!YAJL_IS_OBJECT(d))
			return lcj_err(c, field, "expected an object");
		int r;
		const char *type = json_get_string(d, "type");
		cd->type = type && strlen(type) == 1 ? type[0] : 0;
		cd->file_mode = 0666;
		if ((r = lcj_str(c, d, "path", field, &cd->path)) < 0 ||
		    (r = lcj_str(c, d, "host_path", field, &cd->host_path)) < 0 ||
		    (r = lcj_u32(c, d, "major", field, &cd->major)) < 0 ||
		    (r = lcj_u32(c, d, "minor", field, &cd->minor)) < 0 ||
		    (r = lcj_u32(c, d, "file_mode", field, &cd->file_mode)) < 0 ||
		    (r = lcj_u32(c, d, "uid", field, &cd->uid)) < 0 ||
		    (r = lcj_u32(c, d, "gid", field, &cd->gid)) < 0)
			return r;
		cd->file_mode &= 07777;
	}
	return 0;
}

int ctr_spec_from_json(const char *text, size_t len, const char *what, struct ctr_spec **ret,
		       struct husk_error *err)
{
	struct lcj c = {"spec", what, err};
	_cleanup_json_ yajl_val root = NULL;
	int r = json_parse(text, len, what, &root, err);
	if (r < 0)
		return r;
	if (!YAJL_IS_OBJECT(root))
		return lcj_err(&c, "top level", "expected an object");
	long long version = json_get_int(root, "version", 1);
	if (version != 1)
		return lcj_err(&c, "version", "unsupported version %lld", version);

	_cleanup_(ctr_spec_freep) struct ctr_spec *s = ctr_spec_new();
	if ((r = lcj_str(&c, root, "id", "id", &s->id)) < 0 ||
	    (r = lcj_str(&c, root, "hostname", "hostname", &s->hostname)) < 0 ||
	    (r = lcj_bool(&c, root, "privileged", "privileged", &s->privileged)) < 0 ||
	    (r = lcj_bool(&c, root, "idmapped_mounts", "idmapped_mounts", &s->idmapped_mounts)) < 0)
		return r;
	yajl_val v = json_get(root, "root");
	if (!YAJL_IS_OBJECT(v))
		return lcj_err(&c, "root", "missing or not an object");
	if ((r = lcj_str(&c, v, "path", "root.path", &s->rootfs)) < 0 ||
	    (r = lcj_bool(&c, v, "readonly", "root.readonly", &s->readonly_rootfs)) < 0)
		return r;
	const char *prop = json_get_string(v, "propagation");
	if (prop && (r = j_prop(&c, prop, "root.propagation", &s->rootfs_propagation)) < 0)
		return r;
	v = json_get(root, "process");
	if (!v)
		return lcj_err(&c, "process", "missing");
	if ((r = parse_process(&c, v, s)) < 0)
		return r;
	v = json_get(root, "namespaces");
	if (v && !YAJL_IS_NULL(v) && (r = parse_namespaces(&c, v, s)) < 0)
		return r;
	if ((r = parse_idmaps(&c, root, "uid_mappings", &s->uid_map, &s->n_uid_map)) < 0 ||
	    (r = parse_idmaps(&c, root, "gid_mappings", &s->gid_map, &s->n_gid_map)) < 0)
		return r;
	if ((r = lcj_array(&c, root, "mounts", "mounts", CTR_SPEC_MAX_MOUNTS, &v)) < 0)
		return r;
	if (v && (r = parse_mounts(&c, v, s)) < 0)
		return r;
	if ((r = lcj_array(&c, root, "devices", "devices", CTR_SPEC_MAX_DEVICES, &v)) < 0)
		return r;
	if (v && (r = parse_devices(&c, v, s)) < 0)
		return r;
	if ((r = lcj_strv_key(&c, root, "masked_paths", "masked_paths", CTR_SPEC_MAX_PATHS,
			      &s->masked_paths)) < 0 ||
	    (r = lcj_strv_key(&c, root, "readonly_paths", "readonly_paths", CTR_SPEC_MAX_PATHS,
			      &s->readonly_paths)) < 0 ||
	    (r = lcj_strv_key(&c, root, "cgroup_procs", "cgroup_procs", CTR_SPEC_MAX_PATHS,
			      &s->cgroup_procs)) < 0)
		return r;
	v = json_get(root, "sysctls");
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_OBJECT(v))
			return lcj_err(&c, "sysctls", "expected an object");
		if (v->u.object.len > CTR_SPEC_MAX_SYSCTLS)
			return lcj_err(&c, "sysctls", "more than %d", CTR_SPEC_MAX_SYSCTLS);
		s->sysctls = xnew(struct ctr_sysctl, v->u.object.len);
		for (size_t i = 0; i < v->u.object.len; i++) {
			yajl_val x = v->u.object.values[i];
			if (!YAJL_IS_STRING(x))
				return lcj_err(&c, "sysctls", "'%s': expected a string",
					       v->u.object.keys[i]);
			s->sysctls[i].key = xstrdup(v->u.object.keys[i]);
			s->sysctls[i].value = xstrdup(x->u.string);
			s->n_sysctls++;
		}
	}
	v = json_get(root, "pod_files");
	if (v && !YAJL_IS_NULL(v)) {
		if ((r = lcj_str(&c, v, "shm", "pod_files.shm", &s->shm_path)) < 0 ||
		    (r = lcj_str(&c, v, "hostname", "pod_files.hostname", &s->hostname_path)) < 0 ||
		    (r = lcj_str(&c, v, "hosts", "pod_files.hosts", &s->hosts_path)) < 0 ||
		    (r = lcj_str(&c, v, "resolv_conf", "pod_files.resolv_conf", &s->resolv_path)) <
			0)
			return r;
	}
	v = json_get(root, "shim");
	if (v && !YAJL_IS_NULL(v)) {
		if ((r = lcj_str(&c, v, "state_dir", "shim.state_dir", &s->state_dir)) < 0 ||
		    (r = lcj_str(&c, v, "log_path", "shim.log_path", &s->log_path)) < 0 ||
		    (r = lcj_str(&c, v, "oom_file", "shim.oom_file", &s->oom_file)) < 0)
			return r;
		yajl_val o = json_get(v, "oci_runtime");
		if (o && !YAJL_IS_NULL(o)) {
			if ((r = lcj_str(&c, o, "path", "shim.oci_runtime.path", &s->oci_path)) <
				0 ||
			    (r = lcj_str(&c, o, "root", "shim.oci_runtime.root", &s->oci_root)) <
				0 ||
			    (r = lcj_strv_key(&c, o, "args", "shim.oci_runtime.args", 64,
					      &s->oci_args)) < 0 ||
			    (r = lcj_bool(&c, o, "systemd_cgroup",
					  "shim.oci_runtime.systemd_cgroup",
					  &s->oci_systemd_cgroup)) < 0)
				return r;
			if (!abs_clean(s->oci_path) || !abs_clean(s->oci_root))
				return lcj_err(&c, "shim.oci_runtime",
					       "path and root must be absolute paths");
		}
	}
	if ((r = ctr_spec_validate(s, err)) < 0)
		return husk_error_prefix(err, "spec '%s'", what);
	*ret = steal_ptr(&s);
	return 0;
}

int ctr_spec_read_file(const char *path, struct ctr_spec **ret, struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = fs_read_file(path, CTR_SPEC_MAX_FILE, &text, &len, err);
	if (r < 0)
		return husk_error_prefix(err, "spec");
	return ctr_spec_from_json(text, len, path, ret, err);
}

/* ---- JSON out ---- */

void ctr_mount_gen_options(yajl_gen g, const struct ctr_mount *m)
{
	static const struct {
		unsigned long flag;
		const char *name;
	} f[] = {
	    {MS_RDONLY, "ro"},
	    {MS_NOSUID, "nosuid"},
	    {MS_NODEV, "nodev"},
	    {MS_NOEXEC, "noexec"},
	    {MS_RELATIME, "relatime"},
	    {MS_NOATIME, "noatime"},
	    {MS_STRICTATIME, "strictatime"},
	    {MS_NODIRATIME, "nodiratime"},
	};
	json_key(g, "options");
	yajl_gen_array_open(g);
	if (m->bind)
		json_str(g, m->recursive ? "rbind" : "bind");
	for (size_t i = 0; i < ARRAY_SIZE(f); i++)
		if (m->flags & f[i].flag)
			json_str(g, f[i].name);
	if (m->propagation != CTR_PROP_DEFAULT)
		json_str(g, prop_names[m->propagation]);
	if (m->data) {
		_cleanup_free_ char *d = xstrdup(m->data);
		char *save = NULL;
		for (char *t = strtok_r(d, ",", &save); t; t = strtok_r(NULL, ",", &save))
			json_str(g, t);
	}
	yajl_gen_array_close(g);
}
