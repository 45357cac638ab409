/* ctl/kvjson.c - turn a status answer (name=value lines) into one JSON object.
 * SPDX-License-Identifier: ISC
 * Used by quickfedctl -j (ctl/quickfedctl.c), which does not link libquickfed: this file
 * uses the C library only. The mapping is in kvjson.h. Members are written as lines
 * arrive, so an answer of any size is converted in little memory (the "text" lines
 * excepted: they are few, the help table). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvjson.h"

static size_t utf8_seq(const unsigned char *, size_t);
static bool is_number(const char *, size_t);
static void member(struct kvjson *, const char *, size_t);
static void put_member(struct kvjson *, const char *, size_t, const char *, size_t);
static void text_add(struct kvjson *, const char *, size_t);

void
kvjson_begin(struct kvjson *j, FILE *out, bool metrics)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
	j->metrics = metrics;
	fputc('{', out);
}

/* Bytes of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void
kvjson_string(FILE *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;

	fputc('"', out);
	while (i < n) {
		unsigned char c = p[i];

		if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
			i++;
		} else if (c == '\n') {
			fputs("\\n", out), i++;
		} else if (c == '\r') {
			fputs("\\r", out), i++;
		} else if (c == '\t') {
			fputs("\\t", out), i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c), i++;
		} else if ((k = utf8_seq(p + i, n - i)) == 0) {
			fputs("\\ufffd", out), i++;
		} else {
			fwrite(p + i, 1, k, out);
			i += k;
		}
	}
	fputc('"', out);
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?, at most 30 bytes: copied verbatim it is a JSON number. */
static bool
is_number(const char *v, size_t n)
{
	size_t i = 0, d;

	if (n == 0 || n > 30)
		return false;
	if (v[i] == '-')
		i++;
	for (d = i; i < n && v[i] >= '0' && v[i] <= '9'; i++)
		;
	if (i == d || (v[d] == '0' && i - d > 1))
		return false;
	if (i < n && v[i] == '.') {
		for (d = ++i; i < n && v[i] >= '0' && v[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	return i == n;
}

/* "name": value, from name (nl bytes) then value (the rest, vl bytes). */
static void
put_member(struct kvjson *j, const char *name, size_t nl, const char *v, size_t vl)
{
	if (j->members++ > 0)
		fputc(',', j->out);
	fputc('\n', j->out);
	kvjson_string(j->out, name, nl);
	fputs(": ", j->out);
	if (is_number(v, vl))
		fwrite(v, 1, vl, j->out);
	else
		kvjson_string(j->out, v, vl);
}

static void
member(struct kvjson *j, const char *line, size_t len)
{
	const char *eq = memchr(line, '=', len);

	put_member(j, line, (size_t)(eq - line), eq + 1, len - (size_t)(eq + 1 - line));
}

/* Keep line as a JSON string for the "text" array written at the end. */
static void
text_add(struct kvjson *j, const char *line, size_t len)
{
	char *s = NULL;
	size_t n = 0;
	FILE *f;

	if (j->oom || (f = open_memstream(&s, &n)) == NULL) {
		j->oom = true;
		return;
	}
	kvjson_string(f, line, len);
	fputc(',', f);
	if (fclose(f) != 0 || s == NULL) {
		free(s);
		j->oom = true;
		return;
	}
	if (j->textlen + n > j->textcap) {
		size_t cap = (j->textcap + n) * 2;
		char *t = realloc(j->text, cap);

		if (t == NULL) {
			free(s);
			j->oom = true;
			return;
		}
		j->text = t;
		j->textcap = cap;
	}
	memcpy(j->text + j->textlen, s, n);
	j->textlen += n;
	free(s);
}

void
kvjson_line(struct kvjson *j, const char *line, size_t len)
{
	const char *sp, *eq;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return;
	if (len >= 6 && memcmp(line, "error:", 6) == 0) {
		size_t skip = len > 6 && line[6] == ' ' ? 7 : 6;

		j->error = true;
		if (j->members++ > 0)
			fputc(',', j->out);
		fputs("\n\"error\": ", j->out);
		kvjson_string(j->out, line + skip, len - skip);
		return;
	}
	if (j->metrics) {
		if (line[0] == '#')
			return;
		/* "series value": the value is after the last space (no timestamps here) */
		for (sp = line + len; sp > line && sp[-1] != ' '; sp--)
			;
		if (sp > line + 1) {
			put_member(j, line, (size_t)(sp - 1 - line), sp, len - (size_t)(sp - line));
			return;
		}
	} else if ((eq = memchr(line, '=', len)) != NULL && eq > line &&
	    memchr(line, ' ', (size_t)(eq - line)) == NULL &&
	    memchr(line, '\t', (size_t)(eq - line)) == NULL) {
		member(j, line, len);   /* a name is one word: the help table's lines are text */
		return;
	}
	text_add(j, line, len);
}

int
kvjson_end(struct kvjson *j)
{
	int rc = j->oom ? -1 : j->error ? 1 : 0;

	if (j->textlen > 0) {
		if (j->members++ > 0)
			fputc(',', j->out);
		fputs("\n\"text\": [", j->out);
		fwrite(j->text, 1, j->textlen - 1, j->out);   /* without the last ',' */
		fputc(']', j->out);
	}
	fputs("\n}\n", j->out);
	free(j->text);
	j->text = NULL;
	j->textlen = j->textcap = 0;
	return rc;
}
