/* The WWW-Authenticate challenge of a registry's 401 answer
 * (img_auth_challenge_parse): the scheme and the realm, service and scope
 * the token request is built from. */
#include "image/internal.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *h = fuzz_str(data, size);
	_cleanup_free_ char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
	img_auth_challenge_parse(h, &scheme, &realm, &service, &scope);
	FUZZ_CHECK(scheme && !strchr(scheme, ' '));
	FUZZ_CHECK(strlen(scheme) <= strlen(h));
	FUZZ_CHECK(!realm || strlen(realm) <= strlen(h));
	FUZZ_CHECK(!service || strlen(service) <= strlen(h));
	FUZZ_CHECK(!scope || strlen(scope) <= strlen(h));
	return 0;
}
