/* The client CLI's shared state and its subcommands (one cmd_* per command). */
#ifndef JGA_CLI_H
#define JGA_CLI_H

#include <stdio.h>

#include "config.h"

#define EXIT_UNSTABLE 1
#define EXIT_FAILURE_BUILD 2
#define EXIT_ABORTED  3
#define EXIT_REFUSED  4
#define EXIT_USAGE    5

struct cli {
	struct config_server servers[CONFIG_MAX_SERVERS];
	size_t nservers;
	int    timeout_ms;
};

/* Parse -s (or $GEARMAN_SERVERS, or 127.0.0.1:4730) into c. -1 after printing why. */
int cli_servers(struct cli *c, const char *arg);

int cmd_map(struct cli *c, int argc, char **argv);
int cmd_build(struct cli *c, int argc, char **argv);
int cmd_stop(struct cli *c, int argc, char **argv);
int cmd_describe(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);

/* The "status" admin lines of every server: function -> queued, running, workers (summed). */
struct fn_status {
	char *name;
	long  total, running, workers;
};
struct fn_status *cli_admin_status(struct cli *c, size_t *n, char *err, size_t errlen);
void              cli_fn_status_free(struct fn_status *v, size_t n);

#endif
