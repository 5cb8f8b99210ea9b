/* /proc/PID/stat readers. Kept free of allocation so forked children and
 * the statically linked shim may call them. */
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

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
