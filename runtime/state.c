/* Pod and container records: JSON encoding and decoding, one file per
 * record written with fs_write_atomic, and the in-memory index (arrays
 * sorted by id, so a prefix resolves with one binary search). */
#include "runtime/state.h"

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
#include "common/json.h"

/* 2: typed cgroup, privileged and stop_signal; 1 kept them in "extra". */
#define RECORD_VERSION 2
#define RECORD_VERSION_EXTRA 1
#define ID_MAX 128

/* Both record types start with their id, so the index code can read it
 * through a pointer to either. */
#define REC_ID(p) (*(char *const *)(p))

/* ---- names ---------------------------------------------------------------- */

static const char *const pod_state_names[] = {
    [POD_STATE_READY] = "READY",
    [POD_STATE_NOTREADY] = "NOTREADY",
};
static const char *const ctr_state_names[] = {
    [CTR_STATE_CREATED] = "CREATED",
    [CTR_STATE_RUNNING] = "RUNNING",
    [CTR_STATE_EXITED] = "EXITED",
    [CTR_STATE_UNKNOWN] = "UNKNOWN",
};

static int name_index(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(names[i], name))
			return (int)i;
	return -1;
}

const char *pod_state_name(enum pod_state s)
{
	return (unsigned)s < ARRAY_SIZE(pod_state_names) ? pod_state_names[s] : NULL;
}

int pod_state_parse(const char *name)
{
	return name_index(pod_state_names, ARRAY_SIZE(pod_state_names), name);
}

const char *ctr_state_name(enum ctr_state s)
{
	return (unsigned)s < ARRAY_SIZE(ctr_state_names) ? ctr_state_names[s] : NULL;
}

int ctr_state_parse(const char *name)
{
	return name_index(ctr_state_names, ARRAY_SIZE(ctr_state_names), name);
}

/* ---- maps ------------------------------------------------------------------- */

void state_map_set(struct state_map *m, const char *key, const char *value)
{
	for (size_t i = 0; i < m->n; i++)
		if (streq(m->items[i].key, key)) {
			free(m->items[i].value);
			m->items[i].value = xstrdup(value);
			return;
		}
	m->items = xrealloc(m->items, (m->n + 1) * sizeof(*m->items));
	m->items[m->n].key = xstrdup(key);
	m->items[m->n].value = xstrdup(value);
	m->n++;
}

const char *state_map_get(const struct state_map *m, const char *key)
{
	for (size_t i = 0; m && i < m->n; i++)
		if (streq(m->items[i].key, key))
			return m->items[i].value;
	return NULL;
}

bool state_map_match(const struct state_map *have, const struct state_map *want)
{
	for (size_t i = 0; want && i < want->n; i++)
		if (!streq(state_map_get(have, want->items[i].key), want->items[i].value))
			return false;
	return true;
}

void state_map_copy(struct state_map *dst, const struct state_map *src)
{
	*dst = (struct state_map){0};
	for (size_t i = 0; src && i < src->n; i++)
		state_map_set(dst, src->items[i].key, src->items[i].value);
}

void state_map_clear(struct state_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->items[i].key);
		free(m->items[i].value);
	}
	free(m->items);
	*m = (struct state_map){0};
}

/* ---- records: clear and copy ------------------------------------------------ */

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static char **strv_dup(char *const *v)
{
	if (!v)
		return NULL;
	char **out = xnew(char *, 1);
	for (size_t i = 0; v[i]; i++)
		out = strv_append(out, v[i]);
	return out;
}

void state_cgroup_clear(struct state_cgroup *c)
{
	if (!c)
		return;
	free(c->path);
	for (size_t i = 0; i < c->n_hiers; i++)
		free(c->hiers[i].name);
	free(c->hiers);
	*c = (struct state_cgroup){0};
}

void state_cgroup_copy(struct state_cgroup *dst, const struct state_cgroup *src)
{
	*dst = (struct state_cgroup){.path = dup_or_null(src->path)};
	if (!src->n_hiers)
		return;
	dst->hiers = xnew(struct state_cgroup_hier, src->n_hiers);
	for (size_t i = 0; i < src->n_hiers; i++)
		dst->hiers[i] =
		    (struct state_cgroup_hier){xstrdup(src->hiers[i].name), src->hiers[i].created};
	dst->n_hiers = src->n_hiers;
}

void pod_record_clear(struct pod_record *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->name);
	free(r->uid);
	free(r->namespace);
	state_map_clear(&r->labels);
	state_map_clear(&r->annotations);
	free(r->runtime_handler);
	free(r->hostname);
	free(r->log_directory);
	free(r->cgroup_parent);
	pod_sandbox_info_clear(&r->sandbox);
	strv_free(r->ips);
	state_cgroup_clear(&r->cgroup);
	*r = (struct pod_record){0};
}

void pod_record_free(struct pod_record *r)
{
	pod_record_clear(r);
	free(r);
}

static void pod_copy(struct pod_record *dst, const struct pod_record *src)
{
	*dst = *src;
	dst->id = dup_or_null(src->id);
	dst->name = dup_or_null(src->name);
	dst->uid = dup_or_null(src->uid);
	dst->namespace = dup_or_null(src->namespace);
	state_map_copy(&dst->labels, &src->labels);
	state_map_copy(&dst->annotations, &src->annotations);
	dst->runtime_handler = dup_or_null(src->runtime_handler);
	dst->hostname = dup_or_null(src->hostname);
	dst->log_directory = dup_or_null(src->log_directory);
	dst->cgroup_parent = dup_or_null(src->cgroup_parent);
	pod_sandbox_info_copy(&dst->sandbox, &src->sandbox);
	dst->ips = strv_dup(src->ips);
	state_cgroup_copy(&dst->cgroup, &src->cgroup);
}

struct pod_record *pod_record_dup(const struct pod_record *r)
{
	if (!r)
		return NULL;
	struct pod_record *c = xnew(struct pod_record, 1);
	pod_copy(c, r);
	return c;
}

void pod_records_free(struct pod_record **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		pod_record_free(v[i]);
	free(v);
}

static void mount_clear(struct ctr_record_mount *m)
{
	free(m->container_path);
	free(m->host_path);
	*m = (struct ctr_record_mount){0};
}

void ctr_record_clear(struct ctr_record *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->pod_id);
	free(r->name);
	free(r->image);
	free(r->image_id);
	free(r->image_ref);
	free(r->reason);
	free(r->message);
	state_map_clear(&r->labels);
	state_map_clear(&r->annotations);
	free(r->log_path);
	for (size_t i = 0; i < r->n_mounts; i++)
		mount_clear(&r->mounts[i]);
	free(r->mounts);
	free(r->spec_json);
	free(r->rootfs);
	state_cgroup_clear(&r->cgroup);
	*r = (struct ctr_record){0};
}

void ctr_record_free(struct ctr_record *r)
{
	ctr_record_clear(r);
	free(r);
}

static void ctr_copy(struct ctr_record *dst, const struct ctr_record *src)
{
	*dst = *src;
	dst->id = dup_or_null(src->id);
	dst->pod_id = dup_or_null(src->pod_id);
	dst->name = dup_or_null(src->name);
	dst->image = dup_or_null(src->image);
	dst->image_id = dup_or_null(src->image_id);
	dst->image_ref = dup_or_null(src->image_ref);
	dst->reason = dup_or_null(src->reason);
	dst->message = dup_or_null(src->message);
	state_map_copy(&dst->labels, &src->labels);
	state_map_copy(&dst->annotations, &src->annotations);
	dst->log_path = dup_or_null(src->log_path);
	dst->mounts = src->n_mounts ? xnew(struct ctr_record_mount, src->n_mounts) : NULL;
	for (size_t i = 0; i < src->n_mounts; i++) {
		dst->mounts[i] = src->mounts[i];
		dst->mounts[i].container_path = dup_or_null(src->mounts[i].container_path);
		dst->mounts[i].host_path = dup_or_null(src->mounts[i].host_path);
	}
	dst->spec_json = dup_or_null(src->spec_json);
	dst->rootfs = dup_or_null(src->rootfs);
	state_cgroup_copy(&dst->cgroup, &src->cgroup);
}

struct ctr_record *ctr_record_dup(const struct ctr_record *r)
{
	if (!r)
		return NULL;
	struct ctr_record *c = xnew(struct ctr_record, 1);
	ctr_copy(c, r);
	return c;
}

void ctr_records_free(struct ctr_record **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		ctr_record_free(v[i]);
	free(v);
}

/* ---- encoding ----------------------------------------------------------------- */

/* A generator that remembers the first field it could not write (yajl
 * refuses strings that are not UTF-8) or whose embedded JSON is bad. */
struct gen {
	yajl_gen g;
	const char *key; /* the field being written */
	int code;
	char *msg;
};

static void gen_fail(struct gen *g, int code, char *msg)
{
	if (!g->code) {
		g->code = code;
		g->msg = msg;
	} else {
		free(msg);
	}
}

static void g_raw_str(struct gen *g, const char *s)
{
	if (yajl_gen_string(g->g, (const unsigned char *)s, strlen(s)) != yajl_gen_status_ok)
		gen_fail(g, EINVAL, xasprintf("field '%s': not valid UTF-8", g->key));
}

static void g_key(struct gen *g, const char *key)
{
	g->key = key;
	g_raw_str(g, key);
}

static void g_str(struct gen *g, const char *key, const char *value)
{
	if (!value)
		return;
	g_key(g, key);
	g_raw_str(g, value);
}

static void g_int(struct gen *g, const char *key, long long v)
{
	g_key(g, key);
	yajl_gen_integer(g->g, v);
}

static void g_bool(struct gen *g, const char *key, bool v)
{
	g_key(g, key);
	yajl_gen_bool(g->g, v);
}

static void g_map(struct gen *g, const char *key, const struct state_map *m)
{
	g_key(g, key);
	yajl_gen_map_open(g->g);
	for (size_t i = 0; i < m->n; i++) {
		g->key = key;
		g_raw_str(g, m->items[i].key);
		g_raw_str(g, m->items[i].value ? m->items[i].value : "");
	}
	yajl_gen_map_close(g->g);
}

static void g_strv(struct gen *g, const char *key, char *const *v)
{
	if (!v)
		return;
	g_key(g, key);
	yajl_gen_array_open(g->g);
	for (size_t i = 0; v[i]; i++)
		g_raw_str(g, v[i]);
	yajl_gen_array_close(g->g);
}

/* Embed JSON text as a value, so the file stays readable JSON, and replace
 * the text with its compact form: the record in memory is then exactly
 * what a reload of the file gives. */
static void g_json(struct gen *g, const char *key, char **text)
{
	if (!*text)
		return;
	struct husk_error e = HUSK_ERROR_INIT;
	yajl_val tree = NULL;
	if (json_parse(*text, strlen(*text), key, &tree, &e) < 0) {
		gen_fail(g, EINVAL, xasprintf("field '%s': %s", key, husk_error_msg(&e)));
		husk_error_clear(&e);
		return;
	}
	g_key(g, key);
	json_gen_tree(g->g, tree);
	yajl_gen compact = json_gen_new(false);
	json_gen_tree(compact, tree);
	free(*text);
	*text = json_gen_steal(compact);
	yajl_gen_free(compact);
	yajl_tree_free(tree);
}

static void gen_init(struct gen *g)
{
	*g = (struct gen){.g = json_gen_new(false)};
	yajl_gen_config(g->g, yajl_gen_validate_utf8, 1);
	yajl_gen_map_open(g->g);
	g_int(g, "version", RECORD_VERSION);
}

/* The text in *ret, or an error naming the field that failed (or the size). */
static int gen_finish(struct gen *g, const char *what, const char *id, char **ret,
		      struct husk_error *err)
{
	yajl_gen_map_close(g->g);
	char *text = NULL;
	if (!g->code) {
		text = json_gen_steal(g->g);
		if (strlen(text) > STATE_RECORD_MAX) {
			free(text);
			text = NULL;
			gen_fail(
			    g, EINVAL,
			    xasprintf("record larger than %u bytes", (unsigned)STATE_RECORD_MAX));
		}
	}
	int r = 0;
	if (text)
		*ret = text;
	else
		r = husk_error_set(err, g->code, "%s '%s': %s", what, id, g->msg);
	free(g->msg);
	yajl_gen_free(g->g);
	return r;
}

static void g_idmaps(struct gen *g, const char *key, const struct pod_idmap *m, size_t n)
{
	if (!m || !n)
		return;
	g_key(g, key);
	yajl_gen_array_open(g->g);
	for (size_t i = 0; i < n; i++) {
		yajl_gen_map_open(g->g);
		g_int(g, "container_id", m[i].container_id);
		g_int(g, "host_id", m[i].host_id);
		g_int(g, "length", m[i].size);
		yajl_gen_map_close(g->g);
	}
	yajl_gen_array_close(g->g);
}

static void g_sandbox(struct gen *g, const struct pod_sandbox_info *sb)
{
	g_key(g, "sandbox");
	yajl_gen_map_open(g->g);
	g_str(g, "id", sb->id);
	g_str(g, "dir", sb->dir);
	g_str(g, "user_ns", sb->user_ns);
	g_str(g, "net_ns", sb->net_ns);
	g_str(g, "ipc_ns", sb->ipc_ns);
	g_str(g, "uts_ns", sb->uts_ns);
	g_str(g, "pid_ns", sb->pid_ns);
	g_str(g, "shm", sb->shm);
	g_str(g, "hostname", sb->hostname);
	g_str(g, "hostname_file", sb->hostname_file);
	g_str(g, "hosts_file", sb->hosts_file);
	g_str(g, "resolv_file", sb->resolv_file);
	g_str(g, "network", pod_ns_mode_name(sb->net));
	g_str(g, "ipc", pod_ns_mode_name(sb->ipc));
	g_str(g, "uts", pod_ns_mode_name(sb->uts));
	g_str(g, "pid", pod_ns_mode_name(sb->pid));
	g_int(g, "init_pid", sb->init_pid);
	g_int(g, "init_start_time", (long long)sb->init_start_time);
	g_idmaps(g, "uid_mappings", sb->uid_map, sb->n_uid_map);
	g_idmaps(g, "gid_mappings", sb->gid_map, sb->n_gid_map);
	yajl_gen_map_close(g->g);
}

static void g_cgroup(struct gen *g, const struct state_cgroup *c)
{
	if (!c->path)
		return;
	g_key(g, "cgroup");
	yajl_gen_map_open(g->g);
	g_str(g, "path", c->path);
	g_key(g, "created");
	yajl_gen_map_open(g->g);
	for (size_t i = 0; i < c->n_hiers; i++)
		g_int(g, c->hiers[i].name, c->hiers[i].created);
	yajl_gen_map_close(g->g);
	yajl_gen_map_close(g->g);
}

static int pod_encode(struct pod_record *r, char **ret, struct husk_error *err)
{
	struct gen g;
	gen_init(&g);
	g_str(&g, "id", r->id);
	g_key(&g, "metadata");
	yajl_gen_map_open(g.g);
	g_str(&g, "name", r->name);
	g_str(&g, "uid", r->uid);
	g_str(&g, "namespace", r->namespace);
	g_int(&g, "attempt", r->attempt);
	yajl_gen_map_close(g.g);
	g_str(&g, "state", pod_state_name(r->state));
	g_int(&g, "created_at", r->created_at);
	g_map(&g, "labels", &r->labels);
	g_map(&g, "annotations", &r->annotations);
	g_str(&g, "runtime_handler", r->runtime_handler);
	g_str(&g, "hostname", r->hostname);
	g_str(&g, "log_directory", r->log_directory);
	g_str(&g, "cgroup_parent", r->cgroup_parent);
	g_sandbox(&g, &r->sandbox);
	g_strv(&g, "ips", r->ips);
	g_cgroup(&g, &r->cgroup);
	g_bool(&g, "privileged", r->privileged);
	return gen_finish(&g, "pod", r->id, ret, err);
}

static int ctr_encode(struct ctr_record *r, char **ret, struct husk_error *err)
{
	struct gen g;
	gen_init(&g);
	g_str(&g, "id", r->id);
	g_str(&g, "pod_id", r->pod_id);
	g_key(&g, "metadata");
	yajl_gen_map_open(g.g);
	g_str(&g, "name", r->name);
	g_int(&g, "attempt", r->attempt);
	yajl_gen_map_close(g.g);
	g_key(&g, "image");
	yajl_gen_map_open(g.g);
	g_str(&g, "image", r->image);
	g_str(&g, "id", r->image_id);
	g_str(&g, "ref", r->image_ref);
	yajl_gen_map_close(g.g);
	g_str(&g, "state", ctr_state_name(r->state));
	g_int(&g, "created_at", r->created_at);
	g_int(&g, "started_at", r->started_at);
	g_int(&g, "finished_at", r->finished_at);
	g_int(&g, "exit_code", r->exit_code);
	g_str(&g, "reason", r->reason);
	g_str(&g, "message", r->message);
	g_int(&g, "pid", r->pid);
	g_int(&g, "pid_start_time", (long long)r->pid_start_time);
	g_map(&g, "labels", &r->labels);
	g_map(&g, "annotations", &r->annotations);
	g_str(&g, "log_path", r->log_path);
	g_str(&g, "rootfs", r->rootfs);
	g_key(&g, "mounts");
	yajl_gen_array_open(g.g);
	for (size_t i = 0; i < r->n_mounts; i++) {
		const struct ctr_record_mount *m = &r->mounts[i];
		yajl_gen_map_open(g.g);
		g_str(&g, "container_path", m->container_path);
		g_str(&g, "host_path", m->host_path);
		g_bool(&g, "readonly", m->readonly);
		g_bool(&g, "selinux_relabel", m->selinux_relabel);
		g_bool(&g, "recursive_read_only", m->recursive_read_only);
		g_int(&g, "propagation", m->propagation);
		yajl_gen_map_close(g.g);
	}
	yajl_gen_array_close(g.g);
	g_json(&g, "spec", &r->spec_json);
	g_cgroup(&g, &r->cgroup);
	if (r->stop_signal)
		g_int(&g, "stop_signal", r->stop_signal);
	return gen_finish(&g, "container", r->id, ret, err);
}

/* ---- decoding ------------------------------------------------------------------ */

/* Decoding stops at the first field of the wrong type; dec keeps it. */
struct dec {
	struct husk_error *err;
	int r;
};

static bool d_bad(struct dec *d, const char *key, const char *want, yajl_val v)
{
	if (d->r == 0)
		d->r = husk_error_set(d->err, EINVAL, "field '%s': %s expected, %s found", key,
				      want, json_type_name(v));
	return false;
}

/* The member, or NULL when absent or null. */
static yajl_val d_get(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);
	return v && !YAJL_IS_NULL(v) ? v : NULL;
}

static char *d_str(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = d_get(obj, key);
	if (!v)
		return NULL;
	if (!YAJL_IS_STRING(v)) {
		d_bad(d, key, "string", v);
		return NULL;
	}
	return xstrdup(v->u.string);
}

static long long d_int(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = d_get(obj, key);
	if (!v)
		return 0;
	if (!YAJL_IS_INTEGER(v)) {
		d_bad(d, key, "integer", v);
		return 0;
	}
	return v->u.number.i;
}

static bool d_bool(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = d_get(obj, key);
	if (!v)
		return false;
	if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
		return d_bad(d, key, "boolean", v);
	return YAJL_IS_TRUE(v);
}

static yajl_val d_obj(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = d_get(obj, key);
	if (v && !YAJL_IS_OBJECT(v)) {
		d_bad(d, key, "object", v);
		return NULL;
	}
	return v;
}

static yajl_val d_arr(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = d_get(obj, key);
	if (v && !YAJL_IS_ARRAY(v)) {
		d_bad(d, key, "array", v);
		return NULL;
	}
	return v;
}

static void d_map(struct dec *d, yajl_val obj, const char *key, struct state_map *m)
{
	yajl_val v = d_obj(d, obj, key);
	for (size_t i = 0; v && i < v->u.object.len; i++) {
		yajl_val val = v->u.object.values[i];
		if (!YAJL_IS_STRING(val)) {
			d_bad(d, key, "string values", val);
			return;
		}
		state_map_set(m, v->u.object.keys[i], val->u.string);
	}
}

static char **d_strv(struct dec *d, yajl_val obj, const char *key)
{
	yajl_val v = d_arr(d, obj, key);
	if (!v)
		return NULL;
	char **out = xnew(char *, 1);
	for (size_t i = 0; i < v->u.array.len; i++) {
		if (!YAJL_IS_STRING(v->u.array.values[i])) {
			d_bad(d, key, "strings", v->u.array.values[i]);
			break;
		}
		out = strv_append(out, v->u.array.values[i]->u.string);
	}
	return out;
}

/* An embedded JSON value back to text. */
static char *d_json(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);
	if (!v)
		return NULL;
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	json_gen_tree(g, v);
	return json_gen_steal(g);
}

static int d_enum(struct dec *d, yajl_val obj, const char *key, int (*parse)(const char *),
		  int dflt)
{
	yajl_val v = d_get(obj, key);
	if (!v)
		return dflt;
	int e = YAJL_IS_STRING(v) ? parse(v->u.string) : -1;
	if (e < 0 && d->r == 0)
		d->r = husk_error_set(d->err, EINVAL, "field '%s': unknown value", key);
	return e < 0 ? dflt : e;
}

static uint32_t d_id(struct dec *d, yajl_val obj, const char *key)
{
	long long v = d_int(d, obj, key);
	if ((v < 0 || v > UINT32_MAX) && d->r == 0)
		d->r = husk_error_set(d->err, EINVAL, "field '%s': %lld is not an id", key, v);
	return (uint32_t)v;
}

/* Records from before the mappings were kept have none. */
static struct pod_idmap *d_idmaps(struct dec *d, yajl_val obj, const char *key, size_t *ret_n)
{
	yajl_val v = d_arr(d, obj, key);
	*ret_n = 0;
	if (!v || !v->u.array.len)
		return NULL;
	if (v->u.array.len > POD_MAX_IDMAPS) {
		if (d->r == 0)
			d->r = husk_error_set(d->err, EINVAL, "field '%s': more than %d mappings",
					      key, POD_MAX_IDMAPS);
		return NULL;
	}
	struct pod_idmap *m = xnew(struct pod_idmap, v->u.array.len);
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		if (!YAJL_IS_OBJECT(e)) {
			d_bad(d, key, "objects", e);
			break;
		}
		m[i] = (struct pod_idmap){d_id(d, e, "container_id"), d_id(d, e, "host_id"),
					  d_id(d, e, "length")};
	}
	*ret_n = v->u.array.len;
	return m;
}

static void d_sandbox(struct dec *d, yajl_val obj, struct pod_sandbox_info *sb)
{
	yajl_val v = d_obj(d, obj, "sandbox");
	if (!v)
		return;
	sb->id = d_str(d, v, "id");
	sb->dir = d_str(d, v, "dir");
	sb->user_ns = d_str(d, v, "user_ns");
	sb->userns = sb->user_ns != NULL;
	sb->net_ns = d_str(d, v, "net_ns");
	sb->ipc_ns = d_str(d, v, "ipc_ns");
	sb->uts_ns = d_str(d, v, "uts_ns");
	sb->pid_ns = d_str(d, v, "pid_ns");
	sb->shm = d_str(d, v, "shm");
	sb->hostname = d_str(d, v, "hostname");
	sb->hostname_file = d_str(d, v, "hostname_file");
	sb->hosts_file = d_str(d, v, "hosts_file");
	sb->resolv_file = d_str(d, v, "resolv_file");
	sb->net = d_enum(d, v, "network", pod_ns_mode_parse, POD_NS_POD);
	sb->ipc = d_enum(d, v, "ipc", pod_ns_mode_parse, POD_NS_POD);
	sb->uts = d_enum(d, v, "uts", pod_ns_mode_parse, POD_NS_POD);
	sb->pid = d_enum(d, v, "pid", pod_ns_mode_parse, POD_NS_POD);
	sb->init_pid = (pid_t)d_int(d, v, "init_pid");
	sb->init_start_time = (unsigned long long)d_int(d, v, "init_start_time");
	sb->uid_map = d_idmaps(d, v, "uid_mappings", &sb->n_uid_map);
	sb->gid_map = d_idmaps(d, v, "gid_mappings", &sb->n_gid_map);
}

#define CGROUP_HIERS_MAX 64

static void cgroup_add_hier(struct state_cgroup *c, const char *name, int created)
{
	c->hiers = xrealloc(c->hiers, (c->n_hiers + 1) * sizeof(*c->hiers));
	c->hiers[c->n_hiers++] = (struct state_cgroup_hier){xstrdup(name), created};
}

static void d_cgroup(struct dec *d, yajl_val obj, struct state_cgroup *c)
{
	yajl_val v = d_obj(d, obj, "cgroup");
	if (!v)
		return;
	c->path = d_str(d, v, "path");
	yajl_val cr = d_obj(d, v, "created");
	if (!c->path || !cr) {
		if (d->r == 0)
			d->r = husk_error_set(d->err, EINVAL, "field 'cgroup': no path or created");
		return;
	}
	if (cr->u.object.len > CGROUP_HIERS_MAX) {
		d_bad(d, "cgroup.created", "at most 64 hierarchies", cr);
		return;
	}
	for (size_t i = 0; i < cr->u.object.len; i++) {
		yajl_val n = cr->u.object.values[i];
		if (!YAJL_IS_INTEGER(n) || n->u.number.i < 0 || n->u.number.i > INT_MAX) {
			d_bad(d, "cgroup.created", "counts", n);
			return;
		}
		cgroup_add_hier(c, cr->u.object.keys[i], (int)n->u.number.i);
	}
}

/* A version 1 cgroup, "name=N;name=N@path". A malformed one reads as none,
 * as version 1 readers took it. */
static void d_cgroup_v1(const char *saved, struct state_cgroup *c)
{
	const char *at = strchr(saved, '@');
	if (!at || !at[1])
		return;
	c->path = xstrdup(at + 1);
	_cleanup_free_ char *owned = xstrndup(saved, (size_t)(at - saved));
	char *save = NULL;
	for (char *t = strtok_r(owned, ";", &save); t; t = strtok_r(NULL, ";", &save)) {
		char *eq = strrchr(t, '=');
		char *end = NULL;
		long n = eq ? strtol(eq + 1, &end, 10) : -1;
		if (!eq || eq == t || !end || *end || n < 0 || n > INT_MAX ||
		    c->n_hiers >= CGROUP_HIERS_MAX) {
			state_cgroup_clear(c);
			return;
		}
		*eq = '\0';
		cgroup_add_hier(c, t, (int)n);
	}
}

/* Version 1 kept what is typed now in an object "extra". */
static void d_extra_v1(struct dec *d, yajl_val tree, struct state_cgroup *cg, bool *privileged,
		       int *stop_signal)
{
	yajl_val x = d_obj(d, tree, "extra");
	if (!x)
		return;
	const char *saved = json_get_string(x, "cgroup");
	if (saved)
		d_cgroup_v1(saved, cg);
	if (privileged)
		*privileged = YAJL_IS_TRUE(json_get(x, "privileged"));
	if (stop_signal) {
		long long sig = json_get_int(x, "stop_signal", 0);
		*stop_signal = sig > 0 && sig < 65 ? (int)sig : 0;
	}
}

/* The record's version (RECORD_VERSION or RECORD_VERSION_EXTRA). */
static int check_version(yajl_val tree, struct husk_error *err)
{
	if (!YAJL_IS_OBJECT(tree))
		return husk_error_set(err, EINVAL, "not a JSON object");
	long long v = json_get_int(tree, "version", -1);
	if (v != RECORD_VERSION && v != RECORD_VERSION_EXTRA)
		return husk_error_set(err, EINVAL, "record version %lld: not %d or %d", v,
				      RECORD_VERSION_EXTRA, RECORD_VERSION);
	return (int)v;
}

static int pod_decode(yajl_val tree, struct pod_record *ret, struct husk_error *err)
{
	int r = check_version(tree, err);
	if (r < 0)
		return r;
	struct dec d = {.err = err};
	struct pod_record p = {0};
	p.id = d_str(&d, tree, "id");
	yajl_val md = d_obj(&d, tree, "metadata");
	p.name = d_str(&d, md, "name");
	p.uid = d_str(&d, md, "uid");
	p.namespace = d_str(&d, md, "namespace");
	p.attempt = (unsigned)d_int(&d, md, "attempt");
	p.state = d_enum(&d, tree, "state", pod_state_parse, POD_STATE_NOTREADY);
	p.created_at = d_int(&d, tree, "created_at");
	d_map(&d, tree, "labels", &p.labels);
	d_map(&d, tree, "annotations", &p.annotations);
	p.runtime_handler = d_str(&d, tree, "runtime_handler");
	p.hostname = d_str(&d, tree, "hostname");
	p.log_directory = d_str(&d, tree, "log_directory");
	p.cgroup_parent = d_str(&d, tree, "cgroup_parent");
	d_sandbox(&d, tree, &p.sandbox);
	p.ips = d_strv(&d, tree, "ips");
	if (r == RECORD_VERSION_EXTRA) {
		d_extra_v1(&d, tree, &p.cgroup, &p.privileged, NULL);
	} else {
		d_cgroup(&d, tree, &p.cgroup);
		p.privileged = d_bool(&d, tree, "privileged");
	}
	if (d.r == 0 && (!p.id || !p.name))
		d.r = husk_error_set(err, EINVAL, "missing id or metadata name");
	if (d.r < 0) {
		pod_record_clear(&p);
		return d.r;
	}
	*ret = p;
	return 0;
}

static int ctr_decode(yajl_val tree, struct ctr_record *ret, struct husk_error *err)
{
	int r = check_version(tree, err);
	if (r < 0)
		return r;
	struct dec d = {.err = err};
	struct ctr_record c = {0};
	c.id = d_str(&d, tree, "id");
	c.pod_id = d_str(&d, tree, "pod_id");
	yajl_val md = d_obj(&d, tree, "metadata");
	c.name = d_str(&d, md, "name");
	c.attempt = (unsigned)d_int(&d, md, "attempt");
	yajl_val img = d_obj(&d, tree, "image");
	c.image = d_str(&d, img, "image");
	c.image_id = d_str(&d, img, "id");
	c.image_ref = d_str(&d, img, "ref");
	c.state = d_enum(&d, tree, "state", ctr_state_parse, CTR_STATE_UNKNOWN);
	c.created_at = d_int(&d, tree, "created_at");
	c.started_at = d_int(&d, tree, "started_at");
	c.finished_at = d_int(&d, tree, "finished_at");
	c.exit_code = (int)d_int(&d, tree, "exit_code");
	c.reason = d_str(&d, tree, "reason");
	c.message = d_str(&d, tree, "message");
	c.pid = (pid_t)d_int(&d, tree, "pid");
	c.pid_start_time = (unsigned long long)d_int(&d, tree, "pid_start_time");
	d_map(&d, tree, "labels", &c.labels);
	d_map(&d, tree, "annotations", &c.annotations);
	c.log_path = d_str(&d, tree, "log_path");
	c.rootfs = d_str(&d, tree, "rootfs");
	yajl_val mounts = d_arr(&d, tree, "mounts");
	if (mounts && mounts->u.array.len) {
		c.mounts = xnew(struct ctr_record_mount, mounts->u.array.len);
		for (size_t i = 0; i < mounts->u.array.len; i++) {
			yajl_val m = mounts->u.array.values[i];
			if (!YAJL_IS_OBJECT(m)) {
				d_bad(&d, "mounts", "objects", m);
				break;
			}
			struct ctr_record_mount *cm = &c.mounts[c.n_mounts++];
			cm->container_path = d_str(&d, m, "container_path");
			cm->host_path = d_str(&d, m, "host_path");
			cm->readonly = d_bool(&d, m, "readonly");
			cm->selinux_relabel = d_bool(&d, m, "selinux_relabel");
			cm->recursive_read_only = d_bool(&d, m, "recursive_read_only");
			cm->propagation = (enum ctr_record_propagation)d_int(&d, m, "propagation");
		}
	}
	c.spec_json = d_json(tree, "spec");
	if (r == RECORD_VERSION_EXTRA) {
		d_extra_v1(&d, tree, &c.cgroup, NULL, &c.stop_signal);
	} else {
		d_cgroup(&d, tree, &c.cgroup);
		c.stop_signal = (int)d_int(&d, tree, "stop_signal");
	}
	if (d.r == 0 && (!c.id || !c.pod_id || !c.name))
		d.r = husk_error_set(err, EINVAL, "missing id, pod_id or metadata name");
	if (d.r < 0) {
		ctr_record_clear(&c);
		return d.r;
	}
	*ret = c;
	return 0;
}

/* ---- validation ----------------------------------------------------------------- */

/* Ids name files: the rules of pod sandbox ids. */
static bool id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > ID_MAX || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && !strchr("_.-", id[i]))
			return false;
	return true;
}

static int pod_check(const struct pod_record *r, struct husk_error *err)
{
	if (!id_valid(r->id))
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
	if (!id_valid(r->id))
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

/* ---- the store ----------------------------------------------------------------- */

struct state_store {
	char *dir;
	char *pod_dir;
	char *ctr_dir;
	size_t max_pods;
	size_t max_ctrs;
	pthread_rwlock_t lock;	  /* the index arrays */
	pthread_mutex_t wlock;	  /* one writer at a time: disk, then index */
	struct pod_record **pods; /* sorted by id */
	size_t n_pods;
	struct ctr_record **ctrs; /* sorted by id */
	size_t n_ctrs;
};

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

static char *record_path(const char *dir, const char *id)
{
	return xasprintf("%s/%s.json", dir, id);
}

/* Records may hold secrets (env in the spec snapshot): owner only. */
static int write_record(const char *dir, const char *id, const char *text, struct husk_error *err)
{
	_cleanup_free_ char *path = record_path(dir, id);
	return fs_write_atomic(path, text, strlen(text), 0600, err);
}

static int remove_record(const char *dir, const char *id, struct husk_error *err)
{
	_cleanup_free_ char *path = record_path(dir, id);
	if (unlink(path) < 0 && errno != ENOENT)
		return husk_error_errno(err, errno, "remove '%s'", path);
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
	return 0;
}

/* ---- names and order ---- */

/* The pod other than self with rec's name tuple, or NULL. Under wlock. */
static const struct pod_record *pod_name_owner(struct state_store *s, const struct pod_record *rec)
{
	for (size_t i = 0; i < s->n_pods; i++)
		if (!streq(s->pods[i]->id, rec->id) && same_pod_name(s->pods[i], rec))
			return s->pods[i];
	return NULL;
}

/* The container other than self with rec's pod, name and attempt, or NULL. */
static const struct ctr_record *ctr_name_owner(struct state_store *s, const struct ctr_record *rec)
{
	for (size_t i = 0; i < s->n_ctrs; i++)
		if (!streq(s->ctrs[i]->id, rec->id) && same_ctr_name(s->ctrs[i], rec))
			return s->ctrs[i];
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
			/* fs_write_atomic's temp file of a write a crash cut short */
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
			struct pod_record *p = xnew(struct pod_record, 1);
			r = pod_decode(tree, p, &e);
			rec = p;
			id = p->id;
		} else if (r == 0) {
			struct ctr_record *c = xnew(struct ctr_record, 1);
			r = ctr_decode(tree, c, &e);
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
				pod_record_free(rec);
			else
				ctr_record_free(rec);
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
			const struct pod_record *o = pod_name_owner(s, p);
			if (o) {
				husk_error_set(&e, EEXIST, "pod name '%s' taken by '%s'", p->name,
					       o->id);
				problem(problems, v[i].path, &e);
				pod_record_free(p);
			} else {
				index_insert((void ***)&s->pods, &s->n_pods, p);
			}
		} else {
			struct ctr_record *c = v[i].rec;
			const struct ctr_record *o = ctr_name_owner(s, c);
			if (o) {
				husk_error_set(&e, EEXIST, "container name '%s' taken by '%s'",
					       c->name, o->id);
				problem(problems, v[i].path, &e);
				ctr_record_free(c);
			} else {
				if (!find_exact((void **)s->pods, s->n_pods, c->pod_id, &at)) {
					husk_error_set(&e, ENOENT,
						       "pod '%s' of the container is missing",
						       c->pod_id);
					problem(problems, v[i].path, &e);
				}
				index_insert((void ***)&s->ctrs, &s->n_ctrs, c);
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
	pod_records_free(s->pods, s->n_pods);
	ctr_records_free(s->ctrs, s->n_ctrs);
	pthread_rwlock_destroy(&s->lock);
	pthread_mutex_destroy(&s->wlock);
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
	const struct pod_record *o = pod_name_owner(s, rec);
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
	_cleanup_(pod_record_freep) struct pod_record *copy = NULL;
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
	copy = pod_record_dup(rec);
	if (!copy->created_at)
		copy->created_at = now_real_ns();
	r = pod_encode(copy, &text, err);
	if (r < 0)
		goto out;
	r = write_record(s->pod_dir, copy->id, text, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	index_insert((void ***)&s->pods, &s->n_pods, steal_ptr(&copy));
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
	for (size_t i = 0; i < s->n_pods && !found; i++)
		if (same_pod_name(s->pods[i], &want))
			found = pod_record_dup(s->pods[i]);
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
	pthread_mutex_lock(&s->wlock);
	size_t i;
	int r = 0;
	_cleanup_(pod_record_freep) struct pod_record *copy = NULL;
	_cleanup_free_ char *text = NULL;
	if (isempty(id) || !find_exact((void **)s->pods, s->n_pods, id, &i)) {
		r = husk_error_set(err, ENOENT, "pod '%.*s': not found", ID_MAX, id ? id : "");
		goto out;
	}
	copy = pod_record_dup(s->pods[i]);
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
	r = pod_check(copy, err);
	if (r == 0)
		r = pod_name_conflict(s, copy, err);
	if (r < 0)
		goto out;
	r = pod_encode(copy, &text, err);
	if (r < 0)
		goto out;
	r = write_record(s->pod_dir, id, text, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct pod_record *old = s->pods[i];
	s->pods[i] = steal_ptr(&copy);
	pthread_rwlock_unlock(&s->lock);
	pod_record_free(old);
out:
	pthread_mutex_unlock(&s->wlock);
	return r;
}

static int replace_pod(struct pod_record *rec, void *data, struct husk_error *err _unused_)
{
	pod_record_clear(rec);
	pod_copy(rec, data);
	return 0;
}

int state_pod_update(struct state_store *s, const struct pod_record *rec, struct husk_error *err)
{
	return state_pod_modify(s, rec->id, replace_pod, (void *)rec, err);
}

int state_pod_remove(struct state_store *s, const char *id, struct husk_error *err)
{
	pthread_mutex_lock(&s->wlock);
	size_t i;
	int r = 0;
	if (isempty(id) || !find_exact((void **)s->pods, s->n_pods, id, &i)) {
		r = husk_error_set(err, ENOENT, "pod '%.*s': not found", ID_MAX, id ? id : "");
		goto out;
	}
	size_t n = 0;
	for (size_t j = 0; j < s->n_ctrs; j++)
		if (streq(s->ctrs[j]->pod_id, id))
			n++;
	if (n) {
		r = husk_error_set(err, EBUSY, "remove pod '%s': %zu containers remain", id, n);
		goto out;
	}
	r = remove_record(s->pod_dir, id, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct pod_record *old = s->pods[i];
	index_remove((void **)s->pods, &s->n_pods, i);
	pthread_rwlock_unlock(&s->lock);
	pod_record_free(old);
out:
	pthread_mutex_unlock(&s->wlock);
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

int state_pod_list(struct state_store *s, const struct pod_filter *f, struct pod_record ***ret,
		   size_t *ret_n, struct husk_error *err _unused_)
{
	pthread_rwlock_rdlock(&s->lock);
	struct pod_record **v = xnew(struct pod_record *, s->n_pods + 1);
	size_t n = 0;
	for (size_t i = 0; i < s->n_pods; i++)
		if (pod_matches(s->pods[i], f))
			v[n++] = pod_record_dup(s->pods[i]);
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
	const struct ctr_record *o = ctr_name_owner(s, rec);
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
	_cleanup_(ctr_record_freep) struct ctr_record *copy = NULL;
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
	copy = ctr_record_dup(rec);
	if (!copy->created_at)
		copy->created_at = now_real_ns();
	r = ctr_encode(copy, &text, err);
	if (r < 0)
		goto out;
	r = write_record(s->ctr_dir, copy->id, text, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	index_insert((void ***)&s->ctrs, &s->n_ctrs, steal_ptr(&copy));
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
	for (size_t i = 0; i < s->n_ctrs && !found; i++)
		if (same_ctr_name(s->ctrs[i], &want))
			found = ctr_record_dup(s->ctrs[i]);
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
	pthread_mutex_lock(&s->wlock);
	size_t i, at;
	int r = 0;
	_cleanup_(ctr_record_freep) struct ctr_record *copy = NULL;
	_cleanup_free_ char *text = NULL;
	if (isempty(id) || !find_exact((void **)s->ctrs, s->n_ctrs, id, &i)) {
		r = husk_error_set(err, ENOENT, "container '%.*s': not found", ID_MAX,
				   id ? id : "");
		goto out;
	}
	copy = ctr_record_dup(s->ctrs[i]);
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
	if (r == 0)
		r = ctr_name_conflict(s, copy, err);
	if (r < 0)
		goto out;
	r = ctr_encode(copy, &text, err);
	if (r < 0)
		goto out;
	r = write_record(s->ctr_dir, id, text, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct ctr_record *old = s->ctrs[i];
	s->ctrs[i] = steal_ptr(&copy);
	pthread_rwlock_unlock(&s->lock);
	ctr_record_free(old);
out:
	pthread_mutex_unlock(&s->wlock);
	return r;
}

static int replace_ctr(struct ctr_record *rec, void *data, struct husk_error *err _unused_)
{
	ctr_record_clear(rec);
	ctr_copy(rec, data);
	return 0;
}

int state_ctr_update(struct state_store *s, const struct ctr_record *rec, struct husk_error *err)
{
	return state_ctr_modify(s, rec->id, replace_ctr, (void *)rec, err);
}

int state_ctr_remove(struct state_store *s, const char *id, struct husk_error *err)
{
	pthread_mutex_lock(&s->wlock);
	size_t i;
	int r = 0;
	if (isempty(id) || !find_exact((void **)s->ctrs, s->n_ctrs, id, &i)) {
		r = husk_error_set(err, ENOENT, "container '%.*s': not found", ID_MAX,
				   id ? id : "");
		goto out;
	}
	r = remove_record(s->ctr_dir, id, err);
	if (r < 0)
		goto out;
	pthread_rwlock_wrlock(&s->lock);
	struct ctr_record *old = s->ctrs[i];
	index_remove((void **)s->ctrs, &s->n_ctrs, i);
	pthread_rwlock_unlock(&s->lock);
	ctr_record_free(old);
out:
	pthread_mutex_unlock(&s->wlock);
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

int state_ctr_list(struct state_store *s, const struct ctr_filter *f, struct ctr_record ***ret,
		   size_t *ret_n, struct husk_error *err _unused_)
{
	pthread_rwlock_rdlock(&s->lock);
	struct ctr_record **v = xnew(struct ctr_record *, s->n_ctrs + 1);
	size_t n = 0;
	for (size_t i = 0; i < s->n_ctrs; i++)
		if (ctr_matches(s->ctrs[i], f))
			v[n++] = ctr_record_dup(s->ctrs[i]);
	pthread_rwlock_unlock(&s->lock);
	qsort(v, n, sizeof(*v), cmp_ctr);
	*ret = v;
	*ret_n = n;
	return 0;
}
