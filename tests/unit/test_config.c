/* Config loading: defaults, main file, drop-ins in order, flag precedence,
 * and errors that name the file and key. */
#include <errno.h>
#include <string.h>

#include "server/config.h"
#include "unit.h"

static struct srv_config *load(const char *dir, const struct srv_flags *extra,
			       struct husk_error *err)
{
	_cleanup_free_ char *main = xasprintf("%s/husk.json", dir);
	struct srv_flags f = extra ? *extra : (struct srv_flags){0};
	f.config = main;
	struct srv_config *c = NULL;
	if (srv_config_load(&f, &c, err) < 0)
		return NULL;
	return c;
}

static void test_defaults(void)
{
	char *d = unit_tmpdir();
	unit_write(d, "husk.json", "{}");
	struct husk_error err = HUSK_ERROR_INIT;
	struct srv_config *c = load(d, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->socket, "/run/husk/husk.sock");
	CU_ASSERT_STRING_EQUAL(c->root, "/var/lib/husk");
	CU_ASSERT_STRING_EQUAL(c->state, "/run/husk");
	CU_ASSERT_STRING_EQUAL(c->log_level, "info");
	/* "auto" stays as configured; what it resolves to is apart. */
	CU_ASSERT_STRING_EQUAL(c->cgroup_driver, "auto");
	CU_ASSERT(streq(c->cgroup_driver_used, "cgroupfs") ||
		  streq(c->cgroup_driver_used, "systemd"));
	_cleanup_free_ char *json = srv_config_to_json(c, false);
	CU_ASSERT(strstr(json, "\"cgroup_driver\":\"auto\"") != NULL);
	CU_ASSERT_EQUAL(strv_length(c->cni_bin_dirs), 2);
	srv_config_free(c);
	unit_rmdir(d);
}

static void test_missing_default_file_is_fine(void)
{
	/* Without --config a missing /etc/husk/husk.json gives the defaults;
	 * with --config a missing file is an error. */
	char *d = unit_tmpdir();
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_PTR_NULL(load(d, NULL, &err));
	CU_ASSERT_EQUAL(err.code, ENOENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "husk.json"));
	husk_error_clear(&err);
	unit_rmdir(d);
}

static void test_dropins_and_flags(void)
{
	char *d = unit_tmpdir();
	unit_write(d, "husk.json", "{\"root\": \"/a\", \"log_level\": \"warn\"}");
	_cleanup_free_ char *dd = xasprintf("%s/husk.d", d);
	fs_mkdir_p(dd, 0755, NULL);
	unit_write(dd, "20-z.json", "{\"root\": \"/z\", \"max_workers\": 8}");
	unit_write(dd, "10-a.json",
		   "{\"root\": \"/b\", \"state\": \"/s\", \"pinned_images\": [\"x\"]}");
	unit_write(dd, "notes.txt", "ignored");
	struct srv_flags f = {.socket = "/flag.sock", .cgroup_driver = "systemd"};
	struct husk_error err = HUSK_ERROR_INIT;
	struct srv_config *c = load(d, &f, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->root, "/z");
	CU_ASSERT_STRING_EQUAL(c->state, "/s");
	CU_ASSERT_STRING_EQUAL(c->log_level, "warn");
	CU_ASSERT_STRING_EQUAL(c->socket, "/flag.sock");
	CU_ASSERT_STRING_EQUAL(c->cgroup_driver, "systemd");
	CU_ASSERT_STRING_EQUAL(c->cgroup_driver_used, "systemd");
	CU_ASSERT_EQUAL(c->max_workers, 8);
	CU_ASSERT_EQUAL(strv_length(c->pinned_images), 1);
	srv_config_free(c);
	unit_rmdir(d);
}

static void test_registries(void)
{
	char *d = unit_tmpdir();
	unit_write(d, "husk.json",
		   "{\"registries\": {\"127.0.0.1:5000\": {\"insecure\": true,"
		   " \"mirrors\": [\"m1\", \"m2\"]}, \"docker.io\": {\"location\": \"l:1\"}}}");
	struct husk_error err = HUSK_ERROR_INIT;
	struct srv_config *c = load(d, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	const struct srv_registry *r = srv_config_registry(c, "127.0.0.1:5000");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT(r->insecure);
	CU_ASSERT_EQUAL(strv_length(r->mirrors), 2);
	CU_ASSERT_STRING_EQUAL(r->mirrors[1], "m2");
	r = srv_config_registry(c, "docker.io");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(r->location, "l:1");
	CU_ASSERT_FALSE(r->insecure);
	CU_ASSERT_PTR_NULL(srv_config_registry(c, "quay.io"));
	srv_config_free(c);
	unit_rmdir(d);
}

static void expect_error(const char *body, const char *const *words)
{
	char *d = unit_tmpdir();
	unit_write(d, "husk.json", body);
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_PTR_NULL(load(d, NULL, &err));
	CU_ASSERT_EQUAL(err.code, EINVAL);
	const char *m = husk_error_msg(&err);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, d)); /* names the file */
	for (size_t i = 0; words[i]; i++) {
		if (!strstr(m, words[i]))
			fprintf(stderr, "\n  missing '%s' in: %s\n", words[i], m);
		CU_ASSERT_PTR_NOT_NULL(strstr(m, words[i]));
	}
	husk_error_clear(&err);
	unit_rmdir(d);
}

static void test_errors(void)
{
	expect_error("{\"sockett\": \"/x\"}", (const char *[]){"unknown key 'sockett'", NULL});
	expect_error("{\"log_level\": 3}",
		     (const char *[]){"log_level", "expected a string", NULL});
	expect_error("{\"max_workers\": 1}", (const char *[]){"max_workers", "out of range", NULL});
	expect_error("{\"root\": \"rel\"}", (const char *[]){"root", "absolute", NULL});
	expect_error("{\"cni_bin_dirs\": [\"/ok\", 5]}",
		     (const char *[]){"cni_bin_dirs", "element 1", NULL});
	expect_error("{\"registries\": {\"a\": {\"bogus\": 1}}}",
		     (const char *[]){"registries", "bogus", NULL});
	expect_error("[1, 2]", (const char *[]){"top level", NULL});
	expect_error("{\"require_pod_network\": \"yes\"}",
		     (const char *[]){"require_pod_network", "expected a boolean", NULL});
	expect_error("{\"root\": ", (const char *[]){"parse", NULL});
	expect_error("{\"cgroup_driver\": \"lxc\"}",
		     (const char *[]){"cgroup_driver", "lxc", NULL});
}

static void test_bad_flag(void)
{
	char *d = unit_tmpdir();
	unit_write(d, "husk.json", "{}");
	struct srv_flags f = {.log_level = "loud"};
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_PTR_NULL(load(d, &f, &err));
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "--log_level"));
	husk_error_clear(&err);
	unit_rmdir(d);
}

static void test_to_json_round_trip(void)
{
	char *d = unit_tmpdir();
	unit_write(d, "husk.json",
		   "{\"registries\": {\"r:1\": {\"insecure\": true}}, \"pids_limit\": 4096}");
	struct husk_error err = HUSK_ERROR_INIT;
	struct srv_config *c = load(d, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	_cleanup_free_ char *json = srv_config_to_json(c, true);
	/* What `huskd config` prints is itself a valid config file. */
	unit_write(d, "husk.json", json);
	struct srv_config *c2 = load(d, NULL, &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	CU_ASSERT_EQUAL(c2->pids_limit, 4096);
	CU_ASSERT(srv_config_registry(c2, "r:1")->insecure);
	_cleanup_free_ char *json2 = srv_config_to_json(c2, true);
	CU_ASSERT_STRING_EQUAL(json, json2);
	srv_config_free(c);
	srv_config_free(c2);
	unit_rmdir(d);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"defaults", test_defaults},
	    {"missing named file", test_missing_default_file_is_fine},
	    {"drop-ins in order, flags win", test_dropins_and_flags},
	    {"registries", test_registries},
	    {"errors name file and key", test_errors},
	    {"bad flag", test_bad_flag},
	    {"printed config round-trips", test_to_json_round_trip},
	};
	return unit_run("config", tests, ARRAY_SIZE(tests));
}
