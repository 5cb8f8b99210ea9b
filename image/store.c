/* The image store under <root>/image: blobs/sha256 (manifests, configs),
 * layers/<chain hex> (unpacked trees), images/<id hex>.json (records) and
 * index.json (every tag and digest reference; writing it commits a pull),
 * plus lookup, listing, removal, usage and start-up cleanup. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "image/internal.h"

#define MAX_RECORD_SIZE (1u << 20)
#define MAX_INDEX_SIZE (64u << 20)
#define MIN_ID_PREFIX 6

void img_record_free(struct img_record *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->manifest_digest);
	free(r->top_digest);
	strv_free(r->blobs);
	strv_free(r->chain_ids);
	free(r->user);
	free(r);
}

void img_info_free(struct img_info *i)
{
	if (!i)
		return;
	free(i->id);
	strv_free(i->repo_tags);
	strv_free(i->repo_digests);
	free(i->user);
	free(i->manifest_digest);
	strv_free(i->chain_ids);
	free(i->config_json);
	free(i);
}

void img_info_list_free(struct img_info **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		img_info_free(v[i]);
	free(v);
}

void img_fs_usage_clear(struct img_fs_usage *u)
{
	if (!u)
		return;
	free(u->mountpoint);
	*u = (struct img_fs_usage){0};
}

char *img_store_layer_path(struct img_store *s, const char *chain_id)
{
	return xasprintf("%s/%s", s->layers, img_digest_hex(chain_id));
}

char *img_store_blob_path(struct img_store *s, const char *digest)
{
	return xasprintf("%s/%s", s->blobs, img_digest_hex(digest));
}

struct img_record *img_store_record(struct img_store *s, const char *id)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (streq(s->recs[i]->id, id))
			return s->recs[i];
	return NULL;
}

const struct img_user *img_store_user_of(struct img_store *s, const char *id)
{
	for (struct hindex_node *n = hindex_find(&s->user_images, hindex_hash(id)); n;
	     n = hindex_find_next(n)) {
		const struct img_user *u = hindex_entry(n, struct img_user, by_image);
		if (streq(u->id, id))
			return u;
	}
	return NULL;
}

struct img_user *img_store_user_find(struct img_store *s, const char *cid)
{
	for (struct hindex_node *n = hindex_find(&s->user_cids, hindex_hash(cid)); n;
	     n = hindex_find_next(n)) {
		struct img_user *u = hindex_entry(n, struct img_user, by_cid);
		if (streq(u->cid, cid))
			return u;
	}
	return NULL;
}

void img_store_user_add(struct img_store *s, struct img_user *u)
{
	s->users = xrealloc(s->users, (s->n_users + 1) * sizeof(*s->users));
	u->at = s->n_users;
	s->users[s->n_users++] = u;
	hindex_add(&s->user_cids, &u->by_cid, hindex_hash(u->cid));
	hindex_add(&s->user_images, &u->by_image, hindex_hash(u->id));
}

static void user_free(struct img_user *u)
{
	free(u->cid);
	free(u->id);
	free(u->mountpoint);
	free(u->idmap_userns);
	free(u);
}

void img_store_user_drop(struct img_store *s, const char *cid)
{
	struct img_user *u = img_store_user_find(s, cid);
	if (!u)
		return;
	hindex_remove(&s->user_cids, &u->by_cid);
	hindex_remove(&s->user_images, &u->by_image);
	/* The last takes its place: the array has no order. */
	s->users[u->at] = s->users[--s->n_users];
	s->users[u->at]->at = u->at;
	user_free(u);
}

/* ---- in-flight keys and holds ---- */

static bool strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

/* Remove the first occurrence of s from v. */
static void strv_remove_one(char **v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s)) {
			free(v[i]);
			memmove(&v[i], &v[i + 1], (strv_length(v + i + 1) + 1) * sizeof(char *));
			return;
		}
}

void img_store_claim(struct img_store *s, const char *key)
{
	pthread_mutex_lock(&s->lock);
	while (strv_contains(s->inflight, key))
		pthread_cond_wait(&s->cond, &s->lock);
	s->inflight = strv_append(s->inflight, key);
	pthread_mutex_unlock(&s->lock);
}

int img_store_claim_session(struct img_store *s, const char *key, struct img_session *sess,
			    struct husk_error *err)
{
	pthread_mutex_lock(&s->lock);
	while (strv_contains(s->inflight, key)) {
		if (img_session_stopped(sess)) {
			pthread_mutex_unlock(&s->lock);
			return img_session_stop_error(sess, key, err);
		}
		/* The holder makes progress for both of us, or fails on its own
		 * deadline and lets us try: waiting is not stalling. */
		__atomic_store_n(&sess->progress_ns, now_mono_ns(), __ATOMIC_RELAXED);
		/* Poll: the caller's cancel is not a condition of this store. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	}
	s->inflight = strv_append(s->inflight, key);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

void img_store_release(struct img_store *s, const char *key)
{
	pthread_mutex_lock(&s->lock);
	strv_remove_one(s->inflight, key);
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

void img_store_hold(struct img_store *s, char *const *keys)
{
	for (size_t i = 0; keys && keys[i]; i++)
		s->held = strv_append(s->held, keys[i]);
}

void img_store_unhold(struct img_store *s, char *const *keys)
{
	for (size_t i = 0; keys && keys[i]; i++)
		strv_remove_one(s->held, keys[i]);
}

/* ---- persistence ---- */

static char *record_json(const struct img_record *r)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(true);
	yajl_gen_map_open(g);
	json_kv_str(g, "id", r->id);
	json_kv_str(g, "manifest", r->manifest_digest);
	json_kv_str(g, "top", r->top_digest);
	json_key(g, "blobs");
	yajl_gen_array_open(g);
	for (size_t i = 0; r->blobs[i]; i++)
		json_str(g, r->blobs[i]);
	yajl_gen_array_close(g);
	json_key(g, "layers");
	yajl_gen_array_open(g);
	for (size_t i = 0; r->chain_ids[i]; i++)
		json_str(g, r->chain_ids[i]);
	yajl_gen_array_close(g);
	json_kv_int(g, "size", (long long)r->size);
	json_kv_str(g, "user", r->user);
	json_kv_int(g, "created", r->created);
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}

int img_store_write_record(struct img_store *s, const struct img_record *r, struct husk_error *err)
{
	_cleanup_free_ char *text = record_json(r);
	_cleanup_free_ char *path = xasprintf("%s/%s.json", s->images, img_digest_hex(r->id));
	return fs_write_atomic(path, text, strlen(text), 0644, err);
}

static char **digest_array(yajl_val v, bool *ok)
{
	char **out = xnew(char *, 1);
	if (!YAJL_IS_ARRAY(v)) {
		*ok = false;
		return out;
	}
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		if (!YAJL_IS_STRING(e) || !img_digest_valid(e->u.string)) {
			*ok = false;
			return out;
		}
		out = strv_append(out, e->u.string);
	}
	return out;
}

static int record_load(const char *path, struct img_record **ret, struct husk_error *err)
{
	_cleanup_json_ yajl_val root = NULL;
	int r = json_parse_file(path, MAX_RECORD_SIZE, &root, err);
	if (r < 0)
		return r;
	const char *id = json_get_string(root, "id");
	const char *man = json_get_string(root, "manifest");
	const char *top = json_get_string(root, "top");
	const char *user = json_get_string(root, "user");
	bool ok = img_digest_valid(id) && img_digest_valid(man) && img_digest_valid(top);
	struct img_record *rec = xnew(struct img_record, 1);
	rec->blobs = digest_array(json_get(root, "blobs"), &ok);
	rec->chain_ids = digest_array(json_get(root, "layers"), &ok);
	if (!ok) {
		img_record_free(rec);
		return husk_error_set(err, EBADMSG, "image record '%s' is malformed", path);
	}
	rec->id = xstrdup(id);
	rec->manifest_digest = xstrdup(man);
	rec->top_digest = xstrdup(top);
	rec->user = xstrdup(user ? user : "");
	rec->size = (uint64_t)json_get_int(root, "size", 0);
	rec->created = json_get_int(root, "created", 0);
	*ret = rec;
	return 0;
}

int img_store_write_index(struct img_store *s, struct husk_error *err)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(true);
	yajl_gen_map_open(g);
	json_key(g, "refs");
	yajl_gen_map_open(g);
	for (size_t i = 0; i < s->n_refs; i++)
		json_kv_str(g, s->refs[i].ref, s->refs[i].id);
	yajl_gen_map_close(g);
	yajl_gen_map_close(g);
	_cleanup_free_ char *text = json_gen_steal(g);
	_cleanup_free_ char *path = xasprintf("%s/index.json", s->dir);
	return fs_write_atomic(path, text, strlen(text), 0644, err);
}

static void add_ref_entry(struct img_store *s, const char *ref, const char *id)
{
	s->refs = xrealloc(s->refs, (s->n_refs + 1) * sizeof(*s->refs));
	s->refs[s->n_refs].ref = xstrdup(ref);
	s->refs[s->n_refs].id = xstrdup(id);
	s->n_refs++;
}

static void drop_ref_at(struct img_store *s, size_t i)
{
	free(s->refs[i].ref);
	free(s->refs[i].id);
	memmove(&s->refs[i], &s->refs[i + 1], (s->n_refs - i - 1) * sizeof(*s->refs));
	s->n_refs--;
}

static void drop_record(struct img_store *s, struct img_record *rec)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (s->recs[i] == rec) {
			memmove(&s->recs[i], &s->recs[i + 1],
				(s->n_recs - i - 1) * sizeof(*s->recs));
			s->n_recs--;
			break;
		}
	img_record_free(rec);
}

static bool layer_in_use(struct img_store *s, const char *chain)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (strv_contains(s->recs[i]->chain_ids, chain))
			return true;
	return strv_contains(s->held, chain);
}

static bool blob_in_use(struct img_store *s, const char *digest)
{
	for (size_t i = 0; i < s->n_recs; i++)
		if (strv_contains(s->recs[i]->blobs, digest))
			return true;
	return strv_contains(s->held, digest);
}

/* Move a directory out of the store's sight in one rename, then delete
 * it, so an interrupted removal never leaves a half-empty layer. */
static void remove_dir(struct img_store *s, const char *path)
{
	_cleanup_free_ char *tmp = xasprintf("%s/gc-XXXXXX", s->tmp);
	if (mkdtemp(tmp)) {
		_cleanup_free_ char *dst = xasprintf("%s/d", tmp);
		if (rename(path, dst) == 0) {
			fs_rm_rf(tmp, NULL);
			return;
		}
		rmdir(tmp);
	}
	fs_rm_rf(path, NULL);
}

/* Under s->lock: delete the layers and blobs of chains/blobs nobody uses. */
static void gc_items(struct img_store *s, char *const *chains, char *const *blobs)
{
	for (size_t i = 0; chains && chains[i]; i++)
		if (!layer_in_use(s, chains[i])) {
			_cleanup_free_ char *p = img_store_layer_path(s, chains[i]);
			remove_dir(s, p);
		}
	for (size_t i = 0; blobs && blobs[i]; i++)
		if (!blob_in_use(s, blobs[i])) {
			_cleanup_free_ char *p = img_store_blob_path(s, blobs[i]);
			unlink(p);
		}
}

void img_store_gc(struct img_store *s, char *const *chains, char *const *blobs)
{
	gc_items(s, chains, blobs);
}

/* ---- lookup ---- */

static bool hex_prefix(const char *s)
{
	size_t n = strlen(s);
	if (n < MIN_ID_PREFIX || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int img_store_lookup(struct img_store *s, const char *name, struct img_record **ret,
		     const char **ret_tag, struct husk_error *err)
{
	if (isempty(name))
		return husk_error_set(err, EINVAL, "empty image name");
	const char *hex = startswith(name, "sha256:") ? name + 7 : name;
	if (hex_prefix(hex)) {
		struct img_record *found = NULL;
		for (size_t i = 0; i < s->n_recs; i++)
			if (startswith(img_digest_hex(s->recs[i]->id), hex)) {
				if (found)
					return husk_error_set(
					    err, EINVAL, "image ID prefix '%s' is ambiguous", name);
				found = s->recs[i];
			}
		if (found) {
			*ret = found;
			if (ret_tag)
				*ret_tag = NULL;
			return 0;
		}
		if (hex != name)
			return husk_error_set(err, ENOENT, "image '%s' not found", name);
	}
	_cleanup_(img_ref_freep) struct img_ref *ref = NULL;
	int r = img_ref_parse(name, &ref, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *key =
	    ref->digest ? img_ref_digested(ref, ref->digest) : img_ref_tagged(ref);
	for (size_t i = 0; i < s->n_refs; i++)
		if (streq(s->refs[i].ref, key)) {
			struct img_record *rec = img_store_record(s, s->refs[i].id);
			if (!rec)
				break;
			*ret = rec;
			if (ret_tag)
				*ret_tag = ref->digest ? NULL : s->refs[i].ref;
			return 0;
		}
	if (ref->digest) {
		/* A digest reference matches an image resolved from that digest
		 * under the same name, whichever way it was pulled. */
		_cleanup_free_ char *rname = img_ref_name(ref);
		for (size_t i = 0; i < s->n_recs; i++) {
			struct img_record *rec = s->recs[i];
			if (!streq(rec->top_digest, ref->digest) &&
			    !streq(rec->manifest_digest, ref->digest))
				continue;
			for (size_t j = 0; j < s->n_refs; j++)
				if (streq(s->refs[j].id, rec->id) &&
				    startswith(s->refs[j].ref, rname) &&
				    (s->refs[j].ref[strlen(rname)] == ':' ||
				     s->refs[j].ref[strlen(rname)] == '@')) {
					*ret = rec;
					if (ret_tag)
						*ret_tag = NULL;
					return 0;
				}
		}
	}
	return husk_error_set(err, ENOENT, "image '%s' not found", name);
}

/* ---- info ---- */

static bool is_pinned(struct img_store *s, const struct img_record *rec)
{
	for (size_t i = 0; s->pinned && s->pinned[i]; i++) {
		if (streq(s->pinned[i], rec->id))
			return true;
		for (size_t j = 0; j < s->n_refs; j++)
			if (streq(s->refs[j].id, rec->id) && streq(s->refs[j].ref, s->pinned[i]))
				return true;
	}
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static struct img_info *make_info(struct img_store *s, const struct img_record *rec)
{
	struct img_info *i = xnew(struct img_info, 1);
	i->id = xstrdup(rec->id);
	i->repo_tags = xnew(char *, 1);
	i->repo_digests = xnew(char *, 1);
	for (size_t j = 0; j < s->n_refs; j++) {
		if (!streq(s->refs[j].id, rec->id))
			continue;
		if (strchr(s->refs[j].ref, '@'))
			i->repo_digests = strv_append(i->repo_digests, s->refs[j].ref);
		else
			i->repo_tags = strv_append(i->repo_tags, s->refs[j].ref);
	}
	qsort(i->repo_tags, strv_length(i->repo_tags), sizeof(char *), cmp_str);
	qsort(i->repo_digests, strv_length(i->repo_digests), sizeof(char *), cmp_str);
	i->size = rec->size;
	i->user = xstrdup(rec->user);
	i->pinned = is_pinned(s, rec);
	i->manifest_digest = xstrdup(rec->top_digest);
	i->chain_ids = xnew(char *, 1);
	for (size_t j = 0; rec->chain_ids[j]; j++)
		i->chain_ids = strv_append(i->chain_ids, rec->chain_ids[j]);
	return i;
}

int img_status(struct img_store *s, const char *name, int flags, struct img_info **ret,
	       struct husk_error *err)
{
	pthread_mutex_lock(&s->lock);
	struct img_record *rec;
	int r = img_store_lookup(s, name, &rec, NULL, err);
	if (r < 0) {
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	_cleanup_(img_info_freep) struct img_info *info = make_info(s, rec);
	_cleanup_free_ char *cfg_path = img_store_blob_path(s, rec->id);
	pthread_mutex_unlock(&s->lock);
	if (flags & IMG_INFO_CONFIG) {
		r = fs_read_file(cfg_path, IMG_MAX_CONFIG, &info->config_json, NULL, err);
		if (r < 0)
			return husk_error_prefix(err, "image '%s' config", name);
	}
	*ret = steal_ptr(&info);
	return 0;
}

int img_list(struct img_store *s, const char *filter, struct img_info ***ret, size_t *ret_n,
	     struct husk_error *err)
{
	pthread_mutex_lock(&s->lock);
	struct img_info **v = NULL;
	size_t n = 0;
	if (!isempty(filter)) {
		struct img_record *rec;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (img_store_lookup(s, filter, &rec, NULL, &e) == 0) {
			v = xnew(struct img_info *, 1);
			v[n++] = make_info(s, rec);
		} else if (e.code != ENOENT) {
			pthread_mutex_unlock(&s->lock);
			return husk_error_move(err, &e);
		}
	} else {
		v = xnew(struct img_info *, s->n_recs ? s->n_recs : 1);
		for (size_t i = 0; i < s->n_recs; i++)
			v[n++] = make_info(s, s->recs[i]);
	}
	pthread_mutex_unlock(&s->lock);
	*ret = v ? v : xnew(struct img_info *, 1);
	*ret_n = n;
	return 0;
}

int img_config_get(struct img_store *s, const char *name, struct img_config **ret,
		   struct husk_error *err)
{
	_cleanup_(img_info_freep) struct img_info *info = NULL;
	int r = img_status(s, name, IMG_INFO_CONFIG, &info, err);
	if (r < 0)
		return r;
	r = img_config_parse(info->config_json, strlen(info->config_json), ret, err);
	if (r < 0)
		return husk_error_prefix(err, "image '%s'", name);
	return 0;
}

/* ---- removal ---- */

int img_remove(struct img_store *s, const char *name, struct husk_error *err)
{
	pthread_mutex_lock(&s->lock);
	struct img_record *rec;
	const char *tag = NULL;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	int r = img_store_lookup(s, name, &rec, &tag, &e);
	if (r < 0) {
		pthread_mutex_unlock(&s->lock);
		return e.code == ENOENT ? 0 : husk_error_move(err, &e);
	}
	size_t tags = 0;
	for (size_t i = 0; i < s->n_refs; i++)
		if (streq(s->refs[i].id, rec->id) && !strchr(s->refs[i].ref, '@'))
			tags++;
	bool whole = !tag || tags <= 1;
	const struct img_user *u = whole ? img_store_user_of(s, rec->id) : NULL;
	if (u) {
		r = husk_error_set(err, EBUSY, "remove image '%s': in use by container '%s'", name,
				   u->cid);
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	/* Keep the old refs until the new index is on disk. */
	struct img_ref_entry *saved = xnew(struct img_ref_entry, s->n_refs ? s->n_refs : 1);
	size_t n_saved = s->n_refs;
	for (size_t i = 0; i < s->n_refs; i++) {
		saved[i].ref = xstrdup(s->refs[i].ref);
		saved[i].id = xstrdup(s->refs[i].id);
	}
	_cleanup_free_ char *tag_copy = tag ? xstrdup(tag) : NULL;
	for (size_t i = s->n_refs; i-- > 0;)
		if (whole ? streq(s->refs[i].id, rec->id) : streq(s->refs[i].ref, tag_copy))
			drop_ref_at(s, i);
	r = img_store_write_index(s, err);
	if (r < 0) {
		for (size_t i = 0; i < s->n_refs; i++) {
			free(s->refs[i].ref);
			free(s->refs[i].id);
		}
		free(s->refs);
		s->refs = saved;
		s->n_refs = n_saved;
		pthread_mutex_unlock(&s->lock);
		return husk_error_prefix(err, "remove image '%s'", name);
	}
	for (size_t i = 0; i < n_saved; i++) {
		free(saved[i].ref);
		free(saved[i].id);
	}
	free(saved);
	if (whole) {
		_cleanup_free_ char *path =
		    xasprintf("%s/%s.json", s->images, img_digest_hex(rec->id));
		unlink(path);
		_cleanup_strv_ char **chains = steal_ptr(&rec->chain_ids);
		_cleanup_strv_ char **blobs = steal_ptr(&rec->blobs);
		rec->chain_ids = xnew(char *, 1);
		rec->blobs = xnew(char *, 1);
		drop_record(s, rec);
		gc_items(s, chains, blobs);
	}
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* ---- usage ---- */

struct walk {
	uint64_t bytes, inodes;
	/* (dev, ino) of multiply linked files already counted */
	struct {
		dev_t dev;
		ino_t ino;
	} * seen;
	size_t n_seen, cap;
	const char *const *skip; /* subdirectory names at top level not to count */
};

static bool seen_before(struct walk *w, dev_t dev, ino_t ino)
{
	if (w->cap == 0) {
		w->cap = 1024;
		w->seen = xcalloc(w->cap, sizeof(*w->seen));
	}
	if (w->n_seen * 2 >= w->cap) {
		__typeof__(w->seen) old = w->seen;
		size_t ocap = w->cap;
		w->cap *= 2;
		w->seen = xcalloc(w->cap, sizeof(*w->seen));
		w->n_seen = 0;
		for (size_t i = 0; i < ocap; i++)
			if (old[i].ino)
				seen_before(w, old[i].dev, old[i].ino);
		free(old);
	}
	size_t h = ((size_t)ino * 2654435761u ^ (size_t)dev) & (w->cap - 1);
	while (w->seen[h].ino) {
		if (w->seen[h].ino == ino && w->seen[h].dev == dev)
			return true;
		h = (h + 1) & (w->cap - 1);
	}
	w->seen[h].dev = dev;
	w->seen[h].ino = ino;
	w->n_seen++;
	return false;
}

static void walk_dir(int dfd, struct walk *w, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		bool skipped = false;
		for (size_t i = 0; depth == 0 && w->skip && w->skip[i] && !skipped; i++)
			skipped = streq(de->d_name, w->skip[i]);
		if (skipped)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(st.st_mode) && st.st_nlink > 1 && seen_before(w, st.st_dev, st.st_ino))
			continue;
		w->bytes += (uint64_t)st.st_blocks * 512;
		w->inodes++;
		if (S_ISDIR(st.st_mode) && depth < 512) {
			int fd = openat(dirfd(d), de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd >= 0)
				walk_dir(fd, w, depth + 1);
		}
	}
	closedir(d);
}

int img_dir_usage(const char *dir, const char *const *skip, struct img_fs_usage *ret,
		  struct husk_error *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_errno(err, errno, "open '%s'", dir);
	struct walk w = {.skip = skip};
	walk_dir(fd, &w, 0);
	free(w.seen);
	ret->mountpoint = xstrdup(dir);
	ret->bytes = w.bytes;
	ret->inodes = w.inodes;
	ret->at = now_real_ns();
	return 0;
}

int img_fs_info(struct img_store *s, struct img_fs_usage *ret_images,
		struct img_fs_usage *ret_containers, struct husk_error *err)
{
	struct img_fs_usage a = {0}, b = {0};
	/* The containers' upper dirs are counted apart, and mnt/ holds their
	 * mounted root filesystems: the layers seen again. */
	static const char *const skip[] = {"containers", "mnt", NULL};
	int r = img_dir_usage(s->dir, skip, &a, err);
	if (r < 0)
		return r;
	r = img_dir_usage(s->containers, NULL, &b, err);
	if (r < 0) {
		img_fs_usage_clear(&a);
		return r;
	}
	*ret_images = a;
	*ret_containers = b;
	return 0;
}

/* ---- open and start-up cleanup ---- */

static int load_index(struct img_store *s, struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("%s/index.json", s->dir);
	_cleanup_json_ yajl_val root = NULL;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	int r = json_parse_file(path, MAX_INDEX_SIZE, &root, &e);
	if (r < 0)
		return e.code == ENOENT ? 0 : husk_error_move(err, &e);
	yajl_val refs = json_get(root, "refs");
	if (!YAJL_IS_OBJECT(refs))
		return husk_error_set(err, EBADMSG, "'%s': no refs object", path);
	for (size_t i = 0; i < refs->u.object.len; i++) {
		yajl_val v = refs->u.object.values[i];
		if (YAJL_IS_STRING(v) && img_digest_valid(v->u.string))
			add_ref_entry(s, refs->u.object.keys[i], v->u.string);
	}
	return 0;
}

/* Unmount whatever is stacked at path and remove it (an empty directory). */
static void unmount_rmdir(const char *path)
{
	for (int i = 0; i < 16 && umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW) == 0; i++)
		;
	rmdir(path);
}

static void load_users(struct img_store *s)
{
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(s->containers, NULL, &names, NULL) < 0)
		return;
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *dir = xasprintf("%s/%s", s->containers, names[i]);
		_cleanup_free_ char *path = xasprintf("%s/rootfs.json", dir);
		_cleanup_json_ yajl_val root = NULL;
		const char *id = NULL;
		if (json_parse_file(path, MAX_RECORD_SIZE, &root, NULL) == 0)
			id = json_get_string(root, "image");
		if (!img_digest_valid(id)) {
			/* a rootfs whose creation never finished (mounted where
			 * huskd mounts them, or in dir before mnt/ was) */
			_cleanup_free_ char *merged = xasprintf("%s/merged", dir);
			_cleanup_free_ char *mp = xasprintf("%s/%s", s->mnt, names[i]);
			unmount_rmdir(mp);
			unmount_rmdir(merged);
			fs_rm_rf(dir, NULL);
			continue;
		}
		const char *mp = json_get_string(root, "mountpoint");
		const char *userns = json_get_string(root, "idmap_userns");
		yajl_val ro = json_get(root, "readonly");
		struct img_user *u = xnew(struct img_user, 1);
		u->cid = xstrdup(names[i]);
		u->id = xstrdup(id);
		u->mountpoint = xstrdup(mp ? mp : "");
		u->readonly = YAJL_IS_TRUE(ro);
		u->idmap_userns = userns ? xstrdup(userns) : NULL;
		img_store_user_add(s, u);
	}
	/* Mount points of no rootfs: a creation cut short before its record. */
	_cleanup_strv_ char **points = NULL;
	if (fs_list_dir(s->mnt, NULL, &points, NULL) < 0)
		return;
	for (size_t i = 0; points[i]; i++) {
		if (!img_store_user_find(s, points[i])) {
			_cleanup_free_ char *mp = xasprintf("%s/%s", s->mnt, points[i]);
			unmount_rmdir(mp);
		}
	}
}

static int load(struct img_store *s, struct husk_error *err)
{
	int r = load_index(s, err);
	if (r < 0)
		return r;
	_cleanup_strv_ char **names = NULL;
	r = fs_list_dir(s->images, NULL, &names, err);
	if (r < 0)
		return r;
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *path = xasprintf("%s/%s", s->images, names[i]);
		struct img_record *rec = NULL;
		if (!endswith(names[i], ".json") || record_load(path, &rec, NULL) < 0) {
			unlink(path); /* temporary or damaged */
			continue;
		}
		s->recs = xrealloc(s->recs, (s->n_recs + 1) * sizeof(*s->recs));
		s->recs[s->n_recs++] = rec;
	}
	load_users(s);

	bool dirty = false;
	/* An image whose layers or config went missing cannot be used. */
	for (size_t i = s->n_recs; i-- > 0;) {
		struct img_record *rec = s->recs[i];
		bool ok = true;
		for (size_t j = 0; ok && rec->chain_ids[j]; j++) {
			_cleanup_free_ char *p = img_store_layer_path(s, rec->chain_ids[j]);
			ok = fs_exists(p);
		}
		_cleanup_free_ char *cfg = img_store_blob_path(s, rec->id);
		if (ok && fs_exists(cfg))
			continue;
		for (size_t j = s->n_refs; j-- > 0;)
			if (streq(s->refs[j].id, rec->id)) {
				drop_ref_at(s, j);
				dirty = true;
			}
		_cleanup_free_ char *p =
		    xasprintf("%s/%s.json", s->images, img_digest_hex(rec->id));
		unlink(p);
		drop_record(s, rec);
	}
	/* Refs to nothing; records no ref names (a pull killed before its
	 * index write, or a removal killed after it). */
	for (size_t j = s->n_refs; j-- > 0;)
		if (!img_store_record(s, s->refs[j].id)) {
			drop_ref_at(s, j);
			dirty = true;
		}
	for (size_t i = s->n_recs; i-- > 0;) {
		struct img_record *rec = s->recs[i];
		bool named = false;
		for (size_t j = 0; j < s->n_refs && !named; j++)
			named = streq(s->refs[j].id, rec->id);
		if (named || img_store_user_of(s, rec->id))
			continue;
		_cleanup_free_ char *p =
		    xasprintf("%s/%s.json", s->images, img_digest_hex(rec->id));
		unlink(p);
		drop_record(s, rec);
	}
	if (dirty) {
		r = img_store_write_index(s, err);
		if (r < 0)
			return r;
	}
	/* Layers and blobs no record uses. */
	_cleanup_strv_ char **layers = NULL, **blobs = NULL;
	r = fs_list_dir(s->layers, NULL, &layers, err);
	if (r < 0)
		return r;
	for (size_t i = 0; layers[i]; i++) {
		_cleanup_free_ char *d = xasprintf("sha256:%s", layers[i]);
		if (!img_digest_valid(d) || !layer_in_use(s, d)) {
			_cleanup_free_ char *p = xasprintf("%s/%s", s->layers, layers[i]);
			remove_dir(s, p);
		}
	}
	r = fs_list_dir(s->blobs, NULL, &blobs, err);
	if (r < 0)
		return r;
	for (size_t i = 0; blobs[i]; i++) {
		_cleanup_free_ char *d = xasprintf("sha256:%s", blobs[i]);
		if (!img_digest_valid(d) || !blob_in_use(s, d)) {
			_cleanup_free_ char *p = xasprintf("%s/%s", s->blobs, blobs[i]);
			unlink(p);
		}
	}
	return 0;
}

void img_store_free(struct img_store *s)
{
	if (!s)
		return;
	img_usage_stop(s);
	pthread_mutex_destroy(&s->usage_lock);
	pthread_cond_destroy(&s->usage_cond);
	free(s->dir);
	free(s->tmp);
	free(s->layers);
	free(s->blobs);
	free(s->images);
	free(s->containers);
	/* Once no rootfs is left under it (containers keep it across a
	 * restart of huskd). */
	if (s->mnt)
		fs_private_mount_release(s->mnt, NULL);
	free(s->mnt);
	for (size_t i = 0; i < s->n_regs; i++) {
		free((char *)s->regs[i].host);
		strv_free((char **)s->regs[i].mirrors);
		free((char *)s->regs[i].location);
	}
	free(s->regs);
	strv_free(s->pinned);
	for (size_t i = 0; i < s->n_recs; i++)
		img_record_free(s->recs[i]);
	free(s->recs);
	for (size_t i = 0; i < s->n_refs; i++) {
		free(s->refs[i].ref);
		free(s->refs[i].id);
	}
	free(s->refs);
	for (size_t i = 0; i < s->n_users; i++)
		user_free(s->users[i]);
	free(s->users);
	hindex_clear(&s->user_cids);
	hindex_clear(&s->user_images);
	strv_free(s->inflight);
	strv_free(s->held);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

const char *img_overlay_method(const struct img_store *s)
{
	return s->overlay->name;
}

int img_store_open(const struct img_options *opts, struct img_store **ret, struct husk_error *err)
{
	if (isempty(opts->root))
		return husk_error_set(err, EINVAL, "image store: no root directory");
	img_curl_global_init();
	_cleanup_(img_store_freep) struct img_store *s = xnew(struct img_store, 1);
	pthread_mutex_init(&s->lock, NULL);
	s->stats.duration.b = &mx_buckets_slow;
	pthread_mutex_init(&s->usage_lock, NULL);
	pthread_cond_init(&s->usage_cond, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->dir = xasprintf("%s/image", opts->root);
	s->tmp = xasprintf("%s/tmp", s->dir);
	s->layers = xasprintf("%s/layers", s->dir);
	s->blobs = xasprintf("%s/blobs/sha256", s->dir);
	s->images = xasprintf("%s/images", s->dir);
	s->containers = xasprintf("%s/containers", s->dir);
	s->mnt = xasprintf("%s/mnt", s->dir);
	s->max_downloads = opts->max_concurrent_downloads > 0 ? opts->max_concurrent_downloads : 3;
	if (s->max_downloads > 16)
		s->max_downloads = 16;
	s->max_layer_size =
	    opts->max_layer_size ? opts->max_layer_size : IMG_DEFAULT_MAX_LAYER_SIZE;
	s->progress_timeout_s = opts->progress_timeout_s > 0 ? opts->progress_timeout_s : 0;
	s->regs = xnew(struct img_registry_conf, opts->n_registries ? opts->n_registries : 1);
	for (size_t i = 0; i < opts->n_registries; i++) {
		const struct img_registry_conf *c = &opts->registries[i];
		char **m = xnew(char *, 1);
		for (size_t j = 0; c->mirrors && c->mirrors[j]; j++)
			m = strv_append(m, c->mirrors[j]);
		s->regs[i] = (struct img_registry_conf){
		    .host = xstrdup(c->host),
		    .insecure = c->insecure,
		    .mirrors = m,
		    .location = c->location ? xstrdup(c->location) : NULL,
		};
	}
	s->n_regs = opts->n_registries;
	s->pinned = xnew(char *, 1);
	for (size_t i = 0; opts->pinned && opts->pinned[i]; i++) {
		_cleanup_(img_ref_freep) struct img_ref *ref = NULL;
		if (img_digest_valid(opts->pinned[i])) {
			s->pinned = strv_append(s->pinned, opts->pinned[i]);
		} else if (img_ref_parse(opts->pinned[i], &ref, NULL) == 0) {
			_cleanup_free_ char *k =
			    ref->digest ? img_ref_digested(ref, ref->digest) : img_ref_tagged(ref);
			s->pinned = strv_append(s->pinned, k);
		}
	}
	s->inflight = xnew(char *, 1);
	s->held = xnew(char *, 1);

	const char *dirs[] = {s->dir, s->layers, s->blobs, s->images, s->containers};
	int r;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		r = fs_mkdir_p(dirs[i], 0700, err);
		if (r < 0)
			return husk_error_prefix(err, "image store");
	}
	r = fs_private_mount_ensure(s->mnt, 0700, err);
	if (r < 0)
		return husk_error_prefix(err, "image store");
	s->overlay = opts->overlay_legacy ? &img_overlay_legacy : img_overlay_probe(s->layers);
	/* Whatever an interrupted pull was writing. */
	r = fs_rm_rf(s->tmp, err);
	if (r < 0)
		return husk_error_prefix(err, "image store: clean up");
	r = fs_mkdir_p(s->tmp, 0700, err);
	if (r < 0)
		return husk_error_prefix(err, "image store");
	r = load(s, err);
	if (r < 0)
		return husk_error_prefix(err, "image store '%s'", s->dir);
	*ret = steal_ptr(&s);
	return 0;
}
