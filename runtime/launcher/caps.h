/* Linux capabilities for containers: names as CRI and OCI write them, the
 * default set of containerd/CRI-O, the CRI add/drop rules, and applying the
 * five sets to the calling process (used by the launcher's child). */
#ifndef HUSK_RUNTIME_CAPS_H
#define HUSK_RUNTIME_CAPS_H

#include <stdint.h>

#include "common/error.h"

/* Capability numbers go up to 63; a set is a bit mask (bit n = capability n). */
#define LC_CAP_BIT(n) (UINT64_C(1) << (n))

/* The 14 capabilities containerd and CRI-O grant by default: CHOWN,
 * DAC_OVERRIDE, FSETID, FOWNER, MKNOD, NET_RAW, SETGID, SETUID, SETFCAP,
 * SETPCAP, NET_BIND_SERVICE, SYS_CHROOT, KILL, AUDIT_WRITE. */
#define LC_CAPS_DEFAULT UINT64_C(0x00000000a80425fb)

struct lc_caps {
	uint64_t bounding;
	uint64_t effective;
	uint64_t permitted;
	uint64_t inheritable;
	uint64_t ambient;
};

/* bounding = effective = permitted = mask; inheritable = ambient = 0. */
void lc_caps_init(struct lc_caps *caps, uint64_t mask);

/* The capability number for "CAP_CHOWN", "chown" or "CHOWN" (case does not
 * matter). EINVAL "unknown capability 'X'" for anything else. */
int lc_cap_from_name(const char *name, int *ret_cap, struct husk_error *err);

/* "CAP_CHOWN" for 0, ...; NULL for a number husk has no name for. */
const char *lc_cap_name(int cap);

/* Parse a NULL-terminated list of names into a mask; "ALL" means every
 * capability the kernel has (lc_caps_all). EINVAL on an unknown name. */
int lc_caps_from_names(char *const *names, uint64_t *ret_mask, struct husk_error *err);

/* The names ("CAP_...") of the bits set in mask, in number order; caller
 * frees with strv_free. */
char **lc_caps_to_names(uint64_t mask);

/* Every capability the running kernel knows (0..cap_last_cap). */
uint64_t lc_caps_all(void);

/* The CRI rules for LinuxContainerSecurityContext.capabilities, as
 * containerd applies them: start from base; "ALL" in add gives every
 * capability, "ALL" in drop removes every one; then the other names in add
 * are added and the other names in drop removed. Names may lack "CAP_".
 * EINVAL on an unknown name. */
int lc_caps_add_drop(uint64_t base, char *const *add, char *const *drop, uint64_t *ret_mask,
		     struct husk_error *err);

/* The five sets of a container: mask (lc_caps_add_drop's result) in the
 * bounding, effective and permitted sets, and the capabilities named in
 * ambient (CRI add_ambient_capabilities; "ALL" allowed) in every set, the
 * inheritable and ambient ones included: the kernel keeps an ambient
 * capability only while it is permitted and inheritable, and ambient ones
 * are what a non-root process keeps across execve. EINVAL on an unknown
 * name. */
int lc_caps_container(uint64_t mask, char *const *ambient, struct lc_caps *ret,
		      struct husk_error *err);

/* The calling process's own permitted and bounding sets. -errno. */
int lc_caps_get_own(uint64_t *ret_permitted, uint64_t *ret_bounding);

/* Child side, in order. Each returns 0 or -errno and only makes syscalls.
 * lc_caps_drop_bounding needs CAP_SETPCAP in the effective set, so it runs
 * before the user switch; lc_caps_apply sets effective, permitted and
 * inheritable with capset(2) and then the ambient set. */
int lc_caps_drop_bounding(uint64_t keep, int last_cap);
int lc_caps_apply(const struct lc_caps *caps, int last_cap);

/* /proc/sys/kernel/cap_last_cap (or CAP_LAST_CAP from the headers when it
 * cannot be read). */
int lc_caps_last_cap(void);

#endif
