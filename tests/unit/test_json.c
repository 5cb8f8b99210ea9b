/* common/json.c: the nesting bound of json_parse, which must count every
 * bracket yajl will nest, whatever strings and comments surround them. */
#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "unit.h"

/* prefix, then n '[' and n ']'. */
static char *nested(const char *prefix, int n)
{
	size_t pl = strlen(prefix);
	char *s = xmalloc(pl + 2 * (size_t)n + 1);
	memcpy(s, prefix, pl);
	memset(s + pl, '[', (size_t)n);
	memset(s + pl + n, ']', (size_t)n);
	s[pl + 2 * (size_t)n] = '\0';
	return s;
}

static int parse(const char *text, struct husk_error *err)
{
	_cleanup_json_ yajl_val tree = NULL;
	return json_parse(text, strlen(text), "t", &tree, err);
}

static void test_depth_limit(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *ok = nested("", JSON_MAX_DEPTH);
	_cleanup_free_ char *deep = nested("", JSON_MAX_DEPTH + 1);
	CU_ASSERT_EQUAL(parse(ok, &err), 0);
	CU_ASSERT_EQUAL(parse(deep, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "nested deeper than 64 levels"));
	husk_error_clear(&err);
}

static void test_brackets_in_strings_do_not_count(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *s =
	    xasprintf("{\"a\": \"%s\", \"b\": \"\\\"[[[[\"}",
		      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	CU_ASSERT_EQUAL(parse(s, &err), 0);
	husk_error_clear(&err);
}

/* A '"' inside a comment once hid the brackets after it from the bound:
 * yajl_tree then recursed as deep as the text (a stack overflow at a few
 * hundred thousand levels, reachable from any manifest or CNI output). */
static void test_comments_do_not_hide_depth(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	const char *prefixes[] = {"/* \" */", "// \"\n", "/* [[[[ */", "/**/ // x \" \n"};
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		_cleanup_free_ char *deep = nested(prefixes[i], JSON_MAX_DEPTH + 1);
		CU_ASSERT_EQUAL(parse(deep, &err), -EINVAL);
		husk_error_clear(&err);
		_cleanup_free_ char *ok = nested(prefixes[i], JSON_MAX_DEPTH);
		CU_ASSERT_EQUAL(parse(ok, &err), 0);
		husk_error_clear(&err);
	}
	/* Brackets inside a comment are not nesting. */
	_cleanup_free_ char *c = xasprintf("/* %s */ []", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
							  "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	CU_ASSERT_EQUAL(parse(c, &err), 0);
	husk_error_clear(&err);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"depth limit", test_depth_limit},
	    {"brackets in strings", test_brackets_in_strings_do_not_count},
	    {"comments do not hide depth", test_comments_do_not_hide_depth},
	};
	return unit_run("json", tests, ARRAY_SIZE(tests));
}
