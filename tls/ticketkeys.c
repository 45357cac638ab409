/* tls/ticketkeys.c - server session ticket keys that survive restarts and rotate.
 * SPDX-License-Identifier: ISC
 * ctx.c creates one set for all local domains and attaches it to every server context
 * (wolfSSL_CTX_set_TicketEncCb). Tickets are sealed with ChaCha20-Poly1305 under the
 * current key and opened with the current or the previous one (by key name). The keys
 * live in a small checksummed file (0600), rewritten atomically under a lock file when
 * the current key is older than the rotation interval; a file rewritten by another node
 * serving the same domain is reloaded, so several nodes can share it. Each ticket
 * sealed for a client that presented a certificate also records that chain under the
 * ticket's key name and IV (<key file>.peers): stateless tickets carry no certificate,
 * and without it a resumed peer could not use SASL EXTERNAL. The record is only as
 * trusted as the key file beside it; the chain is re-verified on every resumption.
 * The .peers file is per node: a ticket resumed at another node sharing the keys
 * resumes without a certificate (the stream falls back to dialback). */
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
#define TP_MAGIC       "QFTP"
#define TP_VERSION     1u
#define TP_IDLEN       16           /* SHA-256(key name || IV), cut */
#define TP_MAX         1024         /* identities kept */
#define TP_CHAIN_MAX   16384        /* chain bytes kept per identity */
#define TP_CERTS_MAX   4            /* certificates kept per identity */
#define TK_FUTURE_MAX  (366 * 86400LL) /* creation times further ahead are corrupt */
#define TK_SKEW        300             /* clock skew tolerated between nodes, seconds */

/* One ticket's peer identity. */
struct ticket_peer {
	unsigned char  id[TP_IDLEN];
	int64_t        expires;
	size_t         n;                   /* certificates */
	size_t         len[TP_CERTS_MAX];
	unsigned char *der;                 /* back to back, leaf first, owned */
	size_t         total;
};

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
	char             *ppath;      /* owned; "<path>.peers", NULL = memory only */
	struct ticket_peer *peers;    /* TP_MAX slots, owned */
	size_t            n_peers;
};

static int tk_generate(struct tls_ticketkeys *, struct ticket_key *, time_t);
static int tk_load(struct tls_ticketkeys *, bool);
static int tk_save(struct tls_ticketkeys *);
static bool tk_changed(const struct tls_ticketkeys *);
static int tk_lock(const struct tls_ticketkeys *);
static void tk_unlock(int);
static void tp_id(const unsigned char *, const unsigned char *, unsigned char *);
static void tp_remove(struct tls_ticketkeys *, size_t);
static struct tls_session *tp_session(WOLFSSL *);
static void put_u32(unsigned char *, uint32_t);
static uint32_t get_u32(const unsigned char *);
static void tp_prune(struct tls_ticketkeys *, int64_t);
static void tp_record(struct tls_ticketkeys *, WOLFSSL *, const unsigned char *,
    const unsigned char *);
static void tp_attach(struct tls_ticketkeys *, WOLFSSL *, const unsigned char *,
    const unsigned char *);
static void tp_load(struct tls_ticketkeys *);
static void tp_save(struct tls_ticketkeys *);
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
	if ((tk->peers = calloc(TP_MAX, sizeof(*tk->peers))) == NULL)
		goto fail;
	tk->lifetime = 300;
	if (path != NULL) {
		size_t n = strlen(path) + sizeof(".peers");

		if ((tk->ppath = malloc(n)) == NULL)
			goto fail;
		snprintf(tk->ppath, n, "%s.peers", path);
		tp_load(tk);
	}
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
	free(tk->ppath);
	for (size_t i = 0; tk->peers != NULL && i < tk->n_peers; i++)
		free(tk->peers[i].der);
	free(tk->peers);
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
	if (enc)
		tp_record(tk, ssl, key_name, iv);
	else
		tp_attach(tk, ssl, key_name, iv);
	return old ? WOLFSSL_TICKET_RET_CREATE : WOLFSSL_TICKET_RET_OK;
}

/* --- peer identities bound to tickets ------------------------------------------- */

static void
tp_id(const unsigned char *key_name, const unsigned char *iv, unsigned char *id)
{
	unsigned char in[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ];
	unsigned char h[WC_SHA256_DIGEST_SIZE];

	memcpy(in, key_name, WOLFSSL_TICKET_NAME_SZ);
	memcpy(in + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
	if (wc_Sha256Hash(in, sizeof(in), h) != 0)
		memset(h, 0, sizeof(h));
	memcpy(id, h, TP_IDLEN);
}

static void
tp_remove(struct tls_ticketkeys *tk, size_t i)
{
	free(tk->peers[i].der);
	tk->peers[i] = tk->peers[--tk->n_peers];
	memset(&tk->peers[tk->n_peers], 0, sizeof(tk->peers[0]));
}

/* Drop identities whose ticket has expired. */
static void
tp_prune(struct tls_ticketkeys *tk, int64_t now)
{
	for (size_t i = 0; i < tk->n_peers; )
		if (tk->peers[i].expires <= now)
			tp_remove(tk, i);
		else
			i++;
}

/* The session behind ssl (our memory-I/O context), or NULL. */
static struct tls_session *
tp_session(WOLFSSL *ssl)
{
	struct tls_session *s = wolfSSL_GetIOReadCtx(ssl);

	return s != NULL && s->magic == TLS_SESSION_MAGIC && s->ssl == ssl ? s : NULL;
}

/* A ticket was sealed: record the client's certificate chain under its name + IV. */
static void
tp_record(struct tls_ticketkeys *tk, WOLFSSL *ssl, const unsigned char *key_name,
    const unsigned char *iv)
{
	struct tls_session *s = tp_session(ssl);
	WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(ssl);
	struct ticket_peer p;
	int64_t now = (int64_t)time(NULL);
	int nc = chain != NULL ? wolfSSL_get_chain_count(chain) : 0;
	size_t off = 0;

	memset(&p, 0, sizeof(p));
	if (nc > 0) {
		for (int i = 0; i < nc && p.n < TP_CERTS_MAX; i++) {
			int len = wolfSSL_get_chain_length(chain, i);

			if (wolfSSL_get_chain_cert(chain, i) == NULL || len <= 0 ||
			    p.total + (size_t)len > TP_CHAIN_MAX)
				break;
			p.len[p.n++] = (size_t)len;
			p.total += (size_t)len;
		}
		if (p.n == 0 || (p.der = malloc(p.total)) == NULL)
			return;
		for (size_t i = 0; i < p.n; i++) {
			memcpy(p.der + off, wolfSSL_get_chain_cert(chain, (int)i), p.len[i]);
			off += p.len[i];
		}
	} else if (s != NULL && s->tchain_n > 0) {
		/* a resumed session getting a new ticket: carry its identity over */
		for (size_t i = 0; i < s->tchain_n && p.n < TP_CERTS_MAX; i++) {
			p.len[p.n++] = s->tchain_len[i];
			p.total += s->tchain_len[i];
		}
		if ((p.der = malloc(p.total)) == NULL)
			return;
		memcpy(p.der, s->tchain, p.total);
	} else {
		return;                 /* no client certificate: nothing to bind */
	}
	tp_id(key_name, iv, p.id);
	p.expires = now + (int64_t)tk->lifetime;
	tp_prune(tk, now);
	if (tk->n_peers == TP_MAX) {
		size_t oldest = 0;

		for (size_t i = 1; i < tk->n_peers; i++)
			if (tk->peers[i].expires < tk->peers[oldest].expires)
				oldest = i;
		tp_remove(tk, oldest);
	}
	tk->peers[tk->n_peers++] = p;
	tp_save(tk);
}

/* A ticket was opened: give its recorded chain (if any) to the session. */
static void
tp_attach(struct tls_ticketkeys *tk, WOLFSSL *ssl, const unsigned char *key_name,
    const unsigned char *iv)
{
	struct tls_session *s = tp_session(ssl);
	unsigned char id[TP_IDLEN];
	int64_t now = (int64_t)time(NULL);

	if (s == NULL)
		return;
	tp_id(key_name, iv, id);
	for (size_t i = 0; i < tk->n_peers; i++) {
		const struct ticket_peer *p = &tk->peers[i];

		if (memcmp(p->id, id, TP_IDLEN) != 0 || p->expires <= now)
			continue;
		free(s->tchain);
		s->tchain_n = 0;
		if ((s->tchain = malloc(p->total)) == NULL)
			return;
		memcpy(s->tchain, p->der, p->total);
		for (size_t k = 0; k < p->n && k < TP_CERTS_MAX && k < TLS_CHAIN_MAX; k++)
			s->tchain_len[s->tchain_n++] = p->len[k];
		log_debug("tls tickets peer identity found for the ticket (certificates=%zu)",
		    p->n);
		return;
	}
}

static void
put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t
get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* File: "QFTP", version, count (u32 each); per identity: id, expires (u64), n (u32),
 * n lengths (u32), the DER; then SHA-256 of everything before it. */
static void
tp_save(struct tls_ticketkeys *tk)
{
	unsigned char *buf, *p;
	size_t size = 12 + TK_SUM;

	if (tk->ppath == NULL)
		return;
	for (size_t i = 0; i < tk->n_peers; i++)
		size += TP_IDLEN + 8 + 4 + 4 * tk->peers[i].n + tk->peers[i].total;
	if ((buf = malloc(size)) == NULL) {
		log_warnx("tls ticket_peers=%s reason=out-of-memory (not saved)", tk->ppath);
		return;
	}
	memcpy(buf, TP_MAGIC, 4);
	put_u32(buf + 4, TP_VERSION);
	put_u32(buf + 8, (uint32_t)tk->n_peers);
	p = buf + 12;
	for (size_t i = 0; i < tk->n_peers; i++) {
		const struct ticket_peer *e = &tk->peers[i];

		memcpy(p, e->id, TP_IDLEN);
		put_u32(p + TP_IDLEN, (uint32_t)((uint64_t)e->expires >> 32));
		put_u32(p + TP_IDLEN + 4, (uint32_t)e->expires);
		put_u32(p + TP_IDLEN + 8, (uint32_t)e->n);
		p += TP_IDLEN + 12;
		for (size_t k = 0; k < e->n; k++, p += 4)
			put_u32(p, (uint32_t)e->len[k]);
		memcpy(p, e->der, e->total);
		p += e->total;
	}
	if (wc_Sha256Hash(buf, (word32)(p - buf), p) == 0)
		(void)tls_file_write_atomic(tk->ppath, buf, size);
	free(buf);
}

/* Read <key file>.peers; a missing file is empty, a foreign or damaged one is logged
 * and ignored. Expired identities are dropped. */
static void
tp_load(struct tls_ticketkeys *tk)
{
	unsigned char *buf = NULL, sum[TK_SUM];
	const unsigned char *p, *end;
	int64_t now = (int64_t)time(NULL);
	struct stat sb;
	uint32_t n;
	size_t max = 12 + TK_SUM + (size_t)TP_MAX * (TP_IDLEN + 12 + 4 * TP_CERTS_MAX +
	    TP_CHAIN_MAX);
	ssize_t r;
	int fd;

	if ((fd = open(tk->ppath, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1) {
		if (errno != ENOENT)
			log_warn("tls ticket_peers=%s reason=open-failed", tk->ppath);
		return;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode) || sb.st_uid != geteuid() ||
	    (sb.st_mode & 077) != 0 || sb.st_size < 12 + TK_SUM ||
	    (size_t)sb.st_size > max || (buf = malloc((size_t)sb.st_size)) == NULL ||
	    (r = read(fd, buf, (size_t)sb.st_size)) != sb.st_size) {
		log_warnx("tls ticket_peers=%s reason=foreign-or-unreadable-file (ignored)",
		    tk->ppath);
		goto out;
	}
	end = buf + sb.st_size - TK_SUM;
	if (memcmp(buf, TP_MAGIC, 4) != 0 || get_u32(buf + 4) != TP_VERSION ||
	    wc_Sha256Hash(buf, (word32)(end - buf), sum) != 0 ||
	    memcmp(sum, end, TK_SUM) != 0) {
		log_warnx("tls ticket_peers=%s reason=bad-header-or-checksum (ignored)",
		    tk->ppath);
		goto out;
	}
	n = get_u32(buf + 8);
	p = buf + 12;
	for (uint32_t i = 0; i < n && tk->n_peers < TP_MAX; i++) {
		struct ticket_peer e;

		memset(&e, 0, sizeof(e));
		if (end - p < TP_IDLEN + 12)
			break;
		memcpy(e.id, p, TP_IDLEN);
		e.expires = (int64_t)((uint64_t)get_u32(p + TP_IDLEN) << 32 |
		    get_u32(p + TP_IDLEN + 4));
		e.n = get_u32(p + TP_IDLEN + 8);
		p += TP_IDLEN + 12;
		if (e.n == 0 || e.n > TP_CERTS_MAX || (size_t)(end - p) < 4 * e.n)
			break;
		for (size_t k = 0; k < e.n; k++, p += 4) {
			e.len[k] = get_u32(p);
			e.total += e.len[k];
		}
		if (e.total > TP_CHAIN_MAX || (size_t)(end - p) < e.total)
			break;
		if (e.expires > now) {
			if ((e.der = malloc(e.total)) == NULL)
				break;
			memcpy(e.der, p, e.total);
			tk->peers[tk->n_peers++] = e;
		}
		p += e.total;
	}
	log_debug("tls ticket_peers=%s loaded=%zu", tk->ppath, tk->n_peers);
out:
	free(buf);
	close(fd);
}

size_t
tls_ticketkeys_peer_count(const struct tls_ticketkeys *tk)
{
	return tk != NULL ? tk->n_peers : 0;
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
