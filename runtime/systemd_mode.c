/* systemd mode (README, "systemd in a container"), as Podman and CRI-O
 * define it: which containers run systemd as PID 1, and what their spec
 * gets for it (tmpfs where systemd keeps its run state, container=).
 * The stop signal and the cgroups are container.c's. */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>

#include "runtime/launcher/launcher.h"
#include "runtime/runtime-internal.h"

#define RT_SYSTEMD_ANNOTATION "io.husk.systemd"

int rt_systemd_mode(const struct rt_ctr_config *c, bool *ret, struct husk_error *err)
{
	const char *v =
	    c->annotations ? state_map_get(c->annotations, RT_SYSTEMD_ANNOTATION) : NULL;
	if (v) {
		if (!streq(v, "true") && !streq(v, "false"))
			return husk_error_set(err, EINVAL,
					      "annotation '" RT_SYSTEMD_ANNOTATION
					      "': '%s' is neither true nor false",
					      v);
		*ret = streq(v, "true");
		return 0;
	}
	const char *cmd = c->args ? c->args[0] : NULL;
	const char *base = cmd ? strrchr(cmd, '/') : NULL;
	base = base ? base + 1 : cmd;
	*ret = cmd && (streq(cmd, "/sbin/init") || streq(cmd, "/usr/sbin/init") ||
		       streq(cmd, "/usr/local/sbin/init") || streq(base, "systemd"));
	return 0;
}

void rt_systemd_mode_apply(struct ctr_spec *s, const struct rt_ctr_config *c)
{
	static const struct {
		const char *dest, *data;
		unsigned long flags;
	} fs[] = {
	    {"/run", "mode=755", MS_NOSUID | MS_NODEV},
	    {"/run/lock", "mode=1777,size=5m", MS_NOSUID | MS_NODEV | MS_NOEXEC},
	    {"/tmp", "mode=1777", MS_NOSUID | MS_NODEV},
	    {"/var/log/journal", "mode=755", MS_NOSUID | MS_NODEV | MS_NOEXEC},
	};
	struct ctr_mount *m = xnew(struct ctr_mount, s->n_mounts + ARRAY_SIZE(fs) + 1);
	size_t n = 0;
	for (size_t i = 0; i < ARRAY_SIZE(fs); i++) {
		bool taken = false;
		for (size_t k = 0; k < c->n_mounts && !taken; k++) {
			_cleanup_free_ char *f = ctr_path_fold(c->mounts[k].container_path);
			taken = streq(f, fs[i].dest);
		}
		if (taken)
			continue;
		m[n++] = (struct ctr_mount){
		    .destination = xstrdup(fs[i].dest),
		    .type = xstrdup("tmpfs"),
		    .source = xstrdup("tmpfs"),
		    .data = xstrdup(fs[i].data),
		    .flags = fs[i].flags,
		};
	}
	memcpy(m + n, s->mounts, s->n_mounts * sizeof(*m));
	free(s->mounts);
	s->mounts = m;
	s->n_mounts += n;
	bool has_container = false;
	for (size_t i = 0; s->env[i]; i++)
		has_container |= startswith(s->env[i], "container=");
	if (!has_container)
		s->env = strv_append(s->env, "container=husk");
}
