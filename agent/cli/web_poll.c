/*
 * web_poll: the status page's poller thread and its cache (web.h). Each
 * cycle reads every gearmand's admin "status" and "workers", asks every
 * coordinator (a project_map:$host function seen on gearmand, or one seen
 * before) for its map and its status, and replaces the cached document.
 * A coordinator that stops answering keeps its last answers, shown as
 * down with their age.
 */
#include "web.h"

#include "clock.h"
#include "gadmin.h"
#include "gclient.h"
#include "log.h"
#include "sign.h"
#include "strvec.h"
#include "xalloc.h"

#include <jansson.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PM_PREFIX "project_map:"

struct web_poll {
	struct web_poll_conf conf;
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	bool            stopping;
	char           *doc;        /* the cached /api/status, under mu */
	size_t          doclen;
	json_t         *masters;    /* name -> {map, status, ...}: the poller's own */
};

/* One cycle's reading of gearmand. */
struct gm_view {
	json_t *fns;       /* function -> {queued, running, workers} summed over servers */
	json_t *reg;       /* node -> {function: true}, from "workers" */
	json_t *servers;   /* the API's servers[] */
};

/* s[0..len) as a JSON string of at most max bytes: cut at a character, invalid UTF-8 made '?'. */
static json_t *
web_str(const char *s, size_t len, size_t max)
{
	json_t *j;
	char *c;
	size_t i, n = len < max ? len : max;

	while (n > 0 && n < len && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	if ((j = json_stringn(s, n)))
		return j;
	c = xstrndup(s, n);
	for (i = 0; i < n; i++)
		if ((unsigned char)c[i] >= 0x80 || c[i] < 0x20)
			c[i] = '?';
	j = json_stringn(c, n);
	free(c);
	return j;
}

/* Make s (a name from gearmand's admin text) valid UTF-8 in place, for use as a jansson key. */
static void
key_fix(char *s)
{
	json_t *j = json_string(s);

	if (j) {
		json_decref(j);
		return;
	}
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80 || (unsigned char)*s < 0x20)
			*s = '?';
}

static json_t *
jstr(const char *s)
{
	return web_str(s ? s : "", s ? strlen(s) : 0, WEB_MAX_STR);
}

/* A string member of o, "" if absent. */
static const char *
sget(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

/* A URL shown as a link only when it is http(s). */
static json_t *
jurl(const char *u)
{
	if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)))
		return json_string("");
	return web_str(u, strlen(u), WEB_MAX_URL);
}

static long long
iget(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* ---- gearmand ---- */

static void
gm_status_line(struct gm_view *v, const char *line, long long *q, long long *r)
{
	struct gadmin_fn g;
	long queued;
	json_t *f;

	if (gadmin_status_parse(line, &g) < 0)
		return;
	key_fix(g.name);
	queued = g.total > g.running ? g.total - g.running : 0;
	*q += queued;
	*r += g.running;
	if (!(f = json_object_get(v->fns, g.name))) {
		if (json_object_size(v->fns) >= WEB_MAX_FUNCTIONS)
			return;
		f = json_pack("{s:I,s:I,s:I}", "queued", 0LL, "running", 0LL, "workers", 0LL);
		json_object_set_new(v->fns, g.name, f);
	}
	json_object_set_new(f, "queued", json_integer(iget(f, "queued") + queued));
	json_object_set_new(f, "running", json_integer(iget(f, "running") + g.running));
	json_object_set_new(f, "workers", json_integer(iget(f, "workers") + g.workers));
}

/* One "workers" line; returns 1 if the connection is a worker (has functions). */
static int
gm_worker_line(struct gm_view *v, const char *line, char *const *spaced, size_t nspaced)
{
	char id[GADMIN_ID_MAX], *node;
	const char *p;
	json_t *set;
	size_t fl;

	if (gadmin_worker_parse(line, id, &p) < 0 || *p == '\0')
		return 0;
	if (!(node = cli_node_of(id)))
		return 1;
	key_fix(node);
	if (!(set = json_object_get(v->reg, node)) && json_object_size(v->reg) < WEB_MAX_NODES) {
		set = json_object();
		json_object_set_new(v->reg, node, set);
	}
	for (; set && *p; p += fl) {
		if (*p == ' ') {
			fl = 1;
			continue;
		}
		fl = gadmin_worker_fn_len(p, spaced, nspaced);
		if (fl < GADMIN_NAME_MAX && json_object_size(set) < WEB_MAX_FUNCTIONS) {
			char *f = xstrndup(p, fl);

			key_fix(f);
			json_object_set_new(set, f, json_true());
			free(f);
		}
	}
	free(node);
	return 1;
}

static void
gm_read_server(struct web_poll *wp, const struct config_server *s, int timeout_ms, struct gm_view *v)
{
	char err[512] = "", name[300], **spaced = NULL, *line, *save = NULL, *text;
	long long q = 0, r = 0, workers = 0;
	const char *fn;
	json_t *x;
	size_t nspaced = 0;

	snprintf(name, sizeof(name), "%s:%d", s->host, s->port);
	text = gadmin_ask(wp->conf.cli->tls, s->host, s->port, "status", timeout_ms, err, sizeof(err));
	if (text) {
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			gm_status_line(v, line, &q, &r);
		free(text);
		json_object_foreach(v->fns, fn, x)
			if (strchr(fn, ' '))
				strv_push(&spaced, &nspaced, fn, (size_t)-1);
		text = gadmin_ask(wp->conf.cli->tls, s->host, s->port, "workers", timeout_ms, err, sizeof(err));
		for (save = NULL, line = text ? strtok_r(text, "\n", &save) : NULL; line;
		    line = strtok_r(NULL, "\n", &save))
			workers += gm_worker_line(v, line, spaced, nspaced);
		strv_free(spaced, nspaced);
	}
	json_array_append_new(v->servers, json_pack("{s:o,s:b,s:o,s:I,s:I,s:I}", "server", jstr(name),
	    "reachable", text != NULL, "error", jstr(err), "workers", workers, "queued", q, "running", r));
	free(text);
}

/* ---- coordinators ---- */

/*
 * The signed text of a coordinator's answer, parsed. With keys, it must
 * verify with one of them and echo nonce and master; without, it is
 * shown unverified. NULL with err.
 */
static json_t *
answer_open(struct web_poll *wp, const char *out, const char *nonce, const char *master,
    bool *verified, char *err, size_t errlen)
{
	char *text = NULL;
	json_t *m;
	size_t i, tl;

	*verified = false;
	if (wp->conf.nkeys == 0)
		text = sign_peek(out, strlen(out));
	for (i = 0; i < wp->conf.nkeys && !text; i++)
		text = sign_open(wp->conf.keys[i], out, strlen(out), &tl, err, errlen);
	if (!text) {
		if (wp->conf.nkeys == 0)
			snprintf(err, errlen, "the answer is not a signed envelope");
		return NULL;
	}
	m = json_loads(text, 0, NULL);
	free(text);
	if (!json_is_object(m)) {
		json_decref(m);
		snprintf(err, errlen, "the answer is not a JSON object");
		return NULL;
	}
	if (wp->conf.nkeys && (strcmp(sget(m, "nonce"), nonce) || strcmp(sget(m, "master"), master))) {
		json_decref(m);
		snprintf(err, errlen, "a signed answer that does not echo our nonce or names another master");
		return NULL;
	}
	*verified = wp->conf.nkeys > 0;
	return m;
}

/* Ask master for req ("{}" or status); the parsed answer or NULL with err. */
static json_t *
coord_ask(struct web_poll *wp, const char *master, bool status, int timeout_ms, bool *verified,
    char *err, size_t errlen)
{
	struct cli *c = wp->conf.cli;
	char fn[GCLIENT_FUNCTION_MAX + 1], nonce[SIGN_NONCE_LEN + 1], *req, *out = NULL;
	json_t *r, *m = NULL;

	sign_nonce(nonce);
	r = json_pack("{s:s}", "nonce", nonce);
	if (status)
		json_object_set_new(r, "status", json_true());
	req = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	snprintf(fn, sizeof(fn), PM_PREFIX "%s", master);
	if (gclient_call(c->tls, c->servers, c->nservers, fn, NULL, req, strlen(req), timeout_ms,
	    &out, NULL, err, errlen) == GCLIENT_OK)
		m = answer_open(wp, out, nonce, master, verified, err, errlen);
	free(req);
	free(out);
	return m;
}

/* Ask one coordinator for its map and status, within the cycle's deadline; update its cache entry. */
static void
coord_poll(struct web_poll *wp, const char *master, json_t *ent, long long workers, long long deadline)
{
	char err[512] = "";
	json_t *m;
	bool verified;
	long long left = clk_left_ms(deadline);
	int t = left < wp->conf.timeout_ms ? (int)left : wp->conf.timeout_ms;

	if (workers <= 0 || t < 100) {
		json_object_set_new(ent, "coordinator_ok", json_false());
		json_object_set_new(ent, "error", json_string(workers <= 0
		    ? "no coordinator registers project_map for this master on gearmand"
		    : "not asked: this poll's time budget was spent on slower coordinators"));
		return;
	}
	if ((m = coord_ask(wp, master, false, t, &verified, err, sizeof(err)))) {
		json_object_set_new(ent, "map", m);
		json_object_set_new(ent, "verified", json_boolean(verified));
		json_object_set_new(ent, "coordinator_ok", json_true());
		json_object_set_new(ent, "error", json_string(""));
	} else {
		json_object_set_new(ent, "coordinator_ok", json_false());
		json_object_set_new(ent, "error", jstr(err));
		return;
	}
	left = clk_left_ms(deadline);
	t = left < wp->conf.timeout_ms ? (int)left : wp->conf.timeout_ms;
	err[0] = '\0';
	if (t >= 100 && (m = coord_ask(wp, master, true, t, &verified, err, sizeof(err)))) {
		json_object_set_new(ent, "status", m);
		json_object_set_new(ent, "status_error", json_string(""));
	} else {
		json_object_del(ent, "status");
		json_object_set_new(ent, "status_error", jstr(err[0] ? err : "not asked: time budget spent"));
	}
}

/* Every master to show: project_map:* functions on gearmand, and those seen before. */
static void
coord_poll_all(struct web_poll *wp, struct gm_view *v, long long deadline)
{
	const char *fn, *name;
	json_t *f, *ent;
	void *tmp;

	json_object_foreach(v->fns, fn, f) {
		if (strncmp(fn, PM_PREFIX, strlen(PM_PREFIX)) || !fn[strlen(PM_PREFIX)])
			continue;
		name = fn + strlen(PM_PREFIX);
		if (!json_object_get(wp->masters, name) && json_object_size(wp->masters) < WEB_MAX_MASTERS)
			json_object_set_new(wp->masters, name, json_object());
	}
	json_object_foreach_safe(wp->masters, tmp, name, ent) {
		char pf[GCLIENT_FUNCTION_MAX + 1];

		snprintf(pf, sizeof(pf), PM_PREFIX "%s", name);
		coord_poll(wp, name, ent, iget(json_object_get(v->fns, pf), "workers"), deadline);
	}
}

/* ---- the document ---- */

static json_t *
fn_entry(json_t *out, const char *name, struct gm_view *v)
{
	json_t *e = json_object_get(out, name), *f;

	if (e || json_object_size(out) >= WEB_MAX_FUNCTIONS)
		return e;
	f = json_object_get(v->fns, name);
	e = json_pack("{s:o,s:I,s:I,s:I,s:[]}", "name", jstr(name), "queued", iget(f, "queued"),
	    "running", iget(f, "running"), "workers", iget(f, "workers"), "offered_by");
	json_object_set_new(out, name, e);
	return e;
}

static void
list_add(json_t *a, json_t *x)
{
	if (json_array_size(a) < WEB_MAX_LIST)
		json_array_append_new(a, x);
	else
		json_decref(x);
}

/* The status answer's node of this name, or NULL. */
static json_t *
status_node(json_t *st, const char *name)
{
	json_t *n;
	size_t i;

	json_array_foreach(json_object_get(st, "nodes"), i, n)
		if (!strcmp(sget(n, "name"), name))
			return n;
	return NULL;
}

/* One master's nodes (map + status), its functions' offers, and its unoffered jobs. */
static json_t *
doc_master_nodes(const char *master, json_t *ent, struct gm_view *v, json_t *fns, json_t *unoff)
{
	json_t *map = json_object_get(ent, "map"), *st = json_object_get(ent, "status");
	json_t *nodes = json_array(), *mn, *f, *x;
	size_t i, k;

	json_array_foreach(json_object_get(map, "nodes"), i, mn) {
		json_t *nd = json_object_get(mn, "node"), *sn, *labels, *offers;
		const char *name = sget(nd, "name");
		json_t *reg = json_object_get(v->reg, name);

		if (i >= WEB_MAX_NODES)
			break;
		labels = json_array();
		offers = json_array();
		sn = st ? status_node(st, name) : NULL;
		json_array_foreach(json_object_get(nd, "labels"), k, x)
			if (k < 64)
				json_array_append_new(labels, jstr(json_string_value(x)));
		json_array_foreach(json_object_get(mn, "functions"), k, f) {
			const char *fname = sget(f, "name");
			json_t *fe;

			list_add(offers, jstr(fname));
			if ((fe = fn_entry(fns, fname, v)))
				list_add(json_object_get(fe, "offered_by"), json_pack("{s:o,s:o,s:b}", "master",
				    jstr(master), "node", jstr(name), "registered",
				    json_object_get(reg, fname) != NULL));
		}
		json_array_append_new(nodes, json_pack("{s:o,s:o,s:I,s:o,s:b,s:b,s:o}", "name", jstr(name),
		    "labels", labels, "executors", iget(nd, "executors"),
		    "busy", sn ? json_integer(iget(sn, "busy")) : json_null(),
		    "online", sn ? json_is_true(json_object_get(sn, "online")) : json_is_true(json_object_get(nd, "online")),
		    "registered", reg != NULL, "offers", offers));
	}
	json_array_foreach(json_object_get(map, "jobs"), i, x) {
		fn_entry(fns, sget(x, "function"), v);
		if (json_array_size(json_object_get(x, "nodes")) == 0)
			list_add(unoff, json_pack("{s:o,s:o,s:o,s:s}", "job", jstr(sget(x, "job")), "function",
			    jstr(sget(x, "function")), "master", jstr(master), "reason", "label matches no online node"));
	}
	json_array_foreach(json_object_get(map, "undispatchable"), i, x)
		list_add(unoff, json_pack("{s:o,s:o,s:o}", "job", jstr(sget(x, "job")), "master", jstr(master),
		    "reason", jstr(sget(x, "reason"))));
	json_array_foreach(json_object_get(map, "collisions"), i, x) {
		char *jobs = json_dumps(json_object_get(x, "jobs"), JSON_COMPACT), why[WEB_MAX_STR];

		snprintf(why, sizeof(why), "name collision: jobs %s share this function", jobs ? jobs : "?");
		free(jobs);
		list_add(unoff, json_pack("{s:o,s:o,s:o}", "function", jstr(sget(x, "function")), "master",
		    jstr(master), "reason", jstr(why)));
	}
	json_array_foreach(json_object_get(map, "skipped"), i, x)
		list_add(unoff, json_pack("{s:o,s:o,s:o}", "function", jstr(sget(x, "function")), "master",
		    jstr(master), "reason", jstr(sget(x, "reason"))));
	return nodes;
}

static void
doc_builds(const char *master, json_t *st, long long now, json_t *builds)
{
	json_t *n, *b;
	size_t i, k;

	json_array_foreach(json_object_get(st, "nodes"), i, n)
		json_array_foreach(json_object_get(n, "builds"), k, b) {
			long long ts = iget(b, "timestamp_ms");

			if (!json_is_true(json_object_get(b, "gearman")))
				continue;
			list_add(builds, json_pack("{s:o,s:o,s:o,s:I,s:o,s:I,s:I}", "master", jstr(master),
			    "node", jstr(sget(n, "name")), "job", jstr(sget(b, "job")), "number", iget(b, "number"),
			    "url", jurl(sget(b, "url")), "elapsed_ms", ts > 0 ? now - ts : 0LL,
			    "estimated_ms", json_is_integer(json_object_get(b, "estimated_ms"))
			    ? iget(b, "estimated_ms") : -1LL));
		}
}

static json_t *
doc_master(const char *name, json_t *ent, long long now, struct gm_view *v, json_t *fns,
    json_t *unoff, json_t *builds)
{
	json_t *map = json_object_get(ent, "map"), *st = json_object_get(ent, "status");
	long long at = st && iget(st, "read_ms") > 0 ? iget(st, "read_ms") : iget(map, "issued_ms");
	const char *url = st ? sget(st, "url") : sget(map, "url");

	if (st)
		doc_builds(name, st, now, builds);
	return json_pack("{s:o,s:o,s:b,s:o,s:b,s:o,s:o,s:o,s:o,s:I,s:b,s:o,s:o}", "name", jstr(name),
	    "url", jurl(url), "coordinator_ok", json_is_true(json_object_get(ent, "coordinator_ok")),
	    "error", jstr(sget(ent, "error")), "status_ok", st != NULL,
	    "status_error", jstr(sget(ent, "status_error")),
	    "jenkins_ok", st ? json_boolean(json_is_true(json_object_get(st, "jenkins_ok"))) : json_null(),
	    "jenkins_error", jstr(st ? sget(st, "jenkins_error") : ""),
	    "map_version", jstr(sget(map, "version")), "age_ms", at > 0 ? now - at : -1LL,
	    "verified", json_is_true(json_object_get(ent, "verified")),
	    "verification", json_string(json_is_true(json_object_get(ent, "verified")) ? "verified" : "unverified"),
	    "nodes", doc_master_nodes(name, ent, v, fns, unoff));
}

/* Functions queued on gearmand with no worker, and workers that no map names. */
static void
doc_gearmand_fns(struct gm_view *v, json_t *fns, json_t *unoff)
{
	const char *fn, *node, *rf;
	json_t *f, *set, *x, *e, *o;
	size_t i;

	json_object_foreach(v->fns, fn, f) {
		if (strncmp(fn, "build:", 6) || (iget(f, "queued") + iget(f, "running") + iget(f, "workers") == 0
		    && !json_object_get(fns, fn)))
			continue;   /* gearmand never forgets a function name */
		fn_entry(fns, fn, v);
		if (iget(f, "queued") > 0 && iget(f, "workers") == 0)
			list_add(unoff, json_pack("{s:o,s:s,s:s}", "function", jstr(fn), "master", "",
			    "reason", "no worker registered"));
	}
	json_object_foreach(v->reg, node, set)
		json_object_foreach(set, rf, x) {
			bool named = false;

			if (strncmp(rf, "build:", 6) || !(e = fn_entry(fns, rf, v)))
				continue;
			json_array_foreach(json_object_get(e, "offered_by"), i, o)
				named |= !strcmp(sget(o, "node"), node);
			if (!named)
				list_add(json_object_get(e, "offered_by"), json_pack("{s:s,s:o,s:b}", "master", "",
				    "node", jstr(node), "registered", 1));
		}
}

static char *
doc_build(struct web_poll *wp, struct gm_view *v, long long now, size_t *len)
{
	json_t *fns = json_object(), *unoff = json_array(), *builds = json_array(), *masters = json_array();
	json_t *ent, *fa = json_array(), *f, *d;
	const char *name;
	char *s;

	json_object_foreach(wp->masters, name, ent)
		json_array_append_new(masters, doc_master(name, ent, now, v, fns, unoff, builds));
	doc_gearmand_fns(v, fns, unoff);
	json_object_foreach(fns, name, f)
		json_array_append(fa, f);
	d = json_pack("{s:I,s:i,s:O,s:o,s:o,s:o,s:o}", "generated_ms", now, "interval_ms",
	    wp->conf.interval_ms, "servers", v->servers, "functions", fa, "unoffered", unoff,
	    "masters", masters, "builds", builds);
	json_decref(fns);
	s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	*len = strlen(s);
	return s;
}

static void
poll_cycle(struct web_poll *wp)
{
	struct cli *c = wp->conf.cli;
	struct gm_view v = { json_object(), json_object(), json_array() };
	long long deadline = clk_now_ms() + 3LL * wp->conf.timeout_ms;
	size_t i, len;
	char *doc;

	for (i = 0; i < c->nservers; i++)
		gm_read_server(wp, &c->servers[i], wp->conf.timeout_ms, &v);
	coord_poll_all(wp, &v, deadline);
	doc = doc_build(wp, &v, clk_wall_ms(), &len);
	json_decref(v.fns);
	json_decref(v.reg);
	json_decref(v.servers);
	pthread_mutex_lock(&wp->mu);
	free(wp->doc);
	wp->doc = doc;
	wp->doclen = len;
	pthread_mutex_unlock(&wp->mu);
}

static void *
poll_main(void *arg)
{
	struct web_poll *wp = arg;

	pthread_mutex_lock(&wp->mu);
	while (!wp->stopping) {
		struct timespec ts;

		pthread_mutex_unlock(&wp->mu);
		poll_cycle(wp);
		pthread_mutex_lock(&wp->mu);
		ts = clk_timespec_in(CLOCK_MONOTONIC, wp->conf.interval_ms);
		while (!wp->stopping && pthread_cond_timedwait(&wp->cv, &wp->mu, &ts) == 0)
			;
	}
	pthread_mutex_unlock(&wp->mu);
	return NULL;
}

struct web_poll *
web_poll_start(const struct web_poll_conf *conf)
{
	struct web_poll *wp = xcalloc(1, sizeof(*wp));
	pthread_condattr_t ca;

	wp->conf = *conf;
	wp->masters = json_object();
	wp->doc = xstrdup("{\"generated_ms\":0,\"servers\":[],\"functions\":[],\"unoffered\":[],"
	    "\"masters\":[],\"builds\":[]}");
	wp->doclen = strlen(wp->doc);
	pthread_mutex_init(&wp->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wp->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&wp->thread, NULL, poll_main, wp) != 0)
		fatalx("web: pthread_create failed");
	return wp;
}

char *
web_poll_json(struct web_poll *wp, size_t *len)
{
	char *s;

	pthread_mutex_lock(&wp->mu);
	s = xmalloc(wp->doclen + 1);
	memcpy(s, wp->doc, wp->doclen + 1);
	*len = wp->doclen;
	pthread_mutex_unlock(&wp->mu);
	return s;
}

void
web_poll_stop(struct web_poll *wp)
{
	pthread_mutex_lock(&wp->mu);
	wp->stopping = true;
	pthread_cond_signal(&wp->cv);
	pthread_mutex_unlock(&wp->mu);
	pthread_join(wp->thread, NULL);
	pthread_mutex_destroy(&wp->mu);
	pthread_cond_destroy(&wp->cv);
	json_decref(wp->masters);
	free(wp->doc);
	free(wp);
}
