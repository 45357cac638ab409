/* tls/dane.c - TLSA matching (RFC 6698, 7671, 7673) and chain checks of our own.
 * SPDX-License-Identifier: ISC
 * session.c calls these after a handshake: to match an outgoing peer's chain against
 * the secure TLSA records of its SRV target, to authenticate an incoming peer by its
 * domain's TLSA records, and to re-verify a chain by PKIX on a resumed session (where
 * wolfSSL runs no verify callback). Debian's wolfSSL has no DANE API, so this is ours:
 * SHA-256/512 of the certificate or its SubjectPublicKeyInfo, anchors checked with a
 * private certificate manager. */
#include <stdio.h>
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "../core/log.h"
#include "tls_int.h"

static bool rr_matches(const struct tlsa_rr *, const unsigned char *, size_t);
static bool names_match(const unsigned char *, size_t, const char *const *);

void
tls_peer_chain(const struct tls_session *s, struct tls_chain *c)
{
	WOLFSSL_X509_CHAIN *chain;
	int n;

	c->n = 0;
	if (!s->established)
		return;
	if ((chain = wolfSSL_get_peer_chain(s->ssl)) == NULL ||
	    wolfSSL_get_chain_count(chain) < 1) {
		/* a resumed server session: the chain recorded with its ticket (never for
		 * a full handshake, even when a ticket was opened and then not used) */
		size_t off = 0;

		if (wolfSSL_session_reused(s->ssl) != 1)
			return;

		for (size_t i = 0; i < s->tchain_n && c->n < TLS_CHAIN_MAX; i++) {
			c->der[c->n] = s->tchain + off;
			c->len[c->n] = s->tchain_len[i];
			off += s->tchain_len[i];
			c->n++;
		}
		return;
	}
	n = wolfSSL_get_chain_count(chain);
	for (int i = 0; i < n && c->n < TLS_CHAIN_MAX; i++) {
		unsigned char *der = wolfSSL_get_chain_cert(chain, i);
		int len = wolfSSL_get_chain_length(chain, i);

		if (der == NULL || len <= 0)
			break;
		c->der[c->n] = der;
		c->len[c->n] = (size_t)len;
		c->n++;
	}
}

bool
tls_chain_verify(WOLFSSL_CERT_MANAGER *roots, const unsigned char *ta, size_t talen,
    const struct tls_chain *c, char *why, size_t whysz)
{
	WOLFSSL_CERT_MANAGER *tmp;
	bool ok = false;
	int rc = 0;

	if (why != NULL && whysz > 0)
		why[0] = '\0';
	if (c->n == 0)
		return false;
	if ((tmp = wolfSSL_CertManagerNew()) == NULL)
		return false;
	if (ta != NULL && wolfSSL_CertManagerLoadCABuffer(tmp, ta, (long)talen,
	    WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS) {
		if (why != NULL)
			snprintf(why, whysz, "trust anchor not usable as CA");
		goto out;
	}
	/* intermediates from the top down: each one that verifies becomes an anchor */
	for (size_t i = c->n - 1; i >= 1; i--) {
		bool good = (roots != NULL && wolfSSL_CertManagerVerifyBuffer(roots, c->der[i],
		    (long)c->len[i], WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS) ||
		    wolfSSL_CertManagerVerifyBuffer(tmp, c->der[i], (long)c->len[i],
		    WOLFSSL_FILETYPE_ASN1) == WOLFSSL_SUCCESS;

		if (good)
			(void)wolfSSL_CertManagerLoadCABuffer(tmp, c->der[i], (long)c->len[i],
			    WOLFSSL_FILETYPE_ASN1);
	}
	if (roots != NULL && (rc = wolfSSL_CertManagerVerifyBuffer(roots, c->der[0],
	    (long)c->len[0], WOLFSSL_FILETYPE_ASN1)) == WOLFSSL_SUCCESS)
		ok = true;
	else if ((rc = wolfSSL_CertManagerVerifyBuffer(tmp, c->der[0], (long)c->len[0],
	    WOLFSSL_FILETYPE_ASN1)) == WOLFSSL_SUCCESS)
		ok = true;
	if (!ok && why != NULL) {
		char e[WOLFSSL_MAX_ERROR_SZ];

		wolfSSL_ERR_error_string_n((unsigned long)rc, e, sizeof(e));
		snprintf(why, whysz, "depth 0: %s", e);
	}
out:
	wolfSSL_CertManagerFree(tmp);
	wolfSSL_ERR_clear_error();
	return ok;
}

bool
tls_tlsa_usable(const struct tlsa_rr *rr)
{
	if (rr->usage > 3 || rr->selector > 1 || rr->data == NULL)
		return false;
	switch (rr->mtype) {
	case 0:
		return rr->len > 0;
	case 1:
		return rr->len == WC_SHA256_DIGEST_SIZE;
	case 2:
		return rr->len == WC_SHA512_DIGEST_SIZE;
	default:
		return false;
	}
}

/* Does rr's association data match the certificate der (per its selector/type)? */
static bool
rr_matches(const struct tlsa_rr *rr, const unsigned char *der, size_t len)
{
	unsigned char h[WC_SHA512_DIGEST_SIZE];
	const unsigned char *p = der;
	size_t n = len;

	if (rr->selector == 1 && tls_cert_spki(der, len, &p, &n) == -1)
		return false;
	switch (rr->mtype) {
	case 0:
		return rr->len == n && memcmp(rr->data, p, n) == 0;
	case 1:
		return wc_Sha256Hash(p, (word32)n, h) == 0 &&
		    memcmp(h, rr->data, WC_SHA256_DIGEST_SIZE) == 0;
	case 2:
		return wc_Sha512Hash(p, (word32)n, h) == 0 &&
		    memcmp(h, rr->data, WC_SHA512_DIGEST_SIZE) == 0;
	default:
		return false;
	}
}

static bool
names_match(const unsigned char *der, size_t len, const char *const *names)
{
	for (; names != NULL && *names != NULL; names++)
		if ((*names)[0] != '\0' && tls_cert_matches(der, len, *names))
			return true;
	return false;
}

enum tls_dane_state
tls_dane_match(const struct tlsa_rr *rrs, size_t n, const struct tls_chain *c,
    bool pkix_ok, const char *const *names, bool *ee)
{
	size_t usable = 0;

	*ee = false;
	for (size_t i = 0; i < n; i++) {
		const struct tlsa_rr *rr = &rrs[i];

		if (!tls_tlsa_usable(rr))
			continue;
		usable++;
		if (c->n == 0)
			continue;
		switch (rr->usage) {
		case 3:  /* DANE-EE: the leaf; no name or date checks (RFC 7671 5.1) */
			if (rr_matches(rr, c->der[0], c->len[0])) {
				*ee = true;
				return TLS_DANE_MATCHED;
			}
			break;
		case 2:  /* DANE-TA: an anchor in the presented chain, then PKIX to it */
			for (size_t k = 1; k < c->n; k++)
				if (rr_matches(rr, c->der[k], c->len[k]) &&
				    tls_chain_verify(NULL, c->der[k], c->len[k], c, NULL, 0) &&
				    names_match(c->der[0], c->len[0], names))
					return TLS_DANE_MATCHED;
			break;
		case 1:  /* PKIX-EE */
			if (pkix_ok && rr_matches(rr, c->der[0], c->len[0]) &&
			    names_match(c->der[0], c->len[0], names))
				return TLS_DANE_MATCHED;
			break;
		case 0:  /* PKIX-TA: a CA of the presented, PKIX-valid chain */
			for (size_t k = 1; pkix_ok && k < c->n; k++)
				if (rr_matches(rr, c->der[k], c->len[k]) &&
				    names_match(c->der[0], c->len[0], names))
					return TLS_DANE_MATCHED;
			break;
		}
	}
	return usable > 0 ? TLS_DANE_FAILED : TLS_DANE_NONE;
}

const char *
tls_dane_strstate(enum tls_dane_state st)
{
	switch (st) {
	case TLS_DANE_NONE:
		return "none";
	case TLS_DANE_MATCHED:
		return "matched";
	case TLS_DANE_FAILED:
		return "failed";
	}
	return "?";
}
