/* Containers: the manager's container lifecycle. A container is a cgroup
 * beneath its pod's, a root file system from the image layer, a spec file
 * under <state>/containers/ID and a husk-shim that launches and watches the
 * process. A monitor thread notices exits and records them. */
#include <errno.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/service.h"
#include "runtime/kview.h"
#include "runtime/launcher/launcher.h"
#include "runtime/oci.h"
#include "runtime/runtime-internal.h"
#include "runtime/shim_client.h"

#define SHIM_START_TIMEOUT_NS (30LL * 1000000000LL)
#define KILL_WAIT_NS (10LL * 1000000000LL)

char *rt_ctr_dir(struct rt *rt, const char *id)
{
	return xasprintf("%s/%s", rt->containers_dir, id);
}

static int signal_parse(const char *s)
{
	static const struct {
		const char *name;
		int sig;
	} table[] = {
	    {"HUP", SIGHUP},	 {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"KILL", SIGKILL},
	    {"USR1", SIGUSR1},	 {"USR2", SIGUSR2}, {"TERM", SIGTERM}, {"STOP", SIGSTOP},
	    {"WINCH", SIGWINCH}, {"PWR", SIGPWR},
	};
	if (isempty(s))
		return SIGTERM;
	char *end;
	long n = strtol(s, &end, 10);
	if (*end == '\0' && n > 0 && n < NSIG)
		return (int)n;
	const char *name = startswith(s, "SIG") ? s + 3 : s;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (strcasecmp(name, table[i].name) == 0)
			return table[i].sig;
	if (startswith(name, "RTMIN+")) {
		n = strtol(name + 6, &end, 10);
		if (*end == '\0' && SIGRTMIN + n <= SIGRTMAX)
			return SIGRTMIN + (int)n;
	}
	return -1;
}

/* ---- state transitions ---- */

struct exit_update {
	const struct ctr_exit *ex;
	const char *reason, *message;
};

/* Records an exit once: a record that has EXITED already is left as it is
 * (-EALREADY), so the monitor and a stop may both try. */
static int apply_exit(struct ctr_record *rec, void *data, struct husk_error *err)
{
	const struct exit_update *u = data;
	if (rec->state == CTR_STATE_EXITED)
		return husk_error_set(err, EALREADY, "container '%s' has exited already", rec->id);
	rec->state = CTR_STATE_EXITED;
	rec->exit_code = u->ex->exit_code;
	rec->finished_at = u->ex->exited_at ? u->ex->exited_at : now_real_ns();
	free(rec->reason);
	free(rec->message);
	if (u->reason)
		rec->reason = xstrdup(u->reason);
	else if (u->ex->oom_killed)
		rec->reason = xstrdup("OOMKilled");
	else
		rec->reason = xstrdup(u->ex->exit_code == 0 ? "Completed" : "Error");
	rec->message = u->message ? xstrdup(u->message) : NULL;
	return 0;
}

/* Bring a RUNNING record up to date with its shim: the exit file, or a
 * shim and process that are both gone. Returns true when it exited now. */
bool rt_ctr_refresh(struct rt *rt, const struct ctr_record *rec)
{
	if (rec->state != CTR_STATE_RUNNING)
		return false;
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	struct ctr_exit ex = {0};
	struct exit_update u = {&ex, NULL, NULL};
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (ctr_shim_read_exit(dir, &ex, &e) < 0) {
		if (e.code != ENOENT)
			return false;
		bool alive = proc_alive(rec->pid, rec->pid_start_time);
		struct ctr_pidinfo shim = {0};
		bool known_shim = ctr_shim_read_shim_pid(dir, &shim, NULL) == 0;
		if (known_shim && proc_alive(shim.pid, shim.start_time))
			return false; /* running, or the shim is about to write the file */
		if (alive && !known_shim)
			return false;
		if (ctr_shim_read_exit(dir, &ex, NULL) < 0) {
			ex = (struct ctr_exit){.exit_code = 255, .exited_at = now_real_ns()};
			u.reason = "Error";
			u.message =
			    "husk-shim and the container process are gone; exit status unknown";
			if (alive) {
				/* The shim was killed under a live container: nobody
				 * reads its output or can report its exit any more. */
				_cleanup_(cg_group_freep) struct cg_group *cg =
				    rt_cgroup_of(rt, &rec->cgroup);
				if (cg && cg_group_kill(cg, 0, &e) < 0)
					log_warn("container=%s: %s", rec->id, e.msg);
				husk_error_clear(&e);
				u.message = "husk-shim died; husk killed the container";
			}
		}
	}
	if (state_ctr_modify(rt->store, rec->id, apply_exit, &u, &e) < 0) {
		if (e.code != EALREADY && e.code != ENOENT)
			log_warn("container=%s: record exit: %s", rec->id, e.msg);
		return false;
	}
	log_info("container exited container=%s exit_code=%d", rec->id, ex.exit_code);
	/* Processes the container left in its cgroup (shared PID namespace). */
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &rec->cgroup);
	if (cg && cg_group_kill(cg, 0, &e) < 0)
		log_warn("container=%s: %s", rec->id, e.msg);
	rt_emit(rt, RT_EVENT_STOPPED, rec->id, rec->pod_id);
	return true;
}

void rt_ctr_refresh_id(struct rt *rt, const char *id)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, id, &rec, NULL) == 0)
		rt_ctr_refresh(rt, rec);
}

/* ---- create ---- */

static void add_pod_namespaces(struct ctr_spec *spec, const struct pod_record *pod)
{
	struct {
		enum ctr_ns_kind kind;
		const char *pin;
	} ns[] = {
	    {CTR_NS_USER, pod->sandbox.user_ns},
	    {CTR_NS_NET, pod->sandbox.net_ns},
	    {CTR_NS_IPC, pod->sandbox.ipc_ns},
	    {CTR_NS_UTS, pod->sandbox.uts_ns},
	};
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		free(spec->ns[ns[i].kind].path);
		spec->ns[ns[i].kind].path = NULL;
		if (ns[i].pin) {
			spec->ns[ns[i].kind].mode = CTR_NS_JOIN;
			spec->ns[ns[i].kind].path = xstrdup(ns[i].pin);
		} else {
			spec->ns[ns[i].kind].mode = CTR_NS_HOST;
		}
	}
	/* Files keep their host owners on disk and read as the pod's ids. */
	spec->idmapped_mounts = pod->sandbox.user_ns != NULL;
}

static int set_pid_namespace(struct rt *rt, struct ctr_spec *spec, const struct pod_record *pod,
			     const struct rt_ctr_config *c, struct husk_error *err)
{
	struct ctr_namespace *ns = &spec->ns[CTR_NS_PID];
	free(ns->path);
	ns->path = NULL;
	switch (c->pid_mode) {
	case POD_NS_CONTAINER:
		ns->mode = CTR_NS_NEW;
		return 0;
	case POD_NS_NODE:
		ns->mode = CTR_NS_HOST;
		return 0;
	case POD_NS_POD:
		if (!pod->sandbox.pid_ns) {
			/* POD is protobuf's zero value, so configs that set other
			 * namespace options send it without meaning it. With no
			 * pod-wide PID namespace (no pause process here), the
			 * container's own is what runtimes with a pause give too:
			 * nothing of the other containers is visible. */
			ns->mode = CTR_NS_NEW;
			return 0;
		}
		ns->mode = CTR_NS_JOIN;
		ns->path = xstrdup(pod->sandbox.pid_ns);
		return 0;
	case POD_NS_TARGET: {
		if (isempty(c->pid_target))
			return husk_error_set(
			    err, EINVAL, "namespace_options.pid is TARGET but target_id is empty");
		_cleanup_(ctr_record_freep) struct ctr_record *t = NULL;
		if (state_ctr_get(rt->store, c->pid_target, &t, err) < 0)
			return husk_error_prefix(err, "namespace_options.target_id");
		if (rt_ctr_refresh(rt, t)) {
			_cleanup_free_ char *tid = xstrdup(t->id);
			ctr_record_free(steal_ptr(&t));
			if (state_ctr_get(rt->store, tid, &t, err) < 0)
				return -err->code;
		}
		if (t->state != CTR_STATE_RUNNING || !streq(t->pod_id, pod->id))
			return husk_error_set(err, EBUSY,
					      "namespace_options.target_id '%s' is not a running "
					      "container of pod sandbox '%s'",
					      c->pid_target, pod->id);
		ns->mode = CTR_NS_JOIN;
		ns->path = xasprintf("/proc/%d/ns/pid", (int)t->pid);
		return 0;
	}
	}
	return husk_error_set(err, EINVAL, "namespace_options.pid: bad mode %d", (int)c->pid_mode);
}

/* CRI MountPropagation values in rt_mount.propagation */
enum { RT_PROP_PRIVATE = 0, RT_PROP_HOST_TO_CONTAINER = 1, RT_PROP_BIDIRECTIONAL = 2 };

/* A volume whose mounts propagate needs a host source that can pass them
 * on (as runc and containerd check): for BIDIRECTIONAL (rshared) the
 * source's mount must be shared, so the container's bind joins its peer
 * group; for HOST_TO_CONTAINER (rslave) shared or a slave itself. Like
 * Kubernetes, only a privileged container gets BIDIRECTIONAL: its mounts
 * land on the host. A pod with a user namespace is never privileged (and
 * its mounts could not reach the host's namespace anyway): say so. */
static int check_propagation(const struct rt_mount *m, bool privileged, bool userns,
			     struct husk_error *err)
{
	bool both = m->propagation == RT_PROP_BIDIRECTIONAL;
	if (both && userns)
		return husk_error_set(err, EINVAL,
				      "mount '%s': propagation BIDIRECTIONAL needs a privileged "
				      "container, which a pod with a user namespace "
				      "(userns_options mode POD) cannot have",
				      m->container_path);
	if (both && !privileged)
		return husk_error_set(err, EINVAL,
				      "mount '%s': propagation BIDIRECTIONAL needs a privileged "
				      "container",
				      m->container_path);
	_cleanup_free_ char *point = NULL;
	bool shared, slave;
	if (rt_mount_of(m->host_path, &point, &shared, &slave, err) < 0)
		return husk_error_prefix(err, "mount '%s': host_path", m->container_path);
	if (both && !shared)
		return husk_error_set(err, EXDEV,
				      "mount '%s': path '%s' is mounted on '%s' but it is not a "
				      "shared mount",
				      m->container_path, m->host_path, point);
	if (!both && !shared && !slave)
		return husk_error_set(err, EXDEV,
				      "mount '%s': path '%s' is mounted on '%s' but it is not a "
				      "shared or slave mount",
				      m->container_path, m->host_path, point);
	return 0;
}

static int add_mounts(struct ctr_spec *spec, const struct rt_ctr_config *c, struct husk_error *err)
{
	static const enum ctr_propagation props[] = {CTR_PROP_RPRIVATE, CTR_PROP_RSLAVE,
						     CTR_PROP_RSHARED};
	if (c->n_mounts > CTR_SPEC_MAX_MOUNTS)
		return husk_error_set(err, EINVAL, "mounts: more than %d", CTR_SPEC_MAX_MOUNTS);
	spec->mounts = xnew(struct ctr_mount, c->n_mounts + 1);
	for (size_t i = 0; i < c->n_mounts; i++) {
		const struct rt_mount *m = &c->mounts[i];
		if (isempty(m->container_path) || m->container_path[0] != '/')
			return husk_error_set(err, EINVAL,
					      "mount %zu: container_path '%s' is not absolute", i,
					      m->container_path ? m->container_path : "");
		if (ctr_mount_destination_check(m->container_path, c->privileged, err) < 0)
			return husk_error_prefix(err, "mounts[%zu].container_path", i);
		if (isempty(m->host_path) || m->host_path[0] != '/')
			return husk_error_set(err, EINVAL,
					      "mount '%s': host_path '%s' is not absolute",
					      m->container_path, m->host_path ? m->host_path : "");
		struct stat st;
		if (stat(m->host_path, &st) < 0)
			return husk_error_errno(err, EINVAL, "mount '%s': host_path '%s'",
						m->container_path, m->host_path);
		if (m->propagation < 0 || m->propagation > 2)
			return husk_error_set(err, EINVAL, "mount '%s': bad propagation %d",
					      m->container_path, m->propagation);
		if (m->propagation != RT_PROP_PRIVATE &&
		    check_propagation(m, c->privileged, spec->idmapped_mounts, err) < 0)
			return -err->code;
		if (m->propagation == RT_PROP_BIDIRECTIONAL)
			spec->rootfs_propagation = CTR_PROP_RSHARED;
		struct ctr_mount *cm = &spec->mounts[spec->n_mounts++];
		cm->destination = xstrdup(m->container_path);
		cm->type = xstrdup("bind");
		cm->source = xstrdup(m->host_path);
		cm->bind = true;
		cm->recursive = true;
		cm->flags = m->readonly ? MS_RDONLY : 0;
		cm->propagation = props[m->propagation];
	}
	return 0;
}

/* What CreateContainer may ask for itself; a privileged container adds the
 * host's devices on top, up to CTR_SPEC_MAX_DEVICES. */
#define RT_MAX_CONFIG_DEVICES 512
#define HOST_DEV_MAX_DEPTH 8

static void add_device_node(struct ctr_spec *spec, const char *path, const struct stat *st)
{
	struct ctr_device *cd = &spec->devices[spec->n_devices++];
	*cd = (struct ctr_device){
	    .path = xstrdup(path),
	    .type = S_ISCHR(st->st_mode) ? 'c' : 'b',
	    .major = major(st->st_rdev),
	    .minor = minor(st->st_rdev),
	    .file_mode = st->st_mode & 07777,
	    .uid = st->st_uid,
	    .gid = st->st_gid,
	    .host_path = xstrdup(path),
	};
}

/* Every device node of the host's /dev for a privileged container, as
 * containerd gives them: subdirectories too, but not the ones the launcher
 * mounts itself (pts, shm, mqueue) nor fd links, and not the console. */
static int add_host_devices(struct ctr_spec *spec, const char *dir, int depth,
			    struct husk_error *err)
{
	static const char *const skip[] = {"pts",  "shm",	  "mqueue", "fd",
					   ".lxc", ".lxd-mounts", ".udev",  "console"};
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(dir, NULL, &names, err) < 0)
		return husk_error_prefix(err, "privileged: host devices");
	for (size_t i = 0; names[i]; i++) {
		bool skipped = false;
		for (size_t k = 0; k < ARRAY_SIZE(skip) && !skipped; k++)
			skipped = streq(names[i], skip[k]);
		if (skipped)
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, names[i]);
		struct stat st;
		if (lstat(path, &st) < 0)
			continue; /* gone meanwhile */
		if (S_ISDIR(st.st_mode) && depth < HOST_DEV_MAX_DEPTH) {
			int r = add_host_devices(spec, path, depth + 1, err);
			if (r < 0)
				return r;
			continue;
		}
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			continue;
		if (spec->n_devices >= CTR_SPEC_MAX_DEVICES)
			return husk_error_set(err, EINVAL,
					      "privileged: the host has more than %d devices",
					      CTR_SPEC_MAX_DEVICES);
		add_device_node(spec, path, &st);
	}
	return 0;
}

static int add_devices(struct ctr_spec *spec, const struct rt_ctr_config *c, struct husk_error *err)
{
	if (c->n_devices > RT_MAX_CONFIG_DEVICES)
		return husk_error_set(err, EINVAL, "devices: more than %d", RT_MAX_CONFIG_DEVICES);
	spec->devices = xnew(struct ctr_device, CTR_SPEC_MAX_DEVICES + 1);
	/* The host's first: a device the config names replaces the host's
	 * node at its path (the launcher creates them in order). */
	if (c->privileged && add_host_devices(spec, "/dev", 0, err) < 0)
		return -err->code;
	for (size_t i = 0; i < c->n_devices; i++) {
		const struct rt_device *d = &c->devices[i];
		struct stat st;
		if (isempty(d->host_path) || stat(d->host_path, &st) < 0)
			return husk_error_errno(err, EINVAL, "device '%s': host_path '%s'",
						d->container_path ? d->container_path : "",
						d->host_path ? d->host_path : "");
		if (!S_ISCHR(st.st_mode) && !S_ISBLK(st.st_mode))
			return husk_error_set(err, EINVAL, "device '%s' is not a device node",
					      d->host_path);
		const char *path = isempty(d->container_path) ? d->host_path : d->container_path;
		if (path[0] != '/')
			return husk_error_set(err, EINVAL,
					      "device '%s': container_path is not absolute", path);
		if (spec->n_devices >= CTR_SPEC_MAX_DEVICES)
			return husk_error_set(err, EINVAL, "devices: more than %d in all",
					      CTR_SPEC_MAX_DEVICES);
		struct ctr_device *cd = &spec->devices[spec->n_devices++];
		cd->path = xstrdup(path);
		cd->type = S_ISCHR(st.st_mode) ? 'c' : 'b';
		cd->major = major(st.st_rdev);
		cd->minor = minor(st.st_rdev);
		cd->file_mode = st.st_mode & 07777;
		cd->host_path = xstrdup(d->host_path);
	}
	return 0;
}

/* The devices every container may use, as runc and containerd allow them:
 * mknod of any node (opening is what counts), the standard nodes, ptys. */
static const struct cg_device_rule default_device_rules[] = {
    {'c', -1, -1, "m"},	   {'b', -1, -1, "m"}, /* mknod, not open */
    {'c', 1, 3, "rwm"},	   {'c', 1, 5, "rwm"}, /* null, zero */
    {'c', 1, 7, "rwm"},	   {'c', 1, 8, "rwm"}, /* full, random */
    {'c', 1, 9, "rwm"},	   {'c', 5, 0, "rwm"}, /* urandom, tty */
    {'c', 5, 1, "rwm"},	   {'c', 5, 2, "rwm"}, /* console, ptmx */
    {'c', 136, -1, "rwm"},		       /* pts */
};

/* The device rules of a non-privileged container: the defaults and those
 * its config names, with the config's permissions. */
static int device_rules(const struct rt_ctr_config *c, const struct ctr_spec *spec,
			struct cg_device_rule **ret, size_t *ret_n, struct husk_error *err)
{
	size_t n = ARRAY_SIZE(default_device_rules);
	_cleanup_free_ struct cg_device_rule *rules =
	    xnew(struct cg_device_rule, n + spec->n_devices);
	memcpy(rules, default_device_rules, sizeof(default_device_rules));
	for (size_t i = 0; i < spec->n_devices; i++) {
		const struct ctr_device *d = &spec->devices[i];
		const char *perm = i < c->n_devices ? c->devices[i].permissions : NULL;
		if (isempty(perm))
			perm = "rwm";
		if (strlen(perm) > 3 || strspn(perm, "rwm") != strlen(perm))
			return husk_error_set(err, EINVAL,
					      "device '%s': permissions '%.16s' are not a subset "
					      "of 'rwm'",
					      d->path, perm);
		if (d->type == 'p')
			continue; /* a fifo is no device */
		struct cg_device_rule *r = &rules[n++];
		*r = (struct cg_device_rule){.type = d->type, .major = d->major, .minor = d->minor};
		snprintf(r->access, sizeof(r->access), "%s", perm);
	}
	*ret = steal_ptr(&rules);
	*ret_n = n;
	return 0;
}

/* Limit the devices of a non-privileged container to rules: the v1
 * devices controller's lists, or on v2 an eBPF filter attached to the
 * cgroup. Done at CreateContainer, before any process of the container (or
 * of an exec into it) can enter the cgroup. */
static int restrict_devices(const struct cg_group *cg, const struct cg_device_rule *rules, size_t n,
			    struct husk_error *err)
{
	int ret = cg_group_allow_devices(cg, rules, n, err);
	/* The kernel has no means at all (v1 without the devices controller,
	 * no bpf(2)): run unrestricted and say so once. */
	if (ret == -EOPNOTSUPP) {
		static bool warned;
		if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
			log_warn("containers get no device restriction: %s", err->msg);
		husk_error_clear(err);
		return 0;
	}
	return ret;
}

static char **strv_dup(char *const *v)
{
	char **out = xnew(char *, 1);
	for (size_t i = 0; v && v[i]; i++)
		out = strv_append(out, v[i]);
	return out;
}

/* The oom_score_adj of a running pid (the kernel's, after any clamp). */
bool rt_oom_score_adj(pid_t pid, int *ret)
{
	_cleanup_free_ char *path = xasprintf("/proc/%d/oom_score_adj", (int)pid);
	_cleanup_free_ char *text = NULL;
	if (pid <= 0 || fs_read_file(path, 64, &text, NULL, NULL) < 0)
		return false;
	char *end;
	long v = strtol(text, &end, 10);
	if (end == text || v < -1000 || v > 1000)
		return false;
	*ret = (int)v;
	return true;
}

static bool holds_cap(int cap)
{
	uint64_t perm = 0, bnd = 0;
	return lc_caps_get_own(&perm, &bnd) == 0 && (perm & LC_CAP_BIT(cap));
}

static int build_spec(struct rt *rt, const char *id, const struct pod_record *pod,
		      const struct rt_ctr_config *c, const char *rootfs, const struct cg_group *cg,
		      struct ctr_spec **ret, struct husk_error *err)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = ctr_spec_new();
	s->id = xstrdup(id);
	s->rootfs = xstrdup(rootfs);
	strv_free(s->args);
	s->args = strv_dup(c->args);
	if (!s->args[0])
		return husk_error_set(err, EINVAL,
				      "no command: neither the config nor the image gives one");
	strv_free(s->env);
	s->env = strv_dup(c->env);
	free(s->cwd);
	s->cwd = xstrdup(isempty(c->cwd) ? "/" : c->cwd);
	if (s->cwd[0] != '/')
		return husk_error_set(err, EINVAL, "working_dir '%s' is not absolute", s->cwd);

	struct lc_user_request ureq = {
	    .has_uid = c->has_uid,
	    .uid = c->uid,
	    .username = c->username,
	    .has_gid = c->has_gid,
	    .gid = c->gid,
	    .image_user = c->image_user,
	    .supplemental_groups = c->supplemental_groups,
	    .n_supplemental_groups = c->n_supplemental_groups,
	    .groups_strict = c->groups_strict,
	};
	struct lc_user u = {0};
	if (lc_user_resolve(rootfs, &ureq, &u, err) < 0)
		return -err->code;
	s->uid = u.uid;
	s->gid = u.gid;
	s->additional_gids = steal_ptr(&u.groups);
	s->n_additional_gids = u.n_groups;
	bool has_home = false;
	for (size_t i = 0; s->env[i]; i++)
		has_home |= startswith(s->env[i], "HOME=");
	if (!has_home) {
		_cleanup_free_ char *home = xasprintf("HOME=%s", u.home);
		s->env = strv_append(s->env, home);
	}
	lc_user_clear(&u);

	s->tty = c->tty;
	s->stdin_open = c->stdin_open;
	s->stdin_once = c->stdin_once;
	s->readonly_rootfs = c->readonly_rootfs;
	s->no_new_privs = c->no_new_privs;
	s->privileged = c->privileged;
	uint64_t caps = LC_CAPS_DEFAULT;
	if (c->privileged)
		caps = lc_caps_all();
	if (lc_caps_add_drop(caps, c->caps_add, c->caps_drop, &caps, err) < 0 ||
	    lc_caps_container(caps, c->caps_ambient, &s->caps, err) < 0)
		return husk_error_prefix(err, "capabilities");
	if (c->oci_path) {
		/* Capabilities huskd does not hold cannot be granted: husk's
		 * launcher drops them (runtime/launcher/launch.c, with a
		 * warning), an OCI runtime fails ("unable to apply caps", EPERM).
		 * The runtime is asked for what can be had, in config.json and
		 * for every process run in the container. */
		uint64_t own_perm, own_bnd;
		if (lc_caps_get_own(&own_perm, &own_bnd) == 0) {
			s->caps.bounding &= own_bnd;
			s->caps.permitted &= own_perm;
			s->caps.effective &= own_perm;
			s->caps.inheritable &= own_perm;
			s->caps.ambient &= own_perm;
		}
	}
	/* Privileged means no seccomp and no AppArmor, whatever was asked. */
	if (c->privileged) {
		s->seccomp = LC_SECCOMP_UNCONFINED;
	} else {
		s->seccomp = c->seccomp_mode;
		if (c->seccomp_profile)
			s->seccomp_profile = xstrdup(c->seccomp_profile);
		if (c->apparmor_profile)
			s->apparmor_profile = xstrdup(c->apparmor_profile);
	}
	if (c->privileged || c->masked_paths) {
		strv_free(s->masked_paths);
		s->masked_paths = c->privileged ? xnew(char *, 1) : strv_dup(c->masked_paths);
	}
	if (c->privileged || c->readonly_paths) {
		strv_free(s->readonly_paths);
		s->readonly_paths = c->privileged ? xnew(char *, 1) : strv_dup(c->readonly_paths);
	}
	if (c->has_oom_score_adj) {
		if (c->oom_score_adj < -1000 || c->oom_score_adj > 1000)
			return husk_error_set(err, EINVAL,
					      "linux.resources.oom_score_adj %d is not in "
					      "-1000..1000",
					      c->oom_score_adj);
		s->has_oom_score_adj = true;
		s->oom_score_adj = c->oom_score_adj;
		/* Lowering it below huskd's own needs CAP_SYS_RESOURCE; the
		 * launcher would clamp it anyway (as containerd does): clamp
		 * here so the spec and ContainerStatus say what is in force. */
		int own;
		if (rt_oom_score_adj(getpid(), &own) && c->oom_score_adj < own &&
		    !holds_cap(CAP_SYS_RESOURCE)) {
			log_warn("container=%s: oom_score_adj %d is below huskd's %d and needs "
				 "CAP_SYS_RESOURCE, which huskd lacks: clamped to %d",
				 id, c->oom_score_adj, own, own);
			s->oom_score_adj = own;
		}
	}

	if (pod->sandbox.user_ns && c->pid_mode == POD_NS_NODE)
		return husk_error_set(err, EINVAL,
				      "namespace_options.pid NODE: the pod has a user namespace, "
				      "which cannot share the host's PID namespace");
	add_pod_namespaces(s, pod);
	if (set_pid_namespace(rt, s, pod, c, err) < 0 || add_mounts(s, c, err) < 0 ||
	    add_devices(s, c, err) < 0)
		return -err->code;
	s->hostname = xstrdup(pod->sandbox.hostname ? pod->sandbox.hostname : "");
	s->shm_path = pod->sandbox.shm ? xstrdup(pod->sandbox.shm) : NULL;
	s->hostname_path = pod->sandbox.hostname_file ? xstrdup(pod->sandbox.hostname_file) : NULL;
	s->hosts_path = pod->sandbox.hosts_file ? xstrdup(pod->sandbox.hosts_file) : NULL;
	s->resolv_path = pod->sandbox.resolv_file ? xstrdup(pod->sandbox.resolv_file) : NULL;

	strv_free(s->cgroup_procs);
	s->cgroup_procs = cg_group_procs_files(cg);
	bool systemd = false;
	if (rt_systemd_mode(c, &systemd, err) < 0)
		return -err->code;
	if (systemd)
		rt_systemd_mode_apply(s, c);
	/* Its cgroup mounts show its own cgroups as roots (a private cgroup
	 * namespace): with write access they must be its own everywhere. */
	if ((systemd || c->privileged) && cg_group_add_unmanaged(cg, &s->cgroup_procs, err) < 0)
		return -err->code;
	_cleanup_free_ char *mem = cg_group_dir(cg, "memory");
	if (mem)
		s->oom_file = xasprintf("%s/%s", mem,
					rt_cgroup_version(rt) == CG_V2 ? "memory.events"
								       : "memory.oom_control");
	s->state_dir = rt_ctr_dir(rt, id);
	s->log_path = c->log_path ? xstrdup(c->log_path) : NULL;
	if (c->oci_path) {
		s->oci_path = xstrdup(c->oci_path);
		s->oci_root = xstrdup(c->oci_root);
		s->oci_args = strv_dup(c->oci_args);
		s->oci_systemd_cgroup = c->oci_systemd_cgroup;
	} else if (rt->mount_template) {
		s->mount_template = xstrdup(rt->mount_template);
	}
	if (ctr_spec_validate(s, err) < 0)
		return -err->code;
	*ret = steal_ptr(&s);
	return 0;
}

/* The bundle's config.json: the container's one description, which husk's
 * launcher and OCI runtimes run from, with the annotations containerd sets
 * for CRI and husk's own (io.husk.*, added by ctr_oci_config). */
static int write_oci_config(struct rt *rt, const char *dir, const struct pod_record *pod,
			    const struct rt_ctr_config *c, const struct ctr_spec *spec,
			    const struct cg_group *cg, const struct cg_device_rule *rules,
			    size_t n_rules, struct husk_error *err)
{
	struct cg_resources res;
	cg_resources_init(&res);
	if (c->resources)
		res = *c->resources; /* a shallow copy: nothing here is freed */
	if (rt->opts.pids_limit > 0 && res.pids_limit == CG_UNSET)
		res.pids_limit = rt->opts.pids_limit;
	/* Without a hugetlb controller in the container's cgroup, husk took
	 * the hugepage limits only where they hold anyway (a limit of 0 on a
	 * size the host has no pages of); an OCI runtime given them fails to
	 * find the controller ("cannot set hugetlb limit"). */
	_cleanup_free_ char *hugetlb = cg_group_dir(cg, "hugetlb");
	if (!hugetlb)
		res.n_hugepages = 0;
	size_t n_user = c->annotations ? c->annotations->n : 0;
	_cleanup_free_ struct ctr_oci_kv *ann = xnew(struct ctr_oci_kv, n_user + 7);
	size_t n = 0;
	for (size_t i = 0; i < n_user; i++) {
		/* The io.kubernetes.cri.* keys are the runtime's to set. */
		if (startswith(c->annotations->items[i].key, "io.kubernetes.cri."))
			continue;
		ann[n++] = (struct ctr_oci_kv){c->annotations->items[i].key,
					       c->annotations->items[i].value};
	}
	const struct ctr_oci_kv cri[] = {
	    {"io.kubernetes.cri.container-type", "container"},
	    {"io.kubernetes.cri.container-name", c->name},
	    {"io.kubernetes.cri.image-name", c->image ? c->image : ""},
	    {"io.kubernetes.cri.sandbox-id", pod->id},
	    {"io.kubernetes.cri.sandbox-name", pod->name ? pod->name : ""},
	    {"io.kubernetes.cri.sandbox-namespace", pod->namespace ? pod->namespace : ""},
	    {"io.kubernetes.cri.sandbox-uid", pod->uid ? pod->uid : ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cri); i++)
		ann[n++] = cri[i];
	/* cgroupfs: absolute (an OCI runtime takes a relative cgroupsPath as
	 * relative to its own cgroup). systemd (--systemd-cgroup):
	 * "slice:prefix:name" for husk's ".../<pod>.slice/husk-<id>.scope". */
	_cleanup_free_ char *cg_path = xasprintf("/%s", cg_group_path(cg));
	if (c->oci_systemd_cgroup) {
		char *sd = ctr_oci_systemd_cgroups_path(cg_path);
		if (sd) {
			free(cg_path);
			cg_path = sd;
		}
	}
	/* A pod's user namespace, for an OCI runtime: the mappings it wants
	 * beside the path it joins (husk-shim gives it idmapped bind sources,
	 * see ctr_oci_idmap_prepare). */
	_cleanup_free_ struct ctr_idmap *uid_map = NULL, *gid_map = NULL;
	size_t n_uid_map = 0, n_gid_map = 0;
	if (spec->oci_path && spec->idmapped_mounts &&
	    ctr_oci_userns_maps(spec->ns[CTR_NS_USER].path, &uid_map, &n_uid_map, &gid_map,
				&n_gid_map, err) < 0)
		return -err->code;
	struct ctr_oci_extra x = {
	    .uid_map = uid_map,
	    .gid_map = gid_map,
	    .n_uid_map = n_uid_map,
	    .n_gid_map = n_gid_map,
	    .cgroups_path = cg_path,
	    .resources = &res,
	    .device_rules = rules,
	    .n_device_rules = n_rules,
	    .allow_all_devices = c->privileged,
	    .annotations = ann,
	    .n_annotations = n,
	};
	_cleanup_free_ char *text = NULL;
	int r = ctr_oci_config(spec, &x, &text, err);
	if (r < 0)
		return r;
	/* The launcher reads no more than this: fail now, not at start. */
	if (strlen(text) > CTR_SPEC_MAX_FILE)
		return husk_error_set(err, E2BIG,
				      "config.json is %zu bytes (args, env, mounts, devices), more "
				      "than the %u the launcher reads",
				      strlen(text), CTR_SPEC_MAX_FILE);
	_cleanup_free_ char *path = xasprintf("%s/" CTR_CONFIG_FILE, dir);
	return fs_write_replace(path, text, strlen(text), 0600, err);
}

/* Let the ids of a pod's user namespace walk to path: the search bit for
 * others on it and on each parent up to top (husk's root directory),
 * listing still refused. An OCI runtime mounts the rootfs after it has
 * joined the user namespace, as a uid that is "other" to it (husk's
 * launcher opens it before; runc opens bind sources from the host);
 * containerd asks the same of its directories (0711). */
static int open_search_path(const char *path, const char *top, struct husk_error *err)
{
	if (!path || !top || !startswith(path, top))
		return 0;
	_cleanup_free_ char *p = xstrdup(path);
	size_t top_len = strlen(top);
	for (;;) {
		struct stat st;
		if (stat(p, &st) < 0)
			return husk_error_errno(err, errno, "stat '%s'", p);
		if (S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH) &&
		    chmod(p, (st.st_mode & 07777) | S_IXOTH) < 0)
			return husk_error_errno(err, errno, "chmod '%s'", p);
		char *slash = strrchr(p, '/');
		if (strlen(p) <= top_len || !slash || slash == p)
			return 0;
		*slash = '\0';
		if (strlen(p) < top_len)
			return 0;
	}
}

static int ctr_stop_signal(const struct ctr_record *rec)
{
	return rec->stop_signal > 0 ? rec->stop_signal : SIGTERM;
}

/* Tests only (rt_options.test_create_hold): stand for a slow creation. */
static void test_hold(const char *path)
{
	long long end = now_mono_ns() + RT_TEST_HOLD_MAX_S * 1000000000LL;
	while (access(path, F_OK) == 0 && now_mono_ns() < end)
		usleep(20 * 1000);
}

static int ctr_create(struct rt *rt, const struct rt_ctr_config *c, struct keep_entry *ke,
		      char **ret_id, struct husk_error *err)
{
	int stop_signal = signal_parse(c->stop_signal);
	if (stop_signal < 0)
		return husk_error_set(err, EINVAL,
				      "create container '%s': unknown stop signal '%s'", c->name,
				      c->stop_signal);
	bool systemd = false;
	if (rt_systemd_mode(c, &systemd, err) < 0)
		return husk_error_prefix(err, "create container '%s'", c->name);
	/* systemd shuts down on SIGRTMIN+3 (SIGTERM only re-executes it). */
	if (systemd && isempty(c->stop_signal))
		stop_signal = SIGRTMIN + 3;
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, c->pod_id, &pod, err) < 0)
		return husk_error_prefix(err, "create container '%s'", c->name);
	_cleanup_end_ struct rt_busy *pbusy = rt_pod_begin(rt, pod->id);
	/* Read again under the marker: a concurrent stop may have won. */
	pod_record_free(steal_ptr(&pod));
	if (state_pod_get(rt->store, c->pod_id, &pod, err) < 0)
		return husk_error_prefix(err, "create container '%s'", c->name);
	if (pod->state != POD_STATE_READY)
		return husk_error_set(err, EBUSY,
				      "create container '%s': pod sandbox '%s' is not ready",
				      c->name, pod->id);
	if (c->privileged && !pod->privileged)
		return husk_error_set(err, EINVAL,
				      "create container '%s': security_context.privileged: pod "
				      "sandbox '%s' is not privileged (its "
				      "linux.security_context.privileged is false)",
				      c->name, pod->id);
	_cleanup_(ctr_record_freep) struct ctr_record *dup = NULL;
	if (state_ctr_find(rt->store, pod->id, c->name, c->attempt, &dup, NULL) == 0)
		return husk_error_set(
		    err, EEXIST, "create container '%s' (attempt %u): it already exists as '%s'",
		    c->name, c->attempt, dup->id);

	_cleanup_free_ char *id = NULL;
	if (state_new_id(rt->store, &id, err) < 0)
		return -err->code;
	keep_set_id(rt->keep, ke, id);
	_cleanup_free_ char *dir = rt_ctr_dir(rt, id);
	_cleanup_free_ char *rootfs = NULL, *pod_cg_path = NULL, *cg_path = NULL;
	_cleanup_(cg_group_freep) struct cg_group *pod_cg = rt_cgroup_of(rt, &pod->cgroup);
	_cleanup_(cg_group_freep) struct cg_group *cg = NULL;
	_cleanup_(ctr_spec_freep) struct ctr_spec *spec = NULL;
	_cleanup_free_ struct cg_device_rule *dev_rules = NULL;
	size_t n_dev_rules = 0;
	int r;

	if (rt->test_create_hold)
		test_hold(rt->test_create_hold);
	if ((r = rt_check_abort(rt, ke, err)) < 0)
		goto fail;
	if (!pod_cg) {
		r = husk_error_set(err, EBUSY, "pod sandbox '%s' has no cgroup", pod->id);
		goto fail;
	}
	/* The intent first: a crash before the record must not leak the
	 * cgroup (recovery removes what no record claims). */
	if (cg_manager_container_path(rt->cg, cg_group_path(pod_cg), id, &cg_path, err) < 0 ||
	    rt_cg_intent_add(rt, id, cg_path, false, err) < 0) {
		r = -err->code;
		goto fail;
	}
	if (cg_group_create(rt->cg, cg_path, &cg, err) < 0) {
		rt_cg_intent_done(rt, id);
		r = -err->code;
		goto fail;
	}
	if (c->resources && (r = cg_group_set(cg, c->resources, err)) < 0) {
		husk_error_prefix(err, "linux.resources");
		goto fail;
	}
	if (rt->opts.pids_limit > 0) {
		struct cg_resources pl;
		cg_resources_init(&pl);
		pl.pids_limit = rt->opts.pids_limit;
		if ((r = cg_group_set(cg, &pl, err)) < 0) {
			husk_error_prefix(err, "pids_limit of husk's config");
			goto fail;
		}
	}
	if ((r = rt->opts.make_rootfs(rt->opts.data, id, c->image_id, false, pod->sandbox.user_ns,
				      &rootfs, err)) < 0)
		goto fail;
	if ((r = build_spec(rt, id, pod, c, rootfs, cg, &spec, err)) < 0)
		goto fail;
	/* Privileged: the device cgroup restricts nothing. */
	if (!c->privileged && ((r = device_rules(c, spec, &dev_rules, &n_dev_rules, err)) < 0 ||
			       (r = restrict_devices(cg, dev_rules, n_dev_rules, err)) < 0))
		goto fail;
	if ((r = fs_mkdir_p(dir, 0700, err)) < 0)
		goto fail;
	if (spec->seccomp != LC_SECCOMP_UNCONFINED) {
		/* Compiled here, so a bad profile fails CreateContainer and the
		 * shim needs no libseccomp. */
		_cleanup_free_ char *bpf = xasprintf("%s/seccomp.bpf", dir);
		if ((r = ctr_spec_seccomp_write(spec, bpf, err)) < 0)
			goto fail;
		free(spec->seccomp_filter);
		spec->seccomp_filter = steal_ptr(&bpf);
	}
	if ((r = write_oci_config(rt, dir, pod, c, spec, cg, dev_rules, n_dev_rules, err)) < 0)
		goto fail;
	if (spec->oci_path && spec->idmapped_mounts &&
	    (r = open_search_path(spec->rootfs, rt->root, err)) < 0)
		goto fail;

	if ((r = rt_check_abort(rt, ke, err)) < 0)
		goto fail;
	struct ctr_record rec = {
	    .id = id,
	    .pod_id = pod->id,
	    .name = (char *)c->name,
	    .attempt = c->attempt,
	    .image = (char *)c->image,
	    .image_id = (char *)c->image_id,
	    .image_ref = (char *)c->image_ref,
	    .state = CTR_STATE_CREATED,
	    .log_path = (char *)c->log_path,
	    .rootfs = rootfs,
	    .stop_signal = stop_signal,
	};
	rt_cgroup_record(cg, &rec.cgroup);
	if (c->labels)
		rec.labels = *c->labels;
	if (c->annotations)
		rec.annotations = *c->annotations;
	rec.mounts = xnew(struct ctr_record_mount, c->n_mounts + 1);
	for (size_t i = 0; i < c->n_mounts; i++)
		rec.mounts[rec.n_mounts++] = (struct ctr_record_mount){
		    .container_path = (char *)c->mounts[i].container_path,
		    .host_path = (char *)c->mounts[i].host_path,
		    .readonly = c->mounts[i].readonly,
		    .propagation = (enum ctr_record_propagation)c->mounts[i].propagation,
		};
	r = state_ctr_add(rt->store, &rec, err);
	free(rec.mounts);
	state_cgroup_clear(&rec.cgroup);
	if (r < 0)
		goto fail;
	rt_cg_intent_done(rt, id);
	log_info("container created container=%s pod=%s name=%s", id, pod->id, c->name);
	rt_emit(rt, RT_EVENT_CREATED, id, pod->id);
	*ret_id = steal_ptr(&id);
	return 0;

fail:
	husk_error_prefix(err, "create container '%s'", c->name);
	{
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		ctr_oci_idmap_release(dir);
		fs_rm_rf(dir, NULL);
		if (rootfs && rt->opts.release_rootfs(rt->opts.data, id, &e) < 0)
			log_error("container=%s: undo rootfs: %s", id, e.msg);
		husk_error_clear(&e);
		if (cg && cg_group_remove(cg, &e) < 0)
			log_error("container=%s: undo cgroup: %s", id, e.msg);
		else if (cg)
			rt_cg_intent_done(rt, id);
	}
	return r < 0 ? r : -err->code;
}

int rt_ctr_create(struct rt *rt, const struct rt_ctr_config *c, const struct husk_cancel *cancel,
		  char **ret_id, struct husk_error *err)
{
	if (isempty(c->name))
		return husk_error_set(err, EINVAL, "create container: metadata.name is empty");
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, c->pod_id, &pod, err) < 0)
		return husk_error_prefix(err, "create container '%s'", c->name);
	/* A kubelet whose RunPodSandbox timed out may find the pod in its
	 * list and use it without a retry: then it is not to be removed as
	 * uncollected. */
	keep_collect_id(rt->keep, pod->id);
	/* Each part with its length: unambiguous whatever the names hold. */
	_cleanup_free_ char *key = xasprintf("ctr %zu:%s %zu:%s %u", strlen(pod->id), pod->id,
					     strlen(c->name), c->name, c->attempt);
	_cleanup_free_ char *what = xasprintf("container '%s' (pod sandbox '%s', attempt %u)",
					      c->name, pod->id, c->attempt);
	struct keep_entry *ke = NULL;
	for (;;) {
		_cleanup_free_ char *kept = NULL;
		if (keep_begin(rt->keep, key, what, c->digest, RT_KEEP_CTR, cancel, &ke, &kept,
			       err) < 0)
			return -err->code;
		if (!kept)
			break;
		_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
		if (state_ctr_get(rt->store, kept, &rec, NULL) == 0) {
			log_info("container handed to a retry container=%s pod=%s name=%s", kept,
				 pod->id, c->name);
			*ret_id = steal_ptr(&kept);
			return 0;
		}
		keep_forget_id(rt->keep, kept); /* removed meanwhile: make it anew */
	}
	char *id = NULL;
	int r = ctr_create(rt, c, ke, &id, err);
	bool gone = husk_cancelled(cancel);
	keep_end(rt->keep, ke, r < 0 ? NULL : id, !gone);
	if (r < 0)
		return r;
	if (gone)
		log_info("container created for a caller that has gone; kept for its retry for "
			 "%llds container=%s pod=%s name=%s",
			 rt->opts.keep_period_s, id, pod->id, c->name);
	*ret_id = id;
	return 0;
}

/* ---- start, stop, remove ---- */

/* systemd driver: the container's processes entered its cgroup before
 * exec (the launcher wrote cgroup.procs); now systemd learns of them as the
 * scope husk-<id>.scope. Only a privileged container (a node, a systemd
 * inside) gets its subtree delegated: on v1 a delegated unit has its
 * device cgroup opened to every device by systemd. A container that
 * already exited leaves nothing to register: no error. */
static int register_scope(struct rt *rt, const struct ctr_record *rec, const struct ctr_pidinfo *pi,
			  struct husk_error *err)
{
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &rec->cgroup);
	/* The pod's privileged flag: a privileged container makes its pod
	 * privileged, and records keep the flag on the pod. */
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	bool delegate = state_pod_get(rt->store, rec->pod_id, &pod, NULL) == 0 && pod->privileged;
	if (!cg || cg_group_register(cg, pi->pid, delegate, err) == 0)
		return 0;
	if (kill(pi->pid, 0) < 0 && errno == ESRCH) {
		log_debug("container=%s: exited before its scope started: %s", rec->id, err->msg);
		husk_error_clear(err);
		return 0;
	}
	/* The shim runs: stop it with the container (the error path kills
	 * the cgroup). */
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	ctr_shim_signal(dir, SIGKILL, &e);
	return -err->code;
}

struct start_update {
	const struct ctr_pidinfo *pi;
};

static int apply_started(struct ctr_record *rec, void *data, struct husk_error *err _unused_)
{
	const struct ctr_pidinfo *pi = data;
	rec->state = CTR_STATE_RUNNING;
	rec->pid = pi->pid;
	rec->pid_start_time = pi->start_time;
	rec->started_at = pi->started_at ? pi->started_at : now_real_ns();
	return 0;
}

int rt_ctr_start(struct rt *rt, const char *ref, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	_cleanup_end_ struct rt_busy *busy = rt_ctr_begin(rt, rec->id);
	ctr_record_free(steal_ptr(&rec));
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	/* Whoever starts it knows it: not to be removed as uncollected. */
	keep_collect_id(rt->keep, rec->id);
	if (rec->state != CTR_STATE_CREATED)
		return husk_error_set(err, EBUSY, "start container '%s': it is %s, not CREATED",
				      rec->id, ctr_state_name(rec->state));
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, rec->pod_id, &pod, err) < 0)
		return husk_error_prefix(err, "start container '%s'", rec->id);
	if (pod->state != POD_STATE_READY)
		return husk_error_set(err, EBUSY,
				      "start container '%s': pod sandbox '%s' is not ready",
				      rec->id, pod->id);
	if (rec->log_path) {
		_cleanup_free_ char *copy = xstrdup(rec->log_path);
		char *slash = strrchr(copy, '/');
		if (slash && slash != copy) {
			*slash = '\0';
			if (fs_mkdir_p(copy, 0755, err) < 0)
				return husk_error_prefix(err, "start container '%s': log directory",
							 rec->id);
		}
	}
	if (rt->opts.remount_rootfs && rt->opts.remount_rootfs(rt->opts.data, rec->id, err) < 0)
		return husk_error_prefix(err, "start container '%s'", rec->id);
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	/* config.json, or the spec.json of a container an older huskd made. */
	_cleanup_free_ char *spec_path = ctr_spec_path(dir);
	struct ctr_pidinfo pi = {0};
	int r = ctr_shim_start(rt->shim_path, spec_path, dir, SHIM_START_TIMEOUT_NS, &pi, err);
	if (r == 0)
		r = register_scope(rt, rec, &pi, err);
	if (r < 0) {
		husk_error_prefix(err, "start container '%s'", rec->id);
		struct ctr_exit ex = {.exit_code = 128, .exited_at = now_real_ns()};
		struct exit_update u = {&ex, "StartError", err->msg};
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (state_ctr_modify(rt->store, rec->id, apply_exit, &u, &e) < 0)
			log_error("container=%s: record start error: %s", rec->id, e.msg);
		/* The shim failed before exec: kill whatever the launch left. */
		_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &rec->cgroup);
		husk_error_clear(&e);
		if (cg && cg_group_kill(cg, 0, &e) < 0)
			log_warn("container=%s: %s", rec->id, e.msg);
		return -err->code;
	}
	if (state_ctr_modify(rt->store, rec->id, apply_started, &pi, err) < 0)
		return -err->code;
	rt_monitor_watch(rt, rec->id);
	log_info("container started container=%s pid=%d", rec->id, (int)pi.pid);
	/* Recorded now, for a container that exits before anyone asks for its
	 * status; the shim reports ok after the exec. */
	struct ctr_kview_refs refs;
	rt_pod_kview_refs(rt, pod, &refs);
	_cleanup_free_ char *view = NULL;
	_cleanup_error_ struct husk_error kerr = HUSK_ERROR_INIT;
	if (ctr_kview_process_json(pi.pid, pi.start_time, &refs, &view, &kerr) == 0)
		rt_kview_record(dir, view);
	rt_emit(rt, RT_EVENT_STARTED, rec->id, rec->pod_id);
	return 0;
}

/* Stop a container whose marker the caller holds, alone or shared with
 * other stops (rt_ctr_begin_stop): each sends the stop signal and waits for
 * the exit with its own timeout, then sends SIGKILL. So of stops that
 * overlap, the one whose timeout ends first kills, and all return once the
 * container exited (as containerd, whose concurrent stops each escalate at
 * their own deadline). No lock is held while it waits. */
static int stop_locked(struct rt *rt, const char *id, long long timeout_s, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, id, &rec, err) < 0)
		return -err->code;
	if (rt_ctr_refresh(rt, rec) || rec->state != CTR_STATE_RUNNING)
		return 0;
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	struct ctr_exit ex;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (timeout_s > 0) {
		int sig = ctr_stop_signal(rec);
		if (ctr_shim_signal(dir, sig, &e) < 0 && e.code != ESRCH)
			log_warn("container=%s: signal %d: %s", rec->id, sig, e.msg);
		husk_error_clear(&e);
		if (rt_monitor_wait_exit(rt, dir, timeout_s * 1000000000LL, &ex, &e) == 0) {
			rt_ctr_refresh(rt, rec);
			return 0;
		}
		husk_error_clear(&e);
		log_info("container=%s did not stop within %llds; sending SIGKILL", rec->id,
			 timeout_s);
	}
	if (ctr_shim_signal(dir, SIGKILL, &e) < 0 && e.code != ESRCH)
		log_warn("container=%s: SIGKILL: %s", rec->id, e.msg);
	husk_error_clear(&e);
	if (rt_monitor_wait_exit(rt, dir, KILL_WAIT_NS, &ex, &e) < 0 &&
	    proc_alive(rec->pid, rec->pid_start_time))
		return husk_error_set(err, ETIMEDOUT,
				      "stop container '%s': still running after SIGKILL", rec->id);
	rt_ctr_refresh(rt, rec);
	return 0;
}

int rt_ctr_stop(struct rt *rt, const char *ref, long long timeout_s, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	_cleanup_end_ struct rt_busy *busy = rt_ctr_begin_stop(rt, rec->id);
	return stop_locked(rt, rec->id, timeout_s, err);
}

/* SIGKILL, joining any stop under way. */
static int kill_joined(struct rt *rt, const char *id, struct husk_error *err)
{
	_cleanup_end_ struct rt_busy *busy = rt_ctr_begin_stop(rt, id);
	int r = stop_locked(rt, id, 0, err);
	if (r == -ENOENT)
		husk_error_clear(err);
	return r == -ENOENT ? 0 : r;
}

/* The shim of a container that has exited goes soon after it wrote the
 * exit file (it reaps and closes its log first). Removing its directory
 * under it races with its last files ("Directory not empty"): wait for it,
 * and after two seconds end it, its work being done. */
static void shim_wait_gone(const char *dir)
{
	struct ctr_pidinfo sp;
	if (ctr_shim_read_shim_pid(dir, &sp, NULL) < 0)
		return;
	int fd = (int)syscall(SYS_pidfd_open, sp.pid, 0);
	if (fd < 0)
		return; /* gone already */
	if (!proc_alive(sp.pid, sp.start_time)) {
		close(fd);
		return; /* the pid is another process's now */
	}
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 2000) == 0) {
		syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
		poll(&p, 1, 2000);
	}
	close(fd);
}

static int remove_locked(struct rt *rt, const char *id, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	int r = state_ctr_get(rt->store, id, &rec, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	if (stop_locked(rt, rec->id, 0, err) < 0)
		return husk_error_prefix(err, "remove container '%s'", rec->id);
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &rec->cgroup);
	if (cg && (cg_group_kill(cg, 0, err) < 0 || cg_group_remove(cg, err) < 0))
		return husk_error_prefix(err, "remove container '%s'", rec->id);
	if (rt->opts.release_rootfs(rt->opts.data, rec->id, err) < 0)
		return husk_error_prefix(err, "remove container '%s'", rec->id);
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	shim_wait_gone(dir);
	/* An OCI handler's idmapped bind sources, when its shim did not
	 * live to release them. */
	ctr_oci_idmap_release(dir);
	if (fs_rm_rf(dir, err) < 0)
		return husk_error_prefix(err, "remove container '%s'", rec->id);
	r = state_ctr_remove(rt->store, rec->id, err);
	if (r < 0 && r != -ENOENT)
		return r;
	husk_error_clear(err);
	keep_forget_id(rt->keep, rec->id);
	log_info("container removed container=%s", rec->id);
	rt_emit(rt, RT_EVENT_DELETED, rec->id, rec->pod_id);
	return 0;
}

int rt_ctr_remove(struct rt *rt, const char *ref, const struct husk_cancel *cancel,
		  struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	int r = state_ctr_get(rt->store, ref, &rec, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		/* Still being created: make it give up, then see what is left. */
		int w = keep_abort_id(rt->keep, ref, cancel, err);
		if (w <= 0)
			return w;
		r = state_ctr_get(rt->store, ref, &rec, err);
		if (r == -ENOENT) {
			husk_error_clear(err);
			log_info("container given up during its creation container=%s", ref);
			return 0;
		}
	}
	if (r < 0)
		return r;
	/* A stop in its grace period ends now, rather than hold the remove. */
	if (kill_joined(rt, rec->id, err) < 0)
		return husk_error_prefix(err, "remove container '%s'", rec->id);
	_cleanup_end_ struct rt_busy *busy = rt_ctr_begin(rt, rec->id);
	return remove_locked(rt, rec->id, err);
}

static int for_each_pod_container(struct rt *rt, const char *pod_id, bool stop,
				  int (*fn)(struct rt *, const char *, struct husk_error *),
				  struct husk_error *err)
{
	struct ctr_filter f = {.pod_id = pod_id};
	struct ctr_record **v = NULL;
	size_t n = 0;
	if (state_ctr_list(rt->store, &f, &v, &n, err) < 0)
		return -err->code;
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!streq(v[i]->pod_id, pod_id))
			continue;
		if (!stop && (r = kill_joined(rt, v[i]->id, err)) < 0)
			break;
		struct rt_busy *b =
		    stop ? rt_ctr_begin_stop(rt, v[i]->id) : rt_ctr_begin(rt, v[i]->id);
		r = fn(rt, v[i]->id, err);
		rt_end(b);
	}
	ctr_records_free(v, n);
	return r;
}

static int kill_now(struct rt *rt, const char *id, struct husk_error *err)
{
	return stop_locked(rt, id, 0, err);
}

int rt_pod_containers_stop(struct rt *rt, const char *pod_id, struct husk_error *err)
{
	return for_each_pod_container(rt, pod_id, true, kill_now, err);
}

int rt_pod_containers_remove(struct rt *rt, const char *pod_id, struct husk_error *err)
{
	return for_each_pod_container(rt, pod_id, false, remove_locked, err);
}
