/* gadmin: see gadmin.h. */
#include "gadmin.h"

#include "buf.h"
#include "clock.h"
#include "gwconn.h"
#include "xalloc.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Room made before each read(2), so a long "show jobs" takes a few reads, not hundreds. */
#define ADMIN_READ_CHUNK	65536

struct gadmin_conn {
	char *host;
	int   port;
	int   fd;      /* -1 until used, and after an error */
};

struct gadmin_conn *
gadmin_conn_new(const char *host, int port)
{
	struct gadmin_conn *a = xcalloc(1, sizeof(*a));

	a->host = xstrdup(host);
	a->port = port;
	a->fd = -1;
	return a;
}

void
gadmin_conn_free(struct gadmin_conn *a)
{
	if (!a)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a->host);
	free(a);
}

/* A list ends with a "." line; a single reply is one "OK"/"ERR" line. */
static bool
reply_complete(const char *buf, size_t len)
{
	if (len == 0 || buf[len - 1] != '\n')
		return false;
	if (len >= 2 && buf[len - 2] == '.' && (len == 2 || buf[len - 3] == '\n'))
		return true;
	return !strncmp(buf, "OK", 2) || !strncmp(buf, "ERR", 3);
}

/* Why ask gave no reply. */
enum ask_fail {
	ASK_IO,          /* errno set (0: the peer closed) */
	ASK_TIMEOUT,     /* no whole reply by the deadline */
	ASK_TOO_LARGE,   /* the reply grew past GADMIN_REPLY_MAX */
};

/*
 * Send cmd on a->fd and read its whole reply within timeout_ms, all of it:
 * a peer that trickles a byte at a time, or never ends its list, is cut
 * off at the deadline or the size cap, not followed forever. NULL with
 * *why; *got tells whether any byte came back.
 */
static char *
ask(struct gadmin_conn *a, const char *cmd, int timeout_ms, enum ask_fail *why, bool *got)
{
	struct buf b = { 0 };
	size_t cl = strlen(cmd);
	struct iovec iov[2] = { { (void *)cmd, cl }, { "\n", 1 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };
	long long deadline = clk_now_ms() + timeout_ms;

	*why = ASK_IO;
	*got = false;
	/* MSG_NOSIGNAL: a kept connection gearmand closed is an error here, not SIGPIPE. */
	if (sendmsg(a->fd, &m, MSG_NOSIGNAL) != (ssize_t)cl + 1)
		return NULL;
	while (!reply_complete(b.s, b.len)) {
		struct pollfd p = { a->fd, POLLIN, 0 };
		ssize_t r;

		if (b.len > GADMIN_REPLY_MAX) {
			*why = ASK_TOO_LARGE;
			goto fail;
		}
		buf_reserve(&b, ADMIN_READ_CHUNK);
		if (clk_passed(deadline) || poll(&p, 1, (int)clk_left_ms(deadline)) <= 0) {
			*why = ASK_TIMEOUT;
			goto fail;
		}
		if ((r = read(a->fd, b.s + b.len, b.cap - b.len - 1)) <= 0) {
			if (r == 0)
				errno = 0;
			goto fail;
		}
		*got = true;
		b.len += (size_t)r;
		b.s[b.len] = '\0';
	}
	return buf_take(&b);
fail:
	buf_free(&b);
	return NULL;
}

char *
gadmin_conn_ask(struct gadmin_conn *a, const char *cmd, int timeout_ms, char *err, size_t errlen)
{
	bool kept = a->fd >= 0, got;
	enum ask_fail why;
	char *reply;

	for (;;) {
		if (a->fd < 0 && (a->fd = gw_dial(a->host, a->port, timeout_ms, err, errlen)) < 0)
			return NULL;
		if ((reply = ask(a, cmd, timeout_ms, &why, &got)))
			return reply;
		if (why == ASK_TIMEOUT)
			snprintf(err, errlen, "gearmand at %s:%d: no %sreply to '%s' within %d ms", a->host,
			    a->port, got ? "whole " : "", cmd, timeout_ms);
		else if (why == ASK_TOO_LARGE)
			snprintf(err, errlen, "gearmand at %s:%d: the reply to '%s' is over %u MB", a->host,
			    a->port, cmd, GADMIN_REPLY_MAX >> 20);
		else
			snprintf(err, errlen, "gearmand at %s:%d: %s", a->host, a->port,
			    errno ? strerror(errno) : "connection closed");
		/* Whatever comes later on this connection would be taken for the next reply. */
		close(a->fd);
		a->fd = -1;
		/*
		 * A kept connection that gearmand closed meanwhile (a restart), or
		 * that a firewall dropped unseen (nothing came back in time): once
		 * more on a new one.
		 */
		if (!kept || got)
			return NULL;
		kept = false;
	}
}

char *
gadmin_ask(const char *host, int port, const char *cmd, int timeout_ms, char *err, size_t errlen)
{
	struct gadmin_conn *a = gadmin_conn_new(host, port);
	char *reply;

	reply = gadmin_conn_ask(a, cmd, timeout_ms, err, errlen);
	gadmin_conn_free(a);
	return reply;
}

int
gadmin_job_retries(struct gadmin_conn *a, const char *handle, int timeout_ms)
{
	char err[256], *text = gadmin_conn_ask(a, "show jobs", timeout_ms, err, sizeof(err)), *line, *save = NULL;
	size_t hl = strlen(handle);
	int retries = -1;

	for (line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, handle, hl) == 0 && line[hl] == '\t') {
			retries = atoi(line + hl + 1);
			break;
		}
	free(text);
	return retries;
}
