/* libFuzzer: a build:* job argument (common/params.c). */
#include <stddef.h>
#include <stdint.h>
#include "params.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct params p;
	char err[512];

	if (params_parse((const char *)data, size, &p, err, sizeof(err)) == 0)
		params_free(&p);
	return 0;
}
