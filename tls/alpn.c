/* tls/alpn.c - ALPN for direct TLS s2s (XEP-0368: protocol "xmpp-server").
 * SPDX-License-Identifier: ISC
 * conn.c calls tls_session_set_alpn() on sessions of direct-TLS connections, both
 * roles, before the first handshake step. A peer that offers no ALPN or another
 * protocol is not refused (mismatch continues), as deployed servers vary. */
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "../core/log.h"
#include "tls.h"
#include "tls_int.h"

int
tls_session_set_alpn(struct tls_session *s, const char *proto)
{
	char list[64];
	size_t n = strlen(proto);

	if (n == 0 || n >= sizeof(list))
		return -1;
	memcpy(list, proto, n + 1);
	if (wolfSSL_UseALPN(s->ssl, list, (unsigned)n,
	    WOLFSSL_ALPN_CONTINUE_ON_MISMATCH) != WOLFSSL_SUCCESS) {
		log_warnx("tls alpn=%s reason=cannot-set", proto);
		return -1;
	}
	return 0;
}
