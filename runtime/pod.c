/* Pod sandboxes: the manager's pod lifecycle on top of the state records,
 * the sandbox layer and the cgroup library, plus opening and reconciling
 * the manager itself. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "common/service.h"
#include "runtime/kview.h"
#include "runtime/runtime-internal.h"

static char *pod_kview_json(struct rt *rt, const struct pod_record *pod);

static unsigned stripe(const struct rt *rt, const char *id)
{
	unsigned h = 5381;
	for (const char *p = id; p && *p; p++)
		h = h * 33 + (unsigned char)*p;
	unsigned n = rt->opts.test_stripes;
	return h % (n > 0 && n < RT_LOCK_STRIPES ? n : RT_LOCK_STRIPES);
}

static struct rt_busy *busy_find(struct rt_stripe *st, const char *id, bool pod)
{
	for (struct rt_busy *b = st->busy; b; b = b->next)
		if (b->pod == pod && streq(b->id, id))
			return b;
	return NULL;
}

static struct rt_busy *busy_add(struct rt_stripe *st, const char *id, bool pod, bool stopping)
{
	struct rt_busy *b = xnew(struct rt_busy, 1);
	b->stripe = st;
	b->id = xstrdup(id);
	b->pod = pod;
	b->stopping = stopping;
	b->holders = 1;
	b->next = st->busy;
	st->busy = b;
	return b;
}

/* wait: whether to wait for a step under way, or give up (NULL). */
static struct rt_busy *begin(struct rt *rt, const char *id, bool pod, bool stop, bool wait)
{
	struct rt_stripe *st = &rt->stripes[stripe(rt, id)];
	pthread_mutex_lock(&st->lock);
	struct rt_busy *b;
	while ((b = busy_find(st, id, pod))) {
		if (stop && b->stopping) {
			b->holders++;
			pthread_mutex_unlock(&st->lock);
			return b;
		}
		if (!wait) {
			pthread_mutex_unlock(&st->lock);
			return NULL;
		}
		pthread_cond_wait(&st->cond, &st->lock);
	}
	b = busy_add(st, id, pod, stop);
	pthread_mutex_unlock(&st->lock);
	return b;
}

struct rt_busy *rt_pod_begin(struct rt *rt, const char *id)
{
	return begin(rt, id, true, false, true);
}

struct rt_busy *rt_ctr_begin(struct rt *rt, const char *id)
{
	return begin(rt, id, false, false, true);
}

struct rt_busy *rt_ctr_try_begin(struct rt *rt, const char *id)
{
	return begin(rt, id, false, false, false);
}

struct rt_busy *rt_ctr_begin_stop(struct rt *rt, const char *id)
{
	return begin(rt, id, false, true, true);
}

void rt_end(struct rt_busy *b)
{
	if (!b)
		return;
	struct rt_stripe *st = b->stripe;
	pthread_mutex_lock(&st->lock);
	if (--b->holders > 0) {
		pthread_mutex_unlock(&st->lock);
		return;
	}
	for (struct rt_busy **p = &st->busy; *p; p = &(*p)->next) {
		if (*p == b) {
			*p = b->next;
			break;
		}
	}
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
	free(b->id);
	free(b);
}

void rt_emit(struct rt *rt, enum rt_event ev, const char *ctr_id, const char *pod_id)
{
	if (rt->opts.on_event)
		rt->opts.on_event(rt->opts.data, ev, ctr_id, pod_id);
}

struct cg_group *rt_cgroup_of(struct rt *rt, const struct state_cgroup *c)
{
	if (!c->path)
		return NULL;
	_cleanup_free_ const char **names = xnew(const char *, c->n_hiers + 1);
	_cleanup_free_ int *created = xnew(int, c->n_hiers + 1);
	for (size_t i = 0; i < c->n_hiers; i++) {
		names[i] = c->hiers[i].name;
		created[i] = c->hiers[i].created;
	}
	struct cg_group *g = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (cg_group_rebuild(rt->cg, c->path, names, created, c->n_hiers, &g, &err) < 0)
		log_warn("cgroup record '%s': %s", c->path, err.msg);
	return g;
}

void rt_cgroup_record(const struct cg_group *g, struct state_cgroup *ret)
{
	size_t n = cg_group_n_hiers(g);
	ret->path = xstrdup(cg_group_path(g));
	ret->hiers = xnew(struct state_cgroup_hier, n + 1);
	for (size_t i = 0; i < n; i++)
		ret->hiers[i] = (struct state_cgroup_hier){xstrdup(cg_group_hier_name(g, i)),
							   cg_group_hier_created(g, i)};
	ret->n_hiers = n;
}

/* ---- cgroup intents ---- */

static char *intent_path(const struct rt *rt, const char *id)
{
	return xasprintf("%s/cgroups-pending/%s", rt->state, id);
}

int rt_cg_intent_add(struct rt *rt, const char *id, const char *path, bool remove_parent,
		     struct husk_error *err)
{
	_cleanup_free_ char *dir = xasprintf("%s/cgroups-pending", rt->state);
	_cleanup_free_ char *file = intent_path(rt, id);
	_cleanup_free_ char *text = xasprintf("%s\n%s", path, remove_parent ? "parent\n" : "");
	if (fs_mkdir_p(dir, 0700, err) < 0 ||
	    fs_write_atomic(file, text, strlen(text), 0600, err) < 0)
		return husk_error_prefix(err, "cgroup intent");
	return 0;
}

void rt_cg_intent_done(struct rt *rt, const char *id)
{
	_cleanup_free_ char *file = intent_path(rt, id);
	if (unlink(file) < 0 && errno != ENOENT)
		log_warn("cgroup intent '%s': %s", file, strerror(errno));
}

static bool record_exists(struct rt *rt, const char *id)
{
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, id, &pod, NULL) == 0 && streq(pod->id, id))
		return true;
	return rt_ctr_known(rt, id);
}

/* Undo the cgroups of creations a crash interrupted (see rt_cg_intent_add). */
static void cg_intents_recover(struct rt *rt)
{
	_cleanup_free_ char *dir = xasprintf("%s/cgroups-pending", rt->state);
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(dir, NULL, &names, NULL) < 0)
		return;
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *file = xasprintf("%s/%s", dir, names[i]);
		_cleanup_free_ char *text = NULL;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		/* A temporary file of fs_write_atomic: the cgroup came after. */
		if (strstr(names[i], ".tmp.") || record_exists(rt, names[i]) ||
		    fs_read_file(file, 4096, &text, NULL, &e) < 0) {
			unlink(file);
			continue;
		}
		char *nl = strchr(text, '\n');
		bool parent = nl && streq(nl + 1, "parent\n");
		if (nl)
			*nl = '\0';
		_cleanup_(cg_group_freep) struct cg_group *g = NULL;
		int r = cg_group_open(rt->cg, text, &g, &e);
		if (r == -ENOENT || r == -EINVAL) { /* nothing made, or not a path */
			unlink(file);
			continue;
		}
		log_warn("recover: removing cgroup '%s' of '%s', made without a record", text,
			 names[i]);
		if (r == 0) {
			cg_group_adopt(g);
			r = cg_group_kill(g, 0, &e);
		}
		if (r == 0)
			r = cg_group_remove(g, &e);
		if (r < 0) {
			log_error("recover: cgroup '%s': %s", text, e.msg);
			continue; /* the intent stays for the next start */
		}
		char *slash = strrchr(text, '/');
		if (parent && slash) {
			*slash = '\0';
			cg_manager_remove_empty(rt->cg, text, NULL);
		}
		unlink(file);
	}
}

enum cg_version rt_cgroup_version(const struct rt *rt)
{
	return cg_manager_version(rt->cg);
}

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

int rt_check_abort(struct rt *rt, struct keep_entry *ke, struct husk_error *err)
{
	if (!keep_aborted(rt->keep, ke))
		return 0;
	return husk_error_set(err, ECANCELED, "stopped or removed while being created");
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
	int r = pod_sandbox_create(rt->state, &spec, &rec.sandbox, err);
	if (r < 0) {
		husk_error_prefix(err, "run pod sandbox '%s'", c->name);
		goto undo_cgroup;
	}
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
	if (ips && rt->opts.net_teardown) {
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		_cleanup_free_ char *netns = xasprintf("%s/pods/%s/ns/net", rt->state, id);
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
		_cleanup_free_ char *dir = xasprintf("%s/%s/%s", base, e->d_name, pod_path);
		/* Gone already: cg_group_remove removes the pod's own trees. */
		if (rmdir(dir) < 0 && errno != ENOENT)
			continue;
		char *slash = strrchr(dir, '/');
		if (slash) {
			*slash = '\0';
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

int rt_pod_list(struct rt *rt, const struct pod_filter *f, struct pod_record ***ret, size_t *ret_n,
		struct husk_error *err)
{
	return state_pod_list(rt->store, f, ret, ret_n, err);
}

struct cg_group *rt_pod_cgroup(struct rt *rt, const char *ref, struct husk_error *err)
{
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (state_pod_get(rt->store, ref, &pod, err) < 0)
		return NULL;
	struct cg_group *cg = rt_cgroup_of(rt, &pod->cgroup);
	if (!cg)
		husk_error_set(err, ENOENT, "pod sandbox '%s' has no cgroup", pod->id);
	return cg;
}

int rt_pod_stats(struct rt *rt, const char *ref, struct cg_stats *ret, struct husk_error *err)
{
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
		return husk_error_set(err, ENOENT, "pod sandbox '%s' has no cgroup", pod->id);
	if (cg_group_set(cg, res, err) < 0)
		return husk_error_prefix(err, "update resources of pod sandbox '%s'", pod->id);
	return 0;
}

/* Bring records and kernel objects back in step after a restart. */
static void pods_recover(struct rt *rt)
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

/* Remove what was made for callers that never came back, as the keep
 * periods end. */
static void *remover_main(void *arg)
{
	struct rt *rt = arg;
	char *id = NULL, *what = NULL;
	int kind = 0;
	while (keep_next_expired(rt->keep, &id, &kind, &what) > 0) {
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		bool pod = kind == RT_KEEP_POD;
		int r = pod ? rt_pod_remove(rt, id, NULL, &e) : rt_ctr_remove(rt, id, NULL, &e);
		if (r < 0)
			log_error("%s=%s: remove %s, made for a caller that never came back: %s",
				  pod ? "pod" : "container", id, what, e.msg);
		else
			log_warn("removed %s: made for a caller that never came back, and no retry "
				 "collected it within %llds %s=%s",
				 what, rt->opts.keep_period_s, pod ? "pod" : "container", id);
		keep_removed(rt->keep, id);
		free(id);
		free(what);
	}
	return NULL;
}

int rt_open(const struct rt_options *opts, struct rt **ret, struct husk_error *err)
{
	struct rt *rt = xnew(struct rt, 1);
	rt->opts = *opts;
	rt->root = xstrdup(opts->root);
	rt->state = xstrdup(opts->state);
	rt->shim_path = xstrdup(opts->shim_path);
	rt->pause_path = opts->pause_path ? xstrdup(opts->pause_path) : NULL;
	rt->records_dir = xasprintf("%s/records", opts->state);
	rt->containers_dir = xasprintf("%s/containers", opts->state);
	rt->opts.root = rt->root;
	rt->opts.state = rt->state;
	rt->opts.shim_path = rt->shim_path;
	rt->opts.pause_path = rt->pause_path;
	if (rt->opts.keep_period_s <= 0)
		rt->opts.keep_period_s = RT_KEEP_PERIOD_DEFAULT;
	rt->test_create_hold = opts->test_create_hold ? xstrdup(opts->test_create_hold) : NULL;
	rt->opts.test_create_hold = rt->test_create_hold;
	rt->keep = keep_new(rt->opts.keep_period_s * 1000000000LL, RT_KEEP_MAX);
	for (int i = 0; i < RT_LOCK_STRIPES; i++) {
		pthread_mutex_init(&rt->stripes[i].lock, NULL);
		pthread_cond_init(&rt->stripes[i].cond, NULL);
	}
	pthread_mutex_init(&rt->monitor_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&rt->monitor_cond, &ca);
	pthread_condattr_destroy(&ca);
	rt->mon_epoll = rt->mon_inotify = rt->mon_wake = -1;
	pthread_mutex_init(&rt->rate_lock, NULL);

	struct cg_options cgo = {.base = opts->cgroup_base,
				 .driver = opts->cgroup_driver,
				 .pod_parent = opts->pod_cgroup_parent};
	_cleanup_strv_ char **problems = NULL;
	if (cg_manager_open(&cgo, &rt->cg, err) < 0) {
		husk_error_prefix(err, "cgroups");
		goto fail;
	}
	if (fs_mkdir_p(rt->containers_dir, 0700, err) < 0)
		goto fail;
	if (state_store_open(rt->records_dir, NULL, &rt->store, &problems, err) < 0)
		goto fail;
	for (size_t i = 0; problems && problems[i]; i++)
		log_warn("records: %s", problems[i]);
	pods_recover(rt);
	rt_containers_recover(rt);
	cg_intents_recover(rt);
	if (rt_monitor_start(rt, err) < 0)
		goto fail;
	if (pthread_create(&rt->remover, NULL, remover_main, rt) != 0) {
		husk_error_set(err, EAGAIN, "runtime: cannot start the remover thread");
		goto fail;
	}
	rt->remover_running = true;
	log_info("runtime ready cgroup=v%d driver=%s records=%s", cg_manager_version(rt->cg),
		 cg_driver_name(opts->cgroup_driver), rt->records_dir);
	*ret = rt;
	return 0;
fail:
	rt_free(rt);
	return -err->code;
}

void rt_free(struct rt *rt)
{
	if (!rt)
		return;
	if (rt->remover_running) {
		keep_stop(rt->keep);
		pthread_join(rt->remover, NULL);
	}
	rt_monitor_stop(rt);
	/* Leave no mount of husk's behind once the last pod is gone (EBUSY
	 * while pods remain: they keep it). */
	if (rt->state)
		pod_sandbox_root_release(rt->state, NULL);
	state_store_free(rt->store);
	cg_manager_free(rt->cg);
	for (int i = 0; i < RT_LOCK_STRIPES; i++) {
		pthread_mutex_destroy(&rt->stripes[i].lock);
		pthread_cond_destroy(&rt->stripes[i].cond);
	}
	pthread_mutex_destroy(&rt->monitor_lock);
	pthread_cond_destroy(&rt->monitor_cond);
	pthread_mutex_destroy(&rt->rate_lock);
	free(rt->rates);
	free(rt->root);
	free(rt->state);
	free(rt->shim_path);
	free(rt->pause_path);
	free(rt->records_dir);
	free(rt->containers_dir);
	free(rt->test_create_hold);
	keep_free(rt->keep);
	free(rt);
}

/* ---- the kernel's view (runtime/kview.h) ----------------------------------- */

#define KVIEW_FILE "kernel.json"
#define KVIEW_MAX (256 * 1024)

void rt_kview_record(const char *dir, const char *json)
{
	_cleanup_free_ char *path = xasprintf("%s/" KVIEW_FILE, dir);
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (fs_write_atomic(path, json, strlen(json), 0600, &e) < 0)
		log_warn("record kernel view: %s", e.msg);
}

int rt_kview_recorded(const char *dir, const char *what, const char *id, char **ret_json,
		      struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/" KVIEW_FILE, dir);
	if (!fs_exists(path))
		return husk_error_set(err, ENOENT, "%s '%s': no kernel view was recorded", what,
				      id);
	return fs_read_file(path, KVIEW_MAX, ret_json, NULL, err);
}

void rt_pod_kview_refs(struct rt *rt, const struct pod_record *pod, struct ctr_kview_refs *ret)
{
	const char *pins[CTR_KVIEW_N_NS] = {
	    [CTR_KVIEW_NS_USER] = pod->sandbox.user_ns, [CTR_KVIEW_NS_NET] = pod->sandbox.net_ns,
	    [CTR_KVIEW_NS_IPC] = pod->sandbox.ipc_ns,	[CTR_KVIEW_NS_UTS] = pod->sandbox.uts_ns,
	    [CTR_KVIEW_NS_PID] = pod->sandbox.pid_ns,
	};
	ctr_kview_refs_init(ret, pins, rt_cgroup_version(rt) == CG_V2 ? 2 : 1);
}

static char *pod_kview_json(struct rt *rt, const struct pod_record *pod)
{
	struct ctr_kview_refs refs;
	rt_pod_kview_refs(rt, pod, &refs);
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
	json_kv_str(g, "cgroupVersion", refs.cgroup_version == 2 ? "v2" : "v1");
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
