/*
 * bare_pool: the floor our agent is measured against (issue 7).
 *
 * A pool of bare libgearman workers that do nothing but answer
 * WORK_COMPLETE with an empty result. Same executor count as the agent,
 * same gearmand: whatever latency or throughput this pool gets is the most
 * the agent could get.
 *
 *   bare_pool -s HOST:PORT [-s HOST:PORT...] -n WORKERS
 *             [-f FUNCTION...] [-F FILE] [-i ID_PREFIX]
 *
 * Each of the WORKERS threads has its own gearman_worker_st (its own TCP
 * connection to every server), the identifier ID_PREFIX-<i> ("bare-<i>" by
 * default), and registers every -f FUNCTION and every line of FILE (one
 * function name per line; empty lines are skipped).
 *
 * stdout: "ready" once the first gearman_worker_work() of every worker has
 * come back with a job or a timeout: it has connected and sent its CAN_DOs
 * ahead of its first GRAB_JOB, so gearmand can hand it jobs. "jobs N" at
 * exit, N the jobs completed by all workers. Errors go to stderr, once per
 * kind; a worker that lost its server starts afresh after a 0.5 s pause
 * (a new gearman_worker_st, so the identifier is sent again), never exits.
 * SIGTERM or SIGINT: the workers finish their current job, disconnect, and
 * bare_pool exits 0 within about 0.5 s.
 */
#include <libgearman/gearman.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLL_MS		500	/* gearman_worker_work() returns this often */
#define RETRY_MS	500	/* pause after a connection error */

static atomic_int stop;		/* set by SIGTERM/SIGINT */

struct server {
	char		*host;
	in_port_t	 port;
};

struct pool {
	struct server	*servers;
	size_t		 nservers;
	char		**funcs;
	size_t		 nfuncs;
	const char	*idprefix;

	pthread_mutex_t	 mtx;		/* guards nready */
	pthread_cond_t	 cond;
	int		 nready;
};

struct worker {
	struct pool	*pool;
	int		 i;
	unsigned long	 jobs;		/* touched by this thread only */
	pthread_t	 tid;
};

static void
usage(void)
{
	fprintf(stderr, "usage: bare_pool -s HOST:PORT [-s HOST:PORT...] "
	    "-n WORKERS [-f FUNCTION...] [-F FILE] [-i ID_PREFIX]\n");
	exit(2);
}

static void
onsignal(int sig)
{
	(void)sig;
	atomic_store(&stop, 1);
}

static void
msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* HOST:PORT, HOST (port 4730). */
static int
parse_server(const char *arg, struct server *s)
{
	const char *colon = strrchr(arg, ':');
	char *end;
	long port = 4730;

	if (colon) {
		errno = 0;
		port = strtol(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || port < 1 || port > 65535)
			return -1;
	}
	s->host = colon ? strndup(arg, colon - arg) : strdup(arg);
	if (!s->host || !*s->host)
		return -1;
	s->port = (in_port_t)port;
	return 0;
}

static void
add_func(struct pool *p, const char *name)
{
	if (strlen(name) >= GEARMAN_FUNCTION_MAX_SIZE) {
		fprintf(stderr, "bare_pool: function name too long (max %d): "
		    "%.40s...\n", GEARMAN_FUNCTION_MAX_SIZE - 1, name);
		exit(2);
	}
	p->funcs = realloc(p->funcs, (p->nfuncs + 1) * sizeof(*p->funcs));
	if (!p->funcs || !(p->funcs[p->nfuncs] = strdup(name))) {
		perror("bare_pool");
		exit(1);
	}
	p->nfuncs++;
}

static void
read_funcs(struct pool *p, const char *path)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!(f = fopen(path, "r"))) {
		fprintf(stderr, "bare_pool: cannot open function list %s: %s\n",
		    path, strerror(errno));
		exit(2);
	}
	while ((n = getline(&line, &cap, f)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n > 0)
			add_func(p, line);
	}
	if (ferror(f)) {
		fprintf(stderr, "bare_pool: reading %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	free(line);
	fclose(f);
}

/* The whole job: WORK_COMPLETE with an empty result. */
static gearman_return_t
noop(gearman_job_st *job, void *ctx)
{
	(void)job;
	((struct worker *)ctx)->jobs++;
	return GEARMAN_SUCCESS;
}

static gearman_worker_st *
worker_new(struct worker *wk)
{
	struct pool *p = wk->pool;
	gearman_worker_st *w;
	gearman_return_t ret;
	char id[GEARMAN_MAX_IDENTIFIER];
	size_t i;

	if (!(w = gearman_worker_create(NULL))) {
		fprintf(stderr, "bare_pool: worker %d: gearman_worker_create "
		    "failed\n", wk->i);
		return NULL;
	}
	for (i = 0; i < p->nservers; i++) {
		ret = gearman_worker_add_server(w, p->servers[i].host,
		    p->servers[i].port);
		if (ret != GEARMAN_SUCCESS)
			goto fail;
	}
	snprintf(id, sizeof(id), "%s-%d", p->idprefix, wk->i);
	if ((ret = gearman_worker_set_identifier(w, id, strlen(id))) !=
	    GEARMAN_SUCCESS)
		goto fail;
	for (i = 0; i < p->nfuncs; i++) {
		ret = gearman_worker_define_function(w, p->funcs[i],
		    strlen(p->funcs[i]), gearman_function_create(noop), 0, wk);
		if (ret != GEARMAN_SUCCESS)
			goto fail;
	}
	gearman_worker_set_timeout(w, POLL_MS);
	return w;
fail:
	fprintf(stderr, "bare_pool: worker %d: setting up: %s\n", wk->i,
	    gearman_worker_error(w));
	gearman_worker_free(w);
	return NULL;
}

static void
set_ready(struct pool *p)
{
	pthread_mutex_lock(&p->mtx);
	p->nready++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->mtx);
}

static void *
work_loop(void *arg)
{
	struct worker *wk = arg;
	gearman_worker_st *w = NULL;
	gearman_return_t ret, last = GEARMAN_SUCCESS;
	int ready = 0;

	while (!atomic_load(&stop)) {
		if (!w && !(w = worker_new(wk))) {
			msleep(RETRY_MS);
			continue;
		}
		ret = gearman_worker_work(w);
		switch (ret) {
		case GEARMAN_SUCCESS:
		case GEARMAN_TIMEOUT:
		case GEARMAN_NO_JOBS:
		case GEARMAN_IO_WAIT:
			if (!ready && ret != GEARMAN_IO_WAIT) {
				ready = 1;
				set_ready(wk->pool);
			}
			if (last != GEARMAN_SUCCESS) {
				fprintf(stderr, "bare_pool: worker %d: "
				    "working again\n", wk->i);
				last = GEARMAN_SUCCESS;
			}
			break;
		default:
			/* Report each new kind of error once, not each retry. */
			if (ret != last)
				fprintf(stderr, "bare_pool: worker %d: %s: %s\n",
				    wk->i, gearman_strerror(ret),
				    gearman_worker_error(w));
			last = ret;
			/*
			 * libgearman reconnects by itself but does not send
			 * SET_CLIENT_ID again, and retries without pausing:
			 * start afresh after a pause instead.
			 */
			if (ret == GEARMAN_COULD_NOT_CONNECT ||
			    ret == GEARMAN_LOST_CONNECTION) {
				gearman_worker_free(w);
				w = NULL;
			}
			msleep(RETRY_MS);
			break;
		}
	}
	gearman_worker_free(w);
	return NULL;
}

int
main(int argc, char *argv[])
{
	struct pool p = { .idprefix = "bare" };
	struct worker *wk;
	struct sigaction sa;
	sigset_t block, old;
	unsigned long jobs = 0;
	size_t j;
	long n = 0;
	char *end;
	int c, i, err, rc = 0;

	memset(&sa, 0, sizeof(sa));
	pthread_mutex_init(&p.mtx, NULL);
	pthread_cond_init(&p.cond, NULL);

	while ((c = getopt(argc, argv, "s:n:f:F:i:")) != -1) {
		switch (c) {
		case 's':
			p.servers = realloc(p.servers,
			    (p.nservers + 1) * sizeof(*p.servers));
			if (!p.servers) {
				perror("bare_pool");
				return 1;
			}
			if (parse_server(optarg, &p.servers[p.nservers]) == -1) {
				fprintf(stderr, "bare_pool: -s %s: want "
				    "HOST:PORT\n", optarg);
				return 2;
			}
			p.nservers++;
			break;
		case 'n':
			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || *end || n < 1 || n > 10000) {
				fprintf(stderr, "bare_pool: -n %s: want a "
				    "number of workers, 1 to 10000\n", optarg);
				return 2;
			}
			break;
		case 'f':
			add_func(&p, optarg);
			break;
		case 'F':
			read_funcs(&p, optarg);
			break;
		case 'i':
			p.idprefix = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc || p.nservers == 0 || n == 0)
		usage();
	if (p.nfuncs == 0) {
		fprintf(stderr, "bare_pool: no function to register "
		    "(give -f or -F)\n");
		return 2;
	}

	sa.sa_handler = onsignal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Signals go to the main thread; the workers see the flag. */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	if (!(wk = calloc(n, sizeof(*wk)))) {
		perror("bare_pool");
		return 1;
	}
	for (i = 0; i < n; i++) {
		wk[i].pool = &p;
		wk[i].i = i;
		if ((err = pthread_create(&wk[i].tid, NULL, work_loop,
		    &wk[i])) != 0) {
			fprintf(stderr, "bare_pool: starting worker %d: %s\n",
			    i, strerror(err));
			atomic_store(&stop, 1);
			n = i;
			rc = 1;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&p.mtx);
	while (p.nready < n && !atomic_load(&stop)) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&p.cond, &p.mtx, &ts);
	}
	pthread_mutex_unlock(&p.mtx);
	if (!atomic_load(&stop)) {
		printf("ready\n");
		fflush(stdout);
	}

	while (!atomic_load(&stop))
		msleep(100);

	for (i = 0; i < n; i++) {
		pthread_join(wk[i].tid, NULL);
		jobs += wk[i].jobs;
	}
	printf("jobs %lu\n", jobs);
	fflush(stdout);

	for (j = 0; j < p.nservers; j++)
		free(p.servers[j].host);
	free(p.servers);
	for (j = 0; j < p.nfuncs; j++)
		free(p.funcs[j]);
	free(p.funcs);
	free(wk);
	return rc;
}
