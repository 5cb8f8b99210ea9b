/* Container handlers (create, start, stop, remove, status, list, exec,
 * stats, logs, resources) and the runtime manager's start-up: CRI messages
 * become struct rt_ctr_config, images and root file systems come from the
 * image layer. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <string.h>

#include "common/fs.h"
#include "common/json.h"
#include "common/log.h"
#include "image/image.h"
#include "runtime/launcher/launcher.h"
#include "runtime/runtime.h"
#include "server/events.h"
#include "server/handlers.h"
#include "server/security.h"
#include "server/translate.h"

/* ---- start-up ---- */

static void on_event(void *data, enum rt_event ev, const char *ctr_id, const char *pod_id)
{
	struct srv_ctx *ctx = data;
	srv_events_publish(ctx->events, (enum srv_event_type)ev, ctr_id, pod_id);
}

static int make_rootfs(void *data, const char *ctr_id, const char *image, bool readonly,
		       const char *userns, char **ret_path, struct husk_error *err)
{
	struct srv_ctx *ctx = data;
	struct img_rootfs_opts o = {.readonly = readonly, .idmap_userns = userns};
	return img_rootfs_create(ctx->image, image, ctr_id, &o, ret_path, err);
}

static int release_rootfs(void *data, const char *ctr_id, struct husk_error *err)
{
	struct srv_ctx *ctx = data;
	return img_rootfs_remove(ctx->image, ctr_id, err);
}

static int remount_rootfs(void *data, const char *ctr_id, struct husk_error *err)
{
	struct srv_ctx *ctx = data;
	return img_rootfs_mount(ctx->image, ctr_id, NULL, err);
}

/* husk-shim: the configured path, else beside huskd's own binary. */
/* Tests only (HUSK_TEST_STRIPES=N): ids share N lock stripes, so a test
 * sees objects that share one without searching for a colliding id. */
static unsigned test_stripes(void)
{
	const char *v = getenv("HUSK_TEST_STRIPES");
	return v ? (unsigned)strtoul(v, NULL, 10) : 0;
}

static char *shim_path(const struct srv_config *c)
{
	if (!isempty(c->shim_path))
		return xstrdup(c->shim_path);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		return xasprintf("%s/husk-shim", dirname(self));
	}
	return xstrdup("/usr/local/bin/husk-shim");
}

int srv_runtime_init(struct srv_ctx *ctx, struct husk_error *err)
{
	const struct srv_config *c = ctx->config;
	enum cg_driver driver;
	if (cg_driver_parse(c->cgroup_driver_used, &driver, err) < 0)
		return -err->code;
	_cleanup_free_ char *shim = shim_path(c);
	if (access(shim, X_OK) < 0)
		return husk_error_errno(err, errno, "husk-shim '%s'", shim);
	/* husk-pause sits beside the shim; without it a fork of huskd serves
	 * as the init of pods that share a PID namespace. */
	_cleanup_free_ char *shim_copy = xstrdup(shim);
	_cleanup_free_ char *pause = xasprintf("%s/husk-pause", dirname(shim_copy));
	if (access(pause, X_OK) < 0) {
		log_warn("husk-pause '%s' is missing; pod inits will be forks of huskd", pause);
		free(pause);
		pause = NULL;
	}
	struct rt_options o = {
	    .root = c->root,
	    .state = c->state,
	    .cgroup_driver = driver,
	    .cgroup_base = c->cgroup_root,
	    .pod_cgroup_parent = c->pod_cgroup_parent,
	    .shim_path = shim,
	    .pause_path = pause,
	    .pids_limit = c->pids_limit,
	    .keep_period_s = c->retry_keep_period,
	    /* Tests only: see README, "Timeouts and retries". */
	    .test_create_hold = getenv("HUSK_TEST_CREATE_HOLD"),
	    .test_stripes = test_stripes(),
	    .no_mount_template =
		getenv("HUSK_MOUNT_TEMPLATE") && streq(getenv("HUSK_MOUNT_TEMPLATE"), "off"),
	    .on_event = on_event,
	    .make_rootfs = make_rootfs,
	    .release_rootfs = release_rootfs,
	    .remount_rootfs = remount_rootfs,
	    .net_setup = srv_net_setup,
	    .net_teardown = srv_net_teardown,
	    .data = ctx,
	};
	struct rt *rt = NULL;
	if (rt_open(&o, &rt, err) < 0)
		return -err->code;
	ctx->runtime = rt;
	/* Root file systems no container claims: huskd died between making
	 * one and recording its container. */
	_cleanup_strv_ char **ids = img_rootfs_list(ctx->image);
	for (size_t i = 0; ids && ids[i]; i++) {
		if (rt_ctr_known(rt, ids[i]))
			continue;
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		log_warn("recover: removing root filesystem of unknown container '%s'", ids[i]);
		if (img_rootfs_remove(ctx->image, ids[i], &e) < 0)
			log_warn("recover: %s", e.msg);
	}
	return 0;
}

void srv_runtime_shutdown(struct srv_ctx *ctx)
{
	rt_free(ctx->runtime);
	ctx->runtime = NULL;
}

/* ---- create ---- */

/* Docker's rules, which the kubelet relies on: command replaces the image's
 * Entrypoint and drops its Cmd; args replace Cmd. */
static char **merge_args(const Runtime__V1__ContainerConfig *c, const struct img_config *ic)
{
	char **argv = xnew(char *, 1);
	if (c->n_command) {
		for (size_t i = 0; i < c->n_command; i++)
			argv = strv_append(argv, c->command[i]);
	} else {
		for (size_t i = 0; ic->entrypoint[i]; i++)
			argv = strv_append(argv, ic->entrypoint[i]);
	}
	if (c->n_args) {
		for (size_t i = 0; i < c->n_args; i++)
			argv = strv_append(argv, c->args[i]);
	} else if (!c->n_command) {
		for (size_t i = 0; ic->cmd[i]; i++)
			argv = strv_append(argv, ic->cmd[i]);
	}
	return argv;
}

/* The image's environment, then the config's, a later key replacing an
 * earlier one in place. */
static char **merge_env(const Runtime__V1__ContainerConfig *c, const struct img_config *ic)
{
	char **env = xnew(char *, 1);
	size_t n = 0;
	for (size_t i = 0; ic->env[i]; i++)
		env = strv_append(env, ic->env[i]), n++;
	for (size_t i = 0; i < c->n_envs; i++) {
		const Runtime__V1__KeyValue *kv = c->envs[i];
		if (isempty(kv->key))
			continue;
		_cleanup_free_ char *val = xstrndup((const char *)kv->value.data, kv->value.len);
		char *entry = xasprintf("%s=%s", kv->key, val);
		size_t klen = strlen(kv->key);
		bool replaced = false;
		for (size_t j = 0; j < n && !replaced; j++) {
			if (strncmp(env[j], kv->key, klen) == 0 && env[j][klen] == '=') {
				free(env[j]);
				env[j] = entry;
				replaced = true;
			}
		}
		if (!replaced) {
			env = strv_append(env, entry), n++;
			free(entry);
		}
	}
	return env;
}

static const char *signal_name(Runtime__V1__Signal s)
{
	const ProtobufCEnumValue *v =
	    protobuf_c_enum_descriptor_get_value(&runtime__v1__signal__descriptor, (int)s);
	return v && s != RUNTIME__V1__SIGNAL__RUNTIME_DEFAULT ? v->name : NULL;
}

/* What tells a retry of the same CreateContainer (see rt_ctr_create): the
 * request's digest, without the host path of the termination message
 * mount, which the kubelet names anew, with a random id, for each call. */
static char *create_digest(const Runtime__V1__CreateContainerRequest *req)
{
	Runtime__V1__CreateContainerRequest *copy = srv_message_copy(req);
	Runtime__V1__ContainerConfig *c = copy->config;
	const char *term = NULL;
	for (size_t i = 0; i < c->n_annotations; i++)
		if (streq(c->annotations[i]->key, "io.kubernetes.container.terminationMessagePath"))
			term = c->annotations[i]->value;
	for (size_t i = 0; !isempty(term) && i < c->n_mounts; i++) {
		Runtime__V1__Mount *m = c->mounts[i];
		/* An absent string is protobuf-c's static empty one: not ours to free. */
		if (streq(m->container_path, term) && !isempty(m->host_path)) {
			free(m->host_path);
			m->host_path = xstrdup("");
		}
	}
	char *digest = srv_digest(copy);
	srv_message_free(copy);
	return digest;
}

/* Whether a '/'-separated path has a ".." component ("my..log" has none). */
static bool has_dotdot(const char *p)
{
	for (;;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		if (!p[n])
			return false;
		p += n + 1;
	}
}

/* The environment travels to the launcher in the container's spec file,
 * which it reads only up to CTR_SPEC_MAX_FILE: refuse more at create, not
 * at start. Values are bytes in husk's proto, so the request check does
 * not see their NUL bytes: refuse them here. */
static int check_env_size(const Runtime__V1__ContainerConfig *c, struct husk_error *err)
{
	size_t total = 0;
	for (size_t i = 0; i < c->n_envs; i++) {
		const Runtime__V1__KeyValue *kv = c->envs[i];
		/* A value is bytes on the wire; a NUL would cut it short. */
		if (kv->value.len && memchr(kv->value.data, '\0', kv->value.len))
			return husk_error_set(err, EINVAL,
					      "CreateContainer '%s': config.envs '%s': the value "
					      "contains a NUL byte",
					      c->metadata->name, kv->key ? kv->key : "");
		total += strlen(kv->key ? kv->key : "") + kv->value.len + 2;
	}
	if (total > CTR_SPEC_MAX_FILE)
		return husk_error_set(
		    err, EINVAL,
		    "CreateContainer '%s': config.envs: %zu bytes of environment, "
		    "more than the %u a container spec may hold",
		    c->metadata->name, total, CTR_SPEC_MAX_FILE);
	return 0;
}

int srv_create_container(struct srv_ctx *ctx, const void *in, void **ret_out,
			 struct husk_error *err)
{
	const Runtime__V1__CreateContainerRequest *req = in;
	const Runtime__V1__ContainerConfig *c = req->config;
	if (isempty(req->pod_sandbox_id))
		return husk_error_set(err, EINVAL, "CreateContainer: pod_sandbox_id is empty");
	if (!c || !c->metadata || isempty(c->metadata->name))
		return husk_error_set(err, EINVAL,
				      "CreateContainer: config.metadata.name is empty");
	if (!c->image || isempty(c->image->image))
		return husk_error_set(err, EINVAL,
				      "CreateContainer '%s': config.image.image is empty",
				      c->metadata->name);
	const char *name = c->metadata->name;
	if (check_env_size(c, err) < 0)
		return -err->code;

	_cleanup_(img_info_freep) struct img_info *img = NULL;
	int r = img_status(ctx->image, c->image->image, 0, &img, err);
	if (r == -ENOENT)
		return husk_error_set(
		    err, EBUSY, "CreateContainer '%s': image '%s' is not present; pull it first",
		    name, c->image->image);
	if (r < 0)
		return husk_error_prefix(err, "CreateContainer '%s': image '%s'", name,
					 c->image->image);
	_cleanup_(img_config_freep) struct img_config *ic = NULL;
	if (img_config_get(ctx->image, img->id, &ic, err) < 0)
		return husk_error_prefix(err, "CreateContainer '%s'", name);

	_cleanup_strv_ char **argv = merge_args(c, ic);
	_cleanup_strv_ char **env = merge_env(c, ic);
	_cleanup_(state_map_clear) struct state_map labels = {0}, annotations = {0};
	srv_map_to_state(c->labels, c->n_labels, &labels);
	srv_map_to_state(c->annotations, c->n_annotations, &annotations);

	/* Logs go to <pod log_directory>/<log_path>. */
	_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
	if (rt_pod_get(ctx->runtime, req->pod_sandbox_id, &pod, err) < 0)
		return husk_error_prefix(err, "CreateContainer '%s'", name);
	_cleanup_free_ char *log_path = NULL;
	if (!isempty(c->log_path)) {
		if (isempty(pod->log_directory))
			return husk_error_set(
			    err, EINVAL,
			    "CreateContainer '%s': log_path '%s' is given but the "
			    "pod sandbox has no log_directory",
			    name, c->log_path);
		if (c->log_path[0] == '/' || has_dotdot(c->log_path))
			return husk_error_set(
			    err, EINVAL,
			    "CreateContainer '%s': log_path '%s' must be relative "
			    "to the pod's log_directory",
			    name, c->log_path);
		log_path = xasprintf("%s/%s", pod->log_directory, c->log_path);
	}

	_cleanup_free_ struct rt_mount *mounts = xnew(struct rt_mount, c->n_mounts + 1);
	for (size_t i = 0; i < c->n_mounts; i++)
		mounts[i] =
		    (struct rt_mount){c->mounts[i]->container_path, c->mounts[i]->host_path,
				      c->mounts[i]->readonly, (int)c->mounts[i]->propagation};
	_cleanup_free_ struct rt_device *devices = xnew(struct rt_device, c->n_devices + 1);
	for (size_t i = 0; i < c->n_devices; i++)
		devices[i] =
		    (struct rt_device){c->devices[i]->container_path, c->devices[i]->host_path,
				       c->devices[i]->permissions};

	struct rt_ctr_config rc = {
	    .pod_id = pod->id,
	    .name = name,
	    .attempt = c->metadata->attempt,
	    .image = c->image->image,
	    .image_id = img->id,
	    .image_ref = img->repo_digests && img->repo_digests[0] ? img->repo_digests[0] : img->id,
	    .args = argv,
	    .env = env,
	    .cwd = !isempty(c->working_dir) ? c->working_dir : ic->working_dir,
	    .image_user = ic->user,
	    .tty = c->tty,
	    .stdin_open = c->stdin,
	    .stdin_once = c->stdin_once,
	    .log_path = log_path,
	    .mounts = mounts,
	    .n_mounts = c->n_mounts,
	    .devices = devices,
	    .n_devices = c->n_devices,
	    .labels = &labels,
	    .annotations = &annotations,
	    .stop_signal =
		signal_name(c->stop_signal) ? signal_name(c->stop_signal) : ic->stop_signal,
	};
	/* A pod's containers all use the pod's handler. */
	const struct srv_runtime *oci = NULL;
	if (srv_config_runtime(ctx->config, pod->runtime_handler, &oci, err) < 0)
		return husk_error_prefix(err, "CreateContainer '%s'", name);
	if (oci) {
		rc.oci_path = oci->path;
		rc.oci_root = oci->root;
		rc.oci_args = oci->args;
		rc.oci_systemd_cgroup = oci->systemd_cgroup;
	}
	_cleanup_(cg_resources_clear) struct cg_resources res;
	cg_resources_init(&res);
	const Runtime__V1__LinuxContainerConfig *lc = c->linux;
	if (lc && lc->resources) {
		if (srv_resources_from_cri(lc->resources, &res, &rc.oom_score_adj, err) < 0)
			return husk_error_prefix(err, "CreateContainer '%s'", name);
		rc.resources = &res;
		rc.has_oom_score_adj = true;
	}
	_cleanup_(srv_ctr_security_clear) struct srv_ctr_security sec = {0};
	_cleanup_(lc_lsm_clear) struct lc_lsm lsm;
	lc_lsm_detect(NULL, &lsm);
	if (srv_ctr_security_from_cri(lc ? lc->security_context : NULL, &lsm, pod->sandbox.net,
				      pod->sandbox.ipc, &rc, &sec, err) < 0)
		return husk_error_prefix(err, "CreateContainer '%s'", name);
	_cleanup_free_ char *digest = create_digest(req);
	rc.digest = digest;
	char *id = NULL;
	if (rt_ctr_create(ctx->runtime, &rc, srv_call_cancel(), &id, err) < 0)
		return -err->code;
	Runtime__V1__CreateContainerResponse *resp = srv_new(
	    Runtime__V1__CreateContainerResponse, RUNTIME__V1__CREATE_CONTAINER_RESPONSE__INIT);
	resp->container_id = id;
	*ret_out = resp;
	return 0;
}

/* ---- start, stop, remove ---- */

#define REQUIRE_ID(field, method)                                                             \
	do {                                                                                  \
		if (isempty(field))                                                           \
			return husk_error_set(err, EINVAL, method ": container_id is empty"); \
	} while (0)

int srv_start_container(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__StartContainerRequest *req = in;
	REQUIRE_ID(req->container_id, "StartContainer");
	if (rt_ctr_start(ctx->runtime, req->container_id, err) < 0)
		return -err->code;
	*ret_out = srv_new(Runtime__V1__StartContainerResponse,
			   RUNTIME__V1__START_CONTAINER_RESPONSE__INIT);
	return 0;
}

int srv_stop_container(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__StopContainerRequest *req = in;
	REQUIRE_ID(req->container_id, "StopContainer");
	if (rt_ctr_stop(ctx->runtime, req->container_id, req->timeout, err) < 0)
		return -err->code;
	*ret_out =
	    srv_new(Runtime__V1__StopContainerResponse, RUNTIME__V1__STOP_CONTAINER_RESPONSE__INIT);
	return 0;
}

int srv_remove_container(struct srv_ctx *ctx, const void *in, void **ret_out,
			 struct husk_error *err)
{
	const Runtime__V1__RemoveContainerRequest *req = in;
	REQUIRE_ID(req->container_id, "RemoveContainer");
	if (rt_ctr_remove(ctx->runtime, req->container_id, srv_call_cancel(), err) < 0)
		return -err->code;
	*ret_out = srv_new(Runtime__V1__RemoveContainerResponse,
			   RUNTIME__V1__REMOVE_CONTAINER_RESPONSE__INIT);
	return 0;
}

/* ---- status and list ---- */

static Runtime__V1__ContainerState cri_state(enum ctr_state s)
{
	switch (s) {
	case CTR_STATE_CREATED:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED;
	case CTR_STATE_RUNNING:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING;
	case CTR_STATE_EXITED:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED;
	default:
		return RUNTIME__V1__CONTAINER_STATE__CONTAINER_UNKNOWN;
	}
}

static Runtime__V1__ContainerMetadata *ctr_metadata(const struct ctr_record *r)
{
	Runtime__V1__ContainerMetadata *m =
	    srv_new(Runtime__V1__ContainerMetadata, RUNTIME__V1__CONTAINER_METADATA__INIT);
	m->name = srv_strdup(r->name);
	m->attempt = r->attempt;
	return m;
}

static Runtime__V1__ImageSpec *image_spec(const struct ctr_record *r)
{
	Runtime__V1__ImageSpec *s = srv_new(Runtime__V1__ImageSpec, RUNTIME__V1__IMAGE_SPEC__INIT);
	s->image = srv_strdup(r->image);
	return s;
}

/* CRI reads 0 as "not set": the kubelet only uses values above 0, so
 * "no limit" (the kernel's max, CG_MAX here) is reported as 0 too. */
static int64_t cri_value(int64_t v)
{
	return v == CG_UNSET || v == CG_MAX ? 0 : v;
}

static Runtime__V1__LinuxContainerResources *resources_msg(const struct cg_resources *res,
							   bool has_oom, int oom)
{
	Runtime__V1__LinuxContainerResources *m = srv_new(
	    Runtime__V1__LinuxContainerResources, RUNTIME__V1__LINUX_CONTAINER_RESOURCES__INIT);
	m->cpu_period = cri_value(res->cpu_period);
	m->cpu_quota = cri_value(res->cpu_quota);
	m->cpu_shares = cri_value(res->cpu_shares);
	m->memory_limit_in_bytes = cri_value(res->memory_limit);
	m->memory_swap_limit_in_bytes = cri_value(res->memory_swap_limit);
	m->oom_score_adj = has_oom ? oom : 0;
	m->cpuset_cpus = srv_strdup(res->cpuset_cpus);
	m->cpuset_mems = srv_strdup(res->cpuset_mems);
	for (size_t i = 0; i < res->n_hugepages; i++) {
		if (res->hugepages[i].limit < 0)
			continue; /* no limit */
		Runtime__V1__HugepageLimit *h =
		    srv_new(Runtime__V1__HugepageLimit, RUNTIME__V1__HUGEPAGE_LIMIT__INIT);
		h->page_size = srv_strdup(res->hugepages[i].page_size);
		h->limit = (uint64_t)res->hugepages[i].limit;
		srv_repeated_add(&m->hugepage_limits, &m->n_hugepage_limits, h);
	}
	return m;
}

int srv_container_status(struct srv_ctx *ctx, const void *in, void **ret_out,
			 struct husk_error *err)
{
	const Runtime__V1__ContainerStatusRequest *req = in;
	REQUIRE_ID(req->container_id, "ContainerStatus");
	_cleanup_(ctr_record_freep) struct ctr_record *r = NULL;
	if (rt_ctr_get(ctx->runtime, req->container_id, &r, err) < 0)
		return -err->code;

	Runtime__V1__ContainerStatus *st =
	    srv_new(Runtime__V1__ContainerStatus, RUNTIME__V1__CONTAINER_STATUS__INIT);
	st->id = srv_strdup(r->id);
	st->metadata = ctr_metadata(r);
	st->state = cri_state(r->state);
	st->created_at = r->created_at;
	st->started_at = r->started_at;
	st->finished_at = r->finished_at;
	st->exit_code = r->exit_code;
	st->image = image_spec(r);
	st->image_ref = srv_strdup(r->image_ref);
	st->image_id = srv_strdup(r->image_id);
	st->reason = srv_strdup(r->reason);
	st->message = srv_strdup(r->message);
	srv_map_from_state(&r->labels, &st->labels, &st->n_labels,
			   &runtime__v1__container_status__labels_entry__descriptor);
	srv_map_from_state(&r->annotations, &st->annotations, &st->n_annotations,
			   &runtime__v1__container_status__annotations_entry__descriptor);
	for (size_t i = 0; i < r->n_mounts; i++) {
		Runtime__V1__Mount *m = srv_new(Runtime__V1__Mount, RUNTIME__V1__MOUNT__INIT);
		m->container_path = srv_strdup(r->mounts[i].container_path);
		m->host_path = srv_strdup(r->mounts[i].host_path);
		m->readonly = r->mounts[i].readonly;
		m->propagation = (Runtime__V1__MountPropagation)r->mounts[i].propagation;
		srv_repeated_add(&st->mounts, &st->n_mounts, m);
	}
	st->log_path = srv_strdup(r->log_path);

	_cleanup_(cg_resources_clear) struct cg_resources res;
	cg_resources_init(&res);
	bool has_oom = false;
	int oom = 0;
	if (r->state != CTR_STATE_EXITED &&
	    rt_ctr_resources(ctx->runtime, r->id, &res, &has_oom, &oom, NULL) == 0) {
		st->resources = srv_new(Runtime__V1__ContainerResources,
					RUNTIME__V1__CONTAINER_RESOURCES__INIT);
		st->resources->linux = resources_msg(&res, has_oom, oom);
	}
	_cleanup_(ctr_spec_freep) struct ctr_spec *spec = NULL;
	if (rt_ctr_spec(ctx->runtime, r->id, &spec, NULL) == 0) {
		st->user = srv_new(Runtime__V1__ContainerUser, RUNTIME__V1__CONTAINER_USER__INIT);
		Runtime__V1__LinuxContainerUser *u = srv_new(
		    Runtime__V1__LinuxContainerUser, RUNTIME__V1__LINUX_CONTAINER_USER__INIT);
		u->uid = spec->uid;
		u->gid = spec->gid;
		u->supplemental_groups = xnew(int64_t, spec->n_additional_gids + 1);
		for (size_t i = 0; i < spec->n_additional_gids; i++)
			u->supplemental_groups[u->n_supplemental_groups++] =
			    spec->additional_gids[i];
		st->user->linux = u;
	}

	Runtime__V1__ContainerStatusResponse *resp = srv_new(
	    Runtime__V1__ContainerStatusResponse, RUNTIME__V1__CONTAINER_STATUS_RESPONSE__INIT);
	resp->status = st;
	if (req->verbose) {
		_cleanup_gen_ yajl_gen g = json_gen_new(false);
		yajl_gen_map_open(g);
		json_kv_int(g, "pid", r->pid);
		json_kv_str(g, "sandboxID", r->pod_id);
		json_kv_str(g, "rootfs", r->rootfs);
		/* The pod's: every container of it is in its user namespace. */
		_cleanup_(pod_record_freep) struct pod_record *pod = NULL;
		if (rt_pod_get(ctx->runtime, r->pod_id, &pod, NULL) == 0)
			srv_userns_info_gen(g, &pod->sandbox);
		_cleanup_free_ char *kview = NULL;
		bool live = false;
		_cleanup_error_ struct husk_error kerr = HUSK_ERROR_INIT;
		if (rt_ctr_kernel_view(ctx->runtime, r->id, &kview, &live, &kerr) == 0)
			srv_kernel_view_gen(g, kview, live);
		/* runtimeSpec is the OCI config, as containerd shows it. */
		_cleanup_free_ char *oci = NULL;
		if (rt_ctr_oci_config(ctx->runtime, r->id, &oci, NULL) == 0) {
			_cleanup_json_ yajl_val t = NULL;
			if (json_parse(oci, strlen(oci), "config.json", &t, NULL) == 0) {
				json_key(g, "runtimeSpec");
				json_gen_tree(g, t);
			}
		}
		yajl_gen_map_close(g);
		_cleanup_free_ char *info = json_gen_steal(g);
		srv_map_add(&resp->info, &resp->n_info,
			    &runtime__v1__container_status_response__info_entry__descriptor, "info",
			    info);
	}
	*ret_out = resp;
	return 0;
}

int srv_list_containers(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__ListContainersRequest *req = in;
	struct ctr_filter f = {0};
	_cleanup_(state_map_clear) struct state_map want = {0};
	if (req->filter) {
		f.id = isempty(req->filter->id) ? NULL : req->filter->id;
		f.pod_id =
		    isempty(req->filter->pod_sandbox_id) ? NULL : req->filter->pod_sandbox_id;
		if (req->filter->state) {
			f.has_state = true;
			switch (req->filter->state->state) {
			case RUNTIME__V1__CONTAINER_STATE__CONTAINER_CREATED:
				f.state = CTR_STATE_CREATED;
				break;
			case RUNTIME__V1__CONTAINER_STATE__CONTAINER_RUNNING:
				f.state = CTR_STATE_RUNNING;
				break;
			case RUNTIME__V1__CONTAINER_STATE__CONTAINER_EXITED:
				f.state = CTR_STATE_EXITED;
				break;
			default:
				f.state = CTR_STATE_UNKNOWN;
			}
		}
		srv_map_to_state(req->filter->label_selector, req->filter->n_label_selector, &want);
		f.labels = &want;
	}
	const struct ctr_record **v = NULL;
	size_t n = 0;
	if (rt_ctr_list(ctx->runtime, &f, &v, &n, err) < 0)
		return -err->code;
	Runtime__V1__ListContainersResponse *resp = srv_new(
	    Runtime__V1__ListContainersResponse, RUNTIME__V1__LIST_CONTAINERS_RESPONSE__INIT);
	/* Each item is packed from the shared record it borrows from: with
	 * 1000 containers, copying their strings twice (record, then
	 * message) was most of the call. */
	for (size_t i = 0; i < n; i++) {
		const struct ctr_record *c = v[i];
		Runtime__V1__ContainerMetadata md = RUNTIME__V1__CONTAINER_METADATA__INIT;
		md.name = c->name;
		md.attempt = c->attempt;
		Runtime__V1__ImageSpec im = RUNTIME__V1__IMAGE_SPEC__INIT;
		im.image = c->image;
		Runtime__V1__Container m = RUNTIME__V1__CONTAINER__INIT;
		m.id = c->id;
		m.pod_sandbox_id = c->pod_id;
		m.metadata = &md;
		m.image = &im;
		m.image_ref = c->image_ref;
		m.image_id = c->image_id;
		m.state = cri_state(c->state);
		m.created_at = c->created_at;
		_cleanup_free_ void *labels =
		    srv_map_borrow(&c->labels, &m.labels, &m.n_labels,
				   &runtime__v1__container__labels_entry__descriptor);
		_cleanup_free_ void *annotations =
		    srv_map_borrow(&c->annotations, &m.annotations, &m.n_annotations,
				   &runtime__v1__container__annotations_entry__descriptor);
		srv_repeated_add_packed(resp, 1, &m);
	}
	ctr_records_release(v, n);
	*ret_out = resp;
	return 0;
}

/* ---- exec, logs, resources ---- */

int srv_exec_sync(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__ExecSyncRequest *req = in;
	REQUIRE_ID(req->container_id, "ExecSync");
	_cleanup_strv_ char **cmd = srv_strv(req->cmd, req->n_cmd);
	struct rt_exec_result res = {0};
	if (rt_ctr_exec_sync(ctx->runtime, req->container_id, cmd, req->timeout, &res, err) < 0)
		return -err->code;
	Runtime__V1__ExecSyncResponse *resp =
	    srv_new(Runtime__V1__ExecSyncResponse, RUNTIME__V1__EXEC_SYNC_RESPONSE__INIT);
	resp->exit_code = res.exit_code;
	resp->stdout.data = (uint8_t *)steal_ptr(&res.out);
	resp->stdout.len = res.out_len;
	resp->stderr.data = (uint8_t *)steal_ptr(&res.err_out);
	resp->stderr.len = res.err_len;
	rt_exec_result_clear(&res);
	*ret_out = resp;
	return 0;
}

int srv_reopen_container_log(struct srv_ctx *ctx, const void *in, void **ret_out,
			     struct husk_error *err)
{
	const Runtime__V1__ReopenContainerLogRequest *req = in;
	REQUIRE_ID(req->container_id, "ReopenContainerLog");
	if (rt_ctr_reopen_log(ctx->runtime, req->container_id, err) < 0)
		return -err->code;
	*ret_out = srv_new(Runtime__V1__ReopenContainerLogResponse,
			   RUNTIME__V1__REOPEN_CONTAINER_LOG_RESPONSE__INIT);
	return 0;
}

int srv_update_container_resources(struct srv_ctx *ctx, const void *in, void **ret_out,
				   struct husk_error *err)
{
	const Runtime__V1__UpdateContainerResourcesRequest *req = in;
	REQUIRE_ID(req->container_id, "UpdateContainerResources");
	_cleanup_(cg_resources_clear) struct cg_resources res;
	int oom;
	/* oom_score_adj belongs to the process, not the cgroup: like
	 * containerd, an update leaves it as it was. */
	if (srv_resources_from_cri(req->linux, &res, &oom, err) < 0 ||
	    rt_ctr_update_resources(ctx->runtime, req->container_id, &res, err) < 0)
		return husk_error_prefix(err, "UpdateContainerResources '%s'", req->container_id);
	*ret_out = srv_new(Runtime__V1__UpdateContainerResourcesResponse,
			   RUNTIME__V1__UPDATE_CONTAINER_RESOURCES_RESPONSE__INIT);
	return 0;
}

/* ---- stats ---- */

static Runtime__V1__UInt64Value *u64(uint64_t v)
{
	Runtime__V1__UInt64Value *m =
	    srv_new(Runtime__V1__UInt64Value, RUNTIME__V1__UINT64_VALUE__INIT);
	m->value = v;
	return m;
}

/* CPU and memory of one cgroup; id keys the CPU rate (usage_nano_cores). */
static void fill_usage(struct srv_ctx *ctx, const char *id, const struct cg_stats *s,
		       Runtime__V1__CpuUsage **cpu, Runtime__V1__MemoryUsage **mem)
{
	*cpu = srv_new(Runtime__V1__CpuUsage, RUNTIME__V1__CPU_USAGE__INIT);
	(*cpu)->timestamp = s->timestamp_ns;
	if (s->valid & CG_STAT_CPU) {
		(*cpu)->usage_core_nano_seconds = u64(s->cpu_usage_ns);
		uint64_t rate;
		if (rt_cpu_nano_cores(ctx->runtime, id, s->cpu_usage_ns, &rate))
			(*cpu)->usage_nano_cores = u64(rate);
	}
	*mem = srv_new(Runtime__V1__MemoryUsage, RUNTIME__V1__MEMORY_USAGE__INIT);
	(*mem)->timestamp = s->timestamp_ns;
	if (s->valid & CG_STAT_MEMORY) {
		(*mem)->working_set_bytes = u64(s->memory_working_set);
		/* As cAdvisor: only a limited group has memory available. */
		if (s->memory_limit)
			(*mem)->available_bytes = u64(s->memory_limit > s->memory_working_set
							  ? s->memory_limit - s->memory_working_set
							  : 0);
		(*mem)->usage_bytes = u64(s->memory_usage);
		(*mem)->rss_bytes = u64(s->memory_rss);
		(*mem)->page_faults = u64(s->memory_page_faults);
		(*mem)->major_page_faults = u64(s->memory_major_page_faults);
	}
}

static Runtime__V1__ContainerStats *ctr_stats_msg(struct srv_ctx *ctx, const struct ctr_record *c)
{
	Runtime__V1__ContainerStats *m =
	    srv_new(Runtime__V1__ContainerStats, RUNTIME__V1__CONTAINER_STATS__INIT);
	Runtime__V1__ContainerAttributes *a =
	    srv_new(Runtime__V1__ContainerAttributes, RUNTIME__V1__CONTAINER_ATTRIBUTES__INIT);
	a->id = srv_strdup(c->id);
	a->metadata = ctr_metadata(c);
	srv_map_from_state(&c->labels, &a->labels, &a->n_labels,
			   &runtime__v1__container_attributes__labels_entry__descriptor);
	srv_map_from_state(&c->annotations, &a->annotations, &a->n_annotations,
			   &runtime__v1__container_attributes__annotations_entry__descriptor);
	m->attributes = a;
	struct cg_stats s = {0};
	if (rt_ctr_stats(ctx->runtime, c->id, &s, NULL) == 0) {
		fill_usage(ctx, c->id, &s, &m->cpu, &m->memory);
		if (s.valid & CG_STAT_SWAP) {
			m->swap = srv_new(Runtime__V1__SwapUsage, RUNTIME__V1__SWAP_USAGE__INIT);
			m->swap->timestamp = s.timestamp_ns;
			m->swap->swap_usage_bytes = u64(s.memory_swap);
		}
	}
	struct img_fs_usage u = {0};
	if (img_rootfs_usage(ctx->image, c->id, &u, NULL) == 0) {
		Runtime__V1__FilesystemUsage *fs =
		    srv_new(Runtime__V1__FilesystemUsage, RUNTIME__V1__FILESYSTEM_USAGE__INIT);
		fs->timestamp = u.at;
		fs->fs_id = srv_new(Runtime__V1__FilesystemIdentifier,
				    RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT);
		fs->fs_id->mountpoint = srv_strdup(u.mountpoint);
		fs->used_bytes = u64(u.bytes);
		fs->inodes_used = u64(u.inodes);
		m->writable_layer = fs;
		img_fs_usage_clear(&u);
	}
	return m;
}

int srv_container_stats(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__ContainerStatsRequest *req = in;
	REQUIRE_ID(req->container_id, "ContainerStats");
	_cleanup_(ctr_record_freep) struct ctr_record *c = NULL;
	if (rt_ctr_get(ctx->runtime, req->container_id, &c, err) < 0)
		return -err->code;
	Runtime__V1__ContainerStatsResponse *resp = srv_new(
	    Runtime__V1__ContainerStatsResponse, RUNTIME__V1__CONTAINER_STATS_RESPONSE__INIT);
	resp->stats = ctr_stats_msg(ctx, c);
	*ret_out = resp;
	return 0;
}

int srv_list_container_stats(struct srv_ctx *ctx, const void *in, void **ret_out,
			     struct husk_error *err)
{
	const Runtime__V1__ListContainerStatsRequest *req = in;
	struct ctr_filter f = {0};
	_cleanup_(state_map_clear) struct state_map want = {0};
	if (req->filter) {
		f.id = isempty(req->filter->id) ? NULL : req->filter->id;
		f.pod_id =
		    isempty(req->filter->pod_sandbox_id) ? NULL : req->filter->pod_sandbox_id;
		srv_map_to_state(req->filter->label_selector, req->filter->n_label_selector, &want);
		f.labels = &want;
	}
	const struct ctr_record **v = NULL;
	size_t n = 0;
	if (rt_ctr_list(ctx->runtime, &f, &v, &n, err) < 0)
		return -err->code;
	Runtime__V1__ListContainerStatsResponse *resp =
	    srv_new(Runtime__V1__ListContainerStatsResponse,
		    RUNTIME__V1__LIST_CONTAINER_STATS_RESPONSE__INIT);
	for (size_t i = 0; i < n; i++)
		if (v[i]->state == CTR_STATE_RUNNING)
			srv_repeated_add(&resp->stats, &resp->n_stats, ctr_stats_msg(ctx, v[i]));
	ctr_records_release(v, n);
	*ret_out = resp;
	return 0;
}

/* The pod's own interfaces; NULL for a pod on the host's network (the
 * host's counters are not the pod's) or without a process to read them. */
static Runtime__V1__NetworkUsage *pod_network(struct srv_ctx *ctx, const char *pod_id)
{
	struct rt_net_iface *ifs = NULL;
	size_t n = 0;
	if (rt_pod_net_stats(ctx->runtime, pod_id, &ifs, &n, NULL) < 0 || n == 0) {
		rt_net_ifaces_free(ifs);
		return NULL;
	}
	Runtime__V1__NetworkUsage *net =
	    srv_new(Runtime__V1__NetworkUsage, RUNTIME__V1__NETWORK_USAGE__INIT);
	net->timestamp = now_real_ns();
	for (size_t i = 0; i < n; i++) {
		Runtime__V1__NetworkInterfaceUsage *u = srv_new(
		    Runtime__V1__NetworkInterfaceUsage, RUNTIME__V1__NETWORK_INTERFACE_USAGE__INIT);
		u->name = xstrdup(ifs[i].name);
		u->rx_bytes = u64(ifs[i].rx_bytes);
		u->rx_errors = u64(ifs[i].rx_errors);
		u->tx_bytes = u64(ifs[i].tx_bytes);
		u->tx_errors = u64(ifs[i].tx_errors);
		srv_repeated_add(&net->interfaces, &net->n_interfaces, u);
	}
	/* eth0 is the interface CNI gives a pod; else the first one. */
	size_t def = 0;
	for (size_t i = 0; i < n; i++)
		if (streq(ifs[i].name, "eth0"))
			def = i;
	Runtime__V1__NetworkInterfaceUsage *d = net->interfaces[def];
	net->default_interface =
	    srv_new(Runtime__V1__NetworkInterfaceUsage, RUNTIME__V1__NETWORK_INTERFACE_USAGE__INIT);
	net->default_interface->name = xstrdup(d->name);
	net->default_interface->rx_bytes = u64(ifs[def].rx_bytes);
	net->default_interface->rx_errors = u64(ifs[def].rx_errors);
	net->default_interface->tx_bytes = u64(ifs[def].tx_bytes);
	net->default_interface->tx_errors = u64(ifs[def].tx_errors);
	rt_net_ifaces_free(ifs);
	return net;
}

static Runtime__V1__PodSandboxStats *pod_stats_msg(struct srv_ctx *ctx, const struct pod_record *p)
{
	Runtime__V1__PodSandboxStats *m =
	    srv_new(Runtime__V1__PodSandboxStats, RUNTIME__V1__POD_SANDBOX_STATS__INIT);
	Runtime__V1__PodSandboxAttributes *a =
	    srv_new(Runtime__V1__PodSandboxAttributes, RUNTIME__V1__POD_SANDBOX_ATTRIBUTES__INIT);
	a->id = srv_strdup(p->id);
	a->metadata =
	    srv_new(Runtime__V1__PodSandboxMetadata, RUNTIME__V1__POD_SANDBOX_METADATA__INIT);
	a->metadata->name = srv_strdup(p->name);
	a->metadata->uid = srv_strdup(p->uid);
	a->metadata->namespace_ = srv_strdup(p->namespace);
	a->metadata->attempt = p->attempt;
	srv_map_from_state(&p->labels, &a->labels, &a->n_labels,
			   &runtime__v1__pod_sandbox_attributes__labels_entry__descriptor);
	srv_map_from_state(&p->annotations, &a->annotations, &a->n_annotations,
			   &runtime__v1__pod_sandbox_attributes__annotations_entry__descriptor);
	m->attributes = a;
	m->linux =
	    srv_new(Runtime__V1__LinuxPodSandboxStats, RUNTIME__V1__LINUX_POD_SANDBOX_STATS__INIT);
	struct cg_stats s = {0};
	if (rt_pod_stats(ctx->runtime, p->id, &s, NULL) == 0)
		fill_usage(ctx, p->id, &s, &m->linux->cpu, &m->linux->memory);
	/* Processes, not tasks: pids.current would count threads too. */
	struct rt_proc_stats ps;
	if (rt_pod_proc_stats(ctx->runtime, p->id, &ps, NULL) == 0) {
		m->linux->process =
		    srv_new(Runtime__V1__ProcessUsage, RUNTIME__V1__PROCESS_USAGE__INIT);
		m->linux->process->timestamp = now_real_ns();
		m->linux->process->process_count = u64(ps.processes);
	}
	m->linux->network = pod_network(ctx, p->id);
	struct ctr_filter f = {.pod_id = p->id, .has_state = true, .state = CTR_STATE_RUNNING};
	const struct ctr_record **v = NULL;
	size_t n = 0;
	if (rt_ctr_list(ctx->runtime, &f, &v, &n, NULL) == 0) {
		for (size_t i = 0; i < n; i++)
			srv_repeated_add(&m->linux->containers, &m->linux->n_containers,
					 ctr_stats_msg(ctx, v[i]));
		ctr_records_release(v, n);
	}
	return m;
}

int srv_pod_sandbox_stats(struct srv_ctx *ctx, const void *in, void **ret_out,
			  struct husk_error *err)
{
	const Runtime__V1__PodSandboxStatsRequest *req = in;
	if (isempty(req->pod_sandbox_id))
		return husk_error_set(err, EINVAL, "PodSandboxStats: pod_sandbox_id is empty");
	_cleanup_(pod_record_freep) struct pod_record *p = NULL;
	if (rt_pod_get(ctx->runtime, req->pod_sandbox_id, &p, err) < 0)
		return -err->code;
	Runtime__V1__PodSandboxStatsResponse *resp = srv_new(
	    Runtime__V1__PodSandboxStatsResponse, RUNTIME__V1__POD_SANDBOX_STATS_RESPONSE__INIT);
	resp->stats = pod_stats_msg(ctx, p);
	*ret_out = resp;
	return 0;
}

int srv_list_pod_sandbox_stats(struct srv_ctx *ctx, const void *in, void **ret_out,
			       struct husk_error *err)
{
	const Runtime__V1__ListPodSandboxStatsRequest *req = in;
	struct pod_filter f = {.has_state = true, .state = POD_STATE_READY};
	_cleanup_(state_map_clear) struct state_map want = {0};
	if (req->filter) {
		f.id = isempty(req->filter->id) ? NULL : req->filter->id;
		srv_map_to_state(req->filter->label_selector, req->filter->n_label_selector, &want);
		f.labels = &want;
	}
	const struct pod_record **v = NULL;
	size_t n = 0;
	if (rt_pod_list(ctx->runtime, &f, &v, &n, err) < 0)
		return -err->code;
	Runtime__V1__ListPodSandboxStatsResponse *resp =
	    srv_new(Runtime__V1__ListPodSandboxStatsResponse,
		    RUNTIME__V1__LIST_POD_SANDBOX_STATS_RESPONSE__INIT);
	for (size_t i = 0; i < n; i++)
		srv_repeated_add(&resp->stats, &resp->n_stats, pod_stats_msg(ctx, v[i]));
	pod_records_release(v, n);
	*ret_out = resp;
	return 0;
}
