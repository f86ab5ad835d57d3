/* metrics: see metrics.h. A small fixed table is plenty for one daemon. */
#include "metrics.h"

#include "safefile.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SERIES 128
#define MAX_NAMES  48

static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct series {
	const char *name;
	char        labels[160];
	double      value;                 /* counter, gauge; histogram: sum */
	unsigned long long count, bucket[NBUCKETS];
	int         hist;
};

struct desc {
	const char *name, *type, *help;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series   series[MAX_SERIES];
static size_t          nseries;
static struct desc     descs[MAX_NAMES];
static size_t          ndescs;

void
metrics_describe(const char *name, const char *type, const char *help)
{
	size_t i;

	pthread_mutex_lock(&lock);
	for (i = 0; i < ndescs && strcmp(descs[i].name, name); i++)
		;
	if (i == ndescs && ndescs < MAX_NAMES) {
		descs[ndescs].name = name;
		descs[ndescs].type = type;
		descs[ndescs].help = help;
		ndescs++;
	}
	pthread_mutex_unlock(&lock);
}

/* The series for name+labels, created on first use; NULL if the table is full. Under lock. */
static struct series *
find(const char *name, const char *labels)
{
	size_t i;

	if (!labels)
		labels = "";
	for (i = 0; i < nseries; i++)
		if (!strcmp(series[i].name, name) && !strcmp(series[i].labels, labels))
			return &series[i];
	if (nseries == MAX_SERIES)
		return NULL;
	series[nseries].name = name;
	snprintf(series[nseries].labels, sizeof(series[nseries].labels), "%s", labels);
	return &series[nseries++];
}

void
metrics_add(const char *name, const char *labels, double v)
{
	struct series *s;

	pthread_mutex_lock(&lock);
	if ((s = find(name, labels)))
		s->value += v;
	pthread_mutex_unlock(&lock);
}

void
metrics_set(const char *name, const char *labels, double v)
{
	struct series *s;

	pthread_mutex_lock(&lock);
	if ((s = find(name, labels)))
		s->value = v;
	pthread_mutex_unlock(&lock);
}

void
metrics_observe(const char *name, double seconds)
{
	struct series *s;
	size_t i;

	pthread_mutex_lock(&lock);
	if ((s = find(name, NULL))) {
		s->hist = 1;
		s->value += seconds;
		s->count++;
		for (i = 0; i < NBUCKETS; i++)
			if (seconds <= buckets[i])
				s->bucket[i]++;
	}
	pthread_mutex_unlock(&lock);
}

/* The exposition, to f. */
static void
write_exposition(FILE *f)
{
	size_t d, i, b;

	pthread_mutex_lock(&lock);
	for (d = 0; d < ndescs; d++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", descs[d].name, descs[d].help, descs[d].name,
		    descs[d].type);
		for (i = 0; i < nseries; i++) {
			struct series *s = &series[i];
			if (strcmp(s->name, descs[d].name))
				continue;
			if (!s->hist) {
				fprintf(f, "%s%s%s%s %.17g\n", s->name, s->labels[0] ? "{" : "", s->labels,
				    s->labels[0] ? "}" : "", s->value);
				continue;
			}
			for (b = 0; b < NBUCKETS; b++)
				fprintf(f, "%s_bucket{le=\"%g\"} %llu\n", s->name, buckets[b], s->bucket[b]);
			fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n%s_count %llu\n", s->name,
			    s->count, s->name, s->value, s->name, s->count);
		}
	}
	pthread_mutex_unlock(&lock);
}

/*
 * The temporary is "<name>.tmp" beside path (the textfile collector reads
 * only *.prom), created through the directory's fd without following a
 * link planted there (safefile.h), then fsync'd and renamed. Writers are
 * serialized: they share the temporary's name.
 */
int
metrics_write(const char *path, char *err, size_t errlen)
{
	static pthread_mutex_t writing = PTHREAD_MUTEX_INITIALIZER;
	const char *base;
	char *tmp = NULL;
	int dirfd, fd = -1, rc = -1;
	FILE *f = NULL;

	pthread_mutex_lock(&writing);
	if ((dirfd = safefile_opendir(path, &base)) < 0)
		goto out;
	tmp = xasprintf("%s.tmp", base);
	if ((fd = safefile_create(dirfd, tmp, 0, 0644)) < 0 || !(f = fdopen(fd, "w")))
		goto out;
	write_exposition(f);
	if (fflush(f) != 0 || ferror(f) || safefile_commit(dirfd, fd, tmp, base) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0) {
		snprintf(err, errlen, "[metrics] textfile %s: %s", path, strerror(errno));
		if (fd >= 0)
			unlinkat(dirfd, tmp, 0);
	}
	if (f)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	free(tmp);
	pthread_mutex_unlock(&writing);
	return rc;
}
