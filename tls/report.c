/* tls/report.c - the "show tls" status command.
 * SPDX-License-Identifier: ISC
 * main.c calls tls_register_status() once the status socket exists; the answer lists
 * handshake counts by role (full vs resumed), the resumption rate, DANE outcomes, the
 * age of the current ticket key, the number of saved client sessions and the bytes of
 * all-zero session pages given back after handshakes (session.c). tls_emit() gives
 * the same numbers as samples, for the metrics (core/metrics.c). */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/sample.h"
#include "../core/status.h"
#include "tls_int.h"

static int show_tls(void *, const char *, struct buf *);

static const struct sample_family fam_handshakes = { "tls_handshakes_by_kind",
	SAMPLE_COUNTER, "TLS handshakes completed, by kind (full, resumed) and role" };
static const struct sample_family fam_rate = { NULL, SAMPLE_GAUGE,
	"resumed handshakes, percent of all since start" };
static const struct sample_family fam_dane_matched = { NULL, SAMPLE_COUNTER,
	"DANE (TLSA) matches, outgoing and incoming" };
static const struct sample_family fam_dane_failed = { NULL, SAMPLE_COUNTER,
	"DANE (TLSA) failures, outgoing and incoming" };
static const struct sample_family fam_key_age = { "tls_ticket_key_age_seconds",
	SAMPLE_GAUGE, "age of the current session ticket key (-1: none)" };
static const struct sample_family fam_store = { NULL, SAMPLE_GAUGE,
	"client sessions saved for resumption" };
static const struct sample_family fam_rejected = { NULL, SAMPLE_COUNTER,
	"saved client sessions refused (corrupt, expired)" };
static const struct sample_family fam_trimmed = { NULL, SAMPLE_COUNTER,
	"bytes of all-zero wolfSSL session pages given back after handshakes" };

static void
put_handshakes(struct sample_sink *sink, const char *kind, const char *role, uint64_t n)
{
	struct sample_label lab[2] = { { "kind", kind }, { "role", role } };
	char key[64];

	snprintf(key, sizeof(key), "tls.handshakes.%s.%s", kind, role);
	sink->put(sink, key, &fam_handshakes, lab, 2, (int64_t)n);
}

void
tls_emit(void *arg, struct sample_sink *sink)
{
	struct tls_ctx *ctx = arg;
	const struct tls_counters *n;
	uint64_t full, res;

	if (ctx == NULL || ctx->magic != TLS_CTX_MAGIC)
		return;
	n = &ctx->n;
	full = n->full_client + n->full_server;
	res = n->resumed_client + n->resumed_server;
	put_handshakes(sink, "full", "client", n->full_client);
	put_handshakes(sink, "full", "server", n->full_server);
	put_handshakes(sink, "resumed", "client", n->resumed_client);
	put_handshakes(sink, "resumed", "server", n->resumed_server);
	sample_put(sink, "tls.resumption_rate", &fam_rate,
	    (int64_t)(full + res > 0 ? res * 100 / (full + res) : 0));
	sample_put(sink, "tls.dane.matched", &fam_dane_matched, (int64_t)n->dane_matched);
	sample_put(sink, "tls.dane.failed", &fam_dane_failed, (int64_t)n->dane_failed);
	sample_put(sink, "tls.ticket_key.age_s", &fam_key_age,
	    tls_ticketkeys_age(ctx->tickets, time(NULL)));
	sample_put(sink, "tls.store.entries", &fam_store, (int64_t)tls_store_count(ctx->store));
	sample_put(sink, "tls.store.rejected", &fam_rejected, (int64_t)n->store_rejected);
	sample_put(sink, "tls.trimmed_bytes", &fam_trimmed, (int64_t)n->trimmed_bytes);
}

int
tls_status_write(struct tls_ctx *ctx, struct buf *out)
{
	struct sample_sink sink;
	size_t before = out->len;

	sample_kv_sink(&sink, out);
	tls_emit(ctx, &sink);
	return out->len > before ? 0 : -1;
}

static int
show_tls(void *arg, const char *args, struct buf *out)
{
	struct tls_ctx *ctx = arg;

	if (ctx == NULL || ctx->magic != TLS_CTX_MAGIC)
		return buf_puts(out, "tls context gone") == 0 ? -1 : -1;
	return tls_status_write(ctx, out);
}

int
tls_register_status(struct tls_ctx *ctx, struct status *st)
{
	return status_register(st, "show tls", "show tls: handshakes full/resumed by role, "
	    "resumption rate, DANE outcomes, ticket key age, saved sessions", show_tls, ctx);
}
