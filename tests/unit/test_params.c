/* Unit tests for common/params.c (build arguments) and common/gwconn.c framing. */
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

#include "gwconn.h"
#include "params.h"

static void
expect_ok(const char *arg, size_t len, size_t n)
{
	struct params p;
	char err[512];

	if (params_parse(arg, len, &p, err, sizeof(err)) < 0)
		fail_msg("'%s' refused: %s", arg, err);
	assert_int_equal(p.n, n);
	params_free(&p);
}

static void
expect_refused(const char *arg, size_t len, const char *frag)
{
	struct params p;
	char err[512];

	assert_int_equal(params_parse(arg, len, &p, err, sizeof(err)), -1);
	if (!strstr(err, frag))
		fail_msg("'%.40s': error '%s' lacks '%s'", arg, err, frag);
	assert_int_equal(p.n, 0);
	assert_null(p.v);
}

static void
test_values_become_text(void **s)
{
	struct params p;
	char err[512];
	const char *arg = "{\"S\":\"x y\",\"I\":42,\"R\":1.5,\"T\":true,\"F\":false,\"U\":\"\\u00e9\\n\"}";

	(void)s;
	assert_int_equal(params_parse(arg, strlen(arg), &p, err, sizeof(err)), 0);
	assert_int_equal(p.n, 6);
	assert_string_equal(params_get(&p, "S"), "x y");
	assert_string_equal(params_get(&p, "I"), "42");
	assert_string_equal(params_get(&p, "R"), "1.5");
	assert_string_equal(params_get(&p, "T"), "true");
	assert_string_equal(params_get(&p, "F"), "false");
	assert_string_equal(params_get(&p, "U"), "\xc3\xa9\n");
	assert_null(params_get(&p, "missing"));
	params_free(&p);
}

static void
test_empty_and_objects(void **s)
{
	(void)s;
	expect_ok("", 0, 0);
	expect_ok("{}", 2, 0);
	{
		const char *a = "  {\"ZUUL_UUID\":\"abc\",\"OFFLINE_NODE_WHEN_COMPLETE\":1} ";
		expect_ok(a, strlen(a), 2);
	}
}

static void
test_refusals(void **s)
{
	char big[PARAMS_MAX_BYTES + 10];
	char many[PARAMS_MAX_COUNT * 12 + 10];
	size_t i, off = 0;

	(void)s;
	expect_refused("nope", 4, "not valid JSON");
	expect_refused("{a:b}", 5, "not valid JSON");       /* Gson's lenient form is not JSON */
	expect_refused("[1]", 3, "must be a JSON object");
	expect_refused("\"x\"", 3, "must be a JSON object");
	expect_refused("{\"a\":{}}", 8, "not an object");
	expect_refused("{\"a\":[]}", 8, "not an array");
	expect_refused("{\"a\":null}", 10, "not null");
	expect_refused("{\"a\":1,\"a\":2}", 13, "duplicate");
	expect_refused("{\"a\":\"\xff\"}", 8, "not valid JSON");
	expect_refused("{\"a\":\"\\u0000\"}", 14, "not valid JSON");
	expect_refused("{\"a b\":\"1\"}", 11, "is not allowed");
	expect_refused("{\"\":\"1\"}", 8, "is not allowed");
	expect_refused("{\"a\":1} x", 9, "not valid JSON");
	memset(big, ' ', sizeof(big));
	expect_refused(big, sizeof(big), "the limit is");
	off += (size_t)snprintf(many + off, sizeof(many) - off, "{");
	for (i = 0; i <= PARAMS_MAX_COUNT; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "%s\"p%zu\":1", i ? "," : "", i);
	off += (size_t)snprintf(many + off, sizeof(many) - off, "}");
	expect_refused(many, off, "parameters; the limit is");
}

static void
test_gw_roundtrip(void **s)
{
	char buf[256];
	const char *args[4] = { "H:host:1", "build:a", "uniq", "{\"x\":\"a\0b\"}" };
	size_t lens[4] = { 8, 7, 4, 11 };
	struct gw_packet p;
	size_t n;

	(void)s;
	/* A JOB_ASSIGN_UNIQ as gearmand sends it; the workload may hold NULs. */
	n = gw_encode(buf, sizeof(buf), 0x00524553u, GW_JOB_ASSIGN_UNIQ, args, lens, 4);
	assert_int_equal(n, 12 + 8 + 1 + 7 + 1 + 4 + 1 + 11);
	assert_memory_equal(buf, "\0RES\0\0\0\x1f\0\0\0", 11);
	/* Not enough bytes yet: ask for more. */
	assert_int_equal(gw_decode(buf, n - 1, &p, 1 << 20), 0);
	assert_int_equal(gw_decode(buf, 11, &p, 1 << 20), 0);
	assert_int_equal(gw_decode(buf, n, &p, 1 << 20), (long)n);
	assert_int_equal(p.type, GW_JOB_ASSIGN_UNIQ);
	assert_int_equal(p.nargs, 4);
	assert_int_equal(p.len[3], 11);
	assert_memory_equal(p.arg[3], "{\"x\":\"a\0b\"}", 11);
	{
		struct gw_job job;
		assert_int_equal(gw_job_from_packet(&p, &job), 0);
		assert_string_equal(job.handle, "H:host:1");
		assert_string_equal(job.function, "build:a");
		assert_string_equal(job.unique, "uniq");
		assert_int_equal(job.workload_len, 11);
		gw_job_free(&job);
	}
	/* CAN_DO: the whole body is the name, no NUL. */
	n = gw_encode(buf, sizeof(buf), 0x00524551u, GW_CAN_DO, args + 1, lens + 1, 1);
	assert_memory_equal(buf, "\0REQ\0\0\0\x01\0\0\0\x07" "build:a", 19);
	/* WORK_STATUS: handle\0num\0den. */
	{
		const char *st[3] = { "H:1", "5", "100" };
		size_t sl[3] = { 3, 1, 3 };
		n = gw_encode(buf, sizeof(buf), 0x00524551u, GW_WORK_STATUS, st, sl, 3);
		assert_memory_equal(buf + 12, "H:1\0" "5\0" "100", 9);
	}
}

static void
test_gw_malformed(void **s)
{
	struct gw_packet p;

	(void)s;
	/* Bad magic, oversized body, JOB_ASSIGN without its NULs, NOOP with a body. */
	assert_int_equal(gw_decode("XRES\0\0\0\x06\0\0\0\0", 12, &p, 100), -1);
	assert_int_equal(gw_decode("\0RES\0\0\0\x0b\0\0\x10\0", 12, &p, 100), -1);
	assert_int_equal(gw_decode("\0RES\0\0\0\x0b\0\0\0\x03" "abc", 15, &p, 100), -1);
	assert_int_equal(gw_decode("\0RES\0\0\0\x06\0\0\0\x01" "x", 13, &p, 100), -1);
	/* NO_JOB, empty. */
	assert_int_equal(gw_decode("\0RES\0\0\0\x0a\0\0\0\0", 12, &p, 100), 12);
	assert_int_equal(p.type, GW_NO_JOB);
}

/* What a peer of gw_send_each receives, read by a thread (the sender blocks on a full socket). */
struct sink {
	int    fd;
	char  *buf;
	size_t len;
};

static void *
sink_read(void *arg)
{
	struct sink *k = arg;
	char chunk[65536];
	ssize_t r;

	while ((r = read(k->fd, chunk, sizeof(chunk))) > 0) {
		k->buf = realloc(k->buf, k->len + (size_t)r);
		memcpy(k->buf + k->len, chunk, (size_t)r);
		k->len += (size_t)r;
	}
	return NULL;
}

static void
test_gw_send_each(void **s)
{
	enum { N = 10001 };
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct sink k = { 0 };
	struct gw_conn *c;
	struct gw_packet p;
	pthread_t t;
	char **names = calloc(N, sizeof(char *)), err[256];
	size_t i, off = 0;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);

	(void)s;
	assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
	c = gw_connect(NULL, "127.0.0.1", ntohs(a.sin_port), NULL, 2000, err, sizeof(err));
	assert_non_null(c);
	k.fd = accept(lfd, NULL, NULL);
	assert_true(k.fd >= 0);
	pthread_create(&t, NULL, sink_read, &k);
	/* 10,000 names and, in the middle, one larger than a batch. */
	for (i = 0; i < N; i++) {
		if (i == 5000) {
			names[i] = malloc(70001);
			memset(names[i], 'x', 70000);
			names[i][70000] = '\0';
		} else if (asprintf(&names[i], "build:job-%05zu:linux", i) < 0)
			fail();
	}
	assert_int_equal(gw_send_each(c, GW_CAN_DO, names, N), 0);
	gw_close(c);
	pthread_join(t, NULL);
	/* Every packet arrived whole, in order. */
	for (i = 0; i < N; i++) {
		long used = gw_decode(k.buf + off, k.len - off, &p, 1 << 20);
		assert_true(used > 0);
		assert_int_equal(p.type, GW_CAN_DO);
		assert_int_equal(p.len[0], strlen(names[i]));
		assert_memory_equal(p.arg[0], names[i], p.len[0]);
		off += (size_t)used;
		free(names[i]);
	}
	assert_int_equal(off, k.len);
	free(names);
	free(k.buf);
	close(k.fd);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values_become_text),
		cmocka_unit_test(test_empty_and_objects),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_gw_roundtrip),
		cmocka_unit_test(test_gw_malformed),
		cmocka_unit_test(test_gw_send_each),
	};

	return cmocka_run_group_tests_name("params+gwconn", tests, NULL, NULL);
}
