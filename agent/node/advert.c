/* advert: see advert.h. */
#include "advert.h"

#include "gwconn.h"
#include "log.h"
#include "node.h"
#include "daemon/shutdown.h"
#include "state.h"
#include "strvec.h"
#include "xalloc.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADVERT_NAME_MAX 400     /* "jga-build:" + 16 + ":" + 2 x 127 + ":" + "n" + 19 */
#define ADVERT_SUFFIX_MAX 32    /* the last part: 'n' or 'q' and a number of up to 19 digits */
/* How often registrations are brought in line with the records: each pass copies them (state_list). */
#define ADVERT_SYNC_MS 1000
/* A gearmand that does not accept within this is tried again at the next pass. */
#define ADVERT_CONNECT_MS 2000
/* FNV-1a, 64 bits: the published offset basis and prime. */
#define FNV64_OFFSET 1469598103934665603ULL
#define FNV64_PRIME  1099511628211ULL

struct advert_conn {
	struct gw_conn *c;
	char          **names;      /* registered on c */
	size_t          n;
	bool            warned;     /* "cannot connect" logged since the last success */
};

struct advert {
	struct node       *node;
	pthread_t          thread;
	struct advert_conn conn[CONFIG_MAX_SERVERS];
};

/* FNV-1a: job names can be 1,000 bytes; a function name has room for 512. */
static unsigned long long
job_hash(const char *job)
{
	unsigned long long h = FNV64_OFFSET;

	for (; *job; job++)
		h = (h ^ (unsigned char)*job) * FNV64_PRIME;
	return h;
}

void
advert_prefix(const char *job, const char *unique, char *buf, size_t len)
{
	size_t k = (size_t)snprintf(buf, len, "jga-build:%016llx:", job_hash(job));

	for (; *unique && k + 3 < len; unique++, k += 2)
		snprintf(buf + k, 3, "%02x", (unsigned char)*unique);
	if (k + 1 < len) {
		buf[k++] = ':';
		buf[k] = '\0';
	}
}

int
advert_find(const char *status, const char *job, const char *unique, long *queue_id, int *number)
{
	char prefix[ADVERT_NAME_MAX];
	const char *line = status;
	size_t pl;

	advert_prefix(job, unique, prefix, sizeof(prefix));
	pl = strlen(prefix);
	for (; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char kind;
		long long v;
		int total, running, workers;

		/* "function\ttotal\trunning\tavailable_workers" */
		if (strncmp(line, prefix, pl) != 0 ||
		    sscanf(line + pl, "%c%lld\t%d\t%d\t%d", &kind, &v, &total, &running, &workers) != 5 ||
		    workers <= 0 || v <= 0)
			continue;
		if (kind == 'n' && v < 1000000000LL) {
			*number = (int)v;
			return 1;
		}
		if (kind == 'q') {
			*queue_id = (long)v;
			return 1;
		}
	}
	return 0;
}

static void
conn_reset(struct advert_conn *ac)
{
	if (ac->c)
		gw_close(ac->c);
	ac->c = NULL;
	strv_free(ac->names, ac->n);
	ac->names = NULL;
	ac->n = 0;
}

/* Has gearmand closed it? (It sends nothing to a worker that never grabs.) */
static bool
conn_alive(struct advert_conn *ac)
{
	struct pollfd p = { .fd = gw_fd(ac->c), .events = POLLIN };
	struct gw_packet pk;

	if (poll(&p, 1, 0) <= 0)
		return true;
	return gw_read(ac->c, &pk, 0) >= 0;
}

/* The names to register now: records of builds whose job no executor holds. */
static char **
wanted(struct advert *a, size_t *nw)
{
	struct node *n = a->node;
	struct build_rec *recs;
	size_t nrec, k;
	char **v;

	*nw = 0;
	recs = state_list(n->state, &nrec);
	v = xcalloc(nrec + 1, sizeof(*v));
	for (k = 0; k < nrec; k++) {
		char name[ADVERT_NAME_MAX + ADVERT_SUFFIX_MAX];
		size_t pl;

		if (recs[k].number <= 0 && recs[k].queue_id <= 0)
			continue;
		if (node_holds_unique(n, recs[k].unique))
			continue;
		advert_prefix(recs[k].job, recs[k].unique, name, sizeof(name));
		pl = strlen(name);
		snprintf(name + pl, sizeof(name) - pl, "%c%ld", recs[k].number > 0 ? 'n' : 'q',
		    recs[k].number > 0 ? (long)recs[k].number : recs[k].queue_id);
		v[(*nw)++] = xstrdup(name);
	}
	free(recs);
	return v;
}

static void
sync_conn(struct advert *a, size_t s, char **want, size_t nw)
{
	const struct config *cfg = a->node->cfg;
	struct advert_conn *ac = &a->conn[s];
	char err[256], id[400];
	size_t i;

	if (ac->c && !conn_alive(ac))
		conn_reset(ac);
	if (!ac->c) {
		if (!nw)
			return;
		snprintf(id, sizeof(id), "%s-records", cfg->node_name);
		ac->c = gw_connect(cfg->gearman_tls, cfg->servers[s].host, cfg->servers[s].port, id,
		    ADVERT_CONNECT_MS, err, sizeof(err));
		if (!ac->c) {
			if (!ac->warned)
				log_warnx("cannot advertise re-queued builds on gearmand %s:%d: %s",
				    cfg->servers[s].host, cfg->servers[s].port, err);
			ac->warned = true;
			return;
		}
		ac->warned = false;
	}
	for (i = 0; i < ac->n; ) {
		if (strv_has(want, nw, ac->names[i])) {
			i++;
			continue;
		}
		if (gw_cant_do(ac->c, ac->names[i]) < 0)
			goto broken;
		free(ac->names[i]);
		ac->names[i] = ac->names[--ac->n];
	}
	for (i = 0; i < nw; i++) {
		if (strv_has(ac->names, ac->n, want[i]))
			continue;
		if (gw_can_do(ac->c, want[i]) < 0)
			goto broken;
		strv_push(&ac->names, &ac->n, want[i], (size_t)-1);
		log_info("advertising the build of a job this agent no longer holds: %s", want[i]);
	}
	return;
broken:
	log_warnx("gearmand %s:%d: %s; advertising again", cfg->servers[s].host, cfg->servers[s].port,
	    gw_error(ac->c));
	conn_reset(ac);
}

static void *
advert_thread(void *arg)
{
	struct advert *a = arg;
	size_t s, nw;
	char **want;

	do {
		want = wanted(a, &nw);
		for (s = 0; s < a->node->cfg->nservers; s++)
			sync_conn(a, s, want, nw);
		strv_free(want, nw);
	} while (!shutdown_sleep_ms(ADVERT_SYNC_MS));
	for (s = 0; s < a->node->cfg->nservers; s++)
		conn_reset(&a->conn[s]);
	return NULL;
}

struct advert *
advert_start(struct node *n)
{
	struct advert *a = xcalloc(1, sizeof(*a));

	a->node = n;
	if (pthread_create(&a->thread, NULL, advert_thread, a) != 0)
		fatalx("cannot start the advert thread");
	return a;
}

void
advert_stop(struct advert *a)
{
	pthread_join(a->thread, NULL);
	free(a);
}
