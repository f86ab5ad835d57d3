/*
 * sign: Ed25519 signatures over a text, carried in a JSON envelope
 *   {"ed25519":"BASE64 SIGNATURE","signed":"THE TEXT, AS A JSON STRING"}
 * so that what is verified is exactly the bytes that were signed: the
 * text is taken out of the envelope as it is, never re-serialized.
 *
 * Cryptography is OpenSSL's (EVP_PKEY_ED25519). Keys are PEM files: the
 * private key (PKCS#8) is a secret (secret.h: 0600, owned by us or root);
 * the public key (SubjectPublicKeyInfo) may be read by anyone but must not
 * be writable by group or others (whoever could rewrite it could make us
 * trust their key). No policy about what is signed lives here.
 */
#ifndef JGA_SIGN_H
#define JGA_SIGN_H

#include <stdbool.h>
#include <stddef.h>

/* The files keygen writes in its directory. */
#define SIGN_PRIVATE_FILE "map.key"
#define SIGN_PUBLIC_FILE  "map.pub"

/* A private key can sign and verify; a public key can only verify. */
struct sign_key;

struct sign_key *sign_key_private(const char *path, char *err, size_t errlen);
struct sign_key *sign_key_public(const char *path, char *err, size_t errlen);
void             sign_key_free(struct sign_key *k);

/* The envelope of text[0..len) signed with k (a private key), malloc'd. */
char *sign_wrap(const struct sign_key *k, const char *text, size_t len);

/*
 * The signed text of env[0..len), malloc'd and NUL-terminated, its length
 * in *textlen, if its signature verifies with k; NULL with err saying why
 * otherwise: not an envelope (unsigned), a malformed signature, or a
 * signature that does not verify with this key.
 */
char *sign_open(const struct sign_key *k, const char *env, size_t len, size_t *textlen,
          char *err, size_t errlen);

/* The signed text of an envelope, NOT verified (for display); NULL if env is none. */
char *sign_peek(const char *env, size_t len);

/* A fresh random nonce, SIGN_NONCE_LEN hex digits (for a request a signed answer must echo). */
#define SIGN_NONCE_LEN 32
void sign_nonce(char out[SIGN_NONCE_LEN + 1]);

/*
 * Make a key pair in dir: SIGN_PRIVATE_FILE (mode 0600, created with
 * O_EXCL|O_NOFOLLOW) and SIGN_PUBLIC_FILE (0644). Neither may exist. -1
 * with err; a private key written before the public one failed is removed.
 */
int sign_keygen(const char *dir, char *err, size_t errlen);

#endif
