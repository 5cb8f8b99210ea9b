/* Layer unpack: decompress a gzip/zstd/plain tar stream, hash it (diff ID)
 * and extract it with libarchive into one layer directory, refusing entries
 * that would land outside it and turning whiteouts into overlayfs form. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <zlib.h>
#include <zstd.h>

#include "common/fs.h"
#include "image/internal.h"

#define IN_BUF (256u << 10)
#define OUT_BUF (256u << 10)
#define MAX_PATH_LEN 4096

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
	ssize_t n = produce(r);
	if (n < 0) {
		archive_set_error(a, r->err.code, "%s", husk_error_msg(&r->err));
		return -1;
	}
	*buf = r->out;
	return n;
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

/* Split a member name into clean components: no "", "." or "..", never
 * absolute. NULL with *why set when it is not acceptable. */
static char *clean_name(const char *name, const char **why)
{
	if (name[0] == '/') {
		*why = "absolute name";
		return NULL;
	}
	if (strlen(name) > MAX_PATH_LEN) {
		*why = "name too long";
		return NULL;
	}
	char *out = xmalloc(strlen(name) + 1);
	size_t o = 0;
	for (const char *p = name; *p;) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			free(out);
			*why = "'..' in name";
			return NULL;
		}
		if (n > 0 && !(n == 1 && p[0] == '.')) {
			if (o)
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		while (*p == '/')
			p++;
	}
	out[o] = '\0';
	return out;
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

static int extract(struct archive *in, struct archive *out, const char *dest, struct reader *rd,
		   struct husk_error *err)
{
	for (;;) {
		struct archive_entry *e;
		int r = archive_read_next_header(in, &e);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN) {
			if (rd->err.code)
				return husk_error_move(err, &rd->err);
			/* an empty stream is an empty layer */
			if (rd->total == 0 && rd->in_eof)
				return 0;
			return husk_error_set(err, EBADMSG, "read tar: %s",
					      archive_error_string(in));
		}
		_cleanup_free_ char *member =
		    xstrdup(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
		const char *why = NULL;
		_cleanup_free_ char *rel = clean_name(member, &why);
		if (!rel)
			return husk_error_set(
			    err, EPERM, "entry '%s' escapes the layer directory: %s", member, why);
		if (!*rel) /* the layer root itself */
			continue;
		int q = check_parents(dest, rel, member, err);
		if (q < 0)
			return q;
		const char *slash = strrchr(rel, '/');
		enum img_wh_kind wh = img_whiteout_kind(slash ? slash + 1 : rel, NULL);
		if (wh == IMG_WH_META)
			continue;
		if (wh != IMG_WH_NONE) {
			q = do_whiteout(dest, rel, wh, member, err);
			if (q < 0)
				return q;
			continue;
		}
		_cleanup_free_ char *full = xasprintf("%s/%s", dest, rel);
		const char *link = archive_entry_hardlink(e);
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
		if (archive_entry_size(e) > 0 && !link) {
			const void *buf;
			size_t len;
			la_int64_t off;
			while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
				if (archive_write_data_block(out, buf, len, off) < ARCHIVE_OK) {
					return write_error(err, out, member);
				}
			}
			if (r != ARCHIVE_EOF) {
				if (rd->err.code)
					return husk_error_move(err, &rd->err);
				return husk_error_set(err, EBADMSG, "read '%s': %s", member,
						      archive_error_string(in));
			}
		}
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

int img_unpack(int fd, const char *dest, uint64_t max_size, char **ret_diff_id, uint64_t *ret_size,
	       struct husk_error *err)
{
	struct reader rd = {.fd = fd, .max = max_size ? max_size : IMG_DEFAULT_MAX_LAYER_SIZE};
	rd.in = xmalloc(IN_BUF);
	rd.out = xmalloc(OUT_BUF);
	rd.md = EVP_MD_CTX_new();
	if (!rd.md)
		abort();
	EVP_DigestInit_ex(rd.md, EVP_sha256(), NULL);

	int ret = 0;
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
		ret = extract(in, out, dest, &rd, err);
		if (ret < 0)
			goto out;
	}
	/* Directory times and modes are applied at close. */
	if (archive_write_close(out) < ARCHIVE_WARN) {
		int code = archive_errno(out) > 0 ? archive_errno(out) : EIO;
		ret = husk_error_set(err, code, "extract: %s", archive_error_string(out));
		goto out;
	}
	/* Tar padding after the end-of-archive blocks belongs to the diff ID
	 * too, and the producer must see its stream read to the end. */
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
out:
	reader_clear(&rd);
	return ret;
}
