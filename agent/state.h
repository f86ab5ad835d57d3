/*
 * state: the builds this agent started, one record per Gearman unique id,
 * in [node] state_dir. A record is written (atomically: temporary file,
 * rename) before the trigger, again once the build is queued and once it
 * has started, and removed when its result has been delivered. When a job
 * comes back with a unique that has a record — gearmand re-queued it after
 * the agent died or lost its connection — the agent re-attaches to that
 * build instead of starting a second one.
 *
 * No fsync: a record must outlive the agent process (the page cache does
 * that), not the machine. When the node's host goes down, the job comes
 * back re-queued, and a re-queued job is looked up on the master by its
 * GEARMAN_UNIQUE whether or not it has a record. An fsync before every
 * trigger cost 1 ms on tmpfs-backed /tmp and more on real disks.
 */
#ifndef JGA_STATE_H
#define JGA_STATE_H

#include <stddef.h>
#include <time.h>

struct build_rec {
	char   unique[128];
	char   function[600];
	char   job[1024];
	long   queue_id;
	int    number;      /* 0 until the build has started */
	time_t time;
};

/* Make sure dir exists and is writable. -1 with err otherwise. */
int  state_open(const char *dir, char *err, size_t errlen);
int  state_save(const char *dir, const struct build_rec *r);
/* 0 and *r if unique has a record, -1 if not. */
int  state_load(const char *dir, const char *unique, struct build_rec *r);
void state_remove(const char *dir, const char *unique);
/* All records (malloc'd array), for start-up. */
struct build_rec *state_list(const char *dir, size_t *n);

#endif
