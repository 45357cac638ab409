/* tls/selfsigned.c - self-signed certificates for local domains configured without one.
 * SPDX-License-Identifier: ISC
 * ctx.c calls tls_selfsigned_ensure() for each such domain at start-up. The certificate
 * (EC P-256, CN and SAN dNSName = domain, 10 years) and its key are written atomically
 * into state_dir as <domain>.crt and <domain>.key (mode 0600) and reused afterwards, so
 * peers that pinned the certificate keep seeing the same one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/random.h>

#include "../core/atomicfile.h"
#include "../core/log.h"
#include "tls_int.h"

#define SELF_DAYS   3650
#define DER_MAX     4096
#define PEM_MAX     8192

static int write_atomic(const char *, const char *, const unsigned char *, size_t, mode_t);
static size_t put_len(unsigned char *, size_t);
static int generate(const char *, unsigned char *, int *, unsigned char *, int *);

/* Write data to path atomically (core/atomicfile.c), so a crash never leaves a
 * half-written file behind. dir is only for the log line. */
static int
write_atomic(const char *dir, const char *path, const unsigned char *data, size_t n,
    mode_t mode)
{
	if (atomicfile_write(path, data, n, mode) == -1) {
		log_warn("tls selfsigned path=%s dir=%s reason=write", path, dir);
		return -1;
	}
	return 0;
}

/* DER length octets for n into p (up to 3 bytes); returns how many were written. */
static size_t
put_len(unsigned char *p, size_t n)
{
	if (n < 0x80) {
		p[0] = (unsigned char)n;
		return 1;
	}
	if (n < 0x100) {
		p[0] = 0x81;
		p[1] = (unsigned char)n;
		return 2;
	}
	p[0] = 0x82;
	p[1] = (unsigned char)(n >> 8);
	p[2] = (unsigned char)n;
	return 3;
}

/* Make a key and a self-signed certificate for domain, both PEM. */
static int
generate(const char *domain, unsigned char *crt, int *crtlen, unsigned char *key,
    int *keylen)
{
	unsigned char der[DER_MAX], name[8];
	size_t dlen = strlen(domain), nl, off;
	ecc_key ek;
	WC_RNG rng;
	Cert *cert = NULL;
	int rc = -1, n;
	bool have_rng = false, have_key = false;

	if (dlen == 0 || dlen >= CTC_NAME_SIZE) {
		log_warnx("tls selfsigned domain=%s reason=name-too-long", domain);
		return -1;
	}
	if (wc_InitRng(&rng) != 0)
		goto out;
	have_rng = true;
	if (wc_ecc_init(&ek) != 0)
		goto out;
	have_key = true;
	if (wc_ecc_make_key_ex(&rng, 32, &ek, ECC_SECP256R1) != 0)
		goto out;
	if ((cert = calloc(1, sizeof(*cert))) == NULL || wc_InitCert(cert) != 0)
		goto out;
	memcpy(cert->subject.commonName, domain, dlen + 1);
	cert->daysValid = SELF_DAYS;
	cert->selfSigned = 1;
	cert->isCA = 0;
	cert->sigType = CTC_SHA256wECDSA;
	/* SAN: SEQUENCE { [2] dNSName domain } */
	nl = put_len(name, dlen);
	off = 0;
	cert->altNames[off++] = 0x30;
	off += put_len(cert->altNames + off, 1 + nl + dlen);
	cert->altNames[off++] = 0x82;
	memcpy(cert->altNames + off, name, nl);
	off += nl;
	memcpy(cert->altNames + off, domain, dlen);
	off += dlen;
	cert->altNamesSz = (int)off;

	if (wc_MakeCert_ex(cert, der, sizeof(der), ECC_TYPE, &ek, &rng) < 0)
		goto out;
	if ((n = wc_SignCert_ex(cert->bodySz, cert->sigType, der, sizeof(der), ECC_TYPE,
	    &ek, &rng)) < 0)
		goto out;
	if ((*crtlen = wc_DerToPem(der, (word32)n, crt, PEM_MAX, CERT_TYPE)) < 0)
		goto out;
	if ((n = wc_EccKeyToDer(&ek, der, sizeof(der))) < 0)
		goto out;
	if ((*keylen = wc_DerToPem(der, (word32)n, key, PEM_MAX, ECC_PRIVATEKEY_TYPE)) < 0)
		goto out;
	rc = 0;
out:
	if (rc == -1)
		log_warnx("tls selfsigned domain=%s reason=generation-failed", domain);
	memset(der, 0, sizeof(der));
	free(cert);
	if (have_key)
		wc_ecc_free(&ek);
	if (have_rng)
		wc_FreeRng(&rng);
	return rc;
}

int
tls_selfsigned_ensure(const char *state_dir, const char *domain, char *crt,
    size_t crtsz, char *key, size_t keysz)
{
	unsigned char *crtpem = NULL, *keypem = NULL;
	int crtlen = 0, keylen = 0, rc = -1;
	struct stat st;

	if (domain[0] == '\0' || domain[0] == '.' || strchr(domain, '/') != NULL) {
		log_warnx("tls domain=%s reason=name-unusable-as-file-name", domain);
		return -1;
	}
	if (state_dir == NULL || *state_dir == '\0') {
		log_warnx("tls domain=%s reason=no-certificate-and-no-state_dir", domain);
		return -1;
	}
	if ((size_t)snprintf(crt, crtsz, "%s/%s.crt", state_dir, domain) >= crtsz ||
	    (size_t)snprintf(key, keysz, "%s/%s.key", state_dir, domain) >= keysz) {
		log_warnx("tls domain=%s reason=state-path-too-long", domain);
		return -1;
	}
	if (mkdir(state_dir, 0700) == -1 && errno != EEXIST) {
		log_warn("tls domain=%s state_dir=%s reason=mkdir", domain, state_dir);
		return -1;
	}
	if (stat(crt, &st) == 0 && stat(key, &st) == 0) {
		if (st.st_mode & 077)
			log_warnx("tls domain=%s key=%s reason=key-readable-by-others",
			    domain, key);
		log_debug("tls domain=%s certificate=%s self-signed=reused", domain, crt);
		return 0;
	}
	if ((crtpem = malloc(PEM_MAX)) == NULL || (keypem = malloc(PEM_MAX)) == NULL) {
		log_warnx("tls domain=%s reason=out-of-memory", domain);
		goto out;
	}
	if (generate(domain, crtpem, &crtlen, keypem, &keylen) == -1)
		goto out;
	/* Key first: a certificate on disk always has its key. */
	if (write_atomic(state_dir, key, keypem, (size_t)keylen, 0600) == -1 ||
	    write_atomic(state_dir, crt, crtpem, (size_t)crtlen, 0644) == -1)
		goto out;
	log_info("tls domain=%s certificate=%s self-signed=generated", domain, crt);
	rc = 0;
out:
	if (keypem != NULL)
		memset(keypem, 0, PEM_MAX);
	free(keypem);
	free(crtpem);
	return rc;
}
