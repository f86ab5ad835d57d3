/*
 * advert: the builds this agent started whose jobs it no longer holds (it
 * was restarted after a SIGKILL, or lost its gearmand connection while
 * following them), made known to the other agents of its master through
 * gearmand itself.
 *
 * gearmand re-queues such a job at the end of its queue; another agent may
 * take it long after, when the build is deeper in the job's history than a
 * lookup reads (jk_find_build: the newest 100 builds, never allBuilds). So
 * the agent with the record registers, on a connection of its own that
 * never grabs, the function "jga-build:<job hash>:<unique, hex>:n<number>"
 * (or ":q<queue id>"); a taker with no record finds it in gearmand's admin
 * "status" (registered, so with a worker) and re-attaches to that build. A
 * registration ends with its connection: with the agent, or once the
 * record is gone (its result delivered).
 */
#ifndef JGA_ADVERT_H
#define JGA_ADVERT_H

#include <stddef.h>

struct node;
struct advert;

struct advert *advert_start(struct node *n);
/* After shutdown_request(): ends the thread, closes its connections. */
void           advert_stop(struct advert *a);

/* The name without its last part ("...:"), into buf. */
void advert_prefix(const char *job, const char *unique, char *buf, size_t len);
/*
 * In an admin "status" reply: the build advertised for job and unique by
 * an agent still connected (workers > 0). 1 with *number or *queue_id, 0 if
 * none.
 */
int  advert_find(const char *status, const char *job, const char *unique, long *queue_id,
         int *number);

#endif
