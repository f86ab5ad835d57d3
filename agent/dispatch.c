/*
 * dispatch: the node's worker connections, one per gearmand, and the
 * thread that owns them.
 *
 * Loop: keep the connections up (jittered backoff), bring the
 * registration in line with the map (CAN_DO what is new, CANT_DO what is
 * gone), and send GRAB_JOB_UNIQ when an executor is free and the node
 * allows it (node_grab_permit); hand each JOB_ASSIGN to a free executor.
 *
 * gearmand re-queues the jobs a connection holds of a function when it
 * gets CANT_DO for it (and all of them on RESET_ABILITIES or a lost
 * connection): so a function is withdrawn only once no executor holds a
 * job of it on that connection, and RESET_ABILITIES is never sent.
 *
 * Executors reply (WORK_DATA, STATUS, COMPLETE...) on the connection
 * their job came from, through dispatch_hold: each connection has a lock
 * for its reads and writes and a generation, so a reply never goes to a
 * newer connection that does not hold the job. Their admin questions go on
 * one kept admin connection per gearmand (dispatch_job_retries).
 */
#include "node.h"

#include "gm.h"
#include "gwconn.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "shutdown.h"
#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define LOOP_MS 1000

enum conn_state { C_DOWN, C_IDLE, C_GRAB_SENT, C_SLEEPING };

struct server_conn {
	pthread_mutex_t   io;          /* c's reads and writes; c and conn_gen */
	struct gw_conn   *c;
	unsigned          conn_gen;    /* bumped each time c is closed */
	bool              broken;      /* a reply's write failed */
	enum conn_state   state;
	struct gm_backoff bo;
	struct timespec   retry_at;
	char            **registered;  /* sorted function names, as sent */
	size_t            nregistered;
	char            **todo;        /* planned: CAN_DO todo[0..nadd), CANT_DO the rest */
	size_t            ntodo, nadd, todo_at;  /* todo_at: next one to send */
	bool              held_back;   /* the plan keeps a function an executor holds */
	bool              synced;      /* registration matches generation gen */
	bool              echo_out;    /* a registration batch not yet processed */
	unsigned          gen;
	bool              reported_down;
	pthread_mutex_t   admin_lock;  /* admin */
	struct gm_admin_conn *admin;   /* kept for executors' "show jobs" */
};

struct dispatch {
	struct node       *node;
	char               id[300];    /* worker id: the node's name */
	pthread_t          thread;
	int                wakefd;     /* eventfd */
	struct jk_client  *jk;         /* for capacity checks */
	struct server_conn sc[CONFIG_MAX_SERVERS];
	size_t             nsc;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool
in_sorted(char **v, size_t n, const char *s)
{
	return n > 0 && bsearch(&s, v, n, sizeof(*v), cmp_str) != NULL;
}

void
dispatch_wake(struct dispatch *d)
{
	uint64_t one = 1;

	(void)!write(d->wakefd, &one, sizeof(one));
}

static void
forget_registration(struct server_conn *s)
{
	node_strv_free(s->registered, s->nregistered);
	s->registered = NULL;
	s->nregistered = 0;
	node_strv_free(s->todo, s->ntodo);
	s->todo = NULL;
	s->ntodo = s->nadd = s->todo_at = 0;
}

/* Close s (with s->io held): the jobs it held go back to gearmand's queue. */
static void
conn_down(struct dispatch *d, struct server_conn *s, const char *why)
{
	metrics_add("jga_gearman_reconnects_total", NULL, 1);
	if (!s->reported_down)
		log_warnx("%s: gearmand %s: %s; reconnecting", d->id,
		    s->c ? gw_peer(s->c) : "?", why);
	s->reported_down = true;
	gw_close(s->c);
	s->c = NULL;
	s->conn_gen++;
	s->broken = false;
	s->state = C_DOWN;
	s->synced = false;
	s->echo_out = false;
	forget_registration(s);
	timespec_in(&s->retry_at, gm_backoff_next(&s->bo));
}

struct gw_conn *
dispatch_hold(struct dispatch *d, size_t server, unsigned conn_gen)
{
	struct server_conn *s = &d->sc[server];

	pthread_mutex_lock(&s->io);
	if (s->c && !s->broken && s->conn_gen == conn_gen)
		return s->c;
	pthread_mutex_unlock(&s->io);
	return NULL;
}

char *
dispatch_admin_ask(struct dispatch *d, size_t server, const char *cmd, int timeout_ms)
{
	struct server_conn *s = &d->sc[server];
	char err[256], *text;

	pthread_mutex_lock(&s->admin_lock);
	text = gm_admin_conn_ask(s->admin, cmd, timeout_ms, err, sizeof(err));
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
	n = gm_job_retries(s->admin, handle, timeout_ms);
	pthread_mutex_unlock(&s->admin_lock);
	return n;
}

void
dispatch_release(struct dispatch *d, size_t server, bool failed)
{
	struct server_conn *s = &d->sc[server];

	if (failed)
		s->broken = true;
	pthread_mutex_unlock(&s->io);
	if (failed)
		dispatch_wake(d);
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

	s->todo = calloc(nwant + s->nregistered + 1, sizeof(char *));
	if (!s->todo)
		fatalx("out of memory");
	s->held_back = false;
	for (i = 0; i < nwant; i++)
		if (!in_sorted(s->registered, s->nregistered, want[i]) && !(s->todo[n++] = strdup(want[i])))
			fatalx("out of memory");
	s->nadd = n;
	for (i = 0; i < s->nregistered; i++) {
		if (in_sorted(want, nwant, s->registered[i]))
			continue;
		if (node_holds(d->node, server, s->conn_gen, s->registered[i]))
			s->held_back = true;
		else if (!(s->todo[n++] = strdup(s->registered[i])))
			fatalx("out of memory");
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
	if (gw_send_each(s->c, GW_CAN_DO, adds, nadd) < 0 || gw_send_each(s->c, GW_CANT_DO, drops, ndrop) < 0 ||
	    gw_send(s->c, GW_ECHO_REQ, NULL, NULL, 0) < 0)
		return -1;
	s->echo_out = true;
	s->todo_at += nadd + ndrop;

	if (!(next = calloc(s->nregistered + nadd + 1, sizeof(char *))))
		fatalx("out of memory");
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

/* A JOB_ASSIGN: hand it to a free executor (s->io held). */
static void
take_job(struct dispatch *d, size_t server, struct gw_packet *p)
{
	struct server_conn *s = &d->sc[server];
	struct node *n = d->node;
	struct gw_job job;
	int i;

	s->state = C_IDLE;
	if (gw_job_from_packet(p, &job) < 0) {
		conn_down(d, s, "malformed JOB_ASSIGN");
		return;
	}
	pthread_mutex_lock(&n->lock);
	/*
	 * Stopping, or (after a map change) no executor left for it: hand it
	 * back by closing the connection, unless that would also re-queue
	 * jobs other executors hold on it — then it runs.
	 */
	for (i = 0; i < n->nex; i++)
		if (n->ex[i] && i < (n->map ? n->map->executors : 0) && executor_free(n->ex[i]))
			break;
	if (i == n->nex || (shutdown_requested() && !node_holds_locked(n, server, s->conn_gen, NULL))) {
		pthread_mutex_unlock(&n->lock);
		gw_job_free(&job);
		conn_down(d, s, shutdown_requested() ? "stopping; job handed back to gearmand" :
		    "no free executor; job handed back to gearmand");
		return;
	}
	n->starting++;
	executor_give(n->ex[i], &job, server, s->conn_gen);
	pthread_mutex_unlock(&n->lock);
}

static void
handle_packet(struct dispatch *d, size_t server, struct gw_packet *p)
{
	struct server_conn *s = &d->sc[server];

	switch (p->type) {
	case GW_NO_JOB:
		if (gw_pre_sleep(s->c) < 0)
			conn_down(d, s, gw_error(s->c));
		else
			s->state = C_SLEEPING;
		break;
	case GW_NOOP:
		if (s->state == C_SLEEPING)
			s->state = C_IDLE;
		break;
	case GW_ECHO_RES:
		/* gearmand has processed the last registration batch: the next may go. */
		s->echo_out = false;
		break;
	case GW_JOB_ASSIGN:
	case GW_JOB_ASSIGN_UNIQ:
		take_job(d, server, p);
		break;
	case GW_ERROR:
		/* e.g. JOB_NOT_FOUND for a reply to a job gearmand re-queued: not fatal. */
		log_warnx("%s: gearmand %s says: %.*s %.*s", d->id, gw_peer(s->c),
		    (int)(p->nargs > 0 ? p->len[0] : 0), p->nargs > 0 ? p->arg[0] : "",
		    (int)(p->nargs > 1 ? p->len[1] : 0), p->nargs > 1 ? p->arg[1] : "");
		break;
	default:
		log_debug("%s: ignoring %s from %s", d->id, gw_type_name(p->type), gw_peer(s->c));
		break;
	}
}

/* Connect, register, and note whether a GRAB is out; s->io held. */
static void
tend_conn(struct dispatch *d, size_t i, bool *grabbing)
{
	struct server_conn *s = &d->sc[i];
	const struct config *cfg = d->node->cfg;
	char err[512];
	unsigned gen = node_functions_gen(d->node);

	if (s->c && s->broken)
		conn_down(d, s, gw_error(s->c));
	if (!s->c && timespec_passed(&s->retry_at)) {
		s->c = gw_connect(cfg->servers[i].host, cfg->servers[i].port, d->id, 5000, err, sizeof(err));
		if (!s->c) {
			conn_down(d, s, err);
			return;
		}
		if (s->reported_down)
			log_info("%s: connected to gearmand %s", d->id, gw_peer(s->c));
		s->reported_down = false;
		gm_backoff_reset(&s->bo);
		s->state = C_IDLE;
	}
	if (s->c && !s->echo_out && s->todo_at == s->ntodo && (!s->synced || s->gen != gen)) {
		size_t nwant;
		char **want = node_offered_functions(d->node, &nwant, &gen);

		qsort(want, nwant, sizeof(*want), cmp_str);
		node_strv_free(s->todo, s->ntodo);
		plan_registration(d, i, want, nwant);
		s->gen = gen;
		s->synced = s->ntodo == 0 && !s->held_back;
		node_strv_free(want, nwant);
	}
	if (s->c && !s->echo_out && s->todo_at < s->ntodo) {
		if (send_batch(s) < 0) {
			conn_down(d, s, gw_error(s->c));
			return;
		}
		if (s->todo_at == s->ntodo) {
			s->synced = !s->held_back;
			if (s->synced)
				log_info("%s: %zu functions registered on gearmand %s", d->id, s->nregistered,
				    gw_peer(s->c));
			/*
			 * gearmand wakes sleepers only for new jobs: grab again for
			 * queued ones, once the whole change is out (a grab costs a
			 * capacity request to the master; one per batch was 26 per
			 * agent in a cold start of 50).
			 */
			if (s->state == C_SLEEPING)
				s->state = C_IDLE;
		}
	}
	if (s->c && (s->state == C_GRAB_SENT || s->state == C_SLEEPING))
		*grabbing = true;
}

/* One GRAB out at a time: a free executor, the node's permission, no registration under way. */
static void
maybe_grab(struct dispatch *d)
{
	size_t i;

	for (i = 0; i < d->nsc; i++) {
		struct server_conn *s = &d->sc[i];
		bool ok;

		pthread_mutex_lock(&s->io);
		ok = s->c && s->state == C_IDLE && s->nregistered > 0 && s->todo_at == s->ntodo;
		pthread_mutex_unlock(&s->io);
		if (!ok)
			continue;
		/* Looks at Jenkins: without the lock, so executors can reply meanwhile. */
		if (!node_grab_permit(d->node, d->jk))
			return;
		pthread_mutex_lock(&s->io);
		if (s->c && s->state == C_IDLE) {
			if (gw_grab(s->c) < 0)
				conn_down(d, s, gw_error(s->c));
			else
				s->state = C_GRAB_SENT;
		}
		pthread_mutex_unlock(&s->io);
		return;
	}
}

static void *
dispatch_thread(void *arg)
{
	struct dispatch *d = arg;
	struct node *n = d->node;
	size_t i;

	/* Stopping: keep the connections while executors still reply on them. */
	while (!shutdown_requested() || node_holds(n, (size_t)-1, 0, NULL)) {
		struct pollfd pfd[CONFIG_MAX_SERVERS + 1];
		bool grabbing = false;
		int np = 0;

		for (i = 0; i < d->nsc; i++) {
			pthread_mutex_lock(&d->sc[i].io);
			tend_conn(d, i, &grabbing);
			pthread_mutex_unlock(&d->sc[i].io);
		}
		if (!grabbing && !shutdown_requested() && node_free_executors(n) > 0)
			maybe_grab(d);

		for (i = 0; i < d->nsc; i++) {
			pthread_mutex_lock(&d->sc[i].io);
			pfd[i].fd = d->sc[i].c ? gw_fd(d->sc[i].c) : -1;
			pthread_mutex_unlock(&d->sc[i].io);
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		np = (int)d->nsc;
		pfd[np].fd = d->wakefd;
		pfd[np].events = POLLIN;
		pfd[np].revents = 0;
		if (poll(pfd, (nfds_t)np + 1, LOOP_MS) < 0 && errno != EINTR)
			fatal("poll");
		if (pfd[np].revents & POLLIN) {
			uint64_t v;
			(void)!read(d->wakefd, &v, sizeof(v));
		}
		for (i = 0; i < d->nsc; i++) {
			struct server_conn *s = &d->sc[i];
			struct gw_packet p;
			int r;

			if (!(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			pthread_mutex_lock(&s->io);
			while (s->c && (r = gw_read(s->c, &p, 0)) != 0) {
				if (r < 0) {
					conn_down(d, s, gw_error(s->c));
					break;
				}
				handle_packet(d, i, &p);
			}
			pthread_mutex_unlock(&s->io);
		}
	}
	for (i = 0; i < d->nsc; i++) {
		pthread_mutex_lock(&d->sc[i].io);
		gw_close(d->sc[i].c);
		d->sc[i].c = NULL;
		d->sc[i].conn_gen++;
		forget_registration(&d->sc[i]);
		pthread_mutex_unlock(&d->sc[i].io);
	}
	return NULL;
}

struct dispatch *
dispatch_start(struct node *n)
{
	struct dispatch *d = calloc(1, sizeof(*d));
	const struct config *cfg = n->cfg;
	size_t i;

	if (!d)
		fatalx("out of memory");
	d->node = n;
	snprintf(d->id, sizeof(d->id), "%s", cfg->node_name);
	d->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->wakefd < 0)
		fatal("eventfd");
	d->jk = daemon_jenkins_client(cfg);
	d->nsc = cfg->nservers;
	for (i = 0; i < d->nsc; i++) {
		pthread_mutex_init(&d->sc[i].io, NULL);
		pthread_mutex_init(&d->sc[i].admin_lock, NULL);
		if (!(d->sc[i].admin = gm_admin_conn_new(cfg->servers[i].host, cfg->servers[i].port)))
			fatalx("out of memory");
		gm_backoff_init(&d->sc[i].bo, 500, 30000);
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
	for (i = 0; i < d->nsc; i++) {
		pthread_mutex_destroy(&d->sc[i].io);
		pthread_mutex_destroy(&d->sc[i].admin_lock);
		gm_admin_conn_free(d->sc[i].admin);
	}
	jk_client_free(d->jk);
	close(d->wakefd);
	free(d);
}
