/*
 * defaults: the daemon's values for what a configuration file leaves out
 * and that depend on where and for whom the daemon runs. common/config.c
 * reads the file and nothing else; these are the daemon's policy:
 *
 *   [node] name          this host's short name
 *   [coordinator] name   from [jenkins] url: its host, then _PORT if the
 *                        port is not the scheme's, then its path with '/'
 *                        as '_' (see defaults.c)
 *   [coordinator] map_key_file, [node] map_public_key_file
 *                        DEFAULTS_MAP_KEY_FILE, DEFAULTS_MAP_PUBLIC_KEY_FILE
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
/* The map signing key pair, as `jenkins-gearman-agent keygen` writes it. */
#define DEFAULTS_KEY_DIR              "/etc/jenkins-gearman-agent"
#define DEFAULTS_MAP_KEY_FILE         DEFAULTS_KEY_DIR "/map.key"
#define DEFAULTS_MAP_PUBLIC_KEY_FILE  DEFAULTS_KEY_DIR "/map.pub"

/*
 * Fill in cfg's node_name, coordinator_name and state_dir where the file
 * left them out (state_root is set only with a default state_dir). Call it
 * after config_load succeeded. -1 with "FILE: [section] key: problem" in
 * err when no default can be made; cfg is config_free'd either way by the
 * caller.
 */
int defaults_apply(struct config *cfg, char *err, size_t errlen);

/*
 * The master URL as a map names it and agents compare it: scheme and host
 * in lower case, the scheme's own port left out, no credentials, query or
 * trailing '/': "https://ci.example.com/jenkins". NULL if url has no host.
 */
char *defaults_master_url(const char *url);

#endif
