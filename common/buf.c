/* buf: see buf.h. */
#include "buf.h"

#include "xalloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_reserve(struct buf *b, size_t n)
{
	size_t cap = b->cap ? b->cap : 64;

	if (b->len + n + 1 <= b->cap)
		return;
	while (cap < b->len + n + 1)
		cap *= 2;
	b->s = xrealloc(b->s, cap);
	b->cap = cap;
}

void
buf_add(struct buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void
buf_adds(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *
buf_take(struct buf *b)
{
	char *s = b->s ? b->s : xstrdup("");

	memset(b, 0, sizeof(*b));
	return s;
}

void
buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->s)
		b->s[0] = '\0';
}

void
buf_free(struct buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

/* The length of the UTF-8 sequence at s (NUL-terminated), 0 if it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xBF;
	size_t more, k;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		more = 1;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
		more = 2;
		lo = s[0] == 0xE0 ? 0xA0 : 0x80;   /* no overlong form */
		hi = s[0] == 0xED ? 0x9F : 0xBF;   /* no surrogate */
	} else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
		more = 3;
		lo = s[0] == 0xF0 ? 0x90 : 0x80;
		hi = s[0] == 0xF4 ? 0x8F : 0xBF;   /* nothing over U+10FFFF */
	} else
		return 0;
	/* A NUL is no continuation byte: the check stops at the end of s. */
	for (k = 1; k <= more; k++, lo = 0x80, hi = 0xBF)
		if (s[k] < lo || s[k] > hi)
			return 0;
	return more + 1;
}

void
buf_add_json_str(struct buf *b, const char *str)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "");
	size_t n;

	buf_add(b, "\"", 1);
	while (*s) {
		switch (*s) {
		case '"':  buf_adds(b, "\\\""); n = 1; break;
		case '\\': buf_adds(b, "\\\\"); n = 1; break;
		case '\b': buf_adds(b, "\\b"); n = 1; break;
		case '\f': buf_adds(b, "\\f"); n = 1; break;
		case '\n': buf_adds(b, "\\n"); n = 1; break;
		case '\r': buf_adds(b, "\\r"); n = 1; break;
		case '\t': buf_adds(b, "\\t"); n = 1; break;
		default:
			if (*s < 0x20) {
				buf_addf(b, "\\u%04x", *s);
				n = 1;
			} else if ((n = utf8_len(s)) > 0)
				buf_add(b, s, n);
			else {
				buf_adds(b, "\\ufffd");
				n = 1;
			}
		}
		s += n;
	}
	buf_add(b, "\"", 1);
}
