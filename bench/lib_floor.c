/*
 * lib_floor: the least memory any program built on the agent's libraries
 * can have (issue 7's agent RSS figure is compared with it).
 *
 * It links what the agent links (libgearman, libcurl, jansson, inih),
 * initialises each the way the agent does (curl_global_init, one easy
 * handle, one gearman_worker_st, one JSON value, one INI parse) and does
 * nothing else. Debian's libcurl alone maps some thirty libraries
 * (OpenSSL, GnuTLS, Kerberos, LDAP, ...), whose pages count in RSS.
 *
 *   lib_floor      prints "ready", then waits for SIGTERM or SIGINT
 */
#include <curl/curl.h>
#include <ini.h>
#include <jansson.h>
#include <libgearman/gearman.h>

#include <signal.h>
#include <stdio.h>

static int
ini_line(void *user, const char *section, const char *name, const char *value)
{
	(void)user; (void)section; (void)name; (void)value;
	return 1;
}

int
main(void)
{
	gearman_worker_st *w;
	json_t *v;
	CURL *h;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(h = curl_easy_init()) ||
	    !(w = gearman_worker_create(NULL)) || !(v = json_object()) ||
	    ini_parse_string("[jenkins]\nurl = http://127.0.0.1/\n", ini_line, NULL) != 0) {
		fprintf(stderr, "lib_floor: cannot initialise the libraries\n");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&set, &sig);
	json_decref(v);
	gearman_worker_free(w);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return 0;
}
