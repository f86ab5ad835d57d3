/*
 * Unit tests for agent/daemon/wloop.c without a network: the heartbeat's
 * rule (wloop_beat_next), a close (the role hears why, the generation
 * moves, the retry waits the backoff), and the io lock an executor's
 * reply takes (wloop_hold / wloop_release).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "config.h"
#include "daemon/wloop.h"

#define HB 10   /* [gearman] heartbeat, seconds */

static void
test_beat_quiet_peer_gets_one_echo(void **state)
{
	struct wloop_beat b = { 0 };

	(void)state;
	assert_int_equal(wloop_beat_next(&b, HB * 1000 - 1, HB, 1000), WLOOP_BEAT_NONE);
	assert_false(b.out);
	/* Quiet for heartbeat seconds: one ECHO_REQ, answer due heartbeat seconds later. */
	assert_int_equal(wloop_beat_next(&b, HB * 1000, HB, 5000), WLOOP_BEAT_SEND);
	assert_true(b.out);
	assert_int_equal(b.answer_by, 5000 + HB * 1000);
	/* Still quiet, answer not due: nothing more is sent. */
	assert_int_equal(wloop_beat_next(&b, HB * 1000 + 500, HB, 5500), WLOOP_BEAT_NONE);
	assert_int_equal(wloop_beat_next(&b, 2 * HB * 1000 - 1, HB, 5000 + HB * 1000 - 1), WLOOP_BEAT_NONE);
}

static void
test_beat_unanswered_is_dead(void **state)
{
	struct wloop_beat b = { 0 };

	(void)state;
	assert_int_equal(wloop_beat_next(&b, HB * 1000, HB, 0), WLOOP_BEAT_SEND);
	assert_int_equal(wloop_beat_next(&b, 2 * HB * 1000, HB, HB * 1000), WLOOP_BEAT_DEAD);
	assert_int_equal(wloop_beat_next(&b, 3 * HB * 1000, HB, 2 * HB * 1000), WLOOP_BEAT_DEAD);
}

static void
test_beat_answer_resets(void **state)
{
	struct wloop_beat b = { 0 };

	(void)state;
	assert_int_equal(wloop_beat_next(&b, HB * 1000, HB, 0), WLOOP_BEAT_SEND);
	/* A byte came (the ECHO_RES, or anything): quiet again from zero. */
	assert_int_equal(wloop_beat_next(&b, 3, HB, 2000), WLOOP_BEAT_NONE);
	assert_false(b.out);
	/* The next silence gets a fresh ECHO with a fresh deadline. */
	assert_int_equal(wloop_beat_next(&b, HB * 1000, HB, 50000), WLOOP_BEAT_SEND);
	assert_int_equal(b.answer_by, 50000 + HB * 1000);
}

static void
test_beat_longer_heartbeat_after_reload(void **state)
{
	struct wloop_beat b = { 0 };

	(void)state;
	assert_int_equal(wloop_beat_next(&b, HB * 1000, HB, 0), WLOOP_BEAT_SEND);
	/* SIGHUP raised the heartbeat past the quiet so far: nothing is out any more. */
	assert_int_equal(wloop_beat_next(&b, HB * 1000 + 1, 2 * HB, HB * 1000), WLOOP_BEAT_NONE);
	assert_false(b.out);
}

struct heard {
	int    closed;
	size_t slot;
	bool   had_conn;
	char   why[64];
};

static struct wloop *the_loop;

static void
on_closed(void *arg, size_t i, const char *why)
{
	struct heard *h = arg;

	h->closed++;
	h->slot = i;
	h->had_conn = the_loop->slot[i].c != NULL;
	snprintf(h->why, sizeof(h->why), "%s", why);
}

static void
loop_setup(struct wloop *w, struct config *cfg, size_t nservers)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nservers = nservers;
	cfg->heartbeat = HB;
	wloop_init(w, cfg, "test-worker");
	the_loop = w;
}

static void
test_close_without_connection(void **state)
{
	static const struct wloop_ops ops = { .closed = on_closed };
	struct heard h = { 0 };
	struct config cfg;
	struct wloop w;
	long long before;

	(void)state;
	loop_setup(&w, &cfg, 2);
	assert_int_equal(w.n, 2);
	/* Every slot starts down and due for a connect. */
	assert_null(w.slot[1].c);
	assert_true(clk_passed(w.slot[1].retry_at));
	w.ops = &ops;
	w.arg = &h;
	w.slot[1].beat.out = true;
	before = clk_now_ms();
	wloop_close(&w, 1, "cannot connect");
	assert_int_equal(h.closed, 1);
	assert_int_equal(h.slot, 1);
	assert_false(h.had_conn);
	assert_string_equal(h.why, "cannot connect");
	assert_int_equal(w.slot[1].conn_gen, 1);
	assert_false(w.slot[1].beat.out);
	/* The first retry waits the backoff's first delay: in [min/2, min]. */
	assert_true(w.slot[1].retry_at >= before + BACKOFF_GEARMAN_MIN_MS / 2);
	assert_true(w.slot[1].retry_at <= clk_now_ms() + BACKOFF_GEARMAN_MIN_MS);
	assert_int_equal(w.slot[0].conn_gen, 0);
	wloop_fini(&w);
}

static bool
woken(struct wloop *w)
{
	struct pollfd pfd = { w->wakefd, POLLIN, 0 };

	return poll(&pfd, 1, 0) == 1;
}

static void
test_hold_and_release(void **state)
{
	struct gw_conn *fake = (struct gw_conn *)&state;   /* never dereferenced by hold/release */
	struct config cfg;
	struct wloop w;

	(void)state;
	loop_setup(&w, &cfg, 1);
	/* Down: nothing to reply on, and the lock is not kept. */
	assert_null(wloop_hold(&w, 0, 0));
	assert_int_equal(pthread_mutex_trylock(&w.slot[0].io), 0);
	pthread_mutex_unlock(&w.slot[0].io);

	w.slot[0].c = fake;
	w.slot[0].conn_gen = 3;
	/* A job of an earlier connection: its reply must not go to this one. */
	assert_null(wloop_hold(&w, 0, 2));
	assert_int_equal(pthread_mutex_trylock(&w.slot[0].io), 0);
	pthread_mutex_unlock(&w.slot[0].io);

	/* Its own connection: held, locked until released. */
	assert_ptr_equal(wloop_hold(&w, 0, 3), fake);
	assert_int_not_equal(pthread_mutex_trylock(&w.slot[0].io), 0);
	wloop_release(&w, 0, false);
	assert_false(w.slot[0].broken);
	assert_false(woken(&w));

	/* A write failed: broken, the loop is woken to replace it, no more replies on it. */
	assert_non_null(wloop_hold(&w, 0, 3));
	wloop_release(&w, 0, true);
	assert_true(w.slot[0].broken);
	assert_true(woken(&w));
	assert_null(wloop_hold(&w, 0, 3));
	assert_int_equal(pthread_mutex_trylock(&w.slot[0].io), 0);
	pthread_mutex_unlock(&w.slot[0].io);
	w.slot[0].c = NULL;
	wloop_fini(&w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_beat_quiet_peer_gets_one_echo),
		cmocka_unit_test(test_beat_unanswered_is_dead),
		cmocka_unit_test(test_beat_answer_resets),
		cmocka_unit_test(test_beat_longer_heartbeat_after_reload),
		cmocka_unit_test(test_close_without_connection),
		cmocka_unit_test(test_hold_and_release),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
