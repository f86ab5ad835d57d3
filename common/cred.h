/*
 * cred: credentials kept out of URLs (and so out of every message that
 * shows one), and warnings about where they are exposed.
 *
 * A "user:secret@" in a URL is taken out of it once, where the URL enters
 * the program (config.c for [jenkins] url, http.c for any other caller),
 * and handed to libcurl as user and password: the URL that is kept,
 * logged, compared on reload and given to libcurl (whose error messages
 * may quote it) has none.
 */
#ifndef JGA_CRED_H
#define JGA_CRED_H

#include <stdbool.h>

/*
 * Split url ("scheme://[user[:secret]@]host..."): *clean is url without
 * the userinfo, *user and *secret its parts, percent-decoded (NULL when
 * absent). All malloc'd. True if url had a userinfo.
 */
bool  cred_split_url(const char *url, char **clean, char **user, char **secret);
/* Has url a userinfo ("user[:secret]@" before the host)? */
bool  cred_url_has_userinfo(const char *url);
/* url without any userinfo, malloc'd, for a message (with or without a scheme). */
char *cred_redact_url(const char *url);
/* Is the host of url (scheme://host[:port]/...) loopback: localhost, 127/8, ::1? */
bool  cred_url_loopback(const char *url);
/*
 * The warnings (log_warnx) of a configuration read from ini: a secret
 * given inline (inline_secret: [jenkins] token or password) in a file
 * group or others may read; credentials (sends_creds) that go over plain
 * http:// to a host that is not loopback.
 */
void  cred_warn(const char *ini, const char *url, bool inline_secret, bool sends_creds);

#endif
