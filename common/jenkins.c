/*
 * jenkins: see jenkins.h.
 *
 * The operations of the remote API, each a few lines on the modules under
 * it: jkpath.c makes the request's path, http.c sends it (crumbs, errors
 * and their messages), jkmodel.c parses the answer. The structs' free
 * functions live with their parsers in jkmodel.c.
 */
#include "jenkins.h"

#include "buf.h"
#include "errmsg.h"
#include "http.h"
#include "jkmodel.h"
#include "jkpath.h"
#include "xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Folder levels fetched in one jobs request: deeper jobs are not listed. */
#define TREE_DEPTH	10
/* FNV-1a, 64 bits: the digest of a job list's text (jk_jobs_list_if_changed). */
#define FNV64_OFFSET	1469598103934665603ULL
#define FNV64_PRIME	1099511628211ULL
/* Room for a parser's message, and for what a 404 is about ("no job '...'"). */
#define PERRLEN		512
#define WHATLEN		256

struct jk_client {
	struct http http;
	char   version[HTTP_VERSIONLEN];   /* the last X-Jenkins seen ("" none yet) */
};

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
	case JK_ECANCELED:	return "cancelled";
	}
	return "unknown error";
}

/* ---- the client ---- */

struct jk_client *
jk_client_new(const struct jk_opts *o)
{
	struct jk_client *c = xcalloc(1, sizeof(*c));

	if (http_init(&c->http, o) < 0) {
		jk_client_free(c);
		return NULL;
	}
	return c;
}

void
jk_client_free(struct jk_client *c)
{
	if (!c)
		return;
	http_cleanup(&c->http);
	free(c);
}

const char *
jk_client_error(const struct jk_client *c)
{
	return c->http.err;
}

void
jk_client_set_cancel(struct jk_client *c, bool (*cancel)(void))
{
	http_set_cancel(&c->http, cancel);
}

const char *
jk_client_session(const struct jk_client *c)
{
	return c->http.session;
}

long
jk_client_status(const struct jk_client *c)
{
	return c->http.status;
}

/* ---- paths ---- */

/* "job/a/job/b/" + suffix into *path; JK_EBADREQ for a name with an empty segment. */
static enum jk_err
job_path(struct jk_client *c, const char *full_name, char **path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static enum jk_err
job_path(struct jk_client *c, const char *full_name, char **path, const char *fmt, ...)
{
	char *jp;
	size_t jl;
	va_list ap;
	int n;

	c->http.err[0] = '\0';
	*path = NULL;
	if (!(jp = jkpath_job(full_name))) {
		errmsg_set(c->http.err, sizeof(c->http.err), "bad job name '%s': empty path segment",
		    full_name ? full_name : "(null)");
		return JK_EBADREQ;
	}
	jl = strlen(jp);
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	*path = xrealloc(jp, jl + (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(*path + jl, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return JK_OK;
}

/*
 * The master's version (X-Jenkins), on which the controller's name and URL
 * depend (jkpath_node): the last one seen, else asked for; "" if unknown.
 */
static const char *
master_version(struct jk_client *c)
{
	char v[HTTP_VERSIONLEN];

	if (c->http.version[0])
		memcpy(c->version, c->http.version, sizeof(c->version));
	else if (!c->version[0] && jk_version(c, v, sizeof(v)) == JK_OK)
		memcpy(c->version, v, sizeof(c->version));
	return c->version;
}

/* "computer/<name>/" + suffix. */
static char *
node_path(struct jk_client *c, const char *name, const char *suffix)
{
	char *np = jkpath_node(name, master_version(c)), *path;

	c->http.err[0] = '\0';
	path = xasprintf("%s%s", np, suffix);
	free(np);
	return path;
}

/* ---- operations ---- */

enum jk_err
jk_version(struct jk_client *c, char *buf, size_t len)
{
	struct http *h = &c->http;
	enum jk_err e;

	if ((e = http_request(h, "GET", "", NULL, NULL, http_ok_get)) != JK_OK)
		return e;
	if (!h->version[0]) {
		http_fail(h, "GET", "", "no X-Jenkins header: is [jenkins] url a Jenkins server?");
		return JK_EPROTO;
	}
	if (strlen(h->version) >= len) {
		http_fail(h, "GET", "", "version '%s' too long for the buffer", h->version);
		return JK_EPROTO;
	}
	memcpy(buf, h->version, strlen(h->version) + 1);
	return JK_OK;
}

/* ---- jobs ---- */

#define JOB_FIELDS "name,fullName,url,buildable,disabled,labelExpression,concurrentBuild," \
	"property%5BparameterDefinitions%5Bname,type%5D%5D,_class"

static uint64_t
body_digest(const struct http *h)
{
	const unsigned char *p = (const unsigned char *)http_body(h);
	uint64_t d = FNV64_OFFSET;

	for (; *p; p++) {
		d ^= *p;
		d *= FNV64_PRIME;
	}
	return d;
}

/*
 * api/json?tree=jobs[F,jobs[F,...]] nested TREE_DEPTH deep: folders of any
 * kind in one request. Brackets are encoded (they are not allowed raw in a
 * query); commas are fine as they are.
 */
static char *
jobs_path(void)
{
	struct buf b = { 0 };
	int i;

	buf_adds(&b, "api/json?tree=");
	for (i = 0; i < TREE_DEPTH; i++)
		buf_adds(&b, i ? ",jobs%5B" JOB_FIELDS : "jobs%5B" JOB_FIELDS);
	for (i = 0; i < TREE_DEPTH; i++)
		buf_adds(&b, "%5D");
	return buf_take(&b);
}

enum jk_err
jk_jobs_list_if_changed(struct jk_client *c, struct jk_job_list *out, uint64_t *digest,
    bool *changed)
{
	struct http *h = &c->http;
	struct jk_job_list fresh = { 0 };
	char perr[PERRLEN], *path = jobs_path();
	enum jk_err e;
	uint64_t d;

	*changed = false;
	if ((e = http_request(h, "GET", path, NULL, NULL, http_ok_get)) == JK_OK &&
	    (d = body_digest(h)) != *digest) {
		/*
		 * 10,000 jobs are megabytes of text: the old list goes before
		 * the new one is made, and the text once it is (a failed parse
		 * leaves no list and no digest, so the next call parses again).
		 */
		jk_job_list_free(out);
		*digest = 0;
		e = http_parsed(h, "GET", path, jkmodel_parse_jobs(http_body(h), &fresh, perr,
		    sizeof(perr)), perr);
		http_body_free(h);
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
    bool *all, char ***names, size_t *n, enum jk_multi_node *multi)
{
	struct http *h = &c->http;
	char perr[PERRLEN], what[WHATLEN], *path;
	enum jk_err e;

	*all = false;
	*names = NULL;
	*n = 0;
	if (multi)
		*multi = JK_MULTI_NONE;
	if ((e = job_path(c, full_name, &path, "config.xml")) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no job '%s'", full_name);
	if ((e = http_request(h, "GET", path, NULL, what, http_ok_get)) == JK_OK)
		e = http_parsed(h, "GET", path, jkmodel_parse_allowed_nodes(http_body(h), param,
		    all, names, n, perr, sizeof(perr)), perr);
	if (e == JK_OK && multi)
		e = http_parsed(h, "GET", path, jkmodel_parse_multi_node(http_body(h), param,
		    multi, perr, sizeof(perr)), perr);
	if (e != JK_OK) {
		strv_free(*names, *n);
		*names = NULL;
		*n = 0;
	}
	free(path);
	return e;
}

enum jk_err
jk_job_buildable(struct jk_client *c, const char *full_name, bool *buildable)
{
	struct http *h = &c->http;
	char perr[PERRLEN], what[WHATLEN], *path;
	enum jk_err e;

	*buildable = false;
	if ((e = job_path(c, full_name, &path, "api/json?tree=buildable,disabled")) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no job '%s'", full_name);
	if ((e = http_request(h, "GET", path, NULL, what, http_ok_get)) == JK_OK)
		e = http_parsed(h, "GET", path, jkmodel_parse_job_buildable(http_body(h), buildable,
		    perr, sizeof(perr)), perr);
	free(path);
	return e;
}

/* ---- nodes ---- */

/* actions[...]: the pin (jk_pin); _class comes with every object. */
#define PIN_FIELDS "actions%5Bparameters%5Bname,value%5D%5D"

#define NODE_BASE_FIELDS "_class,displayName,assignedLabels%5Bname%5D,numExecutors,offline," \
	"temporarilyOffline,offlineCauseReason,"
/* One node, for its agent: what its executors run, by url. */
#define NODE_FIELDS NODE_BASE_FIELDS \
	"executors%5Bidle,currentExecutable%5Burl%5D%5D," \
	"oneOffExecutors%5Bidle,currentExecutable%5Burl%5D%5D"
/*
 * Every node, for the coordinator: also each running build's number,
 * times and parameters (jk_run), in the same request. The parameters are
 * those of running builds only, as the node agents already read them.
 */
#define RUN_FIELDS "currentExecutable%5Burl,number,timestamp,estimatedDuration," PIN_FIELDS "%5D"
#define NODES_FIELDS NODE_BASE_FIELDS \
	"executors%5Bidle," RUN_FIELDS "%5D,oneOffExecutors%5Bidle," RUN_FIELDS "%5D"

enum jk_err
jk_nodes_list(struct jk_client *c, struct jk_node_list *out)
{
	static const char path[] = "computer/api/json?tree=computer%5B" NODES_FIELDS "%5D";
	struct http *h = &c->http;
	char perr[PERRLEN];
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if ((e = http_request(h, "GET", path, NULL, NULL, http_ok_get)) != JK_OK)
		return e;
	return http_parsed(h, "GET", path, jkmodel_parse_nodes(http_body(h), out, perr,
	    sizeof(perr)), perr);
}

enum jk_err
jk_node_get(struct jk_client *c, const char *name, struct jk_node *out)
{
	struct http *h = &c->http;
	char perr[PERRLEN], what[WHATLEN], *path;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	path = node_path(c, name, "api/json?tree=" NODE_FIELDS);
	errmsg_set(what, sizeof(what), "no node '%s'", name ? name : "built-in");
	if ((e = http_request(h, "GET", path, NULL, what, http_ok_get)) == JK_OK)
		e = http_parsed(h, "GET", path, jkmodel_parse_node(http_body(h), out, perr,
		    sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_master_quieting(struct jk_client *c, bool *quieting)
{
	static const char path[] = "api/json?tree=quietingDown";
	struct http *h = &c->http;
	char perr[PERRLEN];
	enum jk_err e;

	*quieting = false;
	if ((e = http_request(h, "GET", path, NULL, NULL, http_ok_get)) != JK_OK)
		return e;
	return http_parsed(h, "GET", path, jkmodel_parse_quieting(http_body(h), quieting, perr,
	    sizeof(perr)), perr);
}

enum jk_err
jk_node_mode(struct jk_client *c, const char *name, enum jk_mode *mode)
{
	static const char root[] = "api/json?tree=mode";
	struct http *h = &c->http;
	char perr[PERRLEN], what[WHATLEN], *path;
	enum jk_err e;

	/*
	 * The controller's config.xml answers 400; its mode is exported on
	 * the root object instead.
	 */
	if (jkpath_is_controller(name, master_version(c))) {
		if ((e = http_request(h, "GET", root, NULL, NULL, http_ok_get)) != JK_OK)
			return e;
		return http_parsed(h, "GET", root, jkmodel_parse_master_mode(http_body(h), mode,
		    perr, sizeof(perr)), perr);
	}
	path = node_path(c, name, "config.xml");
	errmsg_set(what, sizeof(what), "no node '%s'", name);
	if ((e = http_request(h, "GET", path, NULL, what, http_ok_get)) == JK_OK)
		e = http_parsed(h, "GET", path, jkmodel_parse_node_mode(http_body(h), mode, perr,
		    sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_node_set_offline(struct jk_client *c, const char *name, bool offline, const char *msg)
{
	struct jk_kv kv = { "offlineMessage", msg ? msg : "" };
	char what[WHATLEN], *path, *body;
	struct jk_node n;
	enum jk_err e;

	errmsg_set(what, sizeof(what), "no node '%s'", name ? name : "built-in");
	if (offline) {
		/* Marks it offline if it is not, and sets the message either way. */
		path = node_path(c, name, "changeOfflineCause");
		body = jkpath_encode_form(&kv, 1);
		e = http_request(&c->http, "POST", path, body, what, http_ok_post);
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
	path = node_path(c, name, "toggleOffline");
	e = http_request(&c->http, "POST", path, "", what, http_ok_post);
	free(path);
	return e;
}

/* ---- builds and the queue ---- */

enum jk_err
jk_build_trigger(struct jk_client *c, const char *full_name, const struct jk_kv *params,
    size_t nparams, long *queue_id, bool *existing)
{
	static const long ok[] = { 201, 303, 0 };
	struct http *h = &c->http;
	char what[WHATLEN], *path, *body;
	enum jk_err e;

	*queue_id = 0;
	*existing = false;
	if ((e = job_path(c, full_name, &path, "buildWithParameters?delay=0sec")) != JK_OK)
		return e;
	body = jkpath_encode_form(params, nparams);
	errmsg_set(what, sizeof(what), "no job '%s'", full_name);
	e = http_request(h, "POST", path, body, what, ok);
	free(body);
	if (e == JK_OK && jkpath_queue_id(h->location, queue_id) < 0) {
		http_fail(h, "POST", path, "%ld without a queue item in Location '%s'", h->status,
		    h->location);
		e = JK_EPROTO;
	} else if (e == JK_OK) {
		*existing = h->status == 303;
	} else if (h->status == 302) {
		/* Jenkins answers 302 to the job page when the queue refused the item. */
		http_fail(h, "POST", path,
		    "302 Found: Jenkins did not queue the build (refused by the queue)");
	}
	free(path);
	return e;
}

#define QUEUE_FIELDS "id,why,stuck,blocked,buildable,cancelled,executable%5Bnumber,url%5D," PIN_FIELDS

static enum jk_err
check_queue_id(struct jk_client *c, long id)
{
	c->http.err[0] = '\0';
	if (id > 0)
		return JK_OK;
	errmsg_set(c->http.err, sizeof(c->http.err), "bad queue id %ld", id);
	return JK_EBADREQ;
}

enum jk_err
jk_queue_item_get(struct jk_client *c, long id, struct jk_queue_item *out)
{
	struct http *h = &c->http;
	char perr[PERRLEN], what[WHATLEN], *path;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if ((e = check_queue_id(c, id)) != JK_OK)
		return e;
	path = xasprintf("queue/item/%ld/api/json?tree=%s", id, QUEUE_FIELDS);
	errmsg_set(what, sizeof(what), "no queue item %ld (left the queue over 5 minutes ago, "
	    "or Jenkins restarted)", id);
	if ((e = http_request(h, "GET", path, NULL, what, http_ok_get)) == JK_OK)
		e = http_parsed(h, "GET", path, jkmodel_parse_queue_item(http_body(h), out, perr,
		    sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_queue_cancel(struct jk_client *c, long id)
{
	struct http *h = &c->http;
	char what[WHATLEN], *path;
	enum jk_err e;

	if ((e = check_queue_id(c, id)) != JK_OK)
		return e;
	path = xasprintf("queue/cancelItem?id=%ld", id);
	errmsg_set(what, sizeof(what), "no queue item %ld", id);
	e = http_request(h, "POST", path, "", what, http_ok_post);
	if (e != JK_OK && h->status == 422) {
		/* "Item for id (N) is not cancellable": Job/Cancel is missing. */
		http_fail(h, "POST", path,
		    "422 Unprocessable Entity: user '%s' may not cancel queue item %ld",
		    h->user ? h->user : "anonymous", id);
		e = JK_EFORBIDDEN;
	}
	free(path);
	return e;
}

#define BUILD_FIELDS "number,building,result,duration,estimatedDuration,timestamp,builtOn," \
	"url,queueId,description," PIN_FIELDS

static enum jk_err
check_number(struct jk_client *c, int number)
{
	c->http.err[0] = '\0';
	if (number > 0)
		return JK_OK;
	errmsg_set(c->http.err, sizeof(c->http.err), "bad build number %d", number);
	return JK_EBADREQ;
}

enum jk_err
jk_build_get(struct jk_client *c, const char *full_name, int number, struct jk_build *out)
{
	struct http *h = &c->http;
	char perr[PERRLEN], what[WHATLEN], *path;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if ((e = check_number(c, number)) != JK_OK ||
	    (e = job_path(c, full_name, &path, "%d/api/json?tree=%s", number, BUILD_FIELDS)) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no build %s #%d", full_name, number);
	if ((e = http_request(h, "GET", path, NULL, what, http_ok_get)) == JK_OK)
		e = http_parsed(h, "GET", path, jkmodel_parse_build(http_body(h), out, perr,
		    sizeof(perr)), perr);
	free(path);
	return e;
}

enum jk_err
jk_build_stop(struct jk_client *c, const char *full_name, int number)
{
	char what[WHATLEN], *path;
	enum jk_err e;

	if ((e = check_number(c, number)) != JK_OK ||
	    (e = job_path(c, full_name, &path, "%d/stop", number)) != JK_OK)
		return e;
	errmsg_set(what, sizeof(what), "no build %s #%d", full_name, number);
	e = http_request(&c->http, "POST", path, "", what, http_ok_post);
	free(path);
	return e;
}

enum jk_err
jk_build_set_description(struct jk_client *c, const char *full_name, int number,
    const char *description)
{
	struct jk_kv kv = { "description", description ? description : "" };
	char what[WHATLEN], *path, *body;
	enum jk_err e;

	if ((e = check_number(c, number)) != JK_OK ||
	    (e = job_path(c, full_name, &path, "%d/submitDescription", number)) != JK_OK)
		return e;
	body = jkpath_encode_form(&kv, 1);
	errmsg_set(what, sizeof(what), "no build %s #%d", full_name, number);
	e = http_request(&c->http, "POST", path, body, what, http_ok_post);
	free(body);
	free(path);
	return e;
}

/* ---- finding a build again (after a lost answer or a restart) ---- */

#define FIND_QUEUE_PATH "queue/api/json?tree=items%5Bid,task%5Burl%5D," PIN_FIELDS "%5D"

/* Still queued? The queue's item of the job at jp with parameter name = value. */
static enum jk_err
find_in_queue(struct jk_client *c, const char *jp, const char *name, const char *value,
    long *queue_id)
{
	struct http *h = &c->http;
	char perr[PERRLEN];
	enum jk_err e;

	if ((e = http_request(h, "GET", FIND_QUEUE_PATH, NULL, "no queue", http_ok_get)) != JK_OK)
		return e;
	e = jkmodel_find_queue(http_body(h), jp, name, value, queue_id, perr, sizeof(perr));
	return e == JK_EPROTO ? http_parsed(h, "GET", "queue/api/json", e, perr) : e;
}

/* One page of the job's builds, the newest first from from. */
static enum jk_err
find_in_builds(struct jk_client *c, const char *full_name, int from, const char *name,
    const char *value, long queue_id, long long since_ms, int *number, int *scanned,
    bool *older)
{
	struct http *h = &c->http;
	char perr[PERRLEN], *path;
	enum jk_err e;

	e = job_path(c, full_name, &path, "api/json?tree=builds%%5Bnumber,queueId,timestamp,"
	    "actions%%5Bparameters%%5Bname,value%%5D%%5D%%5D%%7B%d,%d%%7D", from,
	    from + JK_FIND_PAGE);
	if (e != JK_OK)
		return e;
	if ((e = http_request(h, "GET", path, NULL, "no such job", http_ok_get)) == JK_OK) {
		e = jkmodel_find_build(http_body(h), name, value, queue_id, since_ms, number,
		    scanned, older, perr, sizeof(perr));
		if (e == JK_EPROTO)
			http_parsed(h, "GET", path, e, perr);
	}
	free(path);
	return e;
}

enum jk_err
jk_find_build(struct jk_client *c, const char *full_name, const char *name, const char *value,
    long queue_id, long long since_ms, long *found_queue_id, int *number)
{
	enum jk_err e = JK_ENOTFOUND;
	int from, scanned = 0;
	bool older = false;
	char *jp;

	*found_queue_id = 0;
	*number = 0;
	if (!(jp = jkpath_job(full_name))) {
		errmsg_set(c->http.err, sizeof(c->http.err), "bad job name");
		return JK_EBADREQ;
	}
	/* Only by parameter: a queue id is followed directly. */
	if (name)
		e = find_in_queue(c, jp, name, value, found_queue_id);
	free(jp);
	if (e != JK_ENOTFOUND)
		return e;
	/*
	 * Started: the job's newest builds, a small page at a time, so a hit
	 * among the newest costs one short answer. Only "builds" (Jenkins
	 * exports the newest 100 there): "allBuilds" makes Jenkins load every
	 * build record the job has, a cost that grows with its history.
	 */
	for (from = 0; from < JK_FIND_MAX && !older && e == JK_ENOTFOUND; from += JK_FIND_PAGE) {
		scanned = 0;
		e = find_in_builds(c, full_name, from, name, value, queue_id, since_ms, number,
		    &scanned, &older);
		if (e == JK_ENOTFOUND && scanned < JK_FIND_PAGE)
			break;    /* the job has no more builds */
	}
	return e;
}
