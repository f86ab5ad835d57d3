/*
 * dispatch: the node's worker connections, one per gearmand, and the
 * thread that owns them.
 *
 * Loop: keep the connections up (jittered backoff), bring the
 * registration in line with the map (CAN_DO what is new, CANT_DO what is
 * gone), learn whether a job waits, and send GRAB_JOB_UNIQ when one does
 * and the node has room (node_grab_reserve, which reserves an executor for
 * the GRAB); hand each JOB_ASSIGN to the executor reserved for it.
 *
 * Whether a job waits is gearmand's to say, with no job taken: a PRE_SLEEP
 * is answered with a NOOP at once when a job for one of the connection's
 * functions is queued, and later when one arrives (gearmand server.cc,
 * GEARMAN_COMMAND_PRE_SLEEP). So each connection goes
 *
 *   IDLE --PRE_SLEEP--> SLEEPING --NOOP--> WAITS --GRAB--> GRAB_SENT
 *     ^                    ^                 |                |
 *     |                    +--no room: probe-+                |
 *     +------------------ JOB_ASSIGN or NO_JOB ---------------+
 *
 * One trap: gearmand NOOPs a sleeping connection once and then not again
 * until it sends GRAB_JOB (is_noop_sent in gearmand's job.cc). A
 * connection NOOPed but not grabbing since (no room) is "deaf": asleep, it
 * would never hear of a job that arrives or is re-queued later. So a deaf
 * connection asks again with PRE_SLEEP every DEAF_PROBE_MS, which costs
 * gearmand a packet and the master nothing.
 *
 * and jobs queued before a (re)connect or a registration change are seen
 * as soon as the registration is out. The master is asked for room only
 * in WAITS, so an idle node or one with nothing waiting costs it nothing.
 *
 * gearmand re-queues the jobs a connection holds of a function when it
 * gets CANT_DO for it (and all of them on RESET_ABILITIES or a lost
 * connection): so a function is withdrawn only once no executor holds a
 * job of it on that connection, and RESET_ABILITIES is never sent.
 *
 * The connections, their backoff, heartbeat and poll are the worker loop's
 * (daemon/wloop.h); this file is the node's part of it, in its hooks.
 * Executors reply (WORK_DATA, STATUS, COMPLETE...) on the connection
 * their job came from, through dispatch_hold: each connection has a lock
 * for its reads and writes and a generation, so a reply never goes to a
 * newer connection that does not hold the job. Their admin questions go on
 * one kept admin connection per gearmand (dispatch_job_retries).
 */
#include "node.h"

#include "clock.h"
#include "gadmin.h"
#include "gwconn.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "strvec.h"
#include "xalloc.h"
#include "daemon/daemon.h"
#include "daemon/shutdown.h"
#include "daemon/wloop.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A deaf connection asks again this often: the longest a new job waits unseen. */
#define DEAF_PROBE_MS 500

enum conn_state {
	C_DOWN,
	C_IDLE,        /* connected, nothing out: probe with PRE_SLEEP */
	C_SLEEPING,    /* PRE_SLEEP out: a NOOP says a job waits */
	C_WAITS,       /* a job waits: GRAB once the node has room */
	C_GRAB_SENT,   /* GRAB_JOB_UNIQ out, executor `reserved` kept for it */
};

/* A server's connection as the node sees it; the connection itself is slot's. */
struct server_conn {
	struct wloop_slot *slot;       /* its io lock guards the reads and writes on slot->c */
	enum conn_state   state;
	int               reserved;    /* executor kept for the GRAB out, or -1 */
	bool              deaf;        /* NOOPed and no GRAB since: asleep, it hears of no new job */
	long long         probe_at;    /* deaf: when to ask again with PRE_SLEEP (clk_now_ms) */
	char            **registered;  /* sorted function names, as sent */
	size_t            nregistered;
	char            **todo;        /* planned: CAN_DO todo[0..nadd), CANT_DO the rest */
	size_t            ntodo, nadd, todo_at;  /* todo_at: next one to send */
	bool              held_back;   /* the plan keeps a function an executor holds */
	bool              synced;      /* registration matches the functions of generation reg_gen */
	bool              echo_out;    /* a registration batch not yet processed */
	unsigned          reg_gen;     /* node_functions_gen when the registration was planned */
	pthread_mutex_t   admin_lock;  /* admin */
	struct gadmin_conn *admin;   /* kept for executors' "show jobs" */
};

struct dispatch {
	struct node       *node;
	char               id[300];    /* worker id: the node's name */
	pthread_t          thread;
	struct wloop       loop;       /* the connections, one slot per server */
	struct jk_client  *jk;         /* for capacity checks */
	bool               room_hint;  /* this round: a job of ours ended, deaf connections ask now */
	struct server_conn sc[CONFIG_MAX_SERVERS];
};

void
dispatch_wake(struct dispatch *d)
{
	wloop_wake(&d->loop);
}

static void
forget_registration(struct server_conn *s)
{
	strv_free(s->registered, s->nregistered);
	s->registered = NULL;
	s->nregistered = 0;
	strv_free(s->todo, s->ntodo);
	s->todo = NULL;
	s->ntodo = s->nadd = s->todo_at = 0;
}

/* Close s (its io lock held): gearmand re-queues the jobs it held; loop_closed forgets the rest. */
static void
conn_down(struct dispatch *d, struct server_conn *s, const char *why)
{
	wloop_close(&d->loop, (size_t)(s - d->sc), why);
}

struct gw_conn *
dispatch_hold(struct dispatch *d, size_t server, unsigned conn_gen)
{
	return wloop_hold(&d->loop, server, conn_gen);
}

char *
dispatch_admin_ask(struct dispatch *d, size_t server, const char *cmd, int timeout_ms)
{
	struct server_conn *s = &d->sc[server];
	char err[256], *text;

	pthread_mutex_lock(&s->admin_lock);
	text = gadmin_conn_ask(s->admin, cmd, timeout_ms, err, sizeof(err));
	pthread_mutex_unlock(&s->admin_lock);
	if (!text)
		log_warnx("gearmand admin \"%s\": %s", cmd, err);
	return text;
}

int
dispatch_job_retries(struct dispatch *d, size_t server, const char *handle, int timeout_ms)
{
	struct server_conn *s = &d->sc[server];
	int n;

	pthread_mutex_lock(&s->admin_lock);
	n = gadmin_job_retries(s->admin, handle, timeout_ms);
	pthread_mutex_unlock(&s->admin_lock);
	return n;
}

void
dispatch_release(struct dispatch *d, size_t server, bool failed)
{
	wloop_release(&d->loop, server, failed);
}

/*
 * Registration goes out in batches of REG_BATCH bytes, each followed by an
 * ECHO_REQ; the next batch waits for the ECHO_RES. gearmand handles every
 * packet of every connection in one thread, in arrival order: fifty agents
 * writing 6,000 CAN_DOs each at once put 300,000 packets ahead of any
 * client's SUBMIT_JOB (gearmand issue 393: > 1 s). With a batch in flight
 * per connection, a submit waits behind at most one batch per agent: about
 * 30 CAN_DOs of 1 kB, some 0.1 ms of gearmand's time. Measured with 50
 * agents re-registering 295,000 functions after a gearmand restart: p99 of
 * an unrelated submit 54-66 ms with 4 kB batches, 27-54 ms with 2 kB,
 * 12-27 ms with 1 kB, all registered in 1.4-1.7 s either way. Far more
 * agents per gearmand would want the pace set by the ECHO's round trip.
 */
#ifndef REG_BATCH
#define REG_BATCH	1024
#endif

/* How many of names[0..n) fit in *budget bytes of packets (at least one). */
static size_t
batch_count(char **names, size_t n, size_t *budget)
{
	size_t i, len;

	for (i = 0; i < n; i++) {
		len = 12 + strlen(names[i]);
		if (i > 0 && len > *budget)
			break;
		*budget = len > *budget ? 0 : *budget - len;
	}
	return i;
}

/*
 * Plan the changes that bring s's registration to want (sorted): todo gets
 * the CAN_DOs, then the CANT_DOs. Functions an executor still holds a job
 * of stay registered for now (held_back: planned again when the job ends).
 */
static void
plan_registration(struct dispatch *d, size_t server, char **want, size_t nwant)
{
	struct server_conn *s = &d->sc[server];
	size_t i, n = 0;

	s->todo = xcalloc(nwant + s->nregistered + 1, sizeof(char *));
	s->held_back = false;
	for (i = 0; i < nwant; i++)
		if (!strv_sorted_has(s->registered, s->nregistered, want[i]))
			s->todo[n++] = xstrdup(want[i]);
	s->nadd = n;
	for (i = 0; i < s->nregistered; i++) {
		if (strv_sorted_has(want, nwant, s->registered[i]))
			continue;
		if (node_holds(d->node, server, s->slot->conn_gen, s->registered[i]))
			s->held_back = true;
		else
			s->todo[n++] = xstrdup(s->registered[i]);
	}
	s->ntodo = n;
	s->todo_at = 0;
}

/*
 * Send the next batch of the plan and an ECHO_REQ, and count it as
 * registered. Both the batch's CAN_DOs and its CANT_DOs are sorted, and so
 * is registered: one merge pass.
 */
static int
send_batch(struct server_conn *s)
{
	size_t budget = REG_BATCH, from = s->todo_at, nadd = 0, ndrop = 0, i, a, r, n = 0;
	char **next, **adds, **drops;

	if (from < s->nadd)
		nadd = batch_count(s->todo + from, s->nadd - from, &budget);
	if (from + nadd >= s->nadd && budget > 0)
		ndrop = batch_count(s->todo + from + nadd, s->ntodo - from - nadd, &budget);
	adds = s->todo + from;
	drops = s->todo + from + nadd;
	if (gw_send_each(s->slot->c, GW_CAN_DO, adds, nadd) < 0 ||
	    gw_send_each(s->slot->c, GW_CANT_DO, drops, ndrop) < 0 ||
	    gw_send(s->slot->c, GW_ECHO_REQ, NULL, NULL, 0) < 0)
		return -1;
	s->echo_out = true;
	s->todo_at += nadd + ndrop;

	next = xcalloc(s->nregistered + nadd + 1, sizeof(char *));
	for (r = 0, a = 0, i = 0; r < s->nregistered || a < nadd; ) {
		int c = r == s->nregistered ? 1 : a == nadd ? -1 : strcmp(s->registered[r], adds[a]);

		if (c > 0) {
			next[n++] = adds[a];	/* moves from todo to registered */
			adds[a++] = NULL;
			continue;
		}
		while (i < ndrop && strcmp(drops[i], s->registered[r]) < 0)
			i++;
		if (i < ndrop && strcmp(drops[i], s->registered[r]) == 0)
			free(s->registered[r]);
		else
			next[n++] = s->registered[r];
		r++;
		if (c == 0)		/* never planned, but keep one copy */
			free(adds[a]), adds[a++] = NULL;
	}
	free(s->registered);
	s->registered = next;
	s->nregistered = n;
	return 0;
}

/*
 * Refuse a job by its handle, on its own connection, with the JSON warning
 * of the executors' refusals (executor.c send_warning_fail). Closing the
 * connection instead would make gearmand hand the job out again, to this
 * agent or another, and hand back every job the node's other executors
 * hold on it too. Its io lock held.
 */
static void
refuse_job(struct dispatch *d, struct server_conn *s, const char *handle, const char *fn,
    const char *why)
{
	char *text;
	json_t *w;

	log_warnx("%s: refused %s (job %s from gearmand %s): %s", d->id, fn, handle, gw_peer(s->slot->c), why);
	metrics_add("jga_jobs_refused_total", NULL, 1);
	w = json_pack("{s:s}", "error", why);
	text = json_dumps(w, JSON_COMPACT);
	json_decref(w);
	if (gw_work_warning(s->slot->c, handle, text, strlen(text)) < 0 || gw_work_fail(s->slot->c, handle) < 0)
		conn_down(d, s, gw_error(s->slot->c));
	free(text);
}

/*
 * A job whose workload is over the packet limit (gwconn skipped it): it
 * answered our GRAB, so the executor reserved for it is free again; the
 * job is refused, the connection kept. Its io lock held.
 */
static void
refuse_oversize(struct dispatch *d, struct server_conn *s, const struct gw_packet *p)
{
	char msg[256], *handle, *fn;

	s->state = C_IDLE;
	node_grab_release(d->node, s->reserved);
	s->reserved = -1;
	snprintf(msg, sizeof(msg), "job workload of %zu bytes is over the limit of %u bytes",
	    p->workload_len, GW_MAX_BODY);
	handle = xstrndup(p->arg[0], p->len[0]);
	fn = xstrndup(p->arg[1], p->len[1]);
	refuse_job(d, s, handle, fn, msg);
	free(handle);
	free(fn);
}

/* A JOB_ASSIGN: hand it to the executor reserved for it (its io lock held). */
static void
take_job(struct dispatch *d, size_t server, struct gw_packet *p)
{
	struct server_conn *s = &d->sc[server];
	struct gw_job job;
	int ex = s->reserved;

	s->state = C_IDLE;
	s->reserved = -1;
	if (gw_job_from_packet(p, &job) < 0)	/* only for a packet that is not a whole JOB_ASSIGN */
		fatalx("internal error: a JOB_ASSIGN not read as a job");
	switch (node_assign_job(d->node, ex, &job, server, s->slot->conn_gen)) {
	case NODE_JOB_GIVEN:
		break;
	case NODE_JOB_HAND_BACK:
		gw_job_free(&job);
		conn_down(d, s, "stopping; job handed back to gearmand");
		break;
	case NODE_JOB_REFUSE_NO_EXECUTOR:
		refuse_job(d, s, job.handle, job.function, "no free executor on this node (a job it did not ask for)");
		gw_job_free(&job);
		break;
	}
}

/* A packet on server's connection (the loop's packet hook; its io lock held). */
static void
loop_packet(void *arg, size_t server, struct gw_packet *p)
{
	struct dispatch *d = arg;
	struct server_conn *s = &d->sc[server];

	switch (p->type) {
	case GW_NO_JOB:
		/* Nothing after all (another worker was quicker): probe again. */
		if (s->state == C_GRAB_SENT) {
			node_grab_release(d->node, s->reserved);
			s->reserved = -1;
			s->state = C_IDLE;
		}
		break;
	case GW_NOOP:
		/* gearmand NOOPs a sleeper once, then not again until it GRABs. */
		s->deaf = true;
		if (s->state == C_SLEEPING)
			s->state = C_WAITS;
		break;
	case GW_ECHO_RES:
		/* gearmand has processed the last registration batch: the next may go. */
		s->echo_out = false;
		break;
	case GW_JOB_ASSIGN:
	case GW_JOB_ASSIGN_UNIQ:
		if (p->oversize)
			refuse_oversize(d, s, p);
		else
			take_job(d, server, p);
		break;
	case GW_ERROR:
		/* e.g. JOB_NOT_FOUND for a reply to a job gearmand re-queued: not fatal. */
		log_warnx("%s: gearmand %s says: %.*s %.*s", d->id, gw_peer(s->slot->c),
		    (int)(p->nargs > 0 ? p->len[0] : 0), p->nargs > 0 ? p->arg[0] : "",
		    (int)(p->nargs > 1 ? p->len[1] : 0), p->nargs > 1 ? p->arg[1] : "");
		break;
	default:
		log_debug("%s: ignoring %s from %s", d->id, gw_type_name(p->type), gw_peer(s->slot->c));
		break;
	}
}

/* PRE_SLEEP: gearmand answers NOOP (now or when one comes) if a job waits. */
static void
probe(struct dispatch *d, struct server_conn *s)
{
	if (gw_pre_sleep(s->slot->c) < 0)
		conn_down(d, s, gw_error(s->slot->c));
	else {
		s->state = C_SLEEPING;
		s->probe_at = clk_now_ms() + DEAF_PROBE_MS;
	}
}

/* The connection is up (the loop's connected hook): probe once registered. */
static int
loop_connected(void *arg, size_t i)
{
	struct dispatch *d = arg;
	struct server_conn *s = &d->sc[i];

	if (s->slot->down_said)
		log_info("%s: connected to gearmand %s", d->id, gw_peer(s->slot->c));
	s->state = C_IDLE;
	return 0;
}

/*
 * The connection is closing, or could not be made (the loop's closed
 * hook): said once per outage; the GRAB out and the registration are
 * forgotten, gearmand re-queues the jobs the connection held.
 */
static void
loop_closed(void *arg, size_t i, const char *why)
{
	struct dispatch *d = arg;
	struct server_conn *s = &d->sc[i];

	metrics_add("jga_gearman_reconnects_total", NULL, 1);
	if (!s->slot->down_said)
		log_warnx("%s: gearmand %s: %s; reconnecting", d->id,
		    s->slot->c ? gw_peer(s->slot->c) : "?", why);
	s->slot->down_said = true;
	s->state = C_DOWN;
	s->deaf = false;
	node_grab_release(d->node, s->reserved);
	s->reserved = -1;
	s->synced = false;
	s->echo_out = false;
	forget_registration(s);
}

/* Bring the registration in line with the node's functions, a batch at a time. */
static void
sync_registration(struct dispatch *d, size_t i)
{
	struct server_conn *s = &d->sc[i];
	unsigned fn_gen = node_functions_gen(d->node);

	if (!s->echo_out && s->todo_at == s->ntodo && (!s->synced || s->reg_gen != fn_gen)) {
		size_t nwant;
		char **want = node_offered_functions(d->node, &nwant, &fn_gen);

		strv_sort(want, nwant);
		strv_free(s->todo, s->ntodo);
		plan_registration(d, i, want, nwant);
		s->reg_gen = fn_gen;
		s->synced = s->ntodo == 0 && !s->held_back;
		strv_free(want, nwant);
	}
	if (!s->echo_out && s->todo_at < s->ntodo) {
		if (send_batch(s) < 0) {
			conn_down(d, s, gw_error(s->slot->c));
			return;
		}
		if (s->todo_at == s->ntodo) {
			s->synced = !s->held_back;
			if (s->synced)
				log_info("%s: %zu functions registered on gearmand %s", d->id, s->nregistered,
				    gw_peer(s->slot->c));
			/*
			 * gearmand wakes sleepers only for new jobs: ask again for
			 * queued ones of the new functions, once the whole change
			 * is out.
			 */
			if (s->state == C_SLEEPING)
				s->state = C_IDLE;
		}
	}
}

/* Register, and ask gearmand whether a job waits (the loop's tend hook; up, io held). */
static void
loop_tend(void *arg, size_t i)
{
	struct dispatch *d = arg;
	struct server_conn *s = &d->sc[i];

	sync_registration(d, i);
	if (s->slot->c && s->nregistered > 0 && s->todo_at == s->ntodo && (s->state == C_IDLE ||
	    (s->state == C_SLEEPING && s->deaf && (d->room_hint || clk_passed(s->probe_at)))))
		probe(d, s);
}

/*
 * A GRAB on each connection where a job waits, while the node has room
 * (each GRAB reserves an executor). When the master says the node is
 * full, ask gearmand again whether the jobs still wait (another node may
 * have taken them): the master is asked again only if they do. True if a
 * connection still waits for room.
 */
static bool
maybe_grab(struct dispatch *d)
{
	bool waiting = false, any_waits = false;
	size_t i;

	for (i = 0; i < d->loop.n; i++) {
		struct server_conn *s = &d->sc[i];
		int ex;

		pthread_mutex_lock(&s->slot->io);
		if (s->slot->c && s->state == C_WAITS)
			any_waits = true;
		if (!s->slot->c || s->state != C_WAITS || s->todo_at != s->ntodo) {
			pthread_mutex_unlock(&s->slot->io);
			continue;
		}
		pthread_mutex_unlock(&s->slot->io);
		/* Looks at Jenkins: without the lock, so executors can reply meanwhile. */
		ex = node_grab_reserve(d->node, d->jk);
		pthread_mutex_lock(&s->slot->io);
		if (ex >= 0 && s->slot->c && s->state == C_WAITS) {
			s->deaf = false;
			if (gw_grab(s->slot->c) < 0) {
				node_grab_release(d->node, ex);
				conn_down(d, s, gw_error(s->slot->c));
			} else {
				s->reserved = ex;
				s->state = C_GRAB_SENT;
			}
		} else if (ex >= 0)
			node_grab_release(d->node, ex);
		else if (ex == NODE_NO_ROOM && s->slot->c && s->state == C_WAITS)
			probe(d, s);
		else if (ex == NODE_LATER && s->slot->c && s->state == C_WAITS)
			waiting = true;
		pthread_mutex_unlock(&s->slot->io);
	}
	node_set_jobs_wait(d->node, any_waits);
	return waiting;
}

/*
 * How long the loop may sleep: until the next look at Jenkins if a job
 * waits, the next probe of a deaf connection. Only the dispatcher thread
 * changes a connection's state, so it reads them without their locks.
 */
static int
loop_timeout(struct dispatch *d, bool waiting)
{
	long long ms;
	size_t i;

	for (i = 0; i < d->loop.n; i++)
		if (d->sc[i].slot->c && d->sc[i].state == C_SLEEPING && d->sc[i].deaf)
			return DEAF_PROBE_MS;
	if (!waiting)
		return WLOOP_IDLE_MS;
	ms = clk_left_ms(node_recheck_at_ms(d->node)) + 1;
	return ms > WLOOP_IDLE_MS ? WLOOP_IDLE_MS : (int)ms;
}

/* Stopping: keep the connections while executors still reply on them (the loop's round hook). */
static bool
loop_round(void *arg)
{
	struct dispatch *d = arg;

	if (shutdown_requested() && !node_holds(d->node, (size_t)-1, 0, NULL))
		return false;
	d->room_hint = node_take_room_hint(d->node);
	return true;
}

/* Grab where a job waits and the node has room (the loop's step hook). */
static int
loop_step(void *arg)
{
	struct dispatch *d = arg;
	bool waiting = false;

	if (!shutdown_requested())
		waiting = maybe_grab(d);
	return loop_timeout(d, waiting);
}

static const struct wloop_ops dispatch_ops = {
	.round = loop_round,
	.connected = loop_connected,
	.closed = loop_closed,
	.tend = loop_tend,
	.step = loop_step,
	.packet = loop_packet,
};

static void *
dispatch_thread(void *arg)
{
	struct dispatch *d = arg;
	size_t i;

	wloop_run(&d->loop, &dispatch_ops, d);
	for (i = 0; i < d->loop.n; i++)
		forget_registration(&d->sc[i]);
	return NULL;
}

struct dispatch *
dispatch_start(struct node *n)
{
	struct dispatch *d = xcalloc(1, sizeof(*d));
	const struct config *cfg = n->cfg;
	size_t i;

	d->node = n;
	snprintf(d->id, sizeof(d->id), "%s", cfg->node_name);
	wloop_init(&d->loop, cfg, d->id);
	d->jk = daemon_jenkins_client(cfg);
	for (i = 0; i < d->loop.n; i++) {
		d->sc[i].slot = &d->loop.slot[i];
		pthread_mutex_init(&d->sc[i].admin_lock, NULL);
		d->sc[i].admin = gadmin_conn_new(cfg->gearman_tls, cfg->servers[i].host, cfg->servers[i].port);
		d->sc[i].reserved = -1;
	}
	n->dispatch = d;
	if (pthread_create(&d->thread, NULL, dispatch_thread, d) != 0)
		fatalx("cannot start the dispatch thread");
	return d;
}

void
dispatch_join(struct dispatch *d)
{
	size_t i;

	dispatch_wake(d);
	pthread_join(d->thread, NULL);
	for (i = 0; i < d->loop.n; i++) {
		pthread_mutex_destroy(&d->sc[i].admin_lock);
		gadmin_conn_free(d->sc[i].admin);
	}
	wloop_fini(&d->loop);
	jk_client_free(d->jk);
	free(d);
}
