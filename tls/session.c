/* tls/session.c - one memory-I/O TLS session over a connection's raw buffers.
 * SPDX-License-Identifier: ISC
 * conn.c creates a session when STARTTLS is agreed and then drives it: handshake, read,
 * write, shutdown. wolfSSL's I/O callbacks take ciphertext from the front of the `in`
 * buffer and append to `out`, so no socket is involved and bytes around the TLS data
 * (<proceed/> before a ServerHello) share one write. The verify callback records the
 * PKIX verdict and lets every handshake continue; the stream layer applies policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "tls_int.h"

static struct tls_session *session_new(struct tls_ctx *, struct tls_domain *,
    struct buf *, struct buf *, bool);
static struct tls_session *session_of(WOLFSSL *, void *);
static enum tls_result session_fail(struct tls_session *, int, const char *);
static const unsigned char *peer_leaf(const struct tls_session *, size_t *);
static const char *session_peer(const struct tls_session *);
static const char *x509_error(int);

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
	s->domain = d;
	s->in = in;
	s->out = out;
	s->server = server;
	if ((s->ssl = wolfSSL_new(server ? d->server : d->client)) == NULL) {
		log_warnx("tls domain=%s reason=wolfSSL_new-failed", d->name);
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
	ret = s->server ? wolfSSL_accept(s->ssl) : wolfSSL_connect(s->ssl);
	if (ret == WOLFSSL_SUCCESS) {
		s->established = true;
		log_debug("tls %s=%s domain=%s version=%s cipher=%s resumed=%d "
		    "peer_trusted=%d verdict=\"%s\"", s->server ? "in sni" : "out to",
		    session_peer(s), s->domain->name, tls_session_version(s),
		    wolfSSL_get_cipher(s->ssl), tls_session_resumed(s),
		    tls_session_peer_trusted(s), tls_session_peer_verdict(s));
		return TLS_DONE;
	}
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
tls_session_sni(const struct tls_session *s)
{
	return s->server && s->sni[0] != '\0' ? s->sni : NULL;
}

/* The DER of the peer's leaf certificate, or NULL. */
static const unsigned char *
peer_leaf(const struct tls_session *s, size_t *len)
{
	WOLFSSL_X509_CHAIN *chain;
	unsigned char *der;
	int n;

	if (!s->established || (chain = wolfSSL_get_peer_chain(s->ssl)) == NULL ||
	    wolfSSL_get_chain_count(chain) < 1)
		return NULL;
	if ((der = wolfSSL_get_chain_cert(chain, 0)) == NULL ||
	    (n = wolfSSL_get_chain_length(chain, 0)) <= 0)
		return NULL;
	*len = (size_t)n;
	return der;
}

bool
tls_session_peer_trusted(const struct tls_session *s)
{
	size_t len;

	return s->established && s->verify_seen && !s->verify_failed &&
	    peer_leaf(s, &len) != NULL;
}

bool
tls_session_peer_valid_for(const struct tls_session *s, const char *domain)
{
	const unsigned char *der;
	size_t len;

	if (!tls_session_peer_trusted(s) || (der = peer_leaf(s, &len)) == NULL)
		return false;
	return tls_cert_matches(der, len, domain);
}

const char *
tls_session_peer_verdict(const struct tls_session *s)
{
	size_t len;

	if (!s->established)
		return "handshake not complete";
	if (peer_leaf(s, &len) == NULL)
		return "no certificate";
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
