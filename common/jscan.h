/*
 * jscan: step through a large JSON document's outer object and arrays by
 * hand, and hand jansson one value at a time, so that the document never
 * becomes one tree: as one tree, a master's job list takes several times
 * its text's size in jansson values, faulted in page by page. Value by
 * value, in a jarena (jarena.h) dropped after each, the same parse touches
 * a few pages over and over.
 *
 * jansson parses every value and member name; jscan only steps over the
 * whitespace and punctuation between them, and says where it stopped.
 */
#ifndef JGA_JSCAN_H
#define JGA_JSCAN_H

#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

struct jscan {
	const char *s;
	size_t      len, pos;
	bool        first;     /* no member or element read yet from the current container */
};

void    jscan_init(struct jscan *sc, const char *s, size_t len);
/* Skip whitespace; if the next character is ch, step over it and say so. */
bool    jscan_take(struct jscan *sc, char ch);
/* Nothing but whitespace is left. */
bool    jscan_done(struct jscan *sc);
/* The value at the scanner, parsed by jansson; NULL with err set. */
json_t *jscan_value(struct jscan *sc, char *err, size_t errlen);
/* err = "malformed JSON: expected WHAT at byte N". */
void    jscan_expected(const struct jscan *sc, const char *what, char *err, size_t errlen);

/*
 * Containers. jscan_object / jscan_array step into one ('{' or '['; false
 * with err if something else is there). Then jscan_member gives each
 * member's name (truncated to namelen) with the scanner at its value, and
 * jscan_element puts the scanner at each element: 1 for one more, 0 after
 * the closing bracket, -1 with err. The caller reads each value (with
 * jscan_value) before asking for the next. Not for nested containers:
 * jansson reads those whole.
 */
bool    jscan_object(struct jscan *sc, char *err, size_t errlen);
bool    jscan_array(struct jscan *sc, char *err, size_t errlen);
int     jscan_member(struct jscan *sc, char *name, size_t namelen, char *err, size_t errlen);
int     jscan_element(struct jscan *sc, char *err, size_t errlen);

#endif
