/* Cgroup naming per driver: the cgroupfs driver takes the kubelet's
 * cgroup_parent as a path, the systemd driver expands slice names
 * ("a-b.slice" -> "a.slice/a-b.slice") and puts containers in scopes. */
#include "runtime/cgroup/internal.h"

#include <errno.h>
#include <string.h>

static int check_id(const char *what, const char *id, struct husk_error *err)
{
	if (!husk_obj_id_valid(id))
		return husk_error_set(err, EINVAL, "%s id '%.*s' is invalid", what, CG_ID_MAX,
				      id ? id : "");
	return 0;
}

/* cgroupfs: the parent is the path itself. */

static int cgroupfs_pod_path(const char *parent, const char *dflt, const char *pod_id, char **ret,
			     struct husk_error *err)
{
	if (isempty(parent)) {
		int r = check_id("pod", pod_id, err);
		if (r < 0)
			return r;
		_cleanup_free_ char *p = xasprintf("%s/%s", dflt, pod_id);
		return cg_path_normalize(p, ret, err);
	}
	return cg_path_normalize(parent, ret, err);
}

static int cgroupfs_container_path(const char *pod_path, const char *ctr_id, char **ret,
				   struct husk_error *err)
{
	_cleanup_free_ char *pod = NULL;
	int r = cg_path_normalize(pod_path, &pod, err);
	if (r < 0)
		return r;
	if ((r = check_id("container", ctr_id, err)) < 0)
		return r;
	_cleanup_free_ char *p = xasprintf("%s/%s", pod, ctr_id);
	return cg_path_normalize(p, ret, err);
}

/* systemd: "a-b-c.slice" lives in "a.slice/a-b.slice/a-b-c.slice". */

static int expand_slice(const char *name, char **ret, struct husk_error *err)
{
	const char *unit_chars =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.-\\";
	size_t len = strlen(name);
	if (!endswith(name, ".slice") || len > 255 || strspn(name, unit_chars) != len)
		return husk_error_set(err, EINVAL, "systemd slice '%.255s' is invalid", name);
	if (streq(name, "-.slice"))
		return husk_error_set(err, EINVAL, "systemd slice '%s' names the root", name);
	size_t stem = len - strlen(".slice");
	if (stem == 0 || name[0] == '-' || name[stem - 1] == '-' || strstr(name, "--"))
		return husk_error_set(err, EINVAL, "systemd slice '%s' is invalid", name);
	char *out = xstrdup("");
	for (size_t i = 0; i < stem; i++) {
		if (name[i] != '-')
			continue;
		char *n = xasprintf("%s%.*s.slice/", out, (int)i, name);
		free(out);
		out = n;
	}
	char *full = xasprintf("%s%s", out, name);
	free(out);
	int r = cg_path_normalize(full, ret, err);
	free(full);
	return r;
}

static int systemd_pod_path(const char *parent, const char *dflt, const char *pod_id, char **ret,
			    struct husk_error *err)
{
	if (isempty(parent)) {
		int r = check_id("pod", pod_id, err);
		if (r < 0)
			return r;
		if (!endswith(dflt, ".slice") || streq(dflt, ".slice"))
			return husk_error_set(err, EINVAL, "systemd slice '%s' is invalid", dflt);
		/* "husk.slice" holds "husk-<id>.slice". */
		_cleanup_free_ char *slice = xasprintf(
		    "%.*s-%s.slice", (int)(strlen(dflt) - strlen(".slice")), dflt, pod_id);
		return expand_slice(slice, ret, err);
	}
	/* An already expanded path, as some tools pass it. */
	if (strchr(parent, '/'))
		return cg_path_normalize(parent, ret, err);
	return expand_slice(parent, ret, err);
}

static int systemd_container_path(const char *pod_path, const char *ctr_id, char **ret,
				  struct husk_error *err)
{
	_cleanup_free_ char *pod = NULL;
	int r = cg_path_normalize(pod_path, &pod, err);
	if (r < 0)
		return r;
	if ((r = check_id("container", ctr_id, err)) < 0)
		return r;
	_cleanup_free_ char *p = xasprintf("%s/husk-%s.scope", pod, ctr_id);
	return cg_path_normalize(p, ret, err);
}

const struct cg_naming cg_naming_cgroupfs = {
    .driver = CG_DRIVER_CGROUPFS,
    .name = "cgroupfs",
    .pod_path = cgroupfs_pod_path,
    .default_parent = "husk",
    .container_path = cgroupfs_container_path,
};

const struct cg_naming cg_naming_systemd = {
    .driver = CG_DRIVER_SYSTEMD,
    .name = "systemd",
    .pod_path = systemd_pod_path,
    .default_parent = "husk.slice",
    .container_path = systemd_container_path,
};
