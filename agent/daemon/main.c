/*
 * jenkins-gearman-agent: one binary, two roles.
 *
 *   jenkins-gearman-agent node -c FILE         the node agent (one per Jenkins node)
 *   jenkins-gearman-agent coordinator -c FILE  the coordinator (one per master)
 *   jenkins-gearman-agent keygen [--out DIR]   the key pair that signs maps
 *
 * Both run in the foreground and log to stderr; SIGTERM stops them.
 */
#include "config.h"
#include "daemon/defaults.h"
#include "jarena.h"
#include "log.h"
#include "roles.h"
#include "sign.h"

#include <curl/curl.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jenkins-gearman-agent node -c FILE\n"
	    "       jenkins-gearman-agent coordinator -c FILE\n"
	    "       jenkins-gearman-agent keygen [--out DIR]\n"
	    "       jenkins-gearman-agent --version\n"
	    "\n"
	    "  node          register this Jenkins node's executors as Gearman workers\n"
	    "  coordinator   serve the project-node map, stop: and set_description: for a master\n"
	    "  -c FILE       configuration file (see jenkins-gearman-agent.ini(5))\n"
	    "  -t            check the configuration file and exit\n"
	    "  keygen        write the Ed25519 pair that signs maps: DIR/" SIGN_PRIVATE_FILE
	    " (the coordinator's,\n"
	    "                0600) and DIR/" SIGN_PUBLIC_FILE " (every agent's); DIR defaults to "
	    DEFAULTS_KEY_DIR "\n");
}

/* keygen [--out DIR]: never overwrites a key. */
static int
keygen_main(int argc, char **argv)
{
	static const struct option opts[] = { { "out", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 } };
	const char *dir = DEFAULTS_KEY_DIR;
	char err[1024];
	int ch;

	optind = 2;
	while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o': dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (sign_keygen(dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "jenkins-gearman-agent keygen: %s\n", err);
		return 1;
	}
	printf("%s/%s: private key (the coordinator's [coordinator] map_key_file)\n"
	    "%s/%s: public key (every node agent's [node] map_public_key_file)\n",
	    dir, SIGN_PRIVATE_FILE, dir, SIGN_PUBLIC_FILE);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *role, *file = NULL;
	struct config cfg;
	char err[1024];
	int ch, test_only = 0, rc;

	if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("jenkins-gearman-agent %s\n", JGA_VERSION);
		return 0;
	}
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "keygen"))
		return keygen_main(argc, argv);
	if (argc < 2 || (strcmp(argv[1], "node") && strcmp(argv[1], "coordinator"))) {
		usage(stderr);
		return 2;
	}
	role = argv[1];
	optind = 2;
	while ((ch = getopt(argc, argv, "c:th")) != -1) {
		switch (ch) {
		case 'c': file = optarg; break;
		case 't': test_only = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!file || optind != argc) {
		usage(stderr);
		return 2;
	}

	log_init(!strcmp(role, "node") ? "jga-node" : "jga-coordinator", LOG_LEVEL_INFO);
	/* TLS to gearmand is set up here, once: a bad file fails -t too. */
	if (config_load(file, &cfg, err, sizeof(err)) < 0 || defaults_apply(&cfg, err, sizeof(err)) < 0 ||
	    config_gearman_tls(&cfg, err, sizeof(err)) < 0) {
		log_errorx("%s", err);
		config_free(&cfg);
		return 1;
	}
	log_set_level(cfg.log_level);
	log_set_format(cfg.log_format);
	if (test_only) {
		printf("%s: configuration OK\n", file);
		config_free(&cfg);
		return 0;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		fatalx("curl_global_init failed");
	jarena_install();

	if (!strcmp(role, "node"))
		rc = node_main(&cfg);
	else
		rc = coordinator_main(&cfg);

	curl_global_cleanup();
	config_free(&cfg);
	return rc;
}
