/* tls/tls_int.h - declarations shared by the files of the TLS module only.
 * SPDX-License-Identifier: ISC
 * ctx.c (credentials per local domain, SNI selection), selfsigned.c (generated
 * certificates), session.c (memory-I/O sessions) and certcheck.c (RFC 6125 name checks)
 * share these; nothing outside tls/ except tests/unit/test_tls.c includes this file. */
#ifndef QF_TLS_INT_H
#define QF_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "../core/buf.h"
#include "tls.h"

#define TLS_CTX_MAGIC     0x51544c43u  /* "QTLC" */
#define TLS_SESSION_MAGIC 0x51544c53u  /* "QTLS" */

/* One local domain's credentials: one wolfSSL context per role, both holding the
 * domain's certificate chain and key and the CA store. */
struct tls_domain {
	char              *name;     /* lower-case domain, owned */
	WOLFSSL_CTX       *server;   /* accepts incoming streams, owned */
	WOLFSSL_CTX       *client;   /* opens outgoing streams, owned */
	struct tls_domain *next;
};

struct tls_ctx {
	unsigned           magic;    /* TLS_CTX_MAGIC while alive */
	struct tls_domain *domains;  /* in configuration order, owned */
};

/* One TLS connection. Never holds a socket: ciphertext comes from *in and goes to
 * *out, both borrowed from the connection. */
struct tls_session {
	unsigned           magic;        /* TLS_SESSION_MAGIC while alive */
	struct tls_ctx    *ctx;          /* borrowed; outlives the session */
	struct tls_domain *domain;       /* local domain whose credentials are in use */
	WOLFSSL           *ssl;          /* owned */
	struct buf        *in;           /* raw input, borrowed */
	struct buf        *out;          /* raw output, borrowed */
	bool               server;       /* accepting side */
	bool               established;  /* handshake completed */
	bool               out_full;     /* the last send failed because out was full */
	bool               verify_seen;  /* the verify callback ran at least once */
	bool               verify_failed;/* some certificate of the chain failed PKIX */
	char               peer[256];    /* client: the peer domain (SNI, name checks) */
	char               sni[256];     /* server: the SNI received, lower case, or "" */
	char               verdict[160]; /* first PKIX failure, for logs */
	char               error[200];   /* why the session failed, or "" */
};

/* ctx.c: the domain named name (case-insensitive), or NULL. */
struct tls_domain *tls_ctx_domain(const struct tls_ctx *ctx, const char *name);

/* session.c: wolfSSL callbacks installed on every context by ctx.c. */
int tls_session_recv_cb(WOLFSSL *ssl, char *buf, int sz, void *arg);
int tls_session_send_cb(WOLFSSL *ssl, char *buf, int sz, void *arg);
int tls_session_verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store);

/* selfsigned.c: make sure state_dir/<domain>.crt and .key exist, generating a
 * self-signed EC P-256 certificate (CN and SAN dNSName = domain, 10 years) when either
 * is missing. On success returns 0 and fills crt/key (paths) ; -1 and logs on failure. */
int tls_selfsigned_ensure(const char *state_dir, const char *domain,
    char *crt, size_t crtsz, char *key, size_t keysz);

/* certcheck.c: RFC 6125 checks for XMPP server identities.
 * tls_name_matches: does the presented DNS-ID pattern (plen bytes, may contain a
 * leftmost "*" label) match the reference domain? Case-insensitive; a trailing dot on
 * domain is ignored; "*" matches exactly one non-empty label and never a public-looking
 * suffix of one label ("*.example" matches nothing). */
bool tls_name_matches(const char *pattern, size_t plen, const char *domain);
/* tls_cert_matches: is the DER certificate (len bytes) valid for domain? Checks SAN
 * dNSName (with wildcards), XmppAddr and SRV-ID _xmpp-server.<domain>; the subject's
 * last CN is used only when the SAN holds none of those. False on malformed DER. */
bool tls_cert_matches(const unsigned char *der, size_t len, const char *domain);

#endif
