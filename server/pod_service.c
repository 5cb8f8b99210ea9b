/* Pod sandbox handlers: RunPodSandbox, StopPodSandbox, RemovePodSandbox,
 * PodSandboxStatus and ListPodSandbox, translating CRI messages to the
 * runtime manager's structs and its records back. */
#include <errno.h>
#include <string.h>

#include "common/json.h"
#include "runtime/runtime.h"
#include "server/handlers.h"
#include "server/security.h"
#include "server/translate.h"

static int ns_mode(Runtime__V1__NamespaceMode m, enum pod_ns_mode *ret, const char *field,
		   struct husk_error *err)
{
	switch (m) {
	case RUNTIME__V1__NAMESPACE_MODE__POD:
		*ret = POD_NS_POD;
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__CONTAINER:
		*ret = POD_NS_CONTAINER;
		return 0;
	case RUNTIME__V1__NAMESPACE_MODE__NODE:
		*ret = POD_NS_NODE;
		return 0;
	default:
		return husk_error_set(err, EINVAL, "%s: namespace mode %d is not valid for a pod",
				      field, (int)m);
	}
}

static struct pod_idmap *idmaps_from_cri(Runtime__V1__IDMapping *const *v, size_t n)
{
	struct pod_idmap *m = xnew(struct pod_idmap, n + 1);
	for (size_t i = 0; i < n; i++)
		m[i] = (struct pod_idmap){v[i]->container_id, v[i]->host_id, v[i]->length};
	return m;
}

/* userns_options: NODE (or absent) is the host's user namespace; POD takes
 * the kubelet's mappings (checked by the runtime); CONTAINER is not a mode
 * the kubelet sends. */
static int userns_from_cri(const Runtime__V1__UserNamespace *u, struct rt_pod_config *pc,
			   struct pod_idmap **ret_uids, struct pod_idmap **ret_gids,
			   struct husk_error *err)
{
	if (!u || u->mode == RUNTIME__V1__NAMESPACE_MODE__NODE)
		return 0;
	if (u->mode != RUNTIME__V1__NAMESPACE_MODE__POD)
		return husk_error_set(err, EINVAL,
				      "namespace_options.userns_options.mode %s: only POD (a user "
				      "namespace for the pod) or NODE (the host's) are supported",
				      u->mode == RUNTIME__V1__NAMESPACE_MODE__CONTAINER
					  ? "CONTAINER"
				      : u->mode == RUNTIME__V1__NAMESPACE_MODE__TARGET ? "TARGET"
										       : "unknown");
	/* The limit is the runtime's; this only bounds the copy. */
	if (u->n_uids > POD_MAX_IDMAPS || u->n_gids > POD_MAX_IDMAPS)
		return husk_error_set(err, EINVAL,
				      "namespace_options.userns_options: more than %d mappings",
				      POD_MAX_IDMAPS);
	*ret_uids = idmaps_from_cri(u->uids, u->n_uids);
	*ret_gids = idmaps_from_cri(u->gids, u->n_gids);
	pc->userns = true;
	pc->uid_map = *ret_uids;
	pc->gid_map = *ret_gids;
	pc->n_uid_map = u->n_uids;
	pc->n_gid_map = u->n_gids;
	return 0;
}

int srv_run_pod_sandbox(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__RunPodSandboxRequest *req = in;
	const Runtime__V1__PodSandboxConfig *c = req->config;
	if (!c || !c->metadata)
		return husk_error_set(err, EINVAL, "RunPodSandbox: config.metadata is required");
	const struct srv_runtime *oci = NULL;
	if (srv_config_runtime(ctx->config, req->runtime_handler, &oci, err) < 0)
		return husk_error_prefix(err, "RunPodSandbox");

	/* A relative directory would be taken from huskd's working directory. */
	if (!isempty(c->log_directory) && c->log_directory[0] != '/')
		return husk_error_set(
		    err, EINVAL, "RunPodSandbox '%s': log_directory '%s' is not an absolute path",
		    c->metadata->name, c->log_directory);

	struct rt_pod_config pc = {
	    .name = c->metadata->name,
	    .uid = c->metadata->uid,
	    .namespace = c->metadata->namespace_,
	    .attempt = c->metadata->attempt,
	    .hostname = c->hostname,
	    .log_directory = c->log_directory,
	    .runtime_handler = req->runtime_handler,
	    .net = POD_NS_POD,
	    .ipc = POD_NS_POD,
	    /* CRI's default for pid is CONTAINER: one PID namespace each. */
	    .pid = POD_NS_CONTAINER,
	};
	_cleanup_(state_map_clear) struct state_map labels = {0}, annotations = {0};
	srv_map_to_state(c->labels, c->n_labels, &labels);
	srv_map_to_state(c->annotations, c->n_annotations, &annotations);
	pc.labels = &labels;
	pc.annotations = &annotations;

	_cleanup_free_ struct pod_sysctl *sysctls = NULL;
	_cleanup_free_ struct pod_idmap *uids = NULL, *gids = NULL;
	_cleanup_(cg_resources_clear) struct cg_resources res;
	cg_resources_init(&res);
	const Runtime__V1__LinuxPodSandboxConfig *lc = c->linux;
	if (lc) {
		pc.cgroup_parent = lc->cgroup_parent;
		const Runtime__V1__LinuxSandboxSecurityContext *sc = lc->security_context;
		_cleanup_(lc_lsm_clear) struct lc_lsm lsm;
		lc_lsm_detect(NULL, &lsm);
		bool any = false;
		if (srv_pod_security_from_cri(sc, &lsm, &pc.privileged, err) < 0 ||
		    srv_pod_resources_from_cri(lc->resources, lc->overhead, &res, &any, err) < 0)
			return husk_error_prefix(err, "RunPodSandbox '%s': linux", pc.name);
		if (any)
			pc.resources = &res;
		if (sc && sc->namespace_options) {
			const Runtime__V1__NamespaceOption *no = sc->namespace_options;
			if (ns_mode(no->network, &pc.net, "namespace_options.network", err) < 0 ||
			    ns_mode(no->ipc, &pc.ipc, "namespace_options.ipc", err) < 0 ||
			    ns_mode(no->pid, &pc.pid, "namespace_options.pid", err) < 0)
				return husk_error_prefix(err, "RunPodSandbox '%s'", pc.name);
			if (userns_from_cri(no->userns_options, &pc, &uids, &gids, err) < 0)
				return husk_error_prefix(err, "RunPodSandbox '%s'", pc.name);
		}
		sysctls = xnew(struct pod_sysctl, lc->n_sysctls + 1);
		for (size_t i = 0; i < lc->n_sysctls; i++)
			sysctls[i] =
			    (struct pod_sysctl){lc->sysctls[i]->key, lc->sysctls[i]->value};
		pc.sysctls = sysctls;
		pc.n_sysctls = lc->n_sysctls;
	}
	_cleanup_strv_ char **servers = NULL, **searches = NULL, **options = NULL;
	if (c->dns_config) {
		servers = srv_strv(c->dns_config->servers, c->dns_config->n_servers);
		searches = srv_strv(c->dns_config->searches, c->dns_config->n_searches);
		options = srv_strv(c->dns_config->options, c->dns_config->n_options);
		pc.dns_servers = servers;
		pc.dns_searches = searches;
		pc.dns_options = options;
	}

	_cleanup_free_ struct rt_port_mapping *ports =
	    xnew(struct rt_port_mapping, c->n_port_mappings + 1);
	for (size_t i = 0; i < c->n_port_mappings; i++) {
		const Runtime__V1__PortMapping *m = c->port_mappings[i];
		ports[i] = (struct rt_port_mapping){
		    .protocol = m->protocol == RUNTIME__V1__PROTOCOL__UDP    ? "UDP"
				: m->protocol == RUNTIME__V1__PROTOCOL__SCTP ? "SCTP"
									     : "TCP",
		    .container_port = m->container_port,
		    .host_port = m->host_port,
		    .host_ip = m->host_ip,
		};
	}
	pc.port_mappings = ports;
	pc.n_port_mappings = c->n_port_mappings;

	/* A retry of the same call (see rt_pod_run) is told by this digest. */
	void *copy = srv_message_copy(req);
	_cleanup_free_ char *digest = srv_digest(copy);
	srv_message_free(copy);
	pc.digest = digest;

	char *id = NULL;
	if (rt_pod_run(ctx->runtime, &pc, srv_call_cancel(), &id, err) < 0)
		return -err->code;
	Runtime__V1__RunPodSandboxResponse *r = srv_new(
	    Runtime__V1__RunPodSandboxResponse, RUNTIME__V1__RUN_POD_SANDBOX_RESPONSE__INIT);
	r->pod_sandbox_id = id;
	*ret_out = r;
	return 0;
}

int srv_stop_pod_sandbox(struct srv_ctx *ctx, const void *in, void **ret_out,
			 struct husk_error *err)
{
	const Runtime__V1__StopPodSandboxRequest *req = in;
	if (isempty(req->pod_sandbox_id))
		return husk_error_set(err, EINVAL, "StopPodSandbox: pod_sandbox_id is empty");
	if (rt_pod_stop(ctx->runtime, req->pod_sandbox_id, srv_call_cancel(), err) < 0)
		return -err->code;
	*ret_out = srv_new(Runtime__V1__StopPodSandboxResponse,
			   RUNTIME__V1__STOP_POD_SANDBOX_RESPONSE__INIT);
	return 0;
}

int srv_remove_pod_sandbox(struct srv_ctx *ctx, const void *in, void **ret_out,
			   struct husk_error *err)
{
	const Runtime__V1__RemovePodSandboxRequest *req = in;
	if (isempty(req->pod_sandbox_id))
		return husk_error_set(err, EINVAL, "RemovePodSandbox: pod_sandbox_id is empty");
	if (rt_pod_remove(ctx->runtime, req->pod_sandbox_id, srv_call_cancel(), err) < 0)
		return -err->code;
	*ret_out = srv_new(Runtime__V1__RemovePodSandboxResponse,
			   RUNTIME__V1__REMOVE_POD_SANDBOX_RESPONSE__INIT);
	return 0;
}

int srv_update_pod_sandbox_resources(struct srv_ctx *ctx, const void *in, void **ret_out,
				     struct husk_error *err)
{
	const Runtime__V1__UpdatePodSandboxResourcesRequest *req = in;
	if (isempty(req->pod_sandbox_id))
		return husk_error_set(err, EINVAL,
				      "UpdatePodSandboxResources: pod_sandbox_id is empty");
	_cleanup_(cg_resources_clear) struct cg_resources res;
	bool any = false;
	if (srv_pod_resources_from_cri(req->resources, req->overhead, &res, &any, err) < 0 ||
	    (any && rt_pod_update_resources(ctx->runtime, req->pod_sandbox_id, &res, err) < 0))
		return husk_error_prefix(err, "UpdatePodSandboxResources '%s'",
					 req->pod_sandbox_id);
	/* Nothing to write: still NOT_FOUND for an unknown pod. */
	_cleanup_(pod_record_freep) struct pod_record *p = NULL;
	if (!any && rt_pod_get(ctx->runtime, req->pod_sandbox_id, &p, err) < 0)
		return -err->code;
	*ret_out = srv_new(Runtime__V1__UpdatePodSandboxResourcesResponse,
			   RUNTIME__V1__UPDATE_POD_SANDBOX_RESOURCES_RESPONSE__INIT);
	return 0;
}

static Runtime__V1__PodSandboxMetadata *pod_metadata(const struct pod_record *p)
{
	Runtime__V1__PodSandboxMetadata *m =
	    srv_new(Runtime__V1__PodSandboxMetadata, RUNTIME__V1__POD_SANDBOX_METADATA__INIT);
	m->name = srv_strdup(p->name);
	m->uid = srv_strdup(p->uid);
	m->namespace_ = srv_strdup(p->namespace);
	m->attempt = p->attempt;
	return m;
}

static Runtime__V1__PodSandboxState pod_state(const struct pod_record *p)
{
	return p->state == POD_STATE_READY ? RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
					   : RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_NOTREADY;
}

static Runtime__V1__NamespaceMode cri_ns_mode(enum pod_ns_mode m)
{
	return (Runtime__V1__NamespaceMode)m; /* same values */
}

static Runtime__V1__IDMapping **idmaps_to_cri(const struct pod_idmap *m, size_t n)
{
	Runtime__V1__IDMapping **v = xnew(Runtime__V1__IDMapping *, n + 1);
	for (size_t i = 0; i < n; i++) {
		v[i] = srv_new(Runtime__V1__IDMapping, RUNTIME__V1__IDMAPPING__INIT);
		v[i]->container_id = m[i].container_id;
		v[i]->host_id = m[i].host_id;
		v[i]->length = m[i].size;
	}
	return v;
}

/* userns_options as RunPodSandbox got them: the mode and, for POD, the
 * kubelet's mappings (which /proc/PID/uid_map of its processes shows). */
static Runtime__V1__UserNamespace *userns_to_cri(const struct pod_sandbox_info *sb)
{
	Runtime__V1__UserNamespace *u =
	    srv_new(Runtime__V1__UserNamespace, RUNTIME__V1__USER_NAMESPACE__INIT);
	u->mode =
	    sb->user_ns ? RUNTIME__V1__NAMESPACE_MODE__POD : RUNTIME__V1__NAMESPACE_MODE__NODE;
	if (!sb->user_ns)
		return u;
	u->uids = idmaps_to_cri(sb->uid_map, sb->n_uid_map);
	u->n_uids = sb->n_uid_map;
	u->gids = idmaps_to_cri(sb->gid_map, sb->n_gid_map);
	u->n_gids = sb->n_gid_map;
	return u;
}

static char *pod_info_json(struct srv_ctx *ctx, const struct pod_record *p)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	json_kv_str(g, "id", p->id);
	json_kv_str(g, "hostname", p->sandbox.hostname);
	json_kv_str(g, "cgroupParent", p->cgroup_parent);
	json_kv_int(g, "pid", p->sandbox.init_pid);
	json_key(g, "namespaces");
	yajl_gen_map_open(g);
	json_kv_str(g, "user", p->sandbox.user_ns ? p->sandbox.user_ns : "host");
	json_kv_str(g, "network", p->sandbox.net_ns ? p->sandbox.net_ns : "host");
	json_kv_str(g, "ipc", p->sandbox.ipc_ns ? p->sandbox.ipc_ns : "host");
	json_kv_str(g, "uts", p->sandbox.uts_ns ? p->sandbox.uts_ns : "host");
	if (p->sandbox.pid_ns)
		json_kv_str(g, "pid", p->sandbox.pid_ns);
	yajl_gen_map_close(g);
	srv_userns_info_gen(g, &p->sandbox);
	json_kv_str(g, "shm", p->sandbox.shm);
	json_kv_str(g, "resolvConf", p->sandbox.resolv_file);
	json_kv_str(g, "hosts", p->sandbox.hosts_file);
	_cleanup_free_ char *kview = NULL;
	bool live = false;
	_cleanup_error_ struct husk_error kerr = HUSK_ERROR_INIT;
	if (rt_pod_kernel_view(ctx->runtime, p->id, &kview, &live, &kerr) == 0)
		srv_kernel_view_gen(g, kview, live);
	yajl_gen_map_close(g);
	return json_gen_steal(g);
}

int srv_pod_sandbox_status(struct srv_ctx *ctx, const void *in, void **ret_out,
			   struct husk_error *err)
{
	const Runtime__V1__PodSandboxStatusRequest *req = in;
	if (isempty(req->pod_sandbox_id))
		return husk_error_set(err, EINVAL, "PodSandboxStatus: pod_sandbox_id is empty");
	_cleanup_(pod_record_freep) struct pod_record *p = NULL;
	if (rt_pod_get(ctx->runtime, req->pod_sandbox_id, &p, err) < 0)
		return -err->code;

	Runtime__V1__PodSandboxStatus *st =
	    srv_new(Runtime__V1__PodSandboxStatus, RUNTIME__V1__POD_SANDBOX_STATUS__INIT);
	st->id = srv_strdup(p->id);
	st->metadata = pod_metadata(p);
	st->state = pod_state(p);
	st->created_at = p->created_at;
	st->network = srv_new(Runtime__V1__PodSandboxNetworkStatus,
			      RUNTIME__V1__POD_SANDBOX_NETWORK_STATUS__INIT);
	for (size_t i = 0; p->ips && p->ips[i]; i++) {
		if (i == 0) {
			st->network->ip = srv_strdup(p->ips[0]);
			continue;
		}
		Runtime__V1__PodIP *ip = srv_new(Runtime__V1__PodIP, RUNTIME__V1__POD_IP__INIT);
		ip->ip = srv_strdup(p->ips[i]);
		srv_repeated_add(&st->network->additional_ips, &st->network->n_additional_ips, ip);
	}
	st->linux = srv_new(Runtime__V1__LinuxPodSandboxStatus,
			    RUNTIME__V1__LINUX_POD_SANDBOX_STATUS__INIT);
	st->linux->namespaces = srv_new(Runtime__V1__Namespace, RUNTIME__V1__NAMESPACE__INIT);
	Runtime__V1__NamespaceOption *no =
	    srv_new(Runtime__V1__NamespaceOption, RUNTIME__V1__NAMESPACE_OPTION__INIT);
	no->network = cri_ns_mode(p->sandbox.net);
	no->ipc = cri_ns_mode(p->sandbox.ipc);
	no->pid = cri_ns_mode(p->sandbox.pid);
	no->userns_options = userns_to_cri(&p->sandbox);
	st->linux->namespaces->options = no;
	srv_map_from_state(&p->labels, &st->labels, &st->n_labels,
			   &runtime__v1__pod_sandbox_status__labels_entry__descriptor);
	srv_map_from_state(&p->annotations, &st->annotations, &st->n_annotations,
			   &runtime__v1__pod_sandbox_status__annotations_entry__descriptor);
	st->runtime_handler = srv_strdup(p->runtime_handler);

	Runtime__V1__PodSandboxStatusResponse *r = srv_new(
	    Runtime__V1__PodSandboxStatusResponse, RUNTIME__V1__POD_SANDBOX_STATUS_RESPONSE__INIT);
	r->status = st;
	r->timestamp = now_real_ns();
	if (req->verbose) {
		_cleanup_free_ char *info = pod_info_json(ctx, p);
		srv_map_add(&r->info, &r->n_info,
			    &runtime__v1__pod_sandbox_status_response__info_entry__descriptor,
			    "info", info);
	}
	*ret_out = r;
	return 0;
}

int srv_list_pod_sandbox(struct srv_ctx *ctx, const void *in, void **ret_out,
			 struct husk_error *err)
{
	const Runtime__V1__ListPodSandboxRequest *req = in;
	struct pod_filter f = {0};
	_cleanup_(state_map_clear) struct state_map want = {0};
	if (req->filter) {
		f.id = isempty(req->filter->id) ? NULL : req->filter->id;
		if (req->filter->state) {
			f.has_state = true;
			f.state = req->filter->state->state ==
					  RUNTIME__V1__POD_SANDBOX_STATE__SANDBOX_READY
				      ? POD_STATE_READY
				      : POD_STATE_NOTREADY;
		}
		srv_map_to_state(req->filter->label_selector, req->filter->n_label_selector, &want);
		f.labels = &want;
	}
	const struct pod_record **pods = NULL;
	size_t n = 0;
	if (rt_pod_list(ctx->runtime, &f, &pods, &n, err) < 0)
		return -err->code;
	Runtime__V1__ListPodSandboxResponse *resp = srv_new(
	    Runtime__V1__ListPodSandboxResponse, RUNTIME__V1__LIST_POD_SANDBOX_RESPONSE__INIT);
	/* Packed from the shared records, no string copied (as
	 * ListContainers). */
	for (size_t i = 0; i < n; i++) {
		const struct pod_record *p = pods[i];
		Runtime__V1__PodSandboxMetadata md = RUNTIME__V1__POD_SANDBOX_METADATA__INIT;
		md.name = p->name;
		md.uid = p->uid;
		md.namespace_ = p->namespace;
		md.attempt = p->attempt;
		Runtime__V1__PodSandbox ps = RUNTIME__V1__POD_SANDBOX__INIT;
		ps.id = p->id;
		ps.metadata = &md;
		ps.state = pod_state(p);
		ps.created_at = p->created_at;
		_cleanup_free_ void *labels =
		    srv_map_borrow(&p->labels, &ps.labels, &ps.n_labels,
				   &runtime__v1__pod_sandbox__labels_entry__descriptor);
		_cleanup_free_ void *annotations =
		    srv_map_borrow(&p->annotations, &ps.annotations, &ps.n_annotations,
				   &runtime__v1__pod_sandbox__annotations_entry__descriptor);
		ps.runtime_handler = p->runtime_handler;
		srv_repeated_add_packed(resp, 1, &ps);
	}
	pod_records_release(pods, n);
	*ret_out = resp;
	return 0;
}
