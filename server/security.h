/* CRI security contexts and resources turned into the runtime's structs:
 * the rules CRI sets for runtimes (run_as_group needs a user, an empty
 * masked_paths list means none, ...), seccomp, AppArmor and SELinux
 * resolved against this host, and a pod's resources and overhead folded
 * into the pod cgroup's limits. Pure functions over the messages, so the
 * unit tests call them directly. */
#ifndef HUSK_SERVER_SECURITY_H
#define HUSK_SERVER_SECURITY_H

#include "runtime/cgroup/cgroup.h"
#include "runtime/launcher/launcher.h"
#include "runtime/runtime.h"
#include "server/server.h"

/* LinuxContainerResources as cgroup limits: CRI's 0 is "not set" (left
 * alone), a negative quota or memory limit is "no limit". The container's
 * oom_score_adj goes to *ret_oom (always set when r is). EINVAL naming the
 * field for values no cgroup takes (negative period or shares, an
 * oom_score_adj outside -1000..1000). *out is initialised here. */
int srv_resources_from_cri(const Runtime__V1__LinuxContainerResources *r, struct cg_resources *out,
			   int *ret_oom, struct husk_error *err);

/* The pod cgroup's limits from LinuxPodSandboxConfig.resources (the sum of
 * its containers') and .overhead, as the kubelet sizes a pod cgroup: the
 * shares add up; a cpu quota, memory (and swap) limit or hugepage limit is
 * the containers' sum plus the overhead, and only when the containers are
 * limited (a container without a limit leaves the pod unlimited); cpuset,
 * period and unified keys are the containers'. *ret_any is false when
 * there is nothing to write. */
int srv_pod_resources_from_cri(const Runtime__V1__LinuxContainerResources *resources,
			       const Runtime__V1__LinuxContainerResources *overhead,
			       struct cg_resources *out, bool *ret_any, struct husk_error *err);

/* What srv_ctr_security_from_cri allocates for the rt_ctr_config it fills. */
struct srv_ctr_security {
	char **caps_add, **caps_drop, **caps_ambient;
	char **masked, **readonly;
	char *apparmor;
};
void srv_ctr_security_clear(struct srv_ctr_security *h);

/* Fill rc's user, capability, seccomp, AppArmor, path and namespace fields
 * from the container's security context (NULL: none was sent, which keeps
 * the default masked and read-only paths and leaves seccomp unconfined, as
 * the kubelet asks for RuntimeDefault explicitly). pod_net and pod_ipc are
 * the pod's modes: a container cannot have a network or IPC namespace of
 * its own, nor the host's when its pod has one. Errors name the CRI field:
 * EINVAL for what is malformed or contradictory, EBUSY for what this host
 * cannot do (AppArmor or SELinux not enabled). */
int srv_ctr_security_from_cri(const Runtime__V1__LinuxContainerSecurityContext *sc,
			      const struct lc_lsm *lsm, enum pod_ns_mode pod_net,
			      enum pod_ns_mode pod_ipc, struct rt_ctr_config *rc,
			      struct srv_ctr_security *h, struct husk_error *err);

/* Check a pod's security context the same way (husk runs no process of
 * the pod's own besides a PID-namespace init, so there is nothing else to
 * apply); *ret_privileged is whether privileged containers may run in it. */
int srv_pod_security_from_cri(const Runtime__V1__LinuxSandboxSecurityContext *sc,
			      const struct lc_lsm *lsm, bool *ret_privileged,
			      struct husk_error *err);

#endif
