/* buildref: see buildref.h. */
#include "buildref.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* num as a build number: a JSON integer or a string of digits; -1 if it is neither or too large. */
static long
build_number(const json_t *num)
{
	const char *s;
	char *end;
	long v;

	if (json_is_integer(num))
		return json_integer_value(num) > INT_MAX || json_integer_value(num) < 0 ? -1 :
		    (long)json_integer_value(num);
	if (!json_is_string(num))
		return -1;
	s = json_string_value(num);
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || !isdigit((unsigned char)*s))
		return -1;
	return v;
}

json_t *
buildref_parse(const char *buf, size_t len, const char **name, int *number, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *r, *n, *num;
	long v;

	r = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!r) {
		snprintf(err, errlen, "argument is not valid JSON: %s", jerr.text);
		return NULL;
	}
	n = json_object_get(r, "name");
	num = json_object_get(r, "number");
	if (!json_is_object(r) || !json_is_string(n) || !num) {
		snprintf(err, errlen, "argument must be {\"name\": JOB, \"number\": N}");
		goto bad;
	}
	v = build_number(num);
	if (v <= 0 || v > INT_MAX) {
		snprintf(err, errlen, "\"number\" must be a positive build number");
		goto bad;
	}
	*name = json_string_value(n);
	*number = (int)v;
	return r;
bad:
	json_decref(r);
	return NULL;
}
