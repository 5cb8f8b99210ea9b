/* Linux security modules for containers: whether the kernel has AppArmor
 * or SELinux enabled, and what CRI's AppArmor profiles and SELinux options
 * mean on this host (applied, accepted as nothing to do, or refused). */
#ifndef HUSK_RUNTIME_LSM_H
#define HUSK_RUNTIME_LSM_H

#include <stdbool.h>

#include "common/error.h"

/* Husk's RuntimeDefault AppArmor profile: used when the host has it loaded
 * (apparmor_parser), as containerd loads cri-containerd.apparmor.d. */
#define LC_APPARMOR_DEFAULT_PROFILE "husk-default"
/* Longest profile name husk passes on. */
#define LC_APPARMOR_NAME_MAX 256

/* CRI's SecurityProfile.ProfileType, same values. */
enum lc_lsm_profile {
	LC_LSM_RUNTIME_DEFAULT = 0,
	LC_LSM_UNCONFINED = 1,
	LC_LSM_LOCALHOST = 2,
};

struct lc_lsm {
	bool apparmor; /* <root>/sys/module/apparmor/parameters/enabled is "Y" */
	bool selinux;  /* selinuxfs at <root>/sys/fs/selinux (its "enforce" file) */
	char *root;    /* "" for the real host; tests pass a directory */
};

/* Look at the host under root (NULL or "": the real one). Never fails:
 * what cannot be read is not enabled. Clear with lc_lsm_clear. */
void lc_lsm_detect(const char *root, struct lc_lsm *ret);
void lc_lsm_clear(struct lc_lsm *lsm);

/* The AppArmor profile a container gets for CRI's profile type and
 * localhost_ref (field names the CRI field for messages). *ret_profile is
 * the profile name to apply or NULL for none (caller frees).
 *   - AppArmor disabled: RuntimeDefault and Unconfined are NULL; Localhost
 *     is EBUSY "...: AppArmor is not enabled on this kernel".
 *   - AppArmor enabled: Unconfined is NULL; RuntimeDefault is
 *     LC_APPARMOR_DEFAULT_PROFILE when it is loaded, else NULL (the caller
 *     may warn); Localhost must name a loaded profile (listed in
 *     <root>/sys/kernel/security/apparmor/profiles): EINVAL when it is
 *     empty, malformed or not loaded. */
int lc_apparmor_profile(const struct lc_lsm *lsm, const char *field, int type, const char *ref,
			char **ret_profile, struct husk_error *err);

/* The deprecated string form ("runtime/default", "unconfined",
 * "localhost/<name>", "" for the default) as a type and reference (a
 * pointer into s). EINVAL naming field for anything else. */
int lc_apparmor_parse_path(const char *s, const char *field, int *ret_type, const char **ret_ref,
			   struct husk_error *err);

/* SELinux options (user, role, type, level; NULL or "" unset). All unset
 * is fine anywhere. Any of them set is refused: EBUSY "...: SELinux is not
 * enabled on this kernel" without SELinux, and EBUSY "...: husk does not
 * apply SELinux labels" with it (labelling is not implemented). */
int lc_selinux_check(const struct lc_lsm *lsm, const char *field, const char *user,
		     const char *role, const char *type, const char *level, struct husk_error *err);

#endif
