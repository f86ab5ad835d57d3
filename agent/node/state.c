/* state: see state.h. */
#include "state.h"

#include "log.h"
#include "safefile.h"
#include "xalloc.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define JOURNAL     "builds.jsonl"
#define JOURNAL_TMP "builds.jsonl.tmp"
/* Rewrite the journal once it has this many stale lines, and 4 per live record. */
#define STALE_MAX   1024

struct state {
	pthread_mutex_t   lock;
	char             *dir;
	int               dirfd;    /* holds the flock */
	int               fd;       /* the journal, O_APPEND */
	off_t             size;     /* its whole lines, in bytes */
	bool              torn;     /* it may end in a cut line: start the next with "\n" */
	bool              due;      /* rewrite it at the next change */
	size_t            stale;    /* journal lines no live record needs */
	struct build_rec *rec;
	size_t            n, cap;
};

static struct build_rec *
find(struct state *st, const char *unique)
{
	size_t i;

	for (i = 0; i < st->n; i++)
		if (strcmp(st->rec[i].unique, unique) == 0)
			return &st->rec[i];
	return NULL;
}

/* Put r in memory: true if it replaced a record, false if it was added. */
static bool
put(struct state *st, const struct build_rec *r)
{
	struct build_rec *old = find(st, r->unique);

	if (old) {
		*old = *r;
		return true;
	}
	if (st->n == st->cap) {
		st->cap = st->cap ? st->cap * 2 : 16;
		st->rec = xreallocarray(st->rec, st->cap, sizeof(*st->rec));
	}
	st->rec[st->n++] = *r;
	return false;
}

static void
drop(struct state *st, struct build_rec *r)
{
	*r = st->rec[--st->n];
}

static json_t *
rec_json(const struct build_rec *r)
{
	return json_pack("{s:s,s:s,s:s,s:I,s:i,s:I}", "unique", r->unique, "function", r->function,
	    "job", r->job, "queue_id", (json_int_t)r->queue_id, "number", r->number,
	    "time", (json_int_t)r->time);
}

static bool
copy(char *dst, size_t n, json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s && (size_t)snprintf(dst, n, "%s", s) < n;
}

/* A record from o. 1: a record, 0: a "done" line for *r's unique, -1: not ours. */
static int
rec_parse(json_t *o, struct build_rec *r)
{
	memset(r, 0, sizeof(*r));
	if (!copy(r->unique, sizeof(r->unique), o, "unique"))
		return -1;
	if (json_is_true(json_object_get(o, "done")))
		return 0;
	if (!copy(r->function, sizeof(r->function), o, "function") || !copy(r->job, sizeof(r->job), o, "job"))
		return -1;
	r->queue_id = (long)json_integer_value(json_object_get(o, "queue_id"));
	r->number = (int)json_integer_value(json_object_get(o, "number"));
	r->time = (time_t)json_integer_value(json_object_get(o, "time"));
	return 1;
}

/*
 * Write o to fd as one line, after a newline if lead, and drop o. Bytes
 * written, or -1 (a short write is ENOSPC). o is NULL when json_pack
 * refused a record's text (not UTF-8): nothing is written, errno ENOMEM.
 */
static ssize_t
write_line(int fd, json_t *o, bool lead)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	struct iovec iov[3];
	ssize_t want, got;
	int n = 0;

	json_decref(o);
	if (!text) {
		errno = ENOMEM;
		return -1;
	}
	if (lead)
		iov[n++] = (struct iovec){ "\n", 1 };
	iov[n++] = (struct iovec){ text, strlen(text) };
	iov[n++] = (struct iovec){ "\n", 1 };
	want = (ssize_t)iov[n - 2].iov_len + 1 + (lead ? 1 : 0);
	got = writev(fd, iov, n);
	free(text);
	if (got == want)
		return got;
	if (got >= 0)
		errno = ENOSPC;
	return -1;
}

/*
 * Append o to the journal. After a failed or short write the journal is
 * cut back to its last whole line (or, if that fails too, the next line
 * starts on a line of its own), and rewritten at the next change.
 */
static int
append(struct state *st, json_t *o)
{
	ssize_t n = write_line(st->fd, o, st->torn);

	if (n >= 0) {
		st->size += n;
		st->torn = false;
		return 0;
	}
	log_warn("state: cannot write to %s/%s", st->dir, JOURNAL);
	if (ftruncate(st->fd, st->size) < 0)
		st->torn = true;
	st->due = true;
	return -1;
}

/*
 * Write the live records to a new journal and switch to it: created
 * through the directory's fd, never through a link (safefile.h), fsync'd
 * before the rename, so the rename never leaves an empty journal.
 */
static int
rewrite(struct state *st)
{
	off_t size = 0;
	ssize_t n = 0;
	size_t i;
	int fd;

	if ((fd = safefile_create(st->dirfd, JOURNAL_TMP, O_APPEND, 0640)) < 0)
		return -1;
	for (i = 0; i < st->n && (n = write_line(fd, rec_json(&st->rec[i]), false)) >= 0; i++)
		size += n;
	if (n < 0 || safefile_commit(st->dirfd, fd, JOURNAL_TMP, JOURNAL) < 0) {
		int saved = errno;

		close(fd);
		unlinkat(st->dirfd, JOURNAL_TMP, 0);
		errno = saved;
		return -1;
	}
	if (st->fd >= 0)
		close(st->fd);
	st->fd = fd;
	st->size = size;
	st->torn = st->due = false;
	st->stale = 0;
	return 0;
}

/* Rewrite when due; on failure keep appending to the old journal and try again later. */
static void
maybe_rewrite(struct state *st)
{
	if ((st->due || (st->stale > STALE_MAX && st->stale > 4 * st->n)) && rewrite(st) < 0) {
		log_warn("state: cannot rewrite %s/%s", st->dir, JOURNAL);
		st->due = false;
		st->stale = 0;	/* again after as many changes */
	}
}

/* Why safefile_open_own refused a file (errno). */
static const char *
refusal(int err)
{
	return err == ELOOP ? "a symbolic link" : err == EPERM ?
	    "not a regular file owned by this agent's user" : strerror(err);
}

/* Read the journal into memory. Lines that are not records are counted in *bad. */
static void
read_journal(struct state *st, size_t *bad)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	FILE *f;
	int fd;

	if ((fd = safefile_open_own(st->dirfd, JOURNAL)) < 0) {
		if (errno != ENOENT)
			log_warnx("state: %s/%s not read: %s", st->dir, JOURNAL, refusal(errno));
		return;
	}
	if (!(f = fdopen(fd, "r"))) {
		close(fd);
		return;
	}
	while ((len = getline(&line, &cap, f)) > 0) {
		struct build_rec r, *old;
		json_t *o;
		int kind;

		if (len == 1 && line[0] == '\n')
			continue;	/* after a cut line (append) */
		o = json_loadb(line, (size_t)len, 0, NULL);
		kind = o ? rec_parse(o, &r) : -1;
		json_decref(o);
		if (kind < 0)
			(*bad)++;
		else if (kind == 0 && (old = find(st, r.unique)))
			drop(st, old);
		else if (kind > 0)
			put(st, &r);
	}
	free(line);
	fclose(f);
}

/* One record of the file-per-build format, if it is ours (safefile_open_own). */
static void
read_old_record(struct state *st, const char *name)
{
	struct build_rec r;
	json_t *o;
	int fd;

	if ((fd = safefile_open_own(st->dirfd, name)) < 0) {
		log_warnx("state: %s/%s not read: %s", st->dir, name, refusal(errno));
		return;
	}
	o = json_loadfd(fd, 0, NULL);
	close(fd);
	if (o && rec_parse(o, &r) > 0 && !find(st, r.unique))
		put(st, &r);
	json_decref(o);
}

/* Take over the records of the file-per-build format; their names go to *old. */
static void
read_old_records(struct state *st, char ***old, size_t *nold)
{
	int fd = dup(st->dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (!d && fd >= 0)
		close(fd);
	while (d && (de = readdir(d))) {
		size_t l = strlen(de->d_name);

		if (strncmp(de->d_name, "build-", 6) != 0 || l < 11 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		read_old_record(st, de->d_name);
		*old = xreallocarray(*old, *nold + 1, sizeof(**old));
		(*old)[(*nold)++] = xstrdup(de->d_name);
	}
	if (d)
		closedir(d);
}

/*
 * The journal could not be rewritten (disk full?): append to it as it is,
 * so that builds are still recorded; the old records stay in it.
 */
static int
journal_as_is(struct state *st, char *err, size_t errlen)
{
	struct stat sb;

	log_warnx("state: cannot rewrite %s/%s (%s); appending to it as it is", st->dir, JOURNAL,
	    strerror(errno));
	if ((st->fd = openat(st->dirfd, JOURNAL, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW |
	    O_CLOEXEC, 0640)) < 0 || fstat(st->fd, &sb) < 0) {
		snprintf(err, errlen, "[node] state_dir %s: cannot write %s: %s", st->dir, JOURNAL,
		    refusal(errno));
		return -1;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_uid != geteuid()) {
		snprintf(err, errlen, "[node] state_dir %s: cannot write %s: %s", st->dir, JOURNAL,
		    refusal(EPERM));
		return -1;
	}
	st->size = sb.st_size;
	st->torn = sb.st_size > 0;	/* it may end in a cut line */
	st->due = true;
	return 0;
}

/*
 * Is the directory open at fd (named dir) ours alone? Owned by us or root,
 * and neither group nor others may write it: whoever can write it can
 * plant records (builds this agent would re-attach to and report) or
 * links. -1 with err naming dir, its owner and mode.
 */
static int
check_dir(int fd, const char *dir, char *err, size_t errlen)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "[node] state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if ((sb.st_uid != geteuid() && sb.st_uid != 0) || (sb.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errlen, "[node] state_dir %s: refused: mode %04o, owner uid %ld; it must "
		    "belong to this agent's user (uid %ld) or root, and group and others must not "
		    "write it (chmod go-w)", dir, (unsigned)(sb.st_mode & 07777), (long)sb.st_uid,
		    (long)geteuid());
		return -1;
	}
	return 0;
}

int
state_check_dir(const char *dir, char *err, size_t errlen)
{
	int fd, rc, saved;

	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		saved = errno;
		snprintf(err, errlen, "[node] state_dir %s: %s", dir, strerror(saved));
		errno = saved;
		return -1;
	}
	rc = check_dir(fd, dir, err, errlen);
	close(fd);
	return rc;
}

int
state_make_dir(const char *root, const char *dir, char *err, size_t errlen)
{
	size_t rl = strlen(root);
	char *rest, *comp, *save = NULL;
	int fd, next;

	if (strncmp(dir, root, rl) != 0 || dir[rl] != '/') {
		snprintf(err, errlen, "[node] state_dir %s: not below %s", dir, root);
		return -1;
	}
	if ((mkdir(root, 0750) < 0 && errno != EEXIST) ||
	    (fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "[node] state_dir %s: cannot create %s: %s", dir, root, strerror(errno));
		return -1;
	}
	rest = xstrdup(dir + rl + 1);
	for (comp = strtok_r(rest, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		/* mkdirat and O_NOFOLLOW: a symbolic link planted below root is not followed. */
		if ((mkdirat(fd, comp, 0750) < 0 && errno != EEXIST) ||
		    (next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
			int len = (int)(rl + 1 + (size_t)(comp - rest) + strlen(comp)), saved = errno;
			struct stat sb;
			bool link = fstatat(fd, comp, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(sb.st_mode);

			snprintf(err, errlen, "[node] state_dir %s: cannot create %.*s: %s", dir, len, dir,
			    link ? "it is a symbolic link (none is followed below the state root)" :
			    strerror(saved));
			close(fd);
			free(rest);
			return -1;
		}
		close(fd);
		fd = next;
	}
	close(fd);
	free(rest);
	return 0;
}

struct state *
state_open(const char *dir, char *err, size_t errlen)
{
	struct state *st = xcalloc(1, sizeof(*st));
	char **old = NULL;
	size_t nold = 0, bad = 0, i;
	bool rewritten;

	st->dir = xstrdup(dir);
	st->fd = -1;
	st->dirfd = -1;
	pthread_mutex_init(&st->lock, NULL);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "[node] state_dir %s: %s", dir, strerror(errno));
		goto fail;
	}
	if ((st->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "[node] state_dir %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (check_dir(st->dirfd, dir, err, errlen) < 0)
		goto fail;
	if (flock(st->dirfd, LOCK_EX | LOCK_NB) < 0) {
		snprintf(err, errlen, "[node] state_dir %s: %s", dir, errno == EWOULDBLOCK ?
		    "in use by another agent (each agent needs its own state_dir)" : strerror(errno));
		goto fail;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "[node] state_dir %s: not writable: %s", dir, strerror(errno));
		goto fail;
	}
	read_journal(st, &bad);
	read_old_records(st, &old, &nold);
	if (!(rewritten = rewrite(st) == 0) && journal_as_is(st, err, errlen) < 0)
		goto fail;
	if (bad)
		log_warnx("state: %s/%s: %zu unreadable line%s skipped", dir, JOURNAL, bad, bad == 1 ? "" : "s");
	/* Their records are in the journal now, unless it could not be rewritten. */
	for (i = 0; i < nold; i++) {
		if (rewritten)
			unlinkat(st->dirfd, old[i], 0);
		free(old[i]);
	}
	free(old);
	return st;
fail:
	for (i = 0; i < nold; i++)
		free(old[i]);
	free(old);
	state_close(st);
	return NULL;
}

void
state_close(struct state *st)
{
	if (!st)
		return;
	if (st->fd >= 0)
		close(st->fd);
	if (st->dirfd >= 0)
		close(st->dirfd);
	pthread_mutex_destroy(&st->lock);
	free(st->rec);
	free(st->dir);
	free(st);
}

int
state_save(struct state *st, const struct build_rec *r)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	maybe_rewrite(st);
	rc = append(st, rec_json(r));
	if (rc == 0) {
		if (put(st, r))
			st->stale++;	/* the replaced record's line */
	} else
		log_warnx("state: the build of %s is not recorded", r->unique);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int
state_load(struct state *st, const char *unique, struct build_rec *r)
{
	struct build_rec *have;

	pthread_mutex_lock(&st->lock);
	if ((have = find(st, unique)))
		*r = *have;
	pthread_mutex_unlock(&st->lock);
	return have ? 0 : -1;
}

void
state_remove(struct state *st, const char *unique)
{
	struct build_rec *have;

	pthread_mutex_lock(&st->lock);
	if ((have = find(st, unique))) {
		drop(st, have);
		maybe_rewrite(st);
		/* Not written (disk full): the rewrite at the next change leaves it out. */
		(void)append(st, json_pack("{s:s,s:b}", "unique", unique, "done", 1));
		st->stale += 2;
	}
	pthread_mutex_unlock(&st->lock);
}

struct build_rec *
state_list(struct state *st, size_t *n)
{
	struct build_rec *v;

	pthread_mutex_lock(&st->lock);
	*n = st->n;
	v = xreallocarray(NULL, st->n, sizeof(*v));
	if (st->n)
		memcpy(v, st->rec, st->n * sizeof(*v));
	pthread_mutex_unlock(&st->lock);
	return v;
}
