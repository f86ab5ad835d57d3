/*
 * The client CLI: its shared state and its subcommands (one cmd_* per
 * command, each taking its own argv, argv[0] being the command's name,
 * and returning the process's exit status).
 */
#ifndef JGA_CLI_H
#define JGA_CLI_H

#include <stdio.h>

#include "config.h"
#include "gclient.h"

/* Exit statuses: 0 success; 1-3 a build's result; 4 refused; 5 usage or connection. */
#define EXIT_UNSTABLE       1   /* the build ended UNSTABLE */
#define EXIT_FAILURE_BUILD  2   /* the build ended FAILURE */
#define EXIT_ABORTED        3   /* ABORTED or NOT_BUILT, or stopped/cancelled by Ctrl-C */
#define EXIT_REFUSED        4   /* the worker refused the job (WORK_FAIL), or no worker can run it */
#define EXIT_USAGE          5   /* bad command line, or gearmand / the coordinator unreachable */

struct cli {
	struct config_server servers[CONFIG_MAX_SERVERS];
	size_t nservers;
	int    timeout_ms;     /* how long a management call may wait for its answer */
	/*
	 * TLS to gearmand (--tls-ca-file/--tls-cert-file/--tls-key-file before
	 * the command, or $JENKINS_GEARMAN_TLS_*), built once by main before
	 * the command runs: every connection a command opens takes it. NULL:
	 * plain TCP.
	 */
	struct gnet_tls *tls;
};

/* The exit status for a gclient_call that failed: EXIT_REFUSED when the worker refused it, else EXIT_USAGE. */
int cli_call_exit(enum gclient_err e);

/* Parse -s (or $GEARMAN_SERVERS, or 127.0.0.1:4730) into c. -1 after printing why. */
int cli_servers(struct cli *c, const char *arg);

int cmd_map(struct cli *c, int argc, char **argv);
int cmd_build(struct cli *c, int argc, char **argv);
int cmd_stop(struct cli *c, int argc, char **argv);
int cmd_describe(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);

/* One function in gearmand's admin "status", summed over every server. */
struct fn_status {
	char *name;
	long  total, running, workers;   /* total counts the running jobs too */
};
/*
 * Every server's "status": a vector of *n functions (never NULL on success,
 * even when empty), or NULL with err when a server does not answer.
 */
struct fn_status *cli_admin_status(struct cli *c, size_t *n, char *err, size_t errlen);
void              cli_fn_status_free(struct fn_status *v, size_t n);

/* The node an agent's worker id names ("$node_exec-$i" or "$node"), malloc'd; NULL for "-". */
char  *cli_node_of(const char *id);
int    cmd_web(struct cli *c, int argc, char **argv);

#endif
