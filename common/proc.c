/* /proc/PID/stat readers and proc_clone_vm. Kept free of allocation so
 * forked children and the statically linked shim may call them. */
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/compat.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
/* A child's stack is memory ASan does not know as a stack: its frames
 * leave poisoned shadow behind, which a later mmap at the same address
 * would inherit. Clear it on both ends. */
#define stack_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define stack_unpoison(p, n) ((void)(p), (void)(n))
#endif

int proc_stat_read(pid_t pid, char *ret_state, unsigned long long *ret_start,
		   struct husk_error *err)
{
	if (pid <= 0)
		return husk_error_set(err, ESRCH, "process %d: no such process", (int)pid);
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_set(err, ESRCH, "process %d: no such process", (int)pid);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return husk_error_set(err, ESRCH, "process %d: no such process", (int)pid);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: the fields start
	 * after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return husk_error_set(err, EIO, "parse '%s'", path);
	char state = p[2];
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return husk_error_set(err, EIO, "parse '%s': too few fields", path);
		p++;
	}
	unsigned long long start;
	if (sscanf(p, "%llu", &start) != 1)
		return husk_error_set(err, EIO, "parse '%s': start time", path);
	if (ret_state)
		*ret_state = state;
	if (ret_start)
		*ret_start = start;
	return 0;
}

int proc_start_time(pid_t pid, unsigned long long *ret, struct husk_error *err)
{
	char state;
	unsigned long long start;
	int r = proc_stat_read(pid, &state, &start, err);
	if (r < 0)
		return r;
	if (state == 'Z' || state == 'X')
		return husk_error_set(err, ESRCH, "process %d: exited", (int)pid);
	*ret = start;
	return 0;
}

bool proc_alive(pid_t pid, unsigned long long start_time)
{
	unsigned long long st = 0;
	return proc_start_time(pid, &st, NULL) == 0 && st == start_time;
}

/* Enough for fn's locals and a vsnprintf of an error message; pages the
 * child never touches cost nothing. */
#define CLONE_VM_STACK (256 * 1024)

struct clone_vm {
	int (*fn)(void *);
	void *arg;
	bool low_fds; /* the table is huskd's (CLONE_FILES): copy the low part */
};

int proc_fd_park(int fd)
{
	if (fd < 0 || fd >= PROC_FD_PARK)
		return fd;
	int parked = fcntl(fd, F_DUPFD_CLOEXEC, PROC_FD_PARK);
	if (parked < 0)
		return fd;
	close(fd);
	return parked;
}

/* The hex mask after "\nNAME:\t" in text; false when it is not there. */
static bool status_mask(const char *text, const char *name, uint64_t *ret)
{
	size_t n = strlen(name);
	for (const char *p = strchr(text, '\n'); p; p = strchr(p + 1, '\n')) {
		if (strncmp(p + 1, name, n) != 0 || p[1 + n] != ':')
			continue;
		uint64_t v = 0;
		const char *q = p + 2 + n;
		while (*q == '\t' || *q == ' ')
			q++;
		int digits = 0;
		for (;; q++, digits++) {
			int d = *q >= '0' && *q <= '9'	 ? *q - '0'
				: *q >= 'a' && *q <= 'f' ? *q - 'a' + 10
							 : -1;
			if (d < 0)
				break;
			v = v << 4 | (uint64_t)d;
		}
		if (!digits)
			return false;
		*ret = v;
		return true;
	}
	return false;
}

int proc_signal_masks(uint64_t *ret_caught, uint64_t *ret_ignored)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t len = 0;
	ssize_t n;
	while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return -e;
		}
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	uint64_t caught, ignored;
	if (!status_mask(buf, "SigCgt", &caught) || !status_mask(buf, "SigIgn", &ignored))
		return -EIO;
	*ret_caught = caught;
	*ret_ignored = ignored;
	return 0;
}

static void set_default(int s)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	if (sigaction(s, &dfl, NULL) == 0 || errno != EINVAL)
		return;
	/* One the C library keeps for itself (glibc's 32 and 33, musl's 32
	 * to 34), which a process can still inherit ignored: by the system
	 * call. All zero is SIG_DFL, no flags, no mask, whatever the
	 * architecture's layout. */
	uint64_t ksa[8] = {0};
	syscall(SYS_rt_sigaction, s, ksa, NULL, sizeof(uint64_t));
}

void proc_signals_default(bool ignored_too)
{
	uint64_t caught = 0, ignored = 0;
	bool known = proc_signal_masks(&caught, &ignored) == 0;
	uint64_t want = ignored_too ? caught | ignored : caught;
	for (int s = 1; s < NSIG && s <= 64; s++) {
		if (s == SIGKILL || s == SIGSTOP)
			continue;
		if (known && !(want & (1ULL << (s - 1))))
			continue;
		/* Unknown (no /proc): ask, as the masks would have said. */
		struct sigaction sa;
		if (!known && !ignored_too &&
		    (sigaction(s, NULL, &sa) < 0 || sa.sa_handler == SIG_DFL ||
		     sa.sa_handler == SIG_IGN))
			continue;
		set_default(s);
	}
}

static int clone_vm_main(void *p)
{
	const struct clone_vm *c = p;
	/* Nothing may touch a descriptor before this: until then the table is
	 * huskd's own. The kernel copies only what is below the range. */
	if (c->low_fds && close_range(PROC_FD_PARK, ~0U, CLOSE_RANGE_UNSHARE) < 0 &&
	    unshare(CLONE_FILES) < 0)
		_exit(127);
	/* Our handlers would run on huskd's memory in a process that is not
	 * huskd: back to the default for every caught signal. */
	proc_signals_default(false);
	_exit(c->fn(c->arg));
}

pid_t proc_clone_vm(unsigned long flags, int maxfd, int (*fn)(void *), void *arg)
{
	void *stack = mmap(NULL, CLONE_VM_STACK, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return -errno;
	stack_unpoison(stack, CLONE_VM_STACK);
	struct clone_vm c = {.fn = fn, .arg = arg, .low_fds = maxfd < PROC_FD_PARK};
	if (c.low_fds)
		flags |= CLONE_FILES;
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	/* CLONE_VFORK: this thread sleeps until the child execs or exits, so
	 * the stack can go and the child never runs beside our caller. */
	pid_t pid = clone(clone_vm_main, (char *)stack + CLONE_VM_STACK,
			  (int)(flags | CLONE_VM | CLONE_VFORK | SIGCHLD), &c);
	int e = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	stack_unpoison(stack, CLONE_VM_STACK);
	munmap(stack, CLONE_VM_STACK);
	return pid < 0 ? -e : pid;
}
