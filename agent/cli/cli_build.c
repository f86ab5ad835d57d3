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
#include "gadmin.h"
#include "gclient.h"

#include <libgearman/gearman.h>
#include <jansson.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
	struct timespec status_at;
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

static gearman_return_t
on_created(gearman_task_st *t)
{
	struct follow *f = gearman_task_context(t);

	snprintf(f->handle, sizeof(f->handle), "%s", gearman_task_job_handle(t));
	if (f->mode == MODE_JSON) {
		json_t *o = json_pack("{s:s,s:s}", "function", f->function, "handle", f->handle);
		emit_json("queued", o);
		json_decref(o);
	} else
		say(f, "queued %s (job %s); waiting for a free executor", f->function, f->handle);
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_data(gearman_task_st *t)
{
	struct follow *f = gearman_task_context(t);
	json_t *doc = json_loadb(gearman_task_data(t), gearman_task_data_size(t), 0, NULL);

	if (!json_is_object(doc)) {
		json_decref(doc);
		return GEARMAN_SUCCESS;
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
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_status(gearman_task_st *t)
{
	struct follow *f = gearman_task_context(t);

	/* libgearman parses the decimal text as unsigned 32 bits: -1 comes back huge. */
	f->elapsed_ms = gearman_task_numerator(t);
	f->estimated_ms = gearman_task_denominator(t) > 0x7fffffffu ? -1 : (long long)gearman_task_denominator(t);
	clock_gettime(CLOCK_MONOTONIC, &f->status_at);
	if (f->mode == MODE_JSON) {
		json_t *o = json_pack("{s:I,s:I}", "elapsed_ms", f->elapsed_ms, "estimated_ms", f->estimated_ms);
		emit_json("status", o);
		json_decref(o);
	} else if (f->mode == MODE_LINES)
		say(f, "running %llds%s", f->elapsed_ms / 1000, f->estimated_ms > 0 ? "" : " (no estimate)");
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_warning(gearman_task_st *t)
{
	struct follow *f = gearman_task_context(t);
	size_t n = gearman_task_data_size(t);

	json_t *w;

	if (n >= sizeof(f->warning))
		n = sizeof(f->warning) - 1;
	if (n)
		memcpy(f->warning, gearman_task_data(t), n);
	f->warning[n] = '\0';
	/* The agent's refusals are {"error": "..."}: show the message. */
	w = json_loads(f->warning, 0, NULL);
	if (json_is_string(json_object_get(w, "error")))
		snprintf(f->warning, sizeof(f->warning), "%s", json_string_value(json_object_get(w, "error")));
	json_decref(w);
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_complete(gearman_task_st *t)
{
	struct follow *f = gearman_task_context(t);
	json_t *doc = json_loadb(gearman_task_data(t), gearman_task_data_size(t), 0, NULL);

	f->done = true;
	if (json_is_object(doc)) {
		json_decref(f->info);
		f->info = doc;
		if (json_is_string(json_object_get(doc, "result")))
			f->result = strdup(json_string_value(json_object_get(doc, "result")));
	} else
		json_decref(doc);
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_fail(gearman_task_st *t)
{
	struct follow *f = gearman_task_context(t);

	f->done = true;
	f->failed = true;
	return GEARMAN_SUCCESS;
}

/* Redraw the progress line on a terminal: a bar against Jenkins' estimate, or a spinner. */
static void
draw_progress(struct follow *f)
{
	static const char spin[] = "|/-\\";
	struct timespec now;
	long long el;

	if (f->mode != MODE_TTY || !f->started || f->done)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	el = f->elapsed_ms + (f->status_at.tv_sec ? (now.tv_sec - f->status_at.tv_sec) * 1000 +
	    (now.tv_nsec - f->status_at.tv_nsec) / 1000000 : 0);
	if (f->estimated_ms > 0) {
		int pct = (int)(el * 100 / f->estimated_ms), i;
		char bar[31];
		if (pct > 99)
			pct = 99;
		for (i = 0; i < 30; i++)
			bar[i] = i < pct * 30 / 100 ? '#' : '-';
		bar[30] = '\0';
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
		if (gclient_call(c->servers, c->nservers, fn, NULL, a, strlen(a), 10000, &out, NULL, err, sizeof(err)) < 0)
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
			out = gadmin_ask(c->servers[i].host, c->servers[i].port, cmd, 5000, err, sizeof(err));
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

static bool
registered(struct cli *c, const char *fn, char *err, size_t errlen)
{
	struct fn_status *st;
	size_t n, i;
	bool ok = false;

	if (!(st = cli_admin_status(c, &n, err, errlen)))
		return false;
	for (i = 0; i < n; i++)
		if (strcmp(st[i].name, fn) == 0 && st[i].workers > 0)
			ok = true;
	cli_fn_status_free(st, n);
	if (!ok)
		snprintf(err, errlen, "no worker can run %s: no node registered it", fn);
	return ok;
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

int
cmd_build(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "label", required_argument, NULL, 'l' },
		{ "unique", required_argument, NULL, 'u' },
		{ "timeout", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *label = NULL, *unique = NULL, *servers = NULL;
	struct follow f;
	struct sigaction sa;
	gearman_client_st *gc;
	gearman_return_t rc;
	json_t *params = json_object();
	char fn[600], err[1024], *arg;
	long timeout_s = 0;
	struct timespec start;
	int ch, ret = EXIT_USAGE, i;
	bool as_json = false;

	while ((ch = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': label = optarg; break;
		case 'u': unique = optarg; break;
		case 't': timeout_s = atol(optarg); break;
		case 'j': as_json = true; break;
		case 's': servers = optarg; break;
		case 'h': build_usage(stdout); json_decref(params); return 0;
		default: build_usage(stderr); json_decref(params); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		build_usage(stderr);
		json_decref(params);
		return EXIT_USAGE;
	}
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
	if (cli_servers(c, servers) < 0) {
		json_decref(params);
		return EXIT_USAGE;
	}
	snprintf(fn, sizeof(fn), "build:%s%s%s", argv[optind], label ? ":" : "", label ? label : "");
	arg = json_dumps(params, JSON_COMPACT);
	json_decref(params);

	memset(&f, 0, sizeof(f));
	f.mode = as_json ? MODE_JSON : isatty(STDOUT_FILENO) ? MODE_TTY : MODE_LINES;
	f.function = fn;
	f.estimated_ms = -1;

	/* Said at once, not after a timeout: nobody registered the function. */
	if (!registered(c, fn, err, sizeof(err))) {
		fprintf(stderr, "jenkins-gearman: %s\n", err);
		free(arg);
		return strstr(err, "no worker") ? EXIT_REFUSED : EXIT_USAGE;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);

	gc = gearman_client_create(NULL);
	for (size_t k = 0; k < c->nservers; k++)
		gearman_client_add_server(gc, c->servers[k].host, (in_port_t)c->servers[k].port);
	gearman_client_add_options(gc, GEARMAN_CLIENT_NON_BLOCKING);
	gearman_client_set_timeout(gc, 200);
	gearman_client_set_created_fn(gc, on_created);
	gearman_client_set_data_fn(gc, on_data);
	gearman_client_set_status_fn(gc, on_status);
	gearman_client_set_warning_fn(gc, on_warning);
	gearman_client_set_complete_fn(gc, on_complete);
	gearman_client_set_fail_fn(gc, on_fail);
	if (!gearman_client_add_task(gc, NULL, &f, fn, unique, arg, strlen(arg), &rc) || rc != GEARMAN_SUCCESS) {
		fprintf(stderr, "jenkins-gearman: cannot submit %s: %s\n", fn, gearman_client_error(gc));
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct timespec now;

		rc = gearman_client_run_tasks(gc);
		if (f.done)
			break;
		if (rc == GEARMAN_IO_WAIT || rc == GEARMAN_TIMEOUT || rc == GEARMAN_SUCCESS) {
			rc = gearman_client_wait(gc);
			if (rc != GEARMAN_SUCCESS && rc != GEARMAN_TIMEOUT && rc != GEARMAN_IO_WAIT) {
				fprintf(stderr, "\njenkins-gearman: %s\n", gearman_client_error(gc));
				goto out;
			}
		} else {
			fprintf(stderr, "\njenkins-gearman: %s\n", gearman_client_error(gc));
			goto out;
		}
		if (interrupts) {
			if (interrupts > 1) {
				fprintf(stderr, "\njenkins-gearman: interrupted twice; leaving\n");
				goto out;
			}
			interrupt(c, &f);
			if (f.cancelled) {
				ret = EXIT_ABORTED;
				goto out;
			}
		}
		draw_progress(&f);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (timeout_s > 0 && now.tv_sec - start.tv_sec >= timeout_s) {
			fprintf(stderr, "\njenkins-gearman: no result within %lds\n", timeout_s);
			goto out;
		}
	}

	if (f.failed) {
		if (f.mode == MODE_JSON) {
			json_t *o = json_pack("{s:s}", "message", f.warning);
			emit_json("refused", o);
			json_decref(o);
		} else
			say(&f, "refused: %s", f.warning[0] ? f.warning : "the worker failed the job");
		ret = EXIT_REFUSED;
		goto out;
	}
	if (f.mode == MODE_JSON)
		emit_json("complete", f.info);
	else
		say(&f, "%s #%lld finished: %s", info_str(&f, "name"),
		    (long long)json_integer_value(json_object_get(f.info, "number")), f.result ? f.result : "?");
	ret = !f.result ? EXIT_REFUSED : !strcmp(f.result, "SUCCESS") ? 0 :
	    !strcmp(f.result, "UNSTABLE") ? EXIT_UNSTABLE : !strcmp(f.result, "FAILURE") ? EXIT_FAILURE_BUILD :
	    EXIT_ABORTED;
out:
	gearman_client_free(gc);
	json_decref(f.info);
	free(f.result);
	free(arg);
	return ret;
}
