/*
 * Unit tests for common/gclient.c, our Gearman client, against a fake
 * gearmand on loopback (a thread that reads the client's SUBMIT_JOB and
 * answers with scripted bytes): a result with WORK_DATA and WORK_STATUS on
 * the way, a refusal (WORK_WARNING + WORK_FAIL), gearmand's ERROR, a
 * foreign worker's WORK_EXCEPTION, oversize and malformed packets (a clean
 * failure, no over-read: run under SANITIZE=1), one deadline for a whole
 * call however many WORK_STATUS come, a server down then the next, and the
 * server picked by the unique.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "gclient.h"
#include "gwconn.h"

#define MAGIC_RES   0x00524553u
#define MAGIC_REQ   0x00524551u
#define STATUS_MS   20      /* the status stream's period */

struct peer {
	int       lfd, port;
	pthread_t thread;
	char      reply[4096];      /* sent once SUBMIT_JOB is in */
	size_t    replylen;
	bool      status_forever;   /* then WORK_STATUS H:1 every STATUS_MS until the client goes */
	bool      close_after;      /* close right after the reply */
	int       accept_ms;        /* how long to wait for the client (0: 3 s) */
	bool      accepted;
	char      submit[4096];     /* the client's packet */
	size_t    submitlen;
};

/* Append one response packet to p's reply. */
static void
add(struct peer *p, uint32_t type, int nargs, ...)
{
	const char *args[GW_MAX_ARGS];
	size_t lens[GW_MAX_ARGS];
	va_list ap;
	int i;

	va_start(ap, nargs);
	for (i = 0; i < nargs; i++) {
		args[i] = va_arg(ap, const char *);
		lens[i] = strlen(args[i]);
	}
	va_end(ap);
	p->replylen += gw_encode(p->reply + p->replylen, sizeof(p->reply) - p->replylen, MAGIC_RES, type,
	    args, lens, nargs);
}

/* Append raw bytes (a malformed packet) to p's reply. */
static void
add_raw(struct peer *p, const char *b, size_t n)
{
	memcpy(p->reply + p->replylen, b, n);
	p->replylen += n;
}

static void
send_all(int fd, const char *b, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

/* Read the client's first packet whole. */
static void
read_submit(struct peer *p, int fd)
{
	ssize_t r;

	while ((r = recv(fd, p->submit + p->submitlen, sizeof(p->submit) - p->submitlen, 0)) > 0) {
		uint32_t body;

		p->submitlen += (size_t)r;
		if (p->submitlen < 12)
			continue;
		memcpy(&body, p->submit + 8, 4);
		if (p->submitlen >= 12 + (size_t)ntohl(body))
			return;
	}
}

static void *
serve(void *arg)
{
	struct peer *p = arg;
	struct pollfd pfd = { p->lfd, POLLIN, 0 };
	char status[64], junk[256];
	size_t sl;
	int fd;

	if (poll(&pfd, 1, p->accept_ms ? p->accept_ms : 3000) != 1 ||
	    (fd = accept(p->lfd, NULL, NULL)) < 0)
		return NULL;
	p->accepted = true;
	read_submit(p, fd);
	send_all(fd, p->reply, p->replylen);
	sl = gw_encode(status, sizeof(status), MAGIC_RES, GW_WORK_STATUS,
	    (const char *[]){ "H:1", "1", "2" }, (size_t[]){ 3, 1, 1 }, 3);
	/* Until the client closes: a status stream, or just the wait. */
	while (!p->close_after) {
		struct pollfd c = { fd, POLLIN, 0 };
		int r = poll(&c, 1, p->status_forever ? STATUS_MS : 5000);

		if (r < 0 || (r == 0 && !p->status_forever))
			break;
		if (r == 1 && recv(fd, junk, sizeof(junk), 0) <= 0)
			break;
		if (p->status_forever && send(fd, status, sl, MSG_NOSIGNAL) != (ssize_t)sl)
			break;
	}
	close(fd);
	return NULL;
}

static void
peer_start(struct peer *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->lfd >= 0);
	assert_int_equal(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->lfd, 4), 0);
	assert_int_equal(getsockname(p->lfd, (struct sockaddr *)&a, &al), 0);
	p->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
}

static void
peer_join(struct peer *p)
{
	pthread_join(p->thread, NULL);
	close(p->lfd);
}

static struct peer *
peer_new(void)
{
	struct peer *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	return p;
}

/* A port nothing listens on (bound, closed). */
static int
dead_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

/* One gclient_call to p (servers: p alone). */
static enum gclient_err
call(struct peer *p, int timeout_ms, char **out, size_t *outlen, char *err, size_t errlen)
{
	struct config_server s = { .host = "127.0.0.1" };
	enum gclient_err e;

	peer_start(p);
	s.port = p->port;
	e = gclient_call(NULL, &s, 1, "fn:x", "u-1", "arg", 3, timeout_ms, out, outlen, err, errlen);
	peer_join(p);
	return e;
}

static void
test_complete_with_data(void **st)
{
	struct peer *p = peer_new();
	char err[512] = "", *out = NULL;
	size_t outlen = 0;

	(void)st;
	add(p, GW_JOB_CREATED, 1, "H:1");
	add(p, GW_OPTION_RES, 1, "exceptions");             /* nothing for the job */
	add(p, GW_WORK_DATA, 2, "H:1", "{\"started\":1}");
	add(p, GW_WORK_STATUS, 3, "H:1", "5", "-1");
	add(p, GW_WORK_COMPLETE, 2, "H:9", "not ours");      /* another handle: ignored */
	add(p, 99, 1, "a type from the future");
	add(p, GW_WORK_COMPLETE, 2, "H:1", "the result");
	assert_int_equal(call(p, 3000, &out, &outlen, err, sizeof(err)), GCLIENT_OK);
	assert_string_equal(out, "the result");
	assert_int_equal(outlen, 10);
	/* What went out: SUBMIT_JOB fn\0unique\0arg. */
	assert_int_equal(p->submitlen, 12 + 12);
	assert_memory_equal(p->submit, "\0REQ\0\0\0\x07\0\0\0\x0c" "fn:x\0u-1\0arg", 24);
	free(out);
	free(p);
}

static void
test_fail_with_warning(void **st)
{
	struct peer *p = peer_new();
	char err[512] = "", *out = NULL;

	(void)st;
	add(p, GW_JOB_CREATED, 1, "H:1");
	add(p, GW_WORK_WARNING, 2, "H:1", "not on this node");
	add(p, GW_WORK_FAIL, 1, "H:1");
	assert_int_equal(call(p, 3000, &out, NULL, err, sizeof(err)), GCLIENT_EFAILED);
	assert_null(out);
	assert_string_equal(err, "fn:x failed: not on this node");
	free(p);
}

static void
test_exception(void **st)
{
	struct peer *p = peer_new();
	char err[512] = "", *out = NULL;

	(void)st;
	add(p, GW_JOB_CREATED, 1, "H:1");
	add(p, GW_WORK_EXCEPTION, 2, "H:1", "java.lang.NullPointerException");
	assert_int_equal(call(p, 3000, &out, NULL, err, sizeof(err)), GCLIENT_EFAILED);
	assert_string_equal(err, "fn:x failed: java.lang.NullPointerException");
	free(p);
}

static void
test_error_packet(void **st)
{
	struct peer *p = peer_new();
	char err[512] = "", *out = NULL;

	(void)st;
	/* Instead of JOB_CREATED. */
	add(p, GW_ERROR, 2, "ERR_ARGUMENT_TOO_LARGE", "Unique value too large");
	assert_int_equal(call(p, 3000, &out, NULL, err, sizeof(err)), GCLIENT_EGEARMAN);
	assert_non_null(strstr(err, "gearmand error ERR_ARGUMENT_TOO_LARGE: Unique value too large"));
	free(p);
	/* After it. */
	p = peer_new();
	add(p, GW_JOB_CREATED, 1, "H:1");
	add(p, GW_ERROR, 2, "ERR", "gone");
	assert_int_equal(call(p, 3000, &out, NULL, err, sizeof(err)), GCLIENT_EGEARMAN);
	assert_non_null(strstr(err, "gearmand error ERR: gone"));
	free(p);
}

/* What a call makes of a reply that ends with bad bytes: a clean GCLIENT_EGEARMAN, at once. */
static void
expect_bad(const char *bytes, size_t n, bool created, const char *why)
{
	struct peer *p = peer_new();
	char err[512] = "", *out = NULL;
	long long t0 = clk_now_ms();

	if (created)
		add(p, GW_JOB_CREATED, 1, "H:1");
	add_raw(p, bytes, n);
	p->close_after = true;
	assert_int_equal(call(p, 3000, &out, NULL, err, sizeof(err)), GCLIENT_EGEARMAN);
	assert_null(out);
	if (!strstr(err, why))
		fail_msg("expected \"%s\" in \"%s\"", why, err);
	assert_true(clk_now_ms() - t0 < 2000);
	free(p);
}

static void
test_oversize_and_malformed(void **st)
{
	char big[12 + 200];

	(void)st;
	/* WORK_COMPLETE announcing a body over GW_MAX_BODY: refused from its header. */
	expect_bad("\0RES\0\0\0\x0d\x04\0\0\x01", 12, true, "over the limit");
	/* WORK_COMPLETE without the NUL after its handle. */
	expect_bad("\0RES\0\0\0\x0d\0\0\0\x03" "H:1", 15, true, "malformed");
	/* WORK_STATUS with one NUL of two. */
	expect_bad("\0RES\0\0\0\x0c\0\0\0\x05" "H:1\0" "1", 17, true, "malformed");
	/* Bad magic. */
	expect_bad("XRES\0\0\0\x0d\0\0\0\x04" "H:1\0", 16, true, "malformed");
	/* Half a packet, then the connection closes. */
	expect_bad("\0RES\0\0\0\x0d\0\0\0\x40" "H:1\0", 16, true, "closed");
	/* JOB_CREATED with a NUL in its handle, with an empty one, with one too long. */
	expect_bad("\0RES\0\0\0\x08\0\0\0\x03" "H\0" "1", 15, false, "bad job handle");
	expect_bad("\0RES\0\0\0\x08\0\0\0\0", 12, false, "bad job handle");
	/* A terminal escape, a newline (an admin command of its own in "cancel job"). */
	expect_bad("\0RES\0\0\0\x08\0\0\0\x06" "H:\x1b[2J", 18, false, "bad job handle");
	expect_bad("\0RES\0\0\0\x08\0\0\0\x0c" "H:1\nshutdown", 24, false, "bad job handle");
	memcpy(big, "\0RES\0\0\0\x08\0\0\0\xc8", 12);
	memset(big + 12, 'h', 200);
	expect_bad(big, sizeof(big), false, "bad job handle");
	/* A second JOB_CREATED. */
	expect_bad("\0RES\0\0\0\x08\0\0\0\x03" "H:2", 15, true, "already created");
}

static void
test_deadline_under_status_stream(void **st)
{
	struct peer *p = peer_new();
	char err[512] = "", *out = NULL;
	long long t0 = clk_now_ms(), took;

	(void)st;
	add(p, GW_JOB_CREATED, 1, "H:1");
	p->status_forever = true;
	assert_int_equal(call(p, 400, &out, NULL, err, sizeof(err)), GCLIENT_ENOANSWER);
	took = clk_now_ms() - t0;
	assert_true(took >= 400 && took < 1500);
	assert_string_equal(err, "fn:x: no answer within 400 ms (is a worker for it running?)");
	free(p);
}

/* gclient_next with a status stream: events come, then the job ends when the peer closes. */
static void
test_follow_events(void **st)
{
	struct peer *p = peer_new();
	struct config_server s = { .host = "127.0.0.1" };
	struct gclient_job *j;
	struct gclient_ev ev;
	char err[512] = "";

	(void)st;
	add(p, GW_JOB_CREATED, 1, "H:1");
	add(p, GW_WORK_STATUS, 3, "H:1", "10", "4294967295");   /* libgearman's unsigned -1 */
	add(p, GW_WORK_DATA, 2, "H:1", "d");
	add(p, GW_WORK_COMPLETE, 2, "H:1", "");
	peer_start(p);
	s.port = p->port;
	j = gclient_submit(NULL, &s, 1, "build:x", NULL, "{}", 2, 2000, err, sizeof(err));
	assert_non_null(j);
	assert_string_equal(gclient_handle(j), "H:1");
	assert_int_equal(gclient_next(j, &ev, 2000), 1);
	assert_int_equal(ev.type, GCLIENT_EV_STATUS);
	assert_int_equal(ev.num, 10);
	assert_int_equal(ev.den, -1);
	assert_int_equal(gclient_next(j, &ev, 2000), 1);
	assert_int_equal(ev.type, GCLIENT_EV_DATA);
	assert_memory_equal(ev.data, "d", 1);
	assert_int_equal(gclient_next(j, &ev, 2000), 1);
	assert_int_equal(ev.type, GCLIENT_EV_COMPLETE);
	assert_int_equal(ev.len, 0);
	assert_int_equal(gclient_next(j, &ev, 10), -1);    /* over */
	gclient_close(j);
	peer_join(p);
	/* The unique went out empty. */
	assert_memory_equal(p->submit + 12, "build:x\0\0{}", 11);
	free(p);
}

static void
test_second_server_when_first_is_down(void **st)
{
	struct peer *p = peer_new();
	struct config_server s[2] = { { .host = "127.0.0.1" }, { .host = "127.0.0.1" } };
	char err[512] = "", *out = NULL;

	(void)st;
	add(p, GW_JOB_CREATED, 1, "H:1");
	add(p, GW_WORK_COMPLETE, 2, "H:1", "ok");
	peer_start(p);
	s[0].port = dead_port();
	s[1].port = p->port;
	assert_int_equal(gclient_call(NULL, s, 2, "fn:x", NULL, "", 0, 3000, &out, NULL, err, sizeof(err)),
	    GCLIENT_OK);
	assert_string_equal(out, "ok");
	free(out);
	peer_join(p);
	free(p);
	/* Both down: a clean error naming the connection. */
	s[1].port = dead_port();
	assert_int_equal(gclient_call(NULL, s, 2, "fn:x", NULL, "", 0, 3000, &out, NULL, err, sizeof(err)),
	    GCLIENT_EGEARMAN);
	assert_non_null(strstr(err, "cannot submit fn:x: cannot connect"));
}

/* The unique picks the server as Perl's Gearman::Client does: "y" hashes to the second of two. */
static void
test_unique_picks_server(void **st)
{
	struct peer *a = peer_new(), *b = peer_new();
	struct config_server s[2] = { { .host = "127.0.0.1" }, { .host = "127.0.0.1" } };
	char err[512] = "", *out = NULL;

	(void)st;
	add(b, GW_JOB_CREATED, 1, "H:1");
	add(b, GW_WORK_COMPLETE, 2, "H:1", "from b");
	a->accept_ms = 300;
	peer_start(a);
	peer_start(b);
	s[0].port = a->port;
	s[1].port = b->port;
	assert_int_equal(gclient_call(NULL, s, 2, "fn:x", "y", "", 0, 3000, &out, NULL, err, sizeof(err)),
	    GCLIENT_OK);
	assert_string_equal(out, "from b");
	free(out);
	peer_join(a);
	peer_join(b);
	assert_false(a->accepted);
	free(a);
	free(b);
}

static void
test_refused_before_sending(void **st)
{
	struct config_server s = { .host = "127.0.0.1", .port = 1 };
	char err[512], *out = NULL, u[GCLIENT_UNIQUE_MAX + 2];

	(void)st;
	memset(u, 'u', sizeof(u) - 1);
	u[sizeof(u) - 1] = '\0';
	assert_int_equal(gclient_call(NULL, &s, 1, "fn", u, "", 0, 1000, &out, NULL, err, sizeof(err)),
	    GCLIENT_EGEARMAN);
	assert_non_null(strstr(err, "unique id over 64 bytes"));
}

/* gclient_parse on packets whose last argument is not NUL-terminated (as gw_decode leaves them). */
static void
test_parse_bounds(void **st)
{
	char buf[64], created[GCLIENT_HANDLE_MAX], err[256];
	struct gw_packet p;
	struct gclient_ev ev;
	long n;

	(void)st;
	/* A denominator of 30 digits, its bytes followed by more digits in the buffer. */
	memcpy(buf, "\0RES\0\0\0\x0c\0\0\0\x24" "H:1\0" "7\0" "123456789012345678901234567890" "999", 51);
	n = gw_decode(buf, 48, &p, 1024);
	assert_int_equal(n, 48);
	assert_int_equal(gclient_parse(&p, "H:1", &ev, created, err, sizeof(err)), 1);
	assert_int_equal(ev.num, 7);
	assert_int_equal(ev.den, -1);
	/* A numerator that is not a number. */
	memcpy(buf, "\0RES\0\0\0\x0c\0\0\0\x07" "H:1\0" "x\0" "9", 19);
	assert_int_equal(gw_decode(buf, 19, &p, 1024), 19);
	assert_int_equal(gclient_parse(&p, "H:1", &ev, created, err, sizeof(err)), 1);
	assert_int_equal(ev.num, 0);
	assert_int_equal(ev.den, 9);
	/* Before JOB_CREATED nothing is ours. */
	assert_int_equal(gclient_parse(&p, NULL, &ev, created, err, sizeof(err)), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_complete_with_data),
		cmocka_unit_test(test_fail_with_warning),
		cmocka_unit_test(test_exception),
		cmocka_unit_test(test_error_packet),
		cmocka_unit_test(test_oversize_and_malformed),
		cmocka_unit_test(test_deadline_under_status_stream),
		cmocka_unit_test(test_follow_events),
		cmocka_unit_test(test_second_server_when_first_is_down),
		cmocka_unit_test(test_unique_picks_server),
		cmocka_unit_test(test_refused_before_sending),
		cmocka_unit_test(test_parse_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
