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

#endif
