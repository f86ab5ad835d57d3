/*
 * label: Jenkins label expressions (the grammar of Jenkins core's
 * LabelExpressionLexer/Parser.g4), parsed once and evaluated against a
 * node's label set.
 *
 *   expr    := iff EOF
 *   iff     := impl ( '<->' impl )*        left-associative
 *   impl    := or ( '->' or )?              a->b->c is a syntax error
 *   or      := and ( '||' and )*
 *   and     := unary ( '&&' unary )*
 *   unary   := primary | '!' primary        !!a is a syntax error
 *   primary := '(' iff ')' | ATOM | STRING
 *
 * ATOM: one or more characters other than & | ! < > ( ) space tab " ',
 * where '-' is allowed unless directly followed by '>'. STRING: "..." with
 * backslash escapes \b \t \n \f \r \" \' \\ ; it is one atom.
 * Atoms match case-sensitively. A node's own name is one of its labels.
 */
#ifndef JGA_LABEL_H
#define JGA_LABEL_H

#include <stdbool.h>
#include <stddef.h>

struct label_expr;

/*
 * Parse s. On a syntax error returns NULL and writes a message naming the
 * problem and its position into err ("syntax error at 5: expected atom").
 * An empty or all-blank string is an error too (callers treat "no label"
 * before calling this).
 */
struct label_expr *label_parse(const char *s, char *err, size_t errlen);
void               label_free(struct label_expr *e);

/* True when e holds on the label set (n labels). */
bool label_eval(const struct label_expr *e, const char *const *labels, size_t n);
/* The same, given whether each atom (in label_atoms order) is one of the labels. */
bool label_eval_atoms(const struct label_expr *e, const bool *atom_true);

/*
 * The distinct atoms the expression mentions, in order of first appearance
 * (quoted strings unquoted). The array and strings belong to e.
 */
size_t label_atoms(const struct label_expr *e, const char *const **atoms);

#endif
