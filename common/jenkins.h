/*
 * jenkins: a client for the Jenkins HTTP remote API, on libcurl.
 *
 * One client object per thread: it owns one reused curl easy handle, so
 * the connection is kept alive between calls. It is not thread safe.
 *
 * Authentication is pre-emptive Basic auth. With an API token no crumb is
 * needed. With a password (or anonymously: CSRF protection is always on)
 * the client fetches a crumb (and keeps the session cookie it is bound to)
 * before the first POST, and fetches a new one once when a POST is
 * answered 403 "No valid crumb".
 *
 * Redirects are never followed. Every path segment (job names, folder
 * names, node names) is percent-encoded on its own, so no name can escape
 * its segment ("..", "/", "?", "#", spaces, UTF-8 all stay inside).
 *
 * Every call returns a jk_err. JK_OK is 0; on any other value
 * jk_client_error() holds a message a person can act on (it never contains
 * the token or password).
 */
#ifndef JGA_JENKINS_H
#define JGA_JENKINS_H

#include "strvec.h"	/* strv_free for the vectors handed out here */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

enum jk_err {
	JK_OK = 0,
	JK_ECONNECT,    /* cannot resolve or connect, TLS handshake failed */
	JK_ETIMEOUT,    /* connect or total timeout */
	JK_EBADREQ,     /* 400 */
	JK_EAUTH,       /* 401: wrong user, token or password */
	JK_EFORBIDDEN,  /* 403: missing permission, anonymous, bad crumb */
	JK_ENOTFOUND,   /* 404 */
	JK_ECONFLICT,   /* 409: e.g. job disabled */
	JK_ESERVER,     /* 5xx */
	JK_EPROTO,      /* unexpected status, malformed JSON/XML, no Location */
	JK_ECANCELED,   /* given up: the cancel test (jk_client_set_cancel) said so */
};

/* A short constant name of an error: "cannot connect", "timeout", ... */
const char *jk_strerror(enum jk_err e);

struct jk_opts {
	const char *url;          /* base URL ending with '/', e.g. http://h:8080/ */
	const char *user;         /* NULL: anonymous */
	const char *token;        /* API token, or NULL */
	const char *password;     /* password, or NULL (then crumbs are used) */
	const char *ca_file;      /* NULL: system store */
	bool        tls_verify;
	long        connect_timeout_ms;
	long        timeout_ms;
};

struct jk_client;

struct jk_client *jk_client_new(const struct jk_opts *opts);
void              jk_client_free(struct jk_client *c);
/* Message of the last failed call ("" after success). */
const char       *jk_client_error(const struct jk_client *c);
/* X-Jenkins-Session of the last response that had one ("" if none yet). */
const char       *jk_client_session(const struct jk_client *c);
/* HTTP status of the last response (0 if none). */
long              jk_client_status(const struct jk_client *c);
/*
 * While cancel is set, a request in progress is given up (JK_ECANCELED)
 * within about a second of cancel() returning true, and none is started:
 * a daemon that is stopping need not wait out [jenkins] timeout. NULL: off.
 */
void              jk_client_set_cancel(struct jk_client *c, bool (*cancel)(void));

/* GET / : the X-Jenkins header (version) into buf. */
enum jk_err jk_version(struct jk_client *c, char *buf, size_t len);

/* ---- jobs ---- */

enum jk_param_kind {
	JK_PARAM_OTHER = 0,
	JK_PARAM_NODE,            /* NodeLabel Parameter plugin: NodeParameterDefinition */
	JK_PARAM_LABEL,           /* NodeLabel Parameter plugin: LabelParameterDefinition */
};

struct jk_param_def {
	char              *name;
	char              *type;  /* as Jenkins exports it, e.g. "StringParameterDefinition" */
	enum jk_param_kind kind;
};

struct jk_job {
	char   *full_name;        /* "folder/sub/job" */
	char   *name;             /* short name "job" */
	char   *url;              /* as Jenkins exports it (absolute) */
	char   *label_expr;       /* NULL: no label restriction */
	bool    buildable;
	bool    disabled;
	bool    concurrent;       /* concurrentBuild */
	bool    pipeline;         /* a WorkflowJob: its runs take an executor only in node() */
	struct jk_param_def *params;
	size_t  nparams;
};

struct jk_job_list {
	struct jk_job *jobs;
	size_t n;
};

/*
 * All jobs, through folders, in one request (tree=). Folders themselves are
 * not listed; jobs inside them are, with their full name.
 */
enum jk_err jk_jobs_list(struct jk_client *c, struct jk_job_list *out);
/*
 * The same, parsed only when the answer differs from the one *digest was
 * taken of (a hash of its bytes): a master's job list rarely changes, and
 * parsing 10,000 jobs costs more than everything else in a refresh. On a
 * change *out is replaced and *digest updated; otherwise *out is kept. A
 * changed answer that cannot be parsed empties *out and resets *digest.
 */
enum jk_err jk_jobs_list_if_changed(struct jk_client *c, struct jk_job_list *out, uint64_t *digest,
                bool *changed);
void        jk_job_list_free(struct jk_job_list *l);

/*
 * Whether a Node parameter lets a build choose several nodes (NodeLabel
 * Parameter plugin, NodeParameterDefinition's allowMultiNodeSelection and
 * triggerConcurrentBuilds, set from its triggerIfResult). Then every
 * build of the job gets a TriggerNextBuildWrapper, whose validateBuild
 * fails the build unless the job's concurrentBuild matches.
 */
enum jk_multi_node {
	JK_MULTI_NONE = 0,        /* one node per build ("multiSelectionDisallowed") */
	JK_MULTI_SEQUENTIAL,      /* several, one build after another: the job must not be concurrent */
	JK_MULTI_CONCURRENT,      /* several, all at once: the job must be concurrent */
};

/*
 * allowedSlaves of the job's NodeParameterDefinition named param, from the
 * job's config.xml (Jenkins does not export it as JSON). *all is set when
 * the list is empty or holds "ALL (no restriction)"; otherwise names/n hold
 * the allowed node names (free with strv_free). *multi (unless NULL): the
 * parameter's multi-node setting. JK_ENOTFOUND (with a message saying so)
 * also when the job has no Node parameter named param.
 */
enum jk_err jk_job_allowed_nodes(struct jk_client *c, const char *full_name,
                const char *param, bool *all, char ***names, size_t *n,
                enum jk_multi_node *multi);

/*
 * Can the job be built now (GET job/<path>/api/json?tree=buildable,
 * disabled)? AbstractProject.isBuildable: not disabled (nor held off).
 */
enum jk_err jk_job_buildable(struct jk_client *c, const char *full_name, bool *buildable);

/* ---- nodes ---- */

/*
 * A build an executor of a node runs (its currentExecutable), as the
 * coordinator reads them with the nodes (jk_nodes_list). A Pipeline run
 * shows twice: as itself on a one-off executor (oneoff), and as its
 * PlaceholderExecutable on the regular executor a node() step holds, with
 * the run's url, number and times but no actions (gearman false there).
 */
struct jk_run {
	char     *url;            /* absolute, as Jenkins says */
	char     *job;            /* full name, decoded from url (jkpath_build_job);
	                             NULL when url names no job's build */
	int       number;         /* 0 when Jenkins did not say */
	long long timestamp_ms;   /* start, ms since the epoch; 0 when not said */
	long      estimated_ms;   /* -1 when Jenkins has no estimate */
	bool      gearman;        /* has a GEARMAN_UNIQUE parameter with a value */
	bool      oneoff;         /* on a one-off executor (a flyweight task's) */
};

struct jk_node {
	char   *name;             /* node name; "built-in" for the controller */
	char  **labels;           /* assigned labels, self label included */
	size_t  nlabels;
	int     executors;        /* numExecutors */
	int     idle_executors;   /* executors with idle == true */
	char  **running;          /* URLs of the builds its executors run
	                             (currentExecutable; jk_node_get only) */
	size_t  nrunning;
	struct jk_run *runs;      /* what every busy executor runs, one-off ones
	                             too: at most one per executor listed */
	size_t  nruns;
	int     busy;             /* regular executors with idle == false */
	int     starting;         /* executors (one-off ones too) busy with no
	                             currentExecutable yet: in Executor.run between the
	                             item leaving the queue and its build existing (or
	                             running what we may not read) */
	bool    offline;          /* offline for any reason */
	bool    temp_offline;     /* marked temporarily offline */
	char   *offline_reason;   /* offlineCauseReason, "" if none */
};

struct jk_node_list {
	struct jk_node *nodes;
	size_t n;
};

/*
 * All nodes in one request, with what their executors run (runs: url,
 * number, timestamp, estimatedDuration and parameters of each
 * currentExecutable, in the same request's tree=).
 */
enum jk_err jk_nodes_list(struct jk_client *c, struct jk_node_list *out);
void        jk_node_list_free(struct jk_node_list *l);
/* One node (name "built-in" maps to /computer/(built-in)/). */
enum jk_err jk_node_get(struct jk_client *c, const char *name, struct jk_node *out);
void        jk_node_free(struct jk_node *n);

/*
 * Is the master in quiet-down (GET api/json?tree=quietingDown)? Its queue
 * then starts nothing but flyweight tasks (Queue.makeBuildable).
 */
enum jk_err jk_master_quieting(struct jk_client *c, bool *quieting);

enum jk_mode { JK_MODE_NORMAL, JK_MODE_EXCLUSIVE };
/* The node's mode, from /computer/<name>/config.xml. */
enum jk_err jk_node_mode(struct jk_client *c, const char *name, enum jk_mode *mode);

/*
 * Mark a node temporarily offline with msg (changeOfflineCause), or bring a
 * temporarily offline node back online (toggleOffline when it is offline).
 */
enum jk_err jk_node_set_offline(struct jk_client *c, const char *name, bool offline,
                const char *msg);

/* ---- builds and the queue ---- */

struct jk_kv {
	const char *name;
	const char *value;
};

/*
 * POST job/<path>/buildWithParameters?delay=0sec with params as an
 * application/x-www-form-urlencoded body. 201 or 303: *queue_id is parsed
 * from Location and *existing is true for 303 (an identical item was
 * already queued). 404, 409 (disabled) and 400 come back as errors.
 */
enum jk_err jk_build_trigger(struct jk_client *c, const char *full_name,
                const struct jk_kv *params, size_t nparams,
                long *queue_id, bool *existing);

/*
 * What pins a queue item, and the build it made, to a node: the parameter
 * Jenkins assigns its label from (ParametersAction.getAssignedLabel), the
 * first NodeParameterValue or LabelParameterValue of the NodeLabel
 * Parameter plugin with a label, told by its _class (the job's declared
 * type, never the value's text). Both NULL when none pins it. A build's
 * ParametersAction keeps only the parameters its job declares.
 */
struct jk_pin {
	char  *name;              /* the parameter's name */
	char  *label;             /* its label: a node name, or a label expression */
	/*
	 * The names of every parameter in the first ParametersAction: what
	 * Jenkins kept of a trigger's parameters. buildWithParameters makes a
	 * value for each declared parameter only (ParametersDefinitionProperty.
	 * buildWithParameters), so a name sent but not here was dropped.
	 * kept_known: there was such an action.
	 */
	char **kept;
	size_t nkept;
	bool   kept_known;
};

void        jk_pin_free(struct jk_pin *pin);

enum jk_queue_state {
	JK_QUEUE_WAITING,         /* waiting, blocked or buildable */
	JK_QUEUE_STARTED,         /* left the queue: a build exists */
	JK_QUEUE_CANCELLED,       /* left the queue without a build */
};

struct jk_queue_item {
	long   id;
	enum jk_queue_state state;
	char  *why;               /* reason while waiting, NULL otherwise */
	bool   stuck;
	bool   blocked;           /* a BlockedItem: it could not start on a free executor
	                             (a non-concurrent job's build in progress, a
	                             throttle, quiet-down); false once it left */
	bool   left;              /* WAITING, yet a LeftItem: it left the queue and has no
	                             build yet (Executor.run's start window), or never will
	                             (createExecutable returned null: a disabled job) */
	int    build_number;      /* when STARTED */
	char  *build_url;         /* when STARTED, absolute as Jenkins says */
	struct jk_pin pin;        /* from its actions[] */
};

enum jk_err jk_queue_item_get(struct jk_client *c, long id, struct jk_queue_item *out);
void        jk_queue_item_free(struct jk_queue_item *q);
/* POST queue/cancelItem?id= ; 204 (no Content-Length) is success. */
enum jk_err jk_queue_cancel(struct jk_client *c, long id);

struct jk_build {
	int    number;
	bool   building;
	char  *result;            /* NULL while running */
	long   duration_ms;       /* 0 while running */
	long   estimated_ms;      /* -1 when Jenkins has no estimate */
	long long timestamp_ms;   /* start time, ms since the epoch */
	char  *built_on;          /* node name, "" for the controller; NULL when
	                             Jenkins does not say (Pipeline runs) */
	char  *url;               /* absolute, as Jenkins says */
	long   queue_id;          /* -1 when Jenkins does not know it (Run.getQueueId:
	                             old records, and before setQueueId) */
	char  *description;       /* NULL if none */
	struct jk_pin pin;        /* from its actions[] */
	bool   pipeline;          /* a WorkflowRun: it holds a node's executor
	                             only inside node() { }, through a placeholder */
};

enum jk_err jk_build_get(struct jk_client *c, const char *full_name, int number,
                struct jk_build *out);
void        jk_build_free(struct jk_build *b);
/* POST job/<path>/<n>/stop; the 302 Jenkins answers is success. */
enum jk_err jk_build_stop(struct jk_client *c, const char *full_name, int number);
/* POST job/<path>/<n>/submitDescription with form field description. */
enum jk_err jk_build_set_description(struct jk_client *c, const char *full_name,
                int number, const char *description);

/*
 * Find again a build this client asked for: by a parameter it set (name =
 * value, e.g. GEARMAN_UNIQUE = the Gearman unique id; name NULL to skip)
 * in the queue first, then among the job's builds, or by the queue id that
 * created it (queue_id > 0). JK_OK with *found_queue_id (still queued) or
 * *number (started); JK_ENOTFOUND if there is none.
 *
 * Bounded, whatever the job's history: the builds are read newest first,
 * JK_FIND_PAGE a request, only from the job's "builds" (the newest
 * JK_FIND_MAX; never "allBuilds", which makes Jenkins load every build
 * record), and the search stops at the first build that started before
 * since_ms (ms since the epoch, master's clock; 0: no time bound). At most
 * 1 + JK_FIND_MAX / JK_FIND_PAGE requests.
 */
#define JK_FIND_PAGE 25
#define JK_FIND_MAX  100
enum jk_err jk_find_build(struct jk_client *c, const char *full_name, const char *name,
                const char *value, long queue_id, long long since_ms, long *found_queue_id,
                int *number);

#endif
