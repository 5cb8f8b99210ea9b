/* Unit tests for media types, manifest and index parsing, platform
 * selection, image config parsing and chain IDs. */
#include <errno.h>
#include <string.h>

#include "image/internal.h"
#include "unit.h"

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static void test_media_types(void)
{
	enum img_compression c = IMG_COMP_NONE;
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_DOCKER_MANIFEST, NULL), IMG_KIND_MANIFEST);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_MANIFEST, NULL), IMG_KIND_MANIFEST);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_DOCKER_LIST, NULL), IMG_KIND_INDEX);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_INDEX, NULL), IMG_KIND_INDEX);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_DOCKER_CONFIG, NULL), IMG_KIND_CONFIG);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_CONFIG, NULL), IMG_KIND_CONFIG);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_DOCKER_LAYER, &c), IMG_KIND_LAYER);
	CU_ASSERT_EQUAL(c, IMG_COMP_GZIP);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_LAYER_ZSTD, &c), IMG_KIND_LAYER);
	CU_ASSERT_EQUAL(c, IMG_COMP_ZSTD);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_LAYER, &c), IMG_KIND_LAYER);
	CU_ASSERT_EQUAL(c, IMG_COMP_NONE);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_LAYER_GZIP, &c), IMG_KIND_LAYER);
	CU_ASSERT_EQUAL(c, IMG_COMP_GZIP);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_DOCKER_SCHEMA1, NULL), IMG_KIND_SCHEMA1);
	/* header parameters are ignored */
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_INDEX "; charset=utf-8", NULL),
			IMG_KIND_INDEX);
	CU_ASSERT_EQUAL(img_media_type_kind("application/json", NULL), IMG_KIND_UNKNOWN);
	CU_ASSERT_EQUAL(img_media_type_kind(NULL, NULL), IMG_KIND_UNKNOWN);
	CU_ASSERT_EQUAL(img_media_type_kind(IMG_MT_OCI_MANIFEST "x", NULL), IMG_KIND_UNKNOWN);
}

static const char docker_manifest[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_DOCKER_MANIFEST "\","
    "\"config\":{\"mediaType\":\"" IMG_MT_DOCKER_CONFIG "\",\"digest\":\"" DA "\",\"size\":7},"
    "\"layers\":[{\"mediaType\":\"" IMG_MT_DOCKER_LAYER "\",\"digest\":\"" DB "\",\"size\":100},"
    "{\"mediaType\":\"" IMG_MT_OCI_LAYER_ZSTD "\",\"digest\":\"" DC "\",\"size\":5}]}";

static void test_manifest(void)
{
	struct img_manifest *m = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(
	    img_manifest_parse(docker_manifest, strlen(docker_manifest), NULL, &m, &err), 0);
	CU_ASSERT_EQUAL(m->kind, IMG_KIND_MANIFEST);
	CU_ASSERT_STRING_EQUAL(m->config.digest, DA);
	CU_ASSERT_EQUAL(m->config.size, 7);
	CU_ASSERT_EQUAL_FATAL(m->n_layers, 2);
	CU_ASSERT_STRING_EQUAL(m->layers[0].digest, DB);
	CU_ASSERT_EQUAL(m->layers[0].size, 100);
	CU_ASSERT_STRING_EQUAL(m->layers[1].media_type, IMG_MT_OCI_LAYER_ZSTD);
	img_manifest_free(m);

	/* OCI without mediaType: the header, then the shape, decide */
	const char *oci = "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"" IMG_MT_OCI_CONFIG
			  "\",\"digest\":\"" DA "\",\"size\":1},\"layers\":[]}";
	CU_ASSERT_EQUAL_FATAL(img_manifest_parse(oci, strlen(oci), NULL, &m, &err), 0);
	CU_ASSERT_EQUAL(m->kind, IMG_KIND_MANIFEST);
	CU_ASSERT_EQUAL(m->n_layers, 0);
	img_manifest_free(m);
}

static void bad_manifest(const char *text, int code, const char *why)
{
	struct img_manifest *m = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(img_manifest_parse(text, strlen(text), NULL, &m, &err), -code);
	CU_ASSERT_PTR_NULL(m);
	if (!(err.msg && strstr(err.msg, why))) {
		fprintf(stderr, "\nexpected '%s' in '%s'\n", why, err.msg ? err.msg : "");
		CU_FAIL("message");
	}
	husk_error_clear(&err);
}

static void test_manifest_errors(void)
{
	bad_manifest("not json", EBADMSG, "parse");
	bad_manifest("[]", EBADMSG, "not a JSON object");
	bad_manifest("{\"schemaVersion\":1,\"name\":\"x\"}", EBADMSG, "schema 1");
	bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"text/plain\"}", EBADMSG,
		     "unsupported manifest media type 'text/plain'");
	bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_OCI_MANIFEST
		     "\",\"config\":{\"mediaType\":\"" IMG_MT_OCI_CONFIG
		     "\",\"digest\":\"sha256:12\",\"size\":1},\"layers\":[]}",
		     EBADMSG, "not a sha256 digest");
	bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_OCI_MANIFEST
		     "\",\"config\":{\"mediaType\":\"" IMG_MT_OCI_CONFIG "\",\"digest\":\"" DA
		     "\",\"size\":-1},\"layers\":[]}",
		     EBADMSG, "size");
	bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_OCI_MANIFEST
		     "\",\"config\":{\"mediaType\":\"text/plain\",\"digest\":\"" DA
		     "\",\"size\":1},\"layers\":[]}",
		     EBADMSG, "not an image config");
	bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_OCI_MANIFEST
		     "\",\"config\":{\"mediaType\":\"" IMG_MT_OCI_CONFIG "\",\"digest\":\"" DA
		     "\",\"size\":1},\"layers\":[{\"mediaType\":\"application/x-foo\","
		     "\"digest\":\"" DB "\",\"size\":1}]}",
		     EBADMSG, "unsupported media type 'application/x-foo'");
	bad_manifest("{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_OCI_MANIFEST
		     "\",\"config\":{\"mediaType\":\"" IMG_MT_OCI_CONFIG "\",\"digest\":\"" DA
		     "\",\"size\":1}}",
		     EBADMSG, "'layers' missing");
	/* too many layers */
	size_t cap = 200 * 200 + 1024, len = 0;
	_cleanup_free_ char *big = xmalloc(cap);
	len += (size_t)snprintf(big, cap,
				"{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_OCI_MANIFEST
				"\",\"config\":{\"mediaType\":\"" IMG_MT_OCI_CONFIG
				"\",\"digest\":\"" DA "\",\"size\":1},\"layers\":[");
	for (int i = 0; i < IMG_MAX_LAYERS + 1; i++)
		len += (size_t)snprintf(big + len, cap - len,
					"%s{\"mediaType\":\"" IMG_MT_OCI_LAYER "\",\"digest\":\"" DB
					"\",\"size\":1}",
					i ? "," : "");
	snprintf(big + len, cap - len, "]}");
	bad_manifest(big, EFBIG, "more than 128");
}

static const char index_json[] =
    "{\"schemaVersion\":2,\"mediaType\":\"" IMG_MT_OCI_INDEX "\",\"manifests\":["
    "{\"mediaType\":\"" IMG_MT_OCI_MANIFEST "\",\"digest\":\"" DA "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}},"
    "{\"mediaType\":\"" IMG_MT_OCI_MANIFEST "\",\"digest\":\"" DB "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}},"
    "{\"mediaType\":\"" IMG_MT_OCI_MANIFEST "\",\"digest\":\"" DC "\",\"size\":1,"
    "\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}}]}";

static void test_index_select(void)
{
	struct img_manifest *m = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(img_manifest_parse(index_json, strlen(index_json), NULL, &m, &err),
			      0);
	CU_ASSERT_EQUAL(m->kind, IMG_KIND_INDEX);
	CU_ASSERT_EQUAL(m->n_manifests, 3);
	const struct img_descriptor *d = NULL;
	CU_ASSERT_EQUAL(img_manifest_select(m, "linux", "amd64", "", &d, &err), 0);
	CU_ASSERT_STRING_EQUAL(d->digest, DC);
	CU_ASSERT_EQUAL(img_manifest_select(m, "linux", "arm", "v7", &d, &err), 0);
	CU_ASSERT_STRING_EQUAL(d->digest, DA);
	/* arm64 entries usually omit v8 */
	CU_ASSERT_EQUAL(img_manifest_select(m, "linux", "arm64", "v8", &d, &err), 0);
	CU_ASSERT_STRING_EQUAL(d->digest, DB);
	CU_ASSERT_EQUAL(img_manifest_select(m, "linux", "arm", "v6", &d, &err), -ENOENT);
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, "linux/arm/v6"));
	CU_ASSERT_EQUAL(img_manifest_select(m, "windows", "amd64", "", &d, &err), -ENOENT);
	husk_error_clear(&err);
	img_manifest_free(m);

	const char *os, *arch, *variant;
	img_platform_host(&os, &arch, &variant);
	CU_ASSERT_STRING_EQUAL(os, "linux");
	CU_ASSERT_PTR_NOT_NULL(arch);
}

static void test_config(void)
{
	const char *text =
	    "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"1002:1002\","
	    "\"Env\":[\"PATH=/bin\",\"A=b\"],\"Entrypoint\":[\"/bin/sh\",\"-c\"],"
	    "\"Cmd\":[\"echo hi\"],\"WorkingDir\":\"/w\",\"StopSignal\":\"SIGINT\","
	    "\"ExposedPorts\":{\"80/tcp\":{},\"53/udp\":{}},\"Volumes\":{\"/data\":{}},"
	    "\"Labels\":{\"k\":\"v\"}},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" DA
	    "\",\"" DB "\"]}}";
	struct img_config *c = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(img_config_parse(text, strlen(text), &c, &err), 0);
	CU_ASSERT_STRING_EQUAL(c->user, "1002:1002");
	CU_ASSERT_EQUAL(strv_length(c->env), 2);
	CU_ASSERT_STRING_EQUAL(c->env[1], "A=b");
	CU_ASSERT_STRING_EQUAL(c->entrypoint[0], "/bin/sh");
	CU_ASSERT_STRING_EQUAL(c->cmd[0], "echo hi");
	CU_ASSERT_STRING_EQUAL(c->working_dir, "/w");
	CU_ASSERT_STRING_EQUAL(c->stop_signal, "SIGINT");
	CU_ASSERT_EQUAL(strv_length(c->exposed_ports), 2);
	CU_ASSERT_STRING_EQUAL(c->volumes[0], "/data");
	CU_ASSERT_STRING_EQUAL(c->labels[0], "k");
	CU_ASSERT_STRING_EQUAL(c->labels[1], "v");
	CU_ASSERT_EQUAL(strv_length(c->diff_ids), 2);
	CU_ASSERT_STRING_EQUAL(c->architecture, "amd64");
	img_config_free(c);

	/* the minimum: empty fields are "" and empty vectors */
	text = "{\"rootfs\":{\"diff_ids\":[]}}";
	CU_ASSERT_EQUAL_FATAL(img_config_parse(text, strlen(text), &c, &err), 0);
	CU_ASSERT_STRING_EQUAL(c->user, "");
	CU_ASSERT_PTR_NOT_NULL(c->cmd);
	CU_ASSERT_PTR_NULL(c->cmd[0]);
	img_config_free(c);

	text = "{\"config\":{}}";
	CU_ASSERT_EQUAL(img_config_parse(text, strlen(text), &c, &err), -EBADMSG);
	text = "{\"rootfs\":{\"diff_ids\":[\"md5:1\"]}}";
	CU_ASSERT_EQUAL(img_config_parse(text, strlen(text), &c, &err), -EBADMSG);
	husk_error_clear(&err);
}

static void test_chain_ids(void)
{
	char *diff[] = {DA, DB, DC, NULL};
	_cleanup_strv_ char **chain = img_chain_ids(diff);
	CU_ASSERT_EQUAL_FATAL(strv_length(chain), 3);
	CU_ASSERT_STRING_EQUAL(chain[0], DA);
	_cleanup_free_ char *s1 = xasprintf("%s %s", DA, DB);
	_cleanup_free_ char *c1 = img_digest_of(s1, strlen(s1));
	CU_ASSERT_STRING_EQUAL(chain[1], c1);
	_cleanup_free_ char *s2 = xasprintf("%s %s", c1, DC);
	_cleanup_free_ char *c2 = img_digest_of(s2, strlen(s2));
	CU_ASSERT_STRING_EQUAL(chain[2], c2);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"media_types", test_media_types},
	    {"manifest", test_manifest},
	    {"manifest_errors", test_manifest_errors},
	    {"index_select", test_index_select},
	    {"config", test_config},
	    {"chain_ids", test_chain_ids},
	};
	return unit_run("image_manifest", tests, ARRAY_SIZE(tests));
}
