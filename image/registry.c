/* Registry client over libcurl for the OCI distribution (Docker registry v2)
 * API: endpoint choice (mirrors, location, HTTPS or plain HTTP), the bearer
 * token and basic auth flows, retries with backoff, and blob streaming. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "image/internal.h"

#define MAX_ATTEMPTS 5
#define BACKOFF_MS 250
#define MAX_ERROR_BODY (64u << 10)
#define MAX_TOKEN_BODY (1u << 20)
#define MAX_HEADER 8192

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
}
void img_curl_global_init(void)
{
	pthread_once(&curl_once, curl_init_once);
}

bool img_host_is_loopback(const char *hostport)
{
	_cleanup_free_ char *h = NULL;
	if (hostport[0] == '[') {
		const char *e = strchr(hostport, ']');
		h = e ? xstrndup(hostport + 1, (size_t)(e - hostport - 1)) : xstrdup(hostport);
	} else {
		const char *c = strchr(hostport, ':');
		h = c ? xstrndup(hostport, (size_t)(c - hostport)) : xstrdup(hostport);
	}
	if (streq(h, "localhost"))
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

static const struct img_registry_conf *find_conf(const struct img_registry_conf *regs, size_t n,
						 const char *host)
{
	for (size_t i = 0; i < n; i++)
		if (streq(regs[i].host, host))
			return &regs[i];
	return NULL;
}

static void add_endpoint(struct img_session *s, const struct img_registry_conf *regs, size_t n_regs,
			 const char *spec)
{
	/* "http://host" asks for plain HTTP, "https://host" for TLS only. */
	int scheme = 0;
	if (startswith(spec, "http://")) {
		scheme = 2;
		spec += 7;
	} else if (startswith(spec, "https://")) {
		scheme = 1;
		spec += 8;
	}
	const char *slash = strchr(spec, '/');
	_cleanup_free_ char *host = slash ? xstrndup(spec, (size_t)(slash - spec)) : xstrdup(spec);
	/* Docker Hub's API lives on another name than its references use. */
	if (streq(host, "docker.io")) {
		free(host);
		host = xstrdup("registry-1.docker.io");
	}
	const struct img_registry_conf *c = find_conf(regs, n_regs, host);
	if (!c && streq(host, "registry-1.docker.io"))
		c = find_conf(regs, n_regs, "docker.io");
	s->eps = xrealloc(s->eps, (s->n_eps + 1) * sizeof(*s->eps));
	struct img_endpoint *e = &s->eps[s->n_eps++];
	*e = (struct img_endpoint){0};
	e->prefix = xstrdup(slash ? slash + 1 : "");
	for (size_t n = strlen(e->prefix); n > 0 && e->prefix[n - 1] == '/'; n--)
		e->prefix[n - 1] = '\0';
	e->insecure = c && c->insecure;
	e->loopback = img_host_is_loopback(host);
	e->scheme = scheme ? scheme : e->insecure || e->loopback ? 0 : 1;
	e->host = steal_ptr(&host);
}

struct img_session *img_session_new(const struct img_registry_conf *regs, size_t n_regs,
				    const struct img_ref *ref, const struct img_auth *auth,
				    struct husk_error *err _unused_)
{
	img_curl_global_init();
	struct img_session *s = xnew(struct img_session, 1);
	pthread_mutex_init(&s->lock, NULL);
	s->registry = xstrdup(ref->domain);
	s->repo = xstrdup(ref->path);
	const struct img_registry_conf *c = find_conf(regs, n_regs, ref->domain);
	for (size_t i = 0; c && c->mirrors && c->mirrors[i]; i++)
		add_endpoint(s, regs, n_regs, c->mirrors[i]);
	add_endpoint(s, regs, n_regs, c && !isempty(c->location) ? c->location : ref->domain);
	if (auth) {
		if (!isempty(auth->auth)) {
			/* base64 of "user:password" */
			size_t n = strlen(auth->auth);
			_cleanup_free_ unsigned char *raw = xmalloc(n + 3);
			int m = EVP_DecodeBlock(raw, (const unsigned char *)auth->auth, (int)n);
			if (m > 0) {
				raw[m] = '\0';
				char *colon = strchr((char *)raw, ':');
				if (colon) {
					*colon = '\0';
					s->username = xstrdup((char *)raw);
					s->password = xstrdup(colon + 1);
				}
			}
		}
		if (!s->username && !isempty(auth->username)) {
			s->username = xstrdup(auth->username);
			s->password = xstrdup(auth->password ? auth->password : "");
		}
		if (!isempty(auth->identity_token))
			s->identity_token = xstrdup(auth->identity_token);
		if (!isempty(auth->registry_token))
			s->registry_token = xstrdup(auth->registry_token);
	}
	return s;
}

void img_session_free(struct img_session *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_eps; i++) {
		free(s->eps[i].host);
		free(s->eps[i].prefix);
		free(s->eps[i].token);
		free(s->eps[i].basic);
	}
	free(s->eps);
	free(s->registry);
	free(s->repo);
	free(s->username);
	free(s->password);
	free(s->identity_token);
	free(s->registry_token);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* Where a response body goes: a bounded memory buffer or a stream sink.
 * Bodies of non-2xx responses are kept apart for the error message. */
struct xfer {
	CURL *curl;
	size_t max;
	char *buf;
	size_t len, cap;
	img_sink_fn sink;
	void *opaque;
	bool delivered;
	int sink_error; /* what the sink or the size check returned */
	char *ebuf;
	size_t elen;
	char *www_auth;
	char *content_type;
	struct img_session *sess; /* its stop conditions end the transfer */
};

static void xfer_reset(struct xfer *x)
{
	free(x->buf);
	free(x->ebuf);
	free(x->www_auth);
	free(x->content_type);
	x->buf = x->ebuf = x->www_auth = x->content_type = NULL;
	x->len = x->cap = x->elen = 0;
	x->sink_error = 0;
}

static void append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 4096;
		while (c < *len + n + 1)
			c *= 2;
		*buf = xrealloc(*buf, c);
		*cap = c;
	}
	memcpy(*buf + *len, data, n);
	*len += n;
	(*buf)[*len] = '\0';
}

bool img_session_stopped(struct img_session *s)
{
	if (!s)
		return false;
	if ((s->cancel && *s->cancel) || __atomic_load_n(&s->stalled, __ATOMIC_RELAXED))
		return true;
	if (husk_cancelled(s->caller))
		return true;
	if (s->progress_timeout_ns > 0 &&
	    now_mono_ns() - __atomic_load_n(&s->progress_ns, __ATOMIC_RELAXED) >
		s->progress_timeout_ns) {
		__atomic_store_n(&s->stalled, 1, __ATOMIC_RELAXED);
		return true;
	}
	return false;
}

int img_session_stop_error(struct img_session *s, const char *what, struct husk_error *err)
{
	if (__atomic_load_n(&s->stalled, __ATOMIC_RELAXED))
		return husk_error_set(err, ETIMEDOUT,
				      "%s: no progress for %lld s (pull_progress_timeout)", what,
				      s->progress_timeout_ns / 1000000000LL);
	if (husk_cancelled(s->caller))
		return husk_error_set(err, ECANCELED, "%s: the client cancelled the pull", what);
	return husk_error_set(err, ECANCELED, "%s: cancelled", what);
}

static void progress(struct xfer *x)
{
	if (x->sess)
		__atomic_store_n(&x->sess->progress_ns, now_mono_ns(), __ATOMIC_RELAXED);
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	size_t n = size * nmemb;
	progress(x);
	long code = 0;
	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code >= 300) {
		size_t room = MAX_ERROR_BODY > x->elen ? MAX_ERROR_BODY - x->elen : 0;
		size_t ecap = x->elen + 1;
		if (room) {
			size_t m = n < room ? n : room;
			x->ebuf = xrealloc(x->ebuf, x->elen + m + 1);
			ecap = x->elen + m + 1;
			append(&x->ebuf, &x->elen, &ecap, data, m);
		}
		return n;
	}
	if (x->sink) {
		int r = x->sink(data, n, x->opaque);
		x->delivered = true;
		if (r < 0) {
			x->sink_error = r;
			return 0;
		}
		return n;
	}
	if (x->len + n > x->max) {
		x->sink_error = -EFBIG;
		return 0;
	}
	append(&x->buf, &x->len, &x->cap, data, n);
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *opaque)
{
	struct xfer *x = opaque;
	size_t n = size * nmemb;
	progress(x);
	if (n > MAX_HEADER)
		return n;
	if (n >= 5 && !strncmp(data, "HTTP/", 5)) {
		/* a new response (after a redirect or 100-continue) */
		free(x->www_auth);
		free(x->content_type);
		x->www_auth = x->content_type = NULL;
		return n;
	}
	const char *colon = memchr(data, ':', n);
	if (!colon)
		return n;
	size_t klen = (size_t)(colon - data);
	const char *v = colon + 1;
	while (v < data + n && (*v == ' ' || *v == '\t'))
		v++;
	size_t vlen = (size_t)(data + n - v);
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
		vlen--;
	if (klen == 16 && !strncasecmp(data, "WWW-Authenticate", 16)) {
		/* Prefer a Bearer challenge when there are several. */
		if (!x->www_auth || strncasecmp(v, "bearer", 6) == 0) {
			free(x->www_auth);
			x->www_auth = xstrndup(v, vlen);
		}
	} else if (klen == 12 && !strncasecmp(data, "Content-Type", 12)) {
		free(x->content_type);
		x->content_type = xstrndup(v, vlen);
	}
	return n;
}

static int on_progress(void *opaque, curl_off_t dt _unused_, curl_off_t dn _unused_,
		       curl_off_t ut _unused_, curl_off_t un _unused_)
{
	struct xfer *x = opaque;
	/* curl calls this at least once a second, also while it connects or
	 * waits for an answer: an abandoned pull closes its connection here. */
	return img_session_stopped(x->sess) ? 1 : 0;
}

struct request {
	const char *url;
	const char *accept;
	const char *bearer;
	const char *userpwd; /* basic auth "user:pass" */
	const char *post;    /* form body: POST instead of GET */
	bool verify;
};

/* One HTTP exchange. Returns the CURLcode; *ret_status the final status. */
static CURLcode perform(const struct request *rq, struct xfer *x, long *ret_status,
			char *ret_curl_msg)
{
	CURL *c = curl_easy_init();
	if (!c)
		abort();
	x->curl = c;
	struct curl_slist *h = NULL;
	_cleanup_free_ char *accept = rq->accept ? xasprintf("Accept: %s", rq->accept) : NULL;
	_cleanup_free_ char *auth =
	    rq->bearer ? xasprintf("Authorization: Bearer %s", rq->bearer) : NULL;
	if (accept)
		h = curl_slist_append(h, accept);
	if (auth)
		h = curl_slist_append(h, auth);
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 8L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 120L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "husk/" HUSK_VERSION);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, rq->verify ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, rq->verify ? 2L : 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ret_curl_msg);
	if (rq->userpwd) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(c, CURLOPT_USERPWD, rq->userpwd);
	}
	if (rq->post)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->post);
	ret_curl_msg[0] = '\0';
	CURLcode rc = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	x->curl = NULL;
	*ret_status = status;
	if (!ret_curl_msg[0])
		snprintf(ret_curl_msg, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	return rc;
}

/* "code: message" from a registry's JSON error body, or the text itself. */
static char *error_reason(const struct xfer *x)
{
	if (!x->ebuf || !x->elen)
		return xstrdup("");
	_cleanup_json_ yajl_val root = NULL;
	if (json_parse(x->ebuf, x->elen, "error", &root, NULL) == 0) {
		yajl_val errs = json_get(root, "errors");
		if (YAJL_IS_ARRAY(errs) && errs->u.array.len > 0) {
			yajl_val e = errs->u.array.values[0];
			const char *code = json_get_string(e, "code");
			const char *msg = json_get_string(e, "message");
			return xasprintf(" %s%s%s", code ? code : "", code && msg ? ": " : "",
					 msg ? msg : "");
		}
		const char *d = json_get_string(root, "details");
		if (!d)
			d = json_get_string(root, "error");
		if (d)
			return xasprintf(" %s", d);
	}
	/* a short plain-text body */
	size_t n = x->elen < 200 ? x->elen : 200;
	char *s = xasprintf(" %.*s", (int)n, x->ebuf);
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	while (*s && s[strlen(s) - 1] == ' ')
		s[strlen(s) - 1] = '\0';
	return s;
}

static int curl_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
		return ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return ETIMEDOUT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
		return EPROTO;
	case CURLE_ABORTED_BY_CALLBACK:
		return ECANCELED;
	default:
		return EAGAIN;
	}
}

static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static int status_errno(long status)
{
	if (status == 401 || status == 403)
		return EACCES;
	if (status == 404)
		return ENOENT;
	if (status == 429 || status >= 500)
		return EAGAIN;
	if (status == 400 || status == 405)
		return EINVAL;
	return EIO;
}

/* Back off between attempts, in slices so that a stopped session does not
 * wait the whole time. */
static void sleep_ms(struct img_session *s, long ms)
{
	while (ms > 0 && !img_session_stopped(s)) {
		long step = ms < 100 ? ms : 100;
		struct timespec ts = {0, step * 1000000L};
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		ms -= step;
	}
}

void img_auth_challenge_parse(const char *h, char **scheme, char **realm, char **service,
			      char **scope)
{
	*scheme = *realm = *service = *scope = NULL;
	size_t n = strcspn(h, " ");
	*scheme = xstrndup(h, n);
	const char *p = h + n;
	while (*p) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *eq = strchr(p, '=');
		if (!eq)
			break;
		_cleanup_free_ char *key = xstrndup(p, (size_t)(eq - p));
		p = eq + 1;
		char *val;
		if (*p == '"') {
			p++;
			const char *end = strchr(p, '"');
			if (!end)
				end = p + strlen(p);
			val = xstrndup(p, (size_t)(end - p));
			p = *end ? end + 1 : end;
		} else {
			size_t m = strcspn(p, ",");
			val = xstrndup(p, m);
			p += m;
		}
		char **slot = strcasecmp(key, "realm") == 0	? realm
			      : strcasecmp(key, "service") == 0 ? service
			      : strcasecmp(key, "scope") == 0	? scope
								: NULL;
		if (slot && !*slot)
			*slot = val;
		else
			free(val);
	}
}

/* Answer a 401's challenge: fetch a bearer token (anonymously, with
 * credentials or with the identity token) or remember to use basic auth. */
static int authenticate(struct img_session *s, struct img_endpoint *ep, const char *challenge,
			struct husk_error *err)
{
	_cleanup_free_ char *scheme = NULL, *realm = NULL, *service = NULL, *scope = NULL;
	img_auth_challenge_parse(challenge ? challenge : "", &scheme, &realm, &service, &scope);
	if (strcasecmp(scheme, "basic") == 0) {
		if (!s->username)
			return husk_error_set(err, EACCES,
					      "registry '%s' requires authentication and no "
					      "credentials were given",
					      ep->host);
		pthread_mutex_lock(&s->lock);
		free(ep->basic);
		ep->basic = xasprintf("%s:%s", s->username, s->password);
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	if (strcasecmp(scheme, "bearer") != 0 || isempty(realm))
		return husk_error_set(err, EACCES, "registry '%s': unsupported auth challenge '%s'",
				      ep->host, challenge ? challenge : "");
	CURL *esc = curl_easy_init();
	if (!esc)
		abort();
	_cleanup_free_ char *default_scope =
	    xasprintf("repository:%s%s%s:pull", ep->prefix, *ep->prefix ? "/" : "", s->repo);
	char *svc = curl_easy_escape(esc, service ? service : "", 0);
	char *scp = curl_easy_escape(esc, scope ? scope : default_scope, 0);
	_cleanup_free_ char *url = NULL, *post = NULL, *userpwd = NULL;
	if (s->identity_token) {
		char *tok = curl_easy_escape(esc, s->identity_token, 0);
		url = xstrdup(realm);
		post = xasprintf("grant_type=refresh_token&client_id=husk&service=%s&scope=%s"
				 "&refresh_token=%s",
				 svc, scp, tok);
		curl_free(tok);
	} else {
		url = xasprintf("%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?",
				svc, scp);
		if (s->username)
			userpwd = xasprintf("%s:%s", s->username, s->password);
	}
	curl_free(svc);
	curl_free(scp);
	curl_easy_cleanup(esc);

	struct xfer x = {.max = MAX_TOKEN_BODY, .sess = s};
	char cmsg[CURL_ERROR_SIZE];
	long status = 0;
	struct request rq = {.url = url, .userpwd = userpwd, .post = post, .verify = !ep->insecure};
	CURLcode rc = CURLE_OK;
	for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
		xfer_reset(&x);
		rc = perform(&rq, &x, &status, cmsg);
		if (rc == CURLE_OK && status < 500 && status != 429)
			break;
		if (rc != CURLE_OK && !curl_retryable(rc))
			break;
		if (img_session_stopped(s))
			break;
		sleep_ms(s, BACKOFF_MS << attempt);
	}
	int r = 0;
	if (img_session_stopped(s)) {
		_cleanup_free_ char *what = xasprintf("token server '%s'", realm);
		r = img_session_stop_error(s, what, err);
	} else if (rc != CURLE_OK) {
		r = husk_error_set(err, curl_errno(rc), "token server '%s': %s", realm, cmsg);
	} else if (status != 200) {
		_cleanup_free_ char *why = error_reason(&x);
		r = husk_error_set(err, status_errno(status), "token server '%s': %ld%s", realm,
				   status, why);
	} else {
		_cleanup_json_ yajl_val root = NULL;
		const char *tok = NULL;
		if (json_parse(x.buf ? x.buf : "", x.len, "token", &root, NULL) == 0) {
			tok = json_get_string(root, "token");
			if (isempty(tok))
				tok = json_get_string(root, "access_token");
		}
		if (isempty(tok)) {
			r = husk_error_set(err, EACCES, "token server '%s': no token in the answer",
					   realm);
		} else {
			pthread_mutex_lock(&s->lock);
			free(ep->token);
			ep->token = xstrdup(tok);
			pthread_mutex_unlock(&s->lock);
		}
	}
	xfer_reset(&x);
	return r;
}

/* GET path (after /v2/<repo>/) from endpoint ep, with scheme choice, auth
 * and retries. The body lands in x. */
static int get(struct img_session *s, struct img_endpoint *ep, const char *what, const char *path,
	       const char *accept, struct xfer *x, struct husk_error *err)
{
	bool authed = false;
	int attempt = 0;
	x->sess = s;
	for (;;) {
		if (img_session_stopped(s))
			return img_session_stop_error(s, what, err);
		pthread_mutex_lock(&s->lock);
		int scheme = ep->scheme;
		_cleanup_free_ char *token = ep->token		 ? xstrdup(ep->token)
					     : s->registry_token ? xstrdup(s->registry_token)
								 : NULL;
		_cleanup_free_ char *basic = ep->basic ? xstrdup(ep->basic) : NULL;
		pthread_mutex_unlock(&s->lock);

		_cleanup_free_ char *url =
		    xasprintf("%s://%s/v2/%s%s%s/%s", scheme == 2 ? "http" : "https", ep->host,
			      ep->prefix, *ep->prefix ? "/" : "", s->repo, path);
		struct request rq = {.url = url,
				     .accept = accept,
				     .bearer = basic ? NULL : token,
				     .userpwd = basic,
				     .verify = !ep->insecure};
		char cmsg[CURL_ERROR_SIZE];
		long status = 0;
		xfer_reset(x);
		CURLcode rc = perform(&rq, x, &status, cmsg);

		if (rc == CURLE_ABORTED_BY_CALLBACK && img_session_stopped(s))
			return img_session_stop_error(s, what, err);
		if (rc != CURLE_OK && x->sink_error)
			return husk_error_set(
			    err, -x->sink_error, "%s from '%s': %s", what, ep->host,
			    x->sink_error == -EFBIG ? "too large" : strerror(-x->sink_error));
		if (rc != CURLE_OK && scheme == 0) {
			/* Plain HTTP is allowed here; fall back when the server does not
			 * speak TLS at all (or, when insecure, on any TLS failure). */
			bool fallback = ep->insecure ? rc != CURLE_COULDNT_CONNECT &&
							   rc != CURLE_ABORTED_BY_CALLBACK
						     : rc == CURLE_SSL_CONNECT_ERROR;
			if (fallback) {
				pthread_mutex_lock(&s->lock);
				ep->scheme = 2;
				pthread_mutex_unlock(&s->lock);
				continue;
			}
		}
		if (rc != CURLE_OK) {
			if (curl_retryable(rc) && !x->delivered && ++attempt < MAX_ATTEMPTS) {
				sleep_ms(s, BACKOFF_MS << (attempt - 1));
				continue;
			}
			return husk_error_set(err, curl_errno(rc), "%s from '%s': %s", what,
					      ep->host, cmsg);
		}
		if (scheme == 0) {
			pthread_mutex_lock(&s->lock);
			ep->scheme = 1;
			pthread_mutex_unlock(&s->lock);
		}
		if (status == 401 && !authed && !s->registry_token) {
			authed = true;
			int r = authenticate(s, ep, x->www_auth, err);
			if (r < 0)
				return husk_error_prefix(err, "%s", what);
			continue;
		}
		if ((status >= 500 || status == 429) && ++attempt < MAX_ATTEMPTS) {
			sleep_ms(s, BACKOFF_MS << (attempt - 1));
			continue;
		}
		if (status < 200 || status >= 300) {
			_cleanup_free_ char *why = error_reason(x);
			return husk_error_set(err, status_errno(status), "%s from '%s': %ld%s",
					      what, ep->host, status, why);
		}
		return 0;
	}
}

int img_fetch_manifest(struct img_session *s, const char *reference, char **ret_data,
		       size_t *ret_len, char **ret_content_type, struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("manifests/%s", reference);
	_cleanup_free_ char *what = xasprintf("manifest '%s/%s%s%s'", s->registry, s->repo,
					      img_digest_valid(reference) ? "@" : ":", reference);
	_cleanup_error_ struct husk_error first = HUSK_ERROR_INIT;
	for (size_t i = 0; i < s->n_eps; i++) {
		struct xfer x = {.max = IMG_MAX_MANIFEST};
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		int r = get(s, &s->eps[i], what, path, IMG_MANIFEST_ACCEPT, &x, &e);
		if (r == 0) {
			s->cur = i;
			*ret_data = x.buf ? steal_ptr(&x.buf) : xstrdup("");
			*ret_len = x.len;
			*ret_content_type =
			    x.content_type ? steal_ptr(&x.content_type) : xstrdup("");
			xfer_reset(&x);
			return 0;
		}
		xfer_reset(&x);
		/* Report the registry's own answer when every endpoint failed:
		 * it is the last one, mirrors come first. */
		husk_error_move(&first, &e);
		if (first.code == ECANCELED || img_session_stopped(s))
			break;
	}
	return husk_error_move(err, &first);
}

int img_fetch_blob(struct img_session *s, const char *digest, size_t max, char **ret_data,
		   size_t *ret_len, struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("blobs/%s", digest);
	_cleanup_free_ char *what = xasprintf("blob '%s'", digest);
	struct xfer x = {.max = max};
	int r = get(s, &s->eps[s->cur], what, path, NULL, &x, err);
	if (r < 0) {
		xfer_reset(&x);
		return r;
	}
	_cleanup_free_ char *got = img_digest_of(x.buf ? x.buf : "", x.len);
	if (!streq(got, digest)) {
		xfer_reset(&x);
		return husk_error_set(err, EBADMSG, "%s from '%s': digest mismatch: got %s", what,
				      s->eps[s->cur].host, got);
	}
	*ret_data = x.buf ? steal_ptr(&x.buf) : xstrdup("");
	*ret_len = x.len;
	xfer_reset(&x);
	return 0;
}

int img_fetch_blob_stream(struct img_session *s, const char *digest, img_sink_fn sink, void *opaque,
			  struct husk_error *err)
{
	_cleanup_free_ char *path = xasprintf("blobs/%s", digest);
	_cleanup_free_ char *what = xasprintf("blob '%s'", digest);
	struct xfer x = {.sink = sink, .opaque = opaque};
	int r = get(s, &s->eps[s->cur], what, path, NULL, &x, err);
	xfer_reset(&x);
	return r;
}
