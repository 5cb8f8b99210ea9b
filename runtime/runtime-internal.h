/* Internals shared by the manager's files (pod.c, container.c). */
#ifndef HUSK_RUNTIME_RUNTIME_INTERNAL_H
#define HUSK_RUNTIME_RUNTIME_INTERNAL_H

#include <pthread.h>

#include "runtime/runtime.h"

#define RT_LOCK_STRIPES 64

struct rt {
	struct rt_options opts; /* strings below are owned copies */
	char *root, *state, *shim_path, *pause_path, *records_dir, *containers_dir;
	struct cg_manager *cg;
	struct state_store *store;
	/* Lock order: a pod's stripe before its containers' stripes. */
	pthread_mutex_t pod_locks[RT_LOCK_STRIPES];
	pthread_mutex_t ctr_locks[RT_LOCK_STRIPES];
	/* Exit monitor (monitor.c). monitor_lock guards the fields below it;
	 * it is taken after any stripe and never held across a wait other
	 * than on monitor_cond (CLOCK_MONOTONIC), which every exit seen wakes. */
	pthread_t monitor;
	bool monitor_running;
	pthread_mutex_t monitor_lock;
	pthread_cond_t monitor_cond;
	bool stopping;
	int mon_epoll, mon_inotify, mon_wake;
	struct rt_watch *mon_watches;
	size_t mon_count;
	unsigned long long mon_exits; /* exits seen so far: waiters' generation */
};

pthread_mutex_t *rt_pod_lock(struct rt *rt, const char *id);
pthread_mutex_t *rt_ctr_lock(struct rt *rt, const char *id);
/* The container's lock if it is free now, else NULL. */
pthread_mutex_t *rt_ctr_trylock(struct rt *rt, const char *id);

static inline void rt_unlockp(pthread_mutex_t **m)
{
	if (*m)
		pthread_mutex_unlock(*m);
}
#define _cleanup_unlock_ _cleanup_(rt_unlockp)

void rt_emit(struct rt *rt, enum rt_event ev, const char *ctr_id, const char *pod_id);

/* The cgroup saved in a pod's or container's extra JSON ({"cgroup": "..."}),
 * or NULL. */
struct cg_group *rt_cgroup_from_extra(struct rt *rt, const char *extra);
/* A pod's extra JSON: its cgroup and whether it is privileged. */
char *rt_extra_with_cgroup(const struct cg_group *g, bool privileged);
/* Whether a pod's extra JSON says it is privileged. */
bool rt_pod_extra_privileged(const char *extra);

/* pod.c: the namespaces a container's are compared with in its kernel
 * view: the pod's pins and huskd's own. */
struct ctr_kview_refs;
void rt_pod_kview_refs(struct rt *rt, const struct pod_record *pod, struct ctr_kview_refs *ret);
/* pod.c: the view in dir/kernel.json: write json there (live), or read the
 * one recorded. */
void rt_kview_record(const char *dir, const char *json);
int rt_kview_recorded(const char *dir, const char *what, const char *id, char **ret_json,
		      struct husk_error *err);

/* container.c: stop and remove every container of a pod (pod lock held). */
int rt_pod_containers_stop(struct rt *rt, const char *pod_id, struct husk_error *err);
int rt_pod_containers_remove(struct rt *rt, const char *pod_id, struct husk_error *err);
/* container.c: reconcile container records at start. */
void rt_containers_recover(struct rt *rt);
/* container.c: record the exit of container id if its shim has seen one
 * (once: a record no longer RUNNING is left alone); emits STOPPED. */
void rt_ctr_refresh_id(struct rt *rt, const char *id);

/* The mount point in huskd's mount namespace that path (resolved) is on,
 * and whether that mount is shared (shared:N in mountinfo) and/or a slave
 * (master:N). ret_point is the caller's. Errors: the errno of resolving
 * path or of reading /proc/self/mountinfo. */
int rt_mount_of(const char *path, char **ret_point, bool *ret_shared, bool *ret_slave,
		struct husk_error *err);

/* monitor.c: the exit monitor. start watches every RUNNING record and runs
 * the monitor thread; watch adds one container once it runs (its exit is
 * recorded even if it happened before the call); wait_exit waits for the
 * exit file of the shim directory dir, woken by the monitor's events. */
int rt_monitor_start(struct rt *rt, struct husk_error *err);
void rt_monitor_stop(struct rt *rt);
void rt_monitor_watch(struct rt *rt, const char *id);
struct ctr_exit;
int rt_monitor_wait_exit(struct rt *rt, const char *dir, long long timeout_ns, struct ctr_exit *ret,
			 struct husk_error *err);

#endif
