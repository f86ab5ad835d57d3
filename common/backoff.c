/* backoff: see backoff.h. */
#include "backoff.h"

#include "clock.h"

#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

void
backoff_init(struct backoff *b, long min_ms, long max_ms)
{
	b->min_ms = min_ms;
	b->max_ms = max_ms;
	b->cur_ms = min_ms;
	b->up = false;
	/* Different per process and per object, so peers do not retry in step. */
	b->seed = (unsigned)clk_now_ms() ^ (unsigned)clk_wall_ms() ^ (unsigned)getpid() ^ (unsigned)(uintptr_t)b;
}

long
backoff_next(struct backoff *b)
{
	long cur, d;

	if (b->up) {
		b->up = false;
		if (clk_now_ms() - b->up_since >= BACKOFF_STABLE_MS)
			b->cur_ms = b->min_ms;
	}
	cur = b->cur_ms;
	d = cur / 2 + (long)(rand_r(&b->seed) % (unsigned long)(cur / 2 + 1));
	b->cur_ms = cur * 2 > b->max_ms ? b->max_ms : cur * 2;
	return d;
}

void
backoff_up(struct backoff *b)
{
	b->up_since = clk_now_ms();
	b->up = true;
}

void
backoff_reset(struct backoff *b)
{
	b->cur_ms = b->min_ms;
	b->up = false;
}
