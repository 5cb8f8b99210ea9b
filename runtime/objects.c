/* What pods and containers both keep of the kernel: the cgroup a record
 * names, the intent records of cgroups being made, and the kernel view
 * recorded in an object's directory. Below pod.c and container.c. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "runtime/kview.h"
#include "runtime/runtime-internal.h"

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
	    fs_write_replace(file, text, strlen(text), 0600, err) < 0)
		return husk_error_prefix(err, "cgroup intent");
	return 0;
}

void rt_cg_intent_done(struct rt *rt, const char *id)
{
	_cleanup_free_ char *file = intent_path(rt, id);
	if (unlink(file) < 0 && errno != ENOENT)
		log_warn("cgroup intent '%s': %s", file, strerror(errno));
}

enum cg_version rt_cgroup_version(const struct rt *rt)
{
	return cg_manager_version(rt->cg);
}

/* ---- the kernel's view (runtime/kview.h) ----------------------------------- */

#define KVIEW_FILE "kernel.json"
#define KVIEW_MAX (256 * 1024)

void rt_kview_record(const char *dir, const char *json)
{
	_cleanup_free_ char *path = xasprintf("%s/" KVIEW_FILE, dir);
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (fs_write_replace(path, json, strlen(json), 0600, &e) < 0)
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
