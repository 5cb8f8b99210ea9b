/* Localhost seccomp profiles, which pod specs point at
 * (lc_seccomp_parse), compiled with libseccomp as a container create
 * would (lc_seccomp_compile; nothing is installed). The first input byte
 * picks the bounding set the rule conditions are checked against; the
 * deprecated seccomp_profile_path form is parsed from the same text. */
#include "runtime/launcher/launcher.h"
#include "tests/fuzz/fuzz.h"

/* libseccomp 2.5.4 (Debian 12) leaks inside seccomp_rule_add_array when
 * rules for one syscall compare overlapping arguments (corpus
 * regress-libseccomp-leak; a plain libseccomp program shows it too). Not
 * husk's to fix: leave it out of the leak check. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libseccomp.so\n";
}

/* Compiling a big profile takes libseccomp long; parsing covers those. */
#define MAX_COMPILE (16u << 10)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t caps = fuzz_byte(&data, &size) & 1 ? ~UINT64_C(0) : LC_CAPS_DEFAULT;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	{
		_cleanup_free_ char *s = fuzz_str(data, size);
		int mode = -1;
		const char *path = NULL;
		if (lc_seccomp_parse_path(s, "seccomp_profile_path", &mode, &path, &err) == 0)
			FUZZ_CHECK(mode != LC_SECCOMP_LOCALHOST || (path && path[0] == '/'));
		husk_error_clear(&err);
		int m = lc_seccomp_mode_parse(s);
		FUZZ_CHECK(m < 0 || streq(lc_seccomp_mode_name(m), s));
	}

	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p = NULL;
	if (lc_seccomp_parse((const char *)data, size, "fuzz.json", &p, &err) < 0) {
		FUZZ_CHECK(err.code == EINVAL && err.msg);
		return 0;
	}
	FUZZ_CHECK(p->n_arches <= LC_SECCOMP_MAX_ARCHES && p->n_rules <= LC_SECCOMP_MAX_RULES);
	if (size > MAX_COMPILE)
		return 0;
	_cleanup_(lc_seccomp_bpf_freep) struct lc_seccomp_bpf *b = NULL;
	if (lc_seccomp_compile(p, caps, &b, &err) == 0)
		FUZZ_CHECK(b->len > 0 && b->insns);
	return 0;
}
