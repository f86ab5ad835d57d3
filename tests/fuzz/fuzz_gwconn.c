/* libFuzzer: Gearman packets as gearmand sends them (common/gwconn.c decoder). */
#include <stddef.h>
#include <stdint.h>
#include "gwconn.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct gw_packet pk;
	long r;

	/* Decode packet after packet, as the read loop does. */
	while (size > 0 && (r = gw_decode(p, size, &pk, 1 << 20)) > 0) {
		struct gw_job job;
		if (gw_job_from_packet(&pk, &job) == 0)
			gw_job_free(&job);
		p += r;
		size -= (size_t)r;
	}
	return 0;
}
