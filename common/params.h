/*
 * params: a build:* job's argument, parsed strictly.
 *
 * The argument is a JSON object whose values are strings, numbers or
 * booleans; they become text, as gearman-plugin turns them into text
 * parameters. An empty argument counts as {}. Anything else — not JSON,
 * not an object, nested values, null, duplicate keys, invalid UTF-8, NUL
 * bytes, too large, too many parameters, a bad name — is refused with a
 * message naming the problem.
 */
#ifndef JGA_PARAMS_H
#define JGA_PARAMS_H

#include <stddef.h>

/*
 * Limits on what a client may send: far above any real build's parameters,
 * low enough that a hostile argument costs the agent little memory and no
 * Jenkins request.
 */
#define PARAMS_MAX_BYTES  (1024 * 1024)   /* the whole argument */
#define PARAMS_MAX_COUNT  256             /* parameters in it */
#define PARAMS_MAX_NAME   255             /* bytes of one parameter name */

struct param {
	char *name;
	char *value;
};

struct params {
	struct param *v;
	size_t        n;
};

/*
 * Parse buf[0..len) into out (in the argument's order). -1 with the problem
 * in err, out then empty.
 */
int         params_parse(const char *buf, size_t len, struct params *out, char *err, size_t errlen);
void        params_free(struct params *p);
/* The value of name, or NULL. */
const char *params_get(const struct params *p, const char *name);

#endif
