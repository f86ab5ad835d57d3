/*
 * Unit tests for common/label.c: every operator, precedence, quoting,
 * every kind of syntax error with its position, the atoms list, evaluation
 * against node label sets, and hostile input (deep nesting, huge input,
 * random bytes, random well-formed expressions checked against a tree
 * evaluator written here).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "label.h"

/* ---- helpers ---- */

static struct label_expr *
parse_ok(const char *s)
{
	char err[256];
	struct label_expr *e = label_parse(s, err, sizeof(err));

	if (!e)
		fail_msg("'%.60s' should parse but: %s", s, err);
	return e;
}

/* Parse must fail with an error containing each fragment (NULL: skip). */
static void
expect_error(const char *s, const char *frag1, const char *frag2)
{
	char err[256];
	struct label_expr *e = label_parse(s, err, sizeof(err));

	if (e) {
		label_free(e);
		fail_msg("'%.60s' should not parse", s);
	}
	if (!strstr(err, frag1) || (frag2 && !strstr(err, frag2)))
		fail_msg("'%.60s': error '%s' lacks '%s' / '%s'", s, err, frag1,
		    frag2 ? frag2 : "");
}

static void
expect_exact_error(const char *s, const char *want)
{
	char err[256];

	assert_null(label_parse(s, err, sizeof(err)));
	assert_string_equal(err, want);
}

/* Evaluate s on the NULL-terminated label list that follows. */
static bool
eval(const char *s, ...)
{
	const char *labels[16];
	size_t n = 0;
	struct label_expr *e;
	va_list ap;
	bool r;

	va_start(ap, s);
	while ((labels[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	e = parse_ok(s);
	r = label_eval(e, labels, n);
	label_free(e);
	return r;
}

/* The truth table of e over every subset of vars (at most 32 rows). */
static uint32_t
truth_table(const struct label_expr *e, const char *const *vars, size_t nv)
{
	const char *labels[5];
	uint32_t tt = 0;
	unsigned mask;
	size_t i, n;

	for (mask = 0; mask < (1u << nv); mask++) {
		for (i = n = 0; i < nv; i++)
			if (mask & (1u << i))
				labels[n++] = vars[i];
		if (label_eval(e, labels, n))
			tt |= 1u << mask;
	}
	return tt;
}

static const char *const abc[] = { "a", "b", "c", "d" };
static const char *const fbz[] = { "foo", "bar", "zot" };

static bool
equivalent(const char *s1, const char *s2, const char *const *vars, size_t nv)
{
	struct label_expr *e1 = parse_ok(s1), *e2 = parse_ok(s2);
	bool same = truth_table(e1, vars, nv) == truth_table(e2, vars, nv);

	label_free(e1);
	label_free(e2);
	return same;
}

#define SAME(a, b, v)   assert_true(equivalent(a, b, v, sizeof(v) / sizeof(v[0])))
#define DIFFER(a, b, v) assert_false(equivalent(a, b, v, sizeof(v) / sizeof(v[0])))

static void
expect_atoms(const char *s, size_t n, ...)
{
	struct label_expr *e = parse_ok(s);
	const char *const *atoms;
	va_list ap;
	size_t i;

	assert_int_equal(label_atoms(e, &atoms), n);
	va_start(ap, n);
	for (i = 0; i < n; i++)
		assert_string_equal(atoms[i], va_arg(ap, const char *));
	va_end(ap);
	label_free(e);
}

/* Deterministic xorshift32, so a failing fuzz case can be replayed. */
static uint32_t
rnd(uint32_t *st)
{
	uint32_t x = *st;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *st = x;
}

/* ---- operators ---- */

static void
test_operators(void **state)
{
	/* Rows: mask bit 0 = a, bit 1 = b; tt bit k = value on row k. */
	struct { const char *s; uint32_t tt; } cases[] = {
		{ "a",      0xA },  /* F T F T */
		{ "!a",     0x5 },
		{ "a&&b",   0x8 },
		{ "a||b",   0xE },
		{ "a->b",   0xD },  /* F only when a and not b */
		{ "a<->b",  0x9 },
		{ "(a)",    0xA },
		{ "!(a)",   0x5 },
		{ "!(!a)",  0xA },
	};
	struct label_expr *e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e = parse_ok(cases[i].s);
		if (truth_table(e, abc, 2) != cases[i].tt)
			fail_msg("'%s': truth table %x, want %x", cases[i].s,
			    truth_table(e, abc, 2), cases[i].tt);
		label_free(e);
	}
	SAME("a->b", "!a||b", abc);
	SAME("a<->b", "a&&b||!a&&!b", abc);
}

static void
test_precedence(void **state)
{
	(void)state;
	/* From Jenkins' LabelExpressionTest. */
	SAME("foo||bar&&zot", "foo||(bar&&zot)", fbz);
	DIFFER("foo||bar&&zot", "(foo||bar)&&zot", fbz);
	SAME("  ( foo || bar )  && zot", "(foo||bar)&&zot", fbz);
	SAME("!foo <-> bar", "(!foo)<->bar", fbz);
	/* (!a)<->b equals !(a<->b), so "!" binding tighter shows with &&. */
	SAME("!foo <-> bar || zot", "(!foo)<->(bar||zot)", fbz);

	/* && binds tighter than ||, || than ->, -> than <->. */
	SAME("a&&b||c&&d", "(a&&b)||(c&&d)", abc);
	SAME("!a&&b", "(!a)&&b", abc);
	DIFFER("!a&&b", "!(a&&b)", abc);
	SAME("a||b->c", "(a||b)->c", abc);
	DIFFER("a||b->c", "a||(b->c)", abc);
	SAME("a->b||c", "a->(b||c)", abc);
	SAME("a->b&&c", "a->(b&&c)", abc);
	DIFFER("a->b&&c", "(a->b)&&c", abc);
	SAME("a->b<->c", "(a->b)<->c", abc);
	DIFFER("a->b<->c", "a->(b<->c)", abc);
	SAME("a<->b->c", "a<->(b->c)", abc);
	DIFFER("a<->b->c", "(a<->b)->c", abc);
	SAME("a->b<->c->d", "(a->b)<->(c->d)", abc);
	SAME("a&&b->c", "(a&&b)->c", abc);
}

static void
test_associativity(void **state)
{
	(void)state;
	/*
	 * <->, && and || are associative, so grouping is not visible in truth
	 * tables; check that chains parse and mean the left fold. "->" is the
	 * one non-associative operator and Jenkins refuses to chain it.
	 */
	SAME("a<->b<->c", "(a<->b)<->c", abc);
	SAME("a<->b<->c<->d", "((a<->b)<->c)<->d", abc);
	SAME("a&&b&&c&&d", "((a&&b)&&c)&&d", abc);
	SAME("a||b||c||d", "((a||b)||c)||d", abc);
	SAME("(a->b)->c", "!(!a||b)||c", abc);
	SAME("a->(b->c)", "!a||!b||c", abc);
	DIFFER("(a->b)->c", "a->(b->c)", abc);
}

static void
test_whitespace(void **state)
{
	(void)state;
	SAME(" \ta\t&& \tb  ", "a&&b", abc);
	SAME("a&&b", "a && b", abc);
	SAME("!a", "! a", abc);
	SAME("a<->b", "a <-> b", abc);
	SAME("a->b", "a -> b", abc);
	SAME("(a)", " ( a ) ", abc);
}

/* ---- atoms and quoting ---- */

static void
test_atom_chars(void **state)
{
	(void)state;
	/* '-' is an atom character unless it starts "->". */
	expect_atoms("a-b", 1, "a-b");
	expect_atoms("--", 1, "--");
	expect_atoms("-1", 1, "-1");
	expect_atoms("a-", 1, "a-");
	expect_atoms("-", 1, "-");
	expect_atoms("a->b", 2, "a", "b");
	expect_atoms("a-->b", 2, "a-", "b");
	expect_atoms("a--->b", 2, "a--", "b");
	expect_atoms("python-2.4&&x86_64", 2, "python-2.4", "x86_64");
	/* Anything else: punctuation, backslash, UTF-8, even a raw newline. */
	expect_atoms("a.b:c/d@e=f+g*h#i$j%k^l~m`n[o]p{q}r,s;t?u\\v", 1,
	    "a.b:c/d@e=f+g*h#i$j%k^l~m`n[o]p{q}r,s;t?u\\v");
	expect_atoms("\xc3\xa9t\xc3\xa9||\xe6\x97\xa5\xe6\x9c\xac", 2,
	    "\xc3\xa9t\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac");
	expect_atoms("a\nb", 1, "a\nb");

	assert_true(eval("a-->b", "b", NULL));
	assert_false(eval("a-->b", "a-", NULL));
	assert_true(eval("a-->b", "a", NULL));     /* "a" is not "a-" */
	SAME("a-->b", "!\"a-\"||b", abc);
}

static void
test_strings(void **state)
{
	(void)state;
	expect_atoms("\"a b\"&&c", 2, "a b", "c");
	assert_true(eval("\"a b\"&&c", "a b", "c", NULL));
	assert_false(eval("\"a b\"&&c", "a", "b", "c", NULL));

	/* Every escape Jenkins knows. */
	expect_atoms("\"a\\\"b\" || \"c\\\\d\" || \"\\b\\t\\n\\f\\r\\'\"", 3,
	    "a\"b", "c\\d", "\b\t\n\f\r'");
	/* Operators and parentheses lose their meaning inside quotes. */
	expect_atoms("\"a&&b||!(c)->d<->e\"", 1, "a&&b||!(c)->d<->e");
	expect_atoms("\"it's\"", 1, "it's");

	/* A quoted atom is the same atom as the bare one. */
	expect_atoms("\"x\" || x || \"x y\"", 2, "x", "x y");
	assert_true(eval("\"linux\"", "linux", NULL));

	/* "" is a valid token: the empty atom, which no node carries. */
	expect_atoms("\"\"", 1, "");
	assert_false(eval("\"\"", "a", "", NULL));
	assert_true(eval("!\"\"", "a", NULL));
	assert_true(eval("\"\" || a", "a", NULL));
}

static void
test_atoms_list(void **state)
{
	struct label_expr *e;
	const char *const *atoms;

	(void)state;
	expect_atoms("ubuntu && !gpu || slave0 && ubuntu", 3,
	    "ubuntu", "gpu", "slave0");
	expect_atoms("(b || a) -> (a <-> c) && b", 3, "b", "a", "c");
	expect_atoms("x", 1, "x");
	expect_atoms("Linux || linux", 2, "Linux", "linux");

	/* The atoms belong to e and stay valid until label_free. */
	e = parse_ok("p && q");
	assert_int_equal(label_atoms(e, &atoms), 2);
	assert_int_equal(label_atoms(e, &atoms), 2);
	assert_string_equal(atoms[0], "p");
	assert_string_equal(atoms[1], "q");
	label_free(e);

	assert_int_equal(label_atoms(NULL, &atoms), 0);
	assert_null(atoms);
}

/* ---- evaluation ---- */

static void
test_eval_node(void **state)
{
	/* gearman-plugin.md §2.2: node labels plus its own name, "slave0". */
	static const char *const node[] = {
		"ubuntu", "gcc", "python-2.4", "linux", "slave0"
	};
	struct {
		const char *s;
		bool        want;
	} cases[] = {
		{ "linux",                true },
		{ "bogus",                false },
		{ "slave0",               true },
		{ "slave1",               false },
		{ "Linux",                false },   /* case-sensitive */
		{ "linu",                 false },   /* exact, not prefix */
		{ "linux ",               true },
		{ "\"linux \"",           false },
		{ "precise || oneiric",   false },
		{ "ubuntu && linux",      true },
		{ "ubuntu && !gpu",       true },
		{ "ubuntu && gpu",        false },
		{ "python-2.4",           true },
		{ "gpu -> cuda",          true },
		{ "linux -> cuda",        false },
		{ "linux -> gcc",         true },
		{ "linux <-> slave0",     true },
		{ "gpu <-> cuda",         true },
		{ "linux <-> gpu",        false },
		{ "!(linux && slave0)",   false },
		{ "(gpu || linux) && (slave0 || slave1) && !windows", true },
	};
	struct label_expr *e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e = parse_ok(cases[i].s);
		if (label_eval(e, node, 5) != cases[i].want)
			fail_msg("'%s' should be %s", cases[i].s,
			    cases[i].want ? "true" : "false");
		label_free(e);
	}

	/* The empty label set, and NULL entries in it, are handled. */
	e = parse_ok("a || !b");
	assert_true(label_eval(e, NULL, 0));
	{
		const char *holes[] = { NULL, "b", NULL };

		assert_false(label_eval(e, holes, 3));
	}
	label_free(e);
	assert_false(label_eval(NULL, node, 5));
	label_free(NULL);
}

/* ---- errors ---- */

static void
test_errors(void **state)
{
	(void)state;
	/* The messages the brief spells out, byte for byte. */
	expect_exact_error("a && (&& b)",
	    "syntax error at 7: expected an atom, \"(\" or \"!\" but found \"&&\"");
	expect_exact_error("a \"b", "syntax error at 3: unterminated string");
	expect_exact_error("a->b->c",
	    "syntax error at 5: \"->\" cannot be chained; use parentheses");

	/* Failing examples from Jenkins' LabelExpressionTest. */
	expect_error("a <- b", "at 3:", "\"<\"");
	expect_error("a - b", "at 3:", "expected an operator but found atom \"-\"");
	expect_error("->", "at 1:", "expected an atom, \"(\" or \"!\" but found \"->\"");
	expect_error("-!", "at 2:", "expected an operator but found \"!\"");

	expect_error("", "at 1:", "empty expression");
	expect_error(" \t ", "at 1:", "empty expression");
	expect_error(NULL, "at 1:", "empty expression");
	expect_error("!!a", "at 2:", "\"!!\" is not allowed");
	expect_error("! !a", "at 3:", "\"!!\" is not allowed");
	expect_error("(a->b)->c->d", "at 10:", "cannot be chained");
	expect_error("foo bar", "at 5:", "expected an operator but found atom \"bar\"");
	expect_error("foo(bar)", "at 4:", "expected an operator but found \"(\"");
	expect_error("foo !bar", "at 5:", "expected an operator but found \"!\"");
	expect_error("\"a\"b", "at 4:", "found atom \"b\"");
	expect_error("a\"b\"", "at 2:", "found string \"b\"");
	expect_error("(a", "at 3:", "missing \")\" for \"(\" at 1");
	expect_error("x && (a || (b)", "at 15:", "missing \")\" for \"(\" at 6");
	expect_error("(a b)", "at 4:",
	    "expected an operator or \")\" to close \"(\" at 1 but found atom \"b\"");
	expect_error("a)", "at 2:", "unmatched \")\"");
	expect_error("(a))", "at 4:", "unmatched \")\"");
	expect_error("()", "at 2:", "expected an atom, \"(\" or \"!\" but found \")\"");
	expect_error("&&a", "at 1:", "expected an atom, \"(\" or \"!\" but found \"&&\"");
	expect_error("a&&", "at 4:", "expected an atom, \"(\" or \"!\" but found end of input");
	expect_error("a||", "at 4:", "found end of input");
	expect_error("a<->", "at 5:", "found end of input");
	expect_error("<->a", "at 1:", "found \"<->\"");
	expect_error("a&&||b", "at 4:", "found \"||\"");
	expect_error("!", "at 2:", "expected an atom or \"(\" after \"!\" but found end of input");
	expect_error("!&&a", "at 2:", "after \"!\" but found \"&&\"");
	expect_error("a & b", "at 3:", "\"&\" is not an operator; use \"&&\"");
	expect_error("a | b", "at 3:", "\"|\" is not an operator; use \"||\"");
	expect_error("a ||| b", "at 5:", "\"|\" is not an operator");
	expect_error("a&", "at 2:", "\"&\" is not an operator");
	expect_error("a<-->b", "at 2:", "\"<\"");
	expect_error("a <", "at 3:", "\"<\"");
	expect_error("a > b", "at 3:", "unexpected \">\"");
	expect_error("a=>b", "at 3:", "unexpected \">\"");
	expect_error("'a'", "at 1:", "double quotes");
	expect_error("\"unterminated", "at 1:", "unterminated string");
	expect_error("\"ab\\", "at 1:", "unterminated string");
	expect_error("\"ab\\\"", "at 1:", "unterminated string");
	expect_error("\"a\\qb\"", "at 3:", "unknown escape \"\\q\" in string");
	expect_error("\"a\\u0041\"", "at 3:", "unknown escape \"\\u\"");
	expect_error("\"a\\\x01\"", "at 3:", "unknown escape in string");
	expect_error("x && \"a\nb\"", "at 8:", "line break inside string");
	expect_error("\"a\rb\"", "at 3:", "line break inside string");

	/* Positions count characters, not bytes: "é" is one. */
	expect_error("\xc3\xa9 && &&", "at 6:", "found \"&&\"");
	expect_error("\xe6\x97\xa5\xe6\x9c\xac \xc3\xa9", "at 4:",
	    "found atom \"\xc3\xa9\"");
	/* Invalid UTF-8: a stray continuation byte still counts. */
	expect_error("\x80)", "at 2:", "unmatched");
	expect_error("a \x80\x80", "at 3:", "found atom");

	/* Long and odd atoms are shortened and escaped in messages. */
	expect_error("a bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	    "at 3:", "atom \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...\"");
	expect_error("a b\x01" "c", "at 3:", "atom \"b\\x01c\"");
}

static void
test_error_buffer(void **state)
{
	char small[12];
	char err[256];

	(void)state;
	/* Truncated but terminated; a missing buffer is tolerated. */
	memset(small, 'x', sizeof(small));
	assert_null(label_parse("a b", small, sizeof(small)));
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_memory_equal(small, "syntax erro", sizeof(small));
	assert_null(label_parse("a b", small, 1));
	assert_string_equal(small, "");
	assert_null(label_parse("a b", NULL, 0));
	assert_null(label_parse("(((", err, 0));

	/* A success leaves an empty message. */
	strcpy(err, "stale");
	label_free(label_parse("a", err, sizeof(err)));
	assert_string_equal(err, "");
}

/* ---- hostile input ---- */

static char *
repeat(const char *head, const char *unit, size_t n, const char *mid,
    const char *tail, size_t ntail)
{
	size_t lu = strlen(unit), lt = strlen(tail);
	size_t len = strlen(head) + lu * n + strlen(mid) + lt * ntail;
	char *s = malloc(len + 1), *p;
	size_t i;

	assert_non_null(s);
	p = stpcpy(s, head);
	for (i = 0; i < n; i++)
		p = stpcpy(p, unit);
	p = stpcpy(p, mid);
	for (i = 0; i < ntail; i++)
		p = stpcpy(p, tail);
	return s;
}

static void
test_deep_nesting(void **state)
{
	const char *a[] = { "a" }, *none[] = { "z" };
	struct label_expr *e;
	char err[256], *s;

	(void)state;
	/* 256 levels are allowed ... */
	s = repeat("", "(", 256, "a", ")", 256);
	e = parse_ok(s);
	assert_true(label_eval(e, a, 1));
	assert_false(label_eval(e, none, 1));
	label_free(e);
	free(s);

	/* ... 257 are not, and neither is a flood of them. */
	s = repeat("", "(", 257, "a", ")", 257);
	assert_null(label_parse(s, err, sizeof(err)));
	assert_non_null(strstr(err, "syntax error at 257: expression nested too deeply"));
	free(s);
	s = repeat("", "(", 65536, "", "", 0);
	expect_error(s, "at 257:", "nested too deeply");
	free(s);
	s = repeat("", "!(", 30000, "a", "", 0);
	expect_error(s, "at 514:", "nested too deeply");
	free(s);

	/* 256 negations: an even count, so the same as a. */
	s = repeat("", "!(", 256, "a", ")", 256);
	e = parse_ok(s);
	assert_true(label_eval(e, a, 1));
	assert_false(label_eval(e, none, 1));
	label_free(e);
	free(s);

	/*
	 * The deepest evaluation stack the grammar allows: every level leaves
	 * a pending operand for <->, ->, || and &&. Sanitizers would catch an
	 * overflow of the fixed evaluation stack.
	 */
	s = repeat("", "a<->b->c||d&&(", 256, "e", ")", 256);
	e = parse_ok(s);
	{
		const char *all[] = { "a", "b", "c", "d", "e" };
		const char *nb[] = { "a", "c", "d", "e" };

		/* With a, b true, each level is "true <-> (true -> ...)". */
		assert_true(label_eval(e, all, 5));
		/* Without b, "b->..." is true: a<->true = a = true. */
		assert_true(label_eval(e, nb, 4));
		/* With nothing, the outermost level is "false <-> true". */
		assert_false(label_eval(e, NULL, 0));
	}
	label_free(e);
	free(s);
}

static void
test_long_input(void **state)
{
	const char *a[] = { "a" }, *none[] = { "z" };
	struct label_expr *e;
	const char *const *atoms;
	char err[256], *s;
	size_t i, n;

	(void)state;
	/* 100 KiB is refused before parsing. */
	s = repeat("a", "&&a", 34000, "", "", 0);
	assert_null(label_parse(s, err, sizeof(err)));
	assert_non_null(strstr(err, "too long"));
	free(s);

	/* Exactly 64 KiB is fine, one more byte is not. */
	s = repeat("", "x", 65536, "", "", 0);
	e = parse_ok(s);
	assert_int_equal(label_atoms(e, &atoms), 1);
	assert_int_equal(strlen(atoms[0]), 65536);
	label_free(e);
	free(s);
	s = repeat("", "x", 65537, "", "", 0);
	expect_error(s, "too long", NULL);
	free(s);

	/* Long flat chains keep the evaluation stack small. */
	s = repeat("a", "&&a", 20000, "", "", 0);
	e = parse_ok(s);
	assert_true(label_eval(e, a, 1));
	assert_false(label_eval(e, none, 1));
	label_free(e);
	free(s);
	s = repeat("a", "<->a", 15000, "", "", 0);  /* 15001 a's */
	e = parse_ok(s);
	assert_true(label_eval(e, a, 1));
	/* Folding F<->F<->... over an odd count of F gives F. */
	assert_false(label_eval(e, none, 1));
	label_free(e);
	free(s);

	/* Many distinct atoms: order of first appearance, duplicates merged. */
	s = malloc(65536);
	assert_non_null(s);
	for (i = n = 0; i < 9000; i++)
		n += sprintf(s + n, "%sa%zu", i ? "||" : "", i % 7000);
	e = parse_ok(s);
	assert_int_equal(label_atoms(e, &atoms), 7000);
	for (i = 0; i < 7000; i++) {
		char want[16];

		snprintf(want, sizeof(want), "a%zu", i);
		assert_string_equal(atoms[i], want);
	}
	{
		const char *l[] = { "a6999" };

		assert_true(label_eval(e, l, 1));
		assert_false(label_eval(e, none, 1));
	}
	label_free(e);
	free(s);
}

/* Random byte strings, biased toward grammar characters. */
static void
test_fuzz_bytes(void **state)
{
	static const char *const pieces[] = {
		"a", "b", "x-y", "&&", "||", "!", "->", "<->", "(", ")", " ",
		"\t", "\"", "\\", "-", ">", "<", "&", "|", "'", "\xc3\xa9",
		"\"q\"", "\\n", "\n",
	};
	const size_t np = sizeof(pieces) / sizeof(pieces[0]);
	const char *labels[] = { "a", "x-y", "q" };
	uint32_t st = 0x2545F491;
	char s[400], err[256];
	unsigned long pos;
	size_t len, k;
	int iter, ok = 0, bad = 0;
	struct label_expr *e;
	const char *const *atoms;
	unsigned char c;

	(void)state;
	for (iter = 0; iter < 5000; iter++) {
		len = 0;
		for (k = rnd(&st) % 40; k > 0; k--) {
			if (rnd(&st) % 4 == 0) {
				/* Any byte but NUL. */
				s[len++] = (char)(rnd(&st) % 255 + 1);
			} else {
				const char *pc = pieces[rnd(&st) % np];

				memcpy(s + len, pc, strlen(pc));
				len += strlen(pc);
			}
		}
		s[len] = '\0';

		e = label_parse(s, err, sizeof(err));
		if (e) {
			ok++;
			assert_true(label_atoms(e, &atoms) >= 1);
			(void)label_eval(e, labels, 3);
			(void)label_eval(e, NULL, 0);
			label_free(e);
			continue;
		}
		bad++;
		if (sscanf(err, "syntax error at %lu: %c", &pos, (char *)&c) != 2)
			fail_msg("input %d: odd error '%s'", iter, err);
		assert_in_range(pos, 1, len + 1);
	}
	/* Both outcomes must actually have been exercised. */
	assert_true(ok > 100);
	assert_true(bad > 100);
}

/*
 * Random well-formed expressions: build a tree, print it with only the
 * parentheses precedence requires (plus some extra ones and blanks), and
 * compare label_eval with a direct evaluation of the tree.
 */
enum { N_ATOM, N_NOT, N_AND, N_OR, N_IMPL, N_IFF };

static const int prec[] = { 6, 5, 4, 3, 2, 1 };
static const char *const op_text[] = { "", "!", "&&", "||", "->", "<->" };
/* The labels, and how each may be written in an expression. */
static const char *const tvar[] = { "a", "b-c", "x y", "\xc3\xa9", "a-" };
static const char *const tvar_src[] = { "\"a\"", "b-c", "\"x y\"", "\xc3\xa9", "a-" };

struct tnode { int op, var, l, r; };
struct tree  { struct tnode n[64]; int count; };

static int
tgen(struct tree *t, uint32_t *st, int depth)
{
	int i = t->count++, op;

	op = (depth == 0 || t->count > 56) ? N_ATOM : (int)(rnd(st) % 6);
	t->n[i].op = op;
	t->n[i].var = (int)(rnd(st) % 5);
	if (op == N_NOT)
		t->n[i].l = tgen(t, st, depth - 1);
	else if (op != N_ATOM) {
		t->n[i].l = tgen(t, st, depth - 1);
		t->n[i].r = tgen(t, st, depth - 1);
	}
	return i;
}

static bool
teval(const struct tree *t, int i, unsigned mask)
{
	const struct tnode *n = &t->n[i];

	switch (n->op) {
	case N_ATOM: return mask & (1u << n->var);
	case N_NOT:  return !teval(t, n->l, mask);
	case N_AND:  return teval(t, n->l, mask) && teval(t, n->r, mask);
	case N_OR:   return teval(t, n->l, mask) || teval(t, n->r, mask);
	case N_IMPL: return !teval(t, n->l, mask) || teval(t, n->r, mask);
	default:     return teval(t, n->l, mask) == teval(t, n->r, mask);
	}
}

static void tprint(const struct tree *, int, char **, uint32_t *);

static void
tchild(const struct tree *t, int parent, int child, int right, char **p,
    uint32_t *st)
{
	int po = t->n[parent].op, co = t->n[child].op, paren;

	if (po == N_NOT)
		paren = co != N_ATOM;           /* ! takes a primary */
	else if (po == N_IMPL)
		paren = prec[co] <= prec[N_IMPL];       /* never chained */
	else if (right)
		paren = prec[co] <= prec[po];
	else
		paren = prec[co] < prec[po];    /* left-associative */
	if (!paren && rnd(st) % 8 == 0)
		paren = 1;
	if (paren)
		*p = stpcpy(*p, rnd(st) % 2 ? "(" : " ( ");
	tprint(t, child, p, st);
	if (paren)
		*p = stpcpy(*p, rnd(st) % 2 ? ")" : " )\t");
}

static void
tprint(const struct tree *t, int i, char **p, uint32_t *st)
{
	const struct tnode *n = &t->n[i];

	switch (n->op) {
	case N_ATOM:
		/* Bare or quoted at random; "x y" must always be quoted. */
		*p = stpcpy(*p, rnd(st) % 2 && n->var != 2 ?
		    tvar[n->var] : tvar_src[n->var]);
		break;
	case N_NOT:
		*p = stpcpy(*p, "!");
		tchild(t, i, n->l, 0, p, st);
		break;
	default:
		tchild(t, i, n->l, 0, p, st);
		*p = stpcpy(*p, rnd(st) % 2 ? " " : "");
		*p = stpcpy(*p, op_text[n->op]);
		*p = stpcpy(*p, rnd(st) % 2 ? " " : "");
		tchild(t, i, n->r, 1, p, st);
	}
}

static void
test_fuzz_trees(void **state)
{
	uint32_t st = 0xC0FFEE;
	struct tree t;
	char s[4096], *p;
	struct label_expr *e;
	const char *labels[5];
	unsigned mask;
	size_t i, n;
	int iter, root;

	(void)state;
	for (iter = 0; iter < 2000; iter++) {
		t.count = 0;
		root = tgen(&t, &st, (int)(rnd(&st) % 7));
		p = s;
		tprint(&t, root, &p, &st);

		e = parse_ok(s);
		for (mask = 0; mask < 32; mask++) {
			for (i = n = 0; i < 5; i++)
				if (mask & (1u << i))
					labels[n++] = tvar[i];
			if (label_eval(e, labels, n) != teval(&t, root, mask))
				fail_msg("'%s' wrong on label mask %x", s, mask);
		}
		label_free(e);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_operators),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_associativity),
		cmocka_unit_test(test_whitespace),
		cmocka_unit_test(test_atom_chars),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_atoms_list),
		cmocka_unit_test(test_eval_node),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_error_buffer),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_long_input),
		cmocka_unit_test(test_fuzz_bytes),
		cmocka_unit_test(test_fuzz_trees),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
