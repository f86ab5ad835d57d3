/*
 * node: the node agent's shared state, used by node.c (map polling,
 * capacity) and executor.c (one Gearman worker per executor).
 *
 * Capacity rule: an executor sends GRAB_JOB only while it is the node's
 * single "grabber", and only right after a fresh look at Jenkins shows the
 * node online with an idle executor that no other executor of this agent
 * has claimed. A claimed executor holds a job whose build has not started
 * yet (Jenkins does not count it busy until then). So a busy node never
 * takes a job out of the Gearman queue, and builds Jenkins started itself
 * count as busy.
 */
#ifndef JGA_NODE_H
#define JGA_NODE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "config.h"

#define NODE_MAX_EXECUTORS 256

struct nm_function {
	char *name;          /* build:job[:label] */
	char *job;           /* full name */
	char *pin;           /* parameter that pins the build */
};

/* The agent's slice of the project map, as the coordinator sent it. */
struct nodemap {
	char   *version;
	int     executors;
	bool    online;
	char  **labels;
	size_t  nlabels;
	struct nm_function *fns;   /* sorted by name */
	size_t  nfns;
};

struct executor;

struct node {
	struct config   *cfg;
	pthread_mutex_t  lock;        /* everything below; executors are woken by node_wake_all */

	struct nodemap  *map;         /* NULL until the coordinator answered */
	unsigned         gen;         /* bumped when the offered functions change */

	int              starting;    /* claimed: job taken, build not started yet */
	int              grabber;     /* executor index allowed to grab, -1: none */
	bool             single_use;  /* an OFFLINE_NODE_WHEN_COMPLETE build runs */
	bool             local_offline; /* we took the node offline */
	struct timespec  recheck_at;  /* no capacity: when to look at Jenkins again */
	const char      *capacity_note; /* why not grabbing, as last logged ("" if grabbing) */

	struct executor *ex[NODE_MAX_EXECUTORS];
	int              nex;         /* slots used */
};

/* ---- node.c ---- */

/* *t = now + ms, and whether t has passed, on the monotonic clock. */
void   timespec_in(struct timespec *t, long ms);
bool   timespec_passed(const struct timespec *t);

/* Copy the function names the node offers now (empty when it must not). */
char **node_offered_functions(struct node *n, size_t *count, unsigned *gen);
void   node_strv_free(char **v, size_t n);
/* Look a function up in the current map; copies job and pin. */
bool   node_lookup_function(struct node *n, const char *fn, char **job, char **pin);
/* Copy of the node's labels as a JSON array text. */
char  *node_labels_json(struct node *n);
int    node_desired_executors(struct node *n);

/*
 * Grabber protocol. node_grab_permit asks whether executor i may send
 * GRAB_JOB now; it may look at Jenkins (with the executor's own client).
 * node_grab_claim: i got a job (it stops being the grabber; starting++).
 * node_build_started / node_build_done: the claim ends.
 */
struct jk_client;
bool node_grab_permit(struct node *n, int i, struct jk_client *jk);
void node_grab_release(struct node *n, int i);
void node_grab_claim(struct node *n, int i);
void node_build_started(struct node *n, int i);
void node_job_done(struct node *n, int i, bool claimed_still);
void node_set_single_use(struct node *n, bool on);
void node_set_local_offline(struct node *n);

/* Wake every executor (map change, capacity change, shutdown). */
void node_wake_all(struct node *n);


/* ---- executor.c ---- */

struct executor *executor_start(struct node *n, int index);
/* True once the thread has returned. */
bool             executor_finished(struct executor *e);
void             executor_wake(struct executor *e);
void             executor_join(struct executor *e);


#endif
