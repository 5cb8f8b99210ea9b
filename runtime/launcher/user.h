/* Resolving who a container runs as: CRI's run_as_user / run_as_username /
 * run_as_group or the image's User string, looked up in the container's own
 * /etc/passwd and /etc/group (read inside the rootfs, never following a
 * symlink out of it). */
#ifndef HUSK_RUNTIME_USER_H
#define HUSK_RUNTIME_USER_H

#include <stdint.h>

#include "common/error.h"

/* At most this many additional gids (the launcher's spec limit). */
#define LC_USER_MAX_GROUPS 256

struct lc_user_request {
	bool has_uid;
	long long uid;
	const char *username; /* used when !has_uid and not empty */
	bool has_gid;
	long long gid;
	const char *image_user; /* "", "1002", "app", "1002:100", "app:staff" */
	const long long *supplemental_groups;
	size_t n_supplemental_groups;
	/* SupplementalGroupsPolicy Strict: only gid and supplemental_groups,
	 * none of the memberships the image's /etc/group gives the user. */
	bool groups_strict;
};

struct lc_user {
	uint32_t uid, gid;
	uint32_t *groups; /* additional gids, each once: the primary gid, the
			     user's groups from /etc/group (unless
			     groups_strict), then supplemental_groups;
			     caller frees */
	size_t n_groups;
	char *home; /* from /etc/passwd, "/" when unknown; caller frees */
};

/* Resolve req against the rootfs at rootfs. A numeric uid unknown to
 * /etc/passwd is fine (gid 0 unless given); a user or group name that is
 * not there is EINVAL naming it and the file, as are a supplemental group
 * out of range and more than LC_USER_MAX_GROUPS groups in all. */
int lc_user_resolve(const char *rootfs, const struct lc_user_request *req, struct lc_user *ret,
		    struct husk_error *err);
void lc_user_clear(struct lc_user *u);

#endif
