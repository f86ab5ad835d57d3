/* Unit tests for common/metrics.c: the textfile it writes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "metrics.h"

static char dir[64];

static int
setup(void **ctx)
{
	(void)ctx;
	snprintf(dir, sizeof(dir), "/tmp/jga-metrics-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **ctx)
{
	char cmd[160];

	(void)ctx;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s-victim'", dir, dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
read_first_line(const char *path, char *line, size_t len)
{
	FILE *f;

	line[0] = '\0';
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(line, (int)len, f));
	fclose(f);
}

/*
 * Issue 16: links planted at the temporary's name (this version's, and
 * the pid-named one of earlier versions) made the root agent truncate
 * and overwrite the file they pointed to. Neither is followed now.
 */
static void
test_metrics_tmp_link_not_followed(void **ctx)
{
	char path[128], tmp[160], victim[128], line[64], err[512];
	struct stat sb;
	FILE *f;

	(void)ctx;
	snprintf(victim, sizeof(victim), "%s-victim", dir);
	assert_non_null(f = fopen(victim, "w"));
	fputs("precious\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/jga.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(symlink(victim, tmp), 0);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid());
	assert_int_equal(symlink(victim, tmp), 0);
	metrics_describe("jga_test_total", "counter", "A test counter.");
	metrics_add("jga_test_total", NULL, 2);
	if (metrics_write(path, err, sizeof(err)) < 0)
		fail_msg("metrics_write: %s", err);
	read_first_line(victim, line, sizeof(line));
	assert_string_equal(line, "precious\n");
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	read_first_line(path, line, sizeof(line));
	assert_string_equal(line, "# HELP jga_test_total A test counter.\n");
	/* A stale temporary of a crash is replaced, not an obstacle. */
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_non_null(f = fopen(tmp, "w"));
	fclose(f);
	assert_int_equal(metrics_write(path, err, sizeof(err)), 0);
	assert_int_equal(access(tmp, F_OK), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_metrics_tmp_link_not_followed, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
