/* Unit tests for common/log.c: one call is one line, whatever its text holds. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Run the logging in fn with stderr on a pipe; what it wrote, in out. */
static void
capture(void (*fn)(void), char *out, size_t cap)
{
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t r;
	size_t n = 0;

	assert_int_equal(pipe(p), 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	fn();
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	while (n + 1 < cap && (r = read(p[0], out + n, cap - n - 1)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(p[0]);
}

static size_t
count(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s == c;
	return n;
}

static void
forge_message(void)
{
	/* As a job's unique id from a Gearman client would reach a warning. */
	log_warnx("refused job (unique %s)", "u1\n2026-12-05T00:00:00.000Z jga-node[1] info: forged\r\x1b[2J\t.");
}

static void
forge_field(void)
{
	const char *keys[] = { "event", "unique" };
	const char *vals[] = { "started", "u2\nevent=finished result=SUCCESS" };

	log_fields(LOG_LEVEL_INFO, "build started", keys, vals, 2);
}

/* Text format: control characters are written escaped; one call, one line. */
static void
test_log_text_escapes_control_characters(void **ctx)
{
	char out[4096];

	(void)ctx;
	log_init("test", LOG_LEVEL_DEBUG);
	log_set_format(LOG_FORMAT_TEXT);
	capture(forge_message, out, sizeof(out));
	assert_int_equal(count(out, '\n'), 1);
	assert_non_null(strstr(out, "(unique u1\\n2026-12-05T00:00:00.000Z jga-node[1] info: forged\\r\\x1b[2J\\t.)\n"));
	capture(forge_field, out, sizeof(out));
	assert_int_equal(count(out, '\n'), 1);
	assert_non_null(strstr(out, "build started event=started unique=u2\\nevent=finished result=SUCCESS\n"));
}

/* JSON format: escaped by JSON's rules, one object per line. */
static void
test_log_json_one_line(void **ctx)
{
	char out[4096];

	(void)ctx;
	log_init("test", LOG_LEVEL_DEBUG);
	log_set_format(LOG_FORMAT_JSON);
	capture(forge_field, out, sizeof(out));
	assert_int_equal(count(out, '\n'), 1);
	assert_non_null(strstr(out, "\"unique\":\"u2\\u000aevent=finished result=SUCCESS\"}\n"));
	log_set_format(LOG_FORMAT_TEXT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_text_escapes_control_characters),
		cmocka_unit_test(test_log_json_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
