/* tls/tls_int.h - declarations shared by the files of the TLS module only.
 * SPDX-License-Identifier: ISC
 * ctx.c (credentials per local domain, SNI selection), selfsigned.c (generated
 * certificates), session.c (memory-I/O sessions) and certcheck.c (RFC 6125 name checks)
 * share these; nothing outside tls/ except tests/unit/test_tls.c includes this file. */
#ifndef QF_TLS_INT_H
#define QF_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "../core/buf.h"
#include "tls.h"

#define TLS_CTX_MAGIC     0x51544c43u  /* "QTLC" */
#define TLS_SESSION_MAGIC 0x51544c53u  /* "QTLS" */

/* One local domain's credentials: one wolfSSL context per role, both holding the
 * domain's certificate chain and key and the CA store. Reference counted: the tls_ctx
 * holds one while the domain is in its list, each session one on the domain it uses,
 * so a reload (tls_ctx_reload) can replace the list while sessions made with the old
 * credentials go on with them. */
struct tls_domain {
	char              *name;     /* lower-case domain, owned */
	WOLFSSL_CTX       *server;   /* accepts incoming streams, owned (wolfSSL counts the
	                              * sessions using it too) */
	WOLFSSL_CTX       *client;   /* opens outgoing streams, owned */
	unsigned           refs;     /* the ctx's list + sessions; freed at 0 */
	struct tls_domain *next;     /* in the ctx's list; unused once replaced */
};

/* Counters shown by "show tls". */
struct tls_counters {
	uint64_t full_client, full_server;        /* full handshakes completed */
	uint64_t resumed_client, resumed_server;  /* resumed handshakes completed */
	uint64_t dane_matched, dane_failed;       /* outgoing + incoming DANE outcomes */
	uint64_t store_rejected;                  /* saved sessions refused (corrupt...) */
	uint64_t trimmed_bytes;                   /* zero pages given back (session_trim) */
};

struct tls_store;       /* store.c: client sessions on disk */
struct tls_ticketkeys;  /* ticketkeys.c: server ticket keys */

struct tls_ctx {
	unsigned               magic;    /* TLS_CTX_MAGIC while alive */
	struct tls_domain     *domains;  /* in configuration order, owned */
	struct tls_domain    **index;    /* the same, open addressing by name (owned array,
	                                  * borrowed entries); NULL: walk the list */
	size_t                 index_mask;
	struct tls_store      *store;    /* owned; NULL = no client session store */
	struct tls_ticketkeys *tickets;  /* owned; never NULL after tls_ctx_new */
	bool                   dane;     /* config tls { dane } */
	struct tls_counters    n;
};

/* A presented chain: DER certificates, leaf first (borrowed from wolfSSL). */
#define TLS_CHAIN_MAX 10

/* One TLS connection. Never holds a socket: ciphertext comes from *in and goes to
 * *out, both borrowed from the connection. */
struct tls_session {
	unsigned           magic;        /* TLS_SESSION_MAGIC while alive */
	struct tls_ctx    *ctx;          /* borrowed; outlives the session */
	struct tls_domain *domain;       /* local domain whose credentials are in use (held) */
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
	/* resumption (client) */
	char               target[300];  /* "host:port" of the SRV target, or "" */
	bool               offered;      /* the saved session lookup was done */
	bool               ticket_new;   /* a ticket arrived and is not stored yet */
	bool               counted;      /* the handshake was counted */
	/* DANE (client) */
	struct tlsa_rr    *tlsa;         /* owned copies (data owned too) */
	size_t             n_tlsa;
	enum tls_tlsa_status tlsa_status;
	enum tls_dane_state dane;        /* outcome after the handshake */
	bool               dane_ee;      /* the matching record was DANE-EE */
	/* server resumption: the peer chain recorded when the ticket was issued
	 * (ticketkeys.c), used when wolfSSL has none (stateless tickets carry no
	 * certificate); DER certificates back to back, leaf first, owned */
	unsigned char     *tchain;
	size_t             tchain_len[TLS_CHAIN_MAX];
	size_t             tchain_n;
	int64_t            tproved;      /* when that chain was proved (full handshake) */
};

/* ctx.c: the domain named name (case-insensitive), or NULL. */
struct tls_domain *tls_ctx_domain(const struct tls_ctx *ctx, const char *name);
/* ctx.c: take / drop a reference on d (drop frees it at the last one). */
struct tls_domain *tls_domain_hold(struct tls_domain *d);
void tls_domain_release(struct tls_domain *d);

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
/* tls_cert_spki: the SubjectPublicKeyInfo element (tag and length included) of a DER
 * certificate, borrowed from der. Returns 0, or -1 on malformed DER. */
int tls_cert_spki(const unsigned char *der, size_t len, const unsigned char **spki,
    size_t *spkilen);

struct tls_chain {
	const unsigned char *der[TLS_CHAIN_MAX];
	size_t               len[TLS_CHAIN_MAX];
	size_t               n;
};

/* ticketpeers.c: the certificate chains tickets name by hash, in memory and in
 * <key file>.peers (key_path NULL: memory only), merged with what other nodes wrote.
 * Bounded: TLS_PEERS_MAX chains, TLS_PEER_CHAIN_MAX bytes each. */
#define TLS_PEERS_MAX      1024
#define TLS_PEER_CHAIN_MAX 16384
struct tls_ticketpeers;
struct tls_ticketpeers *tls_ticketpeers_new(const char *key_path);
void tls_ticketpeers_free(struct tls_ticketpeers *tp);
size_t tls_ticketpeers_count(const struct tls_ticketpeers *tp);
/* SHA-256 over the chain (count, then each length and DER). 0 or -1. */
int tls_chain_hash(const struct tls_chain *c, unsigned char out[32]);
/* Keep chain c (copied) for at least keep_s seconds from now; the file is rewritten
 * only when the chain is new or would expire sooner. hash receives tls_chain_hash(c).
 * Returns 0, or -1 (chain too large, out of memory, file not written; logged). */
int tls_ticketpeers_put(struct tls_ticketpeers *tp, const struct tls_chain *c,
    int64_t now, int64_t keep_s, unsigned char hash[32]);
/* The chain whose hash starts with the hlen bytes of hash (memory, then the file when
 * another node changed it), borrowed until the next call. 0, or -1 when unknown. */
int tls_ticketpeers_get(struct tls_ticketpeers *tp, const unsigned char *hash,
    size_t hlen, struct tls_chain *c);

/* dane.c: the peer chain of an established session (n = 0 if none). */
void tls_peer_chain(const struct tls_session *s, struct tls_chain *c);
/* Does the chain's leaf chain up to a CA of roots (may be NULL) or to the anchor ta
 * (DER, may be NULL), through the presented intermediates? Dates and signatures are
 * checked. why (may be NULL) receives the reason of a failure. */
bool tls_chain_verify(WOLFSSL_CERT_MANAGER *roots, const unsigned char *ta, size_t talen,
    const struct tls_chain *c, char *why, size_t whysz);
/* Match the chain against TLSA records. pkix_ok: the chain passed PKIX. names: the
 * reference identifiers for DANE-TA/PKIX (NULL-terminated array). Returns MATCHED (and
 * *ee when the record was DANE-EE) or FAILED; NONE when no record is usable. */
enum tls_dane_state tls_dane_match(const struct tlsa_rr *rrs, size_t n,
    const struct tls_chain *c, bool pkix_ok, const char *const *names, bool *ee);
/* Is a record usable (known usage/selector/type, right data length)? */
bool tls_tlsa_usable(const struct tlsa_rr *rr);

/* store.c: the client session store. tls_store_open loads path (a missing, corrupt or
 * foreign file is logged and yields an empty store); NULL only when out of memory. */
struct tls_store *tls_store_open(const char *path, size_t max_entries);
void tls_store_free(struct tls_store *st);
/* The saved session (DER, borrowed until the next store call) for key, or NULL when
 * none or expired. */
const unsigned char *tls_store_get(struct tls_store *st, const char *key, time_t now,
    size_t *len);
/* The most recently saved unexpired session whose key starts with prefix (DER and its
 * key, borrowed until the next store call), or NULL. */
const unsigned char *tls_store_get_newest(struct tls_store *st, const char *prefix,
    time_t now, size_t *len, const char **key);
/* Save (replace) key's session; expiry is absolute. Writes the file. 0 or -1 (logged). */
int tls_store_put(struct tls_store *st, const char *key, const unsigned char *der,
    size_t len, time_t expiry, time_t now);
void tls_store_drop(struct tls_store *st, const char *key);
/* Write the file if something changed since the last save (put and drop save at once
 * only when the last save is a second old). Returns 0, or -1 when it cannot be queued. */
int tls_store_sync(struct tls_store *st);
size_t tls_store_count(const struct tls_store *st);
/* Replace path with data atomically (temporary file, rename), mode 0600; fsynced later by
 * atomicfile's writer thread (atomicfile_replace). 0 or -1 (logged). */
int tls_file_write_atomic(const char *path, const unsigned char *data, size_t n);

/* ticketkeys.c: server ticket keys (current + previous). path NULL: memory only. */
struct tls_ticketkeys *tls_ticketkeys_new(const char *path, time_t rotation_s);
void tls_ticketkeys_free(struct tls_ticketkeys *tk);
/* Install the ticket callback and lifetime hint on a server context. */
int tls_ticketkeys_attach(struct tls_ticketkeys *tk, WOLFSSL_CTX *wc, unsigned lifetime_s);
/* Rotate when the current key is older than the rotation interval at time now
 * (reloading first in case another node already did). Returns 1 rotated, 0 not. */
int tls_ticketkeys_maybe_rotate(struct tls_ticketkeys *tk, time_t now);
/* Age in seconds of the current key at now. */
long tls_ticketkeys_age(const struct tls_ticketkeys *tk, time_t now);
/* Peer identities sealed in tickets: every ticket sealed for a client that presented a
 * certificate carries the hash of that chain and when it was proved; the chain is kept
 * by ticketpeers.c (memory and <ticket key file>.peers, shareable by the nodes that
 * share the key file). A ticket whose chain is unknown to this node, or proved more
 * than ticket lifetime + rotation ago, is refused (full handshake); otherwise the chain
 * is attached to the session (tchain) and re-verified. Number of chains kept: */
size_t tls_ticketkeys_peer_count(const struct tls_ticketkeys *tk);

/* The identity sealed in a ticket (TLS_IDENT_HASH bytes of the chain's SHA-256). */
#define TLS_IDENT_HASH 24
struct tls_ticket_ident {
	bool          present;                /* the client proved a certificate chain */
	unsigned char hash[TLS_IDENT_HASH];   /* tls_chain_hash() of it, cut */
	int64_t       proved;                 /* when (seconds; kept modulo 2^32) */
};
/* The two halves of the ticket callback, without the wolfSSL session (tests use them
 * directly). seal: fill key_name, iv, mac; encrypt ticket (len bytes, room bytes
 * writable) in place with id appended when room allows; *out_len = sealed length.
 * open: decrypt ticket (len bytes) with the key named key_name; *out_len = wolfSSL's
 * part, *id = the identity carried (present false for none or an older ticket).
 * Both return WOLFSSL_TICKET_RET_OK, _CREATE (opened with the previous key: reissue)
 * or _REJECT (unknown key, forged or damaged ticket, identity proved too long ago). */
int tls_ticketkeys_seal(struct tls_ticketkeys *tk, const struct tls_ticket_ident *id,
    unsigned char *key_name, unsigned char *iv, unsigned char *mac,
    unsigned char *ticket, int len, int room, int *out_len);
int tls_ticketkeys_open(struct tls_ticketkeys *tk, const unsigned char *key_name,
    const unsigned char *iv, const unsigned char *mac, unsigned char *ticket, int len,
    int *out_len, struct tls_ticket_ident *id);

#endif
