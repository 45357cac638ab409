/* tests/unit/test_tls_store.c - unit tests for TLS resumption: client session store
 * and server ticket keys.
 * SPDX-License-Identifier: ISC
 * Real in-memory handshakes with the test PKI (tests/data/pki): a second connection
 * resumes, a restart (new tls_ctx from the same state directories) still resumes on both
 * sides, peer verdicts are the same on resumed sessions (SASL EXTERNAL), ticket keys
 * rotate with the previous key still accepted, and a corpus of damaged store and key
 * files is logged and ignored: full handshake, no crash. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/atomicfile.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/log.h"
#include "tls/tls.h"
#include "tls/tls_int.h"

#include <wolfssl/wolfcrypt/sha256.h>

#include "tests/unit/tlsfix.h"

/* Client a.example (state dir cdir) to server b.example (state dir sdir). */
struct pair {
	struct tcfg ct, st;
	struct tls_ctx *cc, *sc;
};

static void
pair_open(struct pair *p, const char *cdir, const char *sdir)
{
	tcfg_init(&p->ct, cdir);
	tcfg_domain(&p->ct, "a.example", "a");
	tcfg_init(&p->st, sdir);
	tcfg_domain(&p->st, "b.example", "b");
	p->cc = fx_ctx(&p->ct);
	p->sc = fx_ctx(&p->st);
}

static void
pair_restart(struct pair *p)
{
	tls_ctx_free(p->cc);
	tls_ctx_free(p->sc);
	p->cc = fx_ctx(&p->ct);
	p->sc = fx_ctx(&p->st);
	/* a real restart also loses wolfSSL's process-wide session cache, which would
	 * otherwise hand the resumed server session the client's certificate by session
	 * ID: the restarted server must not look there (stateless tickets only) */
	for (struct tls_domain *d = p->sc->domains; d != NULL; d = d->next)
		wolfSSL_CTX_set_session_cache_mode(d->server, WOLFSSL_SESS_CACHE_OFF);
}

static void
pair_close(struct pair *p)
{
	tls_ctx_free(p->cc);
	tls_ctx_free(p->sc);
	tcfg_free(&p->ct);
	tcfg_free(&p->st);
}

/* One connection a.example -> b.example via target host:port; returns whether the
 * client resumed (asserting both sides agree) and checks the SASL EXTERNAL verdicts,
 * which must not depend on resumption. read: exchange data (the ticket arrives). */
static bool
conn(struct pair *p, const char *host, unsigned port, bool read)
{
	struct tlslink l;
	bool resumed;

	tlslink_init(&l);
	l.c = tls_session_client(p->cc, "a.example", "b.example", &l.c_in, &l.c_out);
	l.s = tls_session_server(p->sc, "b.example", &l.s_in, &l.s_out);
	assert_non_null(l.c);
	assert_non_null(l.s);
	assert_int_equal(tls_session_set_target(l.c, host, port), 0);
	assert_int_equal(fx_handshake(&l), TLS_DONE);
	assert_true(tls_session_established(l.s));
	resumed = tls_session_resumed(l.c);
	assert_int_equal(tls_session_resumed(l.s), resumed);
	assert_string_equal(tls_session_version(l.c), "TLSv1.3");
	/* both roles: trusted, valid for the right name only, verdict ok */
	assert_true(tls_session_peer_trusted(l.c));
	assert_true(tls_session_peer_valid_for(l.c, "b.example"));
	assert_false(tls_session_peer_valid_for(l.c, "a.example"));
	assert_string_equal(tls_session_peer_verdict(l.c), "ok");
	assert_true(tls_session_peer_trusted(l.s));
	assert_true(tls_session_peer_valid_for(l.s, "a.example"));
	assert_false(tls_session_peer_valid_for(l.s, "b.example"));
	assert_string_equal(tls_session_peer_verdict(l.s), "ok");
	if (read)
		fx_exchange(&l);
	tlslink_free(&l);
	return resumed;
}

/* The handshake arrays are given back once a session is established (wolfSSL answers
 * no client random without them), on both sides, and so are the all-zero pages of the
 * session objects (tls.trimmed_bytes); nothing depends on either: the peers' verdicts
 * read the same, the client takes the NewSessionTicket that arrives after that and
 * resumes with it, the resumed session gives its state back too, data goes both ways. */
static void
test_handshake_state_released(void **state)
{
	char cdir[64], sdir[64];
	unsigned char rnd[32];
	struct tlslink l;
	struct pair p;
	uint64_t trim_c, trim_s;

	fx_tmpdir(cdir, sizeof(cdir));
	fx_tmpdir(sdir, sizeof(sdir));
	pair_open(&p, cdir, sdir);
	for (int round = 0; round < 2; round++) {
		tlslink_init(&l);
		l.c = tls_session_client(p.cc, "a.example", "b.example", &l.c_in, &l.c_out);
		l.s = tls_session_server(p.sc, "b.example", &l.s_in, &l.s_out);
		assert_int_equal(tls_session_set_target(l.c, "xmpp.b.example", 5269), 0);
		assert_int_equal(tls_session_handshake(l.c), TLS_AGAIN);
		/* mid-handshake the arrays are there */
		assert_int_equal(wolfSSL_get_client_random(l.c->ssl, rnd, sizeof(rnd)), 32);
		trim_c = p.cc->n.trimmed_bytes;
		trim_s = p.sc->n.trimmed_bytes;
		assert_int_equal(fx_handshake(&l), TLS_DONE);
		assert_int_equal(tls_session_resumed(l.c), round == 1);
		/* the session objects' zero pages went back (two chains' room, a few
		 * certificates in it: at least six pages of 4 KiB each side), and what the
		 * stream layer reads from them after the handshake reads the same */
		assert_true(p.cc->n.trimmed_bytes - trim_c >= 6 * 4096);
		assert_true(p.sc->n.trimmed_bytes - trim_s >= 6 * 4096);
		assert_true(tls_session_peer_trusted(l.c));
		assert_true(tls_session_peer_valid_for(l.c, "b.example"));
		assert_false(tls_session_peer_valid_for(l.c, "a.example"));
		assert_true(tls_session_peer_trusted(l.s));
		assert_true(tls_session_peer_valid_for(l.s, "a.example"));
		assert_int_equal(wolfSSL_get_client_random(l.c->ssl, rnd, sizeof(rnd)), 0);
		assert_int_equal(wolfSSL_get_client_random(l.s->ssl, rnd, sizeof(rnd)), 0);
		if (round == 0)
			assert_int_equal(tls_store_count(p.cc->store), 0);
		fx_exchange(&l);  /* the ticket arrives now */
		fx_exchange(&l);
		assert_int_equal(tls_store_count(p.cc->store), 1);
		tlslink_free(&l);
	}
	pair_close(&p);
	fx_rm_tree(cdir);
	fx_rm_tree(sdir);
}

static void
test_resume_store_and_restart(void **state)
{
	char cdir[64], sdir[64], path[128];
	struct pair p;
	struct stat sb;

	fx_tmpdir(cdir, sizeof(cdir));
	fx_tmpdir(sdir, sizeof(sdir));
	pair_open(&p, cdir, sdir);

	/* first connection: full; the ticket arrives with the server's data */
	assert_false(conn(&p, "xmpp.b.example", 5269, true));
	assert_int_equal(tls_store_count(p.cc->store), 1);
	snprintf(path, sizeof(path), "%s/tls-sessions.db", cdir);
	atomicfile_sync(path);                     /* written by atomicfile's thread */
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/ticket.keys", sdir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	/* second: resumed on both sides, same verdicts */
	assert_true(conn(&p, "xmpp.b.example", 5269, true));
	/* another SRV target of the same peer domain (another node of it): offered the
	 * domain's newest session, which a node sharing the ticket keys resumes; the
	 * ticket it sends is kept under its own target */
	assert_true(conn(&p, "alt.b.example", 5270, true));
	assert_int_equal(tls_store_count(p.cc->store), 2);
	assert_int_equal(fx_status_value(p.cc, "tls.handshakes.full.client"), 1);
	assert_int_equal(fx_status_value(p.cc, "tls.handshakes.resumed.client"), 2);
	assert_int_equal(fx_status_value(p.sc, "tls.handshakes.full.server"), 1);
	assert_int_equal(fx_status_value(p.sc, "tls.handshakes.resumed.server"), 2);
	assert_int_equal(fx_status_value(p.sc, "tls.resumption_rate"), 66);
	/* ... but not to a target whose secure TLSA records must be matched: a full
	 * handshake shows its certificate */
	{
		unsigned char der[8192];
		int dlen = fx_load_der("b", der, sizeof(der));
		struct tlsa_rr rr = { 3, 0, 0, der, 0 };
		struct tlslink l;

		assert_true(dlen > 0);
		rr.len = (size_t)dlen;
		tlslink_init(&l);
		l.c = tls_session_client(p.cc, "a.example", "b.example", &l.c_in, &l.c_out);
		l.s = tls_session_server(p.sc, "b.example", &l.s_in, &l.s_out);
		assert_int_equal(tls_session_set_target(l.c, "dane.b.example", 5269), 0);
		assert_int_equal(tls_session_set_tlsa(l.c, &rr, 1, TLS_TLSA_SECURE), 0);
		assert_int_equal(fx_handshake(&l), TLS_DONE);
		assert_false(tls_session_resumed(l.c));
		assert_int_equal(tls_session_dane_state(l.c), TLS_DANE_MATCHED);
		tlslink_free(&l);
		assert_int_equal(fx_status_value(p.sc, "tls.handshakes.full.server"), 2);
	}
	assert_int_equal(fx_status_value(p.cc, "tls.store.entries"), 2);
	assert_true(fx_status_value(p.sc, "tls.ticket_key.age_s") >= 0);
	assert_true(fx_status_value(p.sc, "tls.ticket_key.age_s") < 60);

	/* restart both: the client store and the server's ticket keys come from disk */
	pair_restart(&p);
	assert_int_equal(tls_store_count(p.cc->store), 2);
	assert_true(conn(&p, "xmpp.b.example", 5269, true));
	assert_true(conn(&p, "alt.b.example", 5270, false));
	/* the resumed connection brought a fresh ticket: still resumes */
	assert_true(conn(&p, "xmpp.b.example", 5269, true));
	assert_int_equal(fx_status_value(p.cc, "tls.handshakes.resumed.client"), 3);
	assert_int_equal(fx_status_value(p.sc, "tls.resumption_rate"), 100);
	assert_int_equal(tls_store_count(p.cc->store), 2);

	/* a server restarted with other keys (lost key file): full handshake, no error */
	tls_ctx_free(p.sc);
	snprintf(path, sizeof(path), "%s/ticket.keys", sdir);
	assert_int_equal(unlink(path), 0);
	p.sc = fx_ctx(&p.st);
	assert_false(conn(&p, "xmpp.b.example", 5269, true));
	assert_true(conn(&p, "xmpp.b.example", 5269, true));

	pair_close(&p);
	fx_rm_tree(cdir);
	fx_rm_tree(sdir);
}

/* Stateless tickets carry no certificate: the ticket seals the hash of the client's
 * chain, the server keeps the chain under it (ticket.keys.peers, 0600) and a restarted
 * server attaches it to the resumed session, so SASL EXTERNAL still works. A damaged
 * chain no longer matches the hash: the ticket is refused (full handshake). */
static void
test_resume_identity_bound_to_ticket(void **state)
{
	char cdir[64], sdir[64], path[160];
	unsigned char byte;
	struct pair p;
	struct stat sb;
	struct tlslink l;
	int fd;

	fx_tmpdir(cdir, sizeof(cdir));
	fx_tmpdir(sdir, sizeof(sdir));
	pair_open(&p, cdir, sdir);
	assert_int_equal(tls_ticketkeys_peer_count(p.sc->tickets), 0);
	assert_false(conn(&p, "xmpp.b.example", 5269, true));
	assert_true(tls_ticketkeys_peer_count(p.sc->tickets) >= 1);
	snprintf(path, sizeof(path), "%s/ticket.keys.peers", sdir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	pair_restart(&p);
	assert_true(tls_ticketkeys_peer_count(p.sc->tickets) >= 1);
	tlslink_init(&l);
	l.c = tls_session_client(p.cc, "a.example", "b.example", &l.c_in, &l.c_out);
	l.s = tls_session_server(p.sc, "b.example", &l.s_in, &l.s_out);
	assert_int_equal(tls_session_set_target(l.c, "xmpp.b.example", 5269), 0);
	assert_int_equal(fx_handshake(&l), TLS_DONE);
	assert_true(tls_session_resumed(l.s));
	assert_true(l.s->tchain_n >= 1);       /* found by the hash the ticket seals */
	assert_true(tls_session_peer_trusted(l.s));
	assert_true(tls_session_peer_valid_for(l.s, "a.example"));
	fx_exchange(&l);                           /* a fresh ticket: bound again */
	tlslink_free(&l);

	/* a damaged chain in the file: it no longer has the hash the ticket names, so the
	 * ticket is refused and the client shows its certificate again (full handshake,
	 * EXTERNAL verdicts intact, checked by conn); the next ticket resumes */
	assert_int_equal(stat(path, &sb), 0);
	assert_true((fd = open(path, O_RDWR)) != -1);
	assert_int_equal(pread(fd, &byte, 1, sb.st_size / 2), 1);
	byte ^= 0x5a;
	assert_int_equal(pwrite(fd, &byte, 1, sb.st_size / 2), 1);
	close(fd);
	pair_restart(&p);
	assert_false(conn(&p, "xmpp.b.example", 5269, true));
	assert_true(conn(&p, "xmpp.b.example", 5269, true));

	pair_close(&p);
	fx_rm_tree(cdir);
	fx_rm_tree(sdir);
}

/* Rotation: a ticket sealed under the previous key still resumes; after two rotations
 * it does not. A second node sharing the key file accepts the first node's tickets. */
static void
test_ticket_rotation_and_shared_keys(void **state)
{
	char cdir[64], sdir[64], sdir2[64], kf[128];
	struct pair p;
	struct tcfg st2;
	struct tls_ctx *sc1;
	time_t now = time(NULL);

	fx_tmpdir(cdir, sizeof(cdir));
	fx_tmpdir(sdir, sizeof(sdir));
	fx_tmpdir(sdir2, sizeof(sdir2));
	pair_open(&p, cdir, sdir);
	assert_int_equal(tls_ticketkeys_maybe_rotate(p.sc->tickets, now), 0);

	assert_false(conn(&p, "h", 5269, true));    /* ticket under key 1 */
	assert_int_equal(tls_ticketkeys_maybe_rotate(p.sc->tickets, now + 13 * 3600), 1);
	assert_true(tls_ticketkeys_age(p.sc->tickets, now + 13 * 3600) == 0);
	assert_true(conn(&p, "h", 5269, false));    /* key 1 is the previous key: ok */
	assert_int_equal(tls_ticketkeys_maybe_rotate(p.sc->tickets, now + 26 * 3600), 1);
	assert_false(conn(&p, "h", 5269, true));    /* key 1 is gone: full handshake */
	assert_true(conn(&p, "h", 5269, true));     /* the new ticket works */

	/* a second node of b.example with the same key file (its own state dir) */
	tcfg_init(&st2, sdir2);
	tcfg_domain(&st2, "b.example", "b");
	snprintf(kf, sizeof(kf), "%s/ticket.keys", sdir);
	st2.cfg.tls_ticket_key_file = fx_strdup(kf);
	sc1 = p.sc;
	p.sc = fx_ctx(&st2);
	assert_true(conn(&p, "h", 5269, true));     /* node 2 opens node 1's ticket */
	/* node 1 rotates (file rewritten); node 2 notices and reloads */
	assert_int_equal(tls_ticketkeys_maybe_rotate(sc1->tickets, now + 40 * 3600), 1);
	assert_int_equal(tls_ticketkeys_maybe_rotate(p.sc->tickets, now + 40 * 3600), 0);
	assert_int_equal(tls_ticketkeys_age(p.sc->tickets, now + 40 * 3600), 0);
	tls_ctx_free(p.sc);
	p.sc = sc1;
	assert_true(conn(&p, "h", 5269, true));     /* node 2's ticket, node 1's prev key */

	tcfg_free(&st2);
	pair_close(&p);
	fx_rm_tree(cdir);
	fx_rm_tree(sdir);
	fx_rm_tree(sdir2);
}

/* Entries in the file, as a fresh store reads it. */
static size_t
file_entries(const char *path)
{
	struct tls_store *st = tls_store_open(path, 100000);
	size_t n;

	assert_non_null(st);
	n = tls_store_count(st);
	tls_store_free(st);
	return n;
}

/* Many handshakes in one second cost one rewrite of the file, not one each: the first
 * change is written at once, the rest by tls_store_sync (the daemon's one-second timer)
 * or when the store is freed (exit); what is written reads back whole, and a lookup
 * among many entries finds each one (hash, then key). */
static void
test_store_saves_batched(void **state)
{
	char dir[64], path[128], key[64];
	struct tls_store *st;
	const unsigned char *d;
	unsigned char der[300];
	time_t now = time(NULL);
	size_t n;
	const char *other;

	(void)state;
	fx_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/s.db", dir);
	memset(der, 'y', sizeof(der));
	assert_non_null(st = tls_store_open(path, 5000));
	assert_int_equal(tls_store_put(st, "a|p0|t:0", der, sizeof(der), now + 100, now), 0);
	assert_int_equal(file_entries(path), 1);           /* the first: at once */
	for (int i = 1; i < 2000; i++) {
		snprintf(key, sizeof(key), "a|p%d|t:%d", i, i);
		der[0] = (unsigned char)i;
		assert_int_equal(tls_store_put(st, key, der, sizeof(der), now + 100, now), 0);
	}
	assert_int_equal(tls_store_count(st), 2000);
	assert_int_equal(file_entries(path), 1);           /* the rest: not yet */
	assert_int_equal(tls_store_sync(st), 0);
	assert_int_equal(file_entries(path), 2000);        /* one rewrite holds them all */
	assert_int_equal(tls_store_sync(st), 0);           /* nothing changed: no-op */
	for (int i = 0; i < 2000; i += 97) {
		snprintf(key, sizeof(key), "a|p%d|t:%d", i, i);
		assert_non_null(d = tls_store_get(st, key, now, &n));
		assert_int_equal(n, sizeof(der));
		assert_int_equal(d[0], i == 0 ? 'y' : (unsigned char)i);
		snprintf(key, sizeof(key), "a|p%d|", i);    /* another target of that peer */
		assert_non_null(d = tls_store_get_newest(st, key, now, &n, &other));
		snprintf(key, sizeof(key), "a|p%d|t:%d", i, i);
		assert_string_equal(other, key);
	}
	assert_null(tls_store_get(st, "a|p2000|t:2000", now, &n));
	assert_null(tls_store_get_newest(st, "a|p2000|", now, &n, &other));
	tls_store_drop(st, "a|p5|t:5");                   /* dropped: written by the next sync */
	assert_int_equal(tls_store_put(st, "a|px|t:9", der, sizeof(der), now + 100, now), 0);
	tls_store_free(st);                                /* exit: what changed is written */
	assert_int_equal(file_entries(path), 2000);
	assert_non_null(st = tls_store_open(path, 5000));
	assert_null(tls_store_get(st, "a|p5|t:5", now, &n));
	assert_non_null(tls_store_get(st, "a|px|t:9", now, &n));
	tls_store_free(st);
	fx_rm_tree(dir);
}

/* Store bounds and expiry, without handshakes. */
static void
test_store_bounds_and_expiry(void **state)
{
	char dir[64], path[128], key[32];
	struct tls_store *st;
	const unsigned char *d;
	unsigned char der[100];
	time_t now = time(NULL);
	size_t n;

	fx_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/s.db", dir);
	memset(der, 'x', sizeof(der));
	st = tls_store_open(path, 3);
	assert_non_null(st);
	for (int i = 0; i < 5; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		der[0] = (unsigned char)i;
		assert_int_equal(tls_store_put(st, key, der, sizeof(der), now + 100,
		    now + i), 0);
	}
	assert_int_equal(tls_store_count(st), 3);
	assert_null(tls_store_get(st, "k0", now, &n));   /* oldest dropped */
	assert_null(tls_store_get(st, "k1", now, &n));
	assert_non_null(d = tls_store_get(st, "k4", now, &n));
	assert_int_equal(n, sizeof(der));
	assert_int_equal(d[0], 4);
	/* replacing keeps one entry per key */
	der[0] = 44;
	assert_int_equal(tls_store_put(st, "k4", der, sizeof(der), now + 100, now + 9), 0);
	assert_int_equal(tls_store_count(st), 3);
	/* expired entries are not handed out */
	assert_int_equal(tls_store_put(st, "old", der, sizeof(der), now - 1, now), 0);
	assert_null(tls_store_get(st, "old", now, &n));
	assert_int_equal(tls_store_count(st), 3);   /* and evicted nobody */
	/* an entry looked up after its expiry is gone (from the file too) */
	assert_null(tls_store_get(st, "k2", now + 100, &n));
	assert_int_equal(tls_store_count(st), 2);
	tls_store_free(st);

	/* reload: the same entries */
	st = tls_store_open(path, 3);
	assert_non_null(d = tls_store_get(st, "k4", now, &n));
	assert_int_equal(d[0], 44);
	assert_int_equal(tls_store_count(st), 2);
	assert_null(tls_store_get(st, "k2", now, &n));
	tls_store_free(st);
	/* a smaller bound on reload keeps the newest */
	st = tls_store_open(path, 1);
	assert_int_equal(tls_store_count(st), 1);
	assert_non_null(d = tls_store_get(st, "k4", now, &n));
	tls_store_free(st);
	fx_rm_tree(dir);
}

static void
write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd;

	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static unsigned char *
read_file(const char *path, size_t *n)
{
	unsigned char *p = malloc(1 << 20);
	FILE *f = fopen(path, "rb");

	assert_non_null(p);
	assert_non_null(f);
	*n = fread(p, 1, 1 << 20, f);
	fclose(f);
	return p;
}

/* Damaged client store files: logged, ignored (full handshake), never a crash. */
static void
test_corrupt_store_corpus(void **state)
{
	char cdir[64], sdir[64], path[128];
	unsigned char *good, *bad;
	size_t n, len;
	struct pair p;
	struct tls_store *st;
	struct {
		const char *what;
		size_t off;          /* byte to change (SIZE_MAX: none) */
		unsigned char val;
		size_t cut;          /* truncate to this length (0: keep) */
		mode_t mode;
		bool resumes;        /* expected outcome */
	} cases[] = {
		{ "intact", SIZE_MAX, 0, 0, 0600, true },
		{ "group-readable (foreign)", SIZE_MAX, 0, 0, 0640, false },
		{ "world-writable", SIZE_MAX, 0, 0, 0602, false },
		{ "bad magic", 0, 'X', 0, 0600, false },
		{ "wrong version", 7, 9, 0, 0600, false },
		{ "huge count", 8, 0xff, 0, 0600, false },
		{ "huge key length", 16, 0xff, 0, 0600, false },
		{ "huge der length", 20, 0xff, 0, 0600, false },
		{ "zero der length", SIZE_MAX, 0, 0, 0600, false },  /* patched below */
		{ "flipped session byte", 200, 0x5a, 0, 0600, false },
		{ "flipped checksum", SIZE_MAX - 1, 0, 0, 0600, false },
		{ "truncated header", SIZE_MAX, 0, 10, 0600, false },
		{ "truncated entry", SIZE_MAX, 0, 100, 0600, false },
		{ "empty", SIZE_MAX, 0, 0, 0600, false },
	};

	fx_tmpdir(cdir, sizeof(cdir));
	fx_tmpdir(sdir, sizeof(sdir));
	pair_open(&p, cdir, sdir);
	assert_false(conn(&p, "h", 5269, true));
	tls_ctx_free(p.cc);
	p.cc = NULL;
	snprintf(path, sizeof(path), "%s/tls-sessions.db", cdir);
	good = read_file(path, &len);
	assert_true(len > 300);
	bad = malloc(len);
	assert_non_null(bad);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, good, len);
		n = cases[i].cut > 0 ? cases[i].cut : len;
		if (strcmp(cases[i].what, "empty") == 0)
			n = 0;
		if (cases[i].off == SIZE_MAX - 1)
			bad[len - 1] ^= 1;
		else if (cases[i].off != SIZE_MAX)
			bad[cases[i].off] = cases[i].val;
		if (strcmp(cases[i].what, "zero der length") == 0)
			memset(bad + 20, 0, 4);
		write_file(path, bad, n, cases[i].mode);
		p.cc = fx_ctx(&p.ct);
		if (conn(&p, "h", 5269, false) != cases[i].resumes)
			fail_msg("case '%s': expected resumed=%d", cases[i].what,
			    cases[i].resumes);
		tls_ctx_free(p.cc);
		p.cc = NULL;
	}
	/* every truncation of the file is refused cleanly */
	for (size_t cut = 0; cut < len; cut++) {
		write_file(path, good, cut, 0600);
		assert_non_null(st = tls_store_open(path, 10));
		assert_int_equal(tls_store_count(st), 0);
		tls_store_free(st);
	}
	/* garbage of every kind */
	for (int seed = 0; seed < 50; seed++) {
		srand((unsigned)seed);
		for (size_t k = 0; k < len; k++)
			bad[k] = (unsigned char)rand();
		if (seed % 2 == 0)
			memcpy(bad, good, 16);  /* a valid header, garbage entries */
		write_file(path, bad, len, 0600);
		assert_non_null(st = tls_store_open(path, 10));
		assert_int_equal(tls_store_count(st), 0);
		tls_store_free(st);
	}

	/* a well-formed entry (correct checksum) holding garbage instead of a session:
	 * refused when offered, dropped, full handshake */
	memcpy(bad, good, len);
	{
		size_t klen = (size_t)bad[16] << 8 | bad[17];
		size_t dlen = (size_t)bad[20] << 24 | (size_t)bad[21] << 16 |
		    (size_t)bad[22] << 8 | bad[23];
		size_t end = 16 + 24 + klen + dlen;

		assert_int_equal(end + 32, len);
		memset(bad + 16 + 24 + klen, 0x42, dlen);
		assert_int_equal(wc_Sha256Hash(bad + 16, (word32)(end - 16), bad + end), 0);
	}
	write_file(path, bad, len, 0600);
	p.cc = fx_ctx(&p.ct);
	assert_int_equal(tls_store_count(p.cc->store), 1);
	assert_false(conn(&p, "h", 5269, true));
	assert_int_equal(fx_status_value(p.cc, "tls.store.rejected"), 1);
	assert_true(conn(&p, "h", 5269, true));   /* replaced by a good one */

	free(good);
	free(bad);
	pair_close(&p);
	fx_rm_tree(cdir);
	fx_rm_tree(sdir);
}

/* A server state dir holding one ticket key file (read into *good) and a client that
 * holds a ticket under it; the server context is closed so the file can be replaced. */
struct keyfix {
	char cdir[64], sdir[64], path[128];
	unsigned char *good;
	size_t len;
	struct pair p;
};

static void
keyfix_open(struct keyfix *k)
{
	fx_tmpdir(k->cdir, sizeof(k->cdir));
	fx_tmpdir(k->sdir, sizeof(k->sdir));
	pair_open(&k->p, k->cdir, k->sdir);
	assert_false(conn(&k->p, "h", 5269, true));
	snprintf(k->path, sizeof(k->path), "%s/ticket.keys", k->sdir);
	tls_ctx_free(k->p.sc);
	k->good = read_file(k->path, &k->len);
	assert_int_equal(k->len, 16 + 56 + 32);
}

/* Put the original key file back and give the client a ticket under it again. */
static void
keyfix_restore(struct keyfix *k)
{
	write_file(k->path, k->good, k->len, 0600);
	k->p.sc = fx_ctx(&k->p.st);
	(void)conn(&k->p, "h", 5269, true);
	tls_ctx_free(k->p.sc);
}

static void
keyfix_close(struct keyfix *k)
{
	k->p.sc = fx_ctx(&k->p.st);
	free(k->good);
	pair_close(&k->p);
	fx_rm_tree(k->cdir);
	fx_rm_tree(k->sdir);
}

/* Damaged ticket key files: logged, replaced by new keys, full handshake. */
static void
test_corrupt_ticket_keys_corpus(void **state)
{
	struct keyfix k;
	unsigned char *bad;
	size_t n;
	static const struct {
		const char *what;
		long off;     /* byte to flip, -1 none */
		long cut;     /* truncate, -1 keep */
		mode_t mode;
		bool resumes;
	} cases[] = {
		{ "intact", -1, -1, 0600, true },
		{ "foreign mode", -1, -1, 0644, false },
		{ "bad magic", 0, -1, 0600, false },
		{ "wrong version", 7, -1, 0600, false },
		{ "bad key count", 11, -1, 0600, false },
		{ "flipped key byte", 40, -1, 0600, false },
		{ "flipped checksum", -2, -1, 0600, false },
		{ "truncated", -1, 50, 0600, false },
		{ "empty", -1, 0, 0600, false },
	};

	(void)state;
	keyfix_open(&k);
	bad = malloc(k.len + 1);
	assert_non_null(bad);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, k.good, k.len);
		n = cases[i].cut >= 0 ? (size_t)cases[i].cut : k.len;
		if (cases[i].off == -2)
			bad[k.len - 1] ^= 1;
		else if (cases[i].off >= 0)
			bad[cases[i].off] ^= 0x10;
		write_file(k.path, bad, n, cases[i].mode);
		k.p.sc = fx_ctx(&k.p.st);
		if (conn(&k.p, "h", 5269, true) != cases[i].resumes)
			fail_msg("case '%s': expected resumed=%d", cases[i].what,
			    cases[i].resumes);
		/* the keys now in use are on disk again: a restart resumes */
		tls_ctx_free(k.p.sc);
		k.p.sc = fx_ctx(&k.p.st);
		assert_true(conn(&k.p, "h", 5269, true));
		tls_ctx_free(k.p.sc);
		keyfix_restore(&k);   /* back to the original keys for the next case */
	}
	free(bad);
	keyfix_close(&k);
}

/* Ticket key files with a valid checksum but hostile fields (found by tests/fuzz): a
 * version with the top bit set, a creation time near INT64_MIN (refused: new keys, full
 * handshake), and one in the future (accepted, then rotated away at once so rotation is
 * never switched off; the old key stays valid as the previous one). */
static void
test_ticket_keys_hostile_fields(void **state)
{
	struct keyfix k;
	unsigned char *bad;
	size_t body;
	time_t now = time(NULL);
	static const struct {
		const char *what;
		int kind;          /* 0 version 0x80, 1 huge created, 2 future created */
		bool resumes;
	} cases[] = {
		{ "version 0x80000001", 0, false },
		{ "created near INT64_MIN", 1, false },
		{ "created 30 days ahead", 2, true },
	};

	(void)state;
	keyfix_open(&k);
	body = k.len - 32;
	bad = malloc(k.len);
	assert_non_null(bad);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t created = 0;

		memcpy(bad, k.good, k.len);
		if (cases[i].kind == 0)
			bad[4] |= 0x80;
		else
			created = cases[i].kind == 1 ? 0x800000006553f100ULL :
			    (uint64_t)(now + 30 * 86400);
		if (cases[i].kind != 0)
			for (int b = 0; b < 8; b++)
				bad[16 + 48 + b] = (unsigned char)(created >> (56 - 8 * b));
		assert_int_equal(wc_Sha256Hash(bad, (word32)body, bad + body), 0);
		write_file(k.path, bad, k.len, 0600);
		k.p.sc = fx_ctx(&k.p.st);
		if (conn(&k.p, "h", 5269, true) != cases[i].resumes)
			fail_msg("case '%s': expected resumed=%d", cases[i].what, cases[i].resumes);
		if (cases[i].kind == 2) {
			/* rotated: the current key is new, its age is about zero */
			assert_int_equal(tls_ticketkeys_maybe_rotate(k.p.sc->tickets, now), 0);
			assert_true(tls_ticketkeys_age(k.p.sc->tickets, now) < 60);
			assert_true(tls_ticketkeys_age(k.p.sc->tickets, now) > -60);
		}
		tls_ctx_free(k.p.sc);
		keyfix_restore(&k);
	}
	free(bad);
	keyfix_close(&k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resume_store_and_restart),
		cmocka_unit_test(test_handshake_state_released),
		cmocka_unit_test(test_resume_identity_bound_to_ticket),
		cmocka_unit_test(test_ticket_rotation_and_shared_keys),
		cmocka_unit_test(test_store_bounds_and_expiry),
		cmocka_unit_test(test_store_saves_batched),
		cmocka_unit_test(test_corrupt_store_corpus),
		cmocka_unit_test(test_corrupt_ticket_keys_corpus),
		cmocka_unit_test(test_ticket_keys_hostile_fields),
	};

	log_set_level(getenv("QF_TEST_DEBUG") ? LOG_TRACE : LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
