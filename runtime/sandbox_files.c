/* Sandboxes: the files a pod gives its containers (hostname, /etc/hosts,
 * resolv.conf), written from the pod's spec or copied from the host's. */
#include "runtime/sandbox.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "common/fs.h"

/* ---- file contents ------------------------------------------------------- */

static char *hosts_text(const char *hostname, char *const *ips)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	fputs("127.0.0.1\tlocalhost\n"
	      "::1\tlocalhost ip6-localhost ip6-loopback\n"
	      "fe00::0\tip6-localnet\n"
	      "fe00::0\tip6-mcastprefix\n"
	      "fe00::1\tip6-allnodes\n"
	      "fe00::2\tip6-allrouters\n",
	      f);
	if (strv_length(ips) == 0)
		fprintf(f, "127.0.1.1\t%s\n", hostname);
	for (size_t i = 0; ips && ips[i]; i++)
		fprintf(f, "%s\t%s\n", ips[i], hostname);
	if (fclose(f) != 0)
		abort();
	return buf;
}

static char *resolv_text(const struct pod_sandbox_spec *s)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		abort();
	if (strv_length(s->dns_searches) > 0) {
		fputs("search", f);
		for (size_t i = 0; s->dns_searches[i]; i++)
			fprintf(f, " %s", s->dns_searches[i]);
		fputc('\n', f);
	}
	for (size_t i = 0; s->dns_servers && s->dns_servers[i]; i++)
		fprintf(f, "nameserver %s\n", s->dns_servers[i]);
	if (strv_length(s->dns_options) > 0) {
		fputs("options", f);
		for (size_t i = 0; s->dns_options[i]; i++)
			fprintf(f, " %s", s->dns_options[i]);
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		abort();
	return buf;
}

/* A host file to copy; a missing one reads as empty. */
static int read_host_file(const char *path, char **ret, size_t *ret_len, struct husk_error *err)
{
	int r = fs_read_file(path, POD_HOST_FILE_MAX, ret, ret_len, err);
	if (r == -ENOENT) {
		husk_error_clear(err);
		*ret = xstrdup("");
		*ret_len = 0;
		return 0;
	}
	return r;
}

int pod_sandbox_write_files(const struct pod_sandbox_spec *spec,
			    const struct pod_sandbox_info *info, struct husk_error *err)
{
	_cleanup_free_ char *hostname_line = xasprintf("%s\n", info->hostname);
	int r =
	    fs_write_replace(info->hostname_file, hostname_line, strlen(hostname_line), 0644, err);
	if (r < 0)
		return r;

	_cleanup_free_ char *hosts = NULL;
	size_t len;
	if (spec->net == POD_NS_NODE) {
		r = read_host_file(spec->host_hosts ? spec->host_hosts : "/etc/hosts", &hosts, &len,
				   err);
		if (r < 0)
			return husk_error_prefix(err, "copy host hosts file");
	} else {
		hosts = hosts_text(info->hostname, NULL);
		len = strlen(hosts);
	}
	r = fs_write_replace(info->hosts_file, hosts, len, 0644, err);
	if (r < 0)
		return r;

	_cleanup_free_ char *resolv = NULL;
	if (strv_length(spec->dns_servers) + strv_length(spec->dns_searches) +
		strv_length(spec->dns_options) ==
	    0) {
		r = read_host_file(spec->host_resolv ? spec->host_resolv : "/etc/resolv.conf",
				   &resolv, &len, err);
		if (r < 0)
			return husk_error_prefix(err, "copy host resolv.conf");
	} else {
		resolv = resolv_text(spec);
		len = strlen(resolv);
	}
	return fs_write_replace(info->resolv_file, resolv, len, 0644, err);
}

int pod_sandbox_set_ips(const char *state_dir, const char *id, char *const *ips,
			struct husk_error *err)
{
	if (strv_length(ips) > POD_MAX_DNS_SERVERS)
		return husk_error_set(err, EINVAL, "pod '%s': more than %d addresses", id,
				      POD_MAX_DNS_SERVERS);
	for (size_t i = 0; ips && ips[i]; i++)
		if (!pod_ip_valid(ips[i]))
			return husk_error_set(err, EINVAL, "pod '%s': address '%.64s': invalid", id,
					      ips[i]);
	struct pod_sandbox_info info;
	int r = pod_sandbox_load(state_dir, id, &info, err);
	if (r < 0)
		return r;
	if (info.net != POD_NS_POD) {
		pod_sandbox_info_clear(&info);
		return husk_error_set(err, EBUSY, "pod '%s': uses the host network", id);
	}
	_cleanup_free_ char *text = hosts_text(info.hostname, ips);
	r = fs_write_replace(info.hosts_file, text, strlen(text), 0644, err);
	pod_sandbox_info_clear(&info);
	return r;
}
