/* Image configs as a registry serves them (img_config_parse), and the
 * chain IDs computed from their diff_ids. */
#include "image/internal.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_(img_config_freep) struct img_config *c = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (img_config_parse((const char *)data, size, &c, &err) < 0) {
		FUZZ_CHECK(err.msg && (err.code == EBADMSG || err.code == EFBIG));
		return 0;
	}
	FUZZ_CHECK(c->user && c->working_dir && c->stop_signal && c->os && c->architecture);
	FUZZ_CHECK(c->env && c->entrypoint && c->cmd && c->exposed_ports && c->volumes);
	FUZZ_CHECK(c->labels && strv_length(c->labels) % 2 == 0);
	size_t n = strv_length(c->diff_ids);
	FUZZ_CHECK(n <= IMG_MAX_LAYERS);
	_cleanup_strv_ char **chain = img_chain_ids(c->diff_ids);
	FUZZ_CHECK(strv_length(chain) == n);
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(img_digest_valid(chain[i]));
	return 0;
}
