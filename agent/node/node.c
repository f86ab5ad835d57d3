/*
 * node: the node agent role, one per Jenkins node, and the owner of its
 * shared state (node.h): the map, claims, GRABs out, the executor table.
 *
 * Threads: the main thread waits for signals; the mapper asks the
 * coordinator (project_map:$host) for this node's slice of the map and
 * keeps asking with the version it holds; the dispatcher keeps the
 * node's Gearman worker connections (dispatch.c); one executor thread
 * per Jenkins executor runs the builds it is handed (executor.c).
 *
 * Until the coordinator answers, nothing is registered. When it stops
 * answering, the last map stays in force.
 */
#include "node.h"

#include "advert.h"
#include "daemon/daemon.h"
#include "backoff.h"
#include "capacity.h"
#include "clock.h"
#include "gclient.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "daemon/roles.h"
#include "daemon/shutdown.h"
#include "state.h"
#include "xalloc.h"

#include <jansson.h>

#include <malloc.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The coordinator answers project_map from the map it holds in memory; no
 * answer within this is taken as none: the mapper backs off and keeps the
 * map it holds.
 */
#define MAP_CALL_TIMEOUT_MS  5000
/* jga_map_version shows the version's first 8 hex digits: 32 bits, exact in a double. */
#define MAP_VERSION_GAUGE_DIGITS 8

static bool
offering_locked(const struct node *n)
{
	return n->map && n->map->online && !n->local_offline && !shutdown_requested();
}

char **
node_offered_functions(struct node *n, size_t *count, unsigned *fn_gen)
{
	char **v;
	size_t i;

	pthread_mutex_lock(&n->lock);
	*fn_gen = n->fn_gen;
	*count = 0;
	v = xcalloc(offering_locked(n) ? n->map->nfns + 1 : 1, sizeof(char *));
	for (i = 0; offering_locked(n) && i < n->map->nfns; i++)
		v[(*count)++] = xstrdup(n->map->fns[i].name);
	pthread_mutex_unlock(&n->lock);
	return v;
}

unsigned
node_functions_gen(struct node *n)
{
	unsigned g;

	pthread_mutex_lock(&n->lock);
	g = n->fn_gen;
	pthread_mutex_unlock(&n->lock);
	return g;
}

bool
node_lookup_function(struct node *n, const char *fn, char **job, char **pin)
{
	bool found = false;
	size_t i;

	pthread_mutex_lock(&n->lock);
	for (i = 0; offering_locked(n) && i < n->map->nfns; i++)
		if (strcmp(n->map->fns[i].name, fn) == 0) {
			*job = xstrdup(n->map->fns[i].job);
			*pin = xstrdup(n->map->fns[i].pin);
			found = true;
			break;
		}
	pthread_mutex_unlock(&n->lock);
	return found;
}

char *
node_labels_json(struct node *n)
{
	json_t *a = json_array();
	char *out;
	size_t i;

	pthread_mutex_lock(&n->lock);
	for (i = 0; n->map && i < n->map->nlabels; i++)
		json_array_append_new(a, json_string(n->map->labels[i]));
	pthread_mutex_unlock(&n->lock);
	out = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return out;
}

int
node_desired_executors(struct node *n)
{
	int d;

	pthread_mutex_lock(&n->lock);
	d = n->map ? n->map->executors : 0;
	pthread_mutex_unlock(&n->lock);
	return d;
}

bool
node_wants_executor_locked(const struct node *n, int index)
{
	return n->map && index < n->map->executors;
}

void
node_wake_dispatcher(struct node *n)
{
	if (n->dispatch)
		dispatch_wake(n->dispatch);
}

void
node_wake_all(struct node *n)
{
	int i;

	pthread_mutex_lock(&n->lock);
	for (i = 0; i < n->nex; i++)
		if (n->ex[i])
			executor_wake_locked(n->ex[i]);
	pthread_mutex_unlock(&n->lock);
	node_wake_dispatcher(n);
}

static bool
holds_locked(struct node *n, size_t server, unsigned conn_gen, const char *fn)
{
	int i;

	for (i = 0; i < n->nex; i++) {
		const char *f = n->ex[i] ? executor_held_function_locked(n->ex[i], server, conn_gen) : NULL;
		if (f && (!fn || strcmp(f, fn) == 0))
			return true;
	}
	return false;
}

bool
node_holds(struct node *n, size_t server, unsigned conn_gen, const char *fn)
{
	bool held;

	pthread_mutex_lock(&n->lock);
	held = holds_locked(n, server, conn_gen, fn);
	pthread_mutex_unlock(&n->lock);
	return held;
}

bool
node_holds_unique(struct node *n, const char *unique)
{
	bool held = false;
	int i;

	pthread_mutex_lock(&n->lock);
	for (i = 0; i < n->nex && !held; i++)
		held = n->ex[i] && executor_held_unique_locked(n->ex[i], unique);
	pthread_mutex_unlock(&n->lock);
	return held;
}

/* ---- capacity: gather the inputs, decide (capacity.c), apply ---- */

/* A free executor thread within the map's count, not reserved for a GRAB, or -1. */
static int
free_executor_locked(struct node *n)
{
	int i;

	for (i = 0; i < n->nex && node_wants_executor_locked(n, i); i++)
		if (n->ex[i] && executor_free_locked(n->ex[i]))
			return i;
	return -1;
}

/* The node's side of the capacity view, with Jenkins' answer (NULL: not asked). */
static void
capacity_gather_locked(struct node *n, struct capacity_view *v, const struct capacity_answer *a,
    bool quieting)
{
	v->offering = offering_locked(n);
	v->single_use = n->single_use;
	v->recheck_due = clk_passed(n->recheck_at);
	v->free_executor = free_executor_locked(n);
	v->starting = n->starting;
	v->grabs_out = n->grabs_out;
	v->pipelines_waiting = 0;
	v->jenkins = a;
	v->quieting = quieting;
}

/* Pipeline runs of ours that no executor of the node shows (executor_pipeline_waiting_locked). */
static int
pipelines_waiting_locked(struct node *n, const struct jk_node *info)
{
	int i, k = 0;

	for (i = 0; i < n->nex; i++)
		if (n->ex[i] && executor_pipeline_waiting_locked(n->ex[i], info->running, info->nrunning))
			k++;
	return k;
}

/* Is the master quieting down? Asked again once the last answer is stale (capacity_quiet_fresh). */
static bool
master_quieting(struct node *n, struct jk_client *jk)
{
	bool q, fresh;

	pthread_mutex_lock(&n->lock);
	fresh = capacity_quiet_fresh(n->quiet_seen, n->quiet_stale, clk_now_ms());
	q = n->quieting;
	pthread_mutex_unlock(&n->lock);
	if (fresh)
		return q;
	if (jk_master_quieting(jk, &q) != JK_OK)
		return false;	/* the node look answered: a failure here is not worth a stop */
	pthread_mutex_lock(&n->lock);
	n->quieting = q;
	n->quiet_stale = false;
	n->quiet_seen = clk_now_ms();
	pthread_mutex_unlock(&n->lock);
	return q;
}

/* Say why the node takes no jobs ("": it takes them again), once per change of reason. */
static void
note_capacity_locked(struct node *n, const char *why, const char *detail, bool warn)
{
	if (strcmp(why, n->capacity_note) == 0)
		return;
	if (why[0] && warn)
		log_warnx("not taking jobs: %s%s", why, detail);
	else if (why[0])
		log_info("not taking jobs: %s%s", why, detail);
	else
		log_info("taking jobs again%s", detail);
	n->capacity_note = why;
}

/*
 * A job waits, but every executor thread runs a job of ours. Each notices
 * its build's end only at its next look, seconds apart; one look at the
 * node (its executors' current builds) tells them all, once a recheck.
 */
static int
nudge_executors(struct node *n, struct jk_client *jk)
{
	struct jk_node info;
	enum jk_err e;
	int i;

	memset(&info, 0, sizeof(info));
	e = jk_node_get(jk, n->cfg->node_name, &info);
	pthread_mutex_lock(&n->lock);
	for (i = 0; e == JK_OK && i < n->nex; i++)
		if (n->ex[i])
			executor_poll_if_gone_locked(n->ex[i], info.running, info.nrunning);
	n->recheck_at = clk_now_ms() + capacity_nudge_recheck_ms(e == JK_OK);
	pthread_mutex_unlock(&n->lock);
	jk_node_free(&info);
	return NODE_NO_ROOM;
}

/* Carry out a decision made with Jenkins' answer: node_grab_reserve's result. */
static int
capacity_apply_locked(struct node *n, const struct capacity_decision *d,
    const struct capacity_answer *a, struct jk_client *jk)
{
	bool unreachable = d->reason == CAP_REASON_UNREACHABLE;
	char detail[160];

	switch (d->verdict) {
	case CAP_GRAB:
		executor_reserve_locked(n->ex[d->executor], true);
		n->grabs_out++;
		snprintf(detail, sizeof(detail), ": %d idle executor(s)", d->free_execs);
		note_capacity_locked(n, "", detail, false);
		return d->executor;
	case CAP_NO_ROOM:
		metrics_add(unreachable ? "jga_jenkins_errors_total" : "jga_grabs_skipped_total", NULL, 1);
		n->recheck_at = clk_now_ms() + d->recheck_ms;
		if (unreachable)
			snprintf(detail, sizeof(detail), " (%.120s)", jk_client_error(jk));
		else
			snprintf(detail, sizeof(detail), " (%d idle, %d being started by this agent, "
			    "%d Pipeline run(s) of its waiting for one)", a->idle_executors, n->starting,
			    d->pipelines_waiting);
		note_capacity_locked(n, capacity_reason_text(d->reason), detail, unreachable);
		return NODE_NO_ROOM;
	default:
		return NODE_BUSY;	/* changed while we looked: wait for the wake-up that says so */
	}
}

int
node_grab_reserve(struct node *n, struct jk_client *jk)
{
	struct capacity_view v;
	struct capacity_decision d;
	struct capacity_answer a;
	struct jk_node info;
	bool quiet;
	int r;

	pthread_mutex_lock(&n->lock);
	capacity_gather_locked(n, &v, NULL, false);
	d = capacity_decide(&v);
	pthread_mutex_unlock(&n->lock);
	if (d.verdict == CAP_BUSY)
		return NODE_BUSY;
	if (d.verdict == CAP_LATER)
		return NODE_LATER;
	if (d.verdict == CAP_NUDGE)
		return nudge_executors(n, jk);

	memset(&info, 0, sizeof(info));
	a.ok = jk_node_get(jk, n->cfg->node_name, &info) == JK_OK;
	a.offline = info.offline;
	a.temp_offline = info.temp_offline;
	a.idle_executors = info.idle_executors;
	quiet = capacity_ask_quieting(&a) && master_quieting(n, jk);

	pthread_mutex_lock(&n->lock);
	capacity_gather_locked(n, &v, &a, quiet);
	if (a.ok)
		v.pipelines_waiting = pipelines_waiting_locked(n, &info);
	d = capacity_decide(&v);
	r = capacity_apply_locked(n, &d, &a, jk);
	pthread_mutex_unlock(&n->lock);
	jk_node_free(&info);
	return r;
}

/* Is ex reserved for a GRAB out? Then it no longer is. */
static bool
release_locked(struct node *n, int ex)
{
	if (ex < 0 || ex >= n->nex || !n->ex[ex] || !executor_reserved_locked(n->ex[ex]))
		return false;
	executor_reserve_locked(n->ex[ex], false);
	n->grabs_out--;
	return true;
}

void
node_grab_release(struct node *n, int ex)
{
	pthread_mutex_lock(&n->lock);
	release_locked(n, ex);
	pthread_mutex_unlock(&n->lock);
}

enum node_assign
node_assign_job(struct node *n, int reserved_ex, struct gw_job *job, size_t server, unsigned conn_gen)
{
	struct assign_view v;
	struct assign_decision d;

	pthread_mutex_lock(&n->lock);
	v.reserved = release_locked(n, reserved_ex) ? reserved_ex : -1;
	v.free_executor = free_executor_locked(n);
	v.stopping = shutdown_requested();
	v.conn_holds_other = holds_locked(n, server, conn_gen, NULL);
	d = assign_decide(&v);
	if (d.verdict == ASSIGN_GIVEN) {
		n->starting++;	/* a claim, until its build starts (node_claim) */
		executor_give_locked(n->ex[d.executor], job, server, conn_gen);
	}
	pthread_mutex_unlock(&n->lock);
	return d.verdict == ASSIGN_GIVEN ? NODE_JOB_GIVEN :
	    d.verdict == ASSIGN_HAND_BACK ? NODE_JOB_HAND_BACK : NODE_JOB_REFUSE_NO_EXECUTOR;
}

long long
node_recheck_at_ms(struct node *n)
{
	long long at;

	pthread_mutex_lock(&n->lock);
	at = n->recheck_at;
	pthread_mutex_unlock(&n->lock);
	return at;
}

void
node_set_jobs_wait(struct node *n, bool on)
{
	pthread_mutex_lock(&n->lock);
	n->jobs_wait = on;
	pthread_mutex_unlock(&n->lock);
}

bool
node_jobs_wait(struct node *n)
{
	bool on;

	pthread_mutex_lock(&n->lock);
	on = n->jobs_wait;
	pthread_mutex_unlock(&n->lock);
	return on;
}

void
node_claim(struct node *n, enum node_claim *c, enum node_claim to)
{
	bool freed;

	pthread_mutex_lock(&n->lock);
	/*
	 * Blocked: Jenkins may show its executor idle again (a build that
	 * started took it), and the master may be quieting down: ask again.
	 */
	freed = *c == CLAIM_STARTING && to == CLAIM_BLOCKED;
	if (freed)
		n->quiet_stale = true;
	if (*c == CLAIM_STARTING && n->starting > 0)
		n->starting--;
	if (to == CLAIM_STARTING)
		n->starting++;
	*c = to;
	if (freed)
		n->recheck_at = clk_now_ms();
	pthread_mutex_unlock(&n->lock);
	if (freed)
		node_wake_dispatcher(n);
}

bool
node_take_room_hint(struct node *n)
{
	bool hint;

	pthread_mutex_lock(&n->lock);
	hint = n->room_hint;
	n->room_hint = false;
	pthread_mutex_unlock(&n->lock);
	return hint;
}

void
node_job_done(struct node *n, enum node_claim *c)
{
	node_claim(n, c, CLAIM_NONE);
	pthread_mutex_lock(&n->lock);
	n->room_hint = true;
	/* An executor may be free now: look at Jenkins again at once. */
	n->recheck_at = clk_now_ms();
	pthread_mutex_unlock(&n->lock);
	node_wake_dispatcher(n);
}

void
node_set_single_use(struct node *n, bool on)
{
	pthread_mutex_lock(&n->lock);
	n->single_use = on;
	pthread_mutex_unlock(&n->lock);
	node_wake_dispatcher(n);
}

void
node_set_local_offline(struct node *n)
{
	pthread_mutex_lock(&n->lock);
	n->local_offline = true;
	n->single_use = false;
	n->fn_gen++;
	pthread_mutex_unlock(&n->lock);
	node_wake_dispatcher(n);
}

/* ---- the mapper ---- */

/* Start executor threads up to the map's count; extra ones stop themselves. */
static void
adjust_executors(struct node *n)
{
	int want = node_desired_executors(n), i;

	for (i = 0; i < want; i++) {
		struct executor *e;

		pthread_mutex_lock(&n->lock);
		e = n->ex[i];
		pthread_mutex_unlock(&n->lock);
		if (e && !executor_finished(e))
			continue;
		if (e) {
			/* Out of the table first: the capacity and wake-up functions look at it. */
			pthread_mutex_lock(&n->lock);
			n->ex[i] = NULL;
			pthread_mutex_unlock(&n->lock);
			executor_join(e);
		}
		e = executor_start(n, i);
		pthread_mutex_lock(&n->lock);
		n->ex[i] = e;
		if (i + 1 > n->nex)
			n->nex = i + 1;
		pthread_mutex_unlock(&n->lock);
	}
	node_wake_all(n);
}

static void
mapper_install(struct node *n, struct nodemap *m)
{
	struct nodemap *old;

	pthread_mutex_lock(&n->lock);
	old = n->map;
	n->map = m;
	n->fn_gen++;
	/* The coordinator has seen the node offline: from now on the map decides. */
	if (!m->online)
		n->local_offline = false;
	pthread_mutex_unlock(&n->lock);
	log_info("map %s: %zu functions, %d executors, node %s", m->version, m->nfns,
	    m->executors, m->online ? "online" : "offline");
	metrics_set("jga_registered_functions", NULL, (double)m->nfns);
	metrics_set("jga_map_version", NULL,
	    (double)strtoul(strndupa(m->version, MAP_VERSION_GAUGE_DIGITS), NULL, 16));
	nodemap_free(old);
	adjust_executors(n);
}

static void *
mapper_thread(void *arg)
{
	struct node *n = arg;
	const struct config *cfg = n->cfg;
	struct backoff bo;
	char fn[600], err[1024], *reply, *req;
	bool failing = false;

	snprintf(fn, sizeof(fn), "project_map:%s", cfg->coordinator_name);
	backoff_init(&bo, BACKOFF_GEARMAN_MIN_MS, BACKOFF_GEARMAN_MAX_MS);
	while (!shutdown_requested()) {
		struct nodemap *m;
		long wait_ms = cfg->refresh * 1000L;
		size_t replylen;

		pthread_mutex_lock(&n->lock);
		req = nodemap_request(&n->trust, n->map ? n->map->version : NULL);
		pthread_mutex_unlock(&n->lock);
		if (gclient_call(cfg->gearman_tls, cfg->servers, cfg->nservers, fn, NULL, req, strlen(req),
		    MAP_CALL_TIMEOUT_MS, &reply, &replylen, err, sizeof(err)) < 0) {
			if (!failing)
				log_warnx("%s%s", err, n->map ? "; keeping the current map" :
				    "; registering nothing until the coordinator answers");
			failing = true;
			wait_ms = backoff_next(&bo);
		} else {
			bool unchanged;

			m = nodemap_accept(&n->trust, reply, replylen, &unchanged, err, sizeof(err));
			free(reply);
			if (failing)
				log_info("coordinator %s answers again", cfg->coordinator_name);
			failing = false;
			backoff_reset(&bo);
			metrics_set("jga_map_answered_timestamp_seconds", NULL, (double)time(NULL));
			if (m) {
				mapper_install(n, m);
				/* Copying a big map left freed pages behind: give them back. */
				malloc_trim(0);
			} else if (!unchanged) {
				/* Anyone may answer project_map: a refused answer is logged and counted, never used. */
				metrics_add("jga_map_rejected_total", NULL, 1);
				log_warnx("map refused: the answer to %s cannot be used: %s; %s",
				    fn, err, n->map ? "keeping the current map" :
				    "registering nothing until the coordinator sends a map");
			}
		}
		free(req);
		shutdown_sleep_ms(wait_ms);
	}
	return NULL;
}

/*
 * A second stop signal, or SIGQUIT: leave now. Builds keep running in
 * Jenkins; their records in state_dir let a restarted agent re-attach.
 */
static void __attribute__((noreturn))
quit_now(void)
{
	log_warnx("leaving at once; running builds go on in Jenkins and are re-attached after a restart");
	_exit(0);
}

static void
describe_metrics(void)
{
	metrics_describe("jga_builds_started_total", "counter", "Builds this agent started in Jenkins.");
	metrics_describe("jga_builds_finished_total", "counter", "Builds followed to their end, by result.");
	metrics_describe("jga_dispatch_latency_seconds", "histogram", "From taking a job to its build starting.");
	metrics_describe("jga_jobs_refused_total", "counter", "Jobs answered with WORK_WARNING and WORK_FAIL.");
	metrics_describe("jga_grabs_skipped_total", "counter", "Looks at Jenkins that found no free executor.");
	metrics_describe("jga_gearman_reconnects_total", "counter", "Gearman connections lost and re-made.");
	metrics_describe("jga_jenkins_errors_total", "counter", "Failed requests to the master.");
	metrics_describe("jga_undeclared_parameters_total", "counter",
	    "Client parameters of triggered builds that Jenkins dropped: the job does not declare them.");
	metrics_describe("jga_registered_functions", "gauge", "Functions this node offers.");
	metrics_describe("jga_map_version", "gauge", "First 32 bits of the map version, as a number.");
	metrics_describe("jga_map_answered_timestamp_seconds", "gauge", "When the coordinator last answered.");
	metrics_describe("jga_map_rejected_total", "counter",
	    "Answers to project_map refused: unsigned, badly signed, another master's, replayed, bad entries.");
	metrics_add("jga_builds_started_total", NULL, 0);
	metrics_add("jga_jobs_refused_total", NULL, 0);
	metrics_add("jga_grabs_skipped_total", NULL, 0);
	metrics_add("jga_gearman_reconnects_total", NULL, 0);
	metrics_add("jga_jenkins_errors_total", NULL, 0);
	metrics_add("jga_undeclared_parameters_total", NULL, 0);
	metrics_add("jga_map_rejected_total", NULL, 0);
}

/*
 * A build record older than this is dropped at start: its job has long
 * been given up by gearmand's clients, and a lookup that old would read a
 * job's whole history.
 */
#define RECORD_MAX_AGE_S	(2 * 86400)

/*
 * Open state_dir. Builds started before a restart: their jobs come back
 * from gearmand and are re-attached (executor.c). Old ones are dropped.
 */
static void
open_records(struct node *n)
{
	const struct config *cfg = n->cfg;
	char err[600];
	struct build_rec *recs;
	size_t nrec, k;

	if (cfg->state_root && state_make_dir(cfg->state_root, cfg->state_dir, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (!(n->state = state_open(cfg->state_dir, err, sizeof(err))))
		fatalx("%s", err);
	recs = state_list(n->state, &nrec);
	for (k = 0; k < nrec; k++) {
		if (recs[k].time < time(NULL) - RECORD_MAX_AGE_S) {
			log_info("forgetting build record of %s (unique %s): older than two days",
			    recs[k].job, recs[k].unique);
			state_remove(n->state, recs[k].unique);
		} else
			log_info("build %s %s%ld (unique %s) is re-attached when its job comes back",
			    recs[k].job, recs[k].number ? "#" : "queue item ",
			    recs[k].number ? (long)recs[k].number : recs[k].queue_id, recs[k].unique);
	}
	free(recs);
}

/* Does an executor thread still run (a job of ours being followed to its end)? */
static bool
executors_running(struct node *n)
{
	bool running = false;
	int i;

	pthread_mutex_lock(&n->lock);
	for (i = 0; i < n->nex; i++)
		if (n->ex[i] && !executor_finished(n->ex[i]))
			running = true;
	pthread_mutex_unlock(&n->lock);
	return running;
}

int
node_main(struct config *cfg)
{
	struct node n;
	struct advert *adv;
	pthread_t mapper;
	char err[1024];
	int sig, i;

	memset(&n, 0, sizeof(n));
	n.cfg = cfg;
	n.capacity_note = "";
	pthread_mutex_init(&n.lock, NULL);
	shutdown_init();
	describe_metrics();
	if (!cfg->tls_verify)
		log_warnx("TLS certificate verification is off ([jenkins] tls_verify = false)");
	log_info("node %s of %s (coordinator %s, state_dir %s)", cfg->node_name, cfg->url,
	    cfg->coordinator_name, cfg->state_dir);

	if (nodemap_trust_open(&n.trust, cfg->map_public_key_file, cfg->url, cfg->node_name,
	    err, sizeof(err)) < 0) {
		log_errorx("%s", err);
		pthread_mutex_destroy(&n.lock);
		return 1;
	}
	open_records(&n);
	dispatch_start(&n);
	adv = advert_start(&n);
	if (pthread_create(&mapper, NULL, mapper_thread, &n) != 0)
		fatalx("cannot start the map thread");
	if ((sig = daemon_wait_stop(cfg)) == SIGQUIT)
		quit_now();
	log_info("%s: no new jobs; running builds are followed to their end (signal again to leave at once)",
	    strsignal(sig));
	shutdown_request();
	node_wake_all(&n);
	pthread_join(mapper, NULL);
	advert_stop(adv);
	/* Graceful: wait for the executors, still listening for a second signal. */
	while (executors_running(&n))
		if (daemon_wait_signal(cfg, DAEMON_DRAIN_POLL_MS))
			quit_now();
	dispatch_join(n.dispatch);
	for (i = 0; i < n.nex; i++)
		if (n.ex[i])
			executor_join(n.ex[i]);
	daemon_write_metrics(cfg);
	nodemap_free(n.map);
	nodemap_trust_close(&n.trust);
	state_close(n.state);
	pthread_mutex_destroy(&n.lock);
	log_info("stopped");
	return 0;
}
