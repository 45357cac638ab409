/* tls/ctx.c - wolfSSL contexts per local domain and SNI certificate selection.
 * SPDX-License-Identifier: ISC
 * main.c builds one struct tls_ctx from the configuration at start-up (and on reload);
 * session.c creates sessions from its per-domain contexts. Every context trusts
 * cfg->ca_file, allows TLS 1.2 and 1.3, requests (never requires) a peer certificate and
 * uses memory I/O; a server session switches to the domain named by SNI. The CA file is
 * read once per build into one store that every domain's contexts share: the system
 * bundle costs about 330 KiB of signers, which two private copies per domain would
 * multiply by twice the number of domains. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/rsa.h>

#include "../core/log.h"
#include "../core/namehash.h"
#include "tls_int.h"

#define PATH_MAX_LEN 4096

static WOLFSSL_CTX *ctx_make(const struct config *, WOLFSSL_X509_STORE *, const char *,
    const char *, const char *, bool, const char **);
static WOLFSSL_X509_STORE *ca_store_load(const struct config *);
static int sni_cb(WOLFSSL *, int *, void *);
static int key_matches(const char *, const char *);
static int resumption_setup(struct tls_ctx *, const struct config *);
static struct tls_domain *domains_build(const struct config *, FILE *);
static void domains_release(struct tls_domain *);
static int domains_attach(struct tls_ctx *, struct tls_domain *, const struct config *);

/* Does the private key in key_path belong to the first certificate in crt_path?
 * (wolfSSL_CTX_check_private_key does not notice a mismatched EC key in 5.5.4.)
 * Returns 1 yes, 0 no, -1 when it cannot tell (unreadable or unknown key type). */
static int
key_matches(const char *crt_path, const char *key_path)
{
	unsigned char pem[16384], der[8192], kpub[2048], cpub[2048];
	int n, dl, kl = -1, cl = (int)sizeof(cpub), rc = -1;
	WOLFSSL_X509 *x;
	word32 idx;
	FILE *f;

	if ((f = fopen(key_path, "r")) == NULL)
		return -1;
	n = (int)fread(pem, 1, sizeof(pem), f);
	fclose(f);
	if ((dl = wc_KeyPemToDer(pem, n, der, sizeof(der), NULL)) <= 0)
		goto out;
	{
		ecc_key ek;

		idx = 0;
		if (wc_ecc_init(&ek) == 0) {
			if (wc_EccPrivateKeyDecode(der, &idx, &ek, (word32)dl) == 0)
				kl = wc_EccPublicKeyToDer(&ek, kpub, sizeof(kpub), 1);
			wc_ecc_free(&ek);
		}
	}
	if (kl <= 0) {
		RsaKey rk;

		idx = 0;
		if (wc_InitRsaKey(&rk, NULL) == 0) {
			if (wc_RsaPrivateKeyDecode(der, &idx, &rk, (word32)dl) == 0)
				kl = wc_RsaKeyToPublicDer(&rk, kpub, sizeof(kpub));
			wc_FreeRsaKey(&rk);
		}
	}
	if (kl <= 0)
		goto out;
	if ((x = wolfSSL_X509_load_certificate_file(crt_path, WOLFSSL_FILETYPE_PEM)) == NULL)
		goto out;
	if (wolfSSL_X509_get_pubkey_buffer(x, cpub, &cl) == WOLFSSL_SUCCESS)
		rc = cl == kl && memcmp(cpub, kpub, (size_t)kl) == 0;
	wolfSSL_X509_free(x);
out:
	memset(pem, 0, sizeof(pem));
	memset(der, 0, sizeof(der));
	return rc;
}

/* Key exchange groups, preferred first. X25519 first: with Debian's wolfSSL (generic
 * big-number code for P-256) its key generation and shared secret cost a fraction of
 * P-256's, and every current XMPP server's TLS library (OpenSSL, GnuTLS, wolfSSL)
 * offers it; a server without it answers with a HelloRetryRequest for P-256. */
static int groups[] = {
	WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1, WOLFSSL_ECC_SECP384R1,
	WOLFSSL_ECC_SECP521R1, WOLFSSL_FFDHE_2048,
};

/* Cipher suites, preferred first: TLS 1.3's AEAD suites, then for TLS 1.2 Mozilla's
 * "intermediate" set (ECDHE or DHE, AES-GCM or ChaCha20-Poly1305). Debian's wolfSSL is
 * built with every suite it knows enabled by default: NULL encryption (TLS13-SHA256-
 * SHA256, ECDHE-ECDSA-NULL-SHA), RC4, 3DES, anonymous DH and CBC would otherwise be
 * offered, and a peer server could pick one (RFC 9325, BCP 195, rules these out or
 * advises against them).
 * ChaCha20-Poly1305 comes first with Debian's wolfSSL, which does AES in portable C with
 * lookup tables: there AES-128-GCM took 18 us per 2 KiB record and ChaCha20-Poly1305
 * 8.4 us; ChaCha20 runs in constant time, where table-based AES leaks through the CPU
 * cache; and the tables of every link's key make AES dearer per byte as links multiply.
 * A wolfSSL built with AES-NI (make WOLFSSL=aesni) puts AES-GCM first: in hardware it is
 * the faster. A server takes its own order (wolfSSL's default). */
#ifdef WOLFSSL_AESNI
#define SUITES_FAST \
	"TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:TLS13-CHACHA20-POLY1305-SHA256:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
#else
#define SUITES_FAST \
	"TLS13-CHACHA20-POLY1305-SHA256:TLS13-AES128-GCM-SHA256:TLS13-AES256-GCM-SHA384:" \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:" \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:" \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
#endif
static const char suites[] = SUITES_FAST
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

/* The trusted CAs of cfg->ca_file, read once, in a store of their own (one reference,
 * the caller's), or NULL when there is no ca_file or it cannot be read (logged). Read
 * with wolfSSL_CertManagerLoadCA, which loads exactly as wolfSSL_CTX_load_verify_locations
 * does; wolfSSL_X509_STORE_load_locations would also turn CRL checking on. */
static WOLFSSL_X509_STORE *
ca_store_load(const struct config *cfg)
{
	WOLFSSL_X509_STORE *st;

	if (cfg->ca_file == NULL)
		return NULL;
	if ((st = wolfSSL_X509_STORE_new()) == NULL) {
		log_warnx("tls ca_file=%s reason=out-of-memory", cfg->ca_file);
		return NULL;
	}
	if (wolfSSL_CertManagerLoadCA(st->cm, cfg->ca_file, NULL) != WOLFSSL_SUCCESS) {
		log_warnx("tls ca_file=%s reason=cannot-load", cfg->ca_file);
		wolfSSL_X509_STORE_free(st);
		return NULL;
	}
	return st;
}

/* One wolfSSL context for domain in one role, trusting the shared CA store cas (NULL
 * with no ca_file), or NULL (logged). */
static WOLFSSL_CTX *
ctx_make(const struct config *cfg, WOLFSSL_X509_STORE *cas, const char *domain,
    const char *crt, const char *key, bool server, const char **why)
{
	WOLFSSL_CTX *wc;
	const char *what;

	wc = wolfSSL_CTX_new(server ? wolfSSLv23_server_method() : wolfSSLv23_client_method());
	if (wc == NULL) {
		log_warnx("tls domain=%s reason=wolfSSL_CTX_new-failed", domain);
		*why = "wolfSSL_CTX_new-failed";
		return NULL;
	}
	what = "min-version";
	if (wolfSSL_CTX_SetMinVersion(wc, WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
		goto fail;
	what = "certificate";
	if (wolfSSL_CTX_use_certificate_chain_file(wc, crt) != WOLFSSL_SUCCESS)
		goto fail;
	what = "key";
	if (wolfSSL_CTX_use_PrivateKey_file(wc, key, WOLFSSL_FILETYPE_PEM) != WOLFSSL_SUCCESS)
		goto fail;
	what = "key-does-not-match-certificate";
	if (wolfSSL_CTX_check_private_key(wc) != WOLFSSL_SUCCESS ||
	    key_matches(crt, key) == 0)
		goto fail;
	what = "ca_file";
	if (cfg->ca_file != NULL) {
		/* The context takes a reference on the store and on its CA manager. */
		if (cas == NULL || wolfSSL_X509_STORE_up_ref(cas) != WOLFSSL_SUCCESS)
			goto fail;
		wolfSSL_CTX_set_cert_store(wc, cas);
		if (wolfSSL_CTX_get_cert_store(wc) != cas) {
			wolfSSL_X509_STORE_free(cas);
			goto fail;
		}
	}
	/* Ask for the peer's certificate, record the PKIX verdict, never abort: the
	 * stream layer decides (SASL EXTERNAL, dialback or refusal). */
	wolfSSL_CTX_set_verify(wc, WOLFSSL_VERIFY_PEER, tls_session_verify_cb);
	wolfSSL_CTX_SetIORecv(wc, tls_session_recv_cb);
	wolfSSL_CTX_SetIOSend(wc, tls_session_send_cb);
	what = "groups";
	if (wolfSSL_CTX_set_groups(wc, groups, (int)(sizeof(groups) / sizeof(groups[0]))) !=
	    WOLFSSL_SUCCESS)
		goto fail;
	what = "cipher-suites";
	if (wolfSSL_CTX_set_cipher_list(wc, suites) != WOLFSSL_SUCCESS)
		goto fail;
	if (server)
		wolfSSL_CTX_set_servername_callback(wc, sni_cb);
	else
		(void)wolfSSL_CTX_UseSessionTicket(wc);
	return wc;
fail:
	log_warnx("tls domain=%s certificate=%s key=%s ca_file=%s reason=%s", domain, crt,
	    key, cfg->ca_file ? cfg->ca_file : "-", what);
	*why = what;
	wolfSSL_CTX_free(wc);
	return NULL;
}

/* SNI received (server): switch the session to the named domain's credentials. An
 * unknown or missing name keeps the default domain; the stream layer checks to=. */
static int
sni_cb(WOLFSSL *ssl, int *alert, void *arg)
{
	struct tls_session *s = wolfSSL_GetIOReadCtx(ssl);
	struct tls_domain *d;
	const char *name;
	size_t n;

	if (s == NULL || s->magic != TLS_SESSION_MAGIC) {
		log_warnx("tls sni reason=session-with-bad-magic");
		*alert = unrecognized_name;
		return fatal_return;
	}
	name = wolfSSL_get_servername(ssl, WOLFSSL_SNI_HOST_NAME);
	if (name == NULL || (n = strlen(name)) == 0)
		return 0;
	if (n >= sizeof(s->sni)) {
		log_debug("tls sni reason=name-too-long");
		return 0;
	}
	for (size_t i = 0; i <= n; i++)
		s->sni[i] = (char)tolower((unsigned char)name[i]);
	d = tls_ctx_domain(s->ctx, s->sni);
	if (d == NULL) {
		log_debug("tls sni=%s default=%s reason=unknown-name-using-default", s->sni,
		    s->domain->name);
		return 0;
	}
	if (d != s->domain) {
		if (wolfSSL_set_SSL_CTX(ssl, d->server) == NULL) {
			log_warnx("tls sni=%s reason=switching-context-failed", s->sni);
			*alert = internal_error;
			return fatal_return;
		}
		tls_domain_release(s->domain);
		s->domain = tls_domain_hold(d);
	}
	return 0;
}

/* (Re)build the name index over ctx->domains: every handshake looks its domain up (SNI,
 * or the local domain of an outgoing stream), so 10,000 domains must not be a walk.
 * Out of memory leaves no index: lookups walk the list. */
static void
index_build(struct tls_ctx *ctx)
{
	size_t n = 0, slots = 16;

	free(ctx->index);
	ctx->index = NULL;
	for (const struct tls_domain *d = ctx->domains; d != NULL; d = d->next)
		n++;
	while (slots < 2 * n)
		slots *= 2;
	if ((ctx->index = calloc(slots, sizeof(*ctx->index))) == NULL)
		return;
	ctx->index_mask = slots - 1;
	for (struct tls_domain *d = ctx->domains; d != NULL; d = d->next) {
		size_t b = name_hash(d->name) & ctx->index_mask;

		while (ctx->index[b] != NULL)
			b = (b + 1) & ctx->index_mask;
		ctx->index[b] = d;
	}
}

struct tls_domain *
tls_ctx_domain(const struct tls_ctx *ctx, const char *name)
{
	if (ctx == NULL || name == NULL)
		return NULL;
	if (ctx->index != NULL) {
		for (size_t b = name_hash(name) & ctx->index_mask; ctx->index[b] != NULL;
		    b = (b + 1) & ctx->index_mask)
			if (strcasecmp(ctx->index[b]->name, name) == 0)
				return ctx->index[b];
		return NULL;
	}
	for (struct tls_domain *d = ctx->domains; d != NULL; d = d->next)
		if (strcasecmp(d->name, name) == 0)
			return d;
	return NULL;
}

/* The client session store and the server ticket keys (state_dir or a configured
 * key file), installed on every domain's contexts. */
static int
resumption_setup(struct tls_ctx *ctx, const struct config *cfg)
{
	char path[PATH_MAX_LEN];
	const char *kf = cfg->tls_ticket_key_file;
	time_t rot = cfg->tls_ticket_rotation_ms > 0 ?
	    (time_t)(cfg->tls_ticket_rotation_ms / 1000) : 12 * 3600;

	if (cfg->state_dir != NULL && mkdir(cfg->state_dir, 0700) == -1 && errno != EEXIST)
		log_warn("tls state_dir=%s reason=mkdir-failed", cfg->state_dir);
	if (kf == NULL && cfg->state_dir != NULL) {
		snprintf(path, sizeof(path), "%s/ticket.keys", cfg->state_dir);
		kf = path;
	}
	if ((ctx->tickets = tls_ticketkeys_new(kf, rot)) == NULL) {
		log_warnx("tls reason=ticket-keys-failed");
		return -1;
	}
	if (cfg->tls_session_store && cfg->state_dir != NULL) {
		snprintf(path, sizeof(path), "%s/tls-sessions.db", cfg->state_dir);
		if ((ctx->store = tls_store_open(path, cfg->tls_store_entries)) == NULL) {
			log_warnx("tls reason=out-of-memory");
			return -1;
		}
	}
	return domains_attach(ctx, ctx->domains, cfg);
}

/* Install the ticket keys (and the lifetime hint of cfg) on a list of domains. */
static int
domains_attach(struct tls_ctx *ctx, struct tls_domain *list, const struct config *cfg)
{
	unsigned life = cfg->tls_ticket_lifetime_ms > 0 ?
	    cfg->tls_ticket_lifetime_ms / 1000 : 86400;

	if (life > 7 * 86400)
		life = 7 * 86400;  /* the TLS 1.3 maximum */
	for (struct tls_domain *d = list; d != NULL; d = d->next) {
		if (tls_ticketkeys_attach(ctx->tickets, d->server, life) == -1)
			return -1;
		(void)wolfSSL_CTX_set_timeout(d->client, life);
	}
	return 0;
}

struct tls_domain *
tls_domain_hold(struct tls_domain *d)
{
	d->refs++;
	return d;
}

void
tls_domain_release(struct tls_domain *d)
{
	if (d == NULL || --d->refs > 0)
		return;
	if (d->server != NULL)
		wolfSSL_CTX_free(d->server);
	if (d->client != NULL)
		wolfSSL_CTX_free(d->client);
	free(d->name);
	free(d);
}

/* Drop the list's reference on each of its domains. */
static void
domains_release(struct tls_domain *list)
{
	struct tls_domain *d, *next;

	for (d = list; d != NULL; d = next) {
		next = d->next;
		d->next = NULL;
		tls_domain_release(d);
	}
}

/* Every configured domain's credentials, read from disk now (a domain without
 * certificate gets the self-signed one of state_dir), in configuration order; NULL when
 * one fails (logged; "FILE:LINE: message" to errs, which may be NULL). */
static struct tls_domain *
domains_build(const struct config *cfg, FILE *errs)
{
	struct tls_domain *list = NULL, **tail = &list;
	char crt[PATH_MAX_LEN], key[PATH_MAX_LEN];
	WOLFSSL_X509_STORE *cas = ca_store_load(cfg);

	for (const struct cfg_domain *cd = cfg->domains; cd != NULL; cd = cd->next) {
		struct tls_domain *d;
		const char *c = cd->certificate, *k = cd->key, *why = "out of memory";

		if (c == NULL || k == NULL) {
			if (tls_selfsigned_ensure(cfg->state_dir, cd->name, crt, sizeof(crt),
			    key, sizeof(key)) == -1) {
				why = "cannot make a self-signed certificate in state_dir";
				goto fail;
			}
			c = crt;
			k = key;
		}
		if ((d = calloc(1, sizeof(*d))) == NULL ||
		    (d->name = strdup(cd->name)) == NULL) {
			free(d);
			log_warnx("tls domain=%s reason=out-of-memory", cd->name);
			goto fail;
		}
		d->refs = 1;
		*tail = d;
		tail = &d->next;
		if ((d->server = ctx_make(cfg, cas, cd->name, c, k, true, &why)) == NULL ||
		    (d->client = ctx_make(cfg, cas, cd->name, c, k, false, &why)) == NULL)
			goto fail;
		log_debug("tls domain=%s certificate=%s loaded", cd->name, c);
		continue;
fail:
		if (errs != NULL)
			fprintf(errs, "%s:%d: domain %s: certificate %s, key %s, ca_file %s: %s\n",
			    cfg->path ? cfg->path : "-", cd->line, cd->name, c ? c : "-",
			    k ? k : "-", cfg->ca_file ? cfg->ca_file : "-", why);
		domains_release(list);
		wolfSSL_X509_STORE_free(cas);
		return NULL;
	}
	wolfSSL_X509_STORE_free(cas);  /* the contexts hold theirs */
	if (list == NULL) {
		log_warnx("tls reason=no-domains-configured");
		if (errs != NULL)
			fprintf(errs, "%s: no domain configured\n", cfg->path ? cfg->path : "-");
	}
	return list;
}

struct tls_ctx *
tls_ctx_new(const struct config *cfg)
{
	struct tls_ctx *ctx;

	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		log_warnx("tls reason=wolfSSL_Init-failed");
		return NULL;
	}
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		log_warnx("tls reason=out-of-memory");
		wolfSSL_Cleanup();
		return NULL;
	}
	ctx->magic = TLS_CTX_MAGIC;
	if ((ctx->domains = domains_build(cfg, NULL)) == NULL)
		goto fail;
	index_build(ctx);
	ctx->dane = cfg->dane;
	if (resumption_setup(ctx, cfg) == -1)
		goto fail;
	return ctx;
fail:
	tls_ctx_free(ctx);
	return NULL;
}

int
tls_ctx_reload(struct tls_ctx *ctx, const struct config *cfg, FILE *errs)
{
	struct tls_domain *list;
	size_t n = 0;

	if (ctx == NULL || ctx->magic != TLS_CTX_MAGIC)
		fatalx("tls_ctx_reload: bad magic");
	if ((list = domains_build(cfg, errs)) == NULL)
		return -1;
	if (domains_attach(ctx, list, cfg) == -1) {
		if (errs != NULL)
			fprintf(errs, "%s: tls: cannot install the ticket keys\n",
			    cfg->path ? cfg->path : "-");
		domains_release(list);
		return -1;
	}
	domains_release(ctx->domains);
	ctx->domains = list;
	index_build(ctx);
	ctx->dane = cfg->dane;
	for (const struct tls_domain *d = list; d != NULL; d = d->next)
		n++;
	log_info("tls reloaded: %zu domain(s); sessions already up keep their credentials", n);
	return 0;
}

void
tls_ctx_sync(struct tls_ctx *ctx)
{
	if (ctx != NULL && ctx->magic == TLS_CTX_MAGIC)
		(void)tls_store_sync(ctx->store);
}

void
tls_ctx_free(struct tls_ctx *ctx)
{
	if (ctx == NULL)
		return;
	if (ctx->magic != TLS_CTX_MAGIC)
		fatalx("tls_ctx_free: bad magic %#x", ctx->magic);
	domains_release(ctx->domains);
	free(ctx->index);
	tls_store_free(ctx->store);
	tls_ticketkeys_free(ctx->tickets);
	ctx->magic = 0;
	free(ctx);
	wolfSSL_Cleanup();
}
