/* Pod and container records in memory: state names, label maps, and the
 * clear, copy and free of each record. */
#include "runtime/state/internal.h"

#include <string.h>

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

void state_pod_copy(struct pod_record *dst, const struct pod_record *src)
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
	state_pod_copy(c, r);
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

void state_ctr_copy(struct ctr_record *dst, const struct ctr_record *src)
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
	state_ctr_copy(c, r);
	return c;
}

void ctr_records_free(struct ctr_record **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		ctr_record_free(v[i]);
	free(v);
}
