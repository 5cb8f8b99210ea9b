/* The manager's lifecycle: open (cgroups, records, recovery of pods,
 * containers and interrupted cgroups, the exit monitor, the remover
 * thread) and close. The top of the manager: it calls pod.c, container.c
 * and monitor.c, and none of them calls it. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "runtime/launcher/launcher.h"
#include "runtime/runtime-internal.h"

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
		/* A temporary file of fs_write_replace: the cgroup came after. */
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
	/* Where the pods' pins and shm go, before any pod is made or
	 * recovered. */
	if (pod_sandbox_root_ensure(rt->state, err) < 0) {
		husk_error_prefix(err, "runtime: pod mounts");
		goto fail;
	}
	if (state_store_open(rt->records_dir, NULL, &rt->store, &problems, err) < 0)
		goto fail;
	if (!opts->no_mount_template) {
		/* Made again at each start: one left by a huskd that died is
		 * replaced. Without one the launcher works as before. */
		_cleanup_free_ char *pin = xasprintf("%s/mount-template/mnt", rt->state);
		struct husk_error e = HUSK_ERROR_INIT;
		if (ctr_mount_template_make(pin, &e) == 0)
			rt->mount_template = steal_ptr(&pin);
		else
			log_warn("mount template: %s; containers copy huskd's mount namespace",
				 e.msg);
		husk_error_clear(&e);
	}
	for (size_t i = 0; problems && problems[i]; i++)
		log_warn("records: %s", problems[i]);
	rt_pods_recover(rt);
	rt_containers_recover(rt);
	cg_intents_recover(rt);
	if (rt_monitor_start(rt, rt_ctr_refresh_id, err) < 0)
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
	if (rt->mount_template) {
		/* Containers still running keep their copies: nothing needs
		 * the template once huskd is gone. */
		struct husk_error e = HUSK_ERROR_INIT;
		if (ctr_mount_template_release(rt->mount_template, &e) < 0)
			log_warn("mount template: %s", e.msg);
		husk_error_clear(&e);
		free(rt->mount_template);
	}
	state_store_free(rt->store);
	cg_manager_free(rt->cg);
	for (int i = 0; i < RT_LOCK_STRIPES; i++) {
		pthread_mutex_destroy(&rt->stripes[i].lock);
		pthread_cond_destroy(&rt->stripes[i].cond);
	}
	pthread_mutex_destroy(&rt->monitor_lock);
	pthread_cond_destroy(&rt->monitor_cond);
	pthread_mutex_destroy(&rt->rate_lock);
	rt_rates_free(rt);
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
