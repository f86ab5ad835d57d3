/*
 * executor: one Jenkins executor = one thread with its own Jenkins
 * client, worker name "$node_exec-$i" as gearman-plugin names them (it is
 * the "worker" of the build's JSON). The dispatcher (dispatch.c) hands it
 * a job taken on the node's connection; it runs the job synchronously:
 * trigger the build pinned to this node, follow it, report on the
 * connection the job came from.
 */
#include "node.h"

#include "advert.h"
#include "daemon/daemon.h"
#include "backoff.h"
#include "buf.h"
#include "clock.h"
#include "gwconn.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "params.h"
#include "daemon/shutdown.h"
#include "state.h"
#include "xalloc.h"

#include <jansson.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct executor {
	struct node       *node;
	int                index;
	char               id[300];      /* $node_exec-$i */
	pthread_t          thread;
	volatile int       finished;
	struct jk_client  *jk;
	/* Under node->lock: */
	pthread_cond_t     wake;         /* a job, a map change, shutdown */
	bool               has_job;
	bool               leaving;      /* takes no more jobs */
	bool               reserved;     /* a GRAB is out for it (dispatch.c) */
	enum node_claim    claim;        /* its job's claim on a Jenkins executor */
	char              *follow_path;  /* the build it follows: "job/.../N/" */
	bool               pipeline;     /* ... a Pipeline run (executor_pipeline_waiting_locked) */
	bool               poll_now;     /* Jenkins no longer runs it: look now */
	struct gw_job      job;
	size_t             server;       /* the job's connection */
	unsigned           conn_gen;
};

/* A job waits for the node: the least time between two looks at a running build. */
#define WAITING_POLL_MIN_MS 250

/* ---- small helpers ---- */

bool
executor_finished(struct executor *e)
{
	return __atomic_load_n(&e->finished, __ATOMIC_ACQUIRE) != 0;
}

bool
executor_free_locked(const struct executor *e)
{
	return !e->has_job && !e->leaving && !e->reserved;
}

void
executor_reserve_locked(struct executor *e, bool on)
{
	e->reserved = on;
	if (!on)	/* it may have to leave now (fewer executors in the map) */
		pthread_cond_signal(&e->wake);
}

bool
executor_reserved_locked(const struct executor *e)
{
	return e->reserved;
}

/* The part of a build URL that does not depend on how the master was reached. */
static const char *
build_path(const char *url)
{
	const char *p = url ? strstr(url, "/job/") : NULL;

	return p ? p + 1 : url ? url : "";
}

/* Is the build at path among the running ones (URLs)? */
static bool
seen_running(const char *path, char *const *running, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(build_path(running[i]), path) == 0)
			return true;
	return false;
}

void
executor_poll_if_gone_locked(struct executor *e, char *const *running, size_t n)
{
	if (!e->follow_path || seen_running(e->follow_path, running, n))
		return;
	e->poll_now = true;
	pthread_cond_signal(&e->wake);
}

bool
executor_pipeline_waiting_locked(const struct executor *e, char *const *running, size_t n)
{
	return e->has_job && e->follow_path && e->pipeline && !seen_running(e->follow_path, running, n);
}

/* Note which build the thread follows (NULL: none), for executor_poll_if_gone_locked. */
static void
set_follow(struct executor *e, const char *url, bool pipeline)
{
	char *p = url ? xstrdup(build_path(url)) : NULL;

	pthread_mutex_lock(&e->node->lock);
	free(e->follow_path);
	e->follow_path = p;
	e->pipeline = p && pipeline;
	e->poll_now = false;
	pthread_mutex_unlock(&e->node->lock);
}

/*
 * Wait up to ms for the next look at the build; true if the node found
 * the build no longer running in Jenkins (look now).
 */
static bool
follow_sleep(struct executor *e, long ms)
{
	long long deadline = clk_now_ms() + ms;
	struct timespec until = clk_timespec_in(CLOCK_MONOTONIC, ms);
	bool nudged;

	pthread_mutex_lock(&e->node->lock);
	while (!e->poll_now && !clk_passed(deadline))
		if (pthread_cond_timedwait(&e->wake, &e->node->lock, &until) == ETIMEDOUT)
			break;
	nudged = e->poll_now;
	e->poll_now = false;
	pthread_mutex_unlock(&e->node->lock);
	return nudged;
}

void
executor_give_locked(struct executor *e, struct gw_job *job, size_t server, unsigned conn_gen)
{
	e->job = *job;
	memset(job, 0, sizeof(*job));
	e->server = server;
	e->conn_gen = conn_gen;
	e->has_job = true;
	e->reserved = false;
	e->claim = CLAIM_STARTING;
	pthread_cond_signal(&e->wake);
}

void
executor_wake_locked(struct executor *e)
{
	pthread_cond_signal(&e->wake);
}

const char *
executor_held_function_locked(const struct executor *e, size_t server, unsigned conn_gen)
{
	if (!e->has_job || (server != (size_t)-1 && (e->server != server || e->conn_gen != conn_gen)))
		return NULL;
	return e->job.function;
}

bool
executor_held_unique_locked(const struct executor *e, const char *unique)
{
	return e->has_job && e->job.unique && !strcmp(e->job.unique, unique);
}

/* ---- running one job ---- */

/*
 * A job runs in stages (run_job): take it; find its build or trigger
 * one; follow the queue item until the build starts; follow the build to
 * its end; report. A stage returns RUN_GOING to go on, or how the job
 * ended; run_finish does what each ending leaves to do, in one place.
 */

/* How a job ended. */
enum run_outcome {
	RUN_GOING,        /* not yet: on to the next stage */
	RUN_DONE,         /* the build ended; its result sent, unless the connection was lost */
	RUN_REFUSED,      /* refused as taken (function, arguments), before Jenkins was asked:
	                     a record it came back with stays */
	RUN_FAILED,       /* refused once its build was asked for: its record goes */
	RUN_HANDED_BACK,  /* the agent stops before its build started: no answer at all */
};

/* Functions are named "build:JOB[:LABEL]" (the coordinator's projmap.c). */
#define FUNCTION_PREFIX_LEN  (sizeof("build:") - 1)

/*
 * The kept admin connection to gearmand ("show jobs", "status") answers
 * from gearmand's memory at once; one that has not answered in 2 s is
 * taken for stuck, and the job goes on without the answer (requeued and
 * lookup_advert say how).
 */
#define GEARMAND_ASK_MS       2000

/*
 * A master that does not answer a trigger or a lookup is asked again
 * after 0.5 s, then ever more slowly up to 10 s apart: soon enough after
 * a blip, few enough requests over a whole [node] trigger_timeout.
 */
#define JENKINS_RETRY_MIN_MS  500
#define JENKINS_RETRY_MAX_MS  10000

/*
 * A queue item is looked at often at first, the delay doubling up to 1 s:
 * a build that starts at once is seen at once, an item that waits costs
 * a request a second. Our own item is looked at after 5 ms; someone
 * else's, that we wait to see leave (wait_left), after 20 ms.
 */
#define QUEUE_POLL_FIRST_MS   5
#define LEFT_POLL_FIRST_MS    20
#define QUEUE_POLL_MAX_MS     1000

/*
 * A build that has just started (its queue item said so) is read again
 * this often while the master does not answer: a brief outage is waited
 * out without delaying the build's WORK_DATA much.
 */
#define GET_BUILD_RETRY_MS    200

/* The first look for a build's end when Jenkins has no estimate; then 2 s, 4 s ... */
#define FOLLOW_POLL_FIRST_MS  1000
/* The next look after one the master did not answer: gentler on a master in trouble. */
#define FOLLOW_RETRY_MS       2000
/* The longest single wait while following: the clocks (status due, poll due) are read at least this often. */
#define FOLLOW_NAP_MAX_MS     1000
/* While a job waits for the node, a build is looked at after this fraction of its run time. */
#define WAITING_POLL_DIVISOR  10

struct run {
	struct executor  *e;
	struct gw_job    *job;
	struct params     params;
	char             *full;     /* job full name */
	char             *pin;      /* the parameter that pins the build here ("" re-attached) */
	char             *name;     /* name reported to clients */
	bool              single_use;    /* OFFLINE_NODE_WHEN_COMPLETE: the node goes offline after */
	bool              gearman_ok;    /* the Gearman connection still works */
	const char       *refusal;  /* why the trigger was given up, if not Jenkins' error */
	struct build_rec  rec;      /* this build's record in state_dir */
	bool              recorded; /* rec is in state_dir */
	bool              requeued; /* gearmand handed the job out before */
	bool              reattached; /* following a build that already existed */
	bool              kept_noted; /* what Jenkins kept of its parameters was looked at */
	long long         t_grab;   /* when the job was taken, clk_now_ms */
	long              qid;      /* its queue item, 0 until known */
	int               number;   /* its build, 0 until it started */
	struct jk_build   b;        /* the build, as last read */
};

/* The next delay of a doubling poll: twice delay, at most max_ms. */
static long
poll_next(long delay, long max_ms)
{
	return delay * 2 > max_ms ? max_ms : delay * 2;
}

/* One log line per build lifecycle event, with its fields (log.h). */
static void
build_event(struct run *r, enum log_level level, const char *event, int number, const char *result,
    long long duration_ms, const char *msg)
{
	char num[16], dur[24];
	const char *keys[] = { "event", "job", "number", "node", "unique", "function", "worker", "result",
	    "duration_ms" };
	const char *vals[] = { event, r->full, num, r->e->node->cfg->node_name, r->job->unique,
	    r->job->function, r->e->id, result, dur };

	snprintf(num, sizeof(num), "%d", number);
	snprintf(dur, sizeof(dur), "%lld", duration_ms);
	if (!number)
		vals[2] = NULL;
	if (duration_ms < 0)
		vals[8] = NULL;
	log_fields(level, msg, keys, vals, sizeof(keys) / sizeof(keys[0]));
}

/*
 * Send one WORK_* packet for the job on the connection it came from. Once
 * that connection is gone the job is back in gearmand's queue: nothing
 * more is sent (r->gearman_ok false), the build goes on in Jenkins.
 */
static void
reply(struct run *r, enum gw_type type, const char *data, size_t len, long long num, long long den)
{
	struct dispatch *d = r->e->node->dispatch;
	struct gw_conn *c;
	int rc = -1;

	if (!r->gearman_ok)
		return;
	if ((c = dispatch_hold(d, r->e->server, r->e->conn_gen))) {
		const char *h = r->job->handle;
		switch (type) {
		case GW_WORK_DATA:     rc = gw_work_data(c, h, data, len); break;
		case GW_WORK_WARNING:  rc = gw_work_warning(c, h, data, len); break;
		case GW_WORK_STATUS:   rc = gw_work_status(c, h, num, den); break;
		case GW_WORK_COMPLETE: rc = gw_work_complete(c, h, data, len); break;
		case GW_WORK_FAIL:     rc = gw_work_fail(c, h); break;
		default:               break;
		}
		if (rc < 0)
			log_warnx("%s: lost gearmand while reporting %s: %s; the build goes on in Jenkins",
			    r->e->id, h, gw_error(c));
		dispatch_release(d, r->e->server, rc < 0);
	} else
		log_warnx("%s: the gearmand connection %s came on is gone; the build goes on in Jenkins",
		    r->e->id, r->job->handle);
	if (rc < 0)
		r->gearman_ok = false;
}

/* Refuse the job: a "refused" event, then WORK_WARNING with why and WORK_FAIL. */
static void
send_warning_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
send_warning_fail(struct run *r, const char *fmt, ...)
{
	char msg[1024], line[2400], *text;
	va_list ap;
	json_t *w;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line), "%s: refused %s: %s", r->e->id, r->job->function, msg);
	build_event(r, LOG_LEVEL_WARN, "refused", 0, NULL, -1, line);
	metrics_add("jga_jobs_refused_total", NULL, 1);
	/*
	 * The warning is a JSON document: Zuul's gear client appends warnings
	 * to the job's data and reads the last chunk as JSON on WORK_FAIL; an
	 * object without "result" makes Zuul retry the build elsewhere. It is
	 * NULL when msg is not UTF-8 (jansson refuses it): WORK_FAIL alone.
	 */
	w = json_pack("{s:s}", "error", msg);
	text = json_dumps(w, JSON_COMPACT);
	json_decref(w);
	if (text)
		reply(r, GW_WORK_WARNING, text, strlen(text), 0, 0);
	reply(r, GW_WORK_FAIL, NULL, 0, 0, 0);
	free(text);
}

static bool
is_truthy(const char *v)
{
	return v && (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"));
}

/* The Jenkins trigger endpoint reads these itself; a client may not set them. */
static const char *reserved[] = { "delay", "token", "cause", "json", "Submit", "GEARMAN_UNIQUE" };

static const char *
refused_param(const struct run *r)
{
	size_t i, k;

	for (i = 0; i < r->params.n; i++) {
		if (!strcmp(r->params.v[i].name, r->pin))
			return r->params.v[i].name;
		for (k = 0; k < sizeof(reserved) / sizeof(reserved[0]); k++)
			if (!strcmp(r->params.v[i].name, reserved[k]))
				return r->params.v[i].name;
	}
	return NULL;
}

static char *
build_json(struct run *r, const struct jk_build *b, const char *result)
{
	struct node *n = r->e->node;
	char *labels = node_labels_json(n), *out;
	/* A re-attached build may run on another node of this master. */
	const char *node = b->built_on && b->built_on[0] ? b->built_on : n->cfg->node_name;
	json_t *doc = json_pack("{s:s,s:i,s:s,s:s,s:s,s:s,s:o}",
	    "name", r->name, "number", b->number, "manager", n->cfg->coordinator_name,
	    "worker", r->e->id, "url", b->url ? b->url : "", "node_name", node,
	    "node_labels", json_loads(labels ? labels : "[]", 0, NULL));

	if (result)
		json_object_set_new(doc, "result", json_string(result));
	out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	free(labels);
	return out;
}

static bool
transient(enum jk_err e)
{
	return e == JK_ECONNECT || e == JK_ETIMEOUT || e == JK_ESERVER;
}

/* ---- taking the job ---- */

/*
 * Has gearmand handed this job out before (its admin "show jobs" retries)?
 * When gearmand cannot tell, count it as re-queued: a lookup too many
 * costs the master a request, a wrong "no" can cost a second build.
 */
static bool
requeued(struct executor *e, const struct gw_job *job)
{
	int retries = dispatch_job_retries(e->node->dispatch, e->server, job->handle, GEARMAND_ASK_MS);

	if (retries < 0)
		log_warnx("%s: gearmand does not say whether job %s (unique %s) was handed out before; "
		    "looking for its build", e->id, job->handle, job->unique);
	return retries != 0;
}

/*
 * The job's record, if its unique has one. A re-queued job of the same
 * function is a build we started: re-attach needs only its record, not
 * the map. Otherwise it is a new job that reuses the unique of one we
 * delivered: the record is dropped.
 */
static void
take_record(struct run *r)
{
	struct state *st = r->e->node->state;

	if (!r->job->unique[0] || state_load(st, r->job->unique, &r->rec) != 0)
		return;
	if (r->requeued && strcmp(r->rec.function, r->job->function) == 0) {
		r->recorded = true;
		r->reattached = true;
		r->full = xstrdup(r->rec.job);
		r->pin = xstrdup("");
	} else {
		/* Forgotten whole: its build numbers must not reach the record written before the trigger. */
		state_remove(st, r->job->unique);
		memset(&r->rec, 0, sizeof(r->rec));
	}
}

/* Clients know the job by the name in its function: its full name, or the last part of it. */
static char *
client_name(const struct run *r)
{
	const char *fn = r->job->function, *base = strrchr(r->full, '/');
	size_t fl = strlen(r->full);

	/* The map's functions are build:* (nodemap.c); a record's are what the map had. */
	if (strlen(fn) < FUNCTION_PREFIX_LEN)
		return xstrdup(r->full);
	fn += FUNCTION_PREFIX_LEN;
	if (strncmp(fn, r->full, fl) == 0 && (fn[fl] == '\0' || fn[fl] == ':'))
		return xstrdup(r->full);
	return xstrdup(base ? base + 1 : r->full);
}

/*
 * Take the job: its record or its function's job in the map, its
 * arguments. Refused if this worker no longer offers it or a client set
 * what it may not.
 */
static enum run_outcome
run_take(struct run *r)
{
	struct executor *e = r->e;
	struct gw_job *job = r->job;
	char err[1024];
	const char *bad;

	log_debug("%s: job %s %s unique=%s (%zu bytes)", e->id, job->handle, job->function,
	    job->unique, job->workload_len);
	r->t_grab = clk_now_ms();
	/*
	 * Has gearmand handed this job out before (a worker died or lost its
	 * connection)? Only then can a build of it exist already.
	 */
	r->requeued = job->unique[0] && requeued(e, job);
	take_record(r);
	if (!r->recorded && !node_lookup_function(e->node, job->function, &r->full, &r->pin)) {
		send_warning_fail(r, "this worker no longer offers %s", job->function);
		return RUN_REFUSED;
	}
	if (params_parse(job->workload, job->workload_len, &r->params, err, sizeof(err)) < 0) {
		send_warning_fail(r, "bad argument for %s: %s", job->function, err);
		return RUN_REFUSED;
	}
	if ((bad = refused_param(r))) {
		send_warning_fail(r, "parameter \"%s\" may not be set by a client (%s)", bad,
		    strcmp(bad, r->pin) == 0 ? "it pins the build to this node" :
		    strcmp(bad, "GEARMAN_UNIQUE") == 0 ? "the agent sets it to the Gearman unique id" :
		    "Jenkins' trigger endpoint reads it");
		return RUN_REFUSED;
	}
	r->name = client_name(r);
	r->single_use = is_truthy(params_get(&r->params, "OFFLINE_NODE_WHEN_COMPLETE"));
	if (r->single_use)
		node_set_single_use(e->node, true);
	return RUN_GOING;
}

/* ---- finding the build ---- */

/* What a lookup found. */
#define LOOKUP_FOUND      1     /* r->qid or r->number set */
#define LOOKUP_NONE       0     /* no build of this unique */
#define LOOKUP_NO_ANSWER  (-1)  /* the master did not answer */
#define LOOKUP_STOPPING   (-2)  /* given up: the agent is stopping */
#define LOOKUP_STARTING   (-3)  /* none found, but one may be in its start window */

/*
 * Build records hold the agent's clock, build timestamps the master's. A
 * lookup bounded by a record's time starts this much earlier, so that
 * clocks apart by less (NTP keeps them far closer) never hide a build;
 * starting too early costs at most a page more.
 */
#define CLOCK_SKEW_S 600

/*
 * The earliest a build of this job can have started, in ms on the master's
 * clock: the record is written before the first trigger, so no build of
 * the job is older. 0 when unknown (a re-queued job this agent has no
 * record of): the lookup is then bounded by the newest builds only.
 */
static long long
lookup_since(const struct run *r)
{
	if (!r->recorded || r->rec.time <= 0)
		return 0;
	return ((long long)r->rec.time - CLOCK_SKEW_S) * 1000;
}

/*
 * Look for the build a trigger may have created although its answer was
 * lost, by the GEARMAN_UNIQUE parameter the agent sends with every build
 * (Jenkins keeps it when the job declares it): the queue, then the job's
 * newest builds back to lookup_since (jk_find_build: a few small pages,
 * never the job's whole history). LOOKUP_*.
 */
static int
lookup(struct run *r)
{
	enum jk_err e;

	if (!r->job->unique[0])
		return LOOKUP_NONE;
	e = jk_find_build(r->e->jk, r->full, "GEARMAN_UNIQUE", r->job->unique, 0, lookup_since(r),
	    &r->qid, &r->number);
	if (e == JK_OK) {
		log_info("%s: found the build of unique %s: %s %s%ld", r->e->id, r->job->unique, r->full,
		    r->number ? "#" : "queue item ", r->number ? (long)r->number : r->qid);
		return LOOKUP_FOUND;
	}
	return e == JK_ENOTFOUND ? LOOKUP_NONE : e == JK_ECANCELED ? LOOKUP_STOPPING : LOOKUP_NO_ANSWER;
}

/*
 * lookup, telling "left the queue, not built yet" from "never queued". In
 * hudson.model.Executor.run the item leaves the queue (Queue.onStartExecuting)
 * before createExecutable adds its build to the job's builds and before
 * WorkUnit.setExecutable gives it its queueId: a lookup then finds neither,
 * and a trigger would build twice. The item is pinned to this node, so it
 * is in that window only on one of this node's executors, which is busy
 * with no currentExecutable meanwhile (jk_node.starting). None busy so:
 * look once more (the build may have appeared between the two looks), and
 * what that finds is the answer. LOOKUP_*.
 */
/* This node's executors in Executor.run's start window (jk_node.starting), or -1 with je set. */
static int
node_starting(struct run *r, enum jk_err *je)
{
	struct jk_node nd;
	int starting;

	memset(&nd, 0, sizeof(nd));
	*je = jk_node_get(r->e->jk, r->e->node->cfg->node_name, &nd);
	starting = nd.starting;
	jk_node_free(&nd);
	return *je == JK_OK ? starting : -1;
}

static int
lookup_settled(struct run *r)
{
	const char *node = r->e->node->cfg->node_name;
	enum jk_err je;
	int found, starting;

	r->refusal = NULL;
	if ((found = lookup(r)) != LOOKUP_NONE)
		return found;
	starting = node_starting(r, &je);
	if (je == JK_ECANCELED)
		return LOOKUP_STOPPING;
	if (je != JK_OK)
		return LOOKUP_NO_ANSWER;
	if (starting > 0) {
		log_info("%s: no build of unique %s found, but %d executor(s) of %s are starting a build "
		    "that may be it; looking again", r->e->id, r->job->unique, starting, node);
		r->refusal = "a build that may be this job's was still starting on this node "
		    "(left the Jenkins queue, not built yet) at the trigger timeout; not triggered again";
		return LOOKUP_STARTING;
	}
	return lookup(r);
}

/*
 * lookup for a job that may have a build already. A master that does not
 * answer is asked again until [node] trigger_timeout: a failed search must
 * not lead to a second build. A stop cuts it short (a request in progress
 * too): the job has no running build to follow yet. LOOKUP_*.
 */
static int
lookup_retrying(struct run *r)
{
	long long deadline = clk_now_ms() + r->e->node->cfg->trigger_timeout * 1000LL;
	struct backoff bo;
	int rc;

	backoff_init(&bo, JENKINS_RETRY_MIN_MS, JENKINS_RETRY_MAX_MS);
	jk_client_set_cancel(r->e->jk, shutdown_requested);
	/* Only our own record's build is pinned to this node (lookup_settled). */
	while (((rc = r->recorded ? lookup_settled(r) : lookup(r)) == LOOKUP_NO_ANSWER ||
	    rc == LOOKUP_STARTING) && !clk_passed(deadline)) {
		if (rc == LOOKUP_NO_ANSWER)
			log_warnx("%s: looking for the build of unique %s: %s; asking again", r->e->id,
			    r->job->unique, jk_client_error(r->e->jk));
		if (shutdown_sleep_ms(backoff_next(&bo))) {
			rc = LOOKUP_STOPPING;
			break;
		}
	}
	jk_client_set_cancel(r->e->jk, NULL);
	return rc;
}

/*
 * A re-queued job this agent has no record of, whose build lookup did not
 * find: the agent that started its build may advertise it (advert.h),
 * when it is older than the newest builds lookup reads. LOOKUP_*.
 */
static int
lookup_advert(struct run *r)
{
	char *status = dispatch_admin_ask(r->e->node->dispatch, r->e->server, "status", GEARMAND_ASK_MS);
	int found = status && advert_find(status, r->full, r->job->unique, &r->qid, &r->number);

	free(status);
	if (!found)
		return LOOKUP_NONE;
	log_info("%s: the build of unique %s is advertised by the agent that started it: %s %s%ld",
	    r->e->id, r->job->unique, r->full, r->number ? "#" : "queue item ",
	    r->number ? (long)r->number : r->qid);
	return LOOKUP_FOUND;
}

/*
 * Look for a build the job may have already, in one of two cases:
 *  - recorded, with neither queue item nor build: the agent was killed
 *    between trigger and answer last time; a build it made started after
 *    the record was written (lookup_since);
 *  - re-queued with no record here: another agent of this master may
 *    have started its build. When it was first taken is unknown: the
 *    queue and the job's newest builds are searched, then what the agent
 *    that has the record advertises (lookup_advert).
 * When the master cannot tell, the job is refused: a guess could build twice.
 */
static enum run_outcome
find_build(struct run *r)
{
	bool advert = !r->recorded;
	int found = lookup_retrying(r);

	if (found == LOOKUP_NONE && advert)
		found = lookup_advert(r);
	if (found == LOOKUP_STOPPING)
		return RUN_HANDED_BACK;
	if (found == LOOKUP_NO_ANSWER || found == LOOKUP_STARTING) {
		send_warning_fail(r, "cannot tell whether %s was already built for unique %s: %s",
		    r->full, r->job->unique, found == LOOKUP_STARTING ? r->refusal :
		    jk_client_error(r->e->jk));
		return RUN_FAILED;
	}
	if (found == LOOKUP_NONE && !advert)
		log_info("%s: no build of unique %s found; triggering it", r->e->id, r->job->unique);
	if (found == LOOKUP_FOUND && advert) {
		r->reattached = true;
		log_info("%s: %s (unique %s) was re-queued: re-attaching to its build", r->e->id,
		    r->job->function, r->job->unique);
	}
	return RUN_GOING;
}

/* ---- triggering it ---- */

/*
 * Poll a queue item until it has left the queue (or the deadline passes).
 * false if the agent is stopping.
 */
static bool
wait_left(struct run *r, long qid, long long deadline)
{
	struct jk_queue_item q;
	long delay = LEFT_POLL_FIRST_MS;
	bool waiting;

	while (!clk_passed(deadline)) {
		memset(&q, 0, sizeof(q));
		waiting = jk_queue_item_get(r->e->jk, qid, &q) != JK_ENOTFOUND && q.state == JK_QUEUE_WAITING;
		jk_queue_item_free(&q);
		if (!waiting)
			break;
		if (shutdown_sleep_ms(delay))
			return false;
		delay = poll_next(delay, QUEUE_POLL_MAX_MS);
	}
	return !shutdown_requested();
}

/* The trigger's parameters (*n): the client's, the pin, GEARMAN_UNIQUE. */
static struct jk_kv *
trigger_params(const struct run *r, size_t *n)
{
	struct jk_kv *kv = xcalloc(r->params.n + 2, sizeof(*kv));
	size_t i, nkv = 0;

	for (i = 0; i < r->params.n; i++) {
		kv[nkv].name = r->params.v[i].name;
		kv[nkv++].value = r->params.v[i].value;
	}
	kv[nkv].name = r->pin;
	kv[nkv++].value = r->e->node->cfg->node_name;
	if (r->job->unique[0]) {
		kv[nkv].name = "GEARMAN_UNIQUE";
		kv[nkv++].value = r->job->unique;
	}
	*n = nkv;
	return kv;
}

/*
 * After a trigger whose answer was lost: lookup for the build it may have
 * made. Unless it is found (or the agent stops), the backoff's next delay
 * is waited first, as after any failure; then LOOKUP_NONE: trigger again,
 * LOOKUP_NO_ANSWER or LOOKUP_STARTING: look again. LOOKUP_*.
 */
static int
lookup_lost(struct run *r, struct backoff *bo)
{
	int found = lookup_settled(r);

	if (found == LOOKUP_FOUND || found == LOOKUP_STOPPING)
		return found;
	if (shutdown_sleep_ms(backoff_next(bo)))
		return LOOKUP_STOPPING;
	return found;
}

/*
 * Trigger the build. Transient failures are retried for [node]
 * trigger_timeout; after one that may have reached Jenkins (a timeout, a
 * dropped connection, a 5xx), the build is looked up before any retry, so
 * a lost answer never makes a second build. 0 with r->qid (or r->number
 * when the lookup found it started), or a jk_err: JK_ECANCELED when the
 * agent is stopping (every wait and request here gives up at once then:
 * no build of the job runs yet, so the job goes back to gearmand).
 */
static enum jk_err
trigger(struct run *r)
{
	size_t nkv;
	struct jk_kv *kv = trigger_params(r, &nkv);
	long long deadline = clk_now_ms() + r->e->node->cfg->trigger_timeout * 1000LL;
	bool existing = false, uncertain = false;
	enum jk_err e = JK_ETIMEOUT;
	struct backoff bo;
	int found;

	backoff_init(&bo, JENKINS_RETRY_MIN_MS, JENKINS_RETRY_MAX_MS);
	jk_client_set_cancel(r->e->jk, shutdown_requested);
	while (!clk_passed(deadline)) {
		if (uncertain && (found = lookup_lost(r, &bo)) != LOOKUP_NONE) {
			if (found == LOOKUP_NO_ANSWER || found == LOOKUP_STARTING)
				continue;
			e = found == LOOKUP_FOUND ? JK_OK : JK_ECANCELED;
			existing = false;
			break;
		}
		uncertain = false;
		r->refusal = NULL;
		e = jk_build_trigger(r->e->jk, r->full, kv, nkv, &r->qid, &existing);
		if (e == JK_OK && existing) {
			/*
			 * 303: an identical item (someone else's) is queued, and
			 * Jenkins folded our trigger into it. That build is not
			 * ours to report: let it leave the queue, then trigger
			 * again.
			 */
			log_info("%s: %s: an identical build is already queued (item %ld); "
			    "triggering again once it has left the queue", r->e->id, r->full, r->qid);
			if (!wait_left(r, r->qid, deadline)) {
				e = JK_ECANCELED;
				existing = false;
				break;
			}
			continue;
		}
		if (e == JK_OK || !transient(e))
			break;
		log_warnx("%s: trigger %s: %s; %s", r->e->id, r->full, jk_client_error(r->e->jk),
		    r->job->unique[0] ? "looking for the build before retrying" : "retrying");
		uncertain = true;
		metrics_add("jga_jenkins_errors_total", NULL, 1);
		/*
		 * Look at once, without the backoff: a build that the lost
		 * answer made is among the job's newest now, while a busy job
		 * can start a hundred more in a few seconds, past what the
		 * bounded lookup reads. The backoff is for a
		 * lookup the master does not answer.
		 */
	}
	jk_client_set_cancel(r->e->jk, NULL);
	free(kv);
	if (e == JK_OK && existing) {
		r->refusal = "an identical build stayed queued in Jenkins until the trigger timeout";
		return JK_ECONFLICT;
	}
	return e;
}

/* Why trigger failed with je, for the refusal. */
static const char *
trigger_refusal(const struct run *r, enum jk_err je)
{
	const char *err = jk_client_error(r->e->jk);

	if (r->refusal)
		return r->refusal;
	if (je == JK_ENOTFOUND)
		return "job no longer exists on the master";
	if (je == JK_ECONFLICT)
		return "job is disabled";
	return err[0] ? err : "no answer from the master within [node] trigger_timeout";
}

/*
 * Trigger the job's build. It is recorded before the trigger, so that a
 * restart knows to look for it, and again with its queue item.
 */
static enum run_outcome
run_trigger(struct run *r)
{
	struct state *st = r->e->node->state;
	enum jk_err je;

	if (r->job->unique[0] && !r->recorded) {
		snprintf(r->rec.unique, sizeof(r->rec.unique), "%s", r->job->unique);
		snprintf(r->rec.function, sizeof(r->rec.function), "%s", r->job->function);
		snprintf(r->rec.job, sizeof(r->rec.job), "%s", r->full);
		r->rec.time = (time_t)(clk_wall_ms() / 1000);
		r->recorded = state_save(st, &r->rec) == 0;
	}
	je = trigger(r);
	if (je == JK_ECANCELED)
		return RUN_HANDED_BACK;
	if (je != JK_OK) {
		send_warning_fail(r, "Jenkins refused to build %s: %s", r->full, trigger_refusal(r, je));
		return RUN_FAILED;
	}
	if (r->recorded) {
		r->rec.queue_id = r->qid;
		r->rec.number = r->number;
		state_save(st, &r->rec);
	}
	return RUN_GOING;
}

/*
 * The job's build: the one it came back to (its record), one found
 * (find_build), else a new one.
 */
static enum run_outcome
run_find_or_trigger(struct run *r)
{
	enum run_outcome o;

	/* A job that comes back with the unique of a build we started: re-attach to it. */
	if (r->recorded) {
		r->qid = r->rec.queue_id;
		r->number = r->rec.number;
		log_info("%s: %s (unique %s) came back: re-attaching to %s %s%ld", r->e->id,
		    r->job->function, r->job->unique, r->full, r->number ? "build #" : "queue item ",
		    r->number ? (long)r->number : r->qid);
	}
	if ((r->recorded && !r->qid && !r->number) || (!r->recorded && r->requeued))
		if ((o = find_build(r)) != RUN_GOING)
			return o;
	if (!r->qid && !r->number)
		return run_trigger(r);
	return RUN_GOING;
}

/* ---- following the queue ---- */

/*
 * Did Jenkins take the pin? It ignores parameters a job does not declare,
 * and only a Node or Label parameter value pins; a job edited since the
 * last map refresh may have neither. Judged from the parameter Jenkins
 * assigns the label from (jk_pin: by class, never by text, so a client's
 * string value cannot pass for it): it must be the pin, naming this node.
 */
static bool
pinned(const struct jk_pin *p, const char *pin, const char *node)
{
	return p->name && p->label && !strcmp(p->name, pin) && !strcmp(p->label, node);
}

/* What Jenkins took as the node, for the refusal: got (size n). */
static void
pin_got(const struct jk_pin *p, char *got, size_t n)
{
	if (p->name)
		snprintf(got, n, "Jenkins took %s=%s as its node", p->name, p->label);
	else
		snprintf(got, n, "no Node or Label parameter value");
}

/* Refuse a job whose queue item or build (what, id) was not pinned here; done: what became of it. */
static void
refuse_unpinned(struct run *r, const char *got, const char *what, long id, const char *done)
{
	send_warning_fail(r, "%s no longer declares %s as a Node or Label parameter, so the build "
	    "could not be pinned to %s (%s); %s %ld %s", r->full, r->pin, r->e->node->cfg->node_name,
	    got, what, id, done);
}

/*
 * Cancel a queue item that did not start in time. True once Jenkins has
 * it cancelled or gone (the next look tells which: it may have started in
 * between).
 */
static bool
cancel_late(struct run *r, long qid)
{
	enum jk_err je = jk_queue_cancel(r->e->jk, qid);

	if (je != JK_OK && je != JK_ENOTFOUND) {
		log_warnx("%s: cannot cancel queue item %ld of %s: %s; trying again", r->e->id, qid,
		    r->full, jk_client_error(r->e->jk));
		return false;
	}
	return true;
}

/* Refuse the job whose item we cancelled for not starting in time; why: Jenkins' last reason. */
static void
refuse_late(struct run *r, long qid, const char *why)
{
	send_warning_fail(r, "%s did not start within [node] start_timeout (%d s)%s%s; queue item %ld "
	    "cancelled", r->full, r->e->node->cfg->start_timeout, why[0] ? ": " : "", why, qid);
}

/* Undeclared parameters named in one log line at most, the rest counted: 256 names could be 64 kB. */
#define UNDECLARED_LOG_MAX 1000

/*
 * The client's parameters Jenkins did not keep, from the first queue item
 * or build our trigger made (p: its ParametersAction): logged by name
 * (never value) and counted in jga_undeclared_parameters_total. Jenkins'
 * buildWithParameters makes a value for each declared parameter only
 * (ParametersDefinitionProperty.buildWithParameters), so the others are
 * gone without a word, and keepUndefinedParameters cannot bring them back:
 * it only governs values already in a ParametersAction (ParametersAction.
 * filter). gearman-plugin put every parameter into the action itself, and
 * clients that relied on ZUUL_* reaching the build through that property
 * lose them here. Learnt from the answer the agent reads anyway: no
 * request more per build, nothing more in the node's map, and it says what
 * Jenkins kept, not what a map refreshed before a job's edit said.
 */
static void
note_undeclared(struct run *r, const struct jk_pin *p)
{
	const char *keys[] = { "event", "job", "node", "unique", "function", "worker", "parameters" };
	const char *vals[7];
	struct buf names = { 0 };
	char line[1400];
	size_t i, n = 0;

	if (r->kept_noted || r->reattached || !p->kept_known)
		return;
	r->kept_noted = true;
	for (i = 0; i < r->params.n; i++) {
		const char *name = r->params.v[i].name;
		if (strv_has(p->kept, p->nkept, name))
			continue;
		if (names.len < UNDECLARED_LOG_MAX)
			buf_addf(&names, "%s%s", n ? "," : "", name);
		n++;
	}
	if (!n)
		return;
	metrics_add("jga_undeclared_parameters_total", NULL, (double)n);
	snprintf(line, sizeof(line), "%s: %s does not declare %zu parameter%s the client sent (%s%s); "
	    "Jenkins dropped %s: declare %s on the job to pass %s", r->e->id, r->full, n,
	    n == 1 ? "" : "s", names.s, names.len >= UNDECLARED_LOG_MAX ? ",..." : "",
	    n == 1 ? "it" : "them", n == 1 ? "it" : "them", n == 1 ? "it" : "them");
	vals[0] = "undeclared_parameters";
	vals[1] = r->full;
	vals[2] = r->e->node->cfg->node_name;
	vals[3] = r->job->unique;
	vals[4] = r->job->function;
	vals[5] = r->e->id;
	vals[6] = names.s;
	log_fields(LOG_LEVEL_WARN, line, keys, vals, sizeof(keys) / sizeof(keys[0]));
	buf_free(&names);
}

/* A queue item followed until its build starts (follow_queue). */
struct queue_watch {
	long       qid;
	long long  start_by;     /* cancelled if it has not started by then */
	long long  last_ok;      /* the master's last answer */
	bool       checked;      /* its pin has been checked */
	bool       unpinned;     /* ... and it did not hold: cancelled, or its build stopped */
	char       got[300];     /* then what Jenkins took as the node */
	bool       cancelled;    /* we cancelled it for not starting in time */
	char       why[300];     /* why Jenkins last said it waits */
	long long  left_since;   /* first seen a LeftItem without build, 0: not */
	long long  gone_since;   /* first seen gone (404) while a build was starting, 0: not */
	long long  job_look_at;  /* when to ask whether its job can be built */
};

/*
 * A LeftItem without a build is in Executor.run's start window for
 * milliseconds; one still without a build after this long may never get
 * one: its job is asked whether it can be built, then again this often.
 */
#define START_WINDOW_GRACE_MS  1000
#define LEFT_JOB_LOOK_MS       5000

/*
 * Has the item left the queue for good without a build? A job disabled
 * while it was queued: AbstractProject.makeDisabled cancels one item (the
 * queue's cancel(Task)); the others still reach an executor, whose
 * createExecutable returns null (the job is disabled), and stay LeftItems
 * with executable null and cancelled false for the five minutes Jenkins
 * keeps them (Queue.leftItems). Refused as soon as the job says so, not
 * after those five minutes. True when the job was refused.
 */
static bool
left_without_build(struct run *r, struct queue_watch *w, const struct jk_queue_item *q)
{
	long long now = clk_now_ms();
	bool buildable = true;
	enum jk_err je;

	if (!q->left) {
		w->left_since = 0;
		return false;
	}
	if (!w->left_since) {
		w->left_since = now;
		w->job_look_at = now + START_WINDOW_GRACE_MS;
	}
	if (now < w->job_look_at)
		return false;
	w->job_look_at = now + LEFT_JOB_LOOK_MS;
	if ((je = jk_job_buildable(r->e->jk, r->full, &buildable)) == JK_ENOTFOUND) {
		send_warning_fail(r, "job %s no longer exists on the master: queue item %ld left the "
		    "queue without a build", r->full, w->qid);
		return true;
	}
	if (je != JK_OK || buildable)
		return false;
	send_warning_fail(r, "job %s is disabled: Jenkins took queue item %ld to an executor but "
	    "made no build of it (a disabled job's createExecutable returns none)", r->full, w->qid);
	return true;
}

/* What a look at the queue item found. */
enum queue_seen {
	QUEUE_WAITING,     /* still queued: look again after a while */
	QUEUE_LOOK_AGAIN,  /* look again at once */
	QUEUE_STARTED,     /* r->number set */
	QUEUE_REFUSED,     /* the job was refused */
};

/*
 * What the item Jenkins returned says. Only an item our own trigger made
 * has its pin checked: one we re-attach to (found by its unique, or
 * advertised) was checked by the agent that triggered it, and is pinned
 * to that agent's node.
 */
static enum queue_seen
queue_item_seen(struct run *r, struct queue_watch *w, const struct jk_queue_item *q)
{
	struct executor *e = r->e;
	const char *node = e->node->cfg->node_name;

	note_undeclared(r, &q->pin);
	if (!w->checked && r->pin[0] && !r->reattached) {
		w->checked = true;
		if ((w->unpinned = !pinned(&q->pin, r->pin, node)))
			pin_got(&q->pin, w->got, sizeof(w->got));
	}
	/* An unpinned build is stopped by run_started, which reads the same parameters from it. */
	if (q->state == JK_QUEUE_STARTED) {
		r->number = q->build_number;
		return QUEUE_STARTED;
	}
	if (q->state == JK_QUEUE_CANCELLED) {
		if (w->unpinned)
			refuse_unpinned(r, w->got, "queue item", w->qid, "cancelled");
		else if (w->cancelled)
			refuse_late(r, w->qid, w->why);
		else
			send_warning_fail(r, "Jenkins queue item %ld of %s was cancelled before it started",
			    w->qid, r->full);
		return QUEUE_REFUSED;
	}
	/*
	 * An unpinned item is cancelled, then looked at again until Jenkins
	 * shows it cancelled: it may have left for an executor in between
	 * (a LeftItem's cancel does nothing), and its build is stopped then.
	 * Refusing at once would leave such a build running anywhere.
	 */
	if (w->unpinned && !q->left) {
		enum jk_err je = jk_queue_cancel(e->jk, w->qid);

		if (je != JK_OK && je != JK_ENOTFOUND && clk_passed(w->start_by)) {
			char done[600];

			snprintf(done, sizeof(done), "which Jenkins would not cancel: %s",
			    jk_client_error(e->jk));
			refuse_unpinned(r, w->got, "queue item", w->qid, done);
			return QUEUE_REFUSED;
		}
		return QUEUE_WAITING;
	}
	if (left_without_build(r, w, q))
		return QUEUE_REFUSED;
	node_claim(e->node, &e->claim, q->blocked ? CLAIM_BLOCKED : CLAIM_STARTING);
	if (q->why)
		snprintf(w->why, sizeof(w->why), "%s", q->why);
	return QUEUE_WAITING;
}

/* A 404 for the item while this node starts a build: its build may still come, this long. */
#define GONE_STARTING_MAX_MS  30000

/* The job's build of queue item w->qid: QUEUE_STARTED with r->number, or QUEUE_WAITING. */
static enum queue_seen
queue_item_build(struct run *r, struct queue_watch *w)
{
	long dummy;
	int num = 0;

	if (jk_find_build(r->e->jk, r->full, NULL, NULL, w->qid, 0, &dummy, &num) == JK_OK && num) {
		r->number = num;
		return QUEUE_STARTED;
	}
	return QUEUE_WAITING;
}

/*
 * Jenkins no longer knows the item: expired (5 minutes after it left) or
 * the master restarted. The job's builds tell which build it became. None
 * yet: it may be in Executor.run's start window (the LeftItem forgotten,
 * the build not made yet), which shows as one of this node's executors
 * busy without a build: looked at again while one is. Otherwise, after one
 * more look (the build may have appeared between the two), it never got a
 * build (a restart drops items that were starting): the job is refused.
 */
static enum queue_seen
queue_item_gone(struct run *r, struct queue_watch *w)
{
	enum jk_err je;
	int starting;

	if (queue_item_build(r, w) == QUEUE_STARTED)
		return QUEUE_STARTED;
	if (w->cancelled) {
		refuse_late(r, w->qid, w->why);
		return QUEUE_REFUSED;
	}
	starting = node_starting(r, &je);
	if (je != JK_OK && je != JK_ENOTFOUND)
		return QUEUE_WAITING;	/* asked again; bounded by follow_timeout */
	if (starting > 0) {
		if (!w->gone_since)
			w->gone_since = clk_now_ms();
		if (clk_now_ms() - w->gone_since < GONE_STARTING_MAX_MS)
			return QUEUE_WAITING;
	}
	if (queue_item_build(r, w) == QUEUE_STARTED)
		return QUEUE_STARTED;
	send_warning_fail(r, "Jenkins no longer knows queue item %ld of %s (it left the queue over "
	    "five minutes ago, or the master restarted while it was starting) and no build of it "
	    "exists", w->qid, r->full);
	return QUEUE_REFUSED;
}

/* One look at the queue item, and what follows from it: refusal, cancellation. */
static enum queue_seen
queue_look(struct run *r, struct queue_watch *w)
{
	const struct config *cfg = r->e->node->cfg;
	enum queue_seen seen = QUEUE_WAITING;
	struct jk_queue_item q;
	enum jk_err je;

	memset(&q, 0, sizeof(q));
	if ((je = jk_queue_item_get(r->e->jk, w->qid, &q)) == JK_OK) {
		w->last_ok = clk_now_ms();
		seen = queue_item_seen(r, w, &q);
	}
	jk_queue_item_free(&q);
	if (seen == QUEUE_WAITING && je == JK_ENOTFOUND) {
		w->last_ok = clk_now_ms();	/* the master answered */
		seen = queue_item_gone(r, w);
	}
	if (seen != QUEUE_WAITING)
		return seen;
	if (je != JK_OK && je != JK_ENOTFOUND && !transient(je)) {
		send_warning_fail(r, "cannot follow Jenkins queue item %ld of %s: %s", w->qid, r->full,
		    jk_client_error(r->e->jk));
		return QUEUE_REFUSED;
	}
	if (clk_now_ms() - w->last_ok > cfg->follow_timeout * 1000LL) {
		send_warning_fail(r, "the master has not answered for [node] follow_timeout (%d s) while "
		    "queue item %ld of %s waited: %s", cfg->follow_timeout, w->qid, r->full,
		    jk_client_error(r->e->jk));
		return QUEUE_REFUSED;
	}
	if (je == JK_OK && !w->cancelled && clk_passed(w->start_by)) {
		w->cancelled = cancel_late(r, w->qid);
		return QUEUE_LOOK_AGAIN;	/* it may have started meanwhile */
	}
	return QUEUE_WAITING;
}

/*
 * Follow the queue item r->qid until its build starts: 0 and r->number,
 * or -1 after refusing the job. Bounded: an item that has not started
 * within [node] start_timeout is cancelled and the job refused (the
 * client may retry elsewhere); a master unreachable for [node]
 * follow_timeout ends the job. While Jenkins shows the item blocked it
 * would not take a free executor, so its claim is let go and the node's
 * other executors take jobs.
 */
static int
follow_queue(struct run *r)
{
	struct queue_watch w = { .qid = r->qid };
	long delay = QUEUE_POLL_FIRST_MS;
	enum queue_seen seen;

	w.start_by = clk_now_ms() + r->e->node->cfg->start_timeout * 1000LL;
	w.last_ok = clk_now_ms();
	for (;;) {
		if ((seen = queue_look(r, &w)) == QUEUE_STARTED)
			return 0;
		if (seen == QUEUE_REFUSED)
			return -1;
		if (seen == QUEUE_LOOK_AGAIN)
			continue;
		usleep((useconds_t)delay * 1000);
		delay = poll_next(delay, QUEUE_POLL_MAX_MS);
	}
}

/* Wait for the build to leave the queue; it has a number then, recorded. */
static enum run_outcome
run_wait_start(struct run *r)
{
	if (!r->number) {
		if (follow_queue(r) < 0)
			return RUN_FAILED;
		if (r->recorded) {
			r->rec.number = r->number;
			state_save(r->e->node->state, &r->rec);
		}
	}
	return RUN_GOING;	/* the claim holds until run_started read the build */
}

/*
 * The build has started and was read: Jenkins counts a freestyle build on
 * its executor, so the claim ends. A Pipeline run holds no executor until
 * its node() placeholder takes one: from here it counts as the node's
 * (executor_pipeline_waiting_locked) whenever no executor shows it, so
 * no GRAB is sent on an executor its placeholder is about to take.
 */
static void
run_claim_started(struct run *r)
{
	set_follow(r->e, r->b.url, r->b.pipeline);
	node_claim(r->e->node, &r->e->claim, CLAIM_NONE);
}

/* ---- following the build ---- */

/*
 * Read a build that has just started. A master that does not answer is
 * asked again for [node] follow_timeout; anything else is final.
 */
static enum jk_err
get_build(struct run *r)
{
	long long give_up = clk_now_ms() + r->e->node->cfg->follow_timeout * 1000LL;
	enum jk_err je;

	while ((je = jk_build_get(r->e->jk, r->full, r->number, &r->b)) != JK_OK && transient(je) &&
	    !clk_passed(give_up))
		usleep(GET_BUILD_RETRY_MS * 1000);
	return je;
}

/*
 * How long a build that runs unpinned is given to end once asked to stop.
 * Jenkins' doStop only interrupts its executor (Executor.interrupt): the
 * build ends, ABORTED, when its steps notice.
 */
#define UNPINNED_STOP_MS  30000

/*
 * Stop the build r->number, which runs where it was not pinned, and wait
 * until Jenkins shows it ended, so that a client told "stopped" can send
 * the job again without two builds. True once it ended.
 */
static bool
stop_unpinned(struct run *r)
{
	long long give_up = clk_now_ms() + UNPINNED_STOP_MS;
	long delay = QUEUE_POLL_FIRST_MS;
	bool stop = true;
	enum jk_err je;

	for (;;) {
		struct jk_build b;

		if (stop && (je = jk_build_stop(r->e->jk, r->full, r->number)) != JK_OK && transient(je))
			log_warnx("%s: cannot stop unpinned build %s #%d: %s; trying again", r->e->id, r->full,
			    r->number, jk_client_error(r->e->jk));
		else
			stop = false;
		memset(&b, 0, sizeof(b));
		je = jk_build_get(r->e->jk, r->full, r->number, &b);
		if (je == JK_ENOTFOUND || (je == JK_OK && !b.building)) {
			jk_build_free(&b);
			return true;
		}
		jk_build_free(&b);
		if (clk_passed(give_up))
			return false;
		usleep((useconds_t)delay * 1000);
		delay = poll_next(delay, QUEUE_POLL_MAX_MS);
	}
}

/* The build has started: read it, say so, and send WORK_DATA and a first WORK_STATUS. */
static enum run_outcome
run_started(struct run *r)
{
	char line[2400], *doc;
	long long since;
	enum jk_err je;

	if ((je = get_build(r)) == JK_ENOTFOUND) {
		send_warning_fail(r, "build %s #%d is gone from Jenkins (deleted as it started)", r->full,
		    r->number);
		return RUN_FAILED;
	} else if (je != JK_OK) {
		send_warning_fail(r, "cannot read build %s #%d%s: %s", r->full, r->number, transient(je) ?
		    " within [node] follow_timeout" : "", jk_client_error(r->e->jk));
		return RUN_FAILED;
	}
	/*
	 * Its queue item was checked if it was seen; a build found by the
	 * lookup after a lost trigger answer, or after its item expired, was
	 * not: its own ParametersAction says the same, before any report.
	 */
	note_undeclared(r, &r->b.pin);
	if (r->pin[0] && !r->reattached &&
	    !pinned(&r->b.pin, r->pin, r->e->node->cfg->node_name)) {
		char got[300];

		pin_got(&r->b.pin, got, sizeof(got));
		refuse_unpinned(r, got, "build", r->number, stop_unpinned(r)
		    ? "stopped" : "asked to stop, and still running (Jenkins did not end it in time)");
		return RUN_FAILED;
	}
	run_claim_started(r);
	snprintf(line, sizeof(line), "%s: build %s #%d %s for %s", r->e->id, r->full, r->number,
	    r->reattached ? "re-attached" : "started", r->job->function);
	build_event(r, LOG_LEVEL_INFO, r->reattached ? "reattached" : "started", r->number, NULL,
	    clk_now_ms() - r->t_grab, line);
	if (!r->reattached) {
		metrics_add("jga_builds_started_total", NULL, 1);
		metrics_observe("jga_dispatch_latency_seconds", (clk_now_ms() - r->t_grab) / 1000.0);
	}
	doc = build_json(r, &r->b, NULL);
	reply(r, GW_WORK_DATA, doc, strlen(doc), 0, 0);
	since = clk_wall_ms() - r->b.timestamp_ms;
	reply(r, GW_WORK_STATUS, NULL, 0, since > 0 ? since : 0, r->b.estimated_ms);
	free(doc);
	return RUN_GOING;
}

/* A running build followed to its end (run_follow). */
struct follow {
	long       interval;      /* [node] status_interval in ms: WORK_STATUS, and a look, this often */
	long       step;          /* the next look's distance, doubling up to interval */
	long long  next_poll;     /* when to look at the build next */
	long long  last_ok;       /* the master's last answer */
	long long  last_status;   /* the last WORK_STATUS */
	long long  started_wall;  /* the build's start, on the wall clock */
};

/* Send WORK_STATUS when it is due, then wait for the next status or look. */
static void
follow_wait(struct run *r, struct follow *f)
{
	long long t = clk_now_ms(), elapsed = clk_wall_ms() - f->started_wall, wake;

	if (r->gearman_ok && t - f->last_status >= f->interval) {
		reply(r, GW_WORK_STATUS, NULL, 0, elapsed > 0 ? elapsed : 0, r->b.estimated_ms);
		f->last_status = t;
	}
	wake = f->next_poll < f->last_status + f->interval ? f->next_poll : f->last_status + f->interval;
	/* Woken early when the node sees the build ended (node_grab_reserve). */
	if (wake > t && follow_sleep(r->e, wake - t > FOLLOW_NAP_MAX_MS ? FOLLOW_NAP_MAX_MS : wake - t))
		f->next_poll = clk_now_ms();
}

/*
 * Look at the build: 1 read, 0 the master did not answer (look again in
 * FOLLOW_RETRY_MS), -1 the job refused: the build is gone, or the master
 * has not answered for [node] follow_timeout.
 */
static int
follow_poll(struct run *r, struct follow *f)
{
	const struct config *cfg = r->e->node->cfg;
	long est = r->b.estimated_ms;
	enum jk_err je;

	jk_build_free(&r->b);
	memset(&r->b, 0, sizeof(r->b));
	if ((je = jk_build_get(r->e->jk, r->full, r->number, &r->b)) == JK_OK) {
		f->last_ok = clk_now_ms();
		return 1;
	}
	if (je == JK_ENOTFOUND) {
		send_warning_fail(r, "build %s #%d is gone from Jenkins (deleted while it ran)", r->full,
		    r->number);
		return -1;
	}
	if (clk_now_ms() - f->last_ok > cfg->follow_timeout * 1000LL) {
		send_warning_fail(r, "the master has not answered for [node] follow_timeout (%d s) while "
		    "build %s #%d ran: %s; the build goes on in Jenkins", cfg->follow_timeout, r->full,
		    r->number, jk_client_error(r->e->jk));
		return -1;
	}
	r->b.building = true;
	r->b.estimated_ms = est;
	f->next_poll = clk_now_ms() + FOLLOW_RETRY_MS;
	return 0;
}

/* After a look at the running build: when to look next. */
static void
follow_schedule(struct follow *f, struct node *n)
{
	long long soon;

	f->next_poll = clk_now_ms() + f->step;
	f->step = poll_next(f->step, f->interval);
	/*
	 * A job waits for this node: the executor is worth more the sooner
	 * its end is seen. Look again after a tenth of the time the build has
	 * run (at least WAITING_POLL_MIN_MS), so a short build is not left
	 * idle for seconds; a long one is looked at no more often for it.
	 */
	if (!node_jobs_wait(n))
		return;
	soon = (clk_wall_ms() - f->started_wall) / WAITING_POLL_DIVISOR;
	soon = soon < WAITING_POLL_MIN_MS ? WAITING_POLL_MIN_MS : soon;
	if (clk_now_ms() + soon < f->next_poll)
		f->next_poll = clk_now_ms() + soon;
}

/*
 * Follow the build to its end, through master outages. WORK_STATUS
 * needs no request (elapsed is counted from the build's start); looks
 * are only for the end: at Jenkins' estimate when there is one, else
 * 1 s, 2 s, 4 s ... apart, never more than status_interval apart.
 */
static enum run_outcome
run_follow(struct run *r)
{
	struct follow f = {
		.interval = r->e->node->cfg->status_interval * 1000L,
		.step = FOLLOW_POLL_FIRST_MS,
	};
	int polled;

	f.last_status = f.last_ok = clk_now_ms();
	f.next_poll = f.last_ok + (r->b.estimated_ms > 0 ? r->b.estimated_ms : f.step);
	f.started_wall = r->b.timestamp_ms > 0 ? r->b.timestamp_ms : clk_wall_ms();
	set_follow(r->e, r->b.url, r->b.pipeline);
	while (r->b.building || !r->b.result) {
		follow_wait(r, &f);
		if (clk_now_ms() < f.next_poll)
			continue;
		if ((polled = follow_poll(r, &f)) < 0)
			return RUN_FAILED;
		if (polled > 0)
			follow_schedule(&f, r->e->node);
	}
	return RUN_GOING;
}

/* ---- reporting ---- */

/* OFFLINE_NODE_WHEN_COMPLETE: the node goes offline, in Jenkins and here. */
static void
take_node_offline(struct run *r)
{
	struct node *n = r->e->node;
	char msg[600];

	snprintf(msg, sizeof(msg), "Offline due to Gearman request (OFFLINE_NODE_WHEN_COMPLETE) after %s #%d",
	    r->full, r->number);
	if (jk_node_set_offline(r->e->jk, n->cfg->node_name, true, msg) != JK_OK)
		log_warnx("%s: cannot take node %s offline: %s", r->e->id, n->cfg->node_name,
		    jk_client_error(r->e->jk));
	else
		log_info("node %s taken offline after single-use build %s #%d", n->cfg->node_name,
		    r->full, r->number);
	node_set_local_offline(n);
}

/* The build has ended: WORK_COMPLETE with its result. */
static enum run_outcome
run_report(struct run *r)
{
	const struct jk_build *b = &r->b;
	char line[2400], lab[64], *doc;

	if (r->single_use)
		take_node_offline(r);
	doc = build_json(r, b, b->result);
	reply(r, GW_WORK_COMPLETE, doc, strlen(doc), 0, 0);
	snprintf(line, sizeof(line), "%s: build %s #%d finished %s%s", r->e->id, r->full, r->number,
	    b->result, r->gearman_ok ? "" : " (result not delivered: gearmand connection lost)");
	build_event(r, LOG_LEVEL_INFO, "finished", r->number, b->result,
	    b->duration_ms > 0 ? b->duration_ms : clk_wall_ms() - b->timestamp_ms, line);
	snprintf(lab, sizeof(lab), "result=\"%s\"", b->result);
	metrics_add("jga_builds_finished_total", lab, 1);
	free(doc);
	return RUN_DONE;
}

/* What the job's ending leaves to do, then what every job does at its end. */
static void
run_finish(struct run *r, enum run_outcome o)
{
	struct node *n = r->e->node;

	switch (o) {
	case RUN_DONE:
		/*
		 * Delivered: forget it. Not delivered: gearmand has re-queued the job;
		 * the record lets this agent re-attach when it gets the job back.
		 */
		if (r->gearman_ok && r->recorded)
			state_remove(n->state, r->rec.unique);
		break;
	case RUN_HANDED_BACK:
		/*
		 * No answer, so gearmand gives the job to another worker once
		 * this agent's connections close. The record stays: a trigger
		 * may have reached Jenkins, and the next taker (this agent
		 * restarted, or any other) looks for its build first.
		 */
		log_info("%s: stopping: %s (unique %s) handed back to gearmand before its build started",
		    r->e->id, r->job->function, r->job->unique);
		if (r->single_use)
			node_set_single_use(n, false);
		break;
	case RUN_FAILED:
		if (r->single_use)
			node_set_single_use(n, false);
		if (r->recorded)
			state_remove(n->state, r->rec.unique);
		break;
	case RUN_REFUSED:
	case RUN_GOING:
		break;
	}
	set_follow(r->e, NULL, false);
	if (!r->gearman_ok)
		log_warnx("%s: gearmand connection lost while handling %s", r->e->id, r->job->handle);
	node_job_done(n, &r->e->claim);
	jk_build_free(&r->b);
	params_free(&r->params);
	free(r->full);
	free(r->pin);
	free(r->name);
}

/* Run one job: its stages, until one says how it ended. */
static void
run_job(struct executor *e, struct gw_job *job)
{
	struct run r = { .e = e, .job = job, .gearman_ok = true };
	enum run_outcome o = run_take(&r);

	if (o == RUN_GOING)
		o = run_find_or_trigger(&r);
	if (o == RUN_GOING)
		o = run_wait_start(&r);
	if (o == RUN_GOING)
		o = run_started(&r);
	if (o == RUN_GOING)
		o = run_follow(&r);
	if (o == RUN_GOING)
		o = run_report(&r);
	run_finish(&r, o);
}

/* ---- the loop ---- */

static void *
executor_thread(void *arg)
{
	struct executor *e = arg;
	struct node *n = e->node;

	pthread_mutex_lock(&n->lock);
	for (;;) {
		/* Reserved for a GRAB out: stay, its JOB_ASSIGN comes here. */
		while (!e->has_job && (e->reserved || (!shutdown_requested() &&
		    node_wants_executor_locked(n, e->index))))
			pthread_cond_wait(&e->wake, &n->lock);
		if (!e->has_job) {
			e->leaving = true;
			break;
		}
		pthread_mutex_unlock(&n->lock);
		run_job(e, &e->job);
		pthread_mutex_lock(&n->lock);
		gw_job_free(&e->job);
		e->has_job = false;
		pthread_mutex_unlock(&n->lock);
		/* Free again: the dispatcher may grab, and withdraw what this job kept. */
		node_wake_dispatcher(n);
		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	__atomic_store_n(&e->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

struct executor *
executor_start(struct node *n, int index)
{
	struct executor *e = xcalloc(1, sizeof(*e));
	const struct config *cfg = n->cfg;

	e->node = n;
	e->index = index;
	snprintf(e->id, sizeof(e->id), "%s_exec-%d", cfg->node_name, index);
	e->jk = daemon_jenkins_client(cfg);
	{
		/* follow_sleep waits on the monotonic clock, as clk_timespec_in counts. */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&e->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (pthread_create(&e->thread, NULL, executor_thread, e) != 0)
		fatalx("cannot start executor thread %d", index);
	return e;
}

void
executor_join(struct executor *e)
{
	pthread_join(e->thread, NULL);
	pthread_cond_destroy(&e->wake);
	jk_client_free(e->jk);
	free(e->follow_path);
	free(e);
}
