/*
 * jenkins-gearman web: the pool's status page over HTTP (libmicrohttpd).
 * Read-only: GET and HEAD of "/", its script and style, and /api/status,
 * all from memory (the page is compiled in, the document is the poller's
 * cache: web.h). Loopback by default; on loopback, a Host header that
 * does not name a loopback address is refused (DNS rebinding would let any
 * web site read the page otherwise). The process holds no Jenkins
 * credentials: nothing secret can reach a page.
 */
#include "cli.h"
#include "clock.h"
#include "xalloc.h"
#include "sign.h"
#include "web.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* 8080 is Jenkins's own default port, which a master's host often uses already. */
#define WEB_DEFAULT_LISTEN  "127.0.0.1:8731"
#define WEB_CALL_TIMEOUT_MS 3000

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

struct web_srv {
	struct web_poll *poll;
	bool             loopback;
};

static void
web_headers(struct MHD_Response *r, const char *type)
{
	MHD_add_response_header(r, "Content-Type", type);
	MHD_add_response_header(r, "Content-Security-Policy", csp);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cache-Control", "no-store");
}

static enum MHD_Result
web_reply(struct MHD_Connection *conn, unsigned code, const char *type, const char *body, size_t len,
    bool copy)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body,
	    copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	web_headers(r, type);
	if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, "Allow", "GET, HEAD");
	ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* Host names a loopback address ("127.x.x.x", "localhost", "[::1]", with any port). */
static bool
host_is_loopback(const char *h)
{
	if (!h)
		return true;   /* HTTP/1.0 without Host: not a browser being rebound */
	if (!strncmp(h, "[::1]", 5))
		return h[5] == '\0' || h[5] == ':';
	if (!strncasecmp(h, "localhost", 9))
		return h[9] == '\0' || h[9] == ':';
	if (!strncmp(h, "127.", 4))
		return strspn(h, "0123456789.:") == strlen(h);
	return false;
}

static enum MHD_Result
web_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload, size_t *upload_size, void **state)
{
	struct web_srv *s = cls;
	char *doc, *body;
	size_t len, i;
	enum MHD_Result ret;

	(void)version; (void)upload; (void)upload_size; (void)state;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return web_reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET and HEAD only\n", 18, false);
	if (s->loopback && !host_is_loopback(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host")))
		return web_reply(conn, MHD_HTTP_FORBIDDEN, "text/plain", "Host is not a loopback name\n", 28, false);
	if (!strcmp(url, "/api/status")) {
		/* served_ms first: the page shows the data's age by the server's clock. */
		doc = web_poll_json(s->poll, &len);
		body = xasprintf("{\"served_ms\":%lld,%s", clk_wall_ms(), doc + 1);
		free(doc);
		ret = web_reply(conn, MHD_HTTP_OK, "application/json", body, strlen(body), true);
		free(body);
		return ret;
	}
	for (i = 0; web_files[i].path; i++)
		if (!strcmp(url, web_files[i].path))
			return web_reply(conn, MHD_HTTP_OK, web_files[i].type, web_files[i].body,
			    strlen(web_files[i].body), false);
	return web_reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 10, false);
}

/* HOST:PORT or [V6]:PORT into ss; -1 after printing why. */
static int
web_listen_addr(const char *arg, struct sockaddr_storage *ss, bool *loopback)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *ai;
	const char *colon = strrchr(arg, ':');
	char host[256];
	size_t hl;
	int e;

	if (!colon || colon == arg || !colon[1] || (size_t)(colon - arg) >= sizeof(host)) {
		fprintf(stderr, "jenkins-gearman web: --listen %s: not HOST:PORT\n", arg);
		return -1;
	}
	hl = (size_t)(colon - arg);
	if (arg[0] == '[' && arg[hl - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hl - 2, arg + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hl, arg);
	if ((e = getaddrinfo(host, colon + 1, &hints, &ai)) != 0) {
		fprintf(stderr, "jenkins-gearman web: --listen %s: %s\n", arg, gai_strerror(e));
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET)
		*loopback = (ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	else
		*loopback = IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ss)->sin6_addr);
	return 0;
}

static void
web_usage(FILE *f)
{
	fprintf(f,
	    "usage: jenkins-gearman [TLS OPTIONS] web [--listen HOST:PORT] [--interval SECONDS]\n"
	    "           [--map-public-key FILE]... [-t SECONDS] [-s HOST:PORT[,...]]\n"
	    "\n"
	    "Serve the pool's status page (/) and its JSON (/api/status), read-only, from a\n"
	    "cache refreshed every interval from gearmand and every coordinator.\n"
	    "\n"
	    "  --listen HOST:PORT    where to serve (default " WEB_DEFAULT_LISTEN "; anything but\n"
	    "                        loopback is served to anyone who can reach it, unauthenticated)\n"
	    "  --interval SECONDS    how often to poll (default 2)\n"
	    "  --map-public-key FILE verify the coordinators' answers with this key (repeatable);\n"
	    "                        without it they are shown as unverified\n"
	    "  -t SECONDS            one call's deadline (default 3)\n"
	    "  -s SERVERS            gearmand servers (default $GEARMAN_SERVERS or 127.0.0.1:4730)\n");
}

/* Serve until SIGINT or SIGTERM. */
static int
web_serve(struct web_poll_conf *pc, const struct sockaddr_storage *ss, bool loopback)
{
	struct web_srv srv = { .loopback = loopback };
	struct MHD_Daemon *d;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	srv.poll = web_poll_start(pc);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
	    (ss->ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL, web_handle, &srv,
	    MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)32,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "jenkins-gearman web: cannot listen (address in use?)\n");
		web_poll_stop(srv.poll);
		return EXIT_USAGE;
	}
	fprintf(stderr, "jenkins-gearman web: serving\n");
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	web_poll_stop(srv.poll);
	return 0;
}

int
cmd_web(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "interval", required_argument, NULL, 'i' },
		{ "map-public-key", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct web_poll_conf pc = { .cli = c, .interval_ms = 2000, .timeout_ms = WEB_CALL_TIMEOUT_MS };
	const char *listen = NULL, *servers = NULL;
	struct sockaddr_storage ss;
	sigset_t set;
	char err[512], *end;
	bool loopback;
	double secs;
	int ch, rc = EXIT_USAGE;
	size_t i;

	/*
	 * Before any thread and any output: only web_serve's sigwait takes
	 * them, and one sent as soon as we start is not lost but ends us cleanly.
	 */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while ((ch = getopt_long(argc, argv, "s:t:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'l': listen = optarg; break;
		case 's': servers = optarg; break;
		case 'i':
		case 't':
			secs = strtod(optarg, &end);
			if (*end || secs < 0.1 || secs > 3600) {
				fprintf(stderr, "jenkins-gearman web: %s: seconds from 0.1 to 3600\n", optarg);
				goto out;
			}
			*(ch == 'i' ? &pc.interval_ms : &pc.timeout_ms) = (int)(secs * 1000);
			break;
		case 'k':
			if (pc.nkeys == WEB_MAX_KEYS || !(pc.keys[pc.nkeys] = sign_key_public(optarg, err, sizeof(err)))) {
				fprintf(stderr, "jenkins-gearman web: %s: %s\n", optarg,
				    pc.nkeys == WEB_MAX_KEYS ? "too many keys" : err);
				goto out;
			}
			pc.nkeys++;
			break;
		case 'h': web_usage(stdout); rc = 0; goto out;
		default: web_usage(stderr); goto out;
		}
	}
	if (optind != argc) {
		web_usage(stderr);
		goto out;
	}
	if (cli_servers(c, servers) < 0 || web_listen_addr(listen ? listen : WEB_DEFAULT_LISTEN, &ss, &loopback) < 0)
		goto out;
	if (!loopback)
		fprintf(stderr, "jenkins-gearman web: warning: listening on %s, not loopback: the status page "
		    "is unauthenticated, anyone who can reach it sees the pool\n", listen);
	rc = web_serve(&pc, &ss, loopback);
out:
	for (i = 0; i < pc.nkeys; i++)
		sign_key_free(pc.keys[i]);
	return rc;
}
