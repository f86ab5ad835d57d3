/*
 * jkmodel: see jkmodel.h.
 *
 * The JSON field getters come first (each error names the field by its
 * path), then one section per kind of answer, then config.xml.
 */
#include "jkmodel.h"

#include "errmsg.h"
#include "jarena.h"
#include "jkpath.h"
#include "jscan.h"
#include "strvec.h"
#include "xalloc.h"
#include "xmlscan.h"

#include <jansson.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Folders nested deeper are refused: a hostile answer must not recurse without end. */
#define MAX_FOLDER_DEPTH	100
/* Room for a field's path in a message, e.g. "jobs[2].jobs[0].property[1]". */
#define PATHLEN			256
/* Member names of a job list's root are cut to this; only "jobs" matters. */
#define MEMBERLEN		64
/* Room for the first jobs of a list; it doubles from there. */
#define JOBS_FIRST_CAP		16
/* An unexpected value is quoted in a message up to this many bytes. */
#define VALUE_SHOWN		64
/* A sub-parser's message, quoted in ours. */
#define SUBERRLEN		256

/* ---- JSON field getters ----
 *
 * "required" means absent or null is an error; otherwise absent or null
 * gives the default. A present value of the wrong type is always an error.
 */

static const char *
jtype(const json_t *v)
{
	if (!v)
		return "nothing";
	switch (json_typeof(v)) {
	case JSON_OBJECT:	return "object";
	case JSON_ARRAY:	return "array";
	case JSON_STRING:	return "string";
	case JSON_INTEGER:	return "integer";
	case JSON_REAL:		return "real";
	case JSON_TRUE:
	case JSON_FALSE:	return "boolean";
	case JSON_NULL:		return "null";
	}
	return "?";
}

/* "path.key" into out (just key when path is empty). */
static const char *
jpath(char *out, size_t len, const char *path, const char *key)
{
	errmsg_set(out, len, "%s%s%s", path, *path && *key ? "." : "", key);
	return out;
}

static enum jk_err
jwrong(char *err, size_t errlen, const char *path, const char *key,
    const char *want, const json_t *got)
{
	char p[PATHLEN];

	errmsg_set(err, errlen, "%s: expected %s, got %s", jpath(p, sizeof(p), path, key),
	    want, jtype(got));
	return JK_EPROTO;
}

static json_t *
jload(const char *text, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root;

	if (!text) {
		errmsg_set(err, errlen, "malformed JSON: no document");
		return NULL;
	}
	if (!(root = json_loads(text, 0, &je)))
		errmsg_set(err, errlen, "malformed JSON: %s at line %d column %d", je.text,
		    je.line, je.column);
	else if (!json_is_object(root)) {
		errmsg_set(err, errlen, "malformed JSON: expected an object, got %s", jtype(root));
		json_decref(root);
		root = NULL;
	}
	return root;
}

static enum jk_err
jstr(const json_t *o, const char *key, bool required, const char *dflt, char **out,
    const char *path, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v)) {
		if (required)
			return jwrong(err, errlen, path, key, "string", v);
		if (dflt)
			*out = xstrdup(dflt);
	} else if (json_is_string(v)) {
		*out = xstrndup(json_string_value(v), json_string_length(v));
	} else {
		return jwrong(err, errlen, path, key, "string", v);
	}
	return JK_OK;
}

static enum jk_err
jbool(const json_t *o, const char *key, bool required, bool dflt, bool *out,
    const char *path, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!v || json_is_null(v)) {
		if (required)
			return jwrong(err, errlen, path, key, "boolean", v);
		*out = dflt;
	} else if (json_is_boolean(v)) {
		*out = json_is_true(v);
	} else {
		return jwrong(err, errlen, path, key, "boolean", v);
	}
	return JK_OK;
}

static enum jk_err
jint(const json_t *o, const char *key, bool required, long long dflt, long long min,
    long long max, long long *out, const char *path, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);
	char p[PATHLEN];

	if (!v || json_is_null(v)) {
		if (required)
			return jwrong(err, errlen, path, key, "integer", v);
		*out = dflt;
		return JK_OK;
	}
	if (!json_is_integer(v))
		return jwrong(err, errlen, path, key, "integer", v);
	*out = json_integer_value(v);
	if (*out < min || *out > max) {
		errmsg_set(err, errlen, "%s: %lld out of range", jpath(p, sizeof(p), path, key), *out);
		return JK_EPROTO;
	}
	return JK_OK;
}

/* An optional array member: absent or null gives NULL, anything else but an array is an error. */
static enum jk_err
jarr(const json_t *o, const char *key, json_t **out, const char *path, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return JK_OK;
	if (!json_is_array(v))
		return jwrong(err, errlen, path, key, "array", v);
	*out = v;
	return JK_OK;
}

/* Does the object's _class contain / end with s? */
static bool
jclass_has(const json_t *o, const char *s, bool suffix)
{
	const char *c = json_string_value(json_object_get(o, "_class"));
	size_t n, m;

	if (!c)
		return false;
	if (!suffix)
		return strstr(c, s) != NULL;
	n = strlen(c);
	m = strlen(s);
	return n >= m && strcmp(c + n - m, s) == 0;
}

/*
 * A Pipeline run (workflow-job's WorkflowRun, a Queue.FlyweightTask): it
 * runs on no regular executor; its node() step takes one through an
 * ExecutorStepExecution$PlaceholderTask, whose executable the executors'
 * JSON shows with the run's url.
 */
static bool
jk_build_is_pipeline(const json_t *build)
{
	return jclass_has(build, ".WorkflowRun", true);
}

/* ---- jobs ---- */

/* A Pipeline job: workflow-job's WorkflowJob (also a multibranch branch's). */
static bool
jk_job_is_pipeline(const json_t *job)
{
	return jclass_has(job, ".WorkflowJob", true);
}

static void
job_clear(struct jk_job *j)
{
	size_t i;

	free(j->full_name);
	free(j->name);
	free(j->url);
	free(j->label_expr);
	for (i = 0; i < j->nparams; i++) {
		free(j->params[i].name);
		free(j->params[i].type);
	}
	free(j->params);
	memset(j, 0, sizeof(*j));
}

void
jk_job_list_free(struct jk_job_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		job_clear(&l->jobs[i]);
	free(l->jobs);
	l->jobs = NULL;
	l->n = 0;
}

static enum jk_err
parse_param(const json_t *o, const char *path, struct jk_param_def *p, char *err, size_t errlen)
{
	enum jk_err e;
	const char *cls, *dot;

	if (!json_is_object(o))
		return jwrong(err, errlen, path, "", "object", o);
	if ((e = jstr(o, "name", true, NULL, &p->name, path, err, errlen)) != JK_OK ||
	    (e = jstr(o, "type", false, NULL, &p->type, path, err, errlen)) != JK_OK)
		return e;
	if (!p->type) {
		/* No "type": derive the simple class name from _class. */
		cls = json_string_value(json_object_get(o, "_class"));
		cls = cls ? cls : "";
		dot = strrchr(cls, '.');
		p->type = xstrdup(dot ? dot + 1 : cls);
	}
	if (strcmp(p->type, "NodeParameterDefinition") == 0)
		p->kind = JK_PARAM_NODE;
	else if (strcmp(p->type, "LabelParameterDefinition") == 0)
		p->kind = JK_PARAM_LABEL;
	else
		p->kind = JK_PARAM_OTHER;
	return JK_OK;
}

/* The parameter definitions out of "property": [{...}, {"parameterDefinitions": [...]}]. */
static enum jk_err
parse_job_params(const json_t *o, const char *path, struct jk_job *j, char *err, size_t errlen)
{
	json_t *props, *prop, *defs, *def;
	size_t i, k;
	char pp[PATHLEN], dp[PATHLEN];
	enum jk_err e;

	if ((e = jarr(o, "property", &props, path, err, errlen)) != JK_OK || !props)
		return e;
	json_array_foreach(props, i, prop) {
		errmsg_set(pp, sizeof(pp), "%s.property[%zu]", path, i);
		if (!json_is_object(prop))
			return jwrong(err, errlen, pp, "", "object", prop);
		if ((e = jarr(prop, "parameterDefinitions", &defs, pp, err, errlen)) != JK_OK)
			return e;
		if (!defs || json_array_size(defs) == 0)
			continue;
		j->params = xreallocarray(j->params, j->nparams + json_array_size(defs),
		    sizeof(*j->params));
		json_array_foreach(defs, k, def) {
			struct jk_param_def *p = &j->params[j->nparams];

			memset(p, 0, sizeof(*p));
			errmsg_set(dp, sizeof(dp), "%s.parameterDefinitions[%zu]", pp, k);
			/* Count it first so a half-filled entry is freed with the job. */
			j->nparams++;
			if ((e = parse_param(def, dp, p, err, errlen)) != JK_OK)
				return e;
		}
	}
	return JK_OK;
}

static enum jk_err
parse_job(const json_t *o, const char *path, const char *prefix, struct jk_job *j,
    char *err, size_t errlen)
{
	enum jk_err e;

	if ((e = jstr(o, "fullName", false, NULL, &j->full_name, path, err, errlen)) != JK_OK ||
	    (e = jstr(o, "url", false, "", &j->url, path, err, errlen)) != JK_OK ||
	    (e = jstr(o, "labelExpression", false, NULL, &j->label_expr, path, err, errlen)) != JK_OK ||
	    (e = jbool(o, "buildable", false, false, &j->buildable, path, err, errlen)) != JK_OK ||
	    (e = jbool(o, "disabled", false, false, &j->disabled, path, err, errlen)) != JK_OK ||
	    (e = jbool(o, "concurrentBuild", false, false, &j->concurrent, path, err, errlen)) != JK_OK ||
	    (e = parse_job_params(o, path, j, err, errlen)) != JK_OK)
		return e;
	j->pipeline = jk_job_is_pipeline(o);
	if (!j->full_name) {
		/* Older masters have no fullName: rebuild it from the folder path. */
		j->full_name = xasprintf("%s%s%s", prefix, *prefix ? "/" : "", j->name);
	}
	/* An empty labelExpression is no restriction, like null. */
	if (j->label_expr && !*j->label_expr) {
		free(j->label_expr);
		j->label_expr = NULL;
	}
	return JK_OK;
}

/*
 * One entry of a "jobs" array. Anything with a "jobs" member (folders,
 * organization folders, multibranch projects) is descended into and not
 * listed itself; everything else is a job.
 */
static enum jk_err parse_jobs_array(const json_t *arr, const char *path, const char *prefix,
    int depth, struct jk_job_list *out, size_t *cap, char *err, size_t errlen);

/* A folder (o at path p, short name name): its jobs (sub, NULL if none) under its full name. */
static enum jk_err
parse_folder(const json_t *o, const char *p, const char *prefix, char *name, const json_t *sub,
    int depth, struct jk_job_list *out, size_t *cap, char *err, size_t errlen)
{
	char *full = NULL, np[PATHLEN];
	enum jk_err e;

	/* The folder's own fullName is authoritative when present. */
	if ((e = jstr(o, "fullName", false, NULL, &full, p, err, errlen)) != JK_OK)
		return e;
	if (!full)
		full = xasprintf("%s%s%s", prefix, *prefix ? "/" : "", name);
	if (sub) {
		errmsg_set(np, sizeof(np), "%s.jobs", p);
		e = parse_jobs_array(sub, np, full, depth + 1, out, cap, err, errlen);
	}
	free(full);
	return e;
}

static enum jk_err
parse_jobs_entry(const json_t *o, const char *path, size_t i, const char *prefix, int depth,
    struct jk_job_list *out, size_t *cap, char *err, size_t errlen)
{
	json_t *sub;
	char p[PATHLEN], *name;
	enum jk_err e;

	errmsg_set(p, sizeof(p), "%s[%zu]", path, i);
	if (!json_is_object(o))
		return jwrong(err, errlen, p, "", "object", o);
	if ((e = jstr(o, "name", true, NULL, &name, p, err, errlen)) != JK_OK)
		return e;
	if ((e = jarr(o, "jobs", &sub, p, err, errlen)) != JK_OK) {
		free(name);
		return e;
	}
	if (sub || jclass_has(o, "Folder", false)) {
		e = parse_folder(o, p, prefix, name, sub, depth, out, cap, err, errlen);
		free(name);
		return e;
	}
	if (out->n == *cap) {
		*cap = *cap ? *cap * 2 : JOBS_FIRST_CAP;
		out->jobs = xreallocarray(out->jobs, *cap, sizeof(*out->jobs));
	}
	memset(&out->jobs[out->n], 0, sizeof(out->jobs[0]));
	out->jobs[out->n].name = name;
	out->n++;
	return parse_job(o, p, prefix, &out->jobs[out->n - 1], err, errlen);
}

static enum jk_err
parse_jobs_array(const json_t *arr, const char *path, const char *prefix, int depth,
    struct jk_job_list *out, size_t *cap, char *err, size_t errlen)
{
	const json_t *o;
	size_t i;
	enum jk_err e;

	if (depth > MAX_FOLDER_DEPTH) {
		errmsg_set(err, errlen, "%s: folders nested too deep", path);
		return JK_EPROTO;
	}
	json_array_foreach(arr, i, o)
		if ((e = parse_jobs_entry(o, path, i, prefix, depth, out, cap, err, errlen)) != JK_OK)
			return e;
	return JK_OK;
}

/*
 * The root of a job list, {"_class":...,"jobs":[...]}, is walked with
 * jscan and each entry of its "jobs" array is handed to jansson on its
 * own: as one tree, 10,000 jobs are 30 MB of jansson values for 4.5 MB of
 * text, and building and freeing it was most of a coordinator's refresh.
 * One entry is a few kB, parsed in this thread's arena (jarena.h) where
 * there is one and dropped before the next.
 */
static enum jk_err
scan_jobs(struct jscan *sc, struct jk_job_list *out, size_t *cap, char *err, size_t errlen)
{
	enum jk_err e;
	json_t *v;
	size_t i;
	int more;

	if (!jscan_take(sc, '[')) {
		if (!(v = jscan_value(sc, err, errlen)))
			return JK_EPROTO;
		e = jwrong(err, errlen, "", "jobs", "array", v);
		json_decref(v);
		return e;
	}
	sc->first = true;
	for (i = 0; (more = jscan_element(sc, err, errlen)) > 0; i++) {
		bool arena = jarena_begin();

		v = jscan_value(sc, err, errlen);
		jarena_stop();
		e = v ? parse_jobs_entry(v, "jobs", i, "", 0, out, cap, err, errlen) : JK_EPROTO;
		if (arena)
			jarena_drop();
		else
			json_decref(v);
		if (e != JK_OK)
			return e;
	}
	return more < 0 ? JK_EPROTO : JK_OK;
}

enum jk_err
jkmodel_parse_jobs(const char *json, struct jk_job_list *out, char *err, size_t errlen)
{
	struct jscan sc;
	char name[MEMBERLEN];
	bool seen = false;
	size_t cap = 0;
	enum jk_err e = JK_OK;
	int more;

	memset(out, 0, sizeof(*out));
	if (!json) {
		errmsg_set(err, errlen, "malformed JSON: no document");
		return JK_EPROTO;
	}
	jscan_init(&sc, json, strlen(json));
	if (!jscan_object(&sc, err, errlen))
		return JK_EPROTO;
	while (e == JK_OK && (more = jscan_member(&sc, name, sizeof(name), err, errlen)) > 0) {
		json_t *v;

		if (strcmp(name, "jobs") != 0) {
			if ((v = jscan_value(&sc, err, errlen)))
				json_decref(v);
			else
				e = JK_EPROTO;
		} else if (seen) {
			errmsg_set(err, errlen, "malformed JSON: \"jobs\" given twice");
			e = JK_EPROTO;
		} else {
			seen = true;
			e = scan_jobs(&sc, out, &cap, err, errlen);
		}
	}
	if (e == JK_OK && more < 0)
		e = JK_EPROTO;
	if (e == JK_OK) {
		if (!jscan_done(&sc)) {
			jscan_expected(&sc, "the end of the document", err, errlen);
			e = JK_EPROTO;
		} else if (!seen)
			e = jwrong(err, errlen, "", "jobs", "array", NULL);
	}
	if (e != JK_OK)
		jk_job_list_free(out);
	return e;
}

/* ---- nodes ---- */

void
jk_node_free(struct jk_node *n)
{
	size_t i;

	if (!n)
		return;
	free(n->name);
	strv_free(n->labels, n->nlabels);
	strv_free(n->running, n->nrunning);
	for (i = 0; i < n->nruns; i++) {
		free(n->runs[i].url);
		free(n->runs[i].job);
	}
	free(n->runs);
	free(n->offline_reason);
	memset(n, 0, sizeof(*n));
}

void
jk_node_list_free(struct jk_node_list *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		jk_node_free(&l->nodes[i]);
	free(l->nodes);
	l->nodes = NULL;
	l->n = 0;
}

/* "assignedLabels": [{"name": ...}, ...] into n->labels. */
static enum jk_err
computer_labels(const json_t *labels, const char *path, struct jk_node *n, char *err,
    size_t errlen)
{
	const json_t *v;
	char p[PATHLEN], *name;
	size_t i;
	enum jk_err e;

	json_array_foreach(labels, i, v) {
		errmsg_set(p, sizeof(p), "%s.assignedLabels[%zu]", path, i);
		if (!json_is_object(v))
			return jwrong(err, errlen, p, "", "object", v);
		if ((e = jstr(v, "name", true, NULL, &name, p, err, errlen)) != JK_OK)
			return e;
		strv_push(&n->labels, &n->nlabels, name, (size_t)-1);
		free(name);
	}
	return JK_OK;
}

/* A number of a run's, or dflt when absent, not an integer or outside [min, max]. */
static long long
run_int(const json_t *cur, const char *key, long long dflt, long long min, long long max)
{
	const json_t *v = json_object_get(cur, key);
	long long x;

	if (!json_is_integer(v))
		return dflt;
	x = json_integer_value(v);
	return x < min || x > max ? dflt : x;
}

/*
 * The string value of parameter name in a queue item's or build's
 * ParametersAction (tree=...actions[parameters[name,value]]), or NULL. By
 * the parameter's own name, never by text: a client's value holding
 * "\nNAME=value" does not count.
 */
static const char *
param_value(const json_t *b, const char *name)
{
	const json_t *a, *p;
	size_t k, m;

	json_array_foreach(json_object_get(b, "actions"), k, a) {
		const char *c = json_string_value(json_object_get(a, "_class"));

		if (!c || strcmp(c, "hudson.model.ParametersAction") != 0)
			continue;
		json_array_foreach(json_object_get(a, "parameters"), m, p) {
			const char *n = json_string_value(json_object_get(p, "name"));

			if (n && strcmp(n, name) == 0)
				return json_string_value(json_object_get(p, "value"));
		}
	}
	return NULL;
}

/*
 * A currentExecutable with a url into n->runs (room made by parse_computer:
 * one per executor listed). Only its url is held to the module's types;
 * the rest is for display, so a value of the wrong type or out of range
 * is taken as not said rather than costing the whole node list. gearman:
 * a parameter with a value, since a job that declares GEARMAN_UNIQUE gives
 * every build one, empty when nobody set it (a build from the UI).
 */
static void
computer_run(const json_t *cur, const char *url, bool oneoff, struct jk_node *n)
{
	struct jk_run *r = &n->runs[n->nruns++];
	const char *gu;
	int from_url = 0;

	r->url = xstrdup(url);
	r->job = jkpath_build_job(url, &from_url);
	r->number = (int)run_int(cur, "number", from_url, 1, INT_MAX);
	r->timestamp_ms = run_int(cur, "timestamp", 0, 0, LLONG_MAX);
	r->estimated_ms = (long)run_int(cur, "estimatedDuration", -1, -1, LONG_MAX);
	r->gearman = (gu = param_value(cur, "GEARMAN_UNIQUE")) && *gu;
	r->oneoff = oneoff;
}

/*
 * "executors" (oneoff false) or "oneOffExecutors": [{"idle": ...,
 * "currentExecutable": {"url": ...}}, ...]. A busy executor without
 * currentExecutable is in Executor.run's start window (or runs what we may
 * not read): counted in starting. A flyweight task's (a Pipeline run's)
 * OneOffExecutor goes through that window too, but takes none of the
 * node's executors: its build is neither busy nor among the running ones,
 * only among the runs (oneoff).
 */
static enum jk_err
computer_executors(const json_t *execs, bool oneoff, const char *path, struct jk_node *n,
    char *err, size_t errlen)
{
	const json_t *v, *cur;
	char p[PATHLEN], *url;
	size_t i;
	bool idle;
	enum jk_err e;

	json_array_foreach(execs, i, v) {
		errmsg_set(p, sizeof(p), "%s.%s[%zu]", path, oneoff ? "oneOffExecutors" : "executors", i);
		if (!json_is_object(v))
			return jwrong(err, errlen, p, "", "object", v);
		/* At depth 0 without tree= executors are {}: not known idle. */
		if ((e = jbool(v, "idle", false, oneoff, &idle, p, err, errlen)) != JK_OK)
			return e;
		if (!oneoff) {
			n->idle_executors += idle;
			n->busy += !idle;
		}
		/* null when the caller may not read the job, or between builds */
		cur = json_object_get(v, "currentExecutable");
		if (!json_is_object(cur)) {
			n->starting += !idle;
			continue;
		}
		if ((e = jstr(cur, "url", false, NULL, &url, p, err, errlen)) != JK_OK)
			return e;
		if (url && !oneoff)
			strv_push(&n->running, &n->nrunning, url, (size_t)-1);
		if (url)
			computer_run(cur, url, oneoff, n);
		free(url);
	}
	return JK_OK;
}

static enum jk_err
parse_computer(const json_t *o, const char *path, struct jk_node *n, char *err, size_t errlen)
{
	json_t *labels, *execs, *oneoff;
	long long num;
	enum jk_err e;

	memset(n, 0, sizeof(*n));
	if (!json_is_object(o))
		return jwrong(err, errlen, path, "", "object", o);
	if ((e = jstr(o, "displayName", true, NULL, &n->name, path, err, errlen)) != JK_OK)
		goto fail;
	/*
	 * The controller: displayName is "Built-In Node" (localised, hence
	 * also the _class test) but the name agents and labels use is its
	 * self label, "built-in", which jkpath_node maps back to
	 * /computer/(built-in)/. Before 2.307 the self label was "master"
	 * (and the NodeLabel parameter takes only that name): kept when the
	 * labels have "master" and not "built-in".
	 */
	if (strcmp(n->name, "Built-In Node") == 0 || jclass_has(o, "$MasterComputer", true)) {
		free(n->name);
		n->name = NULL;
	}
	if ((e = jint(o, "numExecutors", true, 0, 0, INT_MAX, &num, path, err, errlen)) != JK_OK ||
	    (e = jbool(o, "offline", true, false, &n->offline, path, err, errlen)) != JK_OK ||
	    (e = jbool(o, "temporarilyOffline", true, false, &n->temp_offline, path, err, errlen)) != JK_OK ||
	    (e = jstr(o, "offlineCauseReason", false, "", &n->offline_reason, path, err, errlen)) != JK_OK ||
	    (e = jarr(o, "assignedLabels", &labels, path, err, errlen)) != JK_OK ||
	    (e = jarr(o, "executors", &execs, path, err, errlen)) != JK_OK ||
	    (e = jarr(o, "oneOffExecutors", &oneoff, path, err, errlen)) != JK_OK)
		goto fail;
	n->executors = (int)num;
	/* At most one run per executor listed: the bound on what a node's runs hold. */
	n->runs = xcalloc(json_array_size(execs) + json_array_size(oneoff) + 1, sizeof(*n->runs));
	if ((e = computer_labels(labels, path, n, err, errlen)) != JK_OK ||
	    (e = computer_executors(execs, false, path, n, err, errlen)) != JK_OK ||
	    (e = computer_executors(oneoff, true, path, n, err, errlen)) != JK_OK)
		goto fail;
	if (!n->name)
		n->name = xstrdup(strv_has(n->labels, n->nlabels, "master") &&
		    !strv_has(n->labels, n->nlabels, "built-in") ? "master" : "built-in");
	return JK_OK;
fail:
	jk_node_free(n);
	return e;
}

enum jk_err
jkmodel_parse_node(const char *json, struct jk_node *out, char *err, size_t errlen)
{
	json_t *root;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	e = parse_computer(root, "", out, err, errlen);
	json_decref(root);
	return e;
}

enum jk_err
jkmodel_parse_nodes(const char *json, struct jk_node_list *out, char *err, size_t errlen)
{
	json_t *root, *arr, *o;
	size_t i;
	char p[PATHLEN];
	enum jk_err e = JK_OK;

	memset(out, 0, sizeof(*out));
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	arr = json_object_get(root, "computer");
	if (!json_is_array(arr)) {
		e = jwrong(err, errlen, "", "computer", "array", arr);
		goto done;
	}
	if (json_array_size(arr) > 0)
		out->nodes = xcalloc(json_array_size(arr), sizeof(*out->nodes));
	json_array_foreach(arr, i, o) {
		errmsg_set(p, sizeof(p), "computer[%zu]", i);
		if ((e = parse_computer(o, p, &out->nodes[i], err, errlen)) != JK_OK)
			break;
		out->n++;
	}
done:
	json_decref(root);
	if (e != JK_OK)
		jk_node_list_free(out);
	return e;
}

/* ---- the controller ---- */

enum jk_err
jkmodel_parse_master_mode(const char *json, enum jk_mode *mode, char *err, size_t errlen)
{
	json_t *root;
	char *m = NULL;
	enum jk_err e;

	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	e = jstr(root, "mode", true, NULL, &m, "", err, errlen);
	json_decref(root);
	if (e != JK_OK)
		return e;
	if (strcmp(m, "NORMAL") == 0)
		*mode = JK_MODE_NORMAL;
	else if (strcmp(m, "EXCLUSIVE") == 0)
		*mode = JK_MODE_EXCLUSIVE;
	else {
		errmsg_set(err, errlen, "mode: unknown value '%.*s'", VALUE_SHOWN, m);
		e = JK_EPROTO;
	}
	free(m);
	return e;
}

enum jk_err
jkmodel_parse_quieting(const char *json, bool *quieting, char *err, size_t errlen)
{
	json_t *root;
	enum jk_err e;

	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	e = jbool(root, "quietingDown", true, false, quieting, "", err, errlen);
	json_decref(root);
	return e;
}

enum jk_err
jkmodel_parse_crumb(const char *json, char **field, char **crumb, char *err, size_t errlen)
{
	json_t *root;
	enum jk_err e;

	*field = *crumb = NULL;
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	if ((e = jstr(root, "crumb", true, NULL, crumb, "", err, errlen)) != JK_OK ||
	    (e = jstr(root, "crumbRequestField", true, NULL, field, "", err, errlen)) != JK_OK) {
		free(*crumb);
		*crumb = NULL;
	}
	json_decref(root);
	return e;
}

/* ---- the pin: which parameter assigns the label ---- */

#define NLP_CLASS "org.jvnet.jenkins.plugins.nodelabelparameter."

/* Does a ParameterValue of this _class assign a label (the NodeLabel Parameter plugin's)? */
static bool
pin_class(const json_t *p)
{
	const char *c = json_string_value(json_object_get(p, "_class"));

	return c && (!strcmp(c, NLP_CLASS "NodeParameterValue") ||
	    !strcmp(c, NLP_CLASS "LabelParameterValue"));
}

void
jk_pin_free(struct jk_pin *pin)
{
	free(pin->name);
	free(pin->label);
	pin->name = pin->label = NULL;
	strv_free(pin->kept, pin->nkept);
	pin->kept = NULL;
	pin->nkept = 0;
	pin->kept_known = false;
}

/*
 * The names in a ParametersAction's parameters[] (at path) into out->kept:
 * what Jenkins kept of the trigger's (jk_pin). Entries without a string
 * name are skipped; parse_pin_params judges their shape.
 */
static void
parse_kept_names(const json_t *params, struct jk_pin *out)
{
	const json_t *v;
	const char *name;
	size_t i;

	out->kept_known = true;
	if (!json_is_array(params))
		return;
	out->kept = xcalloc(json_array_size(params) + 1, sizeof(char *));
	json_array_foreach(params, i, v)
		if ((name = json_string_value(json_object_get(v, "name"))))
			out->kept[out->nkept++] = xstrdup(name);
}

/*
 * The label-assigning parameter of a ParametersAction's parameters[] (at
 * path), as ParametersAction.getAssignedLabel picks it: the first value
 * whose getAssignedLabel is not null. Core's classes (String, Boolean,
 * Text ...) return null; the plugin's Node and Label values return their
 * label, exported as "value", null only when they have none. Told by
 * _class, which a client cannot choose: it names the job's declared
 * parameter type, whatever the value's text. 1 found, 0 none.
 */
static int
parse_pin_params(const json_t *params, struct jk_pin *out, const char *path, char *err,
    size_t errlen)
{
	char p[PATHLEN];
	const json_t *v;
	size_t i;

	if (!params || json_is_null(params))
		return 0;
	if (!json_is_array(params)) {
		jwrong(err, errlen, path, "parameters", "array", params);
		return -1;
	}
	json_array_foreach(params, i, v) {
		errmsg_set(p, sizeof(p), "%s%sparameters[%zu]", path, *path ? "." : "", i);
		if (!json_is_object(v)) {
			jwrong(err, errlen, p, "", "object", v);
			return -1;
		}
		if (!pin_class(v))
			continue;
		if (jstr(v, "value", false, NULL, &out->label, p, err, errlen) != JK_OK)
			return -1;
		if (!out->label)
			continue;	/* no label: assigns none, the next may */
		if (jstr(v, "name", true, NULL, &out->name, p, err, errlen) != JK_OK) {
			jk_pin_free(out);
			return -1;
		}
		return 1;
	}
	return 0;
}

/*
 * The pin of a queue item or build (root): in its actions[], the first
 * hudson.model.ParametersAction's assigning parameter (Queue.Item.
 * getAssignedLabel asks the LabelAssignmentActions in order; the trigger
 * makes one ParametersAction). Nothing found leaves out empty.
 */
static enum jk_err
parse_pin(const json_t *root, struct jk_pin *out, char *err, size_t errlen)
{
	const json_t *actions = json_object_get(root, "actions"), *a;
	char p[PATHLEN];
	const char *c;
	size_t i;
	int found;

	memset(out, 0, sizeof(*out));
	if (!actions || json_is_null(actions))
		return JK_OK;
	if (!json_is_array(actions))
		return jwrong(err, errlen, "", "actions", "array", actions);
	json_array_foreach(actions, i, a) {
		errmsg_set(p, sizeof(p), "actions[%zu]", i);
		if (!json_is_object(a))
			return jwrong(err, errlen, p, "", "object", a);
		c = json_string_value(json_object_get(a, "_class"));
		if (!c || strcmp(c, "hudson.model.ParametersAction") != 0)
			continue;
		if (!out->kept_known)
			parse_kept_names(json_object_get(a, "parameters"), out);
		if ((found = parse_pin_params(json_object_get(a, "parameters"), out, p, err,
		    errlen)) < 0)
			return JK_EPROTO;
		if (found)
			break;
	}
	return JK_OK;
}

/* ---- queue items ---- */

void
jk_queue_item_free(struct jk_queue_item *q)
{
	if (!q)
		return;
	free(q->why);
	free(q->build_url);
	jk_pin_free(&q->pin);
	memset(q, 0, sizeof(*q));
}

enum jk_err
jkmodel_parse_queue_item(const char *json, struct jk_queue_item *out, char *err, size_t errlen)
{
	json_t *root, *ex;
	long long id, num;
	bool cancelled;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	if ((e = jint(root, "id", true, 0, 1, LONG_MAX, &id, "", err, errlen)) != JK_OK ||
	    (e = jstr(root, "why", false, NULL, &out->why, "", err, errlen)) != JK_OK ||
	    (e = parse_pin(root, &out->pin, err, errlen)) != JK_OK ||
	    (e = jbool(root, "stuck", false, false, &out->stuck, "", err, errlen)) != JK_OK ||
	    (e = jbool(root, "blocked", false, false, &out->blocked, "", err, errlen)) != JK_OK ||
	    (e = jbool(root, "cancelled", false, false, &cancelled, "", err, errlen)) != JK_OK)
		goto fail;
	out->id = (long)id;
	out->state = JK_QUEUE_WAITING;
	/*
	 * "executable" and "cancelled" exist only once the item has left the
	 * queue. A left item with neither a build nor cancelled=true is one
	 * whose build is still being created: keep waiting.
	 */
	ex = json_object_get(root, "executable");
	if (ex && !json_is_null(ex)) {
		if (!json_is_object(ex)) {
			e = jwrong(err, errlen, "", "executable", "object", ex);
			goto fail;
		}
		if ((e = jint(ex, "number", true, 0, 0, INT_MAX, &num, "executable", err, errlen)) != JK_OK ||
		    (e = jstr(ex, "url", false, NULL, &out->build_url, "executable", err, errlen)) != JK_OK)
			goto fail;
		out->state = JK_QUEUE_STARTED;
		out->build_number = (int)num;
	} else if (cancelled) {
		out->state = JK_QUEUE_CANCELLED;
	} else {
		/* Only a LeftItem exports "cancelled" (jk_queue_item.left). */
		out->left = json_object_get(root, "cancelled") != NULL;
	}
	if (out->state != JK_QUEUE_WAITING) {
		free(out->why);
		out->why = NULL;
		out->blocked = false;
	}
	json_decref(root);
	return JK_OK;
fail:
	json_decref(root);
	jk_queue_item_free(out);
	return e;
}

/* ---- builds ---- */

void
jk_build_free(struct jk_build *b)
{
	if (!b)
		return;
	free(b->result);
	free(b->built_on);
	free(b->url);
	free(b->description);
	jk_pin_free(&b->pin);
	memset(b, 0, sizeof(*b));
}

enum jk_err
jkmodel_parse_build(const char *json, struct jk_build *out, char *err, size_t errlen)
{
	json_t *root;
	long long num, dur, est, ts, qid;
	enum jk_err e;

	memset(out, 0, sizeof(*out));
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	if ((e = jint(root, "number", true, 0, 0, INT_MAX, &num, "", err, errlen)) != JK_OK ||
	    (e = jbool(root, "building", true, false, &out->building, "", err, errlen)) != JK_OK ||
	    (e = jstr(root, "result", false, NULL, &out->result, "", err, errlen)) != JK_OK ||
	    (e = jint(root, "duration", false, 0, 0, LONG_MAX, &dur, "", err, errlen)) != JK_OK ||
	    (e = jint(root, "estimatedDuration", false, -1, -1, LONG_MAX, &est, "", err, errlen)) != JK_OK ||
	    (e = jint(root, "timestamp", false, 0, 0, LLONG_MAX, &ts, "", err, errlen)) != JK_OK ||
	    (e = jstr(root, "builtOn", false, NULL, &out->built_on, "", err, errlen)) != JK_OK ||
	    (e = jstr(root, "url", false, "", &out->url, "", err, errlen)) != JK_OK ||
	    /*
	     * -1 (Run.QUEUE_ID_UNKNOWN) until Run.setQueueId runs, which is
	     * after the run exists (Executor.run), and for records written
	     * before queueId was saved: a build, not a protocol error.
	     */
	    (e = jint(root, "queueId", false, 0, -1, LONG_MAX, &qid, "", err, errlen)) != JK_OK ||
	    (e = jstr(root, "description", false, NULL, &out->description, "", err, errlen)) != JK_OK ||
	    (e = parse_pin(root, &out->pin, err, errlen)) != JK_OK) {
		json_decref(root);
		jk_build_free(out);
		return e;
	}
	out->number = (int)num;
	out->pipeline = jk_build_is_pipeline(root);
	out->duration_ms = (long)dur;
	out->estimated_ms = (long)est;
	out->timestamp_ms = ts;
	out->queue_id = (long)qid;
	json_decref(root);
	return JK_OK;
}


/* ---- finding a build again: pages of the queue and of a job's builds ---- */

/* Has a queue item or build the parameter name = value (param_value)? */
static bool
has_param(const json_t *b, const char *name, const char *value)
{
	const char *v = param_value(b, name);

	return v && strcmp(v, value) == 0;
}

enum jk_err
jkmodel_find_queue(const char *json, const char *job_path, const char *name, const char *value,
    long *queue_id, char *err, size_t errlen)
{
	json_t *root, *items, *it;
	size_t i;

	*queue_id = 0;
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	items = json_object_get(root, "items");
	json_array_foreach(items, i, it) {
		const char *url = json_string_value(json_object_get(json_object_get(it, "task"), "url"));

		/*
		 * Jenkins writes task.url with Util.rawEncode ('+', '(' bare, '~'
		 * as %7E), job_path is ours: compared as decoded names, or an
		 * item of a job named "a+b" would never be found (issue 17).
		 */
		if (!url || !jkpath_same_job(url, job_path) ||
		    !has_param(it, name, value) || !json_is_integer(json_object_get(it, "id")))
			continue;
		*queue_id = (long)json_integer_value(json_object_get(it, "id"));
		break;
	}
	json_decref(root);
	return *queue_id ? JK_OK : JK_ENOTFOUND;
}

enum jk_err
jkmodel_find_build(const char *json, const char *name, const char *value, long queue_id,
    long long since_ms, int *number, int *scanned, bool *older, char *err, size_t errlen)
{
	json_t *root, *builds, *b, *ts;
	size_t i;

	*number = 0;
	*scanned = 0;
	*older = false;
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	builds = json_object_get(root, "builds");
	json_array_foreach(builds, i, b) {
		bool hit = (queue_id > 0 &&
		    json_integer_value(json_object_get(b, "queueId")) == queue_id) ||
		    (name && has_param(b, name, value));

		(*scanned)++;
		if (hit && json_is_integer(json_object_get(b, "number"))) {
			*number = (int)json_integer_value(json_object_get(b, "number"));
			break;
		}
		/* Newest first: one that started before the bound ends the search. */
		ts = json_object_get(b, "timestamp");
		if (since_ms > 0 && json_is_integer(ts) && json_integer_value(ts) < since_ms) {
			*older = true;
			break;
		}
	}
	json_decref(root);
	return *number ? JK_OK : JK_ENOTFOUND;
}

/* ---- config.xml ---- */

enum jk_err
jkmodel_parse_node_mode(const char *xml, enum jk_mode *mode, char *err, size_t errlen)
{
	struct xml_el *root, *m;
	enum jk_err e = JK_OK;
	char sub[SUBERRLEN];

	if (xml_parse(xml, &root, sub, sizeof(sub)) < 0) {
		errmsg_set(err, errlen, "malformed XML: %s", sub);
		return JK_EPROTO;
	}
	/* A direct child of the root: plugins may nest their own <mode>s. */
	if (!(m = xml_child(root, "mode"))) {
		errmsg_set(err, errlen, "node config.xml <%s> has no <mode>", root->name);
		e = JK_EPROTO;
	} else if (xml_text_is(m, "NORMAL")) {
		*mode = JK_MODE_NORMAL;
	} else if (xml_text_is(m, "EXCLUSIVE")) {
		*mode = JK_MODE_EXCLUSIVE;
	} else {
		errmsg_set(err, errlen, "node config.xml: unknown <mode> '%.*s'", VALUE_SHOWN,
		    m->text.s ? m->text.s : "");
		e = JK_EPROTO;
	}
	xml_free(root);
	return e;
}

/* The literal the NodeLabel Parameter plugin stores for "any node". */
#define ALL_NODES "ALL (no restriction)"

enum jk_err
jkmodel_parse_allowed_nodes(const char *xml, const char *param, bool *all,
    char ***names, size_t *n, char *err, size_t errlen)
{
	const struct xml_el *d, *list, *s;
	struct xml_el *root;
	char sub[SUBERRLEN];
	char **v = NULL;
	size_t nv = 0;

	*all = false;
	*names = NULL;
	*n = 0;
	if (xml_parse(xml, &root, sub, sizeof(sub)) < 0) {
		errmsg_set(err, errlen, "malformed XML: %s", sub);
		return JK_EPROTO;
	}
	for (d = root; d; d = xml_next(root, d)) {
		const struct xml_el *nm;

		if (xml_is(d, "NodeParameterDefinition") && d->parent &&
		    strcmp(d->parent->name, "parameterDefinitions") == 0 &&
		    (nm = xml_child(d, "name")) && xml_text_is(nm, param ? param : ""))
			break;
	}
	if (!d) {
		errmsg_set(err, errlen, "job config.xml has no Node parameter named '%s'",
		    param ? param : "");
		xml_free(root);
		return JK_ENOTFOUND;
	}
	list = xml_child(d, "allowedSlaves");
	for (s = list ? list->child : NULL; s; s = s->next) {
		const char *t;
		size_t len;

		if (strcmp(s->name, "string") != 0)
			continue;
		t = xml_trimmed(s, &len);
		if (len == strlen(ALL_NODES) && memcmp(t, ALL_NODES, len) == 0) {
			strv_free(v, nv);
			v = NULL;
			nv = 0;
			break;
		}
		if (len > 0)
			strv_push(&v, &nv, t, len);
	}
	xml_free(root);
	if (nv == 0) {
		*all = true;
		return JK_OK;
	}
	*names = v;
	*n = nv;
	return JK_OK;
}


/*
 * NodeParameterDefinition keeps allowMultiNodeSelection and
 * triggerConcurrentBuilds as fields (its constructor sets both from
 * triggerIfResult); createBuildWrapper and validateBuild read those two,
 * so they are what is read here. Absent: false, as Java leaves them.
 */
enum jk_err
jkmodel_parse_multi_node(const char *xml, const char *param, enum jk_multi_node *multi,
    char *err, size_t errlen)
{
	const struct xml_el *d, *nm, *m, *c;
	struct xml_el *root;
	char sub[SUBERRLEN];

	*multi = JK_MULTI_NONE;
	if (xml_parse(xml, &root, sub, sizeof(sub)) < 0) {
		errmsg_set(err, errlen, "malformed XML: %s", sub);
		return JK_EPROTO;
	}
	for (d = root; d; d = xml_next(root, d))
		if (xml_is(d, "NodeParameterDefinition") && d->parent &&
		    strcmp(d->parent->name, "parameterDefinitions") == 0 &&
		    (nm = xml_child(d, "name")) && xml_text_is(nm, param ? param : ""))
			break;
	if (d && (m = xml_child(d, "allowMultiNodeSelection")) && xml_text_is(m, "true")) {
		c = xml_child(d, "triggerConcurrentBuilds");
		*multi = c && xml_text_is(c, "true") ? JK_MULTI_CONCURRENT : JK_MULTI_SEQUENTIAL;
	}
	xml_free(root);
	return JK_OK;
}

enum jk_err
jkmodel_parse_job_buildable(const char *json, bool *buildable, char *err, size_t errlen)
{
	json_t *root;
	bool disabled;
	enum jk_err e;

	*buildable = false;
	if (!(root = jload(json, err, errlen)))
		return JK_EPROTO;
	if ((e = jbool(root, "buildable", true, false, buildable, "", err, errlen)) == JK_OK &&
	    (e = jbool(root, "disabled", false, false, &disabled, "", err, errlen)) == JK_OK)
		*buildable = *buildable && !disabled;
	json_decref(root);
	return e;
}
