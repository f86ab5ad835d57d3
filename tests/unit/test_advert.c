/* advert: the names a restarted agent registers, and finding one in "status". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "node/advert.h"

static void
test_prefix(void **state)
{
	char a[400], b[400];

	(void)state;
	advert_prefix("folder/job", "u-1", a, sizeof(a));
	assert_int_equal(strncmp(a, "jga-build:", 10), 0);
	assert_string_equal(a + strlen(a) - 8, ":752d31:");    /* the unique, hex: no tab or newline */
	advert_prefix("folder/job2", "u-1", b, sizeof(b));
	assert_string_not_equal(a, b);                          /* scoped to the job */
	advert_prefix("j", "a\tb\nc", b, sizeof(b));
	assert_null(strchr(b, '\t'));
	assert_null(strchr(b, '\n'));
}

static void
test_find(void **state)
{
	char p[400], status[2000];
	long qid = 0;
	int number = 0;

	(void)state;
	advert_prefix("unit", "deep-1", p, sizeof(p));
	snprintf(status, sizeof(status),
	    "build:unit\t3\t1\t2\n"
	    "%sn9\t0\t0\t0\n"          /* its agent is gone: no worker */
	    "%sn7\t0\t0\t1\n"
	    ".\n", p, p);
	assert_int_equal(advert_find(status, "unit", "deep-1", &qid, &number), 1);
	assert_int_equal(number, 7);
	number = 0;
	assert_int_equal(advert_find(status, "unit", "deep-2", &qid, &number), 0);
	assert_int_equal(advert_find(status, "other", "deep-1", &qid, &number), 0);
	snprintf(status, sizeof(status), "%sq42\t0\t0\t1\n", p);
	assert_int_equal(advert_find(status, "unit", "deep-1", &qid, &number), 1);
	assert_int_equal(qid, 42);
	assert_int_equal(number, 0);
	snprintf(status, sizeof(status), "%sx5\t0\t0\t1\n%sn\t0\t0\t1\n%sn-3\t0\t0\t1\n", p, p, p);
	assert_int_equal(advert_find(status, "unit", "deep-1", &qid, &number), 0);
	assert_int_equal(advert_find("", "unit", "deep-1", &qid, &number), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_find),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
