/*
 * Unit tests for the coordinator's status answer (status.c, issue 18):
 * the snapshot made from a node list as jkmodel parses Jenkins' answer,
 * the exact text of an answer, escaping of names from outside, the
 * Pipeline rule (a run once, where its node() holds an executor), bounds,
 * and the request check (hostile: keys, types, sizes).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "jkmodel.h"
#include "coordinator/status.h"

static char err[512];

static struct status_snap *
snap_of(const char *json, long long read_ms)
{
	struct jk_node_list l;
	struct status_snap *s;

	if (jkmodel_parse_nodes(json, &l, err, sizeof(err)) != JK_OK)
		fail_msg("parse: %s", err);
	s = status_snap_new(&l, read_ms);
	jk_node_list_free(&l);
	return s;
}

/* A Pipeline run with two node() branches on alpha (one entry), its flyweight on alpha's one-off
 * executor (dropped: gearman from it), a one-off run without node() (shown), an offline node. */
static const char small_json[] =
    "{\"computer\":["
    "{\"displayName\":\"zeta\",\"numExecutors\":2,\"offline\":false,\"temporarilyOffline\":true,"
    "\"executors\":[{\"idle\":true},{\"idle\":true}]},"
    "{\"displayName\":\"alpha\",\"numExecutors\":2,\"offline\":false,\"temporarilyOffline\":false,"
    "\"executors\":["
    "{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/pipe/2/\",\"number\":2,\"timestamp\":1000,"
    "\"estimatedDuration\":5}},"
    "{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/pipe/2/\",\"number\":2,\"timestamp\":1000,"
    "\"estimatedDuration\":5}}],"
    "\"oneOffExecutors\":["
    "{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/pipe/2/\",\"number\":2,\"timestamp\":1000,"
    "\"estimatedDuration\":5,\"actions\":[{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":[{\"name\":\"GEARMAN_UNIQUE\",\"value\":\"u\"}]}]}},"
    "{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/f/job/q%22x/1/\",\"number\":1,"
    "\"timestamp\":7,\"estimatedDuration\":-1}}]}"
    "]}";

static const char small_answer[] =
    "{\"issued_ms\":5000,\"jenkins_error\":\"\",\"jenkins_ok\":true,\"master\":\"jenkins01\","
    "\"nodes\":[{\"builds\":["
    "{\"estimated_ms\":5,\"gearman\":true,\"job\":\"pipe\",\"number\":2,\"timestamp_ms\":1000,"
    "\"url\":\"http://j/job/pipe/2/\"},"
    "{\"estimated_ms\":-1,\"gearman\":false,\"job\":\"f/q\\\"x\",\"number\":1,\"timestamp_ms\":7,"
    "\"url\":\"http://j/job/f/job/q%22x/1/\"}],"
    "\"busy\":2,\"executors\":2,\"name\":\"alpha\",\"online\":true},"
    "{\"builds\":[],\"busy\":0,\"executors\":2,\"name\":\"zeta\",\"online\":false}],"
    "\"nonce\":\"abc\",\"read_ms\":4000,\"refresh_s\":60,\"url\":\"http://j\"}";

static void
test_render_exact(void **state)
{
	struct status_meta m = { .master = "jenkins01", .url = "http://j", .issued_ms = 5000,
	    .jenkins_error = "", .refresh_s = 60, .nonce = "abc" };
	struct status_snap *s = snap_of(small_json, 4000);
	json_t *parsed;
	char *text, *again;

	(void)state;
	text = status_render(s, &m);
	assert_string_equal(text, small_answer);
	/* Valid JSON, keys already in the order JSON_SORT_KEYS writes them. */
	parsed = json_loads(text, 0, NULL);
	assert_non_null(parsed);
	again = json_dumps(parsed, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(again, text);
	free(again);
	json_decref(parsed);
	free(text);
	assert_true(status_snap_read_ms(s) == 4000);
	status_snap_free(s);
	status_snap_free(NULL);
}

static void
test_render_failures_and_nothing_read(void **state)
{
	struct status_meta m = { .master = "m", .url = "u", .issued_ms = 9,
	    .jenkins_error = "GET computer/api/json: 503 Service Unavailable", .refresh_s = 1 };
	struct status_snap *s = snap_of("{\"computer\":[]}", 8);
	char *text;

	(void)state;
	text = status_render(s, &m);
	assert_string_equal(text, "{\"issued_ms\":9,\"jenkins_error\":\"GET computer/api/json: 503 Service "
	    "Unavailable\",\"jenkins_ok\":false,\"master\":\"m\",\"nodes\":[],\"read_ms\":8,\"refresh_s\":1,"
	    "\"url\":\"u\"}");
	free(text);
	status_snap_free(s);
	/* Never read: read_ms 0, not ok, even without an error yet. */
	m.jenkins_error = "";
	text = status_render(NULL, &m);
	assert_string_equal(text, "{\"issued_ms\":9,\"jenkins_error\":\"\",\"jenkins_ok\":false,\"master\":\"m\","
	    "\"nodes\":[],\"read_ms\":0,\"refresh_s\":1,\"url\":\"u\"}");
	free(text);
}

/* Names come from outside: every one escaped, bytes that are not UTF-8 replaced, valid JSON out. */
static void
test_render_escapes_odd_names(void **state)
{
	static char name[] = "a\"b\\c\n\x01\xff\xc3\xbc</script>\xe2\x80\xa8\xed\xa0\x80";
	static char url[] = "http://j/job/x\"y/1/";
	static char job[] = "x\"y\t\x7f";
	struct jk_run run = { .url = url, .job = job, .number = 1, .timestamp_ms = 2, .estimated_ms = -1 };
	struct jk_node node = { .name = name, .executors = 1, .busy = 1, .runs = &run, .nruns = 1 };
	struct jk_node_list l = { .nodes = &node, .n = 1 };
	struct status_meta m = { .master = "m\x80", .url = "u", .issued_ms = 1,
	    .jenkins_error = "bad \"thing\"\r", .refresh_s = 1, .nonce = "\x1f" };
	struct status_snap *s = status_snap_new(&l, 1);
	char *text = status_render(s, &m);
	json_t *parsed;

	(void)state;
	assert_string_equal(text, "{\"issued_ms\":1,\"jenkins_error\":\"bad \\\"thing\\\"\\r\",\"jenkins_ok\":false,"
	    "\"master\":\"m\\ufffd\",\"nodes\":[{\"builds\":[{\"estimated_ms\":-1,\"gearman\":false,"
	    "\"job\":\"x\\\"y\\t\x7f\",\"number\":1,\"timestamp_ms\":2,\"url\":\"http://j/job/x\\\"y/1/\"}],"
	    "\"busy\":1,\"executors\":1,\"name\":\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xbc</script>\xe2\x80\xa8"
	    "\\ufffd\\ufffd\\ufffd\",\"online\":true}],\"nonce\":\"\\u001f\",\"read_ms\":1,\"refresh_s\":1,"
	    "\"url\":\"u\"}");
	parsed = json_loads(text, 0, NULL);
	assert_non_null(parsed);
	json_decref(parsed);
	free(text);
	status_snap_free(s);
}

/* A run's job undecodable from its url: "" (its url still says where it is). */
static void
test_render_run_without_job(void **state)
{
	struct status_meta m = { .master = "m", .url = "u", .jenkins_error = "" };
	struct status_snap *s = snap_of("{\"computer\":[{\"displayName\":\"n\",\"numExecutors\":1,\"offline\":false,"
	    "\"temporarilyOffline\":false,\"executors\":[{\"idle\":false,\"currentExecutable\":"
	    "{\"url\":\"http://j/view/x/\"}}]}]}", 1);
	char *text = status_render(s, &m);

	(void)state;
	assert_non_null(strstr(text, "\"builds\":[{\"estimated_ms\":-1,\"gearman\":false,\"job\":\"\",\"number\":0,"
	    "\"timestamp_ms\":0,\"url\":\"http://j/view/x/\"}]"));
	free(text);
	status_snap_free(s);
}

/*
 * A Pipeline run whose flyweight is on built-in's one-off executor and
 * whose node() holds n1's executor: once, under n1, gearman from the run.
 * Parallel branches on two nodes: under each.
 */
static void
test_pipeline_across_nodes(void **state)
{
	static const char json[] =
	    "{\"computer\":["
	    "{\"_class\":\"hudson.model.Hudson$MasterComputer\",\"displayName\":\"Built-In Node\","
	    "\"numExecutors\":0,\"offline\":false,\"temporarilyOffline\":false,\"executors\":[],"
	    "\"oneOffExecutors\":[{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/p/4/\",\"number\":4,"
	    "\"actions\":[{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":[{\"name\":\"GEARMAN_UNIQUE\",\"value\":\"z\"}]}]}}]},"
	    "{\"displayName\":\"n1\",\"numExecutors\":1,\"offline\":false,\"temporarilyOffline\":false,"
	    "\"executors\":[{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/p/4/\",\"number\":4}}]},"
	    "{\"displayName\":\"n2\",\"numExecutors\":1,\"offline\":false,\"temporarilyOffline\":false,"
	    "\"executors\":[{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/p/4/\",\"number\":4}}]}"
	    "]}";
	struct status_meta m = { .master = "m", .url = "u", .jenkins_error = "" };
	struct status_snap *s = snap_of(json, 1);
	char *text = status_render(s, &m);
	const char *run = "{\"estimated_ms\":-1,\"gearman\":true,\"job\":\"p\",\"number\":4,\"timestamp_ms\":0,"
	    "\"url\":\"http://j/job/p/4/\"}";
	char want[2048];

	(void)state;
	snprintf(want, sizeof(want), "\"nodes\":[{\"builds\":[],\"busy\":0,\"executors\":0,\"name\":\"built-in\","
	    "\"online\":true},{\"builds\":[%s],\"busy\":1,\"executors\":1,\"name\":\"n1\",\"online\":true},"
	    "{\"builds\":[%s],\"busy\":1,\"executors\":1,\"name\":\"n2\",\"online\":true}]", run, run);
	assert_non_null(strstr(text, want));
	free(text);
	status_snap_free(s);
}

/* At most one build per executor listed; the same run on many executors once. */
static void
test_bounds(void **state)
{
	struct buf b = { 0 };
	struct status_meta m = { .master = "m", .url = "u", .jenkins_error = "" };
	struct status_snap *s;
	json_t *doc, *builds;
	char *text;
	int i;

	(void)state;
	buf_adds(&b, "{\"computer\":[{\"displayName\":\"n\",\"numExecutors\":2,\"offline\":false,"
	    "\"temporarilyOffline\":false,\"executors\":[");
	for (i = 0; i < 300; i++)
		buf_addf(&b, "%s{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/a/%d/\"}}",
		    i ? "," : "", i < 200 ? 1 : i);
	buf_adds(&b, "]}]}");
	s = snap_of(b.s, 1);
	text = status_render(s, &m);
	doc = json_loads(text, 0, NULL);
	assert_non_null(doc);
	builds = json_object_get(json_array_get(json_object_get(doc, "nodes"), 0), "builds");
	assert_int_equal(json_array_size(builds), 1 + 100);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(doc, "nodes"), 0),
	    "busy")), 300);
	json_decref(doc);
	free(text);
	status_snap_free(s);
	buf_free(&b);
}

static enum status_req
req(const char *text, char *nonce, bool *has)
{
	err[0] = '\0';
	return status_request(text, strlen(text), nonce, has, err, sizeof(err));
}

static void
expect_bad(const char *text, const char *frag)
{
	char nonce[STATUS_NONCE_MAX + 1];
	bool has;

	if (req(text, nonce, &has) != STATUS_REQ_BAD)
		fail_msg("not refused: %s", text);
	if (!strstr(err, frag))
		fail_msg("%s: message \"%s\" lacks \"%s\"", text, err, frag);
}

static void
test_request(void **state)
{
	char nonce[STATUS_NONCE_MAX + 1], big[400], key[200];
	bool has;

	(void)state;
	/* Map requests (and what projmap_answer refuses itself) are not status requests. */
	assert_int_equal(status_request("", 0, nonce, &has, err, sizeof(err)), STATUS_REQ_NONE);
	assert_int_equal(req("{}", nonce, &has), STATUS_REQ_NONE);
	assert_int_equal(req("{\"node\":\"n1\",\"nonce\":\"x\"}", nonce, &has), STATUS_REQ_NONE);
	assert_int_equal(req("not json", nonce, &has), STATUS_REQ_NONE);
	assert_int_equal(req("[{\"status\":true}]", nonce, &has), STATUS_REQ_NONE);
	assert_int_equal(req("{\"status\":true,\"status\":true}", nonce, &has), STATUS_REQ_NONE);
	assert_int_equal(req("{\"status\":true}", nonce, &has), STATUS_REQ_OK);
	assert_false(has);
	assert_int_equal(req("{\"nonce\":\"n\\\"1\",\"status\":true}", nonce, &has), STATUS_REQ_OK);
	assert_true(has);
	assert_string_equal(nonce, "n\"1");

	expect_bad("{\"status\":true,\"node\":\"n1\"}", "\"status\" goes with no other key than \"nonce\" (got \"node\")");
	expect_bad("{\"function\":\"build:x\",\"status\":true}", "(got \"function\")");
	expect_bad("{\"status\":false}", "\"status\" must be true");
	expect_bad("{\"status\":1}", "\"status\" must be true");
	expect_bad("{\"status\":null}", "\"status\" must be true");
	expect_bad("{\"status\":\"true\"}", "\"status\" must be true");
	expect_bad("{\"status\":true,\"nonce\":5}", "\"nonce\" must be a string of at most 128 bytes");
	/* jansson refuses \u0000 unless asked (JSON_ALLOW_NUL): not JSON, and projmap_answer says so. */
	assert_int_equal(req("{\"status\":true,\"nonce\":\"a\\u0000b\"}", nonce, &has), STATUS_REQ_NONE);
	/* 128 bytes are fine, 129 are not. */
	snprintf(big, sizeof(big), "{\"status\":true,\"nonce\":\"%0128d\"}", 0);
	assert_int_equal(req(big, nonce, &has), STATUS_REQ_OK);
	assert_int_equal(strlen(nonce), 128);
	snprintf(big, sizeof(big), "{\"status\":true,\"nonce\":\"%0129d\"}", 0);
	expect_bad(big, "at most 128");
	/* A long key is quoted cut short. */
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(big, sizeof(big), "{\"status\":true,\"%s\":1}", key);
	expect_bad(big, "(got \"kkkk");
	assert_true(strlen(err) < 150);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_exact),
		cmocka_unit_test(test_render_failures_and_nothing_read),
		cmocka_unit_test(test_render_escapes_odd_names),
		cmocka_unit_test(test_render_run_without_job),
		cmocka_unit_test(test_pipeline_across_nodes),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_request),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
