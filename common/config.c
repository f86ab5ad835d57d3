/*
 * config: see config.h. Parsing is table driven: each known key names its
 * section, its kind and where it goes, so an unknown key is simply one that
 * is not in the table.
 */
#include "config.h"
#include "log.h"

#include <ini.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

enum kind { K_STRING, K_BOOL, K_SECONDS, K_MS_FROM_S, K_SERVERS, K_LEVEL, K_FNAMES, K_TOKEN_FILE, K_FORMAT };

struct key {
	const char *section;
	const char *name;
	enum kind   kind;
	size_t      off;
	long        min, max;
};

#define OFF(f) offsetof(struct config, f)
static const struct key keys[] = {
	{ "gearman",     "servers",         K_SERVERS,    0, 0, 0 },
	{ "gearman",     "heartbeat",       K_SECONDS,    OFF(heartbeat), 1, 3600 },
	{ "jenkins",     "url",             K_STRING,     OFF(url), 0, 0 },
	{ "jenkins",     "user",            K_STRING,     OFF(user), 0, 0 },
	{ "jenkins",     "token",           K_STRING,     OFF(token), 0, 0 },
	{ "jenkins",     "token_file",      K_TOKEN_FILE, OFF(token), 0, 0 },
	{ "jenkins",     "password",        K_STRING,     OFF(password), 0, 0 },
	{ "jenkins",     "ca_file",         K_STRING,     OFF(ca_file), 0, 0 },
	{ "jenkins",     "tls_verify",      K_BOOL,       OFF(tls_verify), 0, 0 },
	{ "jenkins",     "connect_timeout", K_MS_FROM_S,  OFF(connect_timeout_ms), 1, 300 },
	{ "jenkins",     "timeout",         K_MS_FROM_S,  OFF(timeout_ms), 1, 3600 },
	{ "node",        "name",            K_STRING,     OFF(node_name), 0, 0 },
	{ "node",        "status_interval", K_SECONDS,    OFF(status_interval), 1, 86400 },
	{ "node",        "trigger_timeout", K_SECONDS,    OFF(trigger_timeout), 1, 86400 },
	{ "node",        "start_timeout",   K_SECONDS,    OFF(start_timeout), 1, 86400 },
	{ "node",        "follow_timeout",  K_SECONDS,    OFF(follow_timeout), 1, 604800 },
	{ "node",        "state_dir",       K_STRING,     OFF(state_dir), 0, 0 },
	{ "coordinator", "name",            K_STRING,     OFF(coordinator_name), 0, 0 },
	{ "coordinator", "refresh",         K_SECONDS,    OFF(refresh), 1, 86400 },
	{ "coordinator", "function_names",  K_FNAMES,     OFF(function_names), 0, 0 },
	{ "log",         "level",           K_LEVEL,      OFF(log_level), 0, 0 },
	{ "log",         "format",          K_FORMAT,     OFF(log_format), 0, 0 },
	{ "metrics",     "textfile",        K_STRING,     OFF(metrics_textfile), 0, 0 },
};

struct parse_state {
	struct config *cfg;
	char  err[512];     /* first error, without the line */
	int   err_seen;
	unsigned seen[sizeof(keys) / sizeof(keys[0])];
	int   token_from;   /* 0 none, 1 token=, 2 token_file= */
};

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
		long port = 4730;

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

/* Read a secret from a file that only its owner may read. */
static int
read_token_file(const char *path, char **out, char *err, size_t errlen)
{
	struct stat st;
	char buf[1024];
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "'%s' is not a regular file", path);
		close(fd);
		return -1;
	}
	if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
		snprintf(err, errlen, "'%s' is accessible by group or others (mode %03o); "
		    "run: chmod 600 %s", path, (unsigned)(st.st_mode & 0777), path);
		close(fd);
		return -1;
	}
	r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r < 0) {
		snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
		return -1;
	}
	buf[r] = '\0';
	while (r > 0 && isspace((unsigned char)buf[r - 1]))
		buf[--r] = '\0';
	if (r == 0 || (size_t)r == sizeof(buf) - 1) {
		snprintf(err, errlen, "'%s' is empty or too long for a token", path);
		return -1;
	}
	*out = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return *out ? 0 : -1;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct parse_state *st = user;
	struct config *cfg = st->cfg;
	const struct key *k = NULL;
	char why[400];
	size_t i;
	long n;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcasecmp(keys[i].section, section) == 0 &&
		    strcasecmp(keys[i].name, name) == 0) {
			k = &keys[i];
			break;
		}
	}
	if (!k) {
		int known_section = 0;
		for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (strcasecmp(keys[i].section, section) == 0)
				known_section = 1;
		if (!known_section)
			snprintf(why, sizeof(why), "[%s]: unknown section", section);
		else
			snprintf(why, sizeof(why), "[%s] %s: unknown key", section, name);
		goto bad;
	}
	if (st->seen[i]++) {
		snprintf(why, sizeof(why), "[%s] %s: given twice", section, name);
		goto bad;
	}
	if (*value == '\0')     /* "key =" means: use the default */
		return 1;

	switch (k->kind) {
	case K_STRING: {
		char **dst = (char **)((char *)cfg + k->off);
		if (strcmp(name, "token") == 0) {
			if (st->token_from) {
				snprintf(why, sizeof(why), "[jenkins] token: token and token_file are exclusive");
				goto bad;
			}
			st->token_from = 1;
		}
		free(*dst);
		*dst = strdup(value);
		break;
	}
	case K_TOKEN_FILE: {
		char **dst = (char **)((char *)cfg + k->off);
		char e[300];
		if (st->token_from) {
			snprintf(why, sizeof(why), "[jenkins] token_file: token and token_file are exclusive");
			goto bad;
		}
		st->token_from = 2;
		if (read_token_file(value, dst, e, sizeof(e)) < 0) {
			snprintf(why, sizeof(why), "[jenkins] token_file: %s", e);
			goto bad;
		}
		break;
	}
	case K_BOOL: {
		bool *dst = (bool *)((char *)cfg + k->off);
		if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") ||
		    !strcasecmp(value, "on") || !strcmp(value, "1"))
			*dst = true;
		else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") ||
		    !strcasecmp(value, "off") || !strcmp(value, "0"))
			*dst = false;
		else {
			snprintf(why, sizeof(why), "[%s] %s: '%s' is not a boolean (true/false)",
			    section, name, value);
			goto bad;
		}
		break;
	}
	case K_SECONDS:
	case K_MS_FROM_S:
		if (parse_long(value, k->min, k->max, &n) < 0) {
			snprintf(why, sizeof(why), "[%s] %s: '%s' is not a whole number of seconds in %ld..%ld",
			    section, name, value, k->min, k->max);
			goto bad;
		}
		if (k->kind == K_SECONDS)
			*(int *)((char *)cfg + k->off) = (int)n;
		else
			*(long *)((char *)cfg + k->off) = n * 1000;
		break;
	case K_SERVERS: {
		char e[300];
		if (config_parse_servers(value, cfg->servers, CONFIG_MAX_SERVERS,
		    &cfg->nservers, e, sizeof(e)) < 0) {
			snprintf(why, sizeof(why), "[gearman] servers: %s", e);
			goto bad;
		}
		break;
	}
	case K_LEVEL: {
		int l = log_parse_level(value);
		if (l < 0) {
			snprintf(why, sizeof(why), "[log] level: '%s' is not one of debug, info, warn, error", value);
			goto bad;
		}
		cfg->log_level = l;
		break;
	}
	case K_FORMAT:
		if (!strcasecmp(value, "text"))
			cfg->log_format = LOG_FORMAT_TEXT;
		else if (!strcasecmp(value, "json"))
			cfg->log_format = LOG_FORMAT_JSON;
		else {
			snprintf(why, sizeof(why), "[log] format: '%s' is not 'text' or 'json'", value);
			goto bad;
		}
		break;
	case K_FNAMES:
		if (!strcasecmp(value, "short"))
			cfg->function_names = FUNCTION_NAMES_SHORT;
		else if (!strcasecmp(value, "full"))
			cfg->function_names = FUNCTION_NAMES_FULL;
		else {
			snprintf(why, sizeof(why), "[coordinator] function_names: '%s' is not 'short' or 'full'", value);
			goto bad;
		}
		break;
	}
	return 1;
bad:
	if (!st->err_seen) {
		snprintf(st->err, sizeof(st->err), "%s", why);
		st->err_seen = 1;
	}
	return 0;
}

/* The host part of an http(s) URL, for the default coordinator name. */
static char *
url_host(const char *url)
{
	const char *p = strstr(url, "://"), *end;

	p = p ? p + 3 : url;
	if (strchr(p, '@') && (!strchr(p, '/') || strchr(p, '@') < strchr(p, '/')))
		p = strchr(p, '@') + 1;
	if (*p == '[') {
		end = strchr(p, ']');
		if (!end)
			return NULL;
		return strndup(p + 1, (size_t)(end - p - 1));
	}
	end = p + strcspn(p, ":/?#");
	if (end == p)
		return NULL;
	return strndup(p, (size_t)(end - p));
}

/*
 * name as one path component: '/', '%' and a leading '.' percent-encoded,
 * so that no name can leave its directory ("..", "a/../b") or take another
 * name's ("a/b" is "a%2Fb", "a%2Fb" is "a%252Fb").
 */
static char *
path_component(const char *name)
{
	size_t i, n = strlen(name);
	char *out = malloc(3 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '/' || c == '%' || (i == 0 && c == '.'))
			p += sprintf(p, "%%%02X", c);
		else
			*p++ = (char)c;
	}
	*p = '\0';
	return out;
}

/*
 * The default [node] state_dir, ROOT/MASTER/NODE: one per agent, so that
 * agents serving nodes of two masters on one host, even under one node name
 * (the host's), never share one. ROOT is CONFIG_STATE_ROOT, or
 * $JGA_STATE_ROOT (tests, packagers).
 */
static int
default_state_dir(struct config *cfg, const char *path, char *err, size_t errlen)
{
	const char *env = getenv("JGA_STATE_ROOT");
	char *root, *master, *node;
	size_t len;
	int rc;

	if (env && *env) {
		len = strlen(env);
		while (len > 1 && env[len - 1] == '/')
			len--;
		if (env[0] != '/' || len == 1) {
			snprintf(err, errlen, "%s: [node] state_dir: $JGA_STATE_ROOT '%s' is not an "
			    "absolute path below /", path, env);
			return -1;
		}
		root = strndup(env, len);
	} else
		root = strdup(CONFIG_STATE_ROOT);
	master = path_component(cfg->coordinator_name);
	node = path_component(cfg->node_name);
	if (!root || !master || !node || asprintf(&cfg->state_dir, "%s/%s/%s", root, master, node) < 0) {
		cfg->state_dir = NULL;
		free(root);
		snprintf(err, errlen, "%s: out of memory", path);
		rc = -1;
	} else {
		cfg->state_root = root;
		rc = 0;
	}
	free(master);
	free(node);
	return rc;
}

int
config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct parse_state st;
	int line;

	memset(cfg, 0, sizeof(*cfg));
	memset(&st, 0, sizeof(st));
	st.cfg = cfg;
	cfg->path = strdup(path);
	cfg->tls_verify = true;
	cfg->connect_timeout_ms = 5000;
	cfg->timeout_ms = 30000;
	cfg->status_interval = 10;
	cfg->trigger_timeout = 120;
	cfg->start_timeout = 60;
	cfg->follow_timeout = 3600;
	cfg->refresh = 30;
	cfg->function_names = FUNCTION_NAMES_SHORT;
	cfg->log_level = LOG_LEVEL_INFO;
	snprintf(cfg->servers[0].host, sizeof(cfg->servers[0].host), "127.0.0.1");
	cfg->servers[0].port = 4730;
	cfg->nservers = 1;
	cfg->heartbeat = 30;

	line = ini_parse(path, handler, &st);
	if (line == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		goto fail;
	}
	if (line == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto fail;
	}
	if (line > 0) {
		if (st.err_seen)
			snprintf(err, errlen, "%s:%d: %s", path, line, st.err);
		else
			snprintf(err, errlen, "%s:%d: syntax error (want [section] or key = value)",
			    path, line);
		goto fail;
	}

	if (!cfg->url) {
		snprintf(err, errlen, "%s: [jenkins] url: required key is missing", path);
		goto fail;
	}
	if (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0) {
		snprintf(err, errlen, "%s: [jenkins] url: '%s' must start with http:// or https://",
		    path, cfg->url);
		goto fail;
	}
	if (cfg->url[strlen(cfg->url) - 1] != '/') {
		char *u;
		if (asprintf(&u, "%s/", cfg->url) < 0)
			goto fail;
		free(cfg->url);
		cfg->url = u;
	}
	if (cfg->password && cfg->token) {
		snprintf(err, errlen, "%s: [jenkins] password: give either a token (token/token_file) "
		    "or a password, not both", path);
		goto fail;
	}
	if ((cfg->password || cfg->token) && !cfg->user) {
		snprintf(err, errlen, "%s: [jenkins] user: required when a token or password is set", path);
		goto fail;
	}
	if (!cfg->node_name) {
		char host[256];
		if (gethostname(host, sizeof(host)) < 0)
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		host[strcspn(host, ".")] = '\0';
		cfg->node_name = strdup(host[0] ? host : "localhost");
	}
	if (!cfg->coordinator_name) {
		cfg->coordinator_name = url_host(cfg->url);
		if (!cfg->coordinator_name) {
			snprintf(err, errlen, "%s: [jenkins] url: no host in '%s'", path, cfg->url);
			goto fail;
		}
	}
	if (!cfg->state_dir && default_state_dir(cfg, path, err, errlen) < 0)
		goto fail;
	return 0;
fail:
	config_free(cfg);
	return -1;
}

void
config_free(struct config *cfg)
{
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
	memset(cfg, 0, sizeof(*cfg));
}
