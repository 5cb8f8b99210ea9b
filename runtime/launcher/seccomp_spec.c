/* A spec's seccomp filter: its profile compiled with libseccomp for the
 * capabilities the container will really have. Kept apart from the rest of
 * the launcher so that husk-shim, which only installs filter files, links
 * neither this nor libseccomp. */
#include <errno.h>

#include "runtime/launcher/launcher.h"

int ctr_spec_seccomp_compile(const struct ctr_spec *spec, struct ctr_seccomp_bpf **ret,
			     struct husk_error *err)
{
	_cleanup_(ctr_seccomp_profile_freep) struct ctr_seccomp_profile *profile = NULL;
	int r;
	if (spec->seccomp == CTR_SECCOMP_RUNTIME_DEFAULT) {
		profile = ctr_seccomp_runtime_default();
	} else if (spec->seccomp == CTR_SECCOMP_LOCALHOST) {
		if ((r = ctr_seccomp_parse_file(spec->seccomp_profile, &profile, err)) < 0)
			return r;
	} else {
		*ret = NULL;
		return 0;
	}
	/* The launcher drops from the bounding set what husk does not hold;
	 * the capability-conditioned rules must see the same set. */
	uint64_t caps = spec->caps.bounding & ctr_caps_all();
	uint64_t own_perm, own_bnd;
	if (ctr_caps_get_own(&own_perm, &own_bnd) == 0)
		caps &= own_bnd;
	return ctr_seccomp_compile(profile, caps, ret, err);
}

int ctr_spec_seccomp_write(const struct ctr_spec *spec, const char *path, struct husk_error *err)
{
	_cleanup_(ctr_seccomp_bpf_freep) struct ctr_seccomp_bpf *b = NULL;
	int r = ctr_spec_seccomp_compile(spec, &b, err);
	if (r < 0 || !b)
		return r;
	return ctr_seccomp_bpf_write(b, path, err);
}
