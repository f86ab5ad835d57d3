/*
 * Unit tests for the Jenkins client: URL building and encoding, Location
 * parsing (jkpath.c), status classification (http.c), and every response
 * parser (jkmodel.c, xmlscan.c) on fixture strings shaped like real
 * Jenkins answers, plus malformed input of each. No network: the client
 * tests (jenkins.c) only exercise what fails before a request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "jarena.h"
#include "http.h"
#include "jenkins.h"
#include "jkmodel.h"
#include "jkpath.h"

static char err[1024];

static void
expect_str(char *got, const char *want)
{
	if (!want) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void
expect_contains(const char *s, const char *frag)
{
	if (!strstr(s, frag))
		fail_msg("'%s' lacks '%s'", s, frag);
}

/* ---- encoding and paths ---- */

static void
test_encode_segment(void **state)
{
	(void)state;
	expect_str(jkpath_encode_segment("abcXYZ019"), "abcXYZ019");
	expect_str(jkpath_encode_segment("-._~"), "-._~");
	expect_str(jkpath_encode_segment("a b"), "a%20b");
	expect_str(jkpath_encode_segment("#"), "%23");
	expect_str(jkpath_encode_segment("a?b=c&d"), "a%3Fb%3Dc%26d");
	expect_str(jkpath_encode_segment("a/b"), "a%2Fb");
	expect_str(jkpath_encode_segment("100%"), "100%25");
	expect_str(jkpath_encode_segment("%2F"), "%252F");
	expect_str(jkpath_encode_segment("+;:@!$'()*,"), "%2B%3B%3A%40%21%24%27%28%29%2A%2C");
	expect_str(jkpath_encode_segment("\xc3\xbc"), "%C3%BC");		/* ü */
	expect_str(jkpath_encode_segment("日本"), "%E6%97%A5%E6%9C%AC");
	expect_str(jkpath_encode_segment("\t\n\x7f"), "%09%0A%7F");
	/* Dot segments would be squashed by curl or a proxy. */
	expect_str(jkpath_encode_segment("."), "%2E");
	expect_str(jkpath_encode_segment(".."), "%2E%2E");
	expect_str(jkpath_encode_segment("..."), "...");
	expect_str(jkpath_encode_segment(".a"), ".a");
	expect_str(jkpath_encode_segment("a.."), "a..");
	expect_str(jkpath_encode_segment(""), "");
	assert_null(jkpath_encode_segment(NULL));
}

static void
test_path_job(void **state)
{
	(void)state;
	expect_str(jkpath_job("a"), "job/a/");
	expect_str(jkpath_job("a/b/c"), "job/a/job/b/job/c/");
	expect_str(jkpath_job("f 1/job #2"), "job/f%201/job/job%20%232/");
	expect_str(jkpath_job("a?x=1"), "job/a%3Fx%3D1/");
	expect_str(jkpath_job("100%"), "job/100%25/");
	expect_str(jkpath_job("dossier/tâche"), "job/dossier/job/t%C3%A2che/");
	expect_str(jkpath_job("a/../b"), "job/a/job/%2E%2E/job/b/");
	expect_str(jkpath_job("./x"), "job/%2E/job/x/");
	expect_str(jkpath_job(".."), "job/%2E%2E/");
	expect_str(jkpath_job("build.a"), "job/build.a/");
	/* Empty segments are refused. */
	assert_null(jkpath_job(NULL));
	assert_null(jkpath_job(""));
	assert_null(jkpath_job("/"));
	assert_null(jkpath_job("/a"));
	assert_null(jkpath_job("a/"));
	assert_null(jkpath_job("a//b"));
	assert_null(jkpath_job("a/b//"));
}

static void
test_path_node(void **state)
{
	(void)state;
	expect_str(jkpath_node("built-in", NULL), "computer/(built-in)/");
	expect_str(jkpath_node("", "2.479.3"), "computer/(built-in)/");
	expect_str(jkpath_node(NULL, ""), "computer/(built-in)/");
	/* Since 2.307 an agent may be called "master". */
	expect_str(jkpath_node("master", "2.307"), "computer/master/");
	expect_str(jkpath_node("master", NULL), "computer/master/");
	expect_str(jkpath_node("node1", NULL), "computer/node1/");
	expect_str(jkpath_node("my node", NULL), "computer/my%20node/");
	expect_str(jkpath_node("Built-In Node", NULL), "computer/Built-In%20Node/");
	expect_str(jkpath_node("..", NULL), "computer/%2E%2E/");
	expect_str(jkpath_node("n#1?", NULL), "computer/n%231%3F/");
	expect_str(jkpath_node("nœud", NULL), "computer/n%C5%93ud/");
}

/* Issue 17: before 2.307 the controller is /computer/(master)/ (Jenkins.getComputer). */
static void
test_path_node_legacy(void **state)
{
	(void)state;
	expect_str(jkpath_node("built-in", "2.306"), "computer/(master)/");
	expect_str(jkpath_node("master", "2.303.3"), "computer/(master)/");
	expect_str(jkpath_node("", "1.651.3"), "computer/(master)/");
	expect_str(jkpath_node("node1", "2.306"), "computer/node1/");
	expect_str(jkpath_node("built-in", "2.307"), "computer/(built-in)/");
	expect_str(jkpath_node("built-in", "2.319.1"), "computer/(built-in)/");
	expect_str(jkpath_node("built-in", "3.0"), "computer/(built-in)/");
	expect_str(jkpath_node("built-in", "garbage"), "computer/(built-in)/");
	expect_str(jkpath_node("built-in", "2"), "computer/(built-in)/");
	assert_true(jkpath_is_controller("master", "2.306"));
	assert_false(jkpath_is_controller("master", "2.307"));
	assert_true(jkpath_is_controller("built-in", "2.306"));
	assert_true(jkpath_is_controller("", "2.479.3"));
	assert_false(jkpath_is_controller("node1", "2.306"));
	assert_true(jkpath_before_builtin("2.306"));
	assert_false(jkpath_before_builtin("2.307"));
	assert_false(jkpath_before_builtin(NULL));
	assert_false(jkpath_before_builtin("x2.1"));
}

/*
 * Issue 17: hudson.Util.rawEncode, character for character: its uriMap
 * leaves "!$&'()*+,-.=@_" and alphanumerics, and encodes the rest,
 * '~' included, in upper-case hex; UTF-8 byte by byte.
 */
static void
test_raw_encode(void **state)
{
	int c;

	(void)state;
	expect_str(jkpath_raw_encode("deploy (prod)+x,y=z'q'"), "deploy%20(prod)+x,y=z'q'");
	expect_str(jkpath_raw_encode("a~b"), "a%7Eb");
	expect_str(jkpath_raw_encode("!$&'()*+,-.=@_"), "!$&'()*+,-.=@_");
	expect_str(jkpath_raw_encode("\"#%/:;<>?[\\]^`{|}"),
	    "%22%23%25%2F%3A%3B%3C%3E%3F%5B%5C%5D%5E%60%7B%7C%7D");
	expect_str(jkpath_raw_encode("t\xc3\xa2" "che"), "t%C3%A2che");
	expect_str(jkpath_raw_encode("\t\x7f"), "%09%7F");
	expect_str(jkpath_raw_encode(""), "");
	assert_null(jkpath_raw_encode(NULL));
	/* Every ASCII character: encoded exactly when uriMap says so. */
	for (c = 1; c < 128; c++) {
		static const char raw[] = "!  $ &'()*+,-. 0123456789   =  @ABCDEFGHIJKLMNOPQRSTUVWXYZ    _ "
		    "abcdefghijklmnopqrstuvwxyz";
		char in[2] = { (char)c, 0 };
		char *out = jkpath_raw_encode(in);
		bool bare = c >= '!' && c <= 'z' && raw[c - '!'] != ' ';

		if (bare != (strcmp(out, in) == 0))
			fail_msg("rawEncode of 0x%02x gave %s", c, out);
		free(out);
	}
}

/* Issue 17: Jenkins' task.url (rawEncode) and our job path name the same job. */
static void
test_same_job(void **state)
{
	char *ours = jkpath_job("deploy (prod)+x,y=z~'q'");

	(void)state;
	assert_string_equal(ours, "job/deploy%20%28prod%29%2Bx%2Cy%3Dz~%27q%27/");
	assert_true(jkpath_same_job("http://j:8080/job/deploy%20(prod)+x,y=z%7E'q'/", ours));
	assert_true(jkpath_same_job("http://j/jenkins/job/deploy%20(prod)+x,y=z%7e'q'/", ours));
	assert_true(jkpath_same_job("job/deploy%20(prod)+x,y=z%7E'q'", ours));
	assert_true(jkpath_same_job("/job/deploy%20(prod)+x,y=z%7E'q'/?x#y", ours));
	/* '+' is a plus in a path, never a space. */
	assert_false(jkpath_same_job("http://j/job/deploy%20(prod)%20x,y=z%7E'q'/", ours));
	assert_false(jkpath_same_job("http://j/job/deploy%20(prod)+x,y=z%7E'q'/3/", ours));
	free(ours);
	ours = jkpath_job("f/a");
	assert_true(jkpath_same_job("http://j/job/f/job/a/", ours));
	assert_false(jkpath_same_job("http://j/job/a/", ours));
	assert_false(jkpath_same_job("http://j/job/g/job/f/job/a/", ours));
	free(ours);
	ours = jkpath_job("a");
	/* Another folder's job of the same name is not ours. */
	assert_false(jkpath_same_job("http://j/job/x/job/a/", ours));
	assert_false(jkpath_same_job("http://j/job/ab/", ours));
	assert_false(jkpath_same_job("http://j/view/all/", ours));
	assert_false(jkpath_same_job("", ours));
	assert_false(jkpath_same_job(NULL, ours));
	assert_true(jkpath_same_job("https://j/job/%61/", ours));
	free(ours);
}

static void
test_form_encode(void **state)
{
	struct jk_kv kv[] = {
		{ "NODE", "node1" },
		{ "FOO", "a b&c=d" },
		{ "LABEL", "linux&&x86" },
		{ "EMPTY", NULL },
		{ "DOT", "." },
		{ "UNI", "é/%" },
		{ "MY PARAM", "x+y" },
	};

	(void)state;
	expect_str(jkpath_encode_form(kv, 1), "NODE=node1");
	expect_str(jkpath_encode_form(kv, sizeof(kv) / sizeof(kv[0])),
	    "NODE=node1&FOO=a%20b%26c%3Dd&LABEL=linux%26%26x86&EMPTY=&DOT=.&UNI=%C3%A9%2F%25"
	    "&MY%20PARAM=x%2By");
	expect_str(jkpath_encode_form(NULL, 0), "");
}

/* ---- Location ---- */

static void
expect_location(const char *loc, long want)
{
	long id = 12345;

	if (jkpath_queue_id(loc, &id) != 0)
		fail_msg("'%s' refused", loc);
	assert_int_equal(id, want);
}

static void
expect_bad_location(const char *loc)
{
	long id = 12345;

	if (jkpath_queue_id(loc, &id) != -1)
		fail_msg("'%s' accepted as %ld", loc ? loc : "(null)", id);
	assert_int_equal(id, 12345);
}

static void
test_location(void **state)
{
	char big[64];

	(void)state;
	expect_location("http://jenkins.mycompany.com/queue/item/3901/", 3901);
	expect_location("http://127.0.0.1:8080/queue/item/1/", 1);
	expect_location("http://127.0.0.1:8080/queue/item/42", 42);
	expect_location("https://h/jenkins/queue/item/12/", 12);
	expect_location("/queue/item/5/", 5);
	expect_location("queue/item/7", 7);
	expect_location("queue/item/7/", 7);
	expect_location("http://h/queue/item/8/?x=1", 8);
	snprintf(big, sizeof(big), "queue/item/%ld/", LONG_MAX);
	expect_location(big, LONG_MAX);

	expect_bad_location(NULL);
	expect_bad_location("");
	expect_bad_location("/");
	expect_bad_location("http://h/job/a/");			/* 302 to the job page */
	expect_bad_location("http://h/queue/item/");
	expect_bad_location("http://h/queue/item//");
	expect_bad_location("http://h/queue/item/abc/");
	expect_bad_location("http://h/queue/item/12a/");
	expect_bad_location("http://h/queue/item/-3/");
	expect_bad_location("http://h/queue/item/0/");
	expect_bad_location("http://h/queue/item/5//");
	expect_bad_location("http://h/myqueue/item/5/");
	expect_bad_location("http://h/queue/items/5/");
	expect_bad_location("http://h/5/");
	expect_bad_location("garbage");
	expect_bad_location("queue/item/9223372036854775808/");	/* LONG_MAX + 1 */
	expect_bad_location("queue/item/99999999999999999999999/");
}

/* ---- status classification and names ---- */

static void
test_classify_status(void **state)
{
	long s;

	(void)state;
	for (s = -1; s < 1000; s++) {
		enum jk_err want;

		if (s >= 200 && s < 400)
			want = JK_OK;
		else if (s == 400)
			want = JK_EBADREQ;
		else if (s == 401)
			want = JK_EAUTH;
		else if (s == 403)
			want = JK_EFORBIDDEN;
		else if (s == 404)
			want = JK_ENOTFOUND;
		else if (s == 409)
			want = JK_ECONFLICT;
		else if (s >= 500 && s < 600)
			want = JK_ESERVER;
		else
			want = JK_EPROTO;	/* 0, 1xx, 405, 422, 429, 6xx, ... */
		if (http_status_err(s) != want)
			fail_msg("status %ld: got %d, want %d", s, http_status_err(s), want);
	}
}

static void
test_strerror(void **state)
{
	int a, b;

	(void)state;
	assert_string_equal(jk_strerror(JK_OK), "ok");
	assert_string_equal(jk_strerror(JK_ECONNECT), "cannot connect");
	assert_string_equal(jk_strerror(JK_ETIMEOUT), "timeout");
	for (a = JK_OK; a <= JK_ECANCELED; a++) {
		assert_true(strlen(jk_strerror((enum jk_err)a)) > 0);
		for (b = a + 1; b <= JK_ECANCELED; b++)
			assert_string_not_equal(jk_strerror((enum jk_err)a), jk_strerror((enum jk_err)b));
	}
	assert_string_equal(jk_strerror((enum jk_err)99), "unknown error");
}

/* ---- jobs ---- */

/* GET /api/json?tree=jobs[...,jobs[...]] on a master with folders and a few kinds of jobs. */
static const char jobs_json[] =
    "{\"_class\":\"hudson.model.Hudson\",\"jobs\":["
    "{\"_class\":\"hudson.model.FreeStyleProject\",\"name\":\"build-a\",\"fullName\":\"build-a\","
    "\"url\":\"http://jenkins:8080/job/build-a/\",\"buildable\":true,\"disabled\":false,"
    "\"labelExpression\":\"linux && x86\",\"concurrentBuild\":true,"
    "\"property\":[{\"_class\":\"jenkins.model.BuildDiscarderProperty\"},"
    "{\"_class\":\"hudson.model.ParametersDefinitionProperty\",\"parameterDefinitions\":["
    "{\"_class\":\"org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition\",\"name\":\"NODE\",\"type\":\"NodeParameterDefinition\"},"
    "{\"_class\":\"org.jvnet.jenkins.plugins.nodelabelparameter.LabelParameterDefinition\",\"name\":\"LABEL\",\"type\":\"LabelParameterDefinition\"},"
    "{\"_class\":\"hudson.model.StringParameterDefinition\",\"name\":\"FOO\",\"type\":\"StringParameterDefinition\"}]}]},"
    "{\"_class\":\"com.cloudbees.hudson.plugins.folder.Folder\",\"name\":\"folder1\",\"fullName\":\"folder1\","
    "\"url\":\"http://jenkins:8080/job/folder1/\",\"jobs\":["
    "{\"_class\":\"hudson.model.FreeStyleProject\",\"name\":\"job a\",\"fullName\":\"folder1/job a\","
    "\"url\":\"http://jenkins:8080/job/folder1/job/job%20a/\",\"buildable\":true,\"disabled\":false,"
    "\"labelExpression\":null,\"concurrentBuild\":false,\"property\":[]},"
    "{\"_class\":\"com.cloudbees.hudson.plugins.folder.Folder\",\"name\":\"sub\",\"fullName\":\"folder1/sub\","
    "\"url\":\"http://jenkins:8080/job/folder1/job/sub/\",\"jobs\":["
    "{\"_class\":\"org.jenkinsci.plugins.workflow.job.WorkflowJob\",\"name\":\"pipe\",\"fullName\":\"folder1/sub/pipe\","
    "\"url\":\"http://jenkins:8080/job/folder1/job/sub/job/pipe/\",\"buildable\":true,\"disabled\":false,"
    "\"concurrentBuild\":true,\"property\":[{\"_class\":\"org.jenkinsci.plugins.workflow.job.properties.DisableConcurrentBuildsJobProperty\"},"
    "{\"_class\":\"hudson.model.ParametersDefinitionProperty\",\"parameterDefinitions\":["
    "{\"_class\":\"org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition\",\"name\":\"NODE\"}]}]}]},"
    "{\"_class\":\"com.cloudbees.hudson.plugins.folder.Folder\",\"name\":\"empty\",\"fullName\":\"folder1/empty\","
    "\"url\":\"http://jenkins:8080/job/folder1/job/empty/\",\"jobs\":[]},"
    /* A folder at the tree's depth limit: no "jobs" member, only its _class says so. */
    "{\"_class\":\"com.cloudbees.hudson.plugins.folder.Folder\",\"name\":\"deep\",\"fullName\":\"folder1/deep\","
    "\"url\":\"http://jenkins:8080/job/folder1/job/deep/\"}]},"
    "{\"_class\":\"hudson.model.FreeStyleProject\",\"name\":\"old\",\"fullName\":\"old\","
    "\"url\":\"http://jenkins:8080/job/old/\",\"buildable\":false,\"disabled\":true,"
    "\"labelExpression\":\"\",\"concurrentBuild\":false,\"property\":[]},"
    /* Unknown extra fields, nulls where Jenkins writes them. */
    "{\"_class\":\"hudson.matrix.MatrixProject\",\"name\":\"matrix\",\"fullName\":\"matrix\","
    "\"url\":\"http://jenkins:8080/job/matrix/\",\"color\":\"blue_anime\",\"buildable\":true,"
    "\"disabled\":false,\"labelExpression\":null,\"concurrentBuild\":false,"
    "\"property\":null,\"lastBuild\":null,\"extra\":{\"x\":[1,2.5,null]}}"
    "]}";

static const struct jk_job *
find_job(const struct jk_job_list *l, const char *full)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (strcmp(l->jobs[i].full_name, full) == 0)
			return &l->jobs[i];
	fail_msg("job '%s' not listed", full);
	return NULL;
}

static void
test_parse_jobs(void **state)
{
	struct jk_job_list l;
	const struct jk_job *j;

	(void)state;
	assert_int_equal(jkmodel_parse_jobs(jobs_json, &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 5);	/* folders are not listed */
	/* Document order, depth first. */
	assert_string_equal(l.jobs[0].full_name, "build-a");
	assert_string_equal(l.jobs[1].full_name, "folder1/job a");
	assert_string_equal(l.jobs[2].full_name, "folder1/sub/pipe");
	assert_string_equal(l.jobs[3].full_name, "old");
	assert_string_equal(l.jobs[4].full_name, "matrix");

	j = find_job(&l, "build-a");
	assert_string_equal(j->name, "build-a");
	assert_string_equal(j->url, "http://jenkins:8080/job/build-a/");
	assert_string_equal(j->label_expr, "linux && x86");
	assert_true(j->buildable);
	assert_false(j->disabled);
	assert_true(j->concurrent);
	assert_int_equal(j->nparams, 3);
	assert_string_equal(j->params[0].name, "NODE");
	assert_string_equal(j->params[0].type, "NodeParameterDefinition");
	assert_int_equal(j->params[0].kind, JK_PARAM_NODE);
	assert_string_equal(j->params[1].name, "LABEL");
	assert_int_equal(j->params[1].kind, JK_PARAM_LABEL);
	assert_string_equal(j->params[2].name, "FOO");
	assert_string_equal(j->params[2].type, "StringParameterDefinition");
	assert_int_equal(j->params[2].kind, JK_PARAM_OTHER);

	j = find_job(&l, "folder1/job a");
	assert_string_equal(j->name, "job a");
	assert_null(j->label_expr);
	assert_false(j->concurrent);
	assert_int_equal(j->nparams, 0);

	/* Pipeline: no labelExpression at all; type derived from _class. */
	j = find_job(&l, "folder1/sub/pipe");
	assert_string_equal(j->name, "pipe");
	assert_null(j->label_expr);
	assert_true(j->concurrent);
	assert_int_equal(j->nparams, 1);
	assert_string_equal(j->params[0].type, "NodeParameterDefinition");
	assert_int_equal(j->params[0].kind, JK_PARAM_NODE);
	assert_true(j->pipeline);
	assert_false(find_job(&l, "build-a")->pipeline);

	j = find_job(&l, "old");
	assert_false(j->buildable);
	assert_true(j->disabled);
	assert_null(j->label_expr);	/* "" is no restriction */

	j = find_job(&l, "matrix");
	assert_true(j->buildable);
	assert_int_equal(j->nparams, 0);
	jk_job_list_free(&l);
	assert_null(l.jobs);
	assert_int_equal(l.n, 0);
	jk_job_list_free(&l);		/* twice is harmless */
	jk_job_list_free(NULL);
}

static void
test_parse_jobs_no_fullname(void **state)
{
	/* Masters without fullName: computed from the folder path. */
	static const char json[] =
	    "{\"jobs\":[{\"name\":\"f\",\"jobs\":[{\"name\":\"g\",\"jobs\":[{\"name\":\"j 1\"}]},"
	    "{\"name\":\"k\",\"url\":null,\"buildable\":true}]},{\"name\":\"top\"}]}";
	struct jk_job_list l;

	(void)state;
	assert_int_equal(jkmodel_parse_jobs(json, &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.jobs[0].full_name, "f/g/j 1");
	assert_string_equal(l.jobs[0].name, "j 1");
	assert_string_equal(l.jobs[0].url, "");
	assert_false(l.jobs[0].buildable);
	assert_string_equal(l.jobs[1].full_name, "f/k");
	assert_true(l.jobs[1].buildable);
	assert_string_equal(l.jobs[2].full_name, "top");
	jk_job_list_free(&l);

	assert_int_equal(jkmodel_parse_jobs("{\"_class\":\"hudson.model.Hudson\",\"jobs\":[]}", &l,
	    err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 0);
	jk_job_list_free(&l);
}

static void
expect_jobs_error(const char *json, const char *frag)
{
	struct jk_job_list l;

	if (jkmodel_parse_jobs(json, &l, err, sizeof(err)) != JK_EPROTO)
		fail_msg("accepted: %s", json ? json : "(null)");
	expect_contains(err, frag);
	assert_null(l.jobs);
	assert_int_equal(l.n, 0);
}

static void
test_parse_jobs_malformed(void **state)
{
	(void)state;
	expect_jobs_error(NULL, "malformed JSON");
	expect_jobs_error("", "malformed JSON");
	expect_jobs_error("<html><body>Jenkins</body></html>", "malformed JSON");
	expect_jobs_error("{\"jobs\":[", "malformed JSON");
	expect_jobs_error("[]", "expected an object");
	expect_jobs_error("{}", "jobs: expected array, got nothing");
	expect_jobs_error("{\"jobs\":{}}", "jobs: expected array, got object");
	expect_jobs_error("{\"jobs\":[1]}", "jobs[0]: expected object, got integer");
	expect_jobs_error("{\"jobs\":[{\"name\":5}]}", "jobs[0].name: expected string, got integer");
	expect_jobs_error("{\"jobs\":[{\"url\":\"x\"}]}", "jobs[0].name: expected string, got nothing");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"},{\"name\":\"b\",\"buildable\":\"yes\"}]}",
	    "jobs[1].buildable: expected boolean, got string");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"disabled\":0}]}", "jobs[0].disabled");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"concurrentBuild\":[]}]}", "jobs[0].concurrentBuild");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"labelExpression\":5}]}",
	    "jobs[0].labelExpression: expected string, got integer");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"fullName\":true}]}", "jobs[0].fullName");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"url\":1}]}", "jobs[0].url");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"property\":{}}]}",
	    "jobs[0].property: expected array, got object");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"property\":[\"x\"]}]}", "jobs[0].property[0]");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"property\":[{\"parameterDefinitions\":{}}]}]}",
	    "jobs[0].property[0].parameterDefinitions: expected array");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"property\":[{\"parameterDefinitions\":"
	    "[{\"name\":\"A\"},{\"type\":\"StringParameterDefinition\"}]}]}]}",
	    "jobs[0].property[0].parameterDefinitions[1].name: expected string, got nothing");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"property\":[{\"parameterDefinitions\":"
	    "[{\"name\":\"A\",\"type\":7}]}]}]}", "parameterDefinitions[0].type");
	expect_jobs_error("{\"jobs\":[{\"name\":\"f\",\"jobs\":\"x\"}]}", "jobs[0].jobs: expected array");
	expect_jobs_error("{\"jobs\":[{\"name\":\"f\",\"jobs\":[{\"name\":\"ok\"},{\"name\":null}]}]}",
	    "jobs[0].jobs[1].name: expected string, got null");
}

/*
 * The root object is scanned, not parsed whole (jkmodel_parse_jobs): members in
 * any order, whitespace anywhere, and every break of the grammar between
 * the values is an error naming the byte.
 */
static void
test_parse_jobs_root(void **state)
{
	struct jk_job_list l;

	(void)state;
	assert_int_equal(jkmodel_parse_jobs(" \n{ \"_class\" : \"hudson.model.Hudson\" ,\r\n\t\"jobs\" :"
	    " [ { \"name\" : \"a\" } , {\"name\":\"b]}\",\"labelExpression\":\"x\"} ] , \"views\":"
	    " [{\"name\":\"all\",\"jobs\":[{\"name\":\"not-a-job\"}]}], \"n\": 12.5e3, \"t\": true,"
	    " \"z\": null } \n", &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 2);
	assert_string_equal(l.jobs[0].full_name, "a");
	assert_string_equal(l.jobs[1].full_name, "b]}");
	assert_string_equal(l.jobs[1].label_expr, "x");
	jk_job_list_free(&l);

	assert_int_equal(jkmodel_parse_jobs("{\"jobs\":[]}", &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 0);
	/* A number right before '}', escapes that look like the end of a string. */
	assert_int_equal(jkmodel_parse_jobs("{\"s\":\"a\\\"}\\\\\",\"jobs\":[{\"name\":\"x\\\"]\"}],\"n\":1}",
	    &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.jobs[0].name, "x\"]");
	jk_job_list_free(&l);

	expect_jobs_error("{\"jobs\":[]} x", "expected the end of the document at byte 12");
	expect_jobs_error("{\"jobs\":[]}{}", "expected the end of the document");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"}{\"name\":\"b\"}]}", "expected ',' or ']' at byte 21");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"},]}", "malformed JSON");
	expect_jobs_error("{\"jobs\":[] \"x\":1}", "expected ',' or '}' at byte 11");
	expect_jobs_error("{\"jobs\" []}", "expected ':' at byte 8");
	expect_jobs_error("{5:[]}", "expected a member name at byte 1");
	expect_jobs_error("{jobs:[]}", "malformed JSON");
	expect_jobs_error("{\"jobs\":[],}", "malformed JSON");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"}],\"jobs\":[]}", "\"jobs\" given twice");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"}", "expected ',' or ']' at byte 21");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"}],", "malformed JSON");
	expect_jobs_error("{\"x\":[1,{]}", "malformed JSON");
	expect_jobs_error("{\"jobs\":null}", "jobs: expected array, got null");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\",\"name\":\"b\"", "malformed JSON");
}

static void
expect_same_jobs(const struct jk_job_list *a, const struct jk_job_list *b)
{
	size_t i, k;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const struct jk_job *x = &a->jobs[i], *y = &b->jobs[i];

		assert_string_equal(x->full_name, y->full_name);
		assert_string_equal(x->name, y->name);
		expect_str(x->url ? strdup(x->url) : NULL, y->url);
		expect_str(x->label_expr ? strdup(x->label_expr) : NULL, y->label_expr);
		assert_int_equal(x->buildable, y->buildable);
		assert_int_equal(x->disabled, y->disabled);
		assert_int_equal(x->concurrent, y->concurrent);
		assert_int_equal(x->nparams, y->nparams);
		for (k = 0; k < x->nparams; k++) {
			assert_string_equal(x->params[k].name, y->params[k].name);
			assert_string_equal(x->params[k].type, y->params[k].type);
			assert_int_equal(x->params[k].kind, y->params[k].kind);
		}
	}
}

/*
 * Last, since the hooks stay installed: with the daemon's arena the job
 * list comes out the same, errors included, and the arena is reused.
 */
/* A folder of n jobs: one entry of the root's "jobs", megabytes as a tree. */
static char *
big_folder_json(int n)
{
	size_t cap = (size_t)n * 200 + 200, len;
	char *s = malloc(cap);
	int i;

	assert_non_null(s);
	len = (size_t)snprintf(s, cap, "{\"jobs\":[{\"_class\":\"com.cloudbees.hudson.plugins.folder.Folder\","
	    "\"name\":\"big\",\"jobs\":[");
	for (i = 0; i < n; i++)
		len += (size_t)snprintf(s + len, cap - len, "%s{\"name\":\"j%d\",\"labelExpression\":\"linux && x%d\","
		    "\"property\":[{\"parameterDefinitions\":[{\"name\":\"P\",\"type\":\"StringParameterDefinition\"}]}]}",
		    i ? "," : "", i, i % 7);
	snprintf(s + len, cap - len, "]},{\"name\":\"after\"}]}");
	return s;
}

/*
 * Last, since the hooks stay installed: with the daemon's arena the job
 * list comes out the same, errors included, for small entries (one chunk,
 * kept) and a folder of megabytes (many chunks, unmapped).
 */
static void
test_parse_jobs_arena(void **state)
{
	struct jk_job_list plain, big_plain, arena;
	char *big = big_folder_json(20000);
	json_t *o;
	int round;

	(void)state;
	assert_int_equal(jkmodel_parse_jobs(jobs_json, &plain, err, sizeof(err)), JK_OK);
	assert_int_equal(jkmodel_parse_jobs(big, &big_plain, err, sizeof(err)), JK_OK);
	assert_int_equal(big_plain.n, 20001);
	assert_false(jarena_begin());	/* not installed yet */
	jarena_install();
	assert_true(jarena_begin());
	jarena_drop();
	for (round = 0; round < 3; round++) {
		assert_int_equal(jkmodel_parse_jobs(jobs_json, &arena, err, sizeof(err)), JK_OK);
		expect_same_jobs(&plain, &arena);
		jk_job_list_free(&arena);
		assert_int_equal(jkmodel_parse_jobs(big, &arena, err, sizeof(err)), JK_OK);
		expect_same_jobs(&big_plain, &arena);
		jk_job_list_free(&arena);
	}
	jk_job_list_free(&plain);
	jk_job_list_free(&big_plain);
	free(big);
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"},{\"name\":\"f\",\"jobs\":[{\"name\":null}]}]}",
	    "jobs[1].jobs[0].name: expected string, got null");
	expect_jobs_error("{\"jobs\":[{\"name\":\"a\"},{\"name\":", "malformed JSON");
	/* jansson outside jkmodel_parse_jobs is untouched by the hooks. */
	o = json_pack("{s:s}", "k", "v");
	assert_non_null(o);
	json_decref(o);
	jarena_free();
}

/* ---- nodes ---- */

/* GET /computer/api/json?tree=computer[...] */
static const char nodes_json[] =
    "{\"_class\":\"hudson.model.ComputerSet\",\"busyExecutors\":1,\"computer\":["
    "{\"_class\":\"hudson.model.Hudson$MasterComputer\",\"displayName\":\"Built-In Node\","
    "\"assignedLabels\":[{\"name\":\"built-in\"}],\"numExecutors\":0,\"offline\":false,"
    "\"temporarilyOffline\":false,\"offlineCauseReason\":\"\",\"executors\":[]},"
    "{\"_class\":\"hudson.slaves.SlaveComputer\",\"displayName\":\"node1\","
    "\"assignedLabels\":[{\"name\":\"linux\"},{\"name\":\"node1\"},{\"name\":\"x86\"}],"
    "\"numExecutors\":2,\"offline\":false,\"temporarilyOffline\":false,\"offlineCauseReason\":\"\","
    "\"executors\":[{\"idle\":true},{\"idle\":false}]},"
    "{\"_class\":\"hudson.slaves.SlaveComputer\",\"displayName\":\"node2\","
    "\"assignedLabels\":[{\"name\":\"node2\"}],\"numExecutors\":3,\"offline\":true,"
    "\"temporarilyOffline\":true,\"offlineCause\":{\"_class\":\"hudson.slaves.OfflineCause$UserCause\"},"
    "\"offlineCauseReason\":\"maintenance window\",\"executors\":[{\"idle\":true},{\"idle\":true},{\"idle\":true}]},"
    "{\"_class\":\"hudson.slaves.SlaveComputer\",\"displayName\":\"node3\","
    "\"assignedLabels\":[{\"name\":\"node3\"}],\"numExecutors\":1,\"offline\":true,"
    "\"temporarilyOffline\":false,\"offlineCause\":null,\"offlineCauseReason\":null,"
    "\"executors\":[{}],\"monitorData\":{\"hudson.node_monitors.ArchitectureMonitor\":null}}"
    "],\"displayName\":\"Nodes\",\"totalExecutors\":6}";

static void
test_parse_nodes(void **state)
{
	struct jk_node_list l;
	const struct jk_node *n;

	(void)state;
	assert_int_equal(jkmodel_parse_nodes(nodes_json, &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 4);

	n = &l.nodes[0];
	assert_string_equal(n->name, "built-in");
	assert_int_equal(n->nlabels, 1);
	assert_string_equal(n->labels[0], "built-in");
	assert_int_equal(n->executors, 0);
	assert_int_equal(n->idle_executors, 0);
	assert_false(n->offline);
	assert_false(n->temp_offline);
	assert_string_equal(n->offline_reason, "");

	n = &l.nodes[1];
	assert_string_equal(n->name, "node1");
	assert_int_equal(n->nlabels, 3);
	assert_string_equal(n->labels[0], "linux");
	assert_string_equal(n->labels[1], "node1");
	assert_string_equal(n->labels[2], "x86");
	assert_int_equal(n->executors, 2);
	assert_int_equal(n->idle_executors, 1);
	assert_false(n->offline);

	n = &l.nodes[2];
	assert_string_equal(n->name, "node2");
	assert_int_equal(n->executors, 3);
	assert_int_equal(n->idle_executors, 3);
	assert_true(n->offline);
	assert_true(n->temp_offline);
	assert_string_equal(n->offline_reason, "maintenance window");

	/* Disconnected, not marked offline; executors without fields are not idle. */
	n = &l.nodes[3];
	assert_string_equal(n->name, "node3");
	assert_true(n->offline);
	assert_false(n->temp_offline);
	assert_string_equal(n->offline_reason, "");
	assert_int_equal(n->idle_executors, 0);
	jk_node_list_free(&l);
	assert_null(l.nodes);
	jk_node_list_free(NULL);

	assert_int_equal(jkmodel_parse_nodes("{\"computer\":[]}", &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 0);
	jk_node_list_free(&l);
}

static void
test_parse_node(void **state)
{
	/* GET /computer/(built-in)/api/json on a pre-2.307 master: only _class tells. */
	static const char old_master[] =
	    "{\"_class\":\"hudson.model.Hudson$MasterComputer\",\"displayName\":\"master\","
	    "\"assignedLabels\":[{\"name\":\"master\"}],\"numExecutors\":2,\"offline\":false,"
	    "\"temporarilyOffline\":false,\"executors\":[{\"idle\":true},{\"idle\":true}]}";
	static const char agent[] =
	    "{\"_class\":\"hudson.slaves.SlaveComputer\",\"actions\":[{}],\"displayName\":\"my node\","
	    "\"assignedLabels\":[{\"name\":\"my node\"}],\"numExecutors\":1,\"offline\":true,"
	    "\"temporarilyOffline\":true,\"offlineCauseReason\":\"back at 5\",\"executors\":[{\"idle\":false}]}";
	static const char oneoff[] =
	    "{\"_class\":\"hudson.slaves.SlaveComputer\",\"displayName\":\"n1\","
	    "\"assignedLabels\":[{\"name\":\"n1\"}],\"numExecutors\":1,\"offline\":false,"
	    "\"temporarilyOffline\":false,\"executors\":[{\"idle\":true,\"currentExecutable\":null}],"
	    "\"oneOffExecutors\":[{\"idle\":false,\"currentExecutable\":null},"
	    "{\"idle\":false,\"currentExecutable\":{\"url\":\"http://j/job/p/1/\"}}]}";
	struct jk_node n;

	(void)state;
	/*
	 * Issue 17: its name is its self label, "master" before 2.307: the
	 * name the NodeLabel parameter takes (Jenkins.getSelfLabel).
	 */
	assert_int_equal(jkmodel_parse_node(old_master, &n, err, sizeof(err)), JK_OK);
	assert_string_equal(n.name, "master");
	assert_string_equal(n.labels[0], "master");
	assert_int_equal(n.executors, 2);
	assert_int_equal(n.idle_executors, 2);
	assert_string_equal(n.offline_reason, "");	/* absent */
	jk_node_free(&n);

	assert_int_equal(jkmodel_parse_node(agent, &n, err, sizeof(err)), JK_OK);
	assert_string_equal(n.name, "my node");
	assert_true(n.temp_offline);
	assert_string_equal(n.offline_reason, "back at 5");
	assert_int_equal(n.idle_executors, 0);
	jk_node_free(&n);
	jk_node_free(&n);
	jk_node_free(NULL);

	/*
	 * A Pipeline run's OneOffExecutor in Executor.run's start window is
	 * starting; one running a WorkflowRun holds none of the node's
	 * executors and is not among its running builds.
	 */
	assert_int_equal(jkmodel_parse_node(oneoff, &n, err, sizeof(err)), JK_OK);
	assert_int_equal(n.starting, 1);
	assert_int_equal(n.idle_executors, 1);
	assert_int_equal(n.nrunning, 0);
	jk_node_free(&n);
}

/*
 * Issue 18: the coordinator's node read (jk_nodes_list's tree=) gives each
 * busy executor's build: url, number, timestamp, estimatedDuration and the
 * parameters, which say whether it came through Gearman (a GEARMAN_UNIQUE
 * with a value; a build from the UI of a job that declares it has it empty).
 * A one-off executor's run (a Pipeline's WorkflowRun) is a run too; the
 * placeholder a node() step holds has no actions.
 */
static const char runs_json[] =
    "{\"computer\":[{\"_class\":\"hudson.slaves.SlaveComputer\",\"displayName\":\"n1\","
    "\"assignedLabels\":[{\"name\":\"n1\"}],\"numExecutors\":3,\"offline\":false,"
    "\"temporarilyOffline\":false,\"executors\":["
    "{\"idle\":false,\"currentExecutable\":{\"_class\":\"hudson.model.FreeStyleBuild\","
    "\"actions\":[{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":["
    "{\"_class\":\"hudson.model.StringParameterValue\",\"name\":\"GEARMAN_UNIQUE\",\"value\":\"u1\"}]},"
    "{\"_class\":\"hudson.model.CauseAction\"}],"
    "\"estimatedDuration\":12000,\"number\":7,\"timestamp\":1764940000123,"
    "\"url\":\"http://j:8080/job/team%20x/job/deploy%20(prod)+x,y=z%7E'q'/7/\"}},"
    "{\"idle\":false,\"currentExecutable\":{\"_class\":\"hudson.model.FreeStyleBuild\","
    "\"actions\":[{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":["
    "{\"_class\":\"hudson.model.StringParameterValue\",\"name\":\"GEARMAN_UNIQUE\",\"value\":\"\"}]}],"
    "\"estimatedDuration\":-1,\"number\":3,\"timestamp\":1764940000999,\"url\":\"http://j:8080/job/unit/3/\"}},"
    "{\"idle\":false,\"currentExecutable\":{\"_class\":\"org.jenkinsci.plugins.workflow.support.steps."
    "ExecutorStepExecution$PlaceholderTask$PlaceholderExecutable\",\"estimatedDuration\":5,"
    "\"number\":2,\"timestamp\":1764940000500,\"url\":\"http://j:8080/job/pipe/2/\"}},"
    "{\"idle\":true,\"currentExecutable\":null}],"
    "\"oneOffExecutors\":[{\"idle\":false,\"currentExecutable\":{"
    "\"_class\":\"org.jenkinsci.plugins.workflow.job.WorkflowRun\",\"actions\":[{"
    "\"_class\":\"hudson.model.ParametersAction\",\"parameters\":[{\"name\":\"NODE\",\"value\":\"n1\"},"
    "{\"name\":\"GEARMAN_UNIQUE\",\"value\":\"p2\"}]}],\"estimatedDuration\":5,\"number\":2,"
    "\"timestamp\":1764940000400,\"url\":\"http://j:8080/job/pipe/2/\"}},"
    "{\"idle\":false,\"currentExecutable\":null}]}]}";

static void
test_parse_node_runs(void **state)
{
	/* Display-only fields of the wrong type or out of range are not said; the node list stands. */
	static const char odd[] =
	    "{\"displayName\":\"n\",\"numExecutors\":1,\"offline\":false,\"temporarilyOffline\":false,"
	    "\"executors\":[{\"idle\":false,\"currentExecutable\":{\"number\":\"9\",\"timestamp\":-5,"
	    "\"estimatedDuration\":-7,\"actions\":{\"x\":1},\"url\":\"http://j/job/a/job/b/41/\"}},"
	    "{\"idle\":false,\"currentExecutable\":{\"number\":4,\"actions\":[1,{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":"
	    "[2,{\"name\":\"GEARMAN_UNIQUE\",\"value\":7}]}],\"url\":\"http://j/view/all/\"}}]}";
	struct jk_node_list l;
	struct jk_node n;
	const struct jk_run *r;

	(void)state;
	assert_int_equal(jkmodel_parse_nodes(runs_json, &l, err, sizeof(err)), JK_OK);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.nodes[0].busy, 3);
	assert_int_equal(l.nodes[0].idle_executors, 1);
	assert_int_equal(l.nodes[0].starting, 1);    /* the one-off executor without a run yet */
	assert_int_equal(l.nodes[0].nrunning, 3);    /* regular executors only, as before */
	assert_int_equal(l.nodes[0].nruns, 4);
	r = &l.nodes[0].runs[0];
	assert_string_equal(r->url, "http://j:8080/job/team%20x/job/deploy%20(prod)+x,y=z%7E'q'/7/");
	assert_string_equal(r->job, "team x/deploy (prod)+x,y=z~'q'");
	assert_int_equal(r->number, 7);
	assert_true(r->timestamp_ms == 1764940000123LL);
	assert_int_equal(r->estimated_ms, 12000);
	assert_true(r->gearman);
	assert_false(r->oneoff);
	r = &l.nodes[0].runs[1];
	assert_string_equal(r->job, "unit");
	assert_int_equal(r->estimated_ms, -1);
	assert_false(r->gearman);                    /* declared, empty: not through Gearman */
	r = &l.nodes[0].runs[2];
	assert_string_equal(r->job, "pipe");
	assert_int_equal(r->number, 2);
	assert_false(r->gearman);                    /* a placeholder has no actions */
	assert_false(r->oneoff);
	r = &l.nodes[0].runs[3];
	assert_string_equal(r->job, "pipe");
	assert_true(r->gearman);
	assert_true(r->oneoff);
	assert_true(r->timestamp_ms == 1764940000400LL);
	jk_node_list_free(&l);

	assert_int_equal(jkmodel_parse_node(odd, &n, err, sizeof(err)), JK_OK);
	assert_int_equal(n.nruns, 2);
	assert_string_equal(n.runs[0].job, "a/b");
	assert_int_equal(n.runs[0].number, 41);      /* from the url */
	assert_true(n.runs[0].timestamp_ms == 0);
	assert_int_equal(n.runs[0].estimated_ms, -1);
	assert_false(n.runs[0].gearman);
	assert_null(n.runs[1].job);                  /* no job's build */
	assert_int_equal(n.runs[1].number, 4);
	assert_false(n.runs[1].gearman);
	jk_node_free(&n);
}

static void
test_build_job_from_url(void **state)
{
	int number = -1;

	(void)state;
	expect_str(jkpath_build_job("http://j:8080/job/a/12/", &number), "a");
	assert_int_equal(number, 12);
	expect_str(jkpath_build_job("https://h/jenkins/job/f/job/g%20h/job/x/3", NULL), "f/g h/x");
	expect_str(jkpath_build_job("job/deploy%20(prod)+x,y=z%7e'q'/1/", &number), "deploy (prod)+x,y=z~'q'");
	/* A job named "job", and a UTF-8 name (rawEncode writes bytes >= 0x7B as %XX). */
	expect_str(jkpath_build_job("http://j/job/job/job/%C3%BC/5/", &number), "job/\xc3\xbc");
	assert_int_equal(number, 5);
	/* A matrix configuration: an item below the job, without "job/". */
	expect_str(jkpath_build_job("http://j/job/m/label=x/9/", &number), "m/label=x");
	assert_int_equal(number, 9);
	expect_str(jkpath_build_job("http://j/job/a/12/?x=1#y", NULL), "a");
	/* Not a build's URL, or names Jenkins cannot have. */
	expect_str(jkpath_build_job("http://j/job/a/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job/a/lastBuild/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job/a/0/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job/a/99999999999/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job//3/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job/a%2Fb/3/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job/a%00b/3/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job/%FF/3/", NULL), NULL);
	expect_str(jkpath_build_job("http://j/job/%C0%AF/3/", NULL), NULL);   /* overlong '/' */
	expect_str(jkpath_build_job("http://j/job/%ED%A0%80/3/", NULL), NULL); /* a surrogate */
	expect_str(jkpath_build_job("http://j/computer/n1/", NULL), NULL);
	expect_str(jkpath_build_job("", NULL), NULL);
	expect_str(jkpath_build_job(NULL, NULL), NULL);
}

static void
expect_node_error(const char *json, const char *frag)
{
	struct jk_node n;

	if (jkmodel_parse_node(json, &n, err, sizeof(err)) != JK_EPROTO)
		fail_msg("accepted: %s", json);
	expect_contains(err, frag);
	assert_null(n.name);
	assert_null(n.labels);
}

static void
expect_nodes_error(const char *json, const char *frag)
{
	struct jk_node_list l;

	if (jkmodel_parse_nodes(json, &l, err, sizeof(err)) != JK_EPROTO)
		fail_msg("accepted: %s", json);
	expect_contains(err, frag);
	assert_null(l.nodes);
	assert_int_equal(l.n, 0);
}

#define NODE_OK "\"displayName\":\"n\",\"numExecutors\":1,\"offline\":false,\"temporarilyOffline\":false"

static void
test_parse_nodes_malformed(void **state)
{
	(void)state;
	expect_node_error("{\"displayName\":\"n\",\"assignedLabels\":[],\"numExecutors\":1,"
	    "\"offline\":false,\"temporarilyOffline\":false,\"executors\":[],"
	    "\"oneOffExecutors\":[1]}", "oneOffExecutors[0]");
	expect_nodes_error("", "malformed JSON");
	expect_nodes_error("{\"computer\":", "malformed JSON");
	expect_nodes_error("{}", "computer: expected array, got nothing");
	expect_nodes_error("{\"computer\":{}}", "computer: expected array, got object");
	expect_nodes_error("{\"computer\":[{" NODE_OK "},7]}", "computer[1]: expected object");
	expect_nodes_error("{\"computer\":[{" NODE_OK "},{\"numExecutors\":1}]}",
	    "computer[1].displayName: expected string, got nothing");

	expect_node_error("null", "malformed JSON");
	expect_node_error("[1]", "expected an object, got array");
	expect_node_error("{\"displayName\":3}", "displayName: expected string, got integer");
	expect_node_error("{\"displayName\":\"n\",\"numExecutors\":\"2\",\"offline\":false,"
	    "\"temporarilyOffline\":false}", "numExecutors: expected integer, got string");
	expect_node_error("{\"displayName\":\"n\",\"numExecutors\":1.5,\"offline\":false,"
	    "\"temporarilyOffline\":false}", "numExecutors: expected integer, got real");
	expect_node_error("{\"displayName\":\"n\",\"numExecutors\":-1,\"offline\":false,"
	    "\"temporarilyOffline\":false}", "numExecutors: -1 out of range");
	expect_node_error("{\"displayName\":\"n\",\"numExecutors\":1,\"temporarilyOffline\":false}",
	    "offline: expected boolean, got nothing");
	expect_node_error("{\"displayName\":\"n\",\"numExecutors\":1,\"offline\":\"no\","
	    "\"temporarilyOffline\":false}", "offline: expected boolean, got string");
	expect_node_error("{\"displayName\":\"n\",\"numExecutors\":1,\"offline\":false}",
	    "temporarilyOffline: expected boolean, got nothing");
	expect_node_error("{" NODE_OK ",\"offlineCauseReason\":{}}", "offlineCauseReason");
	expect_node_error("{" NODE_OK ",\"assignedLabels\":\"linux\"}",
	    "assignedLabels: expected array, got string");
	expect_node_error("{" NODE_OK ",\"assignedLabels\":[{\"name\":\"a\"},\"b\"]}",
	    "assignedLabels[1]: expected object, got string");
	expect_node_error("{" NODE_OK ",\"assignedLabels\":[{\"name\":1}]}",
	    "assignedLabels[0].name: expected string, got integer");
	expect_node_error("{" NODE_OK ",\"executors\":{}}", "executors: expected array");
	expect_node_error("{" NODE_OK ",\"executors\":[{\"idle\":true},{\"idle\":\"yes\"}]}",
	    "executors[1].idle: expected boolean, got string");
	expect_node_error("{" NODE_OK ",\"executors\":[null]}", "executors[0]: expected object, got null");
}

/* ---- queue items ---- */

static const char queue_waiting[] =
    "{\"_class\":\"hudson.model.Queue$WaitingItem\","
    "\"actions\":[{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":[{\"_class\":"
    "\"org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterValue\",\"name\":\"NODE\","
    "\"label\":\"agent1\",\"value\":\"agent1\"}]},{\"_class\":\"hudson.model.CauseAction\","
    "\"causes\":[{\"_class\":\"hudson.model.Cause$UserIdCause\",\"shortDescription\":"
    "\"Started by user Alice\",\"userId\":\"alice\",\"userName\":\"Alice\"}]}],"
    "\"blocked\":false,\"buildable\":false,\"id\":42,\"inQueueSince\":1767000000000,"
    "\"params\":\"\\n[NodeParameterValue: NODE=agent1]\",\"stuck\":false,"
    "\"task\":{\"_class\":\"hudson.model.FreeStyleProject\",\"name\":\"b\","
    "\"url\":\"http://jenkins:8080/job/a/job/b/\",\"color\":\"blue\"},"
    "\"url\":\"queue/item/42/\",\"why\":\"In the quiet period. Expires in 4.9 sec\","
    "\"timestamp\":1767000005000}";

static void
test_parse_queue_items(void **state)
{
	static const char buildable_stuck[] =
	    "{\"_class\":\"hudson.model.Queue$BuildableItem\",\"blocked\":false,\"buildable\":true,"
	    "\"id\":43,\"stuck\":true,\"pending\":false,"
	    "\"why\":\"There are no nodes with the label \xe2\x80\x98nosuch\xe2\x80\x99\"}";
	static const char blocked[] =
	    "{\"_class\":\"hudson.model.Queue$BlockedItem\",\"blocked\":true,\"buildable\":false,"
	    "\"id\":44,\"stuck\":false,\"why\":\"Build #3 is already in progress (ETA: 10 sec)\"}";
	static const char left_started[] =
	    "{\"_class\":\"hudson.model.Queue$LeftItem\",\"blocked\":false,\"buildable\":false,"
	    "\"id\":45,\"stuck\":false,\"why\":null,\"cancelled\":false,"
	    "\"executable\":{\"_class\":\"hudson.model.FreeStyleBuild\",\"number\":17,"
	    "\"url\":\"http://jenkins:8080/job/a/job/b/17/\"}}";
	static const char left_cancelled[] =
	    "{\"_class\":\"hudson.model.Queue$LeftItem\",\"blocked\":false,\"buildable\":false,"
	    "\"id\":46,\"stuck\":false,\"why\":null,\"cancelled\":true,\"executable\":null}";
	static const char left_not_yet[] =
	    "{\"_class\":\"hudson.model.Queue$LeftItem\",\"blocked\":false,\"buildable\":false,"
	    "\"id\":47,\"stuck\":false,\"why\":null,\"cancelled\":false,\"executable\":null}";
	struct jk_queue_item q;

	(void)state;
	assert_int_equal(jkmodel_parse_queue_item(queue_waiting, &q, err, sizeof(err)), JK_OK);
	assert_int_equal(q.id, 42);
	assert_int_equal(q.state, JK_QUEUE_WAITING);
	assert_string_equal(q.why, "In the quiet period. Expires in 4.9 sec");
	assert_false(q.stuck);
	assert_null(q.build_url);
	assert_string_equal(q.pin.name, "NODE");
	assert_string_equal(q.pin.label, "agent1");
	/* What Jenkins kept of the trigger's parameters: the names in the ParametersAction (issue 17). */
	assert_true(q.pin.kept_known);
	assert_int_equal(q.pin.nkept, 1);
	assert_string_equal(q.pin.kept[0], "NODE");
	jk_queue_item_free(&q);

	assert_int_equal(jkmodel_parse_queue_item(buildable_stuck, &q, err, sizeof(err)), JK_OK);
	assert_int_equal(q.id, 43);
	assert_int_equal(q.state, JK_QUEUE_WAITING);
	assert_true(q.stuck);
	assert_string_equal(q.why, "There are no nodes with the label \xe2\x80\x98nosuch\xe2\x80\x99");
	jk_queue_item_free(&q);

	assert_int_equal(jkmodel_parse_queue_item(blocked, &q, err, sizeof(err)), JK_OK);
	assert_int_equal(q.state, JK_QUEUE_WAITING);
	expect_contains(q.why, "already in progress");
	jk_queue_item_free(&q);

	assert_int_equal(jkmodel_parse_queue_item(left_started, &q, err, sizeof(err)), JK_OK);
	assert_int_equal(q.id, 45);
	assert_int_equal(q.state, JK_QUEUE_STARTED);
	assert_int_equal(q.build_number, 17);
	assert_string_equal(q.build_url, "http://jenkins:8080/job/a/job/b/17/");
	assert_null(q.why);
	jk_queue_item_free(&q);

	assert_int_equal(jkmodel_parse_queue_item(left_cancelled, &q, err, sizeof(err)), JK_OK);
	assert_int_equal(q.state, JK_QUEUE_CANCELLED);
	assert_int_equal(q.build_number, 0);
	assert_null(q.build_url);
	jk_queue_item_free(&q);

	/* Left the queue, build not created yet: keep waiting. */
	assert_int_equal(jkmodel_parse_queue_item(left_cancelled, &q, err, sizeof(err)), JK_OK);
	assert_false(q.pin.kept_known);        /* no ParametersAction: nothing to judge by */
	jk_queue_item_free(&q);
	assert_int_equal(jkmodel_parse_queue_item(left_not_yet, &q, err, sizeof(err)), JK_OK);
	assert_int_equal(q.state, JK_QUEUE_WAITING);
	assert_null(q.why);
	jk_queue_item_free(&q);
	jk_queue_item_free(NULL);
}

#define NLPV "\"org.jvnet.jenkins.plugins.nodelabelparameter."
#define PA(params) "{\"id\":1,\"actions\":[{\"_class\":\"hudson.model.ParametersAction\"," \
	"\"parameters\":[" params "]}]}"
#define SPV(n, v) "{\"_class\":\"hudson.model.StringParameterValue\",\"name\":\"" n "\"," \
	"\"value\":\"" v "\"}"

/* The pin of a queue item: q.pin.name/label as given, or both NULL (name NULL). */
static void
expect_pin(const char *json, const char *name, const char *label)
{
	struct jk_queue_item q;

	if (jkmodel_parse_queue_item(json, &q, err, sizeof(err)) != JK_OK)
		fail_msg("refused: %s: %s", json, err);
	if (!name) {
		assert_null(q.pin.name);
		assert_null(q.pin.label);
	} else {
		assert_string_equal(q.pin.name, name);
		assert_string_equal(q.pin.label, label);
	}
	jk_queue_item_free(&q);
}

/*
 * Issue 16: the pin is the parameter Jenkins assigns the label from, told
 * by its class. A client's string value that reads like the plugin's
 * rendering, or a string parameter named like the pin, pins nothing.
 */
static void
test_parse_queue_pin(void **state)
{
	(void)state;
	expect_pin(PA(SPV("DESC", "x\\n[NodeParameterValue: NODE=agent1]")), NULL, NULL);
	expect_pin(PA(SPV("NODE", "agent1")), NULL, NULL);
	/* The first Node or Label value with a label assigns it; strings before it do not. */
	expect_pin(PA(SPV("NODE", "agent1") ",{\"_class\":" NLPV "LabelParameterValue\","
	    "\"name\":\"WHERE\",\"label\":\"linux\",\"value\":\"linux\"},{\"_class\":"
	    NLPV "NodeParameterValue\",\"name\":\"NODE\",\"value\":\"agent1\"}"), "WHERE", "linux");
	expect_pin(PA("{\"_class\":" NLPV "NodeParameterValue\",\"name\":\"A\",\"value\":null},"
	    "{\"_class\":" NLPV "NodeParameterValue\",\"name\":\"NODE\",\"value\":\"agent1\"}"),
	    "NODE", "agent1");
	/* Only a ParametersAction counts; an action that merely has "parameters" does not. */
	expect_pin("{\"id\":1,\"actions\":[{\"_class\":\"x.Other\",\"parameters\":[{\"_class\":"
	    NLPV "NodeParameterValue\",\"name\":\"NODE\",\"value\":\"agent1\"}]},{}]}", NULL, NULL);
	expect_pin("{\"id\":1}", NULL, NULL);
}

/* A queue listing item: id, and one StringParameterValue name=value (params text and actions). */
#define QITEM(id, n, v, vjson) "{\"_class\":\"hudson.model.Queue$WaitingItem\",\"actions\":[" \
	"{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":[{\"_class\":" \
	"\"hudson.model.StringParameterValue\",\"name\":\"" n "\",\"value\":\"" vjson "\"}]}]," \
	"\"id\":" #id ",\"params\":\"\\n" n "=" vjson "\",\"task\":{\"url\":\"http://j/job/a/\"}}"

/*
 * Issue 16: the queue item of a unique is found by its GEARMAN_UNIQUE
 * parameter, not by a line of the params text: a client's value holding
 * "\nGEARMAN_UNIQUE=u1" made a lookup take its item for u1's.
 */
static void
test_find_queue_by_parameter(void **state)
{
	static const char forged_first[] = "{\"items\":[" QITEM(5, "DESC", "x", "x\\nGEARMAN_UNIQUE=u1") ","
	    QITEM(6, "GEARMAN_UNIQUE", "u1", "u1") "]}";
	static const char forged_only[] = "{\"items\":[" QITEM(5, "DESC", "x", "x\\nGEARMAN_UNIQUE=u1") "]}";
	long q;

	(void)state;
	assert_int_equal(jkmodel_find_queue(forged_first, "job/a/", "GEARMAN_UNIQUE", "u1", &q, err,
	    sizeof(err)), JK_OK);
	assert_int_equal(q, 6);
	assert_int_equal(jkmodel_find_queue(forged_only, "job/a/", "GEARMAN_UNIQUE", "u1", &q, err,
	    sizeof(err)), JK_ENOTFOUND);
	assert_int_equal(q, 0);
}

/*
 * Issue 17: Jenkins writes task.url with Util.rawEncode; the item of a job
 * named "a+(b)~" is found although our path encodes it "a%2B%28b%29~".
 */
static void
test_find_queue_raw_encoded(void **state)
{
	static const char q1[] = "{\"items\":[{\"_class\":\"hudson.model.Queue$WaitingItem\",\"actions\":["
	    "{\"_class\":\"hudson.model.ParametersAction\",\"parameters\":[{\"name\":\"GEARMAN_UNIQUE\","
	    "\"value\":\"u1\"}]}],\"id\":9,\"task\":{\"url\":\"http://j/job/a+(b)%7E/\"}}]}";
	char *jp = jkpath_job("a+(b)~");
	long q;

	(void)state;
	assert_int_equal(jkmodel_find_queue(q1, jp, "GEARMAN_UNIQUE", "u1", &q, err, sizeof(err)), JK_OK);
	assert_int_equal(q, 9);
	free(jp);
	jp = jkpath_job("x/a+(b)~");
	assert_int_equal(jkmodel_find_queue(q1, jp, "GEARMAN_UNIQUE", "u1", &q, err, sizeof(err)),
	    JK_ENOTFOUND);
	free(jp);
}

static void
expect_queue_error(const char *json, const char *frag)
{
	struct jk_queue_item q;

	if (jkmodel_parse_queue_item(json, &q, err, sizeof(err)) != JK_EPROTO)
		fail_msg("accepted: %s", json);
	expect_contains(err, frag);
	assert_null(q.why);
	assert_null(q.build_url);
}

static void
test_parse_queue_malformed(void **state)
{
	(void)state;
	expect_queue_error("Queue item exists. For details check", "malformed JSON");
	expect_queue_error("{}", "id: expected integer, got nothing");
	expect_queue_error("{\"id\":\"42\"}", "id: expected integer, got string");
	expect_queue_error("{\"id\":0}", "id: 0 out of range");
	expect_queue_error("{\"id\":1,\"why\":5}", "why: expected string, got integer");
	expect_queue_error("{\"id\":1,\"stuck\":\"no\"}", "stuck: expected boolean");
	expect_queue_error("{\"id\":1,\"cancelled\":1}", "cancelled: expected boolean, got integer");
	expect_queue_error("{\"id\":1,\"executable\":\"#17\"}", "executable: expected object, got string");
	expect_queue_error("{\"id\":1,\"executable\":{}}", "executable.number: expected integer, got nothing");
	expect_queue_error("{\"id\":1,\"executable\":{\"number\":\"17\"}}", "executable.number");
	expect_queue_error("{\"id\":1,\"executable\":{\"number\":17,\"url\":[]}}",
	    "executable.url: expected string, got array");
	expect_queue_error("{\"id\":1,\"actions\":{}}", "actions: expected array, got object");
	expect_queue_error("{\"id\":1,\"actions\":[3]}", "actions[0]: expected object, got integer");
	expect_queue_error(PA("7"), "actions[0].parameters[0]: expected object");
	expect_queue_error(PA("{\"_class\":" NLPV "NodeParameterValue\",\"value\":\"a\"}"),
	    "actions[0].parameters[0].name: expected string, got nothing");
	expect_queue_error(PA("{\"_class\":" NLPV "LabelParameterValue\",\"name\":\"N\",\"value\":1}"),
	    "actions[0].parameters[0].value: expected string, got integer");
}

/* ---- builds ---- */

static void
test_parse_build_running(void **state)
{
	static const char json[] =
	    "{\"_class\":\"hudson.model.FreeStyleBuild\",\"actions\":[{\"_class\":"
	    "\"hudson.model.ParametersAction\",\"parameters\":[{\"_class\":"
	    "\"org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterValue\",\"name\":\"NODE\","
	    "\"label\":\"node1\",\"value\":\"node1\"}]},{}],\"building\":true,\"description\":null,"
	    "\"duration\":0,\"estimatedDuration\":-1,\"executor\":{},\"number\":3,\"queueId\":42,"
	    "\"result\":null,\"timestamp\":1767000005123,\"url\":\"http://jenkins:8080/job/a/3/\","
	    "\"builtOn\":\"node1\",\"changeSet\":{\"_class\":\"hudson.scm.EmptyChangeLogSet\","
	    "\"items\":[],\"kind\":null},\"culprits\":[]}";
	struct jk_build b;

	(void)state;
	assert_int_equal(jkmodel_parse_build(json, &b, err, sizeof(err)), JK_OK);
	assert_int_equal(b.number, 3);
	assert_true(b.building);
	assert_null(b.result);
	assert_int_equal(b.duration_ms, 0);
	assert_int_equal(b.estimated_ms, -1);
	assert_true(b.timestamp_ms == 1767000005123LL);
	assert_string_equal(b.built_on, "node1");
	assert_string_equal(b.url, "http://jenkins:8080/job/a/3/");
	assert_int_equal(b.queue_id, 42);
	assert_string_equal(b.pin.name, "NODE");
	assert_string_equal(b.pin.label, "node1");
	assert_null(b.description);
	jk_build_free(&b);
	jk_build_free(&b);
	jk_build_free(NULL);
}

static void
test_parse_build_finished(void **state)
{
	static const char *results[] = { "SUCCESS", "UNSTABLE", "FAILURE", "NOT_BUILT", "ABORTED" };
	struct jk_build b;
	char json[1024];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		snprintf(json, sizeof(json),
		    "{\"_class\":\"hudson.model.FreeStyleBuild\",\"building\":false,"
		    "\"description\":\"pinned to node1 \\u00e9\",\"duration\":1523,"
		    "\"estimatedDuration\":1400,\"executor\":null,\"number\":%zu,\"queueId\":7,"
		    "\"result\":\"%s\",\"timestamp\":1767000005000,\"url\":\"http://j/job/f/job/b/%zu/\","
		    "\"builtOn\":\"\"}", i + 1, results[i], i + 1);
		assert_int_equal(jkmodel_parse_build(json, &b, err, sizeof(err)), JK_OK);
		assert_int_equal(b.number, (int)i + 1);
		assert_false(b.building);
		assert_string_equal(b.result, results[i]);
		assert_int_equal(b.duration_ms, 1523);
		assert_int_equal(b.estimated_ms, 1400);
		assert_string_equal(b.built_on, "");	/* the controller */
		assert_string_equal(b.description, "pinned to node1 \xc3\xa9");
		assert_int_equal(b.queue_id, 7);
		assert_false(b.pipeline);
		jk_build_free(&b);
	}

	/* Issue 17: queueId -1 (Run.QUEUE_ID_UNKNOWN: an old record, or before setQueueId). */
	assert_int_equal(jkmodel_parse_build("{\"building\":true,\"number\":4,\"queueId\":-1}",
	    &b, err, sizeof(err)), JK_OK);
	assert_int_equal(b.queue_id, -1);
	jk_build_free(&b);

	/* Pipeline run: no builtOn. */
	assert_int_equal(jkmodel_parse_build("{\"_class\":\"org.jenkinsci.plugins.workflow.job.WorkflowRun\","
	    "\"building\":false,\"number\":9,\"result\":\"SUCCESS\",\"duration\":5,"
	    "\"estimatedDuration\":5,\"timestamp\":1,\"url\":\"u\",\"queueId\":3,\"description\":null}",
	    &b, err, sizeof(err)), JK_OK);
	assert_null(b.built_on);
	assert_string_equal(b.result, "SUCCESS");
	assert_true(b.pipeline);	/* issue 17: it holds an executor only in node() */
	jk_build_free(&b);
}

static void
expect_build_error(const char *json, const char *frag)
{
	struct jk_build b;

	if (jkmodel_parse_build(json, &b, err, sizeof(err)) != JK_EPROTO)
		fail_msg("accepted: %s", json);
	expect_contains(err, frag);
	assert_null(b.result);
	assert_null(b.url);
	assert_null(b.built_on);
}

static void
test_parse_build_malformed(void **state)
{
	(void)state;
	expect_build_error("<html>", "malformed JSON");
	expect_build_error("{\"building\":true}", "number: expected integer, got nothing");
	expect_build_error("{\"number\":\"3\",\"building\":true}", "number: expected integer, got string");
	expect_build_error("{\"number\":3}", "building: expected boolean, got nothing");
	expect_build_error("{\"number\":3,\"building\":\"true\"}", "building: expected boolean, got string");
	expect_build_error("{\"number\":3,\"building\":false,\"result\":5}", "result: expected string, got integer");
	expect_build_error("{\"number\":3,\"building\":false,\"result\":\"SUCCESS\",\"duration\":\"1\"}",
	    "duration: expected integer, got string");
	expect_build_error("{\"number\":3,\"building\":false,\"estimatedDuration\":1.5}",
	    "estimatedDuration: expected integer, got real");
	expect_build_error("{\"number\":3,\"building\":false,\"timestamp\":true}", "timestamp");
	expect_build_error("{\"number\":3,\"building\":false,\"builtOn\":{}}", "builtOn: expected string, got object");
	expect_build_error("{\"number\":3,\"building\":false,\"url\":3}", "url");
	expect_build_error("{\"number\":3,\"building\":false,\"queueId\":\"x\"}", "queueId");
	expect_build_error("{\"number\":3,\"building\":false,\"queueId\":-2}", "queueId");
	expect_build_error("{\"number\":3,\"building\":false,\"description\":[]}", "description: expected string");
}

/* ---- finding a build by a parameter ---- */

/* GET job/x/api/json?tree=builds[number,queueId,timestamp,actions[parameters[name,value]]]{0,25} */
static const char find_json[] =
    "{\"_class\":\"hudson.model.FreeStyleProject\",\"builds\":["
    "{\"_class\":\"hudson.model.FreeStyleBuild\",\"actions\":[{\"_class\":\"hudson.model.ParametersAction\","
    "\"parameters\":[{\"_class\":\"hudson.model.StringParameterValue\",\"name\":\"GEARMAN_UNIQUE\",\"value\":\"u3\"}]},"
    "{}],\"number\":3,\"queueId\":30,\"timestamp\":3000},"
    "{\"_class\":\"hudson.model.FreeStyleBuild\",\"actions\":[{\"_class\":\"hudson.model.ParametersAction\","
    "\"parameters\":[{\"name\":\"GEARMAN_UNIQUE\",\"value\":\"u2\"}]},{}],"
    "\"number\":2,\"queueId\":20,\"timestamp\":2000},"
    "{\"_class\":\"hudson.model.FreeStyleBuild\",\"actions\":[{\"_class\":\"hudson.model.ParametersAction\","
    "\"parameters\":[{\"name\":\"GEARMAN_UNIQUE\",\"value\":\"u1\"}]},{}],"
    "\"number\":1,\"queueId\":10,\"timestamp\":1000}]}";

static void
test_parse_find_build(void **state)
{
	char err[256];
	int number, scanned;
	bool older;

	(void)state;
	/* By parameter, no time bound: the whole page is looked at. */
	assert_int_equal(jkmodel_find_build(find_json, "GEARMAN_UNIQUE", "u1", 0, 0, &number, &scanned,
	    &older, err, sizeof(err)), JK_OK);
	assert_int_equal(number, 1);
	assert_int_equal(scanned, 3);
	assert_false(older);
	/* By queue id. */
	assert_int_equal(jkmodel_find_build(find_json, NULL, NULL, 20, 0, &number, &scanned, &older,
	    err, sizeof(err)), JK_OK);
	assert_int_equal(number, 2);
	/* Not there: every build looked at, none older than no bound. */
	assert_int_equal(jkmodel_find_build(find_json, "GEARMAN_UNIQUE", "u9", 0, 0, &number, &scanned,
	    &older, err, sizeof(err)), JK_ENOTFOUND);
	assert_int_equal(number, 0);
	assert_int_equal(scanned, 3);
	assert_false(older);
	/* A time bound stops at the first build that started before it. */
	assert_int_equal(jkmodel_find_build(find_json, "GEARMAN_UNIQUE", "u1", 0, 2500, &number, &scanned,
	    &older, err, sizeof(err)), JK_ENOTFOUND);
	assert_int_equal(scanned, 2);
	assert_true(older);
	/* A build at the bound, or a match, counts before the bound does. */
	assert_int_equal(jkmodel_find_build(find_json, "GEARMAN_UNIQUE", "u2", 0, 2000, &number, &scanned,
	    &older, err, sizeof(err)), JK_OK);
	assert_int_equal(number, 2);
	assert_false(older);
	/* Only "builds" (the newest 100) is read, never "allBuilds". */
	assert_int_equal(jkmodel_find_build("{\"allBuilds\":[{\"number\":4,\"queueId\":7}]}", NULL, NULL, 7, 0,
	    &number, &scanned, &older, err, sizeof(err)), JK_ENOTFOUND);
	assert_int_equal(scanned, 0);
	/* An empty page: nothing scanned, so the caller stops paging. */
	assert_int_equal(jkmodel_find_build("{\"builds\":[]}", "GEARMAN_UNIQUE", "u1", 0, 0, &number, &scanned,
	    &older, err, sizeof(err)), JK_ENOTFOUND);
	assert_int_equal(scanned, 0);
	assert_int_equal(jkmodel_find_build("<html>", "GEARMAN_UNIQUE", "u1", 0, 0, &number, &scanned,
	    &older, err, sizeof(err)), JK_EPROTO);
}

/* ---- node config.xml ---- */

static const char node_xml[] =
    "<?xml version=\"1.1\" encoding=\"UTF-8\"?>\n"
    "<slave>\n"
    "  <name>node1</name>\n"
    "  <description>fast &amp; big &lt;x&gt;</description>\n"
    "  <remoteFS>/var/lib/jenkins</remoteFS>\n"
    "  <numExecutors>2</numExecutors>\n"
    "  <!-- <mode>NORMAL</mode> in a comment does not count -->\n"
    "  <nodeProperties>\n"
    "    <some.plugin.Property plugin=\"x@1.0\"><mode>NORMAL</mode></some.plugin.Property>\n"
    "  </nodeProperties>\n"
    "  <mode>%s</mode>\n"
    "  <retentionStrategy class=\"hudson.slaves.RetentionStrategy$Always\"/>\n"
    "  <launcher class=\"hudson.slaves.JNLPLauncher\" a='x>y'>\n"
    "    <workDirSettings><disabled>false</disabled><internalDir>remoting</internalDir>"
    "<failIfWorkDirIsMissing>false</failIfWorkDirIsMissing></workDirSettings>\n"
    "    <webSocket>false</webSocket>\n"
    "  </launcher>\n"
    "  <label>linux x86</label>\n"
    "</slave>\n";

static void
test_parse_node_mode(void **state)
{
	enum jk_mode m;
	char xml[2048];

	(void)state;
	snprintf(xml, sizeof(xml), node_xml, "EXCLUSIVE");
	m = JK_MODE_NORMAL;
	assert_int_equal(jkmodel_parse_node_mode(xml, &m, err, sizeof(err)), JK_OK);
	assert_int_equal(m, JK_MODE_EXCLUSIVE);

	snprintf(xml, sizeof(xml), node_xml, "NORMAL");
	m = JK_MODE_EXCLUSIVE;
	assert_int_equal(jkmodel_parse_node_mode(xml, &m, err, sizeof(err)), JK_OK);
	assert_int_equal(m, JK_MODE_NORMAL);

	/* Minimal, with surrounding white space and CDATA. */
	assert_int_equal(jkmodel_parse_node_mode("<hudson.slaves.DumbSlave>\n<mode>\n  EXCLUSIVE\n"
	    "</mode></hudson.slaves.DumbSlave>", &m, err, sizeof(err)), JK_OK);
	assert_int_equal(m, JK_MODE_EXCLUSIVE);
	assert_int_equal(jkmodel_parse_node_mode("<slave><mode><![CDATA[NORMAL]]></mode></slave>",
	    &m, err, sizeof(err)), JK_OK);
	assert_int_equal(m, JK_MODE_NORMAL);
}

static void
expect_mode_error(const char *xml, const char *frag)
{
	enum jk_mode m = JK_MODE_NORMAL;

	if (jkmodel_parse_node_mode(xml, &m, err, sizeof(err)) != JK_EPROTO)
		fail_msg("accepted: %s", xml ? xml : "(null)");
	expect_contains(err, frag);
}

static void
test_parse_node_mode_malformed(void **state)
{
	char xml[2048];

	(void)state;
	snprintf(xml, sizeof(xml), node_xml, "FAST");
	expect_mode_error(xml, "unknown <mode> 'FAST'");
	expect_mode_error(NULL, "malformed XML");
	expect_mode_error("", "no root element");
	expect_mode_error("   \n", "no root element");
	expect_mode_error("{\"mode\":\"NORMAL\"}", "text outside the root element");
	expect_mode_error("<slave><mode>NORMAL</mode>", "unterminated element <slave>");
	expect_mode_error("<slave><mode>NORMAL</slave>", "end tag </slave> does not match <mode>");
	expect_mode_error("<slave><mode>NORMAL</mode></slave><slave/>", "more than one root element");
	expect_mode_error("<slave><name>x</name></slave>", "has no <mode>");
	expect_mode_error("<slave><x><mode>NORMAL</mode></x></slave>", "has no <mode>");
	expect_mode_error("<slave><mode>NORMAL &foo; </mode></slave>", "bad entity reference '&foo;'");
	expect_mode_error("<slave><mode>A & B</mode></slave>", "bad entity reference");
	expect_mode_error("<slave><mode>&#0;</mode></slave>", "bad entity reference");
	expect_mode_error("<slave><mode>&#xD800;</mode></slave>", "bad entity reference");
	expect_mode_error("<slave><mode>&#x110000;</mode></slave>", "bad entity reference");
	expect_mode_error("<!DOCTYPE slave [<!ENTITY x \"y\">]><slave/>", "DOCTYPE");
	expect_mode_error("<slave a=\"unterminated><mode>NORMAL</mode></slave>", "unterminated start tag");
	expect_mode_error("<slave><!-- never closed <mode>NORMAL</mode></slave>", "unterminated comment");
	expect_mode_error("<slave><![CDATA[x</slave>", "unterminated CDATA");
	expect_mode_error("<?xml version='1.1'", "unterminated <?");
	expect_mode_error("<slave></ slave>", "bad end tag");
	expect_mode_error("<slave><mode>&#X41;</mode></slave>", "bad entity reference '&#X41;'");
	expect_mode_error("< slave/>", "bad start tag");
}

/* ---- job config.xml: Node parameter allowedSlaves ---- */

static const char job_xml[] =
    "<?xml version='1.1' encoding='UTF-8'?>\n"
    "<project>\n"
    "  <description>Pinned &lt;builds&gt; &amp; more</description>\n"
    "  <keepDependencies>false</keepDependencies>\n"
    "  <properties>\n"
    "    <hudson.model.ParametersDefinitionProperty>\n"
    "      <parameterDefinitions>\n"
    "        <hudson.model.StringParameterDefinition>\n"
    "          <name>FOO</name>\n"
    "          <defaultValue>bar</defaultValue>\n"
    "          <trim>false</trim>\n"
    "        </hudson.model.StringParameterDefinition>\n"
    "        <org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition plugin=\"nodelabelparameter@1.12.0\">\n"
    "          <name>NODE</name>\n"
    "          <description>where to run</description>\n"
    "          <allowedSlaves>\n"
    "            <string>node1</string>\n"
    "            <string>node &amp; two</string>\n"
    "            <string>n&#233;ud</string>\n"
    "            <string>&quot;q&apos;&#x41;&#x42;</string>\n"
    "          </allowedSlaves>\n"
    "          <defaultSlaves>\n"
    "            <string>node1</string>\n"
    "          </defaultSlaves>\n"
    "          <triggerIfResult>multiSelectionDisallowed</triggerIfResult>\n"
    "          <allowMultiNodeSelection>false</allowMultiNodeSelection>\n"
    "          <triggerConcurrentBuilds>false</triggerConcurrentBuilds>\n"
    "          <ignoreOfflineNodes>false</ignoreOfflineNodes>\n"
    "          <nodeEligibility class=\"org.jvnet.jenkins.plugins.nodelabelparameter.node.AllNodeEligibility\"/>\n"
    "        </org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "        <org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition plugin=\"nodelabelparameter@1.12.0\">\n"
    "          <name>ANY</name>\n"
    "          <description></description>\n"
    "          <allowedSlaves>\n"
    "            <string>ALL (no restriction)</string>\n"
    "          </allowedSlaves>\n"
    "          <defaultSlaves>\n"
    "            <string>built-in</string>\n"
    "          </defaultSlaves>\n"
    "          <triggerIfResult>multiSelectionDisallowed</triggerIfResult>\n"
    "          <allowMultiNodeSelection>false</allowMultiNodeSelection>\n"
    "          <triggerConcurrentBuilds>false</triggerConcurrentBuilds>\n"
    "          <ignoreOfflineNodes>false</ignoreOfflineNodes>\n"
    "        </org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "        <org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "          <name>EMPTY</name>\n"
    "          <allowedSlaves/>\n"
    "          <defaultSlaves/>\n"
    "        </org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "        <org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "          <name>MIXED</name>\n"
    "          <allowedSlaves><string>node1</string><string>ALL (no restriction)</string></allowedSlaves>\n"
    "        </org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "        <org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "          <name>NOLIST</name>\n"
    "        </org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>\n"
    "        <org.jvnet.jenkins.plugins.nodelabelparameter.LabelParameterDefinition plugin=\"nodelabelparameter@1.12.0\">\n"
    "          <name>LABEL</name>\n"
    "          <defaultValue>linux</defaultValue>\n"
    "          <allNodesMatchingLabel>false</allNodesMatchingLabel>\n"
    "        </org.jvnet.jenkins.plugins.nodelabelparameter.LabelParameterDefinition>\n"
    "      </parameterDefinitions>\n"
    "    </hudson.model.ParametersDefinitionProperty>\n"
    "  </properties>\n"
    "  <scm class=\"hudson.scm.NullSCM\"/>\n"
    "  <assignedNode>linux</assignedNode>\n"
    "  <canRoam>false</canRoam>\n"
    "  <disabled>false</disabled>\n"
    "  <builders>\n"
    "    <hudson.tasks.Shell>\n"
    "      <command>if [ &quot;$NODE&quot; ]; then echo &apos;x&apos; &gt; /dev/null; fi\n"
    "<![CDATA[ <name>NODE</name> ]]></command>\n"
    "    </hudson.tasks.Shell>\n"
    "  </builders>\n"
    "  <publishers/>\n"
    "  <buildWrappers/>\n"
    "</project>\n";

static void
expect_allowed(const char *xml, const char *param, bool want_all, const char **want, size_t nwant)
{
	char **names = (char **)1;
	size_t n = 99, i;
	bool all = !want_all;

	if (jkmodel_parse_allowed_nodes(xml, param, &all, &names, &n, err, sizeof(err)) != JK_OK)
		fail_msg("param %s: %s", param, err);
	assert_int_equal(all, want_all);
	assert_int_equal(n, nwant);
	if (nwant == 0)
		assert_null(names);
	for (i = 0; i < nwant; i++)
		assert_string_equal(names[i], want[i]);
	strv_free(names, n);
}

static void
test_parse_allowed_nodes(void **state)
{
	static const char *node[] = { "node1", "node & two", "n\xc3\xa9ud", "\"q'AB" };
	static const char pipeline[] =
	    "<?xml version='1.1' encoding='UTF-8'?>\n<flow-definition plugin=\"workflow-job@1400\">"
	    "<properties><hudson.model.ParametersDefinitionProperty><parameterDefinitions>"
	    "<org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>"
	    "<name>TARGET</name><allowedSlaves><string>a</string><string>b</string></allowedSlaves>"
	    "</org.jvnet.jenkins.plugins.nodelabelparameter.NodeParameterDefinition>"
	    "</parameterDefinitions></hudson.model.ParametersDefinitionProperty></properties>"
	    "<definition class=\"org.jenkinsci.plugins.workflow.cps.CpsFlowDefinition\">"
	    "<script>node(params.TARGET) { sh 'x &amp;&amp; y' }</script></definition>"
	    "</flow-definition>";
	static const char *ab[] = { "a", "b" };

	(void)state;
	expect_allowed(job_xml, "NODE", false, node, 4);
	expect_allowed(job_xml, "ANY", true, NULL, 0);
	expect_allowed(job_xml, "EMPTY", true, NULL, 0);
	expect_allowed(job_xml, "MIXED", true, NULL, 0);
	expect_allowed(job_xml, "NOLIST", true, NULL, 0);
	expect_allowed(pipeline, "TARGET", false, ab, 2);
}

static void
expect_allowed_error(const char *xml, const char *param, enum jk_err want, const char *frag)
{
	char **names = (char **)1;
	size_t n = 99;
	bool all = true;

	if (jkmodel_parse_allowed_nodes(xml, param, &all, &names, &n, err, sizeof(err)) != want)
		fail_msg("param %s: want %s, err '%s'", param, jk_strerror(want), err);
	expect_contains(err, frag);
	assert_null(names);
	assert_int_equal(n, 0);
	assert_false(all);
}

static void
test_parse_allowed_nodes_errors(void **state)
{
	char *trunc;

	(void)state;
	/* Not a Node parameter, or none by that name. */
	expect_allowed_error(job_xml, "FOO", JK_ENOTFOUND, "no Node parameter named 'FOO'");
	expect_allowed_error(job_xml, "LABEL", JK_ENOTFOUND, "no Node parameter named 'LABEL'");
	expect_allowed_error(job_xml, "node", JK_ENOTFOUND, "'node'");
	expect_allowed_error("<project/>", "NODE", JK_ENOTFOUND, "no Node parameter");

	/* Malformed. */
	expect_allowed_error(NULL, "NODE", JK_EPROTO, "malformed XML");
	expect_allowed_error("<html><body>Error</body>", "NODE", JK_EPROTO, "malformed XML: unterminated element <html>");
	expect_allowed_error("<project><a>x &nbsp; y</a></project>", "NODE", JK_EPROTO, "bad entity reference '&nbsp;'");
	expect_allowed_error("<project><a>&#xZZ;</a></project>", "NODE", JK_EPROTO, "bad entity reference");
	expect_allowed_error("<project><a>&#;</a></project>", "NODE", JK_EPROTO, "bad entity reference");
	expect_allowed_error("<project><a>&amp</a></project>", "NODE", JK_EPROTO, "bad entity reference");
	trunc = strndup(job_xml, 1500);
	assert_non_null(trunc);
	expect_allowed_error(trunc, "NODE", JK_EPROTO, "malformed XML");
	free(trunc);
}

/* ---- client calls that fail before any request ---- */

static void
test_client_bad_args(void **state)
{
	struct jk_opts o = {
		.url = "http://gearman:s3cret@127.0.0.1:1/jenkins",
		.user = "gearman", .token = "tok123", .tls_verify = true,
		.connect_timeout_ms = 1000, .timeout_ms = 2000,
	};
	struct jk_client *c;
	struct jk_build b;
	long id = 5;
	bool existing = true;

	(void)state;
	assert_null(jk_client_new(NULL));
	c = jk_client_new(&o);
	assert_non_null(c);
	assert_string_equal(jk_client_error(c), "");
	assert_string_equal(jk_client_session(c), "");
	assert_int_equal(jk_client_status(c), 0);

	assert_int_equal(jk_build_trigger(c, "a//b", NULL, 0, &id, &existing), JK_EBADREQ);
	expect_contains(jk_client_error(c), "bad job name 'a//b'");
	assert_int_equal(id, 0);
	assert_false(existing);
	assert_int_equal(jk_build_get(c, "/a", 1, &b), JK_EBADREQ);
	assert_int_equal(jk_build_get(c, "a", 0, &b), JK_EBADREQ);
	expect_contains(jk_client_error(c), "bad build number 0");
	assert_int_equal(jk_build_stop(c, "", 3), JK_EBADREQ);
	assert_int_equal(jk_build_set_description(c, NULL, 3, "x"), JK_EBADREQ);
	assert_int_equal(jk_queue_cancel(c, 0), JK_EBADREQ);
	assert_int_equal(jk_client_status(c), 0);

	/* A real failure names the URL without the credentials in it. */
	assert_int_equal(jk_queue_cancel(c, 7), JK_ECONNECT);
	expect_contains(jk_client_error(c), "POST http://127.0.0.1:1/jenkins/queue/cancelItem: cannot connect");
	assert_null(strstr(jk_client_error(c), "s3cret"));
	assert_null(strstr(jk_client_error(c), "tok123"));
	jk_client_free(c);
	jk_client_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_encode_segment),
		cmocka_unit_test(test_path_job),
		cmocka_unit_test(test_path_node),
		cmocka_unit_test(test_path_node_legacy),
		cmocka_unit_test(test_raw_encode),
		cmocka_unit_test(test_same_job),
		cmocka_unit_test(test_form_encode),
		cmocka_unit_test(test_location),
		cmocka_unit_test(test_classify_status),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_parse_jobs),
		cmocka_unit_test(test_parse_jobs_no_fullname),
		cmocka_unit_test(test_parse_jobs_malformed),
		cmocka_unit_test(test_parse_nodes),
		cmocka_unit_test(test_parse_node),
		cmocka_unit_test(test_parse_nodes_malformed),
		cmocka_unit_test(test_parse_queue_items),
		cmocka_unit_test(test_parse_node_runs),
		cmocka_unit_test(test_build_job_from_url),
		cmocka_unit_test(test_parse_queue_pin),
		cmocka_unit_test(test_find_queue_by_parameter),
		cmocka_unit_test(test_find_queue_raw_encoded),
		cmocka_unit_test(test_parse_queue_malformed),
		cmocka_unit_test(test_parse_build_running),
		cmocka_unit_test(test_parse_build_finished),
		cmocka_unit_test(test_parse_build_malformed),
		cmocka_unit_test(test_parse_find_build),
		cmocka_unit_test(test_parse_node_mode),
		cmocka_unit_test(test_parse_node_mode_malformed),
		cmocka_unit_test(test_parse_allowed_nodes),
		cmocka_unit_test(test_parse_allowed_nodes_errors),
		cmocka_unit_test(test_client_bad_args),
		cmocka_unit_test(test_parse_jobs_root),
		cmocka_unit_test(test_parse_jobs_arena),	/* last: installs the hooks */
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
