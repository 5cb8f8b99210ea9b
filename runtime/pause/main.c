/* husk-pause: PID 1 of a pod's shared PID namespace. It reaps the orphans
 * that the kernel hands it and exits on SIGTERM or SIGINT. Exec'd by the
 * sandbox layer so that the init holds a few pages of its own instead of a
 * copy of huskd's memory. Static, libc only. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	/* Signals stay blocked and are taken synchronously: a namespace init
	 * ignores signals it has no handler for, but blocked ones still queue,
	 * so SIGTERM from inside the pod reaches sigwaitinfo. */
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (;;) {
		siginfo_t si;
		int s = sigwaitinfo(&all, &si);
		if (s == SIGTERM || s == SIGINT)
			return 0;
		if (s == SIGCHLD)
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
	}
}
