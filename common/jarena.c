/*
 * jarena: see jarena.h.
 *
 * Chunks come from mmap, not malloc, so that they are never mixed with
 * the heap. The pages are kept from one parse to the next: fresh pages
 * must be faulted in and zeroed, which measured as costly as the malloc
 * churn the arena removes. A parse that needed several chunks leaves one
 * chunk of their total size behind (up to KEEP_MAX), so a steady job list
 * is parsed into one chunk that is already there.
 */
#include "jarena.h"

#include "log.h"
#include "xalloc.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#if defined(__SANITIZE_ADDRESS__)		/* gcc */
#define JARENA_ASAN 1
#elif defined(__has_feature)			/* clang */
#if __has_feature(address_sanitizer)
#define JARENA_ASAN 1
#endif
#endif
#ifdef JARENA_ASAN
#include <sanitizer/asan_interface.h>
/* Under ASan, a dropped value is poisoned: a use after jarena_drop() is caught. */
#define POISON(p, n)	ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n)	ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)	((void)(p), (void)(n))
#define UNPOISON(p, n)	((void)(p), (void)(n))
#endif

#define ALIGN		_Alignof(max_align_t)
#define ROUND(n, a)	(((n) + (a) - 1) & ~((size_t)(a) - 1))
#define PAGE		4096
#define FIRST_CHUNK	(1024 * 1024)
#define KEEP_MAX	(8 * 1024 * 1024)	/* pages kept between parses, at most */
#define MAX_VALUE	((size_t)1 << 30)	/* no single allocation above this */

struct chunk {
	struct chunk	*next;
	char		*used;		/* first free byte */
	char		*end;		/* one past the mapping */
};

struct arena {
	struct chunk	*chunks;	/* newest first */
	size_t		 next_size;	/* of the next chunk mapped */
	bool		 on;
};

#define CHUNK_HDR	ROUND(sizeof(struct chunk), ALIGN)

/*
 * The hooks take no context, hence this thread's arena in thread-local
 * storage; all zero (no chunks, off) in a thread that never began one.
 */
static _Thread_local struct arena arena;
static bool installed;

static struct chunk *
chunk_new(struct arena *a, size_t need)
{
	size_t size = a->next_size ? a->next_size : FIRST_CHUNK;
	struct chunk *c;
	void *m;

	if (size < CHUNK_HDR + need)
		size = ROUND(CHUNK_HDR + need, PAGE);
	if ((m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) ==
	    MAP_FAILED)
		fatalx("out of memory (a %zu-byte JSON arena chunk)", size);
	c = m;
	c->used = (char *)m + CHUNK_HDR;
	c->end = (char *)m + size;
	POISON(c->used, (size_t)(c->end - c->used));
	c->next = a->chunks;
	a->chunks = c;
	a->next_size = size * 2;
	return c;
}

static void
chunks_unmap(struct arena *a)
{
	struct chunk *c, *next;

	for (c = a->chunks; c; c = next) {
		size_t size = (size_t)(c->end - (char *)c);

		next = c->next;
		UNPOISON(c, size);	/* ASan's shadow outlives the mapping */
		munmap(c, size);
	}
	a->chunks = NULL;
}

static void *
arena_malloc(size_t n)
{
	struct arena *a = &arena;
	struct chunk *c = a->chunks;
	size_t need;
	void *p;

	if (!a->on)
		return xmalloc(n);
	if (n > MAX_VALUE)	/* an input bound, not memory: the parse fails */
		return NULL;
	need = ROUND(n ? n : 1, ALIGN);
	if (!c || (size_t)(c->end - c->used) < need)
		c = chunk_new(a, need);
	p = c->used;
	c->used += need;
	UNPOISON(p, n);
	return p;
}

static void
arena_free(void *p)
{
	const struct chunk *c;

	for (c = arena.chunks; c; c = c->next)
		if ((const char *)p >= (const char *)c && (const char *)p < c->end)
			return;
	free(p);
}

void
jarena_install(void)
{
	json_set_alloc_funcs(arena_malloc, arena_free);
	installed = true;
}

bool
jarena_begin(void)
{
	if (!installed)
		return false;
	jarena_drop();
	arena.on = true;
	return true;
}

void
jarena_stop(void)
{
	arena.on = false;
}

/*
 * One entry is a few kB, but a folder's entry is its whole subtree: a
 * folder of 10,000 jobs is a tree of 30 MB. Up to KEEP_MAX stays mapped
 * for the next parse; a larger arena is unmapped rather than kept.
 */
void
jarena_drop(void)
{
	struct arena *a = &arena;
	size_t total = 0;
	struct chunk *c;

	a->on = false;
	if (!a->chunks)
		return;
	for (c = a->chunks; c; c = c->next)
		total += (size_t)(c->end - (char *)c);
	if (!a->chunks->next && total <= KEEP_MAX) {
		c = a->chunks;
		c->used = (char *)c + CHUNK_HDR;
		POISON(c->used, (size_t)(c->end - c->used));
		return;
	}
	chunks_unmap(a);
	a->next_size = total <= KEEP_MAX ? total : 0;
}

void
jarena_free(void)
{
	chunks_unmap(&arena);
	arena.next_size = 0;
	arena.on = false;
}
