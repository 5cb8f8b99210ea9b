/* AppArmor and SELinux for containers: detection under a root directory,
 * CRI's AppArmor profiles resolved against the loaded ones, and SELinux
 * options checked against what this host (and husk) can honour. */
#include "runtime/launcher/lsm.h"

#include <errno.h>
#include <string.h>

#include "common/fs.h"

#define PROFILES_MAX (8u << 20)

static char *at_root(const struct lc_lsm *lsm, const char *path)
{
	return xasprintf("%s%s", lsm->root ? lsm->root : "", path);
}

void lc_lsm_detect(const char *root, struct lc_lsm *ret)
{
	*ret = (struct lc_lsm){.root = xstrdup(root ? root : "")};
	_cleanup_free_ char *en = at_root(ret, "/sys/module/apparmor/parameters/enabled");
	_cleanup_free_ char *text = NULL;
	if (fs_read_file(en, 64, &text, NULL, NULL) == 0)
		ret->apparmor = text[0] == 'Y' || text[0] == 'y';
	_cleanup_free_ char *enforce = at_root(ret, "/sys/fs/selinux/enforce");
	ret->selinux = fs_exists(enforce);
}

void lc_lsm_clear(struct lc_lsm *lsm)
{
	if (!lsm)
		return;
	free(lsm->root);
	*lsm = (struct lc_lsm){0};
}

/* Profile names are printable, without spaces or control characters (the
 * kernel's list separates the mode with a space). */
static bool name_ok(const char *s)
{
	if (isempty(s) || strlen(s) > LC_APPARMOR_NAME_MAX)
		return false;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

/* True when the kernel's list of loaded profiles ("name (mode)" lines)
 * holds name. */
static bool profile_loaded(const struct lc_lsm *lsm, const char *name)
{
	_cleanup_free_ char *path = at_root(lsm, "/sys/kernel/security/apparmor/profiles");
	_cleanup_free_ char *text = NULL;
	if (fs_read_file(path, PROFILES_MAX, &text, NULL, NULL) < 0)
		return false;
	size_t n = strlen(name);
	for (char *line = text; line && *line;) {
		char *next = strchr(line, '\n');
		if (strncmp(line, name, n) == 0 && line[n] == ' ')
			return true;
		line = next ? next + 1 : NULL;
	}
	return false;
}

int lc_apparmor_profile(const struct lc_lsm *lsm, const char *field, int type, const char *ref,
			char **ret_profile, struct husk_error *err)
{
	switch (type) {
	case LC_LSM_UNCONFINED:
		*ret_profile = NULL;
		return 0;
	case LC_LSM_RUNTIME_DEFAULT:
		*ret_profile = lsm->apparmor && profile_loaded(lsm, LC_APPARMOR_DEFAULT_PROFILE)
				   ? xstrdup(LC_APPARMOR_DEFAULT_PROFILE)
				   : NULL;
		return 0;
	case LC_LSM_LOCALHOST:
		if (!lsm->apparmor)
			return husk_error_set(err, EBUSY,
					      "%s: profile '%s': AppArmor is not enabled on this "
					      "kernel",
					      field, ref ? ref : "");
		if (!name_ok(ref))
			return husk_error_set(err, EINVAL, "%s: '%.*s' is not a profile name",
					      field, LC_APPARMOR_NAME_MAX, ref ? ref : "");
		if (!profile_loaded(lsm, ref))
			return husk_error_set(
			    err, EINVAL, "%s: AppArmor profile '%s' is not loaded", field, ref);
		*ret_profile = xstrdup(ref);
		return 0;
	default:
		return husk_error_set(err, EINVAL, "%s: unknown profile type %d", field, type);
	}
}

int lc_apparmor_parse_path(const char *s, const char *field, int *ret_type, const char **ret_ref,
			   struct husk_error *err)
{
	*ret_ref = NULL;
	if (isempty(s) || streq(s, "runtime/default")) {
		*ret_type = LC_LSM_RUNTIME_DEFAULT;
		return 0;
	}
	if (streq(s, "unconfined")) {
		*ret_type = LC_LSM_UNCONFINED;
		return 0;
	}
	if (startswith(s, "localhost/")) {
		*ret_type = LC_LSM_LOCALHOST;
		*ret_ref = s + strlen("localhost/");
		return 0;
	}
	return husk_error_set(err, EINVAL,
			      "%s: '%.*s' is not one of runtime/default, unconfined, "
			      "localhost/<profile>",
			      field, LC_APPARMOR_NAME_MAX, s);
}

int lc_selinux_check(const struct lc_lsm *lsm, const char *field, const char *user,
		     const char *role, const char *type, const char *level, struct husk_error *err)
{
	const char *names[] = {"user", "role", "type", "level"};
	const char *vals[] = {user, role, type, level};
	for (size_t i = 0; i < ARRAY_SIZE(vals); i++) {
		if (isempty(vals[i]))
			continue;
		return husk_error_set(err, EBUSY, "%s.%s '%.256s': %s", field, names[i], vals[i],
				      lsm->selinux ? "husk does not apply SELinux labels"
						   : "SELinux is not enabled on this kernel");
	}
	return 0;
}
