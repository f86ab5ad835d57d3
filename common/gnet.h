/*
 * gnet: one byte stream to one gearmand, plain TCP or TLS over it
 * (OpenSSL's libssl). gwconn and gadmin read and write through it.
 *
 * Why TLS here at all: gearmand has no authentication, Debian's gearmand
 * and libgearman are built without TLS (and then silently talk plaintext
 * when asked for it), and even a gearmand built with TLS never checks a
 * client certificate. A deployment that wants only known peers on its
 * bus puts a TLS proxy that requires and verifies client certificates
 * (stunnel4, haproxy) in front of a gearmand bound to loopback; our side
 * speaks TLS to that proxy.
 *
 * With a gnet_tls, a stream is TLS or nothing: a peer that does not
 * complete the handshake, or whose certificate does not verify against
 * the CA file and the host name (or IP address) we dialled, is refused;
 * there is never a plaintext fallback. TLS 1.2 is the oldest version
 * spoken; renegotiation is refused.
 *
 * Non-blocking: the fd is the caller's to poll, but TLS decrypts a whole
 * record at a time, so bytes may wait inside the TLS state while the fd
 * has nothing to read. A reader must read until GNET_WANT_READ before it
 * polls for more (gnet_pending tells what is left).
 *
 * Writes never raise SIGPIPE. One thread at a time per stream; a
 * gnet_tls may be shared by any number of streams and threads.
 */
#ifndef JGA_GNET_H
#define JGA_GNET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* gnet_read / gnet_write: nothing now; poll the fd for reading / writing, then call again. */
#define GNET_WANT_READ   (-2)
#define GNET_WANT_WRITE  (-3)

/* The longest private key file read (a 16384-bit RSA key in PEM is about 13 kB). */
#define GNET_KEY_MAX     (64u * 1024)

/* A client TLS configuration: CA, our certificate and key. */
struct gnet_tls;
struct gnet;

/*
 * Load the CA file (the server's certificate must chain to it), our
 * certificate (a PEM chain: ours first) and its private key, which is
 * read through secret_read (secret.h: a regular file only we or root own,
 * no group or other access) and wiped from memory once loaded. An
 * encrypted key is refused (no one is there to type a passphrase). NULL
 * and err naming the file and the problem.
 */
struct gnet_tls *gnet_tls_new(const char *ca_file, const char *cert_file, const char *key_file,
                     char *err, size_t errlen);
void             gnet_tls_free(struct gnet_tls *t);

/*
 * Take over fd, a connected non-blocking socket. With tls, complete the
 * TLS handshake as a client of host (a name, or an IPv4/IPv6 address in
 * text, verified against the certificate's names or addresses) within
 * timeout_ms. NULL and err on failure; fd is closed either way then.
 */
struct gnet *gnet_open(int fd, const struct gnet_tls *tls, const char *host, int timeout_ms,
                 char *err, size_t errlen);
/* Close the stream and its fd (a TLS close_notify is sent if it can go at once). */
void         gnet_close(struct gnet *g);
int          gnet_fd(const struct gnet *g);
bool         gnet_is_tls(const struct gnet *g);

/*
 * Up to len bytes: > 0 read, 0 the peer closed the stream, GNET_WANT_READ
 * or GNET_WANT_WRITE (poll for that, call again), -1 an error (gnet_error).
 */
ssize_t gnet_read(struct gnet *g, void *buf, size_t len);
/* Write up to len bytes (a partial write is possible): > 0 written, GNET_WANT_*, or -1. */
ssize_t gnet_write(struct gnet *g, const void *buf, size_t len);
/*
 * Write all of buf within timeout_ms, polling as the stream asks (a TLS
 * write may have to read first). 0, or -1 (gnet_error: "write timed out"
 * or why).
 */
int     gnet_write_all(struct gnet *g, const void *buf, size_t len, int timeout_ms);
/*
 * Wait up to timeout_ms for what rc (GNET_WANT_READ / GNET_WANT_WRITE)
 * asks. 1 ready (or the fd has an error or hang-up to report: call
 * again), 0 timed out.
 */
int     gnet_wait(const struct gnet *g, ssize_t rc, int timeout_ms);
/* Decrypted bytes held inside TLS that a read returns without the fd being readable. */
size_t  gnet_pending(const struct gnet *g);
/* Why the last call failed (valid until the next call on g). */
const char *gnet_error(const struct gnet *g);

#endif
