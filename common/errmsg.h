/*
 * errmsg: format a message into a caller's fixed buffer (err, errlen),
 * the way the parsers and the Jenkins client say what went wrong.
 * A NULL or empty buffer is fine (nothing is written); a message too long
 * for the buffer is cut, which is intended: a message is for a person.
 */
#ifndef JGA_ERRMSG_H
#define JGA_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

void errmsg_set(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void errmsg_vset(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
