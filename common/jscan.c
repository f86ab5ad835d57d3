/* jscan: see jscan.h. */
#include "jscan.h"

#include <stdio.h>
#include <string.h>

void
jscan_init(struct jscan *sc, const char *s, size_t len)
{
	sc->s = s;
	sc->len = s ? len : 0;
	sc->pos = 0;
	sc->first = true;
}

static void
skip_ws(struct jscan *sc)
{
	while (sc->pos < sc->len && (sc->s[sc->pos] == ' ' || sc->s[sc->pos] == '\t' ||
	    sc->s[sc->pos] == '\n' || sc->s[sc->pos] == '\r'))
		sc->pos++;
}

bool
jscan_take(struct jscan *sc, char ch)
{
	skip_ws(sc);
	if (sc->pos < sc->len && sc->s[sc->pos] == ch) {
		sc->pos++;
		return true;
	}
	return false;
}

bool
jscan_done(struct jscan *sc)
{
	skip_ws(sc);
	return sc->pos == sc->len;
}

void
jscan_expected(const struct jscan *sc, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "malformed JSON: expected %s at byte %zu", what, sc->pos);
}

json_t *
jscan_value(struct jscan *sc, char *err, size_t errlen)
{
	json_error_t je;
	json_t *v;

	skip_ws(sc);
	if (!(v = json_loadb(sc->s + sc->pos, sc->len - sc->pos,
	    JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je))) {
		snprintf(err, errlen, "malformed JSON: %s at byte %zu", je.text,
		    sc->pos + (size_t)(je.position > 0 ? je.position : 0));
		return NULL;
	}
	sc->pos += (size_t)je.position;
	return v;
}

static bool
open_container(struct jscan *sc, char ch, const char *what, char *err, size_t errlen)
{
	if (!jscan_take(sc, ch)) {
		jscan_expected(sc, what, err, errlen);
		return false;
	}
	sc->first = true;
	return true;
}

bool
jscan_object(struct jscan *sc, char *err, size_t errlen)
{
	return open_container(sc, '{', "an object", err, errlen);
}

bool
jscan_array(struct jscan *sc, char *err, size_t errlen)
{
	return open_container(sc, '[', "an array", err, errlen);
}

/* Past the previous entry: 1 if another follows, 0 at the closing bracket. */
static int
next_entry(struct jscan *sc, char close, const char *what, char *err, size_t errlen)
{
	bool first = sc->first;

	sc->first = false;
	if (jscan_take(sc, close))
		return 0;
	if (first || jscan_take(sc, ','))
		return 1;
	jscan_expected(sc, what, err, errlen);
	return -1;
}

int
jscan_member(struct jscan *sc, char *name, size_t namelen, char *err, size_t errlen)
{
	json_t *key;
	size_t at;
	int r;

	if ((r = next_entry(sc, '}', "',' or '}'", err, errlen)) <= 0)
		return r;
	skip_ws(sc);
	at = sc->pos;
	if (!(key = jscan_value(sc, err, errlen)))
		return -1;
	if (!json_is_string(key)) {
		json_decref(key);
		sc->pos = at;
		jscan_expected(sc, "a member name", err, errlen);
		return -1;
	}
	snprintf(name, namelen, "%s", json_string_value(key));
	json_decref(key);
	if (!jscan_take(sc, ':')) {
		jscan_expected(sc, "':'", err, errlen);
		return -1;
	}
	return 1;
}

int
jscan_element(struct jscan *sc, char *err, size_t errlen)
{
	return next_entry(sc, ']', "',' or ']'", err, errlen);
}
