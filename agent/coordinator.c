/* coordinator: the coordinator role. Filled by the coordinator issue. */
#include "config.h"
#include "log.h"
#include "roles.h"

int
coordinator_main(struct config *cfg)
{
	log_errorx("coordinator %s: not implemented yet", cfg->coordinator_name);
	return 1;
}
