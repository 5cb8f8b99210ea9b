/* Pod networking through CNI plugins (spec 0.3.x, 0.4.0, 1.0.0, 1.1.0):
 * finding the network configuration, running the plugin chain for a pod
 * (ADD, DEL, CHECK, STATUS, GC), parsing plugin results and errors, and
 * keeping what ADD did on disk so DEL works after a huskd restart. */
#ifndef HUSK_NETWORK_NETWORK_H
#define HUSK_NETWORK_NETWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "common/cancel.h"
#include "common/error.h"

#define NET_DEFAULT_CONF_DIR "/etc/cni/net.d"
#define NET_DEFAULT_IFNAME "eth0"
#define NET_DEFAULT_TIMEOUT_MS (60 * 1000)
/* Bounds on what a config file or a plugin may hand us. */
#define NET_CONFIG_MAX_SIZE (1U << 20)
#define NET_PLUGIN_OUTPUT_MAX (1U << 20)
#define NET_PLUGIN_STDERR_MAX (64U << 10)
#define NET_MAX_PLUGINS 64
#define NET_MAX_PORTS 1024

/* ---- versions ---- */

/* The CNI spec versions husk speaks, oldest first, NULL-terminated. */
extern const char *const net_cni_versions[];

/* A version "MAJOR.MINOR.PATCH" (or "MAJOR.MINOR") as MAJOR*10000 +
 * MINOR*100 + PATCH; -1 when malformed. */
int net_version_num(const char *v);
/* True for the versions in net_cni_versions (0.1.0 to 1.1.0). */
bool net_version_supported(const char *v);

/* ---- results ---- */

struct net_interface {
	char *name;
	char *mac;		    /* NULL when absent */
	char *sandbox;		    /* netns path for pod interfaces, NULL for host ones */
	int mtu;		    /* 0: absent (1.1) */
	char *socket_path, *pci_id; /* 1.1, NULL when absent */
};

struct net_ip {
	int family;    /* 4 or 6 */
	char *address; /* CIDR: "10.244.0.5/24" */
	char *gateway; /* NULL when absent */
	int interface; /* index into interfaces; -1 when absent */
};

struct net_route {
	char *dst;			  /* CIDR */
	char *gw;			  /* NULL when absent */
	int mtu, advmss, priority, table; /* 1.1; 0 when absent */
	int scope;			  /* 1.1; -1 when absent */
};

struct net_dns {
	char **nameservers; /* NULL-terminated, never NULL */
	char *domain;
	char **search;	/* never NULL */
	char **options; /* never NULL */
};

/* A plugin's ADD result in husk's own form, whatever the version it came in. */
struct net_result {
	char *cni_version;
	struct net_interface *interfaces;
	size_t n_interfaces;
	struct net_ip *ips;
	size_t n_ips;
	struct net_route *routes;
	size_t n_routes;
	struct net_dns dns;
};

void net_result_free(struct net_result *r);
static inline void net_result_freep(struct net_result **r)
{
	net_result_free(*r);
}

/* Parse a result of any supported version: the 0.1/0.2 form (ip4, ip6),
 * the 0.3/0.4 form (ips carry "version") and the 1.x form. A missing
 * cniVersion is taken as 0.1.0, as the spec says. EINVAL names the field
 * that is wrong; ENOTSUP for a version husk does not know. The caller owns
 * *ret. */
int net_result_parse(const char *json, size_t len, struct net_result **ret, struct husk_error *err);
int net_result_from_tree(yajl_val tree, struct net_result **ret, struct husk_error *err);

/* The result as JSON in the format of version (one of net_cni_versions,
 * 0.3.0 or later), e.g. to chain it as prevResult to a plugin configured
 * for another version than the one that produced it. Caller frees. */
char *net_result_to_json(const struct net_result *r, const char *version);

/* The pod's addresses in the result, without prefix length: those on the
 * sandbox interface named ifname when there are any, else those on any
 * sandbox interface (or on none) except loopback ones; IPv4 first, then in
 * result order, duplicates dropped. Never NULL; caller frees (strv_free). */
char **net_result_pod_ips(const struct net_result *r, const char *ifname);

/* ---- errors ---- */

/* Well-known CNI error codes. */
enum {
	NET_CNI_ERR_INCOMPATIBLE_VERSION = 1,
	NET_CNI_ERR_UNSUPPORTED_FIELD = 2,
	NET_CNI_ERR_UNKNOWN_CONTAINER = 3,
	NET_CNI_ERR_INVALID_ENV = 4,
	NET_CNI_ERR_IO = 5,
	NET_CNI_ERR_DECODE = 6,
	NET_CNI_ERR_INVALID_CONFIG = 7,
	NET_CNI_ERR_TRY_AGAIN = 11,
	NET_CNI_ERR_NOT_AVAILABLE = 50,
	NET_CNI_ERR_LIMITED = 51,
};

/* Parse a plugin's error output ({"code", "msg", "details"}). On success
 * *ret_code is the code and *ret_msg (caller frees) "msg" or "msg: details"
 * when there are details. EINVAL when json is not a CNI error. */
int net_error_parse(const char *json, size_t len, unsigned *ret_code, char **ret_msg,
		    struct husk_error *err);

/* ---- configuration ---- */

struct net_plugin_conf {
	const char *type;      /* points into the config tree */
	yajl_val conf;	       /* the plugin's object, owned by the list */
	yajl_val capabilities; /* its "capabilities" object, or NULL */
};

/* A network configuration list. A single-plugin .conf becomes a list of
 * one. */
struct net_conflist {
	char *path; /* the file it came from, or "" */
	char *name;
	char *cni_version; /* the version chosen (cniVersions negotiated) */
	bool disable_check, disable_gc;
	struct net_plugin_conf *plugins;
	size_t n_plugins;
	char *text;    /* the file as read, for the on-disk record */
	yajl_val tree; /* parsed text */
};

void net_conflist_free(struct net_conflist *c);
static inline void net_conflist_freep(struct net_conflist **c)
{
	net_conflist_free(*c);
}

/* Parse a config list (or a single plugin config) from text; what names it
 * in errors. The version is the highest of "cniVersions" husk supports, else
 * "cniVersion". EINVAL with the problem (no name, no plugins, a plugin
 * without a type or with one that is not a plain file name, chaining with a
 * version before 0.3.0, no supported version). */
int net_conflist_parse(const char *text, size_t len, const char *what, struct net_conflist **ret,
		       struct husk_error *err);
int net_conflist_load(const char *path, struct net_conflist **ret, struct husk_error *err);

/* Find the configuration huskd would use in conf_dir: the first file by
 * name ending in .conflist, .conf or .json that parses as a CNI config
 * (files that do not are skipped). On success the caller owns *ret (or
 * *ret_path). ENOENT when there is no such file at all, EINVAL naming the
 * first file and what is wrong with it when none is usable, or the error
 * reading the directory. */
int net_conflist_find(const char *conf_dir, struct net_conflist **ret, struct husk_error *err);
int net_find_config(const char *conf_dir, char **ret_path, struct husk_error *err);

/* True when conf_dir holds any file named like a config (usable or not),
 * or cannot be read: i.e. CNI is meant to be configured there. */
bool net_config_present(const char *conf_dir);

/* Path of plugin type in bin_dirs (first executable match). EINVAL for a
 * type that is not a plain file name, ENOENT naming the dirs otherwise. */
int net_plugin_find(char *const *bin_dirs, const char *type, char **ret_path,
		    struct husk_error *err);

/* ---- running one plugin ---- */

struct net_exec {
	const char *command;	  /* ADD, DEL, CHECK, STATUS, GC, VERSION */
	const char *container_id; /* NULL for STATUS, GC, VERSION */
	const char *netns;	  /* NULL or "": not passed */
	const char *ifname;
	const char *args;      /* CNI_ARGS, NULL: none */
	char *const *bin_dirs; /* CNI_PATH */
	int timeout_ms;	       /* 0: NET_DEFAULT_TIMEOUT_MS */
	/* Looked at while the plugin runs: once it says so the plugin is
	 * killed. NULL: runs to its end or the timeout. */
	const struct husk_cancel *cancel;
};

/* Run the plugin at path (no shell: posix_spawn in its own process group,
 * stdin/stdout/stderr on pipes, other fds closed, signals default) with
 * the CNI_* variables on top of huskd's environment and stdin_data on
 * stdin. On exit 0, *ret_out is its stdout (NUL-terminated, may be empty;
 * caller frees). On failure err carries the plugin's own message: the
 * "msg: details" of its CNI error JSON, else the end of its stderr, else
 * how it ended; the code is EAGAIN for CNI code 11 ("try again later") and
 * EIO for other plugin failures. ETIMEDOUT when it ran past the timeout
 * (its process group is killed); EFBIG when it wrote more than
 * NET_PLUGIN_OUTPUT_MAX; ECANCELED when x->cancel ended it (killed the
 * same way). When ret_cni_code is not NULL it gets the CNI error
 * code (0 when there was none). */
int net_plugin_exec(const char *path, const struct net_exec *x, const char *stdin_data,
		    size_t stdin_len, char **ret_out, unsigned *ret_cni_code,
		    struct husk_error *err);

/* ---- the pod network manager ---- */

struct net_options {
	const char *conf_dir;  /* NULL: NET_DEFAULT_CONF_DIR */
	char *const *bin_dirs; /* required, NULL-terminated */
	/* Where each pod's attachment is recorded (config, arguments, ADD
	 * result), one file per pod, so DEL can run after a restart or after
	 * the config changed. Created when missing. Required. */
	const char *cache_dir;
	int timeout_ms; /* per plugin call; 0: NET_DEFAULT_TIMEOUT_MS */
};

struct net_port_mapping {
	const char *protocol; /* "TCP", "UDP", "SCTP" (any case); NULL: TCP */
	int container_port;
	int host_port;	     /* <= 0: not mapped on the host, skipped */
	const char *host_ip; /* NULL or "": any */
};

/* What a pod attachment is made from; borrowed for the call. */
struct net_pod {
	const char *id;			    /* CNI_CONTAINERID and K8S_POD_INFRA_CONTAINER_ID */
	const char *netns;		    /* the pinned network namespace */
	const char *ifname;		    /* NULL: NET_DEFAULT_IFNAME */
	const char *name, *namespace, *uid; /* K8S_POD_* */
	const struct net_port_mapping *ports;
	size_t n_ports;
	/* kubernetes.io/ingress-bandwidth and egress-bandwidth values (k8s
	 * quantities in bits per second), NULL when absent. */
	const char *ingress_bandwidth, *egress_bandwidth;
	char *const *dns_servers, *const *dns_searches, *const *dns_options;
	const char *pod_cidr; /* for the ipRanges capability; NULL: none */
	/* Ends an ADD early: the plugin running is killed (ECANCELED) and the
	 * chain undone with DEL, which is never cut short. NULL: none. */
	const struct husk_cancel *cancel;
};

struct net_cni;

/* True when the manager's conf dir holds a config file (net_config_present). */
bool net_cni_configured(struct net_cni *n);

/* A manager over one conf dir and plugin dirs. The config is looked up
 * again for every ADD and STATUS, so a config that appears, changes or
 * goes is seen without a restart. Thread-safe; the caller serialises calls
 * for one pod id. */
int net_cni_new(const struct net_options *opts, struct net_cni **ret, struct husk_error *err);
void net_cni_free(struct net_cni *n);

/* Attach the pod: record the attachment on disk, run ADD through the
 * chain (prevResult chained), record the result. On success the caller
 * owns *ret. On failure DEL runs through the whole chain in reverse and
 * the record goes once DEL succeeded (a failed DEL keeps it for
 * net_cni_teardown or net_cni_gc); err carries the plugin's message.
 * Errors: EAGAIN when no usable config exists (not ready), EINVAL for a
 * bad port mapping or bandwidth annotation, EEXIST when the pod already has
 * an attachment, and net_plugin_exec's. */
int net_cni_setup(struct net_cni *n, const struct net_pod *pod, struct net_result **ret,
		  struct husk_error *err);

/* Detach pod id with what its record says (the config and arguments of
 * ADD, its result as prevResult): DEL through the chain in reverse, then
 * remove the record. Idempotent: no record is success. netns overrides
 * the recorded path when not NULL; a path that is not a network namespace
 * any more (a restart lost the pin, a reboot) is passed as empty so
 * plugins release what they hold anyway. */
int net_cni_teardown(struct net_cni *n, const char *id, const char *netns, struct husk_error *err);

/* CHECK the pod's attachment through the chain. 0 when it is fine or when
 * the version (< 0.4.0) or disableCheck rules CHECK out; ENOENT when the
 * pod has no attachment; else the plugin's error. A plugin's failure that
 * is only about an IP family the pod has no address of (portmap looks in
 * ip6tables for an IPv4-only pod's chain) is not counted. */
int net_cni_check(struct net_cni *n, const char *id, struct husk_error *err);

/* The ADD result recorded for pod id (ENOENT when none). */
int net_cni_result(struct net_cni *n, const char *id, struct net_result **ret,
		   struct husk_error *err);

/* Ids of the pods with a recorded attachment, sorted. */
int net_cni_list(struct net_cni *n, char ***ret_ids, struct husk_error *err);

/* Whether the network is ready for ADD: a usable config exists, every
 * plugin of the chain is found, and for 1.1.0 configs every plugin's
 * STATUS succeeds. On success *ret_path (when not NULL; caller frees) is
 * the config file. EAGAIN with the reason otherwise. */
int net_cni_status(struct net_cni *n, char **ret_path, struct husk_error *err);

/* Garbage collection after a restart: tear down every recorded attachment
 * whose id is not in valid_ids (NULL-terminated), then, for a 1.1.0 config
 * without disableGC, send GC with the remaining attachments through the
 * chain. Every problem is reported in *ret_problems (one line each, caller
 * frees; may be empty); the return is 0 unless the cache cannot be read. */
int net_cni_gc(struct net_cni *n, char *const *valid_ids, char ***ret_problems,
	       struct husk_error *err);

/* ---- capability arguments ---- */

/* Parse a Kubernetes quantity ("10M", "1.5Gi", "500k", "1e6") as a whole
 * number, rounding fractions up. EINVAL when malformed or out of range. */
int net_quantity_parse(const char *s, long long *ret, struct husk_error *err);

/* Build the runtimeConfig object of every capability husk knows
 * (portMappings, bandwidth, dns, ipRanges) from pod, as JSON text (caller
 * frees). EINVAL naming the port mapping or annotation that is wrong. */
int net_runtime_config(const struct net_pod *pod, char **ret_json, struct husk_error *err);

/* CNI_ARGS for the pod: IgnoreUnknown=1 and the K8S_POD_* pairs. EINVAL
 * when a value holds ';' or '='. Caller frees. */
int net_cni_args(const struct net_pod *pod, char **ret, struct husk_error *err);

#endif
