/*
 * gclient: one foreground Gearman call through libgearman (the mapper's
 * project_map, the CLI's map/stop/set_description).
 *
 * A failure is a WORK_WARNING text + WORK_FAIL from the worker, never
 * WORK_EXCEPTION (gearmand 1.1.20 mangles it and common clients hang):
 * the warning's text is what the caller shows.
 */
#ifndef JGA_GCLIENT_H
#define JGA_GCLIENT_H

#include <stddef.h>

#include "config.h"

enum gclient_err {
	GCLIENT_OK = 0,
	GCLIENT_EFAILED = -1,     /* the worker refused it: WORK_FAIL (its warning in err) */
	GCLIENT_ENOANSWER = -2,   /* no answer in time: no worker for it, or a slow one */
	GCLIENT_EGEARMAN = -3,    /* gearmand unreachable or the submission failed */
};

/*
 * Submit fn(arg) as a foreground job and wait up to timeout_ms. GCLIENT_OK
 * with a malloc'd, NUL-terminated WORK_COMPLETE payload in *out (length in
 * *outlen, may be NULL); otherwise the kind of failure and a message in err.
 */
enum gclient_err gclient_call(const struct config_server *servers, size_t n, const char *fn,
        const char *unique, const char *arg, size_t arglen, int timeout_ms,
        char **out, size_t *outlen, char *err, size_t errlen);

#endif
