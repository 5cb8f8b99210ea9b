/* ImageService handlers: translate CRI messages to the image layer
 * (image/image.h) and back, plus the store's start and stop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "image/image.h"
#include "server/handlers.h"

/* How often the writable layers' usage is walked again. */
#define SRV_USAGE_REFRESH_MS 10000

int srv_image_init(struct srv_ctx *ctx, struct husk_error *err)
{
	const struct srv_config *c = ctx->config;
	struct img_registry_conf *regs =
	    xnew(struct img_registry_conf, c->n_registries ? c->n_registries : 1);
	for (size_t i = 0; i < c->n_registries; i++)
		regs[i] = (struct img_registry_conf){
		    .host = c->registries[i].host,
		    .insecure = c->registries[i].insecure,
		    .mirrors = c->registries[i].mirrors,
		    .location = c->registries[i].location,
		};
	_cleanup_strv_ char **pinned = xnew(char *, 1);
	if (!isempty(c->sandbox_image))
		pinned = strv_append(pinned, c->sandbox_image);
	for (size_t i = 0; c->pinned_images && c->pinned_images[i]; i++)
		pinned = strv_append(pinned, c->pinned_images[i]);
	struct img_options opts = {
	    .root = c->root,
	    .max_concurrent_downloads = c->max_concurrent_downloads,
	    .registries = regs,
	    .n_registries = c->n_registries,
	    .pinned = pinned,
	    /* A test and benchmark knob: the fallback for kernels before 6.8. */
	    .overlay_legacy =
		getenv("HUSK_OVERLAY_MOUNT") && streq(getenv("HUSK_OVERLAY_MOUNT"), "legacy"),
	    .progress_timeout_s = c->pull_progress_timeout,
	};
	struct img_store *s = NULL;
	int r = img_store_open(&opts, &s, err);
	free(regs);
	if (r < 0)
		return r;
	log_info("image store overlay_mount=%s", img_overlay_method(s));
	/* Stats read writable-layer usage from a cache; a figure older than
	 * this has the store's thread walk the layer again
	 * (HUSK_USAGE_REFRESH_MS overrides the age, for tests). */
	int interval = SRV_USAGE_REFRESH_MS;
	const char *env = getenv("HUSK_USAGE_REFRESH_MS");
	if (env && atoi(env) > 0)
		interval = atoi(env);
	if (img_usage_refresh_start(s, interval, err) < 0) {
		img_store_free(s);
		return -err->code;
	}
	ctx->image = s;
	return 0;
}

void srv_image_shutdown(struct srv_ctx *ctx)
{
	img_store_free(ctx->image);
	ctx->image = NULL;
}

static char **copy_strv(char *const *v, size_t *ret_n)
{
	size_t n = strv_length(v);
	char **out = xnew(char *, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(v[i]);
	*ret_n = n;
	return out;
}

static Runtime__V1__Image *image_msg(const struct img_info *info)
{
	Runtime__V1__Image *m = srv_new(Runtime__V1__Image, RUNTIME__V1__IMAGE__INIT);
	m->id = xstrdup(info->id);
	m->repo_tags = copy_strv(info->repo_tags, &m->n_repo_tags);
	m->repo_digests = copy_strv(info->repo_digests, &m->n_repo_digests);
	m->size = info->size;
	m->pinned = info->pinned;
	/* User is "uid", "name", "uid:gid" or "name:group": a number is the
	 * uid, anything else a user name. */
	const char *u = info->user ? info->user : "";
	size_t n = strcspn(u, ":");
	if (n > 0) {
		bool numeric = strspn(u, "0123456789") == n;
		if (numeric) {
			m->uid = srv_new(Runtime__V1__Int64Value, RUNTIME__V1__INT64_VALUE__INIT);
			m->uid->value = strtoll(u, NULL, 10);
			m->username = xstrdup("");
		} else {
			m->username = xstrndup(u, n);
		}
	} else {
		m->username = xstrdup("");
	}
	m->spec = srv_new(Runtime__V1__ImageSpec, RUNTIME__V1__IMAGE_SPEC__INIT);
	m->spec->image = xstrdup(info->id);
	m->spec->user_specified_image = xstrdup("");
	m->spec->runtime_handler = xstrdup("");
	m->spec->image_ref = xstrdup(info->id);
	return m;
}

static const char *spec_image(const Runtime__V1__ImageSpec *spec)
{
	return spec && spec->image ? spec->image : "";
}

int srv_pull_image(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__PullImageRequest *req = in;
	const char *name = spec_image(req->image);
	struct img_auth auth = {0};
	if (req->auth) {
		auth.username = req->auth->username;
		auth.password = req->auth->password;
		auth.auth = req->auth->auth;
		auth.identity_token = req->auth->identity_token;
		auth.registry_token = req->auth->registry_token;
	}
	long long t0 = now_mono_ns();
	_cleanup_free_ char *id = NULL;
	int r = img_pull(ctx->image, name, req->auth ? &auth : NULL, srv_call_cancel(), &id, err);
	if (r < 0)
		return r;
	log_info("pulled image ref=%s id=%s seconds=%.2f", name, id,
		 (double)(now_mono_ns() - t0) / 1e9);
	Runtime__V1__PullImageResponse *resp =
	    srv_new(Runtime__V1__PullImageResponse, RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT);
	resp->image_ref = steal_ptr(&id);
	*ret_out = resp;
	return 0;
}

static int list(struct srv_ctx *ctx, const Runtime__V1__ImageFilter *filter,
		Runtime__V1__Image ***ret, size_t *ret_n, struct husk_error *err)
{
	struct img_info **v = NULL;
	size_t n = 0;
	int r = img_list(ctx->image, filter ? spec_image(filter->image) : NULL, &v, &n, err);
	if (r < 0)
		return r;
	Runtime__V1__Image **out = xnew(Runtime__V1__Image *, n ? n : 1);
	for (size_t i = 0; i < n; i++)
		out[i] = image_msg(v[i]);
	img_info_list_free(v, n);
	*ret = out;
	*ret_n = n;
	return 0;
}

int srv_list_images(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__ListImagesRequest *req = in;
	Runtime__V1__ListImagesResponse *resp =
	    srv_new(Runtime__V1__ListImagesResponse, RUNTIME__V1__LIST_IMAGES_RESPONSE__INIT);
	int r = list(ctx, req->filter, &resp->images, &resp->n_images, err);
	if (r < 0) {
		srv_message_free(resp);
		return r;
	}
	*ret_out = resp;
	return 0;
}

int srv_image_status(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__ImageStatusRequest *req = in;
	const char *name = spec_image(req->image);
	Runtime__V1__ImageStatusResponse *resp =
	    srv_new(Runtime__V1__ImageStatusResponse, RUNTIME__V1__IMAGE_STATUS_RESPONSE__INIT);
	_cleanup_(img_info_freep) struct img_info *info = NULL;
	_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
	int r = img_status(ctx->image, name, req->verbose ? IMG_INFO_CONFIG : 0, &info, &e);
	if (r < 0 && e.code != ENOENT) {
		srv_message_free(resp);
		return husk_error_move(err, &e);
	}
	/* An unknown image is an empty answer, not an error (CRI). */
	if (info) {
		resp->image = image_msg(info);
		if (req->verbose) {
			_cleanup_free_ char *chains = NULL;
			size_t len = 0;
			for (size_t i = 0; info->chain_ids[i]; i++)
				len += strlen(info->chain_ids[i]) + 3;
			chains = xzalloc(len + 3);
			for (size_t i = 0; info->chain_ids[i]; i++) {
				strcat(chains, i ? ",\"" : "\"");
				strcat(chains, info->chain_ids[i]);
				strcat(chains, "\"");
			}
			_cleanup_free_ char *json =
			    xasprintf("{\"id\":\"%s\",\"manifestDigest\":\"%s\",\"chainIDs\":[%s],"
				      "\"imageSpec\":%s}",
				      info->id, info->manifest_digest, chains,
				      isempty(info->config_json) ? "null" : info->config_json);
			srv_map_add(&resp->info, &resp->n_info,
				    &runtime__v1__image_status_response__info_entry__descriptor,
				    "info", json);
		}
	}
	*ret_out = resp;
	return 0;
}

int srv_remove_image(struct srv_ctx *ctx, const void *in, void **ret_out, struct husk_error *err)
{
	const Runtime__V1__RemoveImageRequest *req = in;
	const char *name = spec_image(req->image);
	int r = img_remove(ctx->image, name, err);
	if (r < 0)
		return r;
	log_info("removed image ref=%s", name);
	*ret_out =
	    srv_new(Runtime__V1__RemoveImageResponse, RUNTIME__V1__REMOVE_IMAGE_RESPONSE__INIT);
	return 0;
}

static Runtime__V1__FilesystemUsage *usage_msg(const struct img_fs_usage *u, long long now)
{
	Runtime__V1__FilesystemUsage *m =
	    srv_new(Runtime__V1__FilesystemUsage, RUNTIME__V1__FILESYSTEM_USAGE__INIT);
	m->timestamp = now;
	m->fs_id =
	    srv_new(Runtime__V1__FilesystemIdentifier, RUNTIME__V1__FILESYSTEM_IDENTIFIER__INIT);
	m->fs_id->mountpoint = xstrdup(u->mountpoint);
	m->used_bytes = srv_new(Runtime__V1__UInt64Value, RUNTIME__V1__UINT64_VALUE__INIT);
	m->used_bytes->value = u->bytes;
	m->inodes_used = srv_new(Runtime__V1__UInt64Value, RUNTIME__V1__UINT64_VALUE__INIT);
	m->inodes_used->value = u->inodes;
	return m;
}

int srv_image_fs_info(struct srv_ctx *ctx, const void *in _unused_, void **ret_out,
		      struct husk_error *err)
{
	struct img_fs_usage images = {0}, containers = {0};
	int r = img_fs_info(ctx->image, &images, &containers, err);
	if (r < 0)
		return r;
	long long now = now_real_ns();
	Runtime__V1__ImageFsInfoResponse *resp =
	    srv_new(Runtime__V1__ImageFsInfoResponse, RUNTIME__V1__IMAGE_FS_INFO_RESPONSE__INIT);
	srv_repeated_add(&resp->image_filesystems, &resp->n_image_filesystems,
			 usage_msg(&images, now));
	srv_repeated_add(&resp->container_filesystems, &resp->n_container_filesystems,
			 usage_msg(&containers, now));
	img_fs_usage_clear(&images);
	img_fs_usage_clear(&containers);
	*ret_out = resp;
	return 0;
}
