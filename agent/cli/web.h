/*
 * web: jenkins-gearman web, the pool's status page. A poller thread reads
 * gearmand (admin "status" and "workers") and every coordinator found by
 * its project_map:$host function ({} and {"status": true}) every interval,
 * and keeps one JSON document (/api/status) in a cache; the HTTP server
 * (libmicrohttpd, cli_web.c) serves the page and that document from the
 * cache only, so a page load costs nothing upstream.
 *
 * Everything read comes from an unauthenticated bus: counts and string
 * sizes are capped (WEB_MAX_*), strings are made valid UTF-8, and each
 * call has one deadline; a poll cycle never runs past its budget.
 */
#ifndef JGA_WEB_H
#define JGA_WEB_H

#include <stddef.h>

#include "cli.h"

#define WEB_MAX_STR       256     /* a name, label, reason or error, in bytes */
#define WEB_MAX_URL       1024
#define WEB_MAX_MASTERS   64
#define WEB_MAX_NODES     2000    /* per master */
#define WEB_MAX_FUNCTIONS 5000
#define WEB_MAX_LIST      2000    /* unoffered entries, builds, offers per node */
#define WEB_MAX_KEYS      16      /* --map-public-key files */

struct sign_key;
struct web_poll;

struct web_poll_conf {
	struct cli      *cli;          /* servers and TLS */
	int              interval_ms;
	int              timeout_ms;   /* one call's deadline */
	struct sign_key *keys[WEB_MAX_KEYS];
	size_t           nkeys;        /* 0: answers are shown as unverified */
};

/* Start the poller thread (its first cycle runs at once). */
struct web_poll *web_poll_start(const struct web_poll_conf *conf);
/* The latest /api/status document, malloc'd ("{...}"). */
char            *web_poll_json(struct web_poll *p, size_t *len);
/* Stop the thread (waits for a call in progress: at most its deadline) and free. */
void             web_poll_stop(struct web_poll *p);

/* The embedded page, its script and style (web_page.c). */
struct web_file {
	const char *path, *type, *body;
};
extern const struct web_file web_files[];

#endif
