/* Manifests and indexes as a registry serves them (img_manifest_parse),
 * with the platform choice made on an index. The first input byte picks
 * the Content-Type header the registry sent along. */
#include "image/internal.h"
#include "tests/fuzz/fuzz.h"

static const char *const content_types[] = {
    NULL,
    IMG_MT_OCI_MANIFEST,
    IMG_MT_OCI_INDEX,
    IMG_MT_DOCKER_MANIFEST,
    IMG_MT_DOCKER_LIST,
    IMG_MT_DOCKER_SCHEMA1,
    "application/json; charset=utf-8",
    "",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel = fuzz_byte(&data, &size);
	const char *ct = content_types[sel % ARRAY_SIZE(content_types)];
	_cleanup_(img_manifest_freep) struct img_manifest *m = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	if (img_manifest_parse((const char *)data, size, ct, &m, &err) < 0) {
		FUZZ_CHECK(err.msg && (err.code == EBADMSG || err.code == EFBIG));
		return 0;
	}
	FUZZ_CHECK(m->media_type);
	if (m->kind == IMG_KIND_INDEX) {
		FUZZ_CHECK(m->n_manifests <= IMG_MAX_INDEX_ENTRIES);
		const struct img_descriptor *d = NULL;
		static const char *const platforms[][3] = {
		    {"linux", "amd64", ""}, {"linux", "arm64", "v8"}, {"linux", "arm", "v7"}};
		for (size_t i = 0; i < ARRAY_SIZE(platforms); i++) {
			if (img_manifest_select(m, platforms[i][0], platforms[i][1],
						platforms[i][2], &d, &err) == 0)
				FUZZ_CHECK(img_digest_valid(d->digest));
			husk_error_clear(&err);
		}
		return 0;
	}
	FUZZ_CHECK(m->kind == IMG_KIND_MANIFEST);
	FUZZ_CHECK(img_digest_valid(m->config.digest) && m->config.size >= 0);
	FUZZ_CHECK(m->n_layers <= IMG_MAX_LAYERS);
	for (size_t i = 0; i < m->n_layers; i++) {
		enum img_compression comp = IMG_COMP_NONE;
		FUZZ_CHECK(img_media_type_kind(m->layers[i].media_type, &comp) == IMG_KIND_LAYER);
		FUZZ_CHECK(img_digest_valid(m->layers[i].digest) && m->layers[i].size >= 0);
	}
	return 0;
}
