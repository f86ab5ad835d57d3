/*
 * gnet: see gnet.h. TLS is OpenSSL's; here only its setup, and the glue
 * between its non-blocking calls and our fd.
 */
#include "gnet.h"

#include "clock.h"
#include "secret.h"
#include "xalloc.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct gnet_tls {
	SSL_CTX    *ctx;
	BIO_METHOD *bio;    /* our socket BIO (bio_write: no SIGPIPE) */
};

struct gnet {
	int   fd;
	SSL  *ssl;          /* NULL: plain TCP */
	bool  failed;       /* a fatal TLS error: no close_notify then */
	char  err[300];
};

/* ---- a socket BIO whose writes never raise SIGPIPE ---- */

/*
 * OpenSSL's socket BIO writes with write(2): a peer that closed would
 * kill a process that did not ignore SIGPIPE (the CLI). Ours sends with
 * MSG_NOSIGNAL, as gwconn always did. The fd is the BIO's data.
 */
static int
bio_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b);
}

static bool
retryable(void)
{
	return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

static int
bio_write(BIO *b, const char *buf, int len)
{
	ssize_t n = send(bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 && retryable())
		BIO_set_retry_write(b);
	return (int)n;
}

static int
bio_read(BIO *b, char *buf, int len)
{
	ssize_t n = recv(bio_fd(b), buf, (size_t)len, 0);

	BIO_clear_retry_flags(b);
	if (n < 0 && retryable())
		BIO_set_retry_read(b);
	return (int)n;
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;   /* nothing is buffered here */
}

static int
bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static BIO_METHOD *
bio_method(void)
{
	int type = BIO_get_new_index();
	BIO_METHOD *m;

	if (type < 0 || !(m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "gnet socket")))
		return NULL;
	BIO_meth_set_write(m, bio_write);
	BIO_meth_set_read(m, bio_read);
	BIO_meth_set_ctrl(m, bio_ctrl);
	BIO_meth_set_create(m, bio_create);
	return m;
}

/* ---- the client configuration ---- */

/* The first reason in OpenSSL's error queue, which is then emptied. */
static const char *
ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (r)
		snprintf(buf, len, "%s", r);
	else if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
	return buf;
}

/* An encrypted key would prompt on a terminal: there is none, and no one to type. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/*
 * The private key, read as a secret and loaded from memory; the copy is
 * wiped. The certificate is loaded first: the key is checked against it.
 */
static int
tls_load_key(SSL_CTX *ctx, const char *key_file, const char *cert_file, char *err, size_t errlen)
{
	char why[200], *pem;
	size_t len;
	EVP_PKEY *pk = NULL;
	BIO *mem;
	int ok = 0;

	if (!(pem = secret_read(key_file, GNET_KEY_MAX, &len, err, errlen)))
		return -1;
	if ((mem = BIO_new_mem_buf(pem, (int)len))) {
		pk = PEM_read_bio_PrivateKey(mem, NULL, no_passphrase, NULL);
		BIO_free(mem);
	}
	explicit_bzero(pem, len);
	free(pem);
	if (!pk)
		snprintf(err, errlen, "'%s' holds no unencrypted PEM private key: %s", key_file,
		    ssl_reason(why, sizeof(why)));
	else if (SSL_CTX_use_PrivateKey(ctx, pk) != 1) {
		unsigned long e = ERR_peek_error();

		if (ERR_GET_LIB(e) == ERR_LIB_X509 && (ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH ||
		    ERR_GET_REASON(e) == X509_R_KEY_TYPE_MISMATCH)) {
			snprintf(err, errlen, "the private key in '%s' does not belong to the certificate in '%s'",
			    key_file, cert_file);
			ERR_clear_error();
		} else
			snprintf(err, errlen, "cannot use the private key in '%s': %s", key_file,
			    ssl_reason(why, sizeof(why)));
	} else
		ok = 1;
	EVP_PKEY_free(pk);
	return ok ? 0 : -1;
}

/* The verification and protocol settings, then the three files. */
static int
tls_setup(SSL_CTX *ctx, const char *ca_file, const char *cert_file, const char *key_file,
    char *err, size_t errlen)
{
	char why[200];

	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* A server-initiated renegotiation could read during a write, behind the caller's poll. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
	/* Partial writes as send(2) has them; the buffer of a retried write may move. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		snprintf(err, errlen, "cannot load the CA certificates in '%s': %s", ca_file,
		    ssl_reason(why, sizeof(why)));
		return -1;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		snprintf(err, errlen, "cannot load the certificate in '%s': %s", cert_file,
		    ssl_reason(why, sizeof(why)));
		return -1;
	}
	if (tls_load_key(ctx, key_file, cert_file, err, errlen) < 0)
		return -1;
	if (SSL_CTX_check_private_key(ctx) != 1) {
		snprintf(err, errlen, "the private key in '%s' does not belong to the certificate in '%s'",
		    key_file, cert_file);
		ERR_clear_error();
		return -1;
	}
	return 0;
}

struct gnet_tls *
gnet_tls_new(const char *ca_file, const char *cert_file, const char *key_file, char *err, size_t errlen)
{
	struct gnet_tls *t = xcalloc(1, sizeof(*t));
	char why[200];

	if (!(t->ctx = SSL_CTX_new(TLS_client_method())) || !(t->bio = bio_method())) {
		snprintf(err, errlen, "cannot set up TLS: %s", ssl_reason(why, sizeof(why)));
		gnet_tls_free(t);
		return NULL;
	}
	if (tls_setup(t->ctx, ca_file, cert_file, key_file, err, errlen) < 0) {
		gnet_tls_free(t);
		return NULL;
	}
	return t;
}

void
gnet_tls_free(struct gnet_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	if (t->bio)
		BIO_meth_free(t->bio);
	free(t);
}

/* ---- one stream ---- */

/* Is reason the peer saying it will not have our certificate? */
static bool
cert_refused(int reason)
{
	switch (reason) {
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
		return true;
	default:
		return false;
	}
}

/*
 * g->err from a failed TLS call (ret its return value): what OpenSSL says,
 * with what the user can act on. 0 when it was the peer closing, else -1.
 */
static int
tls_fail(struct gnet *g, int ret, const char *what)
{
	int e = SSL_get_error(g->ssl, ret), saved = errno;
	unsigned long code = ERR_peek_error();
	long vr = SSL_get_verify_result(g->ssl);
	char why[200];

	g->failed = true;
	if (e == SSL_ERROR_ZERO_RETURN ||
	    (e == SSL_ERROR_SYSCALL && !code && saved == 0) ||
	    (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		ERR_clear_error();
		snprintf(g->err, sizeof(g->err), "%s: the peer closed the connection", what);
		return 0;
	}
	if (e == SSL_ERROR_SYSCALL && !code) {
		snprintf(g->err, sizeof(g->err), "%s: %s", what, strerror(saved));
		return -1;
	}
	if (vr != X509_V_OK) {
		ERR_clear_error();
		snprintf(g->err, sizeof(g->err), "%s: the server's certificate does not verify: %s",
		    what, X509_verify_cert_error_string(vr));
	} else if (ERR_GET_LIB(code) == ERR_LIB_SSL && cert_refused(ERR_GET_REASON(code)))
		snprintf(g->err, sizeof(g->err), "%s: the server refused our client certificate (%s)",
		    what, ssl_reason(why, sizeof(why)));
	else
		snprintf(g->err, sizeof(g->err), "%s: %s", what, ssl_reason(why, sizeof(why)));
	return -1;
}

int
gnet_wait(const struct gnet *g, ssize_t rc, int timeout_ms)
{
	struct pollfd p = { g->fd, rc == GNET_WANT_WRITE ? POLLOUT : POLLIN, 0 };
	int r;

	if (timeout_ms < 0)
		timeout_ms = 0;
	r = poll(&p, 1, timeout_ms);
	return r != 0;      /* -1 (EINTR): let the caller look again */
}

/* The peer's name or address the certificate must carry. */
static int
tls_expect(SSL *ssl, const char *host)
{
	unsigned char ip[16];

	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -1;
	if (SSL_set1_host(ssl, host) != 1)
		return -1;
	/* SNI: a proxy serving several names picks its certificate by it. */
	return SSL_set_tlsext_host_name(ssl, host) == 1 ? 0 : -1;
}

/* The client handshake within timeout_ms: 0, or -1 with g->err. */
static int
tls_handshake(struct gnet *g, const struct gnet_tls *tls, const char *host, int timeout_ms)
{
	long long deadline = clk_now_ms() + timeout_ms;
	char why[200];
	BIO *b;

	if (!(g->ssl = SSL_new(tls->ctx)) || !(b = BIO_new(tls->bio))) {
		snprintf(g->err, sizeof(g->err), "TLS setup: %s", ssl_reason(why, sizeof(why)));
		return -1;
	}
	BIO_set_data(b, (void *)(intptr_t)g->fd);
	SSL_set_bio(g->ssl, b, b);
	if (tls_expect(g->ssl, host) < 0) {
		snprintf(g->err, sizeof(g->err), "TLS setup for '%s': %s", host, ssl_reason(why, sizeof(why)));
		return -1;
	}
	for (;;) {
		int r, e;

		ERR_clear_error();
		errno = 0;
		if ((r = SSL_connect(g->ssl)) == 1)
			return 0;
		e = SSL_get_error(g->ssl, r);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			if (tls_fail(g, r, "TLS handshake") == 0)
				snprintf(g->err, sizeof(g->err), "TLS handshake: the peer closed the connection "
				    "(a plaintext port? gearmand itself speaks no TLS)");
			return -1;
		}
		if (clk_passed(deadline) ||
		    !gnet_wait(g, e == SSL_ERROR_WANT_READ ? GNET_WANT_READ : GNET_WANT_WRITE,
		        (int)clk_left_ms(deadline))) {
			g->failed = true;
			snprintf(g->err, sizeof(g->err), "TLS handshake: no answer within %d ms "
			    "(is it a TLS port?)", timeout_ms);
			return -1;
		}
	}
}

struct gnet *
gnet_open(int fd, const struct gnet_tls *tls, const char *host, int timeout_ms, char *err, size_t errlen)
{
	struct gnet *g = xcalloc(1, sizeof(*g));

	g->fd = fd;
	if (tls && tls_handshake(g, tls, host, timeout_ms) < 0) {
		snprintf(err, errlen, "%s", g->err);
		gnet_close(g);
		return NULL;
	}
	return g;
}

void
gnet_close(struct gnet *g)
{
	if (!g)
		return;
	if (g->ssl) {
		/* One try at close_notify; never waited for, and never after a fatal error. */
		if (!g->failed && SSL_is_init_finished(g->ssl))
			SSL_shutdown(g->ssl);
		SSL_free(g->ssl);
		ERR_clear_error();
	}
	close(g->fd);
	free(g);
}

int
gnet_fd(const struct gnet *g)
{
	return g->fd;
}

bool
gnet_is_tls(const struct gnet *g)
{
	return g->ssl != NULL;
}

const char *
gnet_error(const struct gnet *g)
{
	return g->err;
}

size_t
gnet_pending(const struct gnet *g)
{
	int n = g->ssl ? SSL_pending(g->ssl) : 0;

	return n > 0 ? (size_t)n : 0;
}

/*
 * A write failed because the peer left. With TLS 1.3 a proxy judges our
 * certificate after our side of the handshake is done, so its refusal (an
 * alert, then a close) is often first met by a write, as a bare "connection
 * reset". The alert may still wait on the socket: read it for the reason.
 */
static void
tls_why_gone(struct gnet *g)
{
	char b[1], save[sizeof(g->err)];
	int r;

	snprintf(save, sizeof(save), "%s", g->err);
	ERR_clear_error();
	errno = 0;
	if ((r = SSL_read(g->ssl, b, sizeof(b))) <= 0 && SSL_get_error(g->ssl, r) == SSL_ERROR_SSL &&
	    ERR_GET_LIB(ERR_peek_error()) == ERR_LIB_SSL && cert_refused(ERR_GET_REASON(ERR_peek_error()))) {
		tls_fail(g, r, "TLS write");
		return;
	}
	ERR_clear_error();
	snprintf(g->err, sizeof(g->err), "%s", save);
}

/* A plain socket's call: n, or GNET_WANT_* / -1 (g->err). */
static ssize_t
plain_result(struct gnet *g, ssize_t n, ssize_t want, const char *what)
{
	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return want;
	snprintf(g->err, sizeof(g->err), "%s: %s", what, strerror(errno));
	return -1;
}

/* A TLS call's: n > 0, or GNET_WANT_*, 0 (closed) or -1 (g->err). */
static ssize_t
tls_result(struct gnet *g, int n, const char *what)
{
	if (n > 0)
		return n;
	switch (SSL_get_error(g->ssl, n)) {
	case SSL_ERROR_WANT_READ:
		return GNET_WANT_READ;
	case SSL_ERROR_WANT_WRITE:
		return GNET_WANT_WRITE;
	default:
		return tls_fail(g, n, what);
	}
}

ssize_t
gnet_read(struct gnet *g, void *buf, size_t len)
{
	if (len > INT_MAX)
		len = INT_MAX;
	if (!g->ssl) {
		ssize_t n = recv(g->fd, buf, len, 0);

		if (n == 0)
			snprintf(g->err, sizeof(g->err), "the peer closed the connection");
		return plain_result(g, n, GNET_WANT_READ, "read");
	}
	ERR_clear_error();
	errno = 0;
	return tls_result(g, SSL_read(g->ssl, buf, (int)len), "TLS read");
}

ssize_t
gnet_write(struct gnet *g, const void *buf, size_t len)
{
	ssize_t n;

	if (len > INT_MAX)
		len = INT_MAX;
	if (!g->ssl)
		return plain_result(g, send(g->fd, buf, len, MSG_NOSIGNAL), GNET_WANT_WRITE, "write");
	ERR_clear_error();
	errno = 0;
	n = tls_result(g, SSL_write(g->ssl, buf, (int)len), "TLS write");
	if (n == 0) {
		/* SSL_write never returns 0 bytes written: it is the peer gone. */
		snprintf(g->err, sizeof(g->err), "TLS write: the peer closed the connection");
		n = -1;
	}
	if (n == -1)
		tls_why_gone(g);
	return n;
}

int
gnet_write_all(struct gnet *g, const void *buf, size_t len, int timeout_ms)
{
	long long deadline = clk_now_ms() + timeout_ms;
	const char *p = buf;

	while (len > 0) {
		ssize_t w = gnet_write(g, p, len);

		if (w > 0) {
			p += w;
			len -= (size_t)w;
			continue;
		}
		if (w == -1)
			return -1;
		if (clk_passed(deadline) || !gnet_wait(g, w, (int)clk_left_ms(deadline))) {
			snprintf(g->err, sizeof(g->err), "write timed out");
			return -1;
		}
	}
	return 0;
}
