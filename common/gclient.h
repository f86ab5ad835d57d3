/*
 * gclient: a Gearman client, one foreground job per connection, spoken
 * with gwconn's packet code (the mapper's project_map, the CLI's map,
 * stop, set_description and build).
 *
 * Why not libgearman's client: Debian's libgearman is built without TLS
 * (and silently talks plaintext when asked for it), and its timeout is
 * per wait, so a worker that answers with WORK_STATUS every few seconds
 * held a call for ever (a fake project_map worker froze an agent's map).
 * Here a call has one deadline, and the connection comes from gwconn, so
 * it is TLS when the caller's gnet_tls says so.
 *
 * A failure is a WORK_WARNING text + WORK_FAIL from the worker, never
 * WORK_EXCEPTION (gearmand 1.1.20 turns it into a bare WORK_FAIL for a
 * client that did not ask for exceptions, and drops the text): the
 * warning's text is what the caller shows. A WORK_EXCEPTION that arrives
 * anyway (another server) ends the job as a failure with its text.
 *
 * Several servers: the first tried is picked by the unique id (CRC32 as
 * Perl's Gearman::Client hashes it), else it is the first listed; the
 * others follow in order when a server cannot be reached or drops the
 * connection before JOB_CREATED. gearmand merges submissions with the same
 * unique only within one server, so every client that hashes this way
 * (ours, Perl's) sends one unique to one server and a second submission
 * joins the first build. libgearman does not hash: it always tries the
 * last server it was given first.
 *
 * Every packet is hostile: sizes are capped by gwconn (GW_MAX_BODY), a
 * packet that does not parse ends the job with an error, packets for
 * another job handle are ignored, and nothing waits past its deadline.
 */
#ifndef JGA_GCLIENT_H
#define JGA_GCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct gnet_tls;          /* NULL: plaintext (gnet.h, from h-tls) */
struct gw_packet;

/* gearmand 1.1.20's limits; a longer unique or function is refused before sending. */
#define GCLIENT_UNIQUE_MAX    64
#define GCLIENT_FUNCTION_MAX  512
/* The longest job handle taken from JOB_CREATED (gearmand's are under 64). */
#define GCLIENT_HANDLE_MAX    128

enum gclient_err {
	GCLIENT_OK = 0,
	GCLIENT_EFAILED = -1,     /* the worker refused it: WORK_FAIL (its warning in err) */
	GCLIENT_ENOANSWER = -2,   /* no answer in time: no worker for it, or a slow one */
	GCLIENT_EGEARMAN = -3,    /* gearmand unreachable, an ERROR packet, or a bad packet */
};

/*
 * Submit fn(arg) as a foreground job and wait for its end; timeout_ms
 * bounds the whole call (connecting included), however often the worker
 * sends WORK_DATA or WORK_STATUS. GCLIENT_OK with a malloc'd,
 * NUL-terminated WORK_COMPLETE payload in *out (length in *outlen, may be
 * NULL); otherwise the kind of failure and a message in err. unique: NULL
 * or "" for none (gearmand then merges nothing).
 */
enum gclient_err gclient_call(const struct gnet_tls *tls, const struct config_server *servers,
        size_t n, const char *fn, const char *unique, const char *arg, size_t arglen,
        int timeout_ms, char **out, size_t *outlen, char *err, size_t errlen);

/* ---- one job followed event by event (the CLI's build) ---- */

enum gclient_ev_type {
	GCLIENT_EV_DATA,        /* WORK_DATA: data, len */
	GCLIENT_EV_WARNING,     /* WORK_WARNING: data, len */
	GCLIENT_EV_STATUS,      /* WORK_STATUS: num, den (den -1: no estimate) */
	GCLIENT_EV_COMPLETE,    /* WORK_COMPLETE: data, len; the job is over */
	GCLIENT_EV_FAIL,        /* WORK_FAIL; the job is over */
	GCLIENT_EV_EXCEPTION,   /* WORK_EXCEPTION: data, len; the job is over */
};

/* One event; data points into the connection's buffer until the next gclient_next. */
struct gclient_ev {
	enum gclient_ev_type type;
	const char *data;
	size_t      len;
	long long   num, den;
};

struct gclient_job;

/*
 * Connect (trying the servers as above) and submit fn(arg); return once
 * gearmand has answered JOB_CREATED, within timeout_ms. NULL and err when
 * no server took it (unreachable, ERROR, a bad answer, the deadline).
 */
struct gclient_job *gclient_submit(const struct gnet_tls *tls, const struct config_server *servers,
                        size_t n, const char *fn, const char *unique, const char *arg,
                        size_t arglen, int timeout_ms, char *err, size_t errlen);
/* The job handle from JOB_CREATED. */
const char *gclient_handle(const struct gclient_job *j);
/*
 * The job's next event, waiting up to timeout_ms: 1 with *ev, 0 when none
 * came in time, -1 when the connection broke, gearmand sent ERROR, a packet
 * was malformed or oversize, or the job was already over (gclient_error).
 */
int         gclient_next(struct gclient_job *j, struct gclient_ev *ev, int timeout_ms);
const char *gclient_error(const struct gclient_job *j);
void        gclient_close(struct gclient_job *j);

/*
 * The response reader's core, exposed for tests and the fuzz target: what
 * one packet from gearmand means to a job whose handle is handle (NULL
 * before JOB_CREATED). 1: *ev is an event of this job; 2: JOB_CREATED,
 * its handle copied to created (GCLIENT_HANDLE_MAX bytes); 0: nothing for
 * this job (another handle, OPTION_RES, an unknown type); -1: malformed or
 * unexpected, with why in err.
 */
int gclient_parse(const struct gw_packet *p, const char *handle, struct gclient_ev *ev,
        char *created, char *err, size_t errlen);

#endif
