/* s2s/admit.h - admission of accepted connections: per-listener, internet-wide and
 * per-source-address limits, and which unauthenticated connection to shed under load.
 * SPDX-License-Identifier: ISC
 * listener.c asks before each accept whether there is room (or what to shed to make
 * room) and, once it knows the peer's address, whether that address may open one
 * more; each connection it keeps gets a record that conn.c releases when it frees the
 * connection. No sockets and no event loop in here: the time is passed in, so
 * tests/unit/test_admit.c drives it directly.
 *
 * Semantics:
 *  - Every listener counts the connections it accepted that are still open (any state,
 *    authenticated or not, closing included: they hold a descriptor) against its own
 *    limit. Internet-side listeners (internet, direct_tls) also count against one
 *    internet-wide cap together; local listeners never do, and nothing on the internet
 *    side can make a local listener refuse.
 *  - On internet-side listeners, connections from one IPv4 address, or one IPv6 /64
 *    (IPv4-mapped IPv6 counts as IPv4), are limited too, all internet-side listeners
 *    together.
 *  - At a listener's own limit the victim is the oldest connection of that listener
 *    that is not protected (authenticated or closing, as the owner's predicate says);
 *    at the internet-wide cap, the oldest of all internet-side listeners. Local
 *    listeners never shed. */
#ifndef QF_ADMIT_H
#define QF_ADMIT_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;
struct admit_listener;
struct admit_entry;

/* True when the connection owner (as given to admit_add) must not be shed: it has
 * authenticated a domain pair, or it is closing already. */
typedef bool admit_protected_fn(void *owner);

/* What admit_room() found. */
enum admit_room {
	ADMIT_ROOM = 0,   /* under every limit: accept */
	ADMIT_SHED,       /* at a limit: shed *victim first, then accept */
	ADMIT_FULL,       /* at a limit and nothing may be shed: stop accepting */
};

/* A refusal by address, for the log line (at most one per source per 10 s). */
struct admit_refusal {
	unsigned count;             /* connections the source holds (= the limit or more) */
	bool     log;               /* log this refusal now */
	unsigned long suppressed;   /* refusals of this source not logged since the last line */
};

/* Module set-up: the internet-wide cap (limits.connections), the per-address limit
 * (limits.connections_per_address) and the shedding predicate. May be called again
 * (tests) once every record was released and admit_free_all() ran. */
void admit_init(unsigned internet_max, unsigned per_address, admit_protected_fn *fn);
/* Reload: new internet-wide cap and per-address limit. Connections over a smaller
 * limit stay; new ones are refused (or shed) until the count is below it. */
void admit_set_limits(unsigned internet_max, unsigned per_address);
/* Reload: a listener's new limit (the same rule). */
void admit_listener_set_max(struct admit_listener *al, unsigned max);
/* Free what is left (sources remembered for the log rate limit, listeners). Call once
 * every connection is freed. */
void admit_free_all(void);

/* A listener's accounting; name is copied (for status output). internet: an
 * internet-side listener (per-address limit, internet-wide cap, shedding). */
struct admit_listener *admit_listener_new(const char *name, unsigned max, bool internet);
/* The listener socket closed: the accounting is freed with its last connection. */
void admit_listener_close(struct admit_listener *al);

/* Room for one more connection on al? On ADMIT_SHED *victim is the record of the
 * connection to close first (its owner must then be freed, which releases it). */
enum admit_room admit_room(struct admit_listener *al, struct admit_entry **victim);
/* May a connection from sa stay on al (now: seconds, any monotonic origin)? False when
 * its address (or /64) holds connections_per_address already; *r then says what to
 * log. Always true on local listeners. */
bool admit_source_ok(struct admit_listener *al, const struct sockaddr *sa, double now,
    struct admit_refusal *r);
/* Count an accepted connection from sa on al; owner is handed to the predicate and
 * back by admit_owner. Returns the record (released with admit_release), or NULL on
 * out of memory (then the caller closes the connection). */
struct admit_entry *admit_add(struct admit_listener *al, const struct sockaddr *sa,
    void *owner);
/* The connection closed (NULL: nothing). */
void admit_release(struct admit_entry *e);
void *admit_owner(const struct admit_entry *e);

/* For status output and tests. */
const char *admit_listener_name(const struct admit_listener *al);
unsigned admit_listener_count(const struct admit_listener *al);
unsigned admit_listener_max(const struct admit_listener *al);
unsigned admit_internet_count(void);
unsigned admit_internet_max(void);
/* Connections the source of sa holds (0 if unknown); sources remembered. */
unsigned admit_source_count(const struct sockaddr *sa);
size_t admit_sources(void);
/* "192.0.2.1" or "2001:db8:1:2::/64": the source sa is counted as. */
void admit_source_str(const struct sockaddr *sa, char *out, size_t n);

#endif
