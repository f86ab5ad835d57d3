/* safefile: see safefile.h. */
#include "safefile.h"

#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
safefile_opendir(const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, saved;

	*base = slash ? slash + 1 : path;
	if (!slash)
		return open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = slash == path ? xstrdup("/") : xstrndup(path, (size_t)(slash - path));
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	saved = errno;
	free(dir);
	errno = saved;
	return fd;
}

int
safefile_create(int dirfd, const char *tmp, int flags, mode_t mode)
{
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return -1;
	return openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | flags, mode);
}

int
safefile_commit(int dirfd, int fd, const char *tmp, const char *name)
{
	int saved;

	if (fsync(fd) == 0 && renameat(dirfd, tmp, dirfd, name) == 0)
		return 0;
	saved = errno;
	unlinkat(dirfd, tmp, 0);
	errno = saved;
	return -1;
}

int
safefile_open_own(int dirfd, const char *name)
{
	struct stat sb;
	int fd, saved;

	if ((fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)) < 0)
		return -1;
	if (fstat(fd, &sb) < 0)
		saved = errno;
	else if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid())
		saved = EPERM;
	else
		return fd;
	close(fd);
	errno = saved;
	return -1;
}
