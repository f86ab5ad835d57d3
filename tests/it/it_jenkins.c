/*
 * it_jenkins: drive common/jenkins.c against a live (test) Jenkins for
 * tests/test_jenkins_client.py.
 *
 *   it_jenkins [-u user] [-t token] [-p password] [-T timeout_ms]
 *              [-c connect_timeout_ms] URL OP [ARG...] [-- OP [ARG...]]...
 *
 * All operations run on one client (one connection kept alive), in order.
 * Each prints one JSON line: {"op": ..., "ok": true, ...results} or
 * {"op": ..., "ok": false, "err": "<jk_strerror>", "message": ...,
 * "status": N}. Exit status: 0 if every operation succeeded, 1 if one
 * failed, 3 if a message leaked the token or password, 64 on bad usage.
 *
 * Operations:
 *   version | jobs | nodes | node NAME | mode NAME | allowed JOB PARAM
 *   trigger JOB [NAME=VALUE...] | queue ID | cancel ID
 *   wait-queue ID SECONDS   poll until the item left the queue
 *   build JOB N | wait-build JOB N SECONDS | stop JOB N | describe JOB N TEXT
 *   offline NAME MESSAGE | online NAME
 *   pause                   wait for a line on stdin (the test acts meanwhile)
 */
#include <jansson.h>
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jenkins.h"

static const char *secrets[2];
static int leaked;

static void
out(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (!s) {
		fprintf(stderr, "it_jenkins: json_dumps failed\n");
		exit(70);
	}
	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static json_t *
strv_json(char **v, size_t n)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

static json_t *
node_json(const struct jk_node *n)
{
	return json_pack("{s:s, s:o, s:i, s:i, s:b, s:b, s:s}",
	    "name", n->name, "labels", strv_json(n->labels, n->nlabels),
	    "executors", n->executors, "idle", n->idle_executors,
	    "offline", n->offline, "temp_offline", n->temp_offline,
	    "reason", n->offline_reason);
}

static json_t *
build_json(const struct jk_build *b)
{
	return json_pack("{s:i, s:b, s:o, s:I, s:I, s:I, s:o, s:s, s:I, s:o}",
	    "number", b->number, "building", b->building,
	    "result", b->result ? json_string(b->result) : json_null(),
	    "duration", (json_int_t)b->duration_ms, "estimated", (json_int_t)b->estimated_ms,
	    "timestamp", (json_int_t)b->timestamp_ms,
	    "built_on", b->built_on ? json_string(b->built_on) : json_null(),
	    "url", b->url, "queue_id", (json_int_t)b->queue_id,
	    "description", b->description ? json_string(b->description) : json_null());
}

static json_t *
queue_json(const struct jk_queue_item *q)
{
	static const char *states[] = { "waiting", "started", "cancelled" };

	return json_pack("{s:I, s:s, s:o, s:b, s:i, s:o}",
	    "id", (json_int_t)q->id, "state", states[q->state],
	    "why", q->why ? json_string(q->why) : json_null(), "stuck", q->stuck,
	    "build_number", q->build_number,
	    "build_url", q->build_url ? json_string(q->build_url) : json_null());
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
usage(void)
{
	fprintf(stderr, "usage: it_jenkins [-u user] [-t token] [-p password] [-T timeout_ms] "
	    "[-c connect_timeout_ms] URL OP [ARG...] [-- OP [ARG...]]...\n");
	exit(64);
}

static void
need(int argc, int n, const char *op)
{
	if (argc != n) {
		fprintf(stderr, "it_jenkins: %s takes %d argument(s)\n", op, n - 1);
		exit(64);
	}
}

/*
 * Run one operation (argv[0] is its name); r gets its results. Long on
 * purpose: one branch per jenkins.h operation, each a few lines turning
 * its structs into JSON for the Python side, read as a table.
 */
static enum jk_err
run(struct jk_client *c, int argc, char **argv, json_t *r)
{
	const char *op = argv[0];
	enum jk_err e;
	size_t i;

	if (strcmp(op, "version") == 0) {
		char v[64];

		need(argc, 1, op);
		if ((e = jk_version(c, v, sizeof(v))) == JK_OK)
			json_object_set_new(r, "version", json_string(v));
	} else if (strcmp(op, "jobs") == 0) {
		struct jk_job_list l;
		json_t *a = json_array();

		need(argc, 1, op);
		if ((e = jk_jobs_list(c, &l)) == JK_OK) {
			for (i = 0; i < l.n; i++) {
				const struct jk_job *j = &l.jobs[i];
				json_t *ps = json_array();
				size_t k;

				for (k = 0; k < j->nparams; k++)
					json_array_append_new(ps, json_pack("{s:s, s:s, s:i}",
					    "name", j->params[k].name, "type", j->params[k].type,
					    "kind", (int)j->params[k].kind));
				json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:o, s:b, s:b, s:b, s:o}",
				    "full_name", j->full_name, "name", j->name, "url", j->url,
				    "label", j->label_expr ? json_string(j->label_expr) : json_null(),
				    "buildable", j->buildable, "disabled", j->disabled,
				    "concurrent", j->concurrent, "params", ps));
			}
			jk_job_list_free(&l);
		}
		json_object_set_new(r, "jobs", a);
	} else if (strcmp(op, "nodes") == 0) {
		struct jk_node_list l;
		json_t *a = json_array();

		need(argc, 1, op);
		if ((e = jk_nodes_list(c, &l)) == JK_OK) {
			for (i = 0; i < l.n; i++)
				json_array_append_new(a, node_json(&l.nodes[i]));
			jk_node_list_free(&l);
		}
		json_object_set_new(r, "nodes", a);
	} else if (strcmp(op, "node") == 0) {
		struct jk_node n;

		need(argc, 2, op);
		if ((e = jk_node_get(c, argv[1], &n)) == JK_OK) {
			json_object_set_new(r, "node", node_json(&n));
			jk_node_free(&n);
		}
	} else if (strcmp(op, "mode") == 0) {
		enum jk_mode m;

		need(argc, 2, op);
		if ((e = jk_node_mode(c, argv[1], &m)) == JK_OK)
			json_object_set_new(r, "mode",
			    json_string(m == JK_MODE_EXCLUSIVE ? "EXCLUSIVE" : "NORMAL"));
	} else if (strcmp(op, "allowed") == 0) {
		char **names;
		size_t n;
		bool all;

		need(argc, 3, op);
		if ((e = jk_job_allowed_nodes(c, argv[1], argv[2], &all, &names, &n, NULL)) == JK_OK) {
			json_object_set_new(r, "all", json_boolean(all));
			json_object_set_new(r, "names", strv_json(names, n));
			strv_free(names, n);
		}
	} else if (strcmp(op, "trigger") == 0) {
		struct jk_kv kv[32] = { { NULL, NULL } };
		char *copy[32];
		size_t n = 0;
		long id;
		bool existing;

		if (argc < 2 || argc - 2 > 32)
			usage();
		for (i = 2; i < (size_t)argc; i++, n++) {
			char *eq;

			if (!(copy[n] = strdup(argv[i])) || !(eq = strchr(copy[n], '=')))
				usage();
			*eq = '\0';
			kv[n].name = copy[n];
			kv[n].value = eq + 1;
		}
		if ((e = jk_build_trigger(c, argv[1], kv, n, &id, &existing)) == JK_OK) {
			json_object_set_new(r, "queue_id", json_integer(id));
			json_object_set_new(r, "existing", json_boolean(existing));
		}
		for (i = 0; i < n; i++)
			free(copy[i]);
	} else if (strcmp(op, "queue") == 0 || strcmp(op, "wait-queue") == 0) {
		struct jk_queue_item q;
		bool wait = op[0] == 'w';
		double end;
		int polls = 0;

		need(argc, wait ? 3 : 2, op);
		end = now() + (wait ? atof(argv[2]) : 0);
		for (;;) {
			polls++;
			if ((e = jk_queue_item_get(c, atol(argv[1]), &q)) != JK_OK)
				break;
			if (!wait || q.state != JK_QUEUE_WAITING || now() > end) {
				json_object_set_new(r, "item", queue_json(&q));
				jk_queue_item_free(&q);
				break;
			}
			jk_queue_item_free(&q);
			usleep(50 * 1000);
		}
		json_object_set_new(r, "polls", json_integer(polls));
	} else if (strcmp(op, "cancel") == 0) {
		need(argc, 2, op);
		e = jk_queue_cancel(c, atol(argv[1]));
	} else if (strcmp(op, "build") == 0 || strcmp(op, "wait-build") == 0) {
		struct jk_build b;
		bool wait = op[0] == 'w';
		json_t *seen = json_array();
		double end;

		need(argc, wait ? 4 : 3, op);
		end = now() + (wait ? atof(argv[3]) : 0);
		for (;;) {
			if ((e = jk_build_get(c, argv[1], atoi(argv[2]), &b)) != JK_OK)
				break;
			/* The states seen while waiting: "running", "finished". */
			if (json_array_size(seen) == 0 || strcmp(json_string_value(json_array_get(seen,
			    json_array_size(seen) - 1)), b.building ? "running" : "finished") != 0)
				json_array_append_new(seen, json_string(b.building ? "running" : "finished"));
			if (!wait || !b.building || now() > end) {
				json_object_set_new(r, "build", build_json(&b));
				jk_build_free(&b);
				break;
			}
			jk_build_free(&b);
			usleep(50 * 1000);
		}
		json_object_set_new(r, "seen", seen);
	} else if (strcmp(op, "stop") == 0) {
		need(argc, 3, op);
		e = jk_build_stop(c, argv[1], atoi(argv[2]));
	} else if (strcmp(op, "describe") == 0) {
		need(argc, 4, op);
		e = jk_build_set_description(c, argv[1], atoi(argv[2]), argv[3]);
	} else if (strcmp(op, "offline") == 0) {
		need(argc, 3, op);
		e = jk_node_set_offline(c, argv[1], true, argv[2]);
	} else if (strcmp(op, "online") == 0) {
		need(argc, 2, op);
		e = jk_node_set_offline(c, argv[1], false, NULL);
	} else if (strcmp(op, "pause") == 0) {
		char line[64];

		need(argc, 1, op);
		e = fgets(line, sizeof(line), stdin) ? JK_OK : JK_EPROTO;
	} else {
		fprintf(stderr, "it_jenkins: unknown operation '%s'\n", op);
		exit(64);
	}
	return e;
}

int
main(int argc, char **argv)
{
	struct jk_opts o = { .tls_verify = true, .connect_timeout_ms = 5000, .timeout_ms = 10000 };
	struct jk_client *c;
	int ch, i, start, failed = 0;

	while ((ch = getopt(argc, argv, "+u:t:p:T:c:")) != -1) {
		switch (ch) {
		case 'u': o.user = optarg; break;
		case 't': o.token = optarg; break;
		case 'p': o.password = optarg; break;
		case 'T': o.timeout_ms = atol(optarg); break;
		case 'c': o.connect_timeout_ms = atol(optarg); break;
		default: usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 2)
		usage();
	o.url = argv[0];
	secrets[0] = o.token;
	secrets[1] = o.password;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!(c = jk_client_new(&o))) {
		fprintf(stderr, "it_jenkins: jk_client_new failed\n");
		return 70;
	}
	for (start = 1; start < argc; start = i + 1) {
		json_t *r = json_object();
		double t0 = now();
		enum jk_err e;
		int k;

		for (i = start; i < argc && strcmp(argv[i], "--") != 0; i++)
			;
		if (i == start)
			usage();
		argv[i < argc ? i : argc] = NULL;
		e = run(c, i - start, argv + start, r);
		json_object_set_new(r, "op", json_string(argv[start]));
		json_object_set_new(r, "ok", json_boolean(e == JK_OK));
		json_object_set_new(r, "status", json_integer(jk_client_status(c)));
		json_object_set_new(r, "session", json_string(jk_client_session(c)));
		json_object_set_new(r, "elapsed", json_real(now() - t0));
		if (e != JK_OK) {
			failed = 1;
			json_object_set_new(r, "err", json_string(jk_strerror(e)));
			json_object_set_new(r, "message", json_string(jk_client_error(c)));
			for (k = 0; k < 2; k++)
				if (secrets[k] && *secrets[k] && strstr(jk_client_error(c), secrets[k]))
					leaked = 1;
		} else if (*jk_client_error(c)) {
			/* Success must leave no stale message behind. */
			json_object_set_new(r, "stale_message", json_string(jk_client_error(c)));
			failed = 1;
		}
		out(r);
	}
	jk_client_free(c);
	curl_global_cleanup();
	if (leaked) {
		fprintf(stderr, "it_jenkins: an error message contains the token or password\n");
		return 3;
	}
	return failed;
}
