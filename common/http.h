/*
 * http: the transport under the Jenkins client; jenkins.c is its user.
 *
 * One reused curl easy handle, so the connection is kept alive between
 * requests. Authentication is pre-emptive Basic auth. With an API token
 * no crumb is needed; with a password, or anonymously (CSRF protection is
 * always on), a crumb is fetched (with the session cookie it is bound to)
 * before the first POST, and once more when a POST is answered 403 "No
 * valid crumb". Redirects are never followed; a response larger than
 * HTTP_MAX_BODY is refused; while a cancel test says so, requests are
 * given up.
 *
 * Every failure leaves in err a message a person can act on: "METHOD url:
 * what happened (what to check)". The token and password are handed to
 * curl once (which copies them) and kept and shown nowhere.
 */
#ifndef JGA_HTTP_H
#define JGA_HTTP_H

#include "buf.h"
#include "jenkins.h"

#include <curl/curl.h>

#include <stdbool.h>

/*
 * A larger response is refused (JK_EPROTO): it bounds what a broken or
 * hostile server can make us allocate. The largest real answer, a
 * master's job list, is a few MB.
 */
#define HTTP_MAX_BODY		(64u * 1024 * 1024)

/* Header values are cut to these sizes; the ones kept are short. */
#define HTTP_VERSIONLEN		64	/* X-Jenkins: "2.440.3" */
#define HTTP_SESSIONLEN		64	/* X-Jenkins-Session: a short hash */
#define HTTP_PERMLEN		256	/* X-Required-Permission: a class name and a permission */
#define HTTP_CTYPELEN		128	/* Content-Type */
#define HTTP_LOCATIONLEN	2048	/* Location: a queue item's URL */
#define HTTP_ERRLEN		1024

struct http {
	CURL   *curl;
	char   *base;		/* configured URL, ends with '/' */
	char   *shown;		/* base without any user:secret@, for messages */
	char   *user;		/* for messages; NULL: anonymous */
	bool    crumbs;		/* not API-token auth: POSTs need a crumb */
	bool    crumb_done;	/* crumb fetched, or CSRF protection found off */
	char   *crumb_hdr;	/* "Jenkins-Crumb: <crumb>", NULL if none */
	bool  (*cancel)(void);	/* http_set_cancel */

	/* The last response, for the caller to read. */
	long    status;		/* 0 if none */
	struct buf body;
	bool    too_large;
	char    version[HTTP_VERSIONLEN];
	char    session[HTTP_SESSIONLEN];	/* kept across responses */
	char    perm[HTTP_PERMLEN];
	char    ctype[HTTP_CTYPELEN];
	char    location[HTTP_LOCATIONLEN];

	char    err[HTTP_ERRLEN];	/* "" after success */
	char    curl_err[CURL_ERROR_SIZE];
};

/*
 * Set h up for opts (h zeroed by the caller). -1 if opts has no URL or
 * curl refuses an option; http_cleanup(h) either way.
 */
int         http_init(struct http *h, const struct jk_opts *opts);
void        http_cleanup(struct http *h);
/* jk_client_set_cancel: a request in progress is given up within about a second. */
void        http_set_cancel(struct http *h, bool (*cancel)(void));

/* The statuses that are an answer, 0-terminated: 200 to a GET; 200, 204, 302 to a form POST. */
extern const long http_ok_get[];
extern const long http_ok_post[];

/*
 * One request to base + path (already encoded). body NULL is a GET,
 * anything else a form POST (an empty body still sends Content-Length: 0),
 * with the crumb dance above. JK_OK only for a status in ok; what names the
 * resource in a 404's message ("no job 'a'"), NULL for "no such page".
 */
enum jk_err http_request(struct http *h, const char *method, const char *path,
                const char *body, const char *what, const long *ok);
/* The last response's body, "" if none. */
const char *http_body(const struct http *h);
/* Free the last body now rather than at the next request. */
void        http_body_free(struct http *h);
/* err = "METHOD url: " + message; the URL is shown without its query. */
void        http_fail(struct http *h, const char *method, const char *path, const char *fmt, ...)
                __attribute__((format(printf, 4, 5)));
/* A parser's result on the last response: e, with perr as http_fail's message unless JK_OK. */
enum jk_err http_parsed(struct http *h, const char *method, const char *path, enum jk_err e,
                const char *perr);
/* An HTTP status as a jk_err: 2xx and 3xx are JK_OK. */
enum jk_err http_status_err(long status);

#endif
