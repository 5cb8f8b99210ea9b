/* The container spec file huskd writes and husk-shim reads back
 * (ctr_spec_from_json): anything is refused with EINVAL or gives a valid
 * spec, and a valid spec written out (ctr_spec_to_json) reads back to the
 * same text. */
#include "runtime/launcher/launcher.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (ctr_spec_from_json((const char *)data, size, "fuzz.json", &s, &err) < 0) {
		FUZZ_CHECK(err.code == EINVAL && err.msg);
		return 0;
	}
	FUZZ_CHECK(ctr_spec_validate(s, &err) == 0);
	_cleanup_free_ char *text = ctr_spec_to_json(s);
	_cleanup_(ctr_spec_freep) struct ctr_spec *back = NULL;
	if (ctr_spec_from_json(text, strlen(text), "written", &back, &err) < 0) {
		fprintf(stderr, "written spec does not read back: %s\n%s\n", err.msg, text);
		abort();
	}
	_cleanup_free_ char *text2 = ctr_spec_to_json(back);
	if (!streq(text, text2)) {
		fprintf(stderr, "spec changed on a round trip:\n%s\n%s\n", text, text2);
		abort();
	}
	return 0;
}
