/* s2s/dialback.h - XEP-0220 dialback keys generated as XEP-0185 recommends.
 * SPDX-License-Identifier: ISC
 * Used by stream.c to create keys for db:result and to answer db:verify for our local
 * domains (on the internet side) and for remote domains we present to the local server
 * (on the loopback side). Keys depend only on the secret, so no per-key state is kept. */
#ifndef QF_DIALBACK_H
#define QF_DIALBACK_H

#include <stdbool.h>
#include <stddef.h>

#define DIALBACK_KEY_LEN 64   /* hex of HMAC-SHA256 */

/* Set the secret (copied). An empty or NULL secret is refused (-1). */
int dialback_set_secret(const char *secret, size_t len);
/* Load the secret from path, or create it (32 random bytes, hex, mode 0600) when missing.
 * Returns 0 or -1 (logged). */
int dialback_load_or_create_secret(const char *path);
/* key = hex(HMAC-SHA256(hex(SHA256(secret)), receiving ' ' originating ' ' stream_id)).
 * out must hold DIALBACK_KEY_LEN + 1 bytes. Returns 0 or -1 (no secret set). */
int dialback_key(const char *receiving, const char *originating, const char *stream_id,
    char out[DIALBACK_KEY_LEN + 1]);
/* Constant-time check of a key presented by a peer. */
bool dialback_key_valid(const char *receiving, const char *originating,
    const char *stream_id, const char *key);
/* A fresh unguessable stream id (hex of 16 random bytes). out holds 33 bytes. */
void dialback_stream_id(char out[33]);

#endif
