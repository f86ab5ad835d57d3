/* defaults: see defaults.h. */
#include "defaults.h"

#include "config.h"
#include "xalloc.h"

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

/* The host part of an http(s) URL, or NULL if it has none. */
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
		return xstrndup(p + 1, (size_t)(end - p - 1));
	}
	end = p + strcspn(p, ":/?#");
	if (end == p)
		return NULL;
	return xstrndup(p, (size_t)(end - p));
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
	if (!cfg->coordinator_name && !(cfg->coordinator_name = url_host(cfg->url))) {
		snprintf(err, errlen, "%s: [jenkins] url: no host in '%s'", cfg->path, cfg->url);
		return -1;
	}
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
