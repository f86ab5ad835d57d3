/* jkpath: see jkpath.h. */
#include "jkpath.h"

#include "buf.h"
#include "xalloc.h"

#include <limits.h>
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

char *
jkpath_node(const char *name)
{
	struct buf b = { 0 };

	/*
	 * The controller's computer has the name "" and lives at
	 * /computer/(built-in)/; its self label is "built-in", which is the
	 * name the node list reports for it.
	 */
	if (!name || !*name || strcmp(name, "built-in") == 0)
		return xstrdup("computer/(built-in)/");
	buf_adds(&b, "computer/");
	encode(&b, name, strlen(name), true);
	buf_adds(&b, "/");
	return buf_take(&b);
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
