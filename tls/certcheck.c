/* tls/certcheck.c - RFC 6125 / RFC 7590 identity checks of a peer certificate.
 * SPDX-License-Identifier: ISC
 * session.c calls tls_cert_matches() on the peer's leaf certificate when the stream
 * layer asks whether the peer is valid for a domain. The certificate is read with a
 * small DER walker of our own, so every identity type (dNSName, XmppAddr, SRV-ID, CN)
 * is seen exactly as encoded, independent of what the TLS library decodes. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "tls_int.h"

/* A DER element or the remainder of a constructed value. */
struct der {
	const unsigned char *p;
	size_t               len;
};

#define DER_SEQUENCE   0x30
#define DER_SET        0x31
#define DER_OID        0x06
#define DER_BOOLEAN    0x01
#define DER_OCTETS     0x04
#define DER_UTF8       0x0c
#define DER_PRINTABLE  0x13
#define DER_T61        0x14
#define DER_IA5        0x16
#define DER_CTX0_CONS  0xa0  /* [0] constructed: version, otherName, explicit value */
#define DER_CTX2_PRIM  0x82  /* [2] primitive: dNSName */
#define DER_CTX3_CONS  0xa3  /* [3] constructed: extensions */

static const unsigned char oid_san[] = { 0x55, 0x1d, 0x11 };  /* 2.5.29.17 */
static const unsigned char oid_cn[] = { 0x55, 0x04, 0x03 };   /* 2.5.4.3 */
static const unsigned char oid_xmppaddr[] =                   /* 1.3.6.1.5.5.7.8.5 */
    { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x05 };
static const unsigned char oid_srvname[] =                    /* 1.3.6.1.5.5.7.8.7 */
    { 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x08, 0x07 };

#define SRV_PREFIX "_xmpp-server."

/* What the SAN extension presented. */
struct san_result {
	bool any_id;   /* a DNS-ID, XmppAddr or SRV-ID was present (CN is then ignored) */
	bool match;    /* one of them matched the domain */
};

static int der_next(struct der *, unsigned *, struct der *);
static bool oid_is(const struct der *, const unsigned char *, size_t);
static bool exact_matches(const char *, size_t, const char *);
static size_t domain_len(const char *);
static void check_san(struct der, const char *, struct san_result *);
static void check_other_name(struct der, const char *, struct san_result *);
static bool last_cn(struct der, struct der *);

/* Take the next TLV from in: its tag and value. Returns 0, or -1 on malformed input
 * (high tag numbers, indefinite or overlong lengths, truncation). */
static int
der_next(struct der *in, unsigned *tag, struct der *val)
{
	size_t len, i, nlen;

	if (in->len < 2)
		return -1;
	*tag = in->p[0];
	if ((*tag & 0x1f) == 0x1f)
		return -1;
	len = in->p[1];
	i = 2;
	if (len & 0x80) {
		nlen = len & 0x7f;
		if (nlen == 0 || nlen > 4 || in->len < 2 + nlen)
			return -1;
		len = 0;
		for (size_t k = 0; k < nlen; k++)
			len = (len << 8) | in->p[2 + k];
		i += nlen;
	}
	if (len > in->len - i)
		return -1;
	val->p = in->p + i;
	val->len = len;
	in->p += i + len;
	in->len -= i + len;
	return 0;
}

static bool
oid_is(const struct der *oid, const unsigned char *want, size_t n)
{
	return oid->len == n && memcmp(oid->p, want, n) == 0;
}

/* Length of domain without one trailing dot. */
static size_t
domain_len(const char *domain)
{
	size_t n = strlen(domain);

	if (n > 0 && domain[n - 1] == '.')
		n--;
	return n;
}

/* Exact, case-insensitive comparison of a presented name with the domain. */
static bool
exact_matches(const char *name, size_t nlen, const char *domain)
{
	size_t dlen = domain_len(domain);

	if (nlen > 0 && name[nlen - 1] == '.')
		nlen--;
	if (dlen == 0 || nlen != dlen || memchr(name, '\0', nlen) != NULL)
		return false;
	return strncasecmp(name, domain, dlen) == 0;
}

bool
tls_name_matches(const char *pattern, size_t plen, const char *domain)
{
	size_t dlen = domain_len(domain);
	const char *dot;
	size_t rest;

	if (plen == 0 || dlen == 0 || memchr(pattern, '\0', plen) != NULL)
		return false;
	if (pattern[plen - 1] == '.')
		plen--;
	if (plen < 2 || pattern[0] != '*' || pattern[1] != '.')
		return memchr(pattern, '*', plen) == NULL &&
		    exact_matches(pattern, plen, domain);
	/* "*.rest": rest must itself have two labels and no more wildcards, and the
	 * domain must be exactly one non-empty label in front of rest. */
	rest = plen - 2;
	if (rest == 0 || memchr(pattern + 2, '*', rest) != NULL ||
	    memchr(pattern + 2, '.', rest) == NULL)
		return false;
	if ((dot = memchr(domain, '.', dlen)) == NULL || dot == domain)
		return false;
	if ((size_t)(domain + dlen - (dot + 1)) != rest)
		return false;
	return strncasecmp(dot + 1, pattern + 2, rest) == 0;
}

/* otherName ::= SEQUENCE { type-id OID, value [0] EXPLICIT ANY } (the [0] wrapper
 * itself has already been removed by the caller: v is its content). */
static void
check_other_name(struct der v, const char *domain, struct san_result *r)
{
	struct der oid, wrap, val;
	unsigned tag;

	if (der_next(&v, &tag, &oid) == -1 || tag != DER_OID)
		return;
	if (der_next(&v, &tag, &wrap) == -1 || tag != DER_CTX0_CONS)
		return;
	if (der_next(&wrap, &tag, &val) == -1)
		return;
	if (oid_is(&oid, oid_xmppaddr, sizeof(oid_xmppaddr))) {
		r->any_id = true;
		if (tag == DER_UTF8 && exact_matches((const char *)val.p, val.len, domain))
			r->match = true;
	} else if (oid_is(&oid, oid_srvname, sizeof(oid_srvname))) {
		size_t pl = strlen(SRV_PREFIX);

		r->any_id = true;
		if (tag == DER_IA5 && val.len > pl &&
		    strncasecmp((const char *)val.p, SRV_PREFIX, pl) == 0 &&
		    exact_matches((const char *)val.p + pl, val.len - pl, domain))
			r->match = true;
	}
}

/* GeneralNames ::= SEQUENCE OF GeneralName; v is the SEQUENCE element's content. */
static void
check_san(struct der v, const char *domain, struct san_result *r)
{
	struct der gn;
	unsigned tag;

	while (v.len > 0) {
		if (der_next(&v, &tag, &gn) == -1)
			return;
		if (tag == DER_CTX2_PRIM) {
			r->any_id = true;
			if (tls_name_matches((const char *)gn.p, gn.len, domain))
				r->match = true;
		} else if (tag == DER_CTX0_CONS) {
			check_other_name(gn, domain, r);
		}
	}
}

/* The value of the last commonName in a Name (the most specific one). */
static bool
last_cn(struct der name, struct der *cn)
{
	struct der rdn, atv, oid, val;
	unsigned tag;
	bool found = false;

	while (name.len > 0) {
		if (der_next(&name, &tag, &rdn) == -1 || tag != DER_SET)
			return false;
		while (rdn.len > 0) {
			if (der_next(&rdn, &tag, &atv) == -1 || tag != DER_SEQUENCE)
				return false;
			if (der_next(&atv, &tag, &oid) == -1 || tag != DER_OID)
				return false;
			if (der_next(&atv, &tag, &val) == -1)
				return false;
			if (oid_is(&oid, oid_cn, sizeof(oid_cn)) && (tag == DER_UTF8 ||
			    tag == DER_PRINTABLE || tag == DER_IA5 || tag == DER_T61)) {
				*cn = val;
				found = true;
			}
		}
	}
	return found;
}

bool
tls_cert_matches(const unsigned char *der, size_t len, const char *domain)
{
	struct der in = { der, len }, cert, tbs, el, subject = { NULL, 0 }, cn;
	struct san_result r = { false, false };
	unsigned tag;
	int idx = 0;
	bool have_subject = false;

	if (der == NULL || domain == NULL || domain_len(domain) == 0)
		return false;
	if (der_next(&in, &tag, &cert) == -1 || tag != DER_SEQUENCE)
		return false;
	if (der_next(&cert, &tag, &tbs) == -1 || tag != DER_SEQUENCE)
		return false;
	/* TBSCertificate: [0] version?, serial, signature, issuer, validity, subject,
	 * subjectPublicKeyInfo, [1]?, [2]?, [3] extensions? */
	while (tbs.len > 0) {
		if (der_next(&tbs, &tag, &el) == -1)
			return false;
		if (idx == 0 && tag == DER_CTX0_CONS)
			continue;  /* version: not counted */
		if (idx == 4) {
			if (tag != DER_SEQUENCE)
				return false;
			subject = el;
			have_subject = true;
		}
		idx++;
		if (tag == DER_CTX3_CONS && idx > 6) {
			struct der exts, ext, oid, val;

			if (der_next(&el, &tag, &exts) == -1 || tag != DER_SEQUENCE)
				return false;
			while (exts.len > 0) {
				if (der_next(&exts, &tag, &ext) == -1 || tag != DER_SEQUENCE)
					return false;
				if (der_next(&ext, &tag, &oid) == -1 || tag != DER_OID)
					return false;
				if (!oid_is(&oid, oid_san, sizeof(oid_san)))
					continue;
				if (der_next(&ext, &tag, &val) == -1)
					return false;
				if (tag == DER_BOOLEAN && der_next(&ext, &tag, &val) == -1)
					return false;
				if (tag != DER_OCTETS)
					return false;
				if (der_next(&val, &tag, &el) == -1 || tag != DER_SEQUENCE)
					return false;
				check_san(el, domain, &r);
			}
		}
	}
	if (r.any_id)
		return r.match;
	if (have_subject && last_cn(subject, &cn))
		return tls_name_matches((const char *)cn.p, cn.len, domain);
	return false;
}

int
tls_cert_spki(const unsigned char *der, size_t len, const unsigned char **spki,
    size_t *spkilen)
{
	struct der in = { der, len }, cert, tbs, el;
	unsigned tag;
	int idx = 0;

	if (der == NULL || der_next(&in, &tag, &cert) == -1 || tag != DER_SEQUENCE)
		return -1;
	if (der_next(&cert, &tag, &tbs) == -1 || tag != DER_SEQUENCE)
		return -1;
	/* serial, signature, issuer, validity, subject, subjectPublicKeyInfo */
	while (tbs.len > 0) {
		const unsigned char *start = tbs.p;

		if (der_next(&tbs, &tag, &el) == -1)
			return -1;
		if (idx == 0 && tag == DER_CTX0_CONS)
			continue;
		if (idx++ == 5) {
			if (tag != DER_SEQUENCE)
				return -1;
			*spki = start;
			*spkilen = (size_t)(el.p + el.len - start);
			return 0;
		}
	}
	return -1;
}
