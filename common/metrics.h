/*
 * metrics: counters, gauges and histograms, written as Prometheus text
 * exposition to a file (node_exporter's textfile collector convention:
 * write a temporary file, then rename it, so a reader never sees half).
 *
 * One registry per process: metrics describe the daemon as a whole, like
 * its configuration and shutdown flag. Thread safe. Names are static
 * strings; labels are a preformatted 'key="value"' list (or NULL).
 */
#ifndef JGA_METRICS_H
#define JGA_METRICS_H

#include <stddef.h>

void metrics_describe(const char *name, const char *type, const char *help);
void metrics_add(const char *name, const char *labels, double v);      /* counter */
void metrics_set(const char *name, const char *labels, double v);      /* gauge */
void metrics_observe(const char *name, double seconds);                /* histogram */
/*
 * Write the text exposition to path atomically, never through a link
 * planted in its directory (safefile.h). -1 with err on failure.
 */
int  metrics_write(const char *path, char *err, size_t errlen);

#endif
