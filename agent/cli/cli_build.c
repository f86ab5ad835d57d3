/*
 * jenkins-gearman build: submit build:JOB[:LABEL], say where it runs as
 * soon as WORK_DATA arrives, show progress, exit with the build's result.
 *
 *   0 SUCCESS, 1 UNSTABLE, 2 FAILURE, 3 ABORTED or NOT_BUILT (also a build
 *   stopped or cancelled by Ctrl-C), 4 refused (WORK_FAIL) or no worker can
 *   run it, 5 usage or connection errors.
 *
 * Ctrl-C stops the build it started (stop:$manager) or, while the job is
 * still queued in gearmand, cancels it there; a second Ctrl-C quits at once.
 */
#include "cli.h"
#include "clock.h"
#include "gadmin.h"
#include "gclient.h"
#include "log.h"
#include "sign.h"
#include "xalloc.h"

#include <jansson.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/*
 * How long one turn of the wait loop may block reading from gearmand: the
 * progress line is redrawn and Ctrl-C noticed at least this often.
 */
#define BUILD_TURN_MS        200
/* How long connecting and submitting may take, over every server (--timeout caps it). */
#define BUILD_SUBMIT_MS      10000
/* How long a Ctrl-C's stop:$manager may take before the CLI gives up on it. */
#define BUILD_STOP_MS        10000
/* How long gearmand may take to answer an admin command ("cancel job"). */
#define BUILD_ADMIN_MS       5000
/* How long a coordinator may take to answer project_map for the parameter check (from memory). */
#define BUILD_MAP_MS         5000
/* The prefix of the coordinators' map functions in gearmand's "status". */
#define MAP_PREFIX           "project_map:"
/* Width of the progress bar, in characters (fits an 80-column line with the times). */
#define BUILD_BAR_WIDTH      30

static volatile sig_atomic_t interrupts;

static void
on_sigint(int sig)
{
	(void)sig;
	interrupts++;
}

enum mode { MODE_TTY, MODE_LINES, MODE_JSON };

struct follow {
	enum mode mode;
	const char *function;
	char   handle[128];
	json_t *info;            /* last WORK_DATA document */
	long long elapsed_ms, estimated_ms;
	long long status_at;     /* clk_now_ms() of the last WORK_STATUS, 0 before one */
	char   warning[1024];
	char  *result;           /* from WORK_COMPLETE */
	bool   done, failed, started, stop_sent, cancelled, announced;
	int    spin;
};

static void
stamp(char *out, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
emit_json(const char *event, json_t *extra)
{
	json_t *o = extra ? json_deep_copy(extra) : json_object();
	char *s;

	json_object_set_new(o, "event", json_string(event));
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static void
say(struct follow *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
say(struct follow *f, const char *fmt, ...)
{
	char ts[32];
	va_list ap;

	if (f->mode == MODE_JSON)
		return;
	if (f->mode == MODE_TTY)
		printf("\r\033[K");
	else {
		stamp(ts, sizeof(ts));
		printf("%s ", ts);
	}
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static const char *
info_str(struct follow *f, const char *key)
{
	const char *s = json_string_value(json_object_get(f->info, key));
	return s ? s : "?";
}

/* JOB_CREATED: the job is queued in gearmand under handle. */
static void
on_created(struct follow *f, const char *handle)
{
	snprintf(f->handle, sizeof(f->handle), "%s", handle);
	if (f->mode == MODE_JSON) {
		json_t *o = json_pack("{s:s,s:s}", "function", f->function, "handle", f->handle);
		emit_json("queued", o);
		json_decref(o);
	} else
		say(f, "queued %s (job %s); waiting for a free executor", f->function, f->handle);
}

/* WORK_DATA: the agent's document about the build (where it runs); the first says it started. */
static void
on_data(struct follow *f, const struct gclient_ev *ev)
{
	json_t *doc = json_loadb(ev->data, ev->len, 0, NULL);

	if (!json_is_object(doc)) {
		json_decref(doc);
		return;
	}
	json_decref(f->info);
	f->info = doc;
	if (!f->started) {
		f->started = true;
		if (f->mode == MODE_JSON)
			emit_json("started", doc);
		else
			say(f, "started %s #%lld on %s (master %s): %s", info_str(f, "name"),
			    (long long)json_integer_value(json_object_get(doc, "number")),
			    info_str(f, "node_name"), info_str(f, "manager"), info_str(f, "url"));
	}
}

/* WORK_STATUS: elapsed and estimated milliseconds (-1: no estimate). */
static void
on_status(struct follow *f, const struct gclient_ev *ev)
{
	f->elapsed_ms = ev->num;
	f->estimated_ms = ev->den;
	f->status_at = clk_now_ms();
	if (f->mode == MODE_JSON) {
		json_t *o = json_pack("{s:I,s:I}", "elapsed_ms", f->elapsed_ms, "estimated_ms", f->estimated_ms);
		emit_json("status", o);
		json_decref(o);
	} else if (f->mode == MODE_LINES)
		say(f, "running %llds%s", f->elapsed_ms / 1000, f->estimated_ms > 0 ? "" : " (no estimate)");
}

/* WORK_WARNING (or WORK_EXCEPTION's text): why the job is refused, shown if it fails. */
static void
on_warning(struct follow *f, const struct gclient_ev *ev)
{
	size_t n = ev->len;
	json_t *w;

	if (n >= sizeof(f->warning))
		n = sizeof(f->warning) - 1;
	if (n)
		memcpy(f->warning, ev->data, n);
	f->warning[n] = '\0';
	/* The agent's refusals are {"error": "..."}: show the message. */
	w = json_loads(f->warning, 0, NULL);
	if (json_is_string(json_object_get(w, "error")))
		snprintf(f->warning, sizeof(f->warning), "%s", json_string_value(json_object_get(w, "error")));
	json_decref(w);
}

/* WORK_COMPLETE: the agent's last document, with the build's result. */
static void
on_complete(struct follow *f, const struct gclient_ev *ev)
{
	json_t *doc = json_loadb(ev->data, ev->len, 0, NULL);

	f->done = true;
	if (json_is_object(doc)) {
		json_decref(f->info);
		f->info = doc;
		if (json_is_string(json_object_get(doc, "result")))
			f->result = xstrdup(json_string_value(json_object_get(doc, "result")));
	} else
		json_decref(doc);
}

/* One event of the job into f. */
static void
on_event(struct follow *f, const struct gclient_ev *ev)
{
	switch (ev->type) {
	case GCLIENT_EV_DATA: on_data(f, ev); break;
	case GCLIENT_EV_STATUS: on_status(f, ev); break;
	case GCLIENT_EV_WARNING: on_warning(f, ev); break;
	case GCLIENT_EV_COMPLETE: on_complete(f, ev); break;
	case GCLIENT_EV_EXCEPTION:
		on_warning(f, ev);
		f->done = f->failed = true;
		break;
	case GCLIENT_EV_FAIL:
		f->done = f->failed = true;
		break;
	}
}

/* Redraw the progress line on a terminal: a bar against Jenkins' estimate, or a spinner. */
static void
draw_progress(struct follow *f)
{
	static const char spin[] = "|/-\\";
	long long el;

	if (f->mode != MODE_TTY || !f->started || f->done)
		return;
	el = f->elapsed_ms + (f->status_at ? clk_now_ms() - f->status_at : 0);
	if (f->estimated_ms > 0) {
		int pct = (int)(el * 100 / f->estimated_ms), i;
		char bar[BUILD_BAR_WIDTH + 1];
		if (pct > 99)
			pct = 99;
		for (i = 0; i < BUILD_BAR_WIDTH; i++)
			bar[i] = i < pct * BUILD_BAR_WIDTH / 100 ? '#' : '-';
		bar[BUILD_BAR_WIDTH] = '\0';
		printf("\r\033[K[%s] %2d%%  %lld:%02lld / %lld:%02lld", bar, pct, el / 60000, el / 1000 % 60,
		    f->estimated_ms / 60000, f->estimated_ms / 1000 % 60);
	} else
		printf("\r\033[K%c running %lld:%02lld (no estimate yet)", spin[f->spin++ % 4], el / 60000,
		    el / 1000 % 60);
	fflush(stdout);
}

/* Ctrl-C: stop the started build, or cancel the queued job in gearmand. */
static void
interrupt(struct cli *c, struct follow *f)
{
	char err[512], cmd[200], *out = NULL;
	size_t i;

	if (f->started && !f->stop_sent) {
		json_t *arg = json_pack("{s:s,s:I}", "name", info_str(f, "name"),
		    "number", json_integer_value(json_object_get(f->info, "number")));
		char *a = json_dumps(arg, JSON_COMPACT), fn[300];
		snprintf(fn, sizeof(fn), "stop:%s", info_str(f, "manager"));
		say(f, "interrupted: stopping the build (%s)", fn);
		if (gclient_call(c->tls, c->servers, c->nservers, fn, NULL, a, strlen(a),
		    BUILD_STOP_MS, &out, NULL, err, sizeof(err)) != GCLIENT_OK)
			say(f, "could not stop it: %s", err);
		free(out);
		free(a);
		json_decref(arg);
		f->stop_sent = true;
		return;
	}
	if (!f->started && f->handle[0] && !f->cancelled) {
		snprintf(cmd, sizeof(cmd), "cancel job %s", f->handle);
		for (i = 0; i < c->nservers; i++) {
			out = gadmin_ask(c->tls, c->servers[i].host, c->servers[i].port, cmd, BUILD_ADMIN_MS, err, sizeof(err));
			if (out && strncmp(out, "OK", 2) == 0) {
				f->cancelled = true;
				say(f, "interrupted: job %s cancelled while queued", f->handle);
			}
			free(out);
		}
		if (!f->cancelled && !f->announced)
			say(f, "interrupted: the job is being started; it will be stopped as soon as it runs");
		f->announced = true;
	}
}

/* Whether a worker has registered the function, as gearmand's "status" tells. */
enum reg {
	REG_SERVED,       /* some worker can run it */
	REG_UNSERVED,     /* nobody registered it: the job would wait for ever */
	REG_EADMIN,       /* gearmand did not answer "status" */
};

static enum reg
registered(const struct fn_status *st, size_t n, const char *fn, char *err, size_t errlen)
{
	size_t i;
	enum reg r = REG_UNSERVED;

	if (!st)
		return REG_EADMIN;
	for (i = 0; i < n; i++)
		if (strcmp(st[i].name, fn) == 0 && st[i].workers > 0)
			r = REG_SERVED;
	if (r == REG_UNSERVED)
		snprintf(err, errlen, "no worker can run %s: no node registered it", fn);
	return r;
}

static void
build_usage(FILE *f)
{
	fprintf(f,
	    "usage: jenkins-gearman build JOB [NAME=VALUE ...] [--label LABEL] [--unique ID]\n"
	    "                             [--timeout S] [--json] [-s HOST:PORT[,...]]\n"
	    "\n"
	    "Submit build:JOB (build:JOB:LABEL with --label) and follow the build: where it runs,\n"
	    "its progress, its result. Ctrl-C stops it (or cancels it while queued).\n"
	    "\n"
	    "  NAME=VALUE     a build parameter (repeatable)\n"
	    "  --label LABEL  only nodes with this label may take it\n"
	    "  --unique ID    Gearman unique id (submissions with the same id are one build)\n"
	    "  --timeout S    give up after S seconds (default: wait for the end)\n"
	    "  --json         one JSON event per line\n"
	    "  -s SERVERS     gearmand servers (default $GEARMAN_SERVERS or 127.0.0.1:4730)\n"
	    "\n"
	    "exit status: 0 SUCCESS, 1 UNSTABLE, 2 FAILURE, 3 ABORTED/NOT_BUILT, 4 refused or no worker,\n"
	    "5 usage or connection error\n");
}

/* What the command line asks for. */
struct build_req {
	const char *job, *label, *unique, *servers;
	long        timeout_s;   /* 0: wait for the end */
	bool        as_json;
	char        fn[600];     /* build:JOB[:LABEL] */
	char       *arg;         /* the parameters as a JSON object */
};

/* Parse the options and NAME=VALUE parameters into r: -1 to go on, else the exit status. */
static int
build_parse(struct cli *c, int argc, char **argv, struct build_req *r)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "unique", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	json_t *params;
	int ch, i;

	while ((ch = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': r->label = optarg; break;
		case 'u': r->unique = optarg; break;
		case 't': r->timeout_s = atol(optarg); break;
		case 'j': r->as_json = true; break;
		case 's': r->servers = optarg; break;
		case 'h': build_usage(stdout); return 0;
		default: build_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		build_usage(stderr);
		return EXIT_USAGE;
	}
	r->job = argv[optind];
	params = json_object();
	for (i = optind + 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i]) {
			fprintf(stderr, "jenkins-gearman build: '%s' is not NAME=VALUE\n", argv[i]);
			json_decref(params);
			return EXIT_USAGE;
		}
		*eq = '\0';
		json_object_set_new(params, argv[i], json_string(eq + 1));
	}
	if (cli_servers(c, r->servers) < 0) {
		json_decref(params);
		return EXIT_USAGE;
	}
	snprintf(r->fn, sizeof(r->fn), "build:%s%s%s", r->job, r->label ? ":" : "", r->label ? r->label : "");
	r->arg = json_dumps(params, JSON_COMPACT);
	json_decref(params);
	return -1;
}

/*
 * The declared parameters of the job master offers as build:JOB, from its
 * coordinator's map ({"function": ...}: one job's entry, not the whole
 * map); NULL when it does not offer the job or cannot tell (a coordinator
 * older than the "parameters" list, no answer). The answer is read, not
 * verified: it only decides a warning.
 */
static json_t *
declared_params(struct cli *c, const char *master, const char *job)
{
	char fn[600], err[512], *out = NULL, *text;
	char *base = xasprintf("build:%s", job), *a;
	json_t *req = json_pack("{s:s}", "function", base), *m, *params = NULL;

	a = req ? json_dumps(req, JSON_COMPACT) : NULL;
	snprintf(fn, sizeof(fn), MAP_PREFIX "%s", master);
	if (a && gclient_call(c->tls, c->servers, c->nservers, fn, NULL, a, strlen(a), BUILD_MAP_MS,
	    &out, NULL, err, sizeof(err)) == GCLIENT_OK && (text = sign_peek(out, strlen(out)))) {
		if ((m = json_loads(text, 0, NULL))) {
			params = json_object_get(json_array_get(json_object_get(m, "jobs"), 0), "parameters");
			params = json_is_array(params) ? json_incref(params) : NULL;
			json_decref(m);
		}
		free(text);
	}
	free(out);
	free(a);
	free(base);
	json_decref(req);
	return params;
}

/*
 * Warn on stderr about each parameter in arg that the job does not
 * declare on a master that offers it: Jenkins' buildWithParameters drops
 * it without a word (ParametersDefinitionProperty.buildWithParameters
 * reads the declared ones only). The parameters are sent all the same:
 * gearman-plugin passed every one, and other Gearman-side consumers of
 * the job's argument may read them. The masters are the coordinators
 * registered in gearmand (project_map:*, from st).
 */
static void
warn_undeclared(struct cli *c, const struct fn_status *st, size_t n, const char *job, const char *arg)
{
	json_t *given = json_loads(arg, 0, NULL), *declared, *d, *v;
	const char *name;
	size_t i, k;

	for (i = 0; json_object_size(given) && i < n; i++) {
		const char *master = st[i].name + strlen(MAP_PREFIX);
		char *list = NULL;

		if (strncmp(st[i].name, MAP_PREFIX, strlen(MAP_PREFIX)) != 0 || st[i].workers <= 0 ||
		    !(declared = declared_params(c, master, job)))
			continue;
		json_object_foreach(given, name, v) {
			bool found = false;
			json_array_foreach(declared, k, d)
				found = found || (json_is_string(json_object_get(d, "name")) &&
				    strcmp(json_string_value(json_object_get(d, "name")), name) == 0);
			if (!found) {
				char *more = xasprintf("%s%s%s", list ? list : "", list ? ", " : "", name);
				free(list);
				list = more;
			}
		}
		if (list)
			fprintf(stderr, "jenkins-gearman: warning: job %s on master %s does not declare %s; "
			    "Jenkins will drop %s (sending %s anyway)\n", job, master, list,
			    strchr(list, ',') ? "them" : "it", strchr(list, ',') ? "them" : "it");
		free(list);
		json_decref(declared);
	}
	json_decref(given);
}

/*
 * Follow the submitted job until it ends (-1: f says how), or until an
 * error, a second Ctrl-C, a cancel or the timeout (the exit status).
 */
static int
build_wait(struct cli *c, struct gclient_job *j, struct follow *f, long timeout_s)
{
	long long deadline = clk_now_ms() + (long long)timeout_s * 1000;
	struct gclient_ev ev;
	int r;

	for (;;) {
		if ((r = gclient_next(j, &ev, BUILD_TURN_MS)) < 0) {
			fprintf(stderr, "\njenkins-gearman: %s\n", gclient_error(j));
			return EXIT_USAGE;
		}
		if (r > 0)
			on_event(f, &ev);
		if (f->done)
			return -1;
		if (interrupts) {
			if (interrupts > 1) {
				fprintf(stderr, "\njenkins-gearman: interrupted twice; leaving\n");
				return EXIT_USAGE;
			}
			interrupt(c, f);
			if (f->cancelled)
				return EXIT_ABORTED;
		}
		draw_progress(f);
		if (timeout_s > 0 && clk_passed(deadline)) {
			fprintf(stderr, "\njenkins-gearman: no result within %lds\n", timeout_s);
			return EXIT_USAGE;
		}
	}
}

/* Say how the job ended; the exit status for its result. */
static int
build_outcome(struct follow *f)
{
	if (f->failed) {
		if (f->mode == MODE_JSON) {
			json_t *o = json_pack("{s:s}", "message", f->warning);
			emit_json("refused", o);
			json_decref(o);
		} else
			say(f, "refused: %s", f->warning[0] ? f->warning : "the worker failed the job");
		return EXIT_REFUSED;
	}
	if (f->mode == MODE_JSON)
		emit_json("complete", f->info);
	else
		say(f, "%s #%lld finished: %s", info_str(f, "name"),
		    (long long)json_integer_value(json_object_get(f->info, "number")), f->result ? f->result : "?");
	if (!f->result)
		return EXIT_REFUSED;
	if (!strcmp(f->result, "SUCCESS"))
		return 0;
	if (!strcmp(f->result, "UNSTABLE"))
		return EXIT_UNSTABLE;
	if (!strcmp(f->result, "FAILURE"))
		return EXIT_FAILURE_BUILD;
	return EXIT_ABORTED;
}

int
cmd_build(struct cli *c, int argc, char **argv)
{
	struct build_req r;
	struct follow f;
	struct sigaction sa;
	struct gclient_job *j;
	struct fn_status *st;
	char err[1024];
	long submit_ms;
	size_t nst = 0;
	int ret;

	memset(&r, 0, sizeof(r));
	if ((ret = build_parse(c, argc, argv, &r)) >= 0)
		return ret;
	memset(&f, 0, sizeof(f));
	f.mode = r.as_json ? MODE_JSON : isatty(STDOUT_FILENO) ? MODE_TTY : MODE_LINES;
	f.function = r.fn;
	f.estimated_ms = -1;

	/* Said at once, not after a timeout: nobody registered the function. */
	st = cli_admin_status(c, &nst, err, sizeof(err));
	switch (registered(st, nst, r.fn, err, sizeof(err))) {
	case REG_SERVED:
		break;
	case REG_UNSERVED:
		fprintf(stderr, "jenkins-gearman: %s\n", err);
		cli_fn_status_free(st, nst);
		free(r.arg);
		return EXIT_REFUSED;
	case REG_EADMIN:
		fprintf(stderr, "jenkins-gearman: %s\n", err);
		free(r.arg);
		return EXIT_USAGE;
	}
	warn_undeclared(c, st, nst, r.job, r.arg);
	cli_fn_status_free(st, nst);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);

	submit_ms = BUILD_SUBMIT_MS;
	if (r.timeout_s > 0 && r.timeout_s * 1000 < submit_ms)
		submit_ms = r.timeout_s * 1000;
	j = gclient_submit(c->tls, c->servers, c->nservers, r.fn, r.unique, r.arg,
	    strlen(r.arg), (int)submit_ms, err, sizeof(err));
	if (!j) {
		fprintf(stderr, "jenkins-gearman: %s\n", err);
		ret = EXIT_USAGE;
	} else {
		on_created(&f, gclient_handle(j));
		if ((ret = build_wait(c, j, &f, r.timeout_s)) < 0)
			ret = build_outcome(&f);
	}
	gclient_close(j);
	json_decref(f.info);
	free(f.result);
	free(r.arg);
	return ret;
}
