/*
 * gadmin: gearmand's text admin protocol ("status", "workers", "show
 * jobs"): a command, and its reply up to the closing "." line. Over
 * plain TCP, or TLS with tls (gnet.h; NULL: plain).
 */
#ifndef JGA_GADMIN_H
#define JGA_GADMIN_H

#include <stddef.h>

struct gnet_tls;

/*
 * The largest reply read: "workers" of a pool of thousands of functions
 * per worker runs to tens of MB; anything larger is refused, so that a
 * hostile peer cannot grow a daemon without bound.
 */
#define GADMIN_REPLY_MAX	(64u * 1024 * 1024)

/*
 * One command on a new connection to host:port; the reply malloc'd, or
 * NULL and err. timeout_ms bounds the whole reply, not each read.
 */
char *gadmin_ask(const struct gnet_tls *tls, const char *host, int port, const char *cmd,
          int timeout_ms, char *err, size_t errlen);

/*
 * The same on a connection kept between commands, for one asked often
 * (the node agent's "show jobs" for every job it takes: a new connection
 * each time would cost gearmand more than the command). Connects on first
 * use. After an error or a timeout the connection is closed, as a late
 * reply would be taken for the next command's. A kept connection that
 * gave nothing back (gearmand closed it, or a firewall dropped it and the
 * reply timed out) is replaced at once and the command sent again. One
 * thread at a time per gadmin_conn.
 */
struct gadmin_conn;
struct gadmin_conn *gadmin_conn_new(const struct gnet_tls *tls, const char *host, int port);
char *gadmin_conn_ask(struct gadmin_conn *a, const char *cmd, int timeout_ms,
          char *err, size_t errlen);
void  gadmin_conn_free(struct gadmin_conn *a);

/*
 * How many times gearmand has handed out the job with this handle before
 * (its "retries": > 0 means a worker lost it and it was re-queued), from
 * the admin "show jobs" list, which names every job gearmand holds. -1 if
 * gearmand does not answer or lists no such job.
 */
int gadmin_job_retries(struct gadmin_conn *a, const char *handle, int timeout_ms);

/*
 * The lines of "status" and "workers" replies, for whoever reads them
 * (the CLI's status table, the status page's poller). Nothing in them is
 * trusted: a line that is not what it should be is rejected, not guessed.
 */
#define GADMIN_NAME_MAX	1024   /* a longer function name is rejected */
#define GADMIN_ID_MAX	256    /* a longer worker id is rejected */

/* "status": FUNCTION TAB TOTAL TAB RUNNING TAB AVAILABLE_WORKERS. */
struct gadmin_fn {
	char name[GADMIN_NAME_MAX];
	long total, running, workers;   /* never negative; running <= total not assumed */
};
/* 0 and *f filled, or -1 if line is not a status line. */
int gadmin_status_parse(const char *line, struct gadmin_fn *f);

/*
 * "workers": FD IP ID : FUNCTION... (a client's connection has no
 * functions: the line ends at " :"). 0 with id (NUL-terminated, "-" when
 * the worker set none; it may hold spaces, as a Jenkins node name may) and *fns pointing into line at its first function
 * ("" for a client), or -1 if line is not a workers line.
 */
int gadmin_worker_parse(const char *line, char id[GADMIN_ID_MAX], const char **fns);

/*
 * The length of the function name at p in a "workers" list. gearmand joins
 * the names with single spaces although a name may hold spaces (a Jenkins
 * job "my job" is "build:my job"): the longest name with a space known
 * from "status" (spaced) that ends at a space or the end, else up to the
 * next space.
 */
size_t gadmin_worker_fn_len(const char *p, char *const *spaced, size_t nspaced);

#endif
