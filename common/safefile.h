/*
 * safefile: writing and reading files in a directory someone else might
 * write to, without following a link planted there.
 *
 * Everything goes through the directory's fd: a file is replaced by a
 * temporary created next to it (O_CREAT|O_EXCL|O_NOFOLLOW, so neither a
 * link nor a file planted at the temporary's name is ever opened for
 * writing; a stale temporary left by a crash is unlinked first, and
 * unlinkat removes a link, not what it points to), fsync'd, then renamed
 * over the file (renameat). A file is read only if it is a regular file
 * owned by us (opened O_NOFOLLOW|O_NONBLOCK, judged by fstat of what was
 * opened). Every function keeps errno as the failed call set it.
 */
#ifndef JGA_SAFEFILE_H
#define JGA_SAFEFILE_H

#include <stddef.h>
#include <sys/types.h>

/* The directory holding path, opened O_DIRECTORY; *base: path's last component. -1 on error. */
int  safefile_opendir(const char *path, const char **base);
/*
 * Create tmp in dirfd for writing (O_WRONLY plus flags, e.g. O_APPEND),
 * mode, after unlinking a stale one. The fd, or -1 (EEXIST: something
 * was planted at tmp between the unlink and the create).
 */
int  safefile_create(int dirfd, const char *tmp, int flags, mode_t mode);
/*
 * fsync fd (tmp, from safefile_create), then rename tmp over name. fd stays
 * open. On failure tmp is unlinked and -1 returned.
 */
int  safefile_commit(int dirfd, int fd, const char *tmp, const char *name);
/*
 * Open name in dirfd for reading: -1 with ELOOP for a link, EPERM for
 * anything but a regular file owned by our effective uid (ENOENT: none).
 */
int  safefile_open_own(int dirfd, const char *name);

#endif
