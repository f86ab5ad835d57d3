/*
 * http_floor: the least CPU one HTTP request to a master can cost on this
 * machine (issue 7's throughput figure is bounded with it).
 *
 * A thread serves a fixed "200 {}" on loopback and does nothing else; the
 * main thread sends N GETs to it with libcurl, the agent's HTTP client, on
 * one kept-alive connection (cheaper than the fresh connection a POST
 * gets). Both sides are this one process, so its CPU per request is the
 * client's and a do-nothing master's together: a real master, or the
 * Jenkins test server, only adds to it.
 *
 *   http_floor [N]    prints {"requests": N, "cpu_s": .., "wall_s": ..}
 */
#include <curl/curl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char answer[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

/* One connection at a time; a reply for every request head that ends in a blank line. */
static void *
serve(void *arg)
{
	int lfd = *(int *)arg, c;
	char buf[8192], *end;
	size_t have, used;
	ssize_t n;

	while ((c = accept(lfd, NULL, NULL)) >= 0) {
		have = 0;
		while ((n = read(c, buf + have, sizeof(buf) - 1 - have)) > 0) {
			have += (size_t)n;
			buf[have] = '\0';
			while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
				/* A short reply would leave the client waiting: drop the connection. */
				if (write(c, answer, sizeof(answer) - 1) != (ssize_t)sizeof(answer) - 1)
					goto drop;
				used = (size_t)(end + 4 - buf);
				memmove(buf, buf + used, have - used + 1);
				have -= used;
			}
			if (have == sizeof(buf) - 1)
				break;          /* a head this large is not ours */
		}
drop:
		close(c);
	}
	return NULL;
}

static size_t
discard(char *p, size_t size, size_t n, void *user)
{
	(void)p; (void)user;
	return size * n;
}

static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);    /* every thread: client and server */
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double
wall_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	long i, n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
	double cpu0, wall0;
	char url[80];
	pthread_t t;
	CURL *h;
	int lfd;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (n <= 0 || (lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0 ||
	    pthread_create(&t, NULL, serve, &lfd) != 0) {
		fprintf(stderr, "http_floor: cannot serve on loopback (or bad count %s)\n",
		    argc > 1 ? argv[1] : "");
		return 1;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(h = curl_easy_init())) {
		fprintf(stderr, "http_floor: cannot initialise libcurl\n");
		return 1;
	}
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/queue/item/1/api/json", ntohs(sa.sin_port));
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_perform(h);           /* connect outside the measurement */
	cpu0 = cpu_seconds();
	wall0 = wall_seconds();
	for (i = 0; i < n; i++) {
		CURLcode rc = curl_easy_perform(h);

		if (rc != CURLE_OK) {
			fprintf(stderr, "http_floor: request %ld: %s\n", i, curl_easy_strerror(rc));
			return 1;
		}
	}
	printf("{\"requests\": %ld, \"cpu_s\": %.6f, \"wall_s\": %.6f}\n", n,
	    cpu_seconds() - cpu0, wall_seconds() - wall0);
	curl_easy_cleanup(h);
	curl_global_cleanup();
	return 0;
}
