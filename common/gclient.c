/* gclient: see gclient.h. */
#include "gclient.h"

#include "clock.h"
#include "gwconn.h"
#include "xalloc.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The warning text kept for a failed call's message. */
#define GCLIENT_WARNING_MAX  512

struct gclient_job {
	struct gw_conn *c;
	char  handle[GCLIENT_HANDLE_MAX];
	char  err[512];
	bool  over;       /* COMPLETE, FAIL or EXCEPTION seen */
};

/* CRC-32 (IEEE), bit by bit: a few bytes per call, no table needed. */
static uint32_t
crc32_of(const char *s, size_t n)
{
	uint32_t crc = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		crc ^= (unsigned char)s[i];
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

/*
 * The server tried first: Perl's Gearman::Task::hash, (crc32 >> 16) &
 * 0x7fff of the unique (of the argument for "-", gearmand's "merge by
 * workload"), modulo the number of servers; the first without a unique.
 */
static size_t
first_server(size_t n, const char *unique, const char *arg, size_t arglen)
{
	uint32_t h;

	if (n < 2 || !unique || !unique[0])
		return 0;
	if (strcmp(unique, "-") == 0)
		h = crc32_of(arg, arglen);
	else
		h = crc32_of(unique, strlen(unique));
	return ((h >> 16) & 0x7fff) % n;
}

/* A decimal argument of a WORK_STATUS (not NUL-terminated); def when it is not one. */
static long long
status_number(const char *s, size_t n, long long def)
{
	char buf[24], *end;
	long long v;

	if (n == 0 || n >= sizeof(buf))
		return def;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || *end || end == buf)
		return def;
	return v;
}

static bool
is_handle(const struct gw_packet *p, const char *handle)
{
	return handle && p->len[0] == strlen(handle) && memcmp(p->arg[0], handle, p->len[0]) == 0;
}

/*
 * JOB_CREATED's handle into created: non-empty, under GCLIENT_HANDLE_MAX,
 * printable ASCII without blanks (gearmand's are "H:host:N"). It is shown,
 * logged and sent back in an admin "cancel job" line.
 */
static int
take_created(const struct gw_packet *p, const char *handle, char *created, char *err, size_t errlen)
{
	size_t i;

	if (handle) {
		snprintf(err, errlen, "JOB_CREATED for a job already created");
		return -1;
	}
	for (i = 0; i < p->len[0] && p->arg[0][i] > ' ' && p->arg[0][i] < 0x7f; i++)
		;
	if (p->len[0] == 0 || p->len[0] >= GCLIENT_HANDLE_MAX || i < p->len[0]) {
		snprintf(err, errlen, "JOB_CREATED with a bad job handle (%zu bytes)", p->len[0]);
		return -1;
	}
	memcpy(created, p->arg[0], p->len[0]);
	created[p->len[0]] = '\0';
	return 2;
}

int
gclient_parse(const struct gw_packet *p, const char *handle, struct gclient_ev *ev, char *created,
    char *err, size_t errlen)
{
	memset(ev, 0, sizeof(*ev));
	switch (p->type) {
	case GW_JOB_CREATED:
		return take_created(p, handle, created, err, errlen);
	case GW_ERROR:
		snprintf(err, errlen, "gearmand error %.*s: %.*s", (int)(p->len[0] > 64 ? 64 : p->len[0]),
		    p->arg[0], (int)(p->len[1] > 256 ? 256 : p->len[1]), p->arg[1]);
		return -1;
	case GW_WORK_DATA:
	case GW_WORK_WARNING:
	case GW_WORK_COMPLETE:
	case GW_WORK_EXCEPTION:
	case GW_WORK_FAIL:
	case GW_WORK_STATUS:
		break;
	default:
		return 0;    /* OPTION_RES, STATUS_RES, NOOP, anything newer: nothing for the job */
	}
	if (!is_handle(p, handle))
		return 0;
	switch (p->type) {
	case GW_WORK_DATA: ev->type = GCLIENT_EV_DATA; break;
	case GW_WORK_WARNING: ev->type = GCLIENT_EV_WARNING; break;
	case GW_WORK_COMPLETE: ev->type = GCLIENT_EV_COMPLETE; break;
	case GW_WORK_EXCEPTION: ev->type = GCLIENT_EV_EXCEPTION; break;
	case GW_WORK_FAIL: ev->type = GCLIENT_EV_FAIL; return 1;
	default:
		/* Unsigned 32 bits in libgearman: a denominator beyond that, or negative, is no estimate. */
		ev->type = GCLIENT_EV_STATUS;
		ev->num = status_number(p->arg[1], p->len[1], 0);
		ev->den = status_number(p->arg[2], p->len[2], -1);
		if (ev->num < 0)
			ev->num = 0;
		if (ev->den < 0 || ev->den > INT32_MAX)
			ev->den = -1;
		return 1;
	}
	ev->data = p->arg[1];
	ev->len = p->len[1];
	return 1;
}

/* SUBMIT_JOB on one connection, then wait for its JOB_CREATED until deadline. */
static int
submit_one(struct gclient_job *j, const char *fn, const char *unique, const char *arg, size_t arglen,
    long long deadline)
{
	const char *args[3] = { fn, unique ? unique : "", arg ? arg : "" };
	size_t lens[3] = { strlen(fn), strlen(args[1]), arg ? arglen : 0 };
	struct gw_packet p;
	struct gclient_ev ev;
	int r;

	if (gw_send(j->c, GW_SUBMIT_JOB, args, lens, 3) < 0) {
		snprintf(j->err, sizeof(j->err), "%s", gw_error(j->c));
		return -1;
	}
	for (;;) {
		long long left = clk_left_ms(deadline);

		if (left <= 0) {
			snprintf(j->err, sizeof(j->err), "%s: no JOB_CREATED in time", gw_peer(j->c));
			return -1;
		}
		if ((r = gw_read(j->c, &p, (int)left)) < 0) {
			snprintf(j->err, sizeof(j->err), "%s", gw_error(j->c));
			return -1;
		}
		if (r == 0)
			continue;
		r = gclient_parse(&p, NULL, &ev, j->handle, j->err, sizeof(j->err));
		if (r == 2)
			return 0;
		if (r < 0)
			return -2;    /* gearmand answered: another server would not do better */
	}
}

/* Refuse what gearmand would refuse (or libgearman did) before connecting. */
static int
check_request(const char *fn, const char *unique, char *err, size_t errlen)
{
	if (!fn[0] || strlen(fn) > GCLIENT_FUNCTION_MAX) {
		snprintf(err, errlen, "cannot submit %.64s: function name empty or over %d bytes", fn,
		    GCLIENT_FUNCTION_MAX);
		return -1;
	}
	if (unique && strlen(unique) > GCLIENT_UNIQUE_MAX) {
		snprintf(err, errlen, "cannot submit %s: unique id over %d bytes", fn, GCLIENT_UNIQUE_MAX);
		return -1;
	}
	return 0;
}

struct gclient_job *
gclient_submit(const struct gnet_tls *tls, const struct config_server *servers, size_t n,
    const char *fn, const char *unique, const char *arg, size_t arglen, int timeout_ms, char *err,
    size_t errlen)
{
	long long deadline = clk_now_ms() + (timeout_ms > 0 ? timeout_ms : 1);
	struct gclient_job *j;
	size_t first, k;
	int r;

	if (check_request(fn, unique, err, errlen) < 0)
		return NULL;
	if (n == 0) {
		snprintf(err, errlen, "cannot submit %s: no gearmand server", fn);
		return NULL;
	}
	j = xcalloc(1, sizeof(*j));
	first = first_server(n, unique, arg, arglen);
	for (k = 0; k < n; k++) {
		const struct config_server *s = &servers[(first + k) % n];
		/* Each server left gets an equal share: a black hole does not starve the rest. */
		long long share = clk_left_ms(deadline) / (long long)(n - k);

		if (share < 1)
			share = 1;
		if (!(j->c = gw_connect(tls, s->host, s->port, NULL, (int)share, j->err, sizeof(j->err))))
			continue;
		r = submit_one(j, fn, unique, arg, arglen, clk_now_ms() + share);
		if (r == 0)
			return j;
		gw_close(j->c);
		j->c = NULL;
		if (r == -2)
			break;
	}
	snprintf(err, errlen, "cannot submit %s: %s", fn, j->err);
	free(j);
	return NULL;
}

const char *
gclient_handle(const struct gclient_job *j)
{
	return j->handle;
}

const char *
gclient_error(const struct gclient_job *j)
{
	return j->err;
}

int
gclient_next(struct gclient_job *j, struct gclient_ev *ev, int timeout_ms)
{
	long long deadline = clk_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	struct gw_packet p;
	char created[GCLIENT_HANDLE_MAX];
	int r;

	if (j->over) {
		snprintf(j->err, sizeof(j->err), "job %s is over", j->handle);
		return -1;
	}
	for (;;) {
		if ((r = gw_read(j->c, &p, (int)clk_left_ms(deadline))) < 0) {
			snprintf(j->err, sizeof(j->err), "%s", gw_error(j->c));
			return -1;
		}
		if (r == 0)
			return 0;
		/* A second JOB_CREATED is an error: the handle is set. */
		if ((r = gclient_parse(&p, j->handle, ev, created, j->err, sizeof(j->err))) < 0)
			return -1;
		if (r == 1) {
			j->over = ev->type == GCLIENT_EV_COMPLETE || ev->type == GCLIENT_EV_FAIL ||
			    ev->type == GCLIENT_EV_EXCEPTION;
			return 1;
		}
		if (clk_passed(deadline))
			return 0;
	}
}

void
gclient_close(struct gclient_job *j)
{
	if (!j)
		return;
	gw_close(j->c);
	free(j);
}

/* A text of at most GCLIENT_WARNING_MAX - 1 bytes into w. */
static void
keep_text(char *w, const char *data, size_t len)
{
	if (len >= GCLIENT_WARNING_MAX)
		len = GCLIENT_WARNING_MAX - 1;
	if (len)
		memcpy(w, data, len);
	w[len] = '\0';
}

enum gclient_err
gclient_call(const struct gnet_tls *tls, const struct config_server *servers, size_t n,
    const char *fn, const char *unique, const char *arg, size_t arglen, int timeout_ms,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	long long deadline = clk_now_ms() + timeout_ms;
	char warning[GCLIENT_WARNING_MAX] = "";
	struct gclient_job *j;
	struct gclient_ev ev;
	int r;

	*out = NULL;
	if (!(j = gclient_submit(tls, servers, n, fn, unique, arg, arglen, timeout_ms, err, errlen)))
		return GCLIENT_EGEARMAN;
	for (;;) {
		/* Checked before each read: a peer streaming packets never lets a read time out. */
		r = clk_passed(deadline) ? 0 : gclient_next(j, &ev, (int)clk_left_ms(deadline));
		if (r < 0) {
			snprintf(err, errlen, "%s: %s", fn, j->err);
			gclient_close(j);
			return GCLIENT_EGEARMAN;
		}
		if (r == 0) {
			snprintf(err, errlen, "%s: no answer within %d ms (is a worker for it running?)", fn,
			    timeout_ms);
			gclient_close(j);
			return GCLIENT_ENOANSWER;
		}
		if (ev.type == GCLIENT_EV_WARNING || ev.type == GCLIENT_EV_EXCEPTION)
			keep_text(warning, ev.data, ev.len);
		if (ev.type == GCLIENT_EV_COMPLETE) {
			*out = xmalloc(ev.len + 1);
			if (ev.len)
				memcpy(*out, ev.data, ev.len);
			(*out)[ev.len] = '\0';
			if (outlen)
				*outlen = ev.len;
			gclient_close(j);
			return GCLIENT_OK;
		}
		if (ev.type == GCLIENT_EV_FAIL || ev.type == GCLIENT_EV_EXCEPTION) {
			snprintf(err, errlen, "%s failed%s%s", fn, warning[0] ? ": " : "", warning);
			gclient_close(j);
			return GCLIENT_EFAILED;
		}
	}
}
