/*
 * nodemap: the coordinator's answer to project_map:$host for one node,
 * verified and read into a struct nodemap (node.h). The answer is a
 * signed envelope (common/sign.h) around the text
 *   {"functions":[{"name":..,"job":..,"pin":..},...],"issued_ms":..,
 *    "node":{"name":..,"executors":..,"online":..,"labels":[..]},
 *    "nonce":..,"url":..,"version":..}
 * or {"issued_ms":..,"nonce":..,"unchanged":true,"url":..,"version":..}.
 * A node of the bench's master gets
 * 7,349 functions in 490 kB: read entry by entry (jscan.h) in a jarena,
 * 7 ms and a few pages, where one jansson tree took 21-35 ms and 4 MB of
 * fresh pages at every agent's start.
 */
#include "node.h"

#include "jarena.h"
#include "jscan.h"
#include "log.h"
#include "sign.h"
#include "xalloc.h"
#include "daemon/defaults.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first room for functions: a node's slice has hundreds to thousands. */
#define NODEMAP_FNS_FIRST 256
/* Room for a top-level key: the longest one read is "functions"; a longer key is cut and matches none. */
#define NODEMAP_KEY_MAX 32

static const char not_slice[] = "not this node's slice of the map";

void
nodemap_free(struct nodemap *m)
{
	size_t i;

	if (!m)
		return;
	free(m->version);
	free(m->url);
	free(m->nonce);
	for (i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	free(m->labels);
	for (i = 0; i < m->nfns; i++) {
		free(m->fns[i].name);
		free(m->fns[i].job);
		free(m->fns[i].pin);
	}
	free(m->fns);
	free(m);
}

static char *
dup_string(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
}

/* The prefix of every function a node offers: build:JOB or build:JOB:LABEL. */
#define BUILD_PREFIX "build:"

/*
 * Is name a function the coordinator can have given job: build:NAME or
 * build:NAME:ATOM, NAME the job's full or short name (a Jenkins job name
 * has no ':')? gearmand is open to anyone, and a map answer may not be
 * the coordinator's: an entry that does not name its own job, or that has
 * no pin, would let a client build what the coordinator never offered, or
 * choose the node.
 */
static bool
function_names_job(const char *name, const char *job)
{
	const char *base = strrchr(job, '/'), *rest, *cands[2];
	size_t i;

	if (strncmp(name, BUILD_PREFIX, strlen(BUILD_PREFIX)) != 0)
		return false;
	rest = name + strlen(BUILD_PREFIX);
	cands[0] = job;
	cands[1] = base ? base + 1 : job;
	for (i = 0; i < 2; i++) {
		size_t l = strlen(cands[i]);

		if (l > 0 && strncmp(rest, cands[i], l) == 0 && (rest[l] == '\0' || rest[l] == ':'))
			return true;
	}
	return false;
}

/*
 * One entry of "functions". Entries without a name, job and pin are
 * skipped; one whose name is not its job's, or whose pin is empty, makes
 * the whole answer unusable (-1, err): the last good map stays.
 */
static int
add_function(struct nodemap *m, size_t *cap, json_t *f, char *err, size_t errlen)
{
	struct nm_function fn = { dup_string(f, "name"), dup_string(f, "job"), dup_string(f, "pin") };
	int rc = 0;

	if (!fn.name || !fn.job || !fn.pin)
		goto skip;
	if (!function_names_job(fn.name, fn.job)) {
		snprintf(err, errlen, "function \"%.200s\" is not a build function of job \"%.200s\"",
		    fn.name, fn.job);
		rc = -1;
		goto skip;
	}
	if (!fn.pin[0]) {
		snprintf(err, errlen, "function \"%.200s\" has no pin parameter", fn.name);
		rc = -1;
		goto skip;
	}
	if (m->nfns == *cap) {
		*cap = *cap ? *cap * 2 : NODEMAP_FNS_FIRST;
		m->fns = xreallocarray(m->fns, *cap, sizeof(*m->fns));
	}
	m->fns[m->nfns++] = fn;
	return 0;
skip:
	free(fn.name);
	free(fn.job);
	free(fn.pin);
	return rc;
}

static int
read_functions(struct jscan *sc, struct nodemap *m, char *err, size_t errlen)
{
	size_t cap = 0;
	int more;

	if (!jscan_take(sc, '[')) {
		snprintf(err, errlen, "%s", not_slice);
		return -1;
	}
	sc->first = true;
	while ((more = jscan_element(sc, err, errlen)) > 0) {
		bool arena = jarena_begin();
		json_t *f = jscan_value(sc, err, errlen);
		int bad = 0;

		jarena_stop();
		if (f)
			bad = add_function(m, &cap, f, err, errlen);
		if (arena)
			jarena_drop();
		else
			json_decref(f);
		if (!f || bad < 0)
			return -1;
	}
	return more;
}

static int
read_node(struct nodemap *m, json_t *nd, const char *node)
{
	json_t *labels = json_object_get(nd, "labels"), *l;
	json_int_t x;
	size_t i;

	if (!json_is_object(nd) || !json_is_array(labels) ||
	    !json_is_integer(json_object_get(nd, "executors")) ||
	    !json_is_string(json_object_get(nd, "name")) ||
	    strcmp(json_string_value(json_object_get(nd, "name")), node) != 0)
		return -1;
	x = json_integer_value(json_object_get(nd, "executors"));
	m->executors = x < 0 ? 0 : x > NODE_MAX_EXECUTORS ? NODE_MAX_EXECUTORS : (int)x;
	m->online = json_is_true(json_object_get(nd, "online"));
	m->labels = xcalloc(json_array_size(labels) + 1, sizeof(char *));
	json_array_foreach(labels, i, l)
		if (json_is_string(l))
			m->labels[m->nlabels++] = xstrdup(json_string_value(l));
	return 0;
}

/* A top-level member other than "functions" and "node": the first of each kept. */
static void
read_member(struct nodemap *m, const char *name, json_t *v)
{
	if (!strcmp(name, "version") && json_is_string(v) && !m->version)
		m->version = xstrdup(json_string_value(v));
	else if (!strcmp(name, "url") && json_is_string(v) && !m->url)
		m->url = xstrdup(json_string_value(v));
	else if (!strcmp(name, "nonce") && json_is_string(v) && !m->nonce)
		m->nonce = xstrdup(json_string_value(v));
	else if (!strcmp(name, "issued_ms") && json_is_integer(v) && !m->issued_ms)
		m->issued_ms = json_integer_value(v);
	else if (!strcmp(name, "unchanged"))
		m->unchanged = json_is_true(v);
}

struct nodemap *
nodemap_parse(const char *text, size_t len, const char *node, char *err, size_t errlen)
{
	struct nodemap *m = xcalloc(1, sizeof(*m));
	bool have_fns = false;
	json_t *nd = NULL, *v;
	struct jscan sc;
	char name[NODEMAP_KEY_MAX];
	int more;

	jscan_init(&sc, text, len);
	if (!jscan_object(&sc, err, errlen))
		goto fail;
	while ((more = jscan_member(&sc, name, sizeof(name), err, errlen)) > 0) {
		if (!strcmp(name, "functions") && !have_fns) {
			have_fns = true;
			if (read_functions(&sc, m, err, errlen) < 0)
				goto fail;
			continue;
		}
		if (!(v = jscan_value(&sc, err, errlen)))
			goto fail;
		if (!strcmp(name, "node") && !nd) {
			nd = v;
			continue;
		}
		read_member(m, name, v);
		json_decref(v);
	}
	if (more < 0)
		goto fail;
	if (!jscan_done(&sc)) {
		jscan_expected(&sc, "the end of the document", err, errlen);
		goto fail;
	}
	if (m->unchanged && m->version && !have_fns && !nd)
		return m;	/* nothing new */
	m->unchanged = false;
	if (!m->version || !have_fns || read_node(m, nd, node) < 0) {
		snprintf(err, errlen, "%s", not_slice);
		goto fail;
	}
	json_decref(nd);
	return m;
fail:
	json_decref(nd);
	nodemap_free(m);
	return NULL;
}

/* ---- trust: is an answer the coordinator's, for this master, and new? ---- */

int
nodemap_trust_open(struct nodemap_trust *t, const char *key_file, const char *url, const char *node,
    char *err, size_t errlen)
{
	char kerr[512];

	memset(t, 0, sizeof(*t));
	if (!(t->key = sign_key_public(key_file, kerr, sizeof(kerr)))) {
		snprintf(err, errlen, "[node] map_public_key_file: %s; the agent verifies every map with it "
		    "(copy the coordinator's public key there)", kerr);
		return -1;
	}
	if (!(t->url = defaults_master_url(url))) {
		snprintf(err, errlen, "[jenkins] url: no host in the URL");
		sign_key_free(t->key);
		t->key = NULL;
		return -1;
	}
	t->node = xstrdup(node);
	return 0;
}

void
nodemap_trust_close(struct nodemap_trust *t)
{
	sign_key_free(t->key);
	free(t->url);
	free(t->node);
	memset(t, 0, sizeof(*t));
}

char *
nodemap_request(struct nodemap_trust *t, const char *version)
{
	json_t *r = json_pack("{s:s}", "node", t->node);
	char *req;

	sign_nonce(t->nonce);
	json_object_set_new(r, "nonce", json_string(t->nonce));
	if (version)
		json_object_set_new(r, "version", json_string(version));
	req = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	if (!req)
		fatalx("out of memory (json_dumps)");
	return req;
}

/* Why m (verified) may not be taken by t, or NULL: another master, not this request's, older. */
static const char *
stale_or_foreign(const struct nodemap_trust *t, const struct nodemap *m, char *why, size_t whylen)
{
	if (!m->url || strcmp(m->url, t->url) != 0) {
		snprintf(why, whylen, "it is the map of the master %.300s, not of %.300s",
		    m->url ? m->url : "(none)", t->url);
		return why;
	}
	if (!m->nonce || strcmp(m->nonce, t->nonce) != 0)
		return "replayed: it does not answer this request (nonce)";
	if (m->issued_ms <= 0 || m->issued_ms < t->last_issued_ms - NODEMAP_SKEW_MS) {
		snprintf(why, whylen, "replayed: issued at %lld ms, before the last map taken (%lld ms)",
		    m->issued_ms, t->last_issued_ms);
		return why;
	}
	return NULL;
}

struct nodemap *
nodemap_accept(struct nodemap_trust *t, const char *answer, size_t len, bool *unchanged,
    char *err, size_t errlen)
{
	struct nodemap *m;
	size_t textlen;
	char why[800], *text = sign_open(t->key, answer, len, &textlen, err, errlen);
	const char *no;

	*unchanged = false;
	if (!text)
		return NULL;
	m = nodemap_parse(text, textlen, t->node, err, errlen);
	free(text);
	if (!m)
		return NULL;
	if ((no = stale_or_foreign(t, m, why, sizeof(why)))) {
		snprintf(err, errlen, "%s", no);
		nodemap_free(m);
		return NULL;
	}
	if (m->issued_ms > t->last_issued_ms)
		t->last_issued_ms = m->issued_ms;
	memset(t->nonce, 0, sizeof(t->nonce));    /* one answer per request */
	if (m->unchanged) {
		*unchanged = true;
		nodemap_free(m);
		return NULL;
	}
	return m;
}
