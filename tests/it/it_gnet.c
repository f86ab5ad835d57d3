/*
 * it_gnet: drive common/gnet.c (through gwconn and gadmin) against a live
 * gearmand, plain or behind a TLS proxy, for tests/test_tls.py.
 *
 *   it_gnet [-T CA,CERT,KEY] HOST PORT echo N
 *       connect once, then N ECHO_REQ round trips. Prints one JSON line:
 *       {"ok":true,"connect_us":..,"median_us":..,"p90_us":..,"n":N}
 *   it_gnet [-T CA,CERT,KEY] HOST PORT admin CMD REPEAT
 *       CMD REPEAT times on one kept gadmin connection; prints
 *       {"ok":true,"reply":"<last reply>"}
 *
 * A failure prints {"ok":false,"err":"..."} and exits 1; bad usage 64.
 */
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "gadmin.h"
#include "gnet.h"
#include "gwconn.h"

#define IT_TIMEOUT_MS 5000

static int
fail(const char *err)
{
	json_t *o = json_pack("{s:b,s:s}", "ok", 0, "err", err);
	char *s = json_dumps(o, JSON_COMPACT);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
	return 1;
}

static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* One ECHO_REQ and its ECHO_RES. */
static int
echo_once(struct gw_conn *c)
{
	static const char payload[] = "it_gnet";
	const char *a = payload;
	size_t l = sizeof(payload) - 1;
	struct gw_packet p;

	if (gw_send(c, GW_ECHO_REQ, &a, &l, 1) < 0)
		return -1;
	if (gw_read(c, &p, IT_TIMEOUT_MS) != 1 || p.type != GW_ECHO_RES || p.len[0] != l ||
	    memcmp(p.arg[0], payload, l) != 0)
		return -1;
	return 0;
}

static int
run_echo(const struct gnet_tls *tls, const char *host, int port, int n)
{
	long long t0 = now_us(), *rtt = calloc((size_t)n, sizeof(*rtt)), connect_us;
	char err[600];
	struct gw_conn *c = gw_connect(tls, host, port, NULL, IT_TIMEOUT_MS, err, sizeof(err));
	json_t *o;
	char *s;
	int i;

	if (!c) {
		free(rtt);
		return fail(err);
	}
	connect_us = now_us() - t0;
	for (i = 0; i < n; i++) {
		long long t = now_us();

		if (echo_once(c) < 0) {
			snprintf(err, sizeof(err), "echo %d: %s", i, gw_error(c));
			gw_close(c);
			free(rtt);
			return fail(err);
		}
		rtt[i] = now_us() - t;
	}
	gw_close(c);
	qsort(rtt, (size_t)n, sizeof(*rtt), cmp_ll);
	o = json_pack("{s:b,s:I,s:I,s:I,s:i}", "ok", 1, "connect_us", (json_int_t)connect_us,
	    "median_us", (json_int_t)rtt[n / 2], "p90_us", (json_int_t)rtt[n * 9 / 10], "n", n);
	s = json_dumps(o, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	json_decref(o);
	free(rtt);
	return 0;
}

static int
run_admin(const struct gnet_tls *tls, const char *host, int port, const char *cmd, int repeat)
{
	struct gadmin_conn *a = gadmin_conn_new(tls, host, port);
	char err[600], *reply = NULL, *s;
	json_t *o;
	int i;

	for (i = 0; i < repeat; i++) {
		free(reply);
		if (!(reply = gadmin_conn_ask(a, cmd, IT_TIMEOUT_MS, err, sizeof(err)))) {
			gadmin_conn_free(a);
			return fail(err);
		}
	}
	gadmin_conn_free(a);
	o = json_pack("{s:b,s:s}", "ok", 1, "reply", reply ? reply : "");
	s = json_dumps(o, JSON_COMPACT);
	printf("%s\n", s);
	free(s);
	free(reply);
	json_decref(o);
	return 0;
}

int
main(int argc, char **argv)
{
	struct gnet_tls *tls = NULL;
	char err[600];
	int ch, rc;

	while ((ch = getopt(argc, argv, "T:")) != -1) {
		char *ca, *cert, *key;

		if (ch != 'T' || !(ca = strtok(optarg, ",")) || !(cert = strtok(NULL, ",")) ||
		    !(key = strtok(NULL, ",")))
			return 64;
		if (!(tls = gnet_tls_new(ca, cert, key, err, sizeof(err))))
			return fail(err);
	}
	argc -= optind;
	argv += optind;
	if (argc == 4 && !strcmp(argv[2], "echo") && atoi(argv[3]) > 0)
		rc = run_echo(tls, argv[0], atoi(argv[1]), atoi(argv[3]));
	else if (argc == 5 && !strcmp(argv[2], "admin") && atoi(argv[4]) > 0)
		rc = run_admin(tls, argv[0], atoi(argv[1]), argv[3], atoi(argv[4]));
	else
		rc = 64;
	gnet_tls_free(tls);
	return rc;
}
