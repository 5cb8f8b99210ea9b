/* CNI versions, plugin results and error documents: parsing every result
 * format the spec has had into struct net_result, and writing it back in
 * the format of a chosen version. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "network/network.h"

const char *const net_cni_versions[] = {"0.1.0", "0.2.0", "0.3.0", "0.3.1",
					"0.4.0", "1.0.0", "1.1.0", NULL};

int net_version_num(const char *v)
{
	if (isempty(v))
		return -1;
	long part[3] = {0, 0, 0};
	int n = 0;
	const char *p = v;
	while (n < 3) {
		if (*p < '0' || *p > '9')
			return -1;
		char *end;
		part[n] = strtol(p, &end, 10);
		if (part[n] > 99)
			return -1;
		n++;
		p = end;
		if (*p == '\0')
			break;
		if (*p != '.' || n == 3)
			return -1;
		p++;
	}
	if (n < 2)
		return -1;
	return (int)(part[0] * 10000 + part[1] * 100 + part[2]);
}

bool net_version_supported(const char *v)
{
	int n = net_version_num(v);
	for (size_t i = 0; net_cni_versions[i]; i++)
		if (n >= 0 && net_version_num(net_cni_versions[i]) == n)
			return true;
	return false;
}

static void interface_clear(struct net_interface *i)
{
	free(i->name);
	free(i->mac);
	free(i->sandbox);
	free(i->socket_path);
	free(i->pci_id);
}

void net_result_free(struct net_result *r)
{
	if (!r)
		return;
	free(r->cni_version);
	for (size_t i = 0; i < r->n_interfaces; i++)
		interface_clear(&r->interfaces[i]);
	free(r->interfaces);
	for (size_t i = 0; i < r->n_ips; i++) {
		free(r->ips[i].address);
		free(r->ips[i].gateway);
	}
	free(r->ips);
	for (size_t i = 0; i < r->n_routes; i++) {
		free(r->routes[i].dst);
		free(r->routes[i].gw);
	}
	free(r->routes);
	strv_free(r->dns.nameservers);
	free(r->dns.domain);
	strv_free(r->dns.search);
	strv_free(r->dns.options);
	free(r);
}

static char *dup_or_null(const char *s)
{
	return isempty(s) ? NULL : xstrdup(s);
}

/* An optional string member: absent or null is fine, another type is not. */
static int opt_string(yajl_val obj, const char *key, const char *where, char **ret,
		      struct husk_error *err)
{
	yajl_val v = json_get(obj, key);
	if (!v || YAJL_IS_NULL(v)) {
		*ret = NULL;
		return 0;
	}
	if (!YAJL_IS_STRING(v))
		return husk_error_set(err, EINVAL, "%s.%s: expected a string, got %s", where, key,
				      json_type_name(v));
	*ret = dup_or_null(v->u.string);
	return 0;
}

static int opt_int(yajl_val obj, const char *key, const char *where, int dflt, int *ret,
		   struct husk_error *err)
{
	yajl_val v = json_get(obj, key);
	if (!v || YAJL_IS_NULL(v)) {
		*ret = dflt;
		return 0;
	}
	if (!YAJL_IS_INTEGER(v) || v->u.number.i < -1 || v->u.number.i > 1 << 30)
		return husk_error_set(err, EINVAL, "%s.%s: expected a small integer", where, key);
	*ret = (int)v->u.number.i;
	return 0;
}

static int opt_strv(yajl_val obj, const char *key, const char *where, char ***ret,
		    struct husk_error *err)
{
	char **out = xnew(char *, 1);
	yajl_val v = json_get(obj, key);
	if (v && !YAJL_IS_NULL(v)) {
		if (!YAJL_IS_ARRAY(v)) {
			strv_free(out);
			return husk_error_set(err, EINVAL, "%s.%s: expected an array, got %s",
					      where, key, json_type_name(v));
		}
		for (size_t i = 0; i < v->u.array.len; i++) {
			yajl_val s = v->u.array.values[i];
			if (!YAJL_IS_STRING(s)) {
				strv_free(out);
				return husk_error_set(err, EINVAL, "%s.%s[%zu]: expected a string",
						      where, key, i);
			}
			out = strv_append(out, s->u.string);
		}
	}
	*ret = out;
	return 0;
}

static int ip_family(const char *cidr)
{
	char buf[INET6_ADDRSTRLEN + 8];
	if (!cidr || strlen(cidr) >= sizeof(buf))
		return 0;
	strcpy(buf, cidr);
	buf[strcspn(buf, "/")] = '\0';
	unsigned char a[16];
	if (inet_pton(AF_INET, buf, a) == 1)
		return 4;
	if (inet_pton(AF_INET6, buf, a) == 1)
		return 6;
	return 0;
}

static int parse_cidr_member(yajl_val obj, const char *key, const char *where, char **ret,
			     struct husk_error *err)
{
	const char *s = json_get_string(obj, key);
	if (isempty(s))
		return husk_error_set(err, EINVAL, "%s.%s is missing", where, key);
	if (!strchr(s, '/') || ip_family(s) == 0)
		return husk_error_set(err, EINVAL, "%s.%s: '%s' is not an address in CIDR form",
				      where, key, s);
	*ret = xstrdup(s);
	return 0;
}

static int parse_route(yajl_val v, const char *where, struct net_route *ret, struct husk_error *err)
{
	struct net_route rt = {.scope = -1};
	if (!YAJL_IS_OBJECT(v))
		return husk_error_set(err, EINVAL, "%s: expected an object", where);
	if (parse_cidr_member(v, "dst", where, &rt.dst, err) < 0 ||
	    opt_string(v, "gw", where, &rt.gw, err) < 0 ||
	    opt_int(v, "mtu", where, 0, &rt.mtu, err) < 0 ||
	    opt_int(v, "advmss", where, 0, &rt.advmss, err) < 0 ||
	    opt_int(v, "priority", where, 0, &rt.priority, err) < 0 ||
	    opt_int(v, "table", where, 0, &rt.table, err) < 0 ||
	    opt_int(v, "scope", where, -1, &rt.scope, err) < 0) {
		free(rt.dst);
		free(rt.gw);
		return -err->code;
	}
	*ret = rt;
	return 0;
}

static int parse_routes(yajl_val arr, const char *where, struct net_result *r,
			struct husk_error *err)
{
	if (!arr || YAJL_IS_NULL(arr))
		return 0;
	if (!YAJL_IS_ARRAY(arr))
		return husk_error_set(err, EINVAL, "%s: expected an array", where);
	for (size_t i = 0; i < arr->u.array.len; i++) {
		_cleanup_free_ char *w = xasprintf("%s[%zu]", where, i);
		struct net_route rt;
		if (parse_route(arr->u.array.values[i], w, &rt, err) < 0)
			return -err->code;
		r->routes = xrealloc(r->routes, (r->n_routes + 1) * sizeof(*r->routes));
		r->routes[r->n_routes++] = rt;
	}
	return 0;
}

static int parse_dns(yajl_val v, struct net_result *r, struct husk_error *err)
{
	if (v && !YAJL_IS_NULL(v) && !YAJL_IS_OBJECT(v))
		return husk_error_set(err, EINVAL, "dns: expected an object");
	if (opt_strv(v, "nameservers", "dns", &r->dns.nameservers, err) < 0 ||
	    opt_string(v, "domain", "dns", &r->dns.domain, err) < 0 ||
	    opt_strv(v, "search", "dns", &r->dns.search, err) < 0 ||
	    opt_strv(v, "options", "dns", &r->dns.options, err) < 0)
		return -err->code;
	return 0;
}

/* 0.1.0 and 0.2.0: {"ip4": {"ip", "gateway", "routes"}, "ip6": {...}}. */
static int parse_legacy(yajl_val tree, struct net_result *r, struct husk_error *err)
{
	static const char *const keys[] = {"ip4", "ip6"};
	for (size_t k = 0; k < 2; k++) {
		yajl_val v = json_get(tree, keys[k]);
		if (!v || YAJL_IS_NULL(v))
			continue;
		if (!YAJL_IS_OBJECT(v))
			return husk_error_set(err, EINVAL, "%s: expected an object", keys[k]);
		struct net_ip ip = {.interface = -1};
		if (parse_cidr_member(v, "ip", keys[k], &ip.address, err) < 0)
			return -err->code;
		ip.family = ip_family(ip.address);
		if (opt_string(v, "gateway", keys[k], &ip.gateway, err) < 0) {
			free(ip.address);
			return -err->code;
		}
		r->ips = xrealloc(r->ips, (r->n_ips + 1) * sizeof(*r->ips));
		r->ips[r->n_ips++] = ip;
		_cleanup_free_ char *w = xasprintf("%s.routes", keys[k]);
		if (parse_routes(json_get(v, "routes"), w, r, err) < 0)
			return -err->code;
	}
	return 0;
}

static int parse_interfaces(yajl_val arr, struct net_result *r, struct husk_error *err)
{
	if (!arr || YAJL_IS_NULL(arr))
		return 0;
	if (!YAJL_IS_ARRAY(arr))
		return husk_error_set(err, EINVAL, "interfaces: expected an array");
	r->interfaces = xnew(struct net_interface, arr->u.array.len + 1);
	for (size_t i = 0; i < arr->u.array.len; i++) {
		yajl_val v = arr->u.array.values[i];
		_cleanup_free_ char *w = xasprintf("interfaces[%zu]", i);
		if (!YAJL_IS_OBJECT(v))
			return husk_error_set(err, EINVAL, "%s: expected an object", w);
		struct net_interface *it = &r->interfaces[r->n_interfaces++];
		if (opt_string(v, "name", w, &it->name, err) < 0 ||
		    opt_string(v, "mac", w, &it->mac, err) < 0 ||
		    opt_string(v, "sandbox", w, &it->sandbox, err) < 0 ||
		    opt_int(v, "mtu", w, 0, &it->mtu, err) < 0 ||
		    opt_string(v, "socketPath", w, &it->socket_path, err) < 0 ||
		    opt_string(v, "pciID", w, &it->pci_id, err) < 0)
			return -err->code;
		if (!it->name)
			return husk_error_set(err, EINVAL, "%s.name is missing", w);
	}
	return 0;
}

static int parse_ips(yajl_val arr, bool with_version, struct net_result *r, struct husk_error *err)
{
	if (!arr || YAJL_IS_NULL(arr))
		return 0;
	if (!YAJL_IS_ARRAY(arr))
		return husk_error_set(err, EINVAL, "ips: expected an array");
	r->ips = xnew(struct net_ip, arr->u.array.len + 1);
	for (size_t i = 0; i < arr->u.array.len; i++) {
		yajl_val v = arr->u.array.values[i];
		_cleanup_free_ char *w = xasprintf("ips[%zu]", i);
		if (!YAJL_IS_OBJECT(v))
			return husk_error_set(err, EINVAL, "%s: expected an object", w);
		struct net_ip *ip = &r->ips[r->n_ips++];
		ip->interface = -1;
		if (parse_cidr_member(v, "address", w, &ip->address, err) < 0 ||
		    opt_string(v, "gateway", w, &ip->gateway, err) < 0 ||
		    opt_int(v, "interface", w, -1, &ip->interface, err) < 0)
			return -err->code;
		ip->family = ip_family(ip->address);
		/* 0.3.x and 0.4.0 say the family in "version"; 1.x dropped it. */
		const char *ver = json_get_string(v, "version");
		if (with_version && !ver)
			return husk_error_set(err, EINVAL, "%s.version is missing", w);
		if (ver &&
		    !((streq(ver, "4") && ip->family == 4) || (streq(ver, "6") && ip->family == 6)))
			return husk_error_set(err, EINVAL,
					      "%s: version '%s' does not match address '%s'", w,
					      ver, ip->address);
		if (ip->interface >= 0 && (size_t)ip->interface >= r->n_interfaces)
			return husk_error_set(err, EINVAL,
					      "%s.interface: %d is not an index of interfaces", w,
					      ip->interface);
		if (ip->interface < -1)
			return husk_error_set(err, EINVAL, "%s.interface: negative index", w);
	}
	return 0;
}

int net_result_from_tree(yajl_val tree, struct net_result **ret, struct husk_error *err)
{
	if (!YAJL_IS_OBJECT(tree))
		return husk_error_set(err, EINVAL, "CNI result: expected an object, got %s",
				      json_type_name(tree));
	const char *ver = json_get_string(tree, "cniVersion");
	if (!ver)
		ver = "0.1.0";
	if (!net_version_supported(ver))
		return husk_error_set(err, ENOTSUP, "CNI result: version '%s' is not supported",
				      ver);
	_cleanup_(net_result_freep) struct net_result *r = xnew(struct net_result, 1);
	r->cni_version = xstrdup(ver);
	int num = net_version_num(ver);
	int rc;
	if (num < 300) {
		rc = parse_legacy(tree, r, err);
	} else {
		rc = parse_interfaces(json_get(tree, "interfaces"), r, err);
		if (rc == 0)
			rc = parse_ips(json_get(tree, "ips"), num < 10000, r, err);
		if (rc == 0)
			rc = parse_routes(json_get(tree, "routes"), "routes", r, err);
	}
	if (rc == 0)
		rc = parse_dns(json_get(tree, "dns"), r, err);
	if (rc < 0)
		return husk_error_prefix(err, "CNI result (version %s)", ver);
	*ret = steal_ptr(&r);
	return 0;
}

int net_result_parse(const char *json, size_t len, struct net_result **ret, struct husk_error *err)
{
	_cleanup_json_ yajl_val tree = NULL;
	if (json_parse(json, len, "CNI result", &tree, err) < 0)
		return -err->code;
	return net_result_from_tree(tree, ret, err);
}

static void gen_strv(yajl_gen g, const char *key, char *const *v)
{
	if (!v || !v[0])
		return;
	json_key(g, key);
	yajl_gen_array_open(g);
	for (size_t i = 0; v[i]; i++)
		json_str(g, v[i]);
	yajl_gen_array_close(g);
}

char *net_result_to_json(const struct net_result *r, const char *version)
{
	int num = net_version_num(version);
	bool v11 = num >= 10100;
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	json_kv_str(g, "cniVersion", version);
	if (r->n_interfaces) {
		json_key(g, "interfaces");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_interfaces; i++) {
			const struct net_interface *it = &r->interfaces[i];
			yajl_gen_map_open(g);
			json_kv_str(g, "name", it->name);
			if (it->mac)
				json_kv_str(g, "mac", it->mac);
			if (it->sandbox)
				json_kv_str(g, "sandbox", it->sandbox);
			if (v11 && it->mtu)
				json_kv_int(g, "mtu", it->mtu);
			if (v11 && it->socket_path)
				json_kv_str(g, "socketPath", it->socket_path);
			if (v11 && it->pci_id)
				json_kv_str(g, "pciID", it->pci_id);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	if (r->n_ips) {
		json_key(g, "ips");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_ips; i++) {
			const struct net_ip *ip = &r->ips[i];
			yajl_gen_map_open(g);
			if (num < 10000)
				json_kv_str(g, "version", ip->family == 6 ? "6" : "4");
			json_kv_str(g, "address", ip->address);
			if (ip->gateway)
				json_kv_str(g, "gateway", ip->gateway);
			if (ip->interface >= 0)
				json_kv_int(g, "interface", ip->interface);
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	if (r->n_routes) {
		json_key(g, "routes");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < r->n_routes; i++) {
			const struct net_route *rt = &r->routes[i];
			yajl_gen_map_open(g);
			json_kv_str(g, "dst", rt->dst);
			if (rt->gw)
				json_kv_str(g, "gw", rt->gw);
			if (v11) {
				if (rt->mtu)
					json_kv_int(g, "mtu", rt->mtu);
				if (rt->advmss)
					json_kv_int(g, "advmss", rt->advmss);
				if (rt->priority)
					json_kv_int(g, "priority", rt->priority);
				if (rt->table)
					json_kv_int(g, "table", rt->table);
				if (rt->scope >= 0)
					json_kv_int(g, "scope", rt->scope);
			}
			yajl_gen_map_close(g);
		}
		yajl_gen_array_close(g);
	}
	const struct net_dns *d = &r->dns;
	if ((d->nameservers && d->nameservers[0]) || d->domain || (d->search && d->search[0]) ||
	    (d->options && d->options[0])) {
		json_key(g, "dns");
		yajl_gen_map_open(g);
		gen_strv(g, "nameservers", d->nameservers);
		if (d->domain)
			json_kv_str(g, "domain", d->domain);
		gen_strv(g, "search", d->search);
		gen_strv(g, "options", d->options);
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}

static const struct net_interface *ip_interface(const struct net_result *r, const struct net_ip *ip)
{
	if (ip->interface < 0 || (size_t)ip->interface >= r->n_interfaces)
		return NULL;
	return &r->interfaces[ip->interface];
}

static bool is_loopback(const char *address)
{
	return startswith(address, "127.") || startswith(address, "::1/");
}

static bool want_ip(const struct net_result *r, const struct net_ip *ip, const char *ifname)
{
	const struct net_interface *it = ip_interface(r, ip);
	if (ifname)
		return it && !isempty(it->sandbox) && streq(it->name, ifname);
	return (!it || !isempty(it->sandbox)) && !is_loopback(ip->address);
}

char **net_result_pod_ips(const struct net_result *r, const char *ifname)
{
	bool on_ifname = false;
	for (size_t i = 0; ifname && i < r->n_ips; i++)
		on_ifname = on_ifname || want_ip(r, &r->ips[i], ifname);
	if (!on_ifname)
		ifname = NULL;
	char **out = xnew(char *, 1);
	for (int family = 4; family <= 6; family += 2) {
		for (size_t i = 0; i < r->n_ips; i++) {
			const struct net_ip *ip = &r->ips[i];
			if (ip->family != family || !want_ip(r, ip, ifname))
				continue;
			_cleanup_free_ char *a = xstrndup(ip->address, strcspn(ip->address, "/"));
			bool dup = false;
			for (size_t j = 0; out[j]; j++)
				dup = dup || streq(out[j], a);
			if (!dup)
				out = strv_append(out, a);
		}
	}
	return out;
}

int net_error_parse(const char *json, size_t len, unsigned *ret_code, char **ret_msg,
		    struct husk_error *err)
{
	_cleanup_json_ yajl_val tree = NULL;
	if (json_parse(json, len, "CNI error", &tree, err) < 0)
		return -err->code;
	yajl_val code = json_get(tree, "code");
	const char *msg = json_get_string(tree, "msg");
	const char *details = json_get_string(tree, "details");
	if (!YAJL_IS_INTEGER(code) || code->u.number.i < 0 || code->u.number.i > 0xffff)
		return husk_error_set(err, EINVAL, "CNI error: no numeric code");
	if (isempty(msg) && isempty(details))
		return husk_error_set(err, EINVAL, "CNI error: no msg");
	*ret_code = (unsigned)code->u.number.i;
	if (isempty(msg))
		*ret_msg = xstrdup(details);
	else if (isempty(details) || streq(msg, details))
		*ret_msg = xstrdup(msg);
	else
		*ret_msg = xasprintf("%s: %s", msg, details);
	return 0;
}
