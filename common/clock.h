/*
 * clock: the project's one notion of time.
 *
 * Intervals and deadlines are milliseconds on the monotonic clock, held
 * in a long long (a deadline is clk_now_ms() + delay): a wall-clock step
 * (NTP, a VM resumed) never fires or stalls a timer. Wall time is used
 * only for what is compared with another machine's clock (a build's
 * timestamp, a record's age). A struct timespec appears only at the
 * boundary of an API that takes one (pthread_cond_timedwait).
 */
#ifndef JGA_CLOCK_H
#define JGA_CLOCK_H

#include <stdbool.h>
#include <time.h>

/* Milliseconds on the monotonic clock. */
long long clk_now_ms(void);
/* Milliseconds since the epoch. */
long long clk_wall_ms(void);
/* Has the monotonic deadline passed? (0 has: "no deadline set, due now".) */
bool      clk_passed(long long deadline_ms);
/* Milliseconds left until deadline_ms, 0 once it has passed. */
long long clk_left_ms(long long deadline_ms);
/* ms from now on clock id (CLOCK_MONOTONIC, CLOCK_REALTIME), as a timespec for timed waits. */
struct timespec clk_timespec_in(clockid_t id, long long ms);

#endif
