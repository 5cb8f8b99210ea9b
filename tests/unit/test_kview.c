/* CUnit tests of runtime/kview: capability masks decoded as `capsh
 * --decode` lists them, /proc/PID/status parsed (and refused when a field
 * the view needs is missing or malformed), seccomp modes, and the live view
 * of this very process compared with its own /proc. */
#include "runtime/kview.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/proc.h"
#include "unit.h"

static char *joined(char **v)
{
	char *s = xstrdup("");
	for (size_t i = 0; v[i]; i++) {
		char *n = xasprintf("%s%s%s", s, i ? "," : "", v[i]);
		free(s);
		s = n;
	}
	return s;
}

static void test_cap_names(void)
{
	/* capsh --decode=0x00000000a80425fb, upper-cased */
	_cleanup_strv_ char **def = ctr_kview_cap_names(UINT64_C(0x00000000a80425fb));
	_cleanup_free_ char *d = joined(def);
	CU_ASSERT_STRING_EQUAL(d, "CAP_CHOWN,CAP_DAC_OVERRIDE,CAP_FOWNER,CAP_FSETID,CAP_KILL,"
				  "CAP_SETGID,CAP_SETUID,CAP_SETPCAP,CAP_NET_BIND_SERVICE,"
				  "CAP_NET_RAW,CAP_SYS_CHROOT,CAP_MKNOD,CAP_AUDIT_WRITE,"
				  "CAP_SETFCAP");
	_cleanup_strv_ char **none = ctr_kview_cap_names(0);
	CU_ASSERT_PTR_NULL(none[0]);
	/* The highest named one, then bits without a name as numbers, as
	 * capsh prints them. */
	_cleanup_strv_ char **high =
	    ctr_kview_cap_names(UINT64_C(0x0000030000000000) | (UINT64_C(1) << 63) | 1);
	_cleanup_free_ char *h = joined(high);
	CU_ASSERT_STRING_EQUAL(h, "CAP_CHOWN,CAP_CHECKPOINT_RESTORE,41,63");
}

static const char status_text[] = "Name:\tsleep\n"
				  "Uid:\t1234\t1234\t1234\t1234\n"
				  "Gid:\t567\t567\t567\t568\n"
				  "Groups:\t88 99 \n"
				  "NoNewPrivs:\t1\n"
				  "Seccomp:\t2\n"
				  "Seccomp_filters:\t3\n"
				  "CapInh:\t0000000000000000\n"
				  "CapPrm:\t00000000a80425fb\n"
				  "CapEff:\t00000000a80425fb\n"
				  "CapBnd:\t000001ffffffffff\n"
				  "CapAmb:\t0000000000001000\n";

static void test_parse_status(void)
{
	struct ctr_kview_status s;
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(ctr_kview_parse_status(status_text, &s, &err), 0);
	CU_ASSERT_EQUAL(s.cap_inh, 0);
	CU_ASSERT_EQUAL(s.cap_eff, UINT64_C(0xa80425fb));
	CU_ASSERT_EQUAL(s.cap_bnd, UINT64_C(0x1ffffffffff));
	CU_ASSERT_EQUAL(s.cap_amb, UINT64_C(0x1000));
	CU_ASSERT_EQUAL(s.uid[0], 1234);
	CU_ASSERT_EQUAL(s.gid[3], 568);
	CU_ASSERT_EQUAL(s.n_groups, 2);
	CU_ASSERT_EQUAL(s.groups[1], 99);
	CU_ASSERT_EQUAL(s.no_new_privs, 1);
	CU_ASSERT_STRING_EQUAL(ctr_kview_seccomp_mode(s.seccomp), "filter");
	CU_ASSERT_EQUAL(s.seccomp_filters, 3);
	ctr_kview_status_clear(&s);
	ctr_kview_status_clear(&s); /* twice is fine */

	/* An older kernel without Seccomp_filters, no groups. */
	const char *old = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nSeccomp:\t0\n"
			  "CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\nCapAmb:\t0\n";
	CU_ASSERT_EQUAL_FATAL(ctr_kview_parse_status(old, &s, &err), 0);
	CU_ASSERT_EQUAL(s.seccomp_filters, -1);
	CU_ASSERT_EQUAL(s.no_new_privs, -1);
	CU_ASSERT_EQUAL(s.n_groups, 0);
	CU_ASSERT_STRING_EQUAL(ctr_kview_seccomp_mode(s.seccomp), "disabled");
	ctr_kview_status_clear(&s);
	CU_ASSERT_STRING_EQUAL(ctr_kview_seccomp_mode(1), "strict");
	CU_ASSERT_STRING_EQUAL(ctr_kview_seccomp_mode(7), "unknown");

	CU_ASSERT_EQUAL(ctr_kview_parse_status("Uid:\t0\t0\t0\t0\n", &s, &err), -EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "process status: no Cap* line");
	CU_ASSERT_EQUAL(ctr_kview_parse_status("CapInh:\t0\nCapPrm:\t0\nCapEff:\tzz\nCapBnd:\t0\n"
					       "CapAmb:\t0\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n",
					       &s, &err),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "process status: bad 'CapEff' line");
	CU_ASSERT_EQUAL(ctr_kview_parse_status("CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nCapBnd:\t0\n"
					       "CapAmb:\t0\nUid:\t0\t0\nGid:\t0\t0\t0\t0\n",
					       &s, &err),
			-EINVAL);
	CU_ASSERT_STRING_EQUAL(err.msg, "process status: bad 'Uid' line");
}

static void test_self_view(void)
{
	struct ctr_kview_refs refs;
	const char *pins[CTR_KVIEW_N_NS] = {[CTR_KVIEW_NS_NET] = "/proc/self/ns/net"};
	ctr_kview_refs_init(&refs, pins, 1);
	CU_ASSERT_NOT_EQUAL(refs.host[CTR_KVIEW_NS_MNT], 0);
	CU_ASSERT_EQUAL(refs.pod[CTR_KVIEW_NS_NET], refs.host[CTR_KVIEW_NS_NET]);
	unsigned long long start;
	CU_ASSERT_EQUAL_FATAL(proc_start_time(getpid(), &start, NULL), 0);
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *json = NULL;
	CU_ASSERT_EQUAL_FATAL(ctr_kview_process_json(getpid(), start, &refs, &json, &err), 0);
	_cleanup_json_ yajl_val t = NULL;
	CU_ASSERT_EQUAL_FATAL(json_parse(json, strlen(json), "view", &t, NULL), 0);
	CU_ASSERT_EQUAL(json_get_int(t, "pid", 0), getpid());
	yajl_val ns = json_get(t, "namespaces");
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(ns, "net"), "sharedWith"), "pod");
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(ns, "mnt"), "sharedWith"), "host");
	char link[64];
	ssize_t n = readlink("/proc/self/ns/mnt", link, sizeof(link) - 1);
	CU_ASSERT_FATAL(n > 0);
	link[n] = '\0';
	CU_ASSERT_STRING_EQUAL(json_get_string(json_get(ns, "mnt"), "link"), link);
	CU_ASSERT_STRING_EQUAL(json_get_string(t, "cgroupVersion"), "v1");
	/* The wrong start time: not this process any more. */
	_cleanup_free_ char *none = NULL;
	CU_ASSERT_EQUAL(ctr_kview_process_json(getpid(), start + 1, &refs, &none, &err), -ESRCH);
	CU_ASSERT_PTR_NULL(none);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"capability names as capsh", test_cap_names},
	    {"parse /proc/PID/status", test_parse_status},
	    {"view of this process", test_self_view},
	};
	return unit_run("kview", tests, ARRAY_SIZE(tests));
}
