/*
 * projmap: the project-node map of one master — which node may run which
 * job, under which Gearman function names, pinned by which parameter.
 *
 * Pure: built from lists already read from Jenkins, no I/O. The coordinator
 * builds a new map on every refresh and answers project_map:$host from it;
 * the result is deterministic (sorted), so two coordinators of the same
 * master give byte-identical answers and the same versions.
 *
 * Rules (gearman-plugin's, see README "Wire contract"):
 *  - a job is dispatchable when it is buildable and declares a NodeLabel
 *    Parameter plugin Node parameter, or failing that a Label parameter;
 *  - node N may run job J when N is online with executors, and J's label
 *    expression holds on N's labels, or J has no label and N is NORMAL;
 *    and the Node parameter's allowedSlaves, if restricted, names N;
 *  - N's functions for J: build:$job, plus build:$job:$atom for each atom
 *    of J's label expression that is one of N's labels.
 */
#ifndef JGA_PROJMAP_H
#define JGA_PROJMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "jenkins.h"

#define PROJMAP_FUNCTION_MAX 512    /* libgearman's GEARMAN_FUNCTION_MAX_SIZE */
#define PROJMAP_NONCE_MAX    128    /* a request's nonce, echoed in its answer */

/* What is known of a Node parameter's allowedSlaves. */
struct pm_allowed {
	bool    known;      /* false: not read yet, the job is held back */
	bool    all;        /* unrestricted */
	char  **names;
	size_t  n;
	enum jk_multi_node multi;   /* several nodes per build? (multi_node_problem) */
};

struct pm_input {
	const char                *master;   /* [coordinator] name */
	enum function_names        naming;
	const struct jk_job_list  *jobs;
	const struct pm_allowed   *allowed;  /* parallel to jobs->jobs */
	const struct jk_node_list *nodes;
	const enum jk_mode        *modes;    /* parallel to nodes->nodes */
	const bool                *mode_known;
	const char                *url;      /* the master's URL (defaults_master_url); NULL: "" */
};

struct projmap;

/* The map of in (in is not kept; its strings are copied). Never NULL. */
struct projmap *projmap_build(const struct pm_input *in);
void            projmap_free(struct projmap *pm);

/* Version of the whole map (16 hex digits). */
const char     *projmap_version(const struct projmap *pm);
size_t          projmap_nfunctions(const struct projmap *pm);
size_t          projmap_nundispatchable(const struct projmap *pm);

/*
 * Answer a project_map request. req is the client's argument:
 *   {}                          the whole map
 *   {"node":"N"}                N's slice
 *   {"node":"N","version":"V"}  {"version":V,"unchanged":true} if V is current
 *   {"function":"build:J"}      the whole map's entry of the job offered as
 *                               build:J (its declared parameters, for a
 *                               client's check), in "jobs" (empty if none)
 * and "nonce":"X" in any of them, echoed in the answer ({"status":true} is
 * the coordinator's own, from its last read of the nodes: status.h). The whole map's
 * jobs list their declared "parameters" [{name, type}]; slices do not. Every answer
 * carries "url" (the master's) and "issued_ms" (given: the time of the
 * answer, Unix milliseconds), so that a signed answer names its master
 * and cannot be replayed (node/nodemap.c). Returns a malloc'd JSON
 * text, or NULL with a message in err (bad JSON, a bad or unknown key,
 * unknown node).
 */
char *projmap_answer(const struct projmap *pm, const char *req, size_t len, long long issued_ms,
          char *err, size_t errlen);

/* Is full (a full name, as projmap_find_job gives it) a dispatchable job of the map? */
bool  projmap_job_dispatchable(const struct projmap *pm, const char *full);

enum projmap_find {
	PROJMAP_FOUND,
	PROJMAP_NOT_FOUND,     /* no job has that name */
	PROJMAP_AMBIGUOUS,     /* only a short name, and jobs in several folders have it */
};

/*
 * Find a job by the name a client sends to stop:/set_description: — the
 * full name, else the short name, both case-insensitively (as the plugin
 * matches). PROJMAP_FOUND with the full name (owned by pm) in *full;
 * otherwise *full is NULL and err says why.
 */
enum projmap_find projmap_find_job(const struct projmap *pm, const char *name, const char **full,
                      char *err, size_t errlen);

#endif
