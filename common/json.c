/* yajl helpers: bounded parsing with useful errors, typed lookups, and
 * generator shorthands. */
#include "common/json.h"

#include <errno.h>
#include <string.h>

#include "common/fs.h"

static bool too_deep(const char *text, size_t len)
{
	/* yajl_tree recurses without a bound; reject deep nesting up front.
	 * The scan must skip what yajl skips: strings, and the comments
	 * yajl_tree_parse allows, or a '"' in a comment would hide the
	 * brackets after it. */
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '/' && i + 1 < len && text[i + 1] == '*') {
			const char *end = memmem(text + i + 2, len - i - 2, "*/", 2);
			if (!end)
				break; /* unterminated: yajl refuses it */
			i = (size_t)(end - text) + 1;
		} else if (c == '/' && i + 1 < len && text[i + 1] == '/') {
			const char *end = memchr(text + i + 2, '\n', len - i - 2);
			if (!end)
				break;
			i = (size_t)(end - text);
		} else if (c == '{' || c == '[') {
			if (++depth > JSON_MAX_DEPTH)
				return true;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return false;
}

int json_parse(const char *text, size_t len, const char *what, yajl_val *ret_tree,
	       struct husk_error *err)
{
	if (too_deep(text, len))
		return husk_error_set(err, EINVAL, "parse '%s': nested deeper than %d levels", what,
				      JSON_MAX_DEPTH);
	_cleanup_free_ char *copy = xstrndup(text, len);
	char buf[512] = "";
	yajl_val tree = yajl_tree_parse(copy, buf, sizeof(buf));
	if (!tree) {
		/* yajl's message spans lines, pads them with blanks and ends
		 * in a newline: one line, single spaces. */
		size_t n = 0;
		for (char *p = buf; *p; p++) {
			char c = *p == '\n' ? ' ' : *p;
			if (c != ' ' || (n && buf[n - 1] != ' '))
				buf[n++] = c;
		}
		while (n && buf[n - 1] == ' ')
			n--;
		buf[n] = '\0';
		return husk_error_set(err, EINVAL, "parse '%s': %s", what,
				      *buf ? buf : "invalid JSON");
	}
	*ret_tree = tree;
	return 0;
}

int json_parse_file(const char *path, size_t max_size, yajl_val *ret_tree, struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = fs_read_file(path, max_size, &text, &len, err);
	if (r < 0)
		return r;
	return json_parse(text, len, path, ret_tree, err);
}

yajl_val json_get(yajl_val obj, const char *key)
{
	if (!YAJL_IS_OBJECT(obj))
		return NULL;
	for (size_t i = 0; i < obj->u.object.len; i++)
		if (streq(obj->u.object.keys[i], key))
			return obj->u.object.values[i];
	return NULL;
}

const char *json_get_string(yajl_val obj, const char *key)
{
	yajl_val v = json_get(obj, key);
	return YAJL_IS_STRING(v) ? v->u.string : NULL;
}

long long json_get_int(yajl_val obj, const char *key, long long dflt)
{
	yajl_val v = json_get(obj, key);
	return YAJL_IS_INTEGER(v) ? v->u.number.i : dflt;
}

const char *json_type_name(yajl_val v)
{
	if (!v || YAJL_IS_NULL(v))
		return "null";
	if (YAJL_IS_STRING(v))
		return "string";
	if (YAJL_IS_NUMBER(v))
		return "number";
	if (YAJL_IS_OBJECT(v))
		return "object";
	if (YAJL_IS_ARRAY(v))
		return "array";
	return "boolean";
}

yajl_gen json_gen_new(bool pretty)
{
	yajl_gen g = yajl_gen_alloc(NULL);
	if (!g)
		abort();
	yajl_gen_config(g, yajl_gen_beautify, pretty ? 1 : 0);
	yajl_gen_config(g, yajl_gen_validate_utf8, 0);
	return g;
}

void json_str(yajl_gen g, const char *s)
{
	s = s ? s : "";
	yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

void json_key(yajl_gen g, const char *key)
{
	json_str(g, key);
}

void json_kv_str(yajl_gen g, const char *key, const char *value)
{
	json_str(g, key);
	json_str(g, value);
}

void json_kv_int(yajl_gen g, const char *key, long long value)
{
	json_str(g, key);
	yajl_gen_integer(g, value);
}

void json_kv_bool(yajl_gen g, const char *key, bool value)
{
	json_str(g, key);
	yajl_gen_bool(g, value);
}

char *json_gen_steal(yajl_gen g)
{
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	return xstrndup((const char *)buf, len);
}

void json_gen_tree(yajl_gen g, yajl_val v)
{
	if (!v || YAJL_IS_NULL(v)) {
		yajl_gen_null(g);
	} else if (YAJL_IS_STRING(v)) {
		json_str(g, v->u.string);
	} else if (YAJL_IS_INTEGER(v)) {
		yajl_gen_integer(g, v->u.number.i);
	} else if (YAJL_IS_NUMBER(v)) {
		yajl_gen_number(g, v->u.number.r, strlen(v->u.number.r));
	} else if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) {
		yajl_gen_bool(g, YAJL_IS_TRUE(v));
	} else if (YAJL_IS_OBJECT(v)) {
		yajl_gen_map_open(g);
		for (size_t i = 0; i < v->u.object.len; i++) {
			json_str(g, v->u.object.keys[i]);
			json_gen_tree(g, v->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	} else if (YAJL_IS_ARRAY(v)) {
		yajl_gen_array_open(g);
		for (size_t i = 0; i < v->u.array.len; i++)
			json_gen_tree(g, v->u.array.values[i]);
		yajl_gen_array_close(g);
	}
}
