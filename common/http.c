/*
 * http: see http.h.
 *
 * Top to bottom: status codes, the curl callbacks that collect a response,
 * the messages for what went wrong, one exchange (perform), the crumb
 * dance on top of it (http_request), and setting the handle up.
 */
#include "http.h"

#include "cred.h"
#include "errmsg.h"
#include "jkmodel.h"
#include "log.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifndef JGA_VERSION
#define JGA_VERSION "dev"
#endif

/* A body buffer up to this size is kept for the next response; a larger one is freed. */
#define KEEP_BODY	(1u * 1024 * 1024)
/* "404 Not Found" */
#define STATUSLEN	64
/* A short reason from an error body, quoted in a message. */
#define REASONLEN	256
#define STRERRLEN	128
/* The crumb issuer's answer, when it cannot be used. */
#define CRUMB_ERRLEN	256

const long http_ok_get[] = { 200, 0 };
/* Jenkins answers form POSTs with a 302 back to the page; 2xx is fine too. */
const long http_ok_post[] = { 200, 204, 302, 0 };

enum jk_err
http_status_err(long status)
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

/* ---- collecting a response ---- */

const char *
http_body(const struct http *h)
{
	return h->body.s ? h->body.s : "";
}

static bool
body_has(const struct http *h, const char *s)
{
	return h->body.s && memmem(h->body.s, h->body.len, s, strlen(s)) != NULL;
}

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct http *h = arg;
	size_t n = size * nmemb;

	/* Returning less than n makes curl abort with CURLE_WRITE_ERROR. */
	if (h->body.len + n > HTTP_MAX_BODY) {
		h->too_large = true;
		return 0;
	}
	buf_add(&h->body, data, n);
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
	struct http *h = arg;
	size_t n = size * nmemb, len = n, nl, vl;
	const char *colon, *v;

	while (len && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* A new response (e.g. after "100 Continue"): forget the last one's headers. */
		h->version[0] = h->perm[0] = h->ctype[0] = h->location[0] = '\0';
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
		hdr_copy(h->version, sizeof(h->version), v, vl);
	else if (hdr_is(data, nl, "X-Jenkins-Session"))
		hdr_copy(h->session, sizeof(h->session), v, vl);
	else if (hdr_is(data, nl, "X-Required-Permission"))
		hdr_copy(h->perm, sizeof(h->perm), v, vl);
	else if (hdr_is(data, nl, "Content-Type"))
		hdr_copy(h->ctype, sizeof(h->ctype), v, vl);
	else if (hdr_is(data, nl, "Location"))
		hdr_copy(h->location, sizeof(h->location), v, vl);
	return n;
}

void
http_fail(struct http *h, const char *method, const char *path, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	errmsg_set(h->err, sizeof(h->err), "%s %s%.*s: ", method, h->shown,
	    (int)strcspn(path, "?"), path);
	n = strlen(h->err);
	va_start(ap, fmt);
	errmsg_vset(h->err + n, sizeof(h->err) - n, fmt, ap);
	va_end(ap);
}

enum jk_err
http_parsed(struct http *h, const char *method, const char *path, enum jk_err e,
    const char *perr)
{
	if (e != JK_OK)
		http_fail(h, method, path, "%s", perr);
	return e;
}

/*
 * A short reason from an error body, for messages: the first line of a
 * text/plain body, or the <title> of a servlet container's "Error 400 ..."
 * page. Jenkins' own HTML error pages carry nothing short, so "" then.
 */
static void
body_reason(const struct http *h, char *out, size_t len)
{
	const char *s = http_body(h), *t;
	size_t n = 0, i;

	out[0] = '\0';
	if (strncasecmp(h->ctype, "text/plain", 10) == 0) {
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
transport_error(struct http *h, const char *m, const char *p, CURLcode rc)
{
	const char *detail = h->curl_err[0] ? h->curl_err : curl_easy_strerror(rc);
	long oserr = 0;
	char ebuf[STRERRLEN];

	if (h->too_large) {
		http_fail(h, m, p, "response too large (over %u MiB)", HTTP_MAX_BODY >> 20);
		return JK_EPROTO;
	}
	if (rc == CURLE_OUT_OF_MEMORY)
		fatalx("out of memory (libcurl)");
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		http_fail(h, m, p, "timeout: %s (see [jenkins] timeout and connect_timeout)", detail);
		return JK_ETIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		http_fail(h, m, p, "cannot connect: %s (check [jenkins] url)", detail);
		return JK_ECONNECT;
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &oserr);
		if (oserr)
			http_fail(h, m, p, "cannot connect: %s", strerror_r((int)oserr, ebuf, sizeof(ebuf)));
		else
			http_fail(h, m, p, "cannot connect: %s", detail);
		return JK_ECONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_CRL_BADFILE:
		http_fail(h, m, p, "TLS: %s (check [jenkins] ca_file and tls_verify)", detail);
		return JK_ECONNECT;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
		http_fail(h, m, p, "connection dropped: %s", detail);
		return JK_ECONNECT;
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		http_fail(h, m, p, "bad URL: %s (check [jenkins] url)", detail);
		return JK_EPROTO;
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_BAD_CONTENT_ENCODING:
		http_fail(h, m, p, "not a valid HTTP answer: %s", detail);
		return JK_EPROTO;
	default:
		http_fail(h, m, p, "%s", detail);
		return JK_ECONNECT;
	}
}

/* Turn an unexpected status into a jk_err and a message saying what to check. */
static enum jk_err
status_error(struct http *h, const char *m, const char *p, const char *what)
{
	long s = h->status;
	enum jk_err e = http_status_err(s);
	char st[STATUSLEN], why[REASONLEN];
	const char *who = h->user ? h->user : "anonymous";

	errmsg_set(st, sizeof(st), *reason_phrase(s) ? "%ld %s" : "%ld%s", s, reason_phrase(s));
	body_reason(h, why, sizeof(why));
	switch (e) {
	case JK_EAUTH:
		http_fail(h, m, p, "%s: check [jenkins] user and %s", st,
		    h->crumbs ? "password" : "token");
		break;
	case JK_EFORBIDDEN:
		if (body_has(h, "No valid crumb"))
			http_fail(h, m, p, "%s: No valid crumb was included in the request%s", st,
			    h->crumbs ? "" : " (this Jenkins wants crumbs even with an API token)");
		else if (!h->user)
			http_fail(h, m, p, "%s: anonymous access refused%s%s%s: set [jenkins] user and token",
			    st, h->perm[0] ? " (X-Required-Permission: " : "", h->perm,
			    h->perm[0] ? ")" : "");
		else if (h->perm[0])
			http_fail(h, m, p, "%s: user '%s' lacks a permission (X-Required-Permission: %s)",
			    st, who, h->perm);
		else
			http_fail(h, m, p, "%s: user '%s' lacks a permission%s%s", st, who,
			    *why ? ": " : "", why);
		break;
	case JK_ENOTFOUND:
		http_fail(h, m, p, "%s: %s (or user '%s' cannot see it)", st,
		    what ? what : "no such page", who);
		break;
	case JK_OK:
		/* A 2xx/3xx this call does not expect, e.g. a redirect to another URL. */
		e = JK_EPROTO;
		if (h->location[0]) {
			char *to = cred_redact_url(h->location);

			http_fail(h, m, p, "unexpected status %s to %s (check [jenkins] url)", st, to);
			free(to);
		} else {
			http_fail(h, m, p, "unexpected status %s", st);
		}
		break;
	case JK_ESERVER:
		http_fail(h, m, p, "%s: %s", st, *why ? why : "Jenkins server error");
		break;
	default:
		http_fail(h, m, p, "%s%s%s", st, *why ? ": " : "", why);
		break;
	}
	return e;
}

/* ---- one exchange ---- */

/* Forget the last response; do not keep a huge buffer around. */
static void
forget_response(struct http *h)
{
	if (h->body.cap > KEEP_BODY)
		buf_free(&h->body);
	buf_reset(&h->body);
	h->too_large = false;
	h->status = 0;
	h->err[0] = '\0';
	h->version[0] = h->perm[0] = h->ctype[0] = h->location[0] = '\0';
	h->curl_err[0] = '\0';
}

/*
 * A POST's headers: no "Expect: 100-continue" round trip, and the crumb
 * if there is one. NULL when curl is out of memory.
 */
static struct curl_slist *
post_headers(const struct http *h)
{
	struct curl_slist *hdrs, *more;

	if (!(hdrs = curl_slist_append(NULL, "Expect:")))
		return NULL;
	if (h->crumb_hdr) {
		if (!(more = curl_slist_append(hdrs, h->crumb_hdr))) {
			curl_slist_free_all(hdrs);
			return NULL;
		}
		hdrs = more;
	}
	return hdrs;
}

/* Send one request on the reused handle and leave it a plain GET again. */
static CURLcode
exchange(struct http *h, const char *url, const char *body, struct curl_slist *hdrs)
{
	CURLcode rc;

	if (body) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		/*
		 * A POST goes on a fresh connection: on a reused one that closes
		 * without an answer, libcurl silently sends the request again — a
		 * second build when Jenkins had already queued the first.
		 */
		curl_easy_setopt(h->curl, CURLOPT_FRESH_CONNECT, 1L);
	} else {
		curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(h->curl, CURLOPT_URL, url);
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(h->curl);
	/* Leave the handle as a plain GET without our headers or body pointer. */
	curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
	if (body) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(h->curl, CURLOPT_FRESH_CONNECT, 0L);
	}
	return rc;
}

/* What curl's rc and the status mean for a call that expects a status in ok. */
static enum jk_err
judge(struct http *h, const char *method, const char *path, CURLcode rc, const char *what,
    const long *ok)
{
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		http_fail(h, method, path, "request abandoned: stopping");
		return JK_ECANCELED;
	}
	if (rc != CURLE_OK)
		return transport_error(h, method, path, rc);
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &h->status);
	/* A redirect to the login page is how some setups say "not allowed". */
	if (h->status >= 300 && h->status < 400 &&
	    (strstr(h->location, "/login") || strstr(h->location, "/securityRealm/"))) {
		http_fail(h, method, path, "%ld redirected to the login page: check [jenkins] user",
		    h->status);
		return JK_EFORBIDDEN;
	}
	for (; *ok; ok++)
		if (*ok == h->status)
			return JK_OK;
	return status_error(h, method, path, what);
}

/* One HTTP exchange, without the crumb dance (http_request's arguments). */
static enum jk_err
perform(struct http *h, const char *method, const char *path, const char *body,
    const char *what, const long *ok)
{
	struct curl_slist *hdrs = NULL;
	char *url;
	CURLcode rc;

	forget_response(h);
	if (body && !(hdrs = post_headers(h)))
		fatalx("out of memory (libcurl)");
	url = xasprintf("%s%s", h->base, path);
	rc = exchange(h, url, body, hdrs);
	curl_slist_free_all(hdrs);
	free(url);
	return judge(h, method, path, rc, what, ok);
}

/* ---- crumbs ---- */

/*
 * Fetch a crumb (and with it the session cookie it is bound to). A 404
 * means CSRF protection is off, so no crumb is needed.
 */
static enum jk_err
fetch_crumb(struct http *h)
{
	static const char path[] = "crumbIssuer/api/json";
	char perr[CRUMB_ERRLEN], *crumb, *field;
	enum jk_err e;

	free(h->crumb_hdr);
	h->crumb_hdr = NULL;
	h->crumb_done = false;
	e = perform(h, "GET", path, NULL, "no crumb issuer", http_ok_get);
	if (e == JK_ENOTFOUND) {
		h->crumb_done = true;
		h->err[0] = '\0';
		return JK_OK;
	}
	if (e != JK_OK)
		return e;
	if ((e = jkmodel_parse_crumb(http_body(h), &field, &crumb, perr, sizeof(perr))) != JK_OK) {
		http_fail(h, "GET", path, "%s", perr);
		return e;
	}
	/* Both go into a header line: refuse anything that could break it. */
	if (!*field || field[strcspn(field, " \t\r\n:")] || crumb[strcspn(crumb, "\r\n")]) {
		http_fail(h, "GET", path, "crumb or crumbRequestField not usable in a header");
		e = JK_EPROTO;
	} else {
		h->crumb_hdr = xasprintf("%s: %s", field, crumb);
		h->crumb_done = true;
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
enum jk_err
http_request(struct http *h, const char *method, const char *path, const char *body,
    const char *what, const long *ok)
{
	enum jk_err e;

	h->err[0] = '\0';
	if (h->cancel && h->cancel()) {
		http_fail(h, method, path, "request not sent: stopping");
		return JK_ECANCELED;
	}
	if (body && h->crumbs && !h->crumb_done && (e = fetch_crumb(h)) != JK_OK)
		return e;
	e = perform(h, method, path, body, what, ok);
	if (e == JK_EFORBIDDEN && body && h->crumbs && body_has(h, "No valid crumb")) {
		if ((e = fetch_crumb(h)) != JK_OK)
			return e;
		e = perform(h, method, path, body, what, ok);
	}
	return e;
}

void
http_body_free(struct http *h)
{
	buf_free(&h->body);
}

/* ---- the handle ---- */

/*
 * The handle's options for o; -1 if curl refuses one. url_user and
 * url_secret: the userinfo taken out of o->url, used unless o->user is set
 * (as libcurl itself would).
 */
static int
set_options(struct http *h, const struct jk_opts *o, const char *url_user, const char *url_secret)
{
	CURL *c = h->curl;

#define SET(opt, val) do { if (curl_easy_setopt(c, opt, val) != CURLE_OK) return -1; } while (0)
	SET(CURLOPT_NOSIGNAL, 1L);		/* threads: no SIGALRM for timeouts */
	SET(CURLOPT_ERRORBUFFER, h->curl_err);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, h);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, h);
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
	} else if (url_user) {
		SET(CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		SET(CURLOPT_USERNAME, url_user);
		SET(CURLOPT_PASSWORD, url_secret ? url_secret : "");
	}
	if (h->crumbs)
		SET(CURLOPT_COOKIEFILE, "");	/* keep the session the crumb is bound to */
#undef SET
	return 0;
}

int
http_init(struct http *h, const struct jk_opts *o)
{
	char *url, *url_user, *url_secret;
	size_t n;
	int rc = -1;

	if (!o || !o->url || !*o->url)
		return -1;
	/* No userinfo in what libcurl is given: its messages may quote the URL (cred.h). */
	cred_split_url(o->url, &url, &url_user, &url_secret);
	n = strlen(url);
	h->base = xasprintf("%s%s", url, n && url[n - 1] == '/' ? "" : "/");
	h->shown = xstrdup(h->base);
	if (o->user || url_user)
		h->user = xstrdup(o->user ? o->user : url_user);
	/* Only API-token auth is exempt from CSRF crumbs (Jenkins >= 2.96);
	 * anonymous and password POSTs need one (CSRF is always on since 2.222). */
	h->crumbs = o->token == NULL;
	if ((h->curl = curl_easy_init()))
		rc = set_options(h, o, url_user, url_secret);
	if (url_secret)
		explicit_bzero(url_secret, strlen(url_secret));
	free(url_secret);
	free(url_user);
	free(url);
	return rc;
}

void
http_cleanup(struct http *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->base);
	free(h->shown);
	free(h->user);
	free(h->crumb_hdr);
	buf_free(&h->body);
	memset(h, 0, sizeof(*h));
}

/* libcurl calls this about once a second, and on every transfer of data. */
static int
on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct http *h = arg;

	(void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
	return h->cancel && h->cancel() ? 1 : 0;
}

void
http_set_cancel(struct http *h, bool (*cancel)(void))
{
	h->cancel = cancel;
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, h);
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, cancel ? 0L : 1L);
}
