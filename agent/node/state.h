/*
 * state: the builds this agent started, one record per Gearman unique id,
 * kept in memory and in a journal, [node] state_dir/builds.jsonl. A record
 * is written before the trigger, again once the build is queued and once
 * it has started, and dropped when its result has been delivered. When a
 * job comes back with a unique that has a record (gearmand re-queued it
 * after the agent died or lost its connection) the agent re-attaches to
 * that build instead of starting a second one.
 *
 * The journal is append-only: one JSON line per change, one write(2) each
 * (a file per record, replaced by rename, would cost a create, a rename
 * and an unlink per change, a large share of the agent's work). It is
 * rewritten (temporary file, rename) with only the live records when the
 * agent starts and whenever most of its lines are stale. A line that
 * cannot be written whole (disk full) is cut back off and the journal is
 * rewritten at the next change; until one succeeds, changes are appended.
 *
 * state_dir must be ours alone (state_check_dir), and every file in it is
 * opened through its fd without following links (safefile.h): a journal
 * or a record that is a link, or not a regular file owned by us, is not
 * read, and the rewrite's temporary is created O_EXCL and renamed.
 *
 * No fsync of appended lines: a record must outlive the agent process
 * (the page cache does that), not the machine (the rewrite is fsync'd
 * before its rename, so that a crash cannot leave an empty journal). When the node's host goes down, the job comes
 * back re-queued, and a re-queued job is looked up on the master by its
 * GEARMAN_UNIQUE whether or not it has a record; an fsync would put a
 * disk flush before every trigger for nothing.
 *
 * state_dir belongs to one agent: state_open takes an flock on it.
 * Records of the file-per-build format (build-*.json) are taken over.
 * The functions may be called from any thread (a struct state has its
 * own lock).
 */
#ifndef JGA_STATE_H
#define JGA_STATE_H

#include <stddef.h>
#include <time.h>

struct build_rec {
	char   unique[128];
	char   function[600];
	char   job[1024];   /* the job's full name */
	long   queue_id;    /* its queue item, 0 until known */
	int    number;      /* 0 until the build has started */
	time_t time;        /* when it was first recorded, wall clock, seconds */
};

struct state;

/*
 * Lock dir (created if missing), read its journal and rewrite it with the
 * live records. NULL with err if dir cannot be used or another agent has it.
 */
struct state *state_open(const char *dir, char *err, size_t errlen);
void state_close(struct state *st);
/*
 * Is dir fit for records: owned by us or root, not writable by group or
 * others? state_open refuses one that is not; a reload checks again. -1
 * with err naming dir and its mode (errno ENOENT when it does not exist).
 */
int  state_check_dir(const char *dir, char *err, size_t errlen);
/*
 * Create the directories of dir below root that are missing, and root if
 * its parent exists, mode 0750 (the default state_dir, root/MASTER/NODE).
 * Below root no symbolic link is followed: one there is an error.
 */
int  state_make_dir(const char *root, const char *dir, char *err, size_t errlen);
/*
 * Record r (replacing the record of its unique). -1 if it could not be
 * written: then it is not recorded at all, in memory either.
 */
int  state_save(struct state *st, const struct build_rec *r);
/* 0 and *r if unique has a record, -1 (and *r untouched) if not. */
int  state_load(struct state *st, const char *unique, struct build_rec *r);
/* Forget unique's record, if it has one. */
void state_remove(struct state *st, const char *unique);
/* A copy of all records, *n of them; the caller frees it. */
struct build_rec *state_list(struct state *st, size_t *n);

#endif
