/* What a pod hands its plugins besides the config: CNI_ARGS, and the
 * runtimeConfig capability arguments (portMappings, bandwidth from the
 * Kubernetes annotations, dns, ipRanges). */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "network/network.h"

/* Bandwidth outside [1 kbit/s, 1 Pbit/s] is surely a mistake; Kubernetes
 * draws the same line. */
#define BANDWIDTH_MIN 1000LL
#define BANDWIDTH_MAX 1000000000000000LL
/* Burst for a rate-only limit: large, so the rate alone shapes traffic;
 * the bandwidth plugin requires one and caps it below 4 GB. */
#define BANDWIDTH_BURST 2147483647LL

struct suffix {
	const char *s;
	long double factor;
};

static const struct suffix suffixes[] = {
    {"Ki", 1024.0L},
    {"Mi", 1024.0L * 1024},
    {"Gi", 1024.0L * 1024 * 1024},
    {"Ti", 1024.0L * 1024 * 1024 * 1024},
    {"Pi", 1024.0L * 1024 * 1024 * 1024 * 1024},
    {"Ei", 1024.0L * 1024 * 1024 * 1024 * 1024 * 1024},
    {"n", 1e-9L},
    {"u", 1e-6L},
    {"m", 1e-3L},
    {"", 1.0L},
    {"k", 1e3L},
    {"M", 1e6L},
    {"G", 1e9L},
    {"T", 1e12L},
    {"P", 1e15L},
    {"E", 1e18L},
};

/* "e3", "E-2", ... (an "E" alone is the exa suffix). */
static bool parse_exponent(const char *p, long *ret)
{
	if (*p != 'e' && *p != 'E')
		return false;
	const char *q = p + 1;
	if (*q == '+' || *q == '-')
		q++;
	if (!*q || strspn(q, "0123456789") != strlen(q) || strlen(q) > 3)
		return false;
	*ret = strtol(p + 1, NULL, 10);
	return true;
}

int net_quantity_parse(const char *s, long long *ret, struct husk_error *err)
{
	if (isempty(s) || strlen(s) > 64)
		return husk_error_set(err, EINVAL, "'%s' is not a quantity", s ? s : "");
	const char *p = s;
	if (*p == '+')
		p++;
	const char *num = p;
	size_t digits = 0;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9')
			p++, digits++;
	}
	if (digits == 0)
		return husk_error_set(err, EINVAL, "'%s' is not a quantity", s);
	_cleanup_free_ char *mant = xstrndup(num, (size_t)(p - num));
	long double v = strtold(mant, NULL);
	long double factor = -1;
	long e;
	if (parse_exponent(p, &e)) {
		if (e < -18 || e > 18)
			return husk_error_set(err, EINVAL, "'%s': exponent out of range", s);
		factor = 1.0L;
		for (long i = 0; i < (e < 0 ? -e : e); i++)
			factor = e < 0 ? factor / 10 : factor * 10;
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++)
			if (streq(p, suffixes[i].s))
				factor = suffixes[i].factor;
	}
	if (factor < 0)
		return husk_error_set(err, EINVAL, "'%s': unknown suffix '%s'", s, p);
	long double total = v * factor;
	if (total > (long double)(LLONG_MAX / 2))
		return husk_error_set(err, EINVAL, "'%s' is too large", s);
	/* Round fractions up, ignoring the float noise of the factor. */
	long long whole = (long long)total;
	if ((long double)whole < total - 1e-6L)
		whole++;
	*ret = whole;
	return 0;
}

static int check_cni_arg(const char *key, const char *v, struct husk_error *err)
{
	if (v && strpbrk(v, ";="))
		return husk_error_set(err, EINVAL,
				      "%s '%s': ';' and '=' cannot be passed in CNI_ARGS", key, v);
	return 0;
}

int net_cni_args(const struct net_pod *pod, char **ret, struct husk_error *err)
{
	if (check_cni_arg("pod namespace", pod->namespace, err) < 0 ||
	    check_cni_arg("pod name", pod->name, err) < 0 ||
	    check_cni_arg("pod uid", pod->uid, err) < 0 ||
	    check_cni_arg("pod id", pod->id, err) < 0)
		return -err->code;
	*ret = xasprintf("IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;"
			 "K8S_POD_INFRA_CONTAINER_ID=%s;K8S_POD_UID=%s",
			 pod->namespace ? pod->namespace : "", pod->name ? pod->name : "",
			 pod->id ? pod->id : "", pod->uid ? pod->uid : "");
	return 0;
}

static bool valid_ip(const char *s)
{
	unsigned char buf[16];
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int gen_ports(yajl_gen g, const struct net_pod *pod, struct husk_error *err)
{
	if (pod->n_ports > NET_MAX_PORTS)
		return husk_error_set(err, EINVAL, "more than %d port mappings", NET_MAX_PORTS);
	size_t mapped = 0;
	for (size_t i = 0; i < pod->n_ports; i++)
		mapped += pod->ports[i].host_port > 0;
	if (!mapped)
		return 0;
	json_key(g, "portMappings");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < pod->n_ports; i++) {
		const struct net_port_mapping *m = &pod->ports[i];
		if (m->host_port <= 0)
			continue;
		const char *proto = isempty(m->protocol) ? "tcp" : m->protocol;
		const char *lower = NULL;
		static const char *const protos[] = {"tcp", "udp", "sctp"};
		for (size_t k = 0; k < ARRAY_SIZE(protos); k++)
			if (strcasecmp(proto, protos[k]) == 0)
				lower = protos[k];
		if (!lower)
			return husk_error_set(err, EINVAL,
					      "port mapping %zu: protocol '%s' is not "
					      "TCP, UDP or SCTP",
					      i, proto);
		if (m->host_port > 65535 || m->container_port <= 0 || m->container_port > 65535)
			return husk_error_set(err, EINVAL,
					      "port mapping %zu: ports %d:%d are out of range", i,
					      m->host_port, m->container_port);
		if (!isempty(m->host_ip) && !valid_ip(m->host_ip))
			return husk_error_set(err, EINVAL,
					      "port mapping %zu: host IP '%s' is not an address", i,
					      m->host_ip);
		yajl_gen_map_open(g);
		json_kv_int(g, "hostPort", m->host_port);
		json_kv_int(g, "containerPort", m->container_port);
		json_kv_str(g, "protocol", lower);
		if (!isempty(m->host_ip))
			json_kv_str(g, "hostIP", m->host_ip);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	return 0;
}

static int bandwidth(const char *annotation, const char *value, long long *ret,
		     struct husk_error *err)
{
	if (!value)
		return 0;
	long long v;
	if (net_quantity_parse(value, &v, err) < 0)
		return husk_error_prefix(err, "annotation '%s'", annotation);
	if (v < BANDWIDTH_MIN || v > BANDWIDTH_MAX)
		return husk_error_set(err, EINVAL,
				      "annotation '%s': '%s' is outside 1k to 1P bits per second",
				      annotation, value);
	*ret = v;
	return 0;
}

static void gen_strv(yajl_gen g, const char *key, char *const *v)
{
	json_key(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; v && v[i]; i++)
		json_str(g, v[i]);
	yajl_gen_array_close(g);
}

int net_runtime_config(const struct net_pod *pod, char **ret_json, struct husk_error *err)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	if (gen_ports(g, pod, err) < 0)
		return -err->code;

	long long in = 0, out = 0;
	if (bandwidth("kubernetes.io/ingress-bandwidth", pod->ingress_bandwidth, &in, err) < 0 ||
	    bandwidth("kubernetes.io/egress-bandwidth", pod->egress_bandwidth, &out, err) < 0)
		return -err->code;
	if (in || out) {
		json_key(g, "bandwidth");
		yajl_gen_map_open(g);
		if (in) {
			json_kv_int(g, "ingressRate", in);
			json_kv_int(g, "ingressBurst", BANDWIDTH_BURST);
		}
		if (out) {
			json_kv_int(g, "egressRate", out);
			json_kv_int(g, "egressBurst", BANDWIDTH_BURST);
		}
		yajl_gen_map_close(g);
	}

	bool dns = (pod->dns_servers && pod->dns_servers[0]) ||
		   (pod->dns_searches && pod->dns_searches[0]) ||
		   (pod->dns_options && pod->dns_options[0]);
	if (dns) {
		json_key(g, "dns");
		yajl_gen_map_open(g);
		gen_strv(g, "servers", pod->dns_servers);
		gen_strv(g, "searches", pod->dns_searches);
		gen_strv(g, "options", pod->dns_options);
		yajl_gen_map_close(g);
	}

	if (!isempty(pod->pod_cidr)) {
		json_key(g, "ipRanges");
		yajl_gen_array_open(g);
		yajl_gen_array_open(g);
		yajl_gen_map_open(g);
		json_kv_str(g, "subnet", pod->pod_cidr);
		yajl_gen_map_close(g);
		yajl_gen_array_close(g);
		yajl_gen_array_close(g);
	}
	yajl_gen_map_close(g);
	*ret_json = json_gen_steal(g);
	return 0;
}
