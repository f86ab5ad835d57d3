/*
 * bench_client: a libgearman client that measures (issue 7).
 *
 * Submits foreground jobs and times every step of each one, so the agent
 * and the bare worker pool (bare_pool.c) are measured the same way.
 *
 *   bench_client -s HOST:PORT [-s...] -f FUNCTION [-f...] -n COUNT
 *                [-c CONCURRENCY] [-w WORKLOAD] [-u PREFIX] [--high]
 *                [--interval-ms MS [--duration-s S]] [-t TIMEOUT_MS]
 *                [-o FILE]
 *
 * CONCURRENCY threads, each with its own client (connection), run one job
 * at a time; job k goes to FUNCTION number k mod (number of -f), with
 * unique id PREFIX<k> (PREFIX defaults to 8 random hex digits and "-") and
 * WORKLOAD ("{}" by default) in which every "@UNIQUE@" becomes that id.
 * --high submits SUBMIT_JOB_HIGH. --interval-ms starts a job every MS ms
 * (or as soon as the previous one ends, if later) instead of back to back;
 * it needs -c 1, and --duration-s then stops submitting after S seconds
 * (-n, if given, still bounds the count). A job that has not ended
 * TIMEOUT_MS (default 60000) after its submission counts as "timeout".
 *
 * -o FILE gets one JSON line per job:
 *   {"k":0,"unique":"...","function":"...","submit":T,"created":T|null,
 *    "data":T|null,"complete":T|null,"status":"complete|fail|timeout|error",
 *    "warning":"..."|null}
 * T is CLOCK_REALTIME in microseconds since the epoch: "submit" right
 * before the task is added, then JOB_CREATED, the first WORK_DATA and
 * WORK_COMPLETE as the client received them. "warning" is the first
 * WORK_WARNING.
 *
 * stdout gets one JSON summary line:
 *   {"jobs":N,"complete":N,"fail":N,"timeout":N,"error":N,"elapsed_s":S,
 *    "rate":JOBS_COMPLETED_PER_S,"rtt_p50_ms":..,"rtt_p99_ms":..,
 *    "rtt_max_ms":..,"data_p50_ms":..,"data_p99_ms":..}
 * rtt is complete - submit over completed jobs, data is data - submit over
 * jobs that got WORK_DATA; null when there is none. Percentiles are
 * nearest-rank. Exit 0 if every job completed, 1 if not, 2 on bad usage.
 * SIGINT or SIGTERM: submit no more, let the jobs out finish, report.
 * The caller unsets GEARMAN_SERVERS (libgearman adds those servers).
 */
#include <libgearman/gearman.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SLICE_MS	1000	/* longest single wait in run_tasks */
#define UNIQUE_MARK	"@UNIQUE@"

enum status { ST_NONE, ST_COMPLETE, ST_FAIL, ST_TIMEOUT, ST_ERROR };
static volatile sig_atomic_t stopping;	/* SIGINT/SIGTERM: submit no more */

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static const char *status_name[] =
    { "none", "complete", "fail", "timeout", "error" };

struct server {
	char		*host;
	in_port_t	 port;
};

struct rec {
	const char	*func;		/* NULL: job not submitted */
	char		 unique[GEARMAN_MAX_UNIQUE_SIZE];
	int64_t		 submit, created, data, complete;	/* 0: none */
	enum status	 status;
	char		*warning;
};

struct run {
	struct server	*servers;
	size_t		 nservers;
	char		**funcs;
	size_t		 nfuncs;
	const char	*workload;
	char		 prefix[GEARMAN_MAX_UNIQUE_SIZE - 20];	/* + k */
	int		 high;
	long		 interval_ms;
	double		 duration_s;
	long		 timeout_ms;
	long		 n;		/* jobs, or room for them */
	struct timespec	 t0;		/* CLOCK_MONOTONIC start */
	atomic_long	 next;		/* next k to submit */
	struct rec	*recs;
};

static void
usage(void)
{
	fprintf(stderr, "usage: bench_client -s HOST:PORT [-s...] "
	    "-f FUNCTION [-f...] -n COUNT [-c CONCURRENCY]\n"
	    "                    [-w WORKLOAD] [-u PREFIX] [--high] "
	    "[--interval-ms MS [--duration-s S]]\n"
	    "                    [-t TIMEOUT_MS] [-o FILE]\n");
	exit(2);
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double
since(const struct timespec *t0)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)(ts.tv_sec - t0->tv_sec) +
	    (double)(ts.tv_nsec - t0->tv_nsec) / 1e9;
}

static long
num_arg(int opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max) {
		fprintf(stderr, "bench_client: -%c %s: want a number from "
		    "%ld to %ld\n", opt, s, min, max);
		exit(2);
	}
	return v;
}

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

/* Callbacks: the task's context is its record. */

static gearman_return_t
on_created(gearman_task_st *t)
{
	struct rec *r = gearman_task_context(t);

	if (!r->created)
		r->created = now_us();
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_data(gearman_task_st *t)
{
	struct rec *r = gearman_task_context(t);

	if (!r->data)
		r->data = now_us();
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_status(gearman_task_st *t)
{
	(void)t;
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_warning(gearman_task_st *t)
{
	struct rec *r = gearman_task_context(t);
	const char *d = gearman_task_data(t);

	if (!r->warning && !(r->warning = strndup(d ? d : "",
	    d ? gearman_task_data_size(t) : 0)))
		die("strndup");
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_complete(gearman_task_st *t)
{
	struct rec *r = gearman_task_context(t);

	r->complete = now_us();
	r->status = ST_COMPLETE;
	return GEARMAN_SUCCESS;
}

static gearman_return_t
on_fail(gearman_task_st *t)
{
	struct rec *r = gearman_task_context(t);

	r->status = ST_FAIL;
	return GEARMAN_SUCCESS;
}

static gearman_client_st *
client_new(struct run *run)
{
	gearman_client_st *c;
	size_t i;

	if (!(c = gearman_client_create(NULL))) {
		fprintf(stderr, "bench_client: gearman_client_create failed\n");
		return NULL;
	}
	for (i = 0; i < run->nservers; i++) {
		if (gearman_client_add_server(c, run->servers[i].host,
		    run->servers[i].port) != GEARMAN_SUCCESS) {
			fprintf(stderr, "bench_client: adding server %s:%u: "
			    "%s\n", run->servers[i].host, run->servers[i].port,
			    gearman_client_error(c));
			gearman_client_free(c);
			return NULL;
		}
	}
	gearman_client_set_created_fn(c, on_created);
	gearman_client_set_data_fn(c, on_data);
	gearman_client_set_status_fn(c, on_status);
	gearman_client_set_warning_fn(c, on_warning);
	gearman_client_set_complete_fn(c, on_complete);
	gearman_client_set_fail_fn(c, on_fail);
	return c;
}

/* The workload of one job: run->workload with UNIQUE_MARK replaced. */
static const char *
workload(const struct run *run, const char *unique, char **buf,
    size_t *cap, size_t *len)
{
	const char *s = run->workload, *m;
	size_t ml = strlen(UNIQUE_MARK), ul = strlen(unique), need, o = 0;

	if (!strstr(s, UNIQUE_MARK)) {
		*len = strlen(s);
		return s;
	}
	need = strlen(s) + 1;
	for (m = s; (m = strstr(m, UNIQUE_MARK)); m += ml)
		need += ul;
	if (need > *cap) {
		if (!(*buf = realloc(*buf, need)))
			die("realloc");
		*cap = need;
	}
	for (; (m = strstr(s, UNIQUE_MARK)); s = m + ml) {
		memcpy(*buf + o, s, m - s);
		o += m - s;
		memcpy(*buf + o, unique, ul);
		o += ul;
	}
	memcpy(*buf + o, s, strlen(s) + 1);
	*len = o + strlen(s);
	return *buf;
}

/* Submit job k on *cp and wait for its end. */
static void
one_job(struct run *run, gearman_client_st **cp, long k, char **buf,
    size_t *cap)
{
	struct rec *r = &run->recs[k];
	gearman_task_st *t;
	gearman_return_t ret;
	const char *wl;
	size_t wlen;
	int64_t left;

	r->func = run->funcs[k % run->nfuncs];
	snprintf(r->unique, sizeof(r->unique), "%s%ld", run->prefix, k);
	wl = workload(run, r->unique, buf, cap, &wlen);
	if (!*cp && !(*cp = client_new(run))) {
		r->status = ST_ERROR;
		return;
	}

	r->submit = now_us();
	t = (run->high ? gearman_client_add_task_high :
	    gearman_client_add_task)(*cp, NULL, r, r->func, r->unique, wl,
	    wlen, &ret);
	if (!t) {
		fprintf(stderr, "bench_client: job %ld: adding the task: %s\n",
		    k, gearman_client_error(*cp));
		r->status = ST_ERROR;
		goto drop;
	}
	/* Wait in slices until the job ends or its deadline passes. */
	while (r->status == ST_NONE) {
		left = (r->submit + run->timeout_ms * 1000 - now_us()) / 1000;
		if (left <= 0) {
			r->status = ST_TIMEOUT;
			goto drop;
		}
		gearman_client_set_timeout(*cp, left < SLICE_MS ?
		    (int)left : SLICE_MS);
		ret = gearman_client_run_tasks(*cp);
		if (ret == GEARMAN_SUCCESS)
			break;
		if (ret != GEARMAN_TIMEOUT && ret != GEARMAN_IO_WAIT) {
			fprintf(stderr, "bench_client: job %ld (%s %s): %s\n",
			    k, r->func, r->unique, gearman_client_error(*cp));
			r->status = ST_ERROR;
			goto drop;
		}
	}
	if (r->status == ST_NONE && ret == GEARMAN_SUCCESS) {
		/* Ended without WORK_COMPLETE or WORK_FAIL (an exception). */
		fprintf(stderr, "bench_client: job %ld (%s %s) ended with %s\n",
		    k, r->func, r->unique,
		    gearman_strerror(gearman_task_return(t)));
		r->status = ST_ERROR;
	}
	gearman_task_free(t);
	return;

drop:
	/*
	 * Drop the connection: a late answer then has no task to confuse,
	 * and gearmand marks a still-queued job whose last client left as
	 * "ignore" (`status` counts it until a worker looks, then it is
	 * thrown away).
	 */
	gearman_client_free(*cp);
	*cp = NULL;
}

/* Wait until the next submission is due; 0 when the run is over. */
static int
pace(struct run *run, struct timespec *due)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (due->tv_sec == 0 || (now.tv_sec > due->tv_sec ||
	    (now.tv_sec == due->tv_sec && now.tv_nsec > due->tv_nsec)))
		*due = now;		/* late: go now, no catching up */
	if (run->duration_s > 0 && (double)(due->tv_sec - run->t0.tv_sec) +
	    (double)(due->tv_nsec - run->t0.tv_nsec) / 1e9 >= run->duration_s)
		return 0;
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, due, NULL) ==
	    EINTR)
		;
	due->tv_nsec += run->interval_ms % 1000 * 1000000;
	due->tv_sec += run->interval_ms / 1000 + due->tv_nsec / 1000000000;
	due->tv_nsec %= 1000000000;
	return 1;
}

static void *
submitter(void *arg)
{
	struct run *run = arg;
	gearman_client_st *c = NULL;
	struct timespec due = { 0, 0 };
	char *buf = NULL;
	size_t cap = 0;
	long k;

	while (!stopping) {
		if (run->interval_ms && !pace(run, &due))
			break;
		if ((k = atomic_fetch_add(&run->next, 1)) >= run->n)
			break;
		one_job(run, &c, k, &buf, &cap);
	}
	gearman_client_free(c);
	free(buf);
	return NULL;
}

static void
json_str(FILE *f, const char *s)
{
	if (!s) {
		fputs("null", f);
		return;
	}
	putc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch == '\n')
			fputs("\\n", f);
		else if (ch == '\t')
			fputs("\\t", f);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			putc(ch, f);
	}
	putc('"', f);
}

static void
json_time(FILE *f, int64_t t)
{
	if (t)
		fprintf(f, "%lld", (long long)t);
	else
		fputs("null", f);
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile (pct of 100) of n sorted values, in ms. */
static void
json_pct(FILE *f, const char *name, const int64_t *v, size_t n, size_t pct)
{
	size_t rank = (pct * n + 99) / 100;

	fprintf(f, ",\"%s\":", name);
	if (n == 0)
		fputs("null", f);
	else
		fprintf(f, "%.3f", (double)v[rank > 0 ? rank - 1 : 0] / 1000);
}

static void
write_records(const struct run *run, long njobs, const char *path)
{
	const struct rec *r;
	FILE *f;
	long k;

	if (!(f = fopen(path, "w"))) {
		fprintf(stderr, "bench_client: cannot write %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
	for (k = 0; k < njobs; k++) {
		r = &run->recs[k];
		fprintf(f, "{\"k\":%ld,\"unique\":", k);
		json_str(f, r->unique);
		fputs(",\"function\":", f);
		json_str(f, r->func);
		fputs(",\"submit\":", f);
		json_time(f, r->submit);
		fputs(",\"created\":", f);
		json_time(f, r->created);
		fputs(",\"data\":", f);
		json_time(f, r->data);
		fputs(",\"complete\":", f);
		json_time(f, r->complete);
		fprintf(f, ",\"status\":\"%s\",\"warning\":",
		    status_name[r->status]);
		json_str(f, r->warning);
		fputs("}\n", f);
	}
	if (fclose(f) == EOF) {
		fprintf(stderr, "bench_client: writing %s: %s\n", path,
		    strerror(errno));
		exit(1);
	}
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "high",		no_argument,		NULL, 'H' },
		{ "interval-ms",	required_argument,	NULL, 'I' },
		{ "duration-s",		required_argument,	NULL, 'D' },
		{ NULL, 0, NULL, 0 }
	};
	struct run run = { .workload = "{}", .timeout_ms = 60000 };
	const char *out = NULL, *prefix = NULL;
	pthread_t *tids;
	int64_t *rtt, *dat;
	size_t nrtt = 0, ndat = 0;
	long conc = 1, njobs, k, count[5] = { 0 };
	double elapsed;
	unsigned char rnd[4];
	char *end;
	int c, err;

	while ((c = getopt_long(argc, argv, "s:f:n:c:w:u:t:o:", longopts,
	    NULL)) != -1) {
		switch (c) {
		case 's':
			run.servers = realloc(run.servers,
			    (run.nservers + 1) * sizeof(*run.servers));
			if (!run.servers)
				die("realloc");
			if (parse_server(optarg,
			    &run.servers[run.nservers]) == -1) {
				fprintf(stderr, "bench_client: -s %s: want "
				    "HOST:PORT\n", optarg);
				return 2;
			}
			run.nservers++;
			break;
		case 'f':
			if (!*optarg || strlen(optarg) >=
			    GEARMAN_FUNCTION_MAX_SIZE) {
				fprintf(stderr, "bench_client: -f: function "
				    "name empty or too long\n");
				return 2;
			}
			run.funcs = realloc(run.funcs,
			    (run.nfuncs + 1) * sizeof(*run.funcs));
			if (!run.funcs)
				die("realloc");
			run.funcs[run.nfuncs++] = optarg;
			break;
		case 'n':
			run.n = num_arg(c, optarg, 1, 100000000);
			break;
		case 'c':
			conc = num_arg(c, optarg, 1, 10000);
			break;
		case 'w':
			run.workload = optarg;
			break;
		case 'u':
			prefix = optarg;
			break;
		case 't':
			run.timeout_ms = num_arg(c, optarg, 1, 86400000);
			break;
		case 'o':
			out = optarg;
			break;
		case 'H':
			run.high = 1;
			break;
		case 'I':
			run.interval_ms = num_arg('-', optarg, 1, 3600000);
			break;
		case 'D':
			errno = 0;
			run.duration_s = strtod(optarg, &end);
			if (errno || *end || end == optarg ||
			    !(run.duration_s > 0 && run.duration_s <= 86400)) {
				fprintf(stderr, "bench_client: --duration-s "
				    "%s: want seconds, more than 0\n", optarg);
				return 2;
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc || run.nservers == 0 || run.nfuncs == 0)
		usage();
	if (run.duration_s > 0 && !run.interval_ms) {
		fprintf(stderr, "bench_client: --duration-s needs "
		    "--interval-ms\n");
		return 2;
	}
	if (run.interval_ms && conc != 1) {
		fprintf(stderr, "bench_client: --interval-ms needs -c 1\n");
		return 2;
	}
	if (run.duration_s > 0) {
		/* Submissions are at least interval_ms apart. */
		double room = run.duration_s * 1000 / run.interval_ms + 2;

		if (run.n == 0 || run.n > room)
			run.n = (long)room;
	} else if (run.n == 0) {
		fprintf(stderr, "bench_client: give -n COUNT (or "
		    "--interval-ms with --duration-s)\n");
		return 2;
	}
	if (prefix) {
		if (strlen(prefix) >= sizeof(run.prefix)) {
			fprintf(stderr, "bench_client: -u %s: too long (at "
			    "most %zu bytes)\n", prefix, sizeof(run.prefix) - 1);
			return 2;
		}
		strcpy(run.prefix, prefix);
	} else {
		if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
			die("getrandom");
		snprintf(run.prefix, sizeof(run.prefix), "%02x%02x%02x%02x-",
		    rnd[0], rnd[1], rnd[2], rnd[3]);
	}
	if (!(run.recs = calloc(run.n, sizeof(*run.recs))) ||
	    !(tids = calloc(conc, sizeof(*tids))))
		die("calloc");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	clock_gettime(CLOCK_MONOTONIC, &run.t0);
	for (k = 0; k < conc; k++) {
		if ((err = pthread_create(&tids[k], NULL, submitter,
		    &run)) != 0) {
			fprintf(stderr, "bench_client: starting thread %ld: "
			    "%s\n", k, strerror(err));
			return 1;
		}
	}
	for (k = 0; k < conc; k++)
		pthread_join(tids[k], NULL);
	elapsed = since(&run.t0);

	/* Submitted jobs are k = 0 .. njobs-1. */
	for (njobs = 0; njobs < run.n && run.recs[njobs].func; njobs++)
		;
	if (out)
		write_records(&run, njobs, out);

	if (!(rtt = calloc(njobs + 1, sizeof(*rtt))) ||
	    !(dat = calloc(njobs + 1, sizeof(*dat))))
		die("calloc");
	for (k = 0; k < njobs; k++) {
		const struct rec *r = &run.recs[k];

		count[r->status]++;
		if (r->status == ST_COMPLETE)
			rtt[nrtt++] = r->complete - r->submit;
		if (r->data)
			dat[ndat++] = r->data - r->submit;
	}
	qsort(rtt, nrtt, sizeof(*rtt), cmp64);
	qsort(dat, ndat, sizeof(*dat), cmp64);

	printf("{\"jobs\":%ld,\"complete\":%ld,\"fail\":%ld,\"timeout\":%ld,"
	    "\"error\":%ld,\"elapsed_s\":%.3f,\"rate\":%.1f", njobs,
	    count[ST_COMPLETE], count[ST_FAIL], count[ST_TIMEOUT],
	    count[ST_ERROR] + count[ST_NONE], elapsed,
	    elapsed > 0 ? count[ST_COMPLETE] / elapsed : 0.0);
	json_pct(stdout, "rtt_p50_ms", rtt, nrtt, 50);
	json_pct(stdout, "rtt_p99_ms", rtt, nrtt, 99);
	json_pct(stdout, "rtt_max_ms", rtt, nrtt, 100);
	json_pct(stdout, "data_p50_ms", dat, ndat, 50);
	json_pct(stdout, "data_p99_ms", dat, ndat, 99);
	printf("}\n");

	for (k = 0; k < njobs; k++)
		free(run.recs[k].warning);
	for (k = 0; k < (long)run.nservers; k++)
		free(run.servers[k].host);
	free(run.servers);
	free(run.funcs);
	free(run.recs);
	free(tids);
	free(rtt);
	free(dat);
	return count[ST_COMPLETE] == njobs ? 0 : 1;
}
