/* tls/session.c - one memory-I/O TLS session over a connection's raw buffers.
 * SPDX-License-Identifier: ISC
 * conn.c creates a session when STARTTLS is agreed and then drives it: handshake, read,
 * write, shutdown. wolfSSL's I/O callbacks take ciphertext from the front of the `in`
 * buffer and append to `out`, so no socket is involved and bytes around the TLS data
 * (<proceed/> before a ServerHello) share one write. The verify callback records the
 * PKIX verdict and lets every handshake continue; the stream layer applies policy. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/log.h"
#include "../core/memtrim.h"
#include "tls_int.h"

static struct tls_session *session_new(struct tls_ctx *, struct tls_domain *,
    struct buf *, struct buf *, bool);
static struct tls_session *session_of(WOLFSSL *, void *);
static enum tls_result session_fail(struct tls_session *, int, const char *);
static const unsigned char *peer_leaf(const struct tls_session *, size_t *);
static const char *session_peer(const struct tls_session *);
static const char *x509_error(int);
static void store_key(const struct tls_session *, char *, size_t);
static void session_offer(struct tls_session *);
static void session_save(struct tls_session *);
static int ticket_arrived_cb(WOLFSSL *, const unsigned char *, int, void *);
static enum tls_result session_established(struct tls_session *);
static void session_trim(struct tls_session *);
static void drop_cert_pkey(WOLFSSL_X509 *);
static bool dane_active(const struct tls_session *);
static bool same_domain(const char *, const char *);
static bool pkix_ok(const struct tls_session *);

/* X509_V_ERR_* as text; wolfSSL's table lacks some common ones. */
static const char *
x509_error(int err)
{
	const char *t = wolfSSL_X509_verify_cert_error_string(err);

	if (t != NULL && strcmp(t, "unknown error number") != 0)
		return t;
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
		return "self-signed certificate";
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return "self-signed certificate in chain";
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return "certificate is not yet valid";
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return "certificate has expired";
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
		return "certificate signature failure";
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
		return "unable to get local issuer certificate";
	case X509_V_ERR_CERT_REVOKED:
		return "certificate revoked";
	default:
		return "certificate verification failed";
	}
}

/* Who the session is with, for logs: the SNI (server) or the peer domain (client). */
static const char *
session_peer(const struct tls_session *s)
{
	const char *p = s->server ? s->sni : s->peer;

	return p[0] != '\0' ? p : "-";
}

/* The session behind a wolfSSL callback argument, or NULL if it is not one. */
static struct tls_session *
session_of(WOLFSSL *ssl, void *arg)
{
	struct tls_session *s = arg;

	if (s == NULL || s->magic != TLS_SESSION_MAGIC || s->ssl != ssl) {
		log_warnx("tls callback reason=bad-session-magic");
		return NULL;
	}
	return s;
}

int
tls_session_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_session *s = session_of(ssl, arg);
	size_t n;

	if (s == NULL || sz < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (s->in->len == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	n = s->in->len < (size_t)sz ? s->in->len : (size_t)sz;
	memcpy(buf, s->in->data, n);
	buf_consume(s->in, n);
	return (int)n;
}

int
tls_session_send_cb(WOLFSSL *ssl, char *buf, int sz, void *arg)
{
	struct tls_session *s = session_of(ssl, arg);

	if (s == NULL || sz < 0)
		return WOLFSSL_CBIO_ERR_GENERAL;
	if (buf_append(s->out, buf, (size_t)sz) == -1) {
		s->out_full = true;
		return WOLFSSL_CBIO_ERR_GENERAL;
	}
	return sz;
}

/* Debian's wolfSSL (OPENSSL_ALL) decodes the public key of every certificate it copies
 * into an OpenSSL-style EVP_PKEY: for an ECDSA P-256 key about 16 KiB of EC_KEY, EC_POINT
 * and BIGNUM objects. It keeps the leaf's copy (KEEP_PEER_CERT) for the connection's
 * life, and nothing reads that key: wolfSSL verifies with its own key objects and
 * quickfed reads the DER chain (peer_leaf, certcheck.c). The verify callback sees that
 * very copy (current_cert at depth 0), and frees the key there; wolfSSL's FreeX509 takes
 * the NULL as "none". The other depths' copies are temporary: the same, a bit sooner. */
static void
drop_cert_pkey(WOLFSSL_X509 *cert)
{
	WOLFSSL_X509_PUBKEY *pk;

	if (cert != NULL && (pk = wolfSSL_X509_get_X509_PUBKEY(cert)) != NULL &&
	    pk->pkey != NULL) {
		wolfSSL_EVP_PKEY_free(pk->pkey);
		pk->pkey = NULL;
	}
}

/* Called for every certificate of the peer's chain (WOLFSSL_ALWAYS_VERIFY_CB and
 * WOLFSSL_VERIFY_CB_ALL_CERTS in Debian's build), failures and successes alike. */
int
tls_session_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store)
{
	struct tls_session *s;
	char why[WOLFSSL_MAX_ERROR_SZ];
	int err, depth;

	if (store == NULL || (s = store->userCtx) == NULL || s->magic != TLS_SESSION_MAGIC) {
		log_warnx("tls verify reason=bad-session-magic");
		return 0;
	}
	s->verify_seen = true;
	drop_cert_pkey(wolfSSL_X509_STORE_CTX_get_current_cert(store));
	if (preverify)
		return 1;
	err = wolfSSL_X509_STORE_CTX_get_error(store);
	depth = wolfSSL_X509_STORE_CTX_get_error_depth(store);
	/* X509_V_ERR_* codes are positive; wolfSSL's own (ASN_NO_SIGNER_E...) negative. */
	if (err < 0)
		wolfSSL_ERR_error_string_n((unsigned long)err, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "%s", x509_error(err));
	if (!s->verify_failed)
		snprintf(s->verdict, sizeof(s->verdict), "depth %d: %s", depth, why);
	s->verify_failed = true;
	log_debug("tls %s=%s verify err=%d depth=%d reason=\"%s\" (recorded, not enforced)",
	    s->server ? "in sni" : "out to", session_peer(s), err, depth, why);
	return 1;
}

static struct tls_session *
session_new(struct tls_ctx *ctx, struct tls_domain *d, struct buf *in, struct buf *out,
    bool server)
{
	struct tls_session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		log_warnx("tls domain=%s reason=out-of-memory", d->name);
		return NULL;
	}
	s->magic = TLS_SESSION_MAGIC;
	s->ctx = ctx;
	s->domain = tls_domain_hold(d);
	s->in = in;
	s->out = out;
	s->server = server;
	if ((s->ssl = wolfSSL_new(server ? d->server : d->client)) == NULL) {
		log_warnx("tls domain=%s reason=wolfSSL_new-failed", d->name);
		tls_domain_release(s->domain);
		s->magic = 0;
		free(s);
		return NULL;
	}
	wolfSSL_SetIOReadCtx(s->ssl, s);
	wolfSSL_SetIOWriteCtx(s->ssl, s);
	wolfSSL_SetCertCbCtx(s->ssl, s);
	return s;
}

struct tls_session *
tls_session_client(struct tls_ctx *ctx, const char *local_domain, const char *peer_domain,
    struct buf *in, struct buf *out)
{
	struct tls_domain *d;
	struct tls_session *s;
	size_t n;

	if (ctx == NULL || ctx->magic != TLS_CTX_MAGIC || peer_domain == NULL)
		return NULL;
	if ((d = tls_ctx_domain(ctx, local_domain)) == NULL) {
		log_warnx("tls out from=%s to=%s reason=not-a-local-domain", local_domain,
		    peer_domain);
		return NULL;
	}
	if ((n = strlen(peer_domain)) == 0 || n >= sizeof(s->peer)) {
		log_warnx("tls out from=%s reason=bad-peer-domain", local_domain);
		return NULL;
	}
	if ((s = session_new(ctx, d, in, out, false)) == NULL)
		return NULL;
	memcpy(s->peer, peer_domain, n + 1);
	wolfSSL_set_SessionTicket_cb(s->ssl, ticket_arrived_cb, s);
	if (wolfSSL_UseSNI(s->ssl, WOLFSSL_SNI_HOST_NAME, peer_domain, (unsigned short)n)
	    != WOLFSSL_SUCCESS) {
		log_warnx("tls out from=%s to=%s reason=sni-failed", local_domain, peer_domain);
		tls_session_free(s);
		return NULL;
	}
	return s;
}

struct tls_session *
tls_session_server(struct tls_ctx *ctx, const char *default_domain, struct buf *in,
    struct buf *out)
{
	struct tls_domain *d;

	if (ctx == NULL || ctx->magic != TLS_CTX_MAGIC)
		return NULL;
	if ((d = tls_ctx_domain(ctx, default_domain)) == NULL) {
		if (default_domain != NULL)
			log_debug("tls in default=%s reason=not-a-local-domain-using-first",
			    default_domain);
		d = ctx->domains;
	}
	return session_new(ctx, d, in, out, true);
}

void
tls_session_free(struct tls_session *s)
{
	if (s == NULL)
		return;
	if (s->magic != TLS_SESSION_MAGIC)
		fatalx("tls_session_free: bad magic %#x", s->magic);
	wolfSSL_free(s->ssl);
	tls_domain_release(s->domain);
	for (size_t i = 0; i < s->n_tlsa; i++)
		free((void *)s->tlsa[i].data);
	free(s->tlsa);
	free(s->tchain);
	s->magic = 0;
	free(s);
}

/* Record why the session failed (ret is wolfSSL's return value, or 0 with why set). */
static enum tls_result
session_fail(struct tls_session *s, int ret, const char *why)
{
	char buf[WOLFSSL_MAX_ERROR_SZ];
	WOLFSSL_ALERT_HISTORY h;
	int err;

	if (why == NULL && s->out_full)
		why = "output buffer full";
	if (why != NULL) {
		snprintf(s->error, sizeof(s->error), "%s", why);
	} else {
		err = wolfSSL_get_error(s->ssl, ret);
		if (err == WOLFSSL_ERROR_ZERO_RETURN) {
			snprintf(s->error, sizeof(s->error), "peer closed");
		} else {
			wolfSSL_ERR_error_string_n((unsigned long)err, buf, sizeof(buf));
			memset(&h, 0, sizeof(h));
			if (wolfSSL_get_alert_history(s->ssl, &h) == WOLFSSL_SUCCESS &&
			    h.last_rx.code > 0)
				snprintf(s->error, sizeof(s->error), "%s (alert received: %s)",
				    buf, wolfSSL_alert_desc_string_long(h.last_rx.code));
			else if (wolfSSL_get_alert_history(s->ssl, &h) == WOLFSSL_SUCCESS &&
			    h.last_tx.code > 0)
				snprintf(s->error, sizeof(s->error), "%s (alert sent: %s)",
				    buf, wolfSSL_alert_desc_string_long(h.last_tx.code));
			else
				snprintf(s->error, sizeof(s->error), "%s", buf);
		}
	}
	wolfSSL_ERR_clear_error();
	log_debug("tls %s=%s reason=\"%s\"", s->server ? "in sni" : "out to",
	    session_peer(s), s->error);
	return TLS_FAILED;
}

enum tls_result
tls_session_handshake(struct tls_session *s)
{
	int ret, err;

	if (s->established)
		return TLS_DONE;
	if (s->error[0] != '\0')
		return TLS_FAILED;
	if (!s->server && !s->offered) {
		s->offered = true;
		if (s->tlsa_status == TLS_TLSA_BOGUS && s->ctx->dane) {
			s->dane = TLS_DANE_FAILED;
			s->ctx->n.dane_failed++;
			log_warnx("tls out to=%s target=%s reason=\"DANE: TLSA records are bogus "
			    "(DNSSEC validation failed)\"", s->peer,
			    s->target[0] != '\0' ? s->target : "-");
			return session_fail(s, 0, "DANE: TLSA records are bogus");
		}
		session_offer(s);
	}
	ret = s->server ? wolfSSL_accept(s->ssl) : wolfSSL_connect(s->ssl);
	if (ret == WOLFSSL_SUCCESS)
		return session_established(s);
	err = wolfSSL_get_error(s->ssl, ret);
	if ((err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) &&
	    !s->out_full)
		return TLS_AGAIN;
	return session_fail(s, ret, NULL);
}

bool
tls_session_established(const struct tls_session *s)
{
	return s->established;
}

enum tls_result
tls_session_read(struct tls_session *s, char *dst, size_t cap, size_t *got)
{
	enum tls_result r;
	int n, err;

	*got = 0;
	if (!s->established && (r = tls_session_handshake(s)) != TLS_DONE)
		return r;
	if (s->error[0] != '\0')
		return TLS_FAILED;
	while (*got < cap) {
		size_t want = cap - *got;

		if (s->ticket_new)
			session_save(s);
		if (want > 1 << 30)
			want = 1 << 30;
		n = wolfSSL_read(s->ssl, dst + *got, (int)want);
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		err = wolfSSL_get_error(s->ssl, n);
		if ((err == WOLFSSL_ERROR_WANT_READ || err == WOLFSSL_ERROR_WANT_WRITE) &&
		    !s->out_full)
			break;
		if (err == WOLFSSL_ERROR_ZERO_RETURN) {
			/* close_notify: hand out what came before it first. */
			if (*got > 0)
				return TLS_DONE;
			snprintf(s->error, sizeof(s->error), "peer closed");
			return TLS_CLOSED;
		}
		session_fail(s, n, NULL);
		return TLS_FAILED;
	}
	if (s->ticket_new)
		session_save(s);
	return *got > 0 ? TLS_DONE : TLS_AGAIN;
}

enum tls_result
tls_session_write(struct tls_session *s, const char *p, size_t n)
{
	int w;

	if (!s->established)
		return session_fail(s, 0, "write before handshake completed");
	if (s->error[0] != '\0')
		return TLS_FAILED;
	while (n > 0) {
		int chunk = n > (1 << 30) ? 1 << 30 : (int)n;

		if ((w = wolfSSL_write(s->ssl, p, chunk)) <= 0)
			return session_fail(s, w, NULL);
		p += w;
		n -= (size_t)w;
	}
	return TLS_DONE;
}

void
tls_session_shutdown(struct tls_session *s)
{
	if (s == NULL || s->ssl == NULL || !s->established)
		return;
	/* Sends close_notify; the peer's answer is not awaited. */
	(void)wolfSSL_shutdown(s->ssl);
	wolfSSL_ERR_clear_error();
}

const char *
tls_session_error(const struct tls_session *s)
{
	if (s->error[0] != '\0')
		return s->error;
	return s->established ? "no error" : "handshake not complete";
}

const char *
tls_session_version(const struct tls_session *s)
{
	const char *v = wolfSSL_get_version(s->ssl);

	return v != NULL ? v : "unknown";
}

const char *
tls_session_group(const struct tls_session *s)
{
	const char *g = wolfSSL_get_curve_name(s->ssl);

	return g != NULL ? g : "none";
}

const char *
tls_session_sni(const struct tls_session *s)
{
	return s->server && s->sni[0] != '\0' ? s->sni : NULL;
}

/* The DER of the peer's leaf certificate, or NULL. */
static const unsigned char *
peer_leaf(const struct tls_session *s, size_t *len)
{
	struct tls_chain c;

	tls_peer_chain(s, &c);
	if (c.n < 1)
		return NULL;
	*len = c.len[0];
	return c.der[0];
}

/* PKIX: the peer's chain was verified against the CA store. */
static bool
pkix_ok(const struct tls_session *s)
{
	return s->verify_seen && !s->verify_failed;
}

bool
tls_session_peer_trusted(const struct tls_session *s)
{
	size_t len;

	if (!s->established || peer_leaf(s, &len) == NULL || s->dane == TLS_DANE_FAILED)
		return false;
	return pkix_ok(s) || s->dane == TLS_DANE_MATCHED;
}

bool
tls_session_peer_valid_for(const struct tls_session *s, const char *domain)
{
	const unsigned char *der;
	size_t len;

	if (!tls_session_peer_trusted(s) || (der = peer_leaf(s, &len)) == NULL ||
	    domain == NULL)
		return false;
	/* DANE authenticates the peer domain the TLSA records were found for:
	 * DANE-EE without a name check, the others matched the names already. */
	if (s->dane == TLS_DANE_MATCHED && same_domain(domain, s->peer))
		return true;
	return pkix_ok(s) && tls_cert_matches(der, len, domain);
}

const char *
tls_session_peer_verdict(const struct tls_session *s)
{
	size_t len;

	if (!s->established)
		return "handshake not complete";
	if (s->dane == TLS_DANE_FAILED)
		return s->verdict[0] != '\0' ? s->verdict : "DANE: no TLSA record matched";
	if (peer_leaf(s, &len) == NULL)
		return "no certificate";
	if (s->dane == TLS_DANE_MATCHED && !pkix_ok(s))
		return s->dane_ee ? "ok (DANE-EE)" : "ok (DANE-TA)";
	if (!s->verify_seen)
		return "certificate not verified (resumed session)";
	if (s->verify_failed)
		return s->verdict;
	return "ok";
}

bool
tls_session_resumed(const struct tls_session *s)
{
	return wolfSSL_session_reused(s->ssl) == 1;
}

/* Case-insensitive domain equality, ignoring one trailing dot on either side. */
static bool
same_domain(const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);

	if (na > 0 && a[na - 1] == '.')
		na--;
	if (nb > 0 && b[nb - 1] == '.')
		nb--;
	return na > 0 && na == nb && strncasecmp(a, b, na) == 0;
}

/* The store key of a client session: local domain, peer domain, target. */
static void
store_key(const struct tls_session *s, char *key, size_t n)
{
	size_t i;

	snprintf(key, n, "%s|%s|%s", s->domain->name, s->peer, s->target);
	for (i = 0; key[i] != '\0'; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
}

/* Client, before the first handshake step: offer the saved session, if any: the one
 * of this target, else (no secure TLSA to match here) the newest one of another SRV
 * target of the same peer domain - nodes behind one SRV RRset that share their ticket
 * keys resume it, the others ignore it (full handshake). A saved session that does
 * not decode or is refused is dropped (logged): full handshake. */
static void
session_offer(struct tls_session *s)
{
	const unsigned char *der, *p;
	const char *other;
	WOLFSSL_SESSION *sess;
	char key[900];
	size_t len;

	if (s->ctx->store == NULL)
		return;
	store_key(s, key, sizeof(key));
	if ((der = tls_store_get(s->ctx->store, key, time(NULL), &len)) == NULL) {
		char *bar = strrchr(key, '|');

		if (dane_active(s) || bar == NULL)
			return;
		bar[1] = '\0';                   /* "local|peer|": any target */
		if ((der = tls_store_get_newest(s->ctx->store, key, time(NULL), &len,
		    &other)) == NULL)
			return;
		snprintf(key, sizeof(key), "%s", other);
		log_debug("tls out to=%s target=%s offering the session of %s", s->peer,
		    s->target[0] ? s->target : "-", key);
	}
	p = der;
	sess = wolfSSL_d2i_SSL_SESSION(NULL, &p, (long)len);
	if (sess == NULL || p != der + len) {
		log_warnx("tls out to=%s target=%s reason=saved-session-does-not-decode "
		    "(dropped, full handshake)", s->peer, s->target[0] ? s->target : "-");
		s->ctx->n.store_rejected++;
		if (sess != NULL)
			wolfSSL_SESSION_free(sess);
		tls_store_drop(s->ctx->store, key);
		wolfSSL_ERR_clear_error();
		return;
	}
	if (wolfSSL_set_session(s->ssl, sess) != WOLFSSL_SUCCESS) {
		log_info("tls out to=%s target=%s reason=saved-session-refused "
		    "(dropped, full handshake)", s->peer, s->target[0] ? s->target : "-");
		s->ctx->n.store_rejected++;
		tls_store_drop(s->ctx->store, key);
	} else {
		log_debug("tls out to=%s target=%s offering saved session", s->peer,
		    s->target[0] ? s->target : "-");
	}
	wolfSSL_SESSION_free(sess);
	wolfSSL_ERR_clear_error();
}

/* wolfSSL: a NewSessionTicket arrived (client). Saved once the record is processed. */
static int
ticket_arrived_cb(WOLFSSL *ssl, const unsigned char *ticket, int len, void *arg)
{
	struct tls_session *s = session_of(ssl, arg);

	if (s != NULL && len > 0)
		s->ticket_new = true;
	return 0;
}

/* Client: store the session holding the newest ticket. */
static void
session_save(struct tls_session *s)
{
	WOLFSSL_SESSION *sess;
	unsigned char *der = NULL, *p;
	unsigned long life;
	time_t now = time(NULL);
	char key[900];
	int len;

	s->ticket_new = false;
	if (s->server || !s->established || s->ctx->store == NULL ||
	    s->dane == TLS_DANE_FAILED)
		return;
	if ((sess = wolfSSL_get1_session(s->ssl)) == NULL)
		return;
	if (wolfSSL_SESSION_has_ticket(sess) != 1 ||
	    (len = wolfSSL_i2d_SSL_SESSION(sess, NULL)) <= 0 ||
	    (der = malloc((size_t)len)) == NULL)
		goto out;
	p = der;
	if (wolfSSL_i2d_SSL_SESSION(sess, &p) != len)
		goto out;
	if ((life = wolfSSL_SESSION_get_ticket_lifetime_hint(sess)) == 0)
		life = (unsigned long)wolfSSL_SESSION_get_timeout(sess);
	if (life == 0 || life > 7 * 86400)
		life = life == 0 ? 300 : 7 * 86400;
	store_key(s, key, sizeof(key));
	if (tls_store_put(s->ctx->store, key, der, (size_t)len, now + (time_t)life, now) == 0)
		log_debug("tls out to=%s target=%s session saved lifetime=%lus", s->peer,
		    s->target[0] ? s->target : "-", life);
out:
	if (der != NULL) {
		memset(der, 0, (size_t)len);
		free(der);
	}
	wolfSSL_SESSION_free(sess);
	wolfSSL_ERR_clear_error();
}

static bool
dane_active(const struct tls_session *s)
{
	if (s->server || !s->ctx->dane || s->tlsa_status != TLS_TLSA_SECURE)
		return false;
	for (size_t i = 0; i < s->n_tlsa; i++)
		if (tls_tlsa_usable(&s->tlsa[i]))
			return true;
	return false;
}

/* The handshake just completed: verify a resumed session's chain ourselves, apply
 * DANE, count, store a ticket that came with the handshake (TLS 1.2), and give back
 * the handshake arrays. */
static enum tls_result
session_established(struct tls_session *s)
{
	struct tls_chain c;
	bool resumed = tls_session_resumed(s);

	s->established = true;
	if (resumed && !s->verify_seen) {
		/* wolfSSL runs no verify callback on resumption: PKIX-check the chain
		 * kept with the session, so SASL EXTERNAL works after resumption. */
		tls_peer_chain(s, &c);
		if (c.n > 0) {
			char why[sizeof(s->verdict)];
			WOLFSSL_CERT_MANAGER *cm =
			    wolfSSL_CTX_GetCertManager(wolfSSL_get_SSL_CTX(s->ssl));

			s->verify_seen = true;
			s->verify_failed = !tls_chain_verify(cm, NULL, 0, &c, why, sizeof(why));
			if (s->verify_failed)
				snprintf(s->verdict, sizeof(s->verdict), "%s", why);
		}
	}
	if (dane_active(s)) {
		char host[sizeof(s->target)];
		const char *names[3] = { s->peer, host, NULL };
		const char *colon;

		snprintf(host, sizeof(host), "%s", s->target);
		if ((colon = strrchr(host, ':')) != NULL)
			host[colon - host] = '\0';
		tls_peer_chain(s, &c);
		s->dane = tls_dane_match(s->tlsa, s->n_tlsa, &c, pkix_ok(s), names,
		    &s->dane_ee);
		if (s->dane == TLS_DANE_FAILED) {
			char key[900];

			s->ctx->n.dane_failed++;
			snprintf(s->verdict, sizeof(s->verdict), "DANE: no TLSA record matched");
			log_warnx("tls out to=%s target=%s reason=\"DANE: no TLSA record matched "
			    "(%zu records, certificate %s)\" (connection refused)", s->peer,
			    s->target[0] ? s->target : "-", s->n_tlsa,
			    pkix_ok(s) ? "PKIX-valid" : "not PKIX-valid");
			if (s->ctx->store != NULL) {
				store_key(s, key, sizeof(key));
				tls_store_drop(s->ctx->store, key);
			}
			tls_session_shutdown(s);
			s->established = false;
			return session_fail(s, 0, "DANE: no TLSA record matched");
		}
		s->ctx->n.dane_matched++;
	}
	if (s->server)
		resumed ? s->ctx->n.resumed_server++ : s->ctx->n.full_server++;
	else
		resumed ? s->ctx->n.resumed_client++ : s->ctx->n.full_client++;
	log_debug("tls %s=%s domain=%s version=%s cipher=%s group=%s resumed=%d "
	    "peer_trusted=%d dane=%s verdict=\"%s\"", s->server ? "in sni" : "out to",
	    session_peer(s), s->domain->name, tls_session_version(s),
	    wolfSSL_get_cipher(s->ssl), tls_session_group(s), resumed, tls_session_peer_trusted(s),
	    tls_dane_strstate(s->dane), tls_session_peer_verdict(s));
	if (s->ticket_new)
		session_save(s);
	/* wolfSSL keeps a TLS 1.3 session's arrays (randoms, secrets, room for a
	 * fragmented handshake message: about 5.5 KiB) after the handshake for
	 * post-handshake authentication, which quickfed never offers or asks for. Freed
	 * now, while the next handshake can reuse the memory; wolfSSL then takes
	 * post-handshake messages (NewSessionTicket, KeyUpdate) as it always does after
	 * a TLS 1.2 handshake. The resumption secret lives in the session object. */
	wolfSSL_FreeArrays(s->ssl);
	session_trim(s);
	return TLS_DONE;
}

/* Debian's wolfSSL gives every connection a session object of about 37 KiB, most of it
 * room for two peer chains of nine certificates of up to 2 KiB each, zeroed when it is
 * allocated; the peer's chain fills a few pages of it. Now that the handshake is over
 * (nothing writes a chain again), the pages still all zero go back to the kernel, and
 * so do those of the WOLFSSL object itself (core/memtrim.c: the contents stay the
 * same). Only while wolfSSL allocates with malloc, whose block sizes we may ask. */
static void
session_trim(struct tls_session *s)
{
	static int plain_malloc = -1;
	wolfSSL_Malloc_cb mf = NULL;
	wolfSSL_Free_cb ff = NULL;
	wolfSSL_Realloc_cb rf = NULL;
	WOLFSSL_SESSION *sess;

	if (plain_malloc < 0)
		plain_malloc = wolfSSL_GetAllocators(&mf, &ff, &rf) == 0 && mf == NULL &&
		    ff == NULL && rf == NULL;
	if (!plain_malloc)
		return;
	if ((sess = wolfSSL_get1_session(s->ssl)) != NULL) {
		s->ctx->n.trimmed_bytes += memtrim_block(sess);
		wolfSSL_SESSION_free(sess);
	}
	s->ctx->n.trimmed_bytes += memtrim_block(s->ssl);
}

int
tls_session_set_target(struct tls_session *s, const char *host, unsigned port)
{
	if (s == NULL || s->server || host == NULL || port > 65535)
		return -1;
	if (snprintf(s->target, sizeof(s->target), "%s:%u", host, port) >=
	    (int)sizeof(s->target) || strlen(host) >= 254) {
		s->target[0] = '\0';
		return -1;
	}
	return 0;
}

int
tls_session_set_tlsa(struct tls_session *s, const struct tlsa_rr *rrs, size_t n,
    enum tls_tlsa_status status)
{
	struct tlsa_rr *copy = NULL;

	if (s == NULL || s->offered || (n > 0 && rrs == NULL) || n > 256)
		return -1;
	if (n > 0 && (copy = calloc(n, sizeof(*copy))) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char *d = NULL;

		copy[i] = rrs[i];
		if (rrs[i].len > 0 && (d = malloc(rrs[i].len)) == NULL) {
			for (size_t k = 0; k < i; k++)
				free((void *)copy[k].data);
			free(copy);
			return -1;
		}
		if (d != NULL)
			memcpy(d, rrs[i].data, rrs[i].len);
		copy[i].data = d;
	}
	for (size_t i = 0; i < s->n_tlsa; i++)
		free((void *)s->tlsa[i].data);
	free(s->tlsa);
	s->tlsa = copy;
	s->n_tlsa = n;
	s->tlsa_status = status;
	return 0;
}

enum tls_dane_state
tls_session_dane_state(const struct tls_session *s)
{
	return s->dane;
}

bool
tls_session_peer_matches_tlsa(const struct tls_session *s, const char *domain,
    const char *target_host, const struct tlsa_rr *rrs, size_t n)
{
	const char *names[3] = { domain, target_host, NULL };
	struct tls_chain c;
	enum tls_dane_state st;
	bool ee;

	if (s == NULL || !s->established || domain == NULL || !s->ctx->dane)
		return false;
	tls_peer_chain(s, &c);
	st = tls_dane_match(rrs, n, &c, pkix_ok(s), names, &ee);
	if (st == TLS_DANE_MATCHED)
		s->ctx->n.dane_matched++;
	else if (st == TLS_DANE_FAILED)
		s->ctx->n.dane_failed++;
	log_debug("tls %s=%s domain=%s dane=%s%s", s->server ? "in sni" : "out to",
	    session_peer(s), domain, tls_dane_strstate(st),
	    st == TLS_DANE_MATCHED ? (ee ? " (DANE-EE)" : " (DANE-TA/PKIX)") : "");
	return st == TLS_DANE_MATCHED;
}
