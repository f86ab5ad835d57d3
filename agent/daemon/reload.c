/* reload: see reload.h. */
#include "reload.h"

#include "defaults.h"

#include "config.h"
#include "log.h"
#include "node/state.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int
differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

void
reload_config(struct config *run)
{
	struct config n;
	char err[1024];
	size_t i;
	int restart = 0;

	if (config_load(run->path, &n, err, sizeof(err)) < 0) {
		log_errorx("reload: %s; keeping the running configuration", err);
		return;
	}
	if (defaults_apply(&n, err, sizeof(err)) < 0) {
		log_errorx("reload: %s; keeping the running configuration", err);
		config_free(&n);
		return;
	}
	/* Read by other threads: plain int stores, done atomically. */
	__atomic_store_n(&run->status_interval, n.status_interval, __ATOMIC_RELAXED);
	__atomic_store_n(&run->refresh, n.refresh, __ATOMIC_RELAXED);
	__atomic_store_n(&run->heartbeat, n.heartbeat, __ATOMIC_RELAXED);
	run->log_level = n.log_level;
	log_set_level(n.log_level);

	restart |= n.nservers != run->nservers;
	for (i = 0; !restart && i < n.nservers; i++)
		restart |= strcmp(n.servers[i].host, run->servers[i].host) || n.servers[i].port != run->servers[i].port;
	restart |= differ(n.url, run->url) || differ(n.user, run->user) || differ(n.token, run->token) ||
	    differ(n.password, run->password) || differ(n.ca_file, run->ca_file) ||
	    n.tls_verify != run->tls_verify || n.connect_timeout_ms != run->connect_timeout_ms ||
	    n.timeout_ms != run->timeout_ms || differ(n.node_name, run->node_name) ||
	    differ(n.coordinator_name, run->coordinator_name) || n.function_names != run->function_names ||
	    differ(n.state_dir, run->state_dir) || n.trigger_timeout != run->trigger_timeout ||
	    n.start_timeout != run->start_timeout || n.follow_timeout != run->follow_timeout ||
	    differ(n.map_key_file, run->map_key_file) || differ(n.map_public_key_file, run->map_public_key_file) ||
	    differ(n.tls_ca_file, run->tls_ca_file) || differ(n.tls_cert_file, run->tls_cert_file) ||
	    differ(n.tls_key_file, run->tls_key_file);
	if (run->state_dir && state_check_dir(run->state_dir, err, sizeof(err)) < 0 && errno != ENOENT)
		log_warnx("reload: %s", err);	/* in use: refused at the next start */
	log_info("reload: %s read; log level, status_interval and refresh applied%s", run->path,
	    restart ? "; other changes need a restart" : "");
	config_free(&n);
}
