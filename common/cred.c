/* cred: see cred.h. */
#include "cred.h"

#include "log.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* Where url's authority starts (after "://", or the start without a scheme). */
static const char *
authority(const char *url)
{
	const char *s = strstr(url, "://");

	return s ? s + 3 : url;
}

/* The '@' ending the userinfo of the authority at a, or NULL. */
static const char *
userinfo_end(const char *a)
{
	size_t len = strcspn(a, "/?#");

	return memrchr(a, '@', len);
}

static int
hexval(int c)
{
	return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* s[0..n) percent-decoded, malloc'd (a bad escape is kept as it is). */
static char *
decode(const char *s, size_t n)
{
	char *out = xmalloc(n + 1), *o = out;
	size_t i;

	for (i = 0; i < n; i++) {
		if (s[i] == '%' && i + 2 < n && hexval((unsigned char)s[i + 1]) >= 0 &&
		    hexval((unsigned char)s[i + 2]) >= 0) {
			*o++ = (char)(hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]));
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

bool
cred_split_url(const char *url, char **clean, char **user, char **secret)
{
	const char *a = authority(url), *at = userinfo_end(a), *colon;

	*user = *secret = NULL;
	if (!at) {
		*clean = xstrdup(url);
		return false;
	}
	*clean = xasprintf("%.*s%s", (int)(a - url), url, at + 1);
	colon = memchr(a, ':', (size_t)(at - a));
	*user = decode(a, (size_t)((colon ? colon : at) - a));
	if (colon)
		*secret = decode(colon + 1, (size_t)(at - colon - 1));
	return true;
}

bool
cred_url_has_userinfo(const char *url)
{
	return userinfo_end(authority(url)) != NULL;
}

char *
cred_redact_url(const char *url)
{
	const char *a = authority(url), *at = userinfo_end(a);

	return at ? xasprintf("%.*s%s", (int)(a - url), url, at + 1) : xstrdup(url);
}

bool
cred_url_loopback(const char *url)
{
	const char *a = authority(url), *at = userinfo_end(a), *end;
	char host[256];
	struct in6_addr a6;
	struct in_addr a4;
	size_t n;

	if (at)
		a = at + 1;
	if (*a == '[') {	/* [v6]:port */
		if (!(end = strchr(a, ']')))
			return false;
		a++;
	} else {
		end = a + strcspn(a, ":/?#");
	}
	if ((n = (size_t)(end - a)) == 0 || n >= sizeof(host))
		return false;
	memcpy(host, a, n);
	host[n] = '\0';
	if (!strcasecmp(host, "localhost"))
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		    (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

void
cred_warn(const char *ini, const char *url, bool inline_secret, bool sends_creds)
{
	struct stat sb;

	if (inline_secret && stat(ini, &sb) == 0 && (sb.st_mode & (S_IRGRP | S_IROTH)))
		log_warnx("%s: [jenkins] has its secret (token or password) inline, and the file is "
		    "mode %04o: group or others can read it; use token_file (mode 0600), or chmod go-r "
		    "the file", ini, (unsigned)(sb.st_mode & 07777));
	if (sends_creds && !strncasecmp(url, "http://", 7) && !cred_url_loopback(url))
		log_warnx("%s: [jenkins] url %s: the credentials go over plain http:// to a host that "
		    "is not loopback, readable by anyone on the way; use https://", ini, url);
}
