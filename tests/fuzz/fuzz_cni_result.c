/* What a CNI plugin prints on stdout: its ADD result in any supported
 * version (net_result_parse) or its error document (net_error_parse).
 * A parsed result must convert to every version husk writes (0.3.0 on),
 * parse back, and convert to the same text again. */
#include "common/json.h"
#include "network/network.h"
#include "tests/fuzz/fuzz.h"

static void check_versions(const struct net_result *r)
{
	for (size_t i = 0; net_cni_versions[i]; i++) {
		const char *v = net_cni_versions[i];
		if (net_version_num(v) < 300)
			continue;
		_cleanup_free_ char *text = net_result_to_json(r, v);
		_cleanup_(net_result_freep) struct net_result *back = NULL;
		_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
		if (net_result_parse(text, strlen(text), &back, &err) < 0) {
			fprintf(stderr, "result written as %s does not parse: %s\n%s\n", v, err.msg,
				text);
			abort();
		}
		_cleanup_free_ char *text2 = net_result_to_json(back, v);
		FUZZ_CHECK(streq(text, text2));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	unsigned code = 0;
	_cleanup_free_ char *msg = NULL;
	if (net_error_parse((const char *)data, size, &code, &msg, &err) == 0)
		FUZZ_CHECK(msg && *msg && code <= 0xffff);
	husk_error_clear(&err);

	_cleanup_(net_result_freep) struct net_result *r = NULL;
	if (net_result_parse((const char *)data, size, &r, &err) < 0) {
		FUZZ_CHECK(err.msg && (err.code == EINVAL || err.code == ENOTSUP));
		return 0;
	}
	FUZZ_CHECK(net_version_supported(r->cni_version));
	for (size_t i = 0; i < r->n_ips; i++) {
		FUZZ_CHECK(r->ips[i].family == 4 || r->ips[i].family == 6);
		FUZZ_CHECK(r->ips[i].interface < (int)r->n_interfaces);
	}
	_cleanup_strv_ char **ips = net_result_pod_ips(r, NET_DEFAULT_IFNAME);
	_cleanup_strv_ char **any = net_result_pod_ips(r, NULL);
	FUZZ_CHECK(ips && any);
	check_versions(r);
	return 0;
}
