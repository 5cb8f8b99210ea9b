/* Pod and container records: round trips through the files, atomic writes
 * and crash leftovers, id prefixes, name conflicts, filters, corrupt files,
 * limits and concurrent use. No root needed. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/state/state.h"
#include "unit.h"

static struct state_store *open_store(const char *dir, char ***problems)
{
	struct husk_error err = HUSK_ERROR_INIT;
	struct state_store *s = NULL;
	char **p = NULL;
	int r = state_store_open(dir, NULL, &s, &p, &err);
	if (r < 0)
		printf("\n    open: %s", husk_error_msg(&err));
	CU_ASSERT_EQUAL(r, 0);
	husk_error_clear(&err);
	if (problems)
		*problems = p;
	else
		strv_free(p);
	return s;
}

static void fill_pod(struct pod_record *p, const char *id, const char *name)
{
	*p = (struct pod_record){0};
	p->id = xstrdup(id);
	p->name = xstrdup(name);
	p->uid = xstrdup("uid-1");
	p->namespace = xstrdup("default");
}

static void fill_ctr(struct ctr_record *c, const char *id, const char *pod_id, const char *name)
{
	*c = (struct ctr_record){0};
	c->id = xstrdup(id);
	c->pod_id = xstrdup(pod_id);
	c->name = xstrdup(name);
}

static void add_pod(struct state_store *s, const char *id, const char *name)
{
	struct pod_record p;
	fill_pod(&p, id, name);
	struct husk_error err = HUSK_ERROR_INIT;
	int r = state_pod_add(s, &p, &err);
	if (r < 0)
		printf("\n    add pod: %s", husk_error_msg(&err));
	CU_ASSERT_EQUAL(r, 0);
	husk_error_clear(&err);
	pod_record_clear(&p);
}

static void add_ctr(struct state_store *s, const char *id, const char *pod_id, const char *name)
{
	struct ctr_record c;
	fill_ctr(&c, id, pod_id, name);
	struct husk_error err = HUSK_ERROR_INIT;
	int r = state_ctr_add(s, &c, &err);
	if (r < 0)
		printf("\n    add container: %s", husk_error_msg(&err));
	CU_ASSERT_EQUAL(r, 0);
	husk_error_clear(&err);
	ctr_record_clear(&c);
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || streq(a, b);
}

static char **dir_names(const char *dir)
{
	char **names = NULL;
	fs_list_dir(dir, NULL, &names, NULL);
	return names;
}

/* ---- round trips ------------------------------------------------------------ */

static struct pod_record *full_pod(const char *id)
{
	struct pod_record *p = xnew(struct pod_record, 1);
	fill_pod(p, id, "web");
	p->attempt = 3;
	p->state = POD_STATE_READY;
	p->created_at = 1700000000123456789LL;
	state_map_set(&p->labels, "app", "web");
	state_map_set(&p->labels, "tier", "frontend \"quoted\"\n\ttabbed");
	state_map_set(&p->annotations, "note", "h\xc3\xa9llo \xe2\x9c\x93");
	state_map_set(&p->annotations, "empty", "");
	p->runtime_handler = xstrdup("");
	p->hostname = xstrdup("web-0");
	p->log_directory = xstrdup("/var/log/pods/default_web_uid-1");
	p->cgroup_parent = xstrdup("/kubepods/burstable/poduid-1");
	p->sandbox = (struct pod_sandbox_info){
	    .id = xstrdup(id),
	    .dir = xasprintf("/run/husk/pods/%s", id),
	    .net_ns = xstrdup("/run/husk/pods/x/ns/net"),
	    .ipc_ns = xstrdup("/run/husk/pods/x/ns/ipc"),
	    .uts_ns = NULL,
	    .pid_ns = xstrdup("/run/husk/pods/x/ns/pid"),
	    .shm = xstrdup("/run/husk/pods/x/shm"),
	    .hostname = xstrdup("web-0"),
	    .hostname_file = xstrdup("/h"),
	    .hosts_file = xstrdup("/hs"),
	    .resolv_file = xstrdup("/r"),
	    .net = POD_NS_POD,
	    .ipc = POD_NS_POD,
	    .uts = POD_NS_NODE,
	    .pid = POD_NS_POD,
	    .init_pid = 4242,
	    .init_start_time = 987654321ULL,
	    .userns = true,
	    .user_ns = xstrdup("/run/husk/pods/x/ns/user"),
	};
	/* Two uid ranges (the kernel takes up to 340), one gid range. */
	p->sandbox.uid_map = xnew(struct pod_idmap, 2);
	p->sandbox.uid_map[0] = (struct pod_idmap){0, 1 << 20, 1000};
	p->sandbox.uid_map[1] = (struct pod_idmap){1000, (1 << 20) + 5000, 64536};
	p->sandbox.n_uid_map = 2;
	p->sandbox.gid_map = xnew(struct pod_idmap, 1);
	p->sandbox.gid_map[0] = (struct pod_idmap){0, 4294901760U, 65535};
	p->sandbox.n_gid_map = 1;
	p->ips = strv_append(strv_append(xnew(char *, 1), "10.0.0.5"), "fd00::5");
	p->cgroup.path = xstrdup("/husk/pod-1");
	p->cgroup.hiers = xnew(struct state_cgroup_hier, 2);
	p->cgroup.hiers[0] = (struct state_cgroup_hier){xstrdup("memory"), 2};
	p->cgroup.hiers[1] = (struct state_cgroup_hier){xstrdup("unified"), 1};
	p->cgroup.n_hiers = 2;
	p->privileged = true;
	return p;
}

static void assert_cgroup_eq(const struct state_cgroup *a, const struct state_cgroup *b)
{
	CU_ASSERT(str_eq(a->path, b->path));
	CU_ASSERT_EQUAL_FATAL(a->n_hiers, b->n_hiers);
	for (size_t i = 0; i < a->n_hiers; i++) {
		CU_ASSERT(str_eq(a->hiers[i].name, b->hiers[i].name));
		CU_ASSERT_EQUAL(a->hiers[i].created, b->hiers[i].created);
	}
}

static void assert_pod_eq(const struct pod_record *a, const struct pod_record *b)
{
	CU_ASSERT_STRING_EQUAL(a->id, b->id);
	CU_ASSERT(str_eq(a->name, b->name));
	CU_ASSERT(str_eq(a->uid, b->uid));
	CU_ASSERT(str_eq(a->namespace, b->namespace));
	CU_ASSERT_EQUAL(a->attempt, b->attempt);
	CU_ASSERT_EQUAL(a->state, b->state);
	CU_ASSERT_EQUAL(a->created_at, b->created_at);
	CU_ASSERT_EQUAL(a->labels.n, b->labels.n);
	CU_ASSERT(state_map_match(&a->labels, &b->labels));
	CU_ASSERT_EQUAL(a->annotations.n, b->annotations.n);
	CU_ASSERT(state_map_match(&a->annotations, &b->annotations));
	CU_ASSERT(str_eq(a->runtime_handler, b->runtime_handler));
	CU_ASSERT(str_eq(a->hostname, b->hostname));
	CU_ASSERT(str_eq(a->log_directory, b->log_directory));
	CU_ASSERT(str_eq(a->cgroup_parent, b->cgroup_parent));
	const struct pod_sandbox_info *x = &a->sandbox, *y = &b->sandbox;
	CU_ASSERT(str_eq(x->id, y->id));
	CU_ASSERT(str_eq(x->dir, y->dir));
	CU_ASSERT(str_eq(x->net_ns, y->net_ns));
	CU_ASSERT(str_eq(x->ipc_ns, y->ipc_ns));
	CU_ASSERT(str_eq(x->uts_ns, y->uts_ns));
	CU_ASSERT(str_eq(x->pid_ns, y->pid_ns));
	CU_ASSERT(str_eq(x->shm, y->shm));
	CU_ASSERT(str_eq(x->hostname, y->hostname));
	CU_ASSERT(str_eq(x->hostname_file, y->hostname_file));
	CU_ASSERT(str_eq(x->hosts_file, y->hosts_file));
	CU_ASSERT(str_eq(x->resolv_file, y->resolv_file));
	CU_ASSERT_EQUAL(x->net, y->net);
	CU_ASSERT_EQUAL(x->ipc, y->ipc);
	CU_ASSERT_EQUAL(x->uts, y->uts);
	CU_ASSERT_EQUAL(x->pid, y->pid);
	CU_ASSERT_EQUAL(x->init_pid, y->init_pid);
	CU_ASSERT_EQUAL(x->init_start_time, y->init_start_time);
	CU_ASSERT(str_eq(x->user_ns, y->user_ns));
	CU_ASSERT_EQUAL(x->userns, y->userns);
	CU_ASSERT_EQUAL_FATAL(x->n_uid_map, y->n_uid_map);
	CU_ASSERT_EQUAL_FATAL(x->n_gid_map, y->n_gid_map);
	for (size_t i = 0; i < x->n_uid_map; i++)
		CU_ASSERT(memcmp(&x->uid_map[i], &y->uid_map[i], sizeof(x->uid_map[i])) == 0);
	for (size_t i = 0; i < x->n_gid_map; i++)
		CU_ASSERT(memcmp(&x->gid_map[i], &y->gid_map[i], sizeof(x->gid_map[i])) == 0);
	CU_ASSERT_EQUAL(strv_length(a->ips), strv_length(b->ips));
	for (size_t i = 0; a->ips && b->ips && a->ips[i]; i++)
		CU_ASSERT(str_eq(a->ips[i], b->ips[i]));
	assert_cgroup_eq(&a->cgroup, &b->cgroup);
	CU_ASSERT_EQUAL(a->privileged, b->privileged);
}

static void test_pod_round_trip(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	_cleanup_free_ char *id = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(state_new_id(s, &id, &err), 0);
	struct pod_record *p = full_pod(id);
	CU_ASSERT_EQUAL(state_pod_add(s, p, &err), 0);

	struct pod_record *got = NULL;
	CU_ASSERT_EQUAL_FATAL(state_pod_get(s, id, &got, &err), 0);
	assert_pod_eq(p, got);
	pod_record_free(got);
	state_store_free(s);

	/* A new store on the same files: what a restarted huskd sees. */
	char **problems = NULL;
	s = open_store(dir, &problems);
	CU_ASSERT_EQUAL(strv_length(problems), 0);
	strv_free(problems);
	got = NULL;
	CU_ASSERT_EQUAL_FATAL(state_pod_get(s, id, &got, &err), 0);
	assert_pod_eq(p, got);
	CU_ASSERT_PTR_NULL(got->sandbox.uts_ns);
	CU_ASSERT_STRING_EQUAL(got->runtime_handler, "");
	pod_record_free(got);

	/* The record file is owner-only and alone in its directory. */
	_cleanup_free_ char *pods = xasprintf("%s/pods", dir);
	_cleanup_strv_ char **names = dir_names(pods);
	CU_ASSERT_EQUAL(strv_length(names), 1);
	_cleanup_free_ char *want = xasprintf("%s.json", id);
	CU_ASSERT_STRING_EQUAL(names[0], want);
	_cleanup_free_ char *path = xasprintf("%s/%s", pods, want);
	struct stat st;
	CU_ASSERT_EQUAL(stat(path, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);

	pod_record_free(p);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

static void test_ctr_round_trip(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	add_pod(s, "pod1", "web");
	struct ctr_record c;
	fill_ctr(&c, "c1", "pod1", "nginx");
	c.attempt = 2;
	c.image = xstrdup("docker.io/library/nginx:1.25");
	c.image_id = xstrdup("sha256:abcd");
	c.image_ref = xstrdup("docker.io/library/nginx@sha256:ef01");
	c.state = CTR_STATE_EXITED;
	c.created_at = 10;
	c.started_at = 20;
	c.finished_at = 30;
	c.exit_code = 137;
	c.reason = xstrdup("OOMKilled");
	c.message = xstrdup("memory limit \"64Mi\" reached");
	c.pid = 777;
	c.pid_start_time = 123456;
	state_map_set(&c.labels, "io.kubernetes.container.name", "nginx");
	state_map_set(&c.annotations, "a", "b");
	c.log_path = xstrdup("/var/log/pods/x/nginx/2.log");
	c.rootfs = xstrdup("/var/lib/husk/snapshots/c1/rootfs");
	c.n_mounts = 2;
	c.mounts = xnew(struct ctr_record_mount, 2);
	c.mounts[0] =
	    (struct ctr_record_mount){.container_path = xstrdup("/data"),
				      .host_path = xstrdup("/srv/data"),
				      .readonly = true,
				      .propagation = CTR_RECORD_PROPAGATION_HOST_TO_CONTAINER};
	c.mounts[1] =
	    (struct ctr_record_mount){.container_path = xstrdup("/cache"),
				      .host_path = xstrdup("/srv/cache"),
				      .selinux_relabel = true,
				      .recursive_read_only = true,
				      .propagation = CTR_RECORD_PROPAGATION_BIDIRECTIONAL};
	c.spec_json = xstrdup("{\"process\":{\"args\":[\"nginx\",\"-g\",\"daemon off;\"],"
			      "\"env\":[\"A=1\"]},\"big\":12345678901234}");
	c.stop_signal = 3;
	c.cgroup.path = xstrdup("/husk/pod-1/c1");
	c.cgroup.hiers = xnew(struct state_cgroup_hier, 1);
	c.cgroup.hiers[0] = (struct state_cgroup_hier){xstrdup("unified"), 1};
	c.cgroup.n_hiers = 1;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(state_ctr_add(s, &c, &err), 0);
	state_store_free(s);

	s = open_store(dir, NULL);
	struct ctr_record *g = NULL;
	CU_ASSERT_EQUAL_FATAL(state_ctr_get(s, "c1", &g, &err), 0);
	CU_ASSERT_STRING_EQUAL(g->pod_id, "pod1");
	CU_ASSERT_STRING_EQUAL(g->name, "nginx");
	CU_ASSERT_EQUAL(g->attempt, 2);
	CU_ASSERT_STRING_EQUAL(g->image, c.image);
	CU_ASSERT_STRING_EQUAL(g->image_id, c.image_id);
	CU_ASSERT_STRING_EQUAL(g->image_ref, c.image_ref);
	CU_ASSERT_EQUAL(g->state, CTR_STATE_EXITED);
	CU_ASSERT_EQUAL(g->created_at, 10);
	CU_ASSERT_EQUAL(g->started_at, 20);
	CU_ASSERT_EQUAL(g->finished_at, 30);
	CU_ASSERT_EQUAL(g->exit_code, 137);
	CU_ASSERT_STRING_EQUAL(g->reason, "OOMKilled");
	CU_ASSERT_STRING_EQUAL(g->message, c.message);
	CU_ASSERT_EQUAL(g->pid, 777);
	CU_ASSERT_EQUAL(g->pid_start_time, 123456);
	CU_ASSERT_STRING_EQUAL(state_map_get(&g->labels, "io.kubernetes.container.name"), "nginx");
	CU_ASSERT_STRING_EQUAL(state_map_get(&g->annotations, "a"), "b");
	CU_ASSERT_STRING_EQUAL(g->log_path, c.log_path);
	CU_ASSERT_STRING_EQUAL(g->rootfs, c.rootfs);
	CU_ASSERT_EQUAL_FATAL(g->n_mounts, 2);
	CU_ASSERT_STRING_EQUAL(g->mounts[0].container_path, "/data");
	CU_ASSERT_STRING_EQUAL(g->mounts[0].host_path, "/srv/data");
	CU_ASSERT_TRUE(g->mounts[0].readonly);
	CU_ASSERT_FALSE(g->mounts[0].selinux_relabel);
	CU_ASSERT_EQUAL(g->mounts[0].propagation, CTR_RECORD_PROPAGATION_HOST_TO_CONTAINER);
	CU_ASSERT_TRUE(g->mounts[1].selinux_relabel);
	CU_ASSERT_TRUE(g->mounts[1].recursive_read_only);
	CU_ASSERT_EQUAL(g->mounts[1].propagation, CTR_RECORD_PROPAGATION_BIDIRECTIONAL);
	CU_ASSERT_STRING_EQUAL(g->spec_json, c.spec_json);
	CU_ASSERT_EQUAL(g->stop_signal, 3);
	assert_cgroup_eq(&g->cgroup, &c.cgroup);
	ctr_record_free(g);
	ctr_record_clear(&c);
	ctr_record_clear(&c);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* ---- atomicity ----------------------------------------------------------------- */

static int set_state_notready(struct pod_record *p, void *data _unused_,
			      struct husk_error *err _unused_)
{
	p->state = POD_STATE_NOTREADY;
	return 0;
}

static void test_atomic_writes(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	struct pod_record *p = full_pod("podA");
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL(state_pod_add(s, p, &err), 0);
	_cleanup_free_ char *path = xasprintf("%s/pods/podA.json", dir);
	_cleanup_free_ char *before = NULL;
	CU_ASSERT_EQUAL(fs_read_file(path, 1 << 20, &before, NULL, &err), 0);

	/* A write that cannot complete (its temp file name is taken by a
	 * directory) changes neither the file nor the index. */
	_cleanup_free_ char *blocker =
	    xasprintf("%s.tmp.%d.%d", path, (int)getpid(), (int)gettid());
	CU_ASSERT_EQUAL(mkdir(blocker, 0700), 0);
	CU_ASSERT(state_pod_modify(s, "podA", set_state_notready, NULL, &err) < 0);
	_cleanup_free_ char *after = NULL;
	CU_ASSERT_EQUAL(fs_read_file(path, 1 << 20, &after, NULL, &err), 0);
	CU_ASSERT_STRING_EQUAL(before, after);
	struct pod_record *got = NULL;
	CU_ASSERT_EQUAL(state_pod_get(s, "podA", &got, &err), 0);
	CU_ASSERT_EQUAL(got->state, POD_STATE_READY);
	pod_record_free(got);
	CU_ASSERT_EQUAL(rmdir(blocker), 0);

	CU_ASSERT_EQUAL(state_pod_modify(s, "podA", set_state_notready, NULL, &err), 0);
	state_store_free(s);

	/* What a crash mid-write leaves: temp files with partial content. */
	_cleanup_free_ char *pods = xasprintf("%s/pods", dir);
	_cleanup_free_ char *ctrs = xasprintf("%s/containers", dir);
	unit_write(pods, "podA.json.tmp.99999", "{\"version\": 1, \"id\": \"po");
	unit_write(pods, "podB.json.tmp.12", "");
	unit_write(ctrs, "c9.json.tmp.5", "{");
	char **problems = NULL;
	s = open_store(dir, &problems);
	CU_ASSERT_EQUAL(strv_length(problems), 0);
	strv_free(problems);
	_cleanup_strv_ char **pod_names = dir_names(pods);
	_cleanup_strv_ char **ctr_names = dir_names(ctrs);
	CU_ASSERT_EQUAL(strv_length(pod_names), 1);
	CU_ASSERT_STRING_EQUAL(pod_names[0], "podA.json");
	CU_ASSERT_EQUAL(strv_length(ctr_names), 0);
	got = NULL;
	CU_ASSERT_EQUAL(state_pod_get(s, "podA", &got, &err), 0);
	CU_ASSERT_EQUAL(got->state, POD_STATE_NOTREADY);
	pod_record_free(got);
	pod_record_free(p);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* ---- lookups ------------------------------------------------------------------- */

static void test_prefix_lookup(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	add_pod(s, "abc111", "a");
	add_pod(s, "abc222", "b");
	add_pod(s, "abd333", "c");
	add_pod(s, "ff", "d");
	add_pod(s, "ff00", "e");
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_record *p = NULL;

	CU_ASSERT_EQUAL(state_pod_get(s, "abc", &p, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'abc'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "more than one"));
	CU_ASSERT_EQUAL(state_pod_get(s, "a", &p, &err), -EINVAL);
	CU_ASSERT_EQUAL(state_pod_get(s, "", &p, &err), -EINVAL);
	CU_ASSERT_EQUAL(state_pod_get(s, "zz", &p, &err), -ENOENT);
	CU_ASSERT_EQUAL(state_pod_get(s, "abc1111", &p, &err), -ENOENT);
	CU_ASSERT_EQUAL(state_pod_get(s, "abc1", &p, &err), 0);
	CU_ASSERT_STRING_EQUAL(p->id, "abc111");
	pod_record_free(p);
	CU_ASSERT_EQUAL(state_pod_get(s, "abd", &p, &err), 0);
	CU_ASSERT_STRING_EQUAL(p->id, "abd333");
	pod_record_free(p);
	/* A full id wins over the longer ids it prefixes. */
	CU_ASSERT_EQUAL(state_pod_get(s, "ff", &p, &err), 0);
	CU_ASSERT_STRING_EQUAL(p->id, "ff");
	pod_record_free(p);
	CU_ASSERT_EQUAL(state_pod_get(s, "ff0", &p, &err), 0);
	CU_ASSERT_STRING_EQUAL(p->id, "ff00");
	pod_record_free(p);

	add_ctr(s, "c0ffee", "abc111", "x");
	add_ctr(s, "c0ffef", "abc111", "y");
	struct ctr_record *c = NULL;
	CU_ASSERT_EQUAL(state_ctr_get(s, "c0ff", &c, &err), -EINVAL);
	CU_ASSERT_EQUAL(state_ctr_get(s, "c0ffee", &c, &err), 0);
	CU_ASSERT_STRING_EQUAL(c->name, "x");
	ctr_record_free(c);
	CU_ASSERT_EQUAL(state_ctr_get(s, "abc111", &c, &err), -ENOENT);

	/* Writes take full ids only. */
	CU_ASSERT_EQUAL(state_pod_remove(s, "abd", &err), -ENOENT);
	CU_ASSERT_EQUAL(state_ctr_remove(s, "c0ffe", &err), -ENOENT);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

static void test_ids(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
	CU_ASSERT_EQUAL(state_new_id(s, &a, &err), 0);
	CU_ASSERT_EQUAL(state_new_id(s, &b, &err), 0);
	CU_ASSERT_EQUAL(state_new_id(NULL, &c, &err), 0);
	CU_ASSERT_EQUAL(strlen(a), STATE_ID_LEN);
	CU_ASSERT_EQUAL(strspn(a, "0123456789abcdef"), STATE_ID_LEN);
	CU_ASSERT_STRING_NOT_EQUAL(a, b);
	CU_ASSERT_STRING_NOT_EQUAL(b, c);
	state_store_free(s);
	unit_rmdir(dir);
}

static void test_name_conflicts(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	struct husk_error err = HUSK_ERROR_INIT;
	add_pod(s, "first", "web");

	struct pod_record p;
	fill_pod(&p, "second", "web");
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'first'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'web'"));
	_cleanup_free_ char *file = xasprintf("%s/pods/second.json", dir);
	CU_ASSERT_FALSE(fs_exists(file));
	p.attempt = 1; /* the next attempt is another name */
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
	pod_record_clear(&p);
	fill_pod(&p, "third", "web");
	free(p.namespace);
	p.namespace = xstrdup("other");
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
	pod_record_clear(&p);
	fill_pod(&p, "first", "db"); /* the id itself is taken */
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EEXIST);
	pod_record_clear(&p);

	/* Renaming onto a taken name fails too. */
	struct pod_record *t = NULL;
	CU_ASSERT_EQUAL(state_pod_get(s, "third", &t, &err), 0);
	free(t->namespace);
	t->namespace = xstrdup("default");
	CU_ASSERT_EQUAL(state_pod_update(s, t, &err), -EEXIST);
	pod_record_free(t);

	struct pod_record *f = NULL;
	CU_ASSERT_EQUAL(state_pod_find(s, "web", "default", "uid-1", 1, &f, &err), 0);
	CU_ASSERT_STRING_EQUAL(f->id, "second");
	pod_record_free(f);
	CU_ASSERT_EQUAL(state_pod_find(s, "web", "default", "uid-1", 7, &f, &err), -ENOENT);

	/* Containers: unique per pod, name and attempt. */
	add_ctr(s, "c1", "first", "app");
	struct ctr_record c;
	fill_ctr(&c, "c2", "first", "app");
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), -EEXIST);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "'c1'"));
	c.attempt = 1;
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), 0);
	ctr_record_clear(&c);
	add_ctr(s, "c3", "second", "app");
	fill_ctr(&c, "c4", "nosuchpod", "app");
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), -ENOENT);
	ctr_record_clear(&c);
	struct ctr_record *fc = NULL;
	CU_ASSERT_EQUAL(state_ctr_find(s, "first", "app", 1, &fc, &err), 0);
	CU_ASSERT_STRING_EQUAL(fc->id, "c2");
	ctr_record_free(fc);

	/* Removal frees the name. */
	CU_ASSERT_EQUAL(state_pod_remove(s, "first", &err), -EBUSY);
	CU_ASSERT_EQUAL(state_ctr_remove(s, "c1", &err), 0);
	CU_ASSERT_EQUAL(state_ctr_remove(s, "c1", &err), -ENOENT);
	CU_ASSERT_EQUAL(state_ctr_remove(s, "c2", &err), 0);
	CU_ASSERT_EQUAL(state_pod_remove(s, "first", &err), 0);
	CU_ASSERT_EQUAL(state_pod_remove(s, "first", &err), -ENOENT);
	_cleanup_free_ char *gone = xasprintf("%s/pods/first.json", dir);
	CU_ASSERT_FALSE(fs_exists(gone));
	fill_pod(&p, "fourth", "web");
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
	pod_record_clear(&p);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

static void test_filters(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	struct husk_error err = HUSK_ERROR_INIT;
	const char *ids[] = {"p3", "p1", "p2"};
	for (int i = 0; i < 3; i++) {
		struct pod_record p;
		fill_pod(&p, ids[i], ids[i]);
		p.created_at = 100 - i; /* p2 is the oldest */
		p.state = i == 1 ? POD_STATE_NOTREADY : POD_STATE_READY;
		state_map_set(&p.labels, "app", i == 0 ? "db" : "web");
		state_map_set(&p.labels, "n", ids[i]);
		CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
		pod_record_clear(&p);
	}
	struct pod_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_pod_list(s, NULL, &v, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT_STRING_EQUAL(v[0]->id, "p2");
	CU_ASSERT_STRING_EQUAL(v[1]->id, "p1");
	CU_ASSERT_STRING_EQUAL(v[2]->id, "p3");
	pod_records_free(v, n);

	struct state_map web = {0};
	state_map_set(&web, "app", "web");
	struct pod_filter f = {.labels = &web};
	CU_ASSERT_EQUAL(state_pod_list(s, &f, &v, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 2);
	pod_records_free(v, n);
	f.has_state = true;
	f.state = POD_STATE_READY;
	CU_ASSERT_EQUAL(state_pod_list(s, &f, &v, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(v[0]->id, "p2");
	pod_records_free(v, n);
	f = (struct pod_filter){.id = "p1"};
	CU_ASSERT_EQUAL(state_pod_list(s, &f, &v, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 1);
	pod_records_free(v, n);
	f = (struct pod_filter){.id = "p"};
	CU_ASSERT_EQUAL(state_pod_list(s, &f, &v, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 3);
	pod_records_free(v, n);
	state_map_set(&web, "n", "p3");
	f = (struct pod_filter){.labels = &web};
	CU_ASSERT_EQUAL(state_pod_list(s, &f, &v, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 0);
	pod_records_free(v, n);
	state_map_clear(&web);

	for (int i = 0; i < 6; i++) {
		struct ctr_record c;
		_cleanup_free_ char *id = xasprintf("c%d", i);
		_cleanup_free_ char *name = xasprintf("n%d", i);
		fill_ctr(&c, id, i < 4 ? "p1" : "p2", name);
		c.state = (enum ctr_state)(i % 3);
		c.created_at = 1000 + i;
		state_map_set(&c.labels, "even", i % 2 ? "no" : "yes");
		CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), 0);
		ctr_record_clear(&c);
	}
	struct ctr_record **cv = NULL;
	struct ctr_filter cf = {.pod_id = "p1"};
	CU_ASSERT_EQUAL(state_ctr_list(s, &cf, &cv, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 4);
	CU_ASSERT_STRING_EQUAL(cv[0]->id, "c0");
	CU_ASSERT_STRING_EQUAL(cv[3]->id, "c3");
	ctr_records_free(cv, n);
	cf.has_state = true;
	cf.state = CTR_STATE_RUNNING;
	CU_ASSERT_EQUAL(state_ctr_list(s, &cf, &cv, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(cv[0]->id, "c1");
	ctr_records_free(cv, n);
	struct state_map even = {0};
	state_map_set(&even, "even", "yes");
	cf = (struct ctr_filter){.labels = &even};
	CU_ASSERT_EQUAL(state_ctr_list(s, &cf, &cv, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 3);
	ctr_records_free(cv, n);
	cf = (struct ctr_filter){.id = "c5", .pod_id = "p2"};
	CU_ASSERT_EQUAL(state_ctr_list(s, &cf, &cv, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 1);
	ctr_records_free(cv, n);
	state_map_clear(&even);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* ---- records of version 1 (typed fields inside "extra") ---------------------- */

static void test_version1_records(void)
{
	char *dir = unit_tmpdir();
	_cleanup_free_ char *pods = xasprintf("%s/pods", dir);
	_cleanup_free_ char *ctrs = xasprintf("%s/containers", dir);
	CU_ASSERT_EQUAL_FATAL(mkdir(pods, 0700), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(ctrs, 0700), 0);
	/* As huskd wrote them before the records had typed fields. */
	unit_write(pods, "p1.json",
		   "{\"version\":1,\"id\":\"p1\",\"metadata\":{\"name\":\"web\",\"uid\":"
		   "\"u1\",\"namespace\":\"default\",\"attempt\":0},\"state\":\"READY\","
		   "\"created_at\":5,\"labels\":{},\"annotations\":{},\"sandbox\":{\"id\":"
		   "\"p1\",\"network\":\"NODE\",\"ipc\":\"POD\",\"uts\":\"NODE\",\"pid\":"
		   "\"POD\",\"init_pid\":0,\"init_start_time\":0},\"extra\":{\"cgroup\":"
		   "\"cpu=2;memory=2;unified=1@/husk/pod-p1\",\"privileged\":true}}");
	unit_write(ctrs, "c1.json",
		   "{\"version\":1,\"id\":\"c1\",\"pod_id\":\"p1\",\"metadata\":{\"name\":"
		   "\"app\",\"attempt\":0},\"image\":{\"image\":\"busybox\",\"id\":"
		   "\"sha256:ab\"},\"state\":\"RUNNING\",\"created_at\":6,\"pid\":42,"
		   "\"labels\":{},\"annotations\":{},\"mounts\":[],\"extra\":{\"cgroup\":"
		   "\"cpu=1;memory=1;unified=1@/husk/pod-p1/c1\",\"stop_signal\":9}}");
	/* A cgroup in no form husk wrote reads as none; the record stays. */
	unit_write(ctrs, "c2.json",
		   "{\"version\":1,\"id\":\"c2\",\"pod_id\":\"p1\",\"metadata\":{\"name\":"
		   "\"b\",\"attempt\":0},\"state\":\"CREATED\",\"created_at\":7,\"extra\":"
		   "{\"cgroup\":\"memory=x@\"}}");
	char **problems = NULL;
	struct state_store *s = open_store(dir, &problems);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(strv_length(problems), 0);
	strv_free(problems);
	struct husk_error err = HUSK_ERROR_INIT;
	struct pod_record *p = NULL;
	CU_ASSERT_EQUAL_FATAL(state_pod_get(s, "p1", &p, &err), 0);
	CU_ASSERT_TRUE(p->privileged);
	CU_ASSERT_STRING_EQUAL(p->cgroup.path, "/husk/pod-p1");
	CU_ASSERT_EQUAL_FATAL(p->cgroup.n_hiers, 3);
	CU_ASSERT_STRING_EQUAL(p->cgroup.hiers[0].name, "cpu");
	CU_ASSERT_EQUAL(p->cgroup.hiers[0].created, 2);
	CU_ASSERT_STRING_EQUAL(p->cgroup.hiers[2].name, "unified");
	CU_ASSERT_EQUAL(p->cgroup.hiers[2].created, 1);
	struct ctr_record *c = NULL;
	CU_ASSERT_EQUAL_FATAL(state_ctr_get(s, "c1", &c, &err), 0);
	CU_ASSERT_EQUAL(c->stop_signal, 9);
	CU_ASSERT_EQUAL(c->pid, 42);
	CU_ASSERT_STRING_EQUAL(c->cgroup.path, "/husk/pod-p1/c1");
	CU_ASSERT_EQUAL(c->cgroup.n_hiers, 3);
	struct ctr_record *c2 = NULL;
	CU_ASSERT_EQUAL_FATAL(state_ctr_get(s, "c2", &c2, &err), 0);
	CU_ASSERT_PTR_NULL(c2->cgroup.path);
	CU_ASSERT_EQUAL(c2->stop_signal, 0);
	ctr_record_free(c2);
	/* A write is of the current format: typed, no "extra"; read back the same. */
	CU_ASSERT_EQUAL(state_ctr_update(s, c, &err), 0);
	CU_ASSERT_EQUAL(state_pod_update(s, p, &err), 0);
	state_store_free(s);
	_cleanup_free_ char *cpath = xasprintf("%s/c1.json", ctrs);
	_cleanup_free_ char *text = NULL;
	CU_ASSERT_EQUAL_FATAL(fs_read_file(cpath, 1 << 20, &text, NULL, &err), 0);
	CU_ASSERT_PTR_NULL(strstr(text, "extra"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"version\":2"));
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"stop_signal\":9"));
	s = open_store(dir, NULL);
	struct pod_record *p2 = NULL;
	struct ctr_record *c3 = NULL;
	CU_ASSERT_EQUAL_FATAL(state_pod_get(s, "p1", &p2, &err), 0);
	CU_ASSERT_EQUAL_FATAL(state_ctr_get(s, "c1", &c3, &err), 0);
	assert_pod_eq(p, p2);
	assert_cgroup_eq(&c->cgroup, &c3->cgroup);
	CU_ASSERT_EQUAL(c3->stop_signal, 9);
	pod_record_free(p);
	pod_record_free(p2);
	ctr_record_free(c);
	ctr_record_free(c3);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* ---- corrupt files ----------------------------------------------------------- */

static void test_corrupt_files(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	add_pod(s, "good", "web");
	add_pod(s, "good2", "db");
	add_ctr(s, "cgood", "good", "app");
	add_ctr(s, "orphan", "good2", "app");
	state_store_free(s);
	_cleanup_free_ char *pods = xasprintf("%s/pods", dir);
	_cleanup_free_ char *ctrs = xasprintf("%s/containers", dir);
	/* good2's record goes bad: its container becomes an orphan. */
	unit_write(pods, "good2.json", "{\"version\": 1, \"id\": \"good2\", \"metadata\": {");
	unit_write(pods, "empty.json", "");
	unit_write(pods, "array.json", "[1, 2]");
	unit_write(pods, "type.json",
		   "{\"version\": 1, \"id\": \"type\", \"metadata\": "
		   "{\"name\": 5}}");
	unit_write(pods, "state.json",
		   "{\"version\": 1, \"id\": \"state\", \"metadata\": "
		   "{\"name\": \"s\"}, \"state\": \"DANCING\"}");
	unit_write(pods, "version.json", "{\"version\": 99, \"id\": \"version\"}");
	unit_write(pods, "mismatch.json",
		   "{\"version\": 1, \"id\": \"other\", \"metadata\": "
		   "{\"name\": \"m\"}}");
	/* Claims good's name but was created later: good keeps it. */
	unit_write(pods, "dupname.json",
		   "{\"version\": 1, \"id\": \"dupname\", \"metadata\": "
		   "{\"name\": \"web\", \"uid\": \"uid-1\", "
		   "\"namespace\": \"default\"}, "
		   "\"created_at\": 9000000000000000000}");
	unit_write(pods, "README", "not a record");
	unit_write(ctrs, "deep.json",
		   "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
		   "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
		   "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]");
	unit_write(ctrs, "nopod.json",
		   "{\"version\": 1, \"id\": \"nopod\", \"metadata\": "
		   "{\"name\": \"x\"}}");
	/* Records add would refuse (found by tests/fuzz/fuzz_state.c): they
	 * were loaded, and then could not be saved again. */
	unit_write(pods, "bad id.json",
		   "{\"version\": 1, \"id\": \"bad id\", \"metadata\": "
		   "{\"name\": \"b\"}}");
	unit_write(ctrs, "nopath.json",
		   "{\"version\": 1, \"id\": \"nopath\", \"pod_id\": \"good\", "
		   "\"metadata\": {\"name\": \"np\"}, \"mounts\": [{\"host_path\": \"/x\"}]}");
	unit_write(ctrs, "prop.json",
		   "{\"version\": 1, \"id\": \"prop\", \"pod_id\": \"good\", "
		   "\"metadata\": {\"name\": \"pr\"}, "
		   "\"mounts\": [{\"container_path\": \"/x\", \"propagation\": 7}]}");

	char **problems = NULL;
	s = open_store(dir, &problems);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	const char *bad[] = {"good2.json",  "empty.json",   "array.json",    "type.json",
			     "state.json",  "version.json", "mismatch.json", "dupname.json",
			     "deep.json",   "nopod.json",   "orphan.json",   "bad id.json",
			     "nopath.json", "prop.json"};
	CU_ASSERT_EQUAL(strv_length(problems), ARRAY_SIZE(bad));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		bool found = false;
		for (size_t j = 0; problems && problems[j]; j++)
			found = found || strstr(problems[j], bad[i]);
		if (!found)
			printf("\n    no problem reported for %s", bad[i]);
		CU_ASSERT(found);
	}
	for (size_t j = 0; problems && problems[j]; j++)
		CU_ASSERT(problems[j][0] == '\'' && strchr(problems[j], ':'));
	strv_free(problems);

	struct pod_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_pod_list(s, NULL, &v, &n, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(v[0]->id, "good");
	pod_records_free(v, n);
	struct ctr_record **cv = NULL;
	CU_ASSERT_EQUAL(state_ctr_list(s, NULL, &cv, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 2); /* cgood, and the orphan for the caller to clean up */
	ctr_records_free(cv, n);
	/* Corrupt files are left for a human to look at. */
	_cleanup_free_ char *kept = xasprintf("%s/type.json", pods);
	CU_ASSERT(fs_exists(kept));
	state_store_free(s);
	unit_rmdir(dir);
}

/* ---- validation and limits ------------------------------------------------------ */

static void test_invalid_records(void)
{
	char *dir = unit_tmpdir();
	struct state_options opts = {.max_pods = 2, .max_containers = 1};
	struct state_store *s = NULL;
	struct husk_error err = HUSK_ERROR_INIT;
	CU_ASSERT_EQUAL_FATAL(state_store_open(dir, &opts, &s, NULL, &err), 0);
	struct pod_record p;

	fill_pod(&p, "../evil", "x");
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EINVAL);
	pod_record_clear(&p);
	fill_pod(&p, "ok", "");
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EINVAL);
	pod_record_clear(&p);
	fill_pod(&p, "ok", "x");
	state_map_set(&p.labels, "bad", "\xff\xfe");
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(husk_error_msg(&err), "UTF-8"));
	state_map_clear(&p.labels);
	p.state = (enum pod_state)7;
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EINVAL);
	p.state = POD_STATE_READY;
	p.sandbox.net = (enum pod_ns_mode)9;
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -EINVAL);
	p.sandbox.net = POD_NS_POD;
	_cleanup_free_ char *pods = xasprintf("%s/pods", dir);
	_cleanup_strv_ char **names = dir_names(pods);
	CU_ASSERT_EQUAL(strv_length(names), 0);

	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), 0);
	pod_record_clear(&p);
	add_pod(s, "ok2", "y");
	fill_pod(&p, "ok3", "z");
	CU_ASSERT_EQUAL(state_pod_add(s, &p, &err), -ENOSPC);
	pod_record_clear(&p);

	struct ctr_record c;
	fill_ctr(&c, "c1", "ok", "a");
	c.spec_json = xstrdup("[1,");
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), -EINVAL);
	free(c.spec_json);
	c.spec_json = NULL;
	c.n_mounts = 1;
	c.mounts = xnew(struct ctr_record_mount, 1);
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), -EINVAL);
	c.mounts[0].container_path = xstrdup("/x");
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), 0);
	ctr_record_clear(&c);
	fill_ctr(&c, "c2", "ok", "b");
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), -ENOSPC);
	ctr_record_clear(&c);
	fill_ctr(&c, "c2", "ok", "");
	CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), -EINVAL);
	ctr_record_clear(&c);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

static int fail_modify(struct pod_record *p, void *data _unused_, struct husk_error *err)
{
	p->state = POD_STATE_NOTREADY;
	return husk_error_set(err, EBUSY, "not now");
}

static int change_id(struct pod_record *p, void *data _unused_, struct husk_error *err _unused_)
{
	free(p->id);
	p->id = xstrdup("other");
	return 0;
}

static int set_ips(struct pod_record *p, void *data, struct husk_error *err _unused_)
{
	strv_free(p->ips);
	p->ips = strv_append(xnew(char *, 1), data);
	return 0;
}

static int ctr_exit(struct ctr_record *c, void *data, struct husk_error *err _unused_)
{
	c->state = CTR_STATE_EXITED;
	c->exit_code = *(int *)data;
	c->finished_at = 99;
	return 0;
}

static void test_modify(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	struct husk_error err = HUSK_ERROR_INIT;
	add_pod(s, "pm", "web");
	CU_ASSERT_EQUAL(state_pod_modify(s, "pm", fail_modify, NULL, &err), -EBUSY);
	CU_ASSERT_STRING_EQUAL(husk_error_msg(&err), "not now");
	CU_ASSERT_EQUAL(state_pod_modify(s, "pm", change_id, NULL, &err), -EINVAL);
	CU_ASSERT_EQUAL(state_pod_modify(s, "nope", set_ips, "1.2.3.4", &err), -ENOENT);
	struct pod_record *p = NULL;
	CU_ASSERT_EQUAL(state_pod_get(s, "pm", &p, &err), 0);
	CU_ASSERT_EQUAL(p->state, POD_STATE_READY);
	pod_record_free(p);
	CU_ASSERT_EQUAL(state_pod_modify(s, "pm", set_ips, "10.9.8.7", &err), 0);

	add_ctr(s, "cm", "pm", "app");
	int code = 3;
	CU_ASSERT_EQUAL(state_ctr_modify(s, "cm", ctr_exit, &code, &err), 0);
	struct ctr_record *c = NULL;
	CU_ASSERT_EQUAL(state_ctr_get(s, "cm", &c, &err), 0);
	free(c->reason);
	c->reason = xstrdup("Error");
	CU_ASSERT_EQUAL(state_ctr_update(s, c, &err), 0);
	ctr_record_free(c);
	state_store_free(s);

	s = open_store(dir, NULL);
	CU_ASSERT_EQUAL(state_pod_get(s, "pm", &p, &err), 0);
	CU_ASSERT_EQUAL(strv_length(p->ips), 1);
	CU_ASSERT_STRING_EQUAL(p->ips[0], "10.9.8.7");
	pod_record_free(p);
	CU_ASSERT_EQUAL(state_ctr_get(s, "cm", &c, &err), 0);
	CU_ASSERT_EQUAL(c->state, CTR_STATE_EXITED);
	CU_ASSERT_EQUAL(c->exit_code, 3);
	CU_ASSERT_EQUAL(c->finished_at, 99);
	CU_ASSERT_STRING_EQUAL(c->reason, "Error");
	ctr_record_free(c);
	state_store_free(s);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* ---- concurrency --------------------------------------------------------------- */

struct worker {
	struct state_store *s;
	int n;
	int failures;
};

static int bump(struct ctr_record *c, void *data _unused_, struct husk_error *err _unused_)
{
	c->exit_code++;
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct husk_error err = HUSK_ERROR_INIT;
	for (int i = 0; i < 25; i++) {
		_cleanup_free_ char *id = NULL;
		_cleanup_free_ char *name = xasprintf("w%d-%d", w->n, i);
		if (state_new_id(w->s, &id, &err) < 0) {
			w->failures++;
			continue;
		}
		struct ctr_record c;
		fill_ctr(&c, id, "shared", name);
		if (state_ctr_add(w->s, &c, &err) < 0)
			w->failures++;
		ctr_record_clear(&c);
		struct ctr_record *got = NULL;
		if (state_ctr_get(w->s, id, &got, &err) < 0)
			w->failures++;
		ctr_record_free(got);
		/* Every worker bumps the same counter: no update may be lost. */
		if (state_ctr_modify(w->s, "counter", bump, NULL, &err) < 0)
			w->failures++;
		struct ctr_record **v = NULL;
		size_t n;
		state_ctr_list(w->s, NULL, &v, &n, &err);
		ctr_records_free(v, n);
	}
	husk_error_clear(&err);
	return NULL;
}

static void test_concurrent_use(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	add_pod(s, "shared", "web");
	add_ctr(s, "counter", "shared", "counter");
	struct worker w[8];
	pthread_t th[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (struct worker){.s = s, .n = i};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	struct husk_error err = HUSK_ERROR_INIT;
	struct ctr_record *c = NULL;
	CU_ASSERT_EQUAL(state_ctr_get(s, "counter", &c, &err), 0);
	CU_ASSERT_EQUAL(c->exit_code, 8 * 25);
	ctr_record_free(c);
	state_store_free(s);

	char **problems = NULL;
	s = open_store(dir, &problems);
	CU_ASSERT_EQUAL(strv_length(problems), 0);
	strv_free(problems);
	struct ctr_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_ctr_list(s, NULL, &v, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 8 * 25 + 1);
	ctr_records_free(v, n);
	state_store_free(s);
	unit_rmdir(dir);
}

/* Shared lists: the same records and order as the copies for each filter,
 * and a listed record stays whole past a modify, a remove and the store's
 * own end. */
static void ids_of_shared(struct state_store *s, const struct ctr_filter *f, char *out, size_t size)
{
	const struct ctr_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_ctr_list_shared(s, f, &v, &n, NULL), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s,", v[i]->id);
	ctr_records_release(v, n);
}

static void ids_of_copies(struct state_store *s, const struct ctr_filter *f, char *out, size_t size)
{
	struct ctr_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_ctr_list(s, f, &v, &n, NULL), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), size - strlen(out), "%s,", v[i]->id);
	ctr_records_free(v, n);
}

static int relabel(struct ctr_record *c, void *data, struct husk_error *err _unused_)
{
	state_map_set(&c->labels, "app", data);
	free(c->name);
	c->name = xstrdup(data);
	return 0;
}

static void test_shared_lists(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	struct husk_error err = HUSK_ERROR_INIT;
	add_pod(s, "p1", "one");
	add_pod(s, "p2", "two");
	for (int i = 0; i < 6; i++) {
		struct ctr_record c;
		_cleanup_free_ char *id = xasprintf("c%d", 5 - i);
		_cleanup_free_ char *name = xasprintf("n%d", i);
		fill_ctr(&c, id, i < 4 ? "p1" : "p2", name);
		c.state = (enum ctr_state)(i % 3);
		c.created_at = 1000 + i; /* c5 is the oldest */
		state_map_set(&c.labels, "even", i % 2 ? "no" : "yes");
		CU_ASSERT_EQUAL(state_ctr_add(s, &c, &err), 0);
		ctr_record_clear(&c);
	}
	struct state_map even = {0};
	state_map_set(&even, "even", "yes");
	const struct ctr_filter filters[] = {
	    {0},
	    {.pod_id = "p1"},
	    {.has_state = true, .state = CTR_STATE_RUNNING},
	    {.labels = &even},
	    {.id = "c", .pod_id = "p2"},
	    {.id = "c9"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(filters); i++) {
		char shared[128], copies[128];
		ids_of_shared(s, &filters[i], shared, sizeof(shared));
		ids_of_copies(s, &filters[i], copies, sizeof(copies));
		CU_ASSERT_STRING_EQUAL(shared, copies);
	}
	char all[128];
	ids_of_shared(s, NULL, all, sizeof(all));
	CU_ASSERT_STRING_EQUAL(all, "c5,c4,c3,c2,c1,c0,");
	state_map_clear(&even);

	/* Listed, then changed and removed: the list still holds what was. */
	const struct ctr_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_ctr_list_shared(s, &(struct ctr_filter){.id = "c5"}, &v, &n, &err),
			0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	const struct ctr_record **later = NULL;
	size_t n_later = 0;
	CU_ASSERT_EQUAL(state_ctr_modify(s, "c5", relabel, "changed", &err), 0);
	CU_ASSERT_EQUAL(
	    state_ctr_list_shared(s, &(struct ctr_filter){.id = "c5"}, &later, &n_later, &err), 0);
	CU_ASSERT_EQUAL(state_ctr_remove(s, "c5", &err), 0);
	CU_ASSERT_STRING_EQUAL(v[0]->name, "n0");
	CU_ASSERT_PTR_NULL(state_map_get(&v[0]->labels, "app"));
	CU_ASSERT_STRING_EQUAL(state_map_get(&v[0]->labels, "even"), "yes");
	CU_ASSERT_EQUAL_FATAL(n_later, 1);
	CU_ASSERT_STRING_EQUAL(later[0]->name, "changed");
	CU_ASSERT_STRING_EQUAL(state_map_get(&later[0]->labels, "app"), "changed");
	ctr_records_release(v, n);
	ids_of_shared(s, NULL, all, sizeof(all));
	CU_ASSERT_STRING_EQUAL(all, "c4,c3,c2,c1,c0,");

	/* Pods too, and past the store's end. */
	const struct pod_record **pv = NULL;
	CU_ASSERT_EQUAL(state_pod_list_shared(s, &(struct pod_filter){.id = "p2"}, &pv, &n, &err),
			0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	state_store_free(s);
	CU_ASSERT_STRING_EQUAL(pv[0]->name, "two");
	CU_ASSERT_STRING_EQUAL(later[0]->id, "c5");
	pod_records_release(pv, n);
	ctr_records_release(later, n_later);
	pod_records_release(NULL, 0);
	ctr_records_release(NULL, 0);
	husk_error_clear(&err);
	unit_rmdir(dir);
}

/* Readers of shared lists while writers modify and remove: every record a
 * reader sees is one whole write (its label matches its exit code), never
 * a mix nor freed memory (make asan checks the latter). */
struct churn {
	struct state_store *s;
	int n;
	int failures;
	bool *stop;
};

static int set_gen(struct ctr_record *c, void *data, struct husk_error *err _unused_)
{
	int gen = *(int *)data;
	c->exit_code = gen;
	_cleanup_free_ char *v = xasprintf("%d", gen);
	state_map_set(&c->labels, "gen", v);
	free(c->reason);
	c->reason = xasprintf("generation %d", gen);
	return 0;
}

static void *churn_writer(void *arg)
{
	struct churn *w = arg;
	struct husk_error err = HUSK_ERROR_INIT;
	for (int i = 0; i < 40; i++) {
		_cleanup_free_ char *id = xasprintf("w%d-%d", w->n, i);
		struct ctr_record c;
		fill_ctr(&c, id, "shared", id);
		state_map_set(&c.labels, "gen", "0");
		c.reason = xstrdup("generation 0");
		if (state_ctr_add(w->s, &c, &err) < 0)
			w->failures++;
		ctr_record_clear(&c);
		for (int gen = 1; gen <= 3; gen++)
			if (state_ctr_modify(w->s, id, set_gen, &gen, &err) < 0)
				w->failures++;
		if (i % 2 == 0 && state_ctr_remove(w->s, id, &err) < 0)
			w->failures++;
	}
	husk_error_clear(&err);
	return NULL;
}

static void *churn_reader(void *arg)
{
	struct churn *r = arg;
	while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
		const struct ctr_record **v = NULL;
		size_t n = 0;
		if (state_ctr_list_shared(r->s, NULL, &v, &n, NULL) < 0)
			r->failures++;
		for (size_t i = 0; i < n; i++) {
			_cleanup_free_ char *gen = xasprintf("%d", v[i]->exit_code);
			_cleanup_free_ char *reason = xasprintf("generation %d", v[i]->exit_code);
			if (!streq(state_map_get(&v[i]->labels, "gen"), gen) ||
			    !streq(v[i]->reason, reason) || !streq(v[i]->id, v[i]->name))
				r->failures++;
		}
		ctr_records_release(v, n);
	}
	return NULL;
}

static void test_shared_lists_under_writes(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	add_pod(s, "shared", "web");
	bool stop = false;
	struct churn w[4], r[4];
	pthread_t tw[4], tr[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct churn){.s = s, .n = i, .stop = &stop};
		pthread_create(&tr[i], NULL, churn_reader, &r[i]);
	}
	for (int i = 0; i < 4; i++) {
		w[i] = (struct churn){.s = s, .n = i, .stop = &stop};
		pthread_create(&tw[i], NULL, churn_writer, &w[i]);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tw[i], NULL);
		CU_ASSERT_EQUAL(w[i].failures, 0);
	}
	__atomic_store_n(&stop, true, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++) {
		pthread_join(tr[i], NULL);
		CU_ASSERT_EQUAL(r[i].failures, 0);
	}
	const struct ctr_record **v = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(state_ctr_list_shared(s, NULL, &v, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 4 * 20);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(v[i]->exit_code, 3);
	ctr_records_release(v, n);
	state_store_free(s);
	unit_rmdir(dir);
}

struct racer {
	struct state_store *s;
	int ok, gone, other;
};

static void *modify_loop(void *arg)
{
	struct racer *r = arg;
	for (int i = 0; i < 200; i++) {
		struct husk_error err = HUSK_ERROR_INIT;
		int rc = state_ctr_modify(r->s, "victim", bump, NULL, &err);
		if (rc == 0)
			r->ok++;
		else if (rc == -ENOENT)
			r->gone++;
		else
			r->other++;
		husk_error_clear(&err);
	}
	return NULL;
}

/* A record's file is written without the store's writer lock, in order
 * per record: a modify racing the remove of its record never writes the
 * file back after the remove (a record that came back after a restart). */
static void test_modify_races_remove(void)
{
	char *dir = unit_tmpdir();
	struct state_store *s = open_store(dir, NULL);
	add_pod(s, "pod", "web");
	add_ctr(s, "victim", "pod", "victim");
	add_ctr(s, "bystander", "pod", "bystander");
	struct racer r[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){.s = s};
		pthread_create(&th[i], NULL, modify_loop, &r[i]);
	}
	struct husk_error err = HUSK_ERROR_INIT;
	for (int i = 0; i < 50; i++)
		CU_ASSERT_EQUAL(state_ctr_modify(s, "bystander", bump, NULL, &err), 0);
	CU_ASSERT_EQUAL(state_ctr_remove(s, "victim", &err), 0);
	/* The pod's remove waits for its containers' records. */
	CU_ASSERT_EQUAL(state_pod_remove(s, "pod", &err), -EBUSY);
	husk_error_clear(&err);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		CU_ASSERT_EQUAL(r[i].other, 0);
		CU_ASSERT_EQUAL(r[i].ok + r[i].gone, 200);
	}
	struct ctr_record *c = NULL;
	CU_ASSERT_EQUAL(state_ctr_get(s, "victim", &c, &err), -ENOENT);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(state_ctr_get(s, "bystander", &c, &err), 0);
	CU_ASSERT_EQUAL(c->exit_code, 50);
	ctr_record_free(c);
	_cleanup_free_ char *file = xasprintf("%s/containers/victim.json", dir);
	CU_ASSERT_EQUAL(access(file, F_OK), -1);
	state_store_free(s);

	char **problems = NULL;
	s = open_store(dir, &problems);
	CU_ASSERT_EQUAL(strv_length(problems), 0);
	strv_free(problems);
	CU_ASSERT_EQUAL(state_ctr_get(s, "victim", &c, &err), -ENOENT);
	CU_ASSERT_EQUAL(state_ctr_get(s, "bystander", &c, &err), 0);
	CU_ASSERT_EQUAL(c->exit_code, 50);
	ctr_record_free(c);
	husk_error_clear(&err);
	state_store_free(s);
	unit_rmdir(dir);
}

static void test_names(void)
{
	CU_ASSERT_STRING_EQUAL(pod_state_name(POD_STATE_NOTREADY), "NOTREADY");
	CU_ASSERT_EQUAL(pod_state_parse("READY"), POD_STATE_READY);
	CU_ASSERT_EQUAL(pod_state_parse("ready"), -1);
	CU_ASSERT_STRING_EQUAL(ctr_state_name(CTR_STATE_UNKNOWN), "UNKNOWN");
	CU_ASSERT_EQUAL(ctr_state_parse("EXITED"), CTR_STATE_EXITED);
	CU_ASSERT_PTR_NULL(ctr_state_name((enum ctr_state)42));
	struct state_map m = {0};
	state_map_set(&m, "a", "1");
	state_map_set(&m, "a", "2");
	CU_ASSERT_EQUAL(m.n, 1);
	CU_ASSERT_STRING_EQUAL(state_map_get(&m, "a"), "2");
	CU_ASSERT_TRUE(state_map_match(&m, NULL));
	state_map_clear(&m);
	state_map_clear(&m);
	pod_record_free(NULL);
	ctr_record_free(NULL);
	state_store_free(NULL);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"state names and maps", test_names},
	    {"pod round trip", test_pod_round_trip},
	    {"container round trip", test_ctr_round_trip},
	    {"atomic writes", test_atomic_writes},
	    {"prefix lookup", test_prefix_lookup},
	    {"ids", test_ids},
	    {"name conflicts", test_name_conflicts},
	    {"filters", test_filters},
	    {"version 1 records", test_version1_records},
	    {"corrupt files", test_corrupt_files},
	    {"invalid records and limits", test_invalid_records},
	    {"modify", test_modify},
	    {"concurrent use", test_concurrent_use},
	    {"shared lists", test_shared_lists},
	    {"shared lists under writes", test_shared_lists_under_writes},
	    {"a modify racing a remove", test_modify_races_remove},
	};
	return unit_run("state", tests, ARRAY_SIZE(tests));
}
