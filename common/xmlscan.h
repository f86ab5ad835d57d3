/*
 * xmlscan: just enough XML to read a Jenkins config.xml, which is where
 * Jenkins keeps what it does not export as JSON (a node's mode, a Node
 * parameter's allowedSlaves). Used by jkmodel.c.
 *
 * Understood: elements, attributes (skipped), character data with the
 * predefined and numeric entities, CDATA, comments and processing
 * instructions. A DOCTYPE is refused: Jenkins never writes one, and entity
 * definitions are not worth supporting. The result is a small tree of
 * elements, each with its decoded direct text.
 */
#ifndef JGA_XMLSCAN_H
#define JGA_XMLSCAN_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

struct xml_el {
	char          *name;
	struct buf     text;	/* direct character data, decoded; CDATA as is */
	struct xml_el *parent, *child, *last, *next;
};

/* Parse a whole document into *root; -1 with err (*root NULL) if malformed. */
int            xml_parse(const char *s, struct xml_el **root, char *err, size_t errlen);
/* Free a tree (iteratively: a deep one cannot exhaust the stack). */
void           xml_free(struct xml_el *root);

/* The name is simple, or a qualified class name ending in ".simple". */
bool           xml_is(const struct xml_el *e, const char *simple);
/* The first child named name, or NULL. */
struct xml_el *xml_child(const struct xml_el *e, const char *name);
/* The text without surrounding white space, as (pointer, *n). */
const char    *xml_trimmed(const struct xml_el *e, size_t *n);
/* The trimmed text is s. */
bool           xml_text_is(const struct xml_el *e, const char *s);
/* Depth-first successor of e below root (NULL at the end). */
const struct xml_el *xml_next(const struct xml_el *root, const struct xml_el *e);

#endif
