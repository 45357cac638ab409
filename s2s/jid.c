/* s2s/jid.c - domain part of a JID, lower-cased.
 * SPDX-License-Identifier: ISC
 * Used by stream.c (addressing checks, domains of stream headers and dialback) and
 * route.c (routing). */
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "jid.h"

int
jid_domain(const char *jid, char *out, size_t outlen)
{
	const char *start, *end, *at, *slash;
	size_t n;

	if (jid == NULL || outlen == 0)
		return -1;
	slash = strchr(jid, '/');
	end = slash ? slash : jid + strlen(jid);
	at = memchr(jid, '@', (size_t)(end - jid));
	start = at ? at + 1 : jid;
	n = (size_t)(end - start);
	if (n > 0 && start[n - 1] == '.')   /* a trailing dot is not part of the domain */
		n--;
	if (n == 0 || n >= outlen || n > 1023)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)start[i];

		if (c <= ' ' || c == '@' || c == '/' || c == '<' || c == '>' || c == '&' ||
		    c == '\'' || c == '"' || c == 0x7f)
			return -1;
		out[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : (char)c;
	}
	out[n] = '\0';
	return 0;
}

int
jid_domain_only(const char *jid, char *out, size_t outlen)
{
	if (jid == NULL || strpbrk(jid, "@/") != NULL)
		return -1;
	return jid_domain(jid, out, outlen);
}

bool
domain_eq(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcasecmp(a, b) == 0;
}
