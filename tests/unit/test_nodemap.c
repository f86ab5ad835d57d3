/* Unit tests for agent/node/nodemap.c: reading the coordinator's answer for one node. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <unistd.h>

#include "jarena.h"
#include "sign.h"
#include "node/node.h"

static struct nodemap *
parse(const char *text, bool *unchanged, char *err, size_t errlen)
{
	struct nodemap *m = nodemap_parse(text, strlen(text), "n1", err, errlen);

	*unchanged = m && m->unchanged;
	if (*unchanged) {
		nodemap_free(m);
		return NULL;
	}
	return m;
}

static void
expect_refused(const char *text, const char *frag)
{
	char err[512] = "";
	bool unchanged = true;

	assert_null(parse(text, &unchanged, err, sizeof(err)));
	assert_false(unchanged);
	if (!strstr(err, frag))
		fail_msg("'%s': error '%s' lacks '%s'", text, err, frag);
}

static void
test_nodemap_slice(void **ctx)
{
	const char *text =
	    " {\"functions\" : [ {\"job\":\"a\",\"name\":\"build:a\",\"pin\":\"NODE\"},"
	    "{\"job\":\"f/b\",\"name\":\"build:f/b:x86\",\"pin\":\"NODE_LABEL\",\"extra\":[1,{}]},"
	    "{\"job\":\"c\",\"name\":\"build:c\"}, 7,"
	    "{\"job\":\"d \\u00fc\",\"name\":\"build:d \\u00fc\",\"pin\":\"NODE\"}],"
	    "\"node\":{\"name\":\"n1\",\"executors\":3,\"online\":true,\"labels\":[\"x86\",5,\"docker\"]},"
	    "\"version\":\"abc123\",\"future\":{\"x\":[1,2]}}\n";
	char err[512];
	bool unchanged;
	struct nodemap *m;

	(void)ctx;
	if (!(m = parse(text, &unchanged, err, sizeof(err))))
		fail_msg("refused: %s", err);
	assert_false(unchanged);
	assert_string_equal(m->version, "abc123");
	assert_int_equal(m->executors, 3);
	assert_true(m->online);
	assert_int_equal(m->nlabels, 2);
	assert_string_equal(m->labels[0], "x86");
	assert_string_equal(m->labels[1], "docker");
	/* In the coordinator's order; entries without name, job and pin are left out. */
	assert_int_equal(m->nfns, 3);
	assert_string_equal(m->fns[0].name, "build:a");
	assert_string_equal(m->fns[1].name, "build:f/b:x86");
	assert_string_equal(m->fns[1].job, "f/b");
	assert_string_equal(m->fns[1].pin, "NODE_LABEL");
	assert_string_equal(m->fns[2].job, "d \xc3\xbc");
	nodemap_free(m);
}

static void
test_nodemap_unchanged(void **ctx)
{
	char err[512];
	bool unchanged = false;

	(void)ctx;
	assert_null(parse("{\"version\":\"abc123\",\"unchanged\":true}", &unchanged, err, sizeof(err)));
	assert_true(unchanged);
}

static void
test_nodemap_refused(void **ctx)
{
	(void)ctx;
	expect_refused("", "malformed JSON");
	expect_refused("[]", "expected an object");
	expect_refused("{\"functions\":[{\"job\":\"a\",\"name\":\"build:a\",\"pin\":\"N\"}", "expected ',' or ']'");
	expect_refused("{\"functions\":[{\"job\":\"a\" \"name\":1}]}", "malformed JSON");
	expect_refused("{\"version\":\"v\",\"functions\":[],\"node\":{\"name\":\"n1\",\"executors\":1,"
	    "\"labels\":[]}} x", "expected the end of the document");
	/* Well-formed, but not this node's slice. */
	expect_refused("{\"version\":\"v\",\"functions\":[],\"node\":{\"name\":\"n2\",\"executors\":1,"
	    "\"labels\":[]}}", "not this node's slice");
	expect_refused("{\"version\":\"v\",\"functions\":{},\"node\":{\"name\":\"n1\",\"executors\":1,"
	    "\"labels\":[]}}", "not this node's slice");
	expect_refused("{\"version\":\"v\",\"node\":{\"name\":\"n1\",\"executors\":1,\"labels\":[]}}",
	    "not this node's slice");
	expect_refused("{\"functions\":[],\"node\":{\"name\":\"n1\",\"executors\":1,\"labels\":[]}}",
	    "not this node's slice");
	expect_refused("{\"version\":\"v\",\"functions\":[],\"node\":{\"name\":\"n1\",\"labels\":[]}}",
	    "not this node's slice");
	expect_refused("{\"version\":\"v\",\"unchanged\":true,\"unchanged\":false}", "not this node's slice");
	expect_refused("{\"unchanged\":true}", "not this node's slice");
}

static void
test_nodemap_executors_bounded(void **ctx)
{
	char err[512];
	bool unchanged;
	struct nodemap *m;

	(void)ctx;
	m = parse("{\"version\":\"v\",\"functions\":[],\"node\":{\"name\":\"n1\",\"executors\":-4,\"labels\":[]}}",
	    &unchanged, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->executors, 0);
	assert_false(m->online);
	nodemap_free(m);
	m = parse("{\"version\":\"v\",\"functions\":[],\"node\":{\"name\":\"n1\",\"executors\":100000,\"labels\":[]}}",
	    &unchanged, err, sizeof(err));
	assert_non_null(m);
	assert_int_equal(m->executors, NODE_MAX_EXECUTORS);
	nodemap_free(m);
}

/* A big slice, read entry by entry in the arena. */
static void
test_nodemap_big(void **ctx)
{
	size_t n = 20000, cap = n * 90 + 200, len = 0, i;
	char *text = malloc(cap), err[512];
	bool unchanged;
	struct nodemap *m;

	(void)ctx;
	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len, "{\"functions\":[");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s{\"job\":\"job-%05zu\",\"name\":\"build:job-%05zu\","
		    "\"pin\":\"NODE\"}", i ? "," : "", i, i);
	snprintf(text + len, cap - len, "],\"node\":{\"name\":\"n1\",\"executors\":8,\"online\":true,"
	    "\"labels\":[]},\"version\":\"v2\"}");
	m = parse(text, &unchanged, err, sizeof(err));
	if (!m)
		fail_msg("refused: %s", err);
	assert_int_equal(m->nfns, n);
	assert_string_equal(m->fns[n - 1].name, "build:job-19999");
	assert_string_equal(m->fns[12345].job, "job-12345");
	nodemap_free(m);
	free(text);
}

/*
 * gearmand is open to anyone: a map answer may be forged. An entry whose
 * function is not its own job's (too short to be build:*, another job's)
 * or whose pin is empty makes the answer unusable;
 * the job's short name, full name and label forms are the coordinator's.
 */
static void
test_nodemap_entries_checked(void **ctx)
{
	static const char head[] = "{\"functions\":[", tail[] = "],\"node\":{\"name\":\"n1\","
	    "\"executors\":1,\"online\":true,\"labels\":[]},\"version\":\"v\"}";
	static const struct { const char *entry, *err; } bad[] = {
		{ "{\"job\":\"a\",\"name\":\"x\",\"pin\":\"NODE\"}", "not a build function of job" },
		{ "{\"job\":\"a\",\"name\":\"build:\",\"pin\":\"NODE\"}", "not a build function" },
		{ "{\"job\":\"secret\",\"name\":\"build:a\",\"pin\":\"NODE\"}", "not a build function" },
		{ "{\"job\":\"a\",\"name\":\"build:ab\",\"pin\":\"NODE\"}", "not a build function" },
		{ "{\"job\":\"f/a\",\"name\":\"build:g/a\",\"pin\":\"NODE\"}", "not a build function" },
		{ "{\"job\":\"a\",\"name\":\"build:a\",\"pin\":\"\"}", "has no pin parameter" },
	};
	static const char *good[] = {
		"{\"job\":\"a\",\"name\":\"build:a\",\"pin\":\"NODE\"}",
		"{\"job\":\"f/a\",\"name\":\"build:a:linux\",\"pin\":\"NODE\"}",
		"{\"job\":\"f/a\",\"name\":\"build:f/a\",\"pin\":\"NODE\"}",
	};
	char text[1024], err[512];
	bool unchanged;
	struct nodemap *m;
	size_t i;

	(void)ctx;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "%s%s%s", head, bad[i].entry, tail);
		expect_refused(text, bad[i].err);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		snprintf(text, sizeof(text), "%s%s%s", head, good[i], tail);
		if (!(m = parse(text, &unchanged, err, sizeof(err))))
			fail_msg("'%s' refused: %s", good[i], err);
		assert_int_equal(m->nfns, 1);
		nodemap_free(m);
	}
}

/* ---- the verifier: nodemap_accept ---- */

/* Key pairs made by keygen in a fresh directory: [0] the coordinator's, [1] another. */
static char keydir[2][64];
static struct sign_key *priv[2];

static int
keys_setup(void **ctx)
{
	char err[512], path[200];
	int i;

	(void)ctx;
	for (i = 0; i < 2; i++) {
		snprintf(keydir[i], sizeof(keydir[i]), "/tmp/jga-test-keys-XXXXXX");
		if (!mkdtemp(keydir[i]) || sign_keygen(keydir[i], err, sizeof(err)) < 0)
			fail_msg("keygen: %s", err);
		snprintf(path, sizeof(path), "%s/%s", keydir[i], SIGN_PRIVATE_FILE);
		if (!(priv[i] = sign_key_private(path, err, sizeof(err))))
			fail_msg("%s", err);
	}
	return 0;
}

static int
keys_teardown(void **ctx)
{
	char path[200];
	int i;

	(void)ctx;
	for (i = 0; i < 2; i++) {
		sign_key_free(priv[i]);
		snprintf(path, sizeof(path), "%s/%s", keydir[i], SIGN_PRIVATE_FILE);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s", keydir[i], SIGN_PUBLIC_FILE);
		unlink(path);
		rmdir(keydir[i]);
	}
	return 0;
}

/* An agent of n1 for the master "HTTP://user:pw@CI.example:80/jenkins/", trusting key 0. */
static void
trust_open(struct nodemap_trust *t)
{
	char err[512], path[200];

	snprintf(path, sizeof(path), "%s/%s", keydir[0], SIGN_PUBLIC_FILE);
	if (nodemap_trust_open(t, path, "HTTP://user:pw@CI.example:80/jenkins/", "n1", err, sizeof(err)) < 0)
		fail_msg("%s", err);
	assert_string_equal(t->url, "http://ci.example/jenkins");
	free(nodemap_request(t, NULL));
}

/* A slice for n1 with url, nonce and issued_ms, signed with key k (-1: not signed). */
static char *
answer(int k, const char *url, const char *nonce, long long issued, const char *pin)
{
	char text[1024];

	snprintf(text, sizeof(text), "{\"functions\":[{\"job\":\"a\",\"name\":\"build:a\",\"pin\":\"%s\"}],"
	    "\"issued_ms\":%lld,\"node\":{\"name\":\"n1\",\"executors\":1,\"online\":true,\"labels\":[]},"
	    "\"nonce\":\"%s\",\"url\":\"%s\",\"version\":\"v\"}", pin, issued, nonce, url);
	return k < 0 ? strdup(text) : sign_wrap(priv[k], text, strlen(text));
}

static void
expect_rejected(struct nodemap_trust *t, char *ans, const char *frag)
{
	char err[512] = "";
	bool unchanged = true;

	assert_null(nodemap_accept(t, ans, strlen(ans), &unchanged, err, sizeof(err)));
	assert_false(unchanged);
	if (!strstr(err, frag))
		fail_msg("'%s': error '%s' lacks '%s'", ans, err, frag);
	free(ans);
}

static void
test_verify_accepts_the_coordinators(void **ctx)
{
	struct nodemap_trust t;
	struct nodemap *m;
	char err[512], *a, unch[512];
	bool unchanged;

	(void)ctx;
	trust_open(&t);
	a = answer(0, "http://ci.example/jenkins", t.nonce, 5000, "NODE");
	m = nodemap_accept(&t, a, strlen(a), &unchanged, err, sizeof(err));
	if (!m)
		fail_msg("refused: %s", err);
	assert_int_equal(m->nfns, 1);
	assert_int_equal(t.last_issued_ms, 5000);
	nodemap_free(m);
	free(a);
	/* The same answer again answers no request: a replay. */
	free(nodemap_request(&t, "v"));
	expect_rejected(&t, answer(0, "http://ci.example/jenkins", "0123", 5000, "NODE"), "replayed");
	/* A signed "unchanged" for this request: nothing new, not an error. */
	free(nodemap_request(&t, "v"));
	snprintf(unch, sizeof(unch), "{\"issued_ms\":6000,\"nonce\":\"%s\",\"unchanged\":true,"
	    "\"url\":\"http://ci.example/jenkins\",\"version\":\"v\"}", t.nonce);
	a = sign_wrap(priv[0], unch, strlen(unch));
	assert_null(nodemap_accept(&t, a, strlen(a), &unchanged, err, sizeof(err)));
	assert_true(unchanged);
	assert_int_equal(t.last_issued_ms, 6000);
	free(a);
	nodemap_trust_close(&t);
}

static void
test_verify_refuses_forgeries(void **ctx)
{
	struct nodemap_trust t;
	char *a, *p;

	(void)ctx;
	trust_open(&t);
	t.last_issued_ms = 100000;
	expect_rejected(&t, answer(-1, "http://ci.example/jenkins", t.nonce, 100000, "NODE"), "unsigned");
	expect_rejected(&t, strdup("{\"ed25519\":\"AAAA\",\"signed\":\"{}\"}"), "bad signature");
	expect_rejected(&t, strdup("{\"ed25519\":\"x\",\"signed\":\"{}\",\"more\":1}"), "unsigned");
	expect_rejected(&t, strdup(""), "unsigned");
	expect_rejected(&t, answer(1, "http://ci.example/jenkins", t.nonce, 100000, "NODE"), "bad signature");
	/* One byte of the signed text changed after signing ("v" -> "w" in the version). */
	a = answer(0, "http://ci.example/jenkins", t.nonce, 100000, "NODE");
	p = strstr(a, "\\\"v\\\"");
	assert_non_null(p);
	p[2] = 'w';
	expect_rejected(&t, a, "bad signature");
	expect_rejected(&t, answer(0, "http://ci.example:8080/jenkins", t.nonce, 100000, "NODE"),
	    "the map of the master http://ci.example:8080/jenkins");
	expect_rejected(&t, answer(0, "http://ci.example/jenkins", "feedbeef", 100000, "NODE"), "replayed");
	expect_rejected(&t, answer(0, "http://ci.example/jenkins", t.nonce, 100000 - NODEMAP_SKEW_MS - 1, "NODE"),
	    "replayed: issued at");
	expect_rejected(&t, answer(0, "http://ci.example/jenkins", t.nonce, 100000, ""), "has no pin parameter");
	assert_int_equal(t.last_issued_ms, 100000);
	nodemap_trust_close(&t);
}

static void
test_verify_key_files(void **ctx)
{
	struct nodemap_trust t;
	char err[512], path[200];

	(void)ctx;
	assert_int_equal(nodemap_trust_open(&t, "/nonexistent/map.pub", "http://a/", "n1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "map_public_key_file: cannot open"));
	snprintf(path, sizeof(path), "%s/%s", keydir[0], SIGN_PRIVATE_FILE);
	assert_int_equal(nodemap_trust_open(&t, path, "http://a/", "n1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a PEM public key"));
	snprintf(path, sizeof(path), "%s/%s", keydir[0], SIGN_PUBLIC_FILE);
	assert_null(sign_key_private(path, err, sizeof(err)));   /* 0644: not a secret */
	assert_non_null(strstr(err, "chmod 600"));
	assert_int_equal(chmod(path, 0664), 0);
	assert_int_equal(nodemap_trust_open(&t, path, "http://a/", "n1", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "may be written by group or others"));
	assert_int_equal(chmod(path, 0644), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nodemap_slice),
		cmocka_unit_test(test_nodemap_unchanged),
		cmocka_unit_test(test_nodemap_refused),
		cmocka_unit_test(test_nodemap_executors_bounded),
		cmocka_unit_test(test_nodemap_big),
		cmocka_unit_test(test_nodemap_entries_checked),
		cmocka_unit_test_setup_teardown(test_verify_accepts_the_coordinators, keys_setup, keys_teardown),
		cmocka_unit_test_setup_teardown(test_verify_refuses_forgeries, keys_setup, keys_teardown),
		cmocka_unit_test_setup_teardown(test_verify_key_files, keys_setup, keys_teardown),
	};

	/* As the daemon does: entries are then read in the arena. */
	jarena_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
