/* The daemon's two roles. Each runs until SIGTERM and returns an exit code. */
#ifndef JGA_ROLES_H
#define JGA_ROLES_H

struct config;

int node_main(struct config *cfg);
int coordinator_main(struct config *cfg);

#endif
