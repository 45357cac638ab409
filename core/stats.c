/* core/stats.c - daemon-wide counters and their "name=value" rendering.
 * SPDX-License-Identifier: ISC
 * Modules bump qf_stats fields directly and call stats_stream_error() when a stream error
 * is sent or received; main.c registers "show stats" on the status socket with a handler
 * that calls stats_format(). Names printed here are stable: never rename one that shipped. */
#include <stddef.h>
#include <string.h>

#include "core/buf.h"
#include "core/stats.h"

struct qf_stats qf_stats;

/* RFC 6120 section 4.9.3 stream error conditions; the last slot counts anything else. */
static const char *const stream_conds[] = {
	"bad-format",
	"bad-namespace-prefix",
	"conflict",
	"connection-timeout",
	"host-gone",
	"host-unknown",
	"improper-addressing",
	"internal-server-error",
	"invalid-from",
	"invalid-namespace",
	"invalid-xml",
	"not-authorized",
	"not-well-formed",
	"policy-violation",
	"remote-connection-failed",
	"reset",
	"resource-constraint",
	"restricted-xml",
	"see-other-host",
	"system-shutdown",
	"undefined-condition",
	"unsupported-encoding",
	"unsupported-feature",
	"unsupported-stanza-type",
	"unsupported-version",
	"other",
};
#define NCONDS (sizeof(stream_conds) / sizeof(stream_conds[0]))

static unsigned long stream_errors[2][NCONDS];  /* [0] received, [1] sent */

static void format_stream_errors(struct buf *, int);

void
stats_stream_error(const char *cond, int sent)
{
	size_t i;

	for (i = 0; i < NCONDS - 1; i++)
		if (cond != NULL && strcmp(cond, stream_conds[i]) == 0)
			break;
	stream_errors[sent ? 1 : 0][i]++;
}

static void
format_stream_errors(struct buf *out, int sent)
{
	const char *dir = sent ? "sent" : "received";
	unsigned long total = 0;

	for (size_t i = 0; i < NCONDS; i++) {
		if (stream_errors[sent][i] == 0)
			continue;
		total += stream_errors[sent][i];
		buf_printf(out, "stream_errors.%s.%s=%lu\n", dir, stream_conds[i],
		    stream_errors[sent][i]);
	}
	buf_printf(out, "stream_errors.%s.total=%lu\n", dir, total);
}

void
stats_format(struct buf *out)
{
	const struct qf_stats *s = &qf_stats;

	buf_printf(out, "conns.in=%lu\n", s->conns_in);
	buf_printf(out, "conns.out=%lu\n", s->conns_out);
	buf_printf(out, "conns.open=%lu\n", s->conns_open);
	buf_printf(out, "conns.refused_per_address=%lu\n", s->conns_refused_per_address);
	buf_printf(out, "conns.shed=%lu\n", s->conns_shed);
	buf_printf(out, "conns.paused=%lu\n", s->conns_paused);
	buf_printf(out, "stanzas.in=%lu\n", s->stanzas_in);
	buf_printf(out, "stanzas.out=%lu\n", s->stanzas_out);
	buf_printf(out, "bounces=%lu\n", s->bounces);
	buf_printf(out, "dropped_errors=%lu\n", s->dropped_errors);
	buf_printf(out, "auth.external=%lu\n", s->auth_external);
	buf_printf(out, "auth.dialback=%lu\n", s->auth_dialback);
	buf_printf(out, "auth.failures=%lu\n", s->auth_failures);
	buf_printf(out, "dialback.verify_answered=%lu\n", s->dialback_verify_answered);
	buf_printf(out, "tls.handshakes=%lu\n", s->tls_handshakes);
	buf_printf(out, "rtt.used=%lu\n", s->rtt_used);
	buf_printf(out, "rtt.saved=%lu\n", s->rtt_saved);
	buf_printf(out, "tcp_fastopen.used=%lu\n", s->tfo_used);
	buf_printf(out, "held.released=%lu\n", s->held_released);
	buf_printf(out, "held.discarded=%lu\n", s->held_discarded);
	buf_printf(out, "reads.paused=%lu\n", s->reads_paused);
	buf_printf(out, "reads.paused_memory=%lu\n", s->reads_paused_memory);
	buf_printf(out, "held.paused=%lu\n", s->held_paused);
	buf_printf(out, "verify.refused=%lu\n", s->verify_refused);
	buf_printf(out, "pairs.refused=%lu\n", s->pairs_refused);
	buf_printf(out, "pairs.piggybacked=%lu\n", s->pairs_piggybacked);
	buf_printf(out, "pairs.riding=%lu\n", s->pairs_riding);
	buf_printf(out, "auth.dialback_cert=%lu\n", s->auth_dialback_cert);
	buf_printf(out, "bidi.streams=%lu\n", s->bidi_streams);
	buf_printf(out, "sm.enabled=%lu\n", s->sm_enabled);
	buf_printf(out, "sm.acked=%lu\n", s->sm_acked);
	buf_printf(out, "sm.requeued=%lu\n", s->sm_requeued);
	buf_printf(out, "sm.lost=%lu\n", s->sm_lost);
	buf_printf(out, "sm.acks_deferred=%lu\n", s->sm_acks_deferred);
	buf_printf(out, "tcp.proven=%lu\n", s->tcp_proven);
	buf_printf(out, "stanzas.unproven_bounced=%lu\n", s->unproven_bounced);
	buf_printf(out, "links.dead=%lu\n", s->links_dead);
	buf_printf(out, "routes.retries=%lu\n", s->route_retries);
	format_stream_errors(out, 1);
	format_stream_errors(out, 0);
}
