/*
 * config: the INI file shared by the node agent and the coordinator.
 *
 * Every key is documented in conf/node.ini, conf/coordinator.ini and the
 * man page. Unknown sections or keys, bad values and missing required keys
 * are errors that name the file, the line and the key. Secrets (token,
 * password) are read here and never logged.
 *
 * Only the file is read here: a key the file leaves out gets its fixed
 * default, except the names and the directory whose defaults depend on
 * the host and the role (node_name, coordinator_name, state_dir, the map
 * key files), which
 * stay NULL for the program to fill in.
 */
#ifndef JGA_CONFIG_H
#define JGA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CONFIG_MAX_SERVERS  16
/* gearmand's registered port: a server given without one is on it. */
#define CONFIG_GEARMAN_PORT 4730

struct gnet_tls;

struct config_server {
	char host[256];
	int  port;
};

enum function_names { FUNCTION_NAMES_SHORT, FUNCTION_NAMES_FULL };

struct config {
	char *path;

	/* [gearman] */
	struct config_server servers[CONFIG_MAX_SERVERS];
	size_t nservers;
	int    heartbeat;       /* seconds of silence before an ECHO_REQ; as long for its answer */
	char  *tls_ca_file;     /* TLS to gearmand (through a proxy): all three or none */
	char  *tls_cert_file;
	char  *tls_key_file;
	/*
	 * Built from them by config_gearman_tls, which the programs call once
	 * after config_load; passed to every Gearman connection. NULL: plain
	 * TCP. Owned here (config_free frees it).
	 */
	struct gnet_tls *gearman_tls;

	/* [jenkins] */
	char *url;              /* base URL, always ends with '/' */
	char *user;             /* NULL: anonymous */
	char *token;            /* from token= or token_file=; NULL if none */
	char *password;         /* NULL if none */
	char *ca_file;          /* NULL: system CA store */
	bool  tls_verify;
	long  connect_timeout_ms;
	long  timeout_ms;

	/* [node] */
	char *node_name;        /* NULL when the file leaves it out */
	int   status_interval;  /* seconds between WORK_STATUS updates */
	int   trigger_timeout;  /* seconds to keep retrying a build trigger */
	int   start_timeout;    /* seconds a triggered build may wait in the Jenkins queue */
	int   follow_timeout;   /* seconds the master may stay unreachable while following */
	char *state_dir;        /* where running builds are recorded; NULL when left out */
	char *state_root;       /* the ROOT below which a state_dir not in the file
	                           was put (by the daemon); NULL otherwise */
	char *map_public_key_file; /* verifies the coordinator's maps; NULL when left out */

	/* [coordinator] */
	char *coordinator_name; /* NULL when the file leaves it out */
	int   refresh;          /* seconds between project-map refreshes */
	enum function_names function_names;
	char *map_key_file;     /* signs the maps; NULL when left out */

	/* [log] */
	int   log_level;        /* enum log_level */
	int   log_format;       /* enum log_format */

	/* [metrics] */
	char *metrics_textfile; /* NULL: no metrics */
};

/*
 * Load path into cfg (which is zeroed first). On error returns -1, cfg
 * freed, and writes "FILE:LINE: [section] key: problem" into err.
 */
int  config_load(const char *path, struct config *cfg, char *err, size_t errlen);
void config_free(struct config *cfg);

/*
 * Build cfg->gearman_tls from [gearman] tls_* (nothing when they are not
 * given): the CA, certificate and private key are read now, once (the key
 * as a secret, secret.h). -1 and "FILE: [gearman] tls_...: problem" in err.
 */
int  config_gearman_tls(struct config *cfg, char *err, size_t errlen);

/* Parse "h1:4730,h2" into servers. Returns -1 and fills err on a bad entry. */
int  config_parse_servers(const char *s, struct config_server *out, size_t max,
         size_t *n, char *err, size_t errlen);

#endif
