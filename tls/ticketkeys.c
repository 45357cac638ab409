/* tls/ticketkeys.c - server session ticket keys that survive restarts and rotate.
 * SPDX-License-Identifier: ISC
 * ctx.c creates one set for all local domains and attaches it to every server context
 * (wolfSSL_CTX_set_TicketEncCb). Tickets are sealed with ChaCha20-Poly1305 under the
 * current key and opened with the current or the previous one (by key name). The keys
 * live in a small checksummed file (0600), rewritten atomically under a lock file when
 * the current key is older than the rotation interval; a file rewritten by another node
 * serving the same domain is reloaded, so several nodes can share it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "../core/log.h"
#include "tls_int.h"

#define TK_MAGIC       "QFTK"
#define TK_VERSION     1u
#define TK_HDR         16
#define TK_KEYLEN      32
#define TK_REC         (WOLFSSL_TICKET_NAME_SZ + TK_KEYLEN + 8)
#define TK_SUM         WC_SHA256_DIGEST_SIZE
#define TK_OBJ_MAGIC   0x51544b53u  /* "QTKS" */

struct ticket_key {
	unsigned char name[WOLFSSL_TICKET_NAME_SZ];
	unsigned char key[TK_KEYLEN];
	int64_t       created;
};

struct tls_ticketkeys {
	unsigned          magic;
	char             *path;       /* owned; NULL = memory only */
	time_t            rotation;   /* seconds */
	struct ticket_key cur, prev;
	bool              have_prev;
	struct timespec   mtime;      /* of the file we last read or wrote */
	ino_t             ino;
	WC_RNG            rng;
};

static int tk_generate(struct tls_ticketkeys *, struct ticket_key *, time_t);
static int tk_load(struct tls_ticketkeys *, bool);
static int tk_save(struct tls_ticketkeys *);
static bool tk_changed(const struct tls_ticketkeys *);
static int tk_lock(const struct tls_ticketkeys *);
static void tk_unlock(int);
static int ticket_cb(WOLFSSL *, unsigned char[WOLFSSL_TICKET_NAME_SZ],
    unsigned char[WOLFSSL_TICKET_IV_SZ], unsigned char[WOLFSSL_TICKET_MAC_SZ], int,
    unsigned char *, int, int *, void *);

static int
tk_generate(struct tls_ticketkeys *tk, struct ticket_key *k, time_t now)
{
	if (wc_RNG_GenerateBlock(&tk->rng, k->name, sizeof(k->name)) != 0 ||
	    wc_RNG_GenerateBlock(&tk->rng, k->key, sizeof(k->key)) != 0) {
		log_warnx("tls tickets reason=rng-failed");
		return -1;
	}
	k->created = (int64_t)now;
	return 0;
}

static void
rec_put(unsigned char *p, const struct ticket_key *k)
{
	uint64_t c = (uint64_t)k->created;

	memcpy(p, k->name, WOLFSSL_TICKET_NAME_SZ);
	memcpy(p + WOLFSSL_TICKET_NAME_SZ, k->key, TK_KEYLEN);
	for (int i = 0; i < 8; i++)
		p[WOLFSSL_TICKET_NAME_SZ + TK_KEYLEN + i] = (unsigned char)(c >> (56 - 8 * i));
}

static void
rec_get(const unsigned char *p, struct ticket_key *k)
{
	uint64_t c = 0;

	memcpy(k->name, p, WOLFSSL_TICKET_NAME_SZ);
	memcpy(k->key, p + WOLFSSL_TICKET_NAME_SZ, TK_KEYLEN);
	for (int i = 0; i < 8; i++)
		c = c << 8 | p[WOLFSSL_TICKET_NAME_SZ + TK_KEYLEN + i];
	k->created = (int64_t)c;
}

/* Has the file been replaced or modified since we read or wrote it? */
static bool
tk_changed(const struct tls_ticketkeys *tk)
{
	struct stat sb;

	if (tk->path == NULL || stat(tk->path, &sb) == -1)
		return false;
	return sb.st_ino != tk->ino || sb.st_mtim.tv_sec != tk->mtime.tv_sec ||
	    sb.st_mtim.tv_nsec != tk->mtime.tv_nsec;
}

/* Read the key file. Returns 0 (keys replaced), 1 (no file), -1 (bad file, logged;
 * the keys in memory are kept). quiet: do not log a missing file. */
static int
tk_load(struct tls_ticketkeys *tk, bool quiet)
{
	unsigned char buf[TK_HDR + 2 * TK_REC + TK_SUM + 1], sum[TK_SUM];
	struct stat sb;
	uint32_t n;
	ssize_t r;
	int fd;

	if ((fd = open(tk->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno == ENOENT)
			return 1;
		log_warn("tls ticket_keys=%s reason=open-failed", tk->path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 077) != 0) {
		log_warnx("tls ticket_keys=%s reason=foreign-or-not-owner-only-file (ignored)",
		    tk->path);
		close(fd);
		return -1;
	}
	r = read(fd, buf, sizeof(buf));
	close(fd);
	tk->ino = sb.st_ino;
	tk->mtime = sb.st_mtim;
	if (r < TK_HDR || memcmp(buf, TK_MAGIC, 4) != 0) {
		log_warnx("tls ticket_keys=%s reason=bad-header (ignored, new keys)", tk->path);
		return -1;
	}
	if ((buf[4] << 24 | buf[5] << 16 | buf[6] << 8 | buf[7]) != (int)TK_VERSION) {
		log_warnx("tls ticket_keys=%s reason=unknown-version (ignored, new keys)",
		    tk->path);
		return -1;
	}
	n = (uint32_t)buf[8] << 24 | (uint32_t)buf[9] << 16 | (uint32_t)buf[10] << 8 | buf[11];
	if (n < 1 || n > 2 || r != (ssize_t)(TK_HDR + n * TK_REC + TK_SUM)) {
		log_warnx("tls ticket_keys=%s reason=bad-length (ignored, new keys)", tk->path);
		return -1;
	}
	if (wc_Sha256Hash(buf, TK_HDR + n * TK_REC, sum) != 0 ||
	    memcmp(sum, buf + TK_HDR + n * TK_REC, TK_SUM) != 0) {
		log_warnx("tls ticket_keys=%s reason=checksum-mismatch (ignored, new keys)",
		    tk->path);
		return -1;
	}
	rec_get(buf + TK_HDR, &tk->cur);
	tk->have_prev = n == 2;
	if (tk->have_prev)
		rec_get(buf + TK_HDR + TK_REC, &tk->prev);
	memset(buf, 0, sizeof(buf));
	log_debug("tls ticket_keys=%s loaded keys=%u", tk->path, (unsigned)n);
	return 0;
}

static int
tk_save(struct tls_ticketkeys *tk)
{
	unsigned char buf[TK_HDR + 2 * TK_REC + TK_SUM];
	uint32_t n = tk->have_prev ? 2 : 1;
	size_t len = TK_HDR + n * TK_REC;
	struct stat sb;
	int rc;

	if (tk->path == NULL)
		return 0;
	memset(buf, 0, sizeof(buf));
	memcpy(buf, TK_MAGIC, 4);
	buf[7] = TK_VERSION;
	buf[11] = (unsigned char)n;
	rec_put(buf + TK_HDR, &tk->cur);
	if (tk->have_prev)
		rec_put(buf + TK_HDR + TK_REC, &tk->prev);
	if (wc_Sha256Hash(buf, (word32)len, buf + len) != 0)
		return -1;
	rc = tls_file_write_atomic(tk->path, buf, len + TK_SUM);
	memset(buf, 0, sizeof(buf));
	if (rc == 0 && stat(tk->path, &sb) == 0) {
		tk->ino = sb.st_ino;
		tk->mtime = sb.st_mtim;
	}
	return rc;
}

/* An exclusive lock shared by the nodes using the key file, or -1 (no lock). */
static int
tk_lock(const struct tls_ticketkeys *tk)
{
	char lp[4200];
	int fd;

	if (tk->path == NULL ||
	    snprintf(lp, sizeof(lp), "%s.lock", tk->path) >= (int)sizeof(lp))
		return -1;
	if ((fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return -1;
	if (flock(fd, LOCK_EX) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
tk_unlock(int fd)
{
	if (fd != -1)
		close(fd);
}

struct tls_ticketkeys *
tls_ticketkeys_new(const char *path, time_t rotation_s)
{
	struct tls_ticketkeys *tk;
	time_t now = time(NULL);
	int lk, rc = 1;

	if ((tk = calloc(1, sizeof(*tk))) == NULL)
		return NULL;
	tk->magic = TK_OBJ_MAGIC;
	tk->rotation = rotation_s > 0 ? rotation_s : 12 * 3600;
	if (wc_InitRng(&tk->rng) != 0) {
		free(tk);
		return NULL;
	}
	if (path != NULL && (tk->path = strdup(path)) == NULL)
		goto fail;
	lk = tk_lock(tk);
	if (tk->path != NULL)
		rc = tk_load(tk, false);
	if (rc != 0) {
		if (tk_generate(tk, &tk->cur, now) == -1) {
			tk_unlock(lk);
			goto fail;
		}
		tk->have_prev = false;
		if (tk->path != NULL && tk_save(tk) == 0)
			log_info("tls ticket_keys=%s created", tk->path);
	}
	tk_unlock(lk);
	(void)tls_ticketkeys_maybe_rotate(tk, now);
	return tk;
fail:
	tls_ticketkeys_free(tk);
	return NULL;
}

void
tls_ticketkeys_free(struct tls_ticketkeys *tk)
{
	if (tk == NULL)
		return;
	wc_FreeRng(&tk->rng);
	free(tk->path);
	memset(tk, 0, sizeof(*tk));
	free(tk);
}

int
tls_ticketkeys_maybe_rotate(struct tls_ticketkeys *tk, time_t now)
{
	int lk;

	if (tk_changed(tk))
		(void)tk_load(tk, true);
	if ((int64_t)now - tk->cur.created < (int64_t)tk->rotation)
		return 0;
	lk = tk_lock(tk);
	/* another node may have rotated while we waited */
	if (tk_changed(tk))
		(void)tk_load(tk, true);
	if ((int64_t)now - tk->cur.created < (int64_t)tk->rotation) {
		tk_unlock(lk);
		return 0;
	}
	tk->prev = tk->cur;
	tk->have_prev = true;
	if (tk_generate(tk, &tk->cur, now) == -1) {
		tk->cur = tk->prev;
		tk->have_prev = false;
		tk_unlock(lk);
		return 0;
	}
	(void)tk_save(tk);
	tk_unlock(lk);
	log_info("tls ticket_keys=%s rotated", tk->path != NULL ? tk->path : "(memory)");
	return 1;
}

long
tls_ticketkeys_age(const struct tls_ticketkeys *tk, time_t now)
{
	return tk != NULL ? (long)((int64_t)now - tk->cur.created) : -1;
}

/* wolfSSL's ticket callback: enc = 1 seals ticket in place under the current key,
 * enc = 0 opens it with the key named key_name. */
static int
ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
    unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
    int enc, unsigned char *ticket, int inLen, int *outLen, void *arg)
{
	struct tls_ticketkeys *tk = arg;
	unsigned char aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 2];
	const struct ticket_key *k;
	bool old = false;

	if (tk == NULL || tk->magic != TK_OBJ_MAGIC || inLen < 0 || inLen > 0xffff) {
		log_warnx("tls tickets reason=bad-callback-context");
		return WOLFSSL_TICKET_RET_REJECT;
	}
	if (enc) {
		(void)tls_ticketkeys_maybe_rotate(tk, time(NULL));
		k = &tk->cur;
		memcpy(key_name, k->name, WOLFSSL_TICKET_NAME_SZ);
		if (wc_RNG_GenerateBlock(&tk->rng, iv, WOLFSSL_TICKET_IV_SZ) != 0)
			return WOLFSSL_TICKET_RET_REJECT;
	} else {
		if (memcmp(key_name, tk->cur.name, WOLFSSL_TICKET_NAME_SZ) != 0 &&
		    (!tk->have_prev ||
		    memcmp(key_name, tk->prev.name, WOLFSSL_TICKET_NAME_SZ) != 0) &&
		    tk_changed(tk))
			(void)tk_load(tk, true);  /* another node's newer key? */
		if (memcmp(key_name, tk->cur.name, WOLFSSL_TICKET_NAME_SZ) == 0) {
			k = &tk->cur;
		} else if (tk->have_prev &&
		    memcmp(key_name, tk->prev.name, WOLFSSL_TICKET_NAME_SZ) == 0) {
			k = &tk->prev;
			old = true;
		} else {
			log_debug("tls tickets reason=unknown-key-name (full handshake)");
			return WOLFSSL_TICKET_RET_REJECT;
		}
	}
	memcpy(aad, key_name, WOLFSSL_TICKET_NAME_SZ);
	memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
	aad[sizeof(aad) - 2] = (unsigned char)(inLen >> 8);
	aad[sizeof(aad) - 1] = (unsigned char)inLen;
	if (enc) {
		if (wc_ChaCha20Poly1305_Encrypt(k->key, iv, aad, sizeof(aad), ticket,
		    (word32)inLen, ticket, mac) != 0)
			return WOLFSSL_TICKET_RET_REJECT;
	} else {
		if (wc_ChaCha20Poly1305_Decrypt(k->key, iv, aad, sizeof(aad), ticket,
		    (word32)inLen, mac, ticket) != 0) {
			log_debug("tls tickets reason=ticket-authentication-failed");
			return WOLFSSL_TICKET_RET_REJECT;
		}
	}
	*outLen = inLen;
	return old ? WOLFSSL_TICKET_RET_CREATE : WOLFSSL_TICKET_RET_OK;
}

int
tls_ticketkeys_attach(struct tls_ticketkeys *tk, WOLFSSL_CTX *wc, unsigned lifetime_s)
{
	if (wolfSSL_CTX_set_TicketEncCb(wc, ticket_cb) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_TicketEncCtx(wc, tk) != WOLFSSL_SUCCESS ||
	    wolfSSL_CTX_set_TicketHint(wc, (int)lifetime_s) != WOLFSSL_SUCCESS) {
		log_warnx("tls tickets reason=cannot-install-ticket-callback");
		return -1;
	}
	/* returns the previous timeout with the OpenSSL compatibility layer */
	(void)wolfSSL_CTX_set_timeout(wc, lifetime_s);
	return 0;
}
