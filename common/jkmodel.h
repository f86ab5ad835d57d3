/*
 * jkmodel: Jenkins' answers (JSON from the remote API, and config.xml)
 * parsed into the structs of jenkins.h. Used by jenkins.c and http.c (the
 * crumb), and directly by the unit tests and fuzzers: pure functions,
 * no I/O, input as real Jenkins shapes it and as a hostile server might.
 *
 * Strict about types, lenient about presence where Jenkins may leave a
 * field out (a tree= field that does not exist on an object is skipped)
 * or write null. On failure, err says what was wrong, naming the field by
 * its path in the document, e.g. "jobs[2].jobs[0].property[1].
 * parameterDefinitions[0].name: expected string, got integer", and the
 * output holds nothing to free. The errors: JK_EPROTO, and for the
 * searches and a missing parameter JK_ENOTFOUND.
 */
#ifndef JGA_JKMODEL_H
#define JGA_JKMODEL_H

#include "jenkins.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * A job list (api/json?tree=jobs[...]) through folders. One job at a time
 * is handed to jansson, in the calling thread's arena when the program
 * installed one (jarena.h), which it drops before the next.
 */
enum jk_err jkmodel_parse_jobs(const char *json, struct jk_job_list *out, char *err, size_t errlen);
/* computer/api/json: every node; computer/<name>/api/json: one. */
enum jk_err jkmodel_parse_nodes(const char *json, struct jk_node_list *out, char *err,
                size_t errlen);
enum jk_err jkmodel_parse_node(const char *json, struct jk_node *out, char *err, size_t errlen);
/* {"mode":"NORMAL"}: the controller's mode (api/json?tree=mode). */
enum jk_err jkmodel_parse_master_mode(const char *json, enum jk_mode *mode, char *err,
                size_t errlen);
/* {"quietingDown":true} (api/json?tree=quietingDown). */
enum jk_err jkmodel_parse_quieting(const char *json, bool *quieting, char *err, size_t errlen);
/* crumbIssuer/api/json: the header name (crumbRequestField) and value, malloc'd. */
enum jk_err jkmodel_parse_crumb(const char *json, char **field, char **crumb, char *err,
                size_t errlen);
enum jk_err jkmodel_parse_queue_item(const char *json, struct jk_queue_item *out, char *err,
                size_t errlen);
enum jk_err jkmodel_parse_build(const char *json, struct jk_build *out, char *err, size_t errlen);

/*
 * The queue (queue/api/json?tree=items[id,task[url],actions[parameters[
 * name,value]]]): *queue_id of the first item of the job at job_path
 * (jkpath_job; task.url compared by jkpath_same_job) whose ParametersAction has the parameter name = value;
 * JK_ENOTFOUND if none.
 */
enum jk_err jkmodel_find_queue(const char *json, const char *job_path, const char *name,
                const char *value, long *queue_id, char *err, size_t errlen);
/*
 * One page of a job's builds (newest first): *number of the first with
 * parameter name = value (name NULL: none) or made by queue_id (> 0);
 * *scanned builds looked at; *older true if it stopped at a build that
 * started before since_ms (then the builds after it are older still).
 */
enum jk_err jkmodel_find_build(const char *json, const char *name, const char *value,
                long queue_id, long long since_ms, int *number, int *scanned, bool *older,
                char *err, size_t errlen);

/* A node's config.xml: its <mode>. */
enum jk_err jkmodel_parse_node_mode(const char *xml, enum jk_mode *mode, char *err,
                size_t errlen);
/*
 * A job's config.xml: allowedSlaves of the NodeParameterDefinition named
 * param, as jk_job_allowed_nodes says (free names with strv_free).
 */
enum jk_err jkmodel_parse_allowed_nodes(const char *xml, const char *param, bool *all,
                char ***names, size_t *n, char *err, size_t errlen);

/*
 * The same config.xml: the multi-node setting of the NodeParameterDefinition
 * named param (jk_multi_node; JK_MULTI_NONE when it has none).
 */
enum jk_err jkmodel_parse_multi_node(const char *xml, const char *param,
                enum jk_multi_node *multi, char *err, size_t errlen);

/* A job's api/json?tree=buildable,disabled: *buildable (jk_job_buildable). */
enum jk_err jkmodel_parse_job_buildable(const char *json, bool *buildable, char *err,
                size_t errlen);

#endif
