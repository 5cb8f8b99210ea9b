/* Internals shared by the manager's files. From the top down: manager.c
 * (open, close, recovery), pod.c, container.c, then monitor.c, locks.c
 * (markers, events) and objects.c (cgroups of records, kernel views); a
 * file calls only those below it. */
#ifndef HUSK_RUNTIME_RUNTIME_INTERNAL_H
#define HUSK_RUNTIME_RUNTIME_INTERNAL_H

#include <pthread.h>

#include "common/hindex.h"
#include "runtime/keep.h"
#include "runtime/runtime.h"

/* Lock order, outermost first; a thread holding one may take only those
 * below it:
 *   1. a pod's step marker (rt_pod_begin), then the step markers of its
 *      containers (rt_ctr_begin...): a pod step may act on its containers,
 *      a container step never takes its pod's marker.
 *   2. a stripe's mutex (struct rt_stripe): held only to look up or edit
 *      the markers of its list, never while calling out of locks.c.
 *   3. the record store's lock (state/store.c), inside state_* calls only.
 *   4. the monitor's lock (monitor_lock), taken with no stripe held.
 *   5. keep's lock (keep.c), innermost.
 * Markers are not mutexes: a step on an object (start, stop, remove, a
 * pod's creation of a container) marks it busy in a short critical section
 * and unmarks it at the end; a call that finds the object busy waits on its
 * stripe's condition variable, which releases the stripe. So a stop's grace
 * period, a CNI call or an image unpack hold up calls on that one object
 * only, never other objects that hash to the same stripe. A pod being
 * created has no marker: keep (keep.h) reserves its identity, and no call
 * can find it until its record exists. */
#define RT_LOCK_STRIPES 64

/* A lifecycle step under way on a pod or container (see the lock order). */
struct rt_busy {
	struct rt_stripe *stripe;
	char *id;
	bool pod;
	bool stopping;	  /* a container stop: later stops join it */
	unsigned holders; /* the stops sharing it; 1 for other steps */
	struct rt_busy *next;
};

struct rt_stripe {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a marker of this stripe went */
	struct rt_busy *busy;
};

struct rt {
	struct rt_options opts; /* strings below are owned copies */
	char *root, *state, *shim_path, *pause_path, *records_dir, *containers_dir;
	/* The pin of the template mount namespace husk's launcher copies
	 * (ctr_mount_template_make); NULL: none, the launcher copies its own. */
	char *mount_template;
	struct cg_manager *cg;
	struct state_store *store;
	struct rt_stripe stripes[RT_LOCK_STRIPES];
	/* Exit monitor (monitor.c). monitor_lock guards the fields below it;
	 * it is taken after any stripe and never held across a wait other
	 * than on monitor_cond (CLOCK_MONOTONIC), which every exit seen wakes. */
	pthread_t monitor;
	bool monitor_running;
	pthread_mutex_t monitor_lock;
	pthread_cond_t monitor_cond;
	bool stopping;
	int mon_epoll, mon_inotify, mon_wake;
	/* The watches (monitor.c's struct rt_watch) by container id, inotify
	 * watch and epoll tag, those with an exit to record, and the next tag. */
	struct hindex mon_ids, mon_wds, mon_tags;
	struct rt_watch *mon_pending;
	uint64_t mon_next_tag;
	/* Records the exit of container id (container.c's rt_ctr_refresh_id,
	 * handed over by rt_monitor_start: the monitor sits below containers). */
	void (*mon_on_exit)(struct rt *rt, const char *id);
	unsigned long long mon_exits; /* exits seen so far: waiters' generation */
	/* Creations by identity and their kept results (keep.h); the remover
	 * thread removes what nobody collected. keep's own lock is innermost:
	 * taken under the locks above, never held while taking one, and no
	 * wait in keep happens with one of them held. */
	struct keep *keep;
	pthread_t remover;
	bool remover_running;
	char *test_create_hold;
	/* CPU samples for usage_nano_cores (metrics.c); a leaf lock. */
	pthread_mutex_t rate_lock;
	struct hindex rates;	  /* of struct rt_rate, by id */
	long long rates_swept_ns; /* when idle samples were last dropped */
};

/* Free every CPU sample (metrics.c). */
void rt_rates_free(struct rt *rt);

/* Kinds of keep entries. */
enum { RT_KEEP_POD, RT_KEEP_CTR };

/* ---- locks.c ---- */

/* Between the steps of a creation: ECANCELED once a Stop or Remove of its
 * id asked it to give up (keep_abort_id). */
int rt_check_abort(struct rt *rt, struct keep_entry *ke, struct husk_error *err);

/* Mark pod or container id busy with a step, waiting (no lock held) while
 * another step has it; rt_end unmarks it and wakes the waiters. */
struct rt_busy *rt_pod_begin(struct rt *rt, const char *id);
struct rt_busy *rt_ctr_begin(struct rt *rt, const char *id);
/* The container's marker if it is free now, else NULL. */
struct rt_busy *rt_ctr_try_begin(struct rt *rt, const char *id);
/* A stop: joins a stop under way on id (each stop then waits for the exit
 * with its own timeout, and the first whose timeout ends sends SIGKILL), or
 * waits for other steps to end and marks the container stopping. */
struct rt_busy *rt_ctr_begin_stop(struct rt *rt, const char *id);
/* Accepts NULL. */
void rt_end(struct rt_busy *b);
static inline void rt_endp(struct rt_busy **b)
{
	rt_end(*b);
}
#define _cleanup_end_ _cleanup_(rt_endp)

void rt_emit(struct rt *rt, enum rt_event ev, const char *ctr_id, const char *pod_id);

/* ---- objects.c ---- */

/* The cgroup a record names, or NULL when it names none (or one that no
 * longer loads: logged). */
struct cg_group *rt_cgroup_of(struct rt *rt, const struct state_cgroup *c);
/* *ret (cleared first by the caller) set to g's typed parts for a record. */
void rt_cgroup_record(const struct cg_group *g, struct state_cgroup *ret);
/* The namespaces a container's are compared with in its kernel
 * view: the pod's pins and huskd's own. */
struct ctr_kview_refs;
void rt_pod_kview_refs(struct rt *rt, const struct pod_record *pod, struct ctr_kview_refs *ret);
/* The view in dir/kernel.json: write json there (live), or read the
 * one recorded. */
void rt_kview_record(const char *dir, const char *json);
int rt_kview_recorded(const char *dir, const char *what, const char *id, char **ret_json,
		      struct husk_error *err);

/* Intent records for cgroups being made: <state>/cgroups-pending/<id>
 * names the cgroup path of pod or container id and is written before the
 * cgroup is created; it goes once the object's record is written or its
 * creation undone. At start, the cgroup of every intent that no record
 * claims is killed and removed: huskd died in between (a SIGKILL inside
 * RunPodSandbox or CreateContainer). With remove_parent, the path's parent
 * goes too when empty (husk's shared default parent of pods). */
int rt_cg_intent_add(struct rt *rt, const char *id, const char *path, bool remove_parent,
		     struct husk_error *err);
void rt_cg_intent_done(struct rt *rt, const char *id);

/* ---- container.c (lifecycle), container_ops.c (queries, calls on a
 * container, recovery) ---- */

/* The cgroup of container (pod, in pod.c) ref, or NULL with err set:
 * ENOENT for an unknown object, EBUSY for one without a cgroup (NOT_FOUND
 * is kept for unknown objects). */
struct cg_group *rt_ctr_cgroup(struct rt *rt, const char *ref, struct husk_error *err);
struct cg_group *rt_pod_cgroup(struct rt *rt, const char *ref, struct husk_error *err);

/* Stop and remove every container of a pod (its marker held). */
int rt_pod_containers_stop(struct rt *rt, const char *pod_id, struct husk_error *err);
int rt_pod_containers_remove(struct rt *rt, const char *pod_id, struct husk_error *err);
/* Reconcile container records at start. */
void rt_containers_recover(struct rt *rt);
/* Record the exit of container id if its shim has seen one
 * (once: a record no longer RUNNING is left alone); emits STOPPED. */
void rt_ctr_refresh_id(struct rt *rt, const char *id);
/* <containers>/ID. */
char *rt_ctr_dir(struct rt *rt, const char *id);
/* Records the exit of a RUNNING container whose shim reported one, or whose
 * shim is gone (255, killing what is left); true when the record changed. */
bool rt_ctr_refresh(struct rt *rt, const struct ctr_record *rec);
/* The oom_score_adj of a running pid (the kernel's, after any clamp). */
bool rt_oom_score_adj(pid_t pid, int *ret);

/* ---- systemd_mode.c ---- */

struct ctr_spec;

/* *ret: whether c runs in systemd mode: the annotation io.husk.systemd
 * "true" or "false" decides; without it, a command that is init
 * (/sbin/init, /usr/sbin/init, /usr/local/sbin/init) or a file named
 * systemd. EINVAL naming the annotation for another value. */
int rt_systemd_mode(const struct rt_ctr_config *c, bool *ret, struct husk_error *err);
/* What systemd as PID 1 needs of its spec s: tmpfs on /run, /run/lock,
 * /tmp and /var/log/journal before the CRI mounts (which may go below
 * /run), each unless a CRI mount takes its place, and container=husk in
 * the environment unless it has container=. */
void rt_systemd_mode_apply(struct ctr_spec *s, const struct rt_ctr_config *c);

/* ---- pod.c ---- */

/* Reconcile pod records and sandboxes at start. */
void rt_pods_recover(struct rt *rt);

/* ---- sandbox.c ---- */

/* The mount point in huskd's mount namespace that path (resolved) is on,
 * and whether that mount is shared (shared:N in mountinfo) and/or a slave
 * (master:N). ret_point is the caller's. Errors: the errno of resolving
 * path or of reading /proc/self/mountinfo. */
int rt_mount_of(const char *path, char **ret_point, bool *ret_shared, bool *ret_slave,
		struct husk_error *err);

/* ---- monitor.c ---- */

/* The exit monitor. start watches every RUNNING record and runs the
 * monitor thread, which calls on_exit(rt, id) for each exit it sees;
 * watch adds one container once it runs (its exit is recorded even if it
 * happened before the call); wait_exit waits for the exit file of the shim
 * directory dir, woken by the monitor's events. */
int rt_monitor_start(struct rt *rt, void (*on_exit)(struct rt *rt, const char *id),
		     struct husk_error *err);
void rt_monitor_stop(struct rt *rt);
void rt_monitor_watch(struct rt *rt, const char *id);
struct ctr_exit;
int rt_monitor_wait_exit(struct rt *rt, const char *dir, long long timeout_ns, struct ctr_exit *ret,
			 struct husk_error *err);

#endif
