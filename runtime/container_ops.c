/* Containers: what is asked of a container once it exists (status, the
 * spec and OCI config, exec, stats, resources, logs, the kernel view) and
 * what huskd finds of them at start; container.c makes, starts, stops and
 * removes them. */
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

/* ---- queries ---- */

int rt_ctr_get(struct rt *rt, const char *ref, struct ctr_record **ret, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	if (rt_ctr_refresh(rt, rec)) {
		ctr_record_free(steal_ptr(&rec));
		if (state_ctr_get(rt->store, ref, &rec, err) < 0)
			return -err->code;
	}
	*ret = steal_ptr(&rec);
	return 0;
}

int rt_ctr_list(struct rt *rt, const struct ctr_filter *f, const struct ctr_record ***ret,
		size_t *ret_n, struct husk_error *err)
{
	return state_ctr_list_shared(rt->store, f, ret, ret_n, err);
}

int rt_ctr_spec(struct rt *rt, const char *ref, struct ctr_spec **ret, struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	return ctr_spec_load(dir, ret, err);
}

int rt_ctr_oci_config(struct rt *rt, const char *ref, char **ret, struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *path =
	    xasprintf("%s/%s/" CTR_CONFIG_FILE, rt->containers_dir, rec->id);
	return fs_read_file(path, CTR_SPEC_MAX_FILE, ret, NULL, err);
}

void rt_exec_result_clear(struct rt_exec_result *r)
{
	free(r->out);
	free(r->err_out);
	*r = (struct rt_exec_result){0};
}

static int running_record(struct rt *rt, const char *ref, const char *what, struct ctr_record **ret,
			  struct husk_error *err)
{
	if (rt_ctr_get(rt, ref, ret, err) < 0)
		return -err->code;
	if ((*ret)->state != CTR_STATE_RUNNING) {
		int r = husk_error_set(err, EBUSY, "%s '%s': container is %s, not RUNNING", what,
				       (*ret)->id, ctr_state_name((*ret)->state));
		ctr_record_free(steal_ptr(ret));
		return r;
	}
	return 0;
}

int rt_ctr_exec_sync(struct rt *rt, const char *ref, char *const *cmd, long long timeout_s,
		     struct rt_exec_result *ret, struct husk_error *err)
{
	if (!cmd || !cmd[0] || !*cmd[0])
		return husk_error_set(err, EINVAL, "exec: cmd is empty");
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (running_record(rt, ref, "exec in container", &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	_cleanup_(ctr_spec_freep) struct ctr_spec *spec = NULL;
	if (ctr_spec_load(dir, &spec, err) < 0)
		return -err->code;
	struct ctr_exec_opts o = {.spec = spec,
				  .pid = rec->pid,
				  .args = (char **)cmd,
				  .spawn = spec->oci_path ? ctr_oci_exec_spawn : NULL};
	struct ctr_exec_result res = {0};
	if (ctr_exec_sync(&o, timeout_s * 1000000000LL, 0, &res, err) < 0)
		return -err->code;
	ret->exit_code = res.exit_code;
	ret->out = steal_ptr(&res.out);
	ret->out_len = res.out_len;
	ret->err_out = steal_ptr(&res.err_out);
	ret->err_len = res.err_len;
	ctr_exec_result_free(&res);
	return 0;
}

struct cg_group *rt_ctr_cgroup(struct rt *rt, const char *ref, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return NULL;
	struct cg_group *cg = rt_cgroup_of(rt, &rec->cgroup);
	if (!cg)
		husk_error_set(err, EBUSY, "container '%s' has no cgroup", rec->id);
	return cg;
}

int rt_ctr_stats(struct rt *rt, const char *ref, struct cg_stats *ret, struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_ctr_cgroup(rt, ref, err);
	return cg ? cg_group_stats(cg, ret, err) : -err->code;
}

/* config.json holds the seccomp profile too. */
#define OCI_CONFIG_MAX (16u << 20)

/* config.json with res written over its linux.resources, so that it
 * (and crictl inspect) says what is in force. */
static int rewrite_oci_resources(const char *dir, const struct cg_resources *res,
				 struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/config.json", dir);
	_cleanup_free_ char *text = NULL, *out = NULL;
	size_t len = 0;
	if (fs_read_file(path, OCI_CONFIG_MAX, &text, &len, err) < 0 ||
	    ctr_oci_config_set_resources(text, len, res, &out, err) < 0 ||
	    fs_write_atomic(path, out, strlen(out), 0600, err) < 0)
		return -err->code;
	return 0;
}

int rt_ctr_update_resources(struct rt *rt, const char *ref, const struct cg_resources *res,
			    struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (rt_ctr_get(rt, ref, &rec, err) < 0)
		return -err->code;
	/* One update, start or stop of the container at a time: config.json
	 * is read, changed and written back. */
	_cleanup_end_ struct rt_busy *busy = rt_ctr_begin(rt, rec->id);
	ctr_record_free(steal_ptr(&rec));
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	_cleanup_(ctr_spec_freep) struct ctr_spec *spec = NULL;
	if (ctr_spec_load(dir, &spec, err) < 0)
		return husk_error_prefix(err, "update container '%s'", rec->id);
	int r;
	if (spec->oci_path && rec->state == CTR_STATE_RUNNING) {
		/* The runtime's cgroup manager writes the limits (and keeps
		 * its own state of them); what husk refuses itself is refused
		 * with the same words. */
		if (res->n_unified && rt_cgroup_version(rt) != CG_V2)
			return husk_error_set(err, EINVAL, "unified key '%s': needs cgroup v2",
					      res->unified[0].key);
		_cleanup_free_ char *json = ctr_oci_resources(res);
		r = ctr_oci_update(spec, json, err);
	} else {
		_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &rec->cgroup);
		r = cg ? cg_group_set(cg, res, err)
		       : husk_error_set(err, ENOENT, "container '%s' has no cgroup", rec->id);
	}
	if (r < 0)
		return r;
	if (rewrite_oci_resources(dir, res, err) < 0)
		return husk_error_prefix(err, "update container '%s': limits set, but", rec->id);
	return 0;
}

int rt_ctr_resources(struct rt *rt, const char *ref, struct cg_resources *ret, bool *ret_has_oom,
		     int *ret_oom, struct husk_error *err)
{
	HUSK_ERROR_OPTIONAL(err);
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (state_ctr_get(rt->store, ref, &rec, err) < 0)
		return -err->code;
	_cleanup_(cg_group_freep) struct cg_group *cg = rt_cgroup_of(rt, &rec->cgroup);
	if (!cg)
		return husk_error_set(err, EBUSY, "container '%s' has no cgroup", rec->id);
	int oom = 0;
	bool has_oom = false;
	if (rec->state == CTR_STATE_RUNNING && proc_alive(rec->pid, rec->pid_start_time))
		has_oom = rt_oom_score_adj(rec->pid, &oom);
	if (!has_oom) {
		_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
		_cleanup_(ctr_spec_freep) struct ctr_spec *spec = NULL;
		if (ctr_spec_load(dir, &spec, NULL) == 0 && spec->has_oom_score_adj) {
			has_oom = true;
			oom = spec->oom_score_adj;
		}
	}
	if (cg_group_get(cg, ret, err) < 0)
		return -err->code;
	*ret_has_oom = has_oom;
	*ret_oom = oom;
	return 0;
}

int rt_ctr_reopen_log(struct rt *rt, const char *ref, struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (running_record(rt, ref, "reopen log of container", &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	return ctr_shim_reopen_log(dir, err);
}

/* ---- restart and the exit monitor ---- */

void rt_containers_recover(struct rt *rt)
{
	struct ctr_record **v = NULL;
	size_t n = 0;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (state_ctr_list(rt->store, NULL, &v, &n, &err) < 0) {
		log_error("recover containers: %s", err.msg);
		return;
	}
	size_t running = 0;
	svc_statusf("recovering %zu container records", n);
	for (size_t i = 0; i < n; i++) {
		if (v[i]->state == CTR_STATE_RUNNING && !rt_ctr_refresh(rt, v[i]))
			running++;
	}
	if (n)
		log_info("recovered %zu containers, %zu running", n, running);
	/* Directories without a record: huskd died inside CreateContainer,
	 * before the record was written and before any shim started. */
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(rt->containers_dir, NULL, &names, &err) == 0) {
		for (size_t i = 0; names[i]; i++) {
			bool known = false;
			for (size_t j = 0; j < n && !known; j++)
				known = streq(v[j]->id, names[i]);
			if (known)
				continue;
			log_warn("recover: removing container '%s' left without a record",
				 names[i]);
			_cleanup_free_ char *dir = rt_ctr_dir(rt, names[i]);
			fs_rm_rf(dir, NULL);
			if (rt->opts.release_rootfs(rt->opts.data, names[i], &err) < 0)
				log_warn("recover: %s", err.msg);
			husk_error_clear(&err);
		}
	}
	ctr_records_free(v, n);
}

unsigned rt_shims_running(struct rt *rt)
{
	struct ctr_record **v = NULL;
	size_t n = 0;
	if (state_ctr_list(rt->store, NULL, &v, &n, NULL) < 0)
		return 0;
	unsigned alive = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i]->state == CTR_STATE_CREATED)
			continue;
		_cleanup_free_ char *dir = rt_ctr_dir(rt, v[i]->id);
		struct ctr_pidinfo shim = {0};
		if (ctr_shim_read_shim_pid(dir, &shim, NULL) == 0 &&
		    proc_alive(shim.pid, shim.start_time))
			alive++;
	}
	ctr_records_free(v, n);
	return alive;
}

bool rt_ctr_known(struct rt *rt, const char *id)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	return state_ctr_get(rt->store, id, &rec, NULL) == 0 && streq(rec->id, id);
}

int rt_ctr_kernel_view(struct rt *rt, const char *ref, char **ret_json, bool *ret_live,
		       struct husk_error *err)
{
	_cleanup_(ctr_record_freep) struct ctr_record *rec = NULL;
	if (rt_ctr_get(rt, ref, &rec, err) < 0)
		return -err->code;
	_cleanup_free_ char *dir = rt_ctr_dir(rt, rec->id);
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (rec->state == CTR_STATE_RUNNING && rec->pid > 0 &&
	    state_pod_get(rt->store, rec->pod_id, &pod, &e) == 0) {
		struct ctr_kview_refs refs;
		rt_pod_kview_refs(rt, pod, &refs);
		char *json = NULL;
		/* ESRCH: it exited just now; the record is what is left. */
		if (ctr_kview_process_json(rec->pid, rec->pid_start_time, &refs, &json, &e) == 0) {
			/* Kept for when it has exited (its credentials may have
			 * changed since start). Not while a stop or remove has
			 * it marked: the file must not appear in a directory
			 * being removed, and status must not wait out a stop. */
			_cleanup_end_ struct rt_busy *busy = rt_ctr_try_begin(rt, rec->id);
			if (busy && rt_ctr_known(rt, rec->id))
				rt_kview_record(dir, json);
			*ret_json = json;
			*ret_live = true;
			return 0;
		}
	}
	if (rt_kview_recorded(dir, "container", rec->id, ret_json, err) < 0)
		return -err->code;
	*ret_live = false;
	return 0;
}
