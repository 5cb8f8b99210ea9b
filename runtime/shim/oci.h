/* husk-shim's side of OCI runtime handlers: the container is run by an OCI
 * runtime (runc, crun) from its bundle's config.json instead of by husk's
 * launcher; the shim stays its subreaper, log writer and monitor. */
#ifndef HUSK_RUNTIME_SHIM_OCI_H
#define HUSK_RUNTIME_SHIM_OCI_H

#include "runtime/launcher/launcher.h"

/* `<rt> [args] --root R create --bundle <state_dir> --pid-file oci.pid ID`
 * with stdio as the container's stdio, then `<rt> start ID`. On return the
 * container's init is running and, create having exited, reparented to the
 * caller (a subreaper), which reaps it. Errors carry the runtime's own
 * message (from its --log file): EIO "runc create: exit status 1: ...". A
 * failed start deletes the container again. */
int shim_oci_launch(const struct ctr_spec *spec, const struct ctr_stdio *stdio,
		    struct ctr_process *ret, struct husk_error *err);

/* `<rt> delete --force ID` once the container has exited: the runtime's
 * state goes; failures are logged. */
void shim_oci_delete(const struct ctr_spec *spec);

#endif
