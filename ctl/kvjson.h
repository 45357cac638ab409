/* ctl/kvjson.h - turn a status answer (name=value lines) into one JSON object.
 * SPDX-License-Identifier: ISC
 * quickfedctl -j feeds each line of the answer to kvjson_line() as it arrives. The
 * mapping (documented in quickfedctl(8)):
 *   name=value      member "name": value, the name kept whole (dots and all); the value
 *                   a JSON number when it is one whole (-?digits, or digits.digits),
 *                   else a string. A name listed twice keeps both members in order (a
 *                   JSON reader keeps the last).
 *   error: WHAT     member "error": "WHAT" (and kvjson_end() returns 1)
 *   other lines     strings of the array member "text" (the help table), in order
 *   show metrics    (metrics mode) each sample line "series value" is member "series":
 *                   value, labels part of the name; # lines are left out.
 * Strings are escaped as RFC 8259 requires; bytes that are not UTF-8 become U+FFFD. */
#ifndef QF_KVJSON_H
#define QF_KVJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct kvjson {
	FILE   *out;       /* borrowed */
	bool    metrics;   /* lines are an exposition (show metrics) */
	size_t  members;   /* written so far */
	char   *text;      /* owned: the other lines, each a JSON string plus ',' */
	size_t  textlen, textcap;
	bool    error;     /* an "error:" line came */
	bool    oom;       /* out of memory: text lines were lost */
};

void kvjson_begin(struct kvjson *j, FILE *out, bool metrics);
/* One line of the answer, without its newline (borrowed; any bytes). */
void kvjson_line(struct kvjson *j, const char *line, size_t len);
/* Close the object (and free what j holds). Returns 1 when the answer had an error
 * line, -1 when memory ran out, else 0. */
int kvjson_end(struct kvjson *j);
/* Write s (n bytes) to out as a JSON string, quotes included. */
void kvjson_string(FILE *out, const char *s, size_t n);

#endif
