/*
 * backoff: exponential backoff with jitter, for reconnecting to a peer.
 * Each delay is random in [cur/2, cur], cur doubling up to max_ms.
 *
 * For a connection, backoff_up when it is up: the delays start again from
 * min_ms only if it then stayed up BACKOFF_STABLE_MS. A peer that accepts
 * and drops at once (a job it cannot hand over, a proxy with nothing
 * behind it) is retried ever more slowly, not every half second.
 */
#ifndef JGA_BACKOFF_H
#define JGA_BACKOFF_H

#include <stdbool.h>

#define BACKOFF_STABLE_MS 10000

/* The delays the daemons use for a gearmand or a coordinator that does not answer. */
#define BACKOFF_GEARMAN_MIN_MS  500
#define BACKOFF_GEARMAN_MAX_MS  30000

struct backoff {
	long      min_ms, max_ms, cur_ms;
	unsigned  seed;
	bool      up;          /* backoff_up called, no backoff_next since */
	long long up_since;    /* clk_now_ms() */
};
void backoff_init(struct backoff *b, long min_ms, long max_ms);
/* The next delay, in ms. */
long backoff_next(struct backoff *b);
void backoff_up(struct backoff *b);
/* After a success that proves the path works (a whole call answered), not a mere connect. */
void backoff_reset(struct backoff *b);

#endif
