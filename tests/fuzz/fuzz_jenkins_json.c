/*
 * libFuzzer: the Jenkins JSON response parsers (common/jkmodel.c); the first
 * byte picks one. The daemon's JSON arena is installed, as in the daemon, so
 * jkmodel_parse_jobs runs on it (ASan poisons what the arena dropped).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "jarena.h"
#include "jenkins.h"
#include "jkmodel.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int installed;
	char *s, err[512];

	if (!installed++)
		jarena_install();
	if (size < 1)
		return 0;
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 7) {
	case 0: { struct jk_job_list l = { 0 }; if (jkmodel_parse_jobs(s, &l, err, sizeof(err)) == JK_OK) jk_job_list_free(&l); break; }
	case 1: { struct jk_node_list l = { 0 }; if (jkmodel_parse_nodes(s, &l, err, sizeof(err)) == JK_OK) jk_node_list_free(&l); break; }
	case 2: { struct jk_node n = { 0 }; if (jkmodel_parse_node(s, &n, err, sizeof(err)) == JK_OK) jk_node_free(&n); break; }
	case 3: { struct jk_queue_item q = { 0 }; if (jkmodel_parse_queue_item(s, &q, err, sizeof(err)) == JK_OK) jk_queue_item_free(&q); break; }
	case 4: { struct jk_build b = { 0 }; if (jkmodel_parse_build(s, &b, err, sizeof(err)) == JK_OK) jk_build_free(&b); break; }
	case 5: { long q; (void)jkmodel_find_queue(s, "job/a/", "GEARMAN_UNIQUE", "u1", &q, err, sizeof(err)); break; }
	case 6: { int n, k; bool o; (void)jkmodel_find_build(s, "GEARMAN_UNIQUE", "u1", 7, 1000, &n, &k, &o,
	    err, sizeof(err)); break; }
	}
	free(s);
	return 0;
}
