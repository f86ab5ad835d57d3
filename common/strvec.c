/* strvec: see strvec.h. */
#include "strvec.h"

#include "xalloc.h"

#include <stdlib.h>
#include <string.h>

void
strv_push(char ***v, size_t *n, const char *s, size_t len)
{
	*v = xreallocarray(*v, *n + 2, sizeof(**v));
	(*v)[(*n)++] = len == (size_t)-1 ? xstrdup(s) : xstrndup(s, len);
	(*v)[*n] = NULL;
}

void
strv_free(char **v, size_t n)
{
	size_t i;

	for (i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

bool
strv_has(char *const *v, size_t n, const char *s)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

int
strv_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void
strv_sort(char **v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), strv_cmp);
}

bool
strv_sorted_has(char *const *v, size_t n, const char *s)
{
	return n > 0 && bsearch(&s, v, n, sizeof(*v), strv_cmp) != NULL;
}
