/*
 * node: the node agent's shared state and its one owner. node.c keeps the
 * state (the map, claims, GRABs out, the executor table) and decides
 * capacity through capacity.c's pure functions; dispatch.c (the node's
 * Gearman connections) and executor.c (one thread per Jenkins executor)
 * change it only through the functions below.
 *
 * One worker connection per gearmand for the whole node, not one per
 * executor: registration costs gearmand one CAN_DO per function per
 * connection, so 8 executors would cost it 8 times as much. A
 * connection holds up to one job per executor.
 * When the node may take a job and where it goes: capacity.h.
 *
 * Locks, outermost first; a thread holding one never takes one above it:
 *   1. each connection's io lock (a wloop slot's, daemon/wloop.h): the
 *      dispatcher holds it while it tends, reads or grabs on that
 *      connection, an executor for one reply (dispatch_hold ..
 *      dispatch_release). Never two at once.
 *   2. n->lock: the fields of struct node below it and every executor's
 *      job, reservation and claim (executor.c); executor threads wait on
 *      their condition variable with it.
 *   3. leaves, under which nothing else is taken: the state journal's own
 *      lock (state.c; state_* is never called with n->lock held), each
 *      gearmand's admin connection lock (dispatch.c), and common/'s
 *      (metrics, log).
 * node_* functions take n->lock themselves (node_wake_dispatcher takes
 * none), so they may be called with an io lock held but not with n->lock;
 * a function whose name ends in _locked must be called with n->lock held,
 * and takes no lock.
 */
#ifndef JGA_NODE_H
#define JGA_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"
#include "sign.h"
#include "strvec.h"

#define NODE_MAX_EXECUTORS 256

struct nm_function {
	char *name;          /* build:job[:label] */
	char *job;           /* full name */
	char *pin;           /* parameter that pins the build */
};

/* The agent's slice of the project map, as the coordinator sent it. */
struct nodemap {
	char   *version;
	char   *url;          /* the master it describes (defaults_master_url) */
	char   *nonce;        /* the request's, echoed */
	long long issued_ms;  /* when the coordinator answered, Unix ms */
	bool    unchanged;    /* "the map you hold is current": only the above are set */
	int     executors;
	bool    online;
	char  **labels;
	size_t  nlabels;
	struct nm_function *fns;   /* sorted by name */
	size_t  nfns;
};

/*
 * What the mapper trusts. gearmand is open to anyone, so an answer to
 * project_map is taken only if it is signed by the coordinator's key (an
 * agent holds the public key only: a compromised node cannot sign), names
 * this agent's master, and answers this very request: each request
 * carries a fresh random nonce that the signed answer must echo, so no
 * earlier answer can be replayed; and an answer issued more than
 * NODEMAP_SKEW_MS before the last one taken is refused too (two
 * coordinators for HA may answer in turn: their clocks may differ that
 * much, no more).
 */
#define NODEMAP_SKEW_MS 10000

struct nodemap_trust {
	struct sign_key *key;
	char            *url;        /* this agent's [jenkins] url, as maps give it */
	char            *node;
	char             nonce[SIGN_NONCE_LEN + 1];  /* of the request out; "" if none */
	long long        last_issued_ms;  /* of the last answer taken; 0 before the first */
};

struct executor;
struct dispatch;
struct state;

/* Everything below lock is node.c's: other files go through its functions. */
struct node {
	struct config   *cfg;
	struct dispatch *dispatch;    /* the Gearman connections (dispatch.c) */
	struct state    *state;       /* the builds it started (state.c); has its own lock */
	pthread_mutex_t  lock;        /* everything below */

	struct nodemap_trust trust;   /* the mapper's own: what a map answer must be */
	struct nodemap  *map;         /* NULL until the coordinator answered */
	unsigned         fn_gen;      /* bumped when the offered functions change */

	int              starting;    /* claims: jobs taken, build not started, item not blocked */
	int              grabs_out;   /* GRAB_JOBs out, each with an executor reserved */
	bool             jobs_wait;   /* gearmand says a job waits that the node has no room for */
	bool             room_hint;   /* a job of ours ended: there may be room now */
	bool             quieting;    /* the master is quieting down, as last seen */
	bool             quiet_stale; /* ask again before the next grab */
	long long        quiet_seen;  /* clk_now_ms() when quieting was last asked; 0: never */
	bool             single_use;  /* an OFFLINE_NODE_WHEN_COMPLETE build runs */
	bool             local_offline; /* we took the node offline */
	long long        recheck_at;  /* no capacity: when to look at Jenkins again (clk_now_ms) */
	const char      *capacity_note; /* why not grabbing, as last logged ("" if grabbing) */

	struct executor *ex[NODE_MAX_EXECUTORS];  /* changed by the mapper (node.c) only */
	int              nex;         /* slots used */
};

/* ---- nodemap.c ---- */

/*
 * Read the text of a coordinator's answer for node (the signed text, once
 * verified). NULL with err if it is not JSON, not node's slice, or has an
 * entry no coordinator makes (a function not of its job, an empty pin).
 * An "unchanged" answer gives a map with only version, url, nonce and
 * issued_ms.
 */
struct nodemap *nodemap_parse(const char *text, size_t len, const char *node, char *err, size_t errlen);
void            nodemap_free(struct nodemap *m);

/* -1 with err (naming the key) if the public key cannot be read: the agent does not start. */
int   nodemap_trust_open(struct nodemap_trust *t, const char *key_file, const char *url,
          const char *node, char *err, size_t errlen);
void  nodemap_trust_close(struct nodemap_trust *t);
/* The next request's argument, with a fresh nonce (malloc'd). */
char *nodemap_request(struct nodemap_trust *t, const char *version);
/*
 * The answer to the last request, verified and checked, or NULL: with
 * *unchanged if it says the map held is current, else with err saying
 * why it is refused (unsigned, bad signature, another master, replayed,
 * a bad entry). The last good map stays with the caller either way.
 */
struct nodemap *nodemap_accept(struct nodemap_trust *t, const char *answer, size_t len,
                    bool *unchanged, char *err, size_t errlen);

/* ---- node.c ---- */

/* Copy the function names the node offers now (empty when it must not); strv_free it. */
char **node_offered_functions(struct node *n, size_t *count, unsigned *fn_gen);
/* The generation of the offered functions, without copying them. */
unsigned node_functions_gen(struct node *n);
/* Look a function up in the current map; copies job and pin. */
bool   node_lookup_function(struct node *n, const char *fn, char **job, char **pin);
/* Copy of the node's labels as a JSON array text. */
char  *node_labels_json(struct node *n);
int    node_desired_executors(struct node *n);
/* Is executor slot index within the map's count (else its thread leaves once idle)? */
bool   node_wants_executor_locked(const struct node *n, int index);

/*
 * Capacity (the rule: capacity.h). node_grab_reserve: may the dispatcher
 * send one GRAB_JOB now? It may look at Jenkins (with the dispatcher's
 * client); on yes it reserves a free executor and returns its index.
 * node_grab_release: the GRAB came back empty (NO_JOB) or its connection
 * was lost.
 */
struct jk_client;
#define NODE_NO_ROOM  (-1)  /* the master said no room (or did not answer) */
#define NODE_LATER    (-2)  /* it said so lately: ask again at node_recheck_at_ms */
#define NODE_BUSY     (-3)  /* no executor thread free, or not offering: wait for a wake-up */
int  node_grab_reserve(struct node *n, struct jk_client *jk);
void node_grab_release(struct node *n, int ex);
/* When to look at Jenkins again (a job waits, the node was full), clk_now_ms based. */
long long node_recheck_at_ms(struct node *n);
/* Does a job wait that the node has no room for (the dispatcher says)? */
void node_set_jobs_wait(struct node *n, bool on);
bool node_jobs_wait(struct node *n);
/* Has a job of ours ended since the last call (the dispatcher's cue to ask again)? */
bool node_take_room_hint(struct node *n);

/*
 * A JOB_ASSIGN taken on connection (server, conn_gen), whose GRAB had
 * executor reserved_ex reserved (-1: none). GIVEN: an executor has the
 * job (moved out of *job; it is a claim now). REFUSE_NO_EXECUTOR: no GRAB
 * of ours asked for it and no thread is free: the caller WORK_FAILs it.
 * HAND_BACK: stopping, and the connection holds no other job: the caller
 * closes it so that gearmand re-queues the job. *job is the caller's to
 * free but for GIVEN.
 */
struct gw_job;
enum node_assign { NODE_JOB_GIVEN, NODE_JOB_REFUSE_NO_EXECUTOR, NODE_JOB_HAND_BACK };
enum node_assign node_assign_job(struct node *n, int reserved_ex, struct gw_job *job, size_t server,
                     unsigned conn_gen);

/*
 * A job's claim on an executor, kept by its executor: STARTING from
 * JOB_ASSIGN until the build starts; BLOCKED while its queue item is a
 * BlockedItem (it would not take a free executor: let other jobs have it).
 */
enum node_claim { CLAIM_NONE, CLAIM_STARTING, CLAIM_BLOCKED };
void node_claim(struct node *n, enum node_claim *c, enum node_claim to);
/* The job has ended: its claim, if any, too. */
void node_job_done(struct node *n, enum node_claim *c);
void node_set_single_use(struct node *n, bool on);
void node_set_local_offline(struct node *n);

/*
 * Does an executor hold a job taken on connection (server, conn_gen) — of
 * function fn, or of any function when fn is NULL? server (size_t)-1: on
 * any connection.
 */
bool node_holds(struct node *n, size_t server, unsigned conn_gen, const char *fn);
/* Does an executor hold the job with this Gearman unique id? */
bool node_holds_unique(struct node *n, const char *unique);

/* Wake the dispatcher and every executor (map change, shutdown). */
void node_wake_all(struct node *n);
/*
 * Wake the dispatcher only (capacity or job change). Executors wait for a
 * job of their own; a broadcast for every change woke each idle one, some
 * ten context switches per build.
 */
void node_wake_dispatcher(struct node *n);


/* ---- executor.c ---- */

struct executor *executor_start(struct node *n, int index);
/* True once the thread has returned. */
bool             executor_finished(struct executor *e);
void             executor_join(struct executor *e);
/* The rest is node.c's, under n->lock. Is it free to take a job? */
bool             executor_free_locked(const struct executor *e);
/* Reserve it for a GRAB out, or release it (wakes it). */
void             executor_reserve_locked(struct executor *e, bool on);
bool             executor_reserved_locked(const struct executor *e);
/* Jenkins runs these builds (URLs); if the one it follows is not among
 * them, it ended: make the thread look at it now. */
void             executor_poll_if_gone_locked(struct executor *e, char *const *running, size_t n);
/*
 * Does e follow a Pipeline run that no executor of the node shows (running:
 * their current builds' URLs; a node() placeholder shows its run's)? Such
 * a run is waiting for an executor, or between node() blocks, and will
 * take one: the node counts it busy from trigger to end.
 */
bool             executor_pipeline_waiting_locked(const struct executor *e, char *const *running,
                     size_t n);
/* Hand it a job (moved out of *job), taken on connection (server, conn_gen). */
void             executor_give_locked(struct executor *e, struct gw_job *job, size_t server,
                     unsigned conn_gen);
/* Make it look at the map and the shutdown flag again. */
void             executor_wake_locked(struct executor *e);
/* The function of the job it holds on connection (server, conn_gen; server (size_t)-1: any), if any. */
const char      *executor_held_function_locked(const struct executor *e, size_t server, unsigned conn_gen);
/* Does it hold a job with this unique id? */
bool             executor_held_unique_locked(const struct executor *e, const char *unique);


/* ---- dispatch.c ---- */

struct dispatch *dispatch_start(struct node *n);
void             dispatch_wake(struct dispatch *d);
/* Waits for the executors' jobs to end first (their replies use the connections). */
void             dispatch_join(struct dispatch *d);
/*
 * The connection a job was taken on, locked for one reply; NULL (not
 * locked) if it was lost since. dispatch_release unlocks it; failed: the
 * write broke it, the dispatcher reconnects.
 */
struct gw_conn  *dispatch_hold(struct dispatch *d, size_t server, unsigned conn_gen);
void             dispatch_release(struct dispatch *d, size_t server, bool failed);
/* An admin command's reply on server's kept admin connection, malloc'd; NULL on error. */
char            *dispatch_admin_ask(struct dispatch *d, size_t server, const char *cmd, int timeout_ms);
/* gadmin_job_retries on server's kept admin connection (shared by the executors). */
int              dispatch_job_retries(struct dispatch *d, size_t server, const char *handle,
                     int timeout_ms);


#endif
