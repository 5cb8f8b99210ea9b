/* Handlers for the runtime's own methods: Version, Status, RuntimeConfig and
 * UpdateRuntimeConfig. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/json.h"
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

static Runtime__V1__RuntimeHandler *handler_msg(const char *name, bool rro, bool userns)
{
	Runtime__V1__RuntimeHandler *h =
	    srv_new(Runtime__V1__RuntimeHandler, RUNTIME__V1__RUNTIME_HANDLER__INIT);
	h->name = xstrdup(name);
	h->features = srv_new(Runtime__V1__RuntimeHandlerFeatures,
			      RUNTIME__V1__RUNTIME_HANDLER_FEATURES__INIT);
	h->features->recursive_read_only_mounts = rro;
	h->features->user_namespaces = userns;
	return h;
}

/* `<rt> features` (runtime-spec features.md): recursive read-only mounts
 * when mountOptions has "rro", user namespaces when idmapped mounts are
 * enabled. A runtime without the command (crun 1.8.1) reports neither. */
static void probe_features(struct srv_runtime *rt)
{
	rt->probed = true;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		if (dup2(p[1], 1) < 0 || dup2(null, 0) < 0 || dup2(null, 2) < 0)
			_exit(127);
		execl(rt->path, rt->path, "features", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	_cleanup_free_ char *out = xmalloc(1 << 16);
	size_t len = 0;
	ssize_t n;
	while (pid > 0 && len < (1 << 16) - 1 &&
	       (n = read(p[0], out + len, (1 << 16) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
	}
	close(p[0]);
	int st = 1;
	if (pid > 0)
		waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return;
	_cleanup_json_ yajl_val t = NULL;
	if (json_parse(out, len, "features", &t, NULL) < 0)
		return;
	yajl_val opts = json_get(t, "mountOptions");
	for (size_t i = 0; YAJL_IS_ARRAY(opts) && i < opts->u.array.len; i++)
		if (YAJL_IS_STRING(opts->u.array.values[i]) &&
		    streq(opts->u.array.values[i]->u.string, "rro"))
			rt->rro_mounts = true;
	yajl_val idmap = json_get(json_get(json_get(t, "linux"), "mountExtensions"), "idmap");
	rt->user_namespaces = YAJL_IS_TRUE(json_get(idmap, "enabled"));
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

	/* "" and "husk": husk's launcher (or default_runtime's), then every
	 * configured OCI runtime. */
	pthread_mutex_lock(&ctx->lock);
	/* Pods in user namespaces (userns_options mode POD) with every
	 * handler: husk's launcher makes the idmapped mounts itself; for an
	 * OCI runtime husk-shim makes them on the host and the runtime joins
	 * the pod's user namespace by path, so it needs no idmap support of
	 * its own (`features` idmap, which runc 1.1.5 lacks). "" is husk's
	 * unless default_runtime names another. */
	const char *builtin[] = {"", "husk"};
	for (size_t i = 0; i < ARRAY_SIZE(builtin); i++) {
		const struct srv_runtime *oci = NULL;
		srv_config_runtime(ctx->config, builtin[i], &oci, NULL);
		srv_repeated_add(&r->runtime_handlers, &r->n_runtime_handlers,
				 handler_msg(builtin[i], false, true));
	}
	for (size_t i = 0; i < ctx->config->n_runtimes; i++) {
		struct srv_runtime *rt = &ctx->config->runtimes[i];
		if (!rt->probed)
			probe_features(rt);
		srv_repeated_add(&r->runtime_handlers, &r->n_runtime_handlers,
				 handler_msg(rt->name, rt->rro_mounts, true));
	}
	pthread_mutex_unlock(&ctx->lock);
	r->features = srv_new(Runtime__V1__RuntimeFeatures, RUNTIME__V1__RUNTIME_FEATURES__INIT);
	/* Merge and Strict, and ContainerStatus.user filled from the spec. */
	r->features->supplemental_groups_policy = true;

	if (req->verbose) {
		_cleanup_free_ char *json = srv_config_to_json(ctx->config, false);
		srv_map_add(&r->info, &r->n_info,
			    &runtime__v1__status_response__info_entry__descriptor, "config", json);
		/* config shows cgroup_driver as configured (maybe "auto"). */
		srv_map_add(&r->info, &r->n_info,
			    &runtime__v1__status_response__info_entry__descriptor, "cgroupDriver",
			    ctx->config->cgroup_driver_used);
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
	r->linux->cgroup_driver = streq(ctx->config->cgroup_driver_used, "systemd")
				      ? RUNTIME__V1__CGROUP_DRIVER__SYSTEMD
				      : RUNTIME__V1__CGROUP_DRIVER__CGROUPFS;
	*ret_out = r;
	return 0;
}

/* "10.244.0.0/24" or a dual-stack "10.244.0.0/24,fd00:10:244::/64". */
static int check_cidrs(const char *text, struct husk_error *err)
{
	_cleanup_free_ char *copy = xstrdup(text);
	char *save = NULL;
	for (char *c = strtok_r(copy, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
		char *slash = strchr(c, '/');
		unsigned char buf[16];
		char *end;
		long bits = slash ? strtol(slash + 1, &end, 10) : -1;
		if (slash)
			*slash = '\0';
		bool v6 = strchr(c, ':');
		if (!slash || *end || bits < 0 || bits > (v6 ? 128 : 32) ||
		    inet_pton(v6 ? AF_INET6 : AF_INET, c, buf) != 1)
			return husk_error_set(
			    err, EINVAL, "UpdateRuntimeConfig: pod_cidr '%s' is not a CIDR list",
			    text);
	}
	return 0;
}

static char *pod_cidr_file(const struct srv_ctx *ctx)
{
	return xasprintf("%s/pod-cidr", ctx->config->state);
}

void srv_pod_cidr_load(struct srv_ctx *ctx)
{
	_cleanup_free_ char *path = pod_cidr_file(ctx);
	char *text = NULL;
	if (fs_read_file(path, 4096, &text, NULL, NULL) < 0)
		return;
	text[strcspn(text, "\n")] = '\0';
	if (check_cidrs(text, NULL) < 0) {
		free(text);
		return;
	}
	ctx->pod_cidr = text;
}

int srv_update_runtime_config(struct srv_ctx *ctx, const void *in, void **ret_out,
			      struct husk_error *err)
{
	const Runtime__V1__UpdateRuntimeConfigRequest *req = in;
	const char *cidr = req->runtime_config && req->runtime_config->network_config
			       ? req->runtime_config->network_config->pod_cidr
			       : NULL;
	/* An empty CIDR means "no change", as the kubelet sends it. The
	 * kubelet sends it again only when it changes, so it is kept on disk
	 * for a restarted huskd. */
	if (!isempty(cidr)) {
		if (check_cidrs(cidr, err) < 0)
			return -err->code;
		_cleanup_free_ char *path = pod_cidr_file(ctx);
		if (fs_write_atomic(path, cidr, strlen(cidr), 0644, err) < 0)
			return husk_error_prefix(err, "UpdateRuntimeConfig");
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
