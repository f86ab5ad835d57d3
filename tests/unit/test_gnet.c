/*
 * Unit tests for common/gnet.c, through gwconn and gadmin, against a
 * scripted TLS server on loopback (OpenSSL's server side, a certificate
 * made here for 127.0.0.1): packets that wait decrypted while the socket
 * is empty, no SIGPIPE from a TLS write to a peer that left, a handshake
 * bounded by the connect timeout, and what gnet_tls_new refuses.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "gadmin.h"
#include "gnet.h"
#include "gwconn.h"

/* What the server does once the client connected. */
enum act {
	SEND_THREE,     /* TLS: three packets in one record, then wait for the client to leave */
	LEAVE,          /* TLS: handshake, then close at once */
	NO_TLS,         /* accept, say nothing, wait for the client to leave */
	ADMIN,          /* TLS: answer one admin command line with a list */
};

struct server {
	int       lfd, port;
	enum act  act;
	pthread_t thread;
};

static char dir[] = "/tmp/test_gnet.XXXXXX";
static char ca[80], key[80], openkey[80], enckey[80], otherkey[80];
static SSL_CTX *sctx;

static void
write_file(const char *path, mode_t mode, EVP_PKEY *k, X509 *x, const EVP_CIPHER *enc)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	FILE *f = fdopen(fd, "w");

	assert_non_null(f);
	if (k)
		assert_int_equal(PEM_write_PrivateKey(f, k, enc, enc ? (unsigned char *)"pw" : NULL,
		    enc ? 2 : 0, NULL, NULL), 1);
	if (x)
		assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	chmod(path, mode);
}

/* A self-signed certificate for 127.0.0.1: the server's, the CA, and the client's. */
static X509 *
make_cert(EVP_PKEY *k)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"test_gnet", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, k, EVP_sha256());
	return x;
}

static int
setup(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256"), *other = EVP_EC_gen("P-256");
	X509 *x;

	(void)state;
	assert_non_null(mkdtemp(dir));
	x = make_cert(k);
	snprintf(ca, sizeof(ca), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	snprintf(openkey, sizeof(openkey), "%s/open.pem", dir);
	snprintf(enckey, sizeof(enckey), "%s/enc.pem", dir);
	snprintf(otherkey, sizeof(otherkey), "%s/other.pem", dir);
	write_file(ca, 0644, NULL, x, NULL);
	write_file(key, 0600, k, NULL, NULL);
	write_file(openkey, 0644, k, NULL, NULL);
	write_file(enckey, 0600, k, NULL, EVP_aes_128_cbc());
	write_file(otherkey, 0600, other, NULL, NULL);
	sctx = SSL_CTX_new(TLS_server_method());
	assert_int_equal(SSL_CTX_use_certificate(sctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, k), 1);
	X509_free(x);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(ca);
	unlink(key);
	unlink(openkey);
	unlink(enckey);
	unlink(otherkey);
	rmdir(dir);
	SSL_CTX_free(sctx);
	return 0;
}

/* Until the client closes (or 10 s). */
static void
drain(int fd, SSL *ssl)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char b[4096];

	while (poll(&p, 1, 10000) == 1 && (ssl ? SSL_read(ssl, b, sizeof(b)) : read(fd, b, sizeof(b))) > 0)
		;
}

static void *
serve(void *arg)
{
	struct server *s = arg;
	int fd = accept(s->lfd, NULL, NULL);
	SSL *ssl;

	if (fd < 0)
		return NULL;
	if (s->act == NO_TLS) {
		drain(fd, NULL);
		close(fd);
		return NULL;
	}
	ssl = SSL_new(sctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) == 1) {
		if (s->act == SEND_THREE) {
			static const char three[] =
			    "\0RES\0\0\0\x06\0\0\0\0" "\0RES\0\0\0\x0a\0\0\0\0" "\0RES\0\0\0\x11\0\0\0\x03" "abc";
			SSL_write(ssl, three, sizeof(three) - 1);
			drain(fd, ssl);
		} else if (s->act == ADMIN) {
			char line[64];
			SSL_read(ssl, line, sizeof(line));
			static const char list[] = "H:x:1\t0\t0\t0\n.\n";
			SSL_write(ssl, list, sizeof(list) - 1);
			drain(fd, ssl);
		} else
			SSL_shutdown(ssl);
	}
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void
server_start(struct server *s, enum act act)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->act = act;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s->lfd >= 0);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 4), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void
server_stop(struct server *s)
{
	pthread_join(s->thread, NULL);
	close(s->lfd);
}

static struct gnet_tls *
client_tls(void)
{
	char err[600];
	struct gnet_tls *t = gnet_tls_new(ca, ca, key, err, sizeof(err));

	if (!t)
		fail_msg("gnet_tls_new: %s", err);
	return t;
}

/*
 * Three packets in one TLS record: the first gw_read takes the record
 * whole, so the other two are returned with nothing left on the socket,
 * and then gw_read says 0 with nothing waiting inside TLS: what wloop's
 * read-until-0-then-poll relies on.
 */
static void
test_record_with_several_packets(void **state)
{
	struct gnet_tls *tls = client_tls();
	struct server s;
	struct gw_conn *c;
	struct gw_packet p;
	struct pollfd pfd;
	char err[600];

	(void)state;
	server_start(&s, SEND_THREE);
	c = gw_connect(tls, "127.0.0.1", s.port, NULL, 5000, err, sizeof(err));
	if (!c)
		fail_msg("gw_connect: %s", err);
	assert_int_equal(gw_read(c, &p, 5000), 1);
	assert_int_equal(p.type, GW_NOOP);
	pfd = (struct pollfd){ gw_fd(c), POLLIN, 0 };
	assert_int_equal(poll(&pfd, 1, 100), 0);        /* the socket has nothing more */
	assert_int_equal(gw_read(c, &p, 0), 1);
	assert_int_equal(p.type, GW_NO_JOB);
	assert_int_equal(gw_read(c, &p, 0), 1);
	assert_int_equal(p.type, GW_ECHO_RES);
	assert_int_equal(p.len[0], 3);
	assert_memory_equal(p.arg[0], "abc", 3);
	assert_int_equal(gw_read(c, &p, 0), 0);
	assert_false(gw_tls_pending(c));
	gw_close(c);
	server_stop(&s);
	gnet_tls_free(tls);
}

/* A TLS write to a peer that left fails; it does not kill the process with SIGPIPE. */
static void
test_write_after_peer_left_no_sigpipe(void **state)
{
	struct gnet_tls *tls = client_tls();
	void (*old)(int) = signal(SIGPIPE, SIG_DFL);
	struct server s;
	struct gw_conn *c;
	struct gw_packet p;
	char err[600];
	int i, rc = 0;

	(void)state;
	server_start(&s, LEAVE);
	c = gw_connect(tls, "127.0.0.1", s.port, NULL, 5000, err, sizeof(err));
	if (!c)
		fail_msg("gw_connect: %s", err);
	server_stop(&s);
	/* The first writes may still go into the socket buffer; the peer's RST ends them. */
	for (i = 0; i < 50 && rc == 0; i++) {
		rc = gw_can_do(c, "build:x");
		usleep(10000);
	}
	assert_int_equal(rc, -1);
	assert_int_equal(gw_read(c, &p, 100), -1);
	gw_close(c);
	signal(SIGPIPE, old);
	gnet_tls_free(tls);
}

/* A peer that accepts TCP and never speaks TLS: gw_connect gives up within its timeout. */
static void
test_handshake_bounded_by_connect_timeout(void **state)
{
	struct gnet_tls *tls = client_tls();
	struct server s;
	char err[600];
	long long t0;

	(void)state;
	server_start(&s, NO_TLS);
	t0 = clk_now_ms();
	assert_null(gw_connect(tls, "127.0.0.1", s.port, NULL, 300, err, sizeof(err)));
	assert_true(clk_now_ms() - t0 < 2000);
	if (!strstr(err, "TLS handshake: no answer within") || !strstr(err, "no plaintext is tried"))
		fail_msg("error: %s", err);
	server_stop(&s);
	gnet_tls_free(tls);
}

/* gadmin over TLS: the command goes, the list comes back. */
static void
test_admin_over_tls(void **state)
{
	struct gnet_tls *tls = client_tls();
	struct server s;
	char err[600], *text;

	(void)state;
	server_start(&s, ADMIN);
	text = gadmin_ask(tls, "127.0.0.1", s.port, "show jobs", 5000, err, sizeof(err));
	if (!text)
		fail_msg("gadmin_ask: %s", err);
	assert_string_equal(text, "H:x:1\t0\t0\t0\n.\n");
	free(text);
	server_stop(&s);
	gnet_tls_free(tls);
}

static void
refused(const char *cafile, const char *cert, const char *k, const char *want)
{
	char err[600];
	struct gnet_tls *t = gnet_tls_new(cafile, cert, k, err, sizeof(err));

	assert_null(t);
	if (!strstr(err, want))
		fail_msg("error '%s' lacks '%s'", err, want);
}

static void
test_tls_new_refusals(void **state)
{
	(void)state;
	refused("/nonexistent/ca.pem", ca, key, "cannot load the CA certificates in '/nonexistent/ca.pem'");
	refused(ca, "/nonexistent/cert.pem", key, "cannot load the certificate in '/nonexistent/cert.pem'");
	refused(ca, ca, openkey, "chmod 600");
	refused(ca, ca, enckey, "holds no unencrypted PEM private key");
	refused(ca, ca, otherkey, "does not belong to the certificate");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_with_several_packets),
		cmocka_unit_test(test_write_after_peer_left_no_sigpipe),
		cmocka_unit_test(test_handshake_bounded_by_connect_timeout),
		cmocka_unit_test(test_admin_over_tls),
		cmocka_unit_test(test_tls_new_refusals),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
