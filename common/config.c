/*
 * config: see config.h. Parsing is table driven: each known key names its
 * section, its setter (which checks the value and stores it) and where it
 * goes, so an unknown key is simply one that is not in the table.
 */
#include "config.h"
#include "cred.h"
#include "gnet.h"
#include "secret.h"
#include "log.h"
#include "xalloc.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Defaults of the keys a file leaves out, as conf/node.ini, conf/coordinator.ini
 * and jenkins-gearman-agent.ini(5) document them.
 */
#define DEFAULT_GEARMAN_HOST     "127.0.0.1"  /* a gearmand on this host */
#define DEFAULT_HEARTBEAT        30      /* s: a forgotten connection is found within a minute */
#define DEFAULT_CONNECT_TIMEOUT  5000    /* ms: a reachable master connects in far less */
#define DEFAULT_TIMEOUT          30000   /* ms: room for the master's largest answers (job lists) */
#define DEFAULT_STATUS_INTERVAL  10      /* s: progress a person watching sees move */
#define DEFAULT_TRIGGER_TIMEOUT  120     /* s: room for a master that is restarting */
#define DEFAULT_START_TIMEOUT    60      /* s: then the client may try another node */
#define DEFAULT_FOLLOW_TIMEOUT   3600    /* s: a master away longer is an outage, not a blip */
#define DEFAULT_REFRESH          30      /* s: a new or changed job is offered within that */

/* Bounds of the keys given in seconds. */
#define MAX_CONNECT_TIMEOUT      300     /* s: a connection slower than that is a dead master */
#define HOUR                     3600
#define DAY                      86400
#define WEEK                     604800

/* The longest token_file content, NUL included: an API token is 34 characters. */
#define TOKEN_MAX                1024
/* The longest message of one bad line, before "FILE:LINE: " is put in front. */
#define PARSE_ERR_MAX            400

struct parse_state;
struct key;

/* One "key = value" line, section and key spelt as in the file. */
struct line {
	const char *section, *name, *value;
};

/* Check l's value and store it in st->cfg where k says; 0 after parse_error(). */
typedef int (*key_setter)(struct parse_state *st, const struct key *k, const struct line *l);

struct key {
	const char *section;
	const char *name;
	key_setter  set;
	size_t      off;
	long        min, max;
};

static int set_string(struct parse_state *, const struct key *, const struct line *);
static int set_token(struct parse_state *, const struct key *, const struct line *);
static int set_token_file(struct parse_state *, const struct key *, const struct line *);
static int set_bool(struct parse_state *, const struct key *, const struct line *);
static int set_seconds(struct parse_state *, const struct key *, const struct line *);
static int set_ms_from_s(struct parse_state *, const struct key *, const struct line *);
static int set_servers(struct parse_state *, const struct key *, const struct line *);
static int set_level(struct parse_state *, const struct key *, const struct line *);
static int set_format(struct parse_state *, const struct key *, const struct line *);
static int set_fnames(struct parse_state *, const struct key *, const struct line *);

#define OFF(f) offsetof(struct config, f)
static const struct key keys[] = {
	{ "gearman",     "servers",         set_servers,    0, 0, 0 },
	{ "gearman",     "heartbeat",       set_seconds,    OFF(heartbeat), 1, HOUR },
	{ "gearman",     "tls_ca_file",     set_string,     OFF(tls_ca_file), 0, 0 },
	{ "gearman",     "tls_cert_file",   set_string,     OFF(tls_cert_file), 0, 0 },
	{ "gearman",     "tls_key_file",    set_string,     OFF(tls_key_file), 0, 0 },
	{ "jenkins",     "url",             set_string,     OFF(url), 0, 0 },
	{ "jenkins",     "user",            set_string,     OFF(user), 0, 0 },
	{ "jenkins",     "token",           set_token,      OFF(token), 0, 0 },
	{ "jenkins",     "token_file",      set_token_file, OFF(token), 0, 0 },
	{ "jenkins",     "password",        set_string,     OFF(password), 0, 0 },
	{ "jenkins",     "ca_file",         set_string,     OFF(ca_file), 0, 0 },
	{ "jenkins",     "tls_verify",      set_bool,       OFF(tls_verify), 0, 0 },
	{ "jenkins",     "connect_timeout", set_ms_from_s,  OFF(connect_timeout_ms), 1, MAX_CONNECT_TIMEOUT },
	{ "jenkins",     "timeout",         set_ms_from_s,  OFF(timeout_ms), 1, HOUR },
	{ "node",        "name",            set_string,     OFF(node_name), 0, 0 },
	{ "node",        "status_interval", set_seconds,    OFF(status_interval), 1, DAY },
	{ "node",        "trigger_timeout", set_seconds,    OFF(trigger_timeout), 1, DAY },
	{ "node",        "start_timeout",   set_seconds,    OFF(start_timeout), 1, DAY },
	{ "node",        "follow_timeout",  set_seconds,    OFF(follow_timeout), 1, WEEK },
	{ "node",        "state_dir",       set_string,     OFF(state_dir), 0, 0 },
	{ "node",        "map_public_key_file", set_string, OFF(map_public_key_file), 0, 0 },
	{ "coordinator", "name",            set_string,     OFF(coordinator_name), 0, 0 },
	{ "coordinator", "refresh",         set_seconds,    OFF(refresh), 1, DAY },
	{ "coordinator", "function_names",  set_fnames,     OFF(function_names), 0, 0 },
	{ "coordinator", "map_key_file",    set_string,     OFF(map_key_file), 0, 0 },
	{ "log",         "level",           set_level,      OFF(log_level), 0, 0 },
	{ "log",         "format",          set_format,     OFF(log_format), 0, 0 },
	{ "metrics",     "textfile",        set_string,     OFF(metrics_textfile), 0, 0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parse_state {
	struct config *cfg;
	char  err[PARSE_ERR_MAX];   /* first error, without the line */
	int   err_seen;
	unsigned seen[NKEYS];
	bool  token_given;          /* token= or token_file= seen: they exclude each other */
};

/* Keep the first error of the file; returns 0, inih's "this line is bad". */
static int __attribute__((format(printf, 2, 3)))
parse_error(struct parse_state *st, const char *fmt, ...)
{
	va_list ap;

	if (!st->err_seen) {
		va_start(ap, fmt);
		vsnprintf(st->err, sizeof(st->err), fmt, ap);
		va_end(ap);
		st->err_seen = 1;
	}
	return 0;
}

static int
parse_long(const char *v, long min, long max, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno || end == v || *end != '\0' || n < min || n > max)
		return -1;
	*out = n;
	return 0;
}

int
config_parse_servers(const char *s, struct config_server *out, size_t max,
    size_t *n, char *err, size_t errlen)
{
	const char *p = s;

	*n = 0;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char item[300], *colon;
		long port = CONFIG_GEARMAN_PORT;

		while (len && isspace((unsigned char)*p)) { p++; len--; }
		while (len && isspace((unsigned char)p[len - 1])) len--;
		if (len == 0 || len >= sizeof(item)) {
			snprintf(err, errlen, "empty or too long server entry in '%s'", s);
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		colon = strrchr(item, ':');
		if (colon) {
			*colon = '\0';
			if (parse_long(colon + 1, 1, 65535, &port) < 0) {
				snprintf(err, errlen, "bad port in server '%.*s' (want HOST:PORT, port 1-65535)",
				    (int)len, p);
				return -1;
			}
		}
		if (item[0] == '\0' || strlen(item) >= sizeof(out->host)) {
			snprintf(err, errlen, "bad host in server '%.*s'", (int)len, p);
			return -1;
		}
		if (*n == max) {
			snprintf(err, errlen, "more than %zu servers", max);
			return -1;
		}
		snprintf(out[*n].host, sizeof(out[*n].host), "%s", item);
		out[*n].port = (int)port;
		(*n)++;
		p = end ? end + 1 : p + len;
	}
	if (*n == 0) {
		snprintf(err, errlen, "no server given");
		return -1;
	}
	return 0;
}

/* Read a token from a file that only its owner may read (secret.h). */
static int
read_token_file(const char *path, char **out, char *err, size_t errlen)
{
	size_t r;
	char *buf;

	if (!(buf = secret_read(path, TOKEN_MAX - 1, &r, err, errlen)))
		return -1;
	while (r > 0 && isspace((unsigned char)buf[r - 1]))
		buf[--r] = '\0';
	if (r == 0 || r == TOKEN_MAX - 1) {
		snprintf(err, errlen, "'%s' is empty or too long for a token", path);
		explicit_bzero(buf, TOKEN_MAX);
		free(buf);
		return -1;
	}
	*out = buf;
	return 0;
}

/* ---- setters, one per kind of value ---- */

static void *
field(struct parse_state *st, const struct key *k)
{
	return (char *)st->cfg + k->off;
}

static int
set_string(struct parse_state *st, const struct key *k, const struct line *l)
{
	char **dst = field(st, k);

	free(*dst);
	*dst = xstrdup(l->value);
	return 1;
}

static int
set_token(struct parse_state *st, const struct key *k, const struct line *l)
{
	if (st->token_given)
		return parse_error(st, "[jenkins] token: token and token_file are exclusive");
	st->token_given = true;
	return set_string(st, k, l);
}

static int
set_token_file(struct parse_state *st, const struct key *k, const struct line *l)
{
	char e[300];

	if (st->token_given)
		return parse_error(st, "[jenkins] token_file: token and token_file are exclusive");
	st->token_given = true;
	if (read_token_file(l->value, field(st, k), e, sizeof(e)) < 0)
		return parse_error(st, "[jenkins] token_file: %s", e);
	return 1;
}

static int
set_bool(struct parse_state *st, const struct key *k, const struct line *l)
{
	const char *v = l->value;
	bool *dst = field(st, k);

	if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1"))
		*dst = true;
	else if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0"))
		*dst = false;
	else
		return parse_error(st, "[%s] %s: '%s' is not a boolean (true/false)", l->section, l->name, v);
	return 1;
}

/* A whole number of seconds in k's bounds. */
static int
parse_seconds(struct parse_state *st, const struct key *k, const struct line *l, long *n)
{
	if (parse_long(l->value, k->min, k->max, n) < 0)
		return parse_error(st, "[%s] %s: '%s' is not a whole number of seconds in %ld..%ld",
		    l->section, l->name, l->value, k->min, k->max);
	return 1;
}

static int
set_seconds(struct parse_state *st, const struct key *k, const struct line *l)
{
	long n;

	if (!parse_seconds(st, k, l, &n))
		return 0;
	*(int *)field(st, k) = (int)n;
	return 1;
}

static int
set_ms_from_s(struct parse_state *st, const struct key *k, const struct line *l)
{
	long n;

	if (!parse_seconds(st, k, l, &n))
		return 0;
	*(long *)field(st, k) = n * 1000;
	return 1;
}

static int
set_servers(struct parse_state *st, const struct key *k, const struct line *l)
{
	struct config *cfg = st->cfg;
	char e[300];

	(void)k;
	if (config_parse_servers(l->value, cfg->servers, CONFIG_MAX_SERVERS, &cfg->nservers, e, sizeof(e)) < 0)
		return parse_error(st, "[gearman] servers: %s", e);
	return 1;
}

static int
set_level(struct parse_state *st, const struct key *k, const struct line *l)
{
	int level = log_parse_level(l->value);

	if (level < 0)
		return parse_error(st, "[log] level: '%s' is not one of debug, info, warn, error", l->value);
	*(int *)field(st, k) = level;
	return 1;
}

static int
set_format(struct parse_state *st, const struct key *k, const struct line *l)
{
	int *dst = field(st, k);

	if (!strcasecmp(l->value, "text"))
		*dst = LOG_FORMAT_TEXT;
	else if (!strcasecmp(l->value, "json"))
		*dst = LOG_FORMAT_JSON;
	else
		return parse_error(st, "[log] format: '%s' is not 'text' or 'json'", l->value);
	return 1;
}

static int
set_fnames(struct parse_state *st, const struct key *k, const struct line *l)
{
	enum function_names *dst = field(st, k);

	if (!strcasecmp(l->value, "short"))
		*dst = FUNCTION_NAMES_SHORT;
	else if (!strcasecmp(l->value, "full"))
		*dst = FUNCTION_NAMES_FULL;
	else
		return parse_error(st, "[coordinator] function_names: '%s' is not 'short' or 'full'", l->value);
	return 1;
}

/* ---- the file ---- */

static const struct key *
key_find(const char *section, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcasecmp(keys[i].section, section) == 0 && strcasecmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool
section_known(const char *section)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcasecmp(keys[i].section, section) == 0)
			return true;
	return false;
}

/* inih's callback, once per "key = value": 1 if the line is good. */
static int
ini_entry(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	const struct key *k = key_find(section, name);

	if (!k && !section_known(section))
		return parse_error(st, "[%s]: unknown section", section);
	if (!k)
		return parse_error(st, "[%s] %s: unknown key", section, name);
	if (st->seen[k - keys]++)
		return parse_error(st, "[%s] %s: given twice", section, name);
	if (*value == '\0')     /* "key =" means: use the default */
		return 1;
	return k->set(st, k, &(struct line){ section, name, value });
}

static void
config_defaults(struct config *cfg)
{
	cfg->tls_verify = true;
	cfg->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT;
	cfg->timeout_ms = DEFAULT_TIMEOUT;
	cfg->status_interval = DEFAULT_STATUS_INTERVAL;
	cfg->trigger_timeout = DEFAULT_TRIGGER_TIMEOUT;
	cfg->start_timeout = DEFAULT_START_TIMEOUT;
	cfg->follow_timeout = DEFAULT_FOLLOW_TIMEOUT;
	cfg->refresh = DEFAULT_REFRESH;
	cfg->function_names = FUNCTION_NAMES_SHORT;
	cfg->log_level = LOG_LEVEL_INFO;
	snprintf(cfg->servers[0].host, sizeof(cfg->servers[0].host), "%s", DEFAULT_GEARMAN_HOST);
	cfg->servers[0].port = CONFIG_GEARMAN_PORT;
	cfg->nservers = 1;
	cfg->heartbeat = DEFAULT_HEARTBEAT;
}

/*
 * Read path's keys into cfg; -1 with "FILE[:LINE]: ..." in err. *inline_secret:
 * the token or password is in the file itself.
 */
static int
config_read(const char *path, struct config *cfg, bool *inline_secret, char *err, size_t errlen)
{
	struct parse_state st;
	int line;

	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	line = ini_parse(path, ini_entry, &st);
	if (line == -1)
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
	else if (line == -2)
		fatalx("out of memory (reading %s)", path);
	else if (line > 0 && st.err_seen)
		snprintf(err, errlen, "%s:%d: %s", path, line, st.err);
	else if (line > 0)
		snprintf(err, errlen, "%s:%d: syntax error (want [section] or key = value)", path, line);
	*inline_secret = cfg->password || (cfg->url && cred_url_has_userinfo(cfg->url)) ||
	    (cfg->token && !st.seen[key_find("jenkins", "token_file") - keys]);
	return line == 0 ? 0 : -1;
}

/* [gearman] tls_*: all three or none (half of a TLS setup would be plaintext, or no connection). */
static int
config_check_tls(const char *path, const struct config *cfg, char *err, size_t errlen)
{
	const char *missing = !cfg->tls_ca_file ? "tls_ca_file" : !cfg->tls_cert_file ? "tls_cert_file" :
	    !cfg->tls_key_file ? "tls_key_file" : NULL;

	if (missing && (cfg->tls_ca_file || cfg->tls_cert_file || cfg->tls_key_file)) {
		snprintf(err, errlen, "%s: [gearman] %s: required with the other tls_ keys "
		    "(TLS to gearmand needs tls_ca_file, tls_cert_file and tls_key_file, all three)",
		    path, missing);
		return -1;
	}
	return 0;
}

/* What no single line can tell: required keys, and keys that go together. */
static int
config_check(const char *path, struct config *cfg, char *err, size_t errlen)
{
	char *clean, *user, *secret;

	if (config_check_tls(path, cfg, err, errlen) < 0)
		return -1;
	if (!cfg->url) {
		snprintf(err, errlen, "%s: [jenkins] url: required key is missing", path);
		return -1;
	}
	/* user:secret@ leaves the URL, which is logged (cred.h). */
	if (cred_split_url(cfg->url, &clean, &user, &secret)) {
		free(cfg->url);
		cfg->url = clean;
		if (cfg->user || cfg->token || cfg->password) {
			free(user);
			free(secret);
			snprintf(err, errlen, "%s: [jenkins] url: has credentials, and so has [jenkins] "
			    "user, token or password: give them once", path);
			return -1;
		}
		cfg->user = user;
		cfg->password = secret;
	} else
		free(clean);
	if (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0) {
		snprintf(err, errlen, "%s: [jenkins] url: '%s' must start with http:// or https://",
		    path, cfg->url);
		return -1;
	}
	if (cfg->url[strlen(cfg->url) - 1] != '/') {
		char *u = xasprintf("%s/", cfg->url);
		free(cfg->url);
		cfg->url = u;
	}
	if (cfg->password && cfg->token) {
		snprintf(err, errlen, "%s: [jenkins] password: give either a token (token/token_file) "
		    "or a password, not both", path);
		return -1;
	}
	if ((cfg->password || cfg->token) && !cfg->user) {
		snprintf(err, errlen, "%s: [jenkins] user: required when a token or password is set", path);
		return -1;
	}
	return 0;
}

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	bool inline_secret = false;

	memset(cfg, 0, sizeof(*cfg));
	cfg->path = xstrdup(path);
	config_defaults(cfg);
	if (config_read(path, cfg, &inline_secret, err, errlen) < 0 ||
	    config_check(path, cfg, err, errlen) < 0) {
		config_free(cfg);
		return -1;
	}
	cred_warn(path, cfg->url, inline_secret, cfg->user && (cfg->token || cfg->password));
	return 0;
}

int
config_gearman_tls(struct config *cfg, char *err, size_t errlen)
{
	char e[600];

	if (!cfg->tls_ca_file || cfg->gearman_tls)
		return 0;
	if (!(cfg->gearman_tls = gnet_tls_new(cfg->tls_ca_file, cfg->tls_cert_file, cfg->tls_key_file,
	    e, sizeof(e)))) {
		snprintf(err, errlen, "%s: [gearman] tls_*: %s", cfg->path, e);
		return -1;
	}
	return 0;
}

void
config_free(struct config *cfg)
{
	gnet_tls_free(cfg->gearman_tls);
	free(cfg->tls_ca_file);
	free(cfg->tls_cert_file);
	free(cfg->tls_key_file);
	free(cfg->path);
	free(cfg->url);
	free(cfg->user);
	if (cfg->token) {
		explicit_bzero(cfg->token, strlen(cfg->token));
		free(cfg->token);
	}
	if (cfg->password) {
		explicit_bzero(cfg->password, strlen(cfg->password));
		free(cfg->password);
	}
	free(cfg->ca_file);
	free(cfg->metrics_textfile);
	free(cfg->node_name);
	free(cfg->state_dir);
	free(cfg->state_root);
	free(cfg->coordinator_name);
	free(cfg->map_key_file);
	free(cfg->map_public_key_file);
	memset(cfg, 0, sizeof(*cfg));
}
