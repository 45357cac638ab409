/* tests/unit/test_dane.c - unit tests for DANE (RFC 6698, 7671, 7673) in tls/.
 * SPDX-License-Identifier: ISC
 * Real in-memory handshakes with the test PKI (tests/data/pki) and TLSA records computed
 * from its certificates: DANE-EE (certificate or SPKI; exact, SHA-256, SHA-512) makes a
 * self-signed server valid without a CA, DANE-TA authenticates a chain to the test CA
 * with the RFC 7673 names (peer domain or SRV target host), records that match nothing
 * fail the connection, insecure records are ignored, bogus ones refuse it; incoming
 * peers are matched against their own records. */
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
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/sha512.h>

#include "tests/unit/tlsfix.h"

/* A TLSA record for tests/data/pki/<base>.crt with its data in rr_data. */
static unsigned char rr_data[8][4096];

static struct tlsa_rr
tlsa_for(int slot, const char *base, unsigned usage, unsigned sel, unsigned mtype)
{
	unsigned char der[4096];
	const unsigned char *p = der;
	struct tlsa_rr rr;
	size_t plen;
	int len;

	len = fx_load_der(base, der, sizeof(der));
	plen = (size_t)len;
	if (sel == 1)
		assert_int_equal(tls_cert_spki(der, (size_t)len, &p, &plen), 0);
	memset(&rr, 0, sizeof(rr));
	rr.usage = (unsigned char)usage;
	rr.selector = (unsigned char)sel;
	rr.mtype = (unsigned char)mtype;
	rr.data = rr_data[slot];
	switch (mtype) {
	case 0:
		memcpy(rr_data[slot], p, plen);
		rr.len = plen;
		break;
	case 1:
		assert_int_equal(wc_Sha256Hash(p, (word32)plen, rr_data[slot]), 0);
		rr.len = 32;
		break;
	default:
		assert_int_equal(wc_Sha512Hash(p, (word32)plen, rr_data[slot]), 0);
		rr.len = 64;
		break;
	}
	return rr;
}

/* Client a.example, server serving `serve` with the given PKI files (crt_path, when
 * set, replaces its certificate); the client trusts ca_base.crt. */
static void
dctx_open(struct fx_pair *d, const char *ca_base, const char *serve, const char *crt_path,
    const char *key_base)
{
	char f[64];

	tcfg_init(&d->ct, NULL);
	tcfg_domain(&d->ct, "a.example", "a");
	free(d->ct.cfg.ca_file);
	snprintf(f, sizeof(f), "%s.crt", ca_base);
	d->ct.cfg.ca_file = fx_pki(f);
	tcfg_init(&d->st, NULL);
	tcfg_domain(&d->st, serve, key_base);
	if (crt_path != NULL) {
		free(d->st.dom[0].certificate);
		d->st.dom[0].certificate = fx_strdup(crt_path);
	}
	d->cc = fx_ctx(&d->ct);
	d->sc = fx_ctx(&d->st);
}

/* Connect a.example -> peer over target host with TLSA records rrs of the given
 * status; returns the client's handshake result. */
static enum tls_result
dconn(struct fx_pair *d, const char *peer, const char *host, const struct tlsa_rr *rrs,
    size_t n, enum tls_tlsa_status status)
{
	tlslink_init(&d->l);
	d->l.c = tls_session_client(d->cc, "a.example", peer, &d->l.c_in, &d->l.c_out);
	d->l.s = tls_session_server(d->sc, NULL, &d->l.s_in, &d->l.s_out);
	assert_non_null(d->l.c);
	assert_non_null(d->l.s);
	if (host != NULL)
		assert_int_equal(tls_session_set_target(d->l.c, host, 5269), 0);
	assert_int_equal(tls_session_set_tlsa(d->l.c, rrs, n, status), 0);
	return fx_handshake(&d->l);
}

/* DANE-EE makes a self-signed certificate valid, without a CA and without a name
 * check; every selector and matching type works. */
static void
test_dane_ee_self_signed(void **state)
{
	static const unsigned combos[][2] = { { 1, 1 }, { 0, 1 }, { 1, 2 }, { 0, 2 },
	    { 1, 0 }, { 0, 0 } };
	struct fx_pair d;
	struct tlsa_rr rr[2];

	dctx_open(&d, "ca", "self.example", NULL, "self");
	/* without TLSA: PKIX, not trusted */
	assert_int_equal(dconn(&d, "self.example", NULL, NULL, 0, TLS_TLSA_INSECURE),
	    TLS_DONE);
	assert_false(tls_session_peer_trusted(d.l.c));
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_NONE);
	tlslink_free(&d.l);

	for (size_t i = 0; i < sizeof(combos) / sizeof(combos[0]); i++) {
		rr[0] = tlsa_for(0, "b", 3, combos[i][0], combos[i][1]);  /* not it */
		rr[1] = tlsa_for(1, "self", 3, combos[i][0], combos[i][1]);
		assert_int_equal(dconn(&d, "self.example", "mx.self.example", rr, 2,
		    TLS_TLSA_SECURE), TLS_DONE);
		assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_MATCHED);
		assert_true(tls_session_peer_trusted(d.l.c));
		assert_true(tls_session_peer_valid_for(d.l.c, "self.example"));
		assert_true(tls_session_peer_valid_for(d.l.c, "Self.Example."));
		/* DANE covers the peer domain only, not other names */
		assert_false(tls_session_peer_valid_for(d.l.c, "b.example"));
		assert_string_equal(tls_session_peer_verdict(d.l.c), "ok (DANE-EE)");
		tlslink_free(&d.l);
	}
	/* DANE-EE skips the name check: a peer whose TLSA names this key */
	rr[0] = tlsa_for(0, "self", 3, 1, 1);
	assert_int_equal(dconn(&d, "other.example", "host.other.example", rr, 1,
	    TLS_TLSA_SECURE), TLS_DONE);
	assert_true(tls_session_peer_valid_for(d.l.c, "other.example"));
	tlslink_free(&d.l);
	assert_int_equal(fx_status_value(d.cc, "tls.dane.matched"), 7);
	assert_int_equal(fx_status_value(d.cc, "tls.dane.failed"), 0);
	fx_pair_close(&d);
}

/* Usable records that match nothing: no connection, a clear error, counted. Insecure
 * records are ignored; bogus ones refuse the connection; unusable ones are ignored. */
static void
test_dane_failures(void **state)
{
	struct fx_pair d;
	struct tlsa_rr rr[2];

	dctx_open(&d, "ca", "b.example", NULL, "b");
	rr[0] = tlsa_for(0, "self", 3, 1, 1);
	rr[1] = tlsa_for(1, "other-ca", 2, 0, 1);
	assert_int_equal(dconn(&d, "b.example", "b.example", rr, 2, TLS_TLSA_SECURE),
	    TLS_FAILED);
	assert_string_equal(tls_session_error(d.l.c), "DANE: no TLSA record matched");
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_FAILED);
	assert_false(tls_session_established(d.l.c));
	assert_false(tls_session_peer_trusted(d.l.c));
	assert_false(tls_session_peer_valid_for(d.l.c, "b.example"));
	assert_string_equal(tls_session_peer_verdict(d.l.c), "handshake not complete");
	assert_int_equal(tls_session_write(d.l.c, "x", 1), TLS_FAILED);
	tlslink_free(&d.l);
	assert_int_equal(fx_status_value(d.cc, "tls.dane.failed"), 1);

	/* the same records unsigned: PKIX as before */
	assert_int_equal(dconn(&d, "b.example", "b.example", rr, 2, TLS_TLSA_INSECURE),
	    TLS_DONE);
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_NONE);
	assert_true(tls_session_peer_valid_for(d.l.c, "b.example"));
	tlslink_free(&d.l);

	/* bogus: refused before anything is sent */
	tlslink_init(&d.l);
	d.l.c = tls_session_client(d.cc, "a.example", "b.example", &d.l.c_in, &d.l.c_out);
	assert_int_equal(tls_session_set_tlsa(d.l.c, rr, 1, TLS_TLSA_BOGUS), 0);
	assert_int_equal(tls_session_handshake(d.l.c), TLS_FAILED);
	assert_int_equal(d.l.c_out.len, 0);
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_FAILED);
	assert_non_null(strstr(tls_session_error(d.l.c), "bogus"));
	/* too late to change the records now */
	assert_int_equal(tls_session_set_tlsa(d.l.c, rr, 1, TLS_TLSA_SECURE), -1);
	tlslink_free(&d.l);

	/* only unusable records (unknown usage, wrong digest length): PKIX as before */
	rr[0] = tlsa_for(0, "b", 3, 1, 1);
	rr[0].usage = 4;
	rr[1] = tlsa_for(1, "b", 3, 1, 1);
	rr[1].len = 31;
	assert_int_equal(dconn(&d, "b.example", "b.example", rr, 2, TLS_TLSA_SECURE),
	    TLS_DONE);
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_NONE);
	assert_true(tls_session_peer_valid_for(d.l.c, "b.example"));
	tlslink_free(&d.l);
	fx_pair_close(&d);

	/* config dane off: secure non-matching records change nothing */
	dctx_open(&d, "ca", "b.example", NULL, "b");
	d.cc->dane = false;
	rr[0] = tlsa_for(0, "self", 3, 1, 1);
	assert_int_equal(dconn(&d, "b.example", "b.example", rr, 1, TLS_TLSA_SECURE),
	    TLS_DONE);
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_NONE);
	tlslink_free(&d.l);
	fx_pair_close(&d);
}

/* DANE-TA: the server presents leaf + test CA; the client does not trust the test CA
 * (PKIX fails) but a DANE-TA record names it. RFC 7673: the certificate must be valid
 * for the peer domain or the SRV target host. */
static void
test_dane_ta(void **state)
{
	char dir[64], chain[128], *a, *b;
	struct fx_pair d;
	struct tlsa_rr rr[1];
	FILE *f;

	fx_tmpdir(dir, sizeof(dir));
	snprintf(chain, sizeof(chain), "%s/chain.crt", dir);
	a = fx_pki("b.crt");
	b = fx_pki("ca.crt");
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "cat '%s' '%s' > '%s'", a, b, chain);
		assert_int_equal(system(cmd), 0);
	}
	free(a);
	free(b);
	assert_non_null(f = fopen(chain, "r"));
	fclose(f);

	dctx_open(&d, "other-ca", "b.example", chain, "b");
	/* PKIX alone fails (the client trusts only other-ca) */
	assert_int_equal(dconn(&d, "b.example", NULL, NULL, 0, TLS_TLSA_INSECURE),
	    TLS_DONE);
	assert_false(tls_session_peer_trusted(d.l.c));
	tlslink_free(&d.l);

	for (unsigned sel = 0; sel <= 1; sel++) {
		rr[0] = tlsa_for(0, "ca", 2, sel, 1);
		assert_int_equal(dconn(&d, "b.example", "xmpp.b.example", rr, 1,
		    TLS_TLSA_SECURE), TLS_DONE);
		assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_MATCHED);
		assert_true(tls_session_peer_trusted(d.l.c));
		assert_true(tls_session_peer_valid_for(d.l.c, "b.example"));
		assert_string_equal(tls_session_peer_verdict(d.l.c), "ok (DANE-TA)");
		tlslink_free(&d.l);
	}
	/* peer domain z.example, SRV target b.example: the target name counts */
	rr[0] = tlsa_for(0, "ca", 2, 0, 2);
	assert_int_equal(dconn(&d, "z.example", "b.example", rr, 1, TLS_TLSA_SECURE),
	    TLS_DONE);
	assert_true(tls_session_peer_valid_for(d.l.c, "z.example"));
	tlslink_free(&d.l);
	/* ... but a certificate for neither name fails */
	assert_int_equal(dconn(&d, "z.example", "mx.z.example", rr, 1, TLS_TLSA_SECURE),
	    TLS_FAILED);
	assert_string_equal(tls_session_error(d.l.c), "DANE: no TLSA record matched");
	tlslink_free(&d.l);
	/* DANE-TA naming the leaf itself is not an anchor */
	rr[0] = tlsa_for(0, "b", 2, 0, 1);
	assert_int_equal(dconn(&d, "b.example", "b.example", rr, 1, TLS_TLSA_SECURE),
	    TLS_FAILED);
	tlslink_free(&d.l);
	fx_pair_close(&d);

	/* PKIX-TA/PKIX-EE: a match and PKIX (client trusts the test CA) */
	dctx_open(&d, "ca", "b.example", chain, "b");
	rr[0] = tlsa_for(0, "ca", 0, 1, 1);
	assert_int_equal(dconn(&d, "b.example", "b.example", rr, 1, TLS_TLSA_SECURE),
	    TLS_DONE);
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_MATCHED);
	assert_string_equal(tls_session_peer_verdict(d.l.c), "ok");
	tlslink_free(&d.l);
	rr[0] = tlsa_for(0, "b", 1, 1, 1);
	assert_int_equal(dconn(&d, "b.example", "b.example", rr, 1, TLS_TLSA_SECURE),
	    TLS_DONE);
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_MATCHED);
	tlslink_free(&d.l);
	fx_pair_close(&d);
	/* PKIX-EE matching a self-signed leaf: PKIX fails, so DANE fails */
	dctx_open(&d, "ca", "self.example", NULL, "self");
	rr[0] = tlsa_for(0, "self", 1, 1, 1);
	assert_int_equal(dconn(&d, "self.example", "self.example", rr, 1,
	    TLS_TLSA_SECURE), TLS_FAILED);
	tlslink_free(&d.l);
	fx_pair_close(&d);
	fx_rm_tree(dir);
}

/* Incoming: a client certificate that does not chain to a trusted CA is accepted by
 * its own domain's secure TLSA records. */
static void
test_dane_incoming(void **state)
{
	struct fx_pair p;
	struct tlsa_rr rr[2];

	tcfg_init(&p.ct, NULL);
	tcfg_domain(&p.ct, "self.example", "self");
	tcfg_init(&p.st, NULL);
	tcfg_domain(&p.st, "b.example", "b");
	p.cc = fx_ctx(&p.ct);
	p.sc = fx_ctx(&p.st);
	tlslink_init(&p.l);
	p.l.c = tls_session_client(p.cc, "self.example", "b.example", &p.l.c_in,
	    &p.l.c_out);
	p.l.s = tls_session_server(p.sc, "b.example", &p.l.s_in, &p.l.s_out);
	assert_int_equal(fx_handshake(&p.l), TLS_DONE);
	assert_false(tls_session_peer_trusted(p.l.s));
	rr[0] = tlsa_for(0, "b", 3, 1, 1);
	assert_false(tls_session_peer_matches_tlsa(p.l.s, "self.example", NULL, rr, 1));
	rr[1] = tlsa_for(1, "self", 3, 1, 1);
	assert_true(tls_session_peer_matches_tlsa(p.l.s, "self.example", NULL, rr, 2));
	rr[0] = tlsa_for(0, "self", 3, 0, 2);
	assert_true(tls_session_peer_matches_tlsa(p.l.s, "self.example", "x.self.example",
	    rr, 1));
	/* PKIX-EE needs PKIX: no */
	rr[0] = tlsa_for(0, "self", 1, 1, 1);
	assert_false(tls_session_peer_matches_tlsa(p.l.s, "self.example", NULL, rr, 1));
	assert_int_equal(fx_status_value(p.sc, "tls.dane.matched"), 2);
	assert_int_equal(fx_status_value(p.sc, "tls.dane.failed"), 2);
	tlslink_free(&p.l);
	fx_pair_close(&p);
}

/* A resumed session is matched against the TLSA records again (the chain is kept). */
static void
test_dane_resumed(void **state)
{
	char cdir[64];
	struct fx_pair d;
	struct tlsa_rr rr[1];

	fx_tmpdir(cdir, sizeof(cdir));
	dctx_open(&d, "ca", "self.example", NULL, "self");
	tls_ctx_free(d.cc);
	free(d.ct.cfg.state_dir);
	d.ct.cfg.state_dir = fx_strdup(cdir);
	d.ct.cfg.tls_session_store = true;
	d.cc = fx_ctx(&d.ct);
	rr[0] = tlsa_for(0, "self", 3, 1, 1);
	assert_int_equal(dconn(&d, "self.example", "h", rr, 1, TLS_TLSA_SECURE), TLS_DONE);
	assert_false(tls_session_resumed(d.l.c));
	fx_exchange(&d.l);
	tlslink_free(&d.l);
	assert_int_equal(dconn(&d, "self.example", "h", rr, 1, TLS_TLSA_SECURE), TLS_DONE);
	assert_true(tls_session_resumed(d.l.c));
	assert_int_equal(tls_session_dane_state(d.l.c), TLS_DANE_MATCHED);
	assert_true(tls_session_peer_valid_for(d.l.c, "self.example"));
	tlslink_free(&d.l);
	/* the key changed in DNS: the resumed session fails DANE too, and is dropped */
	rr[0] = tlsa_for(0, "b", 3, 1, 1);
	assert_int_equal(dconn(&d, "self.example", "h", rr, 1, TLS_TLSA_SECURE),
	    TLS_FAILED);
	tlslink_free(&d.l);
	assert_int_equal(tls_store_count(d.cc->store), 0);
	fx_pair_close(&d);
	fx_rm_tree(cdir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dane_ee_self_signed),
		cmocka_unit_test(test_dane_failures),
		cmocka_unit_test(test_dane_ta),
		cmocka_unit_test(test_dane_incoming),
		cmocka_unit_test(test_dane_resumed),
	};

	log_set_level(getenv("QF_TEST_DEBUG") ? LOG_TRACE : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
