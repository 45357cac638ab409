/* core/sample.h - one number a module reports, for both "show" answers and metrics.
 * SPDX-License-Identifier: ISC
 * A module that has counters or gauges emits each as a sample into a sink: the sample
 * carries its status name ("stanzas.in", what "show stats" prints) and its metric family
 * (type, help, labels: what core/metrics.c exposes as quickfed_stanzas_in_total). The
 * same emitter feeds the name=value answer (sample_kv_sink) and the OpenMetrics
 * exposition, so the two cannot drift. */
#ifndef QF_SAMPLE_H
#define QF_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

struct buf;

enum sample_type {
	SAMPLE_COUNTER = 0,   /* only goes up (while the process lives) */
	SAMPLE_GAUGE,         /* a current value */
};

/* A metric family. Families are static tables; sinks compare them by name. */
struct sample_family {
	const char      *name;  /* metric name without "quickfed_" and without a counter's
	                         * "_total" ("stanzas_in"); NULL: derived from the sample's
	                         * key, '.' and '-' becoming '_' */
	enum sample_type type;
	const char      *help;  /* one line, for # HELP */
};

struct sample_label {
	const char *name;       /* [a-z_]+, borrowed */
	const char *value;      /* any bytes, borrowed; the sink escapes it */
};

#define SAMPLE_LABELS_MAX 4

struct sample_sink;
/* key: the status name, or NULL (not in name=value answers: e.g. one of a labelled
 * family); fam: the family, or NULL (not a metric: e.g. a total a query can sum);
 * labels: nlabels (<= SAMPLE_LABELS_MAX) of them, borrowed for the call. */
typedef void (*sample_put_fn)(struct sample_sink *sink, const char *key,
    const struct sample_family *fam, const struct sample_label *labels, size_t nlabels,
    int64_t value);

struct sample_sink {
	sample_put_fn put;
	struct buf   *out;      /* borrowed: where the sink renders */
	void         *state;    /* the sink's own (core/metrics.c: its renderer) */
};

/* An emitter: a module's samples (arg: its object, borrowed). Families in one emitter
 * are contiguous: all samples of a family come one after the other. */
typedef void (*sample_emit_fn)(void *arg, struct sample_sink *sink);

/* Emit one sample without labels. */
void sample_put(struct sample_sink *sink, const char *key, const struct sample_family *fam,
    int64_t value);
/* A sink that appends "key=value\n" for each sample with a key to out. */
void sample_kv_sink(struct sample_sink *sink, struct buf *out);

#endif
