/* Capability names, sets and the CRI add/drop rules; the child-side calls
 * use raw capset(2) and prctl(2) so the launcher needs no libcap. */
#include "runtime/launcher/caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *const cap_names[] = {
    [0] = "CAP_CHOWN",
    [1] = "CAP_DAC_OVERRIDE",
    [2] = "CAP_DAC_READ_SEARCH",
    [3] = "CAP_FOWNER",
    [4] = "CAP_FSETID",
    [5] = "CAP_KILL",
    [6] = "CAP_SETGID",
    [7] = "CAP_SETUID",
    [8] = "CAP_SETPCAP",
    [9] = "CAP_LINUX_IMMUTABLE",
    [10] = "CAP_NET_BIND_SERVICE",
    [11] = "CAP_NET_BROADCAST",
    [12] = "CAP_NET_ADMIN",
    [13] = "CAP_NET_RAW",
    [14] = "CAP_IPC_LOCK",
    [15] = "CAP_IPC_OWNER",
    [16] = "CAP_SYS_MODULE",
    [17] = "CAP_SYS_RAWIO",
    [18] = "CAP_SYS_CHROOT",
    [19] = "CAP_SYS_PTRACE",
    [20] = "CAP_SYS_PACCT",
    [21] = "CAP_SYS_ADMIN",
    [22] = "CAP_SYS_BOOT",
    [23] = "CAP_SYS_NICE",
    [24] = "CAP_SYS_RESOURCE",
    [25] = "CAP_SYS_TIME",
    [26] = "CAP_SYS_TTY_CONFIG",
    [27] = "CAP_MKNOD",
    [28] = "CAP_LEASE",
    [29] = "CAP_AUDIT_WRITE",
    [30] = "CAP_AUDIT_CONTROL",
    [31] = "CAP_SETFCAP",
    [32] = "CAP_MAC_OVERRIDE",
    [33] = "CAP_MAC_ADMIN",
    [34] = "CAP_SYSLOG",
    [35] = "CAP_WAKE_ALARM",
    [36] = "CAP_BLOCK_SUSPEND",
    [37] = "CAP_AUDIT_READ",
    [38] = "CAP_PERFMON",
    [39] = "CAP_BPF",
    [40] = "CAP_CHECKPOINT_RESTORE",
};

void lc_caps_init(struct lc_caps *caps, uint64_t mask)
{
	*caps = (struct lc_caps){
	    .bounding = mask,
	    .effective = mask,
	    .permitted = mask,
	};
}

const char *lc_cap_name(int cap)
{
	if (cap < 0 || (size_t)cap >= ARRAY_SIZE(cap_names))
		return NULL;
	return cap_names[cap];
}

int lc_cap_from_name(const char *name, int *ret_cap, struct husk_error *err)
{
	const char *bare = name;
	if (name && strncasecmp(name, "CAP_", 4) == 0)
		bare = name + 4;
	if (!isempty(bare))
		for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
			if (strcasecmp(cap_names[i] + 4, bare) == 0) {
				*ret_cap = (int)i;
				return 0;
			}
	return husk_error_set(err, EINVAL, "unknown capability '%s'", name ? name : "");
}

int lc_caps_last_cap(void)
{
	static int cached = -1;
	if (cached >= 0)
		return cached;
	int last = CAP_LAST_CAP;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f) {
		int v;
		if (fscanf(f, "%d", &v) == 1 && v > 0 && v < 64)
			last = v;
		fclose(f);
	}
	cached = last;
	return last;
}

uint64_t lc_caps_all(void)
{
	int last = lc_caps_last_cap();
	return last >= 63 ? UINT64_MAX : LC_CAP_BIT(last + 1) - 1;
}

static bool is_all(const char *name)
{
	return name && strcasecmp(name, "ALL") == 0;
}

int lc_caps_from_names(char *const *names, uint64_t *ret_mask, struct husk_error *err)
{
	uint64_t mask = 0;
	for (size_t i = 0; names && names[i]; i++) {
		if (is_all(names[i])) {
			mask |= lc_caps_all();
			continue;
		}
		int cap;
		int r = lc_cap_from_name(names[i], &cap, err);
		if (r < 0)
			return r;
		mask |= LC_CAP_BIT(cap);
	}
	*ret_mask = mask;
	return 0;
}

char **lc_caps_to_names(uint64_t mask)
{
	char **v = xnew(char *, 1);
	for (int i = 0; i < 64; i++) {
		if (!(mask & LC_CAP_BIT(i)))
			continue;
		const char *n = lc_cap_name(i);
		if (n) {
			v = strv_append(v, n);
		} else {
			_cleanup_free_ char *num = xasprintf("CAP_%d", i);
			v = strv_append(v, num);
		}
	}
	return v;
}

int lc_caps_add_drop(uint64_t base, char *const *add, char *const *drop, uint64_t *ret_mask,
		     struct husk_error *err)
{
	uint64_t mask = base;
	for (size_t i = 0; add && add[i]; i++)
		if (is_all(add[i]))
			mask = lc_caps_all();
	for (size_t i = 0; drop && drop[i]; i++)
		if (is_all(drop[i]))
			mask = 0;
	for (size_t i = 0; add && add[i]; i++) {
		int cap;
		if (is_all(add[i]))
			continue;
		int r = lc_cap_from_name(add[i], &cap, err);
		if (r < 0)
			return husk_error_prefix(err, "add capability");
		mask |= LC_CAP_BIT(cap);
	}
	for (size_t i = 0; drop && drop[i]; i++) {
		int cap;
		if (is_all(drop[i]))
			continue;
		int r = lc_cap_from_name(drop[i], &cap, err);
		if (r < 0)
			return husk_error_prefix(err, "drop capability");
		mask &= ~LC_CAP_BIT(cap);
	}
	*ret_mask = mask;
	return 0;
}

int lc_caps_container(uint64_t mask, char *const *ambient, struct lc_caps *ret,
		      struct husk_error *err)
{
	uint64_t amb = 0;
	if (lc_caps_from_names(ambient, &amb, err) < 0)
		return husk_error_prefix(err, "ambient capability");
	lc_caps_init(ret, mask | amb);
	ret->inheritable = amb;
	ret->ambient = amb;
	return 0;
}

int lc_caps_get_own(uint64_t *ret_permitted, uint64_t *ret_bounding)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {0};
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	uint64_t bnd = 0;
	int last = lc_caps_last_cap();
	for (int i = 0; i <= last; i++)
		if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
			bnd |= LC_CAP_BIT(i);
	*ret_permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
	*ret_bounding = bnd;
	return 0;
}

int lc_caps_drop_bounding(uint64_t keep, int last_cap)
{
	for (int i = 0; i <= last_cap; i++) {
		if (keep & LC_CAP_BIT(i))
			continue;
		if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
			return -errno;
	}
	return 0;
}

int lc_caps_apply(const struct lc_caps *caps, int last_cap)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {
	    {(uint32_t)caps->effective, (uint32_t)caps->permitted, (uint32_t)caps->inheritable},
	    {(uint32_t)(caps->effective >> 32), (uint32_t)(caps->permitted >> 32),
	     (uint32_t)(caps->inheritable >> 32)},
	};
	if (syscall(SYS_capset, &hdr, data) < 0)
		return -errno;
	/* Ambient capabilities must be in both permitted and inheritable; the
	 * kernel refuses the rest with EPERM. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return -errno;
	for (int i = 0; i <= last_cap; i++)
		if ((caps->ambient & LC_CAP_BIT(i)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, i, 0, 0) < 0)
			return -errno;
	return 0;
}
