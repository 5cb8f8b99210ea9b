/* Layer unpack: decompress a gzip/zstd/plain tar stream, hash it (diff ID)
 * and extract it with libarchive into one layer directory, refusing entries
 * that would land outside it, turning whiteouts into overlayfs form and
 * keeping only the extended attributes an image may carry. Hard links to
 * files of earlier layers are resolved once those layers are in place. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/xattr.h>
#include <zlib.h>
#include <zstd.h>

#include "common/fs.h"
#include "image/internal.h"

#define IN_BUF (256u << 10)
#define OUT_BUF (256u << 10)
#define MAX_PATH_LEN 4096
#define TAR_BLOCK 512
/* What a tar ends with: two zero blocks. */
#define TAR_END (2 * TAR_BLOCK)
#define VFS_CAP_V2_SIZE 20
#define VFS_CAP_V3_SIZE 24

enum img_wh_kind img_whiteout_kind(const char *base, const char **ret_target)
{
	if (!startswith(base, ".wh."))
		return IMG_WH_NONE;
	if (streq(base, ".wh..wh..opq"))
		return IMG_WH_OPAQUE;
	if (startswith(base, ".wh..wh."))
		return IMG_WH_META;
	if (ret_target)
		*ret_target = base + 4;
	return IMG_WH_FILE;
}

struct reader {
	int fd;
	enum img_compression comp;
	bool sniffed, in_eof, stream_end;
	z_stream z;
	bool z_init;
	ZSTD_DCtx *zs;
	size_t zret; /* last ZSTD_decompressStream result: 0 at a frame end */
	unsigned char *in, *out;
	size_t in_pos, in_len;
	EVP_MD_CTX *md;
	uint64_t total, max;
	/* After the stream's end, libarchive is fed zero blocks: padding to a
	 * whole block and an end-of-archive mark (Go's archive/tar reads tars
	 * that lack them, and umoci writes such tars). They are not part of
	 * the diff ID, and an entry whose data reaches into them is cut short. */
	bool ended;
	size_t pad_left;
	struct husk_error err;
};

static int fill(struct reader *r)
{
	if (r->in_pos < r->in_len || r->in_eof)
		return 0;
	for (;;) {
		ssize_t n = read(r->fd, r->in, IN_BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return husk_error_errno(&r->err, errno, "read layer stream");
		r->in_pos = 0;
		r->in_len = (size_t)n;
		if (n == 0)
			r->in_eof = true;
		return 0;
	}
}

static int sniff(struct reader *r)
{
	/* Gather a few bytes to recognise the compression by its magic. */
	while (!r->in_eof && r->in_len - r->in_pos < 4) {
		if (r->in_pos > 0) {
			memmove(r->in, r->in + r->in_pos, r->in_len - r->in_pos);
			r->in_len -= r->in_pos;
			r->in_pos = 0;
		}
		ssize_t n = read(r->fd, r->in + r->in_len, IN_BUF - r->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return husk_error_errno(&r->err, errno, "read layer stream");
		if (n == 0)
			r->in_eof = true;
		r->in_len += (size_t)n;
	}
	const unsigned char *p = r->in + r->in_pos;
	size_t avail = r->in_len - r->in_pos;
	r->comp = IMG_COMP_NONE;
	if (avail >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		r->comp = IMG_COMP_GZIP;
	else if (avail >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		r->comp = IMG_COMP_ZSTD;
	if (r->comp == IMG_COMP_GZIP) {
		if (inflateInit2(&r->z, 16 + MAX_WBITS) != Z_OK)
			return husk_error_set(&r->err, ENOMEM, "gzip: cannot initialise");
		r->z_init = true;
	} else if (r->comp == IMG_COMP_ZSTD) {
		r->zs = ZSTD_createDCtx();
		if (!r->zs)
			return husk_error_set(&r->err, ENOMEM, "zstd: cannot initialise");
	}
	r->sniffed = true;
	return 0;
}

/* Produce the next chunk of uncompressed tar into r->out: its length, 0 at
 * the end of the stream, < 0 on error (r->err set). */
static ssize_t produce(struct reader *r)
{
	if (!r->sniffed && sniff(r) < 0)
		return -1;
	for (;;) {
		if (fill(r) < 0)
			return -1;
		size_t avail = r->in_len - r->in_pos;
		if (avail == 0 && r->in_eof) {
			if (r->comp == IMG_COMP_GZIP && !r->stream_end)
				return husk_error_set(&r->err, EBADMSG, "gzip: truncated stream");
			if (r->comp == IMG_COMP_ZSTD && r->zret != 0)
				return husk_error_set(&r->err, EBADMSG, "zstd: truncated stream");
			return 0;
		}
		size_t produced = 0;
		if (r->comp == IMG_COMP_NONE) {
			produced = avail < OUT_BUF ? avail : OUT_BUF;
			memcpy(r->out, r->in + r->in_pos, produced);
			r->in_pos += produced;
		} else if (r->comp == IMG_COMP_GZIP) {
			if (r->stream_end) {
				/* Another gzip member may follow; anything else is
				 * padding we skip (it is still hashed as the blob). */
				if (avail >= 2 && r->in[r->in_pos] == 0x1f &&
				    r->in[r->in_pos + 1] == 0x8b) {
					inflateReset(&r->z);
					r->stream_end = false;
				} else {
					r->in_pos = r->in_len;
					continue;
				}
			}
			r->z.next_in = r->in + r->in_pos;
			r->z.avail_in = (uInt)avail;
			r->z.next_out = r->out;
			r->z.avail_out = OUT_BUF;
			int zr = inflate(&r->z, Z_NO_FLUSH);
			r->in_pos = r->in_len - r->z.avail_in;
			produced = OUT_BUF - r->z.avail_out;
			if (zr == Z_STREAM_END)
				r->stream_end = true;
			else if (zr != Z_OK && zr != Z_BUF_ERROR)
				return husk_error_set(&r->err, EBADMSG, "gzip: %s",
						      r->z.msg ? r->z.msg : "corrupt data");
		} else {
			ZSTD_inBuffer ib = {r->in + r->in_pos, avail, 0};
			ZSTD_outBuffer ob = {r->out, OUT_BUF, 0};
			size_t zr = ZSTD_decompressStream(r->zs, &ob, &ib);
			if (ZSTD_isError(zr))
				return husk_error_set(&r->err, EBADMSG, "zstd: %s",
						      ZSTD_getErrorName(zr));
			r->zret = zr;
			r->in_pos += ib.pos;
			produced = ob.pos;
		}
		if (produced == 0)
			continue;
		r->total += produced;
		if (r->total > r->max)
			return husk_error_set(&r->err, EFBIG,
					      "layer larger than %llu bytes uncompressed",
					      (unsigned long long)r->max);
		EVP_DigestUpdate(r->md, r->out, produced);
		return (ssize_t)produced;
	}
}

static la_ssize_t on_read(struct archive *a, void *opaque, const void **buf)
{
	struct reader *r = opaque;
	if (!r->ended) {
		ssize_t n = produce(r);
		if (n < 0) {
			archive_set_error(a, r->err.code, "%s", husk_error_msg(&r->err));
			return -1;
		}
		*buf = r->out;
		if (n > 0)
			return n;
		r->ended = true;
		/* An empty stream stays empty (an empty layer). */
		if (r->total > 0)
			r->pad_left = (TAR_BLOCK - r->total % TAR_BLOCK) % TAR_BLOCK + TAR_END;
	}
	size_t n = r->pad_left < OUT_BUF ? r->pad_left : OUT_BUF;
	memset(r->out, 0, n);
	r->pad_left -= n;
	*buf = r->out;
	return (la_ssize_t)n;
}

static void reader_clear(struct reader *r)
{
	if (r->z_init)
		inflateEnd(&r->z);
	if (r->zs)
		ZSTD_freeDCtx(r->zs);
	EVP_MD_CTX_free(r->md);
	free(r->in);
	free(r->out);
	husk_error_clear(&r->err);
}

/* A member name as a path relative to the layer root: leading '/' dropped
 * (as GNU tar and Docker do), "." and empty components too, ".." taking
 * back the component before it (as Docker's path.Clean); "/", "./" and ""
 * are the root itself. Safe because the result is only ever used as a
 * path below the root: the kernel never walks the ".." itself. NULL with
 * *why set when ".." climbs above the root or the name is too long. */
static char *clean_name(const char *name, const char **why)
{
	if (strlen(name) > MAX_PATH_LEN) {
		*why = "name too long";
		return NULL;
	}
	char *out = xmalloc(strlen(name) + 1);
	size_t o = 0;
	for (const char *p = name;;) {
		while (*p == '/')
			p++;
		size_t n = strcspn(p, "/");
		if (n == 0)
			break;
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			if (o == 0) {
				free(out);
				*why = "'..' climbs out of the layer";
				return NULL;
			}
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else if (!(n == 1 && p[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
	}
	out[o] = '\0';
	return out;
}

bool img_xattr_kept(const char *name)
{
	/* Docker writes only security.capability into layers; user.* is the
	 * namespace builders (buildah, umoci) add. trusted.overlay.* (and
	 * user.overlay.*) would steer overlayfs (redirects, metacopy, opaque
	 * dirs), other trusted.*, security.* and system.* are the host's. */
	if (streq(name, "security.capability"))
		return true;
	return startswith(name, "user.") && !startswith(name, "user.overlay.");
}

/* A file capability in the v3 form names the root user of the namespace it
 * was made in; outside it the kernel ignores it. Store the v2 form, as
 * Docker writes layers. */
static size_t cap_to_v2(unsigned char *v, size_t size)
{
	if (size == VFS_CAP_V3_SIZE && v[3] == 3) {
		v[3] = 2;
		return VFS_CAP_V2_SIZE;
	}
	return size;
}

struct kept_xattr {
	char *name;
	unsigned char *value;
	size_t size;
};

static void filter_xattrs(struct archive_entry *e)
{
	if (archive_entry_xattr_reset(e) == 0)
		return;
	struct kept_xattr *k = NULL;
	size_t n = 0;
	const char *name;
	const void *value;
	size_t size;
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
		if (!img_xattr_kept(name))
			continue;
		k = xrealloc(k, (n + 1) * sizeof(*k));
		k[n].name = xstrdup(name);
		k[n].value = xmalloc(size + 1);
		if (size)
			memcpy(k[n].value, value, size);
		k[n].size = streq(name, "security.capability") ? cap_to_v2(k[n].value, size) : size;
		n++;
	}
	archive_entry_xattr_clear(e);
	for (size_t i = 0; i < n; i++) {
		archive_entry_xattr_add_entry(e, k[i].name, k[i].value, k[i].size);
		free(k[i].name);
		free(k[i].value);
	}
	free(k);
}

/* Refuse when a directory on the way to rel inside dest is a symlink (the
 * entry would be written wherever it points). */
static int check_parents(const char *dest, const char *rel, const char *member,
			 struct husk_error *err)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dest, rel);
	size_t base = strlen(dest) + 1;
	for (char *s = p + base; (s = strchr(s, '/')); s++) {
		*s = '\0';
		struct stat st;
		int r = lstat(p, &st);
		*s = '/';
		if (r < 0)
			return 0; /* nothing deeper exists yet */
		if (S_ISLNK(st.st_mode))
			return husk_error_set(err, EPERM,
					      "entry '%s' escapes the layer directory through "
					      "the symlink '%.*s'",
					      member, (int)(s - p - base), p + base);
	}
	return 0;
}

static int make_parent(const char *dest, const char *rel, struct husk_error *err)
{
	const char *slash = strrchr(rel, '/');
	if (!slash)
		return 0;
	_cleanup_free_ char *dir = xasprintf("%s/%.*s", dest, (int)(slash - rel), rel);
	return fs_mkdir_p(dir, 0755, err);
}

static int do_whiteout(const char *dest, const char *rel, enum img_wh_kind kind, const char *member,
		       struct husk_error *err)
{
	int r = make_parent(dest, rel, err);
	if (r < 0)
		return r;
	const char *slash = strrchr(rel, '/');
	_cleanup_free_ char *parent =
	    slash ? xasprintf("%s/%.*s", dest, (int)(slash - rel), rel) : xstrdup(dest);
	if (kind == IMG_WH_OPAQUE) {
		if (lsetxattr(parent, "trusted.overlay.opaque", "y", 1, 0) < 0)
			return husk_error_errno(err, errno, "opaque directory '%s'", member);
		return 0;
	}
	const char *target = NULL;
	img_whiteout_kind(slash ? slash + 1 : rel, &target);
	if (isempty(target) || streq(target, ".") || streq(target, ".."))
		return husk_error_set(err, EPERM, "whiteout '%s' names no file", member);
	_cleanup_free_ char *path = xasprintf("%s/%s", parent, target);
	r = fs_rm_rf(path, err);
	if (r < 0)
		return r;
	if (mknod(path, S_IFCHR | 0, makedev(0, 0)) < 0)
		return husk_error_errno(err, errno, "whiteout '%s'", member);
	return 0;
}

/* libarchive's message with the kernel's reason when it has one. */
static int write_error(struct husk_error *err, struct archive *out, const char *member)
{
	int code = archive_errno(out) > 0 ? archive_errno(out) : EIO;
	const char *msg = archive_error_string(out) ? archive_error_string(out) : "failed";
	if (archive_errno(out) > 0 && !strstr(msg, strerror(code)))
		return husk_error_set(err, code, "extract '%s': %s: %s", member, msg,
				      strerror(code));
	return husk_error_set(err, code, "extract '%s': %s", member, msg);
}

static bool is_whiteout_node(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static int cut_short(const char *member, struct husk_error *err)
{
	return husk_error_set(err, EBADMSG,
			      "entry '%s' is cut short: the layer ends inside its data", member);
}

/* A failed read of member's data: the stream's own error, or the end of
 * the stream inside the data (after the zero blocks on_read adds). */
static int data_error(struct archive *in, struct reader *rd, const char *member,
		      struct husk_error *err)
{
	if (rd->err.code)
		return husk_error_move(err, &rd->err);
	if (rd->ended)
		return cut_short(member, err);
	return husk_error_set(err, EBADMSG, "read '%s': %s", member, archive_error_string(in));
}

/* Read what is left of the entry's data, then check it was all there: its
 * stored bytes (data_start, then *stored counted by the caller and here)
 * end within the stream, not in the zero blocks on_read adds after it.
 * (The tar reader's position after the data includes the padding, which a
 * tar may lack; hence the count.) */
static int entry_done(struct archive *in, struct reader *rd, const char *member,
		      la_int64_t data_start, uint64_t stored, struct husk_error *err)
{
	const void *buf;
	size_t len;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK)
		stored += len;
	if (r != ARCHIVE_EOF)
		return data_error(in, rd, member, err);
	if ((uint64_t)data_start + stored > rd->total)
		return cut_short(member, err);
	return 0;
}

/* Give dest the metadata of the layer's root entry. (libarchive leaves the
 * owner of a directory that exists alone.) */
static int set_root(const char *dest, struct archive_entry *e, struct husk_error *err)
{
	if (lchown(dest, archive_entry_uid(e), archive_entry_gid(e)) < 0 ||
	    chmod(dest, archive_entry_perm(e) & 07777) < 0)
		return husk_error_errno(err, errno, "layer root: owner and mode");
	const char *name;
	const void *value;
	size_t size;
	archive_entry_xattr_reset(e);
	while (archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK)
		if (lsetxattr(dest, name, value, size, 0) < 0)
			return husk_error_errno(err, errno, "layer root: xattr '%s'", name);
	struct timespec ts[2] = {
	    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
	    {archive_entry_mtime(e), archive_entry_mtime_nsec(e)},
	};
	if (archive_entry_atime_is_set(e))
		ts[0] = (struct timespec){archive_entry_atime(e), archive_entry_atime_nsec(e)};
	if (utimensat(AT_FDCWD, dest, ts, AT_SYMLINK_NOFOLLOW) < 0)
		return husk_error_errno(err, errno, "layer root: times");
	return 0;
}

static void archive_entry_freep(struct archive_entry **e)
{
	if (*e)
		archive_entry_free(*e);
}

static int extract(struct archive *in, struct archive *out, const char *dest, struct reader *rd,
		   char ***links, struct archive_entry **root, struct husk_error *err)
{
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(in, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		/* ARCHIVE_RETRY is a damaged header (a bad checksum): the
		 * entry it returns is not one to extract. */
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
			if (rd->err.code)
				return husk_error_move(err, &rd->err);
			/* an empty stream is an empty layer */
			if (rd->total == 0 && rd->in_eof)
				return 0;
			return husk_error_set(err, EBADMSG, "read tar: %s",
					      archive_error_string(in));
		}
		la_int64_t data_start = archive_filter_bytes(in, 0);
		_cleanup_free_ char *member =
		    xstrdup(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
		const char *why = NULL;
		_cleanup_free_ char *rel = clean_name(member, &why);
		if (!rel)
			return husk_error_set(
			    err, EPERM, "entry '%s' escapes the layer directory: %s", member, why);
		const char *link = archive_entry_hardlink(e);
		filter_xattrs(e);
		if (!*rel) {
			/* The layer root itself ("/", "./"): its owner, mode,
			 * xattrs and times become the root directory's, as
			 * Docker applies them (set at the end, see set_root). */
			if (archive_entry_filetype(e) != AE_IFDIR || link)
				return husk_error_set(err, EPERM,
						      "entry '%s' names the layer root but is not "
						      "a directory",
						      member);
			if (*root)
				archive_entry_free(*root);
			*root = archive_entry_clone(e);
			r = entry_done(in, rd, member, data_start, 0, err);
			if (r < 0)
				return r;
			continue;
		}
		int q = check_parents(dest, rel, member, err);
		if (q < 0)
			return q;
		const char *slash = strrchr(rel, '/');
		enum img_wh_kind wh = img_whiteout_kind(slash ? slash + 1 : rel, NULL);
		/* aufs metadata directories at the top (.wh..wh.plnk, ...) are
		 * skipped with everything in them, as Docker skips them. */
		if (startswith(rel, ".wh..wh."))
			wh = IMG_WH_META;
		if (wh != IMG_WH_NONE) {
			if (wh != IMG_WH_META) {
				q = do_whiteout(dest, rel, wh, member, err);
				if (q < 0)
					return q;
			}
			q = entry_done(in, rd, member, data_start, 0, err);
			if (q < 0)
				return q;
			continue;
		}
		_cleanup_free_ char *full = xasprintf("%s/%s", dest, rel);
		_cleanup_free_ char *full_link = NULL;
		if (link) {
			_cleanup_free_ char *lrel = clean_name(link, &why);
			if (!lrel || !*lrel)
				return husk_error_set(err, EPERM,
						      "hard link '%s' to '%s' escapes the layer "
						      "directory: %s",
						      member, link, why ? why : "empty target");
			q = check_parents(dest, lrel, member, err);
			if (q < 0)
				return q;
			full_link = xasprintf("%s/%s", dest, lrel);
			struct stat lst;
			if (lstat(full_link, &lst) < 0 || is_whiteout_node(&lst)) {
				/* Not in this layer: a file of an earlier one,
				 * linked once those are in place. */
				if (!links)
					return husk_error_set(err, EBADMSG,
							      "hard link '%s' to '%s': no such "
							      "file in the layer",
							      member, link);
				*links = strv_append(*links, member);
				*links = strv_append(*links, link);
				*links = strv_append(*links, rel);
				*links = strv_append(*links, lrel);
				q = entry_done(in, rd, member, data_start, 0, err);
				if (q < 0)
					return q;
				continue;
			}
			archive_entry_set_hardlink(e, full_link);
		}
		/* Replace a symlink in the way instead of writing through it. */
		struct stat st;
		if (lstat(full, &st) == 0 && S_ISLNK(st.st_mode) &&
		    archive_entry_filetype(e) != AE_IFLNK)
			unlink(full);
		archive_entry_set_pathname(e, full);
		r = archive_write_header(out, e);
		if (r < ARCHIVE_WARN) {
			return write_error(err, out, member);
		}
		uint64_t stored = 0;
		if (archive_entry_size(e) > 0 && !link) {
			const void *buf;
			size_t len;
			la_int64_t off;
			while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
				stored += len;
				if (archive_write_data_block(out, buf, len, off) < ARCHIVE_OK) {
					return write_error(err, out, member);
				}
			}
			if (r != ARCHIVE_EOF)
				return data_error(in, rd, member, err);
		}
		/* Checked before the entry is finished: a file cut short is
		 * never completed with the zeros that stand in for the end. */
		q = entry_done(in, rd, member, data_start, stored, err);
		if (q < 0)
			return q;
		r = archive_write_finish_entry(out);
		if (r < ARCHIVE_WARN) {
			return write_error(err, out, member);
		}
	}
}

static void archive_read_freep(struct archive **a)
{
	if (*a)
		archive_read_free(*a);
}
static void archive_write_freep(struct archive **a)
{
	if (*a)
		archive_write_free(*a);
}

int img_unpack(int fd, const char *dest, uint64_t max_size, char ***ret_links, char **ret_diff_id,
	       uint64_t *ret_size, struct husk_error *err)
{
	struct reader rd = {.fd = fd, .max = max_size ? max_size : IMG_DEFAULT_MAX_LAYER_SIZE};
	rd.in = xmalloc(IN_BUF);
	rd.out = xmalloc(OUT_BUF);
	rd.md = EVP_MD_CTX_new();
	if (!rd.md)
		abort();
	EVP_DigestInit_ex(rd.md, EVP_sha256(), NULL);

	int ret = 0;
	_cleanup_strv_ char **links = ret_links ? xnew(char *, 1) : NULL;
	_cleanup_(archive_entry_freep) struct archive_entry *root = NULL;
	_cleanup_(archive_read_freep) struct archive *in = archive_read_new();
	_cleanup_(archive_write_freep) struct archive *out = archive_write_disk_new();
	if (!in || !out)
		abort();
	archive_read_support_format_tar(in);
	archive_read_support_format_empty(in);
	archive_write_disk_set_options(out, ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM |
						ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR |
						ARCHIVE_EXTRACT_SECURE_NODOTDOT);
	if (archive_read_open(in, &rd, NULL, on_read, NULL) != ARCHIVE_OK) {
		ret = rd.err.code ? husk_error_move(err, &rd.err)
		      : rd.total == 0 && rd.in_eof
			  ? 0
			  : husk_error_set(err, EBADMSG, "read tar: %s", archive_error_string(in));
		if (ret < 0)
			goto out;
	} else {
		ret = extract(in, out, dest, &rd, ret_links ? &links : NULL, &root, err);
		if (ret < 0)
			goto out;
	}
	/* Directory times and modes are applied at close. */
	if (archive_write_close(out) < ARCHIVE_WARN) {
		int code = archive_errno(out) > 0 ? archive_errno(out) : EIO;
		ret = husk_error_set(err, code, "extract: %s", archive_error_string(out));
		goto out;
	}
	if (root) {
		ret = set_root(dest, root, err);
		if (ret < 0)
			goto out;
	}
	/* Tar padding after the end-of-archive blocks belongs to the diff ID
	 * too, and the producer must see its stream read to the end. */
	if (!rd.ended)
		for (;;) {
			ssize_t n = produce(&rd);
			if (n < 0) {
				ret = husk_error_move(err, &rd.err);
				goto out;
			}
			if (n == 0)
				break;
		}
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	EVP_DigestFinal_ex(rd.md, md, &n);
	char *id = xmalloc(7 + 2 * n + 1);
	strcpy(id, "sha256:");
	for (unsigned i = 0; i < n; i++)
		sprintf(id + 7 + 2 * i, "%02x", md[i]);
	*ret_diff_id = id;
	if (ret_size)
		*ret_size = rd.total;
	if (ret_links)
		*ret_links = steal_ptr(&links);
out:
	reader_clear(&rd);
	return ret;
}

/* ---- hard links to files of earlier layers ---- */

/* Times of directories to put back once the links are made: those that
 * existed (as they were) and those made here (as the lower layer has them). */
struct dir_times {
	char **paths;
	struct timespec *ts; /* two per path */
	size_t n;
};

static void dir_times_clear(struct dir_times *t)
{
	strv_free(t->paths);
	free(t->ts);
}

static void dir_times_note(struct dir_times *t, const char *path, const struct stat *st)
{
	for (size_t i = 0; i < t->n; i++)
		if (streq(t->paths[i], path))
			return;
	t->paths = strv_append(t->paths ? t->paths : xnew(char *, 1), path);
	t->ts = xrealloc(t->ts, (t->n + 1) * 2 * sizeof(*t->ts));
	t->ts[2 * t->n] = st->st_atim;
	t->ts[2 * t->n + 1] = st->st_mtim;
	t->n++;
}

static int copy_xattrs(int from, int to, const char *what, struct husk_error *err)
{
	ssize_t len = flistxattr(from, NULL, 0);
	if (len <= 0)
		return 0;
	_cleanup_free_ char *names = xmalloc((size_t)len);
	len = flistxattr(from, names, (size_t)len);
	for (ssize_t off = 0; off < len; off += (ssize_t)strlen(names + off) + 1) {
		const char *name = names + off;
		if (!img_xattr_kept(name))
			continue;
		ssize_t vlen = fgetxattr(from, name, NULL, 0);
		if (vlen < 0)
			continue;
		_cleanup_free_ unsigned char *v = xmalloc((size_t)vlen + 1);
		vlen = fgetxattr(from, name, v, (size_t)vlen);
		if (vlen < 0)
			continue;
		if (fsetxattr(to, name, v, (size_t)vlen, 0) < 0)
			return husk_error_errno(err, errno, "copy xattr '%s' of '%s'", name, what);
	}
	return 0;
}

/* Give the new inode at fd the owner, mode, xattrs and times of st/from
 * (the owner first: chown clears setuid bits and file capabilities). */
static int copy_meta(int from, int fd, const struct stat *st, const char *what,
		     struct husk_error *err)
{
	if (fchown(fd, st->st_uid, st->st_gid) < 0 || fchmod(fd, st->st_mode & 07777) < 0)
		return husk_error_errno(err, errno, "copy owner and mode of '%s'", what);
	int r = copy_xattrs(from, fd, what, err);
	if (r < 0)
		return r;
	struct timespec ts[2] = {st->st_atim, st->st_mtim};
	if (futimens(fd, ts) < 0)
		return husk_error_errno(err, errno, "copy times of '%s'", what);
	return 0;
}

/* Where rel is in the merged view of search (this layer first, then the
 * lower layers, top first): the index of the layer holding it, or -1 when
 * it is hidden or missing. Whiteouts, opaque directories and non-directories
 * on the way hide what lies below, as overlayfs reads them. */
static int find_in_layers(char *const *search, const char *rel)
{
	for (int i = 0; search[i]; i++) {
		bool opaque = false;
		_cleanup_free_ char *p = xasprintf("%s/%s", search[i], rel);
		size_t base = strlen(search[i]) + 1;
		bool missing = false;
		for (char *s = p + base; (s = strchr(s, '/')); s++) {
			*s = '\0';
			struct stat st;
			int r = lstat(p, &st);
			if (r == 0 && !S_ISDIR(st.st_mode)) {
				*s = '/';
				return -1;
			}
			char v = 0;
			if (r == 0 && lgetxattr(p, "trusted.overlay.opaque", &v, 1) == 1 &&
			    v == 'y')
				opaque = true;
			*s = '/';
			if (r < 0) {
				missing = true;
				break;
			}
		}
		struct stat st;
		if (!missing && lstat(p, &st) == 0)
			return is_whiteout_node(&st) ? -1 : i;
		if (opaque)
			return -1;
	}
	return -1;
}

/* Make the directory rel_dir (and its parents) in dest where missing, each
 * with the metadata the merged lower view has for it. */
static int copy_up_dirs(const char *dest, char *const *search, const char *rel_dir,
			struct dir_times *times, struct husk_error *err)
{
	_cleanup_free_ char *p = xasprintf("%s/%s/", dest, rel_dir);
	size_t base = strlen(dest) + 1;
	for (char *s = p + base; (s = strchr(s, '/')); s++) {
		*s = '\0';
		struct stat st;
		if (lstat(p, &st) == 0) {
			if (!S_ISDIR(st.st_mode)) {
				*s = '/';
				return husk_error_set(err, ENOTDIR, "'%s' is not a directory",
						      p + base);
			}
			dir_times_note(times, p, &st);
			*s = '/';
			continue;
		}
		int at = find_in_layers(search, p + base);
		_cleanup_free_ char *src = at > 0 ? xasprintf("%s/%s", search[at], p + base) : NULL;
		struct stat sst;
		_cleanup_close_ int sfd = -1;
		if (src) {
			sfd = open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd < 0 || fstat(sfd, &sst) < 0) {
				*s = '/';
				return husk_error_errno(err, errno, "open '%s'", src);
			}
		}
		if (mkdir(p, 0700) < 0) {
			*s = '/';
			return husk_error_errno(err, errno, "create '%s'", p + base);
		}
		if (sfd >= 0) {
			_cleanup_close_ int dfd =
			    open(p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int r = dfd < 0 ? husk_error_errno(err, errno, "open '%s'", p)
					: copy_meta(sfd, dfd, &sst, p + base, err);
			if (r < 0) {
				*s = '/';
				return r;
			}
			dir_times_note(times, p, &sst);
		} else {
			chmod(p, 0755);
		}
		*s = '/';
	}
	return 0;
}

/* The parent directories of rel (a path in the layer) made in dest as the
 * lower view has them; for a file at the layer root, dest's own times are
 * noted so that writing into it does not change them. */
static int copy_up_parents(const char *dest, char *const *search, const char *rel,
			   struct dir_times *times, struct husk_error *err)
{
	const char *slash = strrchr(rel, '/');
	if (slash) {
		_cleanup_free_ char *dir = xstrndup(rel, (size_t)(slash - rel));
		return copy_up_dirs(dest, search, dir, times, err);
	}
	struct stat st;
	if (lstat(dest, &st) == 0)
		dir_times_note(times, dest, &st);
	return 0;
}

static int copy_file(const char *src, const char *dst, const char *what, struct husk_error *err)
{
	_cleanup_close_ int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (in < 0 || fstat(in, &st) < 0)
		return husk_error_errno(err, errno, "open '%s'", src);
	if (!S_ISREG(st.st_mode))
		return husk_error_set(err, EPERM, "'%s' is not a regular file", what);
	_cleanup_close_ int out =
	    open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0)
		return husk_error_errno(err, errno, "create '%s'", dst);
	for (off_t left = st.st_size; left > 0;) {
		ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 &&
		    (errno == EXDEV || errno == EINVAL || errno == EOPNOTSUPP || errno == ENOSYS)) {
			char buf[65536];
			n = read(in, buf, sizeof(buf));
			if (n > 0 && write(out, buf, (size_t)n) != n)
				return husk_error_errno(err, errno ? errno : EIO, "write '%s'",
							dst);
		}
		if (n < 0)
			return husk_error_errno(err, errno, "copy '%s'", what);
		if (n == 0)
			return husk_error_set(err, EIO, "copy '%s': it shrank", what);
		left -= n;
	}
	return copy_meta(in, out, &st, what, err);
}

static int resolve_link(const char *dest, char *const *search, char *const *l,
			struct dir_times *times, struct husk_error *err)
{
	const char *member = l[0], *written = l[1], *rel = l[2], *lrel = l[3];
	_cleanup_free_ char *full = xasprintf("%s/%s", dest, rel);
	struct stat st;
	/* A later entry of the layer took the name: the later one wins. */
	if (lstat(full, &st) == 0)
		return 0;
	int r = check_parents(dest, rel, member, err);
	if (r == 0)
		r = check_parents(dest, lrel, member, err);
	if (r < 0)
		return r;
	int at = find_in_layers(search, lrel);
	if (at < 0)
		return husk_error_set(err, EBADMSG,
				      "hard link '%s' to '%s': no such file in the layer or "
				      "below",
				      member, written);
	_cleanup_free_ char *target = xasprintf("%s/%s", dest, lrel);
	if (at > 0) {
		/* A link to a lower file makes a copy of it in this layer
		 * first, as overlayfs copies a file up before linking it. */
		if (copy_up_parents(dest, search, lrel, times, err) < 0)
			return husk_error_prefix(err, "hard link '%s'", member);
		_cleanup_free_ char *src = xasprintf("%s/%s", search[at], lrel);
		r = copy_file(src, target, written, err);
		if (r < 0) {
			unlink(target);
			return husk_error_prefix(err, "hard link '%s'", member);
		}
	}
	if (copy_up_parents(dest, search, rel, times, err) < 0)
		return husk_error_prefix(err, "hard link '%s'", member);
	if (link(target, full) < 0)
		return husk_error_errno(err, errno, "hard link '%s' to '%s'", member, written);
	return 0;
}

int img_unpack_links(const char *dest, char *const *links, char *const *lowers,
		     struct husk_error *err)
{
	_cleanup_strv_ char **search = xnew(char *, 1);
	search = strv_append(search, dest);
	for (size_t i = 0; lowers && lowers[i]; i++)
		search = strv_append(search, lowers[i]);
	struct dir_times times = {0};
	struct stat st;
	if (lstat(dest, &st) == 0)
		dir_times_note(&times, dest, &st);
	int r = 0;
	for (size_t i = 0; links && links[i] && r == 0; i += 4)
		r = resolve_link(dest, search, links + i, &times, err);
	for (size_t i = 0; i < times.n; i++)
		utimensat(AT_FDCWD, times.paths[i], times.ts + 2 * i, AT_SYMLINK_NOFOLLOW);
	dir_times_clear(&times);
	return r;
}
