/*
 * jenkins: see jenkins.h.
 *
 * The file reads top to bottom as: a growable buffer, percent-encoding and
 * URL paths, a small XML scanner for config.xml, the pure JSON parsers, then
 * the HTTP layer (one curl easy handle, request(), crumbs) and finally the
 * operations, each a few lines on top of request() and a parser.
 *
 * Nothing here keeps the token or password: they are handed to curl once
 * (which copies them) and never formatted into a message.
 */
#include "jenkins.h"
#include "buf.h"
#include "errmsg.h"
#include "jarena.h"
#include "jkmodel.h"
#include "jkpath.h"
#include "xalloc.h"
#include "xmlscan.h"
#include "jscan.h"

#include <curl/curl.h>
#include <jansson.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef JGA_VERSION
#define JGA_VERSION "dev"
#endif

#define MAX_BODY	(64u * 1024 * 1024)	/* larger responses are refused */
#define KEEP_BODY	(1u * 1024 * 1024)	/* buffer kept between calls */
#define TREE_DEPTH	10			/* folder levels in one jobs request */
#define MAX_NESTING	100			/* folders / XML elements, sanity cap */
#define ERRLEN		1024

enum jk_err
jk_classify_status(long status)
{
	if (status >= 200 && status < 400)
		return JK_OK;
	switch (status) {
	case 400: return JK_EBADREQ;
	case 401: return JK_EAUTH;
	case 403: return JK_EFORBIDDEN;
	case 404: return JK_ENOTFOUND;
	case 409: return JK_ECONFLICT;
	}
	if (status >= 500 && status < 600)
		return JK_ESERVER;
	return JK_EPROTO;
}

const char *
jk_strerror(enum jk_err e)
{
	switch (e) {
	case JK_OK:		return "ok";
	case JK_ECONNECT:	return "cannot connect";
	case JK_ETIMEOUT:	return "timeout";
	case JK_EBADREQ:	return "bad request";
	case JK_EAUTH:		return "authentication failed";
	case JK_EFORBIDDEN:	return "forbidden";
	case JK_ENOTFOUND:	return "not found";
	case JK_ECONFLICT:	return "conflict";
	case JK_ESERVER:	return "server error";
	case JK_EPROTO:		return "protocol error";
	case JK_ENOMEM:		return "out of memory";
	case JK_ECANCELED:	return "cancelled";
	}
	return "unknown error";
}

static const char *
reason_phrase(long status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return "";
}

/* ---- the HTTP layer ---- */

struct jk_client {
	CURL   *curl;
	char   *base;		/* configured URL, ends with '/' */
	char   *shown;		/* base without any user:secret@, for messages */
	char   *user;		/* for messages; NULL: anonymous */
	bool    crumbs;		/* not API-token auth: POSTs need a crumb */
	bool    crumb_done;	/* crumb fetched, or CSRF protection found off */
	char   *crumb_hdr;	/* "Jenkins-Crumb: <crumb>", NULL if none */

	/* The last response. */
	long    status;
	struct buf body;
	bool    too_large;
	char    version[64];	/* X-Jenkins */
	char    session[64];	/* X-Jenkins-Session, kept across responses */
	char    perm[256];	/* X-Required-Permission */
	char    ctype[128];	/* Content-Type */
	char    location[2048];

	char    err[ERRLEN];
	char    curl_err[CURL_ERROR_SIZE];
	bool  (*cancel)(void);	/* jk_client_set_cancel */
};

static const char *
body_str(const struct jk_client *c)
{
	return c->body.s ? c->body.s : "";
}

static bool
body_has(const struct jk_client *c, const char *s)
{
	return c->body.s && memmem(c->body.s, c->body.len, s, strlen(s)) != NULL;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct jk_client *c = arg;
	size_t n = size * nmemb;

	/* Returning less than n makes curl abort with CURLE_WRITE_ERROR. */
	if (c->body.len + n > MAX_BODY) {
		c->too_large = true;
		return 0;
	}
	buf_add(&c->body, data, n);
	return n;
}

/* Copy a header value into a fixed field, truncating (values we keep are short). */
static void
hdr_copy(char *dst, size_t len, const char *v, size_t n)
{
	if (n >= len)
		n = len - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

static bool
hdr_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static size_t
on_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct jk_client *c = arg;
	size_t n = size * nmemb, len = n, nl, vl;
	const char *colon, *v;

	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (e.g. after "100 Continue"): forget the last one's headers. */
		c->version[0] = c->perm[0] = c->ctype[0] = c->location[0] = '\0';
		return n;
	}
	if (!(colon = memchr(data, ':', len)))
		return n;
	nl = (size_t)(colon - data);
	v = colon + 1;
	vl = len - nl - 1;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
		vl--;
	if (hdr_is(data, nl, "X-Jenkins"))
		hdr_copy(c->version, sizeof(c->version), v, vl);
	else if (hdr_is(data, nl, "X-Jenkins-Session"))
		hdr_copy(c->session, sizeof(c->session), v, vl);
	else if (hdr_is(data, nl, "X-Required-Permission"))
		hdr_copy(c->perm, sizeof(c->perm), v, vl);
	else if (hdr_is(data, nl, "Content-Type"))
		hdr_copy(c->ctype, sizeof(c->ctype), v, vl);
	else if (hdr_is(data, nl, "Location"))
		hdr_copy(c->location, sizeof(c->location), v, vl);
	return n;
}

/* "METHOD url: " + message into c->err. The URL is shown without its query. */
static void
fail(struct jk_client *c, const char *method, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
fail(struct jk_client *c, const char *method, const char *path, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	errmsg_set(c->err, sizeof(c->err), "%s %s%.*s: ", method, c->shown,
	    (int)strcspn(path, "?"), path);
	n = strlen(c->err);
	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - n, fmt, ap);
	va_end(ap);
}

/*
 * A short reason from an error body, for messages: the first line of a
 * text/plain body, or the <title> of a servlet container's "Error 400 ..."
 * page. Jenkins' own HTML error pages carry nothing short, so "" then.
 */
static void
body_reason(const struct jk_client *c, char *out, size_t len)
{
	const char *s = body_str(c), *t;
	size_t n = 0, i;

	out[0] = '\0';
	if (strncasecmp(c->ctype, "text/plain", 10) == 0) {
		s += strspn(s, " \t\r\n");
		n = strcspn(s, "\r\n");
	} else if ((t = strstr(s, "<title>")) && strncmp(t + 7, "Error ", 6) == 0) {
		s = t + 7;
		n = strcspn(s, "<\r\n");
	}
	if (n >= len)
		n = len - 1;
	/* Do not cut a UTF-8 sequence in two. */
	while (n > 0 && n < strlen(s) && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	for (i = 0; i < n; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? ' ' : s[i];
	out[n] = '\0';
}

static enum jk_err
transport_error(struct jk_client *c, const char *m, const char *p, CURLcode rc)
{
	const char *detail = c->curl_err[0] ? c->curl_err : curl_easy_strerror(rc);
	long oserr = 0;
	char ebuf[128];

	if (c->too_large) {
		fail(c, m, p, "response too large (over %u MiB)", MAX_BODY >> 20);
		return JK_EPROTO;
	}
	if (rc == CURLE_OUT_OF_MEMORY) {
		fail(c, m, p, "out of memory");
		return JK_ENOMEM;
	}
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		fail(c, m, p, "timeout: %s (see [jenkins] timeout and connect_timeout)", detail);
		return JK_ETIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		fail(c, m, p, "cannot connect: %s (check [jenkins] url)", detail);
		return JK_ECONNECT;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &oserr);
		if (oserr)
			fail(c, m, p, "cannot connect: %s", strerror_r((int)oserr, ebuf, sizeof(ebuf)));
		else
			fail(c, m, p, "cannot connect: %s", detail);
		return JK_ECONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CRL_BADFILE:
		fail(c, m, p, "TLS: %s (check [jenkins] ca_file and tls_verify)", detail);
		return JK_ECONNECT;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		fail(c, m, p, "connection dropped: %s", detail);
		return JK_ECONNECT;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		fail(c, m, p, "bad URL: %s (check [jenkins] url)", detail);
		return JK_EPROTO;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		fail(c, m, p, "not a valid HTTP answer: %s", detail);
		return JK_EPROTO;
	default:
		fail(c, m, p, "%s", detail);
		return JK_ECONNECT;
	}
}

/* Turn an unexpected status into a jk_err and a message saying what to check. */
static enum jk_err
status_error(struct jk_client *c, const char *m, const char *p, const char *what)
{
	long s = c->status;
	enum jk_err e = jk_classify_status(s);
	char st[64], why[256];
	const char *who = c->user ? c->user : "anonymous";

	errmsg_set(st, sizeof(st), *reason_phrase(s) ? "%ld %s" : "%ld%s", s, reason_phrase(s));
	body_reason(c, why, sizeof(why));
	switch (e) {
	case JK_EAUTH:
		fail(c, m, p, "%s: check [jenkins] user and %s", st,
		    c->crumbs ? "password" : "token");
		break;
	case JK_EFORBIDDEN:
		if (body_has(c, "No valid crumb"))
			fail(c, m, p, "%s: No valid crumb was included in the request%s", st,
			    c->crumbs ? "" : " (this Jenkins wants crumbs even with an API token)");
		else if (!c->user)
			fail(c, m, p, "%s: anonymous access refused%s%s%s: set [jenkins] user and token",
			    st, c->perm[0] ? " (X-Required-Permission: " : "", c->perm,
			    c->perm[0] ? ")" : "");
		else if (c->perm[0])
			fail(c, m, p, "%s: user '%s' lacks a permission (X-Required-Permission: %s)",
			    st, who, c->perm);
		else
			fail(c, m, p, "%s: user '%s' lacks a permission%s%s", st, who,
			    *why ? ": " : "", why);
		break;
	case JK_ENOTFOUND:
		fail(c, m, p, "%s: %s (or user '%s' cannot see it)", st,
		    what ? what : "no such page", who);
		break;
	case JK_OK:
		/* A 2xx/3xx this call does not expect, e.g. a redirect to another URL. */
		e = JK_EPROTO;
		if (c->location[0])
			fail(c, m, p, "unexpected status %s to %s (check [jenkins] url)", st, c->location);
		else
			fail(c, m, p, "unexpected status %s", st);
		break;
	case JK_ESERVER:
		fail(c, m, p, "%s: %s", st, *why ? why : "Jenkins server error");
		break;
	default:
		fail(c, m, p, "%s%s%s", st, *why ? ": " : "", why);
		break;
	}
	return e;
}

static enum jk_err
nomem(struct jk_client *c)
{
	errmsg_set(c->err, sizeof(c->err), "out of memory");
	return JK_ENOMEM;
}

/*
 * One HTTP exchange on the reused handle. body == NULL is a GET, anything
 * else a form POST (an empty body still sends Content-Length: 0). JK_OK
 * only for a status in ok (0-terminated); what names the resource for 404
 * messages.
 */
static enum jk_err
perform(struct jk_client *c, const char *method, const char *path, const char *body,
    const char *what, const long *ok)
{
	struct curl_slist *hdrs = NULL, *h;
	char *url;
	CURLcode rc;

	/* Forget the last response; do not keep a huge buffer around. */
	if (c->body.cap > KEEP_BODY) {
		free(c->body.s);
		memset(&c->body, 0, sizeof(c->body));
	}
	c->body.len = 0;
	if (c->body.s)
		c->body.s[0] = '\0';
	c->too_large = false;
	c->status = 0;
	c->err[0] = '\0';
	c->version[0] = c->perm[0] = c->ctype[0] = c->location[0] = '\0';
	c->curl_err[0] = '\0';

	if (asprintf(&url, "%s%s", c->base, path) < 0)
		return nomem(c);
	if (body) {
		/* No "Expect: 100-continue" round trip; the crumb if we have one. */
		if (!(h = curl_slist_append(hdrs, "Expect:")))
			goto oom;
		hdrs = h;
		if (c->crumb_hdr) {
			if (!(h = curl_slist_append(hdrs, c->crumb_hdr)))
				goto oom;
			hdrs = h;
		}
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		/*
		 * A POST goes on a fresh connection: on a reused one that closes
		 * without an answer, libcurl silently sends the request again — a
		 * second build when Jenkins had already queued the first.
		 */
		curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(c->curl);
	/* Leave the handle as a plain GET without our headers or body pointer. */
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, NULL);
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 0L);
	}
	curl_slist_free_all(hdrs);
	free(url);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		fail(c, method, path, "request abandoned: stopping");
		return JK_ECANCELED;
	}
	if (rc != CURLE_OK)
		return transport_error(c, method, path, rc);
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &c->status);
	/* A redirect to the login page is how some setups say "not allowed". */
	if (c->status >= 300 && c->status < 400 &&
	    (strstr(c->location, "/login") || strstr(c->location, "/securityRealm/"))) {
		fail(c, method, path, "%ld redirected to the login page: check [jenkins] user",
		    c->status);
		return JK_EFORBIDDEN;
	}
	for (; *ok; ok++)
		if (*ok == c->status)
			return JK_OK;
	return status_error(c, method, path, what);
oom:
	curl_slist_free_all(hdrs);
	free(url);
	return nomem(c);
}

static const long ok_get[] = { 200, 0 };
/* Jenkins answers form POSTs with a 302 back to the page; 2xx is fine too. */
static const long ok_post[] = { 200, 204, 302, 0 };

/*
 * Fetch a crumb (and with it the session cookie it is bound to). A 404
 * means CSRF protection is off, so no crumb is needed.
 */
static enum jk_err
fetch_crumb(struct jk_client *c)
{
	static const char path[] = "crumbIssuer/api/json";
	char perr[256], *crumb, *field;
	enum jk_err e;

	free(c->crumb_hdr);
	c->crumb_hdr = NULL;
	c->crumb_done = false;
	e = perform(c, "GET", path, NULL, "no crumb issuer", ok_get);
	if (e == JK_ENOTFOUND) {
		c->crumb_done = true;
		c->err[0] = '\0';
		return JK_OK;
	}
	if (e != JK_OK)
		return e;
	if ((e = jkmodel_parse_crumb(body_str(c), &field, &crumb, perr, sizeof(perr))) != JK_OK) {
		fail(c, "GET", path, "%s", perr);
		return e;
	}
	/* Both go into a header line: refuse anything that could break it. */
	if (!*field || field[strcspn(field, " \t\r\n:")] || crumb[strcspn(crumb, "\r\n")]) {
		fail(c, "GET", path, "crumb or crumbRequestField not usable in a header");
		e = JK_EPROTO;
	} else {
		c->crumb_hdr = xasprintf("%s: %s", field, crumb);
		c->crumb_done = true;
	}
	free(crumb);
	free(field);
	return e;
}

/*
 * perform() plus the crumb dance for password and anonymous clients: fetch
 * one before the first POST, and once more when a POST is refused for want
 * of a valid crumb (the session expired or Jenkins restarted).
 */
static enum jk_err
request(struct jk_client *c, const char *method, const char *path, const char *body,
    const char *what, const long *ok)
{
	enum jk_err e;

	c->err[0] = '\0';
	if (c->cancel && c->cancel()) {
		fail(c, method, path, "request not sent: stopping");
		return JK_ECANCELED;
	}
	if (body && c->crumbs && !c->crumb_done && (e = fetch_crumb(c)) != JK_OK)
		return e;
	e = perform(c, method, path, body, what, ok);
	if (e == JK_EFORBIDDEN && body && c->crumbs && body_has(c, "No valid crumb")) {
		if ((e = fetch_crumb(c)) != JK_OK)
			return e;
		e = perform(c, method, path, body, what, ok);
	}
	return e;
}

/* The result of a parser on the last response, with the request in the message. */
static enum jk_err
parsed(struct jk_client *c, const char *method, const char *path, enum jk_err e,
    const char *perr)
{
	if (e != JK_OK)
		fail(c, method, path, "%s", perr);
	return e;
}

/* ---- the client ---- */

static char *
strip_userinfo(const char *url)
{
	const char *s = strstr(url, "://"), *auth, *end, *at;
	char *out;

	if (!s)
		return strdup(url);
	auth = s + 3;
	end = auth + strcspn(auth, "/?#");
	if (!(at = memrchr(auth, '@', (size_t)(end - auth))))
		return strdup(url);
	if (asprintf(&out, "%.*s%s", (int)(auth - url), url, at + 1) < 0)
		return NULL;
	return out;
}

struct jk_client *
jk_client_new(const struct jk_opts *o)
{
	struct jk_client *c;
	size_t n;
	CURL *h;

	if (!o || !o->url || !*o->url || !(c = calloc(1, sizeof(*c))))
		return NULL;
	n = strlen(o->url);
	if (asprintf(&c->base, "%s%s", o->url, o->url[n - 1] == '/' ? "" : "/") < 0) {
		c->base = NULL;
		goto fail;
	}
	if (!(c->shown = strip_userinfo(c->base)))
		goto fail;
	if (o->user && !(c->user = strdup(o->user)))
		goto fail;
	/* Only API-token auth is exempt from CSRF crumbs (Jenkins >= 2.96);
	 * anonymous and password POSTs need one (CSRF is always on since 2.222). */
	c->crumbs = o->token == NULL;
	if (!(c->curl = h = curl_easy_init()))
		goto fail;

#define SET(opt, val) do { if (curl_easy_setopt(h, opt, val) != CURLE_OK) goto fail; } while (0)
	SET(CURLOPT_NOSIGNAL, 1L);		/* threads: no SIGALRM for timeouts */
	SET(CURLOPT_ERRORBUFFER, c->curl_err);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, c);
	SET(CURLOPT_FOLLOWLOCATION, 0L);	/* a 303 to the queue item is an answer */
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	SET(CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_PATH_AS_IS, 1L);		/* our paths are already encoded */
	SET(CURLOPT_SSL_VERIFYPEER, o->tls_verify ? 1L : 0L);
	SET(CURLOPT_SSL_VERIFYHOST, o->tls_verify ? 2L : 0L);
	if (o->ca_file)
		SET(CURLOPT_CAINFO, o->ca_file);
	if (o->connect_timeout_ms > 0)
		SET(CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	if (o->timeout_ms > 0)
		SET(CURLOPT_TIMEOUT_MS, o->timeout_ms);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_USERAGENT, "jenkins-gearman-agent/" JGA_VERSION);
	if (o->user) {
		/* Pre-emptive Basic: anonymous 403s never carry a challenge. */
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_USERNAME, o->user);
		SET(CURLOPT_PASSWORD, o->token ? o->token : o->password ? o->password : "");
	}
	if (c->crumbs)
		SET(CURLOPT_COOKIEFILE, "");	/* keep the session the crumb is bound to */
#undef SET
	return c;
fail:
	jk_client_free(c);
	return NULL;
}

void
jk_client_free(struct jk_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c->shown);
	free(c->user);
	free(c->crumb_hdr);
	free(c->body.s);
	free(c);
}

const char *
jk_client_error(const struct jk_client *c)
{
	return c->err;
}

/* libcurl calls this about once a second, and on every transfer of data. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct jk_client *c = arg;

	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	return c->cancel && c->cancel() ? 1 : 0;
}

void
jk_client_set_cancel(struct jk_client *c, bool (*cancel)(void))
{
	c->cancel = cancel;
	curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
	curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, cancel ? 0L : 1L);
}

const char *
jk_client_session(const struct jk_client *c)
{
	return c->session;
}

long
jk_client_status(const struct jk_client *c)
{
	return c->status;
}

/* ---- operations ---- */

/* "job/a/job/b/" + suffix into *path; JK_EBADREQ for a name with an empty segment. */
static enum jk_err
job_path(struct jk_client *c, const char *full_name, char **path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum jk_err
job_path(struct jk_client *c, const char *full_name, char **path, const char *fmt, ...)
{
	char *jp, *suffix;
	va_list ap;
	int r;

	c->err[0] = '\0';
	*path = NULL;
	if (!jkpath_job_valid(full_name)) {
		errmsg_set(c->err, sizeof(c->err), "bad job name '%s': empty path segment",
		    full_name ? full_name : "(null)");
		return JK_EBADREQ;
	}
	if (!(jp = jkpath_job(full_name)))
		return nomem(c);
	va_start(ap, fmt);
	r = vasprintf(&suffix, fmt, ap);
	va_end(ap);
	if (r < 0) {
		free(jp);
		return nomem(c);
	}
	r = asprintf(path, "%s%s", jp, suffix);
	free(jp);
	free(suffix);
	if (r < 0) {
		*path = NULL;
		return nomem(c);
	}
	return JK_OK;
}

static enum jk_err
node_path(struct jk_client *c, const char *name, char **path, const char *suffix)
{
	char *np;
	int r;

	c->err[0] = '\0';
	if (!(np = jkpath_node(name)))
		return nomem(c);
	r = asprintf(path, "%s%s", np, suffix);
	free(np);
	if (r < 0) {
		*path = NULL;
		return nomem(c);
	}
	return JK_OK;
}

enum jk_err
jk_version(struct jk_client *c, char *buf, size_t len)
{
	enum jk_err e;

	if ((e = request(c, "GET", "", NULL, NULL, ok_get)) != JK_OK)
		return e;
	if (!c->version[0]) {
		fail(c, "GET", "", "no X-Jenkins header: is [jenkins] url a Jenkins server?");
		return JK_EPROTO;
	}
	if (strlen(c->version) >= len) {
		fail(c, "GET", "", "version '%s' too long for the buffer", c->version);
		return JK_EPROTO;
	}
	memcpy(buf, c->version, strlen(c->version) + 1);
	return JK_OK;
}

#define JOB_FIELDS "name,fullName,url,buildable,disabled,labelExpression,concurrentBuild," \
	"property%5BparameterDefinitions%5Bname,type%5D%5D,_class"

static uint64_t
body_digest(const struct jk_client *c)
{
	const unsigned char *p = (const unsigned char *)body_str(c);
	uint64_t h = 1469598103934665603ULL;

	for (; *p; p++) {
		h ^= *p;
		h *= 1099511628211ULL;
	}
	return h;
}

enum jk_err
jk_jobs_list_if_changed(struct jk_client *c, struct jk_job_list *out, uint64_t *digest, bool *changed)
{
	struct buf b = { 0 };
	struct jk_job_list fresh = { 0 };
	char perr[512], *path;
	enum jk_err e;
	uint64_t d;
	int i;

	*changed = false;
	/*
	 * jobs[F,jobs[F,...]] nested TREE_DEPTH deep: folders of any kind in
	 * one request. Brackets are encoded (they are not allowed raw in a
	 * query); commas are fine as they are.
	 */
	buf_adds(&b, "api/json?tree=");
	for (i = 0; i < TREE_DEPTH; i++)
		buf_adds(&b, i ? ",jobs%5B" JOB_FIELDS : "jobs%5B" JOB_FIELDS);
	for (i = 0; i < TREE_DEPTH; i++)
		buf_adds(&b, "%5D");
	path = buf_take(&b);
	if ((e = request(c, "GET", path, NULL, NULL, ok_get)) == JK_OK && (d = body_digest(c)) != *digest) {
		/*
		 * 10,000 jobs are megabytes of text: the old list goes before
		 * the new one is made, and the text once it is (a failed parse
		 * leaves no list and no digest, so the next call parses again).
		 */
		jk_job_list_free(out);
		*digest = 0;
		e = parsed(c, "GET", path, jkmodel_parse_jobs(body_str(c), &fresh, perr, sizeof(perr)), perr);
		free(c->body.s);
		memset(&c->body, 0, sizeof(c->body));
		if (e == JK_OK) {
			*out = fresh;
			*digest = d;
			*changed = true;
		}
	}
	free(path);
	return e;
}

enum jk_err
jk_jobs_list(struct jk_client *c, struct jk_job_list *out)
{
	uint64_t digest = 0;
	bool changed;

	memset(out, 0, sizeof(*out));
	return jk_jobs_list_if_changed(c, out, &digest, &changed);
}

enum jk_err
jk_job_allowed_nodes(struct jk_client *c, const char *full_name, const char *param,
    bool *all, char ***names, size_t *n)
{
	char perr[512], what[256], *path;
	enum jk_err e;

	*all = false;
	*names = NULL;
	*n = 0;
	if ((e = job_path(c, full_name, &path, "config.xml")) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no job '%s'", full_name);
	if ((e = request(c, "GET", path, NULL, what, ok_get)) == JK_OK)
		e = parsed(c, "GET", path, jkmodel_parse_allowed_nodes(body_str(c), param, all, names,
		    n, perr, sizeof(perr)), perr);
	free(path);
	return e;
}

#define NODE_FIELDS "_class,displayName,assignedLabels%5Bname%5D,numExecutors,offline," \
	"temporarilyOffline,offlineCauseReason,executors%5Bidle,currentExecutable%5Burl%5D%5D"

enum jk_err
jk_nodes_list(struct jk_client *c, struct jk_node_list *out)
{
	static const char path[] = "computer/api/json?tree=computer%5B" NODE_FIELDS "%5D";
	char perr[512];
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if ((e = request(c, "GET", path, NULL, NULL, ok_get)) != JK_OK)
		return e;
	return parsed(c, "GET", path, jkmodel_parse_nodes(body_str(c), out, perr, sizeof(perr)), perr);
}

enum jk_err
jk_node_get(struct jk_client *c, const char *name, struct jk_node *out)
{
	char perr[512], what[256], *path;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if ((e = node_path(c, name, &path, "api/json?tree=" NODE_FIELDS)) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no node '%s'", name ? name : "built-in");
	if ((e = request(c, "GET", path, NULL, what, ok_get)) == JK_OK)
		e = parsed(c, "GET", path, jkmodel_parse_node(body_str(c), out, perr, sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_master_quieting(struct jk_client *c, bool *quieting)
{
	static const char path[] = "api/json?tree=quietingDown";
	char perr[512];
	enum jk_err e;

	*quieting = false;
	if ((e = request(c, "GET", path, NULL, NULL, ok_get)) != JK_OK)
		return e;
	return parsed(c, "GET", path, jkmodel_parse_quieting(body_str(c), quieting, perr, sizeof(perr)), perr);
}

enum jk_err
jk_node_mode(struct jk_client *c, const char *name, enum jk_mode *mode)
{
	char perr[512], what[256], *path;
	enum jk_err e;

	/*
	 * The controller's config.xml answers 400; its mode is exported on
	 * the root object instead.
	 */
	if (!name || !*name || strcmp(name, "built-in") == 0) {
		static const char root[] = "api/json?tree=mode";

		if ((e = request(c, "GET", root, NULL, NULL, ok_get)) != JK_OK)
			return e;
		return parsed(c, "GET", root, jkmodel_parse_master_mode(body_str(c), mode, perr,
		    sizeof(perr)), perr);
	}
	if ((e = node_path(c, name, &path, "config.xml")) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no node '%s'", name);
	if ((e = request(c, "GET", path, NULL, what, ok_get)) == JK_OK)
		e = parsed(c, "GET", path, jkmodel_parse_node_mode(body_str(c), mode, perr,
		    sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_node_set_offline(struct jk_client *c, const char *name, bool offline, const char *msg)
{
	struct jk_kv kv = { "offlineMessage", msg ? msg : "" };
	char what[256], *path, *body;
	struct jk_node n;
	enum jk_err e;

	errmsg_set(what, sizeof(what), "no node '%s'", name ? name : "built-in");
	if (offline) {
		/* Marks it offline if it is not, and sets the message either way. */
		if ((e = node_path(c, name, &path, "changeOfflineCause")) != JK_OK)
			return e;
		if (!(body = jkpath_encode_form(&kv, 1))) {
			free(path);
			return nomem(c);
		}
		e = request(c, "POST", path, body, what, ok_post);
		free(body);
		free(path);
		return e;
	}
	/* toggleOffline flips, so only call it when the node is marked offline. */
	if ((e = jk_node_get(c, name, &n)) != JK_OK)
		return e;
	if (!n.temp_offline) {
		jk_node_free(&n);
		return JK_OK;
	}
	jk_node_free(&n);
	if ((e = node_path(c, name, &path, "toggleOffline")) != JK_OK)
		return e;
	e = request(c, "POST", path, "", what, ok_post);
	free(path);
	return e;
}

enum jk_err
jk_build_trigger(struct jk_client *c, const char *full_name, const struct jk_kv *params,
    size_t nparams, long *queue_id, bool *existing)
{
	static const long ok[] = { 201, 303, 0 };
	char what[256], *path, *body;
	enum jk_err e;

	*queue_id = 0;
	*existing = false;
	if ((e = job_path(c, full_name, &path, "buildWithParameters?delay=0sec")) != JK_OK)
		return e;
	if (!(body = jkpath_encode_form(params, nparams))) {
		free(path);
		return nomem(c);
	}
	errmsg_set(what, sizeof(what), "no job '%s'", full_name);
	e = request(c, "POST", path, body, what, ok);
	free(body);
	if (e == JK_OK && jkpath_queue_id(c->location, queue_id) < 0) {
		fail(c, "POST", path, "%ld without a queue item in Location '%s'", c->status,
		    c->location);
		e = JK_EPROTO;
	} else if (e == JK_OK) {
		*existing = c->status == 303;
	} else if (c->status == 302) {
		/* Jenkins answers 302 to the job page when the queue refused the item. */
		fail(c, "POST", path, "302 Found: Jenkins did not queue the build (refused by the queue)");
	}
	free(path);
	return e;
}

#define QUEUE_FIELDS "id,params,why,stuck,blocked,buildable,cancelled,executable%5Bnumber,url%5D"

enum jk_err
jk_queue_item_get(struct jk_client *c, long id, struct jk_queue_item *out)
{
	char perr[512], what[128], *path;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	c->err[0] = '\0';
	if (id <= 0) {
		errmsg_set(c->err, sizeof(c->err), "bad queue id %ld", id);
		return JK_EBADREQ;
	}
	if (asprintf(&path, "queue/item/%ld/api/json?tree=%s", id, QUEUE_FIELDS) < 0)
		return nomem(c);
	errmsg_set(what, sizeof(what), "no queue item %ld (left the queue over 5 minutes ago, "
	    "or Jenkins restarted)", id);
	if ((e = request(c, "GET", path, NULL, what, ok_get)) == JK_OK)
		e = parsed(c, "GET", path, jkmodel_parse_queue_item(body_str(c), out, perr,
		    sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_queue_cancel(struct jk_client *c, long id)
{
	char what[128], *path;
	enum jk_err e;

	c->err[0] = '\0';
	if (id <= 0) {
		errmsg_set(c->err, sizeof(c->err), "bad queue id %ld", id);
		return JK_EBADREQ;
	}
	if (asprintf(&path, "queue/cancelItem?id=%ld", id) < 0)
		return nomem(c);
	errmsg_set(what, sizeof(what), "no queue item %ld", id);
	e = request(c, "POST", path, "", what, ok_post);
	if (e != JK_OK && c->status == 422) {
		/* "Item for id (N) is not cancellable": Job/Cancel is missing. */
		fail(c, "POST", path, "422 Unprocessable Entity: user '%s' may not cancel queue item %ld",
		    c->user ? c->user : "anonymous", id);
		e = JK_EFORBIDDEN;
	}
	free(path);
	return e;
}

#define BUILD_FIELDS "number,building,result,duration,estimatedDuration,timestamp,builtOn," \
	"url,queueId,description"

static enum jk_err
check_number(struct jk_client *c, int number)
{
	c->err[0] = '\0';
	if (number > 0)
		return JK_OK;
	errmsg_set(c->err, sizeof(c->err), "bad build number %d", number);
	return JK_EBADREQ;
}

enum jk_err
jk_build_get(struct jk_client *c, const char *full_name, int number, struct jk_build *out)
{
	char perr[512], what[256], *path;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if ((e = check_number(c, number)) != JK_OK ||
	    (e = job_path(c, full_name, &path, "%d/api/json?tree=%s", number, BUILD_FIELDS)) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no build %s #%d", full_name, number);
	if ((e = request(c, "GET", path, NULL, what, ok_get)) == JK_OK)
		e = parsed(c, "GET", path, jkmodel_parse_build(body_str(c), out, perr, sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_build_stop(struct jk_client *c, const char *full_name, int number)
{
	char what[256], *path;
	enum jk_err e;

	if ((e = check_number(c, number)) != JK_OK ||
	    (e = job_path(c, full_name, &path, "%d/stop", number)) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no build %s #%d", full_name, number);
	e = request(c, "POST", path, "", what, ok_post);
	free(path);
	return e;
}

enum jk_err
jk_build_set_description(struct jk_client *c, const char *full_name, int number,
    const char *description)
{
	struct jk_kv kv = { "description", description ? description : "" };
	char what[256], *path, *body;
	enum jk_err e;

	if ((e = check_number(c, number)) != JK_OK ||
	    (e = job_path(c, full_name, &path, "%d/submitDescription", number)) != JK_OK)
		return e;
	if (!(body = jkpath_encode_form(&kv, 1))) {
		free(path);
		return nomem(c);
	}
	errmsg_set(what, sizeof(what), "no build %s #%d", full_name, number);
	e = request(c, "POST", path, body, what, ok_post);
	free(body);
	free(path);
	return e;
}

enum jk_err
jk_find_build(struct jk_client *c, const char *full_name, const char *name, const char *value,
    long queue_id, long long since_ms, long *found_queue_id, int *number)
{
	char perr[512], *path = NULL, *jp;
	enum jk_err e = JK_ENOTFOUND;
	int from, scanned = 0;
	bool older = false;

	*found_queue_id = 0;
	*number = 0;
	if (!(jp = jkpath_job(full_name))) {
		errmsg_set(c->err, sizeof(c->err), "bad job name");
		return JK_EBADREQ;
	}
	/* Still queued? (Only by parameter: a queue id is followed directly.) */
	if (name) {
		e = request(c, "GET", "queue/api/json?tree=items%5Bid,params,task%5Burl%5D%5D", NULL,
		    "no queue", ok_get);
		if (e == JK_OK)
			e = jkmodel_find_queue(body_str(c), jp, name, value, found_queue_id, perr, sizeof(perr));
		if (e != JK_ENOTFOUND) {
			free(jp);
			return e == JK_OK ? JK_OK : parsed(c, "GET", "queue/api/json", e, perr);
		}
	}
	/*
	 * Started: the job's newest builds, a small page at a time, so a hit
	 * among the newest costs one short answer. Only "builds" (Jenkins
	 * exports the newest 100 there): "allBuilds" makes Jenkins load every
	 * build record the job has, a cost that grows with its history.
	 */
	for (from = 0; from < JK_FIND_MAX && !older && e == JK_ENOTFOUND; from += JK_FIND_PAGE) {
		scanned = 0;
		e = job_path(c, full_name, &path, "api/json?tree=builds%%5Bnumber,queueId,timestamp,"
		    "actions%%5Bparameters%%5Bname,value%%5D%%5D%%5D%%7B%d,%d%%7D", from, from + JK_FIND_PAGE);
		if (e == JK_OK && (e = request(c, "GET", path, NULL, "no such job", ok_get)) == JK_OK)
			e = jkmodel_find_build(body_str(c), name, value, queue_id, since_ms, number,
			    &scanned, &older, perr, sizeof(perr));
		if (e == JK_EPROTO)
			e = parsed(c, "GET", path, e, perr);
		free(path);
		path = NULL;
		if (e == JK_ENOTFOUND && scanned < JK_FIND_PAGE)
			break;    /* the job has no more builds */
	}
	free(jp);
	return e;
}
