/* s2s/flight.c - describe what one write ("flight") of a connection carried.
 * SPDX-License-Identifier: ISC
 * Used by conn.c for its per-flight debug lines; pure string functions. */
#include <stdio.h>
#include <string.h>

#include "flight.h"

void
flight_note_xml(char note[FLIGHT_NOTE], const char *p, size_t n)
{
	size_t len = strlen(note);

	for (size_t i = 0; i + 1 < n; i++) {
		size_t j;

		if (p[i] != '<' || p[i + 1] == '/' || p[i + 1] == '?' || p[i + 1] == '!')
			continue;
		for (j = i + 1; j < n && p[j] != ' ' && p[j] != '>' && p[j] != '/' &&
		    p[j] != '\t' && p[j] != '\n' && p[j] != '\r'; j++)
			;
		if (len + (j - i) + 2 >= FLIGHT_NOTE) {
			if (len + 4 < FLIGHT_NOTE)
				len += (size_t)snprintf(note + len, FLIGHT_NOTE - len, ",...");
			return;
		}
		len += (size_t)snprintf(note + len, FLIGHT_NOTE - len, "%s%.*s", len ? "," : "",
		    (int)(j - i - 1), p + i + 1);
		i = j - 1;
	}
}

static const char *
record_name(unsigned char type, const unsigned char *body, size_t blen)
{
	switch (type) {
	case 0x14: return "ccs";
	case 0x15: return "alert";
	case 0x17: return "data";
	case 0x16:
		if (blen > 0 && body[0] == 1)
			return "hs:ClientHello";
		if (blen > 0 && body[0] == 2)
			return "hs:ServerHello";
		return "hs";
	default: return "?";
	}
}

void
flight_describe_tls(char *out, size_t outlen, const unsigned char *p, size_t n)
{
	size_t len = 0, i = 0;
	const char *last = NULL;
	unsigned repeat = 0;

	out[0] = '\0';
	while (i + 5 <= n && len + 32 < outlen) {
		size_t rlen = ((size_t)p[i + 3] << 8) | p[i + 4];
		const char *name = record_name(p[i], p + i + 5, i + 5 + rlen <= n ? rlen : n - i - 5);

		if (last != NULL && strcmp(last, name) == 0) {
			repeat++;
		} else {
			if (last != NULL && repeat > 1)
				len += (size_t)snprintf(out + len, outlen - len, "*%u", repeat);
			len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? "," : "", name);
			last = name;
			repeat = 1;
		}
		if (i + 5 + rlen > n) {
			len += (size_t)snprintf(out + len, outlen - len, "+partial");
			return;
		}
		i += 5 + rlen;
	}
	if (last != NULL && repeat > 1)
		snprintf(out + len, outlen - len, "*%u", repeat);
}
