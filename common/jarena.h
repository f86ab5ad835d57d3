/*
 * jarena: a bump arena for JSON values that live for one parse.
 *
 * A master's job list and a node's map are parsed one entry at a time
 * (jscan.h) into hundreds of thousands of small jansson values; making
 * and freeing each with malloc dominates the parse. With the arena, a
 * thread's jansson allocations between jarena_begin() and jarena_stop()
 * are bumped out of mmap'd chunks, and jarena_drop() drops them all at
 * once (no json_decref walk). Up to 8 MB of pages stay for the next
 * parse; jarena_free() unmaps them.
 *
 * jansson's allocation hooks are process-wide and take no context, so
 * the arena is per thread: a thread that has not begun one allocates
 * with xmalloc (fatal on out of memory, xalloc.h), and free() of anything
 * not in the calling thread's arena is free(). A tree made in the arena
 * must not leave the thread or outlive jarena_drop().
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
