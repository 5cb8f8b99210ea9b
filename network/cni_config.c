/* Locating, parsing and validating CNI network configuration files: config
 * lists and single plugin configs, version negotiation, plugin lookup. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "network/network.h"

void net_conflist_free(struct net_conflist *c)
{
	if (!c)
		return;
	free(c->path);
	free(c->name);
	free(c->cni_version);
	free(c->plugins);
	free(c->text);
	if (c->tree)
		yajl_tree_free(c->tree);
	free(c);
}

static bool valid_network_name(const char *s)
{
	if (isempty(s) || strlen(s) > 255)
		return false;
	for (const char *p = s; *p; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9');
		if (!alnum && (p == s || !strchr("_.-", *p)))
			return false;
	}
	return true;
}

static bool plain_file_name(const char *s)
{
	return !isempty(s) && !strchr(s, '/') && !streq(s, ".") && !streq(s, "..") &&
	       strlen(s) < 256;
}

static bool json_true(yajl_val obj, const char *key)
{
	return YAJL_IS_TRUE(json_get(obj, key));
}

/* The version to speak: the highest of cniVersions (1.1) husk supports,
 * else cniVersion. */
static int pick_version(yajl_val tree, const char *what, char **ret, struct husk_error *err)
{
	yajl_val list = json_get(tree, "cniVersions");
	const char *best = NULL;
	if (list && !YAJL_IS_NULL(list)) {
		if (!YAJL_IS_ARRAY(list))
			return husk_error_set(err, EINVAL,
					      "CNI config '%s': cniVersions is not an array", what);
		for (size_t i = 0; i < list->u.array.len; i++) {
			yajl_val v = list->u.array.values[i];
			if (!YAJL_IS_STRING(v) || !net_version_supported(v->u.string))
				continue;
			if (!best || net_version_num(v->u.string) > net_version_num(best))
				best = v->u.string;
		}
	}
	const char *ver = json_get_string(tree, "cniVersion");
	if (!best && ver && net_version_supported(ver))
		best = ver;
	if (!best) {
		if (!ver && !list)
			return husk_error_set(err, EINVAL, "CNI config '%s': no cniVersion", what);
		return husk_error_set(err, EINVAL,
				      "CNI config '%s': version '%s' is not supported "
				      "(husk speaks CNI 0.1.0 to 1.1.0)",
				      what, ver ? ver : "(cniVersions)");
	}
	*ret = xstrdup(best);
	return 0;
}

static int parse_plugin(yajl_val v, size_t i, const char *what, struct net_plugin_conf *ret,
			struct husk_error *err)
{
	if (!YAJL_IS_OBJECT(v))
		return husk_error_set(err, EINVAL, "CNI config '%s': plugin %zu is not an object",
				      what, i);
	const char *type = json_get_string(v, "type");
	if (isempty(type))
		return husk_error_set(err, EINVAL, "CNI config '%s': plugin %zu has no type", what,
				      i);
	if (!plain_file_name(type))
		return husk_error_set(err, EINVAL,
				      "CNI config '%s': plugin type '%s' is not a file name", what,
				      type);
	yajl_val caps = json_get(v, "capabilities");
	if (caps && !YAJL_IS_NULL(caps) && !YAJL_IS_OBJECT(caps))
		return husk_error_set(err, EINVAL,
				      "CNI config '%s': plugin '%s': capabilities is not an object",
				      what, type);
	*ret = (struct net_plugin_conf){.type = type, .conf = v, .capabilities = caps};
	return 0;
}

int net_conflist_parse(const char *text, size_t len, const char *what, struct net_conflist **ret,
		       struct husk_error *err)
{
	_cleanup_(net_conflist_freep) struct net_conflist *c = xnew(struct net_conflist, 1);
	c->path = xstrdup(what);
	c->text = xstrndup(text, len);
	if (json_parse(text, len, what, &c->tree, err) < 0)
		return -err->code;
	if (!YAJL_IS_OBJECT(c->tree))
		return husk_error_set(err, EINVAL, "CNI config '%s': not a JSON object", what);
	const char *name = json_get_string(c->tree, "name");
	if (isempty(name))
		return husk_error_set(err, EINVAL, "CNI config '%s': no network name", what);
	if (!valid_network_name(name))
		return husk_error_set(
		    err, EINVAL, "CNI config '%s': network name '%s' is not valid", what, name);
	c->name = xstrdup(name);
	if (pick_version(c->tree, what, &c->cni_version, err) < 0)
		return -err->code;
	c->disable_check = json_true(c->tree, "disableCheck");
	c->disable_gc = json_true(c->tree, "disableGC");

	yajl_val plugins = json_get(c->tree, "plugins");
	if (plugins) {
		if (!YAJL_IS_ARRAY(plugins) || plugins->u.array.len == 0)
			return husk_error_set(err, EINVAL, "CNI config '%s': empty plugin list",
					      what);
		if (plugins->u.array.len > NET_MAX_PLUGINS)
			return husk_error_set(err, EINVAL, "CNI config '%s': more than %d plugins",
					      what, NET_MAX_PLUGINS);
		c->n_plugins = plugins->u.array.len;
		c->plugins = xnew(struct net_plugin_conf, c->n_plugins);
		for (size_t i = 0; i < c->n_plugins; i++)
			if (parse_plugin(plugins->u.array.values[i], i, what, &c->plugins[i], err) <
			    0)
				return -err->code;
	} else {
		/* A single plugin config: the file is the plugin. */
		if (isempty(json_get_string(c->tree, "type")))
			return husk_error_set(err, EINVAL, "CNI config '%s': no plugin type", what);
		c->n_plugins = 1;
		c->plugins = xnew(struct net_plugin_conf, 1);
		if (parse_plugin(c->tree, 0, what, &c->plugins[0], err) < 0)
			return -err->code;
	}
	if (c->n_plugins > 1 && net_version_num(c->cni_version) < 300)
		return husk_error_set(
		    err, EINVAL,
		    "CNI config '%s': chaining %zu plugins needs version 0.3.0 or "
		    "later, not '%s'",
		    what, c->n_plugins, c->cni_version);
	*ret = steal_ptr(&c);
	return 0;
}

int net_conflist_load(const char *path, struct net_conflist **ret, struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	if (fs_read_file(path, NET_CONFIG_MAX_SIZE, &text, &len, err) < 0)
		return -err->code;
	return net_conflist_parse(text, len, path, ret, err);
}

static bool is_config_name(const char *name)
{
	return name[0] != '.' &&
	       (endswith(name, ".conflist") || endswith(name, ".conf") || endswith(name, ".json"));
}

int net_conflist_find(const char *conf_dir, struct net_conflist **ret, struct husk_error *err)
{
	if (isempty(conf_dir))
		conf_dir = NET_DEFAULT_CONF_DIR;
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(conf_dir, NULL, &names, err) < 0)
		return -err->code;
	_cleanup_error_ struct husk_error first = HUSK_ERROR_INIT;
	for (size_t i = 0; names[i]; i++) {
		if (!is_config_name(names[i]))
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", conf_dir, names[i]);
		struct stat st;
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (net_conflist_load(path, ret, &e) == 0)
			return 0;
		if (!first.msg)
			husk_error_move(&first, &e);
	}
	if (first.msg)
		return husk_error_set(err, EINVAL, "%s", first.msg);
	return husk_error_set(err, ENOENT, "no network config found in '%s'", conf_dir);
}

bool net_config_present(const char *conf_dir)
{
	if (isempty(conf_dir))
		conf_dir = NET_DEFAULT_CONF_DIR;
	_cleanup_strv_ char **names = NULL;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (fs_list_dir(conf_dir, NULL, &names, &e) < 0)
		return true; /* unreadable: let the lookup say why */
	for (size_t i = 0; names[i]; i++)
		if (is_config_name(names[i]))
			return true;
	return false;
}

int net_find_config(const char *conf_dir, char **ret_path, struct husk_error *err)
{
	_cleanup_(net_conflist_freep) struct net_conflist *c = NULL;
	if (net_conflist_find(conf_dir, &c, err) < 0)
		return -err->code;
	*ret_path = steal_ptr(&c->path);
	return 0;
}

int net_plugin_find(char *const *bin_dirs, const char *type, char **ret_path,
		    struct husk_error *err)
{
	if (!plain_file_name(type))
		return husk_error_set(err, EINVAL, "CNI plugin type '%s' is not a file name", type);
	for (size_t i = 0; bin_dirs && bin_dirs[i]; i++) {
		_cleanup_free_ char *p = xasprintf("%s/%s", bin_dirs[i], type);
		struct stat st;
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
			*ret_path = steal_ptr(&p);
			return 0;
		}
	}
	_cleanup_free_ char *dirs = xstrdup("");
	for (size_t i = 0; bin_dirs && bin_dirs[i]; i++) {
		char *d = xasprintf("%s%s%s", dirs, i ? ":" : "", bin_dirs[i]);
		free(dirs);
		dirs = d;
	}
	return husk_error_set(err, ENOENT, "CNI plugin '%s' not found in %s", type,
			      *dirs ? dirs : "(no plugin dirs)");
}
