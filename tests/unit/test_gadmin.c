/*
 * Unit tests for common/gm.c's admin connections, against a scripted
 * admin server on loopback: kept between commands, replaced when gearmand
 * closed it, dropped after a timeout, long replies read whole. Also the
 * reconnect backoff, and gwconn's worker connections (keepalive, a job
 * over the packet limit) against a scripted gearmand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backoff.h"
#include "gadmin.h"
#include "gwconn.h"
#include "clock.h"

/* What the server does on each connection it accepts, in order. */
enum act { ANSWER_ALL, ANSWER_ONCE_THEN_CLOSE, ANSWER_ONCE_THEN_MUTE, NEVER_ANSWER,
	   TRICKLE,    /* a line every TRICKLE_MS for TRICKLE_LINES lines, then the end */
	   FLOOD };    /* FLOOD_BYTES of lines as fast as they go, then the end */

#define TRICKLE_MS     20
#define TRICKLE_LINES  500                          /* 10 s */
#define FLOOD_BYTES    (GADMIN_REPLY_MAX + (8u << 20))

struct server {
	int       lfd, port;
	enum act  script[8];
	int       nscript;
	int       accepted;       /* connections */
	int       commands;       /* "show jobs" lines read */
	size_t    njobs;          /* lines in each "show jobs" reply */
	pthread_t thread;
};

static void
answer(struct server *s, int fd)
{
	size_t i, cap = s->njobs * 32 + 8, len = 0;
	char *out = malloc(cap);

	assert_non_null(out);
	for (i = 0; i < s->njobs; i++)
		len += (size_t)snprintf(out + len, cap - len, "H:host:%zu\t%zu\t0\t0\n", i + 1, i % 3);
	len += (size_t)snprintf(out + len, cap - len, ".\n");
	for (i = 0; i < len; ) {
		ssize_t w = write(fd, out + i, len - i);
		if (w <= 0)
			break;
		i += (size_t)w;
	}
	free(out);
}

/* A hostile peer: a reply that comes too slowly, or never stops growing, then ends anyway. */
static void
answer_hostile(struct server *s, int fd, enum act how)
{
	static const char line[] = "H:host:1\t0\t0\t0\n";
	static char block[1 << 16];
	size_t sent = 0, i, ll = sizeof(line) - 1;

	if (how == TRICKLE) {
		for (i = 0; i < TRICKLE_LINES; i++) {
			if (send(fd, line, ll, MSG_NOSIGNAL) != (ssize_t)ll)
				return;
			usleep(TRICKLE_MS * 1000);
		}
	} else {
		for (i = 0; i + ll <= sizeof(block); i += ll)
			memcpy(block + i, line, ll);
		while (sent < FLOOD_BYTES) {
			ssize_t w = send(fd, block, i, MSG_NOSIGNAL);
			if (w <= 0)
				return;
			sent += (size_t)w;
		}
	}
	(void)s;
	(void)!send(fd, ".\n", 2, MSG_NOSIGNAL);
}

static void *
serve(void *arg)
{
	struct server *s = arg;
	int k;

	for (k = 0; k < s->nscript; k++) {
		int fd = accept(s->lfd, NULL, NULL);
		char line[64];
		size_t len = 0;
		ssize_t r;

		if (fd < 0)
			break;
		s->accepted++;
		while ((r = read(fd, line + len, 1)) == 1) {
			if (line[len] != '\n') {
				len = len + 1 < sizeof(line) ? len + 1 : len;
				continue;
			}
			len = 0;
			s->commands++;
			if (s->script[k] == NEVER_ANSWER || (s->script[k] == ANSWER_ONCE_THEN_MUTE && s->commands > 1))
				continue;
			if (s->script[k] == TRICKLE || s->script[k] == FLOOD) {
				answer_hostile(s, fd, s->script[k]);
				break;
			}
			answer(s, fd);
			if (s->script[k] == ANSWER_ONCE_THEN_CLOSE)
				break;
		}
		close(fd);
	}
	return NULL;
}

static void
server_start(struct server *s)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((s->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 8), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void
server_stop(struct server *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	close(s->lfd);
	pthread_join(s->thread, NULL);
}

/* Several questions, one connection; a long reply comes back whole. */
static void
test_admin_conn_kept(void **ctx)
{
	struct server s = { .script = { ANSWER_ALL }, .nscript = 1, .njobs = 20000 };
	struct gadmin_conn *a;
	char err[256], *text;
	int i;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gadmin_conn_new(NULL, "127.0.0.1", s.port));
	for (i = 0; i < 3; i++) {
		text = gadmin_conn_ask(a, "show jobs", 2000, err, sizeof(err));
		if (!text)
			fail_msg("no reply: %s", err);
		assert_non_null(strstr(text, "H:host:20000\t"));
		assert_string_equal(text + strlen(text) - 3, "\n.\n");
		free(text);
	}
	assert_int_equal(gadmin_job_retries(a, "H:host:5", 2000), 1);
	assert_int_equal(gadmin_job_retries(a, "H:host:1", 2000), 0);
	assert_int_equal(gadmin_job_retries(a, "H:host:20001", 2000), -1);
	assert_int_equal(gadmin_job_retries(a, "H:host:2000", 2000), 1999 % 3);
	gadmin_conn_free(a);
	server_stop(&s);
	assert_int_equal(s.accepted, 1);
	assert_int_equal(s.commands, 7);
}

/* gearmand closed the kept connection (a restart): the question goes again on a new one. */
static void
test_admin_conn_replaced_after_close(void **ctx)
{
	struct server s = { .script = { ANSWER_ONCE_THEN_CLOSE, ANSWER_ONCE_THEN_CLOSE, ANSWER_ALL },
			    .nscript = 3, .njobs = 3 };
	struct gadmin_conn *a;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gadmin_conn_new(NULL, "127.0.0.1", s.port));
	assert_int_equal(gadmin_job_retries(a, "H:host:2", 2000), 1);
	assert_int_equal(gadmin_job_retries(a, "H:host:3", 2000), 2);
	assert_int_equal(gadmin_job_retries(a, "H:host:2", 2000), 1);
	gadmin_conn_free(a);
	server_stop(&s);
	assert_int_equal(s.accepted, 3);
	assert_int_equal(s.commands, 3);
}

/*
 * A kept connection that went dead without a word (a firewall dropped it):
 * the question times out there and is asked again on a new connection.
 */
static void
test_admin_conn_replaced_after_silence(void **ctx)
{
	struct server s = { .script = { ANSWER_ONCE_THEN_MUTE, ANSWER_ALL }, .nscript = 2, .njobs = 3 };
	struct gadmin_conn *a;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gadmin_conn_new(NULL, "127.0.0.1", s.port));
	assert_int_equal(gadmin_job_retries(a, "H:host:2", 2000), 1);
	assert_int_equal(gadmin_job_retries(a, "H:host:3", 300), 2);
	gadmin_conn_free(a);
	server_stop(&s);
	assert_int_equal(s.accepted, 2);
	assert_int_equal(s.commands, 3);
}

/*
 * A peer that trickles its reply, a line every 20 ms for 10 s: the timeout
 * bounds the whole reply, not each read, so the question ends at once.
 */
static void
test_admin_reply_deadline(void **ctx)
{
	struct server s = { .script = { TRICKLE }, .nscript = 1 };
	char err[256], *text;
	long long t0;

	(void)ctx;
	server_start(&s);
	t0 = clk_now_ms();
	text = gadmin_ask(NULL, "127.0.0.1", s.port, "show jobs", 500, err, sizeof(err));
	assert_null(text);
	if (clk_now_ms() - t0 > 3000)
		fail_msg("took %lld ms for a 500 ms timeout", clk_now_ms() - t0);
	if (!strstr(err, "no whole reply to 'show jobs' within 500 ms"))
		fail_msg("error: %s", err);
	server_stop(&s);
}

/* A peer whose reply never stops growing is cut off at GADMIN_REPLY_MAX. */
static void
test_admin_reply_capped(void **ctx)
{
	struct server s = { .script = { FLOOD }, .nscript = 1 };
	char err[256], *text;

	(void)ctx;
	server_start(&s);
	text = gadmin_ask(NULL, "127.0.0.1", s.port, "workers", 20000, err, sizeof(err));
	if (text)
		fail_msg("a reply of %zu bytes was taken", strlen(text));
	if (!strstr(err, "the reply to 'workers' is over 64 MB"))
		fail_msg("error: %s", err);
	server_stop(&s);
}

/* No reply in time: an error naming it, and the next question on a fresh connection. */
static void
test_admin_conn_timeout(void **ctx)
{
	struct server s = { .script = { NEVER_ANSWER, ANSWER_ALL }, .nscript = 2, .njobs = 1 };
	struct gadmin_conn *a;
	char err[256], *text;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gadmin_conn_new(NULL, "127.0.0.1", s.port));
	assert_null(gadmin_conn_ask(a, "show jobs", 200, err, sizeof(err)));
	if (!strstr(err, "no reply to 'show jobs'"))
		fail_msg("error '%s' does not name the missing reply", err);
	text = gadmin_conn_ask(a, "show jobs", 2000, err, sizeof(err));
	if (!text)
		fail_msg("no reply after the timeout: %s", err);
	assert_string_equal(text, "H:host:1\t0\t0\t0\n.\n");
	free(text);
	gadmin_conn_free(a);
	server_stop(&s);
	assert_int_equal(s.accepted, 2);
}

/* Nothing listening: an error, no retry loop. */
static void
test_admin_conn_refused(void **ctx)
{
	struct server s = { .nscript = 0 };
	struct gadmin_conn *a;
	char err[256];

	(void)ctx;
	server_start(&s);
	server_stop(&s);
	assert_non_null(a = gadmin_conn_new(NULL, "127.0.0.1", s.port));
	assert_null(gadmin_conn_ask(a, "show jobs", 500, err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_int_equal(gadmin_job_retries(a, "H:host:1", 500), -1);
	gadmin_conn_free(a);
}

/* Connections that drop at once: each delay about twice the last, up to the maximum. */
static void
test_backoff_grows_while_connections_drop(void **ctx)
{
	struct backoff b;
	long d;
	int i;

	(void)ctx;
	backoff_init(&b, 500, 30000);
	for (i = 0; i < 6; i++) {
		backoff_up(&b);          /* connected, and dropped right away */
		d = backoff_next(&b);
		assert_true(d >= (500L << i) / 2 && d <= (500L << i));
	}
	for (i = 0; i < 4; i++) {
		backoff_up(&b);
		d = backoff_next(&b);
		assert_true(d >= 15000 && d <= 30000);
	}
}

/* A connection that stayed up BACKOFF_STABLE_MS: the next delay is the shortest again. */
static void
test_backoff_resets_after_a_stable_connection(void **ctx)
{
	struct backoff b;
	int i;

	(void)ctx;
	backoff_init(&b, 500, 30000);
	for (i = 0; i < 5; i++)
		(void)backoff_next(&b);   /* connection refused five times */
	backoff_up(&b);
	b.up_since -= BACKOFF_STABLE_MS + 1000;   /* up that long */
	assert_true(backoff_next(&b) <= 500);
	assert_true(backoff_next(&b) >= 500);   /* and growing again from there */
	/* Up, but for less: no reset. */
	backoff_up(&b);
	b.up_since -= BACKOFF_STABLE_MS - 2000;
	assert_true(backoff_next(&b) >= 1000);
	/* A failed connect after a stable connection's loss does not reset again. */
	assert_true(backoff_next(&b) >= 2000);
	backoff_reset(&b);
	assert_true(backoff_next(&b) <= 500);
}

/* ---- a scripted gearmand for gwconn ---- */

struct fakegm {
	int       lfd, port;
	uint32_t  type;          /* of the big packet */
	size_t    body;          /* its length */
	pthread_t thread;
};

static void
write_all_fd(int fd, const void *p, size_t n)
{
	const char *b = p;

	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);   /* the client may have left */
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

static void
put_header(char *h, uint32_t type, uint32_t len)
{
	uint32_t v[3] = { htonl(0x00524553u), htonl(type), htonl(len) };

	memcpy(h, v, 12);
}

/* Sends one big packet (handle, function, unique, then zeros), then a NOOP. */
static void *
fakegm_serve(void *arg)
{
	struct fakegm *g = arg;
	static const char head[] = "H:fake:1\0build:big\0uniq-1\0";
	char h[12], *chunk = calloc(1, 1 << 20);
	size_t left;
	int fd = accept(g->lfd, NULL, NULL);

	if (fd < 0 || !chunk)
		goto out;
	put_header(h, g->type, (uint32_t)g->body);
	write_all_fd(fd, h, sizeof(h));
	write_all_fd(fd, head, sizeof(head) - 1);
	for (left = g->body - (sizeof(head) - 1); left > 0; ) {
		size_t n = left < (1u << 20) ? left : (1u << 20);
		write_all_fd(fd, chunk, n);
		left -= n;
	}
	put_header(h, GW_NOOP, 0);
	write_all_fd(fd, h, sizeof(h));
	/* Wait for the client to close. */
	while (read(fd, chunk, 4096) > 0)
		;
	close(fd);
out:
	free(chunk);
	return NULL;
}

static struct gw_conn *
fakegm_start(struct fakegm *g)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	struct gw_conn *c;
	char err[256];

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true((g->lfd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(g->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(g->lfd, 1), 0);
	assert_int_equal(getsockname(g->lfd, (struct sockaddr *)&a, &al), 0);
	g->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&g->thread, NULL, fakegm_serve, g), 0);
	if (!(c = gw_connect(NULL, "127.0.0.1", g->port, NULL, 2000, err, sizeof(err))))
		fail_msg("connect: %s", err);
	return c;
}

static void
fakegm_stop(struct fakegm *g, struct gw_conn *c)
{
	gw_close(c);
	pthread_join(g->thread, NULL);
	close(g->lfd);
}

/* Keepalive tuned on the worker connection, so a vanished peer is found in about a minute. */
static void
test_gw_keepalive(void **ctx)
{
	struct fakegm g = { .type = GW_JOB_ASSIGN_UNIQ, .body = 64 };
	struct gw_conn *c;
	int v = 0;
	socklen_t l = sizeof(v);

	(void)ctx;
	c = fakegm_start(&g);
	assert_int_equal(getsockopt(gw_fd(c), SOL_SOCKET, SO_KEEPALIVE, &v, &l), 0);
	assert_int_equal(v, 1);
	assert_int_equal(getsockopt(gw_fd(c), IPPROTO_TCP, TCP_KEEPIDLE, &v, &l), 0);
	assert_int_equal(v, 30);
	assert_int_equal(getsockopt(gw_fd(c), IPPROTO_TCP, TCP_KEEPINTVL, &v, &l), 0);
	assert_int_equal(v, 10);
	assert_int_equal(getsockopt(gw_fd(c), IPPROTO_TCP, TCP_KEEPCNT, &v, &l), 0);
	assert_int_equal(v, 3);
	assert_int_equal(getsockopt(gw_fd(c), IPPROTO_TCP, TCP_USER_TIMEOUT, &v, &l), 0);
	assert_int_equal(v, 60000);
	fakegm_stop(&g, c);
}

/* Read packets until one comes (or 10 s pass). */
static int
read_one(struct gw_conn *c, struct gw_packet *p)
{
	int i, r = 0;

	for (i = 0; i < 100 && r == 0; i++)
		r = gw_read(c, p, 100);
	return r;
}

/*
 * A JOB_ASSIGN_UNIQ over the limit: its handle, function and unique come
 * back, its workload is skipped, and the connection goes on (the NOOP after it).
 */
static void
test_gw_oversize_job_skipped(void **ctx)
{
	struct fakegm g = { .type = GW_JOB_ASSIGN_UNIQ, .body = GW_MAX_BODY + 100 };
	struct gw_packet p;
	struct gw_job job;
	struct gw_conn *c;

	(void)ctx;
	c = fakegm_start(&g);
	if (read_one(c, &p) != 1)
		fail_msg("no packet: %s", gw_error(c));
	assert_int_equal(p.type, GW_JOB_ASSIGN_UNIQ);
	assert_true(p.oversize);
	assert_int_equal(p.nargs, 3);
	assert_true(p.len[0] == 8 && memcmp(p.arg[0], "H:fake:1", 8) == 0);
	assert_true(p.len[1] == 9 && memcmp(p.arg[1], "build:big", 9) == 0);
	assert_true(p.len[2] == 6 && memcmp(p.arg[2], "uniq-1", 6) == 0);
	assert_int_equal(p.workload_len, GW_MAX_BODY + 100 - strlen("H:fake:1 build:big uniq-1 "));
	assert_int_equal(gw_job_from_packet(&p, &job), -1);
	if (read_one(c, &p) != 1)
		fail_msg("no packet after the big one: %s", gw_error(c));
	assert_int_equal(p.type, GW_NOOP);
	assert_false(p.oversize);
	fakegm_stop(&g, c);
}

/* Any other packet over the limit ends the connection, with an error naming it. */
static void
test_gw_oversize_other_packet(void **ctx)
{
	struct fakegm g = { .type = GW_WORK_DATA, .body = GW_MAX_BODY + 1 };
	struct gw_packet p;
	struct gw_conn *c;

	(void)ctx;
	c = fakegm_start(&g);
	assert_int_equal(read_one(c, &p), -1);
	if (!strstr(gw_error(c), "WORK_DATA packet of 67108865 bytes is over the limit of 67108864 bytes"))
		fail_msg("error: %s", gw_error(c));
	fakegm_stop(&g, c);
}

/* ---- the lines of "status" and "workers" ---- */

static void
test_status_line_parsed(void **ctx)
{
	struct gadmin_fn f;
	char long_name[GADMIN_NAME_MAX + 40];

	(void)ctx;
	assert_int_equal(gadmin_status_parse("build:my job\t3\t1\t2", &f), 0);
	assert_string_equal(f.name, "build:my job");
	assert_int_equal(f.total, 3);
	assert_int_equal(f.running, 1);
	assert_int_equal(f.workers, 2);
	/* Not status lines: the "." end, too few fields, trailing junk, negatives, a name too long. */
	assert_int_equal(gadmin_status_parse(".", &f), -1);
	assert_int_equal(gadmin_status_parse("build:a\t3\t1", &f), -1);
	assert_int_equal(gadmin_status_parse("build:a\t3\t1\t2\tx", &f), -1);
	assert_int_equal(gadmin_status_parse("build:a\t3\t-1\t2", &f), -1);
	memset(long_name, 'a', sizeof(long_name));
	snprintf(long_name + GADMIN_NAME_MAX + 10, 30, "\t1\t0\t1");
	assert_int_equal(gadmin_status_parse(long_name, &f), -1);
}

static void
test_worker_line_parsed(void **ctx)
{
	/* A worker; a client (no functions); a node name with a space; an
	 * IPv6 peer, whose address holds colons. */
	static const struct {
		const char *line, *id, *fns;
	} ok[] = {
		{ "33 127.0.0.1 n1_exec-0 : build:a build:my job", "n1_exec-0", "build:a build:my job" },
		{ "34 ::1 - :", "-", "" },
		{ "35 10.0.0.2 my node_exec-1 : build:b", "my node_exec-1", "build:b" },
		{ "36 ::1 n2_exec-0 : build:c", "n2_exec-0", "build:c" },
	};
	char id[GADMIN_ID_MAX], line[GADMIN_ID_MAX + 40];
	const char *fns;

	(void)ctx;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(gadmin_worker_parse(ok[i].line, id, &fns), 0);
		assert_string_equal(id, ok[i].id);
		assert_string_equal(fns, ok[i].fns);
	}
	/* Not workers lines. */
	assert_int_equal(gadmin_worker_parse(".", id, &fns), -1);
	assert_int_equal(gadmin_worker_parse("33 127.0.0.1 : build:a", id, &fns), -1);
	assert_int_equal(gadmin_worker_parse("33 127.0.0.1 n1 :build:a", id, &fns), -1);
	memset(line, 'x', sizeof(line));
	memcpy(line, "1 2 ", 4);
	snprintf(line + GADMIN_ID_MAX + 10, 30, " : build:a");
	assert_int_equal(gadmin_worker_parse(line, id, &fns), -1);
}

static void
test_worker_fn_len_knows_spaced_names(void **ctx)
{
	char *spaced[] = { "build:my job", "build:my job:linux x" };
	const char *list = "build:my job:linux x build:my build:other";

	(void)ctx;
	assert_int_equal(gadmin_worker_fn_len(list, spaced, 2), strlen("build:my job:linux x"));
	assert_int_equal(gadmin_worker_fn_len(list + 21, spaced, 2), strlen("build:my"));
	assert_int_equal(gadmin_worker_fn_len(list, NULL, 0), strlen("build:my"));
	/* A known name only counts when it ends where the list's name ends. */
	assert_int_equal(gadmin_worker_fn_len("build:my jobs", spaced, 2), strlen("build:my"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backoff_grows_while_connections_drop),
		cmocka_unit_test(test_backoff_resets_after_a_stable_connection),
		cmocka_unit_test(test_gw_keepalive),
		cmocka_unit_test(test_gw_oversize_job_skipped),
		cmocka_unit_test(test_gw_oversize_other_packet),
		cmocka_unit_test(test_admin_conn_kept),
		cmocka_unit_test(test_admin_conn_replaced_after_close),
		cmocka_unit_test(test_admin_conn_replaced_after_silence),
		cmocka_unit_test(test_admin_conn_timeout),
		cmocka_unit_test(test_admin_reply_deadline),
		cmocka_unit_test(test_admin_reply_capped),
		cmocka_unit_test(test_admin_conn_refused),
		cmocka_unit_test(test_status_line_parsed),
		cmocka_unit_test(test_worker_line_parsed),
		cmocka_unit_test(test_worker_fn_len_knows_spaced_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
