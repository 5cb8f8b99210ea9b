/* common/json.c's json_parse, which every JSON input goes through: any
 * text either fails with a message or gives a tree that json_gen_tree
 * writes back as JSON that parses to the same tree. */
#include "common/json.h"
#include "tests/fuzz/fuzz.h"

static char *gen(yajl_val tree)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	json_gen_tree(g, tree);
	return json_gen_steal(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_json_ yajl_val tree = NULL;
	if (json_parse((const char *)data, size, "fuzz", &tree, &err) < 0) {
		FUZZ_CHECK(err.code == EINVAL && err.msg);
		return 0;
	}
	FUZZ_CHECK(tree);
	(void)json_type_name(tree);
	(void)json_get_string(tree, "a");
	(void)json_get_int(tree, "a", 0);

	_cleanup_free_ char *text = gen(tree);
	_cleanup_json_ yajl_val again = NULL;
	if (json_parse(text, strlen(text), "regenerated", &again, &err) < 0) {
		fprintf(stderr, "regenerated JSON does not parse: %s\n%s\n", err.msg, text);
		abort();
	}
	_cleanup_free_ char *text2 = gen(again);
	FUZZ_CHECK(streq(text, text2));
	return 0;
}
