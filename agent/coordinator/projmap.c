/*
 * projmap: see projmap.h.
 *
 * The map is kept compact: per node, an array of (job, function) index
 * pairs into per-job function names; JSON text is written only when a
 * client asks, one slice at a time. A master with 10,000 jobs and 50 nodes
 * has about 400,000 (node, function) pairs: as jansson objects they took
 * 650 MB and seconds of malloc; as pairs they take 3 MB.
 *
 * Everything is sorted before it is versioned, so a version depends only
 * on the content: a slice's version is a hash of its node and of each
 * function's job, name and pin in name order; the whole map's a hash of
 * the slices' versions and the job lists.
 */
#include "projmap.h"
#include "label.h"

#include <jansson.h>

#include <ctype.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct pm_job {
	char              *full;       /* full name */
	char              *name;       /* short name */
	char              *label;      /* label expression, NULL if none */
	char              *pin;        /* parameter that pins the build */
	enum jk_param_kind pin_kind;
	const char        *reason;     /* why not dispatchable, NULL if it is */
	char              *reason_own; /* reason, when made for this job (set_reason) */
	struct label_expr *expr;
	char             **fnames;     /* [0] build:$job, [1 + a] build:$job:$atom a */
	size_t             nfnames;
};

struct pm_fn {
	uint32_t job;
	uint32_t k;                    /* index into the job's fnames */
};

struct pm_node {
	char         *name;
	int           executors;
	char        **labels;          /* sorted, distinct, with the self label */
	size_t        nlabels;
	const char   *mode;            /* NORMAL, EXCLUSIVE or unknown */
	bool          online;
	struct pm_fn *fns;             /* sorted by function name */
	size_t        nfns;
	char          version[17];
};

struct projmap {
	char            version[17];
	char           *master;
	struct pm_job  *jobs;          /* in Jenkins' order */
	size_t          njobs;
	struct pm_node *nodes;         /* by name */
	size_t          nnodes;
	json_t         *collisions;    /* [{function, jobs[]}] */
	json_t         *skipped;       /* [{function, job, node, reason}] */
	size_t          nfunctions;
	size_t          nundispatchable;
};

/* ---- a growing text buffer for the answers ---- */

struct sb {
	char  *p;
	size_t len, cap;
	bool   oom;
};

static void
sb_add(struct sb *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;
		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(np = realloc(b->p, cap))) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_lit(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* A JSON string, escaped as jansson escapes it (UTF-8 kept, "/" not escaped). */
static void
sb_str(struct sb *b, const char *s)
{
	const char *run = s;

	sb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		sb_add(b, run, (size_t)(s - run));
		switch (c) {
		case '"':  sb_lit(b, "\\\""); break;
		case '\\': sb_lit(b, "\\\\"); break;
		case '\b': sb_lit(b, "\\b"); break;
		case '\f': sb_lit(b, "\\f"); break;
		case '\n': sb_lit(b, "\\n"); break;
		case '\r': sb_lit(b, "\\r"); break;
		case '\t': sb_lit(b, "\\t"); break;
		default:
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			sb_lit(b, esc);
		}
		run = s + 1;
	}
	sb_add(b, run, (size_t)(s - run));
	sb_add(b, "\"", 1);
}

static void
sb_json(struct sb *b, const json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

	if (!t)
		b->oom = true;
	else
		sb_lit(b, t);
	free(t);
}

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
hex_version(const struct sb *b, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)fnv1a(b->p ? b->p : "", b->len));
}

/* ---- rules ---- */

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

/* Why job j is not dispatchable (NULL if it is); sets its pin and expression. */
/* Why pj is not dispatchable, formatted; "out of memory" if it cannot be. */
static void __attribute__((format(printf, 2, 3)))
set_reason(struct pm_job *pj, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(pj->reason_own);
	va_start(ap, fmt);
	n = vasprintf(&pj->reason_own, fmt, ap);
	va_end(ap);
	if (n < 0)
		pj->reason_own = NULL;
	pj->reason = pj->reason_own ? pj->reason_own : "out of memory";
}

static void
job_prepare(struct pm_job *pj, const struct jk_job *j, const struct pm_allowed *allowed,
    enum jk_param_kind *pin_kind, const struct pm_input *in)
{
	const char *pin = NULL, *const *atoms;
	char err[400];
	size_t i, na;

	*pin_kind = JK_PARAM_OTHER;
	if (j->disabled) {
		pj->reason = "disabled";
		return;
	}
	if (!j->buildable) {
		pj->reason = "not buildable";
		return;
	}
	for (i = 0; i < j->nparams && !pin; i++)
		if (j->params[i].kind == JK_PARAM_NODE) {
			pin = j->params[i].name;
			*pin_kind = JK_PARAM_NODE;
		}
	for (i = 0; i < j->nparams && !pin; i++)
		if (j->params[i].kind == JK_PARAM_LABEL) {
			pin = j->params[i].name;
			*pin_kind = JK_PARAM_LABEL;
		}
	if (!pin) {
		pj->reason = "no Node or Label parameter (NodeLabel Parameter plugin) to pin the build to a node";
		return;
	}
	pj->pin = strdup(pin);
	if (*pin_kind == JK_PARAM_NODE && allowed && !allowed->known) {
		set_reason(pj, "allowed nodes of parameter %s not read yet", pin);
		return;
	}
	if (j->label_expr) {
		pj->expr = label_parse(j->label_expr, err, sizeof(err));
		if (!pj->expr) {
			set_reason(pj, "label expression '%s': %s", j->label_expr, err);
			return;
		}
	}
	na = pj->expr ? label_atoms(pj->expr, &atoms) : 0;
	pj->fnames = calloc(na + 1, sizeof(char *));
	if (!pj->fnames || asprintf(&pj->fnames[0], "build:%s",
	    in->naming == FUNCTION_NAMES_FULL ? j->full_name : j->name) < 0) {
		pj->reason = "out of memory";
		return;
	}
	pj->nfnames = 1;
	for (i = 0; i < na; i++)
		if (asprintf(&pj->fnames[pj->nfnames], "%s:%s", pj->fnames[0], atoms[i]) >= 0)
			pj->nfnames++;
	if (function_name_problem(pj->fnames[0])) {
		set_reason(pj, "%s", function_name_problem(pj->fnames[0]));
	}
}

/* Sort order of job indices by base function name, then index (qsort_r, arg: the map). */
static int
cmp_base(const void *a, const void *b, void *arg)
{
	const struct projmap *pm = arg;
	const struct pm_job *x = &pm->jobs[*(const uint32_t *)a];
	const struct pm_job *y = &pm->jobs[*(const uint32_t *)b];
	int c = strcmp(x->fnames[0], y->fnames[0]);

	return c ? c : (*(const uint32_t *)a > *(const uint32_t *)b) - (*(const uint32_t *)a < *(const uint32_t *)b);
}

static int
cmp_fn(const void *a, const void *b, void *arg)
{
	const struct projmap *pm = arg;
	const struct pm_fn *x = a, *y = b;
	int c = strcmp(pm->jobs[x->job].fnames[x->k], pm->jobs[y->job].fnames[y->k]);

	if (c)
		return c;
	return x->job != y->job ? (x->job > y->job) - (x->job < y->job) : (x->k > y->k) - (x->k < y->k);
}

/* Two dispatchable jobs with one short name: neither is offered. */
static void
mark_collisions(struct projmap *pm)
{
	uint32_t *ord = calloc(pm->njobs + 1, sizeof(*ord));
	size_t i, k, n = 0;

	if (!ord)
		return;
	for (i = 0; i < pm->njobs; i++)
		if (!pm->jobs[i].reason)
			ord[n++] = (uint32_t)i;
	qsort_r(ord, n, sizeof(*ord), cmp_base, pm);
	/* Groups are reported in the order of their first job, like Jenkins lists them. */
	for (i = 0; i < pm->njobs; i++) {
		struct pm_job *first = &pm->jobs[i];
		json_t *jobs;
		size_t lo, hi;

		if (first->reason || !first->fnames)
			continue;
		/* find i's group in ord (binary search on the base name) */
		lo = 0;
		hi = n;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (strcmp(pm->jobs[ord[mid]].fnames[0], first->fnames[0]) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (ord[lo] != i || lo + 1 >= n || strcmp(pm->jobs[ord[lo + 1]].fnames[0], first->fnames[0]) != 0)
			continue;
		jobs = json_array();
		for (k = lo; k < n && strcmp(pm->jobs[ord[k]].fnames[0], first->fnames[0]) == 0; k++)
			json_array_append_new(jobs, json_string(pm->jobs[ord[k]].full));
		json_array_append_new(pm->collisions, json_pack("{s:s,s:o}", "function", first->fnames[0],
		    "jobs", jobs));
		for (k = lo; k < n && strcmp(pm->jobs[ord[k]].fnames[0], first->fnames[0]) == 0; k++) {
			struct pm_job *pj = &pm->jobs[ord[k]];
			set_reason(pj,
			    "%s collides with another job of the same short name; set [coordinator] function_names = full",
			    pj->fnames[0]);
		}
	}
	free(ord);
}

/* ---- rendering ---- */

static void
put_node(struct sb *b, const struct pm_node *n)
{
	char num[32];
	size_t i;

	snprintf(num, sizeof(num), "%d", n->executors);
	sb_lit(b, "{\"executors\":");
	sb_lit(b, num);
	sb_lit(b, ",\"labels\":[");
	for (i = 0; i < n->nlabels; i++) {
		if (i)
			sb_lit(b, ",");
		sb_str(b, n->labels[i]);
	}
	sb_lit(b, "],\"mode\":");
	sb_str(b, n->mode);
	sb_lit(b, ",\"name\":");
	sb_str(b, n->name);
	sb_lit(b, n->online ? ",\"online\":true}" : ",\"online\":false}");
}

static void
put_functions(struct sb *b, const struct projmap *pm, const struct pm_node *n)
{
	size_t i;

	sb_lit(b, "[");
	for (i = 0; i < n->nfns; i++) {
		const struct pm_job *j = &pm->jobs[n->fns[i].job];
		sb_lit(b, i ? ",{\"job\":" : "{\"job\":");
		sb_str(b, j->full);
		sb_lit(b, ",\"name\":");
		sb_str(b, j->fnames[n->fns[i].k]);
		sb_lit(b, ",\"pin\":");
		sb_str(b, j->pin);
		sb_lit(b, "}");
	}
	sb_lit(b, "]");
}

/* {"functions","master","node","version"}: keys in order, as JSON_SORT_KEYS would. */
static void
put_slice(struct sb *b, const struct projmap *pm, const struct pm_node *n)
{
	sb_lit(b, "{\"functions\":");
	put_functions(b, pm, n);
	sb_lit(b, ",\"master\":");
	sb_str(b, pm->master);
	sb_lit(b, ",\"node\":");
	put_node(b, n);
	sb_lit(b, ",\"version\":");
	sb_str(b, n->version);
	sb_lit(b, "}");
}

/* "jobs": the dispatchable ones; with the nodes that may run each unless NULL. */
static void
put_jobs(struct sb *b, const struct projmap *pm, char ***nodes, size_t *nnodes)
{
	size_t i, k, nj = 0;

	sb_lit(b, "\"jobs\":[");
	for (i = 0; i < pm->njobs; i++) {
		const struct pm_job *j = &pm->jobs[i];
		if (j->reason)
			continue;
		sb_lit(b, nj++ ? ",{\"function\":" : "{\"function\":");
		sb_str(b, j->fnames[0]);
		sb_lit(b, ",\"job\":");
		sb_str(b, j->full);
		if (j->label) {
			sb_lit(b, ",\"label\":");
			sb_str(b, j->label);
		}
		if (nodes) {
			sb_lit(b, ",\"nodes\":[");
			for (k = 0; k < nnodes[i]; k++) {
				if (k)
					sb_lit(b, ",");
				sb_str(b, nodes[i][k]);
			}
			sb_lit(b, "]");
		}
		sb_lit(b, ",\"pin\":");
		sb_str(b, j->pin);
		sb_lit(b, "}");
	}
	sb_lit(b, "]");
}

static void
put_undispatchable(struct sb *b, const struct projmap *pm)
{
	size_t i, nu = 0;

	sb_lit(b, "\"undispatchable\":[");
	for (i = 0; i < pm->njobs; i++) {
		const struct pm_job *j = &pm->jobs[i];
		if (!j->reason)
			continue;
		sb_lit(b, nu++ ? ",{\"job\":" : "{\"job\":");
		sb_str(b, j->full);
		sb_lit(b, ",\"reason\":");
		sb_str(b, j->reason);
		sb_lit(b, "}");
	}
	sb_lit(b, "]");
}

static char *
render_whole(const struct projmap *pm)
{
	struct sb b = { 0 };
	char ***nodes = calloc(pm->njobs + 1, sizeof(*nodes));
	size_t *nn = calloc(pm->njobs + 1, sizeof(*nn)), i, k;

	if (!nodes || !nn) {
		free(nodes);
		free(nn);
		return NULL;
	}
	/* Which nodes may run each job: those that offer its build:$job. */
	for (k = 0; k < pm->nnodes; k++)
		for (i = 0; i < pm->nodes[k].nfns; i++) {
			const struct pm_fn *f = &pm->nodes[k].fns[i];
			if (f->k != 0)
				continue;
			if (!nodes[f->job])
				nodes[f->job] = calloc(pm->nnodes + 1, sizeof(char *));
			if (nodes[f->job])
				nodes[f->job][nn[f->job]++] = pm->nodes[k].name;
		}
	sb_lit(&b, "{\"collisions\":");
	sb_json(&b, pm->collisions);
	sb_lit(&b, ",");
	put_jobs(&b, pm, nodes, nn);
	sb_lit(&b, ",\"master\":");
	sb_str(&b, pm->master);
	sb_lit(&b, ",\"nodes\":[");
	for (k = 0; k < pm->nnodes; k++) {
		sb_lit(&b, k ? ",{\"functions\":" : "{\"functions\":");
		put_functions(&b, pm, &pm->nodes[k]);
		sb_lit(&b, ",\"node\":");
		put_node(&b, &pm->nodes[k]);
		sb_lit(&b, "}");
	}
	sb_lit(&b, "],\"skipped\":");
	sb_json(&b, pm->skipped);
	sb_lit(&b, ",");
	put_undispatchable(&b, pm);
	sb_lit(&b, ",\"version\":");
	sb_str(&b, pm->version);
	sb_lit(&b, "}");
	for (i = 0; i < pm->njobs; i++)
		free(nodes[i]);
	free(nodes);
	free(nn);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* ---- building ---- */

static int
cmp_node(const void *a, const void *b)
{
	return strcmp(((const struct pm_node *)a)->name, ((const struct pm_node *)b)->name);
}

/*
 * What every node's pass needs, computed once per build: the label atoms
 * of all jobs interned in one table, and every (job, function) pair in
 * name order, with a hash of what a slice says about it.
 */
struct pm_index {
	const char  **atoms;       /* distinct atoms, sorted */
	size_t        natoms;
	uint32_t    **job_atoms;   /* per job: its atoms' ids, in label_atoms order */
	struct pm_fn *all;         /* every function of every dispatchable job, by name */
	size_t        nall;
	uint64_t     *hash;        /* per entry of all: hash of job, name and pin */
	const char  **problem;     /* per entry of all: why the name is unusable, or NULL */
	bool         *same_as_prev; /* per entry of all: same name as the entry before */
};

static void
index_free(struct pm_index *x, size_t njobs)
{
	size_t i;

	for (i = 0; x->job_atoms && i < njobs; i++)
		free(x->job_atoms[i]);
	free(x->job_atoms);
	free(x->atoms);
	free(x->all);
	free(x->hash);
	free(x->problem);
	free(x->same_as_prev);
}

static uint64_t
fnv1a_more(uint64_t h, const char *s)
{
	do {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	} while (*s++);
	return h;
}

static int
index_build(const struct projmap *pm, struct pm_index *x)
{
	size_t i, a, g, n = 0, total = 0;

	memset(x, 0, sizeof(*x));
	x->job_atoms = calloc(pm->njobs + 1, sizeof(*x->job_atoms));
	if (!x->job_atoms)
		return -1;
	for (i = 0; i < pm->njobs; i++)
		if (!pm->jobs[i].reason)
			total += pm->jobs[i].nfnames;
	x->atoms = calloc(total + 1, sizeof(*x->atoms));
	x->all = calloc(total + 1, sizeof(*x->all));
	x->hash = calloc(total + 1, sizeof(*x->hash));
	x->problem = calloc(total + 1, sizeof(*x->problem));
	x->same_as_prev = calloc(total + 1, sizeof(*x->same_as_prev));
	if (!x->atoms || !x->all || !x->hash || !x->problem || !x->same_as_prev)
		return -1;
	for (i = 0; i < pm->njobs; i++) {
		const char *const *atoms;
		size_t na;
		if (pm->jobs[i].reason)
			continue;
		na = label_atoms(pm->jobs[i].expr, &atoms);
		for (a = 0; a < na; a++)
			x->atoms[n++] = atoms[a];
		for (a = 0; a < pm->jobs[i].nfnames; a++)
			x->all[x->nall++] = (struct pm_fn){ (uint32_t)i, (uint32_t)a };
	}
	qsort(x->atoms, n, sizeof(*x->atoms), cmp_str);
	for (i = 0; i < n; i++)
		if (x->natoms == 0 || strcmp(x->atoms[x->natoms - 1], x->atoms[i]) != 0)
			x->atoms[x->natoms++] = x->atoms[i];
	for (i = 0; i < pm->njobs; i++) {
		const char *const *atoms;
		size_t na;
		if (pm->jobs[i].reason)
			continue;
		na = label_atoms(pm->jobs[i].expr, &atoms);
		if (!(x->job_atoms[i] = calloc(na + 1, sizeof(uint32_t))))
			return -1;
		for (a = 0; a < na; a++) {
			const char **hit = bsearch(&atoms[a], x->atoms, x->natoms, sizeof(*x->atoms), cmp_str);
			x->job_atoms[i][a] = (uint32_t)(hit - x->atoms);
		}
	}
	qsort_r(x->all, x->nall, sizeof(*x->all), cmp_fn, (void *)pm);
	for (g = 0; g < x->nall; g++) {
		const struct pm_job *j = &pm->jobs[x->all[g].job];
		const char *name = j->fnames[x->all[g].k];
		x->hash[g] = fnv1a_more(fnv1a_more(fnv1a_more(1469598103934665603ULL, j->full), name), j->pin);
		x->problem[g] = x->all[g].k ? function_name_problem(name) : NULL;
		x->same_as_prev[g] = g > 0 && strcmp(pm->jobs[x->all[g - 1].job].fnames[x->all[g - 1].k], name) == 0;
	}
	return 0;
}

/* The functions node n offers, in name order, and its slice version; records skipped names. */
static int
node_functions(struct projmap *pm, const struct pm_index *x, struct pm_node *pn, const struct jk_node *n,
    enum jk_mode mode, bool known, const struct pm_allowed *allowed)
{
	bool *has = calloc(x->natoms + 1, sizeof(bool)), *ok = calloc(pm->njobs + 1, sizeof(bool));
	bool truth[64];
	struct sb b = { 0 };
	uint64_t h;
	size_t i, a, g, nf = 0;

	if (!has || !ok)
		goto fail;
	for (a = 0; a < x->natoms; a++)
		has[a] = has_label(n, x->atoms[a]);
	for (i = 0; pn->online && n->executors > 0 && i < pm->njobs; i++) {
		const struct pm_job *j = &pm->jobs[i];
		const char *const *atoms;
		size_t na;

		if (j->reason)
			continue;
		if (!j->expr)
			ok[i] = known && mode == JK_MODE_NORMAL;
		else if ((na = label_atoms(j->expr, &atoms)) <= sizeof(truth) / sizeof(truth[0])) {
			for (a = 0; a < na; a++)
				truth[a] = has[x->job_atoms[i][a]];
			ok[i] = label_eval_atoms(j->expr, truth);
		} else {
			const char **labels = calloc(n->nlabels + 2, sizeof(*labels));
			if (!labels)
				goto fail;
			for (a = 0; a < n->nlabels; a++)
				labels[a] = n->labels[a];
			labels[a] = n->name;
			ok[i] = label_eval(j->expr, labels, n->nlabels + 1);
			free(labels);
		}
		if (ok[i] && j->pin_kind == JK_PARAM_NODE && allowed && !allowed_on(&allowed[i], n->name))
			ok[i] = false;
	}
	if (!(pn->fns = calloc(x->nall + 1, sizeof(*pn->fns))))
		goto fail;
	put_node(&b, pn);
	if (b.oom)
		goto fail;
	h = fnv1a(b.p, b.len);
	for (g = 0; g < x->nall; g++) {
		const struct pm_fn f = x->all[g];
		const struct pm_job *j = &pm->jobs[f.job];

		if (!ok[f.job] || (f.k && !has[x->job_atoms[f.job][f.k - 1]]))
			continue;
		if (x->problem[g]) {
			json_array_append_new(pm->skipped, json_pack("{s:s,s:s,s:s,s:s}", "function",
			    j->fnames[f.k], "job", j->full, "node", n->name, "reason", x->problem[g]));
			continue;
		}
		/* One job per function name: a later job with a taken name is skipped. */
		if (x->same_as_prev[g] && nf > 0 && strcmp(pm->jobs[pn->fns[nf - 1].job].fnames[pn->fns[nf - 1].k],
		    j->fnames[f.k]) == 0) {
			json_array_append_new(pm->skipped, json_pack("{s:s,s:s,s:s,s:s}", "function",
			    j->fnames[f.k], "job", j->full, "node", n->name,
			    "reason", "function name already used by another job"));
			continue;
		}
		pn->fns[nf++] = f;
		h = (h ^ x->hash[g]) * 1099511628211ULL;
		h ^= h >> 29;
	}
	pn->nfns = nf;
	pm->nfunctions += nf;
	{
		/* Room was made for every function of the master; keep what the node has. */
		struct pm_fn *fit = realloc(pn->fns, (nf + 1) * sizeof(*pn->fns));
		if (fit)
			pn->fns = fit;
	}
	snprintf(pn->version, sizeof(pn->version), "%016llx", (unsigned long long)h);
	free(b.p);
	free(has);
	free(ok);
	return 0;
fail:
	free(b.p);
	free(has);
	free(ok);
	return -1;
}

struct projmap *
projmap_build(const struct pm_input *in)
{
	struct projmap *pm = calloc(1, sizeof(*pm));
	size_t nj = in->jobs->n, nn = in->nodes->n, i, k;
	struct pm_index x = { 0 };
	struct sb b = { 0 };

	if (!pm)
		return NULL;
	pm->master = strdup(in->master);
	pm->jobs = calloc(nj + 1, sizeof(*pm->jobs));
	pm->nodes = calloc(nn + 1, sizeof(*pm->nodes));
	pm->collisions = json_array();
	pm->skipped = json_array();
	if (!pm->master || !pm->jobs || !pm->nodes || !pm->collisions || !pm->skipped)
		goto oom;
	pm->njobs = nj;
	for (i = 0; i < nj; i++) {
		const struct jk_job *j = &in->jobs->jobs[i];
		struct pm_job *pj = &pm->jobs[i];
		enum jk_param_kind kind;

		pj->full = strdup(j->full_name);
		pj->name = strdup(j->name);
		pj->label = j->label_expr ? strdup(j->label_expr) : NULL;
		job_prepare(pj, j, in->allowed ? &in->allowed[i] : NULL, &kind, in);
		pj->pin_kind = kind;
		if (!pj->full || !pj->name)
			goto oom;
	}
	if (in->naming == FUNCTION_NAMES_SHORT)
		mark_collisions(pm);

	if (index_build(pm, &x) < 0)
		goto oom;
	/* Nodes in name order, so the output does not depend on Jenkins' order. */
	pm->nnodes = nn;
	for (k = 0; k < nn; k++) {
		const struct jk_node *n = &in->nodes->nodes[k];
		struct pm_node *pn = &pm->nodes[k];
		enum jk_mode mode = in->modes ? in->modes[k] : JK_MODE_NORMAL;
		bool known = in->mode_known ? in->mode_known[k] : true;

		pn->name = strdup(n->name);
		pn->executors = n->executors;
		pn->mode = !known ? "unknown" : mode == JK_MODE_EXCLUSIVE ? "EXCLUSIVE" : "NORMAL";
		pn->online = !n->offline && !n->temp_offline;
		pn->labels = calloc(n->nlabels + 2, sizeof(char *));
		if (!pn->name || !pn->labels)
			goto oom;
		for (i = 0; i < n->nlabels; i++)
			pn->labels[pn->nlabels++] = strdup(n->labels[i]);
		qsort(pn->labels, pn->nlabels, sizeof(char *), cmp_str);
		for (i = 1; i < pn->nlabels; i++)   /* distinct */
			if (strcmp(pn->labels[i], pn->labels[i - 1]) == 0) {
				free(pn->labels[i]);
				memmove(&pn->labels[i], &pn->labels[i + 1], (pn->nlabels - i - 1) * sizeof(char *));
				pn->nlabels--;
				i--;
			}
		/* The self label, should Jenkins have left it out. */
		if (!bsearch(&n->name, pn->labels, pn->nlabels, sizeof(char *), cmp_str))
			pn->labels[pn->nlabels++] = strdup(n->name);
		if (node_functions(pm, &x, pn, n, mode, known, in->allowed) < 0)
			goto oom;
	}
	/* Keep the node facts in name order (each node_functions used its input index above). */
	qsort(pm->nodes, nn, sizeof(*pm->nodes), cmp_node);

	/* The whole map's version: the slices' versions and the job lists. */
	sb_str(&b, pm->master);
	for (k = 0; k < nn; k++)
		sb_add(&b, pm->nodes[k].version, 16);
	put_jobs(&b, pm, NULL, NULL);
	put_undispatchable(&b, pm);
	sb_json(&b, pm->collisions);
	sb_json(&b, pm->skipped);
	if (b.oom)
		goto oom;
	hex_version(&b, pm->version);
	for (i = 0; i < nj; i++)
		if (pm->jobs[i].reason)
			pm->nundispatchable++;
	free(b.p);
	index_free(&x, nj);
	return pm;
oom:
	free(b.p);
	index_free(&x, nj);
	projmap_free(pm);
	return NULL;
}

void
projmap_free(struct projmap *pm)
{
	size_t i, k;

	if (!pm)
		return;
	for (i = 0; pm->jobs && i < pm->njobs; i++) {
		struct pm_job *j = &pm->jobs[i];
		free(j->full);
		free(j->name);
		free(j->label);
		free(j->pin);
		free(j->reason_own);
		label_free(j->expr);
		for (k = 0; k < j->nfnames; k++)
			free(j->fnames[k]);
		free(j->fnames);
	}
	for (i = 0; pm->nodes && i < pm->nnodes; i++) {
		struct pm_node *n = &pm->nodes[i];
		free(n->name);
		for (k = 0; k < n->nlabels; k++)
			free(n->labels[k]);
		free(n->labels);
		free(n->fns);
	}
	free(pm->jobs);
	free(pm->nodes);
	free(pm->master);
	json_decref(pm->collisions);
	json_decref(pm->skipped);
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

static char *
unchanged(const char *version)
{
	struct sb b = { 0 };

	sb_lit(&b, "{\"unchanged\":true,\"version\":");
	sb_str(&b, version);
	sb_lit(&b, "}");
	return b.oom ? (free(b.p), NULL) : b.p;
}

char *
projmap_answer(const struct projmap *pm, const char *req, size_t len, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *r, *node, *version, *val;
	const struct pm_node *n = NULL;
	const char *key;
	char *out = NULL;
	size_t lo, hi;

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
		if (version && strcmp(json_string_value(version), pm->version) == 0)
			out = unchanged(pm->version);
		else if (!(out = render_whole(pm)))
			snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (!json_is_string(node)) {
		snprintf(err, errlen, "\"node\" must be a string");
		goto out;
	}
	for (lo = 0, hi = pm->nnodes; lo < hi;) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(pm->nodes[mid].name, json_string_value(node));
		if (c == 0) {
			n = &pm->nodes[mid];
			break;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!n) {
		snprintf(err, errlen, "node \"%s\" is not a node of this master", json_string_value(node));
		goto out;
	}
	if (version && strcmp(json_string_value(version), n->version) == 0)
		out = unchanged(n->version);
	else {
		struct sb b = { 0 };
		put_slice(&b, pm, n);
		if (b.oom) {
			free(b.p);
			snprintf(err, errlen, "out of memory");
		} else
			out = b.p;
	}
out:
	json_decref(r);
	return out;
}

const char *
projmap_find_job(const struct projmap *pm, const char *name, char *err, size_t errlen)
{
	const char *found = NULL;
	size_t i, hits = 0;

	for (i = 0; i < pm->njobs; i++)
		if (strcasecmp(pm->jobs[i].full, name) == 0)
			return pm->jobs[i].full;
	for (i = 0; i < pm->njobs; i++) {
		if (strcasecmp(pm->jobs[i].name, name) == 0) {
			if (!found)
				found = pm->jobs[i].full;
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
