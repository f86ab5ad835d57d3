/*
 * libFuzzer: what gearmand sends a client (common/gclient.c's response
 * reader): packets decoded as gw_read decodes them, each given to
 * gclient_parse with the job's state (its handle once JOB_CREATED came),
 * until the job ends or a packet is refused, as gclient_next does.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "gclient.h"
#include "gwconn.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	char handle[GCLIENT_HANDLE_MAX], err[256];
	bool created = false;
	struct gw_packet pk;
	struct gclient_ev ev;
	volatile unsigned sum = 0;
	long r;

	while (size > 0 && (r = gw_decode(p, size, &pk, 1 << 20)) > 0) {
		int k = gclient_parse(&pk, created ? handle : NULL, &ev, handle, err, sizeof(err));
		size_t i;

		if (k < 0)
			break;
		if (k == 2)
			created = true;
		/* Every byte an event points at must be readable (ASan checks). */
		for (i = 0; k == 1 && i < ev.len; i++)
			sum += (unsigned char)ev.data[i];
		if (k == 1 && (ev.type == GCLIENT_EV_COMPLETE || ev.type == GCLIENT_EV_FAIL ||
		    ev.type == GCLIENT_EV_EXCEPTION))
			break;
		p += r;
		size -= (size_t)r;
	}
	(void)sum;
	return 0;
}
