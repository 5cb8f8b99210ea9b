/* Image references as CRI callers and pod specs write them
 * (img_ref_parse): any string is refused with EINVAL or normalised, and a
 * normalised reference printed back parses to itself. Also the digest and
 * loopback-host checks applied to names from the same sources. */
#include "image/internal.h"
#include "tests/fuzz/fuzz.h"

static void check_same(const struct img_ref *a, const struct img_ref *b)
{
	FUZZ_CHECK(streq(a->domain, b->domain));
	FUZZ_CHECK(streq(a->path, b->path));
	FUZZ_CHECK((!a->tag && !b->tag) || streq(a->tag, b->tag));
	FUZZ_CHECK((!a->digest && !b->digest) || streq(a->digest, b->digest));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *s = fuzz_str(data, size);
	(void)img_host_is_loopback(s);
	if (img_digest_valid(s))
		FUZZ_CHECK(strlen(img_digest_hex(s)) == 64);
	(void)img_media_type_kind(s, NULL);

	_cleanup_(img_ref_freep) struct img_ref *r = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (img_ref_parse(s, &r, &err) < 0) {
		FUZZ_CHECK(err.code == EINVAL && err.msg);
		return 0;
	}
	FUZZ_CHECK(r->domain && r->path && (r->tag || r->digest));
	FUZZ_CHECK(!r->digest || img_digest_valid(r->digest));
	_cleanup_free_ char *name = img_ref_name(r);
	_cleanup_free_ char *tagged = img_ref_tagged(r);
	_cleanup_free_ char *full = img_ref_string(r);
	FUZZ_CHECK(strlen(name) <= 255);

	_cleanup_(img_ref_freep) struct img_ref *again = NULL;
	if (img_ref_parse(full, &again, &err) < 0) {
		fprintf(stderr, "'%s' normalised to '%s', which does not parse: %s\n", s, full,
			err.msg);
		abort();
	}
	check_same(r, again);
	if (tagged) {
		_cleanup_(img_ref_freep) struct img_ref *t = NULL;
		FUZZ_CHECK(img_ref_parse(tagged, &t, &err) == 0);
		FUZZ_CHECK(streq(t->tag, r->tag) && !t->digest);
	}
	return 0;
}
