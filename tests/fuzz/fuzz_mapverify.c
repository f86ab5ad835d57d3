/*
 * libFuzzer: the node agent's verifier of a project_map answer
 * (agent/node/nodemap.c nodemap_accept, common/sign.c sign_open), with
 * the daemon's JSON arena installed.
 *
 * The first byte picks what the rest is: even, the answer as it came off
 * the bus (envelope parsing, base64, the signature check); odd, the text
 * of a map, which is then signed with the trusted key so that the checks
 * after the signature (URL, nonce, issued_ms, the entries) are reached
 * too: no input could forge a signature.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "jarena.h"
#include "sign.h"
#include "node/node.h"

static struct sign_key *priv;
static struct nodemap_trust trust;

static void
setup(void)
{
	char dir[] = "/tmp/jga-fuzz-keys-XXXXXX", path[64], err[512];

	jarena_install();
	if (!mkdtemp(dir) || sign_keygen(dir, err, sizeof(err)) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/%s", dir, SIGN_PRIVATE_FILE);
	if (!(priv = sign_key_private(path, err, sizeof(err))))
		abort();
	unlink(path);
	snprintf(path, sizeof(path), "%s/%s", dir, SIGN_PUBLIC_FILE);
	if (nodemap_trust_open(&trust, path, "http://ci.example/", "n1", err, sizeof(err)) < 0)
		abort();
	unlink(path);
	rmdir(dir);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char err[512], *env = NULL;
	const char *answer;
	bool unchanged;
	struct nodemap *m;
	size_t len;

	if (!ready++)
		setup();
	if (size < 1)
		return 0;
	/* A request out, with a nonce the seeds know: the one a real request would carry is random. */
	memset(trust.nonce, '0', SIGN_NONCE_LEN);
	trust.nonce[SIGN_NONCE_LEN] = '\0';
	trust.last_issued_ms = 1000000;
	answer = (const char *)data + 1;
	len = size - 1;
	if (data[0] & 1) {
		char *text = strndup(answer, len);
		if (!text)
			return 0;
		/* Only valid UTF-8 can be carried in a JSON string: jansson refuses the rest (fatal). */
		json_t *probe = json_stringn(text, strlen(text));
		if (!probe) {
			free(text);
			return 0;
		}
		json_decref(probe);
		env = sign_wrap(priv, text, strlen(text));
		free(text);
		answer = env;
		len = strlen(env);
	}
	m = nodemap_accept(&trust, answer, len, &unchanged, err, sizeof(err));
	nodemap_free(m);
	free(env);
	return 0;
}
