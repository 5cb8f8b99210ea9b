/* Image references: parsing and normalisation of "name[:tag][@digest]" the
 * way Docker names them (short names live under docker.io/library), and
 * digest helpers. */
#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#include "image/internal.h"

#define NAME_MAX_LEN 255
#define TAG_MAX_LEN 128

void img_ref_free(struct img_ref *r)
{
	if (!r)
		return;
	free(r->domain);
	free(r->path);
	free(r->tag);
	free(r->digest);
	free(r);
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
			return false;
	return true;
}

bool img_digest_valid(const char *d)
{
	return d && startswith(d, "sha256:") && strlen(d) == 7 + 64 && is_hex(d + 7, 64);
}

char *img_digest_of(const void *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	char *s = xmalloc(7 + 2 * n + 1);
	strcpy(s, "sha256:");
	for (unsigned i = 0; i < n; i++)
		sprintf(s + 7 + 2 * i, "%02x", md[i]);
	return s;
}

/* One path component: [a-z0-9]+ runs joined by one '.', one '_', "__" or a
 * run of '-'. */
static bool component_valid(const char *s, size_t n)
{
	size_t i = 0;
	for (;;) {
		size_t run = 0;
		while (i < n && ((s[i] >= 'a' && s[i] <= 'z') || isdigit((unsigned char)s[i])))
			i++, run++;
		if (run == 0)
			return false;
		if (i == n)
			return true;
		size_t sep = i;
		if (s[i] == '.')
			i++;
		else if (s[i] == '_')
			i += (i + 1 < n && s[i + 1] == '_') ? 2 : 1;
		else
			while (i < n && s[i] == '-')
				i++;
		if (i == sep)
			return false;
	}
}

static bool domain_valid(const char *s, size_t n)
{
	if (n == 0)
		return false;
	size_t i = 0;
	if (s[0] == '[') { /* IPv6 literal */
		const char *close = memchr(s, ']', n);
		if (!close)
			return false;
		for (const char *p = s + 1; p < close; p++)
			if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
				return false;
		i = (size_t)(close - s) + 1;
	} else {
		for (; i < n && s[i] != ':'; i++)
			if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-')
				return false;
		if (i == 0 || s[0] == '-' || s[0] == '.' || s[i - 1] == '-' || s[i - 1] == '.')
			return false;
	}
	if (i == n)
		return true;
	if (s[i] != ':' || i + 1 == n)
		return false;
	for (i++; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return true;
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (n == 0 || n > TAG_MAX_LEN || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '.' && t[i] != '-')
			return false;
	return true;
}

static int bad(struct husk_error *err, const char *s, const char *why)
{
	return husk_error_set(err, EINVAL, "invalid image reference '%s': %s", s, why);
}

int img_ref_parse(const char *s, struct img_ref **ret, struct husk_error *err)
{
	if (isempty(s))
		return husk_error_set(err, EINVAL, "invalid image reference '': empty");
	size_t len = strlen(s);
	if (len == 64 && is_hex(s, 64))
		return bad(err, s, "a 64-character hex string is an image ID, not a reference");

	_cleanup_free_ char *name = NULL;
	_cleanup_free_ char *tag = NULL;
	_cleanup_free_ char *digest = NULL;
	const char *at = strchr(s, '@');
	if (at) {
		if (!img_digest_valid(at + 1))
			return bad(err, s, "digest must be sha256: and 64 lowercase hex digits");
		digest = xstrdup(at + 1);
		name = xstrndup(s, (size_t)(at - s));
	} else {
		name = xstrdup(s);
	}
	/* A tag follows the last ':' after the last '/'. */
	char *slash = strrchr(name, '/');
	char *colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_valid(colon + 1))
			return bad(err, s, "tag must be [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
		tag = xstrdup(colon + 1);
	}
	if (isempty(name))
		return bad(err, s, "empty name");

	_cleanup_free_ char *domain = NULL;
	const char *path = name;
	char *first = strchr(name, '/');
	if (first) {
		size_t n = (size_t)(first - name);
		bool is_domain = memchr(name, '.', n) || memchr(name, ':', n) ||
				 memchr(name, '[', n) || (n == 9 && !strncmp(name, "localhost", 9));
		if (is_domain) {
			if (!domain_valid(name, n))
				return bad(err, s, "invalid registry host");
			domain = xstrndup(name, n);
			path = first + 1;
		}
	}
	if (!domain)
		domain = xstrdup(IMG_DEFAULT_DOMAIN);
	if (streq(domain, "index.docker.io") || streq(domain, "registry-1.docker.io")) {
		free(domain);
		domain = xstrdup(IMG_DEFAULT_DOMAIN);
	}

	for (const char *p = path;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!component_valid(p, n))
			return bad(err, s,
				   "repository names use lowercase letters, digits and "
				   "separators '.', '_', '__', '-' between them");
		if (!e)
			break;
		p = e + 1;
	}

	struct img_ref *r = xnew(struct img_ref, 1);
	if (streq(domain, IMG_DEFAULT_DOMAIN) && !strchr(path, '/'))
		r->path = xasprintf("library/%s", path);
	else
		r->path = xstrdup(path);
	r->domain = steal_ptr(&domain);
	if (strlen(r->domain) + 1 + strlen(r->path) > NAME_MAX_LEN) {
		img_ref_free(r);
		return bad(err, s, "name longer than 255 characters");
	}
	r->tag = steal_ptr(&tag);
	r->digest = steal_ptr(&digest);
	if (!r->tag && !r->digest)
		r->tag = xstrdup("latest");
	*ret = r;
	return 0;
}

char *img_ref_name(const struct img_ref *r)
{
	return xasprintf("%s/%s", r->domain, r->path);
}

char *img_ref_tagged(const struct img_ref *r)
{
	return r->tag ? xasprintf("%s/%s:%s", r->domain, r->path, r->tag) : NULL;
}

char *img_ref_digested(const struct img_ref *r, const char *digest)
{
	return xasprintf("%s/%s@%s", r->domain, r->path, digest);
}

char *img_ref_string(const struct img_ref *r)
{
	return xasprintf("%s/%s%s%s%s%s", r->domain, r->path, r->tag ? ":" : "",
			 r->tag ? r->tag : "", r->digest ? "@" : "", r->digest ? r->digest : "");
}
