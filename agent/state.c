/* state: see state.h. A record is a small JSON file named after the hex of its unique id. */
#include "state.h"

#include "log.h"

#include <jansson.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
rec_path(const char *dir, const char *unique, char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t len = (size_t)snprintf(out, n, "%s/build-", dir), i;

	for (i = 0; unique[i] && len + 3 < n; i++) {
		out[len++] = hex[(unsigned char)unique[i] >> 4];
		out[len++] = hex[(unsigned char)unique[i] & 15];
	}
	snprintf(out + len, n - len, ".json");
}

int
state_open(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "[node] state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		snprintf(err, errlen, "[node] state_dir %s: not writable: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int
state_save(const char *dir, const struct build_rec *r)
{
	char path[2048], tmp[2100], *text;
	json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:i,s:I}", "unique", r->unique, "function", r->function,
	    "job", r->job, "queue_id", (json_int_t)r->queue_id, "number", r->number, "time", (json_int_t)r->time);
	ssize_t len;
	int fd, rc = -1;

	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!text)
		return -1;
	rec_path(dir, r->unique, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd >= 0) {
		len = (ssize_t)strlen(text);
		/* Written, not synced: see state.h. */
		if (write(fd, text, (size_t)len) == len && close(fd) == 0) {
			fd = -1;
			rc = rename(tmp, path);
		}
		if (fd >= 0)
			close(fd);
	}
	if (rc < 0) {
		log_warn("state: cannot record build of %s in %s", r->unique, dir);
		unlink(tmp);
	}
	free(text);
	return rc;
}

static int
parse(const char *path, struct build_rec *r)
{
	json_t *o = json_load_file(path, 0, NULL);
	const char *u = json_string_value(json_object_get(o, "unique"));
	const char *f = json_string_value(json_object_get(o, "function"));
	const char *j = json_string_value(json_object_get(o, "job"));

	memset(r, 0, sizeof(*r));
	if (!u || !f || !j) {
		json_decref(o);
		return -1;
	}
	snprintf(r->unique, sizeof(r->unique), "%s", u);
	snprintf(r->function, sizeof(r->function), "%s", f);
	snprintf(r->job, sizeof(r->job), "%s", j);
	r->queue_id = (long)json_integer_value(json_object_get(o, "queue_id"));
	r->number = (int)json_integer_value(json_object_get(o, "number"));
	r->time = (time_t)json_integer_value(json_object_get(o, "time"));
	json_decref(o);
	return 0;
}

int
state_load(const char *dir, const char *unique, struct build_rec *r)
{
	char path[2048];

	rec_path(dir, unique, path, sizeof(path));
	if (access(path, F_OK) < 0 || parse(path, r) < 0 || strcmp(r->unique, unique) != 0)
		return -1;
	return 0;
}

void
state_remove(const char *dir, const char *unique)
{
	char path[2048];

	rec_path(dir, unique, path, sizeof(path));
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("state: cannot remove %s", path);
}

struct build_rec *
state_list(const char *dir, size_t *n)
{
	struct build_rec *v = NULL, r;
	struct dirent *de;
	size_t cap = 0;
	DIR *d = opendir(dir);

	*n = 0;
	while (d && (de = readdir(d))) {
		char path[2048];
		size_t l = strlen(de->d_name);

		if (strncmp(de->d_name, "build-", 6) != 0 || l < 5 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (parse(path, &r) < 0)
			continue;
		if (*n == cap) {
			struct build_rec *nv = realloc(v, (cap = cap ? cap * 2 : 8) * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		v[(*n)++] = r;
	}
	if (d)
		closedir(d);
	return v;
}
