/* jkpath: see jkpath.h. */
#include "jkpath.h"

#include "buf.h"
#include "xalloc.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static bool
unreserved(unsigned char ch)
{
	/* RFC 3986 unreserved; spelled out so the locale cannot change it. */
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
	    ch == '~';
}

/*
 * Append s[0..n) percent-encoded. In a path segment, "." and ".." are
 * encoded too: left alone, curl (and every proxy) would remove them as
 * dot-segments and the request would reach a different resource.
 */
static void
encode(struct buf *b, const char *s, size_t n, bool segment)
{
	static const char hex[] = "0123456789ABCDEF";
	bool dots = segment &&
	    ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'));
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char e[3];

		if (unreserved(ch) && !dots) {
			buf_add(b, &s[i], 1);
			continue;
		}
		e[0] = '%';
		e[1] = hex[ch >> 4];
		e[2] = hex[ch & 15];
		buf_add(b, e, 3);
	}
}

char *
jkpath_encode_segment(const char *s)
{
	struct buf b = { 0 };

	if (!s)
		return NULL;
	encode(&b, s, strlen(s), true);
	return buf_take(&b);
}

/* Folder path "a/b/c": no empty segment, so no leading, trailing or double '/'. */
static bool
job_valid(const char *s)
{
	return s && *s && *s != '/' && s[strlen(s) - 1] != '/' && !strstr(s, "//");
}

char *
jkpath_job(const char *full_name)
{
	struct buf b = { 0 };
	const char *p = full_name;

	if (!job_valid(full_name))
		return NULL;
	for (;;) {
		size_t n = strcspn(p, "/");

		buf_adds(&b, "job/");
		encode(&b, p, n, true);
		buf_adds(&b, "/");
		if (!p[n])
			break;
		p += n + 1;
	}
	return buf_take(&b);
}

bool
jkpath_before_builtin(const char *version)
{
	unsigned long major, minor;
	char *end;

	if (!version || !isdigit((unsigned char)*version))
		return false;
	major = strtoul(version, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return false;
	minor = strtoul(end + 1, &end, 10);
	return major < 2 || (major == 2 && minor < 307);
}

bool
jkpath_is_controller(const char *name, const char *version)
{
	return !name || !*name || strcmp(name, "built-in") == 0 ||
	    (strcmp(name, "master") == 0 && jkpath_before_builtin(version));
}

char *
jkpath_node(const char *name, const char *version)
{
	struct buf b = { 0 };

	/*
	 * The controller's computer has the name "" and lives at
	 * /computer/(built-in)/ (before 2.307: /computer/(master)/); its self
	 * label is "built-in" ("master"), which is the name the node list
	 * reports for it.
	 */
	if (jkpath_is_controller(name, version))
		return xstrdup(jkpath_before_builtin(version) ? "computer/(master)/" :
		    "computer/(built-in)/");
	buf_adds(&b, "computer/");
	encode(&b, name, strlen(name), true);
	buf_adds(&b, "/");
	return buf_take(&b);
}

/*
 * hudson.Util's uriMap, as its static initializer builds it: controls and
 * space, then of '!'..'z' those not in
 * "!  $ &'()*+,-. 0123456789   =  @ABC..Z    _ abc..z"; above 'z' always.
 */
static bool
raw_encoded(unsigned char ch)
{
	if (ch <= ' ' || ch > 'z')
		return true;
	if (isalnum(ch) && ch < 0x80)
		return false;
	return !strchr("!$&'()*+,-.=@_", ch);
}

char *
jkpath_raw_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = { 0 };

	if (!s)
		return NULL;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		char e[3] = { '%', hex[ch >> 4], hex[ch & 15] };

		if (raw_encoded(ch))
			buf_add(&b, e, 3);
		else
			buf_add(&b, s, 1);
	}
	return buf_take(&b);
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The next path segment of *p, percent-decoded into out (reset first);
 * *p moves past it and its '/'. false at the end of the path ('\0', '?'
 * or '#'). A '%' not followed by two hex digits stands for itself.
 */
static bool
next_segment(const char **p, struct buf *out)
{
	const char *s = *p;

	buf_reset(out);
	if (!*s || *s == '?' || *s == '#')
		return false;
	for (; *s && *s != '/' && *s != '?' && *s != '#'; s++) {
		char ch = *s;

		if (ch == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
			ch = (char)(hexval(s[1]) * 16 + hexval(s[2]));
			s += 2;
		}
		buf_add(out, &ch, 1);
	}
	*p = *s == '/' ? s + 1 : s;
	return true;
}

/* url's path: past "scheme://authority" when it has one. */
static const char *
url_path(const char *url)
{
	const char *p = strstr(url, "://");

	if (p && (size_t)(p - url) == strcspn(url, "/?#")) {
		p += 3;
		p += strcspn(p, "/?#");
	} else
		p = url;
	return *p == '/' ? p + 1 : p;
}

static bool
seg_eq(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (a->len == 0 || memcmp(a->s, b->s, a->len) == 0);
}

bool
jkpath_same_job(const char *url, const char *job_path)
{
	struct buf u = { 0 }, j = { 0 };
	const char *up, *jp = job_path;
	bool same = false, more;

	if (!url || !job_path)
		return false;
	/* Up to the first segment "job" (a context path such as "/jenkins/" comes before). */
	for (up = url_path(url);; ) {
		const char *at = up;

		if (!next_segment(&up, &u))
			goto out;
		if (u.len == 3 && memcmp(u.s, "job", 3) == 0 && strncmp(at, "job", 3) == 0) {
			up = at;
			break;
		}
	}
	for (;;) {
		more = next_segment(&jp, &j);
		if (more != next_segment(&up, &u))
			break;
		if (!more) {
			same = true;
			break;
		}
		if (!seg_eq(&u, &j))
			break;
	}
out:
	buf_free(&u);
	buf_free(&j);
	return same;
}

/* Is s[0..n) UTF-8 (no overlong form, no surrogate, nothing over U+10FFFF)? */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0, k, more;

	while (i < n) {
		unsigned char c = s[i];
		unsigned char lo = 0x80, hi = 0xBF;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF)
			more = 1;
		else if (c >= 0xE0 && c <= 0xEF) {
			more = 2;
			lo = c == 0xE0 ? 0xA0 : 0x80;
			hi = c == 0xED ? 0x9F : 0xBF;
		} else if (c >= 0xF0 && c <= 0xF4) {
			more = 3;
			lo = c == 0xF0 ? 0x90 : 0x80;
			hi = c == 0xF4 ? 0x8F : 0xBF;
		} else
			return false;
		if (n - i <= more)
			return false;
		for (k = 1; k <= more; k++, lo = 0x80, hi = 0xBF)
			if (s[i + k] < lo || s[i + k] > hi)
				return false;
		i += more + 1;
	}
	return true;
}

/* A segment that can be a name of a job (or of an item below one): adds it to name. */
static bool
add_name(struct buf *name, const struct buf *seg)
{
	if (seg->len == 0 || memchr(seg->s, '/', seg->len) || memchr(seg->s, '\0', seg->len) ||
	    !utf8_valid((const unsigned char *)seg->s, seg->len))
		return false;
	if (name->len)
		buf_add(name, "/", 1);
	buf_add(name, seg->s, seg->len);
	return true;
}

/* Is seg a build number (1 .. INT_MAX)? Into *number. */
static bool
seg_number(const struct buf *seg, int *number)
{
	long long v = 0;
	size_t i;

	if (seg->len == 0 || seg->len > 10)
		return false;
	for (i = 0; i < seg->len; i++) {
		if (seg->s[i] < '0' || seg->s[i] > '9')
			return false;
		v = v * 10 + (seg->s[i] - '0');
	}
	if (v <= 0 || v > INT_MAX)
		return false;
	*number = (int)v;
	return true;
}

char *
jkpath_build_job(const char *url, int *number)
{
	struct buf seg = { 0 }, next = { 0 }, name = { 0 }, swap;
	const char *up;
	bool ok = false, more;
	int n = 0;

	if (!url)
		return NULL;
	for (up = url_path(url);; ) {
		const char *at = up;

		if (!next_segment(&up, &seg))
			goto out;
		if (seg.len == 3 && memcmp(seg.s, "job", 3) == 0 && strncmp(at, "job", 3) == 0)
			break;
	}
	/* "job" NAME pairs; seg holds "job" here. */
	for (;;) {
		if (!next_segment(&up, &seg) || !add_name(&name, &seg))
			goto out;
		if (!next_segment(&up, &seg))
			goto out;    /* a job's URL, not a build's */
		if (!(seg.len == 3 && memcmp(seg.s, "job", 3) == 0))
			break;
	}
	/* seg: an item below the job (matrix), or the number, which must be the last segment. */
	for (;;) {
		more = next_segment(&up, &next);
		if (!more) {
			ok = seg_number(&seg, &n);
			break;
		}
		if (!add_name(&name, &seg))
			break;
		swap = seg;
		seg = next;
		next = swap;
	}
out:
	buf_free(&seg);
	buf_free(&next);
	if (!ok) {
		buf_free(&name);
		return NULL;
	}
	if (number)
		*number = n;
	return buf_take(&name);
}

char *
jkpath_encode_form(const struct jk_kv *kv, size_t n)
{
	struct buf b = { 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		const char *v = kv[i].value ? kv[i].value : "";

		if (i > 0)
			buf_adds(&b, "&");
		encode(&b, kv[i].name, strlen(kv[i].name), false);
		buf_adds(&b, "=");
		encode(&b, v, strlen(v), false);
	}
	return buf_take(&b);
}

int
jkpath_queue_id(const char *loc, long *id)
{
	static const char marker[] = "queue/item/";
	const size_t ml = sizeof(marker) - 1;
	size_t start, end, i;
	long v = 0;

	if (!loc || !id)
		return -1;
	end = strcspn(loc, "?#");
	if (end > 0 && loc[end - 1] == '/')
		end--;
	for (start = end; start > 0 && loc[start - 1] >= '0' && loc[start - 1] <= '9'; start--)
		;
	if (start == end || start < ml || memcmp(loc + start - ml, marker, ml) != 0)
		return -1;
	/* "queue" must be a whole segment: "/queue/item/" or a relative "queue/item/". */
	if (start > ml && loc[start - ml - 1] != '/')
		return -1;
	for (i = start; i < end; i++) {
		int d = loc[i] - '0';

		if (v > (LONG_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v <= 0)
		return -1;
	*id = v;
	return 0;
}
