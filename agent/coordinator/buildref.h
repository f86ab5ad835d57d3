/*
 * buildref: the argument of stop:$host and set_description:$host,
 * {"name": JOB, "number": N, ...}, with N an integer or a string of digits
 * (gearman-plugin accepts both).
 */
#ifndef JGA_BUILDREF_H
#define JGA_BUILDREF_H

#include <jansson.h>
#include <stddef.h>

/*
 * Parse buf. Returns the JSON object (the caller json_decref's it; *name
 * points into it, *number is the build number, positive) or NULL with a
 * message naming the problem in err.
 */
json_t *buildref_parse(const char *buf, size_t len, const char **name, int *number,
            char *err, size_t errlen);

#endif
