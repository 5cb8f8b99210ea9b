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
	/* A joined user namespace's mappings (linux.uidMappings and
	 * gidMappings, which runtimes want even when they join one). */
	const struct ctr_idmap *uid_map, *gid_map;
	size_t n_uid_map, n_gid_map;
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

/* The OCI process object (the JSON of `<rt> exec --process`) for running
 * args in s's container: s's user, groups, capabilities, rlimits,
 * noNewPrivileges, apparmorProfile and oomScoreAdj; env and cwd NULL for
 * s's own; terminal when tty. Caller frees. */
char *ctr_oci_process(const struct ctr_spec *s, char *const *args, char *const *env,
		      const char *cwd, bool tty, unsigned rows, unsigned cols);

/* The limits of r (memory, cpu, pids, hugepageLimits, unified: those set)
 * as an OCI linux.resources object without devices: what `<rt> update
 * --resources` reads. Caller frees. */
char *ctr_oci_resources(const struct cg_resources *r);

/* config (a config.json's text) with the limits set in r written over its
 * linux.resources, key by key (memory.limit replaced, memory.swap kept
 * when r has none; devices kept). EINVAL when it is not an OCI config. */
int ctr_oci_config_set_resources(const char *config, size_t len, const struct cg_resources *r,
				 char **ret, struct husk_error *err);

/* ---- the runtime's command line (runtime/oci_cli.c) ---- */

/* argv of `<rt> [s->oci_args] --root R --log LOG [--systemd-cgroup] VERB...`
 * (verb NULL-terminated; caller frees with strv_free). */
char **ctr_oci_argv(const struct ctr_spec *s, const char *log, const char *const *verb);

/* The cgroupsPath a runtime given --systemd-cgroup takes for the cgroup
 * husk made at cg_path ("/.../<slice>.slice/husk-<id>.scope"):
 * "<slice>.slice:husk:<id>". NULL when cg_path is not of that form (the
 * caller keeps the path as it is). Caller frees. */
char *ctr_oci_systemd_cgroups_path(const char *cg_path);

/* ---- exec and update through the runtime (runtime/oci_exec.c) ---- */

/* Run o->args in the container of o->spec (whose oci_path is set) through
 * `<rt> exec --process P --pid-file F ID` in the foreground: on return
 * the runtime is the caller's child (ret->pid; it exits with the
 * process's status, 128 + signal when killed) and the process runs in
 * the container (ret->target, its start time ret->target_start). The
 * process gets stdio as it is (pipes pass through), or with o->tty a
 * terminal of the runtime's whose other side the runtime copies to and
 * from a pty of ours (ret->pty_master; resizing it resizes the
 * container's). Errors: the runtime's message when it fails before the
 * process runs, ENOENT for a command it cannot find. */
int ctr_oci_exec_spawn(const struct ctr_exec_opts *o, const struct ctr_stdio *stdio,
		       struct ctr_process *ret, struct husk_error *err);

/* `<rt> update --resources - ID` with resources_json (an OCI
 * linux.resources object) on its stdin. EIO with the runtime's message. */
int ctr_oci_update(const struct ctr_spec *s, const char *resources_json, struct husk_error *err);

/* ---- a pod's user namespace (runtime/oci_userns.c) ---- */

#define CTR_OCI_IDMAP_DIR "idmap"

/* The uid and gid maps of the user namespace pinned at userns_path, as the
 * host sees them. Caller frees both arrays. EIO when they cannot be read. */
int ctr_oci_userns_maps(const char *userns_path, struct ctr_idmap **ret_uid, size_t *ret_n_uid,
			struct ctr_idmap **ret_gid, size_t *ret_n_gid, struct husk_error *err);

/* With s->idmapped_mounts: an idmapped clone (MOUNT_ATTR_IDMAP with s's
 * user namespace) of every bind source (s's /dev/shm, /etc/hostname,
 * /etc/hosts, /etc/resolv.conf, bind mounts) attached on the host at
 * <state_dir>/idmap/NAME, and the runtime's bundle <state_dir>/bundle
 * whose config.json is <state_dir>/config.json with those as the bind
 * sources (the container's own keeps the host paths). *ret_bundle: that
 * bundle, or s->state_dir itself without s->idmapped_mounts; caller
 * frees. On failure nothing is left; EINVAL for a file system without
 * idmapped mounts, naming the mount. */
int ctr_oci_idmap_prepare(const struct ctr_spec *s, char **ret_bundle, struct husk_error *err);

/* Detach and remove what ctr_oci_idmap_prepare made (none is fine). */
void ctr_oci_idmap_release(const char *state_dir);

/* config (a config.json's text) with the source of each bind mount whose
 * source is from[i] replaced by to[i] (n pairs). EINVAL when config is
 * not an OCI config. */
int ctr_oci_config_bind_sources(const char *config, size_t len, const char *const *from,
				const char *const *to, size_t n, char **ret,
				struct husk_error *err);

#endif
