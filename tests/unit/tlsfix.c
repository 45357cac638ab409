/* tests/unit/tlsfix.c - shared fixture for the TLS unit tests (see tlsfix.h).
 * SPDX-License-Identifier: ISC */
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
#include <unistd.h>

#include "core/atomicfile.h"
#include "core/log.h"
#include "tls/tls_int.h"

#include <wolfssl/wolfcrypt/asn_public.h>

#include "tests/unit/tlsfix.h"
char *
fx_strdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

char *
fx_pki(const char *file)
{
	const char *top = getenv("QF_TOP");
	char path[4096];

	snprintf(path, sizeof(path), "%s/tests/data/pki/%s", top ? top : ".", file);
	return fx_strdup(path);
}

/* Only the CA and state_dir set: no session store, ticket timing or DANE. */
void
fx_tcfg_bare(struct tcfg *t, const char *state_dir)
{
	memset(t, 0, sizeof(*t));
	t->cfg.ca_file = fx_pki("ca.crt");
	t->cfg.state_dir = state_dir ? fx_strdup(state_dir) : NULL;
}

/* fx_tcfg_bare() plus the session store (with a state_dir), ticket timing and DANE. */
void
tcfg_init(struct tcfg *t, const char *state_dir)
{
	fx_tcfg_bare(t, state_dir);
	t->cfg.tls_session_store = state_dir != NULL;
	t->cfg.tls_store_entries = 100;
	t->cfg.tls_ticket_rotation_ms = 12 * 3600 * 1000u;
	t->cfg.tls_ticket_lifetime_ms = 24 * 3600 * 1000u;
	t->cfg.dane = true;
}

/* Add domain name served with tests/data/pki/<base>.crt/.key (base NULL: self-signed). */
void
tcfg_domain(struct tcfg *t, const char *name, const char *base)
{
	struct cfg_domain *d = &t->dom[t->n];
	char f[64];

	assert_true(t->n < 4);
	d->name = fx_strdup(name);
	if (base != NULL) {
		snprintf(f, sizeof(f), "%s.crt", base);
		d->certificate = fx_pki(f);
		snprintf(f, sizeof(f), "%s.key", base);
		d->key = fx_pki(f);
	}
	if (t->n > 0)
		t->dom[t->n - 1].next = d;
	else
		t->cfg.domains = d;
	t->n++;
}

void
tcfg_free(struct tcfg *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->dom[i].name);
		free(t->dom[i].certificate);
		free(t->dom[i].key);
	}
	free(t->cfg.ca_file);
	free(t->cfg.state_dir);
	free(t->cfg.tls_ticket_key_file);
}

void
tlslink_init(struct tlslink *l)
{
	memset(l, 0, sizeof(*l));
	buf_init(&l->c_in, BUFMAX);
	buf_init(&l->c_out, BUFMAX);
	buf_init(&l->s_in, BUFMAX);
	buf_init(&l->s_out, BUFMAX);
}

void
tlslink_free(struct tlslink *l)
{
	tls_session_free(l->c);
	tls_session_free(l->s);
	buf_free(&l->c_in);
	buf_free(&l->c_out);
	buf_free(&l->s_in);
	buf_free(&l->s_out);
}

/* Move everything from src to dst. */
void
fx_move(struct buf *src, struct buf *dst)
{
	assert_int_equal(buf_append(dst, src->data, src->len), 0);
	buf_reset(src);
}

/* Run both handshakes until done or one fails, in fewer than max_rounds rounds;
 * returns the client's result. */
enum tls_result
fx_handshake_rounds(struct tlslink *l, int max_rounds)
{
	enum tls_result rc, rs;
	int rounds = 0;

	do {
		rc = tls_session_handshake(l->c);
		fx_move(&l->c_out, &l->s_in);
		rs = tls_session_handshake(l->s);
		fx_move(&l->s_out, &l->c_in);
		assert_true(++rounds < max_rounds);
	} while ((rc == TLS_AGAIN || rs == TLS_AGAIN) && rc != TLS_FAILED &&
	    rs != TLS_FAILED);
	return rc;
}

enum tls_result
fx_handshake(struct tlslink *l)
{
	return fx_handshake_rounds(l, 20);
}

struct tls_ctx *
fx_ctx(struct tcfg *t)
{
	struct tls_ctx *c = tls_ctx_new(&t->cfg);

	assert_non_null(c);
	return c;
}

/* Free both contexts and both configs (the link is the caller's). */
void
fx_pair_close(struct fx_pair *p)
{
	tls_ctx_free(p->cc);
	tls_ctx_free(p->sc);
	tcfg_free(&p->ct);
	tcfg_free(&p->st);
}

/* Read tests/data/pki/<base>.crt and convert it to DER; returns its length. */
int
fx_load_der(const char *base, unsigned char *der, size_t cap)
{
	char file[64], *path;
	unsigned char pem[8192];
	size_t n;
	FILE *f;
	int len;

	snprintf(file, sizeof(file), "%s.crt", base);
	path = fx_pki(file);
	f = fopen(path, "r");
	free(path);
	assert_non_null(f);
	n = fread(pem, 1, sizeof(pem), f);
	fclose(f);
	len = wc_CertPemToDer(pem, (int)n, der, (int)cap, CERT_TYPE);
	assert_true(len > 0);
	return len;
}

/* Read everything the session can produce into out (NUL-terminated). */
enum tls_result
fx_read_all(struct tls_session *s, char *out, size_t cap, size_t *total)
{
	enum tls_result r;
	size_t got;

	*total = 0;
	for (;;) {
		r = tls_session_read(s, out + *total, cap - 1 - *total, &got);
		*total += got;
		if (r != TLS_DONE || got == 0)
			break;
	}
	out[*total] = '\0';
	return r;
}

/* The server sends its stream header; the client reads it (and with it any TLS 1.3
 * NewSessionTicket). */
void
fx_exchange(struct tlslink *l)
{
	char got[256];
	size_t n;

	assert_int_equal(tls_session_write(l->s, "<stream:stream>", 15), TLS_DONE);
	fx_move(&l->s_out, &l->c_in);
	assert_int_equal(fx_read_all(l->c, got, sizeof(got), &n), TLS_AGAIN);
	assert_string_equal(got, "<stream:stream>");
	assert_int_equal(tls_session_write(l->c, "<x/>", 4), TLS_DONE);
	fx_move(&l->c_out, &l->s_in);
	assert_int_equal(fx_read_all(l->s, got, sizeof(got), &n), TLS_AGAIN);
	assert_string_equal(got, "<x/>");
}

/* A value from tls_status_write(), or -1. */
long
fx_status_value(struct tls_ctx *ctx, const char *name)
{
	struct buf b;
	char want[128], *p;
	long v = -1;

	buf_init(&b, 4096);
	assert_int_equal(tls_status_write(ctx, &b), 0);
	snprintf(want, sizeof(want), "\n%s=", name);
	if (strncmp(b.data, want + 1, strlen(want + 1)) == 0)
		v = strtol(b.data + strlen(want + 1), NULL, 10);
	else if ((p = strstr(b.data, want)) != NULL)
		v = strtol(p + strlen(want), NULL, 10);
	buf_free(&b);
	return v;
}

/* A fresh private directory under /tmp (caller removes it with rm_tree). */
void
fx_tmpdir(char *out, size_t n)
{
	snprintf(out, n, "/tmp/qf-test-tls-XXXXXX");
	assert_non_null(mkdtemp(out));
}

void
fx_rm_tree(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char p[1100];

	atomicfile_sync(NULL);   /* no state file write still under way in dir */
	assert_non_null(dp);
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		assert_int_equal(unlink(p), 0);
	}
	closedir(dp);
	assert_int_equal(rmdir(dir), 0);
}

#if defined(__SANITIZE_ADDRESS__)
/* ASan's allocator replaces malloc's; gcc 12 ships no header declaring this. */
size_t __sanitizer_get_current_allocated_bytes(void);

size_t
fx_alloc_now(void)
{
	return __sanitizer_get_current_allocated_bytes();
}
#else
#include <malloc.h>

size_t
fx_alloc_now(void)
{
	struct mallinfo2 m = mallinfo2();

	return m.uordblks + m.hblkhd;
}
#endif
