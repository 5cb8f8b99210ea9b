/* Seccomp profiles: the built-in RuntimeDefault allow-list, the OCI/Docker
 * JSON loader, and compilation to BPF with libseccomp (done before fork, so
 * the child only makes the seccomp(2) call). */
#include "runtime/launcher/seccomp.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <yajl/yajl_parse.h>

#include "common/fs.h"
#include "common/json.h"
#include "runtime/launcher/caps.h"

/* The syscalls every container may make under RuntimeDefault: the list
 * Docker's and containerd's default profiles allow unconditionally (moby's
 * profiles/seccomp as of 2025; tests/unit/test_seccomp.c keeps the
 * comparison). Not io_uring_setup/enter/register: refused with EPERM, as
 * Docker and containerd do since 2023 for io_uring's escape history. Names
 * that do not exist on the running architecture are skipped at compile. */
/* clang-format off */
static const char *const default_allow[] = {
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget",
	"capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64",
	"clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
	"clock_nanosleep", "clock_nanosleep_time64", "close", "close_range", "connect",
	"copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create", "epoll_create1",
	"epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
	"epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
	"faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark",
	"fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
	"fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr",
	"fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
	"ftruncate64", "futex", "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd",
	"getdents", "getdents64", "getegid", "getegid32", "geteuid", "geteuid32", "getgid",
	"getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
	"getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32",
	"getresuid", "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid",
	"getsockname", "getsockopt", "get_thread_area", "gettid", "gettimeofday", "getuid",
	"getuid32", "getxattr", "inotify_add_watch", "inotify_init", "inotify_init1",
	"inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
	"io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
	"io_submit", "ipc", "kill",
	"landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
	"lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
	"_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
	"membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod",
	"mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
	"mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
	"mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap", "msgctl", "msgget",
	"msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap", "name_to_handle_at",
	"nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause",
	"pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free",
	"pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv",
	"preadv2", "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64",
	"pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv", "recv",
	"recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
	"removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir", "rseq",
	"rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn",
	"rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
	"sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
	"sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
	"sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid",
	"setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
	"setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
	"setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
	"setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
	"setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
	"signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair",
	"splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat",
	"sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
	"timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64",
	"times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink",
	"unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
	"wait4", "waitid", "waitpid", "write", "writev",
	/* Newer than Debian 12's libseccomp knows (kernels 6.5 to 6.13):
	 * resolved by number, see by_number below. */
	"cachestat", "fchmodat2", "futex_requeue", "futex_wait", "futex_wake",
	"getxattrat", "listmount", "listxattrat", "map_shadow_stack", "mseal",
	"removexattrat", "setxattrat", "statmount", "uretprobe",
	/* Allowed since kernel 4.8 closed the ptrace seccomp bypass. */
	"process_vm_readv", "process_vm_writev", "ptrace",
	NULL,
};
/* clang-format on */

/* Namespace flags clone() may not carry without CAP_SYS_ADMIN:
 * NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET. */
#define CLONE_NS_FLAGS 0x7E020000ULL

/* Conditional groups, as (names, capability that enables them). */
struct cap_group {
	int cap;
	const char *const *names;
};
#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
static const struct cap_group cap_groups[] = {
    {2 /* DAC_READ_SEARCH */, NAMES("open_by_handle_at")},
    {21 /* SYS_ADMIN */,
     NAMES("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
	   "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
	   "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
	   "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare")},
    {22 /* SYS_BOOT */, NAMES("reboot")},
    {18 /* SYS_CHROOT */, NAMES("chroot")},
    {16 /* SYS_MODULE */, NAMES("delete_module", "init_module", "finit_module")},
    {20 /* SYS_PACCT */, NAMES("acct")},
    {19 /* SYS_PTRACE */, NAMES("kcmp", "pidfd_getfd", "process_madvise")},
    {17 /* SYS_RAWIO */, NAMES("iopl", "ioperm")},
    {25 /* SYS_TIME */, NAMES("settimeofday", "stime", "clock_settime", "clock_settime64")},
    {26 /* SYS_TTY_CONFIG */, NAMES("vhangup")},
    {23 /* SYS_NICE */,
     NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node")},
    {34 /* SYSLOG */, NAMES("syslog")},
    {39 /* BPF */, NAMES("bpf")},
    {38 /* PERFMON */, NAMES("perf_event_open")},
};

static char **strv_from_const(const char *const *names)
{
	char **v = xnew(char *, 1);
	for (size_t i = 0; names[i]; i++)
		v = strv_append(v, names[i]);
	return v;
}

static struct lc_seccomp_rule *add_rule(struct lc_seccomp_profile *p, uint32_t action)
{
	p->rules = xrealloc(p->rules, (p->n_rules + 1) * sizeof(*p->rules));
	struct lc_seccomp_rule *r = &p->rules[p->n_rules++];
	*r = (struct lc_seccomp_rule){.action = action};
	return r;
}

static void rule_add_arg(struct lc_seccomp_rule *r, unsigned index, uint64_t value,
			 uint64_t value_two, int op)
{
	r->args = xrealloc(r->args, (r->n_args + 1) * sizeof(*r->args));
	r->args[r->n_args++] = (struct lc_seccomp_arg){index, value, value_two, op};
}

struct lc_seccomp_profile *lc_seccomp_runtime_default(void)
{
	struct lc_seccomp_profile *p = xnew(struct lc_seccomp_profile, 1);
	p->default_action = SCMP_ACT_ERRNO(EPERM);
#if defined(__x86_64__)
	p->arches[p->n_arches++] = SCMP_ARCH_X86_64;
	p->arches[p->n_arches++] = SCMP_ARCH_X86;
	p->arches[p->n_arches++] = SCMP_ARCH_X32;
#elif defined(__aarch64__)
	p->arches[p->n_arches++] = SCMP_ARCH_AARCH64;
	p->arches[p->n_arches++] = SCMP_ARCH_ARM;
#endif
	struct lc_seccomp_rule *r = add_rule(p, SCMP_ACT_ALLOW);
	r->names = strv_from_const(default_allow);

	/* socket: every family but AF_VSOCK (40). */
	r = add_rule(p, SCMP_ACT_ALLOW);
	r->names = strv_from_const(NAMES("socket"));
	rule_add_arg(r, 0, 40, 0, SCMP_CMP_NE);

	/* personality: only the harmless personas. */
	static const uint64_t personas[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};
	for (size_t i = 0; i < ARRAY_SIZE(personas); i++) {
		r = add_rule(p, SCMP_ACT_ALLOW);
		r->names = strv_from_const(NAMES("personality"));
		rule_add_arg(r, 0, personas[i], 0, SCMP_CMP_EQ);
	}

	r = add_rule(p, SCMP_ACT_ALLOW);
	r->names = strv_from_const(NAMES("arch_prctl"));
	r->arches = strv_from_const(NAMES("amd64", "x32"));
	r = add_rule(p, SCMP_ACT_ALLOW);
	r->names = strv_from_const(NAMES("modify_ldt"));
	r->arches = strv_from_const(NAMES("amd64", "x32", "x86"));
	r = add_rule(p, SCMP_ACT_ALLOW);
	r->names =
	    strv_from_const(NAMES("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2",
				  "breakpoint", "cacheflush", "set_tls"));
	r->arches = strv_from_const(NAMES("arm", "arm64"));

	for (size_t i = 0; i < ARRAY_SIZE(cap_groups); i++) {
		r = add_rule(p, SCMP_ACT_ALLOW);
		r->names = strv_from_const(cap_groups[i].names);
		r->caps_all = LC_CAP_BIT(cap_groups[i].cap);
	}

	/* Without CAP_SYS_ADMIN: clone without namespace flags, and clone3
	 * answers ENOSYS so libcs fall back to clone, whose flags we can see. */
	r = add_rule(p, SCMP_ACT_ALLOW);
	r->names = strv_from_const(NAMES("clone"));
	r->caps_none = LC_CAP_BIT(21);
	r->not_arches = strv_from_const(NAMES("s390", "s390x"));
	rule_add_arg(r, 0, CLONE_NS_FLAGS, 0, SCMP_CMP_MASKED_EQ);
	r = add_rule(p, SCMP_ACT_ERRNO(ENOSYS));
	r->names = strv_from_const(NAMES("clone3"));
	r->caps_none = LC_CAP_BIT(21);
	return p;
}

void lc_seccomp_profile_free(struct lc_seccomp_profile *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n_rules; i++) {
		struct lc_seccomp_rule *r = &p->rules[i];
		strv_free(r->names);
		free(r->args);
		strv_free(r->arches);
		strv_free(r->not_arches);
		free(r->min_kernel);
	}
	free(p->rules);
	free(p);
}

/* ---- parsing ---- */

static const struct {
	const char *name;
	uint32_t action;
	bool takes_errno;
} actions[] = {
    {"SCMP_ACT_KILL", SCMP_ACT_KILL_THREAD, false},
    {"SCMP_ACT_KILL_THREAD", SCMP_ACT_KILL_THREAD, false},
    {"SCMP_ACT_KILL_PROCESS", SCMP_ACT_KILL_PROCESS, false},
    {"SCMP_ACT_TRAP", SCMP_ACT_TRAP, false},
    {"SCMP_ACT_ERRNO", SCMP_ACT_ERRNO(0), true},
    {"SCMP_ACT_TRACE", SCMP_ACT_TRACE(0), true},
    {"SCMP_ACT_ALLOW", SCMP_ACT_ALLOW, false},
    {"SCMP_ACT_LOG", SCMP_ACT_LOG, false},
};

static const struct {
	const char *name;
	int op;
} ops[] = {
    {"SCMP_CMP_NE", SCMP_CMP_NE},
    {"SCMP_CMP_LT", SCMP_CMP_LT},
    {"SCMP_CMP_LE", SCMP_CMP_LE},
    {"SCMP_CMP_EQ", SCMP_CMP_EQ},
    {"SCMP_CMP_GE", SCMP_CMP_GE},
    {"SCMP_CMP_GT", SCMP_CMP_GT},
    {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
};

static const struct {
	const char *name;
	unsigned flag;
} filter_flags[] = {
    {"SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC},
    {"SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG},
    {"SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW},
};

struct pctx {
	const char *what;
	struct husk_error *err;
};

_printf_(3, 4) static int perr(struct pctx *c, const char *where, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	_cleanup_free_ char *m = xvasprintf(fmt, ap);
	va_end(ap);
	return husk_error_set(c->err, EINVAL, "seccomp profile '%s': %s: %s", c->what, where, m);
}

/* A JSON integer as uint64 (yajl keeps the text of numbers it cannot hold
 * in a long long, so values up to 2^64-1 work). */
static bool json_u64(yajl_val v, uint64_t *ret)
{
	if (!YAJL_IS_NUMBER(v) || !v->u.number.r || v->u.number.r[0] == '-')
		return false;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(v->u.number.r, &end, 10);
	if (errno || *end)
		return false;
	*ret = x;
	return true;
}

static int parse_action(struct pctx *c, const char *where, yajl_val v, yajl_val errno_v,
			uint32_t dflt_errno, uint32_t *ret)
{
	if (!YAJL_IS_STRING(v))
		return perr(c, where, "expected a string, got %s", json_type_name(v));
	for (size_t i = 0; i < ARRAY_SIZE(actions); i++) {
		if (!streq(actions[i].name, v->u.string))
			continue;
		uint32_t a = actions[i].action;
		if (actions[i].takes_errno) {
			uint64_t e = dflt_errno;
			if (errno_v && !json_u64(errno_v, &e))
				return perr(c, where, "errnoRet must be a non-negative integer");
			if (e > 0xffff)
				return perr(c, where, "errnoRet %llu out of range",
					    (unsigned long long)e);
			a |= (uint32_t)e;
		}
		*ret = a;
		return 0;
	}
	if (streq(v->u.string, "SCMP_ACT_NOTIFY"))
		return perr(c, where, "action 'SCMP_ACT_NOTIFY' is not supported");
	return perr(c, where, "unknown action '%s'", v->u.string);
}

static int parse_arch(struct pctx *c, const char *where, const char *name, uint32_t *ret)
{
	/* "SCMP_ARCH_X86_64" -> libseccomp's "x86_64". */
	if (!startswith(name, "SCMP_ARCH_") || strlen(name) > 40)
		return perr(c, where, "unknown architecture '%s'", name);
	char low[48];
	size_t i = 0;
	for (const char *s = name + 10; *s; s++)
		low[i++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
	low[i] = '\0';
	uint32_t a = seccomp_arch_resolve_name(low);
	if (a == 0)
		return perr(c, where, "unknown architecture '%s'", name);
	*ret = a;
	return 0;
}

static int add_arch(struct pctx *c, struct lc_seccomp_profile *p, const char *where,
		    const char *name)
{
	uint32_t a;
	int r = parse_arch(c, where, name, &a);
	if (r < 0)
		return r;
	for (size_t i = 0; i < p->n_arches; i++)
		if (p->arches[i] == a)
			return 0;
	if (p->n_arches == LC_SECCOMP_MAX_ARCHES)
		return perr(c, where, "more than %d architectures", LC_SECCOMP_MAX_ARCHES);
	p->arches[p->n_arches++] = a;
	return 0;
}

static int parse_strv(struct pctx *c, const char *where, yajl_val v, size_t max, char ***ret)
{
	if (!YAJL_IS_ARRAY(v))
		return perr(c, where, "expected an array, got %s", json_type_name(v));
	if (v->u.array.len > max)
		return perr(c, where, "more than %zu entries", max);
	_cleanup_strv_ char **out = xnew(char *, 1);
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val s = v->u.array.values[i];
		if (!YAJL_IS_STRING(s))
			return perr(c, where, "entry %zu: expected a string, got %s", i,
				    json_type_name(s));
		out = strv_append(out, s->u.string);
	}
	*ret = steal_ptr(&out);
	return 0;
}

/* Docker "includes" / "excludes": caps, arches, minKernel. */
static int parse_cond(struct pctx *c, const char *where, yajl_val v, bool include,
		      struct lc_seccomp_rule *rule)
{
	if (!YAJL_IS_OBJECT(v))
		return perr(c, where, "expected an object, got %s", json_type_name(v));
	_cleanup_free_ char *w = NULL;
	yajl_val caps = json_get(v, "caps");
	if (caps && !YAJL_IS_NULL(caps)) {
		_cleanup_strv_ char **names = NULL;
		w = xasprintf("%s.caps", where);
		int r = parse_strv(c, w, caps, 64, &names);
		if (r < 0)
			return r;
		uint64_t mask;
		struct husk_error e = HUSK_ERROR_INIT;
		if (lc_caps_from_names(names, &mask, &e) < 0) {
			r = perr(c, w, "%s", husk_error_msg(&e));
			husk_error_clear(&e);
			return r;
		}
		if (include)
			rule->caps_all |= mask;
		else
			rule->caps_none |= mask;
	}
	yajl_val arches = json_get(v, "arches");
	if (arches && !YAJL_IS_NULL(arches)) {
		free(w);
		w = xasprintf("%s.arches", where);
		int r = parse_strv(c, w, arches, 64, include ? &rule->arches : &rule->not_arches);
		if (r < 0)
			return r;
	}
	yajl_val mk = json_get(v, "minKernel");
	if (mk && !YAJL_IS_NULL(mk)) {
		if (!include)
			return perr(c, where, "minKernel is only allowed in includes");
		if (!YAJL_IS_STRING(mk))
			return perr(c, where, "minKernel: expected a string");
		rule->min_kernel = xstrdup(mk->u.string);
	}
	return 0;
}

static int parse_args(struct pctx *c, const char *where, yajl_val v, struct lc_seccomp_rule *rule)
{
	if (YAJL_IS_NULL(v))
		return 0;
	if (!YAJL_IS_ARRAY(v))
		return perr(c, where, "expected an array, got %s", json_type_name(v));
	if (v->u.array.len > 6 * 8)
		return perr(c, where, "too many argument comparisons");
	for (size_t i = 0; i < v->u.array.len; i++) {
		yajl_val a = v->u.array.values[i];
		_cleanup_free_ char *w = xasprintf("%s[%zu]", where, i);
		if (!YAJL_IS_OBJECT(a))
			return perr(c, w, "expected an object, got %s", json_type_name(a));
		uint64_t index, value = 0, value_two = 0;
		if (!json_u64(json_get(a, "index"), &index) || index > 5)
			return perr(c, w, "index must be an integer from 0 to 5");
		yajl_val x = json_get(a, "value");
		if (x && !json_u64(x, &value))
			return perr(c, w, "value must be a non-negative integer");
		x = json_get(a, "valueTwo");
		if (x && !json_u64(x, &value_two))
			return perr(c, w, "valueTwo must be a non-negative integer");
		const char *op = json_get_string(a, "op");
		int opv = -1;
		for (size_t k = 0; op && k < ARRAY_SIZE(ops); k++)
			if (streq(ops[k].name, op))
				opv = ops[k].op;
		if (opv < 0)
			return perr(c, w, "unknown op '%s'", op ? op : "");
		rule_add_arg(rule, (unsigned)index, value, value_two, opv);
	}
	return 0;
}

static int parse_rule(struct pctx *c, size_t idx, yajl_val v, struct lc_seccomp_profile *p)
{
	_cleanup_free_ char *where = xasprintf("syscalls[%zu]", idx);
	if (!YAJL_IS_OBJECT(v))
		return perr(c, where, "expected an object, got %s", json_type_name(v));
	_cleanup_free_ char *w = xasprintf("%s.action", where);
	uint32_t action;
	int r = parse_action(c, w, json_get(v, "action"), json_get(v, "errnoRet"), EPERM, &action);
	if (r < 0)
		return r;
	struct lc_seccomp_rule *rule = add_rule(p, action);
	yajl_val names = json_get(v, "names");
	yajl_val name = json_get(v, "name");
	if (names && !YAJL_IS_NULL(names)) {
		free(w);
		w = xasprintf("%s.names", where);
		r = parse_strv(c, w, names, LC_SECCOMP_MAX_NAMES, &rule->names);
		if (r < 0)
			return r;
	} else if (YAJL_IS_STRING(name)) {
		rule->names = xnew(char *, 1);
		rule->names = strv_append(rule->names, name->u.string);
	} else {
		return perr(c, where, "no syscall names");
	}
	yajl_val args = json_get(v, "args");
	if (args) {
		free(w);
		w = xasprintf("%s.args", where);
		r = parse_args(c, w, args, rule);
		if (r < 0)
			return r;
	}
	yajl_val inc = json_get(v, "includes");
	if (inc && !YAJL_IS_NULL(inc)) {
		free(w);
		w = xasprintf("%s.includes", where);
		if ((r = parse_cond(c, w, inc, true, rule)) < 0)
			return r;
	}
	yajl_val exc = json_get(v, "excludes");
	if (exc && !YAJL_IS_NULL(exc)) {
		free(w);
		w = xasprintf("%s.excludes", where);
		if ((r = parse_cond(c, w, exc, false, rule)) < 0)
			return r;
	}
	return 0;
}

/* yajl's tree parser does not say where it stopped; a callback-free stream
 * parse of the same text does. */
static size_t json_error_offset(const char *text, size_t len)
{
	yajl_handle h = yajl_alloc(NULL, NULL, NULL);
	if (!h)
		return 0;
	yajl_status st = yajl_parse(h, (const unsigned char *)text, len);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	size_t off = yajl_get_bytes_consumed(h);
	yajl_free(h);
	return off;
}

static uint32_t native_arch(void)
{
	return seccomp_arch_native();
}

int lc_seccomp_parse(const char *text, size_t len, const char *what,
		     struct lc_seccomp_profile **ret, struct husk_error *err)
{
	struct pctx c = {what, err};
	_cleanup_json_ yajl_val root = NULL;
	struct husk_error perr_ = HUSK_ERROR_INIT;
	if (json_parse(text, len, what, &root, &perr_) < 0) {
		size_t off = json_error_offset(text, len);
		int r = husk_error_set(err, EINVAL,
				       "seccomp profile '%s': invalid JSON at byte %zu: %s", what,
				       off, husk_error_msg(&perr_));
		husk_error_clear(&perr_);
		return r;
	}
	if (!YAJL_IS_OBJECT(root))
		return perr(&c, "top level", "expected an object, got %s", json_type_name(root));

	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p =
	    xnew(struct lc_seccomp_profile, 1);
	yajl_val de = json_get(root, "defaultErrnoRet");
	uint64_t dflt_errno = EPERM;
	if (de && !YAJL_IS_NULL(de) && (!json_u64(de, &dflt_errno) || dflt_errno > 0xffff))
		return perr(&c, "defaultErrnoRet", "must be an integer from 0 to 65535");
	int r = parse_action(&c, "defaultAction", json_get(root, "defaultAction"), NULL,
			     (uint32_t)dflt_errno, &p->default_action);
	if (r < 0)
		return r;

	yajl_val arches = json_get(root, "architectures");
	yajl_val archmap = json_get(root, "archMap");
	if (arches && !YAJL_IS_NULL(arches)) {
		_cleanup_strv_ char **names = NULL;
		if ((r = parse_strv(&c, "architectures", arches, LC_SECCOMP_MAX_ARCHES, &names)) <
		    0)
			return r;
		for (size_t i = 0; names[i]; i++)
			if ((r = add_arch(&c, p, "architectures", names[i])) < 0)
				return r;
	} else if (archmap && !YAJL_IS_NULL(archmap)) {
		/* Docker format: use the entry of the native architecture. */
		if (!YAJL_IS_ARRAY(archmap))
			return perr(&c, "archMap", "expected an array");
		for (size_t i = 0; i < archmap->u.array.len; i++) {
			yajl_val e = archmap->u.array.values[i];
			_cleanup_free_ char *w = xasprintf("archMap[%zu]", i);
			const char *a = json_get_string(e, "architecture");
			if (!a)
				return perr(&c, w, "no architecture");
			uint32_t tok;
			if ((r = parse_arch(&c, w, a, &tok)) < 0)
				return r;
			if (tok != native_arch())
				continue;
			if ((r = add_arch(&c, p, w, a)) < 0)
				return r;
			yajl_val subs = json_get(e, "subArchitectures");
			if (!subs || YAJL_IS_NULL(subs))
				continue;
			_cleanup_strv_ char **names = NULL;
			if ((r = parse_strv(&c, w, subs, LC_SECCOMP_MAX_ARCHES, &names)) < 0)
				return r;
			for (size_t k = 0; names[k]; k++)
				if ((r = add_arch(&c, p, w, names[k])) < 0)
					return r;
		}
	}

	yajl_val flags = json_get(root, "flags");
	if (flags && !YAJL_IS_NULL(flags)) {
		_cleanup_strv_ char **names = NULL;
		if ((r = parse_strv(&c, "flags", flags, 8, &names)) < 0)
			return r;
		for (size_t i = 0; names[i]; i++) {
			size_t k;
			for (k = 0; k < ARRAY_SIZE(filter_flags); k++)
				if (streq(filter_flags[k].name, names[i]))
					break;
			if (k == ARRAY_SIZE(filter_flags))
				return perr(&c, "flags", "unknown flag '%s'", names[i]);
			p->flags |= filter_flags[k].flag;
		}
	}
	if (json_get_string(root, "listenerPath"))
		return perr(&c, "listenerPath", "seccomp notification is not supported");

	yajl_val sys = json_get(root, "syscalls");
	if (sys && !YAJL_IS_NULL(sys)) {
		if (!YAJL_IS_ARRAY(sys))
			return perr(&c, "syscalls", "expected an array, got %s",
				    json_type_name(sys));
		if (sys->u.array.len > LC_SECCOMP_MAX_RULES)
			return perr(&c, "syscalls", "more than %d rules", LC_SECCOMP_MAX_RULES);
		for (size_t i = 0; i < sys->u.array.len; i++)
			if ((r = parse_rule(&c, i, sys->u.array.values[i], p)) < 0)
				return r;
	}
	*ret = steal_ptr(&p);
	return 0;
}

int lc_seccomp_parse_file(const char *path, struct lc_seccomp_profile **ret, struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	struct husk_error e = HUSK_ERROR_INIT;
	if (fs_read_file(path, LC_SECCOMP_MAX_FILE, &text, &len, &e) < 0) {
		int code = e.code;
		husk_error_clear(&e);
		if (code == EFBIG)
			return husk_error_set(err, EINVAL,
					      "seccomp profile '%s': larger than %u bytes", path,
					      LC_SECCOMP_MAX_FILE);
		return husk_error_errno(err, code, "seccomp profile '%s'", path);
	}
	return lc_seccomp_parse(text, len, path, ret, err);
}

/* ---- compiling ---- */

static const char *docker_arch_name(uint32_t a)
{
	switch (a) {
	case SCMP_ARCH_X86_64:
		return "amd64";
	case SCMP_ARCH_X86:
		return "x86";
	case SCMP_ARCH_X32:
		return "x32";
	case SCMP_ARCH_AARCH64:
		return "arm64";
	case SCMP_ARCH_ARM:
		return "arm";
	case SCMP_ARCH_PPC64LE:
		return "ppc64le";
	case SCMP_ARCH_S390X:
		return "s390x";
	case SCMP_ARCH_S390:
		return "s390";
	case SCMP_ARCH_RISCV64:
		return "riscv64";
	default:
		return "unknown";
	}
}

static bool strv_contains(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

static bool kernel_at_least(const char *min)
{
	struct utsname u;
	int maj = 0, mnr = 0, kmaj = 0, kmnr = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &kmaj, &kmnr) < 1)
		return true;
	if (sscanf(min, "%d.%d", &maj, &mnr) < 1)
		return true;
	return kmaj > maj || (kmaj == maj && kmnr >= mnr);
}

static bool rule_applies(const struct lc_seccomp_rule *r, uint64_t caps)
{
	const char *arch = docker_arch_name(native_arch());
	if ((r->caps_all & caps) != r->caps_all)
		return false;
	if (r->caps_none & caps)
		return false;
	if (r->arches && r->arches[0] && !strv_contains(r->arches, arch))
		return false;
	if (strv_contains(r->not_arches, arch))
		return false;
	if (r->min_kernel && !kernel_at_least(r->min_kernel))
		return false;
	return true;
}

/* Syscalls newer than the libseccomp husk builds with (Debian 12's 2.5.4
 * knows kernel 6.7's): numbers from the kernel's tables. From 4.20 on
 * (nr 424), every architecture husk runs on shares one numbering; x32 adds
 * its bit to it. nr_x86_64 is for syscalls of x86-64 alone. */
static const struct {
	const char *name;
	int nr;	       /* generic: x86-64, i386, x32 (with its bit), arm, arm64 */
	int nr_x86_64; /* x86-64 only */
} by_number[] = {
    {"statmount", 457, 0},	   {"listmount", 458, 0},	 {"lsm_get_self_attr", 459, 0},
    {"lsm_set_self_attr", 460, 0}, {"lsm_list_modules", 461, 0}, {"mseal", 462, 0},
    {"setxattrat", 463, 0},	   {"getxattrat", 464, 0},	 {"listxattrat", 465, 0},
    {"removexattrat", 466, 0},	   {"uretprobe", 0, 335},
};

#define X32_SYSCALL_BIT 0x40000000

/* The number of name on arch (a SCMP_ARCH_* token), or -1. */
static int by_number_nr(const char *name, uint32_t arch)
{
	for (size_t i = 0; i < ARRAY_SIZE(by_number); i++) {
		if (!streq(by_number[i].name, name))
			continue;
		switch (arch) {
		case SCMP_ARCH_X86_64:
			return by_number[i].nr ? by_number[i].nr : by_number[i].nr_x86_64;
		case SCMP_ARCH_X32:
			return by_number[i].nr ? by_number[i].nr | X32_SYSCALL_BIT : -1;
		case SCMP_ARCH_X86:
		case SCMP_ARCH_ARM:
		case SCMP_ARCH_AARCH64:
			return by_number[i].nr ? by_number[i].nr : -1;
		default:
			return -1;
		}
	}
	return -1;
}

/* The audit arch the kernel reports in seccomp_data for a SCMP_ARCH_*
 * token (x32 runs as x86-64, told apart by X32_SYSCALL_BIT). */
static uint32_t audit_arch(uint32_t arch)
{
	return arch == SCMP_ARCH_X32 ? SCMP_ARCH_X86_64 : arch;
}

/* A prologue for rules on syscalls libseccomp cannot name: per
 * architecture, the numbers and their actions, checked before the filter
 * libseccomp made (which starts by loading the architecture again; its
 * jumps are relative, so it runs unchanged after us). Only rules without
 * argument comparisons; the first rule for a syscall wins. */
struct nr_action {
	uint32_t arch; /* audit arch */
	uint32_t nr;
	uint32_t action;
};

static void nr_action_add(struct nr_action **v, size_t *n, uint32_t arch, uint32_t nr,
			  uint32_t action)
{
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].arch == arch && (*v)[i].nr == nr)
			return;
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct nr_action){arch, nr, action};
}

static struct sock_filter *prologue(const struct nr_action *v, size_t n, size_t *ret_len)
{
	/* Per arch: ld arch; jeq arch else next arch; ld nr; per syscall:
	 * jeq nr, then ret action. */
	struct sock_filter *f = xnew(struct sock_filter, 4 * n + 2);
	size_t len = 0;
	bool done[64] = {false};
	for (size_t i = 0; i < n && i < ARRAY_SIZE(done); i++) {
		if (done[i])
			continue;
		size_t count = 0;
		for (size_t j = i; j < n && j < ARRAY_SIZE(done); j++)
			if (!done[j] && v[j].arch == v[i].arch)
				count++;
		f[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
							offsetof(struct seccomp_data, arch));
		/* Skip this arch's block: ld nr and two per syscall. */
		f[len++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, v[i].arch, 0,
							(uint8_t)(1 + 2 * count));
		f[len++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
							offsetof(struct seccomp_data, nr));
		for (size_t j = i; j < n && j < ARRAY_SIZE(done); j++) {
			if (done[j] || v[j].arch != v[i].arch)
				continue;
			done[j] = true;
			f[len++] =
			    (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, v[j].nr, 0, 1);
			f[len++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, v[j].action);
		}
	}
	*ret_len = len;
	return f;
}

static void seccomp_ctx_release(scmp_filter_ctx *c)
{
	if (*c)
		seccomp_release(*c);
}

static int add_one(scmp_filter_ctx ctx, const struct lc_seccomp_rule *rule, const char *name,
		   int nr, const struct scmp_arg_cmp *cmps, unsigned n, struct husk_error *err)
{
	int r = seccomp_rule_add_array(ctx, rule->action, nr, n, cmps);
	/* EEXIST: the same rule twice (Docker's lists repeat names). */
	if (r < 0 && r != -EEXIST)
		return husk_error_errno(err, -r, "seccomp rule for '%s'", name);
	return 0;
}

int lc_seccomp_compile(const struct lc_seccomp_profile *profile, uint64_t caps,
		       struct lc_seccomp_bpf **ret, struct husk_error *err)
{
	_cleanup_(seccomp_ctx_release) scmp_filter_ctx ctx = seccomp_init(profile->default_action);
	if (!ctx)
		return husk_error_set(err, EINVAL, "seccomp: cannot create a filter");
	/* The launcher sets no_new_privs itself, when the spec asks for it. */
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	for (size_t i = 0; i < profile->n_arches; i++) {
		int r = seccomp_arch_add(ctx, profile->arches[i]);
		if (r < 0 && r != -EEXIST)
			return husk_error_errno(err, -r, "seccomp: add architecture %#x",
						profile->arches[i]);
	}
	uint32_t arches[LC_SECCOMP_MAX_ARCHES + 1];
	size_t n_arches = 0;
	arches[n_arches++] = native_arch();
	for (size_t i = 0; i < profile->n_arches; i++)
		if (profile->arches[i] != native_arch())
			arches[n_arches++] = profile->arches[i];
	_cleanup_free_ struct nr_action *extra = NULL;
	size_t n_extra = 0;
	for (size_t i = 0; i < profile->n_rules; i++) {
		const struct lc_seccomp_rule *rule = &profile->rules[i];
		if (!rule_applies(rule, caps) || rule->action == profile->default_action)
			continue;
		for (size_t k = 0; rule->n_args == 0 && rule->names && rule->names[k]; k++) {
			if (seccomp_syscall_resolve_name(rule->names[k]) != __NR_SCMP_ERROR)
				continue;
			for (size_t a = 0; a < n_arches && n_extra < 64; a++) {
				int nr = by_number_nr(rule->names[k], arches[a]);
				if (nr >= 0)
					nr_action_add(&extra, &n_extra, audit_arch(arches[a]),
						      (uint32_t)nr, rule->action);
			}
		}
		struct scmp_arg_cmp cmps[6 * 8];
		bool repeated = false;
		for (size_t a = 0; a < rule->n_args && a < ARRAY_SIZE(cmps); a++) {
			const struct lc_seccomp_arg *x = &rule->args[a];
			cmps[a] = (struct scmp_arg_cmp){x->index, (enum scmp_compare)x->op,
							x->value, x->value_two};
			for (size_t b = 0; b < a; b++)
				if (rule->args[b].index == x->index)
					repeated = true;
		}
		for (size_t k = 0; rule->names && rule->names[k]; k++) {
			const char *name = rule->names[k];
			int nr = seccomp_syscall_resolve_name(name);
			if (nr == __NR_SCMP_ERROR)
				continue;
			int r;
			if (!repeated) {
				r = add_one(ctx, rule, name, nr, cmps, (unsigned)rule->n_args, err);
			} else {
				/* libseccomp wants one comparison per argument and
				 * rule: comparisons of one argument become separate
				 * rules, i.e. they are or-ed. */
				r = 0;
				for (size_t a = 0; a < rule->n_args && r == 0; a++)
					r = add_one(ctx, rule, name, nr, &cmps[a], 1, err);
			}
			if (r < 0)
				return r;
		}
	}

	_cleanup_close_ int fd = memfd_create("husk-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return husk_error_errno(err, errno, "seccomp: memfd_create");
	int r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		return husk_error_errno(err, -r, "seccomp: export the filter");
	off_t size = lseek(fd, 0, SEEK_END);
	size_t pro_len = 0;
	_cleanup_free_ struct sock_filter *pro = prologue(extra, n_extra, &pro_len);
	if (size <= 0 || size % sizeof(struct sock_filter) ||
	    size / sizeof(struct sock_filter) + pro_len > BPF_MAXINSNS)
		return husk_error_set(err, EINVAL,
				      "seccomp: filter of %lld bytes is invalid or too long",
				      (long long)size);
	struct lc_seccomp_bpf *b = xnew(struct lc_seccomp_bpf, 1);
	b->insns = xnew(struct sock_filter, pro_len + (size_t)size / sizeof(struct sock_filter));
	b->len = (unsigned short)(pro_len + (size_t)size / sizeof(struct sock_filter));
	b->flags = profile->flags;
	if (pro_len)
		memcpy(b->insns, pro, pro_len * sizeof(*pro));
	if (pread(fd, (struct sock_filter *)b->insns + pro_len, (size_t)size, 0) != size) {
		lc_seccomp_bpf_free(b);
		return husk_error_errno(err, EIO, "seccomp: read the filter back");
	}
	*ret = b;
	return 0;
}

int lc_seccomp_parse_path(const char *s, const char *field, int *ret_mode, const char **ret_path,
			  struct husk_error *err)
{
	*ret_path = NULL;
	if (isempty(s) || streq(s, "unconfined")) {
		*ret_mode = LC_SECCOMP_UNCONFINED;
		return 0;
	}
	if (streq(s, "runtime/default") || streq(s, "docker/default")) {
		*ret_mode = LC_SECCOMP_RUNTIME_DEFAULT;
		return 0;
	}
	if (startswith(s, "localhost/") && s[strlen("localhost/")] == '/') {
		*ret_mode = LC_SECCOMP_LOCALHOST;
		*ret_path = s + strlen("localhost/");
		return 0;
	}
	return husk_error_set(err, EINVAL,
			      "%s: '%.256s' is not one of runtime/default, unconfined, "
			      "localhost/<absolute path>",
			      field, s);
}

/* ---- the OCI form ---- */

static const struct {
	uint32_t arch;
	const char *name;
} oci_arches[] = {
    {SCMP_ARCH_X86_64, "SCMP_ARCH_X86_64"},   {SCMP_ARCH_X86, "SCMP_ARCH_X86"},
    {SCMP_ARCH_X32, "SCMP_ARCH_X32"},	      {SCMP_ARCH_AARCH64, "SCMP_ARCH_AARCH64"},
    {SCMP_ARCH_ARM, "SCMP_ARCH_ARM"},	      {SCMP_ARCH_PPC64LE, "SCMP_ARCH_PPC64LE"},
    {SCMP_ARCH_PPC64, "SCMP_ARCH_PPC64"},     {SCMP_ARCH_PPC, "SCMP_ARCH_PPC"},
    {SCMP_ARCH_S390X, "SCMP_ARCH_S390X"},     {SCMP_ARCH_S390, "SCMP_ARCH_S390"},
    {SCMP_ARCH_RISCV64, "SCMP_ARCH_RISCV64"},
};

static void oci_action(yajl_gen g, const char *key, const char *errno_key, uint32_t a)
{
	const char *name = NULL;
	bool with_errno = false;
	if ((a & 0xffff0000u) == SCMP_ACT_ERRNO(0)) {
		name = "SCMP_ACT_ERRNO";
		with_errno = true;
	} else if ((a & 0xffff0000u) == SCMP_ACT_TRACE(0)) {
		name = "SCMP_ACT_TRACE";
		with_errno = true;
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(actions) && !name; i++)
			if (!actions[i].takes_errno && actions[i].action == a)
				name = actions[i].name;
	}
	json_kv_str(g, key, name ? name : "SCMP_ACT_KILL_PROCESS");
	if (with_errno)
		json_kv_int(g, errno_key, a & 0xffff);
}

static void oci_u64(yajl_gen g, const char *key, uint64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	json_key(g, key);
	yajl_gen_number(g, buf, (size_t)n);
}

void lc_seccomp_gen_oci(yajl_gen g, const struct lc_seccomp_profile *p, uint64_t caps)
{
	yajl_gen_map_open(g);
	oci_action(g, "defaultAction", "defaultErrnoRet", p->default_action);
	json_key(g, "architectures");
	yajl_gen_array_open(g);
	uint32_t native = native_arch();
	size_t n_arches = p->n_arches ? p->n_arches : 1;
	for (size_t i = 0; i < n_arches; i++) {
		uint32_t a = p->n_arches ? p->arches[i] : native;
		for (size_t k = 0; k < ARRAY_SIZE(oci_arches); k++)
			if (oci_arches[k].arch == a)
				json_str(g, oci_arches[k].name);
	}
	yajl_gen_array_close(g);
	if (p->flags) {
		json_key(g, "flags");
		yajl_gen_array_open(g);
		for (size_t i = 0; i < ARRAY_SIZE(filter_flags); i++)
			if (p->flags & filter_flags[i].flag)
				json_str(g, filter_flags[i].name);
		yajl_gen_array_close(g);
	}
	json_key(g, "syscalls");
	yajl_gen_array_open(g);
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct lc_seccomp_rule *r = &p->rules[i];
		/* Conditions are resolved here, as at compile: the OCI form has
		 * no includes/excludes. */
		if (!r->names || !r->names[0] || !rule_applies(r, caps))
			continue;
		yajl_gen_map_open(g);
		json_key(g, "names");
		yajl_gen_array_open(g);
		for (size_t k = 0; r->names[k]; k++)
			json_str(g, r->names[k]);
		yajl_gen_array_close(g);
		oci_action(g, "action", "errnoRet", r->action);
		if (r->n_args) {
			json_key(g, "args");
			yajl_gen_array_open(g);
			for (size_t k = 0; k < r->n_args; k++) {
				const struct lc_seccomp_arg *a = &r->args[k];
				const char *op = "SCMP_CMP_EQ";
				for (size_t o = 0; o < ARRAY_SIZE(ops); o++)
					if (ops[o].op == a->op)
						op = ops[o].name;
				yajl_gen_map_open(g);
				json_kv_int(g, "index", a->index);
				oci_u64(g, "value", a->value);
				oci_u64(g, "valueTwo", a->value_two);
				json_kv_str(g, "op", op);
				yajl_gen_map_close(g);
			}
			yajl_gen_array_close(g);
		}
		yajl_gen_map_close(g);
	}
	yajl_gen_array_close(g);
	yajl_gen_map_close(g);
}
