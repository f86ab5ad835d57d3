/*
 * secret: see secret.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "xalloc.h"

/* Why st may not hold a secret, or NULL if it may. */
static const char *
secret_refusal(const struct stat *st, char *why, size_t whylen)
{
	if (!S_ISREG(st->st_mode))
		return "is not a regular file";
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		snprintf(why, whylen, "is owned by uid %u, neither root nor this process (uid %u)",
		    (unsigned)st->st_uid, (unsigned)geteuid());
		return why;
	}
	if (st->st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		snprintf(why, whylen, "is accessible by group or others (mode %03o); run: chmod 600",
		    (unsigned)(st->st_mode & 0777));
		return why;
	}
	return NULL;
}

char *
secret_read(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char why[160];
	const char *no;
	char *buf;
	size_t n = 0;
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if ((no = secret_refusal(&st, why, sizeof(why)))) {
		snprintf(err, errlen, "'%s' %s", path, no);
		close(fd);
		return NULL;
	}
	buf = xmalloc(max + 1);
	while (n <= max && (r = read(fd, buf + n, max + 1 - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
			goto fail;
		}
		n += (size_t)r;
	}
	if (n > max) {
		snprintf(err, errlen, "'%s' is longer than %zu bytes", path, max);
		goto fail;
	}
	close(fd);
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
fail:
	close(fd);
	explicit_bzero(buf, max + 1);
	free(buf);
	return NULL;
}
