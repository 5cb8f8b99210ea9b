/* An OCI runtime's command line as husk runs it (husk-shim's create,
 * start and delete; huskd's exec and update), and the cgroupsPath it is
 * given with --systemd-cgroup. */
#include <string.h>

#include "runtime/oci.h"

char **ctr_oci_argv(const struct ctr_spec *s, const char *log, const char *const *verb)
{
	char **v = strv_append(xnew(char *, 1), s->oci_path);
	for (size_t i = 0; s->oci_args && s->oci_args[i]; i++)
		v = strv_append(v, s->oci_args[i]);
	v = strv_append(v, "--root");
	v = strv_append(v, s->oci_root);
	if (log) {
		v = strv_append(v, "--log");
		v = strv_append(v, log);
	}
	if (s->oci_systemd_cgroup)
		v = strv_append(v, "--systemd-cgroup");
	for (size_t i = 0; verb[i]; i++)
		v = strv_append(v, verb[i]);
	return v;
}

char *ctr_oci_systemd_cgroups_path(const char *cg_path)
{
	static const char scope_prefix[] = "husk-", scope_suffix[] = ".scope";
	const char *scope = strrchr(cg_path, '/');
	if (!scope || scope == cg_path)
		return NULL;
	scope++;
	size_t n = strlen(scope);
	if (!startswith(scope, scope_prefix) || !endswith(scope, scope_suffix) ||
	    n <= strlen(scope_prefix) + strlen(scope_suffix))
		return NULL;
	/* The slice is the last component before the scope. */
	const char *slice_end = scope - 1;
	const char *slice = slice_end;
	while (slice > cg_path && slice[-1] != '/')
		slice--;
	size_t slice_len = (size_t)(slice_end - slice);
	if (slice_len <= 6 || memcmp(slice_end - 6, ".slice", 6) != 0)
		return NULL;
	return xasprintf("%.*s:husk:%.*s", (int)(slice_end - slice), slice,
			 (int)(n - strlen(scope_prefix) - strlen(scope_suffix)),
			 scope + strlen(scope_prefix));
}
