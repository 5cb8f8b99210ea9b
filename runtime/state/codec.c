/* The record codec: one typed pod or container record to the JSON of its
 * file and back, reading the version-1 records that kept some fields in
 * "extra". */
#include "runtime/state/internal.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#include "common/json.h"

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

int state_pod_encode(struct pod_record *r, char **ret, struct husk_error *err)
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

int state_ctr_encode(struct ctr_record *r, char **ret, struct husk_error *err)
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

int state_pod_decode(yajl_val tree, struct pod_record *ret, struct husk_error *err)
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

int state_ctr_decode(yajl_val tree, struct ctr_record *ret, struct husk_error *err)
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
