/*
 * gm: glue around libgearman 1.1.20, for the traps its reference lists
 * (shared/reference/gearman-and-anchors.md §1.5, §2.2, §7):
 *  - a failure is WORK_WARNING text + WORK_FAIL, never WORK_EXCEPTION
 *    (gearmand 1.1.20 mangles it and common clients hang);
 *  - libgearman has no reconnect backoff, so callers use gm_backoff;
 *  - a worker's id is not re-sent after a reconnect, so callers recreate
 *    the worker with gm_worker_new after a connection error.
 * No agent policy lives here.
 */
#ifndef JGA_GM_H
#define JGA_GM_H

#include <libgearman/gearman.h>

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"

/*
 * Exponential backoff with jitter: each delay is random in [cur/2, cur].
 * For a connection, gm_backoff_up when it is up: the delays start again
 * from min_ms only if it then stayed up GM_BACKOFF_STABLE_MS. A peer that
 * accepts and drops at once (a job it cannot hand over, a proxy with
 * nothing behind it) is retried ever more slowly, not every half second.
 */
#define GM_BACKOFF_STABLE_MS 10000

struct gm_backoff {
	long            min_ms, max_ms, cur_ms;
	unsigned        seed;
	bool            up;          /* gm_backoff_up called, no gm_backoff_next since */
	struct timespec up_since;    /* CLOCK_MONOTONIC */
};
void gm_backoff_init(struct gm_backoff *b, long min_ms, long max_ms);
long gm_backoff_next(struct gm_backoff *b);
void gm_backoff_up(struct gm_backoff *b);
void gm_backoff_reset(struct gm_backoff *b);

/*
 * A worker on every server, with SET_CLIENT_ID id (printable, no blanks),
 * and a poll timeout so the caller's loop regains control every timeout_ms.
 * Returns NULL and fills err on failure.
 */
gearman_worker_st *gm_worker_new(const struct config_server *servers, size_t n,
                       const char *id, int timeout_ms, char *err, size_t errlen);

/* True for the return codes after which the worker must be recreated. */
bool gm_is_connection_error(gearman_return_t rc);

/*
 * Refuse a job: send msg as WORK_WARNING and make the v1 callback end in
 * WORK_FAIL. Returns NULL (the callback's result) for convenience.
 */
void *gm_job_refuse(gearman_job_st *job, gearman_return_t *ret, const char *fmt, ...)
          __attribute__((format(printf, 3, 4)));

/*
 * Submit fn(arg) as a foreground job and wait up to timeout_ms.
 * Returns 0 and a malloc'd, NUL-terminated WORK_COMPLETE payload in *out
 * (length in *outlen, may be NULL). Returns -1 with a message in err when the
 * job failed (the worker's WORK_WARNING text is included), timed out or
 * could not be submitted.
 */
int gm_call(const struct config_server *servers, size_t n, const char *fn,
        const char *unique, const char *arg, size_t arglen, int timeout_ms,
        char **out, size_t *outlen, char *err, size_t errlen);

/*
 * Run one text admin command (e.g. "status", "workers") on host:port and
 * return its reply up to the closing "." line, malloc'd. NULL and err on error.
 */
char *gm_admin(const char *host, int port, const char *cmd, int timeout_ms,
          char *err, size_t errlen);

/*
 * The same on a connection kept between commands, for one asked often (the
 * node agent's "show jobs" for every job it takes: a connection each time
 * cost gearmand half its CPU per job). Connects on first use. After an
 * error or a timeout the connection is closed, as a late reply would be
 * taken for the next command's. A kept connection that gave nothing back
 * (gearmand closed it, or a firewall dropped it and the reply timed out)
 * is replaced at once and the command sent again. One thread at a time
 * per gm_admin_conn.
 */
struct gm_admin_conn;
struct gm_admin_conn *gm_admin_conn_new(const char *host, int port);
char *gm_admin_conn_ask(struct gm_admin_conn *a, const char *cmd, int timeout_ms,
          char *err, size_t errlen);
void  gm_admin_conn_free(struct gm_admin_conn *a);

/*
 * How many times gearmand has handed out the job with this handle before
 * (its "retries": > 0 means a worker lost it and it was re-queued), from
 * the admin "show jobs" list, which names every job gearmand holds. -1 if
 * gearmand does not answer or lists no such job.
 */
int gm_job_retries(struct gm_admin_conn *a, const char *handle, int timeout_ms);

#endif
