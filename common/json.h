/* JSON on top of yajl: parsing files and strings into trees with bounded
 * size and depth and errors that name the file, and a thin generator. */
#ifndef HUSK_COMMON_JSON_H
#define HUSK_COMMON_JSON_H

#include <stdint.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "common/error.h"

#define JSON_MAX_DEPTH 64

/* Parse text (len bytes; text need not be NUL terminated) into a tree.
 * what names the source in errors ("/etc/husk/husk.json"). On success the
 * caller owns *ret_tree (free with yajl_tree_free). Errors: EINVAL. */
int json_parse(const char *text, size_t len, const char *what, yajl_val *ret_tree,
	       struct husk_error *err);

/* Read and parse a file no larger than max_size bytes. ENOENT when missing. */
int json_parse_file(const char *path, size_t max_size, yajl_val *ret_tree, struct husk_error *err);

static inline void yajl_tree_freep(yajl_val *v)
{
	if (*v)
		yajl_tree_free(*v);
}
#define _cleanup_json_ _cleanup_(yajl_tree_freep)

/* Object member lookup (NULL when obj is not an object or has no key). */
yajl_val json_get(yajl_val obj, const char *key);
/* Typed lookups: the string or NULL; the integer or dflt. */
const char *json_get_string(yajl_val obj, const char *key);
long long json_get_int(yajl_val obj, const char *key, long long dflt);
const char *json_type_name(yajl_val v);

/* Generator helpers; each returns nothing since yajl only fails on misuse. */
yajl_gen json_gen_new(bool pretty);
static inline void yajl_gen_freep(yajl_gen *g)
{
	if (*g)
		yajl_gen_free(*g);
}
#define _cleanup_gen_ _cleanup_(yajl_gen_freep)
void json_str(yajl_gen g, const char *s);
void json_kv_str(yajl_gen g, const char *key, const char *value);
void json_kv_int(yajl_gen g, const char *key, long long value);
void json_kv_bool(yajl_gen g, const char *key, bool value);
void json_key(yajl_gen g, const char *key);
/* Copy the generated text into a new NUL-terminated string. */
char *json_gen_steal(yajl_gen g);
/* Write a parsed tree back out (used to re-emit a sub-object verbatim). */
void json_gen_tree(yajl_gen g, yajl_val v);

#endif
