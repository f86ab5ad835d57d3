/*
 * strvec: a vector of C strings, the project's one: char **v with its
 * count beside it, each string malloc'd. NULL with a count of 0 is empty.
 */
#ifndef JGA_STRVEC_H
#define JGA_STRVEC_H

#include <stdbool.h>
#include <stddef.h>

/* Append a copy of s[0..len) (len (size_t)-1: up to its NUL). */
void  strv_push(char ***v, size_t *n, const char *s, size_t len);
/* Free every string and the vector. */
void  strv_free(char **v, size_t n);
/* Is s one of v[0..n) (a linear search: for short or unsorted vectors)? */
bool  strv_has(char *const *v, size_t n, const char *s);
/* qsort/bsearch comparator of two char * (or const char *) elements, bytewise. */
int   strv_cmp(const void *a, const void *b);
/* Sort bytewise (strcmp), for strv_sorted_has. */
void  strv_sort(char **v, size_t n);
bool  strv_sorted_has(char *const *v, size_t n, const char *s);

#endif
