/*
 * daemon: what both roles' main threads share: clients built from the
 * configuration, the metrics file, and the wait for signals.
 *
 * The main thread of either role only waits: the work is done by its
 * threads. SIGHUP re-reads the configuration (reload.h); SIGTERM, SIGINT
 * and SIGQUIT ask it to stop, and the role decides how (shutdown.h).
 */
#ifndef JGA_DAEMON_H
#define JGA_DAEMON_H

struct config;
struct jk_client;

/* The main thread wakes at least this often: a signal is waited for a second at a time. */
#define DAEMON_TICK_MS          1000
/* The metrics file is written every this many wake-ups: about every 5 s. */
#define DAEMON_METRICS_TICKS    5
/* While a stopping daemon waits for its work to end, it looks this often. */
#define DAEMON_DRAIN_POLL_MS    200

/* A Jenkins client with the [jenkins] settings; exits if it cannot be made. */
struct jk_client *daemon_jenkins_client(const struct config *cfg);
/* Write [metrics] textfile, if configured; a failure is logged. */
void              daemon_write_metrics(const struct config *cfg);
/*
 * Wait up to timeout_ms for a signal (shutdown_init first). SIGHUP
 * re-reads the configuration into cfg and counts as none. Returns the stop
 * signal that came, or 0.
 */
int               daemon_wait_signal(struct config *cfg, long timeout_ms);
/*
 * The main thread's life: wait for signals, re-read the configuration on
 * SIGHUP, write the metrics file on the first wake-up and every
 * DAEMON_METRICS_TICKS after (a SIGHUP is a wake-up too), until a stop
 * signal comes; returns it.
 */
int               daemon_wait_stop(struct config *cfg);

#endif
