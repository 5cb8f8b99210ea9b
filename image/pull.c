/* Pulling an image: resolve the reference to a manifest for this platform,
 * fetch the config, then stream several layers at once through digest
 * check, decompression and unpack into temporary directories that are
 * renamed into place, and commit the image by writing the ref index. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/fs.h"
#include "common/json.h"
#include "image/internal.h"

#define LAYER_ATTEMPTS 3
#define PIPE_BUF_SIZE (1 << 20)

struct pull {
	struct img_store *s;
	struct img_session *sess;
	const struct img_manifest *m;
	char **diff_ids;
	char **chain_ids;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when a layer is in place or one failed */
	size_t next;
	bool *done; /* layer i is in place */
	bool failed;
	struct husk_error err;
	volatile int cancel;
};

/* The download side of one layer: hashes what it receives and passes it to
 * the unpacker through a socket. */
struct download {
	struct pull *p;
	const struct img_descriptor *d;
	int fd;
	EVP_MD_CTX *md;
	uint64_t got;
	int ret;
	struct husk_error err;
};

static int download_sink(const void *data, size_t len, void *opaque)
{
	struct download *dl = opaque;
	dl->got += len;
	mx_inc(&dl->p->s->stats.bytes, len);
	if (dl->got > (uint64_t)dl->d->size)
		return -EFBIG;
	EVP_DigestUpdate(dl->md, data, len);
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(dl->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *download_thread(void *opaque)
{
	struct download *dl = opaque;
	dl->ret = img_fetch_blob_stream(dl->p->sess, dl->d->digest, download_sink, dl, &dl->err);
	/* EOF for the unpacker */
	shutdown(dl->fd, SHUT_WR);
	return NULL;
}

static bool retryable(int code)
{
	return code == EAGAIN || code == ECONNREFUSED || code == ETIMEDOUT || code == ECONNRESET;
}

/* Fetch and unpack layer i into dir (an empty directory); *ret_links gets
 * the hard links to files of earlier layers. */
static int fetch_unpack(struct pull *p, size_t i, const char *dir, char ***ret_links,
			struct husk_error *err)
{
	const struct img_descriptor *d = &p->m->layers[i];
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return husk_error_errno(err, errno, "socketpair");
	int sz = PIPE_BUF_SIZE;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	struct download dl = {.p = p, .d = d, .fd = sv[0], .md = EVP_MD_CTX_new()};
	if (!dl.md)
		abort();
	EVP_DigestInit_ex(dl.md, EVP_sha256(), NULL);
	pthread_t t;
	int r = pthread_create(&t, NULL, download_thread, &dl);
	if (r != 0) {
		close(sv[0]);
		close(sv[1]);
		EVP_MD_CTX_free(dl.md);
		return husk_error_errno(err, r, "start download thread");
	}
	_cleanup_free_ char *diff_id = NULL;
	uint64_t size = 0;
	_cleanup_error_ struct husk_error uerr = HUSK_ERROR_INIT;
	int ur = img_unpack(sv[1], dir, p->s->max_layer_size, ret_links, &diff_id, &size, &uerr);
	/* Closing our end makes a download still sending fail with EPIPE. */
	close(sv[1]);
	pthread_join(t, NULL);
	close(sv[0]);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(dl.md, md, &n);
	EVP_MD_CTX_free(dl.md);

	if (dl.ret < 0 && !(ur < 0 && (dl.err.code == EPIPE || dl.err.code == ECONNRESET))) {
		r = husk_error_move(err, &dl.err);
		if (r == -EFBIG)
			husk_error_set(err, EBADMSG,
				       "layer %s: more data than the %lld bytes "
				       "the manifest announces",
				       d->digest, (long long)d->size);
		return -err->code;
	}
	husk_error_clear(&dl.err);
	char got[7 + 2 * EVP_MAX_MD_SIZE + 1] = "sha256:";
	for (unsigned k = 0; k < n; k++)
		sprintf(got + 7 + 2 * k, "%02x", md[k]);
	bool match = streq(got, d->digest) && dl.got == (uint64_t)d->size;
	/* A blob received whole but wrong explains whatever the unpack said. */
	if (!match && (ur == 0 || dl.ret == 0))
		return husk_error_set(err, EBADMSG,
				      "layer %s: digest mismatch: received %llu bytes with "
				      "digest %s",
				      d->digest, (unsigned long long)dl.got, got);
	if (ur < 0) {
		husk_error_move(err, &uerr);
		return husk_error_prefix(err, "layer %s", d->digest);
	}
	if (!streq(diff_id, p->diff_ids[i]))
		return husk_error_set(err, EBADMSG,
				      "layer %s: uncompressed digest %s does not match the "
				      "config's diff_id %s",
				      d->digest, diff_id, p->diff_ids[i]);
	return 0;
}

static int write_layer_meta(const char *dir, struct pull *p, size_t i, struct husk_error *err)
{
	_cleanup_gen_ yajl_gen g = json_gen_new(true);
	yajl_gen_map_open(g);
	json_kv_str(g, "chain_id", p->chain_ids[i]);
	json_kv_str(g, "diff_id", p->diff_ids[i]);
	json_kv_str(g, "digest", p->m->layers[i].digest);
	json_kv_str(g, "media_type", p->m->layers[i].media_type);
	json_kv_int(g, "size", p->m->layers[i].size);
	yajl_gen_map_close(g);
	_cleanup_free_ char *text = json_gen_steal(g);
	_cleanup_free_ char *path = xasprintf("%s/layer.json", dir);
	return fs_write_atomic(path, text, strlen(text), 0644, err);
}

/* Hard links of layer i to files below it: wait until layers 0..i-1 are in
 * place (each is being pulled by a worker that waits only on layers below
 * it, so this ends), then link. */
static int link_to_lowers(struct pull *p, size_t i, const char *diff, char *const *links,
			  struct husk_error *err)
{
	pthread_mutex_lock(&p->lock);
	for (;;) {
		size_t j = 0;
		while (j < i && p->done[j])
			j++;
		if (j == i || p->failed)
			break;
		pthread_cond_wait(&p->cond, &p->lock);
	}
	bool failed = p->failed;
	pthread_mutex_unlock(&p->lock);
	if (failed)
		return husk_error_set(err, ECANCELED, "layer %s: canceled", p->m->layers[i].digest);
	_cleanup_strv_ char **lowers = xnew(char *, 1);
	for (size_t j = i; j-- > 0;) {
		_cleanup_free_ char *l = img_store_layer_path(p->s, p->chain_ids[j]);
		_cleanup_free_ char *d = xasprintf("%s/diff", l);
		lowers = strv_append(lowers, d);
	}
	int r = img_unpack_links(diff, links, lowers, err);
	if (r < 0)
		return husk_error_prefix(err, "layer %s", p->m->layers[i].digest);
	return 0;
}

static int pull_layer(struct pull *p, size_t i, struct husk_error *err)
{
	struct img_store *s = p->s;
	const char *chain = p->chain_ids[i];
	_cleanup_free_ char *final = img_store_layer_path(s, chain);
	/* One download per layer, whoever asks: later pulls wait here and
	 * then find the layer in place. */
	int r = img_store_claim_session(s, chain, p->sess, err);
	if (r < 0)
		return r;
	if (fs_exists(final))
		goto out;
	for (int attempt = 1;; attempt++) {
		_cleanup_free_ char *tmp = xasprintf("%s/layer-XXXXXX", s->tmp);
		if (!mkdtemp(tmp)) {
			r = husk_error_errno(err, errno, "create '%s'", tmp);
			goto out;
		}
		_cleanup_free_ char *diff = xasprintf("%s/diff", tmp);
		if (mkdir(diff, 0755) < 0) {
			r = husk_error_errno(err, errno, "create '%s'", diff);
			fs_rm_rf(tmp, NULL);
			goto out;
		}
		_cleanup_strv_ char **links = NULL;
		r = fetch_unpack(p, i, diff, &links, err);
		if (r == 0 && links && links[0])
			r = link_to_lowers(p, i, diff, links, err);
		if (r == 0)
			r = write_layer_meta(tmp, p, i, err);
		if (r == 0 && rename(tmp, final) < 0)
			r = husk_error_errno(err, errno, "rename '%s' to '%s'", tmp, final);
		if (r == 0)
			break;
		fs_rm_rf(tmp, NULL);
		if (!retryable(err->code) || attempt >= LAYER_ATTEMPTS ||
		    img_session_stopped(p->sess))
			goto out;
		husk_error_clear(err);
		for (int k = 0; k < 5 * attempt && !img_session_stopped(p->sess); k++) {
			struct timespec ts = {0, 100000000L};
			nanosleep(&ts, NULL);
		}
	}
out:
	img_store_release(s, chain);
	return r;
}

static void *layer_worker(void *opaque)
{
	struct pull *p = opaque;
	for (;;) {
		pthread_mutex_lock(&p->lock);
		if (p->failed || p->next >= p->m->n_layers) {
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		size_t i = p->next++;
		pthread_mutex_unlock(&p->lock);
		_cleanup_error_ struct husk_error e = HUSK_ERROR_INIT;
		if (pull_layer(p, i, &e) == 0) {
			pthread_mutex_lock(&p->lock);
			p->done[i] = true;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
		} else {
			pthread_mutex_lock(&p->lock);
			/* The first real failure wins over the cancellations it causes. */
			if (!p->failed || (p->err.code == ECANCELED && e.code != ECANCELED)) {
				p->failed = true;
				husk_error_move(&p->err, &e);
			}
			p->cancel = 1;
			pthread_cond_broadcast(&p->cond);
			pthread_mutex_unlock(&p->lock);
		}
	}
}

static int pull_layers(struct pull *p, struct husk_error *err)
{
	size_t n = p->m->n_layers;
	size_t workers = (size_t)p->s->max_downloads < n ? (size_t)p->s->max_downloads : n;
	pthread_t t[16];
	size_t started = 0;
	for (; started < workers; started++)
		if (pthread_create(&t[started], NULL, layer_worker, p) != 0)
			break;
	if (started == 0)
		layer_worker(p);
	for (size_t i = 0; i < started; i++)
		pthread_join(t[i], NULL);
	if (p->failed)
		return husk_error_move(err, &p->err);
	return 0;
}

/* Store a small blob (manifest, index, config) under its digest. */
static int store_blob(struct img_store *s, struct img_session *sess, const char *digest,
		      const char *data, size_t len, struct husk_error *err)
{
	_cleanup_free_ char *path = img_store_blob_path(s, digest);
	_cleanup_free_ char *key = xasprintf("blob:%s", digest);
	/* Two pulls of one image would share the temporary file name. */
	int r = img_store_claim_session(s, key, sess, err);
	if (r < 0)
		return r;
	r = fs_exists(path) ? 0 : fs_write_atomic(path, data, len, 0644, err);
	img_store_release(s, key);
	return r;
}

static int fetch_config(struct img_store *s, struct img_session *sess, const char *digest,
			char **ret, size_t *ret_len, struct husk_error *err)
{
	_cleanup_free_ char *path = img_store_blob_path(s, digest);
	_cleanup_free_ char *key = xasprintf("blob:%s", digest);
	int r = img_store_claim_session(s, key, sess, err);
	if (r < 0)
		return r;
	if (fs_exists(path)) {
		r = fs_read_file(path, IMG_MAX_CONFIG, ret, ret_len, err);
	} else {
		_cleanup_free_ char *data = NULL;
		size_t len = 0;
		r = img_fetch_blob(sess, digest, IMG_MAX_CONFIG, &data, &len, err);
		if (r == 0)
			mx_inc(&s->stats.bytes, len);
		if (r == 0)
			r = fs_write_atomic(path, data, len, 0644, err);
		if (r == 0) {
			*ret = steal_ptr(&data);
			*ret_len = len;
		}
	}
	img_store_release(s, key);
	return r;
}

/* Record the image and its refs; writing the index commits it. */
static int register_image(struct img_store *s, struct img_record *rec, char **refs,
			  struct husk_error *err)
{
	pthread_mutex_lock(&s->lock);
	int r = 0;
	/* Remember what the refs pointed to, to undo on failure. (Before the
	 * first goto: the cleanup at out must see an initialised vector.) */
	size_t n_old = s->n_refs;
	_cleanup_strv_ char **old_ids = xnew(char *, 1);
	bool fresh = !img_store_record(s, rec->id);
	if (fresh) {
		r = img_store_write_record(s, rec, err);
		if (r < 0)
			goto out;
	}
	for (size_t i = 0; refs[i]; i++) {
		bool found = false;
		for (size_t j = 0; j < s->n_refs; j++)
			if (streq(s->refs[j].ref, refs[i])) {
				old_ids = strv_append(old_ids, s->refs[j].id);
				free(s->refs[j].id);
				s->refs[j].id = xstrdup(rec->id);
				found = true;
			}
		if (!found) {
			old_ids = strv_append(old_ids, "");
			s->refs = xrealloc(s->refs, (s->n_refs + 1) * sizeof(*s->refs));
			s->refs[s->n_refs].ref = xstrdup(refs[i]);
			s->refs[s->n_refs].id = xstrdup(rec->id);
			s->n_refs++;
		}
	}
	r = img_store_write_index(s, err);
	if (r < 0) {
		for (size_t i = 0; refs[i]; i++)
			for (size_t j = 0; j < s->n_refs; j++)
				if (streq(s->refs[j].ref, refs[i]) && *old_ids[i]) {
					free(s->refs[j].id);
					s->refs[j].id = xstrdup(old_ids[i]);
				}
		for (size_t j = n_old; j < s->n_refs; j++) {
			free(s->refs[j].ref);
			free(s->refs[j].id);
		}
		s->n_refs = n_old;
		if (fresh) {
			_cleanup_free_ char *p =
			    xasprintf("%s/%s.json", s->images, img_digest_hex(rec->id));
			unlink(p);
		}
		goto out;
	}
	if (fresh) {
		s->recs = xrealloc(s->recs, (s->n_recs + 1) * sizeof(*s->recs));
		s->recs[s->n_recs++] = rec;
		rec = NULL;
	}
	/* An image that lost its last ref to this pull is gone for good. */
	for (size_t i = s->n_recs; i-- > 0;) {
		struct img_record *o = s->recs[i];
		bool named = false;
		for (size_t j = 0; j < s->n_refs && !named; j++)
			named = streq(s->refs[j].id, o->id);
		if (named || img_store_user_of(s, o->id))
			continue;
		_cleanup_free_ char *p = xasprintf("%s/%s.json", s->images, img_digest_hex(o->id));
		unlink(p);
		_cleanup_strv_ char **chains = steal_ptr(&o->chain_ids);
		_cleanup_strv_ char **blobs = steal_ptr(&o->blobs);
		o->chain_ids = xnew(char *, 1);
		o->blobs = xnew(char *, 1);
		memmove(&s->recs[i], &s->recs[i + 1], (s->n_recs - i - 1) * sizeof(*s->recs));
		s->n_recs--;
		img_record_free(o);
		img_store_gc(s, chains, blobs);
	}
out:
	pthread_mutex_unlock(&s->lock);
	img_record_free(rec);
	return r;
}

static int resolve(struct img_session *sess, const struct img_ref *ref, char **ret_top,
		   struct img_manifest **ret_m, char **ret_mdigest, char ***ret_blobs,
		   struct img_store *s, struct husk_error *err)
{
	const char *reference = ref->digest ? ref->digest : ref->tag;
	_cleanup_free_ char *data = NULL, *ctype = NULL;
	size_t len = 0;
	int r = img_fetch_manifest(sess, reference, &data, &len, &ctype, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *top = img_digest_of(data, len);
	if (ref->digest && !streq(top, ref->digest))
		return husk_error_set(err, EBADMSG, "manifest '%s': digest mismatch: got %s",
				      ref->digest, top);
	_cleanup_(img_manifest_freep) struct img_manifest *m = NULL;
	r = img_manifest_parse(data, len, ctype, &m, err);
	if (r < 0)
		return husk_error_prefix(err, "manifest '%s'", reference);
	_cleanup_strv_ char **blobs = xnew(char *, 1);
	blobs = strv_append(blobs, top);
	r = store_blob(s, sess, top, data, len, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *mdigest = xstrdup(top);
	if (m->kind == IMG_KIND_INDEX) {
		const char *os, *arch, *variant;
		img_platform_host(&os, &arch, &variant);
		const struct img_descriptor *d;
		r = img_manifest_select(m, os, arch, variant, &d, err);
		if (r < 0)
			return husk_error_prefix(err, "index '%s'", reference);
		free(mdigest);
		mdigest = xstrdup(d->digest);
		free(data);
		free(ctype);
		data = ctype = NULL;
		r = img_fetch_manifest(sess, mdigest, &data, &len, &ctype, err);
		if (r < 0)
			return r;
		_cleanup_free_ char *got = img_digest_of(data, len);
		if (!streq(got, mdigest))
			return husk_error_set(
			    err, EBADMSG, "manifest '%s': digest mismatch: got %s", mdigest, got);
		img_manifest_free(m);
		m = NULL;
		r = img_manifest_parse(data, len, ctype, &m, err);
		if (r < 0)
			return husk_error_prefix(err, "manifest '%s'", mdigest);
		if (m->kind != IMG_KIND_MANIFEST)
			return husk_error_set(err, EBADMSG, "manifest '%s': nested index", mdigest);
		r = store_blob(s, sess, mdigest, data, len, err);
		if (r < 0)
			return r;
		blobs = strv_append(blobs, mdigest);
	}
	*ret_top = steal_ptr(&top);
	*ret_m = steal_ptr(&m);
	*ret_mdigest = steal_ptr(&mdigest);
	*ret_blobs = steal_ptr(&blobs);
	return 0;
}

void img_pull_stats_get(struct img_store *s, struct img_pull_stats *ret)
{
	ret->pulls = mx_get(&s->stats.pulls);
	ret->failures = mx_get(&s->stats.failures);
	ret->bytes = mx_get(&s->stats.bytes);
	mx_hist_snapshot(&s->stats.duration, &ret->duration);
}

static int pull_image(struct img_store *s, const char *name, const struct img_auth *auth,
		      const struct husk_cancel *cancel, char **ret_id, struct husk_error *err);

int img_pull(struct img_store *s, const char *name, const struct img_auth *auth,
	     const struct husk_cancel *cancel, char **ret_id, struct husk_error *err)
{
	long long t0 = now_mono_ns();
	int r = pull_image(s, name, auth, cancel, ret_id, err);
	mx_hist_observe_ns(&s->stats.duration, now_mono_ns() - t0);
	mx_inc(&s->stats.pulls, 1);
	if (r < 0)
		mx_inc(&s->stats.failures, 1);
	return r;
}

static int pull_image(struct img_store *s, const char *name, const struct img_auth *auth,
		      const struct husk_cancel *cancel, char **ret_id, struct husk_error *err)
{
	_cleanup_(img_ref_freep) struct img_ref *ref = NULL;
	int r = img_ref_parse(name, &ref, err);
	if (r < 0)
		return r;
	_cleanup_(img_session_freep) struct img_session *sess =
	    img_session_new(s->regs, s->n_regs, ref, auth, err);
	struct pull p = {.s = s, .sess = sess};
	sess->cancel = &p.cancel;
	sess->caller = cancel;
	sess->progress_timeout_ns = (long long)s->progress_timeout_s * 1000000000LL;
	sess->progress_ns = now_mono_ns();
	pthread_mutex_init(&p.lock, NULL);
	pthread_cond_init(&p.cond, NULL);

	_cleanup_free_ char *top = NULL, *mdigest = NULL, *cfg = NULL;
	_cleanup_(img_manifest_freep) struct img_manifest *m = NULL;
	_cleanup_strv_ char **blobs = NULL, **refs = NULL, **held = NULL, **chains = NULL;
	_cleanup_free_ char *tagged = NULL, *digested = NULL;
	_cleanup_(img_config_freep) struct img_config *config = NULL;
	size_t cfg_len = 0;
	_cleanup_free_ bool *done = NULL;

	/* Hold what this pull stores so a concurrent removal keeps it. */
	held = xnew(char *, 1);
	r = resolve(sess, ref, &top, &m, &mdigest, &blobs, s, err);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&s->lock);
	img_store_hold(s, blobs);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; blobs[i]; i++)
		held = strv_append(held, blobs[i]);

	pthread_mutex_lock(&s->lock);
	held = strv_append(held, m->config.digest);
	img_store_hold(s, (char *[]){m->config.digest, NULL});
	pthread_mutex_unlock(&s->lock);
	r = fetch_config(s, sess, m->config.digest, &cfg, &cfg_len, err);
	if (r < 0)
		goto fail;
	r = img_config_parse(cfg, cfg_len, &config, err);
	if (r < 0) {
		husk_error_prefix(err, "config '%s'", m->config.digest);
		goto fail;
	}
	if (strv_length(config->diff_ids) != m->n_layers) {
		r = husk_error_set(err, EBADMSG, "config '%s' lists %zu layers, the manifest %zu",
				   m->config.digest, strv_length(config->diff_ids), m->n_layers);
		goto fail;
	}
	blobs = strv_append(blobs, m->config.digest);
	chains = img_chain_ids(config->diff_ids);
	pthread_mutex_lock(&s->lock);
	img_store_hold(s, chains);
	pthread_mutex_unlock(&s->lock);
	for (size_t i = 0; chains[i]; i++)
		held = strv_append(held, chains[i]);

	done = xnew(bool, m->n_layers + 1);
	p.m = m;
	p.done = done;
	p.diff_ids = config->diff_ids;
	p.chain_ids = chains;
	r = pull_layers(&p, err);
	if (r < 0)
		goto fail;
	/* The unpacked trees reach the disk before the record names them. */
	{
		_cleanup_close_ int fd = open(s->layers, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0)
			syncfs(fd);
	}

	struct img_record *rec = xnew(struct img_record, 1);
	rec->id = xstrdup(m->config.digest);
	rec->manifest_digest = xstrdup(mdigest);
	rec->top_digest = xstrdup(top);
	rec->blobs = steal_ptr(&blobs);
	rec->chain_ids = steal_ptr(&chains);
	rec->size = (uint64_t)m->config.size;
	for (size_t i = 0; i < m->n_layers; i++)
		rec->size += (uint64_t)m->layers[i].size;
	rec->user = xstrdup(config->user);
	rec->created = now_real_ns();
	refs = xnew(char *, 1);
	tagged = img_ref_tagged(ref);
	digested = img_ref_digested(ref, top);
	if (tagged)
		refs = strv_append(refs, tagged);
	refs = strv_append(refs, digested);
	r = register_image(s, rec, refs, err);
	if (r < 0)
		goto fail;
	pthread_mutex_lock(&s->lock);
	img_store_unhold(s, held);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	*ret_id = xstrdup(m->config.digest);
	return 0;

fail:
	/* Nothing partial stays: what this pull stored and no image uses goes. */
	pthread_mutex_lock(&s->lock);
	img_store_unhold(s, held);
	img_store_gc(s, held, held);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&p.lock);
	pthread_cond_destroy(&p.cond);
	husk_error_clear(&p.err);
	return husk_error_prefix(err, "pull '%s'", name);
}
