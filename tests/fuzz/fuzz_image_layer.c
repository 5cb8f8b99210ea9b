/* Layer tars as a registry serves them (img_unpack, gzip/zstd/plain, then
 * img_unpack_links over a fixed lower layer): whatever the input, nothing
 * is written beside the layer directory or into the lower layer, and a
 * failure comes with a message. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "image/internal.h"
#include "tests/fuzz/fuzz.h"

/* base/lower (one file, lower/bin/tool), base/outside (empty) and a fresh
 * base/layer-N per input. */
static char *base;
static unsigned long runs;

static void cleanup(void)
{
	fs_rm_rf(base, NULL);
}

static void setup(void)
{
	if (base)
		return;
	base = xstrdup("/tmp/husk-fuzz-layer-XXXXXX");
	if (!mkdtemp(base))
		abort();
	atexit(cleanup);
	_cleanup_free_ char *bin = xasprintf("%s/lower/bin", base);
	_cleanup_free_ char *out = xasprintf("%s/outside", base);
	if (fs_mkdir_p(bin, 0755, NULL) < 0 || mkdir(out, 0755) < 0)
		abort();
	_cleanup_free_ char *tool = xasprintf("%s/lower/bin/tool", base);
	if (fs_write_atomic(tool, "tool\n", 5, 0755, NULL) < 0)
		abort();
}

/* Only the layer directories, lower and outside beside each other; outside
 * empty; the lower file with its one link. */
static void check_contained(void)
{
	DIR *d = opendir(base);
	FUZZ_CHECK(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *n = e->d_name;
		FUZZ_CHECK(streq(n, ".") || streq(n, "..") || streq(n, "lower") ||
			   streq(n, "outside") || startswith(n, "layer-"));
	}
	closedir(d);
	_cleanup_free_ char *out = xasprintf("%s/outside", base);
	d = opendir(out);
	FUZZ_CHECK(d);
	size_t n = 0;
	while ((e = readdir(d)))
		n++;
	closedir(d);
	FUZZ_CHECK(n == 2);
	_cleanup_free_ char *tool = xasprintf("%s/lower/bin/tool", base);
	struct stat st;
	FUZZ_CHECK(lstat(tool, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		   st.st_size == 5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	_cleanup_free_ char *layer = xasprintf("%s/layer-%lu", base, runs++);
	if (mkdir(layer, 0755) < 0)
		abort();
	_cleanup_close_ int fd = memfd_create("layer", MFD_CLOEXEC);
	if (fd < 0)
		abort();
	for (size_t off = 0; off < size;) {
		ssize_t n = write(fd, data + off, size - off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	lseek(fd, 0, SEEK_SET);
	_cleanup_free_ char *diff = NULL;
	_cleanup_strv_ char **links = NULL;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int r = img_unpack(fd, layer, 8u << 20, &links, &diff, NULL, &err);
	if (r == 0) {
		FUZZ_CHECK(img_digest_valid(diff));
		FUZZ_CHECK(strv_length(links) % 4 == 0);
		_cleanup_free_ char *lower = xasprintf("%s/lower", base);
		char *lowers[] = {lower, NULL};
		r = img_unpack_links(layer, links, lowers, &err);
	}
	if (r < 0)
		FUZZ_CHECK(err.msg && r == -err.code);
	check_contained();
	/* A directory an entry made 0000 does not stop root's removal; as
	 * another user it may stay behind (under its own layer-N name). */
	fs_rm_rf(layer, NULL);
	return 0;
}
