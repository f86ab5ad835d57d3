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
/* "node1" -> "computer/node1/"; "built-in", "" and NULL -> "computer/(built-in)/". */
char *jkpath_node(const char *name);
/* One path segment: RFC 3986 unreserved stay, the rest and '.' and '..' segments
 * are %XX. NULL for NULL. */
char *jkpath_encode_segment(const char *s);
/* "a=1&b=x%20y": an application/x-www-form-urlencoded body (space as %20). */
char *jkpath_encode_form(const struct jk_kv *kv, size_t n);
/* ".../queue/item/123/" (a Location, absolute or relative) -> 123; -1 if malformed. */
int   jkpath_queue_id(const char *location, long *id);

#endif
