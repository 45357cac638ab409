/* tests/unit/tlsfix.h - shared fixture for the TLS unit tests: hand-built configs over
 * tests/data/pki, an in-memory client/server link, and scratch directories.
 * SPDX-License-Identifier: ISC
 * Linked (from libtesthelp.a) into test_tls, test_dane, test_tls_store and any test that
 * uses it. */
#ifndef QF_TLSFIX_H
#define QF_TLSFIX_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/config.h"
#include "tls/tls.h"

#define BUFMAX (256 * 1024)

/* A hand-built configuration: domains are (name, pki basename or NULL). */
struct tcfg {
	struct config     cfg;
	struct cfg_domain dom[4];
	size_t            n;
};

/* Both directions of one connection. */
struct tlslink {
	struct buf c_in, c_out;  /* client's raw buffers */
	struct buf s_in, s_out;  /* server's raw buffers */
	struct tls_session *c, *s;
};

/* A client context and a server context over their own configs, and one link. */
struct fx_pair {
	struct tcfg     ct, st;
	struct tls_ctx *cc, *sc;
	struct tlslink     l;
};

char *fx_strdup(const char *s);
char *fx_pki(const char *file);
void fx_tcfg_bare(struct tcfg *t, const char *state_dir);
void tcfg_init(struct tcfg *t, const char *state_dir);
void tcfg_domain(struct tcfg *t, const char *name, const char *base);
void tcfg_free(struct tcfg *t);
void tlslink_init(struct tlslink *l);
void tlslink_free(struct tlslink *l);
void fx_move(struct buf *src, struct buf *dst);
enum tls_result fx_handshake(struct tlslink *l);
enum tls_result fx_handshake_rounds(struct tlslink *l, int max_rounds);
struct tls_ctx *fx_ctx(struct tcfg *t);
void fx_pair_close(struct fx_pair *p);
int fx_load_der(const char *base, unsigned char *der, size_t cap);
enum tls_result fx_read_all(struct tls_session *s, char *out, size_t cap, size_t *total);
void fx_exchange(struct tlslink *l);
long fx_status_value(struct tls_ctx *ctx, const char *name);
void fx_tmpdir(char *out, size_t n);
void fx_rm_tree(const char *dir);
/* Bytes the process has allocated now (ASan's count under ASan, else malloc's). */
size_t fx_alloc_now(void);

#endif
