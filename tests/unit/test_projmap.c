/*
 * Unit tests for agent/coordinator/projmap.c: the eligibility and naming rules of
 * gearman-plugin (every row of its label table: no label, one label, a bogus
 * one, ||, &&, !, the node's own name) plus EXCLUSIVE, disabled, offline,
 * allowedSlaves, no pin parameter, collisions and unusable names.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/projmap.h"

/* ---- a tiny builder for Jenkins lists ---- */

#define MAXJ 16
#define MAXN 8

struct world {
	struct jk_job       jobs[MAXJ];
	struct jk_param_def params[MAXJ][2];
	struct pm_allowed   allowed[MAXJ];
	struct jk_job_list  jl;
	struct jk_node      nodes[MAXN];
	char               *labels[MAXN][8];
	enum jk_mode        modes[MAXN];
	bool                known[MAXN];
	struct jk_node_list nl;
	enum function_names naming;
};

static struct world W;

static void
reset(void)
{
	memset(&W, 0, sizeof(W));
	W.jl.jobs = W.jobs;
	W.nl.nodes = W.nodes;
}

/* pin: "node", "label" or NULL. label: expression or NULL. */
static struct jk_job *
job(const char *full, const char *label, const char *pin)
{
	struct jk_job *j = &W.jobs[W.jl.n];
	const char *slash = strrchr(full, '/');

	j->full_name = (char *)full;
	j->name = (char *)(slash ? slash + 1 : full);
	j->label_expr = (char *)label;
	j->buildable = true;
	j->params = W.params[W.jl.n];
	if (pin) {
		j->params[0].name = (char *)(strcmp(pin, "node") == 0 ? "NODE" : "LABEL");
		j->params[0].kind = strcmp(pin, "node") == 0 ? JK_PARAM_NODE : JK_PARAM_LABEL;
		j->nparams = 1;
	}
	W.allowed[W.jl.n].known = true;
	W.allowed[W.jl.n].all = true;
	W.jl.n++;
	return j;
}

/* labels: space separated; the self label is added as Jenkins does. */
static struct jk_node *
node(const char *name, const char *labels, int executors, enum jk_mode mode)
{
	size_t i = W.nl.n;
	struct jk_node *n = &W.nodes[i];
	char *copy = strdup(labels), *tok, *save = NULL;

	n->name = (char *)name;
	n->labels = W.labels[i];
	for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
		n->labels[n->nlabels++] = strdup(tok);
	n->labels[n->nlabels++] = strdup(name);
	free(copy);
	n->executors = executors;
	n->idle_executors = executors;
	W.modes[i] = mode;
	W.known[i] = true;
	W.nl.n++;
	return n;
}

static struct projmap *
build(void)
{
	struct pm_input in = {
		.master = "jenkins01", .url = "http://ci.example", .naming = W.naming, .jobs = &W.jl, .allowed = W.allowed,
		.nodes = &W.nl, .modes = W.modes, .mode_known = W.known,
	};
	struct projmap *pm = projmap_build(&in);

	assert_non_null(pm);
	return pm;
}

static void
cleanup(struct projmap *pm)
{
	size_t i, k;

	projmap_free(pm);
	for (i = 0; i < W.nl.n; i++)
		for (k = 0; k < W.nodes[i].nlabels; k++)
			free(W.nodes[i].labels[k]);
}

static json_t *
ask(struct projmap *pm, const char *req)
{
	char err[512];
	char *text = projmap_answer(pm, req, strlen(req), 0, err, sizeof(err));
	json_t *doc;

	if (!text)
		fail_msg("projmap_answer(%s): %s", req, err);
	doc = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(doc);
	return doc;
}

/* The node's function names, sorted, joined by spaces ("" if none). */
static char *
functions_of(struct projmap *pm, const char *nodename)
{
	char req[256];
	static char out[4096];
	json_t *doc, *fns, *f;
	size_t i;

	snprintf(req, sizeof(req), "{\"node\":\"%s\"}", nodename);
	doc = ask(pm, req);
	fns = json_object_get(doc, "functions");
	assert_true(json_is_array(fns));
	out[0] = '\0';
	json_array_foreach(fns, i, f) {
		if (i)
			strcat(out, " ");
		strcat(out, json_string_value(json_object_get(f, "name")));
	}
	json_decref(doc);
	return out;
}

/* The reason a job is undispatchable, or NULL. */
static char *
reason_of(struct projmap *pm, const char *full)
{
	static char out[1024];
	json_t *doc = ask(pm, "{}"), *u, *e;
	size_t i;
	char *r = NULL;

	u = json_object_get(doc, "undispatchable");
	json_array_foreach(u, i, e) {
		if (strcmp(json_string_value(json_object_get(e, "job")), full) == 0) {
			snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(e, "reason")));
			r = out;
		}
	}
	json_decref(doc);
	return r;
}

/* ---- gearman-plugin.md §2.2, row by row ---- */

static void
test_row_no_label_normal(void **s)
{
	(void)s; reset();
	job("lemon", NULL, "node");
	node("slave0", "ubuntu gcc", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "slave0"), "build:lemon");
	cleanup(pm);
}

static void
test_row_no_label_exclusive(void **s)
{
	(void)s; reset();
	job("lemon", NULL, "node");
	node("slave0", "ubuntu gcc", 1, JK_MODE_EXCLUSIVE);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "slave0"), "");
	cleanup(pm);
}

static void
test_row_single_label(void **s)
{
	(void)s; reset();
	job("lemon", "linux", "node");
	node("slave0", "ubuntu gcc python-2.4 linux", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "slave0"), "build:lemon build:lemon:linux");
	cleanup(pm);
}

static void
test_row_bogus_label(void **s)
{
	(void)s; reset();
	job("lemon", "bogus", "node");
	node("slave0", "ubuntu gcc python-2.4 linux", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "slave0"), "");
	cleanup(pm);
}

static void
test_row_or(void **s)
{
	(void)s; reset();
	job("pep8", "precise || oneiric", "node");
	node("n1", "precise", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:pep8 build:pep8:precise");
	cleanup(pm);
}

static void
test_row_and(void **s)
{
	(void)s; reset();
	job("p", "ubuntu && linux", "node");
	node("n1", "ubuntu gcc linux", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:p build:p:linux build:p:ubuntu");
	cleanup(pm);
}

static void
test_row_and_not(void **s)
{
	(void)s; reset();
	job("p", "ubuntu && !gpu", "node");
	node("n1", "ubuntu", 1, JK_MODE_NORMAL);
	node("n2", "ubuntu gpu", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:p build:p:ubuntu");
	assert_string_equal(functions_of(pm, "n2"), "");
	cleanup(pm);
}

static void
test_row_node_name_label(void **s)
{
	(void)s; reset();
	job("p", "precise-123", "node");
	node("precise-123", "precise", 1, JK_MODE_NORMAL);
	node("other", "precise", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "precise-123"), "build:p build:p:precise-123");
	assert_string_equal(functions_of(pm, "other"), "");
	cleanup(pm);
}

static void
test_self_label_only_when_mentioned(void **s)
{
	(void)s; reset();
	job("p", "linux", "node");
	node("slave0", "linux", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	/* No build:p:slave0: the expression does not mention the node name. */
	assert_string_equal(functions_of(pm, "slave0"), "build:p build:p:linux");
	cleanup(pm);
}

static void
test_labelled_job_on_exclusive_node(void **s)
{
	(void)s; reset();
	job("p", "gpu", "node");
	node("g1", "gpu", 2, JK_MODE_EXCLUSIVE);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "g1"), "build:p build:p:gpu");
	cleanup(pm);
}

static void
test_unknown_mode_takes_only_labelled(void **s)
{
	(void)s; reset();
	job("roam", NULL, "node");
	job("lab", "x", "node");
	node("n1", "x", 1, JK_MODE_NORMAL);
	W.known[0] = false;
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:lab build:lab:x");
	cleanup(pm);
}

/* ---- what makes a job undispatchable ---- */

static void
test_disabled(void **s)
{
	(void)s; reset();
	struct jk_job *j = job("off", NULL, "node");
	j->disabled = true;
	j->buildable = false;
	node("n1", "", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "");
	assert_string_equal(reason_of(pm, "off"), "disabled");
	cleanup(pm);
}

static void
test_no_pin_parameter(void **s)
{
	(void)s; reset();
	job("plain", NULL, NULL);
	node("n1", "", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "");
	assert_non_null(strstr(reason_of(pm, "plain"), "no Node or Label parameter"));
	cleanup(pm);
}

/* A Pipeline job: offered with a Node parameter, not with a Label one (issue 17). */
static void
test_pipeline_needs_node_parameter(void **s)
{
	(void)s; reset();
	job("pipe", NULL, "node")->pipeline = true;
	job("lpipe", NULL, "label")->pipeline = true;
	node("n1", "", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:pipe");
	assert_non_null(strstr(reason_of(pm, "lpipe"), "Pipeline job without a Node parameter"));
	json_t *m = ask(pm, "{}");
	json_t *j = json_array_get(json_object_get(m, "jobs"), 0);
	assert_string_equal(json_string_value(json_object_get(j, "job")), "pipe");
	assert_true(json_is_true(json_object_get(j, "pipeline")));
	json_decref(m);
	cleanup(pm);
}

static void
test_label_parameter_pins(void **s)
{
	(void)s; reset();
	job("bylabel", "linux", "label");
	node("n1", "linux", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	json_t *doc = ask(pm, "{\"node\":\"n1\"}");
	json_t *f = json_array_get(json_object_get(doc, "functions"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "pin")), "LABEL");
	assert_string_equal(json_string_value(json_object_get(f, "job")), "bylabel");
	json_decref(doc);
	cleanup(pm);
}

static void
test_node_param_preferred_over_label_param(void **s)
{
	(void)s; reset();
	struct jk_job *j = job("both", NULL, "label");
	j->params[1].name = "NODE";
	j->params[1].kind = JK_PARAM_NODE;
	j->nparams = 2;
	node("n1", "", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	json_t *doc = ask(pm, "{\"node\":\"n1\"}");
	json_t *f = json_array_get(json_object_get(doc, "functions"), 0);
	assert_string_equal(json_string_value(json_object_get(f, "pin")), "NODE");
	json_decref(doc);
	cleanup(pm);
}

static void
test_label_syntax_error(void **s)
{
	(void)s; reset();
	job("bad", "linux &&", "node");
	job("good", "linux", "node");
	node("n1", "linux", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:good build:good:linux");
	assert_non_null(strstr(reason_of(pm, "bad"), "label expression 'linux &&'"));
	cleanup(pm);
}

static void
test_offline_and_no_executors(void **s)
{
	(void)s; reset();
	job("a", NULL, "node");
	node("off", "", 2, JK_MODE_NORMAL)->offline = true;
	node("temp", "", 2, JK_MODE_NORMAL)->temp_offline = true;
	node("zero", "", 0, JK_MODE_NORMAL);
	node("on", "", 2, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "off"), "");
	assert_string_equal(functions_of(pm, "temp"), "");
	assert_string_equal(functions_of(pm, "zero"), "");
	assert_string_equal(functions_of(pm, "on"), "build:a");
	json_t *doc = ask(pm, "{\"node\":\"temp\"}");
	assert_true(json_is_false(json_object_get(json_object_get(doc, "node"), "online")));
	json_decref(doc);
	cleanup(pm);
}

static void
test_allowed_slaves(void **s)
{
	(void)s; reset();
	char *names[] = { "n2" };
	job("restricted", NULL, "node");
	W.allowed[0].all = false;
	W.allowed[0].names = names;
	W.allowed[0].n = 1;
	job("pending", NULL, "node");
	W.allowed[1].known = false;
	node("n1", "", 1, JK_MODE_NORMAL);
	node("n2", "", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "");
	assert_string_equal(functions_of(pm, "n2"), "build:restricted");
	assert_non_null(strstr(reason_of(pm, "pending"), "not read yet"));
	cleanup(pm);
}

static void
test_collision_short_names(void **s)
{
	(void)s; reset();
	job("f1/app", NULL, "node");
	job("f2/app", NULL, "node");
	job("f2/other", NULL, "node");
	node("n1", "", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:other");
	assert_non_null(strstr(reason_of(pm, "f1/app"), "function_names = full"));
	assert_non_null(strstr(reason_of(pm, "f2/app"), "collides"));
	json_t *doc = ask(pm, "{}");
	json_t *c = json_array_get(json_object_get(doc, "collisions"), 0);
	assert_string_equal(json_string_value(json_object_get(c, "function")), "build:app");
	assert_int_equal(json_array_size(json_object_get(c, "jobs")), 2);
	json_decref(doc);
	cleanup(pm);
}

static void
test_full_names(void **s)
{
	(void)s; reset();
	W.naming = FUNCTION_NAMES_FULL;
	job("f1/app", "linux", "node");
	job("f2/app", NULL, "node");
	node("n1", "linux", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	assert_string_equal(functions_of(pm, "n1"), "build:f1/app build:f1/app:linux build:f2/app");
	assert_null(reason_of(pm, "f1/app"));
	cleanup(pm);
}

static void
test_unusable_names(void **s)
{
	char longname[600];

	(void)s; reset();
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	job(longname, NULL, "node");
	job("has\ttab", NULL, "node");
	job("has\nnewline", NULL, "node");
	job("del\x7f", NULL, "node");
	job("fine", "a b", "node");     /* "a b" is a syntax error: juxtaposition */
	job("quoted", "\"with\ttab\"", "node");
	node("n1", "with\\ttab", 1, JK_MODE_NORMAL);
	/* A label with a TAB can only come from quoting in Jenkins. */
	free(W.nodes[0].labels[0]);
	W.nodes[0].labels[0] = strdup("with\ttab");
	struct projmap *pm = build();
	/* quoted's base function is fine; its labelled variant has a TAB and is skipped */
	assert_string_equal(functions_of(pm, "n1"), "build:quoted");
	assert_non_null(strstr(reason_of(pm, longname), "longer than 512"));
	assert_non_null(strstr(reason_of(pm, "has\ttab"), "control character"));
	assert_non_null(strstr(reason_of(pm, "has\nnewline"), "control character"));
	assert_non_null(strstr(reason_of(pm, "del\x7f"), "control character"));
	json_t *doc = ask(pm, "{}");
	json_t *sk = json_array_get(json_object_get(doc, "skipped"), 0);
	assert_string_equal(json_string_value(json_object_get(sk, "function")), "build:quoted:with\ttab");
	json_decref(doc);
	cleanup(pm);
}

/*
 * Issue 17: spaces are legal in Jenkins job names and labels, and nothing
 * that submits a job breaks on them (tests/test_names.py): offered.
 */
static void
test_names_with_spaces_offered(void **s)
{
	(void)s; reset();
	job("has space", NULL, "node");
	job("quoted", "\"with space\"", "node");
	node("n1", "with\\ space", 1, JK_MODE_NORMAL);
	free(W.nodes[0].labels[0]);
	W.nodes[0].labels[0] = strdup("with space");
	struct projmap *pm = build();
	assert_null(reason_of(pm, "has space"));
	assert_null(reason_of(pm, "quoted"));
	json_t *doc = ask(pm, "{\"node\":\"n1\"}");
	json_t *fns = json_object_get(doc, "functions");
	size_t i;
	json_t *f;
	int seen = 0;
	json_array_foreach(fns, i, f) {
		const char *n = json_string_value(json_object_get(f, "name"));
		seen += !strcmp(n, "build:has space") + !strcmp(n, "build:quoted:with space");
	}
	assert_int_equal(seen, 2);
	json_decref(doc);
	cleanup(pm);
}

/* ---- the request protocol ---- */

static void
test_versions_and_requests(void **s)
{
	char err[256];

	(void)s; reset();
	job("a", NULL, "node");
	node("n1", "", 1, JK_MODE_NORMAL);
	node("n2", "", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();

	json_t *slice = ask(pm, "{\"node\":\"n1\"}");
	const char *v = json_string_value(json_object_get(slice, "version"));
	assert_int_equal(strlen(v), 16);
	assert_string_equal(json_string_value(json_object_get(slice, "master")), "jenkins01");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(slice, "node"), "executors")), 1);

	char req[128];
	snprintf(req, sizeof(req), "{\"node\":\"n1\",\"version\":\"%s\"}", v);
	json_t *u = ask(pm, req);
	assert_true(json_is_true(json_object_get(u, "unchanged")));
	assert_string_equal(json_string_value(json_object_get(u, "version")), v);
	assert_null(json_object_get(u, "functions"));
	json_decref(u);

	u = ask(pm, "{\"node\":\"n1\",\"version\":\"0000000000000000\"}");
	assert_non_null(json_object_get(u, "functions"));
	json_decref(u);

	/* Empty argument = {} = whole map. */
	char *text = projmap_answer(pm, "", 0, 0, err, sizeof(err));
	assert_non_null(text);
	json_t *whole = json_loads(text, 0, NULL);
	free(text);
	assert_int_equal(json_array_size(json_object_get(whole, "nodes")), 2);
	assert_string_equal(json_string_value(json_object_get(whole, "version")), projmap_version(pm));
	json_decref(whole);

	/* Same input, same answers: what makes two coordinators agree. */
	struct projmap *pm2 = build();
	assert_string_equal(projmap_version(pm), projmap_version(pm2));
	projmap_free(pm2);

	/* Bad requests name the problem. */
	assert_null(projmap_answer(pm, "[1]", 3, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "JSON object"));
	assert_null(projmap_answer(pm, "{\"node\":\"ghost\"}", 16, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "\"ghost\" is not a node"));
	assert_null(projmap_answer(pm, "{nope", 5, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "not valid JSON"));
	assert_null(projmap_answer(pm, "{\"node\":1}", 10, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "must be a string"));
	assert_null(projmap_answer(pm, "{\"nodes\":\"n1\"}", 14, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "unknown key"));

	/* Every answer names the master's URL and when it was made, and echoes the nonce (issue 16). */
	static const char *reqs[] = { "{\"node\":\"n1\",\"nonce\":\"n\\\"x\"}", "{\"nonce\":\"n\\\"x\"}",
	    "{\"node\":\"n1\",\"version\":\"%s\",\"nonce\":\"n\\\"x\"}" };
	for (size_t r = 0; r < 3; r++) {
		char q[256];
		snprintf(q, sizeof(q), reqs[r], v);
		text = projmap_answer(pm, q, strlen(q), 1234567, err, sizeof(err));
		assert_non_null(text);
		json_t *a = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
		assert_non_null(a);
		assert_string_equal(json_string_value(json_object_get(a, "nonce")), "n\"x");
		assert_string_equal(json_string_value(json_object_get(a, "url")), "http://ci.example");
		assert_int_equal(json_integer_value(json_object_get(a, "issued_ms")), 1234567);
		json_decref(a);
		free(text);
	}
	char longnonce[300];
	snprintf(longnonce, sizeof(longnonce), "{\"nonce\":\"%0200d\"}", 0);
	assert_null(projmap_answer(pm, longnonce, strlen(longnonce), 0, err, sizeof(err)));
	assert_non_null(strstr(err, "\"nonce\" must be a string of at most"));
	json_decref(slice);
	cleanup(pm);
}

static void
test_version_changes_with_content(void **s)
{
	char v1[17], n2v1[64];

	(void)s; reset();
	job("a", "x", "node");
	node("n1", "x", 1, JK_MODE_NORMAL);
	node("n2", "y", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	snprintf(v1, sizeof(v1), "%s", projmap_version(pm));
	json_t *d = ask(pm, "{\"node\":\"n2\"}");
	snprintf(n2v1, sizeof(n2v1), "%s", json_string_value(json_object_get(d, "version")));
	json_decref(d);
	cleanup(pm);

	/* Relabel the job: n1 loses it; n2's slice is unchanged, so its version stays. */
	reset();
	job("a", "z", "node");
	node("n1", "x", 1, JK_MODE_NORMAL);
	node("n2", "y", 1, JK_MODE_NORMAL);
	pm = build();
	assert_string_not_equal(projmap_version(pm), v1);
	d = ask(pm, "{\"node\":\"n2\"}");
	assert_string_equal(json_string_value(json_object_get(d, "version")), n2v1);
	json_decref(d);
	cleanup(pm);
}

static void
test_find_job(void **s)
{
	char err[256];

	(void)s; reset();
	job("f1/App", NULL, "node");
	job("f2/app", NULL, "node");
	job("f2/solo", NULL, NULL);
	struct projmap *pm = build();
	const char *full;

	assert_int_equal(projmap_find_job(pm, "SOLO", &full, err, sizeof(err)), PROJMAP_FOUND);
	assert_string_equal(full, "f2/solo");
	assert_int_equal(projmap_find_job(pm, "F1/app", &full, err, sizeof(err)), PROJMAP_FOUND);
	assert_string_equal(full, "f1/App");
	assert_int_equal(projmap_find_job(pm, "app", &full, err, sizeof(err)), PROJMAP_AMBIGUOUS);
	assert_null(full);
	assert_non_null(strstr(err, "is ambiguous: 2 jobs in different folders have it"));
	assert_int_equal(projmap_find_job(pm, "nothere", &full, err, sizeof(err)), PROJMAP_NOT_FOUND);
	assert_null(full);
	assert_non_null(strstr(err, "no job named \"nothere\""));
	/* stop:/set_description: act only on the map's dispatchable jobs (issue 16). */
	assert_true(projmap_job_dispatchable(pm, "f1/App"));
	assert_false(projmap_job_dispatchable(pm, "f2/solo"));     /* no Node or Label parameter */
	assert_false(projmap_job_dispatchable(pm, "nothere"));
	cleanup(pm);
}

/*
 * Issue 17: the whole map lists each dispatchable job's declared parameters
 * (name and type), so that a client can tell which of its parameters
 * Jenkins would drop; {"function": F} answers one job's entry; node slices
 * stay as they were.
 */
static void
test_declared_parameters(void **s)
{
	char err[512], v1[17];

	(void)s; reset();
	struct jk_job *a = job("a", "x", "node");
	a->params[0].type = "NodeParameterDefinition";
	a->params[1] = (struct jk_param_def){ .name = "ZUUL_UUID", .type = "StringParameterDefinition" };
	a->nparams = 2;
	job("plain", NULL, NULL);
	node("n1", "x", 1, JK_MODE_NORMAL);
	struct projmap *pm = build();
	snprintf(v1, sizeof(v1), "%s", projmap_version(pm));

	json_t *whole = ask(pm, "{}");
	json_t *ja = json_array_get(json_object_get(whole, "jobs"), 0);
	char *params = json_dumps(json_object_get(ja, "parameters"), JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(params, "[{\"name\":\"NODE\",\"type\":\"NodeParameterDefinition\"},"
	    "{\"name\":\"ZUUL_UUID\",\"type\":\"StringParameterDefinition\"}]");
	free(params);
	json_decref(whole);

	/* The slice does not carry them: agents learn what Jenkins kept from the queue item. */
	json_t *slice = ask(pm, "{\"node\":\"n1\"}");
	assert_null(json_object_get(json_array_get(json_object_get(slice, "functions"), 0), "parameters"));
	json_decref(slice);

	json_t *one = ask(pm, "{\"function\":\"build:a\",\"nonce\":\"k\"}");
	assert_int_equal(json_array_size(json_object_get(one, "jobs")), 1);
	ja = json_array_get(json_object_get(one, "jobs"), 0);
	assert_string_equal(json_string_value(json_object_get(ja, "job")), "a");
	assert_int_equal(json_array_size(json_object_get(ja, "parameters")), 2);
	assert_string_equal(json_string_value(json_object_get(one, "nonce")), "k");
	assert_string_equal(json_string_value(json_object_get(one, "master")), "jenkins01");
	json_decref(one);
	one = ask(pm, "{\"function\":\"build:plain\"}");    /* not dispatchable: not listed */
	assert_int_equal(json_array_size(json_object_get(one, "jobs")), 0);
	json_decref(one);
	assert_null(projmap_answer(pm, "{\"function\":1}", 14, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "\"function\" must be a string"));
	assert_null(projmap_answer(pm, "{\"function\":\"build:a\",\"node\":\"n1\"}", 34, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "goes with no"));
	projmap_free(pm);

	/* A parameter declared since changes the whole map's version. */
	a->params[1].name = "ZUUL_PIPELINE";
	pm = build();
	assert_string_not_equal(projmap_version(pm), v1);
	cleanup(pm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pipeline_needs_node_parameter),
		cmocka_unit_test(test_row_no_label_normal),
		cmocka_unit_test(test_row_no_label_exclusive),
		cmocka_unit_test(test_row_single_label),
		cmocka_unit_test(test_row_bogus_label),
		cmocka_unit_test(test_row_or),
		cmocka_unit_test(test_row_and),
		cmocka_unit_test(test_row_and_not),
		cmocka_unit_test(test_row_node_name_label),
		cmocka_unit_test(test_self_label_only_when_mentioned),
		cmocka_unit_test(test_labelled_job_on_exclusive_node),
		cmocka_unit_test(test_unknown_mode_takes_only_labelled),
		cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_no_pin_parameter),
		cmocka_unit_test(test_label_parameter_pins),
		cmocka_unit_test(test_node_param_preferred_over_label_param),
		cmocka_unit_test(test_label_syntax_error),
		cmocka_unit_test(test_offline_and_no_executors),
		cmocka_unit_test(test_allowed_slaves),
		cmocka_unit_test(test_collision_short_names),
		cmocka_unit_test(test_full_names),
		cmocka_unit_test(test_unusable_names),
		cmocka_unit_test(test_names_with_spaces_offered),
		cmocka_unit_test(test_versions_and_requests),
		cmocka_unit_test(test_version_changes_with_content),
		cmocka_unit_test(test_find_job),
		cmocka_unit_test(test_declared_parameters),
	};

	return cmocka_run_group_tests_name("projmap", tests, NULL, NULL);
}
