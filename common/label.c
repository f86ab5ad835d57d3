/*
 * label: see label.h.
 *
 * A hand-written lexer feeds a recursive-descent parser that follows the
 * grammar rule for rule. Instead of building a tree, the parser emits a
 * postfix program (atoms push a truth value, operators pop their operands
 * and push the result). That keeps label_eval a flat loop: no recursion,
 * no allocation and no way to fail, and the expression stays read-only so
 * several threads may evaluate it at once. The stack the program needs is
 * bounded by the nesting limit, so a fixed array on the C stack suffices.
 *
 * Hostile input is expected (label expressions come from Jenkins job
 * configuration), so the input length and the parenthesis depth are
 * limited: the depth bounds both the parser's recursion and the evaluation
 * stack. Error positions count characters (UTF-8 code points), 1-based.
 */
#include "label.h"

#include "xalloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL_MAX_LEN   65536   /* bytes of input */
#define LABEL_MAX_DEPTH 256     /* nested parentheses */

/*
 * At each parenthesis level at most four operands wait on the stack (the
 * left side of <->, ->, || and &&), plus the atom being pushed.
 */
#define EVAL_STACK_MAX  (4 * (LABEL_MAX_DEPTH + 1) + 1)

enum op { OP_ATOM, OP_NOT, OP_AND, OP_OR, OP_IMPLIES, OP_IFF };

struct insn {
	enum op  op;
	uint32_t atom;          /* OP_ATOM: index into atoms */
};

struct label_expr {
	struct insn *code;
	size_t       ncode, capcode;
	char       **atoms;     /* distinct, in order of first appearance */
	size_t       natoms, capatoms;
};

enum tok { T_END, T_AND, T_OR, T_NOT, T_IMPLIES, T_IFF, T_LPAREN, T_RPAREN,
    T_ATOM, T_STRING };

struct token {
	enum tok type;
	size_t   off, len;      /* byte offset and length in the input */
};

struct parser {
	const char        *s;   /* input, NUL-terminated */
	size_t             pos; /* lexer position (byte offset) */
	struct token       tok; /* lookahead */
	struct label_expr *e;
	int                depth;       /* open parentheses */
	size_t             sp;          /* stack depth of the emitted program */
	uint32_t          *hash;        /* atom index + 1 per slot, 0 = empty */
	size_t             hashcap;     /* power of two */
	char              *err;
	size_t             errlen;
};

/* ---- errors ---- */

/*
 * 1-based character position of byte offset off: count UTF-8 lead bytes.
 * A stray continuation byte after ASCII counts as a character of its own,
 * so invalid UTF-8 cannot make two positions look the same.
 */
static size_t
charpos(const char *s, size_t off)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, n = 1;

	for (i = 0; i < off; i++)
		if ((u[i] & 0xC0) != 0x80 || i == 0 || u[i - 1] < 0x80)
			n++;
	return n;
}

static int fail(struct parser *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* Record "syntax error at N: ..." for byte offset off; always returns -1. */
static int
fail(struct parser *p, size_t off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!p->err || !p->errlen)
		return -1;
	n = snprintf(p->err, p->errlen, "syntax error at %zu: ",
	    charpos(p->s, off));
	if (n < 0 || (size_t)n >= p->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - n, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Copy at most 32 bytes of s[0..len) into buf for a message: control bytes
 * become \xNN, a cut never splits a UTF-8 sequence and is marked "...".
 */
static void
excerpt(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t i, n = 0, cut = len;
	unsigned char c;

	if (cut > 32) {
		cut = 32;
		while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
	}
	for (i = 0; i < cut && n + 5 < buflen; i++) {
		c = (unsigned char)s[i];
		if (c < 0x20 || c == 0x7f)
			n += snprintf(buf + n, buflen - n, "\\x%02x", c);
		else
			buf[n++] = (char)c;
	}
	if (cut < len && n + 4 < buflen) {
		memcpy(buf + n, "...", 3);
		n += 3;
	}
	buf[n] = '\0';
}

/* What a token looks like in a message: "&&", atom "foo", end of input. */
static const char *
describe(const struct parser *p, const struct token *t, char *buf, size_t len)
{
	char ex[160];

	switch (t->type) {
	case T_END:     return "end of input";
	case T_AND:     return "\"&&\"";
	case T_OR:      return "\"||\"";
	case T_NOT:     return "\"!\"";
	case T_IMPLIES: return "\"->\"";
	case T_IFF:     return "\"<->\"";
	case T_LPAREN:  return "\"(\"";
	case T_RPAREN:  return "\")\"";
	case T_ATOM:
		excerpt(p->s + t->off, t->len, ex, sizeof(ex));
		snprintf(buf, len, "atom \"%s\"", ex);
		return buf;
	case T_STRING:
		/* The raw token, quotes and escapes included, as it was typed. */
		excerpt(p->s + t->off, t->len, ex, sizeof(ex));
		snprintf(buf, len, "string %s", ex);
		return buf;
	}
	return "?";
}

/* ---- lexer ---- */

/* Whether s[i] continues (or starts) an unquoted atom. */
static int
atom_char(const char *s, size_t i)
{
	switch (s[i]) {
	case '\0': case '&': case '|': case '!': case '<': case '>':
	case '(': case ')': case ' ': case '\t': case '"': case '\'':
		return 0;
	case '-':
		/* "a->b" is an implication, not the atom "a-" then ">b". */
		return s[i + 1] != '>';
	}
	return 1;       /* anything else, non-ASCII UTF-8 bytes included */
}

/* Scan a "..." token starting at p->pos; checks escapes, does not unquote. */
static int
lex_string(struct parser *p)
{
	const char *s = p->s;
	size_t i = p->pos + 1;

	for (;;) {
		switch (s[i]) {
		case '\0':
			return fail(p, p->pos, "unterminated string");
		case '"':
			p->tok.type = T_STRING;
			p->tok.len = i + 1 - p->pos;
			p->pos = i + 1;
			return 0;
		case '\n':
		case '\r':
			/* Jenkins' lexer does not allow raw line breaks either. */
			return fail(p, i, "line break inside string (write \\n)");
		case '\\':
			if (s[i + 1] == '\0')
				return fail(p, p->pos, "unterminated string");
			if (!strchr("btnfr\"'\\", s[i + 1])) {
				unsigned char c = (unsigned char)s[i + 1];

				if (c > 0x20 && c < 0x7f)
					return fail(p, i,
					    "unknown escape \"\\%c\" in string", c);
				return fail(p, i, "unknown escape in string");
			}
			i += 2;
			break;
		default:
			i++;
		}
	}
}

/* Read the next token into p->tok. */
static int
advance(struct parser *p)
{
	const char *s = p->s;
	size_t i;

	while (s[p->pos] == ' ' || s[p->pos] == '\t')
		p->pos++;
	p->tok.off = p->pos;
	p->tok.len = 1;

	switch (s[p->pos]) {
	case '\0':
		p->tok.type = T_END;
		p->tok.len = 0;
		return 0;
	case '&':
		if (s[p->pos + 1] != '&')
			return fail(p, p->pos, "\"&\" is not an operator; use \"&&\"");
		p->tok.type = T_AND;
		p->tok.len = 2;
		break;
	case '|':
		if (s[p->pos + 1] != '|')
			return fail(p, p->pos, "\"|\" is not an operator; use \"||\"");
		p->tok.type = T_OR;
		p->tok.len = 2;
		break;
	case '!':
		p->tok.type = T_NOT;
		break;
	case '(':
		p->tok.type = T_LPAREN;
		break;
	case ')':
		p->tok.type = T_RPAREN;
		break;
	case '<':
		if (s[p->pos + 1] != '-' || s[p->pos + 2] != '>')
			return fail(p, p->pos, "\"<\" is not an operator; use \"<->\"");
		p->tok.type = T_IFF;
		p->tok.len = 3;
		break;
	case '>':
		return fail(p, p->pos, "unexpected \">\"");
	case '\'':
		return fail(p, p->pos,
		    "unexpected \"'\"; quote with double quotes");
	case '"':
		return lex_string(p);
	default:
		if (s[p->pos] == '-' && s[p->pos + 1] == '>') {
			p->tok.type = T_IMPLIES;
			p->tok.len = 2;
			break;
		}
		/* Not an operator and not one of the rejected characters. */
		for (i = p->pos; atom_char(s, i); i++)
			;
		p->tok.type = T_ATOM;
		p->tok.len = i - p->pos;
		break;
	}
	p->pos += p->tok.len;
	return 0;
}

/* ---- program and atoms ---- */

static int
emit(struct parser *p, enum op op, uint32_t atom)
{
	struct label_expr *e = p->e;
	struct insn *n;
	size_t cap;

	if (e->ncode == e->capcode) {
		cap = e->capcode ? e->capcode * 2 : 16;
		n = xreallocarray(e->code, cap, sizeof(*n));
		e->code = n;
		e->capcode = cap;
	}
	e->code[e->ncode].op = op;
	e->code[e->ncode].atom = atom;
	e->ncode++;

	/* Track the evaluation stack; the limit can only trip if the bound
	 * above is wrong, but label_eval relies on it. */
	if (op == OP_ATOM) {
		if (++p->sp > EVAL_STACK_MAX)
			return fail(p, p->tok.off, "expression too complex");
	} else if (op != OP_NOT)
		p->sp--;
	return 0;
}

static uint32_t
hash_str(const char *s)
{
	uint32_t h = 2166136261u;       /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Double the atom hash table (or create it) and reinsert every atom. */
static void
rehash(struct parser *p)
{
	size_t cap = p->hashcap ? p->hashcap * 2 : 64, i, h;
	uint32_t *t;

	t = xcalloc(cap, sizeof(*t));
	for (i = 0; i < p->e->natoms; i++) {
		h = hash_str(p->e->atoms[i]) & (cap - 1);
		while (t[h])
			h = (h + 1) & (cap - 1);
		t[h] = (uint32_t)i + 1;
	}
	free(p->hash);
	p->hash = t;
	p->hashcap = cap;
}

/*
 * Find or add the atom name, which this function takes ownership of, and
 * emit the instruction that pushes it. A hash keeps 30000 distinct atoms
 * in a hostile 64 KiB expression from costing a quadratic search.
 */
static int
emit_atom(struct parser *p, char *name)
{
	struct label_expr *e = p->e;
	size_t h, cap;
	uint32_t idx;
	char **n;

	if ((e->natoms + 1) * 2 > p->hashcap)
		rehash(p);
	h = hash_str(name) & (p->hashcap - 1);
	while ((idx = p->hash[h]) != 0) {
		if (strcmp(e->atoms[idx - 1], name) == 0) {
			free(name);
			return emit(p, OP_ATOM, idx - 1);
		}
		h = (h + 1) & (p->hashcap - 1);
	}
	if (e->natoms == e->capatoms) {
		cap = e->capatoms ? e->capatoms * 2 : 8;
		n = xreallocarray(e->atoms, cap, sizeof(*n));
		e->atoms = n;
		e->capatoms = cap;
	}
	e->atoms[e->natoms++] = name;
	p->hash[h] = (uint32_t)e->natoms;
	return emit(p, OP_ATOM, (uint32_t)e->natoms - 1);
}

/* The atom a T_ATOM or T_STRING token stands for, in a new string. */
static char *
token_atom(const struct parser *p)
{
	const char *s = p->s + p->tok.off, *end = s + p->tok.len;
	char *out, *o;

	if (p->tok.type == T_ATOM)
		return xstrndup(s, p->tok.len);

	/* Drop the quotes; the lexer already vetted every escape. */
	s++;
	end--;
	out = xmalloc((size_t)(end - s) + 1);
	for (o = out; s < end; s++) {
		if (*s != '\\') {
			*o++ = *s;
			continue;
		}
		switch (*++s) {
		case 'b': *o++ = '\b'; break;
		case 't': *o++ = '\t'; break;
		case 'n': *o++ = '\n'; break;
		case 'f': *o++ = '\f'; break;
		case 'r': *o++ = '\r'; break;
		default:  *o++ = *s;    break;  /* \" \' \\ */
		}
	}
	*o = '\0';
	return out;
}

/* ---- parser: one function per grammar rule ---- */

static int parse_iff(struct parser *);

/* primary := '(' iff ')' | ATOM | STRING */
static int
parse_primary(struct parser *p, int after_not)
{
	char buf[200];
	size_t open;
	char *name;

	switch (p->tok.type) {
	case T_LPAREN:
		open = p->tok.off;
		if (p->depth >= LABEL_MAX_DEPTH)
			return fail(p, open,
			    "expression nested too deeply (more than %d levels)",
			    LABEL_MAX_DEPTH);
		p->depth++;
		if (advance(p) == -1 || parse_iff(p) == -1)
			return -1;
		if (p->tok.type == T_END)
			return fail(p, p->tok.off,
			    "missing \")\" for \"(\" at %zu",
			    charpos(p->s, open));
		if (p->tok.type != T_RPAREN)
			return fail(p, p->tok.off,
			    "expected an operator or \")\" to close \"(\" at %zu"
			    " but found %s", charpos(p->s, open),
			    describe(p, &p->tok, buf, sizeof(buf)));
		p->depth--;
		return advance(p);
	case T_ATOM:
	case T_STRING:
		name = token_atom(p);
		if (emit_atom(p, name) == -1)
			return -1;
		return advance(p);
	default:
		return fail(p, p->tok.off, "expected an atom%s but found %s",
		    after_not ? " or \"(\" after \"!\"" : ", \"(\" or \"!\"",
		    describe(p, &p->tok, buf, sizeof(buf)));
	}
}

/* unary := primary | '!' primary; "!!a" is not in the grammar. */
static int
parse_unary(struct parser *p)
{
	if (p->tok.type != T_NOT)
		return parse_primary(p, 0);
	if (advance(p) == -1)
		return -1;
	if (p->tok.type == T_NOT)
		return fail(p, p->tok.off,
		    "\"!!\" is not allowed; write \"!(!...)\"");
	if (parse_primary(p, 1) == -1)
		return -1;
	return emit(p, OP_NOT, 0);
}

/* and := unary ('&&' unary)* */
static int
parse_and(struct parser *p)
{
	if (parse_unary(p) == -1)
		return -1;
	while (p->tok.type == T_AND)
		if (advance(p) == -1 || parse_unary(p) == -1 ||
		    emit(p, OP_AND, 0) == -1)
			return -1;
	return 0;
}

/* or := and ('||' and)* */
static int
parse_or(struct parser *p)
{
	if (parse_and(p) == -1)
		return -1;
	while (p->tok.type == T_OR)
		if (advance(p) == -1 || parse_and(p) == -1 ||
		    emit(p, OP_OR, 0) == -1)
			return -1;
	return 0;
}

/*
 * impl := or ('->' or)?
 * Jenkins refuses a->b->c because readers disagree on its grouping.
 */
static int
parse_impl(struct parser *p)
{
	if (parse_or(p) == -1)
		return -1;
	if (p->tok.type != T_IMPLIES)
		return 0;
	if (advance(p) == -1 || parse_or(p) == -1 ||
	    emit(p, OP_IMPLIES, 0) == -1)
		return -1;
	if (p->tok.type == T_IMPLIES)
		return fail(p, p->tok.off,
		    "\"->\" cannot be chained; use parentheses");
	return 0;
}

/* iff := impl ('<->' impl)*, left-associative. */
static int
parse_iff(struct parser *p)
{
	if (parse_impl(p) == -1)
		return -1;
	while (p->tok.type == T_IFF)
		if (advance(p) == -1 || parse_impl(p) == -1 ||
		    emit(p, OP_IFF, 0) == -1)
			return -1;
	return 0;
}

/* expr := iff EOF */
static int
parse_expr(struct parser *p)
{
	char buf[200];

	if (advance(p) == -1)
		return -1;
	if (p->tok.type == T_END)
		return fail(p, 0, "empty expression");
	if (parse_iff(p) == -1)
		return -1;
	switch (p->tok.type) {
	case T_END:
		return 0;
	case T_RPAREN:
		return fail(p, p->tok.off, "unmatched \")\"");
	default:
		/* "foo bar" or "foo(bar)": Jenkins has no implicit "&&". */
		return fail(p, p->tok.off, "expected an operator but found %s",
		    describe(p, &p->tok, buf, sizeof(buf)));
	}
}

/* ---- public ---- */

struct label_expr *
label_parse(const char *s, char *err, size_t errlen)
{
	struct parser p;
	struct label_expr *e;

	if (err && errlen)
		err[0] = '\0';
	memset(&p, 0, sizeof(p));
	p.err = err;
	p.errlen = errlen;
	if (!s)
		s = "";
	p.s = s;
	if (strnlen(s, LABEL_MAX_LEN + 1) > LABEL_MAX_LEN) {
		if (err && errlen)
			snprintf(err, errlen,
			    "expression too long (more than %d bytes)",
			    LABEL_MAX_LEN);
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	p.e = e;
	if (parse_expr(&p) == -1) {
		label_free(e);
		e = NULL;
	}
	free(p.hash);
	return e;
}

void
label_free(struct label_expr *e)
{
	size_t i;

	if (!e)
		return;
	for (i = 0; i < e->natoms; i++)
		free(e->atoms[i]);
	free(e->atoms);
	free(e->code);
	free(e);
}

/*
 * Exact, case-sensitive byte compare. The empty atom (from "") matches
 * nothing: Jenkins never gives a node an empty label.
 */
static bool
has_label(const char *atom, const char *const *labels, size_t n)
{
	size_t i;

	if (atom[0] == '\0')
		return false;
	for (i = 0; i < n; i++)
		if (labels[i] && strcmp(labels[i], atom) == 0)
			return true;
	return false;
}

bool
label_eval(const struct label_expr *e, const char *const *labels, size_t n)
{
	bool small[64] = { false }, *t = small, r;
	size_t i;

	if (!e || e->ncode == 0)
		return false;
	if (e->natoms > sizeof(small) / sizeof(small[0]))
		t = xcalloc(e->natoms, sizeof(bool));
	for (i = 0; i < e->natoms; i++)
		t[i] = has_label(e->atoms[i], labels, n);
	r = label_eval_atoms(e, t);
	if (t != small)
		free(t);
	return r;
}

bool
label_eval_atoms(const struct label_expr *e, const bool *atom_true)
{
	bool st[EVAL_STACK_MAX];
	size_t i, sp = 0;

	if (!e || e->ncode == 0)
		return false;
	for (i = 0; i < e->ncode; i++) {
		switch (e->code[i].op) {
		case OP_ATOM:
			st[sp++] = atom_true[e->code[i].atom];
			break;
		case OP_NOT:
			st[sp - 1] = !st[sp - 1];
			break;
		case OP_AND:
			sp--;
			st[sp - 1] = st[sp - 1] && st[sp];
			break;
		case OP_OR:
			sp--;
			st[sp - 1] = st[sp - 1] || st[sp];
			break;
		case OP_IMPLIES:
			sp--;
			st[sp - 1] = !st[sp - 1] || st[sp];
			break;
		case OP_IFF:
			sp--;
			st[sp - 1] = st[sp - 1] == st[sp];
			break;
		}
	}
	return st[0];
}

size_t
label_atoms(const struct label_expr *e, const char *const **atoms)
{
	if (!e) {
		*atoms = NULL;
		return 0;
	}
	*atoms = (const char *const *)e->atoms;
	return e->natoms;
}
