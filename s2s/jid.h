/* s2s/jid.h - the little JID handling a relay needs: the domain part, lower-cased.
 * SPDX-License-Identifier: ISC
 * stream.c uses it to check stanza addressing against authenticated domains, route.c to
 * pick the route for a stanza. Full RFC 7622 preparation is the servers' job. */
#ifndef QF_JID_H
#define QF_JID_H

#include <stdbool.h>
#include <stddef.h>

/* Copy the domain part of jid ("[node@]domain[/resource]") lower-cased into out.
 * Returns 0, or -1 when jid is NULL, the domain is empty, too long for out (or over
 * 1023 bytes), or contains characters no domain may hold. */
int jid_domain(const char *jid, char *out, size_t outlen);
/* Case-insensitive domain equality. */
bool domain_eq(const char *a, const char *b);

#endif
