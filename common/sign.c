/*
 * sign: see sign.h.
 */
#include "sign.h"

#include "log.h"
#include "secret.h"
#include "xalloc.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A PEM Ed25519 key is about 120 bytes: anything much longer is not one. */
#define SIGN_KEY_FILE_MAX 4096
/* An Ed25519 signature, and its base64 (with "==" padding). */
#define SIG_LEN     64
#define SIG_B64_LEN 88

struct sign_key {
	EVP_PKEY *pkey;
	bool      private;
};

/* A PEM passphrase callback that has none: an encrypted key is refused, never prompted for. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return -1;
}

static struct sign_key *
key_from_pem(const char *pem, size_t len, bool private, const char *path, char *err, size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *pk;
	struct sign_key *k;

	if (!bio)
		fatalx("out of memory (BIO_new_mem_buf)");
	pk = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) :
	    PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	if (!pk) {
		snprintf(err, errlen, "'%s' is not a PEM %s key (make one with: jenkins-gearman-agent keygen)",
		    path, private ? "private" : "public");
		return NULL;
	}
	if (EVP_PKEY_id(pk) != EVP_PKEY_ED25519) {
		snprintf(err, errlen, "'%s' is a %s key, not Ed25519", path, OBJ_nid2sn(EVP_PKEY_id(pk)));
		EVP_PKEY_free(pk);
		return NULL;
	}
	k = xcalloc(1, sizeof(*k));
	k->pkey = pk;
	k->private = private;
	return k;
}

struct sign_key *
sign_key_private(const char *path, char *err, size_t errlen)
{
	struct sign_key *k;
	size_t len;
	char *pem = secret_read(path, SIGN_KEY_FILE_MAX, &len, err, errlen);

	if (!pem)
		return NULL;
	k = key_from_pem(pem, len, true, path, err, errlen);
	explicit_bzero(pem, len);
	free(pem);
	return k;
}

/* Why a public key file st may not be trusted, or NULL. */
static const char *
public_refusal(const struct stat *st, char *why, size_t whylen)
{
	if (!S_ISREG(st->st_mode))
		return "is not a regular file";
	if (st->st_uid != geteuid() && st->st_uid != 0) {
		snprintf(why, whylen, "is owned by uid %u, neither root nor this process (uid %u)",
		    (unsigned)st->st_uid, (unsigned)geteuid());
		return why;
	}
	if (st->st_mode & (S_IWGRP | S_IWOTH)) {
		snprintf(why, whylen, "may be written by group or others (mode %03o); run: chmod 644",
		    (unsigned)(st->st_mode & 0777));
		return why;
	}
	return NULL;
}

struct sign_key *
sign_key_public(const char *path, char *err, size_t errlen)
{
	char pem[SIGN_KEY_FILE_MAX + 1], why[160];
	const char *no;
	struct stat st;
	size_t n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open '%s': %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
		close(fd);
		return NULL;
	}
	if ((no = public_refusal(&st, why, sizeof(why)))) {
		snprintf(err, errlen, "'%s' %s", path, no);
		close(fd);
		return NULL;
	}
	while (n < sizeof(pem) && (r = read(fd, pem + n, sizeof(pem) - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
			close(fd);
			return NULL;
		}
		n += (size_t)r;
	}
	close(fd);
	if (n > SIGN_KEY_FILE_MAX) {
		snprintf(err, errlen, "'%s' is longer than %d bytes", path, SIGN_KEY_FILE_MAX);
		return NULL;
	}
	return key_from_pem(pem, n, false, path, err, errlen);
}

void
sign_key_free(struct sign_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

char *
sign_wrap(const struct sign_key *k, const char *text, size_t len)
{
	unsigned char sig[SIG_LEN], b64[SIG_B64_LEN + 1];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	json_t *env;
	char *out;

	if (!ctx)
		fatalx("out of memory (EVP_MD_CTX_new)");
	if (!k->private || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *)text, len) != 1 || siglen != SIG_LEN)
		fatalx("Ed25519 signing failed");
	EVP_MD_CTX_free(ctx);
	EVP_EncodeBlock(b64, sig, SIG_LEN);
	env = json_pack("{s:s,s:s%}", "ed25519", (const char *)b64, "signed", text, len);
	if (!env)
		fatalx("cannot make a signed envelope (text not UTF-8?)");
	out = json_dumps(env, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(env);
	if (!out)
		fatalx("out of memory (json_dumps)");
	return out;
}

/* env's two members, or NULL with err. The caller json_decref's the result. */
static json_t *
envelope_load(const char *env, size_t len, json_t **text, json_t **sig, char *err, size_t errlen)
{
	json_t *e = json_loadb(env, len, JSON_REJECT_DUPLICATES, NULL);

	if (!json_is_object(e) || json_object_size(e) != 2 ||
	    !json_is_string(*text = json_object_get(e, "signed")) ||
	    !json_is_string(*sig = json_object_get(e, "ed25519"))) {
		snprintf(err, errlen, "unsigned: not a signed envelope {\"ed25519\":..,\"signed\":..}");
		json_decref(e);
		return NULL;
	}
	return e;
}

/* The 64-byte signature in b64, or -1: exactly 88 base64 characters ending in "==". */
static int
sig_decode(const json_t *b64, unsigned char out[SIG_LEN + 2])
{
	const char *s = json_string_value(b64);

	if (json_string_length(b64) != SIG_B64_LEN || strlen(s) != SIG_B64_LEN ||
	    strcmp(s + SIG_B64_LEN - 2, "==") != 0)
		return -1;
	return EVP_DecodeBlock(out, (const unsigned char *)s, SIG_B64_LEN) == SIG_LEN + 2 ? 0 : -1;
}

char *
sign_open(const struct sign_key *k, const char *env, size_t len, size_t *textlen, char *err, size_t errlen)
{
	unsigned char sig[SIG_LEN + 2];
	json_t *e, *text, *b64;
	EVP_MD_CTX *ctx;
	char *out = NULL;
	int ok;

	if (!(e = envelope_load(env, len, &text, &b64, err, errlen)))
		return NULL;
	if (sig_decode(b64, sig) < 0) {
		snprintf(err, errlen, "bad signature: \"ed25519\" is not a base64 Ed25519 signature");
		json_decref(e);
		return NULL;
	}
	if (!(ctx = EVP_MD_CTX_new()))
		fatalx("out of memory (EVP_MD_CTX_new)");
	ok = EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k->pkey) == 1 &&
	    EVP_DigestVerify(ctx, sig, SIG_LEN, (const unsigned char *)json_string_value(text),
	    json_string_length(text)) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok)
		snprintf(err, errlen, "bad signature: not signed by the key this agent trusts");
	else {
		*textlen = json_string_length(text);
		out = xmalloc(*textlen + 1);
		memcpy(out, json_string_value(text), *textlen + 1);
	}
	json_decref(e);
	return out;
}

char *
sign_peek(const char *env, size_t len)
{
	char err[160], *out = NULL;
	json_t *e, *text, *b64;

	if ((e = envelope_load(env, len, &text, &b64, err, sizeof(err)))) {
		out = xstrdup(json_string_value(text));
		json_decref(e);
	}
	return out;
}

/* Write the PEM in bio to dir/name, created (O_EXCL, O_NOFOLLOW) with mode. */
static int
write_new(int dirfd, const char *dir, const char *name, mode_t mode, BIO *bio, char *err, size_t errlen)
{
	char *data;
	long n = BIO_get_mem_data(bio, &data);
	ssize_t w;
	int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

	if (fd < 0) {
		snprintf(err, errlen, "cannot create '%s/%s': %s", dir, name, strerror(errno));
		return -1;
	}
	/* The umask may have taken bits away; never added any: fchmod makes it exact. */
	while (n > 0 && (w = write(fd, data, (size_t)n)) != 0) {
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			break;
		data += w;
		n -= w;
	}
	if (n > 0 || fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write '%s/%s': %s", dir, name, strerror(errno));
		close(fd);
		unlinkat(dirfd, name, 0);
		return -1;
	}
	return close(fd);
}

int
sign_keygen(const char *dir, char *err, size_t errlen)
{
	EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	BIO *priv = BIO_new(BIO_s_mem()), *pub = BIO_new(BIO_s_mem());
	struct stat st;
	int dirfd = -1, rc = -1;

	if (!pk || !priv || !pub || PEM_write_bio_PrivateKey(priv, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_PUBKEY(pub, pk) != 1) {
		snprintf(err, errlen, "cannot make an Ed25519 key pair (OpenSSL)");
		goto out;
	}
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "cannot open directory '%s': %s", dir, strerror(errno));
		goto out;
	}
	if (fstatat(dirfd, SIGN_PUBLIC_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
		snprintf(err, errlen, "'%s/%s' exists; keygen never overwrites a key", dir, SIGN_PUBLIC_FILE);
		goto out;
	}
	if (write_new(dirfd, dir, SIGN_PRIVATE_FILE, 0600, priv, err, errlen) < 0)
		goto out;
	if (write_new(dirfd, dir, SIGN_PUBLIC_FILE, 0644, pub, err, errlen) < 0) {
		unlinkat(dirfd, SIGN_PRIVATE_FILE, 0);
		goto out;
	}
	rc = 0;
out:
	if (dirfd >= 0)
		close(dirfd);
	BIO_free(priv);
	BIO_free(pub);
	EVP_PKEY_free(pk);
	return rc;
}

void
sign_nonce(char out[SIGN_NONCE_LEN + 1])
{
	unsigned char r[SIGN_NONCE_LEN / 2];
	size_t i;

	if (RAND_bytes(r, sizeof(r)) != 1)
		fatalx("no random bytes for a nonce (OpenSSL RAND_bytes)");
	for (i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
}
