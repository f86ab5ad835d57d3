/* gadmin: see gadmin.h. */
#include "gadmin.h"

#include "buf.h"
#include "clock.h"
#include "gnet.h"
#include "gwconn.h"
#include "xalloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room made before each read(2), so a long "show jobs" takes a few reads, not hundreds. */
#define ADMIN_READ_CHUNK	65536

struct gadmin_conn {
	const struct gnet_tls *tls;
	char *host;
	int   port;
	struct gnet *net;   /* NULL until used, and after an error */
};

struct gadmin_conn *
gadmin_conn_new(const struct gnet_tls *tls, const char *host, int port)
{
	struct gadmin_conn *a = xcalloc(1, sizeof(*a));

	a->tls = tls;
	a->host = xstrdup(host);
	a->port = port;
	return a;
}

void
gadmin_conn_free(struct gadmin_conn *a)
{
	if (!a)
		return;
	gnet_close(a->net);
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
	ASK_IO,          /* gnet_error says why (the peer closed: *got tells whether it said anything) */
	ASK_TIMEOUT,     /* no whole reply by the deadline */
	ASK_TOO_LARGE,   /* the reply grew past GADMIN_REPLY_MAX */
};

/*
 * Send cmd on a->net and read its whole reply within timeout_ms, all of it:
 * a peer that trickles a byte at a time, or never ends its list, is cut
 * off at the deadline or the size cap, not followed forever. NULL with
 * *why; *got tells whether any byte came back.
 */
static char *
ask(struct gadmin_conn *a, const char *cmd, int timeout_ms, enum ask_fail *why, bool *got)
{
	struct buf b = { 0 };
	long long deadline = clk_now_ms() + timeout_ms;
	char *line = xasprintf("%s\n", cmd);
	int w;

	*why = ASK_IO;
	*got = false;
	/* One write, never SIGPIPE (gnet): a kept connection gearmand closed is an error here. */
	w = gnet_write_all(a->net, line, strlen(line), timeout_ms);
	free(line);
	if (w < 0)
		return NULL;
	while (!reply_complete(b.s, b.len)) {
		ssize_t r;

		if (b.len > GADMIN_REPLY_MAX) {
			*why = ASK_TOO_LARGE;
			goto fail;
		}
		buf_reserve(&b, ADMIN_READ_CHUNK);
		/* A read first: TLS may hold decrypted bytes the fd does not show. */
		r = gnet_read(a->net, b.s + b.len, b.cap - b.len - 1);
		if (r == GNET_WANT_READ || r == GNET_WANT_WRITE) {
			if (clk_passed(deadline) || !gnet_wait(a->net, r, (int)clk_left_ms(deadline))) {
				*why = ASK_TIMEOUT;
				goto fail;
			}
			continue;
		}
		if (r <= 0)
			goto fail;
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
	bool kept = a->net != NULL, got;
	enum ask_fail why;
	char *reply;

	for (;;) {
		if (!a->net && !(a->net = gw_dial(a->tls, a->host, a->port, timeout_ms, err, errlen)))
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
			snprintf(err, errlen, "gearmand at %s:%d: %s", a->host, a->port, gnet_error(a->net));
		/* Whatever comes later on this connection would be taken for the next reply. */
		gnet_close(a->net);
		a->net = NULL;
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
gadmin_ask(const struct gnet_tls *tls, const char *host, int port, const char *cmd, int timeout_ms,
    char *err, size_t errlen)
{
	struct gadmin_conn *a = gadmin_conn_new(tls, host, port);
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
