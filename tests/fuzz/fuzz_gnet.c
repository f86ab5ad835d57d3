/*
 * libFuzzer: the TLS-wrapped packet reader (common/gnet.c under
 * common/gwconn.c). A server thread on a loopback port plays gearmand;
 * the main thread connects with gw_connect and calls gw_read until it
 * returns 0 or -1, as wloop does. The first input byte picks the mode,
 * the second the write size; the rest is what the server sends:
 *
 *   0: over TLS, as application data, in records of the chosen size
 *      (packets split across records, records holding several packets,
 *      then close_notify or a bare close);
 *   1: the same over plain TCP (gnet's plain path, same reader);
 *   2: raw bytes where the TLS server should be: the handshake and the
 *      record layer against a hostile peer (gw_connect must fail cleanly).
 *
 * The server's certificate (P-256, self-signed for 127.0.0.1, also our
 * client certificate) is made once, in a temporary directory, at start.
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gnet.h"
#include "gwconn.h"

static SSL_CTX *server_ctx;
static struct gnet_tls *client_tls;
static int listen_fd, port;

struct serve {
	const uint8_t *data;
	size_t size, chunk;
	int mode;
	bool notify;
};

static void
die(const char *what)
{
	fprintf(stderr, "fuzz_gnet: %s\n", what);
	ERR_print_errors_fp(stderr);
	abort();
}

static void
write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!f || (key && !PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)) ||
	    (cert && !PEM_write_X509(f, cert)))
		die(path);
	fclose(f);
}

/* A self-signed certificate for 127.0.0.1: the server's, the CA, and our client certificate. */
static X509 *
make_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	    (const unsigned char *)"fuzz", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	if (!(ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1")))
		die("subjectAltName");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	if (!X509_sign(x, key, EVP_sha256()))
		die("sign");
	return x;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char dir[] = "/tmp/fuzz_gnet.XXXXXX", crt[64], key[64], err[600];
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	EVP_PKEY *pk;
	X509 *x;

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir) || !(pk = EVP_EC_gen("P-256")))
		die("setup");
	x = make_cert(pk);
	snprintf(crt, sizeof(crt), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	write_pem(crt, NULL, x);
	write_pem(key, pk, NULL);
	if (!(client_tls = gnet_tls_new(crt, crt, key, err, sizeof(err))))
		die(err);
	server_ctx = SSL_CTX_new(TLS_server_method());
	if (!server_ctx || SSL_CTX_use_certificate(server_ctx, x) != 1 ||
	    SSL_CTX_use_PrivateKey(server_ctx, pk) != 1)
		die("server context");
	/* The files were only for gnet_tls_new. */
	unlink(crt);
	unlink(key);
	rmdir(dir);
	X509_free(x);
	EVP_PKEY_free(pk);
	if ((listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(listen_fd, 16) < 0 ||
	    getsockname(listen_fd, (struct sockaddr *)&a, &al) < 0)
		die("listen");
	port = ntohs(a.sin_port);
	return 0;
}

/* Send s's bytes on fd (plain) or through ssl, s->chunk at a time. */
static void
serve_bytes(const struct serve *s, int fd, SSL *ssl)
{
	size_t off = 0;

	while (off < s->size) {
		size_t n = s->size - off < s->chunk ? s->size - off : s->chunk;
		int w = ssl ? SSL_write(ssl, s->data + off, (int)n) :
		    (int)send(fd, s->data + off, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;     /* the client gave up (a malformed packet): fine */
		off += (size_t)w;
	}
}

static void *
server(void *arg)
{
	const struct serve *s = arg;
	int fd = accept(listen_fd, NULL, NULL);
	SSL *ssl = NULL;

	if (fd < 0)
		return NULL;
	if (s->mode == 0) {
		ssl = SSL_new(server_ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1) {
			serve_bytes(s, fd, ssl);
			if (s->notify)
				SSL_shutdown(ssl);
		}
		SSL_free(ssl);
	} else
		serve_bytes(s, fd, NULL);
	shutdown(fd, SHUT_WR);
	close(fd);
	ERR_clear_error();
	return NULL;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct serve s;
	struct gw_conn *c;
	struct gw_packet p;
	pthread_t t;
	char err[600];
	int r;

	if (size < 2)
		return 0;
	s.mode = data[0] % 3;
	s.notify = data[0] & 0x80;
	s.chunk = 1 + (size_t)data[1] * 64;
	s.data = data + 2;
	s.size = size - 2;
	if (pthread_create(&t, NULL, server, &s) != 0)
		abort();
	c = gw_connect(s.mode == 1 ? NULL : client_tls, "127.0.0.1", port, NULL, 2000, err, sizeof(err));
	/* Every packet until the stream ends (-1) or stalls (0): as wloop's read_slot. */
	while (c && (r = gw_read(c, &p, 2000)) > 0) {
		struct gw_job job;

		if (gw_job_from_packet(&p, &job) == 0)
			gw_job_free(&job);
	}
	gw_close(c);
	pthread_join(t, NULL);
	return 0;
}
