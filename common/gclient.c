/* gclient: see gclient.h. */
#include "gclient.h"

#include "log.h"
#include "xalloc.h"

#include <libgearman/gearman.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct call {
	char  *result;
	size_t len;
	char   warning[512];
	bool   done, failed;
};

static gearman_return_t
on_warning(gearman_task_st *t)
{
	struct call *c = gearman_task_context(t);
	size_t n = gearman_task_data_size(t);

	if (n >= sizeof(c->warning))
		n = sizeof(c->warning) - 1;
	if (n)
		memcpy(c->warning, gearman_task_data(t), n);
	c->warning[n] = '\0';
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_complete(gearman_task_st *t)
{
	struct call *c = gearman_task_context(t);
	size_t n = gearman_task_data_size(t);

	c->result = xmalloc(n + 1);
	if (n)    /* an empty WORK_COMPLETE has no data pointer */
		memcpy(c->result, gearman_task_data(t), n);
	c->result[n] = '\0';
	c->len = n;
	c->done = true;
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_fail(gearman_task_st *t)
{
	struct call *c = gearman_task_context(t);

	c->failed = true;
	return GEARMAN_SUCCESS;
}

enum gclient_err
gclient_call(const struct config_server *servers, size_t n, const char *fn,
    const char *unique, const char *arg, size_t arglen, int timeout_ms,
    char **out, size_t *outlen, char *err, size_t errlen)
{
	gearman_client_st *cl = gearman_client_create(NULL);
	struct call c;
	gearman_return_t rc;
	size_t i;
	enum gclient_err ret = GCLIENT_EGEARMAN;

	memset(&c, 0, sizeof(c));
	*out = NULL;
	if (!cl)
		fatalx("out of memory (gearman_client_create)");
	for (i = 0; i < n; i++)
		gearman_client_add_server(cl, servers[i].host, (in_port_t)servers[i].port);
	gearman_client_set_timeout(cl, timeout_ms);
	gearman_client_set_warning_fn(cl, on_warning);
	gearman_client_set_complete_fn(cl, on_complete);
	gearman_client_set_fail_fn(cl, on_fail);
	if (!gearman_client_add_task(cl, NULL, &c, fn, unique, arg, arglen, &rc) ||
	    rc != GEARMAN_SUCCESS) {
		snprintf(err, errlen, "cannot submit %s: %s", fn, gearman_client_error(cl));
		goto out;
	}
	rc = gearman_client_run_tasks(cl);
	if (c.done) {
		*out = c.result;
		if (outlen)
			*outlen = c.len;
		c.result = NULL;
		ret = GCLIENT_OK;
	} else if (c.failed) {
		snprintf(err, errlen, "%s failed%s%s", fn, c.warning[0] ? ": " : "", c.warning);
		ret = GCLIENT_EFAILED;
	} else if (rc == GEARMAN_TIMEOUT) {
		ret = GCLIENT_ENOANSWER;
		snprintf(err, errlen, "%s: no answer within %d ms (is a worker for it running?)", fn, timeout_ms);
	} else
		snprintf(err, errlen, "%s: %s", fn, gearman_client_error(cl));
out:
	free(c.result);
	gearman_client_free(cl);
	return ret;
}
