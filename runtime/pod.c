/* Pod sandboxes: the manager's pod lifecycle on top of the state records,
 * the sandbox layer and the cgroup library. Pods call containers
 * (container.c), never the reverse. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/service.h"
#include "runtime/kview.h"
#include "runtime/runtime-internal.h"

static char *pod_kview_json(struct rt *rt, const struct pod_record *pod);

static int check_pod_config(const struct rt_pod_config *c, struct husk_error *err)
{
	if (isempty(c->name))
		return husk_error_set(err, EINVAL, "pod sandbox config: metadata.name is empty");
	if (isempty(c->uid))
		return husk_error_set(err, EINVAL, "pod sandbox '%s': metadata.uid is empty",
				      c->name);
	if (isempty(c->namespace))
		return husk_error_set(err, EINVAL, "pod sandbox '%s': metadata.namespace is empty",
				      c->name);
	if (c->net != POD_NS_POD && c->net != POD_NS_NODE)
		return husk_error_set(
		    err, EINVAL, "pod sandbox '%s': namespace_options.network must be POD or NODE",
		    c->name);
	if (c->ipc != POD_NS_POD && c->ipc != POD_NS_NODE)
		return husk_error_set(err, EINVAL,
				      "pod sandbox '%s': namespace_options.ipc must be POD or NODE",
				      c->name);
	if (c->pid == POD_NS_TARGET)
		return husk_error_set(
		    err, EINVAL, "pod sandbox '%s': namespace_options.pid TARGET is for containers",
		    c->name);
	/* As the kubelet validates: root of a privileged pod is the host's. */
	if (c->userns && c->privileged)
		return husk_error_set(err, EINVAL,
				      "pod sandbox '%s': linux.security_context.privileged: a "
				      "privileged pod cannot have a user namespace "
				      "(namespace_options.userns_options mode POD)",
				      c->name);
	if (c->userns && (c->net != POD_NS_POD || c->ipc != POD_NS_POD || c->pid == POD_NS_NODE))
		return husk_error_set(err, EINVAL,
				      "pod sandbox '%s': namespace_options.userns_options mode POD "
				      "needs the pod's own network and IPC namespaces and not the "
				      "host's PID namespace (namespace_options.network, ipc, pid)",
				      c->name);
	if (c->userns &&
	    (pod_idmaps_check(c->uid_map, c->n_uid_map, "userns_options.uids", err) < 0 ||
	     pod_idmaps_check(c->gid_map, c->n_gid_map, "userns_options.gids", err) < 0))
		return husk_error_prefix(err, "pod sandbox '%s'", c->name);
	return 0;
}

static int pod_create(struct rt *rt, const struct rt_pod_config *c, struct keep_entry *ke,
		      char **ret_id, struct husk_error *err)
{
	_cleanup_(pod_record_freep) struct pod_record *existing = NULL;
	if (state_pod_find(rt->store, c->name, c->namespace, c->uid, c->attempt, &existing, NULL) ==
	    0)
		return husk_error_set(err, EEXIST,
				      "pod sandbox '%s' (namespace '%s', uid '%s', attempt %u) "
				      "already exists as '%s'",
				      c->name, c->namespace, c->uid, c->attempt, existing->id);

	_cleanup_free_ char *id = NULL;
	if (state_new_id(rt->store, &id, err) < 0)
		return -err->code;
	/* No marker: keep reserves the id, and nobody finds the pod before its
	 * record (step 4), so the CNI ADD below holds up nothing else. */
	keep_set_id(rt->keep, ke, id);

	/* 1. the pod cgroup, its intent recorded first. A parent the kubelet
	 * names is the kubelet's: only what husk makes beneath it is undone
	 * (the pod init's group). */
	_cleanup_free_ char *cg_path = NULL, *intent = NULL;
	_cleanup_(cg_group_freep) struct cg_group *cg = NULL;
	if (cg_manager_pod_path(rt->cg, c->cgroup_parent, id, &cg_path, err) < 0)
		return husk_error_prefix(err, "run pod sandbox '%s'", c->name);
	bool own_parent = isempty(c->cgroup_parent);
	if (!own_parent && cg_manager_container_path(rt->cg, cg_path, "init", &intent, err) < 0)
		return husk_error_prefix(err, "run pod sandbox '%s'", c->name);
	if (rt_cg_intent_add(rt, id, own_parent ? cg_path : intent, own_parent, err) < 0)
		return husk_error_prefix(err, "run pod sandbox '%s'", c->name);
	if (cg_group_create(rt->cg, cg_path, &cg, err) < 0) {
		rt_cg_intent_done(rt, id);
		return husk_error_prefix(err, "run pod sandbox '%s'", c->name);
	}
	if (c->resources && cg_group_set(cg, c->resources, err) < 0) {
		husk_error_prefix(err, "run pod sandbox '%s': linux.resources", c->name);
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (cg_group_remove(cg, &e) < 0)
			log_error("pod=%s: undo cgroup: %s", id, e.msg);
		else
			rt_cg_intent_done(rt, id);
		return -err->code;
	}

	/* 2. namespaces, files, shm */
	struct pod_sandbox_spec spec = {
	    .id = id,
	    .hostname = c->hostname,
	    .net = c->net,
	    .ipc = c->ipc,
	    .uts = c->net,
	    .pid = c->pid,
	    .sysctls = c->sysctls,
	    .n_sysctls = c->n_sysctls,
	    .dns_servers = c->dns_servers,
	    .dns_searches = c->dns_searches,
	    .dns_options = c->dns_options,
	    .init_path = rt->pause_path,
	    .userns = c->userns,
	    .uid_map = c->uid_map,
	    .gid_map = c->gid_map,
	    .n_uid_map = c->n_uid_map,
	    .n_gid_map = c->n_gid_map,
	};
	struct pod_record rec = {0};
	_cleanup_strv_ char **ips = NULL;
	_cleanup_free_ char *netns = NULL; /* for the undo: rec.sandbox may be cleared */
	int r = pod_sandbox_create(rt->state, &spec, &rec.sandbox, err);
	if (r < 0) {
		husk_error_prefix(err, "run pod sandbox '%s'", c->name);
		goto undo_cgroup;
	}
	netns = rec.sandbox.net_ns ? xstrdup(rec.sandbox.net_ns) : NULL;
	/* The PID-namespace init belongs in the pod's cgroup too. */
	if (rec.sandbox.init_pid > 0) {
		/* In a child cgroup: on v2 a cgroup with processes of its own
		 * cannot get the container cgroups beneath it. */
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		_cleanup_free_ char *init_path = NULL;
		_cleanup_(cg_group_freep) struct cg_group *init_cg = NULL;
		/* systemd's unit names are global: "husk-<pod>-init.scope". */
		_cleanup_free_ char *init_id = cg_manager_driver(rt->cg) == CG_DRIVER_SYSTEMD
						   ? xasprintf("%s-init", id)
						   : xstrdup("init");
		if (cg_manager_container_path(rt->cg, cg_path, init_id, &init_path, &e) < 0 ||
		    cg_group_create(rt->cg, init_path, &init_cg, &e) < 0 ||
		    cg_group_enter(init_cg, rec.sandbox.init_pid, &e) < 0 ||
		    cg_group_register(init_cg, rec.sandbox.init_pid, false, &e) < 0)
			log_warn("pod=%s: pod init cgroup: %s", id, e.msg);
	}

	if ((r = rt_check_abort(rt, ke, err)) < 0) {
		husk_error_prefix(err, "run pod sandbox '%s'", c->name);
		goto undo_sandbox;
	}

	/* 3. the pod network */
	if (rec.sandbox.net_ns && rt->opts.net_setup) {
		r = rt->opts.net_setup(rt->opts.data, id, rec.sandbox.net_ns, c,
				       keep_abort_cancel(ke), &ips, err);
		if (r < 0 && rt_check_abort(rt, ke, err) < 0) {
			husk_error_prefix(err, "run pod sandbox '%s'", c->name);
			goto undo_sandbox;
		}
		if (r < 0) {
			husk_error_prefix(err, "run pod sandbox '%s': network", c->name);
			goto undo_sandbox;
		}
		if (ips && ips[0] && pod_sandbox_set_ips(rt->state, id, ips, NULL) < 0)
			log_warn("pod=%s: could not write the pod's hosts file", id);
	}
	rec.ips = ips;
	if ((r = rt_check_abort(rt, ke, err)) < 0) {
		husk_error_prefix(err, "run pod sandbox '%s'", c->name);
		goto undo_network;
	}

	/* 4. the record, last: its presence means the pod is complete */
	rec.id = id;
	rec.name = (char *)c->name;
	rec.uid = (char *)c->uid;
	rec.namespace = (char *)c->namespace;
	rec.attempt = c->attempt;
	rec.state = POD_STATE_READY;
	if (c->labels)
		rec.labels = *c->labels;
	if (c->annotations)
		rec.annotations = *c->annotations;
	rec.runtime_handler = (char *)c->runtime_handler;
	rec.hostname = (char *)c->hostname;
	rec.log_directory = (char *)c->log_directory;
	rec.cgroup_parent = (char *)c->cgroup_parent;
	rt_cgroup_record(cg, &rec.cgroup);
	rec.privileged = c->privileged;
	r = state_pod_add(rt->store, &rec, err);
	pod_sandbox_info_clear(&rec.sandbox);
	state_cgroup_clear(&rec.cgroup);
	if (r < 0) {
		husk_error_prefix(err, "run pod sandbox '%s'", c->name);
		goto undo_network;
	}
	rt_cg_intent_done(rt, id);
	log_info("pod started pod=%s name=%s namespace=%s", id, c->name, c->namespace);
	{
		/* Recorded now too, for a pod that is stopped before anyone
		 * asks for its status. */
		_cleanup_(pod_record_freep) struct pod_record *added = NULL;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (state_pod_get(rt->store, id, &added, &e) == 0) {
			_cleanup_free_ char *view = pod_kview_json(rt, added);
			rt_kview_record(added->sandbox.dir, view);
		}
	}
	*ret_id = steal_ptr(&id);
	return 0;

undo_network:
	if (ips && netns && rt->opts.net_teardown) {
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (rt->opts.net_teardown(rt->opts.data, id, netns, &e) < 0)
			log_error("pod=%s: undo network: %s", id, e.msg);
	}
undo_sandbox : {
	pod_sandbox_info_clear(&rec.sandbox); /* cleared already when the record failed */
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (pod_sandbox_destroy(rt->state, id, &e) < 0)
		log_error("pod=%s: undo sandbox: %s", id, e.msg);
}
undo_cgroup : {
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (cg_group_kill(cg, 0, &e) < 0 || cg_group_remove(cg, &e) < 0)
		log_error("pod=%s: undo cgroup: %s", id, e.msg);
	else
		rt_cg_intent_done(rt, id);
}
	return -err->code;
}

/* Keys are unambiguous whatever the names hold: each part with its length. */
static char *pod_key(const struct rt_pod_config *c)
{
	return xasprintf("pod %zu:%s %zu:%s %zu:%s %u", strlen(c->name), c->name,
			 strlen(c->namespace), c->namespace, strlen(c->uid), c->uid, c->attempt);
}

int rt_pod_run(struct rt *rt, const struct rt_pod_config *c, const struct husk_cancel *cancel,
	       char **ret_id, struct husk_error *err)
{
	if (check_pod_config(c, err) < 0)
		return -err->code;
	_cleanup_free_ char *key = pod_key(c);
	_cleanup_free_ char *what =
	    xasprintf("pod sandbox '%s' (namespace '%s', uid '%s', attempt %u)", c->name,
		      c->namespace, c->uid, c->attempt);
	struct keep_entry *ke = NULL;
	for (;;) {
		_cleanup_free_ char *kept = NULL;
		if (keep_begin(rt->keep, key, what, c->digest, RT_KEEP_POD, cancel, &ke, &kept,
			       err) < 0)
			return -err->code;
		if (!kept)
			break;
		_cleanup_(pod_record_freep) struct pod_record *p = NULL;
		if (state_pod_get(rt->store, kept, &p, NULL) == 0) {
			log_info("pod handed to a retry pod=%s name=%s namespace=%s", kept, c->name,
				 c->namespace);
			*ret_id = steal_ptr(&kept);
			return 0;
		}
		keep_forget_id(rt->keep, kept); /* removed meanwhile: make it anew */
	}
	char *id = NULL;
	int r = pod_create(rt, c, ke, &id, err);
	bool gone = husk_cancelled(cancel);
	keep_end(rt->keep, ke, r < 0 ? NULL : id, !gone);
	if (r < 0)
		return r;
	if (gone)
		log_info("pod created for a caller that has gone; kept for its retry for %llds "
			 "pod=%s name=%s namespace=%s",
			 rt->opts.keep_period_s, id, c->name, c->namespace);
	*ret_id = id;
	return 0;
}

static int set_notready(struct pod_record *rec, void *data _unused_,
			struct husk_error *err _unused_)
{
	rec->state = POD_STATE_NOTREADY;
	return 0;
}

/* A Stop or Remove of a pod with no record: when that id is still being
 * created, make it give up and wait. 1 when it is gone now (success for
 * the caller), 0 to go on (a record may exist now), < 0 on failure. */
static int settle_creation(struct rt *rt, const char *ref, const struct husk_cancel *cancel,
			   struct pod_record **pod, struct husk_error *err)
{
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	int w = keep_abort_id(rt->keep, ref, cancel, &e);
	if (w < 0)
		return husk_error_move(err, &e);
	if (w == 0)
		return 0;
	int r = state_pod_get(rt->store, ref, pod, &e);
	if (r == -ENOENT) {
		log_info("pod given up during its creation pod=%s", ref);
		return 1;
	}
	return r < 0 ? husk_error_move(err, &e) : 0;
}

int rt_pod_stop(struct rt *rt, const char *ref, const struct husk_cancel *cancel,
		struct husk_error *err)
{
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	int r = state_pod_get(rt->store, ref, &pod, err);
	if (r == -ENOENT) {
		int s = settle_creation(rt, ref, cancel, &pod, err);
		if (s < 0)
			return s;
		if (s > 0 || pod)
			husk_error_clear(err);
		if (s > 0)
			return 0;
	}
	if (!pod)
		return -err->code;
	_cleanup_end_ struct rt_busy *busy = rt_pod_begin(rt, pod->id);
	/* Read again under the marker: a remove may have run meanwhile. */
	_cleanup_free_ char *id = xstrdup(pod->id);
	pod_record_free(steal_ptr(&pod));
	r = state_pod_get(rt->store, id, &pod, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	if (pod->state == POD_STATE_READY) {
		/* What a stopped pod's verbose status shows. */
		_cleanup_free_ char *view = pod_kview_json(rt, pod);
		rt_kview_record(pod->sandbox.dir, view);
	}
	if (rt_pod_containers_stop(rt, pod->id, err) < 0)
		return husk_error_prefix(err, "stop pod sandbox '%s'", pod->id);
	if (pod->sandbox.net_ns && rt->opts.net_teardown &&
	    rt->opts.net_teardown(rt->opts.data, pod->id, pod->sandbox.net_ns, err) < 0)
		return husk_error_prefix(err, "stop pod sandbox '%s': network", pod->id);
	/* The PID-namespace init goes with the pod's processes; the pinned
	 * namespaces stay until RemovePodSandbox. */
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &pod->cgroup);
	if (cg && cg_group_kill(cg, 0, err) < 0)
		return husk_error_prefix(err, "stop pod sandbox '%s'", pod->id);
	if (pod->state != POD_STATE_NOTREADY) {
		if (state_pod_modify(rt->store, pod->id, set_notready, NULL, err) < 0)
			return -err->code;
		log_info("pod stopped pod=%s", pod->id);
	}
	return 0;
}

/* On a v1 host an OCI runtime (runc) mirrors each container's cgroupsPath
 * with mkdir -p in hierarchies husk does not manage (the cgroup2 at
 * <base>/unified, name=systemd), and its delete removes only the leaf: the
 * pod's directory there and husk's default parent (both husk's by name) go
 * with the pod, each only when empty. */
static void prune_unmanaged(struct rt *rt, const char *pod_path)
{
	const char *base = cg_manager_base(rt->cg);
	DIR *d = opendir(base);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		_cleanup_free_ char *top = xasprintf("%s/%s", base, e->d_name);
		_cleanup_free_ char *dir = xasprintf("%s/%s", top, pod_path);
		/* Gone already: cg_group_remove removes the pod's own trees. */
		if (rmdir(dir) < 0 && errno != ENOENT)
			continue;
		/* The parent in a hierarchy of the manager's is for
		 * cg_manager_remove_empty, which the caller runs next with the
		 * same test: not stat'ed twice per hierarchy and pod. */
		if (cg_manager_is_hier_mount(rt->cg, top))
			continue;
		char *slash = strrchr(dir, '/');
		struct stat st;
		if (slash) {
			*slash = '\0';
			/* Not while it has subdirectories (more than 2 links):
			 * the rmdir would take the kernel's cgroup mutex only to
			 * fail. */
			if (stat(dir, &st) == 0 && st.st_nlink <= 2)
				rmdir(dir);
		}
	}
	if (d)
		closedir(d);
}

int rt_pod_remove(struct rt *rt, const char *ref, const struct husk_cancel *cancel,
		  struct husk_error *err)
{
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	int r = state_pod_get(rt->store, ref, &pod, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		r = settle_creation(rt, ref, cancel, &pod, err);
		if (r < 0)
			return r;
		if (!pod)
			return 0;
	}
	if (r < 0)
		return r;
	_cleanup_end_ struct rt_busy *busy = rt_pod_begin(rt, pod->id);
	_cleanup_free_ char *id = xstrdup(pod->id);
	pod_record_free(steal_ptr(&pod));
	r = state_pod_get(rt->store, id, &pod, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	if (rt_pod_containers_remove(rt, pod->id, err) < 0)
		return husk_error_prefix(err, "remove pod sandbox '%s'", pod->id);
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &pod->cgroup);
	if (cg && cg_group_kill(cg, 0, err) < 0)
		return husk_error_prefix(err, "remove pod sandbox '%s'", pod->id);
	if (pod->sandbox.net_ns && rt->opts.net_teardown &&
	    rt->opts.net_teardown(rt->opts.data, pod->id, pod->sandbox.net_ns, err) < 0)
		return husk_error_prefix(err, "remove pod sandbox '%s': network", pod->id);
	if (pod_sandbox_destroy(rt->state, pod->id, err) < 0)
		return husk_error_prefix(err, "remove pod sandbox '%s'", pod->id);
	/* The init's group is husk's even in a pod cgroup the kubelet made
	 * (which the pod's group does not own, so removes nothing of). */
	_cleanup_free_ char *init_path = NULL;
	_cleanup_(cg_group_freep) struct cg_group *init_cg = NULL;
	if (cg &&
	    cg_manager_container_path(rt->cg, cg_group_path(cg), "init", &init_path, NULL) == 0 &&
	    cg_group_open(rt->cg, init_path, &init_cg, NULL) == 0) {
		cg_group_adopt(init_cg);
		if (cg_group_remove(init_cg, err) < 0)
			return husk_error_prefix(err, "remove pod sandbox '%s'", pod->id);
	}
	if (cg && cg_group_remove(cg, err) < 0)
		return husk_error_prefix(err, "remove pod sandbox '%s'", pod->id);
	/* Only under husk's own default parent: with the kubelet's, the pod's
	 * cgroup in every hierarchy is the kubelet's to remove. */
	if (cg && isempty(pod->cgroup_parent))
		prune_unmanaged(rt, cg_group_path(cg));
	if (cg && isempty(pod->cgroup_parent)) {
		/* husk's own default parent ("husk", "husk.slice") is shared by
		 * every such pod; the last one out removes it. */
		_cleanup_free_ char *parent = xstrdup(cg_group_path(cg));
		char *slash = strrchr(parent, '/');
		if (slash) {
			*slash = '\0';
			cg_manager_remove_empty(rt->cg, parent, NULL);
		}
	}
	r = state_pod_remove(rt->store, pod->id, err);
	if (r < 0 && r != -ENOENT)
		return husk_error_prefix(err, "remove pod sandbox '%s'", pod->id);
	husk_error_clear(err);
	keep_forget_id(rt->keep, pod->id);
	log_info("pod removed pod=%s", pod->id);
	return 0;
}

int rt_pod_get(struct rt *rt, const char *ref, struct pod_record **ret, struct husk_error *err)
{
	return state_pod_get(rt->store, ref, ret, err);
}

int rt_pod_list(struct rt *rt, const struct pod_filter *f, const struct pod_record ***ret,
		size_t *ret_n, struct husk_error *err)
{
	return state_pod_list_shared(rt->store, f, ret, ret_n, err);
}

struct cg_group *rt_pod_cgroup(struct rt *rt, const char *ref, struct husk_error *err)
{
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, ref, &pod, err) < 0)
		return NULL;
	struct cg_group *cg = rt_cgroup_of(rt, &pod->cgroup);
	if (!cg)
		husk_error_set(err, EBUSY, "pod sandbox '%s' has no cgroup", pod->id);
	return cg;
}

int rt_pod_stats(struct rt *rt, const char *ref, struct cg_stats *ret, struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_pod_cgroup(rt, ref, err);
	return cg ? cg_group_stats(cg, ret, err) : -err->code;
}

int rt_pod_update_resources(struct rt *rt, const char *ref, const struct cg_resources *res,
			    struct husk_error *err)
{
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, ref, &pod, err) < 0)
		return -err->code;
	_cleanup_end_ struct rt_busy *busy = rt_pod_begin(rt, pod->id);
	if (pod->state != POD_STATE_READY)
		return husk_error_set(
		    err, EBUSY, "update resources of pod sandbox '%s': it is not ready", pod->id);
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &pod->cgroup);
	if (!cg)
		return husk_error_set(err, EBUSY, "pod sandbox '%s' has no cgroup", pod->id);
	if (cg_group_set(cg, res, err) < 0)
		return husk_error_prefix(err, "update resources of pod sandbox '%s'", pod->id);
	return 0;
}

/* Bring records and kernel objects back in step after a restart. */
void rt_pods_recover(struct rt *rt)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct pod_record **pods = NULL;
	size_t n = 0;
	if (state_pod_list(rt->store, NULL, &pods, &n, &err) < 0) {
		log_error("recover pods: %s", err.msg);
		return;
	}
	svc_statusf("recovering %zu pod records", n);
	for (size_t i = 0; i < n; i++) {
		struct pod_sandbox_info info = {0};
		if (pod_sandbox_load(rt->state, pods[i]->id, &info, &err) < 0) {
			log_warn("recover pod=%s: sandbox is gone (%s); marking it NOTREADY",
				 pods[i]->id, err.msg);
			state_pod_modify(rt->store, pods[i]->id, set_notready, NULL, NULL);
			husk_error_clear(&err);
		}
		pod_sandbox_info_clear(&info);
	}
	/* Sandboxes without a record were being created when huskd died. */
	_cleanup_strv_ char **ids = NULL;
	if (pod_sandbox_list(rt->state, &ids, &err) == 0) {
		for (size_t i = 0; ids[i]; i++) {
			bool known = false;
			for (size_t j = 0; j < n && !known; j++)
				known = streq(pods[j]->id, ids[i]);
			if (known)
				continue;
			log_warn("recover: destroying sandbox '%s' left without a record", ids[i]);
			if (pod_sandbox_destroy(rt->state, ids[i], &err) < 0)
				log_error("recover: %s", err.msg);
			husk_error_clear(&err);
		}
	}
	pod_records_free(pods, n);
}

static char *pod_kview_json(struct rt *rt, const struct pod_record *pod)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	_cleanup_free_ char *now = ctr_kview_time(now_real_ns());
	json_kv_str(g, "readAt", now);
	json_key(g, "namespaces");
	yajl_gen_map_open(g);
	const struct {
		int type;
		const char *pin;
	} ns[] = {{CTR_KVIEW_NS_USER, pod->sandbox.user_ns},
		  {CTR_KVIEW_NS_NET, pod->sandbox.net_ns},
		  {CTR_KVIEW_NS_IPC, pod->sandbox.ipc_ns},
		  {CTR_KVIEW_NS_UTS, pod->sandbox.uts_ns},
		  {CTR_KVIEW_NS_PID, pod->sandbox.pid_ns}};
	for (size_t i = 0; i < ARRAY_SIZE(ns); i++) {
		const char *name = ctr_kview_ns_name(ns[i].type);
		_cleanup_free_ char *self = xasprintf("/proc/self/ns/%s", name);
		/* The pod's pid namespace when it has one; otherwise each
		 * container gets its own (CONTAINER) or the host's (NODE),
		 * which the containers' views show. */
		if (ns[i].type == CTR_KVIEW_NS_PID && !ns[i].pin)
			continue;
		_cleanup_free_ char *link =
		    ctr_kview_ns_link(ns[i].pin ? ns[i].pin : self, ns[i].type);
		if (!link)
			continue; /* pin gone: the pod is stopped */
		json_key(g, name);
		yajl_gen_map_open(g);
		json_kv_str(g, "link", link);
		if (ns[i].pin)
			json_kv_str(g, "pin", ns[i].pin);
		json_kv_str(g, "sharedWith", ns[i].pin ? "pod" : "host");
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	if (pod->sandbox.init_pid > 0)
		json_kv_int(g, "initPid", pod->sandbox.init_pid);
	json_kv_str(g, "cgroupVersion", rt_cgroup_version(rt) == CG_V2 ? "v2" : "v1");
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &pod->cgroup);
	if (cg) {
		json_key(g, "cgroup");
		yajl_gen_map_open(g);
		json_kv_str(g, "path", cg_group_path(cg));
		json_key(g, "dirs");
		yajl_gen_array_open(g);
		_cleanup_strv_ char **procs = cg_group_procs_files(cg);
		for (size_t i = 0; procs && procs[i]; i++) {
			char *slash = strrchr(procs[i], '/');
			if (slash)
				*slash = '\0';
			json_str(g, procs[i]);
		}
		yajl_gen_array_close(g);
		yajl_gen_map_close(g);
	}
	json_key(g, "ips");
	yajl_gen_array_open(g);
	for (size_t i = 0; pod->ips && pod->ips[i]; i++)
		json_str(g, pod->ips[i]);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}

int rt_pod_kernel_view(struct rt *rt, const char *ref, char **ret_json, bool *ret_live,
		       struct husk_error *err)
{
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, ref, &pod, err) < 0)
		return -err->code;
	/* Recorded at run and at stop (under the pod lock), not here: a write
	 * racing RemovePodSandbox could leave a file in a directory it is
	 * removing. */
	if (pod->state == POD_STATE_READY) {
		char *json = pod_kview_json(rt, pod);
		*ret_json = json;
		*ret_live = true;
		return 0;
	}
	if (rt_kview_recorded(pod->sandbox.dir, "pod sandbox", pod->id, ret_json, err) < 0)
		return -err->code;
	*ret_live = false;
	return 0;
}
