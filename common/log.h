/*
 * log: leveled, timestamped log lines on stderr (journald picks them up).
 *
 * One line per call, written with a single write(2) so lines from several
 * threads never interleave. Callers must never pass a secret (token,
 * password, Authorization header) to these functions.
 */
#ifndef JGA_LOG_H
#define JGA_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

enum log_format { LOG_FORMAT_TEXT, LOG_FORMAT_JSON };

/* Parse "debug", "info", "warn"/"warning", "error". Returns -1 if unknown. */
int  log_parse_level(const char *s);
void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
/*
 * text: "TIME prog[pid] level: message", control characters in it written
 * as \n, \r, \t or \xHH; json: one object per line (journald, Loki).
 * Either way one call is one line, whatever the text holds.
 */
void log_set_format(enum log_format format);

/*
 * A message with fields, e.g. a build lifecycle event. Text: the message
 * then " key=value" per field; JSON: the fields as members. A NULL value
 * leaves the field out.
 */
void log_fields(enum log_level level, const char *msg, const char *const *keys,
         const char *const *values, size_t n);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
