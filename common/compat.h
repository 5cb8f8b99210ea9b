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

#ifndef STATX_TYPE
/* The kernel's statx ABI (include/uapi/linux/stat.h), which musl 1.2.3
 * does not declare; <linux/stat.h> itself clashes with musl's S_* macros. */
#include <stdint.h>
struct statx_timestamp {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t reserved_;
};
struct statx {
	uint32_t stx_mask, stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink, stx_uid, stx_gid;
	uint16_t stx_mode, spare0_;
	uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
	struct statx_timestamp stx_atime, stx_btime, stx_ctime, stx_mtime;
	uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
	uint64_t stx_mnt_id;
	uint32_t stx_dio_mem_align, stx_dio_offset_align;
	uint64_t spare3_[12];
};
#define STATX_TYPE 0x0001U
#define STATX_MODE 0x0002U
#define STATX_INO 0x0100U
#define STATX_MNT_ID 0x1000U

static inline int statx(int dfd, const char *path, int flags, unsigned int mask, struct statx *buf)
{
	return (int)syscall(SYS_statx, dfd, path, flags, mask, buf);
}
#endif
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x00002000
#endif

static inline int mount_setattr(int dfd, const char *path, unsigned int flags,
				struct mount_attr *attr, size_t size)
{
	return (int)syscall(SYS_mount_setattr, dfd, path, flags, attr, size);
}

static inline int open_tree(int dfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dfd, path, flags);
}

static inline int move_mount(int from_dfd, const char *from, int to_dfd, const char *to,
			     unsigned int flags)
{
	return (int)syscall(SYS_move_mount, from_dfd, from, to_dfd, to, flags);
}
#endif
