/* core/stats.c - daemon-wide counters and their "name=value" rendering.
 * SPDX-License-Identifier: ISC
 * Modules bump qf_stats fields directly and call stats_stream_error() when a stream error
 * is sent or received. route.c's "show stats" handler calls stats_format(), and the
 * metrics (core/metrics.c) call stats_emit(): both come from the table below, so a
 * counter added there is in both. Names printed here are stable: never rename one that
 * shipped. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/sample.h"
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

/* Every counter of struct qf_stats, in "show stats" order: its status name, its field,
 * its metric family (named after the status name: quickfed_stanzas_in_total). */
struct stat_def {
	const char          *key;
	size_t               off;
	struct sample_family fam;
};

static const struct stat_def stat_defs[] = {
	{ "conns.in", offsetof(struct qf_stats, conns_in),
	    { NULL, SAMPLE_COUNTER, "connections accepted" } },
	{ "conns.out", offsetof(struct qf_stats, conns_out),
	    { NULL, SAMPLE_COUNTER, "connections initiated" } },
	{ "conns.open", offsetof(struct qf_stats, conns_open),
	    { NULL, SAMPLE_GAUGE, "connections open now" } },
	{ "conns.refused_per_address", offsetof(struct qf_stats, conns_refused_per_address),
	    { NULL, SAMPLE_COUNTER, "connections closed at once: their source address held "
	      "connections_per_address" } },
	{ "conns.shed", offsetof(struct qf_stats, conns_shed),
	    { NULL, SAMPLE_COUNTER, "unauthenticated connections closed to make room" } },
	{ "conns.paused", offsetof(struct qf_stats, conns_paused),
	    { NULL, SAMPLE_COUNTER, "times a listener stopped accepting for a second "
	      "(full, or out of descriptors)" } },
	{ "stanzas.in", offsetof(struct qf_stats, stanzas_in),
	    { NULL, SAMPLE_COUNTER, "stanzas relayed from the internet to the local server" } },
	{ "stanzas.out", offsetof(struct qf_stats, stanzas_out),
	    { NULL, SAMPLE_COUNTER, "stanzas relayed from the local server to the internet" } },
	{ "bounces", offsetof(struct qf_stats, bounces),
	    { NULL, SAMPLE_COUNTER, "error stanzas generated for stanzas that could not be "
	      "delivered" } },
	{ "dropped_errors", offsetof(struct qf_stats, dropped_errors),
	    { NULL, SAMPLE_COUNTER, "undeliverable error stanzas dropped (errors are never "
	      "bounced)" } },
	{ "auth.external", offsetof(struct qf_stats, auth_external),
	    { NULL, SAMPLE_COUNTER, "successful SASL EXTERNAL authentications" } },
	{ "auth.dialback", offsetof(struct qf_stats, auth_dialback),
	    { NULL, SAMPLE_COUNTER, "successful dialback authentications" } },
	{ "auth.failures", offsetof(struct qf_stats, auth_failures),
	    { NULL, SAMPLE_COUNTER, "failed authentications" } },
	{ "dialback.verify_answered", offsetof(struct qf_stats, dialback_verify_answered),
	    { NULL, SAMPLE_COUNTER, "db:verify requests answered" } },
	{ "tls.handshakes", offsetof(struct qf_stats, tls_handshakes),
	    { NULL, SAMPLE_COUNTER, "TLS handshakes completed" } },
	{ "rtt.used", offsetof(struct qf_stats, rtt_used),
	    { NULL, SAMPLE_COUNTER, "set-up round trips used by initiated streams, summed" } },
	{ "rtt.saved", offsetof(struct qf_stats, rtt_saved),
	    { NULL, SAMPLE_COUNTER, "set-up round trips saved by pipelining, summed" } },
	{ "tcp_fastopen.used", offsetof(struct qf_stats, tfo_used),
	    { NULL, SAMPLE_COUNTER, "connections whose SYN carried data (TCP Fast Open)" } },
	{ "held.released", offsetof(struct qf_stats, held_released),
	    { NULL, SAMPLE_COUNTER, "pipelined stanzas released by their pair's valid "
	      "dialback verdict" } },
	{ "held.discarded", offsetof(struct qf_stats, held_discarded),
	    { NULL, SAMPLE_COUNTER, "pipelined stanzas discarded: their pair was not "
	      "authenticated" } },
	{ "reads.paused", offsetof(struct qf_stats, reads_paused),
	    { NULL, SAMPLE_COUNTER, "senders paused: their route's queue over limits { "
	      "queue_bytes }" } },
	{ "reads.paused_memory", offsetof(struct qf_stats, reads_paused_memory),
	    { NULL, SAMPLE_COUNTER, "senders paused: all stanzas over limits { memory }" } },
	{ "held.paused", offsetof(struct qf_stats, held_paused),
	    { NULL, SAMPLE_COUNTER, "connections paused: held stanzas at limits { held }" } },
	{ "verify.refused", offsetof(struct qf_stats, verify_refused),
	    { NULL, SAMPLE_COUNTER, "db:results refused with a dialback error: limits { "
	      "verifications }" } },
	{ "pairs.refused", offsetof(struct qf_stats, pairs_refused),
	    { NULL, SAMPLE_COUNTER, "db:results refused: the stream's pair table at its "
	      "share of limits { held }" } },
	{ "pairs.piggybacked", offsetof(struct qf_stats, pairs_piggybacked),
	    { NULL, SAMPLE_COUNTER, "pairs added on a ready link by a piggybacked "
	      "db:result" } },
	{ "pairs.riding", offsetof(struct qf_stats, pairs_riding),
	    { NULL, SAMPLE_COUNTER, "routes that rode another route's link" } },
	{ "auth.dialback_cert", offsetof(struct qf_stats, auth_dialback_cert),
	    { NULL, SAMPLE_COUNTER, "db:results found valid by the certificate (XEP-0344)" } },
	{ "bidi.streams", offsetof(struct qf_stats, bidi_streams),
	    { NULL, SAMPLE_COUNTER, "streams on which bidi (XEP-0288) was agreed" } },
	{ "sm.enabled", offsetof(struct qf_stats, sm_enabled),
	    { NULL, SAMPLE_COUNTER, "streams with stream management (XEP-0198) enabled" } },
	{ "sm.acked", offsetof(struct qf_stats, sm_acked),
	    { NULL, SAMPLE_COUNTER, "stanzas the peers acknowledged" } },
	{ "sm.requeued", offsetof(struct qf_stats, sm_requeued),
	    { NULL, SAMPLE_COUNTER, "unacknowledged stanzas of dead links put back on "
	      "their routes" } },
	{ "sm.lost", offsetof(struct qf_stats, sm_lost),
	    { NULL, SAMPLE_COUNTER, "unacknowledged stanzas of dead links that had no "
	      "route to go back to" } },
	{ "sm.acks_deferred", offsetof(struct qf_stats, sm_acks_deferred),
	    { NULL, SAMPLE_COUNTER, "ack requests answered only once the stanzas before "
	      "them were passed on" } },
	{ "tcp.proven", offsetof(struct qf_stats, tcp_proven),
	    { NULL, SAMPLE_COUNTER, "stanzas sent without stream management whose delivery "
	      "the peer's TCP acknowledged" } },
	{ "stanzas.unproven_bounced", offsetof(struct qf_stats, unproven_bounced),
	    { NULL, SAMPLE_COUNTER, "stanzas bounced because their link died before the "
	      "peer's TCP acknowledged them" } },
	{ "links.dead", offsetof(struct qf_stats, links_dead),
	    { NULL, SAMPLE_COUNTER, "ready links reset: an ack request stayed unanswered "
	      "for timeouts { dead }" } },
	{ "routes.retries", offsetof(struct qf_stats, route_retries),
	    { NULL, SAMPLE_COUNTER, "set-ups that failed and will be tried again (timeouts "
	      "{ retry })" } },
	{ "conns.quieted", offsetof(struct qf_stats, conns_quieted),
	    { NULL, SAMPLE_COUNTER, "connections that went quiet (no input for 2 s) and gave "
	      "their parser back" } },
	{ "heap.trims", offsetof(struct qf_stats, heap_trims),
	    { NULL, SAMPLE_COUNTER, "times the heap's free pages were given back to the "
	      "system, once traffic was quiet" } },
	{ "heap.trim_due", offsetof(struct qf_stats, heap_trim_due),
	    { NULL, SAMPLE_GAUGE, "1 when there was traffic since the last heap trim" } },
	{ "loop.turns", offsetof(struct qf_stats, loop_turns),
	    { NULL, SAMPLE_COUNTER, "turns of the event loop" } },
	{ "loop.busy_us", offsetof(struct qf_stats, loop_busy_us),
	    { NULL, SAMPLE_COUNTER, "microseconds the event loop worked (wake-up to next "
	      "wait, wall time), summed" } },
	{ "loop.turns_over_1ms", offsetof(struct qf_stats, loop_slow),
	    { NULL, SAMPLE_COUNTER, "event loop turns of 1 ms or more (every link waited)" } },
	{ "loop.turns_over_10ms", offsetof(struct qf_stats, loop_stalls),
	    { NULL, SAMPLE_COUNTER, "event loop turns of 10 ms or more" } },
	{ "loop.max_us", offsetof(struct qf_stats, loop_max_us),
	    { NULL, SAMPLE_GAUGE, "the longest event loop turn of the last one to two "
	      "minutes, microseconds" } },
	{ "xml.dict_renewals", offsetof(struct qf_stats, xml_dict_renewals),
	    { NULL, SAMPLE_COUNTER, "XML parsers renewed because their name dictionary "
	      "outgrew 64 KiB or 1024 names (a peer sending ever new names)" } },
};
#define NSTATS (sizeof(stat_defs) / sizeof(stat_defs[0]))
/* A field added to struct qf_stats and not to the table fails here. */
_Static_assert(sizeof(struct qf_stats) == NSTATS * sizeof(unsigned long),
    "every qf_stats counter has a row in stat_defs");

static const struct sample_family stream_errors_fam = {
	"stream_errors", SAMPLE_COUNTER,
	"stream errors sent and received, by direction and RFC 6120 condition"
};

static void emit_stream_errors(struct sample_sink *, int);

void
stats_stream_error(const char *cond, int sent)
{
	size_t i;

	for (i = 0; i < NCONDS - 1; i++)
		if (cond != NULL && strcmp(cond, stream_conds[i]) == 0)
			break;
	stream_errors[sent ? 1 : 0][i]++;
}

/* Every condition of one direction (the metric's series exist from the start); the
 * name=value answer lists the conditions seen and their total. */
static void
emit_stream_errors(struct sample_sink *sink, int sent)
{
	const char *dir = sent ? "sent" : "received";
	struct sample_label lab[2] = { { "direction", dir }, { "condition", NULL } };
	unsigned long total = 0;
	char key[80];

	for (size_t i = 0; i < NCONDS; i++) {
		unsigned long n = stream_errors[sent][i];

		total += n;
		snprintf(key, sizeof(key), "stream_errors.%s.%s", dir, stream_conds[i]);
		lab[1].value = stream_conds[i];
		sink->put(sink, n > 0 ? key : NULL, &stream_errors_fam, lab, 2, (int64_t)n);
	}
	snprintf(key, sizeof(key), "stream_errors.%s.total", dir);
	sink->put(sink, key, NULL, NULL, 0, (int64_t)total);
}

void
stats_emit(void *arg, struct sample_sink *sink)
{
	for (size_t i = 0; i < NSTATS; i++)
		sample_put(sink, stat_defs[i].key, &stat_defs[i].fam,
		    (int64_t)*(const unsigned long *)((const char *)&qf_stats + stat_defs[i].off));
	emit_stream_errors(sink, 1);
	emit_stream_errors(sink, 0);
}

void
stats_format(struct buf *out)
{
	struct sample_sink sink;

	sample_kv_sink(&sink, out);
	stats_emit(NULL, &sink);
}
