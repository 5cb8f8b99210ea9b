/* CNI library: versions, results of every supported version and their
 * conversion, error documents, config parsing and discovery, quantities and
 * capability arguments, running plugins (fake ones written as scripts) with
 * errors, timeouts and bounds, and the manager's ADD/DEL/CHECK/STATUS/GC
 * over a chain, including a restart. No root needed. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>

#include "common/json.h"
#include "network/network.h"
#include "unit.h"

#define ASSERT_OK(expr, err)                                                \
	do {                                                                \
		int _r = (expr);                                            \
		if (_r < 0)                                                 \
			printf("\n    %s: %s", #expr, husk_error_msg(err)); \
		CU_ASSERT_EQUAL(_r, 0);                                     \
	} while (0)

static bool contains(const char *s, const char *sub)
{
	return s && sub && strstr(s, sub);
}

/* ---- versions ---- */

static void test_versions(void)
{
	CU_ASSERT_EQUAL(net_version_num("1.0.0"), 10000);
	CU_ASSERT_EQUAL(net_version_num("0.3.1"), 301);
	CU_ASSERT_EQUAL(net_version_num("1.1"), 10100);
	CU_ASSERT_EQUAL(net_version_num(""), -1);
	CU_ASSERT_EQUAL(net_version_num("1"), -1);
	CU_ASSERT_EQUAL(net_version_num("1.x.0"), -1);
	CU_ASSERT_EQUAL(net_version_num("1.0.0.0"), -1);
	CU_ASSERT_EQUAL(net_version_num("1.0.0-rc1"), -1);
	CU_ASSERT(net_version_supported("0.4.0"));
	CU_ASSERT(net_version_supported("1.1.0"));
	CU_ASSERT(net_version_supported("0.1.0"));
	CU_ASSERT_FALSE(net_version_supported("2.0.0"));
	CU_ASSERT_FALSE(net_version_supported("0.5.0"));
	CU_ASSERT_FALSE(net_version_supported(NULL));
}

/* ---- results ---- */

static struct net_result *parse_ok(const char *json)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_result *r = NULL;
	ASSERT_OK(net_result_parse(json, strlen(json), &r, &err), &err);
	husk_error_clear(&err);
	return r;
}

static int parse_fail(const char *json, const char *want_msg)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_result *r = NULL;
	int rc = net_result_parse(json, strlen(json), &r, &err);
	CU_ASSERT(rc < 0);
	CU_ASSERT_PTR_NULL(r);
	if (want_msg && !contains(err.msg, want_msg))
		printf("\n    message '%s' lacks '%s'", husk_error_msg(&err), want_msg);
	CU_ASSERT(!want_msg || contains(err.msg, want_msg));
	husk_error_clear(&err);
	net_result_free(r);
	return rc;
}

static void test_result_legacy(void)
{
	/* 0.2.0 and 0.1.0 (no cniVersion at all means 0.1.0) */
	const char *v02 =
	    "{\"cniVersion\":\"0.2.0\",\"ip4\":{\"ip\":\"10.1.0.5/16\","
	    "\"gateway\":\"10.1.0.1\",\"routes\":[{\"dst\":\"0.0.0.0/0\"}]},"
	    "\"ip6\":{\"ip\":\"fd00::5/64\"},\"dns\":{\"nameservers\":[\"10.1.0.1\"]}}";
	struct net_result *r = parse_ok(v02);
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_STRING_EQUAL(r->cni_version, "0.2.0");
	CU_ASSERT_EQUAL_FATAL(r->n_ips, 2);
	CU_ASSERT_EQUAL(r->ips[0].family, 4);
	CU_ASSERT_STRING_EQUAL(r->ips[0].address, "10.1.0.5/16");
	CU_ASSERT_STRING_EQUAL(r->ips[0].gateway, "10.1.0.1");
	CU_ASSERT_EQUAL(r->ips[1].family, 6);
	CU_ASSERT_EQUAL(r->n_routes, 1);
	CU_ASSERT_STRING_EQUAL(r->dns.nameservers[0], "10.1.0.1");
	char **ips = net_result_pod_ips(r, "eth0");
	CU_ASSERT_EQUAL_FATAL(strv_length(ips), 2);
	CU_ASSERT_STRING_EQUAL(ips[0], "10.1.0.5");
	CU_ASSERT_STRING_EQUAL(ips[1], "fd00::5");
	strv_free(ips);
	/* converted up for a chain speaking 0.4.0 */
	_cleanup_free_ char *up = net_result_to_json(r, "0.4.0");
	CU_ASSERT(contains(up, "\"version\":\"4\""));
	CU_ASSERT(contains(up, "\"cniVersion\":\"0.4.0\""));
	net_result_free(r);

	r = parse_ok("{\"ip4\":{\"ip\":\"192.168.1.2/24\"}}");
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_STRING_EQUAL(r->cni_version, "0.1.0");
	CU_ASSERT_EQUAL(r->n_ips, 1);
	net_result_free(r);
}

static const char *v04 =
    "{\"cniVersion\":\"0.4.0\",\"interfaces\":[{\"name\":\"cni0\",\"mac\":\"aa:bb:cc:dd:ee:01\"},"
    "{\"name\":\"veth1\",\"mac\":\"aa:bb:cc:dd:ee:02\"},"
    "{\"name\":\"eth0\",\"mac\":\"aa:bb:cc:dd:ee:03\",\"sandbox\":\"/run/netns/x\"}],"
    "\"ips\":[{\"version\":\"6\",\"address\":\"fd00:1::7/64\",\"interface\":2},"
    "{\"version\":\"4\",\"address\":\"10.244.0.7/24\",\"gateway\":\"10.244.0.1\",\"interface\":2},"
    "{\"version\":\"4\",\"address\":\"10.244.0.1/24\",\"interface\":0}],"
    "\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.244.0.1\"}],"
    "\"dns\":{\"nameservers\":[\"10.96.0.10\"],\"domain\":\"cluster.local\","
    "\"search\":[\"svc.cluster.local\"],\"options\":[\"ndots:5\"]}}";

static void test_result_04_and_03(void)
{
	struct net_result *r = parse_ok(v04);
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_EQUAL(r->n_interfaces, 3);
	CU_ASSERT_STRING_EQUAL(r->interfaces[2].sandbox, "/run/netns/x");
	CU_ASSERT_PTR_NULL(r->interfaces[0].sandbox);
	CU_ASSERT_EQUAL(r->n_ips, 3);
	CU_ASSERT_EQUAL(r->ips[1].interface, 2);
	CU_ASSERT_STRING_EQUAL(r->dns.domain, "cluster.local");
	CU_ASSERT_STRING_EQUAL(r->dns.options[0], "ndots:5");
	/* IPv4 first, the bridge's own address (host side) left out */
	char **ips = net_result_pod_ips(r, "eth0");
	CU_ASSERT_EQUAL_FATAL(strv_length(ips), 2);
	CU_ASSERT_STRING_EQUAL(ips[0], "10.244.0.7");
	CU_ASSERT_STRING_EQUAL(ips[1], "fd00:1::7");
	strv_free(ips);
	/* 1.0.0 has no "version" in ips */
	_cleanup_free_ char *j = net_result_to_json(r, "1.0.0");
	CU_ASSERT_FALSE(contains(j, "\"version\""));
	CU_ASSERT(contains(j, "\"interface\":2"));
	struct net_result *back = parse_ok(j);
	CU_ASSERT_FATAL(back != NULL);
	CU_ASSERT_EQUAL(back->n_ips, 3);
	CU_ASSERT_STRING_EQUAL(back->ips[1].gateway, "10.244.0.1");
	net_result_free(back);
	net_result_free(r);

	/* 0.3.0 and 0.3.1 have the same shape */
	r = parse_ok("{\"cniVersion\":\"0.3.1\",\"ips\":[{\"version\":\"4\",\"address\":"
		     "\"10.0.0.2/8\"}]}");
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_EQUAL(r->ips[0].interface, -1);
	net_result_free(r);
	r = parse_ok("{\"cniVersion\":\"0.3.0\",\"ips\":[]}");
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_EQUAL(r->n_ips, 0);
	ips = net_result_pod_ips(r, "eth0");
	CU_ASSERT_PTR_NOT_NULL(ips);
	CU_ASSERT_EQUAL(strv_length(ips), 0);
	strv_free(ips);
	net_result_free(r);
	/* 0.4.0 needs "version" and it must match the address */
	parse_fail("{\"cniVersion\":\"0.4.0\",\"ips\":[{\"address\":\"10.0.0.2/8\"}]}",
		   "ips[0].version is missing");
	parse_fail("{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"6\",\"address\":"
		   "\"10.0.0.2/8\"}]}",
		   "does not match");
}

static void test_result_1x(void)
{
	const char *v10 = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\","
			  "\"sandbox\":\"/x\"},{\"name\":\"lo\",\"sandbox\":\"/x\"}],"
			  "\"ips\":[{\"address\":\"127.0.0.1/8\",\"interface\":1},"
			  "{\"address\":\"10.5.0.9/24\",\"interface\":0},"
			  "{\"address\":\"10.5.0.9/24\",\"interface\":0}]}";
	struct net_result *r = parse_ok(v10);
	CU_ASSERT_FATAL(r != NULL);
	char **ips = net_result_pod_ips(r, "eth0");
	CU_ASSERT_EQUAL_FATAL(strv_length(ips), 1); /* deduplicated, loopback skipped */
	CU_ASSERT_STRING_EQUAL(ips[0], "10.5.0.9");
	strv_free(ips);
	/* no eth0: any sandbox address that is not loopback */
	ips = net_result_pod_ips(r, "net1");
	CU_ASSERT_EQUAL_FATAL(strv_length(ips), 1);
	CU_ASSERT_STRING_EQUAL(ips[0], "10.5.0.9");
	strv_free(ips);
	_cleanup_free_ char *down = net_result_to_json(r, "0.3.1");
	CU_ASSERT(contains(down, "\"version\":\"4\""));
	net_result_free(r);

	const char *v11 =
	    "{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"eth0\","
	    "\"sandbox\":\"/x\",\"mtu\":1450,\"socketPath\":\"/s\",\"pciID\":\"0000:01\"}],"
	    "\"ips\":[{\"address\":\"fd00::3/64\",\"interface\":0}],"
	    "\"routes\":[{\"dst\":\"::/0\",\"gw\":\"fd00::1\",\"mtu\":1400,\"advmss\":1300,"
	    "\"priority\":5,\"table\":100,\"scope\":0}]}";
	r = parse_ok(v11);
	CU_ASSERT_FATAL(r != NULL);
	CU_ASSERT_EQUAL(r->interfaces[0].mtu, 1450);
	CU_ASSERT_STRING_EQUAL(r->interfaces[0].pci_id, "0000:01");
	CU_ASSERT_EQUAL(r->routes[0].table, 100);
	CU_ASSERT_EQUAL(r->routes[0].scope, 0);
	CU_ASSERT_EQUAL(r->ips[0].family, 6);
	_cleanup_free_ char *same = net_result_to_json(r, "1.1.0");
	CU_ASSERT(contains(same, "\"advmss\":1300"));
	CU_ASSERT(contains(same, "\"scope\":0"));
	CU_ASSERT(contains(same, "\"socketPath\":\"/s\""));
	_cleanup_free_ char *older = net_result_to_json(r, "1.0.0");
	CU_ASSERT_FALSE(contains(older, "advmss"));
	CU_ASSERT_FALSE(contains(older, "mtu"));
	net_result_free(r);
}

static void test_result_bad(void)
{
	CU_ASSERT_EQUAL(parse_fail("{\"cniVersion\":\"9.0.0\"}", "not supported"), -ENOTSUP);
	parse_fail("[1]", "expected an object");
	parse_fail("{\"cniVersion\":", "parse");
	parse_fail("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.1\"}]}", "CIDR");
	parse_fail("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"nope/8\"}]}", "CIDR");
	parse_fail("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.1/8\","
		   "\"interface\":3}]}",
		   "not an index");
	parse_fail("{\"cniVersion\":\"1.0.0\",\"ips\":{}}", "expected an array");
	parse_fail("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"mac\":\"x\"}]}",
		   "interfaces[0].name");
	parse_fail("{\"cniVersion\":\"1.0.0\",\"routes\":[{\"gw\":\"1.2.3.4\"}]}", "routes[0].dst");
	parse_fail("{\"cniVersion\":\"1.0.0\",\"dns\":{\"nameservers\":[1]}}",
		   "dns.nameservers[0]");
}

/* ---- errors ---- */

static void test_error_json(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	unsigned code = 0;
	char *msg = NULL;
	const char *e1 = "{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"invalid config\","
			 "\"details\":\"subnet missing\"}";
	ASSERT_OK(net_error_parse(e1, strlen(e1), &code, &msg, &err), &err);
	CU_ASSERT_EQUAL(code, 7);
	CU_ASSERT_STRING_EQUAL(msg, "invalid config: subnet missing");
	free(msg);
	const char *e2 = "{\"code\":11,\"msg\":\"busy\"}";
	ASSERT_OK(net_error_parse(e2, strlen(e2), &code, &msg, &err), &err);
	CU_ASSERT_EQUAL(code, 11);
	CU_ASSERT_STRING_EQUAL(msg, "busy");
	free(msg);
	const char *e3 = "{\"code\":100,\"details\":\"only details\"}";
	ASSERT_OK(net_error_parse(e3, strlen(e3), &code, &msg, &err), &err);
	CU_ASSERT_STRING_EQUAL(msg, "only details");
	free(msg);
	msg = NULL;
	const char *bad[] = {"{\"cniVersion\":\"1.0.0\",\"ips\":[]}",
			     "{\"code\":\"7\",\"msg\":\"x\"}", "{\"code\":7}", "not json"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CU_ASSERT(net_error_parse(bad[i], strlen(bad[i]), &code, &msg, &err) < 0);
		CU_ASSERT_PTR_NULL(msg);
	}
	husk_error_clear(&err);
}

/* ---- configuration ---- */

static struct net_conflist *conf_ok(const char *text)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_conflist *c = NULL;
	ASSERT_OK(net_conflist_parse(text, strlen(text), "test", &c, &err), &err);
	husk_error_clear(&err);
	return c;
}

static void conf_fail(const char *text, const char *want)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_conflist *c = NULL;
	CU_ASSERT(net_conflist_parse(text, strlen(text), "test", &c, &err) == -EINVAL);
	CU_ASSERT_PTR_NULL(c);
	if (!contains(err.msg, want))
		printf("\n    message '%s' lacks '%s'", husk_error_msg(&err), want);
	CU_ASSERT(contains(err.msg, want));
	husk_error_clear(&err);
}

static void test_config_parse(void)
{
	struct net_conflist *c =
	    conf_ok("{\"cniVersion\":\"1.0.0\",\"name\":\"k8s-pod-network\",\"disableCheck\":true,"
		    "\"plugins\":[{\"type\":\"bridge\",\"bridge\":\"cni0\"},"
		    "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}}]}");
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_STRING_EQUAL(c->name, "k8s-pod-network");
	CU_ASSERT_STRING_EQUAL(c->cni_version, "1.0.0");
	CU_ASSERT(c->disable_check);
	CU_ASSERT_FALSE(c->disable_gc);
	CU_ASSERT_EQUAL_FATAL(c->n_plugins, 2);
	CU_ASSERT_STRING_EQUAL(c->plugins[1].type, "portmap");
	CU_ASSERT(YAJL_IS_TRUE(json_get(c->plugins[1].capabilities, "portMappings")));
	CU_ASSERT_PTR_NULL(c->plugins[0].capabilities);
	net_conflist_free(c);

	/* a single plugin config is a list of one */
	c = conf_ok("{\"cniVersion\":\"0.3.1\",\"name\":\"net\",\"type\":\"bridge\"}");
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_EQUAL(c->n_plugins, 1);
	CU_ASSERT_STRING_EQUAL(c->plugins[0].type, "bridge");
	net_conflist_free(c);

	/* cniVersions: the highest husk speaks wins over cniVersion */
	c = conf_ok("{\"cniVersion\":\"1.0.0\",\"cniVersions\":[\"0.4.0\",\"1.1.0\",\"7.0.0\"],"
		    "\"name\":\"n\",\"disableGC\":true,\"plugins\":[{\"type\":\"x\"}]}");
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_STRING_EQUAL(c->cni_version, "1.1.0");
	CU_ASSERT(c->disable_gc);
	net_conflist_free(c);
	c = conf_ok("{\"cniVersion\":\"0.4.0\",\"cniVersions\":[\"9.0.0\"],\"name\":\"n\","
		    "\"plugins\":[{\"type\":\"x\"}]}");
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_STRING_EQUAL(c->cni_version, "0.4.0");
	net_conflist_free(c);

	conf_fail("{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"x\"}]}", "no network name");
	conf_fail("{\"cniVersion\":\"1.0.0\",\"name\":\"-bad\",\"plugins\":[{\"type\":\"x\"}]}",
		  "not valid");
	conf_fail("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[]}", "empty plugin list");
	conf_fail("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"bridge\":\"x\"}]}",
		  "plugin 0 has no type");
	conf_fail(
	    "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"../../bin/sh\"}]}",
	    "not a file name");
	conf_fail("{\"cniVersion\":\"3.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"x\"}]}",
		  "not supported");
	conf_fail("{\"name\":\"n\",\"plugins\":[{\"type\":\"x\"}]}", "no cniVersion");
	conf_fail("{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"x\"},"
		  "{\"type\":\"y\"}]}",
		  "chaining");
	conf_fail("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"plugins\":[{\"type\":\"x\","
		  "\"capabilities\":[1]}]}",
		  "capabilities");
	conf_fail("{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", "no plugin type");
	conf_fail("[]", "not a JSON object");
	conf_fail("{", "parse");
}

static void test_config_find(void)
{
	char *dir = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_conflist *c = NULL;

	CU_ASSERT_FALSE(net_config_present(dir));
	CU_ASSERT_EQUAL(net_conflist_find(dir, &c, &err), -ENOENT);
	CU_ASSERT(contains(err.msg, "no network config found"));
	_cleanup_free_ char *missing = xasprintf("%s/nope", dir);
	CU_ASSERT_EQUAL(net_conflist_find(missing, &c, &err), -ENOENT);

	unit_write(dir, "README", "not a config");
	unit_write(dir, ".hidden.conflist", "{");
	CU_ASSERT_FALSE(net_config_present(dir));

	unit_write(dir, "10-broken.conf", "{\"cniVersion\":\"1.0.0\",\"name\":\"broken\"}");
	CU_ASSERT(net_config_present(dir));
	CU_ASSERT_EQUAL(net_conflist_find(dir, &c, &err), -EINVAL);
	CU_ASSERT(contains(err.msg, "10-broken.conf"));
	CU_ASSERT(contains(err.msg, "no plugin type"));

	/* the first usable one by name wins, whatever its extension */
	unit_write(dir, "30-c.json",
		   "{\"cniVersion\":\"1.0.0\",\"name\":\"c\",\"plugins\":[{\"type\":\"x\"}]}");
	unit_write(dir, "20-b.conflist",
		   "{\"cniVersion\":\"1.0.0\",\"name\":\"b\",\"plugins\":[{\"type\":\"x\"}]}");
	unit_write(dir, "15-d.txt",
		   "{\"cniVersion\":\"1.0.0\",\"name\":\"d\",\"plugins\":[{\"type\":\"x\"}]}");
	ASSERT_OK(net_conflist_find(dir, &c, &err), &err);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_STRING_EQUAL(c->name, "b");
	CU_ASSERT(endswith(c->path, "/20-b.conflist"));
	net_conflist_free(c);
	c = NULL;
	char *path = NULL;
	ASSERT_OK(net_find_config(dir, &path, &err), &err);
	CU_ASSERT(endswith(path, "/20-b.conflist"));
	free(path);

	unit_write(dir, "05-a.conf", "{\"cniVersion\":\"0.4.0\",\"name\":\"a\",\"type\":\"y\"}");
	ASSERT_OK(net_conflist_find(dir, &c, &err), &err);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_STRING_EQUAL(c->name, "a");
	net_conflist_free(c);

	/* plugin lookup: first dir holding an executable */
	_cleanup_free_ char *d1 = xasprintf("%s/bin1", dir), *d2 = xasprintf("%s/bin2", dir);
	mkdir(d1, 0755);
	mkdir(d2, 0755);
	unit_write(d1, "plug", "");
	unit_write(d2, "plug", "#!/bin/sh\n");
	_cleanup_free_ char *p2 = xasprintf("%s/plug", d2);
	chmod(p2, 0755);
	char *const dirs[] = {d1, d2, NULL};
	char *found = NULL;
	ASSERT_OK(net_plugin_find(dirs, "plug", &found, &err), &err);
	CU_ASSERT_STRING_EQUAL(found, p2);
	free(found);
	CU_ASSERT_EQUAL(net_plugin_find(dirs, "flannel", &found, &err), -ENOENT);
	CU_ASSERT(contains(err.msg, "'flannel' not found in"));
	CU_ASSERT(contains(err.msg, d1));
	CU_ASSERT_EQUAL(net_plugin_find(dirs, "../bin2/plug", &found, &err), -EINVAL);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* ---- capability arguments ---- */

static void test_quantity(void)
{
	struct {
		const char *s;
		long long v;
	} ok[] = {
	    {"10M", 10000000},
	    {"1Gi", 1LL << 30},
	    {"1.5k", 1500},
	    {"100", 100},
	    {"1e6", 1000000},
	    {"2E3", 2000},
	    {"500m", 1},
	    {"1P", 1000000000000000LL},
	    {"+3Ki", 3072},
	    {"0.5Mi", 524288},
	    {"1E", 1000000000000000000LL},
	    {"250000000n", 1},
	};
	struct husk_error err = HUSK_ERROR_INIT;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		long long v = -1;
		ASSERT_OK(net_quantity_parse(ok[i].s, &v, &err), &err);
		if (v != ok[i].v)
			printf("\n    %s: %lld != %lld", ok[i].s, v, ok[i].v);
		CU_ASSERT_EQUAL(v, ok[i].v);
	}
	const char *bad[] = {"", "M", "10X", "-5", "1.2.3", "10 M", "1e99", "1Ki2", ".", "1e"};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		long long v = -1;
		CU_ASSERT_EQUAL(net_quantity_parse(bad[i], &v, &err), -EINVAL);
		CU_ASSERT_EQUAL(v, -1);
	}
	husk_error_clear(&err);
}

static void test_runtime_config(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_port_mapping ports[] = {
	    {"TCP", 80, 8080, "127.0.0.1"},
	    {"UDP", 53, 0, NULL}, /* no host port: not mapped */
	    {NULL, 443, 8443, ""},
	    {"sctp", 9, 9999, "::1"},
	};
	char *const servers[] = {"10.96.0.10", NULL}, *const searches[] = {"svc.local", NULL};
	struct net_pod pod = {
	    .id = "abc",
	    .name = "web",
	    .namespace = "default",
	    .uid = "u-1",
	    .ports = ports,
	    .n_ports = ARRAY_SIZE(ports),
	    .ingress_bandwidth = "10M",
	    .egress_bandwidth = "1Gi",
	    .dns_servers = servers,
	    .dns_searches = searches,
	    .pod_cidr = "10.244.3.0/24",
	};
	char *json = NULL;
	ASSERT_OK(net_runtime_config(&pod, &json, &err), &err);
	_cleanup_json_ yajl_val t = NULL;
	ASSERT_OK(json_parse(json, strlen(json), "rc", &t, &err), &err);
	yajl_val pm = json_get(t, "portMappings");
	CU_ASSERT_FATAL(YAJL_IS_ARRAY(pm));
	CU_ASSERT_EQUAL_FATAL(pm->u.array.len, 3);
	CU_ASSERT_STRING_EQUAL(json_get_string(pm->u.array.values[0], "protocol"), "tcp");
	CU_ASSERT_EQUAL(json_get_int(pm->u.array.values[0], "hostPort", 0), 8080);
	CU_ASSERT_EQUAL(json_get_int(pm->u.array.values[0], "containerPort", 0), 80);
	CU_ASSERT_STRING_EQUAL(json_get_string(pm->u.array.values[0], "hostIP"), "127.0.0.1");
	CU_ASSERT_STRING_EQUAL(json_get_string(pm->u.array.values[1], "protocol"), "tcp");
	CU_ASSERT_PTR_NULL(json_get(pm->u.array.values[1], "hostIP"));
	CU_ASSERT_STRING_EQUAL(json_get_string(pm->u.array.values[2], "protocol"), "sctp");
	yajl_val bw = json_get(t, "bandwidth");
	CU_ASSERT_EQUAL(json_get_int(bw, "ingressRate", 0), 10000000);
	CU_ASSERT_EQUAL(json_get_int(bw, "egressRate", 0), 1LL << 30);
	CU_ASSERT(json_get_int(bw, "ingressBurst", 0) > 0);
	yajl_val dns = json_get(t, "dns");
	CU_ASSERT_STRING_EQUAL(json_get(dns, "servers")->u.array.values[0]->u.string, "10.96.0.10");
	CU_ASSERT_EQUAL(json_get(dns, "options")->u.array.len, 0);
	yajl_val r = json_get(t, "ipRanges");
	CU_ASSERT_STRING_EQUAL(json_get_string(r->u.array.values[0]->u.array.values[0], "subnet"),
			       "10.244.3.0/24");
	free(json);

	/* nothing to say: an empty object */
	struct net_pod bare = {.id = "x"};
	ASSERT_OK(net_runtime_config(&bare, &json, &err), &err);
	CU_ASSERT_STRING_EQUAL(json, "{}");
	free(json);

	struct net_port_mapping badproto[] = {{"ICMP", 1, 2, NULL}};
	bare.ports = badproto;
	bare.n_ports = 1;
	CU_ASSERT_EQUAL(net_runtime_config(&bare, &json, &err), -EINVAL);
	CU_ASSERT(contains(err.msg, "protocol 'ICMP'"));
	struct net_port_mapping badport[] = {{"TCP", 0, 80, NULL}};
	bare.ports = badport;
	CU_ASSERT_EQUAL(net_runtime_config(&bare, &json, &err), -EINVAL);
	struct net_port_mapping badip[] = {{"TCP", 80, 80, "localhost"}};
	bare.ports = badip;
	CU_ASSERT_EQUAL(net_runtime_config(&bare, &json, &err), -EINVAL);
	CU_ASSERT(contains(err.msg, "'localhost'"));
	bare.n_ports = 0;
	bare.ingress_bandwidth = "lots";
	CU_ASSERT_EQUAL(net_runtime_config(&bare, &json, &err), -EINVAL);
	CU_ASSERT(contains(err.msg, "kubernetes.io/ingress-bandwidth"));
	bare.ingress_bandwidth = "10";
	CU_ASSERT_EQUAL(net_runtime_config(&bare, &json, &err), -EINVAL);
	CU_ASSERT(contains(err.msg, "outside"));

	char *args = NULL;
	ASSERT_OK(net_cni_args(&pod, &args, &err), &err);
	CU_ASSERT_STRING_EQUAL(args, "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;"
				     "K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1");
	free(args);
	pod.name = "a;b";
	CU_ASSERT_EQUAL(net_cni_args(&pod, &args, &err), -EINVAL);
	husk_error_clear(&err);
}

/* ---- running plugins ---- */

static char *tmp;     /* per-run scratch dir */
static char *bindir;  /* fake plugins */
static char *confdir; /* CNI configs */
static char *cachedir;

static void write_script(const char *name, const char *body)
{
	_cleanup_free_ char *text = xasprintf("#!/bin/sh\n%s", body);
	unit_write(bindir, name, text);
	_cleanup_free_ char *p = xasprintf("%s/%s", bindir, name);
	chmod(p, 0755);
}

/* A fake plugin: records its stdin and environment per command in
 * $HUSK_TEST_DIR/<plugin>.<command>.{in,env}, appends "<COMMAND> <plugin>"
 * to calls.log, fails when $HUSK_TEST_DIR/fail.<plugin>.<COMMAND> exists
 * (printing that file as its error), and on ADD prints result. */
static void write_fake(const char *name, const char *result)
{
	_cleanup_free_ char *body = xasprintf(
	    "d=$HUSK_TEST_DIR\n"
	    "cat > $d/%1$s.$CNI_COMMAND.in\n"
	    "env | grep '^CNI_' | sort > $d/%1$s.$CNI_COMMAND.env\n"
	    "echo \"$CNI_COMMAND %1$s\" >> $d/calls.log\n"
	    "if [ -e $d/fail.%1$s.$CNI_COMMAND ]; then cat $d/fail.%1$s.$CNI_COMMAND; exit 1; fi\n"
	    "if [ \"$CNI_COMMAND\" = ADD ]; then cat <<'EOF'\n%2$s\nEOF\nfi\n"
	    "exit 0\n",
	    name, result);
	write_script(name, body);
}

static char *read_text(const char *name)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", tmp, name);
	char *buf = NULL;
	size_t len;
	if (fs_read_file(p, 1 << 20, &buf, &len, NULL) < 0)
		return NULL;
	return buf;
}

static yajl_val read_json(const char *name)
{
	_cleanup_free_ char *text = read_text(name);
	yajl_val t = NULL;
	if (text)
		json_parse(text, strlen(text), name, &t, NULL);
	return t;
}

static void clear_calls(void)
{
	_cleanup_free_ char *p = xasprintf("%s/calls.log", tmp);
	unlink(p);
}

static void test_exec(void)
{
	char *const dirs[] = {bindir, NULL};
	struct husk_error err = HUSK_ERROR_INIT;
	char *out = NULL;
	unsigned code = 99;
	_cleanup_free_ char *p = xasprintf("%s/echo", bindir);
	write_script("echo", "cat\necho \"$CNI_COMMAND|$CNI_CONTAINERID|$CNI_NETNS|$CNI_IFNAME|"
			     "$CNI_ARGS|$CNI_PATH\" >&2\nexit 0\n");
	struct net_exec x = {.command = "ADD",
			     .container_id = "c1",
			     .netns = "/proc/self/ns/net",
			     .ifname = "eth0",
			     .args = "IgnoreUnknown=1",
			     .bin_dirs = dirs};
	ASSERT_OK(net_plugin_exec(p, &x, "{\"a\":1}", 7, &out, &code, &err), &err);
	CU_ASSERT_STRING_EQUAL(out, "{\"a\":1}");
	CU_ASSERT_EQUAL(code, 0);
	free(out);
	out = NULL;

	/* a large config on stdin and large output both get through */
	size_t big = 300000;
	_cleanup_free_ char *in = xmalloc(big);
	memset(in, 'x', big);
	ASSERT_OK(net_plugin_exec(p, &x, in, big, &out, NULL, &err), &err);
	CU_ASSERT_EQUAL(out ? strlen(out) : 0, big);
	free(out);
	out = NULL;

	/* CNI error JSON on stdout: its message, its code */
	_cleanup_free_ char *perr = xasprintf("%s/err", bindir);
	write_script("err", "echo '{\"cniVersion\":\"1.0.0\",\"code\":7,\"msg\":\"no subnet\","
			    "\"details\":\"ipam.subnet is required\"}'\necho noise >&2\nexit 1\n");
	CU_ASSERT_EQUAL(net_plugin_exec(perr, &x, "{}", 2, &out, &code, &err), -EIO);
	CU_ASSERT_EQUAL(code, 7);
	CU_ASSERT_STRING_EQUAL(err.msg, "CNI plugin 'err' ADD failed: no subnet: "
					"ipam.subnet is required (code 7)");
	CU_ASSERT_PTR_NULL(out);
	write_script("again", "echo '{\"code\":11,\"msg\":\"try later\"}'\nexit 1\n");
	_cleanup_free_ char *pa = xasprintf("%s/again", bindir);
	CU_ASSERT_EQUAL(net_plugin_exec(pa, &x, "{}", 2, &out, &code, &err), -EAGAIN);
	CU_ASSERT_EQUAL(code, 11);

	/* no JSON: the last line of stderr and the exit status */
	write_script("crash", "echo starting >&2\necho 'panic: boom' >&2\nexit 3\n");
	_cleanup_free_ char *pc = xasprintf("%s/crash", bindir);
	CU_ASSERT_EQUAL(net_plugin_exec(pc, &x, "{}", 2, &out, &code, &err), -EIO);
	CU_ASSERT_EQUAL(code, 0);
	CU_ASSERT(contains(err.msg, "panic: boom (exit status 3)"));
	write_script("silent", "kill -9 $$\n");
	_cleanup_free_ char *ps = xasprintf("%s/silent", bindir);
	CU_ASSERT_EQUAL(net_plugin_exec(ps, &x, "{}", 2, &out, NULL, &err), -EIO);
	CU_ASSERT(contains(err.msg, "killed by signal 9"));

	/* a hung plugin and the child it started are killed at the deadline */
	_cleanup_free_ char *pidfile = xasprintf("%s/child.pid", tmp);
	_cleanup_free_ char *hang_body = xasprintf("sleep 30 &\necho $! > %s\nsleep 30\n", pidfile);
	write_script("hang", hang_body);
	_cleanup_free_ char *ph = xasprintf("%s/hang", bindir);
	x.timeout_ms = 300;
	long long t0 = now_mono_ns();
	CU_ASSERT_EQUAL(net_plugin_exec(ph, &x, "{}", 2, &out, NULL, &err), -ETIMEDOUT);
	long long ms = (now_mono_ns() - t0) / 1000000;
	if (ms < 300 || ms >= 5000)
		printf("\n    hang took %lld ms", ms);
	CU_ASSERT(ms >= 300 && ms < 5000);
	CU_ASSERT(contains(err.msg, "'hang' ADD: no answer within 300 ms; killed"));
	_cleanup_free_ char *cpid = read_text("child.pid");
	CU_ASSERT_FATAL(cpid != NULL);
	pid_t child = (pid_t)atoi(cpid);
	bool gone = false;
	for (int i = 0; i < 200 && !gone; i++) {
		gone = kill(child, 0) < 0 && errno == ESRCH;
		if (!gone)
			usleep(10000);
	}
	CU_ASSERT(gone);

	/* a cancel kills it (and its child) long before the timeout */
	unlink(pidfile);
	x.timeout_ms = 60000;
	struct husk_cancel c = {false, now_mono_ns() + 500 * 1000000LL};
	x.cancel = &c;
	CU_ASSERT_EQUAL(net_plugin_exec(ph, &x, "{}", 2, &out, NULL, &err), -ECANCELED);
	CU_ASSERT(contains(err.msg, "'hang' ADD: cancelled; killed"));
	x.cancel = NULL;
	_cleanup_free_ char *cpid2 = read_text("child.pid");
	CU_ASSERT_FATAL(cpid2 != NULL);
	child = (pid_t)atoi(cpid2);
	gone = false;
	for (int i = 0; i < 200 && !gone; i++) {
		gone = kill(child, 0) < 0 && errno == ESRCH;
		if (!gone)
			usleep(10000);
	}
	CU_ASSERT(gone);
	x.timeout_ms = 300;

	/* one that closes stdout but keeps running is still timed out */
	write_script("lingers", "exec >&- 2>&-\nsleep 30\n");
	_cleanup_free_ char *pl = xasprintf("%s/lingers", bindir);
	CU_ASSERT_EQUAL(net_plugin_exec(pl, &x, "{}", 2, &out, NULL, &err), -ETIMEDOUT);
	x.timeout_ms = 0;

	/* output beyond the bound */
	write_script("flood", "head -c 3000000 /dev/zero | tr '\\0' x\n");
	_cleanup_free_ char *pf = xasprintf("%s/flood", bindir);
	CU_ASSERT_EQUAL(net_plugin_exec(pf, &x, "{}", 2, &out, NULL, &err), -EFBIG);

	/* environment: CNI_* of this call only, huskd's others kept */
	setenv("CNI_NETNS", "/stale", 1);
	setenv("HUSK_TEST_MARK", "kept", 1);
	write_script("env", "env\n");
	_cleanup_free_ char *pe = xasprintf("%s/env", bindir);
	struct net_exec st = {.command = "STATUS", .bin_dirs = dirs};
	ASSERT_OK(net_plugin_exec(pe, &st, "{}", 2, &out, NULL, &err), &err);
	CU_ASSERT(contains(out, "CNI_COMMAND=STATUS\n"));
	CU_ASSERT(contains(out, "HUSK_TEST_MARK=kept"));
	CU_ASSERT_FALSE(contains(out, "CNI_NETNS"));
	CU_ASSERT_FALSE(contains(out, "CNI_CONTAINERID"));
	CU_ASSERT(contains(out, "PATH="));
	free(out);
	out = NULL;
	unsetenv("CNI_NETNS");

	/* a missing binary */
	_cleanup_free_ char *pm = xasprintf("%s/missing", bindir);
	CU_ASSERT_EQUAL(net_plugin_exec(pm, &x, "{}", 2, &out, NULL, &err), -ENOENT);
	husk_error_clear(&err);
}

/* ---- the manager ---- */

static const char *res_a = "{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"eth0\","
			   "\"sandbox\":\"/ns\"}],\"ips\":[{\"address\":\"10.9.0.5/24\","
			   "\"gateway\":\"10.9.0.1\",\"interface\":0}]}";
/* the second plugin answers in 0.4.0: the chain converts it */
static const char *res_b = "{\"cniVersion\":\"0.4.0\",\"interfaces\":[{\"name\":\"eth0\","
			   "\"sandbox\":\"/ns\"}],\"ips\":[{\"version\":\"4\",\"address\":"
			   "\"10.9.0.5/24\",\"interface\":0},{\"version\":\"6\",\"address\":"
			   "\"fd09::5/64\",\"interface\":0}]}";

static void write_conf(const char *version, const char *extra)
{
	_cleanup_free_ char *text = xasprintf(
	    "{\"cniVersion\":\"%s\",\"name\":\"testnet\",%s\"plugins\":["
	    "{\"type\":\"fakea\",\"ipam\":{\"type\":\"x\"}},"
	    "{\"type\":\"fakeb\",\"capabilities\":{\"portMappings\":true,\"bandwidth\":false},"
	    "\"runtimeConfig\":{\"old\":1}}]}",
	    version, extra);
	unit_write(confdir, "10-test.conflist", text);
}

static struct net_cni *open_cni(void)
{
	char *const dirs[] = {bindir, NULL};
	struct net_options o = {
	    .conf_dir = confdir, .bin_dirs = dirs, .cache_dir = cachedir, .timeout_ms = 5000};
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_cni *n = NULL;
	ASSERT_OK(net_cni_new(&o, &n, &err), &err);
	husk_error_clear(&err);
	return n;
}

static struct net_pod test_pod(const char *id)
{
	static struct net_port_mapping ports[] = {{"TCP", 80, 8080, NULL}};
	return (struct net_pod){.id = id,
				.netns = "/proc/self/ns/net",
				.name = "web",
				.namespace = "ns1",
				.uid = "uid1",
				.ports = ports,
				.n_ports = 1,
				.ingress_bandwidth = "1M"};
}

static void set_fail(const char *plugin, const char *cmd, const char *text)
{
	_cleanup_free_ char *name = xasprintf("fail.%s.%s", plugin, cmd);
	if (text) {
		unit_write(tmp, name, text);
	} else {
		_cleanup_free_ char *p = xasprintf("%s/%s", tmp, name);
		unlink(p);
	}
}

static bool record_exists(const char *id)
{
	_cleanup_free_ char *p = xasprintf("%s/%s.json", cachedir, id);
	return fs_exists(p);
}

static void test_manager_chain(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct net_cni *n = open_cni();
	CU_ASSERT_FATAL(n != NULL);

	/* not configured yet */
	CU_ASSERT_FALSE(net_cni_configured(n));
	CU_ASSERT_EQUAL(net_cni_status(n, NULL, &err), -EAGAIN);
	CU_ASSERT(contains(err.msg, "network not ready: no network config found"));
	struct net_pod pod = test_pod("pod1");
	struct net_result *res = NULL;
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EAGAIN);

	/* a config naming a plugin that is not installed */
	write_conf("1.0.0", "");
	CU_ASSERT(net_cni_configured(n));
	CU_ASSERT_EQUAL(net_cni_status(n, NULL, &err), -EAGAIN);
	CU_ASSERT(contains(err.msg, "'fakea' not found"));
	CU_ASSERT_FALSE(record_exists("pod1"));

	write_fake("fakea", res_a);
	write_fake("fakeb", res_b);
	char *path = NULL;
	ASSERT_OK(net_cni_status(n, &path, &err), &err);
	CU_ASSERT(endswith(path, "10-test.conflist"));
	free(path);

	clear_calls();
	ASSERT_OK(net_cni_setup(n, &pod, &res, &err), &err);
	CU_ASSERT_FATAL(res != NULL);
	CU_ASSERT_STRING_EQUAL(res->cni_version, "1.0.0");
	char **ips = net_result_pod_ips(res, "eth0");
	CU_ASSERT_EQUAL_FATAL(strv_length(ips), 2);
	CU_ASSERT_STRING_EQUAL(ips[0], "10.9.0.5");
	CU_ASSERT_STRING_EQUAL(ips[1], "fd09::5");
	strv_free(ips);
	net_result_free(res);
	res = NULL;
	_cleanup_free_ char *calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "ADD fakea\nADD fakeb\n");
	CU_ASSERT(record_exists("pod1"));

	/* what the plugins saw */
	_cleanup_free_ char *env = read_text("fakea.ADD.env");
	CU_ASSERT(contains(env, "CNI_COMMAND=ADD\n"));
	CU_ASSERT(contains(env, "CNI_CONTAINERID=pod1\n"));
	CU_ASSERT(contains(env, "CNI_IFNAME=eth0\n"));
	CU_ASSERT(contains(env, "CNI_NETNS=/proc/self/ns/net\n"));
	CU_ASSERT(contains(env, "CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web;"
				"K8S_POD_INFRA_CONTAINER_ID=pod1;K8S_POD_UID=uid1\n"));
	CU_ASSERT(contains(env, "CNI_PATH="));
	_cleanup_json_ yajl_val ina = read_json("fakea.ADD.in");
	CU_ASSERT_STRING_EQUAL(json_get_string(ina, "name"), "testnet");
	CU_ASSERT_STRING_EQUAL(json_get_string(ina, "cniVersion"), "1.0.0");
	CU_ASSERT_PTR_NULL(json_get(ina, "prevResult"));
	CU_ASSERT_PTR_NULL(json_get(ina, "runtimeConfig")); /* asked for no capability */
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(ina, "ipam"), "type"), "x");
	_cleanup_json_ yajl_val inb = read_json("fakeb.ADD.in");
	yajl_val prev = json_get(inb, "prevResult");
	CU_ASSERT_STRING_EQUAL(json_get_string(prev, "cniVersion"), "1.0.0");
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(prev, "ips")->u.array.values[0], "address"),
			       "10.9.0.5/24");
	yajl_val rc = json_get(inb, "runtimeConfig");
	CU_ASSERT_PTR_NOT_NULL(json_get(rc, "portMappings"));
	CU_ASSERT_PTR_NULL(json_get(rc, "bandwidth")); /* capability false */
	CU_ASSERT_PTR_NULL(json_get(rc, "old"));       /* replaced, not merged */

	/* a second ADD for the same pod is refused */
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EEXIST);

	/* CHECK in order with the final result as prevResult */
	clear_calls();
	ASSERT_OK(net_cni_check(n, "pod1", &err), &err);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "CHECK fakea\nCHECK fakeb\n");
	_cleanup_json_ yajl_val ckb = read_json("fakeb.CHECK.in");
	CU_ASSERT_EQUAL(json_get(json_get(ckb, "prevResult"), "ips")->u.array.len, 2);
	set_fail("fakeb", "CHECK", "{\"code\":100,\"msg\":\"veth gone\"}");
	CU_ASSERT_EQUAL(net_cni_check(n, "pod1", &err), -EIO);
	CU_ASSERT(contains(err.msg, "veth gone"));
	set_fail("fakeb", "CHECK", NULL);
	CU_ASSERT_EQUAL(net_cni_check(n, "nope", &err), -ENOENT);

	/* the recorded result; the list of attachments */
	ASSERT_OK(net_cni_result(n, "pod1", &res, &err), &err);
	CU_ASSERT_EQUAL(res ? res->n_ips : 0, 2);
	net_result_free(res);
	res = NULL;
	char **ids = NULL;
	ASSERT_OK(net_cni_list(n, &ids, &err), &err);
	CU_ASSERT_EQUAL(strv_length(ids), 1);
	strv_free(ids);

	/* a restart: a new manager, and the config gone from the dir; DEL
	 * still runs with what ADD had, in reverse, with prevResult */
	net_cni_free(n);
	_cleanup_free_ char *conf = xasprintf("%s/10-test.conflist", confdir);
	unlink(conf);
	n = open_cni();
	clear_calls();
	ASSERT_OK(net_cni_teardown(n, "pod1", NULL, &err), &err);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "DEL fakeb\nDEL fakea\n");
	_cleanup_json_ yajl_val delb = read_json("fakeb.DEL.in");
	CU_ASSERT_PTR_NOT_NULL(json_get(delb, "prevResult"));
	CU_ASSERT_PTR_NOT_NULL(json_get(json_get(delb, "runtimeConfig"), "portMappings"));
	_cleanup_free_ char *denv = read_text("fakea.DEL.env");
	CU_ASSERT(contains(denv, "CNI_NETNS=/proc/self/ns/net\n"));
	CU_ASSERT_FALSE(record_exists("pod1"));
	/* idempotent */
	clear_calls();
	ASSERT_OK(net_cni_teardown(n, "pod1", NULL, &err), &err);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_PTR_NULL(calls);
	CU_ASSERT_EQUAL(net_cni_teardown(n, "../x", NULL, &err), -EINVAL);
	net_cni_free(n);
	husk_error_clear(&err);
}

static void test_manager_failures(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	write_conf("0.4.0", "");
	struct net_cni *n = open_cni();
	struct net_pod pod = test_pod("pod2");
	struct net_result *res = NULL;

	/* ADD fails in the second plugin: DEL runs through the whole chain in
	 * reverse and nothing is recorded; the plugin's message comes back */
	set_fail("fakeb", "ADD",
		 "{\"cniVersion\":\"0.4.0\",\"code\":5,\"msg\":\"failed to set up portmap\","
		 "\"details\":\"iptables: No chain\"}");
	clear_calls();
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EIO);
	CU_ASSERT_PTR_NULL(res);
	CU_ASSERT(contains(err.msg, "network 'testnet': CNI plugin 'fakeb' ADD failed: "
				    "failed to set up portmap: iptables: No chain (code 5)"));
	_cleanup_free_ char *calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "ADD fakea\nADD fakeb\nDEL fakeb\nDEL fakea\n");
	CU_ASSERT_FALSE(record_exists("pod2"));

	/* ... and when that DEL fails too, the record stays for later */
	set_fail("fakea", "DEL", "{\"code\":5,\"msg\":\"lease file locked\"}");
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EIO);
	CU_ASSERT(contains(err.msg, "portmap"));
	CU_ASSERT(contains(err.msg, "cleaning up"));
	CU_ASSERT(contains(err.msg, "lease file locked"));
	CU_ASSERT(record_exists("pod2"));
	/* a failing DEL at teardown is an error, every plugin still runs */
	clear_calls();
	CU_ASSERT_EQUAL(net_cni_teardown(n, "pod2", NULL, &err), -EIO);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "DEL fakeb\nDEL fakea\n");
	CU_ASSERT(record_exists("pod2"));
	set_fail("fakea", "DEL", NULL);
	set_fail("fakeb", "ADD", NULL);
	/* incomplete ADD: no result, so DEL carries no prevResult */
	ASSERT_OK(net_cni_teardown(n, "pod2", "/nonexistent/netns", &err), &err);
	_cleanup_json_ yajl_val dela = read_json("fakea.DEL.in");
	CU_ASSERT_PTR_NULL(json_get(dela, "prevResult"));
	/* a netns that is no namespace is passed as empty */
	_cleanup_free_ char *env = read_text("fakea.DEL.env");
	CU_ASSERT(contains(env, "CNI_NETNS=\n"));
	CU_ASSERT_FALSE(record_exists("pod2"));

	/* bad input is refused before any plugin runs */
	clear_calls();
	pod.ingress_bandwidth = "fast";
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EINVAL);
	pod.ingress_bandwidth = NULL;
	pod.name = "x;y";
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EINVAL);
	pod.name = "web";
	pod.id = "bad/id";
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EINVAL);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_PTR_NULL(calls);

	/* an ADD that prints no result */
	write_fake("fakea", "");
	pod.id = "pod3";
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EIO);
	CU_ASSERT(contains(err.msg, "returned no result"));
	/* or garbage */
	write_fake("fakea", "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"zzz\"}]}");
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -EINVAL);
	CU_ASSERT(contains(err.msg, "'fakea' ADD"));
	CU_ASSERT_FALSE(record_exists("pod3"));
	write_fake("fakea", res_a);

	/* a hung plugin is killed at the timeout and cleaned up after */
	net_cni_free(n);
	char *const dirs[] = {bindir, NULL};
	struct net_options o = {
	    .conf_dir = confdir, .bin_dirs = dirs, .cache_dir = cachedir, .timeout_ms = 2000};
	ASSERT_OK(net_cni_new(&o, &n, &err), &err);
	/* (2 s: the first plugin, which answers, must fit in it on a loaded
	 * machine too; 300 ms did not at load 20.) */
	write_script("fakeb", "cat > /dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\nsleep 30\n");
	CU_ASSERT_EQUAL(net_cni_setup(n, &pod, &res, &err), -ETIMEDOUT);
	CU_ASSERT(contains(err.msg, "'fakeb' ADD: no answer within 2000 ms"));
	CU_ASSERT_FALSE(record_exists("pod3"));
	write_fake("fakeb", res_b);
	net_cni_free(n);

	/* a 0.3.1 list gets no prevResult on DEL and no CHECK */
	write_conf("0.3.1", "");
	n = open_cni();
	pod.id = "pod4";
	write_fake("fakeb", "{\"cniVersion\":\"0.3.1\",\"ips\":[{\"version\":\"4\",\"address\":"
			    "\"10.9.0.6/24\"}]}");
	ASSERT_OK(net_cni_setup(n, &pod, &res, &err), &err);
	CU_ASSERT_STRING_EQUAL(res ? res->cni_version : "", "0.3.1");
	net_result_free(res);
	res = NULL;
	_cleanup_json_ yajl_val inb = read_json("fakeb.ADD.in");
	/* fakea answered in 1.0.0: converted down for the 0.3.1 chain */
	yajl_val prev = json_get(inb, "prevResult");
	CU_ASSERT_STRING_EQUAL(json_get_string(prev, "cniVersion"), "0.3.1");
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(prev, "ips")->u.array.values[0], "version"),
			       "4");
	clear_calls();
	ASSERT_OK(net_cni_check(n, "pod4", &err), &err);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_PTR_NULL(calls);
	ASSERT_OK(net_cni_teardown(n, "pod4", NULL, &err), &err);
	_cleanup_json_ yajl_val delb = read_json("fakeb.DEL.in");
	CU_ASSERT_PTR_NULL(json_get(delb, "prevResult"));
	write_fake("fakeb", res_b);
	net_cni_free(n);
	husk_error_clear(&err);
}

static void test_manager_status_gc(void)
{
	struct husk_error err = HUSK_ERROR_INIT;
	write_conf("1.1.0", "");
	struct net_cni *n = open_cni();

	/* STATUS (1.1) through every plugin; a failure is "not ready" with
	 * the plugin's message */
	clear_calls();
	ASSERT_OK(net_cni_status(n, NULL, &err), &err);
	_cleanup_free_ char *calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "STATUS fakea\nSTATUS fakeb\n");
	_cleanup_free_ char *env = read_text("fakea.STATUS.env");
	CU_ASSERT_FALSE(contains(env, "CNI_CONTAINERID"));
	set_fail("fakeb", "STATUS",
		 "{\"cniVersion\":\"1.1.0\",\"code\":50,"
		 "\"msg\":\"daemon not running\"}");
	CU_ASSERT_EQUAL(net_cni_status(n, NULL, &err), -EAGAIN);
	CU_ASSERT(contains(err.msg, "network not ready: network 'testnet': CNI plugin 'fakeb' "
				    "STATUS failed: daemon not running (code 50)"));
	set_fail("fakeb", "STATUS", NULL);

	/* three pods; after a "restart" only one of them is still known */
	const char *ids[] = {"gc1", "gc2", "gc3"};
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		struct net_pod pod = test_pod(ids[i]);
		struct net_result *res = NULL;
		ASSERT_OK(net_cni_setup(n, &pod, &res, &err), &err);
		net_result_free(res);
	}
	net_cni_free(n);
	n = open_cni();
	clear_calls();
	char *const valid[] = {"gc2", NULL};
	char **problems = NULL;
	ASSERT_OK(net_cni_gc(n, valid, &problems, &err), &err);
	CU_ASSERT_EQUAL(strv_length(problems), 0);
	strv_free(problems);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "DEL fakeb\nDEL fakea\nDEL fakeb\nDEL fakea\n"
				      "GC fakea\nGC fakeb\n");
	CU_ASSERT_FALSE(record_exists("gc1"));
	CU_ASSERT(record_exists("gc2"));
	CU_ASSERT_FALSE(record_exists("gc3"));
	_cleanup_json_ yajl_val gc = read_json("fakea.GC.in");
	yajl_val att = json_get(gc, "cni.dev/valid-attachments");
	CU_ASSERT_FATAL(YAJL_IS_ARRAY(att));
	CU_ASSERT_EQUAL_FATAL(att->u.array.len, 1);
	CU_ASSERT_STRING_EQUAL(json_get_string(att->u.array.values[0], "containerID"), "gc2");
	CU_ASSERT_STRING_EQUAL(json_get_string(att->u.array.values[0], "ifname"), "eth0");

	/* a DEL that fails during GC is reported, not fatal */
	struct net_pod pod = test_pod("gc4");
	struct net_result *res = NULL;
	ASSERT_OK(net_cni_setup(n, &pod, &res, &err), &err);
	net_result_free(res);
	set_fail("fakea", "DEL", "{\"code\":5,\"msg\":\"stuck\"}");
	ASSERT_OK(net_cni_gc(n, valid, &problems, &err), &err);
	CU_ASSERT_EQUAL_FATAL(strv_length(problems), 1);
	CU_ASSERT(contains(problems[0], "gc4"));
	CU_ASSERT(contains(problems[0], "stuck"));
	strv_free(problems);
	set_fail("fakea", "DEL", NULL);

	/* disableGC: stale ones still get DEL, but no GC verb */
	write_conf("1.1.0", "\"disableGC\":true,");
	clear_calls();
	ASSERT_OK(net_cni_gc(n, valid, &problems, &err), &err);
	strv_free(problems);
	free(calls);
	calls = read_text("calls.log");
	CU_ASSERT_STRING_EQUAL(calls, "DEL fakeb\nDEL fakea\n");
	ASSERT_OK(net_cni_teardown(n, "gc2", NULL, &err), &err);
	net_cni_free(n);
	husk_error_clear(&err);
}

int main(void)
{
	tmp = unit_tmpdir();
	bindir = xasprintf("%s/bin", tmp);
	confdir = xasprintf("%s/net.d", tmp);
	cachedir = xasprintf("%s/cache", tmp);
	mkdir(bindir, 0755);
	mkdir(confdir, 0755);
	setenv("HUSK_TEST_DIR", tmp, 1);
	static const struct unit_test tests[] = {
	    {"versions", test_versions},
	    {"results 0.1.0 and 0.2.0", test_result_legacy},
	    {"results 0.3.x and 0.4.0", test_result_04_and_03},
	    {"results 1.0.0 and 1.1.0", test_result_1x},
	    {"malformed results", test_result_bad},
	    {"error documents", test_error_json},
	    {"config parsing", test_config_parse},
	    {"config discovery and plugin lookup", test_config_find},
	    {"quantities", test_quantity},
	    {"runtimeConfig and CNI_ARGS", test_runtime_config},
	    {"running a plugin", test_exec},
	    {"ADD, CHECK, DEL over a chain and a restart", test_manager_chain},
	    {"failures clean up", test_manager_failures},
	    {"STATUS and GC", test_manager_status_gc},
	};
	int rc = unit_run("cni", tests, ARRAY_SIZE(tests));
	unit_rmdir(tmp);
	free(bindir);
	free(confdir);
	free(cachedir);
	return rc;
}
