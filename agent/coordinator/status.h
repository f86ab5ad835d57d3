/*
 * status: the coordinator's answer to {"status": true} on project_map:$host
 * — the master's nodes and the builds they run, as the last refresh read
 * them (README "Wire contract"). What a status page shows of a master.
 *
 * Pure: the snapshot is made from the node list the refresh already reads
 * (jk_nodes_list, with each executor's current build), and an answer is
 * rendered from the snapshot only, so answering costs no request to
 * Jenkins however often it is asked. The nodes part is rendered once per
 * refresh; an answer adds the envelope's few fields around it.
 *
 * The answer's text (keys sorted, as every map answer's):
 *   {"issued_ms":T,"jenkins_error":"","jenkins_ok":true,"master":M,
 *    "nodes":[{"builds":[{"estimated_ms":E,"gearman":G,"job":J,"number":N,
 *              "timestamp_ms":S,"url":U}],"busy":B,"executors":X,"name":N,
 *              "online":O}],
 *    "nonce":X (if asked),"read_ms":R,"refresh_s":P,"url":MASTER_URL}
 * Nodes in name order; a node's builds in Jenkins' executor order, each
 * once. A Pipeline run inside node() is shown where that node() holds an
 * executor, not also on the one-off executor its flyweight task has
 * (the placeholder there has no parameters: gearman comes from the run).
 * Every string is escaped; bytes that are not UTF-8 become U+FFFD.
 */
#ifndef JGA_STATUS_H
#define JGA_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "jenkins.h"
#include "projmap.h"

struct status_snap;

/* What nl (just read) says, read at read_ms (Unix ms). Never NULL. */
struct status_snap *status_snap_new(const struct jk_node_list *nl, long long read_ms);
void                status_snap_free(struct status_snap *s);
long long           status_snap_read_ms(const struct status_snap *s);

enum status_req {
	STATUS_REQ_NONE,   /* not a status request: a map request (projmap_answer) */
	STATUS_REQ_OK,     /* {"status": true} with at most a "nonce" */
	STATUS_REQ_BAD,    /* a status request with something wrong; err says what */
};

/*
 * Is req[0..len) (a client's project_map argument, hostile) a status
 * request? One with a "status" key must be {"status": true} with at most
 * a "nonce" string of PROJMAP_NONCE_MAX bytes; that nonce is copied into
 * nonce (NUL-terminated, *has_nonce set). Not JSON, or JSON without
 * "status": STATUS_REQ_NONE (projmap_answer says what is wrong with it).
 */
#define STATUS_NONCE_MAX PROJMAP_NONCE_MAX
enum status_req status_request(const char *req, size_t len, char nonce[STATUS_NONCE_MAX + 1],
            bool *has_nonce, char *err, size_t errlen);

/* The envelope's fields: who answers, how its reads of Jenkins fare. */
struct status_meta {
	const char *master;        /* [coordinator] name */
	const char *url;           /* the master's URL, as maps carry it */
	long long   issued_ms;     /* this answer's time (Unix ms) */
	const char *jenkins_error; /* the last refresh's failure, "" if it succeeded */
	int         refresh_s;     /* [coordinator] refresh */
	const char *nonce;         /* NULL: the request had none */
};

/*
 * The answer's text (malloc'd) from snap (NULL: not read yet, read_ms 0
 * and no nodes). jenkins_ok is: read once, and the last refresh did not fail.
 */
char *status_render(const struct status_snap *snap, const struct status_meta *m);

#endif
