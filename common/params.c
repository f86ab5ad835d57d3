/* params: see params.h. jansson does the JSON and UTF-8 checking. */
#include "params.h"

#include "xalloc.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Significant digits of a number made text: a double's 17 survive the round trip. */
#define REAL_DIGITS 17

static int
name_ok(const char *s)
{
	size_t n = strlen(s), i;

	if (n == 0 || n > PARAMS_MAX_NAME)
		return 0;
	for (i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.'))
			return 0;
	}
	return 1;
}

/* val as the text of a parameter, or NULL with err for a value that cannot be one. */
static char *
param_text(const char *key, json_t *val, char *err, size_t errlen)
{
	if (!name_ok(key)) {
		snprintf(err, errlen, "parameter name \"%.64s\" is not allowed (use 1-%d of A-Z a-z 0-9 _ - .)",
		    key, PARAMS_MAX_NAME);
		return NULL;
	}
	if (json_is_string(val))
		return xstrdup(json_string_value(val));
	if (json_is_integer(val) || json_is_real(val) || json_is_boolean(val))
		return json_dumps(val, JSON_ENCODE_ANY | JSON_REAL_PRECISION(REAL_DIGITS));
	snprintf(err, errlen, "parameter \"%s\" must be a string, number or boolean, not %s", key,
	    json_is_null(val) ? "null" : json_is_array(val) ? "an array" : "an object");
	return NULL;
}

int
params_parse(const char *buf, size_t len, struct params *out, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *val;
	const char *key;
	char *text;

	memset(out, 0, sizeof(*out));
	if (len > PARAMS_MAX_BYTES) {
		snprintf(err, errlen, "argument is %zu bytes; the limit is %d", len, PARAMS_MAX_BYTES);
		return -1;
	}
	if (len == 0)
		return 0;
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		snprintf(err, errlen, "argument is not valid JSON: %s (at byte %d)", jerr.text, jerr.position);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "argument must be a JSON object of parameters, like {\"NAME\": \"value\"}");
		goto fail;
	}
	if (json_object_size(root) > PARAMS_MAX_COUNT) {
		snprintf(err, errlen, "%zu parameters; the limit is %d", json_object_size(root), PARAMS_MAX_COUNT);
		goto fail;
	}
	out->v = xcalloc(json_object_size(root) + 1, sizeof(*out->v));
	json_object_foreach(root, key, val) {
		if (!(text = param_text(key, val, err, errlen)))
			goto fail;
		out->v[out->n].name = xstrdup(key);
		out->v[out->n].value = text;
		out->n++;
	}
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	params_free(out);
	return -1;
}

void
params_free(struct params *p)
{
	size_t i;

	for (i = 0; i < p->n; i++) {
		free(p->v[i].name);
		free(p->v[i].value);
	}
	free(p->v);
	memset(p, 0, sizeof(*p));
}

const char *
params_get(const struct params *p, const char *name)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		if (strcmp(p->v[i].name, name) == 0)
			return p->v[i].value;
	return NULL;
}
