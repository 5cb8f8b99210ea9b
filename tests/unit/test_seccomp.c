/* CUnit tests of runtime/seccomp: parsing OCI and Docker profiles, errors
 * that locate the problem, the RuntimeDefault profile's conditions, and
 * filters installed in a forked child (no root needed: no_new_privs). */
#include "runtime/launcher/launcher.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "unit.h"

static struct lc_seccomp_profile *parse(const char *json, struct husk_error *err)
{
	struct lc_seccomp_profile *p = NULL;
	if (lc_seccomp_parse(json, strlen(json), "p.json", &p, err) < 0)
		return NULL;
	return p;
}

static void test_parse_oci(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p =
	    parse("{\"defaultAction\": \"SCMP_ACT_ALLOW\","
		  " \"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\"],"
		  " \"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"],"
		  " \"syscalls\": ["
		  "  {\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", "
		  "\"errnoRet\": 13},"
		  "  {\"name\": \"personality\", \"action\": \"SCMP_ACT_ERRNO\","
		  "   \"args\": [{\"index\": 0, \"value\": 18446744073709551615, \"valueTwo\": 0,"
		  "    \"op\": \"SCMP_CMP_EQ\"}]},"
		  "  {\"names\": [\"kill\"], \"action\": \"SCMP_ACT_KILL_PROCESS\"}]}",
		  &err);
	if (!p)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->default_action, SCMP_ACT_ALLOW);
	CU_ASSERT_EQUAL(p->n_arches, 2);
	CU_ASSERT_EQUAL(p->arches[0], SCMP_ARCH_X86_64);
	CU_ASSERT_EQUAL(p->flags, 2u);
	CU_ASSERT_EQUAL_FATAL(p->n_rules, 3);
	CU_ASSERT_EQUAL(strv_length(p->rules[0].names), 2);
	CU_ASSERT_EQUAL(p->rules[0].action, SCMP_ACT_ERRNO(13));
	CU_ASSERT_EQUAL(p->rules[1].action, SCMP_ACT_ERRNO(EPERM));
	CU_ASSERT_EQUAL_FATAL(p->rules[1].n_args, 1);
	CU_ASSERT_EQUAL(p->rules[1].args[0].value, UINT64_MAX);
	CU_ASSERT_EQUAL(p->rules[1].args[0].op, SCMP_CMP_EQ);
	CU_ASSERT_EQUAL(p->rules[2].action, SCMP_ACT_KILL_PROCESS);
}

static void test_parse_docker(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p =
	    parse("{\"defaultAction\": \"SCMP_ACT_ERRNO\", \"defaultErrnoRet\": 38,"
		  " \"archMap\": [{\"architecture\": \"SCMP_ARCH_X86_64\","
		  "   \"subArchitectures\": [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X32\"]},"
		  "  {\"architecture\": \"SCMP_ARCH_AARCH64\", \"subArchitectures\": "
		  "[\"SCMP_ARCH_ARM\"]}],"
		  " \"syscalls\": [{\"names\": [\"reboot\"], \"action\": \"SCMP_ACT_ALLOW\","
		  "   \"includes\": {\"caps\": [\"CAP_SYS_BOOT\"], \"minKernel\": \"4.8\"},"
		  "   \"excludes\": {\"arches\": [\"s390x\"]}, \"comment\": \"x\"}]}",
		  &err);
	if (!p)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(p->default_action, SCMP_ACT_ERRNO(38));
#if defined(__x86_64__)
	CU_ASSERT_EQUAL(p->n_arches, 3);
#endif
	CU_ASSERT_EQUAL_FATAL(p->n_rules, 1);
	CU_ASSERT_EQUAL(p->rules[0].caps_all, LC_CAP_BIT(22));
	CU_ASSERT_STRING_EQUAL(p->rules[0].min_kernel, "4.8");
	CU_ASSERT_STRING_EQUAL(p->rules[0].not_arches[0], "s390x");
}

static void expect_error(const char *json, const char *needle)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p = parse(json, &err);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_EQUAL(err.code, EINVAL);
	if (!err.msg || !strstr(err.msg, needle))
		fprintf(stderr, "\nwant '%s' in '%s'\n", needle, husk_error_msg(&err));
	CU_ASSERT_PTR_NOT_NULL(err.msg && strstr(err.msg, needle));
}

static void test_parse_errors(void)
{
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\",\n \"syscalls\": [}",
		     "seccomp profile 'p.json': invalid JSON at byte");
	expect_error("[]", "top level: expected an object");
	expect_error("{}", "defaultAction: expected a string, got null");
	expect_error("{\"defaultAction\": \"SCMP_ACT_MAYBE\"}",
		     "defaultAction: unknown action 'SCMP_ACT_MAYBE'");
	expect_error("{\"defaultAction\": \"SCMP_ACT_NOTIFY\"}", "not supported");
	expect_error(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_Z80\"]}",
	    "architectures: unknown architecture 'SCMP_ARCH_Z80'");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ERRNO\"}, {\"names\": [\"b\"], \"action\": 3}]}",
		     "syscalls[1].action: expected a string, got number");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"action\": "
		     "\"SCMP_ACT_ALLOW\"}]}",
		     "syscalls[0]: no syscall names");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 9, \"op\": "
		     "\"SCMP_CMP_EQ\"}]}]}",
		     "syscalls[0].args[0]: index must be an integer from 0 to 5");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ALLOW\", \"args\": [{\"index\": 1, \"op\": "
		     "\"SCMP_CMP_HUH\"}]}]}",
		     "syscalls[0].args[0]: unknown op 'SCMP_CMP_HUH'");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": -1}]}",
		     "errnoRet must be a non-negative integer");
	expect_error(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_X\"]}",
	    "flags: unknown flag");
	expect_error("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"a\"],"
		     " \"action\": \"SCMP_ACT_ALLOW\", \"includes\": {\"caps\": [\"CAP_WHAT\"]}}]}",
		     "syscalls[0].includes.caps: unknown capability 'CAP_WHAT'");

	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	struct lc_seccomp_profile *p = NULL;
	CU_ASSERT_EQUAL(lc_seccomp_parse_file("/nonexistent/p.json", &p, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.msg,
			       "seccomp profile '/nonexistent/p.json': No such file or directory");
}

/* Run fn in a child under the filter; the child's exit code is returned. */
static int in_child(const struct lc_seccomp_bpf *b, int (*fn)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || lc_seccomp_install(b) < 0)
			_exit(99);
		_exit(fn());
	}
	int st = 0;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int try_unshare_user(void)
{
	return unshare(CLONE_NEWUSER) < 0 ? errno : 0;
}
static int try_keyctl(void)
{
	return syscall(SYS_keyctl, 0, 0, 0, 0, 0) < 0 ? errno : 0;
}
static int try_getpid(void)
{
	return getpid() > 0 ? 0 : 1;
}
static int try_clone3(void)
{
	return syscall(SYS_clone3, NULL, 0) < 0 ? errno : 0;
}
static int try_personality(void)
{
	return syscall(SYS_personality, 0x0001) < 0 ? errno : 0;
}
static int try_io_uring_setup(void)
{
	char params[120] = {0};
	return syscall(SYS_io_uring_setup, 1, params) < 0 ? errno : 0;
}
/* Newer calls, with arguments that fail in the kernel (not in the filter). */
static int try_cachestat(void)
{
	return syscall(451, -1, NULL, NULL, 0) < 0 ? errno : 0;
}
static int try_fchmodat2(void)
{
	return syscall(452, AT_FDCWD, "/nonexistent-husk", 0, 0) < 0 ? errno : 0;
}
static int try_futex_wake(void)
{
	return syscall(454, NULL, 0, 1, 0x7fffffff) < 0 ? errno : 0;
}
static int try_statmount(void)
{
	return syscall(457, NULL, NULL, 0, 0) < 0 ? errno : 0;
}
static int try_listmount(void)
{
	return syscall(458, NULL, NULL, 0, 0) < 0 ? errno : 0;
}
static int try_lsm_list_modules(void)
{
	return syscall(461, NULL, NULL, 0) < 0 ? errno : 0;
}
static int try_mseal(void)
{
	return syscall(462, NULL, 0, ~0UL) < 0 ? errno : 0;
}
static int try_getxattrat(void)
{
	return syscall(464, -1, "x", 0, "user.x", NULL, 0) < 0 ? errno : 0;
}
static int try_mkdir(void)
{
	return mkdir("/tmp/husk-seccomp-never", 0700) < 0 ? errno : 0;
}
static int try_fork(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p < 0)
		return errno;
	waitpid(p, NULL, 0);
	return 0;
}

static void test_runtime_default(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p =
	    lc_seccomp_runtime_default();
	CU_ASSERT_EQUAL(p->default_action, SCMP_ACT_ERRNO(EPERM));
	_cleanup_(lc_seccomp_bpf_freep) struct lc_seccomp_bpf *b = NULL;
	int r = lc_seccomp_compile(p, LC_CAPS_DEFAULT, &b, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT(b->len > 100);
	CU_ASSERT_EQUAL(in_child(b, try_getpid), 0);
	CU_ASSERT_EQUAL(in_child(b, try_fork), 0);
	CU_ASSERT_EQUAL(in_child(b, try_unshare_user), EPERM);
	CU_ASSERT_EQUAL(in_child(b, try_keyctl), EPERM);
	CU_ASSERT_EQUAL(in_child(b, try_clone3), ENOSYS);
	CU_ASSERT_EQUAL(in_child(b, try_personality), EPERM);
	/* io_uring is refused (issue 10), like Docker and containerd. */
	CU_ASSERT_EQUAL(in_child(b, try_io_uring_setup), EPERM);
	/* Newer calls Docker allows reach the kernel, which refuses these
	 * arguments with its own errors (EBADF, EFAULT, ...; ENOSYS on older
	 * kernels), not the filter's EPERM; statmount and later by number, as
	 * Debian 12's libseccomp does not know them. */
	CU_ASSERT_NOT_EQUAL(in_child(b, try_cachestat), EPERM);
	CU_ASSERT_NOT_EQUAL(in_child(b, try_fchmodat2), EPERM);
	CU_ASSERT_NOT_EQUAL(in_child(b, try_futex_wake), EPERM);
	CU_ASSERT_NOT_EQUAL(in_child(b, try_statmount), EPERM);
	CU_ASSERT_NOT_EQUAL(in_child(b, try_listmount), EPERM);
	CU_ASSERT_NOT_EQUAL(in_child(b, try_mseal), EPERM);
	CU_ASSERT_NOT_EQUAL(in_child(b, try_getxattrat), EPERM);
	/* The lsm_* calls need CAP_SYS_ADMIN, as in Docker. */
	CU_ASSERT_EQUAL(in_child(b, try_lsm_list_modules), EPERM);

	/* With CAP_SYS_ADMIN, unshare and clone3 are in the list. */
	_cleanup_(lc_seccomp_bpf_freep) struct lc_seccomp_bpf *b2 = NULL;
	CU_ASSERT_EQUAL_FATAL(lc_seccomp_compile(p, LC_CAPS_DEFAULT | LC_CAP_BIT(21), &b2, &err),
			      0);
	CU_ASSERT_EQUAL(in_child(b2, try_unshare_user), 0);
	CU_ASSERT_NOT_EQUAL(in_child(b2, try_clone3), ENOSYS);
	CU_ASSERT_NOT_EQUAL(in_child(b2, try_lsm_list_modules), EPERM);
	CU_ASSERT_EQUAL(in_child(b2, try_io_uring_setup), EPERM);
}

/* ---- RuntimeDefault against Docker's default profile ----
 * Docker's profiles/seccomp/default.json (moby, after #46762 dropped
 * io_uring in 2023, #47341 added kernel 6.5-6.7's calls in 2024, #50077 and
 * #50097 kernel 6.8-6.13's in 2025), syscall by syscall: what it allows
 * unconditionally and what it allows with a capability. */
#define NAMES(...) ((const char *const[]){__VA_ARGS__, NULL})
/* clang-format off */
static const char *const docker_allow[] = {
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat",
	"capget", "capset", "chdir", "chmod", "chown", "chown32", "clock_adjtime",
	"clock_adjtime64", "clock_getres", "clock_getres_time64", "clock_gettime",
	"clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "close", "close_range",
	"connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
	"epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2",
	"epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit",
	"exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
	"fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32",
	"fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
	"fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
	"fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue",
	"futex_time64", "futex_wait", "futex_waitv", "futex_wake", "futimesat",
	"get_robust_list", "get_thread_area", "getcpu", "getcwd", "getdents", "getdents64",
	"getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
	"getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
	"getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32",
	"getrlimit", "getrusage", "getsid", "getsockname", "getsockopt", "gettid",
	"gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat", "inotify_add_watch",
	"inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy",
	"io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit",
	"ioctl", "ioprio_get", "ioprio_set", "ipc", "kill", "landlock_add_rule",
	"landlock_create_ruleset", "landlock_restrict_self", "lchown", "lchown32", "lgetxattr",
	"link", "linkat", "listen", "listmount", "listxattr", "listxattrat", "llistxattr",
	"_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise",
	"map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
	"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2",
	"mprotect", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
	"mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "mremap",
	"mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall",
	"munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
	"openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
	"pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
	"pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
	"pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
	"readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
	"remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
	"restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask",
	"rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
	"rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
	"sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
	"sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
	"sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
	"sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
	"semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto",
	"set_robust_list", "set_thread_area", "set_tid_address", "setfsgid", "setfsgid32",
	"setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32",
	"setitimer", "setpgid", "setpriority", "setregid", "setregid32", "setresgid",
	"setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
	"setsid", "setsockopt", "setuid", "setuid32", "setxattr", "setxattrat", "shmat",
	"shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
	"sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
	"statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync",
	"sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create",
	"timer_delete", "timer_getoverrun", "timer_gettime", "timer_gettime64",
	"timer_settime", "timer_settime64", "timerfd_create", "timerfd_gettime",
	"timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill",
	"truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat",
	"uretprobe", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
	"wait4", "waitid", "waitpid", "write", "writev",
	/* "includes": {"minKernel": "4.8"}, true of every kernel husk runs on. */
	"process_vm_readv", "process_vm_writev", "ptrace",
	NULL,
};
/* clang-format on */
static const struct {
	int cap;
	const char *const *names;
} docker_caps[] = {
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
    {19 /* SYS_PTRACE */, NAMES("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
				"process_vm_writev", "ptrace")},
    {17 /* SYS_RAWIO */, NAMES("iopl", "ioperm")},
    {25 /* SYS_TIME */, NAMES("settimeofday", "stime", "clock_settime", "clock_settime64")},
    {26 /* SYS_TTY_CONFIG */, NAMES("vhangup")},
    {23 /* SYS_NICE */,
     NAMES("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node")},
    {34 /* SYSLOG */, NAMES("syslog")},
    {39 /* BPF */, NAMES("bpf")},
    {38 /* PERFMON */, NAMES("perf_event_open")},
};
/* Where husk differs from Docker on purpose, and why. */
static const struct {
	const char *name, *why;
} docker_differences[] = {
    /* Docker's rules for architectures husk is not built for. */
    {"s390_pci_mmio_read", "s390 only"}, {"s390_pci_mmio_write", "s390 only"},
    {"s390_runtime_instr", "s390 only"}, {"riscv_flush_icache", "riscv64 only"},
    {"riscv_hwprobe", "riscv64 only"},	 {"swapcontext", "ppc64le only"},
};

static bool has_name(const char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (streq(v[i], s))
			return true;
	return false;
}

static bool is_difference(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(docker_differences); i++)
		if (streq(docker_differences[i].name, name))
			return true;
	return false;
}

static bool unconditional(const struct lc_seccomp_rule *r)
{
	return r->action == SCMP_ACT_ALLOW && r->n_args == 0 && !r->caps_all && !r->caps_none &&
	       !(r->arches && r->arches[0]) && !(r->not_arches && r->not_arches[0]) &&
	       !r->min_kernel;
}

/* Does husk's profile allow name with no condition, or with cap (-1: none)? */
static bool husk_allows(const struct lc_seccomp_profile *p, const char *name, int cap)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct lc_seccomp_rule *r = &p->rules[i];
		if (!has_name((const char *const *)r->names, name) || r->action != SCMP_ACT_ALLOW ||
		    r->n_args)
			continue;
		if (unconditional(r))
			return true;
		if (cap >= 0 && r->caps_all == LC_CAP_BIT(cap) && !r->caps_none && !r->arches &&
		    !r->not_arches)
			return true;
	}
	return false;
}

static void test_docker_comparison(void)
{
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p =
	    lc_seccomp_runtime_default();
	size_t missing = 0, extra = 0;
	for (size_t i = 0; docker_allow[i]; i++)
		if (!is_difference(docker_allow[i]) && !husk_allows(p, docker_allow[i], -1)) {
			fprintf(stderr, "\nDocker allows '%s', husk refuses it", docker_allow[i]);
			missing++;
		}
	for (size_t i = 0; i < ARRAY_SIZE(docker_caps); i++)
		for (size_t k = 0; docker_caps[i].names[k]; k++)
			if (!husk_allows(p, docker_caps[i].names[k], docker_caps[i].cap)) {
				fprintf(stderr, "\nDocker allows '%s' with capability %d, husk not",
					docker_caps[i].names[k], docker_caps[i].cap);
				missing++;
			}
	/* And nothing more: every name husk allows, Docker allows alike. */
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct lc_seccomp_rule *r = &p->rules[i];
		if (r->action != SCMP_ACT_ALLOW || r->n_args)
			continue;
		for (size_t k = 0; r->names[k]; k++) {
			const char *n = r->names[k];
			bool ok = is_difference(n);
			if (unconditional(r)) {
				ok = ok || has_name(docker_allow, n);
			} else if (r->arches || r->not_arches) {
				ok = true; /* arch_prctl, modify_ldt, arm's: as Docker's */
			} else {
				for (size_t g = 0; g < ARRAY_SIZE(docker_caps); g++)
					if (r->caps_all == LC_CAP_BIT(docker_caps[g].cap) &&
					    has_name(docker_caps[g].names, n))
						ok = true;
			}
			if (!ok) {
				fprintf(stderr, "\nhusk allows '%s', Docker does not", n);
				extra++;
			}
		}
	}
	CU_ASSERT_EQUAL(missing, 0);
	CU_ASSERT_EQUAL(extra, 0);
	/* io_uring: refused by both (EPERM, the default action). */
	static const char *const uring[] = {"io_uring_setup", "io_uring_enter",
					    "io_uring_register"};
	for (size_t i = 0; i < ARRAY_SIZE(uring); i++) {
		CU_ASSERT_FALSE(husk_allows(p, uring[i], 21));
		CU_ASSERT_FALSE(has_name(docker_allow, uring[i]));
	}
}

static void test_localhost_compile(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p = parse(
	    "{\"defaultAction\": \"SCMP_ACT_ALLOW\","
	    " \"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\", \"no_such_syscall\"],"
	    "   \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 13},"
	    "  {\"names\": [\"personality\"], \"action\": \"SCMP_ACT_ERRNO\", \"errnoRet\": 22,"
	    "   \"args\": [{\"index\": 0, \"value\": 1, \"op\": \"SCMP_CMP_EQ\"},"
	    "              {\"index\": 0, \"value\": 2, \"op\": \"SCMP_CMP_EQ\"}]}]}",
	    &err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	_cleanup_(lc_seccomp_bpf_freep) struct lc_seccomp_bpf *b = NULL;
	int r = lc_seccomp_compile(p, 0, &b, &err);
	if (r < 0)
		fprintf(stderr, "\n%s\n", husk_error_msg(&err));
	CU_ASSERT_EQUAL_FATAL(r, 0);
	CU_ASSERT_EQUAL(in_child(b, try_mkdir), EACCES);
	CU_ASSERT_EQUAL(in_child(b, try_personality), EINVAL);
	CU_ASSERT_EQUAL(in_child(b, try_getpid), 0);
	CU_ASSERT_EQUAL(lc_seccomp_mode_parse("runtime_default"), LC_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(lc_seccomp_mode_parse("nope"), -1);
	CU_ASSERT_STRING_EQUAL(lc_seccomp_mode_name(LC_SECCOMP_LOCALHOST), "localhost");
}

static void test_filter_file(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	_cleanup_(lc_seccomp_profile_freep) struct lc_seccomp_profile *p =
	    lc_seccomp_runtime_default();
	_cleanup_(lc_seccomp_bpf_freep) struct lc_seccomp_bpf *b = NULL;
	CU_ASSERT_EQUAL_FATAL(lc_seccomp_compile(p, LC_CAPS_DEFAULT, &b, &err), 0);
	char *dir = unit_tmpdir();
	_cleanup_free_ char *path = xasprintf("%s/f.bpf", dir);
	CU_ASSERT_EQUAL_FATAL(lc_seccomp_bpf_write(b, path, &err), 0);
	_cleanup_(lc_seccomp_bpf_freep) struct lc_seccomp_bpf *b2 = NULL;
	CU_ASSERT_EQUAL_FATAL(lc_seccomp_bpf_read(path, &b2, &err), 0);
	CU_ASSERT_EQUAL(b2->len, b->len);
	CU_ASSERT_EQUAL(memcmp(b2->insns, b->insns, b->len * sizeof(struct sock_filter)), 0);
	CU_ASSERT_EQUAL(in_child(b2, try_keyctl), EPERM);
	unit_write(dir, "junk.bpf", "not a filter at all");
	_cleanup_free_ char *junk = xasprintf("%s/junk.bpf", dir);
	struct lc_seccomp_bpf *b3 = NULL;
	CU_ASSERT_EQUAL(lc_seccomp_bpf_read(junk, &b3, &err), -EINVAL);
	CU_ASSERT_TRUE(strstr(husk_error_msg(&err), "not a husk filter file") != NULL);
	husk_error_clear(&err);
	_cleanup_free_ char *missing = xasprintf("%s/missing.bpf", dir);
	CU_ASSERT_EQUAL(lc_seccomp_bpf_read(missing, &b3, &err), -ENOENT);
	unit_rmdir(dir);
}

static void test_parse_path(void)
{
	_cleanup_error_ struct husk_error err = HUSK_ERROR_INIT;
	int mode = -1;
	const char *path = "x";
	CU_ASSERT_EQUAL(lc_seccomp_parse_path("", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, LC_SECCOMP_UNCONFINED);
	CU_ASSERT_PTR_NULL(path);
	CU_ASSERT_EQUAL(lc_seccomp_parse_path("unconfined", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, LC_SECCOMP_UNCONFINED);
	CU_ASSERT_EQUAL(lc_seccomp_parse_path("runtime/default", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, LC_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(lc_seccomp_parse_path("docker/default", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, LC_SECCOMP_RUNTIME_DEFAULT);
	CU_ASSERT_EQUAL(lc_seccomp_parse_path("localhost//var/p.json", "f", &mode, &path, &err), 0);
	CU_ASSERT_EQUAL(mode, LC_SECCOMP_LOCALHOST);
	CU_ASSERT_STRING_EQUAL(path, "/var/p.json");
	CU_ASSERT_EQUAL(lc_seccomp_parse_path("localhost/rel.json", "f", &mode, &path, &err),
			-EINVAL);
	CU_ASSERT_TRUE(strstr(husk_error_msg(&err), "f: 'localhost/rel.json'") != NULL);
	husk_error_clear(&err);
	CU_ASSERT_EQUAL(lc_seccomp_parse_path("default", "f", &mode, &path, &err), -EINVAL);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"parse OCI profile", test_parse_oci},
	    {"parse Docker profile", test_parse_docker},
	    {"parse errors", test_parse_errors},
	    {"deprecated profile path", test_parse_path},
	    {"RuntimeDefault blocks and allows", test_runtime_default},
	    {"RuntimeDefault against Docker's default profile", test_docker_comparison},
	    {"Localhost profile compiled and enforced", test_localhost_compile},
	    {"filter file round trip", test_filter_file},
	};
	return unit_run("seccomp", tests, ARRAY_SIZE(tests));
}
