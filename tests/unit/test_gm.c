/*
 * Unit tests for common/gm.c's admin connections, against a scripted
 * admin server on loopback: kept between commands, replaced when gearmand
 * closed it, dropped after a timeout, long replies read whole.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gm.h"

/* What the server does on each connection it accepts, in order. */
enum act { ANSWER_ALL, ANSWER_ONCE_THEN_CLOSE, ANSWER_ONCE_THEN_MUTE, NEVER_ANSWER };

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
	struct gm_admin_conn *a;
	char err[256], *text;
	int i;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gm_admin_conn_new("127.0.0.1", s.port));
	for (i = 0; i < 3; i++) {
		text = gm_admin_conn_ask(a, "show jobs", 2000, err, sizeof(err));
		if (!text)
			fail_msg("no reply: %s", err);
		assert_non_null(strstr(text, "H:host:20000\t"));
		assert_string_equal(text + strlen(text) - 3, "\n.\n");
		free(text);
	}
	assert_int_equal(gm_job_retries(a, "H:host:5", 2000), 1);
	assert_int_equal(gm_job_retries(a, "H:host:1", 2000), 0);
	assert_int_equal(gm_job_retries(a, "H:host:20001", 2000), -1);
	assert_int_equal(gm_job_retries(a, "H:host:2000", 2000), 1999 % 3);
	gm_admin_conn_free(a);
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
	struct gm_admin_conn *a;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gm_admin_conn_new("127.0.0.1", s.port));
	assert_int_equal(gm_job_retries(a, "H:host:2", 2000), 1);
	assert_int_equal(gm_job_retries(a, "H:host:3", 2000), 2);
	assert_int_equal(gm_job_retries(a, "H:host:2", 2000), 1);
	gm_admin_conn_free(a);
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
	struct gm_admin_conn *a;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gm_admin_conn_new("127.0.0.1", s.port));
	assert_int_equal(gm_job_retries(a, "H:host:2", 2000), 1);
	assert_int_equal(gm_job_retries(a, "H:host:3", 300), 2);
	gm_admin_conn_free(a);
	server_stop(&s);
	assert_int_equal(s.accepted, 2);
	assert_int_equal(s.commands, 3);
}

/* No reply in time: an error naming it, and the next question on a fresh connection. */
static void
test_admin_conn_timeout(void **ctx)
{
	struct server s = { .script = { NEVER_ANSWER, ANSWER_ALL }, .nscript = 2, .njobs = 1 };
	struct gm_admin_conn *a;
	char err[256], *text;

	(void)ctx;
	server_start(&s);
	assert_non_null(a = gm_admin_conn_new("127.0.0.1", s.port));
	assert_null(gm_admin_conn_ask(a, "show jobs", 200, err, sizeof(err)));
	if (!strstr(err, "no reply to 'show jobs'"))
		fail_msg("error '%s' does not name the missing reply", err);
	text = gm_admin_conn_ask(a, "show jobs", 2000, err, sizeof(err));
	if (!text)
		fail_msg("no reply after the timeout: %s", err);
	assert_string_equal(text, "H:host:1\t0\t0\t0\n.\n");
	free(text);
	gm_admin_conn_free(a);
	server_stop(&s);
	assert_int_equal(s.accepted, 2);
}

/* Nothing listening: an error, no retry loop. */
static void
test_admin_conn_refused(void **ctx)
{
	struct server s = { .nscript = 0 };
	struct gm_admin_conn *a;
	char err[256];

	(void)ctx;
	server_start(&s);
	server_stop(&s);
	assert_non_null(a = gm_admin_conn_new("127.0.0.1", s.port));
	assert_null(gm_admin_conn_ask(a, "show jobs", 500, err, sizeof(err)));
	assert_true(err[0] != '\0');
	assert_int_equal(gm_job_retries(a, "H:host:1", 500), -1);
	gm_admin_conn_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_admin_conn_kept),
		cmocka_unit_test(test_admin_conn_replaced_after_close),
		cmocka_unit_test(test_admin_conn_replaced_after_silence),
		cmocka_unit_test(test_admin_conn_timeout),
		cmocka_unit_test(test_admin_conn_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
