/*
 * jarena: a bump arena for JSON values that live for one parse.
 *
 * jk_parse_jobs parses a master's job list one entry at a time: with
 * malloc, making and freeing the hundreds of thousands of small jansson
 * values of 10,000 jobs was a third of a coordinator refresh's CPU (the
 * node agent reads its map the same way, nodemap.c; see jscan.h). With
 * the arena, a thread's jansson allocations between jarena_begin() and
 * jarena_stop() are bumped out of mmap'd chunks, and jarena_drop() drops
 * them all at once (no json_decref walk). Up to 8 MB of pages stay for
 * the next parse; jarena_free() unmaps them.
 *
 * jansson's allocation hooks are process-wide and take no context, so
 * the arena is per thread: a thread that has not begun one allocates
 * with malloc as before, and free() of anything not in the calling
 * thread's arena is free(). A tree made in the arena must not leave the
 * thread or outlive jarena_drop().
 */
#ifndef JGA_JARENA_H
#define JGA_JARENA_H

#include <stdbool.h>

/* Install the hooks. Once, in main, before any thread or jansson call. */
void jarena_install(void);

/*
 * Start an arena for this thread. False if the hooks are not installed
 * (unit tests, tools): allocations stay with malloc and the caller frees
 * its tree with json_decref as usual.
 */
bool jarena_begin(void);
/* New allocations go to malloc again; values already in the arena stay. */
void jarena_stop(void);
/* Drop every value allocated in this thread's arena; up to 8 MB of pages are kept. */
void jarena_drop(void);
/* Drop them and unmap the pages (a thread that parses no more). */
void jarena_free(void);

#endif
