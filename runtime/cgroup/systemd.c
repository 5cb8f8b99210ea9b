/* The systemd cgroup driver's half that talks to systemd over D-Bus
 * (sd-bus): pod slices and container scopes as transient units, resources
 * as unit properties, jobs waited for until systemd reports their result. */
#include "runtime/cgroup/internal.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <time.h>

#define SD_DEST "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_PRIVATE "unix:path=/run/systemd/private"
/* How long a call or a job may take before husk gives up on it. */
#define SD_TIMEOUT_USEC (30ULL * 1000000)

struct cg_bus {
	pthread_mutex_t lock; /* one call (and its job) at a time */
	sd_bus *bus;
	sd_bus_slot *job_slot;
	const char *want_job; /* the job the caller waits for */
	char result[32];
	bool job_done;
};

static pthread_mutex_t *bus_lock(struct cg_bus *b)
{
	pthread_mutex_lock(&b->lock);
	return &b->lock;
}

static void bus_unlockp(pthread_mutex_t **m)
{
	if (*m)
		pthread_mutex_unlock(*m);
}

static int on_job_removed(sd_bus_message *m, void *data, sd_bus_error *e _unused_)
{
	struct cg_bus *b = data;
	uint32_t id;
	const char *job, *unit, *result;
	if (sd_bus_message_read(m, "uoss", &id, &job, &unit, &result) < 0)
		return 0;
	if (b->want_job && streq(job, b->want_job)) {
		snprintf(b->result, sizeof(b->result), "%s", result);
		b->job_done = true;
	}
	return 0;
}

static void bus_close(struct cg_bus *b)
{
	b->job_slot = sd_bus_slot_unref(b->job_slot);
	b->bus = sd_bus_flush_close_unref(b->bus);
}

/* The system bus, else systemd's private socket (no dbus-daemon needed). */
static int bus_open(struct cg_bus *b, struct husk_error *err)
{
	sd_bus *bus = NULL;
	int r1 = sd_bus_open_system(&bus);
	int r2 = 0;
	if (r1 < 0) {
		r2 = sd_bus_new(&bus);
		if (r2 >= 0)
			r2 = sd_bus_set_address(bus, SD_PRIVATE);
		if (r2 >= 0)
			r2 = sd_bus_start(bus);
		if (r2 < 0) {
			sd_bus_unref(bus);
			return husk_error_set(
			    err, EHOSTDOWN,
			    "cgroup driver 'systemd': systemd is not reachable over D-Bus (system "
			    "bus: %s; %s: %s); run huskd where systemd is PID 1 or use the "
			    "cgroupfs driver",
			    strerror(-r1), SD_PRIVATE + strlen("unix:path="), strerror(-r2));
		}
	}
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *version = NULL;
	int r =
	    sd_bus_get_property_string(bus, SD_DEST, SD_PATH, SD_MANAGER, "Version", &e, &version);
	if (r >= 0)
		r = sd_bus_match_signal(bus, &b->job_slot, NULL, SD_PATH, SD_MANAGER, "JobRemoved",
					on_job_removed, b);
	if (r >= 0) {
		/* Signals come to subscribers only. */
		sd_bus_error_free(&e);
		r = sd_bus_call_method(bus, SD_DEST, SD_PATH, SD_MANAGER, "Subscribe", &e, NULL,
				       "");
	}
	if (r < 0) {
		husk_error_set(err, EHOSTDOWN,
			       "cgroup driver 'systemd': systemd does not answer over D-Bus: %s",
			       e.message ? e.message : strerror(-r));
		sd_bus_error_free(&e);
		free(version);
		b->job_slot = sd_bus_slot_unref(b->job_slot);
		sd_bus_flush_close_unref(bus);
		return -EHOSTDOWN;
	}
	sd_bus_error_free(&e);
	free(version);
	b->bus = bus;
	return 0;
}

static int cg_systemd_connect(struct cg_manager *m, struct husk_error *err)
{
	struct cg_bus *b = xnew(struct cg_bus, 1);
	pthread_mutex_init(&b->lock, NULL);
	int r = bus_open(b, err);
	if (r < 0) {
		pthread_mutex_destroy(&b->lock);
		free(b);
		return r;
	}
	m->bus = b;
	return 0;
}

static void cg_systemd_disconnect(struct cg_manager *m)
{
	struct cg_bus *b = m->bus;
	if (!b)
		return;
	bus_close(b);
	pthread_mutex_destroy(&b->lock);
	free(b);
	m->bus = NULL;
}

/* systemd restarted (daemon-reexec, a node's upgrade): connect again. */
static int bus_ready(struct cg_bus *b, struct husk_error *err)
{
	if (b->bus && sd_bus_is_open(b->bus) > 0)
		return 0;
	bus_close(b);
	return bus_open(b, err);
}

/* The unit a group's leaf names ("x.slice", "husk-id.scope"); NULL when
 * the leaf is neither. */
static const char *unit_of(const char *path)
{
	const char *s = strrchr(path, '/');
	s = s ? s + 1 : path;
	return endswith(s, ".slice") || endswith(s, ".scope") ? s : NULL;
}

/* The slice holding path's leaf; "-.slice" (the root) when it has none. */
static char *parent_slice(const char *path)
{
	const char *s = strrchr(path, '/');
	if (!s)
		return xstrdup("-.slice");
	const char *p = s;
	while (p > path && p[-1] != '/')
		p--;
	return xstrndup(p, (size_t)(s - p));
}

/* "0-3,5" as the little-endian bitmask AllowedCPUs= takes, into p. */
static int cpuset_mask(struct cg_unit_prop *p, const char *name, const char *list)
{
	_cleanup_free_ char *copy = xstrdup(list);
	char *save = NULL;
	size_t used = 0;
	memset(p, 0, sizeof(*p));
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		unsigned a, b;
		int n = 0;
		if (sscanf(t, "%u-%u%n", &a, &b, &n) == 2 && t[n] == '\0')
			;
		else if (sscanf(t, "%u%n", &a, &n) == 1 && t[n] == '\0')
			b = a;
		else
			return -EINVAL;
		if (a > b || b >= sizeof(p->mask) * 8)
			return -EINVAL;
		for (unsigned i = a; i <= b; i++)
			p->mask[i / 8] |= (uint8_t)(1u << (i % 8));
		used = used > b / 8 + 1 ? used : b / 8 + 1;
	}
	p->name = name;
	p->type = 'y';
	p->n_mask = used;
	return 0;
}

static uint64_t limit(int64_t v)
{
	return v == CG_MAX ? UINT64_MAX : (uint64_t)v;
}

/* io.weight's default line ("default 100", or a bare "100"); 0 when there
 * is none (per-device lines only, or not a number in 1..10000). */
static uint64_t parse_io_weight(const char *text)
{
	const char *p = text;
	if (startswith(p, "default "))
		p += 8;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(p, &end, 10);
	if (errno || end == p || (*end && *end != '\n') || v < 1 || v > 10000)
		return 0;
	return v;
}

int cg_systemd_props(enum cg_version version, const struct cg_resources *r, uint64_t io_weight,
		     struct cg_unit_prop ret[CG_UNIT_PROPS_MAX], size_t *ret_n)
{
	bool v2 = version == CG_V2;
	size_t n = 0;
#define U64(nm, v) (ret[n++] = (struct cg_unit_prop){.name = (nm), .type = 't', .u64 = (v)})
	if (r->cpu_shares != CG_UNSET) {
		if (v2)
			U64("CPUWeight", cg_shares_to_weight((uint64_t)r->cpu_shares));
		else
			U64("CPUShares", (uint64_t)r->cpu_shares);
	}
	if (r->cpu_quota != CG_UNSET) {
		uint64_t period = r->cpu_period > 0 ? (uint64_t)r->cpu_period : 100000;
		U64("CPUQuotaPerSecUSec", r->cpu_quota == CG_MAX
					      ? UINT64_MAX
					      : (uint64_t)r->cpu_quota * 1000000 / period);
	}
	if (r->cpu_period > 0)
		U64("CPUQuotaPeriodUSec", (uint64_t)r->cpu_period);
	if (r->memory_limit != CG_UNSET)
		U64(v2 ? "MemoryMax" : "MemoryLimit", limit(r->memory_limit));
	if (r->pids_limit != CG_UNSET)
		U64("TasksMax", limit(r->pids_limit));
	/* The IO weight: given as io.weight (v2 unified; CRI has no field of
	 * its own) or read back from the cgroup. v1's blkio.weight range is
	 * 10..1000. */
	for (size_t i = 0; v2 && i < r->n_unified; i++)
		if (streq(r->unified[i].key, "io.weight"))
			io_weight = parse_io_weight(r->unified[i].value);
	if (io_weight && (v2 || (io_weight >= 10 && io_weight <= 1000)))
		U64(v2 ? "IOWeight" : "BlockIOWeight", io_weight);
#undef U64
	/* systemd drives cpuset on v2 only; on v1 husk writes it itself. */
	if (v2 && !isempty(r->cpuset_cpus)) {
		if (cpuset_mask(&ret[n], "AllowedCPUs", r->cpuset_cpus) < 0)
			return -EINVAL;
		n++;
	}
	if (v2 && !isempty(r->cpuset_mems)) {
		if (cpuset_mask(&ret[n], "AllowedMemoryNodes", r->cpuset_mems) < 0)
			return -EINVAL;
		n++;
	}
	*ret_n = n;
	return 0;
}

/* The IO weight in force in g's cgroup (v2 io.weight, v1 blkio.weight);
 * 0 when unknown. */
static uint64_t io_weight_in_force(const struct cg_group *g)
{
	_cleanup_free_ char *dir = cg_group_dir_bit(g, CG_C_BLKIO);
	if (!dir)
		dir = cg_group_dir_bit(g, CG_C_IO);
	_cleanup_free_ char *text = NULL;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	if (!dir ||
	    cg_read_line(dir, g->m->version == CG_V2 ? "io.weight" : "blkio.weight", &text, &e) < 0)
		return 0;
	return parse_io_weight(text);
}

static int append_resources(const struct cg_manager *cm, sd_bus_message *m,
			    const struct cg_resources *r, uint64_t io_weight)
{
	struct cg_unit_prop p[CG_UNIT_PROPS_MAX];
	size_t n = 0;
	int ret = cg_systemd_props(cm->version, r, io_weight, p, &n);
	for (size_t i = 0; i < n && ret >= 0; i++) {
		if (p[i].type == 't') {
			ret = sd_bus_message_append(m, "(sv)", p[i].name, "t", p[i].u64);
			continue;
		}
		ret = sd_bus_message_open_container(m, 'r', "sv");
		if (ret >= 0)
			ret = sd_bus_message_append(m, "s", p[i].name);
		if (ret >= 0)
			ret = sd_bus_message_open_container(m, 'v', "ay");
		if (ret >= 0)
			ret = sd_bus_message_append_array(m, 'y', p[i].mask, p[i].n_mask);
		if (ret >= 0)
			ret = sd_bus_message_close_container(m);
		if (ret >= 0)
			ret = sd_bus_message_close_container(m);
	}
	return ret;
}

static int bus_fail(struct husk_error *err, int r, const sd_bus_error *e, const char *what,
		    const char *unit)
{
	return husk_error_set(err, r == -ENOMEM ? ENOMEM : EIO, "systemd: %s '%s': %s", what, unit,
			      e && e->message ? e->message : strerror(-r));
}

/* Wait for JobRemoved of job; its result must be "done". */
static int wait_job(struct cg_bus *b, const char *job, const char *what, const char *unit,
		    struct husk_error *err)
{
	b->want_job = job;
	b->job_done = false;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	uint64_t deadline = now + SD_TIMEOUT_USEC;
	int r = 0;
	while (!b->job_done) {
		r = sd_bus_process(b->bus, NULL);
		if (r < 0)
			break;
		if (r > 0)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
		if (now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		r = sd_bus_wait(b->bus, deadline - now);
		if (r < 0)
			break;
	}
	b->want_job = NULL;
	if (!b->job_done)
		return husk_error_set(err, EIO, "systemd: %s '%s': job %s: %s", what, unit, job,
				      r == -ETIMEDOUT ? "no result within 30s" : strerror(-r));
	if (!streq(b->result, "done"))
		return husk_error_set(err, EIO, "systemd: %s '%s': job %s", what, unit, b->result);
	return 0;
}

static int start_unit(const struct cg_group *g, pid_t pid, bool delegate,
		      const struct cg_resources *res, struct husk_error *err)
{
	struct cg_bus *b = g->m->bus;
	const char *unit = unit_of(g->path);
	if (!unit)
		return husk_error_set(err, EINVAL, "systemd: cgroup '%s' names no slice or scope",
				      g->path);
	bool scope = endswith(unit, ".scope");
	_cleanup_free_ char *slice = parent_slice(g->path);
	_cleanup_free_ char *desc = xasprintf("husk %s %s", scope ? "container" : "pod", unit);
	_cleanup_(bus_unlockp) pthread_mutex_t *lock = bus_lock(b);
	if (bus_ready(b, err) < 0)
		return -err->code;
	sd_bus_message *m = NULL, *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = sd_bus_message_new_method_call(b->bus, &m, SD_DEST, SD_PATH, SD_MANAGER,
					       "StartTransientUnit");
	if (r >= 0)
		r = sd_bus_message_append(m, "ss", unit, "replace");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(sv)");
	if (r >= 0)
		r = sd_bus_message_append(m, "(sv)(sv)(sv)(sv)(sv)", "Description", "s", desc,
					  "DefaultDependencies", "b", 0, "CPUAccounting", "b", 1,
					  "MemoryAccounting", "b", 1, "TasksAccounting", "b", 1);
	/* A slice's parent follows from its name; a scope names its slice. */
	if (r >= 0 && scope && !streq(slice, "-.slice"))
		r = sd_bus_message_append(m, "(sv)", "Slice", "s", slice);
	if (r >= 0 && scope)
		r = sd_bus_message_append(m, "(sv)", "PIDs", "au", 1, (uint32_t)pid);
	/* A container that makes cgroups of its own (a systemd inside, a
	 * cgroup namespace): systemd must leave the scope's subtree alone. */
	if (r >= 0 && scope && delegate)
		r = sd_bus_message_append(m, "(sv)", "Delegate", "b", 1);
	if (r >= 0 && res)
		r = append_resources(g->m, m, res, io_weight_in_force(g));
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = sd_bus_message_append(m, "a(sa(sv))", 0);
	if (r < 0) {
		sd_bus_message_unref(m);
		return bus_fail(err, r, NULL, "start", unit);
	}
	r = sd_bus_call(b->bus, m, SD_TIMEOUT_USEC, &e, &reply);
	sd_bus_message_unref(m);
	/* The kubelet's systemd driver makes the pod's slice itself before
	 * RunPodSandbox: it is the kubelet's, husk only uses it (and leaves it
	 * running at removal: its Description is not husk's). */
	if (r < 0 && !scope && sd_bus_error_has_name(&e, "org.freedesktop.systemd1.UnitExists")) {
		sd_bus_error_free(&e);
		return 0;
	}
	if (r < 0) {
		bus_fail(err, r, &e, "start", unit);
		sd_bus_error_free(&e);
		return -err->code;
	}
	const char *job = NULL;
	r = sd_bus_message_read(reply, "o", &job);
	_cleanup_free_ char *jobc = r >= 0 ? xstrdup(job) : NULL;
	sd_bus_message_unref(reply);
	if (r < 0)
		return bus_fail(err, r, NULL, "start", unit);
	return wait_job(b, jobc, "start", unit, err);
}

static int cg_systemd_start(const struct cg_group *g, pid_t pid, bool delegate,
			    struct husk_error *err)
{
	struct cg_resources res;
	cg_resources_init(&res);
	/* The values in force, so systemd's own writes keep them. */
	if (pid > 0 && cg_group_get(g, &res, err) < 0) {
		cg_resources_clear(&res);
		return -err->code;
	}
	int r = start_unit(g, pid, delegate, pid > 0 ? &res : NULL, err);
	cg_resources_clear(&res);
	return r;
}

static int cg_systemd_set(const struct cg_group *g, const struct cg_resources *res,
			  struct husk_error *err)
{
	struct cg_bus *b = g->m->bus;
	const char *unit = unit_of(g->path);
	if (!unit)
		return 0;
	_cleanup_(bus_unlockp) pthread_mutex_t *lock = bus_lock(b);
	if (bus_ready(b, err) < 0)
		return -err->code;
	sd_bus_message *m = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r = sd_bus_message_new_method_call(b->bus, &m, SD_DEST, SD_PATH, SD_MANAGER,
					       "SetUnitProperties");
	if (r >= 0)
		r = sd_bus_message_append(m, "sb", unit, 1);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(sv)");
	if (r >= 0)
		r = append_resources(g->m, m, res, 0);
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r < 0) {
		sd_bus_message_unref(m);
		return bus_fail(err, r, NULL, "set properties of", unit);
	}
	r = sd_bus_call(b->bus, m, SD_TIMEOUT_USEC, &e, NULL);
	sd_bus_message_unref(m);
	/* A scope not started yet (CreateContainer) gets the values read back
	 * from its cgroup when it starts. */
	if (r < 0 && !sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit")) {
		bus_fail(err, r, &e, "set properties of", unit);
		sd_bus_error_free(&e);
		return -err->code;
	}
	sd_bus_error_free(&e);
	return 0;
}

static int cg_systemd_stop(const struct cg_group *g, struct husk_error *err)
{
	struct cg_bus *b = g->m->bus;
	const char *unit = unit_of(g->path);
	if (!unit)
		return 0;
	_cleanup_(bus_unlockp) pthread_mutex_t *lock = bus_lock(b);
	if (bus_ready(b, err) < 0)
		return -err->code;
	sd_bus_message *reply = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;
	/* Only units husk started: a slice the kubelet made stays. */
	_cleanup_free_ char *path = NULL;
	char *desc = NULL;
	int r = sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, "GetUnit", &e, &reply, "s",
				   unit);
	if (r < 0) {
		bool gone = sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit");
		if (!gone)
			bus_fail(err, r, &e, "stop", unit);
		sd_bus_error_free(&e);
		return gone ? 0 : -err->code;
	}
	const char *p = NULL;
	if (sd_bus_message_read(reply, "o", &p) >= 0)
		path = xstrdup(p);
	reply = sd_bus_message_unref(reply);
	if (path &&
	    sd_bus_get_property_string(b->bus, SD_DEST, path, "org.freedesktop.systemd1.Unit",
				       "Description", NULL, &desc) >= 0 &&
	    !startswith(desc, "husk ")) {
		free(desc);
		return 0;
	}
	free(desc);
	r = sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, "StopUnit", &e, &reply, "ss",
			       unit, "replace");
	if (r < 0) {
		/* A scope whose processes are gone has stopped by itself. */
		bool gone = sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit");
		if (!gone)
			bus_fail(err, r, &e, "stop", unit);
		sd_bus_error_free(&e);
		return gone ? 0 : -err->code;
	}
	const char *job = NULL;
	r = sd_bus_message_read(reply, "o", &job);
	_cleanup_free_ char *jobc = r >= 0 ? xstrdup(job) : NULL;
	sd_bus_message_unref(reply);
	if (r < 0)
		return bus_fail(err, r, NULL, "stop", unit);
	r = wait_job(b, jobc, "stop", unit, err);
	/* A unit that failed stays loaded until reset: collect it. */
	sd_bus_call_method(b->bus, SD_DEST, SD_PATH, SD_MANAGER, "ResetFailedUnit", NULL, NULL, "s",
			   unit);
	return r;
}

const struct cg_bus_ops cg_systemd_bus_ops = {
    .connect = cg_systemd_connect,
    .disconnect = cg_systemd_disconnect,
    .start = cg_systemd_start,
    .set = cg_systemd_set,
    .stop = cg_systemd_stop,
};
