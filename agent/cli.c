/*
 * jenkins-gearman: the client CLI. Subcommands dispatch to cmd_* functions.
 */
#include <stdio.h>
#include <string.h>

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: jenkins-gearman [-s HOST:PORT[,...]] COMMAND [ARGS]\n"
	    "       jenkins-gearman --version\n"
	    "\n"
	    "commands:\n"
	    "  map      show a master's project-node map\n");
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))) {
		printf("jenkins-gearman %s\n", JGA_VERSION);
		return 0;
	}
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 5;
}
