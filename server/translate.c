/* Map and list conversions between protobuf-c messages and husk structs. */
#include "server/translate.h"

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

char **srv_strv(char *const *v, size_t n)
{
	char **out = xnew(char *, n + 1);
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	return out;
}
