/*
 * jenkins-gearman: the client CLI. One binary, subcommands dispatching to
 * cmd_* functions (git style). Servers come from -s, else $GEARMAN_SERVERS,
 * else 127.0.0.1:4730. TLS to gearmand from the --tls-* options given
 * before the command, else $JENKINS_GEARMAN_TLS_{CA,CERT,KEY}_FILE.
 *
 * Exit status: 0 success, 4 refused by the worker, 5 usage or connection
 * error (the build command adds 1-3 for build results).
 */
#include "cli.h"
#include "gclient.h"
#include "gnet.h"
#include "log.h"
#include "sign.h"
#include "xalloc.h"

#include <jansson.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * How long map, stop and describe wait for the coordinator by default (-t):
 * it answers from memory, so silence this long means nobody is serving.
 */
#define CLI_TIMEOUT_MS 10000

int
cli_call_exit(enum gclient_err e)
{
	return e == GCLIENT_EFAILED ? EXIT_REFUSED : EXIT_USAGE;
}

int
cli_servers(struct cli *c, const char *arg)
{
	char err[300];

	if (!arg)
		arg = getenv("GEARMAN_SERVERS");
	if (!arg || !*arg)
		arg = "127.0.0.1:4730";
	if (config_parse_servers(arg, c->servers, CONFIG_MAX_SERVERS, &c->nservers, err, sizeof(err)) < 0) {
		fprintf(stderr, "jenkins-gearman: -s %s: %s\n", arg, err);
		return -1;
	}
	return 0;
}

/* ---- map ---- */

static void
map_usage(FILE *f)
{
	fprintf(f,
	    "usage: jenkins-gearman map --master HOST [--node NAME] [--json] [-s HOST:PORT[,...]]\n"
	    "\n"
	    "Show a master's project-node map, as its coordinator serves it on project_map:HOST:\n"
	    "each job, its functions and the nodes that can run it, and the jobs that cannot\n"
	    "be dispatched, with the reason. With --node, that node's functions only.\n"
	    "\n"
	    "  --master HOST   the coordinator's name ([coordinator] name)\n"
	    "  --node NAME     one node's slice\n"
	    "  --json          print the coordinator's JSON as it is\n"
	    "  -s SERVERS      gearmand servers (default $GEARMAN_SERVERS or 127.0.0.1:4730)\n"
	    "  -t SECONDS      how long to wait for the coordinator (default 10)\n");
}

/* The Pipeline jobs offered, and what their scripts must do. */
static void
print_pipelines(json_t *jobs)
{
	json_t *j;
	size_t i, k = 0;

	json_array_foreach(jobs, i, j) {
		if (!json_is_true(json_object_get(j, "pipeline")))
			continue;
		if (!k++)
			printf("\nPipeline jobs (the script must run its steps in node(params.PIN)):\n");
		printf("  %-30s node(params.%s)\n", json_string_value(json_object_get(j, "job")),
		    json_string_value(json_object_get(j, "pin")));
	}
}

static void
print_whole(json_t *m)
{
	json_t *jobs = json_object_get(m, "jobs"), *j, *u, *x;
	size_t i, k;

	printf("master %s, map version %s\n\n", json_string_value(json_object_get(m, "master")),
	    json_string_value(json_object_get(m, "version")));
	printf("%-32s %-40s %s\n", "JOB", "FUNCTION", "NODES");
	json_array_foreach(jobs, i, j) {
		json_t *nodes = json_object_get(j, "nodes"), *n;
		printf("%-32s %-40s ", json_string_value(json_object_get(j, "job")),
		    json_string_value(json_object_get(j, "function")));
		if (json_array_size(nodes) == 0)
			printf("(no node can run it now)");
		json_array_foreach(nodes, k, n)
			printf("%s%s", k ? "," : "", json_string_value(n));
		printf("\n");
	}
	print_pipelines(jobs);
	u = json_object_get(m, "undispatchable");
	if (json_array_size(u)) {
		printf("\nnot dispatchable:\n");
		json_array_foreach(u, i, x)
			printf("  %-30s %s\n", json_string_value(json_object_get(x, "job")),
			    json_string_value(json_object_get(x, "reason")));
	}
	u = json_object_get(m, "collisions");
	if (json_array_size(u)) {
		printf("\nname collisions (set [coordinator] function_names = full):\n");
		json_array_foreach(u, i, x) {
			char *jobs_txt = json_dumps(json_object_get(x, "jobs"), JSON_COMPACT);
			printf("  %-30s %s\n", json_string_value(json_object_get(x, "function")), jobs_txt);
			free(jobs_txt);
		}
	}
	u = json_object_get(m, "skipped");
	if (json_array_size(u)) {
		printf("\nfunction names skipped:\n");
		json_array_foreach(u, i, x)
			printf("  %-30s %s\n", json_string_value(json_object_get(x, "function")),
			    json_string_value(json_object_get(x, "reason")));
	}
}

static void
print_slice(json_t *m)
{
	json_t *node = json_object_get(m, "node"), *fns = json_object_get(m, "functions"), *f, *l;
	size_t i;

	printf("node %s of %s: %lld executor(s), %s, mode %s, labels", json_string_value(json_object_get(node, "name")),
	    json_string_value(json_object_get(m, "master")),
	    (long long)json_integer_value(json_object_get(node, "executors")),
	    json_is_true(json_object_get(node, "online")) ? "online" : "offline",
	    json_string_value(json_object_get(node, "mode")));
	json_array_foreach(json_object_get(node, "labels"), i, l)
		printf(" %s", json_string_value(l));
	printf("\nmap version %s\n\n%-40s %-32s %s\n", json_string_value(json_object_get(m, "version")),
	    "FUNCTION", "JOB", "PIN");
	json_array_foreach(fns, i, f)
		printf("%-40s %-32s %s\n", json_string_value(json_object_get(f, "name")),
		    json_string_value(json_object_get(f, "job")), json_string_value(json_object_get(f, "pin")));
	if (json_array_size(fns) == 0)
		printf("(none)\n");
}

int
cmd_map(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "master", required_argument, NULL, 'm' },
		{ "node", required_argument, NULL, 'n' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *master = NULL, *node = NULL, *servers = NULL;
	char fn[600], err[1024], *out = NULL, *req, *text;
	json_t *r, *m;
	enum gclient_err e;
	int ch, as_json = 0;

	while ((ch = getopt_long(argc, argv, "s:t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': master = optarg; break;
		case 'n': node = optarg; break;
		case 'j': as_json = 1; break;
		case 's': servers = optarg; break;
		case 't': c->timeout_ms = atoi(optarg) * 1000; break;
		case 'h': map_usage(stdout); return 0;
		default: map_usage(stderr); return EXIT_USAGE;
		}
	}
	if (!master || optind != argc || c->timeout_ms <= 0) {
		map_usage(stderr);
		return EXIT_USAGE;
	}
	if (cli_servers(c, servers) < 0)
		return EXIT_USAGE;
	r = node ? json_pack("{s:s}", "node", node) : json_object();
	req = json_dumps(r, JSON_COMPACT);
	json_decref(r);
	snprintf(fn, sizeof(fn), "project_map:%s", master);
	e = gclient_call(c->tls, c->servers, c->nservers, fn, NULL, req, strlen(req),
	    c->timeout_ms, &out, NULL, err, sizeof(err));
	free(req);
	if (e != GCLIENT_OK) {
		fprintf(stderr, "jenkins-gearman: %s\n", err);
		return cli_call_exit(e);
	}
	/* The answer is a signed envelope (sign.h): show the map in it (not verified here). */
	if ((text = sign_peek(out, strlen(out)))) {
		free(out);
		out = text;
	}
	if (as_json) {
		printf("%s\n", out);
		free(out);
		return 0;
	}
	m = json_loads(out, 0, NULL);
	free(out);
	if (!m) {
		fprintf(stderr, "jenkins-gearman: the coordinator's answer is not JSON\n");
		return EXIT_USAGE;
	}
	if (node)
		print_slice(m);
	else
		print_whole(m);
	json_decref(m);
	return 0;
}

/* ---- dispatch ---- */

static const struct {
	const char *name;
	int (*fn)(struct cli *, int, char **);
	const char *help;
} commands[] = {
	{ "build", cmd_build, "run a Jenkins job through Gearman and follow it" },
	{ "stop", cmd_stop, "stop a running build (stop:$master)" },
	{ "describe", cmd_describe, "set a build's description (set_description:$master)" },
	{ "status", cmd_status, "queued, running and workers per job, with the nodes that serve it" },
	{ "map", cmd_map, "show a master's project-node map" },
	{ "web", cmd_web, "serve the pool's status page and its JSON API (read-only)" },
};

static void
usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: jenkins-gearman [TLS OPTIONS] COMMAND [OPTIONS]\n"
	    "       jenkins-gearman --version\n\ncommands:\n");
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nTLS to gearmand (a TLS proxy in front of it), all three or none:\n"
	    "  --tls-ca-file FILE    CA certificates the server's certificate must chain to\n"
	    "  --tls-cert-file FILE  our client certificate (PEM)\n"
	    "  --tls-key-file FILE   its private key (PEM, mode 0600)\n"
	    "  (default $JENKINS_GEARMAN_TLS_CA_FILE, _CERT_FILE, _KEY_FILE)\n"
	    "\n'jenkins-gearman COMMAND --help' describes a command.\n");
}

/* The TLS options, each "--NAME FILE" or "--NAME=FILE"; env is the variable that stands in for it. */
static const struct {
	const char *name, *env;
} tls_opts[3] = {
	{ "--tls-ca-file", "JENKINS_GEARMAN_TLS_CA_FILE" },
	{ "--tls-cert-file", "JENKINS_GEARMAN_TLS_CERT_FILE" },
	{ "--tls-key-file", "JENKINS_GEARMAN_TLS_KEY_FILE" },
};

/*
 * The --tls-* options before the command (from argv[*argi] on; *argi is
 * left at the command), else the environment; then c->tls built from
 * them. -1 after printing why: half a TLS setup is an error, never
 * plaintext.
 */
static int
cli_tls(struct cli *c, int argc, char **argv, int *argi)
{
	const char *file[3] = { NULL, NULL, NULL };
	char err[1024];
	int k, given = 0;

	while (*argi < argc && !strncmp(argv[*argi], "--tls-", 6)) {
		const char *a = argv[(*argi)++], *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);

		for (k = 0; k < 3 && (strlen(tls_opts[k].name) != nl || strncmp(a, tls_opts[k].name, nl)); k++)
			;
		if (k == 3 || (!eq && *argi >= argc)) {
			fprintf(stderr, "jenkins-gearman: %s: unknown option, or no FILE after it\n", a);
			return -1;
		}
		file[k] = eq ? eq + 1 : argv[(*argi)++];
	}
	for (k = 0; k < 3; k++) {
		if (!file[k] && getenv(tls_opts[k].env) && *getenv(tls_opts[k].env))
			file[k] = getenv(tls_opts[k].env);
		given += file[k] != NULL;
	}
	if (given == 0)
		return 0;
	if (given != 3) {
		fprintf(stderr, "jenkins-gearman: TLS needs %s, %s and %s, all three\n", tls_opts[0].name,
		    tls_opts[1].name, tls_opts[2].name);
		return -1;
	}
	if (!(c->tls = gnet_tls_new(file[0], file[1], file[2], err, sizeof(err)))) {
		fprintf(stderr, "jenkins-gearman: TLS: %s\n", err);
		return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct cli c = { .timeout_ms = CLI_TIMEOUT_MS };
	int argi = 1, rc;
	size_t i;

	log_init("jenkins-gearman", LOG_LEVEL_WARN);
	xalloc_install_json();
	if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("jenkins-gearman %s\n", JGA_VERSION);
		return 0;
	}
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
		usage(stdout);
		return 0;
	}
	if (cli_tls(&c, argc, argv, &argi) < 0)
		return EXIT_USAGE;
	for (i = 0; argi < argc && i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[argi], commands[i].name)) {
			rc = commands[i].fn(&c, argc - argi, argv + argi);
			gnet_tls_free(c.tls);
			return rc;
		}
	if (argi < argc)
		fprintf(stderr, "jenkins-gearman: unknown command '%s'\n", argv[argi]);
	usage(stderr);
	gnet_tls_free(c.tls);
	return EXIT_USAGE;
}
