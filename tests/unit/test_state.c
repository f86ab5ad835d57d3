/* Unit tests for agent/node/state.c: the journal of the builds an agent started. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/state.h"

static char dir[64];

static void limit_file_size(rlim_t bytes);

static int
setup(void **ctx)
{
	(void)ctx;
	snprintf(dir, sizeof(dir), "/tmp/jga-state-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **ctx)
{
	char cmd[128];

	(void)ctx;
	limit_file_size(RLIM_INFINITY);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct state *
open_ok(void)
{
	char err[512];
	struct state *st = state_open(dir, err, sizeof(err));

	if (!st)
		fail_msg("state_open(%s): %s", dir, err);
	return st;
}

static struct build_rec
rec(const char *unique, long queue_id, int number)
{
	struct build_rec r;

	memset(&r, 0, sizeof(r));
	snprintf(r.unique, sizeof(r.unique), "%s", unique);
	snprintf(r.function, sizeof(r.function), "build:job-%s", unique);
	snprintf(r.job, sizeof(r.job), "folder/job \"%s\"\n", unique);
	r.queue_id = queue_id;
	r.number = number;
	r.time = 1700000000;
	return r;
}

static size_t
journal_lines(void)
{
	char path[128], *line = NULL;
	size_t cap = 0, n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/builds.jsonl", dir);
	assert_non_null(f = fopen(path, "r"));
	while (getline(&line, &cap, f) > 0)
		n++;
	free(line);
	fclose(f);
	return n;
}

static void
append_raw(const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/builds.jsonl", dir);
	assert_non_null(f = fopen(path, "a"));
	fputs(text, f);
	fclose(f);
}

static void
expect_rec(struct state *st, const char *unique, long queue_id, int number)
{
	struct build_rec want = rec(unique, queue_id, number), got;

	if (state_load(st, unique, &got) < 0)
		fail_msg("no record of %s", unique);
	assert_string_equal(got.unique, want.unique);
	assert_string_equal(got.function, want.function);
	assert_string_equal(got.job, want.job);
	assert_int_equal(got.queue_id, queue_id);
	assert_int_equal(got.number, number);
	assert_int_equal(got.time, want.time);
}

/* Saved records come back after a restart, the latest version of each; removed ones do not. */
static void
test_state_survives_restart(void **ctx)
{
	struct state *st = open_ok();
	struct build_rec r = rec("a", 0, 0), got;
	size_t n;

	(void)ctx;
	free(state_list(st, &n));
	assert_int_equal(n, 0);
	assert_int_equal(state_save(st, &r), 0);
	r.queue_id = 7;
	assert_int_equal(state_save(st, &r), 0);
	r.number = 3;
	assert_int_equal(state_save(st, &r), 0);
	r = rec("b", 8, 0);
	assert_int_equal(state_save(st, &r), 0);
	r = rec("gone", 9, 4);
	assert_int_equal(state_save(st, &r), 0);
	state_remove(st, "gone");
	state_remove(st, "never saved");
	expect_rec(st, "a", 7, 3);
	assert_int_equal(state_load(st, "gone", &got), -1);
	state_close(st);

	st = open_ok();
	expect_rec(st, "a", 7, 3);
	expect_rec(st, "b", 8, 0);
	assert_int_equal(state_load(st, "gone", &got), -1);
	free(state_list(st, &n));
	assert_int_equal(n, 2);
	/* Opening rewrote the journal with the live records only. */
	assert_int_equal(journal_lines(), 2);
	state_close(st);
}

/* One agent per state_dir: a second one is refused with a reason. */
static void
test_state_dir_locked(void **ctx)
{
	struct state *st = open_ok(), *second;
	char err[512];

	(void)ctx;
	second = state_open(dir, err, sizeof(err));
	assert_null(second);
	if (!strstr(err, dir) || !strstr(err, "in use by another agent"))
		fail_msg("error '%s' does not say the directory is in use", err);
	state_close(st);
	state_close(open_ok());
}

/*
 * The default state_dir, ROOT/MASTER/NODE: what is missing is created,
 * mode 0750; a symbolic link below ROOT is refused, not followed.
 */
static void
test_state_make_dir(void **ctx)
{
	char root[128], path[256], err[512], other[256];
	struct stat sb;
	struct state *a, *b;

	(void)ctx;
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(path, sizeof(path), "%s/masterA/n1", root);
	if (state_make_dir(root, path, err, sizeof(err)) < 0)
		fail_msg("state_make_dir: %s", err);
	assert_int_equal(stat(path, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	assert_int_equal(sb.st_mode & 0027, 0);
	assert_int_equal(stat(root, &sb), 0);
	assert_int_equal(sb.st_mode & 0027, 0);
	/* Again: all there, nothing to do. Two agents, two directories, both open. */
	assert_int_equal(state_make_dir(root, path, err, sizeof(err)), 0);
	snprintf(other, sizeof(other), "%s/masterB/n1", root);
	assert_int_equal(state_make_dir(root, other, err, sizeof(err)), 0);
	a = state_open(path, err, sizeof(err));
	b = state_open(other, err, sizeof(err));
	assert_non_null(a);
	assert_non_null(b);
	state_close(a);
	state_close(b);

	/* A symbolic link below root, leaf or not, is an error naming it. */
	snprintf(other, sizeof(other), "%s/masterC", root);
	assert_int_equal(symlink(dir, other), 0);
	snprintf(path, sizeof(path), "%s/masterC/n1", root);
	assert_int_equal(state_make_dir(root, path, err, sizeof(err)), -1);
	if (!strstr(err, other) || !strstr(err, "symbolic link"))
		fail_msg("error '%s' does not name the link %s", err, other);
	snprintf(other, sizeof(other), "%s/n1", dir);
	assert_int_equal(stat(other, &sb), -1);	/* nothing created through it */
	snprintf(path, sizeof(path), "%s/masterA/n2", root);
	assert_int_equal(symlink(dir, path), 0);
	assert_int_equal(state_make_dir(root, path, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));

	/* A root whose parent is missing is not created. */
	snprintf(root, sizeof(root), "%s/no/root", dir);
	snprintf(path, sizeof(path), "%s/m/n", root);
	assert_int_equal(state_make_dir(root, path, err, sizeof(err)), -1);
	if (!strstr(err, root) || !strstr(err, "No such file"))
		fail_msg("error '%s' does not say %s cannot be created", err, root);
}

/* A line cut short (the agent died mid-write, or the disk was full) costs that line only. */
static void
test_state_torn_line(void **ctx)
{
	struct state *st = open_ok();
	struct build_rec r = rec("kept", 5, 0);

	(void)ctx;
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);
	append_raw("{\"unique\":\"cut\",\"functi");
	st = open_ok();
	expect_rec(st, "kept", 5, 0);
	assert_int_equal(state_load(st, "cut", &r), -1);
	/* Appends after the repair are whole lines. */
	r = rec("after", 6, 1);
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);
	append_raw("not json\n[1,2]\n{\"unique\":\"x\"}\n");
	st = open_ok();
	expect_rec(st, "kept", 5, 0);
	expect_rec(st, "after", 6, 1);
	assert_int_equal(journal_lines(), 2);
	state_close(st);
}

static void
limit_file_size(rlim_t bytes)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = bytes;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static off_t
journal_size(void)
{
	char path[128];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/builds.jsonl", dir);
	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

/*
 * The disk fills up mid-line: that record is refused, the journal keeps
 * only whole lines, and what is written once there is room survives.
 */
static void
test_state_short_writes(void **ctx)
{
	struct state *st = open_ok();
	struct build_rec r = rec("first", 1, 0), got;
	off_t size;

	(void)ctx;
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(state_save(st, &r), 0);
	size = journal_size();
	limit_file_size((rlim_t)size + 20);
	r = rec("cut", 2, 0);
	assert_int_equal(state_save(st, &r), -1);		/* 20 bytes got through */
	assert_int_equal(journal_size(), size);			/* and were taken back */
	assert_int_equal(state_load(st, "cut", &got), -1);
	limit_file_size(20);
	r = rec("still full", 3, 0);				/* the rewrite fails too */
	assert_int_equal(state_save(st, &r), -1);
	assert_int_equal(journal_size(), size);
	state_remove(st, "first");	/* no room for its "done" line; the rewrite before it left it out */
	limit_file_size(RLIM_INFINITY);
	r = rec("room again", 4, 5);
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);

	st = open_ok();
	expect_rec(st, "room again", 4, 5);
	assert_int_equal(state_load(st, "first", &got), -1);	/* gone with the rewrite */
	assert_int_equal(state_load(st, "cut", &got), -1);
	assert_int_equal(state_load(st, "still full", &got), -1);
	assert_int_equal(journal_lines(), 1);
	state_close(st);
	signal(SIGXFSZ, SIG_DFL);
}

/*
 * The journal cannot be rewritten at start (here: a directory where its
 * temporary file goes): the agent appends to it as it is, after the cut
 * line it ended with.
 */
static void
test_state_appends_when_rewrite_fails(void **ctx)
{
	struct state *st = open_ok();
	struct build_rec r = rec("before", 1, 0);
	char tmp[128];

	(void)ctx;
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);
	append_raw("{\"unique\":\"cut\",\"functi");
	snprintf(tmp, sizeof(tmp), "%s/builds.jsonl.tmp", dir);
	assert_int_equal(mkdir(tmp, 0700), 0);
	st = open_ok();
	expect_rec(st, "before", 1, 0);
	r = rec("after", 2, 3);
	assert_int_equal(state_save(st, &r), 0);
	state_remove(st, "before");
	state_close(st);
	assert_int_equal(rmdir(tmp), 0);
	st = open_ok();
	expect_rec(st, "after", 2, 3);
	assert_int_equal(state_load(st, "before", &r), -1);
	assert_int_equal(journal_lines(), 1);
	state_close(st);
}

/* Many builds: the journal stays small and the records right. */
static void
test_state_rewrites_when_stale(void **ctx)
{
	struct state *st = open_ok();
	char u[32];
	int i;

	(void)ctx;
	for (i = 0; i < 5000; i++) {
		struct build_rec r;

		snprintf(u, sizeof(u), "u%d", i);
		r = rec(u, 0, 0);
		assert_int_equal(state_save(st, &r), 0);
		r.queue_id = i + 1;
		assert_int_equal(state_save(st, &r), 0);
		r.number = i + 1;
		assert_int_equal(state_save(st, &r), 0);
		if (i % 100 != 0)	/* every 100th is never delivered */
			state_remove(st, u);
	}
	assert_true(journal_lines() < 1024 + 4 * 50 + 10);
	state_close(st);
	st = open_ok();
	for (i = 0; i < 5000; i++) {
		struct build_rec got;

		snprintf(u, sizeof(u), "u%d", i);
		if (i % 100 == 0)
			expect_rec(st, u, i + 1, i + 1);
		else
			assert_int_equal(state_load(st, u, &got), -1);
	}
	assert_int_equal(journal_lines(), 50);
	state_close(st);
}

/* Records in the file-per-build format of earlier versions are taken over. */
static void
test_state_takes_over_old_records(void **ctx)
{
	char path[256], tmp[128];
	struct state *st;
	FILE *f;

	(void)ctx;
	/* "ab" in hex, as the old format named them. */
	snprintf(path, sizeof(path), "%s/build-6162.json", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("{\"unique\":\"ab\",\"function\":\"build:job-ab\",\"job\":\"folder/job \\\"ab\\\"\\n\","
	    "\"queue_id\":11,\"number\":2,\"time\":1700000000}", f);
	fclose(f);
	/* While the journal cannot be rewritten, the old file stays: it is the only copy. */
	snprintf(tmp, sizeof(tmp), "%s/builds.jsonl.tmp", dir);
	assert_int_equal(mkdir(tmp, 0700), 0);
	st = open_ok();
	expect_rec(st, "ab", 11, 2);
	state_close(st);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(rmdir(tmp), 0);
	st = open_ok();
	expect_rec(st, "ab", 11, 2);
	assert_int_equal(access(path, F_OK), -1);
	state_close(st);
	st = open_ok();
	expect_rec(st, "ab", 11, 2);
	state_close(st);
}

/* A file outside the state_dir, holding "precious\n", that the agent must not touch. */
static void
victim(char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s-victim", dir);
	assert_non_null(f = fopen(path, "w"));
	fputs("precious\n", f);
	fclose(f);
}

static void
expect_victim_intact(const char *path)
{
	char text[64] = "";
	FILE *f;

	assert_non_null(f = fopen(path, "r"));
	assert_non_null(fgets(text, sizeof(text), f));
	fclose(f);
	unlink(path);
	assert_string_equal(text, "precious\n");
}

/*
 * Issue 16: a link planted at the rewrite's temporary name made the (root)
 * agent truncate the file it pointed to. Now the link is unlinked, the
 * temporary created O_EXCL|O_NOFOLLOW, and the journal is a regular file.
 */
static void
test_state_tmp_link_not_followed(void **ctx)
{
	char v[128], tmp[128], journal[128];
	struct build_rec r = rec("a", 1, 0);
	struct state *st;
	struct stat sb;

	(void)ctx;
	victim(v, sizeof(v));
	snprintf(tmp, sizeof(tmp), "%s/builds.jsonl.tmp", dir);
	assert_int_equal(symlink(v, tmp), 0);
	st = open_ok();
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);
	expect_victim_intact(v);
	snprintf(journal, sizeof(journal), "%s/builds.jsonl", dir);
	assert_int_equal(lstat(journal, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	assert_int_equal(lstat(tmp, &sb), -1);
}

/* Issue 16: a state_dir that group or others may write is refused, naming it and its mode. */
static void
test_state_dir_writable_by_others(void **ctx)
{
	struct build_rec r = rec("planted", 7, 3);
	struct state *st;
	char err[512];

	(void)ctx;
	st = open_ok();
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);
	assert_int_equal(chmod(dir, 0770), 0);
	assert_null(st = state_open(dir, err, sizeof(err)));
	if (!strstr(err, dir) || !strstr(err, "mode 0770"))
		fail_msg("unexpected error: %s", err);
	assert_int_equal(state_check_dir(dir, err, sizeof(err)), -1);
	assert_int_equal(chmod(dir, 0702), 0);
	assert_null(st = state_open(dir, err, sizeof(err)));
	/* Another user's directory, even private. */
	assert_int_equal(chmod(dir, 0700), 0);
	assert_int_equal(chown(dir, 65534, 65534), 0);
	if (geteuid() == 0) {
		assert_null(st = state_open(dir, err, sizeof(err)));
		assert_non_null(strstr(err, "owner uid 65534"));
	}
	assert_int_equal(chown(dir, geteuid(), getegid()), 0);
	assert_int_equal(state_check_dir(dir, err, sizeof(err)), 0);
}

/*
 * Issue 16: records are read only from regular files owned by us: a
 * journal that is a link (to records kept elsewhere) or belongs to
 * another user, and an old-format record of another user, are not loaded.
 */
static void
test_state_planted_records_ignored(void **ctx)
{
	char elsewhere[128], journal[128], old[128];
	struct build_rec r = rec("planted", 7, 3), got;
	struct state *st;
	FILE *f;

	(void)ctx;
	st = open_ok();
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);
	snprintf(journal, sizeof(journal), "%s/builds.jsonl", dir);
	snprintf(elsewhere, sizeof(elsewhere), "%s-elsewhere", dir);
	assert_int_equal(rename(journal, elsewhere), 0);
	assert_int_equal(symlink(elsewhere, journal), 0);
	st = open_ok();
	assert_int_equal(state_load(st, "planted", &got), -1);
	state_close(st);
	unlink(elsewhere);
	if (geteuid() != 0)
		return;		/* chown needs root */
	st = open_ok();
	assert_int_equal(state_save(st, &r), 0);
	state_close(st);
	assert_int_equal(chown(journal, 65534, 65534), 0);
	snprintf(old, sizeof(old), "%s/build-6162.json", dir);
	assert_non_null(f = fopen(old, "w"));
	fputs("{\"unique\":\"ab\",\"function\":\"build:x\",\"job\":\"x\",\"queue_id\":1,"
	    "\"number\":2,\"time\":1700000000}", f);
	fclose(f);
	assert_int_equal(chown(old, 65534, 65534), 0);
	st = open_ok();
	assert_int_equal(state_load(st, "planted", &got), -1);
	assert_int_equal(state_load(st, "ab", &got), -1);
	state_close(st);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_state_survives_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_dir_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_make_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_torn_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_short_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_appends_when_rewrite_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_rewrites_when_stale, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_takes_over_old_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_tmp_link_not_followed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_dir_writable_by_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_planted_records_ignored, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
