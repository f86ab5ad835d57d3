/*
 * gwconn: see gwconn.h. Framing (gearmand PROTOCOL): 4 bytes magic
 * ("\0REQ" to the server, "\0RES" from it), 4 bytes type, 4 bytes body
 * length, all big-endian; arguments separated by NUL, the last one not
 * terminated and allowed to contain NULs.
 */
#include "gwconn.h"

#include "clock.h"
#include "gnet.h"
#include "xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GW_MAGIC_REQ   0x00524551u   /* "\0REQ" */
#define GW_MAGIC_RES   0x00524553u   /* "\0RES" */
#define GW_HEADER      12
/* gw_send_each's writes: many small packets in one send (10,000 CAN_DOs in 10). */
#define GW_SEND_BATCH  65536
/* Room made in the read buffer before each recv: one socket buffer's worth. */
#define GW_READ_CHUNK  65536
/* The read buffer's cap: the largest packet read whole and one chunk beyond it. */
#define GW_BUF_MAX     (GW_MAX_BODY + GW_HEADER + GW_READ_CHUNK)
/* An oversize JOB_ASSIGN's handle, function and unique lie within this much of its body. */
#define GW_OVERSIZE_HEAD 4096

/*
 * Keepalive: probes after 30 s of silence, every 10 s, 3 unanswered ones
 * close the connection (about a minute); a write not acknowledged within
 * 60 s fails. gearmand does not tune keepalive on the sockets it accepts,
 * so our side does it.
 */
#define GW_KEEPIDLE         30
#define GW_KEEPINTVL        10
#define GW_KEEPCNT          3
#define GW_USER_TIMEOUT_MS  60000

struct gw_conn {
	struct gnet *net;   /* the stream: plain TCP or TLS */
	char   peer[300];
	char   err[512];
	char  *buf;         /* received bytes not yet consumed */
	size_t len, cap, used;   /* used: bytes of the last returned packet */
	size_t skip;        /* bytes of an oversize packet still to discard */
	char  *ohead;       /* that packet's leading arguments, NUL-terminated each */
	size_t ohead_len, oworkload;
	uint32_t otype;
	bool   ohead_given; /* returned: freed by the next gw_read */
	long long rx_at;    /* last byte received, or the connect (clk_now_ms) */
};

static const char *
type_names(uint32_t t)
{
	switch (t) {
	case GW_CAN_DO: return "CAN_DO";
	case GW_CANT_DO: return "CANT_DO";
	case GW_RESET_ABILITIES: return "RESET_ABILITIES";
	case GW_PRE_SLEEP: return "PRE_SLEEP";
	case GW_NOOP: return "NOOP";
	case GW_GRAB_JOB: return "GRAB_JOB";
	case GW_NO_JOB: return "NO_JOB";
	case GW_JOB_ASSIGN: return "JOB_ASSIGN";
	case GW_WORK_STATUS: return "WORK_STATUS";
	case GW_WORK_COMPLETE: return "WORK_COMPLETE";
	case GW_WORK_FAIL: return "WORK_FAIL";
	case GW_ECHO_REQ: return "ECHO_REQ";
	case GW_ECHO_RES: return "ECHO_RES";
	case GW_ERROR: return "ERROR";
	case GW_SET_CLIENT_ID: return "SET_CLIENT_ID";
	case GW_WORK_DATA: return "WORK_DATA";
	case GW_WORK_WARNING: return "WORK_WARNING";
	case GW_GRAB_JOB_UNIQ: return "GRAB_JOB_UNIQ";
	case GW_JOB_ASSIGN_UNIQ: return "JOB_ASSIGN_UNIQ";
	case GW_SUBMIT_JOB: return "SUBMIT_JOB";
	case GW_JOB_CREATED: return "JOB_CREATED";
	case GW_STATUS_RES: return "STATUS_RES";
	case GW_WORK_EXCEPTION: return "WORK_EXCEPTION";
	case GW_OPTION_REQ: return "OPTION_REQ";
	case GW_OPTION_RES: return "OPTION_RES";
	default: return "UNKNOWN";
	}
}

const char *
gw_type_name(uint32_t type)
{
	return type_names(type);
}

static void
put32(char *p, uint32_t v)
{
	v = htonl(v);
	memcpy(p, &v, 4);
}

static uint32_t
get32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return ntohl(v);
}

size_t
gw_encode(char *buf, size_t cap, uint32_t magic, uint32_t type,
    const char *const *args, const size_t *lens, int nargs)
{
	size_t body = 0, off = GW_HEADER;
	int i;

	for (i = 0; i < nargs; i++)
		body += lens[i] + (i + 1 < nargs ? 1 : 0);
	if (GW_HEADER + body > cap)
		return 0;
	put32(buf, magic);
	put32(buf + 4, type);
	put32(buf + 8, (uint32_t)body);
	for (i = 0; i < nargs; i++) {
		memcpy(buf + off, args[i], lens[i]);
		off += lens[i];
		if (i + 1 < nargs)
			buf[off++] = '\0';
	}
	return off;
}

/*
 * How many arguments a packet from the server carries, to a worker or to
 * a client (the WORK_* packets gearmand passes on from the job's worker).
 */
static int
server_argc(uint32_t type)
{
	switch (type) {
	case GW_NOOP:
	case GW_NO_JOB:
		return 0;
	case GW_ECHO_RES:
	case GW_JOB_CREATED:
	case GW_WORK_FAIL:
	case GW_OPTION_RES:
		return 1;
	case GW_ERROR:
	case GW_WORK_DATA:
	case GW_WORK_WARNING:
	case GW_WORK_COMPLETE:
	case GW_WORK_EXCEPTION:
		return 2;
	case GW_JOB_ASSIGN:
	case GW_WORK_STATUS:
		return 3;
	case GW_JOB_ASSIGN_UNIQ:
		return 4;
	case GW_STATUS_RES:
		return 5;
	default:
		return 1;
	}
}

long
gw_decode(const char *buf, size_t len, struct gw_packet *p, size_t max_body)
{
	uint32_t magic, body;
	const char *b, *end;
	int argc, i;

	if (len < GW_HEADER)
		return 0;
	magic = get32(buf);
	if (magic != GW_MAGIC_RES && magic != GW_MAGIC_REQ)
		return -1;
	body = get32(buf + 8);
	if (body > max_body)
		return -1;
	if (len < GW_HEADER + (size_t)body)
		return 0;
	memset(p, 0, sizeof(*p));
	p->type = get32(buf + 4);
	b = buf + GW_HEADER;
	end = b + body;
	argc = server_argc(p->type);
	for (i = 0; i < argc; i++) {
		const char *nul;

		if (i == argc - 1) {
			p->arg[i] = b;
			p->len[i] = (size_t)(end - b);
			break;
		}
		nul = memchr(b, '\0', (size_t)(end - b));
		if (!nul)
			return -1;
		p->arg[i] = b;
		p->len[i] = (size_t)(nul - b);
		b = nul + 1;
	}
	p->nargs = argc;
	if (argc == 0 && body != 0)
		return -1;
	return (long)(GW_HEADER + body);
}

/* Half-open connections (a vanished peer, a firewall's dropped state) are found by keepalive. */
static void
set_keepalive(int fd)
{
	int one = 1, idle = GW_KEEPIDLE, intvl = GW_KEEPINTVL, cnt = GW_KEEPCNT;
	unsigned int user = GW_USER_TIMEOUT_MS;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user, sizeof(user));
}

/* A TCP connection to host (brackets stripped) within timeout_ms: the fd, or -1 and err. */
static int
dial_tcp(const char *host, const char *h, int port, int timeout_ms, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL, *a;
	char portstr[16];
	int fd = -1, rc, one = 1;

	snprintf(portstr, sizeof(portstr), "%d", port);
	if ((rc = getaddrinfo(h, portstr, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s:%d: %s", host, port, gai_strerror(rc));
		return -1;
	}
	errno = ECONNREFUSED;
	for (a = ai; a; a = a->ai_next) {
		struct pollfd pfd;
		socklen_t sl = sizeof(rc);

		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			if (poll(&pfd, 1, timeout_ms) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &rc, &sl) == 0 && rc == 0)
				break;
			errno = rc ? rc : ETIMEDOUT;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(err, errlen, "cannot connect to gearmand at %s:%d: %s", host, port, strerror(errno));
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	set_keepalive(fd);
	return fd;
}

struct gnet *
gw_dial(const struct gnet_tls *tls, const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
	long long deadline = clk_now_ms() + timeout_ms;
	char h[256], why[400];
	size_t hl = strlen(host);
	struct gnet *g;
	int fd;

	/* Accept "[::1]" as well as "::1". */
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof(h)) {
		memcpy(h, host + 1, hl - 2);
		h[hl - 2] = '\0';
	} else
		snprintf(h, sizeof(h), "%s", host);
	if ((fd = dial_tcp(host, h, port, timeout_ms, err, errlen)) < 0)
		return NULL;
	/* The handshake has what is left of the connect's time: one bound for both. */
	if (!(g = gnet_open(fd, tls, h, (int)clk_left_ms(deadline), why, sizeof(why)))) {
		snprintf(err, errlen, "gearmand at %s:%d: %s; TLS is configured, so no plaintext is tried",
		    host, port, why);
		return NULL;
	}
	return g;
}

struct gw_conn *
gw_connect(const struct gnet_tls *tls, const char *host, int port, const char *id, int timeout_ms,
    char *err, size_t errlen)
{
	struct gw_conn *c;
	struct gnet *g = gw_dial(tls, host, port, timeout_ms, err, errlen);

	if (!g)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->net = g;
	c->rx_at = clk_now_ms();
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	if (id) {
		size_t l = strlen(id);
		if (gw_send(c, GW_SET_CLIENT_ID, &id, &l, 1) < 0) {
			snprintf(err, errlen, "%s", c->err);
			gw_close(c);
			return NULL;
		}
	}
	return c;
}

void
gw_close(struct gw_conn *c)
{
	if (!c)
		return;
	gnet_close(c->net);
	free(c->buf);
	free(c->ohead);
	free(c);
}

int
gw_fd(const struct gw_conn *c)
{
	return gnet_fd(c->net);
}

const char *
gw_peer(const struct gw_conn *c)
{
	return c->peer;
}

long
gw_quiet_ms(const struct gw_conn *c)
{
	return (long)(clk_now_ms() - c->rx_at);
}

const char *
gw_error(const struct gw_conn *c)
{
	return c->err;
}

static int
write_all(struct gw_conn *c, const char *p, size_t n)
{
	if (gnet_write_all(c->net, p, n, GW_WRITE_MS) == 0)
		return 0;
	snprintf(c->err, sizeof(c->err), "%s: %s", c->peer, gnet_error(c->net));
	return -1;
}

int
gw_send(struct gw_conn *c, enum gw_type type, const char *const *args, const size_t *lens, int nargs)
{
	char small[1024], *buf = small;
	size_t need = GW_HEADER, n;
	int i, rc;

	for (i = 0; i < nargs; i++)
		need += lens[i] + 1;
	if (need > sizeof(small))
		buf = xmalloc(need);
	n = gw_encode(buf, need, GW_MAGIC_REQ, type, args, lens, nargs);
	rc = write_all(c, buf, n);
	if (buf != small)
		free(buf);
	return rc;
}

static int
send1(struct gw_conn *c, enum gw_type t, const char *a)
{
	size_t l = strlen(a);

	return gw_send(c, t, &a, &l, 1);
}

int
gw_send_each(struct gw_conn *c, enum gw_type type, char *const *names, size_t n)
{
	char buf[GW_SEND_BATCH];
	size_t used = 0, i;

	for (i = 0; i < n; i++) {
		size_t l = strlen(names[i]);
		const char *a = names[i];

		if (GW_HEADER + l + 1 > sizeof(buf) - used) {
			if (used && write_all(c, buf, used) < 0)
				return -1;
			used = 0;
		}
		if (GW_HEADER + l + 1 > sizeof(buf)) {
			if (send1(c, type, a) < 0)
				return -1;
			continue;
		}
		used += gw_encode(buf + used, sizeof(buf) - used, GW_MAGIC_REQ, type, &a, &l, 1);
	}
	return used ? write_all(c, buf, used) : 0;
}

int gw_can_do(struct gw_conn *c, const char *f) { return send1(c, GW_CAN_DO, f); }
int gw_cant_do(struct gw_conn *c, const char *f) { return send1(c, GW_CANT_DO, f); }
int gw_grab(struct gw_conn *c) { return gw_send(c, GW_GRAB_JOB_UNIQ, NULL, NULL, 0); }
int gw_pre_sleep(struct gw_conn *c) { return gw_send(c, GW_PRE_SLEEP, NULL, NULL, 0); }
int gw_work_fail(struct gw_conn *c, const char *h) { return send1(c, GW_WORK_FAIL, h); }

static int
send_hd(struct gw_conn *c, enum gw_type t, const char *h, const char *d, size_t n)
{
	const char *args[2] = { h, d ? d : "" };
	size_t lens[2] = { strlen(h), d ? n : 0 };

	return gw_send(c, t, args, lens, 2);
}

int gw_work_data(struct gw_conn *c, const char *h, const char *d, size_t n) { return send_hd(c, GW_WORK_DATA, h, d, n); }
int gw_work_warning(struct gw_conn *c, const char *h, const char *d, size_t n) { return send_hd(c, GW_WORK_WARNING, h, d, n); }
int gw_work_complete(struct gw_conn *c, const char *h, const char *d, size_t n) { return send_hd(c, GW_WORK_COMPLETE, h, d, n); }

int
gw_work_status(struct gw_conn *c, const char *h, long long num, long long den)
{
	char a[32], b[32];
	const char *args[3] = { h, a, b };
	size_t lens[3];

	snprintf(a, sizeof(a), "%lld", num);
	snprintf(b, sizeof(b), "%lld", den);
	lens[0] = strlen(h);
	lens[1] = strlen(a);
	lens[2] = strlen(b);
	return gw_send(c, GW_WORK_STATUS, args, lens, 3);
}

/* Drop what has arrived of an oversize body. */
static void
skip_buffered(struct gw_conn *c)
{
	size_t n = c->skip < c->len ? c->skip : c->len;

	if (n == 0)
		return;
	memmove(c->buf, c->buf + n, c->len - n);
	c->len -= n;
	c->skip -= n;
}

/*
 * The buffer starts with a packet whose body is over GW_MAX_BODY. A
 * JOB_ASSIGN*'s leading arguments are kept once they are in, and the whole
 * packet is then skipped as it comes (c->skip); it is returned when the
 * last byte is gone, as gearmand 1.1.20 frees a job's workload when it gets
 * WORK_FAIL even while it is still sending it (its next send() fails with
 * EFAULT and it drops the connection). Closing the connection instead
 * would make gearmand hand the job out again, forever. 0: more is needed,
 * or skipping started. -1: another type, or no arguments where they belong.
 */
static int
take_oversize(struct gw_conn *c)
{
	uint32_t type = get32(c->buf + 4), body = get32(c->buf + 8);
	size_t have = c->len - GW_HEADER, off = 0;
	int argc = server_argc(type), i;

	if (have > GW_OVERSIZE_HEAD)
		have = GW_OVERSIZE_HEAD;
	if (get32(c->buf) != GW_MAGIC_RES || (type != GW_JOB_ASSIGN && type != GW_JOB_ASSIGN_UNIQ)) {
		snprintf(c->err, sizeof(c->err), "%s: %s packet of %u bytes is over the limit of %u bytes",
		    c->peer, type_names(type), body, GW_MAX_BODY);
		return -1;
	}
	for (i = 0; i < argc - 1; i++) {
		const char *nul = memchr(c->buf + GW_HEADER + off, '\0', have - off);

		if (!nul) {
			if (have < GW_OVERSIZE_HEAD)
				return 0;
			snprintf(c->err, sizeof(c->err), "%s: malformed packet from server", c->peer);
			return -1;
		}
		off = (size_t)(nul - (c->buf + GW_HEADER)) + 1;
	}
	c->ohead = xmalloc(off);
	memcpy(c->ohead, c->buf + GW_HEADER, off);
	c->ohead_len = off;
	c->otype = type;
	c->oworkload = body - off;
	c->skip = GW_HEADER + (size_t)body;
	return 0;
}

/* The skipped packet, from its kept arguments. */
static void
give_oversize(struct gw_conn *c, struct gw_packet *p)
{
	const char *b = c->ohead, *end = c->ohead + c->ohead_len;

	memset(p, 0, sizeof(*p));
	p->type = c->otype;
	while (b < end && p->nargs < 4) {
		p->arg[p->nargs] = b;
		p->len[p->nargs] = strlen(b);
		b += p->len[p->nargs++] + 1;
	}
	p->oversize = true;
	p->workload_len = c->oworkload;
	c->ohead_given = true;
}

/* Drop the packet gw_read returned last time: its arguments pointed into the buffer. */
static void
drop_returned(struct gw_conn *c)
{
	if (c->used) {
		memmove(c->buf, c->buf + c->used, c->len - c->used);
		c->len -= c->used;
		c->used = 0;
	}
	if (c->ohead_given) {
		free(c->ohead);
		c->ohead = NULL;
		c->ohead_given = false;
	}
}

/*
 * The next packet from what is buffered: 1 with *p filled, 0 if more must
 * come first, -1 (c->err) on a malformed or unwanted oversize packet.
 */
static int
take_buffered(struct gw_conn *c, struct gw_packet *p)
{
	long r;

	skip_buffered(c);
	if (c->ohead && !c->skip) {
		give_oversize(c, p);
		return 1;
	}
	if (c->skip || c->len == 0)
		return 0;
	if (c->len >= GW_HEADER && get32(c->buf + 8) > GW_MAX_BODY) {
		if (take_oversize(c) < 0)
			return -1;
		/* Skipping starts with what is buffered of it; it may all be there. */
		return c->skip ? take_buffered(c, p) : 0;
	}
	if ((r = gw_decode(c->buf, c->len, p, GW_MAX_BODY)) < 0) {
		snprintf(c->err, sizeof(c->err), "%s: malformed packet from server", c->peer);
		return -1;
	}
	if (r == 0)
		return 0;
	c->used = (size_t)r;
	if (p->type == GW_ERROR)
		snprintf(c->err, sizeof(c->err), "%s: server error %.*s: %.*s", c->peer,
		    (int)p->len[0], p->arg[0], (int)p->len[1], p->arg[1]);
	return 1;
}

/* Room for GW_READ_CHUNK more bytes, up to GW_BUF_MAX. -1 (c->err) when full. */
static int
make_room(struct gw_conn *c)
{
	size_t ncap;

	if (c->cap - c->len >= GW_READ_CHUNK)
		return 0;
	ncap = c->cap ? c->cap * 2 : GW_READ_CHUNK;
	if (ncap > GW_BUF_MAX)
		ncap = GW_BUF_MAX;
	if (ncap <= c->cap) {
		snprintf(c->err, sizeof(c->err), "%s: packet too large", c->peer);
		return -1;
	}
	c->buf = xrealloc(c->buf, ncap);
	c->cap = ncap;
	return 0;
}

/*
 * Receive what the stream has, waiting for it until deadline (clk_now_ms).
 * 1: look at the buffer again; 0: the deadline passed; -1 (c->err): the
 * connection is closed or broken.
 *
 * With TLS, what is left decrypted of a record (gnet_pending) is read too,
 * before this returns: so when gw_read returns 0 nothing waits inside TLS,
 * and the fd's readability is the whole truth for a caller that polls it
 * (wloop). Each read is at most one record (16 kB) past a chunk.
 */
static int
receive(struct gw_conn *c, long long deadline)
{
	long long left;
	ssize_t n;

	do {
		if (make_room(c) < 0)
			return -1;
		n = gnet_read(c->net, c->buf + c->len, c->cap - c->len);
		if (n > 0) {
			c->len += (size_t)n;
			c->rx_at = clk_now_ms();
		}
	} while (n > 0 && gnet_pending(c->net) > 0);
	if (n > 0)
		return 1;
	if (n == 0) {
		snprintf(c->err, sizeof(c->err), "%s: connection closed by gearmand", c->peer);
		return -1;
	}
	if (n == -1) {
		snprintf(c->err, sizeof(c->err), "%s: %s", c->peer, gnet_error(c->net));
		return -1;
	}
	/* GNET_WANT_READ, or GNET_WANT_WRITE: TLS must send (a key update) before it reads on. */
	if ((left = clk_left_ms(deadline)) <= 0 || !gnet_wait(c->net, n, (int)left))
		return 0;
	return 1;
}

bool
gw_tls_pending(const struct gw_conn *c)
{
	return gnet_pending(c->net) > 0;
}

int
gw_read(struct gw_conn *c, struct gw_packet *p, int timeout_ms)
{
	long long deadline = clk_now_ms() + timeout_ms;
	bool received = false;
	int r;

	drop_returned(c);
	for (;;) {
		if ((r = take_buffered(c, p)) != 0)
			return r;
		/*
		 * Bytes that keep coming (a big packet, or one skipped as
		 * oversize) do not stretch the wait: what arrived stays
		 * buffered for the next call.
		 */
		if (received && clk_left_ms(deadline) <= 0)
			return 0;
		if ((r = receive(c, deadline)) <= 0)
			return r;
		received = true;
	}
}

/* A NUL-terminated copy of s[0..n), which may hold NULs itself (a workload). */
static char *
dup_arg(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);

	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

int
gw_job_from_packet(const struct gw_packet *p, struct gw_job *job)
{
	int uniq = p->type == GW_JOB_ASSIGN_UNIQ;

	memset(job, 0, sizeof(*job));
	if ((p->type != GW_JOB_ASSIGN && !uniq) || p->oversize)
		return -1;
	job->handle = dup_arg(p->arg[0], p->len[0]);
	job->function = dup_arg(p->arg[1], p->len[1]);
	job->unique = uniq ? dup_arg(p->arg[2], p->len[2]) : dup_arg("", 0);
	job->workload = dup_arg(p->arg[uniq ? 3 : 2], p->len[uniq ? 3 : 2]);
	job->workload_len = p->len[uniq ? 3 : 2];
	return 0;
}

void
gw_job_free(struct gw_job *job)
{
	free(job->handle);
	free(job->function);
	free(job->unique);
	free(job->workload);
	memset(job, 0, sizeof(*job));
}
