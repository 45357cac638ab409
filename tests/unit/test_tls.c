/* tests/unit/test_tls.c - unit tests for tls/: real in-memory handshakes and name checks.
 * SPDX-License-Identifier: ISC
 * Client and server sessions talk through two pairs of bufs shuttled by the test, using
 * the committed test PKI in tests/data/pki (see make-pki.sh there). Covers TLS 1.3, SNI
 * selection, PKIX verdicts, RFC 6125 names, split records, the pipelined first flight,
 * close_notify, full output buffers and self-signed generation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "tls/tls.h"
#include "tls/tls_int.h"

#include <wolfssl/wolfcrypt/asn_public.h>

#include "tests/unit/tlsfix.h"

/* Finish both handshakes, shuttling bytes, in fewer than max_rounds rounds; asserts
 * success. */
static void
handshake(struct tlslink *l, int max_rounds)
{
	assert_int_equal(fx_handshake_rounds(l, max_rounds), TLS_DONE);
	assert_true(tls_session_established(l->c));
	assert_true(tls_session_established(l->s));
}

/* Start a client (local -> peer on client ctx cc) and a server (default domain def on
 * server ctx sc) and complete the handshake. */
static void
connect_pair(struct tlslink *l, struct tls_ctx *cc, const char *local, const char *peer,
    struct tls_ctx *sc, const char *def)
{
	tlslink_init(l);
	l->c = tls_session_client(cc, local, peer, &l->c_in, &l->c_out);
	l->s = tls_session_server(sc, def, &l->s_in, &l->s_out);
	assert_non_null(l->c);
	assert_non_null(l->s);
	handshake(l, 20);
}

/* Configs (CA and domain only), a client ctx for local (pki cbase) and a server ctx
 * for sdom (pki sbase). */
static void
pair_open(struct fx_pair *p, const char *local, const char *cbase, const char *sdom,
    const char *sbase)
{
	fx_tcfg_bare(&p->ct, NULL);
	tcfg_domain(&p->ct, local, cbase);
	fx_tcfg_bare(&p->st, NULL);
	tcfg_domain(&p->st, sdom, sbase);
	p->cc = fx_ctx(&p->ct);
	p->sc = fx_ctx(&p->st);
}

/* --- handshakes ------------------------------------------------------------------ */

/* TLS 1.3 by default; SNI picks c.example among two domains; both certificates are
 * checked by PKIX and by name, in both directions. */
static void
test_tls13_sni_and_mutual_verdicts(void **state)
{
	struct fx_pair p;

	fx_tcfg_bare(&p.ct, NULL);
	tcfg_domain(&p.ct, "a.example", "a");
	fx_tcfg_bare(&p.st, NULL);
	tcfg_domain(&p.st, "b.example", "b");
	tcfg_domain(&p.st, "c.example", "c");
	p.cc = fx_ctx(&p.ct);
	p.sc = fx_ctx(&p.st);

	connect_pair(&p.l, p.cc, "a.example", "c.example", p.sc, "b.example");
	assert_string_equal(tls_session_version(p.l.c), "TLSv1.3");
	assert_string_equal(tls_session_version(p.l.s), "TLSv1.3");
	/* X25519 is offered first and taken: no HelloRetryRequest, the cheap key exchange */
	assert_string_equal(tls_session_group(p.l.c), "X25519");
	assert_string_equal(tls_session_group(p.l.s), "X25519");
	assert_false(tls_session_resumed(p.l.c));
	assert_string_equal(tls_session_sni(p.l.s), "c.example");
	assert_null(tls_session_sni(p.l.c));
	/* client sees c.example's certificate: SNI switched the server's credentials */
	assert_true(tls_session_peer_trusted(p.l.c));
	assert_string_equal(tls_session_peer_verdict(p.l.c), "ok");
	assert_true(tls_session_peer_valid_for(p.l.c, "c.example"));
	assert_true(tls_session_peer_valid_for(p.l.c, "C.Example"));
	assert_false(tls_session_peer_valid_for(p.l.c, "b.example"));
	/* server sees the client certificate of a.example */
	assert_true(tls_session_peer_trusted(p.l.s));
	assert_string_equal(tls_session_peer_verdict(p.l.s), "ok");
	assert_true(tls_session_peer_valid_for(p.l.s, "a.example"));
	assert_false(tls_session_peer_valid_for(p.l.s, "b.example"));
	tlslink_free(&p.l);

	/* unknown SNI: the default domain's certificate is used */
	connect_pair(&p.l, p.cc, "a.example", "unknown.example", p.sc, "b.example");
	assert_string_equal(tls_session_sni(p.l.s), "unknown.example");
	assert_true(tls_session_peer_trusted(p.l.c));
	assert_true(tls_session_peer_valid_for(p.l.c, "b.example"));
	assert_false(tls_session_peer_valid_for(p.l.c, "unknown.example"));
	tlslink_free(&p.l);

	/* SNI naming the default explicitly and a client of another ctx domain */
	connect_pair(&p.l, p.cc, "a.example", "b.example", p.sc, "c.example");
	assert_true(tls_session_peer_valid_for(p.l.c, "b.example"));
	assert_false(tls_session_peer_valid_for(p.l.c, "c.example"));
	tlslink_free(&p.l);

	/* no session for a domain that is not local */
	tlslink_init(&p.l);
	assert_null(tls_session_client(p.cc, "z.example", "b.example", &p.l.c_in,
	    &p.l.c_out));
	tlslink_free(&p.l);

	fx_pair_close(&p);
}

/* Server presents certificates that are not acceptable for b.example. */
static void
test_bad_server_certificates(void **state)
{
	static const struct {
		const char *base;      /* pki file b.example is served with */
		bool trusted;
		const char *valid;     /* a name it is valid for (needs trust) or NULL */
		const char *verdict;   /* tls_session_peer_verdict() of the client */
	} cases[] = {
		/* trusted, wrong name */
		{ "wrong", true, "wrong.example", "ok" },
		/* self-signed */
		{ "self", false, NULL, "depth 0: self-signed certificate" },
		/* right name a.example, unknown CA */
		{ "foreign", false, NULL, "depth 0: unable to get local issuer certificate" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx_pair p;

		pair_open(&p, "a.example", "a", "b.example", cases[i].base);
		connect_pair(&p.l, p.cc, "a.example", "b.example", p.sc, "b.example");
		assert_int_equal(tls_session_peer_trusted(p.l.c), cases[i].trusted);
		assert_false(tls_session_peer_valid_for(p.l.c, "b.example"));
		if (cases[i].valid != NULL)
			assert_true(tls_session_peer_valid_for(p.l.c, cases[i].valid));
		assert_string_equal(tls_session_peer_verdict(p.l.c), cases[i].verdict);
		if (!cases[i].trusted) {
			/* an untrusted certificate is never valid, even for its own name */
			assert_false(tls_session_peer_valid_for(p.l.c, "self.example"));
			assert_false(tls_session_peer_valid_for(p.l.c, "a.example"));
		}
		/* the server trusts a.example's client certificate all the same */
		assert_true(tls_session_peer_valid_for(p.l.s, "a.example"));
		tlslink_free(&p.l);
		fx_pair_close(&p);
	}
}

/* A client certificate from an unknown issuer is recorded, not refused; a wildcard
 * server certificate is valid for one label below it. */
static void
test_untrusted_client_and_wildcard_server(void **state)
{
	struct fx_pair p;

	pair_open(&p, "self.example", "self", "x.w.example", "wild");
	connect_pair(&p.l, p.cc, "self.example", "x.w.example", p.sc, "x.w.example");
	assert_false(tls_session_peer_trusted(p.l.s));
	assert_false(tls_session_peer_valid_for(p.l.s, "self.example"));
	assert_string_not_equal(tls_session_peer_verdict(p.l.s), "ok");
	assert_true(tls_session_peer_valid_for(p.l.c, "x.w.example"));
	assert_false(tls_session_peer_valid_for(p.l.c, "w.example"));
	assert_false(tls_session_peer_valid_for(p.l.c, "a.x.w.example"));
	tlslink_free(&p.l);
	fx_pair_close(&p);
}

/* Bytes a tls_ctx for the first ndom of a, b, c, wrong (pki basenames) holds while it
 * exists, with ca_file tests/data/pki/<ca>. */
static size_t
ctx_cost(size_t ndom, const char *ca)
{
	static const char *const bases[] = { "a", "b", "c", "wrong" };
	struct tcfg t;
	struct tls_ctx *ctx;
	size_t before, after;
	char name[32];

	fx_tcfg_bare(&t, NULL);
	free(t.cfg.ca_file);
	t.cfg.ca_file = fx_pki(ca);
	for (size_t i = 0; i < ndom; i++) {
		snprintf(name, sizeof(name), "%s.example", bases[i]);
		tcfg_domain(&t, name, bases[i]);
	}
	before = fx_alloc_now();
	ctx = fx_ctx(&t);
	after = fx_alloc_now();
	tls_ctx_free(ctx);
	tcfg_free(&t);
	return after > before ? after - before : 0;
}

/* What an established connection keeps, both ends together, after a full handshake
 * with certificates both ways (the heap bytes from before the two sessions are made to
 * after the handshake). Debian's wolfSSL decodes each peer certificate's public key into
 * OpenSSL-style objects, about 16 KiB for P-256, kept with its copy of the peer's leaf
 * for the connection's life; the verify callback frees it (session.c, drop_cert_pkey).
 * What is left is wolfSSL's session object (37 KiB, most of it room for chains, given
 * back to the kernel page by page but still allocated), the WOLFSSL object and small
 * pieces. Both ends still verify, by name too, and data goes both ways. */
static void
test_established_session_heap(void **state)
{
	struct fx_pair p;
	size_t before, held[3];

	pair_open(&p, "a.example", "a", "b.example", "b");
	for (int i = 0; i < 3; i++) {
		before = fx_alloc_now();
		connect_pair(&p.l, p.cc, "a.example", "b.example", p.sc, "b.example");
		held[i] = fx_alloc_now() - before;
		assert_false(tls_session_resumed(p.l.c));
		assert_true(tls_session_peer_valid_for(p.l.c, "b.example"));
		assert_true(tls_session_peer_valid_for(p.l.s, "a.example"));
		fx_exchange(&p.l);
		tlslink_free(&p.l);
	}
	print_message("heap held by an established pair of sessions: %zu, %zu, %zu\n",
	    held[0], held[1], held[2]);
	/* with the keys: 151 KiB (Debian 12's wolfSSL 5.5.4); without: 117 KiB */
	assert_true(held[2] < 128 * 1024);
	assert_true(held[1] < 128 * 1024);
	fx_pair_close(&p);
}

/* The CA file is held once however many domains there are: each domain's two contexts
 * share one store. bundle.crt is ca.crt after 40 other CAs, so what it costs beyond
 * ca.crt is what every private copy would add. Verdicts through the shared store: a
 * certificate of the last CA of the bundle is trusted in both directions, one of a CA
 * outside it is not. */
static void
test_ca_file_shared(void **state)
{
	size_t bundle, per_dom_bundle, per_dom_ca;
	struct fx_pair p;

	(void)ctx_cost(4, "bundle.crt");  /* one-time allocations (wolfSSL's, stdio's) */
	bundle = ctx_cost(1, "bundle.crt") - ctx_cost(1, "ca.crt");
	per_dom_bundle = ctx_cost(4, "bundle.crt") - ctx_cost(1, "bundle.crt");
	per_dom_ca = ctx_cost(4, "ca.crt") - ctx_cost(1, "ca.crt");
	print_message("bundle: %zu bytes once; 3 more domains: %zu with it, %zu with ca.crt\n",
	    bundle, per_dom_bundle, per_dom_ca);
	/* 40 signers (EC P-256, about 870 bytes each in wolfSSL's CA table) */
	assert_true(bundle > 40 * 512);
	/* three more domains (six contexts) add less than a fifth of one copy, where
	 * private copies would add six */
	assert_true(per_dom_bundle < per_dom_ca + bundle / 5);

	fx_tcfg_bare(&p.ct, NULL);
	free(p.ct.cfg.ca_file);
	p.ct.cfg.ca_file = fx_pki("bundle.crt");
	tcfg_domain(&p.ct, "a.example", "a");
	tcfg_domain(&p.ct, "c.example", "c");
	fx_tcfg_bare(&p.st, NULL);
	free(p.st.cfg.ca_file);
	p.st.cfg.ca_file = fx_pki("bundle.crt");
	tcfg_domain(&p.st, "b.example", "b");
	tcfg_domain(&p.st, "self.example", "self");
	p.cc = fx_ctx(&p.ct);
	p.sc = fx_ctx(&p.st);
	connect_pair(&p.l, p.cc, "c.example", "b.example", p.sc, "b.example");
	assert_true(tls_session_peer_trusted(p.l.c));
	assert_true(tls_session_peer_valid_for(p.l.c, "b.example"));
	assert_true(tls_session_peer_trusted(p.l.s));
	assert_true(tls_session_peer_valid_for(p.l.s, "c.example"));
	tlslink_free(&p.l);
	connect_pair(&p.l, p.cc, "a.example", "self.example", p.sc, "b.example");
	assert_false(tls_session_peer_trusted(p.l.c));
	assert_string_equal(tls_session_peer_verdict(p.l.c), "depth 0: self-signed certificate");
	assert_true(tls_session_peer_valid_for(p.l.s, "a.example"));
	tlslink_free(&p.l);
	fx_pair_close(&p);
}

/* A raw wolfSSL TLS 1.2 client without any certificate: the server accepts it (client
 * certificates are requested, not required) and reports "no certificate". */
static int
raw_recv(WOLFSSL *ssl, char *b, int sz, void *arg)
{
	struct buf *in = ((struct buf **)arg)[0];
	int n = (int)in->len < sz ? (int)in->len : sz;

	if (n == 0)
		return WOLFSSL_CBIO_ERR_WANT_READ;
	memcpy(b, in->data, (size_t)n);
	buf_consume(in, (size_t)n);
	return n;
}

static int
raw_send(WOLFSSL *ssl, char *b, int sz, void *arg)
{
	struct buf *out = ((struct buf **)arg)[1];

	return buf_append(out, b, (size_t)sz) == 0 ? sz : WOLFSSL_CBIO_ERR_GENERAL;
}

/* A raw wolfSSL client (method ctx rc) over l's client buffers, facing a tls/ server
 * for b.example: io holds the buffers for raw_recv/raw_send. */
struct raw {
	struct tcfg     st;
	struct tls_ctx *sc;
	struct tlslink     l;
	struct buf     *io[2];
	WOLFSSL        *rs;
};

static void
raw_open(struct raw *w, WOLFSSL_CTX *rc)
{
	fx_tcfg_bare(&w->st, NULL);
	tcfg_domain(&w->st, "b.example", "b");
	w->sc = fx_ctx(&w->st);
	tlslink_init(&w->l);
	w->io[0] = &w->l.c_in;
	w->io[1] = &w->l.c_out;
	wolfSSL_CTX_set_verify(rc, WOLFSSL_VERIFY_NONE, NULL);
	wolfSSL_CTX_SetIORecv(rc, raw_recv);
	wolfSSL_CTX_SetIOSend(rc, raw_send);
	assert_non_null(w->rs = wolfSSL_new(rc));
	wolfSSL_SetIOReadCtx(w->rs, w->io);
	wolfSSL_SetIOWriteCtx(w->rs, w->io);
	w->l.s = tls_session_server(w->sc, "b.example", &w->l.s_in, &w->l.s_out);
	assert_non_null(w->l.s);
}

static void
raw_close(struct raw *w, WOLFSSL_CTX *rc)
{
	wolfSSL_free(w->rs);
	wolfSSL_CTX_free(rc);
	tlslink_free(&w->l);
	tls_ctx_free(w->sc);
	tcfg_free(&w->st);
}

static void
test_tls12_client_without_certificate(void **state)
{
	struct raw w;
	WOLFSSL_CTX *rc;
	enum tls_result r;
	int ret = -1;
	char got[64];
	size_t n;

	assert_non_null(rc = wolfSSL_CTX_new(wolfTLSv1_2_client_method()));
	raw_open(&w, rc);
	for (int i = 0; i < 20 && !tls_session_established(w.l.s); i++) {
		ret = wolfSSL_connect(w.rs);
		fx_move(&w.l.c_out, &w.l.s_in);
		assert_int_not_equal(tls_session_handshake(w.l.s), TLS_FAILED);
		fx_move(&w.l.s_out, &w.l.c_in);
	}
	if (ret != WOLFSSL_SUCCESS)
		ret = wolfSSL_connect(w.rs);
	assert_int_equal(ret, WOLFSSL_SUCCESS);
	assert_true(tls_session_established(w.l.s));
	assert_string_equal(tls_session_version(w.l.s), "TLSv1.2");
	assert_null(tls_session_sni(w.l.s));
	assert_false(tls_session_peer_trusted(w.l.s));
	assert_false(tls_session_peer_valid_for(w.l.s, "a.example"));
	assert_string_equal(tls_session_peer_verdict(w.l.s), "no certificate");
	/* data still flows */
	assert_int_equal(wolfSSL_write(w.rs, "hello", 5), 5);
	fx_move(&w.l.c_out, &w.l.s_in);
	r = fx_read_all(w.l.s, got, sizeof(got), &n);
	assert_int_equal(r, TLS_AGAIN);
	assert_string_equal(got, "hello");
	raw_close(&w, rc);
}

/* The raw client and the server in turns until the server is done or fails (at most
 * 10 rounds); returns the server's result. */
static enum tls_result
raw_handshake(struct raw *w)
{
	enum tls_result r = TLS_AGAIN;

	for (int i = 0; i < 10 && r == TLS_AGAIN; i++) {
		wolfSSL_connect(w->rs);
		fx_move(&w->l.c_out, &w->l.s_in);
		r = tls_session_handshake(w->l.s);
		fx_move(&w->l.s_out, &w->l.c_in);
	}
	return r;
}

/* A client that only speaks TLS 1.1 is refused: TLS 1.2 is the minimum. */
static void
test_tls11_refused(void **state)
{
	struct raw w;
	WOLFSSL_CTX *rc;
	enum tls_result r;

	rc = wolfSSL_CTX_new(wolfTLSv1_1_client_method());
	if (rc == NULL) {
		skip();  /* not compiled into this wolfSSL: nothing to refuse */
		return;
	}
	raw_open(&w, rc);
	r = raw_handshake(&w);
	assert_int_equal(r, TLS_FAILED);
	assert_false(tls_session_established(w.l.s));
	assert_true(strlen(tls_session_error(w.l.s)) > 0);
	raw_close(&w, rc);
}

/* Run a raw client (method ctx rc, suites list) against a tls/ server for b.example;
 * returns the server's result and leaves the suite in *suite. */
static enum tls_result
raw_suite(WOLFSSL_METHOD *m, const char *list, char *suite, size_t n)
{
	struct raw w;
	WOLFSSL_CTX *rc;
	enum tls_result r;

	assert_non_null(rc = wolfSSL_CTX_new(m));
	assert_int_equal(wolfSSL_CTX_set_cipher_list(rc, list), WOLFSSL_SUCCESS);
	raw_open(&w, rc);
	r = raw_handshake(&w);
	snprintf(suite, n, "%s", r == TLS_DONE ? wolfSSL_get_cipher(w.l.s->ssl) : "-");
	raw_close(&w, rc);
	return r;
}

/* Cipher suites: quickfed offers and accepts TLS 1.3's AEAD suites and, for TLS 1.2,
 * ECDHE/DHE with AES-GCM or ChaCha20-Poly1305 only (Debian's wolfSSL enables NULL,
 * RC4, 3DES, anonymous and CBC suites by default); ChaCha20-Poly1305 is preferred with
 * Debian's software AES, AES-GCM with an AES-NI build, and the server's order wins. */
static void
test_cipher_suites(void **state)
{
#ifdef WOLFSSL_AESNI
	static const char *fast13 = "TLS13-AES128-GCM-SHA256";
	static const char *fast12 = "ECDHE-ECDSA-AES128-GCM-SHA256";
#else
	static const char *fast13 = "TLS13-CHACHA20-POLY1305-SHA256";
	static const char *fast12 = "ECDHE-ECDSA-CHACHA20-POLY1305";
#endif
	struct fx_pair p;
	char suite[64];

	pair_open(&p, "a.example", "a", "b.example", "b");
	connect_pair(&p.l, p.cc, "a.example", "b.example", p.sc, "b.example");
	assert_string_equal(wolfSSL_get_cipher(p.l.c->ssl), fast13);
	assert_string_equal(wolfSSL_get_cipher(p.l.s->ssl), fast13);
	tlslink_free(&p.l);
	fx_pair_close(&p);

	/* the server's order wins over a client's that lists AES first */
	assert_int_equal(raw_suite(wolfTLSv1_3_client_method(),
	    "TLS13-AES256-GCM-SHA384:TLS13-AES128-GCM-SHA256:TLS13-CHACHA20-POLY1305-SHA256",
	    suite, sizeof(suite)), TLS_DONE);
	assert_string_equal(suite, fast13);
	assert_int_equal(raw_suite(wolfTLSv1_2_client_method(),
	    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
	    "ECDHE-ECDSA-CHACHA20-POLY1305", suite, sizeof(suite)), TLS_DONE);
	assert_string_equal(suite, fast12);
	/* a client offering only suites without encryption, broken or anonymous ones, or
	 * CBC, finds none in common */
	assert_int_equal(raw_suite(wolfTLSv1_3_client_method(), "TLS13-SHA256-SHA256",
	    suite, sizeof(suite)), TLS_FAILED);
	assert_int_equal(raw_suite(wolfTLSv1_2_client_method(),
	    "ECDHE-ECDSA-NULL-SHA:ECDHE-ECDSA-RC4-SHA:ECDHE-ECDSA-DES-CBC3-SHA:"
	    "ADH-AES128-SHA:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",
	    suite, sizeof(suite)), TLS_FAILED);
}

/* --- data --------------------------------------------------------------------------- */

static void
test_application_data_split_and_close(void **state)
{
	struct fx_pair p;
	char big[20000], got[32768];
	size_t n, total;
	enum tls_result r;

	pair_open(&p, "a.example", "a", "b.example", "b");
	connect_pair(&p.l, p.cc, "a.example", "b.example", p.sc, "b.example");

	/* client -> server, whole records */
	assert_int_equal(tls_session_write(p.l.c, "<stream:stream>", 15), TLS_DONE);
	fx_move(&p.l.c_out, &p.l.s_in);
	assert_int_equal(fx_read_all(p.l.s, got, sizeof(got), &n), TLS_AGAIN);
	assert_string_equal(got, "<stream:stream>");
	/* nothing more: TLS_AGAIN with got == 0 */
	assert_int_equal(tls_session_read(p.l.s, got, sizeof(got), &n), TLS_AGAIN);
	assert_int_equal(n, 0);

	/* server -> client: the client also absorbs the TLS 1.3 NewSessionTicket here */
	assert_int_equal(tls_session_write(p.l.s, "<features/>", 11), TLS_DONE);
	fx_move(&p.l.s_out, &p.l.c_in);
	assert_int_equal(fx_read_all(p.l.c, got, sizeof(got), &n), TLS_AGAIN);
	assert_string_equal(got, "<features/>");

	/* a 20000-byte message (two records) fed one byte at a time */
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 26);
	assert_int_equal(tls_session_write(p.l.c, big, sizeof(big)), TLS_DONE);
	total = 0;
	while (p.l.c_out.len > 0) {
		assert_int_equal(buf_append(&p.l.s_in, p.l.c_out.data, 1), 0);
		buf_consume(&p.l.c_out, 1);
		r = tls_session_read(p.l.s, got + total, sizeof(got) - total, &n);
		assert_true(r == TLS_DONE || r == TLS_AGAIN);
		assert_true(r == TLS_DONE ? n > 0 : n == 0);
		total += n;
	}
	assert_int_equal(total, sizeof(big));
	assert_memory_equal(got, big, sizeof(big));

	/* small read buffer: data comes out in pieces */
	assert_int_equal(tls_session_write(p.l.s, "0123456789", 10), TLS_DONE);
	fx_move(&p.l.s_out, &p.l.c_in);
	assert_int_equal(tls_session_read(p.l.c, got, 4, &n), TLS_DONE);
	assert_int_equal(n, 4);
	assert_memory_equal(got, "0123", 4);
	assert_int_equal(tls_session_read(p.l.c, got, sizeof(got), &n), TLS_DONE);
	assert_int_equal(n, 6);
	assert_memory_equal(got, "456789", 6);

	/* data followed by close_notify: the data first, then TLS_CLOSED */
	assert_int_equal(tls_session_write(p.l.c, "</stream:stream>", 16), TLS_DONE);
	tls_session_shutdown(p.l.c);
	fx_move(&p.l.c_out, &p.l.s_in);
	assert_int_equal(tls_session_read(p.l.s, got, sizeof(got), &n), TLS_DONE);
	assert_int_equal(n, 16);
	assert_int_equal(tls_session_read(p.l.s, got, sizeof(got), &n), TLS_CLOSED);
	assert_int_equal(n, 0);
	assert_string_equal(tls_session_error(p.l.s), "peer closed");
	tlslink_free(&p.l);

	/* output buffer full: write fails with a reason */
	connect_pair(&p.l, p.cc, "a.example", "b.example", p.sc, "b.example");
	p.l.c_out.max = 100;
	assert_int_equal(tls_session_write(p.l.c, big, 1000), TLS_FAILED);
	assert_string_equal(tls_session_error(p.l.c), "output buffer full");
	assert_int_equal(tls_session_write(p.l.c, "x", 1), TLS_FAILED);
	tlslink_free(&p.l);

	/* garbage instead of a ClientHello */
	tlslink_init(&p.l);
	p.l.s = tls_session_server(p.sc, "b.example", &p.l.s_in, &p.l.s_out);
	assert_int_equal(buf_puts(&p.l.s_in, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
	assert_int_equal(tls_session_handshake(p.l.s), TLS_FAILED);
	assert_string_not_equal(tls_session_error(p.l.s), "");
	assert_int_equal(tls_session_handshake(p.l.s), TLS_FAILED);
	tlslink_free(&p.l);

	fx_pair_close(&p);
}

/* <starttls/> + ClientHello leave in one write; the server, having consumed the
 * plaintext, answers <proceed/> + ServerHello in one write. */
static void
test_pipelined_first_flight(void **state)
{
	static const char starttls[] = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
	static const char proceed[] = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
	struct fx_pair p;

	pair_open(&p, "a.example", "a", "b.example", "b");
	tlslink_init(&p.l);
	p.l.c = tls_session_client(p.cc, "a.example", "b.example", &p.l.c_in, &p.l.c_out);
	p.l.s = tls_session_server(p.sc, "b.example", &p.l.s_in, &p.l.s_out);

	assert_int_equal(buf_puts(&p.l.c_out, starttls), 0);
	assert_int_equal(tls_session_handshake(p.l.c), TLS_AGAIN);
	assert_true(p.l.c_out.len > strlen(starttls) + 5);
	assert_memory_equal(p.l.c_out.data, starttls, strlen(starttls));
	assert_int_equal(p.l.c_out.data[strlen(starttls)], 0x16);  /* handshake record */
	fx_move(&p.l.c_out, &p.l.s_in);

	/* the stream layer consumed <starttls/> and queued <proceed/> */
	buf_consume(&p.l.s_in, strlen(starttls));
	assert_int_equal(buf_puts(&p.l.s_out, proceed), 0);
	assert_int_equal(tls_session_handshake(p.l.s), TLS_AGAIN);
	assert_true(p.l.s_out.len > strlen(proceed) + 5);
	assert_memory_equal(p.l.s_out.data, proceed, strlen(proceed));
	assert_int_equal(p.l.s_out.data[strlen(proceed)], 0x16);
	fx_move(&p.l.s_out, &p.l.c_in);

	/* the client's stream layer reads <proceed/>, then TLS continues */
	assert_memory_equal(p.l.c_in.data, proceed, strlen(proceed));
	buf_consume(&p.l.c_in, strlen(proceed));
	handshake(&p.l, 10);
	assert_true(tls_session_peer_valid_for(p.l.c, "b.example"));
	assert_true(tls_session_peer_valid_for(p.l.s, "a.example"));
	tlslink_free(&p.l);
	fx_pair_close(&p);
}

/* --- names ---------------------------------------------------------------------------- */

static void
test_name_rules(void **state)
{
	static const struct {
		const char *pattern, *domain;
		bool match;
	} cases[] = {
		{ "a.example", "a.example", true },
		{ "A.EXAMPLE", "a.example", true },
		{ "a.example", "A.Example", true },
		{ "a.example.", "a.example", true },      /* absolute forms */
		{ "a.example", "a.example.", true },
		{ "a.example", "b.example", false },
		{ "a.example", "xa.example", false },
		{ "a.example", "a.example.com", false },
		{ "*.w.example", "a.w.example", true },
		{ "*.w.example", "A.W.EXAMPLE", true },
		{ "*.w.example", "w.example", false },     /* not the parent */
		{ "*.w.example", "a.b.w.example", false }, /* exactly one label */
		{ "*.w.example", ".w.example", false },    /* empty label */
		{ "*.example", "a.example", false },       /* too broad */
		{ "a*.w.example", "ab.w.example", false }, /* partial wildcards refused */
		{ "a.*.example", "a.w.example", false },   /* not leftmost */
		{ "*.*.example", "a.b.example", false },
		{ "*", "a", false },
		{ "", "a.example", false },
		{ "a.example", "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool m = tls_name_matches(cases[i].pattern, strlen(cases[i].pattern),
		    cases[i].domain);

		if (m != cases[i].match)
			fail_msg("pattern=%s domain=%s: expected %d", cases[i].pattern,
			    cases[i].domain, cases[i].match);
	}
	/* an embedded NUL never matches */
	assert_false(tls_name_matches("a.example\0.evil", 15, "a.example"));
}

static void
test_certificate_identities(void **state)
{
	static const struct {
		const char *base, *domain;
		bool match;
	} cases[] = {
		{ "a", "a.example", true },
		{ "a", "b.example", false },
		{ "wild", "x.w.example", true },
		{ "wild", "w.example", false },
		{ "wild", "a.x.w.example", false },
		{ "wrong", "wrong.example", true },
		{ "wrong", "b.example", false },
		/* XmppAddr and SRV-ID; the CN is ignored because the SAN has identities */
		{ "xmpp", "xmpp.example", true },
		{ "xmpp", "XMPP.example", true },
		{ "xmpp", "srv.example", true },
		{ "xmpp", "_xmpp-server.srv.example", false },
		{ "xmpp", "cn.xmpp.example", false },
		/* no SAN: the CN counts */
		{ "cnonly", "cnonly.example", true },
		{ "cnonly", "other.example", false },
		{ "ca", "a.example", false },
	};
	unsigned char der[4096];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int len = fx_load_der(cases[i].base, der, sizeof(der));

		if (tls_cert_matches(der, (size_t)len, cases[i].domain) != cases[i].match)
			fail_msg("cert=%s domain=%s: expected %d", cases[i].base,
			    cases[i].domain, cases[i].match);
		/* every truncation is rejected without reading out of bounds */
		for (int cut = 0; cut < len; cut++)
			assert_false(tls_cert_matches(der, (size_t)cut, cases[i].domain));
	}
	assert_false(tls_cert_matches(NULL, 0, "a.example"));
}

/* --- self-signed ------------------------------------------------------------------ */

static char *
slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "r");
	char *p = calloc(1, 16384);

	assert_non_null(f);
	assert_non_null(p);
	*n = fread(p, 1, 16383, f);
	fclose(f);
	return p;
}

static void
test_selfsigned_generation(void **state)
{
	char tmpl[] = "/tmp/qf-test-tls-XXXXXX", dir[512], crt[600], key[600];
	struct tcfg ct, st;
	struct tls_ctx *cc, *sc;
	struct tlslink l;
	struct stat sb;
	char *c1, *k1, *c2, *k2;
	size_t c1n, k1n, c2n, k2n;
	unsigned char der[4096];
	int len;
	DIR *dp;
	struct dirent *de;
	int files = 0;

	assert_non_null(mkdtemp(tmpl));
	snprintf(dir, sizeof(dir), "%s/state", tmpl);  /* does not exist yet */
	snprintf(crt, sizeof(crt), "%s/gen.example.crt", dir);
	snprintf(key, sizeof(key), "%s/gen.example.key", dir);

	fx_tcfg_bare(&st, dir);
	tcfg_domain(&st, "gen.example", NULL);
	sc = fx_ctx(&st);
	assert_int_equal(stat(dir, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0700);
	assert_int_equal(stat(key, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(stat(crt, &sb), 0);
	c1 = slurp(crt, &c1n);
	k1 = slurp(key, &k1n);
	assert_non_null(strstr(c1, "-----BEGIN CERTIFICATE-----"));
	assert_non_null(strstr(k1, "PRIVATE KEY-----"));
	len = wc_CertPemToDer((unsigned char *)c1, (int)c1n, der, sizeof(der), CERT_TYPE);
	assert_true(len > 0);
	assert_true(tls_cert_matches(der, (size_t)len, "gen.example"));
	assert_false(tls_cert_matches(der, (size_t)len, "other.example"));

	/* a handshake with it works; it is not trusted (not from the CA) */
	fx_tcfg_bare(&ct, NULL);
	tcfg_domain(&ct, "a.example", "a");
	cc = fx_ctx(&ct);
	connect_pair(&l, cc, "a.example", "gen.example", sc, "gen.example");
	assert_false(tls_session_peer_trusted(l.c));
	assert_false(tls_session_peer_valid_for(l.c, "gen.example"));
	assert_true(tls_session_peer_valid_for(l.s, "a.example"));
	tlslink_free(&l);
	tls_ctx_free(sc);

	/* second start: the same files are reused */
	sc = fx_ctx(&st);
	c2 = slurp(crt, &c2n);
	k2 = slurp(key, &k2n);
	assert_int_equal(c1n, c2n);
	assert_int_equal(k1n, k2n);
	assert_memory_equal(c1, c2, c1n);
	assert_memory_equal(k1, k2, k1n);
	tls_ctx_free(sc);

	/* no temporary files left behind; clean up */
	assert_non_null(dp = opendir(dir));
	while ((de = readdir(dp)) != NULL) {
		char p[1100];

		if (de->d_name[0] == '.' && (de->d_name[1] == '\0' ||
		    (de->d_name[1] == '.' && de->d_name[2] == '\0')))
			continue;
		/* the certificate pair plus the ticket keys (and their lock file), and
		 * the peer identity bound to the ticket issued to a.example */
		assert_null(strstr(de->d_name, ".tmp"));
		files++;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		unlink(p);
	}
	closedir(dp);
	assert_int_equal(files, 5);
	assert_int_equal(rmdir(dir), 0);
	assert_int_equal(rmdir(tmpl), 0);

	free(c1);
	free(k1);
	free(c2);
	free(k2);
	tls_ctx_free(cc);
	tcfg_free(&ct);
	tcfg_free(&st);
}

/* Configuration errors are reported, not fatal. */
static void
test_ctx_errors(void **state)
{
	struct tcfg t;

	/* certificate and key that do not belong together */
	fx_tcfg_bare(&t, NULL);
	tcfg_domain(&t, "a.example", "a");
	free(t.dom[0].key);
	t.dom[0].key = fx_pki("b.key");
	assert_null(tls_ctx_new(&t.cfg));
	tcfg_free(&t);
	/* missing file */
	fx_tcfg_bare(&t, NULL);
	tcfg_domain(&t, "a.example", "nonexistent");
	assert_null(tls_ctx_new(&t.cfg));
	tcfg_free(&t);
	/* self-signed without a state_dir */
	fx_tcfg_bare(&t, NULL);
	tcfg_domain(&t, "a.example", NULL);
	assert_null(tls_ctx_new(&t.cfg));
	tcfg_free(&t);
}

/* Reload (tls_ctx_reload): new sessions get the new certificate, a session made before
 * keeps its credentials and goes on (ASan would see freed ones); a reload that fails
 * changes nothing and says FILE:LINE and why. */
static void
test_ctx_reload(void **state)
{
	struct fx_pair p;
	struct tlslink l2;
	char *text = NULL;
	size_t len = 0;
	FILE *errs;

	pair_open(&p, "a.example", "a", "b.example", "b");
	p.st.cfg.path = "test.conf";
	p.st.dom[0].line = 7;
	connect_pair(&p.l, p.cc, "a.example", "b.example", p.sc, "b.example");
	assert_true(tls_session_peer_valid_for(p.l.c, "b.example"));

	/* "renewal": b.example's files now hold c.example's certificate and key */
	free(p.st.dom[0].certificate);
	free(p.st.dom[0].key);
	p.st.dom[0].certificate = fx_pki("c.crt");
	p.st.dom[0].key = fx_pki("c.key");
	assert_int_equal(tls_ctx_reload(p.sc, &p.st.cfg, NULL), 0);
	connect_pair(&l2, p.cc, "a.example", "b.example", p.sc, "b.example");
	assert_false(tls_session_peer_valid_for(l2.c, "b.example"));
	assert_true(tls_session_peer_valid_for(l2.c, "c.example"));
	tlslink_free(&l2);
	/* the session made before the reload still has b's credentials and works */
	fx_exchange(&p.l);

	/* a key that does not belong to the certificate: refused, nothing changes */
	free(p.st.dom[0].key);
	p.st.dom[0].key = fx_pki("a.key");
	assert_non_null(errs = open_memstream(&text, &len));
	assert_int_equal(tls_ctx_reload(p.sc, &p.st.cfg, errs), -1);
	fclose(errs);
	assert_non_null(strstr(text, "test.conf:7: domain b.example: "));
	assert_non_null(strstr(text, "key-does-not-match-certificate"));
	free(text);
	connect_pair(&l2, p.cc, "a.example", "b.example", p.sc, "b.example");
	assert_true(tls_session_peer_valid_for(l2.c, "c.example"));
	tlslink_free(&l2);
	fx_exchange(&p.l);
	tlslink_free(&p.l);
	p.st.cfg.path = NULL;
	fx_pair_close(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls13_sni_and_mutual_verdicts),
		cmocka_unit_test(test_bad_server_certificates),
		cmocka_unit_test(test_untrusted_client_and_wildcard_server),
		cmocka_unit_test(test_tls12_client_without_certificate),
		cmocka_unit_test(test_tls11_refused),
		cmocka_unit_test(test_cipher_suites),
		cmocka_unit_test(test_application_data_split_and_close),
		cmocka_unit_test(test_pipelined_first_flight),
		cmocka_unit_test(test_name_rules),
		cmocka_unit_test(test_certificate_identities),
		cmocka_unit_test(test_selfsigned_generation),
		cmocka_unit_test(test_ctx_errors),
		cmocka_unit_test(test_ca_file_shared),
		cmocka_unit_test(test_established_session_heap),
		cmocka_unit_test(test_ctx_reload),
	};

	log_set_level(getenv("QF_TEST_DEBUG") ? LOG_TRACE : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
