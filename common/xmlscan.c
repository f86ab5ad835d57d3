/* xmlscan: see xmlscan.h. */
#include "xmlscan.h"

#include "errmsg.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

/* Deeper nesting is refused: a config.xml is a few levels deep. */
#define XML_MAX_DEPTH	100
/* An entity reference is at most "&#x" and 8 hex digits before its ';'. */
#define XML_REF_MAX	11
/*
 * A bad reference is quoted whole when shorter than XML_REF_SHOWN,
 * else its first XML_REF_CUT bytes.
 */
#define XML_REF_SHOWN	16
#define XML_REF_CUT	12
/* Element names are cut to this many bytes in messages. */
#define XML_NAME_SHOWN	64
#define UNICODE_MAX	0x10FFFF
#define SURROGATE_MIN	0xD800
#define SURROGATE_MAX	0xDFFF

struct xml_parser {
	const char    *p;	/* the next character */
	struct xml_el *top;	/* the root element once seen */
	struct xml_el *cur;	/* the open element we are in; NULL outside the root */
	int            depth;
	char          *err;
	size_t         errlen;
};

void
xml_free(struct xml_el *e)
{
	while (e) {
		struct xml_el *next;

		if (e->child) {
			/* Unlink the children and splice them before the siblings. */
			struct xml_el *c = e->child;

			e->last->next = e->next;
			e->child = e->last = NULL;
			next = c;
		} else {
			next = e->next;
		}
		free(e->name);
		buf_free(&e->text);
		free(e);
		e = next;
	}
}

static bool
xml_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool
only_space(const char *p, size_t n)
{
	while (n--)
		if (!xml_space(*p++))
			return false;
	return true;
}

static void
utf8_put(struct buf *b, unsigned long cp)
{
	char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (char)(0xC0 | (cp >> 6));
		u[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (char)(0xE0 | (cp >> 12));
		u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (char)(0xF0 | (cp >> 18));
		u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	buf_add(b, u, n);
}

/* A character reference "&#N;" or "&#xH;" (digits d .. semi) into b. -1 if bad. */
static int
char_ref(struct buf *b, const char *d, const char *semi, bool hexa)
{
	unsigned long cp = 0;

	if (d >= semi)
		return -1;
	for (; d < semi; d++) {
		int v;

		if (*d >= '0' && *d <= '9')
			v = *d - '0';
		else if (hexa && *d >= 'a' && *d <= 'f')
			v = *d - 'a' + 10;
		else if (hexa && *d >= 'A' && *d <= 'F')
			v = *d - 'A' + 10;
		else
			return -1;
		cp = cp * (hexa ? 16 : 10) + (unsigned long)v;
		if (cp > UNICODE_MAX)
			return -1;
	}
	if (cp == 0 || (cp >= SURROGATE_MIN && cp <= SURROGATE_MAX))
		return -1;
	utf8_put(b, cp);
	return 0;
}

/* One entity reference "&name;" (name = amp+1 .. semi) into b. -1 if unknown. */
static int
entity_ref(struct buf *b, const char *amp, const char *semi)
{
	static const struct { const char *name; char ch; } ents[] = {
		{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' },
	};
	size_t len = (size_t)(semi - amp - 1), i;

	if (amp[1] == '#')
		return amp[2] == 'x' ? char_ref(b, amp + 3, semi, true) :
		    char_ref(b, amp + 2, semi, false);
	for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
		if (strlen(ents[i].name) == len && memcmp(amp + 1, ents[i].name, len) == 0) {
			buf_add(b, &ents[i].ch, 1);
			return 0;
		}
	}
	return -1;
}

/* Decode character data p[0..n) with its entity references into b. */
static int
decode_text(struct buf *b, const char *p, size_t n, char *err, size_t errlen)
{
	const char *end = p + n;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *semi;

		if (!amp) {
			buf_add(b, p, (size_t)(end - p));
			break;
		}
		buf_add(b, p, (size_t)(amp - p));
		semi = memchr(amp, ';', (size_t)(end - amp));
		if (!semi || semi - amp > XML_REF_MAX || entity_ref(b, amp, semi) < 0) {
			size_t shown = semi && semi - amp < XML_REF_SHOWN ? (size_t)(semi - amp + 1) :
			    (size_t)(end - amp) < XML_REF_CUT ? (size_t)(end - amp) : XML_REF_CUT;

			errmsg_set(err, errlen, "bad entity reference '%.*s'", (int)shown, amp);
			return -1;
		}
		p = semi + 1;
	}
	return 0;
}

static int
shown_len(size_t n)
{
	return (int)(n < XML_NAME_SHOWN ? n : XML_NAME_SHOWN);
}

/* Text up to the next '<': the open element's, or white space outside the root. */
static int
parse_chardata(struct xml_parser *x)
{
	size_t n = strcspn(x->p, "<");

	if (x->cur) {
		if (decode_text(&x->cur->text, x->p, n, x->err, x->errlen) < 0)
			return -1;
	} else if (!only_space(x->p, n)) {
		errmsg_set(x->err, x->errlen, "text outside the root element");
		return -1;
	}
	x->p += n;
	return 0;
}

/* Step over markup from open to close (a processing instruction, a comment). */
static int
skip_markup(struct xml_parser *x, size_t open, const char *close, const char *unterminated)
{
	const char *q = strstr(x->p + open, close);

	if (!q) {
		errmsg_set(x->err, x->errlen, "%s", unterminated);
		return -1;
	}
	x->p = q + strlen(close);
	return 0;
}

/* "<![CDATA[...]]>": its content goes into the open element's text as is. */
static int
parse_cdata(struct xml_parser *x)
{
	static const char open[] = "<![CDATA[";
	const size_t ol = sizeof(open) - 1;
	const char *q;

	if (!x->cur || !(q = strstr(x->p + ol, "]]>"))) {
		errmsg_set(x->err, x->errlen, x->cur ? "unterminated CDATA" :
		    "CDATA outside the root element");
		return -1;
	}
	buf_add(&x->cur->text, x->p + ol, (size_t)(q - x->p - ol));
	x->p = q + 3;
	return 0;
}

/* "</name>": closes the open element, which must have that name. */
static int
parse_end_tag(struct xml_parser *x)
{
	const char *name = x->p + 2, *q;
	size_t n = strcspn(name, " \t\r\n>");

	q = name + n;
	while (xml_space(*q))
		q++;
	if (*q != '>') {
		errmsg_set(x->err, x->errlen, "bad end tag '%.*s'", shown_len(n), name);
		return -1;
	}
	if (!x->cur || strlen(x->cur->name) != n || memcmp(x->cur->name, name, n) != 0) {
		errmsg_set(x->err, x->errlen, "end tag </%.*s> does not match <%s>",
		    shown_len(n), name, x->cur ? x->cur->name : "(none)");
		return -1;
	}
	x->cur = x->cur->parent;
	x->depth--;
	x->p = q + 1;
	return 0;
}

/* The '>' ending a start tag whose attributes begin at q; a quoted value may hold '>' or '/'. */
static const char *
skip_attributes(const char *q)
{
	for (; *q && *q != '>'; q++) {
		if (*q == '"' || *q == '\'') {
			const char *r = strchr(q + 1, *q);

			if (!r)
				break;
			q = r;
		}
	}
	return q;
}

/* Hang a new element under the open one (or make it the root). */
static struct xml_el *
add_element(struct xml_parser *x, const char *name, size_t n)
{
	struct xml_el *el = xcalloc(1, sizeof(*el));

	el->name = xstrndup(name, n);
	el->parent = x->cur;
	if (!x->cur) {
		x->top = el;
	} else {
		if (x->cur->last)
			x->cur->last->next = el;
		else
			x->cur->child = el;
		x->cur->last = el;
	}
	return el;
}

/* "<name attr...>" opens an element; "<name .../>" is an empty one. */
static int
parse_start_tag(struct xml_parser *x)
{
	const char *name = x->p + 1, *q;
	size_t n = strcspn(name, " \t\r\n/>");
	struct xml_el *el;

	if (n == 0 || (!x->cur && x->top)) {
		errmsg_set(x->err, x->errlen, n ? "more than one root element" : "bad start tag");
		return -1;
	}
	q = skip_attributes(name + n);
	if (*q != '>') {
		errmsg_set(x->err, x->errlen, "unterminated start tag <%.*s", shown_len(n), name);
		return -1;
	}
	el = add_element(x, name, n);
	if (q[-1] != '/') {
		if (++x->depth > XML_MAX_DEPTH) {
			errmsg_set(x->err, x->errlen, "elements nested too deep");
			return -1;
		}
		x->cur = el;
	}
	x->p = q + 1;
	return 0;
}

/* Whatever starts at the '<' under x->p. */
static int
parse_markup(struct xml_parser *x)
{
	const char *p = x->p;

	if (strncmp(p, "<?", 2) == 0)
		return skip_markup(x, 2, "?>", "unterminated <?");
	if (strncmp(p, "<!--", 4) == 0)
		return skip_markup(x, 4, "-->", "unterminated comment");
	if (strncmp(p, "<![CDATA[", 9) == 0)
		return parse_cdata(x);
	if (p[1] == '!') {
		errmsg_set(x->err, x->errlen, "DOCTYPE and declarations are not supported");
		return -1;
	}
	if (p[1] == '/')
		return parse_end_tag(x);
	return parse_start_tag(x);
}

int
xml_parse(const char *s, struct xml_el **root, char *err, size_t errlen)
{
	struct xml_parser x = { .p = s, .err = err, .errlen = errlen };

	*root = NULL;
	if (!s) {
		errmsg_set(err, errlen, "no document");
		return -1;
	}
	while (*x.p)
		if ((*x.p == '<' ? parse_markup(&x) : parse_chardata(&x)) < 0)
			goto fail;
	if (x.cur) {
		errmsg_set(err, errlen, "unterminated element <%s>", x.cur->name);
		goto fail;
	}
	if (!x.top) {
		errmsg_set(err, errlen, "no root element");
		goto fail;
	}
	*root = x.top;
	return 0;
fail:
	xml_free(x.top);
	return -1;
}

bool
xml_is(const struct xml_el *e, const char *simple)
{
	size_t n = strlen(e->name), m = strlen(simple);

	if (n == m)
		return memcmp(e->name, simple, n) == 0;
	return n > m && e->name[n - m - 1] == '.' && memcmp(e->name + n - m, simple, m) == 0;
}

struct xml_el *
xml_child(const struct xml_el *e, const char *name)
{
	struct xml_el *c;

	for (c = e->child; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

const char *
xml_trimmed(const struct xml_el *e, size_t *n)
{
	const char *s = e->text.s ? e->text.s : "";
	size_t len = e->text.len;

	while (len && xml_space(*s)) {
		s++;
		len--;
	}
	while (len && xml_space(s[len - 1]))
		len--;
	*n = len;
	return s;
}

bool
xml_text_is(const struct xml_el *e, const char *s)
{
	size_t n;
	const char *t = xml_trimmed(e, &n);

	return strlen(s) == n && memcmp(t, s, n) == 0;
}

const struct xml_el *
xml_next(const struct xml_el *root, const struct xml_el *e)
{
	if (e->child)
		return e->child;
	while (e && e != root) {
		if (e->next)
			return e->next;
		e = e->parent;
	}
	return NULL;
}
