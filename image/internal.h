/* Internals of the image layer shared between its files and its unit tests:
 * references, media types and manifests, the registry client and the layer
 * unpacker. Nothing outside image/ and tests/unit/test_image*.c includes it. */
#ifndef HUSK_IMAGE_INTERNAL_H
#define HUSK_IMAGE_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "common/hindex.h"
#include "image/image.h"

#define IMG_DEFAULT_DOMAIN "docker.io"
#define IMG_MAX_MANIFEST (4u << 20)
#define IMG_MAX_CONFIG (8u << 20)
#define IMG_MAX_LAYERS 128
#define IMG_MAX_INDEX_ENTRIES 256
#define IMG_DEFAULT_MAX_LAYER_SIZE (64ull << 30)

/* ---- references (ref.c) ---- */

/* A parsed, normalised image reference. tag is NULL only when digest is set
 * and no tag was given. */
struct img_ref {
	char *domain; /* "docker.io", "127.0.0.1:5000" */
	char *path;   /* "library/busybox" */
	char *tag;
	char *digest; /* "sha256:<64 hex>" */
};

/* Parse and normalise s. EINVAL with the reason when it is not a valid
 * reference (or is a bare 64-hex ID). */
int img_ref_parse(const char *s, struct img_ref **ret, struct husk_error *err);
void img_ref_free(struct img_ref *r);
static inline void img_ref_freep(struct img_ref **r)
{
	img_ref_free(*r);
}
/* New strings: "domain/path", "domain/path:tag" (NULL without tag),
 * "domain/path@digest", and the full form with everything given. */
char *img_ref_name(const struct img_ref *r);
char *img_ref_tagged(const struct img_ref *r);
char *img_ref_digested(const struct img_ref *r, const char *digest);
char *img_ref_string(const struct img_ref *r);

/* "sha256:" and 64 lowercase hex digits. */
bool img_digest_valid(const char *d);
/* The hex part of a valid digest. */
static inline const char *img_digest_hex(const char *d)
{
	return d + 7;
}
/* "sha256:<hex>" of data. */
char *img_digest_of(const void *data, size_t len);

/* ---- media types and manifests (manifest.c) ---- */

#define IMG_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define IMG_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define IMG_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define IMG_MT_DOCKER_LAYER "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define IMG_MT_DOCKER_FOREIGN "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
#define IMG_MT_DOCKER_SCHEMA1 "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define IMG_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define IMG_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define IMG_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define IMG_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define IMG_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define IMG_MT_OCI_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define IMG_MT_OCI_NONDIST "application/vnd.oci.image.layer.nondistributable.v1.tar"
/* The Accept header for manifest requests. */
#define IMG_MANIFEST_ACCEPT                                               \
	IMG_MT_OCI_INDEX ", " IMG_MT_DOCKER_LIST ", " IMG_MT_OCI_MANIFEST \
			 ", " IMG_MT_DOCKER_MANIFEST

enum img_mt_kind {
	IMG_KIND_UNKNOWN,
	IMG_KIND_MANIFEST,
	IMG_KIND_INDEX,
	IMG_KIND_CONFIG,
	IMG_KIND_LAYER,
	IMG_KIND_SCHEMA1
};
enum img_compression { IMG_COMP_NONE, IMG_COMP_GZIP, IMG_COMP_ZSTD };

/* Classify a media type; for layers *ret_comp (may be NULL) is the
 * compression it announces. */
enum img_mt_kind img_media_type_kind(const char *mt, enum img_compression *ret_comp);

struct img_descriptor {
	char *media_type;
	char *digest;
	int64_t size;
	char *os, *arch, *variant; /* index entries only */
};

struct img_manifest {
	enum img_mt_kind kind; /* IMG_KIND_MANIFEST or IMG_KIND_INDEX */
	char *media_type;
	struct img_descriptor config; /* manifest */
	struct img_descriptor *layers;
	size_t n_layers;
	struct img_descriptor *manifests; /* index */
	size_t n_manifests;
};

/* Parse a manifest or index. content_type (the HTTP header, may be NULL)
 * is used when the document has no mediaType. EBADMSG with the reason for
 * anything malformed or unsupported. */
int img_manifest_parse(const char *data, size_t len, const char *content_type,
		       struct img_manifest **ret, struct husk_error *err);
void img_manifest_free(struct img_manifest *m);
static inline void img_manifest_freep(struct img_manifest **m)
{
	img_manifest_free(*m);
}

/* This machine's platform in OCI terms (static strings; variant may be ""). */
void img_platform_host(const char **os, const char **arch, const char **variant);
/* Pick the index entry for os/arch/variant (variant "" matches any; an
 * arm64 entry without variant matches "v8"). ENOENT naming the platform. */
int img_manifest_select(const struct img_manifest *index, const char *os, const char *arch,
			const char *variant, const struct img_descriptor **ret,
			struct husk_error *err);

/* Parse an image config. EBADMSG when malformed. */
int img_config_parse(const char *data, size_t len, struct img_config **ret, struct husk_error *err);
/* Chain IDs of diff_ids (NULL-terminated, caller owns). */
char **img_chain_ids(char *const *diff_ids);

/* ---- registry client (registry.c) ---- */

struct img_endpoint {
	char *host;   /* host[:port] contacted */
	char *prefix; /* repository prefix on a mirror ("" for none) */
	bool insecure;
	bool loopback;
	int scheme;  /* 0 unknown yet, 1 https, 2 http */
	char *token; /* bearer token for the repository, once obtained */
	char *basic; /* "user:pass" when the endpoint asked for basic auth */
};

struct img_session {
	char *registry; /* the reference's domain */
	char *repo;	/* path in the registry */
	struct img_endpoint *eps;
	size_t n_eps;
	size_t cur; /* endpoint chosen by the manifest request */
	char *username, *password, *identity_token, *registry_token;
	pthread_mutex_t lock;
	volatile int *cancel;		  /* set non-zero to abort transfers */
	const struct husk_cancel *caller; /* the client of the pull (may be NULL) */
	long long progress_timeout_ns;	  /* no byte for this long fails (0: none) */
	long long progress_ns;		  /* last byte received (atomic) */
	int stalled;			  /* the progress deadline fired (atomic) */
};

/* Whether transfers of s must stop: a sibling layer failed, the caller went
 * or the progress deadline passed. */
bool img_session_stopped(struct img_session *s);
/* Fill err for a transfer img_session_stopped() aborted: ECANCELED when the
 * caller went or a sibling failed, ETIMEDOUT when no byte came in time. */
int img_session_stop_error(struct img_session *s, const char *what, struct husk_error *err);

/* Endpoints for domain/repo from the registry settings: mirrors in order,
 * then location or the registry itself. */
struct img_session *img_session_new(const struct img_registry_conf *regs, size_t n_regs,
				    const struct img_ref *ref, const struct img_auth *auth,
				    struct husk_error *err);
void img_session_free(struct img_session *s);
static inline void img_session_freep(struct img_session **s)
{
	img_session_free(*s);
}

/* Fetch the manifest named by reference (tag or digest), trying endpoints
 * in order; the first that has it becomes the session's endpoint. */
int img_fetch_manifest(struct img_session *s, const char *reference, char **ret_data,
		       size_t *ret_len, char **ret_content_type, struct husk_error *err);
/* Fetch a small blob into memory (at most max bytes) and verify it. */
int img_fetch_blob(struct img_session *s, const char *digest, size_t max, char **ret_data,
		   size_t *ret_len, struct husk_error *err);
/* Stream a blob to sink(data, len, opaque) (which returns < 0 to abort).
 * Retries only until the first byte was delivered. Does not verify. */
typedef int (*img_sink_fn)(const void *data, size_t len, void *opaque);
int img_fetch_blob_stream(struct img_session *s, const char *digest, img_sink_fn sink, void *opaque,
			  struct husk_error *err);

/* Split a WWW-Authenticate challenge (`Bearer realm="...",service="...",
 * scope="..."`) into its scheme and the params the token request needs:
 * new strings (caller frees), NULL when absent; the scheme is never NULL. */
void img_auth_challenge_parse(const char *h, char **scheme, char **realm, char **service,
			      char **scope);

/* True for localhost, 127.0.0.0/8 and ::1 (with or without a port). */
bool img_host_is_loopback(const char *hostport);
void img_curl_global_init(void);

/* ---- layer unpack (unpack.c) ---- */

enum img_wh_kind { IMG_WH_NONE, IMG_WH_FILE, IMG_WH_OPAQUE, IMG_WH_META };
/* What a tar member's base name means: a plain entry, a whiteout of
 * *ret_target (pointer into base), an opaque-dir marker, or other aufs
 * metadata to skip. */
enum img_wh_kind img_whiteout_kind(const char *base, const char **ret_target);

/* Read the layer stream from fd (gzip, zstd or plain tar, sniffed), unpack
 * it into dest (an existing empty directory) converting whiteouts to the
 * overlayfs form, and compute the uncompressed digest. Names are read as
 * GNU tar and Docker read them ("/x" and "./x" are "x"); entries escaping
 * dest are refused with EPERM; more than max_size uncompressed bytes give
 * EFBIG; a bad stream, or one that ends inside an entry's data, EBADMSG.
 * A tar that ends without padding or end-of-archive blocks is whole. Only
 * the xattrs img_xattr_kept allows are kept. Hard links to files not in
 * this layer are left for img_unpack_links: *ret_links (when ret_links is
 * not NULL; else they fail with EBADMSG) gets four strings per link (member
 * name, link target as written, and both as relative paths). Reads fd to
 * its end on success. */
int img_unpack(int fd, const char *dest, uint64_t max_size, char ***ret_links, char **ret_diff_id,
	       uint64_t *ret_size, struct husk_error *err);

/* Make the hard links img_unpack left in dest, looking for their targets
 * in dest and then in lowers (the earlier layers' directories, top first,
 * NULL-terminated) through whiteouts and opaque directories as overlayfs
 * would; a target from a lower layer is copied into dest (owner, mode,
 * kept xattrs, times, and its parent directories) and linked there, as
 * overlayfs copies up a file before linking it. EBADMSG naming the member
 * when no layer has the target. */
int img_unpack_links(const char *dest, char *const *links, char *const *lowers,
		     struct husk_error *err);

/* Whether an image layer may set the extended attribute name: user.*
 * (but not user.overlay.*) and security.capability. */
bool img_xattr_kept(const char *name);

/* ---- the store (store.c, pull.c, rootfs.c) ---- */

/* One image as recorded in images/<hex>.json. */
struct img_record {
	char *id;	       /* config digest */
	char *manifest_digest; /* platform manifest */
	char *top_digest;      /* what the reference resolved to (index or manifest) */
	char **blobs;	       /* stored manifest, index and config digests */
	char **chain_ids;      /* bottom first */
	uint64_t size;
	char *user;
	long long created; /* ns since the epoch */
};
void img_record_free(struct img_record *r);

struct img_ref_entry {
	char *ref; /* "name:tag" or "name@digest" */
	char *id;
};

struct img_user {
	char *cid; /* container with a rootfs from the image */
	char *id;
	char *mountpoint;
	bool readonly;
	char *idmap_userns; /* img_rootfs_opts.idmap_userns it was made with */
	size_t at;	    /* its index in img_store.users */
	struct hindex_node by_cid, by_image;
};

/* The directories of a container's overlay (caller owns): lowers top layer
 * first, upper and work dirs. */
struct img_ovl_dirs {
	char **lowers;
	char *upper, *work;
	bool idmapped; /* the lowers idmapped with userns_fd (a user namespace) */
	int userns_fd;
};

/* One way to mount an overlay (image/rootfs.c): on target, read-only or
 * not. Errors: E2BIG too many layers for this way, or the errno of the
 * mount, with overlayfs' own message when it gave one. */
struct img_overlay_ops {
	const char *name;
	int (*mount)(const struct img_ovl_dirs *d, const char *target, bool readonly,
		     struct husk_error *err);
};
extern const struct img_overlay_ops img_overlay_fsconfig; /* lowerdir+, Linux 6.8+ */
extern const struct img_overlay_ops img_overlay_legacy;	  /* mount(2), a page of options */
/* fsconfig when this kernel's overlayfs takes "lowerdir+" (tried with the
 * existing directory dir), else legacy. */
const struct img_overlay_ops *img_overlay_probe(const char *dir);

struct img_store {
	char *dir; /* <root>/image */
	const struct img_overlay_ops *overlay;
	char *tmp, *layers, *blobs, *images, *containers;
	/* <dir>/mnt: a private mount of its own where the rootfs overlays are
	 * mounted (<mnt>/<id>), apart from the layers and upper dirs they are
	 * made of (fs_private_mount_ensure says why). */
	char *mnt;
	int max_downloads;
	uint64_t max_layer_size;
	int progress_timeout_s; /* pull_progress_timeout (0: none) */
	struct img_registry_conf *regs;
	size_t n_regs;
	char **pinned; /* normalised references */
	pthread_mutex_t lock;
	pthread_cond_t cond; /* signalled when an in-flight key is released */
	struct img_record **recs;
	size_t n_recs;
	struct img_ref_entry *refs;
	size_t n_refs;
	/* The rootfs users, in no order, by container id and image id:
	 * img_store_user_* only. */
	struct img_user **users;
	size_t n_users;
	struct hindex user_cids, user_images;
	char **inflight;	     /* layers/blobs being fetched right now */
	char **held;		     /* digests pulls in progress rely on (a multiset) */
	struct img_pull_stats stats; /* atomics, no lock */
	/* Writable-layer usage cache (usage.c); usage_lock is a leaf lock. */
	pthread_mutex_t usage_lock;
	pthread_cond_t usage_cond;
	struct hindex usage; /* struct img_usage_entry by container id */
	pthread_t usage_thread;
	bool usage_running, usage_stop;
	int usage_interval_ms;
	size_t usage_queued; /* entries a request found stale */
};

/* Usage of the tree at dir (each inode once; skip: top-level names left
 * out, NULL-terminated, or NULL). ret->mountpoint is dir. */
int img_dir_usage(const char *dir, const char *const *skip, struct img_fs_usage *ret,
		  struct husk_error *err);
/* Forget the cached usage of container id (usage.c). */
void img_usage_forget(struct img_store *s, const char *id);
/* Stop the refresh thread and free the cache (img_store_free). */
void img_usage_stop(struct img_store *s);

/* Under s->lock: the record with this ID, or NULL. */
struct img_record *img_store_record(struct img_store *s, const char *id);
/* Under s->lock: resolve name as img_status does. *ret_tag is the matching
 * tag reference (not owned) when name was a tag. ENOENT, EINVAL. */
int img_store_lookup(struct img_store *s, const char *name, struct img_record **ret,
		     const char **ret_tag, struct husk_error *err);
/* Under s->lock: write the ref index atomically. */
int img_store_write_index(struct img_store *s, struct husk_error *err);
int img_store_write_record(struct img_store *s, const struct img_record *r, struct husk_error *err);
/* Paths (caller frees). */
char *img_store_layer_path(struct img_store *s, const char *chain_id);
char *img_store_blob_path(struct img_store *s, const char *digest);
/* Wait until key is not in flight, then mark it in flight (claim) / clear
 * it and wake waiters (release). Not under s->lock. */
void img_store_claim(struct img_store *s, const char *key);
/* The same, giving up with -ECANCELED (err filled) when sess is stopped
 * (img_session_stopped) while another pull holds key. */
int img_store_claim_session(struct img_store *s, const char *key, struct img_session *sess,
			    struct husk_error *err);
void img_store_release(struct img_store *s, const char *key);
/* Under s->lock: add/drop digests a pull relies on so removal keeps them. */
void img_store_hold(struct img_store *s, char *const *keys);
void img_store_unhold(struct img_store *s, char *const *keys);
/* Under s->lock: delete those layers and blobs no record or pull uses. */
void img_store_gc(struct img_store *s, char *const *chains, char *const *blobs);
/* Under s->lock: users. A user of image id, or NULL. */
const struct img_user *img_store_user_of(struct img_store *s, const char *id);
/* The user that is container cid's rootfs, or NULL. */
struct img_user *img_store_user_find(struct img_store *s, const char *cid);
/* Add u (the store takes it; cid not a user yet) / drop and free the user
 * cid, if there is one. */
void img_store_user_add(struct img_store *s, struct img_user *u);
void img_store_user_drop(struct img_store *s, const char *cid);

#endif
