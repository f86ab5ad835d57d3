/* capacity: when the node may GRAB a job, and where a JOB_ASSIGN goes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "node/capacity.h"

/* A node with room on its side: offering, recheck due, executor thread 2 free. */
static struct capacity_view
room(void)
{
	struct capacity_view v;

	memset(&v, 0, sizeof(v));
	v.offering = true;
	v.recheck_due = true;
	v.free_executor = 2;
	return v;
}

static struct capacity_answer
answer(int idle)
{
	struct capacity_answer a = { true, false, false, idle };

	return a;
}

/* Decide with Jenkins' answer a. */
static struct capacity_decision
answered(struct capacity_view v, const struct capacity_answer *a, bool quieting)
{
	v.jenkins = a;
	v.quieting = quieting;
	return capacity_decide(&v);
}

static void
assert_no_room(struct capacity_decision d, enum capacity_reason why, long recheck_ms)
{
	assert_int_equal(d.verdict, CAP_NO_ROOM);
	assert_int_equal(d.reason, why);
	assert_int_equal(d.recheck_ms, recheck_ms);
	assert_int_equal(d.executor, -1);
}

static void
test_grab_with_room(void **state)
{
	struct capacity_view v = room();
	struct capacity_answer a = answer(3);
	struct capacity_decision d;

	(void)state;
	d = capacity_decide(&v);
	assert_int_equal(d.verdict, CAP_ASK);
	assert_true(capacity_ask_quieting(&a));
	v.starting = 1;
	v.grabs_out = 1;
	d = answered(v, &a, false);
	assert_int_equal(d.verdict, CAP_GRAB);
	assert_int_equal(d.executor, 2);
	assert_int_equal(d.free_execs, 1);
	assert_int_equal(d.reason, CAP_REASON_NONE);
	assert_string_equal(capacity_reason_text(d.reason), "");
}

/* Idle executors in Jenkins must outnumber our claims plus GRABs out. */
static void
test_no_idle_executor(void **state)
{
	struct capacity_view v = room();
	struct capacity_answer a = answer(2);
	struct capacity_decision d;

	(void)state;
	v.starting = 1;
	v.grabs_out = 1;
	d = answered(v, &a, false);
	assert_no_room(d, CAP_REASON_NO_IDLE, CAPACITY_RECHECK_MS);
	assert_int_equal(d.free_execs, 0);
	v.grabs_out = 0;
	v.starting = 2;
	assert_no_room(answered(v, &a, false), CAP_REASON_NO_IDLE, CAPACITY_RECHECK_MS);
	v.starting = 0;
	a.idle_executors = 0;
	assert_no_room(answered(v, &a, false), CAP_REASON_NO_IDLE, CAPACITY_RECHECK_MS);
	assert_false(capacity_ask_quieting(&a));	/* no idle executor: no question for the master */
	v.starting = 1;
	a.idle_executors = 2;
	d = answered(v, &a, false);
	assert_int_equal(d.verdict, CAP_GRAB);
	assert_int_equal(d.free_execs, 1);
	assert_string_equal(capacity_reason_text(CAP_REASON_NO_IDLE), "no idle executor");
}

static void
test_node_offline(void **state)
{
	struct capacity_view v = room();
	struct capacity_answer a = answer(4);

	(void)state;
	a.offline = true;
	assert_no_room(answered(v, &a, false), CAP_REASON_OFFLINE, CAPACITY_RECHECK_MS);
	assert_false(capacity_ask_quieting(&a));
	a.offline = false;
	a.temp_offline = true;
	assert_no_room(answered(v, &a, false), CAP_REASON_OFFLINE, CAPACITY_RECHECK_MS);
	assert_false(capacity_ask_quieting(&a));
	assert_string_equal(capacity_reason_text(CAP_REASON_OFFLINE), "node offline in Jenkins");
}

static void
test_master_unreachable(void **state)
{
	struct capacity_view v = room();
	struct capacity_answer a = answer(4);

	(void)state;
	a.ok = false;
	assert_no_room(answered(v, &a, false), CAP_REASON_UNREACHABLE, UNREACHABLE_RECHECK_MS);
	assert_false(capacity_ask_quieting(&a));
	assert_string_equal(capacity_reason_text(CAP_REASON_UNREACHABLE), "master unreachable");
	assert_int_not_equal(UNREACHABLE_RECHECK_MS, CAPACITY_RECHECK_MS);
}

/* Quieting down wins over a full node: it lasts, so the longer delay. */
static void
test_quieting(void **state)
{
	struct capacity_view v = room();
	struct capacity_answer a = answer(1);

	(void)state;
	assert_no_room(answered(v, &a, true), CAP_REASON_QUIETING, QUIET_RECHECK_MS);
	v.starting = 1;
	assert_no_room(answered(v, &a, true), CAP_REASON_QUIETING, QUIET_RECHECK_MS);
	assert_string_equal(capacity_reason_text(CAP_REASON_QUIETING), "the master is quieting down");
	assert_int_not_equal(QUIET_RECHECK_MS, CAPACITY_RECHECK_MS);
}

static void
test_quiet_cache(void **state)
{
	(void)state;
	assert_false(capacity_quiet_fresh(0, false, 5000));              /* never asked */
	assert_true(capacity_quiet_fresh(1000, false, 1000));
	assert_true(capacity_quiet_fresh(1000, false, 1000 + QUIET_CACHE_MS - 1));
	assert_false(capacity_quiet_fresh(1000, false, 1000 + QUIET_CACHE_MS));
	assert_false(capacity_quiet_fresh(1000, true, 1001));            /* a claim turned blocked */
}

static void
test_not_offering_or_single_use(void **state)
{
	struct capacity_view v = room();
	struct capacity_answer a = answer(4);
	struct capacity_decision d;

	(void)state;
	v.offering = false;
	assert_int_equal(capacity_decide(&v).verdict, CAP_BUSY);
	v.recheck_due = false;
	v.free_executor = -1;
	assert_int_equal(capacity_decide(&v).verdict, CAP_BUSY);       /* before LATER and NUDGE */
	v = room();
	v.single_use = true;
	assert_int_equal(capacity_decide(&v).verdict, CAP_BUSY);
	/* Changed while Jenkins was asked: wait for the wake-up, no recheck delay. */
	d = answered(v, &a, false);
	assert_int_equal(d.verdict, CAP_BUSY);
	assert_int_equal(d.executor, -1);
	assert_int_equal(d.recheck_ms, 0);
	v = room();
	v.offering = false;
	assert_int_equal(answered(v, &a, false).verdict, CAP_BUSY);
	v = room();
	v.free_executor = -1;
	assert_int_equal(answered(v, &a, false).verdict, CAP_BUSY);
}

static void
test_all_threads_busy(void **state)
{
	struct capacity_view v = room();

	(void)state;
	v.free_executor = -1;
	assert_int_equal(capacity_decide(&v).verdict, CAP_NUDGE);
	assert_int_equal(capacity_nudge_recheck_ms(true), CAPACITY_RECHECK_MS);
	assert_int_equal(capacity_nudge_recheck_ms(false), UNREACHABLE_RECHECK_MS);
}

static void
test_recheck_not_due(void **state)
{
	struct capacity_view v = room();

	(void)state;
	v.recheck_due = false;
	assert_int_equal(capacity_decide(&v).verdict, CAP_LATER);
	v.free_executor = -1;
	assert_int_equal(capacity_decide(&v).verdict, CAP_LATER);      /* before NUDGE */
}

static struct assign_view
assign(int reserved, int free_executor, bool stopping, bool holds_other)
{
	struct assign_view v = { reserved, free_executor, stopping, holds_other };

	return v;
}

static void
test_assign_reserved(void **state)
{
	struct assign_view v = assign(3, 0, false, false);
	struct assign_decision d = assign_decide(&v);

	(void)state;
	assert_int_equal(d.verdict, ASSIGN_GIVEN);
	assert_int_equal(d.executor, 3);                                /* not the free one */
	v = assign(3, -1, false, true);
	d = assign_decide(&v);
	assert_int_equal(d.verdict, ASSIGN_GIVEN);
	assert_int_equal(d.executor, 3);
}

static void
test_assign_unasked(void **state)
{
	struct assign_view v = assign(-1, 1, false, false);
	struct assign_decision d = assign_decide(&v);

	(void)state;
	assert_int_equal(d.verdict, ASSIGN_GIVEN);
	assert_int_equal(d.executor, 1);
	v = assign(-1, -1, false, true);
	d = assign_decide(&v);
	assert_int_equal(d.verdict, ASSIGN_REFUSE_NO_EXECUTOR);
	assert_int_equal(d.executor, -1);
	v = assign(-1, -1, true, false);                                /* stopping, but no thread: refused */
	assert_int_equal(assign_decide(&v).verdict, ASSIGN_REFUSE_NO_EXECUTOR);
}

static void
test_assign_stopping(void **state)
{
	struct assign_view v = assign(2, -1, true, false);
	struct assign_decision d = assign_decide(&v);

	(void)state;
	assert_int_equal(d.verdict, ASSIGN_HAND_BACK);
	assert_int_equal(d.executor, -1);
	v = assign(-1, 0, true, false);
	assert_int_equal(assign_decide(&v).verdict, ASSIGN_HAND_BACK);
	/* Closing would hand back the other job too: run this one. */
	v = assign(2, -1, true, true);
	d = assign_decide(&v);
	assert_int_equal(d.verdict, ASSIGN_GIVEN);
	assert_int_equal(d.executor, 2);
}

/*
 * A Pipeline run of ours not on any executor (its node() placeholder waits,
 * or it is between node() blocks) will take one though Jenkins shows it
 * idle: it counts like a claim (issue 17).
 */
static void
test_pipeline_waiting_counts(void **state)
{
	struct capacity_view v = room();
	struct capacity_answer a = answer(1);
	struct capacity_decision d;

	(void)state;
	v.pipelines_waiting = 1;
	d = answered(v, &a, false);
	assert_no_room(d, CAP_REASON_NO_IDLE, CAPACITY_RECHECK_MS);
	assert_int_equal(d.free_execs, 0);
	assert_int_equal(d.pipelines_waiting, 1);
	a = answer(2);
	d = answered(v, &a, false);
	assert_int_equal(d.verdict, CAP_GRAB);
	assert_int_equal(d.free_execs, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grab_with_room),
		cmocka_unit_test(test_pipeline_waiting_counts),
		cmocka_unit_test(test_no_idle_executor),
		cmocka_unit_test(test_node_offline),
		cmocka_unit_test(test_master_unreachable),
		cmocka_unit_test(test_quieting),
		cmocka_unit_test(test_quiet_cache),
		cmocka_unit_test(test_not_offering_or_single_use),
		cmocka_unit_test(test_all_threads_busy),
		cmocka_unit_test(test_recheck_not_due),
		cmocka_unit_test(test_assign_reserved),
		cmocka_unit_test(test_assign_unasked),
		cmocka_unit_test(test_assign_stopping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
