/* A spec's seccomp filter: its profile compiled with libseccomp for the
 * capabilities the container will really have. Kept apart from the rest of
 * the launcher so that husk-shim, which only installs filter files, links
 * neither this nor libseccomp. */
#include <errno.h>

#include "runtime/launcher/launcher.h"

int ctr_spec_seccomp_compile(const struct ctr_spec *spec, struct lc_seccomp_bpf **ret,
			     struct husk_error *err)
{
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *profile = NULL;
	int r;
	if (spec->seccomp == LC_SECCOMP_RUNTIME_DEFAULT) {
		profile = lc_seccomp_runtime_default();
	} else if (spec->seccomp == LC_SECCOMP_LOCALHOST) {
		if ((r = lc_seccomp_parse_file(spec->seccomp_profile, &profile, err)) < 0)
			return r;
	} else {
		*ret = NULL;
		return 0;
	}
	/* The launcher drops from the bounding set what husk does not hold;
	 * the capability-conditioned rules must see the same set. */
	uint64_t caps = spec->caps.bounding & lc_caps_all();
	uint64_t own_perm, own_bnd;
	if (lc_caps_get_own(&own_perm, &own_bnd) == 0)
		caps &= own_bnd;
	return lc_seccomp_compile(profile, caps, ret, err);
}

int ctr_spec_seccomp_write(const struct ctr_spec *spec, const char *path, struct husk_error *err)
{
	_cleanup_(lc_seccomp_bpf_freep) struct lc_seccomp_bpf *b = NULL;
	int r = ctr_spec_seccomp_compile(spec, &b, err);
	if (r < 0 || !b)
		return r;
	return lc_seccomp_bpf_write(b, path, err);
}
