/* huskd's configuration file (srv_config_load with --config naming a
 * file written from the input). A config that loads must print
 * (srv_config_to_json) as a file that loads to the same config. */
#include "server/config.h"
#include "tests/fuzz/fuzz.h"

static char *load(const char *path, struct husk_error *err)
{
	_cleanup_(srv_config_freep) struct srv_config *c = NULL;
	struct srv_flags flags = {.config = path};
	if (srv_config_load(&flags, &c, err) < 0)
		return NULL;
	return srv_config_to_json(c, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Drop-ins would be read from <dir>/husk.d: the dir has none. */
	_cleanup_free_ char *path = xasprintf("%s/husk.json", fuzz_tmpdir());
	fuzz_write_file(path, data, size);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *text = load(path, &err);
	if (!text) {
		FUZZ_CHECK(err.code == EINVAL && err.msg);
		return 0;
	}
	fuzz_write_file(path, text, strlen(text));
	_cleanup_free_ char *text2 = load(path, &err);
	if (!text2) {
		fprintf(stderr, "printed config does not load: %s\n%s\n", err.msg, text);
		abort();
	}
	FUZZ_CHECK(streq(text, text2));
	return 0;
}
