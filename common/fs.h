/* File-system helpers: bounded reads, atomic writes, directory creation and
 * removal. Paths are absolute or relative to the working directory. */
#ifndef HUSK_COMMON_FS_H
#define HUSK_COMMON_FS_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/error.h"

/* Read a whole file of at most max bytes into a NUL-terminated buffer owned
 * by the caller. ENOENT when missing, EFBIG when larger than max. */
int fs_read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len,
		 struct husk_error *err);

/* Write data to path atomically: a temporary file beside it, fsync, rename,
 * fsync of the directory. A crash leaves either the old or the new file. */
int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
		    struct husk_error *err);

/* fs_write_atomic without the fsyncs, for files that describe only this
 * boot's kernel objects (the state directory: records of running pods and
 * containers, pids, pins, cgroup intents, generated /etc files). A crash of
 * the process still leaves the old or the new file, as the page cache
 * survives it; a crash of the machine ends every object such a file
 * describes, and the default state directory is a tmpfs where fsync does
 * nothing. Each fsync cost a disk write, under the record store's one
 * writer lock for records (issue 12). */
int fs_write_replace(const char *path, const void *data, size_t len, mode_t mode,
		     struct husk_error *err);

/* mkdir -p with mode for the directories it creates. */
int fs_mkdir_p(const char *path, mode_t mode, struct husk_error *err);

/* rm -rf that stays on one file system (EXDEV or EBUSY at a mount) and
 * never follows symlinks; by directory fd, so of any depth, deeper than
 * PATH_MAX too. A missing path is success; an error names the entry. */
int fs_rm_rf(const char *path, struct husk_error *err);

bool fs_exists(const char *path);

/* Whether name (relative to dfd, or absolute) is the root of a mount; a
 * symlink is not followed. False when it is missing. */
bool fs_is_mount_root(int dfd, const char *name);

/* Make dir (created with mode when missing) a mount of its own: a bind
 * mount of itself unless something is mounted at dir already, then made
 * private. Idempotent: a restarted daemon finds its mount and stacks no
 * second one. Mounts made below dir are then children of that mount, not
 * of the one that holds dir: the kernel walks every child of a bind or
 * overlay source's mount (has_locked_children), so a directory where a
 * daemon mounts per object must not share its mount with the files it
 * uses as sources, or each new mount costs O(objects) (issue 12). */
int fs_private_mount_ensure(const char *dir, mode_t mode, struct husk_error *err);

/* Undo fs_private_mount_ensure once dir is empty: unmount what is mounted
 * at dir and remove it. EBUSY (dir left as it is) while it has entries; a
 * missing dir is success. */
int fs_private_mount_release(const char *dir, struct husk_error *err);

/* Sorted names in dir ending with suffix (NULL for all but "." and "..").
 * A missing dir gives an empty vector. */
int fs_list_dir(const char *dir, const char *suffix, char ***ret_names, struct husk_error *err);

#endif
