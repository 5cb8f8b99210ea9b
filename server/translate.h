/* Helpers shared by the handlers to move maps and lists between protobuf-c
 * messages and husk's own structs. */
#ifndef HUSK_SERVER_TRANSLATE_H
#define HUSK_SERVER_TRANSLATE_H

#include "runtime/state.h"
#include "server/server.h"

/* Copy a protobuf map<string,string> (entries of {base, key, value}) into m. */
void srv_map_to_state(const void *entries, size_t n, struct state_map *m);
/* Append the pairs of m to a map field of a response. */
void srv_map_from_state(const struct state_map *m, void *entries_field, size_t *n,
			const ProtobufCMessageDescriptor *entry);
/* A NULL-terminated copy of a repeated string field. */
char **srv_strv(char *const *v, size_t n);

#endif
