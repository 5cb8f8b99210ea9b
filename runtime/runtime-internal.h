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
	/* Exit monitor (container.c). */
	pthread_t monitor;
	bool monitor_running;
	pthread_mutex_t monitor_lock;
	pthread_cond_t monitor_cond;
	bool stopping;
};

pthread_mutex_t *rt_pod_lock(struct rt *rt, const char *id);
pthread_mutex_t *rt_ctr_lock(struct rt *rt, const char *id);

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

/* Intent records for cgroups being made (pod.c): <state>/cgroups-pending/<id>
 * names the cgroup path of pod or container id and is written before the
 * cgroup is created; it goes once the object's record is written or its
 * creation undone. At start, the cgroup of every intent that no record
 * claims is killed and removed: huskd died in between (a SIGKILL inside
 * RunPodSandbox or CreateContainer). With remove_parent, the path's parent
 * goes too when empty (husk's shared default parent of pods). */
int rt_cg_intent_add(struct rt *rt, const char *id, const char *path, bool remove_parent,
		     struct husk_error *err);
void rt_cg_intent_done(struct rt *rt, const char *id);

/* container.c: stop and remove every container of a pod (pod lock held). */
int rt_pod_containers_stop(struct rt *rt, const char *pod_id, struct husk_error *err);
int rt_pod_containers_remove(struct rt *rt, const char *pod_id, struct husk_error *err);
/* container.c: reconcile container records at start; start the monitor. */
void rt_containers_recover(struct rt *rt);
int rt_monitor_start(struct rt *rt, struct husk_error *err);
void rt_monitor_stop(struct rt *rt);

#endif
