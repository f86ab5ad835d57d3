/*
 * gwconn: one worker-side connection to one gearmand, speaking the binary
 * protocol directly.
 *
 * Why not libgearman's worker loop: gearman_worker_work() and
 * gearman_worker_grab_job() send GRAB_JOB as soon as a NOOP arrives, and
 * send CAN_DO only as part of grabbing. A worker that must stay registered
 * while it has no room for a job, and decide after each NOOP whether to
 * grab at all, cannot be written on them. Here the caller sends each
 * packet itself and owns the socket's fd, so it can poll it together with
 * its own wake-ups.
 *
 * Packets sent: SET_CLIENT_ID, CAN_DO, CANT_DO, GRAB_JOB_UNIQ, PRE_SLEEP,
 * WORK_DATA, WORK_WARNING, WORK_STATUS, WORK_COMPLETE, WORK_FAIL,
 * ECHO_REQ. Never RESET_ABILITIES (gearmand re-queues every job the
 * connection holds), never WORK_EXCEPTION, never CAN_DO_TIMEOUT.
 *
 * The stream is plain TCP or TLS (gnet.h): with a gnet_tls, TLS or no
 * connection at all. Writes block, up to GW_WRITE_MS each; reads are buffered
 * and never wait longer than asked. Every call on one connection must come
 * from one thread at a time (the caller locks). Memory runs out fatally
 * (xalloc.h); bodies are capped at GW_MAX_BODY before any allocation.
 */
#ifndef JGA_GWCONN_H
#define JGA_GWCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest packet body read whole. A larger JOB_ASSIGN* is returned as oversize. */
#define GW_MAX_BODY    (64u * 1024 * 1024)
/*
 * A write not done within this many milliseconds fails its send: a
 * gearmand that stopped reading is as good as gone, and the caller's
 * thread (which may hold a lock others wait for) must get on.
 */
#define GW_WRITE_MS    10000

enum gw_type {
	GW_CAN_DO = 1, GW_CANT_DO = 2, GW_RESET_ABILITIES = 3, GW_PRE_SLEEP = 4,
	GW_NOOP = 6, GW_GRAB_JOB = 9, GW_NO_JOB = 10, GW_JOB_ASSIGN = 11,
	GW_WORK_STATUS = 12, GW_WORK_COMPLETE = 13, GW_WORK_FAIL = 14,
	GW_ECHO_REQ = 16, GW_ECHO_RES = 17, GW_ERROR = 19, GW_SET_CLIENT_ID = 22,
	GW_WORK_DATA = 28, GW_WORK_WARNING = 29, GW_GRAB_JOB_UNIQ = 30,
	GW_JOB_ASSIGN_UNIQ = 31,
	/* A client's (gclient.c): what it sends and what gearmand answers it. */
	GW_SUBMIT_JOB = 7, GW_JOB_CREATED = 8, GW_STATUS_RES = 20,
	GW_WORK_EXCEPTION = 25, GW_OPTION_REQ = 26, GW_OPTION_RES = 27,
};

/*
 * A received packet. Arguments point into the connection's buffer and stay
 * valid until the next gw_read on the same connection. An oversize
 * JOB_ASSIGN / JOB_ASSIGN_UNIQ (body over GW_MAX_BODY) has only its
 * leading arguments (handle, function, unique): its workload of
 * workload_len bytes is discarded as it arrives, never held whole, and the
 * packet is returned once the last of it has gone by.
 */
#define GW_MAX_ARGS    5   /* STATUS_RES: handle, known, running, numerator, denominator */

struct gw_packet {
	uint32_t    type;
	const char *arg[GW_MAX_ARGS];
	size_t      len[GW_MAX_ARGS];
	int         nargs;
	bool        oversize;
	size_t      workload_len;   /* oversize only */
};

/* A job taken from JOB_ASSIGN_UNIQ, copied out of the buffer. */
struct gw_job {
	char  *handle;
	char  *function;
	char  *unique;
	char  *workload;     /* NUL-terminated copy; workload_len excludes the NUL */
	size_t workload_len;
};

struct gw_conn;
struct gnet;
struct gnet_tls;

/*
 * A TCP connection to host:port ("[::1]" accepted) within timeout_ms; the fd is
 * non-blocking and close-on-exec, with keepalive probes after 30 s of silence
 * and unacknowledged writes given up after 60 s, so a vanished peer is found
 * in about a minute, not the kernel's two hours. With tls (NULL: plain TCP),
 * the TLS handshake is done within the same timeout_ms, the server's
 * certificate verified against host. NULL and err on failure.
 */
struct gnet *gw_dial(const struct gnet_tls *tls, const char *host, int port, int timeout_ms,
                 char *err, size_t errlen);

/* Connect (with a timeout, tls as gw_dial) and send SET_CLIENT_ID id. NULL and err on failure. */
struct gw_conn *gw_connect(const struct gnet_tls *tls, const char *host, int port, const char *id,
                    int timeout_ms, char *err, size_t errlen);
void            gw_close(struct gw_conn *c);
int             gw_fd(const struct gw_conn *c);
const char     *gw_peer(const struct gw_conn *c);   /* "host:port" */
/*
 * Milliseconds since the last byte came from the peer (or since the
 * connect), as read by gw_read: a big packet still arriving counts as life,
 * though no whole packet is there yet.
 */
long            gw_quiet_ms(const struct gw_conn *c);

/* Each send returns 0, or -1 with the connection unusable (see gw_error). */
int gw_send(struct gw_conn *c, enum gw_type type, const char *const *args,
        const size_t *lens, int nargs);
/* One packet of type with one argument per name, written in 64 kB batches
 * (10,000 CAN_DOs in 10 writes instead of 10,000). */
int gw_send_each(struct gw_conn *c, enum gw_type type, char *const *names, size_t n);
int gw_can_do(struct gw_conn *c, const char *function);
int gw_cant_do(struct gw_conn *c, const char *function);
int gw_grab(struct gw_conn *c);
int gw_pre_sleep(struct gw_conn *c);
int gw_work_data(struct gw_conn *c, const char *handle, const char *data, size_t len);
int gw_work_warning(struct gw_conn *c, const char *handle, const char *data, size_t len);
int gw_work_status(struct gw_conn *c, const char *handle, long long num, long long den);
int gw_work_complete(struct gw_conn *c, const char *handle, const char *data, size_t len);
int gw_work_fail(struct gw_conn *c, const char *handle);

/*
 * Read one packet, waiting up to timeout_ms (0: only what is buffered or
 * readable now). Returns 1 with *p filled, 0 on timeout, -1 on a closed or
 * broken connection, a malformed packet, or an oversize packet other than
 * a JOB_ASSIGN* (p->oversize: answer it by handle, the connection stays).
 */
int gw_read(struct gw_conn *c, struct gw_packet *p, int timeout_ms);
/*
 * After gw_read returned 1, more may be buffered (in the connection, or
 * decrypted inside TLS) that the fd's readability does not show: call
 * gw_read again until it returns 0 before polling the fd. After a 0 all
 * that is left is on the socket. gw_tls_pending: decrypted bytes wait
 * inside TLS (never true right after gw_read returned 0).
 */
bool gw_tls_pending(const struct gw_conn *c);

/* Copy a whole JOB_ASSIGN / JOB_ASSIGN_UNIQ packet into job; -1 for any other packet. */
int  gw_job_from_packet(const struct gw_packet *p, struct gw_job *job);
void gw_job_free(struct gw_job *job);

const char *gw_error(const struct gw_conn *c);
const char *gw_type_name(uint32_t type);

/* Encode/decode, exposed for unit tests. */
size_t gw_encode(char *buf, size_t cap, uint32_t magic_req, uint32_t type,
           const char *const *args, const size_t *lens, int nargs);
/* Parse one packet from buf (len bytes). Returns bytes used, 0 if more data
 * is needed, -1 if malformed. */
long   gw_decode(const char *buf, size_t len, struct gw_packet *p, size_t max_body);

#endif
