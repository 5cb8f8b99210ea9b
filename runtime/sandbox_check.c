/* Pod sandbox specs and records: the names of namespace modes, a record's
 * sandbox part (clear, copy), and the checks of a spec before anything is
 * made (ids, hostname, DNS, sysctls, id maps). Below sandbox.c. */
#include "runtime/sandbox.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <string.h>

static const char *const ns_mode_names[] = {
    [POD_NS_POD] = "POD",
    [POD_NS_CONTAINER] = "CONTAINER",
    [POD_NS_NODE] = "NODE",
    [POD_NS_TARGET] = "TARGET",
};

const char *pod_ns_mode_name(enum pod_ns_mode mode)
{
	if ((unsigned)mode >= ARRAY_SIZE(ns_mode_names))
		return NULL;
	return ns_mode_names[mode];
}

int pod_ns_mode_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(ns_mode_names); i++)
		if (streq(name, ns_mode_names[i]))
			return (int)i;
	return -1;
}

void pod_sandbox_info_clear(struct pod_sandbox_info *info)
{
	if (!info)
		return;
	free(info->id);
	free(info->dir);
	free(info->user_ns);
	free(info->net_ns);
	free(info->ipc_ns);
	free(info->uts_ns);
	free(info->pid_ns);
	free(info->shm);
	free(info->hostname);
	free(info->hostname_file);
	free(info->hosts_file);
	free(info->resolv_file);
	free(info->uid_map);
	free(info->gid_map);
	*info = (struct pod_sandbox_info){0};
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

struct pod_idmap *pod_idmaps_dup(const struct pod_idmap *m, size_t n)
{
	if (!m || !n)
		return NULL;
	struct pod_idmap *c = xnew(struct pod_idmap, n);
	memcpy(c, m, n * sizeof(*m));
	return c;
}

void pod_sandbox_info_copy(struct pod_sandbox_info *dst, const struct pod_sandbox_info *src)
{
	*dst = *src;
	dst->id = dup_or_null(src->id);
	dst->dir = dup_or_null(src->dir);
	dst->user_ns = dup_or_null(src->user_ns);
	dst->net_ns = dup_or_null(src->net_ns);
	dst->ipc_ns = dup_or_null(src->ipc_ns);
	dst->uts_ns = dup_or_null(src->uts_ns);
	dst->pid_ns = dup_or_null(src->pid_ns);
	dst->shm = dup_or_null(src->shm);
	dst->hostname = dup_or_null(src->hostname);
	dst->hostname_file = dup_or_null(src->hostname_file);
	dst->hosts_file = dup_or_null(src->hosts_file);
	dst->resolv_file = dup_or_null(src->resolv_file);
	dst->uid_map = pod_idmaps_dup(src->uid_map, src->n_uid_map);
	dst->gid_map = pod_idmaps_dup(src->gid_map, src->n_gid_map);
	dst->n_uid_map = dst->uid_map ? src->n_uid_map : 0;
	dst->n_gid_map = dst->gid_map ? src->n_gid_map : 0;
}

/* ---- validation ---------------------------------------------------------- */

static bool hostname_valid(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > POD_HOSTNAME_MAX || h[0] == '-' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)h[i]) && !strchr("_.-", h[i]))
			return false;
	return true;
}

/* A single word for a resolv.conf line: printable, no blanks. */
static bool word_valid(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isgraph((unsigned char)s[i]))
			return false;
	return true;
}

bool pod_ip_valid(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];
	if (strlen(s) > INET6_ADDRSTRLEN + IF_NAMESIZE)
		return false;
	if (inet_pton(AF_INET, s, buf) == 1)
		return true;
	/* An IPv6 address may carry a zone ("fe80::1%eth0"). */
	char addr[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
	snprintf(addr, sizeof(addr), "%s", s);
	char *zone = strchr(addr, '%');
	if (zone) {
		if (!word_valid(zone + 1, IF_NAMESIZE))
			return false;
		*zone = '\0';
	}
	return inet_pton(AF_INET6, addr, buf) == 1;
}

char *pod_sysctl_path(const char *name, enum sysctl_ns *ret_ns)
{
	size_t n = strlen(name);
	if (n == 0 || n > POD_SYSCTL_NAME_MAX)
		return NULL;
	char sep = strchr(name, '/') ? '/' : '.';
	char *segs[32];
	size_t nseg = 0;
	_cleanup_free_ char *copy = xstrdup(name);
	for (char *p = copy;;) {
		char *end = strchr(p, sep);
		if (end)
			*end = '\0';
		if (*p == '\0' || streq(p, ".") || streq(p, "..") || nseg == ARRAY_SIZE(segs))
			return NULL;
		for (const char *c = p; *c; c++)
			if (!isalnum((unsigned char)*c) && !strchr("_-", *c) &&
			    !(sep == '/' && *c == '.'))
				return NULL;
		segs[nseg++] = p;
		if (!end)
			break;
		p = end + 1;
	}
	enum sysctl_ns ns = SYSCTL_NONE;
	if (streq(segs[0], "net") && nseg >= 2)
		ns = SYSCTL_NET;
	else if (streq(segs[0], "kernel") && nseg == 2 &&
		 (startswith(segs[1], "shm") || startswith(segs[1], "msg") ||
		  streq(segs[1], "sem")))
		ns = SYSCTL_IPC;
	else if (streq(segs[0], "fs") && nseg == 3 && streq(segs[1], "mqueue"))
		ns = SYSCTL_IPC;
	char *path = xstrdup("/proc/sys");
	for (size_t i = 0; i < nseg; i++) {
		char *next = xasprintf("%s/%s", path, segs[i]);
		free(path);
		path = next;
	}
	*ret_ns = ns;
	return path;
}

int pod_sysctl_check(const char *name, const char *value, enum pod_ns_mode net,
		     enum pod_ns_mode ipc, struct husk_error *err)
{
	if (isempty(name))
		return husk_error_set(err, EINVAL, "sysctl '': empty name");
	enum sysctl_ns ns;
	_cleanup_free_ char *path = pod_sysctl_path(name, &ns);
	if (!path)
		return husk_error_set(err, EINVAL, "sysctl '%.*s': malformed name",
				      POD_SYSCTL_NAME_MAX, name);
	if (ns == SYSCTL_NONE)
		return husk_error_set(err, EINVAL,
				      "sysctl '%s': not a namespaced sysctl a pod may set", name);
	if (ns == SYSCTL_NET && net != POD_NS_POD)
		return husk_error_set(err, EINVAL,
				      "sysctl '%s': the pod uses the host network namespace", name);
	if (ns == SYSCTL_IPC && ipc != POD_NS_POD)
		return husk_error_set(err, EINVAL,
				      "sysctl '%s': the pod uses the host IPC namespace", name);
	if (!value || !*value)
		return husk_error_set(err, EINVAL, "sysctl '%s': empty value", name);
	size_t n = strlen(value);
	if (n > POD_SYSCTL_VALUE_MAX)
		return husk_error_set(err, EINVAL, "sysctl '%s': value longer than %d bytes", name,
				      POD_SYSCTL_VALUE_MAX);
	for (size_t i = 0; i < n; i++)
		if (iscntrl((unsigned char)value[i]) && value[i] != '\t')
			return husk_error_set(err, EINVAL,
					      "sysctl '%s': control character in value", name);
	return 0;
}

int pod_idmaps_check(const struct pod_idmap *m, size_t n, const char *field, struct husk_error *err)
{
	if (n == 0)
		return husk_error_set(err, EINVAL, "%s: no mapping", field);
	if (n > POD_MAX_IDMAPS)
		return husk_error_set(err, EINVAL, "%s: more than %d mappings", field,
				      POD_MAX_IDMAPS);
	for (size_t i = 0; i < n; i++) {
		uint64_t cend = (uint64_t)m[i].container_id + m[i].size;
		uint64_t hend = (uint64_t)m[i].host_id + m[i].size;
		if (m[i].size == 0)
			return husk_error_set(err, EINVAL, "%s[%zu]: length 0", field, i);
		/* (uid_t)-1 is no id: the kernel refuses a range over it. */
		if (cend > UINT32_MAX || hend > UINT32_MAX)
			return husk_error_set(err, EINVAL, "%s[%zu]: range past id 4294967294",
					      field, i);
		if (m[i].host_id == 0)
			return husk_error_set(
			    err, EINVAL, "%s[%zu]: maps the host's root (host_id 0)", field, i);
		for (size_t j = 0; j < i; j++) {
			uint64_t cj = m[j].container_id, hj = m[j].host_id;
			bool c_over = m[i].container_id < cj + m[j].size && cj < cend;
			bool h_over = m[i].host_id < hj + m[j].size && hj < hend;
			if (c_over || h_over)
				return husk_error_set(err, EINVAL,
						      "%s[%zu]: overlaps %s[%zu] (%s ids)", field,
						      i, field, j, c_over ? "container" : "host");
		}
	}
	return 0;
}

static bool mode_is_pod_or_node(enum pod_ns_mode m)
{
	return m == POD_NS_POD || m == POD_NS_NODE;
}

static int check_list(char *const *v, size_t max, const char *what, bool ip, struct husk_error *err)
{
	size_t n = strv_length(v);
	if (n > max)
		return husk_error_set(err, EINVAL, "dns %s: more than %zu entries", what, max);
	for (size_t i = 0; i < n; i++) {
		bool ok = ip ? pod_ip_valid(v[i]) : word_valid(v[i], 253);
		if (!ok)
			return husk_error_set(err, EINVAL, "dns %s '%.256s': invalid", what, v[i]);
	}
	return 0;
}

int pod_spec_check(const struct pod_sandbox_spec *s, struct husk_error *err)
{
	if (!husk_obj_id_valid(s->id))
		return husk_error_set(err, EINVAL, "pod id '%.*s': invalid", POD_ID_MAX,
				      s->id ? s->id : "");
	if (!mode_is_pod_or_node(s->net))
		return husk_error_set(err, EINVAL, "network namespace mode %d: not POD or NODE",
				      (int)s->net);
	if (!mode_is_pod_or_node(s->ipc))
		return husk_error_set(err, EINVAL, "IPC namespace mode %d: not POD or NODE",
				      (int)s->ipc);
	if (!mode_is_pod_or_node(s->uts))
		return husk_error_set(err, EINVAL, "UTS namespace mode %d: not POD or NODE",
				      (int)s->uts);
	if (s->pid != POD_NS_POD && s->pid != POD_NS_CONTAINER && s->pid != POD_NS_NODE)
		return husk_error_set(
		    err, EINVAL, "PID namespace mode %d: not POD, CONTAINER or NODE", (int)s->pid);
	if (!isempty(s->hostname) && !hostname_valid(s->hostname))
		return husk_error_set(err, EINVAL, "hostname '%.*s': invalid", POD_HOSTNAME_MAX,
				      s->hostname);
	if (s->n_sysctls > POD_MAX_SYSCTLS)
		return husk_error_set(err, EINVAL, "sysctls: more than %d", POD_MAX_SYSCTLS);
	for (size_t i = 0; i < s->n_sysctls; i++) {
		int r =
		    pod_sysctl_check(s->sysctls[i].name, s->sysctls[i].value, s->net, s->ipc, err);
		if (r < 0)
			return r;
	}
	int r = check_list(s->dns_servers, POD_MAX_DNS_SERVERS, "server", true, err);
	if (r == 0)
		r = check_list(s->dns_searches, POD_MAX_DNS_SEARCHES, "search", false, err);
	if (r == 0)
		r = check_list(s->dns_options, POD_MAX_DNS_OPTIONS, "option", false, err);
	if (r < 0)
		return r;
	if (s->init_path && s->init_path[0] != '/')
		return husk_error_set(err, EINVAL, "init path '%s': not absolute", s->init_path);
	if (!s->userns)
		return 0;
	/* The user namespace owns the others: the host's cannot be among them
	 * (the kubelet refuses hostNetwork, hostIPC and hostPID with it too). */
	if (s->net != POD_NS_POD || s->ipc != POD_NS_POD || s->uts != POD_NS_POD)
		return husk_error_set(err, EINVAL,
				      "userns_options: a pod with a user namespace needs its own "
				      "network and IPC namespaces (namespace_options.network and "
				      "ipc must be POD)");
	if (s->pid == POD_NS_NODE)
		return husk_error_set(err, EINVAL,
				      "userns_options: a pod with a user namespace cannot use the "
				      "host PID namespace (namespace_options.pid NODE)");
	if ((r = pod_idmaps_check(s->uid_map, s->n_uid_map, "userns_options.uids", err)) < 0)
		return r;
	return pod_idmaps_check(s->gid_map, s->n_gid_map, "userns_options.gids", err);
}
