/* common/proc: proc_clone_vm runs its child in our memory, returns only once
 * the child has exec'd or exited, and hands it no handler of ours. */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
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
	pid_t pid = proc_clone_vm(0, write_and_exit, &v);
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
	pid_t pid = proc_clone_vm(0, check_signals, NULL);
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
	pid_t pid = proc_clone_vm(0, exec_true, "/bin/true");
	CU_ASSERT_FATAL(pid > 0);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	pid = proc_clone_vm(0, exec_true, "/nonexistent/true");
	CU_ASSERT_FATAL(pid > 0);
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 127);
}

static int nested(void *p)
{
	pid_t g = proc_clone_vm(0, write_and_exit, p);
	return g > 0 && waitpid(g, NULL, 0) == g ? 0 : 1;
}

static void test_nested(void)
{
	int v = 7;
	wrote = 0;
	pid_t pid = proc_clone_vm(0, nested, &v);
	CU_ASSERT_FATAL(pid > 0);
	int st = 0;
	CU_ASSERT_EQUAL(waitpid(pid, &st, 0), pid);
	CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	CU_ASSERT_EQUAL(wrote, 7);
}

static void test_bad_flags(void)
{
	/* CLONE_THREAD without CLONE_SIGHAND: the kernel refuses. */
	CU_ASSERT_EQUAL(proc_clone_vm(CLONE_THREAD, write_and_exit, NULL), -EINVAL);
}

int main(void)
{
	static const struct unit_test tests[] = {
	    {"shares memory and waits", test_shares_memory_and_waits},
	    {"signals", test_signals},
	    {"exec", test_exec},
	    {"nested", test_nested},
	    {"bad flags", test_bad_flags},
	};
	return unit_run("proc", tests, ARRAY_SIZE(tests));
}
