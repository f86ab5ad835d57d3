/*
 * xalloc: the project's one out-of-memory policy.
 *
 * Running out of memory ends the process: fatalx("out of memory"), and
 * the supervisor (systemd Restart=) starts it again. A daemon that went on
 * with a half-built map or a dropped reply would lose builds quietly;
 * a restart loses none (running builds are re-attached from state_dir).
 * Every allocation in the project goes through these functions, or
 * through jansson, whose allocator xalloc_install_json (or jarena) makes
 * fatal too; no caller checks for NULL.
 *
 * Sizes from outside (an HTTP body, a packet) are capped by their readers
 * (http: HTTP_MAX_BODY, gwconn: GW_MAX_BODY) before they get here.
 */
#ifndef JGA_XALLOC_H
#define JGA_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
/* realloc to n elements of size, with the multiplication checked. */
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* jansson allocates with xmalloc (programs without jarena: the CLI, tools). */
void  xalloc_install_json(void);

#endif
