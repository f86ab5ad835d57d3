/*
 * status: see status.h.
 *
 * The snapshot is the nodes array already rendered: a refresh renders it
 * once, and each answer copies it between the envelope's fields, so a
 * status page polling every coordinator every few seconds costs each a
 * memcpy, never a request to its master.
 */
#include "status.h"

#include "buf.h"
#include "xalloc.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct status_snap {
	long long read_ms;
	char     *nodes;    /* the rendered "nodes" array */
};

/* ---- the snapshot ---- */

/* One run of one node, for sorting every run of the master by url. */
struct run_ref {
	const struct jk_run *r;
	size_t node, flat;
};

static int
cmp_ref(const void *a, const void *b)
{
	const struct run_ref *x = a, *y = b;
	int c = strcmp(x->r->url, y->r->url);

	if (c)
		return c;
	if (x->node != y->node)
		return x->node < y->node ? -1 : 1;
	return x->flat < y->flat ? -1 : x->flat > y->flat;
}

/*
 * Which runs are shown (keep, indexed by flat: node after node, run after
 * run) and with which gearman (gm). Runs of one url: a one-off executor's
 * is dropped when a regular executor holds the same run (a Pipeline run
 * inside node()); a node lists a url once; every entry is gearman when
 * one is (only the run itself has parameters, not its placeholder).
 */
static void
snap_choose(const struct jk_node_list *nl, bool *keep, bool *gm)
{
	struct run_ref *refs;
	size_t i, k, g, total = 0, nrefs = 0;

	for (i = 0; i < nl->n; i++)
		total += nl->nodes[i].nruns;
	refs = xcalloc(total + 1, sizeof(*refs));
	for (i = 0; i < nl->n; i++)
		for (k = 0; k < nl->nodes[i].nruns; k++, nrefs++) {
			refs[nrefs].r = &nl->nodes[i].runs[k];
			refs[nrefs].node = i;
			refs[nrefs].flat = nrefs;
		}
	qsort(refs, nrefs, sizeof(*refs), cmp_ref);
	for (g = 0; g < nrefs; g = k) {
		bool held = false, gearman = false;
		size_t last_node = (size_t)-1;

		for (k = g; k < nrefs && strcmp(refs[k].r->url, refs[g].r->url) == 0; k++) {
			held |= !refs[k].r->oneoff;
			gearman |= refs[k].r->gearman;
		}
		for (i = g; i < k; i++) {
			gm[refs[i].flat] = gearman;
			if ((refs[i].r->oneoff && held) || refs[i].node == last_node)
				continue;
			keep[refs[i].flat] = true;
			last_node = refs[i].node;
		}
	}
	free(refs);
}

static void
put_run(struct buf *b, const struct jk_run *r, bool gearman)
{
	buf_addf(b, "{\"estimated_ms\":%ld,\"gearman\":%s,\"job\":", r->estimated_ms,
	    gearman ? "true" : "false");
	buf_add_json_str(b, r->job);
	buf_addf(b, ",\"number\":%d,\"timestamp_ms\":%lld,\"url\":", r->number, r->timestamp_ms);
	buf_add_json_str(b, r->url);
	buf_adds(b, "}");
}

/* {"builds":[...],"busy","executors","name","online"}; flat: n's first run's index in keep/gm. */
static void
put_node(struct buf *b, const struct jk_node *n, const bool *keep, const bool *gm, size_t flat)
{
	size_t k;
	bool first = true;

	buf_adds(b, "{\"builds\":[");
	for (k = 0; k < n->nruns; k++) {
		if (!keep[flat + k])
			continue;
		if (!first)
			buf_adds(b, ",");
		put_run(b, &n->runs[k], gm[flat + k]);
		first = false;
	}
	buf_addf(b, "],\"busy\":%d,\"executors\":%d,\"name\":", n->busy, n->executors);
	buf_add_json_str(b, n->name);
	buf_adds(b, !n->offline && !n->temp_offline ? ",\"online\":true}" : ",\"online\":false}");
}

/* Node indices (into the list arg), by name. */
static int
cmp_node(const void *a, const void *b, void *arg)
{
	const struct jk_node_list *nl = arg;

	return strcmp(nl->nodes[*(const size_t *)a].name, nl->nodes[*(const size_t *)b].name);
}

struct status_snap *
status_snap_new(const struct jk_node_list *nl, long long read_ms)
{
	struct status_snap *s = xcalloc(1, sizeof(*s));
	size_t i, total = 0, *order = xcalloc(nl->n + 1, sizeof(*order)), *flat = xcalloc(nl->n + 1, sizeof(*flat));
	struct buf b = { 0 };
	bool *keep, *gm;

	for (i = 0; i < nl->n; i++) {
		order[i] = i;
		flat[i] = total;
		total += nl->nodes[i].nruns;
	}
	keep = xcalloc(total + 1, sizeof(*keep));
	gm = xcalloc(total + 1, sizeof(*gm));
	snap_choose(nl, keep, gm);
	qsort_r(order, nl->n, sizeof(*order), cmp_node, (void *)nl);
	buf_adds(&b, "[");
	for (i = 0; i < nl->n; i++) {
		if (i)
			buf_adds(&b, ",");
		put_node(&b, &nl->nodes[order[i]], keep, gm, flat[order[i]]);
	}
	buf_adds(&b, "]");
	s->nodes = buf_take(&b);
	s->read_ms = read_ms;
	free(order);
	free(flat);
	free(keep);
	free(gm);
	return s;
}

void
status_snap_free(struct status_snap *s)
{
	if (!s)
		return;
	free(s->nodes);
	free(s);
}

long long
status_snap_read_ms(const struct status_snap *s)
{
	return s ? s->read_ms : 0;
}

/* ---- requests and answers ---- */

enum status_req
status_request(const char *req, size_t len, char nonce[STATUS_NONCE_MAX + 1], bool *has_nonce,
    char *err, size_t errlen)
{
	enum status_req rc = STATUS_REQ_OK;
	json_t *r, *st, *n, *val;
	const char *key;

	*has_nonce = false;
	nonce[0] = '\0';
	if (len == 0 || !(r = json_loadb(req, len, JSON_REJECT_DUPLICATES, NULL)))
		return STATUS_REQ_NONE;
	if (!json_is_object(r) || !(st = json_object_get(r, "status"))) {
		json_decref(r);
		return STATUS_REQ_NONE;
	}
	n = json_object_get(r, "nonce");
	json_object_foreach(r, key, val) {
		if (strcmp(key, "status") != 0 && strcmp(key, "nonce") != 0) {
			snprintf(err, errlen, "\"status\" goes with no other key than \"nonce\" (got \"%.64s\")", key);
			rc = STATUS_REQ_BAD;
			goto out;
		}
	}
	if (!json_is_true(st)) {
		snprintf(err, errlen, "\"status\" must be true");
		rc = STATUS_REQ_BAD;
	} else if (n && (!json_is_string(n) || json_string_length(n) > STATUS_NONCE_MAX ||
	    strlen(json_string_value(n)) != json_string_length(n))) {
		snprintf(err, errlen, "\"nonce\" must be a string of at most %d bytes", STATUS_NONCE_MAX);
		rc = STATUS_REQ_BAD;
	} else if (n) {
		memcpy(nonce, json_string_value(n), json_string_length(n) + 1);
		*has_nonce = true;
	}
out:
	json_decref(r);
	return rc;
}

char *
status_render(const struct status_snap *snap, const struct status_meta *m)
{
	const char *jerr = m->jenkins_error ? m->jenkins_error : "";
	struct buf b = { 0 };

	buf_addf(&b, "{\"issued_ms\":%lld,\"jenkins_error\":", m->issued_ms);
	buf_add_json_str(&b, jerr);
	buf_addf(&b, ",\"jenkins_ok\":%s,\"master\":", snap && !jerr[0] ? "true" : "false");
	buf_add_json_str(&b, m->master);
	buf_adds(&b, ",\"nodes\":");
	buf_adds(&b, snap ? snap->nodes : "[]");
	if (m->nonce) {
		buf_adds(&b, ",\"nonce\":");
		buf_add_json_str(&b, m->nonce);
	}
	buf_addf(&b, ",\"read_ms\":%lld,\"refresh_s\":%d,\"url\":", status_snap_read_ms(snap), m->refresh_s);
	buf_add_json_str(&b, m->url);
	buf_adds(&b, "}");
	return buf_take(&b);
}
