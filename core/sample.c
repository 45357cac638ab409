/* core/sample.c - emit samples, and render them as the status socket's name=value lines.
 * SPDX-License-Identifier: ISC
 * Modules with counters (core/stats.c, s2s/route.c, dns/resolver.c, tls/report.c) call
 * sample_put() from their emitters; their "show" handlers pass a sample_kv_sink, and
 * core/metrics.c passes its OpenMetrics sink to the same emitters. */
#include <inttypes.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/sample.h"

static void kv_put(struct sample_sink *, const char *, const struct sample_family *,
    const struct sample_label *, size_t, int64_t);

void
sample_put(struct sample_sink *sink, const char *key, const struct sample_family *fam,
    int64_t value)
{
	sink->put(sink, key, fam, NULL, 0, value);
}

static void
kv_put(struct sample_sink *sink, const char *key, const struct sample_family *fam,
    const struct sample_label *labels, size_t nlabels, int64_t value)
{
	if (key != NULL)
		buf_printf(sink->out, "%s=%" PRId64 "\n", key, value);
}

void
sample_kv_sink(struct sample_sink *sink, struct buf *out)
{
	sink->put = kv_put;
	sink->out = out;
	sink->state = NULL;
}
