/* Map and list conversions between protobuf-c messages and husk structs. */
#include "server/translate.h"

#include <string.h>

#include "common/json.h"

struct map_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};

void srv_map_to_state(const void *entries, size_t n, struct state_map *m)
{
	struct map_entry *const *v = entries;
	for (size_t i = 0; i < n; i++) {
		const struct map_entry *e = v[i];
		state_map_set(m, e->key ? e->key : "", e->value ? e->value : "");
	}
}

void srv_map_from_state(const struct state_map *m, void *entries_field, size_t *n,
			const ProtobufCMessageDescriptor *entry)
{
	for (size_t i = 0; i < m->n; i++)
		srv_map_add(entries_field, n, entry, m->items[i].key, m->items[i].value);
}

void *srv_map_borrow(const struct state_map *m, void *entries_field, size_t *n,
		     const ProtobufCMessageDescriptor *entry)
{
	*(void **)entries_field = NULL;
	*n = 0;
	if (m->n == 0)
		return NULL;
	/* The pointer array first, then the entries (sizes are multiples of
	 * the pointer size, so the entries stay aligned). */
	size_t size =
	    (entry->sizeof_message + sizeof(void *) - 1) / sizeof(void *) * sizeof(void *);
	char *block = xmalloc(m->n * (sizeof(void *) + size));
	void **ptrs = (void **)block;
	const ProtobufCFieldDescriptor *fk = protobuf_c_message_descriptor_get_field(entry, 1);
	const ProtobufCFieldDescriptor *fv = protobuf_c_message_descriptor_get_field(entry, 2);
	for (size_t i = 0; i < m->n; i++) {
		ProtobufCMessage *e =
		    (ProtobufCMessage *)(block + m->n * sizeof(void *) + i * size);
		protobuf_c_message_init(entry, e);
		*(const char **)((char *)e + fk->offset) = m->items[i].key;
		*(const char **)((char *)e + fv->offset) = m->items[i].value;
		ptrs[i] = e;
	}
	*(void ***)entries_field = ptrs;
	*n = m->n;
	return block;
}

char **srv_strv(char *const *v, size_t n)
{
	char **out = xnew(char *, n + 1);
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}

static void idmaps_gen(yajl_gen g, const char *key, const struct pod_idmap *m, size_t n)
{
	json_key(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; i < n; i++) {
		yajl_gen_map_open(g);
		json_kv_int(g, "containerID", m[i].container_id);
		json_kv_int(g, "hostID", m[i].host_id);
		json_kv_int(g, "length", m[i].size);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
}

void srv_userns_info_gen(yajl_gen g, const struct pod_sandbox_info *sb)
{
	json_key(g, "userNamespace");
	yajl_gen_map_open(g);
	json_kv_str(g, "mode", sb->user_ns ? "POD" : "NODE");
	if (sb->user_ns) {
		json_kv_str(g, "path", sb->user_ns);
		idmaps_gen(g, "uids", sb->uid_map, sb->n_uid_map);
		idmaps_gen(g, "gids", sb->gid_map, sb->n_gid_map);
	}
	yajl_gen_map_close(g);
}

void srv_kernel_view_gen(yajl_gen g, const char *json, bool live)
{
	_cleanup_json_ yajl_val t = NULL;
	if (!json || json_parse(json, strlen(json), "kernel view", &t, NULL) < 0 ||
	    !YAJL_IS_OBJECT(t))
		return;
	json_key(g, "kernel");
	yajl_gen_map_open(g);
	json_kv_str(g, "source", live ? "live" : "recorded");
	for (size_t i = 0; i < t->u.object.len; i++) {
		json_key(g, t->u.object.keys[i]);
		json_gen_tree(g, t->u.object.values[i]);
	}
	yajl_gen_map_close(g);
}
