/*
 * projmap: see projmap.h.
 *
 * The map is kept compact: per node, an array of (job, function) index
 * pairs into per-job function names; JSON text is written only when a
 * client asks, one slice at a time. A large master has hundreds of
 * thousands of (node, function) pairs: a few bytes each, where a JSON
 * object each would cost hundreds of megabytes and seconds of malloc.
 *
 * Everything is sorted before it is versioned, so a version depends only
 * on the content: a slice's version is a hash of its node and of each
 * function's job, name and pin in name order; the whole map's a hash of
 * the slices' versions and the job lists.
 */
#include "projmap.h"

#include "buf.h"
#include "label.h"
#include "strvec.h"
#include "xalloc.h"

#include <jansson.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* FNV-1a, 64 bits: a version must be the same on every coordinator, so no seeded hash. */
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME  1099511628211ULL
/* A version is a 64-bit hash in hex. */
#define VERSION_HEX 16
/*
 * Expressions with at most this many atoms are evaluated from a table of
 * which atoms the node has (label_eval_atoms); longer ones, rare, from the
 * node's label list.
 */
#define EVAL_ATOMS_MAX 64

/* A declared parameter, as the whole map lists it for clients (job_params_copy). */
struct pm_param {
	char *name;
	char *type;                    /* Jenkins' simple class name, e.g. StringParameterDefinition */
};

struct pm_job {
	char              *full;       /* full name */
	char              *name;       /* short name */
	char              *label;      /* label expression, NULL if none */
	char              *pin;        /* parameter that pins the build */
	enum jk_param_kind pin_kind;
	bool               pipeline;   /* a Pipeline job (WorkflowJob) */
	const char        *reason;     /* why not dispatchable, NULL if it is */
	char              *reason_own; /* reason, when made for this job (set_reason) */
	struct label_expr *expr;
	char             **fnames;     /* [0] build:$job, [1 + a] build:$job:$atom a */
	size_t             nfnames;
	struct pm_param   *params;     /* its declared parameters, in Jenkins' order */
	size_t             nparams;
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
	char          version[VERSION_HEX + 1];
};

struct projmap {
	char            version[VERSION_HEX + 1];
	char           *master;
	char           *url;           /* the master's URL, as agents compare it */
	struct pm_job  *jobs;          /* in Jenkins' order */
	size_t          njobs;
	struct pm_node *nodes;         /* by name */
	size_t          nnodes;
	json_t         *collisions;    /* [{function, jobs[]}] */
	json_t         *skipped;       /* [{function, job, node, reason}] */
	size_t          nfunctions;
	size_t          nundispatchable;
};

/* What makes one answer unlike another: when it was made, and the request's nonce. */
struct pm_stamp {
	long long   issued_ms;
	const char *nonce;          /* NULL if the request had none */
};

/* ---- JSON text for the answers ---- */

static void
put_json(struct buf *b, const json_t *v)
{
	char *t = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);

	buf_adds(b, t);
	free(t);
}

static uint64_t
fnv1a(const char *s, size_t n)
{
	uint64_t h = FNV_OFFSET;

	while (n--) {
		h ^= (unsigned char)*s++;
		h *= FNV_PRIME;
	}
	return h;
}

static void
hex_version(const struct buf *b, char out[VERSION_HEX + 1])
{
	snprintf(out, VERSION_HEX + 1, "%016llx", (unsigned long long)fnv1a(b->s ? b->s : "", b->len));
}

/* ---- rules ---- */

/*
 * A Gearman function name is usable when it fits libgearman and has no
 * control character. The binary protocol carries any byte but NUL; the
 * admin text protocol ends lines at LF (CR), separates the columns of
 * "status" by TAB, so those (and every other control character, and DEL)
 * are refused. Spaces are legal in Jenkins job names and common: the
 * gearman CLI, Perl's Gearman::Client and gearmand's "status" handle them
 * (tests/test_names.py); only "workers" (functions joined by spaces) and
 * the admin commands that take a function name ("drop function",
 * "maxqueue") cannot tell "build:a b" from two names, which no client
 * needs to submit a job (issue 17).
 */
static const char *
function_name_problem(const char *name)
{
	const unsigned char *p;

	if (strlen(name) > PROJMAP_FUNCTION_MAX)
		return "function name longer than 512 bytes";
	for (p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return "function name contains a control character (TAB, CR, LF, ...), "
			    "which gearmand's admin protocol cannot carry";
	return NULL;
}

static bool
has_label(const struct jk_node *n, const char *atom)
{
	return strcmp(n->name, atom) == 0 || strv_has(n->labels, n->nlabels, atom);
}

static bool
allowed_on(const struct pm_allowed *a, const char *node)
{
	return !a || a->all || strv_has(a->names, a->n, node);
}

/* pj is not dispatchable, for this reason of its own (malloc'd, taken over). */
static void
set_reason(struct pm_job *pj, char *reason)
{
	free(pj->reason_own);
	pj->reason_own = reason;
	pj->reason = reason;
}

/*
 * The parameter that pins j's build to a node: its first Node parameter,
 * else its first Label parameter; NULL if it has neither.
 */
static const char *
job_pin(const struct jk_job *j, enum jk_param_kind *kind)
{
	size_t i;

	for (i = 0; i < j->nparams; i++)
		if (j->params[i].kind == JK_PARAM_NODE) {
			*kind = JK_PARAM_NODE;
			return j->params[i].name;
		}
	for (i = 0; i < j->nparams; i++)
		if (j->params[i].kind == JK_PARAM_LABEL) {
			*kind = JK_PARAM_LABEL;
			return j->params[i].name;
		}
	*kind = JK_PARAM_OTHER;
	return NULL;
}

/*
 * Why a job whose Node parameter lets a build choose several nodes cannot
 * be built at all, or NULL. The NodeLabel Parameter plugin then adds a
 * TriggerNextBuildWrapper to every build (NodeParameterDefinition.
 * createBuildWrapper), whose setUp calls validateBuild: it throws, and the
 * build fails, whenever the job's concurrentBuild differs from the
 * parameter's triggerConcurrentBuilds. Offering such a job would fail
 * every build it is given.
 */
static char *
multi_node_problem(const struct jk_job *j, const char *pin, const struct pm_allowed *allowed)
{
	if (!allowed || allowed->multi == JK_MULTI_NONE)
		return NULL;
	if (allowed->multi == JK_MULTI_CONCURRENT && !j->concurrent)
		return xasprintf("Node parameter %s allows several nodes with concurrent builds, but the "
		    "job does not run builds concurrently: Jenkins fails every build of it "
		    "(NodeParameterDefinition.validateBuild)", pin);
	if (allowed->multi == JK_MULTI_SEQUENTIAL && j->concurrent)
		return xasprintf("Node parameter %s allows several nodes built one after another, but "
		    "the job runs builds concurrently: Jenkins fails every build of it "
		    "(NodeParameterDefinition.validateBuild)", pin);
	return NULL;
}

/*
 * A Pipeline run takes an executor only when its script reaches node(X),
 * through a placeholder queued for X; the node agent that took the job
 * counts the run against its executors, so X must be that node: only a
 * Node parameter names one node (node(params.NAME)). A Label parameter
 * lets the placeholder land on any node of the label, another agent's
 * executor, uncounted.
 */
static const char *
pipeline_problem(const struct pm_job *pj)
{
	if (!pj->pipeline || pj->pin_kind == JK_PARAM_NODE)
		return NULL;
	return "Pipeline job without a Node parameter: its node() step could take an executor the "
	    "node agents do not count; declare a Node parameter (NodeLabel Parameter plugin) and "
	    "run the script's steps in node(params.NAME)";
}

/* Set pj's pin, label expression and function names, or why it is not dispatchable. */
static void
job_prepare(struct pm_job *pj, const struct jk_job *j, const struct pm_allowed *allowed,
    enum function_names naming)
{
	const char *pin, *const *atoms, *problem;
	char err[400], *multi;
	size_t i, na;

	pj->pin_kind = JK_PARAM_OTHER;
	if (j->disabled) {
		pj->reason = "disabled";
		return;
	}
	if (!j->buildable) {
		pj->reason = "not buildable";
		return;
	}
	if (!(pin = job_pin(j, &pj->pin_kind))) {
		pj->reason = "no Node or Label parameter (NodeLabel Parameter plugin) to pin the build to a node";
		return;
	}
	pj->pin = xstrdup(pin);
	if ((pj->pipeline = j->pipeline) && (pj->reason = pipeline_problem(pj)))
		return;
	if (pj->pin_kind == JK_PARAM_NODE && allowed && !allowed->known) {
		set_reason(pj, xasprintf("allowed nodes of parameter %s not read yet", pin));
		return;
	}
	/* BuildWrappers are freestyle's: a Pipeline run never gets the wrapper. */
	if (pj->pin_kind == JK_PARAM_NODE && !pj->pipeline &&
	    (multi = multi_node_problem(j, pin, allowed))) {
		set_reason(pj, multi);
		return;
	}
	if (j->label_expr && !(pj->expr = label_parse(j->label_expr, err, sizeof(err)))) {
		set_reason(pj, xasprintf("label expression '%s': %s", j->label_expr, err));
		return;
	}
	na = pj->expr ? label_atoms(pj->expr, &atoms) : 0;
	pj->fnames = xcalloc(na + 1, sizeof(char *));
	pj->fnames[0] = xasprintf("build:%s", naming == FUNCTION_NAMES_FULL ? j->full_name : j->name);
	pj->nfnames = 1;
	for (i = 0; i < na; i++)
		pj->fnames[pj->nfnames++] = xasprintf("%s:%s", pj->fnames[0], atoms[i]);
	if ((problem = function_name_problem(pj->fnames[0])))
		set_reason(pj, xstrdup(problem));
}

/*
 * pj's declared parameters, copied from Jenkins' job: the whole map lists
 * them (put_params) so that a client can tell which of its parameters the
 * job will drop. Jenkins' buildWithParameters reads only the declared ones
 * (ParametersDefinitionProperty.buildWithParameters); the rest are lost
 * without a word. Node slices do not carry them: agents learn what
 * Jenkins kept from the queue item they read anyway (executor.c).
 */
static void
job_params_copy(struct pm_job *pj, const struct jk_job *j)
{
	size_t i;

	pj->params = xcalloc(j->nparams + 1, sizeof(*pj->params));
	for (i = 0; i < j->nparams; i++) {
		pj->params[i].name = xstrdup(j->params[i].name);
		pj->params[i].type = xstrdup(j->params[i].type ? j->params[i].type : "");
	}
	pj->nparams = j->nparams;
}

static void
job_params_free(struct pm_job *pj)
{
	size_t i;

	for (i = 0; i < pj->nparams; i++) {
		free(pj->params[i].name);
		free(pj->params[i].type);
	}
	free(pj->params);
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
	uint32_t *ord = xcalloc(pm->njobs + 1, sizeof(*ord));
	size_t i, k, n = 0;

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
			set_reason(pj, xasprintf("%s collides with another job of the same short name; "
			    "set [coordinator] function_names = full", pj->fnames[0]));
		}
	}
	free(ord);
}

/* ---- rendering ---- */

static void
put_node(struct buf *b, const struct pm_node *n)
{
	size_t i;

	buf_addf(b, "{\"executors\":%d,\"labels\":[", n->executors);
	for (i = 0; i < n->nlabels; i++) {
		if (i)
			buf_adds(b, ",");
		buf_add_json_str(b, n->labels[i]);
	}
	buf_adds(b, "],\"mode\":");
	buf_add_json_str(b, n->mode);
	buf_adds(b, ",\"name\":");
	buf_add_json_str(b, n->name);
	buf_adds(b, n->online ? ",\"online\":true}" : ",\"online\":false}");
}

static void
put_functions(struct buf *b, const struct projmap *pm, const struct pm_node *n)
{
	size_t i;

	buf_adds(b, "[");
	for (i = 0; i < n->nfns; i++) {
		const struct pm_job *j = &pm->jobs[n->fns[i].job];
		buf_adds(b, i ? ",{\"job\":" : "{\"job\":");
		buf_add_json_str(b, j->full);
		buf_adds(b, ",\"name\":");
		buf_add_json_str(b, j->fnames[n->fns[i].k]);
		buf_adds(b, ",\"pin\":");
		buf_add_json_str(b, j->pin);
		buf_adds(b, "}");
	}
	buf_adds(b, "]");
}

/* ,"nonce":NONCE if the request had one: the requester's check that the answer is for it. */
static void
put_nonce(struct buf *b, const struct pm_stamp *st)
{
	if (st->nonce) {
		buf_adds(b, ",\"nonce\":");
		buf_add_json_str(b, st->nonce);
	}
}

/* {"functions","issued_ms","master","node","nonce","url","version"}: keys in order, as JSON_SORT_KEYS would. */
static void
put_slice(struct buf *b, const struct projmap *pm, const struct pm_node *n, const struct pm_stamp *st)
{
	buf_adds(b, "{\"functions\":");
	put_functions(b, pm, n);
	buf_addf(b, ",\"issued_ms\":%lld,\"master\":", st->issued_ms);
	buf_add_json_str(b, pm->master);
	buf_adds(b, ",\"node\":");
	put_node(b, n);
	put_nonce(b, st);
	buf_adds(b, ",\"url\":");
	buf_add_json_str(b, pm->url);
	buf_adds(b, ",\"version\":");
	buf_add_json_str(b, n->version);
	buf_adds(b, "}");
}

/* ,"parameters":[{"name","type"}...]: j's declared parameters (job_params_copy). */
static void
put_params(struct buf *b, const struct pm_job *j)
{
	size_t i;

	buf_adds(b, ",\"parameters\":[");
	for (i = 0; i < j->nparams; i++) {
		buf_adds(b, i ? ",{\"name\":" : "{\"name\":");
		buf_add_json_str(b, j->params[i].name);
		buf_adds(b, ",\"type\":");
		buf_add_json_str(b, j->params[i].type);
		buf_adds(b, "}");
	}
	buf_adds(b, "]");
}

/*
 * "jobs": the dispatchable ones; with the nodes that may run each unless
 * NULL; only the job whose build:$job is only, unless NULL.
 */
static void
put_jobs(struct buf *b, const struct projmap *pm, char ***nodes, size_t *nnodes, const char *only)
{
	size_t i, k, nj = 0;

	buf_adds(b, "\"jobs\":[");
	for (i = 0; i < pm->njobs; i++) {
		const struct pm_job *j = &pm->jobs[i];
		if (j->reason || (only && strcmp(j->fnames[0], only) != 0))
			continue;
		buf_adds(b, nj++ ? ",{\"function\":" : "{\"function\":");
		buf_add_json_str(b, j->fnames[0]);
		buf_adds(b, ",\"job\":");
		buf_add_json_str(b, j->full);
		if (j->label) {
			buf_adds(b, ",\"label\":");
			buf_add_json_str(b, j->label);
		}
		if (nodes) {
			buf_adds(b, ",\"nodes\":[");
			for (k = 0; k < nnodes[i]; k++) {
				if (k)
					buf_adds(b, ",");
				buf_add_json_str(b, nodes[i][k]);
			}
			buf_adds(b, "]");
		}
		put_params(b, j);
		buf_adds(b, ",\"pin\":");
		buf_add_json_str(b, j->pin);
		if (j->pipeline)	/* offered: its script must use node(params.<pin>) */
			buf_adds(b, ",\"pipeline\":true");
		buf_adds(b, "}");
	}
	buf_adds(b, "]");
}

static void
put_undispatchable(struct buf *b, const struct projmap *pm)
{
	size_t i, nu = 0;

	buf_adds(b, "\"undispatchable\":[");
	for (i = 0; i < pm->njobs; i++) {
		const struct pm_job *j = &pm->jobs[i];
		if (!j->reason)
			continue;
		buf_adds(b, nu++ ? ",{\"job\":" : "{\"job\":");
		buf_add_json_str(b, j->full);
		buf_adds(b, ",\"reason\":");
		buf_add_json_str(b, j->reason);
		buf_adds(b, "}");
	}
	buf_adds(b, "]");
}

static char *
render_whole(const struct projmap *pm, const struct pm_stamp *st)
{
	struct buf b = { 0 };
	char ***nodes = xcalloc(pm->njobs + 1, sizeof(*nodes));
	size_t *nn = xcalloc(pm->njobs + 1, sizeof(*nn)), i, k;

	/* Which nodes may run each job: those that offer its build:$job. */
	for (k = 0; k < pm->nnodes; k++)
		for (i = 0; i < pm->nodes[k].nfns; i++) {
			const struct pm_fn *f = &pm->nodes[k].fns[i];
			if (f->k != 0)
				continue;
			if (!nodes[f->job])
				nodes[f->job] = xcalloc(pm->nnodes + 1, sizeof(char *));
			nodes[f->job][nn[f->job]++] = pm->nodes[k].name;
		}
	buf_adds(&b, "{\"collisions\":");
	put_json(&b, pm->collisions);
	buf_addf(&b, ",\"issued_ms\":%lld,", st->issued_ms);
	put_jobs(&b, pm, nodes, nn, NULL);
	buf_adds(&b, ",\"master\":");
	buf_add_json_str(&b, pm->master);
	buf_adds(&b, ",\"nodes\":[");
	for (k = 0; k < pm->nnodes; k++) {
		buf_adds(&b, k ? ",{\"functions\":" : "{\"functions\":");
		put_functions(&b, pm, &pm->nodes[k]);
		buf_adds(&b, ",\"node\":");
		put_node(&b, &pm->nodes[k]);
		buf_adds(&b, "}");
	}
	buf_adds(&b, "]");
	put_nonce(&b, st);
	buf_adds(&b, ",\"skipped\":");
	put_json(&b, pm->skipped);
	buf_adds(&b, ",");
	put_undispatchable(&b, pm);
	buf_adds(&b, ",\"url\":");
	buf_add_json_str(&b, pm->url);
	buf_adds(&b, ",\"version\":");
	buf_add_json_str(&b, pm->version);
	buf_adds(&b, "}");
	for (i = 0; i < pm->njobs; i++)
		free(nodes[i]);
	free(nodes);
	free(nn);
	return buf_take(&b);
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
		h *= FNV_PRIME;
	} while (*s++);
	return h;
}

/* x->atoms: every atom of every dispatchable job, once, sorted; x->job_atoms: each job's, as ids. */
static void
index_atoms(const struct projmap *pm, struct pm_index *x, size_t total)
{
	size_t i, a, n = 0;

	x->atoms = xcalloc(total + 1, sizeof(*x->atoms));
	for (i = 0; i < pm->njobs; i++) {
		const char *const *atoms;
		size_t na;
		if (pm->jobs[i].reason)
			continue;
		na = label_atoms(pm->jobs[i].expr, &atoms);
		for (a = 0; a < na; a++)
			x->atoms[n++] = atoms[a];
	}
	qsort(x->atoms, n, sizeof(*x->atoms), strv_cmp);
	for (i = 0; i < n; i++)
		if (x->natoms == 0 || strcmp(x->atoms[x->natoms - 1], x->atoms[i]) != 0)
			x->atoms[x->natoms++] = x->atoms[i];
	x->job_atoms = xcalloc(pm->njobs + 1, sizeof(*x->job_atoms));
	for (i = 0; i < pm->njobs; i++) {
		const char *const *atoms;
		size_t na;
		if (pm->jobs[i].reason)
			continue;
		na = label_atoms(pm->jobs[i].expr, &atoms);
		x->job_atoms[i] = xcalloc(na + 1, sizeof(uint32_t));
		for (a = 0; a < na; a++) {
			const char **hit = bsearch(&atoms[a], x->atoms, x->natoms, sizeof(*x->atoms), strv_cmp);
			x->job_atoms[i][a] = (uint32_t)(hit - x->atoms);
		}
	}
}

static void
index_build(const struct projmap *pm, struct pm_index *x)
{
	size_t i, a, g, total = 0;

	memset(x, 0, sizeof(*x));
	for (i = 0; i < pm->njobs; i++)
		if (!pm->jobs[i].reason)
			total += pm->jobs[i].nfnames;
	/* A job has at least as many function names as atoms: total bounds both. */
	index_atoms(pm, x, total);
	x->all = xcalloc(total + 1, sizeof(*x->all));
	x->hash = xcalloc(total + 1, sizeof(*x->hash));
	x->problem = xcalloc(total + 1, sizeof(*x->problem));
	x->same_as_prev = xcalloc(total + 1, sizeof(*x->same_as_prev));
	for (i = 0; i < pm->njobs; i++)
		for (a = 0; !pm->jobs[i].reason && a < pm->jobs[i].nfnames; a++)
			x->all[x->nall++] = (struct pm_fn){ (uint32_t)i, (uint32_t)a };
	qsort_r(x->all, x->nall, sizeof(*x->all), cmp_fn, (void *)pm);
	for (g = 0; g < x->nall; g++) {
		const struct pm_job *j = &pm->jobs[x->all[g].job];
		const char *name = j->fnames[x->all[g].k];
		x->hash[g] = fnv1a_more(fnv1a_more(fnv1a_more(FNV_OFFSET, j->full), name), j->pin);
		x->problem[g] = x->all[g].k ? function_name_problem(name) : NULL;
		x->same_as_prev[g] = g > 0 && strcmp(pm->jobs[x->all[g - 1].job].fnames[x->all[g - 1].k], name) == 0;
	}
}

/* Does job j's label expression hold on node n? has: which of x's atoms n has. */
static bool
node_matches(const struct pm_index *x, const struct pm_job *j, size_t i, const struct jk_node *n,
    const bool *has)
{
	const char *const *atoms;
	const char **labels;
	bool truth[EVAL_ATOMS_MAX], ok;
	size_t a, na = label_atoms(j->expr, &atoms);

	if (na <= EVAL_ATOMS_MAX) {
		for (a = 0; a < na; a++)
			truth[a] = has[x->job_atoms[i][a]];
		return label_eval_atoms(j->expr, truth);
	}
	labels = xcalloc(n->nlabels + 2, sizeof(*labels));
	for (a = 0; a < n->nlabels; a++)
		labels[a] = n->labels[a];
	labels[a] = n->name;
	ok = label_eval(j->expr, labels, n->nlabels + 1);
	free(labels);
	return ok;
}

/* ok[i]: may node n run job i? (online with executors, label, mode, allowedSlaves) */
static void
node_eligible(const struct projmap *pm, const struct pm_index *x, const struct pm_node *pn,
    const struct jk_node *n, enum jk_mode mode, bool known, const struct pm_allowed *allowed,
    const bool *has, bool *ok)
{
	size_t i;

	for (i = 0; pn->online && n->executors > 0 && i < pm->njobs; i++) {
		const struct pm_job *j = &pm->jobs[i];

		if (j->reason)
			continue;
		if (!j->expr)
			ok[i] = known && mode == JK_MODE_NORMAL;
		else
			ok[i] = node_matches(x, j, i, n, has);
		if (ok[i] && j->pin_kind == JK_PARAM_NODE && allowed && !allowed_on(&allowed[i], n->name))
			ok[i] = false;
	}
}

static void
skip_function(struct projmap *pm, const struct pm_job *j, const char *fname, const char *node,
    const char *reason)
{
	json_array_append_new(pm->skipped, json_pack("{s:s,s:s,s:s,s:s}", "function", fname,
	    "job", j->full, "node", node, "reason", reason));
}

/* The functions node n offers, in name order, and its slice version; records skipped names. */
static void
node_functions(struct projmap *pm, const struct pm_index *x, struct pm_node *pn, const struct jk_node *n,
    enum jk_mode mode, bool known, const struct pm_allowed *allowed)
{
	bool *has = xcalloc(x->natoms + 1, sizeof(bool)), *ok = xcalloc(pm->njobs + 1, sizeof(bool));
	struct buf b = { 0 };
	uint64_t h;
	size_t a, g, nf = 0;

	for (a = 0; a < x->natoms; a++)
		has[a] = has_label(n, x->atoms[a]);
	node_eligible(pm, x, pn, n, mode, known, allowed, has, ok);
	pn->fns = xcalloc(x->nall + 1, sizeof(*pn->fns));
	put_node(&b, pn);
	h = fnv1a(b.s, b.len);
	for (g = 0; g < x->nall; g++) {
		const struct pm_fn f = x->all[g];
		const struct pm_job *j = &pm->jobs[f.job];

		if (!ok[f.job] || (f.k && !has[x->job_atoms[f.job][f.k - 1]]))
			continue;
		if (x->problem[g]) {
			skip_function(pm, j, j->fnames[f.k], n->name, x->problem[g]);
			continue;
		}
		/* One job per function name: a later job with a taken name is skipped. */
		if (x->same_as_prev[g] && nf > 0 && strcmp(pm->jobs[pn->fns[nf - 1].job].fnames[pn->fns[nf - 1].k],
		    j->fnames[f.k]) == 0) {
			skip_function(pm, j, j->fnames[f.k], n->name, "function name already used by another job");
			continue;
		}
		pn->fns[nf++] = f;
		h = (h ^ x->hash[g]) * FNV_PRIME;
		h ^= h >> 29;    /* the multiply carries low bits up only; this carries high bits down */
	}
	pn->nfns = nf;
	pm->nfunctions += nf;
	/* Room was made for every function of the master; keep what the node has. */
	pn->fns = xreallocarray(pn->fns, nf + 1, sizeof(*pn->fns));
	snprintf(pn->version, sizeof(pn->version), "%016llx", (unsigned long long)h);
	buf_free(&b);
	free(has);
	free(ok);
}

/* pn's facts from Jenkins' n: its labels sorted and distinct, with the self label. */
static void
node_prepare(struct pm_node *pn, const struct jk_node *n, enum jk_mode mode, bool known)
{
	size_t i;

	pn->name = xstrdup(n->name);
	pn->executors = n->executors;
	pn->mode = !known ? "unknown" : mode == JK_MODE_EXCLUSIVE ? "EXCLUSIVE" : "NORMAL";
	pn->online = !n->offline && !n->temp_offline;
	pn->labels = xcalloc(n->nlabels + 2, sizeof(char *));
	for (i = 0; i < n->nlabels; i++)
		pn->labels[pn->nlabels++] = xstrdup(n->labels[i]);
	strv_sort(pn->labels, pn->nlabels);
	for (i = 1; i < pn->nlabels; i++)   /* distinct */
		if (strcmp(pn->labels[i], pn->labels[i - 1]) == 0) {
			free(pn->labels[i]);
			memmove(&pn->labels[i], &pn->labels[i + 1], (pn->nlabels - i - 1) * sizeof(char *));
			pn->nlabels--;
			i--;
		}
	/* The self label, should Jenkins have left it out. */
	if (!strv_sorted_has(pn->labels, pn->nlabels, n->name))
		pn->labels[pn->nlabels++] = xstrdup(n->name);
}

/* The whole map's version: the slices' versions and the job lists. */
static void
map_version(struct projmap *pm)
{
	struct buf b = { 0 };
	size_t k;

	buf_add_json_str(&b, pm->master);
	buf_add_json_str(&b, pm->url);
	for (k = 0; k < pm->nnodes; k++)
		buf_add(&b, pm->nodes[k].version, VERSION_HEX);
	put_jobs(&b, pm, NULL, NULL, NULL);
	put_undispatchable(&b, pm);
	put_json(&b, pm->collisions);
	put_json(&b, pm->skipped);
	hex_version(&b, pm->version);
	buf_free(&b);
}

struct projmap *
projmap_build(const struct pm_input *in)
{
	struct projmap *pm = xcalloc(1, sizeof(*pm));
	size_t nj = in->jobs->n, nn = in->nodes->n, i, k;
	struct pm_index x;

	pm->master = xstrdup(in->master);
	pm->url = xstrdup(in->url ? in->url : "");
	pm->jobs = xcalloc(nj + 1, sizeof(*pm->jobs));
	pm->nodes = xcalloc(nn + 1, sizeof(*pm->nodes));
	pm->collisions = json_array();
	pm->skipped = json_array();
	pm->njobs = nj;
	for (i = 0; i < nj; i++) {
		const struct jk_job *j = &in->jobs->jobs[i];
		struct pm_job *pj = &pm->jobs[i];

		pj->full = xstrdup(j->full_name);
		pj->name = xstrdup(j->name);
		pj->label = j->label_expr ? xstrdup(j->label_expr) : NULL;
		job_prepare(pj, j, in->allowed ? &in->allowed[i] : NULL, in->naming);
		if (!pj->reason)
			job_params_copy(pj, j);
	}
	if (in->naming == FUNCTION_NAMES_SHORT)
		mark_collisions(pm);

	index_build(pm, &x);
	pm->nnodes = nn;
	for (k = 0; k < nn; k++) {
		enum jk_mode mode = in->modes ? in->modes[k] : JK_MODE_NORMAL;
		bool known = in->mode_known ? in->mode_known[k] : true;

		node_prepare(&pm->nodes[k], &in->nodes->nodes[k], mode, known);
		node_functions(pm, &x, &pm->nodes[k], &in->nodes->nodes[k], mode, known, in->allowed);
	}
	/* Nodes in name order, so the output does not depend on Jenkins' order. */
	qsort(pm->nodes, nn, sizeof(*pm->nodes), cmp_node);
	map_version(pm);
	for (i = 0; i < nj; i++)
		if (pm->jobs[i].reason)
			pm->nundispatchable++;
	index_free(&x, nj);
	return pm;
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
		job_params_free(j);
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
	free(pm->url);
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
unchanged(const struct projmap *pm, const char *version, const struct pm_stamp *st)
{
	struct buf b = { 0 };

	buf_addf(&b, "{\"issued_ms\":%lld", st->issued_ms);
	put_nonce(&b, st);
	buf_adds(&b, ",\"unchanged\":true,\"url\":");
	buf_add_json_str(&b, pm->url);
	buf_adds(&b, ",\"version\":");
	buf_add_json_str(&b, version);
	buf_adds(&b, "}");
	return buf_take(&b);
}

static const struct pm_node *
node_find(const struct projmap *pm, const char *name)
{
	size_t lo = 0, hi = pm->nnodes;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(pm->nodes[mid].name, name);
		if (c == 0)
			return &pm->nodes[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The node's slice, or {"unchanged":true} if version is its current one. */
static char *
answer_slice(const struct projmap *pm, const struct pm_node *n, const json_t *version,
    const struct pm_stamp *st)
{
	struct buf b = { 0 };

	if (version && strcmp(json_string_value(version), n->version) == 0)
		return unchanged(pm, n->version, st);
	put_slice(&b, pm, n, st);
	return buf_take(&b);
}

/*
 * The answer to {"function":"build:JOB"}: the dispatchable job offered
 * under that base function, as the whole map lists it but without its
 * nodes ("jobs": [] if none). What a client asks before it submits (the
 * CLI's check of its parameters): a few hundred bytes, where the whole
 * map of a large master is megabytes.
 */
static char *
answer_function(const struct projmap *pm, const char *fn, const struct pm_stamp *st)
{
	struct buf b = { 0 };

	buf_adds(&b, "{\"function\":");
	buf_add_json_str(&b, fn);
	buf_addf(&b, ",\"issued_ms\":%lld,", st->issued_ms);
	put_jobs(&b, pm, NULL, NULL, fn);
	buf_adds(&b, ",\"master\":");
	buf_add_json_str(&b, pm->master);
	put_nonce(&b, st);
	buf_adds(&b, ",\"url\":");
	buf_add_json_str(&b, pm->url);
	buf_adds(&b, ",\"version\":");
	buf_add_json_str(&b, pm->version);
	buf_adds(&b, "}");
	return buf_take(&b);
}

/* {"function":F} alone (with a nonce at most), or why not in err. */
static char *
function_request(const struct projmap *pm, const json_t *fn, const json_t *node, const json_t *version,
    const struct pm_stamp *st, char *err, size_t errlen)
{
	if (!json_is_string(fn) || json_string_length(fn) > PROJMAP_FUNCTION_MAX) {
		snprintf(err, errlen, "\"function\" must be a string of at most %d bytes", PROJMAP_FUNCTION_MAX);
		return NULL;
	}
	if (node || version) {
		snprintf(err, errlen, "\"function\" goes with no \"node\" or \"version\"");
		return NULL;
	}
	return answer_function(pm, json_string_value(fn), st);
}

char *
projmap_answer(const struct projmap *pm, const char *req, size_t len, long long issued_ms,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *r, *node, *version, *nonce, *fn, *val;
	struct pm_stamp st = { .issued_ms = issued_ms };
	const struct pm_node *n;
	const char *key;
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
		if (strcmp(key, "node") != 0 && strcmp(key, "version") != 0 && strcmp(key, "nonce") != 0 &&
		    strcmp(key, "function") != 0) {
			snprintf(err, errlen, "unknown key \"%s\" (allowed: node, version, nonce, function)", key);
			goto out;
		}
	}
	node = json_object_get(r, "node");
	version = json_object_get(r, "version");
	nonce = json_object_get(r, "nonce");
	fn = json_object_get(r, "function");
	st.nonce = json_string_value(nonce);
	if (version && !json_is_string(version))
		snprintf(err, errlen, "\"version\" must be a string");
	else if (nonce && (!json_is_string(nonce) || json_string_length(nonce) > PROJMAP_NONCE_MAX))
		snprintf(err, errlen, "\"nonce\" must be a string of at most %d bytes", PROJMAP_NONCE_MAX);
	else if (fn)
		out = function_request(pm, fn, node, version, &st, err, errlen);
	else if (!node && version && strcmp(json_string_value(version), pm->version) == 0)
		out = unchanged(pm, pm->version, &st);
	else if (!node)
		out = render_whole(pm, &st);
	else if (!json_is_string(node))
		snprintf(err, errlen, "\"node\" must be a string");
	else if (!(n = node_find(pm, json_string_value(node))))
		snprintf(err, errlen, "node \"%s\" is not a node of this master", json_string_value(node));
	else
		out = answer_slice(pm, n, version, &st);
out:
	json_decref(r);
	return out;
}

enum projmap_find
projmap_find_job(const struct projmap *pm, const char *name, const char **full, char *err, size_t errlen)
{
	size_t i, hits = 0;

	*full = NULL;
	for (i = 0; i < pm->njobs; i++)
		if (strcasecmp(pm->jobs[i].full, name) == 0) {
			*full = pm->jobs[i].full;
			return PROJMAP_FOUND;
		}
	for (i = 0; i < pm->njobs; i++) {
		if (strcasecmp(pm->jobs[i].name, name) == 0) {
			if (!*full)
				*full = pm->jobs[i].full;
			hits++;
		}
	}
	if (hits == 1)
		return PROJMAP_FOUND;
	if (hits > 1) {
		snprintf(err, errlen, "job name \"%s\" is ambiguous: %zu jobs in different folders have it; "
		    "send the full name (e.g. \"%s\")", name, hits, *full);
		*full = NULL;
		return PROJMAP_AMBIGUOUS;
	}
	snprintf(err, errlen, "no job named \"%s\" on this master", name);
	return PROJMAP_NOT_FOUND;
}

bool
projmap_job_dispatchable(const struct projmap *pm, const char *full)
{
	size_t i;

	for (i = 0; i < pm->njobs; i++)
		if (strcmp(pm->jobs[i].full, full) == 0)
			return pm->jobs[i].reason == NULL;
	return false;
}
