/* Helpers shared by the handlers to move maps and lists between protobuf-c
 * messages and husk's own structs. */
#ifndef HUSK_SERVER_TRANSLATE_H
#define HUSK_SERVER_TRANSLATE_H

#include <stdbool.h>
#include <yajl/yajl_gen.h>

#include "runtime/state/state.h"
#include "server/server.h"

/* Copy a protobuf map<string,string> (entries of {base, key, value}) into m. */
void srv_map_to_state(const void *entries, size_t n, struct state_map *m);
/* Append the pairs of m to a map field of a response. */
void srv_map_from_state(const struct state_map *m, void *entries_field, size_t *n,
			const ProtobufCMessageDescriptor *entry);
/* Point a map field of a message that is packed and never freed (an item
 * for srv_repeated_add_packed) at the pairs of m, copying no string.
 * Returns the one block holding the entries, to free after the packing;
 * NULL when m is empty. */
void *srv_map_borrow(const struct state_map *m, void *entries_field, size_t *n,
		     const ProtobufCMessageDescriptor *entry);
/* A NULL-terminated copy of a repeated string field. */
char **srv_strv(char *const *v, size_t n);

/* Put a kernel view (rt_ctr_kernel_view, rt_pod_kernel_view: one JSON
 * object as text) into g under "kernel", "source" ("live" or "recorded")
 * first. Nothing when the text is not a JSON object. */
void srv_kernel_view_gen(yajl_gen g, const char *json, bool live);

/* The pod's user namespace in verbose info, under "userNamespace": mode
 * ("POD" or "NODE"), the pin, and the mappings as RunPodSandbox got them
 * ({containerID, hostID, length}, as containerd names them). */
void srv_userns_info_gen(yajl_gen g, const struct pod_sandbox_info *sb);

#endif
