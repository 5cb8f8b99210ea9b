/* Handlers for the runtime's own methods: Version, Status, RuntimeConfig and
 * UpdateRuntimeConfig. */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "server/events.h"
#include "server/handlers.h"

int srv_version(struct srv_ctx *ctx _unused_, const void *in _unused_, void **ret_out,
		struct husk_error *err _unused_)
{
	Runtime__V1__VersionResponse *r =
	    srv_new(Runtime__V1__VersionResponse, RUNTIME__V1__VERSION_RESPONSE__INIT);
	/* "version" is the kubelet-facing API version, kept at 0.1.0 by every
	 * CRI runtime; runtime_api_version is the CRI version we speak. */
	r->version = xstrdup("0.1.0");
	r->runtime_name = xstrdup("husk");
	r->runtime_version = xstrdup(HUSK_VERSION);
	r->runtime_api_version = xstrdup("v1");
	*ret_out = r;
	return 0;
}

static Runtime__V1__RuntimeCondition *condition(const char *type, bool ok, const char *reason,
						const char *message)
{
	Runtime__V1__RuntimeCondition *c =
	    srv_new(Runtime__V1__RuntimeCondition, RUNTIME__V1__RUNTIME_CONDITION__INIT);
	c->type = xstrdup(type);
	c->status = ok;
	if (!ok) {
		c->reason = xstrdup(reason);
		c->message = xstrdup(message);
	}
	return c;
}

int srv_status(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err _unused_)
{
	const Runtime__V1__StatusRequest *req = in;
	Runtime__V1__StatusResponse *r =
	    srv_new(Runtime__V1__StatusResponse, RUNTIME__V1__STATUS_RESPONSE__INIT);
	Runtime__V1__RuntimeStatus *st =
	    srv_new(Runtime__V1__RuntimeStatus, RUNTIME__V1__RUNTIME_STATUS__INIT);
	r->status = st;

	srv_repeated_add(&st->conditions, &st->n_conditions,
			 condition("RuntimeReady", true, NULL, NULL));
	_cleanup_free_ char *net_config = NULL;
	_cleanup_error_ struct husk_error net_err = HUSK_ERROR_INIT;
	bool net_ok = srv_network_ready(ctx, &net_config, &net_err) == 0;
	srv_repeated_add(
	    &st->conditions, &st->n_conditions,
	    condition("NetworkReady", net_ok, "NetworkPluginNotReady", husk_error_msg(&net_err)));

	Runtime__V1__RuntimeHandler *h =
	    srv_new(Runtime__V1__RuntimeHandler, RUNTIME__V1__RUNTIME_HANDLER__INIT);
	h->features = srv_new(Runtime__V1__RuntimeHandlerFeatures,
			      RUNTIME__V1__RUNTIME_HANDLER_FEATURES__INIT);
	srv_repeated_add(&r->runtime_handlers, &r->n_runtime_handlers, h);
	r->features = srv_new(Runtime__V1__RuntimeFeatures, RUNTIME__V1__RUNTIME_FEATURES__INIT);
	/* Merge and Strict, and ContainerStatus.user filled from the spec. */
	r->features->supplemental_groups_policy = true;

	if (req->verbose) {
		_cleanup_free_ char *json = srv_config_to_json(ctx->config, false);
		srv_map_add(&r->info, &r->n_info,
			    &runtime__v1__status_response__info_entry__descriptor, "config", json);
		pthread_mutex_lock(&ctx->lock);
		srv_map_add(&r->info, &r->n_info,
			    &runtime__v1__status_response__info_entry__descriptor, "podCIDR",
			    ctx->pod_cidr);
		pthread_mutex_unlock(&ctx->lock);
		if (net_config)
			srv_map_add(&r->info, &r->n_info,
				    &runtime__v1__status_response__info_entry__descriptor,
				    "networkConfig", net_config);
	}
	*ret_out = r;
	return 0;
}

int srv_runtime_config(struct srv_ctx *ctx, const void *in _unused_, void **ret_out,
		       struct husk_error *err _unused_)
{
	Runtime__V1__RuntimeConfigResponse *r =
	    srv_new(Runtime__V1__RuntimeConfigResponse, RUNTIME__V1__RUNTIME_CONFIG_RESPONSE__INIT);
	r->linux = srv_new(Runtime__V1__LinuxRuntimeConfiguration,
			   RUNTIME__V1__LINUX_RUNTIME_CONFIGURATION__INIT);
	r->linux->cgroup_driver = streq(ctx->config->cgroup_driver, "systemd")
				      ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
				      : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
	*ret_out = r;
	return 0;
}

int srv_update_runtime_config(struct srv_ctx *ctx, const void *in, void **ret_out,
			      struct husk_error *err _unused_)
{
	const Runtime__V1__UpdateRuntimeConfigRequest *req = in;
	const char *cidr = req->runtime_config && req->runtime_config->network_config
			       ? req->runtime_config->network_config->pod_cidr
			       : NULL;
	/* An empty CIDR means "no change", as the kubelet sends it. */
	if (!isempty(cidr)) {
		pthread_mutex_lock(&ctx->lock);
		free(ctx->pod_cidr);
		ctx->pod_cidr = xstrdup(cidr);
		pthread_mutex_unlock(&ctx->lock);
		log_info("pod CIDR set cidr=%s", cidr);
	}
	*ret_out = srv_new(Runtime__V1__UpdateRuntimeConfigResponse,
			   RUNTIME__V1__UPDATE_RUNTIME_CONFIG_RESPONSE__INIT);
	return 0;
}

/* Stream container events until the client goes away. Events published
 * before the call are not replayed, as in other runtimes. */
int srv_get_container_events(struct srv_ctx *ctx, const void *in _unused_, struct srv_stream *out,
			     struct husk_error *err _unused_)
{
	uint64_t seq = srv_events_tail(ctx->events);
	while (!srv_stream_cancelled(out)) {
		struct srv_event ev;
		int r = srv_events_next(ctx->events, &seq, 500, &ev);
		if (r < 0)
			log_warn("GetContainerEvents: a slow reader lost %d events", -r);
		if (r <= 0)
			continue;
		Runtime__V1__ContainerEventResponse resp =
		    RUNTIME__V1__CONTAINER_EVENT_RESPONSE__INIT;
		resp.container_id = ev.container_id;
		resp.container_event_type = (Runtime__V1__ContainerEventType)ev.type;
		resp.created_at = ev.created_at;
		if (srv_stream_send(out, &resp.base) < 0)
			break;
	}
	return 0;
}
