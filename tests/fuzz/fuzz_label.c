/* libFuzzer: a Jenkins label expression (common/label.c), parsed and evaluated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "label.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const labels[] = { "linux", "x86", "a-b", "node1", "" };
	const char *const *atoms;
	struct label_expr *e;
	char *s = malloc(size + 1), err[512];

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if ((e = label_parse(s, err, sizeof(err)))) {
		(void)label_eval(e, labels, 5);
		(void)label_atoms(e, &atoms);
		label_free(e);
	}
	free(s);
	return 0;
}
