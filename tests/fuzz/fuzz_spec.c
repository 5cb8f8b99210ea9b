/* The container's config.json as husk's launcher reads it
 * (ctr_spec_from_oci): anything is refused with EINVAL or gives a valid
 * spec, and a valid spec written out again (ctr_oci_config) reads back to
 * the same config text. */
#include "runtime/launcher/launcher.h"
#include "runtime/oci.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_(ctr_spec_freep) struct ctr_spec *s = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (ctr_spec_from_oci((const char *)data, size, "fuzz.json", &s, &err) < 0) {
		FUZZ_CHECK(err.code == EINVAL && err.msg);
		return 0;
	}
	FUZZ_CHECK(ctr_spec_validate(s, &err) == 0);
	_cleanup_free_ char *text = NULL;
	/* A Localhost profile is read from its file: none here. */
	if (ctr_oci_config(s, NULL, &text, &err) < 0)
		return 0;
	_cleanup_(ctr_spec_freep) struct ctr_spec *back = NULL;
	if (ctr_spec_from_oci(text, strlen(text), "written", &back, &err) < 0) {
		fprintf(stderr, "written config does not read back: %s\n%s\n", err.msg, text);
		abort();
	}
	_cleanup_free_ char *text2 = NULL;
	FUZZ_CHECK(ctr_oci_config(back, NULL, &text2, &err) == 0);
	if (!streq(text, text2)) {
		fprintf(stderr, "config changed on a round trip:\n%s\n%s\n", text, text2);
		abort();
	}
	return 0;
}
