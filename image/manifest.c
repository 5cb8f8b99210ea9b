/* Media types, manifests, indexes and image configs: parsing with the
 * checks that keep a malformed document from reaching the store, platform
 * selection and chain IDs. */
#include <errno.h>
#include <string.h>
#include <sys/utsname.h>

#include "common/json.h"
#include "image/internal.h"

static const struct {
	const char *mt;
	enum img_mt_kind kind;
	enum img_compression comp;
} media_types[] = {
    {IMG_MT_DOCKER_MANIFEST, IMG_KIND_MANIFEST, IMG_COMP_NONE},
    {IMG_MT_OCI_MANIFEST, IMG_KIND_MANIFEST, IMG_COMP_NONE},
    {IMG_MT_DOCKER_LIST, IMG_KIND_INDEX, IMG_COMP_NONE},
    {IMG_MT_OCI_INDEX, IMG_KIND_INDEX, IMG_COMP_NONE},
    {IMG_MT_DOCKER_CONFIG, IMG_KIND_CONFIG, IMG_COMP_NONE},
    {IMG_MT_OCI_CONFIG, IMG_KIND_CONFIG, IMG_COMP_NONE},
    {IMG_MT_DOCKER_LAYER, IMG_KIND_LAYER, IMG_COMP_GZIP},
    {IMG_MT_DOCKER_FOREIGN, IMG_KIND_LAYER, IMG_COMP_GZIP},
    {IMG_MT_OCI_LAYER, IMG_KIND_LAYER, IMG_COMP_NONE},
    {IMG_MT_OCI_LAYER_GZIP, IMG_KIND_LAYER, IMG_COMP_GZIP},
    {IMG_MT_OCI_LAYER_ZSTD, IMG_KIND_LAYER, IMG_COMP_ZSTD},
    {IMG_MT_OCI_NONDIST, IMG_KIND_LAYER, IMG_COMP_NONE},
    {IMG_MT_OCI_NONDIST "+gzip", IMG_KIND_LAYER, IMG_COMP_GZIP},
    {IMG_MT_OCI_NONDIST "+zstd", IMG_KIND_LAYER, IMG_COMP_ZSTD},
    {IMG_MT_DOCKER_SCHEMA1, IMG_KIND_SCHEMA1, IMG_COMP_NONE},
    {"application/vnd.docker.distribution.manifest.v1+json", IMG_KIND_SCHEMA1, IMG_COMP_NONE},
};

enum img_mt_kind img_media_type_kind(const char *mt, enum img_compression *ret_comp)
{
	if (!mt)
		return IMG_KIND_UNKNOWN;
	/* Content-Type headers may carry parameters ("; charset=utf-8"). */
	size_t n = strcspn(mt, "; ");
	for (size_t i = 0; i < ARRAY_SIZE(media_types); i++) {
		if (strlen(media_types[i].mt) == n && !strncmp(mt, media_types[i].mt, n)) {
			if (ret_comp)
				*ret_comp = media_types[i].comp;
			return media_types[i].kind;
		}
	}
	return IMG_KIND_UNKNOWN;
}

static void descriptor_clear(struct img_descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	free(d->os);
	free(d->arch);
	free(d->variant);
	*d = (struct img_descriptor){0};
}

void img_manifest_free(struct img_manifest *m)
{
	if (!m)
		return;
	free(m->media_type);
	descriptor_clear(&m->config);
	for (size_t i = 0; i < m->n_layers; i++)
		descriptor_clear(&m->layers[i]);
	free(m->layers);
	for (size_t i = 0; i < m->n_manifests; i++)
		descriptor_clear(&m->manifests[i]);
	free(m->manifests);
	free(m);
}

static int descriptor_parse(yajl_val v, const char *what, struct img_descriptor *d,
			    struct husk_error *err)
{
	if (!YAJL_IS_OBJECT(v))
		return husk_error_set(err, EBADMSG, "%s: not an object", what);
	const char *mt = json_get_string(v, "mediaType");
	const char *digest = json_get_string(v, "digest");
	yajl_val size = json_get(v, "size");
	if (!img_digest_valid(digest))
		return husk_error_set(err, EBADMSG, "%s: digest '%s' is not a sha256 digest", what,
				      digest ? digest : "");
	if (!YAJL_IS_INTEGER(size) || size->u.number.i < 0)
		return husk_error_set(err, EBADMSG, "%s: size missing or negative", what);
	d->media_type = xstrdup(mt ? mt : "");
	d->digest = xstrdup(digest);
	d->size = size->u.number.i;
	yajl_val p = json_get(v, "platform");
	if (YAJL_IS_OBJECT(p)) {
		const char *os = json_get_string(p, "os"),
			   *arch = json_get_string(p, "architecture"),
			   *variant = json_get_string(p, "variant");
		d->os = xstrdup(os ? os : "");
		d->arch = xstrdup(arch ? arch : "");
		d->variant = xstrdup(variant ? variant : "");
	}
	return 0;
}

static int descriptor_list(yajl_val arr, const char *what, size_t max, struct img_descriptor **ret,
			   size_t *ret_n, struct husk_error *err)
{
	if (!YAJL_IS_ARRAY(arr))
		return husk_error_set(err, EBADMSG, "'%s' missing or not an array", what);
	size_t n = arr->u.array.len;
	if (n > max)
		return husk_error_set(err, EFBIG, "'%s' has %zu entries, more than %zu", what, n,
				      max);
	struct img_descriptor *v = xnew(struct img_descriptor, n ? n : 1);
	for (size_t i = 0; i < n; i++) {
		char where[64];
		snprintf(where, sizeof(where), "%s[%zu]", what, i);
		int r = descriptor_parse(arr->u.array.values[i], where, &v[i], err);
		if (r < 0) {
			for (size_t j = 0; j <= i; j++)
				descriptor_clear(&v[j]);
			free(v);
			return r;
		}
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int img_manifest_parse(const char *data, size_t len, const char *content_type,
		       struct img_manifest **ret, struct husk_error *err)
{
	if (len > IMG_MAX_MANIFEST)
		return husk_error_set(err, EFBIG, "manifest larger than %u bytes",
				      IMG_MAX_MANIFEST);
	_cleanup_json_ yajl_val root = NULL;
	int r = json_parse(data, len, "manifest", &root, err);
	if (r < 0) {
		err->code = EBADMSG;
		return -EBADMSG;
	}
	if (!YAJL_IS_OBJECT(root))
		return husk_error_set(err, EBADMSG, "manifest is not a JSON object");
	const char *mt = json_get_string(root, "mediaType");
	enum img_mt_kind kind = img_media_type_kind(mt, NULL);
	if (!mt) {
		/* OCI documents may leave mediaType out: go by the header, then
		 * by shape. */
		kind = img_media_type_kind(content_type, NULL);
		if (kind != IMG_KIND_MANIFEST && kind != IMG_KIND_INDEX)
			kind = json_get(root, "manifests") ? IMG_KIND_INDEX
			       : json_get(root, "config")  ? IMG_KIND_MANIFEST
							   : IMG_KIND_UNKNOWN;
	}
	if (kind == IMG_KIND_SCHEMA1 || json_get_int(root, "schemaVersion", 0) == 1)
		return husk_error_set(err, EBADMSG, "Docker schema 1 manifests are not supported");
	if (kind != IMG_KIND_MANIFEST && kind != IMG_KIND_INDEX)
		return husk_error_set(err, EBADMSG, "unsupported manifest media type '%s'",
				      mt	     ? mt
				      : content_type ? content_type
						     : "");
	if (json_get_int(root, "schemaVersion", 0) != 2)
		return husk_error_set(err, EBADMSG, "manifest schemaVersion is not 2");

	_cleanup_(img_manifest_freep) struct img_manifest *m = xnew(struct img_manifest, 1);
	m->kind = kind;
	m->media_type = xstrdup(mt			 ? mt
				: kind == IMG_KIND_INDEX ? IMG_MT_OCI_INDEX
							 : IMG_MT_OCI_MANIFEST);
	if (kind == IMG_KIND_INDEX) {
		r = descriptor_list(json_get(root, "manifests"), "manifests", IMG_MAX_INDEX_ENTRIES,
				    &m->manifests, &m->n_manifests, err);
		if (r < 0)
			return husk_error_prefix(err, "index");
		*ret = steal_ptr(&m);
		return 0;
	}
	r = descriptor_parse(json_get(root, "config"), "config", &m->config, err);
	if (r < 0)
		return husk_error_prefix(err, "manifest");
	if (img_media_type_kind(m->config.media_type, NULL) != IMG_KIND_CONFIG)
		return husk_error_set(err, EBADMSG,
				      "manifest: config media type '%s' is not an image config",
				      m->config.media_type);
	if (m->config.size > (int64_t)IMG_MAX_CONFIG)
		return husk_error_set(err, EFBIG, "manifest: config larger than %u bytes",
				      IMG_MAX_CONFIG);
	r = descriptor_list(json_get(root, "layers"), "layers", IMG_MAX_LAYERS, &m->layers,
			    &m->n_layers, err);
	if (r < 0)
		return husk_error_prefix(err, "manifest");
	for (size_t i = 0; i < m->n_layers; i++)
		if (img_media_type_kind(m->layers[i].media_type, NULL) != IMG_KIND_LAYER)
			return husk_error_set(err, EBADMSG,
					      "manifest: layer %zu has unsupported media type '%s'",
					      i, m->layers[i].media_type);
	*ret = steal_ptr(&m);
	return 0;
}

void img_platform_host(const char **os, const char **arch, const char **variant)
{
	static const struct {
		const char *machine, *arch, *variant;
	} map[] = {
	    {"x86_64", "amd64", ""},	{"aarch64", "arm64", "v8"}, {"armv7l", "arm", "v7"},
	    {"armv6l", "arm", "v6"},	{"i686", "386", ""},	    {"i386", "386", ""},
	    {"ppc64le", "ppc64le", ""}, {"s390x", "s390x", ""},	    {"riscv64", "riscv64", ""},
	};
	struct utsname u;
	*os = "linux";
	*arch = "amd64";
	*variant = "";
	if (uname(&u) < 0)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (streq(u.machine, map[i].machine)) {
			*arch = map[i].arch;
			*variant = map[i].variant;
		}
}

int img_manifest_select(const struct img_manifest *index, const char *os, const char *arch,
			const char *variant, const struct img_descriptor **ret,
			struct husk_error *err)
{
	const struct img_descriptor *loose = NULL;
	for (size_t i = 0; i < index->n_manifests; i++) {
		const struct img_descriptor *d = &index->manifests[i];
		enum img_mt_kind k = img_media_type_kind(d->media_type, NULL);
		if (k != IMG_KIND_MANIFEST)
			continue; /* attestations, nested indexes */
		if (!streq(d->os, os) || !streq(d->arch, arch))
			continue;
		if (isempty(variant) || streq(d->variant, variant)) {
			*ret = d;
			return 0;
		}
		/* arm64 images usually leave out v8 */
		if (isempty(d->variant) && streq(arch, "arm64") && streq(variant, "v8"))
			loose = d;
	}
	if (loose) {
		*ret = loose;
		return 0;
	}
	return husk_error_set(err, ENOENT, "no image for platform %s/%s%s%s in the index", os, arch,
			      isempty(variant) ? "" : "/", variant);
}

void img_config_free(struct img_config *c)
{
	if (!c)
		return;
	free(c->user);
	strv_free(c->env);
	strv_free(c->entrypoint);
	strv_free(c->cmd);
	free(c->working_dir);
	free(c->stop_signal);
	strv_free(c->exposed_ports);
	strv_free(c->volumes);
	strv_free(c->labels);
	free(c->os);
	free(c->architecture);
	strv_free(c->diff_ids);
	free(c);
}

static char **string_array(yajl_val v)
{
	char **out = xnew(char *, 1);
	if (!YAJL_IS_ARRAY(v))
		return out;
	for (size_t i = 0; i < v->u.array.len; i++)
		if (YAJL_IS_STRING(v->u.array.values[i]))
			out = strv_append(out, v->u.array.values[i]->u.string);
	return out;
}

static char **object_keys(yajl_val v)
{
	char **out = xnew(char *, 1);
	if (!YAJL_IS_OBJECT(v))
		return out;
	for (size_t i = 0; i < v->u.object.len; i++)
		out = strv_append(out, v->u.object.keys[i]);
	return out;
}

int img_config_parse(const char *data, size_t len, struct img_config **ret, struct husk_error *err)
{
	if (len > IMG_MAX_CONFIG)
		return husk_error_set(err, EFBIG, "image config larger than %u bytes",
				      IMG_MAX_CONFIG);
	_cleanup_json_ yajl_val root = NULL;
	int r = json_parse(data, len, "image config", &root, err);
	if (r < 0) {
		err->code = EBADMSG;
		return -EBADMSG;
	}
	if (!YAJL_IS_OBJECT(root))
		return husk_error_set(err, EBADMSG, "image config is not a JSON object");
	yajl_val rootfs = json_get(root, "rootfs");
	yajl_val diff_ids = json_get(rootfs, "diff_ids");
	if (!YAJL_IS_ARRAY(diff_ids))
		return husk_error_set(err, EBADMSG, "image config: rootfs.diff_ids missing");
	if (diff_ids->u.array.len > IMG_MAX_LAYERS)
		return husk_error_set(err, EFBIG, "image config: more than %d layers",
				      IMG_MAX_LAYERS);
	for (size_t i = 0; i < diff_ids->u.array.len; i++) {
		yajl_val d = diff_ids->u.array.values[i];
		if (!YAJL_IS_STRING(d) || !img_digest_valid(d->u.string))
			return husk_error_set(err, EBADMSG,
					      "image config: rootfs.diff_ids[%zu] is not a "
					      "sha256 digest",
					      i);
	}
	yajl_val cfg = json_get(root, "config");
	struct img_config *c = xnew(struct img_config, 1);
	const char *s;
	c->user = xstrdup((s = json_get_string(cfg, "User")) ? s : "");
	c->working_dir = xstrdup((s = json_get_string(cfg, "WorkingDir")) ? s : "");
	c->stop_signal = xstrdup((s = json_get_string(cfg, "StopSignal")) ? s : "");
	c->os = xstrdup((s = json_get_string(root, "os")) ? s : "");
	c->architecture = xstrdup((s = json_get_string(root, "architecture")) ? s : "");
	c->env = string_array(json_get(cfg, "Env"));
	c->entrypoint = string_array(json_get(cfg, "Entrypoint"));
	c->cmd = string_array(json_get(cfg, "Cmd"));
	c->exposed_ports = object_keys(json_get(cfg, "ExposedPorts"));
	c->volumes = object_keys(json_get(cfg, "Volumes"));
	c->labels = xnew(char *, 1);
	yajl_val labels = json_get(cfg, "Labels");
	if (YAJL_IS_OBJECT(labels))
		for (size_t i = 0; i < labels->u.object.len; i++) {
			yajl_val v = labels->u.object.values[i];
			c->labels = strv_append(c->labels, labels->u.object.keys[i]);
			c->labels = strv_append(c->labels, YAJL_IS_STRING(v) ? v->u.string : "");
		}
	c->diff_ids = string_array(diff_ids);
	*ret = c;
	return 0;
}

char **img_chain_ids(char *const *diff_ids)
{
	char **out = xnew(char *, 1);
	_cleanup_free_ char *prev = NULL;
	for (size_t i = 0; diff_ids && diff_ids[i]; i++) {
		char *id;
		if (!prev) {
			id = xstrdup(diff_ids[i]);
		} else {
			_cleanup_free_ char *s = xasprintf("%s %s", prev, diff_ids[i]);
			id = img_digest_of(s, strlen(s));
		}
		out = strv_append(out, id);
		free(prev);
		prev = id;
	}
	return out;
}
