/* libFuzzer: the argument of stop:$host / set_description:$host (agent/coordinator/buildref.c). */
#include <stddef.h>
#include <stdint.h>
#include "coordinator/buildref.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *name;
	char err[512];
	int number;
	json_t *r = buildref_parse((const char *)data, size, &name, &number, err, sizeof(err));

	json_decref(r);
	return 0;
}
