/* Shared bits for the CUnit programs: temp directories and a runner. */
#ifndef HUSK_TESTS_UNIT_H
#define HUSK_TESTS_UNIT_H

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/fs.h"
#include "common/util.h"

/* A fresh directory under /tmp; removed with unit_rmdir. */
static inline char *unit_tmpdir(void)
{
	char *t = xstrdup("/tmp/husk-unit-XXXXXX");
	if (!mkdtemp(t))
		abort();
	return t;
}

static inline void unit_rmdir(char *dir)
{
	fs_rm_rf(dir, NULL);
	free(dir);
}

static inline void unit_write(const char *dir, const char *name, const char *text)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

struct unit_test {
	const char *name;
	void (*fn)(void);
};

/* Run one suite of tests; returns the process exit status. */
static inline int unit_run(const char *suite, const struct unit_test *tests, size_t n)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite s = CU_add_suite(suite, NULL, NULL);
	for (size_t i = 0; i < n; i++)
		CU_add_test(s, tests[i].name, tests[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#endif
