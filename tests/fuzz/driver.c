/* main() of the fuzz targets built without libFuzzer, for the unit tier:
 * runs LLVMFuzzerTestOneInput once on every file named on the command line
 * and on every file in the directories named, so the seed corpora (and the
 * regressions fuzzing found) are checked on every `make check`. */
#include <errno.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

/* Each input in a buffer of exactly its size, as libFuzzer hands it over,
 * so a sanitizer build catches reads past its end. */
static int run_file(const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	struct husk_error e = HUSK_ERROR_INIT;
	if (fs_read_file(path, 64u << 20, &text, &len, &e) < 0) {
		fprintf(stderr, "%s: %s\n", path, husk_error_msg(&e));
		husk_error_clear(&e);
		return -1;
	}
	uint8_t *copy = xmalloc(len ? len : 1);
	memcpy(copy, text, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	return 0;
}

int main(int argc, char **argv)
{
	size_t n = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			return 1;
		}
		if (!S_ISDIR(st.st_mode)) {
			if (run_file(argv[i]) < 0)
				return 1;
			n++;
			continue;
		}
		_cleanup_strv_ char **names = NULL;
		struct husk_error e = HUSK_ERROR_INIT;
		if (fs_list_dir(argv[i], NULL, &names, &e) < 0) {
			fprintf(stderr, "%s: %s\n", argv[i], husk_error_msg(&e));
			husk_error_clear(&e);
			return 1;
		}
		for (size_t k = 0; names[k]; k++) {
			_cleanup_free_ char *p = xasprintf("%s/%s", argv[i], names[k]);
			if (run_file(p) < 0)
				return 1;
			n++;
		}
	}
	printf("  %zu inputs ok\n", n);
	return 0;
}
