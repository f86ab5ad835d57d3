/* daemon: see daemon.h. */
#include "daemon.h"

#include "config.h"
#include "jenkins.h"
#include "log.h"
#include "metrics.h"
#include "reload.h"
#include "shutdown.h"

#include <signal.h>

struct jk_client *
daemon_jenkins_client(const struct config *cfg)
{
	struct jk_opts o = {
		.url = cfg->url, .user = cfg->user, .token = cfg->token,
		.password = cfg->password, .ca_file = cfg->ca_file,
		.tls_verify = cfg->tls_verify,
		.connect_timeout_ms = cfg->connect_timeout_ms, .timeout_ms = cfg->timeout_ms,
	};
	struct jk_client *c = jk_client_new(&o);

	if (!c)
		fatalx("cannot create a Jenkins client (out of memory?)");
	return c;
}

void
daemon_write_metrics(const struct config *cfg)
{
	char err[600];

	if (cfg->metrics_textfile && metrics_write(cfg->metrics_textfile, err, sizeof(err)) < 0)
		log_warnx("%s", err);
}

int
daemon_wait_signal(struct config *cfg, long timeout_ms)
{
	int sig = shutdown_wait_signal(timeout_ms);

	if (sig != SIGHUP)
		return sig;
	reload_config(cfg);
	return 0;
}

int
daemon_wait_stop(struct config *cfg)
{
	unsigned long ticks;
	int sig;

	for (ticks = 0; !(sig = daemon_wait_signal(cfg, DAEMON_TICK_MS)); ticks++)
		if (ticks % DAEMON_METRICS_TICKS == 0)
			daemon_write_metrics(cfg);
	return sig;
}
