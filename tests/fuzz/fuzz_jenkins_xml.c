/* libFuzzer: the Jenkins config.xml readers (common/jkmodel.c, xmlscan.c); the first byte picks one. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "jenkins.h"
#include "jkmodel.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, err[512], **names = NULL;
	enum jk_mode mode;
	bool all;
	size_t n = 0;

	if (size < 1)
		return 0;
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (data[0] & 1)
		(void)jkmodel_parse_node_mode(s, &mode, err, sizeof(err));
	else if (jkmodel_parse_allowed_nodes(s, "NODE", &all, &names, &n, err, sizeof(err)) == JK_OK)
		strv_free(names, n);
	free(s);
	return 0;
}
