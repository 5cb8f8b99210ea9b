/* Pod networking glue: opens the CNI manager from huskd's config, gives the
 * runtime its net_setup / net_teardown hooks (translating the pod config
 * into the network library's terms), answers NetworkReady and cleans up
 * attachments left by pods that are gone. */
#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "network/network.h"
#include "runtime/runtime.h"
#include "server/handlers.h"

#define ANN_INGRESS "kubernetes.io/ingress-bandwidth"
#define ANN_EGRESS "kubernetes.io/egress-bandwidth"

int srv_network_init(struct srv_ctx *ctx, struct husk_error *err)
{
	const struct srv_config *c = ctx->config;
	_cleanup_free_ char *cache = xasprintf("%s/cni/results", c->root);
	struct net_options o = {
	    .conf_dir = c->cni_conf_dir,
	    .bin_dirs = c->cni_bin_dirs,
	    .cache_dir = cache,
	    .timeout_ms = c->cni_plugin_timeout * 1000,
	};
	struct net_cni *n = NULL;
	if (net_cni_new(&o, &n, err) < 0)
		return husk_error_prefix(err, "pod network");
	ctx->network = n;
	return 0;
}

void srv_network_shutdown(struct srv_ctx *ctx)
{
	net_cni_free(ctx->network);
	ctx->network = NULL;
}

static char *join_ips(char *const *ips)
{
	char *s = xstrdup("");
	for (size_t i = 0; ips && ips[i]; i++) {
		char *t = xasprintf("%s%s%s", s, i ? "," : "", ips[i]);
		free(s);
		s = t;
	}
	return s;
}

int srv_net_setup(void *data, const char *pod_id, const char *netns,
		  const struct rt_pod_config *cfg, const struct husk_cancel *cancel,
		  char ***ret_ips, struct husk_error *err)
{
	struct srv_ctx *ctx = data;
	if (!ctx->network)
		return husk_error_set(err, EAGAIN, "network not ready: CNI is not initialised");
	_cleanup_free_ struct net_port_mapping *ports =
	    xnew(struct net_port_mapping, cfg->n_port_mappings + 1);
	for (size_t i = 0; i < cfg->n_port_mappings; i++) {
		const struct rt_port_mapping *m = &cfg->port_mappings[i];
		ports[i] = (struct net_port_mapping){
		    .protocol = m->protocol,
		    .container_port = m->container_port,
		    .host_port = m->host_port,
		    .host_ip = m->host_ip,
		};
	}
	pthread_mutex_lock(&ctx->lock);
	_cleanup_free_ char *cidr = ctx->pod_cidr ? xstrdup(ctx->pod_cidr) : NULL;
	pthread_mutex_unlock(&ctx->lock);
	struct net_pod pod = {
	    .id = pod_id,
	    .netns = netns,
	    .name = cfg->name,
	    .namespace = cfg->namespace,
	    .uid = cfg->uid,
	    .ports = ports,
	    .n_ports = cfg->n_port_mappings,
	    .ingress_bandwidth =
		cfg->annotations ? state_map_get(cfg->annotations, ANN_INGRESS) : NULL,
	    .egress_bandwidth =
		cfg->annotations ? state_map_get(cfg->annotations, ANN_EGRESS) : NULL,
	    .dns_servers = cfg->dns_servers,
	    .dns_searches = cfg->dns_searches,
	    .dns_options = cfg->dns_options,
	    .pod_cidr = cidr,
	    .cancel = cancel,
	};
	/* No CNI config at all: refused (the node is NotReady; the kubelet
	 * retries once a network plugin installed its config) unless the
	 * config says pods may run with loopback only (tests, crictl on a bare
	 * host). A config that exists but is unusable is always an error, as
	 * is a failing plugin. */
	if (!net_cni_configured(ctx->network)) {
		if (ctx->config->require_pod_network)
			return husk_error_set(err, EBUSY,
					      "network not ready: no CNI network config in '%s' "
					      "(set require_pod_network to false to run pods with "
					      "loopback only)",
					      ctx->config->cni_conf_dir);
		log_warn("pod=%s: no CNI network config in '%s': the pod has loopback only", pod_id,
			 ctx->config->cni_conf_dir);
		*ret_ips = xnew(char *, 1);
		return 0;
	}
	long long t0 = now_mono_ns();
	_cleanup_(net_result_freep) struct net_result *res = NULL;
	if (net_cni_setup(ctx->network, &pod, &res, err) < 0)
		return -err->code;
	char **ips = net_result_pod_ips(res, NET_DEFAULT_IFNAME);
	_cleanup_free_ char *list = join_ips(ips);
	log_info("pod network ready pod=%s ips=%s cni_ms=%.1f", pod_id, list,
		 (double)(now_mono_ns() - t0) / 1e6);
	*ret_ips = ips;
	return 0;
}

int srv_net_teardown(void *data, const char *pod_id, const char *netns, struct husk_error *err)
{
	struct srv_ctx *ctx = data;
	if (!ctx->network)
		return husk_error_set(err, EAGAIN, "network not ready: CNI is not initialised");
	long long t0 = now_mono_ns();
	if (net_cni_teardown(ctx->network, pod_id, netns, err) < 0)
		return -err->code;
	log_debug("pod network down pod=%s cni_ms=%.1f", pod_id,
		  (double)(now_mono_ns() - t0) / 1e6);
	return 0;
}

int srv_network_ready(struct srv_ctx *ctx, char **ret_path, struct husk_error *err)
{
	if (ctx->network)
		return net_cni_status(ctx->network, ret_path, err);
	/* Without a manager (handler tests): the config alone. */
	if (net_find_config(ctx->config->cni_conf_dir, ret_path, err) < 0)
		return husk_error_set(err, EAGAIN, "network not ready: %s", husk_error_msg(err));
	return 0;
}

void srv_network_gc(struct srv_ctx *ctx)
{
	if (!ctx->network || !ctx->runtime)
		return;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct pod_filter f = {0};
	const struct pod_record **pods = NULL;
	size_t n = 0;
	if (rt_pod_list(ctx->runtime, &f, &pods, &n, &err) < 0) {
		log_warn("pod network cleanup: list pods: %s", err.msg);
		return;
	}
	_cleanup_strv_ char **valid = xnew(char *, 1), **ready = xnew(char *, 1);
	for (size_t i = 0; i < n; i++) {
		valid = strv_append(valid, pods[i]->id);
		if (pods[i]->state == POD_STATE_READY && pods[i]->sandbox.net_ns)
			ready = strv_append(ready, pods[i]->id);
	}
	pod_records_release(pods, n);
	_cleanup_strv_ char **problems = NULL;
	if (net_cni_gc(ctx->network, valid, &problems, &err) < 0) {
		log_warn("pod network cleanup: %s", err.msg);
		return;
	}
	for (size_t i = 0; problems[i]; i++)
		log_warn("pod network cleanup: %s", problems[i]);

	/* Whatever stopped huskd may have hurt the pods' networks too: CHECK
	 * each running pod's attachment (CNI 0.4.0 and later) and say so. */
	for (size_t i = 0; ready[i]; i++) {
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		int r = net_cni_check(ctx->network, ready[i], &e);
		if (r < 0 && r != -ENOENT)
			log_warn("pod network check failed pod=%s: %s", ready[i], e.msg);
	}
}
