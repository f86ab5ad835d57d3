/*
 * jenkins-gearman stop / describe / status: the coordinator's management
 * functions and gearmand's admin protocol, for people.
 */
#include "cli.h"
#include "gadmin.h"
#include "gclient.h"
#include "sign.h"
#include "strvec.h"
#include "xalloc.h"

#include <jansson.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * How long gearmand may take to answer an admin command, and a coordinator
 * to answer project_map for status: both answer from memory at once.
 */
#define ADMIN_TIMEOUT_MS 5000
/* Room for the first vector of functions: a small site's whole list. */
#define ADMIN_FIRST_CAP  64

/* Add one "status" line to v, summed by name over the servers. */
static void
admin_status_line(const char *line, struct fn_status **v, size_t *n, size_t *cap)
{
	struct gadmin_fn f;
	size_t k;

	if (gadmin_status_parse(line, &f) < 0)
		return;
	for (k = 0; k < *n && strcmp((*v)[k].name, f.name); k++)
		;
	if (k == *n) {
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : ADMIN_FIRST_CAP;
			*v = xreallocarray(*v, *cap, sizeof(**v));
		}
		(*v)[k].name = xstrdup(f.name);
		(*v)[k].total = (*v)[k].running = (*v)[k].workers = 0;
		(*n)++;
	}
	(*v)[k].total += f.total;
	(*v)[k].running += f.running;
	(*v)[k].workers += f.workers;
}

struct fn_status *
cli_admin_status(struct cli *c, size_t *n, char *err, size_t errlen)
{
	struct fn_status *v = NULL;
	size_t i, cap = 0;

	*n = 0;
	for (i = 0; i < c->nservers; i++) {
		char *text = gadmin_ask(c->tls, c->servers[i].host, c->servers[i].port, "status",
		    ADMIN_TIMEOUT_MS, err, errlen);
		char *line, *save = NULL;

		if (!text) {
			cli_fn_status_free(v, *n);
			return NULL;
		}
		for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			admin_status_line(line, &v, n, &cap);
		free(text);
	}
	if (!v)
		v = xcalloc(1, sizeof(*v));
	return v;
}

void
cli_fn_status_free(struct fn_status *v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i].name);
	free(v);
}

/* stop and describe share everything but the function and one field. */
static int
call_manager(struct cli *c, int argc, char **argv, bool describe)
{
	static const struct option opts[] = {
		{ "master", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *master = NULL, *servers = NULL, *usage = describe
	    ? "usage: jenkins-gearman describe --master HOST JOB NUMBER TEXT [-s HOST:PORT]\n"
	      "Set the description (HTML) of build JOB #NUMBER through set_description:HOST.\n"
	    : "usage: jenkins-gearman stop --master HOST JOB NUMBER [-s HOST:PORT]\n"
	      "Stop the running build JOB #NUMBER through stop:HOST.\n";
	char fn[600], err[1024], *a, *out = NULL, *end;
	json_t *arg;
	enum gclient_err e;
	long number;
	int ch, want = describe ? 3 : 2;

	while ((ch = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': master = optarg; break;
		case 's': servers = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return EXIT_USAGE;
		}
	}
	if (!master || argc - optind != want) {
		fputs(usage, stderr);
		return EXIT_USAGE;
	}
	number = strtol(argv[optind + 1], &end, 10);
	if (*end || number <= 0) {
		fprintf(stderr, "jenkins-gearman: '%s' is not a build number\n", argv[optind + 1]);
		return EXIT_USAGE;
	}
	if (cli_servers(c, servers) < 0)
		return EXIT_USAGE;
	arg = json_pack("{s:s,s:i}", "name", argv[optind], "number", (int)number);
	if (describe)
		json_object_set_new(arg, "html_description", json_string(argv[optind + 2]));
	a = json_dumps(arg, JSON_COMPACT);
	json_decref(arg);
	snprintf(fn, sizeof(fn), "%s:%s", describe ? "set_description" : "stop", master);
	e = gclient_call(c->tls, c->servers, c->nservers, fn, NULL, a, strlen(a),
	    c->timeout_ms, &out, NULL, err, sizeof(err));
	free(a);
	if (e != GCLIENT_OK) {
		fprintf(stderr, "jenkins-gearman: %s\n", err);
		return cli_call_exit(e);
	}
	if (describe)
		printf("%s\n", out);
	else
		printf("stopped %s #%ld\n", argv[optind], number);
	free(out);
	return 0;
}

int
cmd_stop(struct cli *c, int argc, char **argv)
{
	return call_manager(c, argc, argv, false);
}

int
cmd_describe(struct cli *c, int argc, char **argv)
{
	return call_manager(c, argc, argv, true);
}

/*
 * Node name from a worker id: an agent's connection is named after its
 * node ("$node_exec-$i" in gearman-plugin and older agents). NULL for
 * connections without an id ("-").
 */
char *
cli_node_of(const char *id)
{
	const char *p = strstr(id, "_exec-");

	if (p)
		return xstrndup(id, (size_t)(p - id));
	return strcmp(id, "-") != 0 ? xstrdup(id) : NULL;
}

/* Who serves what, gathered from gearmand's "workers" and the coordinators' maps. */
struct servers_of {
	json_t *fn_nodes;      /* function -> {node: true} */
	json_t *node_master;   /* node -> its coordinator's master */
};

/* The coordinator master's map: note the master of each of its nodes. */
static void
status_master_nodes(struct cli *c, const char *master, size_t len, struct servers_of *so)
{
	char fn[300], *out = NULL, *text = NULL, err[512];
	json_t *m, *nodes, *nd;
	size_t j;

	snprintf(fn, sizeof(fn), "project_map:%.*s", (int)len, master);
	if (gclient_call(c->tls, c->servers, c->nservers, fn, NULL, "{}", 2, ADMIN_TIMEOUT_MS,
	    &out, NULL, err, sizeof(err)) == GCLIENT_OK && (text = sign_peek(out, strlen(out))) &&
	    (m = json_loads(text, 0, NULL))) {
		nodes = json_object_get(m, "nodes");
		json_array_foreach(nodes, j, nd)
			json_object_set_new(so->node_master,
			    json_string_value(json_object_get(json_object_get(nd, "node"), "name")),
			    json_string(json_string_value(json_object_get(m, "master"))));
		json_decref(m);
	}
	free(text);
	free(out);
}

/*
 * One "workers" line: FD IP ID : FUNCTION... A coordinator ("$master_manager")
 * is asked for its map; an agent's node is noted for each of its functions.
 */
static void
status_worker_line(struct cli *c, const char *line, struct servers_of *so, char *const *spaced,
    size_t nspaced)
{
	static const char manager[] = "_manager";
	const size_t mlen = sizeof(manager) - 1;
	char id[GADMIN_ID_MAX], *node, *f;
	const char *p;
	size_t idlen, fl;

	if (gadmin_worker_parse(line, id, &p) < 0)
		return;
	idlen = strlen(id);
	if (idlen > mlen && !strcmp(id + idlen - mlen, manager)) {
		status_master_nodes(c, id, idlen - mlen, so);
		return;
	}
	if (!(node = cli_node_of(id)))
		return;
	for (; *p; p += fl) {
		json_t *set;

		if (*p == ' ') {
			fl = 1;
			continue;
		}
		fl = gadmin_worker_fn_len(p, spaced, nspaced);
		f = xstrndup(p, fl);
		if (!(set = json_object_get(so->fn_nodes, f))) {
			set = json_object();
			json_object_set_new(so->fn_nodes, f, set);
		}
		json_object_set_new(set, node, json_true());
		free(f);
	}
	free(node);
}

static void
status_servers_of(struct cli *c, struct servers_of *so, const struct fn_status *st, size_t n)
{
	char err[1024], **spaced = NULL;
	size_t i, nspaced = 0;

	for (i = 0; i < n; i++)
		if (strchr(st[i].name, ' '))
			strv_push(&spaced, &nspaced, st[i].name, (size_t)-1);

	for (i = 0; i < c->nservers; i++) {
		char *text = gadmin_ask(c->tls, c->servers[i].host, c->servers[i].port, "workers",
		    ADMIN_TIMEOUT_MS, err, sizeof(err));
		char *line, *save = NULL;

		for (line = text ? strtok_r(text, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
			status_worker_line(c, line, so, spaced, nspaced);
		free(text);
	}
	strv_free(spaced, nspaced);
}

/* The table of build: functions; a function with queued jobs and no worker is marked "!!". */
static void
status_print(const struct fn_status *st, size_t n, const struct servers_of *so)
{
	size_t i, k;
	int starving = 0;

	printf("%-40s %7s %8s %8s  %s\n", "FUNCTION", "QUEUED", "RUNNING", "WORKERS", "NODES (MASTER)");
	for (i = 0; i < n; i++) {
		const char *node;
		json_t *v, *set;
		long queued = st[i].total - st[i].running;

		if (strncmp(st[i].name, "build:", 6) != 0)
			continue;
		if (st[i].total == 0 && st[i].workers == 0)
			continue;   /* gearmand never forgets a function name */
		printf("%s%-38s %7ld %8ld %8ld  ", queued > 0 && st[i].workers == 0 ? "!!" : "  ",
		    st[i].name, queued, st[i].running, st[i].workers);
		set = json_object_get(so->fn_nodes, st[i].name);
		k = 0;
		json_object_foreach(set, node, v) {
			const char *m = json_string_value(json_object_get(so->node_master, node));
			printf("%s%s(%s)", k++ ? " " : "", node, m ? m : "?");
		}
		if (queued > 0 && st[i].workers == 0) {
			printf("no worker can run it");
			starving++;
		}
		printf("\n");
	}
	if (starving)
		printf("\n!! %d function(s) have queued jobs and no worker\n", starving);
}

int
cmd_status(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = { { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	const char *servers = NULL;
	struct servers_of so;
	struct fn_status *st;
	char err[1024];
	size_t n;
	int ch;

	while ((ch = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's': servers = optarg; break;
		case 'h':
			printf("usage: jenkins-gearman status [-s HOST:PORT[,...]]\n"
			    "Queued, running and workers for every build: function, with the masters and\n"
			    "nodes that serve it. Jobs queued with no worker are marked '!!'.\n");
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind != argc || cli_servers(c, servers) < 0)
		return EXIT_USAGE;
	if (!(st = cli_admin_status(c, &n, err, sizeof(err)))) {
		fprintf(stderr, "jenkins-gearman: %s\n", err);
		return EXIT_USAGE;
	}
	so.fn_nodes = json_object();
	so.node_master = json_object();
	status_servers_of(c, &so, st, n);
	status_print(st, n, &so);
	cli_fn_status_free(st, n);
	json_decref(so.fn_nodes);
	json_decref(so.node_master);
	return 0;
}
