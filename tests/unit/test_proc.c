/* common/proc: proc_clone_vm runs its child in our memory, returns only once
 * the child has exec'd or exited, and hands it no handler of ours, nor the
 * descriptors parked by proc_fd_park. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proc.h"
#include "unit.h"

static int wrote;

static int write_and_exit(void *p)
{
	wrote = *(int *)p; /* lands in the parent: the memory is shared */
	return 3;
}

static void test_shares_memory_and_waits(void)
{
	int v = 42;
	wrote = 0;
	pid_t pid = proc_clone_vm(0, -1, write_and_exit, &v);
	CU_ASSERT_FATAL(pid > 0);
	/* Returned after the child exited: no sleep, no race. */
	CU_ASSERT_EQUAL(wrote, 42);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 3);
}

static void on_usr1(int s)
{
	(void)s;
}

/* 0 when every signal is blocked and SIGUSR1's handler is the default. */
static int check_signals(void *p)
{
	(void)p;
	sigset_t cur;
	struct sigaction sa;
	if (sigprocmask(SIG_SETMASK, NULL, &cur) < 0 || !sigismember(&cur, SIGUSR1) ||
	    !sigismember(&cur, SIGTERM))
		return 1;
	if (sigaction(SIGUSR1, NULL, &sa) < 0 || sa.sa_handler != SIG_DFL)
		return 2;
	return 0;
}

static void test_signals(void)
{
	struct sigaction h = {.sa_handler = on_usr1}, old;
	CU_ASSERT_EQUAL_FATAL(sigaction(SIGUSR1, &h, &old), 0);
	sigset_t before, after;
	sigprocmask(SIG_SETMASK, NULL, &before);
	pid_t pid = proc_clone_vm(0, -1, check_signals, NULL);
	CU_ASSERT_FATAL(pid > 0);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Ours are untouched: our handler, our mask. */
	struct sigaction now;
	sigaction(SIGUSR1, NULL, &now);
	CU_ASSERT(now.sa_handler == on_usr1);
	sigprocmask(SIG_SETMASK, NULL, &after);
	CU_ASSERT_FALSE(sigismember(&after, SIGUSR1));
	CU_ASSERT_EQUAL(sigismember(&before, SIGTERM), sigismember(&after, SIGTERM));
	sigaction(SIGUSR1, &old, NULL);
}

static int exec_true(void *p)
{
	char *const argv[] = {(char *)p, NULL};
	char *const envp[] = {NULL};
	execve((const char *)p, argv, envp);
	return 127;
}

static void test_exec(void)
{
	pid_t pid = proc_clone_vm(0, -1, exec_true, "/bin/true");
	CU_ASSERT_FATAL(pid > 0);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pid = proc_clone_vm(0, -1, exec_true, "/nonexistent/true");
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 127);
}

static int nested(void *p)
{
	pid_t g = proc_clone_vm(0, -1, write_and_exit, p);
	return g > 0 && waitpid(g, NULL, 0) == g ? 0 : 1;
}

static void test_nested(void)
{
	int v = 7;
	wrote = 0;
	pid_t pid = proc_clone_vm(0, -1, nested, &v);
	CU_ASSERT_FATAL(pid > 0);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_EQUAL(wrote, 7);
}

static void test_bad_flags(void)
{
	/* CLONE_THREAD without CLONE_SIGHAND: the kernel refuses. */
	CU_ASSERT_EQUAL(proc_clone_vm(CLONE_THREAD, -1, write_and_exit, NULL), -EINVAL);
}

static sighandler_t disposition(int s)
{
	struct sigaction sa;
	return sigaction(s, NULL, &sa) == 0 ? sa.sa_handler : SIG_ERR;
}

/* 0 when proc_signals_default left what it should. */
static int reset_in_child(bool ignored_too)
{
	proc_signals_default(ignored_too);
	if (disposition(SIGUSR1) != SIG_DFL)
		return 1;
	if (disposition(SIGUSR2) != (ignored_too ? SIG_DFL : SIG_IGN))
		return 2;
	if (disposition(SIGHUP) != SIG_DFL)
		return 3;
	return 0;
}

/* Signal 32 ignored, as a process can inherit it (libc refuses it). */
static long raw_sigaction(int s, unsigned long handler)
{
	uint64_t ksa[8] = {handler};
	return syscall(SYS_rt_sigaction, s, ksa, NULL, sizeof(uint64_t));
}

static int reset_reserved_in_child(void)
{
	proc_signals_default(true);
	uint64_t caught, ignored;
	if (proc_signal_masks(&caught, &ignored) < 0)
		return 1;
	return ignored ? 2 : 0;
}

static void test_libc_reserved_signal(void)
{
	CU_ASSERT_EQUAL_FATAL(raw_sigaction(32, (unsigned long)SIG_IGN), 0);
	uint64_t caught, ignored;
	CU_ASSERT_EQUAL(proc_signal_masks(&caught, &ignored), 0);
	CU_ASSERT(ignored & (1ULL << 31));
	pid_t pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0)
		_exit(reset_reserved_in_child());
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	raw_sigaction(32, (unsigned long)SIG_DFL);
}

static void test_signal_masks(void)
{
	struct sigaction h = {.sa_handler = on_usr1}, ign = {.sa_handler = SIG_IGN};
	struct sigaction dfl = {.sa_handler = SIG_DFL}, old1, old2, oldh;
	CU_ASSERT_EQUAL_FATAL(sigaction(SIGUSR1, &h, &old1), 0);
	CU_ASSERT_EQUAL_FATAL(sigaction(SIGUSR2, &ign, &old2), 0);
	/* Whatever we were started with (nohup ignores it). */
	CU_ASSERT_EQUAL_FATAL(sigaction(SIGHUP, &dfl, &oldh), 0);
	uint64_t caught = 0, ignored = 0;
	CU_ASSERT_EQUAL_FATAL(proc_signal_masks(&caught, &ignored), 0);
	CU_ASSERT(caught & (1ULL << (SIGUSR1 - 1)));
	CU_ASSERT_FALSE(caught & (1ULL << (SIGUSR2 - 1)));
	CU_ASSERT(ignored & (1ULL << (SIGUSR2 - 1)));
	CU_ASSERT_FALSE(ignored & (1ULL << (SIGHUP - 1)));
	for (int both = 0; both < 2; both++) {
		pid_t pid = fork();
		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0)
			_exit(reset_in_child(both));
		int st = 0;
		CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
		CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	sigaction(SIGUSR1, &old1, NULL);
	sigaction(SIGUSR2, &old2, NULL);
	sigaction(SIGHUP, &oldh, NULL);
}

struct fds_seen {
	int low, parked, spare; /* what the child checks and changes */
};

/* 0 when the low descriptor is there and the parked one is not; then
 * changes its own table, which must not be ours. */
static int check_fds(void *p)
{
	const struct fds_seen *f = p;
	if (fcntl(f->low, F_GETFD) < 0)
		return 1;
	if (fcntl(f->parked, F_GETFD) >= 0 || errno != EBADF)
		return 2;
	close(f->low);
	if (dup2(0, f->spare) < 0)
		return 3;
	return 0;
}

static int sees_parked(void *p)
{
	const struct fds_seen *f = p;
	return fcntl(f->parked, F_GETFD) >= 0 ? 0 : 1;
}

static void test_parked_fds(void)
{
	int pipefd[2];
	CU_ASSERT_EQUAL_FATAL(pipe2(pipefd, O_CLOEXEC), 0);
	int low = pipefd[0];
	/* As huskd does at start (rt_monitor_start): the soft limit up to the
	 * hard one. Below PROC_FD_PARK parking fails and leaves fd as it is. */
	struct rlimit rl;
	CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	int parked = proc_fd_park(pipefd[1]);
	if (rl.rlim_cur <= PROC_FD_PARK) {
		CU_ASSERT_EQUAL(parked, pipefd[1]);
		close(pipefd[0]);
		close(pipefd[1]);
		return;
	}
	CU_ASSERT_FATAL(parked >= PROC_FD_PARK);
	CU_ASSERT(fcntl(parked, F_GETFD) & FD_CLOEXEC);
	CU_ASSERT(fcntl(pipefd[1], F_GETFD) < 0); /* the old number was closed */
	int spare = fcntl(0, F_DUPFD_CLOEXEC, 100);
	CU_ASSERT_FATAL(spare >= 0);
	close(spare); /* a free number the child takes in its own table */
	struct fds_seen f = {low, parked, spare};
	pid_t pid = proc_clone_vm(0, low, check_fds, &f);
	CU_ASSERT_FATAL(pid > 0);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* Ours is untouched: low still open, spare still free, parked open. */
	CU_ASSERT(fcntl(low, F_GETFD) >= 0);
	CU_ASSERT(fcntl(spare, F_GETFD) < 0 && errno == EBADF);
	CU_ASSERT(fcntl(parked, F_GETFD) >= 0);
	/* A child that uses a parked descriptor gets all of them. */
	pid = proc_clone_vm(0, parked, sees_parked, &f);
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(low);
	close(parked);
	/* Nothing to park, or already parked: returned as is. */
	CU_ASSERT_EQUAL(proc_fd_park(-1), -1);
	CU_ASSERT_EQUAL(proc_fd_park(PROC_FD_PARK + 5), PROC_FD_PARK + 5);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"shares memory and waits", test_shares_memory_and_waits},
	    {"signals", test_signals},
	    {"exec", test_exec},
	    {"nested", test_nested},
	    {"bad flags", test_bad_flags},
	    {"parked descriptors", test_parked_fds},
	    {"signal masks", test_signal_masks},
	    {"a signal libc keeps for itself", test_libc_reserved_signal},
	};
	return unit_run("proc", tests, ARRAY_SIZE(tests));
}
