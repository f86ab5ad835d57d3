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
 *    project_map:$host, stop:$host and set_description:$host.
 * The main thread waits for signals.
 *
 * Request budget: a refresh costs two requests plus config.xml reads only
 * for what changed — a node's mode is re-read when its labels change, a
 * job's allowedSlaves when the job is new or its parameters change — plus
 * at most ALLOWED_REVALIDATE jobs re-read per refresh (round robin), since
 * Jenkins gives no cheap way to see an allowedSlaves edit.
 */
#include "buildref.h"
#include "config.h"
#include "daemon.h"
#include "gm.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "projmap.h"
#include "reload.h"
#include "roles.h"
#include "shutdown.h"

#include <jansson.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALLOWED_REVALIDATE 10

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
	pthread_mutex_t  lock;
	struct projmap  *pm;         /* under lock */
	time_t           pm_time;    /* when pm was read, under lock */
	char             last_error[512]; /* last refresh failure; written under lock */

	/* refresh thread only */
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
	s = calloc(1, len);
	for (i = 0; s && i < n->nlabels; i++) {
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
	s = calloc(1, len);
	for (i = 0; s && i < j->nparams; i++) {
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

/* Modes for nodes, from the cache or config.xml; the cache is rebuilt to hold only current nodes. */
static void
refresh_modes(struct coordinator *co, struct jk_client *jk, const struct jk_node_list *nl,
    enum jk_mode *modes, bool *known)
{
	struct mode_entry *next = calloc(nl->n ? nl->n : 1, sizeof(*next));
	size_t i, k;

	for (i = 0; i < nl->n; i++) {
		const struct jk_node *n = &nl->nodes[i];
		char *sig = join_labels(n);
		struct mode_entry *hit = NULL;

		for (k = 0; k < co->nmodes; k++)
			if (co->modes[k].name && !strcmp(co->modes[k].name, n->name) &&
			    !strcmp(co->modes[k].sig, sig))
				hit = &co->modes[k];
		next[i].name = strdup(n->name);
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
	for (k = 0; k < co->nmodes; k++) {
		free(co->modes[k].name);
		free(co->modes[k].sig);
	}
	free(co->modes);
	co->modes = next;
	co->nmodes = nl->n;
}

static void
allowed_clear(struct pm_allowed *a)
{
	jk_strv_free(a->names, a->n);
	a->names = NULL;
	a->n = 0;
	a->known = false;
	a->all = false;
}

static void
allowed_read(struct coordinator *co, struct jk_client *jk, struct allowed_entry *e, const char *param)
{
	struct pm_allowed a = { 0 };

	if (jk_job_allowed_nodes(jk, e->job, param, &a.all, &a.names, &a.n) == JK_OK) {
		a.known = true;
		allowed_clear(&e->a);
		e->a = a;
	} else if (!e->a.known)
		log_warnx("job %s: cannot read allowed nodes of parameter %s (%s); holding it back",
		    e->job, param, jk_client_error(jk));
	e->read_at = co->refreshes;
}

/* allowedSlaves for every job with a Node parameter; out is parallel to jl. */
static void
refresh_allowed(struct coordinator *co, struct jk_client *jk, const struct jk_job_list *jl,
    struct pm_allowed *out)
{
	struct allowed_entry *next = calloc(jl->n ? jl->n : 1, sizeof(*next));
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
		e->job = strdup(j->full_name);
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
	for (k = 0; k < co->nallowed; k++) {
		free(co->allowed[k].job);
		free(co->allowed[k].sig);
		allowed_clear(&co->allowed[k].a);
	}
	free(co->allowed);
	co->allowed = next;
	co->nallowed = nnext;
}

static int
refresh_once(struct coordinator *co, struct jk_client *jk)
{
	struct jk_job_list jl = { 0 };
	struct jk_node_list nl = { 0 };
	struct pm_allowed *allowed = NULL;
	enum jk_mode *modes = NULL;
	bool *known = NULL;
	struct projmap *pm, *old;
	bool changed;

	co->refreshes++;
	if (jk_jobs_list(jk, &jl) != JK_OK || jk_nodes_list(jk, &nl) != JK_OK) {
		time_t since;
		bool repeat = strcmp(co->last_error, jk_client_error(jk)) == 0;
		void (*say)(const char *, ...) = repeat ? log_debug : log_warnx;

		pthread_mutex_lock(&co->lock);
		since = co->pm ? time(NULL) - co->pm_time : -1;
		pthread_mutex_unlock(&co->lock);
		/* Said once per kind of failure; repeats go to the debug level. */
		if (since >= 0)
			say("cannot refresh the map from %s: %s; keeping the map read %lds ago",
			    co->cfg->url, jk_client_error(jk), (long)since);
		else
			say("cannot read the master %s: %s; no map yet, agents wait",
			    co->cfg->url, jk_client_error(jk));
		pthread_mutex_lock(&co->lock);
		snprintf(co->last_error, sizeof(co->last_error), "%s", jk_client_error(jk));
		pthread_mutex_unlock(&co->lock);
		metrics_add("jga_jenkins_errors_total", NULL, 1);
		jk_job_list_free(&jl);
		return -1;
	}
	allowed = calloc(jl.n ? jl.n : 1, sizeof(*allowed));
	modes = calloc(nl.n ? nl.n : 1, sizeof(*modes));
	known = calloc(nl.n ? nl.n : 1, sizeof(*known));
	if (!allowed || !modes || !known)
		fatalx("out of memory");
	refresh_modes(co, jk, &nl, modes, known);
	refresh_allowed(co, jk, &jl, allowed);

	{
		struct pm_input in = {
			.master = co->cfg->coordinator_name, .naming = co->cfg->function_names,
			.jobs = &jl, .allowed = allowed, .nodes = &nl, .modes = modes, .mode_known = known,
		};
		pm = projmap_build(&in);
	}
	if (!pm)
		fatalx("out of memory building the project map");

	pthread_mutex_lock(&co->lock);
	old = co->pm;
	changed = !old || strcmp(projmap_version(old), projmap_version(pm)) != 0;
	co->pm = pm;
	co->pm_time = time(NULL);
	pthread_mutex_unlock(&co->lock);

	metrics_add("jga_map_refreshes_total", NULL, 1);
	metrics_set("jga_map_functions", NULL, (double)projmap_nfunctions(pm));
	metrics_set("jga_map_version", NULL, (double)strtoul(strndupa(projmap_version(pm), 8), NULL, 16));
	metrics_set("jga_map_read_timestamp_seconds", NULL, (double)time(NULL));
	if (changed)
		log_info("map %s: %zu jobs, %zu not dispatchable, %zu nodes, %zu functions",
		    projmap_version(pm), jl.n, projmap_nundispatchable(pm), nl.n, projmap_nfunctions(pm));
	else
		log_debug("map %s unchanged", projmap_version(pm));
	if (co->last_error[0]) {
		log_info("master %s answers again", co->cfg->url);
		pthread_mutex_lock(&co->lock);
		co->last_error[0] = '\0';
		pthread_mutex_unlock(&co->lock);
	}
	projmap_free(old);
	free(allowed);
	free(modes);
	free(known);
	jk_job_list_free(&jl);
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
	return NULL;
}

/* ---- the management worker ---- */

struct manager {
	struct coordinator *co;
	struct jk_client   *jk;
};

/* The job's full name, from the map (copied) or, failing that, as given. */
static char *
resolve_job(struct coordinator *co, const char *name, char *err, size_t errlen)
{
	const char *full = NULL;
	char *out;

	pthread_mutex_lock(&co->lock);
	if (co->pm)
		full = projmap_find_job(co->pm, name, err, errlen);
	out = strdup(full ? full : name);
	pthread_mutex_unlock(&co->lock);
	if (full == NULL && strstr(err, "ambiguous")) {
		free(out);
		return NULL;
	}
	return out;
}

static void *
fn_project_map(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
	struct manager *m = ctx;
	char err[512], *out;

	pthread_mutex_lock(&m->co->lock);
	if (!m->co->pm) {
		pthread_mutex_unlock(&m->co->lock);
		return gm_job_refuse(job, ret, "coordinator %s has not read its master yet: %s",
		    m->co->cfg->coordinator_name,
		    m->co->last_error[0] ? m->co->last_error : "first refresh in progress");
	}
	out = projmap_answer(m->co->pm, gearman_job_workload(job), gearman_job_workload_size(job),
	    err, sizeof(err));
	pthread_mutex_unlock(&m->co->lock);
	if (!out)
		return gm_job_refuse(job, ret, "project_map: %s", err);
	*size = strlen(out);
	*ret = GEARMAN_SUCCESS;
	return out;
}

static void *
fn_stop(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
	struct manager *m = ctx;
	struct jk_build b;
	const char *name;
	char err[512] = "", *full;
	json_t *arg;
	int number;
	enum jk_err e;

	if (!(arg = buildref_parse(gearman_job_workload(job), gearman_job_workload_size(job), &name, &number, err, sizeof(err))))
		return gm_job_refuse(job, ret, "stop: %s", err);
	if (!(full = resolve_job(m->co, name, err, sizeof(err)))) {
		json_decref(arg);
		return gm_job_refuse(job, ret, "stop: %s", err);
	}
	json_decref(arg);
	memset(&b, 0, sizeof(b));
	e = jk_build_get(m->jk, full, number, &b);
	if (e == JK_ENOTFOUND) {
		gm_job_refuse(job, ret, "stop: cannot find build %s #%d", full, number);
		goto out;
	}
	if (e != JK_OK) {
		gm_job_refuse(job, ret, "stop: %s #%d: %s", full, number, jk_client_error(m->jk));
		goto out;
	}
	if (!b.building) {
		gm_job_refuse(job, ret, "stop: build %s #%d already finished (%s)", full, number,
		    b.result ? b.result : "no result");
		goto out;
	}
	if (jk_build_stop(m->jk, full, number) != JK_OK) {
		gm_job_refuse(job, ret, "stop: %s #%d: %s", full, number, jk_client_error(m->jk));
		goto out;
	}
	log_info("stopped build %s #%d at a client's request", full, number);
	*ret = GEARMAN_SUCCESS;
out:
	jk_build_free(&b);
	free(full);
	*size = 0;
	return NULL;
}

static void *
fn_set_description(gearman_job_st *job, void *ctx, size_t *size, gearman_return_t *ret)
{
	struct manager *m = ctx;
	const char *name, *desc = "";
	char err[512] = "", *full, *out = NULL;
	json_t *arg, *d;
	struct jk_build b;
	int number;
	enum jk_err e;

	*size = 0;
	if (!(arg = buildref_parse(gearman_job_workload(job), gearman_job_workload_size(job), &name, &number, err, sizeof(err))))
		return gm_job_refuse(job, ret, "set_description: %s", err);
	d = json_object_get(arg, "html_description");
	if (d && !json_is_string(d) && !json_is_null(d)) {
		json_decref(arg);
		return gm_job_refuse(job, ret, "set_description: \"html_description\" must be a string");
	}
	if (json_is_string(d))
		desc = json_string_value(d);
	if (!(full = resolve_job(m->co, name, err, sizeof(err)))) {
		json_decref(arg);
		return gm_job_refuse(job, ret, "set_description: %s", err);
	}
	memset(&b, 0, sizeof(b));
	e = jk_build_get(m->jk, full, number, &b);
	if (e == JK_ENOTFOUND)
		gm_job_refuse(job, ret, "set_description: cannot find build %s #%d", full, number);
	else if (e != JK_OK || jk_build_set_description(m->jk, full, number, desc) != JK_OK)
		gm_job_refuse(job, ret, "set_description: %s #%d: %s", full, number, jk_client_error(m->jk));
	else if (asprintf(&out, "Description for Jenkins build %d was updated to %s", number, desc) < 0)
		out = NULL;
	if (out) {
		*size = strlen(out);
		*ret = GEARMAN_SUCCESS;
	}
	jk_build_free(&b);
	free(full);
	json_decref(arg);
	return out;
}

/*
 * project_map is offered only once a map exists, so that gearmand never
 * routes a request to a coordinator that would have to refuse it (a second
 * coordinator starting, or this one restarting). Called before each work().
 */
static void
manager_offer_map(struct manager *m, gearman_worker_st *w, bool *offered)
{
	char fn[600];
	bool have;

	pthread_mutex_lock(&m->co->lock);
	have = m->co->pm != NULL;
	pthread_mutex_unlock(&m->co->lock);
	if (*offered || !have)
		return;
	snprintf(fn, sizeof(fn), "project_map:%s", m->co->cfg->coordinator_name);
	gearman_worker_add_function(w, fn, 0, fn_project_map, m);
	*offered = true;
}

static gearman_worker_st *
manager_connect(struct manager *m, char *err, size_t errlen)
{
	const struct config *cfg = m->co->cfg;
	char id[300], fn[600];
	gearman_worker_st *w;

	snprintf(id, sizeof(id), "%s_manager", cfg->coordinator_name);
	if (!(w = gm_worker_new(cfg->servers, cfg->nservers, id, 1000, err, errlen)))
		return NULL;
	snprintf(fn, sizeof(fn), "stop:%s", cfg->coordinator_name);
	gearman_worker_add_function(w, fn, 0, fn_stop, m);
	snprintf(fn, sizeof(fn), "set_description:%s", cfg->coordinator_name);
	gearman_worker_add_function(w, fn, 0, fn_set_description, m);
	return w;
}

static void *
manager_thread(void *arg)
{
	struct manager m = { .co = arg };
	struct gm_backoff bo;
	gearman_worker_st *w = NULL;
	bool connected = false, offered = false;
	char err[512];

	m.jk = daemon_jenkins_client(m.co->cfg);
	gm_backoff_init(&bo, 500, 30000);
	while (!shutdown_requested()) {
		gearman_return_t rc;

		if (!w) {
			if (!(w = manager_connect(&m, err, sizeof(err))))
				fatalx("%s", err);
			offered = false;
		}
		manager_offer_map(&m, w, &offered);
		rc = gearman_worker_work(w);
		if (!gm_is_connection_error(rc)) {
			if (!connected)
				log_info("manager %s_manager serving project_map/stop/set_description:%s",
				    m.co->cfg->coordinator_name, m.co->cfg->coordinator_name);
			connected = true;
			gm_backoff_reset(&bo);
			continue;
		}
		/* Recreate the worker so its id is sent again on the new connection. */
		log_warnx("gearman: %s; reconnecting", gearman_worker_error(w));
		gearman_worker_free(w);
		w = NULL;
		connected = false;
		shutdown_sleep_ms(gm_backoff_next(&bo));
	}
	if (w)
		gearman_worker_free(w);
	jk_client_free(m.jk);
	return NULL;
}

int
coordinator_main(struct config *cfg)
{
	struct coordinator co;
	pthread_t refresher, manager;
	int sig;

	memset(&co, 0, sizeof(co));
	co.cfg = cfg;
	pthread_mutex_init(&co.lock, NULL);
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
	for (int i = 0; (sig = shutdown_wait_signal(1000)) == 0 || sig == SIGHUP; i++) {
		if (sig == SIGHUP)
			reload_config(cfg);
		if (i % 5 == 0)
			daemon_write_metrics(cfg);
	}
	log_info("%s: stopping", strsignal(sig));
	shutdown_request();
	pthread_join(manager, NULL);
	pthread_join(refresher, NULL);

	projmap_free(co.pm);
	{
		size_t i;
		for (i = 0; i < co.nmodes; i++) {
			free(co.modes[i].name);
			free(co.modes[i].sig);
		}
		free(co.modes);
		for (i = 0; i < co.nallowed; i++) {
			free(co.allowed[i].job);
			free(co.allowed[i].sig);
			allowed_clear(&co.allowed[i].a);
		}
		free(co.allowed);
	}
	pthread_mutex_destroy(&co.lock);
	log_info("stopped");
	return 0;
}
