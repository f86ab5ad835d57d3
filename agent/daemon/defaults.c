/* defaults: see defaults.h. */
#include "defaults.h"

#include "buf.h"
#include "config.h"
#include "xalloc.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Room for a host name: POSIX's HOST_NAME_MAX is 255, plus the NUL. */
#define HOST_MAX 256

/* This host's name up to its first dot; "localhost" if it has none. */
static char *
short_host_name(void)
{
	char host[HOST_MAX];

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	return xstrdup(host[0] ? host : "localhost");
}

/* An http(s) URL in parts: host as written (IPv6 without brackets), port 0 if none, path without trailing '/'. */
struct url_parts {
	char *scheme;   /* lower case */
	char *host;
	int   port;
	int   default_port;
	char *path;     /* "" or "/a/b" */
};

static void
url_parts_free(struct url_parts *u)
{
	free(u->scheme);
	free(u->host);
	free(u->path);
}

/* Split url; -1 if it has no host or a bad port. Credentials, query and fragment are dropped. */
static int
url_split(const char *url, struct url_parts *u)
{
	const char *p = strstr(url, "://"), *end, *path;
	char *scheme;
	size_t i, len;

	memset(u, 0, sizeof(*u));
	scheme = p ? xstrndup(url, (size_t)(p - url)) : xstrdup("http");
	for (i = 0; scheme[i]; i++)
		scheme[i] = (char)tolower((unsigned char)scheme[i]);
	u->scheme = scheme;
	u->default_port = strcmp(scheme, "https") == 0 ? 443 : 80;
	p = p ? p + 3 : url;
	end = p + strcspn(p, "/?#");
	for (path = p; path < end; path++)
		if (*path == '@')
			p = path + 1;       /* user:password@ */
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));
		if (!rb || rb == p + 1)
			return -1;
		u->host = xstrndup(p + 1, (size_t)(rb - p - 1));
		p = rb + 1;
	} else {
		const char *colon = memchr(p, ':', (size_t)(end - p));
		const char *hend = colon ? colon : end;
		if (hend == p)
			return -1;
		u->host = xstrndup(p, (size_t)(hend - p));
		p = hend;
	}
	if (*p == ':' && p + 1 < end) {
		char *num = xstrndup(p + 1, (size_t)(end - p - 1)), *e;
		long port = strtol(num, &e, 10);
		bool bad = *e || port <= 0 || port > 65535;

		free(num);
		if (bad)
			return -1;
		u->port = (int)port;
	}
	len = strcspn(end, "?#");
	while (len > 0 && end[len - 1] == '/')
		len--;
	u->path = xstrndup(end, len);
	return 0;
}

/*
 * The default [coordinator] name: the host, then "_PORT" when the URL has
 * a port other than its scheme's, then the path with each '/' made '_' and
 * any byte but letters, digits, '.' and '-' written %XX. So
 * http://ci.example.com/ stays "ci.example.com" (the name gearman-plugin's
 * clients know; existing deployments keep their function names) and
 * http://ci.example.com:8080/jenkins/ is "ci.example.com_8080_jenkins".
 */
static char *
coordinator_default_name(const struct url_parts *u)
{
	struct buf b = { 0 };
	const char *s;

	buf_adds(&b, u->host);
	if (u->port && u->port != u->default_port)
		buf_addf(&b, "_%d", u->port);
	for (s = u->path; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '/')
			buf_adds(&b, "_");
		else if (isalnum(c) || c == '.' || c == '-')
			buf_add(&b, s, 1);
		else
			buf_addf(&b, "%%%02X", c);
	}
	return buf_take(&b);
}

char *
defaults_master_url(const char *url)
{
	struct url_parts u;
	struct buf b = { 0 };
	size_t i;

	if (url_split(url, &u) < 0) {
		url_parts_free(&u);
		return NULL;
	}
	for (i = 0; u.host[i]; i++)
		u.host[i] = (char)tolower((unsigned char)u.host[i]);
	buf_addf(&b, strchr(u.host, ':') ? "%s://[%s]" : "%s://%s", u.scheme, u.host);
	if (u.port && u.port != u.default_port)
		buf_addf(&b, ":%d", u.port);
	buf_adds(&b, u.path);
	url_parts_free(&u);
	return buf_take(&b);
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
	char *out = xmalloc(3 * n + 1), *p = out;

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

/* ROOT: $JGA_STATE_ROOT without trailing slashes, or DEFAULTS_STATE_ROOT. */
static char *
state_root(const char *path, char *err, size_t errlen)
{
	const char *env = getenv("JGA_STATE_ROOT");
	size_t len;

	if (!env || !*env)
		return xstrdup(DEFAULTS_STATE_ROOT);
	len = strlen(env);
	while (len > 1 && env[len - 1] == '/')
		len--;
	if (env[0] != '/' || len == 1) {
		snprintf(err, errlen, "%s: [node] state_dir: $JGA_STATE_ROOT '%s' is not an "
		    "absolute path below /", path, env);
		return NULL;
	}
	return xstrndup(env, len);
}

int
defaults_apply(struct config *cfg, char *err, size_t errlen)
{
	char *master, *node;

	if (!cfg->node_name)
		cfg->node_name = short_host_name();
	if (!cfg->coordinator_name) {
		struct url_parts u;
		int bad = url_split(cfg->url, &u);

		if (!bad)
			cfg->coordinator_name = coordinator_default_name(&u);
		url_parts_free(&u);
		if (bad) {
			snprintf(err, errlen, "%s: [jenkins] url: no host, or a bad port, in the URL", cfg->path);
			return -1;
		}
	}
	if (!cfg->map_key_file)
		cfg->map_key_file = xstrdup(DEFAULTS_MAP_KEY_FILE);
	if (!cfg->map_public_key_file)
		cfg->map_public_key_file = xstrdup(DEFAULTS_MAP_PUBLIC_KEY_FILE);
	if (cfg->state_dir)
		return 0;
	if (!(cfg->state_root = state_root(cfg->path, err, errlen)))
		return -1;
	master = path_component(cfg->coordinator_name);
	node = path_component(cfg->node_name);
	cfg->state_dir = xasprintf("%s/%s/%s", cfg->state_root, master, node);
	free(master);
	free(node);
	return 0;
}
