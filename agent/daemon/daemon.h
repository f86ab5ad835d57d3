/* daemon: small things both roles need, built from the configuration. */
#ifndef JGA_DAEMON_H
#define JGA_DAEMON_H

struct config;
struct jk_client;

/* A Jenkins client with the [jenkins] settings; exits if it cannot be made. */
struct jk_client *daemon_jenkins_client(const struct config *cfg);
/* Write [metrics] textfile, if configured; a failure is logged. */
void              daemon_write_metrics(const struct config *cfg);

#endif
