/* tls/report.c - the "show tls" status command.
 * SPDX-License-Identifier: ISC
 * main.c calls tls_register_status() once the status socket exists; the answer lists
 * handshake counts by role (full vs resumed), the resumption rate, DANE outcomes, the
 * age of the current ticket key and the number of saved client sessions. */
#include <inttypes.h>
#include <time.h>

#include "../core/status.h"
#include "tls_int.h"

static int show_tls(void *, const char *, struct buf *);

int
tls_status_write(struct tls_ctx *ctx, struct buf *out)
{
	const struct tls_counters *n = &ctx->n;
	uint64_t full = n->full_client + n->full_server;
	uint64_t res = n->resumed_client + n->resumed_server;

	return buf_printf(out,
	    "tls.handshakes.full.client=%" PRIu64 "\n"
	    "tls.handshakes.full.server=%" PRIu64 "\n"
	    "tls.handshakes.resumed.client=%" PRIu64 "\n"
	    "tls.handshakes.resumed.server=%" PRIu64 "\n"
	    "tls.resumption_rate=%" PRIu64 "\n"
	    "tls.dane.matched=%" PRIu64 "\n"
	    "tls.dane.failed=%" PRIu64 "\n"
	    "tls.ticket_key.age_s=%ld\n"
	    "tls.store.entries=%zu\n"
	    "tls.store.rejected=%" PRIu64 "\n",
	    n->full_client, n->full_server, n->resumed_client, n->resumed_server,
	    full + res > 0 ? res * 100 / (full + res) : 0, n->dane_matched, n->dane_failed,
	    tls_ticketkeys_age(ctx->tickets, time(NULL)), tls_store_count(ctx->store),
	    n->store_rejected);
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
