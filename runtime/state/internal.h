/* Internals shared by the record store's files: records.c (names, maps,
 * copies), codec.c (one typed record <-> its JSON file) and store.c (the
 * files and the in-memory index). Not an API: state.h is. */
#ifndef HUSK_RUNTIME_STATE_INTERNAL_H
#define HUSK_RUNTIME_STATE_INTERNAL_H

#include <yajl/yajl_tree.h>

#include "runtime/state/state.h"

/* 2: typed cgroup, privileged and stop_signal; 1 kept them in "extra". */
#define RECORD_VERSION 2
#define RECORD_VERSION_EXTRA 1
#define ID_MAX HUSK_OBJ_ID_MAX

/* Both record types start with their id, so the index code can read it
 * through a pointer to either. */
#define REC_ID(p) (*(char *const *)(p))

/* dst (cleared or zeroed) becomes a deep copy of src (records.c). */
void state_pod_copy(struct pod_record *dst, const struct pod_record *src);
void state_ctr_copy(struct ctr_record *dst, const struct ctr_record *src);

/* A record as the JSON text of its file (*ret the caller's); EINVAL naming
 * the field that cannot be written. */
int state_pod_encode(struct pod_record *r, char **ret, struct husk_error *err);
int state_ctr_encode(struct ctr_record *r, char **ret, struct husk_error *err);
/* A parsed record file into *ret (cleared first by the caller); EINVAL
 * naming the first field of the wrong type, or a version it cannot read.
 * Records of version 1 (cgroup, privileged, stop signal in "extra") are
 * read too. */
int state_pod_decode(yajl_val tree, struct pod_record *ret, struct husk_error *err);
int state_ctr_decode(yajl_val tree, struct ctr_record *ret, struct husk_error *err);

#endif
