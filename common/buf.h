/*
 * buf: a growable byte buffer, always NUL-terminated, the project's one.
 * A zeroed struct buf is empty and ready. Growth is fatal on out of
 * memory (xalloc.h); callers that read from outside cap the size first.
 */
#ifndef JGA_BUF_H
#define JGA_BUF_H

#include <stddef.h>

struct buf {
	char   *s;      /* NULL while empty */
	size_t  len, cap;
};

void  buf_add(struct buf *b, const void *p, size_t n);
void  buf_adds(struct buf *b, const char *s);
void  buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Make room for n more bytes (plus the NUL) without adding them. */
void  buf_reserve(struct buf *b, size_t n);
/* Hand the string over ("" when empty, never NULL); b is empty again. */
char *buf_take(struct buf *b);
void  buf_reset(struct buf *b);   /* len 0, memory kept */
void  buf_free(struct buf *b);
/*
 * s (NULL: "") as a JSON string: '"', '\\' and controls escaped as jansson
 * escapes them ("/" not), UTF-8 kept, each byte that is not UTF-8 as
 * U+FFFD, so that a reader always gets valid JSON whatever the bytes.
 */
void  buf_add_json_str(struct buf *b, const char *s);

#endif
