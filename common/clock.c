/* clock: see clock.h. */
#include "clock.h"

static long long
read_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long
clk_now_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}

long long
clk_wall_ms(void)
{
	return read_ms(CLOCK_REALTIME);
}

bool
clk_passed(long long deadline_ms)
{
	return clk_now_ms() >= deadline_ms;
}

long long
clk_left_ms(long long deadline_ms)
{
	long long left = deadline_ms - clk_now_ms();

	return left > 0 ? left : 0;
}

struct timespec
clk_timespec_in(clockid_t id, long long ms)
{
	struct timespec t;

	clock_gettime(id, &t);
	t.tv_sec += (time_t)(ms / 1000);
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}
