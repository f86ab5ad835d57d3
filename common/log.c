/*
 * log: see log.h. The level is read by many threads and written only at
 * start-up and on SIGHUP, so a plain int is enough.
 */
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "jenkins-gearman";
static volatile int log_level = LOG_LEVEL_INFO;

static const char *level_names[] = { "debug", "info", "warn", "error" };

int
log_parse_level(const char *s)
{
	if (strcasecmp(s, "debug") == 0)
		return LOG_LEVEL_DEBUG;
	if (strcasecmp(s, "info") == 0)
		return LOG_LEVEL_INFO;
	if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		return LOG_LEVEL_WARN;
	if (strcasecmp(s, "error") == 0)
		return LOG_LEVEL_ERROR;
	return -1;
}

void
log_init(const char *progname, enum log_level level)
{
	log_prog = progname;
	log_level = level;
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

int
log_enabled(enum log_level level)
{
	return (int)level >= log_level;
}

static void
log_vwrite(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[4096];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%d] %s: ",
	    ts.tv_nsec / 1000000, log_prog, (int)getpid(), level_names[level]);
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n = (size_t)r + n >= sizeof(line) ? sizeof(line) - 1 : n + (size_t)r;
	}
	if (errnum && n < sizeof(line)) {
		r = snprintf(line + n, sizeof(line) - n, ": %s", strerror(errnum));
		if (r > 0)
			n = (size_t)r + n >= sizeof(line) ? sizeof(line) - 1 : n + (size_t)r;
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines of different threads do not interleave. */
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_FN(name, level, use_errno)                          \
	void name(const char *fmt, ...)                          \
	{                                                        \
		int saved = errno;                               \
		va_list ap;                                      \
		if ((int)(level) < log_level)                    \
			return;                                  \
		va_start(ap, fmt);                               \
		log_vwrite(level, use_errno ? saved : 0, fmt, ap); \
		va_end(ap);                                      \
		errno = saved;                                   \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_warnx, LOG_LEVEL_WARN, 0)
LOG_FN(log_warn, LOG_LEVEL_WARN, 1)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)

void
fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
