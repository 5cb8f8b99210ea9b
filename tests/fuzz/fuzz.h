/* Shared bits of the fuzz targets (tests/fuzz/fuzz_*.c): the libFuzzer
 * entry point, a check that aborts, and input helpers. Each target builds
 * twice: with clang and libFuzzer (make fuzz), and with $(CC) and driver.c
 * for the unit tier, which replays the seed corpora. */
#ifndef HUSK_TESTS_FUZZ_H
#define HUSK_TESTS_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fs.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property every input must keep: a failure aborts, which both libFuzzer
 * and the replay driver report as a crash. */
#define FUZZ_CHECK(cond)                                                                      \
	do {                                                                                  \
		if (!(cond)) {                                                                \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                       \
			abort();                                                              \
		}                                                                             \
	} while (0)

/* The input as a NUL-terminated string (caller frees). NULs inside stay,
 * so string functions see the part before the first one. */
static inline char *fuzz_str(const uint8_t *data, size_t size)
{
	char *s = xmalloc(size + 1);
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* Take the first byte of the input as a selector (0 when empty). */
static inline uint8_t fuzz_byte(const uint8_t **data, size_t *size)
{
	if (!*size)
		return 0;
	uint8_t b = **data;
	(*data)++;
	(*size)--;
	return b;
}

/* Cut the input at the first sep: *ret_len is the length before it, and
 * *data and *size move past it (to the end when sep is absent). */
static inline const uint8_t *fuzz_split(const uint8_t **data, size_t *size, const char *sep,
					size_t *ret_len)
{
	const uint8_t *start = *data;
	size_t sl = strlen(sep);
	const uint8_t *hit = *size >= sl ? memmem(*data, *size, sep, sl) : NULL;
	size_t n = hit ? (size_t)(hit - *data) : *size;
	*ret_len = n;
	*data += hit ? n + sl : n;
	*size -= hit ? n + sl : n;
	return start;
}

static void fuzz_tmpdir_remove(void) _unused_;
static char *fuzz_tmpdir_path _unused_;

/* A directory of this process in /dev/shm (else /tmp), made on first use
 * and removed at exit, for targets whose parser reads files. */
static inline const char *fuzz_tmpdir(void)
{
	if (!fuzz_tmpdir_path) {
		fuzz_tmpdir_path = xstrdup(fs_exists("/dev/shm") ? "/dev/shm/husk-fuzz-XXXXXX"
								 : "/tmp/husk-fuzz-XXXXXX");
		if (!mkdtemp(fuzz_tmpdir_path))
			abort();
		atexit(fuzz_tmpdir_remove);
	}
	return fuzz_tmpdir_path;
}

static void fuzz_tmpdir_remove(void)
{
	fs_rm_rf(fuzz_tmpdir_path, NULL);
	free(fuzz_tmpdir_path);
	fuzz_tmpdir_path = NULL;
}

/* Write data to path (replacing it); aborts on failure. */
static inline void fuzz_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0)
		abort();
}

#endif
