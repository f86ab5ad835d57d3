/* node: the node agent role. Filled by the node-agent issue. */
#include "config.h"
#include "log.h"
#include "roles.h"

int
node_main(struct config *cfg)
{
	log_errorx("node %s: the node agent is not implemented yet", cfg->node_name);
	return 1;
}
