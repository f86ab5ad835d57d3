/*
 * libFuzzer: the node agent's reader of the coordinator's map
 * (agent/node/nodemap.c), with the daemon's JSON arena installed as in the
 * daemon (ASan poisons what the arena dropped).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "jarena.h"
#include "node/node.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int installed;
	char err[512];
	struct nodemap *m;

	if (!installed++)
		jarena_install();
	m = nodemap_parse((const char *)data, size, "n1", err, sizeof(err));
	nodemap_free(m);
	return 0;
}
