/* Unit tests for image references: normalisation, tag and digest forms,
 * registry hosts with ports, and the errors for malformed names. */
#include <errno.h>
#include <string.h>

#include "image/internal.h"
#include "unit.h"

#define D64 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check(const char *in, const char *domain, const char *path, const char *tag,
		  const char *digest)
{
	struct img_ref *r = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	int ret = img_ref_parse(in, &r, &err);
	CU_ASSERT_EQUAL_FATAL(ret, 0);
	if (ret < 0) {
		fprintf(stderr, "%s: %s\n", in, err.msg);
		husk_error_clear(&err);
		return;
	}
	CU_ASSERT_STRING_EQUAL(r->domain, domain);
	CU_ASSERT_STRING_EQUAL(r->path, path);
	CU_ASSERT_STRING_EQUAL(r->tag ? r->tag : "(null)", tag ? tag : "(null)");
	CU_ASSERT_STRING_EQUAL(r->digest ? r->digest : "(null)", digest ? digest : "(null)");
	img_ref_free(r);
}

static void test_normalise(void)
{
	check("busybox", "docker.io", "library/busybox", "latest", NULL);
	check("busybox:1.36", "docker.io", "library/busybox", "1.36", NULL);
	check("library/busybox", "docker.io", "library/busybox", "latest", NULL);
	check("docker.io/busybox", "docker.io", "library/busybox", "latest", NULL);
	check("index.docker.io/library/busybox", "docker.io", "library/busybox", "latest", NULL);
	check("someone/app", "docker.io", "someone/app", "latest", NULL);
	check("registry.k8s.io/pause:3.10", "registry.k8s.io", "pause", "3.10", NULL);
	check("localhost/app", "localhost", "app", "latest", NULL);
	check("localhost:5000/a/b/c:v1", "localhost:5000", "a/b/c", "v1", NULL);
	check("127.0.0.1:5000/test/busybox", "127.0.0.1:5000", "test/busybox", "latest", NULL);
	check("[::1]:5000/x", "[::1]:5000", "x", "latest", NULL);
	check("quay.io/a-b/c_d.e__f:T_ag.1-2", "quay.io", "a-b/c_d.e__f", "T_ag.1-2", NULL);
	check("busybox@" D64, "docker.io", "library/busybox", NULL, D64);
	check("h:1/x:tag@" D64, "h:1", "x", "tag", D64);
}

static void check_bad(const char *in, const char *why)
{
	struct img_ref *r = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(img_ref_parse(in, &r, &err), -EINVAL);
	CU_ASSERT_EQUAL(err.code, EINVAL);
	CU_ASSERT_PTR_NULL(r);
	_cleanup_free_ char *quoted = xasprintf("'%s'", in);
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, quoted));
	if (why && !(err.msg && strstr(err.msg, why)))
		CU_FAIL(err.msg);
	husk_error_clear(&err);
}

static void test_invalid(void)
{
	check_bad("", "empty");
	check_bad("Busybox", "lowercase");
	check_bad("busybox:", "tag");
	check_bad("busybox:a:b", NULL);
	check_bad("busybox:-x", "tag");
	check_bad("a//b", NULL);
	check_bad("a/b/", NULL);
	check_bad("-a", NULL);
	check_bad("a..b", NULL);
	check_bad("a@sha256:123", "digest");
	check_bad("a@md5:0123456789abcdef0123456789abcdef", "digest");
	check_bad("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "image ID");
	check_bad("host:port/x", "registry host");
	check_bad("a b", NULL);
}

static void test_strings(void)
{
	struct img_ref *r = NULL;
	CU_ASSERT_EQUAL_FATAL(img_ref_parse("busybox:1@" D64, &r, NULL), 0);
	_cleanup_free_ char *name = img_ref_name(r);
	_cleanup_free_ char *tagged = img_ref_tagged(r);
	_cleanup_free_ char *dig = img_ref_digested(r, r->digest);
	_cleanup_free_ char *full = img_ref_string(r);
	CU_ASSERT_STRING_EQUAL(name, "docker.io/library/busybox");
	CU_ASSERT_STRING_EQUAL(tagged, "docker.io/library/busybox:1");
	CU_ASSERT_STRING_EQUAL(dig, "docker.io/library/busybox@" D64);
	CU_ASSERT_STRING_EQUAL(full, "docker.io/library/busybox:1@" D64);
	img_ref_free(r);
}

static void test_digest(void)
{
	CU_ASSERT_TRUE(img_digest_valid(D64));
	CU_ASSERT_FALSE(img_digest_valid("sha256:0123"));
	CU_ASSERT_FALSE(img_digest_valid(NULL));
	CU_ASSERT_FALSE(img_digest_valid(
	    "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"));
	_cleanup_free_ char *d = img_digest_of("", 0);
	CU_ASSERT_STRING_EQUAL(
	    d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_loopback(void)
{
	CU_ASSERT_TRUE(img_host_is_loopback("localhost"));
	CU_ASSERT_TRUE(img_host_is_loopback("localhost:5000"));
	CU_ASSERT_TRUE(img_host_is_loopback("127.0.0.1:5000"));
	CU_ASSERT_TRUE(img_host_is_loopback("127.200.1.9"));
	CU_ASSERT_TRUE(img_host_is_loopback("[::1]:5000"));
	CU_ASSERT_FALSE(img_host_is_loopback("128.0.0.1"));
	CU_ASSERT_FALSE(img_host_is_loopback("docker.io"));
	CU_ASSERT_FALSE(img_host_is_loopback("localhost.example.com"));
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"normalise", test_normalise}, {"invalid", test_invalid},	{"strings", test_strings},
	    {"digest", test_digest},	   {"loopback", test_loopback},
	};
	return unit_run("image_ref", tests, ARRAY_SIZE(tests));
}
