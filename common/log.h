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

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };

/* Parse "debug", "info", "warn"/"warning", "error". Returns -1 if unknown. */
int  log_parse_level(const char *s);
void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
int  log_enabled(enum log_level level);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* log_warn appends ": strerror(errno)". */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
