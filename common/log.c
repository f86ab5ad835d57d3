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
static volatile int log_format = LOG_FORMAT_TEXT;

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

void
log_set_format(enum log_format format)
{
	log_format = format;
}


/* Append s to buf as a JSON string body (no quotes). */
static size_t
json_escape(char *buf, size_t n, size_t cap, const char *s)
{
	for (; *s && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20)
			n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", c);
		else
			buf[n++] = (char)c;
	}
	return n;
}

/*
 * Append s to buf[n..cap) for a text line: a control character (a newline
 * in a unique id, say: text that came from a Gearman client or a master)
 * is written as \n, \r, \t or \xHH, so that one call is one line and no
 * input can forge another. A backslash stays as it is.
 */
static size_t
text_escape(char *buf, size_t n, size_t cap, const char *s)
{
	for (; *s && n + 5 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n' || c == '\r' || c == '\t') {
			buf[n++] = '\\';
			buf[n++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		} else if (c < 0x20 || c == 0x7f)
			n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	return n;
}

static void
log_line(enum log_level level, const char *msg, const char *const *keys,
    const char *const *values, size_t nf)
{
	char line[8192];
	struct timespec ts;
	struct tm tm;
	size_t n, i;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (log_format == LOG_FORMAT_JSON) {
		n = strftime(line, sizeof(line), "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		    ".%03ldZ\",\"level\":\"%s\",\"prog\":\"%s\",\"pid\":%d,\"msg\":\"",
		    ts.tv_nsec / 1000000, level_names[level], log_prog, (int)getpid());
		n = json_escape(line, n, sizeof(line) - 16, msg);
		for (i = 0; i < nf && n + 16 < sizeof(line); i++) {
			if (!values[i])
				continue;
			n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"");
			n = json_escape(line, n, sizeof(line) - 16, keys[i]);
			n += (size_t)snprintf(line + n, sizeof(line) - n, "\":\"");
			n = json_escape(line, n, sizeof(line) - 16, values[i]);
		}
		n += (size_t)snprintf(line + n, sizeof(line) - n, "\"}");
	} else {
		n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
		n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%d] %s: ",
		    ts.tv_nsec / 1000000, log_prog, (int)getpid(), level_names[level]);
		n = text_escape(line, n, sizeof(line) - 16, msg);
		for (i = 0; i < nf && n + 16 < sizeof(line); i++) {
			if (!values[i])
				continue;
			line[n++] = ' ';
			n = text_escape(line, n, sizeof(line) - 16, keys[i]);
			line[n++] = '=';
			n = text_escape(line, n, sizeof(line) - 16, values[i]);
		}
	}
	if (n >= sizeof(line) - 1)
		n = sizeof(line) - 2;
	line[n++] = '\n';
	/* One write per line: lines of different threads do not interleave. */
	(void)!write(STDERR_FILENO, line, n);
}

static void
log_vwrite(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char msg[4096];
	int r = vsnprintf(msg, sizeof(msg), fmt, ap);

	if (errnum && r >= 0 && (size_t)r < sizeof(msg))
		snprintf(msg + r, sizeof(msg) - (size_t)r, ": %s", strerror(errnum));
	log_line(level, msg, NULL, NULL, 0);
}

void
log_fields(enum log_level level, const char *msg, const char *const *keys,
    const char *const *values, size_t n)
{
	if ((int)level < log_level)
		return;
	log_line(level, msg, keys, values, n);
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
