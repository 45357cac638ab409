/* core/metrics.c - render samples as the OpenMetrics / Prometheus text exposition.
 * SPDX-License-Identifier: ISC
 * The sink here turns the samples the modules emit (core/sample.h) into families:
 * "# HELP quickfed_x ...", "# TYPE quickfed_x counter", "quickfed_x_total{l="v"} 3", and
 * "# EOF" at the end of an OpenMetrics exposition. "show metrics" and the HTTP listener
 * (core/metrics_http.c) call metrics_render(). Label values are escaped and made valid
 * UTF-8 whatever their bytes (remote domain names come from the network). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/sample.h"
#include "core/status.h"

#define METRICS_PREFIX    "quickfed_"
#define METRICS_NAME_MAX  128
#define METRICS_ANSWER    (1024 * 1024)

struct render {
	struct buf          *out;
	enum metrics_format  fmt;
	char                 cur[METRICS_NAME_MAX];  /* the family being written ("" none) */
	struct buf           seen;    /* "\nname" for each family written, and a '\n' */
	unsigned long        dropped; /* samples of a family that came back, left out */
	const char          *dropped_name;
};

static struct metrics_source sources[METRICS_SOURCES_MAX];
static size_t nsources;

static void render_put(struct sample_sink *, const char *, const struct sample_family *,
    const struct sample_label *, size_t, int64_t);
static bool family_name(const char *, const struct sample_family *, char *, size_t);
static void put_escaped(struct buf *, const char *, bool);
static void put_label_value(struct buf *, const char *);
static size_t utf8_len(const unsigned char *);
static int show_metrics(void *, const char *, struct buf *);

int
metrics_add(sample_emit_fn fn, void *arg)
{
	if (fn == NULL || nsources >= METRICS_SOURCES_MAX)
		return -1;
	sources[nsources].fn = fn;
	sources[nsources].arg = arg;
	nsources++;
	return 0;
}

void
metrics_clear(void)
{
	nsources = 0;
}

const char *
metrics_content_type(enum metrics_format fmt)
{
	return fmt == METRICS_PROMETHEUS ? "text/plain; version=0.0.4; charset=utf-8" :
	    "application/openmetrics-text; version=1.0.0; charset=utf-8";
}

/* quickfed_ + (fam->name, or the key with '.' and '-' as '_'); any other byte outside
 * [A-Za-z0-9_:] becomes '_'. False when there is no name. */
static bool
family_name(const char *key, const struct sample_family *fam, char *name, size_t size)
{
	const char *src = fam->name != NULL ? fam->name : key;
	size_t n = strlen(METRICS_PREFIX), i;

	if (src == NULL || *src == '\0' || n + strlen(src) >= size)
		return false;
	memcpy(name, METRICS_PREFIX, n);
	for (i = 0; src[i] != '\0'; i++) {
		unsigned char c = (unsigned char)src[i];

		name[n + i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == ':' ? (char)c : '_';
	}
	name[n + i] = '\0';
	return true;
}

/* Bytes of the valid UTF-8 sequence at p (1-4), or 0 when it is not one. */
static size_t
utf8_len(const unsigned char *p)
{
	size_t n, i;
	uint32_t cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)   /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;   /* overlong, beyond Unicode, or a surrogate */
	return n;
}

/* HELP text: backslash and newline escaped, and the double quote for OpenMetrics. */
static void
put_escaped(struct buf *out, const char *s, bool dq)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			buf_puts(out, "\\\\");
		else if (*s == '\n')
			buf_puts(out, "\\n");
		else if (*s == '"' && dq)
			buf_puts(out, "\\\"");
		else
			buf_append(out, s, 1);
	}
}

/* A label value: backslash, double quote and newline escaped; a byte that does not
 * start a valid UTF-8 sequence becomes U+FFFD. */
static void
put_label_value(struct buf *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p != '\0') {
		if (*p == '\\' || *p == '"') {
			buf_printf(out, "\\%c", *p);
			p++;
		} else if (*p == '\n') {
			buf_puts(out, "\\n");
			p++;
		} else if ((n = utf8_len(p)) == 0) {
			buf_puts(out, "\xef\xbf\xbd");
			p++;
		} else {
			buf_append(out, p, n);
			p += n;
		}
	}
}

static void
render_put(struct sample_sink *sink, const char *key, const struct sample_family *fam,
    const struct sample_label *labels, size_t nlabels, int64_t value)
{
	struct render *rd = sink->state;
	struct buf *out = rd->out;
	char name[METRICS_NAME_MAX], probe[METRICS_NAME_MAX + 2];
	bool counter;

	if (fam == NULL || !family_name(key, fam, name, sizeof(name)))
		return;   /* not a metric */
	counter = fam->type == SAMPLE_COUNTER;
	if (strcmp(name, rd->cur) != 0) {
		snprintf(probe, sizeof(probe), "\n%s\n", name);
		if (rd->seen.len > 0 && strstr(rd->seen.data, probe) != NULL) {
			/* the family came back after another: the format allows one block */
			if (rd->dropped++ == 0)
				rd->dropped_name = fam->name != NULL ? fam->name : key;
			return;
		}
		strcpy(rd->cur, name);
		if (rd->seen.len == 0)
			buf_puts(&rd->seen, "\n");
		buf_printf(&rd->seen, "%s\n", name);
		/* 0.0.4 names the counter's series itself; OpenMetrics its family */
		buf_printf(out, "# HELP %s%s ", name,
		    counter && rd->fmt == METRICS_PROMETHEUS ? "_total" : "");
		put_escaped(out, fam->help != NULL ? fam->help : "", rd->fmt ==
		    METRICS_OPENMETRICS);
		buf_printf(out, "\n# TYPE %s%s %s\n", name,
		    counter && rd->fmt == METRICS_PROMETHEUS ? "_total" : "",
		    counter ? "counter" : "gauge");
	}
	buf_printf(out, "%s%s", name, counter ? "_total" : "");
	if (nlabels > SAMPLE_LABELS_MAX)
		nlabels = SAMPLE_LABELS_MAX;
	for (size_t i = 0; i < nlabels; i++) {
		buf_printf(out, "%c%s=\"", i == 0 ? '{' : ',', labels[i].name);
		put_label_value(out, labels[i].value != NULL ? labels[i].value : "");
		buf_puts(out, "\"");
	}
	buf_printf(out, "%s %" PRId64 "\n", nlabels > 0 ? "}" : "",
	    counter && value < 0 ? 0 : value);
}

int
metrics_render_sources(struct buf *out, enum metrics_format fmt,
    const struct metrics_source *src, size_t n)
{
	static double last_log;   /* a misbehaving source is logged once a minute at most */
	struct render rd;
	struct sample_sink sink;
	size_t room = buf_room(out);
	int rc;

	memset(&rd, 0, sizeof(rd));
	rd.out = out;
	rd.fmt = fmt;
	buf_init(&rd.seen, 64 * 1024);
	sink.put = render_put;
	sink.out = out;
	sink.state = &rd;
	for (size_t i = 0; i < n; i++) {
		rd.cur[0] = '\0';   /* a family does not go on in the next source */
		src[i].fn(src[i].arg, &sink);
	}
	if (fmt == METRICS_OPENMETRICS)
		buf_puts(out, "# EOF\n");
	if (rd.dropped > 0) {
		double now = (double)time(NULL);

		if (now - last_log >= 60 || now < last_log) {
			last_log = now;
			log_warnx("metrics reason=family-repeated family=%s samples=%lu (left out)",
			    rd.dropped_name, rd.dropped);
		}
	}
	buf_free(&rd.seen);
	/* an append that did not fit was refused: near the cap the exposition is cut (no
	 * single append is as long as 4 KiB) */
	rc = room > 0 && buf_room(out) < 4096 ? -1 : 0;
	return rc;
}

int
metrics_render(struct buf *out, enum metrics_format fmt)
{
	return metrics_render_sources(out, fmt, sources, nsources);
}

static int
show_metrics(void *arg, const char *args, struct buf *out)
{
	if (*args != '\0') {
		buf_puts(out, "usage: show metrics");
		return -1;
	}
	/* cut at the status socket's cap, which says so */
	(void)metrics_render(out, METRICS_OPENMETRICS);
	return 0;
}

int
metrics_register_status(struct status *st)
{
	return status_register(st, "show metrics", "show metrics: every counter and gauge "
	    "in the OpenMetrics text format (what the metrics listener serves)", show_metrics,
	    NULL);
}
