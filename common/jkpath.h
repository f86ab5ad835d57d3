/*
 * jkpath: the paths of Jenkins' remote API under the base URL, and the
 * percent-encoding they and form bodies share. Used by jenkins.c (and
 * its unit tests); pure functions, no I/O.
 *
 * Every path segment (job name, folder name, node name) is encoded on its
 * own, so no name can escape its segment: "..", "/", "?", "#", spaces and
 * UTF-8 all stay inside. All strings returned are malloc'd.
 */
#ifndef JGA_JKPATH_H
#define JGA_JKPATH_H

#include "jenkins.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * "a/b c" -> "job/a/job/b%20c/" (no base). NULL on a bad name: one with an
 * empty segment (a leading, trailing or double '/'), or empty or NULL.
 */
char *jkpath_job(const char *full_name);
/*
 * "node1" -> "computer/node1/"; the controller (jkpath_is_controller) ->
 * "computer/(built-in)/", or "computer/(master)/" when version (X-Jenkins)
 * is older than 2.307, which renamed it (jenkinsci/jenkins #5425: since
 * then Jenkins.getComputer takes "(built-in)" too, before it only
 * "(master)"). version NULL or unparseable: the current name.
 */
char *jkpath_node(const char *name, const char *version);
/*
 * Does name stand for the controller? "", NULL, "built-in" (its self label
 * since 2.307, and the name this project always gave it) and, before
 * 2.307 only, "master" (its self label then, the name the NodeLabel
 * parameter takes for it; since then an agent may be called "master").
 */
bool  jkpath_is_controller(const char *name, const char *version);
/* Is version (X-Jenkins, "2.303.3") older than 2.307? false when unparseable. */
bool  jkpath_before_builtin(const char *version);
/* One path segment: RFC 3986 unreserved stay, the rest and '.' and '..' segments
 * are %XX. NULL for NULL. */
char *jkpath_encode_segment(const char *s);
/*
 * One path segment exactly as Jenkins' hudson.Util.rawEncode writes it in
 * job URLs (AbstractItem.getShortUrl): "!$&'()*+,-.=@_", letters and digits
 * stay; controls, space, '"#%/:;<>?[\]^`{|}~' and every byte >= 0x7B
 * (so UTF-8) are %XX, upper case. NULL for NULL.
 */
char *jkpath_raw_encode(const char *s);
/*
 * Does url (absolute, or a path) name the job whose jkpath_job path is
 * job_path? Both are read segment by segment from the first "job/" on,
 * percent-decoded and compared as names, so Jenkins' encoding (rawEncode:
 * '+' and '(' bare, '~' as %7E) and ours (the reverse) agree; a query or
 * fragment is ignored; a trailing build number is not part of a job URL.
 */
bool  jkpath_same_job(const char *url, const char *job_path);
/*
 * The full name of the job whose build url (absolute, or a path) names:
 * ".../job/f/job/a%20b/12/" -> "f/a b", and *number (unless NULL) 12.
 * Read like jkpath_same_job, from the first "job" segment: pairs of "job"
 * and a name, then the names of items below a job that have no "job/"
 * (a matrix configuration's "label=x"), then the build number, all
 * percent-decoded. NULL when url has no such shape, or a name is empty,
 * holds '/' (no Jenkins name can) or is not UTF-8 (rawEncode writes UTF-8).
 */
char *jkpath_build_job(const char *url, int *number);
/* "a=1&b=x%20y": an application/x-www-form-urlencoded body (space as %20). */
char *jkpath_encode_form(const struct jk_kv *kv, size_t n);
/* ".../queue/item/123/" (a Location, absolute or relative) -> 123; -1 if malformed. */
int   jkpath_queue_id(const char *location, long *id);

#endif
