/* The pod network manager: runs a config list's plugin chain for a pod
 * (ADD in order with prevResult chained, DEL in reverse, CHECK, STATUS,
 * GC) and keeps one record per pod on disk with everything DEL needs. */
#include <errno.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include "common/fs.h"
#include "common/json.h"
#include "network/network.h"

#define RECORD_KIND "husk-cni-attachment/v1"
#define RECORD_MAX_SIZE (4U << 20)

struct net_cni {
	char *conf_dir;
	char **bin_dirs;
	char *cache_dir;
	int timeout_ms;
	struct net_cni_stats *stats; /* atomics; a pointer so const callers count */
};

int net_cni_new(const struct net_options *opts, struct net_cni **ret, struct husk_error *err)
{
	if (isempty(opts->cache_dir))
		return husk_error_set(err, EINVAL, "CNI: no cache directory");
	if (!opts->bin_dirs || !opts->bin_dirs[0])
		return husk_error_set(err, EINVAL, "CNI: no plugin directories");
	if (fs_mkdir_p(opts->cache_dir, 0700, err) < 0)
		return husk_error_prefix(err, "CNI cache");
	struct net_cni *n = xnew(struct net_cni, 1);
	n->conf_dir = xstrdup(isempty(opts->conf_dir) ? NET_DEFAULT_CONF_DIR : opts->conf_dir);
	for (size_t i = 0; opts->bin_dirs[i]; i++)
		n->bin_dirs = strv_append(n->bin_dirs, opts->bin_dirs[i]);
	n->cache_dir = xstrdup(opts->cache_dir);
	n->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : NET_DEFAULT_TIMEOUT_MS;
	n->stats = xnew(struct net_cni_stats, 1);
	for (int i = 0; i < NET_OP_COUNT; i++)
		n->stats->duration[i].b = &mx_buckets_default;
	*ret = n;
	return 0;
}

void net_cni_free(struct net_cni *n)
{
	if (!n)
		return;
	free(n->conf_dir);
	strv_free(n->bin_dirs);
	free(n->cache_dir);
	free(n->stats);
	free(n);
}

static const char *const op_names[NET_OP_COUNT] = {"ADD", "DEL", "CHECK"};

const char *net_op_name(enum net_op op)
{
	return op < NET_OP_COUNT ? op_names[op] : "?";
}

void net_cni_stats_get(struct net_cni *n, struct net_cni_stats *ret)
{
	for (int i = 0; i < NET_OP_COUNT; i++) {
		mx_hist_snapshot(&n->stats->duration[i], &ret->duration[i]);
		ret->failures[i] = mx_get(&n->stats->failures[i]);
	}
}

static int op_of(const char *command)
{
	for (int i = 0; i < NET_OP_COUNT; i++)
		if (streq(op_names[i], command))
			return i;
	return -1;
}

bool net_cni_configured(struct net_cni *n)
{
	return net_config_present(n->conf_dir);
}

/* ---- the record of one attachment ---- */

struct record {
	char *id, *ifname, *netns, *args;
	struct net_conflist *conf;
	yajl_val runtime_config; /* owned by tree */
	yajl_val result;	 /* owned by tree; NULL until ADD completed */
	yajl_val tree;
};

static void record_free(struct record *r)
{
	if (!r)
		return;
	free(r->id);
	free(r->ifname);
	free(r->netns);
	free(r->args);
	net_conflist_free(r->conf);
	if (r->tree)
		yajl_tree_free(r->tree);
	free(r);
}
static inline void record_freep(struct record **r)
{
	record_free(*r);
}

static char *record_path(const struct net_cni *n, const char *id)
{
	return xasprintf("%s/%s.json", n->cache_dir, id);
}

static int record_write(const struct net_cni *n, const char *id, const char *ifname,
			const char *netns, const char *args, const struct net_conflist *conf,
			const char *runtime_config, yajl_val result, struct husk_error *err)
{
	_cleanup_json_ yajl_val rc = NULL;
	if (json_parse(runtime_config, strlen(runtime_config), "runtimeConfig", &rc, err) < 0)
		return -err->code;
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	json_kv_str(g, "kind", RECORD_KIND);
	json_kv_str(g, "containerId", id);
	json_kv_str(g, "ifName", ifname);
	json_kv_str(g, "netns", netns);
	json_kv_str(g, "cniArgs", args);
	json_kv_str(g, "networkName", conf->name);
	json_kv_str(g, "configPath", conf->path);
	json_kv_str(g, "config", conf->text);
	json_key(g, "runtimeConfig");
	json_gen_tree(g, rc);
	if (result) {
		json_key(g, "result");
		json_gen_tree(g, result);
	}
	yajl_gen_map_close(g);
	const unsigned char *buf;
	size_t len;
	yajl_gen_get_buf(g, &buf, &len);
	_cleanup_free_ char *path = record_path(n, id);
	if (fs_write_atomic(path, buf, len, 0600, err) < 0)
		return husk_error_prefix(err, "record network attachment of '%s'", id);
	return 0;
}

static int record_read(const struct net_cni *n, const char *id, struct record **ret,
		       struct husk_error *err)
{
	_cleanup_free_ char *path = record_path(n, id);
	_cleanup_(record_freep) struct record *r = xnew(struct record, 1);
	int rc = json_parse_file(path, RECORD_MAX_SIZE, &r->tree, err);
	if (rc == -ENOENT)
		return husk_error_set(err, ENOENT, "pod '%s' has no network attachment", id);
	if (rc < 0)
		return -err->code;
	const char *kind = json_get_string(r->tree, "kind");
	const char *ifname = json_get_string(r->tree, "ifName");
	const char *netns = json_get_string(r->tree, "netns");
	const char *args = json_get_string(r->tree, "cniArgs");
	const char *config = json_get_string(r->tree, "config");
	const char *config_path = json_get_string(r->tree, "configPath");
	if (!streq(kind, RECORD_KIND) || !ifname || !netns || !args || !config)
		return husk_error_set(err, EINVAL, "network attachment record '%s' is damaged",
				      path);
	if (net_conflist_parse(config, strlen(config), config_path ? config_path : path, &r->conf,
			       err) < 0)
		return husk_error_prefix(err, "network attachment record '%s'", path);
	r->id = xstrdup(id);
	r->ifname = xstrdup(ifname);
	r->netns = xstrdup(netns);
	r->args = xstrdup(args);
	r->runtime_config = json_get(r->tree, "runtimeConfig");
	yajl_val res = json_get(r->tree, "result");
	r->result = YAJL_IS_OBJECT(res) ? res : NULL;
	*ret = steal_ptr(&r);
	return 0;
}

static int record_remove(const struct net_cni *n, const char *id, struct husk_error *err)
{
	_cleanup_free_ char *path = record_path(n, id);
	if (unlink(path) < 0 && errno != ENOENT)
		return husk_error_errno(err, errno, "remove '%s'", path);
	return 0;
}

/* ---- plugin calls ---- */

/* The stdin of one plugin: its own config with the list's name and
 * version, the capability arguments it asked for, prevResult, and extra
 * members (GC's attachment list). */
static char *plugin_stdin(const struct net_conflist *c, const struct net_plugin_conf *p,
			  yajl_val runtime_config, yajl_val prev, const char *extra_key,
			  yajl_val extra)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	bool caps = false;
	for (size_t i = 0;
	     runtime_config && YAJL_IS_OBJECT(runtime_config) && i < runtime_config->u.object.len;
	     i++)
		caps = caps ||
		       YAJL_IS_TRUE(json_get(p->capabilities, runtime_config->u.object.keys[i]));
	yajl_gen_map_open(g);
	json_kv_str(g, "cniVersion", c->cni_version);
	json_kv_str(g, "name", c->name);
	yajl_val conf = p->conf;
	for (size_t i = 0; i < conf->u.object.len; i++) {
		const char *k = conf->u.object.keys[i];
		if (streq(k, "cniVersion") || streq(k, "cniVersions") || streq(k, "name") ||
		    streq(k, "prevResult") || (caps && streq(k, "runtimeConfig")) ||
		    (extra_key && streq(k, extra_key)))
			continue;
		json_key(g, k);
		json_gen_tree(g, conf->u.object.values[i]);
	}
	if (caps) {
		json_key(g, "runtimeConfig");
		yajl_gen_map_open(g);
		for (size_t i = 0; i < runtime_config->u.object.len; i++) {
			const char *k = runtime_config->u.object.keys[i];
			if (!YAJL_IS_TRUE(json_get(p->capabilities, k)))
				continue;
			json_key(g, k);
			json_gen_tree(g, runtime_config->u.object.values[i]);
		}
		yajl_gen_map_close(g);
	}
	if (prev) {
		json_key(g, "prevResult");
		json_gen_tree(g, prev);
	}
	if (extra_key) {
		json_key(g, extra_key);
		json_gen_tree(g, extra);
	}
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}

struct call {
	const char *command;
	const char *id, *netns, *ifname, *args;
	yajl_val runtime_config;
	const struct husk_cancel *cancel;
};

static int run_plugin(const struct net_cni *n, const struct net_conflist *c,
		      const struct net_plugin_conf *p, const struct call *call, yajl_val prev,
		      const char *extra_key, yajl_val extra, char **ret_out, struct husk_error *err)
{
	_cleanup_free_ char *path = NULL;
	if (net_plugin_find(n->bin_dirs, p->type, &path, err) < 0)
		return -err->code;
	_cleanup_free_ char *in = plugin_stdin(c, p, call->runtime_config, prev, extra_key, extra);
	struct net_exec x = {
	    .command = call->command,
	    .container_id = call->id,
	    .netns = call->netns,
	    .ifname = call->ifname,
	    .args = call->args,
	    .bin_dirs = n->bin_dirs,
	    .timeout_ms = n->timeout_ms,
	    .cancel = call->cancel,
	};
	_cleanup_free_ char *out = NULL;
	long long t0 = now_mono_ns();
	int r = net_plugin_exec(path, &x, in, strlen(in), &out, NULL, err);
	int op = op_of(call->command);
	if (op >= 0) {
		mx_hist_observe_ns(&n->stats->duration[op], now_mono_ns() - t0);
		if (r < 0)
			mx_inc(&n->stats->failures[op], 1);
	}
	if (r < 0)
		return -err->code;
	if (ret_out)
		*ret_out = steal_ptr(&out);
	return 0;
}

static bool blank(const char *s)
{
	return !s || s[strspn(s, " \t\r\n")] == '\0';
}

/* ADD through the chain; *ret_result is the last plugin's result in the
 * list's version. */
static int add_chain(const struct net_cni *n, const struct net_conflist *c, const struct call *call,
		     yajl_val *ret_result, struct husk_error *err)
{
	_cleanup_json_ yajl_val prev = NULL;
	int want = net_version_num(c->cni_version);
	for (size_t i = 0; i < c->n_plugins; i++) {
		const struct net_plugin_conf *p = &c->plugins[i];
		_cleanup_free_ char *out = NULL;
		if (run_plugin(n, c, p, call, prev, NULL, NULL, &out, err) < 0)
			return -err->code;
		if (blank(out)) {
			if (prev)
				continue; /* nothing to add: keep the chain's result */
			return husk_error_set(err, EIO, "CNI plugin '%s' ADD returned no result",
					      p->type);
		}
		_cleanup_json_ yajl_val tree = NULL;
		_cleanup_(net_result_freep) struct net_result *res = NULL;
		if (json_parse(out, strlen(out), "result", &tree, err) < 0 ||
		    net_result_from_tree(tree, &res, err) < 0)
			return husk_error_prefix(err, "CNI plugin '%s' ADD", p->type);
		if (net_version_num(res->cni_version) != want && want >= 300) {
			/* The next plugin expects the list's version. */
			_cleanup_free_ char *conv = net_result_to_json(res, c->cni_version);
			yajl_tree_free(tree);
			tree = NULL;
			if (json_parse(conv, strlen(conv), "converted result", &tree, err) < 0)
				return -err->code;
		}
		if (prev)
			yajl_tree_free(prev);
		prev = steal_ptr(&tree);
	}
	*ret_result = steal_ptr(&prev);
	return 0;
}

/* DEL through the chain in reverse. Every plugin runs even after one
 * failed, so each releases what it can; the first error is returned. */
static int del_chain(const struct net_cni *n, const struct net_conflist *c, const struct call *call,
		     yajl_val result, struct husk_error *err)
{
	/* prevResult on DEL came with 0.4.0. */
	yajl_val prev = net_version_num(c->cni_version) >= 400 ? result : NULL;
	int first = 0;
	for (size_t i = c->n_plugins; i-- > 0;) {
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (run_plugin(n, c, &c->plugins[i], call, prev, NULL, NULL, NULL, &e) < 0 &&
		    !first)
			first = husk_error_move(err, &e);
	}
	return first;
}

/* A pin whose namespace is gone (a reboot, a lost mount) is no netns:
 * plugins get an empty CNI_NETNS and release what they hold anyway. */
static const char *usable_netns(const char *path)
{
	struct statfs st;
	if (isempty(path) || statfs(path, &st) < 0 || st.f_type != NSFS_MAGIC)
		return "";
	return path;
}

static int load_ready_config(const struct net_cni *n, struct net_conflist **ret,
			     struct husk_error *err)
{
	_cleanup_(net_conflist_freep) struct net_conflist *c = NULL;
	if (net_conflist_find(n->conf_dir, &c, err) < 0)
		return husk_error_set(err, EAGAIN, "network not ready: %s", husk_error_msg(err));
	for (size_t i = 0; i < c->n_plugins; i++) {
		_cleanup_free_ char *path = NULL;
		if (net_plugin_find(n->bin_dirs, c->plugins[i].type, &path, err) < 0)
			return husk_error_set(err, EAGAIN, "network not ready: CNI config '%s': %s",
					      c->path, husk_error_msg(err));
	}
	*ret = steal_ptr(&c);
	return 0;
}

int net_cni_setup(struct net_cni *n, const struct net_pod *pod, struct net_result **ret,
		  struct husk_error *err)
{
	if (!husk_obj_id_valid(pod->id))
		return husk_error_set(err, EINVAL, "pod id '%s' is not valid for CNI",
				      pod->id ? pod->id : "");
	if (isempty(pod->netns))
		return husk_error_set(err, EINVAL, "pod '%s': no network namespace", pod->id);
	const char *ifname = isempty(pod->ifname) ? NET_DEFAULT_IFNAME : pod->ifname;
	_cleanup_free_ char *rpath = record_path(n, pod->id);
	if (fs_exists(rpath))
		return husk_error_set(err, EEXIST, "pod '%s' already has a network attachment",
				      pod->id);
	_cleanup_(net_conflist_freep) struct net_conflist *c = NULL;
	_cleanup_free_ char *args = NULL, *rc_text = NULL;
	_cleanup_json_ yajl_val rc = NULL;
	if (load_ready_config(n, &c, err) < 0 || net_cni_args(pod, &args, err) < 0 ||
	    net_runtime_config(pod, &rc_text, err) < 0 ||
	    json_parse(rc_text, strlen(rc_text), "runtimeConfig", &rc, err) < 0)
		return -err->code;

	/* Recorded before ADD: a crash in the middle leaves a record that
	 * teardown or GC turn into a DEL. */
	if (record_write(n, pod->id, ifname, pod->netns, args, c, rc_text, NULL, err) < 0)
		return -err->code;
	struct call call = {
	    .command = "ADD",
	    .id = pod->id,
	    .netns = pod->netns,
	    .ifname = ifname,
	    .args = args,
	    .runtime_config = rc,
	    .cancel = pod->cancel,
	};
	_cleanup_json_ yajl_val result = NULL;
	_cleanup_(net_result_freep) struct net_result *res = NULL;
	int r = add_chain(n, c, &call, &result, err);
	if (r == 0)
		r = net_result_from_tree(result, &res, err);
	if (r == 0)
		r = record_write(n, pod->id, ifname, pod->netns, args, c, rc_text, result, err);
	if (r < 0) {
		husk_error_prefix(err, "network '%s'", c->name);
		call.command = "DEL";
		call.cancel = NULL; /* undoing is never cut short */
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (del_chain(n, c, &call, NULL, &e) == 0)
			record_remove(n, pod->id, &e);
		if (e.msg)
			husk_error_set(err, err->code, "%s (and cleaning up: %s)", err->msg, e.msg);
		return -err->code;
	}
	*ret = steal_ptr(&res);
	return 0;
}

int net_cni_teardown(struct net_cni *n, const char *id, const char *netns, struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "pod id '%s' is not valid for CNI",
				      id ? id : "");
	_cleanup_(record_freep) struct record *rec = NULL;
	int r = record_read(n, id, &rec, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		return 0;
	}
	if (r < 0)
		return r;
	struct call call = {
	    .command = "DEL",
	    .id = id,
	    .netns = usable_netns(netns ? netns : rec->netns),
	    .ifname = rec->ifname,
	    .args = rec->args,
	    .runtime_config = rec->runtime_config,
	};
	if (del_chain(n, rec->conf, &call, rec->result, err) < 0 || record_remove(n, id, err) < 0)
		return husk_error_prefix(err, "network '%s'", rec->conf->name);
	return 0;
}

/* Whether a CNI result has an address of the family (IPv6 when v6). */
static bool result_has_family(yajl_val result, bool v6)
{
	yajl_val ips = json_get(result, "ips");
	if (!YAJL_IS_ARRAY(ips))
		return false;
	for (size_t i = 0; i < ips->u.array.len; i++) {
		const char *a = json_get_string(ips->u.array.values[i], "address");
		if (a && (strchr(a, ':') != NULL) == v6)
			return true;
	}
	return false;
}

/* A CHECK failure about an IP family the pod has no address of says nothing
 * of the pod's network: portmap (Debian 12's v1.1 and others) looks for
 * the pod's DNAT chain in both iptables and ip6tables whatever its
 * addresses, so an IPv4-only pod with a hostPort always "fails" the IPv6
 * half. */
static bool check_failure_moot(yajl_val result, const char *msg)
{
	bool about_v6 = strstr(msg, "ipv6") || strstr(msg, "IPv6") || strstr(msg, "ip6tables");
	bool about_v4 = strstr(msg, "ipv4") || strstr(msg, "IPv4");
	if (about_v6 == about_v4)
		return false;
	return !result_has_family(result, about_v6);
}

int net_cni_check(struct net_cni *n, const char *id, struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "pod id '%s' is not valid for CNI",
				      id ? id : "");
	_cleanup_(record_freep) struct record *rec = NULL;
	if (record_read(n, id, &rec, err) < 0)
		return -err->code;
	if (!rec->result)
		return husk_error_set(err, ENOENT, "pod '%s': network ADD did not complete", id);
	const struct net_conflist *c = rec->conf;
	if (net_version_num(c->cni_version) < 400 || c->disable_check)
		return 0;
	struct call call = {
	    .command = "CHECK",
	    .id = id,
	    .netns = rec->netns,
	    .ifname = rec->ifname,
	    .args = rec->args,
	    .runtime_config = rec->runtime_config,
	};
	for (size_t i = 0; i < c->n_plugins; i++) {
		if (run_plugin(n, c, &c->plugins[i], &call, rec->result, NULL, NULL, NULL, err) ==
		    0)
			continue;
		if (!check_failure_moot(rec->result, husk_error_msg(err)))
			return husk_error_prefix(err, "network '%s'", c->name);
		husk_error_clear(err);
	}
	return 0;
}

int net_cni_result(struct net_cni *n, const char *id, struct net_result **ret,
		   struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "pod id '%s' is not valid for CNI",
				      id ? id : "");
	_cleanup_(record_freep) struct record *rec = NULL;
	if (record_read(n, id, &rec, err) < 0)
		return -err->code;
	if (!rec->result)
		return husk_error_set(err, ENOENT, "pod '%s': network ADD did not complete", id);
	return net_result_from_tree(rec->result, ret, err);
}

int net_cni_list(struct net_cni *n, char ***ret_ids, struct husk_error *err)
{
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(n->cache_dir, ".json", &names, err) < 0)
		return -err->code;
	char **ids = xnew(char *, 1);
	for (size_t i = 0; names[i]; i++) {
		_cleanup_free_ char *id = xstrndup(names[i], strlen(names[i]) - strlen(".json"));
		if (husk_obj_id_valid(id))
			ids = strv_append(ids, id);
	}
	*ret_ids = ids;
	return 0;
}

int net_cni_status(struct net_cni *n, char **ret_path, struct husk_error *err)
{
	_cleanup_(net_conflist_freep) struct net_conflist *c = NULL;
	if (load_ready_config(n, &c, err) < 0)
		return -err->code;
	if (net_version_num(c->cni_version) >= 10100) {
		struct call call = {.command = "STATUS"};
		for (size_t i = 0; i < c->n_plugins; i++)
			if (run_plugin(n, c, &c->plugins[i], &call, NULL, NULL, NULL, NULL, err) <
			    0)
				return husk_error_set(err, EAGAIN,
						      "network not ready: network '%s': %s",
						      c->name, husk_error_msg(err));
	}
	if (ret_path)
		*ret_path = steal_ptr(&c->path);
	return 0;
}

static bool in_strv(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

int net_cni_gc(struct net_cni *n, char *const *valid_ids, char ***ret_problems,
	       struct husk_error *err)
{
	_cleanup_strv_ char **ids = NULL;
	if (net_cni_list(n, &ids, err) < 0)
		return -err->code;
	char **problems = xnew(char *, 1);
	_cleanup_(net_conflist_freep) struct net_conflist *c = NULL;
	_cleanup_error_ struct husk_error ce = HUSK_ERROR_INIT;
	if (net_conflist_find(n->conf_dir, &c, &ce) < 0)
		c = NULL;
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_array_open(g);
	for (size_t i = 0; ids[i]; i++) {
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (!in_strv(valid_ids, ids[i])) {
			if (net_cni_teardown(n, ids[i], NULL, &e) < 0) {
				_cleanup_free_ char *p = xasprintf("pod %s: %s", ids[i], e.msg);
				problems = strv_append(problems, p);
			}
			continue;
		}
		_cleanup_(record_freep) struct record *rec = NULL;
		if (record_read(n, ids[i], &rec, &e) < 0) {
			problems = strv_append(problems, e.msg);
			continue;
		}
		/* GC is per network: list only this network's attachments. */
		if (!c || !streq(rec->conf->name, c->name))
			continue;
		yajl_gen_map_open(g);
		json_kv_str(g, "containerID", rec->id);
		json_kv_str(g, "ifname", rec->ifname);
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);

	/* GC proper, a CNI 1.1 verb, tells the plugins which attachments are
	 * still valid so they can drop whatever else they hold. */
	if (c && net_version_num(c->cni_version) >= 10100 && !c->disable_gc) {
		_cleanup_free_ char *text = json_gen_steal(g);
		_cleanup_json_ yajl_val attachments = NULL;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (json_parse(text, strlen(text), "attachments", &attachments, &e) == 0) {
			struct call call = {.command = "GC"};
			for (size_t i = 0; i < c->n_plugins; i++) {
				_cleanup_error_ struct husk_error pe = HUSK_ERROR_INIT;
				if (run_plugin(n, c, &c->plugins[i], &call, NULL,
					       "cni.dev/valid-attachments", attachments, NULL,
					       &pe) < 0)
					problems = strv_append(problems, pe.msg);
			}
		}
	}
	*ret_problems = problems;
	return 0;
}
