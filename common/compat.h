/* What glibc 2.36 declares and musl 1.2.3 does not, for the code that is
 * also built against musl (husk-shim, husk-pause): thin syscall wrappers.
 * Under glibc this header adds nothing. */
#pragma once

#ifndef __GLIBC__
#include <linux/close_range.h>
#include <linux/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int close_range(unsigned int first, unsigned int last, int flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}

static inline int mount_setattr(int dfd, const char *path, unsigned int flags,
				struct mount_attr *attr, size_t size)
{
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, size);
}
#endif
