/*
 * wloop: a Gearman worker's connections, one per gearmand, and the loop of
 * the thread that owns them. Both roles run on it: the node agent's
 * dispatcher (node/dispatch.c) and the coordinator's manager.
 *
 * Each round:
 *   1. ops->round: go on? (the role's stop condition)
 *   2. for each server (its io lock held): replace a connection a reply
 *      broke; heartbeat; connect once its backoff allows (ops->connected);
 *      then ops->tend while it is up (register, probe...);
 *   3. ops->step, with no lock held (grab...): the poll's timeout;
 *   4. poll every connection and the wake-up eventfd;
 *   5. for each server that has something (its io lock held): read every
 *      packet there is and hand each to ops->packet.
 * After the last round every connection is closed, without ops->closed.
 *
 * A connection that fails, or that the role gives up (wloop_close), is
 * closed: ops->closed hears why first, with the connection still there to
 * name, and forgets what the role kept about it. The next connect waits a
 * jittered backoff (BACKOFF_GEARMAN_MIN_MS..MAX_MS, backoff.h). A failed
 * connect goes the same way, with no connection (slot->c NULL).
 *
 * Heartbeat: after [gearman] heartbeat seconds without a byte from
 * gearmand, an ECHO_REQ carrying WLOOP_HEARTBEAT_TAG; with nothing at all
 * back within as many seconds again the path is taken for dead (a firewall
 * or a NAT forgot it: keepalive alone takes a minute, the kernel default
 * two hours) and the connection is closed and made again. Closing
 * re-queues the jobs it held, which is right: for gearmand they are as
 * good as gone with the peer. The heartbeat's ECHO_RES never reaches the
 * role.
 *
 * Locking: a slot's io mutex guards its c, conn_gen and broken. The loop
 * holds it while it tends, reads or closes the slot, and so around every
 * hook that names a slot; other threads (the node's executors, replying
 * on the connection their job came from) take it with wloop_hold and give
 * it back with wloop_release. Everything else in a slot is the loop
 * thread's alone. A role that takes its own locks in hooks takes them
 * after the io lock, never before.
 */
#ifndef JGA_WLOOP_H
#define JGA_WLOOP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "backoff.h"
#include "config.h"

struct gw_conn;
struct gw_packet;

/* gearmand should accept within this; a longer wait is a dead path, retried with backoff. */
#define WLOOP_CONNECT_MS  5000
/* The poll's longest sleep (when ops->step is NULL, or its cap): a stop, a heartbeat or a retry is due within it. */
#define WLOOP_IDLE_MS     1000
/* The heartbeat ECHO_REQ's payload: its answer is told apart from other ECHO_RES (a role's own, empty). */
#define WLOOP_HEARTBEAT_TAG "jga-heartbeat"

/* A heartbeat's state, and what to do about it now (wloop_beat_next). */
struct wloop_beat {
	bool      out;          /* an ECHO_REQ awaits its answer */
	long long answer_by;    /* its answer's deadline (clk_now_ms) */
};
enum wloop_beat_do {
	WLOOP_BEAT_NONE,        /* the peer spoke lately, or the answer is not due yet */
	WLOOP_BEAT_SEND,        /* send the ECHO_REQ now */
	WLOOP_BEAT_DEAD,        /* no answer in time: close the connection */
};

struct wloop_slot {
	pthread_mutex_t   io;           /* c, conn_gen, broken */
	struct gw_conn   *c;            /* NULL while down */
	unsigned          conn_gen;     /* bumped on each close: a reply never goes to a newer connection */
	bool              broken;       /* a reply's write failed: closed at the next round */
	/*
	 * This outage has been logged: for ops->closed, which sets it when
	 * it says so. Cleared once a connection is up and ops->connected
	 * took it.
	 */
	bool              down_said;
	struct backoff    bo;
	long long         retry_at;     /* down: connect from then on (clk_now_ms; 0: now) */
	struct wloop_beat beat;
};

/*
 * The role. arg is wloop_run's; i the server's index in [gearman]
 * servers. Hooks that take i run with slot i's io lock held, and may
 * call wloop_close(w, i, ...).
 */
struct wloop_ops {
	/* A round begins: false ends the loop. */
	bool (*round)(void *arg);
	/* Slot i's connection is up: send what the role sends first. -1: close it (gw_error). */
	int  (*connected)(void *arg, size_t i);
	/* Slot i's connection is about to close (or never came: c NULL), for why. Optional. */
	void (*closed)(void *arg, size_t i, const char *why);
	/* Slot i is up: bring it in line with the role (register, probe). Optional. */
	void (*tend)(void *arg, size_t i);
	/* After tending, no lock held: the poll's timeout in ms. Optional (WLOOP_IDLE_MS). */
	int  (*step)(void *arg);
	/* A packet came on slot i (valid until the hook returns). */
	void (*packet)(void *arg, size_t i, struct gw_packet *p);
};

struct wloop {
	const struct config    *cfg;       /* servers, heartbeat (read atomically: SIGHUP sets it) */
	char                    id[300];   /* SET_CLIENT_ID on each connection */
	int                     wakefd;    /* eventfd: wloop_wake */
	size_t                  n;         /* cfg->nservers */
	struct wloop_slot       slot[CONFIG_MAX_SERVERS];
	const struct wloop_ops *ops;       /* wloop_run's */
	void                   *arg;
};

/* Slots for cfg's servers, all down and due for a connect; id is the worker's client id. */
void wloop_init(struct wloop *w, const struct config *cfg, const char *id);
/* Run rounds until ops->round says stop, then close every connection. */
void wloop_run(struct wloop *w, const struct wloop_ops *ops, void *arg);
/* Make the loop's poll return now (any thread). */
void wloop_wake(struct wloop *w);
/* Close slot i's connection (its io lock held), for why: see above. */
void wloop_close(struct wloop *w, size_t i, const char *why);
/*
 * Slot i's connection, locked for one reply, if it is still connection
 * conn_gen and not broken; else NULL (not locked). wloop_release unlocks
 * it; failed: the write broke it, the loop replaces it.
 */
struct gw_conn *wloop_hold(struct wloop *w, size_t i, unsigned conn_gen);
void            wloop_release(struct wloop *w, size_t i, bool failed);
/* After wloop_run has returned. */
void wloop_fini(struct wloop *w);

/*
 * The heartbeat's rule, for a connection quiet for quiet_ms, at now_ms:
 * below heartbeat_s of quiet nothing is out; past it an ECHO_REQ goes out
 * once, and the connection is dead if still nothing came heartbeat_s
 * later. Updates b. Pure: exposed for unit tests.
 */
enum wloop_beat_do wloop_beat_next(struct wloop_beat *b, long quiet_ms, int heartbeat_s,
                       long long now_ms);

#endif
