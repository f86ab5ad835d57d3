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
	bool               poll_now;     /* Jenkins no longer runs it: look now */
	struct gw_job      job;
	size_t             server;       /* the job's connection */
	unsigned           conn_gen;
};

/* A job waits for the node: the least time between two looks at a running build. */
#define WAITING_POLL_MIN_MS 250

/* ---- small helpers ---- */

/* clock.h's clocks, under the names the job's code below uses. */
static inline long long
now_ms(void)
{
	return clk_now_ms();
}

static inline long long
wall_ms(void)
{
	return clk_wall_ms();
}

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

void
executor_poll_if_gone_locked(struct executor *e, char *const *running, size_t n)
{
	size_t i;

	if (!e->follow_path)
		return;
	for (i = 0; i < n; i++)
		if (strcmp(build_path(running[i]), e->follow_path) == 0)
			return;
	e->poll_now = true;
	pthread_cond_signal(&e->wake);
}

/* Note which build the thread follows (NULL: none), for executor_poll_if_gone_locked. */
static void
set_follow(struct executor *e, const char *url)
{
	char *p = url ? xstrdup(build_path(url)) : NULL;

	pthread_mutex_lock(&e->node->lock);
	free(e->follow_path);
	e->follow_path = p;
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

struct run {
	struct executor  *e;
	struct gw_job    *job;
	struct params     params;
	char             *full;     /* job full name */
	char             *pin;
	char             *name;     /* name reported to clients */
	bool              gearman_ok;    /* the Gearman connection still works */
	const char       *refusal;  /* why the trigger was given up, if not Jenkins' error */
	struct build_rec  rec;      /* this build's record in state_dir */
	bool              recorded;
	bool              requeued; /* gearmand handed the job out before */
	bool              reattached; /* following a build that already existed */
};

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

static void
send_warning_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
send_warning_fail(struct run *r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	{
		char line[2400];
		snprintf(line, sizeof(line), "%s: refused %s: %s", r->e->id, r->job->function, msg);
		build_event(r, LOG_LEVEL_WARN, "refused", 0, NULL, -1, line);
	}
	metrics_add("jga_jobs_refused_total", NULL, 1);
	/*
	 * The warning is a JSON document: Zuul's gear client appends warnings
	 * to the job's data and reads the last chunk as JSON on WORK_FAIL; an
	 * object without "result" makes Zuul retry the build elsewhere.
	 */
	{
		json_t *w = json_pack("{s:s}", "error", msg);
		char *text = json_dumps(w, JSON_COMPACT);
		json_decref(w);
		if (text)
			reply(r, GW_WORK_WARNING, text, strlen(text), 0, 0);
		reply(r, GW_WORK_FAIL, NULL, 0, 0, 0);
		free(text);
	}
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

/*
 * Poll a queue item until it has left the queue (or the deadline passes).
 * false if the agent is stopping.
 */
static bool
wait_left(struct run *r, long qid, long long deadline)
{
	struct jk_queue_item q;
	long delay = 20;

	while (now_ms() < deadline) {
		memset(&q, 0, sizeof(q));
		if (jk_queue_item_get(r->e->jk, qid, &q) != JK_ENOTFOUND && q.state == JK_QUEUE_WAITING) {
			jk_queue_item_free(&q);
			if (shutdown_sleep_ms(delay))
				return false;
			delay = delay * 2 > 1000 ? 1000 : delay * 2;
			continue;
		}
		jk_queue_item_free(&q);
		break;
	}
	return !shutdown_requested();
}

/*
 * Has gearmand handed this job out before (its admin "show jobs" retries)?
 * When gearmand cannot tell, count it as re-queued: a lookup too many
 * costs the master a request, a wrong "no" can cost a second build.
 */
static bool
requeued(struct executor *e, const struct gw_job *job)
{
	int retries = dispatch_job_retries(e->node->dispatch, e->server, job->handle, 2000);

	if (retries < 0)
		log_warnx("%s: gearmand does not say whether job %s (unique %s) was handed out before; "
		    "looking for its build", e->id, job->handle, job->unique);
	return retries != 0;
}

/* What a lookup found. */
#define LOOKUP_FOUND      1     /* *queue_id or *number set */
#define LOOKUP_NONE       0     /* no build of this unique */
#define LOOKUP_NO_ANSWER  (-1)  /* the master did not answer */
#define LOOKUP_STOPPING   (-2)  /* given up: the agent is stopping */

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
lookup(struct run *r, long *queue_id, int *number)
{
	enum jk_err e;

	if (!r->job->unique[0])
		return LOOKUP_NONE;
	e = jk_find_build(r->e->jk, r->full, "GEARMAN_UNIQUE", r->job->unique, 0, lookup_since(r),
	    queue_id, number);
	if (e == JK_OK) {
		log_info("%s: found the build of unique %s: %s %s%ld", r->e->id, r->job->unique, r->full,
		    *number ? "#" : "queue item ", *number ? (long)*number : *queue_id);
		return LOOKUP_FOUND;
	}
	return e == JK_ENOTFOUND ? LOOKUP_NONE : e == JK_ECANCELED ? LOOKUP_STOPPING : LOOKUP_NO_ANSWER;
}

/*
 * lookup for a job that may have a build already. A master that does not
 * answer is asked again until [node] trigger_timeout: a failed search must
 * not lead to a second build. A stop cuts it short (a request in progress
 * too): the job has no running build to follow yet. LOOKUP_*.
 */
static int
lookup_retrying(struct run *r, long *queue_id, int *number)
{
	long long deadline = now_ms() + r->e->node->cfg->trigger_timeout * 1000LL;
	struct backoff bo;
	int rc;

	backoff_init(&bo, 500, 10000);
	jk_client_set_cancel(r->e->jk, shutdown_requested);
	while ((rc = lookup(r, queue_id, number)) == LOOKUP_NO_ANSWER && now_ms() < deadline) {
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
lookup_advert(struct run *r, long *queue_id, int *number)
{
	char *status = dispatch_admin_ask(r->e->node->dispatch, r->e->server, "status", 2000);
	int found = status && advert_find(status, r->full, r->job->unique, queue_id, number);

	free(status);
	if (!found)
		return LOOKUP_NONE;
	log_info("%s: the build of unique %s is advertised by the agent that started it: %s %s%ld",
	    r->e->id, r->job->unique, r->full, *number ? "#" : "queue item ",
	    *number ? (long)*number : *queue_id);
	return LOOKUP_FOUND;
}

/*
 * Trigger the build. Transient failures are retried for [node]
 * trigger_timeout; after one that may have reached Jenkins (a timeout, a
 * dropped connection, a 5xx), the build is looked up before any retry, so
 * a lost answer never makes a second build. 0 with *queue_id (or *number
 * when the lookup found it started), or a jk_err: JK_ECANCELED when the
 * agent is stopping (every wait and request here gives up at once then:
 * no build of the job runs yet, so the job goes back to gearmand).
 */
static enum jk_err
trigger(struct run *r, long *queue_id, int *number)
{
	struct jk_kv *kv = calloc(r->params.n + 2, sizeof(*kv));
	struct backoff bo;
	long long deadline = now_ms() + r->e->node->cfg->trigger_timeout * 1000LL;
	bool existing = false, uncertain = false;
	enum jk_err e = JK_ETIMEOUT;
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
	backoff_init(&bo, 500, 10000);
	jk_client_set_cancel(r->e->jk, shutdown_requested);
	while (now_ms() < deadline) {
		if (uncertain) {
			int found = lookup(r, queue_id, number);
			if (found == LOOKUP_FOUND) {
				e = JK_OK;
				existing = false;
				break;
			}
			if (found == LOOKUP_STOPPING || (found == LOOKUP_NO_ANSWER &&
			    shutdown_sleep_ms(backoff_next(&bo)))) {
				e = JK_ECANCELED;
				break;
			}
			if (found == LOOKUP_NO_ANSWER)
				continue;
			uncertain = false;
			/* Not built: wait before the next attempt, as after any failure. */
			if (shutdown_sleep_ms(backoff_next(&bo))) {
				e = JK_ECANCELED;
				break;
			}
		}
		e = jk_build_trigger(r->e->jk, r->full, kv, nkv, queue_id, &existing);
		if (e == JK_OK && existing) {
			/*
			 * 303: an identical item (someone else's) is queued, and
			 * Jenkins folded our trigger into it. That build is not
			 * ours to report: let it leave the queue, then trigger
			 * again.
			 */
			log_info("%s: %s: an identical build is already queued (item %ld); "
			    "triggering again once it has left the queue", r->e->id, r->full, *queue_id);
			if (!wait_left(r, *queue_id, deadline)) {
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
		 * bounded lookup reads (the soak saw it). The backoff is for a
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

/*
 * Did Jenkins take the pin? It ignores parameters a job does not declare,
 * and only a Node or Label parameter value pins; a job edited since the
 * last map refresh may have neither. params is the queue item's rendering.
 */
static bool
pinned(const char *params, const char *pin, const char *node)
{
	char want[700];

	if (!params)
		return true;     /* nothing to check against */
	snprintf(want, sizeof(want), "\n[NodeParameterValue: %s=%s]", pin, node);
	if (strstr(params, want))
		return true;
	snprintf(want, sizeof(want), "\n[LabelParameterValue: %s=%s]", pin, node);
	return strstr(params, want) != NULL;
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

/*
 * Follow a queue item until its build starts: 0 and *number, or -1 after
 * refusing the job. Bounded: an item that has not started within [node]
 * start_timeout is cancelled and the job refused (the client may retry
 * elsewhere); a master unreachable for [node] follow_timeout ends the job.
 * While Jenkins shows the item blocked it would not take a free executor,
 * so its claim is let go and the node's other executors take jobs.
 */
static int
follow_queue(struct run *r, long qid, int *number)
{
	struct executor *e = r->e;
	const struct config *cfg = e->node->cfg;
	const char *node = cfg->node_name;
	struct jk_queue_item q;
	long delay = 5;
	long long start_by = now_ms() + cfg->start_timeout * 1000LL, last_ok = now_ms();
	bool checked = false, cancelled = false;
	char why[300] = "";
	enum jk_err je;

	for (;;) {
		memset(&q, 0, sizeof(q));
		je = jk_queue_item_get(e->jk, qid, &q);
		if (je == JK_OK)
			last_ok = now_ms();
		/*
		 * Only an item our own trigger made is checked: one we re-attach
		 * to (found by its unique, or advertised) was checked by the agent
		 * that triggered it, and is pinned to that agent's node.
		 */
		if (je == JK_OK && !checked && r->pin[0] && !r->reattached) {
			checked = true;
			if (!pinned(q.params, r->pin, node)) {
				if (q.state == JK_QUEUE_STARTED)
					jk_build_stop(e->jk, r->full, q.build_number);
				else if (q.state == JK_QUEUE_WAITING)
					jk_queue_cancel(e->jk, qid);
				send_warning_fail(r, "%s no longer declares %s as a Node or Label parameter, so the "
				    "build could not be pinned to %s; queue item %ld cancelled", r->full, r->pin, node, qid);
				jk_queue_item_free(&q);
				return -1;
			}
		}
		if (je == JK_OK && q.state == JK_QUEUE_STARTED) {
			*number = q.build_number;
			jk_queue_item_free(&q);
			return 0;
		}
		if (je == JK_OK && q.state == JK_QUEUE_CANCELLED) {
			jk_queue_item_free(&q);
			if (cancelled)
				refuse_late(r, qid, why);
			else
				send_warning_fail(r, "Jenkins queue item %ld of %s was cancelled before it started",
				    qid, r->full);
			return -1;
		}
		if (je == JK_OK) {
			node_claim(e->node, &e->claim, q.blocked ? CLAIM_BLOCKED : CLAIM_STARTING);
			if (q.why)
				snprintf(why, sizeof(why), "%s", q.why);
		}
		jk_queue_item_free(&q);
		if (je == JK_ENOTFOUND) {
			/* Expired (5 minutes after it left) or the master restarted: ask the job. */
			long dummy;
			int num = 0;
			if (jk_find_build(e->jk, r->full, NULL, NULL, qid, 0, &dummy, &num) == JK_OK && num) {
				*number = num;
				return 0;
			}
			if (cancelled) {
				refuse_late(r, qid, why);
				return -1;
			}
		}
		if (je != JK_OK && !transient(je)) {
			send_warning_fail(r, "cannot follow Jenkins queue item %ld of %s: %s", qid, r->full,
			    jk_client_error(e->jk));
			return -1;
		}
		if (now_ms() - last_ok > cfg->follow_timeout * 1000LL) {
			send_warning_fail(r, "the master has not answered for [node] follow_timeout (%d s) while "
			    "queue item %ld of %s waited: %s", cfg->follow_timeout, qid, r->full,
			    jk_client_error(e->jk));
			return -1;
		}
		if (je == JK_OK && !cancelled && now_ms() >= start_by) {
			cancelled = cancel_late(r, qid);
			continue;	/* look again at once: it may have started meanwhile */
		}
		/* Fast at first, so a build that starts at once is seen at once. */
		usleep((useconds_t)delay * 1000);
		delay = delay * 2 > 1000 ? 1000 : delay * 2;
	}
}

/*
 * Read a build that has just started. A master that does not answer is
 * asked again for [node] follow_timeout; anything else is final.
 */
static enum jk_err
get_build(struct run *r, int number, struct jk_build *b)
{
	long long give_up = now_ms() + r->e->node->cfg->follow_timeout * 1000LL;
	enum jk_err je;

	while ((je = jk_build_get(r->e->jk, r->full, number, b)) != JK_OK && transient(je) &&
	    now_ms() < give_up)
		usleep(200000);
	return je;
}

static void
run_job(struct executor *e, struct gw_job *job)
{
	struct node *n = e->node;
	struct run r = { .e = e, .job = job, .gearman_ok = true };
	struct jk_build b;
	char err[1024], *doc;
	const char *bad;
	bool single_use;
	long qid = 0;
	int number = 0;
	long long last_status, t_grab;
	enum jk_err je;

	memset(&b, 0, sizeof(b));
	log_debug("%s: job %s %s unique=%s (%zu bytes)", e->id, job->handle, job->function,
	    job->unique, job->workload_len);
	t_grab = now_ms();
	/*
	 * Has gearmand handed this job out before (a worker died or lost its
	 * connection)? Only then can a build of it exist already.
	 */
	r.requeued = job->unique[0] && requeued(e, job);
	if (job->unique[0] && state_load(n->state, job->unique, &r.rec) == 0) {
		if (r.requeued && strcmp(r.rec.function, job->function) == 0) {
			/* A build we started: re-attach needs only its record, not the map. */
			r.recorded = true;
			r.reattached = true;
			r.full = strdup(r.rec.job);
			r.pin = strdup("");
		} else    /* a new job that reuses the unique of one we delivered */
			state_remove(n->state, job->unique);
	}
	if (!r.recorded && !node_lookup_function(n, job->function, &r.full, &r.pin)) {
		send_warning_fail(&r, "this worker no longer offers %s", job->function);
		goto out;
	}
	if (params_parse(job->workload, job->workload_len, &r.params, err, sizeof(err)) < 0) {
		send_warning_fail(&r, "bad argument for %s: %s", job->function, err);
		goto out;
	}
	if ((bad = refused_param(&r))) {
		send_warning_fail(&r, "parameter \"%s\" may not be set by a client (%s)", bad,
		    strcmp(bad, r.pin) == 0 ? "it pins the build to this node" :
		    strcmp(bad, "GEARMAN_UNIQUE") == 0 ? "the agent sets it to the Gearman unique id" :
		    "Jenkins' trigger endpoint reads it");
		goto out;
	}
	{
		/* Clients know the job by the name in its function. */
		size_t fl = strlen(r.full);
		r.name = strncmp(job->function + 6, r.full, fl) == 0 &&
		    (job->function[6 + fl] == '\0' || job->function[6 + fl] == ':')
		    ? strdup(r.full) : strdup(strrchr(r.full, '/') ? strrchr(r.full, '/') + 1 : r.full);
	}
	single_use = is_truthy(params_get(&r.params, "OFFLINE_NODE_WHEN_COMPLETE"));
	if (single_use)
		node_set_single_use(n, true);

	/* A job that comes back with the unique of a build we started: re-attach to it. */
	if (r.recorded) {
		qid = r.rec.queue_id;
		number = r.rec.number;
		log_info("%s: %s (unique %s) came back: re-attaching to %s %s%ld", e->id, job->function,
		    job->unique, r.full, number ? "build #" : "queue item ", number ? (long)number : qid);
	}
	/*
	 * Killed between trigger and answer last time: the build may exist;
	 * it started after the record was written (lookup_since).
	 */
	if (r.recorded && !qid && !number) {
		int found = lookup_retrying(&r, &qid, &number);
		if (found == LOOKUP_STOPPING)
			goto out_handback;
		if (found < 0) {
			send_warning_fail(&r, "cannot tell whether %s was already built for unique %s: %s",
			    r.full, job->unique, jk_client_error(e->jk));
			goto out_single;
		}
		if (!found)
			log_info("%s: no build of unique %s found; triggering it", e->id, job->unique);
	}
	/*
	 * A re-queued job may have a build already, started by another agent
	 * of this master: find it by GEARMAN_UNIQUE instead of starting a
	 * second one. With no record of it here, when it was first taken is
	 * unknown: the queue and the job's newest builds are searched, then
	 * what the agent that has the record advertises.
	 */
	if (!r.recorded && r.requeued) {
		int found = lookup_retrying(&r, &qid, &number);
		if (found == LOOKUP_NONE)
			found = lookup_advert(&r, &qid, &number);
		if (found == LOOKUP_STOPPING)
			goto out_handback;
		if (found < 0) {
			send_warning_fail(&r, "cannot tell whether %s was already built for unique %s: %s",
			    r.full, job->unique, jk_client_error(e->jk));
			goto out_single;
		}
		if (found) {
			r.reattached = true;
			log_info("%s: %s (unique %s) was re-queued: re-attaching to its build", e->id,
			    job->function, job->unique);
		}
	}
	if (!qid && !number) {
		/* Recorded before the trigger, so a restart knows to look for it. */
		if (job->unique[0] && !r.recorded) {
			snprintf(r.rec.unique, sizeof(r.rec.unique), "%s", job->unique);
			snprintf(r.rec.function, sizeof(r.rec.function), "%s", job->function);
			snprintf(r.rec.job, sizeof(r.rec.job), "%s", r.full);
			r.rec.time = time(NULL);
			r.recorded = state_save(n->state, &r.rec) == 0;
		}
		je = trigger(&r, &qid, &number);
		if (je == JK_ECANCELED)
			goto out_handback;
		if (je != JK_OK) {
			const char *why = r.refusal ? r.refusal : je == JK_ENOTFOUND ? "job no longer exists on the master" :
			    je == JK_ECONFLICT ? "job is disabled" : jk_client_error(e->jk)[0] ? jk_client_error(e->jk) :
			    "no answer from the master within [node] trigger_timeout";
			send_warning_fail(&r, "Jenkins refused to build %s: %s", r.full, why);
			goto out_single;
		}
		if (r.recorded) {
			r.rec.queue_id = qid;
			r.rec.number = number;
			state_save(n->state, &r.rec);
		}
	}
	if (!number) {
		if (follow_queue(&r, qid, &number) < 0)
			goto out_single;
		if (r.recorded) {
			r.rec.number = number;
			state_save(n->state, &r.rec);
		}
	}
	node_claim(n, &e->claim, CLAIM_NONE);

	if ((je = get_build(&r, number, &b)) == JK_ENOTFOUND) {
		send_warning_fail(&r, "build %s #%d is gone from Jenkins (deleted as it started)", r.full, number);
		goto out_single;
	} else if (je != JK_OK) {
		send_warning_fail(&r, "cannot read build %s #%d%s: %s", r.full, number, transient(je) ?
		    " within [node] follow_timeout" : "", jk_client_error(e->jk));
		goto out_single;
	}
	{
		char line[2400];
		snprintf(line, sizeof(line), "%s: build %s #%d %s for %s", e->id, r.full, number,
		    r.reattached ? "re-attached" : "started", job->function);
		build_event(&r, LOG_LEVEL_INFO, r.reattached ? "reattached" : "started", number,
		    NULL, now_ms() - t_grab, line);
	}
	if (!r.reattached) {
		metrics_add("jga_builds_started_total", NULL, 1);
		metrics_observe("jga_dispatch_latency_seconds", (now_ms() - t_grab) / 1000.0);
	}
	doc = build_json(&r, &b, NULL);
	reply(&r, GW_WORK_DATA, doc, strlen(doc), 0, 0);
	reply(&r, GW_WORK_STATUS, NULL, 0, wall_ms() - b.timestamp_ms > 0 ? wall_ms() - b.timestamp_ms : 0,
	    b.estimated_ms);
	free(doc);
	last_status = now_ms();

	/*
	 * Follow the build to its end, through master outages. WORK_STATUS
	 * needs no request (elapsed is counted from the build's start); polls
	 * only look for the end: at Jenkins' estimate when there is one, else
	 * 1 s, 2 s, 4 s ... apart, never more than status_interval apart.
	 */
	{
		long interval = e->node->cfg->status_interval * 1000L, step = 1000;
		long long next_poll = b.estimated_ms > 0 ? now_ms() + b.estimated_ms : now_ms() + step;
		long long last_ok = now_ms();
		long long started_wall = b.timestamp_ms > 0 ? b.timestamp_ms : wall_ms();

		set_follow(e, b.url);

		while (b.building || !b.result) {
			long long t = now_ms(), elapsed = wall_ms() - started_wall, wake;

			if (r.gearman_ok && t - last_status >= interval) {
				reply(&r, GW_WORK_STATUS, NULL, 0, elapsed > 0 ? elapsed : 0, b.estimated_ms);
				last_status = t;
			}
			wake = next_poll < last_status + interval ? next_poll : last_status + interval;
			/* Woken early when the node sees the build ended (node_grab_reserve). */
			if (wake > t && follow_sleep(e, wake - t > 1000 ? 1000 : wake - t))
				next_poll = now_ms();
			if (now_ms() < next_poll)
				continue;
			{
				long est = b.estimated_ms;
				jk_build_free(&b);
				memset(&b, 0, sizeof(b));
				je = jk_build_get(e->jk, r.full, number, &b);
				if (je == JK_OK)
					last_ok = now_ms();
				else if (je == JK_ENOTFOUND) {
					send_warning_fail(&r, "build %s #%d is gone from Jenkins (deleted while it ran)",
					    r.full, number);
					goto out_single;
				} else if (now_ms() - last_ok > n->cfg->follow_timeout * 1000LL) {
					send_warning_fail(&r, "the master has not answered for [node] follow_timeout "
					    "(%d s) while build %s #%d ran: %s; the build goes on in Jenkins",
					    n->cfg->follow_timeout, r.full, number, jk_client_error(e->jk));
					goto out_single;
				}
				if (je != JK_OK) {
					b.building = true;
					b.estimated_ms = est;
					next_poll = now_ms() + 2000;
					continue;
				}
			}
			next_poll = now_ms() + step;
			step = step * 2 > interval ? interval : step * 2;
			/*
			 * A job waits for this node: the executor is worth more
			 * the sooner its end is seen. Look again after a tenth
			 * of the time the build has run (at least 250 ms), so a
			 * short build is not left idle for seconds; a long one
			 * costs no more requests than before.
			 */
			if (node_jobs_wait(n)) {
				long long soon = (wall_ms() - started_wall) / 10;

				soon = soon < WAITING_POLL_MIN_MS ? WAITING_POLL_MIN_MS : soon;
				if (now_ms() + soon < next_poll)
					next_poll = now_ms() + soon;
			}
		}
	}

	if (single_use) {
		char msg[600];
		snprintf(msg, sizeof(msg), "Offline due to Gearman request (OFFLINE_NODE_WHEN_COMPLETE) after %s #%d",
		    r.full, number);
		if (jk_node_set_offline(e->jk, n->cfg->node_name, true, msg) != JK_OK)
			log_warnx("%s: cannot take node %s offline: %s", e->id, n->cfg->node_name,
			    jk_client_error(e->jk));
		else
			log_info("node %s taken offline after single-use build %s #%d", n->cfg->node_name,
			    r.full, number);
		node_set_local_offline(n);
	}
	doc = build_json(&r, &b, b.result);
	reply(&r, GW_WORK_COMPLETE, doc, strlen(doc), 0, 0);
	{
		char line[2400], lab[64];
		snprintf(line, sizeof(line), "%s: build %s #%d finished %s%s", e->id, r.full, number, b.result,
		    r.gearman_ok ? "" : " (result not delivered: gearmand connection lost)");
		build_event(&r, LOG_LEVEL_INFO, "finished", number, b.result,
		    b.duration_ms > 0 ? b.duration_ms : wall_ms() - b.timestamp_ms, line);
		snprintf(lab, sizeof(lab), "result=\"%s\"", b.result);
		metrics_add("jga_builds_finished_total", lab, 1);
	}
	free(doc);
	/*
	 * Delivered: forget it. Not delivered: gearmand has re-queued the job;
	 * the record lets this agent re-attach when it gets the job back.
	 */
	if (r.gearman_ok && r.recorded)
		state_remove(n->state, r.rec.unique);
	goto out;
out_handback:
	/*
	 * Stopping before the build started: no answer, so gearmand gives the
	 * job to another worker once this agent's connections close. The
	 * record stays: a trigger may have reached Jenkins, and the next taker
	 * (this agent restarted, or any other) looks for its build first.
	 */
	log_info("%s: stopping: %s (unique %s) handed back to gearmand before its build started",
	    e->id, job->function, job->unique);
	if (single_use)
		node_set_single_use(n, false);
	goto out;
out_single:
	if (single_use)
		node_set_single_use(n, false);
	if (r.recorded)
		state_remove(n->state, r.rec.unique);
out:
	set_follow(e, NULL);
	if (!r.gearman_ok)
		log_warnx("%s: gearmand connection lost while handling %s", e->id, job->handle);
	node_job_done(n, &e->claim);
	jk_build_free(&b);
	params_free(&r.params);
	free(r.full);
	free(r.pin);
	free(r.name);
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
