/* libFuzzer: a project_map:$host request against a small fixed map (agent/coordinator/projmap.c). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "coordinator/projmap.h"

static struct projmap *
fixed_map(void)
{
	static struct jk_param_def node = { "NODE", "NodeParameterDefinition", JK_PARAM_NODE };
	static struct jk_job jobs[] = {
		{ "f/a", "a", "", "linux && !gpu", true, false, true, &node, 1 },
		{ "b", "b", "", NULL, true, false, true, &node, 1 },
	};
	static struct jk_job_list jl = { jobs, 2 };
	static char *l1[] = { "linux", "n1" }, *l2[] = { "gpu", "n2" };
	static struct jk_node nodes[] = {
		{ "n1", l1, 2, 2, 2, false, false, "" },
		{ "n2", l2, 2, 1, 1, false, false, "" },
	};
	static struct jk_node_list nl = { nodes, 2 };
	static enum jk_mode modes[] = { JK_MODE_NORMAL, JK_MODE_EXCLUSIVE };
	static bool known[] = { true, true };
	struct pm_input in = { "m", FUNCTION_NAMES_SHORT, &jl, NULL, &nl, modes, known };

	return projmap_build(&in);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct projmap *pm;
	char err[512], *out;

	if (!pm)
		pm = fixed_map();
	out = projmap_answer(pm, (const char *)data, size, 0, err, sizeof(err));
	free(out);
	return 0;
}
