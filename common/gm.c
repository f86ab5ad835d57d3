/* gm: see gm.h. */
#include "gm.h"
#include "gwconn.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

void
gm_backoff_init(struct gm_backoff *b, long min_ms, long max_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	b->min_ms = min_ms;
	b->max_ms = max_ms;
	b->cur_ms = min_ms;
	b->up = false;
	/* Different per process and per object, so peers do not retry in step. */
	b->seed = (unsigned)ts.tv_nsec ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)b;
}

long
gm_backoff_next(struct gm_backoff *b)
{
	long cur, d;

	if (b->up) {
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		b->up = false;
		if ((now.tv_sec - b->up_since.tv_sec) * 1000 +
		    (now.tv_nsec - b->up_since.tv_nsec) / 1000000 >= GM_BACKOFF_STABLE_MS)
			b->cur_ms = b->min_ms;
	}
	cur = b->cur_ms;
	d = cur / 2 + (long)(rand_r(&b->seed) % (unsigned long)(cur / 2 + 1));
	b->cur_ms = cur * 2 > b->max_ms ? b->max_ms : cur * 2;
	return d;
}

void
gm_backoff_up(struct gm_backoff *b)
{
	clock_gettime(CLOCK_MONOTONIC, &b->up_since);
	b->up = true;
}

/* After a success that proves the path works (a whole call answered), not a mere connect. */
void
gm_backoff_reset(struct gm_backoff *b)
{
	b->cur_ms = b->min_ms;
	b->up = false;
}

gearman_worker_st *
gm_worker_new(const struct config_server *servers, size_t n, const char *id,
    int timeout_ms, char *err, size_t errlen)
{
	gearman_worker_st *w = gearman_worker_create(NULL);
	size_t i;

	if (!w) {
		snprintf(err, errlen, "gearman_worker_create failed (out of memory?)");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (gearman_worker_add_server(w, servers[i].host, (in_port_t)servers[i].port) != GEARMAN_SUCCESS) {
			snprintf(err, errlen, "gearman server %s:%d: %s", servers[i].host,
			    servers[i].port, gearman_worker_error(w));
			gearman_worker_free(w);
			return NULL;
		}
	}
	if (id && gearman_worker_set_identifier(w, id, strlen(id)) != GEARMAN_SUCCESS) {
		snprintf(err, errlen, "worker id '%s': %s", id, gearman_worker_error(w));
		gearman_worker_free(w);
		return NULL;
	}
	gearman_worker_set_timeout(w, timeout_ms);
	return w;
}

bool
gm_is_connection_error(gearman_return_t rc)
{
	switch (rc) {
	case GEARMAN_SUCCESS:
	case GEARMAN_TIMEOUT:
	case GEARMAN_WORK_FAIL:
	case GEARMAN_NO_JOBS:
	case GEARMAN_IO_WAIT:
	case GEARMAN_NO_REGISTERED_FUNCTIONS:
		return false;
	default:
		return true;
	}
}

void *
gm_job_refuse(gearman_job_st *job, gearman_return_t *ret, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	(void)gearman_job_send_warning(job, msg, (size_t)n);
	*ret = GEARMAN_WORK_FAIL;
	return NULL;
}

/* ---- client call ---- */

struct call {
	char  *result;
	size_t len;
	char   warning[512];
	bool   done, failed;
};

static gearman_return_t
on_warning(gearman_task_st *t)
{
	struct call *c = gearman_task_context(t);
	size_t n = gearman_task_data_size(t);

	if (n >= sizeof(c->warning))
		n = sizeof(c->warning) - 1;
	if (n)
		memcpy(c->warning, gearman_task_data(t), n);
	c->warning[n] = '\0';
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_complete(gearman_task_st *t)
{
	struct call *c = gearman_task_context(t);
	size_t n = gearman_task_data_size(t);

	c->result = malloc(n + 1);
	if (c->result) {
		if (n)    /* an empty WORK_COMPLETE has no data pointer */
			memcpy(c->result, gearman_task_data(t), n);
		c->result[n] = '\0';
		c->len = n;
	}
	c->done = true;
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_fail(gearman_task_st *t)
{
	struct call *c = gearman_task_context(t);

	c->failed = true;
	return GEARMAN_SUCCESS;
}

int
gm_call(const struct config_server *servers, size_t n, const char *fn,
    const char *unique, const char *arg, size_t arglen, int timeout_ms,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	gearman_client_st *cl = gearman_client_create(NULL);
	struct call c;
	gearman_return_t rc;
	size_t i;
	int ret = -1;

	memset(&c, 0, sizeof(c));
	*out = NULL;
	if (!cl) {
		snprintf(err, errlen, "gearman_client_create failed");
		return -1;
	}
	for (i = 0; i < n; i++)
		gearman_client_add_server(cl, servers[i].host, (in_port_t)servers[i].port);
	gearman_client_set_timeout(cl, timeout_ms);
	gearman_client_set_warning_fn(cl, on_warning);
	gearman_client_set_complete_fn(cl, on_complete);
	gearman_client_set_fail_fn(cl, on_fail);
	if (!gearman_client_add_task(cl, NULL, &c, fn, unique, arg, arglen, &rc) ||
	    rc != GEARMAN_SUCCESS) {
		snprintf(err, errlen, "cannot submit %s: %s", fn, gearman_client_error(cl));
		goto out;
	}
	rc = gearman_client_run_tasks(cl);
	if (c.done) {
		*out = c.result;
		if (outlen)
			*outlen = c.len;
		c.result = NULL;
		ret = 0;
	} else if (c.failed)
		snprintf(err, errlen, "%s failed%s%s", fn, c.warning[0] ? ": " : "", c.warning);
	else if (rc == GEARMAN_TIMEOUT)
		snprintf(err, errlen, "%s: no answer within %d ms (is a worker for it running?)", fn, timeout_ms);
	else
		snprintf(err, errlen, "%s: %s", fn, gearman_client_error(cl));
out:
	free(c.result);
	gearman_client_free(cl);
	return ret;
}

/* ---- admin protocol ---- */

struct gm_admin_conn {
	char *host;
	int   port;
	int   fd;      /* -1 until used, and after an error */
};

struct gm_admin_conn *
gm_admin_conn_new(const char *host, int port)
{
	struct gm_admin_conn *a = calloc(1, sizeof(*a));

	if (!a || !(a->host = strdup(host))) {
		free(a);
		return NULL;
	}
	a->port = port;
	a->fd = -1;
	return a;
}

void
gm_admin_conn_free(struct gm_admin_conn *a)
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

/*
 * Send cmd on a->fd and read its whole reply. -1 with errno set (0 when
 * the peer closed) or *timed_out; *got tells whether any byte came back.
 */
static char *
ask(struct gm_admin_conn *a, const char *cmd, int timeout_ms, bool *timed_out, bool *got)
{
	char *buf = NULL;
	size_t len = 0, cap = 0, cl = strlen(cmd);
	struct iovec iov[2] = { { (void *)cmd, cl }, { "\n", 1 } };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 2 };

	*timed_out = *got = false;
	/* MSG_NOSIGNAL: a kept connection gearmand closed is an error here, not SIGPIPE. */
	if (sendmsg(a->fd, &m, MSG_NOSIGNAL) != (ssize_t)cl + 1)
		return NULL;
	while (!reply_complete(buf, len)) {
		struct pollfd p = { a->fd, POLLIN, 0 };
		ssize_t r;

		if (cap - len < 4096) {
			char *nb = realloc(buf, cap ? cap * 2 : 65536);

			if (!nb)
				goto fail;
			buf = nb;
			cap = cap ? cap * 2 : 65536;
		}
		if (poll(&p, 1, timeout_ms) <= 0) {
			*timed_out = true;
			goto fail;
		}
		if ((r = read(a->fd, buf + len, cap - len - 1)) <= 0) {
			if (r == 0)
				errno = 0;
			goto fail;
		}
		*got = true;
		len += (size_t)r;
		buf[len] = '\0';
	}
	return buf;
fail:
	free(buf);
	return NULL;
}

char *
gm_admin_conn_ask(struct gm_admin_conn *a, const char *cmd, int timeout_ms, char *err, size_t errlen)
{
	bool kept = a->fd >= 0, timed_out, got;
	char *reply;

	for (;;) {
		if (a->fd < 0 && (a->fd = gw_dial(a->host, a->port, timeout_ms, err, errlen)) < 0)
			return NULL;
		if ((reply = ask(a, cmd, timeout_ms, &timed_out, &got)))
			return reply;
		if (timed_out)
			snprintf(err, errlen, "gearmand at %s:%d: no reply to '%s'", a->host, a->port, cmd);
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
gm_admin(const char *host, int port, const char *cmd, int timeout_ms, char *err, size_t errlen)
{
	struct gm_admin_conn *a = gm_admin_conn_new(host, port);
	char *reply;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	reply = gm_admin_conn_ask(a, cmd, timeout_ms, err, errlen);
	gm_admin_conn_free(a);
	return reply;
}

int
gm_job_retries(struct gm_admin_conn *a, const char *handle, int timeout_ms)
{
	char err[256], *text = gm_admin_conn_ask(a, "show jobs", timeout_ms, err, sizeof(err)), *line, *save = NULL;
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
