/* CNI network configuration files as found in cni_conf_dir
 * (net_conflist_parse): config lists and single plugin configs, with
 * version negotiation. A usable config has a valid name, a supported
 * version and plugins whose types are plain file names. */
#include "network/network.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_(net_conflist_freep) struct net_conflist *c = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (net_conflist_parse((const char *)data, size, "fuzz.conflist", &c, &err) < 0) {
		FUZZ_CHECK(err.code == EINVAL && err.msg);
		return 0;
	}
	FUZZ_CHECK(!isempty(c->name) && net_version_supported(c->cni_version));
	FUZZ_CHECK(c->n_plugins >= 1 && c->n_plugins <= NET_MAX_PLUGINS);
	for (size_t i = 0; i < c->n_plugins; i++) {
		const char *t = c->plugins[i].type;
		FUZZ_CHECK(!isempty(t) && !strchr(t, '/') && c->plugins[i].conf);
	}
	FUZZ_CHECK(c->n_plugins == 1 || net_version_num(c->cni_version) >= 300);
	return 0;
}
