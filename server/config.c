/* Effective huskd configuration: defaults, main file, drop-ins, flags.
 * Each key is one row of a table that says how to parse and print it. */
#include "server/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"

#define CONFIG_MAX_SIZE (1 << 20)

enum key_type { KEY_STRING, KEY_INT, KEY_LLONG, KEY_BOOL, KEY_STRV, KEY_REGISTRIES, KEY_RUNTIMES };

struct key {
	const char *name;
	enum key_type type;
	size_t offset;
	long long min, max; /* integer bounds */
	int (*check)(const char *value, struct husk_error *err);
};

static int check_log_level(const char *v, struct husk_error *err)
{
	if (log_level_parse(v) < 0)
		return husk_error_set(err, EINVAL, "'%s' is not one of error, warn, info, debug",
				      v);
	return 0;
}

static int check_cgroup_driver(const char *v, struct husk_error *err)
{
	if (!streq(v, "cgroupfs") && !streq(v, "systemd") && !streq(v, "auto"))
		return husk_error_set(err, EINVAL, "'%s' is not one of cgroupfs, systemd, auto", v);
	return 0;
}

static int check_abs_path(const char *v, struct husk_error *err)
{
	if (v[0] != '/')
		return husk_error_set(err, EINVAL, "'%s' is not an absolute path", v);
	return 0;
}

int srv_host_port_parse(const char *addr, struct sockaddr_storage *ret, unsigned *ret_len,
			struct husk_error *err)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr)
		return husk_error_set(err, EINVAL, "'%s' is not host:port", addr);
	const char *port_s = colon + 1;
	if (!*port_s || strspn(port_s, "0123456789") != strlen(port_s) || strlen(port_s) > 5 ||
	    atoi(port_s) < 1 || atoi(port_s) > 65535)
		return husk_error_set(err, EINVAL, "'%s': port '%s' is not 1-65535", addr, port_s);
	_cleanup_free_ char *host = xstrndup(addr, (size_t)(colon - addr));
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	unsigned len;
	size_t hl = strlen(host);
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return husk_error_set(err, EINVAL, "'%s': '%s' is not an IPv6 address",
					      addr, host + 1);
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)atoi(port_s));
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		if (streq(host, "localhost"))
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return husk_error_set(
			    err, EINVAL,
			    "'%s': host '%s' is not an IPv4 address, [IPv6 address] or localhost",
			    addr, host);
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)atoi(port_s));
		len = sizeof(*a);
	}
	if (ret)
		*ret = ss;
	if (ret_len)
		*ret_len = len;
	return 0;
}

static int check_host_port_or_empty(const char *v, struct husk_error *err)
{
	if (!*v)
		return 0;
	return srv_host_port_parse(v, NULL, NULL, err);
}

#define OFF(f) offsetof(struct srv_config, f)
static const struct key keys[] = {
    {"socket", KEY_STRING, OFF(socket), 0, 0, check_abs_path},
    {"root", KEY_STRING, OFF(root), 0, 0, check_abs_path},
    {"state", KEY_STRING, OFF(state), 0, 0, check_abs_path},
    {"log_level", KEY_STRING, OFF(log_level), 0, 0, check_log_level},
    {"cgroup_driver", KEY_STRING, OFF(cgroup_driver), 0, 0, check_cgroup_driver},
    {"cgroup_root", KEY_STRING, OFF(cgroup_root), 0, 0, check_abs_path},
    {"pod_cgroup_parent", KEY_STRING, OFF(pod_cgroup_parent), 0, 0, NULL},
    {"shutdown_timeout", KEY_INT, OFF(shutdown_timeout), 0, 3600, NULL},
    {"max_workers", KEY_INT, OFF(max_workers), 4, 4096, NULL},
    {"worker_idle_timeout", KEY_INT, OFF(worker_idle_timeout), 1, 3600, NULL},
    {"sandbox_image", KEY_STRING, OFF(sandbox_image), 0, 0, NULL},
    {"pinned_images", KEY_STRV, OFF(pinned_images), 0, 0, NULL},
    {"max_concurrent_downloads", KEY_INT, OFF(max_concurrent_downloads), 1, 64, NULL},
    {"max_concurrent_pulls", KEY_INT, OFF(max_concurrent_pulls), 1, 1024, NULL},
    {"pull_progress_timeout", KEY_INT, OFF(pull_progress_timeout), 0, 86400, NULL},
    {"registries", KEY_REGISTRIES, OFF(registries), 0, 0, NULL},
    {"cni_conf_dir", KEY_STRING, OFF(cni_conf_dir), 0, 0, check_abs_path},
    {"cni_bin_dirs", KEY_STRV, OFF(cni_bin_dirs), 0, 0, check_abs_path},
    {"cni_plugin_timeout", KEY_INT, OFF(cni_plugin_timeout), 1, 3600, NULL},
    {"require_pod_network", KEY_BOOL, OFF(require_pod_network), 0, 0, NULL},
    {"pids_limit", KEY_LLONG, OFF(pids_limit), 0, LLONG_MAX, NULL},
    {"runtimes", KEY_RUNTIMES, OFF(runtimes), 0, 0, NULL},
    {"default_runtime", KEY_STRING, OFF(default_runtime), 0, 0, NULL},
    {"shim_path", KEY_STRING, OFF(shim_path), 0, 0, NULL},
    {"retry_keep_period", KEY_INT, OFF(retry_keep_period), 1, 3600, NULL},
    {"metrics_address", KEY_STRING, OFF(metrics_address), 0, 0, check_host_port_or_empty},
    {"stream_address", KEY_STRING, OFF(stream_address), 0, 0, NULL},
    {"stream_port", KEY_INT, OFF(stream_port), 0, 65535, NULL},
};
#undef OFF

#define FIELD(c, k, type) ((type *)((char *)(c) + (k)->offset))

static void registries_free(struct srv_registry *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].host);
		strv_free(r[i].mirrors);
		free(r[i].location);
	}
	free(r);
}

static void runtimes_free(struct srv_runtime *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(r[i].name);
		free(r[i].path);
		free(r[i].root);
		strv_free(r[i].args);
	}
	free(r);
}

void srv_config_free(struct srv_config *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct key *k = &keys[i];
		if (k->type == KEY_STRING)
			free(*FIELD(c, k, char *));
		else if (k->type == KEY_STRV)
			strv_free(*FIELD(c, k, char **));
	}
	registries_free(c->registries, c->n_registries);
	free(c->cgroup_driver_used);
	runtimes_free(c->runtimes, c->n_runtimes);
	free(c->config_path);
	free(c);
}

static struct srv_config *config_defaults(void)
{
	struct srv_config *c = xnew(struct srv_config, 1);
	c->config_path = xstrdup(SRV_DEFAULT_CONFIG);
	c->socket = xstrdup(SRV_DEFAULT_SOCKET);
	c->root = xstrdup(SRV_DEFAULT_ROOT);
	c->state = xstrdup(SRV_DEFAULT_STATE);
	c->log_level = xstrdup("info");
	c->cgroup_driver = xstrdup("auto");
	c->cgroup_root = xstrdup("/sys/fs/cgroup");
	c->pod_cgroup_parent = xstrdup("");
	c->shutdown_timeout = 10;
	c->max_workers = 256;
	c->worker_idle_timeout = 30;
	c->sandbox_image = xstrdup("registry.k8s.io/pause:3.10");
	c->pinned_images = xnew(char *, 1);
	c->max_concurrent_downloads = 3;
	c->max_concurrent_pulls = 10;
	c->pull_progress_timeout = 300;
	c->cni_conf_dir = xstrdup("/etc/cni/net.d");
	c->cni_bin_dirs = strv_append(strv_append(NULL, "/opt/cni/bin"), "/usr/lib/cni");
	c->cni_plugin_timeout = 60;
	c->require_pod_network = true;
	c->pids_limit = 0;
	c->shim_path = xstrdup("");
	c->retry_keep_period = 300;
	c->metrics_address = xstrdup("");
	c->default_runtime = xstrdup("");
	c->stream_address = xstrdup("127.0.0.1");
	c->stream_port = 0;
	return c;
}

static struct srv_registry *registry_get(struct srv_config *c, const char *host)
{
	for (size_t i = 0; i < c->n_registries; i++)
		if (streq(c->registries[i].host, host))
			return &c->registries[i];
	c->registries = xrealloc(c->registries, (c->n_registries + 1) * sizeof(*c->registries));
	struct srv_registry *r = &c->registries[c->n_registries++];
	*r = (struct srv_registry){.host = xstrdup(host), .mirrors = xnew(char *, 1)};
	return r;
}

static int strv_from_json(yajl_val v, const struct key *k, char ***ret, struct husk_error *err)
{
	if (!YAJL_IS_ARRAY(v))
		return husk_error_set(err, EINVAL, "expected an array of strings, got %s",
				      json_type_name(v));
	_cleanup_strv_ char **out = xnew(char *, 1);
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val e = v->u.array.values[i];
		if (!YAJL_IS_STRING(e))
			return husk_error_set(err, EINVAL, "element %zu: expected a string, got %s",
					      i, json_type_name(e));
		if (k && k->check && k->check(e->u.string, err) < 0)
			return husk_error_prefix(err, "element %zu", i);
		out = strv_append(out, e->u.string);
	}
	*ret = steal_ptr(&out);
	return 0;
}

/* "registries": {"host[:port]": {"insecure": bool, "mirrors": [..], "location": ".."}}
 * A drop-in's entry for a host replaces the keys it names and keeps the rest. */
static int parse_registries(struct srv_config *c, yajl_val v, struct husk_error *err)
{
	if (!YAJL_IS_OBJECT(v))
		return husk_error_set(err, EINVAL, "expected an object, got %s", json_type_name(v));
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *host = v->u.object.keys[i];
		yajl_val r = v->u.object.values[i];
		if (isempty(host) || strchr(host, '/'))
			return husk_error_set(err, EINVAL, "'%s' is not a registry host[:port]",
					      host);
		if (!YAJL_IS_OBJECT(r))
			return husk_error_set(err, EINVAL, "%s: expected an object, got %s", host,
					      json_type_name(r));
		struct srv_registry *reg = registry_get(c, host);
		for (size_t j = 0; j < r->u.object.len; j++) {
			const char *key = r->u.object.keys[j];
			yajl_val val = r->u.object.values[j];
			if (streq(key, "insecure")) {
				if (!YAJL_IS_TRUE(val) && !YAJL_IS_FALSE(val))
					return husk_error_set(
					    err, EINVAL, "%s.insecure: expected a boolean, got %s",
					    host, json_type_name(val));
				reg->insecure = YAJL_IS_TRUE(val);
			} else if (streq(key, "mirrors")) {
				char **m;
				if (strv_from_json(val, NULL, &m, err) < 0)
					return husk_error_prefix(err, "%s.mirrors", host);
				strv_free(reg->mirrors);
				reg->mirrors = m;
			} else if (streq(key, "location")) {
				if (!YAJL_IS_STRING(val) || isempty(val->u.string))
					return husk_error_set(
					    err, EINVAL,
					    "%s.location: expected a host[:port], got %s", host,
					    json_type_name(val));
				free(reg->location);
				reg->location = xstrdup(val->u.string);
			} else {
				return husk_error_set(err, EINVAL, "%s: unknown key '%s'", host,
						      key);
			}
		}
	}
	return 0;
}

static bool handler_name_ok(const char *n)
{
	/* A RuntimeClass handler is a DNS label. */
	size_t len = strlen(n);
	if (len == 0 || len > 63 || n[0] == '-' || n[len - 1] == '-')
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

static struct srv_runtime *runtime_get(struct srv_config *c, const char *name)
{
	for (size_t i = 0; i < c->n_runtimes; i++)
		if (streq(c->runtimes[i].name, name))
			return &c->runtimes[i];
	c->runtimes = xrealloc(c->runtimes, (c->n_runtimes + 1) * sizeof(*c->runtimes));
	struct srv_runtime *r = &c->runtimes[c->n_runtimes++];
	*r = (struct srv_runtime){.name = xstrdup(name), .args = xnew(char *, 1)};
	return r;
}

/* "runtimes": {"runc": {"path": "/usr/sbin/runc", "root": "...", "args": [..],
 * "systemd_cgroup": false}}; a drop-in's entry replaces the keys it names. */
static int parse_runtimes(struct srv_config *c, yajl_val v, struct husk_error *err)
{
	if (!YAJL_IS_OBJECT(v))
		return husk_error_set(err, EINVAL, "expected an object, got %s", json_type_name(v));
	for (size_t i = 0; i < v->u.object.len; i++) {
		const char *name = v->u.object.keys[i];
		yajl_val r = v->u.object.values[i];
		if (!handler_name_ok(name) || streq(name, "husk"))
			return husk_error_set(err, EINVAL,
					      "'%s' is not a handler name (a DNS label other "
					      "than husk)",
					      name);
		if (!YAJL_IS_OBJECT(r))
			return husk_error_set(err, EINVAL, "%s: expected an object, got %s", name,
					      json_type_name(r));
		struct srv_runtime *rt = runtime_get(c, name);
		for (size_t j = 0; j < r->u.object.len; j++) {
			const char *key = r->u.object.keys[j];
			yajl_val val = r->u.object.values[j];
			if (streq(key, "path") || streq(key, "root")) {
				if (!YAJL_IS_STRING(val) || val->u.string[0] != '/')
					return husk_error_set(err, EINVAL,
							      "%s.%s: expected an absolute path",
							      name, key);
				char **f = streq(key, "path") ? &rt->path : &rt->root;
				free(*f);
				*f = xstrdup(val->u.string);
			} else if (streq(key, "args")) {
				char **a;
				if (strv_from_json(val, NULL, &a, err) < 0)
					return husk_error_prefix(err, "%s.args", name);
				strv_free(rt->args);
				rt->args = a;
			} else if (streq(key, "systemd_cgroup")) {
				if (!YAJL_IS_TRUE(val) && !YAJL_IS_FALSE(val))
					return husk_error_set(
					    err, EINVAL,
					    "%s.systemd_cgroup: expected a boolean, got %s", name,
					    json_type_name(val));
				rt->systemd_cgroup = YAJL_IS_TRUE(val);
			} else {
				return husk_error_set(err, EINVAL, "%s: unknown key '%s'", name,
						      key);
			}
		}
	}
	return 0;
}

static int apply_value(struct srv_config *c, const struct key *k, yajl_val v,
		       struct husk_error *err)
{
	switch (k->type) {
	case KEY_STRING:
		if (!YAJL_IS_STRING(v))
			return husk_error_set(err, EINVAL, "expected a string, got %s",
					      json_type_name(v));
		if (k->check && k->check(v->u.string, err) < 0)
			return -EINVAL;
		free(*FIELD(c, k, char *));
		*FIELD(c, k, char *) = xstrdup(v->u.string);
		return 0;
	case KEY_INT:
	case KEY_LLONG:
		if (!YAJL_IS_INTEGER(v))
			return husk_error_set(err, EINVAL, "expected an integer, got %s",
					      json_type_name(v));
		if (v->u.number.i < k->min || v->u.number.i > k->max)
			return husk_error_set(err, EINVAL, "%lld is out of range %lld..%lld",
					      v->u.number.i, k->min, k->max);
		if (k->type == KEY_INT)
			*FIELD(c, k, int) = (int)v->u.number.i;
		else
			*FIELD(c, k, long long) = v->u.number.i;
		return 0;
	case KEY_BOOL:
		if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v))
			return husk_error_set(err, EINVAL, "expected a boolean, got %s",
					      json_type_name(v));
		*FIELD(c, k, bool) = YAJL_IS_TRUE(v);
		return 0;
	case KEY_STRV: {
		char **list;
		if (strv_from_json(v, k, &list, err) < 0)
			return -EINVAL;
		strv_free(*FIELD(c, k, char **));
		*FIELD(c, k, char **) = list;
		return 0;
	}
	case KEY_REGISTRIES:
		return parse_registries(c, v, err);
	case KEY_RUNTIMES:
		return parse_runtimes(c, v, err);
	}
	return husk_error_set(err, EINVAL, "unsupported key type");
}

static const struct key *key_find(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (streq(keys[i].name, name))
			return &keys[i];
	return NULL;
}

/* Apply one file. Missing files are ENOENT so the caller can decide. */
static int apply_file(struct srv_config *c, const char *path, struct husk_error *err)
{
	_cleanup_json_ yajl_val tree = NULL;
	int r = json_parse_file(path, CONFIG_MAX_SIZE, &tree, err);
	if (r < 0)
		return r == -ENOENT ? r : husk_error_prefix(err, "config");
	if (!YAJL_IS_OBJECT(tree))
		return husk_error_set(err, EINVAL, "config '%s': top level must be an object",
				      path);
	for (size_t i = 0; i < tree->u.object.len; i++) {
		const char *name = tree->u.object.keys[i];
		const struct key *k = key_find(name);
		if (!k)
			return husk_error_set(err, EINVAL, "config '%s': unknown key '%s'", path,
					      name);
		if (apply_value(c, k, tree->u.object.values[i], err) < 0)
			return husk_error_prefix(err, "config '%s': key '%s'", path, name);
	}
	return 0;
}

static int apply_flag(struct srv_config *c, const char *name, const char *value,
		      struct husk_error *err)
{
	if (!value)
		return 0;
	const struct key *k = key_find(name);
	if (k->check && k->check(value, err) < 0)
		return husk_error_prefix(err, "flag --%s", name);
	free(*FIELD(c, k, char *));
	*FIELD(c, k, char *) = xstrdup(value);
	return 0;
}

static bool host_uses_systemd(void)
{
	/* The same test sd_booted() makes. */
	return fs_exists("/run/systemd/system");
}

int srv_config_load(const struct srv_flags *flags, struct srv_config **ret, struct husk_error *err)
{
	struct srv_config *c = config_defaults();
	_cleanup_(srv_config_freep) struct srv_config *cleanup = c;
	const char *main = flags && flags->config ? flags->config : SRV_DEFAULT_CONFIG;
	free(c->config_path);
	c->config_path = xstrdup(main);

	int r = apply_file(c, main, err);
	if (r == -ENOENT && flags && flags->config)
		return husk_error_prefix(err, "config");
	if (r < 0 && r != -ENOENT)
		return r;
	husk_error_clear(err);

	_cleanup_free_ char *copy = xstrdup(main);
	_cleanup_free_ char *dropdir = xasprintf("%s/husk.d", dirname(copy));
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(dropdir, NULL, &names, err) < 0)
		return husk_error_prefix(err, "config");
	for (size_t i = 0; names[i]; i++) {
		if (!endswith(names[i], ".json")) {
			log_warn(
			    "config: ignoring '%s/%s': drop-ins are read only from *.json files",
			    dropdir, names[i]);
			continue;
		}
		_cleanup_free_ char *path = xasprintf("%s/%s", dropdir, names[i]);
		if (apply_file(c, path, err) < 0)
			return -err->code;
	}

	if (flags) {
		if (apply_flag(c, "socket", flags->socket, err) < 0 ||
		    apply_flag(c, "root", flags->root, err) < 0 ||
		    apply_flag(c, "state", flags->state, err) < 0 ||
		    apply_flag(c, "log_level", flags->log_level, err) < 0 ||
		    apply_flag(c, "cgroup_driver", flags->cgroup_driver, err) < 0)
			return -err->code;
	}
	c->cgroup_driver_used = xstrdup(!streq(c->cgroup_driver, "auto") ? c->cgroup_driver
					: host_uses_systemd()		 ? "systemd"
									 : "cgroupfs");
	for (size_t i = 0; i < c->n_runtimes; i++) {
		struct srv_runtime *rt = &c->runtimes[i];
		if (!rt->path)
			return husk_error_set(err, EINVAL, "config: key 'runtimes': %s: no path",
					      rt->name);
		if (!rt->root)
			rt->root = xasprintf("%s/runtimes/%s", c->state, rt->name);
	}
	if (!isempty(c->default_runtime) && !streq(c->default_runtime, "husk")) {
		bool found = false;
		for (size_t i = 0; i < c->n_runtimes; i++)
			found |= streq(c->runtimes[i].name, c->default_runtime);
		if (!found)
			return husk_error_set(err, EINVAL,
					      "config: key 'default_runtime': '%s' is not one of "
					      "runtimes",
					      c->default_runtime);
	}
	cleanup = NULL;
	*ret = c;
	return 0;
}

int srv_config_runtime(const struct srv_config *c, const char *handler,
		       const struct srv_runtime **ret, struct husk_error *err)
{
	const char *name = handler ? handler : "";
	/* "husk" always names husk's launcher, so a pod can still ask for it
	 * when default_runtime sends "" elsewhere. */
	if (streq(name, "husk") ||
	    (isempty(name) && (isempty(c->default_runtime) || streq(c->default_runtime, "husk")))) {
		*ret = NULL;
		return 0;
	}
	if (isempty(name))
		name = c->default_runtime;
	for (size_t i = 0; i < c->n_runtimes; i++)
		if (streq(c->runtimes[i].name, name)) {
			*ret = &c->runtimes[i];
			return 0;
		}
	_cleanup_free_ char *known = xstrdup("\"\", husk");
	for (size_t i = 0; i < c->n_runtimes; i++) {
		char *k = xasprintf("%s, %s", known, c->runtimes[i].name);
		free(known);
		known = k;
	}
	return husk_error_set(err, ENOENT, "runtime handler '%s' is not configured (handlers: %s)",
			      name, known);
}

const struct srv_registry *srv_config_registry(const struct srv_config *c, const char *host)
{
	for (size_t i = 0; i < c->n_registries; i++)
		if (streq(c->registries[i].host, host))
			return &c->registries[i];
	return NULL;
}

static void gen_strv(yajl_gen g, char **v)
{
	yajl_gen_array_open(g);
	for (size_t i = 0; v && v[i]; i++)
		json_str(g, v[i]);
	yajl_gen_array_close(g);
}

char *srv_config_to_json(const struct srv_config *c, bool pretty)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(pretty);
	yajl_gen_map_open(g);
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const struct key *k = &keys[i];
		json_key(g, k->name);
		switch (k->type) {
		case KEY_STRING:
			json_str(g, *FIELD(c, k, char *const));
			break;
		case KEY_INT:
			yajl_gen_integer(g, *FIELD(c, k, const int));
			break;
		case KEY_LLONG:
			yajl_gen_integer(g, *FIELD(c, k, const long long));
			break;
		case KEY_BOOL:
			yajl_gen_bool(g, *FIELD(c, k, const bool));
			break;
		case KEY_STRV:
			gen_strv(g, *FIELD(c, k, char **const));
			break;
		case KEY_REGISTRIES:
			yajl_gen_map_open(g);
			for (size_t j = 0; j < c->n_registries; j++) {
				const struct srv_registry *r = &c->registries[j];
				json_key(g, r->host);
				yajl_gen_map_open(g);
				json_kv_bool(g, "insecure", r->insecure);
				json_key(g, "mirrors");
				gen_strv(g, r->mirrors);
				if (r->location)
					json_kv_str(g, "location", r->location);
				yajl_gen_map_close(g);
			}
			yajl_gen_map_close(g);
			break;
		case KEY_RUNTIMES:
			yajl_gen_map_open(g);
			for (size_t j = 0; j < c->n_runtimes; j++) {
				const struct srv_runtime *r = &c->runtimes[j];
				json_key(g, r->name);
				yajl_gen_map_open(g);
				json_kv_str(g, "path", r->path);
				if (r->root)
					json_kv_str(g, "root", r->root);
				json_key(g, "args");
				gen_strv(g, r->args);
				json_kv_bool(g, "systemd_cgroup", r->systemd_cgroup);
				yajl_gen_map_close(g);
			}
			yajl_gen_map_close(g);
			break;
		}
	}
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}
