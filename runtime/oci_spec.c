/* struct ctr_spec as an OCI runtime-spec config.json: one description of
 * the container for crictl inspect and for OCI runtimes (runc, crun). The
 * layout follows what husk's launcher does with the same spec. */
#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "runtime/launcher/launcher.h"
#include "runtime/oci.h"

static const char *const oci_ns_types[CTR_NS_COUNT] = {
    [CTR_NS_USER] = "user",	[CTR_NS_MNT] = "mount", [CTR_NS_PID] = "pid",
    [CTR_NS_NET] = "network",	[CTR_NS_IPC] = "ipc",	[CTR_NS_UTS] = "uts",
    [CTR_NS_CGROUP] = "cgroup",
};

/* rootfsPropagation takes the four names the schema lists; runtimes apply
 * them recursively (runc: MS_REC | MS_SLAVE for "slave"). */
static const char *const oci_root_props[] = {
    [CTR_PROP_DEFAULT] = "slave",  [CTR_PROP_PRIVATE] = "private", [CTR_PROP_RPRIVATE] = "private",
    [CTR_PROP_SLAVE] = "slave",	   [CTR_PROP_RSLAVE] = "slave",	   [CTR_PROP_SHARED] = "shared",
    [CTR_PROP_RSHARED] = "shared",
};

static void o_strv_bare(yajl_gen g, const char *const *v)
{
	yajl_gen_array_open(g);
	for (size_t i = 0; v && v[i]; i++)
		json_str(g, v[i]);
	yajl_gen_array_close(g);
}

static void o_strv(yajl_gen g, const char *key, const char *const *v)
{
	json_key(g, key);
	o_strv_bare(g, v);
}

static void o_u64(yajl_gen g, const char *key, uint64_t x)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)x);
	json_key(g, key);
	yajl_gen_number(g, buf, (size_t)n);
}

/* A mount given by its fields; options is a comma-separated list or NULL. */
static void o_mount(yajl_gen g, const char *dest, const char *type, const char *source,
		    const char *options)
{
	yajl_gen_map_open(g);
	json_kv_str(g, "destination", dest);
	json_kv_str(g, "type", type);
	json_kv_str(g, "source", source);
	json_key(g, "options");
	yajl_gen_array_open(g);
	if (options) {
		_cleanup_free_ char *copy = xstrdup(options);
		char *save = NULL;
		for (char *o = strtok_r(copy, ",", &save); o; o = strtok_r(NULL, ",", &save))
			json_str(g, o);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

/* The process object: s's own, or with args, env, cwd and the terminal
 * replaced (a process run in the container later). */
static void o_process(yajl_gen g, const struct ctr_spec *s, char *const *args, char *const *env,
		      const char *cwd, bool tty, unsigned rows, unsigned cols)
{
	yajl_gen_map_open(g);
	json_kv_bool(g, "terminal", tty);
	json_key(g, "user");
	yajl_gen_map_open(g);
	json_kv_int(g, "uid", s->uid);
	json_kv_int(g, "gid", s->gid);
	if (s->n_additional_gids) {
		json_key(g, "additionalGids");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < s->n_additional_gids; i++)
			yajl_gen_integer(g, s->additional_gids[i]);
		yajl_gen_array_close(g);
	}
	if (s->has_umask)
		json_kv_int(g, "umask", s->umask);
	yajl_gen_map_close(g);
	/* The runtime sizes the terminal it makes before the process runs;
	 * a size set later races with what the process reads first. */
	if (tty && (rows || cols)) {
		json_key(g, "consoleSize");
		yajl_gen_map_open(g);
		json_kv_int(g, "height", rows);
		json_kv_int(g, "width", cols);
		yajl_gen_map_close(g);
	}
	o_strv(g, "args", (const char *const *)args);
	o_strv(g, "env", (const char *const *)env);
	json_kv_str(g, "cwd", cwd ? cwd : "/");
	json_key(g, "capabilities");
	yajl_gen_map_open(g);
	const char *keys[] = {"bounding", "effective", "permitted", "inheritable", "ambient"};
	const uint64_t sets[] = {s->caps.bounding, s->caps.effective, s->caps.permitted,
				 s->caps.inheritable, s->caps.ambient};
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		_cleanup_strv_ char **names = lc_caps_to_names(sets[i]);
		o_strv(g, keys[i], (const char *const *)names);
	}
	yajl_gen_map_close(g);
	if (s->n_rlimits) {
		json_key(g, "rlimits");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < s->n_rlimits; i++) {
			yajl_gen_map_open(g);
			json_kv_str(g, "type", ctr_rlimit_name(s->rlimits[i].resource));
			o_u64(g, "hard", s->rlimits[i].hard);
			o_u64(g, "soft", s->rlimits[i].soft);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	json_kv_bool(g, "noNewPrivileges", s->no_new_privs);
	if (s->apparmor_profile)
		json_kv_str(g, "apparmorProfile", s->apparmor_profile);
	if (s->has_oom_score_adj)
		json_kv_int(g, "oomScoreAdj", s->oom_score_adj);
	yajl_gen_map_close(g);
}

/* The runtime's own mounts come first; returns how many. */
static size_t o_mounts(yajl_gen g, const struct ctr_spec *s)
{
	size_t own = 7;
	json_key(g, "mounts");
	yajl_gen_array_open(g);
	/* What husk's launcher mounts itself (runtime/launcher/fs.c), which an
	 * OCI runtime mounts only when the config lists it. */
	o_mount(g, "/proc", "proc", "proc", "nosuid,noexec,nodev");
	o_mount(g, "/dev", "tmpfs", "tmpfs", "nosuid,strictatime,mode=755,size=65536k");
	o_mount(g, "/dev/pts", "devpts", "devpts",
		"nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5");
	if (s->shm_path)
		o_mount(g, "/dev/shm", "bind", s->shm_path, "rbind,rprivate");
	else
		o_mount(g, "/dev/shm", "tmpfs", "shm", "nosuid,noexec,nodev,mode=1777,size=65536k");
	o_mount(g, "/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev");
	o_mount(g, "/sys", "sysfs", "sysfs",
		s->privileged ? "nosuid,noexec,nodev,rw" : "nosuid,noexec,nodev,ro");
	o_mount(g, "/sys/fs/cgroup", "cgroup", "cgroup",
		s->privileged ? "nosuid,noexec,nodev,relatime,rw"
			      : "nosuid,noexec,nodev,relatime,ro");
	const char *files[][2] = {{s->hostname_path, "/etc/hostname"},
				  {s->hosts_path, "/etc/hosts"},
				  {s->resolv_path, "/etc/resolv.conf"}};
	for (size_t i = 0; i < ARRAY_SIZE(files); i++)
		if (files[i][0]) {
			o_mount(g, files[i][1], "bind", files[i][0],
				s->readonly_rootfs ? "bind,rprivate,ro" : "bind,rprivate");
			own++;
		}
	for (size_t i = 0; i < s->n_mounts; i++) {
		const struct ctr_mount *m = &s->mounts[i];
		yajl_gen_map_open(g);
		json_kv_str(g, "destination", m->destination);
		json_kv_str(g, "type", m->type ? m->type : (m->bind ? "bind" : "none"));
		json_kv_str(g, "source", m->source ? m->source : (m->type ? m->type : "none"));
		ctr_mount_gen_options(g, m);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	return own;
}

static void o_idmaps(yajl_gen g, const char *key, const struct ctr_idmap *m, size_t n)
{
	if (!n)
		return;
	json_key(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		yajl_gen_map_open(g);
		json_kv_int(g, "containerID", m[i].container_id);
		json_kv_int(g, "hostID", m[i].host_id);
		json_kv_int(g, "size", m[i].size);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

static void o_device_rule(yajl_gen g, bool allow, char type, int64_t major, int64_t minor,
			  const char *access)
{
	yajl_gen_map_open(g);
	json_kv_bool(g, "allow", allow);
	if (type && type != 'a') {
		char t[2] = {type, '\0'};
		json_kv_str(g, "type", t);
	}
	if (major >= 0)
		json_kv_int(g, "major", major);
	if (minor >= 0)
		json_kv_int(g, "minor", minor);
	json_kv_str(g, "access", access);
	yajl_gen_map_close(g);
}

static void o_resource_limits(yajl_gen g, const struct cg_resources *r);

static void o_resources(yajl_gen g, const struct ctr_oci_extra *x)
{
	const struct cg_resources *r = x->resources;
	json_key(g, "resources");
	yajl_gen_map_open(g);
	json_key(g, "devices");
	yajl_gen_array_open(g);
	if (x->allow_all_devices) {
		o_device_rule(g, true, 'a', -1, -1, "rwm");
	} else {
		o_device_rule(g, false, 'a', -1, -1, "rwm");
		for (size_t i = 0; i < x->n_device_rules; i++) {
			const struct cg_device_rule *d = &x->device_rules[i];
			o_device_rule(g, true, d->type, d->major, d->minor, d->access);
		}
	}
	yajl_gen_array_close(g);
	if (r)
		o_resource_limits(g, r);
	yajl_gen_map_close(g);
}

/* The keys of linux.resources after devices: those set in r. */
static void o_resource_limits(yajl_gen g, const struct cg_resources *r)
{
	if (r->memory_limit != CG_UNSET || r->memory_swap_limit != CG_UNSET) {
		json_key(g, "memory");
		yajl_gen_map_open(g);
		if (r->memory_limit != CG_UNSET)
			json_kv_int(g, "limit", r->memory_limit); /* CG_MAX is -1, as OCI */
		if (r->memory_swap_limit != CG_UNSET)
			json_kv_int(g, "swap", r->memory_swap_limit);
		yajl_gen_map_close(g);
	}
	if (r->cpu_shares != CG_UNSET || r->cpu_quota != CG_UNSET || r->cpu_period != CG_UNSET ||
	    r->cpuset_cpus || r->cpuset_mems) {
		json_key(g, "cpu");
		yajl_gen_map_open(g);
		if (r->cpu_shares != CG_UNSET && r->cpu_shares >= 0)
			o_u64(g, "shares", (uint64_t)r->cpu_shares);
		if (r->cpu_quota != CG_UNSET)
			json_kv_int(g, "quota", r->cpu_quota);
		if (r->cpu_period != CG_UNSET && r->cpu_period >= 0)
			o_u64(g, "period", (uint64_t)r->cpu_period);
		if (r->cpuset_cpus)
			json_kv_str(g, "cpus", r->cpuset_cpus);
		if (r->cpuset_mems)
			json_kv_str(g, "mems", r->cpuset_mems);
		yajl_gen_map_close(g);
	}
	if (r->pids_limit != CG_UNSET) {
		json_key(g, "pids");
		yajl_gen_map_open(g);
		json_kv_int(g, "limit", r->pids_limit);
		yajl_gen_map_close(g);
	}
	if (r->n_hugepages) {
		json_key(g, "hugepageLimits");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_hugepages; i++) {
			if (r->hugepages[i].limit < 0)
				continue; /* CG_MAX: no limit is the default */
			yajl_gen_map_open(g);
			json_kv_str(g, "pageSize", r->hugepages[i].page_size);
			o_u64(g, "limit", (uint64_t)r->hugepages[i].limit);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	if (r->n_unified) {
		json_key(g, "unified");
		yajl_gen_map_open(g);
		for (size_t i = 0; i < r->n_unified; i++)
			json_kv_str(g, r->unified[i].key, r->unified[i].value);
		yajl_gen_map_close(g);
	}
}

static int o_seccomp(yajl_gen g, const struct ctr_spec *s, struct husk_error *err)
{
	if (s->seccomp == LC_SECCOMP_UNCONFINED)
		return 0;
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p = NULL;
	if (s->seccomp == LC_SECCOMP_RUNTIME_DEFAULT) {
		p = lc_seccomp_runtime_default();
	} else {
		int r = lc_seccomp_parse_file(s->seccomp_profile, &p, err);
		if (r < 0)
			return r;
	}
	json_key(g, "seccomp");
	lc_seccomp_gen_oci(g, p, s->caps.bounding);
	return 0;
}

static int o_linux(yajl_gen g, const struct ctr_spec *s, const struct ctr_oci_extra *x,
		   struct husk_error *err)
{
	json_key(g, "linux");
	yajl_gen_map_open(g);
	json_key(g, "namespaces");
	yajl_gen_array_open(g);
	for (int i = 0; i < CTR_NS_COUNT; i++) {
		const struct ctr_namespace *ns = &s->ns[i];
		if (ns->mode == CTR_NS_HOST)
			continue;
		yajl_gen_map_open(g);
		json_kv_str(g, "type", oci_ns_types[i]);
		if (ns->mode == CTR_NS_JOIN)
			json_kv_str(g, "path", ns->path);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (s->n_uid_map || s->n_gid_map) {
		o_idmaps(g, "uidMappings", s->uid_map, s->n_uid_map);
		o_idmaps(g, "gidMappings", s->gid_map, s->n_gid_map);
	} else {
		o_idmaps(g, "uidMappings", x->uid_map, x->n_uid_map);
		o_idmaps(g, "gidMappings", x->gid_map, x->n_gid_map);
	}
	json_key(g, "devices");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < s->n_devices; i++) {
		const struct ctr_device *d = &s->devices[i];
		char type[2] = {d->type, '\0'};
		yajl_gen_map_open(g);
		json_kv_str(g, "path", d->path);
		json_kv_str(g, "type", type);
		if (d->type != 'p') {
			json_kv_int(g, "major", d->major);
			json_kv_int(g, "minor", d->minor);
		}
		json_kv_int(g, "fileMode", d->file_mode & 0777);
		json_kv_int(g, "uid", d->uid);
		json_kv_int(g, "gid", d->gid);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	if (x->cgroups_path)
		json_kv_str(g, "cgroupsPath", x->cgroups_path);
	o_resources(g, x);
	json_kv_str(g, "rootfsPropagation", oci_root_props[s->rootfs_propagation]);
	int r = o_seccomp(g, s, err);
	if (r < 0)
		return r;
	json_key(g, "sysctl");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < s->n_sysctls; i++)
		json_kv_str(g, s->sysctls[i].key, s->sysctls[i].value);
	yajl_gen_map_close(g);
	o_strv(g, "maskedPaths",
	       s->masked_paths ? (const char *const *)s->masked_paths : ctr_default_masked_paths);
	o_strv(g, "readonlyPaths",
	       s->readonly_paths ? (const char *const *)s->readonly_paths
				 : ctr_default_readonly_paths);
	yajl_gen_map_close(g);
	return 0;
}

static void o_ann_bool(yajl_gen g, const char *key, bool v)
{
	if (v)
		json_kv_str(g, key, "true");
}

static void o_ann_str(yajl_gen g, const char *key, const char *v)
{
	if (v)
		json_kv_str(g, key, v);
}

/* What husk's launcher needs and OCI has no field for (runtime/launcher/launcher.h
 * lists the keys). */
static void o_husk_annotations(yajl_gen g, const struct ctr_spec *s, size_t own)
{
	o_ann_str(g, CTR_ANN_ID, s->id);
	_cleanup_free_ char *n = xasprintf("%zu", own);
	json_kv_str(g, CTR_ANN_RUNTIME_MOUNTS, n);
	o_ann_bool(g, CTR_ANN_PRIVILEGED, s->privileged);
	o_ann_bool(g, CTR_ANN_IDMAPPED, s->idmapped_mounts);
	o_ann_bool(g, CTR_ANN_STDIN, s->stdin_open);
	o_ann_bool(g, CTR_ANN_STDIN_ONCE, s->stdin_once);
	if (s->seccomp == LC_SECCOMP_LOCALHOST)
		o_ann_str(g, CTR_ANN_SECCOMP_PROFILE, s->seccomp_profile);
	if (s->seccomp != LC_SECCOMP_UNCONFINED)
		o_ann_str(g, CTR_ANN_SECCOMP_FILTER, s->seccomp_filter);
	if (s->cgroup_procs) {
		_cleanup_gen_ yajl_gen l = json_gen_new(false);
		o_strv_bare(l, (const char *const *)s->cgroup_procs);
		_cleanup_free_ char *text = json_gen_steal(l);
		json_kv_str(g, CTR_ANN_CGROUP_PROCS, text);
	}
	bool sources = false;
	for (size_t i = 0; i < s->n_devices; i++)
		sources = sources || s->devices[i].host_path;
	if (sources) {
		_cleanup_gen_ yajl_gen m = json_gen_new(false);
		yajl_gen_map_open(m);
		for (size_t i = 0; i < s->n_devices; i++)
			if (s->devices[i].host_path)
				json_kv_str(m, s->devices[i].path, s->devices[i].host_path);
		yajl_gen_map_close(m);
		_cleanup_free_ char *text = json_gen_steal(m);
		json_kv_str(g, CTR_ANN_DEVICE_SOURCES, text);
	}
	o_ann_str(g, CTR_ANN_STATE_DIR, s->state_dir);
	o_ann_str(g, CTR_ANN_LOG_PATH, s->log_path);
	o_ann_str(g, CTR_ANN_OOM_FILE, s->oom_file);
	o_ann_str(g, CTR_ANN_MOUNT_TEMPLATE, s->mount_template);
	if (s->oci_path) {
		_cleanup_gen_ yajl_gen o = json_gen_new(false);
		yajl_gen_map_open(o);
		json_kv_str(o, "path", s->oci_path);
		if (s->oci_root)
			json_kv_str(o, "root", s->oci_root);
		o_strv(o, "args", (const char *const *)s->oci_args);
		json_kv_bool(o, "systemd_cgroup", s->oci_systemd_cgroup);
		yajl_gen_map_close(o);
		_cleanup_free_ char *text = json_gen_steal(o);
		json_kv_str(g, CTR_ANN_OCI_RUNTIME, text);
	}
}

int ctr_oci_config(const struct ctr_spec *s, const struct ctr_oci_extra *x, char **ret,
		   struct husk_error *err)
{
	static const struct ctr_oci_extra none = {0};
	if (!x)
		x = &none;
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	json_kv_str(g, "ociVersion", CTR_OCI_VERSION);
	json_key(g, "process");
	o_process(g, s, s->args, s->env, s->cwd, s->tty, s->console_height, s->console_width);
	json_key(g, "root");
	yajl_gen_map_open(g);
	json_kv_str(g, "path", s->rootfs);
	json_kv_bool(g, "readonly", s->readonly_rootfs);
	yajl_gen_map_close(g);
	/* A hostname needs a UTS namespace other than the host's (a
	 * host-network pod shares the host's): runc refuses it otherwise,
	 * and husk's launcher does not set it then either. */
	if (!isempty(s->hostname) && s->ns[CTR_NS_UTS].mode != CTR_NS_HOST)
		json_kv_str(g, "hostname", s->hostname);
	size_t own = o_mounts(g, s);
	json_key(g, "annotations");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < x->n_annotations; i++)
		if (!startswith(x->annotations[i].key, CTR_ANN_PREFIX))
			json_kv_str(g, x->annotations[i].key, x->annotations[i].value);
	o_husk_annotations(g, s, own);
	yajl_gen_map_close(g);
	int r = o_linux(g, s, x, err);
	if (r < 0)
		return husk_error_prefix(err, "OCI config");
	yajl_gen_map_close(g);
	*ret = json_gen_steal(g);
	return 0;
}

char *ctr_oci_process(const struct ctr_spec *s, char *const *args, char *const *env,
		      const char *cwd, bool tty, unsigned rows, unsigned cols)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	o_process(g, s, args, env ? env : s->env, cwd ? cwd : s->cwd, tty, rows, cols);
	return json_gen_steal(g);
}

char *ctr_oci_resources(const struct cg_resources *r)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	o_resource_limits(g, r);
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}

/* old with upd's keys over it, objects merged key by key. */
static void gen_merged(yajl_gen g, yajl_val old, yajl_val upd)
{
	if (!YAJL_IS_OBJECT(old) || !YAJL_IS_OBJECT(upd)) {
		json_gen_tree(g, upd);
		return;
	}
	yajl_gen_map_open(g);
	for (size_t i = 0; i < old->u.object.len; i++) {
		const char *k = old->u.object.keys[i];
		json_key(g, k);
		yajl_val u = json_get(upd, k);
		if (u)
			gen_merged(g, old->u.object.values[i], u);
		else
			json_gen_tree(g, old->u.object.values[i]);
	}
	for (size_t i = 0; i < upd->u.object.len; i++) {
		if (json_get(old, upd->u.object.keys[i]))
			continue;
		json_key(g, upd->u.object.keys[i]);
		json_gen_tree(g, upd->u.object.values[i]);
	}
	yajl_gen_map_close(g);
}

int ctr_oci_config_set_resources(const char *config, size_t len, const struct cg_resources *r,
				 char **ret, struct husk_error *err)
{
	_cleanup_json_ yajl_val root = NULL;
	if (json_parse(config, len, "config.json", &root, err) < 0)
		return -err->code;
	yajl_val linux = json_get(root, "linux");
	if (!YAJL_IS_OBJECT(root) || !YAJL_IS_OBJECT(linux))
		return husk_error_set(err, EINVAL, "config.json: no linux object");
	_cleanup_free_ char *text = ctr_oci_resources(r);
	_cleanup_json_ yajl_val upd = NULL;
	if (json_parse(text, strlen(text), "resources", &upd, err) < 0)
		return -err->code;
	yajl_val old = json_get(linux, "resources");
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < root->u.object.len; i++) {
		yajl_val v = root->u.object.values[i];
		json_key(g, root->u.object.keys[i]);
		if (v != linux) {
			json_gen_tree(g, v);
			continue;
		}
		yajl_gen_map_open(g);
		for (size_t j = 0; j < linux->u.object.len; j++) {
			json_key(g, linux->u.object.keys[j]);
			if (linux->u.object.values[j] == old)
				gen_merged(g, old, upd);
			else
				json_gen_tree(g, linux->u.object.values[j]);
		}
		if (!old) {
			json_key(g, "resources");
			json_gen_tree(g, upd);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	*ret = json_gen_steal(g);
	return 0;
}
