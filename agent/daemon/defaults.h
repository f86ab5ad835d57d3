/*
 * defaults: the daemon's values for what a configuration file leaves out
 * and that depend on where and for whom the daemon runs. common/config.c
 * reads the file and nothing else; these are the daemon's policy:
 *
 *   [node] name          this host's short name
 *   [coordinator] name   the host part of [jenkins] url
 *   [node] state_dir     ROOT/MASTER/NODE: one directory per agent, so that
 *                        agents serving nodes of two masters on one host,
 *                        even under one node name, never share one. ROOT
 *                        is DEFAULTS_STATE_ROOT, or $JGA_STATE_ROOT (tests,
 *                        packagers); MASTER and NODE are the two names
 *                        above, made into path components that cannot
 *                        leave ROOT or take another name's directory.
 */
#ifndef JGA_DEFAULTS_H
#define JGA_DEFAULTS_H

#include <stddef.h>

struct config;

#define DEFAULTS_STATE_ROOT "/var/lib/jenkins-gearman-agent"

/*
 * Fill in cfg's node_name, coordinator_name and state_dir where the file
 * left them out (state_root is set only with a default state_dir). Call it
 * after config_load succeeded. -1 with "FILE: [section] key: problem" in
 * err when no default can be made; cfg is config_free'd either way by the
 * caller.
 */
int defaults_apply(struct config *cfg, char *err, size_t errlen);

#endif
