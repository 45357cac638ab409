/* s2s/jid.h - the little JID handling a relay needs: the domain part, lower-cased.
 * SPDX-License-Identifier: ISC
 * stream.c uses it to check stanza addressing against authenticated domains and that
 * stream headers and dialback name bare domains, route.c to pick the route for a stanza. Full RFC 7622 preparation is the servers' job. */
#ifndef QF_JID_H
#define QF_JID_H

#include <stdbool.h>
#include <stddef.h>

/* Copy the domain part of jid ("[node@]domain[/resource]") lower-cased into out.
 * Returns 0, or -1 when jid is NULL, the domain is empty, too long for out (or over
 * 1023 bytes), or contains characters no domain may hold. */
int jid_domain(const char *jid, char *out, size_t outlen);
/* Like jid_domain, but jid must be a domain alone: -1 also when it has a node ('@')
 * or a resource ('/'). For stream headers (RFC 6120 §4.7.1, §4.7.2) and the from/to
 * of db:result and db:verify (XEP-0220), which name servers, not users. */
int jid_domain_only(const char *jid, char *out, size_t outlen);
/* Case-insensitive domain equality. */
bool domain_eq(const char *a, const char *b);

#endif
