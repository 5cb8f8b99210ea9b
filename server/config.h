/* huskd configuration: built-in defaults, then /etc/husk/husk.json, then the
 * drop-ins /etc/husk/husk.d/ (*.json, in name order), then command-line
 * flags. Files are parsed with yajl; an unknown key, a wrong type or a bad
 * value is an error naming the file and the key. */
#ifndef HUSK_SERVER_CONFIG_H
#define HUSK_SERVER_CONFIG_H

#include <stdbool.h>

#include "common/error.h"

#define SRV_DEFAULT_CONFIG "/etc/husk/husk.json"
#define SRV_DEFAULT_SOCKET "/run/husk/husk.sock"
#define SRV_DEFAULT_ROOT "/var/lib/husk"
#define SRV_DEFAULT_STATE "/run/husk"

/* One registry's settings, keyed by host[:port] ("docker.io", "127.0.0.1:5000"). */
struct srv_registry {
	char *host;
	bool insecure;	/* plain HTTP (or TLS without verification) allowed */
	char **mirrors; /* host[:port][/path] tried in order before the registry */
	char *location; /* replaces the registry entirely, no fallback (NULL: none) */
};

/* An OCI runtime a RuntimeClass handler names ("runtimes": {"runc": {...}}). */
struct srv_runtime {
	char *name;	     /* the handler name */
	char *path;	     /* the runtime binary, absolute */
	char *root;	     /* its --root; NULL until load: <state>/runtimes/<name> */
	char **args;	     /* extra global arguments, before --root */
	bool systemd_cgroup; /* pass --systemd-cgroup; cgroupsPath slice:prefix:name */
	/* What `<path> features` reports, read once by Status (under the
	 * server's lock); false when the runtime has no features command. */
	bool probed, rro_mounts, user_namespaces;
};

struct srv_config {
	char *config_path; /* main file; drop-ins come from <dir>/husk.d */
	char *socket;
	char *root;
	char *state;
	char *log_level;     /* error, warn, info, debug */
	char *cgroup_driver; /* cgroupfs, systemd or auto, as configured */
	/* What huskd uses: cgroupfs or systemd, "auto" resolved at load (not a
	 * key: `huskd config` prints cgroup_driver as configured). */
	char *cgroup_driver_used;
	char *cgroup_root;	 /* where the cgroup hierarchy is mounted */
	char *pod_cgroup_parent; /* parent of pods that name none; "": husk's default */
	int shutdown_timeout;	 /* seconds to drain in-flight calls */
	int max_workers;	 /* upper bound of the request thread pool */
	int worker_idle_timeout; /* seconds an idle worker above the minimum stays */

	/* Images */
	int max_concurrent_pulls;  /* PullImage calls run at once; more queue */
	int pull_progress_timeout; /* seconds without a byte that fail a pull (0: none) */
	char *sandbox_image;	   /* reported as pinned */
	char **pinned_images;	   /* NULL-terminated */
	int max_concurrent_downloads;
	struct srv_registry *registries;
	size_t n_registries;

	/* Network */
	char *cni_conf_dir;
	char **cni_bin_dirs;
	int cni_plugin_timeout; /* seconds per plugin call */
	/* With no CNI config at all, refuse pods that need a network (true,
	 * as containerd does) or give them loopback only (false). */
	bool require_pod_network;

	/* Containers */
	long long pids_limit; /* 0: none */
	/* RuntimeClass handlers: "" and "husk" are husk's own launcher unless
	 * default_runtime names one of runtimes. */
	struct srv_runtime *runtimes;
	size_t n_runtimes;
	char *default_runtime; /* "" or "husk": husk's launcher */
	char *shim_path;       /* "": husk-shim beside huskd */
	/* Seconds the result of a RunPodSandbox or CreateContainer is kept for
	 * a retry whose first call's client gave up (then removed, if the
	 * caller had gone and no retry collected it). */
	int retry_keep_period;

	/* Prometheus endpoint: host:port of GET /metrics; "" is off. */
	char *metrics_address;

	/* Streaming server */
	char *stream_address;
	int stream_port; /* 0: a free port */
};

/* Command-line overrides; NULL/unset fields leave the file's values. */
struct srv_flags {
	const char *config;
	const char *socket;
	const char *root;
	const char *state;
	const char *log_level;
	const char *cgroup_driver;
};

/* Build the effective config: defaults, the main file (a missing main file
 * is fine unless it was named with --config), drop-ins, then flags. On
 * error (EINVAL, or the errno of an unreadable file) the message names the
 * file and key. The caller owns *ret (srv_config_free). */
int srv_config_load(const struct srv_flags *flags, struct srv_config **ret, struct husk_error *err);
void srv_config_free(struct srv_config *c);
static inline void srv_config_freep(struct srv_config **c)
{
	srv_config_free(*c);
}

/* The effective config as JSON text (owned by the caller). */
char *srv_config_to_json(const struct srv_config *c, bool pretty);

/* Parse "host:port" (host an IPv4 address, a bracketed IPv6 address or
 * "localhost"; port 1-65535) into *ret (a struct sockaddr_in or _in6) and
 * *ret_len. EINVAL naming what is wrong. */
struct sockaddr_storage;
int srv_host_port_parse(const char *addr, struct sockaddr_storage *ret, unsigned *ret_len,
			struct husk_error *err);
/* The OCI runtime serving a RunPodSandbox runtime_handler: NULL with 0 for
 * husk's own launcher ("husk", and "" unless default_runtime names an OCI
 * runtime); ENOENT naming the handler when it is not configured. */
int srv_config_runtime(const struct srv_config *c, const char *handler,
		       const struct srv_runtime **ret, struct husk_error *err);

/* The registry entry for host, or NULL. */
const struct srv_registry *srv_config_registry(const struct srv_config *c, const char *host);

#endif
