/* tls/tls.h - wolfSSL contexts per local domain and memory-I/O TLS sessions.
 * SPDX-License-Identifier: ISC
 * conn.c owns one struct tls_session per TLS connection. The session never touches a
 * socket: ciphertext is taken from the connection's raw input buffer and appended to its
 * raw output buffer (wolfSSL custom I/O callbacks), so bytes read before TLS started
 * (a ClientHello behind <starttls/>) are simply left in the input buffer, and a whole
 * flight (e.g. <proceed/> + ServerHello) leaves in one write. Certificates are checked
 * by PKIX against the CA file; the verdict is recorded, not enforced, so the stream
 * layer can choose SASL EXTERNAL, dialback or refusal by policy. */
#ifndef QF_TLS_H
#define QF_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "../core/buf.h"
#include "../core/config.h"

struct tls_ctx;      /* all local domains' credentials, the CA store */
struct tls_session;  /* one TLS connection */

/* Build contexts for every configured domain. A domain without certificate/key gets a
 * self-signed certificate generated into cfg->state_dir/<domain>.crt/.key when none
 * exists yet (reused afterwards). Returns NULL and logs on failure. */
struct tls_ctx *tls_ctx_new(const struct config *cfg);
void tls_ctx_free(struct tls_ctx *ctx);
/* Write what changed in the client session store since its last save (the daemon calls
 * this every second: many handshakes cost one rewrite a second). */
void tls_ctx_sync(struct tls_ctx *ctx);
/* Reload: build every domain's credentials again from cfg (certificate, key, CA file
 * re-read from disk; ticket lifetime and dane from cfg) and, when all load, replace the
 * ctx's domains with them. Sessions already made keep the credentials they started
 * with until they end; new sessions use the new ones. The ticket keys, the client
 * session store and the "show tls" counters are kept. On failure nothing changes and
 * one "FILE:LINE: message" per problem goes to errs (and the log). Returns 0 or -1. */
int tls_ctx_reload(struct tls_ctx *ctx, const struct config *cfg, FILE *errs);

/* Client session for outgoing streams: presents local_domain's certificate as client
 * certificate, sends SNI = peer_domain, and checks the server certificate against
 * peer_domain. in/out are the connection's raw buffers (borrowed for the session's life). */
struct tls_session *tls_session_client(struct tls_ctx *ctx, const char *local_domain,
    const char *peer_domain, struct buf *in, struct buf *out);
/* Server session for incoming streams: picks the certificate by SNI (falling back to
 * default_domain), requests but does not require a client certificate. */
struct tls_session *tls_session_server(struct tls_ctx *ctx, const char *default_domain,
    struct buf *in, struct buf *out);
void tls_session_free(struct tls_session *s);

enum tls_result {
	TLS_DONE = 0,     /* handshake complete / operation done */
	TLS_AGAIN,        /* needs more input bytes */
	TLS_FAILED,       /* fatal; tls_session_error() says why */
	TLS_CLOSED,       /* peer sent close_notify */
};

/* Drive the handshake with whatever is in `in`; output goes to `out`. */
enum tls_result tls_session_handshake(struct tls_session *s);
bool tls_session_established(const struct tls_session *s);
/* Decrypt into dst; *got = bytes produced (0 with TLS_AGAIN when more input is needed). */
enum tls_result tls_session_read(struct tls_session *s, char *dst, size_t cap, size_t *got);
/* Encrypt n plaintext bytes into `out`. TLS_FAILED if out is full. */
enum tls_result tls_session_write(struct tls_session *s, const char *p, size_t n);
/* Queue a close_notify into `out`. */
void tls_session_shutdown(struct tls_session *s);

const char *tls_session_error(const struct tls_session *s);   /* borrowed, never NULL */
const char *tls_session_version(const struct tls_session *s); /* "TLSv1.3" etc. */
/* The key exchange group of the handshake ("X25519", "SECP256R1", ...; "none"). */
const char *tls_session_group(const struct tls_session *s);
/* Server side: the SNI the client sent, or NULL. */
const char *tls_session_sni(const struct tls_session *s);
/* The peer presented a certificate that chains to a trusted CA (PKIX). */
bool tls_session_peer_trusted(const struct tls_session *s);
/* ... and it is valid for domain (RFC 6125 DNS-ID incl. leftmost wildcard, XmppAddr,
 * SRV-ID _xmpp-server.domain where available; CN only when no SAN). */
bool tls_session_peer_valid_for(const struct tls_session *s, const char *domain);
/* Why the peer certificate is not acceptable (for logs), or "ok". */
const char *tls_session_peer_verdict(const struct tls_session *s);
bool tls_session_resumed(const struct tls_session *s);

/* --- resumption ------------------------------------------------------------------ *
 * Client sessions are kept on disk (state_dir/tls-sessions.db, config tls {
 * session_store }) keyed by (local domain, peer domain, target host:port); the first
 * handshake of a client session offers the saved one. Server tickets are sealed with
 * keys kept in state_dir/ticket.keys (or tls { ticket_key_file }), rotated on schedule,
 * so tickets survive restarts and may be shared by several nodes of one domain. */

/* Client: the SRV target (host, port) this session connects to. Call before the first
 * tls_session_handshake(); it selects the saved session and the DANE reference name.
 * Without it the target is "" (one entry per local/peer pair). Returns 0, -1 if bad. */
int tls_session_set_target(struct tls_session *s, const char *host, unsigned port);
/* Offer / accept ALPN protocol proto (e.g. "xmpp-server" for XEP-0368 direct TLS);
 * call before the first handshake step. Returns 0 or -1. */
int tls_session_set_alpn(struct tls_session *s, const char *proto);

/* --- DANE (RFC 6698, 7671, 7673) ------------------------------------------------- */

/* One TLSA record as the resolver hands it over. */
struct tlsa_rr {
	unsigned char        usage;     /* 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE */
	unsigned char        selector;  /* 0 full certificate, 1 SubjectPublicKeyInfo */
	unsigned char        mtype;     /* 0 exact, 1 SHA-256, 2 SHA-512 */
	const unsigned char *data;      /* association data, borrowed */
	size_t               len;
};

/* How the TLSA RRset was validated. */
enum tls_tlsa_status {
	TLS_TLSA_INSECURE = 0,  /* absent or not DNSSEC-signed: ignored, PKIX as before */
	TLS_TLSA_SECURE,        /* validated: usable records are enforced */
	TLS_TLSA_BOGUS,         /* validation failed: the handshake is refused */
};

/* DANE outcome of a session. */
enum tls_dane_state {
	TLS_DANE_NONE = 0,  /* no usable secure TLSA (or DANE disabled): PKIX applies */
	TLS_DANE_MATCHED,   /* a record matched: the peer is authenticated by DANE */
	TLS_DANE_FAILED,    /* usable records, none matched (or bogus): session failed */
};

/* Client: hand over the TLSA RRset of the target (copied) before the first handshake.
 * SECURE with at least one usable record makes the handshake fail unless one matches
 * (logged, error "DANE: no TLSA record matched"); a DANE-EE match authenticates the peer
 * domain without name checks, DANE-TA requires the name to be the peer domain or the
 * target host (RFC 7673); PKIX-TA/EE need PKIX and a match. BOGUS fails the handshake.
 * INSECURE (or config dane off) changes nothing. Returns 0, or -1 (out of memory). */
int tls_session_set_tlsa(struct tls_session *s, const struct tlsa_rr *rrs, size_t n,
    enum tls_tlsa_status status);
enum tls_dane_state tls_session_dane_state(const struct tls_session *s);
const char *tls_dane_strstate(enum tls_dane_state st);

/* Incoming DANE: does the peer's certificate match one of its domain's secure TLSA
 * records (rrs, n)? DANE-EE: leaf match; DANE-TA: chain to the matched anchor and the
 * leaf valid for domain or target_host (may be NULL); PKIX-TA/EE: PKIX and a match.
 * The stream layer calls it when the certificate does not chain to a trusted CA. */
bool tls_session_peer_matches_tlsa(const struct tls_session *s, const char *domain,
    const char *target_host, const struct tlsa_rr *rrs, size_t n);

/* --- status ------------------------------------------------------------------------ */

struct status;
/* Register "show tls": tls.handshakes.{full,resumed}.{client,server}=, tls.resumption_rate=
 * (percent), tls.dane.matched=, tls.dane.failed=, tls.ticket_key.age_s=,
 * tls.store.entries=. ctx must outlive the status socket. Returns 0 or -1. */
int tls_register_status(struct tls_ctx *ctx, struct status *st);
/* The same lines appended to out (what "show tls" answers). Returns 0 or -1 (full). */
int tls_status_write(struct tls_ctx *ctx, struct buf *out);
/* The same counters as samples (a sample_emit_fn; arg: the tls_ctx). */
struct sample_sink;
void tls_emit(void *arg, struct sample_sink *sink);

#endif
