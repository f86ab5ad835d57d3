/* wloop: see wloop.h. */
#include "wloop.h"

#include "clock.h"
#include "gwconn.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

void
wloop_init(struct wloop *w, const struct config *cfg, const char *id)
{
	size_t i;

	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	snprintf(w->id, sizeof(w->id), "%s", id);
	if ((w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		fatal("eventfd");
	w->n = cfg->nservers;
	for (i = 0; i < w->n; i++) {
		pthread_mutex_init(&w->slot[i].io, NULL);
		backoff_init(&w->slot[i].bo, BACKOFF_GEARMAN_MIN_MS, BACKOFF_GEARMAN_MAX_MS);
	}
}

void
wloop_fini(struct wloop *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		pthread_mutex_destroy(&w->slot[i].io);
	close(w->wakefd);
}

void
wloop_wake(struct wloop *w)
{
	uint64_t one = 1;

	(void)!write(w->wakefd, &one, sizeof(one));
}

void
wloop_close(struct wloop *w, size_t i, const char *why)
{
	struct wloop_slot *s = &w->slot[i];

	/* why may be gw_error(s->c): used before the close. */
	if (w->ops->closed)
		w->ops->closed(w->arg, i, why);
	gw_close(s->c);
	s->c = NULL;
	s->conn_gen++;
	s->broken = false;
	s->beat.out = false;
	s->retry_at = clk_now_ms() + backoff_next(&s->bo);
}

struct gw_conn *
wloop_hold(struct wloop *w, size_t i, unsigned conn_gen)
{
	struct wloop_slot *s = &w->slot[i];

	pthread_mutex_lock(&s->io);
	if (s->c && !s->broken && s->conn_gen == conn_gen)
		return s->c;
	pthread_mutex_unlock(&s->io);
	return NULL;
}

void
wloop_release(struct wloop *w, size_t i, bool failed)
{
	struct wloop_slot *s = &w->slot[i];

	if (failed)
		s->broken = true;
	pthread_mutex_unlock(&s->io);
	if (failed)
		wloop_wake(w);
}

enum wloop_beat_do
wloop_beat_next(struct wloop_beat *b, long quiet_ms, int heartbeat_s, long long now_ms)
{
	if (quiet_ms < heartbeat_s * 1000L) {
		b->out = false;
		return WLOOP_BEAT_NONE;
	}
	if (!b->out) {
		b->out = true;
		b->answer_by = now_ms + heartbeat_s * 1000L;
		return WLOOP_BEAT_SEND;
	}
	return now_ms >= b->answer_by ? WLOOP_BEAT_DEAD : WLOOP_BEAT_NONE;
}

/* Slot i's heartbeat (up, io held): -1 when the connection was closed. */
static int
heartbeat(struct wloop *w, size_t i)
{
	struct wloop_slot *s = &w->slot[i];
	int hb = __atomic_load_n(&w->cfg->heartbeat, __ATOMIC_RELAXED);
	const char *tag = WLOOP_HEARTBEAT_TAG;
	size_t len = strlen(tag);
	char why[128];

	switch (wloop_beat_next(&s->beat, gw_quiet_ms(s->c), hb, clk_now_ms())) {
	case WLOOP_BEAT_NONE:
		return 0;
	case WLOOP_BEAT_SEND:
		if (gw_send(s->c, GW_ECHO_REQ, &tag, &len, 1) == 0)
			return 0;
		wloop_close(w, i, gw_error(s->c));
		return -1;
	case WLOOP_BEAT_DEAD:
	default:
		snprintf(why, sizeof(why), "no answer to a heartbeat within %d s", hb);
		wloop_close(w, i, why);
		return -1;
	}
}

/* Connect slot i (down, io held) and let the role start on it: -1 if it is down again. */
static int
connect_slot(struct wloop *w, size_t i)
{
	const struct config_server *srv = &w->cfg->servers[i];
	struct wloop_slot *s = &w->slot[i];
	char err[512];

	s->c = gw_connect(w->cfg->gearman_tls, srv->host, srv->port, w->id, WLOOP_CONNECT_MS, err,
	    sizeof(err));
	if (!s->c) {
		wloop_close(w, i, err);
		return -1;
	}
	if (w->ops->connected(w->arg, i) < 0) {
		wloop_close(w, i, gw_error(s->c));
		return -1;
	}
	s->down_said = false;
	backoff_up(&s->bo);
	return 0;
}

/* Round step 2 for slot i (io held). */
static void
tend_slot(struct wloop *w, size_t i)
{
	struct wloop_slot *s = &w->slot[i];

	if (s->c && s->broken)
		wloop_close(w, i, gw_error(s->c));
	if (s->c && heartbeat(w, i) < 0)
		return;
	if (!s->c && clk_passed(s->retry_at) && connect_slot(w, i) < 0)
		return;
	if (s->c && w->ops->tend)
		w->ops->tend(w->arg, i);
}

static bool
heartbeat_answer(const struct gw_packet *p)
{
	return p->type == GW_ECHO_RES && p->len[0] == strlen(WLOOP_HEARTBEAT_TAG) &&
	    memcmp(p->arg[0], WLOOP_HEARTBEAT_TAG, p->len[0]) == 0;
}

/*
 * Round step 5 for slot i (io held): every packet there is, until none or
 * the connection is gone. Reading until gw_read returns 0 is what makes the
 * next poll right: before that, packets may wait in the connection's buffer
 * or decrypted inside TLS, where the fd shows nothing (gwconn.h).
 */
static void
read_slot(struct wloop *w, size_t i)
{
	struct wloop_slot *s = &w->slot[i];
	struct gw_packet p;
	int r;

	while (s->c && (r = gw_read(s->c, &p, 0)) != 0) {
		if (r < 0) {
			wloop_close(w, i, gw_error(s->c));
			return;
		}
		if (!heartbeat_answer(&p))
			w->ops->packet(w->arg, i, &p);
	}
}

/*
 * Round steps 4 and 5: sleep in poll up to timeout_ms, then read what came.
 *
 * The poll sees only the sockets. That is enough because every read of a
 * connection goes on until gw_read returns 0 (read_slot), which leaves
 * nothing decrypted inside TLS, and because writes (the executors', under
 * the io lock) never read: renegotiation is refused (gnet.h), so a TLS
 * write cannot take in a record behind the poll's back. gw_tls_pending is
 * checked anyway: should bytes ever wait inside TLS, the poll does not
 * sleep on them.
 */
static void
poll_and_read(struct wloop *w, int timeout_ms)
{
	struct pollfd pfd[CONFIG_MAX_SERVERS + 1];
	bool pending[CONFIG_MAX_SERVERS] = { false };
	size_t i, n = w->n;

	for (i = 0; i < n; i++) {
		pthread_mutex_lock(&w->slot[i].io);
		pfd[i].fd = w->slot[i].c ? gw_fd(w->slot[i].c) : -1;
		pending[i] = w->slot[i].c && gw_tls_pending(w->slot[i].c);
		pthread_mutex_unlock(&w->slot[i].io);
		pfd[i].events = POLLIN;
		pfd[i].revents = 0;
		if (pending[i])
			timeout_ms = 0;
	}
	pfd[n].fd = w->wakefd;
	pfd[n].events = POLLIN;
	pfd[n].revents = 0;
	if (poll(pfd, (nfds_t)n + 1, timeout_ms) < 0 && errno != EINTR)
		fatal("poll");
	if (pfd[n].revents & POLLIN) {
		uint64_t v;
		(void)!read(w->wakefd, &v, sizeof(v));
	}
	for (i = 0; i < n; i++) {
		if (!pending[i] && !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		pthread_mutex_lock(&w->slot[i].io);
		read_slot(w, i);
		pthread_mutex_unlock(&w->slot[i].io);
	}
}

void
wloop_run(struct wloop *w, const struct wloop_ops *ops, void *arg)
{
	size_t i;

	w->ops = ops;
	w->arg = arg;
	while (ops->round(arg)) {
		for (i = 0; i < w->n; i++) {
			pthread_mutex_lock(&w->slot[i].io);
			tend_slot(w, i);
			pthread_mutex_unlock(&w->slot[i].io);
		}
		poll_and_read(w, ops->step ? ops->step(arg) : WLOOP_IDLE_MS);
	}
	for (i = 0; i < w->n; i++) {
		pthread_mutex_lock(&w->slot[i].io);
		gw_close(w->slot[i].c);
		w->slot[i].c = NULL;
		w->slot[i].conn_gen++;
		pthread_mutex_unlock(&w->slot[i].io);
	}
}
