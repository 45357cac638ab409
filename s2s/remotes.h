/* s2s/remotes.h - per-remote-domain gauges for the metrics, with bounded cardinality.
 * SPDX-License-Identifier: ISC
 * A sample_emit_fn that main.c adds to the metrics: for the REMOTES_TOP remote domains
 * with the most stanzas queued (ties: bytes, routes, name), and one remote="(other)"
 * series summing the rest, the routes, ready routes, outgoing connections and queued
 * stanzas and bytes. So a scrape has at most REMOTES_TOP + 1 series per family however
 * many domains the server talks to. */
#ifndef QF_REMOTES_H
#define QF_REMOTES_H

#define REMOTES_TOP    20          /* remote domains listed by name */
#define REMOTES_OTHER  "(other)"   /* the label of the rest: cannot be a domain name */

struct sample_sink;
/* arg unused. */
void remotes_emit(void *arg, struct sample_sink *sink);

#endif
