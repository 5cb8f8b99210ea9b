/* The container's OCI runtime-spec config (config.json of its bundle),
 * translated from husk's struct ctr_spec: what crictl inspect shows as
 * info.runtimeSpec and what an OCI runtime (runc, crun) is given. */
#ifndef HUSK_RUNTIME_OCI_H
#define HUSK_RUNTIME_OCI_H

#include <stddef.h>

#include "common/error.h"
#include "runtime/cgroup/cgroup.h"
#include "runtime/launcher/launcher.h"

/* The highest version both Debian 12 runtimes state: runc 1.1.5's
 * `features` gives ociVersionMax "1.0.2-dev"; crun 1.8.1 has no `features`
 * and accepts every 1.0.x. */
#define CTR_OCI_VERSION "1.0.2-dev"

struct ctr_oci_kv {
	const char *key, *value;
};

/* What the OCI config holds that struct ctr_spec does not. */
struct ctr_oci_extra {
	const char *cgroups_path;	      /* linux.cgroupsPath; NULL: none */
	const struct cg_resources *resources; /* linux.resources; NULL: none */
	/* linux.resources.devices: deny all, then allow these; with
	 * allow_all_devices (privileged) one allow-all rule instead. */
	const struct cg_device_rule *device_rules;
	size_t n_device_rules;
	bool allow_all_devices;
	const struct ctr_oci_kv *annotations;
	size_t n_annotations;
};

/* The OCI config of s as JSON text (caller frees): process (terminal, user
 * with additionalGids, args, env, cwd, capabilities, rlimits,
 * noNewPrivileges, apparmorProfile, oomScoreAdj), root, hostname, mounts
 * (the runtime's own /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys and
 * /sys/fs/cgroup as husk's launcher sets them up, the pod's /etc files,
 * then the spec's), annotations, and linux: namespaces (a joined one by
 * path, host ones left out), uid/gid mappings, devices, cgroupsPath,
 * resources, rootfsPropagation, seccomp (the RuntimeDefault or Localhost
 * profile resolved against the bounding set), sysctl, maskedPaths and
 * readonlyPaths (the defaults when the spec keeps them). ENOENT or EINVAL
 * from reading a Localhost seccomp profile. */
int ctr_oci_config(const struct ctr_spec *s, const struct ctr_oci_extra *x, char **ret,
		   struct husk_error *err);

#endif
