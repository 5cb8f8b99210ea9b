/* Locating and validating CNI network configuration files. */
#include <errno.h>
#include <string.h>

#include "common/fs.h"
#include "common/json.h"
#include "network/network.h"

#define CNI_CONFIG_MAX_SIZE (1 << 20)

static bool is_config_name(const char *name)
{
	return endswith(name, ".conflist") || endswith(name, ".conf") || endswith(name, ".json");
}

static int check_config(const char *path, struct husk_error *err)
{
	_cleanup_json_ yajl_val tree = NULL;
	if (json_parse_file(path, CNI_CONFIG_MAX_SIZE, &tree, err) < 0)
		return -EINVAL;
	if (isempty(json_get_string(tree, "name")))
		return husk_error_set(err, EINVAL, "CNI config '%s': no network name", path);
	yajl_val plugins = json_get(tree, "plugins");
	if (plugins) {
		if (!YAJL_IS_ARRAY(plugins) || plugins->u.array.len == 0)
			return husk_error_set(err, EINVAL, "CNI config '%s': empty plugin list",
					      path);
		for (size_t i = 0; i < plugins->u.array.len; i++)
			if (isempty(json_get_string(plugins->u.array.values[i], "type")))
				return husk_error_set(err, EINVAL,
						      "CNI config '%s': plugin %zu has no type",
						      path, i);
	} else if (isempty(json_get_string(tree, "type"))) {
		return husk_error_set(err, EINVAL, "CNI config '%s': no plugin type", path);
	}
	return 0;
}

int net_find_config(const char *conf_dir, char **ret_path, struct husk_error *err)
{
	_cleanup_strv_ char **names = NULL;
	if (fs_list_dir(conf_dir, NULL, &names, err) < 0)
		return husk_error_set(err, ENOENT, "%s", husk_error_msg(err));
	_cleanup_error_ struct husk_error first = HUSK_ERROR_INIT;
	for (size_t i = 0; names[i]; i++) {
		if (!is_config_name(names[i]))
			continue;
		_cleanup_free_ char *path = xasprintf("%s/%s", conf_dir, names[i]);
		struct husk_error e = HUSK_ERROR_INIT;
		if (check_config(path, &e) == 0) {
			*ret_path = steal_ptr(&path);
			return 0;
		}
		if (!first.msg)
			husk_error_move(&first, &e);
		husk_error_clear(&e);
	}
	if (first.msg)
		return husk_error_set(err, ENOENT, "%s", first.msg);
	return husk_error_set(err, ENOENT, "no network config found in '%s'", conf_dir);
}
