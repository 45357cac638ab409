/* core/stats.h - daemon-wide counters shown by "show stats".
 * SPDX-License-Identifier: ISC
 * Modules bump the counters directly; stats.c formats them for the status socket and
 * emits them as samples (core/sample.h) for the metrics. */
#ifndef QF_STATS_H
#define QF_STATS_H

#include "buf.h"

struct qf_stats {
	unsigned long conns_in, conns_out;          /* accepted / initiated, total */
	unsigned long conns_open;                   /* currently open */
	unsigned long conns_refused_per_address;    /* accepted and closed at once: the
	                                             * source held connections_per_address */
	unsigned long conns_shed;                   /* unauthenticated, closed to make room */
	unsigned long conns_paused;                 /* a listener stopped accepting for a
	                                             * second: full of connections it may not
	                                             * shed, or out of descriptors */
	unsigned long stanzas_in;                   /* from the internet to the local server */
	unsigned long stanzas_out;                  /* from the local server to the internet */
	unsigned long bounces;                      /* error stanzas generated */
	unsigned long dropped_errors;               /* undeliverable error stanzas (never bounced) */
	unsigned long auth_external, auth_dialback; /* successful authentications */
	unsigned long auth_failures;
	unsigned long dialback_verify_answered;
	unsigned long tls_handshakes;
	unsigned long rtt_used, rtt_saved;         /* set-up round trips (initiators), summed */
	unsigned long tfo_used;                    /* connections whose SYN carried data */
	unsigned long held_released;               /* pipelined stanzas released by their
	                                            * own pair's valid dialback verdict */
	unsigned long held_discarded;              /* ... discarded: their pair was not
	                                            * authenticated (invalid, timeout, close) */
	unsigned long reads_paused;                /* senders paused: their route's queue
	                                            * over limits { queue_bytes } */
	unsigned long reads_paused_memory;         /* ... all stanzas over limits { memory } */
	unsigned long held_paused;                 /* connections paused: held stanzas at
	                                            * limits { held } (or memory) */
	unsigned long verify_refused;              /* db:result answered with a dialback
	                                            * error: limits { verifications } */
	unsigned long pairs_piggybacked;           /* initiator: pairs added on a ready link
	                                            * by a piggybacked db:result */
	unsigned long pairs_riding;                /* routes that rode another's link */
	unsigned long auth_dialback_cert;          /* receiver: db:results found valid by
	                                            * the certificate (XEP-0344), no
	                                            * verification leg */
	unsigned long bidi_streams;                /* streams on which bidi was agreed */
	unsigned long sm_enabled;                  /* streams with XEP-0198 enabled */
	unsigned long sm_acked;                    /* stanzas the peers acknowledged */
	unsigned long sm_requeued;                 /* stanzas a dead link left unacked, put
	                                            * back at the front of their routes */
	unsigned long route_retries;               /* set-ups that failed and will be tried
	                                            * again (timeouts { retry }) */
	unsigned long links_dead;                  /* ready links reset: an <r/> stayed
	                                            * unanswered for timeouts { dead } */
	unsigned long sm_lost;                     /* ... that had no route to go back to */
	unsigned long sm_acks_deferred;            /* <r/> answered only once what came
	                                            * before it was passed on */
	unsigned long tcp_proven;                  /* stanzas sent without stream management
	                                            * whose delivery the peer's TCP proved */
	unsigned long unproven_bounced;            /* ... whose link died first: bounced */
	unsigned long pairs_refused;               /* ... : the stream's pair table at its
	                                            * share of limits { held } */
	unsigned long conns_quieted;               /* connections that went quiet (no
	                                            * input for 2 s) and gave their parser
	                                            * back (s2s/conn.c) */
	unsigned long heap_trims;                  /* the heap's free pages given back to
	                                            * the system (core/main.c) */
	unsigned long heap_trim_due;               /* 1: traffic since the last trim (the
	                                            * next comes once it is quiet) */
	unsigned long loop_turns;                  /* turns of the event loop (core/loopwatch.c) */
	unsigned long loop_busy_us;                /* their work, summed (wake-up to next wait) */
	unsigned long loop_slow;                   /* turns of LOOPWATCH_SLOW_US or more */
	unsigned long loop_stalls;                 /* turns of LOOPWATCH_STALL_US or more */
	unsigned long loop_max_us;                 /* the longest turn of the last 1-2 min */
	unsigned long xml_dict_renewals;           /* XML parsers given back because their name
	                                            * dictionary outgrew its bound
	                                            * (s2s/xmlstream.c) */
};

extern struct qf_stats qf_stats;

/* Count a stream error we sent or received, by condition name. */
void stats_stream_error(const char *cond, int sent);
/* Append all counters as name=value lines. */
void stats_format(struct buf *out);
/* Emit every counter into sink (a sample_emit_fn; arg unused): the source of both
 * stats_format() and the metrics. Every field of struct qf_stats is an unsigned long
 * listed in stats.c's table. */
struct sample_sink;
void stats_emit(void *arg, struct sample_sink *sink);

#endif
