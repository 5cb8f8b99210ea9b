/* husk's records of pods and containers: one JSON file per object, written
 * atomically, and an in-memory index with thread-safe lookups by id, unique
 * id prefix, name and filters. A plain library: it stores what it is given
 * and knows nothing of namespaces, cgroups or processes. */
#ifndef HUSK_RUNTIME_STATE_H
#define HUSK_RUNTIME_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/error.h"
#include "runtime/sandbox.h"

/* Where the records live. The store takes a directory D and keeps
 *   D/pods/ID.json and D/containers/ID.json
 * huskd should pass <state>/records (default /run/husk/records): the
 * records describe kernel objects (namespaces, mounts, processes) that live
 * until a reboot and no longer, so a tmpfs that a reboot clears keeps the
 * two in step, while a SIGKILL of huskd loses nothing. They must not share
 * <state>/pods, which belongs to the sandbox layer. Each write is a temp
 * file and a rename, no fsync (fs_write_replace): a reader or a crash of
 * huskd sees the old record or the new one, never a mix. */

#define STATE_ID_LEN 64		     /* hex digits of a generated id */
#define STATE_RECORD_MAX (16U << 20) /* bytes of one record file */
#define STATE_MAX_PODS_DEFAULT 4096
#define STATE_MAX_CONTAINERS_DEFAULT 16384

enum pod_state { POD_STATE_READY, POD_STATE_NOTREADY };
enum ctr_state { CTR_STATE_CREATED, CTR_STATE_RUNNING, CTR_STATE_EXITED, CTR_STATE_UNKNOWN };

/* "READY"/"NOTREADY" and "CREATED"/"RUNNING"/"EXITED"/"UNKNOWN"; the parse
 * functions return -1 for anything else. */
const char *pod_state_name(enum pod_state s);
int pod_state_parse(const char *name);
const char *ctr_state_name(enum ctr_state s);
int ctr_state_parse(const char *name);

/* String map for labels and annotations; keys are unique, order kept. */
struct state_kv {
	char *key;
	char *value;
};
struct state_map {
	struct state_kv *items;
	size_t n;
};

/* Set key to value (both copied), replacing an existing value. */
void state_map_set(struct state_map *m, const char *key, const char *value);
/* The value of key, or NULL. */
const char *state_map_get(const struct state_map *m, const char *key);
/* True when every pair of want is in have (an empty want matches all). */
bool state_map_match(const struct state_map *have, const struct state_map *want);
void state_map_copy(struct state_map *dst, const struct state_map *src);
/* Free the items and empty the map; repeated calls are fine. */
void state_map_clear(struct state_map *m);

/* A cgroup husk made for a pod or container: its path, and per cgroup
 * hierarchy (by name) how many trailing directories of that path husk
 * created there (what removing it undoes). path NULL: none. */
struct state_cgroup_hier {
	char *name;
	int created;
};
struct state_cgroup {
	char *path;
	struct state_cgroup_hier *hiers;
	size_t n_hiers;
};
void state_cgroup_clear(struct state_cgroup *c);
void state_cgroup_copy(struct state_cgroup *dst, const struct state_cgroup *src);

/* One pod. Every pointer is owned by the record; NULL strings are absent
 * ("" is kept as ""). */
struct pod_record {
	char *id;
	/* CRI metadata; (name, namespace, uid, attempt) is unique in a store */
	char *name;
	char *uid;
	char *namespace;
	unsigned attempt;
	enum pod_state state;
	long long created_at; /* ns since the epoch; 0 on add means now */
	struct state_map labels;
	struct state_map annotations;
	char *runtime_handler;
	char *hostname; /* as the config asked; sandbox.hostname is what it got */
	char *log_directory;
	char *cgroup_parent;
	/* Namespace modes, pin paths, shm, files and the PID-namespace init, as
	 * pod_sandbox_create returned them. */
	struct pod_sandbox_info sandbox;
	char **ips; /* NULL-terminated pod addresses, or NULL */
	struct state_cgroup cgroup;
	bool privileged; /* linux.security_context.privileged */
};

/* CRI MountPropagation values. */
enum ctr_record_propagation {
	CTR_RECORD_PROPAGATION_PRIVATE,
	CTR_RECORD_PROPAGATION_HOST_TO_CONTAINER,
	CTR_RECORD_PROPAGATION_BIDIRECTIONAL
};

struct ctr_record_mount {
	char *container_path;
	char *host_path;
	bool readonly;
	bool selinux_relabel;
	bool recursive_read_only;
	enum ctr_record_propagation propagation;
};

/* One container; ownership as for pod_record. (pod_id, name, attempt) is
 * unique in a store. */
struct ctr_record {
	char *id;
	char *pod_id;
	char *name;
	unsigned attempt;
	char *image;	 /* ImageSpec.image as the caller gave it */
	char *image_id;	 /* the resolved image id */
	char *image_ref; /* the image reference reported back (repo digest) */
	enum ctr_state state;
	long long created_at;  /* ns since the epoch; 0 on add means now */
	long long started_at;  /* 0: not started */
	long long finished_at; /* 0: not finished */
	int exit_code;
	char *reason;
	char *message;
	pid_t pid;			   /* 0: none */
	unsigned long long pid_start_time; /* /proc/PID/stat start time */
	struct state_map labels;
	struct state_map annotations;
	char *log_path;
	struct ctr_record_mount *mounts;
	size_t n_mounts;
	char *spec_json; /* snapshot of the config-derived spec, JSON text, or NULL */
	char *rootfs;
	struct state_cgroup cgroup;
	int stop_signal; /* the signal StopContainer sends first; 0: SIGTERM */
};

/* Free the members and zero the struct (repeated calls fine); _free also
 * frees the struct; _dup makes a deep copy. All accept NULL. */
void pod_record_clear(struct pod_record *r);
void pod_record_free(struct pod_record *r);
struct pod_record *pod_record_dup(const struct pod_record *r);
void pod_records_free(struct pod_record **v, size_t n);
void ctr_record_clear(struct ctr_record *r);
void ctr_record_free(struct ctr_record *r);
struct ctr_record *ctr_record_dup(const struct ctr_record *r);
void ctr_records_free(struct ctr_record **v, size_t n);
static inline void pod_record_freep(struct pod_record **r)
{
	pod_record_free(*r);
}
static inline void ctr_record_freep(struct ctr_record **r)
{
	ctr_record_free(*r);
}

struct state_store;

struct state_options {
	size_t max_pods;       /* 0: STATE_MAX_PODS_DEFAULT; beyond it add gives ENOSPC */
	size_t max_containers; /* 0: STATE_MAX_CONTAINERS_DEFAULT */
};

/* Open the store in dir (created if missing) and load every record. Files a
 * crash left half-written (the *.tmp.* of fs_write_replace) are removed.
 * A record that cannot be read or parsed, that add would refuse (a bad id,
 * an empty name, a mount without a path...), or whose id does not match its
 * file name, is skipped and left in place; so is a record whose name is
 * already taken by one created earlier. Each such problem is one line in
 * *ret_problems ("'path': reason") for the caller to log; a container whose
 * pod is missing is loaded and reported too. opts and ret_problems may be
 * NULL. Errors: only when dir itself is unusable. */
int state_store_open(const char *dir, const struct state_options *opts,
		     struct state_store **ret_store, char ***ret_problems, struct husk_error *err);
void state_store_free(struct state_store *s);
static inline void state_store_freep(struct state_store **s)
{
	state_store_free(*s);
}

/* A new id: STATE_ID_LEN lowercase hex digits from getrandom(), unique among
 * the store's pods and containers (s may be NULL to skip that check). */
int state_new_id(struct state_store *s, char **ret_id, struct husk_error *err);

/* ---- pods ----
 * Reads hand out deep copies the caller frees; the store keeps its own.
 * Writes are serialised, reach the disk before the index, and leave both
 * unchanged on failure. ref is a full id or a unique prefix of one. The
 * JSON text spec_json is stored compact, so what a read returns is what a
 * reload of the file gives. Records of the format before typed fields
 * (version 1: cgroup, privileged and stop signal inside an "extra" JSON
 * object, the cgroup as "name=N;...@path") are read into the typed fields;
 * every write is of the current format. */

/* Store a copy of rec. Errors: EINVAL (missing or malformed id or name, a
 * string not UTF-8, a record over STATE_RECORD_MAX), EEXIST
 * (the id, or the name tuple: the message names the existing pod's id),
 * ENOSPC (max_pods reached). */
int state_pod_add(struct state_store *s, const struct pod_record *rec, struct husk_error *err);

/* Copy of the pod ref names. ENOENT when none; EINVAL when the prefix
 * matches more than one (or is empty). */
int state_pod_get(struct state_store *s, const char *ref, struct pod_record **ret,
		  struct husk_error *err);

/* Copy of the pod with this CRI metadata; ENOENT when none. */
int state_pod_find(struct state_store *s, const char *name, const char *namespace, const char *uid,
		   unsigned attempt, struct pod_record **ret, struct husk_error *err);

/* Read-modify-write of pod id (full id): fn edits a copy; if it returns
 * < 0 (filling err) nothing changes, else the copy is saved and replaces the
 * record. fn runs with the store's write lock held (reads go on), so it must
 * not call back into the store. The id may not change; a new name tuple is
 * checked as on add. Errors: ENOENT, fn's, add's. */
int state_pod_modify(struct state_store *s, const char *id,
		     int (*fn)(struct pod_record *rec, void *data, struct husk_error *err),
		     void *data, struct husk_error *err);

/* Replace pod rec->id with a copy of rec (state_pod_modify without a fn). */
int state_pod_update(struct state_store *s, const struct pod_record *rec, struct husk_error *err);

/* Delete pod id (full id), file and index. ENOENT when unknown; EBUSY while
 * containers of the pod remain. */
int state_pod_remove(struct state_store *s, const char *id, struct husk_error *err);

struct pod_filter {
	const char *id; /* id or id prefix; NULL: any */
	bool has_state; /* when true only pods in state */
	enum pod_state state;
	const struct state_map *labels; /* all must match; NULL: any */
};

/* Copies of the pods matching f (NULL: all), oldest first. */
int state_pod_list(struct state_store *s, const struct pod_filter *f, struct pod_record ***ret,
		   size_t *ret_n, struct husk_error *err);

/* The pods matching f (NULL: all), oldest first, as the store's own records
 * instead of copies: what a list for a reply needs, with no copying. A
 * stored record is never changed (a write stores a new one), so each stays
 * as it was when listed, even past a modify or remove of its pod, until
 * pod_records_release, which also frees the array. Safe from any thread;
 * the records are read-only. */
int state_pod_list_shared(struct state_store *s, const struct pod_filter *f,
			  const struct pod_record ***ret, size_t *ret_n, struct husk_error *err);
void pod_records_release(const struct pod_record **v, size_t n);

/* ---- containers ---- (same rules as pods) */

/* Errors as state_pod_add, plus ENOENT when rec->pod_id is not a pod of the
 * store, EINVAL for bad JSON in spec_json or a mount without paths. */
int state_ctr_add(struct state_store *s, const struct ctr_record *rec, struct husk_error *err);
int state_ctr_get(struct state_store *s, const char *ref, struct ctr_record **ret,
		  struct husk_error *err);
/* The container of pod pod_id (full id) with this name and attempt. */
int state_ctr_find(struct state_store *s, const char *pod_id, const char *name, unsigned attempt,
		   struct ctr_record **ret, struct husk_error *err);
int state_ctr_modify(struct state_store *s, const char *id,
		     int (*fn)(struct ctr_record *rec, void *data, struct husk_error *err),
		     void *data, struct husk_error *err);
int state_ctr_update(struct state_store *s, const struct ctr_record *rec, struct husk_error *err);
/* ENOENT when unknown. */
int state_ctr_remove(struct state_store *s, const char *id, struct husk_error *err);

struct ctr_filter {
	const char *id;	    /* id or id prefix; NULL: any */
	const char *pod_id; /* pod id or prefix; NULL: any */
	bool has_state;
	enum ctr_state state;
	const struct state_map *labels;
};

/* Copies of the containers matching f (NULL: all), oldest first. With an
 * id prefix, or a pod id prefix, the cost is of the records it selects,
 * not of the store (as for pods with an id prefix). */
int state_ctr_list(struct state_store *s, const struct ctr_filter *f, struct ctr_record ***ret,
		   size_t *ret_n, struct husk_error *err);
/* As state_pod_list_shared, for containers. */
int state_ctr_list_shared(struct state_store *s, const struct ctr_filter *f,
			  const struct ctr_record ***ret, size_t *ret_n, struct husk_error *err);
void ctr_records_release(const struct ctr_record **v, size_t n);

#endif
