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

int
gadmin_status_parse(const char *line, struct gadmin_fn *f)
{
	int end = -1;

	/* The name field's width is GADMIN_NAME_MAX - 1; a longer name fails on the TAB. */
	if (sscanf(line, "%1023[^\t]\t%ld\t%ld\t%ld%n", f->name, &f->total, &f->running,
	    &f->workers, &end) != 4 || line[end] != '\0')
		return -1;
	if (f->total < 0 || f->running < 0 || f->workers < 0)
		return -1;
	return 0;
}

int
gadmin_worker_parse(const char *line, char id[GADMIN_ID_MAX], const char **fns)
{
	const char *p = line, *colon;
	size_t len;
	int field;

	/* FD and IP are single words (an IPv6 address holds colons: look for " :" only after it). */
	for (field = 0; field < 2; field++) {
		len = strcspn(p, " ");
		if (len == 0 || p[len] != ' ')
			return -1;
		p += len + 1;
	}
	/* The id is the rest up to " : " or a closing " :" (a node name may hold spaces). */
	for (colon = strstr(p, " :"); colon && colon[2] != ' ' && colon[2] != '\0';
	    colon = strstr(colon + 1, " :"))
		;
	if (!colon)
		return -1;
	len = (size_t)(colon - p);
	if (len == 0 || len >= GADMIN_ID_MAX)
		return -1;
	memcpy(id, p, len);
	id[len] = '\0';
	*fns = colon[2] ? colon + 3 : colon + 2;
	return 0;
}

size_t
gadmin_worker_fn_len(const char *p, char *const *spaced, size_t nspaced)
{
	size_t best = strcspn(p, " "), i;

	for (i = 0; i < nspaced; i++) {
		size_t l = strlen(spaced[i]);

		if (l > best && strncmp(p, spaced[i], l) == 0 && (p[l] == ' ' || p[l] == '\0'))
			best = l;
	}
	return best;
}
