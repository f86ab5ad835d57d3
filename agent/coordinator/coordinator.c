/*
 * coordinator: one per Jenkins master. It is the only process that reads
 * the whole master; node agents ask it for their slice of the map.
 *
 * Two threads, each with its own Jenkins client:
 *  - refresh: every [coordinator] refresh seconds, reads all jobs and all
 *    nodes (one request each), node modes and Node-parameter allowedSlaves
 *    (cached, see below), and swaps in a new project map. A failed read
 *    keeps the last good map: agents keep serving with it.
 *  - manager: the Gearman worker "$host_manager" that answers
 *    project_map:$host, stop:$host and set_description:$host, on the
 *    worker loop (daemon/wloop.h). project_map's {"status": true} is
 *    answered from what the last refresh read of the nodes and their
 *    builds (status.h): no request to Jenkins per answer.
 * The main thread waits for signals (daemon_wait_stop).
 *
 * Request budget: a refresh costs two requests plus config.xml reads only
 * for what changed — a node's mode is re-read when its labels change, a
 * job's allowedSlaves when the job is new or its parameters change — plus
 * at most ALLOWED_REVALIDATE jobs re-read per refresh (round robin), since
 * Jenkins gives no cheap way to see an allowedSlaves edit.
 */
#include "buildref.h"
#include "clock.h"
#include "config.h"
#include "gadmin.h"
#include "gclient.h"
#include "gwconn.h"
#include "jarena.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "projmap.h"
#include "sign.h"
#include "status.h"
#include "strvec.h"
#include "xalloc.h"
#include "daemon/daemon.h"
#include "daemon/defaults.h"
#include "daemon/roles.h"
#include "daemon/shutdown.h"
#include "daemon/wloop.h"

#include <jansson.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* allowedSlaves re-read per refresh, oldest first: an edit in the UI is seen within jobs/10 refreshes. */
#define ALLOWED_REVALIDATE 10
/* At start: how long another coordinator of our name has to answer project_map (see check_name). */
#define NAME_CHECK_MS 5000

/* A cached fact about one node or job, keyed by name and a signature. */
struct mode_entry {
	char        *name;
	char        *sig;       /* the node's labels, joined */
	enum jk_mode mode;
	bool         known;
};

struct allowed_entry {
	char             *job;
	char             *sig;  /* the job's parameter names and types, joined */
	struct pm_allowed a;
	unsigned long     read_at;   /* refresh number of the last read */
};

struct coordinator {
	struct config   *cfg;
	struct sign_key *key;        /* signs every project_map answer */
	char            *url;        /* the master's URL as maps carry it (defaults_master_url) */
	pthread_mutex_t  lock;
	long long        issued_ms;  /* of the last answer, under lock: never goes back */
	struct projmap  *pm;         /* under lock */
	long long        pm_at;      /* when pm was read (clk_now_ms), under lock */
	struct status_snap *status;  /* the nodes and their builds, read with pm; under lock */
	char             last_error[512]; /* last refresh failure; written under lock */
	struct wloop     loop;       /* the manager's connections; woken when the first map is there */

	/* refresh thread only */
	struct jk_job_list    jobs;       /* kept: parsed again only when Jenkins' answer changes */
	uint64_t              jobs_digest;
	struct mode_entry    *modes;
	size_t                nmodes;
	struct allowed_entry *allowed;
	size_t                nallowed;
	unsigned long         refreshes;
};

/* ---- refresh ---- */

static char *
join_labels(const struct jk_node *n)
{
	size_t i, len = 1;
	char *s;

	for (i = 0; i < n->nlabels; i++)
		len += strlen(n->labels[i]) + 1;
	s = xcalloc(1, len);
	for (i = 0; i < n->nlabels; i++) {
		strcat(s, n->labels[i]);
		strcat(s, " ");
	}
	return s;
}

static char *
param_sig(const struct jk_job *j)
{
	size_t i, len = 1;
	char *s;

	for (i = 0; i < j->nparams; i++)
		len += strlen(j->params[i].name) + strlen(j->params[i].type ? j->params[i].type : "") + 2;
	s = xcalloc(1, len);
	for (i = 0; i < j->nparams; i++) {
		strcat(s, j->params[i].name);
		strcat(s, ":");
		strcat(s, j->params[i].type ? j->params[i].type : "");
		strcat(s, ",");
	}
	return s;
}

static const char *
node_param(const struct jk_job *j)
{
	size_t i;

	for (i = 0; i < j->nparams; i++)
		if (j->params[i].kind == JK_PARAM_NODE)
			return j->params[i].name;
	return NULL;
}

static void
modes_free(struct mode_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].sig);
	}
	free(v);
}

/* Modes for nodes, from the cache or config.xml; the cache is rebuilt to hold only current nodes. */
static void
refresh_modes(struct coordinator *co, struct jk_client *jk, const struct jk_node_list *nl,
    enum jk_mode *modes, bool *known)
{
	struct mode_entry *next = xcalloc(nl->n ? nl->n : 1, sizeof(*next));
	size_t i, k;

	for (i = 0; i < nl->n; i++) {
		const struct jk_node *n = &nl->nodes[i];
		char *sig = join_labels(n);
		struct mode_entry *hit = NULL;

		for (k = 0; k < co->nmodes; k++)
			if (co->modes[k].name && !strcmp(co->modes[k].name, n->name) &&
			    !strcmp(co->modes[k].sig, sig))
				hit = &co->modes[k];
		next[i].name = xstrdup(n->name);
		next[i].sig = sig;
		if (hit && hit->known) {
			next[i].mode = hit->mode;
			next[i].known = true;
		} else if (strcmp(n->name, "built-in") == 0) {
			/*
			 * The controller has no config.xml; its mode is unknown,
			 * so it is offered only jobs with a matching label.
			 */
			next[i].known = false;
		} else if (jk_node_mode(jk, n->name, &next[i].mode) == JK_OK) {
			next[i].known = true;
		} else {
			log_warnx("node %s: cannot read its mode (%s); offering it only labelled jobs until it can be read",
			    n->name, jk_client_error(jk));
			next[i].known = false;
		}
		modes[i] = next[i].mode;
		known[i] = next[i].known;
	}
	modes_free(co->modes, co->nmodes);
	co->modes = next;
	co->nmodes = nl->n;
}

static void
allowed_clear(struct pm_allowed *a)
{
	strv_free(a->names, a->n);
	a->names = NULL;
	a->n = 0;
	a->known = false;
	a->all = false;
}

static void
allowed_read(struct coordinator *co, struct jk_client *jk, struct allowed_entry *e, const char *param)
{
	struct pm_allowed a = { 0 };

	if (jk_job_allowed_nodes(jk, e->job, param, &a.all, &a.names, &a.n, &a.multi) == JK_OK) {
		a.known = true;
		allowed_clear(&e->a);
		e->a = a;
	} else if (!e->a.known)
		log_warnx("job %s: cannot read allowed nodes of parameter %s (%s); holding it back",
		    e->job, param, jk_client_error(jk));
	e->read_at = co->refreshes;
}

static void
allowed_free(struct allowed_entry *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(v[i].job);
		free(v[i].sig);
		allowed_clear(&v[i].a);
	}
	free(v);
}

/* allowedSlaves for every job with a Node parameter; out is parallel to jl. */
static void
refresh_allowed(struct coordinator *co, struct jk_client *jk, const struct jk_job_list *jl,
    struct pm_allowed *out)
{
	struct allowed_entry *next = xcalloc(jl->n ? jl->n : 1, sizeof(*next));
	size_t i, k, nnext = 0, revalidated = 0;

	for (i = 0; i < jl->n; i++) {
		const struct jk_job *j = &jl->jobs[i];
		const char *param = node_param(j);
		struct allowed_entry *e;
		char *sig;

		out[i].known = true;
		out[i].all = true;
		if (!param || j->disabled)
			continue;
		sig = param_sig(j);
		e = &next[nnext++];
		e->job = xstrdup(j->full_name);
		for (k = 0; k < co->nallowed; k++) {
			struct allowed_entry *old = &co->allowed[k];
			if (old->job && !strcmp(old->job, j->full_name)) {
				if (!strcmp(old->sig, sig)) {
					e->a = old->a;
					e->read_at = old->read_at;
					memset(&old->a, 0, sizeof(old->a));
				}
				break;
			}
		}
		e->sig = sig;
		if (!e->a.known)
			allowed_read(co, jk, e, param);
		out[i] = e->a;    /* shallow: valid until the next refresh */
	}
	/* Re-read the oldest few, so an edit made in the UI is seen eventually. */
	while (revalidated < ALLOWED_REVALIDATE && revalidated < nnext) {
		struct allowed_entry *oldest = NULL;
		for (k = 0; k < nnext; k++)
			if (next[k].read_at < co->refreshes && (!oldest || next[k].read_at < oldest->read_at))
				oldest = &next[k];
		if (!oldest)
			break;
		for (i = 0; i < jl->n; i++)
			if (!strcmp(jl->jobs[i].full_name, oldest->job)) {
				allowed_read(co, jk, oldest, node_param(&jl->jobs[i]));
				out[i] = oldest->a;
			}
		revalidated++;
	}
	allowed_free(co->allowed, co->nallowed);
	co->allowed = next;
	co->nallowed = nnext;
}

/* A failed read of the master: said once per kind of failure, repeats at the debug level. */
static void
refresh_failed(struct coordinator *co, struct jk_client *jk)
{
	bool repeat = strcmp(co->last_error, jk_client_error(jk)) == 0;
	void (*say)(const char *, ...) = repeat ? log_debug : log_warnx;
	long since;

	pthread_mutex_lock(&co->lock);
	since = co->pm ? (long)((clk_now_ms() - co->pm_at) / 1000) : -1;
	pthread_mutex_unlock(&co->lock);
	if (since >= 0)
		say("cannot refresh the map from %s: %s; keeping the map read %lds ago",
		    co->cfg->url, jk_client_error(jk), since);
	else
		say("cannot read the master %s: %s; no map yet, agents wait",
		    co->cfg->url, jk_client_error(jk));
	pthread_mutex_lock(&co->lock);
	/* Never empty: an empty last_error means the last refresh succeeded (status.h). */
	snprintf(co->last_error, sizeof(co->last_error), "%s",
	    jk_client_error(jk)[0] ? jk_client_error(jk) : "reading the master failed");
	pthread_mutex_unlock(&co->lock);
	metrics_add("jga_jenkins_errors_total", NULL, 1);
}

/* The map from the jobs (co->jobs) and nodes read, with node modes and allowedSlaves from the caches. */
static struct projmap *
build_map(struct coordinator *co, struct jk_client *jk, const struct jk_node_list *nl)
{
	const struct jk_job_list *jl = &co->jobs;
	struct pm_allowed *allowed = xcalloc(jl->n ? jl->n : 1, sizeof(*allowed));
	enum jk_mode *modes = xcalloc(nl->n ? nl->n : 1, sizeof(*modes));
	bool *known = xcalloc(nl->n ? nl->n : 1, sizeof(*known));
	struct pm_input in = {
		.master = co->cfg->coordinator_name, .url = co->url, .naming = co->cfg->function_names,
		.jobs = jl, .allowed = allowed, .nodes = nl, .modes = modes, .mode_known = known,
	};
	struct projmap *pm;

	refresh_modes(co, jk, nl, modes, known);
	refresh_allowed(co, jk, jl, allowed);
	pm = projmap_build(&in);
	free(allowed);
	free(modes);
	free(known);
	return pm;
}

/* Now, in Unix milliseconds. */
static long long
unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Serve pm and st from now on, and forget the last failure (together, so
 * that no status answer pairs a new read with an old error); the map it
 * replaces is returned (NULL the first time), *changed if pm differs from
 * it, *recovered if the refresh before had failed.
 */
static struct projmap *
install_map(struct coordinator *co, struct projmap *pm, struct status_snap *st, bool *changed,
    bool *recovered)
{
	struct status_snap *old_st;
	struct projmap *old;

	pthread_mutex_lock(&co->lock);
	old = co->pm;
	*changed = !old || strcmp(projmap_version(old), projmap_version(pm)) != 0;
	co->pm = pm;
	co->pm_at = clk_now_ms();
	old_st = co->status;
	co->status = st;
	*recovered = co->last_error[0] != '\0';
	co->last_error[0] = '\0';
	pthread_mutex_unlock(&co->lock);
	status_snap_free(old_st);
	/* The manager offers project_map from the first map on: now, not at its next poll timeout. */
	if (!old)
		wloop_wake(&co->loop);
	return old;
}

/* Metrics and log lines for a map just installed from njobs jobs and nnodes nodes. */
static void
report_map(struct coordinator *co, const struct projmap *pm, bool changed, bool recovered, size_t njobs,
    size_t nnodes)
{
	metrics_add("jga_map_refreshes_total", NULL, 1);
	metrics_set("jga_map_functions", NULL, (double)projmap_nfunctions(pm));
	metrics_set("jga_map_version", NULL, (double)strtoul(strndupa(projmap_version(pm), 8), NULL, 16));
	metrics_set("jga_map_read_timestamp_seconds", NULL, (double)time(NULL));
	if (changed)
		log_info("map %s: %zu jobs, %zu not dispatchable, %zu nodes, %zu functions",
		    projmap_version(pm), njobs, projmap_nundispatchable(pm), nnodes, projmap_nfunctions(pm));
	else
		log_debug("map %s unchanged", projmap_version(pm));
	if (recovered)
		log_info("master %s answers again", co->cfg->url);
}

/* Read the master and serve a new map; on failure the last good map stays. */
static int
refresh_once(struct coordinator *co, struct jk_client *jk)
{
	struct jk_node_list nl = { 0 };
	struct status_snap *st;
	struct projmap *pm, *old;
	bool changed, recovered, jobs_changed;

	co->refreshes++;
	if (jk_jobs_list_if_changed(jk, &co->jobs, &co->jobs_digest, &jobs_changed) != JK_OK ||
	    jk_nodes_list(jk, &nl) != JK_OK) {
		refresh_failed(co, jk);
		return -1;
	}
	st = status_snap_new(&nl, unix_ms());
	pm = build_map(co, jk, &nl);
	old = install_map(co, pm, st, &changed, &recovered);
	report_map(co, pm, changed, recovered, co->jobs.n, nl.n);
	projmap_free(old);
	jk_node_list_free(&nl);
	return 0;
}

static void *
refresh_thread(void *arg)
{
	struct coordinator *co = arg;
	struct jk_client *jk = daemon_jenkins_client(co->cfg);

	do {
		refresh_once(co, jk);
	} while (!shutdown_sleep_ms(co->cfg->refresh * 1000L));
	jk_client_free(jk);
	jarena_free();
	return NULL;
}

/* ---- the management worker ---- */

/*
 * The manager is a raw-protocol worker (gwconn, on the worker loop), not
 * a libgearman one: libgearman shrinks its sockets' send buffers to 32 kB,
 * and a big project_map answer then stalls on delayed ACKs (one per
 * buffer). One connection per gearmand, one request at a time.
 */
struct manager {
	struct coordinator *co;
	struct jk_client   *jk;
	bool                offered[CONFIG_MAX_SERVERS];  /* project_map registered on server i */
};

/* A request's answer: data (malloc'd) on success, or why it was refused. */
struct answer {
	char  *data;
	size_t len;
	bool   refused;
	char   why[1024];
};

static void
refuse(struct answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
refuse(struct answer *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
	a->refused = true;
}

/*
 * The full name (copied) of a dispatchable job of the current map that
 * name names; NULL with err otherwise. gearmand is open to anyone: stop:
 * and set_description: act only on builds of jobs this coordinator
 * offers, never on any other job of the master.
 */
static char *
resolve_job(struct coordinator *co, const char *name, char *err, size_t errlen)
{
	const char *full = NULL;
	char *out = NULL;

	pthread_mutex_lock(&co->lock);
	if (!co->pm)
		snprintf(err, errlen, "coordinator %s has not read its master yet", co->cfg->coordinator_name);
	else if (projmap_find_job(co->pm, name, &full, err, errlen) != PROJMAP_FOUND)
		;
	else if (!projmap_job_dispatchable(co->pm, full))
		snprintf(err, errlen, "job \"%s\" is not dispatchable through Gearman; "
		    "only builds of the map's jobs may be stopped or described", full);
	else
		out = xstrdup(full);
	pthread_mutex_unlock(&co->lock);
	return out;
}

/*
 * When an answer is made, in Unix milliseconds, never before the last
 * one's (the wall clock may step back): agents refuse an answer older
 * than the last they took (node/nodemap.c), so a step back must not make
 * this coordinator's own answers look replayed. Under co->lock.
 */
static long long
issue_time_locked(struct coordinator *co)
{
	long long now = unix_ms();

	if (now > co->issued_ms)
		co->issued_ms = now;
	return co->issued_ms;
}

/* The status answer's text (status.h), from the last refresh; under co->lock. */
static char *
status_text_locked(struct coordinator *co, const char *nonce)
{
	struct status_meta meta = {
		.master = co->cfg->coordinator_name, .url = co->url, .issued_ms = issue_time_locked(co),
		.jenkins_error = co->last_error, .refresh_s = co->cfg->refresh, .nonce = nonce,
	};

	return status_render(co->status, &meta);
}

/* The answer, signed (sign.h): agents verify it with the public key before they use it. */
static void
fn_project_map(struct manager *m, const char *arg, size_t len, struct answer *a)
{
	char err[512], nonce[STATUS_NONCE_MAX + 1], *text = NULL;
	enum status_req sr;
	bool has_nonce;

	sr = status_request(arg, len, nonce, &has_nonce, err, sizeof(err));
	pthread_mutex_lock(&m->co->lock);
	if (sr == STATUS_REQ_BAD)
		refuse(a, "project_map: %s", err);
	else if (sr == STATUS_REQ_OK)
		text = status_text_locked(m->co, has_nonce ? nonce : NULL);
	else if (!m->co->pm)
		refuse(a, "coordinator %s has not read its master yet: %s", m->co->cfg->coordinator_name,
		    m->co->last_error[0] ? m->co->last_error : "first refresh in progress");
	else if (!(text = projmap_answer(m->co->pm, arg, len, issue_time_locked(m->co), err, sizeof(err))))
		refuse(a, "project_map: %s", err);
	pthread_mutex_unlock(&m->co->lock);
	if (text) {
		a->data = sign_wrap(m->co->key, text, strlen(text));
		a->len = strlen(a->data);
		free(text);
	}
}

static void
fn_stop(struct manager *m, const char *warg, size_t len, struct answer *a)
{
	struct jk_build b;
	const char *name;
	char err[512] = "", *full;
	json_t *arg;
	int number;
	enum jk_err e;

	if (!(arg = buildref_parse(warg, len, &name, &number, err, sizeof(err)))) {
		refuse(a, "stop: %s", err);
		return;
	}
	full = resolve_job(m->co, name, err, sizeof(err));
	json_decref(arg);
	if (!full) {
		refuse(a, "stop: %s", err);
		return;
	}
	memset(&b, 0, sizeof(b));
	e = jk_build_get(m->jk, full, number, &b);
	if (e == JK_ENOTFOUND)
		refuse(a, "stop: cannot find build %s #%d", full, number);
	else if (e != JK_OK)
		refuse(a, "stop: %s #%d: %s", full, number, jk_client_error(m->jk));
	else if (!b.building)
		refuse(a, "stop: build %s #%d already finished (%s)", full, number,
		    b.result ? b.result : "no result");
	else if (jk_build_stop(m->jk, full, number) != JK_OK)
		refuse(a, "stop: %s #%d: %s", full, number, jk_client_error(m->jk));
	else
		log_info("stopped build %s #%d at a client's request", full, number);
	jk_build_free(&b);
	free(full);
}

static void
fn_set_description(struct manager *m, const char *warg, size_t len, struct answer *a)
{
	const char *name, *desc = "";
	char err[512] = "", *full;
	json_t *arg, *d;
	struct jk_build b;
	int number;
	enum jk_err e;

	if (!(arg = buildref_parse(warg, len, &name, &number, err, sizeof(err)))) {
		refuse(a, "set_description: %s", err);
		return;
	}
	d = json_object_get(arg, "html_description");
	if (d && !json_is_string(d) && !json_is_null(d)) {
		json_decref(arg);
		refuse(a, "set_description: \"html_description\" must be a string");
		return;
	}
	if (json_is_string(d))
		desc = json_string_value(d);
	if (!(full = resolve_job(m->co, name, err, sizeof(err)))) {
		json_decref(arg);
		refuse(a, "set_description: %s", err);
		return;
	}
	memset(&b, 0, sizeof(b));
	e = jk_build_get(m->jk, full, number, &b);
	if (e == JK_ENOTFOUND)
		refuse(a, "set_description: cannot find build %s #%d", full, number);
	else if (e != JK_OK || jk_build_set_description(m->jk, full, number, desc) != JK_OK)
		refuse(a, "set_description: %s #%d: %s", full, number, jk_client_error(m->jk));
	else {
		a->data = xasprintf("Description for Jenkins build %d was updated to %s", number, desc);
		a->len = strlen(a->data);
	}
	jk_build_free(&b);
	free(full);
	json_decref(arg);
}

/* Is fn[0..len) the function name prefix name? */
static bool
prefix_is(const char *fn, size_t len, const char *name)
{
	return len == strlen(name) && strncmp(fn, name, len) == 0;
}

/* One request: run it, answer WORK_COMPLETE, or WORK_WARNING + WORK_FAIL. */
static int
manager_run(struct manager *m, struct gw_conn *c, const struct gw_job *job)
{
	const char *host = m->co->cfg->coordinator_name, *colon = strchr(job->function, ':');
	size_t plen = colon ? (size_t)(colon - job->function) : 0;
	struct answer a = { 0 };
	int rc;

	if (!colon || strcmp(colon + 1, host) != 0)
		refuse(&a, "this worker does not offer %s", job->function);
	else if (prefix_is(job->function, plen, "project_map"))
		fn_project_map(m, job->workload, job->workload_len, &a);
	else if (prefix_is(job->function, plen, "stop"))
		fn_stop(m, job->workload, job->workload_len, &a);
	else if (prefix_is(job->function, plen, "set_description"))
		fn_set_description(m, job->workload, job->workload_len, &a);
	else
		refuse(&a, "this worker does not offer %s", job->function);
	if (a.refused)
		rc = gw_work_warning(c, job->handle, a.why, strlen(a.why)) < 0 ||
		    gw_work_fail(c, job->handle) < 0 ? -1 : 0;
	else
		rc = gw_work_complete(c, job->handle, a.data ? a.data : "", a.data ? a.len : 0);
	free(a.data);
	return rc;
}

/*
 * project_map is offered only once a map exists, so that gearmand never
 * routes a request to a coordinator that would have to refuse it (a second
 * coordinator starting, or this one restarting).
 */
static int
manager_register(struct manager *m, size_t i)
{
	struct gw_conn *c = m->co->loop.slot[i].c;
	char fn[600];
	bool have;

	pthread_mutex_lock(&m->co->lock);
	have = m->co->pm != NULL;
	pthread_mutex_unlock(&m->co->lock);
	if (m->offered[i] || !have)
		return 0;
	snprintf(fn, sizeof(fn), "project_map:%s", m->co->cfg->coordinator_name);
	if (gw_can_do(c, fn) < 0 || gw_grab(c) < 0)
		return -1;
	m->offered[i] = true;
	return 0;
}

/* A connection is up (the loop's connected hook): offer the functions, ask for a request. */
static int
manager_connected(void *arg, size_t i)
{
	struct manager *m = arg;
	const struct config *cfg = m->co->cfg;
	struct gw_conn *c = m->co->loop.slot[i].c;
	char fn[600];

	snprintf(fn, sizeof(fn), "stop:%s", cfg->coordinator_name);
	if (gw_can_do(c, fn) < 0)
		return -1;
	snprintf(fn, sizeof(fn), "set_description:%s", cfg->coordinator_name);
	if (gw_can_do(c, fn) < 0 || manager_register(m, i) < 0 || gw_grab(c) < 0)
		return -1;
	log_info("manager %s serving project_map/stop/set_description:%s on %s", m->co->loop.id,
	    cfg->coordinator_name, gw_peer(c));
	return 0;
}

/*
 * A connection is closing (the loop's closed hook): each loss is said; a
 * server that does not take connections is said once until it does.
 */
static void
manager_closed(void *arg, size_t i, const char *why)
{
	struct manager *m = arg;
	struct wloop_slot *s = &m->co->loop.slot[i];
	const struct config_server *srv = &m->co->cfg->servers[i];

	if (s->c)
		log_warnx("gearman %s: %s; reconnecting", gw_peer(s->c), why);
	else if (!s->down_said) {
		log_warnx("gearman %s:%d: %s; retrying", srv->host, srv->port, why);
		s->down_said = true;
	}
	m->offered[i] = false;
}

/* The loop's tend hook: offer project_map once the first map is there. */
static void
manager_tend(void *arg, size_t i)
{
	struct manager *m = arg;

	if (manager_register(m, i) < 0)
		wloop_close(&m->co->loop, i, gw_error(m->co->loop.slot[i].c));
}

/*
 * A request over the packet limit (gwconn skipped its workload): failed by
 * handle, the connection kept; closing it would make gearmand hand the
 * request out again, forever.
 */
static int
manager_refuse_oversize(struct gw_conn *c, const struct gw_packet *p)
{
	char why[256], *handle = xstrndup(p->arg[0], p->len[0]);
	int rc;

	snprintf(why, sizeof(why), "%.*s: job workload of %zu bytes is over the limit of %u bytes",
	    (int)p->len[1], p->arg[1], p->workload_len, GW_MAX_BODY);
	log_warnx("gearman %s: refused job %s: %s", gw_peer(c), handle, why);
	rc = gw_work_warning(c, handle, why, strlen(why)) < 0 || gw_work_fail(c, handle) < 0 ? -1 : 0;
	free(handle);
	return rc;
}

/* A packet (the loop's packet hook): a request is run, then the next one asked for. */
static void
manager_packet(void *arg, size_t i, struct gw_packet *p)
{
	struct manager *m = arg;
	struct wloop *w = &m->co->loop;
	struct gw_conn *c = w->slot[i].c;
	struct gw_job job;

	switch (p->type) {
	case GW_NO_JOB:
		if (gw_pre_sleep(c) < 0)
			wloop_close(w, i, gw_error(c));
		break;
	case GW_NOOP:
		if (gw_grab(c) < 0)
			wloop_close(w, i, gw_error(c));
		break;
	case GW_JOB_ASSIGN:
	case GW_JOB_ASSIGN_UNIQ:
		if (p->oversize) {
			if (manager_refuse_oversize(c, p) < 0 || gw_grab(c) < 0)
				wloop_close(w, i, gw_error(c));
			break;
		}
		if (gw_job_from_packet(p, &job) < 0) {
			wloop_close(w, i, "malformed JOB_ASSIGN");
			break;
		}
		if (manager_run(m, c, &job) < 0 || gw_grab(c) < 0)
			wloop_close(w, i, gw_error(c));
		gw_job_free(&job);
		break;
	case GW_ERROR:
		log_warnx("gearman %s says: %.*s %.*s", gw_peer(c),
		    (int)(p->nargs > 0 ? p->len[0] : 0), p->nargs > 0 ? p->arg[0] : "",
		    (int)(p->nargs > 1 ? p->len[1] : 0), p->nargs > 1 ? p->arg[1] : "");
		break;
	default:
		break;
	}
}

static bool
manager_round(void *arg)
{
	(void)arg;
	return !shutdown_requested();
}

/* No step: the loop wakes every WLOOP_IDLE_MS, which is soon enough to notice a stop. */
static const struct wloop_ops manager_ops = {
	.round = manager_round,
	.connected = manager_connected,
	.closed = manager_closed,
	.tend = manager_tend,
	.packet = manager_packet,
};

static void *
manager_thread(void *arg)
{
	struct manager m = { .co = arg };

	m.jk = daemon_jenkins_client(m.co->cfg);
	wloop_run(&m.co->loop, &manager_ops, &m);
	jk_client_free(m.jk);
	return NULL;
}

/* Does any of our gearmands have a worker for fn (admin "status")? Unanswered servers count as no. */
static bool
someone_serves(const struct config *cfg, const char *fn)
{
	size_t i, fnlen = strlen(fn);
	char err[256], *st, *line, *save = NULL;
	bool yes = false;

	for (i = 0; i < cfg->nservers && !yes; i++) {
		if (!(st = gadmin_ask(cfg->gearman_tls, cfg->servers[i].host, cfg->servers[i].port, "status", NAME_CHECK_MS,
		    err, sizeof(err))))
			continue;
		for (line = strtok_r(st, "\n", &save); line && !yes; line = strtok_r(NULL, "\n", &save)) {
			const char *workers = strrchr(line, '\t');
			yes = strncmp(line, fn, fnlen) == 0 && line[fnlen] == '\t' && workers && atoi(workers + 1) > 0;
		}
		free(st);
	}
	return yes;
}

/*
 * Before serving: another worker may already answer project_map for our
 * name. One whose answer our key verifies and that names our master is
 * a twin (a restart, a second coordinator for HA): fine. One that names
 * another master means two masters share a name (two on one host before
 * names had port and path, or a name set twice): agents would build from
 * either's map, so refuse to start. An answer our key does not verify is
 * only warned about: agents that trust our key refuse it anyway.
 */
static int
check_name(struct coordinator *co)
{
	const struct config *cfg = co->cfg;
	char fn[600], err[1024], *out = NULL, *text;
	size_t outlen, textlen;
	json_t *m;
	const char *url;
	int rc = 0;

	snprintf(fn, sizeof(fn), "project_map:%s", cfg->coordinator_name);
	if (!someone_serves(cfg, fn) || gclient_call(cfg->gearman_tls, cfg->servers, cfg->nservers, fn, NULL, "{}", 2,
	    NAME_CHECK_MS, &out, &outlen, err, sizeof(err)) != GCLIENT_OK)
		return 0;
	if (!(text = sign_open(co->key, out, outlen, &textlen, err, sizeof(err)))) {
		log_warnx("another worker answers %s, with a map this coordinator's key does not verify (%s); "
		    "agents that trust %s refuse its answers", fn, err, cfg->map_key_file);
		free(out);
		return 0;
	}
	m = json_loadb(text, textlen, 0, NULL);
	url = json_string_value(json_object_get(m, "url"));
	if (!url || strcmp(url, co->url) != 0) {
		log_errorx("another coordinator already serves %s, for the master %s, not %s: two masters "
		    "share the name %s; give this one its own [coordinator] name", fn, url ? url : "(none)",
		    co->url, cfg->coordinator_name);
		rc = -1;
	} else
		log_info("another coordinator serves %s for the same master; answering alongside it", fn);
	json_decref(m);
	free(text);
	free(out);
	return rc;
}

/* The key and the URL maps carry; -1 (logged) if the key cannot be read. */
static int
coordinator_open(struct coordinator *co)
{
	char err[1024];

	if (!(co->key = sign_key_private(co->cfg->map_key_file, err, sizeof(err)))) {
		log_errorx("[coordinator] map_key_file: %s; the coordinator signs every map with it "
		    "(make the pair with: jenkins-gearman-agent keygen)", err);
		return -1;
	}
	if (!(co->url = defaults_master_url(co->cfg->url))) {
		log_errorx("[jenkins] url: no host in the URL");
		return -1;
	}
	return 0;
}

/* After both threads have ended. */
static void
coordinator_free(struct coordinator *co)
{
	sign_key_free(co->key);
	free(co->url);
	projmap_free(co->pm);
	status_snap_free(co->status);
	jk_job_list_free(&co->jobs);
	modes_free(co->modes, co->nmodes);
	allowed_free(co->allowed, co->nallowed);
	wloop_fini(&co->loop);
	pthread_mutex_destroy(&co->lock);
}

int
coordinator_main(struct config *cfg)
{
	struct coordinator co;
	pthread_t refresher, manager;
	char id[300];
	int sig;

	memset(&co, 0, sizeof(co));
	co.cfg = cfg;
	pthread_mutex_init(&co.lock, NULL);
	snprintf(id, sizeof(id), "%s_manager", cfg->coordinator_name);
	wloop_init(&co.loop, cfg, id);
	if (coordinator_open(&co) < 0 || check_name(&co) < 0) {
		coordinator_free(&co);
		return 1;
	}
	shutdown_init();
	if (!cfg->tls_verify)
		log_warnx("TLS certificate verification is off ([jenkins] tls_verify = false)");
	log_info("coordinator %s for %s, refresh every %ds", cfg->coordinator_name, cfg->url, cfg->refresh);

	if (pthread_create(&refresher, NULL, refresh_thread, &co) != 0 ||
	    pthread_create(&manager, NULL, manager_thread, &co) != 0)
		fatalx("cannot start threads");
	metrics_describe("jga_map_refreshes_total", "counter", "Successful reads of the master.");
	metrics_describe("jga_jenkins_errors_total", "counter", "Failed reads of the master.");
	metrics_describe("jga_map_functions", "gauge", "Functions in the map, over all nodes.");
	metrics_describe("jga_map_version", "gauge", "First 32 bits of the map version, as a number.");
	metrics_describe("jga_map_read_timestamp_seconds", "gauge", "When the map was last read.");
	metrics_add("jga_jenkins_errors_total", NULL, 0);
	sig = daemon_wait_stop(cfg);
	log_info("%s: stopping", strsignal(sig));
	shutdown_request();
	pthread_join(manager, NULL);
	pthread_join(refresher, NULL);
	coordinator_free(&co);
	log_info("stopped");
	return 0;
}
