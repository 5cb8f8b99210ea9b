/* What a pod spec hands the CNI plugins: the bandwidth annotations (k8s
 * quantities, net_quantity_parse), port mappings, DNS settings and the pod
 * CIDR, turned into the runtimeConfig JSON (net_runtime_config) and
 * CNI_ARGS. The input is lines: ingress, egress, a port mapping
 * "PROTO HOSTPORT CONTAINERPORT [HOSTIP]", a DNS server, a search
 * domain, an option, the pod CIDR, the pod name. The JSON made must
 * parse when the strings in it are valid UTF-8 (CRI strings from the
 * kubelet are; others go to the plugins as they came). */
#include "common/json.h"
#include "network/network.h"
#include "tests/fuzz/fuzz.h"

static bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = -1;
		if (*p < 0x80)
			n = 0;
		else if (*p >= 0xc2 && *p < 0xe0)
			n = 1;
		else if ((*p & 0xf0) == 0xe0)
			n = 2;
		else if ((*p & 0xf8) == 0xf0)
			n = 3;
		if (n < 0)
			return false;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	_cleanup_free_ char *text = fuzz_str(data, size);
	bool utf8 = utf8_valid(text);
	char *line[8] = {0};
	char *save = NULL, *p = text;
	for (size_t i = 0; i < ARRAY_SIZE(line); i++, p = NULL) {
		line[i] = strtok_r(p, "\n", &save);
		if (!line[i])
			break;
	}
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	long long q;
	if (line[0] && net_quantity_parse(line[0], &q, &err) == 0)
		FUZZ_CHECK(q >= 0);
	husk_error_clear(&err);

	struct net_port_mapping pm = {0};
	char proto[16] = "", ip[64] = "";
	bool has_port = line[2] && sscanf(line[2], "%15s %d %d %63s", proto, &pm.host_port,
					  &pm.container_port, ip) >= 3;
	pm.protocol = proto;
	pm.host_ip = ip;
	char *servers[] = {line[3], NULL}, *searches[] = {line[4], NULL},
	     *options[] = {line[5], NULL};
	struct net_pod pod = {
	    .id = "0123456789abcdef",
	    .netns = "/run/netns/x",
	    .name = line[7] ? line[7] : "pod",
	    .namespace = "default",
	    .uid = "uid",
	    .ports = has_port ? &pm : NULL,
	    .n_ports = has_port,
	    .ingress_bandwidth = line[0],
	    .egress_bandwidth = line[1],
	    .dns_servers = servers,
	    .dns_searches = searches,
	    .dns_options = options,
	    .pod_cidr = line[6],
	};
	_cleanup_free_ char *json = NULL;
	if (net_runtime_config(&pod, &json, &err) == 0) {
		_cleanup_json_ yajl_val tree = NULL;
		if (utf8 && json_parse(json, strlen(json), "runtimeConfig", &tree, &err) < 0) {
			fprintf(stderr, "runtimeConfig is not JSON: %s\n%s\n", err.msg, json);
			abort();
		}
	}
	husk_error_clear(&err);
	_cleanup_free_ char *args = NULL;
	if (net_cni_args(&pod, &args, &err) == 0)
		FUZZ_CHECK(startswith(args, "IgnoreUnknown=1;"));
	return 0;
}
