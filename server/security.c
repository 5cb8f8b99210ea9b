/* CRI security contexts and resources translated for the runtime: what
 * CRI requires of a runtime is checked here, the rest is handed to the
 * runtime's structs (see server/security.h). */
#include "server/security.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "common/fs.h"
#include "common/log.h"
#include "runtime/launcher/launcher.h"
#include "server/translate.h"

/* CRI keeps the string forms of seccomp and AppArmor profiles, deprecated;
 * the kubelet no longer sends them but older clients may. */
static const char *lc_seccomp_path_field(const Runtime__V1__LinuxContainerSecurityContext *sc)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	return sc->seccomp_profile_path;
#pragma GCC diagnostic pop
}

static const char *lc_apparmor_path_field(const Runtime__V1__LinuxContainerSecurityContext *sc)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	return sc->apparmor_profile;
#pragma GCC diagnostic pop
}

static const char *pod_seccomp_path_field(const Runtime__V1__LinuxSandboxSecurityContext *sc)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	return sc->seccomp_profile_path;
#pragma GCC diagnostic pop
}

/* ---- resources ---- */

int srv_resources_from_cri(const Runtime__V1__LinuxContainerResources *r, struct cg_resources *out,
			   int *ret_oom, struct husk_error *err)
{
	cg_resources_init(out);
	if (!r)
		return 0;
	if (r->cpu_period < 0)
		return husk_error_set(err, EINVAL,
				      "linux.resources.cpu_period %" PRId64 " is negative",
				      r->cpu_period);
	if (r->cpu_shares < 0)
		return husk_error_set(err, EINVAL,
				      "linux.resources.cpu_shares %" PRId64 " is negative",
				      r->cpu_shares);
	if (r->oom_score_adj < -1000 || r->oom_score_adj > 1000)
		return husk_error_set(
		    err, EINVAL, "linux.resources.oom_score_adj %" PRId64 " is not in -1000..1000",
		    r->oom_score_adj);
	/* CRI's zero means "not set". */
	if (r->cpu_period)
		out->cpu_period = r->cpu_period;
	if (r->cpu_quota)
		out->cpu_quota = r->cpu_quota < 0 ? CG_MAX : r->cpu_quota;
	if (r->cpu_shares)
		out->cpu_shares = r->cpu_shares;
	if (r->memory_limit_in_bytes)
		out->memory_limit =
		    r->memory_limit_in_bytes < 0 ? CG_MAX : r->memory_limit_in_bytes;
	if (r->memory_swap_limit_in_bytes)
		out->memory_swap_limit =
		    r->memory_swap_limit_in_bytes < 0 ? CG_MAX : r->memory_swap_limit_in_bytes;
	if (!isempty(r->cpuset_cpus))
		out->cpuset_cpus = xstrdup(r->cpuset_cpus);
	if (!isempty(r->cpuset_mems))
		out->cpuset_mems = xstrdup(r->cpuset_mems);
	for (size_t i = 0; i < r->n_hugepage_limits; i++) {
		uint64_t l = r->hugepage_limits[i]->limit;
		cg_resources_add_hugepage(out, r->hugepage_limits[i]->page_size,
					  l > INT64_MAX ? CG_MAX : (int64_t)l);
	}
	for (size_t i = 0; i < r->n_unified; i++)
		cg_resources_add_unified(out, r->unified[i]->key, r->unified[i]->value);
	*ret_oom = (int)r->oom_score_adj;
	return 0;
}

static int64_t add_limit(int64_t a, int64_t b)
{
	if (a == CG_UNSET || a == CG_MAX)
		return a;
	if (b == CG_UNSET || b == CG_MAX || b <= 0)
		return a;
	return a > INT64_MAX - b ? CG_MAX : a + b;
}

int srv_pod_resources_from_cri(const Runtime__V1__LinuxContainerResources *resources,
			       const Runtime__V1__LinuxContainerResources *overhead,
			       struct cg_resources *out, bool *ret_any, struct husk_error *err)
{
	int oom;
	struct cg_resources o;
	cg_resources_init(&o);
	if (srv_resources_from_cri(resources, out, &oom, err) < 0)
		return husk_error_prefix(err, "resources");
	if (srv_resources_from_cri(overhead, &o, &oom, err) < 0) {
		cg_resources_clear(out);
		return husk_error_prefix(err, "overhead");
	}
	/* A request: what the containers ask plus what the pod costs. */
	if (o.cpu_shares != CG_UNSET) {
		int64_t s = out->cpu_shares == CG_UNSET ? 0 : out->cpu_shares;
		s += o.cpu_shares;
		out->cpu_shares = s > 262144 ? 262144 : s;
	}
	/* Limits: only on top of the containers' own. The overhead's quota is
	 * per its own period; bring it to the containers'. */
	if (o.cpu_quota > 0 && out->cpu_quota > 0) {
		int64_t period = out->cpu_period != CG_UNSET ? out->cpu_period : 100000;
		int64_t op = o.cpu_period != CG_UNSET ? o.cpu_period : 100000;
		out->cpu_quota = add_limit(out->cpu_quota, o.cpu_quota * period / op);
	}
	out->memory_limit = add_limit(out->memory_limit, o.memory_limit);
	out->memory_swap_limit = add_limit(out->memory_swap_limit, o.memory_limit);
	for (size_t i = 0; i < out->n_hugepages; i++)
		for (size_t k = 0; k < o.n_hugepages; k++)
			if (streq(out->hugepages[i].page_size, o.hugepages[k].page_size))
				out->hugepages[i].limit =
				    add_limit(out->hugepages[i].limit, o.hugepages[k].limit);
	cg_resources_clear(&o);
	*ret_any = out->cpu_period != CG_UNSET || out->cpu_quota != CG_UNSET ||
		   out->cpu_shares != CG_UNSET || out->memory_limit != CG_UNSET ||
		   out->memory_swap_limit != CG_UNSET || out->cpuset_cpus || out->cpuset_mems ||
		   out->n_hugepages || out->n_unified;
	return 0;
}

/* ---- security contexts ---- */

void srv_ctr_security_clear(struct srv_ctr_security *h)
{
	strv_free(h->caps_add);
	strv_free(h->caps_drop);
	strv_free(h->caps_ambient);
	strv_free(h->masked);
	strv_free(h->readonly);
	free(h->apparmor);
	*h = (struct srv_ctr_security){0};
}

static int id_value(const Runtime__V1__Int64Value *v, const char *field, long long *ret,
		    struct husk_error *err)
{
	if (v->value < 0 || v->value > (int64_t)UINT32_MAX - 1)
		return husk_error_set(err, EINVAL, "%s %" PRId64 " is not a valid id", field,
				      v->value);
	*ret = v->value;
	return 0;
}

static int groups_policy(Runtime__V1__SupplementalGroupsPolicy p, const char *field,
			 bool *ret_strict, struct husk_error *err)
{
	switch (p) {
	case RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Merge:
		*ret_strict = false;
		return 0;
	case RUNTIME__V1__SUPPLEMENTAL_GROUPS_POLICY__Strict:
		*ret_strict = true;
		return 0;
	default:
		return husk_error_set(err, EINVAL, "%s: unknown policy %d", field, (int)p);
	}
}

/* The seccomp profile from the SecurityProfile (preferred) or the
 * deprecated string; a Localhost file must be there. */
static int seccomp_choice(const Runtime__V1__SecurityProfile *p, const char *path_form,
			  int *ret_mode, const char **ret_path, struct husk_error *err)
{
	*ret_mode = LC_SECCOMP_UNCONFINED;
	*ret_path = NULL;
	const char *field = "security_context.seccomp";
	if (p) {
		switch (p->profile_type) {
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__RuntimeDefault:
			*ret_mode = LC_SECCOMP_RUNTIME_DEFAULT;
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Unconfined:
			return 0;
		case RUNTIME__V1__SECURITY_PROFILE__PROFILE_TYPE__Localhost:
			*ret_mode = LC_SECCOMP_LOCALHOST;
			*ret_path = p->localhost_ref;
			field = "security_context.seccomp.localhost_ref";
			break;
		default:
			return husk_error_set(err, EINVAL, "%s: unknown profile type %d", field,
					      (int)p->profile_type);
		}
	} else {
		field = "security_context.seccomp_profile_path";
		if (lc_seccomp_parse_path(path_form, field, ret_mode, ret_path, err) < 0)
			return -err->code;
		if (*ret_mode != LC_SECCOMP_LOCALHOST)
			return 0;
	}
	if (isempty(*ret_path) || (*ret_path)[0] != '/')
		return husk_error_set(err, EINVAL, "%s: '%s' is not an absolute path", field,
				      *ret_path ? *ret_path : "");
	if (!fs_exists(*ret_path))
		return husk_error_set(err, EINVAL, "%s: seccomp profile '%s' does not exist", field,
				      *ret_path);
	return 0;
}

static int apparmor_choice(const struct lc_lsm *lsm, const Runtime__V1__SecurityProfile *p,
			   const char *path_form, char **ret_profile, struct husk_error *err)
{
	int type;
	const char *ref;
	const char *field = "security_context.apparmor";
	if (p) {
		type = (int)p->profile_type;
		ref = p->localhost_ref;
	} else {
		field = "security_context.apparmor_profile";
		if (lc_apparmor_parse_path(path_form, field, &type, &ref, err) < 0)
			return -err->code;
	}
	if (lc_apparmor_profile(lsm, field, type, ref, ret_profile, err) < 0)
		return -err->code;
	if (type == LC_LSM_RUNTIME_DEFAULT && lsm->apparmor && !*ret_profile)
		log_warn("AppArmor is enabled but profile '%s' is not loaded: the container runs "
			 "without one",
			 LC_APPARMOR_DEFAULT_PROFILE);
	return 0;
}

static int selinux_check(const struct lc_lsm *lsm, const Runtime__V1__SELinuxOption *o,
			 struct husk_error *err)
{
	if (!o)
		return 0;
	return lc_selinux_check(lsm, "security_context.selinux_options", o->user, o->role, o->type,
				o->level, err);
}

/* A container shares its pod's network and IPC namespaces: POD is that,
 * NODE only when the pod uses the host's. */
static int pod_level_ns(Runtime__V1__NamespaceMode m, enum pod_ns_mode pod, const char *field,
			struct husk_error *err)
{
	switch (m) {
	case RUNTIME__V1__NAMESPACE_MODE__POD:
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__NODE:
		if (pod == POD_NS_NODE)
			return 0;
		return husk_error_set(err, EINVAL,
				      "%s NODE: the pod sandbox has a namespace of its own, which "
				      "its containers share",
				      field);
	default:
		return husk_error_set(
		    err, EINVAL, "%s %s: a container can only share its pod sandbox's", field,
		    pod_ns_mode_name((enum pod_ns_mode)m) ? pod_ns_mode_name((enum pod_ns_mode)m)
							  : "?");
	}
}

int srv_ctr_security_from_cri(const Runtime__V1__LinuxContainerSecurityContext *sc,
			      const struct lc_lsm *lsm, enum pod_ns_mode pod_net,
			      enum pod_ns_mode pod_ipc, struct rt_ctr_config *rc,
			      struct srv_ctr_security *h, struct husk_error *err)
{
	rc->pid_mode = POD_NS_CONTAINER;
	rc->seccomp_mode = LC_SECCOMP_UNCONFINED;
	if (!sc)
		return 0;
	rc->privileged = sc->privileged;
	rc->no_new_privs = sc->no_new_privs;
	rc->readonly_rootfs = sc->readonly_rootfs;

	/* Who runs it. */
	if (sc->run_as_user && !isempty(sc->run_as_username))
		return husk_error_set(err, EINVAL,
				      "security_context: run_as_user and run_as_username are both "
				      "set");
	if (sc->run_as_group && !sc->run_as_user && isempty(sc->run_as_username))
		return husk_error_set(err, EINVAL,
				      "security_context.run_as_group needs run_as_user or "
				      "run_as_username");
	if (sc->run_as_user) {
		if (id_value(sc->run_as_user, "security_context.run_as_user", &rc->uid, err) < 0)
			return -err->code;
		rc->has_uid = true;
	}
	rc->username = isempty(sc->run_as_username) ? NULL : sc->run_as_username;
	if (sc->run_as_group) {
		if (id_value(sc->run_as_group, "security_context.run_as_group", &rc->gid, err) < 0)
			return -err->code;
		rc->has_gid = true;
	}
	rc->supplemental_groups = (const long long *)sc->supplemental_groups;
	rc->n_supplemental_groups = sc->n_supplemental_groups;
	if (groups_policy(sc->supplemental_groups_policy,
			  "security_context.supplemental_groups_policy", &rc->groups_strict,
			  err) < 0)
		return -err->code;

	if (sc->capabilities) {
		const Runtime__V1__Capability *c = sc->capabilities;
		h->caps_add = srv_strv(c->add_capabilities, c->n_add_capabilities);
		h->caps_drop = srv_strv(c->drop_capabilities, c->n_drop_capabilities);
		h->caps_ambient =
		    srv_strv(c->add_ambient_capabilities, c->n_add_ambient_capabilities);
		rc->caps_add = h->caps_add;
		rc->caps_drop = h->caps_drop;
		rc->caps_ambient = h->caps_ambient;
	}

	/* The kubelet always sends both lists (empty for procMount Unmasked),
	 * so a security context without them asks for none: the lists are
	 * taken as they come, as containerd and CRI-O take them. Only a
	 * request with no security context at all gets the defaults. */
	h->masked = srv_strv(sc->masked_paths, sc->n_masked_paths);
	h->readonly = srv_strv(sc->readonly_paths, sc->n_readonly_paths);
	rc->masked_paths = h->masked;
	rc->readonly_paths = h->readonly;

	/* Privileged containers get neither seccomp nor an LSM profile, so
	 * what was asked for those cannot fail them. */
	if (!sc->privileged) {
		if (seccomp_choice(sc->seccomp, lc_seccomp_path_field(sc), &rc->seccomp_mode,
				   &rc->seccomp_profile, err) < 0 ||
		    apparmor_choice(lsm, sc->apparmor, lc_apparmor_path_field(sc), &h->apparmor,
				    err) < 0 ||
		    selinux_check(lsm, sc->selinux_options, err) < 0)
			return -err->code;
		rc->apparmor_profile = h->apparmor;
	}

	const Runtime__V1__NamespaceOption *no = sc->namespace_options;
	if (no) {
		if (pod_level_ns(no->network, pod_net, "security_context.namespace_options.network",
				 err) < 0 ||
		    pod_level_ns(no->ipc, pod_ipc, "security_context.namespace_options.ipc", err) <
			0)
			return -err->code;
		if (no->pid < RUNTIME__V1__NAMESPACE_MODE__POD ||
		    no->pid > RUNTIME__V1__NAMESPACE_MODE__TARGET)
			return husk_error_set(
			    err, EINVAL,
			    "security_context.namespace_options.pid: unknown mode "
			    "%d",
			    (int)no->pid);
		rc->pid_mode = (enum pod_ns_mode)no->pid;
		rc->pid_target = no->target_id;
	}
	return 0;
}

int srv_pod_security_from_cri(const Runtime__V1__LinuxSandboxSecurityContext *sc,
			      const struct lc_lsm *lsm, bool *ret_privileged,
			      struct husk_error *err)
{
	*ret_privileged = false;
	if (!sc)
		return 0;
	long long id;
	if (sc->run_as_group && !sc->run_as_user)
		return husk_error_set(err, EINVAL,
				      "security_context.run_as_group needs run_as_user");
	if ((sc->run_as_user &&
	     id_value(sc->run_as_user, "security_context.run_as_user", &id, err) < 0) ||
	    (sc->run_as_group &&
	     id_value(sc->run_as_group, "security_context.run_as_group", &id, err) < 0))
		return -err->code;
	for (size_t i = 0; i < sc->n_supplemental_groups; i++)
		if (sc->supplemental_groups[i] < 0 ||
		    sc->supplemental_groups[i] > (int64_t)UINT32_MAX - 1)
			return husk_error_set(err, EINVAL,
					      "security_context.supplemental_groups: %" PRId64
					      " is not a valid id",
					      sc->supplemental_groups[i]);
	bool strict;
	if (groups_policy(sc->supplemental_groups_policy,
			  "security_context.supplemental_groups_policy", &strict, err) < 0)
		return -err->code;
	if (!sc->privileged) {
		int mode;
		const char *path;
		_cleanup_free_ char *apparmor = NULL;
		if (seccomp_choice(sc->seccomp, pod_seccomp_path_field(sc), &mode, &path, err) < 0)
			return -err->code;
		if (mode == LC_SECCOMP_LOCALHOST) {
			/* Nothing runs under it, but a profile that would fail
			 * a container fails its pod the same way. */
			struct lc_seccomp_profile *p = NULL;
			if (lc_seccomp_parse_file(path, &p, err) < 0)
				return husk_error_prefix(err, "security_context.seccomp");
			lc_seccomp_profile_free(p);
		}
		if (sc->apparmor &&
		    lc_apparmor_profile(lsm, "security_context.apparmor",
					(int)sc->apparmor->profile_type,
					sc->apparmor->localhost_ref, &apparmor, err) < 0)
			return -err->code;
		if (selinux_check(lsm, sc->selinux_options, err) < 0)
			return -err->code;
	}
	*ret_privileged = sc->privileged;
	return 0;
}
