/*
 * capacity: the node's two decisions, as pure functions of plain inputs
 * (no locks, no network, no clock), so that they can be read in one place
 * and tested alone. node.c gathers the inputs under n->lock (asking
 * Jenkins when told to), decides here, and applies the verdict.
 *
 * May the dispatcher send one more GRAB_JOB? Only when an executor thread
 * is free (it is reserved for that GRAB, so its JOB_ASSIGN always has one)
 * and a fresh look at Jenkins shows the node online, the master not
 * quieting down, and more idle executors than jobs of ours that may take
 * one: claims (a job taken whose build has not started yet and whose
 * queue item is not blocked: Jenkins does not count it busy until then)
 * plus GRABs out, plus Pipeline runs of ours that no executor shows (a
 * Pipeline run takes an executor only inside node() { }, through a
 * placeholder task: it counts from trigger to end). So a busy node never
 * takes a job out of the Gearman queue, and builds Jenkins started itself
 * count as busy.
 *
 * Jenkins is asked only while a job waits for this node and only once
 * per CAPACITY_RECHECK_MS while it is full: a native build's executor is
 * reused within about a second of its end.
 *
 * Where does a JOB_ASSIGN go? To the executor reserved for its GRAB. One
 * that no GRAB of ours asked for goes to any free executor thread within
 * the map's count, else it is refused. While stopping, a job on a
 * connection that holds no other job is handed back to gearmand (the
 * connection is closed) rather than started.
 */
#ifndef JGA_CAPACITY_H
#define JGA_CAPACITY_H

#include <stdbool.h>

/*
 * A job waits and the node is full: look at Jenkins again after this. It
 * bounds both the delay before a freed executor is reused (about half of
 * it on average) and the requests a waiting node makes: under one a
 * second, with the looks our own events add (a build of ours ended).
 */
#define CAPACITY_RECHECK_MS     1200
#define UNREACHABLE_RECHECK_MS  2000    /* the master did not answer: do not press it */
#define QUIET_RECHECK_MS        5000    /* quieting down: it lasts, look less often */
/*
 * How long a quiet-down answer holds. Asking costs a request per grab; a
 * quiet-down begun meanwhile leaves at most this long of items blocked in
 * Jenkins ([node] start_timeout refuses them). A claim that turns blocked
 * makes the next grab ask again (node_claim marks the answer stale).
 */
#define QUIET_CACHE_MS          10000

/* What Jenkins said about the node (jk_node_get). */
struct capacity_answer {
	bool ok;                /* it answered */
	bool offline;           /* offline for any reason */
	bool temp_offline;      /* marked temporarily offline */
	int  idle_executors;
};

struct capacity_view {
	bool offering;          /* a map, online, not taken offline by us, not stopping */
	bool single_use;        /* an OFFLINE_NODE_WHEN_COMPLETE build runs */
	bool recheck_due;       /* the recheck time has passed */
	int  free_executor;     /* a free executor thread within the map's count, or -1 */
	int  starting;          /* claims */
	int  grabs_out;         /* GRAB_JOBs out, each with an executor reserved */
	/* With an answer: Pipeline runs of ours no executor shows (waiting for
	 * their node() placeholder's executor, or between node() blocks): each
	 * will take one, though Jenkins shows it idle. */
	int  pipelines_waiting;
	/* NULL: Jenkins not asked yet. Else its answer, and the quiet-down as known. */
	const struct capacity_answer *jenkins;
	bool quieting;
};

enum capacity_verdict {
	CAP_GRAB,       /* send GRAB_JOB, executor `executor` reserved for it */
	CAP_NO_ROOM,    /* Jenkins says no room (or did not answer): look again in recheck_ms */
	CAP_LATER,      /* it said so lately: wait for the recheck time */
	CAP_BUSY,       /* not offering, single use, or no thread free after all: wait for a wake-up */
	CAP_NUDGE,      /* every executor thread has a job: look at the node's running builds */
	CAP_ASK,        /* ask Jenkins (capacity_ask_quieting says whether the master too), decide again */
};

enum capacity_reason {
	CAP_REASON_NONE,
	CAP_REASON_UNREACHABLE,
	CAP_REASON_OFFLINE,
	CAP_REASON_QUIETING,
	CAP_REASON_NO_IDLE,
};

struct capacity_decision {
	enum capacity_verdict verdict;
	int                   executor;      /* CAP_GRAB: the one to reserve; else -1 */
	enum capacity_reason  reason;        /* CAP_NO_ROOM: why */
	long                  recheck_ms;    /* CAP_NO_ROOM: look at Jenkins again after this */
	int                   free_execs;    /* with an answer: idle executors less claims, GRABs out
	                                        and Pipeline runs waiting */
	int                   pipelines_waiting;  /* the view's, for the log */
};

struct capacity_decision capacity_decide(const struct capacity_view *v);
/* Is the master's quiet-down worth asking about, given the node's answer? */
bool        capacity_ask_quieting(const struct capacity_answer *a);
/* Does a quiet-down answer given at asked_ms (0: never) still hold at now_ms? */
bool        capacity_quiet_fresh(long long asked_ms, bool stale, long long now_ms);
/* CAP_NUDGE done: when to look again, whether the node look was answered or not. */
long        capacity_nudge_recheck_ms(bool answered);
/* Why the node takes no jobs, for the log ("" for CAP_REASON_NONE). */
const char *capacity_reason_text(enum capacity_reason r);

struct assign_view {
	int  reserved;          /* the executor still reserved for the connection's GRAB, or -1 */
	int  free_executor;     /* a free executor thread within the map's count, or -1 */
	bool stopping;
	bool conn_holds_other;  /* the connection holds another job */
};

enum assign_verdict {
	ASSIGN_GIVEN,               /* executor `executor` runs it */
	ASSIGN_REFUSE_NO_EXECUTOR,  /* unasked for and no thread free: WORK_FAIL it */
	ASSIGN_HAND_BACK,           /* stopping: close the connection, gearmand re-queues it */
};

struct assign_decision {
	enum assign_verdict verdict;
	int                 executor;   /* ASSIGN_GIVEN: the one; else -1 */
};

struct assign_decision assign_decide(const struct assign_view *v);

#endif
