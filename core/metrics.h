/* core/metrics.h - the OpenMetrics / Prometheus text exposition of every sample.
 * SPDX-License-Identifier: ISC
 * main.c adds the modules' emitters as sources (core/sample.h: route_emit for show stats,
 * resolver_emit, tls_emit, remotes_emit); "show metrics" (status socket) and the metrics
 * HTTP listener (core/metrics_http.c) render them. Every metric is quickfed_<name>:
 * counters are exposed as quickfed_<name>_total, HELP and TYPE come first, and an
 * OpenMetrics exposition ends with "# EOF". */
#ifndef QF_METRICS_H
#define QF_METRICS_H

#include <stddef.h>

#include "sample.h"

struct buf;
struct status;

#define METRICS_SOURCES_MAX  16

enum metrics_format {
	METRICS_OPENMETRICS = 0,  /* application/openmetrics-text; version=1.0.0 */
	METRICS_PROMETHEUS,       /* text/plain; version=0.0.4 (no # EOF, counter TYPE
	                           * lines name the _total series) */
};

/* An emitter and its argument (borrowed: it must outlive the metrics' use). */
struct metrics_source {
	sample_emit_fn fn;
	void          *arg;
};

/* Add a source to the process's list (rendered in the order added). Returns 0, or -1
 * when METRICS_SOURCES_MAX are there. */
int metrics_add(sample_emit_fn fn, void *arg);
/* Forget every source (at exit, and between unit tests). */
void metrics_clear(void);
/* Render the process's sources to out. Returns 0, or -1 when out filled up (what it
 * holds is then cut). */
int metrics_render(struct buf *out, enum metrics_format fmt);
/* Render the given sources (the unit tests use this). A family that appears a second
 * time after another one (which the format forbids) is left out and logged once. */
int metrics_render_sources(struct buf *out, enum metrics_format fmt,
    const struct metrics_source *src, size_t n);
/* The Content-Type header value of fmt. */
const char *metrics_content_type(enum metrics_format fmt);
/* Register "show metrics" (the OpenMetrics exposition) on the status socket. */
int metrics_register_status(struct status *st);

#endif
