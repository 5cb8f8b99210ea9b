/* The record store: one file per record written with fs_write_replace, and
 * the in-memory index (arrays sorted by id, so a prefix resolves with one
 * binary search; hash indexes of the name tuples and of each container's
 * pod, so a create's checks and finds walk no list). */
#include "runtime/state/internal.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/hindex.h"
#include "common/json.h"

/* ---- validation ----------------------------------------------------------------- */

static int pod_check(const struct pod_record *r, struct husk_error *err)
{
	if (!husk_obj_id_valid(r->id))
		return husk_error_set(err, EINVAL, "pod id '%.*s': invalid", ID_MAX,
				      r->id ? r->id : "");
	if (isempty(r->name))
		return husk_error_set(err, EINVAL, "pod '%s': empty name", r->id);
	if (!pod_state_name(r->state))
		return husk_error_set(err, EINVAL, "pod '%s': state %d unknown", r->id,
				      (int)r->state);
	const struct pod_sandbox_info *sb = &r->sandbox;
	if (!pod_ns_mode_name(sb->net) || !pod_ns_mode_name(sb->ipc) ||
	    !pod_ns_mode_name(sb->uts) || !pod_ns_mode_name(sb->pid))
		return husk_error_set(err, EINVAL, "pod '%s': namespace mode unknown", r->id);
	return 0;
}

static int ctr_check(const struct ctr_record *r, struct husk_error *err)
{
	if (!husk_obj_id_valid(r->id))
		return husk_error_set(err, EINVAL, "container id '%.*s': invalid", ID_MAX,
				      r->id ? r->id : "");
	if (isempty(r->name))
		return husk_error_set(err, EINVAL, "container '%s': empty name", r->id);
	if (isempty(r->pod_id))
		return husk_error_set(err, EINVAL, "container '%s': no pod id", r->id);
	if (!ctr_state_name(r->state))
		return husk_error_set(err, EINVAL, "container '%s': state %d unknown", r->id,
				      (int)r->state);
	for (size_t i = 0; i < r->n_mounts; i++) {
		const struct ctr_record_mount *m = &r->mounts[i];
		if (isempty(m->container_path))
			return husk_error_set(err, EINVAL, "container '%s': mount %zu: no path",
					      r->id, i);
		if ((unsigned)m->propagation > CTR_RECORD_PROPAGATION_BIDIRECTIONAL)
			return husk_error_set(err, EINVAL,
					      "container '%s': mount '%s': propagation %d unknown",
					      r->id, m->container_path, (int)m->propagation);
	}
	return 0;
}

static bool same_pod_name(const struct pod_record *a, const struct pod_record *b)
{
	return streq(a->name, b->name) &&
	       streq(a->namespace ? a->namespace : "", b->namespace ? b->namespace : "") &&
	       streq(a->uid ? a->uid : "", b->uid ? b->uid : "") && a->attempt == b->attempt;
}

static bool same_ctr_name(const struct ctr_record *a, const struct ctr_record *b)
{
	return streq(a->pod_id, b->pod_id) && streq(a->name, b->name) && a->attempt == b->attempt;
}

/* A field of a name tuple into its hash, with its NUL; NULL as "" (as the
 * same_*_name tests take it). */
static uint64_t hash_field(uint64_t h, const char *s)
{
	s = s ? s : "";
	return hindex_hash_more(h, s, strlen(s) + 1);
}

static uint64_t pod_name_hash(const struct pod_record *r)
{
	uint64_t h = hash_field(HINDEX_HASH_START, r->name);
	h = hash_field(h, r->namespace);
	h = hash_field(h, r->uid);
	return hindex_hash_more(h, &r->attempt, sizeof(r->attempt));
}

static uint64_t ctr_name_hash(const struct ctr_record *r)
{
	uint64_t h = hash_field(HINDEX_HASH_START, r->pod_id);
	h = hash_field(h, r->name);
	return hindex_hash_more(h, &r->attempt, sizeof(r->attempt));
}

/* ---- shared records ------------------------------------------------------------- */

/* A stored record and how many hold it: the index, and each shared list
 * that handed it out. A stored record is never changed (a write stores a
 * new one and drops the index's hold on the old), so holders read it with
 * no lock. */
struct pod_node {
	struct pod_record rec; /* first: the index holds &node->rec */
	unsigned refs;
	/* In the store's name index while it is the stored record; only the
	 * store touches it, under its locks. */
	struct hindex_node by_name;
};
struct ctr_node {
	struct ctr_record rec;
	unsigned refs;
	struct hindex_node by_name, by_pod; /* as pod_node's */
};

static struct pod_node *pod_node_of(const struct pod_record *r)
{
	return (struct pod_node *)r;
}

static struct ctr_node *ctr_node_of(const struct ctr_record *r)
{
	return (struct ctr_node *)r;
}

static struct pod_record *pod_node_new(void)
{
	struct pod_node *n = xnew(struct pod_node, 1);
	n->refs = 1;
	return &n->rec;
}

static struct ctr_record *ctr_node_new(void)
{
	struct ctr_node *n = xnew(struct ctr_node, 1);
	n->refs = 1;
	return &n->rec;
}

static void pod_node_ref(const struct pod_record *r)
{
	__atomic_add_fetch(&((struct pod_node *)r)->refs, 1, __ATOMIC_RELAXED);
}

static void ctr_node_ref(const struct ctr_record *r)
{
	__atomic_add_fetch(&((struct ctr_node *)r)->refs, 1, __ATOMIC_RELAXED);
}

static void pod_node_unref(const struct pod_record *r)
{
	struct pod_node *n = (struct pod_node *)r;
	if (n && __atomic_sub_fetch(&n->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		pod_record_clear(&n->rec);
		free(n);
	}
}

static void ctr_node_unref(const struct ctr_record *r)
{
	struct ctr_node *n = (struct ctr_node *)r;
	if (n && __atomic_sub_fetch(&n->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		ctr_record_clear(&n->rec);
		free(n);
	}
}

static void pod_node_unrefp(struct pod_record **r)
{
	pod_node_unref(*r);
}

static void ctr_node_unrefp(struct ctr_record **r)
{
	ctr_node_unref(*r);
}

void pod_records_release(const struct pod_record **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		pod_node_unref(v[i]);
	free(v);
}

void ctr_records_release(const struct ctr_record **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		ctr_node_unref(v[i]);
	free(v);
}

/* ---- the store ----------------------------------------------------------------- */

#define STORE_ID_LOCKS 64

struct state_store {
	char *dir;
	char *pod_dir;
	char *ctr_dir;
	size_t max_pods;
	size_t max_ctrs;
	pthread_rwlock_t lock; /* the index arrays */
	pthread_mutex_t wlock; /* one writer of the index at a time */
	/* Writes of one record, in order: taken before wlock by a modify or
	 * remove, held across its file's write, which goes without wlock (a
	 * teardown's four writes a pod, each behind every other pod's, were a
	 * convoy on a busy disk, issue 12). The lock order is idlock, wlock,
	 * lock. */
	pthread_mutex_t idlock[STORE_ID_LOCKS];
	struct pod_record **pods; /* sorted by id */
	size_t n_pods;
	struct ctr_record **ctrs; /* sorted by id */
	size_t n_ctrs;
	/* The records of pods and ctrs by name tuple (pod_name_hash,
	 * ctr_name_hash), and the containers by pod id (hindex_hash): changed
	 * with the arrays, by the pod_/ctr_index_ functions only. */
	struct hindex pod_names, ctr_names, ctr_pods;
	/* Containers whose pod is not stored (a load can find such): while
	 * there are none, a list by pod id goes through ctr_pods. */
	size_t n_orphans;
};

static pthread_mutex_t *id_lock(struct state_store *s, const char *id)
{
	unsigned h = 5381;
	for (const char *p = id; p && *p; p++)
		h = h * 33 + (unsigned char)*p;
	return &s->idlock[h % STORE_ID_LOCKS];
}

/* First index whose id is not less than key. */
static size_t lower_bound(void *const *v, size_t n, const char *key)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(REC_ID(v[mid]), key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool find_exact(void *const *v, size_t n, const char *id, size_t *ret)
{
	size_t i = lower_bound(v, n, id);
	if (i < n && streq(REC_ID(v[i]), id)) {
		*ret = i;
		return true;
	}
	return false;
}

static int resolve(void *const *v, size_t n, const char *ref, const char *kind, size_t *ret,
		   struct husk_error *err)
{
	if (isempty(ref))
		return husk_error_set(err, EINVAL, "%s id: empty", kind);
	size_t i = lower_bound(v, n, ref);
	if (i < n && streq(REC_ID(v[i]), ref)) {
		*ret = i;
		return 0;
	}
	if (i < n && startswith(REC_ID(v[i]), ref)) {
		if (i + 1 < n && startswith(REC_ID(v[i + 1]), ref))
			return husk_error_set(err, EINVAL,
					      "%s id prefix '%s': matches more than one %s", kind,
					      ref, kind);
		*ret = i;
		return 0;
	}
	return husk_error_set(err, ENOENT, "%s '%.*s': not found", kind, ID_MAX, ref);
}

static void index_insert(void ***v, size_t *n, void *rec)
{
	size_t i = lower_bound(*v, *n, REC_ID(rec));
	*v = xrealloc(*v, (*n + 1) * sizeof(void *));
	memmove(&(*v)[i + 1], &(*v)[i], (*n - i) * sizeof(void *));
	(*v)[i] = rec;
	(*n)++;
}

static void index_remove(void **v, size_t *n, size_t i)
{
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(void *));
	(*n)--;
}

/* How many containers of pod id there are. Under wlock or the lock. */
static size_t ctrs_of_pod(struct state_store *s, const char *id)
{
	size_t n = 0;
	for (struct hindex_node *x = hindex_find(&s->ctr_pods, hindex_hash(id)); x;
	     x = hindex_find_next(x))
		if (streq(hindex_entry(x, struct ctr_node, by_pod)->rec.pod_id, id))
			n++;
	return n;
}

static bool pod_stored(struct state_store *s, const char *id)
{
	size_t at;
	return find_exact((void **)s->pods, s->n_pods, id, &at);
}

/* The index of records, arrays and hashes together: under wlock, and the
 * write lock when the store is open (loading needs neither). The index
 * takes the caller's hold on rec; _remove and _replace hand back the one
 * it had on the record that goes. */
static void pod_index_add(struct state_store *s, struct pod_record *rec)
{
	index_insert((void ***)&s->pods, &s->n_pods, rec);
	hindex_add(&s->pod_names, &pod_node_of(rec)->by_name, pod_name_hash(rec));
	if (s->n_orphans)
		s->n_orphans -= ctrs_of_pod(s, rec->id);
}

static struct pod_record *pod_index_remove(struct state_store *s, size_t i)
{
	struct pod_record *old = s->pods[i];
	index_remove((void **)s->pods, &s->n_pods, i);
	hindex_remove(&s->pod_names, &pod_node_of(old)->by_name);
	s->n_orphans += ctrs_of_pod(s, old->id); /* none: remove refuses */
	return old;
}

static struct pod_record *pod_index_replace(struct state_store *s, size_t i, struct pod_record *rec)
{
	struct pod_record *old = s->pods[i];
	s->pods[i] = rec;
	hindex_remove(&s->pod_names, &pod_node_of(old)->by_name);
	hindex_add(&s->pod_names, &pod_node_of(rec)->by_name, pod_name_hash(rec));
	return old;
}

static void ctr_hash_add(struct state_store *s, struct ctr_record *rec)
{
	hindex_add(&s->ctr_names, &ctr_node_of(rec)->by_name, ctr_name_hash(rec));
	hindex_add(&s->ctr_pods, &ctr_node_of(rec)->by_pod, hindex_hash(rec->pod_id));
	if (!pod_stored(s, rec->pod_id))
		s->n_orphans++;
}

static void ctr_hash_remove(struct state_store *s, struct ctr_record *rec)
{
	hindex_remove(&s->ctr_names, &ctr_node_of(rec)->by_name);
	hindex_remove(&s->ctr_pods, &ctr_node_of(rec)->by_pod);
	if (!pod_stored(s, rec->pod_id))
		s->n_orphans--;
}

static void ctr_index_add(struct state_store *s, struct ctr_record *rec)
{
	index_insert((void ***)&s->ctrs, &s->n_ctrs, rec);
	ctr_hash_add(s, rec);
}

static struct ctr_record *ctr_index_remove(struct state_store *s, size_t i)
{
	struct ctr_record *old = s->ctrs[i];
	index_remove((void **)s->ctrs, &s->n_ctrs, i);
	ctr_hash_remove(s, old);
	return old;
}

static struct ctr_record *ctr_index_replace(struct state_store *s, size_t i, struct ctr_record *rec)
{
	struct ctr_record *old = s->ctrs[i];
	s->ctrs[i] = rec;
	ctr_hash_remove(s, old);
	ctr_hash_add(s, rec);
	return old;
}

static char *record_path(const char *dir, const char *id)
{
	return xasprintf("%s/%s.json", dir, id);
}

/* Records may hold secrets (env in the spec snapshot): owner only. They
 * live in the state directory: renamed into place, not fsynced
 * (common/fs.h fs_write_replace says why). */
static int write_record(const char *dir, const char *id, const char *text, struct husk_error *err)
{
	_cleanup_free_ char *path = record_path(dir, id);
	return fs_write_replace(path, text, strlen(text), 0600, err);
}

static int remove_record(const char *dir, const char *id, struct husk_error *err)
{
	_cleanup_free_ char *path = record_path(dir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		return husk_error_errno(err, errno, "remove '%s'", path);
	return 0;
}

/* ---- names and order ---- */

/* The pod other than self (NULL: none) with rec's name tuple, or NULL.
 * Under wlock or the lock. */
static const struct pod_record *pod_name_owner(struct state_store *s, const struct pod_record *rec,
					       const char *self)
{
	for (struct hindex_node *n = hindex_find(&s->pod_names, pod_name_hash(rec)); n;
	     n = hindex_find_next(n)) {
		const struct pod_record *p = &hindex_entry(n, struct pod_node, by_name)->rec;
		if (!streq(p->id, self) && same_pod_name(p, rec))
			return p;
	}
	return NULL;
}

/* The container other than self with rec's pod, name and attempt, or NULL. */
static const struct ctr_record *ctr_name_owner(struct state_store *s, const struct ctr_record *rec,
					       const char *self)
{
	for (struct hindex_node *n = hindex_find(&s->ctr_names, ctr_name_hash(rec)); n;
	     n = hindex_find_next(n)) {
		const struct ctr_record *c = &hindex_entry(n, struct ctr_node, by_name)->rec;
		if (!streq(c->id, self) && same_ctr_name(c, rec))
			return c;
	}
	return NULL;
}

static int cmp_created(long long a, long long b, const char *ida, const char *idb)
{
	if (a != b)
		return a < b ? -1 : 1;
	return strcmp(ida, idb);
}

/* ---- loading ----------------------------------------------------------------- */

static void problem(char ***problems, const char *path, const struct husk_error *e)
{
	_cleanup_free_ char *s = xasprintf("'%s': %s", path, husk_error_msg(e));
	*problems = strv_append(*problems, s);
}

struct loaded {
	char *path;
	void *rec; /* struct pod_record or struct ctr_record */
};

static int cmp_loaded_pod(const void *a, const void *b)
{
	const struct pod_record *x = ((const struct loaded *)a)->rec;
	const struct pod_record *y = ((const struct loaded *)b)->rec;
	return cmp_created(x->created_at, y->created_at, x->id, y->id);
}

static int cmp_loaded_ctr(const void *a, const void *b)
{
	const struct ctr_record *x = ((const struct loaded *)a)->rec;
	const struct ctr_record *y = ((const struct loaded *)b)->rec;
	return cmp_created(x->created_at, y->created_at, x->id, y->id);
}

/* Decode every *.json under dir, removing crash leftovers on the way. */
static int read_dir(const char *dir, bool pods, struct loaded **ret, size_t *ret_n,
		    char ***problems, struct husk_error *err)
{
	_cleanup_strv_ char **names = NULL;
	int r = fs_list_dir(dir, NULL, &names, err);
	if (r < 0)
		return r;
	struct loaded *v = xnew(struct loaded, strv_length(names) + 1);
	size_t n = 0;
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", dir, names[i]);
		struct husk_error e = HUSK_ERROR_INIT;
		if (strstr(names[i], ".json.tmp.")) {
			/* fs_write_replace's temp file of a write a crash cut short */
			if (unlink(path) < 0 && errno != ENOENT) {
				husk_error_errno(&e, errno, "remove");
				problem(problems, path, &e);
				husk_error_clear(&e);
			}
			continue;
		}
		if (!endswith(names[i], ".json"))
			continue;
		_cleanup_free_ char *stem = xstrndup(names[i], strlen(names[i]) - 5);
		_cleanup_json_ yajl_val tree = NULL;
		r = json_parse_file(path, STATE_RECORD_MAX, &tree, &e);
		void *rec = NULL;
		const char *id = NULL;
		if (r == 0 && pods) {
			struct pod_record *p = pod_node_new();
			r = state_pod_decode(tree, p, &e);
			rec = p;
			id = p->id;
		} else if (r == 0) {
			struct ctr_record *c = ctr_node_new();
			r = state_ctr_decode(tree, c, &e);
			rec = c;
			id = c->id;
		}
		if (r == 0 && !streq(id, stem))
			r = husk_error_set(&e, EINVAL, "record id '%s' differs from the file name",
					   id);
		/* What could not be stored is not loaded either: the rest of
		 * huskd relies on the checks add and modify make. */
		if (r == 0)
			r = pods ? pod_check(rec, &e) : ctr_check(rec, &e);
		if (r < 0) {
			problem(problems, path, &e);
			if (pods)
				pod_node_unref(rec);
			else
				ctr_node_unref(rec);
		} else {
			v[n].path = steal_ptr(&path);
			v[n++].rec = rec;
		}
		husk_error_clear(&e);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

/* Index the records of dir. Oldest first, so that when two records claim
 * one name the one created first keeps it. */
static int load_dir(struct state_store *s, const char *dir, bool pods, char ***problems,
		    struct husk_error *err)
{
	struct loaded *v;
	size_t n;
	int r = read_dir(dir, pods, &v, &n, problems, err);
	if (r < 0)
		return r;
	qsort(v, n, sizeof(*v), pods ? cmp_loaded_pod : cmp_loaded_ctr);
	for (size_t i = 0; i < n; i++) {
		struct husk_error e = HUSK_ERROR_INIT;
		size_t at;
		if (pods) {
			struct pod_record *p = v[i].rec;
			const struct pod_record *o = pod_name_owner(s, p, p->id);
			if (o) {
				husk_error_set(&e, EEXIST, "pod name '%s' taken by '%s'", p->name,
					       o->id);
				problem(problems, v[i].path, &e);
				pod_node_unref(p);
			} else {
				pod_index_add(s, p);
			}
		} else {
			struct ctr_record *c = v[i].rec;
			const struct ctr_record *o = ctr_name_owner(s, c, c->id);
			if (o) {
				husk_error_set(&e, EEXIST, "container name '%s' taken by '%s'",
					       c->name, o->id);
				problem(problems, v[i].path, &e);
				ctr_node_unref(c);
			} else {
				if (!find_exact((void **)s->pods, s->n_pods, c->pod_id, &at)) {
					husk_error_set(&e, ENOENT,
						       "pod '%s' of the container is missing",
						       c->pod_id);
					problem(problems, v[i].path, &e);
				}
				ctr_index_add(s, c);
			}
		}
		husk_error_clear(&e);
		free(v[i].path);
	}
	free(v);
	return 0;
}

void state_store_free(struct state_store *s)
{
	if (!s)
		return;
	pod_records_release((const struct pod_record **)s->pods, s->n_pods);
	ctr_records_release((const struct ctr_record **)s->ctrs, s->n_ctrs);
	hindex_clear(&s->pod_names);
	hindex_clear(&s->ctr_names);
	hindex_clear(&s->ctr_pods);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->wlock);
	for (size_t i = 0; i < STORE_ID_LOCKS; i++)
		pthread_mutex_destroy(&s->idlock[i]);
	free(s->dir);
	free(s->pod_dir);
	free(s->ctr_dir);
	free(s);
}

int state_store_open(const char *dir, const struct state_options *opts,
		     struct state_store **ret_store, char ***ret_problems, struct husk_error *err)
{
	if (isempty(dir))
		return husk_error_set(err, EINVAL, "open state store: empty path");
	_cleanup_(state_store_freep) struct state_store *s = xnew(struct state_store, 1);
	pthread_rwlock_init(&s->lock, NULL);
	pthread_mutex_init(&s->wlock, NULL);
	for (size_t i = 0; i < STORE_ID_LOCKS; i++)
		pthread_mutex_init(&s->idlock[i], NULL);
	s->dir = xstrdup(dir);
	s->pod_dir = xasprintf("%s/pods", dir);
	s->ctr_dir = xasprintf("%s/containers", dir);
	s->max_pods = opts && opts->max_pods ? opts->max_pods : STATE_MAX_PODS_DEFAULT;
	s->max_ctrs =
	    opts && opts->max_containers ? opts->max_containers : STATE_MAX_CONTAINERS_DEFAULT;
	int r = fs_mkdir_p(s->pod_dir, 0700, err);
	if (r == 0)
		r = fs_mkdir_p(s->ctr_dir, 0700, err);
	if (r < 0)
		return husk_error_prefix(err, "open state store '%s'", dir);
	_cleanup_strv_ char **problems = xnew(char *, 1);
	r = load_dir(s, s->pod_dir, true, &problems, err);
	if (r == 0)
		r = load_dir(s, s->ctr_dir, false, &problems, err);
	if (r < 0)
		return husk_error_prefix(err, "open state store '%s'", dir);
	*ret_store = steal_ptr(&s);
	if (ret_problems)
		*ret_problems = steal_ptr(&problems);
	return 0;
}

int state_new_id(struct state_store *s, char **ret_id, struct husk_error *err)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		unsigned char raw[STATE_ID_LEN / 2];
		size_t got = 0;
		while (got < sizeof(raw)) {
			ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return husk_error_errno(err, errno, "generate id");
			got += (size_t)n;
		}
		char *id = xmalloc(STATE_ID_LEN + 1);
		for (size_t i = 0; i < sizeof(raw); i++)
			snprintf(id + 2 * i, 3, "%02x", raw[i]);
		bool taken = false;
		if (s) {
			size_t at;
			pthread_rwlock_rdlock(&s->lock);
			taken = find_exact((void **)s->pods, s->n_pods, id, &at) ||
				find_exact((void **)s->ctrs, s->n_ctrs, id, &at);
			pthread_rwlock_unlock(&s->lock);
		}
		if (!taken) {
			*ret_id = id;
			return 0;
		}
		free(id);
	}
	return husk_error_set(err, EEXIST, "generate id: every candidate taken");
}

/* ---- pods ----------------------------------------------------------------------- */

static int pod_name_conflict(struct state_store *s, const struct pod_record *rec,
			     struct husk_error *err)
{
	const struct pod_record *o = pod_name_owner(s, rec, rec->id);
	if (!o)
		return 0;
	return husk_error_set(err, EEXIST,
			      "pod '%s' (namespace '%s', uid '%s', attempt %u): name taken by "
			      "pod '%s'",
			      rec->name, rec->namespace ? rec->namespace : "",
			      rec->uid ? rec->uid : "", rec->attempt, o->id);
}

int state_pod_add(struct state_store *s, const struct pod_record *rec, struct husk_error *err)
{
	int r = pod_check(rec, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->wlock);
	size_t at;
	_cleanup_(pod_node_unrefp) struct pod_record *copy = NULL;
	_cleanup_free_ char *text = NULL;
	if (find_exact((void **)s->pods, s->n_pods, rec->id, &at)) {
		r = husk_error_set(err, EEXIST, "pod '%s': already exists", rec->id);
		goto out;
	}
	r = pod_name_conflict(s, rec, err);
	if (r < 0)
		goto out;
	if (s->n_pods >= s->max_pods) {
		r = husk_error_set(err, ENOSPC, "pod '%s': limit of %zu pods reached", rec->name,
				   s->max_pods);
		goto out;
	}
	copy = pod_node_new();
	state_pod_copy(copy, rec);
	if (!copy->created_at)
		copy->created_at = now_real_ns();
	r = state_pod_encode(copy, &text, err);
	if (r < 0)
		goto out;
	r = write_record(s->pod_dir, copy->id, text, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	pod_index_add(s, steal_ptr(&copy));
	pthread_rwlock_unlock(&s->lock);
out:
	pthread_mutex_unlock(&s->wlock);
	return r;
}

int state_pod_get(struct state_store *s, const char *ref, struct pod_record **ret,
		  struct husk_error *err)
{
	pthread_rwlock_rdlock(&s->lock);
	size_t i;
	int r = resolve((void **)s->pods, s->n_pods, ref, "pod", &i, err);
	if (r == 0)
		*ret = pod_record_dup(s->pods[i]);
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int state_pod_find(struct state_store *s, const char *name, const char *namespace, const char *uid,
		   unsigned attempt, struct pod_record **ret, struct husk_error *err)
{
	struct pod_record want = {.name = (char *)name,
				  .namespace = (char *)namespace,
				  .uid = (char *)uid,
				  .attempt = attempt};
	struct pod_record *found = NULL;
	pthread_rwlock_rdlock(&s->lock);
	const struct pod_record *p = pod_name_owner(s, &want, NULL);
	if (p)
		found = pod_record_dup(p);
	pthread_rwlock_unlock(&s->lock);
	if (!found)
		return husk_error_set(
		    err, ENOENT, "pod '%s' (namespace '%s', uid '%s', attempt %u): not found",
		    name ? name : "", namespace ? namespace : "", uid ? uid : "", attempt);
	*ret = found;
	return 0;
}

int state_pod_modify(struct state_store *s, const char *id,
		     int (*fn)(struct pod_record *rec, void *data, struct husk_error *err),
		     void *data, struct husk_error *err)
{
	pthread_mutex_t *il = id_lock(s, id);
	pthread_mutex_lock(il);
	pthread_mutex_lock(&s->wlock);
	size_t i;
	int r = 0;
	_cleanup_(pod_node_unrefp) struct pod_record *copy = NULL;
	_cleanup_free_ char *text = NULL;
	if (isempty(id) || !find_exact((void **)s->pods, s->n_pods, id, &i)) {
		r = husk_error_set(err, ENOENT, "pod '%.*s': not found", ID_MAX, id ? id : "");
		goto out;
	}
	copy = pod_node_new();
	state_pod_copy(copy, s->pods[i]);
	if (fn) {
		r = fn(copy, data, err);
		if (r < 0) {
			if (err && !err->code)
				husk_error_set(err, -r, "update pod '%s'", id);
			goto out;
		}
	}
	if (!streq(copy->id, id)) {
		r = husk_error_set(err, EINVAL, "update pod '%s': the id may not change", id);
		goto out;
	}
	/* A new name is checked and written under wlock, so no other record
	 * takes it meanwhile; the same name needs only idlock, and no check
	 * (the stored record holds it: a walk of every pod, per change, was
	 * O(pods) in each stop and remove, issue 12). */
	bool same_name = same_pod_name(copy, s->pods[i]);
	r = pod_check(copy, err);
	if (r == 0 && !same_name)
		r = pod_name_conflict(s, copy, err);
	if (r < 0)
		goto out;
	r = state_pod_encode(copy, &text, err);
	if (r < 0)
		goto out;
	if (same_name)
		pthread_mutex_unlock(&s->wlock);
	r = write_record(s->pod_dir, id, text, err);
	if (same_name)
		pthread_mutex_lock(&s->wlock);
	/* Still there (a remove takes idlock), maybe at another index. */
	if (r < 0 || !find_exact((void **)s->pods, s->n_pods, id, &i))
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct pod_record *old = pod_index_replace(s, i, steal_ptr(&copy));
	pthread_rwlock_unlock(&s->lock);
	pod_node_unref(old);
out:
	pthread_mutex_unlock(&s->wlock);
	pthread_mutex_unlock(il);
	return r;
}

static int replace_pod(struct pod_record *rec, void *data, struct husk_error *err _unused_)
{
	pod_record_clear(rec);
	state_pod_copy(rec, data);
	return 0;
}

int state_pod_update(struct state_store *s, const struct pod_record *rec, struct husk_error *err)
{
	return state_pod_modify(s, rec->id, replace_pod, (void *)rec, err);
}

int state_pod_remove(struct state_store *s, const char *id, struct husk_error *err)
{
	/* All under wlock: a container added to the pod meanwhile would
	 * outlive it. */
	pthread_mutex_t *il = id_lock(s, id);
	pthread_mutex_lock(il);
	pthread_mutex_lock(&s->wlock);
	size_t i;
	int r = 0;
	if (isempty(id) || !find_exact((void **)s->pods, s->n_pods, id, &i)) {
		r = husk_error_set(err, ENOENT, "pod '%.*s': not found", ID_MAX, id ? id : "");
		goto out;
	}
	size_t n = ctrs_of_pod(s, id);
	if (n) {
		r = husk_error_set(err, EBUSY, "remove pod '%s': %zu containers remain", id, n);
		goto out;
	}
	r = remove_record(s->pod_dir, id, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct pod_record *old = pod_index_remove(s, i);
	pthread_rwlock_unlock(&s->lock);
	pod_node_unref(old);
out:
	pthread_mutex_unlock(&s->wlock);
	pthread_mutex_unlock(il);
	return r;
}

static int cmp_pod(const void *a, const void *b)
{
	const struct pod_record *x = *(struct pod_record *const *)a;
	const struct pod_record *y = *(struct pod_record *const *)b;
	return cmp_created(x->created_at, y->created_at, x->id, y->id);
}

static int cmp_ctr(const void *a, const void *b)
{
	const struct ctr_record *x = *(struct ctr_record *const *)a;
	const struct ctr_record *y = *(struct ctr_record *const *)b;
	return cmp_created(x->created_at, y->created_at, x->id, y->id);
}

static bool pod_matches(const struct pod_record *p, const struct pod_filter *f)
{
	if (!f)
		return true;
	if (f->id && !startswith(p->id, f->id))
		return false;
	if (f->has_state && p->state != f->state)
		return false;
	return state_map_match(&p->labels, f->labels);
}

/* The range [*lo, *hi) of v (sorted by id) whose ids start with prefix;
 * all of v for none. */
static void prefix_range(void *const *v, size_t n, const char *prefix, size_t *lo, size_t *hi)
{
	*lo = 0;
	*hi = n;
	if (isempty(prefix))
		return;
	*lo = *hi = lower_bound(v, n, prefix);
	while (*hi < n && startswith(REC_ID(v[*hi]), prefix))
		(*hi)++;
}

/* The stored pods f matches, in no order, NULL-terminated (the array the
 * caller's, the records the store's); an id prefix narrows the walk to
 * its range. Under the lock. */
static struct pod_record **pods_matching(struct state_store *s, const struct pod_filter *f,
					 size_t *ret_n)
{
	size_t lo, hi, n = 0;
	prefix_range((void **)s->pods, s->n_pods, f ? f->id : NULL, &lo, &hi);
	struct pod_record **v = xnew(struct pod_record *, hi - lo + 1);
	for (size_t i = lo; i < hi; i++)
		if (pod_matches(s->pods[i], f))
			v[n++] = s->pods[i];
	*ret_n = n;
	return v;
}

int state_pod_list(struct state_store *s, const struct pod_filter *f, struct pod_record ***ret,
		   size_t *ret_n, struct husk_error *err _unused_)
{
	pthread_rwlock_rdlock(&s->lock);
	size_t n;
	struct pod_record **v = pods_matching(s, f, &n);
	for (size_t i = 0; i < n; i++)
		v[i] = pod_record_dup(v[i]);
	pthread_rwlock_unlock(&s->lock);
	qsort(v, n, sizeof(*v), cmp_pod);
	*ret = v;
	*ret_n = n;
	return 0;
}

int state_pod_list_shared(struct state_store *s, const struct pod_filter *f,
			  const struct pod_record ***ret, size_t *ret_n,
			  struct husk_error *err _unused_)
{
	pthread_rwlock_rdlock(&s->lock);
	size_t n;
	const struct pod_record **v = (const struct pod_record **)pods_matching(s, f, &n);
	for (size_t i = 0; i < n; i++)
		pod_node_ref(v[i]);
	pthread_rwlock_unlock(&s->lock);
	qsort(v, n, sizeof(*v), cmp_pod);
	*ret = v;
	*ret_n = n;
	return 0;
}

/* ---- containers ---------------------------------------------------------------- */

static int ctr_name_conflict(struct state_store *s, const struct ctr_record *rec,
			     struct husk_error *err)
{
	const struct ctr_record *o = ctr_name_owner(s, rec, rec->id);
	if (!o)
		return 0;
	return husk_error_set(err, EEXIST,
			      "container '%s' (attempt %u) of pod '%s': name taken by "
			      "container '%s'",
			      rec->name, rec->attempt, rec->pod_id, o->id);
}

int state_ctr_add(struct state_store *s, const struct ctr_record *rec, struct husk_error *err)
{
	int r = ctr_check(rec, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&s->wlock);
	size_t at;
	_cleanup_(ctr_node_unrefp) struct ctr_record *copy = NULL;
	_cleanup_free_ char *text = NULL;
	if (find_exact((void **)s->ctrs, s->n_ctrs, rec->id, &at)) {
		r = husk_error_set(err, EEXIST, "container '%s': already exists", rec->id);
		goto out;
	}
	if (!find_exact((void **)s->pods, s->n_pods, rec->pod_id, &at)) {
		r = husk_error_set(err, ENOENT, "container '%s': pod '%s' not found", rec->name,
				   rec->pod_id);
		goto out;
	}
	r = ctr_name_conflict(s, rec, err);
	if (r < 0)
		goto out;
	if (s->n_ctrs >= s->max_ctrs) {
		r = husk_error_set(err, ENOSPC, "container '%s': limit of %zu containers reached",
				   rec->name, s->max_ctrs);
		goto out;
	}
	copy = ctr_node_new();
	state_ctr_copy(copy, rec);
	if (!copy->created_at)
		copy->created_at = now_real_ns();
	r = state_ctr_encode(copy, &text, err);
	if (r < 0)
		goto out;
	r = write_record(s->ctr_dir, copy->id, text, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	ctr_index_add(s, steal_ptr(&copy));
	pthread_rwlock_unlock(&s->lock);
out:
	pthread_mutex_unlock(&s->wlock);
	return r;
}

int state_ctr_get(struct state_store *s, const char *ref, struct ctr_record **ret,
		  struct husk_error *err)
{
	pthread_rwlock_rdlock(&s->lock);
	size_t i;
	int r = resolve((void **)s->ctrs, s->n_ctrs, ref, "container", &i, err);
	if (r == 0)
		*ret = ctr_record_dup(s->ctrs[i]);
	pthread_rwlock_unlock(&s->lock);
	return r;
}

int state_ctr_find(struct state_store *s, const char *pod_id, const char *name, unsigned attempt,
		   struct ctr_record **ret, struct husk_error *err)
{
	struct ctr_record want = {
	    .pod_id = (char *)pod_id, .name = (char *)name, .attempt = attempt};
	struct ctr_record *found = NULL;
	pthread_rwlock_rdlock(&s->lock);
	const struct ctr_record *c = ctr_name_owner(s, &want, NULL);
	if (c)
		found = ctr_record_dup(c);
	pthread_rwlock_unlock(&s->lock);
	if (!found)
		return husk_error_set(err, ENOENT,
				      "container '%s' (attempt %u) of pod '%s': not found",
				      name ? name : "", attempt, pod_id ? pod_id : "");
	*ret = found;
	return 0;
}

int state_ctr_modify(struct state_store *s, const char *id,
		     int (*fn)(struct ctr_record *rec, void *data, struct husk_error *err),
		     void *data, struct husk_error *err)
{
	pthread_mutex_t *il = id_lock(s, id);
	pthread_mutex_lock(il);
	pthread_mutex_lock(&s->wlock);
	size_t i, at;
	int r = 0;
	_cleanup_(ctr_node_unrefp) struct ctr_record *copy = NULL;
	_cleanup_free_ char *text = NULL;
	if (isempty(id) || !find_exact((void **)s->ctrs, s->n_ctrs, id, &i)) {
		r = husk_error_set(err, ENOENT, "container '%.*s': not found", ID_MAX,
				   id ? id : "");
		goto out;
	}
	copy = ctr_node_new();
	state_ctr_copy(copy, s->ctrs[i]);
	if (fn) {
		r = fn(copy, data, err);
		if (r < 0) {
			if (err && !err->code)
				husk_error_set(err, -r, "update container '%s'", id);
			goto out;
		}
	}
	if (!streq(copy->id, id)) {
		r = husk_error_set(err, EINVAL, "update container '%s': the id may not change", id);
		goto out;
	}
	r = ctr_check(copy, err);
	if (r == 0 && !streq(copy->pod_id, s->ctrs[i]->pod_id) &&
	    !find_exact((void **)s->pods, s->n_pods, copy->pod_id, &at))
		r = husk_error_set(err, ENOENT, "container '%s': pod '%s' not found", id,
				   copy->pod_id);
	/* As state_pod_modify: a new name or pod is checked and written
	 * under wlock, the same one is neither. */
	bool same_name = same_ctr_name(copy, s->ctrs[i]);
	if (r == 0 && !same_name)
		r = ctr_name_conflict(s, copy, err);
	if (r < 0)
		goto out;
	r = state_ctr_encode(copy, &text, err);
	if (r < 0)
		goto out;
	if (same_name)
		pthread_mutex_unlock(&s->wlock);
	r = write_record(s->ctr_dir, id, text, err);
	if (same_name)
		pthread_mutex_lock(&s->wlock);
	if (r < 0 || !find_exact((void **)s->ctrs, s->n_ctrs, id, &i))
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct ctr_record *old = ctr_index_replace(s, i, steal_ptr(&copy));
	pthread_rwlock_unlock(&s->lock);
	ctr_node_unref(old);
out:
	pthread_mutex_unlock(&s->wlock);
	pthread_mutex_unlock(il);
	return r;
}

static int replace_ctr(struct ctr_record *rec, void *data, struct husk_error *err _unused_)
{
	ctr_record_clear(rec);
	state_ctr_copy(rec, data);
	return 0;
}

int state_ctr_update(struct state_store *s, const struct ctr_record *rec, struct husk_error *err)
{
	return state_ctr_modify(s, rec->id, replace_ctr, (void *)rec, err);
}

int state_ctr_remove(struct state_store *s, const char *id, struct husk_error *err)
{
	pthread_mutex_t *il = id_lock(s, id);
	pthread_mutex_lock(il);
	pthread_mutex_lock(&s->wlock);
	size_t i;
	int r = 0;
	if (isempty(id) || !find_exact((void **)s->ctrs, s->n_ctrs, id, &i)) {
		r = husk_error_set(err, ENOENT, "container '%.*s': not found", ID_MAX,
				   id ? id : "");
		goto out;
	}
	/* Listed until its file is gone: its pod cannot be removed before. */
	pthread_mutex_unlock(&s->wlock);
	r = remove_record(s->ctr_dir, id, err);
	pthread_mutex_lock(&s->wlock);
	if (r < 0 || !find_exact((void **)s->ctrs, s->n_ctrs, id, &i))
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct ctr_record *old = ctr_index_remove(s, i);
	pthread_rwlock_unlock(&s->lock);
	ctr_node_unref(old);
out:
	pthread_mutex_unlock(&s->wlock);
	pthread_mutex_unlock(il);
	return r;
}

static bool ctr_matches(const struct ctr_record *c, const struct ctr_filter *f)
{
	if (!f)
		return true;
	if (f->id && !startswith(c->id, f->id))
		return false;
	if (f->pod_id && !startswith(c->pod_id, f->pod_id))
		return false;
	if (f->has_state && c->state != f->state)
		return false;
	return state_map_match(&c->labels, f->labels);
}

/* Containers of the pods whose ids start with prefix, that f matches, as
 * ctrs_matching; each pod's through the ctr_pods index. */
static struct ctr_record **ctrs_of_pods(struct state_store *s, const char *prefix,
					const struct ctr_filter *f, size_t *ret_n)
{
	size_t lo, hi, n = 0, cap = 8;
	prefix_range((void **)s->pods, s->n_pods, prefix, &lo, &hi);
	struct ctr_record **v = xnew(struct ctr_record *, cap);
	for (size_t i = lo; i < hi; i++) {
		const char *pod = s->pods[i]->id;
		for (struct hindex_node *x = hindex_find(&s->ctr_pods, hindex_hash(pod)); x;
		     x = hindex_find_next(x)) {
			struct ctr_record *c = &hindex_entry(x, struct ctr_node, by_pod)->rec;
			if (!streq(c->pod_id, pod) || !ctr_matches(c, f))
				continue;
			if (n + 1 >= cap)
				v = xrealloc(v, (cap *= 2) * sizeof(*v));
			v[n++] = c;
		}
	}
	v[n] = NULL;
	*ret_n = n;
	return v;
}

/* The stored containers f matches, as pods_matching: an id prefix narrows
 * the walk to its range, a pod id prefix to the containers of the pods in
 * its range (a StopPodSandbox or RemovePodSandbox lists its pod's), unless
 * some container's pod is not stored. Under the lock. */
static struct ctr_record **ctrs_matching(struct state_store *s, const struct ctr_filter *f,
					 size_t *ret_n)
{
	if (f && isempty(f->id) && !isempty(f->pod_id) && !s->n_orphans)
		return ctrs_of_pods(s, f->pod_id, f, ret_n);
	size_t lo, hi, n = 0;
	prefix_range((void **)s->ctrs, s->n_ctrs, f ? f->id : NULL, &lo, &hi);
	struct ctr_record **v = xnew(struct ctr_record *, hi - lo + 1);
	for (size_t i = lo; i < hi; i++)
		if (ctr_matches(s->ctrs[i], f))
			v[n++] = s->ctrs[i];
	*ret_n = n;
	return v;
}

int state_ctr_list(struct state_store *s, const struct ctr_filter *f, struct ctr_record ***ret,
		   size_t *ret_n, struct husk_error *err _unused_)
{
	pthread_rwlock_rdlock(&s->lock);
	size_t n;
	struct ctr_record **v = ctrs_matching(s, f, &n);
	for (size_t i = 0; i < n; i++)
		v[i] = ctr_record_dup(v[i]);
	pthread_rwlock_unlock(&s->lock);
	qsort(v, n, sizeof(*v), cmp_ctr);
	*ret = v;
	*ret_n = n;
	return 0;
}

int state_ctr_list_shared(struct state_store *s, const struct ctr_filter *f,
			  const struct ctr_record ***ret, size_t *ret_n,
			  struct husk_error *err _unused_)
{
	pthread_rwlock_rdlock(&s->lock);
	size_t n;
	const struct ctr_record **v = (const struct ctr_record **)ctrs_matching(s, f, &n);
	for (size_t i = 0; i < n; i++)
		ctr_node_ref(v[i]);
	pthread_rwlock_unlock(&s->lock);
	qsort(v, n, sizeof(*v), cmp_ctr);
	*ret = v;
	*ret_n = n;
	return 0;
}
