/*
 * secret: reading a file that holds a secret (an API token, a private
 * key) without trusting the file or the path to it.
 *
 * The file is opened O_NONBLOCK, so a FIFO or a device planted at the path
 * cannot hang the daemon (a SIGHUP reload used to wait forever on a FIFO),
 * and then judged by fstat of what was opened, not by the path: it must be
 * a regular file, owned by us or by root, that neither group nor others may
 * read or write. Symlinks are followed: secrets are
 * often links (a key rotated by replacing a link, Kubernetes mounts), and
 * what counts is the file reached.
 */
#ifndef JGA_SECRET_H
#define JGA_SECRET_H

#include <stddef.h>

/*
 * The whole of path (at most max bytes), NUL-terminated, malloc'd, its
 * length in *len (may be NULL); NULL and a message naming the file and the
 * problem in err. The caller wipes it (explicit_bzero) before freeing.
 */
char *secret_read(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
