/* The kernel's view of a process from /proc: namespaces, cgroups,
 * capabilities, no_new_privs, seccomp, credentials and LSM labels, as JSON
 * for verbose status. Everything read here is written by the kernel, but
 * the process may be hostile: every read is bounded, and the pid is checked
 * to be the same process before and after. */
#include "runtime/kview.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/proc.h"
#include "common/util.h"
#include "runtime/launcher/launcher.h"

/* /proc/PID/status is a few KiB; /proc/PID/cgroup one line per hierarchy,
 * each bounded by the cgroup path length. */
#define STATUS_MAX (64 * 1024)
#define CGROUP_MAX (64 * 1024)
#define LABEL_MAX 4096
#define GROUPS_MAX 65536

static const char *const ns_names[CTR_KVIEW_N_NS] = {
    [CTR_KVIEW_NS_CGROUP] = "cgroup", [CTR_KVIEW_NS_IPC] = "ipc", [CTR_KVIEW_NS_MNT] = "mnt",
    [CTR_KVIEW_NS_NET] = "net",	      [CTR_KVIEW_NS_PID] = "pid", [CTR_KVIEW_NS_TIME] = "time",
    [CTR_KVIEW_NS_USER] = "user",     [CTR_KVIEW_NS_UTS] = "uts",
};

const char *ctr_kview_ns_name(int type)
{
	return type >= 0 && type < CTR_KVIEW_N_NS ? ns_names[type] : NULL;
}

void ctr_kview_status_clear(struct ctr_kview_status *s)
{
	if (!s)
		return;
	free(s->groups);
	*s = (struct ctr_kview_status){0};
}

static int parse_hex64(const char *v, uint64_t *ret)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 16);
	if (errno || end == v || (*end && *end != '\n'))
		return -1;
	*ret = x;
	return 0;
}

static int parse_ids(const char *v, long long ids[4])
{
	for (int i = 0; i < 4; i++) {
		char *end;
		errno = 0;
		long long x = strtoll(v, &end, 10);
		if (errno || end == v)
			return -1;
		ids[i] = x;
		v = end;
	}
	return 0;
}

int ctr_kview_parse_status(const char *text, struct ctr_kview_status *ret, struct husk_error *err)
{
	struct ctr_kview_status s = {.no_new_privs = -1, .seccomp = -1, .seccomp_filters = -1};
	struct {
		const char *key;
		uint64_t *cap;
	} caps[] = {{"CapInh", &s.cap_inh},
		    {"CapPrm", &s.cap_prm},
		    {"CapEff", &s.cap_eff},
		    {"CapBnd", &s.cap_bnd},
		    {"CapAmb", &s.cap_amb}};
	unsigned seen = 0; /* bits 0-4: caps, 5: Uid, 6: Gid */
	const char *line = text;
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		_cleanup_free_ char *l = xstrndup(line, len);
		line = nl ? nl + 1 : NULL;
		char *colon = strchr(l, ':');
		if (!colon)
			continue;
		*colon = '\0';
		const char *v = colon + 1;
		v += strspn(v, " \t");
		int bad = 0;
		bool known = false;
		for (size_t i = 0; i < ARRAY_SIZE(caps); i++)
			if (streq(l, caps[i].key)) {
				known = true;
				bad = parse_hex64(v, caps[i].cap);
				seen |= 1u << i;
			}
		if (known) {
			/* handled above */
		} else if (streq(l, "Uid")) {
			bad = parse_ids(v, s.uid);
			seen |= 1u << 5;
		} else if (streq(l, "Gid")) {
			bad = parse_ids(v, s.gid);
			seen |= 1u << 6;
		} else if (streq(l, "NoNewPrivs")) {
			s.no_new_privs = atoi(v);
		} else if (streq(l, "Seccomp")) {
			s.seccomp = atoi(v);
		} else if (streq(l, "Seccomp_filters")) {
			s.seccomp_filters = atoi(v);
		} else if (streq(l, "Groups")) {
			free(s.groups);
			s.groups = NULL;
			s.n_groups = 0;
			for (char *p = (char *)v; *p && s.n_groups < GROUPS_MAX;) {
				char *end;
				long long g = strtoll(p, &end, 10);
				if (end == p)
					break;
				s.groups = xrealloc(s.groups, (s.n_groups + 1) * sizeof(*s.groups));
				s.groups[s.n_groups++] = g;
				p = end;
			}
		}
		if (bad) {
			ctr_kview_status_clear(&s);
			return husk_error_set(err, EINVAL, "process status: bad '%s' line", l);
		}
	}
	if (seen != 0x7f) {
		ctr_kview_status_clear(&s);
		return husk_error_set(err, EINVAL, "process status: no %s line",
				      (seen & 0x1f) != 0x1f ? "Cap*"
				      : !(seen & 0x20)	    ? "Uid"
							    : "Gid");
	}
	*ret = s;
	return 0;
}

char **ctr_kview_cap_names(uint64_t mask)
{
	char **v = xnew(char *, 1);
	for (int i = 0; i < 64; i++) {
		if (!(mask & LC_CAP_BIT(i)))
			continue;
		const char *n = lc_cap_name(i);
		_cleanup_free_ char *num = n ? NULL : xasprintf("%d", i);
		v = strv_append(v, n ? n : num);
	}
	return v;
}

const char *ctr_kview_seccomp_mode(int seccomp)
{
	switch (seccomp) {
	case 0:
		return "disabled";
	case 1:
		return "strict";
	case 2:
		return "filter";
	default:
		return "unknown";
	}
}

static ino_t ns_inode(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

char *ctr_kview_ns_link(const char *path, int type)
{
	ino_t ino = ns_inode(path);
	if (!ino || !ctr_kview_ns_name(type))
		return NULL;
	return xasprintf("%s:[%llu]", ctr_kview_ns_name(type), (unsigned long long)ino);
}

static bool lsm_enabled(const char *path, const char *yes)
{
	_cleanup_free_ char *buf = NULL;
	if (fs_read_file(path, 64, &buf, NULL, NULL) < 0)
		return false;
	return yes ? startswith(buf, yes) : true;
}

void ctr_kview_refs_init(struct ctr_kview_refs *refs, const char *const pod_pins[CTR_KVIEW_N_NS],
			 int cgroup_version)
{
	*refs = (struct ctr_kview_refs){.cgroup_version = cgroup_version};
	for (int i = 0; i < CTR_KVIEW_N_NS; i++) {
		_cleanup_free_ char *self = xasprintf("/proc/self/ns/%s", ns_names[i]);
		refs->host[i] = ns_inode(self);
		if (pod_pins && pod_pins[i])
			refs->pod[i] = ns_inode(pod_pins[i]);
	}
	refs->apparmor = lsm_enabled("/sys/module/apparmor/parameters/enabled", "Y");
	refs->selinux = lsm_enabled("/sys/fs/selinux/enforce", NULL);
}

static void gen_ids(yajl_gen g, const char *key, const long long ids[4])
{
	static const char *const names[4] = {"real", "effective", "saved", "filesystem"};
	json_key(g, key);
	yajl_gen_map_open(g);
	for (int i = 0; i < 4; i++)
		json_kv_int(g, names[i], ids[i]);
	yajl_gen_map_close(g);
}

static void gen_caps(yajl_gen g, const char *key, uint64_t mask)
{
	json_key(g, key);
	yajl_gen_map_open(g);
	char hex[17];
	snprintf(hex, sizeof(hex), "%016" PRIx64, mask);
	json_kv_str(g, "hex", hex);
	json_key(g, "names");
	yajl_gen_array_open(g);
	_cleanup_strv_ char **names = ctr_kview_cap_names(mask);
	for (size_t i = 0; names[i]; i++)
		json_str(g, names[i]);
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}

/* Text from a file the process can influence (a cgroup it named, its
 * label) goes out as printable ASCII: what a client decodes as UTF-8 must
 * be valid. */
static void printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			*s = '?';
}

/* The label in an attr file, without the trailing newline and NUL. */
static char *read_label(const char *path)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	if (fs_read_file(path, LABEL_MAX, &buf, &len, NULL) < 0)
		return NULL;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\0'))
		buf[--len] = '\0';
	printable(buf);
	return steal_ptr(&buf);
}

char *ctr_kview_time(long long ns)
{
	time_t s = (time_t)(ns / 1000000000LL);
	struct tm tm;
	char buf[64];
	gmtime_r(&s, &tm);
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%09lldZ", ns % 1000000000LL);
	return xstrdup(buf);
}

int ctr_kview_process_json(pid_t pid, unsigned long long start_time,
			   const struct ctr_kview_refs *refs, char **ret_json,
			   struct husk_error *err)
{
	if (pid <= 0 || !proc_alive(pid, start_time))
		return husk_error_set(err, ESRCH, "process %d is gone", (int)pid);
	_cleanup_free_ char *status_path = xasprintf("/proc/%d/status", (int)pid);
	_cleanup_free_ char *status_text = NULL;
	int r = fs_read_file(status_path, STATUS_MAX, &status_text, NULL, err);
	if (r < 0)
		return r;
	struct ctr_kview_status st;
	r = ctr_kview_parse_status(status_text, &st, err);
	if (r < 0) {
		husk_error_prefix(err, "'%s'", status_path);
		return r;
	}
	_cleanup_free_ char *cgroup_path = xasprintf("/proc/%d/cgroup", (int)pid);
	_cleanup_free_ char *cgroups = NULL;
	r = fs_read_file(cgroup_path, CGROUP_MAX, &cgroups, NULL, err);
	if (r < 0) {
		ctr_kview_status_clear(&st);
		return r;
	}

	_cleanup_gen_ yajl_gen g = json_gen_new(false);
	yajl_gen_map_open(g);
	_cleanup_free_ char *now = ctr_kview_time(now_real_ns());
	json_kv_str(g, "readAt", now);
	json_kv_int(g, "pid", pid);
	json_key(g, "namespaces");
	yajl_gen_map_open(g);
	for (int i = 0; i < CTR_KVIEW_N_NS; i++) {
		_cleanup_free_ char *p = xasprintf("/proc/%d/ns/%s", (int)pid, ns_names[i]);
		ino_t ino = ns_inode(p);
		if (!ino)
			continue; /* a type the kernel lacks */
		json_key(g, ns_names[i]);
		yajl_gen_map_open(g);
		_cleanup_free_ char *link =
		    xasprintf("%s:[%llu]", ns_names[i], (unsigned long long)ino);
		json_kv_str(g, "link", link);
		json_kv_str(g, "sharedWith",
			    refs->pod[i] == ino	   ? "pod"
			    : refs->host[i] == ino ? "host"
						   : "none");
		yajl_gen_map_close(g);
	}
	yajl_gen_map_close(g);
	json_kv_str(g, "cgroupVersion", refs->cgroup_version == 2 ? "v2" : "v1");
	json_key(g, "cgroups");
	yajl_gen_array_open(g);
	for (char *save = NULL, *l = strtok_r(cgroups, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		printable(l);
		json_str(g, l);
	}
	yajl_gen_array_close(g);
	json_key(g, "capabilities");
	yajl_gen_map_open(g);
	gen_caps(g, "effective", st.cap_eff);
	gen_caps(g, "permitted", st.cap_prm);
	gen_caps(g, "inheritable", st.cap_inh);
	gen_caps(g, "bounding", st.cap_bnd);
	gen_caps(g, "ambient", st.cap_amb);
	yajl_gen_map_close(g);
	json_kv_bool(g, "noNewPrivs", st.no_new_privs == 1);
	json_key(g, "seccomp");
	yajl_gen_map_open(g);
	json_kv_str(g, "mode", ctr_kview_seccomp_mode(st.seccomp));
	if (st.seccomp_filters >= 0)
		json_kv_int(g, "filters", st.seccomp_filters);
	yajl_gen_map_close(g);
	gen_ids(g, "uids", st.uid);
	gen_ids(g, "gids", st.gid);
	json_key(g, "groups");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < st.n_groups; i++)
		yajl_gen_integer(g, st.groups[i]);
	yajl_gen_array_close(g);
	ctr_kview_status_clear(&st);
	if (refs->apparmor) {
		_cleanup_free_ char *p = xasprintf("/proc/%d/attr/apparmor/current", (int)pid);
		_cleanup_free_ char *label = read_label(p);
		if (label)
			json_kv_str(g, "apparmor", label);
	}
	if (refs->selinux) {
		_cleanup_free_ char *p = xasprintf("/proc/%d/attr/current", (int)pid);
		_cleanup_free_ char *label = read_label(p);
		if (label)
			json_kv_str(g, "selinux", label);
	}
	yajl_gen_map_close(g);
	/* The pid may have been reused while we read: then none of it is the
	 * container's. */
	if (!proc_alive(pid, start_time))
		return husk_error_set(err, ESRCH, "process %d is gone", (int)pid);
	*ret_json = json_gen_steal(g);
	return 0;
}
