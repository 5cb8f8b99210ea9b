/* The launcher's spec read from the container's OCI runtime-spec config
 * (config.json, written by runtime/oci_spec.c): the one description husk-shim
 * and exec run from. What OCI has no field for comes from io.husk.*
 * annotations (listed in runtime/launcher/launcher.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "runtime/launcher/internal.h"

static const char *const oci_ns_types[CTR_NS_COUNT] = {
    [CTR_NS_USER] = "user",	[CTR_NS_MNT] = "mount", [CTR_NS_PID] = "pid",
    [CTR_NS_NET] = "network",	[CTR_NS_IPC] = "ipc",	[CTR_NS_UTS] = "uts",
    [CTR_NS_CGROUP] = "cgroup",
};

/* The io.husk.* annotations of a config, each once. */
struct husk_ann {
	yajl_val v[16];
	const char *keys[16];
	size_t n;
};

static const char *const ann_keys[] = {
    CTR_ANN_ID,		  CTR_ANN_RUNTIME_MOUNTS, CTR_ANN_PRIVILEGED,	   CTR_ANN_IDMAPPED,
    CTR_ANN_STDIN,	  CTR_ANN_STDIN_ONCE,	  CTR_ANN_SECCOMP_PROFILE, CTR_ANN_SECCOMP_FILTER,
    CTR_ANN_CGROUP_PROCS, CTR_ANN_DEVICE_SOURCES, CTR_ANN_STATE_DIR,	   CTR_ANN_LOG_PATH,
    CTR_ANN_OOM_FILE,	  CTR_ANN_OCI_RUNTIME,	  CTR_ANN_MOUNT_TEMPLATE,
};

static int ann_collect(struct lcj *c, yajl_val root, struct husk_ann *a)
{
	yajl_val v = json_get(root, "annotations");
	a->n = 0;
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_OBJECT(v))
		return lcj_err(c, "annotations", "expected an object, got %s", json_type_name(v));
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *k = v->u.object.keys[i];
		yajl_val x = v->u.object.values[i];
		if (!YAJL_IS_STRING(x))
			return lcj_err(c, "annotations", "'%s': expected a string, got %s", k,
				       json_type_name(x));
		if (!startswith(k, CTR_ANN_PREFIX))
			continue;
		bool known = false;
		for (size_t j = 0; j < ARRAY_SIZE(ann_keys); j++)
			known = known || streq(k, ann_keys[j]);
		/* A key husk does not know is a newer huskd's: ignored. */
		if (!known)
			continue;
		for (size_t j = 0; j < a->n; j++)
			if (streq(a->keys[j], k))
				return lcj_err(c, "annotations", "'%s' given twice", k);
		a->keys[a->n] = k;
		a->v[a->n++] = x;
	}
	return 0;
}

static const char *ann_get(const struct husk_ann *a, const char *key)
{
	for (size_t i = 0; i < a->n; i++)
		if (streq(a->keys[i], key))
			return a->v[i]->u.string;
	return NULL;
}

static int ann_bool(struct lcj *c, const struct husk_ann *a, const char *key, bool *out)
{
	const char *v = ann_get(a, key);
	if (!v)
		return 0;
	if (!streq(v, "true") && !streq(v, "false"))
		return lcj_err(c, key, "expected \"true\" or \"false\", got '%.64s'", v);
	*out = streq(v, "true");
	return 0;
}

static int ann_str(struct lcj *c, const struct husk_ann *a, const char *key, bool absolute,
		   char **out)
{
	const char *v = ann_get(a, key);
	if (!v)
		return 0;
	if (absolute && v[0] != '/')
		return lcj_err(c, key, "'%.256s' is not an absolute path", v);
	free(*out);
	*out = xstrdup(v);
	return 0;
}

/* An annotation whose value is JSON text (a list or a map). */
static int ann_json(struct lcj *c, const struct husk_ann *a, const char *key, yajl_val *ret)
{
	const char *v = ann_get(a, key);
	*ret = NULL;
	if (!v)
		return 0;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (json_parse(v, strlen(v), key, ret, &e) < 0)
		return lcj_err(c, key, "%s", husk_error_msg(&e));
	return 0;
}

static int parse_user(struct lcj *c, yajl_val u, struct ctr_spec *s)
{
	if (!YAJL_IS_OBJECT(u))
		return lcj_err(c, "process.user", "expected an object, got %s", json_type_name(u));
	int r;
	yajl_val v;
	yajl_val m = json_get(u, "umask");
	if (m && !YAJL_IS_NULL(m)) {
		uint64_t x;
		if ((r = lcj_u64v(c, m, "process.user.umask", 0777, &x)) < 0)
			return r;
		s->has_umask = true;
		s->umask = (uint32_t)x;
	}
	if ((r = lcj_u32(c, u, "uid", "process.user.uid", &s->uid)) < 0 ||
	    (r = lcj_u32(c, u, "gid", "process.user.gid", &s->gid)) < 0 ||
	    (r = lcj_array(c, u, "additionalGids", "process.user.additionalGids",
			   CTR_SPEC_MAX_GROUPS, &v)) < 0)
		return r;
	if (!v)
		return 0;
	free(s->additional_gids);
	s->additional_gids = xnew(uint32_t, v->u.array.len + 1);
	s->n_additional_gids = 0;
	for (size_t i = 0; i < v->u.array.len; i++) {
		uint64_t g;
		if ((r = lcj_u64v(c, v->u.array.values[i], "process.user.additionalGids",
				  UINT32_MAX, &g)) < 0)
			return r;
		s->additional_gids[s->n_additional_gids++] = (uint32_t)g;
	}
	return 0;
}

static int parse_process(struct lcj *c, yajl_val p, struct ctr_spec *s)
{
	if (!YAJL_IS_OBJECT(p))
		return lcj_err(c, "process", "expected an object, got %s", json_type_name(p));
	int r;
	if ((r = lcj_strv_key(c, p, "args", "process.args", CTR_SPEC_MAX_ARGS, &s->args)) < 0 ||
	    (r = lcj_strv_key(c, p, "env", "process.env", CTR_SPEC_MAX_ENV, &s->env)) < 0 ||
	    (r = lcj_str(c, p, "cwd", "process.cwd", &s->cwd)) < 0 ||
	    (r = lcj_bool(c, p, "terminal", "process.terminal", &s->tty)) < 0 ||
	    (r = lcj_bool(c, p, "noNewPrivileges", "process.noNewPrivileges", &s->no_new_privs)) <
		0 ||
	    (r = lcj_str(c, p, "apparmorProfile", "process.apparmorProfile",
			 &s->apparmor_profile)) < 0)
		return r;
	yajl_val v = json_get(p, "user");
	if (v && !YAJL_IS_NULL(v) && (r = parse_user(c, v, s)) < 0)
		return r;
	/* No capabilities object: none at all, as runc reads it. */
	s->caps = (struct lc_caps){0};
	v = json_get(p, "capabilities");
	if (v && !YAJL_IS_NULL(v) && (r = lcj_caps(c, v, &s->caps)) < 0)
		return r;
	v = json_get(p, "rlimits");
	if (v && !YAJL_IS_NULL(v) && (r = lcj_rlimits(c, v, s)) < 0)
		return r;
	v = json_get(p, "consoleSize");
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_OBJECT(v))
			return lcj_err(c, "process.consoleSize", "expected an object, got %s",
				       json_type_name(v));
		if ((r = lcj_u32(c, v, "height", "process.consoleSize.height",
				 &s->console_height)) < 0 ||
		    (r = lcj_u32(c, v, "width", "process.consoleSize.width", &s->console_width)) <
			0)
			return r;
		if (s->console_height > UINT16_MAX || s->console_width > UINT16_MAX)
			return lcj_err(c, "process.consoleSize", "more than %u rows or columns",
				       UINT16_MAX);
	}
	v = json_get(p, "oomScoreAdj");
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_INTEGER(v) || v->u.number.i < -1000 || v->u.number.i > 1000)
			return lcj_err(c, "process.oomScoreAdj",
				       "expected an integer in [-1000, 1000]");
		s->has_oom_score_adj = true;
		s->oom_score_adj = (int)v->u.number.i;
	}
	return 0;
}

static int parse_idmaps(struct lcj *c, yajl_val obj, const char *key, struct ctr_idmap **out,
			size_t *n)
{
	_cleanup_free_ char *field = xasprintf("linux.%s", key);
	yajl_val v;
	int r = lcj_array(c, obj, key, field, CTR_SPEC_MAX_IDMAPS, &v);
	if (r < 0 || !v)
		return r;
	free(*out);
	*out = xnew(struct ctr_idmap, v->u.array.len + 1);
	*n = v->u.array.len;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val m = v->u.array.values[i];
		_cleanup_free_ char *f = xasprintf("%s[%zu]", field, i);
		if (!YAJL_IS_OBJECT(m))
			return lcj_err(c, f, "expected an object, got %s", json_type_name(m));
		if ((r = lcj_u32(c, m, "containerID", f, &(*out)[i].container_id)) < 0 ||
		    (r = lcj_u32(c, m, "hostID", f, &(*out)[i].host_id)) < 0 ||
		    (r = lcj_u32(c, m, "size", f, &(*out)[i].size)) < 0)
			return r;
		if ((*out)[i].size == 0)
			return lcj_err(c, f, "size is 0");
	}
	return 0;
}

static int parse_namespaces(struct lcj *c, yajl_val l, struct ctr_spec *s)
{
	yajl_val v;
	int r = lcj_array(c, l, "namespaces", "linux.namespaces", CTR_NS_COUNT, &v);
	if (r < 0 || !v)
		return r;
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val x = v->u.array.values[i];
		_cleanup_free_ char *field = xasprintf("linux.namespaces[%zu]", i);
		if (!YAJL_IS_OBJECT(x))
			return lcj_err(c, field, "expected an object, got %s", json_type_name(x));
		const char *type = json_get_string(x, "type");
		int kind = -1;
		for (int n = 0; type && n < CTR_NS_COUNT; n++)
			if (streq(type, oci_ns_types[n]))
				kind = n;
		if (kind < 0)
			return lcj_err(c, field, "unknown namespace type '%.32s'",
				       type ? type : "");
		struct ctr_namespace *ns = &s->ns[kind];
		if (ns->mode != CTR_NS_HOST)
			return lcj_err(c, field, "namespace '%s' given twice", type);
		ns->mode = CTR_NS_NEW;
		if ((r = lcj_str(c, x, "path", field, &ns->path)) < 0)
			return r;
		if (ns->path)
			ns->mode = CTR_NS_JOIN;
	}
	return 0;
}

/* The runtime's own mounts: husk's launcher sets these up itself and takes
 * from them only where a pod file comes from. */
static const char *const runtime_dests[] = {
    "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
};

static void mount_clear(struct ctr_mount *m)
{
	free(m->destination);
	free(m->type);
	free(m->source);
	free(m->data);
}

static int runtime_mount(struct lcj *c, yajl_val m, const char *field, struct ctr_spec *s)
{
	_cleanup_(mount_clear) struct ctr_mount cm = {0};
	int r = lcj_mount(c, m, field, &cm);
	if (r < 0)
		return r;
	const char *dest = cm.destination ? cm.destination : "";
	char **file = streq(dest, "/dev/shm")		? &s->shm_path
		      : streq(dest, "/etc/hostname")	? &s->hostname_path
		      : streq(dest, "/etc/hosts")	? &s->hosts_path
		      : streq(dest, "/etc/resolv.conf") ? &s->resolv_path
							: NULL;
	if (file && cm.bind) {
		if (*file)
			return lcj_err(c, field, "'%s' given twice", dest);
		if (!cm.source || cm.source[0] != '/')
			return lcj_err(c, field, "source of '%s' is not an absolute path", dest);
		*file = steal_ptr(&cm.source);
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(runtime_dests); i++)
		if (streq(dest, runtime_dests[i]))
			return 0;
	return lcj_err(c, field, "'%.256s' is not a mount the runtime sets up (%s)", dest,
		       CTR_ANN_RUNTIME_MOUNTS);
}

static int parse_mounts(struct lcj *c, yajl_val root, const struct husk_ann *a, struct ctr_spec *s)
{
	yajl_val v;
	int r = lcj_array(c, root, "mounts", "mounts",
			  CTR_SPEC_MAX_MOUNTS + ARRAY_SIZE(runtime_dests) + 3, &v);
	if (r < 0)
		return r;
	size_t n = v ? v->u.array.len : 0;
	uint64_t own = 0;
	const char *own_s = ann_get(a, CTR_ANN_RUNTIME_MOUNTS);
	if (own_s) {
		char *end;
		errno = 0;
		unsigned long long x = strtoull(own_s, &end, 10);
		if (errno || end == own_s || *end || own_s[0] == '-' || x > n)
			return lcj_err(c, CTR_ANN_RUNTIME_MOUNTS,
				       "'%.32s' is not a count of mounts (0 to %zu)", own_s, n);
		own = x;
	}
	if (n - own > CTR_SPEC_MAX_MOUNTS)
		return lcj_err(c, "mounts", "more than %d", CTR_SPEC_MAX_MOUNTS);
	s->mounts = xnew(struct ctr_mount, n - own + 1);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *field = xasprintf("mounts[%zu]", i);
		yajl_val m = v->u.array.values[i];
		if (i < own)
			r = runtime_mount(c, m, field, s);
		else
			r = lcj_mount(c, m, field, &s->mounts[s->n_mounts++]);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_devices(struct lcj *c, yajl_val l, const struct husk_ann *a, struct ctr_spec *s)
{
	yajl_val v;
	int r = lcj_array(c, l, "devices", "linux.devices", CTR_SPEC_MAX_DEVICES, &v);
	if (r < 0)
		return r;
	_cleanup_json_ yajl_val sources = NULL;
	if ((r = ann_json(c, a, CTR_ANN_DEVICE_SOURCES, &sources)) < 0)
		return r;
	if (sources && !YAJL_IS_OBJECT(sources))
		return lcj_err(c, CTR_ANN_DEVICE_SOURCES, "expected an object, got %s",
			       json_type_name(sources));
	size_t n = v ? v->u.array.len : 0;
	s->devices = xnew(struct ctr_device, n + 1);
	for (size_t i = 0; i < n; i++) {
		yajl_val d = v->u.array.values[i];
		struct ctr_device *cd = &s->devices[s->n_devices++];
		_cleanup_free_ char *field = xasprintf("linux.devices[%zu]", i);
		if (!YAJL_IS_OBJECT(d))
			return lcj_err(c, field, "expected an object, got %s", json_type_name(d));
		const char *type = json_get_string(d, "type");
		/* "u" is an unbuffered character device: a character device. */
		cd->type = type && strlen(type) == 1 ? (type[0] == 'u' ? 'c' : type[0]) : 0;
		cd->file_mode = 0666;
		if ((r = lcj_str(c, d, "path", field, &cd->path)) < 0 ||
		    (r = lcj_u32(c, d, "major", field, &cd->major)) < 0 ||
		    (r = lcj_u32(c, d, "minor", field, &cd->minor)) < 0 ||
		    (r = lcj_u32(c, d, "fileMode", field, &cd->file_mode)) < 0 ||
		    (r = lcj_u32(c, d, "uid", field, &cd->uid)) < 0 ||
		    (r = lcj_u32(c, d, "gid", field, &cd->gid)) < 0)
			return r;
		cd->file_mode &= 07777;
		if (sources && cd->path &&
		    (r = lcj_str(c, sources, cd->path, CTR_ANN_DEVICE_SOURCES, &cd->host_path)) < 0)
			return r;
		if (cd->host_path && cd->host_path[0] != '/')
			return lcj_err(c, CTR_ANN_DEVICE_SOURCES,
				       "'%.256s': source '%.256s' is not an absolute path",
				       cd->path, cd->host_path);
	}
	return 0;
}

static int parse_sysctl(struct lcj *c, yajl_val l, struct ctr_spec *s)
{
	yajl_val v = json_get(l, "sysctl");
	if (!v || YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_OBJECT(v))
		return lcj_err(c, "linux.sysctl", "expected an object, got %s", json_type_name(v));
	if (v->u.object.len > CTR_SPEC_MAX_SYSCTLS)
		return lcj_err(c, "linux.sysctl", "more than %d", CTR_SPEC_MAX_SYSCTLS);
	s->sysctls = xnew(struct ctr_sysctl, v->u.object.len + 1);
	for (size_t i = 0; i < v->u.object.len; i++) {
		yajl_val x = v->u.object.values[i];
		if (!YAJL_IS_STRING(x))
			return lcj_err(c, "linux.sysctl", "'%.256s': expected a string, got %s",
				       v->u.object.keys[i], json_type_name(x));
		s->sysctls[i].key = xstrdup(v->u.object.keys[i]);
		s->sysctls[i].value = xstrdup(x->u.string);
		s->n_sysctls++;
	}
	return 0;
}

/* rootfsPropagation as oci_spec.c writes it for each of husk's values. */
static int parse_root_propagation(struct lcj *c, yajl_val l, struct ctr_spec *s)
{
	static const struct {
		const char *name;
		enum ctr_propagation prop;
	} props[] = {
	    {"slave", CTR_PROP_DEFAULT},    {"rslave", CTR_PROP_RSLAVE},
	    {"private", CTR_PROP_RPRIVATE}, {"rprivate", CTR_PROP_RPRIVATE},
	    {"shared", CTR_PROP_RSHARED},   {"rshared", CTR_PROP_RSHARED},
	};
	_cleanup_free_ char *p = NULL;
	int r = lcj_str(c, l, "rootfsPropagation", "linux.rootfsPropagation", &p);
	if (r < 0 || !p)
		return r;
	for (size_t i = 0; i < ARRAY_SIZE(props); i++)
		if (streq(p, props[i].name)) {
			s->rootfs_propagation = props[i].prop;
			return 0;
		}
	return lcj_err(c, "linux.rootfsPropagation", "unsupported propagation '%.32s'", p);
}

static int parse_linux(struct lcj *c, yajl_val l, const struct husk_ann *a, struct ctr_spec *s)
{
	if (!YAJL_IS_OBJECT(l))
		return lcj_err(c, "linux", "expected an object, got %s", json_type_name(l));
	int r;
	if ((r = parse_namespaces(c, l, s)) < 0 ||
	    (r = parse_idmaps(c, l, "uidMappings", &s->uid_map, &s->n_uid_map)) < 0 ||
	    (r = parse_idmaps(c, l, "gidMappings", &s->gid_map, &s->n_gid_map)) < 0 ||
	    (r = parse_devices(c, l, a, s)) < 0 || (r = parse_sysctl(c, l, s)) < 0 ||
	    (r = parse_root_propagation(c, l, s)) < 0)
		return r;
	/* The masked and read-only paths as listed; an empty list is none. */
	strv_free(steal_ptr(&s->masked_paths));
	strv_free(steal_ptr(&s->readonly_paths));
	if ((r = lcj_strv_key(c, l, "maskedPaths", "linux.maskedPaths", CTR_SPEC_MAX_PATHS,
			      &s->masked_paths)) < 0 ||
	    (r = lcj_strv_key(c, l, "readonlyPaths", "linux.readonlyPaths", CTR_SPEC_MAX_PATHS,
			      &s->readonly_paths)) < 0)
		return r;
	if (!s->masked_paths)
		s->masked_paths = xnew(char *, 1);
	if (!s->readonly_paths)
		s->readonly_paths = xnew(char *, 1);
	/* The profile is compiled by huskd (io.husk.seccomp-filter): here it
	 * only says that the container is confined. */
	yajl_val v = json_get(l, "seccomp");
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_OBJECT(v))
			return lcj_err(c, "linux.seccomp", "expected an object, got %s",
				       json_type_name(v));
		s->seccomp = LC_SECCOMP_RUNTIME_DEFAULT;
	}
	return 0;
}

static int parse_oci_runtime(struct lcj *c, const struct husk_ann *a, struct ctr_spec *s)
{
	_cleanup_json_ yajl_val o = NULL;
	int r = ann_json(c, a, CTR_ANN_OCI_RUNTIME, &o);
	if (r < 0 || !o)
		return r;
	if (!YAJL_IS_OBJECT(o))
		return lcj_err(c, CTR_ANN_OCI_RUNTIME, "expected an object, got %s",
			       json_type_name(o));
	if ((r = lcj_str(c, o, "path", CTR_ANN_OCI_RUNTIME ".path", &s->oci_path)) < 0 ||
	    (r = lcj_str(c, o, "root", CTR_ANN_OCI_RUNTIME ".root", &s->oci_root)) < 0 ||
	    (r = lcj_strv_key(c, o, "args", CTR_ANN_OCI_RUNTIME ".args", 64, &s->oci_args)) < 0 ||
	    (r = lcj_bool(c, o, "systemd_cgroup", CTR_ANN_OCI_RUNTIME ".systemd_cgroup",
			  &s->oci_systemd_cgroup)) < 0)
		return r;
	if (!s->oci_path || s->oci_path[0] != '/' || !s->oci_root || s->oci_root[0] != '/')
		return lcj_err(c, CTR_ANN_OCI_RUNTIME, "path and root must be absolute paths");
	return 0;
}

static int parse_annotations(struct lcj *c, const struct husk_ann *a, struct ctr_spec *s)
{
	int r;
	if ((r = ann_str(c, a, CTR_ANN_ID, false, &s->id)) < 0 ||
	    (r = ann_bool(c, a, CTR_ANN_PRIVILEGED, &s->privileged)) < 0 ||
	    (r = ann_bool(c, a, CTR_ANN_IDMAPPED, &s->idmapped_mounts)) < 0 ||
	    (r = ann_bool(c, a, CTR_ANN_STDIN, &s->stdin_open)) < 0 ||
	    (r = ann_bool(c, a, CTR_ANN_STDIN_ONCE, &s->stdin_once)) < 0 ||
	    (r = ann_str(c, a, CTR_ANN_SECCOMP_FILTER, true, &s->seccomp_filter)) < 0 ||
	    (r = ann_str(c, a, CTR_ANN_STATE_DIR, true, &s->state_dir)) < 0 ||
	    (r = ann_str(c, a, CTR_ANN_LOG_PATH, true, &s->log_path)) < 0 ||
	    (r = ann_str(c, a, CTR_ANN_OOM_FILE, true, &s->oom_file)) < 0 ||
	    (r = ann_str(c, a, CTR_ANN_MOUNT_TEMPLATE, true, &s->mount_template)) < 0 ||
	    (r = parse_oci_runtime(c, a, s)) < 0)
		return r;
	if (ann_get(a, CTR_ANN_SECCOMP_PROFILE)) {
		if (s->seccomp == LC_SECCOMP_UNCONFINED)
			return lcj_err(c, CTR_ANN_SECCOMP_PROFILE, "given without linux.seccomp");
		s->seccomp = LC_SECCOMP_LOCALHOST;
		if ((r = ann_str(c, a, CTR_ANN_SECCOMP_PROFILE, true, &s->seccomp_profile)) < 0)
			return r;
	}
	_cleanup_json_ yajl_val procs = NULL;
	if ((r = ann_json(c, a, CTR_ANN_CGROUP_PROCS, &procs)) < 0)
		return r;
	if (procs && (r = lcj_strv(c, procs, CTR_ANN_CGROUP_PROCS, CTR_SPEC_MAX_PATHS,
				   &s->cgroup_procs)) < 0)
		return r;
	return 0;
}

int ctr_spec_from_oci(const char *text, size_t len, const char *what, struct ctr_spec **ret,
		      struct husk_error *err)
{
	struct lcj c = {"config", what, err};
	_cleanup_json_ yajl_val root = NULL;
	int r = json_parse(text, len, what, &root, err);
	if (r < 0)
		return husk_error_prefix(err, "config");
	if (!YAJL_IS_OBJECT(root))
		return lcj_err(&c, "top level", "expected an object, got %s", json_type_name(root));
	const char *version = json_get_string(root, "ociVersion");
	if (!version)
		return lcj_err(&c, "ociVersion", "missing or not a string");
	if (!startswith(version, "1."))
		return lcj_err(&c, "ociVersion", "unsupported version '%.32s'", version);

	_cleanup_(ctr_spec_freep) struct ctr_spec *s = ctr_spec_new();
	/* What the config leaves out is off: host namespaces, no seccomp. */
	for (int i = 0; i < CTR_NS_COUNT; i++)
		s->ns[i].mode = CTR_NS_HOST;
	s->seccomp = LC_SECCOMP_UNCONFINED;
	struct husk_ann a;
	if ((r = ann_collect(&c, root, &a)) < 0 ||
	    (r = lcj_str(&c, root, "hostname", "hostname", &s->hostname)) < 0)
		return r;
	yajl_val v = json_get(root, "root");
	if (!YAJL_IS_OBJECT(v))
		return lcj_err(&c, "root", "missing or not an object");
	if ((r = lcj_str(&c, v, "path", "root.path", &s->rootfs)) < 0 ||
	    (r = lcj_bool(&c, v, "readonly", "root.readonly", &s->readonly_rootfs)) < 0)
		return r;
	v = json_get(root, "process");
	if (!v)
		return lcj_err(&c, "process", "missing");
	if ((r = parse_process(&c, v, s)) < 0)
		return r;
	v = json_get(root, "linux");
	if (!v)
		return lcj_err(&c, "linux", "missing");
	if ((r = parse_linux(&c, v, &a, s)) < 0 || (r = parse_mounts(&c, root, &a, s)) < 0 ||
	    (r = parse_annotations(&c, &a, s)) < 0)
		return r;
	if ((r = ctr_spec_validate(s, err)) < 0)
		return husk_error_prefix(err, "config '%s'", what);
	*ret = steal_ptr(&s);
	return 0;
}

int ctr_spec_read_oci_file(const char *path, struct ctr_spec **ret, struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	if (fs_read_file(path, CTR_SPEC_MAX_FILE, &text, &len, err) < 0)
		return husk_error_prefix(err, "config");
	return ctr_spec_from_oci(text, len, path, ret, err);
}

int ctr_spec_read_any(const char *path, struct ctr_spec **ret, struct husk_error *err)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (streq(base, CTR_LEGACY_SPEC_FILE))
		return ctr_spec_read_file(path, ret, err);
	return ctr_spec_read_oci_file(path, ret, err);
}

char *ctr_spec_path(const char *dir)
{
	_cleanup_free_ char *legacy = xasprintf("%s/" CTR_LEGACY_SPEC_FILE, dir);
	if (access(legacy, F_OK) == 0)
		return steal_ptr(&legacy);
	return xasprintf("%s/" CTR_CONFIG_FILE, dir);
}

int ctr_spec_load(const char *dir, struct ctr_spec **ret, struct husk_error *err)
{
	_cleanup_free_ char *path = ctr_spec_path(dir);
	return ctr_spec_read_any(path, ret, err);
}
