/* s2s/dialback.c - XEP-0220 dialback keys generated and checked as XEP-0185 recommends.
 * SPDX-License-Identifier: ISC
 * stream.c calls dialback_key() to send db:result and db:verify, dialback_key_valid() to
 * answer db:verify, and dialback_stream_id() for the ids of streams we accept. main.c loads
 * the secret once at start-up (dialback_load_or_create_secret). Only the HMAC key derived
 * from the secret (hex of its SHA-256) is kept, in static storage. */
#include <wolfssl/options.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "core/atomicfile.h"
#include "core/log.h"
#include "s2s/dialback.h"

#define DIALBACK_SECRET_MAX   1024  /* bytes in the secret file */
#define DIALBACK_SECRET_RAND  32    /* random bytes in a created secret */

/* hex(SHA256(secret)): the HMAC key of XEP-0185. */
static char hmac_key[2 * WC_SHA256_DIGEST_SIZE];
static bool have_secret;

static void hex_encode(const unsigned char *, size_t, char *);
static int random_bytes(void *, size_t);
static int read_secret(int, const char *);
static int create_secret(const char *);

static void
hex_encode(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int
random_bytes(void *p, size_t n)
{
	unsigned char *q = p;
	ssize_t r;

	while (n > 0) {
		r = getrandom(q, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		q += r;
		n -= (size_t)r;
	}
	return 0;
}

int
dialback_set_secret(const char *secret, size_t len)
{
	wc_Sha256 sha;
	unsigned char digest[WC_SHA256_DIGEST_SIZE];
	char hex[2 * WC_SHA256_DIGEST_SIZE + 1];
	int rc;

	if (secret == NULL || len == 0 || len > UINT_MAX)
		return -1;
	if (wc_InitSha256(&sha) != 0)
		return -1;
	rc = wc_Sha256Update(&sha, (const unsigned char *)secret, (word32)len);
	if (rc == 0)
		rc = wc_Sha256Final(&sha, digest);
	wc_Sha256Free(&sha);
	if (rc != 0) {
		log_warnx("dialback reason=sha256-failed rc=%d", rc);
		return -1;
	}
	hex_encode(digest, sizeof(digest), hex);
	memcpy(hmac_key, hex, sizeof(hmac_key));
	have_secret = true;
	return 0;
}

int
dialback_key(const char *receiving, const char *originating, const char *stream_id,
    char out[DIALBACK_KEY_LEN + 1])
{
	Hmac hmac;
	unsigned char mac[WC_SHA256_DIGEST_SIZE];
	size_t rl, ol, sl;
	int rc;

	out[0] = '\0';
	if (!have_secret || receiving == NULL || originating == NULL || stream_id == NULL)
		return -1;
	rl = strlen(receiving);
	ol = strlen(originating);
	sl = strlen(stream_id);
	if (rl > UINT_MAX || ol > UINT_MAX || sl > UINT_MAX)
		return -1;
	if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
		return -1;
	rc = wc_HmacSetKey(&hmac, WC_SHA256, (const unsigned char *)hmac_key,
	    (word32)sizeof(hmac_key));
	if (rc == 0)
		rc = wc_HmacUpdate(&hmac, (const unsigned char *)receiving, (word32)rl);
	if (rc == 0)
		rc = wc_HmacUpdate(&hmac, (const unsigned char *)" ", 1);
	if (rc == 0)
		rc = wc_HmacUpdate(&hmac, (const unsigned char *)originating, (word32)ol);
	if (rc == 0)
		rc = wc_HmacUpdate(&hmac, (const unsigned char *)" ", 1);
	if (rc == 0)
		rc = wc_HmacUpdate(&hmac, (const unsigned char *)stream_id, (word32)sl);
	if (rc == 0)
		rc = wc_HmacFinal(&hmac, mac);
	wc_HmacFree(&hmac);
	if (rc != 0) {
		log_warnx("dialback from=%s to=%s reason=hmac-failed rc=%d", originating,
		    receiving, rc);
		return -1;
	}
	hex_encode(mac, sizeof(mac), out);
	return 0;
}

bool
dialback_key_valid(const char *receiving, const char *originating, const char *stream_id,
    const char *key)
{
	char want[DIALBACK_KEY_LEN + 1];
	char got[DIALBACK_KEY_LEN];
	size_t len;
	unsigned char diff = 0;

	if (key == NULL)
		return false;
	/* Keys arrive as element text; tolerate surrounding XML whitespace. */
	while (*key == ' ' || *key == '\t' || *key == '\r' || *key == '\n')
		key++;
	len = strlen(key);
	while (len > 0 && (key[len - 1] == ' ' || key[len - 1] == '\t' ||
	    key[len - 1] == '\r' || key[len - 1] == '\n'))
		len--;
	if (len != DIALBACK_KEY_LEN)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)key[i]))
			return false;
		got[i] = (char)tolower((unsigned char)key[i]);
	}
	if (dialback_key(receiving, originating, stream_id, want) == -1)
		return false;
	for (size_t i = 0; i < DIALBACK_KEY_LEN; i++)
		diff |= (unsigned char)(want[i] ^ got[i]);
	return diff == 0;
}

void
dialback_stream_id(char out[33])
{
	unsigned char r[16];

	if (random_bytes(r, sizeof(r)) == -1)
		fatal("dialback reason=getrandom-failed");
	hex_encode(r, sizeof(r), out);
}

static int
read_secret(int fd, const char *path)
{
	char data[DIALBACK_SECRET_MAX + 1];
	size_t len = 0;
	ssize_t r;
	int rc;

	while (len < sizeof(data)) {
		r = read(fd, data + len, sizeof(data) - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_warn("dialback secret=%s reason=read-failed", path);
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (len > DIALBACK_SECRET_MAX) {
		log_warnx("dialback secret=%s reason=too-long max=%d", path, DIALBACK_SECRET_MAX);
		return -1;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	if (len == 0) {
		log_warnx("dialback secret=%s reason=empty", path);
		return -1;
	}
	rc = dialback_set_secret(data, len);
	memset(data, 0, sizeof(data));
	return rc;
}

static int
create_secret(const char *path)
{
	unsigned char r[DIALBACK_SECRET_RAND];
	char hex[2 * DIALBACK_SECRET_RAND + 2];
	size_t len;
	int rc;

	if (random_bytes(r, sizeof(r)) == -1) {
		log_warn("dialback secret=%s reason=getrandom-failed", path);
		return -1;
	}
	hex_encode(r, sizeof(r), hex);
	len = strlen(hex);
	hex[len++] = '\n';
	if (atomicfile_write(path, hex, len, 0600) == -1) {
		log_warn("dialback secret=%s reason=write-failed", path);
		rc = -1;
	} else {
		log_info("dialback secret=%s created", path);
		rc = dialback_set_secret(hex, len - 1);
	}
	memset(hex, 0, sizeof(hex));
	memset(r, 0, sizeof(r));
	return rc;
}

int
dialback_load_or_create_secret(const char *path)
{
	struct stat sb;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd == -1) {
		if (errno == ENOENT)
			return create_secret(path);
		log_warn("dialback secret=%s reason=open-failed", path);
		return -1;
	}
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		log_warnx("dialback secret=%s reason=not-a-regular-file", path);
		close(fd);
		return -1;
	}
	if (sb.st_mode & 077)
		log_warnx("dialback secret=%s reason=mode-too-open mode=%04o", path,
		    (unsigned)(sb.st_mode & 07777));
	rc = read_secret(fd, path);
	close(fd);
	return rc;
}
