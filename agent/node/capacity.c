/* capacity: see capacity.h. */
#include "capacity.h"

#include <stddef.h>

static struct capacity_decision
verdict(enum capacity_verdict v)
{
	struct capacity_decision d = { v, -1, CAP_REASON_NONE, 0, 0, 0 };

	return d;
}

/* Before asking Jenkins: is there anything to ask it for? */
static struct capacity_decision
decide_unasked(const struct capacity_view *v)
{
	if (!v->offering || v->single_use)
		return verdict(CAP_BUSY);
	if (!v->recheck_due)
		return verdict(CAP_LATER);
	if (v->free_executor < 0)
		return verdict(CAP_NUDGE);
	return verdict(CAP_ASK);
}

/*
 * With Jenkins' answer. The node's own state is gathered again after the
 * look (it may have changed meanwhile): a change there only means waiting
 * for the wake-up that reported it, not a recheck delay.
 */
static struct capacity_decision
decide_answered(const struct capacity_view *v)
{
	const struct capacity_answer *a = v->jenkins;
	struct capacity_decision d = verdict(CAP_NO_ROOM);

	d.pipelines_waiting = v->pipelines_waiting;
	if (a->ok)
		d.free_execs = a->idle_executors - v->starting - v->grabs_out - v->pipelines_waiting;
	if (!a->ok)
		d.reason = CAP_REASON_UNREACHABLE;
	else if (a->offline || a->temp_offline)
		d.reason = CAP_REASON_OFFLINE;
	else if (v->quieting)
		d.reason = CAP_REASON_QUIETING;
	else if (d.free_execs <= 0)
		d.reason = CAP_REASON_NO_IDLE;
	else if (!v->offering || v->single_use || v->free_executor < 0)
		d.verdict = CAP_BUSY;
	else {
		d.verdict = CAP_GRAB;
		d.executor = v->free_executor;
	}
	if (d.verdict == CAP_NO_ROOM)
		d.recheck_ms = d.reason == CAP_REASON_UNREACHABLE ? UNREACHABLE_RECHECK_MS :
		    d.reason == CAP_REASON_QUIETING ? QUIET_RECHECK_MS : CAPACITY_RECHECK_MS;
	return d;
}

struct capacity_decision
capacity_decide(const struct capacity_view *v)
{
	return v->jenkins ? decide_answered(v) : decide_unasked(v);
}

/*
 * Only when the node itself has room: the quiet-down costs a request per
 * look, and with no idle executor the answer would change nothing.
 */
bool
capacity_ask_quieting(const struct capacity_answer *a)
{
	return a->ok && !a->offline && !a->temp_offline && a->idle_executors > 0;
}

bool
capacity_quiet_fresh(long long asked_ms, bool stale, long long now_ms)
{
	return asked_ms != 0 && !stale && now_ms < asked_ms + QUIET_CACHE_MS;
}

long
capacity_nudge_recheck_ms(bool answered)
{
	return answered ? CAPACITY_RECHECK_MS : UNREACHABLE_RECHECK_MS;
}

const char *
capacity_reason_text(enum capacity_reason r)
{
	switch (r) {
	case CAP_REASON_UNREACHABLE:	return "master unreachable";
	case CAP_REASON_OFFLINE:	return "node offline in Jenkins";
	case CAP_REASON_QUIETING:	return "the master is quieting down";
	case CAP_REASON_NO_IDLE:	return "no idle executor";
	case CAP_REASON_NONE:		break;
	}
	return "";
}

struct assign_decision
assign_decide(const struct assign_view *v)
{
	struct assign_decision d = { ASSIGN_GIVEN, v->reserved >= 0 ? v->reserved : v->free_executor };

	if (d.executor < 0)
		d.verdict = ASSIGN_REFUSE_NO_EXECUTOR;
	else if (v->stopping && !v->conn_holds_other) {
		d.verdict = ASSIGN_HAND_BACK;
		d.executor = -1;
	}
	return d;
}
