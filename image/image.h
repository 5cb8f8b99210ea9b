/* husk's image layer: pulls OCI/Docker images from registries into a
 * content-addressed store under <root>/image, lists and removes them, and
 * makes overlayfs root filesystems for containers from their layers. */
#ifndef HUSK_IMAGE_IMAGE_H
#define HUSK_IMAGE_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "common/cancel.h"
#include "common/error.h"
#include "common/metrics.h"

/* One registry's settings, keyed by host[:port] as written in references
 * ("docker.io", "127.0.0.1:5000"). */
struct img_registry_conf {
	const char *host;
	bool insecure;	      /* TLS without verification, then plain HTTP */
	char *const *mirrors; /* host[:port][/path], tried in order first */
	const char *location; /* replaces the registry itself, no fallback */
};

struct img_options {
	const char *root;	      /* husk root; the store is <root>/image */
	int max_concurrent_downloads; /* layers fetched at once (<= 0: 3) */
	const struct img_registry_conf *registries;
	size_t n_registries;
	char *const *pinned;	 /* references reported pinned (sandbox image...) */
	uint64_t max_layer_size; /* decompressed bytes per layer (0: 64 GiB) */
	bool overlay_legacy;	 /* mount overlays with mount(2) even where
				    lowerdir+ works (tests, benchmarks) */
	int progress_timeout_s;	 /* a pull with no byte for this long fails (0: none) */
};

struct img_store;

/* Open (creating if needed) the store under opts->root/image, with
 * image/mnt a private bind mount of itself where root filesystems are
 * mounted (needs CAP_SYS_ADMIN). Removes what an interrupted pull or
 * rootfs creation left behind: temporary downloads, layers and records no
 * image references, mount points of no rootfs. Everything in opts is
 * copied. Errors: the errno of the file system operation or mount that
 * failed. Free with img_store_free, which unmounts image/mnt once no
 * rootfs is left in it. */
int img_store_open(const struct img_options *opts, struct img_store **ret, struct husk_error *err);
void img_store_free(struct img_store *s);
/* How this store mounts overlays: "fsconfig" (lowerdir+ one layer at a
 * time, Linux 6.8+, up to overlayfs' 500 layers) or "legacy" (one mount(2)
 * with a page of options, about 200 layers). */
const char *img_overlay_method(const struct img_store *s);
static inline void img_store_freep(struct img_store **s)
{
	img_store_free(*s);
}

/* Registry credentials as the CRI carries them; any field may be NULL or
 * empty. auth is base64("user:password"). */
struct img_auth {
	const char *username;
	const char *password;
	const char *auth;
	const char *identity_token; /* OAuth2 refresh token for the token server */
	const char *registry_token; /* bearer token sent as is */
};

/* Pull ref (normalised: "busybox" is docker.io/library/busybox:latest) and
 * register it under its tag and/or digest reference. Concurrent pulls of the
 * same layers download them once. On success *ret_id (caller owns) is the
 * image ID, the config digest "sha256:...". On failure nothing new is left
 * registered. Errors: EINVAL bad reference, EACCES registry refused the
 * credentials, ENOENT unknown repository/tag/platform, EBADMSG malformed
 * manifest or config or digest mismatch, EPERM a layer entry escaping its
 * directory, EFBIG a limit exceeded, ECONNREFUSED/EAGAIN/ETIMEDOUT registry
 * unreachable, ENOSPC and other errnos from the file system.
 * cancel (may be NULL) is polled while the pull waits: once set, the pull
 * closes its connections, removes its partial downloads and fails with
 * ECANCELED within a second; concurrent pulls of the same layers go on.
 * No byte for progress_timeout_s fails it with ETIMEDOUT. */
int img_pull(struct img_store *s, const char *ref, const struct img_auth *auth,
	     const struct husk_cancel *cancel, char **ret_id, struct husk_error *err);

/* What is known about one stored image. */
struct img_info {
	char *id;	     /* "sha256:<config digest>" */
	char **repo_tags;    /* "docker.io/library/busybox:latest", ... */
	char **repo_digests; /* "docker.io/library/busybox@sha256:..." */
	uint64_t size;	     /* config + compressed layers, as the registry sent */
	char *user;	     /* config User ("", "1002", "nobody:grp") */
	bool pinned;
	char *manifest_digest; /* what the reference resolved to */
	char **chain_ids;      /* bottom layer first */
	char *config_json;     /* the image config, only with IMG_INFO_CONFIG */
};
void img_info_free(struct img_info *i);
static inline void img_info_freep(struct img_info **i)
{
	img_info_free(*i);
}
void img_info_list_free(struct img_info **v, size_t n);

#define IMG_INFO_CONFIG 0x1

/* Find an image by ID ("sha256:<hex>", "<hex>" or a unique hex prefix of at
 * least 6 characters), tag or digest reference. ENOENT when unknown, EINVAL
 * when name is neither an ID nor a valid reference. *ret owned by caller. */
int img_status(struct img_store *s, const char *name, int flags, struct img_info **ret,
	       struct husk_error *err);

/* All images (or only the one filter names, when filter is not empty) in
 * ID order. *ret is an array of *ret_n pointers (img_info_list_free). */
int img_list(struct img_store *s, const char *filter, struct img_info ***ret, size_t *ret_n,
	     struct husk_error *err);

/* Remove by ID or digest reference (the whole image) or by tag (that tag;
 * the image goes with its last tag). An unknown image is success. EBUSY,
 * naming the container, when the image would go while a container rootfs
 * made from it exists. */
int img_remove(struct img_store *s, const char *name, struct husk_error *err);

/* Pull counters for huskd's /metrics. */
struct img_pull_stats {
	uint64_t pulls;		      /* img_pull calls finished, failed ones included */
	uint64_t failures;	      /* ... of which failed */
	uint64_t bytes;		      /* blob bytes received from registries */
	struct mx_histogram duration; /* of every finished pull */
};
/* A snapshot of the store's pull counters. */
void img_pull_stats_get(struct img_store *s, struct img_pull_stats *ret);

struct img_fs_usage {
	char *mountpoint; /* directory whose usage is counted */
	uint64_t bytes;	  /* allocated bytes, each inode once */
	uint64_t inodes;
	long long at; /* when it was measured (wall clock, ns) */
};
void img_fs_usage_clear(struct img_fs_usage *u);
/* Usage of the image store (blobs, layers, records) and of the container
 * writable layers (<root>/image/containers). */
int img_fs_info(struct img_store *s, struct img_fs_usage *ret_images,
		struct img_fs_usage *ret_containers, struct husk_error *err);

/* Usage of container id's writable layer (its overlay upper dir); the
 * mountpoint reported is that directory. ENOENT when id has no rootfs.
 * The first call walks the directory; later ones answer from a cache, and
 * one that finds its figure older than the interval of
 * img_usage_refresh_start has the thread walk it again (without the
 * thread, every call walks). */
int img_rootfs_usage(struct img_store *s, const char *id, struct img_fs_usage *ret,
		     struct husk_error *err);

/* Start the thread of the store's (stopped by img_store_free) that walks
 * again a cached writable layer when img_rootfs_usage finds it older than
 * interval_ms, so that no caller waits for a walk after the first. It has
 * no timer: with no stats asked for it never wakes. */
int img_usage_refresh_start(struct img_store *s, int interval_ms, struct husk_error *err);

/* The parts of an image config a runtime needs. Vectors are NULL-terminated
 * (never NULL themselves), strings never NULL ("" when unset). */
struct img_config {
	char *user;
	char **env; /* "KEY=value" */
	char **entrypoint;
	char **cmd;
	char *working_dir;
	char *stop_signal;
	char **exposed_ports; /* "80/tcp" */
	char **volumes;	      /* "/data" */
	char **labels;	      /* key, value, key, value... */
	char *os;
	char *architecture;
	char **diff_ids; /* "sha256:..." of the uncompressed layers, bottom first */
};
void img_config_free(struct img_config *c);
static inline void img_config_freep(struct img_config **c)
{
	img_config_free(*c);
}

/* Config of a stored image (name as for img_status). ENOENT when unknown. */
int img_config_get(struct img_store *s, const char *name, struct img_config **ret,
		   struct husk_error *err);

/* Root filesystems for containers. */
struct img_rootfs_opts {
	bool readonly;	    /* mount the overlay read-only */
	const char *target; /* mount point; NULL: <root>/image/mnt/<id> */
	/* A user namespace (its /proc/PID/ns/user or a pin of it): the layers
	 * and the upper dir are idmapped mounts with its mapping, so that the
	 * ids on disk read as its ids (a file of host root is its root's, and
	 * what its root writes is host root's on disk). Needs overlayfs layers
	 * given by fd (Linux 6.13+): EOPNOTSUPP otherwise. NULL: none. */
	const char *idmap_userns;
};

/* Make the root filesystem of container id from image (name as for
 * img_status): an overlay mount with the image layers as lowers and
 * <root>/image/containers/<id>/{upper,work} as upper and work dirs, at
 * <root>/image/mnt/<id> (a private mount of its own, made by img_store_open
 * and released by img_store_free when empty). The
 * image is recorded as in use by id (persistently) until
 * img_rootfs_remove. *ret_path (caller owns) is the mount point.
 * Errors: ENOENT unknown image, EEXIST id already has a rootfs, EINVAL bad
 * id, E2BIG too many layers for one mount, or the mount's errno. */
int img_rootfs_create(struct img_store *s, const char *image, const char *id,
		      const struct img_rootfs_opts *opts, char **ret_path, struct husk_error *err);

/* Mount the rootfs of id again if it is not mounted (after a reboot), with
 * the idmapping it was made with (idmap_userns, recorded with it). ENOENT
 * when id has none; ESTALE when its user namespace is gone (the pin is no
 * longer one). *ret_path as for img_rootfs_create (may be NULL). */
int img_rootfs_mount(struct img_store *s, const char *id, char **ret_path, struct husk_error *err);

/* Unmount and delete the rootfs of id (upper dir included) and drop its use
 * of the image. Unknown id is success. */
int img_rootfs_remove(struct img_store *s, const char *id, struct husk_error *err);

/* IDs of the containers having a rootfs (NULL-terminated, caller owns). */
char **img_rootfs_list(struct img_store *s);

#endif
