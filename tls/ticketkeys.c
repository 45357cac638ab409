/* tls/ticketkeys.c - server session ticket keys that survive restarts and rotate.
 * SPDX-License-Identifier: ISC
 * ctx.c creates one set for all local domains and attaches it to every server context
 * (wolfSSL_CTX_set_TicketEncCb). Tickets are sealed with ChaCha20-Poly1305 under the
 * current key and opened with the current or the previous one (by key name). The keys
 * live in a small checksummed file (0600), rewritten atomically under a lock file when
 * the current key is older than the rotation interval; a file rewritten by another node
 * serving the same domain is reloaded, so several nodes can share it. Stateless tickets
 * carry no certificate, and without one a resumed peer could not use SASL EXTERNAL: so
 * every ticket also seals, in the room wolfSSL leaves after its own ticket body, the
 * identity the client proved at its full handshake (the hash of its certificate chain
 * and when it was proved); the chain itself is kept by ticketpeers.c under that hash.
 * A ticket naming a chain this node cannot find, or proved too long ago, is refused
 * (full handshake, where the client shows its certificate again): a resumption never
 * authenticates less, or more, than the full handshake it descends from. The chain is
 * re-verified (PKIX, names) on every use. */
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

#include "../core/bytes.h"
#include "../core/log.h"
#include "tls_int.h"

#define TK_MAGIC       "QFTK"
#define TK_VERSION     1u
#define TK_HDR         16
#define TK_KEYLEN      32
#define TK_REC         (WOLFSSL_TICKET_NAME_SZ + TK_KEYLEN + 8)
#define TK_SUM         WC_SHA256_DIGEST_SIZE
#define TK_OBJ_MAGIC   0x51544b53u  /* "QTKS" */
#define TI_LEN         32           /* the sealed identity trailer: */
#define TI_MAGIC0      'Q'          /*  [0..1] "QI" */
#define TI_MAGIC1      'I'
#define TI_VERSION     1            /*  [2] version */
#define TI_PRESENT     0x01         /*  [3] flags; [4..7] proved (u32 s); [8..31] hash */
#define TK_FUTURE_MAX  (366 * 86400LL) /* creation times further ahead are corrupt */
#define TK_SKEW        300             /* clock skew tolerated between nodes, seconds */

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
	unsigned          lifetime;   /* ticket lifetime (s), from attach */
	struct tls_ticketpeers *peers; /* chains named by tickets, owned */
};

static int tk_generate(struct tls_ticketkeys *, struct ticket_key *, time_t);
static int tk_load(struct tls_ticketkeys *, bool);
static int tk_save(struct tls_ticketkeys *);
static bool tk_changed(const struct tls_ticketkeys *);
static int tk_lock(const struct tls_ticketkeys *);
static void tk_unlock(int);
static struct tls_session *ti_session(WOLFSSL *);
static void ti_of_session(struct tls_ticketkeys *, WOLFSSL *,
    struct tls_ticket_ident *);
static int ti_attach(struct tls_ticketkeys *, WOLFSSL *, const struct tls_ticket_ident *);
static const struct ticket_key *key_named(struct tls_ticketkeys *,
    const unsigned char *, bool *);
static void ticket_aad(unsigned char *, const unsigned char *, const unsigned char *, int);
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
	if (get_u32(buf + 4) != TK_VERSION) {
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
	{
		/* decode into locals and check the creation times before trusting them: a
		 * huge one would overflow the age (a merely future one is handled by
		 * tls_ticketkeys_maybe_rotate, which rotates it away) */
		struct ticket_key cur, prev;
		int64_t now = (int64_t)time(NULL);
		bool bad;

		memset(&prev, 0, sizeof(prev));
		rec_get(buf + TK_HDR, &cur);
		if (n == 2)
			rec_get(buf + TK_HDR + TK_REC, &prev);
		memset(buf, 0, sizeof(buf));
		bad = cur.created < 0 || cur.created > now + TK_FUTURE_MAX ||
		    (n == 2 && (prev.created < 0 || prev.created > now + TK_FUTURE_MAX));
		if (!bad) {
			tk->cur = cur;
			tk->have_prev = n == 2;
			if (tk->have_prev)
				tk->prev = prev;
		}
		memset(&cur, 0, sizeof(cur));
		memset(&prev, 0, sizeof(prev));
		if (bad) {
			log_warnx("tls ticket_keys=%s reason=bad-creation-time (ignored, new keys)",
			    tk->path);
			return -1;
		}
	}
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
	if ((tk->peers = tls_ticketpeers_new(path)) == NULL)
		goto fail;
	tk->lifetime = 300;
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
	tls_ticketpeers_free(tk->peers);
	memset(tk, 0, sizeof(*tk));
	free(tk);
}

/* The current key is older than the rotation interval, or claims to be from the future
 * beyond a little clock skew between nodes (it would never rotate otherwise). */
static bool
key_due(const struct tls_ticketkeys *tk, time_t now)
{
	int64_t age = (int64_t)now - tk->cur.created;

	return age < -TK_SKEW || age >= (int64_t)tk->rotation;
}

int
tls_ticketkeys_maybe_rotate(struct tls_ticketkeys *tk, time_t now)
{
	int lk;

	if (tk_changed(tk))
		(void)tk_load(tk, true);
	if (!key_due(tk, now))
		return 0;
	lk = tk_lock(tk);
	/* another node may have rotated while we waited */
	if (tk_changed(tk))
		(void)tk_load(tk, true);
	if (!key_due(tk, now)) {
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

/* The key named key_name (current or previous, reloading the file once when another
 * node may have rotated), or NULL. *old: it is the previous key. */
static const struct ticket_key *
key_named(struct tls_ticketkeys *tk, const unsigned char *key_name, bool *old)
{
	*old = false;
	if (memcmp(key_name, tk->cur.name, WOLFSSL_TICKET_NAME_SZ) != 0 &&
	    (!tk->have_prev ||
	    memcmp(key_name, tk->prev.name, WOLFSSL_TICKET_NAME_SZ) != 0) &&
	    tk_changed(tk))
		(void)tk_load(tk, true);  /* another node's newer key? */
	if (memcmp(key_name, tk->cur.name, WOLFSSL_TICKET_NAME_SZ) == 0)
		return &tk->cur;
	if (tk->have_prev && memcmp(key_name, tk->prev.name, WOLFSSL_TICKET_NAME_SZ) == 0) {
		*old = true;
		return &tk->prev;
	}
	return NULL;
}

/* Associated data of a sealed ticket: key name, IV, sealed length. */
static void
ticket_aad(unsigned char *aad, const unsigned char *key_name, const unsigned char *iv,
    int len)
{
	memcpy(aad, key_name, WOLFSSL_TICKET_NAME_SZ);
	memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
	aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ] = (unsigned char)(len >> 8);
	aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 1] = (unsigned char)len;
}

int
tls_ticketkeys_seal(struct tls_ticketkeys *tk, const struct tls_ticket_ident *id,
    unsigned char *key_name, unsigned char *iv, unsigned char *mac,
    unsigned char *ticket, int len, int room, int *out_len)
{
	unsigned char aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 2];
	const struct ticket_key *k;

	if (tk == NULL || tk->magic != TK_OBJ_MAGIC || len < 0 || room < len ||
	    room > 0xffff) {
		log_warnx("tls tickets reason=bad-callback-context");
		return WOLFSSL_TICKET_RET_REJECT;
	}
	(void)tls_ticketkeys_maybe_rotate(tk, time(NULL));
	k = &tk->cur;
	memcpy(key_name, k->name, WOLFSSL_TICKET_NAME_SZ);
	if (wc_RNG_GenerateBlock(&tk->rng, iv, WOLFSSL_TICKET_IV_SZ) != 0)
		return WOLFSSL_TICKET_RET_REJECT;
	if (room - len >= TI_LEN) {
		unsigned char *t = ticket + len;
		uint32_t p = id->present ? (uint32_t)id->proved : 0;

		memset(t, 0, TI_LEN);
		t[0] = TI_MAGIC0;
		t[1] = TI_MAGIC1;
		t[2] = TI_VERSION;
		t[3] = id->present ? TI_PRESENT : 0;
		t[4] = (unsigned char)(p >> 24);
		t[5] = (unsigned char)(p >> 16);
		t[6] = (unsigned char)(p >> 8);
		t[7] = (unsigned char)p;
		if (id->present)
			memcpy(t + 8, id->hash, TLS_IDENT_HASH);
		len += TI_LEN;
	} else if (id->present) {
		/* another wolfSSL build with less room: the ticket carries no identity */
		log_debug("tls tickets reason=no-room-for-peer-identity (resumes without it)");
	}
	ticket_aad(aad, key_name, iv, len);
	if (wc_ChaCha20Poly1305_Encrypt(k->key, iv, aad, sizeof(aad), ticket, (word32)len,
	    ticket, mac) != 0)
		return WOLFSSL_TICKET_RET_REJECT;
	*out_len = len;
	return WOLFSSL_TICKET_RET_OK;
}

int
tls_ticketkeys_open(struct tls_ticketkeys *tk, const unsigned char *key_name,
    const unsigned char *iv, const unsigned char *mac, unsigned char *ticket, int len,
    int *out_len, struct tls_ticket_ident *id)
{
	unsigned char aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ + 2];
	const struct ticket_key *k;
	const unsigned char *t;
	bool old;

	memset(id, 0, sizeof(*id));
	if (tk == NULL || tk->magic != TK_OBJ_MAGIC || len < 0 || len > 0xffff) {
		log_warnx("tls tickets reason=bad-callback-context");
		return WOLFSSL_TICKET_RET_REJECT;
	}
	if ((k = key_named(tk, key_name, &old)) == NULL) {
		log_debug("tls tickets reason=unknown-key-name (full handshake)");
		return WOLFSSL_TICKET_RET_REJECT;
	}
	ticket_aad(aad, key_name, iv, len);
	if (wc_ChaCha20Poly1305_Decrypt(k->key, iv, aad, sizeof(aad), ticket, (word32)len,
	    mac, ticket) != 0) {
		log_debug("tls tickets reason=ticket-authentication-failed (full handshake)");
		return WOLFSSL_TICKET_RET_REJECT;
	}
	*out_len = len;
	t = ticket + len - TI_LEN;
	if (len <= TI_LEN || t[0] != TI_MAGIC0 || t[1] != TI_MAGIC1 || t[2] != TI_VERSION ||
	    (t[3] & ~TI_PRESENT) != 0)
		return old ? WOLFSSL_TICKET_RET_CREATE : WOLFSSL_TICKET_RET_OK; /* none */
	*out_len = len - TI_LEN;
	if (t[3] & TI_PRESENT) {
		int64_t now = (int64_t)time(NULL);
		uint32_t age = (uint32_t)now - get_u32(t + 4);   /* modulo 2^32 */

		id->present = true;
		id->proved = now - (int64_t)age;
		memcpy(id->hash, t + 8, TLS_IDENT_HASH);
		if ((int64_t)age > (int64_t)tk->lifetime + (int64_t)tk->rotation) {
			log_info("tls tickets reason=peer-identity-proved-too-long-ago age=%us "
			    "(full handshake)", (unsigned)age);
			return WOLFSSL_TICKET_RET_REJECT;
		}
	}
	return old ? WOLFSSL_TICKET_RET_CREATE : WOLFSSL_TICKET_RET_OK;
}

/* wolfSSL's ticket callback: enc = 1 seals ticket in place under the current key
 * (*outLen holds the room on entry), enc = 0 opens it with the key named key_name. */
static int
ticket_cb(WOLFSSL *ssl, unsigned char key_name[WOLFSSL_TICKET_NAME_SZ],
    unsigned char iv[WOLFSSL_TICKET_IV_SZ], unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
    int enc, unsigned char *ticket, int inLen, int *outLen, void *arg)
{
	struct tls_ticketkeys *tk = arg;
	struct tls_ticket_ident id;
	int rc;

	if (tk == NULL || tk->magic != TK_OBJ_MAGIC) {
		log_warnx("tls tickets reason=bad-callback-context");
		return WOLFSSL_TICKET_RET_REJECT;
	}
	if (enc) {
		ti_of_session(tk, ssl, &id);
		return tls_ticketkeys_seal(tk, &id, key_name, iv, mac, ticket, inLen,
		    *outLen, outLen);
	}
	rc = tls_ticketkeys_open(tk, key_name, iv, mac, ticket, inLen, outLen, &id);
	if (rc == WOLFSSL_TICKET_RET_REJECT || !id.present)
		return rc;
	return ti_attach(tk, ssl, &id) == 0 ? rc : WOLFSSL_TICKET_RET_REJECT;
}

/* --- peer identities sealed in tickets ------------------------------------------ */

/* The session behind ssl (our memory-I/O context), or NULL. */
static struct tls_session *
ti_session(WOLFSSL *ssl)
{
	struct tls_session *s = ssl != NULL ? wolfSSL_GetIOReadCtx(ssl) : NULL;

	return s != NULL && s->magic == TLS_SESSION_MAGIC && s->ssl == ssl ? s : NULL;
}

/* A ticket is being sealed: the identity it will carry. The chain the client presented
 * in this handshake (proved now, by its CertificateVerify), or on a resumed session
 * the identity its own ticket carried (same chain, same proof time); none without a
 * client certificate. The chain is kept by ticketpeers.c (memory and file). */
static void
ti_of_session(struct tls_ticketkeys *tk, WOLFSSL *ssl, struct tls_ticket_ident *id)
{
	struct tls_session *s = ti_session(ssl);
	WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(ssl);
	unsigned char hash[WC_SHA256_DIGEST_SIZE];
	int64_t now = (int64_t)time(NULL);
	int nc = chain != NULL ? wolfSSL_get_chain_count(chain) : 0;
	struct tls_chain c;
	size_t off = 0;

	memset(id, 0, sizeof(*id));
	c.n = 0;
	if (nc > 0 && wolfSSL_session_reused(ssl) != 1) {
		for (int i = 0; i < nc && c.n < TLS_CHAIN_MAX; i++) {
			unsigned char *der = wolfSSL_get_chain_cert(chain, i);
			int len = wolfSSL_get_chain_length(chain, i);

			if (der == NULL || len <= 0)
				break;
			c.der[c.n] = der;
			c.len[c.n++] = (size_t)len;
		}
		id->proved = now;
	} else if (s != NULL && s->tchain_n > 0 && s->tproved > 0) {
		for (size_t i = 0; i < s->tchain_n; off += s->tchain_len[i], i++) {
			c.der[c.n] = s->tchain + off;
			c.len[c.n++] = s->tchain_len[i];
		}
		id->proved = s->tproved;
	}
	if (c.n == 0)
		return;                 /* no client certificate: nothing to bind */
	/* keep the chain as long as the ticket can be opened (a failed write only costs
	 * other nodes a full handshake; the hash is sealed all the same) */
	if (tls_ticketpeers_put(tk->peers, &c, now, (int64_t)tk->lifetime, hash) == -1 &&
	    tls_chain_hash(&c, hash) == -1)
		return;
	memcpy(id->hash, hash, TLS_IDENT_HASH);
	id->present = true;
}

/* A ticket carrying identity id was opened: give the session its chain. -1 when this
 * node does not have the chain (the ticket is then refused). */
static int
ti_attach(struct tls_ticketkeys *tk, WOLFSSL *ssl, const struct tls_ticket_ident *id)
{
	struct tls_session *s = ti_session(ssl);
	struct tls_chain c;
	size_t total = 0;

	if (tls_ticketpeers_get(tk->peers, id->hash, TLS_IDENT_HASH, &c) == -1) {
		log_info("tls tickets reason=peer-identity-unknown-here "
		    "(ticket refused, full handshake)");
		return -1;
	}
	if (s == NULL)
		return 0;
	for (size_t i = 0; i < c.n; i++)
		total += c.len[i];
	free(s->tchain);
	s->tchain_n = 0;
	s->tproved = 0;
	if ((s->tchain = malloc(total)) == NULL)
		return -1;
	total = 0;
	for (size_t i = 0; i < c.n; total += c.len[i], i++) {
		memcpy(s->tchain + total, c.der[i], c.len[i]);
		s->tchain_len[s->tchain_n++] = c.len[i];
	}
	s->tproved = id->proved;
	log_debug("tls tickets peer identity found for the ticket (certificates=%zu)", c.n);
	return 0;
}


size_t
tls_ticketkeys_peer_count(const struct tls_ticketkeys *tk)
{
	return tk != NULL ? tls_ticketpeers_count(tk->peers) : 0;
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
	if (lifetime_s > 0)
		tk->lifetime = lifetime_s;
	return 0;
}
