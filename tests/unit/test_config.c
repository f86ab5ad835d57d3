/*
 * Unit tests for common/config.c: good files, every kind of bad file; and
 * for the daemon's defaults on top of it (agent/daemon/defaults.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "daemon/defaults.h"
#include "log.h"

static char dir[] = "/tmp/jga-test-config-XXXXXX";

/* Load path as the daemon does: the file, then the defaults that depend on the host. */
static int
load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	if (config_load(path, cfg, err, errlen) < 0)
		return -1;
	if (defaults_apply(cfg, err, errlen) < 0) {
		config_free(cfg);
		return -1;
	}
	return 0;
}

static const char *
write_file(const char *name, const char *text, mode_t mode)
{
	static char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
	return path;
}

/* Load text; expect failure whose message contains each of the fragments. */
static void
expect_error(const char *text, const char *frag1, const char *frag2)
{
	struct config cfg;
	char err[1024];
	const char *path = write_file("bad.ini", text, 0600);

	assert_int_equal(load(path, &cfg, err, sizeof(err)), -1);
	if (!strstr(err, frag1) || (frag2 && !strstr(err, frag2)))
		fail_msg("error '%s' lacks '%s' / '%s'", err, frag1, frag2 ? frag2 : "");
}

static void
test_full_example(void **state)
{
	struct config cfg;
	char err[1024];
	const char *path;

	(void)state;
	path = write_file("ok.ini",
	    "[gearman]\n"
	    "servers = 127.0.0.1:4730, gm2 ,[::1]:4731   ; comment\n"
	    "[jenkins]\n"
	    "url = http://jenkins01.example:8080        ; master base URL\n"
	    "user = gearman\n"
	    "token = SECRET\n"
	    "ca_file =\n"
	    "tls_verify = false\n"
	    "connect_timeout = 3\n"
	    "timeout = 20\n"
	    "[node]                              ; read by the node agent\n"
	    "name = node1\n"
	    "status_interval = 5\n"
	    "[coordinator]\n"
	    "refresh = 7\n"
	    "function_names = full\n"
	    "[log]\n"
	    "level = debug\n", 0600);
	assert_int_equal(load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.nservers, 3);
	assert_string_equal(cfg.servers[0].host, "127.0.0.1");
	assert_int_equal(cfg.servers[0].port, 4730);
	assert_string_equal(cfg.servers[1].host, "gm2");
	assert_int_equal(cfg.servers[1].port, 4730);
	assert_string_equal(cfg.servers[2].host, "[::1]");
	assert_int_equal(cfg.servers[2].port, 4731);
	/* A trailing slash is added so paths can be appended. */
	assert_string_equal(cfg.url, "http://jenkins01.example:8080/");
	assert_string_equal(cfg.user, "gearman");
	assert_string_equal(cfg.token, "SECRET");
	assert_null(cfg.ca_file);
	assert_false(cfg.tls_verify);
	assert_int_equal(cfg.connect_timeout_ms, 3000);
	assert_int_equal(cfg.timeout_ms, 20000);
	assert_string_equal(cfg.node_name, "node1");
	assert_int_equal(cfg.status_interval, 5);
	/* Coordinator name defaults to the URL's host, then its port when not the scheme's (issue 16). */
	assert_string_equal(cfg.coordinator_name, "jenkins01.example_8080");
	assert_int_equal(cfg.refresh, 7);
	assert_int_equal(cfg.function_names, FUNCTION_NAMES_FULL);
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	config_free(&cfg);
}

static void
test_defaults(void **state)
{
	struct config cfg;
	char err[1024];
	const char *path;
	char host[256];

	(void)state;
	path = write_file("min.ini", "[jenkins]\nurl = https://user@ci.example.org/jenkins/\n", 0600);
	assert_int_equal(load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.nservers, 1);
	assert_string_equal(cfg.servers[0].host, "127.0.0.1");
	assert_int_equal(cfg.servers[0].port, 4730);
	assert_true(cfg.tls_verify);
	assert_string_equal(cfg.user, "user");	/* out of the URL (cred.h) */
	assert_string_equal(cfg.url, "https://ci.example.org/jenkins/");
	assert_null(cfg.token);
	assert_int_equal(cfg.refresh, 30);
	assert_int_equal(cfg.status_interval, 10);
	assert_int_equal(cfg.function_names, FUNCTION_NAMES_SHORT);
	assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
	assert_string_equal(cfg.coordinator_name, "ci.example.org_jenkins");
	gethostname(host, sizeof(host));
	host[strcspn(host, ".")] = '\0';
	assert_string_equal(cfg.node_name, host);
	config_free(&cfg);
}

/* The file alone leaves the names and the directory that depend on the host to the daemon. */
static void
test_file_only(void **state)
{
	struct config cfg;
	char err[1024];
	const char *path;

	(void)state;
	path = write_file("min.ini", "[jenkins]\nurl = https://ci.example.org/\n", 0600);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	assert_null(cfg.node_name);
	assert_null(cfg.coordinator_name);
	assert_null(cfg.state_dir);
	assert_null(cfg.state_root);
	config_free(&cfg);
	/* A URL without a host loads, but no coordinator name can be made of it. */
	path = write_file("nohost.ini", "[jenkins]\nurl = http://:8080/\n", 0600);
	assert_int_equal(config_load(path, &cfg, err, sizeof(err)), 0);
	assert_int_equal(defaults_apply(&cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "nohost.ini: [jenkins] url: no host"));
	config_free(&cfg);
}

/* Load text with $JGA_STATE_ROOT set to root (unset if NULL); expect state_dir and state_root. */
static void
expect_state_dir(const char *root, const char *text, const char *want, const char *want_root)
{
	struct config cfg;
	char err[1024];
	const char *path = write_file("sd.ini", text, 0600);

	if (root)
		setenv("JGA_STATE_ROOT", root, 1);
	else
		unsetenv("JGA_STATE_ROOT");
	if (load(path, &cfg, err, sizeof(err)) < 0)
		fail_msg("config_load: %s", err);
	unsetenv("JGA_STATE_ROOT");
	assert_string_equal(cfg.state_dir, want);
	if (want_root)
		assert_string_equal(cfg.state_root, want_root);
	else
		assert_null(cfg.state_root);
	config_free(&cfg);
}

/*
 * The default state_dir is per agent, ROOT/MASTER/NODE: two agents on one
 * host, nodes of two masters (under the host's name, by default), never
 * share one, and no name leaves ROOT or takes another name's directory.
 */
static void
test_state_dir(void **state)
{
	char host[256], want[600];

	(void)state;
	gethostname(host, sizeof(host));
	host[strcspn(host, ".")] = '\0';
	snprintf(want, sizeof(want), "/var/lib/jenkins-gearman-agent/a.example/%s", host);
	expect_state_dir(NULL, "[jenkins]\nurl = http://a.example/\n", want, "/var/lib/jenkins-gearman-agent");
	snprintf(want, sizeof(want), "/var/lib/jenkins-gearman-agent/b.example_8080/%s", host);
	expect_state_dir(NULL, "[jenkins]\nurl = http://b.example:8080/\n", want, "/var/lib/jenkins-gearman-agent");
	expect_state_dir(NULL, "[jenkins]\nurl = http://a.example/\n[node]\nname = n1\n"
	    "[coordinator]\nname = masterA\n", "/var/lib/jenkins-gearman-agent/masterA/n1",
	    "/var/lib/jenkins-gearman-agent");
	/* Names that could leave the directory, or take another's, are encoded. */
	expect_state_dir(NULL, "[jenkins]\nurl = http://a/\n[node]\nname = ..\n[coordinator]\nname = .\n",
	    "/var/lib/jenkins-gearman-agent/%2E/%2E.", "/var/lib/jenkins-gearman-agent");
	expect_state_dir(NULL, "[jenkins]\nurl = http://a/\n[node]\nname = ../../etc\n"
	    "[coordinator]\nname = m/x\n", "/var/lib/jenkins-gearman-agent/m%2Fx/%2E.%2F..%2Fetc",
	    "/var/lib/jenkins-gearman-agent");
	expect_state_dir(NULL, "[jenkins]\nurl = http://a/\n[node]\nname = n%2Fx\n[coordinator]\nname = m\n",
	    "/var/lib/jenkins-gearman-agent/m/n%252Fx", "/var/lib/jenkins-gearman-agent");
	/* $JGA_STATE_ROOT moves the root; a state_dir that is set is kept as it is. */
	expect_state_dir("/tmp/jga-root//", "[jenkins]\nurl = http://a/\n[node]\nname = n1\n",
	    "/tmp/jga-root/a/n1", "/tmp/jga-root");
	expect_state_dir("/tmp/jga-root", "[jenkins]\nurl = http://a/\n[node]\nname = n1\n"
	    "state_dir = /srv/jga\n", "/srv/jga", NULL);
	expect_state_dir(NULL, "[jenkins]\nurl = http://a/\n[node]\nstate_dir = ../x\n", "../x", NULL);
	setenv("JGA_STATE_ROOT", "relative/root", 1);
	expect_error("[jenkins]\nurl = http://a/\n", "$JGA_STATE_ROOT 'relative/root'", "absolute path");
	setenv("JGA_STATE_ROOT", "/", 1);
	expect_error("[jenkins]\nurl = http://a/\n", "$JGA_STATE_ROOT '/'", "absolute path");
	unsetenv("JGA_STATE_ROOT");
}

static void
test_shipped_examples(void **state)
{
	struct config cfg;
	char err[1024];

	(void)state;
	/* The documented examples must load as they are. */
	assert_int_equal(load("conf/node.ini", &cfg, err, sizeof(err)), 0);
	config_free(&cfg);
	assert_int_equal(load("conf/coordinator.ini", &cfg, err, sizeof(err)), 0);
	config_free(&cfg);
}

static void
test_token_file(void **state)
{
	struct config cfg;
	char err[1024], text[600];
	const char *tok;

	(void)state;
	tok = write_file("token", "s3cret-token\n", 0600);
	snprintf(text, sizeof(text), "[jenkins]\nurl = http://h/\nuser = u\ntoken_file = %s\n", tok);
	write_file("tf.ini", text, 0600);
	snprintf(text, sizeof(text), "%s/tf.ini", dir);
	assert_int_equal(load(text, &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.token, "s3cret-token");
	config_free(&cfg);

	/* Readable by others: refused, with the fix in the message. */
	tok = write_file("token", "s3cret-token\n", 0644);
	snprintf(text, sizeof(text), "[jenkins]\nurl = http://h/\nuser = u\ntoken_file = %s\n", tok);
	expect_error(text, "accessible by group or others", "chmod 600");
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("[jenkins]\nurl = http://h/\n[bogus]\nx = 1\n", "bad.ini:4", "[bogus]: unknown section");
	expect_error("[jenkins]\nurl = http://h/\nfoo = 1\n", "bad.ini:3", "[jenkins] foo: unknown key");
	expect_error("[jenkins]\nurl = http://h/\ntls_verify = maybe\n", ":3", "not a boolean");
	expect_error("[jenkins]\nurl = http://h/\n[coordinator]\nrefresh = 0\n", ":4", "[coordinator] refresh");
	expect_error("[jenkins]\nurl = http://h/\n[coordinator]\nrefresh = 10s\n", ":4", "whole number");
	expect_error("[jenkins]\nurl = http://h/\n[node]\nstatus_interval = -3\n", ":4", "status_interval");
	expect_error("[gearman]\nservers = h:0\n[jenkins]\nurl = http://h/\n", ":2", "bad port");
	expect_error("[gearman]\nservers = h:99999\n", ":2", "bad port");
	expect_error("[gearman]\nservers = a,,b\n", ":2", "empty");
	expect_error("[log]\nlevel = loud\n", ":2", "[log] level");
	expect_error("[coordinator]\nfunction_names = long\n", ":2", "function_names");
	expect_error("[gearman]\nservers = h\n", "[jenkins] url: required", NULL);
	expect_error("[jenkins]\nurl = ftp://h/\n", "must start with http", NULL);
	expect_error("[jenkins]\nurl = http://h/\nurl = http://g/\n", ":3", "given twice");
	expect_error("[jenkins]\nurl = http://h/\nuser = u\ntoken = a\npassword = b\n", "not both", NULL);
	expect_error("[jenkins]\nurl = http://h/\ntoken = a\n", "[jenkins] user: required", NULL);
	expect_error("[jenkins]\nurl = http://h/\nthis line has no equals sign\n", ":3", "syntax error");
	expect_error("[jenkins]\nurl = http://h/\nuser = u\ntoken = a\ntoken_file = /x\n", ":5", "exclusive");
}

static void
test_missing_file(void **state)
{
	struct config cfg;
	char err[1024];

	(void)state;
	assert_int_equal(load("/nonexistent/jga.ini", &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/jga.ini: cannot open"));
}

static void
test_secret_not_in_errors(void **state)
{
	struct config cfg;
	char err[1024];
	const char *path;

	(void)state;
	/* An error after the token was read must not echo the token. */
	path = write_file("sec.ini", "[jenkins]\nurl = http://h/\nuser = u\ntoken = TOPSECRET\nbogus = 1\n", 0600);
	assert_int_equal(load(path, &cfg, err, sizeof(err)), -1);
	assert_null(strstr(err, "TOPSECRET"));
}

/*
 * load() text (written with mode) with stderr going to a file: what it
 * returned, and what it logged in out.
 */
static int
load_logged(const char *text, mode_t mode, struct config *cfg, char *out, size_t cap)
{
	char err[1024], logpath[600];
	const char *path = write_file("logged.ini", text, mode);
	int saved = dup(STDERR_FILENO), fd, rc;
	ssize_t n;

	snprintf(logpath, sizeof(logpath), "%s/stderr", dir);
	assert_true((fd = open(logpath, O_RDWR | O_CREAT | O_TRUNC, 0600)) >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	rc = load(path, cfg, err, sizeof(err));
	fflush(stderr);
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	n = pread(fd, out, cap - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	if (rc < 0)
		snprintf(out + strlen(out), cap - strlen(out), "ERROR %s", err);
	return rc;
}

/* text (mode) loads; its log holds frag (or nothing if frag is NULL), and never secret. */
static void
expect_log(const char *text, mode_t mode, const char *frag, const char *secret)
{
	struct config cfg;
	char out[4096];

	if (load_logged(text, mode, &cfg, out, sizeof(out)) < 0)
		fail_msg("refused: %s", out);
	config_free(&cfg);
	if (frag ? !strstr(out, frag) : out[0] != '\0')
		fail_msg("log '%s' %s '%s'", out, frag ? "lacks" : "should be empty, for", frag ? frag : text);
	if (secret && strstr(out, secret))
		fail_msg("log '%s' shows the secret", out);
}

/*
 * Issue 16: an inline secret in a file group or others can read, and
 * credentials over plain http:// to a host that is not loopback, are
 * warned about when the file is read (at start, and on each reload).
 */
static void
test_credential_warnings(void **state)
{
	(void)state;
	expect_log("[jenkins]\nurl = https://h/\nuser = u\ntoken = TOPSECRET\n", 0644,
	    "[jenkins] has its secret (token or password) inline, and the file is mode 0644", "TOPSECRET");
	expect_log("[jenkins]\nurl = https://h/\nuser = u\npassword = TOPSECRET\n", 0640,
	    "mode 0640", "TOPSECRET");
	expect_log("[jenkins]\nurl = https://h/\nuser = u\ntoken = TOPSECRET\n", 0600, NULL, NULL);
	expect_log("[jenkins]\nurl = http://jenkins.example:8080/\nuser = u\ntoken = TOPSECRET\n", 0600,
	    "url http://jenkins.example:8080/: the credentials go over plain http://", "TOPSECRET");
	expect_log("[jenkins]\nurl = http://127.0.0.2:8080/\nuser = u\ntoken = T\n", 0600, NULL, NULL);
	expect_log("[jenkins]\nurl = http://localhost/\nuser = u\ntoken = T\n", 0600, NULL, NULL);
	expect_log("[jenkins]\nurl = http://[::1]:8080/\nuser = u\ntoken = T\n", 0600, NULL, NULL);
	expect_log("[jenkins]\nurl = http://jenkins.example/\n", 0644, NULL, NULL);	/* anonymous */
}

/*
 * Issue 16: credentials in [jenkins] url (user:secret@) were logged with
 * it ("node n1 of http://u:secret@h/"). They leave the URL when it is
 * read, and are used as user and password.
 */
static void
test_url_credentials_leave_url(void **state)
{
	struct config cfg;
	char out[4096];

	(void)state;
	assert_int_equal(load_logged("[jenkins]\nurl = http://gear%3Aman:TOP%40SECRET@jenkins.example/\n",
	    0600, &cfg, out, sizeof(out)), 0);
	assert_string_equal(cfg.url, "http://jenkins.example/");
	assert_string_equal(cfg.user, "gear:man");
	assert_string_equal(cfg.password, "TOP@SECRET");
	assert_string_equal(cfg.coordinator_name, "jenkins.example");
	config_free(&cfg);
	assert_non_null(strstr(out, "the credentials go over plain http://"));
	assert_null(strstr(out, "SECRET"));
	expect_error("[jenkins]\nurl = http://u:TOPSECRET@h/\nuser = v\ntoken = t\n", "give them once",
	    NULL);
	expect_error("[jenkins]\nurl = ftp://u:TOPSECRET@h/\n", "'ftp://h/' must start with http", NULL);
}

static void
on_alarm(int sig)
{
	(void)sig;
	fail_msg("reading the configuration hung");
}

/*
 * Issue 16: a FIFO as token_file hung the daemon (a SIGHUP reload waited
 * forever in open); and a token file of another user was accepted. Both
 * are refused now (secret.h).
 */
static void
test_token_file_fifo(void **state)
{
	char fifo[600], text[800];

	(void)state;
	snprintf(fifo, sizeof(fifo), "%s/token.fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(text, sizeof(text), "[jenkins]\nurl = http://h/\nuser = u\ntoken_file = %s\n", fifo);
	signal(SIGALRM, on_alarm);
	alarm(5);
	expect_error(text, "token.fifo", "not a regular file");
	alarm(0);
	unlink(fifo);
}

static void
test_token_file_other_owner(void **state)
{
	char text[800];
	struct config cfg;
	char err[1024];
	const char *tok;

	(void)state;
	if (geteuid() != 0)
		skip();		/* chown needs root */
	tok = write_file("token.other", "s3cret-token\n", 0600);
	assert_int_equal(chown(tok, 65534, 65534), 0);
	snprintf(text, sizeof(text), "[jenkins]\nurl = http://h/\nuser = u\ntoken_file = %s\n", tok);
	write_file("other.ini", text, 0600);
	snprintf(text, sizeof(text), "%s/other.ini", dir);
	assert_int_equal(load(text, &cfg, err, sizeof(err)), -1);
	if (!strstr(err, "token.other") || !strstr(err, "owned by"))
		fail_msg("unexpected error: %s", err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_example),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_file_only),
		cmocka_unit_test(test_state_dir),
		cmocka_unit_test(test_shipped_examples),
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_secret_not_in_errors),
		cmocka_unit_test(test_credential_warnings),
		cmocka_unit_test(test_url_credentials_leave_url),
		cmocka_unit_test(test_token_file_fifo),
		cmocka_unit_test(test_token_file_other_owner),
	};
	int rc;

	if (!mkdtemp(dir))
		return 1;
	rc = cmocka_run_group_tests_name("config", tests, NULL, NULL);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			rc = 1;
	}
	return rc;
}
