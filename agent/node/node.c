/*
 * node: the node agent role. One per Jenkins node.
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
#include "gclient.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "daemon/reload.h"
#include "daemon/roles.h"
#include "daemon/shutdown.h"
#include "state.h"

#include <jansson.h>

#include <malloc.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * A job waits and the node is full: look at Jenkins again after this. It
 * bounds both the delay before a freed executor is reused (about half of
 * it on average) and the requests a waiting node makes: under one a
 * second, with the looks our own events add (a build of ours ended).
 */
#define CAPACITY_RECHECK_MS     1200
#define UNREACHABLE_RECHECK_MS  2000    /* the master did not answer */
#define QUIET_RECHECK_MS        5000    /* quieting down: it lasts, look less often */
/*
 * How long a quiet-down answer holds. Asking costs a request per grab; a
 * quiet-down begun meanwhile leaves at most this long of items blocked in
 * Jenkins ([node] start_timeout refuses them). A blocked item of ours makes
 * the next grab ask again (node_quiet_recheck).
 */
#define QUIET_CACHE_MS          10000
#define NODE_ALL_BUSY           (-4)    /* internal: every executor thread has a job */
#define MAP_CALL_TIMEOUT_MS  5000

void
timespec_in(struct timespec *t, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

bool
timespec_passed(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static bool
offering(const struct node *n)
{
	return n->map && n->map->online && !n->local_offline && !shutdown_requested();
}

char **
node_offered_functions(struct node *n, size_t *count, unsigned *gen)
{
	char **v;
	size_t i;

	pthread_mutex_lock(&n->lock);
	*gen = n->gen;
	*count = 0;
	if (!offering(n)) {
		pthread_mutex_unlock(&n->lock);
		return calloc(1, sizeof(char *));
	}
	v = calloc(n->map->nfns + 1, sizeof(char *));
	for (i = 0; v && i < n->map->nfns; i++)
		v[(*count)++] = strdup(n->map->fns[i].name);
	pthread_mutex_unlock(&n->lock);
	return v;
}

void
node_strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

unsigned
node_functions_gen(struct node *n)
{
	unsigned g;

	pthread_mutex_lock(&n->lock);
	g = n->gen;
	pthread_mutex_unlock(&n->lock);
	return g;
}

bool
node_lookup_function(struct node *n, const char *fn, char **job, char **pin)
{
	bool found = false;
	size_t i;

	pthread_mutex_lock(&n->lock);
	for (i = 0; offering(n) && i < n->map->nfns; i++)
		if (strcmp(n->map->fns[i].name, fn) == 0) {
			*job = strdup(n->map->fns[i].job);
			*pin = strdup(n->map->fns[i].pin);
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
			executor_wake(n->ex[i]);
	pthread_mutex_unlock(&n->lock);
	node_wake_dispatcher(n);
}

bool
node_holds_locked(struct node *n, size_t server, unsigned conn_gen, const char *fn)
{
	int i;

	for (i = 0; i < n->nex; i++) {
		const char *f = n->ex[i] ? executor_held_function(n->ex[i], server, conn_gen) : NULL;
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
	held = node_holds_locked(n, server, conn_gen, fn);
	pthread_mutex_unlock(&n->lock);
	return held;
}

/* ---- capacity ---- */

/* Under n->lock: a free executor thread not reserved for a GRAB, or -1. */
static int
free_executor_locked(struct node *n)
{
	int i;

	for (i = 0; n->map && i < n->nex && i < n->map->executors; i++)
		if (n->ex[i] && executor_free(n->ex[i]))
			return i;
	return -1;
}

/*
 * Is the master quieting down? Asked at most once a second, and only when
 * the node itself has room: it costs a request per look.
 */
static bool
master_quieting(struct node *n, struct jk_client *jk)
{
	struct timespec due;
	bool q, asked;

	pthread_mutex_lock(&n->lock);
	asked = n->quiet_seen.tv_sec || n->quiet_seen.tv_nsec;
	due = n->quiet_seen;
	due.tv_sec += QUIET_CACHE_MS / 1000;
	if (n->quiet_stale)
		asked = false;
	q = n->quieting;
	pthread_mutex_unlock(&n->lock);
	if (asked && !timespec_passed(&due))
		return q;
	if (jk_master_quieting(jk, &q) != JK_OK)
		return false;	/* the node look answered: a failure here is not worth a stop */
	pthread_mutex_lock(&n->lock);
	n->quieting = q;
	n->quiet_stale = false;
	clock_gettime(CLOCK_MONOTONIC, &n->quiet_seen);
	pthread_mutex_unlock(&n->lock);
	return q;
}

/* Under n->lock: say why the node takes no jobs, once per change of reason. */
static void
note_capacity(struct node *n, const char *why, const char *detail, bool warn)
{
	if (why == n->capacity_note)
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
 * node (its executors' current builds) tells them all, once a second.
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
			executor_poll_if_gone(n->ex[i], info.running, info.nrunning);
	timespec_in(&n->recheck_at, e != JK_OK ? UNREACHABLE_RECHECK_MS : CAPACITY_RECHECK_MS);
	pthread_mutex_unlock(&n->lock);
	jk_node_free(&info);
	return NODE_NO_ROOM;
}

int
node_grab_reserve(struct node *n, struct jk_client *jk)
{
	struct jk_node info;
	enum jk_err e;
	const char *why = "";
	char detail[160] = "";
	int free_execs = 0, ex = -1;
	bool quiet = false;

	pthread_mutex_lock(&n->lock);
	if (!offering(n) || n->single_use)
		ex = NODE_BUSY;
	else if (!timespec_passed(&n->recheck_at))
		ex = NODE_LATER;
	else if (free_executor_locked(n) < 0)
		ex = NODE_ALL_BUSY;
	pthread_mutex_unlock(&n->lock);
	if (ex == NODE_ALL_BUSY)
		return nudge_executors(n, jk);
	if (ex != -1)
		return ex;

	memset(&info, 0, sizeof(info));
	e = jk_node_get(jk, n->cfg->node_name, &info);
	if (e == JK_OK && !info.offline && !info.temp_offline && info.idle_executors > 0)
		quiet = master_quieting(n, jk);

	pthread_mutex_lock(&n->lock);
	if (e == JK_OK)
		free_execs = info.idle_executors - n->starting - n->grabs_out;
	if (e != JK_OK)
		why = "master unreachable";
	else if (info.offline || info.temp_offline)
		why = "node offline in Jenkins";
	else if (quiet)
		why = "the master is quieting down";
	else if (free_execs <= 0)
		why = "no idle executor";
	else if (!offering(n) || n->single_use || (ex = free_executor_locked(n)) < 0) {
		why = NULL;	/* changed while we looked: wait for the wake-up that says so */
		ex = NODE_BUSY;
	}
	if (ex >= 0) {
		executor_reserve(n->ex[ex], true);
		n->grabs_out++;
		snprintf(detail, sizeof(detail), ": %d idle executor(s)", free_execs);
		note_capacity(n, "", detail, false);
	} else if (why) {
		metrics_add(e != JK_OK ? "jga_jenkins_errors_total" : "jga_grabs_skipped_total", NULL, 1);
		timespec_in(&n->recheck_at, e != JK_OK ? UNREACHABLE_RECHECK_MS :
		    quiet ? QUIET_RECHECK_MS : CAPACITY_RECHECK_MS);
		if (e != JK_OK)
			snprintf(detail, sizeof(detail), " (%.120s)", jk_client_error(jk));
		else
			snprintf(detail, sizeof(detail), " (%d idle, %d being started by this agent)",
			    info.idle_executors, n->starting);
		note_capacity(n, why, detail, e != JK_OK);
		ex = NODE_NO_ROOM;
	}
	pthread_mutex_unlock(&n->lock);
	jk_node_free(&info);
	return ex;
}

void
node_grab_release(struct node *n, int ex)
{
	pthread_mutex_lock(&n->lock);
	if (ex >= 0 && ex < n->nex && n->ex[ex] && executor_reserved(n->ex[ex])) {
		executor_reserve(n->ex[ex], false);
		n->grabs_out--;
	}
	pthread_mutex_unlock(&n->lock);
}

void
node_recheck_time(struct node *n, struct timespec *at)
{
	pthread_mutex_lock(&n->lock);
	*at = n->recheck_at;
	pthread_mutex_unlock(&n->lock);
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
		clock_gettime(CLOCK_MONOTONIC, &n->recheck_at);
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
	clock_gettime(CLOCK_MONOTONIC, &n->recheck_at);
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
	n->gen++;
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
			/* Out of the table first: the dispatcher and node_wake_all look at it. */
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
	n->gen++;
	/* The coordinator has seen the node offline: from now on the map decides. */
	if (!m->online)
		n->local_offline = false;
	pthread_mutex_unlock(&n->lock);
	log_info("map %s: %zu functions, %d executors, node %s", m->version, m->nfns,
	    m->executors, m->online ? "online" : "offline");
	metrics_set("jga_registered_functions", NULL, (double)m->nfns);
	metrics_set("jga_map_version", NULL, (double)strtoul(strndupa(m->version, 8), NULL, 16));
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
	backoff_init(&bo, 500, 30000);
	while (!shutdown_requested()) {
		json_t *r = json_pack("{s:s}", "node", cfg->node_name);
		struct nodemap *m;
		long wait_ms = cfg->refresh * 1000L;

		pthread_mutex_lock(&n->lock);
		if (n->map)
			json_object_set_new(r, "version", json_string(n->map->version));
		pthread_mutex_unlock(&n->lock);
		req = json_dumps(r, JSON_COMPACT);
		json_decref(r);
		if (gclient_call(cfg->servers, cfg->nservers, fn, NULL, req, strlen(req),
		    MAP_CALL_TIMEOUT_MS, &reply, NULL, err, sizeof(err)) < 0) {
			if (!failing)
				log_warnx("%s%s", err, n->map ? "; keeping the current map" :
				    "; registering nothing until the coordinator answers");
			failing = true;
			wait_ms = backoff_next(&bo);
		} else {
			bool unchanged;

			m = nodemap_parse(reply, strlen(reply), cfg->node_name, &unchanged, err, sizeof(err));
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
			} else if (!unchanged)
				log_warnx("coordinator %s sent an answer this agent cannot use: %s; %s",
				    cfg->coordinator_name, err, n->map ? "keeping the current map" :
				    "registering nothing until it sends a map");
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
	metrics_describe("jga_registered_functions", "gauge", "Functions this node offers.");
	metrics_describe("jga_map_version", "gauge", "First 32 bits of the map version, as a number.");
	metrics_describe("jga_map_answered_timestamp_seconds", "gauge", "When the coordinator last answered.");
	metrics_add("jga_builds_started_total", NULL, 0);
	metrics_add("jga_jobs_refused_total", NULL, 0);
	metrics_add("jga_grabs_skipped_total", NULL, 0);
	metrics_add("jga_gearman_reconnects_total", NULL, 0);
	metrics_add("jga_jenkins_errors_total", NULL, 0);
}

int
node_main(struct config *cfg)
{
	struct node n;
	struct advert *adv;
	pthread_t mapper;
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

	{
		char err[600];
		struct build_rec *recs;
		size_t nrec, k;

		if (cfg->state_root && state_make_dir(cfg->state_root, cfg->state_dir, err, sizeof(err)) < 0)
			fatalx("%s", err);
		if (!(n.state = state_open(cfg->state_dir, err, sizeof(err))))
			fatalx("%s", err);
		/*
		 * Builds started before a restart: their jobs come back from
		 * gearmand and are re-attached (executor.c). Old ones are dropped.
		 */
		recs = state_list(n.state, &nrec);
		for (k = 0; k < nrec; k++) {
			if (recs[k].time < time(NULL) - 2 * 86400) {
				log_info("forgetting build record of %s (unique %s): older than two days",
				    recs[k].job, recs[k].unique);
				state_remove(n.state, recs[k].unique);
			} else
				log_info("build %s %s%ld (unique %s) is re-attached when its job comes back",
				    recs[k].job, recs[k].number ? "#" : "queue item ",
				    recs[k].number ? (long)recs[k].number : recs[k].queue_id, recs[k].unique);
		}
		free(recs);
	}
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
	for (;;) {
		bool running = false;
		for (i = 0; i < n.nex; i++)
			if (n.ex[i] && !executor_finished(n.ex[i]))
				running = true;
		if (!running)
			break;
		if (daemon_wait_signal(cfg, DAEMON_DRAIN_POLL_MS))
			quit_now();
	}
	dispatch_join(n.dispatch);
	for (i = 0; i < n.nex; i++)
		if (n.ex[i])
			executor_join(n.ex[i]);
	daemon_write_metrics(cfg);
	nodemap_free(n.map);
	state_close(n.state);
	pthread_mutex_destroy(&n.lock);
	log_info("stopped");
	return 0;
}
