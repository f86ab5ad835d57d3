/*
 * projmap: see projmap.h. The map is kept as jansson documents, already in
 * the shape clients receive, so answering a request is one lookup and one
 * dump. Everything is sorted before it is versioned so the version depends
 * only on the content.
 */
#include "projmap.h"
#include "label.h"

#include <jansson.h>

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct pm_jobname {
	char *full;
	char *name;
};

struct projmap {
	char     version[17];
	json_t  *whole;          /* {version, master, nodes[], jobs[], undispatchable[], ...} */
	json_t  *slices;         /* node name -> {version, master, node{}, functions[]} */
	size_t   nfunctions;
	size_t   nundispatchable;
	struct pm_jobname *names;
	size_t   nnames;
};

/* Per-job facts computed once, before the per-node pass. */
struct jobinfo {
	const struct jk_job *job;
	const struct pm_allowed *allowed;
	const char *pin;
	enum jk_param_kind pin_kind;
	struct label_expr *expr;
	char *base;              /* "build:$job" */
	const char *reason;      /* why not dispatchable, NULL if it is */
	char reason_buf[600];
	json_t *nodes;           /* names of nodes that may run it */
};

static uint64_t
fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;

	while (n--) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return h;
}

static void
set_version(json_t *doc, char out[17])
{
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

	snprintf(out, 17, "%016llx", text ? (unsigned long long)fnv1a(text, strlen(text)) : 0ULL);
	free(text);
	json_object_set_new(doc, "version", json_string(out));
}

/* A Gearman function name is usable when it fits libgearman and has no blanks. */
static const char *
function_name_problem(const char *name)
{
	const unsigned char *p;

	if (strlen(name) > PROJMAP_FUNCTION_MAX)
		return "function name longer than 512 bytes";
	for (p = (const unsigned char *)name; *p; p++)
		if (isspace(*p) || *p < 0x20 || *p == 0x7f)
			return "function name contains whitespace or control characters";
	return NULL;
}

static bool
has_label(const struct jk_node *n, const char *atom)
{
	size_t i;

	if (strcmp(n->name, atom) == 0)
		return true;
	for (i = 0; i < n->nlabels; i++)
		if (strcmp(n->labels[i], atom) == 0)
			return true;
	return false;
}

static bool
allowed_on(const struct pm_allowed *a, const char *node)
{
	size_t i;

	if (!a || a->all)
		return true;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->names[i], node) == 0)
			return true;
	return false;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_fn(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "name"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "name"));

	return strcmp(x, y);
}

/* Sort a JSON array of function objects by name (jansson has no sort). */
static json_t *
sorted_functions(json_t *arr)
{
	size_t n = json_array_size(arr), i;
	json_t **v = calloc(n ? n : 1, sizeof(*v)), *out = json_array();

	for (i = 0; i < n; i++)
		v[i] = json_array_get(arr, i);
	qsort(v, n, sizeof(*v), cmp_fn);
	for (i = 0; i < n; i++)
		json_array_append(out, v[i]);
	free(v);
	return out;
}

static void
jobinfo_prepare(struct jobinfo *ji, const struct pm_input *in)
{
	const struct jk_job *j = ji->job;
	char err[400];
	size_t i;

	ji->nodes = json_array();
	if (j->disabled) {
		ji->reason = "disabled";
		return;
	}
	if (!j->buildable) {
		ji->reason = "not buildable";
		return;
	}
	for (i = 0; i < j->nparams && !ji->pin; i++)
		if (j->params[i].kind == JK_PARAM_NODE) {
			ji->pin = j->params[i].name;
			ji->pin_kind = JK_PARAM_NODE;
		}
	for (i = 0; i < j->nparams && !ji->pin; i++)
		if (j->params[i].kind == JK_PARAM_LABEL) {
			ji->pin = j->params[i].name;
			ji->pin_kind = JK_PARAM_LABEL;
		}
	if (!ji->pin) {
		ji->reason = "no Node or Label parameter (NodeLabel Parameter plugin) to pin the build to a node";
		return;
	}
	if (ji->pin_kind == JK_PARAM_NODE && ji->allowed && !ji->allowed->known) {
		snprintf(ji->reason_buf, sizeof(ji->reason_buf),
		    "allowed nodes of parameter %s not read yet", ji->pin);
		ji->reason = ji->reason_buf;
		return;
	}
	if (j->label_expr) {
		ji->expr = label_parse(j->label_expr, err, sizeof(err));
		if (!ji->expr) {
			snprintf(ji->reason_buf, sizeof(ji->reason_buf),
			    "label expression '%s': %s", j->label_expr, err);
			ji->reason = ji->reason_buf;
			return;
		}
	}
	if (asprintf(&ji->base, "build:%s",
	    in->naming == FUNCTION_NAMES_FULL ? j->full_name : j->name) < 0) {
		ji->base = NULL;
		ji->reason = "out of memory";
		return;
	}
	if (function_name_problem(ji->base)) {
		snprintf(ji->reason_buf, sizeof(ji->reason_buf), "%s", function_name_problem(ji->base));
		ji->reason = ji->reason_buf;
	}
}

/* Two dispatchable jobs with one short name: neither is offered. */
static void
mark_collisions(struct jobinfo *ji, size_t n, json_t *collisions)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		json_t *jobs;

		if (ji[i].reason || !ji[i].base)
			continue;
		jobs = NULL;
		for (k = i + 1; k < n; k++) {
			if (ji[k].reason || !ji[k].base || strcmp(ji[i].base, ji[k].base) != 0)
				continue;
			if (!jobs) {
				jobs = json_array();
				json_array_append_new(jobs, json_string(ji[i].job->full_name));
			}
			json_array_append_new(jobs, json_string(ji[k].job->full_name));
		}
		if (!jobs)
			continue;
		json_array_append_new(collisions, json_pack("{s:s,s:o}", "function", ji[i].base, "jobs", jobs));
		for (k = i; k < n; k++) {
			if (ji[k].reason || !ji[k].base || strcmp(ji[i].base, ji[k].base) != 0 || k == i)
				continue;
			snprintf(ji[k].reason_buf, sizeof(ji[k].reason_buf),
			    "%s collides with another job of the same short name; set [coordinator] function_names = full",
			    ji[k].base);
			ji[k].reason = ji[k].reason_buf;
		}
		snprintf(ji[i].reason_buf, sizeof(ji[i].reason_buf),
		    "%s collides with another job of the same short name; set [coordinator] function_names = full",
		    ji[i].base);
		ji[i].reason = ji[i].reason_buf;
	}
}

static json_t *
node_json(const struct jk_node *n, enum jk_mode mode, bool known, bool online)
{
	char **labels = calloc(n->nlabels + 1, sizeof(*labels));
	size_t i, nl = 0;
	json_t *arr = json_array();

	for (i = 0; i < n->nlabels; i++)
		labels[nl++] = n->labels[i];
	qsort(labels, nl, sizeof(*labels), cmp_str);
	for (i = 0; i < nl; i++)
		if (i == 0 || strcmp(labels[i], labels[i - 1]) != 0)
			json_array_append_new(arr, json_string(labels[i]));
	/* The self label, should Jenkins have left it out. */
	if (!bsearch(&n->name, labels, nl, sizeof(*labels), cmp_str))
		json_array_append_new(arr, json_string(n->name));
	free(labels);
	return json_pack("{s:s,s:i,s:o,s:s,s:b}", "name", n->name, "executors", n->executors,
	    "labels", arr, "mode", !known ? "unknown" : mode == JK_MODE_EXCLUSIVE ? "EXCLUSIVE" : "NORMAL",
	    "online", online);
}

/* Add fname for job ji to the node's function list, unless it is taken. */
static void
add_function(json_t *fns, json_t *seen, json_t *skipped, const char *fname,
    const struct jobinfo *ji, const char *node)
{
	const char *problem = function_name_problem(fname);
	json_t *prev;

	if (problem) {
		json_array_append_new(skipped, json_pack("{s:s,s:s,s:s,s:s}", "function", fname,
		    "job", ji->job->full_name, "node", node, "reason", problem));
		return;
	}
	prev = json_object_get(seen, fname);
	if (prev) {
		if (strcmp(json_string_value(prev), ji->job->full_name) != 0)
			json_array_append_new(skipped, json_pack("{s:s,s:s,s:s,s:s}", "function", fname,
			    "job", ji->job->full_name, "node", node, "reason", "function name already used by another job"));
		return;
	}
	json_object_set_new(seen, fname, json_string(ji->job->full_name));
	json_array_append_new(fns, json_pack("{s:s,s:s,s:s}", "name", fname,
	    "job", ji->job->full_name, "pin", ji->pin));
}

struct projmap *
projmap_build(const struct pm_input *in)
{
	struct projmap *pm = calloc(1, sizeof(*pm));
	size_t nj = in->jobs->n, nn = in->nodes->n, i, k;
	struct jobinfo *ji = calloc(nj ? nj : 1, sizeof(*ji));
	json_t *nodes_arr = json_array(), *jobs_arr = json_array(), *undisp = json_array();
	json_t *collisions = json_array(), *skipped = json_array();
	size_t *order = calloc(nn ? nn : 1, sizeof(*order));

	if (!pm || !ji || !order)
		goto oom;
	pm->slices = json_object();
	pm->names = calloc(nj ? nj : 1, sizeof(*pm->names));
	pm->nnames = nj;

	for (i = 0; i < nj; i++) {
		ji[i].job = &in->jobs->jobs[i];
		ji[i].allowed = in->allowed ? &in->allowed[i] : NULL;
		jobinfo_prepare(&ji[i], in);
		pm->names[i].full = strdup(ji[i].job->full_name);
		pm->names[i].name = strdup(ji[i].job->name);
	}
	if (in->naming == FUNCTION_NAMES_SHORT)
		mark_collisions(ji, nj, collisions);

	/* Nodes in name order, so the output does not depend on Jenkins' order. */
	for (i = 0; i < nn; i++)
		order[i] = i;
	for (i = 1; i < nn; i++)
		for (k = i; k > 0 && strcmp(in->nodes->nodes[order[k - 1]].name,
		    in->nodes->nodes[order[k]].name) > 0; k--) {
			size_t t = order[k];
			order[k] = order[k - 1];
			order[k - 1] = t;
		}

	for (k = 0; k < nn; k++) {
		const struct jk_node *n = &in->nodes->nodes[order[k]];
		enum jk_mode mode = in->modes ? in->modes[order[k]] : JK_MODE_NORMAL;
		bool known = in->mode_known ? in->mode_known[order[k]] : true;
		bool online = !n->offline && !n->temp_offline;
		json_t *fns = json_array(), *seen = json_object(), *slice, *sorted;
		const char **labels = calloc(n->nlabels + 1, sizeof(*labels));
		size_t nl = 0;

		for (i = 0; i < n->nlabels; i++)
			labels[nl++] = n->labels[i];
		labels[nl++] = n->name;   /* the self label, even if Jenkins left it out */

		for (i = 0; online && n->executors > 0 && i < nj; i++) {
			struct jobinfo *j = &ji[i];
			const char *const *atoms;
			size_t na, a;
			bool ok;

			if (j->reason)
				continue;
			if (j->expr)
				ok = label_eval(j->expr, labels, nl);
			else
				ok = known && mode == JK_MODE_NORMAL;
			if (!ok || (j->pin_kind == JK_PARAM_NODE && !allowed_on(j->allowed, n->name)))
				continue;
			json_array_append_new(j->nodes, json_string(n->name));
			add_function(fns, seen, skipped, j->base, j, n->name);
			if (!j->expr)
				continue;
			na = label_atoms(j->expr, &atoms);
			for (a = 0; a < na; a++) {
				char *fname;

				if (!has_label(n, atoms[a]))
					continue;
				if (asprintf(&fname, "%s:%s", j->base, atoms[a]) < 0)
					continue;
				add_function(fns, seen, skipped, fname, j, n->name);
				free(fname);
			}
		}
		free(labels);
		json_decref(seen);
		sorted = sorted_functions(fns);
		json_decref(fns);
		pm->nfunctions += json_array_size(sorted);

		slice = json_pack("{s:s,s:o,s:o}", "master", in->master,
		    "node", node_json(n, mode, known, online), "functions", sorted);
		{
			char v[17];
			set_version(slice, v);
		}
		json_object_set(pm->slices, n->name, slice);
		json_array_append_new(nodes_arr, json_pack("{s:O,s:O}",
		    "node", json_object_get(slice, "node"), "functions", json_object_get(slice, "functions")));
		json_decref(slice);
	}

	for (i = 0; i < nj; i++) {
		struct jobinfo *j = &ji[i];

		if (j->reason) {
			pm->nundispatchable++;
			json_array_append_new(undisp, json_pack("{s:s,s:s}", "job", j->job->full_name,
			    "reason", j->reason));
		} else {
			json_array_append_new(jobs_arr, json_pack("{s:s,s:s,s:s,s:s?,s:O}",
			    "job", j->job->full_name, "function", j->base, "pin", j->pin,
			    "label", j->job->label_expr, "nodes", j->nodes));
		}
	}

	pm->whole = json_pack("{s:s,s:o,s:o,s:o,s:o,s:o}", "master", in->master,
	    "nodes", nodes_arr, "jobs", jobs_arr, "undispatchable", undisp,
	    "collisions", collisions, "skipped", skipped);
	if (!pm->whole || !pm->slices)
		goto oom;
	set_version(pm->whole, pm->version);

	for (i = 0; i < nj; i++) {
		label_free(ji[i].expr);
		free(ji[i].base);
		json_decref(ji[i].nodes);
	}
	free(ji);
	free(order);
	return pm;
oom:
	free(ji);
	free(order);
	projmap_free(pm);
	return NULL;
}

void
projmap_free(struct projmap *pm)
{
	size_t i;

	if (!pm)
		return;
	json_decref(pm->whole);
	json_decref(pm->slices);
	for (i = 0; i < pm->nnames; i++) {
		free(pm->names[i].full);
		free(pm->names[i].name);
	}
	free(pm->names);
	free(pm);
}

const char *
projmap_version(const struct projmap *pm)
{
	return pm->version;
}

size_t
projmap_nfunctions(const struct projmap *pm)
{
	return pm->nfunctions;
}

size_t
projmap_nundispatchable(const struct projmap *pm)
{
	return pm->nundispatchable;
}

char *
projmap_answer(const struct projmap *pm, const char *req, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *r, *node, *version, *slice;
	const char *key;
	json_t *val;
	char *out = NULL;

	if (len == 0) {
		req = "{}";
		len = 2;
	}
	r = json_loadb(req, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!r) {
		snprintf(err, errlen, "argument is not valid JSON: %s (at %d)", jerr.text, jerr.position);
		return NULL;
	}
	if (!json_is_object(r)) {
		snprintf(err, errlen, "argument must be a JSON object like {\"node\":\"NAME\"}");
		goto out;
	}
	json_object_foreach(r, key, val) {
		if (strcmp(key, "node") != 0 && strcmp(key, "version") != 0) {
			snprintf(err, errlen, "unknown key \"%s\" (allowed: node, version)", key);
			goto out;
		}
	}
	node = json_object_get(r, "node");
	version = json_object_get(r, "version");
	if (version && !json_is_string(version)) {
		snprintf(err, errlen, "\"version\" must be a string");
		goto out;
	}
	if (!node) {
		if (version && strcmp(json_string_value(version), pm->version) == 0) {
			json_t *u = json_pack("{s:s,s:b}", "version", pm->version, "unchanged", 1);
			out = json_dumps(u, JSON_COMPACT | JSON_SORT_KEYS);
			json_decref(u);
		} else
			out = json_dumps(pm->whole, JSON_COMPACT | JSON_SORT_KEYS);
		goto out;
	}
	if (!json_is_string(node)) {
		snprintf(err, errlen, "\"node\" must be a string");
		goto out;
	}
	slice = json_object_get(pm->slices, json_string_value(node));
	if (!slice) {
		snprintf(err, errlen, "node \"%s\" is not a node of this master", json_string_value(node));
		goto out;
	}
	if (version && strcmp(json_string_value(version),
	    json_string_value(json_object_get(slice, "version"))) == 0) {
		json_t *u = json_pack("{s:O,s:b}", "version", version, "unchanged", 1);
		out = json_dumps(u, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(u);
	} else
		out = json_dumps(slice, JSON_COMPACT | JSON_SORT_KEYS);
out:
	json_decref(r);
	return out;
}

const char *
projmap_find_job(const struct projmap *pm, const char *name, char *err, size_t errlen)
{
	const char *found = NULL;
	size_t i, hits = 0;

	for (i = 0; i < pm->nnames; i++)
		if (strcasecmp(pm->names[i].full, name) == 0)
			return pm->names[i].full;
	for (i = 0; i < pm->nnames; i++) {
		if (strcasecmp(pm->names[i].name, name) == 0) {
			if (!found)
				found = pm->names[i].full;
			hits++;
		}
	}
	if (hits == 1)
		return found;
	if (hits > 1)
		snprintf(err, errlen, "job name \"%s\" is ambiguous: %zu jobs in different folders have it; "
		    "send the full name (e.g. \"%s\")", name, hits, found);
	else
		snprintf(err, errlen, "no job named \"%s\" on this master", name);
	return NULL;
}
