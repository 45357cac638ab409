/* tests/unit/test_ticket_ident.c - the peer identity sealed in server session tickets
 * (tls/ticketkeys.c seal/open) and the chains kept for it (tls/ticketpeers.c).
 * SPDX-License-Identifier: ISC
 * Seals ticket bodies directly, as wolfSSL's callback does, with the room Debian's
 * wolfSSL 5.5.4 gives (108 bytes of its own, 140 writable), then opens them: every
 * byte of a sealed identity is authenticated, keys that rotated away and identities
 * proved too long ago are refused, and two nodes sharing the key file share the chains
 * without being able to feed each other a chain a ticket was not sealed with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/log.h"
#include "tls/tls_int.h"

#include "tests/unit/tlsfix.h"

#define BODY 108   /* wolfSSL's InternalTicket in Debian 12's build */
#define ROOM 140   /* WOLFSSL_TICKET_ENC_SZ there */

/* One sealed ticket as wolfSSL keeps it. */
struct sealed {
	unsigned char name[WOLFSSL_TICKET_NAME_SZ], iv[WOLFSSL_TICKET_IV_SZ];
	unsigned char mac[WOLFSSL_TICKET_MAC_SZ], body[ROOM];
	int len;
};

/* A chain of two made-up "certificates" (only hashed here, never parsed). */
static void
chain_of(struct tls_chain *c, const char *leaf)
{
	static const char ca[] = "intermediate certificate bytes";

	c->n = 2;
	c->der[0] = (const unsigned char *)leaf;
	c->len[0] = strlen(leaf);
	c->der[1] = (const unsigned char *)ca;
	c->len[1] = sizeof(ca) - 1;
}

static void
ident_of(struct tls_ticketpeers *tp, const struct tls_chain *c, int64_t proved,
    struct tls_ticket_ident *id)
{
	unsigned char hash[32];

	memset(id, 0, sizeof(*id));
	assert_int_equal(tls_ticketpeers_put(tp, c, (int64_t)time(NULL), 3600, hash), 0);
	memcpy(id->hash, hash, TLS_IDENT_HASH);
	id->proved = proved;
	id->present = true;
}

static void
seal(struct tls_ticketkeys *tk, const struct tls_ticket_ident *id, int room,
    struct sealed *t)
{
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < BODY; i++)
		t->body[i] = (unsigned char)(i * 7 + 1);
	assert_int_equal(tls_ticketkeys_seal(tk, id, t->name, t->iv, t->mac, t->body, BODY,
	    room, &t->len), WOLFSSL_TICKET_RET_OK);
}

/* Open a copy of t; returns the callback's verdict, *id the identity. */
static int
open_copy(struct tls_ticketkeys *tk, const struct sealed *t, struct tls_ticket_ident *id,
    int *out)
{
	struct sealed c = *t;
	int rc = tls_ticketkeys_open(tk, c.name, c.iv, c.mac, c.body, c.len, out, id);

	if (rc != WOLFSSL_TICKET_RET_REJECT) {
		for (int i = 0; i < BODY; i++)
			assert_int_equal(c.body[i], (unsigned char)(i * 7 + 1));
	}
	return rc;
}

static struct tls_ticketkeys *
keys_in(const char *dir, char *kf, size_t n)
{
	struct tls_ticketkeys *tk;

	snprintf(kf, n, "%s/ticket.keys", dir);
	assert_non_null(tk = tls_ticketkeys_new(kf, 12 * 3600));
	return tk;
}

/* Round trip: the identity comes back, wolfSSL gets exactly its own body back. */
static void
test_seal_open_identity(void **state)
{
	char dir[64], kf[128];
	struct tls_ticketkeys *tk;
	struct tls_ticketpeers *tp;
	struct tls_ticket_ident id, got;
	struct tls_chain c;
	struct sealed t;
	int64_t now = (int64_t)time(NULL);
	int out;

	fx_tmpdir(dir, sizeof(dir));
	tk = keys_in(dir, kf, sizeof(kf));
	assert_non_null(tp = tls_ticketpeers_new(kf));
	chain_of(&c, "leaf of a.example");
	ident_of(tp, &c, now - 10, &id);
	seal(tk, &id, ROOM, &t);
	assert_int_equal(t.len, ROOM);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_OK);
	assert_int_equal(out, BODY);
	assert_true(got.present);
	assert_memory_equal(got.hash, id.hash, TLS_IDENT_HASH);
	assert_true(got.proved == now - 10);

	/* no client certificate: a trailer saying so, no identity */
	memset(&id, 0, sizeof(id));
	seal(tk, &id, ROOM, &t);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_OK);
	assert_int_equal(out, BODY);
	assert_false(got.present);

	/* no room (another build): no trailer, resumes without identity */
	ident_of(tp, &c, now, &id);
	seal(tk, &id, BODY, &t);
	assert_int_equal(t.len, BODY);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_OK);
	assert_int_equal(out, BODY);
	assert_false(got.present);

	tls_ticketpeers_free(tp);
	tls_ticketkeys_free(tk);
	fx_rm_tree(dir);
}

/* Every bit of the sealed identity (and of the rest) is authenticated: flipping any
 * byte of the ciphertext, the MAC, the IV or the key name is refused. */
static void
test_tampered_identity_rejected(void **state)
{
	char dir[64], kf[128];
	struct tls_ticketkeys *tk;
	struct tls_ticketpeers *tp;
	struct tls_ticket_ident id, got;
	struct tls_chain c;
	struct sealed t, bad;
	int out;

	fx_tmpdir(dir, sizeof(dir));
	tk = keys_in(dir, kf, sizeof(kf));
	assert_non_null(tp = tls_ticketpeers_new(kf));
	chain_of(&c, "leaf of a.example");
	ident_of(tp, &c, (int64_t)time(NULL), &id);
	seal(tk, &id, ROOM, &t);
	for (int i = 0; i < t.len; i++)
		for (int bit = 0; bit < 8; bit += 3) {
			bad = t;
			bad.body[i] ^= (unsigned char)(1 << bit);
			assert_int_equal(open_copy(tk, &bad, &got, &out),
			    WOLFSSL_TICKET_RET_REJECT);
		}
	for (int i = 0; i < 16; i++) {       /* Poly1305 uses the first 16 MAC bytes */
		bad = t;
		bad.mac[i] ^= 0x01;
		assert_int_equal(open_copy(tk, &bad, &got, &out), WOLFSSL_TICKET_RET_REJECT);
	}
	bad = t;
	bad.iv[3] ^= 0x80;
	assert_int_equal(open_copy(tk, &bad, &got, &out), WOLFSSL_TICKET_RET_REJECT);
	bad = t;
	bad.name[0] ^= 0x01;
	assert_int_equal(open_copy(tk, &bad, &got, &out), WOLFSSL_TICKET_RET_REJECT);
	/* a shorter claimed length (trailer cut off) is refused too: the length is
	 * authenticated, so an identity cannot be stripped to resume without it */
	bad = t;
	bad.len = BODY;
	assert_int_equal(open_copy(tk, &bad, &got, &out), WOLFSSL_TICKET_RET_REJECT);
	/* the untouched ticket still opens */
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_OK);
	assert_true(got.present);

	tls_ticketpeers_free(tp);
	tls_ticketkeys_free(tk);
	fx_rm_tree(dir);
}

/* Expiry: the previous key still opens (reissue); a key rotated away twice does not;
 * an identity proved longer ago than lifetime + rotation is refused even under the
 * current key (a resumed session re-seals the original proof time). */
static void
test_expired_key_and_identity_rejected(void **state)
{
	char dir[64], kf[128];
	struct tls_ticketkeys *tk;
	struct tls_ticketpeers *tp;
	struct tls_ticket_ident id, got;
	struct tls_chain c;
	struct sealed t;
	time_t now = time(NULL);
	int out;

	fx_tmpdir(dir, sizeof(dir));
	tk = keys_in(dir, kf, sizeof(kf));
	assert_non_null(tp = tls_ticketpeers_new(kf));
	chain_of(&c, "leaf of a.example");
	ident_of(tp, &c, (int64_t)now, &id);
	seal(tk, &id, ROOM, &t);
	assert_int_equal(tls_ticketkeys_maybe_rotate(tk, now + 13 * 3600), 1);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_CREATE);
	assert_true(got.present);
	assert_int_equal(tls_ticketkeys_maybe_rotate(tk, now + 26 * 3600), 1);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_REJECT);

	/* lifetime 300 s (no context attached) + rotation 12 h */
	ident_of(tp, &c, (int64_t)now - 12 * 3600 - 300 + 60, &id);
	seal(tk, &id, ROOM, &t);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_OK);
	ident_of(tp, &c, (int64_t)now - 12 * 3600 - 300 - 60, &id);
	seal(tk, &id, ROOM, &t);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_REJECT);
	/* a proof time in the future (wraps modulo 2^32) is no better */
	ident_of(tp, &c, (int64_t)now + 86400, &id);
	seal(tk, &id, ROOM, &t);
	assert_int_equal(open_copy(tk, &t, &got, &out), WOLFSSL_TICKET_RET_REJECT);

	tls_ticketpeers_free(tp);
	tls_ticketkeys_free(tk);
	fx_rm_tree(dir);
}

/* Two nodes sharing the key file: a ticket sealed at node 1 opens at node 2, which
 * finds the chain node 1 wrote; chains written concurrently are merged, not lost. A
 * node with its own key file opens nothing of node 1's. */
static void
test_nodes_share_chains(void **state)
{
	char dir[64], dir3[64], kf[128], kf3[128];
	struct tls_ticketkeys *tk1, *tk2, *tk3;
	struct tls_ticketpeers *tp1, *tp2;
	struct tls_ticket_ident id, got;
	struct tls_chain c1, c2, found;
	struct sealed t;
	int out;

	fx_tmpdir(dir, sizeof(dir));
	fx_tmpdir(dir3, sizeof(dir3));
	tk1 = keys_in(dir, kf, sizeof(kf));
	tk2 = keys_in(dir, kf, sizeof(kf));      /* same file: same keys */
	tk3 = keys_in(dir3, kf3, sizeof(kf3));
	assert_non_null(tp1 = tls_ticketpeers_new(kf));
	assert_non_null(tp2 = tls_ticketpeers_new(kf));
	chain_of(&c1, "leaf of a.example");
	chain_of(&c2, "leaf of c.example");
	ident_of(tp1, &c1, (int64_t)time(NULL), &id);
	ident_of(tp2, &c2, (int64_t)time(NULL), &got);   /* node 2 writes after node 1 */
	seal(tk1, &id, ROOM, &t);

	assert_int_equal(open_copy(tk2, &t, &got, &out), WOLFSSL_TICKET_RET_OK);
	assert_true(got.present);
	assert_int_equal(tls_ticketpeers_get(tp2, got.hash, TLS_IDENT_HASH, &found), 0);
	assert_int_equal(found.n, 2);
	assert_memory_equal(found.der[0], "leaf of a.example", found.len[0]);
	/* node 2 merged node 1's chain before writing: a fresh reader sees both */
	{
		struct tls_ticketpeers *tp = tls_ticketpeers_new(kf);

		assert_int_equal(tls_ticketpeers_count(tp), 2);
		tls_ticketpeers_free(tp);
	}
	assert_int_equal(open_copy(tk3, &t, &got, &out), WOLFSSL_TICKET_RET_REJECT);

	tls_ticketpeers_free(tp1);
	tls_ticketpeers_free(tp2);
	tls_ticketkeys_free(tk1);
	tls_ticketkeys_free(tk2);
	tls_ticketkeys_free(tk3);
	fx_rm_tree(dir);
	fx_rm_tree(dir3);
}

/* Whoever can write the peer file cannot bind a chain to a hash: the file's chains are
 * hashed when read, so a swapped certificate is found under its own hash only, and
 * hostile files (garbage, huge counts, foreign modes) are refused without a crash. */
static void
test_forged_peer_file(void **state)
{
	char dir[64], kf[128], pf[160];
	struct tls_ticketpeers *tp;
	struct tls_ticket_ident id;
	struct tls_chain c, found;
	unsigned char *data;
	size_t n;
	FILE *f;
	long sz;
	char *at;

	fx_tmpdir(dir, sizeof(dir));
	snprintf(kf, sizeof(kf), "%s/ticket.keys", dir);
	snprintf(pf, sizeof(pf), "%s.peers", kf);
	assert_non_null(tp = tls_ticketpeers_new(kf));
	chain_of(&c, "leaf of a.example");
	ident_of(tp, &c, (int64_t)time(NULL), &id);
	tls_ticketpeers_free(tp);

	/* replace the victim's leaf by an attacker's of the same length */
	assert_non_null(f = fopen(pf, "rb"));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	sz = ftell(f);
	rewind(f);
	assert_non_null(data = malloc((size_t)sz));
	assert_int_equal(fread(data, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	assert_non_null(at = memmem(data, (size_t)sz, "a.example", 9));
	memcpy(at, "e.example", 9);
	assert_non_null(f = fopen(pf, "wb"));
	assert_int_equal(fwrite(data, 1, (size_t)sz, f), (size_t)sz);
	fclose(f);
	assert_non_null(tp = tls_ticketpeers_new(kf));
	assert_int_equal(tls_ticketpeers_count(tp), 1);   /* read, under another hash */
	assert_int_equal(tls_ticketpeers_get(tp, id.hash, TLS_IDENT_HASH, &found), -1);
	tls_ticketpeers_free(tp);

	/* hostile files */
	{
		static const struct { const char *what; const char *bytes; size_t len; } bad[] = {
			{ "empty", "", 0 },
			{ "garbage", "not a peer file at all", 22 },
			{ "old version", "QFTP\0\0\0\1\0\0\0\0", 12 },
			{ "huge count", "QFTP\0\0\0\2\xff\xff\xff\xff", 12 },
			{ "huge chain", "QFTP\0\0\0\2\0\0\0\1\x7f\0\0\0\0\0\0\0\0\0\0\x0a"
			    "\xff\xff\xff\xff", 28 },
			{ "zero length", "QFTP\0\0\0\2\0\0\0\1\x7f\0\0\0\0\0\0\0\0\0\0\1"
			    "\0\0\0\0", 28 },
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			assert_non_null(f = fopen(pf, "wb"));
			n = bad[i].len;
			if (n > 0)
				assert_int_equal(fwrite(bad[i].bytes, 1, n, f), n);
			fclose(f);
			assert_non_null(tp = tls_ticketpeers_new(kf));
			if (tls_ticketpeers_count(tp) != 0)
				fail_msg("case '%s': loaded %zu chains", bad[i].what,
				    tls_ticketpeers_count(tp));
			tls_ticketpeers_free(tp);
		}
		/* a group- or world-readable file is someone else's: ignored */
		assert_non_null(tp = tls_ticketpeers_new(kf));
		ident_of(tp, &c, (int64_t)time(NULL), &id);
		tls_ticketpeers_free(tp);
		assert_int_equal(chmod(pf, 0644), 0);
		assert_non_null(tp = tls_ticketpeers_new(kf));
		assert_int_equal(tls_ticketpeers_count(tp), 0);
		tls_ticketpeers_free(tp);
	}
	free(data);
	fx_rm_tree(dir);
}

/* Bounded: at most TLS_PEERS_MAX chains (the soonest to expire go first), and a chain
 * over TLS_PEER_CHAIN_MAX bytes is not kept. */
static void
test_peer_bounds(void **state)
{
	char dir[64], kf[128], leaf[64];
	struct tls_ticketpeers *tp;
	struct tls_chain c;
	unsigned char hash[32], *big;
	int64_t now = (int64_t)time(NULL);

	fx_tmpdir(dir, sizeof(dir));
	snprintf(kf, sizeof(kf), "%s/ticket.keys", dir);
	assert_non_null(tp = tls_ticketpeers_new(NULL));   /* memory only: no file I/O */
	for (int i = 0; i < TLS_PEERS_MAX + 10; i++) {
		snprintf(leaf, sizeof(leaf), "leaf %d", i);
		chain_of(&c, leaf);
		assert_int_equal(tls_ticketpeers_put(tp, &c, now, 600 + i, hash), 0);
	}
	assert_int_equal(tls_ticketpeers_count(tp), TLS_PEERS_MAX);
	chain_of(&c, "leaf 0");                            /* the first to expire: gone */
	assert_int_equal(tls_chain_hash(&c, hash), 0);
	assert_int_equal(tls_ticketpeers_get(tp, hash, TLS_IDENT_HASH, &c), -1);
	assert_non_null(big = calloc(1, TLS_PEER_CHAIN_MAX + 1));
	c.n = 1;
	c.der[0] = big;
	c.len[0] = TLS_PEER_CHAIN_MAX + 1;
	assert_int_equal(tls_ticketpeers_put(tp, &c, now, 600, hash), -1);
	free(big);
	tls_ticketpeers_free(tp);
	fx_rm_tree(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_open_identity),
		cmocka_unit_test(test_tampered_identity_rejected),
		cmocka_unit_test(test_expired_key_and_identity_rejected),
		cmocka_unit_test(test_nodes_share_chains),
		cmocka_unit_test(test_forged_peer_file),
		cmocka_unit_test(test_peer_bounds),
	};

	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
